// The per-element arithmetic of the fused optimizer steps (fused_sgd_, fused_adam_), shared by
// the CPU and CUDA kernels.
//
// torch.optim's for-loop implementations update a parameter with one ATen op after another
// (param.add_, exp_avg.lerp_, exp_avg_sq.mul_(...).addcmul_, ...), each rounding its result to
// the parameter's dtype. The functions here compute the same ops in the same order on one element,
// rounding where each of torch's ops rounds, so that a whole step reads and writes every tensor
// once and still gives torch's values. Where torch's CPU kernels fuse a multiply-add (add with
// alpha, lerp, addcmul's last product and sum) this does too, with mul_add, which is one rounding
// with kFma (where the machine has FMA, as torch's AVX2 kernels do) and two otherwise.
//
// One op differs: torch 2.14's CPU sqrt is not correctly rounded (a unit in the last place off
// IEEE's square root for about a fifth of float32 inputs), and this one is IEEE's; the results
// then differ by about an ulp of the update.
//
// The hyperparameters arrive as Python floats (double) and become the scalar operands of those
// ops; each is computed in double as torch.optim computes it (1 - beta2, -lr / bias_correction1,
// ...) and rounded to the dtype once, as an ATen op rounds its Scalar arguments.
#pragma once

#include <math.h>  // float and double overloads of sqrt, fma and pow in the global namespace, as in CUDA

#include "kernels.h"

// Inlined into every kernel that calls them (a CPU kernel compiled for AVX2 + FMA among them,
// where an out-of-line copy would be compiled for the baseline).
#ifdef __CUDACC__
#define PK_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PK_HOST_DEVICE inline __attribute__((always_inline))
#endif

namespace pykernels {
namespace optim {

// a * b + c as torch's vectorized kernels compute it (vec::fmadd): rounded once with kFma, twice
// otherwise (the x86-64 baseline, whose torch kernels have no FMA either).
template <bool kFma, typename T>
PK_HOST_DEVICE T mul_add(T a, T b, T c) {
  if constexpr (kFma) {
    return ::fma(a, b, c);
  } else {
    return a * b + c;
  }
}

// torch.maximum: NaN wins.
template <typename T>
PK_HOST_DEVICE T maximum(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// ---- SGD --------------------------------------------------------------------------------------------

template <typename T>
struct SgdScalars {
  T sign;  // -1 with maximize: torch negates the gradient
  T weight_decay;
  T momentum;
  T one_minus_dampening;
  T neg_lr;
};

template <typename T>
PK_HOST_DEVICE SgdScalars<T> sgd_scalars(const SgdOptions& o) {
  return {T(o.maximize ? -1 : 1), T(o.weight_decay), T(o.momentum), T(1 - o.dampening), T(-o.lr)};
}

// torch.optim.sgd._single_tensor_sgd for one element:
//   grad = -grad if maximize
//   grad = grad.add(param, alpha=weight_decay)               if weight_decay != 0
//   buf = grad.clone() | buf.mul_(momentum).add_(grad, alpha=1 - dampening)
//   grad = grad.add(buf, alpha=momentum) if nesterov else buf
//   param.add_(grad, alpha=-lr)
template <typename T, bool kWeightDecay, Momentum kMomentum, bool kNesterov, bool kFma>
PK_HOST_DEVICE void sgd_element(const SgdScalars<T>& s, T& param, T grad, T& buf) {
  T g = s.sign * grad;
  const T p = param;
  if constexpr (kWeightDecay) g = mul_add<kFma>(p, s.weight_decay, g);
  if constexpr (kMomentum != Momentum::None) {
    const T b = kMomentum == Momentum::First ? g : mul_add<kFma>(g, s.one_minus_dampening, buf * s.momentum);
    buf = b;
    g = kNesterov ? mul_add<kFma>(b, s.momentum, g) : b;
  }
  param = mul_add<kFma>(g, s.neg_lr, p);
}

// ---- Adam and AdamW -------------------------------------------------------------------------------

// Adam's weight decay: none, L2 (added to the gradient) or decoupled (AdamW: the parameter shrinks).
enum class WeightDecay { None, L2, Decoupled };

template <typename T>
struct AdamScalars {
  T sign;          // -1 with maximize
  T weight_decay;  // L2: grad.add(param, alpha=weight_decay)
  T decay;         // decoupled: param.mul_(1 - lr * weight_decay)
  // exp_avg.lerp_(grad, 1 - beta1), as torch's vectorized lerp computes it: for a weight below 0.5,
  // exp_avg + weight * (grad - exp_avg), else grad + (weight - 1) * (grad - exp_avg)
  T lerp_coeff;
  bool lerp_from_exp_avg;
  T beta2, one_minus_beta2;  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  T bias_correction2_sqrt;   // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
  T eps;
  T neg_step_size;  // param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
};

// The scalars of a step whose counter reads `step` (after its increment), computed in double as
// torch.optim.adam's for-loop computes them in Python floats.
template <typename T>
PK_HOST_DEVICE AdamScalars<T> adam_scalars(const AdamOptions& o, double step) {
  const double bias_correction1 = 1 - ::pow(o.beta1, step);
  const double bias_correction2 = 1 - ::pow(o.beta2, step);
  const T weight = T(1 - o.beta1);
  const bool small = (weight < T(0) ? -weight : weight) < T(0.5);
  return {T(o.maximize ? -1 : 1),
          T(o.weight_decay),
          T(1 - o.lr * o.weight_decay),
          small ? weight : weight - T(1),
          small,
          T(o.beta2),
          T(1 - o.beta2),
          T(::pow(bias_correction2, 0.5)),
          T(o.eps),
          T(-(o.lr / bias_correction1))};
}

// torch.optim.adam._single_tensor_adam for one element (capturable=False):
//   grad = -grad if maximize
//   param.mul_(1 - lr * weight_decay)                          decoupled weight decay, or
//   grad = grad.add(param, alpha=weight_decay)                 L2 weight decay
//   exp_avg.lerp_(grad, 1 - beta1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)   with amsgrad, which then
//                                                                    stands for exp_avg_sq below
//   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
template <typename T, WeightDecay kDecay, bool kAmsgrad, bool kFma>
PK_HOST_DEVICE void adam_element(const AdamScalars<T>& s, T& param, T grad, T& exp_avg, T& exp_avg_sq,
                                 T& max_exp_avg_sq) {
  T g = s.sign * grad;
  T p = param;
  if constexpr (kDecay == WeightDecay::Decoupled) p = p * s.decay;
  if constexpr (kDecay == WeightDecay::L2) g = mul_add<kFma>(p, s.weight_decay, g);
  const T m = exp_avg;
  const T m_new = mul_add<kFma>(s.lerp_coeff, g - m, s.lerp_from_exp_avg ? m : g);
  exp_avg = m_new;
  T v = exp_avg_sq * s.beta2;
  v = mul_add<kFma>(s.one_minus_beta2 * g, g, v);
  exp_avg_sq = v;
  if constexpr (kAmsgrad) {
    v = maximum(max_exp_avg_sq, v);
    max_exp_avg_sq = v;
  }
  const T denom = ::sqrt(v) / s.bias_correction2_sqrt + s.eps;
  param = s.neg_step_size * m_new / denom + p;
}

}  // namespace optim
}  // namespace pykernels
