// The Goto/BLIS loop nest for one matrix product C = A @ B on one thread, over a microkernel
// that keeps an MR x NR block of C in registers (cpu/gemm_ukernel.h). Plain C++ (no torch
// headers): cpu/gemm_driver.cpp adds batching, threading and dtype dispatch around it.
//
//   for jc in N by NC:                       B panel: KC x NC, packed once per (jc, pc) and
//     for pc in K by KC:                     shared by every MC block of A (lives in L2/L3)
//       pack B[pc:pc+KC, jc:jc+NC]            as NR-column slivers, k-major, zero-padded
//       for ic in M by MC:                   A block: MC x KC, packed as MR-row slivers (L2)
//         pack A[ic:ic+MC, pc:pc+KC]
//         for jr in NC by NR:                B sliver (KC x NR) stays in L1 across ir
//           for ir in MC by MR:
//             microkernel: C[ir, jr] (+)= A sliver @ B sliver   (first pc writes, later add)
//
// Packing reads any strides, which is where transposed operands are absorbed. It is skipped
// where it does not pay (GemmPlan): A is read in place by the microkernel (it only broadcasts
// single elements of A, any strides work), and B is read in place when its rows are
// contiguous, except for a partial last sliver, which is copied into a padded buffer so the
// microkernel can always load NR columns. A plan may also hand the whole product to the kernel's
// dot-product path (GemmDotKernel), which reads both operands in place.
//
// For the fused linear layers (cpu/linear.cpp, cpu/mlp.cpp), C may be stored through an epilogue
// (a bias, a ReLU: GemmEpilogue), which the kernels apply as they store the last KC block, and A
// may come packed already, its slivers over all of K, by a pass that did more than pack it (the
// ReLU mask and the bias gradient of a linear layer's backward).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/gemm_ukernel.h"

namespace pykernels {
namespace cpu {

template <typename T>
struct GemmArgs {
  int64_t m, n, k;
  const T* a;
  int64_t a_rs, a_cs;
  const T* b;
  int64_t b_rs, b_cs;
  T* c;
  int64_t c_rs, c_cs;
  // Applied to C as it is stored: row_bias and col_bias address C's rows and columns 0.. (none by default).
  GemmEpilogue<T> epilogue{nullptr, nullptr, false};

  bool has_epilogue() const { return epilogue.row_bias != nullptr || epilogue.col_bias != nullptr || epilogue.relu; }
  // The epilogue of the block of C from row i, column j.
  GemmEpilogue<T> epilogue_at(int64_t i, int64_t j) const {
    return {epilogue.row_bias ? epilogue.row_bias + i : nullptr, epilogue.col_bias ? epilogue.col_bias + j : nullptr,
            epilogue.relu};
  }
};

struct GemmPlan {
  int64_t mc, kc, nc;  // cache blocks (mc a multiple of MR, nc of NR)
  bool pack_a, pack_b;
  bool dot;  // run the kernel's GemmDotKernel instead of this loop nest
  // A is packed already: MR-row slivers over all of K, each k-major (MR values per k), the last
  // one zero-padded, one after another from a (a_rs and a_cs unused): pack_a_block's layout for kc = K.
  bool a_prepacked = false;
};

// The dot-product kernel's range (plan_for): at most this many rows per block, and at least this
// many products per dot.
constexpr int64_t kDotMaxRows = 64;
constexpr int64_t kDotMinK = 16;

// The plan of one block, what to pack: packing pays for itself when a packed element is reused
// often enough.
template <typename T>
GemmPlan plan_for(const GemmKernelInfo<T>& info, const GemmArgs<T>& g) {
  GemmPlan plan{info.mc, info.kc, info.nc, true, true, false};
  // A with contiguous rows times B with contiguous columns (x @ w.t()), few rows: dot products of
  // the runs in place. Packing B would cost each block a pass over all of it, a large share of
  // the time of a product as small as nn.Linear's; with more rows that pass is shared by more of
  // them and the register-tile kernel wins.
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

// A 64-byte aligned scratch buffer that only grows; one per thread and role.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }
  template <typename T>
  T* get(int64_t count) {
    const size_t bytes = static_cast<size_t>(count) * sizeof(T);
    if (bytes > size_) {
      std::free(data_);
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      data_ = std::aligned_alloc(64, rounded);
      if (data_ == nullptr) {
        size_ = 0;
        throw std::bad_alloc();
      }
      size_ = rounded;
    }
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

struct GemmScratch {
  ScratchBuffer a, b;
};

// This thread's packing buffers.
inline GemmScratch& thread_scratch() {
  static thread_local GemmScratch scratch;
  return scratch;
}

// Rows [0, mc) x columns [0, kc) of A as MR-row slivers, each k-major (MR values per k); a partial
// last sliver is zero-padded.
template <typename T, int MR>
void pack_a_block(const T* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, T* dst,
                  GemmPackTransposed<T> pack_row_major = nullptr) {
  for (int64_t i = 0; i < mc; i += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - i);
    const T* src = a + i * rs;
    if (rows == MR && rs == 1) {  // column-major A: MR contiguous values per k
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[k * cs + r];
    } else if (rows == MR && cs == 1 && pack_row_major != nullptr) {
      pack_row_major(src, rs, kc, dst);
    } else if (rows == MR) {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * rs + k * cs];
    } else {  // partial sliver: zeroed whole first, see pack_b_panel
      std::memset(dst, 0, static_cast<size_t>(kc) * MR * sizeof(T));
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t r = 0; r < rows; ++r) dst[k * MR + r] = src[r * rs + k * cs];
    }
    dst += kc * MR;
  }
}

// Rows [0, kc) x columns [0, nc) of B as NR-column slivers, each k-major (NR values per k); a
// partial last sliver is zero-padded.
template <typename T, int NR>
void pack_b_panel(const T* b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, T* dst,
                  GemmPackTransposed<T> pack_col_major = nullptr) {
  for (int64_t j = 0; j < nc; j += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - j);
    const T* src = b + j * cs;
    if (cols == NR && cs == 1) {  // row-major B: NR contiguous values per k
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * NR, src + k * rs, NR * sizeof(T));
    } else if (cols == NR && rs == 1 && pack_col_major != nullptr) {
      pack_col_major(src, cs, kc, dst);
    } else if (cols == NR && rs == 1) {  // column-major B: walk each column contiguously
      for (int c = 0; c < NR; ++c)
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[c * cs + k];
    } else {
      // A partial sliver (or any strides): the padding is zeroed in one fill for the whole
      // sliver. Filled per k, it compiled to a short `rep stos` per k, whose start-up cost made
      // this pack a visible share of the time of a GEMM with a few edge columns.
      if (cols < NR) std::memset(dst, 0, static_cast<size_t>(kc) * NR * sizeof(T));
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t c = 0; c < cols; ++c) dst[k * NR + c] = src[k * rs + c * cs];
    }
    dst += kc * NR;
  }
}

// C = A @ B for one (sub)matrix, on the calling thread.
template <typename T, int MR, int NR>
void gemm_blocked(const GemmKernelInfo<T>& info, const GemmArgs<T>& g, const GemmPlan& plan) {
  const GemmMicrokernel<T> kernel = info.kernel;
  const int64_t m = g.m, k = g.k;
  if (m <= 0 || g.n <= 0) return;
  const GemmEpilogue<T> whole = g.epilogue_at(0, 0);
  const GemmEpilogue<T>* whole_epilogue = g.has_epilogue() ? &whole : nullptr;
  if (k <= 0) {  // an empty sum: C is the epilogue of zero
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < g.n; ++j)
        g.c[i * g.c_rs + j * g.c_cs] = whole_epilogue ? apply_epilogue(whole, i, j, T(0)) : T(0);
    return;
  }
  if (plan.dot) return info.dot(m, g.n, k, g.a, g.a_rs, g.b, g.b_cs, g.c, g.c_rs, g.c_cs, whole_epilogue);
  GemmScratch& scratch = thread_scratch();
  // A last sliver of at most 32 bytes per row gets a register tile one 256-bit vector wide, which
  // still broadcasts an element of A per row and k, as a whole tile does, for a fraction of its
  // FMAs, so a few columns past a multiple of NR cost far more than their share. Where A's rows are
  // contiguous in k, those columns are dot products instead, over all of K at once: copied out as
  // runs contiguous in k, then the dot-product kernel, whose tiles do a full vector of FMAs per
  // vector loaded. Wider slivers keep the tile: their copy, which every thread working on those
  // columns makes, costs more than it saves.
  int64_t n = g.n;
  const int64_t edge = n % NR;
  if (info.dot != nullptr && !plan.a_prepacked && g.a_cs == 1 && edge > 0 &&
      edge * static_cast<int64_t>(sizeof(T)) <= 32) {
    n -= edge;
    T* runs = scratch.b.get<T>(edge * k);
    const T* b_edge = g.b + n * g.b_cs;
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < edge; ++j) runs[j * k + p] = b_edge[p * g.b_rs + j * g.b_cs];
    const GemmEpilogue<T> edge_epilogue = g.epilogue_at(0, n);
    info.dot(m, edge, k, g.a, g.a_rs, runs, k, g.c + n * g.c_cs, g.c_rs, g.c_cs,
             whole_epilogue ? &edge_epilogue : nullptr);
    if (n == 0) return;
  }
  const bool pack_b = plan.pack_b || g.b_cs != 1;
  const bool pack_a = plan.pack_a && !plan.a_prepacked;
  const int64_t kc_max = std::min(plan.kc, k);
  const int64_t mc_max = std::min(plan.mc, (m + MR - 1) / MR * MR);
  const int64_t nc_max = std::min(plan.nc, (n + NR - 1) / NR * NR);
  T* a_buf = pack_a ? scratch.a.get<T>(mc_max * kc_max) : nullptr;
  // Packed B: the whole KC x NC panel. In place: room for one padded edge sliver.
  T* b_buf = scratch.b.get<T>(pack_b ? nc_max * kc_max : kc_max * NR);

  for (int64_t jc = 0; jc < n; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n - jc);
    const int64_t n_full = nc / NR * NR;  // columns covered by whole slivers
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      const bool accumulate = pc > 0;
      const bool last = pc + kc == k;  // the block stored through the epilogue
      const T* b_panel = g.b + pc * g.b_rs + jc * g.b_cs;
      if (pack_b) {
        pack_b_panel<T, NR>(b_panel, g.b_rs, g.b_cs, kc, nc, b_buf, info.pack_b_col_major);
      } else if (n_full < nc) {
        pack_b_panel<T, NR>(b_panel + n_full, g.b_rs, 1, kc, nc - n_full, b_buf);
      }
      for (int64_t ic = 0; ic < m; ic += mc_max) {
        const int64_t mc = std::min(mc_max, m - ic);
        const T* a_block = plan.a_prepacked ? nullptr : g.a + ic * g.a_rs + pc * g.a_cs;
        if (pack_a) pack_a_block<T, MR>(a_block, g.a_rs, g.a_cs, mc, kc, a_buf, info.pack_a_row_major);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const T* b_sliver;
          int64_t b_rs;
          if (pack_b) {
            b_sliver = b_buf + jr * kc;
            b_rs = NR;
          } else if (jr < n_full) {
            b_sliver = b_panel + jr;
            b_rs = g.b_rs;
          } else {
            b_sliver = b_buf;
            b_rs = NR;
          }
          T* c_col = g.c + ic * g.c_rs + (jc + jr) * g.c_cs;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ir);
            const GemmEpilogue<T> tile_epilogue = g.epilogue_at(ic + ir, jc + jr);
            const GemmEpilogue<T>* epilogue = last && whole_epilogue ? &tile_epilogue : nullptr;
            if (plan.a_prepacked) {
              kernel(kc, mr, nr, g.a + (ic + ir) * k + pc * MR, 1, MR, b_sliver, b_rs, c_col + ir * g.c_rs, g.c_rs,
                     g.c_cs, accumulate, epilogue);
            } else if (pack_a) {
              kernel(kc, mr, nr, a_buf + ir * kc, 1, MR, b_sliver, b_rs, c_col + ir * g.c_rs, g.c_rs, g.c_cs,
                     accumulate, epilogue);
            } else {
              kernel(kc, mr, nr, a_block + ir * g.a_rs, g.a_rs, g.a_cs, b_sliver, b_rs, c_col + ir * g.c_rs, g.c_rs,
                     g.c_cs, accumulate, epilogue);
            }
          }
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace pykernels
