"""mm / bmm / matmul: parity with torch for sizes, layouts, dtypes, every matmul rank combination,
backward, and bad input."""

import math

import pytest
import torch

import pykernels as pk
from conftest import (
    GRAD_DTYPES,
    LAYOUTS,
    accum_tol,
    assert_close,
    check_like_torch,
    dtype_id,
    grads_like_torch,
    make,
    make_layout,
)

GEMM_DTYPES = [torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16, torch.int32, torch.uint8]
MAIN_DTYPES = [torch.float32, torch.float64, torch.int64]

# (m, k, n): empty dims, ones, primes, and sizes just past powers of two.
MM_SIZES = [
    (0, 3, 4),
    (3, 0, 4),
    (3, 4, 0),
    (1, 1, 1),
    (1, 7, 1),
    (7, 1, 13),
    (7, 13, 31),
    (31, 97, 13),
    (13, 31, 97),
    (97, 7, 257),
    (65, 129, 33),
]
# Few, larger shapes: one dim >= 1024 and inner dims 257..1100.
MM_LARGE = [(1024, 67, 33), (33, 1100, 29), (257, 300, 263)]

# (a shape, b shape) for every torch.matmul rank combination.
MATMUL_SHAPES = [
    ((7,), (7,)),  # 1-D @ 1-D: dot
    ((7,), (7, 5)),  # 1-D @ 2-D
    ((5, 7), (7,)),  # 2-D @ 1-D
    ((5, 7), (7, 4)),  # 2-D @ 2-D
    ((3, 5, 7), (7,)),  # N-D @ 1-D
    ((2, 3, 5, 7), (7,)),
    ((7,), (3, 7, 4)),  # 1-D @ N-D
    ((7,), (2, 3, 7, 4)),
    ((3, 5, 7), (7, 4)),  # N-D @ 2-D
    ((5, 7), (3, 7, 4)),  # 2-D @ N-D
    ((3, 5, 7), (3, 7, 4)),  # batched
    ((2, 1, 5, 7), (3, 7, 4)),  # broadcast batch dims
    ((3, 1, 5, 7), (1, 2, 7, 4)),
    ((1, 5, 7), (4, 7, 2)),
    ((2, 3, 1, 7), (3, 7, 1)),
    ((0,), (0,)),  # empty
    ((0, 7), (7,)),
    ((2, 0, 3), (3, 4)),
    ((4,), (2, 4, 0)),
    ((2, 5, 0), (0, 3)),
    ((0, 5, 7), (7, 4)),
]


def shape_id(shapes):
    return "@".join("x".join(map(str, s)) or "scalar" for s in shapes)


def gemm_check(fn, ref, a, b, k):
    return check_like_torch(fn, ref, (a, b), tolerance=accum_tol(a.dtype, k))


# ---------------------------------------------------------------------------------------------- mm


@pytest.mark.parametrize("dtype", GEMM_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("m,k,n", MM_SIZES)
def test_mm_sizes(m, k, n, dtype, device):
    a, b = make((m, k), dtype, device), make((k, n), dtype, device)
    gemm_check(pk.mm, torch.mm, a, b, k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("m,k,n", MM_LARGE)
def test_mm_large(m, k, n, dtype):
    gemm_check(pk.mm, torch.mm, make((m, k), dtype), make((k, n), dtype), k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("layout_a", LAYOUTS)
def test_mm_layouts(layout_a, layout_b, dtype, device):
    a = make_layout((13, 31), dtype, device, layout_a)
    b = make_layout((31, 7), dtype, device, layout_b)
    gemm_check(pk.mm, torch.mm, a, b, 31)


def test_mm_raw_op_matches_public():
    a, b = make((5, 7)), make((7, 3))
    assert_close(torch.ops.pykernels.mm(a, b), torch.mm(a, b))
    assert_close(pk.mm(a, b), torch.mm(a, b))


def test_mm_does_not_modify_inputs():
    a, b = make((5, 7)), make((7, 3))
    a0, b0 = a.clone(), b.clone()
    pk.mm(a, b)
    assert_close(a, a0, atol=0, rtol=0)
    assert_close(b, b0, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------- bmm

BMM_SIZES = [(0, 3, 4, 5), (2, 0, 4, 3), (2, 3, 0, 4), (4, 31, 17, 0), (1, 1, 1, 1), (3, 7, 13, 5), (5, 97, 33, 65)]


@pytest.mark.parametrize("dtype", GEMM_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("bs,m,k,n", BMM_SIZES)
def test_bmm_sizes(bs, m, k, n, dtype, device):
    gemm_check(pk.bmm, torch.bmm, make((bs, m, k), dtype, device), make((bs, k, n), dtype, device), k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("layout_a", LAYOUTS)
def test_bmm_layouts(layout_a, layout_b, dtype, device):
    a = make_layout((3, 13, 31), dtype, device, layout_a)
    b = make_layout((3, 31, 7), dtype, device, layout_b)
    gemm_check(pk.bmm, torch.bmm, a, b, 31)


def test_bmm_large():
    gemm_check(pk.bmm, torch.bmm, make((2, 257, 129)), make((2, 129, 1030)), 129)


# ---------------------------------------------------------------------------------------------- matmul


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16], ids=dtype_id
)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=shape_id)
def test_matmul_ranks(shapes, dtype, device):
    a_shape, b_shape = shapes
    gemm_check(pk.matmul, torch.matmul, make(a_shape, dtype, device), make(b_shape, dtype, device), a_shape[-1])


@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded", "offset"])
@pytest.mark.parametrize(
    "shapes", [((7,), (7, 5)), ((5, 7), (7,)), ((2, 1, 5, 7), (3, 7, 4)), ((3, 5, 7), (7, 4))], ids=shape_id
)
def test_matmul_layouts(shapes, layout):
    a_shape, b_shape = shapes
    a, b = make_layout(a_shape, layout=layout), make_layout(b_shape, layout=layout)
    gemm_check(pk.matmul, torch.matmul, a, b, a_shape[-1])


def test_matmul_large_batched_broadcast():
    gemm_check(pk.matmul, torch.matmul, make((2, 1, 129, 257)), make((3, 257, 65)), 257)


# ---------------------------------------------------------------------------------------------- backward


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("transpose", [False, True], ids=["contiguous", "transposed"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 13, 5), (0, 3, 4), (3, 0, 4), (31, 97, 13)])
def test_mm_backward(m, k, n, transpose, dtype, device):
    if transpose:
        inputs, view = (make((k, m), dtype, device), make((n, k), dtype, device)), lambda a, b: (a.t(), b.t())
    else:
        inputs, view = (make((m, k), dtype, device), make((k, n), dtype, device)), None
    grads_like_torch(pk.mm, torch.mm, inputs, view=view, tolerance=accum_tol(dtype, max(m, k, n)))


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("bs,m,k,n", [(3, 7, 13, 5), (1, 1, 1, 1), (2, 0, 3, 4)])
def test_bmm_backward(bs, m, k, n, dtype, device):
    inputs = (make((bs, m, k), dtype, device), make((bs, k, n), dtype, device))
    grads_like_torch(pk.bmm, torch.bmm, inputs, tolerance=accum_tol(dtype, max(m, k, n)))


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shapes", [s for s in MATMUL_SHAPES if 0 not in s[0] + s[1]], ids=shape_id)
def test_matmul_backward(shapes, dtype, device):
    a_shape, b_shape = shapes
    inputs = (make(a_shape, dtype, device), make(b_shape, dtype, device))
    grads_like_torch(
        pk.matmul, torch.matmul, inputs, tolerance=accum_tol(dtype, math.prod(a_shape) + math.prod(b_shape))
    )


def test_matmul_backward_transposed_operands():
    inputs = (make((2, 7, 5)), make((4, 7)))
    grads_like_torch(pk.matmul, torch.matmul, inputs, view=lambda a, b: (a.mT, b.t()))


# ---------------------------------------------------------------------------------------------- errors

GEMM_ERRORS = [
    ("mm", (3, 4), (5, 6)),  # inner dims differ
    ("mm", (4,), (4, 3)),  # 1-D self
    ("mm", (3, 4), (4,)),  # 1-D mat2
    ("mm", (2, 3, 4), (4, 5)),  # 3-D self
    ("bmm", (3, 4), (4, 5)),  # 2-D
    ("bmm", (2, 3, 4), (3, 4, 5)),  # batch sizes differ
    ("bmm", (2, 3, 4), (2, 5, 6)),  # inner dims differ
    ("bmm", (2, 3, 4), (2, 4)),
    ("matmul", (), (3,)),  # 0-D
    ("matmul", (3,), ()),
    ("matmul", (3,), (4,)),  # dot of different lengths
    ("matmul", (2, 3), (4,)),
    ("matmul", (4,), (3, 2)),
    ("matmul", (2, 3, 4), (3, 5, 6)),  # inner dims differ
    ("matmul", (2, 3, 4), (3, 4, 5)),  # batch dims don't broadcast
]


@pytest.mark.parametrize("name,a_shape,b_shape", GEMM_ERRORS)
def test_gemm_shape_errors(name, a_shape, b_shape):
    args = (make(a_shape), make(b_shape))
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name)
    check_like_torch(getattr(torch.ops.pykernels, name), getattr(torch, name), args, name=name)


VALID_GEMM_SHAPES = [("mm", (3, 4), (4, 5)), ("bmm", (2, 3, 4), (2, 4, 5)), ("matmul", (3, 4), (4,))]


@pytest.mark.parametrize("name,a_shape,b_shape", VALID_GEMM_SHAPES)
@pytest.mark.parametrize(
    "dtypes", [(torch.float32, torch.float64), (torch.int64, torch.float32)], ids=["f32-f64", "i64-f32"]
)
def test_gemm_dtype_mismatch(name, a_shape, b_shape, dtypes):
    args = (make(a_shape, dtypes[0]), make(b_shape, dtypes[1]))
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name)


@pytest.mark.parametrize("name,a_shape,b_shape", VALID_GEMM_SHAPES)
def test_gemm_bool_like_torch(name, a_shape, b_shape):
    args = (make(a_shape, torch.bool), make(b_shape, torch.bool))
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name)
