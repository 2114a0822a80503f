"""TEMP: Python formulas for the ops whose C++ derivative has not landed yet."""
import torch

_ops = torch.ops.pykernels


def sum_to(grad, shape):
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1]
    if dims:
        grad = _ops.sum(grad, dims, keepdim=True)
    return grad.reshape(shape)


def scalar_like(value, like):
    return torch.full((), value, dtype=like.dtype, device=like.device)


def _scale(grad, factor):
    return grad if factor == 1 else _ops.mul(grad, scalar_like(factor, grad))


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:2])


def _matmul_backward(ctx, grad):
    a, b = ctx.saved_tensors
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    g2 = grad.reshape(*batch, a2.shape[-2], b2.shape[-1])
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = sum_to(_ops.matmul(g2, b2.transpose(-1, -2)), a2.shape).reshape(a.shape)
    if ctx.needs_input_grad[1]:
        gb = sum_to(_ops.matmul(a2.transpose(-1, -2), g2), b2.shape).reshape(b.shape)
    return ga, gb


def _mse_backward_setup(ctx, inputs, output):
    ctx.reduction = inputs[3]
    ctx.save_for_backward(*inputs[:3])


def _mse_backward_backward(ctx, grad):
    g, a, t = ctx.saved_tensors
    s = 2.0 / max(grad.numel(), 1) if ctx.reduction == 1 else 2.0
    gg = None
    if ctx.needs_input_grad[0]:
        gg = sum_to(_scale(_ops.mul(_ops.sub(a, t), grad), s), g.shape)
    term = _scale(_ops.mul(grad, g if ctx.reduction == 0 else g.reshape(())), s)
    ga = sum_to(term, a.shape) if ctx.needs_input_grad[1] else None
    gt = sum_to(_ops.neg(term), t.shape) if ctx.needs_input_grad[2] else None
    return gg, ga, gt, None


def _mse_and_grad_setup(ctx, inputs, output):
    a, t, reduction = inputs
    ctx.shapes = (a.shape, t.shape)
    ctx.grad_scale = 2.0 / max(output[1].numel(), 1) if reduction == 1 else 2.0
    ctx.save_for_backward(output[1])


def _mse_and_grad_backward(ctx, g_loss, g_grad):
    (grad,) = ctx.saved_tensors
    total = _ops.mul(grad, g_loss)
    if g_grad is not None:
        total = _ops.add(total, g_grad, alpha=ctx.grad_scale)
    sa, st = ctx.shapes
    return (sum_to(total, sa) if ctx.needs_input_grad[0] else None,
            sum_to(_ops.neg(total), st) if ctx.needs_input_grad[1] else None, None)


torch.library.register_autograd("pykernels::matmul", _matmul_backward, setup_context=_save_inputs)
torch.library.register_autograd("pykernels::mse_loss_backward", _mse_backward_backward,
                                setup_context=_mse_backward_setup)
torch.library.register_autograd("pykernels::mse_loss_and_grad", _mse_and_grad_backward,
                                setup_context=_mse_and_grad_setup)
