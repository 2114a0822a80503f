// The derivatives of the in-place ops, and their Autograd kernels, as ATen's own in-place ops
// record them: torch's checks for a write into self (check_inplace) before anything is written;
// the node's next edges taken from self's history before the write; the write, below autograd
// (ADInplaceOrView bumps self's version); then self takes the node as its history
// (rebase_history, through CopySlices for a view).
//
// The gradients are the functional op's. Where a formula reads self's old value (mul_, div_ by
// other), a copy is kept, made before the write and recorded by autograd: a double backward
// reaches self's earlier history through it.
#include <ATen/core/grad_mode.h>

#include <vector>

#include "autograd/helpers.h"
#include "autograd/node.h"
#include "generated/calls.h"
#include "generated/ops.h"

namespace pykernels::autograd {
namespace {

using Sizes = std::vector<int64_t>;

// Whether a call writing into `self` records a node, after autograd's checks for that write
// (check_inplace): before anything is written.
template <typename... Others>
bool records_write(const char* name, const Tensor& self, const Others&... others) {
  const bool grad = records(name, self, others...);
  compat::check_inplace(self, grad);
  return grad;
}

// ---- add_, sub_ -------------------------------------------------------------------------------
// self: grad        other: ±alpha * grad        (summed to other's shape)

template <typename Self, int kSign>
struct AddSubInplaceBackward : Derivative<Self> {
  Sizes other_sizes;
  c10::Scalar alpha;

  variable_list gradients(const Tensor& grad) {
    return {this->needs(0) ? grad : Tensor(),
            this->needs(1) ? sum_to_shape(scaled(grad, kSign < 0 ? -alpha : alpha), other_sizes) : Tensor()};
  }
};

struct AddInplaceBackward : AddSubInplaceBackward<AddInplaceBackward, 1> {
  static constexpr const char* kName = "pykernels::autograd::AddInplaceBackward";
};
struct SubInplaceBackward : AddSubInplaceBackward<SubInplaceBackward, -1> {
  static constexpr const char* kName = "pykernels::autograd::SubInplaceBackward";
};

template <typename Node, void (*write)(const Tensor&, const Tensor&, const c10::Scalar&)>
void add_or_sub_(const Tensor& self, const Tensor& other, const c10::Scalar& alpha, const char* name) {
  if (!records_write(name, self, other)) return write_below_autograd([&] { write(self, other, alpha); });
  auto node = make_node<Node>(self, other);
  node->other_sizes = other.sizes().vec();
  node->alpha = alpha;
  write_below_autograd([&] { write(self, other, alpha); });
  finish_inplace(node, self);
}

// ---- mul_, div_ -------------------------------------------------------------------------------
// mul_:  self: grad * other        other: grad * old self
// div_:  self: grad / other        other: -grad * old self / other^2
// A rounded quotient (floor, trunc) is piecewise constant: zero gradients, as torch gives.
//
// self.mul_(self) multiplies by self's old value: both formulas then read the copy.

struct MulInplaceBackward : Derivative<MulInplaceBackward> {
  static constexpr const char* kName = "pykernels::autograd::MulInplaceBackward";
  SavedVariable other, old_self;
  Sizes other_sizes;
  auto saved() { return std::tie(other, old_self); }

  variable_list gradients(const Tensor& grad) {
    return {needs(0) ? op::mul(grad, unpack(other)) : Tensor(),
            needs(1) ? sum_to_shape(op::mul(grad, unpack(old_self)), other_sizes) : Tensor()};
  }
};

struct DivInplaceBackward : Derivative<DivInplaceBackward> {
  static constexpr const char* kName = "pykernels::autograd::DivInplaceBackward";
  SavedVariable other, old_self;
  Sizes self_sizes, other_sizes;
  bool rounded = false;
  auto saved() { return std::tie(other, old_self); }

  variable_list gradients(const Tensor& grad) {
    if (rounded) {
      return {needs(0) ? zero_gradient(self_sizes, grad) : Tensor(),
              needs(1) ? zero_gradient(other_sizes, grad) : Tensor()};
    }
    Tensor grad_self, grad_other;
    if (needs(0)) grad_self = op::div(grad, unpack(other));
    if (needs(1)) {
      const Tensor o = unpack(other);
      grad_other = sum_to_shape(op::neg(op::div(op::mul(grad, unpack(old_self)), op::mul(o, o))), other_sizes);
    }
    return {grad_self, grad_other};
  }
};

// Saves into `node` what its formulas read: `other` where `keep_other` says, and self's old value
// (a copy made now, before the write) for other's gradient.
template <typename Node>
void save_operands(Node& node, const Tensor& self, const Tensor& other, bool keep_other) {
  const bool aliased = other.is_same(self);
  Tensor old_self;
  if (node.needs_input(1) || (aliased && keep_other)) old_self = self.clone();
  if (keep_other) node.other = SavedVariable(aliased ? old_self : other, false);
  if (node.needs_input(1)) node.old_self = SavedVariable(old_self, false);
}

// ---- neg_, relu_ ------------------------------------------------------------------------------

// self: -grad
struct NegInplaceBackward : Derivative<NegInplaceBackward> {
  static constexpr const char* kName = "pykernels::autograd::NegInplaceBackward";
  variable_list gradients(const Tensor& grad) { return {op::neg(grad)}; }
};

// self: relu_backward(grad, result), the result being self's new value
struct ReluInplaceBackward : Derivative<ReluInplaceBackward> {
  static constexpr const char* kName = "pykernels::autograd::ReluInplaceBackward";
  SavedVariable result;
  auto saved() { return std::tie(result); }
  void save_outputs(const Tensor& self) { result = SavedVariable(self, true, /*is_inplace_on_view=*/self.is_view()); }
  variable_list gradients(const Tensor& grad) { return {op::relu_backward(grad, unpack(result))}; }
};

template <typename Node, void (*write)(const Tensor&)>
void unary_(const Tensor& self, const char* name) {
  if (!records_write(name, self)) return write_below_autograd([&] { write(self); });
  auto node = make_node<Node>(self);
  write_below_autograd([&] { write(self); });
  finish_inplace(node, self);
}

}  // namespace

// ---- the Autograd kernels ---------------------------------------------------------------------

void add_(const Tensor& self, const Tensor& other, const c10::Scalar& alpha) {
  add_or_sub_<AddInplaceBackward, op::add_>(self, other, alpha, "add_");
}

void sub_(const Tensor& self, const Tensor& other, const c10::Scalar& alpha) {
  add_or_sub_<SubInplaceBackward, op::sub_>(self, other, alpha, "sub_");
}

void mul_(const Tensor& self, const Tensor& other) {
  if (!records_write("mul_", self, other)) return write_below_autograd([&] { op::mul_(self, other); });
  auto node = make_node<MulInplaceBackward>(self, other);
  node->other_sizes = other.sizes().vec();
  save_operands(*node, self, other, /*keep_other=*/node->needs_input(0));
  write_below_autograd([&] { op::mul_(self, other); });
  finish_inplace(node, self);
}

void div_(const Tensor& self, const Tensor& other, std::optional<c10::string_view> rounding_mode) {
  if (!records_write("div_", self, other)) {
    return write_below_autograd([&] { op::div_(self, other, rounding_mode); });
  }
  auto node = make_node<DivInplaceBackward>(self, other);
  node->self_sizes = self.sizes().vec();
  node->other_sizes = other.sizes().vec();
  node->rounded = rounding_mode.has_value();
  if (!node->rounded) save_operands(*node, self, other, /*keep_other=*/true);  // both formulas read other
  write_below_autograd([&] { op::div_(self, other, rounding_mode); });
  finish_inplace(node, self);
}

void neg_(const Tensor& self) { unary_<NegInplaceBackward, op::neg_>(self, "neg_"); }

void relu_(const Tensor& self) { unary_<ReluInplaceBackward, op::relu_>(self, "relu_"); }

}  // namespace pykernels::autograd
