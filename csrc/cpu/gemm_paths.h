// The CPU GEMM's parts, split as BLIS splits a GEMM, and what each offers the others:
//   cpu/gemm_driver.cpp    gemm_kernel_cpu: picks the path by dtype; for float32 and float64, cuts
//                          the work among threads and runs the blocked loop nest (cpu/gemm_blocked.h)
//                          over the best microkernel this CPU has;
//   cpu/gemm_portable.cpp  the portable microkernel, for CPUs without the SIMD ones
//                          (cpu/gemm_avx2.cpp, cpu/gemm_avx512.cpp);
//   cpu/gemm_wide.cpp      float16, bfloat16 and integers, accumulated in a wider type.
// Plain C++, like cpu/gemm_ukernel.h: the portable kernel needs no torch headers.
#pragma once

#include <cstdint>

#include "cpu/gemm_ukernel.h"

namespace pykernels {

struct GemmProblem;  // kernels.h

namespace cpu {

// Below this many multiply-adds a product runs on the calling thread: waking threads costs more.
constexpr int64_t kParallelWork = int64_t(1) << 20;

// The portable microkernel's register tile: 4 rows x two 16-byte vectors (4 x 8 floats,
// 4 x 4 doubles). The driver instantiates its loop nest for this tile at compile time.
constexpr int kPortableMR = 4;
template <typename T>
constexpr int kPortableNR = 2 * 16 / static_cast<int>(sizeof(T));
const GemmKernelInfo<float>& portable_gemm_kernel_f32();
const GemmKernelInfo<double>& portable_gemm_kernel_f64();

// C = A @ B for float16, bfloat16 and the integer dtypes (cpu/gemm_wide.cpp).
void gemm_wide(const GemmProblem& p);

}  // namespace cpu
}  // namespace pykernels
