"""The drop-in mode's handlers: one per torch function (or family of aliases), which torch calls
routing.py sends here.

Each handler takes the arguments its torch functions take, with the same names and defaults (a
call whose arguments do not fit the handler's signature falls through), and either computes the
result with pykernels or raises ``FallThrough``; torch then runs the call itself. Handlers are
named after the torch function they handle, ``sum`` and ``pow`` included: in this module those
names are the handlers, not Python's builtins.
"""

import functools

import torch

from .. import _C
from .. import _api as pk

_ops = torch.ops.pykernels


class FallThrough(Exception):
    """A covered function called with arguments pykernels does not take: torch runs it."""


def need(condition, why="arguments"):
    if not condition:
        raise FallThrough(why)


def is_tensor(x):
    return isinstance(x, torch.Tensor)


def is_number(x):
    return isinstance(x, (bool, int, float))


def is_operand(x):
    return is_tensor(x) or is_number(x)


def is_zero(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


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
    need(result.dtype == self.dtype and result.shape == self.shape, "result does not fit in place")
    _C.api.check_inplace(self, self.requires_grad or result.requires_grad)
    _Assign.apply(self, result)
    return self


def _in_place(self, fn):
    """``self`` takes ``fn(self)``. When autograd records it, fn sees a copy of self, since what fn
    saves for backward must not be the tensor about to be overwritten."""
    source = self.clone() if torch.is_grad_enabled() and self.requires_grad else self
    return _assign(self, fn(source))


# ---- matmul family --------------------------------------------------------------------------------


def rmatmul(self, other):
    need(is_tensor(other))
    return pk.matmul(other, self)


def mv(input, vec, *, out=None):
    need(out is None and is_tensor(input) and is_tensor(vec) and input.dim() == 2 and vec.dim() == 1)
    return pk.matmul(input, vec)


def dot(input, tensor, *, out=None):
    need(
        out is None
        and is_tensor(input)
        and is_tensor(tensor)
        and input.dim() == 1
        and tensor.dim() == 1
        and input.dtype == tensor.dtype
    )
    return pk.matmul(input, tensor)


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    need(out is None and all(map(is_tensor, (input, mat1, mat2))) and is_number(beta) and is_number(alpha))
    product = pk.mm(mat1, mat2)
    if alpha != 1:
        product = pk.mul(product, alpha)
    if beta == 0:  # torch ignores input then (NaN and inf in it included), only its shape counts
        return pk.add(product, pk.mul(input, 0)) if input.shape != product.shape else product
    return pk.add(product, input, alpha=beta)


def linear(input, weight, bias=None):
    # pykernels' linear takes floating dtypes; torch's also integers.
    need(is_tensor(input) and is_tensor(weight) and (bias is None or is_tensor(bias)) and input.is_floating_point())
    return pk.linear(input, weight, bias)


# ---- elementwise ----------------------------------------------------------------------------------


def rsub(input, other, *, alpha=1):
    need(is_tensor(input) and is_operand(other) and is_number(alpha))
    return pk.sub(other, input, alpha=alpha)


def rsub_operator(self, other):
    need(is_tensor(self) and is_operand(other))
    return pk.sub(other, self)


def true_divide(input, other, *, out=None):
    need(is_tensor(input) and is_operand(other))
    return pk.div(input, other, out=out)


def rdiv_operator(self, other):
    need(is_tensor(self) and is_operand(other))
    return pk.div(other, self)


def pow_(self, exponent):
    need(is_tensor(self) and is_operand(exponent))
    return _in_place(self, lambda x: pk.pow(x, exponent))


def square(input, *, out=None):
    need(out is None and is_tensor(input) and input.dtype != torch.bool)
    return pk.pow(input, 2)


def square_(self):
    need(is_tensor(self) and self.dtype != torch.bool)
    return _in_place(self, lambda x: pk.pow(x, 2))


@functools.cache
def computed_in_place(fn):
    """The in-place handler of a unary op that has no in-place kernel (``Tensor.exp_``): ``fn``
    computed out of place, then assigned."""

    def in_place(input):
        need(is_tensor(input))
        return _in_place(input, fn)

    return in_place


# ---- lerp / addcmul / addcdiv: what torch.optim's Adam, AdamW, SGD with momentum ... are made of --


def _lerp_check(input, end, weight):
    need(
        is_tensor(input)
        and is_tensor(end)
        and is_number(weight)
        and input.is_floating_point()
        and end.dtype == input.dtype
    )


def _lerp_value(input, end, weight):
    diff = _ops.sub(end, input)
    # torch's two-sided formula, exact at both ends.
    if abs(weight) < 0.5:
        return _ops.add(input, diff, alpha=weight)
    return _ops.sub(end, diff, alpha=1 - weight)


def _sum_to(grad, shape):
    """``grad`` summed over the dimensions broadcasting added or expanded to reach it from ``shape``."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1]
    return (_ops.sum(grad, dims, keepdim=True) if dims else grad).reshape(shape)


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
        g_input = _sum_to(_ops.mul(grad, 1 - w), ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        g_end = _sum_to(_ops.mul(grad, w), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return g_input, g_end, None


def lerp(input, end, weight, *, out=None):
    _lerp_check(input, end, weight)
    need(out is None)
    return _Lerp.apply(input, end, weight)


def lerp_(self, end, weight):
    _lerp_check(self, end, weight)
    # torch.broadcast_shapes, slow Python, is asked only when the shapes differ.
    need(
        end.shape == self.shape or torch.broadcast_shapes(self.shape, end.shape) == self.shape,
        "end does not fit in place",
    )
    if torch.is_grad_enabled() and (self.requires_grad or end.requires_grad):
        return _assign(self, _Lerp.apply(self, end, weight))
    if abs(weight) < 0.5:  # the optimizers' case: no_grad, small weight, straight into self
        pk.add_(self, pk.sub(end, self), alpha=weight)  # the typed bindings: no overload resolution
        return self
    return _assign(self, _lerp_value(self, end, weight))


def _addc_check(input, tensor1, tensor2, value):
    need(all(map(is_tensor, (input, tensor1, tensor2))) and is_number(value))


def _addcmul_term(tensor1, tensor2, value):
    # torch computes self + value * t1 * t2, left to right.
    return pk.mul(pk.mul(tensor1, value) if value != 1 else tensor1, tensor2)


def addcmul(input, tensor1, tensor2, *, value=1, out=None):
    _addc_check(input, tensor1, tensor2, value)
    need(out is None)
    return pk.add(input, _addcmul_term(tensor1, tensor2, value))


def addcmul_(self, tensor1, tensor2, *, value=1):
    _addc_check(self, tensor1, tensor2, value)
    pk.add_(self, _addcmul_term(tensor1, tensor2, value))
    return self


def _addcdiv_check(input, tensor1, tensor2, value):
    _addc_check(input, tensor1, tensor2, value)
    need(tensor1.is_floating_point() or tensor2.is_floating_point(), "integer addcdiv")


def addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    _addcdiv_check(input, tensor1, tensor2, value)
    need(out is None)
    return pk.add(input, pk.div(tensor1, tensor2), alpha=value)


def addcdiv_(self, tensor1, tensor2, *, value=1):
    _addcdiv_check(self, tensor1, tensor2, value)
    pk.add_(self, pk.div(tensor1, tensor2), alpha=value)
    return self


# ---- reductions -----------------------------------------------------------------------------------


def _reduce_args(dim, keepdim, axis, out):
    need(out is None and isinstance(keepdim, bool))
    if axis is not None:
        need(dim is None)
        dim = axis
    need(
        dim is None
        or isinstance(dim, int)
        or (isinstance(dim, (list, tuple)) and all(isinstance(d, int) for d in dim)),
        "named dimensions",
    )
    return dim


def sum(input, dim=None, keepdim=False, *, dtype=None, out=None, axis=None):
    need(is_tensor(input))
    return pk.sum(input, _reduce_args(dim, keepdim, axis, out), keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None, out=None, axis=None):
    need(is_tensor(input))
    return pk.mean(input, _reduce_args(dim, keepdim, axis, out), keepdim, dtype=dtype)


# ---- ReLU, and clamp(min=0) which is ReLU ---------------------------------------------------------


def _relu_input(input):
    need(is_tensor(input) and input.dtype != torch.bool)


def functional_relu(input, inplace=False):
    _relu_input(input)
    return pk.relu_(input) if inplace else pk.relu(input)


def functional_relu_(input):
    _relu_input(input)
    return pk.relu_(input)


def _is_relu_clamp(input, min, max):
    # clamp(x, min=0) of an integer tensor by a float 0.0 promotes to float: that is not relu.
    _relu_input(input)
    need(max is None and is_zero(min) and (input.is_floating_point() or isinstance(min, int)), "clamp other than min=0")


def _clamp_min_zero(input):
    # torch's clamp lets no gradient through at x == min (as relu at 0): relu is clamp(min=0) backward too.
    return pk.relu(input)


def _clamp_min_zero_(input):
    pk.relu_(input)
    return input


def clamp(input, min=None, max=None, *, out=None):
    need(out is None)
    _is_relu_clamp(input, min, max)
    return _clamp_min_zero(input)


def clamp_(input, min=None, max=None):
    _is_relu_clamp(input, min, max)
    return _clamp_min_zero_(input)


def clamp_min(input, min, *, out=None):
    need(out is None)
    _is_relu_clamp(input, min, None)
    return _clamp_min_zero(input)


def clamp_min_(input, min):
    _is_relu_clamp(input, min, None)
    return _clamp_min_zero_(input)


# ---- MSE loss -------------------------------------------------------------------------------------


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    need(weight is None and is_tensor(input) and is_tensor(target), "weighted mse_loss")
    return pk.mse_loss(input, target, size_average, reduce, reduction)
