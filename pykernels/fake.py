"""Fake (meta) kernels: output shapes and dtypes without computing anything.

They let ``torch.compile`` trace through pykernels ops and ``torch.library.opcheck`` compare
the schema, and they repeat the checks whose failure would otherwise give a wrong shape.
"""

import torch
from torch.library import register_fake

from . import _compat, optable


def _check(cond, op, msg):
    torch._check(cond, lambda: f"pykernels.{op}: {msg}")


def _broadcast(op, *shapes):
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError as e:
        raise RuntimeError(f"pykernels.{op}: {e}") from None


def _device(op, *inputs, out=None, cpu_scalars=True):
    """The device the op computes on, by the kernels' (and torch's) rule: every tensor on one
    device, except that a 0-dim CPU input may join tensors on another device. ``out`` (an out=
    tensor or an in-place self) takes no such exception. A meta tensor beside CPU ones would
    otherwise send the call here and give a CPU result that was never computed."""
    device = out.device if out is not None else None
    for t in inputs:
        if cpu_scalars and t.dim() == 0 and t.device.type == "cpu":
            continue
        if device is None:
            device = t.device
        _check(
            t.device == device,
            op,
            f"expected all tensors to be on the same device, but found at least two devices, {device} and {t.device}",
        )
    return device if device is not None else inputs[0].device


def _same_dtype(op, a, b):
    _check(a.dtype == b.dtype, op, f"expected both operands to have the same dtype, but got {a.dtype} and {b.dtype}")


@register_fake("pykernels::mm")
def _mm(a, b):
    _device("mm", a, b, cpu_scalars=False)
    _same_dtype("mm", a, b)
    _check(a.dim() == 2 and b.dim() == 2, "mm", f"expected matrices, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    _check(a.shape[1] == b.shape[0], "mm", f"shapes cannot be multiplied ({tuple(a.shape)} and {tuple(b.shape)})")
    return a.new_empty((a.shape[0], b.shape[1]))


@register_fake("pykernels::bmm")
def _bmm(a, b):
    _device("bmm", a, b, cpu_scalars=False)
    _same_dtype("bmm", a, b)
    _check(a.dim() == 3 and b.dim() == 3, "bmm", f"expected 3-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    _check(
        a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1],
        "bmm",
        f"shapes cannot be multiplied ({tuple(a.shape)} and {tuple(b.shape)})",
    )
    return a.new_empty((a.shape[0], a.shape[1], b.shape[2]))


@register_fake("pykernels::matmul")
def _matmul(a, b):
    _device("matmul", a, b, cpu_scalars=False)
    _same_dtype("matmul", a, b)
    _check(a.dim() >= 1 and b.dim() >= 1, "matmul", "both arguments need to be at least 1D")
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    _check(
        a2.shape[-1] == b2.shape[-2], "matmul", f"shapes cannot be multiplied ({tuple(a.shape)} and {tuple(b.shape)})"
    )
    shape = list(_broadcast("matmul", a2.shape[:-2], b2.shape[:-2]))
    if a.dim() > 1:
        shape.append(a2.shape[-2])
    if b.dim() > 1:
        shape.append(b2.shape[-1])
    return a.new_empty(shape)


# ---- fused linear layers and MLP -----------------------------------------------------------------------


def _check_layer(op, a, weight, *others):
    _device(op, a, weight, *others, cpu_scalars=False)
    for t in (weight, *others):
        _same_dtype(op, a, t)
    _check(a.dtype.is_floating_point, op, f"dtype {a.dtype} is not supported (floating types only)")
    _check(a.dim() >= 1 and 1 <= weight.dim() <= 2, op, f"shapes {tuple(a.shape)} and {tuple(weight.shape)}")
    _check(
        a.shape[-1] == weight.shape[-1], op, f"shapes cannot be multiplied ({tuple(a.shape)}, {tuple(weight.shape)})"
    )
    return [*a.shape[:-1], *weight.shape[:-1]]


def _linear_forward(op):
    def fake(a, weight, bias=None):
        shape = _check_layer(op, a, weight, *([bias] if bias is not None else []))
        if bias is not None:
            _check(weight.dim() == 2 or (bias.dim() == 0 and a.dim() != 2), op, "a 1-D weight takes only a 0-dim bias")
            _check(list(_broadcast(op, shape, bias.shape)) == shape, op, "the bias does not broadcast to the output")
        return a.new_empty(shape)

    return fake


register_fake("pykernels::linear", _linear_forward("linear"))
register_fake("pykernels::linear_relu", _linear_forward("linear_relu"))


@register_fake("pykernels::linear_backward")
def _linear_backward(grad, a, weight, result, output_mask):
    others = [grad] + ([result] if result is not None else [])
    shape = _check_layer("linear_backward", a, weight, *others)
    _check(list(grad.shape) == shape, "linear_backward", "grad_output does not match the output's shape")
    features = weight.shape[0] if weight.dim() == 2 else 1
    return (
        a.new_empty(a.shape) if output_mask[0] else None,
        a.new_empty(weight.shape) if output_mask[1] else None,
        a.new_empty((features,)) if output_mask[2] else None,
    )


def _check_mlp(op, a, w1, w2, *others):
    _device(op, a, w1, w2, *others, cpu_scalars=False)
    for t in (w1, w2, *others):
        _same_dtype(op, a, t)
    _check(a.dtype.is_floating_point, op, f"dtype {a.dtype} is not supported (floating types only)")
    _check(a.dim() >= 1 and w1.dim() == 2 and w2.dim() == 2, op, "w1 and w2 must be matrices")
    _check(w1.shape[1] == a.shape[-1] and w2.shape[1] == w1.shape[0], op, "the layers' shapes do not fit")
    return list(a.shape[:-1])


def _check_mlp_biases(op, w1, w2, b1, b2):
    for bias, size in ((b1, w1.shape[0]), (b2, w2.shape[0])):
        _check(bias is None or (bias.dim() == 1 and bias.shape[0] == size), op, f"a bias must have shape ({size},)")


@register_fake("pykernels::mlp")
def _mlp(a, w1, b1, w2, b2):
    batch = _check_mlp("mlp", a, w1, w2, *[b for b in (b1, b2) if b is not None])
    _check_mlp_biases("mlp", w1, w2, b1, b2)
    return a.new_empty(batch + [w2.shape[0]])


@register_fake("pykernels::mlp_forward")
def _mlp_forward(a, w1, b1, w2, b2):
    batch = _check_mlp("mlp_forward", a, w1, w2, *[b for b in (b1, b2) if b is not None])
    _check_mlp_biases("mlp_forward", w1, w2, b1, b2)
    return a.new_empty(batch + [w2.shape[0]]), a.new_empty(batch + [w1.shape[0]])


@register_fake("pykernels::mlp_backward")
def _mlp_backward(grad, a, w1, w2, hidden, output_mask):
    batch = _check_mlp("mlp_backward", a, w1, w2, grad, hidden)
    _check(list(grad.shape) == batch + [w2.shape[0]], "mlp_backward", "grad_output does not match the output")
    _check(list(hidden.shape) == batch + [w1.shape[0]], "mlp_backward", "hidden does not match the hidden layer")
    shapes = (a.shape, w1.shape, (w1.shape[0],), w2.shape, (w2.shape[0],))
    return tuple(a.new_empty(s) if want else None for s, want in zip(shapes, output_mask))


# ---- elementwise ------------------------------------------------------------------------------------


def _dense(t):
    """Whether t's elements fill a block of memory exactly once (torch's non-overlapping and dense)."""
    dims = sorted((d for d in range(t.dim()) if t.shape[d] != 1), key=lambda d: t.stride(d))
    expected = 1
    for d in dims:
        if t.stride(d) != expected:
            return False
        expected *= t.shape[d]
    return True


def _like_inputs(shape, dtype, device, *inputs):
    """A new output laid out as the kernels lay it out, which is torch's layout for elementwise
    outputs (csrc/common/checks.cpp, empty_like_inputs)."""
    shape = tuple(shape)
    a = inputs[0]
    full = all(tuple(t.shape) == shape for t in inputs)
    if full and all(t.is_contiguous() for t in inputs):
        return a.new_empty(shape, dtype=dtype, device=device)
    if full and all(t.is_contiguous(memory_format=torch.channels_last) for t in inputs):
        return a.new_empty(shape, dtype=dtype, device=device).to(memory_format=torch.channels_last)
    if full and shape and all(_dense(t) and t.stride() == a.stride() for t in inputs):
        return a.new_empty_strided(shape, a.stride(), dtype=dtype, device=device)
    nd = len(shape)
    strides = []
    for t in inputs:
        offset = nd - t.dim()
        s = [0] * nd
        for d in range(t.dim()):
            s[offset + d] = 0 if t.shape[d] == 1 and shape[offset + d] != 1 else t.stride(d)
        strides.append(s)

    def should_swap(d0, d1):
        for s in strides:
            if s[d0] == 0 or s[d1] == 0:
                continue
            if s[d0] != s[d1]:
                return -1 if s[d0] < s[d1] else 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(nd - 1, -1, -1))  # perm[0]: the innermost dimension
    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            cmp = should_swap(perm[d0], perm[d1])
            if cmp > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif cmp < 0:
                break
    out_strides, step = [0] * nd, 1
    for d in perm:
        out_strides[d] = step
        step *= max(shape[d], 1)
    return a.new_empty_strided(shape, out_strides, dtype=dtype, device=device)


def _result_dtype(op, inputs, kwargs):
    """torch's result dtype for an elementwise op: promotion, then integers to the default float
    dtype where the op computes in floating point (true division: no rounding_mode)."""
    dtype = torch.result_type(*inputs) if len(inputs) > 1 else inputs[0].dtype
    if (
        op.integer_to_float
        and kwargs.get("rounding_mode") is None
        and not (dtype.is_floating_point or dtype.is_complex)
    ):
        dtype = torch.get_default_dtype()
    return dtype


def _castable(name, dtype, out):
    _check(
        torch.can_cast(dtype, out.dtype),
        name,
        f"result type {dtype} can't be cast to the desired output type {out.dtype}",
    )


def _elementwise(op, schema):
    """The fake kernel of an elementwise overload (functional, out= or in-place), from its schema:
    the operands are the arguments before the keyword-only ones; a Scalar operand takes part in
    promotion as a number."""
    name = schema.name.split("::")[-1] + (f".{schema.overload_name}" if schema.overload_name else "")
    operands = [a.name for a in schema.arguments if not a.kwarg_only]
    written = next((a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write), None)
    out_form = written == "out"

    def fake(*args, **kwargs):
        bound = dict(zip([a.name for a in schema.arguments], args))
        bound.update(kwargs)
        values = [bound[n] for n in operands]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        target = bound[written] if written else None
        device = _device(name, *tensors, out=target)
        shape = _broadcast(name, *(t.shape for t in tensors))
        dtype = _result_dtype(op, values if len(values) > 1 else tensors, bound)
        if target is None:
            return _like_inputs(shape, dtype, device, *tensors)
        if out_form and op.kind == "unary":  # torch's unary out= forms take no cast: out has the result dtype
            _check(target.dtype == dtype, name, f"Found dtype {target.dtype} but expected {dtype}")
        _castable(name, dtype, target)
        if out_form:
            if tuple(target.shape) != tuple(shape):
                target.resize_(shape)
        else:
            _check(
                tuple(shape) == tuple(target.shape),
                name,
                f"output with shape {tuple(target.shape)} doesn't match the broadcast shape {tuple(shape)}",
            )

    return fake


for _op in optable.OPS:
    if _op.kind not in ("binary", "unary"):
        continue
    for _text in _op.overloads + _op.numbers:
        _qualified = _text.split("(")[0]
        _name, _, _overload = _qualified.partition(".")
        _schema = _compat.op_schema(getattr(getattr(torch.ops.pykernels, _name), _overload or "default"))
        register_fake(f"pykernels::{_qualified}", _elementwise(_op, _schema))


# ---- reductions ---------------------------------------------------------------------------------------


def _reduced_shape(a, dim, keepdim):
    nd = a.dim()
    dims = set(range(nd)) if not dim else {d % max(nd, 1) for d in dim}
    return [1 if i in dims else s for i, s in enumerate(a.shape) if keepdim or i not in dims]


@register_fake("pykernels::sum")
def _sum(a, dim=None, keepdim=False, dtype=None):
    if dtype is None:
        dtype = a.dtype if a.dtype.is_floating_point or a.dtype.is_complex else torch.int64
    return a.new_empty(_reduced_shape(a, dim, keepdim), dtype=dtype)


@register_fake("pykernels::mean")
def _mean(a, dim=None, keepdim=False, dtype=None):
    dtype = dtype or a.dtype
    torch._check_not_implemented(
        dtype.is_floating_point, lambda: f"pykernels.mean: could not infer output dtype; got {dtype}"
    )
    return a.new_empty(_reduced_shape(a, dim, keepdim), dtype=dtype)


# ---- ReLU and MSE loss ------------------------------------------------------------------------------


@register_fake("pykernels::pow_tensor_backward")
def _pow_tensor_backward(grad, a, exponent, result):
    device = _device("pow_tensor_backward", grad, a, exponent, result)
    shape = _broadcast("pow_tensor_backward", grad.shape, a.shape, exponent.shape, result.shape)
    dtype = torch.promote_types(torch.promote_types(torch.result_type(a, exponent), grad.dtype), result.dtype)
    _check(dtype.is_floating_point, "pow_tensor_backward", f"dtype {dtype} is not supported (floating types only)")
    return a.new_empty(shape, dtype=dtype, device=device), a.new_empty(shape, dtype=dtype, device=device)


@register_fake("pykernels::relu_backward")
def _relu_backward(grad, result):
    _device("relu_backward", grad, result, cpu_scalars=False)
    _check(grad.shape == result.shape, "relu_backward", "grad_output and result shapes differ")
    return grad.new_empty(grad.shape, dtype=torch.result_type(grad, result))


@register_fake("pykernels::relu_and_mask")
def _relu_and_mask(a):
    _check(a.dtype.is_floating_point, "relu_and_mask", f"needs a floating point input, got {a.dtype}")
    return a.new_empty(a.shape), a.new_empty(((a.numel() + 7) // 8,), dtype=torch.uint8)


@register_fake("pykernels::relu_mask_backward")
def _relu_mask_backward(grad, mask):
    _device("relu_mask_backward", grad, mask, cpu_scalars=False)
    _check(grad.dtype.is_floating_point, "relu_mask_backward", f"needs a floating point grad_output, got {grad.dtype}")
    _check(
        mask.dtype == torch.uint8 and mask.dim() == 1,
        "relu_mask_backward",
        f"mask must be a contiguous 1-D uint8 tensor, got {mask.dtype} of shape {tuple(mask.shape)}",
    )
    _check(
        mask.numel() == (grad.numel() + 7) // 8,
        "relu_mask_backward",
        f"mask of {mask.numel()} bytes does not fit grad_output of shape {tuple(grad.shape)}",
    )
    return grad.new_empty(grad.shape)


@register_fake("pykernels::mse_loss")
def _mse_loss(a, target, reduction=1):
    device = _device("mse_loss", a, target, cpu_scalars=False)
    _check(reduction in (0, 1, 2), "mse_loss", f"reduction must be 0, 1 or 2, got {reduction}")
    shape = _broadcast("mse_loss", a.shape, target.shape) if reduction == 0 else ()
    return a.new_empty(shape, dtype=torch.result_type(a, target), device=device)


@register_fake("pykernels::mse_loss_and_grad")
def _mse_loss_and_grad(a, target, reduction=1):
    device = _device("mse_loss_and_grad", a, target, cpu_scalars=False)
    _check(reduction in (1, 2), "mse_loss_and_grad", f"needs reduction 1 ('mean') or 2 ('sum'), got {reduction}")
    dtype = torch.result_type(a, target)
    shape = _broadcast("mse_loss_and_grad", a.shape, target.shape)
    return a.new_empty((), dtype=dtype, device=device), a.new_empty(shape, dtype=dtype, device=device)


@register_fake("pykernels::mse_loss_backward")
def _mse_loss_backward(grad, a, target, reduction):
    device = _device("mse_loss_backward", grad, a, target, cpu_scalars=False)
    dtype = torch.promote_types(torch.result_type(a, target), grad.dtype)
    return a.new_empty(_broadcast("mse_loss_backward", a.shape, target.shape), dtype=dtype, device=device)


# ---- optimizer steps ----------------------------------------------------------------------------------


def _optimizer_lists(op, params, lists, optional):
    """The checks of a fused optimizer step that fake tensors can make: every list one entry per
    param, each entry with its param's dtype, shape and device; an optional list (state that an
    option leaves unused) may be empty and is not read. The step writes in place and returns nothing."""
    for name, items in lists.items():
        _check(
            len(items) == len(params) or (name in optional and not items),
            op,
            f"expected {len(params)} {name}, got {len(items)}",
        )
    for name, items in lists.items():
        if name in optional:  # not read
            continue
        for i, (t, p) in enumerate(zip(items, params)):
            _check(t.dtype == p.dtype, op, f"{name}[{i}] has dtype {t.dtype} but params[{i}] has dtype {p.dtype}")
            _check(
                t.shape == p.shape,
                op,
                f"{name}[{i}] has shape {tuple(t.shape)} but params[{i}] has shape {tuple(p.shape)}",
            )
            _device(op, t, out=p, cpu_scalars=False)


@register_fake("pykernels::fused_sgd_")
def _fused_sgd_(params, grads, momentum_buffers, **options):
    optional = ("momentum_buffers",) if options["momentum"] == 0 else ()
    _optimizer_lists("fused_sgd_", params, {"grads": grads, "momentum_buffers": momentum_buffers}, optional)


@register_fake("pykernels::fused_adam_")
def _fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, **options):
    lists = {"grads": grads, "exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs, "max_exp_avg_sqs": max_exp_avg_sqs}
    optional = () if options["amsgrad"] else ("max_exp_avg_sqs",)
    _optimizer_lists("fused_adam_", params, lists, optional)
    _check(
        len(state_steps) == len(params), "fused_adam_", f"expected {len(params)} state_steps, got {len(state_steps)}"
    )
