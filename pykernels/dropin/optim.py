"""torch.optim's SGD, Adam and AdamW steps under the drop-in mode: one pykernels op per step.

``torch.optim.Adam.step()`` gathers the parameters, gradients and state into lists and hands them
to one of three functions of ``torch.optim.adam``, as its options choose: the for-loop
(``_single_tensor_adam``), foreach (``_multi_tensor_adam``) or fused (``_fused_adam``)
implementation; SGD likewise. A TorchFunctionMode sees only the ATen calls those make, one per
parameter and op. So while a drop-in mode is active these functions are replaced by routes that
run the whole step as one ``fused_sgd_`` or ``fused_adam_`` call (csrc/optimizer.cpp), which
computes what the for-loop implementation computes; the mode counts the call as routed, under
the name of the function it replaces. The optimizer's state stays torch's own tensors (the step
counters included, which the op increments), so ``state_dict()`` is torch's, both ways.

A route runs torch's function, unchanged, when no drop-in mode is active on the calling thread
(the routes are module attributes, which other threads see too), under ``torch.compile``, and for
what pykernels does not take: differentiable=True, grad_scale/found_inf (AMP's scaler), tensor
betas or weight decay, an lr tensor that requires grad or is read during CUDA graph capture,
capturable=True off CUDA (which torch rejects), complex, sparse, float16 or bfloat16 tensors,
tensor subclasses, parameters on several devices or on a device without pykernels kernels, and
any call the op rejects (it checks everything before it writes). Those count as fallen through,
with the reason.

The routes are installed when the first drop-in mode is entered and removed when the last one
exits, on any thread. torch 2.4 has AdamW's functions in ``torch.optim.adamw``; later releases
fold AdamW into Adam's (``decoupled_weight_decay=True``): both are routed where they exist.
"""

import functools
import importlib
import inspect
import numbers
import threading
import time

import torch

from .. import _compat
from .handlers import FallThrough, need

_ops = torch.ops.pykernels
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_DTYPES = (torch.float32, torch.float64)


def _backends():
    from .. import build_info  # imported here: the package is fully imported by the time a step runs

    return {b.lower() for b in build_info().get("backends", ["CPU"])}


_DEVICES = None  # device types with pykernels kernels, looked up on first use


_DROPIN = None  # the mode's class, looked up on first use: mode.py imports this module


def _active_mode():
    """The innermost drop-in mode active on this thread, or None."""
    global _DROPIN
    if _DROPIN is None:
        from .mode import DropIn

        _DROPIN = DropIn
    for mode in reversed(_compat.function_mode_stack()):
        if isinstance(mode, _DROPIN):
            return mode
    return None


# ---- arguments ------------------------------------------------------------------------------------
# (Every check runs on every step: the reasons are only formatted when a check fails.)


def _number(value, name):
    if type(value) is not float and (isinstance(value, torch.Tensor) or not isinstance(value, numbers.Real)):
        raise FallThrough(f"tensor {name}")
    return float(value)


def _lr(lr):
    """lr as a Python float; a 1-element tensor is read, as torch's for-loop reads it."""
    if not isinstance(lr, torch.Tensor):
        return _number(lr, "lr")
    need(lr.numel() == 1 and not lr.requires_grad, "lr tensor that requires grad")
    need(not (lr.is_cuda and torch.cuda.is_current_stream_capturing()), "lr tensor during CUDA graph capture")
    return lr.item()


def _device(params, *lists):
    """The device every parameter is on, after the checks that decide whether pykernels takes the
    tensors at all (the op checks the rest: shapes, dtypes, devices of the state, overlaps)."""
    global _DEVICES
    device = params[0].device
    if _DEVICES is None:
        _DEVICES = _backends()
    if device.type not in _DEVICES:
        raise FallThrough(f"{device.type} tensor")
    for p in params:
        if type(p) not in _PLAIN_TYPES:
            raise FallThrough(f"{type(p).__name__} parameter")
        if p.dtype not in _DTYPES:
            raise FallThrough(f"{p.dtype} parameter")
        if p.device != device:
            raise FallThrough("parameters on several devices")
    for tensors in lists:
        for t in tensors:
            if type(t) not in _PLAIN_TYPES:
                raise FallThrough(f"{type(t).__name__} argument")
            if t.layout is not torch.strided:
                raise FallThrough(f"{t.layout} tensor")
    return device


# ---- the steps --------------------------------------------------------------------------------------


def _sgd_step(params, grads, momentum_buffer_list, grad_scale, found_inf, options):
    """The step as one or two fused_sgd_ calls (two when only some momentum buffers are new: they
    take the first step's rule). Returns after the first call has written; FallThrough before."""
    need(grad_scale is None and found_inf is None, "grad_scale/found_inf")
    need(not options.get("has_sparse_grad"), "sparse gradient")
    lr = _lr(options["lr"])
    momentum = _number(options["momentum"], "momentum")
    scalars = dict(
        lr=lr,
        momentum=momentum,
        dampening=_number(options["dampening"], "dampening"),
        nesterov=bool(options["nesterov"]),
        weight_decay=_number(options["weight_decay"], "weight_decay"),
        maximize=bool(options["maximize"]),
    )
    buffers = [b for b in momentum_buffer_list if b is not None]
    _device(params, grads, buffers)
    if momentum == 0:
        _ops.fused_sgd_.default(params, grads, [], is_first_step=False, **scalars)
        return
    # New buffers, as torch's first step makes them (its clone of the gradient, here filled by the op).
    new = [i for i, b in enumerate(momentum_buffer_list) if b is None]
    made = {i: torch.empty_like(grads[i]) for i in new}
    groups = [
        (indices, first)
        for indices, first in (([i for i in range(len(params)) if i not in made], False), (new, True))
        if indices
    ]
    for k, (indices, first) in enumerate(groups):
        call = (
            [params[i] for i in indices],
            [grads[i] for i in indices],
            [made[i] if first else momentum_buffer_list[i] for i in indices],
        )
        if k == 0:
            _ops.fused_sgd_.default(*call, is_first_step=first, **scalars)
        else:
            try:
                _ops.fused_sgd_.default(*call, is_first_step=first, **scalars)
            except Exception as exc:  # the first call has written: torch can no longer take the step
                raise _AfterWrite(exc) from exc
    for i, buf in made.items():
        momentum_buffer_list[i] = buf


def _adam_step(decoupled_default, foreach):
    def step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, grad_scale, found_inf, options):
        need(grad_scale is None and found_inf is None, "grad_scale/found_inf")
        need(not options.get("differentiable"), "differentiable=True")
        capturable = bool(options.get("capturable"))
        # torch's foreach implementation rejects a tensor lr without capturable: let it say so
        need(not (foreach and isinstance(options["lr"], torch.Tensor) and not capturable), "tensor lr")
        amsgrad = bool(options["amsgrad"])
        device = _device(params, grads, exp_avgs, exp_avg_sqs, state_steps, max_exp_avg_sqs if amsgrad else ())
        if capturable:  # torch asserts every counter is on the params' device, and that one supports capture
            need(device.type == "cuda" and all(s.device == device for s in state_steps), "capturable=True")
        _ops.fused_adam_.default(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs if amsgrad else [],
            state_steps,
            lr=_lr(options["lr"]),
            beta1=_number(options["beta1"], "beta1"),
            beta2=_number(options["beta2"], "beta2"),
            weight_decay=_number(options["weight_decay"], "weight_decay"),
            eps=_number(options["eps"], "eps"),
            amsgrad=amsgrad,
            maximize=bool(options["maximize"]),
            decoupled_weight_decay=bool(options.get("decoupled_weight_decay", decoupled_default)),
        )

    return step


class _AfterWrite(Exception):
    """A step failed after it had written: torch's own implementation cannot take it over."""


# ---- routes ------------------------------------------------------------------------------------------


def _since(start):
    return 0.0 if start is None else time.perf_counter() - start


def _route(original, step):
    """The function that replaces ``original``, whose leading arguments are tensor lists, then
    grad_scale and found_inf, then keyword-only options: the step under an active drop-in mode,
    else, or when the step falls through, the original."""
    names = [p.name for p in inspect.signature(original).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]

    def route(*args, **kwargs):
        mode = _active_mode()
        if mode is None or torch.compiler.is_compiling() or not (args and args[0]):
            return original(*args, **kwargs)
        start = time.perf_counter() if mode.timed else None
        try:
            # Torch functions disabled: the step's attribute reads and its op call are not calls of
            # the user's program, and the mode counts the step once, as the function it replaces.
            with _compat.torch_function_disabled():
                options = dict(kwargs)
                values = list(args) + [options.pop(n) for n in names[len(args) :] if n in options]
                need(len(values) == len(names))
                step(*values, options)
        except _AfterWrite as exc:
            raise exc.__cause__ from None
        except FallThrough as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - checked before any write: torch runs the step, raising its own error
            reason = f"pykernels raised {type(exc).__name__}"
        else:
            mode.record(original, seconds=_since(start))
            return None
        result = original(*args, **kwargs)
        mode.record(original, reason, seconds=_since(start))
        return result

    return functools.wraps(original)(route)


# (module, function, step): the torch.optim functions routed, where the installed torch has them.
_FUNCTIONS = (
    ("torch.optim.sgd", "_single_tensor_sgd", _sgd_step),
    ("torch.optim.sgd", "_multi_tensor_sgd", _sgd_step),
    ("torch.optim.sgd", "_fused_sgd", _sgd_step),
    ("torch.optim.adam", "_single_tensor_adam", _adam_step(False, foreach=False)),
    ("torch.optim.adam", "_multi_tensor_adam", _adam_step(False, foreach=True)),
    ("torch.optim.adam", "_fused_adam", _adam_step(False, foreach=False)),
    # torch 2.4: AdamW's own functions
    ("torch.optim.adamw", "_single_tensor_adamw", _adam_step(True, foreach=False)),
    ("torch.optim.adamw", "_multi_tensor_adamw", _adam_step(True, foreach=True)),
    ("torch.optim.adamw", "_fused_adamw", _adam_step(True, foreach=False)),
)

_lock = threading.Lock()
_attached = 0  # drop-in modes entered and not yet exited, on every thread
_installed = []  # (module, name, original, route) while attached
_present = None  # (module, name, step) for each routed function the installed torch has, found once
_routes = {}  # original -> its route, made once: a mode entered around every step stays cheap


def _functions():
    """(module, name, step) for each routed function that the installed torch has."""
    global _present
    if _present is None:
        modules = {m: importlib.import_module(m) for m, _, _ in _FUNCTIONS}
        _present = [(modules[m], name, step) for m, name, step in _FUNCTIONS if callable(vars(modules[m]).get(name))]
    return _present


def routed_functions():
    """The torch.optim functions that the drop-in mode routes (those the installed torch has)."""
    replaced = {(module, name): original for module, name, original, _ in _installed}
    return [replaced.get((module, name)) or vars(module)[name] for module, name, _ in _functions()]


def attach():
    """A drop-in mode was entered: the routes go in with the first."""
    global _attached
    with _lock:
        _attached += 1
        if _attached == 1:
            for module, name, step in _functions():
                original = vars(module)[name]
                route = _routes.get(original) or _routes.setdefault(original, _route(original, step))
                _installed.append((module, name, original, route))
                setattr(module, name, route)


def detach():
    """A drop-in mode exited: torch's functions come back with the last."""
    global _attached
    with _lock:
        _attached -= 1
        if _attached == 0:
            for module, name, original, route in _installed:
                if vars(module).get(name) is route:  # unless someone has replaced it since
                    setattr(module, name, original)
            _installed.clear()
