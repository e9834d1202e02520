"""Review of round 35's settings guard (``runtime.aten.guard.Settings``): objects a module holds that are the
program's machinery, not its settings.

The guard watched the public plain values of every non-callable object with a ``__dict__`` a module holds. A
``logging.Logger`` on the module (``self.log = logging.getLogger(...)``) changes its ``level`` by ``setLevel``, an
LR scheduler its ``last_epoch`` by ``step()``, a ``random.Random`` its ``gauss_next``: each refused the next compiled
call ("Net.log.level is 10 now, 0 at compile"), though forward bakes none of them. A namespace of options
(``argparse.Namespace``, ``types.SimpleNamespace``, a user's class) is still watched."""

from __future__ import annotations

import argparse
import logging
import random
import types

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Held(nn.Module):
    """A linear layer and whatever objects ``held`` names, on the module before the compile."""

    def __init__(self, **held):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        for k, v in held.items():
            setattr(self, k, v)

    def forward(self, x):
        opts = getattr(self, "opts", None)
        return self.lin(x) * (opts.scale if opts is not None else 1.0)


def _eager(m, x):
    with torch.no_grad():
        return m(x)


def _scheduler() -> object:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    return torch.optim.lr_scheduler.StepLR(opt, step_size=1)


MACHINERY = {   # name -> (the object, what ordinary use does to it)
    "a logger's setLevel": (lambda: logging.getLogger("review35b.model"), lambda o: o.setLevel(logging.DEBUG)),
    "an LR scheduler's step": (_scheduler, lambda o: (o.optimizer.step(), o.step())),
    "a random.Random drawn from": (lambda: random.Random(0), lambda o: o.gauss(0.0, 1.0)),
}


@pytest.mark.parametrize("case", sorted(MACHINERY))
def test_machinery_a_module_holds_changed_by_its_own_methods_is_no_setting(case):
    make, use = MACHINERY[case]
    m = Held(thing=make()).eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1, poison=True)
    use(m.thing)
    assert torch.equal(step(x), _eager(m, x))   # was refused: "Held.thing.level is 10 now, 0 at compile"


@pytest.mark.parametrize("namespace", [argparse.Namespace, types.SimpleNamespace])
def test_a_namespace_of_options_is_still_a_setting(namespace):
    m = Held(opts=namespace(scale=2.0)).eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1, poison=True)
    assert torch.equal(step(x), _eager(m, x))
    m.opts.scale = 3.0
    with pytest.raises(AtenExecutorError, match=r"Held\.opts\.scale is 3\.0 now, 2\.0 at compile"):
        step(x)


class Square(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Parameter(torch.randn(4, 4))
        self.register_buffer("b", torch.randn(4, 4))

    def forward(self, x):
        return x @ self.w + x @ self.b


CHANGES = {   # in place, same tensor objects: the guard's one C++ layout check (TensorGuards) must see each
    "a buffer transposed in place": lambda m: m.b.t_(),
    "a weight frozen in place": lambda m: m.w.requires_grad_(False),
    "a buffer's dtype viewed": lambda m: setattr(m.b, "data", m.b.data.view(torch.int32)),
    "a weight's shape cut": lambda m: setattr(m.w, "data", m.w.data[:2]),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_the_fast_path_sees_a_layout_changed_in_place(case):
    m = Square().eval()
    step = compile(m, (torch.randn(2, 4),), streams=1)
    assert step.guard.unchanged()
    CHANGES[case](m)
    assert not step.guard.unchanged()


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "enable_grad"])
def test_the_fast_path_holds_under_every_grad_mode(mode):
    """The C++ check compares dispatch keys under the thread's state (inference mode drops the autograd ones):
    where it says no, the maps decide, and an unchanged module is unchanged."""
    m = Square().eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1)
    with getattr(torch, mode)():
        assert step.guard.unchanged()
        assert torch.equal(step(x), m(x))
    assert step.rebinds == 0
