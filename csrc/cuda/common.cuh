// Helpers shared by the CUDA kernels: device queries, workspace allocation, strided offsets and
// warp/block sums. Kept to c10 headers (no ATen/ATen.h, no torch/extension.h) so every .cu file
// compiles quickly.
#pragma once

#include <c10/core/Allocator.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "common/strided.h"

// PYKERNELS_CUDA_EMULATION: the kernels are being compiled as plain C++ by the CPU emulator in
// tools/cuda_emu, which provides its own device queries, workspace and launch() (run on threads).
#ifndef PYKERNELS_CUDA_EMULATION
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#endif

namespace pykernels {
namespace cuda {

// Threads per block for the elementwise and reduction kernels: 8 warps, enough to hide memory
// latency with a few resident blocks per SM while keeping block reductions short.
constexpr int kThreads = 256;

#ifndef PYKERNELS_CUDA_EMULATION
// An attribute of the current device, cached per device: cudaDeviceGetAttribute is cheap but not
// free, and ops are called in tight loops. Safe during CUDA-graph capture (no stream work).
inline int device_attribute(cudaDeviceAttr attr, std::atomic<int>* cache) {
  const int dev = c10::cuda::current_device();
  if (dev < 64) {
    const int cached = cache[dev].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, dev));
  if (dev < 64) cache[dev].store(value, std::memory_order_relaxed);
  return value;
}

inline int sm_count() {
  static std::atomic<int> cache[64];
  return device_attribute(cudaDevAttrMultiProcessorCount, cache);
}

inline int compute_capability_major() {
  static std::atomic<int> cache[64];
  return device_attribute(cudaDevAttrComputeCapabilityMajor, cache);
}

// Scratch memory on the current device from torch's caching allocator: no cudaMalloc, no
// synchronisation, and it is stream-ordered (freed blocks are reused only by later work on the
// same stream), so it is safe to release when the op returns. Works under graph capture too.
inline c10::DataPtr workspace(size_t bytes) { return c10::cuda::CUDACachingAllocator::get()->allocate(bytes); }

// Launches kernel<<<grid, block, smem>>>(args...) on the current stream of the current device
// (the op wrappers hold a device guard for the output's device) and checks the launch.
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, Args&&... args) {
  if (smem > 48 * 1024) {  // larger dynamic shared memory needs an opt-in (a cheap call, allowed during graph capture)
    C10_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  kernel<<<grid, block, smem, c10::cuda::getCurrentCUDAStream()>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#endif  // PYKERNELS_CUDA_EMULATION

// Grid size for a grid-stride loop over `work` items, `per_block` items per block and pass:
// enough resident blocks to fill every SM, never more than the work needs.
inline unsigned int grid_for(int64_t work, int64_t per_block) {
  const int64_t needed = (work + per_block - 1) / per_block;
  const int64_t cap = static_cast<int64_t>(sm_count()) * 8;  // 8 blocks of 256 threads fill an SM (2048)
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(needed, cap)));
}

// Element offsets of each operand at linear index `linear` (innermost dimension fastest).
// 32-bit division when the whole iteration fits in 32 bits: 64-bit division is several times
// slower on the GPU and would dominate non-contiguous elementwise kernels.
template <int N>
__device__ __forceinline__ void iter_offsets(const StridedIter<N>& it, int64_t linear, int64_t (&off)[N]) {
  if (it.ndim == 1) {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = linear * it.strides[k][0];
    return;
  }
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  if (it.numel <= static_cast<int64_t>(UINT32_MAX)) {
    uint32_t rest = static_cast<uint32_t>(linear);
    for (int d = 0; d < it.ndim; ++d) {
      const uint32_t size = static_cast<uint32_t>(it.sizes[d]);
      const uint32_t q = rest / size;
      const int64_t i = rest - q * size;
      rest = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * it.strides[k][d];
    }
  } else {
    int64_t rest = linear;
    for (int d = 0; d < it.ndim; ++d) {
      const int64_t q = rest / it.sizes[d];
      const int64_t i = rest - q * it.sizes[d];
      rest = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * it.strides[k][d];
    }
  }
}

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a 1-D block whose size is a multiple of 32; the result is valid in thread 0.
// Starts with a barrier so callers may reuse it in a loop.
template <typename acc_t>
__device__ __forceinline__ acc_t block_sum(acc_t v) {
  __shared__ acc_t warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? warp_sums[lane] : acc_t(0);
  if (warp == 0) v = warp_sum(v);
  return v;
}

}  // namespace cuda
}  // namespace pykernels
