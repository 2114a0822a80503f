"""The fused optimizer steps (fused_sgd_, fused_adam_) and the drop-in mode's routing of torch.optim.

- Under ``pykernels.enable()``, torch.optim's SGD, Adam and AdamW, in each implementation torch
  offers (for-loop, foreach, fused), give torch's parameters and state over 100 steps (rtol 1e-6,
  float32 and float64), with every option that changes the arithmetic, an lr given as a tensor,
  and parameters of awkward sizes and layouts; each step is one routed call.
- The state is torch's own: a state_dict saved under the mode loads into plain torch and back.
- A call the op rejects (list lengths, shapes, dtypes, devices, overlaps, counters) writes nothing.
- The tutorial's Adam loop (pykernels.train, variant "adam") runs no ATen compute in its
  optimizer step under the mode; other threads and other optimizers keep torch's implementations,
  and so do the options pykernels does not take (they fall through, with a reason).
The ops' samples (parity, opcheck, the profiler, rejected dtypes) are in tests/opdb.py.
"""

import contextlib
import importlib
import threading

import pytest
import torch
from torch.overrides import TorchFunctionMode

import pykernels
from pykernels import dropin, train
from pykernels.dropin import optim as routes
from conftest import DEVICES, make
from handwritten import ALLOWED_ATEN, FORBIDDEN, profile

ops = torch.ops.pykernels

# Whole optimizer runs: see conftest.one_thread.
pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 100
IMPLS = {"for-loop": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
_PREFIX = {"for-loop": "_single_tensor_", "foreach": "_multi_tensor_", "fused": "_fused_"}


def replaced(cls, impl):
    """The name of the torch.optim function that a step of ``cls`` in ``impl`` runs, which the
    mode counts the routed step as (AdamW's own in torch 2.4, Adam's with decoupled weight decay later)."""
    base = cls.__name__.lower()
    module = importlib.import_module(f"torch.optim.{base}")
    if _PREFIX[impl] + base not in vars(module):
        base, module = "adam", importlib.import_module("torch.optim.adam")
    return f"{module.__name__}.{_PREFIX[impl]}{base}"


def parameters(dtype, device, dense_only=False):
    """Awkward parameters: empty, one element, primes, a transposed one and (where the op takes
    it, on the CPU) a step-sliced one, whose memory is not dense."""
    shapes = [(0,), (1,), (7,), (13, 5)]
    params = [make(s, dtype, device) for s in shapes] + [make((6, 11), dtype, device).t()]
    if not dense_only:
        params.append(make((9, 8), dtype, device)[::2, 1::3])
    return params


def copy_of(t):
    """A copy with t's strides, dense or not (clone keeps only dense ones)."""
    c = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=t.device)
    return c.copy_(t)


def gradients(params, steps):
    """Fresh random gradients for each step, laid out as autograd lays them out (as the param)."""
    return [[torch.randn_like(p) for p in params] for _ in range(steps)]


def run(cls, options, params, grads, under=None):
    """``cls`` over the given gradients, from copies of ``params``; under a mode if given. Returns
    (params, optimizer)."""
    params = [torch.nn.Parameter(copy_of(p.detach())) for p in params]
    opt = cls(params, **options)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = copy_of(g)
        with under or contextlib.nullcontext():
            opt.step()
    return params, opt


def assert_same_state(ours, theirs, tolerance):
    for p, q in zip(ours[0], theirs[0]):
        torch.testing.assert_close(p, q, **tolerance)
    for p, q in zip(ours[0], theirs[0]):
        mine, torchs = ours[1].state[p], theirs[1].state[q]
        assert mine.keys() == torchs.keys()
        for key in mine:
            if mine[key] is None:
                assert torchs[key] is None
            else:
                torch.testing.assert_close(mine[key], torchs[key], **tolerance)


TOLERANCE = dict(rtol=1e-6, atol=1e-7)

CONFIGS = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=1e-3)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=1e-2, betas=(0.3, 0.9), eps=1e-6)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-3, weight_decay=0.1, amsgrad=True)),
]


def config_id(config):
    name, options = config
    return name + "".join(f"-{k}={v}" for k, v in options.items() if k != "lr")


def torch_takes(cls, options, impl, params):
    """Whether torch's implementation takes these parameters (its fused CPU kernels and foreach
    want dense ones), by a trial step on copies."""
    try:
        run(cls, {**options, **IMPLS[impl]}, params, gradients(params, 1))
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_steps_like_torch(config, impl, dtype, device):
    name, options = config
    cls = getattr(torch.optim, name)
    options = {**options, **IMPLS[impl]}
    # A non-dense parameter: on the CPU, where the op takes one, and not against torch's fused CPU
    # kernels, which update it as if it were dense (torch 2.14: other elements than its own).
    params = parameters(dtype, device, dense_only=device != "cpu" or impl == "fused")
    if not torch_takes(cls, options, impl, params):
        params = parameters(dtype, device, dense_only=True)
    grads = gradients(params, STEPS)
    expected = run(cls, options, params, grads)
    mode = dropin.enable()
    got = run(cls, options, params, grads, under=mode)
    assert not mode.fell_through_reasons(), mode.report()
    assert mode.routed[replaced(cls, impl)] == STEPS, mode.report()
    assert_same_state(got, expected, TOLERANCE)


@pytest.mark.parametrize("impl", ["for-loop", "fused"])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_lr_as_a_tensor(name, impl):
    cls = getattr(torch.optim, name)
    options = dict(lr=torch.tensor(0.01), weight_decay=0.01, **IMPLS[impl])
    params = parameters(torch.float32, "cpu", dense_only=True)
    grads = gradients(params, STEPS)
    expected = run(cls, options, params, grads)
    mode = dropin.enable()
    got = run(cls, options, params, grads, under=mode)
    assert mode.routed[replaced(cls, impl)] == STEPS, mode.report()
    assert_same_state(got, expected, TOLERANCE)


def test_sgd_momentum_buffers_made_for_new_gradients():
    """A param that gets its first gradient later than the others gets its buffer then, by the
    first step's rule, in the same step as the others' running update."""
    params = parameters(torch.float32, "cpu", dense_only=True)
    grads = gradients(params, 5)
    for step in grads[:2]:
        step[1] = None

    def go(under):
        ps = [torch.nn.Parameter(p.clone()) for p in params]
        opt = torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2)
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = None if g is None else g.clone()
            with under or contextlib.nullcontext():
                opt.step()
        return ps, opt

    expected = go(None)
    mode = dropin.enable()
    got = go(mode)
    assert mode.routed[replaced(torch.optim.SGD, "for-loop")] == 5
    assert_same_state(got, expected, TOLERANCE)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_state_dict_round_trips_with_torch(name):
    """Five steps, the state saved and loaded into a new optimizer, five more: torch then the mode,
    and the mode then torch, give the ten steps of torch alone."""
    cls = getattr(torch.optim, name)
    options = dict(lr=1e-2, weight_decay=0.01) | (dict(momentum=0.9) if name == "SGD" else dict(amsgrad=True))
    params = parameters(torch.float32, "cpu")
    grads = gradients(params, 10)
    expected = run(cls, options, params, grads)
    for first, second in ((None, dropin.enable()), (dropin.enable(), None)):
        half, opt = run(cls, options, params, grads[:5], under=first)
        saved = opt.state_dict()
        resumed = [torch.nn.Parameter(copy_of(p.detach())) for p in half]
        opt2 = cls(resumed, **options)
        opt2.load_state_dict(saved)
        for step_grads in grads[5:]:
            for p, g in zip(resumed, step_grads):
                p.grad = copy_of(g)
            with second or contextlib.nullcontext():
                opt2.step()
        assert_same_state((resumed, opt2), expected, TOLERANCE)


# ---------------------------------------------------------------------------------------------- rejected calls


def adam_call(n=3, dtype=torch.float32):
    params = [make((4, 3), dtype) for _ in range(n)]
    lists = [params, [make((4, 3), dtype) for _ in range(n)], [make((4, 3), dtype) for _ in range(n)]]
    lists += [[make((4, 3), dtype).abs() for _ in range(n)], [], [torch.tensor(1.0) for _ in range(n)]]
    options = dict(lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    return lists, dict(options, decoupled_weight_decay=False)


def sgd_call(n=3):
    lists = [[make((4, 3)) for _ in range(n)] for _ in range(3)]
    options = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False)
    return lists, dict(options, is_first_step=False)


def _replace(lists, where, value):
    lists = [list(x) for x in lists]
    k, i = where
    lists[k][i] = value
    return lists


def _sgd_overlap(lists):
    """A momentum buffer that overlaps its param."""
    base = make((5, 3))
    lists = [list(x) for x in lists]
    lists[0][2], lists[2][2] = base[:4], base[1:]
    return lists


def _shared(lists):
    """An exp_avg that is the param's own memory."""
    lists = [list(x) for x in lists]
    lists[2][2] = lists[0][2]
    return lists


# (what, op, the call's lists from a valid call's lists, extra options): every error is found at
# the last param or list, after earlier ones that would be written.
BAD = [
    ("lengths", "adam", lambda ls: [ls[0], ls[1][:2], *ls[2:]], {}),
    ("amsgrad-without-max", "adam", lambda ls: ls, {"amsgrad": True}),
    ("steps-length", "adam", lambda ls: [*ls[:5], ls[5][:2]], {}),
    ("shape", "adam", lambda ls: _replace(ls, (3, 2), make((3, 4)).abs()), {}),
    ("dtype", "adam", lambda ls: _replace(ls, (1, 2), make((4, 3), torch.float64)), {}),
    ("param-dtype", "adam", lambda ls: _replace(ls, (0, 2), make((4, 3), torch.float16)), {}),
    ("device", "adam", lambda ls: _replace(ls, (2, 2), torch.zeros((4, 3), device="meta")), {}),
    ("sparse", "adam", lambda ls: _replace(ls, (1, 2), make((4, 3)).to_sparse()), {}),
    ("expanded", "adam", lambda ls: _replace(ls, (0, 2), make((1, 3)).expand(4, 3)), {}),
    ("overlap", "adam", _shared, {}),
    ("step-shape", "adam", lambda ls: _replace(ls, (5, 2), torch.ones(2)), {}),
    ("step-dtype", "adam", lambda ls: _replace(ls, (5, 2), torch.tensor(1)), {}),
    ("sgd-lengths", "sgd", lambda ls: [ls[0], ls[1], ls[2][:2]], {}),
    ("sgd-overlap", "sgd", _sgd_overlap, {}),
    ("sgd-shape", "sgd", lambda ls: _replace(ls, (1, 2), make((12,))), {}),
]


@pytest.mark.parametrize("what,op,change,extra", BAD, ids=[b[0] for b in BAD])
def test_rejected_call_writes_nothing(what, op, change, extra):
    lists, options = adam_call() if op == "adam" else sgd_call()
    lists = change(lists)
    before = [[t.clone() if t.layout is torch.strided and t.device.type != "meta" else t for t in x] for x in lists]
    fn = ops.fused_adam_ if op == "adam" else ops.fused_sgd_
    with pytest.raises((RuntimeError, NotImplementedError)) as info:
        fn(*lists, **{**options, **extra})
    assert f"fused_{op}_" in str(info.value)
    for x, y in zip(lists, before):
        for t, u in zip(x, y):
            if t.layout is torch.strided and t.device.type != "meta":
                assert torch.equal(t, u), f"{what}: a tensor was written"


def test_grad_mode_rules_before_any_write():
    """With autograd recording, a step into leaves that require grad is autograd's error, and one on
    gradients that require grad (no history can be recorded) the op's; under no_grad, as in
    Optimizer.step, it runs."""
    for make_leaf in (True, False):
        lists, options = adam_call()
        if make_leaf:
            for p in lists[0]:
                p.requires_grad_()
        else:
            lists[1][2].requires_grad_()
        before = [t.detach().clone() for x in lists for t in x]
        with pytest.raises(RuntimeError, match="leaf Variable" if make_leaf else "fused_adam_.*no derivative"):
            ops.fused_adam_(*lists, **options)
        assert all(torch.equal(t, u) for t, u in zip([t.detach() for x in lists for t in x], before))
        with torch.no_grad():
            ops.fused_adam_(*lists, **options)
        assert not torch.equal(lists[0][0].detach(), before[0])


# ---------------------------------------------------------------------------------------------- the mode


def _aten_under_optimizer_step(events):
    """The ATen ops that ran inside Optimizer.step (torch labels each step with a record_function)."""
    inside = set()
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("Optimizer.step"):
            parent = parent.cpu_parent
        if parent is not None:
            inside.add(e.name)
    return inside


def test_tutorial_adam_step_runs_no_aten_compute():
    """pykernels.train's adam variant (the tutorial's custom module and torch.optim.Adam) under the
    mode: inside optimizer.step() only pykernels' fused_adam_ computes."""
    step = train.adam(train.DropInLib, train.make_data(), 1e-4)
    with dropin.enable():
        step()  # the first step makes the optimizer's state
    mode = dropin.enable()

    def steps():
        with mode:
            step()
            step()

    events = profile(steps)
    inside = _aten_under_optimizer_step(events)
    assert not inside - ALLOWED_ATEN, sorted(inside - ALLOWED_ATEN)
    assert not {e.name for e in events} & FORBIDDEN
    assert sum(e.name == "pykernels::fused_adam_" for e in events) == 2
    assert mode.routed[replaced(torch.optim.Adam, "for-loop")] == 2


class _Calls(TorchFunctionMode):
    """Counts the torch functions called under it, by name."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


def test_other_threads_keep_torchs_implementation():
    """A thread without the mode steps with torch's own for-loop while another thread's mode has
    the routes installed."""
    params = parameters(torch.float32, "cpu", dense_only=True)
    grads = gradients(params, 3)
    expected = run(torch.optim.Adam, dict(lr=0.01), params, grads)
    inside, outside = threading.Event(), {}

    def other():
        inside.wait()
        calls = _Calls()
        with calls:
            outside["result"] = run(torch.optim.Adam, dict(lr=0.01), params, grads)
        outside["names"] = calls.names

    thread = threading.Thread(target=other)
    thread.start()
    with dropin.enable() as mode:
        inside.set()
        thread.join()
    assert "lerp_" in outside["names"], "the other thread's step did not run torch's for-loop"
    assert not mode.routed, mode.report()
    assert_same_state(outside["result"], expected, dict(rtol=0, atol=0))


def test_nested_modes_and_torchs_functions_restored():
    adam = importlib.import_module("torch.optim.adam")
    original = adam._single_tensor_adam
    params = parameters(torch.float32, "cpu")
    grads = gradients(params, 2)
    with dropin.enable() as outer:
        with dropin.enable() as inner:
            run(torch.optim.Adam, dict(lr=0.01), params, grads[:1])
        assert adam._single_tensor_adam is not original
        run(torch.optim.Adam, dict(lr=0.01), params, grads[1:])
    assert adam._single_tensor_adam is original
    name = replaced(torch.optim.Adam, "for-loop")
    assert inner.routed[name] == 1 and outer.routed[name] == 1
    assert routes.routed_functions() and all(f.__module__.startswith("torch.optim.") for f in routes.routed_functions())


FALL_THROUGH = [
    ("differentiable", "Adam", dict(lr=0.01, differentiable=True), torch.float32, "differentiable=True"),
    ("float16", "Adam", dict(lr=0.01), torch.float16, "torch.float16 parameter"),
    ("complex", "SGD", dict(lr=0.01, momentum=0.9), torch.complex64, "torch.complex64 parameter"),
    ("capturable-on-cpu", "Adam", dict(lr=0.01, capturable=True), torch.float32, None),
]


@pytest.mark.parametrize("what,name,options,dtype,reason", FALL_THROUGH, ids=[f[0] for f in FALL_THROUGH])
def test_what_pykernels_does_not_take_falls_through(what, name, options, dtype, reason):
    """torch runs these steps itself, with the same outcome as without the mode (torch rejects
    capturable=True on the CPU)."""
    cls = getattr(torch.optim, name)
    params = [make((5, 3)).to(dtype), make((4,)).to(dtype)]
    grads = gradients(params, 3)
    try:
        expected = run(cls, options, params, grads)
    except Exception as exc:  # noqa: BLE001 - the same error must come under the mode
        with pytest.raises(type(exc)), dropin.enable():
            run(cls, options, params, grads)
        return
    mode = dropin.enable()
    got = run(cls, options, params, grads, under=mode)
    assert (replaced(cls, "for-loop"), reason) in mode.fell_through_reasons(), mode.report()
    for p, q in zip(got[0], expected[0]):
        torch.testing.assert_close(p, q)


def test_other_optimizers_go_op_by_op():
    params = parameters(torch.float32, "cpu", dense_only=True)
    grads = gradients(params, 3)
    expected = run(torch.optim.RMSprop, dict(lr=0.01, foreach=False), params, grads)
    mode = dropin.enable()
    got = run(torch.optim.RMSprop, dict(lr=0.01, foreach=False), params, grads, under=mode)
    assert mode.routed["torch.Tensor.addcmul_"] > 0 and not any("optim" in name for name in mode.routed)
    assert_same_state(got, expected, dict(rtol=1e-5, atol=1e-6))


def test_report_names_the_routed_step():
    params = parameters(torch.float32, "cpu")
    mode = dropin.enable()
    run(torch.optim.Adam, dict(lr=0.01), params, gradients(params, 2), under=mode)
    assert f"{replaced(torch.optim.Adam, 'for-loop')}  " in mode.report()


_PYKERNELS_CUDA = torch.cuda.is_available() and "CUDA" in pykernels.build_info()["backends"]


@pytest.mark.skipif(not _PYKERNELS_CUDA, reason="no GPU visible, or this pykernels build has no CUDA kernels")
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_capturable_counters_on_the_gpu(name):
    """capturable=True keeps the counters on the GPU, where the kernel increments and reads them.
    torch's capturable arithmetic computes the bias corrections in float32, pykernels in double
    (as torch's default path does): the same up to that rounding."""
    cls = getattr(torch.optim, name)
    params = parameters(torch.float32, "cuda", dense_only=True)
    grads = gradients(params, 20)
    expected = run(cls, dict(lr=1e-2), params, grads)
    mode = dropin.enable()
    got = run(cls, dict(lr=1e-2, capturable=True), params, grads, under=mode)
    assert not mode.fell_through_reasons(), mode.report()
    for p, q in zip(got[0], expected[0]):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert all(got[1].state[p]["step"].is_cuda for p in got[0] if p.grad is not None)
