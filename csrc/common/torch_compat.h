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
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/utils/pybind.h>

#include <memory>
#include <type_traits>

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

// How autograd nodes are owned: by c10::intrusive_ptr in torch 2.14.1, by std::shared_ptr in
// 2.4.1, where a node is made with torch's deleteNode as its deleter (it frees a long chain of
// nodes without recursing once per node). Told apart by Node's base class rather than a version
// number. Checked on torch 2.4.1 and 2.14.1 (tests/test_derivatives.py).
inline constexpr bool intrusive_nodes = std::is_base_of_v<c10::intrusive_ptr_target, torch::autograd::Node>;

template <typename T>
using NodePtr = std::conditional_t<intrusive_nodes, c10::intrusive_ptr<T>, std::shared_ptr<T>>;

// The owning pointer to a node that torch's own functions take (an Edge's).
using NodeRef = decltype(torch::autograd::Edge::function);

template <typename T, typename... Args>
NodePtr<T> make_node(Args&&... args) {
  if constexpr (intrusive_nodes) {
    return c10::make_intrusive<T>(std::forward<Args>(args)...);
  } else {
    // torch::autograd::deleteNode, found by ADL
    return NodePtr<T>(new T(std::forward<Args>(args)...), [](T* node) { deleteNode(node); });
  }
}

// Tells torch.autograd.graph.node_creation_hook's hooks about a node once it is complete (its
// outputs attached, what it saves saved), as torch's own kernels do; torch 2.4.1 has no such hooks.
// Checked on torch 2.4.1 and 2.14.1 (test_node_creation_hooks_see_the_nodes).
#if __has_include(<torch/csrc/autograd/node_creation_hook.h>)
inline void fire_node_creation_hooks(const NodeRef& node) { torch::autograd::fire_node_creation_hooks(node); }
#else
inline void fire_node_creation_hooks(const NodeRef&) {}
#endif

// Makes `node` the history of `self`, just written in place (through a CopySlices node when
// `self` is a view), and returns the node that `self`'s history now starts at. torch 2.14.1's
// rebase_history returns that node; 2.4.1's returns nothing, and the node is `node` there except
// for a view, whose CopySlices no creation hook can see in 2.4.1 anyway. Checked on torch 2.4.1
// and 2.14.1 (test_inplace_on_a_view).
template <typename Ptr>  // NodeRef; a template, so that only the branch of this torch is compiled
NodeRef rebase_history(const at::Tensor& self, const Ptr& node) {
  if constexpr (std::is_void_v<decltype(torch::autograd::rebase_history(self, node))>) {
    torch::autograd::rebase_history(self, node);
    return node;
  } else {
    return torch::autograd::rebase_history(self, node);
  }
}

}  // namespace pykernels::compat

// A pybind11 binding's body between these gives torch's exceptions and warnings to Python as
// torch.ops does (torch's own bindings use them). Checked on torch 2.4.1 and 2.14.1
// (tests/test_errors.py).
#define PK_TRANSLATE_ERRORS_BEGIN HANDLE_TH_ERRORS
#define PK_TRANSLATE_ERRORS_END END_HANDLE_TH_ERRORS_PYBIND
