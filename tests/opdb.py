"""The op database: every op and overload of the op table (pykernels/optable.py) as the tests use
it, so that an op added to the table is under test without a test file naming it.

For each overload (``add.default``, ``add.out``, ``add_.Scalar``, ...): its schema, its callables
(the ``torch.ops.pykernels`` overload, and the public function where the op has one), whether it
is differentiable, the ATen ops that must not run for it, and sample calls. Samples come from the
op's kind and the schema's arguments: awkward sizes, broadcasting, 0-dim and empty operands,
non-contiguous layouts, every dtype of the entry, mixed dtypes and the options the schema takes.
Number forms get Python numbers where their tensor form has a tensor; out= and in-place
overloads get the calls of their functional form. A sample knows how torch computes the same
thing, and builds its tensors only when a test runs it (under the test's seed), on the device the
test asks for. Internal ops have hand-written samples and references, keyed by name below.
"""

import dataclasses
import functools
import importlib
import inspect
import math
import numbers
import warnings

import pytest
import torch
import torch.nn.functional as F

import pykernels as pk
from pykernels import optable
from conftest import DEVICES, make, make_layout

_REDUCTIONS = ("none", "mean", "sum")  # torch's at::Reduction values 0, 1, 2


def dtype_of(name):
    return getattr(torch, name)


def is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, torch.Tensor)


def resolve(dotted):
    """torch.Tensor.add from "torch.Tensor.add"."""
    obj = torch
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------------------------------------- overloads


@dataclasses.dataclass(frozen=True, eq=False)
class Overload:
    """One schema of the table: a registered overload, or a number form."""

    op: optable.Op
    schema: str
    number: bool = False

    def __repr__(self):
        return self.qualname

    @functools.cached_property
    def parsed(self):
        return torch._C.parse_schema(self.schema)

    @property
    def packet(self):
        return self.parsed.name

    @property
    def overload_name(self):
        return self.parsed.overload_name or "default"

    @property
    def qualname(self):
        return f"{self.packet}.{self.overload_name}"

    @property
    def arguments(self):
        return list(self.parsed.arguments)

    @property
    def is_out(self):
        return any(a.name == "out" and a.alias_info is not None and a.alias_info.is_write for a in self.arguments)

    @property
    def is_inplace(self):
        first = self.arguments[0]
        return first.alias_info is not None and first.alias_info.is_write

    @property
    def mutating(self):
        return self.is_out or self.is_inplace

    @property
    def differentiable(self):
        """Differentiable overloads: torch's out= arguments do not support autograd."""
        return self.op.derivative is not None and not self.is_out

    @property
    def replaces(self):
        """The ATen ops this overload's op replaces: none of them may run when it does."""
        return frozenset(self.op.aten)

    @property
    def public_name(self):
        """The public function that calls this overload (pykernels.add for add.out), or None."""
        return self.packet if self.packet in self.op.public else None

    def resolve(self):
        """The torch.ops.pykernels overload."""
        return getattr(getattr(torch.ops.pykernels, self.packet), self.overload_name)

    def signature(self):
        """(name, type) of each argument, out= left out: what an out= form shares with its functional form."""
        return [(a.name, str(a.type)) for a in self.arguments if a.name != "out"]

    def functional(self):
        """The functional overload whose result an out= or in-place overload writes."""
        packet = self.packet.rstrip("_")
        for other in OVERLOADS:
            same = other.op is self.op and other.packet == packet and not other.mutating
            if same and other.signature() == self.signature():
                return other
        raise LookupError(f"{self.qualname}: no functional overload with its arguments")

    def tensor_form(self):
        """For a functional number form, the tensor form it is generated from, and the positions of
        the arguments where it takes a number and the tensor form a tensor."""
        mine = self.signature()
        for other in OVERLOADS:
            if other.op is not self.op or other.number or other.mutating or other.packet != self.packet:
                continue
            theirs = other.signature()
            if [n for n, _ in mine] != [n for n, _ in theirs]:
                continue
            swapped = [i for i, ((_, a), (_, b)) in enumerate(zip(mine, theirs)) if a != b]
            if swapped and all(mine[i][1] == "number" and theirs[i][1] == "Tensor" for i in swapped):
                return other, swapped
        raise LookupError(f"{self.qualname}: no tensor form")


OVERLOADS = [Overload(op, schema) for op in optable.OPS for schema in op.overloads] + [
    Overload(op, schema, number=True) for op in optable.OPS for schema in op.numbers
]
BY_QUALNAME = {o.qualname: o for o in OVERLOADS}


def public_overloads():
    """The overloads that a public function calls."""
    return [o for o in OVERLOADS if o.public_name is not None]


# ---------------------------------------------------------------------------------------------- torch's side


def torch_function(op, public_name):
    """The torch callable a public function mirrors, from the op's drop-in routes: torch.add for
    add, torch.Tensor.add_ for add_, torch.nn.functional.mse_loss for mse_loss."""
    names = [n for n in op.torch if n.rsplit(".", 1)[1] == public_name]
    if not names:
        raise LookupError(f"{public_name}: none of the op's torch callables is named like it")
    return resolve(min(names, key=lambda n: n.startswith("torch.Tensor.")))


def _mse_loss_public(args, kwargs):
    """mse_loss takes its reduction as torch's enum int; the public function as torch's string."""
    args, kwargs = list(args), dict(kwargs)
    if len(args) > 2:
        kwargs["reduction"] = args.pop(2)
    if "reduction" in kwargs:
        kwargs["reduction"] = _REDUCTIONS[kwargs["reduction"]]
    return tuple(args), kwargs


# The public functions whose arguments differ from their op's schema (the table names an adapter
# for them): how a call of the op is spelled for the public function and for torch.
ADAPTERS = {"mse_loss": _mse_loss_public}


def public_arguments(overload, args, kwargs):
    """A call of the overload as the public function's (and torch's) arguments."""
    adapt = ADAPTERS.get(overload.public_name)
    return adapt(args, kwargs) if adapt else (tuple(args), dict(kwargs))


def _wrapped_number(number, tensor, kwargs, op):
    """torch's reference for a number standing first: torch functions need a tensor there, so the
    number becomes a 0-dim one (which, like a wrapped number, neither sets the result's layout
    nor raises its dtype within a category) of the dtype torch promotes the pair to: the default
    float dtype for true division of integers, which computes on the exact number; bool for a
    bool, so that `True - t` raises like torch."""
    dtype = torch.result_type(number, tensor)
    if op.integer_to_float and kwargs.get("rounding_mode") is None and not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    elif isinstance(number, bool):
        dtype = torch.bool
    return torch.tensor(number, device=tensor.device).to(dtype)


def torch_call(overload, args, kwargs):
    """torch's computation of a call of a public op's overload: (function, args, kwargs)."""
    args, kwargs = public_arguments(overload, args, kwargs)
    fn = torch_function(overload.op, overload.public_name)
    if len(args) > 1 and is_number(args[0]) and isinstance(args[1], torch.Tensor):
        args = (_wrapped_number(args[0], args[1], kwargs, overload.op), *args[1:])
    return fn, args, kwargs


# ---------------------------------------------------------------------------------------------- samples


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
    """One call of an overload: build(device) gives its (args, kwargs) in the schema's terms."""

    overload: Overload
    name: str
    dtype: torch.dtype
    build: object
    tags: frozenset = frozenset()

    @property
    def id(self):
        return f"{self.overload.qualname}-{self.name}"

    def __repr__(self):
        return self.id

    def calls(self, device, count=2):
        """`count` identical, independent builds: in-place and out= calls write their arguments, and
        a clone would not keep an expanded or offset layout. The seed comes from the test's; the
        tensors are drawn on the CPU (conftest.make), whose generator alone is reseeded."""
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        built = []
        for _ in range(count):
            with torch.random.fork_rng(devices=[]):
                torch.random.default_generator.manual_seed(seed)
                built.append(self.build(device))
        return built

    def public_call(self, args, kwargs):
        """(public function, args, kwargs) for the same computation, or None for an internal op."""
        if self.overload.public_name is None:
            return None
        args, kwargs = public_arguments(self.overload, args, kwargs)
        return getattr(pk, self.overload.public_name), args, kwargs

    def expected(self, args, kwargs):
        """torch's result for the call: what the overload returns, or for an out= or in-place
        overload the tensor it writes."""
        if self.overload.op.kind in HAND_WRITTEN_KINDS:
            return hand_written(self.overload.op).reference(*args, **kwargs)
        fn, args, kwargs = torch_call(self.overload, args, kwargs)
        return fn(*args, **kwargs)

    @functools.cached_property
    def valid(self):
        """Whether torch takes this call (on the CPU): only such samples go to the checks that
        need a result (gradients, opcheck, the profiler)."""
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warnings are the tests' to check, not the probe's
            torch.random.default_generator.manual_seed(0)
            args, kwargs = self.build("cpu")
            try:
                self.expected(args, kwargs)
            except Exception:  # noqa: BLE001 - any torch error makes the call invalid
                return False
        return True

    def floating_inputs(self, args):
        """Positions of the floating-point tensor arguments: the inputs of a gradient check."""
        return [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()]


# Values where an argument needs them: keeps divisors from 0, logarithms and roots from negative
# numbers, and ReLU and other kinks away from 0 so that finite differences are valid.
DOMAIN = {
    ("div", "other"): "nonzero",
    ("log", "input"): "positive",
    ("sqrt", "input"): "positive",
    ("pow", "input"): "positive",
    ("relu", "input"): "nonzero",
}

# Values for the schemas' non-tensor arguments, by argument name.
OPTIONS = {"alpha": (2, 0.5, -3), "rounding_mode": ("trunc", "floor"), "reduction": (0, 2)}
NUMBERS = {"exponent": (2, 2.5, -2, 0.5, 3, 0, -1)}
# Python numbers standing for a tensor operand (number forms).
OPERAND_NUMBERS = (2.5, 3, -2, True)

LAYOUTS = ("transposed", "strided", "expanded", "offset")


def _domain(op, argument):
    kind = DOMAIN.get((op.name, argument))
    return {kind: True} if kind else {}


def _numbers_for(op, argument, values):
    kind = DOMAIN.get((op.name, argument))
    if kind == "positive":
        return tuple(v for v in values if v > 0)
    if kind == "nonzero":
        return tuple(v for v in values if v != 0)
    return values


def _tensor(op, argument, shape, dtype, device, layout="contiguous"):
    return make_layout(shape, dtype, device, layout, **_domain(op, argument))


def _positional(overload):
    return [a for a in overload.arguments if not a.kwarg_only]


def _options(overload):
    """(argument name, value) for every option the schema takes, beyond its default."""
    return [(a.name, v) for a in overload.arguments if a.name in OPTIONS for v in OPTIONS[a.name]]


def _dtypes(op):
    return [dtype_of(name) for name in op.dtypes]


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


# The samples each check takes, by case name (beside every dtype's basic sample and the options):
# finite differences and opcheck are slow, so they take the cases that reach different code.
GRAD_CASES = {
    "broadcast",
    "row",
    "0-dim-other",
    "cpu-0-dim-other",
    "transposed",
    "strided",
    "vector",
    "3-d",
    "dot",
    "vector-matrix",
    "matrix-vector",
    "batch-vector",
    "vector-batch",
    "broadcast-batch",
    "matrix-batch",
    "dim",
    "dims-keepdim",
    "0-dim",
    "broadcast-target",
    "no-bias",
    "vector-weight",
    "batch-bias",
    "hidden-129",
}
OPCHECK_CASES = {
    "broadcast",
    "transposed",
    "0-dim-other",
    "3-d",
    "dot",
    "broadcast-batch",
    "dims-keepdim",
    "broadcast-target",
    "no-bias",
    "batch-bias",
}
OPCHECK_DTYPES = (torch.float32, torch.int64)


class _Maker:
    """Collects the samples of one overload, tagged with the checks they are for: "grad" (gradient
    checks, in float64), "opcheck" (in float32 and int64, and mixed dtypes) and "profile"."""

    def __init__(self, overload):
        self.overload, self.op, self.samples = overload, overload.op, []

    def add(self, case, dtype, build, group):
        """group: "sweep" (each dtype's basic sample), "structure", "mixed", "option" or "large"."""
        tags = {group}
        if group in ("sweep", "option") or case in GRAD_CASES:
            tags.add("grad")
        if group == "mixed" or (dtype in OPCHECK_DTYPES and (group in ("sweep", "option") or case in OPCHECK_CASES)):
            tags.add("opcheck")
        if group in ("sweep", "option", "large"):
            tags.add("profile")
        name = f"{dtype_name(dtype)}-{case}" if case else dtype_name(dtype)
        self.samples.append(Sample(self.overload, name, dtype, build, frozenset(tags)))

    def operands(self, specs, kwargs=None):
        """build(device) for the positional arguments: (shape, dtype, layout) for a tensor (layout
        "cpu": a contiguous tensor on the CPU whatever the device), a number as it is."""
        positional = _positional(self.overload)
        kwargs = dict(kwargs or {})

        def build(device):
            args = []
            for argument, spec in zip(positional, specs):
                if isinstance(spec, tuple):
                    shape, dtype, layout = spec
                    where, layout = ("cpu", "contiguous") if layout == "cpu" else (device, layout)
                    args.append(_tensor(self.op, argument.name, shape, dtype, where, layout))
                else:
                    args.append(spec)
            return tuple(args), dict(kwargs)

        return build


def _number_arguments(overload):
    """Positions of the positional arguments that take a number (pow's exponent)."""
    return [i for i, a in enumerate(_positional(overload)) if str(a.type) == "number"]


def _number_values(overload, position):
    """The numbers a positional number argument takes: NUMBERS by its name, within its domain."""
    name = _positional(overload)[position].name
    return _numbers_for(overload.op, name, NUMBERS.get(name, OPERAND_NUMBERS))


def _specs(overload, shapes, dtypes, layouts=None, index=0):
    """Argument specs: tensors of the given shapes, dtypes and layouts, and at the number
    positions values of NUMBERS, picked by index."""
    tensors = list(zip(shapes, dtypes, layouts or ["contiguous"] * len(shapes)))
    for i in _number_arguments(overload):
        values = _number_values(overload, i)
        tensors.insert(i, values[index % len(values)])
    return tensors


ALL_TABLE_DTYPES = [dtype_of(name) for name in optable.ALL]
STRUCTURE_DTYPES = (torch.float32, torch.float64)
# (input dtype, other dtype): a float64 other is a 0-dim CPU tensor, which joins any device and
# does not raise a floating input's dtype.
MIXED_DTYPES = [
    (torch.float32, torch.int64),
    (torch.int32, torch.float64),
    (torch.float16, torch.float64),
    (torch.float16, torch.float32),
    (torch.uint8, torch.bool),
    (torch.bool, torch.int32),
]


def _elementwise(overload, cases, large):
    """A unary or binary elementwise overload: cases maps a name to the shapes of its tensor
    arguments (the first: every dtype's basic sample)."""
    m, op = _Maker(overload), overload.op
    n = len(_positional(overload)) - len(_number_arguments(overload))
    basic = next(iter(cases.values()))
    # The basic samples take every value of a number argument (pow's exponents), for every dtype.
    count = max((len(_number_values(overload, i)) for i in _number_arguments(overload)), default=1)
    for dtype in _dtypes(op):
        for k in range(count):
            build = m.operands(_specs(overload, basic, [dtype] * n, index=k))
            m.add(str(k) if count > 1 else "", dtype, build, "sweep")
    index = 0
    for dtype in (d for d in STRUCTURE_DTYPES if d in _dtypes(op)):
        for case, shapes in list(cases.items())[1:]:
            m.add(case, dtype, m.operands(_specs(overload, shapes, [dtype] * n, index=index)), "structure")
            index += 1
        for layout in LAYOUTS:
            layouts = [layout] + ["transposed"] * (n - 1)
            m.add(layout, dtype, m.operands(_specs(overload, [(6, 5)] * n, [dtype] * n, layouts, index)), "structure")
            index += 1
        if n == 2:
            # A CPU 0-dim operand (float64: it must not raise the result dtype) beside tensors on any device.
            m.add(
                "cpu-0-dim-other",
                dtype,
                m.operands(_specs(overload, [(4, 3), ()], [dtype, torch.float64], ["contiguous", "cpu"])),
                "structure",
            )
            m.add(
                "cpu-0-dim-input",
                dtype,
                m.operands(_specs(overload, [(), (4, 3)], [torch.float64, dtype], ["cpu", "contiguous"])),
                "structure",
            )
    m.add("large", torch.float32, m.operands(_specs(overload, large, [torch.float32] * n)), "large")
    if n == 2:
        for a, b in MIXED_DTYPES:
            if a in _dtypes(op) and b in ALL_TABLE_DTYPES:
                other = ((), "cpu") if b == torch.float64 else ((4,), "contiguous")
                m.add(
                    dtype_name(b),
                    a,
                    m.operands(_specs(overload, [(3, 4), other[0]], [a, b], ["contiguous", other[1]])),
                    "mixed",
                )
    for argument, value in _options(overload):
        for dtype in (d for d in (torch.float32, torch.float64, torch.int64) if d in _dtypes(op)):
            shapes = cases.get("row", basic)
            m.add(
                f"{argument}={value}",
                dtype,
                m.operands(_specs(overload, shapes, [dtype] * n), {argument: value}),
                "option",
            )
    return m.samples


_BINARY_CASES = {
    "same": [(5, 7), (5, 7)],
    "broadcast": [(3, 1), (1, 4)],
    "row": [(2, 3), (3,)],
    "batch": [(3, 1), (2, 1, 4)],
    "0-dim-other": [(4, 3), ()],
    "0-dim-input": [(), (4, 3)],
    "0-dim": [(), ()],
    "empty": [(0, 3), (1, 3)],
}
_UNARY_CASES = {"matrix": [(5, 7)], "vector": [(7,)], "3-d": [(2, 3, 4)], "0-dim": [()], "empty": [(0, 3)]}


def _binary(overload):
    if _number_arguments(overload):  # a tensor and a number: pow(input, exponent)
        return _elementwise(overload, _UNARY_CASES, [(96, 512)])
    return _elementwise(overload, _BINARY_CASES, [(96, 512), (512,)])


def _unary(overload):
    return _elementwise(overload, _UNARY_CASES, [(96, 512)])


# Operand shapes for products of every rank; each op keeps those torch takes for it.
_GEMM_CASES = [
    ("2-d", (5, 7), (7, 3)),
    ("3-d", (2, 5, 7), (2, 7, 3)),
    ("dot", (7,), (7,)),
    ("vector-matrix", (7,), (7, 5)),
    ("matrix-vector", (5, 7), (7,)),
    ("batch-vector", (3, 5, 7), (7,)),
    ("vector-batch", (7,), (2, 7, 4)),
    ("broadcast-batch", (2, 1, 5, 7), (3, 7, 4)),
    ("matrix-batch", (5, 7), (3, 7, 4)),
    ("empty-m", (0, 7), (7, 3)),
    ("empty-k", (5, 0), (0, 3)),
    ("empty-n", (5, 7), (7, 0)),
    ("empty-batch", (0, 5, 7), (0, 7, 3)),
    ("ones", (1, 1), (1, 1)),
]
_GEMM_LARGE = [((96, 512), (512, 8)), ((2, 96, 512), (2, 512, 8))]  # tried in this order


def _accepts(fn, *shapes):
    """Whether torch takes operands of these shapes (tried on small zeros: meta tensors would
    import torch's Python references, which takes seconds)."""
    try:
        fn(*(torch.zeros(s) for s in shapes))
    except RuntimeError:
        return False
    return True


def _gemm(overload):
    m = _Maker(overload)
    fn = torch_function(overload.op, overload.public_name)
    cases = [(case, a, b) for case, a, b in _GEMM_CASES if _accepts(fn, a, b)]
    _, a, b = cases[0]
    for dtype in _dtypes(overload.op):
        m.add("", dtype, m.operands([(a, dtype, "contiguous"), (b, dtype, "contiguous")]), "sweep")
    for dtype in STRUCTURE_DTYPES:
        for case, x, y in cases[1:]:
            m.add(case, dtype, m.operands([(x, dtype, "contiguous"), (y, dtype, "contiguous")]), "structure")
        for layout in LAYOUTS:
            m.add(layout, dtype, m.operands([(a, dtype, layout), (b, dtype, "transposed")]), "structure")
    x, y = next((x, y) for x, y in _GEMM_LARGE if _accepts(fn, x, y))
    m.add(
        "large",
        torch.float32,
        m.operands([(x, torch.float32, "contiguous"), (y, torch.float32, "contiguous")]),
        "large",
    )
    return m.samples


def _reduction(overload):
    m, op = _Maker(overload), overload.op

    def build(shape, dtype, kwargs=None, layout="contiguous"):
        return lambda device: ((_tensor(op, "input", shape, dtype, device, layout),), dict(kwargs or {}))

    for dtype in _dtypes(op):
        m.add("", dtype, build((6, 7), dtype), "sweep")
        m.add("dim0", dtype, build((6, 7), dtype, {"dim": [0]}), "sweep")
    cases = {
        "dim": ((3, 4, 5), {"dim": [1]}),
        "dims-keepdim": ((3, 4, 5), {"dim": [0, -1], "keepdim": True}),
        "no-dims": ((3, 4, 5), {"dim": []}),
        "0-dim": ((), {"dim": [0]}),
        "0-dim-all": ((), {}),
        "empty": ((0, 3), {"dim": [0]}),
        "empty-all": ((0, 3), {}),
    }
    for dtype in STRUCTURE_DTYPES:
        for case, (shape, kwargs) in cases.items():
            m.add(case, dtype, build(shape, dtype, kwargs), "structure")
        if dtype == torch.float32:
            m.add("dtype", dtype, build((3, 4), dtype, {"dim": [1], "dtype": torch.float64}), "option")
        else:  # a narrower dtype: not for finite differences
            m.add("dtype-float32", dtype, build((3, 4), dtype, {"dim": [1], "dtype": torch.float32}), "structure")
        for layout in LAYOUTS:
            m.add(layout, dtype, build((4, 6, 5), dtype, {"dim": [1], "keepdim": True}, layout), "structure")
    m.add("dtype", torch.int64, build((3, 4), torch.int64, {"dtype": torch.float32}), "mixed")
    m.add("large", torch.float32, build((96, 512), torch.float32, {"dim": [1]}), "large")
    return m.samples


def _loss(overload):
    m = _Maker(overload)
    cases = {"broadcast-target": [(3, 4), (4,)], "0-dim": [(), ()], "empty": [(0, 3), (0, 3)], "vector": [(7,), (7,)]}
    reductions = [{}] + [{"reduction": r} for r in OPTIONS["reduction"]]
    for dtype in _dtypes(overload.op):
        for kwargs in reductions:
            case = "".join(f"reduction={v}" for v in kwargs.values())
            m.add(case, dtype, m.operands([((5, 7), dtype, "contiguous")] * 2, kwargs), "sweep")
    index = 0
    for dtype in STRUCTURE_DTYPES:
        for case, shapes in cases.items():
            kwargs = reductions[index % len(reductions)]
            m.add(case, dtype, m.operands([(s, dtype, "contiguous") for s in shapes], kwargs), "structure")
            index += 1
        for layout in LAYOUTS:
            kwargs = reductions[index % len(reductions)]
            m.add(
                layout, dtype, m.operands([((6, 5), dtype, layout), ((6, 5), dtype, "transposed")], kwargs), "structure"
            )
            index += 1
    for a, b in [(torch.float32, torch.float64), (torch.float16, torch.float32)]:
        m.add(dtype_name(b), a, m.operands([((4, 5), a, "contiguous"), ((4, 5), b, "contiguous")]), "mixed")
    m.add("large", torch.float32, m.operands([((96, 512), torch.float32, "contiguous")] * 2), "large")
    return m.samples


# (input, weight, bias) shapes of a linear layer, bias None for none: the first is every dtype's basic
# sample. Awkward sizes: empty batch and features, one of everything, primes, a hidden width past
# the GPU MLP kernels' 128, and a register tile's edges.
_LINEAR_CASES = {
    "": ((5, 7), (4, 7), (4,)),
    "no-bias": ((5, 7), (4, 7), None),
    "vector": ((7,), (4, 7), (4,)),
    "3-d": ((2, 3, 7), (4, 7), (4,)),
    "vector-weight": ((5, 7), (7,), None),
    "vector-weight-bias": ((2, 5, 7), (7,), ()),
    "batch-bias": ((5, 7), (4, 7), (5, 4)),
    "one-bias": ((5, 7), (4, 7), (1,)),
    "empty-batch": ((0, 7), (4, 7), (4,)),
    "empty-in": ((5, 0), (4, 0), (4,)),
    "empty-out": ((5, 7), (0, 7), (0,)),
    "ones": ((1, 1), (1, 1), (1,)),
    "primes": ((13, 29), (17, 29), (17,)),
    "hidden-129": ((3, 11), (129, 11), (129,)),
    "tile-edges": ((65, 33), (100, 33), (100,)),
}


def _linear_operands(m, shapes, dtype, layouts=("contiguous", "contiguous")):
    x, w, b = shapes
    specs = [(x, dtype, layouts[0]), (w, dtype, layouts[1])]
    return m.operands(specs + ([(b, dtype, "contiguous")] if b is not None else [None]))


def _linear(overload):
    m = _Maker(overload)
    basic = _LINEAR_CASES[""]
    for dtype in _dtypes(overload.op):
        m.add("", dtype, _linear_operands(m, basic, dtype), "sweep")
    for dtype in STRUCTURE_DTYPES:
        for case, shapes in list(_LINEAR_CASES.items())[1:]:
            m.add(case, dtype, _linear_operands(m, shapes, dtype), "structure")
        for layout in LAYOUTS:
            shapes = ((6, 5), (3, 5), (3,))
            m.add(layout, dtype, _linear_operands(m, shapes, dtype, (layout, "transposed")), "structure")
    m.add(
        "float64",
        torch.float32,
        m.operands([((4, 5), torch.float32, "contiguous"), ((3, 5), torch.float64, "contiguous")]),
        "mixed",
    )
    m.add("large", torch.float32, _linear_operands(m, ((96, 512), (256, 512), (256,)), torch.float32), "large")
    return m.samples


GENERATORS = {
    "gemm": _gemm,
    "linear": _linear,
    "binary": _binary,
    "unary": _unary,
    "reduction": _reduction,
    "loss": _loss,
}


# ---------------------------------------------------------------------------------------------- derived forms


def _numbers_in(sample, overload, positions, number):
    """The tensor form's sample with Python numbers at the number form's positions."""

    def build(device):
        args, kwargs = sample.build(device)
        args = list(args)
        for i in positions:
            args[i] = number
        return tuple(args), kwargs

    return Sample(overload, f"{sample.name}-{number!r}", sample.dtype, build, sample.tags)


def _number_samples(overload):
    """The tensor form's samples with numbers: each dtype's basic sample with each of
    OPERAND_NUMBERS (within the argument's domain), the others with one, in turn."""
    base, positions = overload.tensor_form()
    names = [base.arguments[i].name for i in positions]
    values = OPERAND_NUMBERS
    for name in names:
        values = _numbers_for(overload.op, name, values)
    samples = []
    for i, sample in enumerate(samples_of(base)):
        for number in values if "sweep" in sample.tags else [values[i % len(values)]]:
            samples.append(_numbers_in(sample, overload, positions, number))
    return samples


def _empty_out(result, how):
    """An out= tensor for a result: "contiguous", "transposed" (the dims' order reversed),
    "resized" (no elements: the op resizes it) or "wider" (float64 where the result is floating)."""
    if how == "resized":
        return torch.empty(0, dtype=result.dtype, device=result.device)
    if how == "wider" and result.is_floating_point():
        return torch.empty(result.shape, dtype=torch.float64, device=result.device)
    if how == "transposed" and result.dim() > 1:
        dims = list(reversed(range(result.dim())))
        return torch.empty(result.shape[::-1], dtype=result.dtype, device=result.device).permute(dims)
    return torch.empty_like(result, memory_format=torch.contiguous_format)


OUT_KINDS = ("contiguous", "transposed", "resized", "wider")


def _out_samples(overload):
    """The functional form's samples, each with an out= of one of OUT_KINDS in turn."""
    samples = []
    for i, sample in enumerate(samples_of(overload.functional())):
        how = OUT_KINDS[i % len(OUT_KINDS)]

        def build(device, sample=sample, how=how):
            args, kwargs = sample.build(device)
            try:
                result = sample.expected(args, kwargs)
            except Exception:  # noqa: BLE001 - torch rejects the call: any out= will do
                result = torch.empty(0, device=device)
            return args, dict(kwargs, out=_empty_out(result, how))

        samples.append(Sample(overload, f"{sample.name}-out-{how}", sample.dtype, build, sample.tags))
    return samples


def _inplace_samples(overload):
    """The functional form's samples, written into their first argument (torch rejects those whose
    result it cannot hold: a broadcast that grows it, a dtype it cannot be cast to)."""
    return [Sample(overload, s.name, s.dtype, s.build, s.tags) for s in samples_of(overload.functional())]


# ---------------------------------------------------------------------------------------------- internal ops


def pack_bits(flags):
    """A bool tensor as relu_and_mask's mask: bit i % 8 of byte i / 8 is element i in row-major order."""
    flat = flags.reshape(-1).to(torch.int32)
    padded = torch.zeros((flat.numel() + 7) // 8 * 8, dtype=torch.int32, device=flags.device)
    padded[: flat.numel()] = flat
    weights = 2 ** torch.arange(8, dtype=torch.int32, device=flags.device)
    return (padded.view(-1, 8) * weights).sum(1).to(torch.uint8)


def unpack_bits(mask, n):
    """The first n bits of a relu_and_mask mask, as a bool tensor."""
    shifts = torch.arange(8, dtype=torch.uint8, device=mask.device)
    return ((mask.view(-1, 1) >> shifts) & 1).view(-1)[:n].bool()


def _passes(x):
    """Where ReLU's gradient passes: x > 0 or NaN (where threshold_backward passes it)."""
    return ~(x <= 0)


def _broadcast_promoted(*tensors):
    dtype = torch.result_type(*tensors)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    return [t.to(dtype).expand(shape) for t in tensors]


def _mse_loss_and_grad(input, target, reduction=1):
    x, t = _broadcast_promoted(input, target)
    loss = F.mse_loss(x, t, reduction=_REDUCTIONS[reduction])
    return loss, torch.ops.aten.mse_loss_backward(torch.ones((), dtype=x.dtype, device=x.device), x, t, reduction)


def _pow_tensor_backward(grad, input, exponent, result):
    """grad * exponent * input ** (exponent - 1) and grad * result * log(input), computed in float64
    from the given tensors and rounded once to their dtype."""
    g, x, e, r = (t.double() for t in (grad, input, exponent, result))
    return (g * e * x.pow(e - 1)).to(grad.dtype), (g * r * x.log()).to(grad.dtype)


@dataclasses.dataclass(frozen=True)
class Internal:
    """An internal op's samples (cases: a name -> build(dtype, device) -> (args, kwargs)), torch's
    computation of its result, and how close that must be: "exact" (a selection), "elementwise"
    (one rounding) or "accumulated" (a sum)."""

    cases: dict
    reference: object
    kind: str


def _relu_backward_cases():
    def case(shape, layout="contiguous"):
        return lambda dtype, device: (
            (make_layout(shape, dtype, device, layout), make(shape, dtype, device, nonzero=True)),
            {},
        )

    return {
        "matrix": case((5, 7)),
        "0-dim": case(()),
        "empty": case((0, 3)),
        "transposed": case((6, 5), "transposed"),
        "strided": case((6, 5), "strided"),
    }


def _relu_and_mask_cases():
    def case(shape, layout="contiguous", specials=False):
        def build(dtype, device):
            x = make_layout(shape, dtype, device, layout)
            if specials:  # NaN, zeros of both signs and infinities (a view keeps x's layout)
                values = torch.tensor([float("nan"), -0.0, 0.0, float("inf"), -float("inf")], dtype=dtype)
                x.view(-1)[: values.numel()] = values.to(device)
            return (x,), {}

        return build

    return {
        "matrix": case((5, 7)),
        "0-dim": case(()),
        "empty": case((0,)),
        "byte": case((8,)),
        "bytes": case((9,)),
        "word": case((65,)),
        "3-d": case((2, 3, 5)),
        "specials": case((13,), specials=True),
        "transposed": case((6, 5), "transposed"),
        "strided": case((37, 29), "strided"),
    }


def _relu_mask_backward_cases():
    def case(shape, layout="contiguous"):
        def build(dtype, device):
            x = make(shape, dtype, device)
            return (make_layout(shape, dtype, device, layout), pack_bits(_passes(x))), {}

        return build

    return {
        "matrix": case((5, 7)),
        "0-dim": case(()),
        "empty": case((0,)),
        "bytes": case((9,)),
        "transposed": case((6, 5), "transposed"),
        "strided": case((6, 5), "strided"),
    }


def _mse_loss_backward_cases():
    def case(shape, reduction, layout="contiguous"):
        def build(dtype, device):
            grad = make(shape if reduction == 0 else (), dtype, device)
            return (grad, make_layout(shape, dtype, device, layout), make(shape, dtype, device), reduction), {}

        return build

    cases = {
        f"{shape_name}-reduction={r}": case(shape, r)
        for r in (0, 1, 2)
        for shape_name, shape in (("matrix", (5, 7)), ("0-dim", ()), ("empty", (0, 3)))
    }
    cases.update({"transposed": case((6, 5), 0, "transposed"), "strided": case((6, 5), 1, "strided")})
    return cases


def _mse_loss_and_grad_cases():
    def case(shapes, reduction=None, layout="contiguous", target_dtype=None):
        def build(dtype, device):
            x = make_layout(shapes[0], dtype, device, layout)
            t = make(shapes[1], target_dtype or dtype, device)
            return ((x, t) if reduction is None else (x, t, reduction)), {}

        return build

    return {
        "matrix": case([(5, 7), (5, 7)]),
        "sum": case([(5, 7), (5, 7)], 2),
        "mean": case([(5, 7), (5, 7)], 1),
        "0-dim": case([(), ()], 2),
        "empty": case([(0,), (0,)], 1),
        "transposed": case([(4, 3), (4, 3)], 2, "transposed"),
        "broadcast-float64-target": case([(4, 3), (3,)], 1, "transposed", torch.float64),
    }


def _pow_tensor_backward_cases():
    def case(shape, layout="contiguous"):
        def build(dtype, device):
            x = make_layout(shape, dtype, device, layout, positive=True)
            e = make(shape, dtype, device)
            return (make(shape, dtype, device), x, e, torch.pow(x, e)), {}

        return build

    return {"matrix": case((5, 7)), "0-dim": case(()), "empty": case((0, 3)), "transposed": case((6, 5), "transposed")}


def _layer_cases(cases, build):
    """Internal cases of the fused linear ops from _LINEAR_CASES (and layouts): build(shapes, dtype,
    device, layouts) -> (args, kwargs)."""
    out = {name or "matrix": (lambda dtype, device, s=s: build(s, dtype, device)) for name, s in cases.items()}
    for layout in ("transposed", "strided"):
        out[layout] = lambda dtype, device, layout=layout: build(
            ((6, 5), (3, 5), (3,)), dtype, device, (layout, layout)
        )
    return out


def _tensors(shapes, dtype, device, layouts=("contiguous", "contiguous")):
    x, w, b = shapes
    return (
        make_layout(x, dtype, device, layouts[0]),
        make_layout(w, dtype, device, layouts[1]),
        make(b, dtype, device) if b is not None else None,
    )


def _linear_relu_cases():
    return _layer_cases(
        _LINEAR_CASES,
        lambda shapes, dtype, device, layouts=None: (
            _tensors(shapes, dtype, device, layouts or ("contiguous", "contiguous")),
            {},
        ),
    )


def _linear_gradients(grad, input, weight, result, output_mask):
    """The reference of linear_backward: torch's ops on the 2-D views."""
    w = weight if weight.dim() == 2 else weight.unsqueeze(0)
    rows = math.prod(input.shape[:-1])
    g = grad.reshape(rows, w.shape[0])
    if result is not None:
        g = torch.ops.aten.threshold_backward(g, result.reshape(g.shape), 0)
    x = input.reshape(rows, w.shape[1])
    return (
        (g @ w).reshape(input.shape) if output_mask[0] else None,
        (g.t() @ x).reshape(weight.shape) if output_mask[1] else None,
        g.sum(0) if output_mask[2] else None,
    )


def _linear_backward_cases():
    def build(shapes, dtype, device, layouts=("contiguous", "contiguous"), relu=True, mask=(True, True, True)):
        x, w, b = _tensors(shapes, dtype, device, layouts)
        result = torch.relu(F.linear(x, w, b)) if relu else None
        grad = make(F.linear(x, w).shape, dtype, device)
        return (grad, x, w, result, list(mask)), {}

    cases = _layer_cases({k: v for k, v in _LINEAR_CASES.items() if k != "batch-bias"}, build)
    cases["no-relu"] = lambda dtype, device: build(_LINEAR_CASES[""], dtype, device, relu=False)
    cases["input-only"] = lambda dtype, device: build(_LINEAR_CASES[""], dtype, device, mask=(True, False, False))
    cases["weight-only"] = lambda dtype, device: build(_LINEAR_CASES["3-d"], dtype, device, mask=(False, True, False))
    cases["bias-only"] = lambda dtype, device: build(_LINEAR_CASES["primes"], dtype, device, mask=(False, False, True))
    return cases


# (input, w1, b1, w2, b2) shapes of the MLP: in 7, hidden 6, out 3 unless the case says.
_MLP_CASES = {
    "matrix": ((5, 7), (6, 7), (6,), (3, 6), (3,)),
    "no-bias": ((5, 7), (6, 7), None, (3, 6), None),
    "vector": ((7,), (6, 7), (6,), (3, 6), (3,)),
    "3-d": ((2, 3, 7), (6, 7), (6,), (3, 6), (3,)),
    "ones": ((1, 1), (1, 1), (1,), (1, 1), (1,)),
    "primes": ((13, 29), (17, 29), (17,), (11, 17), (11,)),
    "hidden-129": ((3, 11), (129, 11), (129,), (2, 129), (2,)),
    "hidden-100": ((64, 100), (100, 100), (100,), (10, 100), (10,)),
    "empty-batch": ((0, 7), (6, 7), (6,), (3, 6), (3,)),
    "empty-hidden": ((5, 7), (0, 7), (0,), (3, 0), (3,)),
}


def _mlp_tensors(shapes, dtype, device, layout="contiguous"):
    return tuple(
        None if s is None else make_layout(s, dtype, device, layout if len(s) == 2 else "contiguous") for s in shapes
    )


def _mlp_reference(x, w1, b1, w2, b2):
    return F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)


def _mlp_cases():
    cases = {name: (lambda dtype, device, s=s: (_mlp_tensors(s, dtype, device), {})) for name, s in _MLP_CASES.items()}
    cases["transposed"] = lambda dtype, device: (_mlp_tensors(_MLP_CASES["matrix"], dtype, device, "transposed"), {})
    return cases


def _mlp_forward_reference(x, w1, b1, w2, b2):
    hidden = torch.relu(F.linear(x, w1, b1))
    return F.linear(hidden, w2, b2), hidden


def _mlp_gradients(grad, x, w1, w2, hidden, output_mask):
    """The reference of mlp_backward: the two layers' gradients by _linear_gradients."""
    grad_hidden, grad_w2, grad_b2 = _linear_gradients(grad, hidden, w2, None, (True, True, True))
    grad_input, grad_w1, grad_b1 = _linear_gradients(grad_hidden, x, w1, hidden, (True, True, True))
    grads = (grad_input, grad_w1, grad_b1, grad_w2, grad_b2)
    return tuple(g if want else None for g, want in zip(grads, output_mask))


def _mlp_backward_cases():
    def build(shapes, dtype, device, layout="contiguous", mask=(True,) * 5):
        x, w1, b1, w2, _ = _mlp_tensors(shapes, dtype, device, layout)
        hidden = torch.relu(F.linear(x, w1, b1))
        grad = make(F.linear(hidden, w2).shape, dtype, device)
        return (grad, x, w1, w2, hidden, list(mask)), {}

    cases = {name: (lambda dtype, device, s=s: build(s, dtype, device)) for name, s in _MLP_CASES.items()}
    cases["transposed"] = lambda dtype, device: build(_MLP_CASES["matrix"], dtype, device, "transposed")
    cases["weights-only"] = lambda dtype, device: build(
        _MLP_CASES["primes"], dtype, device, mask=(False, True, True, True, True)
    )
    cases["second-layer-only"] = lambda dtype, device: build(
        _MLP_CASES["matrix"], dtype, device, mask=(False, False, False, True, False)
    )
    return cases


def _relu_mask_backward(grad, mask):
    return torch.where(unpack_bits(mask, grad.numel()).view(grad.shape), grad, torch.zeros_like(grad))


INTERNAL = {
    "relu_backward": Internal(_relu_backward_cases(), lambda g, r: torch.ops.aten.threshold_backward(g, r, 0), "exact"),
    "relu_and_mask": Internal(_relu_and_mask_cases(), lambda x: (torch.relu(x), pack_bits(_passes(x))), "exact"),
    "relu_mask_backward": Internal(_relu_mask_backward_cases(), _relu_mask_backward, "exact"),
    "mse_loss_backward": Internal(_mse_loss_backward_cases(), torch.ops.aten.mse_loss_backward, "elementwise"),
    "mse_loss_and_grad": Internal(_mse_loss_and_grad_cases(), _mse_loss_and_grad, "accumulated"),
    "pow_tensor_backward": Internal(_pow_tensor_backward_cases(), _pow_tensor_backward, "elementwise"),
    "linear_relu": Internal(_linear_relu_cases(), lambda x, w, b: torch.relu(F.linear(x, w, b)), "accumulated"),
    "linear_backward": Internal(_linear_backward_cases(), _linear_gradients, "accumulated"),
    "mlp": Internal(_mlp_cases(), _mlp_reference, "accumulated"),
    "mlp_forward": Internal(_mlp_cases(), _mlp_forward_reference, "accumulated"),
    "mlp_backward": Internal(_mlp_backward_cases(), _mlp_gradients, "accumulated"),
}


def _internal(overload):
    """Every dtype of the op on its first case, float32 and float64 on all of them."""
    m, entry = _Maker(overload), hand_written(overload.op)
    first = next(iter(entry.cases))
    for dtype in _dtypes(overload.op):
        for case, build in entry.cases.items():
            if case == first or dtype in STRUCTURE_DTYPES:
                m.add(
                    case,
                    dtype,
                    lambda device, build=build, dtype=dtype: build(dtype, device),
                    "sweep" if case == first else "structure",
                )
    return m.samples


# ---------------------------------------------------------------------------------------------- optimizer steps

# The parameters of an optimizer sample: awkward sizes, and a transposed one (its gradient and state
# laid out as it is, as autograd and torch.optim make them).
_OPTIMIZER_PARAMS = (
    ((5, 7), "contiguous"),
    ((0,), "contiguous"),
    ((1,), "contiguous"),
    ((13,), "contiguous"),
    ((6, 5), "transposed"),
)


def _optimizer_tensors(dtype, device, **kw):
    return [make_layout(shape, dtype, device, layout, **kw) for shape, layout in _OPTIMIZER_PARAMS]


def _sgd_cases():
    def case(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False, first=False, lr=0.1):
        def build(dtype, device):
            params, grads = _optimizer_tensors(dtype, device), _optimizer_tensors(dtype, device)
            buffers = _optimizer_tensors(dtype, device) if momentum else []
            options = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
            options.update(weight_decay=weight_decay, maximize=maximize, is_first_step=first)
            return (params, grads, buffers), options

        return build

    return {
        "plain": case(),
        "momentum": case(momentum=0.9, dampening=0.1, weight_decay=0.01),
        "first-step": case(momentum=0.9, dampening=0.5, first=True),
        "nesterov": case(momentum=0.9, nesterov=True, maximize=True),
        "nesterov-first-step": case(momentum=0.5, nesterov=True, weight_decay=0.1, first=True),
    }


def _adam_cases():
    def case(
        step=0.0,
        amsgrad=False,
        weight_decay=0.0,
        decoupled=False,
        maximize=False,
        beta1=0.9,
        steps_on=None,
        step_dtype=torch.float32,
    ):
        def build(dtype, device):
            params, grads = _optimizer_tensors(dtype, device), _optimizer_tensors(dtype, device)
            exp_avgs = _optimizer_tensors(dtype, device)
            exp_avg_sqs = _optimizer_tensors(dtype, device, positive=True)
            max_sqs = _optimizer_tensors(dtype, device, positive=True) if amsgrad else []
            steps = [torch.tensor(step, dtype=step_dtype, device=steps_on or "cpu") for _ in params]
            options = dict(lr=1e-2, beta1=beta1, beta2=0.999, weight_decay=weight_decay, eps=1e-8)
            options.update(amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled)
            return (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps), options

        return build

    return {
        "first-step": case(),
        "later-step": case(step=7.0, weight_decay=0.1),
        "amsgrad-maximize": case(step=2.0, amsgrad=True, maximize=True),
        "adamw": case(step=3.0, weight_decay=0.05, decoupled=True, amsgrad=True),
        "small-beta1": case(step=1.0, beta1=0.3),  # lerp's other form: weight 1 - beta1 >= 0.5
        "float64-steps": case(step=4.0, step_dtype=torch.float64),
    }


def _torch_sgd(params, grads, momentum_buffers, *, is_first_step, **options):
    """torch.optim's for-loop SGD on the given tensors: what fused_sgd_ writes (params, buffers).
    On the first step torch makes the buffers: the sample's stand in for them in the result."""
    buffers = ([None] * len(params) if is_first_step else list(momentum_buffers)) if options["momentum"] else []
    importlib.import_module("torch.optim.sgd").sgd(params, grads, buffers, foreach=False, fused=False, **options)
    return (*params, *buffers)


def _torch_adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, decoupled_weight_decay, **options
):
    """torch.optim's for-loop Adam or AdamW on the given tensors: what fused_adam_ writes. torch 2.4
    has AdamW's own function; later releases take decoupled_weight_decay."""
    step = importlib.import_module("torch.optim.adam").adam
    if "decoupled_weight_decay" in inspect.signature(step).parameters:
        step = functools.partial(step, decoupled_weight_decay=decoupled_weight_decay)
    elif decoupled_weight_decay:
        step = importlib.import_module("torch.optim.adamw").adamw
    lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps)
    step(*lists, foreach=False, fused=False, capturable=False, differentiable=False, **options)
    return (*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs, *state_steps)


OPTIMIZERS = {
    "fused_sgd": Internal(_sgd_cases(), _torch_sgd, "elementwise"),
    "fused_adam": Internal(_adam_cases(), _torch_adam, "elementwise"),
}
GENERATORS["optimizer"] = _internal

# The kinds whose samples are written by hand, by op name.
HAND_WRITTEN_KINDS = ("internal", "optimizer")


def hand_written(op):
    return (INTERNAL if op.kind == "internal" else OPTIMIZERS)[op.name]


def written(overload, args, kwargs):
    """What an out= or in-place call writes: its out= tensor, its first argument, or for an
    optimizer step every tensor of its written lists, in argument order (as its reference returns them)."""
    if overload.is_out:
        return kwargs["out"]
    if overload.op.kind == "optimizer":
        lists = [v for a, v in zip(overload.arguments, args) if a.alias_info is not None and a.alias_info.is_write]
        return tuple(t for tensors in lists for t in tensors)
    return args[0]


# ---------------------------------------------------------------------------------------------- selection


@functools.cache
def samples_of(overload):
    """Every sample of an overload."""
    if overload.op.kind in HAND_WRITTEN_KINDS:
        return tuple(_internal(overload))
    if overload.is_out:
        return tuple(_out_samples(overload))
    if overload.is_inplace:
        return tuple(_inplace_samples(overload))
    if overload.number:
        return tuple(_number_samples(overload))
    return tuple(GENERATORS[overload.op.kind](overload))


def all_samples():
    return [s for o in OVERLOADS for s in samples_of(o)]


def on_devices(samples):
    """pytest parameters (sample, device) for every device of the sample's op: the CPU always,
    others skipped with a reason where they are absent."""
    params = []
    for sample in samples:
        for device in DEVICES:
            name = device if isinstance(device, str) else device.values[0]
            if name in sample.overload.op.devices:
                marks = () if isinstance(device, str) else device.marks
                params.append(pytest.param(sample, name, id=f"{sample.id}-{name}", marks=marks))
    return params


def gradcheck_samples():
    """The float64 samples for gradient checks of the differentiable overloads."""
    return [
        s
        for s in all_samples()
        if s.overload.differentiable and "grad" in s.tags and s.dtype == torch.float64 and s.valid
    ]


def opcheck_samples():
    """The samples for torch.library.opcheck (of every overload but the number forms' out= and
    in-place forms through their functional ones)."""
    return [s for s in all_samples() if "opcheck" in s.tags and s.valid]


def profile_samples():
    """The samples for the profiler: every dtype's basic sample, the options and the large ones."""
    return [s for s in all_samples() if "profile" in s.tags and s.valid]


def reduced_count(sample, args, kwargs):
    """How many terms each element of the result sums (for a tolerance): the inner dimension of
    a product, the reduced elements of a reduction or a loss."""
    kind = sample.overload.op.kind
    if kind in ("gemm", "linear"):
        return args[0].shape[-1]
    if kind == "reduction":
        dim, x = kwargs.get("dim"), args[0]
        return math.prod(x.shape[d] for d in dim) if dim and x.dim() else max(x.numel(), 1)
    return max(max((a.numel() for a in args if isinstance(a, torch.Tensor)), default=1), 1)


# ---------------------------------------------------------------------------------------------- functions by kind


def functions(kind, inplace=False):
    """The public functions of the table's ops of a kind: the functional ones, or the in-place ones."""
    return [name for name, op in optable.public_functions() if op.kind == kind and name.endswith("_") == inplace]


def binary_cases():
    """(public function, keyword arguments) for each binary function that takes two tensors:
    once with the defaults, and once for each option value (add with alpha=2, div with
    rounding_mode="floor", ...)."""
    cases = []
    for name in functions("binary"):
        forms = [
            o
            for o in OVERLOADS
            if o.public_name == name
            and not o.number
            and not o.mutating
            and [str(a.type) for a in _positional(o)] == ["Tensor", "Tensor"]
        ]
        if forms:
            cases += [(name, {})] + [(name, {argument: value}) for argument, value in _options(forms[0])]
    return cases


def domain(name, argument):
    """make() options for an argument of a public function (nonzero divisors, positive logarithms)."""
    return _domain(optable.BY_NAME[name.rstrip("_")], argument)
