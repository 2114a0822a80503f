// CPU kernels for the elementwise ops: binary arithmetic (pow with a tensor exponent among them),
// unary math, the gradients of pow with a tensor exponent, ReLU and its backward (from the output,
// or from a bit mask kept by the forward).
//
// Each op is a scalar lambda handed to elementwise_loop, which supplies threading and the
// contiguous / broadcast-scalar / strided inner loops. Half and bfloat16 compute in float
// (at::opmath_type) and round once on store, as torch does.
#include <ATen/Dispatch.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// An integer to an integer power as torch computes it for a tensor exponent: a negative exponent
// gives 1 for a base of 1, +-1 for a base of -1 (by the exponent's parity) and 0 for any other
// base, where a negative number exponent is an error.
template <typename T>
T powi(T base, T e) {
  if constexpr (std::is_signed_v<T>) {
    if (e < 0) {
      if (base == T(1)) return T(1);
      if (base == T(-1)) return (e & 1) ? T(-1) : T(1);
      return T(0);
    }
  }
  return int_pow(base, static_cast<int64_t>(e));
}

// The iteration over (out, a) of an iteration over (out, a, b).
StridedIter<2> without_last(const StridedIter<3>& it) {
  StridedIter<2> out;
  out.ndim = it.ndim;
  out.numel = it.numel;
  for (int d = 0; d < it.ndim; ++d) {
    out.sizes[d] = it.sizes[d];
    for (int k = 0; k < 2; ++k) out.strides[k][d] = it.strides[k][d];
  }
  for (int k = 0; k < 2; ++k) out.data[k] = it.data[k];
  return out;
}

// Floating pow(a, b) for every element, with the values of torch's CPU kernel for a tensor
// exponent: pow's own special values everywhere (pow(-0, 0.5) is +0 and pow(-inf, 0.5) is +inf,
// where sqrt gives -0 and NaN). An exponent that is one value for every element (a 0-dim tensor,
// broadcast) is read once, and 2, -1 and 0.5 take x * x, 1 / x and sqrt (with pow's values at -0
// and -inf): the correctly rounded powers, in loops the compiler vectorizes, where pow is a call
// per element.
template <typename scalar_t>
void pow_float(const StridedIter<3>& it) {
  using opmath_t = at::opmath_type<scalar_t>;
  bool one_exponent = true;
  for (int d = 0; d < it.ndim; ++d) one_exponent = one_exponent && (it.strides[2][d] == 0 || it.sizes[d] == 1);
  if (!one_exponent) {
    elementwise_loop<scalar_t, 3>(it, [](scalar_t x, scalar_t y) {
      return static_cast<scalar_t>(std::pow(static_cast<opmath_t>(x), static_cast<opmath_t>(y)));
    });
    return;
  }
  const opmath_t e = static_cast<opmath_t>(*static_cast<const scalar_t*>(it.data[2]));
  auto run = [&](auto f) {
    elementwise_loop<scalar_t, 2>(without_last(it),
                                  [f](scalar_t x) { return static_cast<scalar_t>(f(static_cast<opmath_t>(x))); });
  };
  constexpr opmath_t kInf = std::numeric_limits<opmath_t>::infinity();
  if (e == opmath_t(2)) return run([](opmath_t x) { return x * x; });
  if (e == opmath_t(-1)) return run([](opmath_t x) { return opmath_t(1) / x; });
  if (e == opmath_t(0.5)) {
    return run([](opmath_t x) { return x == opmath_t(0) ? opmath_t(0) : x == -kInf ? kInf : std::sqrt(x); });
  }
  run([e](opmath_t x) { return std::pow(x, e); });
}

template <typename scalar_t>
void binary(BinaryOp op, const StridedIter<3>& it, const c10::Scalar& alpha_s) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto run = [&](auto f) {
    elementwise_loop<scalar_t, 3>(it, [f](scalar_t x, scalar_t y) {
      return static_cast<scalar_t>(f(static_cast<opmath_t>(x), static_cast<opmath_t>(y)));
    });
  };
  // alpha in the tensor dtype first, as torch's CPU add does (1/3 is 0.333984375 in bfloat16).
  const opmath_t alpha = static_cast<opmath_t>(alpha_s.to<scalar_t>());
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
    case BinaryOp::Pow:
      if constexpr (is_float_v<scalar_t>) {
        return pow_float<scalar_t>(it);
      } else if constexpr (std::is_same_v<scalar_t, bool>) {
        TORCH_INTERNAL_ASSERT(false, "pykernels: pow reached the bool kernel");
      } else {
        return run([](opmath_t x, opmath_t y) { return powi(x, y); });
      }
  }
}

template <typename scalar_t>
void binary_scalar(BinaryOp op, const StridedIter<2>& it, const c10::Scalar& other) {
  using opmath_t = at::opmath_type<scalar_t>;
  // Unchecked conversion, as torch reads the scalar: a float64 beyond float's range becomes inf.
  const opmath_t b = static_cast<opmath_t>(other.toDouble());
  auto run = [&](auto f) {
    elementwise_loop<scalar_t, 2>(it, [f](scalar_t x) { return static_cast<scalar_t>(f(static_cast<opmath_t>(x))); });
  };
  switch (op) {
    case BinaryOp::Mul:
      return run([b](opmath_t x) { return x * b; });
    case BinaryOp::Div:
      return run([b](opmath_t x) { return x / b; });
    case BinaryOp::DivTrunc:
      return run([b](opmath_t x) { return std::trunc(x / b); });
    case BinaryOp::DivFloor:
      return run([b](opmath_t x) { return div_floor_float(x, b); });
    default:
      TORCH_INTERNAL_ASSERT(false, "pykernels: no single-element kernel for this op");
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
        // float16 and bfloat16 take the exponent in their own dtype, as torch's CPU kernels do;
        // for float16 torch calls pow itself even for +-0.5, which differs from sqrt at -0 and -inf.
        constexpr bool kReduced = !std::is_same_v<scalar_t, opmath_t>;
        constexpr bool kSqrtShortcuts = !std::is_same_v<scalar_t, at::Half>;
        const opmath_t e = kReduced ? static_cast<opmath_t>(exponent.to<scalar_t>()) : exponent.to<opmath_t>();
        if (e == opmath_t(2)) return run([](opmath_t x) { return x * x; });
        if (e == opmath_t(3)) return run([](opmath_t x) { return x * x * x; });
        if (kSqrtShortcuts && e == opmath_t(0.5)) return run([](opmath_t x) { return std::sqrt(x); });
        if (kSqrtShortcuts && e == opmath_t(-0.5)) return run([](opmath_t x) { return opmath_t(1) / std::sqrt(x); });
        if (e == opmath_t(-1)) return run([](opmath_t x) { return opmath_t(1) / x; });
        if (e == opmath_t(-2)) return run([](opmath_t x) { return opmath_t(1) / (x * x); });
        return run([e](opmath_t x) { return std::pow(x, e); });
      } else {
        const int64_t e = exponent.to<int64_t>();
        return run([e](opmath_t x) { return int_pow(x, e); });
      }
  }
}

// torch's two gradients of pow(input, exponent) for a tensor exponent (pow_backward_self and
// pow_backward_exponent) for every element, computed in opmath_t and rounded once:
//   grad_input    = grad * (exponent * input^(exponent - 1)), or 0 where exponent == 0;
//   grad_exponent = grad * (result * log(input)), the factor 0 where input == 0 and exponent >= 0
// (the factor, not the product, as in torch: a NaN or infinite grad still gives NaN there).
template <typename scalar_t>
void pow_tensor_backward(const StridedIter<4>& it, scalar_t* grad_exponent, const scalar_t* result) {
  using opmath_t = at::opmath_type<scalar_t>;
  scalar_t* grad_input = static_cast<scalar_t*>(it.data[0]);
  const scalar_t* grad = static_cast<const scalar_t*>(it.data[1]);
  const scalar_t* input = static_cast<const scalar_t*>(it.data[2]);
  const scalar_t* exponent = static_cast<const scalar_t*>(it.data[3]);
  at::parallel_for(0, it.numel, kGrainSize, [&](int64_t begin, int64_t end) {
    for_range(it, begin, end, [&](const int64_t* off, int64_t n) {
      const int64_t so = it.strides[0][0], sg = it.strides[1][0], sa = it.strides[2][0], se = it.strides[3][0];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t o = off[0] + i * so;
        const opmath_t g = grad[off[1] + i * sg], x = input[off[2] + i * sa], e = exponent[off[3] + i * se];
        const opmath_t r = result[o];
        grad_input[o] = static_cast<scalar_t>(e == opmath_t(0) ? opmath_t(0) : g * (e * std::pow(x, e - opmath_t(1))));
        const bool masked = x == opmath_t(0) && e >= opmath_t(0);
        grad_exponent[o] = static_cast<scalar_t>(g * (masked ? opmath_t(0) : r * std::log(x)));
      }
    });
  });
}

}  // namespace

void binary_kernel_cpu(BinaryOp op, const StridedIter<3>& it, at::ScalarType dtype, const c10::Scalar& alpha) {
  AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, dtype, "pykernels_binary",
                             [&] { binary<scalar_t>(op, it, alpha); });
}

void binary_scalar_kernel_cpu(BinaryOp op, const StridedIter<2>& it, at::ScalarType dtype, const c10::Scalar& other) {
  AT_DISPATCH_REDUCED_FLOATING_TYPES(dtype, "pykernels_binary_scalar", [&] { binary_scalar<scalar_t>(op, it, other); });
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

void pow_tensor_backward_kernel_cpu(const StridedIter<4>& it, void* grad_exponent, const void* result,
                                    at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_pow_tensor_backward", [&] {
    pow_tensor_backward<scalar_t>(it, static_cast<scalar_t*>(grad_exponent), static_cast<const scalar_t*>(result));
  });
}

// ---- ReLU with a bit mask ---------------------------------------------------------------------
//
// The training forward keeps one bit per element (set where the output is > 0 or NaN, where
// relu_backward passes the gradient) instead of the output, so the backward reads an eighth of
// a byte per element rather than four: ReLU forward + backward, bound by memory, moves about
// 16 bytes per float element instead of 20. Bit i % 8 of byte i / 8 belongs to element i of the
// contiguous output, which is operand 0 of the iteration, so the element offset off[0] is the
// element's index. Threads take whole 64-element words, so no two write one byte.

namespace {

constexpr int64_t kMaskWord = 64;
// Whether byte b of a 64-bit word in memory is its bits 8b..8b+7 (mask_groups moves 8 mask bytes at once).
constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

// One mask byte's worth of elements, portable: out[k] = relu(a[k * sa]), bit k = !(a <= 0).
template <typename T>
struct MaskBytes {
  static uint8_t relu1(T* out, const T* a) {
    const T v = *a;
    *out = v < T(0) ? T(0) : v;  // relu's own formula: NaN and -0.0 pass through
    return static_cast<uint8_t>(!(v <= T(0)));
  }
  static uint8_t relu(T* out, const T* a, int64_t sa) {
    uint8_t bits = 0;
    for (int k = 0; k < 8; ++k) bits |= relu1(out + k, a + k * sa) << k;
    return bits;
  }
  // out[k] = bit k ? g[k * sg] : 0.
  static void pass(T* out, const T* g, int64_t sg, uint8_t bits) {
    for (int k = 0; k < 8; ++k) out[k] = (bits >> k) & 1 ? g[k * sg] : T(0);
  }
};

#if defined(__x86_64__)
// AVX2: compare eight lanes and movemask them into the byte; expand a byte back into lane masks
// by testing one bit per lane. Strided operands take the portable loop.
struct MaskBytesAvx2 {
  __attribute__((target("avx2"))) static uint8_t relu(float* out, const float* a, int64_t sa) {
    if (sa != 1) return MaskBytes<float>::relu(out, a, sa);
    const __m256 v = _mm256_loadu_ps(a), zero = _mm256_setzero_ps();
    _mm256_storeu_ps(out, _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v));
    return static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NLE_UQ)));
  }
  __attribute__((target("avx2"))) static uint8_t relu(double* out, const double* a, int64_t sa) {
    if (sa != 1) return MaskBytes<double>::relu(out, a, sa);
    const __m256d zero = _mm256_setzero_pd();
    int bits = 0;
    for (int h = 0; h < 2; ++h) {
      const __m256d v = _mm256_loadu_pd(a + 4 * h);
      _mm256_storeu_pd(out + 4 * h, _mm256_andnot_pd(_mm256_cmp_pd(v, zero, _CMP_LT_OQ), v));
      bits |= _mm256_movemask_pd(_mm256_cmp_pd(v, zero, _CMP_NLE_UQ)) << (4 * h);
    }
    return static_cast<uint8_t>(bits);
  }
  __attribute__((target("avx2"))) static void pass(float* out, const float* g, int64_t sg, uint8_t bits) {
    if (sg != 1) return MaskBytes<float>::pass(out, g, sg, bits);
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits), lane_bit), lane_bit);
    _mm256_storeu_ps(out, _mm256_and_ps(_mm256_castsi256_ps(on), _mm256_loadu_ps(g)));
  }
  __attribute__((target("avx2"))) static void pass(double* out, const double* g, int64_t sg, uint8_t bits) {
    if (sg != 1) return MaskBytes<double>::pass(out, g, sg, bits);
    const __m256i all = _mm256_set1_epi64x(bits);
    for (int h = 0; h < 2; ++h) {
      const __m256i lane_bit = _mm256_setr_epi64x(1 << (4 * h), 2 << (4 * h), 4 << (4 * h), 8 << (4 * h));
      const __m256i on = _mm256_cmpeq_epi64(_mm256_and_si256(all, lane_bit), lane_bit);
      _mm256_storeu_pd(out + 4 * h, _mm256_and_pd(_mm256_castsi256_pd(on), _mm256_loadu_pd(g + 4 * h)));
    }
  }
};
#endif

// The whole groups of 8 * sizeof(Word) elements of a run of n elements (the run starting at
// element j) from its element i, a byte boundary, on: each group builds or reads its
// sizeof(Word) mask bytes as one Word. Whole 64-element groups (Word = uint64_t) come first:
// with a byte stored or loaded per 8 elements, both mask ops took 1.2-1.5x the time at 2^20
// floats on two AVX2 threads. kUnit: the input is contiguous, so its stride is the constant 1,
// which lets the compiler drop the strided branch from the loop. Returns the index after the
// last group.
template <typename Word, bool kForward, bool kUnit, typename Bytes, typename T, typename Mask>
__attribute__((always_inline)) inline int64_t mask_groups(T* out, const T* in, int64_t s, int64_t n, Mask* mask,
                                                          int64_t j, int64_t i) {
  constexpr int kBytes = sizeof(Word);
  if constexpr (kUnit) s = 1;
  for (; i + 8 * kBytes <= n; i += 8 * kBytes) {
    Mask* at = mask + ((j + i) >> 3);
    Word bits = 0;
    if constexpr (kForward) {
#pragma GCC unroll 8
      for (int b = 0; b < kBytes; ++b)
        bits |= static_cast<Word>(Word{Bytes::relu(out + i + 8 * b, in + (i + 8 * b) * s, s)} << (8 * b));
      std::memcpy(at, &bits, kBytes);
    } else {
      std::memcpy(&bits, at, kBytes);
#pragma GCC unroll 8
      for (int b = 0; b < kBytes; ++b)
        Bytes::pass(out + i + 8 * b, in + (i + 8 * b) * s, s, static_cast<uint8_t>(bits >> (8 * b)));
    }
  }
  return i;
}

// Whole words where byte b of a word is its bits 8b..8b+7 (little-endian), then whole bytes.
template <bool kForward, bool kUnit, typename Bytes, typename T, typename Mask>
__attribute__((always_inline)) inline int64_t mask_bytes(T* out, const T* in, int64_t s, int64_t n, Mask* mask,
                                                         int64_t j, int64_t i) {
  if constexpr (kLittleEndian) i = mask_groups<uint64_t, kForward, kUnit, Bytes>(out, in, s, n, mask, j, i);
  return mask_groups<uint8_t, kForward, kUnit, Bytes>(out, in, s, n, mask, j, i);
}

// One run of elements [j, j + n), the run starting at element j, either way:
//   forward (kForward): out = relu(in) and the mask bits set, `mask` being written;
//   backward: out = in (the gradient) where the mask bit is set, else 0.
// Elements before the run's first byte boundary and after its last are done bit by bit.
template <bool kForward, typename Bytes, typename T, typename Mask>
__attribute__((always_inline)) inline void mask_run(T* out, const T* in, int64_t s, int64_t n, Mask* mask, int64_t j) {
  auto one = [&](int64_t i) {
    if constexpr (kForward) {
      mask[(j + i) >> 3] |= MaskBytes<T>::relu1(out + i, in + i * s) << ((j + i) & 7);
    } else {
      out[i] = (mask[(j + i) >> 3] >> ((j + i) & 7)) & 1 ? in[i * s] : T(0);
    }
  };
  int64_t i = 0;
  for (; i < n && ((j + i) & 7); ++i) one(i);
  i = s == 1 ? mask_bytes<kForward, true, Bytes>(out, in, s, n, mask, j, i)
             : mask_bytes<kForward, false, Bytes>(out, in, s, n, mask, j, i);
  for (; i < n; ++i) one(i);
}

#if defined(__x86_64__)
template <bool kForward, typename T, typename Mask>
__attribute__((target("avx2"), noinline)) void mask_run_avx2(T* out, const T* in, int64_t s, int64_t n, Mask* mask,
                                                             int64_t j) {
  mask_run<kForward, MaskBytesAvx2>(out, in, s, n, mask, j);
}
#endif

// The mask op over the whole iteration (out, in), threads taking whole mask words; the forward
// first clears each thread's bytes of the mask it writes.
template <bool kForward, typename T, typename Mask>
void mask_op(const StridedIter<2>& it, Mask* mask) {
  T* out = static_cast<T*>(it.data[0]);
  const T* in = static_cast<const T*>(it.data[1]);
  const int64_t s = it.strides[1][0];
  const int64_t words = (it.numel + kMaskWord - 1) / kMaskWord, bytes = (it.numel + 7) / 8;
  [[maybe_unused]] const bool avx2 = takes_avx2_loops<T>();
  at::parallel_for(0, words, kGrainSize / kMaskWord, [&](int64_t w0, int64_t w1) {
    if constexpr (kForward) std::memset(mask + w0 * 8, 0, std::min(bytes, w1 * 8) - w0 * 8);
    for_range(it, w0 * kMaskWord, std::min(it.numel, w1 * kMaskWord), [&](const int64_t* off, int64_t n) {
#if defined(__x86_64__)
      if constexpr (kHasAvx2Loops<T>) {
        if (avx2) return mask_run_avx2<kForward>(out + off[0], in + off[1], s, n, mask, off[0]);
      }
#endif
      mask_run<kForward, MaskBytes<T>>(out + off[0], in + off[1], s, n, mask, off[0]);
    });
  });
}

}  // namespace

void relu_mask_kernel_cpu(const StridedIter<2>& it, uint8_t* mask, at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_relu_and_mask",
                                  [&] { mask_op<true, scalar_t>(it, mask); });
}

void relu_mask_backward_kernel_cpu(const StridedIter<2>& it, const uint8_t* mask, at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "pykernels_relu_mask_backward",
                                  [&] { mask_op<false, scalar_t>(it, mask); });
}

}  // namespace pykernels
