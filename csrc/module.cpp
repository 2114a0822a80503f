// The Python module `pykernels._C`. Importing it runs the static TORCH_LIBRARY registrations
// of this shared library; its functions report what was compiled in and which CUDA GEMM kernel
// ran last (for the tests) and measure the CPU's FMA peak (for the benchmarks), and its
// submodule `api` holds the public functions' typed bindings (bindings/).
#include <Python.h>

#include <exception>

#include "cpu/peak.h"
#include "cpu/simd.h"
#include "kernels.h"

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
#ifdef PYKERNELS_WITH_SM90A
  const long sm90_gemm = 1;  // the wgmma + TMA GEMM of csrc/cuda/gemm_sm90.cu is compiled in
#else
  const long sm90_gemm = 0;
#endif
#ifdef PYKERNELS_DEBUG
  const long debug = 1;  // built with PYKERNELS_DEBUG=1: device-side hang checks (see setup.py)
#else
  const long debug = 0;
#endif
  // "N" hands our references to backends and the bools over to the dict.
  return Py_BuildValue("{s:s,s:N,s:s,s:s,s:N,s:N}", "torch_version", PYKERNELS_TORCH_VERSION, "backends", backends,
                       "cpu_simd", pykernels::cpu_simd_level(), "cuda_arches", PYKERNELS_CUDA_ARCHES, "sm90_gemm",
                       PyBool_FromLong(sm90_gemm), "debug", PyBool_FromLong(debug));
}

// A record, not a measurement: which GEMM kernel the selection rule picked for this thread's last
// CUDA product, so tests can assert that their shape reaches the kernel it was chosen for.
PyObject* gemm_last_kernel(PyObject*, PyObject*) {
#ifdef PYKERNELS_WITH_CUDA
  try {
    return PyUnicode_FromString(pykernels::gemm_last_kernel_cuda().c_str());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
#else
  Py_RETURN_NONE;
#endif
}

PyObject* fma_peak(PyObject*, PyObject* args) {
  double seconds = 0;
  if (!PyArg_ParseTuple(args, "d", &seconds)) return nullptr;
  PyThreadState* state = PyEval_SaveThread();  // the measurement runs on torch's threads only
  const pykernels::cpu::FmaPeak peak = pykernels::cpu::measure_fma_peak(seconds);
  PyEval_RestoreThread(state);
  return Py_BuildValue("(d,s)", peak.gflops, peak.isa);
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this build of pykernels contains."},
    {"fma_peak", fma_peak, METH_VARARGS,
     "fma_peak(seconds) -> (GFLOP/s, isa): measured float32 FMA throughput over torch's threads."},
    {"gemm_last_kernel", gemm_last_kernel, METH_NOARGS,
     "The CUDA GEMM kernel this thread's last CUDA matrix product launched ('' before any; None without CUDA)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

namespace pykernels {
void add_bindings(PyObject* module);  // bindings/bindings.cpp
}

PyMODINIT_FUNC PyInit__C() {
  PyObject* m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
  try {
    pykernels::add_bindings(m);
  } catch (const std::exception& e) {
    Py_DECREF(m);
    PyErr_SetString(PyExc_ImportError, e.what());
    return nullptr;
  }
  return m;
}
