"""Command line for pykernels: ``python -m pykernels <command>`` or the ``pykernels`` console script.

Each subcommand is one entry in ``COMMANDS``: its help line, a function adding its arguments to
its subparser, a function checking them, and a function running it that returns the exit status.
The check runs right after parsing, before any work: a user's mistake (a missing script, an
unwritable path, an op not in the suite) ends the command there, as argparse's own errors do, with
one line on stderr, ``pykernels <command>: error: ...``, and exit status 2.
"""

import argparse
import functools
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import torch

import pykernels
from pykernels import bench, dropin, train


class Parser(argparse.ArgumentParser):
    """argparse's parser, with each error on one line: ``<prog>: error: <message>``, exit status 2.

    argparse prints a usage line before the error, and for a subcommand an abbreviated one that
    names none of its options; ``--help`` gives the whole usage instead.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _no_check(parser, args):
    """Nothing to check beyond what argparse does."""


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # check(parser, args) calls parser.error() on a mistake argparse cannot see by itself
    check: Callable[[argparse.ArgumentParser, argparse.Namespace], None] = _no_check


def _info_arguments(parser):
    """``info`` takes no options."""


def _names(value):
    """A list, or a string separated by ';' or ',' as a C++ extension may give it, as one display line."""
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value or []
    return ", ".join(item.strip() for item in items if item.strip())


def info(args):
    """Print what this pykernels build contains and what it runs with: the first thing to check when an op fails."""
    build = pykernels.build_info()
    built_against = build.get("torch_version")
    cuda_absent = pykernels._build.cuda_absent_reason() or "the build did not record why"
    cuda = (
        f"{torch.cuda.device_count()} visible ({torch.cuda.get_device_name()})"
        if torch.cuda.is_available()
        else "none visible"
    )
    fields = [
        ("pykernels", pykernels.__version__),
        ("torch, built against", built_against or "unknown"),
        ("torch, running", torch.__version__),
        ("backends", _names(build.get("backends")) or "unknown"),
        ("CPU SIMD", build.get("cpu_simd") or "unknown"),
        ("CUDA arches", _names(build.get("cuda_arches")) or f"none: {cuda_absent}"),
        (
            "Hopper GEMM",
            "sm_90a wgmma/TMA kernel compiled in, used with PYKERNELS_GEMM_SM90=1"
            if build.get("sm90_gemm")
            else "not compiled in (no sm_90a target)",
        ),
        ("torch threads", torch.get_num_threads()),
        ("CUDA device", cuda),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name:<{width}}  {value}")
    return 0


# ---- argument types and checks shared by the commands ----------------------------------------------


def _positive(kind):
    """An argparse type: a finite number of ``kind`` (int or float) above 0."""
    what = "an integer" if kind is int else "a number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def _check_device(parser, name):
    """The device exists, is visible, and this pykernels build has kernels for it."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        parser.error(f"--device {name}: {exc}")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {name}: only cpu and cuda are supported")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error(f"--device {name}: no CUDA device is visible to torch")
        if "cuda" not in {backend.lower() for backend in pykernels.build_info().get("backends", [])}:
            parser.error(f"--device {name}: this pykernels build has no CUDA kernels")


def _check_writable_dir(parser, option, path):
    """``path`` is a directory that can be written into, or one that can be created."""
    existing = Path(path).absolute()
    while not existing.exists():  # the nearest existing ancestor decides whether it can be created
        existing = existing.parent
    if not existing.is_dir():
        parser.error(f"{option} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        parser.error(f"{option} {path}: {existing} is not writable")


def _check_writable_file(parser, option, path):
    """``path`` names a file that can be written, in a directory that exists."""
    path = Path(path)
    if path.is_dir():
        parser.error(f"{option} {path}: is a directory")
    if not path.absolute().parent.is_dir():
        parser.error(f"{option} {path}: no directory {path.parent}")
    if not os.access(path.absolute().parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        parser.error(f"{option} {path}: not writable")


def _has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


# ---- bench -----------------------------------------------------------------------------------------


def _bench_arguments(parser):
    parser.add_argument(
        "--suite",
        choices=sorted(bench.SUITES),
        default="default",
        help="which list of cases to run: 'quick' is a smoke test, 'cpu' the CPU speed targets, "
        "'train' whole training steps, 'percall' the cost of one small call (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where the inputs live and the kernels run (default: %(default)s)",
    )
    parser.add_argument(
        "--ops",
        type=lambda s: [op for op in s.split(",") if op],
        default=[],
        help="comma-separated ops to keep, e.g. mm,add (default: all in the suite)",
    )
    parser.add_argument(
        "--min-run-time",
        type=_positive(float),
        default=0.5,
        metavar="SECONDS",
        help="timing per implementation per case (default: %(default)s)",
    )
    parser.add_argument("--threads", type=_positive(int), help="torch.set_num_threads before timing (default: torch's)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the results as .md and .json (and the plot) into DIR, created if missing "
        "(default: print the table only, write no file)",
    )
    parser.add_argument(
        "--peak",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the FMA peak and copy bandwidth first, and show each rate as a %% of "
        "them (default: on for --suite cpu and train)",
    )
    parser.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="plot into the --out directory: for --suite train each step's time, as <name>.png; "
        "otherwise also time square float32 mm from 16 to 1536 and plot GFLOP/s against size "
        "as <name>-mm.png (needs matplotlib; default: on for --suite cpu and train with --out)",
    )


def _bench(args):
    """Exit status 1 if pykernels failed or differed from torch on a case."""
    rows = bench.run(
        args.suite,
        args.ops,
        args.device,
        args.min_run_time,
        threads=args.threads,
        out=args.out,
        peak=args.peak,
        plot=args.plot,
    )
    return int(any(r.get("error") or r.get("mismatch") for r in rows))


def _check_bench(parser, args):
    _check_device(parser, args.device)
    known = {case.op for case in bench.SUITES[args.suite]}
    unknown = [op for op in args.ops if op not in known]
    if unknown:
        parser.error(f"--ops: {', '.join(unknown)} not in suite '{args.suite}' (it has: {', '.join(sorted(known))})")
    if args.out is not None:
        _check_writable_dir(parser, "--out", args.out)
    if args.plot and args.out is None:
        parser.error("--plot writes a PNG beside the results: give --out DIR")
    if args.plot and not _has_matplotlib():
        parser.error("--plot needs matplotlib: pip install 'pykernels[plot]'")


# ---- train -----------------------------------------------------------------------------------------


def _train_arguments(parser):
    parser.add_argument(
        "--variant",
        action="append",
        choices=list(train.VARIANTS) + ["all"],
        help="variant to run (repeatable; default: all)",
    )
    parser.add_argument("--iters", type=_positive(int), default=train.ITERS, help="iterations (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=train.SEED, help="random seed for data and weights (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="default: %(default)s")
    parser.add_argument(
        "--dropin",
        action="store_true",
        help="run the torch code under pykernels.dropin.enable() instead of the pykernels API",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss curves (log scale); needs matplotlib")


def _train(args):
    """Exit status 0 when every criterion checked holds, else 1."""
    names = list(train.VARIANTS) if not args.variant or "all" in args.variant else list(dict.fromkeys(args.variant))
    results = train.run(names, args.iters, args.seed, args.device, getattr(torch, args.dtype), args.dropin, args.plot)
    return 1 if any(r.failures() for r in results) else 0


def _check_train(parser, args):
    _check_device(parser, args.device)
    if args.plot:
        if not _has_matplotlib():
            parser.error("--plot needs matplotlib: pip install 'pykernels[plot]'")
        _check_writable_file(parser, "--plot", args.plot)


# ---- run -------------------------------------------------------------------------------------------


def _run_arguments(parser):
    parser.add_argument(
        "-m", dest="module", action="store_true", help="SCRIPT is a module name, run as `python -m SCRIPT` runs it"
    )
    parser.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="do not time the calls nor print the routing report. It goes to stderr once the script has "
        "finished (returned, called sys.exit or raised), unless the script made no "
        "torch call at all, as when it stops at its own --help or a usage error",
    )
    parser.add_argument("target", metavar="SCRIPT", help="the script to run (or a module name, with -m)")
    # argparse marks a REMAINDER positional required, and would name ARGS as missing beside SCRIPT.
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, metavar="ARGS", help="the script's own arguments"
    ).required = False


def _check_run(parser, args):
    if args.module:
        try:
            found = importlib.util.find_spec(args.target) is not None
        except (ImportError, ValueError):  # a parent package that is missing, or not a module name
            found = False
        if not found:
            parser.error(f"no module named {args.target!r}")
    elif not os.path.exists(args.target):  # a directory or zip file with a __main__.py runs too
        parser.error(f"can't open file {args.target!r}: no such file or directory")


def _run(args):
    return dropin.run_script(args.target, args.args, module=args.module, report=args.report)


# ---- the parser ------------------------------------------------------------------------------------


COMMANDS = {
    "info": Command("show the build (versions, backends, SIMD, CUDA arches) and the runtime", _info_arguments, info),
    "bench": Command(
        "time pykernels against torch, print the table, and save it with --out", _bench_arguments, _bench, _check_bench
    ),
    "train": Command(
        "train the tutorials' two-layer net on pykernels and on torch, and compare the loss curves",
        _train_arguments,
        _train,
        _check_train,
    ),
    "run": Command(
        "run a Python script with its torch calls routed to pykernels, then report the routing",
        _run_arguments,
        _run,
        _check_run,
    ),
}


def build_parser():
    parser = Parser(prog="pykernels", description="Hand-written CPU and CUDA kernels for PyTorch.")
    parser.add_argument("--version", action="version", version=f"pykernels {pykernels.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run, check=functools.partial(command.check, sub))
    return parser


def main(argv=None):
    """Parse ``argv`` (default: the command line), check it, run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.check(args)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
