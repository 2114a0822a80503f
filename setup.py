"""Build the pykernels extension against the torch that is already installed.

One extension, ``pykernels._C``: the schema table, the device-independent wrappers and the CPU
kernels always; the CUDA kernels too when torch is a CUDA build and a CUDA toolkit is found
(the decision never depends on a GPU being visible, so GPU-less build hosts compile them).
"""
import glob
import os
import re
import shutil
import subprocess
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


def _toolkit_root(path):
    """`path` if it looks like a CUDA toolkit root (bin/nvcc and include/cuda_runtime.h), else None."""
    if path and all(os.path.isfile(os.path.join(path, *f)) for f in (("bin", "nvcc"), ("include", "cuda_runtime.h"))):
        return os.path.abspath(path)
    return None


def _nvcc_candidates(nvcc):
    """Toolkit roots an `nvcc` found on PATH may belong to. It can be the real binary, a symlink
    or a wrapper script (`exec /opt/cuda-13.0/bin/nvcc "$@"`), so ask it and read it."""
    yield os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    try:  # nvcc reports its own directory: `#$ _HERE_=/usr/local/cuda-13.0/bin`
        dry = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
        for line in (dry.stdout + dry.stderr).splitlines():
            if line.startswith("#$ _HERE_="):
                yield os.path.dirname(line.split("=", 1)[1].strip())
    except (OSError, subprocess.SubprocessError):
        pass
    try:  # a wrapper script names the real nvcc
        with open(nvcc, "rb") as f:
            head = f.read(65536)
        if b"\0" not in head:
            for m in re.finditer(r"(/[^\s'\"]+)/bin/nvcc\b", head.decode(errors="replace")):
                yield m.group(1)
    except OSError:
        pass


def find_cuda_home():
    """The CUDA toolkit: $CUDA_HOME or $CUDA_PATH when set, else the toolkit of the nvcc on PATH,
    else /usr/local/cuda. (torch's own guess takes dirname(dirname(which nvcc)), which is wrong
    when nvcc is a wrapper script, e.g. /usr/local/bin/nvcc.)"""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    nvcc = shutil.which("nvcc")
    for candidate in list(_nvcc_candidates(nvcc)) if nvcc else []:
        if _toolkit_root(candidate):
            return _toolkit_root(candidate)
    return _toolkit_root("/usr/local/cuda")


def cuda_arch_list():
    """TORCH_CUDA_ARCH_LIST, defaulting to the visible GPUs' architectures (as torch does) or,
    with no GPU visible, to sm_80 and sm_90 plus PTX for newer GPUs. Each arch is one more
    device compile of every .cu file, so the default stays short. Sets the variable so that
    the build and the reported arches agree."""
    arches = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if not arches or arches == "native":
        if torch.cuda.is_available():  # clamped to the newest arch this torch (and its nvcc) knows
            known = [re.match(r"sm_(\d+)(\d)", a) for a in torch.cuda.get_arch_list()]
            newest = max((int(m.group(1)), int(m.group(2))) for m in known if m)
            caps = sorted({min(torch.cuda.get_device_capability(i), newest) for i in range(torch.cuda.device_count())})
            arches = ";".join("%d.%d" % c for c in caps) + "+PTX"
        else:
            arches = "8.0;9.0+PTX"
    arches = ";".join(a for a in arches.replace(" ", ";").split(";") if a)
    os.environ["TORCH_CUDA_ARCH_LIST"] = arches
    return arches


def nvcc_version():
    """(major, minor) of the toolkit's nvcc, or (0, 0) if it cannot be asked."""
    try:
        out = subprocess.run([os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"), "--version"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.search(r"release (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


SM90 = "-gencode=arch=compute_90,code=sm_90"
SM90A = "-gencode=arch=compute_90a,code=sm_90a"


def cuda_gencode_flags():
    """nvcc's -gencode flags for TORCH_CUDA_ARCH_LIST, as torch would pass them, except that the
    machine code for compute capability 9.0 is built as sm_90a, which the same GPUs run: its wgmma
    and setmaxnreg are what the Hopper GEMM (csrc/cuda/gemm_sm90.cu) needs. Replacing sm_90 rather
    than adding sm_90a keeps one machine-code compile per arch; PTX for newer GPUs stays
    compute_90. sm_90a needs CUDA 12.0 or newer; older toolkits keep sm_90."""
    flags = cpp_extension._get_cuda_arch_flags()
    if SM90 in flags and nvcc_version() >= (12, 0):
        flags = [SM90A if f == SM90 else f for f in flags]
    return sorted(set(flags))


def want_cuda():
    if os.environ.get("PYKERNELS_NO_CUDA", "0") == "1":
        return False
    if not torch.version.cuda or not sources("csrc/cuda/*.cu"):
        return False
    home = find_cuda_home()
    if home is None:
        print("pykernels: no CUDA toolkit found (set CUDA_HOME); building the CPU kernels only", file=sys.stderr)
        return False
    # cpp_extension guessed its CUDA_HOME at import time; use ours for nvcc, includes and libs.
    cpp_extension.CUDA_HOME = home
    os.environ["CUDA_HOME"] = home
    return True


def extension():
    cpu_sources = sources("csrc/*.cpp") + sources("csrc/common/*.cpp") + sources("csrc/cpu/*.cpp")
    # -fno-math-errno: sqrt need not set errno (torch never reads it); -fno-trapping-math: no
    # floating-point trap is ever enabled. Together they let the compiler vectorize sqrt and the
    # branch-free exp/log (cpu/vmath.h) instead of calling libm element by element.
    cxx = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-DPYKERNELS_TORCH_VERSION=\"%s\"" % torch.__version__]
    link = ["-fopenmp"]
    kwargs = dict(name="pykernels._C", include_dirs=[os.path.join(HERE, "csrc")], extra_link_args=link)
    if want_cuda():
        arches = cuda_arch_list()
        gencode = cuda_gencode_flags()
        # what each .cu file is compiled to: sm_XY machine code, compute_XY PTX
        targets = ";".join(re.search(r"code=(\w+)$", f).group(1) for f in gencode)
        print("pykernels: building CUDA kernels with %s for TORCH_CUDA_ARCH_LIST=%s (targets %s)"
              % (cpp_extension.CUDA_HOME, arches, targets), file=sys.stderr)
        cuda_sources = sources("csrc/cuda/*.cu")
        defines = ["-DPYKERNELS_WITH_CUDA"] + (["-DPYKERNELS_WITH_SM90A"] if SM90A in gencode else [])
        nvcc = ["-O3", "-lineinfo", "-std=c++20"] + defines + gencode  # torch adds no arch flags of its own then
        cxx += defines + ["-DPYKERNELS_CUDA_ARCHES=\"%s\"" % targets]
        return cpp_extension.CUDAExtension(
            sources=cpu_sources + cuda_sources, extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs
        )
    return cpp_extension.CppExtension(sources=cpu_sources, extra_compile_args={"cxx": cxx}, **kwargs)


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
