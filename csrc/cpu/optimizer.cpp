// CPU kernels of the fused optimizer steps (csrc/optimizer.cpp). Each element of each parameter
// goes through common/optimizer_math.h's update once, so a step reads and writes every tensor
// once where torch's for-loop makes a pass per op.
//
// The work is cut into pieces of at most kGrainSize elements of one parameter, and
// at::parallel_for deals the pieces out to threads: a large parameter is split over threads and
// small ones are gathered. A piece walks its parameter's operands run by run (common/strided.h):
// a run where every operand has stride 1, the usual case, is a loop the compiler vectorizes; any
// other is a strided loop. On a CPU with FMA the runs are compiled for AVX2 + FMA with contraction
// off, so the multiply-adds are fused exactly where torch's AVX2 kernels fuse them and nowhere else.
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>

#include "common/optimizer_math.h"
#include "cpu/cpu_features.h"
#include "cpu/loops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using optim::Momentum;
using optim::WeightDecay;

// ---- one run of n elements, starting at the element offsets `off` ---------------------------------

template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov, bool kFma>
__attribute__((always_inline)) inline void sgd_run(const optim::SgdScalars<T>& s, const StridedIter<3>& it,
                                                   const int64_t* off, int64_t n) {
  T* param = static_cast<T*>(it.data[0]) + off[0];
  const T* grad = static_cast<const T*>(it.data[1]) + off[1];
  T* buf = static_cast<T*>(it.data[2]) + off[2];  // the param itself without momentum: not touched then
  const int64_t sp = it.strides[0][0], sg = it.strides[1][0], sb = it.strides[2][0];
  if (sp == 1 && sg == 1 && sb == 1) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      optim::sgd_element<T, kWeightDecay, kMomentum, kNesterov, kFma>(s, param[i], grad[i], buf[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      optim::sgd_element<T, kWeightDecay, kMomentum, kNesterov, kFma>(s, param[i * sp], grad[i * sg], buf[i * sb]);
    }
  }
}

template <typename T, WeightDecay kDecay, bool kAmsgrad, bool kFma>
__attribute__((always_inline)) inline void adam_run(const optim::AdamScalars<T>& s, const StridedIter<5>& it,
                                                    const int64_t* off, int64_t n) {
  T* param = static_cast<T*>(it.data[0]) + off[0];
  const T* grad = static_cast<const T*>(it.data[1]) + off[1];
  T* exp_avg = static_cast<T*>(it.data[2]) + off[2];
  T* exp_avg_sq = static_cast<T*>(it.data[3]) + off[3];
  T* max_sq = static_cast<T*>(it.data[4]) + off[4];  // the param itself without amsgrad: not touched then
  const int64_t sp = it.strides[0][0], sg = it.strides[1][0], sm = it.strides[2][0], sv = it.strides[3][0],
                sx = it.strides[4][0];
  if (sp == 1 && sg == 1 && sm == 1 && sv == 1 && sx == 1) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      optim::adam_element<T, kDecay, kAmsgrad, kFma>(s, param[i], grad[i], exp_avg[i], exp_avg_sq[i], max_sq[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      optim::adam_element<T, kDecay, kAmsgrad, kFma>(s, param[i * sp], grad[i * sg], exp_avg[i * sm],
                                                     exp_avg_sq[i * sv], max_sq[i * sx]);
    }
  }
}

// The runs as functions of their own: for the x86-64 baseline (no FMA, as torch's DEFAULT kernels)
// and, where the CPU has them, for AVX2 + FMA. Contraction is off in both: a * b + c written
// apart stays two roundings, as in torch's kernels.
template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov>
__attribute__((optimize("fp-contract=off"), noinline)) void sgd_run_baseline(const optim::SgdScalars<T>& s,
                                                                             const StridedIter<3>& it,
                                                                             const int64_t* off, int64_t n) {
  sgd_run<T, kWeightDecay, kMomentum, kNesterov, false>(s, it, off, n);
}

template <typename T, WeightDecay kDecay, bool kAmsgrad>
__attribute__((optimize("fp-contract=off"), noinline)) void adam_run_baseline(const optim::AdamScalars<T>& s,
                                                                              const StridedIter<5>& it,
                                                                              const int64_t* off, int64_t n) {
  adam_run<T, kDecay, kAmsgrad, false>(s, it, off, n);
}

#if defined(__x86_64__)
template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov>
__attribute__((target("avx2,fma"), optimize("fp-contract=off"),
               noinline)) void sgd_run_fma(const optim::SgdScalars<T>& s, const StridedIter<3>& it, const int64_t* off,
                                           int64_t n) {
  sgd_run<T, kWeightDecay, kMomentum, kNesterov, true>(s, it, off, n);
}

template <typename T, WeightDecay kDecay, bool kAmsgrad>
__attribute__((target("avx2,fma"), optimize("fp-contract=off"), noinline)) void adam_run_fma(
    const optim::AdamScalars<T>& s, const StridedIter<5>& it, const int64_t* off, int64_t n) {
  adam_run<T, kDecay, kAmsgrad, true>(s, it, off, n);
}

bool use_fma() { return cpu::cpu_has_avx2_fma(); }
#else
// Elsewhere (aarch64) FMA is in the base instruction set, and torch's kernels use it.
template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov>
void sgd_run_fma(const optim::SgdScalars<T>& s, const StridedIter<3>& it, const int64_t* off, int64_t n) {
  sgd_run<T, kWeightDecay, kMomentum, kNesterov, true>(s, it, off, n);
}

template <typename T, WeightDecay kDecay, bool kAmsgrad>
void adam_run_fma(const optim::AdamScalars<T>& s, const StridedIter<5>& it, const int64_t* off, int64_t n) {
  adam_run<T, kDecay, kAmsgrad, true>(s, it, off, n);
}

bool use_fma() { return true; }
#endif

// ---- the options as template arguments ------------------------------------------------------------

template <typename F>
void with_bool(bool value, F&& f) {
  if (value) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

template <typename F>
void with_momentum(Momentum m, F&& f) {
  switch (m) {
    case Momentum::None:
      return f(std::integral_constant<Momentum, Momentum::None>{});
    case Momentum::First:
      return f(std::integral_constant<Momentum, Momentum::First>{});
    case Momentum::Running:
      return f(std::integral_constant<Momentum, Momentum::Running>{});
  }
}

template <typename F>
void with_weight_decay(WeightDecay d, F&& f) {
  switch (d) {
    case WeightDecay::None:
      return f(std::integral_constant<WeightDecay, WeightDecay::None>{});
    case WeightDecay::L2:
      return f(std::integral_constant<WeightDecay, WeightDecay::L2>{});
    case WeightDecay::Decoupled:
      return f(std::integral_constant<WeightDecay, WeightDecay::Decoupled>{});
  }
}

// ---- pieces -----------------------------------------------------------------------------------------

// piece(param, begin, end) over every param's elements, in pieces of at most kGrainSize elements
// spread over torch's threads (a step smaller than one piece stays on the calling thread).
template <typename Param, typename Piece>
void for_pieces(const std::vector<Param>& params, const Piece& piece) {
  struct Range {
    size_t param;
    int64_t begin, end;
  };
  std::vector<Range> ranges;
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].it.numel;
    for (int64_t begin = 0; begin < n; begin += kGrainSize)
      ranges.push_back({i, begin, std::min(n, begin + kGrainSize)});
    total += n;
  }
  const int64_t count = static_cast<int64_t>(ranges.size());
  const int64_t grain = total <= kGrainSize ? std::max<int64_t>(count, 1) : 1;
  at::parallel_for(0, count, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) piece(params[ranges[k].param], ranges[k].begin, ranges[k].end);
  });
}

template <typename T>
void sgd_piece(const SgdStep& step, const SgdParam& p, int64_t begin, int64_t end, bool fma) {
  const auto s = optim::sgd_scalars<T>(step.options);
  const bool nesterov = step.options.nesterov && step.momentum != Momentum::None;
  with_bool(step.options.weight_decay != 0, [&](auto wd) {
    with_momentum(step.momentum, [&](auto momentum) {
      with_bool(nesterov, [&](auto nest) {
        for_range(p.it, begin, end, [&](const int64_t* off, int64_t n) {
          if (fma) {
            sgd_run_fma<T, decltype(wd)::value, decltype(momentum)::value, decltype(nest)::value>(s, p.it, off, n);
          } else {
            sgd_run_baseline<T, decltype(wd)::value, decltype(momentum)::value, decltype(nest)::value>(s, p.it, off, n);
          }
        });
      });
    });
  });
}

template <typename T>
void adam_piece(const AdamStep& step, const AdamParam& p, int64_t begin, int64_t end, bool fma) {
  const auto s = optim::adam_scalars<T>(step.options, p.step);
  const optim::AdamOptions& o = step.options;
  const WeightDecay decay = o.weight_decay == 0        ? WeightDecay::None
                            : o.decoupled_weight_decay ? WeightDecay::Decoupled
                                                       : WeightDecay::L2;
  with_weight_decay(decay, [&](auto wd) {
    with_bool(o.amsgrad, [&](auto amsgrad) {
      for_range(p.it, begin, end, [&](const int64_t* off, int64_t n) {
        if (fma) {
          adam_run_fma<T, decltype(wd)::value, decltype(amsgrad)::value>(s, p.it, off, n);
        } else {
          adam_run_baseline<T, decltype(wd)::value, decltype(amsgrad)::value>(s, p.it, off, n);
        }
      });
    });
  });
}

}  // namespace

void fused_sgd_kernel_cpu(const SgdStep& step) {
  const bool fma = use_fma();
  for_pieces(step.params, [&](const SgdParam& p, int64_t begin, int64_t end) {
    if (p.dtype == at::kFloat) {
      sgd_piece<float>(step, p, begin, end, fma);
    } else {
      sgd_piece<double>(step, p, begin, end, fma);
    }
  });
}

void fused_adam_kernel_cpu(const AdamStep& step) {
  const bool fma = use_fma();
  for_pieces(step.params, [&](const AdamParam& p, int64_t begin, int64_t end) {
    if (p.dtype == at::kFloat) {
      adam_piece<float>(step, p, begin, end, fma);
    } else {
      adam_piece<double>(step, p, begin, end, fma);
    }
  });
}

}  // namespace pykernels
