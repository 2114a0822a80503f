// The Python module `pykernels._C`. Importing it runs the static TORCH_LIBRARY registrations
// of this shared library; its only function reports what was compiled in.
#include <Python.h>

#include "cpu/simd.h"

#ifndef PYKERNELS_TORCH_VERSION
#define PYKERNELS_TORCH_VERSION "unknown"
#endif
#ifndef PYKERNELS_CUDA_ARCHES
#define PYKERNELS_CUDA_ARCHES ""
#endif

namespace {

PyObject* build_info(PyObject*, PyObject*) {
#ifdef PYKERNELS_WITH_CUDA
  PyObject* backends = Py_BuildValue("[s,s]", "CPU", "CUDA");
#else
  PyObject* backends = Py_BuildValue("[s]", "CPU");
#endif
  // "N" hands our reference to backends over to the dict.
  return Py_BuildValue("{s:s,s:N,s:s,s:s}", "torch_version", PYKERNELS_TORCH_VERSION, "backends", backends, "cpu_simd",
                       pykernels::cpu_simd_level(), "cuda_arches", PYKERNELS_CUDA_ARCHES);
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this build of pykernels contains."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&module); }
