"""Round 72 (lib): the caches that made ``runtime.aten.compile``'s own walks cheaper, each shown to give no stale
answer: a code object's names (``code_names._code_names_of``), a class's ``cached_property`` names (per walk), a
global's held state walked once per walk, the labels of nested containers built from their parent's
(``module_containers.key_suffixes``) and native_functions.yaml read once per version of the file
(``lower._autogen_names``).
"""

from __future__ import annotations

import functools
import random

import pytest
from needs import need

torch = need("torch")

from aten_changes import compile_cpu as _compile  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten.code_names import _code_names  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.module_containers import container_snapshots, inner_containers, key_suffixes  # noqa: E402
from runtime.aten.python_state import python_state  # noqa: E402


def _labels(m):
    return {p.label: p.value for p in python_state(torch, m)}


# 1. code names: kept per code object, a new set each call ------------------------------------------------------------

A_72, B_72 = 1.0, 2.0


def _reads_a():
    return A_72


def _reads_b():
    return B_72


def test_code_names_follow_a_replaced_code_object():
    def f():
        return A_72
    assert "A_72" in _code_names(f.__code__) and "B_72" not in _code_names(f.__code__)
    f.__code__ = _reads_b.__code__   # (another code object: another key)
    assert "B_72" in _code_names(f.__code__) and "A_72" not in _code_names(f.__code__)


def test_code_names_is_a_fresh_set_each_call():
    names = _code_names(_reads_a.__code__)
    names.add("NOT_A_GLOBAL_72")   # (callers add to it: ``globals()`` reads)
    assert "NOT_A_GLOBAL_72" not in _code_names(_reads_a.__code__)


def test_a_global_a_replaced_code_names_is_watched():   # (two compiles in a row, the code swapped between)
    class Net(nn.Module):
        def forward(self, x):
            return x * A_72

    m = Net()
    assert any("the global A_72" in k for k in _labels(m))
    Net.forward.__code__ = (lambda self, x: x * B_72).__code__
    labels = _labels(m)
    assert any("the global B_72" in k for k in labels) and not any("the global A_72" in k for k in labels)


# 2. cached_property names: per walk -------------------------------------------------------------------------------

class _Cfg72:
    def __init__(self):
        self.t = 2.0


class _HoldsCfg72(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = _Cfg72()

    def forward(self, x):
        return x * self.cfg.t


def test_a_cached_property_added_between_walks_is_seen():
    m = _HoldsCfg72()
    vars(m.cfg)["head_dim"] = 4   # (a plain value under the name: an attribute of its own, then a cached one's)
    made = "the attributes of the _Cfg72 object the module holds (attributes made anew)"
    try:
        assert "head_dim" in _labels(m)[made]
        _Cfg72.head_dim = functools.cached_property(lambda self: 4)
        assert "head_dim" not in _labels(m)[made]
    finally:
        del _Cfg72.head_dim
    assert "head_dim" in _labels(m)[made]


# 3. a global's held state: walked once per walk, anew at the next -----------------------------------------------

class _Obj72:
    def __init__(self, n):
        self.n = n


OBJ_72 = _Obj72(2.0)


class _TwoReaders72(nn.Module):
    def forward(self, x):
        return self.one(x) + self.two(x)

    def one(self, x):
        return x * OBJ_72.n

    def two(self, x):
        return x + OBJ_72.n


def test_a_global_named_twice_has_its_places_once_and_anew_each_walk():
    global OBJ_72
    m = _TwoReaders72()
    places = [p for p in python_state(torch, m) if "_Obj72 object in the global OBJ_72" in p.label]
    field = [p for p in places if p.label.startswith("the attribute n ")]
    assert len(field) == 1 and field[0].value == 2.0
    old = OBJ_72
    try:
        OBJ_72 = 5   # (no object: no fields) ...
        assert not [p for p in python_state(torch, m) if "_Obj72 object" in p.label]
        OBJ_72 = _Obj72(3.0)   # (... then another one: its fields)
        field = [p for p in python_state(torch, m) if p.label.startswith("the attribute n of the _Obj72")]
        assert len(field) == 1 and field[0].value == 3.0
    finally:
        OBJ_72 = old


def test_a_global_changed_after_compile_is_refused_where_two_methods_read_it():
    m = _TwoReaders72()
    cm = _compile(m)
    x = torch.ones(4)
    assert torch.equal(cm(x), m(x))
    OBJ_72.n = 3.0
    try:
        with pytest.raises(AtenExecutorError, match="OBJ_72"):
            cm(x)
    finally:
        OBJ_72.n = 2.0


class _RegA72:
    s = 1.0

    def read(self):
        return len(REG_72)   # (names the global holding it: its walk is under way when met again)


class _RegB72:
    s = 2.0


REG_72 = [_RegA72, _RegB72]


class _Registry72(nn.Module):
    def forward(self, x):
        return x * len(REG_72) * _RegB72.s


def test_a_global_met_again_while_its_walk_is_under_way_is_walked_as_before():
    labels = list(_labels(_Registry72()))
    a = [i for i, k in enumerate(labels) if k.startswith("the class attribute _RegA72.s")]
    b = [i for i, k in enumerate(labels) if k.startswith("the class attribute _RegB72.s")]
    assert a and b and a[0] < b[0]
    assert any("(in the global REG_72 (module" in labels[i] and "at [1]" in labels[i] for i in b)


# 4. nested containers' labels ---------------------------------------------------------------------------------------

def _nest(rng, depth):
    r = rng.random()
    if depth > 4 or r < 0.2:
        return rng.choice([1, "a", 2.5, None])
    if r < 0.5:
        return [_nest(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.7:
        return tuple(_nest(rng, depth + 1) for _ in range(rng.randint(0, 4)))
    return {rng.choice(["x", 1, (1, 2), True, 2.0, "y"]): _nest(rng, depth + 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(40))
def test_key_suffixes_equal_the_join(seed):
    rng = random.Random(seed)
    v = [_nest(rng, 0) for _ in range(3)]
    plain, at = key_suffixes(), key_suffixes(" at [{!r}]")
    for keys, _c in inner_containers(v, set()):
        assert plain(keys) == "".join(f"[{k!r}]" for k in keys)
        assert at(keys) == "".join(f" at [{k!r}]" for k in keys)


def test_a_deep_chain_is_named_at_each_depth():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            chain = inner = []
            for _ in range(300):
                inner.append([])
                inner = inner[0]
            self.chain = chain
            self.t = ([{"k": [0]}],)   # (through a tuple, which is no answer of its own)

        def forward(self, x):
            return x

    names = [s[0] for s in container_snapshots(torch, Net())]
    assert names[:3] == ["Net.chain", "Net.chain[0]", "Net.chain[0][0]"]
    assert "Net.chain" + "[0]" * 300 in names
    assert "Net.t[0][0]['k']" in names and "Net.t[0]" in names


# 5. native_functions.yaml: once per version of the file ------------------------------------------------------------

def test_autogen_names_follow_the_file(tmp_path):
    import os

    from runtime.aten.lower import _autogen_names, autogen_outs

    path = tmp_path / "native_functions.yaml"
    path.write_text("- func: a\n  autogen: a.out, b.out\n")
    st = os.stat(path)
    assert _autogen_names(str(path), st.st_mtime_ns, st.st_size) == {"a.out", "b.out"}
    path.write_text("- func: a\n  autogen: c.out\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    st = os.stat(path)
    assert _autogen_names(str(path), st.st_mtime_ns, st.st_size) == {"c.out"}
    assert autogen_outs(torch) is autogen_outs(torch) and "add.out" not in autogen_outs(torch)


# 6. the types held_by skips: none holds state it would watch --------------------------------------------------------

def test_inert_types_hold_no_state_held_by_watches():
    import contextvars
    import os
    import threading

    from runtime.aten.python_state import _INERT, _iterator
    from runtime.aten.settings import settings_object

    for v in (os, torch, print, len, _reads_a, 1, 2.0, "s", True, None):
        assert type(v) in _INERT
        assert not _iterator(torch, v) and not settings_object(torch, v)
        assert not isinstance(v, (type, threading.local, contextvars.ContextVar))
