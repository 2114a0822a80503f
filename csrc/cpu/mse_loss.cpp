// CPU kernels for mse_loss. The reduced forward squares each difference in the tensor's own
// compute type (so every term equals torch's) and accumulates in double (float terms in short
// float blocks first, see kBlock), in one pass with no temporary, optionally writing the
// gradient in the same pass; the backward is a single fused elementwise pass. Half and
// bfloat16 runs, and strided ones, take a plain scalar loop.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <type_traits>

#include "cpu/loops.h"
#include "cpu/vec.h"
#include "kernels.h"

namespace pykernels {
namespace {

constexpr int kLanes = 32;  // independent partial sums: four AVX2 registers of float
// Float squares are summed in float kBlock at a time per lane (all terms are positive: at most 7
// ulps of error) before joining the double sum; converting every term to double would bound
// the loop instead of memory.
constexpr int kBlock = 8;

// The contiguous run of add_squared_errors for float and double, in vector types (cpu/vec.h):
// kLanes double lanes; float squares summed kBlock per lane in float first. Per element: load x
// and y, subtract, (store the gradient), square, add.
template <typename T, bool kGrad>
__attribute__((always_inline)) inline double squared_errors_contiguous(T* g, const T* x, const T* y, int64_t n,
                                                                       T grad_scale) {
  constexpr int V = kLanes / 4;  // vectors of 4 double lanes
  cpu::Vec4d acc[V] = {};
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    i = cpu::add_float_blocks<kLanes, kBlock>(i, n, acc, [=](int64_t j, cpu::Vec8f& t) {
      cpu::Vec8f xv, yv;
      cpu::load(xv, x + j);
      cpu::load(yv, y + j);
      const cpu::Vec8f d = xv - yv;
      if constexpr (kGrad) cpu::store(g + j, grad_scale * d);
      t = d * d;
    });
  }
  for (; i + kLanes <= n; i += kLanes) {
    for (int v = 0; v < V; ++v) {
      const int64_t j = i + 4 * v;
      typename cpu::Vec4<T>::type xv, yv;
      cpu::load(xv, x + j);
      cpu::load(yv, y + j);
      const auto d = xv - yv;
      if constexpr (kGrad) cpu::store(g + j, grad_scale * d);
      acc[v] += __builtin_convertvector(d * d, cpu::Vec4d);
    }
  }
  double s = 0;
  for (; i < n; ++i) {
    const T d = x[i] - y[i];
    if constexpr (kGrad) g[i] = grad_scale * d;
    s += static_cast<double>(d * d);
  }
  return s + cpu::sum_lanes<V>(acc);
}

// Adds the squared differences of one run of n elements to `total`; with kGrad, also writes
// g[i] = grad_scale * (x[i] - y[i]), the gradient for a loss gradient of 1 (the same value
// the backward kernel computes).
template <typename T, bool kGrad>
__attribute__((always_inline)) inline void add_squared_errors(T* g, const T* x, const T* y, int64_t n, int64_t sg,
                                                              int64_t sa, int64_t sb, at::opmath_type<T> grad_scale,
                                                              double& total) {
  using opmath_t = at::opmath_type<T>;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (sa == 1 && sb == 1 && (!kGrad || sg == 1)) {
      total += squared_errors_contiguous<T, kGrad>(g, x, y, n, grad_scale);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const opmath_t d = static_cast<opmath_t>(x[i * sa]) - static_cast<opmath_t>(y[i * sb]);
    if constexpr (kGrad) g[i * sg] = static_cast<T>(grad_scale * d);
    total += static_cast<double>(d * d);
  }
}

#if defined(__x86_64__)
// The same loop compiled for AVX2 (see cpu/loops.h): same lanes, same order, same result.
template <typename T, bool kGrad>
__attribute__((target("avx2"), noinline)) void add_squared_errors_avx2(T* g, const T* x, const T* y, int64_t n,
                                                                       int64_t sg, int64_t sa, int64_t sb,
                                                                       at::opmath_type<T> grad_scale, double& total) {
  add_squared_errors<T, kGrad>(g, x, y, n, sg, sa, sb, grad_scale, total);
}
#endif

// Sum of squared differences over [begin, end) of `it`: (a, b), or (grad, a, b) with kGrad.
template <typename T, bool kGrad, int N>
double squared_error_sum(const StridedIter<N>& it, int64_t begin, int64_t end, at::opmath_type<T> grad_scale) {
  constexpr int A = kGrad ? 1 : 0;  // operand index of a
  T* g = kGrad ? static_cast<T*>(it.data[0]) : nullptr;
  const T* a = static_cast<const T*>(it.data[A]);
  const T* b = static_cast<const T*>(it.data[A + 1]);
  const int64_t sg = kGrad ? it.strides[0][0] : 0, sa = it.strides[A][0], sb = it.strides[A + 1][0];
#if defined(__x86_64__)
  const bool avx2 = takes_avx2_loops<T>();
#endif
  double total = 0;
  for_range(it, begin, end, [&](const int64_t* off, int64_t n) {
    T* gr = kGrad ? g + off[0] : nullptr;
#if defined(__x86_64__)
    if (avx2)
      return add_squared_errors_avx2<T, kGrad>(gr, a + off[A], b + off[A + 1], n, sg, sa, sb, grad_scale, total);
#endif
    add_squared_errors<T, kGrad>(gr, a + off[A], b + off[A + 1], n, sg, sa, sb, grad_scale, total);
  });
  return total;
}

template <bool kGrad, int N>
void mse_loss_reduce(const StridedIter<N>& it, at::ScalarType dtype, void* out, double scale, double grad_scale) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_mse_loss", [&] {
    const auto gs = static_cast<at::opmath_type<scalar_t>>(grad_scale);
    const double total = at::parallel_reduce(
        0, it.numel, kGrainSize, 0.0,
        [&](int64_t b, int64_t e, double init) { return init + squared_error_sum<scalar_t, kGrad>(it, b, e, gs); },
        [](double x, double y) { return x + y; });
    *static_cast<scalar_t*>(out) = static_cast<scalar_t>(total * scale);
  });
}

}  // namespace

void mse_loss_reduce_kernel_cpu(const StridedIter<2>& it, at::ScalarType dtype, void* out, double scale) {
  mse_loss_reduce<false>(it, dtype, out, scale, 0.0);
}

void mse_loss_reduce_grad_kernel_cpu(const StridedIter<3>& it, at::ScalarType dtype, void* out, double scale,
                                     double grad_scale) {
  mse_loss_reduce<true>(it, dtype, out, scale, grad_scale);
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
