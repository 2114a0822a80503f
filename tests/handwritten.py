""""Hand-written" as a checkable property: inside a pykernels op, ATen may allocate, view, copy,
cast and fill, and nothing else. The profiler records every ATen op a call runs; these helpers
hold that record against an allowlist, so a new ATen op inside a pykernels op (an arithmetic
fallback, a reduction, a BLAS call behind aten::mm) fails the tests until someone decides it
belongs here."""
import re

import torch

# ATen ops that move or describe data without computing on it, grouped by what they do: those the
# profiled tests meet, and their obvious kin (the other views). Casts (_to_copy, copy_ between
# dtypes) are conversions, not arithmetic. Nothing here adds, multiplies, compares, reduces or
# selects by value.
ALLOWED_ATEN = {
    # allocation
    "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resize_", "aten::lift_fresh",
    # allocation filled with a constant
    "aten::zeros", "aten::ones_like", "aten::full", "aten::scalar_tensor", "aten::fill_", "aten::zero_",
    # views and metadata
    "aten::as_strided", "aten::view", "aten::reshape", "aten::expand", "aten::t", "aten::transpose", "aten::permute",
    "aten::unsqueeze", "aten::squeeze", "aten::select", "aten::slice", "aten::alias", "aten::detach",
    "aten::detach_", "aten::result_type", "aten::promote_types",
    # copies and casts (including reading one element back as a number)
    "aten::clone", "aten::copy_", "aten::_to_copy", "aten::to", "aten::item", "aten::_local_scalar_dense",
}

# Whatever computes: none of these may ever be added to ALLOWED_ATEN (a guard against a careless edit).
ARITHMETIC_ATEN = {
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::true_divide", "aten::floor_divide", "aten::neg", "aten::neg_", "aten::reciprocal",
    "aten::pow", "aten::square", "aten::exp", "aten::log", "aten::sqrt", "aten::sum", "aten::mean", "aten::relu",
    "aten::relu_", "aten::threshold", "aten::threshold_backward", "aten::clamp", "aten::clamp_min", "aten::where",
    "aten::maximum", "aten::mm", "aten::bmm", "aten::matmul", "aten::addmm", "aten::addmv", "aten::linear",
    "aten::mv", "aten::dot", "aten::baddbmm", "aten::mse_loss", "aten::mse_loss_backward", "aten::sum_to_size",
    "aten::_foreach_add", "aten::_foreach_mul", "aten::lerp", "aten::addcmul", "aten::addcdiv",
}
assert not ALLOWED_ATEN & ARITHMETIC_ATEN


def _is_pykernels(name):
    """A pykernels op (pykernels::add) or the autograd node of one (CppNode<pykernels::autograd::Add>)."""
    return name.startswith("pykernels::") or "pykernels::autograd::" in name


def profile(fn):
    """Runs fn under the CPU profiler; returns its events."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return list(prof.events())


def aten_ops(events):
    """Names of all ATen ops among the events."""
    return {e.name for e in events if e.name.startswith("aten::")}


def aten_ops_inside_pykernels(events):
    """Names of the ATen ops that ran inside a pykernels op or its backward (at any depth)."""
    inside = set()
    for e in events:
        if not e.name.startswith("aten::"):
            continue
        parent = e.cpu_parent
        while parent is not None and not _is_pykernels(parent.name):
            parent = parent.cpu_parent
        if parent is not None:
            inside.add(e.name)
    return inside


def assert_kernels_only(fn, what):
    """fn, which calls pykernels only, must run pykernels ops and no ATen op outside ALLOWED_ATEN,
    inside those ops or around them (the Python wrappers, the autograd functions)."""
    events = profile(fn)
    assert any(_is_pykernels(e.name) for e in events), f"{what} ran no pykernels op"
    used = aten_ops(events) - ALLOWED_ATEN
    assert not used, f"{what} ran ATen ops outside the allowlist: {sorted(used)}"


def assert_no_compute_inside_pykernels(events, what):
    """Within a profile of code that also runs torch itself (a training loop under the drop-in
    mode), the ATen ops inside pykernels ops must all be allowed."""
    used = aten_ops_inside_pykernels(events) - ALLOWED_ATEN
    assert not used, f"{what}: pykernels ops ran ATen ops outside the allowlist: {sorted(used)}"


# ---------------------------------------------------------------------------------------------- symbols
#
# The same property for the built extension: the ATen functions it links against. Dispatched ATen
# ops are called as at::_ops::<op>::call/redispatch, so those must name an allowed op (as spelled
# in the dispatcher, overload included); BLAS, cuBLAS, cuDNN and oneDNN must not appear at all;
# ATen's own kernels (at::native::, at::cpu::, at::cuda::, ...) only where they resize or allocate.

ALLOWED_DISPATCHED_OPS = {
    # what the extension calls today
    "empty_memory_format", "empty_strided", "zeros", "scalar_tensor", "fill__Scalar", "zero_", "as_strided",
    "view", "view_as", "reshape", "expand", "transpose_int", "unsqueeze", "result_type_Tensor", "result_type_Scalar",
    "promote_types", "clone", "copy_", "to_dtype", "to_device", "item",
    # and the same kinds of op it may come to need
    "empty_like", "resize_", "fill__Tensor", "permute", "squeeze_dim", "select_int", "slice_Tensor", "alias",
    "detach", "_to_copy", "_local_scalar_dense",
}
ALLOWED_ATEN_KERNELS = {"at::native::resize_output"}
BLAS_PATTERN = r"(^|[^a-z])([sdhcz]gemm_?|[sdcz]gemv_?|cblas_|mkl_|cublas|cudnn|dnnl_|mkldnn|openblas|_gemm_batch)"


def forbidden_symbols(demangled):
    """From demangled undefined symbol names, those a hand-written extension must not use."""
    bad = []
    for name in demangled:
        if re.search(BLAS_PATTERN, name, re.IGNORECASE):
            bad.append(name)
            continue
        op = re.match(r"at::_ops::(\w+)::(call|redispatch)\(", name)
        if op:
            if op.group(1) not in ALLOWED_DISPATCHED_OPS:
                bad.append(name)
            continue
        kernel = re.match(r"(at::(native|cpu|cuda|meta|compositeexplicitautograd\w*|compositeimplicitautograd)::\w+)",
                          name)
        if kernel and kernel.group(1) not in ALLOWED_ATEN_KERNELS:
            bad.append(name)
    return bad
