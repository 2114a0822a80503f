"""``python -m pykernels train``: the tutorials' two-layer net on pykernels beside torch.

The criteria (pykernels.train): on the default settings every variant's pykernels loss curve
matches torch's to a relative 1e-3 over the first 200 iterations, and the loss falls by at least
4 orders of magnitude over the 500. One variant is run on the default settings end to end through
the command line; the others over their first 200 iterations (where the parity criterion lives),
on the CPU and, when pykernels has CUDA kernels and a GPU is visible, on the GPU.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

import pykernels
from pykernels import train
from pykernels.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The variant the command-line test runs on the default settings (500 iterations); the others
# are checked over their first PARITY_ITERS iterations below.
FULL_RUN_VARIANT = "autograd"

# Whole training loops: see conftest.one_thread.
pytestmark = pytest.mark.usefixtures("one_thread")


_HAS_CUDA = torch.cuda.is_available() and "cuda" in {b.lower() for b in pykernels.build_info().get("backends", [])}
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not _HAS_CUDA, reason="no GPU visible, or this pykernels build has no CUDA kernels"),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", [v for v in train.VARIANTS if v != FULL_RUN_VARIANT])
def test_loss_curves_match_torch_over_the_first_200_iterations(variant, device):
    result = train.run_variant(variant, iters=train.PARITY_ITERS, device=device)
    gap = result.max_gap(train.PARITY_ITERS)
    assert gap <= train.PARITY_RTOL, f"{variant}: largest relative gap {gap:.2e} over {train.PARITY_ITERS} iterations"
    assert not result.failures()
    # and it is training: the loss is well down already
    assert result.pykernels[-1] < result.pykernels[0] / 100


@pytest.mark.skipif(not _HAS_CUDA, reason="no GPU visible, or this pykernels build has no CUDA kernels")
def test_full_run_on_the_gpu():
    result = train.run_variant(FULL_RUN_VARIANT, device="cuda")
    assert not result.failures(), result.failures()


def test_default_settings_on_the_command_line():
    """python -m pykernels train --variant autograd: 500 iterations, default seed, CPU."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # as _one_thread
    proc = subprocess.run(
        [sys.executable, "-m", "pykernels", "train", "--variant", FULL_RUN_VARIANT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"{train.ITERS} iterations, seed {train.SEED}, cpu, float32, 1 CPU thread;" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == list(range(0, train.ITERS, train.PRINT_EVERY)) + [train.ITERS - 1]
    losses = [(float(r[1]), float(r[2])) for r in rows]  # pykernels, torch side by side
    assert losses[0][0] / losses[-1][0] >= train.MIN_DROP and losses[0][1] / losses[-1][1] >= train.MIN_DROP
    gap_line = next(line for line in out.splitlines() if "largest relative gap" in line)
    assert float(gap_line.split("gap: ")[1].split()[0]) <= train.PARITY_RTOL
    assert "time per iteration: pykernels" in out and "final loss" in out
    summary = out.split("summary")[1]
    assert FULL_RUN_VARIANT in summary and summary.rstrip().endswith("ok")


def test_main_in_process_prints_side_by_side_and_summary(capsys):
    assert main(["train", "--variant", "sgd", "--variant", "adam", "--iters", "52", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "[sgd]" in out and "[adam]" in out and "52 iterations, seed 3" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  ") and line.split()[0].isdigit()]
    assert [r[0] for r in rows] == ["0", "50", "51"] * 2
    assert out.count("time per iteration") == 2


def test_dropin_backend_runs_the_torch_code_on_pykernels():
    result = train.run_variant("sequential", iters=30, use_dropin=True)
    assert result.max_gap() <= train.PARITY_RTOL
    assert result.pykernels[-1] < result.pykernels[0]


def test_same_seed_same_data_and_runs_repeat():
    a, b = train.make_data(5), train.make_data(5)
    assert torch.equal(a.x, b.x) and torch.equal(a.w1, b.w1)
    assert all(torch.equal(a.default_init[k], b.default_init[k]) for k in a.default_init)
    r1, r2 = (train.run_variant("manual", iters=5, seed=5) for _ in range(2))
    assert r1.pykernels == r2.pykernels and r1.torch == r2.torch


def test_failures_are_reported():
    ok = train.Result("x", [1e4] * 499 + [1e-1], [1e4] * 499 + [1e-1], 1.0, 1.0)
    assert ok.failures() == []
    off = train.Result("x", [1.0, 1.002], [1.0, 1.0], 1.0, 1.0)
    assert off.max_gap() == pytest.approx(2e-3) and "relative gap" in off.failures()[0]
    flat = train.Result("x", [1.0] * 500, [1.0] * 500, 1.0, 1.0)
    assert len(flat.failures()) == 2  # neither curve fell 1e4x


def test_plot_needs_matplotlib_or_saves_a_png(tmp_path):
    path = tmp_path / "curves.png"
    args = ["--variant", "manual", "--variant", "adam", "--iters", "3", "--plot", str(path)]
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", *args])
        assert exit_info.value.code == 2  # an argparse error, before any training
        assert not path.exists()
    else:
        assert main(["train", *args]) == 0
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments():
    for args in (["--variant", "nope"], ["--iters", "0"], ["--device", "tpu"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", *args])
        assert exit_info.value.code == 2
    if not _HAS_CUDA:
        with pytest.raises(SystemExit):
            main(["train", "--device", "cuda", "--iters", "1"])


def test_console_script_declared():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    if "pykernels" not in scripts:
        pytest.skip("pykernels is not installed with its entry points")
    assert scripts["pykernels"] == "pykernels.__main__:main"
    from pykernels.__main__ import COMMANDS

    assert "train" in COMMANDS and "run" in COMMANDS
