// Run-time CPU feature checks for the kernels that have an AVX2 variant (the GEMM microkernel,
// the contiguous elementwise loops). The extension itself is built for the x86-64 baseline, so
// those variants are compiled for AVX2 function by function and only called when these say yes.
//
// PYKERNELS_NO_AVX2=1 in the environment (read once, at first use) turns every AVX2 variant off,
// which is how the portable paths are tested on an AVX2 machine.
#pragma once

#include <cstdlib>
#include <cstring>

namespace pykernels {
namespace cpu {

inline bool avx2_disabled_by_env() {
  const char* v = std::getenv("PYKERNELS_NO_AVX2");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

#if defined(__x86_64__)
// AVX2 (and the OS saving ymm state, which libgcc checks).
inline bool cpu_has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && !avx2_disabled_by_env();
  }();
  return yes;
}

inline bool cpu_has_avx2_fma() {
  static const bool yes = cpu_has_avx2() && __builtin_cpu_supports("fma");
  return yes;
}
#else
inline bool cpu_has_avx2() { return false; }
inline bool cpu_has_avx2_fma() { return false; }
#endif

}  // namespace cpu
}  // namespace pykernels
