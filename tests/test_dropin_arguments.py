"""The drop-in mode decides each call on its own arguments: calls of one torch function whose
arguments change between calls (dtype, device, layout, requires_grad, a subclass, a complex
number, a list's items, keyword arguments, values a handler refuses) are each routed or fall
through as they should, whatever the calls before them were, with torch's result either way.
"""

import pytest
import torch

from pykernels import dropin
from conftest import assert_close, make

F = torch.nn.functional


class Sub(torch.Tensor):
    pass


def outcome(fn):
    """Runs fn under a new mode: (its result, 'routed' or the reason its one covered call fell through)."""
    with dropin.enable() as mode:
        out = fn()
    reasons = list(mode.fell_through_reasons())
    if not reasons:
        assert sum(mode.routed.values()) >= 1, mode.report()
        return out, "routed"
    assert len(reasons) == 1 and not mode.routed, mode.report()
    return out, reasons[0][1]


def check(steps, direction):
    """Each (fn, expected outcome) in turn, in the given order: the outcome and torch's result."""
    for fn, expected in steps if direction == "forward" else reversed(steps):
        want = fn()
        got, how = outcome(fn)
        assert how == expected, (how, expected)
        if isinstance(want, torch.Tensor):
            assert type(got) is type(want)
            if want.device.type == "meta" or want.layout is not torch.strided:
                assert got.shape == want.shape and got.dtype == want.dtype and got.layout == want.layout
            else:
                assert_close(got, want)


A = make((3, 4))
B = make((3, 4))

CHANGES = {
    "dtype": [
        (lambda: torch.add(A, B), "routed"),
        (lambda: torch.add(A.to(torch.complex64), B), "torch.complex64 tensor"),
        (lambda: torch.add(A.double(), B.double()), "routed"),
        (lambda: torch.add(A, B.to(torch.complex128)), "torch.complex128 tensor"),
        (lambda: torch.add(A.long(), B), "routed"),
    ],
    "device": [
        (lambda: A * B, "routed"),
        (lambda: A.to("meta") * B.to("meta"), "meta tensor"),
        (lambda: A * B, "routed"),
    ],
    "layout": [
        (lambda: torch.mul(A, 2), "routed"),
        (lambda: torch.mul(A.to_sparse(), 2), "torch.sparse_coo tensor"),
        (lambda: torch.mul(A, 2), "routed"),
    ],
    "subclass": [
        (lambda: A + B, "routed"),
        (lambda: A.as_subclass(Sub) + B, "Sub argument"),
        (lambda: A + B.as_subclass(Sub), "Sub argument"),
        (lambda: A + torch.nn.Parameter(B), "routed"),
    ],
    "number": [
        (lambda: torch.add(A, 1.5), "routed"),
        (lambda: torch.add(A, 2j), "complex number"),
        (lambda: torch.add(A, 2), "routed"),
    ],
    "keywords": [
        (lambda: torch.mm(A, B.t()), "routed"),
        (lambda: torch.mm(A, B.t(), out=torch.empty(3, 3)), "arguments"),
        (lambda: torch.add(A, B, alpha=2), "routed"),
        (lambda: torch.mm(A, B.t()), "routed"),
        (lambda: F.relu(A, inplace=False), "routed"),
    ],
    # The handler decides on the value: clamp(min=0.0) is relu, clamp(min=0.5) is not.
    "value": [
        (lambda: A.clamp(min=0.0), "routed"),
        (lambda: A.clamp(min=0.5), "clamp other than min=0"),
        (lambda: A.clamp(min=0.0), "routed"),
    ],
    "list items": [
        (lambda: torch._foreach_add([A, B], 1.0), "routed"),
        (lambda: torch._foreach_add([A, B.to(torch.complex64)], 1.0), "torch.complex64 tensor"),
        (lambda: torch._foreach_add([A, B], 1.0), "routed"),
    ],
}


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("what", list(CHANGES))
def test_arguments_that_change_between_calls(what, direction):
    check(CHANGES[what], direction)


def test_requires_grad_changing_between_calls():
    """An in-place write to a leaf that requires grad is torch's error, under the mode too; the
    same call on a leaf that does not is routed, and one on a non-leaf is routed with its gradient."""

    def leaf(requires_grad):
        return A.clone().requires_grad_(requires_grad)

    with pytest.raises(RuntimeError) as expected:
        leaf(True).add_(B)
    for _ in range(2):
        with dropin.enable() as mode, pytest.raises(RuntimeError) as raised:
            leaf(True).add_(B)
        assert str(raised.value) == str(expected.value)
        ((_, reason),) = mode.fell_through_reasons()
        assert reason.startswith("pykernels raised")

        x = leaf(False)
        _, how = outcome(lambda x=x: x.add_(B))
        assert how == "routed"
        assert_close(x, A + B)

        w = leaf(True)
        _, how = outcome(lambda w=w: (w * 1).add_(B).sum().backward())
        assert how == "routed"
        assert_close(w.grad, torch.ones_like(A))
