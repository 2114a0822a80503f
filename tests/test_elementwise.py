"""add / sub / mul / div (+ rounding modes) / neg / pow / exp / log / sqrt: parity with torch for
dtypes, type promotion, broadcasting, Python scalars on either side, alpha, in-place, out=,
non-contiguous inputs, large inputs, and backward."""
import warnings

import pytest
import torch

import pykernels as pk
from conftest import (
    EXACT,
    GRAD_DTYPES,
    ALL_DTYPES,
    LAYOUTS,
    assert_close,
    assert_raises_like,
    check_like_torch,
    dtype_id,
    grads_like_torch,
    make,
    make_layout,
    torch_outcome,
)

# (name, keyword arguments): every binary op and option combination.
BINARY = [
    ("add", {}),
    ("add", {"alpha": 2}),
    ("add", {"alpha": 0.5}),
    ("sub", {}),
    ("sub", {"alpha": -3}),
    ("mul", {}),
    ("div", {}),
    ("div", {"rounding_mode": "trunc"}),
    ("div", {"rounding_mode": "floor"}),
]
UNARY = ["neg", "exp", "log", "sqrt"]
SCALARS = [3, -2, 2.5, True]
PROMOTION_PAIRS = [
    (torch.int32, torch.int64), (torch.uint8, torch.int32), (torch.bool, torch.int32), (torch.uint8, torch.bool),
    (torch.float16, torch.bfloat16), (torch.float16, torch.float32), (torch.float32, torch.float64),
    (torch.int64, torch.float16), (torch.bfloat16, torch.int64), (torch.bool, torch.float32),
]
BROADCAST_SHAPES = [
    ((3, 1), (1, 4)), ((5,), (2, 5)), ((2, 5), (5,)), ((), (3, 4)), ((3, 4), ()), ((), ()),
    ((4, 1, 3), (2, 1)), ((1,), (3, 1)), ((2, 0, 3), (1, 3)), ((0,), (1,)), ((3, 1), (0,)),
]


def case_id(case):
    name, kwargs = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items())


def binary(case):
    """(pykernels function, torch function, keyword arguments, needs-nonzero-divisor) for a case."""
    name, kwargs = case
    return getattr(pk, name), getattr(torch, name), kwargs, name == "div"


def operands(case, a_shape, b_shape, a_dtype, b_dtype=None, device="cpu"):
    *_, nonzero = binary(case)
    return make(a_shape, a_dtype, device), make(b_shape, b_dtype or a_dtype, device, nonzero=nonzero)


def result_tol(kwargs, dtype):
    """Tolerance for a binary op's result of `dtype`. Rounding division gives integers, which must
    match torch's exactly (an off-by-one is a wrong answer, not rounding noise), except in
    float16/bfloat16: there torch rounds the quotient to the dtype before truncating (and floors
    with yet another formula), so one unit or one ulp either way is allowed. Other results: the
    per-dtype tolerances."""
    if not kwargs.get("rounding_mode"):
        return None
    if dtype in (torch.float16, torch.bfloat16):
        return dict(atol=1, rtol=torch.finfo(dtype).eps)
    return EXACT


def check_binary(case, a, b):
    fn, ref, kwargs, _ = binary(case)
    return check_like_torch(fn, ref, (a, b), kwargs, name=case[0], tolerance=result_tol(kwargs, torch.result_type(a, b)))


def scalar_first(case):
    """The torch reference for pk.<op>(number, tensor), which torch functions don't accept: the
    number as a tensor (broadcast to t's shape) of the dtype torch promotes (number, t) to, or of
    the default float dtype for true division of integers, which torch computes in floating point
    on the exact number. Bools stay bool (the lowest dtype), so `True - t` raises like torch."""
    name, _ = case
    ref, true_division = getattr(torch, name), name == "div" and case[1].get("rounding_mode") is None

    def call(s, t, **kwargs):
        dtype = torch.result_type(s, t)
        if true_division and not dtype.is_floating_point:
            dtype = torch.get_default_dtype()
        elif isinstance(s, bool):
            dtype = torch.bool
        return ref(torch.tensor(s, device=t.device).to(dtype).expand_as(t), t, **kwargs)

    return call


# ---------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_dtypes(case, dtype, device):
    check_binary(case, *operands(case, (5, 7), (5, 7), dtype, device=device))


@pytest.mark.parametrize("dtypes", PROMOTION_PAIRS, ids=lambda p: f"{dtype_id(p[0])}-{dtype_id(p[1])}")
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_type_promotion(case, dtypes):
    check_binary(case, *operands(case, (4, 3), (4, 3), *dtypes))
    check_binary(case, *operands(case, (4, 3), (4, 3), *reversed(dtypes)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_broadcasting(case, shapes, dtype, device):
    check_binary(case, *operands(case, *shapes, dtype, device=device))


@pytest.mark.parametrize("zero_dim_dtype", [torch.float64, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("dtype", [torch.float16, torch.int32, torch.uint8], ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_zero_dim_tensor_promotion(case, dtype, zero_dim_dtype):
    """A 0-dim tensor operand does not raise the result dtype within its category (float16 + 0-dim
    float64 -> float16), but does across categories (int32 + 0-dim float64 -> float64)."""
    a, b = operands(case, (3, 4), (), dtype, zero_dim_dtype)
    check_binary(case, a, b)
    check_binary(case, *operands(case, (), (3, 4), zero_dim_dtype, dtype))


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_scalar_other(case, dtype, scalar):
    fn, ref, kwargs, _ = binary(case)
    check_like_torch(fn, ref, (make((4, 5), dtype), scalar), kwargs, name=case[0],
                     tolerance=result_tol(kwargs, torch.result_type(make((), dtype), scalar)))


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_scalar_input(case, dtype, scalar):
    fn, _, kwargs, nonzero = binary(case)
    t = make((4, 5), dtype, nonzero=nonzero)
    check_like_torch(fn, scalar_first(case), (scalar, t), kwargs, name=case[0],
                     tolerance=result_tol(kwargs, torch.result_type(scalar, t)))


@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("layout_a", LAYOUTS)
@pytest.mark.parametrize("case", BINARY[::2], ids=case_id)
def test_binary_layouts(case, layout_a, layout_b):
    nonzero = binary(case)[3]
    a = make_layout((6, 5), torch.float32, layout=layout_a)
    b = make_layout((6, 5), torch.float32, layout=layout_b, nonzero=nonzero)
    check_binary(case, a, b)


@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_large(case):
    check_binary(case, *operands(case, (1024, 1024), (1024, 1), torch.float32))
    a, b = operands(case, (1024, 1024), (1024, 1024), torch.float32)
    check_binary(case, a.t(), b)


DIVISORS = {
    "tensor": lambda dtype, device: make((4096,), torch.float32, device, positive=True).mul(0.1).to(dtype),
    "python-float": lambda dtype, device: 0.3,
    "python-float-inexact": lambda dtype, device: 0.04117907956242561,
    "0-dim-float32": lambda dtype, device: torch.tensor(0.0411, device=device),
    "0-dim-float64": lambda dtype, device: torch.tensor(-0.37, dtype=torch.float64, device=device),
}


@pytest.mark.parametrize("divisor", DIVISORS)
@pytest.mark.parametrize("rounding_mode", ["trunc", "floor"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=dtype_id)
def test_div_rounding_across_magnitudes(dtype, rounding_mode, divisor, device):
    """Quotients from ~0 to ~10^4 (beyond the exactly representable integers of float16 and
    bfloat16), with tensor, Python-number and 0-dim divisors."""
    a, b = make((4096,), torch.float32, device).mul(300).to(dtype), DIVISORS[divisor](dtype, device)
    kwargs = dict(rounding_mode=rounding_mode)
    check_like_torch(pk.div, torch.div, (a, b), kwargs, name="div", tolerance=result_tol(kwargs, dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", UNARY)
def test_unary_dtypes(name, dtype, device):
    x = make((5, 7), dtype, device, positive=name in ("log", "sqrt"))
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), name=name)


@pytest.mark.parametrize("name", UNARY)
def test_unary_special_values(name):
    """Negative inputs (NaN from log/sqrt), zeros (-inf from log), infinities and NaN."""
    x = torch.cat([make((20,)), torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), -1.0, 1.0])])
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), name=name)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", UNARY)
def test_unary_layouts(name, layout):
    x = make_layout((6, 5), torch.float32, layout=layout, positive=True)
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), name=name)


@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 0, 2), (1024, 1024)], ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_shapes(name, shape):
    x = make(shape, positive=name in ("log", "sqrt"))
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), name=name)


@pytest.mark.parametrize("exponent", [2, 3, 0, 1, -1, 0.5, 2.5, -1.5, True], ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
def test_pow(dtype, exponent, device):
    check_like_torch(pk.pow, torch.pow, (make((5, 7), dtype, device), exponent), name="pow")
    check_like_torch(pk.pow, torch.pow, (make((6, 5), dtype, device, positive=True), exponent), name="pow")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(), (0, 3), (1024, 1024)], ids=str)
def test_pow_shapes_and_layouts(shape, layout):
    x = make_layout(shape, torch.float32, layout=layout)
    check_like_torch(pk.pow, torch.pow, (x, 3), name="pow")
    check_like_torch(pk.pow, torch.pow, (x.abs(), 0.5), name="pow")


# ---------------------------------------------------------------------------------------------- in-place


def check_inplace(name, self, args=(), kwargs=None):
    """pk.<name>_(self, *args) must modify self like torch.Tensor.<name>_ and return self, or raise
    the exception type torch raises."""
    kwargs = kwargs or {}
    expected = self.clone()
    _, exc = torch_outcome(getattr(torch.Tensor, name + "_"), (expected, *args), kwargs)
    fn = getattr(pk, name + "_")
    if exc is not None:
        assert_raises_like(exc, fn, (self.clone(), *args), kwargs, name)
        return
    result = fn(self, *args, **kwargs)
    assert result is self, f"{name}_ must return its (modified) first argument"
    assert_close(self, expected, **(result_tol(kwargs, self.dtype) or {}))


@pytest.mark.parametrize("other_shape", [(5, 7), (1, 7), (5, 1), ()], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_inplace(case, dtype, other_shape, device):
    a, b = operands(case, (5, 7), other_shape, dtype, device=device)
    check_inplace(case[0], a, (b,), case[1])


@pytest.mark.parametrize("dtypes", PROMOTION_PAIRS, ids=lambda p: f"{dtype_id(p[0])}-{dtype_id(p[1])}")
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_inplace_promotion(case, dtypes):
    """self must be able to hold the result dtype (int.add_(float) raises like torch)."""
    a, b = operands(case, (4, 3), (4, 3), *dtypes)
    check_inplace(case[0], a, (b,), case[1])
    a, b = operands(case, (4, 3), (4, 3), *reversed(dtypes))
    check_inplace(case[0], a, (b,), case[1])


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_inplace_scalar(case, dtype, scalar):
    check_inplace(case[0], make((4, 5), dtype), (scalar,), case[1])


@pytest.mark.parametrize("layout", ["transposed", "strided", "offset"])
@pytest.mark.parametrize("case", BINARY[::2], ids=case_id)
def test_binary_inplace_noncontiguous_self(case, layout):
    nonzero = binary(case)[3]
    a = make_layout((6, 5), torch.float32, layout=layout)
    check_inplace(case[0], a, (make_layout((6, 5), layout="transposed", nonzero=nonzero),), case[1])
    check_inplace(case[0], a, (make((5,), nonzero=nonzero),), case[1])


@pytest.mark.parametrize("self_shape,other_shape", [((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2,)), ((0,), (2, 0))], ids=str)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_inplace_broadcast_error(case, self_shape, other_shape):
    """In-place ops whose broadcast shape differs from self's shape raise like torch."""
    a, b = operands(case, self_shape, other_shape, torch.float32)
    check_inplace(case[0], a, (b,), case[1])


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
def test_neg_inplace(dtype, layout):
    check_inplace("neg", make_layout((6, 5), dtype, layout=layout))


# ---------------------------------------------------------------------------------------------- out=


def call_out(fn, args, kwargs, out):
    """Call fn(..., out=out) with torch's resize warning silenced; returns the result."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs, out=out)


def check_out(name, args, kwargs, out):
    """pk.<name>(*args, out=out) must write torch's result into out (resizing it like torch) and
    return out itself, or raise like torch."""
    expected_out = out.clone(memory_format=torch.preserve_format)
    _, exc = torch_outcome(lambda: call_out(getattr(torch, name), args, kwargs, expected_out), ())
    fn = getattr(pk, name)
    if exc is not None:
        assert_raises_like(exc, lambda: call_out(fn, args, kwargs, out), (), name=name)
        return
    result = call_out(fn, args, kwargs, out)
    assert result is out, f"{name}(out=...) must return out"
    assert_close(out, expected_out, **(result_tol(kwargs, out.dtype) or {}))


OUT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.bool]


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.int64, torch.bool], ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_out(case, in_dtype, out_dtype, device):
    """out of the result dtype, of a wider dtype, and of one that can't hold the result."""
    a, b = operands(case, (4, 5), (5,), in_dtype, device=device)
    check_out(case[0], (a, b), case[1], torch.empty((4, 5), dtype=out_dtype, device=device))


@pytest.mark.parametrize("out_shape", [(0,), (3,), (2, 10), (7, 7)], ids=str)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_out_resized(case, out_shape):
    a, b = operands(case, (4, 5), (4, 1), torch.float32)
    out = make(out_shape)
    check_out(case[0], (a, b), case[1], out)
    assert out.shape == (4, 5)


@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_out_noncontiguous(case):
    """A non-contiguous out of the right shape is written through its strides (same storage)."""
    a, b = operands(case, (4, 5), (4, 5), torch.float32)
    out = torch.empty(5, 4).t()
    ptr = out.data_ptr()
    check_out(case[0], (a, b), case[1], out)
    assert out.data_ptr() == ptr and out.stride() == (1, 4)


@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_out_scalar_other(case):
    check_out(case[0], (make((4, 5)), 3), case[1], torch.empty(4, 5))


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.int64, torch.uint8, torch.bool], ids=dtype_id)
def test_neg_out(in_dtype, out_dtype):
    check_out("neg", (make((4, 5), in_dtype),), {}, torch.empty((4, 5), dtype=out_dtype))
    check_out("neg", (make((4, 5), in_dtype),), {}, torch.empty((2,), dtype=out_dtype))


# ---------------------------------------------------------------------------------------------- backward

GRAD_SHAPES = [
    ((2, 3), (2, 3)), ((3, 1), (1, 4)), ((5,), (2, 5)), ((2, 5), (5,)), ((), (3,)), ((4, 1, 3), (2, 1)), ((0, 3), (1, 3)),
]


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shapes", GRAD_SHAPES, ids=str)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_backward(case, shapes, dtype, device):
    """Gradients, reduced over broadcast dims back to each input's shape."""
    fn, ref, kwargs, _ = binary(case)
    grads_like_torch(fn, ref, operands(case, *shapes, dtype, device=device), kwargs=kwargs)


@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_backward_scalar_and_noncontiguous(case):
    fn, ref, kwargs, nonzero = binary(case)
    a, b = make((5, 4)), make((5, 4), nonzero=nonzero)
    grads_like_torch(fn, ref, (a, b), kwargs=kwargs, view=lambda x, y: (x.t(), y.t()))
    grads_like_torch(fn, ref, (a, 2.5), kwargs=kwargs)
    grads_like_torch(fn, scalar_first(case), (-3, b), kwargs=kwargs)


@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_inplace_backward(case):
    """Gradients flow through an in-place op applied to a non-leaf (x.clone().add_(y))."""
    name, kwargs = case
    inplace, ref = getattr(pk, name + "_"), getattr(torch.Tensor, name + "_")
    grads_like_torch(lambda x, y: inplace(x.clone(), y, **kwargs), lambda x, y: ref(x.clone(), y, **kwargs),
                     operands(case, (3, 4), (4,), torch.float64))


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", UNARY)
def test_unary_backward(name, dtype, device):
    x = make((4, 5), dtype, device, positive=name in ("log", "sqrt"))
    grads_like_torch(getattr(pk, name), getattr(torch, name), (x,))
    grads_like_torch(getattr(pk, name), getattr(torch, name), (make((5, 4), dtype, device, positive=True),),
                     view=lambda t: (t.t(),))


def test_neg_inplace_backward():
    grads_like_torch(lambda x: pk.neg_(x.clone()), lambda x: torch.neg_(x.clone()), (make((3, 4), torch.float64),))


@pytest.mark.parametrize("exponent", [2, 3, 0, 1, -1, 0.5, 2.5, -1.5], ids=repr)
@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
def test_pow_backward(dtype, exponent, device):
    x = make((4, 5), dtype, device, positive=True)
    grads_like_torch(pk.pow, torch.pow, (x, exponent))


def _ulp_error(out, ref):
    """|out - ref| in units of the float32 spacing at ref (ref in float64)."""
    r = ref.float().abs()
    spacing = (torch.nextafter(r, torch.full_like(r, float("inf"))) - r).double()
    return (out.double() - ref).abs() / spacing


def test_float32_exp_log_accuracy_over_the_whole_range():
    """float32 exp and log are pykernels' own vectorizable approximations: within 1 ulp of the
    float64 result over the whole range, subnormals included, and exact at the special values."""
    x = torch.cat([torch.linspace(-104.0, 89.0, 400_001), torch.randn(100_000) * 20])
    ref = torch.exp(x.double())
    out = pk.exp(x)
    normal = (ref > torch.finfo(torch.float32).tiny) & (ref < torch.finfo(torch.float32).max)
    assert _ulp_error(out[normal], ref[normal]).max() <= 1.0
    # 0, subnormal or inf: within one subnormal step
    torch.testing.assert_close(out[~normal], ref[~normal].float(), rtol=0, atol=2 ** -149)

    y = torch.cat([torch.exp(torch.linspace(-103.0, 88.7, 400_001)), torch.rand(100_000) * 3,
                   torch.tensor([1e-45, 1e-40, 1.17e-38, 1.0, 3.4e38])])
    ref = torch.log(y.double())
    assert _ulp_error(pk.log(y), ref)[ref.abs() > 1e-30].max() <= 1.0
    assert pk.log(torch.tensor([1.0])).item() == 0.0

    special = torch.tensor([0.0, -0.0, -1.0, float("inf"), -float("inf"), float("nan")])
    assert_close(pk.exp(special), torch.exp(special))
    assert_close(pk.log(special), torch.log(special))
