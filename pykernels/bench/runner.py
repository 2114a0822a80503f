"""Running the benchmark: each case timed against torch, the machine's ceilings measured around
the cases, and the results printed and saved.
"""

import functools
import sys
from pathlib import Path

import torch

from . import machine, report, timing
from .case import GBS
from .cases import LIBRARIES, mm_case, select_cases


def _copy(t):
    """An equal, independent copy, so in-place updates and .grad of one library never reach the other
    (a number argument is its own copy)."""
    if not isinstance(t, torch.Tensor):
        return t
    return t.detach().clone().requires_grad_(t.requires_grad)


def _mismatch(out, expected):
    """Why pykernels' result differs from torch's, or None. Loose: a sanity check, not the test suite."""
    if out.shape != expected.shape or out.dtype != expected.dtype:
        return f"got {out.dtype}{list(out.shape)}, torch gives {expected.dtype}{list(expected.shape)}"
    out, expected = out.detach().double(), expected.detach().double()
    scale = expected.abs().max().item() if expected.numel() else 0.0
    if not torch.allclose(out, expected, rtol=1e-3, atol=1e-3 * scale, equal_nan=True):
        return f"max abs difference {(out - expected).abs().max().item():.3g} (torch max |value| {scale:.3g})"
    return None


def run_case(case, device, min_run_time, copy_reference=False):
    """Time one case for both libraries; failures are recorded in the row rather than raised.
    With ``copy_reference``, a memory-bound case also times a tensor copy moving as many bytes."""
    row = {
        "op": case.op,
        "shape": case.shape,
        "dtype": str(case.dtype).replace("torch.", ""),
        "device": device.type,
        "unit": case.unit,
        "work": case.work,
    }
    if case.target is not None:
        row["target"] = case.target
    torch.manual_seed(0)
    inputs = case.make_inputs(device)
    if case.prepare is not None:
        fns = {name: case.prepare(name, *inputs) for name in LIBRARIES}
    else:
        fns = {name: functools.partial(case.call, lib, *map(_copy, inputs)) for name, lib in LIBRARIES.items()}
    outputs = {}
    for name, fn in fns.items():
        try:
            outputs[name] = fn()
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the results
            row["error"] = f"{name}: {type(exc).__name__}: {exc}"
            return row
    row["mismatch"] = _mismatch(outputs["pykernels"], outputs["torch"])
    try:
        pk_rounds, th_rounds = timing.time_on(device, list(fns.values()), min_run_time)
    except Exception as exc:  # noqa: BLE001 - e.g. a kernel that fails only on repeated calls
        row["error"] = f"timing: {type(exc).__name__}: {exc}"
        return row
    pk, th = timing.median(pk_rounds), timing.median(th_rounds)
    rounds = timing.round_ratios(pk_rounds, th_rounds)
    spread = (max(rounds) - min(rounds)) / (th / pk)
    row.update(
        pykernels_s=pk,
        torch_s=th,
        ratio=th / pk,
        round_ratios=rounds,
        ratio_spread=spread,
        noisy=spread > timing.NOISY_SPREAD,
        pykernels_rate=case.work / pk / 1e9,
        torch_rate=case.work / th / 1e9,
    )
    if copy_reference and case.unit == GBS:
        row["copy_gbs"] = machine.copy_bandwidth(device, min_run_time, nbytes=case.work / 2)
    return row


# The suites that measure the machine's ceilings and plot by default: the CPU targets (with a
# sweep of mm sizes) and the training steps (time per step, both libraries).
PEAK_SUITES = ("cpu", "train")

PLOT_SIZES = [16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536]


def mm_sweep(device, min_run_time, sizes=PLOT_SIZES):
    """GFLOP/s of square float32 mm for both libraries, size by size."""
    rows = []
    for n in sizes:
        print(f"[plot] mm {n}x{n}x{n}", file=sys.stderr, flush=True)
        rows.append(run_case(mm_case(n, n, n), device, min_run_time))
    return rows


def run(suite, ops, device, min_run_time, *, threads=None, out=None, peak=None, plot=None):
    """Time the cases of ``suite`` whose op is in ``ops`` (all of them when empty) on ``device``,
    ``min_run_time`` seconds per implementation per case, and print the table; with ``out`` (a
    directory), save it there too. ``threads``: torch.set_num_threads first. ``peak``: measure the
    machine's ceilings and show each rate as a share of them; ``plot``: also time square float32
    mm over a range of sizes and plot that into ``out`` (for the ``train`` suite, plot each step's
    time instead); None for either means on for the suites in ``PEAK_SUITES`` (``plot`` only
    with an ``out``). Returns the rows: a row with ``error`` or ``mismatch``
    is a case where pykernels failed or differed from torch."""
    if threads:
        torch.set_num_threads(threads)
    device, out = torch.device(device), None if out is None else Path(out)
    cases = select_cases(suite, ops)
    load_before, rows, ceilings = machine.load_average(), [], None
    want_peak = peak if peak is not None else suite in PEAK_SUITES
    want_plot = plot if plot is not None else suite in PEAK_SUITES and out is not None
    if want_peak:
        print("[peak] FMA throughput and copy bandwidth", file=sys.stderr, flush=True)
        ceilings = machine.measure_peak(device, min_run_time)
    for i, case in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {case.op} {case.shape} {case.dtype}", file=sys.stderr, flush=True)
        rows.append(run_case(case, device, min_run_time, copy_reference=want_peak))
    sweep = mm_sweep(device, min_run_time) if want_plot and suite != "train" else None
    if ceilings:
        print("[peak] again, after the cases", file=sys.stderr, flush=True)
        ceilings = machine.measure_peak(device, min_run_time, before=ceilings)
        machine.add_peak(rows, ceilings)
    meta = machine.environment(device, suite, min_run_time, load_before, ceilings)
    markdown = report.to_markdown(meta, rows)
    print(markdown)
    if out is not None:
        written = report.save(out, meta, rows, markdown, sweep)
        if sweep is not None:
            written.append(report.save_plot(out / (report.result_stem(meta) + "-mm.png"), meta, sweep, ceilings))
        elif want_plot:
            written.append(report.save_step_plot(out / (report.result_stem(meta) + ".png"), meta, rows))
        for path in filter(None, written):
            print(f"wrote {path}", file=sys.stderr)
    return rows
