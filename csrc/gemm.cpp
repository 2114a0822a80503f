// mm, bmm and matmul: shape and dtype checks, output allocation, and the description of the
// problem (batch walk plus row/column strides) handed to gemm_kernel_*. Operands are never
// copied to make them contiguous: the kernels read through strides, and broadcast batch
// dimensions of matmul are stride-0 batch dimensions.
#include <ATen/ATen.h>

#include "common/checks.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, "self");
  check_defined(op, b, "other");
  check_same_device(op, a, b);
  PK_CHECK(a.scalar_type() == b.scalar_type(), op, "expected both operands to have the same dtype, but got ",
           a.scalar_type(), " and ", b.scalar_type());
  check_dtype_supported(op, a.scalar_type());
  PK_CHECK_NOT_IMPLEMENTED(a.scalar_type() != at::kBool, op, "dtype Bool is not supported");
}

// c (batch..., m, n) = a (batch..., m, k) @ b (batch..., k, n); all three already share the
// batch shape (a and b may be expanded, i.e. stride 0 there).
void run_gemm(const char* op, const Tensor& c, const Tensor& a, const Tensor& b) {
  const int64_t nb = c.dim() - 2;
  if (c.numel() == 0) return;
  if (a.size(-1) == 0) {  // empty sum: operands may have no storage to take views of
    c.zero_();
    return;
  }
  const auto batch_shape = c.sizes().slice(0, nb);
  // The batch walk sees the batch dims only: view each operand at its (0, 0) element.
  auto batch_view = [&](const Tensor& t) { return t.as_strided(batch_shape, t.strides().slice(0, nb)); };
  GemmProblem p{make_iter<3>(op, {batch_view(c), batch_view(a), batch_view(b)}),
                c.size(-2),
                c.size(-1),
                a.size(-1),
                c.stride(-2),
                c.stride(-1),
                a.stride(-2),
                a.stride(-1),
                b.stride(-2),
                b.stride(-1),
                c.scalar_type()};
  PYKERNELS_DEVICE_CALL(c.device(), gemm_kernel, p);
}

}  // namespace

// The op's device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor mm(const Tensor& a, const Tensor& b) {
  check_operands("mm", a, b);
  PK_CHECK(a.dim() == 2, "mm", "self must be a matrix, got a ", a.dim(), "-D tensor of shape ", a.sizes());
  PK_CHECK(b.dim() == 2, "mm", "mat2 must be a matrix, got a ", b.dim(), "-D tensor of shape ", b.sizes());
  PK_CHECK(a.size(1) == b.size(0), "mm", "mat1 and mat2 shapes cannot be multiplied (", a.size(0), "x", a.size(1),
           " and ", b.size(0), "x", b.size(1), ")");
  Tensor c = at::empty({a.size(0), b.size(1)}, a.options());
  run_gemm("mm", c, a, b);
  return c;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b);
  PK_CHECK(a.dim() == 3, "bmm", "batch1 must be a 3D tensor, got shape ", a.sizes());
  PK_CHECK(b.dim() == 3, "bmm", "batch2 must be a 3D tensor, got shape ", b.sizes());
  PK_CHECK(a.size(0) == b.size(0), "bmm", "batch sizes differ: ", a.sizes(), " and ", b.sizes());
  PK_CHECK(a.size(2) == b.size(1), "bmm", "batch1 and batch2 shapes cannot be multiplied (", a.sizes(), " and ",
           b.sizes(), ")");
  Tensor c = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  run_gemm("bmm", c, a, b);
  return c;
}

// torch.matmul: a 1-D first operand is a row vector, a 1-D second operand a column vector
// (the added dimension is removed from the result); batch dimensions broadcast.
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands("matmul", a, b);
  PK_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul", "both arguments need to be at least 1D, but they are ", a.dim(),
           "D and ", b.dim(), "D");
  const Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  const Tensor b2 = b.dim() == 1 ? b.unsqueeze(-1) : b;
  PK_CHECK(a2.size(-1) == b2.size(-2), "matmul", "shapes cannot be multiplied (", a.sizes(), " and ", b.sizes(), ")");
  auto batch = broadcast_shape("matmul", a2.sizes().slice(0, a2.dim() - 2), b2.sizes().slice(0, b2.dim() - 2));
  const int64_t m = a2.size(-2), k = a2.size(-1), n = b2.size(-1);

  auto with = [&](std::initializer_list<int64_t> tail) {
    std::vector<int64_t> s(batch);
    s.insert(s.end(), tail);
    return s;
  };
  std::vector<int64_t> shape(batch);
  if (a.dim() > 1) shape.push_back(m);
  if (b.dim() > 1) shape.push_back(n);
  Tensor c = at::empty(shape, a.options());
  run_gemm("matmul", c.view(with({m, n})), a2.expand(with({m, k})), b2.expand(with({k, n})));
  return c;
}

}  // namespace ops

}  // namespace pykernels
