// What the backward formulas build gradients with, besides the ops themselves (calls.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Scalar.h>

namespace pykernels::autograd {

// `grad` summed over the dimensions that broadcasting added or expanded to reach it from
// `shape`, and given that shape: an operand's gradient (a bias added to every row gets the
// column sums).
at::Tensor sum_to_shape(const at::Tensor& grad, at::IntArrayRef shape);

// `x` times a number (x itself for 1).
at::Tensor scaled(const at::Tensor& x, const c10::Scalar& factor);

// Whether the last two dimensions of `x` are stored column-major (a transposed view).
bool transposed(const at::Tensor& x);

// p @ q, by `product` (a matrix product, batched or not), stored column-major when `column_major`. The gradient of a
// transposed input (w.t() in a linear layer) is then a transposed view too, and reaches the
// parameter contiguous: autograd would otherwise copy it into the parameter's layout.
at::Tensor product_like(bool column_major, at::Tensor (*product)(const at::Tensor&, const at::Tensor&),
                        const at::Tensor& p, const at::Tensor& q);

// Zeros of `shape` with `like`'s dtype and device: the gradient of a piecewise-constant function.
at::Tensor zero_gradient(at::IntArrayRef shape, const at::Tensor& like);

// `value`, a gradient computed below autograd from `inputs` by a formula without a derivative of its
// own: while autograd records (create_graph=True, a torch.func transform) and an input requires
// grad, it takes torch's Error node as its history, so differentiating it once more raises
// `message` rather than treating it as a constant.
at::Tensor first_derivative_only(at::Tensor value, const char* message, const at::TensorList inputs);

}  // namespace pykernels::autograd
