"""Autograd and PyTorch-integration checks:

- torch.autograd.gradcheck (float64) of every differentiable public function and raw functional op;
- raw functional ops called on inputs that require grad produce outputs with a grad_fn;
- torch.library.opcheck of every registered op (functional, out= and in-place overloads);
- torch.compile(fullgraph=True) of a small pykernels model matches eager, forward and backward;
- in-place and out= ops bump the written tensor's version counter, so a stale saved tensor raises;
- alpha given as a numpy number or a 0-dim tensor, as torch takes it;
- the typed bindings the public API calls (pykernels._C.direct) agree with torch.ops, and leave
  __torch_function__ and fake tensors to torch's own machinery;
- under torch.profiler, forward and backward of every op run no aten op that computes the same thing.
"""
import shutil
import warnings

import numpy as np
import pytest
import torch

import pykernels as pk
from pykernels import _compat
from conftest import assert_close, check_like_torch, make
from handwritten import (
    assert_kernels_only,
    assert_no_compute_inside_pykernels,
    aten_ops,
    aten_ops_inside_pykernels,
    profile,
)

ops = torch.ops.pykernels

# (name, input shapes, keyword arguments, make() options): one differentiable call per row, with
# broadcasting wherever the op broadcasts. Inputs are kept away from kinks (relu at 0) and
# singularities (log/sqrt/div at 0) so finite differences are valid.
DIFFERENTIABLE = [
    ("mm", [(3, 4), (4, 2)], {}, {}),
    ("bmm", [(2, 3, 4), (2, 4, 2)], {}, {}),
    ("matmul", [(2, 1, 3, 4), (3, 4, 2)], {}, {}),
    ("matmul", [(4,), (4,)], {}, {}),
    ("matmul", [(4,), (2, 4, 3)], {}, {}),
    ("matmul", [(2, 3, 4), (4,)], {}, {}),
    ("add", [(3, 1), (1, 4)], {"alpha": 2}, {}),
    ("sub", [(2, 3), (3,)], {"alpha": 0.5}, {}),
    ("mul", [(3, 1), (2, 1, 4)], {}, {}),
    ("div", [(3, 4), (4,)], {}, {"nonzero": True}),
    ("div", [(3, 4), (3, 4)], {"rounding_mode": "floor"}, {"nonzero": True}),
    ("neg", [(3, 4)], {}, {}),
    ("pow", [(3, 4)], {"exponent": 2.5}, {"positive": True}),
    ("pow", [(3, 4)], {"exponent": -2}, {"positive": True}),
    ("exp", [(3, 4)], {}, {}),
    ("log", [(3, 4)], {}, {"positive": True}),
    ("sqrt", [(3, 4)], {}, {"positive": True}),
    ("sum", [(2, 3, 4)], {}, {}),
    ("sum", [(2, 3, 4)], {"dim": (0, -1), "keepdim": True}, {}),
    ("mean", [(2, 3, 4)], {}, {}),
    ("mean", [(2, 3, 4)], {"dim": 1}, {}),
    ("relu", [(3, 4)], {}, {"nonzero": True}),
    ("mse_loss", [(3, 4), (3, 4)], {"reduction": "none"}, {}),
    ("mse_loss", [(3, 4), (3, 4)], {"reduction": "mean"}, {}),
    ("mse_loss", [(3, 4), (3, 4)], {"reduction": "sum"}, {}),
]
REDUCTION_ENUM = {"none": 0, "mean": 1, "sum": 2}


def case_id(case):
    name, shapes, kwargs, _ = case
    shapes_id = "@".join("x".join(map(str, s)) or "0d" for s in shapes)
    return f"{name}-{shapes_id}" + "".join(f"-{k}={v}" for k, v in kwargs.items())


def inputs_for(case, dtype=torch.float64, requires_grad=True):
    _, shapes, _, options = case
    return tuple(make(s, dtype, requires_grad=requires_grad, **options) for s in shapes)


def raw_kwargs(name, kwargs):
    """Keyword arguments for the raw op: mse_loss takes its reduction as torch's enum int."""
    if name == "mse_loss":
        return {"reduction": REDUCTION_ENUM[kwargs["reduction"]]}
    return dict(kwargs)


def public_call(case):
    name, _, kwargs, _ = case
    return lambda *xs: getattr(pk, name)(*xs, **kwargs)


def raw_call(case):
    name, _, kwargs, _ = case
    return lambda *xs: getattr(ops, name)(*xs, **raw_kwargs(name, kwargs))


# ---------------------------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=case_id)
def test_gradcheck_public(case):
    assert torch.autograd.gradcheck(public_call(case), inputs_for(case))


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=case_id)
def test_gradcheck_raw_op(case):
    assert torch.autograd.gradcheck(raw_call(case), inputs_for(case))


@pytest.mark.parametrize("case", [c for c in DIFFERENTIABLE if c[0] in ("mm", "add", "mul", "relu", "mse_loss")],
                         ids=case_id)
def test_gradgradcheck_public(case):
    """Second derivatives (backward runs on pykernels ops, which are themselves differentiable)."""
    assert torch.autograd.gradgradcheck(public_call(case), inputs_for(case))


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


@pytest.mark.parametrize("name", ["add_", "sub_", "mul_", "div_", "neg_", "relu_"])
def test_raw_inplace_op_records_its_write(name):
    """torch.ops.pykernels.<op>_ is differentiable by itself: the write is recorded in C++."""
    x = make((3, 4), torch.float64, requires_grad=True)
    args = () if name in ("neg_", "relu_") else (make((4,), torch.float64, nonzero=True),)
    ours, theirs = pk.mul(x, 1.0), x * 1.0
    getattr(ops, name)(ours, *args)
    getattr(theirs, name)(*args)
    assert ours.grad_fn.name().startswith("torch::autograd::CppNode<pykernels::autograd::")
    grad = make((3, 4), torch.float64)
    (g_ours,) = torch.autograd.grad(ours, x, grad)
    (g_theirs,) = torch.autograd.grad(theirs, x, grad)
    assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=case_id)
def test_raw_op_output_has_grad_fn(case):
    out = raw_call(case)(*inputs_for(case, torch.float32))
    assert out.requires_grad and out.grad_fn is not None
    assert not raw_call(case)(*inputs_for(case, torch.float32, requires_grad=False)).requires_grad


@pytest.mark.parametrize("name,node,call", [
    ("mm", "Mm", lambda x: pk.mm(x, x.t())),
    ("bmm", "Bmm", lambda x: pk.bmm(x[None], x.t()[None])),
    ("relu", "Relu", pk.relu),
    ("relu_backward", "ReluBackward", lambda x: ops.relu_backward(x, pk.relu(x.detach()))),
    ("mse_loss", "MseLoss", lambda x: pk.mse_loss(x, torch.zeros_like(x))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_training_step_ops_record_cpp_nodes(name, node, call):
    """The ops a training step runs record their graph in C++ (csrc/autograd.cpp), with no
    Python formula on the way, and with their autograd nowhere else."""
    x = make((3, 4), requires_grad=True)
    assert call(x).grad_fn.name() == f"torch::autograd::CppNode<pykernels::autograd::{node}>"
    assert _compat.has_kernel_for_dispatch_key(f"pykernels::{name}", "Autograd")


def test_raw_mm_has_grad_fn():
    a, b = make((3, 4), requires_grad=True), make((4, 5), requires_grad=True)
    out = ops.mm(a, b)
    assert out.grad_fn is not None
    ga, gb = torch.autograd.grad(out, (a, b), torch.ones(3, 5))
    assert_close(ga, torch.ones(3, 5) @ b.detach().t())
    assert_close(gb, a.detach().t() @ torch.ones(3, 5))


# ---------------------------------------------------------------------------------------------- opcheck


def t(*shape, dtype=torch.float32, **options):
    return make(shape, dtype, **options)


# Every registered op and overload: (qualified name, function building (args, kwargs) from whether
# floating inputs should require grad). Mixed dtypes and broadcasting make the fake kernels prove
# their shape and dtype rules.
OPCHECK = [
    ("mm.default", lambda g: ((t(3, 4, requires_grad=g), t(4, 5, requires_grad=g)), {})),
    ("bmm.default", lambda g: ((t(2, 3, 4, requires_grad=g), t(2, 4, 5, requires_grad=g)), {})),
    ("matmul.default", lambda g: ((t(2, 1, 3, 4, requires_grad=g), t(3, 4, 5, requires_grad=g)), {})),
    ("add.default", lambda g: ((t(3, 1, requires_grad=g), t(4, dtype=torch.float64, requires_grad=g)), {"alpha": 2})),
    ("add.out", lambda g: ((t(3, 1), t(4)), {"alpha": 2, "out": t(3, 4)})),
    ("add_.default", lambda g: ((t(3, 4), t(4, dtype=torch.int64)), {"alpha": 2})),
    ("sub.default", lambda g: ((t(3, 4, requires_grad=g), t(4, requires_grad=g)), {"alpha": 0.5})),
    ("sub.out", lambda g: ((t(3, 4), t(4)), {"out": t(3, 4)})),
    ("sub_.default", lambda g: ((t(3, 4), t(3, 4)), {"alpha": 3})),
    ("mul.default", lambda g: ((t(3, 4, requires_grad=g), t(2, 1, 4, requires_grad=g)), {})),
    ("mul.default", lambda g: ((t(3, 4, dtype=torch.int32), t(dtype=torch.float64)), {})),
    ("mul.out", lambda g: ((t(3, 4), t(3, 4)), {"out": t(3, 4, dtype=torch.float64)})),
    ("mul_.default", lambda g: ((t(3, 4), t(4)), {})),
    ("div.default", lambda g: ((t(3, 4, requires_grad=g), t(4, nonzero=True, requires_grad=g)), {})),
    ("div.default", lambda g: ((t(3, 4, dtype=torch.int64), t(4, dtype=torch.int64, nonzero=True)), {})),
    ("div.default", lambda g: ((t(3, 4, dtype=torch.int64), t(4, dtype=torch.int64, nonzero=True)),
                               {"rounding_mode": "floor"})),
    ("div.out", lambda g: ((t(3, 4), t(3, 4, nonzero=True)), {"rounding_mode": "trunc", "out": t(3, 4)})),
    ("div_.default", lambda g: ((t(3, 4), t(4, nonzero=True)), {})),
    ("neg.default", lambda g: ((t(3, 4, requires_grad=g),), {})),
    ("neg.default", lambda g: ((t(4, 3, requires_grad=g).t(),), {})),  # fake and real strides must agree
    ("neg.out", lambda g: ((t(3, 4),), {"out": t(3, 4)})),
    ("neg_.default", lambda g: ((t(3, 4),), {})),
    ("pow.default", lambda g: ((t(3, 4, positive=True, requires_grad=g), 2.5), {})),
    ("pow.default", lambda g: ((t(3, 4, dtype=torch.int64), 2), {})),
    ("exp.default", lambda g: ((t(3, 4, requires_grad=g),), {})),
    ("exp.default", lambda g: ((t(3, 4, dtype=torch.int32),), {})),
    ("log.default", lambda g: ((t(3, 4, positive=True, requires_grad=g),), {})),
    ("sqrt.default", lambda g: ((t(3, 4, positive=True, requires_grad=g),), {})),
    ("sum.default", lambda g: ((t(2, 3, 4, requires_grad=g),), {})),
    ("sum.default", lambda g: ((t(2, 3, 4, requires_grad=g), [0, -1], True), {})),
    ("sum.default", lambda g: ((t(2, 3, dtype=torch.int32), [1]), {})),
    ("sum.default", lambda g: ((t(2, 3, requires_grad=g), [0]), {"dtype": torch.float64})),
    ("mean.default", lambda g: ((t(2, 3, 4, requires_grad=g),), {})),
    ("mean.default", lambda g: ((t(2, 3, 4, requires_grad=g), [1], False), {})),
    ("mean.default", lambda g: ((t(2, 3, dtype=torch.int64), [0]), {"dtype": torch.float32})),
    ("relu.default", lambda g: ((t(3, 4, requires_grad=g),), {})),
    ("relu.default", lambda g: ((t(4, 3, requires_grad=g).t(),), {})),
    ("relu_.default", lambda g: ((t(3, 4),), {})),
    ("relu_backward.default", lambda g: ((t(3, 4), torch.relu(t(3, 4))), {})),
    ("relu_and_mask.default", lambda g: ((t(3, 7, requires_grad=g),), {})),
    ("relu_and_mask.default", lambda g: ((t(5, 3, dtype=torch.float64, requires_grad=g).t(),), {})),
    ("relu_mask_backward.default",
     lambda g: ((t(3, 7, requires_grad=g), torch.ops.pykernels.relu_and_mask(t(3, 7))[1]), {})),
    ("mse_loss.default", lambda g: ((t(3, 4, requires_grad=g), t(3, 4, requires_grad=g)), {})),
    ("mse_loss.default", lambda g: ((t(3, 4, requires_grad=g), t(3, 4, requires_grad=g), 0), {})),
    ("mse_loss.default", lambda g: ((t(3, 4, requires_grad=g), t(3, 4, requires_grad=g), 2), {})),
    ("mse_loss_backward.default", lambda g: ((t(), t(3, 4), t(3, 4), 1), {})),
    ("mse_loss_and_grad.default", lambda g: ((t(3, 4, requires_grad=g), t(3, 4, requires_grad=g)), {})),
    ("mse_loss_and_grad.default", lambda g: ((t(3, 4, requires_grad=g), t(4, dtype=torch.float64), 2), {})),
    ("mse_loss_backward.default", lambda g: ((t(3, 4), t(3, 4), t(3, 4), 0), {})),
]
OPCHECK_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(OPCHECK)]


def overload(qualname):
    name, overload_name = qualname.split(".")
    return getattr(getattr(ops, name), overload_name)


def is_mutating(op):
    return any(a.alias_info is not None and a.alias_info.is_write for a in _compat.op_schema(op).arguments)


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no_grad", "requires_grad"])
@pytest.mark.parametrize("qualname,build", OPCHECK, ids=OPCHECK_IDS)
def test_opcheck(qualname, build, requires_grad):
    op = overload(qualname)
    args, kwargs = build(requires_grad)
    test_utils = None
    if is_mutating(op):
        if requires_grad:
            pytest.skip("in-place / out= ops are not differentiable on leaves that require grad")
        # torch's functionalization (used by test_aot_dispatch_dynamic) does not support custom ops
        # whose outputs alias a mutated input ("Tensor(a!)" returns), which these schemas must have
        # to mirror torch's add_ / add.out; every other check runs.
        test_utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    if requires_grad and not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        pytest.skip("no floating-point input to require grad")
    kwargs = dict(kwargs)
    torch.library.opcheck(op, args, kwargs, **({"test_utils": test_utils} if test_utils else {}))


def test_opcheck_transposed_inputs():
    """Fake kernels give the real kernels' output layout for non-contiguous inputs too."""
    xt, pos = t(4, 3).t(), t(4, 3, positive=True).t()
    cases = [("exp", (xt,)), ("log", (pos,)), ("sqrt", (pos,)), ("pow", (xt, 2.0)), ("add", (xt, xt)),
             ("sub", (xt, t(4))), ("mul", (xt, xt)), ("div", (xt, pos)), ("sum", (xt, [0])), ("mean", (xt, [1])),
             ("mm", (xt, t(4, 5))), ("matmul", (xt, t(4, 5))), ("relu_backward", (xt, xt)),
             ("relu_and_mask", (xt,)), ("relu_mask_backward", (xt, torch.ops.pykernels.relu_and_mask(xt)[1])),
             ("mse_loss", (xt, xt, 0)), ("mse_loss_backward", (t(3, 4), xt, xt, 0))]
    for name, args in cases:
        torch.library.opcheck(getattr(ops, name).default, args)


def registered_overloads():
    names = set()
    for qualified in _compat.all_op_names():
        if qualified.startswith("pykernels::"):
            name, _, overload_name = qualified[len("pykernels::"):].partition(".")
            names.add(f"{name}.{overload_name or 'default'}")
    return names


def test_opcheck_covers_every_registered_op():
    covered = {qualname for qualname, _ in OPCHECK}
    missing = registered_overloads() - covered
    assert not missing, f"registered pykernels ops without an opcheck case: {sorted(missing)}"


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

# One call per binding, with the arguments the public API passes: every schema argument, positionally.
DIRECT_CALLS = [
    ("mm", [(3, 4), (4, 5)], []),
    ("bmm", [(2, 3, 4), (2, 4, 5)], []),
    ("matmul", [(2, 3, 4), (4,)], []),
    ("add", [(3, 4), (4,)], [2]),
    ("sub", [(3, 4), (3, 4)], [0.5]),
    ("mul", [(3, 1), (3, 4)], []),
    ("div", [(3, 4), (3, 4)], [None]),
    ("div", [(3, 4), (3, 4)], ["floor"]),
    ("neg", [(5,)], []),
    ("pow", [(3, 4)], [3]),
    ("exp", [(3, 4)], []),
    ("log", [(3, 4)], []),
    ("sqrt", [(3, 4)], []),
    ("relu", [(7, 3)], []),
    ("relu_backward", [(7, 3), (7, 3)], []),
    ("mse_loss", [(6, 2), (6, 2)], [1]),
    ("mse_loss_backward", [(), (6, 2), (6, 2)], [2]),
    ("mse_loss_and_grad", [(6, 2), (6, 2)], [2]),
    ("sum", [(3, 4, 5)], [[0, 2], True, torch.float64]),
    ("sum", [(3, 4)], [None, False, None]),
    ("mean", [(3, 4, 5)], [[1], False, None]),
]


@pytest.mark.parametrize("name,shapes,args", DIRECT_CALLS, ids=lambda v: v if isinstance(v, str) else None)
@pytest.mark.parametrize("below_autograd", [True, False])
def test_direct_binding_matches_torch_ops(name, shapes, args, below_autograd):
    tensors = [make(s, positive=True) for s in shapes]
    direct = getattr(pk._C.direct, name)
    n_tensor_args = len(shapes)
    schema = _compat.op_schema(getattr(ops, name).default).arguments
    kwonly = {a.name for a in schema if a.kwarg_only}
    trailing = [a.name for a in schema[n_tensor_args:]]
    positional = [v for n, v in zip(trailing, args) if n not in kwonly]
    keywords = {n: v for n, v in zip(trailing, args) if n in kwonly}
    expected = getattr(ops, name)(*tensors, *positional, **keywords)
    actual = direct(below_autograd, *tensors, *args)
    for got, want in zip(actual if isinstance(actual, tuple) else [actual],
                         expected if isinstance(expected, tuple) else [expected]):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_direct_inplace_bindings_match_torch_ops():
    for name, extra in [("add_", [2]), ("sub_", [0.5]), ("mul_", []), ("div_", ["trunc"])]:
        a, b = make((4, 5)), make((5,), nonzero=True)
        ours, theirs = a.clone(), a.clone()
        getattr(pk._C.direct, name)(False, ours, b, *extra)
        keywords = {"alpha": extra[0]} if name in ("add_", "sub_") else {"rounding_mode": extra[0]} if extra else {}
        getattr(ops, name)(theirs, b, **keywords)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    for name in ["neg_", "relu_"]:
        a = make((4, 5))
        ours, theirs = a.clone(), a.clone()
        getattr(pk._C.direct, name)(False, ours)
        getattr(ops, name)(theirs)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("name,extra", [("add", [3]), ("sub", [0.5]), ("mul", []), ("div", [None]), ("div", ["floor"]),
                                        ("neg", [])])
def test_direct_out_bindings_match_torch_ops(name, extra):
    a, b = make((4, 5)), make((5,), nonzero=True)
    tensors = (a,) if name == "neg" else (a, b)
    ours, theirs = torch.empty(4, 5), torch.empty(4, 5)
    getattr(pk._C.direct, name + "_out")(False, *tensors, *extra, ours)
    keyword = {"add": "alpha", "sub": "alpha", "div": "rounding_mode"}.get(name)
    getattr(ops, name).out(*tensors, **({keyword: extra[0]} if keyword else {}), out=theirs)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


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
    assert ops.mm.default in seen and ops.add.default in seen and ops.relu.default in seen


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


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
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


@pytest.mark.parametrize("call", [lambda t: pk.relu_(t), lambda t: pk.neg_(t), lambda t: pk.add(t, t, out=t),
                                  lambda t: pk.sub(t, 1, out=t), lambda t: pk.mul(t, t, out=t),
                                  lambda t: pk.div(t, 2, out=t), lambda t: pk.neg(t, out=t)],
                         ids=["relu_", "neg_", "add.out", "sub.out", "mul.out", "div.out", "neg.out"])
def test_unary_inplace_and_out_ops_bump_the_version_counter(call):
    t = make((5,))
    version = t._version
    call(t)
    assert t._version > version


# ---------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("alpha", [np.float64(0.5), np.float32(2.5), np.int64(3), np.bool_(True), torch.tensor(2.0),
                                   torch.tensor(3), torch.tensor([2.0])], ids=repr)
@pytest.mark.parametrize("op", ["add", "sub", "add_", "sub_"])
def test_alpha_as_numpy_number_or_tensor(op, alpha):
    """torch takes alpha as any number, numpy's and 0-dim tensors included (not as a 1-element
    tensor); the ops' schema takes Python numbers, which the public API hands it."""
    ref = getattr(torch.Tensor, op) if op.endswith("_") else getattr(torch, op)
    check_like_torch(getattr(pk, op), ref, (make((3, 4)), make((3, 4))), {"alpha": alpha})


# ---------------------------------------------------------------------------------------------- profiler

# Profiled calls compute in these dtypes and sizes: float32 (3, 4)-sized inputs, float16,
# bfloat16 and float64, and inputs large enough (LARGE_SIDES) that the kernels split them
# across two threads.
PROFILE_VARIANTS = {
    "float32": (torch.float32, False), "float16": (torch.float16, False), "bfloat16": (torch.bfloat16, False),
    "float64": (torch.float64, False), "float32-large-2-threads": (torch.float32, True),
}


# One size for each small side, so that operands stay compatible: (3, 4) becomes (96, 512).
LARGE_SIDES = {1: 1, 2: 8, 3: 96, 4: 512}


def large(shape):
    return tuple(LARGE_SIDES[s] for s in shape)


def in_place_call(name, kwargs):
    """An in-place op applied to a clone of its first input (so it is differentiable)."""
    fn = getattr(pk, name + "_")
    return lambda x, *rest: fn(x.clone(), *rest, **kwargs)


# Extra differentiable calls beyond DIFFERENTIABLE: scalar operands, in-place forms, other options.
PROFILE_EXTRA = [
    ("add-scalar", lambda x: pk.add(x, 2.5), [(3, 4)], {}),
    ("rsub-scalar", lambda x: pk.sub(3, x, alpha=2), [(3, 4)], {}),
    ("mul-scalar", lambda x: pk.mul(x, 3), [(3, 4)], {}),
    ("div-scalar-first", lambda x: pk.div(2.0, x), [(3, 4)], {"nonzero": True}),
    ("div-trunc", lambda x, y: pk.div(x, y, rounding_mode="trunc"), [(3, 4), (4,)], {"nonzero": True}),
    ("mse_loss-broadcast", lambda x, y: pk.mse_loss(x, y), [(3, 4), (4,)], {}),
    ("mean-dtype", lambda x: pk.mean(x, dtype=torch.float64), [(3, 4)], {}),
    ("sum-dim-list", lambda x: pk.sum(x, [0, 1]), [(3, 4, 2)], {}),
] + [
    (f"{name}_", in_place_call(name, kwargs), [(3, 4), (4,)], {"nonzero": True})
    for name, kwargs in [("add", {"alpha": 2}), ("sub", {}), ("mul", {}), ("div", {}), ("div", {"rounding_mode": "floor"})]
] + [
    ("neg_", in_place_call("neg", {}), [(3, 4)], {}),
    ("relu_", in_place_call("relu", {}), [(3, 4)], {"nonzero": True}),
]
PROFILE_CASES = (
    [(f"public-{case_id(c)}", public_call(c), c[1], c[3]) for c in DIFFERENTIABLE]
    + [(f"raw-{case_id(c)}", raw_call(c), c[1], c[3]) for c in DIFFERENTIABLE]
    + PROFILE_EXTRA
)


@pytest.mark.parametrize("variant", PROFILE_VARIANTS)
@pytest.mark.parametrize("what,fn,shapes,options", PROFILE_CASES, ids=[c[0] for c in PROFILE_CASES])
def test_profiler_forward_backward_uses_no_aten_compute(what, fn, shapes, options, variant):
    dtype, is_large = PROFILE_VARIANTS[variant]
    threads = torch.get_num_threads()
    if is_large:
        shapes = [large(s) for s in shapes]
        torch.set_num_threads(2)
    try:
        inputs = [make(s, dtype, requires_grad=True, **options) for s in shapes]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # mse_loss with a broadcast target warns
            out = fn(*inputs)
            grad_out = make(out.shape, out.dtype)

            def forward_backward():
                torch.autograd.grad(fn(*inputs), inputs, grad_out)

            assert_kernels_only(forward_backward, f"{what} ({variant})")
    finally:
        torch.set_num_threads(threads)


NO_GRAD_CALLS = [
    ("add.out", lambda x, y: pk.add(x, y, alpha=2, out=torch.empty(3, 4))),
    ("sub.out", lambda x, y: pk.sub(x, y, out=torch.empty(3, 4))),
    ("mul.out", lambda x, y: pk.mul(x, y, out=torch.empty(3, 4))),
    ("div.out", lambda x, y: pk.div(x, y, rounding_mode="floor", out=torch.empty(3, 4))),
    ("neg.out", lambda x, y: pk.neg(x, out=torch.empty(3, 4))),
    ("raw add.out", lambda x, y: ops.add.out(x, y, out=torch.empty(3, 4))),
    ("raw neg.out", lambda x, y: ops.neg.out(x, out=torch.empty(3, 4))),
    ("raw add_", lambda x, y: ops.add_(x, y)),
    ("raw sub_", lambda x, y: ops.sub_(x, y)),
    ("raw mul_", lambda x, y: ops.mul_(x, y)),
    ("raw div_", lambda x, y: ops.div_(x, y)),
    ("raw neg_", lambda x, y: ops.neg_(x)),
    ("raw relu_", lambda x, y: ops.relu_(x)),
    ("relu_backward", lambda x, y: ops.relu_backward(x, y)),
    ("mse_loss_backward", lambda x, y: ops.mse_loss_backward(torch.tensor(2.0), x, y, 1)),
    ("int add", lambda x, y: pk.add(x.long(), 3)),
    ("int sum", lambda x, y: pk.sum(x.long(), 0)),
    ("int matmul", lambda x, y: pk.matmul(x.long(), y.long().t())),
]


@pytest.mark.parametrize("what,fn", NO_GRAD_CALLS, ids=[c[0] for c in NO_GRAD_CALLS])
def test_profiler_non_differentiable_calls_use_no_aten_compute(what, fn):
    x, y = make((3, 4), nonzero=True), make((4,), nonzero=True).expand(3, 4).contiguous()
    assert_kernels_only(lambda: fn(x, y), what)


def test_profiler_sees_aten_ops():
    """The check above can fail: the same torch computation is visible to the profiler, and an
    ATen op that computes inside a pykernels call is not allowed."""
    a, b = make((3, 4), requires_grad=True), make((4, 2), requires_grad=True)
    events = profile(lambda: torch.autograd.grad(torch.mm(a, b).relu().sum(), (a, b)))
    assert {"aten::mm", "aten::relu", "aten::sum"} <= aten_ops(events)
    with pytest.raises(AssertionError, match="aten::mul"):
        assert_kernels_only(lambda: pk.add(a, 1.0).mul(2), "a call with torch arithmetic")

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

# (id, pykernels function of w, its torch twin); x and t are fixed float64 inputs.
FUNC_CASES = [
    ("mm", lambda w, x, t: pk.mm(x, w), lambda w, x, t: x @ w),
    ("bmm", lambda w, x, t: pk.bmm(x.expand(2, 5, 3), w.expand(2, 3, 4)),
     lambda w, x, t: torch.bmm(x.expand(2, 5, 3), w.expand(2, 3, 4))),
    ("matmul", lambda w, x, t: pk.matmul(x, w), lambda w, x, t: torch.matmul(x, w)),
    ("relu", lambda w, x, t: pk.relu(pk.mm(x, w)), lambda w, x, t: torch.relu(x @ w)),
    ("mse_loss", lambda w, x, t: pk.mse_loss(pk.mm(x, w), t), lambda w, x, t: torch.nn.functional.mse_loss(x @ w, t)),
    ("mse_loss sum", lambda w, x, t: pk.mse_loss(pk.mm(x, w), t, reduction="sum"),
     lambda w, x, t: torch.nn.functional.mse_loss(x @ w, t, reduction="sum")),
    ("elementwise", lambda w, x, t: pk.div(pk.mul(pk.add(w, 1.5, alpha=2), pk.sub(w, 0.3)), pk.add(pk.exp(w), 1)),
     lambda w, x, t: torch.div(torch.mul(torch.add(w, 1.5, alpha=2), torch.sub(w, 0.3)), torch.add(torch.exp(w), 1))),
    ("pow sqrt log neg", lambda w, x, t: pk.neg(pk.log(pk.sqrt(pk.add(pk.pow(w, 2), 1)))),
     lambda w, x, t: torch.neg(torch.log(torch.sqrt(torch.add(torch.pow(w, 2), 1))))),
    ("sum mean", lambda w, x, t: pk.mean(pk.sum(pk.mm(x, w), dim=0, keepdim=True)),
     lambda w, x, t: torch.mean(torch.sum(x @ w, dim=0, keepdim=True))),
    ("in-place", lambda w, x, t: _inplace_chain(pk, w, x), lambda w, x, t: _inplace_chain(None, w, x)),
]


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


@pytest.mark.parametrize("name,fn,ref", FUNC_CASES, ids=[c[0] for c in FUNC_CASES])
def test_torch_func_grad_matches_torch(name, fn, ref):
    """torch.func.grad (to second order), vjp and jacrev through pykernels ops give torch's results:
    under functorch transforms the ops run through their setup_context Functions (functorch
    refuses C++ autograd Functions and torch.library's registered autograd)."""
    x, w, t = make((5, 3), torch.float64), make((3, 4), torch.float64), make((5, 4), torch.float64)
    scalar = lambda f: (lambda w: f(w, x, t).sum())  # noqa: E731
    assert_close(torch.func.grad(scalar(fn))(w), torch.func.grad(scalar(ref))(w))
    second = lambda f: torch.func.grad(lambda w: torch.func.grad(scalar(f))(w).sin().sum())  # noqa: E731
    assert_close(second(fn)(w), second(ref)(w))
    out, vjp = torch.func.vjp(lambda w: fn(w, x, t), w)
    ref_out, ref_vjp = torch.func.vjp(lambda w: ref(w, x, t), w)
    cotangent = make(tuple(out.shape), torch.float64)
    assert_close(out, ref_out)
    assert_close(vjp(cotangent)[0], ref_vjp(cotangent)[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "There is a performance drop")  # no batching rules: per-sample fallback
        assert_close(torch.func.jacrev(lambda w: fn(w, x, t))(w), torch.func.jacrev(lambda w: ref(w, x, t))(w))


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
