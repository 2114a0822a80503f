"""The tutorial's two-layer net as a custom nn.Module, trained with torch.optim.SGD.

Usage: python tutorial_module.py [ITERATIONS]   (default 500)
"""

import sys

import torch


class TwoLayerNet(torch.nn.Module):
    def __init__(self, D_in, H, D_out):
        super().__init__()
        self.linear1 = torch.nn.Linear(D_in, H)
        self.linear2 = torch.nn.Linear(H, D_out)

    def forward(self, x):
        h_relu = self.linear1(x).clamp(min=0)
        y_pred = self.linear2(h_relu)
        return y_pred


iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 500
torch.manual_seed(0)

N, D_in, H, D_out = 64, 1000, 100, 10

x = torch.randn(N, D_in)
y = torch.randn(N, D_out)

model = TwoLayerNet(D_in, H, D_out)

criterion = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
for t in range(iterations):
    y_pred = model(x)

    loss = criterion(y_pred, y)
    if t % 100 == 99 or t == iterations - 1:
        print(t, loss.item())

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
