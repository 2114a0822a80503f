// CUDA GEMM for mm, bmm and matmul: C[b] = A[b] @ B[b] for every batch index, any strides.
//
// The kernels (SIMT for float32/float64, mma.sync tensor cores for float16/bfloat16) and their
// tiling are in gemm_kernels.cuh, shared with the fused linear layer; this file chooses among
// them and records which one ran. On compute capability 9.x, float16/bfloat16 can opt in
// (PYKERNELS_GEMM_SM90=1) to the Hopper kernel of gemm_sm90.cu (wgmma + TMA, 128x256 tiles,
// warp-specialised) for large problems whose operands TMA can load; the others stay on mma.sync.
// It is compiled only in builds with an sm_90a target (see setup.py).
// Other dtypes raise NotImplementedError, as torch's CUDA matmul does.
#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/gemm_kernels.cuh"
#include "kernels.h"
#ifdef PYKERNELS_WITH_SM90A
#include "cuda/gemm_sm90.h"
#endif

namespace pykernels {
namespace {

// The kernel the calling thread launched last, for gemm_last_kernel_cuda(): tests cannot see the
// selection rule's outcome (tile size, load direction, vector loads) from the result alone.
thread_local cuda::GemmLaunch last_launch;

#ifdef PYKERNELS_WITH_SM90A
// PYKERNELS_GEMM_SM90=1 in the environment (read once, at first use) lets float16/bfloat16
// GEMMs on Hopper take the wgmma + TMA kernel. It is opt-in because that kernel has not yet
// been validated on a GPU; without the variable every GPU runs the mma.sync kernel.
bool sm90_gemm_requested() {
  static const bool requested = [] {
    const char* v = std::getenv("PYKERNELS_GEMM_SM90");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return requested;
}
#endif

}  // namespace

std::string gemm_last_kernel_cuda() {
  const cuda::GemmLaunch& r = last_launch;
  if (r.kernel == nullptr) return "";
  if (std::strcmp(r.kernel, "sm90") == 0) return c10::str(r.kernel, " ", r.bm, "x", r.bn);  // TMA loads only
  return c10::str(r.kernel, " ", r.bm, "x", r.bn, " a:", r.a_kmajor ? "k" : "m", r.a_vec ? "+vec" : "",
                  " b:", r.b_kmajor ? "k" : "n", r.b_vec ? "+vec" : "");
}

void gemm_kernel_cuda(const GemmProblem& p) {
  if (p.m == 0 || p.n == 0 || p.batch.numel == 0) return;
  // torch's CUDA matmul raises NotImplementedError for other dtypes too ("addmm_cuda" not implemented ...)
  TORCH_CHECK_NOT_IMPLEMENTED(
      p.dtype == at::kFloat || p.dtype == at::kDouble || p.dtype == at::kHalf || p.dtype == at::kBFloat16,
      "pykernels.mm/bmm/matmul: \"gemm_cuda\" not implemented for '", p.dtype,
      "' (on CUDA, only float16, bfloat16, float32 and float64 are supported, as in torch)");
#ifdef PYKERNELS_WITH_SM90A
  // gemm_sm90 launches nothing and returns false for problems it does not take.
  if ((p.dtype == at::kHalf || p.dtype == at::kBFloat16) && cuda::compute_capability_major() == 9 &&
      sm90_gemm_requested() && cuda::gemm_sm90(p)) {
    last_launch = cuda::GemmLaunch{"sm90", 128, 256};
    return;
  }
#endif
  last_launch = cuda::launch_gemm(p, cuda::NoFusion{});
}

}  // namespace pykernels
