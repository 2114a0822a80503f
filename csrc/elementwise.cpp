// Elementwise ops: add, sub, mul, div, neg (functional, out= and in-place), pow (with a number
// or a tensor exponent, and the gradients for a tensor exponent), exp, log, sqrt.
//
// The wrappers do what torch's TensorIterator does for its own kernels, and nothing more:
// type promotion (at::result_type, true division of integers gives the default float type),
// broadcasting (expand: a stride-0 view, no copy), output allocation and the out=/in-place
// rules. The arithmetic happens in binary_kernel_* / unary_kernel_*.
#include <ATen/ATen.h>

#include "common/checks.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

at::ScalarType default_float() { return c10::typeMetaToScalarType(c10::get_default_dtype()); }

// Runs `kernel(result)` where result has the compute dtype: `out` itself when it has that
// dtype, otherwise a temporary that is then cast into `out` (e.g. float32.add_(float64)).
template <typename Kernel>
Tensor run_into(Tensor out, at::ScalarType compute, Kernel&& kernel) {
  if (out.numel() == 0) return out;
  if (out.scalar_type() == compute) {
    kernel(out);
  } else {
    Tensor tmp = at::empty(out.sizes(), out.options().dtype(compute));
    kernel(tmp);
    out.copy_(tmp);
  }
  return out;
}

// ---- binary ------------------------------------------------------------------------------------

const char* binary_name(BinaryOp op, OutKind kind) {
  static const char* names[][3] = {{"add", "add.out", "add_"}, {"sub", "sub.out", "sub_"}, {"mul", "mul.out", "mul_"},
                                   {"div", "div.out", "div_"}, {"div", "div.out", "div_"}, {"div", "div.out", "div_"},
                                   {"pow", "pow.out", "pow_"}};
  return names[static_cast<int>(op)][static_cast<int>(kind)];
}

BinaryOp div_kind(const char* name, const c10::optional<c10::string_view>& rounding_mode) {
  if (!rounding_mode.has_value()) return BinaryOp::Div;
  const bool trunc = *rounding_mode == "trunc";
  PK_CHECK(trunc || *rounding_mode == "floor", name,
           "expected rounding_mode to be one of None, 'trunc', or 'floor' but found '", *rounding_mode, "'");
  return trunc ? BinaryOp::DivTrunc : BinaryOp::DivFloor;
}

Tensor binary(BinaryOp op, OutKind kind, const Tensor& self, const Tensor& other, const c10::Scalar& alpha,
              const Tensor& out_arg) {
  const char* name = binary_name(op, kind);
  check_defined(name, self, "self");
  check_defined(name, other, "other");
  const Tensor& target = kind == OutKind::InPlace ? self : out_arg;
  const at::Device device = common_device(name, {self, other}, kind == OutKind::Functional ? Tensor() : target);
  if (op == BinaryOp::Sub) {
    PK_CHECK_NOT_IMPLEMENTED(
        self.scalar_type() != at::kBool && other.scalar_type() != at::kBool, name,
        "subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a "
        "mask, use the `~` or `logical_not()` operator instead.");
  }
  at::ScalarType compute = at::result_type(self, other);
  check_dtype_supported(name, compute);
  PK_CHECK_NOT_IMPLEMENTED(compute != at::kBool || (op != BinaryOp::DivTrunc && op != BinaryOp::DivFloor), name,
                           "rounding division is not implemented for Bool");
  PK_CHECK_NOT_IMPLEMENTED(compute != at::kBool || op != BinaryOp::Pow, name, "\"pow\" not implemented for 'Bool'");
  if (op == BinaryOp::Div && at::isIntegralType(compute, /*includeBool=*/true)) compute = default_float();
  if (op == BinaryOp::Add || op == BinaryOp::Sub) {
    PK_CHECK(!alpha.isBoolean() || compute == at::kBool, name, "boolean alpha only supported for Boolean results.");
    PK_CHECK(at::isFloatingType(compute) || alpha.isIntegral(/*includeBool=*/true), name,
             "for integral input tensors, argument alpha must not be a floating point number.");
  }
  const auto shape = broadcast_shape(name, self.sizes(), other.sizes());
  Tensor out = prepare_output(name, kind, target, shape, compute, self.options().device(device), {self, other});
  // torch's CPU kernels for mul and the divisions read a single-element `other` at float
  // precision when the result is float16/bfloat16 (x / 0.3 divides by 0.3f, not by 0.30004883),
  // where add/sub/pow and the CUDA kernels round it to the result dtype like any operand.
  // (The CUDA emulator runs the CUDA kernels on CPU tensors: this CPU-only path would bypass them.)
#ifndef PYKERNELS_CUDA_EMULATION
  const bool reduced = compute == at::kHalf || compute == at::kBFloat16;
  const bool rounds_other = op == BinaryOp::Add || op == BinaryOp::Sub || op == BinaryOp::Pow;
  if (device.is_cpu() && reduced && other.numel() == 1 && !rounds_other) {
    const c10::Scalar b = other.item();
    const Tensor a = operand(self, compute, shape, device);  // outlives the kernel
    return run_into(out, compute, [&](Tensor& result) {
      auto it = make_iter<2>(name, {result, a});
      binary_scalar_kernel_cpu(op, it, compute, b);
    });
  }
#endif
  // torch's CUDA pow reads a 0-dim CPU exponent as a number (in the result dtype) and runs its
  // number-exponent kernel, with that kernel's shortcuts (sqrt for 0.5, 1 / x for -1, ...); its
  // CPU pow computes pow for every element. (Under the CUDA emulator every tensor is a CPU tensor
  // and the CUDA kernels always run.)
#ifdef PYKERNELS_CUDA_EMULATION
  const bool cuda_kernels = true;
#else
  const bool cuda_kernels = device.is_cuda();
#endif
  if (op == BinaryOp::Pow && cuda_kernels && at::isFloatingType(compute) && other.dim() == 0 && other.is_cpu()) {
    const c10::Scalar exponent = other.to(compute).item();
    const Tensor a = operand(self, compute, shape, device);  // outlives the kernel
    return run_into(out, compute, [&](Tensor& result) {
      auto it = make_iter<2>(name, {result, a});
      PYKERNELS_DEVICE_CALL(result.device(), unary_kernel, UnaryOp::Pow, it, compute, exponent);
    });
  }
  // Converted operands must outlive the kernel: the iterator holds raw pointers only.
  const Tensor a = operand(self, compute, shape, device), b = operand(other, compute, shape, device);
  return run_into(out, compute, [&](Tensor& result) {
    auto it = make_iter<3>(name, {result, a, b});
    PYKERNELS_DEVICE_CALL(result.device(), binary_kernel, op, it, compute, alpha);
  });
}

}  // namespace

// The ops' device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor add(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  return binary(BinaryOp::Add, OutKind::Functional, a, b, alpha, {});
}
void add_out(const Tensor& a, const Tensor& b, const c10::Scalar& alpha, const Tensor& out) {
  binary(BinaryOp::Add, OutKind::Out, a, b, alpha, out);
}
void add_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  binary(BinaryOp::Add, OutKind::InPlace, a, b, alpha, {});
}
Tensor sub(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  return binary(BinaryOp::Sub, OutKind::Functional, a, b, alpha, {});
}
void sub_out(const Tensor& a, const Tensor& b, const c10::Scalar& alpha, const Tensor& out) {
  binary(BinaryOp::Sub, OutKind::Out, a, b, alpha, out);
}
void sub_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  binary(BinaryOp::Sub, OutKind::InPlace, a, b, alpha, {});
}
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, OutKind::Functional, a, b, 1, {}); }
void mul_out(const Tensor& a, const Tensor& b, const Tensor& out) { binary(BinaryOp::Mul, OutKind::Out, a, b, 1, out); }
void mul_(const Tensor& a, const Tensor& b) { binary(BinaryOp::Mul, OutKind::InPlace, a, b, 1, {}); }
Tensor div(const Tensor& a, const Tensor& b, c10::optional<c10::string_view> mode) {
  return binary(div_kind("div", mode), OutKind::Functional, a, b, 1, {});
}
void div_out(const Tensor& a, const Tensor& b, c10::optional<c10::string_view> mode, const Tensor& out) {
  binary(div_kind("div.out", mode), OutKind::Out, a, b, 1, out);
}
void div_(const Tensor& a, const Tensor& b, c10::optional<c10::string_view> mode) {
  binary(div_kind("div_", mode), OutKind::InPlace, a, b, 1, {});
}

}  // namespace ops

namespace {

// ---- unary -------------------------------------------------------------------------------------

Tensor unary(UnaryOp op, const char* name, OutKind kind, const Tensor& self, const c10::Scalar& exponent,
             const Tensor& out_arg) {
  check_defined(name, self, "self");
  const Tensor& target = kind == OutKind::InPlace ? self : out_arg;
  const at::Device device = common_device(name, {self}, kind == OutKind::Functional ? Tensor() : target);
  at::ScalarType compute = self.scalar_type();
  check_dtype_supported(name, compute);
  switch (op) {
    case UnaryOp::Neg:
      PK_CHECK_NOT_IMPLEMENTED(
          compute != at::kBool, name,
          "negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, "
          "use the `~` or `logical_not()` operator instead.");
      break;
    case UnaryOp::Exp:
    case UnaryOp::Log:
    case UnaryOp::Sqrt:  // integer inputs give the default float type, like torch
      if (at::isIntegralType(compute, /*includeBool=*/true)) compute = default_float();
      break;
    case UnaryOp::Pow:
      PK_CHECK(!exponent.isComplex(), name, "complex exponents are not supported");
      compute = at::result_type(self, exponent);
      PK_CHECK(
          !(at::isIntegralType(compute, /*includeBool=*/true) && exponent.isIntegral(false) && exponent.toLong() < 0),
          name, "integers to negative integer powers are not allowed.");
      break;
    case UnaryOp::Relu:
      PK_CHECK_NOT_IMPLEMENTED(compute != at::kBool, name, "Boolean inputs not supported for relu");
      break;
  }
  // Unlike the binary ops, torch's unary out= variants take no cast: out must have the result dtype.
  PK_CHECK(kind != OutKind::Out || out_arg.scalar_type() == compute, name, "Found dtype ", out_arg.scalar_type(),
           " but expected ", compute);
  Tensor out = prepare_output(name, kind, target, self.sizes(), compute, self.options().device(device), {self});
  const Tensor a = operand(self, compute, self.sizes(), device);  // outlives the kernel
  return run_into(out, compute, [&](Tensor& result) {
    auto it = make_iter<2>(name, {result, a});
    PYKERNELS_DEVICE_CALL(result.device(), unary_kernel, op, it, compute, exponent);
  });
}

}  // namespace

namespace ops {

Tensor neg(const Tensor& a) { return unary(UnaryOp::Neg, "neg", OutKind::Functional, a, 0, {}); }
void neg_out(const Tensor& a, const Tensor& out) { unary(UnaryOp::Neg, "neg.out", OutKind::Out, a, 0, out); }
void neg_(const Tensor& a) { unary(UnaryOp::Neg, "neg_", OutKind::InPlace, a, 0, {}); }
Tensor pow(const Tensor& a, const c10::Scalar& e) { return unary(UnaryOp::Pow, "pow", OutKind::Functional, a, e, {}); }
Tensor pow_Tensor_Tensor(const Tensor& a, const Tensor& e) {
  return binary(BinaryOp::Pow, OutKind::Functional, a, e, 1, {});
}
Tensor exp(const Tensor& a) { return unary(UnaryOp::Exp, "exp", OutKind::Functional, a, 0, {}); }
Tensor log(const Tensor& a) { return unary(UnaryOp::Log, "log", OutKind::Functional, a, 0, {}); }
Tensor sqrt(const Tensor& a) { return unary(UnaryOp::Sqrt, "sqrt", OutKind::Functional, a, 0, {}); }
Tensor relu(const Tensor& a) { return unary(UnaryOp::Relu, "relu", OutKind::Functional, a, 0, {}); }
void relu_(const Tensor& a) { unary(UnaryOp::Relu, "relu_", OutKind::InPlace, a, 0, {}); }

// grad_output where the ReLU's output is positive, else 0 (torch's threshold_backward at 0).
Tensor relu_backward(const Tensor& grad, const Tensor& result) {
  const char* name = "relu_backward";
  check_defined(name, grad, "grad_output");
  check_defined(name, result, "result");
  check_same_device(name, grad, result);
  PK_CHECK(grad.sizes() == result.sizes(), name, "grad_output of shape ", grad.sizes(),
           " does not match the result's shape ", result.sizes());
  const auto compute = at::result_type(grad, result);
  check_dtype_supported(name, compute);
  PK_CHECK_NOT_IMPLEMENTED(compute != at::kBool, name, "Boolean inputs not supported for relu");
  Tensor out = at::empty(grad.sizes(), grad.options().dtype(compute));
  if (out.numel() == 0) return out;
  const Tensor g = operand(grad, compute, out.sizes(), out.device()),
               r = operand(result, compute, out.sizes(), out.device());
  auto it = make_iter<3>(name, {out, g, r});
  PYKERNELS_DEVICE_CALL(out.device(), relu_backward_kernel, it, compute);
  return out;
}

// Both gradients of pow(input, exponent) for a tensor exponent, in one pass: torch's
// pow_backward_self and pow_backward_exponent (csrc/cpu/elementwise.cpp has the formulas), at the
// broadcast shape of the four operands, in the dtype they promote to (floating only), contiguous.
// The autograd node sums each to its operand's shape.
std::tuple<Tensor, Tensor> pow_tensor_backward(const Tensor& grad, const Tensor& self, const Tensor& exponent,
                                               const Tensor& result) {
  const char* name = "pow_tensor_backward";
  check_defined(name, grad, "grad");
  check_defined(name, self, "input");
  check_defined(name, exponent, "exponent");
  check_defined(name, result, "result");
  // The forward may have taken a 0-dim CPU exponent (or base) beside CUDA tensors.
  const at::Device device = common_device(name, {grad, self, exponent, result});
  const auto compute =
      at::promote_types(at::promote_types(at::result_type(self, exponent), grad.scalar_type()), result.scalar_type());
  check_dtype_supported(name, compute);
  PK_CHECK_NOT_IMPLEMENTED(at::isFloatingType(compute), name, "dtype ", compute,
                           " is not supported (floating types only)");
  auto shape = broadcast_shape(name, grad.sizes(), self.sizes());
  shape = broadcast_shape(name, shape, exponent.sizes());
  shape = broadcast_shape(name, shape, result.sizes());
  const auto options = self.options().device(device).dtype(compute);
  Tensor grad_input = at::empty(shape, options), grad_exponent = at::empty(shape, options);
  if (grad_input.numel() == 0) return {grad_input, grad_exponent};
  // The outputs and `result` share one layout (contiguous) and so the offsets of the walk's
  // operand 0: result is copied only where it is not contiguous at the broadcast shape already.
  const Tensor g = operand(grad, compute, shape, device), a = operand(self, compute, shape, device),
               e = operand(exponent, compute, shape, device),
               r = operand(result, compute, shape, device).contiguous();  // all outlive the kernel
  auto it = make_iter<4>(name, {grad_input, g, a, e});
  PYKERNELS_DEVICE_CALL(device, pow_tensor_backward_kernel, it, grad_exponent.data_ptr(), r.const_data_ptr(), compute);
  return {grad_input, grad_exponent};
}

static int64_t mask_bytes(int64_t numel) { return (numel + 7) / 8; }

// relu(input) and its bit mask; CPU only (the CUDA forward keeps the output).
std::tuple<Tensor, Tensor> relu_and_mask(const Tensor& self) {
  const char* name = "relu_and_mask";
  check_defined(name, self, "input");
  PK_CHECK(at::isFloatingType(self.scalar_type()), name, "needs a floating point input, got ", self.scalar_type());
  check_dtype_supported(name, self.scalar_type());
  Tensor out = at::empty(self.sizes(), self.options());
  Tensor mask = at::empty({mask_bytes(self.numel())}, self.options().dtype(at::kByte));
  if (out.numel() == 0) return {out, mask};
  auto it = make_iter<2>(name, {out, self});
  relu_mask_kernel_cpu(it, mask.data_ptr<uint8_t>(), self.scalar_type());
  return {out, mask};
}

// grad_output where the mask bit is set, else 0: relu_backward from relu_and_mask's mask.
Tensor relu_mask_backward(const Tensor& grad, const Tensor& mask) {
  const char* name = "relu_mask_backward";
  check_defined(name, grad, "grad_output");
  check_defined(name, mask, "mask");
  check_same_device(name, grad, mask);
  PK_CHECK(at::isFloatingType(grad.scalar_type()), name, "needs a floating point grad_output, got ",
           grad.scalar_type());
  check_dtype_supported(name, grad.scalar_type());
  PK_CHECK(mask.scalar_type() == at::kByte && mask.dim() == 1 && mask.is_contiguous(), name,
           "mask must be a contiguous 1-D uint8 tensor, got ", mask.scalar_type(), " of shape ", mask.sizes());
  PK_CHECK(mask.numel() == mask_bytes(grad.numel()), name, "mask of ", mask.numel(),
           " bytes does not fit grad_output of shape ", grad.sizes(), " (", mask_bytes(grad.numel()), " bytes)");
  Tensor out = at::empty(grad.sizes(), grad.options());
  if (out.numel() == 0) return out;
  auto it = make_iter<2>(name, {out, grad});
  relu_mask_backward_kernel_cpu(it, mask.const_data_ptr<uint8_t>(), grad.scalar_type());
  return out;
}

}  // namespace ops

}  // namespace pykernels
