"""``torch._foreach_*`` under the drop-in mode: what torch.optim's optimizers call by default
(``foreach=True`` where every tensor is on a supported device). Each list is taken element by
element through the handler of the per-tensor function (``torch._foreach_add_`` through that of
``Tensor.add_``); which ``_foreach_*`` functions are routed is in routing.py.
"""

import torch

from .. import _C
from .handlers import FallThrough, is_tensor, need


class AfterMutation(Exception):
    """A ``_foreach_*_`` call failed after updating some of its tensors: no fall-through possible."""


def _element(arg, i, n):
    if isinstance(arg, (list, tuple)):
        need(len(arg) == n, "list lengths differ")
        return arg[i]
    return arg


def handler(name, element, signature):
    """The handler of ``torch._foreach_<name>``, given that of ``Tensor.<name>`` (``element``) and
    its signature: lists are taken element by element, scalars go to every element."""
    in_place = name.endswith("_")
    value_positional = name.rstrip("_") in ("addcmul", "addcdiv")

    def foreach(self, *args, **kwargs):
        need(isinstance(self, (list, tuple)) and all(map(is_tensor, self)))
        if value_positional and len(args) == 3:  # _foreach_addcmul_(self, t1, t2, scalar | scalars)
            args, kwargs = args[:2], dict(kwargs, value=args[2])
        n = len(self)
        calls = []
        for i in range(n):
            try:
                bound = signature.bind(
                    self[i], *(_element(a, i, n) for a in args), **{k: _element(v, i, n) for k, v in kwargs.items()}
                )
            except TypeError:
                raise FallThrough("arguments") from None
            calls.append(bound)
        if in_place and torch.is_grad_enabled():
            # autograd's rules for every element before the first write, as torch's own foreach
            # ops check them (other errors, such as a shape mismatch, surface per element there too).
            for bound in calls:
                values = (*bound.args, *bound.kwargs.values())
                _C.api.check_inplace(bound.args[0], any(is_tensor(v) and v.requires_grad for v in values))
        results = []
        for i, bound in enumerate(calls):
            try:
                results.append(element(*bound.args, **bound.kwargs))
            except Exception as exc:
                if in_place and i > 0:
                    raise AfterMutation(f"torch._foreach_{name}: element {i}") from exc
                raise
        return None if in_place else results

    return foreach
