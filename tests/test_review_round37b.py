"""Review of round 37's compile-time check of what ``forward`` sets (``sets.check_forward_sets``).

Bugs fixed (each test failed before the fix):
- an attribute behind a property (``self.mult = 2`` where ``mult`` is a property over ``self._mult``) was read as
  unset at every write (``vars`` never holds it): a fixed point was refused as a counter ("unset at compile, unset
  after one call"), and the refused compile left the user's ``_mult`` at the value the second export set;
- an export that failed (or was interrupted) midway left the attributes ``forward`` made holding the export's
  ``FakeTensor`` on the user's module: the cleanup ran only after a successful export;
- a ``defaultdict``, ``deque`` or a list inside a dict that ``forward`` changes in place was not watched (exact lists
  and dicts only, shallowly): compiled silently wrong, and the nested list was left changed by the export.
"""

from __future__ import annotations

import collections

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3]


class PropertyMult(nn.Module):
    """Sets ``mult`` (a property over ``_mult``, None at construction) to 2 at every call: one program."""

    def __init__(self):
        super().__init__()
        self._mult = None

    @property
    def mult(self):
        return self._mult

    @mult.setter
    def mult(self, value):
        self._mult = value

    def forward(self, x):
        self.mult = 2
        return x * self.mult


class PropertyCounter(PropertyMult):
    """Counts its calls through the property: each eager call another program."""

    def __init__(self):
        super().__init__()
        self._mult = 0

    def forward(self, x):
        self.mult = self.mult + 1
        return x * self.mult


@pytest.mark.parametrize("streams", STREAMS)
def test_a_property_forward_sets_to_one_value_is_taken_and_set_by_each_call(streams):
    """Failed before: refused as "changes PropertyMult.mult at every call (unset at compile, unset after one call,
    2 after the next)", leaving ``_mult`` at 2."""
    m, e = PropertyMult(), PropertyMult()
    x = torch.randn(4)
    step = compile(m, (x,), streams=streams, poison=True)
    assert m._mult is None   # compile ran no call
    for _ in range(2):
        with torch.no_grad():
            assert torch.equal(step(x), e(x))
        assert m._mult == e._mult == 2


@pytest.mark.parametrize("streams", STREAMS)
def test_a_property_counter_is_refused_with_its_values_and_left_as_it_was(streams):
    """Failed before: the message said "unset at compile, unset after one call", and the module was left at 1."""
    m = PropertyCounter()
    with pytest.raises(AtenExecutorError, match=r"forward changes PropertyCounter\.mult at every call \(0 at "
                                                r"compile, 1 after one call, 2 after the next\)"):
        compile(m, (torch.randn(4),), streams=streams, poison=True)
    assert m._mult == 0


CALLS = {"n": 0}   # outside the module: no export puts it back


class FailsOnCall(nn.Module):
    """Keeps its intermediate in an attribute it makes, sets ``mult`` to one value, and raises on call ``fail_on``."""

    def __init__(self, fail_on, exc):
        super().__init__()
        self.mult, self.fail_on, self.exc = None, fail_on, exc
        CALLS["n"] = 0

    def forward(self, x):
        CALLS["n"] += 1
        self.mult = 2
        self.last = x * 2
        if CALLS["n"] == self.fail_on:
            raise self.exc("boom")
        return self.last * self.mult


@pytest.mark.parametrize("fail_on", [1, 2])   # compile's export, the check's second export
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_failed_export_leaves_no_fake_tensor_on_the_module(fail_on, exc):
    """Failed before: ``m.last`` was the export's ``FakeTensor`` after the error (or ^C)."""
    m = FailsOnCall(fail_on, exc)
    with pytest.raises((AtenExecutorError, GraphError, exc), match="boom|forward changes the global CALLS"):
        compile(m, (torch.randn(4),), streams=3, poison=True)
    assert "last" not in vars(m)
    assert m.mult is None


class DefaultCounter(nn.Module):
    def __init__(self):
        super().__init__()
        self.stats = collections.defaultdict(int)

    def forward(self, x):
        self.stats["n"] += 1
        return x * self.stats["n"]


class NestedSteps(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = {"steps": []}

    def forward(self, x):
        self.cfg["steps"].append(1)
        return x * len(self.cfg["steps"])


class History(nn.Module):
    def __init__(self):
        super().__init__()
        self.hist = collections.deque()

    def forward(self, x):
        self.hist.append(1)
        return x * len(self.hist)


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize(("cls", "message"), [
    (DefaultCounter, r"forward changes DefaultCounter\.stats in place \(key 'n' in the export's call\)"),
    (NestedSteps, r"forward changes NestedSteps\.cfg\['steps'\] in place \(from 0 to 1 items in the export's call\)"),
    (History, r"forward changes History\.hist in place \(from 0 to 1 items in the export's call\)"),
])
def test_a_defaultdict_deque_or_nested_list_forward_changes_is_refused_and_left_as_it_was(streams, cls, message):
    """Failed before: compiled, the second call returned ``x * 1`` where eager's returned ``x * 2`` (only exact lists
    and dicts of the module were watched, shallowly), and ``NestedSteps.cfg['steps']`` was left ``[1]``."""
    m = cls()
    inner = m.cfg["steps"] if cls is NestedSteps else None
    with pytest.raises(AtenExecutorError, match=message):
        compile(m, (torch.randn(4),), streams=streams, poison=True)
    assert vars(m).keys() == vars(cls()).keys()
    assert (m.cfg == {"steps": []} and m.cfg["steps"] is inner) if cls is NestedSteps else len(next(
        v for k, v in vars(m).items() if k in ("stats", "hist"))) == 0
