// The boxed kernels of the ops that write into an argument (generated/ops.h): for the Autograd key
// of the out= forms and of the in-place forms without a derivative, and for the ADInplaceOrView
// key of every in-place and out= form.
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>

#include "common/torch_compat.h"
#include "generated/ops.h"

namespace pykernels::autograd {

using at::Tensor;

// With autograd recording, an argument that requires grad is an error, raised before the op writes.
void out_kernel(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
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

// The in-place ops without a derivative (the optimizer steps) write tensors that autograd may
// track. With autograd recording, as torch's own kernels do for such ops: autograd's rules for
// an in-place write into each written tensor (a leaf that requires grad, or a view of one, is
// its error), and an argument that requires grad is an error too, as no history can be
// recorded; all before any write. Below autograd (an optimizer's step runs under no_grad) the
// call goes on unchecked.
void inplace_without_derivative(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
  if (at::GradMode::is_enabled()) {
    const auto& schema = op.schema();
    const auto& arguments = schema.arguments();
    const size_t first = stack->size() - arguments.size();
    auto for_each_tensor = [&](size_t i, auto&& f) {
      const c10::IValue& v = (*stack)[first + i];
      if (v.isTensor()) {
        f(v.toTensor());
      } else if (v.isTensorList()) {
        for (const Tensor& t : v.toTensorVector()) f(t);
      }
    };
    bool requires_grad = false;
    for (size_t i = 0; i < arguments.size(); ++i)
      for_each_tensor(i, [&](const Tensor& t) { requires_grad = requires_grad || (t.defined() && t.requires_grad()); });
    if (requires_grad) {
      for (size_t i = 0; i < arguments.size(); ++i) {
        const at::AliasInfo* alias = arguments[i].alias_info();
        if (alias != nullptr && alias->isWrite())
          for_each_tensor(i, [](const Tensor& t) { compat::check_inplace(t, true); });
      }
      TORCH_CHECK(false, "pykernels.", schema.name().substr(schema.name().find("::") + 2),
                  "(): has no derivative, but one of the arguments requires grad (run it under torch.no_grad())");
    }
  }
  at::AutoDispatchBelowAutograd below;
  op.redispatchBoxed(keys & compat::after_autograd_keyset, stack);
}

// The in-place and out= ops bump the version counter of the tensor they write, as torch's do,
// so that a backward which saved that tensor before the write raises instead of using the new
// values (an optimizer step under no_grad on a weight that a pending backward still needs).
// torch's ADInplaceOrView fallback for custom ops bumps written returns only, and these ops
// return nothing (a custom op may not return an alias of an input), so this kernel reads the
// schema's written arguments instead: Tensor(a!), and each tensor of a Tensor(a!)[] list (the
// optimizer steps write every parameter and its state).
void bump_written_versions(const c10::OperatorHandle& op, c10::DispatchKeySet keys, torch::jit::Stack* stack) {
  const auto& arguments = op.schema().arguments();
  const size_t first = stack->size() - arguments.size();
  c10::SmallVector<Tensor, 1> written;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const at::AliasInfo* alias = arguments[i].alias_info();
    if (alias == nullptr || !alias->isWrite()) continue;
    const c10::IValue& value = (*stack)[first + i];
    if (value.isTensorList()) {
      for (const Tensor& t : value.toTensorVector()) written.push_back(t);
    } else {
      written.push_back(value.toTensor());
    }
  }
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.redispatchBoxed(keys & compat::after_ad_inplace_or_view_keyset, stack);
  }
  for (const Tensor& t : written) compat::bump_version(t);
}

}  // namespace pykernels::autograd
