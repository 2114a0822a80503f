#include "common/checks.h"

#include <ATen/ExpandUtils.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>

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

at::Tensor empty_like_inputs(at::IntArrayRef shape, const at::TensorOptions& options,
                             std::initializer_list<at::Tensor> inputs) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  // All inputs of the output's shape and contiguous, all channels-last, or all of one dense
  // layout: the output takes that layout, checked in that order (as in torch's fast set-up).
  bool contiguous = true, channels_last = true, same = true;
  for (const auto& in : inputs) {
    const bool full = in.sizes() == shape;
    contiguous = contiguous && full && in.is_contiguous();
    channels_last = channels_last && full && in.is_contiguous(at::MemoryFormat::ChannelsLast);
    same = same && full && in.is_non_overlapping_and_dense() && in.strides() == inputs.begin()->strides();
  }
  if (contiguous) return at::empty(shape, options);
  if (channels_last) return at::empty(shape, options.memory_format(at::MemoryFormat::ChannelsLast));
  if (same) return at::empty_strided(shape, inputs.begin()->strides(), options);
  // Each input's strides over the broadcast shape, with 0 for broadcast dimensions.
  std::vector<std::vector<int64_t>> strides;
  for (const auto& in : inputs) {
    std::vector<int64_t> s(nd, 0);
    const int64_t offset = nd - in.dim();
    for (int64_t d = 0; d < in.dim(); ++d) {
      s[offset + d] = in.size(d) == 1 && shape[offset + d] != 1 ? 0 : in.stride(d);
    }
    strides.push_back(std::move(s));
  }
  // perm[0] is the innermost dimension. Dimensions are ordered by the first input whose strides
  // tell them apart; broadcast dimensions tell nothing, and equal strides put the smaller size
  // inside. An insertion sort that stops at the first "keep", as torch's does, so that ties
  // resolve the same way.
  auto should_swap = [&](int64_t d0, int64_t d1) {
    for (const auto& s : strides) {
      if (s[d0] == 0 || s[d1] == 0) continue;
      if (s[d0] < s[d1]) return -1;
      if (s[d0] > s[d1]) return 1;
      if (shape[d0] > shape[d1]) return 1;
    }
    return 0;
  };
  std::vector<int64_t> perm(nd);
  for (int64_t i = 0; i < nd; ++i) perm[i] = nd - 1 - i;
  for (int64_t i = 1; i < nd; ++i) {
    int64_t d1 = i;
    for (int64_t d0 = i - 1; d0 >= 0; --d0) {
      const int cmp = should_swap(perm[d0], perm[d1]);
      if (cmp > 0) {
        std::swap(perm[d0], perm[d1]);
        d1 = d0;
      } else if (cmp < 0) {
        break;
      }
    }
  }
  std::vector<int64_t> out_strides(nd);
  int64_t next = 1;
  for (int64_t i = 0; i < nd; ++i) {
    out_strides[perm[i]] = next;
    next *= std::max<int64_t>(shape[perm[i]], 1);
  }
  return at::empty_strided(shape, out_strides, options);
}

at::Tensor prepare_output(const char* op, OutKind kind, const at::Tensor& out, at::IntArrayRef shape,
                          at::ScalarType result_type, const at::TensorOptions& options,
                          std::initializer_list<at::Tensor> inputs) {
  if (kind == OutKind::Functional) return empty_like_inputs(shape, options.dtype(result_type), inputs);
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
