"""Benchmark pykernels against torch, side by side, on the same inputs.

Both implementations run in one process on equal copies of the same inputs, with their
measurements interleaved, and each case's ratio (torch time over pykernels time) is measured
several times over, so that a ratio disturbed by the machine is flagged (timing.py).

Used by ``python -m pykernels bench`` and ``python benchmarks/run.py``; see ``--help``. The
package: cases.py says what is timed (add a suite there), timing.py how, machine.py measures the
machine's ceilings and describes it, report.py writes the results, runner.py ties them together.
"""

from .cases import SUITES
from .report import to_markdown
from .runner import mm_sweep, run, run_case
from .timing import ROUNDS

__all__ = ["ROUNDS", "SUITES", "mm_sweep", "run", "run_case", "to_markdown"]
