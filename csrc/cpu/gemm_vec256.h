// 256-bit vector traits (float, double) for the GEMM register tile of cpu/gemm_simd_tile.h: the
// whole vector of the AVX2 kernels (cpu/gemm_avx2.cpp) and the half vector of the AVX-512
// kernels' narrow edge tiles (cpu/gemm_avx512.cpp).
//
// Include this after the including file's `#pragma GCC target` and <immintrin.h>; like
// gemm_simd_tile.h it sits in an anonymous namespace, so each file gets copies compiled for its
// own instruction set.
#pragma once

#include <cstdint>

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
  // max(0, v): where v is NaN or a zero, maxps returns its second operand, v, as relu keeps it.
  static reg relu(reg v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  // The first `count` (< kLanes) values at p, the other lanes zero; nothing past them is read.
  static reg load_first(const float* p, int64_t count) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane));
  }
  // out[i] = the sum of the lanes of the i-th vector.
  static void sum4(reg a, reg b, reg c, reg d, float* out) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));  // per 128-bit half
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
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
  static reg relu(reg v) { return _mm256_max_pd(_mm256_setzero_pd(), v); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg load_first(const double* p, int64_t count) {
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), lane));
  }
  static void sum4(reg a, reg b, reg c, reg d, double* out) {
    const __m256d ab = _mm256_hadd_pd(a, b), cd = _mm256_hadd_pd(c, d);  // a01 b01 a23 b23, c01 d01 c23 d23
    _mm256_storeu_pd(out, _mm256_add_pd(_mm256_permute2f128_pd(ab, cd, 0x20), _mm256_permute2f128_pd(ab, cd, 0x31)));
  }
};

}  // namespace
}  // namespace cpu
}  // namespace pykernels
