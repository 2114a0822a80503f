"""What a build records and decides: the torch it was built against, checked before the extension
loads; why the CUDA kernels are absent, shown by `python -m pykernels info`; and setup.py's
fallback to a CPU-only build when the CUDA toolkit does not fit torch."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import pykernels
from pykernels import _build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
built_by_setup = pytest.mark.skipif(_build.torch_version() is None, reason="the extension was not built by setup.py")


def run_python(code, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **(env or {})),
    )


@built_by_setup
def test_build_records_the_torch_it_was_built_against():
    assert _build.torch_version() == torch.__version__ == pykernels.build_info()["torch_version"]


def test_import_refuses_an_extension_built_against_another_torch():
    # A build record naming another torch, as after `pip install --upgrade torch`; the check must
    # stop the import before the extension is loaded.
    done = run_python("""
        import sys, types
        sys.modules["pykernels._build_config"] = types.SimpleNamespace(TORCH_VERSION="2.3.0", CUDA_ABSENT_REASON=None)
        try:
            import pykernels
        except ImportError as e:
            assert "pykernels._C" not in sys.modules, "the extension was loaded"
            print(e)
        else:
            sys.exit("imported")
    """)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "torch 2.3.0" in done.stdout and f"torch {torch.__version__}" in done.stdout
    assert _build.REBUILD in done.stdout


@built_by_setup
def test_info_says_why_the_cuda_kernels_are_absent():
    if "CUDA" in pykernels.build_info()["backends"]:
        pytest.skip("this build has the CUDA kernels")
    done = subprocess.run(
        [sys.executable, "-m", "pykernels", "info"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("CUDA arches")]
    assert _build.cuda_absent_reason() and line.endswith("none: " + _build.cuda_absent_reason())


def fake_toolkit(path, version, archs):
    """A CUDA toolkit whose nvcc reports `version` and can target `archs` (e.g. [75, 80])."""
    (path / "include").mkdir(parents=True)
    (path / "include" / "cuda_runtime.h").write_text("")
    (path / "bin").mkdir()
    nvcc = path / "bin" / "nvcc"
    nvcc.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in
          --version) echo "Cuda compilation tools, release {version}, V{version}.0" ;;
          --list-gpu-arch) for a in {" ".join(map(str, archs))}; do echo compute_$a; done ;;
          --list-gpu-code) for a in {" ".join(map(str, archs))}; do echo sm_$a; done ;;
          *) exit 1 ;;
        esac
        """)
    )
    nvcc.chmod(0o755)
    return path


def setup_decision(toolkit, **overrides):
    """setup.py's output when it only reports the project's name: the CUDA decision happens
    before setup() runs, and nothing is compiled."""
    env = dict(os.environ, CUDA_HOME=str(toolkit), PYKERNELS_NO_CUDA="0")
    env.update(overrides)
    done = subprocess.run(
        [sys.executable, "setup.py", "--name"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


needs_cuda_torch = pytest.mark.skipif(not torch.version.cuda, reason="torch is a CPU-only build")


@needs_cuda_torch
def test_toolkit_of_another_cuda_major_version_builds_cpu_only_with_one_warning(tmp_path):
    other = int(torch.version.cuda.split(".")[0]) + 1
    stderr = setup_decision(fake_toolkit(tmp_path / "cuda", f"{other}.0", [80, 90]))
    warnings = [line for line in stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, stderr
    (warning,) = warnings
    assert f"CUDA {other}.0" in warning and f"built for CUDA {torch.version.cuda}" in warning
    assert "PYKERNELS_NO_CUDA=1" in warning and "CUDA_HOME" in warning
    assert "building CUDA kernels" not in stderr


@needs_cuda_torch
def test_toolkit_that_cannot_target_a_requested_arch_builds_cpu_only_with_one_warning(tmp_path):
    stderr = setup_decision(fake_toolkit(tmp_path / "cuda", torch.version.cuda, [90]), TORCH_CUDA_ARCH_LIST="8.0")
    (warning,) = [line for line in stderr.splitlines() if "WARNING" in line]
    assert "TORCH_CUDA_ARCH_LIST=8.0" in warning and "compute_80" in warning and "PYKERNELS_NO_CUDA=1" in warning
    assert "building CUDA kernels" not in stderr


@needs_cuda_torch
def test_matching_toolkit_builds_the_cuda_kernels(tmp_path):
    stderr = setup_decision(fake_toolkit(tmp_path / "cuda", torch.version.cuda, [80, 90]), TORCH_CUDA_ARCH_LIST="8.0")
    assert "WARNING" not in stderr and "building CUDA kernels" in stderr


def test_no_cuda_builds_cpu_only_silently(tmp_path):
    stderr = setup_decision(fake_toolkit(tmp_path / "cuda", "1.0", [80]), PYKERNELS_NO_CUDA="1")
    assert "WARNING" not in stderr and "building CUDA kernels" not in stderr
