"""The fused linear layers and MLP: pykernels.linear, linear_relu and mlp (torch.ops.pykernels.*),
pykernels.nn.Sequential and FusedMLP, and what convert() makes of a model.

- forward and backward like torch's F.linear, relu(F.linear) and nn.Sequential(Linear, ReLU,
  Linear), at awkward sizes (empty, one, primes, hidden widths around the GPU kernels' 128, the
  register tiles' edges), on non-contiguous inputs and weights, with and without biases, in
  float32 and float64, on one thread and two;
- gradients of gradients (float64), through the composed backward;
- one op and one autograd node per fused call, no ATen compute;
- convert() keeps parameters, state_dict, print(model) and hooks, and a hook turns the fusion off
  at that call, so that it sees what torch's module would.
The op database (tests/opdb.py) runs the table-wide checks on these ops too: parity of every
overload, gradcheck, opcheck, the profiler and the drop-in route of F.linear.
"""

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import pykernels
import pykernels.nn as pknn
from conftest import DEVICES, accum_tol, assert_close, make, make_layout
from handwritten import assert_kernels_only, profile

ops = torch.ops.pykernels
DTYPES = [torch.float32, torch.float64]


def ids(value):
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value).replace("torch.", "")


def tolerance(dtype, n):
    return accum_tol(dtype, max(n, 1))


def leaves(*tensors):
    return [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]


def grads_of(out, inputs, g):
    wanted = [t for t in inputs if t is not None]
    return torch.autograd.grad(out, wanted, g)


def ran(fn):
    """The pykernels ops fn calls (not those they call in turn), in order."""

    def top(event):
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("pykernels::"):
            parent = parent.cpu_parent
        return parent is None

    return [e.name for e in profile(fn) if e.name.startswith("pykernels::") and top(e)]


# ---------------------------------------------------------------------------------------------- linear, linear_relu

# (batch shape, in, out): empty batch, one of everything, primes, the register tiles' edges, and
# the two-layer net's layers.
LINEAR_SIZES = [((0,), 7, 5), ((1,), 1, 1), ((13,), 29, 17), ((2, 5), 7, 3), ((65,), 33, 100), ((64,), 1000, 100)]


def reference_linear(x, w, b, relu):
    out = F.linear(x, w, b)
    return torch.relu(out) if relu else out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "linear_relu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("batch,n_in,n_out", LINEAR_SIZES, ids=ids)
def test_linear_forward_backward_like_torch(batch, n_in, n_out, bias, relu, dtype, device):
    x, w = make((*batch, n_in), dtype, device), make((n_out, n_in), dtype, device)
    b = make((n_out,), dtype, device) if bias else None
    ours = leaves(x, w, b)
    theirs = leaves(x, w, b)
    out = (ops.linear_relu if relu else pykernels.linear)(*ours)
    expected = reference_linear(*theirs, relu)
    assert_close(out, expected, **tolerance(dtype, n_in))
    g = make(expected.shape, dtype, device)
    batch_size = x.numel() // max(n_in, 1)
    for got, want, n in zip(grads_of(out, ours, g), grads_of(expected, theirs, g), (n_out, batch_size, batch_size)):
        assert_close(got, want, **tolerance(dtype, n))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["transposed", "strided", "offset"])
def test_linear_relu_on_non_contiguous_operands(layout, device):
    x = make_layout((9, 20), torch.float64, device, layout)
    w = make_layout((7, 20), torch.float64, device, "transposed" if layout == "offset" else layout)
    b = make((7,), torch.float64, device)
    ours, theirs = leaves(x, w, b), leaves(x, w, b)
    out, expected = ops.linear_relu(*ours), reference_linear(*theirs, True)
    assert_close(out, expected)
    g = make(out.shape, torch.float64, device)
    for got, want in zip(grads_of(out, ours, g), grads_of(expected, theirs, g)):
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_relu_epilogue_passes_nan(dtype):
    """The ReLU in the GEMM's store keeps NaN, as torch.relu does (a max with zero would drop it)."""
    x = make((7, 40), dtype)
    x[2, 3] = float("nan")
    w, b = make((19, 40), dtype), make((19,), dtype)
    out, expected = ops.linear_relu(x, w, b), torch.relu(F.linear(x, w, b))
    assert out[2].isnan().all()
    assert_close(out, expected, **tolerance(dtype, 40))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=ids)
def test_narrow_dtypes_compose_the_unfused_kernels(dtype):
    x, w, b = make((6, 9), dtype), make((5, 9), dtype), make((5,), dtype)
    assert_close(ops.linear_relu(x, w, b), torch.relu(F.linear(x, w, b)), **tolerance(dtype, 9))
    w2, b2 = make((3, 5), dtype), make((3,), dtype)
    assert_close(ops.mlp(x, w, b, w2, b2), F.linear(torch.relu(F.linear(x, w, b)), w2, b2), **tolerance(dtype, 9))


def test_linear_errors_name_the_op():
    x, w = make((3, 4)), make((5, 4))
    with pytest.raises(RuntimeError, match=r"pykernels\.linear: .*3x4 and 3x5"):
        pykernels.linear(x, make((5, 3)))
    with pytest.raises(RuntimeError, match=r"pykernels\.linear: .*same dtype"):
        pykernels.linear(x, w.double())
    with pytest.raises(RuntimeError, match=r"pykernels\.linear_relu: .*\[3, 5\] and \[2\]"):
        ops.linear_relu(x, w, make((2,)))
    with pytest.raises(NotImplementedError, match=r"pykernels\.linear: .*floating"):
        pykernels.linear(x.int(), w.int())
    with pytest.raises(RuntimeError, match=r"pykernels\.mlp: .*w2"):
        ops.mlp(x, w, None, make((2, 4)), None)
    with pytest.raises(RuntimeError, match=r"pykernels\.mlp: .*b1"):
        ops.mlp(x, w, make((4,)), make((2, 5)), None)


# ---------------------------------------------------------------------------------------------- the MLP

# (batch shape, in, hidden, out)
MLP_SIZES = [
    ((0,), 7, 5, 3),
    ((1,), 1, 1, 1),
    ((13,), 29, 17, 11),
    ((2, 3), 7, 100, 1),
    ((7,), 100, 129, 7),
    ((64,), 1000, 100, 10),
    ((300,), 31, 64, 5),
]


def twin_mlps(sizes, bias, dtype, device, seed=0):
    """torch's nn.Sequential(Linear, ReLU, Linear) and FusedMLP, from the same seed."""
    _, n_in, hidden, n_out = sizes
    torch.manual_seed(seed)
    ref = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden, bias=bias), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out, bias=bias)
    ).to(device, dtype)
    torch.manual_seed(seed)
    ours = pknn.FusedMLP(n_in, hidden, n_out, bias=bias).to(device, dtype)
    return ref, ours


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("sizes", MLP_SIZES, ids=ids)
def test_fused_mlp_like_sequential(sizes, bias, dtype, device):
    ref, ours = twin_mlps(sizes, bias, dtype, device)
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(p, q)  # torch's initialisation, draw for draw
    batch, n_in, hidden, n_out = sizes
    x = make((*batch, n_in), dtype, device)
    xo, xr = leaves(x, x)
    out, expected = ours(xo), ref(xr)
    assert_close(out, expected, **tolerance(dtype, n_in * hidden))
    g = make(expected.shape, dtype, device)
    out.backward(g)
    expected.backward(g)
    assert_close(xo.grad, xr.grad, **tolerance(dtype, hidden * n_out))
    rows = x.numel() // max(n_in, 1)
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert_close(p.grad, q.grad, **tolerance(dtype, rows * max(n_in, n_out)))


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_split_the_fused_kernels(threads):
    """Products large enough to be cut among threads give the one-thread results."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        test_fused_mlp_like_sequential(((96,), 512, 100, 10), True, torch.float32, "cpu")
        test_linear_forward_backward_like_torch((96,), 512, 256, True, True, torch.float32, "cpu")
    finally:
        torch.set_num_threads(before)


def test_fused_mlp_parameters_state_dict_and_print_are_sequentials():
    ref, ours = twin_mlps(((1,), 5, 4, 3), True, torch.float32, "cpu")
    assert isinstance(ours, torch.nn.Sequential)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert repr(ours).replace("FusedMLP", "Sequential", 1) == repr(ref)
    ours.load_state_dict(ref.state_dict())
    back = copy.deepcopy(ref)
    back.load_state_dict(ours.state_dict())


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_gradients_of_gradients(bias):
    """Through create_graph=True the backward is composed of differentiable ops."""
    x = make((4, 5), torch.float64, requires_grad=True)
    w1, w2 = make((6, 5), torch.float64, requires_grad=True), make((3, 6), torch.float64, requires_grad=True)
    b1 = make((6,), torch.float64, requires_grad=True) if bias else None
    b2 = make((3,), torch.float64, requires_grad=True) if bias else None
    inputs = [t for t in (x, w1, b1, w2, b2) if t is not None]

    def mlp(*args):
        it = iter(args)
        x, w1 = next(it), next(it)
        b1 = next(it) if bias else None
        w2 = next(it)
        b2 = next(it) if bias else None
        return ops.mlp(x, w1, b1, w2, b2)

    assert torch.autograd.gradcheck(mlp, inputs)
    assert torch.autograd.gradgradcheck(mlp, inputs)
    layer = [x, w1] + ([b1] if bias else [])
    assert torch.autograd.gradgradcheck(lambda *a: ops.linear_relu(*a) if bias else ops.linear_relu(*a, None), layer)


def test_torch_func_grad_through_the_mlp():
    x, w1, b1, w2, b2 = (make(s, torch.float64) for s in ((4, 5), (6, 5), (6,), (3, 6), (3,)))

    def loss(w1, b1, w2, b2, mlp):
        return mlp(x, w1, b1, w2, b2).pow(2).sum()

    def reference(x, w1, b1, w2, b2):
        return F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)

    ours = torch.func.grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2, ops.mlp)
    theirs = torch.func.grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2, reference)
    for got, want in zip(ours, theirs):
        assert_close(got, want)


def test_one_node_and_one_op_each_way():
    """FusedMLP's forward is one op recording one node; its backward, one op."""
    model = pknn.FusedMLP(20, 8, 3)
    x = make((16, 20))
    out = model(x)
    assert out.grad_fn.name() == "pykernels::autograd::MlpBackward"
    assert {type(f).__name__ for f, _ in out.grad_fn.next_functions if f is not None} == {"AccumulateGrad"}

    def step():
        model.zero_grad()
        pykernels.sum(model(x)).backward()

    events = [e.name for e in profile(step)]
    forward = ["pykernels::mlp", "pykernels::sum"]
    backward = ["pykernels::autograd::SumBackward", "pykernels::autograd::MlpBackward"]
    assert ran(step) == forward + backward
    assert events.count("pykernels::mlp_backward") == 1 and "pykernels::linear_backward" not in events
    assert_kernels_only(step, "FusedMLP forward and backward")


# ---------------------------------------------------------------------------------------------- convert


def two_layer_net(bias=True, inplace=False):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 9, bias=bias),
        torch.nn.ReLU(inplace=inplace),
        torch.nn.Linear(9, 6, bias=bias),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 4, bias=bias),
        torch.nn.Linear(4, 5),
        torch.nn.ReLU(),
    )


@pytest.mark.parametrize("inplace", [False, True], ids=["relu", "relu-inplace"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_convert_fuses_and_keeps_the_model(bias, inplace):
    model = two_layer_net(bias, inplace)
    reference = copy.deepcopy(model)
    printed, keys, params = repr(model), list(model.state_dict()), list(model.parameters())
    assert pknn.convert(model) is model
    assert type(model) is pknn.Sequential and repr(model) == printed  # prints as torch's Sequential
    assert list(model.state_dict()) == keys and all(p is q for p, q in zip(model.parameters(), params))
    assert type(model[0]) is pknn.Linear and type(model[1]) is pknn.ReLU

    x = make((10, 12))
    calls = ran(lambda: model(x))
    # Linear, ReLU, Linear as the MLP; the next ReLU is its own; Linear, ReLU as one op.
    assert calls == ["pykernels::mlp", "pykernels::relu", "pykernels::linear", "pykernels::linear_relu"]
    xo, xr = leaves(x, x)
    out, expected = model(xo), reference(xr)
    assert_close(out, expected, **tolerance(torch.float32, 12 * 9))
    g = make(out.shape)
    out.backward(g)
    expected.backward(g)
    assert_close(xo.grad, xr.grad, **tolerance(torch.float32, 12 * 9))
    for p, q in zip(model.parameters(), reference.parameters()):
        assert_close(p.grad, q.grad, **tolerance(torch.float32, 10 * 12))
    assert model[0](x).min() < 0  # a child alone is still the plain Linear


HOOKS = {
    "forward": lambda m, seen: m.register_forward_hook(lambda mod, args, out: seen.append(out.clone())),
    "forward-pre": lambda m, seen: m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone())),
    "full-backward": lambda m, seen: m.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].clone())),
}


@pytest.mark.parametrize("hook", list(HOOKS))
@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_hook_turns_the_fusion_off_at_that_call(hook, position):
    torch.manual_seed(1)
    layers = [torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)]
    model, reference = pknn.convert(torch.nn.Sequential(*layers)), torch.nn.Sequential(*copy.deepcopy(layers))
    ours, theirs = [], []
    handle = HOOKS[hook](model[position], ours)
    HOOKS[hook](reference[position], theirs)
    x = make((5, 8), requires_grad=True)
    calls = ran(lambda: model(x).sum().backward())
    reference(x).sum().backward()
    assert "pykernels::mlp" not in calls
    assert len(ours) == len(theirs) == 1
    assert_close(ours[0], theirs[0], **tolerance(torch.float32, 8))
    if position == 0 or position == 1:  # the pair the hook is not on may still be fused
        assert "pykernels::linear_relu" not in calls
    handle.remove()
    assert "pykernels::mlp" in ran(lambda: model(x))


def test_a_global_hook_turns_the_fusion_off():
    model = pknn.convert(two_layer_net())
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(type(m)))
    try:
        calls = ran(lambda: model(make((2, 12))))
    finally:
        handle.remove()
    assert "pykernels::mlp" not in calls and "pykernels::linear_relu" not in calls
    assert seen.count(pknn.Linear) == 4 and seen.count(pknn.ReLU) == 3


def test_fused_mlp_trains_like_torch_with_sgd():
    ref, ours = twin_mlps(((16,), 20, 8, 3), True, torch.float32, "cpu", seed=2)
    x, y = make((16, 20)), make((16, 3))
    for model in (ref, ours):
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert_close(p, q, atol=1e-5, rtol=1e-4)


# The fused ops on another microkernel than this process's (the switches are read once per process):
# their epilogues and prepacked operands, against torch, at sizes that reach every edge tile.
_PATH_CHECK = r"""
import torch, torch.nn.functional as F, pykernels
ops = torch.ops.pykernels
for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
    for b, i, h, o in ((64, 1000, 100, 10), (13, 29, 17, 11), (1, 7, 129, 3), (100, 33, 64, 5)):
        x, w1, b1, w2, b2 = (torch.randn(s, dtype=dtype) for s in ((b, i), (h, i), (h,), (o, h), (o,)))
        out, hidden = ops.mlp_forward(x, w1, b1, w2, b2)
        ref_hidden = torch.relu(F.linear(x, w1, b1))
        g = torch.randn(b, o, dtype=dtype)
        grads = ops.mlp_backward(g, x, w1, w2, hidden, [True] * 5)
        leaves = [t.clone().requires_grad_() for t in (x, w1, b1, w2, b2)]
        F.linear(torch.relu(F.linear(leaves[0], leaves[1], leaves[2])), leaves[3], leaves[4]).backward(g)
        pairs = [(hidden, ref_hidden), (out, F.linear(ref_hidden, w2, b2)), (ops.linear_relu(x, w1, b1), ref_hidden)]
        pairs += list(zip(grads, [t.grad for t in leaves]))
        for got, want in pairs:
            torch.testing.assert_close(got, want, atol=tol * want.abs().max().item(), rtol=tol)
print(pykernels.build_info()["cpu_simd"])
"""


@pytest.mark.parametrize("switch", ["PYKERNELS_NO_AVX2", "PYKERNELS_NO_AVX512"])
def test_fused_ops_on_every_microkernel(switch):
    """The portable microkernel (and the AVX2 one, on an AVX-512 CPU) with the epilogue and packed A."""
    env = dict(os.environ, **{switch: "1"})
    done = subprocess.run([sys.executable, "-c", _PATH_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if switch == "PYKERNELS_NO_AVX2":
        assert "AVX" not in done.stdout.split(";")[0], done.stdout


# ---------------------------------------------------------------------------------------------- GPU

_CUDA = [d for d in DEVICES if not isinstance(d, str)]


@pytest.mark.parametrize("device", _CUDA)
@pytest.mark.parametrize("hidden", [128, 129, 300])
def test_mlp_on_the_gpu_any_hidden_width(hidden, device):
    """The CUDA MLP kernels take a hidden layer of up to 128; wider ones run as two linear layers."""
    sizes = ((33,), 50, hidden, 7)
    test_fused_mlp_like_sequential(sizes, True, torch.float32, device)
