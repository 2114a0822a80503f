// The portable GEMM microkernel: one register tile of C = A @ B (the contract is in
// cpu/gemm_ukernel.h), for float32 and float64 on CPUs the SIMD kernels do not cover (older
// x86-64, aarch64, ...) or with PYKERNELS_NO_AVX2=1 (cpu/cpu_features.h). The driver
// (cpu/gemm_driver.cpp) runs its blocked loop nest over it as over the SIMD kernels.
//
// Tiling: 4 rows x 2 vectors (4 x 8 floats, 4 x 4 doubles), 8 accumulators. The kernel is written
// with GCC/Clang vector extensions (16-byte vectors: SSE2 on x86-64, NEON on aarch64) rather than
// plain loops, so that the tile is explicitly kept in vector registers whatever the compiler's
// vectorizer decides for the baseline target. Edge tiles are template instances by row count, so a
// partial tile costs only its own work; packed operands get compile-time strides.
#include <cstring>

#include "cpu/gemm_paths.h"
#include "cpu/gemm_ukernel.h"

namespace pykernels {
namespace cpu {
namespace {

template <typename T>
struct GenericVec {
  static constexpr int kLanes = 16 / sizeof(T);
  typedef T type __attribute__((vector_size(16)));
};

template <typename T, int M, int MR, int NR, bool kPacked>
__attribute__((noinline)) void generic_tile(int64_t kc, int64_t nr, const T* __restrict__ a, int64_t a_rs, int64_t a_cs,
                                            const T* __restrict__ b, int64_t b_rs, T* __restrict__ c, int64_t c_rs,
                                            int64_t c_cs, bool accumulate, const GemmEpilogue<T>* epilogue) {
  using V = typename GenericVec<T>::type;
  constexpr int W = GenericVec<T>::kLanes, NV = NR / W;
  static_assert(NR % W == 0, "NR must be a whole number of vectors");
  if constexpr (kPacked) {
    a_rs = 1;
    a_cs = MR;
    b_rs = NR;
  }
  V acc[M][NV];
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + v * W, sizeof(V));
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r) {
      const V av = V{} + a[r * a_rs];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
    a += a_cs;
    b += b_rs;
  }
  // An epilogue takes the scalar edge path: this kernel only serves CPUs without the SIMD ones.
  if (nr == NR && c_cs == 1 && epilogue == nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* cv = c + r * c_rs + v * W;
        V x = acc[r][v];
        if (accumulate) {
          V old;
          std::memcpy(&old, cv, sizeof(V));
          x = old + x;
        }
        std::memcpy(cv, &x, sizeof(V));
      }
    }
  } else {
    T t[M][NR];
    std::memcpy(t, acc, sizeof(t));
    store_tile_edge(&t[0][0], NR, 1, M, nr, c, c_rs, c_cs, accumulate, epilogue);
  }
}

template <typename T, int MR, int NR>
void generic_microkernel(int64_t kc, int64_t mr, int64_t nr, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                         int64_t b_rs, T* c, int64_t c_rs, int64_t c_cs, bool accumulate,
                         const GemmEpilogue<T>* epilogue) {
  static_assert(MR == 4, "the row dispatch below covers 1..4 rows");
  if (mr == MR && a_rs == 1 && a_cs == MR && b_rs == NR)
    return generic_tile<T, MR, MR, NR, true>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
  switch (mr) {
    case 4:
      return generic_tile<T, 4, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
    case 3:
      return generic_tile<T, 3, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
    case 2:
      return generic_tile<T, 2, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
    default:
      return generic_tile<T, 1, MR, NR, false>(kc, nr, a, a_rs, a_cs, b, b_rs, c, c_rs, c_cs, accumulate, epilogue);
  }
}

// Cache blocks MC x KC x NC = 144 x 256 x 4096. No transposing packs and no dot-product path: the
// hooks after the microkernel stay null, and the driver uses its own loops instead.
template <typename T>
const GemmKernelInfo<T>& portable_kernel_info() {
  constexpr int NR = kPortableNR<T>;
  static_assert(kPortableMR == 4 && NR == 2 * GenericVec<T>::kLanes, "the tile declared in cpu/gemm_paths.h");
  static const GemmKernelInfo<T> info{kPortableMR, NR, 144, 256, 4096, &generic_microkernel<T, kPortableMR, NR>};
  return info;
}

}  // namespace

const GemmKernelInfo<float>& portable_gemm_kernel_f32() { return portable_kernel_info<float>(); }
const GemmKernelInfo<double>& portable_gemm_kernel_f64() { return portable_kernel_info<double>(); }

}  // namespace cpu
}  // namespace pykernels
