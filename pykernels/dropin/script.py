"""Running a whole script under the drop-in mode, as ``python`` would run it: what
``python -m pykernels run SCRIPT [ARGS...]`` does once its arguments are checked."""

import functools
import os
import runpy
import sys
import traceback

from .mode import DropIn, TimedDropIn


def _exit_status(exc):
    """The exit status ``python`` gives for a ``SystemExit``, printing a message it carries."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


# Where the frames of the machinery that runs a script come from.
_LAUNCHER_FILES = {__file__, runpy.__file__, "<frozen runpy>"}


def _print_script_traceback(exc):
    """Print ``exc`` as ``python script.py`` would: from the script's frames on, without the frames
    of this module and of runpy that ran it (none are left for a SyntaxError in the script)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _LAUNCHER_FILES:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def run_script(target, argv=(), *, module=False, report=True, file=None):
    """Run a script (or, with ``module=True``, a module as ``python -m`` does) under the drop-in
    mode, as its own ``__main__`` with ``sys.argv = [target, *argv]``; returns its exit status, as
    ``python`` would give it (1 after an uncaught exception, whose traceback shows the script's frames).

    Then, unless ``report=False``, print the routing report (to ``file``, default stderr), whether the
    script returned, called ``sys.exit`` or raised; but not when it made no torch call at all, as when
    it stopped at its own ``--help`` or a usage error: there is nothing to report then.
    """
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    mode = TimedDropIn() if report else DropIn()
    status = 0
    try:
        sys.argv = [target, *argv]  # for a module, runpy puts the module's file in argv[0]
        if module:
            run = functools.partial(runpy.run_module, target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            run = functools.partial(runpy.run_path, target, run_name="__main__")
        with mode:
            run()
    except SystemExit as exc:
        status = _exit_status(exc)
    except KeyboardInterrupt as exc:
        _print_script_traceback(exc)
        status = 130
    except BaseException as exc:  # noqa: BLE001 - reported as python reports an uncaught exception
        _print_script_traceback(exc)
        status = 1
    finally:
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path
        try:
            sys.stdout.flush()  # the script's output first
        except (OSError, ValueError):  # the script closed or broke stdout
            pass
        if report and (mode.routed or mode.fell_through):
            print(mode.report(), file=file or sys.stderr, flush=True)
    return status
