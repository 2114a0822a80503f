// The instruction sets the CPU kernels use, for build_info()["cpu_simd"] and `pykernels info`.
//
// The extension is compiled for the build target (the x86-64 baseline, SSE2, unless the flags
// say otherwise): anything not listed below is plain loops the compiler vectorizes for it. On
// x86-64, three kinds of kernels also have variants that are chosen at run time by CPU feature
// detection (cpu/cpu_features.h): the GEMM microkernel (AVX-512F or AVX2+FMA intrinsics,
// cpu/gemm_avx512.cpp, cpu/gemm_avx2.cpp), the float/double elementwise loops (AVX-512F or
// AVX2, cpu/loops.h; the ReLU bit-mask loops in cpu/elementwise.cpp take AVX2) and the
// float/double reductions of sum, mean and mse_loss (AVX2).
#pragma once

#include <string>

#include "cpu/cpu_features.h"

namespace pykernels {

inline const char* cpu_build_simd_level() {
#if defined(__AVX512F__)
  return "AVX512 (compiler-vectorized)";
#elif defined(__AVX2__)
  return "AVX2 (compiler-vectorized)";
#elif defined(__x86_64__)
  return "SSE2 (x86-64 baseline, compiler-vectorized)";
#elif defined(__aarch64__)
  return "NEON (aarch64 baseline, compiler-vectorized)";
#else
  return "scalar";
#endif
}

// e.g. "AVX2+FMA (runtime-selected: GEMM microkernel, elementwise loops, reductions); SSE2 (x86-64 baseline,
// compiler-vectorized) elsewhere", or "SSE2 (...); generic GEMM microkernel".
inline const char* cpu_simd_level() {
  static const std::string level = [] {
    if (cpu::cpu_prefers_avx512_loops()) {
      return std::string(
                 "AVX-512F (runtime-selected: GEMM microkernel, elementwise loops), AVX2 (ReLU mask, reductions); ") +
             cpu_build_simd_level() + " elsewhere";
    }
    if (cpu::cpu_has_avx512f()) {
      return std::string("AVX-512F (runtime-selected: GEMM microkernel), AVX2 (elementwise loops, reductions); ") +
             cpu_build_simd_level() + " elsewhere";
    }
    if (cpu::cpu_has_avx2_fma()) {
      return std::string("AVX2+FMA (runtime-selected: GEMM microkernel, elementwise loops, reductions); ") +
             cpu_build_simd_level() + " elsewhere";
    }
    if (cpu::cpu_has_avx2()) {
      return std::string("AVX2 (runtime-selected: elementwise loops, reductions); ") + cpu_build_simd_level() +
             " elsewhere; generic GEMM microkernel";
    }
    return std::string(cpu_build_simd_level()) + "; generic GEMM microkernel";
  }();
  return level.c_str();
}

}  // namespace pykernels
