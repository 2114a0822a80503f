// Formula helpers (helpers.h): all arithmetic through the pykernels ops.
#include "autograd/helpers.h"

#include <ATen/core/grad_mode.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <algorithm>
#include <vector>

#include "common/torch_compat.h"
#include "generated/calls.h"

namespace pykernels::autograd {

at::Tensor sum_to_shape(const at::Tensor& grad, at::IntArrayRef shape) {
  if (grad.sizes() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  }
  return (dims.empty() ? grad : op::sum(grad, dims, /*keepdim=*/true, std::nullopt)).reshape(shape);
}

at::Tensor scaled(const at::Tensor& x, const c10::Scalar& factor) {
  if (!factor.isComplex() && factor.toDouble() == 1.0) return x;
  return op::mul(x, at::scalar_tensor(factor, x.options()));
}

bool transposed(const at::Tensor& x) { return x.stride(-2) == 1 && x.stride(-1) != 1; }

at::Tensor product_like(bool column_major, at::Tensor (*product)(const at::Tensor&, const at::Tensor&),
                        const at::Tensor& p, const at::Tensor& q) {
  if (column_major) return product(q.transpose(-1, -2), p.transpose(-1, -2)).transpose(-1, -2);
  return product(p, q);
}

at::Tensor zero_gradient(at::IntArrayRef shape, const at::Tensor& like) { return at::zeros(shape, like.options()); }

at::Tensor first_derivative_only(at::Tensor value, const char* message, const at::TensorList inputs) {
  if (!value.defined() || !at::GradMode::is_enabled() ||
      std::none_of(inputs.begin(), inputs.end(),
                   [](const at::Tensor& t) { return t.defined() && t.requires_grad(); })) {
    return value;
  }
  const auto node = compat::make_node<torch::autograd::Error>(message, torch::autograd::collect_next_edges(inputs));
  torch::autograd::set_history(value, compat::NodeRef(node));
  return value;
}

}  // namespace pykernels::autograd
