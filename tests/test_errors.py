"""Bad input raises (never crashes) with torch's exception type and a message naming the op, for
every op family, through the public functions and the raw torch.ops.pykernels ops.
(Matmul shape/rank errors, in-place and out= dtype/shape errors are in the family test files.)"""

import opdb
import pytest
import torch
import torch.nn.functional as F

import pykernels as pk
from conftest import (
    ALL_DTYPES,
    assert_raises_like,
    check_like_torch,
    make,
    torch_outcome,
)

# mse_loss with a broadcast target warns (like torch); the tests that care record it themselves
pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")
ops = torch.ops.pykernels


def reference(name):
    """The torch function a pykernels function mirrors."""
    return F.mse_loss if name == "mse_loss" else getattr(torch, name)


def f(*shape, dtype=torch.float32, **options):
    return make(shape, dtype, **options)


def i(*shape):
    return make(shape, torch.int64, nonzero=True)


# (op name, function building (args, kwargs)): each call raises in torch.
BAD_CALLS = [
    ("add", lambda: ((f(3, 4), f(5)), {})),
    ("sub", lambda: ((f(2, 3), f(3, 2)), {"alpha": 2})),
    ("mul", lambda: ((f(3, 4), f(4, 3)), {})),
    ("div", lambda: ((f(3, 4), f(2, 4)), {})),
    ("add", lambda: ((i(3), i(3)), {"alpha": 0.5})),
    ("sub", lambda: ((f(3, dtype=torch.bool), f(3, dtype=torch.bool)), {})),
    ("div", lambda: ((f(3), f(3)), {"rounding_mode": "round"})),
    ("div", lambda: ((i(4), torch.tensor([1, 0, 2, 3])), {"rounding_mode": "floor"})),
    ("div", lambda: ((i(4), torch.tensor([1, 0, 2, 3])), {"rounding_mode": "trunc"})),
    ("neg", lambda: ((f(3, dtype=torch.bool),), {})),
    ("pow", lambda: ((i(3), -2), {})),
    ("sum", lambda: ((f(2, 3), 2), {})),
    ("sum", lambda: ((f(2, 3), -3), {})),
    ("sum", lambda: ((f(2, 3), (0, 0)), {})),
    ("sum", lambda: ((f(2, 3), (1, -1)), {})),
    ("mean", lambda: ((f(2, 3), 5), {})),
    ("mean", lambda: ((i(2, 3),), {})),
    ("mean", lambda: ((f(2, 3, dtype=torch.bool), 0), {})),
    ("mean", lambda: ((f(2, 3),), {"dtype": torch.int64})),
    ("relu", lambda: ((f(3, dtype=torch.bool),), {})),
    ("mse_loss", lambda: ((f(3, 4), f(3, 4)), {"reduction": "average"})),
    ("mse_loss", lambda: ((f(3, 4), f(2, 4)), {})),
    ("mse_loss", lambda: ((i(3, 4), i(3, 4)), {})),
]
BAD_IDS = [f"{name}-{n}" for n, (name, _) in enumerate(BAD_CALLS)]


@pytest.mark.parametrize("name,build", BAD_CALLS, ids=BAD_IDS)
def test_public_raises_like_torch(name, build):
    args, kwargs = build()
    _, exc = torch_outcome(reference(name), args, kwargs)
    assert exc is not None, "torch accepted the call; fix the test"
    assert_raises_like(exc, getattr(pk, name), args, kwargs, name)


def raw_args(name, args, kwargs):
    """Convert a public call to the raw op's arguments, or None when the raw op cannot express it
    (a Python-number operand, or a reduction string)."""
    if name == "mse_loss":
        return None
    if name != "pow" and not all(isinstance(a, torch.Tensor) for a in args[:2]):
        return None
    if name in ("sum", "mean") and len(args) > 1 and isinstance(args[1], int):
        args = (args[0], [args[1]])
    return args, kwargs


@pytest.mark.parametrize("name,build", BAD_CALLS, ids=BAD_IDS)
def test_raw_op_raises_like_torch(name, build):
    converted = raw_args(name, *build())
    if converted is None:
        pytest.skip("not expressible through the raw op's schema")
    args, kwargs = converted
    _, exc = torch_outcome(getattr(torch, name), args, kwargs)
    assert_raises_like(exc, getattr(ops, name), args, kwargs, name)


RAW_BAD_CALLS = [
    ("mse_loss", lambda: (f(3, 4), f(3, 4), 5), torch.ops.aten.mse_loss),
    ("mse_loss", lambda: (f(3, 4), f(3, 4), -1), torch.ops.aten.mse_loss),
    ("relu_backward", lambda: (f(3, 4), f(5)), lambda g, r: torch.ops.aten.threshold_backward(g, r, 0)),
    ("mse_loss_backward", lambda: (f(), f(3, 4), f(5), 1), torch.ops.aten.mse_loss_backward),
    ("mse_loss_backward", lambda: (f(3, 4), f(3, 4), f(2, 4), 0), torch.ops.aten.mse_loss_backward),
]


@pytest.mark.parametrize("name,build,ref", RAW_BAD_CALLS, ids=[f"{c[0]}-{n}" for n, c in enumerate(RAW_BAD_CALLS)])
def test_raw_only_ops_raise_like_torch(name, build, ref):
    args = build()
    _, exc = torch_outcome(ref, args)
    assert exc is not None, "torch accepted the call; fix the test"
    assert_raises_like(exc, getattr(ops, name), args, name=name)


# ---------------------------------------------------------------------------------------------- dtypes


def cplx(*shape):
    return torch.randn(shape, dtype=torch.complex64)


def outside_the_table():
    """(overload, dtype, how) for every overload, each dtype its op does not take (the table's
    other dtypes, and complex64, which torch takes and pykernels does not), and each way to call
    it: its public function, where it has one, and the raw overload."""
    cases = []
    for overload in opdb.OVERLOADS:
        taken = {opdb.dtype_of(name) for name in overload.op.dtypes}
        for dtype in [d for d in ALL_DTYPES if d not in taken] + [torch.complex64]:
            for how in (["public"] if overload.public_name else []) + ["raw"]:
                name = f"{how}-{overload.qualname}-{opdb.dtype_name(dtype)}"
                cases.append(pytest.param(overload, dtype, how, id=name))
    return cases


def in_dtype(value, dtype):
    """A floating-point tensor argument of a float32 sample as dtype, or each of a list of them
    (an optimizer step's); numbers, and uint8 tensors (relu_mask_backward's mask), stay as they are."""
    if isinstance(value, list):
        return [in_dtype(v, dtype) for v in value]
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return value
    return value.to(dtype)


@pytest.mark.parametrize("overload,dtype,how", outside_the_table())
def test_unsupported_dtype(overload, dtype, how):
    """Dtypes outside the op's table entry raise RuntimeError, or NotImplementedError as torch's
    own 'not implemented for <dtype>' errors do, naming the op."""
    sample = next(s for s in opdb.samples_of(overload) if s.dtype == torch.float32)
    ((args, kwargs),) = sample.calls("cpu", count=1)
    args = tuple(in_dtype(a, dtype) for a in args)
    kwargs = {k: in_dtype(v, dtype) for k, v in kwargs.items()}
    if how == "public":
        fn, args, kwargs = sample.public_call(args, kwargs)
    else:
        fn = overload.resolve()
    with pytest.raises((RuntimeError, NotImplementedError)) as info:
        fn(*args, **kwargs)
    assert overload.op.name in str(info.value)


def test_relu_complex():
    """torch.relu rejects complex inputs too: same exception type."""
    check_like_torch(pk.relu, torch.relu, (cplx(3),), name="relu")


# ---------------------------------------------------------------------------------------------- devices

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="device mismatch needs a CUDA device")


def on_cuda(t):
    return t.cuda()


DEVICE_CALLS = [
    ("mm", lambda: ((f(3, 4), on_cuda(f(4, 2))), {})),
    ("bmm", lambda: ((on_cuda(f(2, 3, 4)), f(2, 4, 2)), {})),
    ("matmul", lambda: ((f(3, 4), on_cuda(f(4))), {})),
    ("add", lambda: ((f(3, 4), on_cuda(f(3, 4))), {})),
    ("mul", lambda: ((on_cuda(f(3, 4)), f(3, 4)), {})),
    ("div", lambda: ((f(3, 4), f(3, 4)), {"out": on_cuda(f(3, 4))})),
    ("mse_loss", lambda: ((f(3, 4), on_cuda(f(3, 4))), {})),
]


@needs_cuda
@pytest.mark.parametrize("name,build", DEVICE_CALLS, ids=[c[0] for c in DEVICE_CALLS])
def test_device_mismatch(name, build):
    args, kwargs = build()
    _, exc = torch_outcome(reference(name), args, kwargs)
    assert_raises_like(exc or RuntimeError(), getattr(pk, name), args, kwargs, name)
