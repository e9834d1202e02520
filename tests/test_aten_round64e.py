"""Round 64e: three silent-wrong leftovers of round 64d's review of what ``forward`` and its hooks read (CPU).

A compiled call runs no Python: a value changed after compile must leave the program right or be refused
(``AtenExecutorError``). On main before this round these ran the export's value silently (each test marked "failed
before" did): a class attribute a hook reads (``K.s = 3.0``, the class a global or in the hook's closure), one
``forward`` reads of a global class; a settings object two modules hold, replaced on the second
(``m.b.cfg = Cfg(3.0)``); and hook state below the fingerprint's depth changed with no word (now a
``StateWalkWarning`` naming the place).
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

from aten_changes import assert_hook_counts_as_eager  # noqa: E402
from aten_changes import compile_cpu as _compile  # noqa: E402
from aten_changes import matches_eager_or_refused as _matches_eager_or_refused  # noqa: E402
from aten_changes import seeded_linear as _linear  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.walk_bounds import StateWalkWarning  # noqa: E402


class _GlobalK:
    s = 2.0
    other = 1.0


class _ForwardK:
    s = 2.0


class _ReadsClass(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _linear()

    def forward(self, x):
        return self.lin(x) * _ForwardK.s


@pytest.fixture(autouse=True)
def _classes_back():
    yield
    _GlobalK.s, _GlobalK.other, _ForwardK.s = 2.0, 1.0, 2.0


# ---- 1. a class attribute a hook or forward reads ------------------------------------------------------------------

def test_hook_reading_a_global_class_attribute():   # failed before: compiled 2.0x, eager 3.0x
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * _GlobalK.s)
    _matches_eager_or_refused(lin, lambda: setattr(_GlobalK, "s", 3.0))


def test_hook_reading_a_class_in_its_closure():   # failed before
    class K:
        s = [2.0]
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * K.s[0])
    _matches_eager_or_refused(lin, lambda: K.s.__setitem__(0, 3.0))
    _matches_eager_or_refused(lin, lambda: setattr(K, "s", [4.0]))


def test_forward_reading_a_global_class_attribute():   # failed before
    _matches_eager_or_refused(_ReadsClass(), lambda: setattr(_ForwardK, "s", 3.0))


def test_class_attribute_the_hook_does_not_read_is_no_refusal():
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * _GlobalK.s)
    x = torch.ones(3)
    cm = _compile(lin, x)
    _GlobalK.other = 5.0   # (the same program exported again: taken, not refused)
    assert torch.allclose(cm(x), lin(x))
    _GlobalK.s = 2.0   # (an equal value, another object)
    assert torch.allclose(cm(x), lin(x))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(-4, 4, allow_nan=False), st.booleans())
def test_class_attribute_changes_match_eager_or_are_refused(value, closure):
    class K:
        s = 2.0
    cls = K if closure else _GlobalK
    lin = _linear()
    lin.register_forward_hook(lambda _m, _i, out: out * cls.s)
    _GlobalK.s = 2.0
    _matches_eager_or_refused(lin, lambda: setattr(cls, "s", value))


# ---- 2. a settings object two modules hold ---------------------------------------------------------------------

class _Cfg:
    def __init__(self, t):
        self.t = t


class _Sub(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.lin = _linear()

    def forward(self, x):
        return self.lin(x) * self.cfg.t


class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        cfg = _Cfg(2.0)
        self.a, self.b = _Sub(cfg), _Sub(cfg)

    def forward(self, x):
        return self.a(x) + self.b(x)


@pytest.mark.parametrize("holder", ["a", "b"])   # ("b" failed before: recorded only under its first holder)
def test_shared_settings_object_replaced_on_either_holder(holder):
    m = _Two()
    _matches_eager_or_refused(m, lambda: setattr(getattr(m, holder), "cfg", _Cfg(3.0)))


def test_shared_settings_object_changed_in_place_still_seen():
    m = _Two()
    _matches_eager_or_refused(m, lambda: setattr(m.b.cfg, "t", 3.0))


# ---- 3. hook state deeper than the fingerprint's walk ------------------------------------------------------------

def _deep_hook(levels):
    lin = _linear()
    deep = 2.0
    for _ in range(levels):
        deep = [deep]

    def hook(_m, _i, out):
        v = deep
        while isinstance(v, list):
            v = v[0]
        return out * v
    lin.register_forward_hook(hook)
    return lin


def test_deep_hook_state_warns_naming_the_place():   # failed before: no warning
    with pytest.warns(StateWalkWarning, match=r"inside a closure variable of hook .*hook\[0\]\[0\]\[0\]\[0\]\[0\]\[0\]"):
        compile(_deep_hook(8), (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")


def test_shallow_hook_state_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StateWalkWarning)
        cm = compile(_deep_hook(5), (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")
    assert cm is not None


class _Counter:
    n = 0


class _CountsInClass(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _linear()

    def forward(self, x):
        _Counter.n += 1
        return self.lin(x)


def test_forward_counting_in_a_global_class_is_refused_at_compile():   # failed before: compiled, no call counted
    with pytest.raises(AtenExecutorError, match=r"the class attribute _Counter\.n"):
        _compile(_CountsInClass(), torch.ones(3))


class _HookCount:
    n = 0


def _counting_hook(_m, _i, out):
    _HookCount.n += 1
    return out * _HookCount.n


def test_hook_counting_in_a_class_and_returning_it_is_refused_at_compile():   # failed before: every compiled call
    lin = _linear()   # scaled by the export's count, eager's by 1, 2, 3...
    lin.register_forward_hook(_counting_hook)
    with pytest.raises(AtenExecutorError, match="changes its own Python state"):
        _compile(lin, torch.ones(3))


class _Calls:
    calls = 0


def _count_only(_m, _i, _out):
    _Calls.calls += 1


def test_hook_counting_in_a_class_counts_as_eager_and_the_export():   # (fails without ``hook_state_kept``
    # putting class attributes back: with the class watched, each proof's export counted one more)
    assert_hook_counts_as_eager(_count_only, lambda: setattr(_Calls, "calls", 0), lambda: _Calls.calls)
