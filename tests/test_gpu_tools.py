"""The GPU checks, kept sound on machines without a GPU: tools/gpu_smoke.py builds its case lists,
tools/gpu_check.sh plans its stages within the device-time budget, and the CUDA reduction
tolerances of test_cuda.py reject the wrong results they are meant to catch."""

import math
import os
import re
import subprocess
import sys
import sysconfig

import pytest
import torch

from test_cuda import SUM_CASES, reduce_tol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ["hopper", "edges", "cover", "race"]
BUDGET_S = 600  # the device time one GPU run may take, build included


def test_gpu_smoke_lists_every_group():
    done = subprocess.run(
        [sys.executable, "tools/gpu_smoke.py", "--list", *GROUPS], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = done.stdout.splitlines()
    assert len(names) == len(set(names)), "case names must be unique"
    for group in GROUPS:
        assert any(n.startswith(group + ": ") for n in names), f"no {group} cases"


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script")
def test_gpu_check_dry_run_fits_the_budget(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    done = subprocess.run(
        ["sh", "tools/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "summary.txt").read_text()
    stages = dict(re.findall(r"^== (\w+) \(timeout (\d+) s\)", summary, re.M))
    assert (
        list(stages)
        == [s for s in ["build", "hopper", "edges", "tests", "memcheck", "racecheck", "bench"] if s in stages]
        and len(stages) >= 6
    ), summary
    assert sum(int(t) for t in stages.values()) <= 0.85 * BUDGET_S, stages
    assert "not sm90" in summary, "the CUDA test stage must leave the Hopper subprocess tests to the hopper stage"
    assert "--target-processes application-only" in summary
    for group in GROUPS:
        assert re.search(rf"gpu_smoke.py {group}: [1-9]\d* cases", summary), summary


def _reduced(x, dim):
    dims = range(x.dim()) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    return math.prod(x.shape[d] for d in dims), list(dims)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape,dim,keepdim", [c for c in SUM_CASES if math.prod(c[0]) > 1], ids=str)
def test_reduce_tolerance_rejects_wrong_kernels(dtype, shape, dim, keepdim):
    """With the inputs test_cuda.py uses (|x| >= 0.5), reduce_tol accepts a float32/float64 sum in
    another order (torch's CPU sum) and rejects zeros, sum / (2n) for the mean, and a sum that
    drops the last reduced element."""
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    x = torch.where(x >= 0, x + 0.5, x - 0.5).to(dtype)
    n, dims = _reduced(x, dim)
    kw = {} if dim is None else dict(dim=dim, keepdim=keepdim)
    exact_sum = torch.sum(x.double(), **kw)
    flat = x.double().movedim(dims, list(range(x.dim() - len(dims), x.dim())))
    flat = flat.reshape(*flat.shape[: x.dim() - len(dims)], -1)
    dropped = flat[..., :-1].sum(-1)
    if keepdim:
        for d in sorted(dims):
            dropped = dropped.unsqueeze(d)
    candidates = {
        "sum": (torch.sum(x, **kw), {"zeros": torch.zeros_like(exact_sum), "drop last": dropped}),
        "mean": (
            torch.mean(x, **kw),
            {"zeros": torch.zeros_like(exact_sum), "sum / (2n)": exact_sum / (2 * n), "drop last": dropped / n},
        ),
    }
    for what, (good, wrong) in candidates.items():
        exact = (exact_sum / n if what == "mean" else exact_sum).to(dtype)
        tolerance = reduce_tol(dtype, n, mean=what == "mean")
        torch.testing.assert_close(good, exact, **tolerance)
        for mutant, value in wrong.items():
            try:
                torch.testing.assert_close(value.to(dtype), exact, **tolerance)
            except AssertionError:
                continue
            pytest.fail(f"the {what} tolerance accepts a kernel that returns {mutant}")


def test_gpu_check_reuses_only_a_build_of_these_sources(tmp_path):
    """gpu_check.sh's reuse test computes the digest setup.py records (sources_digest): a record of these
    sources is reused, any other is rebuilt."""
    import ast
    import glob
    import hashlib

    ns = {"glob": glob, "hashlib": hashlib, "os": os, "HERE": ROOT}
    for node in ast.parse(open(os.path.join(ROOT, "setup.py")).read()).body:
        if isinstance(node, ast.FunctionDef) and node.name in ("sources", "sources_digest"):
            exec(compile(ast.Module([node], []), "setup.py", "exec"), ns)
    script = open(os.path.join(ROOT, "tools", "gpu_check.sh")).read()
    check = script[script.index("<< 'EOF'\n") + len("<< 'EOF'\n") : script.index("\nEOF\n")]
    check = check.replace('if built["CUDA_ABSENT_REASON"]', "if False")  # a CPU-only build here is fine
    (tmp_path / "pykernels").mkdir()
    (tmp_path / "pykernels" / ("_C" + sysconfig.get_config_var("EXT_SUFFIX"))).write_bytes(b"")
    os.symlink(os.path.join(ROOT, "csrc"), tmp_path / "csrc")
    (tmp_path / "setup.py").write_bytes(open(os.path.join(ROOT, "setup.py"), "rb").read())
    for digest, reused in [(ns["sources_digest"](), True), ("0" * 64, False)]:
        (tmp_path / "pykernels" / "_build_config.py").write_text(
            f"TORCH_VERSION = {torch.__version__!r}\nCUDA_ABSENT_REASON = None\nSOURCES_SHA256 = {digest!r}\n"
        )
        done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert (done.returncode == 0) == reused, done.stdout + done.stderr
