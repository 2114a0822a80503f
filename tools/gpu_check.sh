#!/bin/sh
# Everything about the CUDA kernels that only a GPU can tell, in one run from the repository
# root of a machine with a CUDA GPU and torch installed:
#
#   build      pip install --no-build-isolation --no-deps -e .  (for the visible GPU's arch)
#   tests      the CUDA tests, then the whole suite (which includes them, on every device)
#   memcheck   compute-sanitizer memcheck over the CUDA tests (out-of-bounds, misaligned access)
#   racecheck  compute-sanitizer racecheck over the GEMM tests (shared-memory races)
#   bench      the benchmark harness on CUDA: results/cuda-<gpu>.md and .json
#
# Usage: tools/gpu_check.sh [stage ...]   (default: all, in that order)
# Logs and results go to $OUT (default ./gpu-check); each stage's exit status is in summary.txt.
# Every stage runs under `timeout` ($STAGE_TIMEOUT seconds, default 540), so one stuck stage
# cannot eat the machine's whole time.
set -u
OUT=${OUT:-gpu-check}
PY=${PYTHON:-python}
LIMIT=${STAGE_TIMEOUT:-540}
mkdir -p "$OUT"
STAGES=${*:-build tests memcheck racecheck bench}

stage() {  # stage NAME COMMAND...: runs COMMAND, logs to $OUT/NAME.log, records the status
  name=$1
  shift
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  start=$(date +%s)
  timeout "$LIMIT" "$@" > "$OUT/$name.log" 2>&1
  status=$?
  echo "   exit $status after $(($(date +%s) - start)) s" | tee -a "$OUT/summary.txt"
  tail -3 "$OUT/$name.log" | sed 's/^/   /' | tee -a "$OUT/summary.txt"
}

for s in $STAGES; do
  case $s in
    build)
      stage build "$PY" -m pip install --no-build-isolation --no-deps -e .
      stage info "$PY" -m pykernels info ;;
    tests)
      stage test_cuda "$PY" -m pytest -q -x tests/test_cuda.py
      stage test_all "$PY" -m pytest -q tests ;;
    memcheck)
      stage memcheck compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
        "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda.py -k "not graph" ;;
    racecheck)
      stage racecheck compute-sanitizer --tool racecheck --error-exitcode 99 --print-limit 20 \
        "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda.py -k "mm or bmm or matmul" ;;
    bench)
      stage bench "$PY" -m pykernels bench --device cuda --out "$OUT/results" ;;
    *)
      echo "unknown stage: $s (build tests memcheck racecheck bench)" >&2
      exit 2 ;;
  esac
done
