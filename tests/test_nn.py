"""pykernels.nn: Linear, ReLU, MSELoss and convert().

- same parameter names, shapes, initialisation, state_dict and repr as the torch modules;
- forward and backward equal to torch's, on pykernels kernels only (profiler);
- state_dict round trips torch -> pykernels -> torch through torch.save / torch.load;
- they compose with nn.Sequential and torch.optim; convert() swaps modules keeping the weights.
"""

import copy
import io

import pytest
import torch

import pykernels
import pykernels.nn as pknn
from conftest import accum_tol, assert_close, make
from handwritten import assert_kernels_only, aten_ops_run_by

# Whole training loops: see conftest.one_thread.
pytestmark = pytest.mark.usefixtures("one_thread")


def twin_models(seed=0, bias=True):
    """The tutorial's nn.Sequential built from torch modules and from ours, from the same seed."""
    torch.manual_seed(seed)
    ref = torch.nn.Sequential(torch.nn.Linear(20, 8, bias=bias), torch.nn.ReLU(), torch.nn.Linear(8, 3, bias=bias))
    torch.manual_seed(seed)
    ours = torch.nn.Sequential(pknn.Linear(20, 8, bias=bias), pknn.ReLU(), pknn.Linear(8, 3, bias=bias))
    return ref, ours


# ---------------------------------------------------------------------------------------------- the modules


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_parameters_init_and_repr(bias):
    torch.manual_seed(3)
    ref = torch.nn.Linear(7, 5, bias=bias)
    torch.manual_seed(3)
    ours = pknn.Linear(7, 5, bias=bias)
    assert isinstance(ours, torch.nn.Module) and isinstance(ours, torch.nn.Linear)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    for a, b in zip(ours.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)  # same initialisation: same draws from the same seed
    assert repr(ours) == repr(ref)
    assert ours.in_features == 7 and ours.out_features == 5


def test_linear_dtype_and_device_arguments():
    m = pknn.Linear(4, 3, dtype=torch.float64, device="cpu")
    assert m.weight.dtype == torch.float64 and m.bias.dtype == torch.float64
    x = make((2, 4), torch.float64)
    assert_close(m(x), torch.nn.functional.linear(x, m.weight, m.bias))


@pytest.mark.parametrize("shape", [(6, 7), (7,), (2, 3, 7)], ids=["2d", "1d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_backward_like_torch(shape, bias):
    torch.manual_seed(1)
    ref = torch.nn.Linear(7, 5, bias=bias)
    ours = pknn.Linear(7, 5, bias=bias)
    ours.load_state_dict(ref.state_dict())
    x = make(shape)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out = ref(xr), ours(xo)
    assert_close(out, out_ref, **accum_tol(torch.float32, 7))
    g = make(out_ref.shape)
    out_ref.backward(g)
    out.backward(g)
    assert_close(xo.grad, xr.grad, **accum_tol(torch.float32, 5))
    batch = x.numel() // 7
    assert_close(ours.weight.grad, ref.weight.grad, **accum_tol(torch.float32, batch))
    if bias:
        assert_close(ours.bias.grad, ref.bias.grad, **accum_tol(torch.float32, batch))


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_like_torch(inplace):
    ref, ours = torch.nn.ReLU(inplace=inplace), pknn.ReLU(inplace=inplace)
    assert repr(ours) == repr(ref) and ours.inplace == inplace
    x = make((4, 5))
    leaf_ref, leaf = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out = ref(leaf_ref * 1), ours(leaf * 1)  # in place on a non-leaf
    assert_close(out, out_ref)
    g = make((4, 5))
    out_ref.backward(g)
    out.backward(g)
    assert_close(leaf.grad, leaf_ref.grad)
    if inplace:
        y = make((3, 3))
        assert ours(y) is y and bool((y >= 0).all())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_like_torch(reduction):
    ref, ours = torch.nn.MSELoss(reduction=reduction), pknn.MSELoss(reduction=reduction)
    assert repr(ours) == repr(ref) and ours.reduction == reduction
    a, t = make((6, 4)), make((6, 4))
    ar, ao = a.clone().requires_grad_(), a.clone().requires_grad_()
    out_ref, out = ref(ar, t), ours(ao, t)
    assert_close(out, out_ref, **accum_tol(torch.float32, 24))
    out_ref.sum().backward()
    out.sum().backward()
    assert_close(ao.grad, ar.grad)


def test_mse_loss_legacy_arguments():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ours = pknn.MSELoss(size_average=False)  # the legacy spelling of reduction="sum"
    assert ours.reduction == "sum"
    a, t = make((3, 4)), make((3, 4))
    assert_close(ours(a, t), torch.nn.functional.mse_loss(a, t, reduction="sum"))


def test_modules_run_no_aten_compute():
    _, model = twin_models()
    loss_fn = pknn.MSELoss(reduction="sum")
    x, y = make((16, 20)), make((16, 3))
    side = torch.nn.Sequential(pknn.Linear(20, 8), pknn.ReLU(inplace=True))
    mean_loss = pknn.MSELoss()

    def train_step():
        # (a parameter used twice would have its two gradients summed by the autograd engine itself)
        loss = pykernels.add(loss_fn(model(x), y), mean_loss(side(x), torch.zeros(16, 8)))
        loss.backward()

    assert_kernels_only(train_step, "pykernels.nn")


def test_weight_gradients_arrive_in_the_weights_layout():
    """Linear's weight enters mm transposed; its gradient is computed as a transposed product so
    that it reaches the parameter contiguous, with no copy by autograd (none is recorded)."""
    _, model = twin_models()
    x, y = make((16, 20)), make((16, 3))
    loss_fn = pknn.MSELoss(reduction="sum")

    def train_step():
        loss_fn(model(x), y).backward()

    assert "aten::copy_" not in aten_ops_run_by(train_step)
    for p in model.parameters():
        assert p.grad.is_contiguous() and p.grad.stride() == p.stride()
    # and the values are torch's
    ref, _ = twin_models()
    torch.nn.MSELoss(reduction="sum")(ref(x), y).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        assert_close(p.grad, q.grad)


# ---------------------------------------------------------------------------------------------- state_dict


def _roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_dict_round_trip_torch_to_pykernels_and_back(tmp_path):
    torch.manual_seed(5)
    ref = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "torch_model.pt"
    torch.save(ref.state_dict(), path)

    torch.manual_seed(99)  # different weights until the state_dict is loaded
    ours = torch.nn.Sequential(pknn.Linear(20, 8), pknn.ReLU(), pknn.Linear(8, 3))
    ours.load_state_dict(torch.load(path, weights_only=True))
    x = make((4, 20))
    assert_close(ours(x), ref(x), **accum_tol(torch.float32, 20))

    # back: train ours a little, save, load into a fresh torch model
    opt = torch.optim.SGD(ours.parameters(), lr=0.1)
    pknn.MSELoss()(ours(x), make((4, 3))).backward()
    opt.step()
    path2 = tmp_path / "pykernels_model.pt"
    torch.save(ours.state_dict(), path2)
    back = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    back.load_state_dict(torch.load(path2, weights_only=True))
    for (k1, v1), (k2, v2) in zip(back.state_dict().items(), ours.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert_close(back(x), ours(x), **accum_tol(torch.float32, 20))


def test_state_dict_keys_of_a_custom_module_match():
    class Net(torch.nn.Module):
        def __init__(self, linear):
            super().__init__()
            self.linear1, self.linear2 = linear(10, 4), linear(4, 2, bias=False)

        def forward(self, x):
            return self.linear2(self.linear1(x).clamp(min=0))

    ref, ours = Net(torch.nn.Linear), Net(pknn.Linear)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    ours.load_state_dict(_roundtrip(ref.state_dict()))
    ref.load_state_dict(_roundtrip(ours.state_dict()))
    x = make((3, 10))
    assert_close(ours(x), ref(x), **accum_tol(torch.float32, 10))


def test_whole_model_pickles():
    _, ours = twin_models()
    clone = _roundtrip_model(ours)
    assert type(clone[0]) is pknn.Linear and type(clone[1]) is pknn.ReLU
    x = make((2, 20))
    assert torch.equal(clone(x), ours(x))


def _roundtrip_model(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# ---------------------------------------------------------------------------------------------- Sequential + optim


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_sequential_with_torch_optim_trains_like_torch(optimizer):
    ref, ours = twin_models(seed=2)
    ref_loss, our_loss = torch.nn.MSELoss(reduction="sum"), pknn.MSELoss(reduction="sum")
    ref_opt = getattr(torch.optim, optimizer)(ref.parameters(), lr=1e-3)
    our_opt = getattr(torch.optim, optimizer)(ours.parameters(), lr=1e-3)
    x, y = make((16, 20)), make((16, 3))
    for _ in range(5):
        for model, loss_fn, opt in ((ref, ref_loss, ref_opt), (ours, our_loss, our_opt)):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert_close(p, q, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- convert


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(inplace=True))
        self.head = torch.nn.Linear(5, 2, bias=False)
        self.loss = torch.nn.MSELoss(reduction="sum")
        self.other = torch.nn.Tanh()

    def forward(self, x, y):
        return self.loss(self.head(self.body(x)), y)


class MyLinear(torch.nn.Linear):
    pass


def test_convert_swaps_modules_and_keeps_weights():
    torch.manual_seed(0)
    model = Block()
    model.extra = MyLinear(2, 2)
    reference = copy.deepcopy(model)
    params_before = list(model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # built before the swap
    state_before = {k: v.clone() for k, v in model.state_dict().items()}

    modules_before = dict(model.named_modules())
    converted = pknn.convert(model)
    assert converted is model
    assert all(m is modules_before[name] for name, m in model.named_modules())  # swapped in place
    assert type(model.body[0]) is pknn.Linear and type(model.head) is pknn.Linear
    assert type(model.body[1]) is pknn.ReLU and model.body[1].inplace
    assert type(model.loss) is pknn.MSELoss and model.loss.reduction == "sum"
    assert type(model.other) is torch.nn.Tanh and type(model.extra) is MyLinear  # not ours to swap
    assert all(p is q for p, q in zip(model.parameters(), params_before))  # the same Parameter objects
    assert list(model.state_dict()) == list(state_before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state_before.items())
    assert model.head.bias is None and model.body[0].in_features == 6

    x, y = make((4, 6)), make((4, 2))
    assert_close(model(x, y), reference(x, y), **accum_tol(torch.float32, 6))
    assert_kernels_only(lambda: model(x, y).backward(), "converted model")
    optimizer.step()  # the optimizer built before convert updates the converted model
    assert not torch.equal(model.head.weight, state_before["head.weight"])


def test_convert_a_module_itself_and_shared_modules():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 3)
    weight = lin.weight
    x = make((2, 3))
    expected = lin(x)
    assert pknn.convert(lin) is lin and type(lin) is pknn.Linear and lin.weight is weight
    assert_close(lin(x), expected)

    shared = torch.nn.Linear(3, 3)
    model = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    pknn.convert(model)
    assert model[0] is model[2] is shared and type(shared) is pknn.Linear
    assert len(list(model.parameters())) == 2


def test_convert_keeps_training_flag_and_hooks():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    calls = []
    model[0].register_forward_hook(lambda m, i, o: calls.append(type(m)))
    handle = model[0].register_forward_hook(lambda m, i, o: calls.append("removed"))
    model.eval()
    pknn.convert(model)
    assert not model[0].training
    handle.remove()  # a handle taken before the swap still works
    model(make((1, 3)))
    assert calls == [pknn.Linear]
