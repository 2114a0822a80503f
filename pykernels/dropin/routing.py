"""Which torch function, Tensor method or operator the drop-in mode sends to which handler.

The routes are data: ``ROUTES`` maps each handler (handlers.py) to the torch callables it takes,
by their dotted names, and ``FOREACH`` names the ``torch._foreach_*`` functions taken element by
element (foreach.py). A name the installed torch lacks is skipped. ``HANDLERS``, what the mode
looks calls up in, is built from both when the module is imported.
"""
import inspect

import torch

from . import foreach
from . import handlers as h

ROUTES = {
    # matmul family
    h.mm: ("torch.mm", "torch.Tensor.mm"),
    h.bmm: ("torch.bmm", "torch.Tensor.bmm"),
    h.matmul: ("torch.matmul", "torch.Tensor.matmul", "torch.Tensor.__matmul__"),
    h.rmatmul: ("torch.Tensor.__rmatmul__",),
    h.mv: ("torch.mv", "torch.Tensor.mv"),
    h.dot: ("torch.dot", "torch.Tensor.dot"),
    h.addmm: ("torch.addmm", "torch.Tensor.addmm"),
    h.linear: ("torch.nn.functional.linear",),
    # elementwise
    h.add: ("torch.add", "torch.Tensor.add", "torch.Tensor.__add__", "torch.Tensor.__radd__"),
    h.sub: ("torch.sub", "torch.subtract", "torch.Tensor.sub", "torch.Tensor.subtract", "torch.Tensor.__sub__"),
    h.rsub: ("torch.rsub",),
    h.rsub_operator: ("torch.Tensor.__rsub__",),
    h.mul: ("torch.mul", "torch.multiply", "torch.Tensor.mul", "torch.Tensor.multiply", "torch.Tensor.__mul__",
            "torch.Tensor.__rmul__"),
    h.div: ("torch.div", "torch.divide", "torch.Tensor.div", "torch.Tensor.divide"),
    h.true_divide: ("torch.true_divide", "torch.Tensor.true_divide", "torch.Tensor.__truediv__",
                    "torch.Tensor.__div__"),
    h.rdiv_operator: ("torch.Tensor.__rtruediv__", "torch.Tensor.__rdiv__"),
    h.neg: ("torch.neg", "torch.negative", "torch.Tensor.neg", "torch.Tensor.negative", "torch.Tensor.__neg__"),
    h.add_: ("torch.Tensor.add_", "torch.Tensor.__iadd__"),
    h.sub_: ("torch.Tensor.sub_", "torch.Tensor.subtract_", "torch.Tensor.__isub__"),
    h.mul_: ("torch.Tensor.mul_", "torch.Tensor.multiply_", "torch.Tensor.__imul__"),
    h.div_: ("torch.Tensor.div_", "torch.Tensor.divide_"),
    h.true_divide_: ("torch.Tensor.true_divide_", "torch.Tensor.__itruediv__", "torch.Tensor.__idiv__"),
    h.neg_: ("torch.neg_", "torch.negative_", "torch.Tensor.neg_", "torch.Tensor.negative_"),
    h.pow: ("torch.pow", "torch.Tensor.pow", "torch.Tensor.__pow__"),
    h.pow_: ("torch.Tensor.pow_", "torch.Tensor.__ipow__"),
    h.square: ("torch.square", "torch.Tensor.square"),
    h.square_: ("torch.Tensor.square_",),
    h.exp: ("torch.exp", "torch.Tensor.exp"),
    h.exp_: ("torch.exp_", "torch.Tensor.exp_"),
    h.log: ("torch.log", "torch.Tensor.log"),
    h.log_: ("torch.log_", "torch.Tensor.log_"),
    h.sqrt: ("torch.sqrt", "torch.Tensor.sqrt"),
    h.sqrt_: ("torch.sqrt_", "torch.Tensor.sqrt_"),
    # what torch.optim's optimizers are made of
    h.lerp: ("torch.lerp", "torch.Tensor.lerp"),
    h.lerp_: ("torch.Tensor.lerp_",),
    h.addcmul: ("torch.addcmul", "torch.Tensor.addcmul"),
    h.addcmul_: ("torch.Tensor.addcmul_",),
    h.addcdiv: ("torch.addcdiv", "torch.Tensor.addcdiv"),
    h.addcdiv_: ("torch.Tensor.addcdiv_",),
    # reductions
    h.sum: ("torch.sum", "torch.Tensor.sum"),
    h.mean: ("torch.mean", "torch.Tensor.mean"),
    # ReLU, and clamp(min=0), which is ReLU
    h.relu: ("torch.relu", "torch.Tensor.relu"),
    h.relu_: ("torch.relu_", "torch.Tensor.relu_", "torch.nn.functional.relu_"),
    h.functional_relu: ("torch.nn.functional.relu",),
    h.clamp: ("torch.clamp", "torch.clip", "torch.Tensor.clamp", "torch.Tensor.clip"),
    h.clamp_: ("torch.clamp_", "torch.clip_", "torch.Tensor.clamp_", "torch.Tensor.clip_"),
    h.clamp_min: ("torch.clamp_min", "torch.Tensor.clamp_min"),
    h.clamp_min_: ("torch.clamp_min_", "torch.Tensor.clamp_min_"),
    # MSE loss
    h.mse_loss: ("torch.nn.functional.mse_loss",),
}

# torch._foreach_<name> and torch._foreach_<name>_, each element through the handler of
# Tensor.<name> / Tensor.<name>_ above.
FOREACH = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "lerp", "addcmul", "addcdiv")


def _resolve(name):
    """The callable a dotted name (``torch.Tensor.add``) names in the installed torch, or None."""
    obj = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part, None)
    return obj


def _build():
    """{torch callable: (handler, its signature)}: the signature is what ``_foreach_*`` binds each
    element's arguments with (None for the ``_foreach_*`` handlers themselves)."""
    table = {}
    for handler, names in ROUTES.items():
        signature = inspect.signature(handler)
        for name in names:
            func = _resolve(name)
            if func is not None:
                table[func] = (handler, signature)
    for base in FOREACH:
        for name in (base, base + "_"):
            func = getattr(torch, "_foreach_" + name, None)
            element = table.get(getattr(torch.Tensor, name, None))
            if func is not None and element is not None:
                table[func] = (foreach.handler(name, *element), None)
    return table


HANDLERS = _build()
