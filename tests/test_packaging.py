"""The source distribution carries everything a build from it needs: every file a kernel source
includes with quotes (setup.py names only the .cpp/.cu files; MANIFEST.in adds the rest)."""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_FILES = ["setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "Makefile"]
SOURCE_DIRS = ["csrc", "pykernels", "tests", "tools", "benchmarks"]


def _quoted_includes(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), flags=re.M)


def test_sdist_has_every_included_header(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "MANIFEST.in")):
        pytest.skip("not a source checkout")
    # A copy, so that the sdist's egg-info never lands in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE_FILES:
        shutil.copy(os.path.join(ROOT, name), src / name)
    for name in SOURCE_DIRS:
        shutil.copytree(
            os.path.join(ROOT, name),
            src / name,
            ignore=shutil.ignore_patterns("*.so", "__pycache__", "results", "build"),
        )
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYKERNELS_NO_CUDA="1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (archive,) = (tmp_path / "dist").iterdir()
    with tarfile.open(archive) as tar:
        shipped = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = []
    for directory, _, files in os.walk(os.path.join(ROOT, "csrc")):
        for name in files:
            if not name.endswith((".cpp", ".cu", ".h", ".cuh")):
                continue
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, ROOT)
            assert rel in shipped, f"{rel} is not in the sdist"
            for include in _quoted_includes(path):
                candidates = [
                    os.path.normpath(os.path.join("csrc", include)),
                    os.path.normpath(os.path.join(os.path.dirname(rel), include)),
                ]
                if not any(c in shipped for c in candidates):
                    missing.append(f"{rel}: {include}")
    assert not missing, "included but not shipped: " + ", ".join(missing)
    assert "tests/scripts/ddp_worker.py" in shipped
