// The GEMM microkernel contract shared by the blocked driver (cpu/gemm_blocked.h) and the
// instruction-set specific kernels (cpu/gemm_avx2.cpp, cpu/gemm_avx512.cpp). Plain C++: no torch headers, so the
// kernels compile quickly and can be built for their own target.
#pragma once

#include <cstdint>

namespace pykernels {
namespace cpu {

// What a kernel applies to a block of C as it stores it, after any accumulation: a bias added
// per row (C(r, j) += row_bias[r]) or per column (C(r, j) += col_bias[j]), then a ReLU
// (x < 0 ? 0 : x, so NaN and -0.0 pass, as in torch's relu). That is a linear layer's forward in
// the GEMM's store (cpu/linear.cpp), with no second pass over its output. The bias pointers are
// the block's own (entry 0 is its row or column 0), and only its mr rows or nr columns are read;
// either may be null. A null epilogue stores the product as it is.
template <typename T>
struct GemmEpilogue {
  const T* row_bias;
  const T* col_bias;
  bool relu;
};

// The epilogue of one value, in row r and column j of the block: the scalar edge path of every kernel.
template <typename T>
inline T apply_epilogue(const GemmEpilogue<T>& e, int64_t r, int64_t j, T x) {
  if (e.row_bias != nullptr) x += e.row_bias[r];
  if (e.col_bias != nullptr) x += e.col_bias[j];
  if (e.relu && x < T(0)) x = T(0);
  return x;
}

// C[0:mr, 0:nr] = epilogue((accumulate ? C : 0) + A[0:mr, 0:kc] @ B[0:kc, 0:nr]), for 1 <= mr <= MR
// and 1 <= nr <= NR, with
//   A(r, k) at a[r * a_rs + k * a_cs]   (a packed sliver has a_rs = 1, a_cs = MR; rows >= mr are
//                                        never read, so A can also be read in place, any strides)
//   B(k, j) at b[k * b_rs + j]          (unit column stride; all NR columns of every row must be
//                                        readable: a packed, zero-padded sliver has b_rs = NR)
//   C(r, j) at c[r * c_rs + j * c_cs]   (only the mr x nr block is read or written)
// When accumulate is false C is only written, so it may hold garbage (even NaN) on entry. The
// epilogue (null: none) is the block's, as GemmEpilogue says.
template <typename T>
using GemmMicrokernel = void (*)(int64_t kc, int64_t mr, int64_t nr, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                                 int64_t b_rs, T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
                                 const GemmEpilogue<T>* epilogue);

// Packs one full sliver of W runs, each contiguous in k, into the k-major layout the microkernel
// reads: dst[k * W + j] = src[j * stride + k] for k < kc, j < W. That is a column-major B's NR
// columns (W = NR, stride = b_cs) or a row-major A's MR rows (W = MR, stride = a_rs): a transpose.
// Optional: the driver has a portable loop for it.
template <typename T>
using GemmPackTransposed = void (*)(const T* src, int64_t stride, int64_t kc, T* dst);

// C[0:m, 0:n] = A[0:m, 0:k] @ B[0:k, 0:n] for an A whose rows and a B whose columns are contiguous
// in k (A(r, k) at a[r * a_rs + k], B(k, j) at b[k + j * b_cs], C(r, j) at c[r * c_rs + j * c_cs]):
// every element of C is the dot product of two contiguous runs, so nothing needs packing. That
// is x @ w.t(), nn.Linear's forward. Any m, n and k >= 1; the epilogue (null: none) is C's.
template <typename T>
using GemmDotKernel = void (*)(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, const T* b, int64_t b_cs,
                               T* c, int64_t c_rs, int64_t c_cs, const GemmEpilogue<T>* epilogue);

template <typename T>
struct GemmKernelInfo {
  int64_t mr, nr;      // register tile
  int64_t mc, kc, nc;  // cache blocks (cpu/gemm_blocked.h), mc a multiple of mr, nc of nr
  GemmMicrokernel<T> kernel;
  // Optional kernels: null where the instruction set has none, and left out of the initializers
  // of the kernel sets that have none.
  GemmPackTransposed<T> pack_b_col_major = nullptr;  // W = NR
  GemmPackTransposed<T> pack_a_row_major = nullptr;  // W = MR
  GemmDotKernel<T> dot = nullptr;
};

// Writes (accumulate: adds) the first `nr` columns of `rows` rows of a tile of results, spilled
// to `t` with row stride t_rs and column stride t_cs (1 for the register tiles, whose rows are
// spilled whole; the narrow tiles spill columns), into C, through the epilogue (null: none). The
// edge path of every microkernel.
template <typename T>
inline void store_tile_edge(const T* t, int64_t t_rs, int64_t t_cs, int64_t rows, int64_t nr, T* c, int64_t c_rs,
                            int64_t c_cs, bool accumulate, const GemmEpilogue<T>* epilogue) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* tr = t + r * t_rs;
    T* cr = c + r * c_rs;
    if (epilogue != nullptr) {
      for (int64_t j = 0; j < nr; ++j) {
        const T x = accumulate ? cr[j * c_cs] + tr[j * t_cs] : tr[j * t_cs];
        cr[j * c_cs] = apply_epilogue(*epilogue, r, j, x);
      }
    } else if (accumulate) {
      for (int64_t j = 0; j < nr; ++j) cr[j * c_cs] += tr[j * t_cs];
    } else {
      for (int64_t j = 0; j < nr; ++j) cr[j * c_cs] = tr[j * t_cs];
    }
  }
}

#if defined(__x86_64__)
// The AVX2+FMA kernels (cpu/gemm_avx2.cpp); call only when cpu_has_avx2_fma() (cpu/cpu_features.h).
const GemmKernelInfo<float>& avx2_gemm_kernel_f32();
const GemmKernelInfo<double>& avx2_gemm_kernel_f64();
// The AVX-512 kernels (cpu/gemm_avx512.cpp); call only when cpu_has_avx512f().
const GemmKernelInfo<float>& avx512_gemm_kernel_f32();
const GemmKernelInfo<double>& avx512_gemm_kernel_f64();
#endif

}  // namespace cpu
}  // namespace pykernels
