"""The public API: functions named, called and behaving like torch's.

Each function accepts what its torch namesake accepts (Python numbers where torch takes them,
``out=``, ``alpha=``, ``dim``/``keepdim``/``dtype``), applies torch's type promotion, and runs
on pykernels kernels through the autograd Functions in ``pykernels.autograd``.
"""
import numbers
import warnings

import torch

from . import _compat
from . import autograd as F


_Reductions = {"none": 0, "mean": 1, "sum": 2}


def _as_tensors(op, input, other, true_div=False):
    """Turns a Python number on either side into a 0-dim tensor (see ``_wrap``)."""
    input_is_tensor, other_is_tensor = isinstance(input, torch.Tensor), isinstance(other, torch.Tensor)
    if input_is_tensor and other_is_tensor:
        return input, other
    if not (input_is_tensor or other_is_tensor):
        raise TypeError(f"pykernels.{op}(): expected at least one tensor argument, got "
                        f"{type(input).__name__} and {type(other).__name__}")
    tensor = input if input_is_tensor else other
    number = other if input_is_tensor else input
    if not isinstance(number, (numbers.Number, torch.SymInt, torch.SymFloat, torch.SymBool)):
        raise TypeError(f"pykernels.{op}(): expected a tensor or a number, got {type(number).__name__}")
    wrapped = _wrap(number, tensor, true_div)
    return (input, wrapped) if input_is_tensor else (wrapped, other)


def _wrap(number, tensor, true_div=False):
    """A 0-dim tensor for a Python number beside ``tensor``, such that the op's own type
    promotion gives torch's result for a "wrapped number".

    torch's rule: a number never raises a tensor's dtype within its category; an int beside a bool
    tensor gives int64, a float beside a bool or integer tensor gives the default dtype. The
    0-dim tensor gets that result dtype, which keeps the result right even when ``tensor`` is
    0-dim too. Integers are reduced modulo the dtype's range, as torch's integer arithmetic does;
    true division keeps them exact in int64 (it computes in floating point anyway).
    """
    if isinstance(number, bool):
        dtype = torch.bool  # the lowest dtype: never promotes, and bool-only errors still apply
    elif isinstance(number, int):
        dtype = torch.int64 if tensor.dtype == torch.bool or true_div else tensor.dtype
        if not (dtype.is_floating_point or dtype.is_complex):
            info = torch.iinfo(dtype)
            span = info.max - info.min + 1
            number = (number - info.min) % span + info.min
    elif tensor.dtype.is_floating_point or tensor.dtype.is_complex:
        dtype = torch.float64 if tensor.dim() > 0 else tensor.dtype
    else:
        dtype = torch.get_default_dtype()
    return torch.full((), number, dtype=dtype, device=tensor.device)


def _alpha(op, alpha):
    """``alpha`` as torch's bindings take a number: a Python number as is, a numpy number or a
    0-dim tensor as the Python number it holds (the ops' schema takes Python numbers only).
    torch reads a numpy bool as a float, so it becomes one here too."""
    if alpha.__class__ in (int, float, bool):
        return alpha
    if isinstance(alpha, torch.Tensor):
        if alpha.dim() != 0:
            raise TypeError(f"pykernels.{op}(): argument 'alpha' must be Number, not Tensor")
        return alpha.item()
    if type(alpha).__module__ == "numpy" and hasattr(alpha, "item"):
        value = alpha.item()
        return float(value) if isinstance(value, bool) else value
    return alpha


# ---- matmul family ----------------------------------------------------------------------------------


def mm(input, mat2):
    """Matrix product of two 2-D tensors, like ``torch.mm``."""
    return F.MM.run(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of two 3-D tensors, like ``torch.bmm``."""
    return F.BMM.run(input, mat2)


def matmul(input, other):
    """Matrix product with ``torch.matmul``'s rules for 1-D operands and broadcast batch dims."""
    return F.MatMul.run(input, other)


# ---- elementwise ---------------------------------------------------------------------------------------


def add(input, other, *, alpha=1, out=None):
    """``input + alpha * other``, like ``torch.add``; either side may be a Python number."""
    a, b = _as_tensors("add", input, other)
    alpha = _alpha("add", alpha)
    if out is not None:
        F.run_mutating["add.out"](a, b, alpha, out)
        return out
    return F.Add.run(a, b, alpha)


def sub(input, other, *, alpha=1, out=None):
    """``input - alpha * other``, like ``torch.sub``."""
    a, b = _as_tensors("sub", input, other)
    alpha = _alpha("sub", alpha)
    if out is not None:
        F.run_mutating["sub.out"](a, b, alpha, out)
        return out
    return F.Sub.run(a, b, alpha)


def mul(input, other, *, out=None):
    """Elementwise product, like ``torch.mul``."""
    a, b = _as_tensors("mul", input, other)
    if out is not None:
        F.run_mutating["mul.out"](a, b, out)
        return out
    return F.Mul.run(a, b)


def div(input, other, *, rounding_mode=None, out=None):
    """Division like ``torch.div``: true division (integers give floats), or 'trunc' / 'floor'."""
    a, b = _as_tensors("div", input, other, true_div=rounding_mode is None)
    if out is not None:
        F.run_mutating["div.out"](a, b, rounding_mode, out)
        return out
    return F.Div.run(a, b, rounding_mode)


def neg(input, *, out=None):
    """``-input``, like ``torch.neg``."""
    if out is not None:
        F.run_mutating["neg.out"](input, out)
        return out
    return F.Neg.run(input)


def _functorch_inplace(op, input, result):
    """An in-place op under a torch.func transform: ``result`` (the functional op's) copied back
    into ``input``, with the in-place op's checks. Transforms need autograd.Functions with
    setup_context, which cannot clone an input before the forward mutates it; torch's copy_
    moves the data and lets the transform see the mutation."""
    if result.shape != input.shape:
        raise RuntimeError(f"pykernels.{op}_: output with shape {list(input.shape)} doesn't match the "
                           f"broadcast shape {list(result.shape)}")
    if not torch.can_cast(result.dtype, input.dtype):
        raise RuntimeError(f"pykernels.{op}_: result type {_type_name(result.dtype)} can't be cast to the "
                           f"desired output type {_type_name(input.dtype)}")
    return input.copy_(result)


def _type_name(dtype):
    """torch's name for a dtype in messages: Float, Long, ..."""
    return torch.empty((), dtype=dtype, device="meta").type().split(".")[-1].replace("Tensor", "")


_FUNCTIONAL = {"add": lambda a, b, x: F.Add.run(a, b, x), "sub": lambda a, b, x: F.Sub.run(a, b, x),
               "mul": lambda a, b, x: F.Mul.run(a, b), "div": lambda a, b, x: F.Div.run(a, b, x)}


def _inplace(op, input, other, extra, true_div=False):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"pykernels.{op}_(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if not isinstance(other, torch.Tensor):
        # A number keeps its wrapped-number rank: it cannot promote self (int.add_(2.5) fails, as in torch).
        other = _wrap(other, input, true_div)
    if F._functorch_active():
        # The functional op saves its operands for backward: give it a copy of the one that
        # copy_ is about to overwrite.
        a = input.clone()
        return _functorch_inplace(op, input, _FUNCTIONAL[op](a, a if other is input else other, extra))
    # The op's C++ autograd records the write when it must; the tensor itself is returned, so a
    # Parameter stays that Parameter.
    F.binary_inplace(op, input, other, extra)
    return input


def add_(input, other, *, alpha=1):
    """In-place ``input += alpha * other``, like ``Tensor.add_``."""
    return _inplace("add", input, other, _alpha("add_", alpha))


def sub_(input, other, *, alpha=1):
    """In-place ``input -= alpha * other``, like ``Tensor.sub_``."""
    return _inplace("sub", input, other, _alpha("sub_", alpha))


def mul_(input, other):
    """In-place ``input *= other``, like ``Tensor.mul_``."""
    return _inplace("mul", input, other, None)


def div_(input, other, *, rounding_mode=None):
    """In-place division, like ``Tensor.div_``."""
    return _inplace("div", input, other, rounding_mode, true_div=rounding_mode is None)


def neg_(input):
    """In-place negation, like ``Tensor.neg_``."""
    if F._functorch_active():
        return _functorch_inplace("neg", input, F.Neg.run(input))
    F.run_mutating["neg_"](input)
    return input


def pow(input, exponent):
    """``input ** exponent`` for a Python-number exponent, like ``torch.pow``."""
    if isinstance(exponent, torch.Tensor):
        raise TypeError("pykernels.pow(): only a Python number exponent is supported, got a Tensor")
    return F.Pow.run(input, exponent)


def exp(input):
    """Elementwise e**x, like ``torch.exp`` (integers give the default float dtype)."""
    return F.Exp.run(input)


def log(input):
    """Elementwise natural logarithm, like ``torch.log``."""
    return F.Log.run(input)


def sqrt(input):
    """Elementwise square root, like ``torch.sqrt``."""
    return F.Sqrt.run(input)


# ---- reductions -----------------------------------------------------------------------------------


def _dims(dim):
    if dim is None:
        return None
    return [dim] if isinstance(dim, int) else list(dim)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over all elements or over ``dim``, like ``torch.sum`` (integers sum to int64)."""
    return F.Sum.run(input, _dims(dim), keepdim, dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over all elements or over ``dim``, like ``torch.mean`` (floating dtypes only)."""
    return F.Mean.run(input, _dims(dim), keepdim, dtype)


# ---- ReLU and MSE loss ----------------------------------------------------------------------------


def relu(input):
    """``max(input, 0)`` elementwise, like ``torch.relu``."""
    return F.ReLU.run(input)


def relu_(input):
    """In-place ReLU, like ``torch.relu_``."""
    if F._functorch_active():
        return _functorch_inplace("relu", input, F.ReLU.run(input))
    F.run_mutating["relu_"](input)
    return input


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error, like ``torch.nn.functional.mse_loss``."""
    for argument, value in (("input", input), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"pykernels.mse_loss(): argument '{argument}' must be Tensor, not {type(value).__name__}")
    if size_average is not None or reduce is not None:
        reduction = _compat.legacy_reduction(size_average, reduce)
    if reduction not in _Reductions:
        raise ValueError(f"pykernels.mse_loss: {reduction} is not a valid value for reduction")
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=2,
        )
    return F.MSELoss.run(input, target, _Reductions[reduction])
