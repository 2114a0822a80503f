"""Build the pykernels extension against the torch that is already installed.

One extension, ``pykernels._C``: the schema table, the device-independent wrappers and the CPU
kernels always; the CUDA kernels too when torch is a CUDA build and a CUDA toolkit is found
(the decision never depends on a GPU being visible, so GPU-less build hosts compile them).
"""

import glob
import hashlib
import importlib.util
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


def _load_compat():
    """pykernels/_compat.py, loaded on its own: importing the package would load the extension
    that this script builds."""
    spec = importlib.util.spec_from_file_location("_pykernels_compat", os.path.join(HERE, "pykernels", "_compat.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compat = _load_compat()


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
        dry = subprocess.run(
            [nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
        )
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
            arches = ";".join(f"{c[0]}.{c[1]}" for c in caps) + "+PTX"
        else:
            arches = "8.0;9.0+PTX"
    arches = ";".join(a for a in arches.replace(" ", ";").split(";") if a)
    os.environ["TORCH_CUDA_ARCH_LIST"] = arches
    return arches


def nvcc_version():
    """(major, minor) of the toolkit's nvcc, or (0, 0) if it cannot be asked."""
    try:
        out = subprocess.run(
            [os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
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
    flags = compat.cuda_arch_flags()
    if SM90 in flags and nvcc_version() >= (12, 0):
        flags = [SM90A if f == SM90 else f for f in flags]
    return sorted(set(flags))


def nvcc_targets():
    """The virtual (compute_XY) and real (sm_XY) architectures the toolkit's nvcc can compile
    for, or None if it cannot list them."""
    targets = set()
    for option in ("--list-gpu-arch", "--list-gpu-code"):
        try:
            out = subprocess.run(
                [os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"), option],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return None
        targets.update(out.stdout.split())
    return targets


def unsupported_targets():
    """The targets of TORCH_CUDA_ARCH_LIST that this torch or this toolkit cannot compile for."""
    try:
        gencode = cuda_gencode_flags()
    except ValueError as e:  # torch knows no such architecture
        return [str(e)]
    known = nvcc_targets()
    if known is None:
        return []
    wanted = {t for f in gencode for t in re.findall(r"(?:compute|sm)_\d+", f)}  # sm_90a is listed as sm_90
    return sorted(wanted - known)


def cuda_absent_reason():
    """None when the CUDA kernels are to be built, else why not, in words. A reason the user may
    not expect (a toolkit that does not fit this torch) is also printed as a warning: the build
    goes on CPU-only rather than stopping on torch's own error."""
    if os.environ.get("PYKERNELS_NO_CUDA", "0") == "1":
        return "disabled with PYKERNELS_NO_CUDA=1 at build time"
    if not torch.version.cuda:
        return f"torch {torch.__version__} is a CPU-only build"
    if not sources("csrc/cuda/*.cu"):
        return "the CUDA sources were not found at build time"
    home = find_cuda_home()
    if home is None:
        print("pykernels: no CUDA toolkit found (set CUDA_HOME); building the CPU kernels only", file=sys.stderr)
        return "no CUDA toolkit was found at build time (set CUDA_HOME)"
    # cpp_extension guessed its CUDA_HOME at import time; use ours for nvcc, includes and libs.
    cpp_extension.CUDA_HOME = home
    os.environ["CUDA_HOME"] = home
    toolkit = nvcc_version()
    problem = None
    # torch refuses to build with a toolkit of another major version than its own.
    if toolkit[0] != int(torch.version.cuda.split(".")[0]):
        problem = (
            f"the CUDA toolkit at {home} is CUDA {toolkit[0]}.{toolkit[1]}, but torch {torch.__version__} was "
            f"built for CUDA {torch.version.cuda}"
        )
    else:
        arches = cuda_arch_list()
        unsupported = unsupported_targets()
        if unsupported:
            problem = (
                f"TORCH_CUDA_ARCH_LIST={arches} asks for {', '.join(unsupported)}, which the CUDA "
                f"{toolkit[0]}.{toolkit[1]} toolkit at {home} cannot target"
            )
    if problem:
        print(
            f"pykernels: WARNING: {problem}; building the CPU kernels only. For the CUDA kernels, build with a CUDA "
            "toolkit that matches (CUDA_HOME=...); to build CPU-only without this warning, set "
            "PYKERNELS_NO_CUDA=1.",
            file=sys.stderr,
        )
    return problem


def werror():
    """PYKERNELS_WERROR=1 (CI) makes every warning an error, so that a new warning fails there;
    other compilers warn about other things, so users' builds only warn."""
    return os.environ.get("PYKERNELS_WERROR", "0") == "1"


def warning_flags():
    """The host compiler's warnings."""
    return ["-Wall", "-Wextra"] + (["-Werror"] if werror() else [])


def system_include_flags(ext):
    """-isystem for every include directory but our own csrc/: torch hands its headers (and
    CUDA's) to the compiler with -I, which would report their warnings as ours. A directory named
    by both -I and -isystem is searched as a system directory."""
    ours = os.path.join(HERE, "csrc")
    return [f for d in ext.include_dirs if os.path.abspath(d) != ours for f in ("-isystem", d)]


def extension(cuda_absent):
    cpu_sources = sources("csrc/**/*.cpp")
    # -fno-math-errno: sqrt need not set errno (torch never reads it); -fno-trapping-math: no
    # floating-point trap is ever enabled. Together they let the compiler vectorize sqrt and the
    # branch-free exp/log (cpu/vmath.h) instead of calling libm element by element.
    cxx = [
        "-O3",
        "-fopenmp",
        "-fno-math-errno",
        "-fno-trapping-math",
        f'-DPYKERNELS_TORCH_VERSION="{torch.__version__}"',
    ]
    cxx += warning_flags()
    link = ["-fopenmp"]
    kwargs = dict(name="pykernels._C", include_dirs=[os.path.join(HERE, "csrc")], extra_link_args=link)
    if cuda_absent is None:
        arches = cuda_arch_list()
        gencode = cuda_gencode_flags()
        # what each .cu file is compiled to: sm_XY machine code, compute_XY PTX
        targets = ";".join(re.search(r"code=(\w+)$", f).group(1) for f in gencode)
        print(
            f"pykernels: building CUDA kernels with {cpp_extension.CUDA_HOME} for TORCH_CUDA_ARCH_LIST={arches} (targets {targets})",
            file=sys.stderr,
        )
        cuda_sources = sources("csrc/cuda/*.cu")
        defines = ["-DPYKERNELS_WITH_CUDA"] + (["-DPYKERNELS_WITH_SM90A"] if SM90A in gencode else [])
        # PYKERNELS_DEBUG=1: device-side checks that turn hangs into traps (the Hopper pipeline's waits)
        if os.environ.get("PYKERNELS_DEBUG", "0") == "1":
            defines.append("-DPYKERNELS_DEBUG")
        nvcc = ["-O3", "-lineinfo", "-std=c++20"] + defines + gencode  # torch adds no arch flags of its own then
        nvcc += ["-Xcompiler", ",".join(warning_flags())]
        if werror():  # nvcc's own warnings too: its front end's on device code, ptxas's
            nvcc += ["-Werror", "all-warnings"]
        cxx += defines + [f'-DPYKERNELS_CUDA_ARCHES="{targets}"']
        ext = cpp_extension.CUDAExtension(
            sources=cpu_sources + cuda_sources, extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs
        )
    else:
        ext = cpp_extension.CppExtension(sources=cpu_sources, extra_compile_args={"cxx": cxx}, **kwargs)
    for flags in ext.extra_compile_args.values():
        flags += system_include_flags(ext)
    return ext


def sources_digest():
    """SHA-256 over setup.py and every file under csrc/ (relative path and contents, in sorted
    order): which sources a build was made from. tools/gpu_check.sh computes the same digest to
    decide whether an extension brought along can be reused."""
    digest = hashlib.sha256()
    for rel in ["setup.py"] + sorted(sources("csrc/**/*")):
        if os.path.isfile(os.path.join(HERE, rel)):
            with open(os.path.join(HERE, rel), "rb") as f:
                digest.update(rel.replace(os.sep, "/").encode() + b"\0" + f.read())
    return digest.hexdigest()


class BuildExtension(cpp_extension.BuildExtension):
    """torch's build_ext, which also writes the build's facts into pykernels/_build_config.py next
    to the extension (in the source tree for an in-place or editable build, in the wheel
    otherwise): the torch it was built against, which `import pykernels` compares with the
    running torch before loading the extension, why the CUDA kernels are absent, for
    `python -m pykernels info`, and which sources it was built from."""

    def run(self):
        super().run()
        path = os.path.join(os.path.dirname(self.get_ext_fullpath("pykernels._C")), "_build_config.py")
        with open(path, "w") as f:
            f.write("# Written by setup.py when it built the extension next to this file.\n")
            f.write(f"TORCH_VERSION = {torch.__version__!r}\n")
            f.write(f"CUDA_ABSENT_REASON = {CUDA_ABSENT!r}\n")
            f.write(f"SOURCES_SHA256 = {sources_digest()!r}\n")


CUDA_ABSENT = cuda_absent_reason()
setup(
    ext_modules=[extension(CUDA_ABSENT)],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
