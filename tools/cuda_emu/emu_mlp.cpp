// The fused MLP's CUDA kernels (csrc/cuda/mlp.cu) on the emulator, called through their
// kernels.h interface and compared with a float64 reference of the unfused layers: every hidden
// size from 1 to 128 (all three tile widths), empty and prime batch / in / out sizes, batches
// that make blocks stride over their rows, biases on and off, each output and gradient wanted
// or not (outputs start as NaN, so an element left unwritten fails), every dtype.
#include "emu.h"

#include "cuda/mlp.cu"

#include "check.h"

using namespace emu_test;
using at::Tensor;

namespace {

const void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
void* mut_ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
Tensor nans(at::IntArrayRef shape, at::ScalarType t) { return at::full(shape, NAN, at::TensorOptions(t)); }
Tensor dbl(const Tensor& t) { return t.to(at::kDouble); }
// A float64 value as the dtype would store it.
Tensor rounded(const Tensor& t, at::ScalarType dtype) { return t.to(dtype).to(at::kDouble); }

struct Shape {
  int64_t batch, in, hidden, out;
};

// Which outputs a call asks for: bit 0 hidden_out, 1 out (forward); bits 0-5 grad_input,
// grad_w1, grad_b1, grad_w2, grad_b2 ... (backward).
constexpr int kAllForward = 3, kAllBackward = 31;

// Forward and backward of one MLP; the reference computes the unfused layers in float64,
// rounding hidden and its gradient to the dtype where the layers would store them. Integer
// operands in [-range, range] keep every sum exact in float, so results must match exactly;
// range 0: standard normal operands, compared with tolerance `tol`.
void check_mlp(at::ScalarType t, Shape s, bool biases, int forward_wanted, int backward_wanted, const std::string& what,
               int range = 2, double tol = 0) {
  auto make = [&](at::IntArrayRef shape) { return range == 0 ? normal(shape, t) : ints(shape, t, -range, range); };
  const Tensor x = make({s.batch, s.in}), w1 = make({s.hidden, s.in}), w2 = make({s.out, s.hidden});
  const Tensor b1 = biases ? make({s.hidden}) : Tensor(), b2 = biases ? make({s.out}) : Tensor();
  const std::string id = c10::str(name(t), " batch=", s.batch, " in=", s.in, " hidden=", s.hidden, " out=", s.out,
                                  biases ? " biases" : " no-biases", " ", what);

  Tensor h = at::matmul(dbl(x), dbl(w1).t());
  if (biases) h = h + dbl(b1);
  h = rounded(at::relu(h), t);
  Tensor y = at::matmul(h, dbl(w2).t());
  if (biases) y = y + dbl(b2);

  const Tensor hidden_out = forward_wanted & 1 ? nans({s.batch, s.hidden}, t) : Tensor();
  const Tensor out = forward_wanted & 2 ? nans({s.batch, s.out}, t) : Tensor();
  pykernels::mlp_forward_kernel_cuda(pykernels::MlpForward{s.batch, s.in, s.hidden, s.out, ptr(x), ptr(w1), ptr(b1),
                                                           ptr(w2), ptr(b2), mut_ptr(hidden_out), mut_ptr(out), t});
  if (forward_wanted & 1) expect_close(hidden_out, h.to(t), tol, tol, "mlp hidden " + id);
  if (forward_wanted & 2) expect_close(out, y.to(t), tol, tol, "mlp out " + id);

  const Tensor go = make({s.batch, s.out});
  const Tensor hidden_act = h.to(t);  // the forward's hidden, with its zeros
  const Tensor gh = rounded(at::where(dbl(hidden_act) <= 0, at::zeros_like(h), at::matmul(dbl(go), dbl(w2))), t);
  Tensor grads[5];
  const std::vector<int64_t> shapes[5] = {{s.batch, s.in}, {s.hidden, s.in}, {s.hidden}, {s.out, s.hidden}, {s.out}};
  for (int i = 0; i < 5; ++i)
    if (backward_wanted & (1 << i)) grads[i] = nans(shapes[i], t);
  pykernels::mlp_backward_kernel_cuda(pykernels::MlpBackward{
      s.batch, s.in, s.hidden, s.out, ptr(go), ptr(x), ptr(w1), ptr(w2), ptr(hidden_act), mut_ptr(grads[0]),
      mut_ptr(grads[1]), mut_ptr(grads[2]), mut_ptr(grads[3]), mut_ptr(grads[4]), t});
  const Tensor expected[5] = {at::matmul(gh, dbl(w1)), at::matmul(gh.t(), dbl(x)), gh.sum(0),
                              at::matmul(dbl(go).t(), h), dbl(go).sum(0)};
  const char* names[5] = {"grad_input", "grad_w1", "grad_b1", "grad_w2", "grad_b2"};
  for (int i = 0; i < 5; ++i)
    if (backward_wanted & (1 << i)) {
      expect_close(grads[i], expected[i].to(t), tol, tol, c10::str("mlp ", names[i], " ", id));
    }
}

// Every hidden size: each tile width (32, 64, 128) at and past its edges.
void hidden_sizes() {
  emu::g_sm_count = 4;
  for (int64_t hidden = 1; hidden <= 128; ++hidden) {
    check_mlp(at::kFloat, Shape{5, 7, hidden, 3}, hidden % 2 == 1, kAllForward, kAllBackward, "all");
  }
}

void shapes(at::ScalarType t) {
  emu::g_sm_count = 4;
  for (Shape s : {Shape{0, 5, 16, 3}, Shape{1, 1, 1, 1}, Shape{3, 0, 8, 4}, Shape{3, 5, 8, 0}, Shape{31, 33, 32, 17},
                  Shape{33, 130, 64, 129}, Shape{67, 129, 100, 131}, Shape{40, 20, 128, 40}, Shape{2, 300, 33, 257}}) {
    for (bool biases : {true, false}) check_mlp(t, s, biases, kAllForward, kAllBackward, "all");
  }
}

// Many row blocks per launch and few SMs: blocks stride over the batch; the weight gradients
// walk all of it.
void long_batch(at::ScalarType t) {
  emu::g_sm_count = 1;  // at most 8 row blocks
  check_mlp(t, Shape{1000, 12, 20, 6}, true, kAllForward, kAllBackward, "long batch");
  emu::g_sm_count = 4;
}

// Each output or gradient on its own, and none at all.
void wanted_subsets(at::ScalarType t) {
  emu::g_sm_count = 4;
  const Shape s{37, 19, 40, 23};
  for (int f : {0, 1, 2}) check_mlp(t, s, true, f, 0, c10::str("forward wanted=", f));
  for (int i = 0; i < 5; ++i) check_mlp(t, s, true, 0, 1 << i, c10::str("backward wanted=", 1 << i));
  check_mlp(t, s, true, 0, (1 << 2) | (1 << 4), "biases only");
  check_mlp(t, Shape{37, 0, 40, 23}, true, 0, 1 << 2, "grad_b1 with in=0");
  check_mlp(t, Shape{0, 19, 40, 23}, true, 0, kAllBackward, "empty batch");
}

void random_values() {
  emu::g_sm_count = 4;
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const double tol = t == at::kHalf ? 2e-2 : t == at::kBFloat16 ? 1.5e-1 : t == at::kFloat ? 1e-4 : 1e-12;
    check_mlp(t, Shape{45, 70, 64, 30}, true, kAllForward, kAllBackward, "randn", 0, tol);
  }
}

// Wide integer operands: hidden and g_h exceed the integers float16 (2048) and bfloat16 (256)
// hold exactly, so the kernels must round them where the unfused layers would, and only there
// (float16 gets a narrow layer, so that g_h @ w1 mostly stays finite).
void intermediate_rounding() {
  emu::g_sm_count = 4;
  check_mlp(at::kBFloat16, Shape{37, 19, 40, 300}, true, kAllForward, kAllBackward, "wide integers", 16);
  check_mlp(at::kHalf, Shape{37, 3, 3, 300}, true, kAllForward, kAllBackward, "wide integers", 16);
}

}  // namespace

void test_mlp() {
  hidden_sizes();
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    shapes(t);
    long_batch(t);
    wanted_subsets(t);
  }
  random_values();
  intermediate_rounding();
  // A hidden layer wider than the kernels take is refused before any launch.
  bool raised = false;
  const int64_t launches = emu::g_stats.launches;
  try {
    pykernels::mlp_forward_kernel_cuda(
        pykernels::MlpForward{1, 1, 129, 1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, at::kFloat});
  } catch (const c10::Error& e) {
    raised = std::string(e.what()).find("at most 128") != std::string::npos;
  }
  ++g_checks;
  if (!raised || emu::g_stats.launches != launches) {
    ++g_failures;
    std::printf("FAIL mlp hidden=129 did not raise before launching\n");
  }
}
