"""Which torch function, Tensor method or operator the drop-in mode sends to which handler.

The op table (pykernels/optable.py) names, for each op, the torch callables whose arguments are
its public function's: those go straight to the public function. ``ROUTES`` maps the handlers
(handlers.py) that adapt other calls to the torch callables they take: composites (addmm, lerp,
...), calls spelled differently (true_divide, sum's axis=), in-place forms computed out of place.
A handler takes precedence over the table's route for the same callable. ``FOREACH`` names the
``torch._foreach_*`` functions taken element by element (foreach.py). A name the installed torch
lacks is skipped. ``HANDLERS``, what the mode looks calls up in, is built when the module is imported.
"""

import functools
import inspect

import torch

from .. import _api, optable
from . import foreach
from . import handlers as h

ROUTES = {
    # matmul family
    h.rmatmul: ("torch.Tensor.__rmatmul__",),
    h.mv: ("torch.mv", "torch.Tensor.mv"),
    h.dot: ("torch.dot", "torch.Tensor.dot"),
    h.addmm: ("torch.addmm", "torch.Tensor.addmm"),
    h.linear: ("torch.nn.functional.linear",),
    # elementwise
    h.rsub: ("torch.rsub",),
    h.rsub_operator: ("torch.Tensor.__rsub__",),
    h.true_divide: ("torch.true_divide", "torch.Tensor.true_divide", "torch.Tensor.__div__"),
    h.rdiv_operator: ("torch.Tensor.__rtruediv__", "torch.Tensor.__rdiv__"),
    h.pow_: ("torch.Tensor.pow_", "torch.Tensor.__ipow__"),
    h.square: ("torch.square", "torch.Tensor.square"),
    h.square_: ("torch.Tensor.square_",),
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
    h.functional_relu: ("torch.nn.functional.relu",),
    h.functional_relu_: ("torch.nn.functional.relu_",),
    h.clamp: ("torch.clamp", "torch.clip", "torch.Tensor.clamp", "torch.Tensor.clip"),
    h.clamp_: ("torch.clamp_", "torch.clip_", "torch.Tensor.clamp_", "torch.Tensor.clip_"),
    h.clamp_min: ("torch.clamp_min", "torch.Tensor.clamp_min"),
    h.clamp_min_: ("torch.clamp_min_", "torch.Tensor.clamp_min_"),
    # MSE loss
    h.mse_loss: ("torch.nn.functional.mse_loss",),
}

# torch._foreach_<name> and torch._foreach_<name>_, each element through the route of
# Tensor.<name> / Tensor.<name>_: the table's ops with a Tensor method, and what optimizers add.
FOREACH = tuple(op.name for op in optable.OPS if f"torch.Tensor.{op.name}" in op.torch) + ("lerp", "addcmul", "addcdiv")


def _resolve(name):
    """The callable a dotted name (``torch.Tensor.add``) names in the installed torch, or None."""
    obj = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part, None)
    return obj


@functools.cache
def _swapped(function):
    """``function(other, self)``: what ``x.__radd__(y)``, ``y + x``, computes."""

    def swapped(self, other):
        return function(other, self)

    return swapped


def _table_routes():
    """{public function, or its swapped form: the torch callables the op table maps to it}."""
    routes = {}
    for op in optable.OPS:
        for name in op.torch:
            attr = name.rsplit(".", 1)[1]
            if attr.startswith("__r"):
                target = _swapped(getattr(_api, op.name))
            elif attr.startswith("__i") or (attr.endswith("_") and not attr.endswith("__")):
                target = getattr(_api, op.name + "_", None) or h.computed_in_place(getattr(_api, op.name))
            else:
                target = getattr(_api, op.name)
            routes.setdefault(target, []).append(name)
    return routes


def _build():
    """{torch callable: (handler, its signature)}: the signature is what ``_foreach_*`` binds each
    element's arguments with (None for the ``_foreach_*`` handlers themselves)."""
    table = {}
    for handler, names in (*_table_routes().items(), *ROUTES.items()):
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
