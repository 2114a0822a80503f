// Parallel elementwise loops over a StridedIter, for the CPU kernels.
//
// The linear index space is split across threads with at::parallel_for; each thread walks its
// share run by run (see for_range). Inside a run, the all-contiguous case and the
// "one operand is a broadcast scalar" case get their own loops, which the compiler vectorizes;
// anything else falls back to a strided loop. For float and double the runs are also compiled
// for AVX2 and AVX-512 and picked at run time (cpu/cpu_features.h says which).
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <type_traits>

#include "common/strided.h"
#include "cpu/cpu_features.h"

namespace pykernels {

// Below this many elements a loop runs on one thread: starting threads costs more than it saves.
constexpr int64_t kGrainSize = 32768;

// One run of `n` elements of an elementwise loop: out = f(in...) for N - 1 inputs of type T
// (operand 0 is the output, also of type T), starting at the element offsets `off`.
// The all-contiguous and "one operand is a broadcast scalar" runs get loops of their own,
// which the compiler vectorizes, four vectors per iteration (with one per iteration, ops of the
// same cost ran at different speeds, by where the short loop happened to fall in the code);
// anything else is a strided loop.
template <typename T, int N, typename F>
__attribute__((always_inline)) inline void elementwise_run(const StridedIter<N>& it, const int64_t* off, int64_t n,
                                                           const F& f) {
  static_assert(N >= 2 && N <= 4, "one output and one to three inputs");
  // Local pointers (not an array) so the compiler can vectorize the contiguous loops.
  T* out = static_cast<T*>(it.data[0]) + off[0];
  const int64_t so = it.strides[0][0];
  const T* a = static_cast<const T*>(it.data[1]) + off[1];
  const int64_t sa = it.strides[1][0];
  if constexpr (N == 2) {
    if (so == 1 && sa == 1) {
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * so] = f(a[i * sa]);
    }
  } else if constexpr (N == 3) {
    const T* b = static_cast<const T*>(it.data[2]) + off[2];
    const int64_t sb = it.strides[2][0];
    if (so == 1 && sa == 1 && sb == 1) {
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    } else if (so == 1 && sa == 1 && sb == 0) {
      const T bv = *b;
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
    } else if (so == 1 && sa == 0 && sb == 1) {
      const T av = *a;
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * so] = f(a[i * sa], b[i * sb]);
    }
  } else {
    const T* b = static_cast<const T*>(it.data[2]) + off[2];
    const T* c = static_cast<const T*>(it.data[3]) + off[3];
    const int64_t sb = it.strides[2][0], sc = it.strides[3][0];
    if (so == 1 && sa == 1 && sb == 1 && sc == 1) {
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i], c[i]);
    } else if (so == 1 && sa == 1 && sb == 1 && sc == 0) {
      const T cv = *c;
#pragma GCC unroll 4
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i], cv);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * so] = f(a[i * sa], b[i * sb], c[i * sc]);
    }
  }
}

#if defined(__x86_64__)
// The same runs compiled for AVX2 (twice the vector width of the x86-64 baseline) and for
// AVX-512 (whose 64-byte stores fill a cache line at a time), for the floating types; called
// only when the CPU has them. No FMA contraction: results stay bit for bit those of the baseline.
template <typename T, int N, typename F>
__attribute__((target("avx2"), noinline)) void elementwise_run_avx2(const StridedIter<N>& it, const int64_t* off,
                                                                    int64_t n, const F& f) {
  elementwise_run<T, N>(it, off, n, f);
}

template <typename T, int N, typename F>
__attribute__((target("avx512f"), optimize("fp-contract=off"), noinline)) void elementwise_run_avx512(
    const StridedIter<N>& it, const int64_t* off, int64_t n, const F& f) {
  elementwise_run<T, N>(it, off, n, f);
}
#endif

template <typename T>
constexpr bool kHasAvx2Loops = std::is_same_v<T, float> || std::is_same_v<T, double>;

// Whether loops over T take their AVX2 variants here: T has them and the CPU runs AVX2.
template <typename T>
bool takes_avx2_loops() {
#if defined(__x86_64__)
  if constexpr (kHasAvx2Loops<T>) return cpu::cpu_has_avx2();
#endif
  return false;
}

// out = f(in...) over the whole iteration, split across threads.
template <typename T, int N, typename F>
void elementwise_loop(const StridedIter<N>& it, F f) {
#if defined(__x86_64__)
  if constexpr (kHasAvx2Loops<T>) {
    if (cpu::cpu_prefers_avx512_loops()) {
      at::parallel_for(0, it.numel, kGrainSize, [&](int64_t begin, int64_t end) {
        for_range(it, begin, end, [&](const int64_t* off, int64_t n) { elementwise_run_avx512<T, N>(it, off, n, f); });
      });
      return;
    }
    if (cpu::cpu_has_avx2()) {
      at::parallel_for(0, it.numel, kGrainSize, [&](int64_t begin, int64_t end) {
        for_range(it, begin, end, [&](const int64_t* off, int64_t n) { elementwise_run_avx2<T, N>(it, off, n, f); });
      });
      return;
    }
  }
#endif
  at::parallel_for(0, it.numel, kGrainSize, [&](int64_t begin, int64_t end) {
    for_range(it, begin, end, [&](const int64_t* off, int64_t n) { elementwise_run<T, N>(it, off, n, f); });
  });
}

}  // namespace pykernels
