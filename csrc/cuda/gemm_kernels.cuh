// The CUDA GEMM kernels C = A @ B and their launchers, shared by the matrix products (gemm.cu)
// and the fused linear layer (linear.cu), which adds work to the same tiles through a fusion
// policy instead of copying the kernels.
//
// Every kernel walks output tiles in a grid-stride loop over (batch, tile_m, tile_n), with
// tiles grouped 8 tile-rows at a time so blocks running together share A and B panels in L2.
// Operands are read through their row/column strides, so transposed or sliced operands need no
// copy: the kernel picks, per operand, which dimension its loads run along (the contiguous one
// when there is one) and uses 16-byte loads when the alignment allows it, scalar loads otherwise.
// Out-of-range rows, columns and k are zero-filled in shared memory, so edge tiles run the same
// inner loop; every global store is bounds-checked.
//
//   float32          SIMT: 128x128x8 block tile, 256 threads each holding an 8x8 register tile
//                    (64x64 tiles with 4x4 per thread when the 128 tiles would not fill the GPU);
//                    float4 global loads, shared memory double-buffered through registers.
//   float16/bfloat16 tensor cores, mma.sync m16n8k16 with float32 accumulation (sm_80+):
//                    128x128x32 block tile, 8 warps of 64x32, 3-stage cp.async pipeline,
//                    fragments loaded with ldmatrix (.trans for m- or n-contiguous operands).
//                    GPUs older than sm_80 fall back to the SIMT kernel (float accumulation).
//   float64          the SIMT kernel with 64x64x8 tiles, 4x4 per thread (double accumulation).
//
// The fusion policy F (a kernel parameter; NoFusion for the plain product) switches on, at
// compile time:
//   F::kEpilogue  C[i, j] = f.epilogue<T>(acc, j) at the store, in the accumulator's precision
//                 (a bias and an activation), only for in-range outputs;
//   F::kMaskA     where f.a_mask is not null: A read as 0 where a_mask (laid out exactly as A)
//                 is <= 0: the gradient through a ReLU from its output, applied as the tiles are
//                 loaded (a NaN output passes the gradient, as torch's threshold_backward does).
//                 Masked A goes through registers: cp.async cannot modify what it copies;
//   F::kSumA      where f.a_row_sums is not null: a_row_sums[i] = sum over k of (masked) A[i, k],
//                 summed from the shared tiles by the blocks of tile column 0, which see every k
//                 of their rows: the bias gradient of a linear layer, with no second pass over A
//                 and no atomics. Rows are indexed within one matrix: for unbatched problems.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/gemm_tiles.cuh"
#include "cuda/ptx.cuh"
#include "kernels.h"

namespace pykernels {
namespace cuda {

// Everything a GEMM kernel needs, passed as one __grid_constant__ parameter (no per-thread copy).
struct GemmArgs {
  StridedIter<3> batch;  // batch walk of (C, A, B)
  int64_t m, n, k;
  int64_t c_rs, c_cs, a_rs, a_cs, b_rs, b_cs;
  int64_t tiles_m, tiles_n, tiles;  // tiles per batch along m and n; total over all batches
  bool a_kmajor, b_kmajor;          // loads run along k (else along m for A, n for B)
  bool a_vec, b_vec, c_vec;         // 16-byte loads (A, B) / wide stores (C) are aligned
};

// The plain product.
struct NoFusion {
  static constexpr bool kEpilogue = false, kMaskA = false, kSumA = false;
};

// float value of a float16/bfloat16 bit pattern.
template <typename T>
__device__ __forceinline__ float bits_to_float(uint16_t bits) {
  return static_cast<float>(T(bits, T::from_bits()));
}

// ================================================================================================
// SIMT kernel (float32, float64; float16/bfloat16 before sm_80)

template <typename T>
__device__ __forceinline__ void load4_global(T (&v)[4], const T* p, int64_t stride, int64_t count, bool vec) {
  if constexpr (std::is_same_v<T, float>) {
    if (vec && count >= 4) {  // the host checked 16-byte alignment and stride == 1
      const float4 x = *reinterpret_cast<const float4*>(p);
      v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) v[j] = j < count ? p[j * stride] : T(0);
}

// F::kMaskA: zeroes the elements of v whose mask values (read as v was) are <= 0.
template <typename T, typename acc_t>
__device__ __forceinline__ void mask4_global(T (&v)[4], const T* mask, int64_t stride, int64_t count, bool vec) {
  T mk[4];
  load4_global(mk, mask, stride, count, vec);
#pragma unroll
  for (int j = 0; j < 4; ++j)
    if (static_cast<acc_t>(mk[j]) <= acc_t(0)) v[j] = T(0);
}

template <typename T>
__device__ __forceinline__ void store4_shared(T* dst, const T (&v)[4]) {
  if constexpr (std::is_same_v<T, float>) {
    *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) dst[j] = v[j];
  }
}

template <typename T, typename acc_t>
__device__ __forceinline__ void load4_shared(acc_t (&v)[4], const T* src) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 x = *reinterpret_cast<const float4*>(src);
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  } else if constexpr (std::is_same_v<T, double>) {
    const double2 x = reinterpret_cast<const double2*>(src)[0], y = reinterpret_cast<const double2*>(src)[1];
    v[0] = x.x, v[1] = x.y, v[2] = y.x, v[3] = y.y;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = static_cast<acc_t>(src[j]);
  }
}

// Block tile BM x BN, k-step BK; 256 threads in a (BM/TM) x (BN/TN) grid, each computing TM x TN
// outputs. A thread's rows are TM/4 groups of 4 consecutive rows spaced BM/(TM/4) apart (same for
// columns): its shared-memory reads are then 16-byte vectors and a warp's reads hit distinct
// banks or broadcast. Shared tiles are stored k-major (As[k][m], Bs[k][n]) and padded by 4
// elements so the transposing stores of k-contiguous loads do not conflict.
template <typename T, typename acc_t, int BM, int BN, int BK, int TM, int TN, typename F>
__global__ void __launch_bounds__(256, 2)
    gemm_simt_kernel(const __grid_constant__ GemmArgs g, const __grid_constant__ F f) {
  constexpr int kThreadsN = BN / TN;
  static_assert((BM / TM) * (BN / TN) == 256, "256 threads");
  static_assert(TM % 4 == 0 && TN % 4 == 0 && BK % 4 == 0, "4-element groups");
  static_assert(BM <= 256, "one thread per row for the row sums");
  constexpr int PAD = 4;
  constexpr int A_CHUNKS = BM * BK / 4, B_CHUNKS = BK * BN / 4;  // 4-element loads per tile
  constexpr int A_PER = (A_CHUNKS + 255) / 256, B_PER = (B_CHUNKS + 255) / 256;
  constexpr int RSPAN = BM / (TM / 4), CSPAN = BN / (TN / 4);
  __shared__ __align__(16) T As[2][BK][BM + PAD];
  __shared__ __align__(16) T Bs[2][BK][BN + PAD];

  const int tid = threadIdx.x;
  const int tx = tid % kThreadsN, ty = tid / kThreadsN;

  for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
    int64_t batch, tm, tn;
    tile_coords(g.tiles_m, g.tiles_n, t, batch, tm, tn);
    int64_t off[3];
    iter_offsets(g.batch, batch, off);
    T* C = static_cast<T*>(g.batch.data[0]) + off[0];
    const T* A = static_cast<const T*>(g.batch.data[1]) + off[1];
    const T* B = static_cast<const T*>(g.batch.data[2]) + off[2];
    const int64_t m0 = tm * BM, n0 = tn * BN;

    T ra[A_PER][4], rb[B_PER][4];  // the next k-tile, staged in registers
    auto load_tiles = [&](int64_t k0) {
#pragma unroll
      for (int i = 0; i < A_PER; ++i) {
        const int c = tid + i * 256;
        if (A_CHUNKS % 256 != 0 && c >= A_CHUNKS) break;
        int64_t gm, gk, count, stride;
        if (g.a_kmajor) {  // 4 consecutive k of one row
          gm = m0 + c / (BK / 4), gk = k0 + (c % (BK / 4)) * 4;
          count = gm < g.m ? g.k - gk : 0, stride = g.a_cs;
        } else {  // 4 consecutive m of one k
          gk = k0 + c / (BM / 4), gm = m0 + (c % (BM / 4)) * 4;
          count = gk < g.k ? g.m - gm : 0, stride = g.a_rs;
        }
        const int64_t a_off = gm * g.a_rs + gk * g.a_cs;
        load4_global(ra[i], A + a_off, stride, count, g.a_vec);
        if constexpr (F::kMaskA) {
          if (f.a_mask != nullptr) {
            mask4_global<T, acc_t>(ra[i], static_cast<const T*>(f.a_mask) + off[1] + a_off, stride, count, g.a_vec);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < B_PER; ++i) {
        const int c = tid + i * 256;
        if (B_CHUNKS % 256 != 0 && c >= B_CHUNKS) break;
        int64_t gk, gn, count, stride;
        if (g.b_kmajor) {  // 4 consecutive k of one column
          gn = n0 + c / (BK / 4), gk = k0 + (c % (BK / 4)) * 4;
          count = gn < g.n ? g.k - gk : 0, stride = g.b_rs;
        } else {  // 4 consecutive n of one k
          gk = k0 + c / (BN / 4), gn = n0 + (c % (BN / 4)) * 4;
          count = gk < g.k ? g.n - gn : 0, stride = g.b_cs;
        }
        load4_global(rb[i], B + gk * g.b_rs + gn * g.b_cs, stride, count, g.b_vec);
      }
    };
    auto store_tiles = [&](int buf) {
#pragma unroll
      for (int i = 0; i < A_PER; ++i) {
        const int c = tid + i * 256;
        if (A_CHUNKS % 256 != 0 && c >= A_CHUNKS) break;
        if (g.a_kmajor) {
          const int row = c / (BK / 4), kq = (c % (BK / 4)) * 4;
#pragma unroll
          for (int j = 0; j < 4; ++j) As[buf][kq + j][row] = ra[i][j];
        } else {
          store4_shared(&As[buf][c / (BM / 4)][(c % (BM / 4)) * 4], ra[i]);
        }
      }
#pragma unroll
      for (int i = 0; i < B_PER; ++i) {
        const int c = tid + i * 256;
        if (B_CHUNKS % 256 != 0 && c >= B_CHUNKS) break;
        if (g.b_kmajor) {
          const int col = c / (BK / 4), kq = (c % (BK / 4)) * 4;
#pragma unroll
          for (int j = 0; j < 4; ++j) Bs[buf][kq + j][col] = rb[i][j];
        } else {
          store4_shared(&Bs[buf][c / (BN / 4)][(c % (BN / 4)) * 4], rb[i]);
        }
      }
    };

    acc_t acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = acc_t(0);
    acc_t row_sum = acc_t(0);  // F::kSumA: thread `tid` sums row m0 + tid
    bool sums_rows = false;
    if constexpr (F::kSumA) sums_rows = f.a_row_sums != nullptr && tn == 0 && tid < BM;

    const int64_t ktiles = (g.k + BK - 1) / BK;
    if (ktiles > 0) {
      load_tiles(0);
      store_tiles(0);
    }
    __syncthreads();
    for (int64_t kt = 0; kt < ktiles; ++kt) {
      const int buf = static_cast<int>(kt & 1);
      if (kt + 1 < ktiles) load_tiles((kt + 1) * BK);  // global loads in flight during the math
      if (sums_rows) {
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) row_sum += static_cast<acc_t>(As[buf][kk][tid]);
      }
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        acc_t a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM / 4; ++i) {
          acc_t v[4];
          load4_shared<T, acc_t>(v, &As[buf][kk][i * RSPAN + ty * 4]);
#pragma unroll
          for (int j = 0; j < 4; ++j) a[i * 4 + j] = v[j];
        }
#pragma unroll
        for (int i = 0; i < TN / 4; ++i) {
          acc_t v[4];
          load4_shared<T, acc_t>(v, &Bs[buf][kk][i * CSPAN + tx * 4]);
#pragma unroll
          for (int j = 0; j < 4; ++j) b[i * 4 + j] = v[j];
        }
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
      }
      // The other buffer was last read in iteration kt - 1, which every thread has finished.
      if (kt + 1 < ktiles) store_tiles(buf ^ 1);
      __syncthreads();
    }
    if constexpr (F::kSumA) {
      if (sums_rows && m0 + tid < g.m) static_cast<T*>(f.a_row_sums)[m0 + tid] = static_cast<T>(row_sum);
    }

    auto result = [&](acc_t v, int64_t col) {  // called for in-range outputs only
      if constexpr (F::kEpilogue) v = f.template epilogue<T>(v, col);
      return v;
    };
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int64_t row = m0 + (i / 4) * RSPAN + ty * 4 + i % 4;
      if (row >= g.m) continue;
#pragma unroll
      for (int jg = 0; jg < TN / 4; ++jg) {
        const int64_t col = n0 + jg * CSPAN + tx * 4;
        T* cp = C + row * g.c_rs + col * g.c_cs;
        if constexpr (std::is_same_v<T, float>) {
          if (g.c_vec && col + 3 < g.n) {
            *reinterpret_cast<float4*>(cp) =
                make_float4(result(acc[i][jg * 4], col), result(acc[i][jg * 4 + 1], col + 1),
                            result(acc[i][jg * 4 + 2], col + 2), result(acc[i][jg * 4 + 3], col + 3));
            continue;
          }
        }
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < g.n) cp[j * g.c_cs] = static_cast<T>(result(acc[i][jg * 4 + j], col + j));
      }
    }
  }
}

// ================================================================================================
// Tensor-core kernel (float16/bfloat16, sm_80+)

struct MmaTile {
  static constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3;
  static constexpr int PAD = 8;  // 16 bytes: rows stay 16-byte aligned and ldmatrix is conflict-free
  template <bool KMAJOR, int MN>
  struct Operand {  // one operand's shared tile: ROWS x COLS, COLS contiguous
    enum : int {
      ROWS = KMAJOR ? MN : BK,
      COLS = KMAJOR ? BK : MN,
      LD = COLS + PAD,
      ELEMS = ROWS * LD,
      CHUNKS = ROWS * COLS / 8,  // 16-byte chunks per stage
    };
  };
  template <bool A_K, bool B_K>
  static constexpr int smem_bytes() {
    return STAGES * (int{Operand<A_K, BM>::ELEMS} + int{Operand<B_K, BN>::ELEMS}) * 2;
  }
};

// Eight 16-bit elements at p, p + stride, ... (zero past `count`) as four words, low half first;
// one 16-byte load when `vec` (aligned, unit stride) and the chunk is whole.
__device__ __forceinline__ void load_chunk(uint32_t (&w)[4], const uint16_t* p, int64_t stride, int64_t count,
                                           bool vec) {
  if (vec && count >= 8) {
    const uint4 x = *reinterpret_cast<const uint4*>(p);
    w[0] = x.x, w[1] = x.y, w[2] = x.z, w[3] = x.w;
    return;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t lo = 2 * j < count ? p[2 * j * stride] : 0;
    const uint32_t hi = 2 * j + 1 < count ? p[(2 * j + 1) * stride] : 0;
    w[j] = lo | (hi << 16);
  }
}

// Copies 8 consecutive elements (along the tile's contiguous dimension, element stride `stride`
// in global memory) into 16 bytes of shared memory. Whole, aligned, unit-stride chunks go
// through cp.async; edge chunks (count < 8, zero-filled) and strided operands through registers.
__device__ __forceinline__ void copy_chunk(uint16_t* dst, const uint16_t* src, int64_t stride, int64_t count,
                                           bool vec) {
  if (vec && count >= 8) {
    cp_async16(dst, src);
    return;
  }
  uint32_t w[4];
  load_chunk(w, src, stride, count, false);
  *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
}

// copy_chunk for F::kMaskA, through registers: elements whose mask value is <= 0 become 0.
template <typename T>
__device__ __forceinline__ void copy_chunk_masked(uint16_t* dst, const uint16_t* src, const uint16_t* mask,
                                                  int64_t stride, int64_t count, bool vec) {
  uint32_t w[4], mw[4];
  load_chunk(w, src, stride, count, vec);
  load_chunk(mw, mask, stride, count, vec);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (bits_to_float<T>(static_cast<uint16_t>(mw[j])) <= 0.f) w[j] &= 0xffff0000u;
    if (bits_to_float<T>(static_cast<uint16_t>(mw[j] >> 16)) <= 0.f) w[j] &= 0x0000ffffu;
  }
  *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
}

// A_K: A's tile is stored As[m][k] (k contiguous, for row-major A), else As[k][m] (for
// column-major A). B_K: Bs[n][k] (for column-major B), else Bs[k][n] (row-major B).
template <typename T, bool A_K, bool B_K, typename F>
__global__ void __launch_bounds__(256, 2)
    gemm_mma_kernel(const __grid_constant__ GemmArgs g, const __grid_constant__ F f) {
#if PYKERNELS_SM80
  constexpr int BM = MmaTile::BM, BN = MmaTile::BN, BK = MmaTile::BK, STAGES = MmaTile::STAGES;
  using OpA = MmaTile::Operand<A_K, BM>;
  using OpB = MmaTile::Operand<B_K, BN>;
  static_assert(OpA::CHUNKS == 512 && OpB::CHUNKS == 512, "two chunks per thread and operand");
  uint16_t* const As = reinterpret_cast<uint16_t*>(dynamic_smem());
  uint16_t* const Bs = As + STAGES * int{OpA::ELEMS};

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm0 = (warp / 4) * 64, wn0 = (warp % 4) * 32;  // this warp's 64 x 32 piece of the tile
  const int mat = lane / 8, mrow = lane % 8;               // ldmatrix: which matrix, which row

  for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
    int64_t batch, tm, tn;
    tile_coords(g.tiles_m, g.tiles_n, t, batch, tm, tn);
    int64_t off[3];
    iter_offsets(g.batch, batch, off);
    T* C = static_cast<T*>(g.batch.data[0]) + off[0];
    const uint16_t* A = static_cast<const uint16_t*>(g.batch.data[1]) + off[1];
    const uint16_t* B = static_cast<const uint16_t*>(g.batch.data[2]) + off[2];
    const int64_t m0 = tm * BM, n0 = tn * BN;

    auto load_stage = [&](int stage, int64_t k0) {
      uint16_t* as = As + stage * OpA::ELEMS;
      uint16_t* bs = Bs + stage * OpB::ELEMS;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int c = tid + i * 256;
        const int row = c / (OpA::COLS / 8), col = (c % (OpA::COLS / 8)) * 8;
        int64_t gm, gk, count, stride;
        if constexpr (A_K) {
          gm = m0 + row, gk = k0 + col, count = gm < g.m ? g.k - gk : 0, stride = g.a_cs;
        } else {
          gk = k0 + row, gm = m0 + col, count = gk < g.k ? g.m - gm : 0, stride = g.a_rs;
        }
        const int64_t a_off = gm * g.a_rs + gk * g.a_cs;
        uint16_t* const dst = as + row * OpA::LD + col;
        if constexpr (F::kMaskA) {
          if (f.a_mask != nullptr) {
            const uint16_t* mask = static_cast<const uint16_t*>(f.a_mask) + off[1] + a_off;
            copy_chunk_masked<T>(dst, A + a_off, mask, stride, count, g.a_vec);
            continue;
          }
        }
        copy_chunk(dst, A + a_off, stride, count, g.a_vec);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int c = tid + i * 256;
        const int row = c / (OpB::COLS / 8), col = (c % (OpB::COLS / 8)) * 8;
        int64_t gk, gn, count, stride;
        if constexpr (B_K) {
          gn = n0 + row, gk = k0 + col, count = gn < g.n ? g.k - gk : 0, stride = g.b_rs;
        } else {
          gk = k0 + row, gn = n0 + col, count = gk < g.k ? g.n - gn : 0, stride = g.b_cs;
        }
        copy_chunk(bs + row * OpB::LD + col, B + gk * g.b_rs + gn * g.b_cs, stride, count, g.b_vec);
      }
    };

    float acc[4][4][4];  // [m16 tile][n8 tile][fragment]
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
    float row_sum = 0.f;  // F::kSumA: thread `tid` sums row m0 + tid
    bool sums_rows = false;
    if constexpr (F::kSumA) sums_rows = f.a_row_sums != nullptr && tn == 0 && tid < BM;

    const int64_t ktiles = (g.k + BK - 1) / BK;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < ktiles) load_stage(s, s * BK);
      cp_async_commit();  // possibly empty: keeps the group count in step with the k-tiles
    }
    for (int64_t kt = 0; kt < ktiles; ++kt) {
      cp_async_wait<STAGES - 2>();  // k-tile kt has landed (this thread's copies)
      __syncthreads();              // ... everyone's, and k-tile kt - 1 is no longer being read
      const int64_t next = kt + STAGES - 1;
      if (next < ktiles) load_stage(static_cast<int>(next % STAGES), next * BK);
      cp_async_commit();

      const int stage = static_cast<int>(kt % STAGES);
      const uint16_t* as = As + stage * OpA::ELEMS;
      const uint16_t* bs = Bs + stage * OpB::ELEMS;
      if (sums_rows) {
#pragma unroll
        for (int kk = 0; kk < BK; ++kk)
          row_sum += bits_to_float<T>(A_K ? as[tid * OpA::LD + kk] : as[kk * OpA::LD + tid]);
      }
#pragma unroll
      for (int ks = 0; ks < BK; ks += 16) {
        uint32_t af[4][4], bf[4][2];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
          // matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
          if constexpr (A_K) {
            ldmatrix_x4(af[mt], as + (wm0 + mt * 16 + (mat % 2) * 8 + mrow) * OpA::LD + ks + (mat / 2) * 8);
          } else {
            ldmatrix_x4_trans(af[mt], as + (ks + (mat / 2) * 8 + mrow) * OpA::LD + wm0 + mt * 16 + (mat % 2) * 8);
          }
        }
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
          uint32_t r[4];
          if constexpr (B_K) {
            ldmatrix_x4(r, bs + (wn0 + np * 16 + (mat / 2) * 8 + mrow) * OpB::LD + ks + (mat % 2) * 8);
          } else {
            ldmatrix_x4_trans(r, bs + (ks + (mat % 2) * 8 + mrow) * OpB::LD + wn0 + np * 16 + (mat / 2) * 8);
          }
          bf[2 * np][0] = r[0], bf[2 * np][1] = r[1], bf[2 * np + 1][0] = r[2], bf[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) mma16816<T>(acc[mt][nt], af[mt], bf[nt]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // the next tile's prologue overwrites the stages
    if constexpr (F::kSumA) {
      if (sums_rows && m0 + tid < g.m) static_cast<T*>(f.a_row_sums)[m0 + tid] = static_cast<T>(row_sum);
    }

    auto result = [&](float v, int64_t col) {  // called for in-range outputs only
      if constexpr (F::kEpilogue) v = f.template epilogue<T>(v, col);
      return static_cast<T>(v);
    };
    // Accumulator fragment: rows lane/4 and lane/4 + 8, columns 2*(lane%4) and +1.
    const int frow = lane / 4, fcol = (lane % 4) * 2;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + wm0 + mt * 16 + frow + h * 8;
        if (row >= g.m) continue;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const int64_t col = n0 + wn0 + nt * 8 + fcol;
          const float a0 = acc[mt][nt][2 * h], a1 = acc[mt][nt][2 * h + 1];
          T* cp = C + row * g.c_rs + col * g.c_cs;
          if (g.c_vec && col + 1 < g.n) {  // two adjacent outputs, 4-byte aligned (checked on the host)
            const T v0 = result(a0, col), v1 = result(a1, col + 1);
            *reinterpret_cast<uint32_t*>(cp) = static_cast<uint32_t>(v0.x) | (static_cast<uint32_t>(v1.x) << 16);
          } else {
            if (col < g.n) cp[0] = result(a0, col);
            if (col + 1 < g.n) cp[g.c_cs] = result(a1, col + 1);
          }
        }
      }
    }
  }
#else
  __trap();  // never launched: the host checks the compute capability
#endif
}

// ================================================================================================
// Host side

// Whether every matrix of operand `op` (0 C, 1 A, 2 B) starts on a `bytes` boundary and its
// rows/columns along `other` (the non-unit stride, over `other_size` indices) stay on it.
inline bool aligned(const GemmProblem& p, int op, int64_t other, int64_t other_size, int64_t elem_size, int64_t bytes) {
  const int64_t elems = bytes / elem_size;
  if (reinterpret_cast<uintptr_t>(p.batch.data[op]) % bytes != 0) return false;
  if (other_size > 1 && other % elems != 0) return false;
  for (int d = 0; d < p.batch.ndim; ++d)
    if (p.batch.sizes[d] > 1 && p.batch.strides[op][d] % elems != 0) return false;
  return true;
}

// Fills the layout choices for operands with `vec_bytes`-wide loads (0: never vectorize); A's
// vector loads also need F::kMaskA's mask, read at the same offsets, to be aligned.
template <typename F>
GemmArgs make_args(const GemmProblem& p, const F& f, int64_t bm, int64_t bn, int64_t elem_size, int64_t vec_bytes) {
  GemmArgs g;
  g.batch = p.batch;
  g.m = p.m, g.n = p.n, g.k = p.k;
  g.c_rs = p.c_rs, g.c_cs = p.c_cs, g.a_rs = p.a_rs, g.a_cs = p.a_cs, g.b_rs = p.b_rs, g.b_cs = p.b_cs;
  g.tiles_m = (p.m + bm - 1) / bm;
  g.tiles_n = (p.n + bn - 1) / bn;
  g.tiles = p.batch.numel * g.tiles_m * g.tiles_n;
  // Loads run along the operand's unit-stride dimension; A defaults to k, B to n.
  const bool a_m_unit = p.a_rs == 1 && p.m > 1, a_k_unit = p.a_cs == 1 && p.k > 1;
  const bool b_n_unit = p.b_cs == 1 && p.n > 1, b_k_unit = p.b_rs == 1 && p.k > 1;
  g.a_kmajor = a_k_unit || !a_m_unit;
  g.b_kmajor = b_k_unit && !b_n_unit;
  const bool vec = vec_bytes > 0;
  bool a_vec = vec;
  if constexpr (F::kMaskA) {
    if (vec && f.a_mask != nullptr) a_vec = reinterpret_cast<uintptr_t>(f.a_mask) % vec_bytes == 0;
  }
  g.a_vec = a_vec && (g.a_kmajor ? p.a_cs == 1 && aligned(p, 1, p.a_rs, p.m, elem_size, vec_bytes)
                                 : p.a_rs == 1 && aligned(p, 1, p.a_cs, p.k, elem_size, vec_bytes));
  g.b_vec = vec && (g.b_kmajor ? p.b_rs == 1 && aligned(p, 2, p.b_cs, p.n, elem_size, vec_bytes)
                               : p.b_cs == 1 && aligned(p, 2, p.b_rs, p.k, elem_size, vec_bytes));
  g.c_vec = false;
  return g;
}

// Which kernel a launch used, for gemm_last_kernel_cuda() (gemm.cu).
struct GemmLaunch {
  const char* kernel = nullptr;
  int bm = 0, bn = 0;
  bool a_kmajor = false, b_kmajor = false, a_vec = false, b_vec = false;
};

inline GemmLaunch launch_record(const char* kernel, int bm, int bn, const GemmArgs& g) {
  return GemmLaunch{kernel, bm, bn, g.a_kmajor, g.b_kmajor, g.a_vec, g.b_vec};
}

inline unsigned int tile_grid(int64_t tiles) { return static_cast<unsigned int>(std::min<int64_t>(tiles, 0x7fffffff)); }

template <typename T, typename acc_t, int BM, int BN, int TM, int TN, typename F>
GemmLaunch launch_simt(const GemmProblem& p, const F& f, bool vectorize) {
  GemmArgs g = make_args(p, f, BM, BN, sizeof(T), vectorize ? 16 : 0);
  g.c_vec = vectorize && p.c_cs == 1 && aligned(p, 0, p.c_rs, p.m, sizeof(T), 16);
  launch(gemm_simt_kernel<T, acc_t, BM, BN, 8, TM, TN, F>, tile_grid(g.tiles), 256, 0, g, f);
  return launch_record("simt", BM, BN, g);
}

template <typename T, bool A_K, bool B_K, typename F>
void launch_mma(const GemmArgs& g, const F& f) {
  launch(gemm_mma_kernel<T, A_K, B_K, F>, tile_grid(g.tiles), 256, MmaTile::smem_bytes<A_K, B_K>(), g, f);
}

template <typename T, typename F>
GemmLaunch launch_gemm_half(const GemmProblem& p, const F& f) {
  if (compute_capability_major() < 8) {  // no mma.sync m16n8k16 / cp.async
    return launch_simt<T, float, 128, 128, 8, 8>(p, f, false);
  }
  GemmArgs g = make_args(p, f, MmaTile::BM, MmaTile::BN, sizeof(T), 16);
  g.c_vec = p.c_cs == 1 && aligned(p, 0, p.c_rs, p.m, sizeof(T), 4);
  if (g.a_kmajor) {
    g.b_kmajor ? launch_mma<T, true, true>(g, f) : launch_mma<T, true, false>(g, f);
  } else {
    g.b_kmajor ? launch_mma<T, false, true>(g, f) : launch_mma<T, false, false>(g, f);
  }
  return launch_record("mma.sync", MmaTile::BM, MmaTile::BN, g);
}

// C = A @ B with fusion f on the SIMT or tensor-core kernel for p's dtype (float32, float64,
// float16 or bfloat16; the caller rejects the others), for a problem with a non-empty C.
template <typename F>
GemmLaunch launch_gemm(const GemmProblem& p, const F& f) {
  switch (p.dtype) {
    case at::kFloat: {
      // 128 x 128 tiles unless they would leave most SMs idle.
      const int64_t big_tiles = p.batch.numel * ((p.m + 127) / 128) * ((p.n + 127) / 128);
      if (big_tiles >= sm_count()) return launch_simt<float, float, 128, 128, 8, 8>(p, f, true);
      return launch_simt<float, float, 64, 64, 4, 4>(p, f, true);
    }
    case at::kDouble:
      return launch_simt<double, double, 64, 64, 4, 4>(p, f, false);
    case at::kHalf:
      return launch_gemm_half<c10::Half>(p, f);
    default:
      TORCH_INTERNAL_ASSERT(p.dtype == at::kBFloat16, "pykernels: no GEMM kernel for ", p.dtype);
      return launch_gemm_half<c10::BFloat16>(p, f);
  }
}

}  // namespace cuda
}  // namespace pykernels
