// A Python number where an op takes a tensor becomes a "wrapped number": a 0-dim CPU tensor
// flagged so that type promotion treats it as a number (it never raises a tensor's dtype within
// its category), exactly as torch's own Python bindings and ATen's Scalar overloads make one.
#pragma once

#include <ATen/ScalarOps.h>
#include <c10/core/Scalar.h>

namespace pykernels {

inline at::Tensor wrapped_number(const c10::Scalar& value) {
  // Made without the dispatcher, as torch's bindings make it: a fake tensor mode sees the flag and
  // takes the number, where a dispatched allocation would be faked and then filled.
  at::Tensor t = at::scalar_to_tensor(value);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

}  // namespace pykernels
