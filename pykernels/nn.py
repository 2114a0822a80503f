"""torch.nn modules whose arithmetic runs on pykernels: ``Linear``, ``ReLU``, ``MSELoss``, and
``Sequential`` and ``FusedMLP``, which run a Linear followed by a ReLU (and a Linear after it) as
one fused op.

Each one subclasses its torch namesake and replaces only ``forward``, so everything else is
torch's: the constructor and its arguments, parameter names and shapes, the initialisation
(same random draws from the same seed), ``state_dict`` / ``load_state_dict``, ``repr``, hooks,
``isinstance(m, torch.nn.Linear)``. A state_dict saved from a torch model therefore loads into
the same model built from these modules and back, and they compose with ``torch.nn.Sequential``,
``torch.optim`` and ``DistributedDataParallel`` like the originals.

``Sequential`` fuses what its children make of it: a Linear and the ReLU after it run as one
``linear_relu`` (the GEMM applies the bias and the ReLU as it stores its result), a Linear, ReLU,
Linear as one ``mlp`` (forward and backward each one op call). Its children stay what they are
(``model[0](x)`` is still that Linear alone), and a child with hooks, or any global module hook,
runs as its own module at that call, so that its hooks see what torch's would.

``convert(model)`` swaps every ``torch.nn.Linear`` / ``ReLU`` / ``MSELoss`` / ``Sequential``
inside a model for these in place, keeping the very same module and parameter objects (so an
optimizer built before the swap still updates them).
"""

import torch

from . import _api as ops
from . import _compat

__all__ = ["FusedMLP", "Linear", "MSELoss", "ReLU", "Sequential", "convert", "linear"]

linear = ops.linear


class Linear(torch.nn.Linear):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)`` on pykernels."""

    def forward(self, input):
        return ops.linear(input, self.weight, self.bias)


class ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU(inplace=False)`` on pykernels."""

    def forward(self, input):
        return ops.relu_(input) if self.inplace else ops.relu(input)


class MSELoss(torch.nn.MSELoss):
    """``torch.nn.MSELoss(size_average=None, reduce=None, reduction='mean')`` on pykernels."""

    def forward(self, input, target):
        return ops.mse_loss(input, target, reduction=self.reduction)


# The modules Sequential fuses: exact classes, since a subclass may have a forward of its own.
_LINEAR = (torch.nn.Linear, Linear)
_RELU = (torch.nn.ReLU, ReLU)
_linear_relu = torch.ops.pykernels.linear_relu.default
_mlp = torch.ops.pykernels.mlp.default


class Sequential(torch.nn.Sequential):
    """``torch.nn.Sequential(*modules)`` on pykernels: a Linear followed by a ReLU runs as one op,
    and a Linear, ReLU, Linear too (see the module's docstring)."""

    def forward(self, input):
        modules = list(self._modules.values())
        count, i = len(modules), 0
        fuse = not _compat.global_module_hooks()  # which every module call would run
        while i < count:
            module = modules[i]
            if (
                fuse
                and i + 1 < count
                and type(module) in _LINEAR
                and type(modules[i + 1]) in _RELU
                and not _compat.module_has_hooks(module)
                and not _compat.module_has_hooks(modules[i + 1])
            ):
                first = _compat.own_parameters(module)
                after = modules[i + 2] if i + 2 < count else None
                if type(after) in _LINEAR and not _compat.module_has_hooks(after):
                    second = _compat.own_parameters(after)
                    input = _mlp(input, first["weight"], first["bias"], second["weight"], second["bias"])
                    i += 3
                else:
                    input = _linear_relu(input, first["weight"], first["bias"])
                    i += 2
            else:
                input = module(input)
                i += 1
        return input


class FusedMLP(Sequential):
    """``Linear(in_features, hidden_features)``, ``ReLU()``, ``Linear(hidden_features, out_features)``
    as one op, forward and backward: ``torch.nn.Sequential`` of those three modules in
    parameters, ``state_dict`` keys (``0.weight``, ``0.bias``, ``2.weight``, ``2.bias``) and
    initialisation, and the same result."""

    def __init__(self, in_features, hidden_features, out_features, bias=True, device=None, dtype=None):
        options = {"bias": bias, "device": device, "dtype": dtype}
        super().__init__(
            Linear(in_features, hidden_features, **options), ReLU(), Linear(hidden_features, out_features, **options)
        )


# Exact torch classes only: a subclass of torch.nn.Linear may have a forward of its own (or none
# that is used, as MultiheadAttention's out_proj), so it is left alone.
_REPLACEMENTS = {
    torch.nn.Linear: Linear,
    torch.nn.ReLU: ReLU,
    torch.nn.MSELoss: MSELoss,
    torch.nn.Sequential: Sequential,
}


def convert(model):
    """Swap every ``torch.nn.Linear``, ``torch.nn.ReLU``, ``torch.nn.MSELoss`` and
    ``torch.nn.Sequential`` in ``model`` (the model itself included) for its pykernels twin,
    weights kept; returns ``model``. A Sequential then runs each Linear followed by a ReLU as one
    fused op, and Linear, ReLU, Linear as the fused MLP.

    The swap is made in place, by changing each such module's class to its twin (which adds
    nothing but ``forward``): the module object stays the same, and with it everything it holds,
    the very same ``Parameter`` objects (so an optimizer built before still updates them),
    ``state_dict`` keys and values, hooks and their handles, the training flag, and ``print(model)``.
    Subclasses of those torch modules are left unchanged.
    """
    for module in model.modules():
        twin = _REPLACEMENTS.get(type(module))
        if twin is not None:
            module.__class__ = twin
    return model
