// `pykernels._C.api`: the public functions' typed bindings (generated from the op table into
// csrc/generated/bindings.cpp), and what the Python layer needs besides.
#include <torch/csrc/utils/pybind.h>

#include "common/torch_compat.h"

namespace pykernels {

void add_api_bindings(pybind11::module_& m);  // csrc/generated/bindings.cpp

void add_bindings(PyObject* module) {
  auto parent = pybind11::reinterpret_borrow<pybind11::module_>(module);
  pybind11::module_ m =
      parent.def_submodule("api", "Typed calls of the public functions (csrc/generated/bindings.cpp).");
  add_api_bindings(m);
  // autograd's rules for an in-place write into `self`, for the drop-in mode's Python code that
  // writes through a Function (which would check them only after writing).
  m.def("check_inplace", [](const at::Tensor& self, bool requires_grad) {
    PK_TRANSLATE_ERRORS_BEGIN
    compat::check_inplace(self, requires_grad);
    PK_TRANSLATE_ERRORS_END
  });
}

}  // namespace pykernels
