"""What one benchmark case is: the calls timed for each library, and the work they do."""

from dataclasses import dataclass
from typing import Callable

import torch

GFLOPS, GBS = "GFLOP/s", "GB/s"
F32 = torch.float32.itemsize  # bytes per element; the memory-bound cases are all float32


@dataclass(frozen=True)
class Case:
    """One benchmark: ``call(lib, *make_inputs(device))`` timed for each library.

    ``call`` returns the tensor that is compared between libraries as a sanity check.
    ``work`` is the case's floating-point operations (``unit`` GFLOP/s) or the bytes it must move
    at the least, every input read once and every output written once (``unit`` GB/s).
    """

    op: str
    shape: str
    dtype: torch.dtype
    make_inputs: Callable[[torch.device], tuple]
    call: Callable
    work: float
    unit: str
    target: float = None  # the ratio this case should reach, where an issue sets one
    # prepare(library name, *inputs) -> fn, for cases that keep state across calls (a model and
    # its optimizer); by default fn calls ``call(lib, *inputs)``.
    prepare: Callable = None
