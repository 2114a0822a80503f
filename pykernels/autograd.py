"""Autograd for every differentiable pykernels op.

Each op has one ``setup_context`` (what backward needs) and one ``backward`` (built from
pykernels ops only: no torch compute, including the reduction of broadcast gradients). The
pair is registered on the raw op with ``torch.library.register_autograd``, so
``torch.ops.pykernels.mm`` is differentiable by itself, and reused by a
``torch.autograd.Function`` of the same name, which is what the public API calls.
The in-place and out= ops carry their autograd in C++ (csrc/autograd.cpp), which checks
torch's rules for a write before anything is written.

Every functional op but matmul, mse_loss_backward and mse_loss_and_grad carries its autograd in
C++ instead (csrc/autograd.cpp), where it costs a fraction of a Python formula's overhead; the
formulas here serve the Functions, which torch.func transforms use. relu_and_mask and
relu_mask_backward, what relu's C++ autograd runs on the CPU, have C++ autograd only.

The Functions call each op through its typed binding in ``pykernels._C.direct`` (csrc/direct.cpp),
which skips torch.ops' argument parsing, unless a ``__torch_function__`` applies to the call or
torch.compile is tracing it: those see torch.ops.pykernels.<op>, as they expect.
"""
import inspect

import torch

from . import _C
from . import _compat

_ops = torch.ops.pykernels


# ---- helpers --------------------------------------------------------------------------------------


class _FormulaOps:
    """torch.ops.pykernels as the backward formulas call it.

    Outside torch.func transforms this is the op itself when grad mode is on (create_graph=True)
    and otherwise its typed binding below autograd, which skips the Python autograd kernel that
    torch.library registers (it would only redispatch). Under them (torch.func.grad, vjp,
    jacrev, ...) an op runs through its Function instead: functorch supports autograd.Functions
    with a setup_context, but neither the ops' C++ autograd nor the autograd torch.library
    registers for them.
    """

    def __getattr__(self, name):
        raw = getattr(_ops, name)
        function = _FUNCTIONS.get(name)
        if function is None:
            return raw

        def call(*args, **kwargs):
            if _functorch_active():
                return function.apply(*function.bind(args, kwargs))
            if _grad_enabled():  # create_graph=True: the op's autograd records the double backward
                return raw(*args, **kwargs)
            return function.forward(*function.bind(args, kwargs))  # its typed binding, below autograd

        setattr(self, name, call)  # looked up once per op
        return call


_fops = _FormulaOps()
_FUNCTIONS = {}  # op name -> its OpFunction


def scalar_like(value, like):
    """A 0-dim tensor holding ``value`` with ``like``'s dtype and device (no host sync on CUDA)."""
    return torch.full((), value, dtype=like.dtype, device=like.device)


def sum_to(grad, shape):
    """Sums ``grad`` over the dimensions that broadcasting added or expanded to reach its shape."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1]
    if dims:
        grad = _fops.sum(grad, dims, keepdim=True)
    return grad.reshape(shape)


def _scale(grad, factor):
    return grad if factor == 1 else _fops.mul(grad, scalar_like(factor, grad))


def _register(name, setup_context, backward):
    """Registers the formula on torch.ops.pykernels.<name> (unless the op has C++ autograd) and
    returns the matching Function.

    The Function takes every argument positionally; the registered op passes keyword-only
    arguments (alpha, rounding_mode, dtype) separately and wants gradients for positional
    arguments only, so the registration adapts both ends.
    """
    schema = _compat.op_schema(getattr(_ops, name).default)
    arguments = schema.arguments
    n_positional = len([a for a in arguments if not a.kwarg_only])
    kwonly = [a.name for a in arguments if a.kwarg_only]
    # With C++ autograd, calling the op records the graph itself.
    cpp_autograd = _compat.has_kernel_for_dispatch_key(f"pykernels::{name}", "Autograd")
    if not cpp_autograd:
        _register_formula(name, setup_context, backward, n_positional, kwonly)
    op = getattr(_ops, name).default

    if len(kwonly) == 1:
        (kw_name,) = kwonly
        kw_default = [a.default_value for a in arguments if a.kwarg_only][0]

        def call_op(*args):
            # The keyword costs a microsecond of argument parsing: leave it out when it is the
            # schema's default (same type too: alpha=1.0 is not alpha=1 for integer tensors).
            if len(args) > n_positional:
                value = args[n_positional]
                if value.__class__ is not kw_default.__class__ or value != kw_default:
                    return op(*args[:n_positional], **{kw_name: value})
            return op(*args[:n_positional])
    elif kwonly:

        def call_op(*args):
            return op(*args[:n_positional], **dict(zip(kwonly, args[n_positional:])))
    else:

        def call_op(*args):
            return op(*args)

    # Function.apply binds its arguments to forward's signature on every call (for
    # setup_context); inspect rebuilds that signature each time unless it is cached here.
    call_op.__signature__ = inspect.signature(call_op)

    direct = getattr(_C.direct, name)  # the typed binding (csrc/direct.cpp)

    def forward(*args):
        # Grad mode is off inside forward: the op's own autograd would only redispatch below it
        # (and its C++ autograd refuses to run under torch.func transforms).
        out = _try_direct(direct, True, args, schema)
        if out is not _NOT_TAKEN:
            return out
        with _BelowAutograd():
            return call_op(*args)

    forward.__signature__ = call_op.__signature__
    names = [a.name for a in arguments if not a.kwarg_only] + kwonly
    defaults = [a.default_value if a.has_default_value() else None for a in arguments if not a.kwarg_only]
    defaults += [a.default_value for a in arguments if a.kwarg_only]

    def bind(args, kwargs):
        """The Function's positional arguments for a call of the op with ``args`` and ``kwargs``."""
        return tuple(args) + tuple(kwargs.get(n, d) for n, d in zip(names[len(args):], defaults[len(args):]))

    def call_op_with_autograd(*args):
        out = _try_direct(direct, False, args, schema)
        return call_op(*args) if out is _NOT_TAKEN else out

    cls_name = name.title().replace("_", "")
    record = call_op_with_autograd if cpp_autograd else _eager_function(cls_name, forward, setup_context, backward).apply
    function = type(
        cls_name,
        (OpFunction,),
        {
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
            "call_op": staticmethod(call_op),
            "bind": staticmethod(bind),
            "_record": staticmethod(record),
            "__doc__": f"Differentiable torch.ops.pykernels.{name}.",
        },
    )
    _FUNCTIONS[name] = function
    return function


def _register_formula(name, setup_context, backward, n_positional, kwonly):
    """torch.library.register_autograd for the op, adapted to formulas that take every argument
    positionally and return a gradient for each."""
    if not kwonly:
        torch.library.register_autograd(f"pykernels::{name}", backward, setup_context=setup_context)
        return

    def op_setup_context(ctx, inputs, keyword_only_inputs, output):
        setup_context(ctx, tuple(inputs) + tuple(keyword_only_inputs.get(k) for k in kwonly), output)

    def op_backward(ctx, *grads):
        return tuple(backward(ctx, *grads))[:n_positional]

    torch.library.register_autograd(f"pykernels::{name}", op_backward, setup_context=op_setup_context)


def _eager_function(cls_name, run_below_autograd, setup_context, backward):
    """The formulas as a forward(ctx, ...) Function, which apply() calls with much less overhead
    than a setup_context Function (torch.func transforms need the latter)."""

    def forward(ctx, *args):
        output = run_below_autograd(*args)
        setup_context(ctx, args, output)
        return output

    return type(cls_name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


class OpFunction(torch.autograd.Function):
    """An autograd.Function for one raw op, sharing its registered backward formula."""

    # torch.func.vmap (jacrev, jacfwd's vmap, ...) runs forward and backward per batch element
    # through functorch's fallback for ops without a batching rule, as ours have none.
    generate_vmap_rule = True

    @classmethod
    def run(cls, *args):
        # torch.compile traces the raw op (a graph node with the same registered autograd):
        # dynamo cannot trace Function.apply when one tensor is passed twice (x * x).
        if _is_compiling():
            return cls.call_op(*args)
        if _functorch_active():
            return cls.apply(*args)
        if _grad_enabled() and _any_requires_grad(*args):
            return cls._record(*args)
        # No graph to record: the op's registered autograd would only redispatch below
        # autograd, so skip Function.apply and that hop (tens of microseconds per call).
        return cls.forward(*args)


# Looked up once: run() is on every public call's path.
_is_compiling = torch.compiler.is_compiling
_functorch_active = _compat.functorch_transforms_active
_grad_enabled = torch.is_grad_enabled
_any_requires_grad = _compat.any_requires_grad
_BelowAutograd = _compat.AutoDispatchBelowAutograd
# Whether a __torch_function__ (a tensor subclass's or a mode's) applies to a call: then the
# ops go through torch.ops, as __torch_function__ expects, rather than their typed bindings.
_has_torch_function = _compat.has_torch_function
_NOT_TAKEN = object()


def _try_direct(direct, below_autograd, args, schema):
    """``direct(below_autograd, *args)``, a typed binding's call, or _NOT_TAKEN where the caller
    goes through torch.ops instead: a __torch_function__ applies, or the binding cannot take an
    argument (TypeError), which torch.ops converts (a numpy number for a Scalar, ...). What
    torch.ops cannot take either, a non-tensor where the schema wants a Tensor, is a TypeError
    naming the op here rather than torch.ops' dump of the schema."""
    if _has_torch_function(args):
        return _NOT_TAKEN
    try:
        return direct(below_autograd, *args)
    except TypeError:
        _check_tensor_arguments(schema, args)
        return _NOT_TAKEN


def _check_tensor_arguments(schema, args):
    for position, argument in enumerate(schema.arguments[: len(args)]):
        value = args[position]
        if str(argument.type) == "Tensor" and not isinstance(value, torch.Tensor):
            raise TypeError(f"pykernels.{schema.name.split('::')[-1]}(): argument '{argument.name}' (position "
                            f"{position + 1}) must be Tensor, not {type(value).__name__}")


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:2])


def _save_output(ctx, inputs, output):
    ctx.save_for_backward(output)


def _save_input_and_output(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], output)


# ---- matmul family --------------------------------------------------------------------------------


def _transposed(x):
    """Whether the last two dimensions of ``x`` are stored column-major (a transposed view)."""
    return x.stride(-2) == 1 and x.stride(-1) != 1


def _product_like(x, op, p, q):
    """``p @ q`` (``op`` is mm or bmm) stored in ``x``'s layout. The gradient of a transposed
    input, ``w.t()`` in a linear layer, is then a transposed view too, and reaches the
    parameter contiguous: autograd would otherwise copy it into the parameter's layout."""
    if _transposed(x):
        return op(q.transpose(-1, -2), p.transpose(-1, -2)).transpose(-1, -2)
    return op(p, q)


def _mm_backward(ctx, grad):
    a, b = ctx.saved_tensors
    ga = _product_like(a, _fops.mm, grad, b.t()) if ctx.needs_input_grad[0] else None
    gb = _product_like(b, _fops.mm, a.t(), grad) if ctx.needs_input_grad[1] else None
    return ga, gb


def _bmm_backward(ctx, grad):
    a, b = ctx.saved_tensors
    ga = _product_like(a, _fops.bmm, grad, b.transpose(1, 2)) if ctx.needs_input_grad[0] else None
    gb = _product_like(b, _fops.bmm, a.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
    return ga, gb


def _matmul_backward(ctx, grad):
    # Undo matmul's 1-D promotions, take the batched-matrix gradients, then sum over the batch
    # dimensions each operand was broadcast along.
    a, b = ctx.saved_tensors
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    g2 = grad.reshape(*batch, a2.shape[-2], b2.shape[-1])
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = sum_to(_fops.matmul(g2, b2.transpose(-1, -2)), a2.shape).reshape(a.shape)
    if ctx.needs_input_grad[1]:
        gb = sum_to(_fops.matmul(a2.transpose(-1, -2), g2), b2.shape).reshape(b.shape)
    return ga, gb


MM = _register("mm", _save_inputs, _mm_backward)
BMM = _register("bmm", _save_inputs, _bmm_backward)
MatMul = _register("matmul", _save_inputs, _matmul_backward)


# ---- elementwise ----------------------------------------------------------------------------------


def _binary_setup(ctx, inputs, output):
    a, b = inputs[:2]
    ctx.shapes = (a.shape, b.shape)
    ctx.extra = inputs[2] if len(inputs) > 2 else None  # alpha, or div's rounding_mode
    ctx.save_for_backward(a, b)


def _add_backward(ctx, grad, sign=1):
    sa, sb = ctx.shapes
    ga = sum_to(grad, sa) if ctx.needs_input_grad[0] else None
    gb = sum_to(_scale(grad, sign * ctx.extra), sb) if ctx.needs_input_grad[1] else None
    return ga, gb, None


def _sub_backward(ctx, grad):
    return _add_backward(ctx, grad, sign=-1)


def _mul_backward(ctx, grad):
    a, b = ctx.saved_tensors
    sa, sb = ctx.shapes
    ga = sum_to(_fops.mul(grad, b), sa) if ctx.needs_input_grad[0] else None
    gb = sum_to(_fops.mul(grad, a), sb) if ctx.needs_input_grad[1] else None
    return ga, gb


def _div_backward(ctx, grad):
    a, b = ctx.saved_tensors
    sa, sb = ctx.shapes
    if ctx.extra is not None:  # rounded quotients are piecewise constant: zero gradient, as torch
        return (grad.new_zeros(sa) if ctx.needs_input_grad[0] else None,
                grad.new_zeros(sb) if ctx.needs_input_grad[1] else None, None)
    ga = sum_to(_fops.div(grad, b), sa) if ctx.needs_input_grad[0] else None
    gb = None
    if ctx.needs_input_grad[1]:  # d(a/b)/db = -a / b^2
        gb = sum_to(_fops.neg(_fops.div(_fops.mul(grad, a), _fops.mul(b, b))), sb)
    return ga, gb, None


Add = _register("add", _binary_setup, _add_backward)
Sub = _register("sub", _binary_setup, _sub_backward)
Mul = _register("mul", _binary_setup, _mul_backward)
Div = _register("div", _binary_setup, _div_backward)
Neg = _register("neg", lambda ctx, inputs, output: None, lambda ctx, g: _fops.neg(g))


def _pow_setup(ctx, inputs, output):
    ctx.exponent = inputs[1]
    ctx.save_for_backward(inputs[0])


def _pow_backward(ctx, grad):
    (a,) = ctx.saved_tensors
    e = ctx.exponent
    if e == 0:
        return grad.new_zeros(a.shape), None
    return _fops.mul(grad, _scale(_fops.pow(a, e - 1), e)), None


def _exp_backward(ctx, grad):
    (out,) = ctx.saved_tensors
    return _fops.mul(grad, out)


def _log_backward(ctx, grad):
    a, _ = ctx.saved_tensors
    return _fops.div(grad, a)


def _sqrt_backward(ctx, grad):
    (out,) = ctx.saved_tensors
    return _fops.div(grad, _scale(out, 2))


Pow = _register("pow", _pow_setup, _pow_backward)
Exp = _register("exp", _save_output, _exp_backward)
Log = _register("log", _save_input_and_output, _log_backward)
Sqrt = _register("sqrt", _save_output, _sqrt_backward)


# ---- reductions -----------------------------------------------------------------------------------


def _reduce_setup(ctx, inputs, output):
    a, dim, keepdim = inputs[0], inputs[1], inputs[2]
    ctx.shape = a.shape
    nd = max(a.dim(), 1)
    ctx.dims = [] if a.dim() == 0 else sorted(range(a.dim()) if not dim else {d % nd for d in dim})
    ctx.keepdim = keepdim


def _expand_back(ctx, grad):
    if not ctx.keepdim and len(ctx.shape) > 0:
        for d in ctx.dims:
            grad = grad.unsqueeze(d)
    return grad.expand(ctx.shape)


def _sum_backward(ctx, grad):
    return _expand_back(ctx, grad), None, None, None


def _mean_backward(ctx, grad):
    count = 1
    for d in ctx.dims:
        count *= ctx.shape[d]
    return _expand_back(ctx, _fops.div(grad, scalar_like(count, grad))), None, None, None


Sum = _register("sum", _reduce_setup, _sum_backward)
Mean = _register("mean", _reduce_setup, _mean_backward)


# ---- ReLU and MSE loss ----------------------------------------------------------------------------


def _relu_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _relu_backward_backward(ctx, grad):
    # relu_backward is linear in grad_output; the mask has no gradient.
    (result,) = ctx.saved_tensors
    return _fops.relu_backward(grad, result), None


ReLU = _register("relu", _save_output, lambda ctx, g: _fops.relu_backward(g, ctx.saved_tensors[0]))
ReLUBackward = _register("relu_backward", _relu_backward_setup, _relu_backward_backward)


def _mse_setup(ctx, inputs, output):
    ctx.reduction = inputs[2]
    ctx.save_for_backward(inputs[0], inputs[1])


def _mse_backward(ctx, grad):
    a, t = ctx.saved_tensors
    g = _fops.mse_loss_backward(grad, a, t, ctx.reduction)
    ga = sum_to(g, a.shape) if ctx.needs_input_grad[0] else None
    gt = sum_to(_fops.neg(g), t.shape) if ctx.needs_input_grad[1] else None
    return ga, gt, None


def _mse_backward_setup(ctx, inputs, output):
    ctx.reduction = inputs[3]
    ctx.save_for_backward(*inputs[:3])


def _mse_backward_backward(ctx, grad):
    # mse_loss_backward computes s * (a - t) * g, with s = 2 (or 2 / numel for 'mean') and g
    # broadcast over the loss shape; it is linear in each of g, a and t separately.
    g, a, t = ctx.saved_tensors
    # An empty input leaves every term below empty or a sum of nothing: any finite s gives torch's
    # zeros, and 1 keeps 'mean' from dividing by zero.
    s = 2.0 / max(grad.numel(), 1) if ctx.reduction == 1 else 2.0
    gg = None
    if ctx.needs_input_grad[0]:
        gg = sum_to(_scale(_fops.mul(_fops.sub(a, t), grad), s), g.shape)
    term = _scale(_fops.mul(grad, g if ctx.reduction == 0 else g.reshape(())), s)
    ga = sum_to(term, a.shape) if ctx.needs_input_grad[1] else None
    gt = sum_to(_fops.neg(term), t.shape) if ctx.needs_input_grad[2] else None
    return gg, ga, gt, None


def _mse_and_grad_setup(ctx, inputs, output):
    a, t, reduction = inputs
    ctx.shapes = (a.shape, t.shape)
    ctx.grad_scale = 2.0 / max(output[1].numel(), 1) if reduction == 1 else 2.0
    ctx.save_for_backward(output[1])


def _mse_and_grad_backward(ctx, g_loss, g_grad):
    # d loss / d input is the kept gradient; the kept gradient is grad_scale * (input - target).
    (grad,) = ctx.saved_tensors
    total = _fops.mul(grad, g_loss)
    if g_grad is not None:
        total = _fops.add(total, g_grad, alpha=ctx.grad_scale)
    sa, st = ctx.shapes
    return (sum_to(total, sa) if ctx.needs_input_grad[0] else None,
            sum_to(_fops.neg(total), st) if ctx.needs_input_grad[1] else None, None)


MSELoss = _register("mse_loss", _mse_setup, _mse_backward)
MSELossBackward = _register("mse_loss_backward", _mse_backward_setup, _mse_backward_backward)
MSELossAndGrad = _register("mse_loss_and_grad", _mse_and_grad_setup, _mse_and_grad_backward)


# ---- in-place forms ---------------------------------------------------------------------------------


def _mutating(overload):
    """A caller of the in-place or out= op ``overload`` ("add_", "add.out") taking every argument
    positionally: its typed binding (through the Autograd key, whose fallback checks in-place use
    of tensors that require grad), else the torch.ops overload with keyword-only arguments."""
    name, _, variant = overload.partition(".")
    op = getattr(getattr(_ops, name), variant or "default")
    schema = _compat.op_schema(op)
    arguments = schema.arguments
    n_positional = len([a for a in arguments if not a.kwarg_only])
    kwonly = [a.name for a in arguments if a.kwarg_only]
    direct = getattr(_C.direct, overload.replace(".", "_"))

    def call(*args):
        if _try_direct(direct, False, args, schema) is _NOT_TAKEN:
            op(*args[:n_positional], **dict(zip(kwonly, args[n_positional:])))

    return call


# In-place and out= ops as the public API calls them; every argument positional.
run_mutating = {o: _mutating(o) for o in ("add_", "sub_", "mul_", "div_", "neg_", "relu_", "add.out", "sub.out",
                                          "mul.out", "div.out", "neg.out")}


def binary_inplace(name, a, b, extra):
    """Runs torch.ops.pykernels.<name>_ on ``a``; ``extra`` is alpha (add/sub) or rounding_mode (div)."""
    if name == "mul":
        run_mutating["mul_"](a, b)
    else:
        run_mutating[name + "_"](a, b, extra)
