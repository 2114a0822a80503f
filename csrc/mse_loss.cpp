// mse_loss forward and backward. The reduced forms ('mean', 'sum') are one fused pass that
// squares and accumulates the differences without materializing them; the backward is one
// pass too: grad_input = scale * (self - target) * grad_output. mse_loss_and_grad fuses the
// two for training: one pass gives the loss and the gradient.
#include <ATen/ATen.h>

#include "common/checks.h"
#include "generated/ops.h"
#include "kernels.h"

namespace pykernels {
namespace {

using at::Tensor;

enum Reduction : int64_t { None = 0, Mean = 1, Sum = 2 };  // at::Reduction's values

void check_reduction(const char* name, int64_t reduction) {
  PK_CHECK(reduction == None || reduction == Mean || reduction == Sum, name, "reduction must be 0 ('none'), ",
           "1 ('mean') or 2 ('sum'), got ", reduction);
}

// The device the loss is computed on. Unlike the elementwise ops, a 0-dim CPU tensor may not join
// tensors on another device: torch's mse_loss broadcasts its operands first, and takes no
// exception for them then.
at::Device check_inputs(const char* name, const Tensor& self, const Tensor& target) {
  check_defined(name, self, "self");
  check_defined(name, target, "target");
  check_same_device(name, self, target);
  return self.device();
}

at::ScalarType float_type(const char* name, at::ScalarType t) {
  check_dtype_supported(name, t);
  PK_CHECK_NOT_IMPLEMENTED(at::isFloatingType(t), name, "dtype ", t, " is not supported (floating types only)");
  return t;
}

// The factor that turns the sum of squared errors over n elements into the loss: 1/n for
// 'mean' (an empty mean is 0/0 = nan, as in torch), 1 for 'sum'.
double loss_scale(int64_t reduction, int64_t n) {
  if (reduction != Mean) return 1.0;
  return n > 0 ? 1.0 / n : std::numeric_limits<double>::quiet_NaN();
}

// d loss / d self per unit of (self - target) and of loss gradient: 2/n for 'mean', 2 for 'sum'
// and 'none'.
double grad_scale(int64_t reduction, int64_t n) { return reduction == Mean ? 2.0 / std::max<int64_t>(n, 1) : 2.0; }

}  // namespace

// The op's device kernels (registered from the op table: csrc/generated/).
namespace ops {

Tensor mse_loss(const Tensor& self, const Tensor& target, int64_t reduction) {
  const char* name = "mse_loss";
  const at::Device device = check_inputs(name, self, target);
  check_reduction(name, reduction);
  const auto dtype = float_type(name, at::result_type(self, target));
  const auto shape = broadcast_shape(name, self.sizes(), target.sizes());
  const Tensor a = operand(self, dtype, shape, device), b = operand(target, dtype, shape, device);
  const auto options = self.options().device(device).dtype(dtype);
  if (reduction == None) {
    Tensor out = at::empty(shape, options);
    if (out.numel() > 0) {
      auto it = make_iter<3>(name, {out, a, b});
      PYKERNELS_DEVICE_CALL(out.device(), mse_loss_none_kernel, it, dtype);
    }
    return out;
  }
  Tensor out = at::empty({}, options);
  const double scale = loss_scale(reduction, c10::multiply_integers(shape));
  auto it = make_iter<2>(name, {a, b});
  PYKERNELS_DEVICE_CALL(out.device(), mse_loss_reduce_kernel, it, dtype, out.data_ptr(), scale);
  return out;
}

// Gradient with respect to `self`, in the broadcast shape of (self, target); the autograd layer
// sums it back to self's own shape when self was broadcast.
Tensor mse_loss_backward(const Tensor& grad, const Tensor& self, const Tensor& target, int64_t reduction) {
  const char* name = "mse_loss_backward";
  check_inputs(name, self, target);
  check_defined(name, grad, "grad_output");
  check_same_device(name, grad, self);
  const at::Device device = self.device();
  check_reduction(name, reduction);
  const auto dtype = float_type(name, at::promote_types(at::result_type(self, target), grad.scalar_type()));
  const auto shape = broadcast_shape(name, self.sizes(), target.sizes());
  if (reduction == None) {
    PK_CHECK(broadcast_shape(name, grad.sizes(), shape) == shape, name, "grad_output of shape ", grad.sizes(),
             " does not broadcast to the loss shape ", at::IntArrayRef(shape));
  } else {
    PK_CHECK(grad.numel() == 1, name, "grad_output of a reduced loss must have one element, got shape ", grad.sizes());
  }
  Tensor out = at::empty(shape, self.options().device(device).dtype(dtype));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const Tensor g = operand(reduction == None ? grad : grad.reshape({}), dtype, shape, device);
  const double scale = grad_scale(reduction, n);
  // outlive the kernel
  const Tensor a = operand(self, dtype, shape, device), b = operand(target, dtype, shape, device);
  auto it = make_iter<4>(name, {out, a, b, g});
  PYKERNELS_DEVICE_CALL(out.device(), mse_loss_backward_kernel, it, dtype, scale);
  return out;
}

// mse_loss(self, target, reduction) and its gradient with respect to self for a loss
// gradient of 1, i.e. scale * (self - target), from one pass over the inputs. Autograd keeps the
// gradient from the forward and, in the usual case of a loss gradient of exactly 1, hands it
// over as is: the backward then costs no pass over memory at all.
std::tuple<Tensor, Tensor> mse_loss_and_grad(const Tensor& self, const Tensor& target, int64_t reduction) {
  const char* name = "mse_loss_and_grad";
  const at::Device device = check_inputs(name, self, target);
  check_reduction(name, reduction);
  PK_CHECK(reduction != None, name, "needs a reduced loss ('mean' or 'sum'); for reduction='none' the ",
           "gradient depends on grad_output (use mse_loss_backward)");
  const auto dtype = float_type(name, at::result_type(self, target));
  const auto shape = broadcast_shape(name, self.sizes(), target.sizes());
  const Tensor a = operand(self, dtype, shape, device), b = operand(target, dtype, shape, device);
  Tensor loss = at::empty({}, self.options().device(device).dtype(dtype));
  Tensor grad = at::empty(shape, self.options().device(device).dtype(dtype));
  const int64_t n = grad.numel();
  auto it = make_iter<3>(name, {grad, a, b});
  PYKERNELS_DEVICE_CALL(loss.device(), mse_loss_reduce_grad_kernel, it, dtype, loss.data_ptr(),
                        loss_scale(reduction, n), grad_scale(reduction, n));
  return {loss, grad};
}

}  // namespace ops

}  // namespace pykernels
