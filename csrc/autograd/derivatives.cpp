// The derivatives of the functional ops, one op after another in the order of the schema table
// (pykernels/optable.py), each as torch's derivatives.yaml would give it: the node, what it saves, the
// gradient of each input, and the Autograd kernel that records it (node.h).
//
// Inputs are saved only where a gradient that is wanted reads them, as ATen saves them: less
// memory, and no "modified by an inplace operation" error for a tensor no formula reads.
#include <ATen/ExpandUtils.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/scalar_tensor.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "autograd/helpers.h"
#include "autograd/node.h"
#include "generated/calls.h"
#include "generated/ops.h"

namespace pykernels::autograd {
namespace {

using Sizes = std::vector<int64_t>;
using Product = Tensor (*)(const Tensor&, const Tensor&);

// ---- mm, bmm ----------------------------------------------------------------------------------
// self: grad @ mat2^T        mat2: self^T @ grad        (each stored in its operand's layout)

template <typename Self, Product product>
struct MatrixProductBackward : Derivative<Self> {
  SavedVariable self, mat2;
  bool self_column_major = false, mat2_column_major = false;
  auto saved() { return std::tie(self, mat2); }

  variable_list gradients(const Tensor& grad) {
    return {this->needs(0) ? product_like(self_column_major, product, grad, this->unpack(mat2).transpose(-1, -2))
                           : Tensor(),
            this->needs(1) ? product_like(mat2_column_major, product, this->unpack(self).transpose(-1, -2), grad)
                           : Tensor()};
  }
};

struct MmBackward : MatrixProductBackward<MmBackward, op::mm> {
  static constexpr const char* kName = "pykernels::autograd::MmBackward";
};
struct BmmBackward : MatrixProductBackward<BmmBackward, op::bmm> {
  static constexpr const char* kName = "pykernels::autograd::BmmBackward";
};

template <typename Node, Product product>
Tensor matrix_product(const char* name, const Tensor& self, const Tensor& mat2) {
  if (!records(name, self, mat2)) return below_autograd([&] { return product(self, mat2); });
  auto node = make_node<Node>(self, mat2);
  Tensor out = below_autograd([&] { return product(self, mat2); });
  // After the forward, which has checked that both are matrices (batches of them for bmm).
  if (node->needs_input(0)) {
    node->mat2 = SavedVariable(mat2, false);
    node->self_column_major = transposed(self);
  }
  if (node->needs_input(1)) {
    node->self = SavedVariable(self, false);
    node->mat2_column_major = transposed(mat2);
  }
  finish(node, out);
  return out;
}

// ---- matmul -----------------------------------------------------------------------------------
// Undo matmul's 1-D promotions (a vector self is a 1 x n matrix, a vector other an n x 1 one),
// take the batched-matrix gradients, then sum each over the batch dimensions its operand was
// broadcast along.

struct MatmulBackward : Derivative<MatmulBackward> {
  static constexpr const char* kName = "pykernels::autograd::MatmulBackward";
  SavedVariable self, other;
  Sizes self_sizes, other_sizes;
  auto saved() { return std::tie(self, other); }

  variable_list gradients(const Tensor& grad) {
    Sizes self2 = self_sizes, other2 = other_sizes;
    if (self2.size() == 1) self2.insert(self2.begin(), 1);
    if (other2.size() == 1) other2.push_back(1);
    const at::IntArrayRef self_batch = at::IntArrayRef(self2).slice(0, self2.size() - 2);
    const at::IntArrayRef other_batch = at::IntArrayRef(other2).slice(0, other2.size() - 2);
    Sizes grad2 = at::infer_size(self_batch, other_batch);
    grad2.push_back(self2[self2.size() - 2]);
    grad2.push_back(other2.back());
    const Tensor g = grad.reshape(grad2);
    Tensor grad_self, grad_other;
    if (needs(0)) {
      const Tensor o = unpack(other);
      const Tensor o2 = o.dim() == 1 ? o.unsqueeze(-1) : o;
      grad_self = sum_to_shape(op::matmul(g, o2.transpose(-1, -2)), self2).reshape(self_sizes);
    }
    if (needs(1)) {
      const Tensor s = unpack(self);
      const Tensor s2 = s.dim() == 1 ? s.unsqueeze(0) : s;
      grad_other = sum_to_shape(op::matmul(s2.transpose(-1, -2), g), other2).reshape(other_sizes);
    }
    return {grad_self, grad_other};
  }
};

// ---- add, sub ---------------------------------------------------------------------------------
// self: grad        other: ±alpha * grad        (each summed to its operand's shape)

template <typename Self, int kSign>
struct AddSubBackward : Derivative<Self> {
  Sizes self_sizes, other_sizes;
  c10::Scalar alpha;

  variable_list gradients(const Tensor& grad) {
    return {this->needs(0) ? sum_to_shape(grad, self_sizes) : Tensor(),
            this->needs(1) ? sum_to_shape(scaled(grad, kSign < 0 ? -alpha : alpha), other_sizes) : Tensor()};
  }
};

struct AddBackward : AddSubBackward<AddBackward, 1> {
  static constexpr const char* kName = "pykernels::autograd::AddBackward";
};
struct SubBackward : AddSubBackward<SubBackward, -1> {
  static constexpr const char* kName = "pykernels::autograd::SubBackward";
};

template <typename Node, Tensor (*forward)(const Tensor&, const Tensor&, const c10::Scalar&)>
Tensor add_or_sub(const char* name, const Tensor& self, const Tensor& other, const c10::Scalar& alpha) {
  if (!records(name, self, other)) return below_autograd([&] { return forward(self, other, alpha); });
  auto node = make_node<Node>(self, other);
  Tensor out = below_autograd([&] { return forward(self, other, alpha); });
  node->self_sizes = self.sizes().vec();
  node->other_sizes = other.sizes().vec();
  node->alpha = alpha;
  finish(node, out);
  return out;
}

// ---- mul --------------------------------------------------------------------------------------
// self: grad * other        other: grad * self

struct MulBackward : Derivative<MulBackward> {
  static constexpr const char* kName = "pykernels::autograd::MulBackward";
  SavedVariable self, other;
  Sizes self_sizes, other_sizes;
  auto saved() { return std::tie(self, other); }

  variable_list gradients(const Tensor& grad) {
    return {needs(0) ? sum_to_shape(op::mul(grad, unpack(other)), self_sizes) : Tensor(),
            needs(1) ? sum_to_shape(op::mul(grad, unpack(self)), other_sizes) : Tensor()};
  }
};

// ---- div --------------------------------------------------------------------------------------
// self: grad / other        other: -grad * self / other^2
// A rounded quotient (floor, trunc) is piecewise constant: zero gradients, as torch gives.

struct DivBackward : Derivative<DivBackward> {
  static constexpr const char* kName = "pykernels::autograd::DivBackward";
  SavedVariable self, other;
  Sizes self_sizes, other_sizes;
  bool rounded = false;
  auto saved() { return std::tie(self, other); }

  variable_list gradients(const Tensor& grad) {
    if (rounded) {
      return {needs(0) ? zero_gradient(self_sizes, grad) : Tensor(),
              needs(1) ? zero_gradient(other_sizes, grad) : Tensor()};
    }
    Tensor grad_self, grad_other;
    if (needs(0)) grad_self = sum_to_shape(op::div(grad, unpack(other)), self_sizes);
    if (needs(1)) {
      const Tensor o = unpack(other);
      grad_other = sum_to_shape(op::neg(op::div(op::mul(grad, unpack(self)), op::mul(o, o))), other_sizes);
    }
    return {grad_self, grad_other};
  }
};

// ---- neg, exp, log, sqrt, pow -----------------------------------------------------------------

// self: -grad
struct NegBackward : Derivative<NegBackward> {
  static constexpr const char* kName = "pykernels::autograd::NegBackward";
  variable_list gradients(const Tensor& grad) { return {op::neg(grad)}; }
};

// self: grad * result
struct ExpBackward : Derivative<ExpBackward> {
  static constexpr const char* kName = "pykernels::autograd::ExpBackward";
  SavedVariable result;
  auto saved() { return std::tie(result); }
  void save_outputs(const Tensor& out) { result = SavedVariable(out, true); }
  variable_list gradients(const Tensor& grad) { return {op::mul(grad, unpack(result))}; }
};

// self: grad / self
struct LogBackward : Derivative<LogBackward> {
  static constexpr const char* kName = "pykernels::autograd::LogBackward";
  SavedVariable self;
  auto saved() { return std::tie(self); }
  variable_list gradients(const Tensor& grad) { return {op::div(grad, unpack(self))}; }
};

// self: grad / (2 * result)
struct SqrtBackward : Derivative<SqrtBackward> {
  static constexpr const char* kName = "pykernels::autograd::SqrtBackward";
  SavedVariable result;
  auto saved() { return std::tie(result); }
  void save_outputs(const Tensor& out) { result = SavedVariable(out, true); }
  variable_list gradients(const Tensor& grad) { return {op::div(grad, scaled(unpack(result), 2))}; }
};

// self: grad * exponent * self^(exponent - 1), and 0 for exponent 0 (self^0 is 1 everywhere, 0^0
// included)
struct PowBackward : Derivative<PowBackward> {
  static constexpr const char* kName = "pykernels::autograd::PowBackward";
  SavedVariable self;
  c10::Scalar exponent;
  auto saved() { return std::tie(self); }

  variable_list gradients(const Tensor& grad) {
    const Tensor s = unpack(self);
    const bool integral = exponent.isIntegral(/*includeBool=*/true);
    if (integral ? exponent.toLong() == 0 : exponent.toDouble() == 0.0) return {zero_gradient(s.sizes(), grad)};
    const c10::Scalar lower = integral ? c10::Scalar(exponent.toLong() - 1) : c10::Scalar(exponent.toDouble() - 1.0);
    return {op::mul(grad, scaled(op::pow(s, lower), exponent))};
  }
};

// self, exponent: pow_tensor_backward(grad, self, exponent, result), which applies torch's masks
// (self = 0, exponent = 0), each summed to its operand's shape. That op has no derivative of its
// own: differentiating these gradients once more raises kSecondDerivative.
constexpr const char* kSecondDerivative = "pykernels.pow: double backward with a tensor exponent is not supported";

struct PowTensorTensorBackward : Derivative<PowTensorTensorBackward> {
  static constexpr const char* kName = "pykernels::autograd::PowTensorTensorBackward";
  SavedVariable self, exponent, result;
  Sizes self_sizes, exponent_sizes;
  auto saved() { return std::tie(self, exponent, result); }
  void save_outputs(const Tensor& out) { result = SavedVariable(out, true); }

  variable_list gradients(const Tensor& grad) {
    const Tensor self_value = unpack(self), exponent_value = unpack(exponent), result_value = unpack(result);
    Tensor grad_self, grad_exponent;
    {
      at::AutoDispatchBelowAutograd below;  // one fused kernel, with no derivative of its own
      std::tie(grad_self, grad_exponent) = op::pow_tensor_backward(grad, self_value, exponent_value, result_value);
    }
    const at::Tensor inputs[] = {grad, self_value, exponent_value};
    grad_self = first_derivative_only(grad_self, kSecondDerivative, inputs);
    grad_exponent = first_derivative_only(grad_exponent, kSecondDerivative, inputs);
    return {needs(0) ? sum_to_shape(grad_self, self_sizes) : Tensor(),
            needs(1) ? sum_to_shape(grad_exponent, exponent_sizes) : Tensor()};
  }
};

// ---- sum, mean --------------------------------------------------------------------------------
// self: grad broadcast back over the reduced dimensions (an expanded view: nothing is copied);
// for a mean, divided by the number of elements each output element reduced first.

template <typename Self, bool kMean>
struct ReductionBackward : Derivative<Self> {
  Sizes sizes;
  Sizes dims;  // the reduced dimensions, wrapped and sorted
  bool keepdim = false;

  variable_list gradients(const Tensor& grad) {
    Tensor g = grad;
    if constexpr (kMean) {
      int64_t count = 1;
      for (int64_t d : dims) count *= sizes[d];
      g = op::div(g, at::scalar_tensor(count, g.options()));
    }
    if (!keepdim && !sizes.empty()) {
      for (int64_t d : dims) g = g.unsqueeze(d);
    }
    return {g.expand(sizes)};
  }
};

struct SumBackward : ReductionBackward<SumBackward, false> {
  static constexpr const char* kName = "pykernels::autograd::SumBackward";
};
struct MeanBackward : ReductionBackward<MeanBackward, true> {
  static constexpr const char* kName = "pykernels::autograd::MeanBackward";
};

// The dimensions a reduction over `dim` reduces (none given, or an empty list: all of them), for
// a `dim` the forward has accepted.
Sizes reduced_dims(const Tensor& self, at::OptionalIntArrayRef dim) {
  Sizes dims;
  const int64_t n = self.dim();
  if (n == 0) return dims;
  if (dim.has_value() && !dim->empty()) {
    for (int64_t d : *dim) dims.push_back(((d % n) + n) % n);
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  } else {
    for (int64_t d = 0; d < n; ++d) dims.push_back(d);
  }
  return dims;
}

using ReductionOp = Tensor (*)(const Tensor&, at::OptionalIntArrayRef, bool, std::optional<at::ScalarType>);

template <typename Node, ReductionOp reduce>
Tensor reduction(const char* name, const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                 std::optional<at::ScalarType> dtype) {
  if (!records(name, self)) return below_autograd([&] { return reduce(self, dim, keepdim, dtype); });
  auto node = make_node<Node>(self);
  Tensor out = below_autograd([&] { return reduce(self, dim, keepdim, dtype); });
  node->sizes = self.sizes().vec();
  node->dims = reduced_dims(self, dim);
  node->keepdim = keepdim;
  finish(node, out);
  return out;
}

// ---- relu, relu_backward, relu_and_mask, relu_mask_backward -----------------------------------

// On the CPU the forward keeps a bit mask (relu_and_mask) rather than the output: the backward
// then reads a bit per element instead of the output's four bytes or more.
bool keeps_mask(const Tensor& self) { return self.is_cpu() && at::isFloatingType(self.scalar_type()); }

// self: relu_mask_backward(grad, mask) where the forward kept a mask, else relu_backward(grad, result)
struct ReluBackward : Derivative<ReluBackward> {
  static constexpr const char* kName = "pykernels::autograd::ReluBackward";
  SavedVariable mask, result;
  bool masked = false;
  auto saved() { return std::tie(mask, result); }
  void save_outputs(const Tensor& out) {
    if (!masked) result = SavedVariable(out, true);
  }

  variable_list gradients(const Tensor& grad) {
    return {masked ? op::relu_mask_backward(grad, unpack(mask)) : op::relu_backward(grad, unpack(result))};
  }
};

// relu_backward(grad_output, result) and relu_mask_backward(grad_output, mask) are linear in
// grad_output, and piecewise constant in result (the mask is an integer tensor):
// grad_output: the op itself, applied to grad        result, mask: none
template <typename Self, Product masked>
struct MaskedGradientBackward : Derivative<Self> {
  SavedVariable mask;
  auto saved() { return std::tie(mask); }
  variable_list gradients(const Tensor& grad) {
    return {this->needs(0) ? masked(grad, this->unpack(mask)) : Tensor(), Tensor()};
  }
};

struct ReluBackwardBackward : MaskedGradientBackward<ReluBackwardBackward, op::relu_backward> {
  static constexpr const char* kName = "pykernels::autograd::ReluBackwardBackward";
};
struct ReluMaskBackwardBackward : MaskedGradientBackward<ReluMaskBackwardBackward, op::relu_mask_backward> {
  static constexpr const char* kName = "pykernels::autograd::ReluMaskBackwardBackward";
};

template <typename Node, Product masked>
Tensor masked_gradient(const char* name, const Tensor& grad_output, const Tensor& mask) {
  if (!records(name, grad_output, mask)) return below_autograd([&] { return masked(grad_output, mask); });
  auto node = make_node<Node>(grad_output, mask);
  Tensor out = below_autograd([&] { return masked(grad_output, mask); });
  if (node->needs_input(0)) node->mask = SavedVariable(mask, false);
  finish(node, out);
  return out;
}

// self: relu_mask_backward(grad, mask)        (the mask output has no gradient)
struct ReluAndMaskBackward : Derivative<ReluAndMaskBackward> {
  static constexpr const char* kName = "pykernels::autograd::ReluAndMaskBackward";
  SavedVariable mask;
  auto saved() { return std::tie(mask); }
  variable_list gradients(const Tensor& grad) { return {op::relu_mask_backward(grad, unpack(mask))}; }
};

// ---- mse_loss, mse_loss_backward, mse_loss_and_grad -------------------------------------------

// A tensor with data of its own: not one that torch.compile traces (fake, functional), nor a
// torch.func transform's wrapper.
bool plain(const Tensor& t) {
  return !t.key_set().has_any(
      c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize,
                           c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::FuncTorchBatched}));
}

// self: mse_loss_backward(grad, self, target)        target: -(the same)    (summed to their shapes)
//
// A reduced loss recorded for training (self and target of one shape) computes its gradient in the
// forward's one pass over memory (mse_loss_and_grad) and keeps it. The backward hands it over,
// scaled only when the loss gradient is not exactly 1, so it costs no pass over memory in the
// usual case. A second backward through a retained graph, or one with grad mode on (the kept
// gradient has no graph of its own), computes the gradient afresh.
struct MseLossBackward : Derivative<MseLossBackward> {
  static constexpr const char* kName = "pykernels::autograd::MseLossBackward";
  SavedVariable self, target;
  int64_t reduction = 1;
  Tensor kept;  // the gradient for a loss gradient of 1, until a backward takes it
  auto saved() { return std::tie(self, target); }
  void release_more() { kept = Tensor(); }

  variable_list gradients(const Tensor& grad) {
    // Unpacked even where the kept gradient is used: an in-place write into either since the
    // forward is an error, as it is for any saved tensor.
    const Tensor s = unpack(self), t = unpack(target);
    if (kept.defined() && !at::GradMode::is_enabled()) {
      Tensor g = std::exchange(kept, Tensor());  // handed over once: autograd may accumulate into it in place
      if (!plain(g) || !plain(grad)) {
        g = op::mul(g, grad);
      } else if (!grad.is_cpu() || grad.item<double>() != 1.0) {  // no host sync on a GPU: scale there
        op::mul_(g, grad);
      }
      return {needs(0) ? g : Tensor(), needs(1) ? op::neg(g) : Tensor()};
    }
    const Tensor g = op::mse_loss_backward(grad, s, t, reduction);
    return {needs(0) ? sum_to_shape(g, s.sizes()) : Tensor(),
            needs(1) ? sum_to_shape(op::neg(g), t.sizes()) : Tensor()};
  }
};

// The factor of mse_loss's gradient: 2, or 2 / numel for 'mean' (numel symbolic under torch.compile's
// dynamic shapes). An empty input leaves every term it scales empty or a sum of nothing: any finite
// factor gives torch's zeros, and a count of at least 1 keeps 'mean' from dividing by zero.
c10::Scalar mse_scale(int64_t reduction, const Tensor& gradient) {
  if (reduction != 1) return 2.0;
  return c10::SymFloat(2.0) / c10::SymFloat(gradient.sym_numel().max(1));
}

// mse_loss_backward computes scale * (self - target) * g, with scale = 2 (2 / numel for 'mean') and
// g broadcast over the loss's shape; it is linear in each of g, self and target:
// grad_output: scale * (self - target) * grad        (summed to grad_output's shape)
// self: scale * grad * grad_output                   target: -(the same)
struct MseLossBackwardBackward : Derivative<MseLossBackwardBackward> {
  static constexpr const char* kName = "pykernels::autograd::MseLossBackwardBackward";
  SavedVariable grad_output, self, target;
  int64_t reduction = 1;
  auto saved() { return std::tie(grad_output, self, target); }

  Sizes grad_output_sizes, self_sizes, target_sizes;

  variable_list gradients(const Tensor& grad) {
    const c10::Scalar scale = mse_scale(reduction, grad);
    Tensor grad_grad_output, grad_self, grad_target;
    if (needs(0)) {
      const Tensor difference = op::sub(unpack(self), unpack(target), 1);
      grad_grad_output = sum_to_shape(scaled(op::mul(difference, grad), scale), grad_output_sizes);
    }
    if (needs(1) || needs(2)) {
      const Tensor g = unpack(grad_output);
      const Tensor term = scaled(op::mul(grad, reduction == 0 ? g : g.reshape({})), scale);
      if (needs(1)) grad_self = sum_to_shape(term, self_sizes);
      if (needs(2)) grad_target = sum_to_shape(op::neg(term), target_sizes);
    }
    return {grad_grad_output, grad_self, grad_target};
  }
};

// The kept gradient is scale * (self - target), the loss's derivative by self:
// self: grad_loss * gradient + scale * grad_gradient        target: -(the same)
struct MseLossAndGradBackward : Derivative<MseLossAndGradBackward> {
  static constexpr const char* kName = "pykernels::autograd::MseLossAndGradBackward";
  SavedVariable gradient;
  Sizes self_sizes, target_sizes;
  c10::Scalar scale = 2.0;
  auto saved() { return std::tie(gradient); }
  void save_outputs(const Tensor&, const Tensor& grad) { gradient = SavedVariable(grad, true); }

  variable_list gradients(const variable_list& grads) {
    const Tensor &grad_loss = grads[0], &grad_gradient = grads[1];
    Tensor total;
    if (grad_loss.defined()) total = op::mul(unpack(gradient), grad_loss);
    if (grad_gradient.defined()) {
      total = total.defined() ? op::add(total, grad_gradient, scale) : scaled(grad_gradient, scale);
    }
    return {needs(0) ? sum_to_shape(total, self_sizes) : Tensor(),
            needs(1) ? sum_to_shape(op::neg(total), target_sizes) : Tensor()};
  }
};

}  // namespace

// ---- the Autograd kernels ---------------------------------------------------------------------

Tensor mm(const Tensor& self, const Tensor& mat2) { return matrix_product<MmBackward, op::mm>("mm", self, mat2); }

Tensor bmm(const Tensor& self, const Tensor& mat2) { return matrix_product<BmmBackward, op::bmm>("bmm", self, mat2); }

Tensor matmul(const Tensor& self, const Tensor& other) {
  if (!records("matmul", self, other)) return below_autograd([&] { return op::matmul(self, other); });
  auto node = make_node<MatmulBackward>(self, other);
  Tensor out = below_autograd([&] { return op::matmul(self, other); });
  node->self_sizes = self.sizes().vec();
  node->other_sizes = other.sizes().vec();
  if (node->needs_input(0)) node->other = SavedVariable(other, false);
  if (node->needs_input(1)) node->self = SavedVariable(self, false);
  finish(node, out);
  return out;
}

Tensor add(const Tensor& self, const Tensor& other, const c10::Scalar& alpha) {
  return add_or_sub<AddBackward, op::add>("add", self, other, alpha);
}

Tensor sub(const Tensor& self, const Tensor& other, const c10::Scalar& alpha) {
  return add_or_sub<SubBackward, op::sub>("sub", self, other, alpha);
}

Tensor mul(const Tensor& self, const Tensor& other) {
  if (!records("mul", self, other)) return below_autograd([&] { return op::mul(self, other); });
  auto node = make_node<MulBackward>(self, other);
  Tensor out = below_autograd([&] { return op::mul(self, other); });
  node->self_sizes = self.sizes().vec();
  node->other_sizes = other.sizes().vec();
  if (node->needs_input(0)) node->other = SavedVariable(other, false);
  if (node->needs_input(1)) node->self = SavedVariable(self, false);
  finish(node, out);
  return out;
}

Tensor div(const Tensor& self, const Tensor& other, std::optional<c10::string_view> rounding_mode) {
  if (!records("div", self, other)) return below_autograd([&] { return op::div(self, other, rounding_mode); });
  auto node = make_node<DivBackward>(self, other);
  Tensor out = below_autograd([&] { return op::div(self, other, rounding_mode); });
  node->self_sizes = self.sizes().vec();
  node->other_sizes = other.sizes().vec();
  node->rounded = rounding_mode.has_value();
  if (!node->rounded) {
    node->other = SavedVariable(other, false);
    if (node->needs_input(1)) node->self = SavedVariable(self, false);
  }
  finish(node, out);
  return out;
}

Tensor neg(const Tensor& self) {
  if (!records("neg", self)) return below_autograd([&] { return op::neg(self); });
  auto node = make_node<NegBackward>(self);
  Tensor out = below_autograd([&] { return op::neg(self); });
  finish(node, out);
  return out;
}

Tensor exp(const Tensor& self) {
  if (!records("exp", self)) return below_autograd([&] { return op::exp(self); });
  auto node = make_node<ExpBackward>(self);
  Tensor out = below_autograd([&] { return op::exp(self); });
  finish(node, out);
  return out;
}

Tensor log(const Tensor& self) {
  if (!records("log", self)) return below_autograd([&] { return op::log(self); });
  auto node = make_node<LogBackward>(self);
  Tensor out = below_autograd([&] { return op::log(self); });
  node->self = SavedVariable(self, false);
  finish(node, out);
  return out;
}

Tensor sqrt(const Tensor& self) {
  if (!records("sqrt", self)) return below_autograd([&] { return op::sqrt(self); });
  auto node = make_node<SqrtBackward>(self);
  Tensor out = below_autograd([&] { return op::sqrt(self); });
  finish(node, out);
  return out;
}

Tensor pow(const Tensor& self, const c10::Scalar& exponent) {
  if (!records("pow", self)) return below_autograd([&] { return op::pow(self, exponent); });
  auto node = make_node<PowBackward>(self);
  Tensor out = below_autograd([&] { return op::pow(self, exponent); });
  node->self = SavedVariable(self, false);
  node->exponent = exponent;
  finish(node, out);
  return out;
}

Tensor pow_Tensor_Tensor(const Tensor& self, const Tensor& exponent) {
  if (!records("pow", self, exponent)) return below_autograd([&] { return op::pow_Tensor_Tensor(self, exponent); });
  auto node = make_node<PowTensorTensorBackward>(self, exponent);
  Tensor out = below_autograd([&] { return op::pow_Tensor_Tensor(self, exponent); });
  node->self = SavedVariable(self, false);
  node->exponent = SavedVariable(exponent, false);
  node->self_sizes = self.sizes().vec();
  node->exponent_sizes = exponent.sizes().vec();
  finish(node, out);
  return out;
}

Tensor sum(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, std::optional<at::ScalarType> dtype) {
  return reduction<SumBackward, op::sum>("sum", self, dim, keepdim, dtype);
}

Tensor mean(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, std::optional<at::ScalarType> dtype) {
  return reduction<MeanBackward, op::mean>("mean", self, dim, keepdim, dtype);
}

Tensor relu(const Tensor& self) {
  if (!records("relu", self)) return below_autograd([&] { return op::relu(self); });
  auto node = make_node<ReluBackward>(self);
  node->masked = keeps_mask(self);
  if (node->masked) {
    auto [out, mask] = below_autograd([&] { return op::relu_and_mask(self); });
    node->mask = SavedVariable(mask, false);
    finish(node, out);
    return out;
  }
  Tensor out = below_autograd([&] { return op::relu(self); });
  finish(node, out);
  return out;
}

Tensor relu_backward(const Tensor& grad_output, const Tensor& result) {
  return masked_gradient<ReluBackwardBackward, op::relu_backward>("relu_backward", grad_output, result);
}

std::tuple<Tensor, Tensor> relu_and_mask(const Tensor& self) {
  if (!records("relu_and_mask", self)) return below_autograd([&] { return op::relu_and_mask(self); });
  auto node = make_node<ReluAndMaskBackward>(self);
  auto [out, mask] = below_autograd([&] { return op::relu_and_mask(self); });
  node->mask = SavedVariable(mask, false);
  finish(node, out);  // the mask: no history, so no gradient
  return {out, mask};
}

Tensor relu_mask_backward(const Tensor& grad_output, const Tensor& mask) {
  return masked_gradient<ReluMaskBackwardBackward, op::relu_mask_backward>("relu_mask_backward", grad_output, mask);
}

Tensor mse_loss(const Tensor& self, const Tensor& target, int64_t reduction) {
  if (!records("mse_loss", self, target)) return below_autograd([&] { return op::mse_loss(self, target, reduction); });
  auto node = make_node<MseLossBackward>(self, target);
  Tensor out;
  if ((reduction == 1 || reduction == 2) && self.sizes() == target.sizes() && plain(self) && plain(target)) {
    std::tie(out, node->kept) = below_autograd([&] { return op::mse_loss_and_grad(self, target, reduction); });
  } else {
    out = below_autograd([&] { return op::mse_loss(self, target, reduction); });
  }
  node->self = SavedVariable(self, false);
  node->target = SavedVariable(target, false);
  node->reduction = reduction;
  finish(node, out);
  return out;
}

Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& self, const Tensor& target, int64_t reduction) {
  if (!records("mse_loss_backward", grad_output, self, target)) {
    return below_autograd([&] { return op::mse_loss_backward(grad_output, self, target, reduction); });
  }
  auto node = make_node<MseLossBackwardBackward>(grad_output, self, target);
  Tensor out = below_autograd([&] { return op::mse_loss_backward(grad_output, self, target, reduction); });
  node->grad_output_sizes = grad_output.sizes().vec();
  node->self_sizes = self.sizes().vec();
  node->target_sizes = target.sizes().vec();
  node->reduction = reduction;
  if (node->needs_input(0)) {
    node->self = SavedVariable(self, false);
    node->target = SavedVariable(target, false);
  }
  if (node->needs_input(1) || node->needs_input(2)) node->grad_output = SavedVariable(grad_output, false);
  finish(node, out);
  return out;
}

std::tuple<Tensor, Tensor> mse_loss_and_grad(const Tensor& self, const Tensor& target, int64_t reduction) {
  if (!records("mse_loss_and_grad", self, target)) {
    return below_autograd([&] { return op::mse_loss_and_grad(self, target, reduction); });
  }
  auto node = make_node<MseLossAndGradBackward>(self, target);
  auto [loss, grad] = below_autograd([&] { return op::mse_loss_and_grad(self, target, reduction); });
  node->self_sizes = self.sizes().vec();
  node->target_sizes = target.sizes().vec();
  node->scale = mse_scale(reduction, grad);
  finish(node, loss, grad);
  return {loss, grad};
}

}  // namespace pykernels::autograd
