"""torch.nn modules whose arithmetic runs on pykernels: ``Linear``, ``ReLU``, ``MSELoss``.

Each one subclasses its torch namesake and replaces only ``forward``, so everything else is
torch's: the constructor and its arguments, parameter names and shapes, the initialisation
(same random draws from the same seed), ``state_dict`` / ``load_state_dict``, ``repr``, hooks,
``isinstance(m, torch.nn.Linear)``. A state_dict saved from a torch model therefore loads into
the same model built from these modules and back, and they compose with ``torch.nn.Sequential``,
``torch.optim`` and ``DistributedDataParallel`` like the originals.

``convert(model)`` swaps every ``torch.nn.Linear`` / ``ReLU`` / ``MSELoss`` inside a model for
these in place, keeping the very same module and parameter objects (so an optimizer built before
the swap still updates them).
"""

import torch

from . import _api as ops

__all__ = ["Linear", "MSELoss", "ReLU", "convert", "linear"]


def linear(input, weight, bias=None):
    """``torch.nn.functional.linear`` on pykernels: ``input @ weight.T + bias``."""
    # A 2-D input takes mm, the common case; matmul covers 1-D and batched inputs with torch's rules.
    out = ops.mm(input, weight.t()) if input.dim() == 2 else ops.matmul(input, weight.t())
    return out if bias is None else ops.add(out, bias)


class Linear(torch.nn.Linear):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)`` on pykernels."""

    def forward(self, input):
        return linear(input, self.weight, self.bias)


class ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU(inplace=False)`` on pykernels."""

    def forward(self, input):
        return ops.relu_(input) if self.inplace else ops.relu(input)


class MSELoss(torch.nn.MSELoss):
    """``torch.nn.MSELoss(size_average=None, reduce=None, reduction='mean')`` on pykernels."""

    def forward(self, input, target):
        return ops.mse_loss(input, target, reduction=self.reduction)


# Exact torch classes only: a subclass of torch.nn.Linear may have a forward of its own (or none
# that is used, as MultiheadAttention's out_proj), so it is left alone.
_REPLACEMENTS = {torch.nn.Linear: Linear, torch.nn.ReLU: ReLU, torch.nn.MSELoss: MSELoss}


def convert(model):
    """Swap every ``torch.nn.Linear``, ``torch.nn.ReLU`` and ``torch.nn.MSELoss`` in ``model``
    (the model itself included) for its pykernels twin, weights kept; returns ``model``.

    The swap is made in place, by changing each such module's class to its twin (which adds
    nothing but ``forward``): the module object stays the same, and with it everything it holds,
    the very same ``Parameter`` objects (so an optimizer built before still updates them),
    ``state_dict`` keys and values, hooks and their handles, the training flag. Subclasses of
    those torch modules are left unchanged.
    """
    for module in model.modules():
        twin = _REPLACEMENTS.get(type(module))
        if twin is not None:
            module.__class__ = twin
    return model
