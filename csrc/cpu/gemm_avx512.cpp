// AVX-512 GEMM microkernels (the contract is in cpu/gemm_ukernel.h).
//
// Compiled for AVX-512F by `#pragma GCC target`, like cpu/gemm_avx2.cpp for AVX2, and called only
// after cpu_has_avx512f() (cpu/cpu_features.h) said yes at run time.
//
// Register tile: kMR rows x 2 vectors (kMR x 32 floats, kMR x 16 doubles). AVX-512 has 32 zmm
// registers: 2 * kMR hold the accumulators, 2 the current row of B, 1 the broadcast element of
// A. With two 512-bit FMA pipes and a 4-cycle latency, at least 8 independent accumulators keep
// the core busy; more rows per tile read each B vector more times from registers rather than L1
// (per k step: 2 loads of B, kMR broadcasts of A for 2 * kMR FMAs). 12 rows measured as fast
// as 14 and ahead of 8 and 6 on a Sapphire Rapids core, and 144-row A blocks split evenly.
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

template <typename T>
struct Vec;

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
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
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
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
};

}  // namespace

// Cache blocks, for Sapphire Rapids-class cores (48 KiB L1d, 2 MiB L2): the KC x NR sliver of B
// (32 KiB for float with KC = 256; doubles take half the KC for the same bytes) stays in L1
// while the MC x KC block of A (144 KiB) streams from L2.
extern const GemmKernelInfo<float> kAvx512F32 = simd_tile::kernel_info<Vec<float>, kMR>(144, 256, 4096);
extern const GemmKernelInfo<double> kAvx512F64 = simd_tile::kernel_info<Vec<double>, kMR>(144, 128, 4096);

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
