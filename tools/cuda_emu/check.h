// Comparison helpers for the emulator tests: results of the emulated CUDA kernels (run through
// the real op wrappers on CPU tensors) against torch's CPU ops.
#pragma once

#include <ATen/ATen.h>

#include <cstdio>
#include <string>

namespace emu_test {

inline int g_checks = 0, g_failures = 0;

inline void expect_close(const at::Tensor& actual, const at::Tensor& expected, double atol, double rtol,
                         const std::string& what) {
  ++g_checks;
  std::string why;
  if (actual.sizes() != expected.sizes()) {
    why = "shape " + c10::str(actual.sizes()) + " != " + c10::str(expected.sizes());
  } else if (actual.scalar_type() != expected.scalar_type()) {
    why = std::string("dtype ") + c10::toString(actual.scalar_type()) + " != " + c10::toString(expected.scalar_type());
  } else if (actual.numel() > 0) {
    const at::Tensor a = actual.to(at::kDouble), e = expected.to(at::kDouble);
    if (!at::allclose(a, e, rtol, atol, /*equal_nan=*/true)) {
      const at::Tensor diff = (a - e).abs().nan_to_num(1e300);
      const int64_t worst = diff.flatten().argmax().item<int64_t>();
      why = c10::str("max |diff| ", diff.max().item<double>(), " at flat index ", worst, ": got ",
                     a.flatten()[worst].item<double>(), ", expected ", e.flatten()[worst].item<double>());
    }
  }
  if (!why.empty()) {
    ++g_failures;
    std::printf("FAIL %s: %s\n", what.c_str(), why.c_str());
  }
}

inline void expect_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  expect_close(actual, expected, 0, 0, what);
}

// Tolerances for one rounding of the result (elementwise ops computed in float/double).
inline double tol_of(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return 2e-3;
    case at::kBFloat16:
      return 1.6e-2;
    case at::kFloat:
      return 2e-6;
    case at::kDouble:
      return 1e-12;
    default:
      return 0;
  }
}

// A random tensor of integer values in [lo, hi] (exact in every floating dtype we use), or
// standard normal values.
inline at::Tensor ints(at::IntArrayRef shape, at::ScalarType t, int lo = -3, int hi = 3) {
  return at::randint(lo, hi + 1, shape, at::kLong).to(t);
}
inline at::Tensor normal(at::IntArrayRef shape, at::ScalarType t) { return at::randn(shape, at::kDouble).to(t); }

// A (rows x cols) matrix of integer values in the given layout: "contiguous", "transposed",
// "sliced" (both strides > 1), "unaligned" (contiguous, data one element past an aligned
// address) or "padded" (row stride cols + 8).
inline at::Tensor matrix(int64_t rows, int64_t cols, at::ScalarType t, const std::string& layout) {
  if (layout == "contiguous") return ints({rows, cols}, t);
  if (layout == "transposed") return ints({cols, rows}, t).t();
  if (layout == "sliced") return ints({2 * rows, 3 * cols}, t).slice(0, 0, 2 * rows, 2).slice(1, 1, 3 * cols, 3);
  if (layout == "unaligned") return ints({rows * cols + 1}, t).narrow(0, 1, rows * cols).view({rows, cols});
  if (layout == "padded") return ints({rows, cols + 8}, t).narrow(1, 0, cols);
  TORCH_CHECK(false, layout);
}

inline std::string name(at::ScalarType t) { return c10::toString(t); }

}  // namespace emu_test
