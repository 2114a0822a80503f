// The elementwise launcher shared by every CUDA elementwise kernel: out = f(in...) over a
// StridedIter (operand 0 is the output; all operands have the element type T).
//
// Two kernels per (op, dtype), both grid-stride:
//   * contiguous: one flat dimension, every stride 1 and every pointer 16-byte aligned. Each
//     thread moves 16 bytes per operand per step (float4 / 8 halves / 2 doubles): these kernels
//     are bound by DRAM bandwidth and wide accesses need the fewest memory transactions;
//   * strided: anything else (broadcast, transposed, sliced, unaligned). Each element's operand
//     offsets come from the iterator's sizes and strides; a single merged dimension (e.g. a
//     tensor op a broadcast scalar, or unaligned contiguous data) needs no division at all.
// Functors are structs with a __device__ operator() (no extended lambdas needed) taking N - 1
// values of T and returning T; they compute in at::opmath_type<T>.
#pragma once

#include <cstdint>

#include "cuda/common.cuh"

namespace pykernels {
namespace cuda {

template <typename T, int V>
struct alignas(sizeof(T) * V) AlignedVec {
  T v[V];
};

template <int N>
struct Pointers {
  void* data[N];
};

template <typename T, int N, typename F>
__device__ __forceinline__ T apply(const F& f, const T (&x)[N]) {
  static_assert(N >= 2 && N <= 4, "one output and one to three inputs");
  if constexpr (N == 2) {
    return f(x[1]);
  } else if constexpr (N == 3) {
    return f(x[1], x[2]);
  } else {
    return f(x[1], x[2], x[3]);
  }
}

template <typename T, int N, int V, typename F>
__global__ void __launch_bounds__(kThreads) contiguous_kernel(Pointers<N> p, int64_t n, F f) {
  using Vec = AlignedVec<T, V>;
  const int64_t nvec = n / V;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < nvec; i += step) {
    Vec in[N];
#pragma unroll
    for (int k = 1; k < N; ++k) in[k] = reinterpret_cast<const Vec*>(p.data[k])[i];
    Vec out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      T x[N];
#pragma unroll
      for (int k = 1; k < N; ++k) x[k] = in[k].v[j];
      out.v[j] = apply<T, N>(f, x);
    }
    reinterpret_cast<Vec*>(p.data[0])[i] = out;
  }
  // The last n % V elements, one per thread.
  for (int64_t i = nvec * V + tid; i < n; i += step) {
    T x[N];
#pragma unroll
    for (int k = 1; k < N; ++k) x[k] = static_cast<const T*>(p.data[k])[i];
    static_cast<T*>(p.data[0])[i] = apply<T, N>(f, x);
  }
}

template <typename T, int N, typename F>
__global__ void __launch_bounds__(kThreads) strided_kernel(const __grid_constant__ StridedIter<N> it, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < it.numel; i += step) {
    int64_t off[N];
    iter_offsets(it, i, off);
    T x[N];
#pragma unroll
    for (int k = 1; k < N; ++k) x[k] = static_cast<const T*>(it.data[k])[off[k]];
    static_cast<T*>(it.data[0])[off[0]] = apply<T, N>(f, x);
  }
}

template <typename T, int N, typename F>
void launch_elementwise(const StridedIter<N>& it, const F& f) {
  if (it.numel == 0) return;
  constexpr int V = 16 / sizeof(T) > 0 ? 16 / sizeof(T) : 1;
  bool contiguous = it.ndim == 1;
  for (int k = 0; k < N; ++k)
    contiguous = contiguous && it.strides[k][0] == 1 && reinterpret_cast<uintptr_t>(it.data[k]) % 16 == 0;
  if (contiguous) {
    Pointers<N> p;
    for (int k = 0; k < N; ++k) p.data[k] = it.data[k];
    launch(contiguous_kernel<T, N, V, F>, grid_for(it.numel, int64_t{kThreads} * V), kThreads, 0, p, it.numel, f);
  } else {
    launch(strided_kernel<T, N, F>, grid_for(it.numel, kThreads), kThreads, 0, it, f);
  }
}

}  // namespace cuda
}  // namespace pykernels
