// GCC vector types for the reduction loops (cpu/reduce.cpp, cpu/mse_loss.cpp). Written with
// plain arrays of lanes, those loops kept their partial sums on the stack (a store and a reload
// around every add, or around every loop); vector-typed locals stay in registers. 32-byte
// vectors are one register in the AVX2 variants and two SSE registers in the baseline build.
#pragma once

#include <cstdint>
#include <cstring>

namespace pykernels {
namespace cpu {

typedef float Vec4f __attribute__((vector_size(16)));
typedef float Vec8f __attribute__((vector_size(32)));
typedef double Vec4d __attribute__((vector_size(32)));

// v = the elements at p (unaligned); through a reference, as returning a 32-byte vector from a
// function not inlined would change the ABI between the two builds.
template <typename V, typename T>
__attribute__((always_inline)) inline void load(V& v, const T* p) {
  std::memcpy(&v, p, sizeof(V));
}

template <typename V, typename T>
__attribute__((always_inline)) inline void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Four lanes of T (float or double).
template <typename T>
struct Vec4;
template <>
struct Vec4<float> {
  typedef Vec4f type;
};
template <>
struct Vec4<double> {
  typedef Vec4d type;
};

// acc[2 * i] += the low four floats of part[i], acc[2 * i + 1] += the high four, as doubles: a
// float block's partial sums joining the double lanes.
template <int n>
__attribute__((always_inline)) inline void add_halves(Vec4d* acc, const Vec8f* part) {
  for (int i = 0; i < n; ++i) {
    // The halves by memcpy rather than __builtin_shufflevector, which GCC has only from 12 on.
    Vec4f low, high;
    std::memcpy(&low, &part[i], sizeof(low));
    std::memcpy(&high, reinterpret_cast<const char*>(&part[i]) + sizeof(low), sizeof(high));
    acc[2 * i] += __builtin_convertvector(low, Vec4d);
    acc[2 * i + 1] += __builtin_convertvector(high, Vec4d);
  }
}

// The float blocks of a contiguous sum, from element i while whole blocks fit in n: each block
// adds `block` 8-float vectors per 8 lanes in float (term(j, v) sets v to the terms of elements
// j..j+7), then joins acc, `lanes` double lanes. Returns where the blocks stopped.
template <int lanes, int block, typename Term>
__attribute__((always_inline)) inline int64_t add_float_blocks(int64_t i, int64_t n, Vec4d* acc, Term&& term) {
  for (; i + lanes * block <= n; i += lanes * block) {
    Vec8f part[lanes / 8] = {};
#pragma GCC unroll 1  // unrolled, a block's vectors get scheduled into more registers than there are
    for (int b = 0; b < block; ++b)
      for (int v = 0; v < lanes / 8; ++v) {
        Vec8f t;
        term(i + b * lanes + 8 * v, t);
        part[v] += t;
      }
    add_halves<lanes / 8>(acc, part);
  }
  return i;
}

// The sum of the lanes of acc[0..n) (n a power of two), pairwise: log2(n) + 2 dependent adds.
template <int n>
__attribute__((always_inline)) inline double sum_lanes(Vec4d* acc) {
  for (int w = n / 2; w > 0; w /= 2)
    for (int v = 0; v < w; ++v) acc[v] += acc[v + w];
  return (acc[0][0] + acc[0][2]) + (acc[0][1] + acc[0][3]);
}

}  // namespace cpu
}  // namespace pykernels
