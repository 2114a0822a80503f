"""The drop-in mode itself: a ``torch.overrides.TorchFunctionMode`` that looks every torch call up
in the routes (routing.py), runs the handler where the arguments are ones pykernels takes, lets
torch run everything else, and counts both for its report.
"""

import collections
import contextlib
import sys

import torch
from torch.overrides import TorchFunctionMode, resolve_name

from .. import _compat, optable
from . import optim
from .foreach import AfterMutation
from .handlers import FallThrough
from .routing import HANDLERS

_T = torch.Tensor
_F = torch.nn.functional

# ---- which arguments pykernels takes at all -------------------------------------------------------

# The dtypes pykernels' kernels take (the op table's).
_DTYPES = {getattr(torch, name) for name in optable.ALL}
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _backends():
    # Imported here: the package is fully imported by the time a call is routed, not yet when this is.
    from .. import build_info

    return {b.lower() for b in build_info().get("backends", ["CPU"])}


_DEVICES = None  # device types with a pykernels backend, e.g. {"cpu"}; looked up on first use


def _unsupported(value):
    """Why pykernels cannot take this argument (a string), or None if it can."""
    if isinstance(value, torch.Tensor):
        return _unsupported_tensor(value)
    if isinstance(value, complex):
        return "complex number"
    if isinstance(value, (list, tuple)):
        # Every routed call's arguments come here: plain tensors and numbers, the usual items,
        # take no recursive call.
        for item in value:
            if isinstance(item, torch.Tensor):
                why = _unsupported_tensor(item)
            elif isinstance(item, (list, tuple, complex)):
                why = _unsupported(item)
            else:
                continue
            if why:
                return why
    return None


def _unsupported_tensor(t):
    if type(t) not in _PLAIN_TYPES:
        return f"{type(t).__name__} argument"
    if t.layout is not torch.strided:
        return f"{t.layout} tensor"
    if t.dtype not in _DTYPES:
        return f"{t.dtype} tensor"
    if t.is_cpu:  # (is_cpu is cheaper than building t.device)
        return None
    global _DEVICES
    if _DEVICES is None:
        _DEVICES = _backends()
    if t.device.type not in _DEVICES:
        return f"{t.device.type} tensor"
    return None


# ---- functions without a handler, and names for the report ----------------------------------------

# Functions without a handler, by kind, filled in as they are first seen.
_OTHERS = {}
_TORCH_ONLY, _PYKERNELS_OP = "torch only", "pykernels op"

_NAMES = {}


def _name(func):
    """A readable name for a torch callable: 'torch.Tensor.add', 'torch.nn.functional.relu' ..."""
    try:
        return _NAMES[func]
    except (KeyError, TypeError):
        pass
    name = None
    short = getattr(func, "__name__", None)
    if _is_pykernels_op(func):
        name = f"torch.ops.{func}"
    elif isinstance(short, str):
        # By the object's own name first: resolve_name can give an alias (torch.mm -> 'torch.spmm').
        for prefix, namespace in (("torch.Tensor", _T), ("torch", torch), ("torch.nn.functional", _F)):
            if getattr(namespace, short, None) is func:
                name = f"{prefix}.{short}"
                break
    if name is None:
        with contextlib.suppress(Exception):  # naming is best effort
            name = resolve_name(func)
    if name is None:
        module = getattr(func, "__module__", None)
        qualname = getattr(func, "__qualname__", None) or short or repr(func)
        name = f"{module}.{qualname}" if module else qualname
    with contextlib.suppress(TypeError):  # an unhashable callable is named again on each call
        _NAMES[func] = name
    return name


def _is_pykernels_op(func):
    return isinstance(func, (_compat.OpOverload, _compat.OpOverloadPacket)) and str(func).startswith("pykernels.")


def _is_attribute(name):
    return name.endswith((".__get__", ".__set__", ".__delete__"))


# ---- the mode -------------------------------------------------------------------------------------


class DropIn(TorchFunctionMode):
    """The drop-in mode. Use it through ``enable()``; it counts what it routes and what falls through.

    ``routed`` and ``fell_through`` are ``collections.Counter``s of calls by torch function name
    (``'torch.Tensor.mm'``, ...); ``report()`` formats them as a table.
    """

    def __init__(self, report=False, file=None):
        super().__init__()
        self._report = report
        self._file = file
        self._routed = collections.Counter()  # func -> calls
        self._fell = collections.Counter()  # (func, reason) -> calls
        self._plain = {}  # func -> calls that fell through for want of a handler (reason None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # torch runs this with the mode taken off its stack, so the calls made here (pykernels',
        # torch's) are not seen by it again.
        try:
            entry = HANDLERS.get(func, False) or _OTHERS.get(func)
        except TypeError:  # an unhashable callable
            entry = None
        if entry is None:  # first sight of a function without a handler: which kind is it
            entry = _PYKERNELS_OP if _is_pykernels_op(func) else _TORCH_ONLY
            with contextlib.suppress(TypeError):
                _OTHERS[func] = entry
        if entry is _TORCH_ONLY:  # attribute reads and the like: the most frequent calls, kept cheap
            plain = self._plain
            plain[func] = plain.get(func, 0) + 1
            return func(*args, **kwargs) if kwargs else func(*args)
        kwargs = kwargs or {}
        if entry is _PYKERNELS_OP:  # pykernels' own ops, called from a handler's pykernels code
            self._routed[func] += 1
            return func(*args, **kwargs)
        handler = entry[0]
        reason = _unsupported(args) or (_unsupported(tuple(kwargs.values())) if kwargs else None)
        if reason is None:
            try:
                try:
                    result = handler(*args, **kwargs)
                except TypeError as exc:
                    # Raised by the call itself, before the handler ran (no frame of its own in the
                    # traceback): the arguments do not fit the handler's signature.
                    if exc.__traceback__.tb_next is None:
                        raise FallThrough("arguments") from None
                    raise
            except FallThrough as exc:
                reason = str(exc)
            except AfterMutation as exc:
                raise exc.__cause__ from None
            except Exception as exc:  # noqa: BLE001 - torch runs it, and raises its own error if it is one
                reason = f"pykernels raised {type(exc).__name__}"
            else:
                self._routed[func] += 1
                return result
        self._fell[(func, reason)] += 1
        return func(*args, **kwargs)

    # -- results --------------------------------------------------------------------------------------

    def _fall_throughs(self):
        """((func, reason or None), calls) for every call torch ran."""
        yield from self._fell.items()
        for func, n in self._plain.items():
            yield (func, None), n

    @property
    def routed(self):
        """Calls routed to pykernels, by torch function name."""
        counts = collections.Counter()
        for func, n in self._routed.items():
            counts[_name(func)] += n
        return counts

    @property
    def fell_through(self):
        """Calls that torch ran, by torch function name (attribute reads and writes included)."""
        counts = collections.Counter()
        for (func, _), n in self._fall_throughs():
            counts[_name(func)] += n
        return counts

    def fell_through_reasons(self):
        """{(torch function name, reason): calls} for covered functions that fell through."""
        counts = collections.Counter()
        for (func, reason), n in self._fall_throughs():
            if reason is not None:
                counts[(_name(func), reason)] += n
        return counts

    def report(self):
        """The routing table, as text."""
        routed = self.routed
        fell = collections.Counter()
        attributes = 0
        for (func, reason), n in self._fall_throughs():
            name = _name(func)
            if _is_attribute(name):
                attributes += n
                continue
            fell[name + (f"  [covered, but {reason}]" if reason else "")] += n
        rows = [(name, n) for name, n in sorted(routed.items(), key=lambda kv: (-kv[1], kv[0]))]
        fell_rows = [(name, n) for name, n in sorted(fell.items(), key=lambda kv: (-kv[1], kv[0]))]
        width = max([len(name) for name, _ in rows + fell_rows] + [40])
        total_routed, total_fell = sum(routed.values()), sum(fell.values())
        lines = [
            (
                f"pykernels drop-in report: {total_routed} torch calls routed to pykernels, "
                f"{total_fell} fell through to torch"
            )
        ]
        lines.append(f"  {'routed to pykernels':<{width}}  {'calls':>9}")
        lines += [f"    {name:<{width - 2}}  {n:>9}" for name, n in rows] or ["    (none)"]
        lines.append(f"  {'fell through to torch':<{width}}  {'calls':>9}")
        lines += [f"    {name:<{width - 2}}  {n:>9}" for name, n in fell_rows] or ["    (none)"]
        if attributes:
            lines.append(f"  (not listed: {attributes} tensor attribute reads and writes, e.g. x.shape, w.grad)")
        return "\n".join(lines)

    def record(self, func, reason=None):
        """Counts a call of ``func`` that was routed (reason None) or fell through for ``reason``
        outside ``__torch_function__``: torch.optim's steps (optim.py)."""
        if reason is None:
            self._routed[func] += 1
        else:
            self._fell[(func, reason)] += 1

    def __enter__(self):
        mode = super().__enter__()
        optim.attach()
        return mode

    def __exit__(self, exc_type, exc_value, tb):
        optim.detach()
        result = super().__exit__(exc_type, exc_value, tb)
        if self._report:
            print(self.report(), file=self._file or sys.stderr, flush=True)
        return result


def enable(report=False, file=None):
    """A context manager that routes the torch calls pykernels covers to pykernels for its duration.

    ``with pykernels.dropin.enable(): ...`` -- unmodified torch code, forward and backward, on
    pykernels. ``report=True`` prints the routing table (to ``file``, default stderr) when the
    block exits; the returned mode object also has ``routed``, ``fell_through`` and ``report()``.
    """
    return DropIn(report=report, file=file)
