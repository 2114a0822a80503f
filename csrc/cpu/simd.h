// The instruction sets the CPU kernels use. The elementwise and reduction kernels are plain loops
// with compile-time trip counts that the compiler vectorizes for the build target; the GEMM
// microkernel is chosen at run time (cpu/gemm.cpp): AVX2+FMA intrinsics where the CPU has them,
// a portable kernel otherwise.
#pragma once

#include <string>

namespace pykernels {

// "AVX2+FMA (runtime-selected GEMM microkernel)" or "generic (portable GEMM microkernel)".
const char* cpu_gemm_path_name();

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

// e.g. "GEMM: AVX2+FMA (runtime-selected GEMM microkernel); other kernels: SSE2 (...)".
inline const char* cpu_simd_level() {
  static const std::string level =
      std::string("GEMM: ") + cpu_gemm_path_name() + "; other kernels: " + cpu_build_simd_level();
  return level.c_str();
}

}  // namespace pykernels
