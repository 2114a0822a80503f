"""The benchmark's results as a reader gets them: the Markdown table printed and saved, the JSON
beside it, and the mm GFLOP/s plot, in files named after the machine (benchmarks/results/).
"""

import json
import math
import os
import re
import statistics
import sys

from .timing import NOISY_SPREAD, ROUNDS


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
        (
            f"- pykernels {meta['pykernels_version']} (built against torch {meta['built_against_torch'] or '?'}, "
            f"CPU SIMD {meta['cpu_simd'] or '?'}); torch {meta['torch_version']}"
        ),
        "- git commit: "
        + (
            f"{git['commit']}" + (" with uncommitted changes" if git["dirty"] else "")
            if git
            else "none (not run from a git checkout of pykernels)"
        ),
        f"- device: {meta['device']}, {meta['device_name']}"
        + ("" if meta["device"] == "cpu" else f"; host CPU: {meta['cpu']}")
        + f"; torch threads: {meta['threads']}",
        f"- suite: {meta['suite']}, {meta['min_run_time_s']} s of timing per implementation per case",
        (
            f"- 1-minute load average: {load['before']} before, {load['after']} after, on {meta['cpu_count']} CPUs "
            "(a load well above 0 means other processes competed for the CPUs, and the times are noisy)"
        ),
    ]
    peak = meta.get("peak")
    if peak:
        parts = []
        if peak.get("fma_gflops"):
            parts.append(
                f"float32 FMA {peak['fma_gflops']:.0f} GFLOP/s ({peak['fma_isa']}, independent FMA chains "
                f"on {meta['threads']} thread{'s' * (meta['threads'] != 1)})"
            )
        parts.append(f"copy bandwidth {peak['copy_gbs']:.1f} GB/s (a 256 MiB tensor copy, read + write)")
        lines.append(
            "- measured peak (the higher of two measurements, before and after the cases): "
            + "; ".join(parts)
            + '. "% of peak" compares GFLOP/s with the FMA peak (half of it for '
            "float64) and GB/s with a tensor copy moving as many bytes as the case, timed beside it "
            "(small working sets run from cache, faster than the 256 MiB copy)."
        )
    lines += [
        "",
        (
            "Times are medians per call, pykernels and torch measured in the same process on the same inputs, "
            "interleaved. **ratio = torch time / pykernels time**: above 1 pykernels is faster, below 1 slower. "
            "GFLOP/s counts 2·M·N·K per matrix product; GB/s counts each input read and each output written once. "
            f"**noisy** marks a ratio whose {ROUNDS} repeated measurements (rounds of both libraries, "
            f"interleaved) spread by more than {NOISY_SPREAD:.0%} of it: rerun it before trusting it. "
            "⚠ marks a pykernels result that differs from torch's (see notes)."
        ),
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
    lines += [
        "",
        f"Geometric mean of ratios: **{gm:.2f}** over {timed} case{'s' * (timed != 1)}."
        if gm
        else "No case was timed.",
    ]
    notes = [
        f"- {r['op']} {r['shape']}: {r.get('error') or 'result differs: ' + r['mismatch']}"
        for r in rows
        if r.get("error") or r.get("mismatch")
    ]
    if notes:
        lines += ["", "Notes:", ""] + [n.splitlines()[0] for n in notes]
    return "\n".join(lines) + "\n"


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


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed (pip install 'pykernels[plot]'); no plot written", file=sys.stderr)
        return None
    return plt


def _save_figure(plt, fig, path):
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def save_step_plot(path, meta, rows):
    """Time per step of each training case, pykernels' bar beside torch's, with the ratio above."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = [r for r in rows if "ratio" in r]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.9 * len(rows)))
    ys = range(len(rows))
    for offset, name in ((-0.2, "pykernels"), (0.2, "torch")):
        ax.barh([y + offset for y in ys], [r[f"{name}_s"] * 1e3 for r in rows], height=0.38, label=name)
    for y, r in zip(ys, rows):
        ax.annotate(
            f"{r['ratio']:.2f}x",
            (max(r["pykernels_s"], r["torch_s"]) * 1e3, y),
            xytext=(4, -4),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_yticks(list(ys), [r["shape"].split(",")[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per training step (lower is better); label: torch time / pykernels time")
    where = meta["device_name"] + ("" if meta["device"] == "cuda" else f", {meta['threads']} threads")
    ax.set_title(f"training steps: pykernels vs torch ({where})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save_figure(plt, fig, path)


def save_plot(path, meta, rows, peak):
    """GFLOP/s against size for mm, pykernels and torch, with the measured FMA peak as a line."""
    plt = _pyplot()
    if plt is None:
        return None
    sizes = [int(r["shape"].split("x")[0]) for r in rows if "ratio" in r]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, style in (("pykernels", "o-"), ("torch", "s--")):
        ax.plot(sizes, [r[f"{name}_rate"] for r in rows if "ratio" in r], style, label=name)
    if peak and peak.get("fma_gflops"):
        ax.axhline(
            peak["fma_gflops"],
            color="gray",
            linestyle=":",
            label=f"measured FMA peak ({peak['fma_isa']}), {peak['fma_gflops']:.0f} GFLOP/s",
        )
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
    return _save_figure(plt, fig, path)
