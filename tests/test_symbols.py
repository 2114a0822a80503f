"""The built extension links against no BLAS library and calls no ATen compute function: its
undefined symbols (what it takes from other libraries), demangled, checked against
handwritten.forbidden_symbols."""

import glob
import os
import shutil
import subprocess

import pytest

import pykernels
from handwritten import forbidden_symbols


def extension_path():
    found = glob.glob(os.path.join(os.path.dirname(pykernels.__file__), "_C*.so"))
    if not found:
        pytest.skip("no built extension (_C*.so) next to the pykernels package")
    return found[0]


def undefined_symbols(path):
    out = subprocess.run(["nm", "-DC", "--undefined-only", path], capture_output=True, text=True, check=True).stdout
    return [line.split(None, 1)[1] for line in out.splitlines() if line.strip().startswith("U ")]


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) is not installed")
def test_extension_uses_no_blas_and_no_aten_compute():
    symbols = undefined_symbols(extension_path())
    assert any(s.startswith("at::_ops::empty") for s in symbols), "the symbol list looks wrong: no at::_ops::empty*"
    bad = forbidden_symbols(symbols)
    assert not bad, "the extension uses:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "symbol",
    [
        "at::_ops::add_Tensor::call(at::Tensor const&, at::Tensor const&, c10::Scalar const&)",
        "at::_ops::mm::call(at::Tensor const&, at::Tensor const&)",
        "at::_ops::sum_dim_IntList::redispatch(c10::DispatchKeySet, at::Tensor const&)",
        "at::_ops::threshold_backward::call(at::Tensor const&, at::Tensor const&, c10::Scalar const&)",
        "at::native::add(at::Tensor const&, at::Tensor const&, c10::Scalar const&)",
        "at::cpu::mul(at::Tensor const&, at::Tensor const&)",
        "sgemm_",
        "dgemm_",
        "cblas_sgemm",
        "mkl_blas_sgemm",
        "cublasGemmEx",
        "cudnnCreate",
        "dnnl_sgemm",
    ],
)
def test_forbidden_symbols_are_caught(symbol):
    assert forbidden_symbols([symbol]) == [symbol]


@pytest.mark.parametrize(
    "symbol",
    [
        "at::_ops::empty_strided::call(c10::ArrayRef<c10::SymInt>, c10::ArrayRef<c10::SymInt>)",
        "at::_ops::copy_::call(at::Tensor&, at::Tensor const&, bool)",
        "at::native::resize_output(at::Tensor const&, c10::ArrayRef<long>)",
        "at::get_num_threads()",
    ],
)
def test_allowed_symbols_pass(symbol):
    assert forbidden_symbols([symbol]) == []
