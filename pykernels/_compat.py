"""Every private torch API that pykernels uses, named once.

torch makes no promise about these names, so a torch release may move or change any of them:
each is looked up here only, with the torch releases it was checked on, and tests/test_compat.py
exercises every one, on the oldest supported torch and the newest. Callers import the names
from here, never from torch._C, torch._ops and the like.

setup.py loads this file on its own, before the extension exists: it imports nothing from
pykernels.
"""

import torch

# ---- the dispatcher ----------------------------------------------------------------------------

# An op overload's schema (torch._C.FunctionSchema): its arguments, their names, defaults and
# alias annotations. Checked on torch 2.4.1 and 2.14.1.


def op_schema(op):
    return op._schema


# Whether an op ("pykernels::mm") has a kernel of its own for a dispatch key ("Autograd"), not a
# fallback. Checked on torch 2.4.1 and 2.14.1.
has_kernel_for_dispatch_key = torch._C._dispatch_has_kernel_for_dispatch_key

# The qualified names ("pykernels::mm") of every registered operator. Checked on torch 2.4.1 and
# 2.14.1.
all_op_names = torch._C._dispatch_get_all_op_names

# The types of torch.ops.<namespace>.<op> and of its overloads (torch.ops.<namespace>.<op>.default).
# Checked on torch 2.4.1 and 2.14.1.
OpOverload = torch._ops.OpOverload
OpOverloadPacket = torch._ops.OpOverloadPacket

# ---- autograd and functorch, on every public call's path ----------------------------------------

# Whether a torch.func transform (grad, vmap, jacrev ...) is active. Checked on torch 2.4.1 and
# 2.14.1.
functorch_transforms_active = torch._C._are_functorch_transforms_active


def any_requires_grad_in_python(*args):
    """Whether any tensor among the arguments, or in a list or tuple among them, requires grad."""
    return any(
        a.requires_grad
        if isinstance(a, torch.Tensor)
        else isinstance(a, (list, tuple)) and any_requires_grad_in_python(*a)
        for a in args
    )


# The same test in one C++ call, where torch has it: checked on torch 2.14.1; torch 2.4.1 has no
# such function, and the Python form takes its place.
any_requires_grad = getattr(torch._C, "_any_requires_grad", any_requires_grad_in_python)

# A context manager that dispatches below the Autograd keys, as a custom op's forward does.
# Checked on torch 2.4.1 and 2.14.1.
AutoDispatchBelowAutograd = torch._C._AutoDispatchBelowAutograd

# Whether a __torch_function__ (a tensor subclass's or a mode's) applies to a tuple of
# arguments. Checked on torch 2.4.1 and 2.14.1.
has_torch_function = torch._C._has_torch_function

# The TorchFunctionModes active on the calling thread, innermost last. Checked on torch 2.4.1 and
# 2.14.1.
function_mode_stack = torch.overrides._get_current_function_mode_stack

# A context manager under which no __torch_function__ (mode or subclass) runs. Checked on torch
# 2.4.1 and 2.14.1.
torch_function_disabled = torch._C.DisableTorchFunction

# ---- torch.nn ---------------------------------------------------------------------------------

# The reduction ("none", "mean", "sum") that the deprecated size_average and reduce arguments of
# the loss functions stand for. Checked on torch 2.4.1 and 2.14.1.
legacy_reduction = torch.nn._reduction.legacy_get_string

# Whether calling a module runs a hook: one of its own, or a global one (registered for every
# module). torch.nn.Module.__call__ runs its forward and nothing else otherwise, which is when
# pykernels.nn.Sequential may run two or three modules as one op. Together, the test __call__ makes
# itself. Checked on torch 2.4.1 and 2.14.1.


def module_has_hooks(module):
    return bool(
        module._backward_hooks or module._backward_pre_hooks or module._forward_hooks or module._forward_pre_hooks
    )


# A module's own parameters by name ({"weight": ..., "bias": ...}), read from its store without
# Module.__getattr__, which costs about a microsecond per parameter. Checked on torch 2.4.1 and 2.14.1.


def own_parameters(module):
    return module._parameters


def global_module_hooks():
    m = torch.nn.modules.module
    return bool(
        m._global_backward_pre_hooks
        or m._global_backward_hooks
        or m._global_forward_hooks
        or m._global_forward_pre_hooks
    )


# ---- torch.compile's tracing ----------------------------------------------------------------------


def fake_tensor_mode():
    """A new FakeTensorMode: tensors with shapes, dtypes and devices but no data, as torch.compile
    traces with. Checked on torch 2.4.1 and 2.14.1."""
    from torch._subclasses.fake_tensor import FakeTensorMode  # imported on use: only tests trace by hand

    return FakeTensorMode()


# ---- building -------------------------------------------------------------------------------------


def cuda_arch_flags():
    """nvcc's -gencode flags for TORCH_CUDA_ARCH_LIST, as torch passes them to a CUDA extension.
    Checked on torch 2.4.1 and 2.14.1."""
    from torch.utils import cpp_extension  # imported on use: only setup.py builds

    return cpp_extension._get_cuda_arch_flags()
