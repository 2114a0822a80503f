// The fused linear layer's CUDA kernels (csrc/cuda/linear.cu) on the emulator, called through
// their kernels.h interface and compared with a float64 reference: every GEMM path they reach
// (SIMT float32 in both tile sizes, float64, tensor-core float16/bfloat16 in every operand
// layout, the pre-sm_80 fallback), edge tiles and empty sizes, transposed / sliced / unaligned
// inputs and weights, bias and ReLU on and off, each gradient wanted or not (outputs start as
// NaN, so an element left unwritten fails), and the ReLU mask's edge values (0, -0, NaN).
#include "emu.h"

#include "cuda/linear.cu"

#include "check.h"

using namespace emu_test;
using at::Tensor;

namespace {

const void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
void* mut_ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
Tensor nans(at::IntArrayRef shape, at::ScalarType t) { return at::full(shape, NAN, at::TensorOptions(t)); }
Tensor dbl(const Tensor& t) { return t.to(at::kDouble); }

// The gradient through the ReLU from its output, as torch's threshold_backward: 0 where out <= 0.
Tensor masked(const Tensor& grad_out, const Tensor& out, bool relu) {
  return relu ? at::where(dbl(out) <= 0, at::zeros_like(dbl(grad_out)), dbl(grad_out)) : dbl(grad_out);
}

struct Wanted {
  bool input, weight, bias;
};

// Runs the forward and the backward for input (m x k), weight (n x k) and checks every result.
// Integer-valued operands with |sums| < 2^11 make every product and partial sum exact in float,
// so the results, rounded once, must equal the float64 reference's.
void check_linear(const Tensor& x, const Tensor& w, bool bias, bool relu, Wanted wanted, const std::string& id,
                  double tol = 0) {
  const at::ScalarType t = x.scalar_type();
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  const Tensor b = bias ? ints({n}, t) : Tensor();

  const Tensor out = nans({m, n}, t);
  pykernels::linear_forward_kernel_cuda(pykernels::LinearForward{
      m, n, k, ptr(x), x.stride(0), x.stride(1), ptr(w), w.stride(0), w.stride(1), ptr(b), mut_ptr(out), relu, t});
  Tensor y = at::matmul(dbl(x), dbl(w).t());
  if (bias) y = y + dbl(b);
  if (relu) y = at::relu(y);
  expect_close(out, y.to(t), tol, tol, "linear forward " + id);

  // The mask comes from an independent tensor with zeros and negatives (any output would do).
  const Tensor go = ints({m, n}, t), mask_src = ints({m, n}, t, -2, 2);
  const Tensor gi = wanted.input ? nans({m, k}, t) : Tensor();
  const Tensor gw = wanted.weight ? nans({n, k}, t) : Tensor();
  const Tensor gb = wanted.bias ? nans({n}, t) : Tensor();
  pykernels::linear_backward_kernel_cuda(
      pykernels::LinearBackward{m, n, k, ptr(go), relu ? ptr(mask_src) : nullptr, ptr(x), x.stride(0), x.stride(1),
                                ptr(w), w.stride(0), w.stride(1), mut_ptr(gi), mut_ptr(gw), mut_ptr(gb), relu, t});
  const Tensor g = masked(go, mask_src, relu);
  if (wanted.input) expect_close(gi, at::matmul(g, dbl(w)).to(t), tol, tol, "linear grad_input " + id);
  if (wanted.weight) expect_close(gw, at::matmul(g.t(), dbl(x)).to(t), tol, tol, "linear grad_weight " + id);
  if (wanted.bias) expect_close(gb, g.sum(0).to(t), tol, tol, "linear grad_bias " + id);
}

constexpr Wanted kAll{true, true, true};

std::string options(bool bias, bool relu) {
  return std::string(bias ? " bias" : " no-bias") + (relu ? " relu" : " identity");
}

void layouts(at::ScalarType t, int cc, int sms) {
  emu::g_cc_major = cc;
  emu::g_sm_count = sms;
  const char* kLayouts[] = {"contiguous", "transposed", "sliced", "unaligned"};
  struct Shape {
    int64_t m, k, n;
  };
  for (Shape s : {Shape{7, 5, 3}, Shape{33, 17, 65}, Shape{129, 40, 131}}) {
    for (const char* lx : kLayouts) {
      for (const char* lw : kLayouts) {
        const bool bias = (s.m + std::strlen(lx)) % 2 == 0, relu = std::strlen(lw) % 2 == 0;
        const std::string id = c10::str(name(t), " cc=", cc, " sms=", sms, " m=", s.m, " k=", s.k, " n=", s.n,
                                        " input ", lx, " weight ", lw, options(bias, relu));
        check_linear(matrix(s.m, s.k, t, lx), matrix(s.n, s.k, t, lw), bias, relu, kAll, id);
      }
    }
  }
}

void shapes(at::ScalarType t, int cc, int sms) {
  emu::g_cc_major = cc;
  emu::g_sm_count = sms;
  struct Shape {
    int64_t m, k, n;
  };
  for (Shape s : {Shape{0, 5, 7}, Shape{1, 1, 1}, Shape{5, 0, 3}, Shape{4, 6, 0}, Shape{0, 0, 3}, Shape{128, 32, 128},
                  Shape{130, 33, 129}, Shape{3, 200, 5}, Shape{1, 70, 300}, Shape{300, 70, 1}, Shape{64, 64, 1}}) {
    for (int opt = 0; opt < 4; ++opt) {
      const bool bias = opt & 1, relu = opt & 2;
      const std::string id =
          c10::str(name(t), " cc=", cc, " sms=", sms, " m=", s.m, " k=", s.k, " n=", s.n, options(bias, relu));
      check_linear(ints({s.m, s.k}, t), ints({s.n, s.k}, t), bias, relu, kAll, id);
    }
  }
}

// Each subset of the gradients, including none, and the bias gradient without grad_weight
// (its own kernel) next to the one fused into grad_weight.
void wanted_subsets(at::ScalarType t) {
  emu::g_cc_major = 8;
  emu::g_sm_count = 4;
  for (int bits = 0; bits < 8; ++bits) {
    const Wanted wanted{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
    for (bool relu : {false, true}) {
      const std::string id = c10::str(name(t), " wanted=", bits, options(true, relu));
      check_linear(ints({70, 45}, t), matrix(67, 45, t, "transposed"), true, relu, wanted, id);
    }
  }
  // Many rows for the column-sum kernel's strided walk; in_features 0 leaves grad_weight empty.
  for (int64_t k : {0, 3}) {
    check_linear(ints({1000, k}, t), ints({40, k}, t), true, true, Wanted{false, false, true},
                 c10::str(name(t), " grad_bias alone m=1000 k=", k));
    check_linear(ints({1000, k}, t), ints({40, k}, t), true, true, kAll, c10::str(name(t), " m=1000 k=", k));
  }
}

// The ReLU mask at 0, -0 and NaN (NaN passes the gradient, as in torch), and a mask that is not
// 16-byte aligned while grad_out is (the vector loads must then be off for both).
void mask_values(at::ScalarType t, int cc) {
  emu::g_cc_major = cc;
  emu::g_sm_count = 4;
  const int64_t m = 40, k = 24, n = 33;
  const Tensor x = ints({m, k}, t), w = ints({n, k}, t), go = ints({m, n}, t);
  Tensor mask_src = ints({m * n + 1}, t, -1, 1);
  mask_src.view({-1})[5] = -0.0;
  mask_src.view({-1})[6] = NAN;
  mask_src.view({-1})[m * n - 1] = NAN;
  for (int64_t shift : {0, 1}) {
    const Tensor mk = mask_src.narrow(0, shift, m * n).view({m, n});
    const Tensor gi = nans({m, k}, t), gw = nans({n, k}, t), gb = nans({n}, t);
    pykernels::linear_backward_kernel_cuda(pykernels::LinearBackward{m, n, k, ptr(go), ptr(mk), ptr(x), x.stride(0),
                                                                     x.stride(1), ptr(w), w.stride(0), w.stride(1),
                                                                     mut_ptr(gi), mut_ptr(gw), mut_ptr(gb), true, t});
    const Tensor g = masked(go, mk, true);
    const std::string id = c10::str(name(t), " cc=", cc, " mask shifted by ", shift);
    expect_equal(gi, at::matmul(g, dbl(w)).to(t), "linear mask grad_input " + id);
    expect_equal(gw, at::matmul(g.t(), dbl(x)).to(t), "linear mask grad_weight " + id);
    expect_equal(gb, g.sum(0).to(t), "linear mask grad_bias " + id);
    const Tensor gb_alone = nans({n}, t);
    pykernels::linear_backward_kernel_cuda(pykernels::LinearBackward{m, n, k, ptr(go), ptr(mk), ptr(x), x.stride(0),
                                                                     x.stride(1), ptr(w), w.stride(0), w.stride(1),
                                                                     nullptr, nullptr, mut_ptr(gb_alone), true, t});
    expect_equal(gb_alone, g.sum(0).to(t), "linear mask grad_bias alone " + id);
  }
}

void random_values() {
  emu::g_cc_major = 8;
  emu::g_sm_count = 4;
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const double eps = t == at::kHalf ? 1e-3 : t == at::kBFloat16 ? 8e-3 : t == at::kFloat ? 1e-6 : 1e-13;
    const Tensor x = normal({70, 300}, t), w = normal({50, 300}, t), b = normal({50}, t);
    const Tensor out = nans({70, 50}, t);
    pykernels::linear_forward_kernel_cuda(
        pykernels::LinearForward{70, 50, 300, ptr(x), 300, 1, ptr(w), 300, 1, ptr(b), mut_ptr(out), true, t});
    const Tensor y = at::relu(at::matmul(dbl(x), dbl(w).t()) + dbl(b));
    expect_close(dbl(out), y, eps * 20, eps * 2, "linear randn " + name(t));
  }
}

}  // namespace

void test_linear() {
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    shapes(t, 8, 1);
    wanted_subsets(t);
    mask_values(t, 8);
  }
  shapes(at::kFloat, 8, 1000);  // 64x64 tiles
  layouts(at::kFloat, 8, 1);    // 128x128 tiles
  layouts(at::kFloat, 8, 1000);
  layouts(at::kDouble, 8, 4);
  layouts(at::kHalf, 8, 4);  // mma.sync, all four operand layouts, masked A through registers
  layouts(at::kBFloat16, 8, 4);
  layouts(at::kHalf, 7, 4);  // SIMT fallback before sm_80
  mask_values(at::kHalf, 7);
  random_values();
  // Integer dtypes raise, as torch's CUDA matmul does.
  bool raised = false;
  try {
    pykernels::linear_forward_kernel_cuda(
        pykernels::LinearForward{1, 1, 1, nullptr, 1, 1, nullptr, 1, 1, nullptr, nullptr, false, at::kInt});
  } catch (const c10::NotImplementedError&) {
    raised = true;
  }
  ++g_checks;
  if (!raised) {
    ++g_failures;
    std::printf("FAIL linear int32 did not raise NotImplementedError\n");
  }
}
