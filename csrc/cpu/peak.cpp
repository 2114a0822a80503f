// FMA throughput of this machine: each torch thread runs kChains independent chains of vector
// multiply-adds on registers only (no memory traffic), enough chains to cover the FMA latency
// on every port, so the rate is the core's issue limit: the ceiling of any GEMM microkernel
// with the same instruction set.
#include "cpu/peak.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "cpu/cpu_features.h"

namespace pykernels {
namespace cpu {
namespace {

constexpr int kChains = 12;  // 2 FMA ports x 4-6 cycles of latency, with room to spare

// Folds the chains into one value the caller keeps, so the compiler cannot drop the work.
std::atomic<float> sink{0};

// kChains independent chains acc = acc * m + a on vectors V (GCC vector extensions), inlined
// into a caller compiled for the target whose registers V fills; with FMA available the
// multiply-add is one instruction.
template <typename V>
__attribute__((always_inline)) inline void chains(int64_t iters) {
  V acc[kChains];
  const V m = V{} + 0.999999f, a = V{} + 1e-7f;
  for (int c = 0; c < kChains; ++c) acc[c] = V{} + static_cast<float>(c);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * m + a;
  float total = 0;
  for (int c = 0; c < kChains; ++c) total += acc[c][0];
  sink.store(total, std::memory_order_relaxed);
}

typedef float f32x4 __attribute__((vector_size(16)));
// The baseline: 16-byte vectors (SSE2, NEON); the multiply-add may or may not be fused.
void chains_generic(int64_t iters) { chains<f32x4>(iters); }

#if defined(__x86_64__)
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"))) void chains_avx2(int64_t iters) { chains<f32x8>(iters); }
__attribute__((target("avx512f"))) void chains_avx512(int64_t iters) { chains<f32x16>(iters); }
#endif

}  // namespace

FmaPeak measure_fma_peak(double seconds) {
  void (*run_chains)(int64_t) = chains_generic;
  int lanes = 4;
  const char* isa = "baseline 128-bit vectors";
#if defined(__x86_64__)
  if (cpu_has_avx512f()) {
    run_chains = chains_avx512, lanes = 16, isa = "AVX-512F";
  } else if (cpu_has_avx2_fma()) {
    run_chains = chains_avx2, lanes = 8, isa = "AVX2+FMA";
  }
#endif
  const int64_t threads = at::get_num_threads();
  auto run = [&](int64_t iters) {
    const auto start = std::chrono::steady_clock::now();
    at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) run_chains(iters);
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // Calibrate to about a third of the time per run, then keep the best of three runs.
  int64_t iters = 1 << 16;
  double t = run(iters);
  while (t < seconds / 30) {
    iters *= 4;
    t = run(iters);
  }
  iters = std::max<int64_t>(1, static_cast<int64_t>(iters * (seconds / 3) / t));
  double best = run(iters);
  best = std::min(best, run(iters));
  best = std::min(best, run(iters));
  const double flops = 2.0 * kChains * lanes * static_cast<double>(iters) * static_cast<double>(threads);
  return {flops / best / 1e9, isa};
}

}  // namespace cpu
}  // namespace pykernels
