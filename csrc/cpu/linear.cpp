// The fused linear layer on the CPU (float32, float64): the forward, whose GEMM adds the bias and
// applies the ReLU as it stores the output, and the backward, which masks grad_out and sums the
// bias gradient in the pass that packs it for the weight gradient (cpu/linear_layer.h).
//
// Threads: the forward cuts the batch rows among them when there are enough (each thread packs
// its own rows; nothing is packed twice), else the output features; the backward cuts the
// columns of grad_weight and grad_input, which are both k wide, after one pass over grad_out on
// the calling thread (m x n elements, a small share of the m x n x k products).
#include "cpu/gemm_paths.h"
#include "cpu/linear_layer.h"
#include "kernels.h"

namespace pykernels {
namespace {

using cpu::Strided;

template <typename T>
void linear_forward(const LinearForward& p) {
  cpu::with_float_kernel<T>([&]<int MR, int NR>(const cpu::GemmKernelInfo<T>& info) {
    const Strided<T> x{static_cast<const T*>(p.input), p.input_rs, p.input_cs};
    const Strided<T> w{static_cast<const T*>(p.weight), p.weight_rs, p.weight_cs};
    const T* bias = static_cast<const T*>(p.bias);
    T* out = static_cast<T*>(p.out);
    const int64_t work = p.m * p.n * p.k;
    if (p.m >= 2 * NR || p.m >= p.n) {  // by batch rows, whole NR-column slivers of out^T
      cpu::split_among_threads(p.m, NR, work, [&](int64_t i0, int64_t i1) {
        cpu::linear_forward_block<T, MR, NR>(info, i1 - i0, p.n, p.k, x.rows_from(i0), w, bias, p.relu, out + i0 * p.n,
                                             p.n);
      });
    } else {  // by output features, whole MR-row tiles of out^T
      cpu::split_among_threads(p.n, MR, work, [&](int64_t j0, int64_t j1) {
        cpu::linear_forward_block<T, MR, NR>(info, p.m, j1 - j0, p.k, x, w.rows_from(j0),
                                             bias != nullptr ? bias + j0 : nullptr, p.relu, out + j0, p.n);
      });
    }
  });
}

// Per-thread workspace of the backward: packed g^T, and the masked g that grad_input reads.
struct BackwardScratch {
  cpu::ScratchBuffer packed, masked;
};

template <typename T>
void linear_backward(const LinearBackward& p) {
  cpu::with_float_kernel<T>([&]<int MR, int NR>(const cpu::GemmKernelInfo<T>& info) {
    static thread_local BackwardScratch scratch;
    const T* g = static_cast<const T*>(p.grad_out);
    T* grad_input = static_cast<T*>(p.grad_input);
    T* grad_weight = static_cast<T*>(p.grad_weight);
    T* packed = grad_weight != nullptr ? scratch.packed.get<T>(cpu::packed_gradient_size<MR>(p.m, p.n)) : nullptr;
    // grad_input reads g masked, which only a ReLU changes.
    T* masked = grad_input != nullptr && p.relu ? scratch.masked.get<T>(p.m * p.n) : nullptr;
    const T* result = p.relu ? static_cast<const T*>(p.out) : nullptr;
    cpu::pack_gradient<T, MR>(p.m, p.n, g, result, packed, static_cast<T*>(p.grad_bias), masked);
    if (grad_input == nullptr && grad_weight == nullptr) return;

    const Strided<T> x{static_cast<const T*>(p.input), p.input_rs, p.input_cs};
    const Strided<T> w{static_cast<const T*>(p.weight), p.weight_rs, p.weight_cs};
    const T* g_in = masked != nullptr ? masked : g;
    const int64_t work = p.m * p.n * p.k * ((grad_input != nullptr) + (grad_weight != nullptr));
    cpu::split_among_threads(p.k, NR, work, [&](int64_t j0, int64_t j1) {
      if (grad_weight != nullptr)
        cpu::weight_gradient_block<T, MR, NR>(info, p.m, p.n, packed, x, j0, j1, grad_weight, p.k);
      if (grad_input != nullptr) cpu::input_gradient_block<T, MR, NR>(info, p.m, p.n, g_in, w, j0, j1, grad_input, p.k);
    });
  });
}

}  // namespace

void linear_forward_kernel_cpu(const LinearForward& p) {
  switch (p.dtype) {
    case at::kFloat:
      return linear_forward<float>(p);
    case at::kDouble:
      return linear_forward<double>(p);
    default:
      TORCH_INTERNAL_ASSERT(false, "pykernels: linear_forward_kernel_cpu takes float32 and float64, got ", p.dtype);
  }
}

void linear_backward_kernel_cpu(const LinearBackward& p) {
  switch (p.dtype) {
    case at::kFloat:
      return linear_backward<float>(p);
    case at::kDouble:
      return linear_backward<double>(p);
    default:
      TORCH_INTERNAL_ASSERT(false, "pykernels: linear_backward_kernel_cpu takes float32 and float64, got ", p.dtype);
  }
}

}  // namespace pykernels
