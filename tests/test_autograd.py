"""Autograd and PyTorch-integration checks, on the op database's samples (tests/opdb.py):

- torch.autograd.gradcheck and gradgradcheck (float64) of every differentiable overload, through
  its public function and its raw torch.ops.pykernels overload;
- raw functional ops called on inputs that require grad produce outputs with a grad_fn, and raw
  in-place ops record their write in C++;
- torch.library.opcheck of every registered overload (functional, out=, in-place and number forms);
- torch.compile(fullgraph=True) of a small pykernels model matches eager, forward and backward;
- in-place and out= ops bump the written tensor's version counter, so a stale saved tensor raises;
- alpha given as a numpy number or a 0-dim tensor, as torch takes it;
- the typed bindings the public API calls (pykernels._C.api) are the table's public functions, and leave
  __torch_function__ and fake tensors to torch's own machinery;
- under torch.profiler, forward and backward of every op run no ATen op that computes;
- torch.func transforms of every public function give torch's results.
"""

import shutil
import warnings

import numpy as np
import opdb
import pytest
import torch

import pykernels as pk
from pykernels import _compat, optable
from conftest import assert_close, check_like_torch, leaf, make
from handwritten import (
    assert_kernels_only,
    assert_no_compute_inside_pykernels,
    aten_ops,
    aten_ops_inside_pykernels,
    profile,
)

ops = torch.ops.pykernels

# mse_loss with a broadcast target warns, as torch's does.
pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")


def as_function(sample, how, args, kwargs):
    """(function, inputs): the sample's call as a function of leaf copies of its floating-point
    tensor arguments (strides kept where they are dense), through the public function
    (how="public"), the raw overload ("raw") or torch ("torch"). An in-place form writes a copy
    of its first argument and returns it; the function returns the floating-point results."""
    positions = sample.floating_inputs(args)
    overload = sample.overload

    def fn(*tensors):
        call = list(args)
        for i, t in zip(positions, tensors):
            call[i] = t
        if overload.is_inplace:
            call[0] = call[0].clone()
        if how == "public":
            public, public_args, public_kwargs = sample.public_call(tuple(call), kwargs)
            result = public(*public_args, **public_kwargs)
        elif how == "raw":
            result = overload.resolve()(*call, **kwargs)
        else:
            result = sample.expected(tuple(call), kwargs)
        if overload.is_inplace:
            result = call[0]
        floating = [r for r in (result if isinstance(result, tuple) else (result,)) if r.is_floating_point()]
        return tuple(floating) if len(floating) > 1 else floating[0]

    return fn, [leaf(args[i]) for i in positions]


def ways(sample):
    """How a sample's overload is called: its public function (where it has one) and the raw overload."""
    return (["public"] if sample.overload.public_name else []) + ["raw"]


def params(samples, how=None):
    """pytest parameters (sample, device, how) for every device of each sample and every way to call it."""
    out = []
    for p in opdb.on_devices(samples):
        sample, device = p.values
        for way in [how] if how else ways(sample):
            out.append(pytest.param(sample, device, way, id=f"{way}-{p.id}", marks=p.marks))
    return out


def assert_all_close(actual, expected):
    """assert_close on a tensor or, element by element, on tuples of them."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for got, want in zip(actual, expected):
            assert_all_close(got, want)
    else:
        assert_close(actual, expected)


def built(sample, device):
    ((args, kwargs),) = sample.calls(device, count=1)
    return args, kwargs


# ---------------------------------------------------------------------------------------------- gradcheck

GRAD = opdb.gradcheck_samples()


@pytest.mark.parametrize("sample,device,how", params(GRAD))
def test_gradcheck(sample, device, how):
    fn, inputs = as_function(sample, how, *built(sample, device))
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize(
    "sample,device,how",
    params([s for s in GRAD if s.overload.public_name], how="public")
    + params([s for s in GRAD if s.overload.public_name is None], how="raw"),
)
def test_gradgradcheck(sample, device, how):
    """Second derivatives: backward runs on pykernels ops, which are themselves differentiable; pow
    with a tensor exponent has a first derivative only (one fused kernel), and says so."""
    fn, inputs = as_function(sample, how, *built(sample, device))
    if sample.overload.qualname in FIRST_DERIVATIVE_ONLY:
        with pytest.raises(RuntimeError, match=r"pykernels\.pow: double backward with a tensor exponent"):
            torch.autograd.gradgradcheck(fn, inputs)
        return
    assert torch.autograd.gradgradcheck(fn, inputs)


FIRST_DERIVATIVE_ONLY = {"pow.Tensor_Tensor", "pow.Scalar"}


def test_gradcheck_inplace():
    def f(x, y):
        z = pk.mul(x, 1.5)
        pk.add_(z, y, alpha=2)
        pk.mul_(z, y)
        pk.div_(z, 3.0)
        pk.sub_(z, x)
        pk.neg_(z)
        return pk.relu_(z)

    inputs = (make((3, 4), torch.float64, requires_grad=True), make((4,), torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(f, inputs)
    # mul_ and div_ read self's old value in backward: a double backward must reach its history.
    assert torch.autograd.gradgradcheck(f, inputs)


def test_gradcheck_inplace_on_views():
    """An in-place op on a view of a non-leaf rebases the base's history (torch's CopySlices)."""

    def f(x, y):
        z = pk.mul(x, 1.0)
        pk.mul_(z[1:], y)
        pk.div_(z[:, 0], y[0] + 3.0, rounding_mode=None)
        pk.relu_(z[0])
        return z

    inputs = (make((3, 4), torch.float64, requires_grad=True), make((4,), torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def _first_valid(overload, dtype):
    return next(s for s in opdb.samples_of(overload) if s.dtype == dtype and s.valid)


def _results(result):
    return result if isinstance(result, tuple) else (result,)


INPLACE = [o for o in opdb.OVERLOADS if o.is_inplace and o.differentiable]


@pytest.mark.parametrize("overload", INPLACE, ids=lambda o: o.qualname)
def test_raw_inplace_op_records_its_write(overload):
    """torch.ops.pykernels.<op>_ is differentiable by itself: the write is recorded in C++."""
    sample = _first_valid(overload, torch.float64)
    (args, kwargs), (theirs, their_kwargs) = sample.calls("cpu")
    x = leaf(args[0])
    ours, reference = pk.mul(x, 1.0), x * 1.0
    overload.resolve()(ours, *args[1:], **kwargs)
    sample.expected((reference, *theirs[1:]), their_kwargs)
    assert ours.grad_fn.name().startswith("pykernels::autograd::")
    grad = make(ours.shape, torch.float64)
    (g_ours,) = torch.autograd.grad(ours, x, grad)
    (g_theirs,) = torch.autograd.grad(reference, x, grad)
    assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("sample", [s for s in GRAD if not s.overload.mutating], ids=lambda s: s.id)
def test_raw_op_output_has_grad_fn(sample):
    fn, inputs = as_function(sample, "raw", *built(sample, "cpu"))
    assert all(out.requires_grad and out.grad_fn is not None for out in _results(fn(*inputs)))
    assert not any(out.requires_grad for out in _results(fn(*(x.detach() for x in inputs))))


@pytest.mark.parametrize(
    "name,node,call",
    [
        ("mm", "Mm", lambda x: pk.mm(x, x.t())),
        ("bmm", "Bmm", lambda x: pk.bmm(x[None], x.t()[None])),
        ("relu", "Relu", pk.relu),
        ("relu_backward", "ReluBackward", lambda x: ops.relu_backward(x, pk.relu(x.detach()))),
        ("mse_loss", "MseLoss", lambda x: pk.mse_loss(x, torch.zeros_like(x))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_training_step_ops_record_cpp_nodes(name, node, call):
    """The ops a training step runs record their graph in C++ (csrc/autograd/), with no
    Python formula on the way, and with their autograd nowhere else."""
    x = make((3, 4), requires_grad=True)
    assert call(x).grad_fn.name().startswith(f"pykernels::autograd::{node}")
    assert _compat.has_kernel_for_dispatch_key(f"pykernels::{name}", "Autograd")


def test_raw_mm_has_grad_fn():
    a, b = make((3, 4), requires_grad=True), make((4, 5), requires_grad=True)
    out = ops.mm(a, b)
    assert out.grad_fn is not None
    ga, gb = torch.autograd.grad(out, (a, b), torch.ones(3, 5))
    assert_close(ga, torch.ones(3, 5) @ b.detach().t())
    assert_close(gb, a.detach().t() @ torch.ones(3, 5))


# ---------------------------------------------------------------------------------------------- opcheck

# torch's functionalization (used by test_aot_dispatch_dynamic) does not support custom ops whose
# outputs alias a mutated input ("Tensor(a!)" returns), which the in-place and out= schemas must
# have to mirror torch's add_ / add.out; every other check runs on them.
MUTATING_CHECKS = ("test_schema", "test_autograd_registration", "test_faketensor")


def opcheck_params():
    """Every opcheck sample without grad, and again with its floating-point inputs requiring grad
    where the overload is differentiable (out= and in-place ones are not, on such leaves)."""
    out = []
    for p in opdb.on_devices(opdb.opcheck_samples()):
        sample, device = p.values
        grads = [False] + ([True] if not sample.overload.mutating and sample.dtype.is_floating_point else [])
        out += [
            pytest.param(sample, device, g, id=f"{p.id}-{'requires_grad' if g else 'no_grad'}", marks=p.marks)
            for g in grads
        ]
    return out


@pytest.mark.parametrize("sample,device,requires_grad", opcheck_params())
def test_opcheck(sample, device, requires_grad):
    """Mixed dtypes, broadcasting and transposed inputs make the fake kernels prove their shape,
    dtype and stride rules."""
    args, kwargs = built(sample, device)
    if requires_grad:
        for i in sample.floating_inputs(args):
            args[i].requires_grad_()
    checks = {"test_utils": MUTATING_CHECKS} if sample.overload.mutating else {}
    torch.library.opcheck(sample.overload.resolve(), args, kwargs, **checks)


# ---------------------------------------------------------------------------------------------- torch.compile


needs_compile = pytest.mark.skipif(
    not hasattr(torch, "compile") or not (shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")),
    reason="torch.compile (inductor) is unavailable or has no C compiler",
)
if tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 5):
    # torch 2.4's dynamo stops on the public API's checks of an argument's type (`alpha.__class__ in
    # (int, float, bool)`: "Unsupported: builtin: eq"); 2.14.1 traces them.
    needs_compile = pytest.mark.skip(reason="torch 2.4's torch.compile cannot trace the public API's type checks")


def assert_compiled_matches_eager(fn, inputs, *, grad=False):
    """torch.compile(fn, fullgraph=True) gives eager's result (and input gradients when grad)."""
    torch.compiler.reset()
    compiled = torch.compile(fn, fullgraph=True)
    eager_in = [x.clone().requires_grad_(grad) for x in inputs]
    compiled_in = [x.clone().requires_grad_(grad) for x in inputs]
    expected, actual = fn(*eager_in), compiled(*compiled_in)
    assert_close(actual, expected)
    if grad:
        for got, want in zip(torch.autograd.grad(actual, compiled_in), torch.autograd.grad(expected, eager_in)):
            assert_close(got, want)


@needs_compile
def test_torch_compile_mlp_forward_backward():
    def model(x, w, b, target):
        h = pk.relu(pk.add(pk.mm(x, w), b))
        return pk.add(pk.mse_loss(h, target), pk.mean(pk.sum(h, dim=1)))

    assert_compiled_matches_eager(model, [make((8, 5)), make((5, 3)), make((3,)), make((8, 3))], grad=True)


@needs_compile
def test_torch_compile_other_ops():
    def f(a, b, c, d):
        y = pk.div(pk.sqrt(pk.exp(pk.neg(a))), pk.pow(pk.log(b), 2))
        return pk.sum(pk.matmul(pk.bmm(c, d), pk.sub(y, a)))

    inputs = [make((4, 4)), make((4, 4), positive=True) + 2, make((2, 4, 4)), make((2, 4, 4))]
    assert_compiled_matches_eager(f, inputs, grad=True)


@needs_compile
def test_torch_compile_same_tensor_twice():
    """x * x and x @ x: one tensor passed as both operands."""
    assert_compiled_matches_eager(lambda x: pk.sum(pk.add(pk.mul(x, x), pk.mm(x, x))), [make((4, 4))], grad=True)


@needs_compile
def test_torch_compile_python_scalar_operands():
    def f(x):
        return pk.sum(pk.div(pk.sub(pk.mul(pk.add(x, 1.5), 0.1), 2, alpha=3), 4.0))

    assert_compiled_matches_eager(f, [make((3, 4))], grad=True)


# ---------------------------------------------------------------------------------------------- typed bindings

# pykernels._C.api.<name>: one typed binding per public function (the generated bindings); the
# parity tests (test_ops.py) call each through its public function.
NOT_OPS = {"check_inplace"}  # a helper of the drop-in mode's in-place handlers, not a call of an op


def test_every_typed_binding_is_a_public_function_of_the_table():
    names = {n for n in dir(pk._C.api) if not n.startswith("_")} - NOT_OPS
    assert names == {name for name, _ in optable.public_functions()}


def test_public_api_under_torch_function_mode_goes_through_torch_ops():
    seen = []

    class Record(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    a, b = make((3, 4)), make((4, 2))
    with Record():
        out = pk.relu(pk.add(pk.mm(a, b), 1.5))
    assert_close(out, torch.relu(a @ b + 1.5))
    assert ops.mm.default in seen and ops.add.Scalar in seen and ops.relu.default in seen


def test_public_api_on_a_torch_function_subclass():
    seen = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(func)
            return super().__torch_function__(func, types, args, kwargs or {})

    a, b = make((3, 4)), make((4, 2))
    out = pk.mm(a.as_subclass(Logged), b)
    assert ops.mm.default in seen
    assert_close(out.as_subclass(torch.Tensor), a @ b)


def test_public_api_on_fake_tensors():
    with _compat.fake_tensor_mode():
        x, w, t = torch.empty(64, 1000), torch.empty(100, 1000), torch.empty(64, 100)
        h = pk.relu(pk.add(pk.mm(x, w.t()), 1))
        loss = pk.mse_loss(pk.div(h, 2, rounding_mode="floor"), t)
    assert h.shape == (64, 100) and h.dtype == torch.float32
    assert loss.shape == () and type(loss).__name__ == "FakeTensor"


# ---------------------------------------------------------------------------------------------- version counter

BINARY_INPLACE = [name for name, op in optable.public_functions() if name.endswith("_") and op.kind == "binary"]


@pytest.mark.parametrize("op", BINARY_INPLACE)
def test_inplace_op_bumps_the_version_counter(op):
    """An in-place op under no_grad (an optimizer step) on a tensor saved for backward must make
    that backward fail, as torch's do: the version counter moves."""
    x, w = make((3, 4), requires_grad=True), make((3, 4), nonzero=True)
    y = pk.mul(x, w)  # saves w
    version = w._version
    with torch.no_grad():
        getattr(pk, op)(w, 2.0)
    assert w._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize(
    "overload,how",
    [(o, how) for o in opdb.OVERLOADS if o.mutating for how in (["public"] if o.public_name else []) + ["raw"]],
    ids=lambda v: v if isinstance(v, str) else v.qualname,
)
def test_inplace_and_out_ops_bump_the_version_counter(overload, how):
    sample = _first_valid(overload, torch.float32)
    args, kwargs = built(sample, "cpu")
    written = opdb.written(overload, args, kwargs)
    written = written if isinstance(written, tuple) else (written,)
    versions = [t._version for t in written]
    if how == "public":
        fn, args, kwargs = sample.public_call(args, kwargs)
        fn(*args, **kwargs)
    else:
        overload.resolve()(*args, **kwargs)
    assert all(t._version > v for t, v in zip(written, versions))


# ---------------------------------------------------------------------------------------------- numbers

ALPHA = [name for name, op in optable.public_functions() if "alpha=" in op.public[name][0]]


@pytest.mark.parametrize(
    "alpha",
    [
        np.float64(0.5),
        np.float32(2.5),
        np.int64(3),
        np.bool_(True),
        torch.tensor(2.0),
        torch.tensor(3),
        torch.tensor([2.0]),
    ],
    ids=repr,
)
@pytest.mark.parametrize("op", ALPHA)
def test_alpha_as_numpy_number_or_tensor(op, alpha):
    """torch takes alpha as any number, numpy's and 0-dim tensors included (not as a 1-element
    tensor); the ops' schema takes Python numbers, which the public API hands it."""
    ref = opdb.torch_function(optable.BY_NAME[op.rstrip("_")], op)
    check_like_torch(getattr(pk, op), ref, (make((3, 4)), make((3, 4))), {"alpha": alpha})


# ---------------------------------------------------------------------------------------------- profiler

PROFILED = opdb.profile_samples()


def _threads(sample):
    """The large samples run on two threads, so that the kernels split them."""
    return 2 if "large" in sample.tags else torch.get_num_threads()


def _differentiated(sample):
    return sample.overload.differentiable and sample.dtype.is_floating_point


@pytest.mark.parametrize("sample,device,how", params([s for s in PROFILED if _differentiated(s)]))
def test_profiler_forward_backward_uses_no_aten_compute(sample, device, how):
    """Forward and backward in float32, float16, bfloat16 and float64, with each option, and on
    inputs large enough for two threads: allocation, views and copies only, none of the ATen ops
    the op replaces among them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(_threads(sample))
    try:
        fn, inputs = as_function(sample, how, *built(sample, device))
        grads = [make(out.shape, out.dtype, out.device) for out in _results(fn(*inputs))]

        def forward_backward():
            torch.autograd.grad(fn(*inputs), inputs, grads, allow_unused=True)

        assert_kernels_only(forward_backward, f"{how} {sample.id}", sample.overload.replaces)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("sample,device,how", params([s for s in PROFILED if not _differentiated(s)]))
def test_profiler_non_differentiable_calls_use_no_aten_compute(sample, device, how):
    """out= forms, integer inputs and the ops without a derivative."""
    threads = torch.get_num_threads()
    torch.set_num_threads(_threads(sample))
    try:
        args, kwargs = built(sample, device)
        if how == "public":
            fn, args, kwargs = sample.public_call(args, kwargs)
        else:
            fn = sample.overload.resolve()
        assert_kernels_only(lambda: fn(*args, **kwargs), f"{how} {sample.id}", sample.overload.replaces)
    finally:
        torch.set_num_threads(threads)


def test_profiler_sees_aten_ops():
    """The check above can fail: the same torch computation is visible to the profiler, and an
    ATen op that computes inside a pykernels call is not allowed."""
    a, b = make((3, 4), requires_grad=True), make((4, 2), requires_grad=True)
    events = profile(lambda: torch.autograd.grad(torch.mm(a, b).relu().sum(), (a, b)))
    assert {"aten::mm", "aten::relu", "aten::sum"} <= aten_ops(events)
    with pytest.raises(AssertionError, match="aten::mul"):
        assert_kernels_only(lambda: pk.add(a, 1.0).mul(2), "a call with torch arithmetic")
    with pytest.raises(AssertionError, match=r"ran the ATen ops it replaces: \['aten::mul'\]"):
        assert_kernels_only(lambda: pk.add(a, 1.0).mul(2), "a call with torch arithmetic", {"aten::mul"})

    def torch_inside_a_pykernels_event():
        torch.relu(a)  # outside: not counted
        with torch.profiler.record_function("pykernels::stand_in"):
            pk.add(a, torch.mul(a, 2))

    events = profile(torch_inside_a_pykernels_event)
    assert aten_ops_inside_pykernels(events) >= {"aten::mul", "aten::empty"}
    assert "aten::relu" not in aten_ops_inside_pykernels(events)
    with pytest.raises(AssertionError, match="aten::mul"):
        assert_no_compute_inside_pykernels(events, "a stand-in")


# ---------------------------------------------------------------------------------------------- torch.func

FUNC = [s for s in GRAD if s.overload.public_name and "sweep" in s.tags]


@pytest.mark.parametrize("sample", FUNC, ids=lambda s: s.id)
def test_torch_func_grad_matches_torch(sample):
    """torch.func.grad (to second order where the op has one), vjp and jacrev through every public
    function give torch's results: functorch transforms run through the ops' C++ autograd nodes."""
    (args, kwargs), (theirs, their_kwargs) = sample.calls("cpu")
    fn, inputs = as_function(sample, "public", args, kwargs)
    ref, _ = as_function(sample, "torch", theirs, their_kwargs)
    inputs = [x.detach() for x in inputs]
    argnums = tuple(range(len(inputs)))

    def scalar(f):
        return lambda *xs: f(*xs).sum()

    assert_all_close(torch.func.grad(scalar(fn), argnums)(*inputs), torch.func.grad(scalar(ref), argnums)(*inputs))

    def second(f):
        return torch.func.grad(
            lambda *xs: sum(g.sin().sum() for g in torch.func.grad(scalar(f), argnums)(*xs)), argnums
        )

    if sample.overload.qualname not in FIRST_DERIVATIVE_ONLY:
        assert_all_close(second(fn)(*inputs), second(ref)(*inputs))
    out, vjp = torch.func.vjp(fn, *inputs)
    ref_out, ref_vjp = torch.func.vjp(ref, *inputs)
    cotangent = make(tuple(out.shape), torch.float64)
    assert_all_close(out, ref_out)
    assert_all_close(vjp(cotangent), ref_vjp(cotangent))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There is a performance drop")  # no batching rules: per-sample fallback
        assert_all_close(torch.func.jacrev(fn, argnums)(*inputs), torch.func.jacrev(ref, argnums)(*inputs))


def test_torch_func_inplace_chain_matches_torch():
    """Every in-place op on intermediates, one after another, under the same transforms."""
    x, w = make((5, 3), torch.float64), make((3, 4), torch.float64)

    def fn(w):
        return _inplace_chain(pk, w, x)

    def ref(w):
        return _inplace_chain(None, w, x)

    assert_all_close(torch.func.grad(lambda w: fn(w).sum())(w), torch.func.grad(lambda w: ref(w).sum())(w))

    def second(f):
        return torch.func.grad(lambda w: torch.func.grad(lambda v: f(v).sum())(w).sin().sum())

    assert_all_close(second(fn)(w), second(ref)(w))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There is a performance drop")
        assert_all_close(torch.func.jacrev(fn)(w), torch.func.jacrev(ref)(w))


def _inplace_chain(lib, w, x):
    """Every in-place op on intermediates: pykernels' (lib=pk) or torch's own methods (lib=None)."""
    y, z = pk.mm(x, w) if lib else x @ w, w * 2.0
    if lib:
        lib.add_(y, w[0], alpha=0.5), lib.mul_(y, w[1]), lib.relu_(y)
        lib.neg_(z), lib.div_(z, 3.0), lib.sub_(z, 0.25, alpha=2)
    else:
        y.add_(w[0], alpha=0.5), y.mul_(w[1]), y.relu_()
        z.neg_(), z.div_(3.0), z.sub_(0.25, alpha=2)
    return y + z.sum(dim=0)


def test_torch_func_inplace_checks():
    # Under a transform the in-place ops run as functional op + copy back, with the same checks.
    x = make((5,), torch.float64)

    def int_add_float(x):
        pk.add_(torch.arange(5), 2.5)
        return x.sum()

    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.func.grad(int_add_float)(x)
    with pytest.raises(RuntimeError, match=r"output with shape \[1\] doesn't match the broadcast shape \[5\]"):
        torch.func.grad(lambda x: pk.add_(x[:1] * 1.0, x).sum())(x)


def test_torch_func_inplace_self_operand():
    # q.mul_(q) on an intermediate (torch's own autograd refuses it): q = 9 x^2, gradient 18 x.
    x = make((4,), torch.float64)

    def f(x):
        q = x * 3.0
        return pk.mul_(q, q).sum()

    assert_close(torch.func.grad(f)(x), 18 * x)


def test_torch_func_inplace_under_dropin():
    x, w = make((5, 3), torch.float64), make((3, 4), torch.float64)

    def f(w):
        y = x @ w
        y.add_(1.5).mul_(w[0]).relu_()
        return y.sum()

    expected = torch.func.grad(f)(w)
    with pk.enable() as mode:
        got = torch.func.grad(f)(w)
    assert_close(got, expected)
    assert mode.routed["torch.Tensor.mul_"] == 1


def test_torch_func_vmap():
    x, w = make((6, 3)), make((3, 4))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There is a performance drop")
        got = torch.func.vmap(lambda r: pk.relu(pk.mm(r[None], w)))(x)
    assert_close(got, torch.relu(x @ w)[:, None])
