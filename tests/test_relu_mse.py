"""relu / relu_ / relu_backward and mse_loss / mse_loss_backward: parity with torch, forward and
backward."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import pykernels as pk
from conftest import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    GRAD_DTYPES,
    LAYOUTS,
    accum_tol,
    assert_close,
    assert_raises_like,
    check_like_torch,
    dtype_id,
    grads_like_torch,
    make,
    make_layout,
    op_tol,
    tol,
    torch_outcome,
)

# mse_loss with a broadcast target warns (like torch); the tests that care record it themselves
pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")
REDUCTIONS = ["none", "mean", "sum"]
REDUCTION_ENUM = {"none": 0, "mean": 1, "sum": 2}
SHAPES = [(), (0,), (1,), (7,), (3, 0, 2), (5, 7), (2, 3, 5)]


def with_zeros(x):
    """x with some exact zeros (the relu kink) mixed in."""
    if x.dtype == torch.bool or x.numel() == 0:
        return x
    x = x.clone()
    x.view(-1)[::3] = 0
    return x


# ---------------------------------------------------------------------------------------------- relu


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
def test_relu_dtypes(dtype, device):
    """Every dtype torch accepts (ints included); bool raises like torch."""
    check_like_torch(
        pk.relu, torch.relu, (with_zeros(make((5, 7), dtype, device)),), name="relu", tolerance=op_tol("relu", dtype)
    )


@pytest.mark.parametrize("shape", SHAPES + [(1024, 1024)], ids=str)
def test_relu_shapes(shape):
    check_like_torch(pk.relu, torch.relu, (with_zeros(make(shape)),), name="relu")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_relu_layouts(layout):
    check_like_torch(pk.relu, torch.relu, (make_layout((6, 5), layout=layout),), name="relu")


def test_relu_special_values():
    x = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), -1.0, 1.0])
    check_like_torch(pk.relu, torch.relu, (x,), name="relu")


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "offset"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
def test_relu_inplace(dtype, layout):
    x = make_layout((6, 5), dtype, layout=layout)
    expected = x.clone()
    _, exc = torch_outcome(torch.relu_, (expected,))
    if exc is not None:
        assert_raises_like(exc, pk.relu_, (x,), name="relu")
        return
    assert pk.relu_(x) is x, "relu_ must return its (modified) argument"
    assert_close(x, expected)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_backward_raw_op(shape, dtype, device):
    """relu_backward(grad, result) == grad * (result > 0) == aten.threshold_backward(grad, result, 0)."""
    grad, result = make(shape, dtype, device), torch.relu(with_zeros(make(shape, dtype, device)))
    expected = torch.ops.aten.threshold_backward(grad, result, 0)
    assert_close(torch.ops.pykernels.relu_backward(grad, result), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_relu_backward_raw_op_layouts(layout):
    grad = make_layout((6, 5), layout=layout)
    result = torch.relu(make_layout((6, 5), layout="transposed"))
    assert_close(torch.ops.pykernels.relu_backward(grad, result), torch.ops.aten.threshold_backward(grad, result, 0))


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", [(), (0,), (5, 7), (2, 3, 5)], ids=str)
def test_relu_grad(shape, dtype, device):
    grads_like_torch(pk.relu, torch.relu, (make(shape, dtype, device),))


def test_relu_grad_noncontiguous_and_inplace():
    grads_like_torch(pk.relu, torch.relu, (make((5, 6), torch.float64),), view=lambda t: (t.t(),))
    grads_like_torch(lambda x: pk.relu_(x.clone()), lambda x: torch.relu_(x.clone()), (make((5, 6), torch.float64),))


# On the CPU, ReLU's training forward keeps a bit mask (relu_and_mask), not its output, and the
# backward reads it (relu_mask_backward). Bit i % 8 of byte i / 8 is element i in row-major order.


def mask_bits(mask, n):
    """The first n bits of a relu_and_mask mask, as a bool tensor."""
    return ((mask.view(-1, 1) >> torch.arange(8, dtype=torch.uint8)) & 1).view(-1)[:n].bool()


# Sizes around the byte (8), mask word (64) and per-thread chunk boundaries, and a large prime.
MASK_SHAPES = [(), (0,), (1,), (7,), (8,), (9,), (63,), (64,), (65,), (3, 0, 2), (5, 7), (2, 3, 5), (1000003,)]


def special_values(x):
    """x with NaN, -0.0, 0.0, infinities at its start (where it is long enough)."""
    x = with_zeros(x)
    specials = torch.tensor([float("nan"), -0.0, 0.0, float("inf"), -float("inf")], dtype=x.dtype)
    k = min(x.numel(), specials.numel())
    x.view(-1)[:k] = specials[:k]
    return x


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
def test_relu_and_mask_raw_ops(shape, dtype, threads):
    """Output equals torch.relu bit for bit; bit i is set where element i is > 0 or NaN (where
    threshold_backward passes the gradient); relu_mask_backward equals threshold_backward."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = special_values(make(shape, dtype))
        out, mask = torch.ops.pykernels.relu_and_mask(x)
        expected = torch.relu(x)
        assert out.shape == x.shape and out.is_contiguous()
        assert mask.dtype == torch.uint8 and mask.shape == ((x.numel() + 7) // 8,)
        assert_close(out, expected, rtol=0, atol=0)
        number = ~expected.isnan()  # (a NaN's sign is not specified)
        assert torch.equal(torch.signbit(out[number]), torch.signbit(expected[number])), "-0.0 passes, as in torch"
        assert torch.equal(mask_bits(mask, x.numel()), ~(x.reshape(-1) <= 0))
        grad = make(shape, dtype)
        assert_close(
            torch.ops.pykernels.relu_mask_backward(grad, mask),
            torch.ops.aten.threshold_backward(grad, expected, 0),
            rtol=0,
            atol=0,
        )
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("shape", [(37, 29), (13, 200)], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_relu_and_mask_layouts(layout, shape):
    """Strided inputs and gradients: the mask follows the row-major order of the shape, so runs
    that start inside a byte (rows of 29) set their bits one by one, and runs that start on a
    byte but not on a 64-element word (rows of 200) move whole 8-byte words from there."""
    x = make_layout(shape, layout=layout)
    out, mask = torch.ops.pykernels.relu_and_mask(x)
    assert_close(out, torch.relu(x), rtol=0, atol=0)
    assert torch.equal(mask_bits(mask, x.numel()), (x > 0).reshape(-1))
    grad = make_layout(shape, layout=layout)
    assert_close(
        torch.ops.pykernels.relu_mask_backward(grad, mask),
        torch.ops.aten.threshold_backward(grad, torch.relu(x), 0),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
def test_relu_training_forward_keeps_mask_on_cpu(dtype):
    """pk.relu recorded for autograd saves the uint8 mask, not its float output, and its
    gradients (first and second order) match torch's."""
    x = with_zeros(make((33, 17), dtype)).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        pk.relu(x)
    assert [(t.dtype, t.shape) for t in saved] == [(torch.uint8, ((33 * 17 + 7) // 8,))]
    grads_like_torch(pk.relu, torch.relu, (x.detach(),))
    x64 = make((6, 5), torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pk.relu, (x64,))
    assert torch.autograd.gradgradcheck(pk.relu, (x64,))
    raw = make((4, 9), torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.ops.pykernels.relu_and_mask(t)[0], (raw,))
    mask = torch.ops.pykernels.relu_and_mask(make((4, 9)))[1]
    g = make((4, 9), torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.ops.pykernels.relu_mask_backward(t, mask), (g,))


def test_relu_mask_errors():
    x = make((5, 7))
    mask = torch.ops.pykernels.relu_and_mask(x)[1]
    with pytest.raises(RuntimeError, match=r"relu_and_mask.*floating point"):
        torch.ops.pykernels.relu_and_mask(make((5, 7), torch.int64))
    with pytest.raises(RuntimeError, match=r"relu_mask_backward.*5 bytes does not fit grad_output of shape \[5, 9\]"):
        torch.ops.pykernels.relu_mask_backward(make((5, 9)), mask)
    with pytest.raises(RuntimeError, match=r"relu_mask_backward.*uint8"):
        torch.ops.pykernels.relu_mask_backward(x, mask.to(torch.int32))
    with pytest.raises(RuntimeError, match=r"relu_mask_backward.*floating point"):
        torch.ops.pykernels.relu_mask_backward(make((5, 7), torch.int64), mask)


# ---------------------------------------------------------------------------------------------- mse_loss


def mse_pair(shape, dtype=torch.float32, device="cpu", target_shape=None, target_dtype=None):
    return make(shape, dtype, device), make(target_shape or shape, target_dtype or dtype, device)


def mse_tol(dtype, reduction, n):
    return op_tol("mse_loss", dtype) if reduction == "none" else accum_tol(dtype, n, mean=reduction == "mean")


def torch_reference(fn, *args, **kwargs):
    """torch's result, or a skip where torch has no CPU kernel for the dtype (torch 2.4 has no
    bfloat16 mse_loss and no float16/bfloat16 mse_loss_backward; pykernels has them)."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as e:
        if "not implemented for" not in str(e):
            raise
        pytest.skip(f"torch {torch.__version__}: {e}")


def check_mse(x, t, reduction):
    return check_like_torch(
        pk.mse_loss,
        F.mse_loss,
        (x, t),
        dict(reduction=reduction),
        name="mse_loss",
        tolerance=mse_tol(x.dtype, reduction, x.numel()),
    )


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_dtypes(reduction, dtype, device):
    """Floating dtypes match torch; integer/bool inputs raise like torch."""
    x, t = mse_pair((5, 7), dtype, device)
    if dtype.is_floating_point:
        torch_reference(F.mse_loss, x, t, reduction=reduction)
    check_mse(x, t, reduction)


@pytest.mark.parametrize("shape", SHAPES + [(1024, 1024)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_shapes(reduction, shape):
    """Empty inputs: 'mean' is NaN and 'sum' is 0 like torch."""
    check_mse(*mse_pair(shape), reduction)


def test_mse_loss_default_reduction_is_mean():
    x, t = mse_pair((4, 5))
    assert_close(pk.mse_loss(x, t), F.mse_loss(x, t))


@pytest.mark.parametrize("layout_t", LAYOUTS)
@pytest.mark.parametrize("layout_x", LAYOUTS)
def test_mse_loss_layouts(layout_x, layout_t):
    x, t = make_layout((6, 5), layout=layout_x), make_layout((6, 5), layout=layout_t)
    for reduction in REDUCTIONS:
        check_mse(x, t, reduction)


MSE_DTYPE_PAIRS = [(torch.float32, torch.float64), (torch.float16, torch.float32), (torch.float32, torch.int64)]


@pytest.mark.parametrize("dtypes", MSE_DTYPE_PAIRS, ids=lambda p: f"{dtype_id(p[0])}-{dtype_id(p[1])}")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_mixed_dtypes(reduction, dtypes):
    check_mse(*mse_pair((4, 5), dtypes[0], target_dtype=dtypes[1]), reduction)


@pytest.mark.parametrize(
    "shapes", [((3, 4), (4,)), ((3, 4), (3, 1)), ((4,), (3, 4)), ((3, 4), ()), ((3, 4), (2, 4))], ids=str
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_broadcast_target(reduction, shapes):
    """A target of another (broadcastable) shape is broadcast, with a UserWarning where torch
    warns (not for a 0-dim target); non-broadcastable shapes raise like torch."""
    x, t = mse_pair(shapes[0], target_shape=shapes[1])
    with warnings.catch_warnings(record=True) as torch_warnings:
        warnings.simplefilter("always")
        expected, exc = torch_outcome(F.mse_loss, (x, t), dict(reduction=reduction))
    if exc is not None:
        assert_raises_like(exc, pk.mse_loss, (x, t), dict(reduction=reduction), name="mse_loss")
        return
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        actual = pk.mse_loss(x, t, reduction=reduction)
    assert_close(actual, expected)
    if torch_warnings:
        assert any(issubclass(w.category, UserWarning) for w in our_warnings), "torch warns here; pykernels must too"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_raw_op(reduction, dtype):
    x, t = mse_pair((5, 7), dtype)
    r = REDUCTION_ENUM[reduction]
    expected = torch_reference(torch.ops.aten.mse_loss, x, t, r)
    assert_close(torch.ops.pykernels.mse_loss(x, t, r), expected, **mse_tol(dtype, reduction, 35))
    if reduction == "mean":
        assert_close(torch.ops.pykernels.mse_loss(x, t), torch.ops.aten.mse_loss(x, t), **mse_tol(dtype, reduction, 35))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("shape", [(), (0,), (5, 7)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_backward_raw_op(reduction, shape, dtype, device):
    x, t = mse_pair(shape, dtype, device)
    r = REDUCTION_ENUM[reduction]
    grad = make(shape if reduction == "none" else (), dtype, device)
    expected = torch_reference(torch.ops.aten.mse_loss_backward, grad, x, t, r)
    assert_close(torch.ops.pykernels.mse_loss_backward(grad, x, t, r), expected)


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize(
    "shapes", [((5, 7), (5, 7)), ((), ()), ((0, 3), (0, 3)), ((3, 4), (4,)), ((4,), (3, 4))], ids=str
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_grad(reduction, shapes, dtype, device):
    """Gradients for input and target; a broadcast target's gradient is reduced to its shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        inputs = mse_pair(shapes[0], dtype, device, target_shape=shapes[1])
        grads_like_torch(pk.mse_loss, F.mse_loss, inputs, kwargs=dict(reduction=reduction))


def test_mse_loss_grad_noncontiguous():
    for reduction in REDUCTIONS:
        grads_like_torch(
            pk.mse_loss,
            F.mse_loss,
            mse_pair((5, 6), torch.float64),
            kwargs=dict(reduction=reduction),
            view=lambda x, t: (x.t(), t.t()),
        )


# ------------------------------------------------------------------- mse_loss's training path
# A reduced loss recorded for autograd runs mse_loss_and_grad: the forward computes the
# gradient too, and backward hands it over (scaled when the loss gradient is not 1).


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("target_grad", [False, True], ids=["target", "target_requires_grad"])
def test_mse_loss_kept_gradient(reduction, dtype, target_grad, device):
    x, t = make((37, 11), dtype, device), make((37, 11), dtype, device)
    grads = {}
    for name, fn in [("pk", pk.mse_loss), ("torch", F.mse_loss)]:
        xs, ts = x.clone().requires_grad_(), t.clone().requires_grad_(target_grad)
        loss = fn(xs, ts, reduction=reduction)
        loss.backward()
        grads[name] = (loss.detach(), xs.grad, ts.grad)
    assert_close(grads["pk"][0], grads["torch"][0], **tol(dtype))
    assert_close(grads["pk"][1], grads["torch"][1], **tol(dtype))
    if target_grad:
        assert_close(grads["pk"][2], grads["torch"][2], **tol(dtype))


@pytest.mark.parametrize("n", [1, 3, 4, 31, 32, 33, 255, 256, 257, 300, 4099])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_id)
def test_mse_loss_kept_gradient_run_lengths(dtype, n):
    # Around the CPU loop's 4-element vectors, 32 lanes, 256-element float blocks and scalar tail.
    x, t = make((n,), dtype), make((n,), dtype)
    results = {}
    for name, fn in [("pk", pk.mse_loss), ("torch", F.mse_loss)]:
        xs = x.clone().requires_grad_()
        loss = fn(xs, t)
        loss.backward()
        results[name] = (loss.detach(), xs.grad)
    assert_close(results["pk"][0], results["torch"][0], **tol(dtype))
    assert_close(results["pk"][1], results["torch"][1], **tol(dtype))


def test_mse_loss_kept_gradient_scaled_retained_and_accumulated():
    x, t, t2 = make((6, 5), torch.float64), make((6, 5), torch.float64), make((6, 5), torch.float64)
    results = {}
    for name, fn in [("pk", pk.mse_loss), ("torch", F.mse_loss)]:
        xs = x.clone().requires_grad_()
        loss = fn(xs, t) * 3.0  # a loss gradient of 3: the kept gradient is scaled
        loss.backward(retain_graph=True)
        loss.backward()  # a second pass through the retained graph recomputes it
        (fn(xs, t) + fn(xs, t2, reduction="sum")).backward()  # two kept gradients summed into x.grad
        results[name] = xs.grad
    assert_close(results["pk"], results["torch"])


def test_mse_loss_kept_gradient_double_backward():
    x, t = make((4, 3), torch.float64).requires_grad_(), make((4, 3), torch.float64).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda a, b: pk.mse_loss(a, b, reduction="sum"), (x, t))
    (gx,) = torch.autograd.grad(pk.mse_loss(x, t), x, create_graph=True)
    (expected,) = torch.autograd.grad(F.mse_loss(x, t), x, create_graph=True)
    assert_close(gx, expected)
    assert gx.requires_grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(0,), (0, 3)])
def test_mse_loss_double_backward_of_empty_input(shape, reduction):
    # The second derivative of a loss over no elements: empty gradients, and zero for the loss's
    # own gradient (torch's 'mean' loss is nan there, its derivatives are not).
    results = {}
    for name, fn in [("pk", pk.mse_loss), ("torch", F.mse_loss)]:
        x = make(shape, torch.float64).requires_grad_()
        t = make(shape, torch.float64).requires_grad_()
        loss = fn(x, t, reduction=reduction)
        upstream = torch.full_like(loss, 1.5).requires_grad_()
        (gx,) = torch.autograd.grad(loss, x, upstream, create_graph=True)
        results[name] = torch.autograd.grad(gx.sum(), [upstream, x, t], allow_unused=True, materialize_grads=True)
    for got, expected in zip(results["pk"], results["torch"]):
        assert_close(got, expected)


@pytest.mark.parametrize("reduction", [1, 2])
def test_mse_loss_and_grad_raw_op(reduction, device):
    x, t = make((0,), torch.float32, device), make((0,), torch.float32, device)
    loss, grad = torch.ops.pykernels.mse_loss_and_grad(x, t, reduction)
    assert grad.shape == (0,)
    assert_close(loss, F.mse_loss(x, t, reduction="mean" if reduction == 1 else "sum"))
    x, t = make((3, 4), torch.float32, device).t(), make((3,), torch.float64, device)
    loss, grad = torch.ops.pykernels.mse_loss_and_grad(x, t, reduction)
    assert grad.dtype == torch.float64 and grad.shape == (4, 3)
    assert_close(loss, F.mse_loss(x.double(), t.expand(4, 3), reduction="mean" if reduction == 1 else "sum"))
    expected = torch.ops.aten.mse_loss_backward(
        torch.ones((), dtype=torch.float64, device=device), x.double(), t.expand(4, 3), reduction
    )
    assert_close(grad, expected)
    with pytest.raises(RuntimeError, match=r"mse_loss_and_grad.*reduced loss"):
        torch.ops.pykernels.mse_loss_and_grad(x, t, 0)
