// CUDA kernels of the fused optimizer steps (csrc/optimizer.cpp): every parameter's update in one
// launch over a list of chunks, as torch's multi_tensor_apply runs its fused optimizers.
//
// A block updates one chunk of kChunk elements of one parameter, its threads taking every kBlock-th
// element (coalesced), each through common/optimizer_math.h's update. The launch's own arguments
// carry the list: each parameter's operand pointers, element count and step, and the parameter
// and chunk of every block. Nothing is copied to the device first, so a step can be captured in a
// CUDA graph. The arguments hold at most kMaxParams parameters and kMaxBlocks chunks (about 3 KB,
// under the 4 KB that every architecture takes); a longer list takes more launches, and a
// parameter that straddles two goes on in the second. Parameters of each dtype have launches of
// their own.
//
// A step counter kept on the host was incremented and read by the wrapper and arrives as a
// number. Counters on the device (capturable) are incremented by one small kernel first and then
// read by the first thread of each block, so that the step never waits on the host.
#include <cstdint>

#include "common/optimizer_math.h"
#include "cuda/common.cuh"
#include "kernels.h"

namespace pykernels {
namespace {

using optim::Momentum;
using optim::WeightDecay;

constexpr int kBlock = 512;
// Elements per block: 128 per thread. The emulator's tests shrink it, to reach the launch limits
// below with small tensors.
#ifdef PYKERNELS_OPTIMIZER_CHUNK
constexpr int64_t kChunk = PYKERNELS_OPTIMIZER_CHUNK;
#else
constexpr int64_t kChunk = 65536;
#endif
constexpr int kMaxParams = 24;
constexpr int kMaxBlocks = 320;

// One launch's parameters (N operands each) and blocks.
template <int N>
struct ChunkList {
  void* data[kMaxParams][N];
  int64_t numel[kMaxParams];
  double step[kMaxParams];              // Adam: the count read on the host, or
  const void* device_step[kMaxParams];  // the counter on the device (not null), float or double
  bool device_step_double[kMaxParams];
  unsigned char block_param[kMaxBlocks];
  int block_chunk[kMaxBlocks];
};

// The elements [begin, end) of the chunk that this block updates, and its parameter.
template <int N>
__device__ __forceinline__ int chunk_of(const ChunkList<N>& list, int64_t& begin, int64_t& end) {
  const int t = list.block_param[blockIdx.x];
  begin = static_cast<int64_t>(list.block_chunk[blockIdx.x]) * kChunk;
  end = begin + kChunk < list.numel[t] ? begin + kChunk : list.numel[t];
  return t;
}

template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov>
__global__ void __launch_bounds__(kBlock)
    sgd_kernel(const __grid_constant__ ChunkList<3> list, optim::SgdScalars<T> s) {
  int64_t begin, end;
  const int t = chunk_of(list, begin, end);
  T* param = static_cast<T*>(list.data[t][0]);
  const T* grad = static_cast<const T*>(list.data[t][1]);
  T* buf = static_cast<T*>(list.data[t][2]);  // the param itself without momentum: not touched then
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) {
    optim::sgd_element<T, kWeightDecay, kMomentum, kNesterov, true>(s, param[i], grad[i], buf[i]);
  }
}

template <typename T, WeightDecay kDecay, bool kAmsgrad>
__global__ void __launch_bounds__(kBlock)
    adam_kernel(const __grid_constant__ ChunkList<5> list, optim::AdamOptions options) {
  __shared__ optim::AdamScalars<T> scalars;
  int64_t begin, end;
  const int t = chunk_of(list, begin, end);
  if (threadIdx.x == 0) {
    const void* counter = list.device_step[t];
    const double step = counter == nullptr           ? list.step[t]
                        : list.device_step_double[t] ? *static_cast<const double*>(counter)
                                                     : static_cast<double>(*static_cast<const float*>(counter));
    scalars = optim::adam_scalars<T>(options, step);
  }
  __syncthreads();
  const optim::AdamScalars<T> s = scalars;
  T* param = static_cast<T*>(list.data[t][0]);
  const T* grad = static_cast<const T*>(list.data[t][1]);
  T* exp_avg = static_cast<T*>(list.data[t][2]);
  T* exp_avg_sq = static_cast<T*>(list.data[t][3]);
  T* max_sq = static_cast<T*>(list.data[t][4]);  // the param itself without amsgrad: not touched then
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) {
    optim::adam_element<T, kDecay, kAmsgrad, true>(s, param[i], grad[i], exp_avg[i], exp_avg_sq[i], max_sq[i]);
  }
}

// step += 1 on up to kMaxSteps counters on the device, one thread each.
constexpr int kMaxSteps = 256;

struct StepList {
  void* step[kMaxSteps];
  bool is_double[kMaxSteps];
  int count;
};

__global__ void __launch_bounds__(kMaxSteps) increment_steps(const __grid_constant__ StepList list) {
  const int i = threadIdx.x;
  if (i >= list.count) return;
  if (list.is_double[i]) {
    *static_cast<double*>(list.step[i]) += 1.0;
  } else {
    *static_cast<float*>(list.step[i]) += 1.0f;
  }
}

void increment_device_steps(const AdamStep& step) {
  StepList list;
  list.count = 0;
  for (const AdamParam& p : step.params) {
    if (p.device_step == nullptr) continue;
    list.step[list.count] = p.device_step;
    list.is_double[list.count] = p.step_dtype == at::kDouble;
    if (++list.count == kMaxSteps) {
      cuda::launch(increment_steps, 1, kMaxSteps, 0, list);
      list.count = 0;
    }
  }
  if (list.count > 0) cuda::launch(increment_steps, 1, kMaxSteps, 0, list);
}

// Launches run(list, blocks) over every chunk of the non-empty params of one dtype, the list
// filled by fill(list, slot, param), as few launches as the limits allow.
template <int N, typename Param, typename Fill, typename Run>
void for_each_launch(const std::vector<Param>& params, at::ScalarType dtype, const Fill& fill, const Run& run) {
  ChunkList<N> list;
  int slot = 0, blocks = 0;
  for (const Param& p : params) {
    if (p.dtype != dtype || p.it.numel == 0) continue;
    fill(list, slot, p);
    const int64_t chunks = (p.it.numel + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      list.block_param[blocks] = static_cast<unsigned char>(slot);
      list.block_chunk[blocks] = static_cast<int>(c);
      ++blocks;
      const bool last_chunk = c + 1 == chunks;
      if (blocks == kMaxBlocks || (last_chunk && slot + 1 == kMaxParams)) {
        run(list, blocks);
        blocks = 0;
        slot = last_chunk ? -1 : 0;  // the rest of this param, if any, goes on in slot 0 of the next launch
        if (!last_chunk) fill(list, 0, p);
      }
    }
    ++slot;
  }
  if (blocks > 0) run(list, blocks);
}

template <int N, typename Param>
void fill_pointers(ChunkList<N>& list, int slot, const Param& p) {
  for (int k = 0; k < N; ++k) list.data[slot][k] = p.it.data[k];
  list.numel[slot] = p.it.numel;
}

template <typename T, bool kWeightDecay, Momentum kMomentum>
auto sgd_kernel_for(bool nesterov) {
  return nesterov ? sgd_kernel<T, kWeightDecay, kMomentum, true> : sgd_kernel<T, kWeightDecay, kMomentum, false>;
}

template <typename T, bool kWeightDecay>
auto sgd_kernel_for(Momentum momentum, bool nesterov) {
  switch (momentum) {
    case Momentum::First:
      return sgd_kernel_for<T, kWeightDecay, Momentum::First>(nesterov);
    case Momentum::Running:
      return sgd_kernel_for<T, kWeightDecay, Momentum::Running>(nesterov);
    default:
      return sgd_kernel<T, kWeightDecay, Momentum::None, false>;
  }
}

template <typename T>
void sgd_launches(const SgdStep& step, at::ScalarType dtype) {
  const optim::SgdOptions& o = step.options;
  const bool nesterov = o.nesterov && step.momentum != Momentum::None;
  const auto kernel = o.weight_decay != 0 ? sgd_kernel_for<T, true>(step.momentum, nesterov)
                                          : sgd_kernel_for<T, false>(step.momentum, nesterov);
  const optim::SgdScalars<T> scalars = optim::sgd_scalars<T>(o);
  for_each_launch<3>(step.params, dtype, fill_pointers<3, SgdParam>, [&](const ChunkList<3>& list, int blocks) {
    cuda::launch(kernel, blocks, kBlock, 0, list, scalars);
  });
}

template <typename T, WeightDecay kDecay>
auto adam_kernel_for(bool amsgrad) {
  return amsgrad ? adam_kernel<T, kDecay, true> : adam_kernel<T, kDecay, false>;
}

template <typename T>
void adam_launches(const AdamStep& step, at::ScalarType dtype) {
  const optim::AdamOptions& o = step.options;
  const auto kernel = o.weight_decay == 0        ? adam_kernel_for<T, WeightDecay::None>(o.amsgrad)
                      : o.decoupled_weight_decay ? adam_kernel_for<T, WeightDecay::Decoupled>(o.amsgrad)
                                                 : adam_kernel_for<T, WeightDecay::L2>(o.amsgrad);
  const auto fill = [](ChunkList<5>& list, int slot, const AdamParam& p) {
    fill_pointers<5>(list, slot, p);
    list.step[slot] = p.step;
    list.device_step[slot] = p.device_step;
    list.device_step_double[slot] = p.step_dtype == at::kDouble;
  };
  for_each_launch<5>(step.params, dtype, fill,
                     [&](const ChunkList<5>& list, int blocks) { cuda::launch(kernel, blocks, kBlock, 0, list, o); });
}

}  // namespace

void fused_sgd_kernel_cuda(const SgdStep& step) {
  sgd_launches<float>(step, at::kFloat);
  sgd_launches<double>(step, at::kDouble);
}

void fused_adam_kernel_cuda(const AdamStep& step) {
  increment_device_steps(step);
  adam_launches<float>(step, at::kFloat);
  adam_launches<double>(step, at::kDouble);
}

}  // namespace pykernels
