// CUDA kernels for mse_loss.
//
// 'mean' / 'sum': one fused pass that squares each difference in float (double for float64)
// and accumulates it, with no temporary tensor: every block reduces a contiguous range of the
// linear index space (warp shuffles, then one value per warp) to a partial sum, and a one-block
// kernel adds the partials in a fixed order (deterministic), scales them and writes the scalar
// on the device, so the op never synchronises with the host.
// The same pass can also write the gradient for a loss gradient of 1 (mse_loss_and_grad).
// 'none' and the backward are single elementwise passes (cuda/loops.cuh).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <algorithm>

#include "cuda/loops.cuh"
#include "kernels.h"

namespace pykernels {
namespace {

using cuda::kThreads;

// At most this many partial sums: a few blocks per SM keep every SM streaming, and the final
// one-block pass stays short.
constexpr int kMaxPartials = 1024;

template <typename T>
using opmath = at::opmath_type<T>;

// `it` walks (a, b), or (grad, a, b) with kGrad: then grad = grad_scale * (a - b) is written in
// the same pass.
template <typename T, typename acc_t, bool kGrad, int N>
__global__ void __launch_bounds__(kThreads)
    squared_error_partials(const __grid_constant__ StridedIter<N> it, int64_t chunk, opmath<T> grad_scale,
                           acc_t* __restrict__ partial) {
  constexpr int A = kGrad ? 1 : 0;  // operand index of a
  T* g = kGrad ? static_cast<T*>(it.data[0]) : nullptr;
  const T* a = static_cast<const T*>(it.data[A]);
  const T* b = static_cast<const T*>(it.data[A + 1]);
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < it.numel ? begin + chunk : it.numel;
  acc_t acc = 0;
  auto step = [&](int64_t og, int64_t oa, int64_t ob) {
    const opmath<T> d = static_cast<opmath<T>>(a[oa]) - static_cast<opmath<T>>(b[ob]);
    if constexpr (kGrad) g[og] = static_cast<T>(grad_scale * d);
    acc += static_cast<acc_t>(d * d);
  };
  if (it.ndim == 1) {
    const int64_t sg = kGrad ? it.strides[0][0] : 0, sa = it.strides[A][0], sb = it.strides[A + 1][0];
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) step(i * sg, i * sa, i * sb);
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
      int64_t off[N];
      cuda::iter_offsets(it, i, off);
      step(kGrad ? off[0] : 0, off[A], off[A + 1]);
    }
  }
  acc = cuda::block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename T, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    squared_error_finish(const acc_t* __restrict__ partial, int count, T* out, double scale) {
  acc_t acc = 0;
  for (int i = threadIdx.x; i < count; i += kThreads) acc += partial[i];
  acc = cuda::block_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<T>(static_cast<double>(acc) * scale);
}

template <typename T>
struct SquaredErrorF {
  __device__ T operator()(T x, T y) const {
    const opmath<T> d = static_cast<opmath<T>>(x) - static_cast<opmath<T>>(y);
    return static_cast<T>(d * d);
  }
};

template <typename T>
struct MseBackwardF {  // scale * (x - y) * grad
  opmath<T> scale;
  __device__ T operator()(T x, T y, T g) const {
    return static_cast<T>(scale * (static_cast<opmath<T>>(x) - static_cast<opmath<T>>(y)) * static_cast<opmath<T>>(g));
  }
};

template <bool kGrad, int N>
void mse_loss_reduce(const StridedIter<N>& it, at::ScalarType dtype, void* out, double scale, double grad_scale) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss_cuda", [&] {
    using acc_t = opmath<scalar_t>;  // float for float/half/bfloat16, double for double
    const int64_t n = it.numel;
    // Blocks of at least 8 elements per thread, at most kMaxPartials of them.
    const int64_t blocks = std::max<int64_t>(
        1, std::min<int64_t>({(n + kThreads * 8 - 1) / (kThreads * 8), int64_t{4} * cuda::sm_count(), kMaxPartials}));
    const int64_t chunk = (n + blocks - 1) / blocks;
    c10::DataPtr ws;
    acc_t* partial = nullptr;
    int count = 0;
    if (n > 0) {
      ws = cuda::workspace(static_cast<size_t>(blocks) * sizeof(acc_t));
      partial = static_cast<acc_t*>(ws.get());
      count = static_cast<int>(blocks);
      cuda::launch(squared_error_partials<scalar_t, acc_t, kGrad, N>, static_cast<unsigned int>(blocks), kThreads, 0,
                   it, chunk, static_cast<acc_t>(grad_scale), partial);
    }
    // With no elements this writes 0 * scale: 0 for 'sum', nan for 'mean' (scale is nan then).
    cuda::launch(squared_error_finish<scalar_t, acc_t>, 1, kThreads, 0, static_cast<const acc_t*>(partial), count,
                 static_cast<scalar_t*>(out), scale);
  });
}

}  // namespace

void mse_loss_reduce_kernel_cuda(const StridedIter<2>& it, at::ScalarType dtype, void* out, double scale) {
  mse_loss_reduce<false>(it, dtype, out, scale, 0.0);
}

void mse_loss_reduce_grad_kernel_cuda(const StridedIter<3>& it, at::ScalarType dtype, void* out, double scale,
                                      double grad_scale) {
  mse_loss_reduce<true>(it, dtype, out, scale, grad_scale);
}

void mse_loss_none_kernel_cuda(const StridedIter<3>& it, at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss_cuda",
                                  [&] { cuda::launch_elementwise<scalar_t, 3>(it, SquaredErrorF<scalar_t>{}); });
}

void mse_loss_backward_kernel_cuda(const StridedIter<4>& it, at::ScalarType dtype, double scale) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss_backward_cuda", [&] {
    cuda::launch_elementwise<scalar_t, 4>(it, MseBackwardF<scalar_t>{static_cast<opmath<scalar_t>>(scale)});
  });
}

}  // namespace pykernels
