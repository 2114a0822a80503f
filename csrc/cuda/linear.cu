// CUDA kernels for the linear layer with a fused epilogue (kernels.h, LinearForward and
// LinearBackward):
//   forward   out = act(input @ weight^T + bias), act = ReLU or identity;
//   backward  g = grad_out, zeroed where out <= 0 under ReLU (torch's threshold_backward: a NaN
//             output passes the gradient); grad_input = g @ weight, grad_weight = g^T @ input,
//             grad_bias = sum over rows of g.
//
// Every product is the GEMM of gemm_kernels.cuh (its tiles, load directions and vector loads, so
// transposed or sliced inputs and weights need no copy), with the layer's extra work fused into
// the passes that already touch the data, through the GEMM's fusion policy:
//   forward      the bias is added and the ReLU applied to the accumulators at the store, before
//                the one rounding to the output dtype: no second pass over out.
//   grad_input   A = g, read through the ReLU mask as its tiles are loaded: the masked gradient
//                is never written to memory.
//   grad_weight  A = g^T, masked likewise; the blocks of the first tile column see every row of
//                g for their output rows and sum them from shared memory into grad_bias.
// When grad_weight is not wanted (or is empty because in_features is 0), grad_bias comes from a
// column-sum kernel over g instead. Each output element is written by one block, in a fixed
// order: the results are deterministic, with no atomics.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/gemm_kernels.cuh"
#include "kernels.h"

namespace pykernels {
namespace {

// The forward's epilogue: out = act(acc + bias[col]) (bias null: none).
struct BiasRelu {
  static constexpr bool kEpilogue = true, kMaskA = false, kSumA = false;
  const void* bias;
  bool relu;
  template <typename T, typename acc_t>
  __device__ __forceinline__ acc_t epilogue(acc_t v, int64_t col) const {
    if (bias != nullptr) v += static_cast<acc_t>(static_cast<const T*>(bias)[col]);
    return relu && v < acc_t(0) ? acc_t(0) : v;  // NaN propagates, as in torch's relu
  }
};

// The backward's products: A (g or g^T) masked where a_mask (the forward's out, when ReLU) is
// <= 0, and A's row sums into a_row_sums (grad_bias, for grad_weight); either may be null.
struct ReluGrad {
  static constexpr bool kEpilogue = false, kMaskA = true, kSumA = true;
  const void* a_mask;
  void* a_row_sums;
};

// grad_bias[j] = sum_i g[i, j] for the m x n contiguous g = grad_out masked by out (null: no
// mask), when no grad_weight product computes it. Each block owns 32 columns: its 8 warps read
// 8 rows at a time (a warp reads 32 consecutive elements of one row), each thread summing a
// column over every 8th row, then the 8 partial sums of each column are added in order.
template <typename T, typename acc_t>
__global__ void __launch_bounds__(256) bias_grad_kernel(const T* __restrict__ grad_out, const T* __restrict__ out,
                                                        T* __restrict__ grad_bias, int64_t m, int64_t n) {
  __shared__ acc_t partial[8][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * 32; c0 < n; c0 += static_cast<int64_t>(gridDim.x) * 32) {
    const int64_t col = c0 + lane;
    acc_t s = acc_t(0);
    if (col < n) {
      for (int64_t row = warp; row < m; row += 8) {
        const int64_t i = row * n + col;
        if (out == nullptr || !(static_cast<acc_t>(out[i]) <= acc_t(0))) s += static_cast<acc_t>(grad_out[i]);
      }
    }
    partial[warp][lane] = s;
    __syncthreads();
    if (warp == 0 && col < n) {
      acc_t total = partial[0][lane];
#pragma unroll
      for (int w = 1; w < 8; ++w) total += partial[w][lane];
      grad_bias[col] = static_cast<T>(total);
    }
    __syncthreads();  // partial is reused by the next column group
  }
}

// A single C = A @ B (no batch dimensions) in GemmProblem form.
GemmProblem matrix_problem(void* c, const void* a, const void* b, int64_t m, int64_t n, int64_t k, int64_t a_rs,
                           int64_t a_cs, int64_t b_rs, int64_t b_cs, at::ScalarType dtype) {
  GemmProblem p;
  p.batch.ndim = 1;
  p.batch.numel = 1;
  p.batch.sizes[0] = 1;
  for (int op = 0; op < 3; ++op) p.batch.strides[op][0] = 0;
  p.batch.data[0] = c;
  p.batch.data[1] = const_cast<void*>(a);
  p.batch.data[2] = const_cast<void*>(b);
  p.m = m, p.n = n, p.k = k;
  p.c_rs = n, p.c_cs = 1;  // outputs are contiguous
  p.a_rs = a_rs, p.a_cs = a_cs, p.b_rs = b_rs, p.b_cs = b_cs;
  p.dtype = dtype;
  return p;
}

void check_dtype(at::ScalarType dtype, const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      dtype == at::kFloat || dtype == at::kDouble || dtype == at::kHalf || dtype == at::kBFloat16, "pykernels.", op,
      ": \"", op, "_cuda\" not implemented for '", dtype, "' (float16, bfloat16, float32 and float64 are supported)");
}

template <typename T, typename acc_t>
void launch_bias_grad(const LinearBackward& p) {
  const int64_t groups = (p.n + 31) / 32;
  const unsigned int grid = static_cast<unsigned int>(std::min<int64_t>(groups, 0x7fffffff));
  cuda::launch(bias_grad_kernel<T, acc_t>, grid, 256, 0, static_cast<const T*>(p.grad_out),
               static_cast<const T*>(p.relu ? p.out : nullptr), static_cast<T*>(p.grad_bias), p.m, p.n);
}

}  // namespace

void linear_forward_kernel_cuda(const LinearForward& p) {
  check_dtype(p.dtype, "linear");
  if (p.out == nullptr || p.m == 0 || p.n == 0) return;
  // out (m x n) = input (m x k) @ weight^T (k x n)
  const GemmProblem g = matrix_problem(p.out, p.input, p.weight, p.m, p.n, p.k, p.input_rs, p.input_cs, p.weight_cs,
                                       p.weight_rs, p.dtype);
  cuda::launch_gemm(g, BiasRelu{p.bias, p.relu});
}

void linear_backward_kernel_cuda(const LinearBackward& p) {
  check_dtype(p.dtype, "linear_backward");
  TORCH_INTERNAL_ASSERT(!p.relu || p.out != nullptr || p.m == 0 || p.n == 0,
                        "pykernels.linear_backward: ReLU's mask needs the output");
  const void* mask = p.relu ? p.out : nullptr;
  if (p.grad_input != nullptr && p.m > 0 && p.k > 0) {
    // grad_input (m x k) = g (m x n, contiguous) @ weight (n x k)
    const GemmProblem g =
        matrix_problem(p.grad_input, p.grad_out, p.weight, p.m, p.k, p.n, p.n, 1, p.weight_rs, p.weight_cs, p.dtype);
    cuda::launch_gemm(g, ReluGrad{mask, nullptr});
  }
  if (p.grad_weight != nullptr && p.n > 0 && p.k > 0) {
    // grad_weight (n x k) = g^T (n x m) @ input (m x k), and grad_bias from the same tiles
    const GemmProblem g =
        matrix_problem(p.grad_weight, p.grad_out, p.input, p.n, p.k, p.m, 1, p.n, p.input_rs, p.input_cs, p.dtype);
    cuda::launch_gemm(g, ReluGrad{mask, p.grad_bias});
  } else if (p.grad_bias != nullptr && p.n > 0) {
    switch (p.dtype) {
      case at::kFloat:
        launch_bias_grad<float, float>(p);
        break;
      case at::kDouble:
        launch_bias_grad<double, double>(p);
        break;
      case at::kHalf:
        launch_bias_grad<c10::Half, float>(p);
        break;
      default:
        launch_bias_grad<c10::BFloat16, float>(p);
    }
  }
}

}  // namespace pykernels
