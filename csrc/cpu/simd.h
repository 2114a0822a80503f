// The instruction set the CPU kernels were compiled for. The kernels are written as plain
// loops with compile-time trip counts so the compiler vectorizes them for this target.
#pragma once

namespace pykernels {

inline const char* cpu_simd_level() {
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

}  // namespace pykernels
