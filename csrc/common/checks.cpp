#include "common/checks.h"

#include <ATen/ExpandUtils.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>

#include "common/torch_compat.h"

namespace pykernels {

std::vector<int64_t> broadcast_shape(const char* op, at::IntArrayRef a, at::IntArrayRef b) {
  const size_t nd = std::max(a.size(), b.size());
  std::vector<int64_t> shape(nd);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t sa = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
    const int64_t sb = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
    PK_CHECK(sa == sb || sa == 1 || sb == 1, op, "the size of tensor a (", sa, ") must match the size of tensor b (",
             sb, ") at non-singleton dimension ", i, " (shapes ", a, " and ", b, ")");
    shape[i] = sa == 1 ? sb : sa;
  }
  return shape;
}

at::Device common_device(const char* op, std::initializer_list<at::Tensor> inputs, const at::Tensor& out) {
  std::optional<at::Device> device;
  if (out.defined()) device = out.device();
  for (const auto& t : inputs) {
    if (t.dim() == 0 && t.is_cpu()) continue;
    if (!device) {
      device = t.device();
    } else {
      PK_CHECK(t.device() == *device, op, "expected all tensors to be on the same device, but found at least two ",
               "devices, ", *device, " and ", t.device());
    }
  }
  return device.value_or(at::Device(at::kCPU));
}

at::Tensor operand(const at::Tensor& t, at::ScalarType dtype, at::IntArrayRef shape, at::Device device) {
  if (t.scalar_type() == dtype && t.sizes() == shape && t.device() == device) return t;
  return (t.scalar_type() == dtype && t.device() == device ? t : t.to(device, dtype)).expand(shape);
}

at::Tensor prepare_output(const char* op, OutKind kind, const at::Tensor& out, at::IntArrayRef shape,
                          at::ScalarType result_type, const at::TensorOptions& options,
                          std::initializer_list<at::Tensor> inputs) {
  if (kind == OutKind::Functional) return at::empty(shape, options.dtype(result_type));
  PK_CHECK(at::canCast(result_type, out.scalar_type()), op, "result type ", result_type,
           " can't be cast to the desired output type ", out.scalar_type());
  if (kind == OutKind::InPlace) {
    PK_CHECK(out.sizes() == shape, op, "output with shape ", out.sizes(), " doesn't match the broadcast shape ", shape);
  } else {
    compat::resize_output(out, shape);
  }
  PK_CHECK(at::has_internal_overlap(out) != at::MemOverlap::Yes, op, "unsupported operation: more than one element ",
           "of the written-to tensor refers to a single memory location. Please clone() the tensor before ",
           "performing the operation.");
  for (const auto& in : inputs) {
    PK_CHECK(in.is_same(out) || at::get_overlap_status(out, in) != at::MemOverlapStatus::Partial, op,
             "unsupported operation: some elements of the input tensor and the written-to tensor refer to a single ",
             "memory location. Please clone() the tensor before performing the operation.");
  }
  return out;
}

}  // namespace pykernels
