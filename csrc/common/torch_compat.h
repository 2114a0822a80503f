// Every private torch C++ API that pykernels uses, named once.
//
// torch makes no promise about these: headers under ATen/native and torch/csrc, and functions in
// impl namespaces, move or change between releases. Each is reached here only, with the torch
// releases it was checked on; the test suite, run on the oldest supported torch and the newest,
// exercises every one (the comment names a test). Host code only: no CUDA source includes it.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/native/Resize.h>
#include <c10/core/DispatchKeySet.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/utils/pybind.h>

namespace pykernels::compat {

// Resizes an out= tensor to `shape` as torch's own out= ops do, warning when it held data of
// another shape. Checked on torch 2.4.1 and 2.14.1 (test_binary_out_resized).
inline void resize_output(const at::Tensor& out, at::IntArrayRef shape) { at::native::resize_output(out, shape); }

// Bumps a tensor's version counter, as torch's in-place ops do. Checked on torch 2.4.1 and
// 2.14.1 (test_inplace_op_bumps_the_version_counter).
inline void bump_version(const at::Tensor& t) { torch::autograd::impl::bump_version(t); }

// The dispatch keys below ADInplaceOrView, for redispatching past it. Checked on torch 2.4.1 and
// 2.14.1 (test_unary_inplace_and_out_ops_bump_the_version_counter).
inline constexpr c10::DispatchKeySet after_ad_inplace_or_view_keyset = c10::after_ADInplaceOrView_keyset;

// The dispatch keys below Autograd, for redispatching past it. Checked on torch 2.4.1 and 2.14.1
// (test_rejected_out_writes_nothing).
inline constexpr c10::DispatchKeySet after_autograd_keyset = c10::after_autograd_keyset;

// autograd's rules for an in-place write into `self` (no leaf that requires grad, no view of one,
// no view that may not be written in place), as torch's own in-place ops check them before they
// write. Checked on torch 2.4.1 and 2.14.1 (test_rejected_inplace_writes_nothing).
inline void check_inplace(const at::Tensor& self, bool requires_grad) {
  torch::autograd::check_inplace(self, requires_grad);
}

}  // namespace pykernels::compat

// A pybind11 binding's body between these gives torch's exceptions and warnings to Python as
// torch.ops does (torch's own bindings use them). Checked on torch 2.4.1 and 2.14.1
// (tests/test_errors.py).
#define PK_TRANSLATE_ERRORS_BEGIN HANDLE_TH_ERRORS
#define PK_TRANSLATE_ERRORS_END END_HANDLE_TH_ERRORS_PYBIND
