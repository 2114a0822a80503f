// sum / mean through the real wrapper (csrc/reduce.cpp) with the CUDA kernels
// (csrc/cuda/reduce.cu) on the emulator: inner and outer reductions, reductions split across
// blocks, every layout, empty and size-1 cases; and the summation error of the CUDA tests' long
// cases against their tolerance.
#include "emu.h"

#include <cmath>

#include "cuda/reduce.cu"

#undef PYKERNELS_DEVICE_CALL
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cuda(__VA_ARGS__)
#include "reduce.cpp"

#include "check.h"

using namespace emu_test;
using at::Tensor;

namespace {

struct Case {
  std::string what;
  Tensor x;
  std::vector<int64_t> dims;  // empty: all
  bool keepdim;
};

std::vector<Case> cases(at::ScalarType t) {
  auto mk = [&](at::IntArrayRef s) { return ints(s, t); };
  std::vector<Case> v;
  for (int64_t n : {0, 1, 5, 1000, 100000}) v.push_back({c10::str("all of [", n, "]"), mk({n}), {}, false});
  v.push_back({"all of [37,300]", mk({37, 300}), {}, false});
  v.push_back({"all of transposed", mk({300, 37}).t(), {}, false});
  v.push_back({"inner [37,300] dim 1", mk({37, 300}), {1}, false});
  v.push_back({"inner [3000,5] dim 1", mk({3000, 5}), {1}, false});
  v.push_back({"inner [4,20000] dim 1 (split)", mk({4, 20000}), {1}, true});
  v.push_back({"outer [300,37] dim 0", mk({300, 37}), {0}, false});
  v.push_back({"outer [5000,3] dim 0 (split)", mk({5000, 3}), {0}, false});
  v.push_back({"outer [40,1000] dim 0", mk({40, 1000}), {0}, true});
  v.push_back({"middle [6,7,8] dims 0,2", mk({6, 7, 8}), {0, 2}, false});
  v.push_back({"middle [6,7,8] dim 1", mk({6, 7, 8}), {1}, true});
  v.push_back({"transposed [8,7,6] dim 1", mk({6, 7, 8}).permute({2, 1, 0}), {1}, false});
  v.push_back({"sliced dim -1", mk({20, 90}).slice(0, 0, 20, 2).slice(1, 1, 90, 3), {-1}, false});
  v.push_back({"sliced dim 0", mk({20, 90}).slice(0, 0, 20, 2).slice(1, 1, 90, 3), {0}, false});
  v.push_back({"expanded reduced dim", mk({1, 9}).expand({500, 9}), {0}, false});
  v.push_back({"expanded kept dim", mk({9, 1}).expand({9, 500}), {0}, false});
  v.push_back({"size-1 dim", mk({4, 1, 5}), {1}, false});
  v.push_back({"empty reduced dim", mk({3, 0}), {1}, false});
  v.push_back({"0-dim", mk({}), {}, false});
  return v;
}

void run(int sms) {
  emu::g_sm_count = sms;
  for (at::ScalarType t : {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble, at::kInt, at::kLong, at::kByte}) {
    for (const auto& c : cases(t)) {
      const std::string id = c10::str(name(t), " ", c.what, " sms=", sms);
      const at::OptionalIntArrayRef dims = c.dims.empty() ? at::OptionalIntArrayRef() : at::IntArrayRef(c.dims);
      // Integer-valued inputs: every partial sum is exact, so sums must match torch exactly
      // (float16/bfloat16 round once, at the end, in both).
      const Tensor sum = pykernels::ops::sum(c.x, dims, c.keepdim, c10::nullopt);
      const at::ScalarType out_t = at::isIntegralType(t, true) ? at::kLong : t;
      const Tensor expected = at::sum(c.x.to(at::kDouble), dims, c.keepdim).to(out_t);
      expect_equal(sum, expected, "sum " + id);
      if (at::isFloatingType(t)) {
        const Tensor mean = pykernels::ops::mean(c.x, dims, c.keepdim, c10::nullopt);
        const Tensor expected_mean = at::mean(c.x.to(at::kDouble), dims, c.keepdim).to(t);
        expect_close(mean, expected_mean, tol_of(t), tol_of(t), "mean " + id);
      }
    }
  }
  // Random values: float accumulation stays within a summation-order tolerance.
  const Tensor x = normal({1 << 17}, at::kFloat);
  expect_close(pykernels::ops::sum(x, {}, false, c10::nullopt), at::sum(x.to(at::kDouble)).to(at::kFloat), 1e-3, 1e-5,
               c10::str("sum randn 2^17 sms=", sms));
  // sum(dtype=...) converts first, like torch.
  const Tensor h = ints({50, 40}, at::kHalf);
  expect_equal(pykernels::ops::sum(h, at::IntArrayRef{1}, false, at::kFloat), at::sum(h, {1}, false, at::kFloat),
               "sum dtype=float32 of float16");
}

// The long float32 cases of tests/test_cuda.py in the kernel's own summation order at the SM
// count of an H100/H200: their error must stay inside that test's reduce_tol,
// 16 * eps(float32) * sqrt(n) for a sum of n terms with |x| >= 0.5.
void summation_error() {
  emu::g_sm_count = 132;
  struct Case {
    std::vector<int64_t> shape;
    std::vector<int64_t> dims;
  };
  for (const Case& c : {Case{{(1 << 22) + 1}, {}}, Case{{4, 100000}, {1}}, Case{{5000, 3}, {0}}}) {
    Tensor x = at::randn(c.shape, at::kDouble);
    x = at::where(x >= 0, x + 0.5, x - 0.5).to(at::kFloat);
    const at::OptionalIntArrayRef dims = c.dims.empty() ? at::OptionalIntArrayRef() : at::IntArrayRef(c.dims);
    const double n = static_cast<double>(c.dims.empty() ? x.numel() : x.size(c.dims[0]));
    const Tensor exact = at::sum(x.to(at::kDouble), dims, false);
    const double atol = 16 * 1.1920928955078125e-07 * std::sqrt(n);
    expect_close(pykernels::ops::sum(x, dims, false, c10::nullopt).to(at::kDouble), exact, atol, 2.4e-7,
                 c10::str("sum error within 16 eps sqrt(n), shape ", c10::IntArrayRef(c.shape)));
  }
}

}  // namespace

void test_reduce() {
  run(4);
  run(132);
  summation_error();
}
