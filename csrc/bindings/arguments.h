// How the typed bindings (csrc/generated/bindings.cpp) take their arguments from Python.
//
// Each caster loads what torch's own bindings take for that schema type and nothing else: an
// argument that fails to load is a TypeError, after which the public function calls torch.ops
// instead (which converts the rarer kinds, or words the error).
#pragma once

#include <Python.h>
#include <pybind11/stl.h>
#include <torch/csrc/autograd/python_variable.h>

#include <optional>
#include <string>
#include <vector>

#include "common/torch_compat.h"

namespace pykernels {

// A Scalar: a Python bool, int (within int64) or float, a 0-dim tensor (its value), or a numpy
// number (torch reads a numpy bool as a float, so it becomes one here too).
struct PyScalar {
  c10::Scalar value;
};

// An operand given as a tensor or a number (add(x, 2), pow(2, x)): the binding calls the form
// of the op that takes what was given (add, add.Scalar, add.Scalar_Tensor).
struct TensorOrNumber {
  at::Tensor tensor_;
  std::optional<c10::Scalar> number_;

  bool is_number() const { return number_.has_value(); }
  const c10::Scalar& scalar() const { return *number_; }
  const at::Tensor& tensor() const { return tensor_; }
};

// int[1]?: None, an int, or a sequence of ints.
struct OptionalIntList {
  std::optional<std::vector<int64_t>> dims;
  at::OptionalIntArrayRef get() const { return dims ? at::OptionalIntArrayRef(*dims) : std::nullopt; }
};

// A str? as the op takes it: pybind11 loads a std::string, which torch 2.4's c10::string_view
// (a class of its own there) can't be loaded as.
inline std::optional<c10::string_view> view(const std::optional<std::string>& s) {
  return s ? std::optional<c10::string_view>(c10::string_view(s->data(), s->size())) : std::nullopt;
}

namespace detail {

// A Python number as a Scalar, or nothing for anything else (bool is a subclass of int: first).
inline std::optional<c10::Scalar> python_number(PyObject* o) {
  if (PyBool_Check(o)) return c10::Scalar(o == Py_True);
  if (PyLong_CheckExact(o)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return std::nullopt;
    }
    return c10::Scalar(static_cast<int64_t>(v));
  }
  if (PyFloat_CheckExact(o)) return c10::Scalar(PyFloat_AS_DOUBLE(o));
  return std::nullopt;
}

// A numpy number (np.float32(2), np.int64(3), np.bool_(True)) as the Python number its item()
// gives; a numpy bool as a float, as torch reads one.
inline bool numpy_number(PyObject* o, c10::Scalar& out) {
  pybind11::handle type(reinterpret_cast<PyObject*>(Py_TYPE(o)));
  if (!pybind11::hasattr(type, "__module__") || type.attr("__module__").cast<std::string>() != "numpy" ||
      !pybind11::hasattr(o, "item")) {
    return false;
  }
  pybind11::object item = pybind11::reinterpret_borrow<pybind11::object>(o).attr("item")();
  auto number = python_number(item.ptr());
  if (!number) return false;
  out = number->isBoolean() ? c10::Scalar(static_cast<double>(number->toBool())) : *number;
  return true;
}

}  // namespace detail
}  // namespace pykernels

namespace pybind11::detail {

template <>
struct type_caster<pykernels::PyScalar> {
  PYBIND11_TYPE_CASTER(pykernels::PyScalar, const_name("Number"));
  bool load(handle src, bool /*convert*/) {
    PyObject* o = src.ptr();
    if (auto number = pykernels::detail::python_number(o)) {
      value.value = *number;
      return true;
    }
    if (THPVariable_Check(o)) {
      const at::Tensor& t = THPVariable_Unpack(o);
      if (t.dim() != 0) return false;
      pybind11::gil_scoped_release no_gil;
      value.value = t.item();
      return true;
    }
    return pykernels::detail::numpy_number(o, value.value);
  }
};

template <>
struct type_caster<pykernels::TensorOrNumber> {
  PYBIND11_TYPE_CASTER(pykernels::TensorOrNumber, const_name("Union[Tensor, Number]"));
  bool load(handle src, bool /*convert*/) {
    PyObject* o = src.ptr();
    if (THPVariable_Check(o)) {
      value.tensor_ = THPVariable_Unpack(o);
      value.number_.reset();
      return true;
    }
    value.number_ = pykernels::detail::python_number(o);
    return value.number_.has_value();
  }
};

template <>
struct type_caster<pykernels::OptionalIntList> {
  PYBIND11_TYPE_CASTER(pykernels::OptionalIntList, const_name("Optional[Union[int, Sequence[int]]]"));
  bool load(handle src, bool convert) {
    if (src.is_none()) {
      value.dims.reset();
      return true;
    }
    if (PyLong_Check(src.ptr()) && !PyBool_Check(src.ptr())) {
      value.dims = std::vector<int64_t>{src.cast<int64_t>()};
      return true;
    }
    make_caster<std::vector<int64_t>> list;
    if (!list.load(src, convert)) return false;
    value.dims = cast_op<std::vector<int64_t>&&>(std::move(list));
    return true;
  }
};

}  // namespace pybind11::detail
