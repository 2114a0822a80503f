// The order in which the CUDA GEMM kernels walk their output tiles (shared by gemm.cu and
// gemm_sm90.cu).
#pragma once

#include <cstdint>

namespace pykernels {
namespace cuda {

constexpr int kGroupM = 8;

// Tile t -> (batch, tile row, tile column). Within a batch, tiles go column by column through
// groups of kGroupM tile rows, so consecutive blocks reuse the same B columns and A rows in L2.
__device__ __forceinline__ void tile_coords(int64_t tiles_m, int64_t tiles_n, int64_t t, int64_t& batch, int64_t& tm,
                                            int64_t& tn) {
  const int64_t per_batch = tiles_m * tiles_n;
  batch = t / per_batch;
  const int64_t r = t - batch * per_batch;
  const int64_t group = r / (kGroupM * tiles_n);
  const int64_t first_m = group * kGroupM;
  const int64_t rows = tiles_m - first_m < kGroupM ? tiles_m - first_m : kGroupM;
  const int64_t in_group = r - group * kGroupM * tiles_n;
  tm = first_m + in_group % rows;
  tn = in_group / rows;
}

}  // namespace cuda
}  // namespace pykernels
