// The schema table: every pykernels op's signature, in one place. Implementations are
// registered per device in csrc/<family>.cpp; fake (meta) kernels and autograd in pykernels/.
// In-place and out= variants mutate their Tensor(a!) argument and return nothing (the Python
// API returns the mutated tensor): custom ops may not return aliases of their inputs, or
// torch.compile could not functionalize them.
#include <torch/library.h>

TORCH_LIBRARY(pykernels, m) {
  // matmul family
  m.def("mm(Tensor input, Tensor mat2) -> Tensor");
  m.def("bmm(Tensor input, Tensor mat2) -> Tensor");
  m.def("matmul(Tensor input, Tensor other) -> Tensor");

  // elementwise, with torch's broadcasting and type promotion
  m.def("add(Tensor input, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("add.out(Tensor input, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> ()");
  m.def("add_(Tensor(a!) input, Tensor other, *, Scalar alpha=1) -> ()");
  m.def("sub(Tensor input, Tensor other, *, Scalar alpha=1) -> Tensor");
  m.def("sub.out(Tensor input, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> ()");
  m.def("sub_(Tensor(a!) input, Tensor other, *, Scalar alpha=1) -> ()");
  m.def("mul(Tensor input, Tensor other) -> Tensor");
  m.def("mul.out(Tensor input, Tensor other, *, Tensor(a!) out) -> ()");
  m.def("mul_(Tensor(a!) input, Tensor other) -> ()");
  m.def("div(Tensor input, Tensor other, *, str? rounding_mode=None) -> Tensor");
  m.def("div.out(Tensor input, Tensor other, *, str? rounding_mode=None, Tensor(a!) out) -> ()");
  m.def("div_(Tensor(a!) input, Tensor other, *, str? rounding_mode=None) -> ()");
  m.def("neg(Tensor input) -> Tensor");
  m.def("neg.out(Tensor input, *, Tensor(a!) out) -> ()");
  m.def("neg_(Tensor(a!) input) -> ()");
  m.def("pow(Tensor input, Scalar exponent) -> Tensor");
  m.def("pow.Tensor_Tensor(Tensor input, Tensor exponent) -> Tensor");
  // d pow / d input and d pow / d exponent, each at the broadcast shape of the four operands,
  // contiguous, in the dtype they promote to (result_type(input, exponent), grad's and result's).
  m.def("pow_tensor_backward(Tensor grad, Tensor input, Tensor exponent, Tensor result) -> (Tensor, Tensor)");
  m.def("exp(Tensor input) -> Tensor");
  m.def("log(Tensor input) -> Tensor");
  m.def("sqrt(Tensor input) -> Tensor");

  // reductions
  m.def("sum(Tensor input, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
  m.def("mean(Tensor input, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");

  // ReLU and MSE loss; reduction: 0 none, 1 mean, 2 sum (torch's at::Reduction values)
  m.def("relu(Tensor input) -> Tensor");
  m.def("relu_(Tensor(a!) input) -> ()");
  m.def("relu_backward(Tensor grad_output, Tensor result) -> Tensor");
  // ReLU and the bit mask its backward needs (uint8, bit i % 8 of byte i / 8 set where element
  // i, in row-major order, is > 0 or NaN): the training forward keeps the mask, not the output.
  m.def("relu_and_mask(Tensor input) -> (Tensor, Tensor)");
  m.def("relu_mask_backward(Tensor grad_output, Tensor mask) -> Tensor");
  m.def("mse_loss(Tensor input, Tensor target, int reduction=1) -> Tensor");
  m.def("mse_loss_backward(Tensor grad_output, Tensor input, Tensor target, int reduction) -> Tensor");
  // A reduced loss and its gradient with respect to input (for a loss gradient of 1), in one
  // pass over input and target: the training forward keeps what its backward would compute.
  m.def("mse_loss_and_grad(Tensor input, Tensor target, int reduction=1) -> (Tensor, Tensor)");
}
