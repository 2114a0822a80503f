""" "Hand-written" as a checkable property: inside a pykernels op, ATen may allocate, view, copy,
cast and fill, and nothing else. The profiler records every ATen op a call runs; these helpers
hold that record against an allowlist, so a new ATen op inside a pykernels op (an arithmetic
fallback, a reduction, a BLAS call behind aten::mm) fails the tests until someone decides it
belongs here. FORBIDDEN, the ATen ops that compute what pykernels covers (the op table's and a
few beyond it), is what the drop-in mode must leave unrun. The tests' one profiler helper is here."""

import re

import torch

from pykernels import optable

# ATen ops that move or describe data without computing on it, grouped by what they do: those the
# profiled tests meet, and their obvious kin (the other views). Casts (_to_copy, copy_ between
# dtypes) are conversions, not arithmetic. Nothing here adds, multiplies, compares, reduces or
# selects by value.
ALLOWED_ATEN = {
    # allocation
    "aten::empty",
    "aten::empty_strided",
    "aten::empty_like",
    "aten::resize_",
    "aten::lift_fresh",
    # allocation filled with a constant
    "aten::zeros",
    "aten::ones_like",
    "aten::full",
    "aten::scalar_tensor",
    "aten::fill_",
    "aten::zero_",
    # views and metadata
    "aten::as_strided",
    "aten::view",
    "aten::reshape",
    "aten::expand",
    "aten::t",
    "aten::transpose",
    "aten::permute",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::select",
    "aten::slice",
    "aten::alias",
    "aten::detach",
    "aten::detach_",
    "aten::result_type",
    "aten::promote_types",
    # copies and casts (including reading one element back as a number)
    "aten::clone",
    "aten::copy_",
    "aten::_to_copy",
    "aten::to",
    "aten::item",
    "aten::_local_scalar_dense",
}

# What computes, which no ATen op may do for pykernels: the ATen ops that the op table says each
# pykernels op replaces, and beyond the table their in-place and foreach forms, the torch
# functions the drop-in mode builds from pykernels ops (linear, clamp, lerp, addcmul, addcdiv, the
# optimizers' _foreach_* arithmetic), and the arithmetic an implementation could fall back on
# (where, maximum, threshold, true_divide, floor_divide, sum_to_size). None of these may ever be
# added to ALLOWED_ATEN (a guard against a careless edit), and none may run under the drop-in mode.
TABLE_ATEN = frozenset(name for op in optable.OPS for name in op.aten)
BEYOND_TABLE = frozenset(
    {
        "aten::exp_",
        "aten::log_",
        "aten::sqrt_",
        "aten::clamp",
        "aten::clamp_",
        "aten::threshold",
        "aten::where",
        "aten::maximum",
        "aten::true_divide",
        "aten::floor_divide",
        "aten::sum_to_size",
        "aten::linear",
        "aten::addmv",
        "aten::lerp",
        "aten::lerp_",
        "aten::addcmul",
        "aten::addcmul_",
        "aten::addcdiv",
        "aten::addcdiv_",
        "aten::_foreach_add",
        "aten::_foreach_add_",
        "aten::_foreach_sub_",
        "aten::_foreach_mul",
        "aten::_foreach_mul_",
        "aten::_foreach_div",
        "aten::_foreach_div_",
        "aten::_foreach_sqrt",
        "aten::_foreach_sqrt_",
        "aten::_foreach_lerp_",
        "aten::_foreach_addcmul_",
        "aten::_foreach_addcdiv_",
        "aten::_foreach_neg",
        "aten::_foreach_pow",
    }
)
FORBIDDEN = TABLE_ATEN | BEYOND_TABLE
assert not ALLOWED_ATEN & FORBIDDEN


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


def aten_ops_run_by(fn):
    """Names of the ATen ops that fn runs."""
    return aten_ops(profile(fn))


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


def assert_kernels_only(fn, what, replaced=frozenset()):
    """fn, which calls pykernels only, must run pykernels ops and no ATen op outside ALLOWED_ATEN,
    inside those ops or around them (the Python wrappers, the autograd functions). replaced: the
    ATen ops the called op replaces (the table's `aten`), named as such if one runs."""
    events = profile(fn)
    assert any(_is_pykernels(e.name) for e in events), f"{what} ran no pykernels op"
    ran = aten_ops(events)
    assert not ran & replaced, f"{what} ran the ATen ops it replaces: {sorted(ran & replaced)}"
    used = ran - ALLOWED_ATEN
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
    "empty_memory_format",
    "empty_strided",
    "zeros",
    "scalar_tensor",
    "fill__Scalar",
    "zero_",
    "as_strided",
    "view",
    "view_as",
    "reshape",
    "expand",
    "transpose_int",
    "unsqueeze",
    "result_type_Tensor",
    "result_type_Scalar",
    "promote_types",
    "clone",
    "copy_",
    "to_dtype",
    "to_device",
    "item",
    # and the same kinds of op it may come to need
    "empty_like",
    "resize_",
    "fill__Tensor",
    "permute",
    "squeeze_dim",
    "select_int",
    "slice_Tensor",
    "alias",
    "detach",
    "_to_copy",
    "_local_scalar_dense",
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
        kernel = re.match(
            r"(at::(native|cpu|cuda|meta|compositeexplicitautograd\w*|compositeimplicitautograd)::\w+)", name
        )
        if kernel and kernel.group(1) not in ALLOWED_ATEN_KERNELS:
            bad.append(name)
    return bad
