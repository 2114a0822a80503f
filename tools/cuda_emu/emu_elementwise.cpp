// Elementwise ops, pow with a tensor exponent and its backward, relu and relu_backward through the
// real wrappers (csrc/elementwise.cpp), with the CUDA kernels (csrc/cuda/elementwise.cu) running
// on the emulator.
#include "emu.h"

#include "cuda/elementwise.cu"

#undef PYKERNELS_DEVICE_CALL
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cuda(__VA_ARGS__)
#include "elementwise.cpp"

#include "check.h"

// The bit-mask ReLU has CPU kernels only (csrc/cpu/elementwise.cpp, which the emulator does not
// build); the wrappers above name them, so they are defined here and fail loudly if reached.
namespace pykernels {
void relu_mask_kernel_cpu(const StridedIter<2>&, uint8_t*, at::ScalarType) {
  EMU_CHECK(false, "relu_mask_kernel_cpu is a CPU kernel, not part of the emulator");
}
void relu_mask_backward_kernel_cpu(const StridedIter<2>&, const uint8_t*, at::ScalarType) {
  EMU_CHECK(false, "relu_mask_backward_kernel_cpu is a CPU kernel, not part of the emulator");
}
}  // namespace pykernels

using namespace emu_test;
using at::Tensor;

namespace {

// Operand pairs in the layouts the launcher distinguishes: aligned contiguous (vector path),
// unaligned contiguous, broadcast, transposed, sliced, 0-dim, empty.
struct Pair {
  std::string what;
  Tensor a, b;
};

Tensor make(at::IntArrayRef shape, at::ScalarType t, bool nonzero) {
  Tensor x;
  if (at::isFloatingType(t)) {
    x = at::randn(shape, at::kDouble);
    if (nonzero) x = at::where(x >= 0, x + 0.5, x - 0.5);
  } else if (t == at::kBool) {
    x = nonzero ? at::ones(shape, at::kLong) : at::randint(0, 2, shape, at::kLong);
  } else {
    x = at::randint(t == at::kByte ? 0 : -9, t == at::kByte ? 20 : 10, shape, at::kLong);
    if (nonzero) x = at::where(x == 0, at::ones_like(x), x);
  }
  return x.to(t);
}

std::vector<Pair> pairs(at::ScalarType t, bool nonzero) {
  auto mk = [&](at::IntArrayRef s) { return make(s, t, nonzero); };
  std::vector<Pair> v;
  for (int64_t n : {0, 1, 7, 33, 1031}) v.push_back({c10::str("contiguous[", n, "]"), mk({n}), mk({n})});
  v.push_back({"contiguous[4,257]", mk({4, 257}), mk({4, 257})});
  v.push_back({"unaligned[1031]", mk({1032}).narrow(0, 1, 1031), mk({1031})});
  v.push_back({"broadcast row", mk({5, 67}), mk({67})});
  v.push_back({"broadcast col", mk({5, 1}), mk({5, 67})});
  v.push_back({"outer broadcast", mk({3, 1, 5}), mk({1, 4, 5})});
  v.push_back({"transposed", mk({67, 5}).t(), mk({5, 67})});
  v.push_back({"sliced", mk({10, 140}).slice(0, 0, 10, 2).slice(1, 0, 140, 2), mk({5, 70})});
  v.push_back({"0-dim other", mk({2, 300}), mk({})});
  v.push_back({"0-dim both", mk({}), mk({})});
  v.push_back({"empty broadcast", mk({2, 0, 3}), mk({1, 3})});
  return v;
}

const at::ScalarType kTypes[] = {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble,
                                 at::kInt,   at::kLong, at::kByte,     at::kBool};

void binary_ops() {
  for (at::ScalarType t : kTypes) {
    for (const auto& [what, a, b] : pairs(t, false)) {
      const std::string id = name(t) + " " + what;
      const double tol = tol_of(t);
      if (t != at::kBool) {
        expect_close(pykernels::ops::add(a, b, 1), at::add(a, b, 1), tol, tol, "add " + id);
        expect_close(pykernels::ops::add(a, b, 2), at::add(a, b, 2), tol, tol, "add alpha=2 " + id);
        expect_close(pykernels::ops::sub(a, b, -3), at::sub(a, b, -3), tol, tol, "sub alpha=-3 " + id);
        if (at::isFloatingType(t))
          expect_close(pykernels::ops::add(a, b, 0.5), at::add(a, b, 0.5), tol, tol, "add alpha=0.5 " + id);
      } else {
        expect_equal(pykernels::ops::add(a, b, true), at::add(a, b, true), "add " + id);
      }
      expect_close(pykernels::ops::mul(a, b), at::mul(a, b), tol, tol, "mul " + id);
    }
    for (const auto& [what, a, b] : pairs(t, true)) {
      const std::string id = name(t) + " " + what;
      const double tol = std::max(tol_of(t), tol_of(at::kFloat));
      expect_close(pykernels::ops::div(a, b, c10::nullopt), at::div(a, b), tol, tol, "div " + id);
      if (t == at::kBool) continue;
      // Rounded quotients of float16/bfloat16 may land on the other side of an integer after
      // the float computation, so those are checked with one unit of slack.
      const double rtol = (t == at::kHalf || t == at::kBFloat16) ? 0 : tol;
      const double atol = (t == at::kHalf || t == at::kBFloat16) ? 1.0 : tol;
      expect_close(pykernels::ops::div(a, b, "trunc"), at::div(a, b, "trunc"), atol, rtol, "div trunc " + id);
      expect_close(pykernels::ops::div(a, b, "floor"), at::div(a, b, "floor"), atol, rtol, "div floor " + id);
    }
  }
  // Integer edge cases: floor division of negatives, INT_MIN / -1, division by zero (gives 0).
  const Tensor x = at::tensor({-7, 7, -7, 7, INT32_MIN, 5}, at::kInt);
  const Tensor y = at::tensor({2, -2, -2, 2, -1, 0}, at::kInt);
  expect_equal(pykernels::ops::div(x, y, "floor"), at::tensor({-4, -4, 3, 3, INT32_MIN, 0}, at::kInt), "int floor div");
  expect_equal(pykernels::ops::div(x, y, "trunc"), at::tensor({-3, -3, 3, 3, INT32_MIN, 0}, at::kInt), "int trunc div");
  // Float floor division by zero and of signed zeros follows IEEE, as torch.
  const Tensor fx = at::tensor({1.0, -1.0, 0.0, 5.5, -5.5}), fy = at::tensor({0.0, 0.0, 0.0, 2.0, 2.0});
  expect_equal(pykernels::ops::div(fx, fy, "floor"), at::div(fx, fy, "floor"), "float floor div specials");
}

void in_place_and_out() {
  for (at::ScalarType t : {at::kFloat, at::kHalf, at::kLong}) {
    // in place on a transposed view (the output is not contiguous)
    Tensor a = make({67, 5}, t, false).t(), b = make({5, 67}, t, false);
    Tensor expected = a.clone();
    expected.add_(b, 2);
    Tensor ours = a.clone();  // keeps the transposed strides
    pykernels::ops::add_(ours, b, 2);
    expect_close(ours, expected, tol_of(t), tol_of(t), "add_ transposed " + name(t));
    ours = a.clone();
    pykernels::ops::neg_(ours);
    expect_close(ours, at::neg(a), 0, 0, "neg_ " + name(t));
  }
  // compute in float32, write into a float64 out= (the wrapper's cast path)
  Tensor a = make({100}, at::kFloat, false), b = make({100}, at::kFloat, false);
  Tensor out = at::empty({100}, at::kDouble);
  pykernels::ops::mul_out(a, b, out);
  expect_close(out, at::mul(a, b).to(at::kDouble), 0, 0, "mul.out float64");
}

void unary_ops() {
  for (at::ScalarType t : kTypes) {
    for (const auto& [what, a, unused] : pairs(t, false)) {
      const std::string id = name(t) + " " + what;
      if (t != at::kBool) {
        expect_close(pykernels::ops::neg(a), at::neg(a), 0, 0, "neg " + id);
        expect_close(pykernels::ops::relu(a), at::relu(a), 0, 0, "relu " + id);
      }
      if (!at::isFloatingType(t)) {
        for (int e : {0, 1, 2, 3, 5}) {
          if (t == at::kBool && e > 1) continue;
          expect_equal(pykernels::ops::pow(a, e), at::pow(a, e), c10::str("pow ", e, " ", id));
        }
        continue;
      }
      const double tol = std::max(tol_of(t), 1e-6);
      const Tensor pos = a.abs() + 0.5;
      expect_close(pykernels::ops::exp(a), at::exp(a), tol, tol, "exp " + id);
      expect_close(pykernels::ops::log(pos), at::log(pos), tol, tol, "log " + id);
      expect_close(pykernels::ops::sqrt(pos), at::sqrt(pos), tol, tol, "sqrt " + id);
      for (double e : {2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.7, 0.0})
        expect_close(pykernels::ops::pow(pos, e), at::pow(pos, e), tol, tol, c10::str("pow ", e, " ", id));
    }
  }
  // NaN handling of relu and relu_backward
  const Tensor x = at::tensor({-1.0, 0.0, NAN, 2.0, -0.0});
  expect_equal(pykernels::ops::relu(x), at::relu(x), "relu NaN");
  const Tensor g = at::tensor({1.0, 2.0, 3.0, 4.0, 5.0});
  expect_equal(pykernels::ops::relu_backward(g, x), at::threshold_backward(g, x, 0), "relu_backward NaN");
}

// pow with a tensor exponent. A floating 0-dim exponent takes the number-exponent kernel, as a
// 0-dim CPU exponent does on a GPU (every tensor here is a CPU tensor), so it is compared with
// the number form computed in float (torch's CUDA kernels, not its CPU ones, take the sqrt
// shortcut for float16 too); other exponents with torch's tensor form, pow for every element.
Tensor pow_reference(const Tensor& a, const Tensor& e) {
  const at::ScalarType t = at::result_type(a, e);
  if (e.dim() > 0 || !at::isFloatingType(t)) return at::pow(a, e);
  const at::ScalarType compute = t == at::kDouble ? at::kDouble : at::kFloat;
  return at::pow(a.to(compute), e.to(t).item()).to(t);
}

void pow_tensor() {
  for (at::ScalarType t : kTypes) {
    if (t == at::kBool) continue;
    for (const auto& [what, a, b] : pairs(t, false)) {
      const std::string id = name(t) + " " + what;
      const double tol = std::max(tol_of(t), 1e-6);
      expect_close(pykernels::ops::pow_Tensor_Tensor(a, b), pow_reference(a, b), tol, tol, "pow tensor " + id);
      if (!at::isFloatingType(t)) continue;
      const Tensor pos = a.abs() + 0.5;  // real results for every exponent
      expect_close(pykernels::ops::pow_Tensor_Tensor(pos, b), pow_reference(pos, b), tol, tol,
                   "pow tensor positive " + id);
    }
  }
  // Integer bases to negative integer exponents: 1, +-1 or 0, as torch; overflow wraps.
  const Tensor base = at::tensor({-3, -2, -1, 0, 1, 2, 3, -1, 7, 3}, at::kLong);
  const Tensor ex = at::tensor({-1, -2, -3, -1, -5, -1, 0, -4, 30, 41}, at::kLong);
  for (at::ScalarType t : {at::kInt, at::kLong}) {
    expect_equal(pykernels::ops::pow_Tensor_Tensor(base.to(t), ex.to(t)), at::pow(base.to(t), ex.to(t)),
                 "pow tensor negative integer exponents " + name(t));
  }
  // Special values against every special exponent, both as a tensor of exponents (pow for every
  // element) and as 0-dim exponents (the number kernel's shortcuts).
  const Tensor x = at::tensor({0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0, -1.0, 2.5, -3.0, 0.75});
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const Tensor xt = x.to(t);
    for (double e :
         {0.5, -0.5, -1.0, 2.0, 3.0, -2.0, 0.0, 1.0, 1.5, -1.5, double(INFINITY), -double(INFINITY), double(NAN)}) {
      const Tensor full = at::full_like(xt, e), scalar = at::scalar_tensor(e, t);
      const double tol = tol_of(t);
      expect_close(pykernels::ops::pow_Tensor_Tensor(xt, full), pow_reference(xt, full), tol, tol,
                   c10::str("pow specials ", e, " ", name(t)));
      expect_close(pykernels::ops::pow_Tensor_Tensor(xt, scalar), pow_reference(xt, scalar), tol, tol,
                   c10::str("pow specials 0-dim ", e, " ", name(t)));
    }
  }
}

// pow_tensor_backward against torch's formulas evaluated in float64 and rounded to the dtype.
std::tuple<Tensor, Tensor> pow_backward_reference(const Tensor& g, const Tensor& a, const Tensor& e, const Tensor& r) {
  const Tensor gd = g.to(at::kDouble), ad = a.to(at::kDouble), ed = e.to(at::kDouble), rd = r.to(at::kDouble);
  const Tensor zero = at::zeros({}, at::kDouble);
  const Tensor gi = at::where(ed == 0, zero, gd * (ed * at::pow(ad, ed - 1)));
  const Tensor ge = gd * at::where(at::logical_and(ad == 0, ed >= 0), zero, rd * at::log(ad));
  const auto shape = at::infer_size(at::infer_size(g.sizes(), a.sizes()), at::infer_size(e.sizes(), r.sizes()));
  return {gi.expand(shape).contiguous().to(g.scalar_type()), ge.expand(shape).contiguous().to(g.scalar_type())};
}

void pow_backward() {
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const double tol = std::max(tol_of(t), 1e-5);
    for (const auto& [what, a0, e] : pairs(t, false)) {
      const Tensor a = a0.abs() + 0.5;
      const Tensor r = at::pow(a, e), g = make(r.sizes(), t, false);
      const auto [gi, ge] = pykernels::ops::pow_tensor_backward(g, a, e, r);
      const auto [gi_ref, ge_ref] = pow_backward_reference(g, a, e, r);
      expect_close(gi, gi_ref, tol, tol, "pow_tensor_backward input " + name(t) + " " + what);
      expect_close(ge, ge_ref, tol, tol, "pow_tensor_backward exponent " + name(t) + " " + what);
    }
    // Masked points (exponent 0; input 0 with exponent >= 0), negative inputs, and a transposed
    // result, which the wrapper copies to the outputs' layout.
    const Tensor a = at::tensor({0.0, 0.0, 0.0, 2.0, -2.0, -2.0, 1.5, 0.0}).to(t).reshape({2, 4});
    const Tensor e = at::tensor({0.0, 2.0, -1.0, 0.0, 2.0, 0.5, 1.5, 0.5}).to(t).reshape({2, 4});
    const Tensor r = at::pow(a, e).t().contiguous().t(), g = make({2, 4}, t, true);
    const auto [gi, ge] = pykernels::ops::pow_tensor_backward(g, a, e, r);
    const auto [gi_ref, ge_ref] = pow_backward_reference(g, a, e, r);
    expect_close(gi, gi_ref, tol, tol, "pow_tensor_backward masked input " + name(t));
    expect_close(ge, ge_ref, tol, tol, "pow_tensor_backward masked exponent " + name(t));
  }
}

void relu_backward() {
  for (at::ScalarType t : {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble, at::kInt}) {
    for (const auto& [what, g, r] : pairs(t, false)) {
      if (g.sizes() != r.sizes()) continue;
      expect_equal(pykernels::ops::relu_backward(g, r), at::threshold_backward(g, r, 0),
                   "relu_backward " + name(t) + " " + what);
    }
    const Tensor g = make({67, 5}, t, false).t(), r = make({5, 67}, t, false);
    expect_equal(pykernels::ops::relu_backward(g, r), at::threshold_backward(g, r, 0),
                 "relu_backward transposed " + name(t));
  }
}

// With one SM the grids are capped at 8 blocks, so these sizes take several grid-stride passes.
void multi_pass() {
  emu::g_sm_count = 1;
  for (at::ScalarType t : {at::kFloat, at::kHalf, at::kLong}) {
    const Tensor a = make({20003}, t, false), b = make({20003}, t, false);
    const Tensor u = make({20004}, t, false).narrow(0, 1, 20003);
    const double tol = tol_of(t);
    expect_close(pykernels::ops::mul(a, b), at::mul(a, b), tol, tol, "multi-pass vectorized " + name(t));
    expect_close(pykernels::ops::mul(u, b), at::mul(u, b), tol, tol, "multi-pass unaligned " + name(t));
    const Tensor x = make({3, 6667}, t, false).t(), y = make({6667, 3}, t, false);  // transposed: strided path
    expect_close(pykernels::ops::sub(x, y, 1), at::sub(x, y), tol, tol, "multi-pass strided " + name(t));
  }
  const Tensor a = make({20003}, at::kFloat, false).abs() + 0.5, e = make({20003}, at::kFloat, false);
  const Tensor r = at::pow(a, e), g = make({20003}, at::kFloat, false);
  const auto [gi, ge] = pykernels::ops::pow_tensor_backward(g, a, e, r);
  const auto [gi_ref, ge_ref] = pow_backward_reference(g, a, e, r);
  expect_close(gi, gi_ref, 1e-5, 1e-5, "multi-pass pow_tensor_backward input");
  expect_close(ge, ge_ref, 1e-5, 1e-5, "multi-pass pow_tensor_backward exponent");
  emu::g_sm_count = 4;
}

}  // namespace

void test_elementwise() {
  binary_ops();
  in_place_and_out();
  unary_ops();
  pow_tensor();
  pow_backward();
  relu_backward();
  multi_pass();
}
