// linear, linear_relu and linear_backward: checks, output allocation and the fused kernels'
// problems (LinearForward, LinearBackward in kernels.h).
//
// The input may have any number of batch dimensions (*, in), as torch.nn.functional.linear
// takes it; the kernels see it as an m x in matrix (a view where its strides allow one, else a
// copy) and the weight, out x in (a 1-D weight is one row, and the output then has no feature
// dimension), through their strides. A bias with one value per output feature (or one value)
// is the kernels' epilogue; a bias that also varies along the batch is added afterwards.
//
// float32 and float64 with no empty dimension run the fused kernels. Everything else is composed
// of the mm, add, relu, relu_backward and sum kernels (these ops' device kernels, called directly):
// float16 and bfloat16, whose products the GEMM accumulates in float, and the empty cases, so
// that no device kernel of the fused ops meets an empty dimension.
#include <ATen/ATen.h>

#include <optional>
#include <tuple>
#include <vector>

#include "common/checks.h"
#include "common/matrices.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

bool fused_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }

// A linear layer's operands, checked, as the kernels take them.
struct Linear {
  int64_t m, n, k;
  Tensor x;  // input as m x k
  Tensor w;  // weight as n x k
  std::vector<int64_t> out_shape;
  // The bias as n contiguous values, where it has one per output feature (or one in all).
  Tensor feature_bias;
};

void check_floating(const char* op, const Tensor& t) {
  check_dtype_supported(op, t.scalar_type());
  PK_CHECK_NOT_IMPLEMENTED(at::isFloatingType(t.scalar_type()), op, "dtype ", t.scalar_type(),
                           " is not supported (floating types only)");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  PK_CHECK(a.scalar_type() == b.scalar_type(), op, "expected the operands to have the same dtype, but got ",
           a.scalar_type(), " and ", b.scalar_type());
}

// input (*, in), weight (out, in) or (in): m, n, k and the 2-D views.
Linear check_layer(const char* op, const Tensor& input, const Tensor& weight) {
  check_defined(op, input, "input");
  check_defined(op, weight, "weight");
  check_same_device(op, input, weight);
  check_floating(op, input);
  check_same_dtype(op, input, weight);
  PK_CHECK(input.dim() >= 1 && weight.dim() >= 1, op, "both arguments need to be at least 1D, but they are ",
           input.dim(), "D and ", weight.dim(), "D");
  PK_CHECK(weight.dim() <= 2, op, "weight must be 1-D or 2-D, got shape ", weight.sizes());
  const int64_t k = input.size(-1);
  const int64_t n = weight.dim() == 2 ? weight.size(0) : 1;
  PK_CHECK(weight.size(-1) == k, op, "input and weight shapes cannot be multiplied (",
           c10::multiply_integers(input.sizes().slice(0, input.dim() - 1)), "x", k, " and ", weight.size(-1), "x", n,
           ")");
  Linear l;
  l.m = c10::multiply_integers(input.sizes().slice(0, input.dim() - 1));
  l.n = n;
  l.k = k;
  l.x = as_matrix(input, l.m, k);
  l.w = weight.dim() == 2 ? weight : weight.unsqueeze(0);
  l.out_shape = input.sizes().slice(0, input.dim() - 1).vec();
  if (weight.dim() == 2) l.out_shape.push_back(n);
  return l;
}

Linear check_linear(const char* op, const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  Linear l = check_layer(op, input, weight);
  if (bias.has_value() && bias->defined()) {
    check_same_device(op, input, *bias);
    check_same_dtype(op, input, *bias);
    // torch.nn.functional.linear takes a bias beside a 1-D weight only where it does not go through
    // addmm (a 2-D input), and then only as a 0-dim tensor.
    PK_CHECK(weight.dim() == 2 || (bias->dim() == 0 && input.dim() != 2), op, "a 1-D weight takes only a 0-dim bias, ",
             "and none with a 2-D input; got a bias of shape ", bias->sizes(), " and an input of shape ",
             input.sizes());
    const auto shape = broadcast_shape(op, l.out_shape, bias->sizes());
    PK_CHECK(at::IntArrayRef(shape) == at::IntArrayRef(l.out_shape), op, "a bias of shape ", bias->sizes(),
             " does not broadcast to the output's shape ", at::IntArrayRef(l.out_shape));
    const bool per_feature = bias->numel() == 1 || (weight.dim() == 2 && bias->size(-1) == l.n && bias->numel() == l.n);
    if (per_feature) l.feature_bias = contiguous_copy(bias->view({-1}).expand({l.n}));
  }
  return l;
}

bool has(const std::optional<Tensor>& t) { return t.has_value() && t->defined(); }

// relu(x @ w^T + bias) (or without the ReLU) composed of the mm, add and relu kernels.
Tensor composed_forward(const Linear& l, const std::optional<Tensor>& bias, bool relu) {
  Tensor out = ops::mm(l.x, l.w.transpose(0, 1)).view(l.out_shape);
  if (has(bias)) out = ops::add(out, *bias, 1);
  if (relu) ops::relu_(out);
  return out;
}

Tensor linear_forward(const char* op, const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                      bool relu) {
  const Linear l = check_linear(op, input, weight, bias);
  const bool fused = fused_dtype(input.scalar_type()) && l.m > 0 && l.n > 0 && l.k > 0;
  if (!fused) return composed_forward(l, bias, relu);
  if (has(bias) && !l.feature_bias.defined()) {  // a bias along the batch too: added after the fused product
    Tensor out = linear_forward(op, input, weight, std::nullopt, false);
    out = ops::add(out, *bias, 1);
    if (relu) ops::relu_(out);
    return out;
  }
  Tensor out = at::empty({l.m, l.n}, l.x.options());
  const LinearForward p{l.m,
                        l.n,
                        l.k,
                        l.x.data_ptr(),
                        l.x.stride(0),
                        l.x.stride(1),
                        l.w.data_ptr(),
                        l.w.stride(0),
                        l.w.stride(1),
                        l.feature_bias.defined() ? l.feature_bias.data_ptr() : nullptr,
                        out.data_ptr(),
                        relu,
                        out.scalar_type()};
  PYKERNELS_DEVICE_CALL(out.device(), linear_forward_kernel, p);
  return out.view(l.out_shape);
}

}  // namespace

// The op's device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor linear(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return linear_forward("linear", input, weight, bias, false);
}

Tensor linear_relu(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return linear_forward("linear_relu", input, weight, bias, true);
}

std::tuple<Tensor, Tensor, Tensor> linear_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                                   const std::optional<Tensor>& result,
                                                   std::array<bool, 3> output_mask) {
  const char* op = "linear_backward";
  check_defined(op, grad_output, "grad_output");
  const Linear l = check_layer(op, input, weight);
  check_same_device(op, input, grad_output);
  check_same_dtype(op, input, grad_output);
  PK_CHECK(grad_output.sizes() == at::IntArrayRef(l.out_shape), op, "grad_output of shape ", grad_output.sizes(),
           " does not match the output's shape ", at::IntArrayRef(l.out_shape));
  const bool relu = has(result);
  if (relu) {
    check_same_device(op, input, *result);
    check_same_dtype(op, input, *result);
    PK_CHECK(result->sizes() == grad_output.sizes(), op, "result of shape ", result->sizes(),
             " does not match grad_output's shape ", grad_output.sizes());
  }
  const auto [want_input, want_weight, want_bias] = output_mask;
  // Both m x n and contiguous, as the kernels read them.
  const Tensor g = contiguous_copy(grad_output).view({l.m, l.n});
  const Tensor r = relu ? contiguous_copy(*result).view({l.m, l.n}) : Tensor();

  if (!fused_dtype(input.scalar_type()) || l.m == 0 || l.n == 0 || l.k == 0) {
    const Tensor masked = relu ? ops::relu_backward(g, r) : g;
    return {want_input ? ops::mm(masked, l.w).view(input.sizes()) : Tensor(),
            want_weight ? ops::mm(masked.transpose(0, 1), l.x).view(weight.sizes()) : Tensor(),
            want_bias ? ops::sum(masked, std::vector<int64_t>{0}, false, std::nullopt) : Tensor()};
  }
  const auto options = l.x.options();
  Tensor grad_input = want_input ? at::empty({l.m, l.k}, options) : Tensor();
  Tensor grad_weight = want_weight ? at::empty({l.n, l.k}, options) : Tensor();
  Tensor grad_bias = want_bias ? at::empty({l.n}, options) : Tensor();
  auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  const LinearBackward p{l.m,
                         l.n,
                         l.k,
                         g.data_ptr(),
                         ptr(r),
                         l.x.data_ptr(),
                         l.x.stride(0),
                         l.x.stride(1),
                         l.w.data_ptr(),
                         l.w.stride(0),
                         l.w.stride(1),
                         ptr(grad_input),
                         ptr(grad_weight),
                         ptr(grad_bias),
                         relu,
                         g.scalar_type()};
  PYKERNELS_DEVICE_CALL(g.device(), linear_backward_kernel, p);
  return {want_input ? grad_input.view(input.sizes()) : Tensor(),
          want_weight ? grad_weight.view(weight.sizes()) : Tensor(), grad_bias};
}

}  // namespace ops

}  // namespace pykernels
