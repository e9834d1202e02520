"""Round 37: the ATen executor where ``forward`` changes its module's Python state (attributes, lists, dicts).

Bugs fixed (each test marked "failed before" did): the program runs no Python and holds the values of the one call
export traced, and torch's export puts the attributes back after it. A counter (``self.n += 1``) or a first-call
flag (``self.seen = True``) made eager's later calls follow the attribute while every compiled call ran compile's
call again, silently (``x * 1`` for eager's ``x * 2``, ``x * 3``), and left the attribute as it was. Compile now
exports ``forward`` again from the values it leaves (``sets.check_forward_sets``): where it changes them again
(a counter) or gives another program (a flag), compile is refused naming the attribute and its values; where it
sets them again to the same values and gives the very program (Funnel's ``self.pooling_mult = 2`` from None), each
call sets them as eager's does. Attributes ``forward`` made (``self.last = y``) were left on the module after
compile holding the export's fake tensors; they are taken away. A public list or dict that ``forward`` changes in
place (``self.steps.append(1)``, ``self.stats["n"] += 1``, a feature tap) was read as compile's and never changed by
the compiled calls, and the export left the user's own object changed with a copy on the module: refused naming it,
the very object put back (``sets.check_container_changes``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3]


class Counter(nn.Module):
    """Counts its calls in a plain int and scales by the count: each eager call returns another multiple."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def forward(self, x):
        self.n += 1
        return x * self.n


class FirstCall(nn.Module):
    """Takes another path on its first call only: ``seen`` is False at construction, True after any call."""

    def __init__(self):
        super().__init__()
        self.seen = False

    def forward(self, x):
        y = x * 3 if self.seen else x * 2
        self.seen = True
        return y


class MadeInForward(nn.Module):
    """A counter ``forward`` makes itself on its first call (no attribute before it)."""

    def forward(self, x):
        self.k = getattr(self, "k", 0) + 1
        return x + self.k


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Counter()

    def forward(self, x):
        return self.inner(x) + 1


class SetsToOneValue(nn.Module):
    """Sets ``mult`` (None at construction) and ``pair`` to the same values at every call: eager's calls are one
    program, and leave them set."""

    def __init__(self):
        super().__init__()
        self.mult, self.scale = None, 3.0

    def forward(self, x):
        self.mult, self.pair = 2, (1, None)   # (``pair`` made by forward)
        return x * self.mult * self.scale


def _eager(m, x):
    with torch.no_grad():
        return m(x)


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize(("cls", "name", "values"), [
    (Counter, "Counter.n", "0 at compile, 1 after one call, 2 after the next"),
    (MadeInForward, "MadeInForward.k", "unset at compile, 1 after one call, 2 after the next"),
    (Outer, "Outer.inner.n", "0 at compile, 1 after one call, 2 after the next"),
])
def test_a_counter_forward_changes_at_every_call_is_refused_naming_it(streams, cls, name, values):
    """Failed before: compile took it; the second call returned compile's call again (eager's differs), and the
    attribute stayed as at compile."""
    m = cls()
    x = torch.randn(4)
    with pytest.raises(AtenExecutorError, match=rf"forward changes {name} at every call \({values}\)"):
        compile(m, (x,), streams=streams, poison=True)
    eager = cls()   # compile's exports left the module's attributes as they were
    assert vars(m).get("n", vars(m).get("k")) == vars(eager).get("n", vars(eager).get("k"))
    assert getattr(m, "inner", m).__dict__.get("n", 0) == 0


@pytest.mark.parametrize("streams", STREAMS)
def test_a_first_call_flag_that_changes_the_program_is_refused_naming_it(streams):
    """Failed before: every compiled call ran the first call's path (``x * 2``), eager's later calls ``x * 3``."""
    m = FirstCall()
    x = torch.randn(4)
    with pytest.raises(AtenExecutorError, match=r"forward sets FirstCall\.seen from False to True, and from True it "
                                                r"runs another program"):
        compile(m, (x,), streams=streams, poison=True)
    assert m.seen is False
    m.seen = True   # as the message says: compiled from the value the calls leave, the program is eager's
    step = compile(m, (x,), streams=streams, poison=True)
    e = FirstCall()
    e.seen = True
    for _ in range(2):
        assert torch.equal(step(x), _eager(e, x))


@pytest.mark.parametrize("streams", STREAMS)
def test_attributes_forward_sets_to_one_value_are_set_by_each_call_as_eager_sets_them(streams):
    """Failed before: compile left ``pair`` set by the export (compile runs no call), and the compiled calls left
    ``mult`` None where eager's set it to 2; outputs were and stay eager's bitwise. A setting forward only reads is
    still watched."""
    m, e = SetsToOneValue(), SetsToOneValue()
    x = torch.randn(4)
    step = compile(m, (x,), streams=streams, poison=True)
    assert m.mult is None and "pair" not in vars(m)   # compile ran no call
    for _ in range(2):
        got, ref = step(x), _eager(e, x)
        assert torch.equal(got, ref)
        assert (m.mult, m.pair) == (e.mult, e.pair) == (2, (1, None))
    m.scale = 4.0
    with pytest.raises(AtenExecutorError, match=r"SetsToOneValue\.scale is 4\.0 now, 3\.0 at compile"):
        step(x)


class KeepsItsLast(nn.Module):
    """Keeps its intermediate in attributes it makes (a feature tap written as ``self.last = y``)."""

    def forward(self, x):
        y = x * 2
        self.last = y
        self.taps = [y]
        return y + 1


@pytest.mark.parametrize("streams", STREAMS)
def test_attributes_forward_makes_are_not_left_holding_the_exports_fake_tensors(streams):
    """Failed before: after compile ``m.last`` was the export's ``FakeTensor`` (and ``m.taps`` a list of one), on the
    user's module, though compile runs no call; it is left as it was, without them."""
    m = KeepsItsLast()
    x = torch.randn(4)
    step = compile(m, (x,), streams=streams, poison=True)
    assert "last" not in vars(m) and "taps" not in vars(m)
    assert torch.equal(step(x), _eager(KeepsItsLast(), x))


@pytest.mark.parametrize("streams", STREAMS)
def test_a_reused_export_of_a_counter_is_refused_too(streams):
    """``program=`` (an earlier export, as the sweep reuses one per mode) skips the export, not the check; the
    module's values after eager calls are left as they are."""
    from runtime.aten.program import load_program

    m = Counter()
    x = torch.randn(4)
    program = load_program(m, (x,))
    m(x)   # an eager call: n is 1 now
    with pytest.raises(AtenExecutorError, match=r"forward changes Counter\.n at every call"):
        compile(m, (x,), streams=streams, poison=True, program=program)
    assert m.n == 1


class Steps(nn.Module):
    """Counts its calls in a list it appends to, and scales by the count."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def forward(self, x):
        self.steps.append(1)
        return x * len(self.steps)


class Stats(nn.Module):
    def __init__(self):
        super().__init__()
        self.stats = {"n": 0}

    def forward(self, x):
        self.stats["n"] += 1
        return x * self.stats["n"]


class Tap(nn.Module):
    """A feature tap: keeps each call's intermediate in a list of its child."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.body.feats = []

    def forward(self, x):
        y = self.body(x)
        self.body.feats.append(y)
        return y.relu()


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize(("cls", "message"), [
    (Steps, r"forward changes Steps\.steps in place \(from 0 to 1 items in the export's call\)"),
    (Stats, r"forward changes Stats\.stats in place \(key 'n' in the export's call\)"),
])
def test_a_list_or_dict_forward_changes_in_place_is_refused_and_left_as_it_was(streams, cls, message):
    """Failed before: compile took it, its calls read compile's list (``x * 1`` where eager's second call gave
    ``x * 2``) and never changed it; and the export left the user's object changed, with a copy of the old one on the
    module in its place."""
    m = cls()
    x = torch.randn(4)
    held = {k: v for k, v in vars(m).items() if type(v) in (list, dict) and not k.startswith("_")}
    with pytest.raises(AtenExecutorError, match=message):
        compile(m, (x,), streams=streams, poison=True)
    assert all(vars(m)[k] is v and v == cls().__dict__[k] for k, v in held.items())   # the same objects, as they were


class Cached(nn.Module):
    """LeViT's ``attention_bias_cache``: a gather of a weight kept in a dict on the first eval call."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(6))
        self.cache = {}

    def forward(self, x):
        if "cpu" not in self.cache:
            self.cache["cpu"] = self.table[[0, 2, 4]]
        return x * self.cache["cpu"]


@pytest.mark.parametrize("streams", STREAMS)
@pytest.mark.parametrize("cls", [Tap, Cached])
def test_tensors_forward_adds_to_its_list_or_dict_run_and_leave_the_users_object_as_it_was(streams, cls):
    """A cache (LeViT) or a feature tap changes no plain value: compiled, bitwise eager. Failed before: the export
    left the user's list or dict holding its ``FakeTensor`` and put a copy on the module in its place."""
    m, e = cls(), cls()
    e.load_state_dict(m.state_dict())
    x = torch.randn(3, 4) if cls is Tap else torch.randn(3)
    kept = m.body.feats if cls is Tap else m.cache
    step = compile(m, (x,), streams=streams, poison=True)
    assert (m.body.feats if cls is Tap else m.cache) is kept and len(kept) == 0
    for _ in range(2):
        assert torch.equal(step(x), _eager(e, x))


class RotaryCache(nn.Module):
    """wav2vec2-conformer's rotary embedding: a plain cache key beside a tensor cache value, both set by forward."""

    def __init__(self):
        super().__init__()
        self.cached_len = None
        self.cached = None

    def forward(self, x):
        if x.shape[0] == self.cached_len and self.cached is not None:
            return x * self.cached
        self.cached_len = x.shape[0]
        self.cached = torch.arange(x.shape[0], dtype=x.dtype)
        return x * self.cached


@pytest.mark.parametrize("streams", STREAMS)
def test_a_plain_cache_key_beside_a_tensor_value_is_not_set_alone(streams):
    """The compiled call cannot set the tensor, so it sets neither: the module stays as at compile, consistent for
    the next eager call (the key alone would send it to a missing value)."""
    m = RotaryCache()
    x = torch.randn(5)
    step = compile(m, (x,), streams=streams, poison=True)
    assert step.sets == ()
    assert torch.equal(step(x), _eager(RotaryCache(), x))
    assert m.cached_len is None and m.cached is None
    assert torch.equal(_eager(m, x), _eager(RotaryCache(), x))
