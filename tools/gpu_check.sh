#!/bin/sh
# A first run of pykernels' CUDA kernels on a GPU, sized for ten minutes of device time. From the
# repository root of a machine with a CUDA GPU and torch installed:
#
#   stage      timeout  what
#   build        180 s  python setup.py build_ext --inplace (debug build: hangs become traps), unless the
#                       extension here was built against this torch and Python, which is then reused (to
#                       bring one along, copy pykernels/_C*.so, after strip --strip-debug, and
#                       pykernels/_build_config.py)
#   hopper        30 s  the Hopper GEMM: float16/bfloat16, each operand layout, float64 reference
#   edges         30 s  the mma.sync and SIMT GEMMs on shapes with partial tiles, and which kernel ran
#   tests        120 s  tests/test_cuda.py without the Hopper subprocess tests (the hopper stage's job)
#   memcheck      45 s  compute-sanitizer memcheck over every kernel once (tools/gpu_smoke.py cover)
#   racecheck     30 s  compute-sanitizer racecheck over the GEMM tiles and a split reduction
#   bench         50 s  the CUDA benchmarks (default suite, shorter timing runs), into $OUT/bench
#
# At most 485 s in all (and 30 s for `pykernels info` after the build), 305 s when the build is reused. Stages run in this order, each under its own
# `timeout`, printing as they go; a failed stage does not stop the next, and the script exits 1 if
# any failed. Logs go to $OUT (default ./gpu-check): STAGE.log per stage and summary.txt with each
# stage's exit status and time.
#
# Usage: tools/gpu_check.sh [--dry-run] [stage ...]   (default: every stage, in the order above)
# --dry-run, or no visible GPU, prints each stage's command and timeout and runs only what needs no GPU:
# the build-reuse decision and the smoke case lists.
set -u
OUT=${OUT:-gpu-check}
PY=${PYTHON:-python}
DRY=0
if [ "${1:-}" = "--dry-run" ]; then
  DRY=1
  shift
fi
STAGES=${*:-build hopper edges tests memcheck racecheck bench}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
START=$(date +%s)

say() { echo "$*" | tee -a "$SUMMARY"; }

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
  [ $DRY = 1 ] || say "no CUDA GPU visible: GPU stages are listed, not run"
  DRY=1
fi

# stage NAME SECONDS COMMAND...: runs COMMAND under `timeout SECONDS`, logs to $OUT/NAME.log.
stage() {
  name=$1
  limit=$2
  shift 2
  say "== $name (timeout ${limit} s): $*"
  if [ $DRY = 1 ]; then
    say "   not run"
    return 0
  fi
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  status=$?
  case $status in
    0) verdict=ok ;;
    124 | 137) verdict="TIMED OUT" ;;
    *) verdict=FAILED ;;
  esac
  [ $status = 0 ] || FAILED_STAGES="$FAILED_STAGES $name"
  say "   $verdict: exit $status after $(($(date +%s) - t0)) s (total $(($(date +%s) - START)) s)"
  tail -5 "$OUT/$name.log" | sed 's/^/   | /' | tee -a "$SUMMARY"
}

# Whether pykernels/ holds an extension built from these sources against the torch and Python that run
# here, with CUDA kernels: then it is reused (a carried build). Reads the build's record; imports nothing
# of it.
build_matches() {
  "$PY" - << 'EOF'
import glob, hashlib, os, runpy, sys, sysconfig
import torch
so = os.path.join("pykernels", "_C" + sysconfig.get_config_var("EXT_SUFFIX"))
cfg = os.path.join("pykernels", "_build_config.py")
if not (os.path.exists(so) and os.path.exists(cfg)):
    sys.exit("no extension built for this Python (%s) in pykernels/" % os.path.basename(so))
built = runpy.run_path(cfg)
if built["TORCH_VERSION"] != torch.__version__:
    sys.exit("the extension was built against torch %s, this is torch %s" % (built["TORCH_VERSION"], torch.__version__))
# the digest setup.py records (sources_digest there): the build must come from these very sources
digest = hashlib.sha256()
files = ["setup.py"] + sorted(os.path.relpath(p) for p in glob.glob("csrc/**/*", recursive=True))
for rel in files:
    if os.path.isfile(rel):
        with open(rel, "rb") as f:
            digest.update(rel.replace(os.sep, "/").encode() + b"\0" + f.read())
if built.get("SOURCES_SHA256") != digest.hexdigest():
    sys.exit("the extension was built from other sources than these (or did not record them)")
if built["CUDA_ABSENT_REASON"]:
    sys.exit("the extension has no CUDA kernels: %s" % built["CUDA_ABSENT_REASON"])
print("the extension was built from these sources against torch %s for this Python: reusing it"
      % torch.__version__)
EOF
}

# A dry run builds the smoke groups' case lists (which needs no GPU), to show they are sound.
LIST_FAILED=0
FAILED_STAGES=
if [ $DRY = 1 ]; then
  if cases=$("$PY" tools/gpu_smoke.py --list hopper edges cover race 2>&1); then
    for g in hopper edges cover race; do
      say "tools/gpu_smoke.py $g: $(echo "$cases" | grep -c "^$g: ") cases"
    done
  else
    say "FAILED to list the cases of tools/gpu_smoke.py: $cases"
    LIST_FAILED=1
  fi
fi

for s in $STAGES; do
  case $s in
    build)
      if reason=$(build_matches 2>&1); then
        say "== build: $reason"
      else
        say "== build needed: $reason"
        # the visible GPU's architecture only (setup.py's default with a GPU visible)
        stage build 180 env PYKERNELS_DEBUG=1 MAX_JOBS="$(nproc)" "$PY" setup.py build_ext --inplace
      fi
      [ $DRY = 1 ] || timeout 30 "$PY" -m pykernels info 2>&1 | tee -a "$SUMMARY" ;;
    hopper)
      stage hopper 30 "$PY" tools/gpu_smoke.py hopper ;;
    edges)
      stage edges 30 "$PY" tools/gpu_smoke.py edges ;;
    tests)
      stage tests 120 "$PY" -m pytest -q -rfE --maxfail=25 -p no:cacheprovider tests/test_cuda.py -k "not sm90" ;;
    memcheck)
      stage memcheck 45 compute-sanitizer --tool memcheck --target-processes application-only --error-exitcode 99 \
        --print-limit 20 "$PY" tools/gpu_smoke.py cover ;;
    racecheck)
      stage racecheck 30 compute-sanitizer --tool racecheck --target-processes application-only --error-exitcode 99 \
        --print-limit 20 "$PY" tools/gpu_smoke.py race ;;
    bench)
      stage bench 50 "$PY" -m pykernels bench --device cuda --min-run-time 0.25 --out "$OUT/bench" ;;
    *)
      echo "unknown stage: $s (build hopper edges tests memcheck racecheck bench)" >&2
      exit 2 ;;
  esac
done
say "done after $(($(date +%s) - START)) s${FAILED_STAGES:+; failed or timed out:$FAILED_STAGES}"
[ -z "$FAILED_STAGES" ] && [ $LIST_FAILED = 0 ]
