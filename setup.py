"""Build the pykernels extension against the torch that is already installed.

One extension, ``pykernels._C``: the schema table, the device-independent wrappers and the CPU
kernels always; the CUDA kernels too when torch is a CUDA build and a CUDA toolkit is found
(the decision never depends on a GPU being visible, so GPU-less build hosts compile them).
"""
import glob
import os
import sys

from setuptools import setup

try:
    import torch
    from torch.utils import cpp_extension
except ImportError:  # pragma: no cover - exercised by users without torch
    sys.exit(
        "pykernels: PyTorch is not installed. The extension is compiled against the torch it runs "
        "with, so install torch first (e.g. `pip install torch`), then build with "
        "`pip install --no-build-isolation .`"
    )

HERE = os.path.dirname(os.path.abspath(__file__))


def sources(pattern):
    return sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, pattern), recursive=True))


def want_cuda():
    if os.environ.get("PYKERNELS_NO_CUDA", "0") == "1":
        return False
    return bool(torch.version.cuda) and cpp_extension.CUDA_HOME is not None and bool(sources("csrc/cuda/*.cu"))


def extension():
    cpu_sources = sources("csrc/*.cpp") + sources("csrc/common/*.cpp") + sources("csrc/cpu/*.cpp")
    cxx = ["-O3", "-fopenmp", "-DPYKERNELS_TORCH_VERSION=\"%s\"" % torch.__version__]
    link = ["-fopenmp"]
    kwargs = dict(name="pykernels._C", include_dirs=[os.path.join(HERE, "csrc")], extra_link_args=link)
    if want_cuda():
        cuda_sources = sources("csrc/cuda/*.cu")
        nvcc = ["-O3", "-lineinfo", "-std=c++17"]
        return cpp_extension.CUDAExtension(
            sources=cpu_sources + cuda_sources,
            extra_compile_args={"cxx": cxx + ["-DPYKERNELS_WITH_CUDA"], "nvcc": nvcc + ["-DPYKERNELS_WITH_CUDA"]},
            **kwargs,
        )
    return cpp_extension.CppExtension(sources=cpu_sources, extra_compile_args={"cxx": cxx}, **kwargs)


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
