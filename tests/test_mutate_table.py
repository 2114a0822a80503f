"""tools/mutate.py finds each mutant by an exact snippet of a kernel source. When a kernel changes,
its snippet must follow, or the mutation check fails at its start; this catches the drift here,
in a fraction of a second, instead of at the next mutation run."""

import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "tools" / "mutate.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="tools/mutate.py is not in this tree (an installed package)")
def test_every_mutant_snippet_matches_its_source_once():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
