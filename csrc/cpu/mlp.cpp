// The fused two-layer MLP on the CPU (float32, float64), out = relu(x @ w1^T + b1) @ w2^T + b2,
// and its gradients: each direction one kernel call, built of the pieces of cpu/linear_layer.h.
//
// Forward: the batch in blocks of rows, each block through both layers before the next, so that
// its hidden activations are still in cache when the second layer reads them. Threads take whole
// blocks (each packs only its own rows of x, and reads the weights in place): no synchronisation
// between the layers.
//
// Backward, from g2 = grad_out:
//   grad_w2 = g2^T @ hidden and grad_b2 = the column sums of g2, from one pass packing g2^T;
//   gh = (g2 @ w2) masked where hidden <= 0: the pass that packs gh^T for grad_w1 = gh^T @ x
//   also sums grad_b1 and keeps gh, masked, for grad_input = gh @ w1.
// The two large products, grad_w1 and grad_input, are cut among threads by their `in` columns;
// the rest, out_features / in of the work and the two passes, runs on the calling thread first.
#include <algorithm>

#include "cpu/gemm_paths.h"
#include "cpu/linear_layer.h"
#include "kernels.h"

namespace pykernels {
namespace {

using cpu::Strided;

// Hidden activations per forward block at most (they stay in L2 for the second layer), in bytes.
constexpr int64_t kHiddenBlockBytes = 128 * 1024;

// The forward's hidden activations where the caller keeps none, per thread.
cpu::ScratchBuffer& hidden_scratch() {
  static thread_local cpu::ScratchBuffer buffer;
  return buffer;
}

template <typename T>
void mlp_forward(const MlpForward& p) {
  cpu::with_float_kernel<T>([&]<int MR, int NR>(const cpu::GemmKernelInfo<T>& info) {
    const int64_t H = p.hidden, O = p.out_features;
    const Strided<T> x{static_cast<const T*>(p.input), p.in, 1};
    const Strided<T> w1{static_cast<const T*>(p.w1), p.in, 1}, w2{static_cast<const T*>(p.w2), H, 1};
    const T* b1 = static_cast<const T*>(p.b1);
    const T* b2 = static_cast<const T*>(p.b2);
    T* out = static_cast<T*>(p.out);
    T* hidden_out = static_cast<T*>(p.hidden_out);
    // Whole NR-row units (the forward's tile columns), at least one.
    const int64_t rows = std::max<int64_t>(NR, kHiddenBlockBytes / (H * static_cast<int64_t>(sizeof(T))) / NR * NR);
    const int64_t work = p.batch * H * (p.in + O);
    cpu::split_among_threads(p.batch, NR, work, [&](int64_t i0, int64_t i1) {
      for (int64_t b0 = i0; b0 < i1; b0 += rows) {
        const int64_t count = std::min(rows, i1 - b0);
        T* h = hidden_out != nullptr ? hidden_out + b0 * H : hidden_scratch().get<T>(count * H);
        cpu::linear_forward_block<T, MR, NR>(info, count, H, p.in, x.rows_from(b0), w1, b1, true, h, H);
        cpu::linear_forward_block<T, MR, NR>(info, count, O, H, Strided<T>{h, H, 1}, w2, b2, false, out + b0 * O, O);
      }
    });
  });
}

// Per-thread workspace of the backward: packed g2^T, g2 @ w2 (masked in place into gh), packed gh^T.
struct BackwardScratch {
  cpu::ScratchBuffer packed2, gh, packed1;
};

template <typename T>
void mlp_backward(const MlpBackward& p) {
  cpu::with_float_kernel<T>([&]<int MR, int NR>(const cpu::GemmKernelInfo<T>& info) {
    static thread_local BackwardScratch scratch;
    const int64_t B = p.batch, I = p.in, H = p.hidden, O = p.out_features;
    const T* g2 = static_cast<const T*>(p.grad_out);
    const T* hidden = static_cast<const T*>(p.hidden_act);
    T* grad_input = static_cast<T*>(p.grad_input);
    T* grad_w1 = static_cast<T*>(p.grad_w1);
    T* grad_b1 = static_cast<T*>(p.grad_b1);
    T* grad_w2 = static_cast<T*>(p.grad_w2);
    T* grad_b2 = static_cast<T*>(p.grad_b2);

    // The second layer's weight and bias.
    T* packed2 = grad_w2 != nullptr ? scratch.packed2.get<T>(cpu::packed_gradient_size<MR>(B, O)) : nullptr;
    if (grad_w2 != nullptr || grad_b2 != nullptr)
      cpu::pack_gradient<T, MR>(B, O, g2, nullptr, packed2, grad_b2, nullptr);
    if (grad_w2 != nullptr) {
      cpu::weight_gradient_block<T, MR, NR>(info, B, O, packed2, Strided<T>{hidden, H, 1}, 0, H, grad_w2, H);
    }
    if (grad_input == nullptr && grad_w1 == nullptr && grad_b1 == nullptr) return;

    // gh = g2 @ w2, masked by the ReLU in the pass that packs it.
    T* gh = scratch.gh.get<T>(B * H);
    cpu::input_gradient_block<T, MR, NR>(info, B, O, g2, Strided<T>{static_cast<const T*>(p.w2), H, 1}, 0, H, gh, H);
    T* packed1 = grad_w1 != nullptr ? scratch.packed1.get<T>(cpu::packed_gradient_size<MR>(B, H)) : nullptr;
    cpu::pack_gradient<T, MR>(B, H, gh, hidden, packed1, grad_b1, grad_input != nullptr ? gh : nullptr);
    if (grad_input == nullptr && grad_w1 == nullptr) return;

    // The first layer's weight and input.
    const Strided<T> x{static_cast<const T*>(p.input), I, 1}, w1{static_cast<const T*>(p.w1), I, 1};
    const int64_t work = B * H * I * ((grad_input != nullptr) + (grad_w1 != nullptr));
    cpu::split_among_threads(I, NR, work, [&](int64_t j0, int64_t j1) {
      if (grad_w1 != nullptr) cpu::weight_gradient_block<T, MR, NR>(info, B, H, packed1, x, j0, j1, grad_w1, I);
      if (grad_input != nullptr) cpu::input_gradient_block<T, MR, NR>(info, B, H, gh, w1, j0, j1, grad_input, I);
    });
  });
}

}  // namespace

void mlp_forward_kernel_cpu(const MlpForward& p) {
  switch (p.dtype) {
    case at::kFloat:
      return mlp_forward<float>(p);
    case at::kDouble:
      return mlp_forward<double>(p);
    default:
      TORCH_INTERNAL_ASSERT(false, "pykernels: mlp_forward_kernel_cpu takes float32 and float64, got ", p.dtype);
  }
}

void mlp_backward_kernel_cpu(const MlpBackward& p) {
  switch (p.dtype) {
    case at::kFloat:
      return mlp_backward<float>(p);
    case at::kDouble:
      return mlp_backward<double>(p);
    default:
      TORCH_INTERNAL_ASSERT(false, "pykernels: mlp_backward_kernel_cpu takes float32 and float64, got ", p.dtype);
  }
}

}  // namespace pykernels
