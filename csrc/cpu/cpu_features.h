// Run-time CPU feature checks for the kernels that have AVX2 or AVX-512 variants (the GEMM
// microkernels, the contiguous elementwise loops). The extension itself is built for the x86-64
// baseline, so those variants are compiled for their target function by function (or file by
// file) and only called when these say yes.
//
// In the environment (read once, at first use), PYKERNELS_NO_AVX512=1 turns the AVX-512 variants
// off and PYKERNELS_NO_AVX2=1 every AVX2 and AVX-512 variant: that is how the AVX2 and portable
// paths are tested on a newer machine.
#pragma once

#include <cstdlib>
#include <cstring>

namespace pykernels {
namespace cpu {

inline bool disabled_by_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

#if defined(__x86_64__)
// AVX2 (and the OS saving ymm state, which libgcc checks).
inline bool cpu_has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && !disabled_by_env("PYKERNELS_NO_AVX2");
  }();
  return yes;
}

inline bool cpu_has_avx2_fma() {
  static const bool yes = cpu_has_avx2() && __builtin_cpu_supports("fma");
  return yes;
}

// AVX-512F (libgcc also checks that the OS saves the zmm state), on top of AVX2+FMA.
inline bool cpu_has_avx512f() {
  static const bool yes =
      cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && !disabled_by_env("PYKERNELS_NO_AVX512");
  return yes;
}

// Whether the elementwise loops take their AVX-512 variants: on Intel, whose cores run 512-bit
// operations full width. AMD's Zen 4 splits each into two 256-bit halves; there the AVX2 loops
// were faster on memory-bound elementwise ops (and torch runs its AVX2 kernels).
// The GEMM microkernel keeps AVX-512 everywhere: its 32 registers hold a larger tile.
inline bool cpu_prefers_avx512_loops() {
  static const bool yes = cpu_has_avx512f() && __builtin_cpu_is("intel");
  return yes;
}
#else
inline bool cpu_has_avx2() { return false; }
inline bool cpu_has_avx2_fma() { return false; }
inline bool cpu_has_avx512f() { return false; }
inline bool cpu_prefers_avx512_loops() { return false; }
#endif

}  // namespace cpu
}  // namespace pykernels
