// The register-tile microkernel shared by the x86 SIMD GEMM kernels (cpu/gemm_avx2.cpp,
// cpu/gemm_avx512.cpp); the contract is in cpu/gemm_ukernel.h.
//
// Include this after the including file's `#pragma GCC target`. Everything here sits in an
// anonymous namespace on purpose: each translation unit gets its own copies, compiled for its
// own instruction set, which the linker can never merge with a copy built for another one.
//
// A traits type V provides: T (the element type), reg, kLanes, zero(), load(p), broadcast(p),
// fmadd(a, b, c) = a * b + c, add(a, b), relu(v), store(p, v); optionally Half, the traits of a
// vector half as wide, for edge tiles of at most kLanes / 2 columns. The including file has
// included cpu/gemm_ukernel.h before its pragma (so store_tile_edge stays baseline code) and
// <immintrin.h> after it; the B packing below uses 256-bit AVX.
//
// Tile: M rows x NV vectors. Per k step, NV vector loads of B, M broadcasts of A and M * NV
// FMAs into M * NV independent accumulators. Edge tiles (fewer rows or columns) are instances
// of the same code by row and vector count, so a partial tile costs only its own work.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/gemm_ukernel.h"

namespace pykernels {
namespace cpu {
namespace simd_tile {
namespace {

// Sets every accumulator of a register tile to zero.
template <typename V, int R, int C>
__attribute__((always_inline)) inline void zero_tile(typename V::reg (&acc)[R][C]) {
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = V::zero();
}

// The epilogue of a whole register tile (R rows x C vectors, every column of C present): the
// biases are loaded once per row or vector, and the ReLU is a max with zero taking NaN from x.
template <typename V, int R, int C>
__attribute__((always_inline)) inline void apply_epilogue_tile(const GemmEpilogue<typename V::T>& e,
                                                               typename V::reg (&acc)[R][C]) {
  if (e.row_bias != nullptr) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const typename V::reg b = V::broadcast(e.row_bias + r);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = V::add(acc[r][c], b);
    }
  }
  if (e.col_bias != nullptr) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const typename V::reg b = V::load(e.col_bias + c * V::kLanes);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][c] = V::add(acc[r][c], b);
    }
  }
  if (e.relu) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = V::relu(acc[r][c]);
  }
}

// kPacked: A is a packed sliver (a_rs = 1, a_cs = MR) and B a packed sliver (b_rs = NR),
// so the strides are compile-time constants; otherwise they are read from the arguments (A in
// place, any strides; B in place with unit column stride).
template <typename V, int MR, int NR, int M, int NV, bool kPacked>
__attribute__((always_inline)) inline void tile(int64_t kc, int64_t nr, const typename V::T* __restrict__ a,
                                                int64_t a_rs, int64_t a_cs, const typename V::T* __restrict__ b,
                                                int64_t b_rs, typename V::T* __restrict__ c, int64_t c_rs, int64_t c_cs,
                                                bool accumulate, const GemmEpilogue<typename V::T>* epilogue) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int L = V::kLanes;
  if constexpr (kPacked) {
    a_rs = 1;
    a_cs = MR;
    b_rs = NR;  // whatever width this edge tile uses
  }
  reg acc[M][NV];
  zero_tile<V>(acc);
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r) __builtin_prefetch(c + r * c_rs, 1, 3);

  // A's rows in groups of three, one pointer per group: row r is rows[r / 3] + (r % 3) * a_rs,
  // which x86 addresses as base + index * scale. A pointer per row would need more
  // general-purpose registers than there are, and the spilled ones cost a load every k step.
  constexpr int G = (M + 2) / 3;
  const T* rows[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) rows[g] = a + 3 * g * a_rs;

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    reg bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * L);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r) {
      const reg av = V::broadcast(rows[r / 3] + (r % 3) * a_rs);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(av, bv[v], acc[r][v]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) rows[g] += a_cs;
    b += b_rs;
  }

  if (nr == NV * L && c_cs == 1) {
    if (accumulate) {
#pragma GCC unroll 16
      for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = V::add(V::load(c + r * c_rs + v * L), acc[r][v]);
    }
    if (epilogue != nullptr) apply_epilogue_tile<V>(*epilogue, acc);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) V::store(c + r * c_rs + v * L, acc[r][v]);
  } else {
    // An edge or a strided C (a transposed output) is stored element by element; an epilogue
    // that needs nothing of C (no accumulation) and no bias past the tile's nr columns is applied
    // to the registers first, so that the store is plain moves.
    if (epilogue != nullptr && !accumulate && (epilogue->col_bias == nullptr || nr == NV * L)) {
      apply_epilogue_tile<V>(*epilogue, acc);
      epilogue = nullptr;
    }
    alignas(64) T t[M][NV * L];
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) V::store(&t[r][v * L], acc[r][v]);
    store_tile_edge(&t[0][0], NV * L, 1, M, nr, c, c_rs, c_cs, accumulate, epilogue);
  }
}

// Dispatches a tile of mr rows (1 <= mr <= MR) to its instance.
template <typename V, int MR, int NR, int NV, bool kPacked, int M = MR>
void tile_rows(int64_t kc, int64_t mr, int64_t nr, const typename V::T* a, int64_t a_rs, int64_t a_cs,
               const typename V::T* b, int64_t b_rs, typename V::T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
               const GemmEpilogue<typename V::T>* epilogue) {
  if constexpr (M > 1) {
    if (mr < M)
      return tile_rows<V, MR, NR, NV, kPacked, M - 1>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate,
                                                      epilogue);
  }
  tile<V, MR, NR, M, NV, kPacked>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
}

template <typename V, typename = void>
struct HasHalf : std::false_type {};
template <typename V>
struct HasHalf<V, std::void_t<typename V::Half>> : std::true_type {};

// Runs the tile of nr columns in 2 vectors, 1 vector or, where V has one, 1 half vector (NR, the
// packed sliver's width, is 2 vectors of V in every case).
template <typename V, int MR, int NR, bool kPacked>
void tile_cols(int64_t kc, int64_t mr, int64_t nr, const typename V::T* a, int64_t a_rs, int64_t a_cs,
               const typename V::T* b, int64_t b_rs, typename V::T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
               const GemmEpilogue<typename V::T>* epilogue) {
  constexpr int64_t L = V::kLanes;
  if (nr > L)
    return tile_rows<V, MR, NR, 2, kPacked>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
  if constexpr (HasHalf<V>::value) {
    if (nr <= L / 2)
      return tile_rows<typename V::Half, MR, NR, 1, kPacked>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs,
                                                             accumulate, epilogue);
  }
  tile_rows<V, MR, NR, 1, kPacked>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
}

// A narrow tile (NE columns, NE < MR) of packed slivers, turned around: the MR rows of A lie in
// the lanes of NVR vectors, loaded once per k, and each column's element of B is broadcast. A k
// step is NVR loads, NE broadcasts and NE * NVR FMAs, where the row-broadcast tile above issues
// MR broadcasts whatever its width, so that a few columns wide it is bound by the broadcasts, not
// by its FMAs (x.t() @ g's edge columns in nn.Linear's backward). Every C element is still one
// FMA chain in k order, so results are the same bit for bit. Rows past mr (zero in a packed
// sliver) and columns past nr (zero padding) are computed and dropped.
template <typename V, int MR, int NR, int NE>
void narrow_tile(int64_t kc, int64_t mr, int64_t nr, const typename V::T* __restrict__ a,
                 const typename V::T* __restrict__ b, typename V::T* __restrict__ c, int64_t c_rs, int64_t c_cs,
                 bool accumulate, const GemmEpilogue<typename V::T>* epilogue) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int L = V::kLanes, NVR = (MR + L - 1) / L, TAIL = MR - (NVR - 1) * L;  // rows in the last vector
  reg acc[NE][NVR];
  zero_tile<V>(acc);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    reg av[NVR];
#pragma GCC unroll 2
    for (int v = 0; v < NVR; ++v)
      av[v] = v + 1 < NVR || TAIL == L ? V::load(a + v * L) : V::load_first(a + v * L, TAIL);
#pragma GCC unroll 8
    for (int j = 0; j < NE; ++j) {
      const reg bj = V::broadcast(b + j);
#pragma GCC unroll 2
      for (int v = 0; v < NVR; ++v) acc[j][v] = V::fmadd(av[v], bj, acc[j][v]);
    }
    a += MR;
    b += NR;
  }
  alignas(64) T t[NE][NVR * L];
#pragma GCC unroll 8
  for (int j = 0; j < NE; ++j)
#pragma GCC unroll 2
    for (int v = 0; v < NVR; ++v) V::store(&t[j][v * L], acc[j][v]);
  store_tile_edge(&t[0][0], 1, NVR * L, mr, nr, c, c_rs, c_cs, accumulate, epilogue);  // t holds columns
}

// The GemmMicrokernel for an MR x (2 vectors) register tile.
template <typename V, int MR>
void microkernel(int64_t kc, int64_t mr, int64_t nr, const typename V::T* a, int64_t a_rs, int64_t a_cs,
                 const typename V::T* b, int64_t b_rs, typename V::T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
                 const GemmEpilogue<typename V::T>* epilogue) {
  constexpr int NR = 2 * V::kLanes;
  constexpr int kNarrow = 32 / sizeof(typename V::T);  // columns in 32 bytes: 8 floats, 4 doubles
  if (a_rs == 1 && a_cs == MR && b_rs == NR) {
    if constexpr (kNarrow / 2 < MR) {
      if (nr <= kNarrow / 2)
        return narrow_tile<V, MR, NR, kNarrow / 2>(kc, mr, nr, a, b, c, c_rs, c_cs, accumulate, epilogue);
    }
    if constexpr (kNarrow < MR) {
      if (nr <= kNarrow) return narrow_tile<V, MR, NR, kNarrow>(kc, mr, nr, a, b, c, c_rs, c_cs, accumulate, epilogue);
    }
    return tile_cols<V, MR, NR, true>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
  }
  tile_cols<V, MR, NR, false>(kc, mr, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
}

// The GemmPackTransposed for W-run slivers (a column-major B's NR columns, a row-major A's MR
// rows), by AVX register transposes of 8 runs x 8 k (then 4 x 8) floats or 4 x 4 doubles instead
// of one strided element at a time. For A it matters most: the MR rows of a 1024-column A are
// 4 KiB apart, all in one L1 set, and packed element by element its slivers took a noticeable
// share of a large mm; the transposes pack them several times faster.
template <int W>
void pack_transposed_f32(const float* src, int64_t stride, int64_t kc, float* dst) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    int j0 = 0;
    for (; j0 + 8 <= W; j0 += 8) {
      __m256 r[8];
      for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(src + (j0 + c) * stride + k);
      // 8 x 8 transpose: r[j][k] -> t[k][j].
      const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 a4 = _mm256_unpacklo_ps(r[4], r[5]), a5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 a6 = _mm256_unpacklo_ps(r[6], r[7]), a7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
      const __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
      const __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
      const __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
      float* d = dst + k * W + j0;
      _mm256_storeu_ps(d + 0 * W, _mm256_permute2f128_ps(b0, b4, 0x20));
      _mm256_storeu_ps(d + 1 * W, _mm256_permute2f128_ps(b1, b5, 0x20));
      _mm256_storeu_ps(d + 2 * W, _mm256_permute2f128_ps(b2, b6, 0x20));
      _mm256_storeu_ps(d + 3 * W, _mm256_permute2f128_ps(b3, b7, 0x20));
      _mm256_storeu_ps(d + 4 * W, _mm256_permute2f128_ps(b0, b4, 0x31));
      _mm256_storeu_ps(d + 5 * W, _mm256_permute2f128_ps(b1, b5, 0x31));
      _mm256_storeu_ps(d + 6 * W, _mm256_permute2f128_ps(b2, b6, 0x31));
      _mm256_storeu_ps(d + 7 * W, _mm256_permute2f128_ps(b3, b7, 0x31));
    }
    for (; j0 + 4 <= W; j0 += 4) {
      __m256 r[4];
      for (int c = 0; c < 4; ++c) r[c] = _mm256_loadu_ps(src + (j0 + c) * stride + k);
      // 4 x 8 transpose: each 128-bit half of t[i] holds the 4 runs at one k.
      const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 a2 = _mm256_unpacklo_ps(r[2], r[3]), a3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t[4] = {_mm256_shuffle_ps(a0, a2, 0x44), _mm256_shuffle_ps(a0, a2, 0xEE),
                           _mm256_shuffle_ps(a1, a3, 0x44), _mm256_shuffle_ps(a1, a3, 0xEE)};
      float* d = dst + k * W + j0;
      for (int i = 0; i < 4; ++i) {
        _mm_storeu_ps(d + i * W, _mm256_castps256_ps128(t[i]));
        _mm_storeu_ps(d + (i + 4) * W, _mm256_extractf128_ps(t[i], 1));
      }
    }
    for (; j0 < W; ++j0)  // fewer than 4 runs left (W = 6: AVX2's 6-row tile)
      for (int i = 0; i < 8; ++i) dst[(k + i) * W + j0] = src[j0 * stride + k + i];
  }
  for (; k < kc; ++k)
    for (int j = 0; j < W; ++j) dst[k * W + j] = src[j * stride + k];
}

template <int W>
void pack_transposed_f64(const double* src, int64_t stride, int64_t kc, double* dst) {
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    int j0 = 0;
    for (; j0 + 4 <= W; j0 += 4) {
      const __m256d r0 = _mm256_loadu_pd(src + (j0 + 0) * stride + k);
      const __m256d r1 = _mm256_loadu_pd(src + (j0 + 1) * stride + k);
      const __m256d r2 = _mm256_loadu_pd(src + (j0 + 2) * stride + k);
      const __m256d r3 = _mm256_loadu_pd(src + (j0 + 3) * stride + k);
      // 4 x 4 transpose: r[j][k] -> t[k][j].
      const __m256d a0 = _mm256_unpacklo_pd(r0, r1), a1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d a2 = _mm256_unpacklo_pd(r2, r3), a3 = _mm256_unpackhi_pd(r2, r3);
      double* d = dst + k * W + j0;
      _mm256_storeu_pd(d + 0 * W, _mm256_permute2f128_pd(a0, a2, 0x20));
      _mm256_storeu_pd(d + 1 * W, _mm256_permute2f128_pd(a1, a3, 0x20));
      _mm256_storeu_pd(d + 2 * W, _mm256_permute2f128_pd(a0, a2, 0x31));
      _mm256_storeu_pd(d + 3 * W, _mm256_permute2f128_pd(a1, a3, 0x31));
    }
    for (; j0 < W; ++j0)  // fewer than 4 runs left (W = 6)
      for (int i = 0; i < 4; ++i) dst[(k + i) * W + j0] = src[j0 * stride + k + i];
  }
  for (; k < kc; ++k)
    for (int j = 0; j < W; ++j) dst[k * W + j] = src[j * stride + k];
}

// ---- dot-product tiles (the GemmDotKernel) ---------------------------------------------------

// C[0:mr, 0:nr] (+)= the dot products of DM rows of A and 4 columns of B, both runs contiguous in
// k: DM x 4 vector accumulators take one vector of k from each run per step (DM + 4 loads for
// 4 * DM FMAs), and each is summed across its lanes at the end. Rows and columns past mr and nr
// repeat the last real one, so every load stays inside the operands; their sums are dropped.
template <typename V, int DM>
__attribute__((always_inline)) inline void dot_tile(int64_t k, int64_t mr, int64_t nr, const typename V::T* a,
                                                    int64_t a_rs, const typename V::T* b, int64_t b_cs,
                                                    typename V::T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
                                                    const GemmEpilogue<typename V::T>* epilogue) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int L = V::kLanes, DN = 4;
  const T* ar[DM];
  const T* bc[DN];
#pragma GCC unroll 8
  for (int r = 0; r < DM; ++r) ar[r] = a + std::min<int64_t>(r, mr - 1) * a_rs;
#pragma GCC unroll 4
  for (int j = 0; j < DN; ++j) bc[j] = b + std::min<int64_t>(j, nr - 1) * b_cs;
  reg acc[DM][DN];
  zero_tile<V>(acc);
  auto step = [&](auto load) {
    reg av[DM];
#pragma GCC unroll 8
    for (int r = 0; r < DM; ++r) av[r] = load(ar[r]);
#pragma GCC unroll 4
    for (int j = 0; j < DN; ++j) {
      const reg bv = load(bc[j]);
#pragma GCC unroll 8
      for (int r = 0; r < DM; ++r) acc[r][j] = V::fmadd(av[r], bv, acc[r][j]);
    }
  };
  int64_t p = 0;
  for (; p + L <= k; p += L) step([p](const T* run) { return V::load(run + p); });
  if (p < k) step([p, k](const T* run) { return V::load_first(run + p, k - p); });
  T sums[DM][DN];
#pragma GCC unroll 8
  for (int r = 0; r < DM; ++r) V::sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3], sums[r]);
  store_tile_edge(&sums[0][0], DN, 1, mr, nr, c, c_rs, c_cs, accumulate, epilogue);
}

// The GemmDotKernel. K is taken in blocks of at most 4 KiB of each run, so that a tile's DM rows
// of A stay in L1 (the first block stores into C, the others add to it), and B in chunks of
// columns whose block fits in L2 (256 KiB); over each chunk, DM rows of A at a time meet every
// column. Without the blocks, long rows (large K) ran slower than packing for the register
// tiles; without the chunks, many columns of B (large N) ran slower too.
template <typename V, int DM>
void dot_kernel(int64_t m, int64_t n, int64_t k, const typename V::T* a, int64_t a_rs, const typename V::T* b,
                int64_t b_cs, typename V::T* c, int64_t c_rs, int64_t c_cs,
                const GemmEpilogue<typename V::T>* epilogue) {
  using T = typename V::T;
  constexpr int64_t L = V::kLanes, kBlockMax = 4096 / sizeof(T), kChunkBytes = 256 * 1024;
  const int64_t blocks = (k + kBlockMax - 1) / kBlockMax;
  const int64_t block = std::min(kBlockMax, ((k + blocks - 1) / blocks + L - 1) / L * L);  // even blocks
  const int64_t chunk = std::max<int64_t>(4, kChunkBytes / (block * static_cast<int64_t>(sizeof(T))) / 4 * 4);
  for (int64_t p0 = 0; p0 < k; p0 += block) {
    const int64_t kb = std::min(block, k - p0);
    for (int64_t j0 = 0; j0 < n; j0 += chunk) {
      const int64_t j1 = std::min(n, j0 + chunk);
      for (int64_t i = 0; i < m; i += DM)
        for (int64_t j = j0; j < j1; j += 4) {
          // The epilogue, offset to this tile, on the last block of K only.
          GemmEpilogue<T> tile_epilogue;
          const GemmEpilogue<T>* e = nullptr;
          if (epilogue != nullptr && p0 + kb == k) {
            tile_epilogue = {epilogue->row_bias ? epilogue->row_bias + i : nullptr,
                             epilogue->col_bias ? epilogue->col_bias + j : nullptr, epilogue->relu};
            e = &tile_epilogue;
          }
          dot_tile<V, DM>(kb, std::min<int64_t>(DM, m - i), std::min<int64_t>(4, j1 - j), a + i * a_rs + p0, a_rs,
                          b + j * b_cs + p0, b_cs, c + i * c_rs + j * c_cs, c_rs, c_cs, p0 > 0, e);
        }
    }
  }
}

// The GemmKernelInfo of the MR x (2 vectors of V) register tile, with cache blocks mc, kc, nc, and
// of DM x 4 dot-product tiles.
template <typename V, int MR, int DM>
constexpr GemmKernelInfo<typename V::T> kernel_info(int64_t mc, int64_t kc, int64_t nc) {
  constexpr int NR = 2 * V::kLanes;
  GemmKernelInfo<typename V::T> info{MR, NR, mc, kc, nc, &microkernel<V, MR>, nullptr, nullptr, &dot_kernel<V, DM>};
  if constexpr (std::is_same_v<typename V::T, float>) {
    info.pack_b_col_major = &pack_transposed_f32<NR>;
    info.pack_a_row_major = &pack_transposed_f32<MR>;
  } else {
    info.pack_b_col_major = &pack_transposed_f64<NR>;
    info.pack_a_row_major = &pack_transposed_f64<MR>;
  }
  return info;
}

}  // namespace
}  // namespace simd_tile
}  // namespace cpu
}  // namespace pykernels
