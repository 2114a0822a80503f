"""Public functions whose torch signature differs from their op's schema: the argument handling
torch does in Python for them, then the generated binding."""

import warnings

import torch

from . import _compat
from ._C import api as _api
from ._call import compiling, fallback, has_torch_function

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error, like ``torch.nn.functional.mse_loss``."""
    for argument, value in (("input", input), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"pykernels.mse_loss(): argument '{argument}' must be Tensor, not {type(value).__name__}")
    if size_average is not None or reduce is not None:
        reduction = _compat.legacy_reduction(size_average, reduce)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"pykernels.mse_loss: {reduction} is not a valid value for reduction")
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    if compiling() or has_torch_function((input, target)):
        return fallback("mse_loss", (input, target, _REDUCTIONS[reduction]), {})
    return _api.mse_loss(input, target, _REDUCTIONS[reduction])
