// Argument checks shared by the op wrappers. Every message starts with "pykernels.<op>: " so a
// user sees which call failed, followed by the offending sizes, dtypes or devices.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <vector>

#define PK_CHECK(cond, op, ...) TORCH_CHECK(cond, "pykernels.", op, ": ", __VA_ARGS__)
// For what torch itself reports as NotImplementedError (a dtype an op does not support).
#define PK_CHECK_NOT_IMPLEMENTED(cond, op, ...) TORCH_CHECK_NOT_IMPLEMENTED(cond, "pykernels.", op, ": ", __VA_ARGS__)

namespace pykernels {

inline void check_defined(const char* op, const at::Tensor& t, const char* name) {
  PK_CHECK(t.defined(), op, "argument '", name, "' is an undefined tensor");
}

inline void check_same_device(const char* op, const at::Tensor& a, const at::Tensor& b) {
  PK_CHECK(a.device() == b.device(), op, "expected all tensors to be on the same device, but found at least two ",
           "devices, ", a.device(), " and ", b.device());
}

// The device an elementwise op computes on, by torch's rule for mixed devices: every tensor on
// one device, except that a 0-dim CPU input may join tensors on another device, as a Python
// number would. `out` (an out= tensor or an in-place self), when given, takes no such exception.
at::Device common_device(const char* op, std::initializer_list<at::Tensor> inputs, const at::Tensor& out = {});

// The dtypes the kernels are instantiated for: bool, uint8, signed integers, float16/bfloat16/32/64
// (not the wider unsigned types, which have no kernels).
inline void check_dtype_supported(const char* op, at::ScalarType t) {
  PK_CHECK_NOT_IMPLEMENTED(t == at::kBool || t == at::kByte || t == at::kChar || t == at::kShort || t == at::kInt ||
                               t == at::kLong || t == at::kHalf || t == at::kBFloat16 || t == at::kFloat ||
                               t == at::kDouble,
                           op, "dtype ", t, " is not supported");
}

// Shape that `a` and `b` broadcast to, with torch's rules; a mismatch names the op.
std::vector<int64_t> broadcast_shape(const char* op, at::IntArrayRef a, at::IntArrayRef b);

// An input as a kernel operand: moved to `device` (only a 0-dim CPU tensor beside tensors on
// another device needs that), converted to the compute dtype (a cast, not arithmetic) and
// broadcast to `shape` (a stride-0 view, no copy); an input that needs none of these is used as
// it is, with no new view to allocate. It must outlive the kernel: iterators hold raw pointers only.
at::Tensor operand(const at::Tensor& t, at::ScalarType dtype, at::IntArrayRef shape, at::Device device);

// A new output of `shape` laid out as torch's TensorIterator lays out an elementwise op's output,
// because callers rely on it (x.t().neg() is transposed like x.t()): the inputs' layout when they
// all share one dense layout of that shape, otherwise dimensions ordered by the inputs' strides
// (the first input that orders a pair decides).
at::Tensor empty_like_inputs(at::IntArrayRef shape, const at::TensorOptions& options,
                             std::initializer_list<at::Tensor> inputs);

// The output an elementwise op writes to. For out=/in-place forms, checks that the result dtype
// can be cast to `out` and that `out` does not overlap its inputs partially; resizes an out=
// tensor of the wrong shape (as torch does, warning when it held data); an in-place `self` must
// already have the broadcast shape.
enum class OutKind { Functional, Out, InPlace };
at::Tensor prepare_output(const char* op, OutKind kind, const at::Tensor& out, at::IntArrayRef shape,
                          at::ScalarType result_type, const at::TensorOptions& options,
                          std::initializer_list<at::Tensor> inputs);

}  // namespace pykernels
