// A Python number where an op takes a tensor becomes a "wrapped number": a 0-dim CPU tensor
// flagged so that type promotion treats it as a number (it never raises a tensor's dtype within
// its category), exactly as torch's own Python bindings and ATen's Scalar overloads make one.
#pragma once

#include <ATen/Functions.h>
#include <c10/core/Scalar.h>

namespace pykernels {

inline at::Tensor wrapped_number(const c10::Scalar& value) {
  // Through the dispatcher (not a CPU fast path), so that fake tensor modes see the allocation.
  at::Tensor t = at::scalar_tensor(value, at::TensorOptions().dtype(value.type()).device(at::kCPU));
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

}  // namespace pykernels
