"""Shared helpers for the pykernels test suite.

Every test compares a pykernels function with the torch function of the same name on the same
random inputs (``torch.randn`` / ``torch.randint``, a fixed seed per test) using
``torch.testing.assert_close``. The helpers here build those inputs in several memory layouts,
pick tolerances per dtype, and check "same result as torch, or the same exception type as torch".
"""

import math
import os
import zlib

import pytest
import torch
from hypothesis import HealthCheck, settings

from pykernels import optable

# ----------------------------------------------------------------------------------------------
# Hypothesis profiles (tests/test_properties.py). "ci", the default: the same examples on every
# run (derandomized, no example database), enough of them to reach shapes of ~70 per side.
# "dev": fewer examples, random each run, for a quick look. HYPOTHESIS_PROFILE=dev selects it.

_HYPOTHESIS_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=200, derandomize=True, database=None, **_HYPOTHESIS_COMMON)
settings.register_profile("dev", max_examples=40, **_HYPOTHESIS_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ----------------------------------------------------------------------------------------------
# dtypes and devices: those of the op table (pykernels/optable.py)

FLOAT_DTYPES = [getattr(torch, name) for name in optable.FLOATING]
INT_DTYPES = [getattr(torch, name) for name in optable.INTEGRAL]
ALL_DTYPES = [getattr(torch, name) for name in optable.ALL]
# Gradients are compared in the full-precision floating dtypes.
GRAD_DTYPES = [torch.float32, torch.float64]


def _device(name):
    """A device of the table as a test parameter: the CPU always, others skipped where absent."""
    if name == "cpu":
        return name
    absent = not getattr(torch, name).is_available()
    reason = f"{name.upper()} is not available on this machine"
    return pytest.param(name, marks=pytest.mark.skipif(absent, reason=reason))


DEVICES = [_device(name) for name in optable.DEVICES]


def dtype_id(dtype):
    """Short test-id for a dtype: torch.float32 -> 'float32'."""
    return str(dtype).replace("torch.", "")


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def one_thread():
    """One CPU thread, for tests that run whole training loops: on a small machine that other
    processes share, an OpenMP parallel region can wait on a descheduled thread (10-100x
    slowdowns). Results and criteria do not depend on it (parity holds on 1 and 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seed_key(request):
    """The key a test's seed comes from: its module's file name and its name with parameters,
    not the path it was collected from, so a test sees the same inputs however it is invoked."""
    return f"{request.node.path.name}::{request.node.name}"


@pytest.fixture(autouse=True)
def _fixed_seed(request):
    """A fixed seed per test, derived from seed_key, so every test sees its own fresh inputs.
    make() draws on the CPU, so the CPU generator is the one seeded: torch.manual_seed would also
    queue the seed for CUDA, recording a stack trace each time, which costs more than most tests."""
    torch.random.default_generator.manual_seed(zlib.crc32(seed_key(request).encode()))


# ----------------------------------------------------------------------------------------------
# random tensors


def make(shape, dtype=torch.float32, device="cpu", *, nonzero=False, positive=False, requires_grad=False):
    """A random tensor: randn for floating dtypes, randint in [-9, 10) for signed ints
    ([0, 20) for uint8), random True/False for bool.

    nonzero: no element is 0 (|x| >= 0.5 for floats), for divisors.
    positive: all elements > 0 (floats in [0.5, 3)), for log/sqrt/pow.
    """
    shape = tuple(shape)
    if dtype.is_floating_point:
        if positive:
            x = torch.rand(shape) * 2.5 + 0.5
        else:
            x = torch.randn(shape)
            if nonzero:
                x = torch.where(x >= 0, x + 0.5, x - 0.5)
    elif dtype == torch.bool:
        x = torch.randint(0, 2, shape)
        if nonzero or positive:
            x = torch.ones(shape, dtype=torch.int64)
    else:
        low = 0 if (dtype == torch.uint8 or positive) else -9
        x = torch.randint(low, 20 if low == 0 else 10, shape)
        if nonzero or positive:
            x = torch.where(x == 0, torch.ones_like(x), x)
    x = x.to(dtype=dtype, device=device)
    return x.requires_grad_() if requires_grad else x


LAYOUTS = ["contiguous", "transposed", "strided", "expanded", "offset"]


def make_layout(shape, dtype=torch.float32, device="cpu", layout="contiguous", *, requires_grad=False, **kw):
    """A random tensor of `shape` with the given memory layout:

    contiguous  plain row-major tensor
    transposed  a view with all dims reversed (permute) of a contiguous tensor
    strided     every dim step-sliced by 2 out of a bigger tensor
    expanded    every other dim (from the first) broadcast from size 1 (stride 0); read-only
    offset      a view starting at storage offset 1 of a flat buffer
    With requires_grad the returned view is a non-leaf (its base is the leaf).
    """
    shape = tuple(shape)
    n = len(shape)
    if layout == "contiguous":
        return make(shape, dtype, device, requires_grad=requires_grad, **kw)
    if layout == "transposed":
        base = make(shape[::-1], dtype, device, requires_grad=requires_grad, **kw)
        return base.permute(tuple(reversed(range(n))))
    if layout == "strided":
        base = make([2 * s for s in shape], dtype, device, requires_grad=requires_grad, **kw)
        return base[tuple(slice(None, None, 2) for _ in shape)]
    if layout == "expanded":
        small = [1 if i % 2 == 0 else s for i, s in enumerate(shape)]
        return make(small, dtype, device, requires_grad=requires_grad, **kw).expand(shape)
    if layout == "offset":
        base = make([math.prod(shape) + 1], dtype, device, requires_grad=requires_grad, **kw)
        return base[1:].view(shape)
    raise ValueError(layout)


def leaf(t):
    """A detached leaf copy of t that keeps its strides and requires grad (floating only)."""
    return t.detach().clone(memory_format=torch.preserve_format).requires_grad_(t.dtype.is_floating_point)


def clone_args(args):
    """Deep-enough copy of an argument tuple: tensors cloned (keeping strides), others as is."""
    return tuple(a.clone(memory_format=torch.preserve_format) if isinstance(a, torch.Tensor) else a for a in args)


# ----------------------------------------------------------------------------------------------
# tolerances

# Results of compound computations (gradients, the base of accum_tol). float32/float64:
# torch.testing's defaults. float16/bfloat16: about two units in the last place, with an absolute
# floor near 1 ulp of O(1) operands. Single elementwise ops have their own, tighter tolerances
# (op_tol).
TOL = {
    torch.float16: dict(atol=1e-3, rtol=2e-3),
    torch.bfloat16: dict(atol=1e-2, rtol=1.6e-2),
    torch.float32: dict(atol=1e-5, rtol=1.3e-6),
    torch.float64: dict(atol=1e-7, rtol=1e-7),
}
EXACT = dict(atol=0, rtol=0)


def tol(dtype):
    return TOL.get(dtype, EXACT)


def _eps(dtype):
    return torch.finfo(dtype).eps


HALF_DTYPES = (torch.float16, torch.bfloat16)

# float16/bfloat16 elementwise ops: how many units in the last place of the result pykernels may
# differ from torch, relative only. Both compute in float32 and round once to the dtype, so:
#   0  neg and relu (no arithmetic);
#   1  a float32 value that may differ from torch's in its last float32 bits (pykernels' own
#      exp/log, a different operation order) can round to the neighbouring value of the dtype;
#      mul and div: torch reads a single-element float32/float64 operand (a Python float, a
#      0-dim tensor) in float32, pykernels in the dtype, a relative difference of half an ulp;
#   2  pow and mse_loss 'none': torch rounds an intermediate to the dtype on some paths (x*x
#      before the last product for x**3 and x**-2, the difference before squaring), which is one
#      more rounding than pykernels does.
# add/sub: 1, plus an absolute floor where torch rounds alpha*other to the dtype (half_alpha_floor).
HALF_ULPS = {
    "neg": 0,
    "relu": 0,
    "mul": 1,
    "add": 1,
    "sub": 1,
    "div": 1,
    "exp": 1,
    "log": 1,
    "sqrt": 1,
    "pow": 2,
    "mse_loss": 2,
}


def op_tol(op, dtype, *, floor=0.0):
    """Tolerance for the result of the elementwise op `op` in `dtype`: float32/float64 as tol();
    float16/bfloat16 relative only, HALF_ULPS[op] units in the last place, plus an absolute
    `floor` where the caller can justify one by cancellation."""
    if dtype not in HALF_DTYPES:
        return tol(dtype)
    rtol = HALF_ULPS[op] * _eps(dtype)
    return {"atol": float(floor), "rtol": rtol} if rtol or floor else EXACT


def half_alpha_floor(dtype, alpha, other):
    """Absolute floor for add/sub(input, other, alpha) in float16/bfloat16: on the CPU, torch's
    scalar loop (small tensors and the tail of large ones) rounds alpha*other to the dtype before
    adding, while its vectorized loop and pykernels round only the sum. After cancellation
    (5 - 3 * 1.578125) that one rounding is an absolute, not a relative, difference: at most how
    far alpha*other is from its value in the dtype. 0 where alpha*other is exact in the dtype
    (alpha 1, 2, 0.5)."""
    if dtype not in HALF_DTYPES:
        return 0.0
    other = torch.as_tensor(other).to(dtype).double()
    product = torch.as_tensor(alpha).to(dtype).double() * other
    change = (product.to(dtype).double() - product).abs()
    change = change[change.isfinite()]  # inf, NaN, overflow: the same non-finite result either way
    return change.max().item() if change.numel() else 0.0


def _ulp(x, dtype):
    """The spacing of `dtype` at |x| (float64 tensor), for normal magnitudes."""
    _, exponent = torch.frexp(x.abs().clamp_min(torch.finfo(dtype).tiny))
    return torch.ldexp(torch.full_like(x, _eps(dtype)), exponent - 1)


def assert_div_rounding_close(actual, expected, a, b):
    """div(a, b, rounding_mode=...) must equal torch's result exactly, except where the exact
    quotient of the operands (as the result dtype holds them) lies within one unit in the last
    place of that dtype of an integer: there the quotient computed in float32, or rounded to the
    dtype before truncating, may land on either side, so the results may differ by one (or one
    unit in the last place where that is more). float32/float64 results: exact everywhere."""
    dtype = expected.dtype
    if dtype not in HALF_DTYPES:
        assert_close(actual, expected, **EXACT)
        return
    assert actual.dtype == dtype and actual.shape == expected.shape, (actual.dtype, actual.shape, expected.shape)
    q = (torch.as_tensor(a).to(dtype).double() / torch.as_tensor(b).to(dtype).double()).expand(expected.shape)
    q = q.to(expected.device)
    near = (q - q.round()).abs() <= _ulp(q, dtype)
    x, e = actual.double(), expected.double()
    same = (x == e) | (x.isnan() & e.isnan())
    step = torch.maximum(_ulp(e, dtype), torch.ones_like(e))
    ok = same | (near & ((x - e).abs() <= step))
    if not bool(ok.all()):
        bad = (~ok).nonzero()[:5].tolist()
        details = [(tuple(i), actual[tuple(i)].item(), expected[tuple(i)].item(), q[tuple(i)].item()) for i in bad]
        raise AssertionError(
            f"{int((~ok).sum())} rounded quotients differ from torch's away from an integer "
            f"quotient; (index, pykernels, torch, exact quotient): {details}"
        )


def accum_tol(dtype, n, *, mean=False):
    """Tolerance for a result that accumulates n terms of O(1) random values (a matmul inner
    dimension, a reduction): the dtype's own tolerance, plus an allowance for a different
    summation order (~eps(accumulator) * n absolute, ~eps(accumulator) * sqrt(n) relative), plus
    for float16/bfloat16 (which accumulate in float32 but round their output) the output rounding
    of results of magnitude ~sqrt(n). mean=True: the result is that sum divided by n."""
    if not dtype.is_floating_point:
        return EXACT
    n = max(int(n), 1)
    base = TOL[dtype]
    acc_eps = _eps(torch.float64 if dtype == torch.float64 else torch.float32)
    atol = 2 * acc_eps * n
    rtol = base["rtol"] + acc_eps * math.sqrt(n)
    if dtype in (torch.float16, torch.bfloat16):
        atol += 2 * _eps(dtype) * math.sqrt(n)
        rtol += base["rtol"]
    if mean:
        atol /= n
    return dict(atol=base["atol"] + atol, rtol=rtol)


def assert_close(actual, expected, **tolerance):
    """assert_close with per-dtype default tolerances; dtype, shape and device must match, NaNs
    must be in the same places."""
    assert isinstance(actual, torch.Tensor), f"expected a Tensor, got {type(actual).__name__}"
    if not tolerance:
        tolerance = tol(expected.dtype)
    torch.testing.assert_close(actual, expected, equal_nan=True, **tolerance)


# ----------------------------------------------------------------------------------------------
# "same as torch": same value, or the same exception type


def torch_outcome(ref, args, kwargs=None):
    """Run the torch reference; return (result, None) or (None, exception)."""
    try:
        return ref(*args, **(kwargs or {})), None
    except Exception as exc:  # noqa: BLE001 - any torch error is an expected outcome to mirror
        return None, exc


def assert_raises_like(exc, fn, args, kwargs=None, name=None):
    """fn(*args) must raise the exception type torch raised (exc), with the op name in the message."""
    with pytest.raises(type(exc)) as info:
        fn(*args, **(kwargs or {}))
    if name is not None:
        assert name.rstrip("_") in str(info.value), f"error message does not name the op {name!r}: {info.value}"


def check_like_torch(fn, ref, args, kwargs=None, *, name=None, tolerance=None):
    """fn(*args, **kwargs) must equal ref(*args, **kwargs) (dtype, shape, values), or raise the
    same exception type as torch when torch raises. Inputs are cloned for each call so in-place
    functions can be checked too (the returned value is what's compared). Returns the result."""
    kwargs = kwargs or {}
    expected, exc = torch_outcome(ref, clone_args(args), kwargs)
    if exc is not None:
        assert_raises_like(exc, fn, clone_args(args), kwargs, name)
        return None
    actual = fn(*clone_args(args), **kwargs)
    assert_close(actual, expected, **(tolerance or {}))
    return actual


# ----------------------------------------------------------------------------------------------
# autograd parity


def grads_like_torch(fn, ref, inputs, *, tolerance=None, kwargs=None, view=None):
    """Run fn and ref forward on leaf copies of `inputs` (tensors; non-tensors passed as is),
    call .backward() with the same random upstream gradient, and compare outputs and the leaves'
    .grad (a missing .grad counts as zeros, as for an input that does not affect the output).

    view: optional function mapping the leaves to the actual arguments (e.g. transposing them),
    so non-contiguous operands are tested too; gradients are compared on the leaves."""
    kwargs = kwargs or {}
    view = view or (lambda *xs: xs)
    ours = [leaf(x) if isinstance(x, torch.Tensor) else x for x in inputs]
    theirs = [leaf(x) if isinstance(x, torch.Tensor) else x for x in inputs]
    out, expected = fn(*view(*ours), **kwargs), ref(*view(*theirs), **kwargs)
    assert_close(out, expected, **(tolerance or {}))
    grad_out = make(expected.shape, expected.dtype, expected.device)
    out.backward(grad_out)
    expected.backward(grad_out)
    for x_ours, x_theirs in zip(ours, theirs):
        if isinstance(x_ours, torch.Tensor):
            g = x_ours.grad if x_ours.grad is not None else torch.zeros_like(x_ours)
            e = x_theirs.grad if x_theirs.grad is not None else torch.zeros_like(x_theirs)
            assert g.shape == x_ours.shape, f"gradient shape {tuple(g.shape)} != input shape {tuple(x_ours.shape)}"
            assert_close(g, e, **(tolerance or {}))
