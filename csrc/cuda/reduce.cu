// CUDA sum/mean over any set of dimensions, any input layout.
//
// One kernel covers every shape. A block of 256 threads is a 2-D arrangement
// (blockDim.x x blockDim.y, powers of two) of "output lanes" and "reduction lanes":
//   * inner reduction (the reduced elements of an output are adjacent in memory, e.g.
//     sum(dim=-1)): x runs along the reduction, so a warp reads consecutive elements of one
//     output; y picks the output;
//   * outer reduction (neighbouring outputs are adjacent, e.g. sum(dim=0) of a row-major
//     matrix): x runs along the outputs, so a warp reads one row of 32 consecutive outputs, and
//     y splits the reduction.
// Each thread accumulates a strided share of its output's elements, then the block combines the
// reduction lanes in shared memory (fixed tree order: deterministic). When there are too few
// outputs to occupy the GPU (a full reduction, or a few long rows), the reduction is also split
// across blockIdx.y; those blocks write partial sums to a workspace and a second kernel adds
// them per output with a warp each. Accumulation is in float for float/half/bfloat16 (as
// torch's CUDA sum), double for double, int64 for integers.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <algorithm>
#include <type_traits>

#include "cuda/common.cuh"
#include "kernels.h"

namespace pykernels {
namespace {

using cuda::iter_offsets;
using cuda::kThreads;

template <typename T>
using acc_type = std::conditional_t<std::is_integral_v<T>, int64_t, at::opmath_type<T>>;

template <typename T, typename acc_t>
__device__ __forceinline__ T finish(acc_t s, bool mean, int64_t nred) {
  if constexpr (std::is_floating_point_v<acc_t>) {
    if (mean) return static_cast<T>(s / static_cast<acc_t>(nred));  // 0 / 0 = nan for an empty mean
  }
  return static_cast<T>(s);
}

struct SumConfig {
  bool inner;  // threadIdx.x walks the reduction (else the outputs)
  bool mean;
  int64_t chunk;       // reduced elements per blockIdx.y split
  int64_t out_blocks;  // groups of outputs, one per block and pass
};

template <typename T, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    sum_kernel(const __grid_constant__ ReduceProblem p, const SumConfig cfg, acc_t* __restrict__ partial) {
  __shared__ acc_t smem[kThreads];
  const StridedIter<2>& kept = p.kept;
  const StridedIter<1>& red = p.reduced;
  const int64_t nout = kept.numel, nred = red.numel;
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x, by = blockDim.y;
  const int rl = cfg.inner ? tx : ty, nrl = cfg.inner ? bx : by;  // reduction lane, lanes
  const int ol = cfg.inner ? ty : tx, nol = cfg.inner ? by : bx;  // output lane, lanes
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * cfg.chunk;
  const int64_t r_end = r_begin + cfg.chunk < nred ? r_begin + cfg.chunk : nred;
  const T* in = static_cast<const T*>(kept.data[1]);
  const int64_t rs = red.strides[0][0];

  for (int64_t ob = blockIdx.x; ob < cfg.out_blocks; ob += gridDim.x) {  // uniform per block
    const int64_t o = ob * nol + ol;
    int64_t off[2] = {0, 0};
    acc_t acc = 0;
    if (o < nout) {
      iter_offsets(kept, o, off);
      const T* base = in + off[1];
      int64_t r = r_begin + rl;
      if (red.ndim == 1) {
        // Four independent loads in flight per thread before they are added.
        for (; r + 3 * nrl < r_end; r += 4 * nrl) {
          const T v0 = base[r * rs], v1 = base[(r + nrl) * rs], v2 = base[(r + 2 * nrl) * rs],
                  v3 = base[(r + 3 * nrl) * rs];
          acc += static_cast<acc_t>(v0) + static_cast<acc_t>(v1) + static_cast<acc_t>(v2) + static_cast<acc_t>(v3);
        }
        for (; r < r_end; r += nrl) acc += static_cast<acc_t>(base[r * rs]);
      } else {
        for (; r < r_end; r += nrl) {
          int64_t roff[1];
          iter_offsets(red, r, roff);
          acc += static_cast<acc_t>(base[roff[0]]);
        }
      }
    }
    // Combine the reduction lanes of each output (powers of two: a plain halving tree).
    smem[ty * bx + tx] = acc;
    __syncthreads();
    if (cfg.inner) {
      for (int s = bx / 2; s > 0; s /= 2) {
        if (tx < s) smem[ty * bx + tx] += smem[ty * bx + tx + s];
        __syncthreads();
      }
    } else {
      for (int s = by / 2; s > 0; s /= 2) {
        if (ty < s) smem[ty * bx + tx] += smem[(ty + s) * bx + tx];
        __syncthreads();
      }
    }
    if (rl == 0 && o < nout) {
      const acc_t total = smem[ty * bx + tx];
      if (gridDim.y == 1) {
        static_cast<T*>(kept.data[0])[off[0]] = finish<T>(total, cfg.mean, nred);
      } else {
        partial[static_cast<int64_t>(blockIdx.y) * nout + o] = total;
      }
    }
    __syncthreads();  // smem is reused by the next group of outputs
  }
}

// out[o] = finish(sum of the `splits` partial sums of o), one warp per output, fixed order.
template <typename T, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    sum_splits_kernel(const __grid_constant__ StridedIter<2> kept, const acc_t* __restrict__ partial, int splits,
                      int64_t nred, bool mean) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t o = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; o < kept.numel; o += warps) {
    acc_t acc = 0;
    for (int s = lane; s < splits; s += 32) acc += partial[s * kept.numel + o];
    acc = cuda::warp_sum(acc);
    if (lane == 0) {
      int64_t off[2];
      iter_offsets(kept, o, off);
      static_cast<T*>(kept.data[0])[off[0]] = finish<T>(acc, mean, nred);
    }
  }
}

int pow2_at_most(int64_t x, int cap) {
  int p = 1;
  while (p < cap && p < x) p *= 2;
  return p;
}

template <typename T>
void sum_cuda(const ReduceProblem& p, bool mean) {
  using acc_t = acc_type<T>;
  const int64_t nout = p.kept.numel, nred = p.reduced.numel;
  if (nout == 0) return;
  // Inner when the reduction walks memory in steps of 1, or more densely than the outputs do.
  const int64_t rs = p.reduced.strides[0][0], ks = p.kept.strides[1][0];
  const bool inner = rs == 1 || (ks != 1 && rs < ks);
  int bx, by;
  if (inner) {
    bx = pow2_at_most(nred, kThreads);
    by = kThreads / bx;
  } else {
    bx = pow2_at_most(nout, 32);
    by = kThreads / bx;
  }
  const int nol = inner ? by : bx, nrl = inner ? bx : by;
  const int64_t out_blocks = (nout + nol - 1) / nol;

  // Split the reduction across blocks when the outputs alone give too few blocks, as long as
  // every thread still gets a few dozen elements.
  const int64_t sms = cuda::sm_count();
  int64_t splits = 1;
  if (out_blocks < 2 * sms) {
    const int64_t want = (4 * sms + out_blocks - 1) / out_blocks;
    const int64_t worth = nred / (int64_t{nrl} * 32);
    splits = std::max<int64_t>(1, std::min<int64_t>({want, worth, 1024}));
  }
  int64_t chunk = std::max<int64_t>(1, (nred + splits - 1) / splits);
  splits = nred > 0 ? (nred + chunk - 1) / chunk : 1;

  const SumConfig cfg{inner, mean, chunk, out_blocks};
  const dim3 block(bx, by);
  const dim3 grid(static_cast<unsigned int>(std::min<int64_t>(out_blocks, 65536)), static_cast<unsigned int>(splits));
  if (splits == 1) {
    cuda::launch(sum_kernel<T, acc_t>, grid, block, 0, p, cfg, static_cast<acc_t*>(nullptr));
    return;
  }
  c10::DataPtr ws = cuda::workspace(static_cast<size_t>(splits * nout) * sizeof(acc_t));
  acc_t* partial = static_cast<acc_t*>(ws.get());
  cuda::launch(sum_kernel<T, acc_t>, grid, block, 0, p, cfg, partial);
  cuda::launch(sum_splits_kernel<T, acc_t>, cuda::grid_for(nout, kThreads / 32), kThreads, 0, p.kept,
               static_cast<const acc_t*>(partial), static_cast<int>(splits), nred, mean);
}

}  // namespace

void sum_kernel_cuda(const ReduceProblem& p, bool mean) {
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "pykernels_sum_cuda",
                             [&] { sum_cuda<scalar_t>(p, mean); });
}

}  // namespace pykernels
