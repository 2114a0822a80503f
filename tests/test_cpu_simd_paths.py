"""The run-time selected AVX-512 and AVX2 variants of the elementwise loops, of ReLU with a bit mask
and of the sum, mean and mse_loss reductions (csrc/cpu/loops.h, csrc/cpu/elementwise.cpp,
csrc/cpu/reduce.cpp, csrc/cpu/mse_loss.cpp) must give bit-identical results to the portable
loops: they are the same C++ compiled for those targets without FMA contraction (the mask's
AVX2 compares and selects are exact), and the reductions keep their lanes and blocks.

The portable results come from a subprocess with PYKERNELS_NO_AVX2=1, the AVX2 ones (on an
AVX-512 CPU) from one with PYKERNELS_NO_AVX512=1 (the switches are read once per process), and
are compared bit for bit, NaN payloads aside. The AVX-512 loops run on Intel CPUs only (on AMD
the elementwise loops take AVX2), so an AMD machine compares AVX2 with portable.
"""

import os
import subprocess
import sys

import pytest
import torch

import pykernels

_CASES = r"""
import torch, pykernels

def inputs(dtype):
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3001, generator=g).to(dtype)
    y = torch.randn(3001, generator=g).to(dtype)
    x[5], x[17], x[100] = float("nan"), float("inf"), -0.0
    y[7], y[17] = float("-inf"), float("inf")
    m = torch.randn(37, 81, generator=g).to(dtype)
    return x, y, m, g

def results():
    out = {}
    for dtype in (torch.float32, torch.float64):
        x, y, m, g = inputs(dtype)
        xp = x.abs() + 0.5
        name = str(dtype)
        out[name + " add"] = pykernels.add(x, y)
        out[name + " sub alpha"] = pykernels.sub(x, y, alpha=0.3)
        out[name + " mul scalar"] = pykernels.mul(x, 1.7)
        out[name + " div"] = pykernels.div(x, y)
        out[name + " div floor"] = pykernels.div(x, y, rounding_mode="floor")
        out[name + " add strided"] = pykernels.add(m.t(), m.t()[:, :1])
        out[name + " neg"] = pykernels.neg(x)
        out[name + " exp"] = pykernels.exp(x)
        out[name + " log"] = pykernels.log(xp)
        out[name + " sqrt"] = pykernels.sqrt(xp)
        out[name + " pow"] = pykernels.pow(x, 3)
        out[name + " relu"] = pykernels.relu(x)
        out[name + " relu_backward"] = torch.ops.pykernels.relu_backward(y, pykernels.relu(x))
        out[name + " mse mean"] = pykernels.mse_loss(x, y)
        out[name + " mse sum"] = pykernels.mse_loss(x.nan_to_num(0, 0, 0), y.nan_to_num(0, 0, 0), reduction="sum")
        out[name + " mse none"] = pykernels.mse_loss(x, y, reduction="none")
        out[name + " mse strided"] = pykernels.mse_loss(m.t(), m.t().flip(0))
        out[name + " mse backward"] = torch.ops.pykernels.mse_loss_backward(
            torch.tensor(0.7, dtype=dtype), x, y, 1)
        out[name + " relu_and_mask"], mask = torch.ops.pykernels.relu_and_mask(x)
        out[name + " relu mask"] = mask
        out[name + " relu_and_mask strided"] = torch.ops.pykernels.relu_and_mask(m.t())[0]
        out[name + " relu_mask_backward"] = torch.ops.pykernels.relu_mask_backward(y, mask)
        finite = x.nan_to_num(0, 0, 0)
        big = torch.randn(301, 203, generator=g).to(dtype)  # more rows and columns than a block or tile
        out[name + " sum"] = pykernels.sum(finite)
        out[name + " mean"] = pykernels.mean(finite)
        out[name + " sum inner"] = pykernels.sum(big, dim=1)
        out[name + " sum outer"] = pykernels.sum(big, dim=0)
        out[name + " sum strided"] = pykernels.sum(big.t()[::2], dim=1)
    return out
"""


def _results_in_subprocess(tmp_path, switch):
    """The cases' results in a fresh process with ``switch`` set (the switches are read once
    per process), and the SIMD description that process reports."""
    path = tmp_path / f"{switch}.pt"
    script = _CASES + f"\ntorch.save(results(), {str(path)!r})\nprint(pykernels.build_info()['cpu_simd'])\n"
    env = dict(os.environ, **{switch: "1"})
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(path), done.stdout.split("\n")[0]


def _assert_bitwise_equal(here, there, what):
    assert here.keys() == there.keys()
    for name in here:
        a, b = here[name], there[name]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        same = (a == b) | (a.isnan() & b.isnan())
        # -0.0 == 0.0 above, so compare signs of zeros too
        same &= (torch.signbit(a) == torch.signbit(b)) | a.isnan()
        assert bool(same.all()), f"{name}: {what} differ"


def test_simd_loops_match_portable_loops_bitwise(tmp_path):
    simd = pykernels.build_info()["cpu_simd"]
    if "AVX" not in simd.split(";")[0]:
        pytest.skip("this process does not use SIMD loops (CPU without AVX2, or PYKERNELS_NO_AVX2 set)")
    namespace = {}
    exec(_CASES, namespace)
    here = namespace["results"]()
    portable, portable_simd = _results_in_subprocess(tmp_path, "PYKERNELS_NO_AVX2")
    assert "AVX" not in portable_simd, portable_simd
    _assert_bitwise_equal(here, portable, "this CPU's SIMD loops and the portable loops")
    if simd.startswith("AVX-512F"):  # the AVX2 loops too
        avx2, avx2_simd = _results_in_subprocess(tmp_path, "PYKERNELS_NO_AVX512")
        assert avx2_simd.startswith("AVX2"), avx2_simd
        _assert_bitwise_equal(avx2, portable, "AVX2 and portable loops")
