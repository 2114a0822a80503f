"""What the benchmark times: the cases, each one op on given inputs run against pykernels and
against torch, and the suites they are grouped in.

The op table (pykernels/optable.py) lists each op's cases and the suites they belong to; the
helpers here build the cases that time more than one call (forward and backward, a training
step). Add a suite by naming it in table entries and adding it to ``SUITES``.
"""

import contextlib
import dataclasses
import math

import torch
import torch.nn.functional as F

import pykernels
from .. import dropin, optable, train
from . import training
from .case import F32, GBS, GFLOPS, Case


class _TorchOps:
    """torch's functions under pykernels' names, so one case body runs against either library.

    mse_loss and linear live in torch.nn.functional, and most in-place ops (sub_, ...) only as Tensor
    methods.
    """

    mse_loss = staticmethod(F.mse_loss)
    linear = staticmethod(F.linear)

    def __getattr__(self, name):
        fn = getattr(torch, name, None) or getattr(torch.Tensor, name)
        setattr(self, name, fn)  # later look-ups then cost what a module attribute costs, as in pykernels
        return fn


LIBRARIES = {"pykernels": pykernels, "torch": _TorchOps()}


def _randn(*shape, dtype=torch.float32, positive=False, grad=False):
    """Random-input factory; ``positive`` keeps inputs inside the domain of the ops defined for positive inputs."""

    def make(device):
        t = torch.randn(*shape, dtype=dtype, device=device)
        t = t.abs() + 0.1 if positive else t
        return t.requires_grad_(grad)

    return make


def _inputs(*factories):
    return lambda device: tuple(make(device) for make in factories)


def _fmt_shape(shape):
    return "x".join(map(str, shape))


def mm_case(m, k, n, dtype=torch.float32):
    return Case(
        "mm",
        f"{m}x{k} @ {k}x{n}",
        dtype,
        _inputs(_randn(m, k, dtype=dtype), _randn(k, n, dtype=dtype)),
        lambda lib, a, b: lib.mm(a, b),
        2 * m * k * n,
        GFLOPS,
    )


def mm_transposed_case(batch, n_in, n_out):
    """``x.t() @ g``: the weight-gradient product of a linear layer, a non-contiguous operand."""
    return Case(
        "mm",
        f"({batch}x{n_in}).t() @ {batch}x{n_out}",
        torch.float32,
        _inputs(_randn(batch, n_in), _randn(batch, n_out)),
        lambda lib, x, g: lib.mm(x.t(), g),
        2 * batch * n_in * n_out,
        GFLOPS,
    )


def _argument(spec, device, positive):
    """A Bench argument: a tuple of ints is a random float32 tensor of that shape; a number is itself."""
    if not isinstance(spec, tuple):
        return spec
    t = torch.randn(*spec, device=device)
    return t.abs() + 0.1 if positive else t


def _label(args, function):
    shapes = [_fmt_shape(a) if isinstance(a, tuple) else repr(a) for a in args]
    if len(args) == 2 and all(isinstance(a, tuple) for a in args) and args[0] == args[1]:
        shapes = shapes[:1]
    return ", ".join(shapes) + (f" ({function})" if function.endswith("_") else "")


def table_case(op, bench, suite):
    """A case of the op table (pykernels/optable.py): the public function on ``bench.args``. Its work is
    what torch's result implies: 2·m·k·n per product for the matmul family, otherwise the bytes of
    every tensor argument read once and the result written once. Its target is the targets suite's
    ("cpu")."""
    function = bench.function or op.name
    on_meta = [_argument(a, "meta", False) for a in bench.args]
    out = getattr(LIBRARIES["torch"], function)(*on_meta)
    if op.kind in ("gemm", "linear"):
        work, unit = 2 * out.numel() * on_meta[0].shape[-1], GFLOPS
    else:
        read = sum(a.numel() for a in on_meta if isinstance(a, torch.Tensor))
        work, unit = F32 * (read + out.numel()), GBS
    inputs = lambda device: tuple(_argument(a, device, op.positive) for a in bench.args)  # noqa: E731
    return Case(
        function,
        _label(bench.args, function),
        torch.float32,
        inputs,
        lambda lib, *args: getattr(lib, function)(*args),
        work,
        unit,
        target=bench.target if suite == "cpu" else None,
    )


def table_cases(suite):
    """The op table's cases in ``suite``, in table order."""
    return [table_case(op, b, suite) for op in optable.OPS for b in op.bench if suite in b.suites]


def _relu_forward_backward(lib, x, g):
    x.grad = None
    lib.relu(x).backward(g)
    return x.grad


def relu_case(n):
    """ReLU forward and backward: read x, write y; read g and y (or its mask), write x.grad."""
    return Case(
        "relu",
        f"{n} fwd+bwd",
        torch.float32,
        _inputs(_randn(n, grad=True), _randn(n)),
        _relu_forward_backward,
        5 * F32 * n,
        GBS,
    )


def _mse_forward_backward(lib, x, target):
    x.grad = None
    lib.mse_loss(x, target).backward()
    return x.grad


def mse_case(n):
    """MSE loss forward and backward: read input and target, then both again, and write input.grad."""
    return Case(
        "mse_loss",
        f"{n} fwd+bwd",
        torch.float32,
        _inputs(_randn(n, grad=True), _randn(n)),
        _mse_forward_backward,
        5 * F32 * n,
        GBS,
    )


def _train_step(lib, x, target, w1, w2, lr=1e-3):
    """One SGD step of ``relu(x @ w1) @ w2`` under MSE; returns the loss."""
    w1.grad = w2.grad = None
    loss = lib.mse_loss(lib.mm(lib.relu(lib.mm(x, w1)), w2), target)
    loss.backward()
    with torch.no_grad():
        for w in (w1, w2):
            lib.sub_(w, lib.mul(w.grad, lr))
    return loss.detach()


# Calls per timed run of a drop-in case: entering and leaving the mode, once per run, then costs
# under 1% of a call.
DROPIN_CALLS = 100


def dropin_case(op, shapes, call, work, unit):
    """A routed call: ``call(*inputs)``, torch code, run under the drop-in mode for pykernels and as
    it is for torch, ``DROPIN_CALLS`` times per timed run, in one entry of the mode; the op's own
    row of the suite times pykernels' direct call on inputs of the same shapes. ``work`` is one call's."""

    def prepare(name, *inputs):
        context = dropin.enable if name == "pykernels" else contextlib.nullcontext

        def run():
            with context():
                for _ in range(DROPIN_CALLS):
                    out = call(*inputs)
            return out

        return run

    return Case(
        f"{op} (drop-in)",
        f"{_label(shapes, op)}; {DROPIN_CALLS} calls",
        torch.float32,
        _inputs(*(_randn(*shape) for shape in shapes)),
        None,
        DROPIN_CALLS * work,
        unit,
        prepare=prepare,
    )


def dropin_cases(n):
    """The drop-in mode's routing beside the percall suite's direct calls: a torch function
    (``torch.add``), an operator (``a @ b``), and ``F.relu``, whose ``inplace=False`` comes as a keyword."""
    return [
        dropin_case("add", [(n,), (n,)], torch.add, 3 * F32 * n, GBS),
        dropin_case("mm", [(8, 8), (8, 8)], lambda a, b: a @ b, 2 * 8 * 8 * 8, GFLOPS),
        dropin_case("relu", [(n,)], F.relu, 2 * F32 * n, GBS),
    ]


# Elements of each tensor an optimizer step reads and writes: (params, grads, state) read, params
# and state written; Adam's state is exp_avg and exp_avg_sq, SGD's (momentum 0.9) the buffer.
_OPTIMIZER_TRAFFIC = {"Adam": 7, "SGD": 5}


def optimizer_step_case(name, impl):
    """One step of ``torch.optim.<name>`` on the two-layer net's weights (1000x100 and 100x10),
    torch in its ``impl`` ("for-loop", "foreach" or "fused") against the same optimizer stepping
    under the drop-in mode, whatever its impl, as one fused pykernels op (the mode entered and left
    around each step, as train.py does); returns the first weight."""
    shapes = ((train.D_IN, train.H), (train.H, train.D_OUT))
    options = {"lr": 1e-3, "foreach": impl == "foreach", "fused": impl == "fused"}
    if name == "SGD":
        options["momentum"] = 0.9

    def make_inputs(device):
        return [torch.randn(s, device=device) for s in shapes], [torch.randn(s, device=device) for s in shapes]

    def prepare(lib, weights, grads):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer = getattr(torch.optim, name)(params, **options)
        context = dropin.enable if lib == "pykernels" else contextlib.nullcontext

        def run():
            with context():
                optimizer.step()
            return params[0]

        return run

    numel = sum(math.prod(s) for s in shapes)
    return Case(
        f"{name.lower()}_step",
        f"{impl}, 1000x100 + 100x10",
        torch.float32,
        make_inputs,
        None,
        _OPTIMIZER_TRAFFIC[name] * F32 * numel,
        GBS,
        prepare=prepare,
    )


def targeted(case, ratio):
    """``case`` with the ratio it should reach."""
    return dataclasses.replace(case, target=ratio)


def train_step_case(batch, n_in, hidden, n_out):
    """A small MLP training step; work counts the matmuls only (backward costs twice forward)."""
    flops = 3 * 2 * batch * (n_in * hidden + hidden * n_out)
    inputs = _inputs(
        _randn(batch, n_in), _randn(batch, n_out), _randn(n_in, hidden, grad=True), _randn(hidden, n_out, grad=True)
    )
    return Case(
        "train_step", f"mlp {n_in}-{hidden}-{n_out}, batch {batch}", torch.float32, inputs, _train_step, flops, GFLOPS
    )


N_SMALL = optable.N

# Each suite: the op table's cases in it, then the cases that time more than one call.
SUITES = {
    "default": table_cases("default")
    + [
        mm_case(512, 512, 512, dtype=torch.float64),
        mm_transposed_case(64, 1000, 100),
        relu_case(N_SMALL),
        mse_case(N_SMALL),
        train_step_case(64, 1000, 100, 10),
    ],
    # The CPU speed targets: each case with the ratio it should reach on a 2-core machine.
    "cpu": table_cases("cpu")
    + [
        targeted(mm_transposed_case(64, 1000, 100), 1.3),
        targeted(relu_case(N_SMALL), 1.2),
        targeted(mse_case(N_SMALL), 2.5),
    ],
    "quick": table_cases("quick")
    + [
        mm_transposed_case(64, 1000, 100),
        relu_case(N_SMALL),
        mse_case(N_SMALL),
    ],
    # What one call costs beside torch's (64 elements, an 8x8 product): the layers above the kernels.
    "percall": table_cases("percall") + [relu_case(optable.SMALL)] + dropin_cases(optable.SMALL),
    # Whole training steps (training.py), each with the ratio it should reach.
    "train": training.cases(),
    # torch.optim's steps, torch's three implementations against the fused pykernels op.
    "optim": [optimizer_step_case(name, impl) for name in ("Adam", "SGD") for impl in ("for-loop", "foreach", "fused")],
}


def select_cases(suite, ops):
    """The suite's cases whose op is in ``ops`` (all of them when ops is empty)."""
    return [c for c in SUITES[suite] if not ops or c.op in ops]
