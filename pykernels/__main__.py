"""Command line for pykernels: ``python -m pykernels <command>`` or the ``pykernels`` console script.

Each subcommand is one entry in ``COMMANDS``: its help line, a function adding its arguments to
its subparser, and a function running it that returns the exit status. New subcommands (e.g.
``train``, ``run``) plug in there.
"""
import argparse
import sys
from typing import Callable, NamedTuple

import torch

import pykernels
from pykernels import bench, dropin, train


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _info_arguments(parser):
    """``info`` takes no options."""


def _names(value):
    """A list, or a string separated by ';' or ',' as a C++ extension may give it, as one display line."""
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value or []
    return ", ".join(item.strip() for item in items if item.strip())


def info(args):
    """Print what this pykernels build contains and what it runs with: the first thing to check when an op fails."""
    build = bench.build_info()
    built_against = build.get("torch_version")
    cuda_absent = pykernels._build.cuda_absent_reason() or "the build did not record why"
    cuda = (f"{torch.cuda.device_count()} visible ({torch.cuda.get_device_name()})"
            if torch.cuda.is_available() else "none visible")
    fields = [
        ("pykernels", pykernels.__version__),
        ("torch, built against", built_against or "unknown"),
        ("torch, running", torch.__version__),
        ("backends", _names(build.get("backends")) or "unknown"),
        ("CPU SIMD", build.get("cpu_simd") or "unknown"),
        ("CUDA arches", _names(build.get("cuda_arches")) or f"none: {cuda_absent}"),
        ("Hopper GEMM", "sm_90a wgmma/TMA kernel compiled in, used with PYKERNELS_GEMM_SM90=1"
         if build.get("sm90_gemm") else "not compiled in (no sm_90a target)"),
        ("torch threads", torch.get_num_threads()),
        ("CUDA device", cuda),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name:<{width}}  {value}")
    return 0


COMMANDS = {
    "info": Command("show the build (versions, backends, SIMD, CUDA arches) and the runtime", _info_arguments, info),
    "bench": Command("time pykernels against torch and save the results", bench.add_arguments, bench.run),
    "train": Command(train.HELP, train.add_arguments, train.run),
    "run": Command(dropin.RUN_HELP, dropin.add_arguments, dropin.run),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="pykernels", description="Hand-written CPU and CUDA kernels for PyTorch.")
    parser.add_argument("--version", action="version", version=f"pykernels {pykernels.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
