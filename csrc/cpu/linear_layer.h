// The pieces of a linear layer's forward and backward on the CPU, over the blocked GEMM of
// cpu/gemm_blocked.h, that the fused linear kernels (cpu/linear.cpp) and the fused MLP
// (cpu/mlp.cpp) are built of. Each runs on the calling thread; the kernels split the work among
// threads (split_among_threads).
//
//   forward        out = act(x @ w^T + bias): one GEMM whose microkernels add the bias and apply
//                  the ReLU as they store the output (GemmEpilogue), no second pass over it;
//   gradient pack  g = grad_out, masked where the forward's output is <= 0: one pass over it packs
//                  g^T as the weight gradient's A operand, sums the bias gradient and, where the
//                  input gradient needs it, keeps the masked g;
//   weight grad    grad_w = g^T @ x, from the packed g^T;
//   input grad     grad_x = g @ w.
//
// The forward of a few rows is computed the other way round, out^T = w @ x^T, which nn.Linear's
// layout favours: w's rows are the register tile's rows, read in place, and the few rows of x
// are its NR-wide columns, packed once (choose_transposed below).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "cpu/gemm_blocked.h"
#include "cpu/gemm_paths.h"

namespace pykernels {
namespace cpu {

// A matrix operand: element (r, c) at data[r * rs + c * cs].
template <typename T>
struct Strided {
  const T* data;
  int64_t rs, cs;

  Strided rows_from(int64_t r) const { return {data + r * rs, rs, cs}; }
};

// Runs body(begin, end) over [0, size) cut into one range per thread, each a whole number of
// `unit`s (the last unit may be partial): on the calling thread alone when `work` (multiply-adds)
// is too little to be worth waking the others, or inside a parallel region already.
template <typename Body>
void split_among_threads(int64_t size, int64_t unit, int64_t work, const Body& body) {
  if (size <= 0) return;
  const int64_t units = (size + unit - 1) / unit;
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t parts = work < kParallelWork ? 1 : std::min<int64_t>(threads, units);
  if (parts <= 1) return body(0, size);
  auto start = [&](int64_t i) { return std::min(size, units * i / parts * unit); };
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) body(start(i), start(i + 1));
  });
}

// ---- forward ------------------------------------------------------------------------------------

// Whether the forward of an m x k input through an n x k weight runs as out^T = w @ x^T. Each
// way, one operand is packed into NR-wide slivers and the other is read in place, and the tile
// edges waste what the dimensions leave over: out^T packs x (m x k) and tiles n rows by NR-wide
// columns of m; out packs w (n x k) and tiles m rows by columns of n. The transposed store
// (out^T's rows are out's columns) goes element by element, which a long K hides.
template <int MR, int NR>
bool choose_transposed(int64_t m, int64_t n, int64_t k) {
  if (m > 4 * NR || k < 64) return false;
  auto waste = [](int64_t size, int64_t unit) { return (size + unit - 1) / unit * unit; };
  // Work in tile slots (rows rounded to MR, columns to NR) plus the packed elements.
  const int64_t transposed = waste(n, MR) * waste(m, NR) * k + m * k;
  const int64_t direct = waste(m, MR) * waste(n, NR) * k + n * k;
  return transposed <= direct;
}

// out (m x n, row stride out_rs, unit column stride) = act(x @ w^T + bias) for an m x k x and an
// n x k w; bias (n values) may be null.
template <typename T, int MR, int NR>
void linear_forward_block(const GemmKernelInfo<T>& info, int64_t m, int64_t n, int64_t k, Strided<T> x, Strided<T> w,
                          const T* bias, bool relu, T* out, int64_t out_rs) {
  if (m <= 0 || n <= 0) return;
  if (choose_transposed<MR, NR>(m, n, k)) {
    GemmArgs<T> g{n, m, k, w.data, w.rs, w.cs, x.data, x.cs, x.rs, out, 1, out_rs};
    g.epilogue = {bias, nullptr, relu};
    GemmPlan plan = plan_for(info, g);
    // One K block: every block after the first would read its part of out^T back, element by element.
    plan.kc = std::max(plan.kc, k);
    gemm_blocked<T, MR, NR>(info, g, plan);
    return;
  }
  GemmArgs<T> g{m, n, k, x.data, x.rs, x.cs, w.data, w.cs, w.rs, out, out_rs, 1};
  g.epilogue = {nullptr, bias, relu};
  gemm_blocked<T, MR, NR>(info, g, plan_for(info, g));
}

// ---- backward -----------------------------------------------------------------------------------

// The elements of packed g^T (pack_gradient) for an m x n g: n rounded up to whole MR-row slivers.
template <int MR>
int64_t packed_gradient_size(int64_t m, int64_t n) {
  return (n + MR - 1) / MR * MR * m;
}

// One pass over g (m x n, contiguous: grad_out), masked where result (m x n, contiguous; null: no
// mask) is <= 0, as torch's threshold_backward masks it (NaN passes):
//   packed     (null: not wanted) g^T as gemm_blocked's prepacked A: n rows in MR-row slivers, K = m;
//   bias_grad  (null: not wanted) the column sums of g, n values;
//   masked     (null: not wanted) g itself, m x n contiguous (it may be g: masked in place).
// Row by row: each row is masked whole (vector code), added to the sums, and its MR-wide pieces
// copied into the slivers, where they lie side by side (MR consecutive values per k).
template <typename T, int MR>
void pack_gradient(int64_t m, int64_t n, const T* g, const T* result, T* packed, T* bias_grad, T* masked) {
  static thread_local ScratchBuffer row_buffer;
  T* row = masked != nullptr ? nullptr : row_buffer.get<T>(n);
  if (bias_grad != nullptr) std::fill(bias_grad, bias_grad + n, T(0));
  const int64_t slivers = (n + MR - 1) / MR, edge = n - (slivers - 1) * MR;
  for (int64_t b = 0; b < m; ++b) {
    const T* in = g + b * n;
    T* v = masked != nullptr ? masked + b * n : row;
    if (result != nullptr) {
      const T* r = result + b * n;
      for (int64_t f = 0; f < n; ++f) {
        const T x = in[f];  // read whatever the mask says: the loop vectorizes
        v[f] = r[f] <= T(0) ? T(0) : x;
      }
    } else if (v != in) {
      std::copy(in, in + n, v);
    }
    if (bias_grad != nullptr) {
      for (int64_t f = 0; f < n; ++f) bias_grad[f] += v[f];
    }
    if (packed != nullptr) {
      T* dst = packed + b * MR;
      for (int64_t s = 0; s + 1 < slivers; ++s) {
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) dst[s * MR * m + r] = v[s * MR + r];
      }
      T* last = dst + (slivers - 1) * MR * m;
      for (int r = 0; r < MR; ++r) last[r] = r < edge ? v[(slivers - 1) * MR + r] : T(0);
    }
  }
}

// Columns [j0, j1) of grad_w (n x k, row stride ldw) = g^T @ x, for g^T packed by pack_gradient
// and an m x k x.
template <typename T, int MR, int NR>
void weight_gradient_block(const GemmKernelInfo<T>& info, int64_t m, int64_t n, const T* packed, Strided<T> x,
                           int64_t j0, int64_t j1, T* grad_w, int64_t ldw) {
  if (j0 >= j1 || n <= 0) return;
  GemmArgs<T> g{n, j1 - j0, m, packed, 1, MR, x.data + j0 * x.cs, x.rs, x.cs, grad_w + j0, ldw, 1};
  GemmPlan plan = plan_for(info, g);
  plan.dot = false;
  plan.a_prepacked = true;
  gemm_blocked<T, MR, NR>(info, g, plan);
}

// Columns [j0, j1) of grad_x (m x k, row stride ldx) = g @ w, for an m x n g with contiguous rows
// and an n x k w.
template <typename T, int MR, int NR>
void input_gradient_block(const GemmKernelInfo<T>& info, int64_t m, int64_t n, const T* g, Strided<T> w, int64_t j0,
                          int64_t j1, T* grad_x, int64_t ldx) {
  if (j0 >= j1 || m <= 0) return;
  GemmArgs<T> args{m, j1 - j0, n, g, n, 1, w.data + j0 * w.cs, w.rs, w.cs, grad_x + j0, ldx, 1};
  gemm_blocked<T, MR, NR>(info, args, plan_for(info, args));
}

}  // namespace cpu
}  // namespace pykernels
