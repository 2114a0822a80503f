"""sum / mean: parity with torch for dim (None, int, negative, tuple, list), keepdim, dtype=,
empty and 0-dim inputs, large inputs, non-contiguous inputs, integer inputs, and backward."""

import math

import pytest
import torch

import pykernels as pk
from conftest import (
    ALL_DTYPES,
    GRAD_DTYPES,
    LAYOUTS,
    accum_tol,
    check_like_torch,
    dtype_id,
    grads_like_torch,
    make,
    make_layout,
)

REDUCE = ["sum", "mean"]
DIMS = [None, 0, 1, 2, -1, -3, (0, 2), (-1, 0), [1], (0, 1, 2), ()]


def reduced_count(shape, dim):
    """How many elements each output element reduces over."""
    if dim is None or dim == ():
        return math.prod(shape)
    dims = [dim] if isinstance(dim, int) else dim
    return math.prod(shape[d] for d in dims) if shape else 1


def reduce_tol(name, x, dim, dtype=None):
    return accum_tol(dtype or x.dtype, reduced_count(tuple(x.shape), dim), mean=name == "mean")


def check_reduce(name, x, dim=None, keepdim=None, dtype=None):
    """Call pk.<name> and torch.<name> with only the arguments given (so defaults are exercised)."""
    kwargs = {k: v for k, v in dict(dim=dim, keepdim=keepdim, dtype=dtype).items() if v is not None}
    if dim is None and keepdim is not None:
        kwargs["dim"] = None
    check_like_torch(
        getattr(pk, name), getattr(torch, name), (x,), kwargs, name=name, tolerance=reduce_tol(name, x, dim, dtype)
    )


def dim_id(dim):
    return "all" if dim is None else str(dim)


@pytest.mark.parametrize("keepdim", [None, False, True])
@pytest.mark.parametrize("dim", DIMS, ids=dim_id)
@pytest.mark.parametrize("name", REDUCE)
def test_dims(name, dim, keepdim, device):
    check_reduce(name, make((3, 4, 5), torch.float32, device), dim, keepdim)


@pytest.mark.parametrize("dim", [None, 0, -1, (0, 1)], ids=dim_id)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", REDUCE)
def test_dtypes(name, dtype, dim, device):
    """Integer and bool sums are int64 like torch; mean of integers raises like torch."""
    check_reduce(name, make((6, 7), dtype, device), dim)


@pytest.mark.parametrize(
    "in_dtype,dtype",
    [
        (torch.int64, torch.float32),
        (torch.int32, torch.int64),
        (torch.uint8, torch.int32),
        (torch.bool, torch.float64),
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
        (torch.float32, torch.float16),
        (torch.float32, torch.int32),
    ],
    ids=dtype_id,
)
@pytest.mark.parametrize("dim", [None, 1], ids=dim_id)
@pytest.mark.parametrize("name", REDUCE)
def test_dtype_argument(name, in_dtype, dtype, dim):
    """dtype= casts the input before reducing (torch.sum(float, dtype=int32) truncates each element
    first); mean with an integer dtype= raises like torch."""
    x = make((5, 9), in_dtype)
    if in_dtype.is_floating_point:
        x = x * 4
    check_reduce(name, x, dim, dtype=dtype)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize(
    "shape,dim",
    [
        ((0,), None),
        ((0,), 0),
        ((0, 3), None),
        ((0, 3), 0),
        ((0, 3), 1),
        ((2, 0, 3), 1),
        ((2, 0, 3), (0, 2)),
        ((3, 0), -1),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", REDUCE)
def test_empty(name, shape, dim, keepdim):
    """Sums over nothing are 0, means over nothing are NaN (like torch)."""
    check_reduce(name, make(shape), dim, keepdim)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, -1, (0,), 1], ids=dim_id)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("name", REDUCE)
def test_zero_dim(name, dtype, dim, keepdim):
    """A 0-dim tensor reduces over dim 0 / -1 to itself; dim 1 is out of range (IndexError)."""
    check_reduce(name, make((), dtype), dim, keepdim)


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)], ids=dim_id)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32], ids=dtype_id
)
@pytest.mark.parametrize("name", REDUCE)
def test_large(name, dtype, dim):
    """2^20 elements; low-precision inputs need a wider accumulator to match torch."""
    check_reduce(name, make((1024, 1024), dtype), dim)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2)], ids=dim_id)
@pytest.mark.parametrize("name", REDUCE)
def test_layouts(name, dim, layout):
    check_reduce(name, make_layout((4, 6, 5), torch.float32, layout=layout), dim, keepdim=True)
    check_reduce(name, make_layout((4, 6, 5), torch.int64, layout=layout), dim, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 127, 255, 256, 257, 511, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
@pytest.mark.parametrize("name", REDUCE)
def test_inner_row_lengths(name, dtype, n):
    """sum(dim=-1) around the row lengths where the CPU loop changes shape: 8-element vectors,
    64-float blocks (short rows), 256 elements (32-lane blocks) and the scalar tails."""
    check_reduce(name, make((37, n), dtype), -1)
    check_reduce(name, make((37, n), dtype), None)


def test_large_noncontiguous():
    x = make((1024, 2048))[:, ::2].t()
    for name in REDUCE:
        for dim in (None, 0, 1):
            check_reduce(name, x, dim)


# ---------------------------------------------------------------------------------------------- backward


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2), [1], ()], ids=dim_id)
@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", REDUCE)
def test_backward(name, dtype, dim, keepdim, device):
    fn, ref = getattr(pk, name), getattr(torch, name)
    kwargs = dict(dim=dim, keepdim=keepdim)
    grads_like_torch(fn, ref, (make((3, 4, 5), dtype, device),), kwargs=kwargs)
    grads_like_torch(fn, ref, (make((5, 4, 3), dtype, device),), kwargs=kwargs, view=lambda t: (t.permute(2, 1, 0),))


@pytest.mark.parametrize("name", REDUCE)
def test_backward_default_args_and_dtype(name):
    fn, ref = getattr(pk, name), getattr(torch, name)
    grads_like_torch(fn, ref, (make((4, 5)),))
    grads_like_torch(fn, ref, (make((4, 5)),), kwargs=dict(dtype=torch.float64))
    grads_like_torch(fn, ref, (make(()),), kwargs=dict(dim=0))
    grads_like_torch(fn, ref, (make((0, 3)),), kwargs=dict(dim=0))
