"""What the public functions (pykernels/_api.py, generated) call besides their typed bindings.

Under torch.compile and __torch_function__ (a tensor subclass's or a mode's), and for arguments a
binding can't take, a public function calls torch.ops.pykernels.<op> instead: the overload packet,
which picks the overload by its arguments (``add.Scalar`` for a number) and converts what the
bindings leave to it. The written tensor of an in-place or out= call is the function's result,
as in torch (the ops themselves return nothing).
"""

import numbers

import torch

from . import _compat
from . import optable

compiling = torch.compiler.is_compiling
has_torch_function = _compat.has_torch_function

_NUMBERS = (numbers.Number, torch.SymInt, torch.SymFloat, torch.SymBool)
_packets = {}  # public name -> (torch.ops packet, the public function's argument names and types)


def _packet(public_name):
    try:
        return _packets[public_name]
    except KeyError:
        pass
    packet = getattr(torch.ops.pykernels, public_name)
    tensors = {}  # argument name -> whether every overload takes a Tensor there
    for overload in packet.overloads():
        for argument in _compat.op_schema(getattr(packet, overload)).arguments:
            is_tensor = str(argument.type) == "Tensor"
            tensors[argument.name] = tensors.get(argument.name, True) and is_tensor
    numbers_allowed = optable.BY_NAME[public_name.rstrip("_")].kind == "binary"
    _packets[public_name] = packet, tensors, numbers_allowed
    return _packets[public_name]


def _scalar(value):
    """A Scalar argument as torch.ops takes it: a 0-dim tensor or a numpy number as the Python number it
    holds (torch reads a numpy bool as a float)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not compiling():
        return value.item()
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
        return float(value) if isinstance(value, bool) else value
    return value


def fallback(public_name, args, kwargs):
    packet, tensors, numbers_allowed = _packet(public_name)
    positions = {name: i + 1 for i, name in enumerate(tensors)}
    given = dict(zip(tensors, args))
    given.update((k, v) for k, v in kwargs.items() if v is not None)
    for name, value in given.items():
        if tensors.get(name) and not isinstance(value, torch.Tensor):
            if numbers_allowed and name != "out" and isinstance(value, _NUMBERS):
                continue
            raise TypeError(f"pykernels.{public_name}(): argument '{name}' (position {positions[name]}) must be "
                            f"Tensor, not {type(value).__name__}")
    out = kwargs.get("out")
    kwargs = {k: _scalar(v) for k, v in kwargs.items() if k != "out"}
    if out is not None:
        packet(*args, **kwargs, out=out)
        return out
    result = packet(*args, **kwargs)
    return args[0] if public_name.endswith("_") else result
