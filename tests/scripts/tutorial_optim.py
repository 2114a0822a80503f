"""The tutorial's two-layer net with torch.optim.

Usage: python tutorial_optim.py [ITERATIONS] [--sgd|--adam] [--foreach]   (default 500, Adam)
"""

import sys

import torch

args = [a for a in sys.argv[1:] if not a.startswith("--")]
iterations = int(args[0]) if args else 500
foreach = True if "--foreach" in sys.argv else None
torch.manual_seed(0)

N, D_in, H, D_out = 64, 1000, 100, 10

x = torch.randn(N, D_in)
y = torch.randn(N, D_out)

model = torch.nn.Sequential(
    torch.nn.Linear(D_in, H),
    torch.nn.ReLU(),
    torch.nn.Linear(H, D_out),
)
loss_fn = torch.nn.MSELoss(reduction="sum")

if "--sgd" in sys.argv:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, foreach=foreach)
else:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=foreach)
for t in range(iterations):
    y_pred = model(x)

    loss = loss_fn(y_pred, y)
    if t % 100 == 99 or t == iterations - 1:
        print(t, loss.item())

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
