"""The README's examples run as written: each ```python block, on its own, in a fresh interpreter.

The headline benchmark table quotes the committed run of the CPU targets suite: each case's
target and ratio must be that run's, and "target met" what they say.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
HEADLINE_RESULTS = os.path.join(ROOT, "benchmarks", "results", "cpu-amd-epyc-2t-cpu.json")
HEADLINE_HEADER = "| case | target ratio | ratio | target met |"


def _text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def python_blocks():
    return re.findall(r"^```python\n(.*?)^```", _text(), flags=re.MULTILINE | re.DOTALL)


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("block", python_blocks(), ids=lambda block: block.splitlines()[-1].split("#")[0].strip())
def test_python_block_runs(block):
    proc = subprocess.run(
        [sys.executable, "-c", block],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, f"README block failed:\n{block}\n{proc.stderr}"


def _headline_rows():
    """(target, ratio, met) of each row of the headline table."""
    table = _text().split(HEADLINE_HEADER)[1].split("\n\n")[0]
    for line in table.splitlines()[2:]:  # after the rest of the header line and the separator
        cells = [c.strip() for c in line.strip("|").split("|")]
        yield cells[1], cells[2], cells[3]


def test_headline_targets_are_the_committed_runs():
    with open(HEADLINE_RESULTS, encoding="utf-8") as f:
        results = [r for r in json.load(f)["results"] if "target" in r]
    rows = list(_headline_rows())
    assert len(rows) == len(results)
    for (target, ratio, met), result in zip(rows, results):
        assert target == f"≥ {result['target']:g}" and ratio == f"{result['ratio']:.2f}", (target, ratio, result)
        assert met == ("yes" if result["ratio"] >= result["target"] else "no")
