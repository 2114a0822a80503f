"""Every op of the op table against torch, from the op database (tests/opdb.py): each public
function and each torch.ops.pykernels overload (number forms, out= and in-place forms included),
on every sample and on every device of the op (CUDA cases skip where no GPU is visible), gives
torch's values, dtype, shape and device (the public elementwise functions: and its strides), or
raises torch's exception type naming the op. In-place and out= forms write torch's result into
the tensor they are given and return it (the public functions) or nothing (the raw overloads).
"""

import opdb
import pytest
import torch

from conftest import (
    EXACT,
    accum_tol,
    assert_close,
    assert_div_rounding_close,
    half_alpha_floor,
    tol,
)

# mse_loss with a broadcast target warns, as torch's does.
pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")

PUBLIC = [s for o in opdb.public_overloads() for s in opdb.samples_of(o)]
RAW = opdb.all_samples()


def outcome(fn):
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - any error is an outcome to compare with torch's
        return None, exc


def lacks_kernel(exc):
    """torch's "not implemented for 'Half'": a dtype torch has no kernel for (on this torch, device)."""
    return "not implemented for" in str(exc)


def tolerance(sample, args, kwargs, expected):
    """The tolerance for a result: exact for integers; one rounding of the dtype for elementwise
    results (and for add/sub, torch's rounding of alpha * other in float16/bfloat16); for sums
    of terms, accum_tol over their number."""
    if not expected.is_floating_point():
        return EXACT
    kind = sample.overload.op.kind
    if kind in opdb.HAND_WRITTEN_KINDS:
        kind = opdb.hand_written(sample.overload.op).kind
    if kind in ("gemm", "linear", "reduction", "loss", "accumulated"):
        return accum_tol(expected.dtype, opdb.reduced_count(sample, args, kwargs))
    if kind == "exact":
        return EXACT
    base = tol(expected.dtype)
    if "alpha" in kwargs and len(args) > 1:
        floor = half_alpha_floor(expected.dtype, kwargs["alpha"], args[1])
        return {"atol": base["atol"] + floor, "rtol": base["rtol"]}
    return base


def assert_like(sample, actual, expected, args, kwargs, public):
    actual = actual if isinstance(actual, tuple) else (actual,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(actual) == len(expected), f"{len(actual)} results, torch gives {len(expected)}"
    for got, want in zip(actual, expected):
        if want is None:  # an output the call did not ask for (a backward op's output_mask)
            assert got is None, "an output that was not asked for must be None"
            continue
        if kwargs.get("rounding_mode") and want.is_floating_point():
            assert_div_rounding_close(got, want, args[0], args[1])
        else:
            assert_close(got, want, **tolerance(sample, args, kwargs, want))
        if public and sample.overload.op.kind in ("binary", "unary") and not sample.overload.mutating:
            assert got.stride() == want.stride(), f"strides {got.stride()}, torch {want.stride()}"


def check(sample, device, call, public):
    """Runs call(args, kwargs) and torch's computation on identical fresh arguments and compares."""
    if sample.overload.op.name.startswith("linear") and "vector-weight" in sample.id:
        if torch.__version__ < "2.5":
            pytest.skip(f"torch {torch.__version__}'s linear takes no 1-D weight; later releases and pykernels do")
    (args, kwargs), (theirs, their_kwargs) = sample.calls(device)
    expected, exc = outcome(lambda: sample.expected(theirs, their_kwargs))
    result, ours = outcome(lambda: call(args, kwargs))
    if exc is not None:
        if ours is None:
            if lacks_kernel(exc) and sample.dtype in [opdb.dtype_of(d) for d in sample.overload.op.dtypes]:
                pytest.skip(f"torch {torch.__version__} has no kernel to compare with: {exc}")
            pytest.fail(f"torch raised {type(exc).__name__}({exc}); pykernels returned")
        assert isinstance(ours, type(exc)), f"pykernels raised {type(ours).__name__}({ours}), torch {exc!r}"
        assert sample.overload.op.name in str(ours), f"the message does not name the op: {ours}"
        return
    if ours is not None:
        raise ours
    overload = sample.overload
    if overload.mutating:
        written = opdb.written(overload, args, kwargs)
        if public:
            assert result is written, "the public function must return the tensor it writes"
        else:
            assert result is None, "a raw out= or in-place overload returns nothing"
        result = written
    assert_like(sample, result, expected, args, kwargs, public)


@pytest.mark.parametrize("sample,device", opdb.on_devices(PUBLIC))
def test_public_function_like_torch(sample, device):
    def call(args, kwargs):
        fn, args, kwargs = sample.public_call(args, kwargs)
        return fn(*args, **kwargs)

    check(sample, device, call, public=True)


@pytest.mark.parametrize("sample,device", opdb.on_devices(RAW))
def test_raw_overload_like_torch(sample, device):
    check(sample, device, lambda args, kwargs: sample.overload.resolve()(*args, **kwargs), public=False)
