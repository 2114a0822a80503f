"""How the benchmark times: both libraries in one process, their measurements interleaved, so
machine drift (shared hosts, turbo, thermals) hits both alike and the ratio between them stays
meaningful even when the absolute times wander.

Each implementation is timed in ``ROUNDS`` rounds; the ratio of each round (torch time over
pykernels time) is a repeated measurement of the case's ratio, and a case whose rounds disagree,
spreading by more than ``NOISY_SPREAD`` of its ratio, is flagged noisy (say, one round caught a
stall of a shared machine): its ratio should not be trusted without a rerun. As the rounds
interleave the libraries, drift that slows both alike leaves the ratio, and the flag, alone.

On the CPU the timer is ``torch.utils.benchmark``'s; on CUDA, CUDA events.
"""

import contextlib
import io
import logging
import statistics

import torch

# Each implementation's timing is split into this many rounds, alternating which goes first.
ROUNDS = 4
# A ratio is noisy when its rounds' ratios spread (max - min) by more than this fraction of it.
NOISY_SPREAD = 0.1


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


def time_cpu(fns, min_run_time):
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


def time_cuda(fns, min_run_time, warmup=3):
    """Seconds per call of each fn from CUDA events, calls alternating between the fns: for each fn,
    its calls' times split into ``ROUNDS`` rounds in the order they ran.

    Host timers would measure launch latency for asynchronous kernels, events measure the GPU.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    slowest = max(_cuda_seconds_per_call(fn) for fn in fns)
    iters = max(10, min(2000, int(min_run_time / max(slowest, 1e-9))))
    events = [
        [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for _ in fns
    ]
    for it in range(iters):
        order = range(len(fns)) if it % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start, end = events[i][it]
            start.record()
            fns[i]()
            end.record()
    torch.cuda.synchronize()
    seconds = [[s.elapsed_time(e) / 1e3 for s, e in pairs] for pairs in events]
    return [[times[r * iters // ROUNDS : (r + 1) * iters // ROUNDS] for r in range(ROUNDS)] for times in seconds]


def median(rounds):
    """The median per-call time over all of one fn's rounds."""
    return statistics.median(t for times in rounds for t in times)


def round_ratios(pykernels_rounds, torch_rounds):
    """Each round's ratio, torch's median time over pykernels': the repeated measurements of a ratio."""
    return [statistics.median(th) / statistics.median(pk) for pk, th in zip(pykernels_rounds, torch_rounds)]


def time_on(device, fns, min_run_time):
    """``time_cuda`` on a CUDA device, ``time_cpu`` elsewhere."""
    timer = time_cuda if device.type == "cuda" else time_cpu
    return timer(fns, min_run_time)
