"""Round 61 review: defects found in the code this round added, each test failing before its fix.

- ``runtime/aten/lru_caches.py`` took every callable global with ``cache_info`` and ``cache_clear`` attributes for a
  ``functools`` cache and called its ``cache_info()`` before the export: a module whose ``forward`` names a user's
  class with such methods (``Table.cache_info(self)``) failed to compile with a raw ``TypeError`` ("missing 1 required
  positional argument: 'self'"), though it changes no state.
- a settings object whose ``functools.cached_property`` ``forward`` read first at the export (``cfg.head_dim``, a
  config's derived number) was refused as "forward changes the attributes of the Cfg object the module holds (made:
  head_dim)", though it is computed once for good as eager's first call computes it; round 61's watch of objects
  held in lists and dicts (``self.cfgs = [Cfg()]``) widened that refusal to modules that compiled before.
- ``search_tree``'s table of failed states counted only its keys' bytes against ``MEMO_MAX_BYTES``: each entry holds
  some 200 bytes more (the bytes object, the (offset, position) tuple and its ints, the dict's slot), so on
  minimalloc E at its bound the tables held 1.6 times the bytes counted, and keys of small subproblems (8-40 bytes)
  6 to 27 times: a 32 MiB cap could hold several hundred MB.
"""

from __future__ import annotations

import functools
import sys

import pytest
from minimalloc_data import challenging_path

from memplan.solvers import search_tree
from memplan.solvers.options import SearchParams

# --- lru_caches: a user's object with a cache's method names ------------------------------------------------------


class _Table:
    """A user's memo object with ``functools``' cache API names (its methods need an instance)."""

    def __init__(self):
        self.d = {}

    def __call__(self, n):
        return self.d.setdefault(n, n * 0.5)

    def cache_info(self):
        return len(self.d)

    def cache_clear(self):
        self.d.clear()


_TABLE = _Table()


@functools.cache
def _real_cache(n):
    return n


def test_a_class_with_cache_method_names_is_no_cache_and_compiles():
    """Failed before: ``compile`` raised ``TypeError: _Table.cache_info() missing 1 required positional argument:
    'self'`` from ``lru_caches`` (the class ``forward`` names looked like a cache); now such an object is left alone,
    and one whose ``cache_info()`` gives no ``misses`` (``_TABLE``) is neither called again nor cleared."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from runtime.aten import compile

    class _NamesTheClass(nn.Module):
        def forward(self, x):
            return x * 2 + (1 if isinstance(_TABLE, _Table) else 0)

    _TABLE(3)
    step = compile(_NamesTheClass(), (torch.ones(2, 3),), streams=1, cuda_graph=False, poison=True, device="cpu")
    x = torch.randn(2, 3)
    assert torch.equal(step(x), x * 2 + 1)
    assert _TABLE.d == {3: 1.5}


def test_lru_caches_lists_real_caches_only():
    """The walk's list itself: a ``functools`` cache the code names is listed with its ``cache_info()``; a class with
    such method names, and an object whose ``cache_info()`` raises or has no ``misses``, are not."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from runtime.aten.lru_caches import clear_filled, lru_caches

    class _Names(nn.Module):
        def forward(self, x):
            return x * _real_cache(2) + (1 if isinstance(_TABLE, _Table) else 0)

    _real_cache.cache_clear()
    found = lru_caches(torch, _Names())
    assert [f for f, *_ in found] == [_real_cache]
    _real_cache(5)
    clear_filled(torch, found)
    assert _real_cache.cache_info().currsize == 0


# --- python_state: a settings object's cached_property --------------------------------------------------------------


class _Cfg:
    def __init__(self):
        self.dim, self.heads = 6, 2

    @functools.cached_property
    def head_dim(self):
        return self.dim // self.heads


class _Cfg2(_Cfg):
    @functools.cached_property
    def table(self):   # (a tensor: computed on the export's fake tensors, so still refused)
        import torch
        return torch.ones(3) * self.dim


@pytest.mark.parametrize("held", ["direct", "in_list"])
def test_a_settings_objects_cached_property_read_first_at_the_export_compiles(held):
    """Failed before: refused as "forward changes the attributes of the _Cfg object the module holds (made:
    head_dim)" (held in a list: compiled before round 61, refused after it). Now a cached_property's plain value is
    no change: kept as eager's first call leaves it, and the compiled call computes eager's ``x * 3``."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from runtime.aten import compile

    class _ReadsHeadDim(nn.Module):
        def __init__(self):
            super().__init__()
            if held == "direct":
                self.cfg = _Cfg()
            else:
                self.cfgs = [_Cfg()]

        def forward(self, x):
            cfg = self.cfg if held == "direct" else self.cfgs[0]
            return x * cfg.head_dim

    m = _ReadsHeadDim()
    step = compile(m, (torch.ones(2, 3),), streams=1, cuda_graph=False, poison=True, device="cpu")
    x = torch.randn(2, 3)
    assert torch.equal(step(x), x * 3) and torch.equal(m(x), x * 3)


def test_a_settings_objects_cached_tensor_property_is_still_refused():
    """A cached_property holding a tensor (the export's fake one) is made anew as before: refused, and dropped."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    class _ReadsTable(nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = _Cfg2()

        def forward(self, x):
            return x * self.cfg.table

    m = _ReadsTable()
    with pytest.raises(AtenExecutorError, match=r"attributes of the _Cfg2 object the module holds \(made: table\)"):
        compile(m, (torch.ones(2, 3),), streams=1, cuda_graph=False, poison=True, device="cpu")
    assert "table" not in vars(m.cfg)


# --- search_tree: the table of failed states' bytes ----------------------------------------------------------------


def _entry_bytes(table: dict) -> int:
    """What a table's entries hold: each key's bytes object, its (offset, position) tuple and their ints, and the
    table's own slots."""
    own = sum(sys.getsizeof(k) + sys.getsizeof(v) + sum(sys.getsizeof(x) for x in v) for k, v in table.items())
    return own + sys.getsizeof(table)


def test_failed_states_tables_keep_to_their_byte_cap(monkeypatch):
    """minimalloc E at its bound (WAT): with the cap at 400,000 bytes the tables held 1.6 times that before (only
    the keys' bytes counted); now what they hold stays within it (an entry's bytes counted as it is added)."""
    path = challenging_path("E")
    from memplan.io.minimalloc import read_csv

    cap = 400_000
    monkeypatch.setattr(search_tree, "MEMO_MAX_BYTES", cap)
    p = read_csv(path).problem()
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**9, 1e9))
    with pytest.raises(search_tree.Abort):
        s.feasible(1048576, "WAT", 8000)
    held = sum(_entry_bytes(t) for t in s.memo.values())
    assert s.memo_bytes >= cap // 2 and sum(len(t) for t in s.memo.values()) > 100
    assert held <= 1.1 * cap, (held, s.memo_bytes)
