// The node framework the derivatives are written in.
//
// An op's Autograd kernel runs the op below autograd and, when a gradient is wanted, records a
// node of the graph, as ATen's generated kernels do: the node's next edges are its inputs'
// gradient edges, what its backward reads is kept in SavedVariables (checked against in-place
// writes when unpacked; packed by saved-tensor hooks), and its outputs take it as their history.
// A torch::autograd::Function would record the same graph, but torch.func transforms refuse
// those; they work through plain nodes, as they do through ATen's.
//
// A kernel reads:
//
//   if (!records("mm", self, mat2)) return below_autograd([&] { return op::mm(self, mat2); });
//   auto node = make_node<MmBackward>(self, mat2);   // next edges: self's, mat2's
//   ... save what the backward reads, as node->needs_input(i) says ...
//   Tensor out = below_autograd([&] { return op::mm(self, mat2); });
//   finish(node, out);                                // out's history; saved outputs; hooks
#pragma once

#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "common/torch_compat.h"

namespace pykernels::autograd {

using at::Tensor;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// The backward of one op. `Self` declares:
//   static constexpr const char* kName;            its name in the graph (grad_fn.name())
//   auto saved();                                  std::tie of its SavedVariables, if it has any
//   variable_list gradients(const Tensor& grad);   one gradient per next edge, undefined where
//                                                  needs(i) is false; or, for an op with several
//                                                  outputs, gradients(const variable_list&)
// and, where it keeps an output, save_outputs(outputs...) (called by finish and finish_inplace,
// once the outputs have it as their history: an output saved before would hold its node alive).
template <typename Self>
struct Derivative : torch::autograd::Node {
  std::string name() const override { return Self::kName; }

  variable_list apply(variable_list&& grads) override {
    // The saved variables are read here and released by another thread's release_variables.
    std::lock_guard<std::mutex> lock(mutex_);
    // No gradient reaches the outputs (gradcheck tries this): none reaches the inputs.
    if (std::none_of(grads.begin(), grads.end(), [](const Tensor& g) { return g.defined(); })) {
      return variable_list(num_outputs());
    }
    Self& self = static_cast<Self&>(*this);
    if constexpr (std::is_invocable_v<decltype(&Self::gradients), Self&, const Tensor&>) {
      return self.gradients(grads[0]);
    } else {
      return self.gradients(grads);
    }
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::apply([](auto&... saved) { (saved.reset_data(), ...); }, static_cast<Self&>(*this).saved());
    static_cast<Self&>(*this).release_more();
  }

  // Whether input i's gradient is wanted: while recording, whether it requires grad.
  bool needs_input(size_t i) const { return should_compute_output(i); }

 protected:
  // What a node saves (`Self` hides these where it saves something): its SavedVariables, and other
  // state it drops with them (mse_loss's kept gradient).
  std::tuple<> saved() { return {}; }
  void release_more() {}

  // Whether this backward is to compute input i's gradient: it requires grad, and the running
  // backward wants it (torch.autograd.grad(out, inputs) asks for some inputs only).
  bool needs(size_t i) const { return task_should_compute_output(i); }

  Tensor unpack(const SavedVariable& saved) { return saved.unpack(getptr()); }
};

// torch.func.jvp, jacfwd and dual tensors carry forward-mode gradients, for which the ops have no
// formulas: refused, as torch refuses an op without one, rather than leaving the tangent out.
template <typename... Tensors>
void check_no_forward_grad(const char* op, const Tensors&... inputs) {
  TORCH_CHECK_NOT_IMPLEMENTED(!(inputs._fw_grad(/*level=*/0).defined() || ...), "pykernels.", op,
                              ": forward-mode automatic differentiation is not supported");
}

// Whether a call with these inputs records a node: grad mode is on and one requires grad.
template <typename... Tensors>
bool records(const char* op, const Tensors&... inputs) {
  check_no_forward_grad(op, inputs...);
  return torch::autograd::compute_requires_grad(inputs...);
}

// Runs a forward below the Autograd key, and below ADInplaceOrView: a functional op writes
// nothing, and its outputs are no views.
template <typename Forward>
decltype(auto) below_autograd(Forward&& forward) {
  at::AutoDispatchBelowADInplaceOrView below;
  return forward();
}

// Runs an in-place write below the Autograd key: ADInplaceOrView still bumps the written
// tensor's version counter.
template <typename Write>
void write_below_autograd(Write&& write) {
  at::AutoDispatchBelowAutograd below;
  write();
}

// A new node of type T whose next edges are the inputs' gradient edges, in order.
template <typename T, typename... Tensors>
compat::NodePtr<T> make_node(const Tensors&... inputs) {
  compat::NodePtr<T> node = compat::make_node<T>();
  node->set_next_edges(torch::autograd::collect_next_edges(inputs...));
  return node;
}

namespace detail {

// T::save_outputs, where T declares it.
template <typename T, typename = void>
struct HasSaveOutputs : std::false_type {};
template <typename T>
struct HasSaveOutputs<T, std::void_t<decltype(&T::save_outputs)>> : std::true_type {};

}  // namespace detail

// Makes `node` the history of the outputs (output i is the node's input i), lets it save what it
// keeps of them, and tells the node-creation hooks. An output of a dtype without gradients (an
// integer sum of floats) stays out of the graph, as a custom Function leaves it.
template <typename Ptr, typename... Outputs>  // Ptr: compat::NodePtr<a node type>
void finish(const Ptr& node, const Outputs&... outputs) {
  using T = typename Ptr::element_type;
  const compat::NodeRef ref = node;
  auto attach = [&](const Tensor& out) {
    if (torch::autograd::isDifferentiableType(out.scalar_type())) {
      torch::autograd::set_history(out, ref);
    } else {
      node->add_input_metadata(torch::autograd::Node::undefined_input());
    }
  };
  (attach(outputs), ...);
  if constexpr (detail::HasSaveOutputs<T>::value) node->save_outputs(outputs...);
  compat::fire_node_creation_hooks(ref);
}

// The same for an in-place op: `self`, just written, takes the node as its history (torch's
// rebase_history, which goes through CopySlices for a view).
template <typename Ptr>  // compat::NodePtr<a node type>
void finish_inplace(const Ptr& node, const Tensor& self) {
  using T = typename Ptr::element_type;
  const compat::NodeRef attached = compat::rebase_history(self, compat::NodeRef(node));
  if constexpr (detail::HasSaveOutputs<T>::value) node->save_outputs(self);
  compat::fire_node_creation_hooks(attached);
}

}  // namespace pykernels::autograd
