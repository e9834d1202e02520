"""Round 69: what round 68 left in the ATen executor (CPU).

1. ``forward`` asking a tracing flag bound anywhere but ``torch.compiler`` or a user module's global (a closure cell,
   a default argument, a class attribute, a ``functools.partial``, a dict): the compiled program took the export's
   branch silently (compiled [2, 2, 2] where eager gave [3, 3, 3]); ``flag_reads`` now records through the flag
   function object itself.
"""

from __future__ import annotations

import functools
import warnings

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, flag_reads  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

_REFUSED = r"forward asks whether torch is tracing it .*differ from eager's"


def _compile(m, *args):
    return compile(m, args or (torch.ones(3),), streams=1, cuda_graph=False, poison=True, device="cpu")


def _closure(flag):
    class M(nn.Module):
        def forward(self, x):
            return x * 2 if flag() else x * 3
    return M()


def _default(flag):
    class M(nn.Module):
        def forward(self, x, f=flag):
            return x * 2 if f() else x * 3
    return M()


def _class_attribute(flag):
    class M(nn.Module):
        f = staticmethod(flag)

        def forward(self, x):
            return x * 2 if self.f() else x * 3
    return M()


def _partial(flag):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = functools.partial(flag)

        def forward(self, x):
            return x * 2 if self.f() else x * 3
    return M()


def _in_a_dict(flag):
    table = {"tracing": flag}

    class M(nn.Module):
        def forward(self, x):
            return x * 2 if table["tracing"]() else x * 3
    return M()


_FLAGS = {"torch.compiler.is_compiling": lambda: torch.compiler.is_compiling,
          "torch.compiler.is_exporting": lambda: torch.compiler.is_exporting,
          "torch._dynamo.is_compiling": lambda: torch._dynamo.is_compiling,
          "torch._utils.is_compiling": lambda: torch._utils.is_compiling}


@pytest.mark.parametrize("flag", sorted(_FLAGS))
@pytest.mark.parametrize("bind", [_closure, _default, _class_attribute, _partial, _in_a_dict],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_flag_bound_anywhere_is_compared_and_refused(bind, flag):
    """Failed before (closure, default, class attribute, partial, dict): compiled silently, [2, 2, 2] where eager
    gave [3, 3, 3]."""
    m = bind(_FLAGS[flag]())
    with pytest.raises(AtenExecutorError, match=_REFUSED):
        _compile(m)


def test_the_flag_functions_are_themselves_again_after_compile():
    """The flag functions keep their identity and get their own code back (Dynamo's tables are keyed by them)."""
    before = {name: (get(), get().__code__) for name, get in _FLAGS.items()}
    said = r"torch\.compiler\.is_compiling\(\) at test_aten_round69\.py:\d+\), which torch\.export answers True"
    with pytest.raises(AtenExecutorError, match=said):
        _compile(_closure(torch.compiler.is_compiling))
    for name, get in _FLAGS.items():
        fn, code = before[name]
        assert get() is fn and fn.__code__ is code, name
        # (a recorder's name may stay, bound to the flag's plain copy, for a call in flight in another thread)
        assert not any(getattr(v, "__name__", "") == "memplan_tracing_flag" for k, v in fn.__globals__.items()
                       if k.startswith("_memplan_tracing_flag_")), name
    assert not flag_reads._SWAPPED and not flag_reads._WRAPPED


def test_a_flag_bound_anywhere_whose_branches_agree_is_warned_and_compiled():
    flag = torch.compiler.is_compiling

    class M(nn.Module):
        def forward(self, x, f=flag):
            return x * 2 if f() else x + x
    flag_reads._WARNED.clear()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        step = _compile(M())
    assert any(issubclass(w.category, flag_reads.TracingFlagWarning) for w in got)
    assert torch.equal(step(torch.ones(3)), torch.full((3,), 2.0))


# 2. a user's own package installed non-editable (site-packages) ------------------------------------------------------

_PACKAGE = '''import torch
from torch import nn


class M(nn.Module):
    def forward(self, x):
        if torch.compiler.is_compiling():
            return x * 2
        return x * 3
'''


def _installed_package(tmp_path, monkeypatch, name):
    """A package ``name`` in a ``site-packages`` directory on ``sys.path`` (``pip install .`` of the user's code)."""
    import importlib
    import sys

    site = tmp_path / "lib" / "python3" / "site-packages"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(_PACKAGE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_the_users_own_package_installed_into_site_packages_is_compared_and_refused(tmp_path, monkeypatch):
    """Failed before: the package counted as installed, no comparison ran, and the program compiled [2, 2, 2] where
    eager gave [3, 3, 3], silently."""
    from runtime.aten.installed import installed_file

    pkg = _installed_package(tmp_path, monkeypatch, "r69_users_pkg")
    assert installed_file(pkg.__file__)
    with pytest.raises(AtenExecutorError, match=_REFUSED):
        _compile(pkg.M())


def test_the_users_package_wrapped_by_a_script_class_is_still_the_users(tmp_path, monkeypatch):
    pkg = _installed_package(tmp_path, monkeypatch, "r69_users_pkg2")

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = pkg.M()

        def forward(self, x):
            return self.inner(x) + 1
    with pytest.raises(AtenExecutorError, match=_REFUSED):
        _compile(Wrapper())


def test_a_model_librarys_installed_package_is_still_not_compared(tmp_path, monkeypatch):
    """A library (``installed.LIBRARIES``: transformers, timm...) defining the tree's class is not the user's: its
    reads are recorded, not compared (as transformers' in every model)."""
    from runtime.aten import installed

    monkeypatch.setattr(installed, "LIBRARIES", installed.LIBRARIES | {"r69_lib_pkg"})
    pkg = _installed_package(tmp_path, monkeypatch, "r69_lib_pkg")

    def compared(*_a, **_k):
        raise AssertionError("a model library's flag read was compared with eager")

    monkeypatch.setattr(flag_reads, "_both", compared)
    step = _compile(pkg.M())
    assert [pkg for _f, _w, pkg in step.program.flag_reads] == ["r69_lib_pkg"]


def test_user_packages_are_the_tree_classes_packages_but_libraries_and_the_standard_library():
    from runtime.aten.installed import user_packages

    lib = type("Block", (nn.Module,), {"__module__": "transformers.models.llama.modeling_llama"})
    mine = type("Net", (nn.Module,), {"__module__": "mypkg.models.net"})
    std = type("Odd", (nn.Module,), {"__module__": "collections"})
    root = mine()
    root.a, root.b, root.c, root.d = lib(), std(), nn.Linear(2, 2), _closure(torch.compiler.is_compiling)
    assert user_packages(torch, root) == {"mypkg", __name__.partition(".")[0]}
    assert user_packages(torch, lib()) == frozenset()


# 4. compile's eager run of forward leaves the module's nested state as it was -----------------------------------------

class _Stats:
    def __init__(self):
        self.count = 0
        self.seen = []


class _Slotted:
    __slots__ = ("count",)

    def __init__(self):
        self.count = 0


def _eager_branch_mutates():
    """A module whose eager branch (not the export's) changes what its attributes hold, in place."""
    import collections

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.log = {"calls": [], "deep": {"k": [1]}}
            self.stats = _Stats()
            self.slotted = _Slotted()
            self.held = [torch.zeros(2)]
            self.recent = collections.deque([1], maxlen=4)
            self.tags = {"a"}

        def forward(self, x):
            if not torch.compiler.is_compiling():
                self.log["calls"].append(1)
                self.log["deep"]["k"].append(2)
                self.log["deep"]["new"] = 3
                self.stats.count += 1
                self.stats.seen.append(x.shape)
                self.slotted.count += 1
                self.held[0].add_(1)
                self.recent.append(2)
                self.tags.add("b")
            return x * 2
    return M()


def _state(m):
    return (repr(m.log), m.stats.count, len(m.stats.seen), m.slotted.count, m.held[0].tolist(), list(m.recent),
            sorted(m.tags))


def test_compiles_eager_run_leaves_the_nested_state_as_it_was():
    """Failed before: after compile, ``log['calls'] == [1]``, ``log['deep']`` held ``new``, ``stats.count == 1``,
    ``held[0] == [1, 1]``... (round 68 put back the modules' own attributes by identity alone)."""
    m = _eager_branch_mutates()
    before = _state(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compile(m)
    assert _state(m) == before


def test_the_state_put_back_keeps_the_containers_identity():
    from runtime.aten.module_state import ModuleState

    m = _eager_branch_mutates()
    ids = (id(m.log), id(m.log["calls"]), id(m.stats), id(m.held[0]), id(m.recent))
    state = ModuleState(torch, m)
    with state.watching():   # (round 70: a tensor's storage is saved at its first write under the mode)
        m(torch.ones(2))
    m.log["calls"] = ["replaced"]
    state.restore()
    assert (id(m.log), id(m.log["calls"]), id(m.stats), id(m.held[0]), id(m.recent)) == ids
    assert m.log == {"calls": [], "deep": {"k": [1]}} and m.held[0].tolist() == [0.0, 0.0]


def test_a_snapshot_cut_by_its_bounds_is_warned(monkeypatch):
    from runtime.aten import module_state
    from runtime.aten.walk_bounds import StateWalkWarning

    monkeypatch.setattr(module_state, "DEPTH", 2)
    m = _eager_branch_mutates()
    m.chain = [[[["deep"]]]]
    with pytest.warns(StateWalkWarning, match=r"M\.chain\[0\]\[0\]"):
        module_state.ModuleState(torch, m)


# 5. the out= probe's resize warning; iterator positions without itertools' __reduce__ ---------------------------------

def test_the_out_probes_resize_warning_does_not_reach_stderr(capfd):
    """Failed before: two "An output with one or more elements was resized" lines from c10 on stderr at compile."""
    import sys

    class Losses(nn.Module):
        def forward(self, x, y):
            return nn.functional.mse_loss(x, y) + nn.functional.huber_loss(x, y, reduction="sum")
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    step = _compile(Losses(), x, y)
    print("other output kept", file=sys.stderr)
    err = capfd.readouterr().err
    assert "resized" not in err and "other output kept" in err
    assert torch.allclose(step(x, y), Losses()(x, y))


def test_a_line_written_to_stderr_during_the_probe_is_kept(capfd):
    import os

    from runtime.aten.lower import _resize_warnings_off

    with _resize_warnings_off(torch):
        os.write(2, b"An output with one or more elements was resized since it had shape [], ...\n")
        os.write(2, b"a line of its own\n")
    err = capfd.readouterr().err
    assert err == "a line of its own\n"


class _Count314(__import__("itertools").count):
    """``itertools.count`` as Python 3.14 has it: no ``__reduce__`` (no ``__dict__`` either, as the real one)."""
    __slots__ = ()

    def __reduce__(self):
        raise TypeError("cannot pickle 'itertools.count' object")


class _Count312(__import__("itertools").count):
    """``itertools.count`` as Python 3.12 has it: ``__reduce__`` warns (an error under ``-W error``)."""
    __slots__ = ()

    def __reduce__(self):
        warnings.warn("Pickle, copy, and deepcopy support will be removed from itertools in Python 3.14.",
                      DeprecationWarning, stacklevel=2)
        return super().__reduce__()


@pytest.mark.parametrize("kind", [_Count314, _Count312])
def test_next_of_a_held_itertools_count_is_refused_without_its_reduce(kind):
    """Failed before: the position came from ``__reduce__`` alone; without it (3.14, or 3.12 under ``-W error``) the
    count was unwatched and compiled silently, every call 1.0 where eager gave 2.0, 3.0..."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = kind(1)

        def forward(self, x):
            return x * next(self.steps)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(AtenExecutorError, match=r"forward advances the iterator M\.steps"):
            _compile(M())


def test_itertools_positions_move_with_next_and_stay_without_it():
    import itertools

    from runtime.aten.held_iterators import iterator_position

    made = [itertools.count(3), itertools.cycle([1, 2]), itertools.islice(iter(range(9)), 0, None, 2),
            itertools.chain([1], [2, 3]), itertools.tee([1, 2, 3])[0], itertools.repeat(1, 4),
            itertools.product([1, 2], [3, 4]), itertools.accumulate([1, 2, 3, 4]), itertools.pairwise([1, 2, 3, 4]),
            itertools.starmap(pow, [(1, 2), (2, 2), (3, 3)]), map(float, iter(range(5)))]
    for it in made:
        was = iterator_position(it)
        assert was is not None and was == iterator_position(it), it
        next(it)
        assert iterator_position(it) != was, it


# 3. an equal copy of a slotted settings object -------------------------------------------------------------------------

class _Slots:
    __slots__ = ("t", "name", "inner")

    def __init__(self, t, name="a", inner=None):
        self.t, self.name = t, name
        if inner is not None:
            self.inner = inner


def _slotted_module(cfg):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = cfg

        def forward(self, x):
            inner = getattr(self.cfg, "inner", None)
            return x * self.cfg.t + (inner.t if inner is not None else 0.0)
    return M()


def _run(step, m):
    x = torch.ones(3)
    try:
        return step(x).tolist(), m(x).tolist()
    except AtenExecutorError as e:
        return "refused", str(e)


@pytest.mark.parametrize("inner", [None, _Slots(0.5)], ids=["flat", "nested"])
def test_an_equal_copy_of_a_slotted_settings_object_is_taken(inner):
    """Failed before: every compiled call after ``m.cfg = copy.deepcopy(m.cfg)`` was refused ("M.cfg is <...> now")
    though each slot held what compile saw."""
    import copy

    m = _slotted_module(_Slots(2.0, inner=inner))
    step = _compile(m)
    m.cfg = copy.deepcopy(m.cfg)
    got, want = _run(step, m)
    assert got == want


def test_a_slotted_copy_taken_is_watched_after():
    """The copy's slots are the ones watched once it is taken: a change to it after is seen, not run with 2.0."""
    import copy

    m = _slotted_module(_Slots(2.0))
    step = _compile(m)
    m.cfg = copy.deepcopy(m.cfg)
    assert _run(step, m)[0] == [2.0, 2.0, 2.0]
    m.cfg.t = 5.0
    got, want = _run(step, m)
    assert got == "refused" or got == want == [5.0, 5.0, 5.0]


@pytest.mark.parametrize("change", ["value", "name", "unset", "class", "inner", "tensor"])
def test_a_slotted_copy_that_differs_is_still_refused(change):
    m = _slotted_module(_Slots(2.0, inner=_Slots(0.5)))
    step = _compile(m)
    t = {"value": 3.0, "tensor": torch.tensor(2.0)}.get(change, 2.0)
    other = _Slots(t, name="b" if change == "name" else "a",
                   inner=None if change == "unset" else _Slots(0.25 if change == "inner" else 0.5))
    if change == "class":
        other = type("Other", (_Slots,), {"__slots__": ()})(2.0, inner=_Slots(0.5))
    m.cfg = other
    got, want = _run(step, m)
    assert got == "refused" or got == want, (got, want)
    if change in ("value", "inner", "unset", "tensor"):
        assert got == "refused" or got == want


def _nested():
    """Nested lists, dicts, sets and plain objects, with numbers, strings and small tensors at the leaves."""
    from hypothesis import strategies as st

    leaves = st.one_of(st.integers(-3, 3), st.text(max_size=2), st.builds(lambda v: torch.full((2,), float(v)),
                                                                        st.integers(-2, 2)))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=2), inner, max_size=3),
        st.builds(_holder, inner)), max_leaves=12)


class _Holder:
    def __init__(self, v):
        self.v = v


def _holder(v):
    return _Holder(v)


def _fingerprint(v, seen=None):
    """Values and identities of everything in ``v``, tensors by value."""
    if isinstance(v, torch.Tensor):
        return ("T", id(v), tuple(v.tolist()))
    if isinstance(v, list):
        return ("L", id(v), tuple(_fingerprint(x) for x in v))
    if isinstance(v, dict):
        return ("D", id(v), tuple((k, _fingerprint(x)) for k, x in v.items()))
    if isinstance(v, _Holder):
        return ("H", id(v), tuple(sorted((k, _fingerprint(x)) for k, x in vars(v).items())))
    return ("V", v)


def _mutate(v, choice):
    """One change in place somewhere in ``v`` (``choice`` picks where and what)."""
    places = []

    def walk(x):
        if isinstance(x, (list, dict, _Holder, torch.Tensor)):
            places.append(x)
        for y in (x if isinstance(x, list) else x.values() if isinstance(x, dict)
                  else vars(x).values() if isinstance(x, _Holder) else ()):
            walk(y)
    walk(v)
    x = places[choice % len(places)]
    if isinstance(x, torch.Tensor):
        x.add_(1)
    elif isinstance(x, list):
        x.append(choice) if choice % 2 else x.clear()
    elif isinstance(x, dict):
        x["new"] = choice
    else:
        x.v = ["replaced", choice]


def test_module_state_puts_back_any_nested_change_in_place():
    """Property: whatever nested state a module holds and wherever one change in place lands, ``restore`` leaves
    every value and identity as it was (round 68's restore left each nested change)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from runtime.aten.module_state import ModuleState

    @settings(max_examples=60, deadline=None)
    @given(_nested(), st.lists(st.integers(0, 50), min_size=1, max_size=3))
    def check(value, choices):
        m = nn.Module()
        m.state = {"root": value}
        before = _fingerprint(m.state)
        saved = ModuleState(torch, m)
        with saved.watching():
            for c in choices:
                _mutate(m.state, c)
        saved.restore()
        assert _fingerprint(m.state) == before
    check()
