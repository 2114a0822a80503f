"""Which arguments pykernels takes: what the drop-in mode asks of every covered call before it
routes it.

A tensor pykernels takes is a plain one (``torch.Tensor`` or ``nn.Parameter``, not a subclass),
strided, of a dtype of the op table, on a device with a pykernels backend; a Python number is any
but a complex one; a list or tuple, when its items are. The checks read three attributes of each
tensor and allocate nothing: the mode asks them on every call, as that costs less than building
a key of the same attributes to look a kept answer up by.
"""

import torch

from .. import optable

# The dtypes pykernels' kernels take (the op table's).
_DTYPES = frozenset(getattr(torch, name) for name in optable.ALL)
_TENSOR = torch.Tensor
_PLAIN = (torch.Tensor, torch.nn.Parameter)
_STRIDED = torch.strided
_OTHER = (complex, list, tuple)  # the other values that may hold something pykernels does not take


def _backends():
    # Imported here: the package is fully imported by the time a call is routed, not yet when this is.
    from .. import build_info

    return {b.lower() for b in build_info().get("backends", ["CPU"])}


_DEVICES = None  # device types with a pykernels backend, e.g. {"cpu"}; looked up on first use


def _on_backend(t):
    global _DEVICES
    if _DEVICES is None:
        _DEVICES = _backends()
    return t.device.type in _DEVICES


def refused(args, kwargs):
    """Why pykernels cannot take a call's arguments (a string), or None if it takes them all."""
    for v in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(v, _TENSOR):
            if (
                v.__class__ not in _PLAIN
                or v.layout is not _STRIDED
                or v.dtype not in _DTYPES
                or not (v.is_cpu or _on_backend(v))  # (is_cpu is cheaper than building v.device)
            ):
                return _refused_tensor(v)
        elif isinstance(v, _OTHER):
            why = "complex number" if isinstance(v, complex) else refused(v, None)
            if why:
                return why
    return None


def _refused_tensor(t):
    if t.__class__ not in _PLAIN:
        return f"{type(t).__name__} argument"
    if t.layout is not _STRIDED:
        return f"{t.layout} tensor"
    if t.dtype not in _DTYPES:
        return f"{t.dtype} tensor"
    return f"{t.device.type} tensor"
