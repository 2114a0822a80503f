// The derivatives of the fused linear layers and MLP (linear, linear_relu, mlp), in the node
// framework of node.h, as derivatives.cpp writes the others'.
//
// A plain backward (grad mode off) is one call of the fused backward op, linear_backward or
// mlp_backward: the ReLU mask, the bias gradients and the products in as few passes as they
// take. With grad mode on (create_graph=True, torch.func transforms) the same gradients are
// composed of differentiable ops (mm, relu_backward, sum, and linear_relu to recompute the MLP's
// hidden layer with its graph), so that they have derivatives of their own.
//
// The nodes save input and weight whatever is wanted of them (a fused op's backward computes
// from both); an in-place write into either between the forward and the backward is an error
// even where torch's nodes, which save only what each wanted gradient reads, would let it pass.
#include <ATen/core/grad_mode.h>

#include <optional>
#include <tuple>
#include <vector>

#include "autograd/helpers.h"
#include "autograd/node.h"
#include "generated/calls.h"
#include "generated/ops.h"

namespace pykernels::autograd {
namespace {

using Sizes = std::vector<int64_t>;

Tensor value_or_undefined(const std::optional<Tensor>& t) { return t.has_value() ? *t : Tensor(); }
std::optional<Tensor> optional(const Tensor& t) { return t.defined() ? std::optional<Tensor>(t) : std::nullopt; }

// Whether the fused kernels take this bias in their epilogue: one value per output feature, or
// one value in all. Another bias (one that also varies along the batch) is added after the
// product, by add, which records its own node.
// (Sizes as SymInts: torch.compile's dynamic shapes trace through here.)
bool per_feature(const Tensor& bias, const Tensor& weight) {
  if (!bias.defined() || bias.sym_numel() == 1) return true;
  return weight.dim() == 2 && bias.dim() >= 1 && bias.sym_size(-1) == weight.sym_size(0) &&
         bias.sym_numel() == weight.sym_size(0);
}

// A bias gradient, one value per output feature, in the bias's own shape: summed to one value
// for a bias of one value.
Tensor bias_gradient(const Tensor& per_feature_grad, const Sizes& bias_sizes) {
  if (per_feature_grad.sym_numel() == c10::multiply_integers(bias_sizes)) return per_feature_grad.reshape(bias_sizes);
  return op::sum(per_feature_grad, std::nullopt, false, std::nullopt).reshape(bias_sizes);
}

// linear's gradients composed of differentiable ops, for grad (*, n), input (*, k), weight (n, k)
// or (k), and result (the output of linear_relu, or undefined):
// g = relu_backward(grad, result) (grad itself without a ReLU)
// input: g @ weight        weight: g^T @ input        bias: the sum of g over the batch (n values)
std::tuple<Tensor, Tensor, Tensor> composed_linear_gradients(const Tensor& grad, const Tensor& input,
                                                             const Tensor& weight, const Tensor& result,
                                                             std::array<bool, 3> want) {
  const int64_t k = input.size(-1), n = weight.dim() == 2 ? weight.size(0) : 1;
  const int64_t m = c10::multiply_integers(input.sizes().slice(0, input.dim() - 1));
  const Tensor w = weight.dim() == 2 ? weight : weight.unsqueeze(0);
  Tensor g = grad.reshape({m, n});
  if (result.defined()) g = op::relu_backward(g, result.reshape({m, n}));
  return {want[0] ? op::mm(g, w).reshape(input.sizes()) : Tensor(),
          want[1] ? op::mm(g.transpose(0, 1), input.reshape({m, k})).reshape(weight.sizes()) : Tensor(),
          want[2] ? op::sum(g, std::vector<int64_t>{0}, false, std::nullopt) : Tensor()};
}

// ---- linear, linear_relu ------------------------------------------------------------------------
// input: g @ weight        weight: g^T @ input        bias: the sum of g over the batch
// g = grad for linear, relu_backward(grad, result) for linear_relu

struct LinearBackward : Derivative<LinearBackward> {
  static constexpr const char* kName = "pykernels::autograd::LinearBackward";
  SavedVariable input, weight, result;
  bool relu = false;
  Sizes bias_sizes;
  auto saved() { return std::tie(input, weight, result); }
  void save_outputs(const Tensor& out) {
    if (relu) result = SavedVariable(out, true);
  }

  variable_list gradients(const Tensor& grad) {
    const Tensor x = unpack(input), w = unpack(weight), r = relu ? unpack(result) : Tensor();
    const std::array<bool, 3> want{needs(0), needs(1), needs(2)};
    Tensor grad_input, grad_weight, grad_bias;
    if (at::GradMode::is_enabled()) {
      std::tie(grad_input, grad_weight, grad_bias) = composed_linear_gradients(grad, x, w, r, want);
    } else {
      std::tie(grad_input, grad_weight, grad_bias) = op::linear_backward(grad, x, w, optional(r), want);
    }
    if (grad_bias.defined()) grad_bias = bias_gradient(grad_bias, bias_sizes);
    return {grad_input, grad_weight, grad_bias};
  }
};

template <Tensor (*forward)(const Tensor&, const Tensor&, const std::optional<Tensor>&)>
Tensor linear_layer(const char* name, bool relu, const Tensor& input, const Tensor& weight,
                    const std::optional<Tensor>& bias) {
  const Tensor b = value_or_undefined(bias);
  if (!records(name, input, weight, b)) return below_autograd([&] { return forward(input, weight, bias); });
  if (!per_feature(b, weight)) {  // the product, then the bias through add (and relu), each its own node
    const Tensor out = op::add(op::linear(input, weight, std::nullopt), b, 1);
    return relu ? op::relu(out) : out;
  }
  auto node = make_node<LinearBackward>(input, weight, b);
  node->relu = relu;
  Tensor out = below_autograd([&] { return forward(input, weight, bias); });
  // After the forward, which has checked the operands.
  node->input = SavedVariable(input, false);
  node->weight = SavedVariable(weight, false);
  if (b.defined()) node->bias_sizes = b.sizes().vec();
  finish(node, out);
  return out;
}

// ---- mlp ----------------------------------------------------------------------------------------
// The two layers' gradients: h = relu(input @ w1^T + b1) (saved), g2 = grad,
// w2: g2^T @ h        b2: the sum of g2 over the batch
// gh = relu_backward(g2 @ w2, h)
// input: gh @ w1        w1: gh^T @ input        b1: the sum of gh over the batch

struct MlpBackward : Derivative<MlpBackward> {
  static constexpr const char* kName = "pykernels::autograd::MlpBackward";
  SavedVariable input, w1, b1, w2, hidden;
  bool has_b1 = false, has_b2 = false;
  auto saved() { return std::tie(input, w1, b1, w2, hidden); }

  variable_list gradients(const Tensor& grad) {
    const Tensor x = unpack(input), weight1 = unpack(w1), weight2 = unpack(w2);
    if (!at::GradMode::is_enabled()) {
      const std::array<bool, 5> want{needs(0), needs(1), has_b1 && needs(2), needs(3), has_b2 && needs(4)};
      auto [grad_input, grad_w1, grad_b1, grad_w2, grad_b2] =
          op::mlp_backward(grad, x, weight1, weight2, unpack(hidden), want);
      return {grad_input, grad_w1, grad_b1, grad_w2, grad_b2};
    }
    // The hidden layer again, with its graph: the second layer's gradients depend on it.
    const Tensor bias1 = has_b1 ? unpack(b1) : Tensor();
    const Tensor h = op::linear_relu(x, weight1, optional(bias1));
    const bool want_hidden = needs(0) || needs(1) || (has_b1 && needs(2));
    auto [grad_hidden, grad_w2, grad_b2] =
        composed_linear_gradients(grad, h, weight2, Tensor(), {want_hidden, needs(3), has_b2 && needs(4)});
    Tensor grad_input, grad_w1, grad_b1;
    if (want_hidden) {
      std::tie(grad_input, grad_w1, grad_b1) =
          composed_linear_gradients(grad_hidden, x, weight1, h, {needs(0), needs(1), has_b1 && needs(2)});
    }
    return {grad_input, grad_w1, grad_b1, grad_w2, grad_b2};
  }
};

}  // namespace

// ---- the Autograd kernels -----------------------------------------------------------------------

Tensor linear(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return linear_layer<op::linear>("linear", false, input, weight, bias);
}

Tensor linear_relu(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return linear_layer<op::linear_relu>("linear_relu", true, input, weight, bias);
}

Tensor mlp(const Tensor& input, const Tensor& w1, const std::optional<Tensor>& b1, const Tensor& w2,
           const std::optional<Tensor>& b2) {
  const Tensor bias1 = value_or_undefined(b1), bias2 = value_or_undefined(b2);
  if (!records("mlp", input, w1, bias1, w2, bias2)) {
    return below_autograd([&] { return op::mlp(input, w1, b1, w2, b2); });
  }
  auto node = make_node<MlpBackward>(input, w1, bias1, w2, bias2);
  auto [out, hidden] = below_autograd([&] { return op::mlp_forward(input, w1, b1, w2, b2); });
  node->input = SavedVariable(input, false);
  node->w1 = SavedVariable(w1, false);
  node->w2 = SavedVariable(w2, false);
  node->hidden = SavedVariable(hidden, false);
  node->has_b1 = bias1.defined();
  node->has_b2 = bias2.defined();
  if (node->has_b1) node->b1 = SavedVariable(bias1, false);
  finish(node, out);
  return out;
}

}  // namespace pykernels::autograd
