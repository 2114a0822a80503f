// fused_sgd_ / fused_adam_ through the real wrapper (csrc/optimizer.cpp) with the CUDA kernels
// (csrc/cuda/optimizer.cu) on the emulator, against torch.optim's for-loop written with ATen ops:
// every option, float and double, sizes 0, 1, primes and chunk edges, and lists longer than one
// launch takes (more parameters than a launch holds, a parameter straddling two launches: the
// chunk is shrunk to 64 elements for that); and step counters on the device, which the kernel
// increments and reads itself.
#include "emu.h"

#include <cmath>
#include <vector>

#define PYKERNELS_OPTIMIZER_CHUNK 64
#include "cuda/optimizer.cu"

#undef PYKERNELS_DEVICE_CALL
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cuda(__VA_ARGS__)
#include "optimizer.cpp"

#include "check.h"

using namespace emu_test;
using at::Tensor;

namespace {

using List = std::vector<Tensor>;

// 30 parameters (more than the 24 a launch holds); with `straddling`, one more of 321 chunks,
// more than the 320 blocks of a launch.
std::vector<int64_t> sizes(bool straddling) {
  std::vector<int64_t> v;
  for (int r = 0; r < 5; ++r)
    for (int64_t n : {0, 1, 7, 64, 65, 1000}) v.push_back(n);
  if (straddling) v.insert(v.begin() + 3, 320 * 64 + 13);
  return v;
}

List randn(const std::vector<int64_t>& shape, at::ScalarType t, bool positive = false) {
  List v;
  for (int64_t n : shape) v.push_back(positive ? normal({n}, t).abs() : normal({n}, t));
  return v;
}

List copy(const List& v) {
  List c;
  for (const Tensor& t : v) c.push_back(t.clone());
  return c;
}

double tolerance(at::ScalarType t) { return t == at::kFloat ? 1e-5 : 1e-12; }

void expect_lists(const List& actual, const List& expected, at::ScalarType t, const std::string& what) {
  for (size_t i = 0; i < actual.size(); ++i)
    expect_close(actual[i], expected[i], tolerance(t), tolerance(t), c10::str(what, " [", i, "]"));
}

// torch.optim.sgd._single_tensor_sgd.
void sgd_reference(List& params, const List& grads, List& bufs, const pykernels::optim::SgdOptions& o, bool first) {
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = o.maximize ? -grads[i] : grads[i];
    if (o.weight_decay != 0) g = g.add(params[i], o.weight_decay);
    if (o.momentum != 0) {
      if (first) {
        bufs[i] = g.clone();
      } else {
        bufs[i].mul_(o.momentum).add_(g, 1 - o.dampening);
      }
      g = o.nesterov ? g.add(bufs[i], o.momentum) : bufs[i];
    }
    params[i].add_(g, -o.lr);
  }
}

// torch.optim.adam._single_tensor_adam, capturable=False; `steps` are the counters.
void adam_reference(List& params, const List& grads, List& m, List& v, List& vmax, std::vector<double>& steps,
                    const pykernels::optim::AdamOptions& o) {
  for (size_t i = 0; i < params.size(); ++i) {
    steps[i] += 1;
    Tensor g = o.maximize ? -grads[i] : grads[i];
    if (o.weight_decay != 0) {
      if (o.decoupled_weight_decay) {
        params[i].mul_(1 - o.lr * o.weight_decay);
      } else {
        g = g.add(params[i], o.weight_decay);
      }
    }
    m[i].lerp_(g, 1 - o.beta1);
    v[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
    const double step_size = o.lr / (1 - std::pow(o.beta1, steps[i]));
    const double bias_correction2_sqrt = std::pow(1 - std::pow(o.beta2, steps[i]), 0.5);
    if (o.amsgrad) at::maximum_out(vmax[i], vmax[i], v[i]);
    const Tensor denom = ((o.amsgrad ? vmax[i] : v[i]).sqrt() / bias_correction2_sqrt).add_(o.eps);
    params[i].addcdiv_(m[i], denom, -step_size);
  }
}

void test_sgd(at::ScalarType t, const pykernels::optim::SgdOptions& o, const std::string& what) {
  const auto shape = sizes(false);
  List params = randn(shape, t), grads = randn(shape, t);
  List expected = copy(params), expected_bufs(params.size());
  List bufs = o.momentum != 0 ? randn(shape, t) : List{};
  for (int step = 0; step < 3; ++step) {
    const bool first = step == 0;
    pykernels::ops::fused_sgd_(params, grads, bufs, o.lr, o.momentum, o.dampening, o.nesterov, o.weight_decay,
                               o.maximize, first);
    sgd_reference(expected, grads, expected_bufs, o, first);
    expect_lists(params, expected, t, c10::str("sgd ", what, " ", name(t), " step ", step, " params"));
    if (o.momentum != 0) expect_lists(bufs, expected_bufs, t, c10::str("sgd ", what, " ", name(t), " buffers"));
  }
}

void test_adam(at::ScalarType t, const pykernels::optim::AdamOptions& o, bool straddling, const std::string& what) {
  const auto shape = sizes(straddling);
  const size_t n = shape.size();
  List params = randn(shape, t), grads = randn(shape, t), m = randn(shape, t), v = randn(shape, t, true);
  List vmax = o.amsgrad ? randn(shape, t, true) : List{};
  List counters;
  for (size_t i = 0; i < n; ++i) counters.push_back(at::full({}, 2.0, at::kFloat));
  List p2 = copy(params), m2 = copy(m), v2 = copy(v), vmax2 = copy(vmax);
  std::vector<double> steps(n, 2.0);
  for (int step = 0; step < 2; ++step) {
    pykernels::ops::fused_adam_(params, grads, m, v, vmax, counters, o.lr, o.beta1, o.beta2, o.weight_decay, o.eps,
                                o.amsgrad, o.maximize, o.decoupled_weight_decay);
    adam_reference(p2, grads, m2, v2, vmax2, steps, o);
    const std::string id = c10::str("adam ", what, " ", name(t), " step ", step);
    expect_lists(params, p2, t, id + " params");
    expect_lists(m, m2, t, id + " exp_avgs");
    expect_lists(v, v2, t, id + " exp_avg_sqs");
    if (o.amsgrad) expect_lists(vmax, vmax2, t, id + " max_exp_avg_sqs");
    for (size_t i = 0; i < n; ++i)
      expect_equal(counters[i], at::full({}, steps[i], at::kFloat), c10::str(id, " state_steps [", i, "]"));
  }
}

// Counters on the device (capturable): the kernel increments each once and every block of its
// parameter reads the new count. Here the counters are float and double, and the emulator's
// "device" memory is the host's.
void test_adam_device_steps(at::ScalarType t) {
  const pykernels::optim::AdamOptions o{1e-2, 0.9, 0.999, 0.0, 1e-8, false, false, false};
  const auto shape = sizes(false);
  const size_t n = shape.size();
  List params = randn(shape, t), grads = randn(shape, t), m = randn(shape, t), v = randn(shape, t, true);
  List p2 = copy(params), m2 = copy(m), v2 = copy(v), vmax2;
  List counters;
  for (size_t i = 0; i < n; ++i) counters.push_back(at::full({}, 4.0, i % 2 ? at::kDouble : at::kFloat));
  std::vector<double> steps(n, 4.0);
  pykernels::AdamStep step;
  step.options = o;
  for (size_t i = 0; i < n; ++i) {
    step.params.push_back({pykernels::make_iter<5>("emu", {params[i], grads[i], m[i], v[i], params[i]}), t, 0.0,
                           counters[i].data_ptr(), counters[i].scalar_type()});
  }
  pykernels::fused_adam_kernel_cuda(step);
  adam_reference(p2, grads, m2, v2, vmax2, steps, o);
  const std::string id = c10::str("adam device steps ", name(t));
  expect_lists(params, p2, t, id + " params");
  expect_lists(m, m2, t, id + " exp_avgs");
  for (size_t i = 0; i < n; ++i) expect_equal(counters[i].to(at::kDouble), at::full({}, 5.0, at::kDouble), id);
}

}  // namespace

void test_optim() {
  using pykernels::optim::AdamOptions;
  using pykernels::optim::SgdOptions;
  for (at::ScalarType t : {at::kFloat, at::kDouble}) {
    test_sgd(t, SgdOptions{0.1, 0.0, 0.0, 0.0, false, false}, "plain");
    test_sgd(t, SgdOptions{0.1, 0.9, 0.1, 0.01, false, false}, "momentum");
    test_sgd(t, SgdOptions{0.05, 0.9, 0.0, 0.1, true, true}, "nesterov maximize");
    test_adam(t, AdamOptions{1e-2, 0.9, 0.999, 0.0, 1e-8, false, false, false}, true, "defaults");
    test_adam(t, AdamOptions{1e-2, 0.9, 0.999, 0.1, 1e-8, true, true, false}, false, "l2 amsgrad maximize");
    test_adam(t, AdamOptions{1e-2, 0.9, 0.99, 0.05, 1e-6, true, false, true}, false, "adamw amsgrad");
    test_adam(t, AdamOptions{1e-2, 0.3, 0.999, 0.0, 1e-8, false, false, false}, false, "beta1 0.3");
    test_adam_device_steps(t);
  }
}
