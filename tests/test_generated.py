"""The files generated from the op table (tools/gen_ops.py) are current: what the table says is what
was built."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_ops.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
