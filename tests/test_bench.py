"""The benchmark harness runs end to end: tables, JSON, the measured peak, targets and the plot.
Timings are not checked (a timing belongs in a benchmark, never in a pass/fail test)."""

import json

import pytest
import torch

from pykernels import bench
from pykernels.__main__ import main
from pykernels.bench import timing


def run(tmp_path, *argv):
    status = main(["bench", "--min-run-time", "0.01", "--out", str(tmp_path), *argv])
    assert status == 0
    (md,) = tmp_path.glob("*.md")
    (js,) = tmp_path.glob("*.json")
    return md.read_text(encoding="utf-8"), json.loads(js.read_text(encoding="utf-8"))


def test_quick_suite_with_peak(tmp_path):
    md, payload = run(tmp_path, "--suite", "quick", "--ops", "add,mm", "--peak", "--no-plot")
    peak = payload["meta"]["peak"]
    assert peak["fma_gflops"] > 0 and peak["copy_gbs"] > 0 and peak["fma_isa"]
    assert "measured peak (" in md and "float32 FMA" in md and "pykernels % of peak" in md
    assert all(r["copy_gbs"] > 0 for r in payload["results"] if r["unit"] == "GB/s")
    rows = payload["results"]
    assert {r["op"] for r in rows} == {"add", "mm"}
    assert all(r["pykernels_pct_peak"] > 0 for r in rows)
    assert "target" not in md.split("| op |")[1].splitlines()[0]  # no target column without targets


def test_cpu_suite_targets_and_training_step(tmp_path):
    md, payload = run(tmp_path, "--suite", "cpu", "--ops", "train_step,mse_loss", "--no-peak", "--no-plot")
    rows = payload["results"]
    steps = {r["shape"].split(",")[0]: r["target"] for r in rows if r["op"] == "train_step"}
    assert steps == {"nn + SGD": 2.0, "convert() + SGD": 2.0, "FusedMLP + SGD": 2.5}
    assert [r["target"] for r in rows if r["op"] == "mse_loss"] == [2.5]
    assert not any(r.get("mismatch") or r.get("error") for r in rows)
    assert "≥ 2" in md and "nn + SGD" in md and "FusedMLP + SGD" in md


def test_mm_plot(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(bench.mm_sweep, "__defaults__", ([8, 16, 33],))
    run(tmp_path, "--suite", "quick", "--ops", "add", "--peak", "--plot")
    (png,) = tmp_path.glob("*-mm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (js,) = tmp_path.glob("*.json")
    assert [r["shape"] for r in json.loads(js.read_text())["mm_sweep"]] == [
        "8x8 @ 8x8",
        "16x16 @ 16x16",
        "33x33 @ 33x33",
    ]


def test_provenance_in_json_and_markdown(tmp_path):
    md, payload = run(tmp_path, "--suite", "quick", "--ops", "add", "--no-peak", "--no-plot")
    meta = payload["meta"]
    assert meta["torch_version"] and meta["threads"] >= 1 and meta["date"].endswith("+00:00")  # UTC
    assert set(meta["load_average"]) == {"before", "after"}
    assert f"- date: {meta['date']}" in md and f"torch {meta['torch_version']}" in md
    assert f"torch threads: {meta['threads']}" in md and "load average:" in md
    git = meta["git"]
    if git is None:  # not run from a git checkout of pykernels
        assert "- git commit: none" in md
    else:
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)
        assert f"- git commit: {git['commit']}" in md


def test_writes_no_file_without_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--suite", "quick", "--ops", "add", "--min-run-time", "0.01", "--no-peak"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "| add |" in capsys.readouterr().out


def _rounds(*medians):
    return [[m] for m in medians]


@pytest.mark.parametrize(
    "torch_rounds,noisy",
    [
        (_rounds(2.0, 2.1, 1.95, 2.0), False),  # the rounds agree within NOISY_SPREAD
        (_rounds(2.0, 2.0, 2.0, 60.0), True),  # one round of torch's caught a stall
    ],
)
def test_a_ratio_whose_rounds_disagree_is_flagged_noisy(monkeypatch, torch_rounds, noisy):
    monkeypatch.setattr(timing, "time_cpu", lambda fns, min_run_time: [_rounds(1.0, 1.0, 1.0, 1.0), torch_rounds])
    row = bench.run_case(bench.SUITES["quick"][0], torch.device("cpu"), 0.01)
    assert row["ratio"] == pytest.approx(2.0, rel=0.05) and len(row["round_ratios"]) == bench.ROUNDS
    assert row["noisy"] is noisy
    meta = {
        "device": "cpu",
        "device_name": "cpu",
        "threads": 1,
        "date": "",
        "pykernels_version": "",
        "git": None,
        "built_against_torch": "",
        "cpu_simd": "",
        "torch_version": "",
        "cpu": "",
        "suite": "quick",
        "min_run_time_s": 0.01,
        "cpu_count": 1,
        "load_average": {"before": 0, "after": 0},
    }
    table_row = next(line for line in bench.to_markdown(meta, [row]).splitlines() if line.startswith("| mm |"))
    assert (f"| {row['ratio']:.2f} noisy |" in table_row) is noisy
