// CPU GEMM for mm, bmm and matmul: C = A @ B per batch, any strides, any dtype torch's CPU mm
// takes (floating and integer). This file is the entry point, gemm_kernel_cpu, and the driver of
// the float32 / float64 path; float16, bfloat16 and integers take the widening path of
// cpu/gemm_wide.cpp.
//
// float32 and float64 run the Goto/BLIS loop nest of cpu/gemm_blocked.h, accumulating in place
// in C, over a register-tile microkernel picked once at run time (with_float_kernel,
// cpu/gemm_paths.h): AVX-512, AVX2+FMA or portable. PYKERNELS_NO_AVX512=1 in the environment
// forces the AVX2 kernels, PYKERNELS_NO_AVX2=1 the portable one (cpu/cpu_features.h). The SIMD kernels also have
// dot-product tiles, for products like nn.Linear's x @ w.t() (rows of A and columns of B contiguous in k) with few
// rows, which need no packing at all (plan_for, cpu/gemm_blocked.h).
//
// Partitioning among threads: a batch of at least as many matrices as threads is split by
// matrix; otherwise each matrix is cut into a grid of blocks of C, one per thread, along the
// dimension that duplicates the least packing (whole NR-column slivers; whole register tiles or
// 4-row units of rows). Each block is an independent sequential GEMM, so threads never share a
// buffer or write the same memory.
#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>

#include "cpu/gemm_blocked.h"
#include "cpu/gemm_paths.h"
#include "cpu/gemm_ukernel.h"
#include "kernels.h"

namespace pykernels {
namespace {

using cpu::GemmArgs;
using cpu::GemmPlan;
using cpu::kParallelWork;

// ---- partitioning among threads ------------------------------------------------------------------

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
  const GemmPlan plan = cpu::plan_for(info, g);
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

// ---- the driver ----------------------------------------------------------------------------------

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
      cpu::gemm_blocked<T, MR, NR>(kernel, g, cpu::plan_for(kernel, g));
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
      cpu::gemm_blocked<T, MR, NR>(kernel, g, cpu::plan_for(kernel, g));
    }
  });
}

template <typename T>
void gemm_float(const GemmProblem& p) {
  cpu::with_float_kernel<T>(
      [&]<int MR, int NR>(const cpu::GemmKernelInfo<T>& kernel) { gemm_blocked_batch<T, MR, NR>(p, kernel); });
}

}  // namespace

void gemm_kernel_cpu(const GemmProblem& p) {
  switch (p.dtype) {
    case at::kFloat:
      return gemm_float<float>(p);
    case at::kDouble:
      return gemm_float<double>(p);
    default:
      return cpu::gemm_wide(p);
  }
}

}  // namespace pykernels
