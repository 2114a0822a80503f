// mm / bmm / matmul through the real wrapper (csrc/gemm.cpp) with the CUDA kernels
// (csrc/cuda/gemm.cu) on the emulator: every dtype path (SIMT float32 in both tile sizes,
// float64, tensor-core float16/bfloat16 in all four operand layouts, the pre-sm_80 fallback),
// edge tiles, transposed / sliced / unaligned operands, broadcast batches; and the kernel each of
// the CUDA tests' selection shapes launches.
#include "emu.h"

#include "cuda/gemm.cu"

#undef PYKERNELS_DEVICE_CALL
#define PYKERNELS_DEVICE_CALL(device, kernel, ...) kernel##_cuda(__VA_ARGS__)
#include "gemm.cpp"

#include "check.h"

using namespace emu_test;
using at::Tensor;

namespace {

// Integer-valued operands with |sum| < 2^11: every product and partial sum is exact in float,
// and the result rounds once, so the kernels must match a float64 matmul exactly.
void check_mm(const Tensor& a, const Tensor& b, const std::string& id) {
  const Tensor expected = at::matmul(a.to(at::kDouble), b.to(at::kDouble)).to(a.scalar_type());
  expect_equal(pykernels::ops::mm(a, b), expected, "mm " + id);
}

void layouts(at::ScalarType t, int cc, int sms) {
  emu::g_cc_major = cc;
  emu::g_sm_count = sms;
  const char* kLayouts[] = {"contiguous", "transposed", "sliced", "unaligned", "padded"};
  struct Shape {
    int64_t m, k, n;
  };
  for (Shape s : {Shape{1, 1, 1}, Shape{7, 5, 3}, Shape{33, 17, 65}, Shape{129, 40, 131}}) {
    for (const char* la : kLayouts) {
      for (const char* lb : kLayouts) {
        const std::string id =
            c10::str(name(t), " cc=", cc, " sms=", sms, " [", s.m, "x", s.k, "] ", la, " @ [", s.k, "x", s.n, "] ", lb);
        check_mm(matrix(s.m, s.k, t, la), matrix(s.k, s.n, t, lb), id);
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
  for (Shape s : {Shape{128, 32, 128}, Shape{256, 33, 130}, Shape{3, 200, 5}, Shape{64, 0, 64}, Shape{1, 70, 300},
                  Shape{300, 70, 1}, Shape{16, 8, 8}}) {
    const std::string id = c10::str(name(t), " cc=", cc, " sms=", sms, " ", s.m, "x", s.k, "x", s.n);
    check_mm(ints({s.m, s.k}, t), ints({s.k, s.n}, t), id);
    check_mm(ints({s.k, s.m}, t).t(), ints({s.n, s.k}, t).t(), "TT " + id);
  }
}

void batched(at::ScalarType t) {
  emu::g_cc_major = 8;
  emu::g_sm_count = 4;
  const Tensor a = ints({3, 20, 9}, t), b = ints({3, 9, 17}, t);
  const Tensor expected = at::bmm(a.to(at::kDouble), b.to(at::kDouble)).to(t);
  expect_equal(pykernels::ops::bmm(a, b), expected, "bmm " + name(t));
  expect_equal(pykernels::ops::bmm(a.transpose(1, 2).contiguous().transpose(1, 2),
                                   b.transpose(0, 2).contiguous().transpose(0, 2)),
               expected, "bmm permuted " + name(t));
  // matmul with broadcast batch dimensions (stride-0 batches) and 1-D operands
  const Tensor x = ints({2, 1, 20, 9}, t), y = ints({3, 9, 17}, t), v = ints({9}, t), w = ints({17}, t);
  auto ref = [&](const Tensor& p, const Tensor& q) { return at::matmul(p.to(at::kDouble), q.to(at::kDouble)).to(t); };
  expect_equal(pykernels::ops::matmul(x, y), ref(x, y), "matmul broadcast " + name(t));
  expect_equal(pykernels::ops::matmul(x, v), ref(x, v), "matmul @ vector " + name(t));
  expect_equal(pykernels::ops::matmul(v, y), ref(v, y), "vector @ matmul " + name(t));
  expect_equal(pykernels::ops::matmul(y, w), ref(y, w), "batched @ vector " + name(t));
  expect_equal(pykernels::ops::matmul(v, v), ref(v, v), "dot " + name(t));
}

void random_values() {
  emu::g_cc_major = 8;
  emu::g_sm_count = 4;
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const Tensor a = normal({70, 300}, t), b = normal({300, 50}, t);
    const Tensor expected = at::mm(a.to(at::kDouble), b.to(at::kDouble));
    const double eps = t == at::kHalf ? 1e-3 : t == at::kBFloat16 ? 8e-3 : t == at::kFloat ? 1e-6 : 1e-13;
    expect_close(pykernels::ops::mm(a, b).to(at::kDouble), expected, eps * 20, eps * 2, "mm randn " + name(t));
  }
}

// The shapes tests/test_cuda.py uses to reach each kernel, at the SM count of an H100/H200 (132),
// with the kernel that gemm_last_kernel_cuda() must then report.
void selection() {
  emu::g_cc_major = 8;
  emu::g_sm_count = 132;
  struct Case {
    at::ScalarType t;
    int64_t batch, m, k, n;
    const char* la;
    const char* lb;
    const char* kernel;
  };
  const Case cases[] = {
      {at::kFloat, 1, 2048, 100, 2048, "contiguous", "contiguous", "simt 128x128 a:k+vec b:n+vec"},
      {at::kFloat, 1, 1537, 67, 1531, "contiguous", "contiguous", "simt 128x128 a:k b:n"},
      {at::kFloat, 1, 1537, 67, 1531, "transposed", "transposed", "simt 128x128 a:m b:k"},
      {at::kFloat, 1, 1000, 67, 1000, "contiguous", "contiguous", "simt 64x64 a:k b:n+vec"},
      {at::kFloat, 5, 700, 50, 600, "contiguous", "contiguous", "simt 128x128 a:k b:n+vec"},
      {at::kFloat, 4, 700, 50, 600, "contiguous", "contiguous", "simt 64x64 a:k b:n+vec"},
      {at::kDouble, 1, 129, 67, 131, "contiguous", "contiguous", "simt 64x64 a:k b:n"},
      {at::kHalf, 1, 136, 200, 264, "contiguous", "contiguous", "mma.sync 128x128 a:k+vec b:n+vec"},
      {at::kBFloat16, 1, 300, 200, 104, "contiguous", "contiguous", "mma.sync 128x128 a:k+vec b:n+vec"},
      {at::kHalf, 1, 300, 200, 104, "transposed", "transposed", "mma.sync 128x128 a:m b:k+vec"},
      {at::kBFloat16, 1, 136, 200, 264, "transposed", "contiguous", "mma.sync 128x128 a:m+vec b:n+vec"},
  };
  for (const Case& c : cases) {
    const std::string id = c10::str(name(c.t), " ", c.batch, "x", c.m, "x", c.k, "x", c.n, " ", c.la, " @ ", c.lb);
    Tensor a = matrix(c.batch * c.m, c.k, c.t, c.la), b = matrix(c.batch * c.k, c.n, c.t, c.lb);
    if (c.batch > 1) {
      a = a.contiguous().view({c.batch, c.m, c.k});
      b = b.contiguous().view({c.batch, c.k, c.n});
    }
    const Tensor expected = at::matmul(a.to(at::kDouble), b.to(at::kDouble)).to(c.t);
    expect_equal(c.batch > 1 ? pykernels::ops::bmm(a, b) : pykernels::ops::mm(a, b), expected, "selection " + id);
    const std::string kernel = pykernels::gemm_last_kernel_cuda();
    ++g_checks;
    if (kernel != c.kernel) {
      ++g_failures;
      std::printf("FAIL selection %s: launched \"%s\", expected \"%s\"\n", id.c_str(), kernel.c_str(), c.kernel);
    }
  }
}

}  // namespace

void test_gemm() {
  selection();
  layouts(at::kFloat, 8, 4);  // 64x64 tiles (few tiles for 4 SMs)
  layouts(at::kFloat, 8, 1);  // 128x128 tiles
  layouts(at::kDouble, 8, 4);
  layouts(at::kHalf, 8, 4);  // mma.sync, all four layout variants
  layouts(at::kBFloat16, 8, 4);
  layouts(at::kHalf, 7, 4);  // SIMT fallback before sm_80
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    shapes(t, 8, 1);
    batched(t);
  }
  shapes(at::kFloat, 8, 1000);
  random_values();
  // Integer dtypes raise, like torch's CUDA matmul.
  bool raised = false;
  try {
    pykernels::ops::mm(ints({2, 2}, at::kInt), ints({2, 2}, at::kInt));
  } catch (const c10::Error& e) {
    raised = std::string(e.what()).find("not implemented") != std::string::npos &&
             dynamic_cast<const c10::NotImplementedError*>(&e);
  }
  ++g_checks;
  if (!raised) {
    ++g_failures;
    std::printf("FAIL mm int32 did not raise\n");
  }
}
