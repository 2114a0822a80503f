"""The derivatives of the raw ops (torch.ops.pykernels.*), as their Autograd kernels record them
(csrc/autograd/):

- gradcheck and gradgradcheck (float64) of every differentiable overload, on broadcast and
  non-contiguous operands, with undefined incoming gradients and batched (vmapped) backwards;
- torch.func: grad to second order, vjp, jacrev and vmap, against torch's, on the raw ops
  themselves, the in-place ones included;
- the in-place ops under autograd: results and gradients as torch's, torch's checks for a write
  made before anything is written, writes into views;
- mse_loss's kept gradient: scaled for a loss gradient other than 1, handed over once, computed
  afresh for a second backward and for create_graph;
- the nodes themselves: names, saved-tensor hooks, version checks, forward AD refused, creation
  hooks, a deep graph freed;
- under the profiler, backward (and double backward) runs no ATen compute.
"""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

from pykernels import _compat
from conftest import assert_close, make, make_layout
from handwritten import ALLOWED_ATEN, assert_kernels_only, profile

ops = torch.ops.pykernels
f64 = torch.float64
MEAN, SUM, NONE = 1, 2, 0

# The ops have no batching rules: under vmap, functorch runs them once per batch element and warns.
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def assert_all_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)


def arg(shape, layout="contiguous", dtype=f64, **options):
    """A leaf that requires grad, stored in `layout` (conftest.make_layout): transposed and strided
    leaves are non-contiguous views."""
    return make_layout(shape, dtype, layout=layout, **options).detach().requires_grad_()


def const(shape, dtype=f64, **options):
    return make(shape, dtype, **options)


def relu_result(shape, dtype=f64):
    return torch.relu(make(shape, dtype, nonzero=True))


def relu_mask(shape, dtype=f64):
    return ops.relu_and_mask(make(shape, dtype, nonzero=True))[1]


# (id, function of the inputs, builder of the inputs for a dtype). One row per differentiable
# overload and option, with broadcasting wherever the op broadcasts. Inputs stay away from kinks
# (relu at 0) and singularities (log, sqrt, div at 0), so that finite differences hold.
CASES = [
    ("mm", ops.mm, lambda d: (arg((3, 4), dtype=d), arg((4, 2), dtype=d))),
    ("mm-transposed", ops.mm, lambda d: (arg((3, 4), "transposed", d), arg((4, 2), "transposed", d))),
    ("mm-strided", ops.mm, lambda d: (arg((3, 4), "strided", d), arg((4, 2), dtype=d))),
    ("bmm", ops.bmm, lambda d: (arg((2, 3, 4), dtype=d), arg((2, 4, 2), "transposed", d))),
    ("matmul-batch-broadcast", ops.matmul, lambda d: (arg((2, 1, 3, 4), dtype=d), arg((3, 4, 2), dtype=d))),
    ("matmul-1d-1d", ops.matmul, lambda d: (arg((4,), dtype=d), arg((4,), dtype=d))),
    ("matmul-1d-3d", ops.matmul, lambda d: (arg((4,), dtype=d), arg((2, 4, 3), dtype=d))),
    ("matmul-3d-1d", ops.matmul, lambda d: (arg((2, 3, 4), dtype=d), arg((4,), dtype=d))),
    ("matmul-2d-transposed", ops.matmul, lambda d: (arg((3, 4), "transposed", d), arg((4, 5), "strided", d))),
    ("add-alpha", lambda a, b: ops.add(a, b, alpha=2), lambda d: (arg((3, 1), dtype=d), arg((1, 4), dtype=d))),
    (
        "add-int-alpha",
        lambda a, b: ops.add(a, b, alpha=-3),
        lambda d: (arg((3, 4), "transposed", d), arg((4,), dtype=d)),
    ),
    ("sub-alpha", lambda a, b: ops.sub(a, b, alpha=0.5), lambda d: (arg((2, 3), dtype=d), arg((3,), dtype=d))),
    ("sub-0d", ops.sub, lambda d: (arg((), dtype=d), arg((2, 3), "strided", d))),
    ("mul-broadcast", ops.mul, lambda d: (arg((3, 1), dtype=d), arg((2, 1, 4), dtype=d))),
    ("mul-transposed", ops.mul, lambda d: (arg((3, 4), "transposed", d), arg((3, 4), "strided", d))),
    ("div", ops.div, lambda d: (arg((3, 4), dtype=d), arg((4,), dtype=d, nonzero=True))),
    ("div-transposed", ops.div, lambda d: (arg((3, 4), "transposed", d), arg((3, 4), dtype=d, nonzero=True))),
    (
        "div-floor",
        lambda a, b: ops.div(a, b, rounding_mode="floor"),
        lambda d: (arg((3, 4), dtype=d), arg((4,), dtype=d, nonzero=True)),
    ),
    (
        "div-trunc",
        lambda a, b: ops.div(a, b, rounding_mode="trunc"),
        lambda d: (arg((3, 4), dtype=d), arg((3, 4), dtype=d, nonzero=True)),
    ),
    ("neg", ops.neg, lambda d: (arg((3, 4), "transposed", d),)),
    ("exp", ops.exp, lambda d: (arg((3, 4), "strided", d),)),
    ("log", ops.log, lambda d: (arg((3, 4), "transposed", d, positive=True),)),
    ("sqrt", ops.sqrt, lambda d: (arg((3, 4), dtype=d, positive=True),)),
    ("pow-2.5", lambda a: ops.pow(a, 2.5), lambda d: (arg((3, 4), dtype=d, positive=True),)),
    ("pow--2", lambda a: ops.pow(a, -2), lambda d: (arg((3, 4), "transposed", d, positive=True),)),
    ("pow-3", lambda a: ops.pow(a, 3), lambda d: (arg((3, 4), dtype=d),)),
    ("pow-1", lambda a: ops.pow(a, 1), lambda d: (arg((3, 4), dtype=d),)),
    ("pow-0", lambda a: ops.pow(a, 0), lambda d: (arg((3, 4), dtype=d),)),
    ("sum", ops.sum, lambda d: (arg((2, 3, 4), "transposed", d),)),
    ("sum-dims-keepdim", lambda a: ops.sum(a, [0, -1], True), lambda d: (arg((2, 3, 4), dtype=d),)),
    ("sum-dim", lambda a: ops.sum(a, [1]), lambda d: (arg((2, 3, 4), "strided", d),)),
    ("sum-0d", ops.sum, lambda d: (arg((), dtype=d),)),
    ("sum-dtype", lambda a: ops.sum(a, [1], dtype=f64), lambda d: (arg((2, 3), dtype=d),)),
    ("mean", ops.mean, lambda d: (arg((2, 3, 4), dtype=d),)),
    ("mean-dim", lambda a: ops.mean(a, [1]), lambda d: (arg((2, 3, 4), "transposed", d),)),
    ("mean-dims-keepdim", lambda a: ops.mean(a, [0, 2], True), lambda d: (arg((2, 3, 4), dtype=d),)),
    ("relu", ops.relu, lambda d: (arg((3, 4), "transposed", d, nonzero=True),)),
    ("relu_backward", ops.relu_backward, lambda d: (arg((3, 4), dtype=d), relu_result((3, 4), d))),
    (
        "relu_backward-result-requires-grad",
        ops.relu_backward,
        lambda d: (arg((3, 4), "transposed", d), arg((3, 4), dtype=d, nonzero=True)),
    ),  # away from the kink
    ("relu_and_mask", ops.relu_and_mask, lambda d: (arg((3, 7), dtype=d, nonzero=True),)),
    ("relu_and_mask-transposed", ops.relu_and_mask, lambda d: (arg((5, 3), "transposed", d, nonzero=True),)),
    ("relu_mask_backward", ops.relu_mask_backward, lambda d: (arg((3, 7), dtype=d), relu_mask((3, 7), d))),
    ("mse_loss-mean", lambda a, t: ops.mse_loss(a, t, MEAN), lambda d: (arg((3, 4), dtype=d), arg((3, 4), dtype=d))),
    (
        "mse_loss-sum",
        lambda a, t: ops.mse_loss(a, t, SUM),
        lambda d: (arg((3, 4), "transposed", d), arg((3, 4), dtype=d)),
    ),
    ("mse_loss-none", lambda a, t: ops.mse_loss(a, t, NONE), lambda d: (arg((3, 4), dtype=d), arg((3, 4), dtype=d))),
    ("mse_loss-broadcast", lambda a, t: ops.mse_loss(a, t, MEAN), lambda d: (arg((3, 4), dtype=d), arg((4,), dtype=d))),
    ("mse_loss-target-only", lambda a, t: ops.mse_loss(a, t, MEAN), lambda d: (const((3, 4), d), arg((3, 4), dtype=d))),
    (
        "mse_loss_backward-mean",
        lambda g, a, t: ops.mse_loss_backward(g, a, t, MEAN),
        lambda d: (arg((), dtype=d), arg((3, 4), dtype=d), arg((3, 4), "transposed", d)),
    ),
    (
        "mse_loss_backward-sum",
        lambda g, a, t: ops.mse_loss_backward(g, a, t, SUM),
        lambda d: (arg((), dtype=d), arg((3, 4), dtype=d), arg((4,), dtype=d)),
    ),
    (
        "mse_loss_backward-none",
        lambda g, a, t: ops.mse_loss_backward(g, a, t, NONE),
        lambda d: (arg((3, 4), "strided", d), arg((3, 4), dtype=d), arg((3, 4), dtype=d)),
    ),
    (
        "mse_loss_and_grad-mean",
        lambda a, t: ops.mse_loss_and_grad(a, t, MEAN),
        lambda d: (arg((3, 4), dtype=d), arg((3, 4), dtype=d)),
    ),
    (
        "mse_loss_and_grad-sum-broadcast",
        lambda a, t: ops.mse_loss_and_grad(a, t, SUM),
        lambda d: (arg((3, 4), "transposed", d), arg((4,), dtype=d)),
    ),
]
CASE_IDS = [c[0] for c in CASES]
# Piecewise-constant first derivatives (zeros built from nothing that requires grad): nothing
# for gradgradcheck to differentiate.
CONSTANT_FIRST_DERIVATIVE = {"div-floor", "div-trunc", "pow-0", "pow-1"}


def differentiable(inputs):
    return tuple(x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad)


def with_fixed(fn, inputs):
    """fn of the inputs that require grad only, the others fixed: what gradcheck perturbs."""
    positions = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.requires_grad]

    def call(*diff):
        full = list(inputs)
        for i, x in zip(positions, diff):
            full[i] = x
        return fn(*full)

    return call


@pytest.mark.parametrize("name,fn,build", CASES, ids=CASE_IDS)
def test_gradcheck(name, fn, build):
    inputs = build(f64)
    # check_batched_grad: the backward under vmap, as jacrev and vmap(vjp) run it.
    assert torch.autograd.gradcheck(with_fixed(fn, inputs), differentiable(inputs), check_batched_grad=True)


@pytest.mark.parametrize(
    "name,fn,build",
    [c for c in CASES if c[0] not in CONSTANT_FIRST_DERIVATIVE],
    ids=[i for i in CASE_IDS if i not in CONSTANT_FIRST_DERIVATIVE],
)
def test_gradgradcheck(name, fn, build):
    inputs = build(f64)
    assert torch.autograd.gradgradcheck(with_fixed(fn, inputs), differentiable(inputs))


@pytest.mark.parametrize("name,fn,build", CASES, ids=CASE_IDS)
def test_each_op_records_its_own_node(name, fn, build):
    inputs = build(torch.float32)
    out = fn(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    assert out.grad_fn.name().startswith("pykernels::autograd::") and out.grad_fn.name().endswith("Backward")
    with torch.no_grad():
        out = fn(*inputs)
    assert not (out[0] if isinstance(out, tuple) else out).requires_grad


def test_mask_output_is_not_differentiable():
    out, mask = ops.relu_and_mask(arg((3, 7), nonzero=True))
    assert out.requires_grad and not mask.requires_grad and mask.grad_fn is None


def test_inputs_without_grad_record_nothing():
    a, b = const((3, 4)), const((4, 2))
    assert ops.mm(a, b).grad_fn is None and not ops.mm(a, b).requires_grad
    x = const((3, 4))
    ops.add_(x, const((4,)))
    assert x.grad_fn is None


@pytest.mark.parametrize(
    "name,fn,build",
    [c for c in CASES if c[0] in ("mm", "mul-broadcast", "mse_loss-mean")],
    ids=["mm", "mul", "mse_loss"],
)
def test_gradients_of_some_inputs_only(name, fn, build):
    """torch.autograd.grad(out, [one input]) computes and returns that input's gradient only."""
    inputs = build(f64)
    out = fn(*inputs)
    expected = torch.autograd.grad(out, inputs, torch.ones_like(out))
    out = fn(*inputs)
    (got,) = torch.autograd.grad(out, inputs[1], torch.ones_like(out))
    assert_close(got, expected[1])


# ---------------------------------------------------------------------------------------------- pow.Tensor_Tensor

_POW_TENSOR = "pykernels::pow.Tensor_Tensor"
needs_pow_tensor = pytest.mark.skipif(
    _POW_TENSOR not in _compat.all_op_names() or not _compat.has_kernel_for_dispatch_key(_POW_TENSOR, "Autograd"),
    reason="pow.Tensor_Tensor or its Autograd kernel is not registered",
)


@needs_pow_tensor
def test_pow_tensor_tensor_gradients():
    a, e = arg((3, 4), positive=True), arg((4,))
    assert torch.autograd.gradcheck(ops.pow.Tensor_Tensor, (a, e))
    out = ops.pow.Tensor_Tensor(a, e)
    g = const((3, 4))
    ref_a, ref_e = a.detach().requires_grad_(), e.detach().requires_grad_()
    assert_all_close(
        torch.autograd.grad(out, (a, e), g), torch.autograd.grad(torch.pow(ref_a, ref_e), (ref_a, ref_e), g)
    )


@needs_pow_tensor
def test_pow_tensor_tensor_refuses_double_backward():
    a, e = arg((3, 4), positive=True), arg((3, 4))
    out = ops.pow.Tensor_Tensor(a, e)
    (grad,) = torch.autograd.grad(out.sum(), a, create_graph=True)  # the first derivative is there
    with pytest.raises(RuntimeError, match=r"pykernels.pow: double backward with a tensor exponent is not supported"):
        torch.autograd.grad(grad.sum(), a)


# ---------------------------------------------------------------------------------------------- torch.func


def _mlp(lib, w, x, t):
    if lib is torch:
        return F.mse_loss(torch.relu(x @ w + w[0]), t)
    return ops.mse_loss(ops.relu(ops.add(ops.mm(x, w), w[0])), t, MEAN)


def _matmul_reduce(lib, w, x, t):
    if lib is torch:
        return torch.mean(torch.sum(torch.matmul(x.expand(2, 5, 3), w), 0, keepdim=True), 2)
    return ops.mean(ops.sum(ops.matmul(x.expand(2, 5, 3), w), [0], True), [2])


def _elementwise(lib, w, x, t):
    if lib is torch:
        return torch.neg(torch.log(torch.sqrt(torch.pow(w, 2) + torch.exp(w)))) / (w - 3.0) * (w + w)
    three = torch.tensor(3.0, dtype=w.dtype)
    inner = ops.add(ops.pow(w, 2), ops.exp(w))
    return ops.mul(ops.div(ops.neg(ops.log(ops.sqrt(inner))), ops.sub(w, three)), ops.add(w, w, alpha=1))


def _mse_and_grad(lib, w, x, t):
    y = x @ w if lib is torch else ops.mm(x, w)
    if lib is torch:
        return F.mse_loss(y, t, reduction="sum") + (2 * (y - t)).sum(0)
    loss, grad = ops.mse_loss_and_grad(y, t, SUM)
    return ops.add(loss, ops.sum(grad, [0]))


def _mse_backward(lib, w, x, t):
    y = x @ w if lib is torch else ops.mm(x, w)
    if lib is torch:
        return 2 * (y - t) * w[0].sum() / y.numel()
    return ops.mse_loss_backward(ops.sum(w[0]), y, t, MEAN)


def _relu_mask(lib, w, x, t):
    y = x @ w if lib is torch else ops.mm(x, w)
    if lib is torch:
        return torch.relu(y) * 2.0
    out, mask = ops.relu_and_mask(y)
    return ops.add(out, ops.relu_mask_backward(y, mask))


def _inplace(lib, w, x, t):
    """Every in-place op on intermediates: raw ops (lib=ops) or torch's methods."""
    if lib is torch:
        y, z = x @ w, w * 2.0
        y.add_(w[0], alpha=0.5), y.mul_(w[1]), y.div_(w[2] + 3.0), y.relu_()
        z.neg_(), z.sub_(w[1], alpha=2)
        return y + z.sum(0)
    two, three = torch.tensor(2.0, dtype=w.dtype), torch.tensor(3.0, dtype=w.dtype)
    y, z = ops.mm(x, w), ops.mul(w, two)
    ops.add_(y, w[0], alpha=0.5), ops.mul_(y, w[1]), ops.div_(y, ops.add(w[2], three)), ops.relu_(y)
    ops.neg_(z), ops.sub_(z, w[1], alpha=2)
    return ops.add(y, ops.sum(z, [0]))


FUNC_CASES = {
    "mlp": _mlp,
    "matmul-reduce": _matmul_reduce,
    "elementwise": _elementwise,
    "mse_loss_and_grad": _mse_and_grad,
    "mse_loss_backward": _mse_backward,
    "relu_and_mask": _relu_mask,
    "in-place": _inplace,
}


def _func_inputs():
    return make((5, 3), f64), make((3, 4), f64), make((5, 4), f64)


@pytest.mark.parametrize("name", FUNC_CASES)
def test_torch_func_grad_vjp_jacrev(name):
    """torch.func.grad (to second order), vjp and jacrev straight through the raw ops' nodes: the
    in-place ops included, with no copy made for the transform."""
    case = FUNC_CASES[name]
    x, w, t = _func_inputs()
    ours, theirs = (lambda w: case(ops, w, x, t)), (lambda w: case(torch, w, x, t))

    def scalar(f):
        return lambda w: f(w).sum()

    assert_close(torch.func.grad(scalar(ours))(w), torch.func.grad(scalar(theirs))(w))

    def second(f):
        return torch.func.grad(lambda w: torch.func.grad(scalar(f))(w).sin().sum())

    assert_close(second(ours)(w), second(theirs)(w))
    out, vjp = torch.func.vjp(ours, w)
    ref_out, ref_vjp = torch.func.vjp(theirs, w)
    cotangent = make(tuple(out.shape), f64)
    assert_close(out, ref_out)
    assert_close(vjp(cotangent)[0], ref_vjp(cotangent)[0])
    assert_close(torch.func.jacrev(ours)(w), torch.func.jacrev(theirs)(w))


@pytest.mark.parametrize("name", [n for n in FUNC_CASES if n != "in-place"])
def test_torch_func_vmap(name):
    case = FUNC_CASES[name]
    x, _, t = _func_inputs()
    ws = make((3, 3, 4), f64)
    assert_close(torch.func.vmap(lambda w: case(ops, w, x, t))(ws), torch.func.vmap(lambda w: case(torch, w, x, t))(ws))

    # and per-sample gradients, vmap over grad
    def per_sample(lib):
        return torch.func.vmap(torch.func.grad(lambda w: case(lib, w, x, t).sum()))

    assert_close(per_sample(ops)(ws), per_sample(torch)(ws))


def test_torch_func_inplace_self_operand():
    """q.mul_(q) on an intermediate: both formulas read q's old value, so the gradient is torch's
    for q * q (torch's own mul_ refuses this backward: q was modified after being saved)."""
    x = make((4,), f64)

    def f(x):
        q = ops.mul(x, torch.tensor(3.0, dtype=f64))
        ops.mul_(q, q)
        return q.sum()

    assert_close(torch.func.grad(f)(x), 18 * x)
    xr = x.clone().requires_grad_()
    f(xr).backward()
    assert_close(xr.grad, 18 * x)


def test_torch_func_inplace_errors():
    """The kernels' own checks hold under a transform: a result of another dtype, a broadcast
    that would grow self."""
    x = make((5,), f64)

    def int_add_float(x):
        ops.add_(torch.arange(5), x)
        return x.sum()

    def grow(x):
        y = ops.mul(x[:1], x[:1])
        ops.add_(y, x)
        return y.sum()

    with pytest.raises(RuntimeError, match="result type Double can't be cast to the desired output type Long"):
        torch.func.grad(int_add_float)(x)
    with pytest.raises(RuntimeError, match=r"output with shape \[1\] doesn't match the broadcast shape \[5\]"):
        torch.func.grad(grow)(x)


def test_forward_ad_is_refused():
    x, v = make((3,), f64), make((3,), f64)
    with pytest.raises(NotImplementedError, match=r"pykernels.exp: forward-mode automatic differentiation"):
        torch.func.jvp(ops.exp, (x,), (v,))
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        with pytest.raises(NotImplementedError, match=r"pykernels.mul_: forward-mode"):
            ops.mul_(x.clone(), dual)


# ---------------------------------------------------------------------------------------------- in-place


def _intermediates():
    x, y = arg((3, 4)), arg((4,), nonzero=True)
    return x, y


INPLACE = [
    ("add_", lambda s, o: ops.add_(s, o, alpha=2), lambda s, o: s.add_(o, alpha=2)),
    ("sub_", lambda s, o: ops.sub_(s, o, alpha=0.5), lambda s, o: s.sub_(o, alpha=0.5)),
    ("mul_", ops.mul_, lambda s, o: s.mul_(o)),
    ("div_", ops.div_, lambda s, o: s.div_(o)),
    ("div_-floor", lambda s, o: ops.div_(s, o, rounding_mode="floor"), lambda s, o: s.div_(o, rounding_mode="floor")),
    ("neg_", lambda s, o: ops.neg_(s), lambda s, o: s.neg_()),
    ("relu_", lambda s, o: ops.relu_(s), lambda s, o: s.relu_()),
]


@pytest.mark.parametrize("name,ours,theirs", INPLACE, ids=[c[0] for c in INPLACE])
@pytest.mark.parametrize("target", ["tensor", "view"])
def test_inplace_matches_torch(name, ours, theirs, target):
    """Results and gradients as torch's, for the whole tensor and for a write into a view of it
    (rebased through CopySlices), with self's history reached through the node."""
    x, y = _intermediates()
    grad = make((3, 4), f64)
    results = []
    for fn in (ours, theirs):
        base = x * 1.5
        s = base if target == "tensor" else base[1:]
        fn(s, y)
        (gx, gy) = torch.autograd.grad(base, (x, y), grad, allow_unused=True)
        results.append((base.detach(), gx, torch.zeros(4, dtype=f64) if gy is None else gy))
    for got, expected in zip(*results):
        assert_close(got, expected)


def test_inplace_gradgradcheck():
    def f(x, y):
        z = ops.mul(x, torch.tensor(1.5, dtype=f64))
        ops.add_(z, y, alpha=2)
        ops.mul_(z, y)
        ops.div_(z, ops.add(y, torch.tensor(3.0, dtype=f64)))
        ops.sub_(z, x)
        ops.neg_(z)
        ops.relu_(z)
        return z

    inputs = (arg((3, 4), nonzero=True), arg((4,), nonzero=True))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_inplace_on_a_view():
    """Writes into views of an intermediate rebase its history (torch's CopySlices): relu_ keeps
    its result through the view."""

    def f(x, y):
        z = ops.mul(x, torch.tensor(1.0, dtype=f64))
        ops.mul_(z[1:], y)
        ops.div_(z[:, 0], ops.add(y[0], torch.tensor(3.0, dtype=f64)))
        ops.relu_(z[0])
        return z

    inputs = (arg((3, 4), nonzero=True), arg((4,), nonzero=True))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


INPLACE_REFUSED = {
    "leaf": lambda: arg((3, 4)),
    "view-of-leaf": lambda: arg((4, 4))[1:],
    "view-made-under-no_grad": lambda: _no_grad_view(),
}


def _no_grad_view():
    base = arg((4, 4)) * 1.0
    with torch.no_grad():
        return base[1:]


@pytest.mark.parametrize("name,ours,theirs", INPLACE, ids=[c[0] for c in INPLACE])
@pytest.mark.parametrize("bad", INPLACE_REFUSED)
def test_inplace_refused_before_anything_is_written(name, ours, theirs, bad):
    """torch's checks for a write under autograd (check_inplace), made before the write: the same
    error as torch's, and nothing written, no history changed."""
    s, other = INPLACE_REFUSED[bad](), arg((4,), nonzero=True)
    with pytest.raises(RuntimeError) as expected:
        theirs(INPLACE_REFUSED[bad](), other)
    before, grad_fn, version = s.detach().clone(), s.grad_fn, s._version
    with pytest.raises(RuntimeError) as got:
        ours(s, other)
    assert str(got.value).split("\n")[0] == str(expected.value).split("\n")[0]
    assert torch.equal(s.detach(), before) and s.grad_fn is grad_fn and s._version == version


def test_inplace_on_a_leaf_under_no_grad_writes():
    """An optimizer step: a leaf that requires grad, written with grad mode off."""
    w, step = arg((3, 4)), make((3, 4), f64)
    expected = w.detach() - 0.1 * step
    with torch.no_grad():
        ops.sub_(w, step, alpha=0.1)
    assert_close(w.detach(), expected)
    assert w.grad_fn is None and w.is_leaf


def test_saved_tensor_written_in_place_is_an_error():
    x, w = arg((3, 4)), make((3, 4), f64, nonzero=True)
    y = ops.mul(x, w)  # saves w, for x's gradient
    with torch.no_grad():
        ops.mul_(w, torch.tensor(2.0, dtype=f64))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_mul_inplace_keeps_other_only_where_read():
    """mul_ saves other for self's gradient only: writing other afterwards breaks nothing when self
    needs no gradient (as in torch, which saves per gradient too)."""
    s, other = make((3, 4), f64), arg((4,))
    ops.mul_(s, other)
    with torch.no_grad():
        ops.add_(other, torch.tensor(1.0, dtype=f64))
    (g,) = torch.autograd.grad(s.sum(), other)
    assert g.shape == (4,)


# ---------------------------------------------------------------------------------------------- mse_loss's kept gradient


def _mse_pair(shape_t=(3, 4), target_grad=False):
    a = arg((3, 4))
    t = arg(shape_t) if target_grad else const(shape_t)
    return a, t


def _torch_mse_grads(a, t, reduction, grad=None):
    ra, rt = a.detach().requires_grad_(), t.detach().requires_grad_(t.requires_grad)
    loss = F.mse_loss(ra, rt, reduction={0: "none", 1: "mean", 2: "sum"}[reduction])
    inputs = (ra, rt) if t.requires_grad else (ra,)
    return torch.autograd.grad(loss, inputs, grad)


@pytest.mark.parametrize("reduction", [MEAN, SUM])
@pytest.mark.parametrize("loss_grad", [1.0, 2.5, -0.5])
def test_kept_gradient_scaled_by_the_loss_gradient(reduction, loss_grad):
    a, t = _mse_pair(target_grad=True)
    g = torch.tensor(loss_grad, dtype=f64)
    got = torch.autograd.grad(ops.mse_loss(a, t, reduction), (a, t), g)
    assert_all_close(got, _torch_mse_grads(a, t, reduction, g))


def test_kept_gradient_for_the_target_only():
    t, a = arg((3, 4)), const((3, 4))
    (got,) = torch.autograd.grad(ops.mse_loss(a, t, MEAN), t)
    rt = t.detach().requires_grad_()
    (expected,) = torch.autograd.grad(F.mse_loss(a, rt), rt)
    assert_close(got, expected)


def test_kept_gradient_handed_over_once():
    """A retained graph's second backward computes the gradient afresh: accumulating into .grad
    (which may take the first gradient's memory) changes neither."""
    a, t = _mse_pair()
    loss = ops.mse_loss(a, t, MEAN)
    loss.backward(retain_graph=True)
    first = a.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    (expected,) = _torch_mse_grads(a, t, MEAN)
    assert_close(first, expected)
    assert_close(a.grad, 3 * expected)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


@pytest.mark.parametrize("reduction", [MEAN, SUM])
def test_kept_gradient_with_create_graph(reduction):
    a, t = _mse_pair(target_grad=True)
    ga, gt = torch.autograd.grad(ops.mse_loss(a, t, reduction), (a, t), create_graph=True)
    assert ga.requires_grad and gt.requires_grad
    second = torch.autograd.grad((ga * ga).sum() + gt.sum(), (a, t))
    ra, rt = a.detach().requires_grad_(), t.detach().requires_grad_()
    rga, rgt = torch.autograd.grad(
        F.mse_loss(ra, rt, reduction={1: "mean", 2: "sum"}[reduction]), (ra, rt), create_graph=True
    )
    assert_all_close(second, torch.autograd.grad((rga * rga).sum() + rgt.sum(), (ra, rt)))


def test_kept_gradient_checks_versions():
    a, t = _mse_pair()
    loss = ops.mse_loss(a, t, MEAN)
    with torch.no_grad():
        ops.add_(t, torch.tensor(1.0, dtype=f64))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_mse_loss_and_grad_with_one_output_used():
    a, t = _mse_pair()
    loss, grad = ops.mse_loss_and_grad(a, t, MEAN)
    (from_grad,) = torch.autograd.grad(grad.sum(), a)
    assert_close(from_grad, torch.full((3, 4), 2.0 / 12, dtype=f64))
    loss, grad = ops.mse_loss_and_grad(a, t, MEAN)
    (from_loss,) = torch.autograd.grad(loss, a)
    assert_close(from_loss, _torch_mse_grads(a, t, MEAN)[0])


# ---------------------------------------------------------------------------------------------- the nodes


def test_saved_tensor_hooks_pack_what_the_nodes_save():
    packed = []

    def pack(t):
        packed.append(t.shape)
        return t.clone()

    a, b = arg((3, 4)), arg((4, 2))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = ops.relu(ops.mm(a, b))
    assert torch.Size([3, 4]) in packed and torch.Size([4, 2]) in packed
    ga, gb = torch.autograd.grad(out.sum(), (a, b))
    ra, rb = a.detach().requires_grad_(), b.detach().requires_grad_()
    assert_all_close((ga, gb), torch.autograd.grad(torch.relu(ra @ rb).sum(), (ra, rb)))


def test_saved_variables_released_after_backward():
    a, b = arg((3, 4)), arg((4, 2))
    out = ops.mm(a, b).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()


@pytest.mark.skipif(
    not hasattr(torch.autograd.graph, "node_creation_hook"), reason="this torch has no node-creation hooks"
)
def test_node_creation_hooks_see_the_nodes():
    def names(fn):
        seen = []
        with torch.autograd.graph.node_creation_hook(lambda node: seen.append(node.name())):
            fn()
        return [n for n in seen if n != "torch::autograd::AccumulateGrad"]

    x, y = arg((3, 4)), arg((4,), nonzero=True)
    assert names(lambda: ops.mm(x, arg((4, 2)))) == ["pykernels::autograd::MmBackward"]
    assert names(lambda: ops.exp(x)) == ["pykernels::autograd::ExpBackward"]
    assert names(lambda: ops.add_(ops.neg(x), y)) == [
        "pykernels::autograd::NegBackward",
        "pykernels::autograd::AddInplaceBackward",
    ]
    # A write into a view: the node that the view's base now starts at, as torch's own in-place ops.
    ours = names(lambda: ops.add_(ops.neg(x)[1:], y))
    theirs = names(lambda: torch.neg(x)[1:].add_(y))
    assert ours == ["pykernels::autograd::NegBackward"] + theirs[1:]


def test_deep_graph_is_freed_without_recursion():
    """A chain of many nodes is freed one node at a time, not by recursing once per node."""
    x = arg((1,))
    y = x
    for _ in range(100_000):
        y = ops.neg(y)
    del y  # would overflow the stack if each node freed the next recursively


# ---------------------------------------------------------------------------------------------- profiler

PROFILED = [c for c in CASES if c[0] not in ("relu_backward-result-requires-grad",)]


@pytest.mark.parametrize("name,fn,build", PROFILED, ids=[c[0] for c in PROFILED])
def test_backward_runs_no_aten_compute(name, fn, build):
    inputs = build(torch.float32)
    diff = differentiable(inputs)

    def forward_backward():
        out = fn(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        torch.autograd.grad(out, diff, torch.ones_like(out))

    assert_kernels_only(forward_backward, name)


# ATen's reshape gives this view where it can view (a double backward reshapes tensors that
# require grad): a view, like those ALLOWED_ATEN lists.
RESHAPE_VIEW = {"aten::_reshape_alias"}


def aten_ops_run_by_pykernels(events):
    """The ATen ops run inside a pykernels op or a pykernels node's apply. Not those of torch's
    engine around a node (the events named 'autograd::engine::evaluate_function: <node>'), which
    adds up the gradients that meet at one tensor."""
    inside = set()
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("pykernels::"):
            parent = parent.cpu_parent
        if parent is not None:
            inside.add(e.name)
    return inside


@pytest.mark.parametrize(
    "name,fn,build",
    [c for c in PROFILED if c[0] not in CONSTANT_FIRST_DERIVATIVE],
    ids=[c[0] for c in PROFILED if c[0] not in CONSTANT_FIRST_DERIVATIVE],
)
def test_double_backward_runs_no_aten_compute(name, fn, build):
    """create_graph=True: the backward records the ops' own nodes, and their backward computes
    with pykernels ops too."""
    inputs = build(torch.float32)
    diff = differentiable(inputs)

    def double_backward():
        out = fn(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        grads = torch.autograd.grad(out, diff, torch.ones_like(out), create_graph=True)
        grads = [g for g in grads if g.requires_grad]
        torch.autograd.grad(grads, diff, [torch.ones_like(g) for g in grads], allow_unused=True)

    used = aten_ops_run_by_pykernels(profile(double_backward)) - ALLOWED_ATEN - RESHAPE_VIEW
    assert not used, f"{name}: pykernels ran ATen ops outside the allowlist: {sorted(used)}"


@pytest.mark.parametrize("name,ours,theirs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_backward_runs_no_aten_compute(name, ours, theirs):
    x, y = arg((3, 4), dtype=torch.float32), arg((4,), dtype=torch.float32, nonzero=True)
    scale, grad = make((), torch.float32), make((3, 4), torch.float32)

    def forward_backward():
        z = ops.mul(x, scale)
        ours(z, y)
        torch.autograd.grad(z, (x, y), grad, allow_unused=True)

    assert_kernels_only(forward_backward, name)
