"""Quick checks of pykernels' CUDA kernels for a first run on a GPU, in groups that tools/gpu_check.sh
runs as separate stages (each short, so a fault shows up before the time is spent):

  hopper  the Hopper GEMM (wgmma + TMA, PYKERNELS_GEMM_SM90=1): float16/bfloat16, each operand layout in
          turn, against a float64 reference; on a compute capability 9.x GPU a build without it fails,
          other GPUs skip the group
  edges   the mma.sync and SIMT GEMMs on shapes with partial tiles, each kernel the selection rule has
  cover   every CUDA kernel once, on small inputs (for compute-sanitizer memcheck)
  race    the GEMM tiles and a split reduction (for compute-sanitizer racecheck)

Every case checks its values against torch (low-precision products against the float64 product, judged
by torch's own error on the same inputs) and, for products, which kernel ran. Prints one line per case;
exits 1 if any case failed. --list prints the cases without running them (no GPU needed).

Usage: python tools/gpu_smoke.py [--list] GROUP [GROUP ...]
"""

import argparse
import contextlib
import os
import sys
import traceback

GROUPS = ("hopper", "edges", "cover", "race")


class Case:
    def __init__(self, name, run):
        self.name, self.run = name, run


def _setup_env(groups):
    # read once by the extension, at the first float16/bfloat16 product: set before any runs
    if "hopper" in groups:
        os.environ["PYKERNELS_GEMM_SM90"] = "1"


def build_cases(groups):
    import torch

    import pykernels as pk

    dev = "cuda"

    def sms():
        return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count

    def cc():
        return torch.cuda.get_device_capability()[0]

    def randn(shape, dtype):
        return torch.randn(shape, device=dev).to(dtype)

    def operand(rows, cols, dtype, layout):
        """rows x cols in a layout: row/col major, optionally with storage rows padded to a multiple of 8."""
        col = layout.startswith("col")
        shape = (cols, rows) if col else (rows, cols)
        if layout.endswith("_pad"):
            base = torch.zeros(shape[0], (shape[1] + 7) // 8 * 8 + 8, device=dev, dtype=dtype)
            base[:, : shape[1]] = randn(shape, dtype)
            x = base[:, : shape[1]]
        else:
            x = randn(shape, dtype)
        return x.t() if col else x

    def check_product(out, a, b, op):
        exact = torch.matmul(a.double(), b.double())
        assert out.dtype == a.dtype and out.shape == exact.shape, (out.dtype, out.shape)
        if a.dtype in (torch.float16, torch.bfloat16):
            torch_error = (getattr(torch, op)(a, b).double() - exact).abs().max().item()
            ulp = torch.finfo(a.dtype).eps * exact.abs().max().item()
            atol, rtol = 2 * max(torch_error, ulp), 0
        else:
            eps = torch.finfo(a.dtype).eps
            k = a.shape[-1]
            atol, rtol = 2 * eps * k + (1e-5 if a.dtype == torch.float32 else 1e-7), 2 * eps * k**0.5
        torch.testing.assert_close(out.double(), exact, atol=atol, rtol=rtol)

    def product(op, a_fn, b_fn, kernel_fn):
        def run():
            a, b = a_fn(), b_fn()
            out = getattr(pk, op)(a, b)
            torch.cuda.synchronize()
            ran = pk._C.gemm_last_kernel()
            check_product(out, a, b, op)
            expected = kernel_fn()
            assert ran.startswith(expected), f"launched {ran!r}, expected {expected!r}"
            return ran

        return run

    def loads(la, lb, m, k, n, vec):
        """gemm_last_kernel's operand part: A loads along k or m, B along n or k; vector loads when the operand's
        other stride is a multiple of `vec` elements (16 bytes; None: the kernel has none)."""
        a = ("a:k", k) if la == "row" else ("a:m", m)
        b = ("b:n", n) if lb == "row" else ("b:k", k)
        return " ".join(d + ("+vec" if vec and s % vec == 0 else "") for d, s in (a, b))

    def float32_tile(batch, m, n):
        return "128x128" if batch * -(-m // 128) * -(-n // 128) >= sms() else "64x64"

    def gemm_case(name, op, dtype, batch, m, k, n, la="row", lb="row", kernel=None):
        """A product with fresh operands; `kernel` (a prefix of gemm_last_kernel) defaults to the selection rule's."""
        a_shape, b_shape = ((batch, m, k), (batch, k, n)) if batch else ((m, k), (k, n))

        def make_a():
            return operand(m, k, dtype, la) if not batch else randn(a_shape, dtype)

        def make_b():
            return operand(k, n, dtype, lb) if not batch else randn(b_shape, dtype)

        def expected():
            if kernel is not None:
                return kernel
            if dtype == torch.float32:
                return f"simt {float32_tile(batch or 1, m, n)} {loads(la, lb, m, k, n, 4)}"
            if dtype == torch.float64:
                return "simt 64x64 " + loads(la, lb, m, k, n, None)
            if os.environ.get("PYKERNELS_GEMM_SM90") == "1" and cc() == 9 and min(m, n) >= 128 and k >= 64:
                return "sm90"
            return f"mma.sync 128x128 {loads(la, lb, m, k, n, 8)}"

        return Case(
            f"{name} {op} {str(dtype)[6:]} {batch or ''}{'x' if batch else ''}{m}x{k}x{n} {la}@{lb}",
            product(op, make_a, make_b, expected),
        )

    layouts = [("row", "row"), ("col", "row"), ("row", "col"), ("col", "col")]
    halves = [torch.float16, torch.bfloat16]
    cases = {g: [] for g in GROUPS}

    # hopper: tile multiples, partial tiles with padded rows (TMA needs 16-byte row strides), batches
    def hopper_required():
        assert cc() == 9, "not a compute capability 9.x GPU"
        assert pk.build_info().get("sm90_gemm"), "a Hopper GPU, but pykernels was built without an sm_90a target"

    cases["hopper"].append(Case("hopper build", hopper_required))
    for dtype in halves:
        for m, k, n in [(128, 64, 256), (1024, 512, 1280)]:
            for la, lb in layouts:
                cases["hopper"].append(gemm_case("hopper", "mm", dtype, 0, m, k, n, la, lb, kernel="sm90"))
        for la, lb in layouts:
            cases["hopper"].append(
                gemm_case("hopper", "mm", dtype, 0, 257, 383, 129, la + "_pad", lb + "_pad", kernel="sm90")
            )
        cases["hopper"].append(gemm_case("hopper", "bmm", dtype, 3, 512, 320, 384, kernel="sm90"))

    # edges: the shapes of tests/test_cuda.py that reach each kernel, with partial tiles
    for m, k, n in [(2048, 100, 2048), (1537, 67, 1531), (1000, 67, 1000)]:
        for la, lb in [("row", "row"), ("col", "col")]:
            cases["edges"].append(gemm_case("edges", "mm", torch.float32, 0, m, k, n, la, lb))
    cases["edges"].append(gemm_case("edges", "mm", torch.float64, 0, 129, 67, 131))
    for dtype in halves:
        for m, k, n in [(136, 200, 264), (300, 200, 104)]:
            for la, lb in layouts:
                cases["edges"].append(gemm_case("edges", "mm", dtype, 0, m, k, n, la, lb))

    def bmm_cases(group, tile, k=50):
        """A float32 bmm of 700 x k x 600 matrices, batched to reach `tile` on this GPU."""

        def run():
            per_batch = 6 * 5  # 700 x 600 in 128x128 tiles
            batch = -(-sms() // per_batch) if tile == "128x128" else max(1, (sms() - 1) // per_batch)
            return gemm_case(group, "bmm", torch.float32, batch, 700, k, 600, kernel=f"simt {tile}").run()

        return Case(f"{group} bmm float32 700x{k}x600 {tile}", run)

    cases["edges"] += [bmm_cases("edges", "128x128"), bmm_cases("edges", "64x64")]

    # cover: each kernel once, small; operands are made on the GPU when a case runs
    f32 = torch.float32
    ew = dict(atol=1e-5, rtol=1.3e-6)

    def lazy(name, build, tolerance):
        def run():
            fn, ref = build()
            out, expected = fn(), ref()
            torch.cuda.synchronize()
            torch.testing.assert_close(out, expected, equal_nan=True, **tolerance)

        return Case(name, run)

    def binary(n, rounding=None):
        def build():
            a, b = randn((33, 65), f32), randn((65,), f32).abs() + 0.5
            kw = {"rounding_mode": rounding} if rounding else {}
            return (lambda: getattr(pk, n)(a, b, **kw)), (lambda: getattr(torch, n)(a, b, **kw))

        return build

    def unary(n, *args):
        def build():
            a = randn((1031,), f32)
            if n in ("log", "sqrt", "pow"):
                a = a.abs() + 0.5
            return (lambda: getattr(pk, n)(a, *args)), (lambda: getattr(torch, n)(a, *args))

        return build

    def relu_backward():
        a = randn((1031,), f32).requires_grad_()
        g = randn((1031,), f32)

        def ours():
            return torch.autograd.grad(pk.relu(a), a, g)[0]

        return ours, (lambda: torch.autograd.grad(torch.relu(a), a, g)[0])

    def reduction(shape, dim, mean=False):
        def build():
            t = randn(shape, f32)
            kw = {} if dim is None else {"dim": dim}
            op = "mean" if mean else "sum"
            return (lambda: getattr(pk, op)(t, **kw)), (lambda: getattr(torch, op)(t.double(), **kw).float())

        return build

    def mse(reduction_, backward=False):
        def build():
            a, b = randn((40, 30), f32).requires_grad_(), randn((40, 30), f32)
            if backward:
                return (
                    (lambda: torch.autograd.grad(pk.mse_loss(a, b, reduction=reduction_), a)[0]),
                    (lambda: torch.autograd.grad(torch.nn.functional.mse_loss(a, b, reduction=reduction_), a)[0]),
                )
            return (
                (lambda: pk.mse_loss(a, b, reduction=reduction_).detach()),
                (lambda: torch.nn.functional.mse_loss(a, b, reduction=reduction_).detach()),
            )

        return build

    def optimizer(name, **options):
        """Three steps of torch.optim.<name> under the drop-in mode (the fused op) against torch's own,
        on parameters of one chunk, two chunks and a few elements; capturable keeps the counters on
        the GPU, where the kernel increments and reads them."""

        def build():
            shapes = [(1031,), (70000,), (3, 5)]
            start = [randn(s, f32) for s in shapes]
            grads = [[randn(s, f32) for s in shapes] for _ in range(3)]

            def train(context, **extra):
                params = [torch.nn.Parameter(p.clone()) for p in start]
                opt = getattr(torch.optim, name)(params, **options, **extra)
                for step in grads:
                    for p, g in zip(params, step):
                        p.grad = g.clone()
                    with context():
                        opt.step()
                return torch.cat([p.detach().flatten() for p in params])

            return (lambda: train(pk.enable, **({"capturable": True} if name != "SGD" else {}))), (
                lambda: train(contextlib.nullcontext)
            )

        return build

    acc = dict(atol=1e-4, rtol=1e-4)
    for name, options in [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.01)),
        ("AdamW", dict(lr=0.01, amsgrad=True)),
    ]:
        cases["cover"].append(lazy(f"cover {name} step", optimizer(name, **options), dict(atol=1e-5, rtol=1e-5)))
    for n in ("add", "sub", "mul", "div"):
        cases["cover"].append(lazy(f"cover {n}", binary(n), ew))
    for r in ("trunc", "floor"):
        cases["cover"].append(lazy(f"cover div {r}", binary("div", r), ew))
    for n, args in [("neg", ()), ("exp", ()), ("log", ()), ("sqrt", ()), ("relu", ()), ("pow", (2.5,))]:
        cases["cover"].append(lazy(f"cover {n}", unary(n, *args), ew))
    cases["cover"].append(lazy("cover relu backward", relu_backward, ew))
    for shape, dim in [((37, 300), 1), ((300, 37), 0), ((4, 100000), 1), (((1 << 20) + 1,), None)]:
        cases["cover"].append(lazy(f"cover sum {shape} dim={dim}", reduction(shape, dim), acc))
    cases["cover"].append(lazy("cover mean (5000, 3) dim=0", reduction((5000, 3), 0, mean=True), acc))
    for r in ("none", "mean", "sum"):
        cases["cover"].append(lazy(f"cover mse_loss {r}", mse(r), acc))
        cases["cover"].append(lazy(f"cover mse_loss {r} backward", mse(r, backward=True), acc))
    cases["cover"] += [
        gemm_case("cover", "mm", f32, 0, 300, 67, 260, "row", "col"),
        gemm_case("cover", "mm", torch.float64, 0, 70, 33, 65),
        gemm_case("cover", "mm", torch.float16, 0, 136, 200, 264),
        gemm_case("cover", "mm", torch.bfloat16, 0, 100, 72, 90, "col", "col"),
        bmm_cases("cover", "128x128"),
    ]

    # race: one of each GEMM tile kernel and a reduction split across blocks
    cases["race"] += [
        bmm_cases("race", "128x128", k=24),  # three k-tiles: both shared buffers, reused once
        gemm_case("race", "mm", f32, 0, 200, 67, 190),
        gemm_case("race", "mm", torch.float64, 0, 70, 33, 65),
        gemm_case("race", "mm", torch.float16, 0, 136, 200, 264, "col", "row"),
        gemm_case("race", "mm", torch.bfloat16, 0, 136, 200, 264, "row", "col"),
        lazy("race sum (4, 100000) dim=1", reduction((4, 100000), 1), acc),
        lazy("race sum (5000, 3) dim=0", reduction((5000, 3), 0), acc),
    ]
    return {g: cases[g] for g in groups}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="+", choices=GROUPS)
    parser.add_argument("--list", action="store_true", help="print the cases without running them")
    args = parser.parse_args(argv)
    _setup_env(args.groups)
    cases = build_cases(args.groups)
    if args.list:
        for group, group_cases in cases.items():
            for case in group_cases:
                print(f"{group}: {case.name}")
        return 0

    import torch

    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing to run (use --list to see the cases)")
        return 2
    failed = ran = 0
    for group, group_cases in cases.items():
        major, minor = torch.cuda.get_device_capability()
        if group == "hopper" and major != 9:
            print(f"skip hopper: compute capability {major}.{minor}, not 9.x", flush=True)
            continue
        for case in group_cases:
            ran += 1
            try:
                detail = case.run()
            except Exception as exc:  # noqa: BLE001 - every failure is reported, then the next case runs
                failed += 1
                print(f"FAIL {case.name}: {type(exc).__name__}: {str(exc).strip()[:2000]}", flush=True)
                if not isinstance(exc, AssertionError):
                    traceback.print_exc(limit=3)
            else:
                print(f"ok   {case.name}" + (f"  [{detail}]" if detail else ""), flush=True)
    print(f"{ran - failed} of {ran} cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
