// CPU kernels for mse_loss. The reduced forward squares each difference in the tensor's own
// compute type (so every term equals torch's) and accumulates in double, in one pass with no
// temporary; the backward is a single fused elementwise pass.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "cpu/loops.h"
#include "kernels.h"

namespace pykernels {
namespace {

constexpr int kLanes = 8;

// Adds the squared differences of one run of n elements to `total`.
template <typename T>
__attribute__((always_inline)) inline void add_squared_errors(const T* x, const T* y, int64_t n, int64_t sa,
                                                              int64_t sb, double& total) {
  using opmath_t = at::opmath_type<T>;
  auto term = [](T u, T v) {
    const opmath_t d = static_cast<opmath_t>(u) - static_cast<opmath_t>(v);
    return static_cast<double>(d * d);
  };
  if (sa == 1 && sb == 1) {  // independent lanes so the loop vectorizes
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += term(x[i + l], y[i + l]);
    for (; i < n; ++i) total += term(x[i], y[i]);
    for (int l = 0; l < kLanes; ++l) total += lanes[l];
  } else {
    for (int64_t i = 0; i < n; ++i) total += term(x[i * sa], y[i * sb]);
  }
}

#if defined(__x86_64__)
// The same loop compiled for AVX2 (see cpu/loops.h): same lanes, same order, same result.
template <typename T>
__attribute__((target("avx2"), noinline)) void add_squared_errors_avx2(const T* x, const T* y, int64_t n, int64_t sa,
                                                                       int64_t sb, double& total) {
  add_squared_errors<T>(x, y, n, sa, sb, total);
}
#endif

template <typename T>
double squared_error_sum(const StridedIter<2>& it, int64_t begin, int64_t end) {
  const T* a = static_cast<const T*>(it.data[0]);
  const T* b = static_cast<const T*>(it.data[1]);
  const int64_t sa = it.strides[0][0], sb = it.strides[1][0];
#if defined(__x86_64__)
  const bool avx2 = kHasAvx2Loops<T> && cpu::cpu_has_avx2();
#endif
  double total = 0;
  for_range(it, begin, end, [&](const int64_t* off, int64_t n) {
#if defined(__x86_64__)
    if (avx2) return add_squared_errors_avx2<T>(a + off[0], b + off[1], n, sa, sb, total);
#endif
    add_squared_errors<T>(a + off[0], b + off[1], n, sa, sb, total);
  });
  return total;
}

}  // namespace

void mse_loss_reduce_kernel_cpu(const StridedIter<2>& it, at::ScalarType dtype, void* out, double scale) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss", [&] {
    const double total = at::parallel_reduce(
        0, it.numel, kGrainSize, 0.0,
        [&](int64_t b, int64_t e, double init) { return init + squared_error_sum<scalar_t>(it, b, e); },
        [](double x, double y) { return x + y; });
    *static_cast<scalar_t*>(out) = static_cast<scalar_t>(total * scale);
  });
}

void mse_loss_none_kernel_cpu(const StridedIter<3>& it, at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    elementwise_loop<scalar_t, 3>(it, [](scalar_t x, scalar_t y) {
      const opmath_t d = static_cast<opmath_t>(x) - static_cast<opmath_t>(y);
      return static_cast<scalar_t>(d * d);
    });
  });
}

void mse_loss_backward_kernel_cpu(const StridedIter<4>& it, at::ScalarType dtype, double scale) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss_backward", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const opmath_t s = static_cast<opmath_t>(scale);
    elementwise_loop<scalar_t, 4>(it, [s](scalar_t x, scalar_t y, scalar_t g) {
      return static_cast<scalar_t>(s * (static_cast<opmath_t>(x) - static_cast<opmath_t>(y)) *
                                   static_cast<opmath_t>(g));
    });
  });
}

}  // namespace pykernels
