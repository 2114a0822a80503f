// `pykernels._C.direct`: typed Python bindings of the ops, for the public API's hot path.
//
// A call of torch.ops.pykernels.<op> from Python parses its arguments against the schema into
// a boxed stack, 1.5-2 µs more per call than a typed binding (a public function on 64 floats
// took about 3x torch's time). The stack's small heap blocks are also taken between one call's
// output being freed and the next one's allocation, so a large output moved to a new address
// every call, out of the cache its predecessor had warmed: an allocating op on 2^20 floats ran
// 8-18 µs behind torch's, which reuses one buffer. These bindings take typed arguments and call
// the same op through the dispatcher, so every dispatch key (autograd, fake tensors, functorch,
// Python dispatch modes) sees the same call. pykernels/autograd.py calls them where no
// __torch_function__ applies and outside torch.compile (which traces torch.ops), and falls back
// to torch.ops on a TypeError: an argument the binding does not take.
//
// Each binding takes `below_autograd` first: the no-grad path skips the Autograd key, as the
// Python API's _AutoDispatchBelowAutograd does, and the recording path goes through it.
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/torch_compat.h"

namespace pykernels::direct {

// A Python bool, int (within int64) or float as a c10::Scalar. torch's own Scalar caster loads
// nothing; anything else fails to load, and the caller's TypeError sends it down torch.ops,
// which converts every other kind of number (and words the error for a non-number).
struct PyScalar {
  c10::Scalar value;
};

}  // namespace pykernels::direct

namespace pybind11::detail {
template <>
struct type_caster<pykernels::direct::PyScalar> {
  PYBIND11_TYPE_CASTER(pykernels::direct::PyScalar, const_name("Union[bool, int, float]"));
  bool load(handle src, bool /*convert*/) {
    PyObject* o = src.ptr();
    if (PyBool_Check(o)) {
      value.value = c10::Scalar(o == Py_True);
    } else if (PyLong_CheckExact(o)) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return false;
      }
      value.value = c10::Scalar(static_cast<int64_t>(v));
    } else if (PyFloat_CheckExact(o)) {
      value.value = c10::Scalar(PyFloat_AS_DOUBLE(o));
    } else {
      return false;
    }
    return true;
  }
};
}  // namespace pybind11::detail

namespace pykernels {
namespace {

namespace py = pybind11;
using at::Tensor;
using direct::PyScalar;

// The type a binding takes from Python for each argument type of an op.
template <typename T>
struct FromPython {
  using type = T;
  static T get(T v) { return v; }
};
template <>
struct FromPython<const c10::Scalar&> {
  using type = PyScalar;
  static const c10::Scalar& get(const PyScalar& s) { return s.value; }
};
// pybind11 loads a str as a std::string_view, which c10::string_view is in newer torch releases but
// not in torch 2.4 (a class of its own there): the binding takes a std::string and passes a view.
template <>
struct FromPython<std::optional<c10::string_view>> {
  using type = std::optional<std::string>;
  static std::optional<c10::string_view> get(const type& v) {
    return v ? std::optional<c10::string_view>(c10::string_view(v->data(), v->size())) : std::nullopt;
  }
};
template <>
struct FromPython<at::OptionalIntArrayRef> {  // a view: the list lives in the binding's argument
  using type = std::optional<std::vector<int64_t>>;
  static at::OptionalIntArrayRef get(const type& v) {
    return v ? at::OptionalIntArrayRef(*v) : at::OptionalIntArrayRef(std::nullopt);
  }
};

template <typename Signature>
struct Direct;

template <typename Return, typename... Args>
struct Direct<Return(Args...)> {
  // Binds pykernels::<name>.<overload> as direct.<name> (direct.<name>_<overload> for an overload).
  static void def(py::module_& m, const char* name, const char* overload = "") {
    const auto op = c10::Dispatcher::singleton()
                        .findSchemaOrThrow((std::string("pykernels::") + name).c_str(), overload)
                        .typed<Return(Args...)>();
    const std::string py_name = *overload ? std::string(name) + "_" + overload : std::string(name);
    // PK_TRANSLATE_ERRORS_*: torch's exception types and Python warnings, as torch.ops gives them.
    m.def(py_name.c_str(), [op](bool below_autograd, typename FromPython<Args>::type... args) -> Return {
      PK_TRANSLATE_ERRORS_BEGIN
      py::gil_scoped_release no_gil;
      if (below_autograd) {
        at::AutoDispatchBelowAutograd guard;
        return op.call(FromPython<Args>::get(args)...);
      }
      return op.call(FromPython<Args>::get(args)...);
      PK_TRANSLATE_ERRORS_END
    });
  }
};

using Unary = Direct<Tensor(const Tensor&)>;
using Binary = Direct<Tensor(const Tensor&, const Tensor&)>;
using BinaryAlpha = Direct<Tensor(const Tensor&, const Tensor&, const c10::Scalar&)>;
using InplaceAlpha = Direct<void(const Tensor&, const Tensor&, const c10::Scalar&)>;
using Rounding = std::optional<c10::string_view>;
using Pair = std::tuple<Tensor, Tensor>;

}  // namespace

void add_direct_calls(PyObject* module) {
  auto parent = py::reinterpret_borrow<py::module_>(module);
  py::module_ m =
      parent.def_submodule("direct", "Typed calls of torch.ops.pykernels.<op>: direct.<op>(below_autograd, *args).");
  for (const char* name : {"mm", "bmm", "matmul", "mul", "relu_backward"}) Binary::def(m, name);
  for (const char* name : {"neg", "exp", "log", "sqrt", "relu"}) Unary::def(m, name);
  for (const char* name : {"add", "sub"}) BinaryAlpha::def(m, name);
  for (const char* name : {"add_", "sub_"}) InplaceAlpha::def(m, name);
  Direct<void(const Tensor&, const Tensor&)>::def(m, "mul_");
  Direct<Tensor(const Tensor&, const Tensor&, Rounding)>::def(m, "div");
  Direct<void(const Tensor&, const Tensor&, Rounding)>::def(m, "div_");
  for (const char* name : {"neg_", "relu_"}) Direct<void(const Tensor&)>::def(m, name);
  using OutAlpha = Direct<void(const Tensor&, const Tensor&, const c10::Scalar&, const Tensor&)>;
  for (const char* name : {"add", "sub"}) OutAlpha::def(m, name, "out");
  Direct<void(const Tensor&, const Tensor&, const Tensor&)>::def(m, "mul", "out");
  Direct<void(const Tensor&, const Tensor&, Rounding, const Tensor&)>::def(m, "div", "out");
  Direct<void(const Tensor&, const Tensor&)>::def(m, "neg", "out");
  Direct<Tensor(const Tensor&, const c10::Scalar&)>::def(m, "pow");
  Direct<Tensor(const Tensor&, const Tensor&, int64_t)>::def(m, "mse_loss");
  Direct<Tensor(const Tensor&, const Tensor&, const Tensor&, int64_t)>::def(m, "mse_loss_backward");
  Direct<Pair(const Tensor&, const Tensor&, int64_t)>::def(m, "mse_loss_and_grad");
  using Reduce = Direct<Tensor(const Tensor&, at::OptionalIntArrayRef, bool, std::optional<at::ScalarType>)>;
  for (const char* name : {"sum", "mean"}) Reduce::def(m, name);
  // autograd's rules for an in-place write into `self`, for Python code that writes through a
  // Function (which would check them only after writing).
  m.def("check_inplace", [](const Tensor& self, bool requires_grad) {
    PK_TRANSLATE_ERRORS_BEGIN
    compat::check_inplace(self, requires_grad);
    PK_TRANSLATE_ERRORS_END
  });
}

}  // namespace pykernels
