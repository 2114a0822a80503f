// The CPU GEMM's parts, split as BLIS splits a GEMM, and what each offers the others:
//   cpu/gemm_driver.cpp    gemm_kernel_cpu: picks the path by dtype; for float32 and float64, cuts
//                          the work among threads and runs the blocked loop nest (cpu/gemm_blocked.h)
//                          over the best microkernel this CPU has;
//   cpu/gemm_portable.cpp  the portable microkernel, for CPUs without the SIMD ones
//                          (cpu/gemm_avx2.cpp, cpu/gemm_avx512.cpp);
//   cpu/gemm_wide.cpp      float16, bfloat16 and integers, accumulated in a wider type.
// Plain C++, like cpu/gemm_ukernel.h: the portable kernel needs no torch headers.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "cpu/cpu_features.h"
#include "cpu/gemm_ukernel.h"

namespace pykernels {

struct GemmProblem;  // kernels.h

namespace cpu {

// Below this many multiply-adds a product runs on the calling thread: waking threads costs more.
constexpr int64_t kParallelWork = int64_t(1) << 20;

// The portable microkernel's register tile: 4 rows x two 16-byte vectors (4 x 8 floats,
// 4 x 4 doubles). The driver instantiates its loop nest for this tile at compile time.
constexpr int kPortableMR = 4;
template <typename T>
constexpr int kPortableNR = 2 * 16 / static_cast<int>(sizeof(T));
const GemmKernelInfo<float>& portable_gemm_kernel_f32();
const GemmKernelInfo<double>& portable_gemm_kernel_f64();

// C = A @ B for float16, bfloat16 and the integer dtypes (cpu/gemm_wide.cpp).
void gemm_wide(const GemmProblem& p);

// Calls run.template operator()<MR, NR>(info) with the float32 or float64 (T) microkernel of the
// best instruction set this CPU has, its register tile MR x NR as compile-time constants:
//   * x86-64 with AVX-512F: the intrinsics kernels of cpu/gemm_avx512.cpp (12 x 32 floats,
//     12 x 16 doubles), compiled for that target alone;
//   * x86-64 with AVX2+FMA: those of cpu/gemm_avx2.cpp (6 x 16 floats, 6 x 8 doubles);
//   * anything else (older x86-64, aarch64, ...): the portable kernel of cpu/gemm_portable.cpp,
//     which the compiler vectorizes for the baseline target.
template <typename T, typename Run>
decltype(auto) with_float_kernel(Run&& run) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  constexpr bool f32 = std::is_same_v<T, float>;
#if defined(__x86_64__)
  if (cpu_has_avx512f()) {
    if constexpr (f32) return run.template operator()<12, 32>(avx512_gemm_kernel_f32());
    if constexpr (!f32) return run.template operator()<12, 16>(avx512_gemm_kernel_f64());
  }
  if (cpu_has_avx2_fma()) {
    if constexpr (f32) return run.template operator()<6, 16>(avx2_gemm_kernel_f32());
    if constexpr (!f32) return run.template operator()<6, 8>(avx2_gemm_kernel_f64());
  }
#endif
  if constexpr (f32) return run.template operator()<kPortableMR, kPortableNR<T>>(portable_gemm_kernel_f32());
  if constexpr (!f32) return run.template operator()<kPortableMR, kPortableNR<T>>(portable_gemm_kernel_f64());
}

}  // namespace cpu
}  // namespace pykernels
