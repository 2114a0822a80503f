"""What the benchmark times: the cases, each one op on given inputs run against pykernels and
against torch, and the suites they are grouped in.

Add a suite by adding a list of cases to ``SUITES``; the helpers here (``mm_case``,
``binary_case``, ``reduce_case``, ...) build the common kinds.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import pykernels

from .. import train

GFLOPS, GBS = "GFLOP/s", "GB/s"
F32 = torch.float32.itemsize  # bytes per element; the memory-bound cases are all float32


class _TorchOps:
    """torch's functions under pykernels' names, so one case body runs against either library.

    mse_loss lives in torch.nn.functional, and most in-place ops (sub_, ...) only as Tensor methods.
    """

    mse_loss = staticmethod(F.mse_loss)

    def __getattr__(self, name):
        fn = getattr(torch, name, None) or getattr(torch.Tensor, name)
        setattr(self, name, fn)  # later look-ups then cost what a module attribute costs, as in pykernels
        return fn


LIBRARIES = {"pykernels": pykernels, "torch": _TorchOps()}


@dataclass(frozen=True)
class Case:
    """One benchmark: ``call(lib, *make_inputs(device))`` timed for each library.

    ``call`` returns the tensor that is compared between libraries as a sanity check.
    ``work`` is the case's floating-point operations (``unit`` GFLOP/s) or the bytes it must move
    at the least, every input read once and every output written once (``unit`` GB/s).
    """

    op: str
    shape: str
    dtype: torch.dtype
    make_inputs: Callable[[torch.device], tuple]
    call: Callable
    work: float
    unit: str
    target: float = None  # the ratio this case should reach, where an issue sets one
    # prepare(library name, *inputs) -> fn, for cases that keep state across calls (a model and
    # its optimizer); by default fn calls ``call(lib, *inputs)``.
    prepare: Callable = None


def _randn(*shape, dtype=torch.float32, positive=False, grad=False):
    """Random-input factory; ``positive`` keeps inputs inside the domain of log and sqrt."""

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
    return Case("mm", f"{m}x{k} @ {k}x{n}", dtype, _inputs(_randn(m, k, dtype=dtype), _randn(k, n, dtype=dtype)),
                lambda lib, a, b: lib.mm(a, b), 2 * m * k * n, GFLOPS)


def mm_transposed_case(batch, n_in, n_out):
    """``x.t() @ g``: the weight-gradient product of a linear layer, a non-contiguous operand."""
    return Case("mm", f"({batch}x{n_in}).t() @ {batch}x{n_out}", torch.float32,
                _inputs(_randn(batch, n_in), _randn(batch, n_out)),
                lambda lib, x, g: lib.mm(x.t(), g), 2 * batch * n_in * n_out, GFLOPS)


def bmm_case(batch, m, k, n):
    return Case("bmm", f"{batch}x{m}x{k} @ {batch}x{k}x{n}", torch.float32,
                _inputs(_randn(batch, m, k), _randn(batch, k, n)),
                lambda lib, a, b: lib.bmm(a, b), 2 * batch * m * k * n, GFLOPS)


def matmul_case(a_shape, b_shape):
    """``matmul`` with batch dimensions that broadcast against each other."""
    batch = math.prod(torch.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    return Case("matmul", f"{_fmt_shape(a_shape)} @ {_fmt_shape(b_shape)}", torch.float32,
                _inputs(_randn(*a_shape), _randn(*b_shape)),
                lambda lib, a, b: lib.matmul(a, b), 2 * batch * m * k * n, GFLOPS)


SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def binary_case(op, a_shape, b_shape):
    """Tensor-tensor elementwise op; the shapes may broadcast."""
    out = math.prod(torch.broadcast_shapes(a_shape, b_shape))
    nbytes = F32 * (math.prod(a_shape) + math.prod(b_shape) + out)
    shape = _fmt_shape(a_shape) if a_shape == b_shape else f"{_fmt_shape(a_shape)} {SYMBOLS[op]} {_fmt_shape(b_shape)}"
    return Case(op, shape, torch.float32, _inputs(_randn(*a_shape), _randn(*b_shape)),
                lambda lib, a, b: getattr(lib, op)(a, b), nbytes, GBS)


def scalar_case(op, n, scalar):
    return Case(op, f"{n} {SYMBOLS[op]} {scalar}", torch.float32, _inputs(_randn(n)),
                lambda lib, x: getattr(lib, op)(x, scalar), 2 * F32 * n, GBS)


def unary_case(op, n, positive=False):
    return Case(op, str(n), torch.float32, _inputs(_randn(n, positive=positive)),
                lambda lib, x: getattr(lib, op)(x), 2 * F32 * n, GBS)


def pow_case(n, exponent):
    return Case("pow", f"{n} ** {exponent}", torch.float32, _inputs(_randn(n)),
                lambda lib, x: lib.pow(x, exponent), 2 * F32 * n, GBS)


def reduce_case(op, shape, dim=None):
    """Full reduction when ``dim`` is None; the output is small, so the traffic is the input read."""
    kwargs = {} if dim is None else {"dim": dim}
    label = _fmt_shape(shape) + ("" if dim is None else f", dim={dim}")
    out = 1 if dim is None else math.prod(shape) // shape[dim]
    return Case(op, label, torch.float32, _inputs(_randn(*shape)),
                lambda lib, x: getattr(lib, op)(x, **kwargs), F32 * (math.prod(shape) + out), GBS)


def _relu_forward_backward(lib, x, g):
    x.grad = None
    lib.relu(x).backward(g)
    return x.grad


def relu_case(n, backward=False):
    """Forward: read x, write y. Forward+backward adds reading g and y, writing x.grad."""
    if backward:
        return Case("relu", f"{n} fwd+bwd", torch.float32, _inputs(_randn(n, grad=True), _randn(n)),
                    _relu_forward_backward, 5 * F32 * n, GBS)
    return unary_case("relu", n)


def _mse_forward_backward(lib, x, target):
    x.grad = None
    lib.mse_loss(x, target).backward()
    return x.grad


def mse_case(n, backward=False):
    """Forward reads input and target; backward reads both again and writes input.grad."""
    if backward:
        return Case("mse_loss", f"{n} fwd+bwd", torch.float32, _inputs(_randn(n, grad=True), _randn(n)),
                    _mse_forward_backward, 5 * F32 * n, GBS)
    return Case("mse_loss", str(n), torch.float32, _inputs(_randn(n), _randn(n)),
                lambda lib, x, target: lib.mse_loss(x, target), 2 * F32 * n, GBS)


def _train_step(lib, x, target, w1, w2, lr=1e-3):
    """One SGD step of ``relu(x @ w1) @ w2`` under MSE; returns the loss."""
    w1.grad = w2.grad = None
    loss = lib.mse_loss(lib.mm(lib.relu(lib.mm(x, w1)), w2), target)
    loss.backward()
    with torch.no_grad():
        for w in (w1, w2):
            lib.sub_(w, lib.mul(w.grad, lr))
    return loss.detach()


def sgd_step_case():
    """The two-layer net's training step as users write it: ``nn.Sequential`` of (pykernels.)nn
    modules, ``MSELoss``, ``torch.optim.SGD`` (stepping under the drop-in mode for pykernels, so
    its arithmetic is pykernels' too); returns the loss. Work counts the matmuls only."""
    libs = {"pykernels": train.PykernelsLib, "torch": train.TorchLib}

    def prepare(name, data):
        lib = libs[name]
        step = train.VARIANTS["sgd"].build(lib, data, train.VARIANTS["sgd"].lr)

        def run():
            with lib.context():
                return torch.tensor(step())

        return run

    flops = 3 * 2 * train.N * (train.D_IN * train.H + train.H * train.D_OUT)
    return Case("train_step", f"nn + SGD, {train.N}x{train.D_IN}-{train.H}-{train.D_OUT}", torch.float32,
                lambda device: (train.make_data(device=device),), None, flops, GFLOPS, prepare=prepare)


def targeted(case, ratio):
    """``case`` with the ratio it should reach."""
    return dataclasses.replace(case, target=ratio)


def train_step_case(batch, n_in, hidden, n_out):
    """A small MLP training step; work counts the matmuls only (backward costs twice forward)."""
    flops = 3 * 2 * batch * (n_in * hidden + hidden * n_out)
    inputs = _inputs(_randn(batch, n_in), _randn(batch, n_out),
                     _randn(n_in, hidden, grad=True), _randn(hidden, n_out, grad=True))
    return Case("train_step", f"mlp {n_in}-{hidden}-{n_out}, batch {batch}", torch.float32, inputs,
                _train_step, flops, GFLOPS)


N_SMALL, N_LARGE = 1 << 20, 1 << 24

SUITES = {
    "default": [
        mm_case(64, 1000, 100),
        mm_case(256, 256, 256),
        mm_case(512, 512, 512),
        mm_case(1024, 1024, 1024),
        mm_case(512, 512, 512, dtype=torch.float64),
        mm_transposed_case(64, 1000, 100),
        bmm_case(32, 128, 128, 256),
        matmul_case((4, 1, 128, 128), (8, 128, 128)),
        binary_case("add", (N_SMALL,), (N_SMALL,)),
        binary_case("add", (N_LARGE,), (N_LARGE,)),
        binary_case("sub", (N_SMALL,), (N_SMALL,)),
        binary_case("mul", (4096, 1), (1, 4096)),
        binary_case("div", (N_SMALL,), (N_SMALL,)),
        scalar_case("add", N_SMALL, 1.5),
        unary_case("neg", N_SMALL),
        unary_case("exp", N_SMALL),
        unary_case("log", N_SMALL, positive=True),
        unary_case("sqrt", N_SMALL, positive=True),
        pow_case(N_SMALL, 2),
        reduce_case("sum", (2048, 2048)),
        reduce_case("sum", (2048, 2048), dim=0),
        reduce_case("sum", (2048, 2048), dim=1),
        reduce_case("mean", (2048, 2048)),
        relu_case(N_SMALL),
        relu_case(N_SMALL, backward=True),
        mse_case(N_SMALL),
        mse_case(N_SMALL, backward=True),
        train_step_case(64, 1000, 100, 10),
    ],
    # The CPU speed targets: each case with the ratio it should reach on a 2-core machine.
    "cpu": [
        targeted(mm_case(1024, 1024, 1024), 1.8),
        targeted(mm_case(64, 1000, 100), 1.3),
        targeted(mm_transposed_case(64, 1000, 100), 1.3),
        targeted(bmm_case(32, 128, 128, 256), 1.8),
        targeted(binary_case("add", (N_SMALL,), (N_SMALL,)), 0.95),
        targeted(relu_case(N_SMALL, backward=True), 0.95),
        targeted(mse_case(N_SMALL, backward=True), 2.5),
        targeted(sgd_step_case(), 1.5),
    ],
    "quick": [
        mm_case(64, 1000, 100),
        mm_case(256, 256, 256),
        mm_transposed_case(64, 1000, 100),
        bmm_case(8, 64, 64, 64),
        matmul_case((2, 1, 64, 64), (4, 64, 64)),
        binary_case("add", (N_SMALL,), (N_SMALL,)),
        binary_case("mul", (1024, 1), (1, 1024)),
        scalar_case("add", N_SMALL, 1.5),
        unary_case("exp", N_SMALL),
        pow_case(N_SMALL, 2),
        reduce_case("sum", (1024, 1024), dim=1),
        reduce_case("mean", (1024, 1024)),
        relu_case(N_SMALL, backward=True),
        mse_case(N_SMALL, backward=True),
    ],
}


def select_cases(suite, ops):
    """The suite's cases whose op is in ``ops`` (all of them when ops is empty)."""
    return [c for c in SUITES[suite] if not ops or c.op in ops]
