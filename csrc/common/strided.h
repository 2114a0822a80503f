// Strided iteration shared by every elementwise-style kernel (CPU and CUDA).
//
// An op hands us N tensors of one shape (inputs already broadcast with expand(), so a broadcast
// dimension simply has stride 0). We keep only sizes and element strides, innermost dimension
// first, after two simplifications that make the common cases fast:
//   * dimensions are ordered by operand 0's strides, so the inner loop walks memory in order
//     even for transposed outputs (in-place on a transposed view);
//   * adjacent dimensions that are contiguous with each other in every operand are merged,
//     so any set of contiguous tensors becomes one flat dimension and the inner loop is a
//     plain vectorizable loop.
// The struct is plain data so it can be passed by value to a CUDA kernel.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace pykernels {

constexpr int kMaxDims = 25;

template <int N>
struct StridedIter {
  int ndim = 0;  // >= 1 after make_iter; a 0-dim tensor is one dimension of size 1
  int64_t numel = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];  // in elements of each operand's own dtype
  void* data[N];
};

// Builds the iteration for `ops`, which must all have the same sizes.
template <int N>
StridedIter<N> make_iter(const char* op, const std::array<at::Tensor, N>& ops);

// The element offsets of each operand at linear index `linear` (row-major over the merged dims,
// innermost fastest).
template <int N>
inline void offsets_at(const StridedIter<N>& it, int64_t linear, int64_t* off) {
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = 0; d < it.ndim; ++d) {
    const int64_t i = linear % it.sizes[d];
    linear /= it.sizes[d];
    for (int k = 0; k < N; ++k) off[k] += i * it.strides[k][d];
  }
}

// Calls loop(off, n) for the run of linear indices [begin, end): `off` holds each operand's
// element offset at the start of a run along the innermost dimension, `n` the run length.
// Runs are as long as the innermost (merged) dimension allows, so contiguous data gives one call.
template <int N, typename Loop>
inline void for_range(const StridedIter<N>& it, int64_t begin, int64_t end, Loop&& loop) {
  if (begin >= end) return;
  int64_t idx[kMaxDims];
  int64_t off[N];
  {
    int64_t rest = begin;
    for (int d = 0; d < it.ndim; ++d) {
      idx[d] = rest % it.sizes[d];
      rest /= it.sizes[d];
    }
    offsets_at(it, begin, off);
  }
  int64_t pos = begin;
  while (pos < end) {
    const int64_t n = std::min(it.sizes[0] - idx[0], end - pos);
    loop(static_cast<const int64_t*>(off), n);
    pos += n;
    if (pos >= end) break;
    // Step to the start of the next run: innermost index back to 0, carry outward.
    for (int k = 0; k < N; ++k) off[k] -= idx[0] * it.strides[k][0];
    idx[0] = 0;
    for (int d = 1; d < it.ndim; ++d) {
      for (int k = 0; k < N; ++k) off[k] += it.strides[k][d];
      if (++idx[d] < it.sizes[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= idx[d] * it.strides[k][d];
      idx[d] = 0;
    }
  }
}

}  // namespace pykernels
