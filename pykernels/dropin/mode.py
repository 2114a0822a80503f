"""The drop-in mode itself: a ``torch.overrides.TorchFunctionMode`` that looks every torch call up
in the routes (routing.py), runs the handler where the arguments are ones pykernels takes
(arguments.py), lets torch run everything else, and counts both for its report (report.py).

Every routed call pays, besides pykernels' own call, torch's dispatch to a Python mode and this
module's look-ups, so the path of a call is kept short: one dictionary look-up finds the route of
a covered function (or the kind of any other), the argument checks allocate nothing, and the
counts are plain dictionaries. Timing every call for the report is a subclass's work
(``TimedDropIn``, what ``enable(report=True)`` gives), so the plain mode does none of it.
"""

import collections
import sys
import time

import torch
from torch.overrides import TorchFunctionMode

from . import optim
from . import report as _report
from .arguments import refused
from .foreach import AfterMutation
from .handlers import FallThrough
from .routing import HANDLERS

# ---- what the mode knows of each function, kept across modes --------------------------------------

# func -> its kind, for the functions without a route (routing.HANDLERS), from their first call on.
_KINDS = {}
_TORCH_ONLY, _PYKERNELS_OP = "torch only", "pykernels op"
# The torch-only functions whose first call was bookkeeping (report.is_bookkeeping).
_BOOKKEEPING = set()

_TENSOR = (torch.Tensor,)


def _subclass(types):
    """Why torch runs a call that has a tensor subclass among its arguments."""
    return f"{next(t for t in types if t is not torch.Tensor).__name__} argument"


# ---- the mode -------------------------------------------------------------------------------------


class DropIn(TorchFunctionMode):
    """The drop-in mode. Use it through ``enable()``; it counts what it routes and what falls through.

    ``routed`` and ``fell_through`` are ``collections.Counter``s of calls by torch function name
    (``'torch.Tensor.mm'``, ...); ``report()`` formats them as a table.
    """

    timed = False  # whether the mode times its calls (TimedDropIn)

    def __init__(self, report=False, file=None):
        super().__init__()
        self._report = report
        self._file = file
        # Plain dicts, not Counters: a Counter's item update costs several times a dict's.
        self._routed = {}  # func -> calls
        self._fell = {}  # (func, reason) -> calls
        self._plain = {}  # func -> calls of a function without a route (reason None)
        self._last = None  # where the last call was counted: func (routed or plain), or (func, reason)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # torch runs this with the mode taken off its stack, so the calls made here (pykernels',
        # torch's) are not seen by it again.
        try:
            route = HANDLERS.get(func) or _KINDS.get(func)
        except TypeError:  # an unhashable callable: torch runs it, uncounted
            return func(*args, **kwargs) if kwargs else func(*args)
        if route is _TORCH_ONLY:  # attribute reads and the like: the most frequent calls, kept cheap
            plain = self._plain
            plain[func] = plain.get(func, 0) + 1
            self._last = func
            return func(*args, **kwargs) if kwargs else func(*args)
        if route is None:
            return self._first_call(func, types, args, kwargs)
        if route is _PYKERNELS_OP:  # pykernels' own ops, called from user code that calls pykernels
            self._routed[func] = self._routed.get(func, 0) + 1
            self._last = func
            return func(*args, **kwargs) if kwargs else func(*args)
        # A covered function: routed unless an argument is one pykernels does not take, the
        # arguments do not fit the handler, or the handler falls through or fails on them.
        if types and types != _TENSOR:  # a subclass's call: its __torch_function__ is for torch to run
            reason = _subclass(types)
        else:
            reason = refused(args, kwargs)
        if reason is None:
            handler = route[0]
            try:
                try:
                    result = handler(*args, **kwargs) if kwargs else handler(*args)
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
                routed = self._routed
                routed[func] = routed.get(func, 0) + 1
                self._last = func
                return result
        self._last = where = (func, reason)
        self._fell[where] = self._fell.get(where, 0) + 1
        return func(*args, **kwargs) if kwargs else func(*args)

    def _first_call(self, func, types, args, kwargs):
        """The first call in this process of a function without a route: its kind is found and
        kept, and a torch-only one judged bookkeeping or not by this call's result
        (report.is_bookkeeping); one that raises is judged again on its next call."""
        if _report.is_pykernels_op(func):
            _KINDS[func] = _PYKERNELS_OP
            return DropIn.__torch_function__(self, func, types, args, kwargs)
        self._plain[func] = self._plain.get(func, 0) + 1
        self._last = func
        result = func(*args, **kwargs) if kwargs else func(*args)
        if _report.is_bookkeeping(_report.name(func), result):
            _BOOKKEEPING.add(func)
        _KINDS[func] = _TORCH_ONLY
        return result

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
            counts[_report.name(func)] += n
        return counts

    @property
    def fell_through(self):
        """Calls that torch ran, by torch function name (bookkeeping included: attribute reads and writes ...)."""
        counts = collections.Counter()
        for (func, _), n in self._fall_throughs():
            counts[_report.name(func)] += n
        return counts

    def fell_through_reasons(self):
        """{(torch function name, reason): calls} for covered functions that fell through."""
        counts = collections.Counter()
        for (func, reason), n in self._fall_throughs():
            if reason is not None:
                counts[(_report.name(func), reason)] += n
        return counts

    def _seconds_in(self, where):
        """Seconds spent in the calls counted at ``where``; 0 where the mode does not time calls."""
        return 0.0

    def report(self):
        """The report (report.py): the calls routed and the compute calls that fell through, with
        their counts, and their times where the mode timed them (``enable(report=True)``)."""
        routed, fell = {}, {}
        bookkeeping = [0, 0.0]
        for func, n in self._routed.items():
            row = routed.setdefault(_report.name(func), [0, 0.0])
            row[0] += n
            row[1] += self._seconds_in(func)
        for (func, reason), n in self._fall_throughs():
            seconds = self._seconds_in(func if reason is None else (func, reason))
            if reason is None and func in _BOOKKEEPING:
                bookkeeping[0] += n
                bookkeeping[1] += seconds
                continue
            text = _report.name(func) + (f"  [covered, but {reason}]" if reason else "")
            row = fell.setdefault(text, [0, 0.0])
            row[0] += n
            row[1] += seconds
        return _report.format_report(
            [(text, *row) for text, row in routed.items()],
            [(text, *row) for text, row in fell.items()],
            tuple(bookkeeping),
            timed=self.timed,
        )

    def record(self, func, reason=None, seconds=0.0):
        """Counts a call of ``func`` made outside ``__torch_function__`` (torch.optim's steps,
        optim.py) that was routed (reason None) or fell through for ``reason``, and took
        ``seconds`` where the mode times its calls."""
        if reason is None:
            where, counts = func, self._routed
        else:
            where, counts = (func, reason), self._fell
        counts[where] = counts.get(where, 0) + 1
        self._add_seconds(where, seconds)

    def _add_seconds(self, where, seconds):
        pass

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


class TimedDropIn(DropIn):
    """The drop-in mode that also times every call for its report: what ``enable(report=True)`` gives.

    A call's time runs from the mode's receiving it to its result, pykernels' or torch's, and is
    charged to where the call was counted. Calls made inside it are not seen by the mode, so none
    is timed twice."""

    timed = True

    def __init__(self, report=False, file=None):
        super().__init__(report, file)
        self._seconds = {}  # where (as DropIn._last) -> seconds

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self._last = None
        start = time.perf_counter()
        try:
            return DropIn.__torch_function__(self, func, types, args, kwargs)
        finally:
            where = self._last
            if where is not None:  # (None: the call raised before it was counted)
                self._seconds[where] = self._seconds.get(where, 0.0) + time.perf_counter() - start

    def _seconds_in(self, where):
        return self._seconds.get(where, 0.0)

    def _add_seconds(self, where, seconds):
        self._seconds[where] = self._seconds.get(where, 0.0) + seconds


def enable(report=False, file=None):
    """A context manager that routes the torch calls pykernels covers to pykernels for its duration.

    ``with pykernels.dropin.enable(): ...`` -- unmodified torch code, forward and backward, on
    pykernels. ``report=True`` times every call and prints the report (to ``file``, default
    stderr) when the block exits; the returned mode object also has ``routed``, ``fell_through``
    and ``report()``. Without it, the mode counts calls but does not time them.
    """
    return TimedDropIn(report=True, file=file) if report else DropIn(file=file)
