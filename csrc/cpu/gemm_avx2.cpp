// AVX2+FMA GEMM microkernels (the contract is in cpu/gemm_ukernel.h).
//
// This translation unit alone is compiled for AVX2+FMA, by `#pragma GCC target` below rather than
// by build flags, so the rest of the extension keeps the x86-64 baseline and runs on any CPU; the
// driver calls these kernels only after cpu_has_avx2_fma() (cpu/cpu_features.h) said yes at run
// time.
//
// Register tile: 6 rows x 2 vectors (6 x 16 floats, 6 x 8 doubles). AVX2 has 16 ymm registers:
// 12 hold the accumulators, 2 the current row of B, 1 the broadcast element of A. Per k step
// that is 12 FMAs against 2 vector loads and 6 broadcasts, which keeps both FMA pipes of a
// Zen 3 / Haswell-class core busy (2 FMAs per cycle, up to 3 loads per cycle), and the 12
// independent accumulators cover the 4-5 cycle FMA latency. Edge tiles (fewer rows or
// columns) use the same code with the row count and vector count as template parameters, so
// a partial tile costs only its own work.
#include "cpu/gemm_ukernel.h"

#if defined(__x86_64__)

// Everything from here to the pop is compiled for AVX2+FMA.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

namespace pykernels {
namespace cpu {
namespace {

constexpr int kMR = 6;  // rows of the register tile
constexpr int kNV = 2;  // vectors per row of the register tile

template <typename T>
struct Vec;

template <>
struct Vec<float> {
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
struct Vec<double> {
  using reg = __m256d;
  static constexpr int kLanes = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static reg broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
};

// An M x (NV vectors) tile. kPacked: A is a packed sliver (a_rs = 1, a_cs = kMR) and B a packed
// sliver (b_rs = NR), so the strides are compile-time constants; otherwise they are read from
// the arguments (A in place, any strides; B in place with unit column stride).
template <typename T, int M, int NV, bool kPacked>
__attribute__((always_inline)) inline void tile(int64_t kc, int64_t nr, const T* __restrict__ a, int64_t a_rs,
                                                int64_t a_cs, const T* __restrict__ b, int64_t b_rs,
                                                T* __restrict__ c, int64_t c_rs, int64_t c_cs, bool accumulate) {
  using V = Vec<T>;
  using reg = typename V::reg;
  constexpr int L = V::kLanes;
  if constexpr (kPacked) {
    a_rs = 1;
    a_cs = kMR;
    b_rs = kNV * L;
  }
  reg acc[M][NV];
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
#pragma GCC unroll 6
  for (int r = 0; r < M; ++r) __builtin_prefetch(c + r * c_rs, 1, 3);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    reg bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * L);
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      const reg av = V::broadcast(a + r * a_rs);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(av, bv[v], acc[r][v]);
    }
    a += a_cs;
    b += b_rs;
  }

  if (nr == NV * L && c_cs == 1) {
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r) {
      T* cr = c + r * c_rs;
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        reg x = acc[r][v];
        if (accumulate) x = V::add(V::load(cr + v * L), x);
        V::store(cr + v * L, x);
      }
    }
  } else {
    alignas(32) T t[M][NV * L];
#pragma GCC unroll 6
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) V::store(&t[r][v * L], acc[r][v]);
    store_tile_edge(&t[0][0], NV * L, M, nr, c, c_rs, c_cs, accumulate);
  }
}

template <typename T, int NV, bool kPacked>
void tile_rows(int64_t kc, int64_t mr, int64_t nr, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
               T* c, int64_t c_rs, int64_t c_cs, bool accumulate) {
#define PK_TILE(M) tile<T, M, NV, kPacked>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate)
  switch (mr) {
    case 6: return PK_TILE(6);
    case 5: return PK_TILE(5);
    case 4: return PK_TILE(4);
    case 3: return PK_TILE(3);
    case 2: return PK_TILE(2);
    default: return PK_TILE(1);
  }
#undef PK_TILE
}

template <typename T>
void microkernel(int64_t kc, int64_t mr, int64_t nr, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
                 T* c, int64_t c_rs, int64_t c_cs, bool accumulate) {
  constexpr int64_t L = Vec<T>::kLanes;
  const bool packed = a_rs == 1 && a_cs == kMR && b_rs == kNV * L;
  if (nr > L) {
    if (packed) return tile_rows<T, 2, true>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
    return tile_rows<T, 2, false>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
  }
  if (packed) return tile_rows<T, 1, true>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
  return tile_rows<T, 1, false>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
}

// Column-major B (a transposed operand, e.g. w.t()) packed by register transposes: 8 x 8 floats
// or 4 x 4 doubles at a time, instead of one strided element at a time.
void pack_b_col_major_f32(const float* b, int64_t cs, int64_t kc, float* dst) {
  constexpr int NR = kNV * 8;
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int c0 = 0; c0 < NR; c0 += 8) {
      __m256 r[8];
      for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(b + (c0 + c) * cs + k);
      // 8 x 8 transpose: r[c][k] -> t[k][c].
      const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
      const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
      const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
      const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
      float* d = dst + k * NR + c0;
      _mm256_storeu_ps(d + 0 * NR, _mm256_permute2f128_ps(b0, b4, 0x20));
      _mm256_storeu_ps(d + 1 * NR, _mm256_permute2f128_ps(b1, b5, 0x20));
      _mm256_storeu_ps(d + 2 * NR, _mm256_permute2f128_ps(b2, b6, 0x20));
      _mm256_storeu_ps(d + 3 * NR, _mm256_permute2f128_ps(b3, b7, 0x20));
      _mm256_storeu_ps(d + 4 * NR, _mm256_permute2f128_ps(b0, b4, 0x31));
      _mm256_storeu_ps(d + 5 * NR, _mm256_permute2f128_ps(b1, b5, 0x31));
      _mm256_storeu_ps(d + 6 * NR, _mm256_permute2f128_ps(b2, b6, 0x31));
      _mm256_storeu_ps(d + 7 * NR, _mm256_permute2f128_ps(b3, b7, 0x31));
    }
  }
  for (; k < kc; ++k)
    for (int c = 0; c < NR; ++c) dst[k * NR + c] = b[c * cs + k];
}

void pack_b_col_major_f64(const double* b, int64_t cs, int64_t kc, double* dst) {
  constexpr int NR = kNV * 4;
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    for (int c0 = 0; c0 < NR; c0 += 4) {
      const __m256d r0 = _mm256_loadu_pd(b + (c0 + 0) * cs + k), r1 = _mm256_loadu_pd(b + (c0 + 1) * cs + k);
      const __m256d r2 = _mm256_loadu_pd(b + (c0 + 2) * cs + k), r3 = _mm256_loadu_pd(b + (c0 + 3) * cs + k);
      // 4 x 4 transpose: r[c][k] -> t[k][c].
      const __m256d a0 = _mm256_unpacklo_pd(r0, r1), a1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d a2 = _mm256_unpacklo_pd(r2, r3), a3 = _mm256_unpackhi_pd(r2, r3);
      double* d = dst + k * NR + c0;
      _mm256_storeu_pd(d + 0 * NR, _mm256_permute2f128_pd(a0, a2, 0x20));
      _mm256_storeu_pd(d + 1 * NR, _mm256_permute2f128_pd(a1, a3, 0x20));
      _mm256_storeu_pd(d + 2 * NR, _mm256_permute2f128_pd(a0, a2, 0x31));
      _mm256_storeu_pd(d + 3 * NR, _mm256_permute2f128_pd(a1, a3, 0x31));
    }
  }
  for (; k < kc; ++k)
    for (int c = 0; c < NR; ++c) dst[k * NR + c] = b[c * cs + k];
}

}  // namespace

extern const GemmKernelInfo<float> kAvx2F32{kMR, kNV * 8, &microkernel<float>, &pack_b_col_major_f32};
extern const GemmKernelInfo<double> kAvx2F64{kMR, kNV * 4, &microkernel<double>, &pack_b_col_major_f64};

}  // namespace cpu
}  // namespace pykernels

#pragma GCC pop_options

namespace pykernels {
namespace cpu {

const GemmKernelInfo<float>& avx2_gemm_kernel_f32() { return kAvx2F32; }
const GemmKernelInfo<double>& avx2_gemm_kernel_f64() { return kAvx2F64; }

}  // namespace cpu
}  // namespace pykernels

#endif  // __x86_64__
