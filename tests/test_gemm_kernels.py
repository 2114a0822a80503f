"""Edge cases of the CPU GEMM kernels (csrc/cpu/gemm*.{h,cpp}).

The float32/float64 path is a Goto/BLIS loop nest over a register-tile microkernel (12 x 32
floats / 12 x 16 doubles with AVX-512, 6 x 16 / 6 x 8 with AVX2+FMA, 4 x 8 / 4 x 4 in the
portable kernel), with cache blocks MC = 144, KC = 256 (128 for doubles with AVX-512),
NC = 4080 or 4096, packing of A and B that is skipped for some layouts, dot-product tiles for
x @ w.t() with few rows, and threads that split the batch or cut C into blocks. These tests walk
every boundary of that structure: M, N and K around multiples of the tiles and blocks, K = 1,
transposed and strided operands (packed and read in place), broadcast batches, float64, and one
or two threads.

Two kinds of checks:
  * exact: small integer values stored as floats, so every partial sum is exact in float32 and
    any indexing, packing or edge-tile mistake shows up as a wrong value, whatever the order of
    summation;
  * random normal values against a float64 reference, with a tolerance that grows like sqrt(K)
    (float32), and tight for float64.
The AVX2 and portable paths are checked too, in subprocesses with PYKERNELS_NO_AVX512=1 and
PYKERNELS_NO_AVX2=1, on CPUs that would otherwise pick a wider kernel.
"""

import math
import os
import platform
import subprocess
import sys

import pytest
import torch

import pykernels


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    saved = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(saved)


def ints(*shape, dtype=torch.float32):
    """Integer values in [-4, 4] stored as `dtype`: sums of up to 2^19 products are exact in float32."""
    return torch.randint(-4, 5, shape).to(dtype)


def layout(x, kind):
    """The same matrix values in another memory layout (a view, no copy for the kernel).

    row: contiguous; col: column-major (a transposed view); strided: every other column of a
    wider matrix (row stride > columns, column stride 2); padded: rows of a wider matrix (row
    stride > columns, unit column stride).
    """
    if kind == "row":
        return x.contiguous()
    if kind == "col":
        return x.t().contiguous().t()
    if kind == "strided":
        wide = torch.zeros(x.shape[0], 2 * x.shape[1], dtype=x.dtype)
        wide[:, ::2] = x
        return wide[:, ::2]
    if kind == "padded":
        wide = torch.zeros(x.shape[0], x.shape[1] + 3, dtype=x.dtype)
        wide[:, : x.shape[1]] = x
        return wide[:, : x.shape[1]]
    raise ValueError(kind)


LAYOUTS = ["row", "col", "strided", "padded"]


def check_exact(a, b):
    out = pykernels.mm(a, b)
    expected = (a.double() @ b.double()).to(out.dtype)
    assert out.shape == expected.shape
    assert torch.equal(out, expected), (a.shape, a.stride(), b.shape, b.stride())


def check_random(out, a, b):
    """out ~= a @ b: float32 within c * eps * sqrt(K) * |entry scale|, float64 tight."""
    k = a.shape[-1]
    expected = torch.matmul(a.double(), b.double())
    scale = torch.matmul(a.double().abs(), b.double().abs()).clamp_min(1.0)
    eps = torch.finfo(out.dtype).eps
    # A dot product of k terms rounds k times; with random signs the error grows like sqrt(k).
    bound = 8 * eps * math.sqrt(max(k, 1)) * scale
    err = (out.double() - expected).abs()
    assert bool((err <= bound).all()), f"max error {err.max().item()} for shapes {a.shape} @ {b.shape}"


# Around the register tiles (12/6/4 rows, 32/16/8/4 columns, and with AVX-512 the half-vector
# edge tiles of at most 8 floats / 4 doubles), KC = 128 and 256 and the in-place / packed
# decisions (A in place for row-major A with N <= 256; B in place for M <= 64).
TILE_M = [1, 2, 5, 6, 7, 11, 12, 13, 25, 65]
TILE_N = [1, 3, 8, 9, 15, 16, 17, 31, 32, 33, 65]
TILE_K = [1, 2, 7, 128, 255, 256, 257]


@pytest.mark.parametrize("k", TILE_K)
@pytest.mark.parametrize("n", TILE_N)
@pytest.mark.parametrize("m", TILE_M)
def test_tile_edges_exact(m, n, k, threads):
    check_exact(ints(m, k), ints(k, n))


@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("layout_a", LAYOUTS)
@pytest.mark.parametrize(
    "m,n,k", [(1, 1, 1), (7, 17, 1), (13, 33, 257), (65, 31, 300), (150, 40, 20), (20, 300, 30), (6, 16, 256)]
)
def test_layouts_exact(m, n, k, layout_a, layout_b, threads):
    check_exact(layout(ints(m, k), layout_a), layout(ints(k, n), layout_b))


@pytest.mark.parametrize(
    "m,n,k",
    [
        (145, 17, 3),  # M just over the MC block
        (289, 33, 5),  # two MC blocks and a partial one
        (7, 4100, 3),  # N over the NC block
        (13, 20, 513),  # two KC blocks and a partial one
        (150, 300, 600),  # every block boundary at once
        (64, 256, 100),  # B rows 1 KiB apart: packed even though M is small
        (64, 100, 1000),  # the two-layer net's forward (A and B in place)
        (1000, 100, 64),  # x.t() @ grad
        (64, 1000, 100),  # grad @ w.t()
        (67, 45, 400),  # big enough to be cut across threads: blocks end in partial tiles
        (44, 70, 500),  # rows cut across threads at 4-row units (20 + 24), not whole 12-row tiles
        (13, 1000, 100),
        (300, 7, 600),
    ],
)
@pytest.mark.parametrize("layout_a", ["row", "col"])
def test_blocks_exact(m, n, k, layout_a, threads):
    check_exact(layout(ints(m, k), layout_a), ints(k, n))
    check_exact(layout(ints(m, k), layout_a), layout(ints(k, n), "col"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("edge", [1, 3, 4])
def test_narrow_edge_tile_matches_full_tile_bitwise(edge, dtype, threads):
    # A packed A (column-major here) with a last sliver of a few columns runs the turned-around
    # narrow tile: the same FMA chains, in the same order, as those columns inside a full sliver.
    torch.manual_seed(edge)
    a = layout(torch.randn(50, 300, dtype=dtype), "col")
    wide = torch.randn(300, 64, dtype=dtype)
    narrow = wide[:, : 32 + edge].contiguous()
    assert torch.equal(pykernels.mm(a, narrow)[:, 32:], pykernels.mm(a, wide)[:, 32 : 32 + edge])


# x @ w.t() with at most 64 rows (A's rows and B's columns contiguous in k) takes the dot-product
# tiles (4 x 4 with AVX-512, 3 x 4 with AVX2): rows and columns around the tile, k around a vector
# with a masked tail and around the 4 KiB K blocks (512 and 1024 elements; 3000 is several), B in
# chunks of columns (70 columns of 1024 floats or 512 doubles are 64 + 6).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("m,n", [(1, 1), (3, 4), (4, 5), (5, 9), (64, 3), (5, 70)])
@pytest.mark.parametrize("k", [15, 16, 17, 512, 513, 1024, 1025, 3000])
def test_dot_product_path_exact(m, n, k, dtype, threads):
    a, w = ints(m, k, dtype=dtype), ints(n, k, dtype=dtype)
    check_exact(a, w.t())
    check_exact(layout(a, "padded"), layout(w, "padded").t())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("k", [1, 3, 4, 5, 8, 9, 15, 263])
@pytest.mark.parametrize("layout_a", ["row", "padded"])
def test_row_major_a_packed_by_transposes_exact(k, layout_a, dtype, threads):
    # N > 256 packs a row-major A; its whole-tile slivers (24 rows: 12- and 6-row tiles) go
    # through the register transposes, 8 (floats) or 4 (doubles) k at a time, then a k tail.
    a, b = layout(ints(24, k, dtype=dtype), layout_a), ints(k, 257, dtype=dtype)
    check_exact(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "m,n,k",
    [
        (1, 1, 1),
        (5, 7, 1),
        (6, 16, 256),
        (13, 33, 257),
        (64, 100, 1000),
        (1000, 100, 64),
        (150, 300, 600),
        (3, 5, 4000),
    ],
)
@pytest.mark.parametrize("layout_a,layout_b", [("row", "row"), ("col", "row"), ("row", "col"), ("strided", "padded")])
def test_random_against_float64(m, n, k, layout_a, layout_b, dtype, threads):
    a = layout(torch.randn(m, k, dtype=dtype), layout_a)
    b = layout(torch.randn(k, n, dtype=dtype), layout_b)
    check_random(pykernels.mm(a, b), a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 9, 1), (12, 8, 3), (13, 17, 257), (150, 20, 300)])
def test_float64_and_float32_exact(m, n, k, dtype, threads):
    check_exact(ints(m, k, dtype=dtype), ints(k, n, dtype=dtype))
    check_exact(layout(ints(m, k, dtype=dtype), "col"), layout(ints(k, n, dtype=dtype), "strided"))


@pytest.mark.parametrize("batch", [1, 2, 3, 8, 9])
@pytest.mark.parametrize("m,n,k", [(5, 7, 3), (37, 41, 29), (128, 256, 128)])
def test_bmm_batches_exact(batch, m, n, k, threads):
    # Batches smaller than, equal to and larger than the thread count; transposed members.
    a, b = ints(batch, m, k), ints(batch, k, n)
    expected = torch.bmm(a.double(), b.double()).float()
    assert torch.equal(pykernels.bmm(a, b), expected)
    at, bt = a.transpose(1, 2).contiguous().transpose(1, 2), b.transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(pykernels.bmm(at, bt), expected)


def test_matmul_broadcast_batch_exact(threads):
    # A stride-0 (broadcast) batch dimension on either side.
    a, b = ints(3, 1, 37, 41), ints(4, 41, 29)
    assert torch.equal(pykernels.matmul(a, b), torch.matmul(a.double(), b.double()).float())
    w = ints(41, 300)
    assert torch.equal(pykernels.matmul(a, w), torch.matmul(a.double(), w.double()).float())


def test_k_zero_gives_zeros(threads):
    out = pykernels.mm(torch.randn(7, 0), torch.randn(0, 20))
    assert torch.equal(out, torch.zeros(7, 20))


def test_output_garbage_is_never_read(threads):
    # The first K block writes C without reading it; fill the allocator's free memory with NaN
    # first so a read of uninitialized output would show.
    for m, n, k in [(64, 100, 1000), (150, 300, 600), (13, 33, 5)]:
        a, b = ints(m, k), ints(k, n)
        garbage = torch.full((m, n), float("nan"))
        del garbage
        out = pykernels.mm(a, b)
        assert not out.isnan().any()
        assert torch.equal(out, (a.double() @ b.double()).float())


def test_special_values_propagate(threads):
    a, b = torch.randn(13, 300), torch.randn(300, 20)
    a[3, 7] = float("nan")
    b[5, 2] = float("inf")
    out, expected = pykernels.mm(a, b), torch.mm(a, b)
    assert torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.isinf(), expected.isinf())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32, torch.int64])
def test_widening_dtypes(dtype, threads):
    a, b = ints(37, 300, dtype=dtype), ints(300, 29, dtype=dtype)
    expected = a.double() @ b.double()
    if dtype.is_floating_point:
        torch.testing.assert_close(pykernels.mm(a, b).double(), expected, rtol=1e-2, atol=0.0)
    else:
        assert torch.equal(pykernels.mm(a, b), expected.to(dtype))


def _cpu_flags():
    if platform.machine() not in ("x86_64", "AMD64") or not os.path.exists("/proc/cpuinfo"):
        return set()
    with open("/proc/cpuinfo") as f:
        return set(next((line for line in f if line.startswith("flags")), "").split())


def _env_off(name):
    return os.environ.get(name, "0") not in ("", "0")


def test_build_info_names_gemm_path():
    simd = pykernels.build_info()["cpu_simd"]
    assert "GEMM" in simd
    flags = _cpu_flags()
    if flags and not _env_off("PYKERNELS_NO_AVX2"):
        avx512 = "avx512f" in flags and not _env_off("PYKERNELS_NO_AVX512")
        assert ("AVX-512F" in simd) == avx512, simd
        assert ("AVX2+FMA" in simd) == ({"avx2", "fma"} <= flags and not avx512), simd


_PATH_SCRIPT = r"""
import sys, torch, pykernels
assert sys.argv[1] in pykernels.build_info()["cpu_simd"], pykernels.build_info()
torch.manual_seed(0)
def ints(*s, dtype=torch.float32):
    return torch.randint(-4, 5, s).to(dtype)
for threads in (1, 2):
    torch.set_num_threads(threads)
    for dtype in (torch.float32, torch.float64):
        for m, n, k in [(1, 1, 1), (3, 5, 1), (4, 8, 256), (5, 9, 257), (13, 33, 300), (64, 100, 1000),
                        (1000, 100, 64), (150, 300, 600), (7, 4100, 3), (24, 257, 13),
                        (5, 70, 512)]:
            a, b = ints(m, k, dtype=dtype), ints(k, n, dtype=dtype)
            for x, y in [(a, b), (a.t().contiguous().t(), b), (a, b.t().contiguous().t())]:
                assert torch.equal(pykernels.mm(x, y), (x.double() @ y.double()).to(dtype)), (m, n, k, dtype)
        a, b = ints(3, 37, 41, dtype=dtype), ints(3, 41, 29, dtype=dtype)
        assert torch.equal(pykernels.bmm(a, b), torch.bmm(a.double(), b.double()).to(dtype))
        x = torch.randn(40, 70, dtype=dtype)
        assert torch.equal(pykernels.relu(x), torch.relu(x))
        assert torch.equal(pykernels.add(x, x.t().contiguous().t()), x + x)
print("ok")
"""


@pytest.mark.parametrize(
    "switch,path",
    [("PYKERNELS_NO_AVX2", "generic GEMM microkernel"), ("PYKERNELS_NO_AVX512", "AVX2+FMA (runtime-selected: GEMM")],
)
def test_narrower_path_in_subprocess(switch, path):
    if switch == "PYKERNELS_NO_AVX512" and not {"avx512f", "avx2", "fma"} <= _cpu_flags():
        pytest.skip("the AVX2 GEMM is what this CPU runs anyway (no AVX-512F)")
    env = dict(os.environ, **{switch: "1"})
    done = subprocess.run(
        [sys.executable, "-c", _PATH_SCRIPT, path], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
