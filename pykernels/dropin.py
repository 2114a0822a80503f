"""Drop-in mode: run unmodified torch code on pykernels.

``with pykernels.dropin.enable():`` (``pykernels.enable()`` where the package exports it) routes,
for the duration of the block and on the current thread, every torch call that pykernels covers
to pykernels: functions (``torch.mm``, ``torch.add``, ``torch.clamp(x, min=0)``, ...), Tensor
methods (``x.mm(w)``, ``x.pow(2).sum()``, ...), operators (``@ + - * / ** -x`` and the in-place
``+= -= *= /=``), ``torch.nn.functional.linear / relu / mse_loss`` (hence ``nn.Linear``,
``nn.ReLU``, ``nn.MSELoss``) and the arithmetic of ``torch.optim`` (the per-tensor ``add_``,
``lerp_``, ``addcmul_``, ``addcdiv_``, ``sqrt`` ... and the ``torch._foreach_*`` forms).
Backward follows: a routed call records pykernels' autograd Function, whose backward runs on
pykernels kernels. Everything else falls through to torch unchanged, and so does a covered call
whose arguments pykernels does not take (an ``out=`` where it has none, a tensor exponent, a
complex or sparse tensor, a device without a pykernels backend, a tensor subclass) or on which
pykernels raises (torch then runs it, and raises its own error if it is one).

It is built on torch's own mechanism, a ``torch.overrides.TorchFunctionMode``; torch is not
patched. What it cannot see: work the autograd engine does in C++ by itself (summing the
gradients of a tensor used twice, and accumulating into a ``.grad`` that already exists, e.g.
after ``w.grad.zero_()`` rather than ``w.grad = None`` / ``optimizer.zero_grad()``), calls made on
other threads, and TorchScript code (``torch.compile`` with the mode on is untested).

``enable(report=True)`` prints, when the block exits, a table of the torch calls that were routed
and of those that fell through, with counts. ``python -m pykernels run SCRIPT [ARGS...]`` runs a
script under the mode and prints that table to stderr.
"""
import collections
import inspect
import os
import runpy
import sys
import traceback

import torch
from torch.overrides import TorchFunctionMode, resolve_name

from . import _C, _compat
from . import nn as _nn
from . import _api as pk
from .autograd import scalar_like, sum_to

_ops = torch.ops.pykernels

__all__ = ["DropIn", "enable", "run_script"]

_T = torch.Tensor
_F = torch.nn.functional

# What pykernels' kernels take (the dtypes its test suite checks against torch).
_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int32, torch.int64,
           torch.bool}
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _backends():
    from . import build_info  # the package is fully imported by the time a call is routed

    return {b.lower() for b in build_info().get("backends", ["CPU"])}


_DEVICES = None  # device types with a pykernels backend, e.g. {"cpu"}; looked up on first use


class _FallThrough(Exception):
    """A covered function called with arguments pykernels does not take: torch runs it."""


class _AfterMutation(Exception):
    """A ``_foreach_*_`` call failed after updating some of its tensors: no fall-through possible."""


def _need(condition, why="arguments"):
    if not condition:
        raise _FallThrough(why)


def _is_tensor(x):
    return isinstance(x, torch.Tensor)


def _is_number(x):
    return isinstance(x, (bool, int, float))


def _is_operand(x):
    return _is_tensor(x) or _is_number(x)


def _is_zero(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def _unsupported(value):
    """Why pykernels cannot take this argument (a string), or None if it can."""
    if isinstance(value, torch.Tensor):
        return _unsupported_tensor(value)
    if isinstance(value, complex):
        return "complex number"
    if isinstance(value, (list, tuple)):
        # Every routed call's arguments come here: plain tensors and numbers, the usual items,
        # take no recursive call.
        for item in value:
            if isinstance(item, torch.Tensor):
                why = _unsupported_tensor(item)
            elif isinstance(item, (list, tuple, complex)):
                why = _unsupported(item)
            else:
                continue
            if why:
                return why
    return None


def _unsupported_tensor(t):
    if type(t) not in _PLAIN_TYPES:
        return f"{type(t).__name__} argument"
    if t.layout is not torch.strided:
        return f"{t.layout} tensor"
    if t.dtype not in _DTYPES:
        return f"{t.dtype} tensor"
    if t.is_cpu:  # (is_cpu is cheaper than building t.device)
        return None
    global _DEVICES
    if _DEVICES is None:
        _DEVICES = _backends()
    if t.device.type not in _DEVICES:
        return f"{t.device.type} tensor"
    return None


class _Assign(torch.autograd.Function):
    """``target.copy_(value)`` as the last step of an in-place op computed out of place: the
    gradient goes to ``value`` alone (``target``'s old value is overwritten), so nothing is summed."""

    @staticmethod
    def forward(ctx, target, value):
        target.copy_(value)
        ctx.mark_dirty(target)
        return target

    @staticmethod
    def backward(ctx, grad):
        return None, grad


def _assign(self, result):
    """Ends an in-place op computed out of place: ``self`` takes ``result``'s values. autograd's
    rules for an in-place write are checked first: a Function checks them only after its forward
    has written."""
    _need(result.dtype == self.dtype and result.shape == self.shape, "result does not fit in place")
    _C.api.check_inplace(self, self.requires_grad or result.requires_grad)
    _Assign.apply(self, result)
    return self


def _in_place(self, fn):
    """``self`` takes ``fn(self)``. When autograd records it, fn sees a copy of self, since what fn
    saves for backward must not be the tensor about to be overwritten."""
    source = self.clone() if torch.is_grad_enabled() and self.requires_grad else self
    return _assign(self, fn(source))


# ---- the routing table: torch function -> handler ------------------------------------------------
#
# Each handler takes the arguments its torch function takes, with the same names and defaults
# (a call whose arguments do not fit the handler's signature falls through), and either
# computes the result with pykernels or raises _FallThrough.

_HANDLERS = {}
# Functions without a handler, by kind, filled in as they are first seen.
_OTHERS = {}
_TORCH_ONLY, _PYKERNELS_OP = "torch only", "pykernels op"


def _route(*funcs):
    def register(handler):
        signature = inspect.signature(handler)
        for func in funcs:
            if func is not None:
                _HANDLERS[func] = (handler, signature)
        return handler

    return register


def _torch(*names):
    return [getattr(torch, n, None) for n in names]


def _tensor(*names):
    return [getattr(_T, n, None) for n in names]


# matmul family

@_route(*_torch("mm"), *_tensor("mm"))
def _mm(input, mat2, *, out=None):
    _need(out is None and _is_tensor(input) and _is_tensor(mat2))
    return pk.mm(input, mat2)


@_route(*_torch("bmm"), *_tensor("bmm"))
def _bmm(input, mat2, *, out=None):
    _need(out is None and _is_tensor(input) and _is_tensor(mat2))
    return pk.bmm(input, mat2)


@_route(*_torch("matmul"), *_tensor("matmul", "__matmul__"))
def _matmul(input, other, *, out=None):
    _need(out is None and _is_tensor(input) and _is_tensor(other))
    return pk.matmul(input, other)


@_route(*_tensor("__rmatmul__"))
def _rmatmul(self, other):
    _need(_is_tensor(other))
    return pk.matmul(other, self)


@_route(*_torch("mv"), *_tensor("mv"))
def _mv(input, vec, *, out=None):
    _need(out is None and _is_tensor(input) and _is_tensor(vec) and input.dim() == 2 and vec.dim() == 1)
    return pk.matmul(input, vec)


@_route(*_torch("dot"), *_tensor("dot"))
def _dot(input, tensor, *, out=None):
    _need(out is None and _is_tensor(input) and _is_tensor(tensor) and input.dim() == 1 and tensor.dim() == 1
          and input.dtype == tensor.dtype)
    return pk.matmul(input, tensor)


@_route(*_torch("addmm"), *_tensor("addmm"))
def _addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    _need(out is None and all(map(_is_tensor, (input, mat1, mat2))) and _is_number(beta) and _is_number(alpha))
    product = pk.mm(mat1, mat2)
    if alpha != 1:
        product = pk.mul(product, alpha)
    if beta == 0:  # torch ignores input then (NaN and inf in it included), only its shape counts
        return pk.add(product, pk.mul(input, 0)) if input.shape != product.shape else product
    return pk.add(product, input, alpha=beta)


@_route(_F.linear)
def _linear(input, weight, bias=None):
    _need(_is_tensor(input) and _is_tensor(weight) and (bias is None or _is_tensor(bias)))
    return _nn.linear(input, weight, bias)


# elementwise

@_route(*_torch("add"), *_tensor("add", "__add__", "__radd__"))
def _add(input, other, *, alpha=1, out=None):
    _need(_is_tensor(input) and _is_operand(other) and _is_number(alpha))
    return pk.add(input, other, alpha=alpha, out=out)


@_route(*_torch("sub", "subtract"), *_tensor("sub", "subtract", "__sub__"))
def _sub(input, other, *, alpha=1, out=None):
    _need(_is_tensor(input) and _is_operand(other) and _is_number(alpha))
    return pk.sub(input, other, alpha=alpha, out=out)


@_route(*_torch("rsub"))
def _rsub(input, other, *, alpha=1):
    _need(_is_tensor(input) and _is_operand(other) and _is_number(alpha))
    return pk.sub(other, input, alpha=alpha)


@_route(*_tensor("__rsub__"))
def _rsub_operator(self, other):
    _need(_is_tensor(self) and _is_operand(other))
    return pk.sub(other, self)


@_route(*_torch("mul", "multiply"), *_tensor("mul", "multiply", "__mul__", "__rmul__"))
def _mul(input, other, *, out=None):
    _need(_is_tensor(input) and _is_operand(other))
    return pk.mul(input, other, out=out)


@_route(*_torch("div", "divide"), *_tensor("div", "divide"))
def _div(input, other, *, rounding_mode=None, out=None):
    _need(_is_tensor(input) and _is_operand(other))
    return pk.div(input, other, rounding_mode=rounding_mode, out=out)


@_route(*_torch("true_divide"), *_tensor("true_divide", "__truediv__", "__div__"))
def _true_divide(input, other, *, out=None):
    _need(_is_tensor(input) and _is_operand(other))
    return pk.div(input, other, out=out)


@_route(*_tensor("__rtruediv__", "__rdiv__"))
def _rdiv_operator(self, other):
    _need(_is_tensor(self) and _is_operand(other))
    return pk.div(other, self)


@_route(*_torch("neg", "negative"), *_tensor("neg", "negative", "__neg__"))
def _neg(input, *, out=None):
    _need(_is_tensor(input))
    return pk.neg(input, out=out)


# In place: the tensor itself is returned (pykernels' in-place Function hands back a detached alias
# of a tensor that requires grad under no_grad; `w -= ...` must leave `w` the Parameter it was).

@_route(*_tensor("add_", "__iadd__"))
def _add_(self, other, *, alpha=1):
    _need(_is_tensor(self) and _is_operand(other) and _is_number(alpha))
    pk.add_(self, other, alpha=alpha)
    return self


@_route(*_tensor("sub_", "subtract_", "__isub__"))
def _sub_(self, other, *, alpha=1):
    _need(_is_tensor(self) and _is_operand(other) and _is_number(alpha))
    pk.sub_(self, other, alpha=alpha)
    return self


@_route(*_tensor("mul_", "multiply_", "__imul__"))
def _mul_(self, other):
    _need(_is_tensor(self) and _is_operand(other))
    pk.mul_(self, other)
    return self


@_route(*_tensor("div_", "divide_"))
def _div_(self, other, *, rounding_mode=None):
    _need(_is_tensor(self) and _is_operand(other))
    pk.div_(self, other, rounding_mode=rounding_mode)
    return self


@_route(*_tensor("true_divide_", "__itruediv__", "__idiv__"))
def _true_divide_(self, other):
    _need(_is_tensor(self) and _is_operand(other))
    pk.div_(self, other)
    return self


@_route(*_torch("neg_", "negative_"), *_tensor("neg_", "negative_"))
def _neg_(input):
    _need(_is_tensor(input))
    pk.neg_(input)
    return input


def _exponent(x):
    return _is_number(x) and not isinstance(x, bool)


@_route(*_torch("pow"), *_tensor("pow", "__pow__"))
def _pow(input, exponent, *, out=None):
    _need(out is None and _is_tensor(input) and _exponent(exponent), "tensor exponent")
    return pk.pow(input, exponent)


@_route(*_tensor("pow_", "__ipow__"))
def _pow_(self, exponent):
    _need(_is_tensor(self) and _exponent(exponent), "tensor exponent")
    return _in_place(self, lambda x: pk.pow(x, exponent))


@_route(*_torch("square"), *_tensor("square"))
def _square(input, *, out=None):
    _need(out is None and _is_tensor(input) and input.dtype != torch.bool)
    return pk.pow(input, 2)


@_route(*_tensor("square_"))
def _square_(self):
    _need(_is_tensor(self) and self.dtype != torch.bool)
    return _in_place(self, lambda x: pk.pow(x, 2))


def _unary(name):
    fn = getattr(pk, name)

    @_route(*_torch(name), *_tensor(name))
    def out_of_place(input, *, out=None):
        _need(out is None and _is_tensor(input))
        return fn(input)

    @_route(*_torch(name + "_"), *_tensor(name + "_"))
    def in_place(input):
        _need(_is_tensor(input))
        return _in_place(input, fn)


for _name in ("exp", "log", "sqrt"):
    _unary(_name)


# lerp / addcmul / addcdiv: what torch.optim's Adam, AdamW, SGD with momentum ... are made of

def _lerp_check(input, end, weight):
    _need(_is_tensor(input) and _is_tensor(end) and _is_number(weight) and input.is_floating_point()
          and end.dtype == input.dtype)


def _lerp_value(input, end, weight):
    diff = _ops.sub(end, input)
    # torch's two-sided formula, exact at both ends.
    if abs(weight) < 0.5:
        return _ops.add(input, diff, alpha=weight)
    return _ops.sub(end, diff, alpha=1 - weight)


class _Lerp(torch.autograd.Function):
    """``input + weight * (end - input)``; a Function of its own so that ``input``, which the
    formula reads twice, gets one gradient (``grad * (1 - weight)``) rather than two to be summed."""

    @staticmethod
    def forward(ctx, input, end, weight):
        ctx.weight, ctx.shapes = weight, (input.shape, end.shape)
        return _lerp_value(input, end, weight)

    @staticmethod
    def backward(ctx, grad):
        w = ctx.weight
        g_input = sum_to(_ops.mul(grad, scalar_like(1 - w, grad)), ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        g_end = sum_to(_ops.mul(grad, scalar_like(w, grad)), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return g_input, g_end, None


@_route(*_torch("lerp"), *_tensor("lerp"))
def _lerp(input, end, weight, *, out=None):
    _lerp_check(input, end, weight)
    _need(out is None)
    return _Lerp.apply(input, end, weight)


@_route(*_tensor("lerp_"))
def _lerp_(self, end, weight):
    _lerp_check(self, end, weight)
    _need(torch.broadcast_shapes(self.shape, end.shape) == self.shape, "end does not fit in place")
    if torch.is_grad_enabled() and (self.requires_grad or end.requires_grad):
        return _assign(self, _Lerp.apply(self, end, weight))
    if abs(weight) < 0.5:  # the optimizers' case: no_grad, small weight, straight into self
        _ops.add_(self, _ops.sub(end, self), alpha=weight)
        return self
    return _assign(self, _lerp_value(self, end, weight))


def _addc_check(input, tensor1, tensor2, value):
    _need(all(map(_is_tensor, (input, tensor1, tensor2))) and _is_number(value))


def _addcmul_term(tensor1, tensor2, value):
    # torch computes self + value * t1 * t2, left to right.
    return pk.mul(pk.mul(tensor1, value) if value != 1 else tensor1, tensor2)


@_route(*_torch("addcmul"), *_tensor("addcmul"))
def _addcmul(input, tensor1, tensor2, *, value=1, out=None):
    _addc_check(input, tensor1, tensor2, value)
    _need(out is None)
    return pk.add(input, _addcmul_term(tensor1, tensor2, value))


@_route(*_tensor("addcmul_"))
def _addcmul_(self, tensor1, tensor2, *, value=1):
    _addc_check(self, tensor1, tensor2, value)
    pk.add_(self, _addcmul_term(tensor1, tensor2, value))
    return self


def _addcdiv_check(input, tensor1, tensor2, value):
    _addc_check(input, tensor1, tensor2, value)
    _need(tensor1.is_floating_point() or tensor2.is_floating_point(), "integer addcdiv")


@_route(*_torch("addcdiv"), *_tensor("addcdiv"))
def _addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    _addcdiv_check(input, tensor1, tensor2, value)
    _need(out is None)
    return pk.add(input, pk.div(tensor1, tensor2), alpha=value)


@_route(*_tensor("addcdiv_"))
def _addcdiv_(self, tensor1, tensor2, *, value=1):
    _addcdiv_check(self, tensor1, tensor2, value)
    pk.add_(self, pk.div(tensor1, tensor2), alpha=value)
    return self


# reductions

def _reduce_args(dim, keepdim, axis, out):
    _need(out is None and isinstance(keepdim, bool))
    if axis is not None:
        _need(dim is None)
        dim = axis
    _need(dim is None or isinstance(dim, int)
          or (isinstance(dim, (list, tuple)) and all(isinstance(d, int) for d in dim)), "named dimensions")
    return dim


@_route(*_torch("sum"), *_tensor("sum"))
def _sum(input, dim=None, keepdim=False, *, dtype=None, out=None, axis=None):
    _need(_is_tensor(input))
    return pk.sum(input, _reduce_args(dim, keepdim, axis, out), keepdim, dtype=dtype)


@_route(*_torch("mean"), *_tensor("mean"))
def _mean(input, dim=None, keepdim=False, *, dtype=None, out=None, axis=None):
    _need(_is_tensor(input))
    return pk.mean(input, _reduce_args(dim, keepdim, axis, out), keepdim, dtype=dtype)


# ReLU, and clamp(min=0) which is ReLU

def _relu_input(input):
    _need(_is_tensor(input) and input.dtype != torch.bool)


@_route(*_torch("relu"), *_tensor("relu"))
def _relu(input):
    _relu_input(input)
    return pk.relu(input)


@_route(*_torch("relu_"), *_tensor("relu_"), _F.relu_)
def _relu_(input):
    _relu_input(input)
    pk.relu_(input)
    return input


@_route(_F.relu)
def _functional_relu(input, inplace=False):
    return _relu_(input) if inplace else _relu(input)


def _is_relu_clamp(input, min, max):
    # clamp(x, min=0) of an integer tensor by a float 0.0 promotes to float: that is not relu.
    _relu_input(input)
    _need(max is None and _is_zero(min) and (input.is_floating_point() or isinstance(min, int)),
          "clamp other than min=0")


def _clamp_min_zero(input):
    # torch's clamp lets no gradient through at x == min (as relu at 0): relu is clamp(min=0) backward too.
    return pk.relu(input)


def _clamp_min_zero_(input):
    pk.relu_(input)
    return input


@_route(*_torch("clamp", "clip"), *_tensor("clamp", "clip"))
def _clamp(input, min=None, max=None, *, out=None):
    _need(out is None)
    _is_relu_clamp(input, min, max)
    return _clamp_min_zero(input)


@_route(*_torch("clamp_", "clip_"), *_tensor("clamp_", "clip_"))
def _clamp_(input, min=None, max=None):
    _is_relu_clamp(input, min, max)
    return _clamp_min_zero_(input)


@_route(*_torch("clamp_min"), *_tensor("clamp_min"))
def _clamp_min(input, min, *, out=None):
    _need(out is None)
    _is_relu_clamp(input, min, None)
    return _clamp_min_zero(input)


@_route(*_torch("clamp_min_"), *_tensor("clamp_min_"))
def _clamp_min_(input, min):
    _is_relu_clamp(input, min, None)
    return _clamp_min_zero_(input)


# MSE loss

@_route(_F.mse_loss)
def _mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _need(weight is None and _is_tensor(input) and _is_tensor(target), "weighted mse_loss")
    return pk.mse_loss(input, target, size_average, reduce, reduction)


# torch._foreach_*: the per-tensor handler on each element, lists taken element by element

def _element(arg, i, n):
    if isinstance(arg, (list, tuple)):
        _need(len(arg) == n, "list lengths differ")
        return arg[i]
    return arg


def _foreach(name):
    func = getattr(torch, "_foreach_" + name, None)
    element = _HANDLERS.get(getattr(_T, name, None))
    if func is None or element is None:
        return
    handler, signature = element
    in_place = name.endswith("_")
    value_positional = name.rstrip("_") in ("addcmul", "addcdiv")

    def foreach(self, *args, **kwargs):
        _need(isinstance(self, (list, tuple)) and all(map(_is_tensor, self)))
        if value_positional and len(args) == 3:  # _foreach_addcmul_(self, t1, t2, scalar | scalars)
            args, kwargs = args[:2], dict(kwargs, value=args[2])
        n = len(self)
        calls = []
        for i in range(n):
            try:
                bound = signature.bind(self[i], *(_element(a, i, n) for a in args),
                                       **{k: _element(v, i, n) for k, v in kwargs.items()})
            except TypeError:
                raise _FallThrough("arguments") from None
            calls.append(bound)
        if in_place and torch.is_grad_enabled():
            # autograd's rules for every element before the first write, as torch's own foreach
            # ops check them (other errors, such as a shape mismatch, surface per element there too).
            for bound in calls:
                values = (*bound.args, *bound.kwargs.values())
                _C.api.check_inplace(bound.args[0], any(_is_tensor(v) and v.requires_grad for v in values))
        results = []
        for i, bound in enumerate(calls):
            try:
                results.append(handler(*bound.args, **bound.kwargs))
            except Exception as exc:
                if in_place and i > 0:
                    raise _AfterMutation(f"torch._foreach_{name}: element {i}") from exc
                raise
        return None if in_place else results

    _HANDLERS[func] = (foreach, None)


for _name in ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "lerp", "addcmul", "addcdiv"):
    _foreach(_name)
    _foreach(_name + "_")


# ---- the mode -------------------------------------------------------------------------------------

_NAMES = {}


def _name(func):
    """A readable name for a torch callable: 'torch.Tensor.add', 'torch.nn.functional.relu' ..."""
    try:
        return _NAMES[func]
    except (KeyError, TypeError):
        pass
    name = None
    short = getattr(func, "__name__", None)
    if _is_pykernels_op(func):
        name = f"torch.ops.{func}"
    elif isinstance(short, str):
        # By the object's own name first: resolve_name can give an alias (torch.mm -> 'torch.spmm').
        for prefix, namespace in (("torch.Tensor", _T), ("torch", torch), ("torch.nn.functional", _F)):
            if getattr(namespace, short, None) is func:
                name = f"{prefix}.{short}"
                break
    if name is None:
        try:
            name = resolve_name(func)
        except Exception:  # noqa: BLE001 - naming is best effort
            pass
    if name is None:
        module = getattr(func, "__module__", None)
        qualname = getattr(func, "__qualname__", None) or short or repr(func)
        name = f"{module}.{qualname}" if module else qualname
    try:
        _NAMES[func] = name
    except TypeError:
        pass
    return name


def _is_pykernels_op(func):
    return isinstance(func, (_compat.OpOverload, _compat.OpOverloadPacket)) and str(func).startswith(
        "pykernels.")


def _is_attribute(name):
    return name.endswith(".__get__") or name.endswith(".__set__") or name.endswith(".__delete__")


class DropIn(TorchFunctionMode):
    """The drop-in mode. Use it through ``enable()``; it counts what it routes and what falls through.

    ``routed`` and ``fell_through`` are ``collections.Counter``s of calls by torch function name
    (``'torch.Tensor.mm'``, ...); ``report()`` formats them as a table.
    """

    def __init__(self, report=False, file=None):
        super().__init__()
        self._report = report
        self._file = file
        self._routed = collections.Counter()  # func -> calls
        self._fell = collections.Counter()  # (func, reason) -> calls
        self._plain = {}  # func -> calls that fell through for want of a handler (reason None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # torch runs this with the mode taken off its stack, so the calls made here (pykernels',
        # torch's) are not seen by it again.
        try:
            entry = _HANDLERS.get(func, False) or _OTHERS.get(func)
        except TypeError:  # an unhashable callable
            entry = None
        if entry is None:  # first sight of a function without a handler: which kind is it
            entry = _PYKERNELS_OP if _is_pykernels_op(func) else _TORCH_ONLY
            try:
                _OTHERS[func] = entry
            except TypeError:
                pass
        if entry is _TORCH_ONLY:  # attribute reads and the like: the most frequent calls, kept cheap
            plain = self._plain
            plain[func] = plain.get(func, 0) + 1
            return func(*args, **kwargs) if kwargs else func(*args)
        kwargs = kwargs or {}
        if entry is _PYKERNELS_OP:  # pykernels' own ops, called from a handler's pykernels code
            self._routed[func] += 1
            return func(*args, **kwargs)
        handler = entry[0]
        reason = _unsupported(args) or (_unsupported(tuple(kwargs.values())) if kwargs else None)
        if reason is None:
            try:
                try:
                    result = handler(*args, **kwargs)
                except TypeError as exc:
                    # Raised by the call itself, before the handler ran (no frame of its own in the
                    # traceback): the arguments do not fit the handler's signature.
                    if exc.__traceback__.tb_next is None:
                        raise _FallThrough("arguments") from None
                    raise
            except _FallThrough as exc:
                reason = str(exc)
            except _AfterMutation as exc:
                raise exc.__cause__ from None
            except Exception as exc:  # noqa: BLE001 - torch runs it, and raises its own error if it is one
                reason = f"pykernels raised {type(exc).__name__}"
            else:
                self._routed[func] += 1
                return result
        self._fell[(func, reason)] += 1
        return func(*args, **kwargs)

    # -- results --------------------------------------------------------------------------------------

    def _fall_throughs(self):
        """((func, reason or None), calls) for every call torch ran."""
        yield from self._fell.items()
        for func, n in self._plain.items():
            yield (func, None), n

    @property
    def routed(self):
        """Calls routed to pykernels, by torch function name."""
        counts = collections.Counter()
        for func, n in self._routed.items():
            counts[_name(func)] += n
        return counts

    @property
    def fell_through(self):
        """Calls that torch ran, by torch function name (attribute reads and writes included)."""
        counts = collections.Counter()
        for (func, _), n in self._fall_throughs():
            counts[_name(func)] += n
        return counts

    def fell_through_reasons(self):
        """{(torch function name, reason): calls} for covered functions that fell through."""
        counts = collections.Counter()
        for (func, reason), n in self._fall_throughs():
            if reason is not None:
                counts[(_name(func), reason)] += n
        return counts

    def report(self):
        """The routing table, as text."""
        routed = self.routed
        fell = collections.Counter()
        attributes = 0
        for (func, reason), n in self._fall_throughs():
            name = _name(func)
            if _is_attribute(name):
                attributes += n
                continue
            fell[name + (f"  [covered, but {reason}]" if reason else "")] += n
        rows = [(name, n) for name, n in sorted(routed.items(), key=lambda kv: (-kv[1], kv[0]))]
        fell_rows = [(name, n) for name, n in sorted(fell.items(), key=lambda kv: (-kv[1], kv[0]))]
        width = max([len(name) for name, _ in rows + fell_rows] + [40])
        total_routed, total_fell = sum(routed.values()), sum(fell.values())
        lines = [f"pykernels drop-in report: {total_routed} torch calls routed to pykernels, "
                 f"{total_fell} fell through to torch"]
        lines.append(f"  {'routed to pykernels':<{width}}  {'calls':>9}")
        lines += [f"    {name:<{width - 2}}  {n:>9}" for name, n in rows] or ["    (none)"]
        lines.append(f"  {'fell through to torch':<{width}}  {'calls':>9}")
        lines += [f"    {name:<{width - 2}}  {n:>9}" for name, n in fell_rows] or ["    (none)"]
        if attributes:
            lines.append(f"  (not listed: {attributes} tensor attribute reads and writes, e.g. x.shape, w.grad)")
        return "\n".join(lines)

    def __exit__(self, exc_type, exc_value, tb):
        result = super().__exit__(exc_type, exc_value, tb)
        if self._report:
            print(self.report(), file=self._file or sys.stderr, flush=True)
        return result


def enable(report=False, file=None):
    """A context manager that routes the torch calls pykernels covers to pykernels for its duration.

    ``with pykernels.dropin.enable(): ...`` -- unmodified torch code, forward and backward, on
    pykernels. ``report=True`` prints the routing table (to ``file``, default stderr) when the
    block exits; the returned mode object also has ``routed``, ``fell_through`` and ``report()``.
    """
    return DropIn(report=report, file=file)


# ---- python -m pykernels run ------------------------------------------------------------------------


def _exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


# Where the frames of the machinery that runs a script come from.
_LAUNCHER_FILES = {__file__, runpy.__file__, "<frozen runpy>"}


def _print_script_traceback(exc):
    """Print ``exc`` as ``python script.py`` would: from the script's frames on, without the frames
    of this module and of runpy that ran it (none are left for a SyntaxError in the script)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _LAUNCHER_FILES:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def run_script(target, argv=(), *, module=False, report=True, file=None):
    """Run a script (or, with ``module=True``, a module as ``python -m`` does) under the drop-in
    mode, as its own ``__main__`` with ``sys.argv = [target, *argv]``; returns its exit status, as
    ``python`` would give it (1 after an uncaught exception, whose traceback shows the script's frames).

    Then, unless ``report=False``, print the routing report (to ``file``, default stderr), whether the
    script returned, called ``sys.exit`` or raised; but not when it made no torch call at all, as when
    it stopped at its own ``--help`` or a usage error: there is nothing to report then.
    """
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    mode = DropIn()
    status = 0
    try:
        sys.argv = [target, *argv]  # for a module, runpy puts the module's file in argv[0]
        if module:
            run = lambda: runpy.run_module(target, run_name="__main__", alter_sys=True)  # noqa: E731
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            run = lambda: runpy.run_path(target, run_name="__main__")  # noqa: E731
        with mode:
            run()
    except SystemExit as exc:
        status = _exit_status(exc)
    except KeyboardInterrupt as exc:
        _print_script_traceback(exc)
        status = 130
    except BaseException as exc:  # noqa: BLE001 - reported as python reports an uncaught exception
        _print_script_traceback(exc)
        status = 1
    finally:
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path
        try:
            sys.stdout.flush()  # the script's output first
        except (OSError, ValueError):  # the script closed or broke stdout
            pass
        if report and (mode.routed or mode.fell_through):
            print(mode.report(), file=file or sys.stderr, flush=True)
    return status
