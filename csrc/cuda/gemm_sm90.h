// The Hopper GEMM (cuda/gemm_sm90.cu). It exists only in builds with an sm_90a target, which
// define PYKERNELS_WITH_SM90A (see setup.py).
#pragma once

#include "kernels.h"

namespace pykernels {
namespace cuda {

// C = A @ B for float16/bfloat16 with wgmma and TMA, on a GPU of compute capability 9.0. Returns
// false, having launched nothing, when the problem does not meet the kernel's size, layout and
// alignment constraints (listed in gemm_sm90.cu); the caller then uses another kernel.
bool gemm_sm90(const GemmProblem& p);

}  // namespace cuda
}  // namespace pykernels
