// CUDA kernels for the elementwise ops: binary arithmetic (pow with a tensor exponent among them),
// unary math, the gradients of pow with a tensor exponent, ReLU and its backward.
//
// Each op is a small functor run by launch_elementwise (cuda/loops.cuh). Half and bfloat16
// compute in float (at::opmath_type) and round once on store, as torch's CUDA kernels do.
// Semantics follow torch's CUDA kernels where they differ from its CPU ones: integer division by
// zero does not raise (torch does not check on the GPU, which would need a host sync); here it
// gives 0, as torch's CUDA floor division does.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/util/Exception.h>
#include <c10/util/generic_math.h>

#include <type_traits>

#include "cuda/loops.cuh"
#include "kernels.h"

namespace pykernels {
namespace {

using cuda::launch_elementwise;

template <typename T>
using opmath = at::opmath_type<T>;

// base^e for e >= 0 by repeated squaring, wrapping on overflow like the CPU kernels.
template <typename T>
__device__ T int_pow(T base, int64_t e) {
  T result = 1;
  for (; e > 0; e >>= 1) {
    if (e & 1) result = static_cast<T>(result * base);
    base = static_cast<T>(base * base);
  }
  return result;
}

// An integer to an integer power as torch computes it for a tensor exponent: a negative exponent
// gives 1 for a base of 1, +-1 for a base of -1 (by the exponent's parity) and 0 for any other.
template <typename T>
__device__ T powi(T base, T e) {
  if constexpr (std::is_signed_v<T>) {
    if (e < T(0)) {
      if (base == T(1)) return T(1);
      if (base == T(-1)) return (e & 1) ? T(-1) : T(1);
      return T(0);
    }
  }
  return int_pow(base, static_cast<int64_t>(e));
}

// The op is a runtime field of one functor per dtype rather than a template parameter: the
// branch is uniform across the grid and costs a few instructions per element of a kernel that is
// bound by memory bandwidth, while a kernel per (op, dtype) would multiply the CUDA build time.

// ---- binary ------------------------------------------------------------------------------------

template <typename T>
struct BinaryFloatF {
  BinaryOp op;
  opmath<T> alpha;
  __device__ T operator()(T x_, T y_) const {
    const opmath<T> x = static_cast<opmath<T>>(x_), y = static_cast<opmath<T>>(y_);
    switch (op) {
      case BinaryOp::Add:
        return static_cast<T>(x + alpha * y);
      case BinaryOp::Sub:
        return static_cast<T>(x - alpha * y);
      case BinaryOp::Mul:
        return static_cast<T>(x * y);
      case BinaryOp::Div:
        return static_cast<T>(x / y);
      case BinaryOp::DivTrunc:
        return static_cast<T>(::trunc(x / y));
      case BinaryOp::DivFloor:  // Python's floor division, computed exactly as torch does
        return static_cast<T>(c10::div_floor_floating(x, y));
      case BinaryOp::Pow:  // a tensor exponent: pow for every element, as torch's kernel
        return static_cast<T>(::pow(x, y));
    }
    return T(0);
  }
};

// Integers (and bool, where the wrapper only lets add, mul and rounded div through). x / 0
// gives 0 (no trap on the GPU, and raising would need a host sync); x / -1 is a wrapping
// negation so INT_MIN / -1 is INT_MIN, as on the CPU.
template <typename T>
struct BinaryIntF {
  BinaryOp op;
  T alpha;
  __device__ T operator()(T a, T b) const {
    switch (op) {
      case BinaryOp::Add:
        return static_cast<T>(a + alpha * b);
      case BinaryOp::Sub:
        return static_cast<T>(a - alpha * b);
      case BinaryOp::Mul:
        return static_cast<T>(a * b);
      case BinaryOp::Pow:
        if constexpr (std::is_same_v<T, bool>) {
          return T(0);  // not reached: the wrapper refuses bool
        } else {
          return powi(a, b);
        }
      default:
        break;
    }
    // DivTrunc, DivFloor (true division of integers was promoted to a float type)
    if (b == T(0)) return T(0);
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return static_cast<T>(-static_cast<std::make_unsigned_t<T>>(a));
    }
    const auto q = a / b;  // integer promotion for narrow types
    if constexpr (std::is_signed_v<T>) {
      if (op == BinaryOp::DivFloor && (a % b != 0) && ((a < 0) != (b < 0))) return static_cast<T>(q - 1);
    }
    return static_cast<T>(q);
  }
};

// ---- unary -------------------------------------------------------------------------------------

// Pow's exponents that torch's CUDA pow special-cases, computed the same way.
enum class PowKind { General, Square, Cube, Sqrt, Rsqrt, Reciprocal, InvSquare };

template <typename T>
struct UnaryFloatF {
  UnaryOp op;
  PowKind pow;
  opmath<T> e;
  // Math functions take opmath values: the float overloads for float/half/bfloat16.
  __device__ T operator()(T x_) const {
    const opmath<T> x = static_cast<opmath<T>>(x_);
    switch (op) {
      case UnaryOp::Neg:
        return static_cast<T>(-x);
      case UnaryOp::Relu:  // NaN propagates (NaN < 0 is false), as in torch
        return x < opmath<T>(0) ? T(0) : x_;
      case UnaryOp::Exp:
        return static_cast<T>(::exp(x));
      case UnaryOp::Log:
        return static_cast<T>(::log(x));
      case UnaryOp::Sqrt:
        return static_cast<T>(::sqrt(x));
      case UnaryOp::Pow:
        break;
    }
    switch (pow) {
      case PowKind::Square:
        return static_cast<T>(x * x);
      case PowKind::Cube:
        return static_cast<T>(x * x * x);
      case PowKind::Sqrt:
        return static_cast<T>(::sqrt(x));
      case PowKind::Rsqrt:
        return static_cast<T>(::rsqrt(x));
      case PowKind::Reciprocal:
        return static_cast<T>(opmath<T>(1) / x);
      case PowKind::InvSquare:
        return static_cast<T>(opmath<T>(1) / (x * x));
      case PowKind::General:
        break;
    }
    return static_cast<T>(::pow(x, e));
  }
};

template <typename T>
struct UnaryIntF {  // neg, relu, pow with an exponent >= 0 (the wrapper rejects negative ones)
  UnaryOp op;
  int64_t e;
  __device__ T operator()(T x) const {
    if constexpr (!std::is_same_v<T, bool>) {
      if (op == UnaryOp::Neg) return static_cast<T>(-x);
      if (op == UnaryOp::Relu) {
        if constexpr (std::is_signed_v<T>) return x < T(0) ? T(0) : x;
        return x;
      }
    }
    return int_pow(x, e);
  }
};

template <typename T>
void unary_float(UnaryOp op, const StridedIter<2>& it, const c10::Scalar& exponent) {
  UnaryFloatF<T> f{op, PowKind::General, opmath<T>(0)};
  if (op == UnaryOp::Pow) {
    const opmath<T> e = exponent.to<opmath<T>>();
    f.e = e;
    f.pow = e == opmath<T>(2)      ? PowKind::Square
            : e == opmath<T>(3)    ? PowKind::Cube
            : e == opmath<T>(0.5)  ? PowKind::Sqrt
            : e == opmath<T>(-0.5) ? PowKind::Rsqrt
            : e == opmath<T>(-1)   ? PowKind::Reciprocal
            : e == opmath<T>(-2)   ? PowKind::InvSquare
                                   : PowKind::General;
  }
  launch_elementwise<T, 2>(it, f);
}

template <typename T>
void unary_int(UnaryOp op, const StridedIter<2>& it, const c10::Scalar& exponent) {
  TORCH_INTERNAL_ASSERT(op == UnaryOp::Neg || op == UnaryOp::Relu || op == UnaryOp::Pow, "pykernels: unary op ",
                        static_cast<int>(op), " reached an integer CUDA kernel");
  launch_elementwise<T, 2>(it, UnaryIntF<T>{op, op == UnaryOp::Pow ? exponent.to<int64_t>() : 0});
}

template <typename T>
struct ReluBackwardF {  // zero where the output is <= 0, as torch's threshold_backward
  __device__ T operator()(T g, T r) const { return static_cast<opmath<T>>(r) <= opmath<T>(0) ? T(0) : g; }
};

// torch's two gradients of pow(input, exponent) for a tensor exponent (pow_backward_self and
// pow_backward_exponent), computed in opmath and rounded once, grid-stride over `it` walking
// (grad_input, grad, input, exponent); grad_exponent and result share operand 0's offsets:
//   grad_input    = grad * (exponent * input^(exponent - 1)), or 0 where exponent == 0;
//   grad_exponent = grad * (result * log(input)), the factor 0 where input == 0 and exponent >= 0
// (the factor, not the product, as in torch: a NaN or infinite grad still gives NaN there).
template <typename T>
__global__ void __launch_bounds__(cuda::kThreads)
    pow_tensor_backward_kernel(const __grid_constant__ StridedIter<4> it, T* __restrict__ grad_exponent,
                               const T* __restrict__ result) {
  using opmath_t = opmath<T>;
  T* grad_input = static_cast<T*>(it.data[0]);
  const T* grad = static_cast<const T*>(it.data[1]);
  const T* input = static_cast<const T*>(it.data[2]);
  const T* exponent = static_cast<const T*>(it.data[3]);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < it.numel; i += step) {
    int64_t off[4];
    cuda::iter_offsets(it, i, off);
    const opmath_t g = static_cast<opmath_t>(grad[off[1]]), x = static_cast<opmath_t>(input[off[2]]),
                   e = static_cast<opmath_t>(exponent[off[3]]), r = static_cast<opmath_t>(result[off[0]]);
    grad_input[off[0]] = static_cast<T>(e == opmath_t(0) ? opmath_t(0) : g * (e * ::pow(x, e - opmath_t(1))));
    const bool masked = x == opmath_t(0) && e >= opmath_t(0);
    grad_exponent[off[0]] = static_cast<T>(g * (masked ? opmath_t(0) : r * ::log(x)));
  }
}

}  // namespace

void binary_kernel_cuda(BinaryOp op, const StridedIter<3>& it, at::ScalarType dtype, const c10::Scalar& alpha) {
  if (at::isFloatingType(dtype)) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_binary_cuda", [&] {
      launch_elementwise<scalar_t, 3>(it, BinaryFloatF<scalar_t>{op, alpha.to<opmath<scalar_t>>()});
    });
  } else {
    TORCH_INTERNAL_ASSERT(op != BinaryOp::Div, "pykernels: true division reached an integer CUDA kernel");
    AT_DISPATCH_INTEGRAL_TYPES_AND(at::kBool, dtype, "pykernels_binary_cuda", [&] {
      launch_elementwise<scalar_t, 3>(it, BinaryIntF<scalar_t>{op, alpha.to<scalar_t>()});
    });
  }
}

void unary_kernel_cuda(UnaryOp op, const StridedIter<2>& it, at::ScalarType dtype, const c10::Scalar& exponent) {
  if (at::isFloatingType(dtype)) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_unary_cuda",
                                    [&] { unary_float<scalar_t>(op, it, exponent); });
  } else {
    AT_DISPATCH_INTEGRAL_TYPES_AND(at::kBool, dtype, "pykernels_unary_cuda",
                                   [&] { unary_int<scalar_t>(op, it, exponent); });
  }
}

void pow_tensor_backward_kernel_cuda(const StridedIter<4>& it, void* grad_exponent, const void* result,
                                     at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_pow_tensor_backward_cuda", [&] {
    cuda::launch(pow_tensor_backward_kernel<scalar_t>, cuda::grid_for(it.numel, cuda::kThreads), cuda::kThreads, 0, it,
                 static_cast<scalar_t*>(grad_exponent), static_cast<const scalar_t*>(result));
  });
}

void relu_backward_kernel_cuda(const StridedIter<3>& it, at::ScalarType dtype) {
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_relu_backward_cuda",
                             [&] { launch_elementwise<scalar_t, 3>(it, ReluBackwardF<scalar_t>{}); });
}

}  // namespace pykernels
