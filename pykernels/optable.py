"""The op table: every pykernels op, once.

Each entry is what ATen keeps in ``native_functions.yaml`` and ``derivatives.yaml`` for its own
ops: the schemas of the op's overloads, the devices and dtypes its kernels take, its public
functions, the torch callables the drop-in mode sends to it, the ATen ops it replaces, and where
its derivative is written. Everything that lists ops derives from this file:

- ``tools/gen_ops.py`` generates, and checks in, the C++ registrations (schemas, device kernels,
  autograd and version-counter kernels), the typed Python bindings and ``pykernels/_api.py``, the
  public functions; CI fails when they are stale;
- at import, ``pykernels`` takes ``__all__`` from it, the drop-in mode its routes, the benchmarks
  their cases; the tests build their op database from it.

This module is plain data: the generator reads it without importing torch.

Overloads follow ATen's conventions. An overload whose name ends in ``_`` writes its first
argument in place; ``out`` overloads write ``out``; both are ``Tensor(a!)`` in the schema and
return nothing (a custom op may not return an alias of an input: the public function returns the
written tensor). ``numbers`` are the same op with a Python number where a tensor stands, as
``add.Scalar`` is in ATen: they are generated, turning the number into a wrapped-number tensor
exactly as torch's own bindings do, so type promotion is ATen's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# dtype names as torch spells them (torch.<name>).
FLOATING = ("float16", "bfloat16", "float32", "float64")
INTEGRAL = ("uint8", "int8", "int16", "int32", "int64")
ALL = ("bool",) + INTEGRAL + FLOATING
DEVICES = ("cpu", "cuda")

# Where the derivatives are written: one C++ function per differentiable overload, named after it.
CPP = "csrc/autograd/derivatives.cpp"
FUSED = "csrc/autograd/fused.cpp"  # the fused linear layers and MLP


@dataclass(frozen=True)
class Bench:
    """A benchmark case of a public function: its positional arguments, where a tuple of ints is a
    random float32 tensor of that shape and a number is itself. ``suites`` are the benchmark suites
    it belongs to; ``target``, the ratio (torch time / pykernels time) it should reach in the
    targets suite ("cpu")."""

    args: tuple
    suites: tuple = ("default",)
    target: float | None = None
    function: str | None = None  # the public function timed, when not the op's namesake (mul_)


N = 1 << 20  # elements of a memory-bound case: well beyond the caches
SMALL = 64  # elements of a per-call case: the call's overhead is what is timed


@dataclass(frozen=True)
class Op:
    name: str
    # "gemm", "linear", "binary", "unary", "reduction", "loss", "internal", "optimizer": how tests and
    # fakes treat it
    kind: str
    overloads: tuple  # schemas with kernels of their own
    numbers: tuple = ()  # schemas of the number forms (generated from the tensor forms)
    # public function -> (signature, docstring[, hand-written function that adapts its arguments])
    public: dict = field(default_factory=dict)
    dtypes: tuple = ALL
    devices: tuple = DEVICES
    # The torch callables the drop-in mode sends to this op's public functions, by name: `name_` and
    # `__iname__` to the in-place function (computed out of place where the op has none),
    # `__rname__` with its operands swapped.
    torch: tuple = ()
    aten: tuple = ()  # the ATen ops this op replaces: what must not run when it is used
    derivative: str | None = CPP
    integer_to_float: bool = False  # integer inputs give the default float dtype (true division, exp, ...)
    positive: bool = False  # defined for positive inputs only (log, sqrt): tests and benchmarks draw them so
    bench: tuple = ()  # Bench cases, timed beside torch by `python -m pykernels bench`


OPS = (
    # ---- matmul family ----------------------------------------------------------------------------------
    Op(
        "mm",
        "gemm",
        ("mm(Tensor input, Tensor mat2) -> Tensor",),
        public={"mm": ("mm(input, mat2)", "Matrix product of two 2-D tensors, like ``torch.mm``.")},
        torch=("torch.mm", "torch.Tensor.mm"),
        aten=("aten::mm", "aten::addmm"),
        bench=(
            Bench(((64, 1000), (1000, 100)), ("default", "quick", "cpu"), 1.3),
            Bench(((256, 256), (256, 256)), ("default", "quick")),
            Bench(((512, 512), (512, 512))),
            Bench(((1024, 1024), (1024, 1024)), ("default", "cpu"), 1.0),
            Bench(((8, 8), (8, 8)), ("percall",)),
        ),
    ),
    Op(
        "bmm",
        "gemm",
        ("bmm(Tensor input, Tensor mat2) -> Tensor",),
        public={"bmm": ("bmm(input, mat2)", "Batched matrix product of two 3-D tensors, like ``torch.bmm``.")},
        torch=("torch.bmm", "torch.Tensor.bmm"),
        aten=("aten::bmm", "aten::baddbmm"),
        bench=(
            Bench(((32, 128, 128), (32, 128, 256)), ("default", "cpu"), 1.15),
            Bench(((8, 64, 64), (8, 64, 64)), ("quick",)),
        ),
    ),
    Op(
        "matmul",
        "gemm",
        ("matmul(Tensor input, Tensor other) -> Tensor",),
        public={
            "matmul": (
                "matmul(input, other)",
                "Matrix product with ``torch.matmul``'s rules for 1-D operands and broadcast batch dimensions.",
            )
        },
        torch=("torch.matmul", "torch.Tensor.matmul", "torch.Tensor.__matmul__"),
        aten=("aten::matmul", "aten::mv", "aten::dot", "aten::mm", "aten::bmm"),
        bench=(
            Bench(((4, 1, 128, 128), (8, 128, 128))),
            Bench(((2, 1, 64, 64), (4, 64, 64)), ("quick",)),
        ),
    ),
    # ---- fused linear layers and the two-layer MLP -------------------------------------------------------
    # The GEMM adds the bias (and, for linear_relu, applies the ReLU) as it stores its result; the backward
    # masks grad_output and sums the bias gradient in the pass that packs it for the weight gradient.
    # float32 and float64 run the fused kernels, float16 and bfloat16 the mm, add and relu kernels.
    Op(
        "linear",
        "linear",
        ("linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor",),
        public={
            "linear": (
                "linear(input, weight, bias=None)",
                "``input @ weight.T + bias``, like ``torch.nn.functional.linear``.",
            )
        },
        dtypes=FLOATING,
        torch=("torch.nn.functional.linear",),
        aten=("aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::add"),
        derivative=FUSED,
        bench=(Bench(((64, 1000), (100, 1000), (100,))),),
    ),
    # relu(linear(input, weight, bias)): nn.Linear followed by nn.ReLU.
    Op(
        "linear_relu",
        "internal",
        ("linear_relu(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor",),
        dtypes=FLOATING,
        aten=("aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::add", "aten::relu"),
        derivative=FUSED,
    ),
    # The gradients of linear (result None) or linear_relu (result: its output, whose positive elements
    # pass grad_output): (grad_input, grad_weight, grad_bias), each where output_mask asks for it (None
    # otherwise); grad_bias has one value per output feature.
    Op(
        "linear_backward",
        "internal",
        (
            "linear_backward(Tensor grad_output, Tensor input, Tensor weight, Tensor? result, bool[3] output_mask)"
            " -> (Tensor, Tensor, Tensor)",
        ),
        dtypes=FLOATING,
        aten=("aten::mm", "aten::sum", "aten::threshold_backward"),
        derivative=None,
    ),
    # The two-layer MLP relu(input @ w1.T + b1) @ w2.T + b2 as one op: nn.Sequential(Linear, ReLU, Linear).
    Op(
        "mlp",
        "internal",
        ("mlp(Tensor input, Tensor w1, Tensor? b1, Tensor w2, Tensor? b2) -> Tensor",),
        dtypes=FLOATING,
        aten=("aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::relu", "aten::threshold_backward"),
        derivative=FUSED,
    ),
    # The MLP's forward for training: (output, hidden), hidden = relu(input @ w1.T + b1), which its
    # backward reads.
    Op(
        "mlp_forward",
        "internal",
        ("mlp_forward(Tensor input, Tensor w1, Tensor? b1, Tensor w2, Tensor? b2) -> (Tensor, Tensor)",),
        dtypes=FLOATING,
        aten=("aten::linear", "aten::addmm", "aten::mm", "aten::matmul", "aten::relu"),
        derivative=None,
    ),
    # The MLP's gradients from grad_output: (grad_input, grad_w1, grad_b1, grad_w2, grad_b2), each where
    # output_mask asks for it (None otherwise).
    Op(
        "mlp_backward",
        "internal",
        (
            "mlp_backward(Tensor grad_output, Tensor input, Tensor w1, Tensor w2, Tensor hidden, "
            "bool[5] output_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
        ),
        dtypes=FLOATING,
        aten=("aten::mm", "aten::sum", "aten::threshold_backward"),
        derivative=None,
    ),
    # ---- elementwise: broadcasting and torch's type promotion -------------------------------------------
    Op(
        "add",
        "binary",
        (
            "add(Tensor input, Tensor other, *, Scalar alpha=1) -> Tensor",
            "add.out(Tensor input, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> ()",
            "add_(Tensor(a!) input, Tensor other, *, Scalar alpha=1) -> ()",
        ),
        numbers=(
            "add.Scalar(Tensor input, Scalar other, *, Scalar alpha=1) -> Tensor",
            "add.Scalar_Tensor(Scalar input, Tensor other, *, Scalar alpha=1) -> Tensor",
            "add.Scalar_out(Tensor input, Scalar other, *, Scalar alpha=1, Tensor(a!) out) -> ()",
            "add_.Scalar(Tensor(a!) input, Scalar other, *, Scalar alpha=1) -> ()",
        ),
        public={
            "add": (
                "add(input, other, *, alpha=1, out=None)",
                "``input + alpha * other``, like ``torch.add``; either side may be a Python number.",
            ),
            "add_": ("add_(input, other, *, alpha=1)", "In-place ``input += alpha * other``, like ``Tensor.add_``."),
        },
        torch=(
            "torch.add",
            "torch.Tensor.add",
            "torch.Tensor.__add__",
            "torch.Tensor.__radd__",
            "torch.Tensor.add_",
            "torch.Tensor.__iadd__",
        ),
        aten=("aten::add", "aten::add_"),
        bench=(
            Bench(((N,), (N,)), ("default", "quick", "cpu"), 1.0),
            Bench(((16 * N,), (16 * N,))),
            Bench(((N,), 1.5), ("default", "quick")),
            Bench(((SMALL,), (SMALL,)), ("percall",)),
            Bench(((SMALL,), 1.5), ("percall",)),
        ),
    ),
    Op(
        "sub",
        "binary",
        (
            "sub(Tensor input, Tensor other, *, Scalar alpha=1) -> Tensor",
            "sub.out(Tensor input, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> ()",
            "sub_(Tensor(a!) input, Tensor other, *, Scalar alpha=1) -> ()",
        ),
        numbers=(
            "sub.Scalar(Tensor input, Scalar other, *, Scalar alpha=1) -> Tensor",
            "sub.Scalar_Tensor(Scalar input, Tensor other, *, Scalar alpha=1) -> Tensor",
            "sub.Scalar_out(Tensor input, Scalar other, *, Scalar alpha=1, Tensor(a!) out) -> ()",
            "sub_.Scalar(Tensor(a!) input, Scalar other, *, Scalar alpha=1) -> ()",
        ),
        public={
            "sub": ("sub(input, other, *, alpha=1, out=None)", "``input - alpha * other``, like ``torch.sub``."),
            "sub_": ("sub_(input, other, *, alpha=1)", "In-place ``input -= alpha * other``, like ``Tensor.sub_``."),
        },
        torch=(
            "torch.sub",
            "torch.subtract",
            "torch.Tensor.sub",
            "torch.Tensor.subtract",
            "torch.Tensor.__sub__",
            "torch.Tensor.sub_",
            "torch.Tensor.subtract_",
            "torch.Tensor.__isub__",
        ),
        aten=("aten::sub", "aten::sub_", "aten::rsub"),
        bench=(Bench(((N,), (N,))),),
    ),
    Op(
        "mul",
        "binary",
        (
            "mul(Tensor input, Tensor other) -> Tensor",
            "mul.out(Tensor input, Tensor other, *, Tensor(a!) out) -> ()",
            "mul_(Tensor(a!) input, Tensor other) -> ()",
        ),
        numbers=(
            "mul.Scalar(Tensor input, Scalar other) -> Tensor",
            "mul.Scalar_Tensor(Scalar input, Tensor other) -> Tensor",
            "mul.Scalar_out(Tensor input, Scalar other, *, Tensor(a!) out) -> ()",
            "mul_.Scalar(Tensor(a!) input, Scalar other) -> ()",
        ),
        public={
            "mul": ("mul(input, other, *, out=None)", "Elementwise product, like ``torch.mul``."),
            "mul_": ("mul_(input, other)", "In-place ``input *= other``, like ``Tensor.mul_``."),
        },
        torch=(
            "torch.mul",
            "torch.multiply",
            "torch.Tensor.mul",
            "torch.Tensor.multiply",
            "torch.Tensor.__mul__",
            "torch.Tensor.__rmul__",
            "torch.Tensor.mul_",
            "torch.Tensor.multiply_",
            "torch.Tensor.__imul__",
        ),
        aten=("aten::mul", "aten::mul_"),
        bench=(
            Bench(((4096, 1), (1, 4096))),
            Bench(((1024, 1), (1, 1024)), ("quick",)),
            Bench(((SMALL,), (SMALL,)), ("percall",), function="mul_"),
        ),
    ),
    Op(
        "div",
        "binary",
        (
            "div(Tensor input, Tensor other, *, str? rounding_mode=None) -> Tensor",
            "div.out(Tensor input, Tensor other, *, str? rounding_mode=None, Tensor(a!) out) -> ()",
            "div_(Tensor(a!) input, Tensor other, *, str? rounding_mode=None) -> ()",
        ),
        numbers=(
            "div.Scalar(Tensor input, Scalar other, *, str? rounding_mode=None) -> Tensor",
            "div.Scalar_Tensor(Scalar input, Tensor other, *, str? rounding_mode=None) -> Tensor",
            "div.Scalar_out(Tensor input, Scalar other, *, str? rounding_mode=None, Tensor(a!) out) -> ()",
            "div_.Scalar(Tensor(a!) input, Scalar other, *, str? rounding_mode=None) -> ()",
        ),
        public={
            "div": (
                "div(input, other, *, rounding_mode=None, out=None)",
                "Division like ``torch.div``: true division (integers give floats), or 'trunc' / 'floor'.",
            ),
            "div_": ("div_(input, other, *, rounding_mode=None)", "In-place division, like ``Tensor.div_``."),
        },
        torch=(
            "torch.div",
            "torch.divide",
            "torch.Tensor.div",
            "torch.Tensor.divide",
            "torch.Tensor.__truediv__",
            "torch.Tensor.div_",
            "torch.Tensor.divide_",
            "torch.Tensor.true_divide_",
            "torch.Tensor.__itruediv__",
            "torch.Tensor.__idiv__",
        ),
        aten=("aten::div", "aten::div_", "aten::reciprocal"),
        integer_to_float=True,
        bench=(Bench(((N,), (N,))),),
    ),
    Op(
        "pow",
        "binary",
        (
            "pow(Tensor input, Scalar exponent) -> Tensor",
            "pow.Tensor_Tensor(Tensor input, Tensor exponent) -> Tensor",
        ),
        numbers=("pow.Scalar(Scalar input, Tensor exponent) -> Tensor",),
        public={
            "pow": (
                "pow(input, exponent)",
                "``input ** exponent``, like ``torch.pow``: the exponent a number or a tensor, or a number base "
                "with a tensor exponent.",
            )
        },
        torch=("torch.pow", "torch.Tensor.pow", "torch.Tensor.__pow__", "torch.Tensor.__rpow__"),
        aten=("aten::pow", "aten::pow_", "aten::square"),
        bench=(Bench(((N,), 2), ("default", "quick")),),
    ),
    Op(
        "pow_tensor_backward",
        "internal",
        ("pow_tensor_backward(Tensor grad, Tensor input, Tensor exponent, Tensor result) -> (Tensor, Tensor)",),
        dtypes=FLOATING,
        derivative=None,
    ),
    Op(
        "neg",
        "unary",
        (
            "neg(Tensor input) -> Tensor",
            "neg.out(Tensor input, *, Tensor(a!) out) -> ()",
            "neg_(Tensor(a!) input) -> ()",
        ),
        public={
            "neg": ("neg(input, *, out=None)", "``-input``, like ``torch.neg``."),
            "neg_": ("neg_(input)", "In-place negation, like ``Tensor.neg_``."),
        },
        torch=(
            "torch.neg",
            "torch.negative",
            "torch.Tensor.neg",
            "torch.Tensor.negative",
            "torch.Tensor.__neg__",
            "torch.neg_",
            "torch.negative_",
            "torch.Tensor.neg_",
            "torch.Tensor.negative_",
        ),
        aten=("aten::neg", "aten::neg_"),
        bench=(Bench(((N,),)),),
    ),
    Op(
        "exp",
        "unary",
        ("exp(Tensor input) -> Tensor",),
        public={"exp": ("exp(input)", "Elementwise e**x, like ``torch.exp`` (integers give the default float dtype).")},
        torch=("torch.exp", "torch.Tensor.exp", "torch.exp_", "torch.Tensor.exp_"),
        aten=("aten::exp",),
        integer_to_float=True,
        bench=(Bench(((N,),), ("default", "quick")),),
    ),
    Op(
        "log",
        "unary",
        ("log(Tensor input) -> Tensor",),
        public={"log": ("log(input)", "Elementwise natural logarithm, like ``torch.log``.")},
        torch=("torch.log", "torch.Tensor.log", "torch.log_", "torch.Tensor.log_"),
        aten=("aten::log",),
        integer_to_float=True,
        positive=True,
        bench=(Bench(((N,),)),),
    ),
    Op(
        "sqrt",
        "unary",
        ("sqrt(Tensor input) -> Tensor",),
        public={"sqrt": ("sqrt(input)", "Elementwise square root, like ``torch.sqrt``.")},
        torch=("torch.sqrt", "torch.Tensor.sqrt", "torch.sqrt_", "torch.Tensor.sqrt_"),
        aten=("aten::sqrt",),
        integer_to_float=True,
        positive=True,
        bench=(Bench(((N,),)),),
    ),
    # ---- reductions --------------------------------------------------------------------------------------
    Op(
        "sum",
        "reduction",
        ("sum(Tensor input, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",),
        public={
            "sum": (
                "sum(input, dim=None, keepdim=False, *, dtype=None)",
                "Sum over all elements or over ``dim``, like ``torch.sum`` (integers sum to int64).",
            )
        },
        torch=("torch.sum", "torch.Tensor.sum"),
        aten=("aten::sum",),
        bench=(
            Bench(((2048, 2048),)),
            Bench(((2048, 2048), 0)),
            Bench(((2048, 2048), 1)),
            Bench(((1024, 1024), 1), ("quick",)),
        ),
    ),
    Op(
        "mean",
        "reduction",
        ("mean(Tensor input, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",),
        public={
            "mean": (
                "mean(input, dim=None, keepdim=False, *, dtype=None)",
                "Mean over all elements or over ``dim``, like ``torch.mean`` (floating dtypes only).",
            )
        },
        torch=("torch.mean", "torch.Tensor.mean"),
        aten=("aten::mean",),
        bench=(Bench(((2048, 2048),)), Bench(((1024, 1024),), ("quick",))),
    ),
    # ---- ReLU --------------------------------------------------------------------------------------------
    Op(
        "relu",
        "unary",
        ("relu(Tensor input) -> Tensor", "relu_(Tensor(a!) input) -> ()"),
        public={
            "relu": ("relu(input)", "``max(input, 0)`` elementwise, like ``torch.relu``."),
            "relu_": ("relu_(input)", "In-place ReLU, like ``torch.relu_``."),
        },
        dtypes=INTEGRAL + FLOATING,
        torch=("torch.relu", "torch.Tensor.relu", "torch.relu_", "torch.Tensor.relu_"),
        aten=("aten::relu", "aten::relu_", "aten::clamp_min", "aten::clamp_min_", "aten::threshold_backward"),
        bench=(Bench(((N,),)), Bench(((SMALL,),), ("percall",))),
    ),
    # grad_output where the ReLU's output is positive, else 0 (torch's threshold_backward at 0).
    Op(
        "relu_backward",
        "internal",
        ("relu_backward(Tensor grad_output, Tensor result) -> Tensor",),
        dtypes=INTEGRAL + FLOATING,
        aten=("aten::threshold_backward",),
    ),
    # ReLU and the bit mask its backward needs (uint8, bit i % 8 of byte i / 8 set where element i,
    # in row-major order, is > 0 or NaN): the training forward keeps the mask, not the output.
    Op(
        "relu_and_mask",
        "internal",
        ("relu_and_mask(Tensor input) -> (Tensor, Tensor)",),
        dtypes=FLOATING,
        devices=("cpu",),
        aten=("aten::relu",),
    ),
    Op(
        "relu_mask_backward",
        "internal",
        ("relu_mask_backward(Tensor grad_output, Tensor mask) -> Tensor",),
        dtypes=FLOATING,
        devices=("cpu",),
        aten=("aten::threshold_backward",),
    ),
    # ---- MSE loss; reduction: 0 none, 1 mean, 2 sum (torch's at::Reduction values) ------------------------
    Op(
        "mse_loss",
        "loss",
        ("mse_loss(Tensor input, Tensor target, int reduction=1) -> Tensor",),
        public={
            "mse_loss": (
                "mse_loss(input, target, size_average=None, reduce=None, reduction='mean')",
                "Mean squared error, like ``torch.nn.functional.mse_loss``.",
                "pykernels._adapters.mse_loss",
            )
        },
        dtypes=FLOATING,
        torch=("torch.nn.functional.mse_loss",),
        aten=("aten::mse_loss", "aten::mse_loss_backward"),
        bench=(Bench(((N,), (N,))),),
    ),
    Op(
        "mse_loss_backward",
        "internal",
        ("mse_loss_backward(Tensor grad_output, Tensor input, Tensor target, int reduction) -> Tensor",),
        dtypes=FLOATING,
        aten=("aten::mse_loss_backward",),
    ),
    # A reduced loss and its gradient with respect to input (for a loss gradient of 1), in one pass
    # over input and target: the training forward keeps what its backward would compute.
    Op(
        "mse_loss_and_grad",
        "internal",
        ("mse_loss_and_grad(Tensor input, Tensor target, int reduction=1) -> (Tensor, Tensor)",),
        dtypes=FLOATING,
        aten=("aten::mse_loss", "aten::mse_loss_backward"),
    ),
    # ---- optimizer steps: one call updates every parameter, as torch's _fused_sgd_ / _fused_adam_ do --------
    # Each computes, element by element, what torch.optim's for-loop implementation computes with one
    # ATen op after another; the optimizer's state is torch's own tensors. Lists: one entry per parameter,
    # or none where the option that needs them is off (momentum 0, amsgrad).
    # SGD; is_first_step: the momentum buffers are new and take the gradient as it is, as on torch's first step.
    Op(
        "fused_sgd",
        "optimizer",
        (
            "fused_sgd_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, *, float lr, "
            "float momentum, float dampening, bool nesterov, float weight_decay, bool maximize, "
            "bool is_first_step) -> ()",
        ),
        dtypes=("float32", "float64"),
        aten=("aten::_fused_sgd_", "aten::add_", "aten::mul_", "aten::_foreach_add_", "aten::_foreach_mul_"),
        derivative=None,
    ),
    # Adam, and AdamW with decoupled_weight_decay; state_steps are the step counters, which it increments.
    Op(
        "fused_adam",
        "optimizer",
        (
            "fused_adam_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
            "Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] state_steps, *, float lr, float beta1, float beta2, "
            "float weight_decay, float eps, bool amsgrad, bool maximize, bool decoupled_weight_decay) -> ()",
        ),
        dtypes=("float32", "float64"),
        aten=(
            "aten::_fused_adam_",
            "aten::_fused_adamw_",
            "aten::lerp_",
            "aten::addcmul_",
            "aten::addcdiv_",
            "aten::sqrt",
            "aten::maximum",
            "aten::_foreach_lerp_",
            "aten::_foreach_addcmul_",
            "aten::_foreach_addcdiv_",
        ),
        derivative=None,
    ),
)

BY_NAME = {op.name: op for op in OPS}


def public_functions():
    """(public name, op) for every public function, in table order."""
    return [(name, op) for op in OPS for name in op.public]
