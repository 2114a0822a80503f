// AVX-512 GEMM microkernels (the contract is in cpu/gemm_ukernel.h).
//
// Compiled for AVX-512F by `#pragma GCC target`, like cpu/gemm_avx2.cpp for AVX2, and called only
// after cpu_has_avx512f() (cpu/cpu_features.h) said yes at run time.
//
// Register tile: kMR rows x 2 vectors (kMR x 32 floats, kMR x 16 doubles). AVX-512 has 32 zmm
// registers: 2 * kMR hold the accumulators, 2 the current row of B, 1 the broadcast element of
// A. With two 512-bit FMA pipes and a 4-cycle latency, at least 8 independent accumulators keep
// the core busy; more rows per tile read each B vector more times from registers rather than L1
// (per k step: 2 loads of B, kMR broadcasts of A for 2 * kMR FMAs). On a Sapphire Rapids core 12
// rows were as fast as 14 and ahead of 8 and 6, and 144-row A blocks split evenly into them.
#include "cpu/gemm_ukernel.h"

#if defined(__x86_64__)

// Everything from here to the pop is compiled for AVX-512F (with AVX2 and FMA, which the B
// packing's 256-bit transposes use).
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>

#include "cpu/gemm_simd_tile.h"
#include "cpu/gemm_vec256.h"

namespace pykernels {
namespace cpu {
namespace {

constexpr int kMR = 12;  // rows of the register tile
// Dot-product tiles: 4 rows x 4 columns, 16 accumulators plus 4 vectors of A and 1 of B, which
// fit in the registers and keep the FMA pipes near their peak; 8 x 4 spilled registers.
constexpr int kDotMR = 4;

template <typename T>
struct Vec;

// The low and high 256 bits of v, for the dot-product tiles' sums. Extracted as doubles (the float
// extract needs AVX-512DQ) and by the zero-masking form: GCC 12 warns, falsely, that the plain
// extract and the casts built on it read undefined lanes.
struct Halves {
  __m256d lo, hi;
};
inline Halves split(__m512d v) {
  return {_mm512_maskz_extractf64x4_pd(0xF, v, 0), _mm512_maskz_extractf64x4_pd(0xF, v, 1)};
}

// Half: 256-bit vectors, for edge tiles of at most 8 floats or 4 doubles; on cores that run a
// 512-bit FMA as two 256-bit halves (Zen 4), such a tile costs half the FMA slots of a full one.
template <>
struct Vec<float> {
  using T = float;
  using Half = Vec256<float>;
  using reg = __m512;
  static constexpr int kLanes = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // max(0, v): where v is NaN or a zero, maxps returns its second operand, v, as relu keeps it.
  // The zero-masking form, whole mask: GCC 12 warns, falsely, that the plain one reads undefined lanes.
  static reg relu(reg v) { return _mm512_maskz_max_ps(0xFFFF, _mm512_setzero_ps(), v); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg load_first(const float* p, int64_t count) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
  }
  static void sum4(reg a, reg b, reg c, reg d, float* out) {
    Half::sum4(halves(a), halves(b), halves(c), halves(d), out);
  }
  static __m256 halves(reg v) {
    const auto [lo, hi] = split(_mm512_castps_pd(v));
    return _mm256_add_ps(_mm256_castpd_ps(lo), _mm256_castpd_ps(hi));
  }
};

template <>
struct Vec<double> {
  using T = double;
  using Half = Vec256<double>;
  using reg = __m512d;
  static constexpr int kLanes = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static reg broadcast(const double* p) { return _mm512_set1_pd(*p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg relu(reg v) { return _mm512_maskz_max_pd(0xFF, _mm512_setzero_pd(), v); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg load_first(const double* p, int64_t count) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << count) - 1), p);
  }
  static void sum4(reg a, reg b, reg c, reg d, double* out) {
    Half::sum4(halves(a), halves(b), halves(c), halves(d), out);
  }
  static __m256d halves(reg v) {
    const auto [lo, hi] = split(v);
    return _mm256_add_pd(lo, hi);
  }
};

}  // namespace

// Cache blocks, for Sapphire Rapids-class cores (48 KiB L1d, 2 MiB L2): the KC x NR sliver of B
// (32 KiB for float with KC = 256; doubles take half the KC for the same bytes) stays in L1
// while the MC x KC block of A (144 KiB) streams from L2.
extern const GemmKernelInfo<float> kAvx512F32 = simd_tile::kernel_info<Vec<float>, kMR, kDotMR>(144, 256, 4096);
extern const GemmKernelInfo<double> kAvx512F64 = simd_tile::kernel_info<Vec<double>, kMR, kDotMR>(144, 128, 4096);

}  // namespace cpu
}  // namespace pykernels

#pragma GCC pop_options

namespace pykernels {
namespace cpu {

const GemmKernelInfo<float>& avx512_gemm_kernel_f32() { return kAvx512F32; }
const GemmKernelInfo<double>& avx512_gemm_kernel_f64() { return kAvx512F64; }

}  // namespace cpu
}  // namespace pykernels

#endif  // __x86_64__
