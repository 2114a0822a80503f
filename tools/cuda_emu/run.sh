#!/bin/sh
# Builds the CPU emulator tests for the CUDA kernels and runs them (optionally only some suites:
# elementwise reduce mse_loss gemm linear mlp optim). Needs the CUDA toolkit headers (not a GPU) and torch.
# SANITIZE=1 builds with AddressSanitizer, to catch reads and writes outside the tensors.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python}
TORCH=$($PYTHON -c "import os, torch; print(os.path.dirname(torch.__file__))")
# The wrappers' torch headers include pybind11, whose inline functions name Python's C API: hence
# Python's headers, and libpython to link.
PYINC=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['include'])")
PYLIB=$($PYTHON -c "import sysconfig as s; v = s.get_config_var; print('-L%s -Wl,-rpath,%s -lpython%s %s %s' % (
  v('LIBDIR'), v('LIBDIR'), v('LDVERSION'), v('LIBS') or '', v('SYSLIBS') or ''))")
CUDA=${CUDA_HOME:-${CUDA_PATH:-}}
if [ -z "$CUDA" ]; then  # ask nvcc where it lives (it may be a wrapper script)
  CUDA=$(nvcc --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's|^#\$ _HERE_=\(.*\)/bin$|\1|p' | head -1)
fi
OUT=${OUT:-$ROOT/build/cuda_emu}
EXTRA=""
if [ "${SANITIZE:-0}" = 1 ]; then
  OUT=$OUT-asan
  EXTRA="-fsanitize=address -fno-omit-frame-pointer"
fi
mkdir -p "$OUT"
FLAGS="$EXTRA -std=c++20 -O1 -g -fPIC -Wno-attributes -DPYKERNELS_WITH_CUDA -I$ROOT/csrc -I$HERE \
  -I$TORCH/include -I$TORCH/include/torch/csrc/api/include -I$PYINC -I$CUDA/include"
cat > "$OUT/Makefile" <<MK
OBJS = main.o emu_elementwise.o emu_reduce.o emu_mse_loss.o emu_gemm.o emu_linear.o emu_mlp.o emu_optim.o strided.o checks.o
emu_tests: \$(OBJS)
	g++ $EXTRA -o \$@ \$(OBJS) -L$TORCH/lib -Wl,-rpath,$TORCH/lib -ltorch -ltorch_cpu -lc10 $PYLIB
%.o: $HERE/%.cpp $HERE/emu.h $HERE/check.h \$(wildcard $ROOT/csrc/cuda/*) \$(wildcard $ROOT/csrc/*.cpp) $ROOT/csrc/kernels.h \$(wildcard $ROOT/csrc/common/*.h)
	g++ $FLAGS -c \$< -o \$@
%.o: $ROOT/csrc/common/%.cpp
	g++ $FLAGS -c \$< -o \$@
MK
make -C "$OUT" -j"${JOBS:-2}" emu_tests
exec "$OUT/emu_tests" "$@"
