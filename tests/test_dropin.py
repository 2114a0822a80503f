"""The drop-in mode (pykernels.dropin) and ``python -m pykernels run``.

- every covered torch call (the op table's routes, on the op database's samples: functions, Tensor
  methods, operators, in-place operators; and beyond the table nn.functional, optimizer
  arithmetic, torch._foreach_*) is routed to pykernels: same result as torch, forward and
  backward, no covered ATen op under the profiler, and counted as routed;
- what is not covered, or called with arguments pykernels does not take, falls through to torch
  unchanged (torch's result, torch's errors) and is counted as such;
- the tutorials' training loops (tests/scripts/tutorial_*.py) run under the mode with no covered
  ATen compute left, and print the losses torch prints;
- the report lists the routed calls and the compute that fell through, with their calls (and
  times, when the mode times them) in aligned columns, and leaves bookkeeping out of the list;
- ``python -m pykernels run SCRIPT ARGS`` gives the script its argv, __main__ and exit status and
  prints the routing report to stderr.
"""

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys

import opdb
import pytest
import torch

import pykernels
from pykernels import dropin, optable
from pykernels.__main__ import main
from conftest import accum_tol, assert_close, make
from handwritten import (
    FORBIDDEN,
    assert_no_compute_inside_pykernels,
    aten_ops,
    aten_ops_run_by,
    profile,
)

F = torch.nn.functional
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "scripts")
ROOT = os.path.dirname(HERE)

# Whole training loops: see conftest.one_thread.
pytestmark = pytest.mark.usefixtures("one_thread")


def covered_aten_ops(fn, what):
    """Runs fn under the profiler: the covered ATen ops that ran (handwritten.FORBIDDEN: none may
    run under the mode). Inside the pykernels ops that ran, only allocation, view, copy and fill
    ops may appear (handwritten.ALLOWED_ATEN)."""
    events = profile(fn)
    assert_no_compute_inside_pykernels(events, what)
    return aten_ops(events) & FORBIDDEN


def under_mode(fn):
    """Runs fn under the mode and the profiler: (fn's result, the mode, the covered ATen ops that ran)."""
    result = []
    mode = dropin.enable()

    def run():
        with mode:
            result.append(fn())

    used = covered_aten_ops(run, "under the mode")
    return result[0], mode, used


# ---------------------------------------------------------------------------------------------- routed calls


def in_place(name):
    """Whether a torch callable writes its first argument: Tensor.add_, Tensor.__iadd__."""
    last = name.rsplit(".", 1)[1]
    return last.startswith("__i") or (last.endswith("_") and not last.endswith("__"))


def applies(fn, sample):
    """Whether torch's callable takes the sample's arguments as the public function's (torch.true_divide
    takes no rounding_mode, a Tensor method no number first)."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(0)
        args, kwargs = opdb.public_arguments(sample.overload, *sample.build("cpu"))
    try:
        return fn(*args, **kwargs) is not NotImplemented  # a Tensor method given a number first
    except (TypeError, RuntimeError):
        return False


def table_routes():
    """(torch callable, sample) for every torch callable of the op table, on the float32 samples of
    its op's public functions (functional or in-place like the callable) that it takes: every
    dtype's basic sample, the options and the number forms."""
    params = []
    for op in optable.OPS:
        for name in op.torch:
            fn = opdb.resolve(name)
            for overload in opdb.public_overloads():
                if overload.op is not op or overload.is_out or overload.public_name.endswith("_") != in_place(name):
                    continue
                for sample in opdb.samples_of(overload):
                    if sample.dtype == torch.float32 and sample.tags & {"sweep", "option"} and applies(fn, sample):
                        params.append(pytest.param(name, sample, id=f"{name}-{sample.id}"))
    return params


def routed(mode, name):
    """Whether the mode routed the call (an operator may count under its method's name: a + b as
    torch.Tensor.add) and nothing covered fell through."""
    return sum(mode.routed.values()) >= 1 and name not in mode.fell_through and not mode.fell_through_reasons()


def leaves(args):
    return [x.clone().requires_grad_() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in args]


@pytest.mark.parametrize("name,sample", table_routes())
def test_table_routes_like_torch(name, sample):
    """Forward and backward (in place: on a non-leaf) as torch computes them, on pykernels only."""
    if torch.__version__ < "2.5" and name == "torch.pow" and any(a is True for a in sample.build("cpu")[0]):
        pytest.skip("torch 2.4's own backward of pow(True, tensor) fails an internal assert (unknown ivalue tag)")
    fn = opdb.resolve(name)
    calls = sample.calls("cpu")
    (args, kwargs), (theirs, their_kwargs) = (opdb.public_arguments(sample.overload, *call) for call in calls)
    tolerance = accum_tol(torch.float32, opdb.reduced_count(sample, args, kwargs))
    if in_place(name):
        target = args[0]
        out, mode, used = under_mode(lambda: fn(target, *args[1:], **kwargs))
        assert not used, f"{name} ran torch ops {sorted(used)} under the mode"
        assert routed(mode, name), mode.report()
        assert out is target, "an in-place call must return the tensor itself"
        assert_close(target, fn(*theirs, **their_kwargs), **tolerance)
        ours, reference = leaves(args[:1]) + list(args[1:]), leaves(theirs[:1]) + list(theirs[1:])

        def call(xs):
            return fn(xs[0] * 1, *xs[1:], **kwargs)
    else:
        ours, reference = leaves(args), leaves(theirs)

        def call(xs):
            return fn(*xs, **kwargs)

    expected = call(reference)
    grad = make(expected.shape)

    def forward_backward():
        out = call(ours)
        if out.requires_grad:
            out.backward(grad)
        return out

    out, mode, used = under_mode(forward_backward)
    assert not used, f"{name} ran torch ops {sorted(used)} under the mode"
    assert routed(mode, name), mode.report()
    assert_close(out.detach(), expected.detach(), **tolerance)
    if expected.requires_grad:
        expected.backward(grad)
        for x, y in zip(ours, reference):
            if isinstance(y, torch.Tensor) and y.grad is not None:
                assert_close(x.grad, y.grad, **tolerance)


POS = dict(positive=True)
NZ = dict(nonzero=True)

# Beyond the table's routes: (id, function of the inputs, input shapes, make() options, the torch
# function it must be routed as): compositions of pykernels ops, and spellings of table routes
# that the samples do not use (a positional dim, numpy's axis).
ROUTED = [
    ("__rmatmul__", lambda a, b: b.__rmatmul__(a), [(3, 4), (4, 5)], {}, "torch.Tensor.__rmatmul__"),
    ("torch.mv", lambda a, b: torch.mv(a, b), [(3, 4), (4,)], {}, "torch.mv"),
    ("torch.dot", lambda a, b: torch.dot(a, b), [(4,), (4,)], {}, "torch.dot"),
    ("torch.addmm", lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2), [(5,), (3, 4), (4, 5)], {}, "torch.addmm"),
    ("F.linear", lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (5, 4), (5,)], {}, "torch.nn.functional.linear"),
    ("F.linear-2d-nobias", lambda x, w: F.linear(x, w), [(3, 4), (5, 4)], {}, "torch.nn.functional.linear"),
    ("scalar-", lambda a: 3 - a, [(3, 4)], {}, "torch.Tensor.__rsub__"),
    ("torch.rsub", lambda a, b: torch.rsub(a, b, alpha=2), [(3, 4), (3, 4)], {}, "torch.rsub"),
    ("scalar/", lambda a: 2 / a, [(3, 4)], NZ, "torch.Tensor.__rdiv__"),
    ("torch.square", lambda a: torch.square(a), [(3, 4)], {}, "torch.square"),
    ("Tensor.sum-axis", lambda a: a.sum(axis=0), [(3, 4)], {}, "torch.Tensor.sum"),
    ("Tensor.mean-positional-dim", lambda a: a.mean(0), [(3, 4)], {}, "torch.Tensor.mean"),
    ("torch.sum-positional-dim", lambda a: torch.sum(a, 1, keepdim=True), [(3, 4, 2)], {}, "torch.sum"),
    ("F.relu", lambda a: F.relu(a), [(3, 4)], NZ, "torch.nn.functional.relu"),
    ("Tensor.clamp-min0", lambda a: a.clamp(min=0), [(3, 4)], NZ, "torch.Tensor.clamp"),
    ("torch.clamp-0", lambda a: torch.clamp(a, 0), [(3, 4)], NZ, "torch.clamp"),
    ("torch.clip-min0", lambda a: torch.clip(a, min=0.0), [(3, 4)], NZ, "torch.clip"),
    ("Tensor.clamp_min", lambda a: a.clamp_min(0), [(3, 4)], NZ, "torch.Tensor.clamp_min"),
    ("torch.lerp", lambda a, b: torch.lerp(a, b, 0.3), [(3, 4), (3, 4)], {}, "torch.lerp"),
    ("Tensor.lerp-high", lambda a, b: a.lerp(b, 0.75), [(3, 4), (3, 4)], {}, "torch.Tensor.lerp"),
    ("torch.addcmul", lambda a, b, c: torch.addcmul(a, b, c, value=0.5), [(3, 4), (3, 4), (4,)], {}, "torch.addcmul"),
    ("torch.addcdiv", lambda a, b, c: torch.addcdiv(a, b, c, value=-2), [(3, 4), (3, 4), (3, 4)], NZ, "torch.addcdiv"),
]


@pytest.mark.parametrize("what,fn,shapes,options,name", ROUTED, ids=[c[0] for c in ROUTED])
def test_routed_forward_and_backward_like_torch(what, fn, shapes, options, name):
    inputs = [make(s, **options) for s in shapes]
    ours = [x.clone().requires_grad_() for x in inputs]
    theirs = [x.clone().requires_grad_() for x in inputs]
    expected = fn(*theirs)
    grad = make(expected.shape)

    def forward_backward():
        out = fn(*ours)
        if out.requires_grad:
            out.backward(grad)
        return out

    out, mode, used = under_mode(forward_backward)
    assert not used, f"{what} ran torch ops {sorted(used)} under the mode"
    assert mode.routed[name] >= 1, f"{what} was not routed as {name}: routed {dict(mode.routed)}"
    assert not mode.fell_through_reasons(), mode.report()
    tolerance = accum_tol(torch.float32, max(s[-1] for s in shapes))
    assert_close(out.detach(), expected.detach(), **tolerance)
    if expected.requires_grad:
        expected.backward(grad)
        for x, y in zip(ours, theirs):
            if y.grad is not None:
                assert_close(x.grad, y.grad, **tolerance)


def _ipow(x, b):
    x **= 2
    return x


# Beyond the table's routes: (id, in-place function of (x, b, c), make() options).
IN_PLACE = [
    ("**=", lambda x, b, c: _ipow(x, b), {}),
    ("F.relu-inplace", lambda x, b, c: F.relu(x, inplace=True), NZ),
    ("clamp_", lambda x, b, c: x.clamp_(min=0), NZ),
    ("pow_", lambda x, b, c: x.pow_(2), {}),
    ("sqrt_", lambda x, b, c: x.sqrt_(), POS),
    ("exp_", lambda x, b, c: x.exp_(), {}),
    ("log_", lambda x, b, c: x.log_(), POS),
    ("lerp_", lambda x, b, c: x.lerp_(b, 0.1), {}),
    ("lerp_-high", lambda x, b, c: x.lerp_(b, 0.9), {}),
    ("addcmul_", lambda x, b, c: x.addcmul_(b, c, value=0.25), {}),
    ("addcdiv_", lambda x, b, c: x.addcdiv_(b, c, value=-0.5), NZ),
]


@pytest.mark.parametrize("what,fn,options", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_in_place_routed_like_torch(what, fn, options):
    x, b, c = (make((3, 4), **options) for _ in range(3))
    expected = fn(x.clone(), b, c)
    target = x.clone()
    out, mode, used = under_mode(lambda: fn(target, b, c))
    assert not used, f"{what} ran torch ops {sorted(used)} under the mode"
    assert out is target, "an in-place call must return the tensor itself"
    assert sum(mode.routed.values()) >= 1 and not mode.fell_through_reasons(), mode.report()
    assert_close(target, expected)


@pytest.mark.parametrize("what,fn,options", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_in_place_on_a_non_leaf_backpropagates_like_torch(what, fn, options):
    x, b, c = (make((3, 4), **options) for _ in range(3))
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = make((3, 4))
    fn(theirs * 1, b, c).backward(grad)
    _, _, used = under_mode(lambda: fn(ours * 1, b, c).backward(grad))
    assert not used, f"{what} ran torch ops {sorted(used)} under the mode"
    assert_close(ours.grad, theirs.grad)


def test_parameter_updates_under_no_grad_keep_the_parameter():
    w = torch.nn.Parameter(make((4, 3)))
    w.grad = make((4, 3))
    expected = w.detach() - 0.1 * w.grad
    param = w

    def update():
        nonlocal w
        with torch.no_grad():
            w -= 0.1 * w.grad
            w *= 1.0
            w += 0.0
            w /= 1.0

    _, mode, used = under_mode(update)
    assert not used, sorted(used)
    assert w is param and isinstance(w, torch.nn.Parameter) and w.requires_grad and w.is_leaf
    assert_close(w.detach(), expected)
    assert mode.routed["torch.Tensor.sub_"] == 1 and mode.routed["torch.Tensor.mul"] == 1


def test_in_place_on_a_leaf_that_requires_grad_raises_torchs_error():
    w = make((3,)).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.add_(1)
    with dropin.enable(), pytest.raises(RuntimeError, match="leaf Variable"):
        w.add_(1)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x.clamp(min=0),
        lambda x: x.clamp_min(0),
        lambda x: x.relu(),
        lambda x: (x * 1).clamp_(min=0),
        lambda x: F.relu(x * 1, inplace=True),
    ],
    ids=["clamp", "clamp_min", "relu", "clamp_", "relu-inplace"],
)
def test_gradient_at_zero_like_torch(fn):
    """At exactly 0, the gradient of clamp(min=0) and relu is torch's (0 in current torch, for both)."""
    x = torch.tensor([-1.0, 0.0, 0.0, 2.0])
    grad = torch.tensor([1.0, 2.0, 3.0, 4.0])
    theirs, ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    fn(theirs).backward(grad)
    if theirs.grad[1] != 0:
        pytest.skip(
            f"torch {torch.__version__}'s clamp passes the gradient at the bound; pykernels gives relu's 0, "
            "as torch 2.14.1 does for both"
        )
    _, _mode, used = under_mode(lambda: fn(ours).backward(grad))
    assert not used, sorted(used)
    assert torch.equal(ours.grad, theirs.grad), (ours.grad, theirs.grad)


def test_integer_and_mixed_dtypes_follow_torch():
    i = torch.arange(-5, 7).reshape(3, 4)
    f = make((3, 4))
    cases = [
        lambda: i + 2,
        lambda: i * 2.5,
        lambda: i / 2,
        lambda: i.sum(),
        lambda: i + f,
        lambda: i.clamp(min=0),
        lambda: i.clamp(min=0.0),
        lambda: (i > 0) + (i < 2),
        lambda: i @ i.t(),
        lambda: i**2,
    ]
    for case in cases:
        expected = case()
        with dropin.enable():
            out = case()
        assert out.dtype == expected.dtype, (out.dtype, expected.dtype)
        assert torch.equal(out, expected)


# ---------------------------------------------------------------------------------------------- falls through

# (A tensor exponent and a number base are the table's pow.Tensor_Tensor and pow.Scalar: routed.)
FALL_THROUGH = [
    ("torch.sin", lambda a, b: torch.sin(a), None),
    ("clamp min=0.5", lambda a, b: a.clamp(min=0.5), "clamp other than min=0"),
    ("clamp min and max", lambda a, b: a.clamp(min=0, max=1), "clamp other than min=0"),
    ("mm out=", lambda a, b: torch.mm(a, b.t(), out=torch.empty(3, 3)), "arguments"),
    ("complex", lambda a, b: torch.complex(a, b) + 1, "torch.complex64 tensor"),
    ("complex128", lambda a, b: a.to(torch.complex128) + 1, "torch.complex128 tensor"),
    ("sparse", lambda a, b: (a.to_sparse() * 2).to_dense(), "torch.sparse_coo tensor"),
    ("weighted mse_loss", lambda a, b: F.mse_loss(a, b, weight=torch.ones(3, 4)), "weighted mse_loss"),
]


@pytest.mark.parametrize("what,fn,reason", FALL_THROUGH, ids=[c[0] for c in FALL_THROUGH])
def test_uncovered_calls_fall_through_to_torch(what, fn, reason):
    a, b = make((3, 4)), make((3, 4))
    try:
        expected = fn(a, b)
    except TypeError as exc:  # an argument this torch version does not have
        pytest.skip(f"torch does not take it: {exc}")
    with dropin.enable() as mode:
        out = fn(a, b)
    assert_close(out, expected)
    assert sum(mode.fell_through.values()) >= 1
    if reason is not None:
        reasons = {r for (_, r) in mode.fell_through_reasons()}
        assert reason in reasons, reasons


def test_torch_errors_surface_unchanged():
    a, b = make((3, 4)), make((5, 6))
    with pytest.raises(RuntimeError) as expected:
        torch.mm(a, b)
    with dropin.enable() as mode, pytest.raises(RuntimeError) as raised:
        torch.mm(a, b)
    assert str(raised.value) == str(expected.value)
    assert any(r.startswith("pykernels raised") for (_, r) in mode.fell_through_reasons())


def test_mode_is_off_outside_the_block():
    a, b = make((3, 4)), make((4, 5))
    with dropin.enable():
        pass
    assert "aten::mm" in aten_ops_run_by(lambda: torch.mm(a, b))


def test_tensor_subclasses_fall_through():
    class Sub(torch.Tensor):
        pass

    a = make((2, 2)).as_subclass(Sub)
    with dropin.enable() as mode:
        out = a + 1
    assert type(out) is Sub
    assert mode.routed["torch.Tensor.add"] == 0


# ---------------------------------------------------------------------------------------------- optimizers

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD-momentum", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("foreach", [False, True], ids=["per-tensor", "foreach"])
@pytest.mark.parametrize("name,options", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_steps_routed_and_equal(name, options, foreach):
    cls = getattr(torch.optim, name.split("-")[0])
    start = [make((5, 4)), make((4,))]
    grads = [[make((5, 4)), make((4,))] for _ in range(3)]

    def train(under):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = cls(params, foreach=foreach, **options)
        for g in grads:
            for p, gi in zip(params, g):
                p.grad = gi.clone()
            with under:
                opt.step()
        return params

    expected = train(contextlib.nullcontext())
    mode = dropin.enable()
    result = []
    used = covered_aten_ops(lambda: result.append(train(mode)), name)
    params = result[0]
    assert not used, f"{name} ran torch ops {sorted(used)} under the mode"
    assert not mode.fell_through_reasons(), mode.report()
    for p, q in zip(params, expected):
        assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_foreach_functions_routed():
    xs, ys, zs = ([make((3, 2), nonzero=True), make((4,), nonzero=True)] for _ in range(3))

    def calls(xs, ys, zs):
        xs = [x.clone() for x in xs]
        torch._foreach_add_(xs, ys, alpha=2)
        torch._foreach_mul_(xs, 0.5)
        torch._foreach_addcdiv_(xs, ys, zs, [0.1, -0.2])
        torch._foreach_lerp_(xs, ys, 0.25)
        out = torch._foreach_sqrt(torch._foreach_mul(xs, xs))
        torch._foreach_div_(out, torch.tensor(2.0))
        return out + torch._foreach_neg(ys)

    expected = calls(xs, ys, zs)
    got, mode, used = under_mode(lambda: calls(xs, ys, zs))
    assert not used, sorted(used)
    assert not mode.fell_through_reasons(), mode.report()
    assert mode.routed["torch._foreach_addcdiv_"] == 1
    for a, b in zip(got, expected):
        assert_close(a, b)


# ---------------------------------------------------------------------------------------------- the tutorials

TUTORIALS = [
    (
        "tensors",
        "tutorial_tensors.py",
        [],
        {
            "torch.Tensor.mm",
            "torch.Tensor.clamp",
            "torch.Tensor.pow",
            "torch.Tensor.sum",
            "torch.Tensor.sub",
            "torch.Tensor.mul",
            "torch.Tensor.sub_",
        },
    ),
    (
        "autograd",
        "tutorial_autograd.py",
        [],
        {"torch.Tensor.mm", "torch.Tensor.clamp", "torch.Tensor.pow", "torch.Tensor.sum", "torch.Tensor.sub_"},
    ),
    (
        "nn",
        "tutorial_nn.py",
        [],
        {"torch.nn.functional.linear", "torch.nn.functional.relu", "torch.nn.functional.mse_loss", "torch.Tensor.sub_"},
    ),
    # an optimizer's step is one routed call, named after the torch.optim function it replaces
    ("optim-sgd", "tutorial_optim.py", ["--sgd"], {"torch.nn.functional.linear", "torch.optim.sgd._single_tensor_sgd"}),
    ("optim-adam", "tutorial_optim.py", ["--adam"], {"torch.optim.adam._single_tensor_adam"}),
    ("optim-sgd-foreach", "tutorial_optim.py", ["--sgd", "--foreach"], {"torch.optim.sgd._multi_tensor_sgd"}),
    ("optim-adam-foreach", "tutorial_optim.py", ["--adam", "--foreach"], {"torch.optim.adam._multi_tensor_adam"}),
    (
        "module",
        "tutorial_module.py",
        [],
        {
            "torch.nn.functional.linear",
            "torch.Tensor.clamp",
            "torch.nn.functional.mse_loss",
            "torch.optim.sgd._single_tensor_sgd",
        },
    ),
]
TUTORIAL_ITERS = 4


def run_tutorial(script, args, mode=None):
    """Runs a tutorial script in this process (as __main__), returns its printed losses."""
    path = os.path.join(SCRIPTS, script)
    saved = sys.argv[:]
    sys.argv = [path, str(TUTORIAL_ITERS), *args]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), mode or contextlib.nullcontext():
            runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved
    return [float(line.split()[1]) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("what,script,args,names", TUTORIALS, ids=[t[0] for t in TUTORIALS])
def test_tutorial_runs_on_pykernels_only(what, script, args, names):
    expected = run_tutorial(script, args)
    mode = dropin.enable()
    losses = []
    used = covered_aten_ops(lambda: losses.extend(run_tutorial(script, args, mode)), what)
    assert not used, f"tutorial {what} ran torch ops {sorted(used)} under the mode\n{mode.report()}"
    assert not mode.fell_through_reasons(), mode.report()
    missing = names - set(mode.routed)
    assert not missing, f"not routed: {sorted(missing)}\n{mode.report()}"
    assert losses and len(losses) == len(expected)
    for got, want in zip(losses, expected):
        assert abs(got - want) <= 1e-4 * abs(want), (losses, expected)
    # what falls through is not compute: e.g. the tensors tutorial's `grad_h[h < 0] = 0`
    if what == "tensors":
        assert mode.fell_through["torch.Tensor.__setitem__"] == TUTORIAL_ITERS
        assert mode.fell_through["torch.Tensor.lt"] == TUTORIAL_ITERS


def test_tutorial_with_grad_zero_leaves_only_autograds_own_accumulation():
    """After `w.grad.zero_()`, the next backward adds into the existing .grad inside autograd's C++
    AccumulateGrad node (aten::add_), which no TorchFunctionMode sees; `w.grad = None` avoids it."""
    mode = dropin.enable()
    used = covered_aten_ops(lambda: run_tutorial("tutorial_autograd.py", ["--zero-grad"], mode), "zero-grad")
    assert used == {"aten::add_"}
    assert not mode.fell_through_reasons(), mode.report()


# ---------------------------------------------------------------------------------------------- report


def report_rows(text):
    """{row name: [calls, total ms, us/call]} of a report's rows (calls only where the mode did not
    time them); a covered function that fell through is named without its reason."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("    ") and line.strip() != "(none)":
            name, *cells = re.split(r" {2,}", line.strip())
            rows[name] = [c for c in cells if not c.startswith("[")]
    return rows


def test_report_table():
    out = io.StringIO()
    a, b = make((3, 4)), make((4, 5))
    with dropin.enable(report=True, file=out) as mode:
        for _ in range(3):
            (a @ b).relu().sum()
        torch.sin(a)
        a.clamp(min=0.5)
        _ = a.shape
    text = out.getvalue()
    assert text.strip() == mode.report().strip()
    assert "routed to pykernels" in text and "fell through to torch" in text
    rows = report_rows(text)
    assert rows["torch.Tensor.matmul"][0] == "3" and rows["torch.Tensor.relu"][0] == "3" and rows["torch.sin"][0] == "1"
    assert "torch.Tensor.clamp  [covered, but clamp other than min=0]" in text
    assert "bookkeeping calls" in text and "torch.Tensor.shape.__get__" not in text
    assert mode.routed == {"torch.Tensor.matmul": 3, "torch.Tensor.relu": 3, "torch.Tensor.sum": 3}


def classifier_step(model, x, y, optimizer):
    """A training step as torch code writes one, with the bookkeeping such code does around it."""
    with torch.autograd.profiler.record_function("step"):
        optimizer.zero_grad()
        logits = model(x)
        assert logits.dim() == 2 and not logits.is_complex() and logits.size(0) == x.shape[0]
        loss = F.cross_entropy(logits, y)
        loss.backward()
        with torch.no_grad():
            _ = [p.grad.norm() for p in model.parameters()]
        optimizer.step()
        return loss.item()


def test_report_lists_compute_only():
    """Routed calls and compute that fell through are listed, each with its calls and time;
    bookkeeping (attribute reads, dim/size/is_complex/item, grad mode, profiler records) is not."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = make((5, 6)), torch.randint(0, 3, (5,))
    out = io.StringIO()
    with dropin.enable(report=True, file=out) as mode:
        for _ in range(2):
            classifier_step(model, x, y, optimizer)
    text = out.getvalue()
    rows = report_rows(text)
    assert {"torch.nn.functional.linear", "torch.nn.functional.relu", "torch.optim.sgd._single_tensor_sgd"} <= set(rows)
    assert {"torch.nn.functional.cross_entropy", "torch.Tensor.backward", "torch.Tensor.norm"} <= set(rows)
    bookkeeping = ("dim", "size", "is_complex", "item", "__get__", "__set__", "grad_enabled", "record_function")
    listed = [name for name in rows if any(word in name for word in bookkeeping)]
    assert not listed, text
    for name in ("torch.nn.functional.cross_entropy", "torch.Tensor.backward"):
        calls, total_ms, per_call_us = rows[name]
        assert calls == "2" and float(total_ms) > 0 and float(per_call_us) > 0
    fell = mode.fell_through
    hidden = sum(n for name, n in fell.items() if name not in rows)
    assert hidden > 0 and f"not listed: {hidden} bookkeeping calls" in text
    assert fell["torch.Tensor.item"] == 2 and fell["torch.Tensor.dim"] == 2  # still counted


def test_report_columns_are_aligned():
    a = make((3, 4))
    for report in (False, True):
        with dropin.enable(report=report, file=io.StringIO()) as mode:
            for _ in range(12):
                a.exp()
            torch.sin(a)
            a.clamp(min=0.5)
        text = mode.report()
        lines = [line for line in text.splitlines()[1:] if not line.startswith("  not listed")]
        edges = {len(line) for line in lines}
        assert len(edges) == 1, text  # every row and heading ends in the same column
        heading = lines[0].split()
        assert heading[-1] == ("us/call" if report else "calls"), text


def test_plain_mode_does_not_time():
    a = make((3, 4))
    with dropin.enable() as mode:
        a.exp()
    assert not mode.timed and "ms" not in mode.report()
    with dropin.enable(report=True, file=io.StringIO()) as mode:
        a.exp()
    assert mode.timed and "total ms" in mode.report()


@pytest.mark.parametrize(
    "name,result,bookkeeping",
    [
        ("torch.Tensor.grad.__get__", torch.zeros(2), True),  # an attribute, even when it holds a tensor
        ("torch.Tensor.requires_grad.__set__", None, True),
        ("torch.Tensor.dim", 2, True),
        ("torch.Tensor.size", torch.Size([2, 3]), True),
        ("torch.is_complex", False, True),
        ("torch.Tensor.item", 1.5, True),
        ("torch._C._set_grad_enabled", None, True),
        ("torch.Tensor.add", torch.zeros(2), False),
        ("torch.Tensor.max", torch.return_types.max((torch.zeros(2), torch.zeros(2))), False),
        ("torch.Tensor.add_", torch.zeros(2), False),
        ("torch._foreach_add_", None, False),  # in place: writes its tensors, returns nothing
        ("torch.Tensor.__setitem__", None, False),
        ("torch.Tensor.backward", None, False),
    ],
)
def test_bookkeeping_rule(name, result, bookkeeping):
    assert dropin.report.is_bookkeeping(name, result) is bookkeeping


def test_enable_is_exported_from_the_package():
    if not hasattr(pykernels, "enable"):
        pytest.skip("pykernels/__init__.py does not export enable yet (`from .dropin import enable`)")
    assert pykernels.enable is dropin.enable


# ---------------------------------------------------------------------------------------------- python -m pykernels run


def test_run_gives_the_script_its_argv_main_and_exit_status(capsys):
    script = os.path.join(SCRIPTS, "argv_exit.py")
    status = main(["run", script, "3", "a", "--flag", "-x"])
    captured = capsys.readouterr()
    seen = json.loads(captured.out.strip().splitlines()[-1])
    assert status == 3
    assert seen["argv"] == [script, "3", "a", "--flag", "-x"]
    assert seen["name"] == "__main__" and os.path.samefile(seen["file"], script)
    assert seen["value"] == 16.0
    assert "pykernels drop-in report" in captured.err
    assert "torch.Tensor.matmul" in captured.err and "torch.Tensor.sum" in captured.err


def test_run_script_reports_an_uncaught_exception(tmp_path, capsys):
    script = tmp_path / "boom.py"
    script.write_text("import torch\nx = torch.ones(2) * 2\nraise ValueError('boom')\n")
    assert dropin.run_script(str(script), []) == 1
    err = capsys.readouterr().err
    assert "ValueError: boom" in err and "torch.Tensor.mul" in err


def test_run_script_as_a_module(monkeypatch, capsys):
    monkeypatch.syspath_prepend(SCRIPTS)
    assert dropin.run_script("argv_exit", ["0", "z"], module=True, report=False) == 0
    captured = capsys.readouterr()
    seen = json.loads(captured.out.strip().splitlines()[-1])
    assert seen["argv"][1:] == ["0", "z"] and seen["name"] == "__main__"
    assert captured.err == ""


def test_python_dash_m_pykernels_run():
    script = os.path.join(SCRIPTS, "argv_exit.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pykernels", "run", script, "7", "--verbose", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 7, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["argv"] == [script, "7", "--verbose", "x"] and seen["name"] == "__main__"
    assert "pykernels drop-in report" in proc.stderr and "torch.Tensor.matmul" in proc.stderr
    assert "pykernels drop-in report" not in proc.stdout


def test_run_on_a_tutorial_prints_torchs_losses(capsys):
    expected = run_tutorial("tutorial_nn.py", [])
    assert main(["run", os.path.join(SCRIPTS, "tutorial_nn.py"), str(TUTORIAL_ITERS)]) == 0
    captured = capsys.readouterr()
    losses = [float(line.split()[1]) for line in captured.out.splitlines()]
    assert len(losses) == len(expected)
    for got, want in zip(losses, expected):
        assert abs(got - want) <= 1e-4 * abs(want)
    assert "torch.nn.functional.linear" in captured.err and "torch.nn.functional.mse_loss" in captured.err


_PYKERNELS_CUDA = torch.cuda.is_available() and "cuda" in {
    b.lower() for b in pykernels.build_info().get("backends", [])
}


@pytest.mark.skipif(not _PYKERNELS_CUDA, reason="no GPU visible, or this pykernels build has no CUDA kernels")
def test_routed_on_the_gpu():
    model = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).cuda()
    reference = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).cuda()
    reference.load_state_dict(model.state_dict())
    x, y = make((16, 20), device="cuda"), make((16, 3), device="cuda")
    for net, context in ((reference, contextlib.nullcontext()), (model, None)):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)  # foreach on the GPU

        def steps(net=net, optimizer=optimizer):
            for _ in range(3):
                optimizer.zero_grad()
                F.mse_loss(net(x), y, reduction="sum").backward()
                optimizer.step()

        if context is not None:
            with context:
                steps()
        else:
            _, mode, used = under_mode(steps)
            assert not used, sorted(used)
            assert not mode.fell_through_reasons(), mode.report()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert_close(p, q, atol=1e-5, rtol=1e-4)
