// The derivatives of the number forms (add.Scalar, add.Scalar_Tensor, add_.Scalar, ...,
// pow.Scalar): the tensor form's, with the number a constant, so only the tensor operand has a
// gradient. They are nodes of their own rather than the tensor form's node over a wrapped-number
// tensor: no dispatched call may carry a wrapped number, because tracers (torch.compile) hand
// those to Python as plain numbers, where a Tensor argument refuses them.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/scalar_tensor.h>

#include <vector>

#include "autograd/helpers.h"
#include "autograd/node.h"
#include "generated/calls.h"
#include "generated/ops.h"

namespace pykernels::autograd {
namespace {

using Sizes = std::vector<int64_t>;
using Rounding = std::optional<c10::string_view>;

template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* overload_of, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(overload_of, overload).typed<Signature>();
}

// ---- the gradient is the incoming one times a constant ----------------------------------------
// add.Scalar, sub.Scalar:  input: grad            add.Scalar_Tensor:  other: alpha * grad
// mul.Scalar:  input: grad * other                sub.Scalar_Tensor:  other: -alpha * grad
// mul.Scalar_Tensor:  other: grad * input         (and the in-place forms, as their functional ones)

struct ScaledBackward : Derivative<ScaledBackward> {
  static constexpr const char* kName = "pykernels::autograd::ScaledBackward";
  c10::Scalar factor;

  variable_list gradients(const Tensor& grad) { return {needs(0) ? scaled(grad, factor) : Tensor()}; }
};

// The Autograd kernel of a functional number form whose one tensor operand is `tensor`.
template <typename Forward>
Tensor scaled_form(const char* name, const Tensor& tensor, const c10::Scalar& factor, Forward&& forward) {
  if (!records(name, tensor)) return below_autograd(forward);
  auto node = make_node<ScaledBackward>(tensor);
  node->factor = factor;
  Tensor out = below_autograd(forward);
  finish(node, out);
  return out;
}

// The same for an in-place number form: torch's checks for the write into `self` before it.
template <typename Write>
void scaled_form_(const char* name, const Tensor& self, const c10::Scalar& factor, Write&& write) {
  const bool grad = records(name, self);
  compat::check_inplace(self, grad);
  if (!grad) return write_below_autograd(write);
  auto node = make_node<ScaledBackward>(self);
  node->factor = factor;
  write_below_autograd(write);
  finish_inplace(node, self);
}

// ---- division by a number ---------------------------------------------------------------------
// div.Scalar, div_.Scalar:  input: grad / other (0 for a rounded quotient, piecewise constant)

struct DivScalarBackward : Derivative<DivScalarBackward> {
  static constexpr const char* kName = "pykernels::autograd::DivScalarBackward";
  c10::Scalar other;
  Sizes input_sizes;
  bool rounded = false;

  variable_list gradients(const Tensor& grad) {
    if (!needs(0)) return {Tensor()};
    if (rounded) return {zero_gradient(input_sizes, grad)};
    return {op::div(grad, at::scalar_tensor(other, grad.options()))};
  }
};

// ---- a number divided by a tensor -------------------------------------------------------------
// div.Scalar_Tensor:  other: -grad * input / other^2 (0 for a rounded quotient)

struct RdivScalarBackward : Derivative<RdivScalarBackward> {
  static constexpr const char* kName = "pykernels::autograd::RdivScalarBackward";
  SavedVariable other;
  c10::Scalar input;
  Sizes other_sizes;
  bool rounded = false;
  auto saved() { return std::tie(other); }

  variable_list gradients(const Tensor& grad) {
    if (!needs(0)) return {Tensor()};
    if (rounded) return {zero_gradient(other_sizes, grad)};
    const Tensor o = unpack(other);
    return {op::neg(op::div(scaled(grad, input), op::mul(o, o)))};
  }
};

// ---- a number to a tensor power ---------------------------------------------------------------
// pow.Scalar:  exponent: grad * result * log(input), 0 where input is 0 and exponent >= 0 (torch's
// pow_backward_exponent, which pow_tensor_backward computes)

struct PowScalarBackward : Derivative<PowScalarBackward> {
  static constexpr const char* kName = "pykernels::autograd::PowScalarBackward";
  SavedVariable exponent, result;
  c10::Scalar input;
  auto saved() { return std::tie(exponent, result); }

  void save_outputs(const Tensor& out) { result = SavedVariable(out, true); }

  variable_list gradients(const Tensor& grad) {
    if (!needs(0)) return {Tensor()};
    const Tensor e = unpack(exponent);
    const Tensor base = at::scalar_tensor(input, grad.options());
    Tensor grad_exponent;
    {
      at::AutoDispatchBelowAutograd below;  // one fused kernel, with no derivative of its own
      grad_exponent = std::get<1>(op::pow_tensor_backward(grad, base, e, unpack(result)));
    }
    const Tensor inputs[] = {grad, e};
    return {first_derivative_only(grad_exponent,
                                  "pykernels.pow: double backward with a tensor exponent is not supported", inputs)};
  }
};

}  // namespace

Tensor add_Scalar(const Tensor& input, const c10::Scalar& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<Tensor(const Tensor&, const c10::Scalar&, const c10::Scalar&)>("pykernels::add", "Scalar");
  return scaled_form("add", input, 1, [&] { return op.call(input, other, alpha); });
}

Tensor add_Scalar_Tensor(const c10::Scalar& input, const Tensor& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<Tensor(const c10::Scalar&, const Tensor&, const c10::Scalar&)>("pykernels::add", "Scalar_Tensor");
  return scaled_form("add", other, alpha, [&] { return op.call(input, other, alpha); });
}

void add__Scalar(const Tensor& input, const c10::Scalar& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<void(const Tensor&, const c10::Scalar&, const c10::Scalar&)>("pykernels::add_", "Scalar");
  scaled_form_("add_", input, 1, [&] { op.call(input, other, alpha); });
}

Tensor sub_Scalar(const Tensor& input, const c10::Scalar& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<Tensor(const Tensor&, const c10::Scalar&, const c10::Scalar&)>("pykernels::sub", "Scalar");
  return scaled_form("sub", input, 1, [&] { return op.call(input, other, alpha); });
}

Tensor sub_Scalar_Tensor(const c10::Scalar& input, const Tensor& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<Tensor(const c10::Scalar&, const Tensor&, const c10::Scalar&)>("pykernels::sub", "Scalar_Tensor");
  return scaled_form("sub", other, -alpha, [&] { return op.call(input, other, alpha); });
}

void sub__Scalar(const Tensor& input, const c10::Scalar& other, const c10::Scalar& alpha) {
  static const auto op =
      handle<void(const Tensor&, const c10::Scalar&, const c10::Scalar&)>("pykernels::sub_", "Scalar");
  scaled_form_("sub_", input, 1, [&] { op.call(input, other, alpha); });
}

Tensor mul_Scalar(const Tensor& input, const c10::Scalar& other) {
  static const auto op = handle<Tensor(const Tensor&, const c10::Scalar&)>("pykernels::mul", "Scalar");
  return scaled_form("mul", input, other, [&] { return op.call(input, other); });
}

Tensor mul_Scalar_Tensor(const c10::Scalar& input, const Tensor& other) {
  static const auto op = handle<Tensor(const c10::Scalar&, const Tensor&)>("pykernels::mul", "Scalar_Tensor");
  return scaled_form("mul", other, input, [&] { return op.call(input, other); });
}

void mul__Scalar(const Tensor& input, const c10::Scalar& other) {
  static const auto op = handle<void(const Tensor&, const c10::Scalar&)>("pykernels::mul_", "Scalar");
  scaled_form_("mul_", input, other, [&] { op.call(input, other); });
}

Tensor div_Scalar(const Tensor& input, const c10::Scalar& other, Rounding rounding_mode) {
  static const auto op = handle<Tensor(const Tensor&, const c10::Scalar&, Rounding)>("pykernels::div", "Scalar");
  auto forward = [&] { return op.call(input, other, rounding_mode); };
  if (!records("div", input)) return below_autograd(forward);
  auto node = make_node<DivScalarBackward>(input);
  node->other = other;
  node->input_sizes = input.sizes().vec();
  node->rounded = rounding_mode.has_value();
  Tensor out = below_autograd(forward);
  finish(node, out);
  return out;
}

Tensor div_Scalar_Tensor(const c10::Scalar& input, const Tensor& other, Rounding rounding_mode) {
  static const auto op = handle<Tensor(const c10::Scalar&, const Tensor&, Rounding)>("pykernels::div", "Scalar_Tensor");
  auto forward = [&] { return op.call(input, other, rounding_mode); };
  if (!records("div", other)) return below_autograd(forward);
  auto node = make_node<RdivScalarBackward>(other);
  node->input = input;
  node->other_sizes = other.sizes().vec();
  node->rounded = rounding_mode.has_value();
  if (!node->rounded) node->other = SavedVariable(other, false);
  Tensor out = below_autograd(forward);
  finish(node, out);
  return out;
}

void div__Scalar(const Tensor& input, const c10::Scalar& other, Rounding rounding_mode) {
  static const auto op = handle<void(const Tensor&, const c10::Scalar&, Rounding)>("pykernels::div_", "Scalar");
  auto write = [&] { op.call(input, other, rounding_mode); };
  const bool grad = records("div_", input);
  compat::check_inplace(input, grad);
  if (!grad) return write_below_autograd(write);
  auto node = make_node<DivScalarBackward>(input);
  node->other = other;
  node->input_sizes = input.sizes().vec();
  node->rounded = rounding_mode.has_value();
  write_below_autograd(write);
  finish_inplace(node, input);
}

Tensor pow_Scalar(const c10::Scalar& input, const Tensor& exponent) {
  static const auto op = handle<Tensor(const c10::Scalar&, const Tensor&)>("pykernels::pow", "Scalar");
  auto forward = [&] { return op.call(input, exponent); };
  if (!records("pow", exponent)) return below_autograd(forward);
  auto node = make_node<PowScalarBackward>(exponent);
  node->input = input;
  node->exponent = SavedVariable(exponent, false);
  Tensor out = below_autograd(forward);
  finish(node, out);
  return out;
}

}  // namespace pykernels::autograd
