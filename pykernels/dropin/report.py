"""The drop-in mode's report: the torch calls it routed to pykernels, and the compute that torch
ran instead, each with its calls and (when the mode times them, ``enable(report=True)``) the time
spent in them.

Most calls a training loop makes through torch are bookkeeping, not compute: the report counts
them but does not list them, so that a compute op left on torch (``cross_entropy``) is not buried
under thousands of ``is_complex`` and ``item`` calls. The rule, ``is_bookkeeping``:

- a tensor attribute read or write (torch hands the mode ``Tensor.grad.__get__`` and the like) is
  bookkeeping;
- a write is compute: an in-place function by torch's naming (``add_``, ``_foreach_mul_``, which
  returns nothing), ``__setitem__``, and ``backward``, which writes the gradients;
- any other call is compute when its result holds a tensor, and bookkeeping when it does not:
  metadata queries (``dim``, ``size``, ``is_complex``, ``is_floating_point``), reading a value
  (``item``, ``tolist``), switches of grad mode, profiler records, tracing-state queries.

A function is judged by its first call's result. A covered function that fell through (with its
reason) is always listed, and so is every routed call.
"""

import contextlib

import torch
from torch.overrides import resolve_name

from .. import _compat

_T = torch.Tensor
_F = torch.nn.functional

_NAMES = {}


def name(func):
    """A readable name for a torch callable: 'torch.Tensor.add', 'torch.nn.functional.relu' ..."""
    try:
        return _NAMES[func]
    except (KeyError, TypeError):
        pass
    found = None
    short = getattr(func, "__name__", None)
    if is_pykernels_op(func):
        found = f"torch.ops.{func}"
    elif isinstance(short, str):
        # By the object's own name first: resolve_name can give an alias (torch.mm -> 'torch.spmm').
        for prefix, namespace in (("torch.Tensor", _T), ("torch", torch), ("torch.nn.functional", _F)):
            if getattr(namespace, short, None) is func:
                found = f"{prefix}.{short}"
                break
    if found is None:
        with contextlib.suppress(Exception):  # naming is best effort
            found = resolve_name(func)
    if found is None:
        module = getattr(func, "__module__", None)
        qualname = getattr(func, "__qualname__", None) or short or repr(func)
        found = f"{module}.{qualname}" if module else qualname
    with contextlib.suppress(TypeError):  # an unhashable callable is named again on each call
        _NAMES[func] = found
    return found


def is_pykernels_op(func):
    return isinstance(func, (_compat.OpOverload, _compat.OpOverloadPacket)) and str(func).startswith("pykernels.")


def _holds_tensor(result):
    return isinstance(result, torch.Tensor) or (
        isinstance(result, (list, tuple)) and any(isinstance(r, torch.Tensor) for r in result)
    )


def is_bookkeeping(func_name, result):
    """Whether a call of the torch function named ``func_name`` that returned ``result`` is
    bookkeeping (see the module's docstring for the rule)."""
    if func_name.endswith((".__get__", ".__set__", ".__delete__")):
        return True
    last = func_name.rsplit(".", 1)[-1]
    if (last.endswith("_") and not last.endswith("__")) or last in ("__setitem__", "backward"):
        return False
    return not _holds_tensor(result)


def _sorted(rows, timed):
    """Rows (name, calls, seconds): the most time first when timed, else the most calls."""
    return sorted(rows, key=lambda r: (-r[2], -r[1], r[0]) if timed else (-r[1], r[0]))


def format_report(routed, fell, bookkeeping, timed):
    """The report's text. ``routed`` and ``fell``: rows (name, calls, seconds), a fell-through
    covered function's name followed by its reason; ``bookkeeping``: (calls, seconds) of what is
    not listed. Without ``timed``, the seconds are not shown."""
    routed, fell = _sorted(routed, timed), _sorted(fell, timed)
    width = max([len(r[0]) for r in routed + fell] + [38])  # of the names, indented 2 more than headings

    def heading(title):
        return f"  {title:<{width + 2}}  {'calls':>9}" + (f"  {'total ms':>10}  {'us/call':>9}" if timed else "")

    def line(row):
        text, calls, seconds = row
        times = f"  {seconds * 1e3:>10.3f}  {seconds * 1e6 / calls:>9.1f}" if timed else ""
        return f"    {text:<{width}}  {calls:>9}" + times

    total_routed, total_fell = sum(r[1] for r in routed), sum(r[1] for r in fell)
    lines = [
        f"pykernels drop-in report: {total_routed} torch calls routed to pykernels, "
        f"{total_fell} compute calls fell through to torch",
        heading("routed to pykernels"),
        *([line(r) for r in routed] or ["    (none)"]),
        heading("fell through to torch"),
        *([line(r) for r in fell] or ["    (none)"]),
    ]
    calls, seconds = bookkeeping
    if calls:
        spent = f", {seconds * 1e3:.3f} ms" if timed else ""
        lines.append(
            f"  not listed: {calls} bookkeeping calls{spent} (tensor attribute reads and writes, and calls "
            "with no tensor result: x.dim(), x.item(), grad mode, profiler records ...)"
        )
    return "\n".join(lines)
