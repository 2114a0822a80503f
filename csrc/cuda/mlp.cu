// CUDA kernels for the fused two-layer MLP (kernels.h, MlpForward and MlpBackward), hidden <= 128:
//   forward   hidden = relu(input @ w1^T + b1), out = hidden @ w2^T + b2
//   backward  g_h = (grad_out @ w2) where hidden > 0, else 0 (torch's threshold_backward)
//             grad_input = g_h @ w1, grad_w1 = g_h^T @ input, grad_b1 = sum over rows of g_h,
//             grad_w2 = grad_out^T @ hidden, grad_b2 = sum over rows of grad_out
// Every operand is contiguous; biases and each gradient are optional (null).
//
// One launch per direction, in the manner of tiny-cuda-nn's fully fused MLPs: the hidden layer
// is narrow enough for a block to keep all of it, for 32 batch rows, in shared memory, so it
// never makes a round trip through global memory between the two products.
//   forward   each block takes 32 batch rows at a time: hidden (32 x hidden) from input and w1,
//             bias and ReLU applied in registers, written to hidden_out and kept in shared
//             memory; then out, 128 columns at a time, from that tile and w2.
//   backward  blocks take one of three roles, so that every output element is written by
//             exactly one block and summed in a fixed order (deterministic, no atomics):
//               grad_w1 / grad_b1  a 128-column slice of grad_w1 (all hidden rows): the block
//                                  walks the whole batch 32 rows at a time, recomputing those
//                                  rows' g_h (cheap: 32 x hidden x out_features) and adding
//                                  g_h^T @ input; the first slice's block also sums grad_b1;
//               grad_w2 / grad_b2  128 rows of grad_w2 (all hidden columns): grad_out^T @ hidden
//                                  over the whole batch, and the same rows of grad_b2;
//               grad_input         32 batch rows: their g_h, then g_h @ w1.
//             Blocks cannot wait for each other, so g_h is recomputed by each block that needs
//             it rather than shared through memory; the weight-gradient blocks are numbered
//             first, so their long walks over the batch start first.
//
// The products are SIMT (float accumulation for float16/bfloat16, double for float64): 256
// threads as 8 warps x 32 lanes, each thread owning TR consecutive rows and the columns lane,
// lane + 32, ... of a block tile, so a warp reads one broadcast value per row and 32 consecutive
// values per column group from shared memory (no bank conflicts). Operand tiles are staged in
// shared memory in the accumulator's type, k-major, KC k-values at a time (32; 16 for float64 to
// bound shared memory), zero-filled past the matrix edges; loads from global memory run along
// the operand's contiguous dimension. Rows are padded to an odd length so the transposing stores
// do not conflict. Hidden activations and g_h are rounded to the dtype before they are used, as
// the unfused layers would store them.
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/ptx.cuh"  // dynamic_smem
#include "kernels.h"

namespace pykernels {
namespace {

constexpr int kThreads = 256;    // 8 warps
constexpr int kRows = 32;        // batch rows per step
constexpr int kCols = 128;       // output columns (or rows of a weight gradient) per block tile
constexpr int kMaxHidden = 128;  // the largest hidden size the kernels take

template <typename acc_t>
constexpr int k_chunk() {
  return sizeof(acc_t) == 8 ? 16 : 32;
}

// S[k * ld + j] = G[(k0 + k) * ks + (j0 + j) * js] for k < KC, j < J; zero where k0 + k >= kmax or
// j0 + j >= jmax. Consecutive threads take consecutive j when J_CONTIG (js == 1), else
// consecutive k (ks == 1), so global loads coalesce.
template <int KC, int J, bool J_CONTIG, typename T, typename acc_t>
__device__ __forceinline__ void load_tile(acc_t* S, int ld, const T* G, int64_t ks, int64_t js, int64_t k0,
                                          int64_t kmax, int64_t j0, int64_t jmax) {
  for (int idx = threadIdx.x; idx < KC * J; idx += kThreads) {
    const int k = J_CONTIG ? idx / J : idx % KC, j = J_CONTIG ? idx % J : idx / KC;
    const int64_t gk = k0 + k, gj = j0 + j;
    S[k * ld + j] = gk < kmax && gj < jmax ? static_cast<acc_t>(G[gk * ks + gj * js]) : acc_t(0);
  }
}

// acc[r][c] += sum over k < kc of As[k * lda + row] * Bs[k * ldb + col] for this thread's rows
// row = warp * TR + r and columns col = lane + 32 * c.
template <int TR, int TC, typename acc_t>
__device__ __forceinline__ void tile_fma(acc_t (&acc)[TR][TC], const acc_t* As, int lda, const acc_t* Bs, int ldb,
                                         int kc) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int k = 0; k < kc; ++k) {
    acc_t a[TR], b[TC];
#pragma unroll
    for (int r = 0; r < TR; ++r) a[r] = As[k * lda + warp * TR + r];
#pragma unroll
    for (int c = 0; c < TC; ++c) b[c] = Bs[k * ldb + lane + 32 * c];
#pragma unroll
    for (int r = 0; r < TR; ++r)
#pragma unroll
      for (int c = 0; c < TC; ++c) acc[r][c] += a[r] * b[c];
  }
}

template <int TR, int TC, typename acc_t>
__device__ __forceinline__ void zero(acc_t (&acc)[TR][TC]) {
#pragma unroll
  for (int r = 0; r < TR; ++r)
#pragma unroll
    for (int c = 0; c < TC; ++c) acc[r][c] = acc_t(0);
}

template <typename T, typename acc_t>
__device__ __forceinline__ acc_t round_to(acc_t v) {
  return static_cast<acc_t>(static_cast<T>(v));
}

// The shared-memory layout of both kernels, in acc_t elements: two operand tiles of KC rows by
// up to 128 (+1) columns, and one 32-row activation tile stored either way round.
template <typename acc_t, int HMAX>
struct Smem {
  static constexpr int KC = k_chunk<acc_t>();
  static constexpr int LD = kCols + 1;  // As and Bs
  static constexpr int LD_ROWS = kRows + 1, LD_HIDDEN = HMAX + 1;
  static constexpr int TILE = KC * LD;
  static constexpr int HIDDEN = HMAX * LD_ROWS > kRows* LD_HIDDEN ? HMAX * LD_ROWS : kRows * LD_HIDDEN;
  static constexpr size_t bytes = (2 * TILE + HIDDEN) * sizeof(acc_t);
};

// ================================================================================================
// Forward

template <typename T, typename acc_t, int HMAX>
__global__ void __launch_bounds__(kThreads) mlp_forward_kernel(const __grid_constant__ MlpForward p) {
  using S = Smem<acc_t, HMAX>;
  constexpr int KC = S::KC, HC = HMAX / 32;
  acc_t* const As = reinterpret_cast<acc_t*>(cuda::dynamic_smem());
  acc_t* const Bs = As + S::TILE;
  acc_t* const Hs = Bs + S::TILE;  // Hs[h * LD_ROWS + b]: the A operand of the second product
  const T* input = static_cast<const T*>(p.input);
  const T* w1 = static_cast<const T*>(p.w1);
  const T* b1 = static_cast<const T*>(p.b1);
  const T* w2 = static_cast<const T*>(p.w2);
  const T* b2 = static_cast<const T*>(p.b2);
  T* hidden_out = static_cast<T*>(p.hidden_out);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  for (int64_t b0 = static_cast<int64_t>(blockIdx.x) * kRows; b0 < p.batch;
       b0 += static_cast<int64_t>(gridDim.x) * kRows) {
    // hidden (32 x HMAX) = input rows @ w1^T: A(k = i, row = b), B(k = i, col = h)
    acc_t acc[4][HC];
    zero(acc);
    for (int64_t k0 = 0; k0 < p.in; k0 += KC) {
      load_tile<KC, kRows, false>(As, S::LD_ROWS, input, 1, p.in, k0, p.in, b0, p.batch);
      load_tile<KC, HMAX, false>(Bs, S::LD, w1, 1, p.in, k0, p.in, 0, p.hidden);
      __syncthreads();
      tile_fma(acc, As, S::LD_ROWS, Bs, S::LD, KC);
      __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int b = warp * 4 + r;
#pragma unroll
      for (int c = 0; c < HC; ++c) {
        const int h = lane + 32 * c;
        if (h >= p.hidden) continue;
        acc_t v = acc[r][c];
        if (b1 != nullptr) v += static_cast<acc_t>(b1[h]);
        v = round_to<T>(v < acc_t(0) ? acc_t(0) : v);  // NaN propagates, as in torch's relu
        Hs[h * S::LD_ROWS + b] = v;
        if (hidden_out != nullptr && b0 + b < p.batch) hidden_out[(b0 + b) * p.hidden + h] = static_cast<T>(v);
      }
    }
    __syncthreads();
    if (out == nullptr) continue;

    // out (32 x 128 columns at a time) = hidden @ w2^T: A = Hs(k = h, row = b), B(k = h, col = o)
    for (int64_t o0 = 0; o0 < p.out_features; o0 += kCols) {
      acc_t acc2[4][4];
      zero(acc2);
      for (int h0 = 0; h0 < p.hidden; h0 += KC) {
        load_tile<KC, kCols, false>(Bs, S::LD, w2, 1, p.hidden, h0, p.hidden, o0, p.out_features);
        __syncthreads();
        tile_fma(acc2, Hs + h0 * S::LD_ROWS, S::LD_ROWS, Bs, S::LD,
                 (p.hidden - h0 < KC ? static_cast<int>(p.hidden - h0) : KC));
        __syncthreads();
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int64_t b = b0 + warp * 4 + r;
        if (b >= p.batch) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int64_t o = o0 + lane + 32 * c;
          if (o >= p.out_features) continue;
          acc_t v = acc2[r][c];
          if (b2 != nullptr) v += static_cast<acc_t>(b2[o]);
          out[b * p.out_features + o] = static_cast<T>(v);
        }
      }
    }
  }
}

// ================================================================================================
// Backward

// How many blocks take each role; blockIdx.x < w1_blocks: grad_w1 slices, then w2_blocks grad_w2
// row groups, then row_blocks blocks striding over the batch for grad_input.
struct Roles {
  unsigned int w1_blocks, w2_blocks, row_blocks;
};

// g_h for batch rows b0 .. b0 + 31 (row b = warp * 4 + r, column h = lane + 32 * c of acc):
// (grad_out @ w2) where hidden_act > 0, rounded to T; 0 outside the batch and past hidden.
template <typename T, typename acc_t, int HMAX>
__device__ __forceinline__ void hidden_grad(acc_t (&acc)[4][HMAX / 32], const MlpBackward& p, int64_t b0, acc_t* As,
                                            acc_t* Bs) {
  using S = Smem<acc_t, HMAX>;
  constexpr int KC = S::KC;
  const T* grad_out = static_cast<const T*>(p.grad_out);
  const T* w2 = static_cast<const T*>(p.w2);
  const T* hidden_act = static_cast<const T*>(p.hidden_act);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  zero(acc);
  // A(k = o, row = b) = grad_out[b][o], B(k = o, col = h) = w2[o][h]
  for (int64_t k0 = 0; k0 < p.out_features; k0 += KC) {
    load_tile<KC, kRows, false>(As, S::LD_ROWS, grad_out, 1, p.out_features, k0, p.out_features, b0, p.batch);
    load_tile<KC, HMAX, true>(Bs, S::LD, w2, p.hidden, 1, k0, p.out_features, 0, p.hidden);
    __syncthreads();
    tile_fma(acc, As, S::LD_ROWS, Bs, S::LD, KC);
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t b = b0 + warp * 4 + r;
#pragma unroll
    for (int c = 0; c < HMAX / 32; ++c) {
      const int h = lane + 32 * c;
      const bool live = b < p.batch && h < p.hidden && !(static_cast<acc_t>(hidden_act[b * p.hidden + h]) <= acc_t(0));
      acc[r][c] = live ? round_to<T>(acc[r][c]) : acc_t(0);
    }
  }
}

// grad_w1[:, i0 .. i0 + 127] = sum over the batch of g_h^T @ input (rows h = warp * TR + r), and
// with first_slice, grad_b1 = sum over the batch of g_h.
template <typename T, typename acc_t, int HMAX>
__device__ void grad_w1_slice(const MlpBackward& p, int64_t i0, bool first_slice, acc_t* As, acc_t* Bs, acc_t* Gs) {
  using S = Smem<acc_t, HMAX>;
  constexpr int KC = S::KC, TR = HMAX / 8;
  const T* input = static_cast<const T*>(p.input);
  T* grad_w1 = static_cast<T*>(p.grad_w1);
  T* grad_b1 = static_cast<T*>(p.grad_b1);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const bool sums_b1 = grad_b1 != nullptr && first_slice && tid < HMAX;
  acc_t acc[TR][4];
  zero(acc);
  acc_t b1_sum = acc_t(0);  // column `tid` of g_h
  for (int64_t b0 = 0; b0 < p.batch; b0 += kRows) {
    acc_t gh[4][HMAX / 32];
    hidden_grad<T, acc_t, HMAX>(gh, p, b0, As, Bs);
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < HMAX / 32; ++c) Gs[(warp * 4 + r) * S::LD_HIDDEN + lane + 32 * c] = gh[r][c];
    __syncthreads();
    if (sums_b1) {
      for (int b = 0; b < kRows; ++b) b1_sum += Gs[b * S::LD_HIDDEN + tid];
    }
    if (grad_w1 != nullptr) {
      // A = Gs(k = b, row = h), B(k = b, col = i) = input[b][i]
      for (int kb = 0; kb < kRows; kb += KC) {
        load_tile<KC, kCols, true>(Bs, S::LD, input, p.in, 1, b0 + kb, p.batch, i0, p.in);
        __syncthreads();
        tile_fma(acc, Gs + kb * S::LD_HIDDEN, S::LD_HIDDEN, Bs, S::LD, KC);
        __syncthreads();
      }
    }
    __syncthreads();  // Gs is rewritten by the next rows
  }
  if (sums_b1 && tid < p.hidden) grad_b1[tid] = static_cast<T>(b1_sum);
  if (grad_w1 == nullptr) return;
#pragma unroll
  for (int r = 0; r < TR; ++r) {
    const int h = warp * TR + r;
    if (h >= p.hidden) continue;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int64_t i = i0 + lane + 32 * c;
      if (i < p.in) grad_w1[h * p.in + i] = static_cast<T>(acc[r][c]);
    }
  }
}

// grad_w2[o0 .. o0 + 127, :] = sum over the batch of grad_out^T @ hidden (rows o = warp * 16 + r)
// and grad_b2 for the same rows.
template <typename T, typename acc_t, int HMAX>
__device__ void grad_w2_rows(const MlpBackward& p, int64_t o0, acc_t* As, acc_t* Bs) {
  using S = Smem<acc_t, HMAX>;
  constexpr int KC = S::KC, TR = kCols / 8, HC = HMAX / 32;
  const T* grad_out = static_cast<const T*>(p.grad_out);
  const T* hidden_act = static_cast<const T*>(p.hidden_act);
  T* grad_w2 = static_cast<T*>(p.grad_w2);
  T* grad_b2 = static_cast<T*>(p.grad_b2);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  acc_t acc[TR][HC];
  zero(acc);
  acc_t b2_sum = acc_t(0);  // row o0 + tid
  // A(k = b, row = o) = grad_out[b][o], B(k = b, col = h) = hidden_act[b][h]
  for (int64_t b0 = 0; b0 < p.batch; b0 += KC) {
    load_tile<KC, kCols, true>(As, S::LD, grad_out, p.out_features, 1, b0, p.batch, o0, p.out_features);
    load_tile<KC, HMAX, true>(Bs, S::LD, hidden_act, p.hidden, 1, b0, p.batch, 0, p.hidden);
    __syncthreads();
    if (grad_b2 != nullptr && tid < kCols) {
      for (int k = 0; k < KC; ++k) b2_sum += As[k * S::LD + tid];
    }
    if (grad_w2 != nullptr) tile_fma(acc, As, S::LD, Bs, S::LD, KC);
    __syncthreads();
  }
  if (grad_b2 != nullptr && tid < kCols && o0 + tid < p.out_features) grad_b2[o0 + tid] = static_cast<T>(b2_sum);
  if (grad_w2 == nullptr) return;
#pragma unroll
  for (int r = 0; r < TR; ++r) {
    const int64_t o = o0 + warp * TR + r;
    if (o >= p.out_features) continue;
#pragma unroll
    for (int c = 0; c < HC; ++c) {
      const int h = lane + 32 * c;
      if (h < p.hidden) grad_w2[o * p.hidden + h] = static_cast<T>(acc[r][c]);
    }
  }
}

// grad_input for batch rows b0 .. b0 + 31: g_h, then g_h @ w1 128 columns at a time.
template <typename T, typename acc_t, int HMAX>
__device__ void grad_input_rows(const MlpBackward& p, int64_t b0, acc_t* As, acc_t* Bs, acc_t* Gs) {
  using S = Smem<acc_t, HMAX>;
  constexpr int KC = S::KC;
  const T* w1 = static_cast<const T*>(p.w1);
  T* grad_input = static_cast<T*>(p.grad_input);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  acc_t gh[4][HMAX / 32];
  hidden_grad<T, acc_t, HMAX>(gh, p, b0, As, Bs);
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int c = 0; c < HMAX / 32; ++c) Gs[(lane + 32 * c) * S::LD_ROWS + warp * 4 + r] = gh[r][c];
  __syncthreads();
  // A = Gs(k = h, row = b), B(k = h, col = i) = w1[h][i]
  for (int64_t i0 = 0; i0 < p.in; i0 += kCols) {
    acc_t acc[4][4];
    zero(acc);
    for (int h0 = 0; h0 < p.hidden; h0 += KC) {
      load_tile<KC, kCols, true>(Bs, S::LD, w1, p.in, 1, h0, p.hidden, i0, p.in);
      __syncthreads();
      tile_fma(acc, Gs + h0 * S::LD_ROWS, S::LD_ROWS, Bs, S::LD,
               (p.hidden - h0 < KC ? static_cast<int>(p.hidden - h0) : KC));
      __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t b = b0 + warp * 4 + r;
      if (b >= p.batch) continue;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t i = i0 + lane + 32 * c;
        if (i < p.in) grad_input[b * p.in + i] = static_cast<T>(acc[r][c]);
      }
    }
  }
  __syncthreads();  // Gs is rewritten by the next rows
}

template <typename T, typename acc_t, int HMAX>
__global__ void __launch_bounds__(kThreads)
    mlp_backward_kernel(const __grid_constant__ MlpBackward p, const __grid_constant__ Roles roles) {
  using S = Smem<acc_t, HMAX>;
  acc_t* const As = reinterpret_cast<acc_t*>(cuda::dynamic_smem());
  acc_t* const Bs = As + S::TILE;
  acc_t* const Gs = Bs + S::TILE;
  const unsigned int block = blockIdx.x;
  if (block < roles.w1_blocks) {
    grad_w1_slice<T, acc_t, HMAX>(p, static_cast<int64_t>(block) * kCols, block == 0, As, Bs, Gs);
  } else if (block < roles.w1_blocks + roles.w2_blocks) {
    grad_w2_rows<T, acc_t, HMAX>(p, static_cast<int64_t>(block - roles.w1_blocks) * kCols, As, Bs);
  } else {
    const unsigned int first = roles.w1_blocks + roles.w2_blocks;
    for (int64_t b0 = static_cast<int64_t>(block - first) * kRows; b0 < p.batch;
         b0 += static_cast<int64_t>(roles.row_blocks) * kRows) {
      grad_input_rows<T, acc_t, HMAX>(p, b0, As, Bs, Gs);
    }
  }
}

// ================================================================================================
// Host side

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Forward {
  template <typename T, typename acc_t, int HMAX>
  static void launch(const MlpForward& p) {
    if (p.batch == 0 || (p.hidden_out == nullptr && p.out == nullptr)) return;
    cuda::launch(mlp_forward_kernel<T, acc_t, HMAX>, cuda::grid_for(p.batch, kRows), kThreads, Smem<acc_t, HMAX>::bytes,
                 p);
  }
};

struct Backward {
  template <typename T, typename acc_t, int HMAX>
  static void launch(const MlpBackward& p) {
    Roles roles;
    if (p.grad_w1 != nullptr && p.in > 0) {
      roles.w1_blocks = static_cast<unsigned int>(ceil_div(p.in, kCols));
    } else {
      roles.w1_blocks = p.grad_b1 != nullptr ? 1 : 0;
    }
    const bool w2_wanted = (p.grad_w2 != nullptr || p.grad_b2 != nullptr) && p.out_features > 0;
    roles.w2_blocks = w2_wanted ? static_cast<unsigned int>(ceil_div(p.out_features, kCols)) : 0;
    const bool rows_wanted = p.grad_input != nullptr && p.in > 0 && p.batch > 0;
    roles.row_blocks = rows_wanted ? cuda::grid_for(p.batch, kRows) : 0;
    const unsigned int blocks = roles.w1_blocks + roles.w2_blocks + roles.row_blocks;
    if (blocks == 0) return;
    cuda::launch(mlp_backward_kernel<T, acc_t, HMAX>, blocks, kThreads, Smem<acc_t, HMAX>::bytes, p, roles);
  }
};

// Kernel::launch<T, acc_t, HMAX>(p) for the smallest HMAX in {32, 64, 128} that holds p.hidden:
// narrow layers then skip the work on columns past hidden.
template <typename Kernel, typename T, typename acc_t, typename Problem>
void launch_for_width(const Problem& p) {
  if (p.hidden <= 32) {
    Kernel::template launch<T, acc_t, 32>(p);
  } else if (p.hidden <= 64) {
    Kernel::template launch<T, acc_t, 64>(p);
  } else {
    Kernel::template launch<T, acc_t, 128>(p);
  }
}

template <typename Kernel, typename Problem>
void dispatch(const Problem& p, const char* op) {
  TORCH_CHECK(p.hidden >= 0 && p.hidden <= kMaxHidden, "pykernels.", op,
              ": the fused CUDA kernel takes a hidden size of at most ", kMaxHidden, ", got ", p.hidden);
  switch (p.dtype) {
    case at::kFloat:
      return launch_for_width<Kernel, float, float>(p);
    case at::kDouble:
      return launch_for_width<Kernel, double, double>(p);
    case at::kHalf:
      return launch_for_width<Kernel, c10::Half, float>(p);
    case at::kBFloat16:
      return launch_for_width<Kernel, c10::BFloat16, float>(p);
    default:
      TORCH_CHECK_NOT_IMPLEMENTED(false, "pykernels.", op, ": \"", op, "_cuda\" not implemented for '", p.dtype,
                                  "' (float16, bfloat16, float32 and float64 are supported)");
  }
}

}  // namespace

void mlp_forward_kernel_cuda(const MlpForward& p) { dispatch<Forward>(p, "mlp"); }

void mlp_backward_kernel_cuda(const MlpBackward& p) { dispatch<Backward>(p, "mlp_backward"); }

}  // namespace pykernels
