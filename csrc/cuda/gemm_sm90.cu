// Hopper (sm_90a) GEMM for float16/bfloat16 with float32 accumulation: C[b] = A[b] @ B[b], for
// the problems gemm_sm90() accepts (large, TMA-loadable layouts); gemm.cu runs everything else.
//
// Work split. A block has three warpgroups (384 threads) and computes 128 x 256 output tiles in
// a persistent loop (one block per SM) over (batch, tile row, tile column), in the L2-friendly
// order of cuda/gemm_tiles.cuh. Warpgroup 0 is the producer: one of its threads copies 64-wide
// k-slices of A (128 x 64) and B (64 x 256) into a ring of shared-memory stages with TMA
// (cp.async.bulk.tensor). Warpgroups 1 and 2 are the consumers: each multiplies its 64 rows of
// the tile by all 256 columns with wgmma.mma_async m64n256k16, both operands read by the tensor
// cores straight from shared memory, into 64 x 256 float32 accumulators held in registers (128
// per thread). While the consumers store one tile, the producer is already loading the next.
//
// Sizes. n256 is the widest wgmma, so each A element read from shared memory feeds the most
// math, and the two consumers share every B stage. BK = 64 elements is 128 bytes, exactly one
// row of the 128-byte swizzle. A stage is 16 + 32 KB; 4 stages (192 KB of the 227 KB a block may
// have) keep enough loads in flight to hide global-memory latency. The producer warpgroup gives
// registers back (setmaxnreg) so the consumers can hold their accumulators without spilling.
//
// Shared-memory layout and swizzle. TMA writes each 128-byte row of a box with its 16-byte
// chunks permuted (chunk ^= row % 8, over 8-row, 1024-byte atoms), and the wgmma descriptors
// say "128-byte swizzle", so the tensor cores read the same permutation back without bank
// conflicts. Every buffer starts on a 1024-byte boundary, so the pattern is in phase everywhere.
//   K-major operand (A row-major, B column-major): one box of 64 k (inner) x 128 m or 256 n rows;
//     descriptor K-major, SBO = 1024 (next 8 rows), next k16 step = +32 bytes inside the row.
//   MN-major operand (A column-major, B row-major): boxes ("panels") of 64 m/n (inner) x 64 k,
//     8 KB each, 2 for A and 4 for B; descriptor MN-major (wgmma's transpose bit), LBO = 8 KB
//     (next panel along m/n), SBO = 1024 (next 8 k), next k16 step = +2048 bytes (16 rows).
//
// Barriers. Each stage has a "full" mbarrier (1 arrival: the producer's arrive.expect_tx with the
// stage's byte count, then completed by the TMA's transaction bytes) and an "empty" one (one
// arrival per consumer warp, once the wgmmas that read the stage have completed). Producer and
// consumers walk the same sequence of (tile, k-slice), so both derive the same stage index and
// phase parity; the producer waits on "empty" with the opposite parity, which a freshly
// initialised barrier satisfies, so the first round needs no special case. Consumers keep one
// wgmma group in flight: after issuing k-slice i they wait for group i - 1 and release its stage.
//
// Edges. TMA zero-fills elements outside the matrix, so partial tiles in m and n and the last
// k-slice run the same code (zeros add nothing). Panels lying wholly outside the matrix are not
// loaded at all: their stale shared memory only reaches output rows or columns that the
// bounds-checked epilogue never stores. The epilogue converts each thread's accumulators to T and
// stores them directly, two adjacent columns as one 32-bit store where C allows it.
#ifdef PYKERNELS_WITH_SM90A

#include <c10/util/Exception.h>
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/gemm_sm90.h"
#include "cuda/gemm_tiles.cuh"
#include "cuda/ptx.cuh"

// wgmma and setmaxnreg exist only for sm_90a; every other device pass compiles the kernel to a
// trap (the host launches it only on compute capability 9.0, which runs the sm_90a code).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PYKERNELS_SM90A_DEVICE 1
#else
#define PYKERNELS_SM90A_DEVICE 0
#endif

namespace pykernels {
namespace cuda {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64, kStages = 4;
constexpr int kThreads = 384;  // the producer warpgroup, then two consumer warpgroups
constexpr int kPanel = 64;     // m or n extent of an MN-major box: 64 elements = 128 bytes
constexpr uint32_t kABytes = kBM * kBK * 2, kBBytes = kBN * kBK * 2;  // per stage: 16 KB, 32 KB
constexpr size_t kSmemBytes = kStages * (kABytes + kBBytes) + 1024;   // + room to align to 1024

struct Sm90Args {
  void* c;
  int64_t c_rs, c_cs, c_bs;  // element strides of C: row, column, batch
  int64_t m, n;
  int64_t tiles_m, tiles_n, tiles;  // tiles per batch along m and n; total over all batches
  int ktiles;
  bool a_batched, b_batched;  // 3-D tensor map, indexed by batch (else one matrix for all batches)
  bool c_pairs;               // C(r, c) and C(r, c + 1) for even c form one aligned 32-bit word
};

#if PYKERNELS_SM90A_DEVICE

constexpr uint32_t kPanelBytes = kPanel * kBK * 2;  // 8 KB
constexpr int kConsumerWarps = 8;                   // arrivals that empty a stage
// Registers per thread after the split: 128 * 40 + 256 * 232 <= 65536.
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// One arrival, and `bytes` more transaction bytes for the phase to wait for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
#ifdef PYKERNELS_DEBUG
// A wait that never completes is a pipeline fault (a lost arrival, a wrong transaction byte count,
// a bad tensor map); debug builds trap once a wait has lasted this long, so the fault surfaces as
// a launch error naming the barrier instead of a hang. No healthy wait comes near it.
constexpr uint64_t kWaitLimitNs = 10ull * 1000 * 1000 * 1000;

__device__ __forceinline__ uint64_t globaltimer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
#endif

// Waits until the phase with parity `parity` has completed (acquire: the data it guards is visible).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#ifdef PYKERNELS_DEBUG
  const uint64_t start = globaltimer_ns();
#endif
  uint32_t done;
  do {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
#ifdef PYKERNELS_DEBUG
    if (!done && globaltimer_ns() - start > kWaitLimitNs) {
      printf("pykernels gemm_sm90: block %d thread %d waited over 10 s on the mbarrier at %u for parity %u\n",
             static_cast<int>(blockIdx.x), static_cast<int>(threadIdx.x), bar, parity);
      __trap();
    }
#endif
  } while (!done);
}

// TMA: copies the box at coordinates (c0 innermost, c1[, batch]) of `map` to shared memory at
// `dst`; its bytes count as completed transactions on the mbarrier `bar`.
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap& map, int c0, int c1, int batch, bool batched,
                                         uint32_t bar) {
  const uint64_t m = reinterpret_cast<uint64_t>(&map);
  if (batched) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4}], [%5];\n"
        :
        : "r"(dst), "l"(m), "r"(c0), "r"(c1), "r"(batch), "r"(bar)
        : "memory");
  } else {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3}], [%4];\n"
        :
        : "r"(dst), "l"(m), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
  }
}

// wgmma shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride
// byte offsets, each encoded as (bytes >> 4) in 14 bits.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | static_cast<uint64_t>(lbo >> 4) << 16 |
         static_cast<uint64_t>(sbo >> 4) << 32 | uint64_t{1} << 62;
}

// Pins the accumulators at this point of the instruction stream: the compiler may not move their
// reads or writes across it (wgmma updates them asynchronously, unseen by the compiler).
__device__ __forceinline__ void fence_accumulators(float (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Orders earlier register and shared-memory accesses before the wgmmas that follow.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N of this warpgroup's committed wgmma groups are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

#define PYKERNELS_WGMMA_D                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                      \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "             \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "             \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "             \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "             \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "             \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define PYKERNELS_WGMMA_D8(i)                                                                                 \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define PYKERNELS_WGMMA_M64N256K16(TYPE)                                                                  \
  asm volatile(                                                                                           \
      "{\n"                                                                                               \
      ".reg .pred p;\n"                                                                                   \
      "setp.ne.b32 p, %130, 0;\n"                                                                         \
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " " PYKERNELS_WGMMA_D                  \
      ", %128, %129, p, 1, 1, %131, %132;\n"                                                              \
      "}\n"                                                                                               \
      : PYKERNELS_WGMMA_D8(0), PYKERNELS_WGMMA_D8(8), PYKERNELS_WGMMA_D8(16), PYKERNELS_WGMMA_D8(24),     \
        PYKERNELS_WGMMA_D8(32), PYKERNELS_WGMMA_D8(40), PYKERNELS_WGMMA_D8(48), PYKERNELS_WGMMA_D8(56),   \
        PYKERNELS_WGMMA_D8(64), PYKERNELS_WGMMA_D8(72), PYKERNELS_WGMMA_D8(80), PYKERNELS_WGMMA_D8(88),   \
        PYKERNELS_WGMMA_D8(96), PYKERNELS_WGMMA_D8(104), PYKERNELS_WGMMA_D8(112), PYKERNELS_WGMMA_D8(120) \
      : "l"(desc_a), "l"(desc_b), "r"(1), "n"(TRANS_A), "n"(TRANS_B)                                      \
      : "memory")

// d (64 x 256, float32) += A (64 x 16) * B (16 x 256), both from shared memory. TRANS_A / TRANS_B:
// the operand is MN-major (else K-major). Accumulator layout, per warp w of the warpgroup and
// lane l: d[4j + 2h + e] is row 16w + l/4 + 8h, column 8j + 2(l%4) + e.
template <typename T, int TRANS_A, int TRANS_B>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  if constexpr (std::is_same_v<T, c10::Half>) {
    PYKERNELS_WGMMA_M64N256K16("f16");
  } else {
    static_assert(std::is_same_v<T, c10::BFloat16>, "float16 or bfloat16");
    PYKERNELS_WGMMA_M64N256K16("bf16");
  }
}

#undef PYKERNELS_WGMMA_M64N256K16
#undef PYKERNELS_WGMMA_D8
#undef PYKERNELS_WGMMA_D

#endif  // PYKERNELS_SM90A_DEVICE

// A_K / B_K: the operand's tensor map is K-major (A row-major, B column-major), else MN-major.
template <typename T, bool A_K, bool B_K>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_sm90_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b,
                     const __grid_constant__ Sm90Args g) {
#if PYKERNELS_SM90A_DEVICE
  __shared__ uint64_t full[kStages], empty[kStages];
  const uint32_t smem = (smem_addr(dynamic_smem()) + 1023) & ~1023u;
  const uint32_t a_smem = smem, b_smem = smem + kStages * kABytes;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(smem_addr(&full[s]), 1);
      mbar_init(smem_addr(&empty[s]), kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // visible to the TMA unit
  }
  __syncthreads();

  const int warpgroup = threadIdx.x / 128;
  if (warpgroup == 0) {  // producer: its first thread issues every load
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    if (threadIdx.x != 0) return;
    int stage = 0;
    uint32_t phase = 0;
    for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
      int64_t batch, tm, tn;
      tile_coords(g.tiles_m, g.tiles_n, t, batch, tm, tn);
      const int m0 = static_cast<int>(tm * kBM), n0 = static_cast<int>(tn * kBN), b = static_cast<int>(batch);
      // MN-major panels that start inside the matrix; the others are skipped (see the header).
      const int64_t a_left = (g.m - m0 + kPanel - 1) / kPanel, b_left = (g.n - n0 + kPanel - 1) / kPanel;
      const int a_panels = a_left < kBM / kPanel ? static_cast<int>(a_left) : kBM / kPanel;
      const int b_panels = b_left < kBN / kPanel ? static_cast<int>(b_left) : kBN / kPanel;
      const uint32_t bytes = (A_K ? kABytes : a_panels * kPanelBytes) + (B_K ? kBBytes : b_panels * kPanelBytes);
      for (int kt = 0; kt < g.ktiles; ++kt) {
        mbar_wait(smem_addr(&empty[stage]), phase ^ 1);
        const uint32_t bar = smem_addr(&full[stage]);
        mbar_arrive_expect_tx(bar, bytes);
        const int k0 = kt * kBK;
        const uint32_t a_dst = a_smem + stage * kABytes, b_dst = b_smem + stage * kBBytes;
        if constexpr (A_K) {
          tma_load(a_dst, tma_a, k0, m0, b, g.a_batched, bar);
        } else {
          for (int i = 0; i < a_panels; ++i)
            tma_load(a_dst + i * kPanelBytes, tma_a, m0 + i * kPanel, k0, b, g.a_batched, bar);
        }
        if constexpr (B_K) {
          tma_load(b_dst, tma_b, k0, n0, b, g.b_batched, bar);
        } else {
          for (int i = 0; i < b_panels; ++i)
            tma_load(b_dst + i * kPanelBytes, tma_b, n0 + i * kPanel, k0, b, g.b_batched, bar);
        }
        if (++stage == kStages) {
          stage = 0;
          phase ^= 1;
        }
      }
    }
  } else {  // consumers
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int half = warpgroup - 1;  // rows 64 * half .. + 63 of the tile
    const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
    int stage = 0;
    uint32_t phase = 0;
    float d[128];
    for (int64_t t = blockIdx.x; t < g.tiles; t += gridDim.x) {
      int64_t batch, tm, tn;
      tile_coords(g.tiles_m, g.tiles_n, t, batch, tm, tn);
#pragma unroll
      for (int i = 0; i < 128; ++i) d[i] = 0.f;
      fence_accumulators(d);
      int last = 0;  // the stage read by the latest wgmma group
      for (int kt = 0; kt < g.ktiles; ++kt) {
        mbar_wait(smem_addr(&full[stage]), phase);
        __syncwarp();  // the .aligned wgmma instructions below need the whole warp converged
        // This warpgroup's 64 rows of A start 8 KB into the stage in both layouts (64 rows of the
        // K-major box, or the next panel).
        const uint32_t a_base = a_smem + stage * kABytes + half * kPanelBytes;
        const uint32_t b_base = b_smem + stage * kBBytes;
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < kBK / 16; ++ks) {
          const uint64_t desc_a =
              A_K ? smem_desc(a_base + ks * 32, 16, 1024) : smem_desc(a_base + ks * 2048, kPanelBytes, 1024);
          const uint64_t desc_b =
              B_K ? smem_desc(b_base + ks * 32, 16, 1024) : smem_desc(b_base + ks * 2048, kPanelBytes, 1024);
          wgmma_m64n256k16<T, A_K ? 0 : 1, B_K ? 0 : 1>(d, desc_a, desc_b);
        }
        wgmma_commit();
        wgmma_wait<1>();  // the previous k-slice's wgmmas are done reading: release its stage
        if (kt > 0 && lane == 0) mbar_arrive(smem_addr(&empty[last]));
        last = stage;
        if (++stage == kStages) {
          stage = 0;
          phase ^= 1;
        }
      }
      wgmma_wait<0>();
      fence_accumulators(d);
      if (lane == 0) mbar_arrive(smem_addr(&empty[last]));

      T* const C = static_cast<T*>(g.c) + batch * g.c_bs;
      const int64_t row0 = tm * kBM + half * 64 + warp * 16 + lane / 4;
      const int64_t col0 = tn * kBN + (lane % 4) * 2;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = row0 + 8 * h;
        if (row >= g.m) continue;
        T* const c_row = C + row * g.c_rs;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          const int64_t col = col0 + 8 * j;
          const T v0 = static_cast<T>(d[4 * j + 2 * h]), v1 = static_cast<T>(d[4 * j + 2 * h + 1]);
          if (g.c_pairs && col + 1 < g.n) {
            *reinterpret_cast<uint32_t*>(c_row + col) =
                static_cast<uint32_t>(v0.x) | (static_cast<uint32_t>(v1.x) << 16);
          } else {
            if (col < g.n) c_row[col * g.c_cs] = v0;
            if (col + 1 < g.n) c_row[(col + 1) * g.c_cs] = v1;
          }
        }
      }
    }
  }
#else
  __trap();
#endif
}

// ================================================================================================
// Host side

// cuTensorMapEncodeTiled from the driver, found at run time (the extension does not link libcuda).
PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
    C10_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found));
#else
    C10_CUDA_CHECK(cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &f, cudaEnableDefault, &found));
#endif
    TORCH_CHECK(found == cudaDriverEntryPointSuccess && f != nullptr,
                "pykernels: the CUDA driver does not provide cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// An operand as the kernel loads it: `mn` x `k` per batch (A is m x k, B is seen as n x k).
struct Operand {
  CUtensorMap map;
  bool kmajor, batched;
};

// Fills `op` for an operand at `base` with element strides s_mn, s_k and (between batches)
// s_batch, or returns false when TMA cannot load it: one of s_mn, s_k must be 1 and the other a
// multiple of 16 bytes, the base 16-byte aligned, and a batch stride, unless the operand is the
// same matrix for every batch (stride 0), a multiple of 16 bytes too. `rows` is the tile's mn
// extent, the box height of a K-major map.
bool make_operand(Operand& op, CUtensorMapDataType type, const void* base, int64_t mn, int64_t k, int64_t s_mn,
                  int64_t s_k, int64_t batches, int64_t s_batch, uint32_t rows) {
  auto tma_stride = [](int64_t s) { return s > 0 && s % 8 == 0 && s < (int64_t{1} << 39); };  // < 2^40 bytes
  if (reinterpret_cast<uintptr_t>(base) % 16 != 0) return false;
  if (s_k == 1 && tma_stride(s_mn)) {
    op.kmajor = true;
  } else if (s_mn == 1 && tma_stride(s_k)) {
    op.kmajor = false;
  } else {
    return false;
  }
  op.batched = batches > 1 && s_batch != 0;
  if (op.batched && !tma_stride(s_batch)) return false;
  // Dimension 0 is the contiguous one; strides (in bytes) are given for dimensions 1 and 2.
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(op.kmajor ? k : mn), static_cast<cuuint64_t>(op.kmajor ? mn : k),
                              static_cast<cuuint64_t>(batches)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>((op.kmajor ? s_mn : s_k) * 2),
                                 static_cast<cuuint64_t>(s_batch * 2)};
  const cuuint32_t box[3] = {kPanel, op.kmajor ? rows : static_cast<cuuint32_t>(kBK), 1};
  const cuuint32_t unit[3] = {1, 1, 1};
  const CUresult r = encode_tiled()(&op.map, type, op.batched ? 3 : 2, const_cast<void*>(base), dims, strides, box,
                                    unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    // Operands that pass the checks above should always encode: a failure here is a bug or a
    // driver limit, and the mma.sync fallback would otherwise hide it.
    TORCH_WARN_ONCE("pykernels: cuTensorMapEncodeTiled failed with CUresult ", static_cast<int>(r),
                    " for an operand of ", mn, " x ", k, " (strides ", s_mn, ", ", s_k, "; ", batches,
                    " batches); the Hopper GEMM falls back to the mma.sync kernel");
    return false;
  }
  return true;
}

template <typename T>
void launch_sm90(const Operand& a, const Operand& b, const Sm90Args& g) {
  const unsigned int grid = static_cast<unsigned int>(std::min<int64_t>(g.tiles, sm_count()));
  auto run = [&](auto kernel) { launch(kernel, grid, kThreads, kSmemBytes, a.map, b.map, g); };
  if (a.kmajor) {
    b.kmajor ? run(gemm_sm90_kernel<T, true, true>) : run(gemm_sm90_kernel<T, true, false>);
  } else {
    b.kmajor ? run(gemm_sm90_kernel<T, false, true>) : run(gemm_sm90_kernel<T, false, false>);
  }
}

}  // namespace

// Constraints: float16/bfloat16; m, n >= 128 and k >= 64 (smaller problems would leave most of a
// tile idle: the mma.sync kernel does them); one batch dimension (batch strides of A and B either
// 0, the operand shared by all batches, or multiples of 16 bytes); A and B each contiguous along
// k or along m/n, with the other stride a multiple of 16 bytes and 16-byte aligned bases (TMA's
// rules); sizes within TMA's 32-bit coordinates. C may have any strides.
bool gemm_sm90(const GemmProblem& p) {
  if (p.dtype != at::kHalf && p.dtype != at::kBFloat16) return false;
  if (p.m < 128 || p.n < 128 || p.k < kBK || p.batch.ndim != 1) return false;
  const int64_t batches = p.batch.numel;
  if (std::max({p.m, p.n, p.k, batches}) > INT32_MAX - kBN) return false;
  const CUtensorMapDataType type =
      p.dtype == at::kHalf ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  Operand a, b;
  if (!make_operand(a, type, p.batch.data[1], p.m, p.k, p.a_rs, p.a_cs, batches, p.batch.strides[1][0], kBM) ||
      !make_operand(b, type, p.batch.data[2], p.n, p.k, p.b_cs, p.b_rs, batches, p.batch.strides[2][0], kBN)) {
    return false;
  }
  Sm90Args g;
  g.c = p.batch.data[0];
  g.c_rs = p.c_rs, g.c_cs = p.c_cs, g.c_bs = p.batch.strides[0][0];
  g.m = p.m, g.n = p.n;
  g.tiles_m = (p.m + kBM - 1) / kBM;
  g.tiles_n = (p.n + kBN - 1) / kBN;
  g.tiles = batches * g.tiles_m * g.tiles_n;
  g.ktiles = static_cast<int>((p.k + kBK - 1) / kBK);
  g.a_batched = a.batched, g.b_batched = b.batched;
  g.c_pairs =
      p.c_cs == 1 && reinterpret_cast<uintptr_t>(g.c) % 4 == 0 && p.c_rs % 2 == 0 && (batches == 1 || g.c_bs % 2 == 0);
  if (p.dtype == at::kHalf) {
    launch_sm90<c10::Half>(a, b, g);
  } else {
    launch_sm90<c10::BFloat16>(a, b, g);
  }
  return true;
}

}  // namespace cuda
}  // namespace pykernels

#endif  // PYKERNELS_WITH_SM90A
