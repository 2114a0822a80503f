"""The machine a benchmark ran on: its measured ceilings (the FMA peak, copy bandwidth) and the
facts that make a result reproducible (CPU, threads, load, versions, git commit).
"""

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch

import pykernels
from . import timing
from .case import F32, GBS

# ---- measured ceilings ----------------------------------------------------------------------------


def copy_bandwidth(device, min_run_time, nbytes=1 << 28):
    """GB/s of a device-to-device copy of ``nbytes`` (bytes read + bytes written): the memory
    ceiling of an elementwise op moving as many bytes. torch's copy is the measuring stick here,
    not a kernel under test."""
    src = torch.ones(max(int(nbytes) // F32, 1), device=device)
    dst = torch.empty_like(src)
    (rounds,) = timing.time_on(device, [lambda: dst.copy_(src)], min_run_time)
    return 2 * nbytes / timing.median(rounds) / 1e9


def measure_peak(device, min_run_time, before=None):
    """The machine's ceilings: float32 FMA GFLOP/s over torch's threads (CPU only: pykernels'
    FMA-chain kernel, on the instruction set its GEMM uses) and the bandwidth of a 256 MiB copy.
    Measured before and after the cases (``before`` is the first measurement), keeping the
    higher: on a shared machine a core lent elsewhere for a moment would otherwise set the peak."""
    peak = {"copy_gbs": copy_bandwidth(device, min_run_time)}
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


# ---- provenance -----------------------------------------------------------------------------------


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


def git_commit():
    """``{"commit": hash, "dirty": tracked files changed}`` of the git checkout pykernels runs from,
    or None where it runs from none (an installed wheel) or git is missing."""
    root = Path(pykernels.__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

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
    info = pykernels.build_info()
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
