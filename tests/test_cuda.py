"""CUDA-only tests: parity with torch's own CUDA ops for every pykernels op on the GPU at the sizes
and layouts that reach the CUDA kernels' paths (the op table's ops, dtypes and options, from the
op database), cross-device errors, non-default streams, CUDA-graph capture and a second GPU.
GEMM cases check which kernel ran (pykernels._C.gemm_last_kernel) as well as the values; sums and
means are judged against the exact result with tolerances that a kernel dropping one element
fails. (Every op's samples, gradcheck and opcheck also run on CUDA in test_ops.py and
test_autograd.py, which take the device as a parameter.)

Everything is skipped with "no CUDA device" when no GPU is visible, except that a visible GPU with
a pykernels built without its CUDA kernels is a failure, not a skip.
"""

import json
import math
import os
import subprocess
import sys

import opdb
import pytest
import torch

import pykernels as pk
from pykernels import optable
from conftest import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    accum_tol,
    check_like_torch,
    tol,
)
from conftest import make as _make

HAS_GPU = torch.cuda.is_available()
BUILT_WITH_CUDA = "CUDA" in pk.build_info()["backends"]

pytestmark = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")


def reduce_tol(dtype, n, *, mean=False):
    """A sum (mean=True: a mean) of n O(1) terms against the exact float64 result rounded to dtype.

    The accumulator's rounding errors (float32 for float16/bfloat16/float32, float64 for float64)
    add up like a random walk over partial sums of size ~sqrt(n): about eps(acc) * sqrt(n), given
    a margin of 16. The result's own rounding is relative: 2 eps(dtype). A mean divides the
    absolute part by n. Unlike accum_tol, nothing grows with n itself, so a kernel that drops
    one term of size >= 0.5 (the inputs below) fails a float32 or float64 sum at every tested n."""
    if not dtype.is_floating_point:
        return dict(atol=0, rtol=0)
    n = max(int(n), 1)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    atol = 16 * torch.finfo(acc).eps * math.sqrt(n)
    return dict(atol=atol / n if mean else atol, rtol=2 * torch.finfo(dtype).eps)


def close(actual, expected, **tolerance):
    assert actual.device == expected.device, f"result on {actual.device}, expected {expected.device}"
    torch.testing.assert_close(actual, expected, equal_nan=True, **(tolerance or tol(expected.dtype)))


def make(shape, dtype=torch.float32, device="cuda", **options):
    """conftest.make, on the GPU unless told otherwise."""
    return _make(shape, dtype, device, **options)


def layout(x, kind):
    """The same values as contiguous `x`, in another memory layout."""
    if kind == "contiguous":
        return x
    if kind == "transposed":  # a permuted view of a tensor of the reversed shape
        return x.permute(*reversed(range(x.dim()))).contiguous().permute(*reversed(range(x.dim())))
    if kind == "strided":  # every dim step-sliced by 2 out of a bigger tensor
        big = torch.zeros([2 * s for s in x.shape], dtype=x.dtype, device=x.device)
        view = big[tuple(slice(None, None, 2) for _ in x.shape)]
        view.copy_(x)
        return view
    if kind == "offset":  # storage offset 1: not 16-byte aligned, so not the vectorized path
        flat = torch.zeros(x.numel() + 1, dtype=x.dtype, device=x.device)
        flat[1:].copy_(x.reshape(-1))
        return flat[1:].view(x.shape)
    raise ValueError(kind)


LAYOUTS = ["contiguous", "transposed", "strided", "offset"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---- build ------------------------------------------------------------------------------------


def test_cuda_kernels_built_when_gpu_visible():
    assert BUILT_WITH_CUDA, (
        "a GPU is visible but pykernels was built without its CUDA kernels "
        f"(build_info: {pk.build_info()}); rebuild with the CUDA toolkit available"
    )
    assert pk.build_info()["cuda_arches"], "a CUDA build must report the architectures it compiled"


# ---- elementwise ----------------------------------------------------------------------------------

BINARY = opdb.binary_cases()


BINARY_FUNCTIONS = sorted({name for name, _ in BINARY})


def binary_tol(name, kwargs, dtype):
    # a rounded quotient of float16/bfloat16 may round to the neighbouring integer: torch computes
    # it in the same float32 opmath, but x / y itself differs in the last bit between
    # implementations (torch multiplies by the reciprocal for scalar divisors)
    if kwargs.get("rounding_mode") and dtype in (torch.float16, torch.bfloat16):
        return dict(atol=1, rtol=0)
    return tol(dtype)


def operands(name, shape, dtype):
    """The two operands of a binary function, within their domains (nonzero divisors, ...)."""
    return make(shape, dtype, **opdb.domain(name, "input")), make(shape, dtype, **opdb.domain(name, "other"))


def check_binary(name, kwargs, a, b):
    """torch's result, or torch's exception type where torch rejects the combination."""
    check_like_torch(
        getattr(pk, name),
        getattr(torch, name),
        (a, b),
        kwargs,
        name=name,
        tolerance=binary_tol(name, kwargs, torch.result_type(a, b)),
    )


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("name,kwargs", BINARY, ids=lambda c: str(c))
@pytest.mark.parametrize("n", [0, 1, 7, 1031, (1 << 20) + 3])
def test_binary_sizes(name, kwargs, dtype, n):
    check_binary(name, kwargs, *operands(name, (n,), dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [torch.int32], ids=str)
@pytest.mark.parametrize("name,kwargs", BINARY, ids=lambda c: str(c))
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", ["contiguous", "transposed", "offset"])
def test_binary_layouts(name, kwargs, dtype, la, lb):
    a, b = operands(name, (17, 33), dtype)
    check_binary(name, kwargs, layout(a, la), layout(b, lb))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.int64], ids=str)
@pytest.mark.parametrize(
    "sa,sb", [((3, 1), (1, 4)), ((5,), (2, 5)), ((), (3, 4)), ((4, 1, 3), (2, 1)), ((2, 0, 3), (1, 3)), ((), ())]
)
@pytest.mark.parametrize("name", BINARY_FUNCTIONS)
def test_binary_broadcast(name, dtype, sa, sb):
    a, b = make(sa, dtype, **opdb.domain(name, "input")), make(sb, dtype, **opdb.domain(name, "other"))
    check_binary(name, {}, a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int32], ids=str)
@pytest.mark.parametrize("scalar", [3, -2, 2.5, True])
@pytest.mark.parametrize("name", BINARY_FUNCTIONS)
def test_binary_python_scalar(name, dtype, scalar):
    """A number on either side (torch's CUDA functions take one first too)."""
    check_binary(name, {}, make((5, 7), dtype, **opdb.domain(name, "input")), scalar)
    check_binary(name, {}, scalar, make((5, 7), dtype, **opdb.domain(name, "other")))


def test_integer_division_edge_cases():
    x = torch.tensor([-7, 7, -7, 7, 5, 0], dtype=torch.int32, device="cuda")
    y = torch.tensor([2, -2, -2, 2, 3, -4], dtype=torch.int32, device="cuda")
    close(pk.div(x, y, rounding_mode="floor"), torch.div(x, y, rounding_mode="floor"))
    close(pk.div(x, y, rounding_mode="trunc"), torch.div(x, y, rounding_mode="trunc"))
    # INT_MIN // -1 overflows; torch's CUDA floor division returns INT_MIN (its trunc division
    # leaves it to the hardware, so it is not compared)
    x = torch.tensor([-(2**31)], dtype=torch.int32, device="cuda")
    y = torch.tensor([-1], dtype=torch.int32, device="cuda")
    close(pk.div(x, y, rounding_mode="floor"), torch.div(x, y, rounding_mode="floor"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.int64], ids=str)
@pytest.mark.parametrize("name", opdb.functions("binary", inplace=True) + opdb.functions("unary", inplace=True))
def test_in_place_on_views(name, dtype):
    """In place on a transposed view; where torch rejects it (true division of integers in place),
    the same exception type."""
    base = make((33, 17), dtype, **opdb.domain(name, "input")).t()
    other = make((17, 33), dtype, nonzero=True)
    ours, theirs = base.clone().t().contiguous().t(), base.clone().t().contiguous().t()
    args = (other,) if name.rstrip("_") in BINARY_FUNCTIONS else ()
    reference = opdb.torch_function(optable.BY_NAME[name.rstrip("_")], name)
    try:
        reference(theirs, *args)
    except RuntimeError as exc:
        with pytest.raises(type(exc), match=name.rstrip("_")):
            getattr(pk, name)(ours, *args)
        return
    assert getattr(pk, name)(ours, *args) is ours
    close(ours, theirs, **tol(dtype))


def test_out_with_another_dtype():
    a, b = make((100,)), make((100,))
    out = torch.empty(100, dtype=torch.float64, device="cuda")
    pk.mul(a, b, out=out)
    close(out, torch.mul(a, b).double())


UNARY = opdb.functions("unary")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("n", [1, 1031, (1 << 20) + 3])
def test_unary(name, dtype, kind, n):
    if kind != "contiguous" and n > 2000:
        pytest.skip("large sizes are covered contiguous")
    x = layout(make((n,), dtype, **opdb.domain(name, "input")), kind)
    close(getattr(pk, name)(x), getattr(torch, name)(x), **tol(dtype))


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_unary_integers(dtype):
    x = make((1031,), dtype)
    close(pk.neg(x), torch.neg(x))
    close(pk.relu(x), torch.relu(x))
    for e in (0, 1, 2, 3):
        close(pk.pow(x, e), torch.pow(x, e))
    close(pk.exp(x), torch.exp(x))  # integers promote to the default float dtype


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -0.5, -1, -2, 1.7, 0])
def test_pow(dtype, exponent):
    x = make((3, 1031), dtype, positive=True)
    close(pk.pow(x, exponent), torch.pow(x, exponent), **tol(dtype))


def test_nan_handling():
    x = torch.tensor([-1.0, 0.0, float("nan"), 2.0, -0.0], device="cuda")
    close(pk.relu(x), torch.relu(x))
    y = x.clone()
    pk.relu_(y)
    close(y, torch.relu(x))
    fx = torch.tensor([1.0, -1.0, 0.0, 5.5, -5.5], device="cuda")
    fy = torch.tensor([0.0, 0.0, 0.0, 2.0, 2.0], device="cuda")
    close(pk.div(fx, fy, rounding_mode="floor"), torch.div(fx, fy, rounding_mode="floor"))


# ---- reductions -------------------------------------------------------------------------------------


SUM_CASES = [
    ((0,), None, False),
    ((1,), None, False),
    ((1031,), None, False),
    (((1 << 22) + 1,), None, False),
    ((37, 300), 1, False),
    ((300, 37), 0, True),
    ((5000, 3), 0, False),
    ((4, 100000), 1, False),
    ((6, 7, 8), (0, 2), False),
    ((6, 7, 8), 1, True),
    ((3, 0), 1, False),
    ((4, 1, 5), 1, False),
    ((), None, False),
]


REDUCTIONS = opdb.functions("reduction")


def check_sum_mean(x, **kw):
    """Every reduction of x (pk.sum, pk.mean) against the exact (float64) result rounded to x's
    dtype, within reduce_tol for the number of reduced elements; integers: exactly torch's result
    (int64 sums), or torch's exception (means)."""
    dim = kw.get("dim")
    dims = range(x.dim()) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(x.shape[d] for d in dims)
    for name in REDUCTIONS:
        ours, theirs = getattr(pk, name), getattr(torch, name)
        if not x.dtype.is_floating_point:
            check_like_torch(ours, theirs, (x,), kw, name=name, tolerance={"atol": 0, "rtol": 0})
            continue
        close(ours(x, **kw), theirs(x.double(), **kw).to(x.dtype), **reduce_tol(x.dtype, n, mean=name == "mean"))


# Floating inputs have |x| >= 0.5, so every element moves a sum by more than the tolerance
# (float32/float64); the long cases take the path that splits a reduction across blocks.
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + INT_DTYPES, ids=str)
@pytest.mark.parametrize("shape,dim,keepdim", SUM_CASES, ids=str)
def test_sum_mean(dtype, shape, dim, keepdim):
    x = make(shape, dtype, nonzero=True)
    check_sum_mean(x, **({} if dim is None else dict(dim=dim, keepdim=keepdim)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", ["transposed", "strided", "offset"])
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
def test_sum_layouts(dtype, kind, dim):
    x = layout(make((67, 45), dtype, nonzero=True), kind)
    check_sum_mean(x, **({} if dim is None else dict(dim=dim)))


def test_sum_expanded_and_dtype():
    check_sum_mean(make((1, 9), nonzero=True).expand(500, 9), dim=0)
    h = make((50, 40), torch.float16)
    expected = torch.sum(h.double(), dim=1).float()
    close(pk.sum(h, dim=1, dtype=torch.float32), expected, **reduce_tol(torch.float32, 40))


# ---- relu / mse_loss ----------------------------------------------------------------------------------


def test_relu_training_forward_keeps_output_on_cuda():
    """The bit-mask ReLU is CPU only: on CUDA the forward saves its output, and the mask ops say
    they have no CUDA kernel."""
    x = make((33, 17), torch.float32).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = pk.relu(x)
    assert [t.dtype for t in saved] == [torch.float32]
    g = make((33, 17), torch.float32)
    y.backward(g)
    close(x.grad, torch.ops.aten.threshold_backward(g, torch.relu(x.detach()), 0))
    with pytest.raises(NotImplementedError):
        torch.ops.pykernels.relu_and_mask(x.detach())


@pytest.mark.filterwarnings("ignore:Using a target size")  # broadcast targets warn, in torch too
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "shapes",
    [((0,), (0,)), ((1,), (1,)), ((1031,), (1031,)), ((30, 1), (70,)), (((1 << 20) + 3,), ((1 << 20) + 3,))],
    ids=str,
)
def test_mse_loss(dtype, reduction, shapes):
    a, b = make(shapes[0], dtype), make(shapes[1], dtype)
    n = max(torch.broadcast_shapes(a.shape, b.shape).numel(), 1)
    expected = torch.nn.functional.mse_loss(a, b, reduction=reduction)
    tolerance = tol(dtype) if reduction == "none" else accum_tol(dtype, n, mean=reduction == "mean")
    close(pk.mse_loss(a, b, reduction=reduction), expected, **tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", ["transposed", "strided"])
def test_mse_loss_layouts(dtype, kind):
    a, b = layout(make((40, 30), dtype), kind), make((40, 30), dtype)
    for reduction in ("none", "mean", "sum"):
        close(
            pk.mse_loss(a, b, reduction=reduction),
            torch.nn.functional.mse_loss(a, b, reduction=reduction),
            **accum_tol(dtype, a.numel(), mean=reduction == "mean"),
        )


# ---- matmul ------------------------------------------------------------------------------------------------


def gemm_ref(a, b):
    """The exact product (computed in float64), rounded once to the operands' dtype."""
    acc = torch.float64
    return torch.matmul(a.to(acc), b.to(acc)).to(a.dtype)


def matrix(rows, cols, dtype, kind):
    return layout(make((rows, cols), dtype), kind)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(
    "m,k,n",
    [
        (1, 1, 1),
        (7, 13, 5),
        (33, 17, 65),
        (129, 67, 131),
        (256, 256, 256),
        (64, 0, 64),
        (1, 300, 257),
        (300, 70, 1),
        (512, 1024, 384),
    ],
)
def test_mm_shapes(dtype, m, k, n):
    a, b = make((m, k), dtype), make((k, n), dtype)
    close(pk.mm(a, b), gemm_ref(a, b), **accum_tol(dtype, k))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
def test_mm_layouts(dtype, la, lb):
    a, b = matrix(130, 72, dtype, la), matrix(72, 129, dtype, lb)
    close(pk.mm(a, b), gemm_ref(a, b), **accum_tol(dtype, 72))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_mm_transposed_operands_match_torch(dtype):
    # transposed operands are read in place (no copies): the result must match torch.mm itself
    a, b = make((96, 200), dtype).t(), make((150, 96), dtype).t()
    close(pk.mm(a, b), torch.mm(a, b), **accum_tol(dtype, 96))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_bmm_and_matmul_broadcast(dtype):
    a, b = make((3, 20, 9), dtype), make((3, 9, 17), dtype)
    close(pk.bmm(a, b), gemm_ref(a, b), **accum_tol(dtype, 9))
    close(pk.bmm(a.transpose(1, 2).contiguous().transpose(1, 2), b), gemm_ref(a, b), **accum_tol(dtype, 9))
    x, y = make((2, 1, 20, 9), dtype), make((3, 9, 17), dtype)
    close(pk.matmul(x, y), gemm_ref(x, y), **accum_tol(dtype, 9))
    v, w = make((9,), dtype), make((17,), dtype)
    close(pk.matmul(x, v), gemm_ref(x, v), **accum_tol(dtype, 9))
    close(pk.matmul(v, y), gemm_ref(v, y), **accum_tol(dtype, 9))
    close(pk.matmul(y, w), gemm_ref(y, w), **accum_tol(dtype, 17))
    close(pk.matmul(v, v), gemm_ref(v, v), **accum_tol(dtype, 9))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64], ids=str)
def test_mm_integer_raises_like_torch(dtype):
    a = make((4, 4), dtype)
    with pytest.raises(RuntimeError) as theirs:  # NotImplementedError ("addmm_cuda" not implemented for ...)
        torch.mm(a, a)
    with pytest.raises(type(theirs.value), match="mm"):
        pk.mm(a, a)


# ---- which GEMM kernel runs ------------------------------------------------------------------------------------
#
# csrc/cuda/gemm.cu picks the kernel from the dtype, the device and the shape: float32 takes 128x128 tiles when the
# output has at least as many of them as the GPU has SMs, else 64x64; float64 64x64; float16/bfloat16 the mma.sync
# kernel from sm_80. Per operand, loads run along its contiguous dimension and are 16-byte vectors when the
# alignment allows. pk._C.gemm_last_kernel() reports what the last product on this thread launched, so each case
# below checks that its shape reaches the kernel it was chosen for as well as the values.


def sm_count():
    return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count


def float32_tile(batch, m, n):
    """The float32 tile gemm.cu's rule picks on this GPU."""
    return "128x128" if batch * -(-m // 128) * -(-n // 128) >= sm_count() else "64x64"


def expected_loads(la, lb, m, k, n, vec_elems):
    """gemm.cu's description of row-major ("contiguous") or column-major ("transposed") operands of fresh
    allocations: A's loads run along k or m, B's along n or k; they are 16-byte vectors when the operand's other
    stride is a multiple of 16 bytes (vec_elems elements)."""
    a_dim, a_stride = ("k", k) if la == "contiguous" else ("m", m)
    b_dim, b_stride = ("n", n) if lb == "contiguous" else ("k", k)
    a = "a:" + a_dim + ("+vec" if a_stride % vec_elems == 0 else "")
    b = "b:" + b_dim + ("+vec" if b_stride % vec_elems == 0 else "")
    return f"{a} {b}"


def product_and_kernel(op, a, b):
    out = getattr(pk, op)(a, b)
    return out, pk._C.gemm_last_kernel()


# (m, k, n): 256 tiles of 128x128; 156 with partial tiles on both edges and a k that is no multiple of 4 or 8
FLOAT32_128 = [(2048, 100, 2048), (1537, 67, 1531)]


@pytest.mark.parametrize("la", ["contiguous", "transposed"])
@pytest.mark.parametrize("lb", ["contiguous", "transposed"])
@pytest.mark.parametrize("m,k,n", FLOAT32_128 + [(1000, 67, 1000)])
def test_float32_gemm_tiles(m, k, n, la, lb):
    tile = "128x128" if (m, k, n) in FLOAT32_128 else "64x64"
    assert float32_tile(1, m, n) == tile, f"on a GPU with {sm_count()} SMs, {m}x{n} does not select {tile} tiles"
    a, b = matrix(m, k, torch.float32, la), matrix(k, n, torch.float32, lb)
    out, kernel = product_and_kernel("mm", a, b)
    assert kernel == f"simt {tile} {expected_loads(la, lb, m, k, n, 4)}"
    close(out, gemm_ref(a, b), **accum_tol(torch.float32, k))


@pytest.mark.parametrize("tile", ["128x128", "64x64"])
def test_float32_bmm_tiles(tile):
    m, k, n = 700, 50, 600  # 6 x 5 tiles of 128x128 per batch, the last row and column partial
    per_batch = 6 * 5
    batch = -(-sm_count() // per_batch) if tile == "128x128" else max(1, (sm_count() - 1) // per_batch)
    assert float32_tile(batch, m, n) == tile, f"a GPU with {sm_count()} SMs has too few SMs for {tile} bmm tiles"
    a, b = make((batch, m, k)), make((batch, k, n))
    out, kernel = product_and_kernel("bmm", a, b)
    assert kernel == f"simt {tile} a:k b:n+vec"
    close(out, gemm_ref(a, b), **accum_tol(torch.float32, k))


def test_float64_gemm_kernel():
    a, b = make((129, 67), torch.float64), make((67, 131), torch.float64)
    out, kernel = product_and_kernel("mm", a, b)
    assert kernel == "simt 64x64 a:k b:n"  # float64 loads are scalar
    close(out, gemm_ref(a, b), **accum_tol(torch.float64, 67))


def assert_low_precision_product(ours, a, b):
    """A float16/bfloat16 product against the exact float64 one, judged by torch's own error on the same inputs:
    at most twice torch's largest error, or one ulp of the largest output where torch is that exact."""
    exact = torch.matmul(a.double(), b.double())
    assert ours.dtype == a.dtype and ours.device == a.device
    torch_error = (torch.matmul(a, b).double() - exact).abs().max().item()
    ulp = torch.finfo(a.dtype).eps * exact.abs().max().item()
    close(ours.double(), exact, atol=2 * max(torch_error, ulp), rtol=0)


def sm90_active():
    return (
        torch.cuda.get_device_capability()[0] == 9
        and pk.build_info().get("sm90_gemm")
        and os.environ.get("PYKERNELS_GEMM_SM90") == "1"
    )


# Edge tiles in m, k and n with an aligned row-major B (N a multiple of 8), whose cp.async chunks are whole
# except the last k-slice and the last n-chunks; with each operand layout in turn (all four mma.sync variants).
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("la", ["contiguous", "transposed"])
@pytest.mark.parametrize("lb", ["contiguous", "transposed"])
@pytest.mark.parametrize("m,k,n", [(136, 200, 264), (300, 200, 104)])
def test_half_gemm_edges(dtype, m, k, n, la, lb):
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("the mma.sync kernel needs compute capability 8.0; older GPUs take the SIMT kernel")
    a, b = matrix(m, k, dtype, la), matrix(k, n, dtype, lb)
    out, kernel = product_and_kernel("mm", a, b)
    if sm90_active() and min(m, n) >= 128:
        assert kernel == "sm90 128x256"
    else:
        assert kernel == f"mma.sync 128x128 {expected_loads(la, lb, m, k, n, 8)}"
    assert_low_precision_product(out, a, b)


# ---- Hopper GEMM -----------------------------------------------------------------------------------------------
#
# The wgmma + TMA kernel (csrc/cuda/gemm_sm90.cu) runs only with PYKERNELS_GEMM_SM90=1, which is read once per
# process, so its cases run in one subprocess with the variable set. For each case the subprocess reports whether
# the result matched the exact product (within the dtype's tolerance, sent along) and whether the Hopper kernel ran
# (from the profiler's kernel names): large problems with TMA-loadable operands must take it, the others must not.

_SM90_SCRIPT = r"""
import json, sys, zlib
import torch
import pykernels as pk

def operand(shape, dtype, layout, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen).to(dtype).cuda()
    col = layout.startswith("col")  # columns contiguous: the transpose of a row-major matrix
    if col:
        x = x.transpose(-1, -2)
    if layout.endswith("_pad"):  # storage rows longer than the matrix's, a multiple of 8 elements
        big = x.new_zeros(*x.shape[:-1], (x.shape[-1] + 7) // 8 * 8 + 8)
        big[..., : x.shape[-1]] = x
        x = big[..., : x.shape[-1]]
    else:
        x = x.contiguous()
    return x.transpose(-1, -2) if col else x

results = {}
for case in json.loads(sys.argv[1]):
    dtype = getattr(torch, case["dtype"])
    seed = zlib.crc32(case["id"].encode())
    a = operand(case["a"], dtype, case["la"], seed)
    b = operand(case["b"], dtype, case["lb"], seed + 1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        out = getattr(pk, case["op"])(a, b)
        torch.cuda.synchronize()
    ran = any("gemm_sm90" in e.name for e in prof.events())
    record = pk._C.gemm_last_kernel()
    exact = torch.matmul(a.double(), b.double()).to(dtype)
    try:
        torch.testing.assert_close(out, exact, atol=case["atol"], rtol=case["rtol"])
        error = ""
    except AssertionError as e:
        error = str(e)
    results[case["id"]] = {"sm90": ran, "record": record, "error": error}
print(json.dumps(results))
"""


def _sm90_case(op, dtype, a, b, la="row", lb="row", sm90=True):
    name = f"{op}-{str(dtype).replace('torch.', '')}-{'x'.join(map(str, a))}@{'x'.join(map(str, b))}-{la}-{lb}"
    return dict(
        id=name,
        op=op,
        dtype=str(dtype).replace("torch.", ""),
        a=a,
        b=b,
        la=la,
        lb=lb,
        sm90=sm90,
        **accum_tol(dtype, a[-1]),
    )


def _sm90_cases():
    cases = []
    for dtype in (torch.float16, torch.bfloat16):
        for m, k, n in [(128, 64, 128), (1000, 1000, 1000), (4096, 4096, 4096)]:
            for la, lb in [("row", "row"), ("col", "row"), ("row", "col"), ("col", "col")]:
                cases.append(_sm90_case("mm", dtype, [m, k], [k, n], la, lb))
        # not tile multiples; unpadded, their rows are not 16-byte aligned, which TMA needs: mma.sync runs them
        cases.append(_sm90_case("mm", dtype, [257, 383], [383, 129], sm90=False))
        for la, lb in [("row_pad", "row_pad"), ("col_pad", "row_pad"), ("row_pad", "col_pad"), ("col_pad", "col_pad")]:
            cases.append(_sm90_case("mm", dtype, [257, 383], [383, 129], la, lb))
        cases.append(_sm90_case("bmm", dtype, [3, 257, 383], [3, 383, 129], "col_pad", "row_pad"))
        cases.append(_sm90_case("bmm", dtype, [4, 512, 320], [4, 320, 384], "col", "col"))
        cases.append(_sm90_case("matmul", dtype, [1000, 1000], [3, 1000, 1000]))  # A shared by every batch
        cases.append(_sm90_case("matmul", dtype, [3, 1000, 1000], [1000, 1000], "col", "col"))  # B shared
        cases.append(_sm90_case("matmul", dtype, [2, 1, 256, 128], [3, 128, 256], sm90=False))  # two batch dims
    return cases


SM90_CASES = _sm90_cases()


@pytest.fixture(scope="module")
def sm90_results():
    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Hopper GEMM needs a GPU of compute capability 9.x")
    # on a Hopper GPU a build without the Hopper kernel is a failure, not a skip: the kernel would go untested
    assert pk.build_info().get("sm90_gemm"), (
        "a compute capability 9.x GPU is visible but pykernels was built without an sm_90a target "
        f"(cuda_arches: {pk.build_info()['cuda_arches']!r}); rebuild with TORCH_CUDA_ARCH_LIST including 9.0"
    )
    env = dict(os.environ, PYKERNELS_GEMM_SM90="1")
    done = subprocess.run(
        [sys.executable, "-c", _SM90_SCRIPT, json.dumps(SM90_CASES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", SM90_CASES, ids=lambda c: c["id"])
def test_sm90_gemm(sm90_results, case):
    result = sm90_results[case["id"]]
    assert not result["error"], result["error"]
    assert result["sm90"] == case["sm90"], "the Hopper kernel " + ("did not run" if case["sm90"] else "ran")
    assert result["record"].startswith("sm90") == case["sm90"], f"the last launch was {result['record']!r}"


# ---- autograd -------------------------------------------------------------------------------------------------


def grads(fn, inputs, grad_out=None):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    g = torch.randn_like(out) if grad_out is None else grad_out
    return out, torch.autograd.grad(out, leaves, g)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_loss_backward_parity(reduction):
    a, b = make((40, 30)), make((40, 30))
    torch.manual_seed(1)
    out, g = grads(lambda x, y: pk.mse_loss(x, y, reduction=reduction), [a, b])
    torch.manual_seed(1)
    ref, rg = grads(lambda x, y: torch.nn.functional.mse_loss(x, y, reduction=reduction), [a, b])
    close(out, ref, **accum_tol(torch.float32, a.numel()))
    for x, y in zip(g, rg):
        close(x, y, **accum_tol(torch.float32, a.numel()))


# ---- devices, streams, graphs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,call",
    [
        ("add", lambda x, y: pk.add(x, y)),
        ("mul_", lambda x, y: pk.mul_(x, y)),
        ("mm", lambda x, y: pk.mm(x, y)),
        ("matmul", lambda x, y: pk.matmul(x, y)),
        ("mse_loss", lambda x, y: pk.mse_loss(x, y)),
    ],
)
def test_cross_device_inputs_raise(name, call):
    x, y = make((4, 4)), make((4, 4), device="cpu")
    with pytest.raises(RuntimeError, match=name.rstrip("_")):
        call(x, y)
    with pytest.raises(RuntimeError, match=name.rstrip("_")):
        call(y, x)


def test_out_on_another_device_raises():
    x = make((4,))
    with pytest.raises(RuntimeError, match="add"):
        pk.add(x, x, out=torch.empty(4))


def _busy(stream):
    """Keeps `stream` busy for a while, so work wrongly issued on another stream runs first."""
    if hasattr(torch.cuda, "_sleep"):
        with torch.cuda.stream(stream):
            torch.cuda._sleep(50_000_000)


def test_non_default_stream():
    src_a, src_b = make((300, 200)), make((200, 100))
    expected = torch.relu(torch.mm(src_a, src_b) + 1).sum(dim=0)
    s = torch.cuda.Stream()
    a, b = torch.zeros_like(src_a), torch.zeros_like(src_b)
    s.wait_stream(torch.cuda.current_stream())
    _busy(s)
    with torch.cuda.stream(s):
        a.copy_(src_a)  # queued on s behind the busy kernel: only s's later work sees the values
        b.copy_(src_b)
        out = pk.sum(pk.relu(pk.add(pk.mm(a, b), 1)), dim=0)
        loss = pk.mse_loss(a, src_a)
    s.synchronize()
    close(out, expected, **accum_tol(torch.float32, 200))
    close(loss, torch.zeros((), device="cuda"))


def test_cuda_graph_capture_and_replay():
    a, b, t = make((64, 48)), make((48, 32)), make((64, 32))

    def step():
        y = pk.relu(pk.add(pk.mm(a, b), t, alpha=0.5))
        return pk.sum(y, dim=1), pk.mean(y), pk.mse_loss(y, t), pk.mse_loss(y, t, reduction="sum"), pk.mul(y, 2.0)

    def eager():
        y = torch.relu(torch.add(torch.mm(a, b), t, alpha=0.5))
        return y.sum(dim=1), y.mean(), ((y - t) ** 2).mean(), ((y - t) ** 2).sum(), y * 2.0

    with torch.no_grad():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):  # warm up outside the capture
            step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs = step()
        for _ in range(2):  # new inputs, replay, compare with eager on the same inputs
            a.copy_(make(a.shape))
            b.copy_(make(b.shape))
            t.copy_(make(t.shape))
            graph.replay()
            torch.cuda.synchronize()
            for ours, ref in zip(outs, eager()):
                close(ours, ref, **accum_tol(torch.float32, 64 * 48))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device():
    dev = torch.device("cuda:1")
    assert torch.cuda.current_device() == 0
    a, b = make((70, 50), device=dev), make((50, 30), device=dev)
    checks = [
        (pk.mm(a, b), torch.mm(a, b), accum_tol(torch.float32, 50)),
        (pk.add(a, 1.5), a + 1.5, tol(torch.float32)),
        (pk.sum(a, dim=1), a.sum(dim=1), accum_tol(torch.float32, 50)),
        (pk.mse_loss(a, a * 2), torch.nn.functional.mse_loss(a, a * 2), accum_tol(torch.float32, a.numel())),
        (pk.relu(a.t()), torch.relu(a.t()), tol(torch.float32)),
    ]
    for ours, ref, t in checks:
        assert ours.device == dev
        close(ours, ref, **t)
    h = make((130, 70), torch.float16, device=dev)
    close(pk.mm(h, h.t()), torch.mm(h.float(), h.t().float()).half(), **accum_tol(torch.float16, 70))
