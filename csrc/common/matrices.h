// How the wrappers of the GEMM-based fused ops (csrc/linear.cpp, csrc/mlp.cpp) hand tensors to
// their kernels as matrices: views where the layout allows one, a copy (clone, no arithmetic)
// where it does not. A kernel reads a matrix through its two strides; it reads batch dimensions
// only when they can be folded into the rows.
#pragma once

#include <ATen/core/Tensor.h>

namespace pykernels {

// t itself if contiguous, else a contiguous copy.
inline at::Tensor contiguous_copy(const at::Tensor& t) {
  return t.is_contiguous() ? t : t.clone(at::MemoryFormat::Contiguous);
}

// t (*, cols), of rows * cols elements, as a rows x cols matrix: t itself when 2-D (any strides),
// a row when 1-D, a view of the batch dimensions folded into the rows when t is contiguous, else a
// copy's view.
inline at::Tensor as_matrix(const at::Tensor& t, int64_t rows, int64_t cols) {
  if (t.dim() == 2) return t;
  if (t.dim() == 1) return t.unsqueeze(0);
  return contiguous_copy(t).view({rows, cols});
}

}  // namespace pykernels
