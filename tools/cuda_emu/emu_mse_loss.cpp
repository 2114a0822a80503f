// mse_loss forward ('none', 'mean', 'sum'), backward and the fused loss-and-gradient through the real wrapper
// (csrc/mse_loss.cpp) with the CUDA kernels (csrc/cuda/mse_loss.cu) on the emulator.
#include "emu.h"

#include "cuda/mse_loss.cu"

#undef PYKERNELS_DEVICE_CALL
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cuda(__VA_ARGS__)
#include "mse_loss.cpp"

#include "check.h"

using namespace emu_test;
using at::Tensor;

void test_mse_loss() {
  emu::g_sm_count = 4;
  for (at::ScalarType t : {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble}) {
    struct Case {
      std::string what;
      Tensor a, b;
    };
    std::vector<Case> cases = {
        {"[0]", ints({0}, t), ints({0}, t)},
        {"[1]", ints({1}, t), ints({1}, t)},
        {"[1000]", ints({1000}, t), ints({1000}, t)},
        {"[100000]", ints({100000}, t, -2, 2), ints({100000}, t, -2, 2)},
        {"transposed", ints({70, 30}, t).t(), ints({30, 70}, t)},
        {"broadcast", ints({30, 1}, t), ints({70}, t)},
        {"sliced", ints({40, 90}, t).slice(1, 0, 90, 3), ints({40, 30}, t)},
    };
    for (const auto& c : cases) {
      const std::string id = name(t) + " " + c.what;
      const auto shape = at::infer_size(c.a.sizes(), c.b.sizes());
      const Tensor a = c.a.expand(shape).to(at::kDouble), b = c.b.expand(shape).to(at::kDouble);
      const Tensor sq = (a - b) * (a - b);
      // Integer-valued inputs: the sums are exact; 'mean' divides once.
      expect_equal(pykernels::ops::mse_loss(c.a, c.b, 0), sq.to(t), "mse none " + id);
      expect_equal(pykernels::ops::mse_loss(c.a, c.b, 2), sq.sum().to(t), "mse sum " + id);
      expect_close(pykernels::ops::mse_loss(c.a, c.b, 1), sq.mean().to(t), tol_of(t), tol_of(t), "mse mean " + id);
      for (int64_t red : {0, 1, 2}) {
        const Tensor g = red == 0 ? ints(shape, t) : ints({}, t);
        const double scale = red == 1 ? 2.0 / std::max<int64_t>(a.numel(), 1) : 2.0;
        const Tensor expected = (scale * (a - b) * g.to(at::kDouble)).to(t);
        expect_close(pykernels::ops::mse_loss_backward(g, c.a, c.b, red), expected, tol_of(t), tol_of(t),
                     c10::str("mse backward reduction=", red, " ", id));
      }
      for (int64_t red : {1, 2}) {  // the fused forward: loss and the gradient for grad_output = 1
        const auto [loss, grad] = pykernels::ops::mse_loss_and_grad(c.a, c.b, red);
        const double scale = red == 1 ? 2.0 / std::max<int64_t>(a.numel(), 1) : 2.0;
        expect_close(loss, pykernels::ops::mse_loss(c.a, c.b, red), tol_of(t), tol_of(t),
                     c10::str("mse_loss_and_grad loss reduction=", red, " ", id));
        expect_close(grad, (scale * (a - b)).to(t), tol_of(t), tol_of(t),
                     c10::str("mse_loss_and_grad grad reduction=", red, " ", id));
      }
    }
  }
  const Tensor x = normal({50000}, at::kFloat), y = normal({50000}, at::kFloat);
  const Tensor d = (x.to(at::kDouble) - y.to(at::kDouble));
  expect_close(pykernels::ops::mse_loss(x, y, 1), (d * d).mean().to(at::kFloat), 1e-6, 1e-5, "mse mean randn");
}
