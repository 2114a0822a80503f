// CPU GEMM for float16, bfloat16 and the integer dtypes: C = A @ B per batch, any strides. The
// driver (cpu/gemm_driver.cpp) sends every dtype other than float32 and float64 here.
//
// The products are summed in a wider type: float for float16 and bfloat16 (at::opmath_type),
// int64 for integers. Operands are widened while they are packed, and each
// block of C is summed over all of K in an accumulator tile of that type, then rounded (or
// narrowed) into C once at the end, so the result never goes through the narrow type midway.
//
// Tiling: blocks of C of at most MC x NC = 96 x 512, spread over threads (fewer rows per block
// when there are too few blocks to keep every thread busy); K is walked in KC = 256 steps, each
// step packing an MC x KC block of A as 4-row slivers and a KC x NC panel of B as NR-column
// slivers, then running a register tile of 4 rows x 32 bytes of accumulators over them.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "cpu/gemm_paths.h"
#include "kernels.h"

namespace pykernels {
namespace cpu {
namespace {

template <typename T>
using acc_type_t = std::conditional_t<std::is_integral_v<T>, int64_t, at::opmath_type<T>>;

// Register tile of the widening path: MR x NR accumulators of acc_t.
template <typename acc_t>
struct Tile {
  static constexpr int64_t MR = 4;
  static constexpr int64_t NR = 32 / sizeof(acc_t) > 4 ? 32 / sizeof(acc_t) : 4;
};

constexpr int64_t kWideKC = 256;
constexpr int64_t kWideMC = 96;
constexpr int64_t kWideNC = 512;

// Packs rows [0, mc) x columns [0, kc) of A as consecutive MR-row slivers, each stored k-major
// (MR values per k), zero-padded to a multiple of MR rows, widening to acc_t.
template <typename T, typename acc_t>
void pack_a_wide(const T* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, acc_t* dst) {
  constexpr int64_t MR = Tile<acc_t>::MR;
  for (int64_t i = 0; i < mc; i += MR) {
    const int64_t rows = std::min(MR, mc - i);
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t r = 0; r < rows; ++r) dst[r] = static_cast<acc_t>(a[(i + r) * rs + k * cs]);
      for (int64_t r = rows; r < MR; ++r) dst[r] = acc_t(0);
      dst += MR;
    }
  }
}

// Packs B's [0, kc) x [0, nc) block as NR-column slivers, each k-major, widening to acc_t.
template <typename T, typename acc_t>
void pack_b_wide(const T* b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, acc_t* dst) {
  constexpr int64_t NR = Tile<acc_t>::NR;
  for (int64_t j = 0; j < nc; j += NR) {
    const int64_t cols = std::min(NR, nc - j);
    for (int64_t k = 0; k < kc; ++k) {
      const T* row = b + k * rs + j * cs;
      for (int64_t c = 0; c < cols; ++c) dst[c] = static_cast<acc_t>(row[c * cs]);
      for (int64_t c = cols; c < NR; ++c) dst[c] = acc_t(0);
      dst += NR;
    }
  }
}

// acc (MR x NR, row stride ldc) += a_sliver (kc x MR) * b_sliver (kc x NR).
template <typename acc_t>
inline void microkernel_wide(int64_t kc, const acc_t* __restrict__ a, const acc_t* __restrict__ b,
                             acc_t* __restrict__ c, int64_t ldc) {
  constexpr int64_t MR = Tile<acc_t>::MR, NR = Tile<acc_t>::NR;
  acc_t t[MR][NR];
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t j = 0; j < NR; ++j) t[r][j] = c[r * ldc + j];
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t r = 0; r < MR; ++r) {
      const acc_t ar = a[k * MR + r];
      for (int64_t j = 0; j < NR; ++j) t[r][j] += ar * b[k * NR + j];
    }
  }
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t j = 0; j < NR; ++j) c[r * ldc + j] = t[r][j];
}

template <typename T>
void gemm_wide_typed(const GemmProblem& p) {
  using acc_t = acc_type_t<T>;
  constexpr int64_t MR = Tile<acc_t>::MR, NR = Tile<acc_t>::NR;
  const int64_t m = p.m, n = p.n, k = p.k;
  const int64_t nbatch = p.batch.numel;

  // Shrink the M tile when there are too few tiles to keep every thread busy.
  const int64_t threads = at::get_num_threads();
  int64_t mc = std::min(kWideMC, (m + MR - 1) / MR * MR);
  const int64_t tiles_n = (n + kWideNC - 1) / kWideNC;
  while (mc > MR && nbatch * ((m + mc - 1) / mc) * tiles_n < threads) mc = std::max(MR, (mc / 2 + MR - 1) / MR * MR);
  const int64_t tiles_m = (m + mc - 1) / mc;
  const int64_t tiles = nbatch * tiles_m * tiles_n;
  const int64_t work_per_tile = std::max<int64_t>(1, mc * std::min(kWideNC, n) * k);
  const int64_t grain = std::max<int64_t>(1, kParallelWork / 4 / work_per_tile);

  at::parallel_for(0, tiles, grain, [&](int64_t begin, int64_t end) {
    const int64_t ldc = (std::min(kWideNC, n) + NR - 1) / NR * NR;
    std::vector<acc_t> a_pack(mc * kWideKC), b_pack(kWideKC * ldc), c_acc(mc * ldc);
    int64_t off[3];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b_idx = t / (tiles_m * tiles_n);
      const int64_t i0 = (t / tiles_n) % tiles_m * mc;
      const int64_t j0 = t % tiles_n * kWideNC;
      const int64_t mcur = std::min(mc, m - i0), ncur = std::min(kWideNC, n - j0);
      offsets_at(p.batch, b_idx, off);
      T* c = static_cast<T*>(p.batch.data[0]) + off[0];
      const T* a = static_cast<const T*>(p.batch.data[1]) + off[1];
      const T* b = static_cast<const T*>(p.batch.data[2]) + off[2];

      std::fill(c_acc.begin(), c_acc.end(), acc_t(0));
      for (int64_t k0 = 0; k0 < k; k0 += kWideKC) {
        const int64_t kc = std::min(kWideKC, k - k0);
        pack_a_wide(a + i0 * p.a_rs + k0 * p.a_cs, p.a_rs, p.a_cs, mcur, kc, a_pack.data());
        pack_b_wide(b + k0 * p.b_rs + j0 * p.b_cs, p.b_rs, p.b_cs, kc, ncur, b_pack.data());
        for (int64_t i = 0; i < mcur; i += MR)
          for (int64_t j = 0; j < ncur; j += NR)
            microkernel_wide(kc, a_pack.data() + i * kc, b_pack.data() + j * kc, c_acc.data() + i * ldc + j, ldc);
      }
      for (int64_t i = 0; i < mcur; ++i) {
        T* crow = c + (i0 + i) * p.c_rs + j0 * p.c_cs;
        const acc_t* src = c_acc.data() + i * ldc;
        for (int64_t j = 0; j < ncur; ++j) crow[j * p.c_cs] = static_cast<T>(src[j]);
      }
    }
  });
}

}  // namespace

void gemm_wide(const GemmProblem& p) {
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "pykernels_gemm",
                             [&] { gemm_wide_typed<scalar_t>(p); });
}

}  // namespace cpu
}  // namespace pykernels
