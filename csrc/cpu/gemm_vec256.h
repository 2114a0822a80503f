// 256-bit vector traits (float, double) for the GEMM register tile of cpu/gemm_simd_tile.h: the
// whole vector of the AVX2 kernels (cpu/gemm_avx2.cpp) and the half vector of the AVX-512
// kernels' narrow edge tiles (cpu/gemm_avx512.cpp).
//
// Include this after the including file's `#pragma GCC target` and <immintrin.h>; like
// gemm_simd_tile.h it sits in an anonymous namespace, so each file gets copies compiled for its
// own instruction set.
#pragma once

namespace pykernels {
namespace cpu {
namespace {

template <typename T>
struct Vec256;

template <>
struct Vec256<float> {
  using T = float;
  using reg = __m256;
  static constexpr int kLanes = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
};

template <>
struct Vec256<double> {
  using T = double;
  using reg = __m256d;
  static constexpr int kLanes = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static reg broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
};

}  // namespace
}  // namespace cpu
}  // namespace pykernels
