"""What the compiled extension was built with, known without loading it.

setup.py writes ``_build_config.py`` next to the extension when it builds it. The extension links
against the torch it was compiled with, and torch keeps no binary compatibility between
releases: loaded into another torch it fails on an undefined symbol, or worse. Importing this
module (``import pykernels`` does, before loading the extension) compares the versions and
says what to do.
"""

import torch

try:
    from . import _build_config
except ImportError:  # not built by setup.py (or built before it recorded anything): nothing to compare
    _build_config = None

REBUILD = "pip install --no-build-isolation --no-deps --force-reinstall ."


def torch_version():
    """The torch version the extension was built against, or None if the build did not record it."""
    return getattr(_build_config, "TORCH_VERSION", None)


def cuda_absent_reason():
    """Why the build has no CUDA kernels ("torch 2.14.1+cpu is a CPU-only build"), or None."""
    return getattr(_build_config, "CUDA_ABSENT_REASON", None)


def check_torch_version():
    """Raises ImportError when the extension was built against another torch than the running one."""
    built, running = torch_version(), torch.__version__
    if built is not None and built != running:
        raise ImportError(
            f"pykernels was built against torch {built}, but torch {running} is installed, and its compiled "
            f"extension only loads into the torch it was built against. Rebuild pykernels against this torch: "
            f"`{REBUILD}` in the pykernels source directory (add -e for an editable install, or run "
            f"`python setup.py build_ext --inplace` for an in-place build)."
        )


check_torch_version()
