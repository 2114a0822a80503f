"""A call that raises changes nothing.

Every in-place and out= overload, called through the public function, the raw torch.ops op and
the drop-in mode, with each kind of bad argument: a leaf that requires grad (or a view of one),
a dtype the result can't be cast to, a broadcast that would grow self, an expanded (overlapping)
self or out, an out= overlapping an input, and tensors on two devices. Each call must raise, and
every tensor it was given must be bit-for-bit what it was, with its autograd history unchanged.
Also: the device rule itself (one device, except a 0-dim CPU tensor beside another device's
tensors), on meta tensors as the other device.
"""

import opdb
import pytest
import torch

import pykernels as pk
from pykernels import optable
from conftest import make

ops = torch.ops.pykernels


def f(*shape):
    return make(shape, torch.float32)


def ints(*shape):
    return make(shape, torch.int64, nonzero=True)


def meta(*shape):
    return torch.empty(shape, device="meta")


# ---- in-place -----------------------------------------------------------------------------------


def _inplace(kind):
    """name -> (public function, Tensor method, raw op) for the in-place functions of a kind."""
    return {name: (getattr(pk, name), name, getattr(ops, name)) for name in opdb.functions(kind, inplace=True)}


BINARY_INPLACE = _inplace("binary")
UNARY_INPLACE = _inplace("unary")


def _leaf():
    return f(4, 3).requires_grad_()


# error class -> builder of (self, other, the tensors to watch); "other" unused by unary ops
BINARY_BAD = {
    "leaf": lambda: (_leaf(), f(4, 3)),
    "view-of-leaf": lambda: (_leaf()[1:], f(3, 3)),
    "cast": lambda: (ints(4, 3), f(4, 3)),
    "grow": lambda: (f(1, 3), f(4, 3)),
    "expanded": lambda: (f(1, 3).expand(4, 3), f(4, 3)),
    "devices": lambda: (f(4, 3), meta(4, 3)),
    "devices-scalar": lambda: (f(4, 3), meta()),
}
UNARY_BAD = {
    "leaf": lambda: (_leaf(), None),
    "view-of-leaf": lambda: (_leaf()[1:], None),
    "dtype": lambda: (torch.tensor([True, False, True]), None),
    "expanded": lambda: (f(1, 3).expand(4, 3), None),
}


def _base(t):
    """The tensor that owns t's memory: what a write through t would change."""
    return t._base if t._base is not None else t


class Snapshot:
    """Bytes, shape, strides, version and autograd history of tensors, to compare after a call."""

    def __init__(self, *tensors):
        self.tensors = [t for t in tensors if isinstance(t, torch.Tensor) and t.device.type != "meta"]
        self.state = [self._state(t) for t in self.tensors]

    @staticmethod
    def _state(t):
        base = _base(t).detach()
        return (
            base.clone().view(-1).view(torch.uint8) if base.numel() else None,
            t.shape,
            t.stride(),
            t.grad_fn,
            t.requires_grad,
        )

    def assert_unchanged(self):
        for t, (data, shape, stride, grad_fn, requires_grad) in zip(self.tensors, self.state):
            base = _base(t).detach()
            if data is not None:
                assert torch.equal(base.clone().view(-1).view(torch.uint8), data), "a rejected call wrote"
            assert (t.shape, t.stride()) == (shape, stride), "a rejected call changed the tensor's layout"
            assert t.grad_fn is grad_fn and t.requires_grad == requires_grad, "a rejected call changed its history"


def _call_inplace(mode, entry, self, other):
    public, method, raw = entry
    args = () if other is None else (other,)
    if mode == "public":
        return public(self, *args)
    if mode == "raw":
        return raw(self, *args)
    with pk.enable():
        return getattr(self, method)(*args)


MODES = ["public", "raw", "enable"]


def _inplace_cases():
    for name in BINARY_INPLACE:
        for bad in BINARY_BAD:
            yield pytest.param(name, bad, id=f"{name}-{bad}")
    for name in UNARY_INPLACE:
        for bad in UNARY_BAD:
            yield pytest.param(name, bad, id=f"{name}-{bad}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,bad", list(_inplace_cases()))
def test_rejected_inplace_writes_nothing(name, bad, mode):
    binary = name in BINARY_INPLACE
    self, other = (BINARY_BAD if binary else UNARY_BAD)[bad]()
    entry = (BINARY_INPLACE if binary else UNARY_INPLACE)[name]
    # torch rejects the same call: the error class is torch's, not one of ours. (It checks before
    # it writes, so the autograd cases may use the tensor itself.) A meta tensor stands in for a
    # second device, where torch's in-place ops skip the write rather than raise.
    if not bad.startswith("devices"):
        reference = self if bad in ("leaf", "view-of-leaf", "expanded") else self.clone()
        with pytest.raises((RuntimeError, NotImplementedError)):
            getattr(reference, entry[1])(*(() if other is None else (other,)))
    snapshot = Snapshot(self, other)
    if mode == "enable" and bad.startswith("devices"):
        # The mode leaves a meta tensor to torch, whose outcome it is (no write, no error).
        _call_inplace(mode, entry, self, other)
        snapshot.assert_unchanged()
        return
    with pytest.raises((RuntimeError, NotImplementedError)) as info:
        _call_inplace(mode, entry, self, other)
    snapshot.assert_unchanged()
    if mode != "enable" and bad not in ("leaf", "view-of-leaf"):  # autograd's own words otherwise
        assert name.rstrip("_") in str(info.value), f"the message does not name the op: {info.value}"


@pytest.mark.parametrize("name", ["add_", "mul_", "sub_", "div_"])
def test_rejected_foreach_inplace_writes_nothing(name):
    """A torch._foreach_*_ call under the mode checks every element's autograd rules before its
    first write, as torch does: a leaf that requires grad in second place leaves the first alone."""
    first, leaf = f(3), _leaf()
    others = [f(3), f(4, 3)]
    snapshot = Snapshot(first, leaf, *others)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        with pk.enable():
            getattr(torch, f"_foreach_{name}")([first, leaf], others)
    snapshot.assert_unchanged()


# ---- out= ---------------------------------------------------------------------------------------

# name -> (public function, raw out= overload, whether it takes one tensor) for every out= overload.
OUT = {
    o.public_name: (
        getattr(pk, o.public_name),
        o.resolve(),
        sum(str(a.type) == "Tensor" for a in o.arguments if not a.kwarg_only) == 1,
    )
    for o in opdb.OVERLOADS
    if o.is_out and not o.number
}


def _overlapping():
    base = f(5, 3)
    return base[:4], f(4, 3), base[1:]


# error class -> builder of (input, other, out)
OUT_BAD = {
    "requires-grad": lambda: (_leaf(), f(4, 3), f(4, 3)),
    "out-requires-grad": lambda: (f(4, 3), f(4, 3), _leaf()),
    "cast": lambda: (f(4, 3), f(4, 3), ints(4, 3)),
    "expanded-out": lambda: (f(4, 3), f(4, 3), f(1, 3).expand(4, 3)),
    "overlap": _overlapping,
    "devices-inputs": lambda: (f(4, 3), meta(4, 3), f(4, 3)),
    "devices-out": lambda: (meta(4, 3), meta(4, 3), f(4, 3)),
}


def _call_out(mode, name, a, b, out):
    public, raw, unary = OUT[name]
    args = (a,) if unary else (a, b)
    if mode == "public":
        return public(*args, out=out)
    if mode == "raw":
        return raw(*args, out=out)
    with pk.enable():
        return getattr(torch, name)(*args, out=out)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", list(OUT_BAD))
@pytest.mark.parametrize("name", list(OUT))
def test_rejected_out_writes_nothing(name, bad, mode):
    a, b, out = OUT_BAD[bad]()
    unary = OUT[name][2]
    if unary and bad == "devices-inputs":
        a = meta(4, 3)
    reference_out = out if bad in ("out-requires-grad", "expanded-out", "overlap") else out.clone()
    with pytest.raises(RuntimeError):  # torch rejects the same call
        getattr(torch, name)(*((a,) if unary else (a, b)), out=reference_out)
    snapshot = Snapshot(a, b, out)
    with pytest.raises(RuntimeError) as info:
        _call_out(mode, name, a, b, out)
    snapshot.assert_unchanged()
    if mode != "enable":
        assert name in str(info.value), f"the message does not name the op: {info.value}"


# ---- the device rule ------------------------------------------------------------------------------

# The functions of two tensors that broadcast them: the binary functions and the losses.
FUNCTIONAL = sorted({name for name, _ in opdb.binary_cases()} | set(opdb.functions("loss")))


@pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")
@pytest.mark.parametrize("name", FUNCTIONAL)
@pytest.mark.parametrize("layout", ["cpu+meta", "meta+cpu", "cpu+meta-scalar", "meta+cpu-scalar", "cpu-scalar+meta"])
def test_device_rule_like_torch(name, layout):
    """Tensors on two devices raise, as torch's do, except a 0-dim CPU tensor beside another
    device's tensors, which joins them (the result is on the other device)."""
    left, right = layout.split("+")
    build = {"cpu": lambda: f(4, 3), "meta": lambda: meta(4, 3), "meta-scalar": meta, "cpu-scalar": lambda: f()}
    x, y = build[left](), build[right]()
    reference = opdb.torch_function(optable.BY_NAME[name], name)
    try:
        expected = reference(x, y)
    except RuntimeError:
        with pytest.raises(RuntimeError, match=f"pykernels.{name}.*same device"):
            getattr(pk, name)(x, y)
        return
    result = getattr(pk, name)(x, y)
    assert (result.device, result.shape, result.dtype) == (expected.device, expected.shape, expected.dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda: pk.mm(f(2, 3), meta(3, 2)),
        lambda: pk.bmm(meta(2, 2, 3), f(2, 3, 2)),
        lambda: pk.matmul(f(2, 3), meta(3)),
        lambda: ops.relu_backward(f(3), meta(3)),
        lambda: ops.mse_loss_backward(f(), f(3), meta(3), 1),
        lambda: ops.mse_loss_and_grad(f(3), meta(3), 1),
    ],
    ids=["mm", "bmm", "matmul", "relu_backward", "mse_loss_backward", "mse_loss_and_grad"],
)
def test_two_devices_raise(call):
    with pytest.raises(RuntimeError, match="same device"):
        call()


# ---- arguments that are not tensors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: pk.relu([1.0, -2.0]), "relu"),
        (lambda: pk.relu_([1.0, -2.0]), "relu_"),
        (lambda: pk.neg([1.0]), "neg"),
        (lambda: pk.neg_([1.0]), "neg_"),
        (lambda: pk.exp((1.0,)), "exp"),
        (lambda: pk.mm([[1.0]], f(1, 1)), "mm"),
        (lambda: pk.sum([1, 2]), "sum"),
        (lambda: pk.pow([1.0], 2), "pow"),
        (lambda: pk.mse_loss([1.0], f(1)), "mse_loss"),
        (lambda: pk.add_([1.0], 1), "add_"),
        (lambda: pk.add(f(2), 1, out=[0.0, 0.0]), "add"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_list_argument_is_a_type_error(call, name):
    with pytest.raises(TypeError, match=rf"pykernels\.{name}\(\): argument '\w+'.*(Tensor|tensor)"):
        call()
