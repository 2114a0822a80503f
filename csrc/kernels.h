// The seam between the device-independent op wrappers (csrc/*.cpp: checks, type promotion,
// output allocation) and the device kernels (csrc/cpu/*.cpp, csrc/cuda/*.cu).
//
// A kernel receives plain descriptions of its operands (pointers, sizes, element strides, one
// dtype) and never allocates; every operand already has the dtype the kernel computes in.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/Scalar.h>

#include <string>
#include <vector>

#include "common/strided.h"

namespace pykernels {

enum class BinaryOp { Add, Sub, Mul, Div, DivTrunc, DivFloor, Pow };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Pow, Relu };

// C[b] = A[b] @ B[b] for every batch index b. `batch` walks the batch dimensions of
// (C, A, B) with stride 0 where an operand is broadcast; the matrices themselves are addressed
// through row/column strides, so transposed operands need no copy.
struct GemmProblem {
  StridedIter<3> batch;
  int64_t m, n, k;
  int64_t c_rs, c_cs, a_rs, a_cs, b_rs, b_cs;
  at::ScalarType dtype;
};

// out[i] = reduce(in[i, r] over r): `kept` walks (out, in at r = 0) over the kept dimensions,
// `reduced` walks the reduced dimensions of `in` relative to that start.
struct ReduceProblem {
  StridedIter<2> kept;
  StridedIter<1> reduced;
  at::ScalarType dtype;
};

// Linear layers with a fused epilogue, and the two-layer MLP built of them. Matrices are 2-D:
// inputs are addressed through row/column strides (a transposed weight needs no copy), outputs
// are contiguous, and an output pointer left null is not wanted and not written. The wrappers
// (csrc/linear.cpp, csrc/mlp.cpp) call these kernels for float32 and float64 with every size at
// least 1 (other dtypes and empty dimensions they compose of the mm, add and relu kernels), and
// the CUDA MLP kernels for hidden <= 128 only (a wider hidden layer runs as two linear layers).
//
// linear forward:  out[m, n] = act(sum_k input[m, k] * weight[n, k] + bias[n]), act = ReLU or
// identity, bias optional (null).
struct LinearForward {
  int64_t m, n, k;
  const void* input;
  int64_t input_rs, input_cs;
  const void* weight;
  int64_t weight_rs, weight_cs;
  const void* bias;
  void* out;
  bool relu;
  at::ScalarType dtype;
};

// linear backward: g = grad_out, zeroed where relu and out <= 0 (torch's threshold_backward: a NaN
// output passes its gradient); grad_out and out are m x n, contiguous;
// grad_input = g @ weight (m x k), grad_weight = g^T @ input (n x k), grad_bias = sum_m g (n).
struct LinearBackward {
  int64_t m, n, k;
  const void* grad_out;
  const void* out;  // the forward's result, read for its mask when relu; may be null otherwise
  const void* input;
  int64_t input_rs, input_cs;
  const void* weight;
  int64_t weight_rs, weight_cs;
  void* grad_input;
  void* grad_weight;
  void* grad_bias;
  bool relu;
  at::ScalarType dtype;
};

// The MLP out = relu(input @ w1^T + b1) @ w2^T + b2, every operand contiguous: input is
// batch x in, w1 hidden x in, w2 out_features x hidden, biases optional (null). The forward keeps
// hidden = relu(input @ w1^T + b1) (batch x hidden) for the backward.
struct MlpForward {
  int64_t batch, in, hidden, out_features;
  const void* input;
  const void* w1;
  const void* b1;
  const void* w2;
  const void* b2;
  void* hidden_out;
  void* out;
  at::ScalarType dtype;
};

// Its backward from grad_out (batch x out_features): every gradient, each optional (null); the
// hidden gradient is masked where hidden_act <= 0, as in linear backward.
struct MlpBackward {
  int64_t batch, in, hidden, out_features;
  const void* grad_out;
  const void* input;
  const void* w1;
  const void* w2;
  const void* hidden_act;  // the forward's hidden_out
  void* grad_input;
  void* grad_w1;
  void* grad_b1;
  void* grad_w2;
  void* grad_b2;
  at::ScalarType dtype;
};

// pow_tensor_backward_kernel: both gradients of pow(input, exponent) for a tensor exponent, `it`
// walking (grad_input, grad, input, exponent); grad_exponent and result are laid out as operand 0
// (all three contiguous), so they share its offsets and the walk needs no more operands.
#define PYKERNELS_DECLARE_KERNELS(dev)                                                                              \
  void gemm_kernel_##dev(const GemmProblem& p);                                                                     \
  void binary_kernel_##dev(BinaryOp op, const StridedIter<3>& it, at::ScalarType dtype, const c10::Scalar& alpha);  \
  void unary_kernel_##dev(UnaryOp op, const StridedIter<2>& it, at::ScalarType dtype, const c10::Scalar& exponent); \
  void relu_backward_kernel_##dev(const StridedIter<3>& it, at::ScalarType dtype);                                  \
  void sum_kernel_##dev(const ReduceProblem& p, bool mean);                                                         \
  void mse_loss_reduce_kernel_##dev(const StridedIter<2>& it, at::ScalarType dtype, void* out, double scale);       \
  void mse_loss_reduce_grad_kernel_##dev(const StridedIter<3>& it, at::ScalarType dtype, void* out, double scale,   \
                                         double grad_scale);                                                        \
  void mse_loss_none_kernel_##dev(const StridedIter<3>& it, at::ScalarType dtype);                                  \
  void mse_loss_backward_kernel_##dev(const StridedIter<4>& it, at::ScalarType dtype, double scale);                \
  void pow_tensor_backward_kernel_##dev(const StridedIter<4>& it, void* grad_exponent, const void* result,          \
                                        at::ScalarType dtype);                                                      \
  void linear_forward_kernel_##dev(const LinearForward& p);                                                         \
  void linear_backward_kernel_##dev(const LinearBackward& p);                                                       \
  void mlp_forward_kernel_##dev(const MlpForward& p);                                                               \
  void mlp_backward_kernel_##dev(const MlpBackward& p);

PYKERNELS_DECLARE_KERNELS(cpu)

// ReLU keeping a bit mask for its backward (CPU only; bit i % 8 of mask[i / 8] is element i of
// the contiguous operand 0): (out, a) and (grad_input, grad_output).
void relu_mask_kernel_cpu(const StridedIter<2>& it, uint8_t* mask, at::ScalarType dtype);
void relu_mask_backward_kernel_cpu(const StridedIter<2>& it, const uint8_t* mask, at::ScalarType dtype);

// out = a (op) other for a float16/bfloat16 `a` and a single-element `other` read at float
// precision, as torch's CPU kernels for mul and the divisions do (CPU only): (out, a).
void binary_scalar_kernel_cpu(BinaryOp op, const StridedIter<2>& it, at::ScalarType dtype, const c10::Scalar& other);

#ifdef PYKERNELS_WITH_CUDA
PYKERNELS_DECLARE_KERNELS(cuda)

// The GEMM kernel that the calling thread's last CUDA matrix product launched, as
// "<kernel> <tile> a:<k|m>[+vec] b:<k|n>[+vec]" (which dimension each operand's loads run along,
// and whether they are 16-byte vector loads), or "sm90 128x256"; "" before the first launch.
std::string gemm_last_kernel_cuda();
#endif
#undef PYKERNELS_DECLARE_KERNELS

// ---- fused optimizer steps (csrc/optimizer.cpp; the arithmetic: common/optimizer_math.h) ----------
//
// One step of SGD or Adam over a list of parameters, each with its own dtype (float or double).
// A parameter's operands walk together: (param, grad, momentum_buffer) for SGD and (param, grad,
// exp_avg, exp_avg_sq, max_exp_avg_sq) for Adam, where an operand the options do not use (the
// buffer without momentum, max_exp_avg_sq without amsgrad) is the param again and is not touched.
// On CUDA every walk is one flat dimension of stride 1 (the wrapper checks it).
namespace optim {

// The hyperparameters of a step, as torch.optim has them (Python floats).
struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
};

struct AdamOptions {
  double lr, beta1, beta2, weight_decay, eps;
  bool amsgrad, maximize, decoupled_weight_decay;
};

// How SGD's momentum buffer is updated: not at all (momentum 0), set to the gradient (the first
// step, whose buffers are new), or buf = momentum * buf + (1 - dampening) * grad.
enum class Momentum { None, First, Running };

}  // namespace optim

struct SgdParam {
  StridedIter<3> it;
  at::ScalarType dtype;
};

struct SgdStep {
  std::vector<SgdParam> params;
  optim::SgdOptions options;
  optim::Momentum momentum;
};

struct AdamParam {
  StridedIter<5> it;
  at::ScalarType dtype;
  double step;        // the step count after this step's increment, read on the host; or,
  void* device_step;  // when not null, the counter on the param's device, which the kernel increments and reads
  at::ScalarType step_dtype;
};

struct AdamStep {
  std::vector<AdamParam> params;
  optim::AdamOptions options;
};

void fused_sgd_kernel_cpu(const SgdStep& step);
void fused_adam_kernel_cpu(const AdamStep& step);
#ifdef PYKERNELS_WITH_CUDA
void fused_sgd_kernel_cuda(const SgdStep& step);
void fused_adam_kernel_cuda(const AdamStep& step);
#endif

// Calls kernel_cpu(...) or kernel_cuda(...) by the device of the output. A CUDA kernel runs
// under a guard for that device, so its launches, current stream and workspace allocations
// go to the tensors' GPU (cuda:1 works while cuda:0 is current).
#ifdef PYKERNELS_WITH_CUDA
#define PYKERNELS_DEVICE_CALL(device, kernel, ...)                \
  do {                                                            \
    const c10::Device pykernels_device_ = (device);               \
    if (pykernels_device_.is_cuda()) {                            \
      const c10::DeviceGuard pykernels_guard_(pykernels_device_); \
      kernel##_cuda(__VA_ARGS__);                                 \
    } else {                                                      \
      kernel##_cpu(__VA_ARGS__);                                  \
    }                                                             \
  } while (0)
#else
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cpu(__VA_ARGS__)
#endif

}  // namespace pykernels
