// The fused optimizer steps, fused_sgd_ and fused_adam_: one step of torch.optim's SGD, or of
// Adam and AdamW, over every parameter in one call, as torch's _fused_sgd_ and _fused_adam_ do it
// (pykernels/dropin/optim.py sends torch.optim's own steps here). Each parameter's update is what
// torch.optim's for-loop implementation computes (common/optimizer_math.h).
//
// Every list is checked before anything is written: the lengths, then for each parameter the
// dtype, shape, device and layout of its gradient and state, and that no written tensor stores an
// element twice or overlaps another operand of its parameter. Then the step counters kept on the
// CPU are incremented and read here, and the kernel updates every parameter; counters kept on the
// parameters' GPU (capturable) are incremented and read by the CUDA kernel, without a host sync.
#include <ATen/MemoryOverlap.h>

#include "common/checks.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

void check_length(const char* op, const char* list, size_t length, size_t params, bool may_be_empty) {
  PK_CHECK(length == params || (may_be_empty && length == 0), op, "expected ", params, " ", list,
           may_be_empty ? " (one per param, or none)" : " (one per param)", ", got ", length);
}

void check_param(const char* op, const Tensor& param, size_t i, at::Device device) {
  PK_CHECK(param.defined(), op, "params[", i, "] is an undefined tensor");
  PK_CHECK(param.layout() == at::kStrided, op, "params[", i, "] must be a strided tensor, got layout ", param.layout());
  PK_CHECK_NOT_IMPLEMENTED(param.scalar_type() == at::kFloat || param.scalar_type() == at::kDouble, op, "params[", i,
                           "] has dtype ", param.scalar_type(), ", which is not supported (float32 and float64 only)");
  PK_CHECK(param.device() == device, op, "expected all tensors to be on the same device, but params[", i, "] is on ",
           param.device(), " and params[0] on ", device);
}

// A gradient or state tensor of params[i]: its dtype, shape, device and layout.
void check_like_param(const char* op, const char* list, size_t i, const Tensor& t, const Tensor& param) {
  PK_CHECK(t.defined(), op, list, "[", i, "] is an undefined tensor");
  PK_CHECK(t.layout() == at::kStrided, op, list, "[", i, "] must be a strided tensor, got layout ", t.layout());
  PK_CHECK(t.device() == param.device(), op, "expected all tensors to be on the same device, but ", list, "[", i,
           "] is on ", t.device(), " and params[", i, "] on ", param.device());
  PK_CHECK(t.scalar_type() == param.scalar_type(), op, list, "[", i, "] has dtype ", t.scalar_type(), " but params[", i,
           "] has dtype ", param.scalar_type());
  PK_CHECK(t.sizes() == param.sizes(), op, list, "[", i, "] has shape ", t.sizes(), " but params[", i, "] has shape ",
           param.sizes());
}

void check_writable(const char* op, const char* list, size_t i, const Tensor& t) {
  PK_CHECK(at::has_internal_overlap(t) != at::MemOverlap::Yes, op, "unsupported operation: more than one element of ",
           list, "[", i, "] refers to the same memory location");
}

// A written tensor and another operand of the same parameter: disjoint (torch's own rule for
// in-place ops; a layout too irregular to tell is let through, as torch lets it).
void check_no_overlap(const char* op, const char* written, const Tensor& w, const char* other, const Tensor& o,
                      size_t i) {
  const at::MemOverlapStatus status = at::get_overlap_status(w, o);
  PK_CHECK(status != at::MemOverlapStatus::Partial && status != at::MemOverlapStatus::Full, op, written, "[", i,
           "] and ", other, "[", i, "] overlap in memory");
}

void check_no_overlaps(const char* op, size_t i, std::initializer_list<std::pair<const char*, Tensor>> written,
                       std::initializer_list<std::pair<const char*, Tensor>> read) {
  for (auto w = written.begin(); w != written.end(); ++w) {
    check_writable(op, w->first, i, w->second);
    for (auto o = w + 1; o != written.end(); ++o) check_no_overlap(op, w->first, w->second, o->first, o->second, i);
    for (const auto& r : read) check_no_overlap(op, w->first, w->second, r.first, r.second, i);
  }
}

// On CUDA a parameter is updated as one flat run of memory: its operands must share one dense layout.
template <int N>
void check_flat_on_cuda(const char* op, const StridedIter<N>& it, at::Device device, size_t i) {
  if (!device.is_cuda() || it.numel == 0) return;
  bool flat = it.ndim == 1;
  for (int k = 0; k < N; ++k) flat = flat && it.strides[k][0] == 1;
  PK_CHECK(flat, op, "on CUDA, params[", i, "] and its gradient and state must be dense tensors with the same strides");
}

void check_step(const char* op, const Tensor& step, size_t i, const Tensor& param) {
  PK_CHECK(step.defined(), op, "state_steps[", i, "] is an undefined tensor");
  PK_CHECK(step.layout() == at::kStrided && step.numel() == 1, op, "state_steps[", i,
           "] must be a strided tensor of one element, got shape ", step.sizes());
  PK_CHECK(step.scalar_type() == at::kFloat || step.scalar_type() == at::kDouble, op, "state_steps[", i,
           "] must be float32 or float64, got ", step.scalar_type());
  PK_CHECK(step.is_cpu() || step.device() == param.device(), op, "state_steps[", i, "] must be on the CPU or on ",
           param.device(), " with params[", i, "], got ", step.device());
}

// step += 1 on a counter kept on the CPU, in its own dtype as torch's `step_t += 1` does; the new count.
double increment_host_step(const Tensor& step) {
  if (step.scalar_type() == at::kFloat) {
    float* count = static_cast<float*>(step.data_ptr());
    *count += 1.0f;
    return *count;
  }
  double* count = static_cast<double*>(step.data_ptr());
  *count += 1.0;
  return *count;
}

}  // namespace

namespace ops {

void fused_sgd_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers, double lr,
                double momentum, double dampening, bool nesterov, double weight_decay, bool maximize,
                bool is_first_step) {
  const char* op = "fused_sgd_";
  const size_t n = params.size();
  const bool with_momentum = momentum != 0;
  check_length(op, "grads", grads.size(), n, false);
  check_length(op, "momentum_buffers", momentum_buffers.size(), n, !with_momentum);
  if (n == 0) return;
  const at::Device device = params[0].device();
  SgdStep step;
  step.options = {lr, momentum, dampening, weight_decay, nesterov, maximize};
  step.momentum = !with_momentum  ? optim::Momentum::None
                  : is_first_step ? optim::Momentum::First
                                  : optim::Momentum::Running;
  step.params.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& param = params[i];
    check_param(op, param, i, device);
    check_like_param(op, "grads", i, grads[i], param);
    // Without momentum the buffer operand is the param itself, never read.
    const Tensor& buf = with_momentum ? momentum_buffers[i] : param;
    if (with_momentum) {
      check_like_param(op, "momentum_buffers", i, buf, param);
      check_no_overlaps(op, i, {{"params", param}, {"momentum_buffers", buf}}, {{"grads", grads[i]}});
    } else {
      check_no_overlaps(op, i, {{"params", param}}, {{"grads", grads[i]}});
    }
    SgdParam p{make_iter<3>(op, {param, grads[i], buf}), param.scalar_type()};
    check_flat_on_cuda(op, p.it, device, i);
    step.params.push_back(p);
  }
  PYKERNELS_DEVICE_CALL(device, fused_sgd_kernel, step);
}

void fused_adam_(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                 at::TensorList max_exp_avg_sqs, at::TensorList state_steps, double lr, double beta1, double beta2,
                 double weight_decay, double eps, bool amsgrad, bool maximize, bool decoupled_weight_decay) {
  const char* op = "fused_adam_";
  const size_t n = params.size();
  check_length(op, "grads", grads.size(), n, false);
  check_length(op, "exp_avgs", exp_avgs.size(), n, false);
  check_length(op, "exp_avg_sqs", exp_avg_sqs.size(), n, false);
  check_length(op, "max_exp_avg_sqs", max_exp_avg_sqs.size(), n, !amsgrad);
  check_length(op, "state_steps", state_steps.size(), n, false);
  if (n == 0) return;
  const at::Device device = params[0].device();
  AdamStep step;
  step.options = {lr, beta1, beta2, weight_decay, eps, amsgrad, maximize, decoupled_weight_decay};
  step.params.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& param = params[i];
    check_param(op, param, i, device);
    check_like_param(op, "grads", i, grads[i], param);
    check_like_param(op, "exp_avgs", i, exp_avgs[i], param);
    check_like_param(op, "exp_avg_sqs", i, exp_avg_sqs[i], param);
    check_step(op, state_steps[i], i, param);
    // Without amsgrad the max_exp_avg_sq operand is the param itself, never read.
    const Tensor& max_sq = amsgrad ? max_exp_avg_sqs[i] : param;
    if (amsgrad) {
      check_like_param(op, "max_exp_avg_sqs", i, max_sq, param);
      check_no_overlaps(
          op, i,
          {{"params", param}, {"exp_avgs", exp_avgs[i]}, {"exp_avg_sqs", exp_avg_sqs[i]}, {"max_exp_avg_sqs", max_sq}},
          {{"grads", grads[i]}});
    } else {
      check_no_overlaps(op, i, {{"params", param}, {"exp_avgs", exp_avgs[i]}, {"exp_avg_sqs", exp_avg_sqs[i]}},
                        {{"grads", grads[i]}});
    }
    AdamParam p{make_iter<5>(op, {param, grads[i], exp_avgs[i], exp_avg_sqs[i], max_sq}), param.scalar_type(), 0.0,
                nullptr, state_steps[i].scalar_type()};
    check_flat_on_cuda(op, p.it, device, i);
    step.params.push_back(p);
  }
  // Every check has passed: from here on, tensors are written. Every counter advances, an empty
  // param's too, as in torch's loop, which reads each counter right after its own increment.
  for (size_t i = 0; i < n; ++i) {
    const Tensor& counter = state_steps[i];
    if (counter.is_cpu()) {
      step.params[i].step = increment_host_step(counter);
    } else {
      step.params[i].device_step = counter.data_ptr();
    }
  }
  PYKERNELS_DEVICE_CALL(device, fused_adam_kernel, step);
}

}  // namespace ops

}  // namespace pykernels
