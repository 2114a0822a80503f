"""add / sub / mul / div (+ rounding modes) / neg / pow / exp / log / sqrt: parity with torch for
dtypes, type promotion, broadcasting, Python scalars on either side, alpha, in-place, out=,
non-contiguous inputs, large inputs, and backward."""

import warnings

import pytest
import torch

import pykernels as pk
from conftest import (
    ALL_DTYPES,
    GRAD_DTYPES,
    LAYOUTS,
    assert_close,
    assert_div_rounding_close,
    assert_raises_like,
    check_like_torch,
    clone_args,
    dtype_id,
    grads_like_torch,
    half_alpha_floor,
    make,
    make_layout,
    op_tol,
    seed_key,
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
    (torch.int32, torch.int64),
    (torch.uint8, torch.int32),
    (torch.bool, torch.int32),
    (torch.uint8, torch.bool),
    (torch.float16, torch.bfloat16),
    (torch.float16, torch.float32),
    (torch.float32, torch.float64),
    (torch.int64, torch.float16),
    (torch.bfloat16, torch.int64),
    (torch.bool, torch.float32),
]
BROADCAST_SHAPES = [
    ((3, 1), (1, 4)),
    ((5,), (2, 5)),
    ((2, 5), (5,)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((), ()),
    ((4, 1, 3), (2, 1)),
    ((1,), (3, 1)),
    ((2, 0, 3), (1, 3)),
    ((0,), (1,)),
    ((3, 1), (0,)),
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


def assert_binary_close(case, actual, expected, a, b):
    """A binary op's result against torch's for operands a, b (tensors or Python numbers).
    Rounding division gives integers, which must match torch's exactly (an off-by-one is a wrong
    answer, not rounding noise), except next to an integer quotient in float16/bfloat16. Other
    results: the op's tolerance, with add/sub's floor for torch's rounding of alpha*other."""
    name, kwargs = case
    if kwargs.get("rounding_mode"):
        assert_div_rounding_close(actual, expected, a, b)
        return
    floor = half_alpha_floor(torch.result_type(a, b), kwargs.get("alpha", 1), b) if name in ("add", "sub") else 0.0
    assert_close(actual, expected, **op_tol(name, expected.dtype, floor=floor))


def check_binary(case, a, b, ref=None):
    """pk.<op>(a, b, **kwargs) must match ref (torch.<op> by default) or raise like it."""
    fn, torch_fn, kwargs, _ = binary(case)
    expected, exc = torch_outcome(ref or torch_fn, clone_args((a, b)), kwargs)
    if exc is not None:
        assert_raises_like(exc, fn, clone_args((a, b)), kwargs, case[0])
        return None
    actual = fn(*clone_args((a, b)), **kwargs)
    assert_binary_close(case, actual, expected, a, b)
    return actual


def unary_tol(name, x, *args):
    """The op's tolerance for the dtype torch gives unary(x, *args)."""
    dtype = torch.result_type(x, *args) if args else x.dtype
    if not dtype.is_floating_point and name in ("exp", "log", "sqrt"):
        dtype = torch.get_default_dtype()
    return op_tol(name, dtype)


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
    check_binary(case, make((4, 5), dtype), scalar)


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_scalar_input(case, dtype, scalar):
    t = make((4, 5), dtype, nonzero=binary(case)[3])
    check_binary(case, scalar, t, ref=scalar_first(case))


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
    check_binary(("div", {"rounding_mode": rounding_mode}), a, b)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", UNARY)
def test_unary_dtypes(name, dtype, device):
    x = make((5, 7), dtype, device, positive=name in ("log", "sqrt"))
    check_like_torch(getattr(pk, name), getattr(torch, name), (x,), name=name, tolerance=unary_tol(name, x))


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
    for x in (make((5, 7), dtype, device), make((6, 5), dtype, device, positive=True)):
        check_like_torch(pk.pow, torch.pow, (x, exponent), name="pow", tolerance=unary_tol("pow", x, exponent))


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
    original, expected = self.clone(), self.clone()
    _, exc = torch_outcome(getattr(torch.Tensor, name + "_"), (expected, *args), kwargs)
    fn = getattr(pk, name + "_")
    if exc is not None:
        assert_raises_like(exc, fn, (self.clone(), *args), kwargs, name)
        return
    result = fn(self, *args, **kwargs)
    assert result is self, f"{name}_ must return its (modified) first argument"
    if args:
        assert_binary_close((name, kwargs), self, expected, original, args[0])
    else:
        assert_close(self, expected, **op_tol(name, self.dtype))


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


@pytest.mark.parametrize(
    "self_shape,other_shape", [((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2,)), ((0,), (2, 0))], ids=str
)
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
    if len(args) == 2:
        assert_binary_close((name, kwargs), out, expected_out, *args)
    else:
        assert_close(out, expected_out, **op_tol(name, out.dtype))


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
    ((2, 3), (2, 3)),
    ((3, 1), (1, 4)),
    ((5,), (2, 5)),
    ((2, 5), (5,)),
    ((), (3,)),
    ((4, 1, 3), (2, 1)),
    ((0, 3), (1, 3)),
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
    grads_like_torch(
        lambda x, y: inplace(x.clone(), y, **kwargs),
        lambda x, y: ref(x.clone(), y, **kwargs),
        operands(case, (3, 4), (4,), torch.float64),
    )


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", UNARY)
def test_unary_backward(name, dtype, device):
    x = make((4, 5), dtype, device, positive=name in ("log", "sqrt"))
    grads_like_torch(getattr(pk, name), getattr(torch, name), (x,))
    grads_like_torch(
        getattr(pk, name), getattr(torch, name), (make((5, 4), dtype, device, positive=True),), view=lambda t: (t.t(),)
    )


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
    torch.testing.assert_close(out[~normal], ref[~normal].float(), rtol=0, atol=2**-149)

    y = torch.cat(
        [
            torch.exp(torch.linspace(-103.0, 88.7, 400_001)),
            torch.rand(100_000) * 3,
            torch.tensor([1e-45, 1e-40, 1.17e-38, 1.0, 3.4e38]),
        ]
    )
    ref = torch.log(y.double())
    assert _ulp_error(pk.log(y), ref)[ref.abs() > 1e-30].max() <= 1.0
    assert pk.log(torch.tensor([1.0])).item() == 0.0

    special = torch.tensor([0.0, -0.0, -1.0, float("inf"), -float("inf"), float("nan")])
    assert_close(pk.exp(special), torch.exp(special))
    assert_close(pk.log(special), torch.log(special))


# ---------------------------------------------------------------------------------------------- half rounding


@pytest.mark.parametrize("alpha", [0.1, 1 / 3, -3.3], ids=repr)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
@pytest.mark.parametrize("name", ["add", "sub"])
def test_half_alpha_rounded_to_dtype(name, dtype, alpha):
    """alpha is rounded to the tensor dtype first, as torch's CPU kernel does (0.1 is 0.10009765625
    in float16): on a length torch runs entirely through its vectorized loop (whole multiples of
    32 elements, which round only the sum), pykernels' result equals torch's bit for bit."""
    a, b = make((4096,), dtype), make((4096,), dtype)
    assert_close(getattr(pk, name)(a, b, alpha=alpha), getattr(torch, name)(a, b, alpha=alpha), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
def test_half_alpha_product_rounding_differs_from_torchs_scalar_loop(dtype):
    """A documented difference. torch's CPU add/sub rounds alpha*other to the dtype in its scalar
    loop (tensors under 32 elements, and the last elements of longer ones) but not in its
    vectorized loop; pykernels never does, so it matches torch's vectorized result everywhere.
    5 - 3 * 1.578125: alpha*other = 4.734375 rounds to 4.75 in bfloat16 (0.25), unrounded the
    difference is 0.265625."""
    x, y = torch.full((40,), 5, dtype=torch.int64), torch.full((40,), 1.578125, dtype=dtype)
    ours, theirs = pk.sub(x, y, alpha=3), torch.sub(x, y, alpha=3)
    assert (ours == 0.265625).all() and (theirs[:32] == 0.265625).all()  # torch's vectorized loop
    # torch's scalar loop (the last 8): float16 holds 4.734375 exactly, bfloat16 rounds it to 4.75
    assert (theirs[32:] == (0.265625 if dtype == torch.float16 else 0.25)).all()
    assert (pk.sub(x[:1], y[:1], alpha=3) == 0.265625).all()
    # Within half_alpha_floor of torch on any length: the floor covers exactly this rounding.
    a, b = make((37,), torch.int64), make((37,), dtype)
    assert_close(
        pk.sub(a, b, alpha=-3), torch.sub(a, b, alpha=-3), **op_tol("sub", dtype, floor=half_alpha_floor(dtype, -3, b))
    )


@pytest.mark.parametrize("divisor", ["python-float", "0-dim-float64", "0-dim-float32", "shape-1-float32"])
@pytest.mark.parametrize("rounding_mode", [None, "trunc", "floor"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
def test_half_single_element_other_read_at_float_precision(dtype, rounding_mode, divisor):
    """torch's CPU mul and divisions read a single-element float32/float64 `other` in float32, not
    rounded to the tensor's dtype (x / 0.3 divides by 0.3f, not by 0.30004883 in float16): results
    equal torch's bit for bit, with quotients up to ~10^4."""
    b = {
        "python-float": 0.3,
        "0-dim-float64": torch.tensor(-0.37, dtype=torch.float64),
        "0-dim-float32": torch.tensor(0.0411),
        "shape-1-float32": torch.tensor([3.3]),
    }[divisor]
    a = make((4096,), torch.float32).mul(300).to(dtype)
    exact = {"atol": 0, "rtol": 0}
    assert_close(pk.div(a, b, rounding_mode=rounding_mode), torch.div(a, b, rounding_mode=rounding_mode), **exact)
    if rounding_mode is None:
        assert_close(pk.mul(a, b), torch.mul(a, b), **exact)
        assert_close(pk.mul_(a.clone(), b), a.clone().mul_(b), **exact)


# ---------------------------------------------------------------------------------------------- corners


def special_values(dtype):
    """Values at the edges of dtype: for floating types zeros of both signs, infinities, NaN, the
    largest and smallest normal magnitudes and a few ordinary values; for integers 0, +-1, the
    extremes and small values; for bool both."""
    if dtype == torch.bool:
        return torch.tensor([False, True])
    if dtype.is_floating_point:
        fi = torch.finfo(dtype)
        vals = [
            0.0,
            -0.0,
            float("inf"),
            -float("inf"),
            float("nan"),
            1.0,
            -1.0,
            2.5,
            -3.0,
            0.75,
            fi.max,
            -fi.max,
            fi.tiny,
            -fi.tiny,
            7.0,
        ]
        return torch.tensor(vals, dtype=torch.float64).to(dtype)
    ii = torch.iinfo(dtype)
    return torch.tensor(
        sorted(v for v in {0, 1, -1, 7, -7, 3, ii.min, ii.max, ii.min + 1} if ii.min <= v <= ii.max), dtype=dtype
    )


def assert_same_zero_signs(actual, expected):
    """assert_close takes -0.0 for 0.0; where torch gives a zero, its sign must match too."""
    if actual.dtype.is_floating_point and actual.shape == expected.shape:
        zero = expected == 0
        assert torch.equal(actual[zero].signbit(), expected[zero].signbit()), "signs of zero differ from torch's"


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_special_values(case, dtype):
    """Every pair of special values (inf, NaN, +-0, extremes, division by zero) against torch:
    integer division by zero raises as in torch, overflow wraps as in torch."""
    v = special_values(dtype)
    mode = case[1].get("rounding_mode")
    if mode == "floor" and dtype.is_floating_point and torch.__version__ < "2.5":
        pytest.skip("torch 2.4's floor division gives nan where the quotient overflows (newer torch: +-inf)")
    if mode is not None and dtype in (torch.int32, torch.int64):
        # torch's CPU kernel traps (SIGFPE) on the minimum divided by -1 (in trunc mode, and in
        # floor mode too on torch 2.4), so that pair can't be compared; pykernels wraps.
        low = torch.iinfo(dtype).min
        assert pk.div(torch.tensor([low], dtype=dtype), -1, rounding_mode=mode).item() == low
        v = v[v != low]
    w = v
    alpha = case[1].get("alpha", 1)
    if alpha != 1 and dtype.is_floating_point:
        # Where alpha * other overflows, torch's fused multiply-add still gives a finite or
        # infinite sum and pykernels' product gives inf first (test_alpha_product_overflow).
        w = v[~((v.double() * alpha).abs() > torch.finfo(dtype).max) | ~v.isfinite()]
    a, b = v[:, None].expand(len(v), len(w)), w[None, :].expand(len(v), len(w))
    result = check_binary(case, a.contiguous(), b.contiguous())
    if result is not None:
        assert_same_zero_signs(result, binary(case)[1](a, b, **case[1]))
    for i in range(len(w)):  # one divisor at a time, so that one zero divisor doesn't mask the rest
        check_binary(case, v, w[i : i + 1].expand(len(v)).contiguous())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_alpha_product_overflow(dtype):
    """A documented difference: torch's CPU add computes self + alpha * other as one fused
    multiply-add, pykernels as a product and a sum (bit for bit the same in its baseline and
    AVX2/AVX-512 loops). They differ only where alpha * other overflows and the sum would not:
    inf + 2 * (-max) is inf in torch and inf - inf = NaN here."""
    big = torch.finfo(dtype).max
    x, y = torch.tensor([float("inf"), 1.0], dtype=dtype), torch.tensor([-big, -big], dtype=dtype)
    assert pk.add(x, y, alpha=2)[0].isnan() and torch.add(x, y, alpha=2)[0] == float("inf")
    assert pk.add(x, y, alpha=2)[1] == torch.add(x, y, alpha=2)[1] == -float("inf")


@pytest.mark.parametrize("exponent", [-0.5, -2, 0.5, 2, 3, -1, -1.5], ids=repr)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=dtype_id)
def test_pow_special_exponents_and_values(dtype, exponent):
    """The exponents computed by their own formulas (-0.5: 1/sqrt, -2: 1/(x*x), ...) against torch
    on random values of both signs and on the special values: zeros of both signs, infinities,
    NaN, the extremes (overflow and underflow)."""
    x = torch.cat([make((300,), dtype), make((300,), dtype, positive=True), special_values(dtype)])
    result = check_like_torch(pk.pow, torch.pow, (x, exponent), name="pow", tolerance=unary_tol("pow", x, exponent))
    assert_same_zero_signs(result, torch.pow(x, exponent))


@pytest.mark.parametrize("exponent", [-0.5, -2, 3], ids=repr)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
def test_half_pow_no_less_accurate_than_torch(dtype, exponent):
    """Where torch rounds an intermediate to the dtype (hence pow's 2 ulps against torch), pykernels'
    result is at least as close to the float64 result as torch's: within half an ulp (one rounding
    of a float32 value), and never further than torch's own error."""
    x = make((20000,), dtype, positive=True)
    exact = torch.pow(x.double(), exponent)
    ours, theirs = (pk.pow(x, exponent).double() - exact).abs(), (torch.pow(x, exponent).double() - exact).abs()
    assert (ours <= theirs.max()).all()
    half_ulp = 0.5 * torch.ldexp(torch.full_like(exact, torch.finfo(dtype).eps), torch.frexp(exact)[1] - 1)
    assert (ours <= half_ulp * 1.001).all()  # (1.001: the float32 value's own error before rounding)


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


MID_ROW = (37, 1031)  # 38147 elements: two threads split them at element 19074, in row 18 at column 516
MID_ROW_OPERANDS = {
    "transposed": lambda dtype, **kw: make(MID_ROW[::-1], dtype, **kw).t(),
    "strided": lambda dtype, **kw: make((2 * MID_ROW[0], 3 * MID_ROW[1]), dtype, **kw)[::2, ::3],
    "row-broadcast": lambda dtype, **kw: make((MID_ROW[1],), dtype, **kw).expand(MID_ROW),
    "column-broadcast": lambda dtype, **kw: make((MID_ROW[0], 1), dtype, **kw).expand(MID_ROW),
    "contiguous": lambda dtype, **kw: make(MID_ROW, dtype, **kw),
}
MID_ROW_PAIRS = [
    ("transposed", "contiguous"),
    ("strided", "row-broadcast"),
    ("column-broadcast", "transposed"),
    ("strided", "transposed"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("layouts", MID_ROW_PAIRS, ids="-".join)
@pytest.mark.parametrize("case", BINARY, ids=case_id)
def test_binary_thread_chunks_start_mid_row(case, layouts, dtype, two_threads):
    """Two threads whose chunk boundary falls inside a row, on strided, transposed and broadcast
    operands: the second thread must start at the right element of every operand."""
    nonzero = binary(case)[3]
    a = MID_ROW_OPERANDS[layouts[0]](dtype)
    b = MID_ROW_OPERANDS[layouts[1]](dtype, nonzero=nonzero)
    check_binary(case, a, b)
    out = torch.empty(MID_ROW[::-1], dtype=torch.result_type(a, b)).t()
    if case[0] == "div" and not case[1] and not dtype.is_floating_point:
        out = out.float()
    check_out(case[0], (a, b), case[1], out)


@pytest.mark.parametrize("layout", ["transposed", "strided", "row-broadcast", "column-broadcast"])
@pytest.mark.parametrize("name", UNARY + ["pow", "relu"])
def test_unary_thread_chunks_start_mid_row(name, layout, two_threads):
    x = MID_ROW_OPERANDS[layout](torch.float32, positive=name in ("log", "sqrt"))
    args = (x, 3) if name == "pow" else (x,)
    check_like_torch(getattr(pk, name), getattr(torch, name), args, name=name)
    if layout in ("transposed", "strided"):
        check_inplace("neg", x.clone() if layout == "strided" else x)


STRIDE_CASES = {
    "contiguous": lambda: (make((4, 3)), make((4, 3))),
    "transposed": lambda: (make((3, 4)).t(), make((3, 4)).t()),
    "transposed-and-contiguous": lambda: (make((3, 4)).t(), make((4, 3))),
    "contiguous-and-transposed": lambda: (make((4, 3)), make((3, 4)).t()),
    "transposed-and-row": lambda: (make((3, 4)).t(), make((3,))),
    "row-and-transposed": lambda: (make((3,)), make((3, 4)).t()),
    "column-and-row": lambda: (make((4, 1)), make((3,))),
    "strided": lambda: (make((8, 6))[::2, ::2], make((8, 6))[::2, ::2]),
    "strided-transposed": lambda: (make((6, 8))[::2, ::2].t(), make((4, 3))),
    "permuted-3d": lambda: (make((2, 3, 4)).permute(2, 0, 1), make((2, 3, 4)).permute(2, 0, 1)),
    "permuted-3d-and-broadcast": lambda: (make((2, 3, 4)).permute(1, 2, 0), make((4, 1))),
    "channels-last": lambda: (
        make((2, 3, 4, 5)).to(memory_format=torch.channels_last),
        make((2, 3, 4, 5)).to(memory_format=torch.channels_last),
    ),
    "channels-last-and-contiguous": lambda: (
        make((2, 3, 4, 5)).to(memory_format=torch.channels_last),
        make((2, 3, 4, 5)),
    ),
    "size-1-dims": lambda: (make((1, 4)).t(), make((4, 1))),
    "expanded": lambda: (make((4, 1)).expand(4, 3), make((4, 1)).expand(4, 3)),
    "offset": lambda: (make((13,))[1:].view(4, 3), make((3, 4)).t()),
    "zero-dim-and-transposed": lambda: (make(()), make((3, 4)).t()),
}


@pytest.mark.parametrize("layouts", STRIDE_CASES)
@pytest.mark.parametrize("case", BINARY[::2], ids=case_id)
def test_binary_output_strides_match_torch(case, layouts):
    """A new output is laid out as torch lays it out (the inputs' common dense layout, else the
    order of the inputs' strides): code that keeps a transposed or channels-last tensor through
    elementwise ops relies on it."""
    a, b = STRIDE_CASES[layouts]()
    b = b.abs() + 0.5 if binary(case)[3] else b
    ours, theirs = check_binary(case, a, b), binary(case)[1](a, b, **case[1])
    assert ours.stride() == theirs.stride(), f"strides {ours.stride()}, torch {theirs.stride()}"


@pytest.mark.parametrize("layouts", STRIDE_CASES)
@pytest.mark.parametrize("name", UNARY + ["pow", "relu"])
def test_unary_output_strides_match_torch(name, layouts):
    x = STRIDE_CASES[layouts]()[0].abs() + 0.5
    args = (x, 2.5) if name == "pow" else (x,)
    ours, theirs = getattr(pk, name)(*args), getattr(torch, name)(*args)
    assert_close(ours, theirs)
    assert ours.stride() == theirs.stride(), f"strides {ours.stride()}, torch {theirs.stride()}"
    if name == "neg":
        assert pk.neg(make((4, 3)).t()).stride() == (1, 3)


def test_seeds_do_not_depend_on_the_path(request):
    """The seed key names the test by its file's name, not its path (conftest.seed_key)."""
    assert seed_key(request) == "test_elementwise.py::test_seeds_do_not_depend_on_the_path"
