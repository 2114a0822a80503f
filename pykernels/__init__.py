"""pykernels: hand-written CPU and CUDA kernels for PyTorch, as drop-in functions.

``import pykernels`` loads the compiled extension (which registers ``torch.ops.pykernels.*``),
the fake kernels and the autograd formulas, and exposes functions named and called like
torch's: ``pykernels.mm(a, b)`` where you wrote ``torch.mm(a, b)``. ``pykernels.nn`` has the
matching modules, and ``with pykernels.enable():`` routes unmodified torch code to pykernels.
"""

import torch  # noqa: F401  (the extension links against torch's libraries)

from . import _build  # noqa: F401  first: it raises ImportError if _C was built against another torch
from . import _C
from . import fake as _fake  # noqa: F401
from . import _api
from ._api import *  # noqa: F403  the public functions, one per entry of the op table
from . import dropin, nn  # noqa: F401
from .dropin import enable as enable
from .__version__ import __version__


def build_info():
    """What this build contains: pykernels and torch versions, backends, CPU SIMD level, CUDA targets
    and whether the Hopper (sm_90a) GEMM is compiled in."""
    info = dict(_C.build_info())
    info["version"] = __version__
    info["cuda_arches"] = [a for a in info.get("cuda_arches", "").split(";") if a]
    return info


__all__ = sorted(_api.__all__ + ["build_info", "enable"])
