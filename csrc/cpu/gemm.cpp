// CPU GEMM for mm, bmm and matmul: C = A @ B per batch, any strides, any dtype torch's CPU mm
// takes (floating and integer).
//
// float32 and float64 run the Goto/BLIS loop nest of cpu/gemm_blocked.h, accumulating in place
// in C, over a register-tile microkernel picked once at run time:
//   * x86-64 with AVX-512F: the intrinsics kernels of cpu/gemm_avx512.cpp (12 x 32 floats,
//     12 x 16 doubles), compiled for that target alone;
//   * x86-64 with AVX2+FMA: those of cpu/gemm_avx2.cpp (6 x 16 floats, 6 x 8 doubles);
//   * anything else (older x86-64, aarch64, ...): the portable kernel below, plain C++ that the
//     compiler vectorizes for the baseline target.
// PYKERNELS_NO_AVX512=1 in the environment forces the AVX2 kernels, PYKERNELS_NO_AVX2=1 the
// portable one (cpu/cpu_features.h). The SIMD kernels also have dot-product tiles, for products
// like nn.Linear's x @ w.t() (rows of A and columns of B contiguous in k) with few rows, which
// need no packing at all (make_plan).
//
// Threads: a batch of at least as many matrices as threads is split by matrix; otherwise each
// matrix is cut into a grid of blocks of C, one per thread, along the dimension that duplicates
// the least packing (whole NR-column slivers; whole register tiles or 4-row units of rows).
// Each block is an independent sequential GEMM, so threads never share a buffer or write the
// same memory.
//
// float16, bfloat16 and integers widen (float, int64 accumulators) in a separate tiled path
// that keeps the sums in an accumulator tile and rounds once at the end.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/gemm_blocked.h"
#include "cpu/gemm_ukernel.h"
#include "kernels.h"

namespace pykernels {
namespace {

using cpu::GemmArgs;
using cpu::GemmPlan;
using cpu::store_tile_edge;

// ---- the portable microkernel ------------------------------------------------------------------

// Same contract as the AVX2 kernels (cpu/gemm_ukernel.h), written with GCC/Clang vector
// extensions (16-byte vectors: SSE2 on x86-64, NEON on aarch64) so the tile is explicitly kept
// in vector registers: 4 rows x 2 vectors (4 x 8 floats, 4 x 4 doubles), 8 accumulators.
// Edge tiles are template instances by row count; packed operands get compile-time strides.
template <typename T>
struct GenericVec {
  static constexpr int kLanes = 16 / sizeof(T);
  typedef T type __attribute__((vector_size(16)));
};

template <typename T, int M, int MR, int NR, bool kPacked>
__attribute__((noinline)) void generic_tile(int64_t kc, int64_t nr, const T* __restrict__ a, int64_t a_rs, int64_t a_cs,
                                            const T* __restrict__ b, int64_t b_rs, T* __restrict__ c, int64_t c_rs,
                                            int64_t c_cs, bool accumulate) {
  using V = typename GenericVec<T>::type;
  constexpr int W = GenericVec<T>::kLanes, NV = NR / W;
  static_assert(NR % W == 0, "NR must be a whole number of vectors");
  if constexpr (kPacked) {
    a_rs = 1;
    a_cs = MR;
    b_rs = NR;
  }
  V acc[M][NV];
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + v * W, sizeof(V));
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r) {
      const V av = V{} + a[r * a_rs];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
    a += a_cs;
    b += b_rs;
  }
  if (nr == NR && c_cs == 1) {
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* cv = c + r * c_rs + v * W;
        V x = acc[r][v];
        if (accumulate) {
          V old;
          std::memcpy(&old, cv, sizeof(V));
          x = old + x;
        }
        std::memcpy(cv, &x, sizeof(V));
      }
    }
  } else {
    T t[M][NR];
    std::memcpy(t, acc, sizeof(t));
    store_tile_edge(&t[0][0], NR, 1, M, nr, c, c_rs, c_cs, accumulate);
  }
}

template <typename T, int MR, int NR>
void generic_microkernel(int64_t kc, int64_t mr, int64_t nr, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                         int64_t b_rs, T* c, int64_t c_rs, int64_t c_cs, bool accumulate) {
  static_assert(MR == 4, "the row dispatch below covers 1..4 rows");
  if (mr == MR && a_rs == 1 && a_cs == MR && b_rs == NR)
    return generic_tile<T, MR, MR, NR, true>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
  switch (mr) {
    case 4:
      return generic_tile<T, 4, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
    case 3:
      return generic_tile<T, 3, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
    case 2:
      return generic_tile<T, 2, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
    default:
      return generic_tile<T, 1, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate);
  }
}

// ---- blocking and threading --------------------------------------------------------------------

// Below this many multiply-adds a product runs on the calling thread: waking threads costs more.
constexpr int64_t kParallelWork = int64_t(1) << 20;

// The dot-product kernel's range (make_plan): at most this many rows per block, and at least this
// many products per dot.
constexpr int64_t kDotMaxRows = 64;
constexpr int64_t kDotMinK = 16;

// Packing pays for itself when a packed element is reused often enough (see gemm_blocked.h).
template <int MR, int NR, typename T>
GemmPlan make_plan(const cpu::GemmKernelInfo<T>& info, const GemmArgs<T>& g) {
  GemmPlan plan{info.mc, info.kc, info.nc, true, true, false};
  // A with contiguous rows times B with contiguous columns (x @ w.t()), few rows: dot products of
  // the runs in place. Packing B would cost each block a pass over all of it (nn.Linear's
  // 64 x 1000 @ (100 x 1000).t(): ~17% of its time); with more rows that pass is shared by more
  // of them and the register-tile kernel wins.
  plan.dot = info.dot != nullptr && g.a_cs == 1 && g.b_rs == 1 && g.m <= kDotMaxRows && g.k >= kDotMinK;
  if (plan.dot) return plan;
  // A: read in place when its rows are contiguous and few columns of C reuse each element;
  // otherwise (including column-major A, whose elements the kernel would gather a cache line
  // apart) packed.
  plan.pack_a = !(g.a_cs == 1 && g.n <= 256);
  // B: read in place (rows contiguous) when only a few MR-row slivers of A reuse it, unless
  // its row stride is a multiple of 1 KiB, which maps a sliver's rows onto a few L1 sets.
  const int64_t ldb_bytes = g.b_rs * static_cast<int64_t>(sizeof(T));
  plan.pack_b = !(g.b_cs == 1 && g.m <= 64 && ldb_bytes % 1024 != 0);
  return plan;
}

// How many blocks to cut each matrix into so that batch * blocks spreads evenly over `threads`.
int64_t blocks_per_matrix(int64_t nbatch, int64_t threads) {
  if (nbatch >= 4 * threads) return 1;  // many matrices: the imbalance is at most 1 in 4
  return threads / std::gcd(nbatch, threads);
}

// Start of part `i` of `parts` when `units` tiles of `unit` elements (the last one partial, the
// total being `size`) are split as evenly as possible.
inline int64_t part_start(int64_t i, int64_t parts, int64_t units, int64_t unit, int64_t size) {
  return std::min(size, units * i / parts * unit);
}

// Estimated time of one block of C, in cycles of one core: the microkernel calls (a tile of r
// rows and v vectors issues r * v FMAs per k, two per cycle, but never beats the 4-cycle FMA
// latency of its r * v independent chains) plus packing (about a quarter of a cycle per
// element: nn.Linear's 64 x 1000 @ (100 x 1000).t() runs faster cut by rows, each thread packing
// all of B, than by columns into 64 + 36).
template <int MR, int NR, typename T>
double block_cycles(const cpu::GemmKernelInfo<T>& info, const GemmArgs<T>& g) {
  constexpr int64_t L = NR / 2;  // lanes per vector: two vectors per tile row
  auto tile = [](int64_t rows, int64_t cols) {
    return std::max(static_cast<double>(rows * ((cols + L - 1) / L)) / 2, 4.0);
  };
  const int64_t full_m = g.m / MR, rest_m = g.m % MR, full_n = g.n / NR, rest_n = g.n % NR;
  double per_k = static_cast<double>(full_m * full_n) * tile(MR, NR);
  if (rest_n) per_k += static_cast<double>(full_m) * tile(MR, rest_n);
  if (rest_m) per_k += static_cast<double>(full_n) * tile(rest_m, NR) + (rest_n ? tile(rest_m, rest_n) : 0.0);
  const GemmPlan plan = make_plan<MR, NR>(info, g);
  const double packed = plan.dot ? 0 : (plan.pack_a ? g.m : 0) + (plan.pack_b || g.b_cs != 1 ? g.n : 0);
  return static_cast<double>(g.k) * (per_k + 0.25 * packed);
}

// How a matrix is cut among threads: tm x tn blocks of C, each a whole number of `row_unit` rows
// and of NR-column slivers.
struct GemmGrid {
  int64_t tm = 1, tn = 1, row_unit;
};

// Cuts an m x n product into tm x tn blocks (tm * tn == parts), minimizing the estimated time of
// the slowest block: balanced tiles, and no more packing duplicated across blocks (every block
// packs its own rows of A and columns of B) than needed. Rows are cut at whole register tiles or,
// where that balances better (64 rows in two is 36 + 28 in 12-row tiles), at 4 rows: a 4- or
// 8-row edge tile costs its share of FMAs, no more.
template <int MR, int NR, typename T>
GemmGrid choose_grid(const cpu::GemmKernelInfo<T>& info, const GemmArgs<T>& g, int64_t parts) {
  // 4-row units only where they differ from whole tiles and split them evenly (12-row AVX-512 tiles).
  constexpr int64_t kRowUnits[] = {MR, 4};
  constexpr int kCandidates = MR > 4 && MR % 4 == 0 ? 2 : 1;
  const int64_t units_n = (g.n + NR - 1) / NR;
  GemmGrid best{1, 1, MR};
  double best_cycles = -1;
  for (int c = 0; c < kCandidates; ++c) {
    const int64_t row_unit = kRowUnits[c];
    const int64_t units_m = (g.m + row_unit - 1) / row_unit;
    for (int64_t cn = 1; cn <= parts; ++cn) {
      if (parts % cn != 0) continue;
      const int64_t cm = parts / cn;
      if (cm > units_m || cn > units_n) continue;
      double slowest = 0;
      for (int64_t i = 0; i < cm; ++i) {
        for (int64_t j = 0; j < cn; ++j) {
          GemmArgs<T> b = g;
          b.m = part_start(i + 1, cm, units_m, row_unit, g.m) - part_start(i, cm, units_m, row_unit, g.m);
          b.n = part_start(j + 1, cn, units_n, NR, g.n) - part_start(j, cn, units_n, NR, g.n);
          slowest = std::max(slowest, block_cycles<MR, NR>(info, b));
        }
      }
      if (best_cycles < 0 || slowest < best_cycles) {
        best_cycles = slowest;
        best = GemmGrid{cm, cn, row_unit};
      }
    }
  }
  if (best_cycles < 0) {  // too small to cut `parts` ways: cut along the longer dimension only
    const int64_t units_m = (g.m + MR - 1) / MR;
    if (units_n >= units_m) {
      best.tn = std::min(parts, units_n);
    } else {
      best.tm = std::min(parts, units_m);
    }
  }
  return best;
}

template <typename T, int MR, int NR>
void gemm_blocked_batch(const GemmProblem& p, const cpu::GemmKernelInfo<T>& kernel) {
  // The compile-time tile must be the kernel's, and the cache blocks whole tiles (the packing
  // buffers are sized for mc x kc and kc x nc).
  TORCH_INTERNAL_ASSERT(kernel.mr == MR && kernel.nr == NR && kernel.mc % MR == 0 && kernel.nc % NR == 0);
  const int64_t m = p.m, n = p.n, k = p.k;
  const int64_t nbatch = p.batch.numel;
  auto matrix = [&](int64_t b_idx) {
    int64_t off[3];
    offsets_at(p.batch, b_idx, off);
    return GemmArgs<T>{m,
                       n,
                       k,
                       static_cast<const T*>(p.batch.data[1]) + off[1],
                       p.a_rs,
                       p.a_cs,
                       static_cast<const T*>(p.batch.data[2]) + off[2],
                       p.b_rs,
                       p.b_cs,
                       static_cast<T*>(p.batch.data[0]) + off[0],
                       p.c_rs,
                       p.c_cs};
  };

  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t work = nbatch * m * n * std::max<int64_t>(k, 1);
  if (threads <= 1 || work < kParallelWork) {
    for (int64_t b_idx = 0; b_idx < nbatch; ++b_idx) {
      const GemmArgs<T> g = matrix(b_idx);
      cpu::gemm_blocked<T, MR, NR>(kernel, g, make_plan<MR, NR>(kernel, g));
    }
    return;
  }

  const int64_t parts = blocks_per_matrix(nbatch, threads);
  const GemmGrid grid = parts > 1 ? choose_grid<MR, NR>(kernel, matrix(0), parts) : GemmGrid{1, 1, MR};
  const int64_t tm = grid.tm, tn = grid.tn, row_unit = grid.row_unit;
  const int64_t units_m = (m + row_unit - 1) / row_unit, units_n = (n + NR - 1) / NR;
  const int64_t blocks = tm * tn;
  at::parallel_for(0, nbatch * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      GemmArgs<T> g = matrix(t / blocks);
      const int64_t bm = t % blocks / tn, bn = t % tn;
      const int64_t i0 = part_start(bm, tm, units_m, row_unit, m);
      const int64_t i1 = part_start(bm + 1, tm, units_m, row_unit, m);
      const int64_t j0 = part_start(bn, tn, units_n, NR, n), j1 = part_start(bn + 1, tn, units_n, NR, n);
      if (i0 >= i1 || j0 >= j1) continue;
      g.m = i1 - i0;
      g.n = j1 - j0;
      g.a += i0 * g.a_rs;
      g.b += j0 * g.b_cs;
      g.c += i0 * g.c_rs + j0 * g.c_cs;
      cpu::gemm_blocked<T, MR, NR>(kernel, g, make_plan<MR, NR>(kernel, g));
    }
  });
}

template <typename T>
void gemm_float(const GemmProblem& p) {
#if defined(__x86_64__)
  if (cpu::cpu_has_avx512f()) {
    if constexpr (std::is_same_v<T, float>) {
      return gemm_blocked_batch<float, 12, 32>(p, cpu::avx512_gemm_kernel_f32());
    } else {
      return gemm_blocked_batch<double, 12, 16>(p, cpu::avx512_gemm_kernel_f64());
    }
  }
  if (cpu::cpu_has_avx2_fma()) {
    if constexpr (std::is_same_v<T, float>) {
      return gemm_blocked_batch<float, 6, 16>(p, cpu::avx2_gemm_kernel_f32());
    } else {
      return gemm_blocked_batch<double, 6, 8>(p, cpu::avx2_gemm_kernel_f64());
    }
  }
#endif
  constexpr int NR = 2 * GenericVec<T>::kLanes;  // 8 floats, 4 doubles
  // No transposing packs and no dot-product path: the hooks after the microkernel stay null.
  static const cpu::GemmKernelInfo<T> generic{4, NR, 144, 256, 4096, &generic_microkernel<T, 4, NR>};
  gemm_blocked_batch<T, 4, NR>(p, generic);
}

// ---- widening path: float16, bfloat16, integers -----------------------------------------------

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
void gemm_wide(const GemmProblem& p) {
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

void gemm_kernel_cpu(const GemmProblem& p) {
  switch (p.dtype) {
    case at::kFloat:
      return gemm_float<float>(p);
    case at::kDouble:
      return gemm_float<double>(p);
    default:
      AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "pykernels_gemm", [&] { gemm_wide<scalar_t>(p); });
  }
}

}  // namespace pykernels
