// GCC vector types for the reduction loops (cpu/reduce.cpp, cpu/mse_loss.cpp). Written with
// plain arrays of lanes, those loops kept their partial sums on the stack (a store and a reload
// around every add, or around every loop); vector-typed locals stay in registers. 32-byte
// vectors are one register in the AVX2 variants and two SSE registers in the baseline build.
#pragma once

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

// acc += the low / high four floats of v, as doubles.
__attribute__((always_inline)) inline void add_low(Vec4d& acc, const Vec8f& v) {
  acc += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), Vec4d);
}
__attribute__((always_inline)) inline void add_high(Vec4d& acc, const Vec8f& v) {
  acc += __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), Vec4d);
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
