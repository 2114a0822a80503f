"""Every private torch API in pykernels/_compat.py still does what pykernels uses it for.

torch makes no promise about these names; the suite runs on the oldest supported torch and the
newest, so a release that moves or changes one fails here, by name. (The C++ ones, in
csrc/common/torch_compat.h, are exercised by the tests their comments name.)
"""

import pytest
import torch
from torch.overrides import TorchFunctionMode

import pykernels as pk
from pykernels import _compat

ops = torch.ops.pykernels


def test_op_schema():
    arguments = _compat.op_schema(ops.add_.default).arguments
    assert [a.name for a in arguments] == ["input", "other", "alpha"]
    assert arguments[0].alias_info.is_write and arguments[2].kwarg_only


def test_has_kernel_for_dispatch_key():
    assert _compat.has_kernel_for_dispatch_key("pykernels::mm", "CPU")
    assert _compat.has_kernel_for_dispatch_key("pykernels::mm", "Autograd")
    assert not _compat.has_kernel_for_dispatch_key("pykernels::mm", "SparseCPU")


def test_all_op_names():
    assert {"pykernels::mm", "pykernels::add.out"} <= set(_compat.all_op_names())


def test_op_overload_types():
    assert isinstance(ops.mm, _compat.OpOverloadPacket)
    assert isinstance(ops.mm.default, _compat.OpOverload)
    assert not isinstance(torch.mm, (_compat.OpOverload, _compat.OpOverloadPacket))


def test_functorch_transforms_active():
    seen = []

    def f(x):
        seen.append(_compat.functorch_transforms_active())
        return (x * x).sum()

    assert not _compat.functorch_transforms_active()
    torch.func.grad(f)(torch.ones(3))
    assert seen == [True]


@pytest.mark.parametrize(
    "any_requires_grad", [_compat.any_requires_grad, _compat.any_requires_grad_in_python], ids=["chosen", "python"]
)
def test_any_requires_grad(any_requires_grad):
    a, b = torch.ones(2), torch.ones(2, requires_grad=True)
    assert not any_requires_grad(a, a, 1.0, None, [a])
    assert any_requires_grad(a, b) and any_requires_grad(1.0, [a, b])


def test_auto_dispatch_below_autograd():
    x = torch.ones(2, 2, requires_grad=True)
    with _compat.AutoDispatchBelowAutograd():
        out = ops.mm(x, x)
    assert out.grad_fn is None and ops.mm(x, x).grad_fn is not None


def test_has_torch_function():
    class Traced(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs or {})

    x = torch.ones(2)
    assert not _compat.has_torch_function((x, x))
    assert _compat.has_torch_function((x, x.as_subclass(Traced)))


def test_function_mode_stack():
    class Outer(TorchFunctionMode):
        pass

    class Inner(TorchFunctionMode):
        pass

    assert _compat.function_mode_stack() == []
    with Outer() as outer, Inner() as inner:
        assert _compat.function_mode_stack() == [outer, inner]


def test_torch_function_disabled():
    seen = []

    class Seen(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.ones(2)
    with Seen():
        with _compat.torch_function_disabled():
            x.add(x)
        assert not seen
        x.add(x)
    assert seen


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
def test_legacy_reduction():
    assert _compat.legacy_reduction(None, False) == "none"
    assert _compat.legacy_reduction(False, None) == "sum"
    assert _compat.legacy_reduction(None, None) == "mean"


def test_module_hooks():
    module = torch.nn.Linear(2, 2)
    own = (
        module.register_forward_pre_hook,
        module.register_forward_hook,
        module.register_full_backward_hook,
        module.register_full_backward_pre_hook,
    )
    everywhere = (
        torch.nn.modules.module.register_module_forward_hook,
        torch.nn.modules.module.register_module_forward_pre_hook,
        torch.nn.modules.module.register_module_full_backward_hook,
    )
    assert not _compat.module_has_hooks(module) and not _compat.global_module_hooks()
    for register in own + everywhere:
        handle = register(lambda *args: None)
        assert _compat.module_has_hooks(module) == (register in own), register
        assert _compat.global_module_hooks() == (register in everywhere), register
        handle.remove()
    assert not _compat.module_has_hooks(module) and not _compat.global_module_hooks()


def test_own_parameters():
    module = torch.nn.Linear(2, 3, bias=False)
    assert dict(_compat.own_parameters(module)) == {"weight": module.weight, "bias": None}
    assert not _compat.own_parameters(torch.nn.Sequential(module))  # a child's are its own


def test_fake_tensor_mode():
    with _compat.fake_tensor_mode():
        out = pk.mm(torch.empty(3, 4), torch.empty(4, 5))
    assert out.shape == (3, 5) and type(out).__name__ == "FakeTensor"


def test_cuda_arch_flags(monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    flags = _compat.cuda_arch_flags()
    assert "-gencode=arch=compute_80,code=sm_80" in flags
    assert "-gencode=arch=compute_90,code=compute_90" in flags
