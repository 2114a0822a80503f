"""Benchmark pykernels against torch, side by side, on the same inputs.

Both implementations run in one process on equal copies of the same inputs, and their
measurements are interleaved, so machine drift (shared hosts, turbo, thermals) hits both alike
and the ratio between them stays meaningful even when the absolute times wander.

Each implementation is timed in ``ROUNDS`` rounds; the ratio of each round (torch time over
pykernels time) is a repeated measurement of the case's ratio, and a case whose rounds disagree,
spreading by more than ``NOISY_SPREAD`` of its ratio, is flagged noisy (say, one round caught a
stall of a shared machine): its ratio should not be trusted without a rerun. As the rounds
interleave the libraries, drift that slows both alike leaves the ratio, and the flag, alone.

Used by ``python -m pykernels bench`` and ``python benchmarks/run.py``; see ``--help``.
Add a suite by adding a list of cases to ``SUITES``.
"""
import contextlib
import dataclasses
import datetime
import functools
import io
import json
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import pykernels

# Each implementation's timing is split into this many rounds, alternating which goes first.
ROUNDS = 4
# A ratio is noisy when its rounds' ratios spread (max - min) by more than this fraction of it.
NOISY_SPREAD = 0.1
GFLOPS, GBS = "GFLOP/s", "GB/s"
F32 = torch.float32.itemsize  # bytes per element; the memory-bound cases are all float32


class _TorchOps:
    """torch's functions under pykernels' names, so one case body runs against either library.

    mse_loss lives in torch.nn.functional, and most in-place ops (sub_, ...) only as Tensor methods.
    """

    mse_loss = staticmethod(F.mse_loss)

    def __getattr__(self, name):
        fn = getattr(torch, name, None) or getattr(torch.Tensor, name)
        setattr(self, name, fn)  # later look-ups then cost what a module attribute costs, as in pykernels
        return fn


LIBRARIES = {"pykernels": pykernels, "torch": _TorchOps()}


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


def _randn(*shape, dtype=torch.float32, positive=False, grad=False):
    """Random-input factory; ``positive`` keeps inputs inside the domain of log and sqrt."""

    def make(device):
        t = torch.randn(*shape, dtype=dtype, device=device)
        t = t.abs() + 0.1 if positive else t
        return t.requires_grad_(grad)

    return make


def _inputs(*factories):
    return lambda device: tuple(make(device) for make in factories)


def _fmt_shape(shape):
    return "x".join(map(str, shape))


def mm_case(m, k, n, dtype=torch.float32):
    return Case("mm", f"{m}x{k} @ {k}x{n}", dtype, _inputs(_randn(m, k, dtype=dtype), _randn(k, n, dtype=dtype)),
                lambda lib, a, b: lib.mm(a, b), 2 * m * k * n, GFLOPS)


def mm_transposed_case(batch, n_in, n_out):
    """``x.t() @ g``: the weight-gradient product of a linear layer, a non-contiguous operand."""
    return Case("mm", f"({batch}x{n_in}).t() @ {batch}x{n_out}", torch.float32,
                _inputs(_randn(batch, n_in), _randn(batch, n_out)),
                lambda lib, x, g: lib.mm(x.t(), g), 2 * batch * n_in * n_out, GFLOPS)


def bmm_case(batch, m, k, n):
    return Case("bmm", f"{batch}x{m}x{k} @ {batch}x{k}x{n}", torch.float32,
                _inputs(_randn(batch, m, k), _randn(batch, k, n)),
                lambda lib, a, b: lib.bmm(a, b), 2 * batch * m * k * n, GFLOPS)


def matmul_case(a_shape, b_shape):
    """``matmul`` with batch dimensions that broadcast against each other."""
    batch = math.prod(torch.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    return Case("matmul", f"{_fmt_shape(a_shape)} @ {_fmt_shape(b_shape)}", torch.float32,
                _inputs(_randn(*a_shape), _randn(*b_shape)),
                lambda lib, a, b: lib.matmul(a, b), 2 * batch * m * k * n, GFLOPS)


SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def binary_case(op, a_shape, b_shape):
    """Tensor-tensor elementwise op; the shapes may broadcast."""
    out = math.prod(torch.broadcast_shapes(a_shape, b_shape))
    nbytes = F32 * (math.prod(a_shape) + math.prod(b_shape) + out)
    shape = _fmt_shape(a_shape) if a_shape == b_shape else f"{_fmt_shape(a_shape)} {SYMBOLS[op]} {_fmt_shape(b_shape)}"
    return Case(op, shape, torch.float32, _inputs(_randn(*a_shape), _randn(*b_shape)),
                lambda lib, a, b: getattr(lib, op)(a, b), nbytes, GBS)


def scalar_case(op, n, scalar):
    return Case(op, f"{n} {SYMBOLS[op]} {scalar}", torch.float32, _inputs(_randn(n)),
                lambda lib, x: getattr(lib, op)(x, scalar), 2 * F32 * n, GBS)


def unary_case(op, n, positive=False):
    return Case(op, str(n), torch.float32, _inputs(_randn(n, positive=positive)),
                lambda lib, x: getattr(lib, op)(x), 2 * F32 * n, GBS)


def pow_case(n, exponent):
    return Case("pow", f"{n} ** {exponent}", torch.float32, _inputs(_randn(n)),
                lambda lib, x: lib.pow(x, exponent), 2 * F32 * n, GBS)


def reduce_case(op, shape, dim=None):
    """Full reduction when ``dim`` is None; the output is small, so the traffic is the input read."""
    kwargs = {} if dim is None else {"dim": dim}
    label = _fmt_shape(shape) + ("" if dim is None else f", dim={dim}")
    out = 1 if dim is None else math.prod(shape) // shape[dim]
    return Case(op, label, torch.float32, _inputs(_randn(*shape)),
                lambda lib, x: getattr(lib, op)(x, **kwargs), F32 * (math.prod(shape) + out), GBS)


def _relu_forward_backward(lib, x, g):
    x.grad = None
    lib.relu(x).backward(g)
    return x.grad


def relu_case(n, backward=False):
    """Forward: read x, write y. Forward+backward adds reading g and y, writing x.grad."""
    if backward:
        return Case("relu", f"{n} fwd+bwd", torch.float32, _inputs(_randn(n, grad=True), _randn(n)),
                    _relu_forward_backward, 5 * F32 * n, GBS)
    return unary_case("relu", n)


def _mse_forward_backward(lib, x, target):
    x.grad = None
    lib.mse_loss(x, target).backward()
    return x.grad


def mse_case(n, backward=False):
    """Forward reads input and target; backward reads both again and writes input.grad."""
    if backward:
        return Case("mse_loss", f"{n} fwd+bwd", torch.float32, _inputs(_randn(n, grad=True), _randn(n)),
                    _mse_forward_backward, 5 * F32 * n, GBS)
    return Case("mse_loss", str(n), torch.float32, _inputs(_randn(n), _randn(n)),
                lambda lib, x, target: lib.mse_loss(x, target), 2 * F32 * n, GBS)


def _train_step(lib, x, target, w1, w2, lr=1e-3):
    """One SGD step of ``relu(x @ w1) @ w2`` under MSE; returns the loss."""
    w1.grad = w2.grad = None
    loss = lib.mse_loss(lib.mm(lib.relu(lib.mm(x, w1)), w2), target)
    loss.backward()
    with torch.no_grad():
        for w in (w1, w2):
            lib.sub_(w, lib.mul(w.grad, lr))
    return loss.detach()


def sgd_step_case():
    """The two-layer net's training step as users write it: ``nn.Sequential`` of (pykernels.)nn
    modules, ``MSELoss``, ``torch.optim.SGD`` (stepping under the drop-in mode for pykernels, so
    its arithmetic is pykernels' too); returns the loss. Work counts the matmuls only."""
    from . import train

    libs = {"pykernels": train.PykernelsLib, "torch": train.TorchLib}

    def prepare(name, data):
        lib = libs[name]
        step = train.VARIANTS["sgd"].build(lib, data, train.VARIANTS["sgd"].lr)

        def run():
            with lib.context():
                return torch.tensor(step())

        return run

    flops = 3 * 2 * train.N * (train.D_IN * train.H + train.H * train.D_OUT)
    return Case("train_step", f"nn + SGD, {train.N}x{train.D_IN}-{train.H}-{train.D_OUT}", torch.float32,
                lambda device: (train.make_data(device=device),), None, flops, GFLOPS, prepare=prepare)


def targeted(case, ratio):
    """``case`` with the ratio it should reach."""
    return dataclasses.replace(case, target=ratio)


def train_step_case(batch, n_in, hidden, n_out):
    """A small MLP training step; work counts the matmuls only (backward costs twice forward)."""
    flops = 3 * 2 * batch * (n_in * hidden + hidden * n_out)
    inputs = _inputs(_randn(batch, n_in), _randn(batch, n_out),
                     _randn(n_in, hidden, grad=True), _randn(hidden, n_out, grad=True))
    return Case("train_step", f"mlp {n_in}-{hidden}-{n_out}, batch {batch}", torch.float32, inputs,
                _train_step, flops, GFLOPS)


N_SMALL, N_LARGE = 1 << 20, 1 << 24

SUITES = {
    "default": [
        mm_case(64, 1000, 100),
        mm_case(256, 256, 256),
        mm_case(512, 512, 512),
        mm_case(1024, 1024, 1024),
        mm_case(512, 512, 512, dtype=torch.float64),
        mm_transposed_case(64, 1000, 100),
        bmm_case(32, 128, 128, 256),
        matmul_case((4, 1, 128, 128), (8, 128, 128)),
        binary_case("add", (N_SMALL,), (N_SMALL,)),
        binary_case("add", (N_LARGE,), (N_LARGE,)),
        binary_case("sub", (N_SMALL,), (N_SMALL,)),
        binary_case("mul", (4096, 1), (1, 4096)),
        binary_case("div", (N_SMALL,), (N_SMALL,)),
        scalar_case("add", N_SMALL, 1.5),
        unary_case("neg", N_SMALL),
        unary_case("exp", N_SMALL),
        unary_case("log", N_SMALL, positive=True),
        unary_case("sqrt", N_SMALL, positive=True),
        pow_case(N_SMALL, 2),
        reduce_case("sum", (2048, 2048)),
        reduce_case("sum", (2048, 2048), dim=0),
        reduce_case("sum", (2048, 2048), dim=1),
        reduce_case("mean", (2048, 2048)),
        relu_case(N_SMALL),
        relu_case(N_SMALL, backward=True),
        mse_case(N_SMALL),
        mse_case(N_SMALL, backward=True),
        train_step_case(64, 1000, 100, 10),
    ],
    # The CPU speed targets: each case with the ratio it should reach on a 2-core machine.
    "cpu": [
        targeted(mm_case(1024, 1024, 1024), 1.8),
        targeted(mm_case(64, 1000, 100), 1.3),
        targeted(mm_transposed_case(64, 1000, 100), 1.3),
        targeted(bmm_case(32, 128, 128, 256), 1.8),
        targeted(binary_case("add", (N_SMALL,), (N_SMALL,)), 0.95),
        targeted(relu_case(N_SMALL, backward=True), 0.95),
        targeted(mse_case(N_SMALL, backward=True), 2.5),
        targeted(sgd_step_case(), 1.5),
    ],
    "quick": [
        mm_case(64, 1000, 100),
        mm_case(256, 256, 256),
        mm_transposed_case(64, 1000, 100),
        bmm_case(8, 64, 64, 64),
        matmul_case((2, 1, 64, 64), (4, 64, 64)),
        binary_case("add", (N_SMALL,), (N_SMALL,)),
        binary_case("mul", (1024, 1), (1, 1024)),
        scalar_case("add", N_SMALL, 1.5),
        unary_case("exp", N_SMALL),
        pow_case(N_SMALL, 2),
        reduce_case("sum", (1024, 1024), dim=1),
        reduce_case("mean", (1024, 1024)),
        relu_case(N_SMALL, backward=True),
        mse_case(N_SMALL, backward=True),
    ],
}


# ----------------------------------------------------------------------------- timing


def _timer_class():
    """torch.utils.benchmark.Timer, imported on first use: the import loads cpp_extension, slow to
    import, and on a machine with a CUDA toolkit but no GPU its CUDA look-up logs "No CUDA runtime
    is found", a warning about building extensions that timing has no use for, so it is muted:
    torch 2.4 prints it to stderr, newer releases log it."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    disabled, logger.disabled = logger.disabled, True
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            from torch.utils.benchmark import Timer
    finally:
        logger.disabled = disabled
    return Timer


def _time_cpu(fns, min_run_time):
    """Seconds per call of each fn, in ``ROUNDS`` rounds that alternate which fn goes first: for each
    fn, one list per round of the per-call times of its blocks of calls.

    Timer defaults to one thread; passing the current count times what users actually get.
    """
    Timer = _timer_class()
    timers = [Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()) for fn in fns]
    times = [[None] * ROUNDS for _ in fns]
    for r in range(ROUNDS):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i][r] = timers[i].blocked_autorange(min_run_time=min_run_time / ROUNDS).times
    return times


def _cuda_seconds_per_call(fn, calls=5):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


def _time_cuda(fns, min_run_time, warmup=3):
    """Seconds per call of each fn from CUDA events, calls alternating between the fns: for each fn,
    its calls' times split into ``ROUNDS`` rounds in the order they ran.

    Host timers would measure launch latency for asynchronous kernels, events measure the GPU.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    slowest = max(_cuda_seconds_per_call(fn) for fn in fns)
    iters = max(10, min(2000, int(min_run_time / max(slowest, 1e-9))))
    events = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
               for _ in range(iters)] for _ in fns]
    for it in range(iters):
        order = range(len(fns)) if it % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start, end = events[i][it]
            start.record()
            fns[i]()
            end.record()
    torch.cuda.synchronize()
    seconds = [[s.elapsed_time(e) / 1e3 for s, e in pairs] for pairs in events]
    return [[times[r * iters // ROUNDS:(r + 1) * iters // ROUNDS] for r in range(ROUNDS)] for times in seconds]


def _median(rounds):
    """The median per-call time over all of one fn's rounds."""
    return statistics.median(t for times in rounds for t in times)


def _round_ratios(pykernels_rounds, torch_rounds):
    """Each round's ratio, torch's median time over pykernels': the repeated measurements of a ratio."""
    return [statistics.median(th) / statistics.median(pk) for pk, th in zip(pykernels_rounds, torch_rounds)]


# ----------------------------------------------------------------------------- running cases


def _copy(t):
    """An equal, independent copy, so in-place updates and .grad of one library never reach the other."""
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
    row = {"op": case.op, "shape": case.shape, "dtype": str(case.dtype).replace("torch.", ""),
           "device": device.type, "unit": case.unit, "work": case.work}
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
    timer = _time_cuda if device.type == "cuda" else _time_cpu
    try:
        pk_rounds, th_rounds = timer(list(fns.values()), min_run_time)
    except Exception as exc:  # noqa: BLE001 - e.g. a kernel that fails only on repeated calls
        row["error"] = f"timing: {type(exc).__name__}: {exc}"
        return row
    pk, th = _median(pk_rounds), _median(th_rounds)
    rounds = _round_ratios(pk_rounds, th_rounds)
    spread = (max(rounds) - min(rounds)) / (th / pk)
    row.update(pykernels_s=pk, torch_s=th, ratio=th / pk, round_ratios=rounds, ratio_spread=spread,
               noisy=spread > NOISY_SPREAD, pykernels_rate=case.work / pk / 1e9, torch_rate=case.work / th / 1e9)
    if copy_reference and case.unit == GBS:
        row["copy_gbs"] = _copy_bandwidth(device, min_run_time, nbytes=case.work / 2)
    return row


def select_cases(suite, ops):
    """The suite's cases whose op is in ``ops`` (all of them when ops is empty)."""
    return [c for c in SUITES[suite] if not ops or c.op in ops]


# ----------------------------------------------------------------------------- machine peak


def _copy_bandwidth(device, min_run_time, nbytes=1 << 28):
    """GB/s of a device-to-device copy of ``nbytes`` (bytes read + bytes written): the memory
    ceiling of an elementwise op moving as many bytes. torch's copy is the measuring stick here,
    not a kernel under test."""
    src = torch.ones(max(int(nbytes) // F32, 1), device=device)
    dst = torch.empty_like(src)
    timer = _time_cuda if device.type == "cuda" else _time_cpu
    (rounds,) = timer([lambda: dst.copy_(src)], min_run_time)
    return 2 * nbytes / _median(rounds) / 1e9


def measure_peak(device, min_run_time, before=None):
    """The machine's ceilings: float32 FMA GFLOP/s over torch's threads (CPU only: pykernels'
    FMA-chain kernel, on the instruction set its GEMM uses) and the bandwidth of a 256 MiB copy.
    Measured before and after the cases (``before`` is the first measurement), keeping the
    higher: on a shared machine a core lent elsewhere for a moment would otherwise set the peak."""
    peak = {"copy_gbs": _copy_bandwidth(device, min_run_time)}
    if device.type == "cpu":
        peak["fma_gflops"], peak["fma_isa"] = pykernels._C.fma_peak(max(min_run_time, 0.3))
    if before:
        peak = {k: max(v, before[k]) if isinstance(v, float) else v for k, v in peak.items()}
    return peak


def _pct_of_peak(row, rate, peak):
    """``rate`` as a percentage of the matching ceiling, or None: GB/s against a copy of as many
    bytes (``copy_gbs`` of the row: a 4 MiB working set sits in cache, a 1 GiB one does not),
    float32 / float64 GFLOP/s against the FMA peak (halved for float64)."""
    if row["unit"] == GBS:
        ceiling = row.get("copy_gbs")
    elif peak.get("fma_gflops") and row["dtype"] in ("float32", "float64"):
        ceiling = peak["fma_gflops"] * (0.5 if row["dtype"] == "float64" else 1.0)
    else:
        ceiling = None
    return 100 * rate / ceiling if ceiling else None


def add_peak(rows, peak):
    for row in rows:
        if "ratio" in row:
            row["pykernels_pct_peak"] = _pct_of_peak(row, row["pykernels_rate"], peak)
            row["torch_pct_peak"] = _pct_of_peak(row, row["torch_rate"], peak)


# ----------------------------------------------------------------------------- mm GFLOP/s plot

PLOT_SIZES = [16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536]


def mm_sweep(device, min_run_time, sizes=PLOT_SIZES):
    """GFLOP/s of square float32 mm for both libraries, size by size."""
    rows = []
    for n in sizes:
        print(f"[plot] mm {n}x{n}x{n}", file=sys.stderr, flush=True)
        rows.append(run_case(mm_case(n, n, n), device, min_run_time))
    return rows


def save_plot(path, meta, rows, peak):
    """GFLOP/s against size for mm, pykernels and torch, with the measured FMA peak as a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed (pip install 'pykernels[plot]'); no plot written", file=sys.stderr)
        return None
    sizes = [int(r["shape"].split("x")[0]) for r in rows if "ratio" in r]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, style in (("pykernels", "o-"), ("torch", "s--")):
        ax.plot(sizes, [r[f"{name}_rate"] for r in rows if "ratio" in r], style, label=name)
    if peak and peak.get("fma_gflops"):
        ax.axhline(peak["fma_gflops"], color="gray", linestyle=":",
                   label=f"measured FMA peak ({peak['fma_isa']}), {peak['fma_gflops']:.0f} GFLOP/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes], rotation=45)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("M = N = K")
    ax.set_ylabel("GFLOP/s")
    where = meta["device_name"] + ("" if meta["device"] == "cuda" else f", {meta['threads']} threads")
    ax.set_title(f"float32 mm: pykernels vs torch ({where})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- machine description


def build_info():
    """pykernels' compile-time facts (versions, backends, SIMD, CUDA arches); {} if the build can't say.

    Prefers the package's normalised ``pykernels.build_info`` over the extension's raw one.
    """
    info = getattr(pykernels, "build_info", None) or getattr(getattr(pykernels, "_C", None), "build_info", None)
    return dict(info()) if info else {}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def _slug(text):
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def result_stem(meta):
    """File name naming the machine, so results from different hosts sit side by side."""
    if meta["device"] == "cuda":
        stem = f"cuda-{_slug(meta['device_name'])}"
    else:
        stem = f"cpu-{_slug(meta['device_name'])}-{meta['threads']}t"
    return stem if meta["suite"] == "default" else f"{stem}-{meta['suite']}"


def git_commit():
    """``{"commit": hash, "dirty": tracked files changed}`` of the git checkout pykernels runs from,
    or None where it runs from none (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        # A repository around an installed copy (a virtual environment in some project) is not pykernels'.
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def load_average():
    """The 1-minute load average, or None where the OS has none: above zero, something else competed."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def environment(device, suite, min_run_time, load_before, peak=None):
    info = build_info()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pykernels_version": pykernels.__version__,
        "git": git_commit(),
        "torch_version": torch.__version__,
        "built_against_torch": info.get("torch_version"),
        "cpu_simd": info.get("cpu_simd"),
        "device": device.type,
        "device_name": device_name(device),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": {"before": load_before, "after": load_average()},
        "suite": suite,
        "min_run_time_s": min_run_time,
        "peak": peak,
    }


# ----------------------------------------------------------------------------- reporting


def geomean_ratio(rows):
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    return math.exp(statistics.fmean(map(math.log, ratios))) if ratios else None


def _fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _fmt_pct(pct):
    return "" if pct is None else f"{pct:.0f}%"


def _table_row(row, with_peak, with_target):
    head = [row["op"], row["shape"], row["dtype"], row["device"]]
    if "error" in row:
        return head + ["error"] + [""] * (4 + 2 * with_peak + with_target)
    ratio = f"{row['ratio']:.2f}" + (" noisy" if row["noisy"] else "") + (" ⚠" if row["mismatch"] else "")
    cells = head + [_fmt_time(row["pykernels_s"]), _fmt_time(row["torch_s"]), ratio]
    if with_target:
        target = row.get("target")
        cells.append("" if target is None else f"≥ {target:g} " + ("✓" if row["ratio"] >= target else "✗"))
    cells += [f"{row['pykernels_rate']:.1f} {row['unit']}", f"{row['torch_rate']:.1f} {row['unit']}"]
    if with_peak:
        cells += [_fmt_pct(row.get("pykernels_pct_peak")), _fmt_pct(row.get("torch_pct_peak"))]
    return cells


def to_markdown(meta, rows):
    load = meta["load_average"]
    where = meta["device_name"] if meta["device"] == "cuda" else f"{meta['device_name']}, {meta['threads']} threads"
    git = meta["git"]
    lines = [
        f"# pykernels vs torch: {meta['device']} ({where})",
        "",
        f"- date: {meta['date']}",
        f"- pykernels {meta['pykernels_version']} (built against torch {meta['built_against_torch'] or '?'}, "
        f"CPU SIMD {meta['cpu_simd'] or '?'}); torch {meta['torch_version']}",
        "- git commit: " + (f"{git['commit']}" + (" with uncommitted changes" if git["dirty"] else "")
                            if git else "none (not run from a git checkout of pykernels)"),
        f"- device: {meta['device']}, {meta['device_name']}"
        + ("" if meta["device"] == "cpu" else f"; host CPU: {meta['cpu']}") + f"; torch threads: {meta['threads']}",
        f"- suite: {meta['suite']}, {meta['min_run_time_s']} s of timing per implementation per case",
        f"- 1-minute load average: {load['before']} before, {load['after']} after, on {meta['cpu_count']} CPUs "
        "(a load well above 0 means other processes competed for the CPUs, and the times are noisy)",
    ]
    peak = meta.get("peak")
    if peak:
        parts = []
        if peak.get("fma_gflops"):
            parts.append(f"float32 FMA {peak['fma_gflops']:.0f} GFLOP/s ({peak['fma_isa']}, independent FMA chains "
                         f"on {meta['threads']} thread{'s' * (meta['threads'] != 1)})")
        parts.append(f"copy bandwidth {peak['copy_gbs']:.1f} GB/s (a 256 MiB tensor copy, read + write)")
        lines.append("- measured peak (the higher of two measurements, before and after the cases): "
                     + "; ".join(parts) + ". \"% of peak\" compares GFLOP/s with the FMA peak (half of it for "
                     "float64) and GB/s with a tensor copy moving as many bytes as the case, timed beside it "
                     "(small working sets run from cache, faster than the 256 MiB copy).")
    lines += [
        "",
        "Times are medians per call, pykernels and torch measured in the same process on the same inputs, "
        "interleaved. **ratio = torch time / pykernels time**: above 1 pykernels is faster, below 1 slower. "
        "GFLOP/s counts 2·M·N·K per matrix product; GB/s counts each input read and each output written once. "
        f"**noisy** marks a ratio whose {ROUNDS} repeated measurements (rounds of both libraries, "
        f"interleaved) spread by more than {NOISY_SPREAD:.0%} of it: rerun it before trusting it. "
        "⚠ marks a pykernels result that differs from torch's (see notes).",
        "",
    ]
    with_peak, with_target = bool(peak), any("target" in r for r in rows)
    header = ["op", "shape", "dtype", "device", "pykernels", "torch", "ratio"] + ["target"] * with_target
    header += ["pykernels GFLOP/s or GB/s", "torch GFLOP/s or GB/s"]
    header += ["pykernels % of peak", "torch % of peak"] * with_peak
    lines += ["| " + " | ".join(header) + " |", "|---|---|---|---|" + "--:|" * (len(header) - 4)]
    lines += ["| " + " | ".join(_table_row(r, with_peak, with_target)) + " |" for r in rows]
    gm = geomean_ratio(rows)
    timed = sum("ratio" in r for r in rows)
    lines += ["", f"Geometric mean of ratios: **{gm:.2f}** over {timed} case{'s' * (timed != 1)}." if gm else "No case was timed."]
    notes = [f"- {r['op']} {r['shape']}: {r.get('error') or 'result differs: ' + r['mismatch']}"
             for r in rows if r.get("error") or r.get("mismatch")]
    if notes:
        lines += ["", "Notes:", ""] + [n.splitlines()[0] for n in notes]
    return "\n".join(lines) + "\n"


def _write(path, text):
    """Write via a temporary file, so an interrupted run never leaves a half-written result."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save(out_dir, meta, rows, markdown, sweep=None):
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / result_stem(meta)
    payload = {"meta": meta, "geomean_ratio": geomean_ratio(rows), "results": rows}
    if sweep is not None:
        payload["mm_sweep"] = sweep
    _write(stem.with_suffix(".json"), json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    _write(stem.with_suffix(".md"), markdown)
    return [stem.with_suffix(".json"), stem.with_suffix(".md")]


# ----------------------------------------------------------------------------- command line


def run(args):
    """``python -m pykernels bench`` with parsed arguments (pykernels/__main__.py): run the selected
    cases and print the table; with ``--out``, save it there too. Exit status 1 if pykernels failed
    or differed from torch."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = select_cases(args.suite, args.ops)
    load_before, rows, peak = load_average(), [], None
    want_peak = args.peak if args.peak is not None else args.suite == "cpu"
    want_plot = args.plot if args.plot is not None else args.suite == "cpu" and args.out is not None
    if want_peak:
        print("[peak] FMA throughput and copy bandwidth", file=sys.stderr, flush=True)
        peak = measure_peak(device, args.min_run_time)
    for i, case in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {case.op} {case.shape} {case.dtype}", file=sys.stderr, flush=True)
        rows.append(run_case(case, device, args.min_run_time, copy_reference=want_peak))
    sweep = mm_sweep(device, args.min_run_time) if want_plot else None
    if peak:
        print("[peak] again, after the cases", file=sys.stderr, flush=True)
        peak = measure_peak(device, args.min_run_time, before=peak)
        add_peak(rows, peak)
    meta = environment(device, args.suite, args.min_run_time, load_before, peak)
    markdown = to_markdown(meta, rows)
    print(markdown)
    if args.out is not None:
        written = save(args.out, meta, rows, markdown, sweep)
        if sweep is not None:
            written.append(save_plot(args.out / (result_stem(meta) + "-mm.png"), meta, sweep, peak))
        for path in filter(None, written):
            print(f"wrote {path}", file=sys.stderr)
    return int(any(r.get("error") or r.get("mismatch") for r in rows))
