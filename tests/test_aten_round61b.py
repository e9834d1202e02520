"""Round 61b: two regressions of round 61's ATen executor for ordinary users (CPU, tiny, torch only).

Bugs fixed (each test marked "failed before" did, on round 61's main):
- a hook object counting its calls that the module also holds (``self.counters = [c]``, ``c`` registered as a
  forward hook on a submodule; or held directly, ``self.counter = c``, refused since session 40b) was refused at
  compile ("forward changes the attribute n of the Count object the module holds"): round 61 looked for settings
  objects inside list attributes. docs/aten.md promises that a hook counting its calls sees the export's one, as the
  same hook held nowhere does. A change ``forward`` itself makes there is still refused.
- ``lru_caches.clear_filled`` cleared a whole functools cache the export added to: a cached factory of ``nn.Linear``
  that eager had filled was rebuilt after compile with new random weights (the user's eager model changed silently).
  Now an unbounded cache loses just the export's entries; a bounded one that held entries is left as it is and
  compile is refused naming the function.
"""

from __future__ import annotations

import functools

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs):
    return compile(m, inputs, streams=1, cuda_graph=False, poison=True, device="cpu")


# --- (1) a counting hook object the module holds ------------------------------------------------------------------

class _Count:
    def __init__(self):
        self.n = 0

    def __call__(self, mod, args, out):
        self.n += 1


class _Counted(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        c = _Count()
        if how == "list":
            self.counters = [c]
        elif how == "dict":
            self.counters = {"lin": c}
        elif how == "direct":
            self.counter = c
        self.lin.register_forward_hook(c)
        self._c = c   # (for the test: a private name, no settings object)

    def forward(self, x):
        return self.lin(x) * 2


@pytest.mark.parametrize("how", ["list", "dict", "direct", "nowhere"])
def test_a_counting_hook_the_module_holds_sees_the_exports_one(how):
    """Failed before for "list" and "dict" (compiled before round 61) and "direct" (refused since session 40b): the
    hook's count was refused as forward's change; now each compiles as the hook held nowhere does, seeing the
    export's one call, and an eager call's count after compile does not refuse the next compiled call."""
    torch.manual_seed(0)
    m = _Counted(how)
    c = m._c
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert c.n == 1
    assert torch.equal(step(x), m(x))   # (the eager call counts: 2)
    assert c.n == 2
    assert torch.equal(step(x), m.lin(x) * 2)


class _Hook:
    """A hook holding its counter objects in a list (``self.counters = [Counter()]``)."""

    def __init__(self):
        self.counters = [_Tracker()]

    def __call__(self, mod, args, out):
        self.counters[0].n += 1


class _Tracker:
    def __init__(self):
        self.n = 0


class _HoldsTheHook(nn.Module):
    def __init__(self, in_list: bool):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        h = _Hook()
        if in_list:
            self.hooks = [h]
        else:
            self.hook = h
        self.lin.register_forward_hook(h)

    def forward(self, x):
        return self.lin(x) + 1


@pytest.mark.parametrize("in_list", [False, True])
def test_a_hook_keeping_its_counters_in_a_list_compiles(in_list):
    """Failed before (compiled before round 61): the counter object inside the held hook's list was refused."""
    m = _HoldsTheHook(in_list)
    h = m.hooks[0] if in_list else m.hook
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert h.counters[0].n == 1
    assert torch.equal(step(x), m.lin(x) + 1)


class _ForwardCountsInTheHook(nn.Module):
    """``forward`` itself bumps the counting hook's ``n``: a change no compiled call makes."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.counters = [_Count()]
        self.lin.register_forward_hook(self.counters[0])

    def forward(self, x):
        self.counters[0].n += 1
        return self.lin(x) * self.counters[0].n


def test_forward_changing_a_hook_objects_count_is_still_refused():
    m = _ForwardCountsInTheHook()
    with pytest.raises(AtenExecutorError, match="attribute n of the _Count object"):
        _compile(m, torch.randn(2, 4))
    assert m.counters[0].n == 0   # (put back as at compile)


class _Bumps(nn.Module):
    def __init__(self):
        super().__init__()
        self.trackers = [_Tracker()]
        self.lin = nn.Linear(4, 4)
        self.lin.register_forward_hook(_Count())

    def forward(self, x):
        self.trackers[0].n += 1
        return self.lin(x) * self.trackers[0].n


def test_forward_bumping_a_listed_tracker_beside_a_hook_is_still_refused():
    m = _Bumps()
    with pytest.raises(AtenExecutorError, match="attribute n of the _Tracker object"):
        _compile(m, torch.randn(2, 4))
    assert m.trackers[0].n == 0


# --- (2) a functools cache that held the user's entries ----------------------------------------------------------

@functools.cache
def _proj(n: int) -> nn.Linear:
    return nn.Linear(n, n)


@functools.lru_cache(maxsize=8)
def _bounded_proj(n: int) -> nn.Linear:
    return nn.Linear(n, n)


class _LazyProj(nn.Module):
    def forward(self, x):
        return _proj(x.shape[-1])(x)


class _BoundedLazyProj(nn.Module):
    def forward(self, x):
        return _bounded_proj(x.shape[-1])(x)


def test_an_unbounded_cache_keeps_the_users_entries_and_loses_the_exports():
    """Failed before: compile for width 4 cleared the cache eager had filled for width 3, and the next eager call
    built a new nn.Linear (new random weights): the user's model changed. Now the user's entry is the very object,
    and the export's (width 4, built on fake tensors) is gone."""
    _proj.cache_clear()
    m = _LazyProj()
    a, b = torch.randn(2, 3), torch.randn(2, 4)
    want = m(a)
    lin = _proj(3)
    _compile(m, b)
    assert _proj(3) is lin and torch.equal(m(a), want)
    assert _proj.cache_info().currsize == 1   # (width 4's entry removed)
    assert type(m(b)) is torch.Tensor
    _proj.cache_clear()


def test_a_bounded_cache_that_held_entries_is_refused_naming_it_and_kept():
    """Failed before: compiled, and the cache was cleared (the user's width-3 layer rebuilt with new weights)."""
    _bounded_proj.cache_clear()
    m = _BoundedLazyProj()
    a, b = torch.randn(2, 3), torch.randn(2, 4)
    want = m(a)
    lin = _bounded_proj(3)
    with pytest.raises(AtenExecutorError, match="functools cache .*_bounded_proj .*held 1 entries"):
        _compile(m, b)
    assert _bounded_proj(3) is lin and torch.equal(m(a), want)
    _bounded_proj.cache_clear()


def test_a_cache_empty_before_the_export_is_still_emptied():
    _bounded_proj.cache_clear()
    m = _BoundedLazyProj()
    b = torch.randn(2, 4)
    _compile(m, b)
    assert _bounded_proj.cache_info().currsize == 0
    assert type(m(b)) is torch.Tensor
    _bounded_proj.cache_clear()


@functools.lru_cache(maxsize=8)
def _scale(n: int) -> float:
    return 1.0 / n


class _PlainCache(nn.Module):
    def forward(self, x):
        return x * _scale(x.shape[-1])


def test_a_bounded_cache_gaining_a_plain_value_is_taken():
    """A float entry holds no fake state: the export's entry stays with the user's, no refusal."""
    _scale.cache_clear()
    m = _PlainCache()
    m(torch.randn(2, 3))
    b = torch.randn(2, 4)
    step = _compile(m, b)
    assert torch.equal(step(b), m(b))
    assert _scale.cache_info().currsize == 2
    _scale.cache_clear()
