"""The op table (pykernels/optable.py) and what is registered agree: every schema of the table is
registered as written, every registered pykernels op is in the table, each overload with a
kernel of its own has one for exactly the table's devices and an autograd kernel where the table
gives a derivative, and pykernels' public functions are the table's, with its signatures.
Also: the op database (tests/opdb.py) covers every entry of the table."""

import inspect

import opdb
import pytest
import torch

import pykernels
from pykernels import _compat, optable

EXTRAS = ["build_info", "enable"]  # public names that are not ops
BUILT_WITH_CUDA = "CUDA" in pykernels.build_info()["backends"]


def registered():
    """Qualified names (add.out, mm.default) of every registered pykernels overload."""
    names = set()
    for qualified in _compat.all_op_names():
        if qualified.startswith("pykernels::"):
            name, _, overload_name = qualified[len("pykernels::") :].partition(".")
            names.add(f"{name}.{overload_name or 'default'}")
    return names


@pytest.mark.parametrize("overload", opdb.OVERLOADS, ids=lambda o: o.qualname)
def test_table_schema_is_registered(overload):
    packet = getattr(torch.ops.pykernels, overload.packet, None)
    assert packet is not None, f"pykernels::{overload.packet} is not registered"
    assert overload.overload_name in packet.overloads(), f"pykernels::{overload.qualname} is not registered"
    expected = torch._C.parse_schema(f"pykernels::{overload.schema}")
    assert str(_compat.op_schema(overload.resolve())) == str(expected)


def test_every_registered_op_is_in_the_table():
    missing = registered() - set(opdb.BY_QUALNAME)
    assert not missing, f"registered pykernels overloads the table does not have: {sorted(missing)}"


@pytest.mark.parametrize("overload", [o for o in opdb.OVERLOADS if not o.number], ids=lambda o: o.qualname)
def test_kernels_where_the_table_says(overload):
    """Kernels for the table's devices only (CUDA's where the build has them), and an autograd
    kernel for every overload the table gives a derivative."""
    qualified = f"pykernels::{overload.packet}" + (
        "" if overload.overload_name == "default" else f".{overload.overload_name}"
    )
    devices = {"cpu": "CPU"} | ({"cuda": "CUDA"} if BUILT_WITH_CUDA else {})
    for device, key in devices.items():
        has = _compat.has_kernel_for_dispatch_key(qualified, key)
        assert has == (device in overload.op.devices), (
            f"{qualified}: {key} kernel {has}, table devices {overload.op.devices}"
        )
    if overload.op.derivative is not None:
        assert _compat.has_kernel_for_dispatch_key(qualified, "Autograd"), f"{qualified} has no autograd kernel"


def test_all_is_the_table_public_functions():
    assert sorted(pykernels.__all__) == sorted([name for name, _ in optable.public_functions()] + EXTRAS)


@pytest.mark.parametrize("name,op", optable.public_functions(), ids=[n for n, _ in optable.public_functions()])
def test_public_signature_is_the_table(name, op):
    assert f"{name}{inspect.signature(getattr(pykernels, name))}" == op.public[name][0]


# ---------------------------------------------------------------------------------------------- the op database


@pytest.mark.parametrize("overload", opdb.OVERLOADS, ids=lambda o: o.qualname)
def test_every_overload_has_samples_for_every_check(overload):
    """Samples torch takes, for opcheck, and for the gradient checks where it is differentiable."""
    samples = opdb.samples_of(overload)
    assert len({s.id for s in samples}) == len(samples), "sample names must be unique"
    assert any(s.valid for s in samples), f"torch takes none of {overload.qualname}'s samples"
    assert any(s.overload is overload for s in opdb.opcheck_samples()), f"{overload.qualname}: no opcheck sample"
    if overload.differentiable:
        assert any(s.overload is overload for s in opdb.gradcheck_samples()), f"{overload.qualname}: no float64 sample"


def test_every_public_function_has_a_torch_reference_and_its_adapter():
    for name, op in optable.public_functions():
        opdb.torch_function(op, name)
        adapted = len(op.public[name]) > 2
        assert adapted == (name in opdb.ADAPTERS), f"{name}: the table's adapter and opdb.ADAPTERS disagree"
    assert set(opdb.ADAPTERS) <= {name for name, _ in optable.public_functions()}


def test_every_internal_op_has_samples_and_every_kind_a_generator():
    kinds = {op.kind for op in optable.OPS}
    assert kinds - {"internal"} <= set(opdb.GENERATORS), sorted(kinds - set(opdb.GENERATORS))
    internal = {op.name for op in optable.OPS if op.kind == "internal"}
    assert internal == set(opdb.INTERNAL), (sorted(internal), sorted(opdb.INTERNAL))
