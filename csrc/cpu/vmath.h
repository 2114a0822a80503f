// float32 exp and log written as straight-line arithmetic and bit manipulation, with no calls
// into libm and no branches (special cases are selected at the end), so that the compiler
// vectorizes the elementwise loops that use them (every value is computed, then selected: a
// conditional computation would stop that), for whatever target each loop is compiled
// (cpu/loops.h): every variant then computes the very same values. libm's expf/logf are scalar
// calls, ten times slower than torch's vectorized SLEEF kernels.
//
// Both are the classic Cephes reductions and polynomials (about 1 ulp): exp as 2^n * e^r with
// |r| <= ln2/2, log as e * ln2 + log(m) with m in [sqrt(1/2), sqrt(2)).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace pykernels {
namespace vmath {

// std::bit_cast is C++20, and older torch releases (2.4 among them) build extensions as C++17: this is
// its C++17 form, which the compiler turns into a register move (it still vectorizes).
template <typename To, typename From>
inline To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs types of the same size");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

// 2^n as a float, for integer-valued n in [-126, 127].
inline float pow2i(float n) { return bit_cast<float>((static_cast<int32_t>(n) + 127) << 23); }

inline float exp(float x) {
  constexpr float kHi = 88.8f;    // e^x overflows above 88.7228...
  constexpr float kLo = -104.0f;  // and is 0 (after rounding) below -103.97...
  const bool nan = x != x;
  float v = nan ? 0.0f : x;
  v = v > kHi ? kHi : v;
  v = v < kLo ? kLo : v;
  // n = round(v / ln2): adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
  const float n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // r = v - n * ln2, with ln2 split in two so that n * ln2_hi is exact (Cody-Waite).
  float r = v - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  // 2^n in two factors, each a normal float, so that results in the subnormal range (n < -126)
  // and overflow to infinity (n = 128) come out right.
  const float half = static_cast<float>(static_cast<int32_t>(n) / 2);
  const float result = y * pow2i(half) * pow2i(n - half);
  return nan ? x : result;
}

inline float log(float x) {
  constexpr float kMinNormal = std::numeric_limits<float>::min();
  // Subnormals are scaled into the normal range first (by 2^23, undone through the exponent).
  const bool subnormal = x < kMinNormal;
  const float scaled = x * 8388608.0f;
  const float v = subnormal ? scaled : x;
  const int32_t bits = bit_cast<int32_t>(v);
  const float e_adjust = subnormal ? 23.0f : 0.0f;
  float e = static_cast<float>((bits >> 23) - 127) - e_adjust;
  float m = bit_cast<float>((bits & 0x007fffff) | 0x3f800000);  // in [1, 2)
  const bool big = m > 1.41421356237f;
  const float m_half = m * 0.5f, e_next = e + 1.0f;
  m = big ? m_half : m;
  e = big ? e_next : e;
  const float f = m - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y = y + -2.12194440e-4f * e;
  y = y - 0.5f * z;
  float result = f + y + 0.693359375f * e;
  // Special cases: log(0) = -inf, log(negative) = nan, log(inf) = inf, nan stays nan.
  result = x == 0.0f ? -std::numeric_limits<float>::infinity() : result;
  result = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : result;
  result = x == std::numeric_limits<float>::infinity() ? x : result;
  return x != x ? x : result;
}

}  // namespace vmath
}  // namespace pykernels
