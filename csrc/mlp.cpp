// mlp, mlp_forward and mlp_backward: the two-layer MLP relu(input @ w1^T + b1) @ w2^T + b2 as one
// op, checks, output allocation and the fused kernels' problems (MlpForward, MlpBackward in
// kernels.h), every operand made contiguous (a no-op for parameters and a contiguous batch).
//
// Where the fused kernels do not apply, the MLP is its two linear layers (linear_relu, then
// linear; linear_backward twice): float16 and bfloat16, empty dimensions, and on a GPU a hidden
// layer wider than the CUDA kernels take (kCudaMaxHidden), since they keep a block of hidden
// activations in shared memory.
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

constexpr int64_t kCudaMaxHidden = 128;

bool has(const std::optional<Tensor>& t) { return t.has_value() && t->defined(); }

struct Mlp {
  int64_t batch, in, hidden, out;
  std::vector<int64_t> batch_shape;  // input's dimensions before `in`
  bool fused;                        // whether the fused kernels take it
};

void check_operand(const char* op, const Tensor& input, const Tensor& t, const char* name) {
  check_defined(op, t, name);
  check_same_device(op, input, t);
  PK_CHECK(t.scalar_type() == input.scalar_type(), op, "expected ", name, " to have the input's dtype ",
           input.scalar_type(), ", but got ", t.scalar_type());
}

// input (*, in), w1 (hidden, in), w2 (out, hidden).
Mlp check_layers(const char* op, const Tensor& input, const Tensor& w1, const Tensor& w2) {
  check_defined(op, input, "input");
  check_dtype_supported(op, input.scalar_type());
  PK_CHECK_NOT_IMPLEMENTED(at::isFloatingType(input.scalar_type()), op, "dtype ", input.scalar_type(),
                           " is not supported (floating types only)");
  check_operand(op, input, w1, "w1");
  check_operand(op, input, w2, "w2");
  PK_CHECK(input.dim() >= 1, op, "input must be at least 1-D, got a 0-D tensor");
  PK_CHECK(w1.dim() == 2 && w2.dim() == 2, op, "w1 and w2 must be matrices, got shapes ", w1.sizes(), " and ",
           w2.sizes());
  PK_CHECK(w1.size(1) == input.size(-1), op, "input of shape ", input.sizes(), " does not fit w1 of shape ",
           w1.sizes());
  PK_CHECK(w2.size(1) == w1.size(0), op, "w2 of shape ", w2.sizes(), " does not fit w1 of shape ", w1.sizes());
  Mlp s;
  s.batch_shape = input.sizes().slice(0, input.dim() - 1).vec();
  s.batch = c10::multiply_integers(s.batch_shape);
  s.in = input.size(-1);
  s.hidden = w1.size(0);
  s.out = w2.size(0);
  const auto dtype = input.scalar_type();
  s.fused = (dtype == at::kFloat || dtype == at::kDouble) && s.batch > 0 && s.in > 0 && s.hidden > 0 && s.out > 0 &&
            (input.is_cpu() || s.hidden <= kCudaMaxHidden);
  return s;
}

void check_bias(const char* op, const Tensor& input, const std::optional<Tensor>& bias, const char* name,
                int64_t size) {
  if (!has(bias)) return;
  check_operand(op, input, *bias, name);
  PK_CHECK(bias->dim() == 1 && bias->size(0) == size, op, name, " must have shape (", size, "), got ", bias->sizes());
}

Mlp check_mlp(const char* op, const Tensor& input, const Tensor& w1, const std::optional<Tensor>& b1, const Tensor& w2,
              const std::optional<Tensor>& b2) {
  Mlp s = check_layers(op, input, w1, w2);
  check_bias(op, input, b1, "b1", s.hidden);
  check_bias(op, input, b2, "b2", s.out);
  return s;
}

std::vector<int64_t> with_last(std::vector<int64_t> shape, int64_t last) {
  shape.push_back(last);
  return shape;
}

// A bias copied contiguous, or an undefined tensor for none (not an optional: GCC then sees a
// maybe-uninitialized read through it).
Tensor contiguous_or_none(const std::optional<Tensor>& t) { return has(t) ? contiguous_copy(*t) : Tensor(); }

const void* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// (out, hidden) from the fused kernel; hidden only when keep_hidden.
std::tuple<Tensor, Tensor> fused_forward(const Mlp& s, const Tensor& input, const Tensor& w1,
                                         const std::optional<Tensor>& b1, const Tensor& w2,
                                         const std::optional<Tensor>& b2, bool keep_hidden) {
  const Tensor x = contiguous_copy(as_matrix(input, s.batch, s.in));
  const Tensor w1c = contiguous_copy(w1), w2c = contiguous_copy(w2);
  const Tensor b1c = contiguous_or_none(b1), b2c = contiguous_or_none(b2);
  Tensor out = at::empty(with_last(s.batch_shape, s.out), x.options());
  Tensor hidden = keep_hidden ? at::empty(with_last(s.batch_shape, s.hidden), x.options()) : Tensor();
  const MlpForward p{s.batch,          s.in,
                     s.hidden,         s.out,
                     x.data_ptr(),     w1c.data_ptr(),
                     ptr_or_null(b1c), w2c.data_ptr(),
                     ptr_or_null(b2c), keep_hidden ? hidden.data_ptr() : nullptr,
                     out.data_ptr(),   x.scalar_type()};
  PYKERNELS_DEVICE_CALL(x.device(), mlp_forward_kernel, p);
  return {out, hidden};
}

}  // namespace

// The op's device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor mlp(const Tensor& input, const Tensor& w1, const std::optional<Tensor>& b1, const Tensor& w2,
           const std::optional<Tensor>& b2) {
  const Mlp s = check_mlp("mlp", input, w1, b1, w2, b2);
  if (!s.fused) return ops::linear(ops::linear_relu(input, w1, b1), w2, b2);
  return std::get<0>(fused_forward(s, input, w1, b1, w2, b2, false));
}

std::tuple<Tensor, Tensor> mlp_forward(const Tensor& input, const Tensor& w1, const std::optional<Tensor>& b1,
                                       const Tensor& w2, const std::optional<Tensor>& b2) {
  const Mlp s = check_mlp("mlp_forward", input, w1, b1, w2, b2);
  if (!s.fused) {
    Tensor hidden = ops::linear_relu(input, w1, b1);
    return {ops::linear(hidden, w2, b2), hidden};
  }
  return fused_forward(s, input, w1, b1, w2, b2, true);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> mlp_backward(const Tensor& grad_output, const Tensor& input,
                                                                const Tensor& w1, const Tensor& w2,
                                                                const Tensor& hidden, std::array<bool, 5> output_mask) {
  const char* op = "mlp_backward";
  const Mlp s = check_layers(op, input, w1, w2);
  check_operand(op, input, grad_output, "grad_output");
  check_operand(op, input, hidden, "hidden");
  PK_CHECK(grad_output.sizes() == at::IntArrayRef(with_last(s.batch_shape, s.out)), op, "grad_output of shape ",
           grad_output.sizes(), " does not match the output's shape ",
           at::IntArrayRef(with_last(s.batch_shape, s.out)));
  PK_CHECK(hidden.sizes() == at::IntArrayRef(with_last(s.batch_shape, s.hidden)), op, "hidden of shape ",
           hidden.sizes(), " does not match the hidden layer's shape ",
           at::IntArrayRef(with_last(s.batch_shape, s.hidden)));
  const auto [want_input, want_w1, want_b1, want_w2, want_b2] = output_mask;
  if (!s.fused) {
    const bool want_hidden = want_input || want_w1 || want_b1;
    auto [grad_hidden, grad_w2, grad_b2] =
        ops::linear_backward(grad_output, hidden, w2, std::nullopt, {want_hidden, want_w2, want_b2});
    if (!want_hidden) return {Tensor(), Tensor(), Tensor(), grad_w2, grad_b2};
    auto [grad_input, grad_w1, grad_b1] =
        ops::linear_backward(grad_hidden, input, w1, hidden, {want_input, want_w1, want_b1});
    return {grad_input, grad_w1, grad_b1, grad_w2, grad_b2};
  }
  const Tensor g = contiguous_copy(grad_output), x = contiguous_copy(input), h = contiguous_copy(hidden);
  const Tensor w1c = contiguous_copy(w1), w2c = contiguous_copy(w2);
  const auto options = x.options();
  Tensor grad_input = want_input ? at::empty(input.sizes(), options) : Tensor();
  Tensor grad_w1 = want_w1 ? at::empty({s.hidden, s.in}, options) : Tensor();
  Tensor grad_b1 = want_b1 ? at::empty({s.hidden}, options) : Tensor();
  Tensor grad_w2 = want_w2 ? at::empty({s.out, s.hidden}, options) : Tensor();
  Tensor grad_b2 = want_b2 ? at::empty({s.out}, options) : Tensor();
  auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  const MlpBackward p{s.batch,      s.in,           s.hidden,       s.out,        g.data_ptr(),
                      x.data_ptr(), w1c.data_ptr(), w2c.data_ptr(), h.data_ptr(), ptr(grad_input),
                      ptr(grad_w1), ptr(grad_b1),   ptr(grad_w2),   ptr(grad_b2), g.scalar_type()};
  PYKERNELS_DEVICE_CALL(g.device(), mlp_backward_kernel, p);
  return {grad_input, grad_w1, grad_b1, grad_w2, grad_b2};
}

}  // namespace ops

}  // namespace pykernels
