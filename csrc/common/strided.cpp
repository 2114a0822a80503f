#include "common/strided.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

namespace pykernels {

template <int N>
StridedIter<N> make_iter(const char* op, const std::array<at::Tensor, N>& ops) {
  StridedIter<N> it;
  const auto sizes = ops[0].sizes();
  const int64_t ndim = ops[0].dim();
  for (int k = 0; k < N; ++k) {
    TORCH_INTERNAL_ASSERT(ops[k].sizes() == sizes, op, ": operands of an elementwise loop must share a shape");
    it.data[k] = ops[k].data_ptr();
  }
  it.numel = ops[0].numel();

  // Dimensions to keep (size 1 contributes nothing), innermost first.
  std::vector<int64_t> dims;
  for (int64_t d = ndim - 1; d >= 0; --d)
    if (sizes[d] != 1) dims.push_back(d);
  // Order by operand 0's stride (then the inputs'), smallest first. Insertion sort: the
  // comparison is only a partial order (broadcast dims compare equal to everything).
  auto inner_than = [&](int64_t x, int64_t y) {
    for (int k = 0; k < N; ++k) {
      const int64_t sx = ops[k].stride(x), sy = ops[k].stride(y);
      if (sx == 0 || sy == 0) continue;  // broadcast dims say nothing about memory order
      if (sx != sy) return sx < sy;
    }
    return false;
  };
  for (size_t i = 1; i < dims.size(); ++i)
    for (size_t j = i; j > 0 && inner_than(dims[j], dims[j - 1]); --j) std::swap(dims[j], dims[j - 1]);

  int nd = 0;
  for (int64_t d : dims) {
    if (nd > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k) mergeable &= ops[k].stride(d) == it.strides[k][nd - 1] * it.sizes[nd - 1];
      if (mergeable) {
        it.sizes[nd - 1] *= sizes[d];
        continue;
      }
    }
    TORCH_CHECK(nd < kMaxDims, op, ": tensors with more than ", kMaxDims,
                " non-mergeable dimensions are not supported");
    it.sizes[nd] = sizes[d];
    for (int k = 0; k < N; ++k) it.strides[k][nd] = ops[k].stride(d);
    ++nd;
  }
  if (nd == 0) {  // 0-dim tensor or all sizes 1: one element (or none)
    it.sizes[0] = it.numel;
    for (int k = 0; k < N; ++k) it.strides[k][0] = 1;
    nd = 1;
  }
  it.ndim = nd;
  return it;
}

template StridedIter<1> make_iter<1>(const char*, const std::array<at::Tensor, 1>&);
template StridedIter<2> make_iter<2>(const char*, const std::array<at::Tensor, 2>&);
template StridedIter<3> make_iter<3>(const char*, const std::array<at::Tensor, 3>&);
template StridedIter<4> make_iter<4>(const char*, const std::array<at::Tensor, 4>&);
template StridedIter<5> make_iter<5>(const char*, const std::array<at::Tensor, 5>&);

}  // namespace pykernels
