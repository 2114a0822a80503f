// CPU kernels for the elementwise ops: binary arithmetic, unary math, ReLU and its backward.
//
// Each op is a scalar lambda handed to elementwise_loop, which supplies threading and the
// contiguous / broadcast-scalar / strided inner loops. Half and bfloat16 compute in float
// (at::opmath_type) and round once on store, as torch does.
#include <ATen/Dispatch.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <type_traits>

#include "cpu/loops.h"
#include "cpu/vmath.h"
#include "kernels.h"

namespace pykernels {
namespace {

template <typename T>
constexpr bool is_float_v = std::is_floating_point_v<at::opmath_type<T>>;

// Floor division of floats, following Python (and torch): computed from fmod so that the
// quotient is exact for representable results.
template <typename T>
T div_floor_float(T a, T b) {
  if (b == 0) return a / b;
  T mod = std::fmod(a, b);
  T div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= T(1);
  if (div == 0) return std::copysign(T(0), a / b);
  T floordiv = std::floor(div);
  if (div - floordiv > T(0.5)) floordiv += T(1);
  return floordiv;
}

// Integer quotient rounded toward zero or toward -inf. Division by zero raises like torch;
// x / -1 is computed as a wrapping negation because INT_MIN / -1 traps on x86.
template <typename T>
T div_int(T a, T b, bool floor) {
  TORCH_CHECK(b != 0, "pykernels.div: ZeroDivisionError");
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return static_cast<T>(-static_cast<std::make_unsigned_t<T>>(a));
    T q = a / b;
    if (floor && (a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    return static_cast<T>(a / b);
  }
}

template <typename T>
T int_pow(T base, int64_t e) {
  T result = 1;
  while (e > 0) {
    if (e & 1) result = static_cast<T>(result * base);
    base = static_cast<T>(base * base);
    e >>= 1;
  }
  return result;
}

template <typename scalar_t>
void binary(BinaryOp op, const StridedIter<3>& it, const c10::Scalar& alpha_s) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto run = [&](auto f) {
    elementwise_loop<scalar_t, 3>(it, [f](scalar_t x, scalar_t y) {
      return static_cast<scalar_t>(f(static_cast<opmath_t>(x), static_cast<opmath_t>(y)));
    });
  };
  const opmath_t alpha = alpha_s.to<opmath_t>();
  switch (op) {
    case BinaryOp::Add:
      if (alpha == opmath_t(1)) return run([](opmath_t x, opmath_t y) { return x + y; });
      return run([alpha](opmath_t x, opmath_t y) { return x + alpha * y; });
    case BinaryOp::Sub:
      if (alpha == opmath_t(1)) return run([](opmath_t x, opmath_t y) { return x - y; });
      return run([alpha](opmath_t x, opmath_t y) { return x - alpha * y; });
    case BinaryOp::Mul:
      return run([](opmath_t x, opmath_t y) { return x * y; });
    case BinaryOp::Div:
      return run([](opmath_t x, opmath_t y) { return x / y; });
    case BinaryOp::DivTrunc:
    case BinaryOp::DivFloor: {
      const bool floor = op == BinaryOp::DivFloor;
      if constexpr (is_float_v<scalar_t>) {
        if (floor) return run([](opmath_t x, opmath_t y) { return div_floor_float(x, y); });
        return run([](opmath_t x, opmath_t y) { return std::trunc(x / y); });
      } else {
        return run([floor](opmath_t x, opmath_t y) { return div_int(x, y, floor); });
      }
    }
  }
}

template <typename scalar_t>
void unary(UnaryOp op, const StridedIter<2>& it, const c10::Scalar& exponent) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto run = [&](auto f) {
    elementwise_loop<scalar_t, 2>(it, [f](scalar_t x) { return static_cast<scalar_t>(f(static_cast<opmath_t>(x))); });
  };
  switch (op) {
    case UnaryOp::Neg:
      return run([](opmath_t x) { return -x; });
    case UnaryOp::Relu:  // NaN propagates, as in torch
      return run([](opmath_t x) { return x < opmath_t(0) ? opmath_t(0) : x; });
    case UnaryOp::Exp:
    case UnaryOp::Log:
    case UnaryOp::Sqrt:
      if constexpr (is_float_v<scalar_t>) {
        if constexpr (std::is_same_v<opmath_t, float>) {  // float, half, bfloat16: vectorizable versions
          if (op == UnaryOp::Exp) return run([](float x) { return vmath::exp(x); });
          if (op == UnaryOp::Log) return run([](float x) { return vmath::log(x); });
        }
        if (op == UnaryOp::Exp) return run([](opmath_t x) { return std::exp(x); });
        if (op == UnaryOp::Log) return run([](opmath_t x) { return std::log(x); });
        return run([](opmath_t x) { return std::sqrt(x); });
      }
      TORCH_INTERNAL_ASSERT(false, "pykernels: exp/log/sqrt reached an integer kernel");
      return;
    case UnaryOp::Pow:
      if constexpr (is_float_v<scalar_t>) {
        // The exponents torch special-cases, computed the same way so results match bit for bit.
        const opmath_t e = exponent.to<opmath_t>();
        if (e == opmath_t(2)) return run([](opmath_t x) { return x * x; });
        if (e == opmath_t(3)) return run([](opmath_t x) { return x * x * x; });
        if (e == opmath_t(0.5)) return run([](opmath_t x) { return std::sqrt(x); });
        if (e == opmath_t(-0.5)) return run([](opmath_t x) { return opmath_t(1) / std::sqrt(x); });
        if (e == opmath_t(-1)) return run([](opmath_t x) { return opmath_t(1) / x; });
        if (e == opmath_t(-2)) return run([](opmath_t x) { return opmath_t(1) / (x * x); });
        return run([e](opmath_t x) { return std::pow(x, e); });
      } else {
        const int64_t e = exponent.to<int64_t>();
        return run([e](opmath_t x) { return int_pow(x, e); });
      }
  }
}

}  // namespace

void binary_kernel_cpu(BinaryOp op, const StridedIter<3>& it, at::ScalarType dtype, const c10::Scalar& alpha) {
  AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, dtype, "pykernels_binary",
                             [&] { binary<scalar_t>(op, it, alpha); });
}

void unary_kernel_cpu(UnaryOp op, const StridedIter<2>& it, at::ScalarType dtype, const c10::Scalar& exponent) {
  AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, dtype, "pykernels_unary",
                             [&] { unary<scalar_t>(op, it, exponent); });
}

void relu_backward_kernel_cpu(const StridedIter<3>& it, at::ScalarType dtype) {
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_relu_backward", [&] {
    // Zero where the output is <= 0, as torch's threshold_backward (so a NaN output passes grad).
    elementwise_loop<scalar_t, 3>(it, [](scalar_t g, scalar_t r) { return r <= scalar_t(0) ? scalar_t(0) : g; });
  });
}

}  // namespace pykernels
