// Autograd in C++ for the functional ops: mm and bmm, the elementwise ops, sum and mean, the
// ReLU ops and mse_loss (matmul, mse_loss_backward and mse_loss_and_grad keep their Python
// formulas); and for the in-place and out= ops, which check torch's autograd rules for a write
// before anything is written.
//
// A Python autograd formula costs about 20 µs per op in interpreter and dispatch time (forward
// and backward together), as much as the kernels of a small layer: the two-layer net spent a
// sixth of its step there. These kernels sit on the Autograd key, so torch.ops.pykernels.mm is
// differentiable at C++ cost; pykernels/autograd.py holds the same formulas in Python for the
// Functions that torch.func transforms use.
//
// Forwards run below autograd. Backwards call the pykernels ops through the dispatcher, with
// autograd, so create_graph=True gives a differentiable backward.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/library.h>

#include "common/torch_compat.h"
#include "generated/ops.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace pykernels {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using Binary = Tensor(const Tensor&, const Tensor&);
using BinaryAlpha = Tensor(const Tensor&, const Tensor&, const c10::Scalar&);
using Unary = Tensor(const Tensor&);
using Reduction = Tensor(const Tensor&, at::OptionalIntArrayRef, bool, std::optional<at::ScalarType>);
using Rounding = std::optional<c10::string_view>;

// The pykernels ops, called through the dispatcher (qualified: at:: has functions of the same names).
namespace op {

template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// With grad mode off (a backward without create_graph) the call skips the Autograd key, which
// records nothing then: for the ops whose autograd torch.library registers from Python (sum,
// neg, ...), that key costs microseconds of interpreter time only to redispatch.
template <typename Signature, typename... Args>
decltype(auto) call(const c10::TypedOperatorHandle<Signature>& op, Args&&... args) {
  if (at::GradMode::is_enabled()) return op.call(std::forward<Args>(args)...);
  at::AutoDispatchBelowAutograd below;
  return op.call(std::forward<Args>(args)...);
}

Tensor mm(const Tensor& a, const Tensor& b) {
  static const auto op = op_handle<Binary>("pykernels::mm");
  return call(op, a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  static const auto op = op_handle<Binary>("pykernels::bmm");
  return call(op, a, b);
}

Tensor add(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  static const auto op = op_handle<BinaryAlpha>("pykernels::add");
  return call(op, a, b, alpha);
}

Tensor sub(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  static const auto op = op_handle<BinaryAlpha>("pykernels::sub");
  return call(op, a, b, alpha);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  static const auto op = op_handle<Binary>("pykernels::mul");
  return call(op, a, b);
}

void mul_(const Tensor& a, const Tensor& b) {
  static const auto op = op_handle<void(const Tensor&, const Tensor&)>("pykernels::mul_");
  call(op, a, b);
}

Tensor div(const Tensor& a, const Tensor& b, Rounding mode = std::nullopt) {
  static const auto op = op_handle<Tensor(const Tensor&, const Tensor&, Rounding)>("pykernels::div");
  return call(op, a, b, mode);
}

Tensor pow(const Tensor& a, const c10::Scalar& e) {
  static const auto op = op_handle<Tensor(const Tensor&, const c10::Scalar&)>("pykernels::pow");
  return call(op, a, e);
}

Tensor exp(const Tensor& a) {
  static const auto op = op_handle<Unary>("pykernels::exp");
  return call(op, a);
}

Tensor log(const Tensor& a) {
  static const auto op = op_handle<Unary>("pykernels::log");
  return call(op, a);
}

Tensor sqrt(const Tensor& a) {
  static const auto op = op_handle<Unary>("pykernels::sqrt");
  return call(op, a);
}

Tensor sum(const Tensor& a, at::OptionalIntArrayRef dims, bool keepdim, std::optional<at::ScalarType> dtype) {
  static const auto op = op_handle<Reduction>("pykernels::sum");
  return call(op, a, dims, keepdim, dtype);
}

Tensor mean(const Tensor& a, at::OptionalIntArrayRef dims, bool keepdim, std::optional<at::ScalarType> dtype) {
  static const auto op = op_handle<Reduction>("pykernels::mean");
  return call(op, a, dims, keepdim, dtype);
}

Tensor neg(const Tensor& a) {
  static const auto op = op_handle<Unary>("pykernels::neg");
  return call(op, a);
}

Tensor relu(const Tensor& a) {
  static const auto op = op_handle<Unary>("pykernels::relu");
  return call(op, a);
}

Tensor relu_backward(const Tensor& grad, const Tensor& result) {
  static const auto op = op_handle<Binary>("pykernels::relu_backward");
  return call(op, grad, result);
}

std::tuple<Tensor, Tensor> relu_and_mask(const Tensor& a) {
  static const auto op = op_handle<std::tuple<Tensor, Tensor>(const Tensor&)>("pykernels::relu_and_mask");
  return call(op, a);
}

Tensor relu_mask_backward(const Tensor& grad, const Tensor& mask) {
  static const auto op = op_handle<Binary>("pykernels::relu_mask_backward");
  return call(op, grad, mask);
}

// The in-place ops below autograd: they write, and recording the write is their caller's business.
template <typename Signature, typename... Args>
void write(const c10::TypedOperatorHandle<Signature>& op, Args&&... args) {
  at::AutoDispatchBelowAutograd below;
  op.call(std::forward<Args>(args)...);
}

using InplaceAlpha = void(const Tensor&, const Tensor&, const c10::Scalar&);
using InplaceUnary = void(const Tensor&);

void add_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  static const auto op = op_handle<InplaceAlpha>("pykernels::add_");
  write(op, a, b, alpha);
}

void sub_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  static const auto op = op_handle<InplaceAlpha>("pykernels::sub_");
  write(op, a, b, alpha);
}

void mul_below(const Tensor& a, const Tensor& b) {
  static const auto op = op_handle<void(const Tensor&, const Tensor&)>("pykernels::mul_");
  write(op, a, b);
}

void div_(const Tensor& a, const Tensor& b, Rounding mode) {
  static const auto op = op_handle<void(const Tensor&, const Tensor&, Rounding)>("pykernels::div_");
  write(op, a, b, mode);
}

void neg_(const Tensor& a) {
  static const auto op = op_handle<InplaceUnary>("pykernels::neg_");
  write(op, a);
}

void relu_(const Tensor& a) {
  static const auto op = op_handle<InplaceUnary>("pykernels::relu_");
  write(op, a);
}

Tensor sum_keepdim(const Tensor& a, at::IntArrayRef dims) { return op::sum(a, dims, true, std::nullopt); }

Tensor mse_loss(const Tensor& a, const Tensor& t, int64_t reduction) {
  static const auto op = op_handle<Tensor(const Tensor&, const Tensor&, int64_t)>("pykernels::mse_loss");
  return call(op, a, t, reduction);
}

Tensor mse_loss_backward(const Tensor& g, const Tensor& a, const Tensor& t, int64_t reduction) {
  static const auto op =
      op_handle<Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t)>("pykernels::mse_loss_backward");
  return call(op, g, a, t, reduction);
}

std::tuple<Tensor, Tensor> mse_loss_and_grad(const Tensor& a, const Tensor& t, int64_t reduction) {
  static const auto op =
      op_handle<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, int64_t)>("pykernels::mse_loss_and_grad");
  return call(op, a, t, reduction);
}

}  // namespace op

// Sums `grad` over the dimensions broadcasting added or expanded to reach it from `shape`.
Tensor sum_to_shape(const Tensor& grad, at::IntArrayRef shape) {
  if (grad.sizes() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  }
  return (dims.empty() ? grad : op::sum_keepdim(grad, dims)).reshape(shape);
}

// `x` times a number (x itself for 1), as the formulas scale gradients.
Tensor scaled(const Tensor& x, const c10::Scalar& factor) {
  if (!factor.isComplex() && factor.toDouble() == 1.0) return x;
  return op::mul(x, at::scalar_tensor(factor, x.options()));
}

// Whether the last two dimensions of `x` are stored column-major (a transposed view).
bool transposed(const Tensor& x) { return x.stride(-2) == 1 && x.stride(-1) != 1; }

// p @ q stored in x's layout. The gradient of a transposed input (w.t() in a linear layer) is
// then a transposed view too, and reaches the parameter contiguous: autograd would otherwise
// copy it into the parameter's layout.
Tensor product_like(const Tensor& x, Binary product, const Tensor& p, const Tensor& q) {
  if (transposed(x)) return product(q.transpose(-1, -2), p.transpose(-1, -2)).transpose(-1, -2);
  return product(p, q);
}

// A plain tensor, not one being traced (torch.compile's fake and functional tensors).
bool plain(const Tensor& t) {
  return !t.key_set().has_any(c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize}));
}

}  // namespace

// The Functions have a namespace of their own: it names their nodes (grad_fn) in the graph.
namespace autograd {

// ---- matmul family ----------------------------------------------------------------------------

template <typename Self, Binary* product>
struct MatrixProduct : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a, b});
    return product(a, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = product_like(a, product, g, b.transpose(-1, -2));
    if (ctx->needs_input_grad(1)) gb = product_like(b, product, a.transpose(-1, -2), g);
    return {ga, gb};
  }
};

struct Mm : MatrixProduct<Mm, op::mm> {};
struct Bmm : MatrixProduct<Bmm, op::bmm> {};

// ---- add, sub, mul ----------------------------------------------------------------------------
// An operand's gradient is summed over the dimensions it was broadcast along (a bias added to
// every row gets the column sums).

template <typename Self, BinaryAlpha* op_fn, int kSign>
struct AddOrSub : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->saved_data["a_sizes"] = a.sizes().vec();
    ctx->saved_data["b_sizes"] = b.sizes().vec();
    ctx->saved_data["alpha"] = alpha;
    return op_fn(a, b, alpha);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor& g = grads[0];
    Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = sum_to_shape(g, ctx->saved_data["a_sizes"].toIntVector());
    if (ctx->needs_input_grad(1)) {
      const c10::Scalar alpha = ctx->saved_data["alpha"].toScalar();
      gb = sum_to_shape(scaled(g, kSign < 0 ? -alpha : alpha), ctx->saved_data["b_sizes"].toIntVector());
    }
    return {ga, gb, Tensor()};
  }
};

struct Add : AddOrSub<Add, op::add, 1> {};
struct Sub : AddOrSub<Sub, op::sub, -1> {};

struct Mul : torch::autograd::Function<Mul> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a, b});
    return op::mul(a, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = sum_to_shape(op::mul(g, b), a.sizes());
    if (ctx->needs_input_grad(1)) gb = sum_to_shape(op::mul(g, a), b.sizes());
    return {ga, gb};
  }
};

// d(a / b) = da / b - a db / b^2. Rounded quotients are piecewise constant: zero gradients, as
// torch gives.
struct Div : torch::autograd::Function<Div> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, Rounding mode) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a, b});
    ctx->saved_data["rounded"] = mode.has_value();
    return op::div(a, b, mode);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    const bool rounded = ctx->saved_data["rounded"].toBool();
    Tensor ga, gb;
    if (ctx->needs_input_grad(0))
      ga = rounded ? at::zeros(a.sizes(), g.options()) : sum_to_shape(op::div(g, b), a.sizes());
    if (ctx->needs_input_grad(1)) {
      gb = rounded ? at::zeros(b.sizes(), g.options())
                   : sum_to_shape(op::neg(op::div(op::mul(g, a), op::mul(b, b))), b.sizes());
    }
    return {ga, gb, Tensor()};
  }
};

// ---- unary ------------------------------------------------------------------------------------

struct Neg : torch::autograd::Function<Neg> {
  static Tensor forward(AutogradContext*, const Tensor& a) {
    at::AutoDispatchBelowADInplaceOrView below;
    return op::neg(a);
  }
  static variable_list backward(AutogradContext*, variable_list grads) { return {op::neg(grads[0])}; }
};

// exp and sqrt keep their output, from which the derivative follows: exp(a), 1 / (2 sqrt(a)).
template <typename Self, Unary* function, Binary* from_output>
struct FromOutput : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor out = function(a);
    ctx->save_for_backward({out});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {from_output(grads[0], ctx->get_saved_variables()[0])};
  }
};

Tensor exp_grad(const Tensor& g, const Tensor& out) { return op::mul(g, out); }
Tensor sqrt_grad(const Tensor& g, const Tensor& out) { return op::div(g, scaled(out, 2)); }

struct Exp : FromOutput<Exp, op::exp, exp_grad> {};
struct Sqrt : FromOutput<Sqrt, op::sqrt, sqrt_grad> {};

struct Log : torch::autograd::Function<Log> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a});
    return op::log(a);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {op::div(grads[0], ctx->get_saved_variables()[0])};
  }
};

// d(a^e) = e a^(e-1) da, and 0 for e = 0 (a^0 is 1 everywhere, 0^0 included).
struct Pow : torch::autograd::Function<Pow> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const c10::Scalar& e) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a});
    ctx->saved_data["exponent"] = e;
    return op::pow(a, e);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor a = ctx->get_saved_variables()[0];
    const Tensor& g = grads[0];
    const c10::Scalar e = ctx->saved_data["exponent"].toScalar();
    const bool integral = e.isIntegral(/*includeBool=*/true);
    if (integral ? e.toLong() == 0 : e.toDouble() == 0.0) return {at::zeros(a.sizes(), g.options()), Tensor()};
    const c10::Scalar e1 = integral ? c10::Scalar(e.toLong() - 1) : c10::Scalar(e.toDouble() - 1.0);
    return {op::mul(g, scaled(op::pow(a, e1), e)), Tensor()};
  }
};

// ---- reductions -------------------------------------------------------------------------------
// The gradient of a sum is the output's gradient broadcast back over the reduced dimensions (an
// expanded view: nothing is copied); a mean's is divided by the count first.

template <typename Self, Reduction* reduce, bool kMean>
struct Reduce : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, at::OptionalIntArrayRef dim, bool keepdim,
                        std::optional<at::ScalarType> dtype) {
    at::AutoDispatchBelowADInplaceOrView below;
    // The reduced dimensions, wrapped and sorted; none or an empty list means all of them.
    std::vector<int64_t> dims;
    if (a.dim() > 0) {
      if (dim.has_value() && !dim->empty()) {
        for (int64_t d : *dim) dims.push_back(((d % a.dim()) + a.dim()) % a.dim());
        std::sort(dims.begin(), dims.end());
        dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
      } else {
        for (int64_t d = 0; d < a.dim(); ++d) dims.push_back(d);
      }
    }
    Tensor out = reduce(a, dim, keepdim, dtype);
    ctx->saved_data["sizes"] = a.sizes().vec();
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["keepdim"] = keepdim;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    Tensor g = grads[0];
    if constexpr (kMean) {
      int64_t count = 1;
      for (int64_t d : dims) count *= sizes[d];
      g = op::div(g, at::scalar_tensor(count, g.options()));
    }
    if (!ctx->saved_data["keepdim"].toBool() && !sizes.empty()) {
      for (int64_t d : dims) g = g.unsqueeze(d);
    }
    return {g.expand(sizes), Tensor(), Tensor(), Tensor()};
  }
};

struct Sum : Reduce<Sum, op::sum, false> {};
struct Mean : Reduce<Mean, op::mean, true> {};

// ---- ReLU -------------------------------------------------------------------------------------

// On the CPU the forward keeps a bit mask (relu_and_mask) rather than the output: the backward
// then reads a bit per element instead of the output's four bytes or more.
bool keeps_mask(const Tensor& a) { return a.is_cpu() && at::isFloatingType(a.scalar_type()); }

struct Relu : torch::autograd::Function<Relu> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a) {
    at::AutoDispatchBelowADInplaceOrView below;
    const bool mask = keeps_mask(a);
    ctx->saved_data["mask"] = mask;
    if (mask) {
      auto [out, bits] = op::relu_and_mask(a);
      ctx->save_for_backward({bits});
      return out;
    }
    Tensor out = op::relu(a);
    ctx->save_for_backward({out});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor saved = ctx->get_saved_variables()[0];
    if (ctx->saved_data["mask"].toBool()) return {op::relu_mask_backward(grads[0], saved)};
    return {op::relu_backward(grads[0], saved)};
  }
};

// relu_backward(grad, result) and relu_mask_backward(grad, mask) are linear in grad, and the
// result or mask has no gradient: the backward of each is the op itself.
template <typename Self, Binary* masked>
struct MaskedGradient : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& mask) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({mask});
    return masked(grad, mask);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {masked(grads[0], ctx->get_saved_variables()[0]), Tensor()};
  }
};

struct ReluBackward : MaskedGradient<ReluBackward, op::relu_backward> {};
struct ReluMaskBackward : MaskedGradient<ReluMaskBackward, op::relu_mask_backward> {};

// The mask output has no gradient.
struct ReluAndMask : torch::autograd::Function<ReluAndMask> {
  static variable_list forward(AutogradContext* ctx, const Tensor& a) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [out, mask] = op::relu_and_mask(a);
    ctx->save_for_backward({mask});
    ctx->mark_non_differentiable({mask});
    return {out, mask};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {op::relu_mask_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

// ---- MSE loss ---------------------------------------------------------------------------------

// A reduced loss recorded for training (input and target of one shape) computes its gradient in
// the forward's one pass over memory (mse_loss_and_grad) and keeps it. Backward hands it over,
// scaled only when the loss gradient is not exactly 1, so it costs no pass over memory in the
// usual case. A second backward through a retained graph, or create_graph=True (the kept
// gradient has no graph of its own), computes the gradient afresh.
struct MseLoss : torch::autograd::Function<MseLoss> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& t, int64_t reduction, bool keep) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->save_for_backward({a, t});
    ctx->saved_data["reduction"] = reduction;
    if (!keep) return op::mse_loss(a, t, reduction);
    auto [loss, grad] = op::mse_loss_and_grad(a, t, reduction);
    ctx->saved_data["kept"] = grad;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &t = saved[1], &g = grads[0];
    const int64_t reduction = ctx->saved_data["reduction"].toInt();
    Tensor grad;
    const auto kept = ctx->saved_data.find("kept");
    if (kept != ctx->saved_data.end() && !at::GradMode::is_enabled()) {
      grad = kept->second.toTensor();
      ctx->saved_data.erase(kept);  // handed over once: it may be accumulated into in place
      if (!plain(g) || !plain(grad)) {
        grad = op::mul(grad, g);
      } else if (!g.is_cpu() || g.item<double>() != 1.0) {  // no host sync on a GPU: scale there
        op::mul_(grad, g);
      }
      return {ctx->needs_input_grad(0) ? grad : Tensor(), ctx->needs_input_grad(1) ? op::neg(grad) : Tensor(), Tensor(),
              Tensor()};
    }
    const Tensor gin = op::mse_loss_backward(g, a, t, reduction);
    return {ctx->needs_input_grad(0) ? sum_to_shape(gin, a.sizes()) : Tensor(),
            ctx->needs_input_grad(1) ? sum_to_shape(op::neg(gin), t.sizes()) : Tensor(), Tensor(), Tensor()};
  }
};

// ---- in-place ---------------------------------------------------------------------------------
// Each writes `a` and marks it dirty: `a` takes the node as its history. The gradients are the
// functional op's, with `a`'s old value where a formula reads it (kept only when needed).

template <typename Self, void (*write)(const Tensor&, const Tensor&, const c10::Scalar&), int kSign>
struct AddOrSubInplace : torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
    ctx->saved_data["b_sizes"] = b.sizes().vec();
    ctx->saved_data["alpha"] = alpha;
    write(a, b, alpha);
    ctx->mark_dirty({a});
    return a;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor& g = grads[0];
    Tensor gb;
    if (ctx->needs_input_grad(1)) {
      const c10::Scalar alpha = ctx->saved_data["alpha"].toScalar();
      gb = sum_to_shape(scaled(g, kSign < 0 ? -alpha : alpha), ctx->saved_data["b_sizes"].toIntVector());
    }
    return {ctx->needs_input_grad(0) ? g : Tensor(), gb, Tensor()};
  }
};

struct AddInplace : AddOrSubInplace<AddInplace, op::add_, 1> {};
struct SubInplace : AddOrSubInplace<SubInplace, op::sub_, -1> {};

// d(a * b) and d(a / b) by b need a's old value: the caller passes a copy made before the write
// (with autograd recording, so that a double backward reaches a's history through it), or an
// undefined tensor when b needs no gradient.
struct MulInplace : torch::autograd::Function<MulInplace> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, const std::optional<Tensor>& old) {
    ctx->save_for_backward({b, old.value_or(Tensor())});
    op::mul_below(a, b);
    ctx->mark_dirty({a});
    return a;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &b = saved[0], &old = saved[1], &g = grads[0];
    return {ctx->needs_input_grad(0) ? op::mul(g, b) : Tensor(),
            ctx->needs_input_grad(1) ? sum_to_shape(op::mul(g, old), b.sizes()) : Tensor(), Tensor()};
  }
};

struct DivInplace : torch::autograd::Function<DivInplace> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b, Rounding mode,
                        const std::optional<Tensor>& old) {
    ctx->save_for_backward({b, old.value_or(Tensor())});
    ctx->saved_data["a_sizes"] = a.sizes().vec();
    ctx->saved_data["rounded"] = mode.has_value();
    op::div_(a, b, mode);
    ctx->mark_dirty({a});
    return a;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &b = saved[0], &old = saved[1], &g = grads[0];
    Tensor ga, gb;
    if (ctx->saved_data["rounded"].toBool()) {  // piecewise constant: zero gradients, as torch gives
      if (ctx->needs_input_grad(0)) ga = at::zeros(ctx->saved_data["a_sizes"].toIntVector(), g.options());
      if (ctx->needs_input_grad(1)) gb = at::zeros(b.sizes(), g.options());
    } else {
      if (ctx->needs_input_grad(0)) ga = op::div(g, b);
      if (ctx->needs_input_grad(1)) gb = sum_to_shape(op::neg(op::div(op::mul(g, old), op::mul(b, b))), b.sizes());
    }
    return {ga, gb, Tensor(), Tensor()};
  }
};

struct NegInplace : torch::autograd::Function<NegInplace> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a) {
    op::neg_(a);
    ctx->mark_dirty({a});
    return a;
  }
  static variable_list backward(AutogradContext*, variable_list grads) { return {op::neg(grads[0])}; }
};

struct ReluInplace : torch::autograd::Function<ReluInplace> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a) {
    op::relu_(a);
    ctx->mark_dirty({a});
    ctx->save_for_backward({a});  // the result: a's new value
    return a;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {op::relu_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

}  // namespace autograd

namespace {

Tensor mm_autograd(const Tensor& a, const Tensor& b) { return autograd::Mm::apply(a, b); }
Tensor bmm_autograd(const Tensor& a, const Tensor& b) { return autograd::Bmm::apply(a, b); }
Tensor add_autograd(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  return autograd::Add::apply(a, b, alpha);
}
Tensor sub_autograd(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  return autograd::Sub::apply(a, b, alpha);
}
Tensor mul_autograd(const Tensor& a, const Tensor& b) { return autograd::Mul::apply(a, b); }
Tensor div_autograd(const Tensor& a, const Tensor& b, Rounding mode) { return autograd::Div::apply(a, b, mode); }
Tensor neg_autograd(const Tensor& a) { return autograd::Neg::apply(a); }
Tensor exp_autograd(const Tensor& a) { return autograd::Exp::apply(a); }
Tensor log_autograd(const Tensor& a) { return autograd::Log::apply(a); }
Tensor sqrt_autograd(const Tensor& a) { return autograd::Sqrt::apply(a); }
Tensor pow_autograd(const Tensor& a, const c10::Scalar& e) { return autograd::Pow::apply(a, e); }
Tensor sum_autograd(const Tensor& a, at::OptionalIntArrayRef dim, bool keepdim, std::optional<at::ScalarType> dtype) {
  return autograd::Sum::apply(a, dim, keepdim, dtype);
}
Tensor mean_autograd(const Tensor& a, at::OptionalIntArrayRef dim, bool keepdim, std::optional<at::ScalarType> dtype) {
  return autograd::Mean::apply(a, dim, keepdim, dtype);
}
Tensor relu_autograd(const Tensor& a) { return autograd::Relu::apply(a); }
Tensor relu_backward_autograd(const Tensor& grad, const Tensor& result) {
  return autograd::ReluBackward::apply(grad, result);
}

std::tuple<Tensor, Tensor> relu_and_mask_autograd(const Tensor& a) {
  const auto out = autograd::ReluAndMask::apply(a);
  return {out[0], out[1]};
}
Tensor relu_mask_backward_autograd(const Tensor& grad, const Tensor& mask) {
  return autograd::ReluMaskBackward::apply(grad, mask);
}

Tensor mse_loss_autograd(const Tensor& a, const Tensor& t, int64_t reduction) {
  const bool keep = reduction != 0 && a.sizes() == t.sizes() && at::GradMode::is_enabled() &&
                    (a.requires_grad() || t.requires_grad());
  return autograd::MseLoss::apply(a, t, reduction, keep);
}

// Whether autograd records a call on these tensors.
bool records(std::initializer_list<Tensor> tensors) {
  if (!at::GradMode::is_enabled()) return false;
  return std::any_of(tensors.begin(), tensors.end(), [](const Tensor& t) { return t.defined() && t.requires_grad(); });
}

// torch's checks for an in-place write, made before it: torch::autograd::Function makes them only
// after its forward has written, and the autograd fallback of a custom op makes none. A leaf
// that requires grad, or a view of one, may not be written while autograd records.
template <typename Record, typename Write>
void inplace(const Tensor& self, std::initializer_list<Tensor> inputs, Record record, Write write) {
  const bool grad = records(inputs);
  compat::check_inplace(self, grad);
  if (grad) {
    record();
  } else {
    write();
  }
}

void add_autograd_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  inplace(a, {a, b}, [&] { autograd::AddInplace::apply(a, b, alpha); }, [&] { op::add_(a, b, alpha); });
}
void sub_autograd_(const Tensor& a, const Tensor& b, const c10::Scalar& alpha) {
  inplace(a, {a, b}, [&] { autograd::SubInplace::apply(a, b, alpha); }, [&] { op::sub_(a, b, alpha); });
}
// a's value before an in-place write, for a formula that reads it: copied with autograd recording.
// Not an input of the node (its history is reached through the saved copy in a double backward).
std::optional<Tensor> old_value(const Tensor& a, bool needed) {
  return needed ? std::optional<Tensor>(a.clone()) : std::nullopt;
}

void mul_autograd_(const Tensor& a, const Tensor& b) {
  inplace(
      a, {a, b}, [&] { autograd::MulInplace::apply(a, b, old_value(a, b.requires_grad())); },
      [&] { op::mul_below(a, b); });
}
void div_autograd_(const Tensor& a, const Tensor& b, Rounding mode) {
  inplace(
      a, {a, b}, [&] { autograd::DivInplace::apply(a, b, mode, old_value(a, b.requires_grad() && !mode)); },
      [&] { op::div_(a, b, mode); });
}
void neg_autograd_(const Tensor& a) {
  inplace(a, {a}, [&] { autograd::NegInplace::apply(a); }, [&] { op::neg_(a); });
}
void relu_autograd_(const Tensor& a) {
  inplace(a, {a}, [&] { autograd::ReluInplace::apply(a); }, [&] { op::relu_(a); });
}

// out= forms are not differentiable, as torch's are not: with autograd recording, an argument
// that requires grad is an error, raised before the op writes.
void out_autograd(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
  const auto& schema = op.schema();
  const size_t n = schema.arguments().size();
  if (at::GradMode::is_enabled()) {
    for (size_t i = stack->size() - n; i < stack->size(); ++i) {
      const c10::IValue& v = (*stack)[i];
      TORCH_CHECK(!(v.isTensor() && v.toTensor().requires_grad()), "pykernels.",
                  schema.name().substr(schema.name().find("::") + 2),
                  "(): functions with out=... arguments don't support automatic differentiation, but one of the "
                  "arguments requires grad.");
    }
  }
  at::AutoDispatchBelowAutograd below;
  op.redispatchBoxed(keys & compat::after_autograd_keyset, stack);
}

}  // namespace

namespace {

// The in-place and out= ops bump the version counter of the tensor they write, as torch's do,
// so that a backward which saved that tensor before the write raises instead of using the new
// values (an optimizer step under no_grad on a weight that a pending backward still needs).
// torch's ADInplaceOrView fallback for custom ops bumps written returns only, and these ops
// return nothing (a custom op may not return an alias of an input), so this kernel reads the
// schema's Tensor(a!) arguments instead.
void bump_written_versions(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
  const auto& arguments = op.schema().arguments();
  const size_t first = stack->size() - arguments.size();
  c10::SmallVector<Tensor, 1> written;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const at::AliasInfo* alias = arguments[i].alias_info();
    if (alias != nullptr && alias->isWrite()) written.push_back((*stack)[first + i].toTensor());
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(keys & compat::after_ad_inplace_or_view_keyset, stack);
  }
  for (const Tensor& t : written) compat::bump_version(t);
}

}  // namespace


namespace autograd {  // TEMP shim until the raw-node autograd lands
Tensor mm(const Tensor& a, const Tensor& b) { return mm_autograd(a, b); }
Tensor bmm(const Tensor& a, const Tensor& b) { return bmm_autograd(a, b); }
Tensor add(const Tensor& a, const Tensor& b, const c10::Scalar& s) { return add_autograd(a, b, s); }
Tensor sub(const Tensor& a, const Tensor& b, const c10::Scalar& s) { return sub_autograd(a, b, s); }
Tensor mul(const Tensor& a, const Tensor& b) { return mul_autograd(a, b); }
Tensor div(const Tensor& a, const Tensor& b, std::optional<c10::string_view> m) { return div_autograd(a, b, m); }
Tensor neg(const Tensor& a) { return neg_autograd(a); }
Tensor exp(const Tensor& a) { return exp_autograd(a); }
Tensor log(const Tensor& a) { return log_autograd(a); }
Tensor sqrt(const Tensor& a) { return sqrt_autograd(a); }
Tensor pow(const Tensor& a, const c10::Scalar& e) { return pow_autograd(a, e); }
Tensor sum(const Tensor& a, at::OptionalIntArrayRef d, bool k, std::optional<at::ScalarType> t) { return sum_autograd(a, d, k, t); }
Tensor mean(const Tensor& a, at::OptionalIntArrayRef d, bool k, std::optional<at::ScalarType> t) { return mean_autograd(a, d, k, t); }
Tensor relu(const Tensor& a) { return relu_autograd(a); }
Tensor relu_backward(const Tensor& g, const Tensor& r) { return relu_backward_autograd(g, r); }
std::tuple<Tensor, Tensor> relu_and_mask(const Tensor& a) { return relu_and_mask_autograd(a); }
Tensor relu_mask_backward(const Tensor& g, const Tensor& m) { return relu_mask_backward_autograd(g, m); }
Tensor mse_loss(const Tensor& a, const Tensor& t, int64_t r) { return mse_loss_autograd(a, t, r); }
void add_(const Tensor& a, const Tensor& b, const c10::Scalar& s) { add_autograd_(a, b, s); }
void sub_(const Tensor& a, const Tensor& b, const c10::Scalar& s) { sub_autograd_(a, b, s); }
void mul_(const Tensor& a, const Tensor& b) { mul_autograd_(a, b); }
void div_(const Tensor& a, const Tensor& b, std::optional<c10::string_view> m) { div_autograd_(a, b, m); }
void neg_(const Tensor& a) { neg_autograd_(a); }
void relu_(const Tensor& a) { relu_autograd_(a); }
void out_kernel(const c10::OperatorHandle& op, c10::DispatchKeySet k, torch::jit::Stack* s) { out_autograd(op, k, s); }
void bump_written_versions(const c10::OperatorHandle& op, c10::DispatchKeySet k, torch::jit::Stack* s) { pykernels::bump_written_versions(op, k, s); }
}  // namespace autograd

}  // namespace pykernels
