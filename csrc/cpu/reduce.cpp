// CPU sum/mean over arbitrary dimensions.
//
// Accumulation is in double for floating types (int64 for integers), so a float32 sum of
// millions of elements stays accurate without pairwise tricks; the contiguous inner loop keeps
// kLanes independent partial sums (8 for runs shorter than 256 elements, where clearing and
// combining 32 lanes would cost more than the adds), written in GCC vector types for float and
// double. Converting every float to double would bound the loop (one convert per element, not
// memory), so float inputs are first summed in float, kBlock elements per lane (an error of at
// most 7 ulps of the block's magnitude), and each block's partials are then added in double.
// For float and double the loops are also compiled for AVX2 and picked at run time.
// Three schedules, by shape:
//   * one output (full reduction): threads split the reduced range, partials are combined;
//   * the reduced elements of an output are contiguous ("inner" reduction, e.g. sum(dim=-1)):
//     threads split the outputs, each output is one contiguous sum;
//   * otherwise ("outer" reduction, e.g. sum(dim=0) of a row-major matrix): a tile of
//     neighbouring outputs is accumulated together while walking the reduced dims, so every
//     load is contiguous across the tile.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>

#include "cpu/loops.h"
#include "cpu/vec.h"
#include "kernels.h"

namespace pykernels {
namespace {

constexpr int kLanes = 32;      // four AVX2 registers of float: enough adds in flight to cover their latency
constexpr int kBlock = 8;       // float elements summed per lane before the partial joins the double sum
constexpr int64_t kTile = 512;  // outputs the outer reduction accumulates together (acc + part: 6 KiB)

template <typename T>
using sum_acc_t = std::conditional_t<std::is_integral_v<T>, int64_t, double>;

// acc += the 4 elements at p, as doubles.
template <typename T>
__attribute__((always_inline)) inline void add4d(cpu::Vec4d& acc, const T* p) {
  typename cpu::Vec4<T>::type y;
  cpu::load(y, p);
  acc += __builtin_convertvector(y, cpu::Vec4d);
}

// The sum of n contiguous floats or doubles in kLanes double lanes. Float inputs are summed
// kBlock per lane in float first.
template <typename T>
__attribute__((always_inline)) inline double sum_contiguous(const T* x, int64_t n) {
  constexpr int V = kLanes / 4;  // vectors of 4 double lanes
  cpu::Vec4d acc[V] = {};
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    i = cpu::add_float_blocks<kLanes, kBlock>(i, n, acc, [x](int64_t j, cpu::Vec8f& t) { cpu::load(t, x + j); });
  }
  for (; i + kLanes <= n; i += kLanes)
    for (int v = 0; v < V; ++v) add4d(acc[v], x + i + 4 * v);
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s + cpu::sum_lanes<V>(acc);
}

// The sum of fewer than kLanes * kBlock contiguous floats or doubles, the common inner sum of
// short rows: 8 lanes, so that clearing and combining them costs little, and float blocks of
// kBlock per lane. sum_contiguous would convert every float to double here (its float blocks
// need 256 elements), several times slower than this loop on short float rows.
template <typename T>
__attribute__((always_inline)) inline double sum_short(const T* x, int64_t n) {
  cpu::Vec4d acc[2] = {};
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; i + 8 * kBlock <= n; i += 8 * kBlock) {
      cpu::Vec8f p = {}, q = {};  // two add chains
      for (int b = 0; b < kBlock; b += 2) {
        cpu::Vec8f y, z;
        cpu::load(y, x + i + 8 * b);
        cpu::load(z, x + i + 8 * b + 8);
        p += y;
        q += z;
      }
      p += q;
      cpu::add_halves<1>(acc, &p);
    }
  }
  for (; i + 8 <= n; i += 8) {
    add4d(acc[0], x + i);
    add4d(acc[1], x + i + 4);
  }
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s + cpu::sum_lanes<2>(acc);
}

template <typename T, typename acc_t>
__attribute__((always_inline)) inline acc_t sum_run(const T* x, int64_t stride, int64_t n) {
  if (stride != 1) {
    acc_t s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<acc_t>(x[i * stride]);
    return s;
  }
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return n < kLanes * kBlock ? sum_short(x, n) : sum_contiguous(x, n);
  } else {
    acc_t lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += static_cast<acc_t>(x[i + l]);
    acc_t s = 0;
    for (; i < n; ++i) s += static_cast<acc_t>(x[i]);
    for (int w = kLanes / 2; w > 0; w /= 2)
      for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
    return s + lanes[0];
  }
}

// acc[t] += the sum of `rows` rows (`step` elements apart) at t * stride, for a tile of
// neighbouring outputs: the outer reduction's step. Float rows are summed kBlock at a time in
// float first, as in sum_run.
template <typename T, typename acc_t>
__attribute__((always_inline)) inline void add_rows(acc_t* acc, const T* x, int64_t rows, int64_t step, int64_t stride,
                                                    int64_t tile) {
  int64_t r = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 1) {
      for (; r + kBlock <= rows; r += kBlock) {
        float part[kTile] = {};
        for (int b = 0; b < kBlock; ++b) {
          const float* row = x + (r + b) * step;
          for (int64_t t = 0; t < tile; ++t) part[t] += row[t];
        }
        for (int64_t t = 0; t < tile; ++t) acc[t] += part[t];
      }
    }
  }
  for (; r < rows; ++r) {
    const T* row = x + r * step;
    if (stride == 1) {
      for (int64_t t = 0; t < tile; ++t) acc[t] += static_cast<acc_t>(row[t]);
    } else {
      for (int64_t t = 0; t < tile; ++t) acc[t] += static_cast<acc_t>(row[t * stride]);
    }
  }
}

#if defined(__x86_64__)
// The same loops compiled for AVX2: same lanes, same order, same result.
template <typename T, typename acc_t>
__attribute__((target("avx2"), noinline)) acc_t sum_run_avx2(const T* x, int64_t stride, int64_t n) {
  return sum_run<T, acc_t>(x, stride, n);
}

template <typename T, typename acc_t>
__attribute__((target("avx2"), noinline)) void add_rows_avx2(acc_t* acc, const T* x, int64_t rows, int64_t step,
                                                             int64_t stride, int64_t tile) {
  add_rows<T, acc_t>(acc, x, rows, step, stride, tile);
}
#endif

// Sum of the reduced elements [begin, end) that start at `base`.
template <typename T, typename acc_t>
acc_t sum_reduced(const StridedIter<1>& red, const T* base, int64_t begin, int64_t end) {
  [[maybe_unused]] const bool avx2 = takes_avx2_loops<T>();
  const int64_t stride = red.strides[0][0];
  auto run = [&](const T* x, int64_t n) {
#if defined(__x86_64__)
    if (avx2) return sum_run_avx2<T, acc_t>(x, stride, n);
#endif
    return sum_run<T, acc_t>(x, stride, n);
  };
  // One run: no index arithmetic. An inner reduction calls this once per output, so with many
  // short rows going through for_range costs a large share of the time.
  if (red.ndim == 1) return run(base + begin * stride, end - begin);
  acc_t s = 0;
  for_range(red, begin, end, [&](const int64_t* off, int64_t n) { s += run(base + off[0], n); });
  return s;
}

template <typename T>
void sum_impl(const ReduceProblem& p, bool mean) {
  using acc_t = sum_acc_t<T>;
  const StridedIter<2>& kept = p.kept;
  const StridedIter<1>& red = p.reduced;
  const int64_t nred = red.numel;
  T* out = static_cast<T*>(kept.data[0]);
  const T* in = static_cast<const T*>(kept.data[1]);
  auto finish = [&](acc_t s) -> T {
    if constexpr (std::is_floating_point_v<acc_t>) {
      if (mean) return static_cast<T>(s / static_cast<acc_t>(nred));  // 0 / 0 = nan for an empty mean
    }
    return static_cast<T>(s);
  };

  if (kept.numel == 1) {
    const acc_t s = at::parallel_reduce(
        0, nred, kGrainSize, acc_t(0),
        [&](int64_t b, int64_t e, acc_t init) { return init + sum_reduced<T, acc_t>(red, in, b, e); },
        [](acc_t x, acc_t y) { return x + y; });
    *out = finish(s);
    return;
  }

  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(nred, 1));
  const bool outer = red.strides[0][0] != 1 && kept.strides[1][0] < red.strides[0][0];
  [[maybe_unused]] const bool avx2 = takes_avx2_loops<T>();
  at::parallel_for(0, kept.numel, grain, [&](int64_t begin, int64_t end) {
    for_range(kept, begin, end, [&](const int64_t* off, int64_t n) {
      T* o = out + off[0];
      const T* x = in + off[1];
      const int64_t os = kept.strides[0][0], xs = kept.strides[1][0];
      if (!outer) {
        for (int64_t i = 0; i < n; ++i) o[i * os] = finish(sum_reduced<T, acc_t>(red, x + i * xs, 0, nred));
        return;
      }
      for (int64_t t0 = 0; t0 < n; t0 += kTile) {
        const int64_t tile = std::min(kTile, n - t0);
        acc_t acc[kTile] = {};
        const T* xt = x + t0 * xs;
        for_range(red, 0, nred, [&](const int64_t* roff, int64_t rn) {
#if defined(__x86_64__)
          if (avx2) return add_rows_avx2<T, acc_t>(acc, xt + roff[0], rn, red.strides[0][0], xs, tile);
#endif
          add_rows<T, acc_t>(acc, xt + roff[0], rn, red.strides[0][0], xs, tile);
        });
        for (int64_t t = 0; t < tile; ++t) o[(t0 + t) * os] = finish(acc[t]);
      }
    });
  });
}

}  // namespace

void sum_kernel_cpu(const ReduceProblem& p, bool mean) {
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "pykernels_sum", [&] { sum_impl<scalar_t>(p, mean); });
}

}  // namespace pykernels
