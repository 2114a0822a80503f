"""Property tests (hypothesis): random shapes (0 and 1 included), memory layouts (transposed,
step-sliced, broadcast, offset views), broadcasting, dtypes and Python scalars, compared with torch
(same result, or the same exception type)."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import pykernels as pk
from conftest import ALL_DTYPES, LAYOUTS, accum_tol, check_like_torch, make_layout
from test_elementwise import BINARY, UNARY, binary, result_tol
from test_elementwise import scalar_first as scalar_first_reference

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from(ALL_DTYPES)
layouts = st.sampled_from(LAYOUTS)
python_scalars = st.one_of(st.integers(-20, 20), st.floats(-8, 8, allow_nan=False, width=32), st.booleans())


@PROPERTY
@given(
    case=st.sampled_from(BINARY),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=5),
    dtype_a=dtypes,
    dtype_b=dtypes,
    layout_a=layouts,
    layout_b=layouts,
    scalar=st.one_of(st.none(), python_scalars),
    scalar_first=st.booleans(),
    seed=seeds,
)
def test_binary_ops_match_torch(case, shapes, dtype_a, dtype_b, layout_a, layout_b, scalar, scalar_first, seed):
    torch.manual_seed(seed)
    fn, ref, kwargs, _ = binary(case)
    a = make_layout(shapes.input_shapes[0], dtype_a, layout=layout_a)
    b = make_layout(shapes.input_shapes[1], dtype_b, layout=layout_b)
    if scalar is None:
        args = (a, b)
    elif scalar_first:
        args, ref = (scalar, b), scalar_first_reference(case)
    else:
        args = (a, scalar)
    check_like_torch(fn, ref, args, kwargs, name=case[0], tolerance=result_tol(kwargs, torch.result_type(*args)))


@PROPERTY
@given(
    name=st.sampled_from(UNARY + ["pow", "relu"]),
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
    dtype=dtypes,
    layout=layouts,
    exponent=st.sampled_from([2, 3, 0, -1, 0.5, 1.5, -2.5]),
    seed=seeds,
)
def test_unary_ops_match_torch(name, shape, dtype, layout, exponent, seed):
    torch.manual_seed(seed)
    x = make_layout(shape, dtype, layout=layout)
    args = (x, exponent) if name == "pow" else (x,)
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name)


@st.composite
def reduce_calls(draw):
    shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=4))
    ndim = max(len(shape), 1)
    dims = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda d: d % ndim).map(tuple),
    ))
    keepdim = draw(st.booleans())
    dtype = draw(st.sampled_from([None, torch.float64, torch.float32, torch.int64]))
    return shape, dims, keepdim, dtype


@PROPERTY
@given(name=st.sampled_from(["sum", "mean"]), call=reduce_calls(), in_dtype=dtypes, layout=layouts, seed=seeds)
def test_reductions_match_torch(name, call, in_dtype, layout, seed):
    torch.manual_seed(seed)
    shape, dim, keepdim, dtype = call
    x = make_layout(shape, in_dtype, layout=layout)
    kwargs = dict(dim=dim, keepdim=keepdim, **({"dtype": dtype} if dtype else {}))
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), kwargs, name=name,
                     tolerance=accum_tol(dtype or in_dtype, max(1, x.numel()), mean=name == "mean"))


@st.composite
def matmul_shapes(draw):
    """Shapes for any torch.matmul rank combination, sometimes with mismatched inner dims."""
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=0, max_side=3))
    m, k, n = (draw(st.integers(0, 9)) for _ in range(3))
    k_b = draw(st.sampled_from([k] * 5 + [k + 1]))
    a = (k,) if draw(st.booleans()) else (*batch.input_shapes[0], m, k)
    b = (k_b,) if draw(st.booleans()) else (*batch.input_shapes[1], k_b, n)
    return a, b


@PROPERTY
@given(
    shapes=matmul_shapes(),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16, torch.int32]),
    layout_a=layouts,
    layout_b=layouts,
    seed=seeds,
)
def test_matmul_matches_torch(shapes, dtype, layout_a, layout_b, seed):
    torch.manual_seed(seed)
    a_shape, b_shape = shapes
    a, b = make_layout(a_shape, dtype, layout=layout_a), make_layout(b_shape, dtype, layout=layout_b)
    check_like_torch(pk.matmul, torch.matmul, (a, b), name="matmul", tolerance=accum_tol(dtype, a_shape[-1]))


@PROPERTY
@given(shapes=matmul_shapes(), batch=st.integers(0, 3), layout_a=layouts, layout_b=layouts, seed=seeds)
def test_mm_and_bmm_match_torch(shapes, batch, layout_a, layout_b, seed):
    """mm on the operands' last two dims and bmm on a batch of those (rank errors included)."""
    torch.manual_seed(seed)
    a_shape, b_shape = (s[-2:] for s in shapes)
    tolerance = accum_tol(torch.float32, a_shape[-1])
    for name, a, b in [("mm", a_shape, b_shape), ("bmm", (batch, *a_shape), (batch, *b_shape))]:
        args = (make_layout(a, layout=layout_a), make_layout(b, layout=layout_b))
        check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name, tolerance=tolerance)
