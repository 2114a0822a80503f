"""pow with a tensor exponent (torch.ops.pykernels.pow.Tensor_Tensor) and its gradients
(torch.ops.pykernels.pow_tensor_backward): parity with torch.pow for dtypes and their promotion,
broadcasting both ways, 0-dim exponents and bases, layouts, sizes, special values, integer powers
(negative exponents included), torch's own OpInfo samples for pow, and the two gradients against
torch.autograd.grad."""

import functools
import numbers

import pytest
import torch

import pykernels  # noqa: F401 - loading it registers torch.ops.pykernels
from conftest import (
    EXACT,
    HALF_DTYPES,
    LAYOUTS,
    assert_close,
    assert_raises_like,
    check_like_torch,
    dtype_id,
    make,
    make_layout,
    op_tol,
    torch_outcome,
)
from test_elementwise import BROADCAST_SHAPES

ops = torch.ops.pykernels
pow_tt = ops.pow.Tensor_Tensor

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
PROMOTION_PAIRS = [
    (torch.int32, torch.int64),
    (torch.uint8, torch.int32),
    (torch.int8, torch.uint8),
    (torch.bool, torch.int32),
    (torch.uint8, torch.bool),
    (torch.float16, torch.bfloat16),
    (torch.float16, torch.float32),
    (torch.float32, torch.float64),
    (torch.int64, torch.float16),
    (torch.bfloat16, torch.int64),
    (torch.bool, torch.float32),
    (torch.int16, torch.float64),
]


def _ulp(x, dtype):
    """The spacing of `dtype` at |x| (a float64 tensor), subnormals included."""
    _, exponent = torch.frexp(x.abs().clamp_min(torch.finfo(dtype).tiny))
    return torch.ldexp(torch.full_like(x, torch.finfo(dtype).eps), exponent - 1)


def assert_pow_close(actual, a, b):
    """pow.Tensor_Tensor(a, b) against torch.pow(a, b): the same dtype, shape and device; integers
    exactly; NaNs, infinities and the signs of zeros in the same places. Other float32/float64
    values within pow's tolerance. float16/bfloat16, which both compute with a float32 pow and round
    once (with different float32 pow functions), are judged against the float64 result of the
    operands as the dtype holds them: no further from it than torch's result, or than half a unit in
    the last place (one rounding)."""
    expected = torch.pow(a, b)
    assert (actual.dtype, actual.shape, actual.device) == (expected.dtype, expected.shape, expected.device)
    dtype = expected.dtype
    if not dtype.is_floating_point:
        assert_close(actual, expected, **EXACT)
        return
    x, e = actual.double().cpu(), expected.double().cpu()
    assert torch.equal(x.isnan(), e.isnan()), "NaNs in other places than torch's"
    inf = e.isinf()
    assert torch.equal(x[inf], e[inf]), "infinities differ from torch's"
    zero = (e == 0) & (x == 0)
    assert torch.equal(x[zero].signbit(), e[zero].signbit()), "signs of zero differ from torch's"
    finite = e.isfinite()
    if dtype not in HALF_DTYPES:
        assert_close(actual.cpu()[finite], expected.cpu()[finite], **op_tol("pow", dtype))
        return
    exact = torch.pow(torch.as_tensor(a).to(dtype).double(), torch.as_tensor(b).to(dtype).double()).cpu()
    exact = exact.expand(e.shape)[finite]
    ours, theirs = (x[finite] - exact).abs(), (e[finite] - exact).abs()
    bound = torch.maximum(theirs, 0.5 * _ulp(exact, dtype)) * 1.001
    bad = ~(ours <= bound)
    if bool(bad.any()):
        i = bad.nonzero()[:5].flatten().tolist()
        raise AssertionError(
            f"{int(bad.sum())} results further from the float64 result than torch's; "
            f"(pykernels, torch, exact): {[(x[finite][k].item(), e[finite][k].item(), exact[k].item()) for k in i]}"
        )


def check_pow(a, b):
    """pow.Tensor_Tensor(a, b) must match torch.pow(a, b), or raise the exception type torch raises."""
    _, exc = torch_outcome(torch.pow, (a, b))
    if exc is not None:
        assert_raises_like(exc, pow_tt, (a, b), name="pow")
        return None
    actual = pow_tt(a, b)
    assert_pow_close(actual, a, b)
    return actual


def special_values(dtype):
    """Values at the edges of dtype: zeros of both signs, infinities, NaN, +-1, the extremes and
    the smallest normal magnitudes, halves and ordinary values (floats); 0, +-1, small values and
    the extremes (integers)."""
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
            0.5,
            -0.5,
            2.0,
            -2.0,
            2.5,
            -3.0,
            0.75,
            3.0,
            -1.5,
            fi.max,
            -fi.max,
            fi.tiny,
            -fi.tiny,
        ]
        return torch.tensor(vals, dtype=torch.float64).to(dtype)
    ii = torch.iinfo(dtype)
    vals = {0, 1, -1, 2, -2, 3, -3, 7, -7, 31, 64, ii.min, ii.max, ii.min + 1}
    return torch.tensor(sorted(v for v in vals if ii.min <= v <= ii.max), dtype=dtype)


# ---------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=dtype_id)
def test_dtypes(dtype, device):
    check_pow(make((6, 35), dtype, device), make((6, 35), dtype, device))
    check_pow(make((6, 35), dtype, device, positive=True), make((6, 35), dtype, device))


def test_bool_is_refused_like_torch(device):
    b = make((5,), torch.bool, device)
    check_pow(b, b)
    check_pow(b, torch.tensor(True, device=device))
    check_pow(torch.tensor(True), b)
    with pytest.raises(NotImplementedError, match="pow"):
        pow_tt(b, b)


@pytest.mark.parametrize(
    "dtypes", PROMOTION_PAIRS + [p[::-1] for p in PROMOTION_PAIRS], ids=lambda p: "-".join(map(dtype_id, p))
)
def test_type_promotion(dtypes, device):
    check_pow(make((4, 9), dtypes[0], device), make((4, 9), dtypes[1], device))


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64], ids=dtype_id)
def test_broadcasting(shapes, dtype, device):
    check_pow(make(shapes[0], dtype, device), make(shapes[1], dtype, device))


def test_broadcast_mismatch_raises_like_torch(device):
    check_pow(make((3, 4), torch.float32, device), make((5,), torch.float32, device))


@pytest.mark.parametrize(
    "exponent_dtype", [torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.bool], ids=dtype_id
)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.uint8, torch.bool], ids=dtype_id
)
def test_zero_dim_exponent(dtype, exponent_dtype, device):
    """A 0-dim exponent takes part in type promotion as a 0-dim tensor does (float16 ** a 0-dim
    float64 is float16, int32 ** a 0-dim float is float32), and its value in the result dtype."""
    x = make((7, 33), dtype, device, positive=True)
    for value in (2, 3, 0, 1, -1, -2, 0.5, -0.5, 2.7, -1.3, True):
        check_pow(x, torch.tensor(value).to(exponent_dtype).to(device))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64], ids=dtype_id)
def test_zero_dim_base(dtype, device):
    e = make((5, 7), dtype, device)
    for value in (2, -3, 0, 1, -1, 0.5, 2.5):
        check_pow(torch.tensor(value).to(dtype).to(device), e)
        check_pow(torch.tensor(value, dtype=torch.float64, device=device), e)
    check_pow(torch.tensor(1.5, dtype=torch.float64, device=device), torch.tensor(-2, device=device))


@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("layout_a", LAYOUTS)
def test_layouts(layout_a, layout_b, device):
    a = make_layout((5, 4, 6), torch.float32, device, layout_a, positive=True)
    b = make_layout((5, 4, 6), torch.float32, device, layout_b)
    check_pow(a, b)
    check_pow(make((5, 4, 6), torch.int32, device), make_layout((5, 4, 6), torch.int32, device, layout_b))


@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded"])
def test_output_strides_match_torch(layout, device):
    a, b = make_layout((4, 3, 5), torch.float32, device, layout, positive=True), make((5,), torch.float32, device)
    for x, y in ((a, b), (b, a.abs() + 0.5), (a, torch.tensor(2.0, device=device))):
        assert pow_tt(x, y).stride() == torch.pow(x, y).stride()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 31, 1031, (1 << 16) + 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int32], ids=dtype_id)
def test_sizes(n, dtype, device):
    """Empty, single-element, prime and large (several threads' worth) sizes, with a tensor of
    exponents, a broadcast row of exponents and a 0-dim exponent."""
    a, b = make((n,), dtype, device, positive=True), make((n,), dtype, device)
    check_pow(a, b)
    check_pow(a.reshape(n, 1).expand(n, 3), make((3,), dtype, device))
    check_pow(a, torch.tensor(3, device=device).to(dtype))


@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_id)
def test_special_values(dtype, device):
    """Every pair of special values as base and exponent: 0^0 = 1, 0^negative = inf, a negative
    base to a fractional exponent is NaN, infinities, NaN (1^nan = 1, nan^0 = 1), overflow and
    underflow."""
    if torch.__version__ < "2.5" and dtype == torch.float64 and device == "cpu":
        pytest.skip(
            "torch 2.4's float64 CPU pow gives other infinities' signs than its later releases, which this follows"
        )
    v = special_values(dtype).to(device)
    a, b = v[:, None].expand(len(v), len(v)), v[None, :].expand(len(v), len(v))
    check_pow(a.contiguous(), b.contiguous())
    check_pow(a, b)  # broadcast operands


@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_id)
def test_special_values_zero_dim_exponents(dtype, device):
    """Each special value as a 0-dim exponent, on the device and (on a GPU) as a 0-dim CPU tensor:
    torch's CPU pow computes pow for every element (pow(-0, 0.5) is +0, pow(-inf, 0.5) is +inf),
    its CUDA pow runs its number-exponent kernel on a 0-dim CPU exponent (sqrt there: -0 and NaN)."""
    v = special_values(dtype).to(device)
    for e in special_values(dtype):
        check_pow(v, e.to(device))
        check_pow(v, e)


@pytest.mark.parametrize("dtype", INTS, ids=dtype_id)
def test_integer_powers(dtype, device):
    """Integer bases and exponents as torch computes them: negative exponents give 1 (base 1), +-1
    (base -1, by the exponent's parity) or 0 (any other base, 0 included), with no error; overflow
    wraps around."""
    v = special_values(dtype).to(device)
    a, b = v[:, None].expand(len(v), len(v)), v[None, :].expand(len(v), len(v))
    check_pow(a.contiguous(), b.contiguous())
    check_pow(a, b)
    if dtype != torch.uint8:
        x = torch.tensor([-3, -2, -1, 0, 1, 2, 3], dtype=dtype, device=device)
        for e in (-1, -2, -3):
            assert pow_tt(x, torch.full_like(x, e)).tolist() == [0, 0, (-1) ** (-e), 0, 1, 0, 0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_id)
def test_half_no_less_accurate_than_torch(dtype, device):
    """float16/bfloat16 on many random operands: within torch's own error of the float64 result,
    or half a unit in the last place (assert_pow_close), for tensors and single exponents."""
    x = make((20000,), dtype, device, positive=True)
    check_pow(x, make((20000,), dtype, device))
    for e in (2.0, 3.0, -2.0, 0.5, -0.5, -1.0, 1.7):
        check_pow(x, torch.tensor(e, dtype=dtype, device=device))


# ---------------------------------------------------------------------------------------------- OpInfo


@functools.cache
def pow_opinfo():
    # Imported on first use: the module takes seconds to import.
    from torch.testing._internal.common_methods_invocations import op_db

    (info,) = [op for op in op_db if op.name == "pow" and op.variant_test_name == ""]
    return info


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64, torch.int32], ids=dtype_id
)
def test_opinfo_samples(dtype, device):
    """torch's OpInfo sample inputs for pow: tensor exponents through pow.Tensor_Tensor, number
    exponents through the number form (pow.default)."""
    checked, number_bases = 0, 0
    for sample in pow_opinfo().sample_inputs(device, dtype):
        assert not sample.kwargs and len(sample.args) == 1, f"an unexpected pow sample: {sample}"
        base, exponent = sample.input, sample.args[0]
        if isinstance(base, numbers.Number):
            number_bases += 1
            continue
        if isinstance(exponent, torch.Tensor):
            check_pow(base, exponent)
        else:
            check_like_torch(
                ops.pow.default,
                torch.pow,
                (base, exponent),
                name="pow",
                tolerance=op_tol("pow", torch.result_type(base, exponent)),
            )
        checked += 1
    assert checked > 0, "no pow samples with a tensor base"
    if number_bases:
        pytest.skip(
            f"{checked} samples checked; {number_bases} with a Python-number base are for the "
            "pow.Scalar form, which is not generated yet"
        )


# ---------------------------------------------------------------------------------------------- backward


def autograd_pow_grads(a, e, grad):
    """torch's gradients of torch.pow(a, e) with respect to a and e, per element of the broadcast
    shape (the operands expanded to it first, so nothing is summed), and the result."""
    shape = torch.broadcast_shapes(a.shape, e.shape)
    leaf_a = a.expand(shape).clone().requires_grad_()
    leaf_e = e.expand(shape).clone().requires_grad_()
    result = torch.pow(leaf_a, leaf_e)
    ga, ge = torch.autograd.grad(result, (leaf_a, leaf_e), grad)
    return ga, ge, result.detach()


def with_masked_points(x, fraction, value, integer_fraction=0.0):
    """x with about `fraction` of its elements set to `value` and `integer_fraction` rounded to
    integers (negative bases then have real powers and gradients with respect to the base)."""
    x = torch.where(torch.rand(x.shape, device=x.device) < integer_fraction, x.round(), x)
    return torch.where(torch.rand(x.shape, device=x.device) < fraction, torch.full_like(x, value), x)


@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 4), (3, 4)),
        ((3, 1), (1, 4)),
        ((4,), (3, 4)),
        ((3, 4), ()),
        ((), (3, 4)),
        ((), ()),
        ((2, 1, 5), (3, 1)),
        ((2, 0, 3), (1, 3)),
    ],
    ids=str,
)
def test_backward_matches_autograd(shapes, device):
    """Both gradients against torch.autograd.grad in float64, with inputs of 0 (grad_exponent
    masked where the exponent is >= 0), exponents of 0 (grad_input 0) and negative bases."""
    a = with_masked_points(3 * make(shapes[0], torch.float64, device), 0.25, 0.0)
    e = with_masked_points(2 * make(shapes[1], torch.float64, device), 0.25, 0.0, integer_fraction=0.4)
    shape = torch.broadcast_shapes(a.shape, e.shape)
    grad = make(shape, torch.float64, device)
    ga, ge, result = autograd_pow_grads(a, e, grad)
    ours_a, ours_e = ops.pow_tensor_backward(grad, a, e, result)
    assert ours_a.shape == ours_e.shape == shape and ours_a.is_contiguous() and ours_e.is_contiguous()
    assert_close(ours_a, ga)
    assert_close(ours_e, ge)


def test_backward_special_values(device):
    """Every pair of special bases and exponents, including the masked points and a gradient with
    NaN and infinities (the exponent's gradient is masked by a factor of 0, so NaN * 0 stays NaN as
    in torch; the input's gradient is 0 wherever the exponent is 0)."""
    v = torch.tensor(
        [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 2.5, 3.0, float("inf"), -float("inf"), float("nan")],
        dtype=torch.float64,
        device=device,
    )
    a, e = v[:, None].expand(len(v), len(v)), v[None, :].expand(len(v), len(v))
    for grad in (
        make(a.shape, torch.float64, device),
        torch.tensor([1.0, float("nan"), float("inf"), -float("inf")], dtype=torch.float64, device=device)
        .repeat(len(v) * len(v) // 4 + 1)[: len(v) * len(v)]
        .view(a.shape),
    ):
        ga, ge, result = autograd_pow_grads(a, e, grad)
        ours_a, ours_e = ops.pow_tensor_backward(grad, a, e, result)
        assert_close(ours_a, ga)
        assert_close(ours_e, ge)


@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded"])
def test_backward_layouts(layout, device):
    """Non-contiguous operands, and a result that is not laid out as the gradients are."""
    a = make_layout((4, 3, 5), torch.float64, device, layout, positive=True)
    e = make_layout((4, 3, 5), torch.float64, device, layout)
    grad = make_layout((4, 3, 5), torch.float64, device, layout)
    ga, ge, result = autograd_pow_grads(a, e, grad)
    result = result.permute(2, 1, 0).contiguous().permute(2, 1, 0)  # the same values, transposed in memory
    ours_a, ours_e = ops.pow_tensor_backward(grad, a, e, result)
    assert_close(ours_a, ga)
    assert_close(ours_e, ge)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=dtype_id)
def test_backward_dtypes(dtype, device):
    """Lower precisions against the float64 gradients rounded to the dtype; the gradients take the
    dtype the four operands promote to (a 0-dim float64 exponent does not raise it)."""
    a, e = make((6, 7), dtype, device, positive=True), make((6, 7), dtype, device)
    grad = make((6, 7), dtype, device)
    result = torch.pow(a, e)
    ga, ge, _ = autograd_pow_grads(a.double(), e.double(), grad.double())
    ours_a, ours_e = ops.pow_tensor_backward(grad, a, e, result)
    assert ours_a.dtype == ours_e.dtype == dtype
    tolerance = {
        torch.float32: {"atol": 1e-5, "rtol": 1e-5},
        torch.float16: {"atol": 1e-3, "rtol": 4e-3},
        torch.bfloat16: {"atol": 1e-2, "rtol": 3e-2},
    }[dtype]
    assert_close(ours_a, ga.to(dtype), **tolerance)
    assert_close(ours_e, ge.to(dtype), **tolerance)
    zero_dim = torch.tensor(1.5, dtype=torch.float64, device=device)
    ours_a, ours_e = ops.pow_tensor_backward(grad, a, zero_dim, torch.pow(a, zero_dim))
    assert ours_a.dtype == ours_e.dtype == dtype


def test_backward_errors(device):
    """Integer operands (no gradients), shapes that do not broadcast: clear errors naming the op."""
    x = make((3, 4), torch.float64, device)
    i = make((3, 4), torch.int64, device)
    with pytest.raises(NotImplementedError, match="pow_tensor_backward"):
        ops.pow_tensor_backward(i, i, i, i)
    with pytest.raises(RuntimeError, match="pow_tensor_backward"):
        ops.pow_tensor_backward(x, x, make((5,), torch.float64, device), x)


# ---------------------------------------------------------------------------------------------- devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
@pytest.mark.parametrize("dtype", FLOATS + [torch.int64], ids=dtype_id)
def test_cpu_zero_dim_operands_beside_cuda(dtype):
    """A 0-dim CPU exponent or base joins CUDA tensors, as a number would; the CUDA result uses
    torch's number-exponent kernel for a CPU exponent (its sqrt and reciprocal shortcuts)."""
    x = make((5, 33), dtype, "cuda", positive=True)
    # (Integers to negative 0-dim CPU exponents are left out: torch's CUDA kernel sends -1 to its
    # floating-only reciprocal kernel.)
    for value in (2, 3, 0.5, -0.5, -1, -2, 1.7) if dtype.is_floating_point else (2, 3, 0, 1):
        e = torch.tensor(value).to(dtype)
        check_pow(x, e)
        check_pow(e, x)
    specials = special_values(dtype).cuda() if dtype.is_floating_point else x
    check_pow(specials, torch.tensor(0.5).to(dtype))
    grad = make((5, 33), torch.float64, "cuda")
    e = torch.tensor(1.5, dtype=torch.float64)
    ga, ge, result = autograd_pow_grads(x.double(), e.cuda(), grad)
    ours_a, ours_e = ops.pow_tensor_backward(grad, x.double(), e, result)
    assert ours_a.device.type == "cuda"
    assert_close(ours_a, ga)
    assert_close(ours_e, ge)
