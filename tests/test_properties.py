"""Property tests (hypothesis): random shapes (0 and 1 included, up to ~70 per side), memory
layouts (transposed, step-sliced, broadcast, offset views), broadcasting, dtypes, Python scalars
and special values (inf, NaN, +-0, extreme magnitudes), compared with torch (same result, or the
same exception type). The number of examples comes from the Hypothesis profile (conftest.py)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import pykernels as pk
from conftest import ALL_DTYPES, LAYOUTS, accum_tol, check_like_torch, make_layout
from test_elementwise import BINARY, UNARY, check_binary, unary_tol
from test_elementwise import scalar_first as scalar_first_reference

PROPERTY = settings()  # the loaded profile's settings

MAX_SIDE = 70
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from(ALL_DTYPES)
layouts = st.sampled_from(LAYOUTS)
python_scalars = st.one_of(st.integers(-20, 20), st.floats(-8, 8, allow_nan=False, width=32), st.booleans())
# Shapes of up to three dims and ~70 per side, at most ~40000 elements (a (70, 70, 70) operand
# would make an example take seconds without reaching anything new).
shape_lists = st.lists(st.integers(0, MAX_SIDE), min_size=0, max_size=3).filter(
    lambda s: torch.Size(s).numel() <= 40000
)


def special(dtype, extremes=True):
    """Special values for dtype: infinities, NaN, zeros of both signs and (with extremes) the
    largest and smallest normal magnitudes; for integers 0, -1 and the extremes; for bool both."""
    if dtype == torch.bool:
        return [True, False]
    if not dtype.is_floating_point:
        ii = torch.iinfo(dtype)
        return [0, ii.max] + ([ii.min, -1] if ii.min < 0 else [])
    values = [float("inf"), -float("inf"), float("nan"), 0.0, -0.0]
    if extremes:
        fi = torch.finfo(dtype)
        values += [fi.max, -fi.max, fi.tiny, -fi.tiny]
    return values


def with_specials(t, count, extremes=True):
    """t with `count` elements (at positions from torch's generator) set to special values, written
    through the view, so the layout is kept; a broadcast (stride-0) view is left as it is."""
    if count == 0 or t.numel() == 0 or any(st == 0 and sz > 1 for st, sz in zip(t.stride(), t.shape)):
        return t
    values = special(t.dtype, extremes)
    idx = tuple(torch.randint(0, max(s, 1), (count,)) for s in t.shape)
    picks = torch.tensor(values, dtype=torch.float64)[torch.randint(0, len(values), (count,))]
    with torch.no_grad():
        t[idx] = picks.to(t.dtype) if t.dim() else picks[0].to(t.dtype)
    return t


specials = st.sampled_from([0, 0, 0, 1, 3, 8])


@PROPERTY
@given(
    case=st.sampled_from(BINARY),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=MAX_SIDE).filter(
        lambda s: torch.Size(s.result_shape).numel() <= 40000
    ),
    dtype_a=dtypes,
    dtype_b=dtypes,
    layout_a=layouts,
    layout_b=layouts,
    scalar=st.one_of(st.none(), python_scalars),
    scalar_first=st.booleans(),
    n_special=specials,
    seed=seeds,
)
def test_binary_ops_match_torch(
    case, shapes, dtype_a, dtype_b, layout_a, layout_b, scalar, scalar_first, n_special, seed
):
    torch.manual_seed(seed)
    # No extremes beside an alpha: alpha * max overflows before the sum (test_alpha_product_overflow).
    extremes = case[1].get("alpha", 1) == 1
    a = with_specials(make_layout(shapes.input_shapes[0], dtype_a, layout=layout_a), n_special, extremes)
    b = with_specials(make_layout(shapes.input_shapes[1], dtype_b, layout=layout_b), n_special, extremes)
    if scalar is None:
        check_binary(case, a, b)
    elif scalar_first:
        check_binary(case, scalar, b, ref=scalar_first_reference(case))
    else:
        check_binary(case, a, scalar)


@PROPERTY
@given(
    name=st.sampled_from(UNARY + ["pow", "relu"]),
    shape=shape_lists,
    dtype=dtypes,
    layout=layouts,
    exponent=st.sampled_from([2, 3, 0, -1, 0.5, -0.5, -2, 1.5, -2.5]),
    n_special=specials,
    seed=seeds,
)
def test_unary_ops_match_torch(name, shape, dtype, layout, exponent, n_special, seed):
    torch.manual_seed(seed)
    x = with_specials(make_layout(shape, dtype, layout=layout), n_special)
    args = (x, exponent) if name == "pow" else (x,)
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name, tolerance=unary_tol(name, *args))


@st.composite
def reduce_calls(draw):
    shape = draw(shape_lists)
    ndim = max(len(shape), 1)
    dims = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda d: d % ndim).map(tuple),
        )
    )
    keepdim = draw(st.booleans())
    dtype = draw(st.sampled_from([None, torch.float64, torch.float32, torch.int64]))
    return shape, dims, keepdim, dtype


@PROPERTY
@given(
    name=st.sampled_from(["sum", "mean"]),
    call=reduce_calls(),
    in_dtype=dtypes,
    layout=layouts,
    n_special=specials,
    seed=seeds,
)
def test_reductions_match_torch(name, call, in_dtype, layout, n_special, seed):
    """Special values without the extremes: a sum of the largest magnitudes overflows or not
    depending on the order of the additions, which is the implementation's to choose."""
    torch.manual_seed(seed)
    shape, dim, keepdim, dtype = call
    x = with_specials(make_layout(shape, in_dtype, layout=layout), n_special, extremes=False)
    kwargs = dict(dim=dim, keepdim=keepdim, **({"dtype": dtype} if dtype else {}))
    check_like_torch(
        getattr(pk, name),
        getattr(torch, name),
        (x,),
        kwargs,
        name=name,
        tolerance=accum_tol(dtype or in_dtype, max(1, x.numel()), mean=name == "mean"),
    )


@st.composite
def matmul_shapes(draw):
    """Shapes for any torch.matmul rank combination, sometimes with mismatched inner dims; m, k, n
    up to ~70, beyond one register tile of the CPU kernels."""
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=0, max_side=3))
    m, k, n = (draw(st.integers(0, MAX_SIDE)) for _ in range(3))
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
    n_special=specials,
    seed=seeds,
)
def test_matmul_matches_torch(shapes, dtype, layout_a, layout_b, n_special, seed):
    torch.manual_seed(seed)
    a_shape, b_shape = shapes
    a, b = make_layout(a_shape, dtype, layout=layout_a), make_layout(b_shape, dtype, layout=layout_b)
    if dtype.is_floating_point:  # inf, NaN and zeros: where they land does not depend on the order of the sums
        a, b = with_specials(a, n_special, extremes=False), with_specials(b, n_special, extremes=False)
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
