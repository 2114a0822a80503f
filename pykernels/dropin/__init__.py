"""Drop-in mode: run unmodified torch code on pykernels.

``with pykernels.dropin.enable():`` (``pykernels.enable()`` where the package exports it) routes,
for the duration of the block and on the current thread, every torch call that pykernels covers
to pykernels: functions (``torch.mm``, ``torch.add``, ``torch.clamp(x, min=0)``, ...), Tensor
methods (``x.mm(w)``, ``x.pow(2).sum()``, ...), operators (``@ + - * / ** -x`` and the in-place
``+= -= *= /=``), ``torch.nn.functional.linear / relu / mse_loss`` (hence ``nn.Linear``,
``nn.ReLU``, ``nn.MSELoss``) and ``torch.optim``: a step of SGD, Adam or AdamW is one fused
pykernels op over every parameter, whichever implementation (for-loop, foreach, fused) the
optimizer picks; other optimizers' arithmetic goes op by op (the per-tensor ``add_``, ``lerp_``,
``addcmul_``, ``addcdiv_`` ... and the ``torch._foreach_*`` forms).
Backward follows: a routed call records pykernels' autograd Function, whose backward runs on
pykernels kernels. Everything else falls through to torch unchanged, and so does a covered call
whose arguments pykernels does not take (an ``out=`` where it has none, a tensor exponent, a
complex or sparse tensor, a device without a pykernels backend, a tensor subclass) or on which
pykernels raises (torch then runs it, and raises its own error if it is one).

It is built on torch's own mechanism, a ``torch.overrides.TorchFunctionMode``; torch is not
patched, except that while a mode is active the functions that implement torch.optim's SGD, Adam
and AdamW steps are replaced by routes to the fused ops (optim.py), which run torch's own on any
thread without an active mode. What it cannot see: work the autograd engine does in C++ by itself (summing the
gradients of a tensor used twice, and accumulating into a ``.grad`` that already exists, e.g.
after ``w.grad.zero_()`` rather than ``w.grad = None`` / ``optimizer.zero_grad()``), calls made on
other threads, and TorchScript code (``torch.compile`` with the mode on is untested).

``enable(report=True)`` times every call and prints, when the block exits, a table of the torch
calls that were routed and of the compute calls that fell through, with their counts and the time
spent in them (bookkeeping, such as attribute reads and ``x.item()``, is counted but not listed).
``python -m pykernels run SCRIPT [ARGS...]`` runs a script under the mode and prints that table
to stderr.

The package: routing.py says which torch function goes to which handler (handlers.py; foreach.py
for ``torch._foreach_*``); optim.py routes torch.optim's steps; arguments.py which arguments
pykernels takes; mode.py is the mode; report.py its report; script.py runs a script under it.
"""

from .mode import DropIn, enable
from .script import run_script

__all__ = ["DropIn", "enable", "run_script"]
