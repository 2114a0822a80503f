// sum and mean over any set of dimensions, with torch's dim wrapping, keepdim and dtype rules.
//
// The wrapper splits the input's dimensions into kept and reduced ones and describes both as
// strided walks over the same storage (as_strided views: no copy), so the kernel sees
// "for every kept index, reduce over the reduced index" whatever the input's layout.
#include <ATen/ATen.h>
#include <ATen/WrapDimUtils.h>

#include <bitset>
#include <limits>

#include "common/checks.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

Tensor reduce(const char* name, bool mean, const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
              c10::optional<at::ScalarType> dtype) {
  check_defined(name, self, "self");
  check_dtype_supported(name, self.scalar_type());
  at::ScalarType out_type;
  if (mean) {
    out_type = dtype.value_or(self.scalar_type());
    // NotImplementedError, as torch 2.15 raises; a RuntimeError to older torch's callers, since
    // Python's NotImplementedError derives from RuntimeError.
    PK_CHECK_NOT_IMPLEMENTED(at::isFloatingType(out_type), name, "could not infer output dtype. ",
                             dtype ? "Optional dtype" : "Input dtype",
                             " must be a floating point dtype. Got: ", out_type);
  } else {
    out_type =
        dtype.value_or(at::isIntegralType(self.scalar_type(), /*includeBool=*/true) ? at::kLong : self.scalar_type());
    check_dtype_supported(name, out_type);
  }

  // Which dims are reduced: none given (or an empty list, as torch) means all of them.
  const int64_t nd = self.dim();
  PK_CHECK(nd <= 64, name, "tensors with more than 64 dimensions are not supported");
  std::bitset<64> reduced;
  if (!dim.has_value() || dim->empty()) {
    reduced.set();
  } else {
    for (int64_t d : *dim) {
      const int64_t n = std::max<int64_t>(nd, 1);
      TORCH_CHECK_INDEX(d >= -n && d < n, "pykernels.", name, ": dimension out of range (expected to be in range of [",
                        -n, ", ", n - 1, "], but got ", d, ")");
      const int64_t w = d < 0 ? d + n : d;
      PK_CHECK(!reduced[w], name, "dim ", w, " appears multiple times in the list of dims");
      reduced.set(w);
    }
  }

  const Tensor in = self.scalar_type() == out_type ? self : self.to(out_type);
  std::vector<int64_t> keep_shape, kept_shape, red_shape;
  for (int64_t d = 0; d < nd; ++d) {
    const bool r = reduced[d];
    kept_shape.push_back(r ? 1 : in.size(d));
    red_shape.push_back(r ? in.size(d) : 1);
    if (!r || keepdim) keep_shape.push_back(r ? 1 : in.size(d));
  }

  Tensor out = at::empty(keep_shape, in.options());
  if (out.numel() == 0) return out;
  if (in.numel() == 0) {  // nothing to add up (and no storage to take views of): 0, or 0/0 for mean
    return mean ? out.fill_(std::numeric_limits<double>::quiet_NaN()) : out.zero_();
  }
  const Tensor out_k = out.view(kept_shape);
  ReduceProblem p{make_iter<2>(name, {out_k, in.as_strided(kept_shape, in.strides())}),
                  make_iter<1>(name, {in.as_strided(red_shape, in.strides())}), out_type};
  PYKERNELS_DEVICE_CALL(out.device(), sum_kernel, p, mean);
  return out;
}

}  // namespace

// The op's device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor sum(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, c10::optional<at::ScalarType> dtype) {
  return reduce("sum", false, self, dim, keepdim, dtype);
}

Tensor mean(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, c10::optional<at::ScalarType> dtype) {
  return reduce("mean", true, self, dim, keepdim, dtype);
}

}  // namespace ops

}  // namespace pykernels
