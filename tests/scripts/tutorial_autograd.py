"""The tutorial's two-layer net with autograd: requires_grad leaves, in-place updates under no_grad.

Usage: python tutorial_autograd.py [ITERATIONS] [--zero-grad]   (default 500)
--zero-grad clears gradients with w.grad.zero_() as the older tutorial does, instead of w.grad = None.
"""

import sys

import torch

args = [a for a in sys.argv[1:] if not a.startswith("--")]
iterations = int(args[0]) if args else 500
zero_in_place = "--zero-grad" in sys.argv
dtype = torch.float
device = torch.device("cpu")
torch.manual_seed(0)

N, D_in, H, D_out = 64, 1000, 100, 10

x = torch.randn(N, D_in, device=device, dtype=dtype)
y = torch.randn(N, D_out, device=device, dtype=dtype)
w1 = torch.randn(D_in, H, device=device, dtype=dtype, requires_grad=True)
w2 = torch.randn(H, D_out, device=device, dtype=dtype, requires_grad=True)

learning_rate = 1e-6
for t in range(iterations):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)

    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99 or t == iterations - 1:
        print(t, loss.item())

    loss.backward()

    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad

        # Manually zero the gradients after updating weights
        if zero_in_place:
            w1.grad.zero_()
            w2.grad.zero_()
        else:
            w1.grad = None
            w2.grad = None
