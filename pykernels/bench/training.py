"""The ``train`` suite: whole training steps, pykernels beside torch on the same model, data and
initial weights.

Each case is one step (forward, loss, backward, optimizer step) repeated on fixed data, so the
model keeps training while it is timed. The two sides differ only in what runs the arithmetic:

- the seed's net converted with ``pykernels.nn.convert()`` (its Sequential becomes the fused MLP),
  and the same net built as ``pykernels.nn.FusedMLP``, their ``torch.optim.SGD`` step under the
  drop-in mode;
- unmodified torch scripts under ``pykernels.enable()``: the seed's Adam variant, and a small MLP
  classifier with ``CrossEntropyLoss``, whose loss falls through to torch.

Work is the step's matrix-product FLOPs (2·batch·in·out per product): every layer's forward and
weight gradient, and the input gradient of every layer but the first (the data needs none). The
elementwise ops and the optimizer add bytes, not FLOPs worth counting, so the rate against the FMA
peak says how close the whole step comes to its GEMMs running alone at the peak.
"""

import dataclasses

import torch

from .. import dropin, train
from .. import nn as pknn
from .case import GFLOPS, Case


def step_flops(batch, layers):
    """The matrix-product FLOPs of one training step through linear layers ``[(in, out), ...]``."""
    flops = 0
    for i, (n_in, n_out) in enumerate(layers):
        products = 2 if i == 0 else 3  # forward and weight gradient, plus the input gradient after the first
        flops += products * 2 * batch * n_in * n_out
    return flops


SEED_LAYERS = [(train.D_IN, train.H), (train.H, train.D_OUT)]


def _seed_case(label, prepare):
    """A case training the seed's two-layer net on its data: ``prepare(library name, data) -> step``."""
    return Case(
        "train_step",
        f"{label}, {train.N}x{train.D_IN}-{train.H}-{train.D_OUT}",
        torch.float32,
        lambda device: (train.make_data(device=device),),
        None,
        step_flops(train.N, SEED_LAYERS),
        GFLOPS,
        prepare=prepare,
    )


def _timed_step(step, context):
    """A fn for the timer: one step under ``context`` (a context manager factory), its loss as a tensor."""

    def run():
        with context():
            return torch.tensor(step())

    return run


def _plain():
    return train._NoContext()


def sgd_convert_case():
    """The seed's net (``Sequential(Linear, ReLU, Linear)``, no biases, summed MSE, ``torch.optim.SGD``)
    converted with ``pykernels.nn.convert()``; the optimizer steps under the drop-in mode."""

    def prepare(name, data):
        model = train._sequential(train.TorchLib, train._randn_state(data))
        loss_fn = torch.nn.MSELoss(reduction="sum")
        lib = train.TorchLib
        if name == "pykernels":
            model, loss_fn, lib = pknn.convert(model), pknn.convert(loss_fn), train.PykernelsLib
        optimizer = torch.optim.SGD(model.parameters(), lr=train.VARIANTS["sgd"].lr)
        return _timed_step(train._optimizer_step(lib, model, loss_fn, optimizer, data.x, data.y), _plain)

    return _seed_case("convert() + SGD", prepare)


def fused_mlp_case():
    """The same net as one ``pykernels.nn.FusedMLP`` (``python -m pykernels train``'s fused variant),
    beside torch's ``Sequential``, both stepping with ``torch.optim.SGD`` (pykernels' under the
    drop-in mode)."""

    def prepare(name, data):
        variant = train.VARIANTS["fused"]
        lib = train.PykernelsLib if name == "pykernels" else train.TorchLib
        return _timed_step(variant.build(lib, data, variant.lr), _plain)

    return _seed_case("FusedMLP + SGD", prepare)


def dropin_adam_case():
    """The seed's Adam variant (a custom module, ``torch.optim.Adam``), unmodified, under ``enable()``."""

    def prepare(name, data):
        variant = train.VARIANTS["adam"]
        lib = train.DropInLib if name == "pykernels" else train.TorchLib
        return _timed_step(variant.build(lib, data, variant.lr), lib.context)

    return _seed_case("Adam variant under enable()", prepare)


CLASSIFIER = dict(samples=64, features=64, hidden=128, classes=10)


def _classifier_data(device):
    g = torch.Generator().manual_seed(train.SEED)
    c = CLASSIFIER
    x = torch.randn(c["samples"], c["features"], generator=g).to(device)
    y = torch.randint(c["classes"], (c["samples"],), generator=g).to(device)
    return x, y


def classifier_case():
    """A small MLP classifier as a user writes it (``Sequential(Linear, ReLU, Linear)`` with biases,
    ``CrossEntropyLoss``, ``torch.optim.Adam``), unmodified, under ``enable()``: cross_entropy has
    no pykernels kernel and falls through to torch."""
    c = CLASSIFIER

    def prepare(name, x, y):
        torch.manual_seed(train.SEED)
        model = torch.nn.Sequential(
            torch.nn.Linear(c["features"], c["hidden"]), torch.nn.ReLU(), torch.nn.Linear(c["hidden"], c["classes"])
        ).to(x.device)
        loss_fn = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = train._optimizer_step(train.TorchLib, model, loss_fn, optimizer, x, y)
        return _timed_step(step, dropin.enable if name == "pykernels" else _plain)

    return Case(
        "train_step",
        f"MLP classifier under enable(), batch {c['samples']}, "
        f"{c['features']}-{c['hidden']}-{c['classes']}, cross-entropy, Adam",
        torch.float32,
        _classifier_data,
        None,
        step_flops(c["samples"], [(c["features"], c["hidden"]), (c["hidden"], c["classes"])]),
        GFLOPS,
        prepare=prepare,
    )


def cases():
    """The suite, each case with the ratio (torch time / pykernels time) it should reach."""
    targets = (
        (sgd_convert_case(), 2.0),
        (fused_mlp_case(), 2.5),
        (dropin_adam_case(), 1.3),
        (classifier_case(), 1.0),
    )
    return [dataclasses.replace(case, target=target) for case, target in targets]
