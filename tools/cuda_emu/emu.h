// A CPU emulation of the slice of CUDA that pykernels' kernels use, so their indexing, bounds
// and synchronisation can be checked on a machine without a GPU.
//
// Include this first, then a csrc/cuda/*.cu file: the .cu is compiled as plain C++ with
// PYKERNELS_CUDA_EMULATION defined, which swaps in the launch() / device-query / workspace
// helpers and the inline-PTX wrappers defined here. Each launched block runs as blockDim fibers
// (ucontext) on one OS thread, switched only at barriers: __syncthreads waits for the whole block,
// warp-level operations (__shfl_down_sync, ldmatrix, mma.sync) exchange values through per-warp
// scratch and a 32-fiber barrier, and a barrier nobody can pass is reported as a deadlock. Blocks
// run one after another, so `__shared__` (defined as `static`) is per block. cp.async copies are
// deferred until the matching cp.async.wait_group, so reading a stage too early shows up as
// wrong results; dynamic shared memory starts filled with 0xff bytes (NaN as float16).
//
// This checks the code's logic, not the hardware: the mma/ldmatrix fragment layouts are the PTX
// ISA's, written down a second time here; timing, occupancy, bank conflicts and memory ordering
// beyond barriers are not modelled.
#pragma once

#define PYKERNELS_CUDA_EMULATION 1
#define __global__
#define __shared__ static
#define __grid_constant__

#include <vector_functions.h>
#include <vector_types.h>

#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#undef __launch_bounds__
#define __launch_bounds__(...)

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <math.h>  // float overloads of ::exp, ::log, ... in the global namespace, as in CUDA

#include <ucontext.h>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define EMU_CHECK(cond, ...)                                                             \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "emu: %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fprintf(stderr, "\n");                                                        \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

inline uint3 threadIdx;  // of the running fiber
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;

inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
[[noreturn]] inline void __trap() {
  EMU_CHECK(false, "__trap() reached");
  std::abort();
}

namespace emu {

// Deferred cp.async copies of one thread: committed groups, oldest first, and the open group.
struct Copy {
  void* dst;
  const void* src;
};

struct Fiber {
  ucontext_t ctx;
  uint3 idx;
  bool done = false;
  std::vector<std::vector<Copy>> groups;
  std::vector<Copy> pending;
};

struct Barrier {
  int arrived = 0;
  unsigned generation = 0;
};

struct Warp {
  Barrier bar;
  alignas(16) unsigned char slot[32][64];
};

constexpr size_t kStack = 256 * 1024;

struct Scheduler {
  ucontext_t main;
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  int current = -1, threads = 0;
  Barrier block;
  std::vector<Warp> warps;
  uint64_t events = 0;  // arrivals, releases, exits: a full pass with none is a deadlock
  std::function<void()> body;
};
inline Scheduler g;

inline std::vector<uint4> g_dynamic_smem;

// Device properties the host code asks for; tests change them to reach every code path.
inline int g_sm_count = 4;
inline int g_cc_major = 8;

struct Stats {
  int64_t launches = 0, blocks = 0;
};
inline Stats g_stats;

inline Fiber& fiber() { return g.fibers[g.current]; }
inline int linear() { return g.current; }
inline int lane() { return g.current % 32; }
inline Warp& warp() { return g.warps[g.current / 32]; }

inline void yield() { swapcontext(&fiber().ctx, &g.main); }

// Waits until `n` fibers have arrived at `b`.
inline void arrive_and_wait(Barrier& b, int n) {
  const unsigned gen = b.generation;
  ++g.events;
  if (++b.arrived == n) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  while (b.generation == gen) yield();
}

inline void fiber_entry() {
  g.body();
  fiber().done = true;
  ++g.events;
  swapcontext(&fiber().ctx, &g.main);
}

// Runs one block: every fiber until it finishes, switching at barriers.
inline void run_block(int threads, dim3 block) {
  g.threads = threads;
  g.block = Barrier{};
  g.warps = std::vector<Warp>(threads / 32);
  g.fibers = std::vector<Fiber>(threads);
  while (g.stacks.size() < static_cast<size_t>(threads)) g.stacks.emplace_back(new char[kStack]);
  for (int t = 0; t < threads; ++t) {
    Fiber& f = g.fibers[t];
    f.idx = make_uint3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = g.stacks[t].get();
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  int finished = 0;
  while (finished < threads) {
    const uint64_t before = g.events;
    finished = 0;
    for (int t = 0; t < threads; ++t) {
      Fiber& f = g.fibers[t];
      if (f.done) {
        ++finished;
        continue;
      }
      g.current = t;
      threadIdx = f.idx;
      swapcontext(&g.main, &f.ctx);
      if (f.done) {
        bool outstanding = !f.pending.empty();
        for (const auto& grp : f.groups) outstanding |= !grp.empty();
        EMU_CHECK(!outstanding, "thread %d exited with cp.async copies not waited for", t);
      }
    }
    EMU_CHECK(finished == threads || g.events != before,
              "deadlock: %d of %d threads finished, the others wait at a barrier nobody else reaches", finished,
              threads);
  }
  g.current = -1;
}

inline bool in_dynamic_smem(const void* p, size_t bytes) {
  const auto* b = reinterpret_cast<const unsigned char*>(g_dynamic_smem.data());
  const auto* c = reinterpret_cast<const unsigned char*>(p);
  return c >= b && c + bytes <= b + g_dynamic_smem.size() * sizeof(uint4);
}

}  // namespace emu

inline void __syncthreads() { emu::arrive_and_wait(emu::g.block, emu::g.threads); }

template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
  static_assert(sizeof(T) <= 64, "slot size");
  EMU_CHECK(mask == 0xffffffffu, "only full-warp shuffles are emulated");
  emu::Warp& w = emu::warp();
  const int lane = emu::lane();
  std::memcpy(w.slot[lane], &v, sizeof(T));
  emu::arrive_and_wait(w.bar, 32);
  T r = v;
  if (lane + delta < 32) std::memcpy(&r, w.slot[lane + delta], sizeof(T));
  emu::arrive_and_wait(w.bar, 32);
  return r;
}

namespace pykernels {
namespace cuda {

inline int sm_count() { return emu::g_sm_count; }
inline int compute_capability_major() { return emu::g_cc_major; }
inline c10::DataPtr workspace(size_t bytes) { return c10::GetCPUAllocator()->allocate(bytes); }

template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, Args&&... args) {
  EMU_CHECK(grid.x >= 1 && grid.x <= static_cast<unsigned>(INT_MAX) && grid.y >= 1 && grid.y <= 65535 && grid.z >= 1 &&
                grid.z <= 65535,
            "grid %u x %u x %u", grid.x, grid.y, grid.z);
  const int threads = static_cast<int>(block.x * block.y * block.z);
  EMU_CHECK(threads >= 32 && threads <= 1024 && threads % 32 == 0, "block of %d threads", threads);
  EMU_CHECK(smem <= 227 * 1024, "%zu bytes of dynamic shared memory", smem);
  const std::tuple<std::decay_t<KernelArgs>...> params(std::forward<Args>(args)...);
  ++emu::g_stats.launches;
  gridDim = grid;
  blockDim = block;
  emu::g.body = [&] { std::apply(kernel, params); };
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        ++emu::g_stats.blocks;
        blockIdx = make_uint3(x, y, z);
        emu::g_dynamic_smem.assign(smem / 16 + 1, make_uint4(~0u, ~0u, ~0u, ~0u));
        emu::run_block(threads, block);
      }
}

// ---- the inline-PTX helpers of csrc/cuda/ptx.cuh ----------------------------------------------

inline uint4* dynamic_smem() { return emu::g_dynamic_smem.data(); }

inline void cp_async16(void* smem, const void* gmem) {
  EMU_CHECK(reinterpret_cast<uintptr_t>(smem) % 16 == 0 && reinterpret_cast<uintptr_t>(gmem) % 16 == 0,
            "cp.async with unaligned addresses %p <- %p", smem, gmem);
  EMU_CHECK(emu::in_dynamic_smem(smem, 16), "cp.async destination outside shared memory");
  emu::fiber().pending.push_back({smem, gmem});
}

inline void cp_async_commit() {
  emu::fiber().groups.push_back(std::move(emu::fiber().pending));
  emu::fiber().pending.clear();
}

template <int N>
void cp_async_wait() {
  auto& groups = emu::fiber().groups;
  while (groups.size() > static_cast<size_t>(N)) {
    for (const auto& c : groups.front()) std::memcpy(c.dst, c.src, 16);
    groups.erase(groups.begin());
  }
}

inline void ldmatrix_impl(uint32_t (&r)[4], const void* p, bool trans) {
  EMU_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0, "ldmatrix row address %p not 16-byte aligned", p);
  EMU_CHECK(emu::in_dynamic_smem(p, 16), "ldmatrix row outside shared memory");
  emu::Warp& w = emu::warp();
  const int lane = emu::lane();
  std::memcpy(w.slot[lane], &p, sizeof(p));
  emu::arrive_and_wait(w.bar, 32);
  auto row_ptr = [&](int l) {
    const uint16_t* q;
    std::memcpy(&q, w.slot[l], sizeof(q));
    return q;
  };
  for (int i = 0; i < 4; ++i) {
    uint16_t lo, hi;
    if (!trans) {  // row lane/4 of matrix i, columns 2*(lane%4), +1
      const uint16_t* row = row_ptr(8 * i + lane / 4);
      lo = row[2 * (lane % 4)], hi = row[2 * (lane % 4) + 1];
    } else {  // column lane/4, rows 2*(lane%4), +1
      lo = row_ptr(8 * i + 2 * (lane % 4))[lane / 4], hi = row_ptr(8 * i + 2 * (lane % 4) + 1)[lane / 4];
    }
    r[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
  emu::arrive_and_wait(w.bar, 32);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_impl(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_impl(r, p, true); }

template <typename T>
float emu_decode(uint16_t bits) {
  return static_cast<float>(T(bits, T::from_bits()));
}

template <typename T>
void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  struct Frag {
    uint32_t a[4], b[2];
    float c[4];
  };
  static_assert(sizeof(Frag) <= 64, "slot size");
  emu::Warp& w = emu::warp();
  const int lane = emu::lane();
  Frag mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {d[0], d[1], d[2], d[3]}};
  std::memcpy(w.slot[lane], &mine, sizeof(Frag));
  emu::arrive_and_wait(w.bar, 32);
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    Frag f;
    std::memcpy(&f, w.slot[l], sizeof(Frag));
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 2; ++h) {  // low / high half of each register
      A[g][2 * t + h] = emu_decode<T>(static_cast<uint16_t>(f.a[0] >> (16 * h)));
      A[g + 8][2 * t + h] = emu_decode<T>(static_cast<uint16_t>(f.a[1] >> (16 * h)));
      A[g][2 * t + 8 + h] = emu_decode<T>(static_cast<uint16_t>(f.a[2] >> (16 * h)));
      A[g + 8][2 * t + 8 + h] = emu_decode<T>(static_cast<uint16_t>(f.a[3] >> (16 * h)));
      B[2 * t + h][g] = emu_decode<T>(static_cast<uint16_t>(f.b[0] >> (16 * h)));
      B[2 * t + 8 + h][g] = emu_decode<T>(static_cast<uint16_t>(f.b[1] >> (16 * h)));
      C[g][2 * t + h] = f.c[h];
      C[g + 8][2 * t + h] = f.c[2 + h];
    }
  }
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float s = C[row][col];
    for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
    d[i] = s;
  }
  emu::arrive_and_wait(w.bar, 32);
}

}  // namespace cuda
}  // namespace pykernels
