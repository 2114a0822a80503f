// AVX2+FMA GEMM microkernels (the contract is in cpu/gemm_ukernel.h).
//
// This translation unit alone is compiled for AVX2+FMA, by `#pragma GCC target` below rather than
// by build flags, so the rest of the extension keeps the x86-64 baseline and runs on any CPU; the
// driver calls these kernels only after cpu_has_avx2_fma() (cpu/cpu_features.h) said yes at run
// time.
//
// Register tile: 6 rows x 2 vectors (6 x 16 floats, 6 x 8 doubles). AVX2 has 16 ymm registers:
// 12 hold the accumulators, 2 the current row of B, 1 the broadcast element of A. Per k step
// that is 12 FMAs against 2 vector loads and 6 broadcasts, which keeps both FMA pipes of a
// Zen 3 / Haswell-class core busy (2 FMAs per cycle, up to 3 loads per cycle), and the 12
// independent accumulators cover the 4-5 cycle FMA latency. Edge tiles (fewer rows or
// columns) use the same code with the row count and vector count as template parameters, so
// a partial tile costs only its own work.
#include "cpu/gemm_ukernel.h"

#if defined(__x86_64__)

// Everything from here to the pop is compiled for AVX2+FMA.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "cpu/gemm_simd_tile.h"
#include "cpu/gemm_vec256.h"

namespace pykernels {
namespace cpu {
namespace {

constexpr int kMR = 6;  // rows of the register tile
// Dot-product tiles: 3 rows x 4 columns, 12 accumulators plus 3 vectors of A and 1 of B: all 16
// registers.
constexpr int kDotMR = 3;

}  // namespace

// Cache blocks, tuned on Zen 3 (32 KiB L1d, 512 KiB L2 per core): the KC x NR sliver of B
// (16 KiB for float) stays in L1 while the MC x KC block of A (144 KiB) streams from L2.
extern const GemmKernelInfo<float> kAvx2F32 = simd_tile::kernel_info<Vec256<float>, kMR, kDotMR>(144, 256, 4080);
extern const GemmKernelInfo<double> kAvx2F64 = simd_tile::kernel_info<Vec256<double>, kMR, kDotMR>(144, 256, 4080);

}  // namespace cpu
}  // namespace pykernels

#pragma GCC pop_options

namespace pykernels {
namespace cpu {

const GemmKernelInfo<float>& avx2_gemm_kernel_f32() { return kAvx2F32; }
const GemmKernelInfo<double>& avx2_gemm_kernel_f64() { return kAvx2F64; }

}  // namespace cpu
}  // namespace pykernels

#endif  // __x86_64__
