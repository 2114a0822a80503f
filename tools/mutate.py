"""Mutation check of the test suite: does a deliberate one-line bug in a kernel make a test fail?

Each mutant below is an exact snippet of a kernel source and a replacement that plants a bug of a
kind the suite exists to catch: a reduction that drops its last element, an edge tile one row or
column short, floor division rounding toward zero, swapped strides, a SIMD loop that skips its
scalar tail, a wrong scale or sign. For each mutant the script patches the source, rebuilds,
runs the tests chosen for it, and restores the source. A mutant is

  killed     the tests failed (or crashed, or hung past the timeout): the suite saw the bug;
  survived   the tests passed with the bug in: a hole in the suite;
  not run    it could not be run here, with the reason (e.g. the CUDA emulator does not build).

CPU mutants rebuild the extension in place (setup.py build_ext --inplace, without CUDA) and run
pytest -x on their selection. CUDA mutants run the CPU emulator of the CUDA kernels
(tools/cuda_emu/run.sh, which compiles csrc/cuda/*.cu for the CPU and compares them with torch),
on the emulator suites that drive the mutated kernel.

  python tools/mutate.py --list                 the mutants
  python tools/mutate.py --check                every snippet still matches its source exactly once
  python tools/mutate.py --kind cpu --report docs/mutation-report.md
  python tools/mutate.py --only cpu-reduce-drop-last --only cuda-sum-drop-last

Sources are restored after every mutant, also on Ctrl-C or SIGTERM, and the extension is rebuilt
from the restored sources at the end, so the in-place build matches the tree again. Exit status:
0 when no mutant survived (and none failed to build), 1 otherwise, 2 for a usage or drift error.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    id: str
    kind: str  # "cpu" or "cuda"
    path: str  # relative to the repository root
    original: str  # must occur exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest arguments (cpu) or emulator suites (cuda)
    description: str


def _cpu(id, path, original, replacement, tests, description):
    return Mutant(id, "cpu", path, original, replacement, tuple(tests), description)


def _cuda(id, path, original, replacement, suites, description):
    return Mutant(id, "cuda", path, original, replacement, tuple(suites), description)


# Grouped by file: a rebuild then recompiles the restored file and the next mutated one only
# once per group, not per mutant (cpu/elementwise.cpp alone takes minutes to compile).
MUTANTS = [
    # ---- csrc/cpu/reduce.cpp
    _cpu(
        "cpu-reduce-drop-last",
        "csrc/cpu/reduce.cpp",
        "  double s = 0;\n  for (; i < n; ++i) s += static_cast<double>(x[i]);\n  return s + cpu::sum_lanes<V>(acc);",
        "  double s = 0;\n  for (; i + 1 < n; ++i) s += static_cast<double>(x[i]);\n"
        "  return s + cpu::sum_lanes<V>(acc);",
        ["tests/test_reduce.py"],
        "a long contiguous float/double sum drops the last element of its scalar tail",
    ),
    _cpu(
        "cpu-reduce-short-tail",
        "csrc/cpu/reduce.cpp",
        "  double s = 0;\n  for (; i < n; ++i) s += static_cast<double>(x[i]);\n  return s + cpu::sum_lanes<2>(acc);",
        "  double s = 0;\n  return s + cpu::sum_lanes<2>(acc);",
        ["tests/test_reduce.py"],
        "a short contiguous sum skips the scalar tail after its 8-wide vector loop",
    ),
    _cpu(
        "cpu-reduce-strided-drop-last",
        "csrc/cpu/reduce.cpp",
        "for (int64_t i = 0; i < n; ++i) s += static_cast<acc_t>(x[i * stride]);",
        "for (int64_t i = 0; i + 1 < n; ++i) s += static_cast<acc_t>(x[i * stride]);",
        ["tests/test_reduce.py"],
        "a strided sum drops its last element",
    ),
    _cpu(
        "cpu-reduce-outer-edge-tile",
        "csrc/cpu/reduce.cpp",
        "const int64_t tile = std::min(kTile, n - t0);",
        "const int64_t tile = std::min(kTile, n - t0 - 1);",
        ["tests/test_reduce.py"],
        "the outer reduction's last tile of outputs is one output short",
    ),
    _cpu(
        "cpu-mean-divisor",
        "csrc/cpu/reduce.cpp",
        "if (mean) return static_cast<T>(s / static_cast<acc_t>(nred));",
        "if (mean) return static_cast<T>(s / static_cast<acc_t>(nred - 1));",
        ["tests/test_reduce.py", "-k", "mean"],
        "mean divides by n - 1",
    ),
    # ---- csrc/cpu/mse_loss.cpp
    _cpu(
        "cpu-mse-drop-last",
        "csrc/cpu/mse_loss.cpp",
        "  for (; i < n; ++i) {\n    const T d = x[i] - y[i];",
        "  for (; i + 1 < n; ++i) {\n    const T d = x[i] - y[i];",
        ["tests/test_relu_mse.py", "-k", "mse"],
        "the contiguous float/double mse_loss sum drops the last element of its tail",
    ),
    _cpu(
        "cpu-mse-backward-scale",
        "csrc/cpu/mse_loss.cpp",
        "const opmath_t s = static_cast<opmath_t>(scale);",
        "const opmath_t s = static_cast<opmath_t>(scale / 2);",
        ["tests/test_relu_mse.py", "-k", "mse"],
        "mse_loss's backward kernel halves the gradient's scale",
    ),
    # ---- csrc/common/strided.cpp
    _cpu(
        "cpu-iter-swapped-strides",
        "csrc/common/strided.cpp",
        "for (int k = 0; k < N; ++k) it.strides[k][nd] = ops[k].stride(d);",
        "for (int k = 0; k < N; ++k) it.strides[k][nd] = ops[N - 1 - k].stride(d);",
        ["tests/test_elementwise.py", "-k", "layouts"],
        "the elementwise iterator gives each operand another operand's strides",
    ),
    # ---- csrc/cpu/gemm_blocked.h
    _cpu(
        "cpu-gemm-edge-row",
        "csrc/cpu/gemm_blocked.h",
        "const int64_t mr = std::min<int64_t>(MR, mc - ir);",
        "const int64_t mr = std::min<int64_t>(MR, mc - ir - 1);",
        ["tests/test_gemm_kernels.py"],
        "the blocked GEMM's last row tile is one row short",
    ),
    _cpu(
        "cpu-gemm-edge-col",
        "csrc/cpu/gemm_blocked.h",
        "const int64_t nr = std::min<int64_t>(NR, nc - jr);",
        "const int64_t nr = std::min<int64_t>(NR, nc - jr - 1);",
        ["tests/test_gemm_kernels.py"],
        "the blocked GEMM's last column sliver is one column short",
    ),
    _cpu(
        "cpu-gemm-pack-b-swapped-strides",
        "csrc/cpu/gemm_blocked.h",
        "for (int64_t c = 0; c < cols; ++c) dst[k * NR + c] = src[k * rs + c * cs];",
        "for (int64_t c = 0; c < cols; ++c) dst[k * NR + c] = src[k * cs + c * rs];",
        ["tests/test_gemm_kernels.py"],
        "packing a partial or strided sliver of B swaps B's row and column strides",
    ),
    _cpu(
        "cpu-gemm-pack-a-swapped-strides",
        "csrc/cpu/gemm_blocked.h",
        "for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * rs + k * cs];",
        "for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * cs + k * rs];",
        ["tests/test_gemm_kernels.py"],
        "packing a whole sliver of an A strided both ways swaps A's row and column strides",
    ),
    # ---- csrc/cpu/gemm_simd_tile.h
    _cpu(
        "cpu-gemm-dot-tail",
        "csrc/cpu/gemm_simd_tile.h",
        "  if (p < k) step([p, k](const T* run) { return V::load_first(run + p, k - p); });",
        "  // tail skipped",
        ["tests/test_gemm_kernels.py"],
        "the dot-product tile skips the last k % lanes products of each dot (SIMD tail)",
    ),
    # ---- csrc/cpu/gemm_portable.cpp
    _cpu(
        "cpu-gemm-generic-edge-tile",
        "csrc/cpu/gemm_portable.cpp",
        "    case 3:\n      return generic_tile<T, 3, MR, NR, false>",
        "    case 3:\n      return generic_tile<T, 2, MR, NR, false>",
        ["tests/test_gemm_kernels.py"],
        "the portable microkernel computes a 3-row edge tile as 2 rows",
    ),
    # ---- csrc/cpu/gemm_wide.cpp
    _cpu(
        "cpu-gemm-wide-swapped-strides",
        "csrc/cpu/gemm_wide.cpp",
        "dst[r] = static_cast<acc_t>(a[(i + r) * rs + k * cs]);",
        "dst[r] = static_cast<acc_t>(a[(i + r) * cs + k * rs]);",
        ["tests/test_gemm_kernels.py", "tests/test_gemm.py"],
        "the widening (float16/bfloat16/integer) GEMM packs A with its strides swapped",
    ),
    # ---- csrc/cpu/loops.h (a header: rebuilds every elementwise and reduction kernel)
    _cpu(
        "cpu-loop-broadcast-swapped",
        "csrc/cpu/loops.h",
        "for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);",
        "for (int64_t i = 0; i < n; ++i) out[i] = f(b[i], av);",
        ["tests/test_elementwise.py", "-k", "binary"],
        "the broadcast-scalar-first loop swaps the operands",
    ),
    # ---- csrc/cpu/elementwise.cpp
    _cpu(
        "cpu-div-floor-as-trunc",
        "csrc/cpu/elementwise.cpp",
        "if (floor) return run([](opmath_t x, opmath_t y) { return div_floor_float(x, y); });",
        "if (floor) return run([](opmath_t x, opmath_t y) { return std::trunc(x / y); });",
        ["tests/test_elementwise.py", "-k", "div"],
        "floating floor division rounds toward zero",
    ),
    _cpu(
        "cpu-div-int-floor-wrong-sign",
        "csrc/cpu/elementwise.cpp",
        "if (floor && (a % b != 0) && ((a < 0) != (b < 0))) --q;",
        "if (floor && (a % b != 0) && ((a < 0) == (b < 0))) --q;",
        ["tests/test_elementwise.py", "-k", "div"],
        "integer floor division corrects the quotients of the wrong sign",
    ),
    _cpu(
        "cpu-sub-alpha-sign",
        "csrc/cpu/elementwise.cpp",
        "return run([alpha](opmath_t x, opmath_t y) { return x - alpha * y; });",
        "return run([alpha](opmath_t x, opmath_t y) { return x + alpha * y; });",
        ["tests/test_elementwise.py", "-k", "sub"],
        "sub with alpha != 1 adds alpha * other",
    ),
    _cpu(
        "cpu-pow-rsqrt",
        "csrc/cpu/elementwise.cpp",
        "if (kSqrtShortcuts && e == opmath_t(-0.5)) return run([](opmath_t x) { return opmath_t(1) / std::sqrt(x); });",
        "if (kSqrtShortcuts && e == opmath_t(-0.5)) return run([](opmath_t x) { return std::sqrt(x); });",
        ["tests/test_elementwise.py", "-k", "pow"],
        "pow's special case for exponent -0.5 computes sqrt",
    ),
    _cpu(
        "cpu-relu-mask-nan-bit",
        "csrc/cpu/elementwise.cpp",
        "return static_cast<uint8_t>(!(v <= T(0)));",
        "return static_cast<uint8_t>(v > T(0));",
        ["tests/test_relu_mse.py", "-k", "relu"],
        "the portable ReLU mask clears the bit of NaN elements, so their gradient is dropped",
    ),
    _cpu(
        "cpu-relu-mask-tail",
        "csrc/cpu/elementwise.cpp",
        "  for (; i < n; ++i) one(i);\n}",
        "  // tail skipped\n}",
        ["tests/test_relu_mse.py", "-k", "relu"],
        "ReLU with a bit mask skips the elements after a run's last whole mask byte",
    ),
    # ---- csrc/cpu/optimizer.cpp
    _cpu(
        "cpu-optim-strided-run",
        "csrc/cpu/optimizer.cpp",
        "optim::adam_element<T, kDecay, kAmsgrad, kFma>(s, param[i * sp], grad[i * sg], exp_avg[i * sm],",
        "optim::adam_element<T, kDecay, kAmsgrad, kFma>(s, param[i * sp], grad[i * sp], exp_avg[i * sm],",
        ["tests/test_optim.py", "-k", "Adam and for-loop"],
        "Adam's strided runs read the gradient with the param's strides",
    ),
    _cpu(
        "cpu-optim-piece-short",
        "csrc/cpu/optimizer.cpp",
        "ranges.push_back({i, begin, std::min(n, begin + kGrainSize)});",
        "ranges.push_back({i, begin, std::min(n - 1, begin + kGrainSize)});",
        ["tests/test_optim.py", "-k", "SGD and for-loop and float32"],
        "the last piece of every parameter is one element short",
    ),
    # ---- CUDA kernels, through the emulator
    _cuda(
        "cuda-optim-chunk-short",
        "csrc/cuda/optimizer.cu",
        "end = begin + kChunk < list.numel[t] ? begin + kChunk : list.numel[t];",
        "end = begin + kChunk < list.numel[t] ? begin + kChunk - 1 : list.numel[t];",
        ["optim"],
        "every chunk of an optimizer step but a parameter's last stops one element short",
    ),
    _cuda(
        "cuda-optim-straddle",
        "csrc/cuda/optimizer.cu",
        "        if (!last_chunk) fill(list, 0, p);",
        "",
        ["optim"],
        "a parameter that straddles two launches goes on in a slot the next launch does not fill",
    ),
    _cuda(
        "cuda-sum-drop-last",
        "csrc/cuda/reduce.cu",
        "for (; r < r_end; r += nrl) acc += static_cast<acc_t>(base[r * rs]);",
        "for (; r + 1 < r_end; r += nrl) acc += static_cast<acc_t>(base[r * rs]);",
        ["reduce"],
        "each block's share of a reduction drops its last element",
    ),
    _cuda(
        "cuda-sum-splits-drop-last",
        "csrc/cuda/reduce.cu",
        "for (int s = lane; s < splits; s += 32) acc += partial[s * kept.numel + o];",
        "for (int s = lane; s + 1 < splits; s += 32) acc += partial[s * kept.numel + o];",
        ["reduce"],
        "a reduction split across blocks drops the last block's partial sum",
    ),
    _cuda(
        "cuda-mean-divisor",
        "csrc/cuda/reduce.cu",
        "if (mean) return static_cast<T>(s / static_cast<acc_t>(nred));",
        "if (mean) return static_cast<T>(s / static_cast<acc_t>(nred - 1));",
        ["reduce"],
        "mean divides by n - 1",
    ),
    _cuda(
        "cuda-mse-drop-last-partial",
        "csrc/cuda/mse_loss.cu",
        "for (int i = threadIdx.x; i < count; i += kThreads) acc += partial[i];",
        "for (int i = threadIdx.x; i + 1 < count; i += kThreads) acc += partial[i];",
        ["mse_loss"],
        "mse_loss's final pass drops the last block's partial sum",
    ),
    _cuda(
        "cuda-elementwise-skipped-tail",
        "csrc/cuda/loops.cuh",
        "for (int64_t i = nvec * V + tid; i < n; i += step) {",
        "for (int64_t i = nvec * V + tid; i < nvec * V; i += step) {",
        ["elementwise", "mse_loss"],
        "the vectorized contiguous kernel skips the n % V elements after its 16-byte vectors",
    ),
    _cuda(
        "cuda-div-floor-as-trunc",
        "csrc/cuda/elementwise.cu",
        "return static_cast<T>(c10::div_floor_floating(x, y));",
        "return static_cast<T>(::trunc(x / y));",
        ["elementwise"],
        "floating floor division rounds toward zero",
    ),
    _cuda(
        "cuda-div-int-floor-wrong-sign",
        "csrc/cuda/elementwise.cu",
        "if (op == BinaryOp::DivFloor && (a % b != 0) && ((a < 0) != (b < 0)))",
        "if (op == BinaryOp::DivFloor && (a % b != 0) && ((a < 0) == (b < 0)))",
        ["elementwise"],
        "integer floor division corrects the quotients of the wrong sign",
    ),
    _cuda(
        "cuda-sub-alpha-sign",
        "csrc/cuda/elementwise.cu",
        "return static_cast<T>(x - alpha * y);",
        "return static_cast<T>(x + alpha * y);",
        ["elementwise"],
        "floating sub with alpha adds alpha * other",
    ),
    _cuda(
        "cuda-pow-rsqrt",
        "csrc/cuda/elementwise.cu",
        "return static_cast<T>(::rsqrt(x));",
        "return static_cast<T>(::sqrt(x));",
        ["elementwise"],
        "pow's special case for exponent -0.5 computes sqrt",
    ),
    _cuda(
        "cuda-gemm-simt-edge-row",
        "csrc/cuda/gemm_kernels.cuh",
        "      const int64_t row = m0 + (i / 4) * RSPAN + ty * 4 + i % 4;\n      if (row >= g.m) continue;",
        "      const int64_t row = m0 + (i / 4) * RSPAN + ty * 4 + i % 4;\n      if (row + 1 >= g.m) continue;",
        ["gemm"],
        "the SIMT GEMM never stores the last row of C",
    ),
    _cuda(
        "cuda-gemm-simt-load-count",
        "csrc/cuda/gemm_kernels.cuh",
        "gk = k0 + c / (BM / 4), gm = m0 + (c % (BM / 4)) * 4;\n          count = gk < g.k ? g.m - gm : 0,",
        "gk = k0 + c / (BM / 4), gm = m0 + (c % (BM / 4)) * 4;\n          count = gk < g.k ? g.m - gm - 1 : 0,",
        ["gemm"],
        "the SIMT GEMM's edge tile loads one row of an m-major A too few",
    ),
    _cuda(
        "cuda-gemm-mma-swapped-stride",
        "csrc/cuda/gemm_kernels.cuh",
        "gk = k0 + row, gn = n0 + col, count = gk < g.k ? g.n - gn : 0, stride = g.b_cs;",
        "gk = k0 + row, gn = n0 + col, count = gk < g.k ? g.n - gn : 0, stride = g.b_rs;",
        ["gemm"],
        "the tensor-core GEMM's unaligned loads of a row-major B step by its row stride",
    ),
    # The store of an edge tile's last column when n is odd. (Mutating the second store next to
    # it, col + 1 < n to col + 2 < n, gives an equivalent mutant: col is even, so the two differ
    # only for an even n, which always takes the paired store above, C being allocated contiguous.)
    _cuda(
        "cuda-gemm-mma-edge-col",
        "csrc/cuda/gemm_kernels.cuh",
        "if (col < g.n) cp[0] = result(a0, col);",
        "if (col + 1 < g.n) cp[0] = result(a0, col);",
        ["gemm"],
        "the tensor-core GEMM's edge tile drops the last column of C when n is odd",
    ),
    _cuda(
        "cuda-linear-mask-zero-passes",
        "csrc/cuda/gemm_kernels.cuh",
        "if (bits_to_float<T>(static_cast<uint16_t>(mw[j])) <= 0.f)",
        "if (bits_to_float<T>(static_cast<uint16_t>(mw[j])) < 0.f)",
        ["linear"],
        "the tensor-core linear backward passes the gradient where the ReLU output is 0",
    ),
    _cuda(
        "cuda-mlp-hidden-grad-unrounded",
        "csrc/cuda/mlp.cu",
        "acc[r][c] = live ? round_to<T>(acc[r][c]) : acc_t(0);",
        "acc[r][c] = live ? acc[r][c] : acc_t(0);",
        ["mlp"],
        "the fused MLP backward keeps g_h unrounded for float16/bfloat16, unlike the unfused layers",
    ),
]


@dataclass
class Result:
    mutant: Mutant
    status: str  # killed | survived | not run | build failed | error
    detail: str = ""  # the test or emulator check that failed, or why it did not run
    seconds: float = 0.0
    log: str = field(default="", repr=False)


class SourceDrift(Exception):
    pass


def check_snippet(m: Mutant) -> str:
    """The file's text, after checking the mutant's snippet occurs in it exactly once."""
    text = (ROOT / m.path).read_text()
    count = text.count(m.original)
    if count != 1:
        raise SourceDrift(f"{m.id}: the snippet occurs {count} times in {m.path}, not once; update the table")
    if m.original == m.replacement:
        raise SourceDrift(f"{m.id}: the replacement equals the original")
    return text


def emu_objects(m: Mutant):
    """The emulator's object files built from the mutated source: one per suite (emu_<suite>.o
    includes cuda/<suite>.cu and the headers it uses)."""
    out = Path(os.environ.get("OUT", ROOT / "build" / "cuda_emu"))
    return [out / f"emu_{suite}.o" for suite in m.tests]


class Patched:
    """Applies a mutant for the duration of a with-block; the original bytes are always written back.

    A CUDA mutant keeps its file's modification time and deletes the emulator objects of its
    suites instead, before and after: the emulator's Makefile makes every object depend on every
    csrc/cuda file, so a new time would recompile all four suites (several minutes each) where
    one is affected. The objects built from the mutant are deleted again on restore."""

    def __init__(self, m: Mutant):
        self.m = m
        self.path = ROOT / m.path
        self.original_bytes = None
        self.stat = None

    def _drop_emu_objects(self):
        if self.m.kind == "cuda":
            for obj in emu_objects(self.m):
                obj.unlink(missing_ok=True)

    def __enter__(self):
        text = check_snippet(self.m)
        self.original_bytes = self.path.read_bytes()
        self.stat = self.path.stat()
        self.path.write_text(text.replace(self.m.original, self.m.replacement))
        if self.m.kind == "cuda":
            os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
        self._drop_emu_objects()
        return self

    def __exit__(self, *exc):
        self.path.write_bytes(self.original_bytes)
        if self.m.kind == "cuda":
            os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
        self._drop_emu_objects()
        return False


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that restore the sources.
    raise KeyboardInterrupt


def run(cmd, env=None, timeout=None):
    """(returncode, combined output, timed out) of cmd in the repository root."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out, True
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def build_env(args):
    env = dict(os.environ, PYKERNELS_NO_CUDA="1", MAX_JOBS=str(args.jobs))
    return env


def build_extension(args):
    return run([sys.executable, "setup.py", "build_ext", "--inplace"], env=build_env(args))


def first_failure(out):
    """The first failing test in pytest -rfE output, or None."""
    # "FAILED node-id - message"; a node id's parameters may contain spaces.
    match = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", out, re.MULTILINE)
    return match.group(1) if match else None


def run_cpu(m: Mutant, args) -> Result:
    start = time.monotonic()
    with Patched(m):
        rc, out, _ = build_extension(args)
        if rc != 0:
            return Result(m, "build failed", "the mutated source did not build", time.monotonic() - start, out)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *m.tests]
        rc, test_out, timed_out = run(cmd, timeout=args.timeout)
    seconds = time.monotonic() - start
    log = out + test_out
    if timed_out:
        return Result(m, "killed", f"timed out after {args.timeout} s", seconds, log)
    if rc == 0:
        return Result(m, "survived", "", seconds, log)
    if rc == 1:
        return Result(m, "killed", first_failure(test_out) or "a test failed", seconds, log)
    if rc < 0 or rc >= 128:  # the interpreter died: a crash the suite would report
        return Result(m, "killed", f"the test process crashed (status {rc})", seconds, log)
    return Result(m, "error", f"pytest exited with status {rc} (no tests ran, or a usage error)", seconds, log)


EMU_SUMMARY = re.compile(r"^(OK|FAILED): \d+ checks, \d+ failures$", re.MULTILINE)


def run_emulator(args, suites):
    env = dict(os.environ, PYTHON=sys.executable, JOBS=str(args.jobs))
    return run([*args.emu_cmd.split(), *suites], env=env, timeout=args.timeout)


def run_cuda(m: Mutant, args) -> Result:
    start = time.monotonic()
    with Patched(m):
        rc, out, timed_out = run_emulator(args, m.tests)
    seconds = time.monotonic() - start
    if timed_out:
        return Result(m, "killed", f"timed out after {args.timeout} s", seconds, out)
    summary = EMU_SUMMARY.search(out)
    if summary is None:
        if rc is not None and (rc < 0 or rc >= 128) and "checks," in out:
            return Result(m, "killed", f"the emulator crashed (status {rc})", seconds, out)
        return Result(m, "build failed", "the mutated source did not build for the emulator", seconds, out)
    if summary.group(1) == "OK":
        return Result(m, "survived", "", seconds, out)
    fail = re.search(r"^FAIL (.*)$", out, re.MULTILINE)
    return Result(m, "killed", "emulator: " + (fail.group(1)[:160] if fail else "a check failed"), seconds, out)


def emulator_baseline(args, cuda):
    """(whether the unmutated emulator builds and passes the suites of `cuda`, a note saying so)."""
    print("emulator, unmutated ...", flush=True)
    _, out, _ = run_emulator(args, sorted({s for m in cuda for s in m.tests}))
    summary = EMU_SUMMARY.search(out)
    if summary is not None and summary.group(1) == "OK":
        print("  builds and passes", flush=True)
        return True, "the unmutated emulator builds and passes"
    why = "does not build" if summary is None else "fails unmutated"
    tail = " ".join(out.strip().splitlines()[-3:])[-300:]
    note = f"not run: the unmutated emulator {why} ({tail})"
    print(f"  {note}", flush=True)
    return False, note


def git(*argv):
    # Not stripped: a porcelain status line starts with a space.
    return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False).stdout


def torch_version():
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


def write_report(path, results, args, started, elapsed, emu_note):
    by_status = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    # Uncommitted changes to tracked files (the mutants are restored by now) belong in the provenance.
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    lines = [
        "# Mutation report",
        "",
        "Each mutant is a deliberate one-line bug planted in a kernel by `tools/mutate.py`; the suite",
        "should fail on every one. **killed**: the selected tests (or emulator checks) failed, and the",
        "cell names the first failure; **survived**: they passed with the bug in.",
        "",
        f"- Sources: commit `{git('rev-parse', 'HEAD').strip()}`"
        + (f", with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}" if dirty else ""),
        f"- Run: {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min in all",
        (f"- torch {torch_version()}, Python {sys.version.split()[0]}; CPU build without CUDA, `MAX_JOBS={args.jobs}`"),
        "- Result: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())),
    ]
    if emu_note:
        lines.append(f"- CUDA emulator: {emu_note}")
    lines += ["", "| Mutant | Kind | File | Bug | Result | Caught by | Time (s) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.mutant
        detail = r.detail.replace("|", "\\|")
        lines.append(
            f"| `{m.id}` | {m.kind} | `{m.path}` | {m.description} | {r.status} | {detail} | {r.seconds:.0f} |"
        )
    lines += ["", "Test selections (pytest arguments, or emulator suites):", ""]
    for r in results:
        lines.append(f"- `{r.mutant.id}`: `{' '.join(r.mutant.tests)}`")
    Path(path).write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--check", action="store_true", help="check that every snippet matches its source exactly once, and exit"
    )
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="run this mutant (repeatable)")
    parser.add_argument("--kind", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--report", metavar="PATH", help="write a Markdown report here")
    parser.add_argument("--jobs", type=int, default=1, help="compile jobs (MAX_JOBS, and the emulator's JOBS)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds a mutant's tests may run")
    parser.add_argument(
        "--emu-cmd", default="sh tools/cuda_emu/run.sh", help="the emulator command; the mutant's suites are appended"
    )
    parser.add_argument(
        "--no-final-rebuild",
        action="store_true",
        help="skip rebuilding the extension from the restored sources at the end",
    )
    args = parser.parse_args(argv)

    ids = {m.id for m in MUTANTS}
    if len(ids) != len(MUTANTS):
        parser.error("duplicate mutant ids")
    unknown = set(args.only) - ids
    if unknown:
        parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
    selected = [
        m for m in MUTANTS if (not args.only or m.id in args.only) and (args.kind == "all" or m.kind == args.kind)
    ]

    if args.list:
        for m in selected:
            print(f"{m.id:34} {m.kind:4} {m.path:28} {m.description}")
            print(f"{'':34} tests: {' '.join(m.tests)}")
        return 0
    try:
        for m in selected:
            check_snippet(m)
    except SourceDrift as e:
        print(f"mutate: {e}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(selected)} mutants, every snippet matches its source once")
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    results = []
    emu_note = ""
    cpu_ran = False
    try:
        cuda = [m for m in selected if m.kind == "cuda"]
        emu_ok = None
        for m in selected:
            if m.kind == "cuda" and emu_ok is None:
                # The unmutated emulator first (after the CPU mutants, whose restored files would
                # make it recompile everything again): if it does not build or does not pass, no
                # mutant of it can say anything, and each is reported as not run.
                emu_ok, emu_note = emulator_baseline(args, cuda)
            print(f"{m.id} ...", flush=True)
            if m.kind == "cuda" and not emu_ok:
                result = Result(m, "not run", "emulator: " + emu_note.split(": ", 1)[-1][:120])
            elif m.kind == "cuda":
                result = run_cuda(m, args)
            else:
                cpu_ran = True
                result = run_cpu(m, args)
            results.append(result)
            print(f"  {result.status} {result.detail} ({result.seconds:.0f} s)", flush=True)
            if result.status in ("build failed", "error"):
                print(result.log[-3000:], flush=True)
    except KeyboardInterrupt:
        print("interrupted; sources restored", file=sys.stderr)
        raise
    finally:
        if cpu_ran and not args.no_final_rebuild:
            print("rebuilding the extension from the restored sources ...", flush=True)
            rc, out, _ = build_extension(args)
            if rc != 0:
                print(out[-3000:], file=sys.stderr)
                print("mutate: the restored sources did not build", file=sys.stderr)
    elapsed = time.monotonic() - t0

    print()
    for r in results:
        print(f"{r.mutant.id:34} {r.status:12} {r.detail}")
    if args.report:
        write_report(args.report, results, args, started, elapsed, emu_note)
        print(f"report: {args.report}")
    bad = [r for r in results if r.status in ("survived", "build failed", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
