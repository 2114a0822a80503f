"""What the public functions (pykernels/_api.py, generated) call besides their typed bindings.

Under torch.compile and __torch_function__ (a tensor subclass's or a mode's), and for arguments a
binding can't take, a public function calls the torch.ops.pykernels overload that its arguments
select (``add.Scalar`` for a number), which those expect and which converts what the bindings
leave to it. The written tensor of an in-place or out= call is the function's result, as in
torch (the ops themselves return nothing).
"""

import numbers

import torch

from . import _compat, optable

compiling = torch.compiler.is_compiling
has_torch_function = _compat.has_torch_function

_NUMBERS = (numbers.Number, torch.SymInt, torch.SymFloat, torch.SymBool)


def _forms(public_name):
    """(overload, [(argument name, 'Tensor' | 'number' | 'Scalar' | None)], writes out) for each
    overload a public function may call, kernel forms first. 'number' marks an operand that is a
    Scalar here and a Tensor in another form; 'Scalar' a number-only argument such as alpha."""
    op = optable.BY_NAME[public_name.rstrip("_")]
    texts = [t for t in op.overloads + op.numbers if t.split("(")[0].split(".")[0] == public_name]
    schemas = []
    for text in texts:
        name, _, overload = text.split("(")[0].partition(".")
        overload_op = getattr(getattr(torch.ops.pykernels, name), overload or "default")
        schemas.append((overload_op, _compat.op_schema(overload_op).arguments))
    tensor_somewhere = {a.name for _, arguments in schemas for a in arguments if str(a.type) == "Tensor"}
    forms = []
    for overload_op, arguments in schemas:
        kinds = []
        for a in arguments:
            t = str(a.type)
            kind = (
                "Tensor"
                if t == "Tensor"
                else "number"
                if t == "Scalar" and a.name in tensor_somewhere
                else ("Scalar" if t == "Scalar" else None)
            )
            kinds.append((a.name, kind))
        forms.append((overload_op, kinds, any(a.name == "out" for a in arguments)))
    return forms


# Built at import: torch.compile traces the fallback, and can't trace an overload packet's lookups.
_FORMS = {name: _forms(name) for name, _ in optable.public_functions()}


def _scalar(public_name, name, value):
    """A number-only argument (alpha) as torch.ops takes it: a 0-dim tensor or a numpy number as the
    Python number it holds (torch reads a numpy bool as a float); any other tensor is torch's TypeError."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise TypeError(f"pykernels.{public_name}(): argument '{name}' must be Number, not Tensor")
        return value if compiling() else value.item()
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
        return float(value) if isinstance(value, bool) else value
    return value


def _matches(kinds, given):
    for name, kind in kinds:
        if name not in given:
            continue
        value = given[name]
        if kind == "Tensor" and not isinstance(value, torch.Tensor):
            return False
        if kind == "number" and not isinstance(value, _NUMBERS):
            return False
    return True


def fallback(public_name, args, kwargs):
    forms = _FORMS[public_name]
    out = kwargs.get("out")
    kwargs = {
        k: _scalar(public_name, k, v) if k not in ("rounding_mode", "dtype", "dim", "keepdim") else v
        for k, v in kwargs.items()
        if k != "out"
    }
    given = dict(kwargs)
    if out is not None:
        given["out"] = out
    for overload_op, kinds, writes_out in forms:
        if writes_out != (out is not None):
            continue
        given.update(zip((n for n, _ in kinds), args))
        if _matches(kinds, given):
            if out is not None:
                overload_op(*args, **kwargs, out=out)
                return out
            result = overload_op(*args, **kwargs)
            return args[0] if public_name.endswith("_") else result
    _type_error(public_name, forms, args, out)


def _type_error(public_name, forms, args, out):
    """torch's TypeError for an argument no overload takes, naming the first such argument."""
    kinds = {}
    for _, form_kinds, _ in forms:
        for name, kind in form_kinds:
            kinds.setdefault(name, set()).add(kind)
    names = [n for n, _ in forms[0][1]]
    given = dict(zip(names, args))
    if out is not None:
        given["out"] = out
    for position, name in enumerate(names):
        if name not in given or isinstance(given[name], torch.Tensor):
            continue
        allowed = kinds[name]
        if "Tensor" in allowed and not ("number" in allowed and isinstance(given[name], _NUMBERS)):
            raise TypeError(
                f"pykernels.{public_name}(): argument '{name}' (position {position + 1}) must be Tensor, "
                f"not {type(given[name]).__name__}"
            )
    raise TypeError(f"pykernels.{public_name}(): no overload takes these arguments")
