"""Round 62: Python state the ATen executor's compile watches, at any depth and in hooks, lazily built modules and
bounded ``functools.lru_cache`` helpers (CPU, tiny, torch only).

Bugs fixed (each test marked "failed before" did):
- ``module_containers`` and ``python_state`` looked two levels into a container: ``self.a = {"x": [[[0]]]}`` with
  ``self.a["x"][0][0][0] += 1`` in ``forward`` (or a global so nested) compiled, and every compiled call ran the
  export's count (eager's calls advance it). Now the walk is bounded by size (1024 items of a container, 10,000
  inner containers), not depth, and safe on cycles.
- a module attribute holding itself (``a.append(a)`` inside ``self.a``) failed in torch's export after ~26 s with
  "maximum recursion depth exceeded", naming nothing; now refused at once naming the attribute.
- ``hook_state`` kept a shallow copy of a hook's containers across compile's second exports: a hook counting in
  ``state[0][0]`` stood at 2 after compile (the export's one call is documented).
- a layer built lazily in ``forward`` into a global dict, a class attribute's dict or a closure's list
  (``if "p" not in PROJ: PROJ["p"] = nn.Linear(...)``) compiled: the program held the export's layer and its weights,
  eager's first call built another, and every compiled call differed from eager (by 1.76 on a 2x4 input). Python
  state holding a new object (no tensor, no plain value) is now refused as a count is.
- a bounded ``functools.lru_cache`` that held an eager entry and gained the export's was refused at compile where
  the export's entry held nothing of the export: a cached method keyed by its module (``self``) returning split
  sizes, a helper returning a list of ints. Now a module of the tree and lists, sets and dicts of plain values are
  harmless too; an entry holding a tensor is still refused.
- the hunt (20+ hostile modules, compiled against eager for 3 calls) found these compiling silently wrong, now
  refused naming the state: a forward hook that changes its own state and returns a value from it (a closure's
  ``n[0] += 1; return out * n[0]``, a callable object's field, a ``functools.partial``'s list); an iterator or
  generator in a global or a closure variable (``next(CYCLE)``); the fields of the user's object in a global or in
  a global list (``CFG.n += 1``); a function held as a module's attribute whose closure counts
  (``self.step = make_counter()``); ``self.__class__ = Other`` in ``forward``; a new key of a ``defaultdict(list)``
  holding a count (``STATS["k"].append(1)``: a new list of plain values was no plain change); a global bumped
  through ``globals()["N"]``, a list bound by a ``functools.partial`` attribute, an iterator on a class, a
  ``threading.local``'s field, a ``ContextVar``.
- a forward hook counting in a list the module holds too was refused as ``forward``'s change (one held nowhere
  compiles, seeing the export's one call).
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
import itertools
import threading

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs, streams=1):
    return compile(m, inputs, streams=streams, cuda_graph=False, poison=True, device="cpu")


# --- containers nested at any depth -------------------------------------------------------------------------------


def _nest(depth: int):
    """``depth`` lists around a count: ``[[...[0]...]]``."""
    v: object = [0]
    for _ in range(depth - 1):
        v = [v]
    return v


def _cell(v, depth):
    for _ in range(depth - 1):
        v = v[0]
    return v


class _DeepAttr(nn.Module):
    def __init__(self, depth: int):
        super().__init__()
        self.depth = depth
        self.a = {"x": _nest(depth)}

    def forward(self, x):
        cell = _cell(self.a["x"], self.depth)
        cell[0] += 1
        return x * cell[0]


@pytest.mark.parametrize("depth", [2, 3, 6, 40])
def test_a_count_nested_deep_in_a_module_attribute_is_refused_and_put_back(depth):
    """Failed before for depth 3 and deeper (the count three levels inside ``self.a`` compiled: every compiled call
    returned the export's ``x * 1``, eager's ``x * 2``, ``x * 3``)."""
    m = _DeepAttr(depth)
    with pytest.raises(AtenExecutorError, match=r"forward changes _DeepAttr\.a\['x'\](\[0\])* in place"):
        _compile(m, torch.randn(2, 3))
    assert _cell(m.a["x"], depth) == [0]   # (put back as it was)


G_DEEP = {"x": [[[0]]]}


class _DeepGlobal(nn.Module):
    def forward(self, x):
        G_DEEP["x"][0][0][0] += 1
        return x * G_DEEP["x"][0][0][0]


def test_a_count_nested_deep_in_a_global_is_refused_and_put_back():
    """Failed before: compiled; every compiled call returned the export's ``x * 1``."""
    with pytest.raises(AtenExecutorError, match=r"the global G_DEEP .* at \['x'\] at \[0\] at \[0\] in place"):
        _compile(_DeepGlobal(), torch.randn(2, 3))
    assert G_DEEP == {"x": [[[0]]]}


class _Cyclic(nn.Module):
    """A list holding itself, and a count beside it, three levels down; and a long chain of nested lists."""

    def __init__(self, bump: bool):
        super().__init__()
        a = [0]
        a.append(a)
        chain: list = []
        for _ in range(5000):
            chain = [chain]
        self.a = ({"x": [[a]]},)
        self.chain = [chain]
        self.bump = bump

    def forward(self, x):
        if self.bump:
            self.a[0]["x"][0][0][0] += 1
        return x * 2


def test_a_module_attribute_holding_itself_is_refused_at_once_naming_it():
    """Failed before: torch's export walked the attribute with its pytree and recursed without end: "torch.export
    failed for _Cyclic: maximum recursion depth exceeded" (after ~26 s on a loaded machine), naming nothing."""
    with pytest.raises(AtenExecutorError, match=r"_Cyclic\.a holds itself .*torch\.export walks every attribute"):
        _compile(_Cyclic(bump=False), torch.randn(2, 3))


def test_the_walk_is_safe_on_cycles_and_long_chains():
    """A cycle (``a.append(a)``) and a chain of 5,000 nested lists are walked without recursion: an unchanged one
    compiles (torch's own export walks the attributes too: the cycle is taken where it is no attribute of a module);
    a count inside it is refused."""
    from runtime.aten.module_containers import container_snapshots

    m = _Cyclic(bump=True)
    snaps = container_snapshots(torch, m)
    assert any(name == "_Cyclic.a[0]['x'][0][0]" for name, *_ in snaps)
    assert len(snaps) < 5100


# --- a hook's state: containers inside containers ------------------------------------------------------------------


class _Tap(nn.Module):
    """A feature tap (``self.feats.append(y)``): compile exports ``forward`` again to prove no call reads it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.feats: list = []

    def forward(self, x):
        y = self.lin(x)
        self.feats.append(y)
        return y * 2


def _hooked(nested: bool):
    """A feature tap whose forward hook counts its calls in ``[0]`` or in ``[[0]]`` (the state it closes over)."""
    torch.manual_seed(0)
    m = _Tap()
    state = [[0]] if nested else [0]

    def count(mod, args, out):
        if nested:
            state[0][0] += 1
        else:
            state[0] += 1

    m.register_forward_hook(count)
    return m, (lambda: state[0][0] if nested else state[0])


@pytest.mark.parametrize("nested", [False, True])
def test_a_hooks_count_in_a_list_of_lists_sees_the_exports_one_call(nested):
    """Failed before for ``nested``: compile's second exports (of the attributes ``forward`` sets) ran the hook too,
    and the state kept across them was a shallow copy holding the very inner list: the count stood at 2 after
    compile (one export's call is documented; the flat list's count stood at 1)."""
    m, count = _hooked(nested)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert count() == 1
    assert torch.equal(step(x), m(x)) and count() == 2


# --- a layer built lazily in forward, held beside the module ------------------------------------------------------

LAZY: dict = {}


class _LazyGlobal(nn.Module):
    def forward(self, x):
        if "p" not in LAZY:
            LAZY["p"] = nn.Linear(x.shape[-1], 4)
        return LAZY["p"](x)


class _LazyClassDict(nn.Module):
    store: dict = {}

    def forward(self, x):
        if "p" not in self.store:
            self.store["p"] = nn.Linear(x.shape[-1], 4)
        return self.store["p"](x)


def _lazy_closure():
    box: list = []

    class _LazyClosure(nn.Module):
        def forward(self, x):
            if not box:
                box.append(nn.Linear(x.shape[-1], 4))
            return box[0](x)

    return _LazyClosure(), box


@pytest.mark.parametrize("where", ["global", "class", "closure"])
def test_a_layer_built_lazily_beside_the_module_is_refused_and_left_unbuilt(where):
    """Failed before: compiled, every compiled call used the export's layer (its weights drawn at export) where
    eager's first call built another one: 1.76 off at the first call."""
    LAZY.clear()
    _LazyClassDict.store.clear()
    m, held = ((_LazyGlobal(), LAZY) if where == "global" else (_LazyClassDict(), _LazyClassDict.store)
               if where == "class" else _lazy_closure())
    with pytest.raises(AtenExecutorError, match=r"forward changes the .* in place .*Linear\(in_features=4"):
        _compile(m, torch.randn(2, 4))
    assert len(held) == 0   # (left unbuilt: eager's first call builds it)


def test_a_layer_built_by_an_eager_call_before_compile_is_the_programs():
    """Built once by eager, the layer is read as it is: compiled and eager agree call after call."""
    LAZY.clear()
    m = _LazyGlobal()
    x = torch.randn(2, 4)
    m(x)
    step = _compile(m, x)
    for _ in range(3):
        assert torch.equal(step(x), m(x))


# --- bounded lru_cache entries of plain values -----------------------------------------------------------------------


class _SplitByMethod(nn.Module):
    """A cached method keyed by its module: the export's key holds ``self``, its result two ints."""

    @functools.lru_cache(maxsize=4)  # noqa: B019 - the pattern under test
    def split(self, n):
        return (n // 2, n - n // 2)

    def forward(self, x):
        a, _b = self.split(x.shape[-1])
        return torch.cat([x[..., :a] * 2, x[..., a:]], -1)


@functools.lru_cache(maxsize=4)
def _sizes(n):
    return [n // 2, n - n // 2]


class _SplitByList(nn.Module):
    def forward(self, x):
        return torch.cat([t * (i + 1) for i, t in enumerate(x.split(_sizes(x.shape[-1]), -1))], -1)


@functools.lru_cache(maxsize=4)
def _ramp_list(n):
    return [torch.arange(n) * 0.5]


class _RampList(nn.Module):
    def forward(self, x):
        return x + _ramp_list(x.shape[-1])[0]


@pytest.mark.parametrize("cls", [_SplitByMethod, _SplitByList])
def test_a_bounded_cache_of_plain_values_with_eager_entries_compiles(cls):
    """Failed before: refused ("forward's export added an entry to the functools cache ... which held 1 entries of
    eager calls before"), though the entry is the very module and plain numbers."""
    m = cls()
    m(torch.randn(2, 6))   # (an eager entry for another width)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    for _ in range(3):
        assert torch.equal(step(x), m(x))


def test_a_bounded_cache_entry_holding_a_tensor_is_still_refused():
    m = _RampList()
    m(torch.randn(2, 6))
    with pytest.raises(AtenExecutorError, match="added an entry to the functools cache .*_ramp_list"):
        _compile(m, torch.randn(2, 4))
    assert type(m(torch.randn(2, 6))) is torch.Tensor


# --- the hunt's silently wrong ones, now refused ---------------------------------------------------------------


def _hook_flat():
    m = nn.Linear(4, 4)
    n = [0]

    def hook(mod, args, out):
        n[0] += 1
        return out * n[0]

    m.register_forward_hook(hook)
    return m, lambda: n[0]


class _ScaleHook:
    def __init__(self):
        self.d = {"a": {"n": 0}}

    def __call__(self, mod, args, out):
        self.d["a"]["n"] += 1
        return out * self.d["a"]["n"]


def _hook_object():
    m = nn.Linear(4, 4)
    h = _ScaleHook()
    m.register_forward_hook(h)
    return m, lambda: h.d["a"]["n"]


def _pre_hook_partial():
    def scale(store, mod, args):
        store[0][0] += 1
        return (args[0] * store[0][0],)

    m = nn.Linear(4, 4)
    store = [[0]]
    m.register_forward_pre_hook(functools.partial(scale, store))
    return m, lambda: store[0][0]


@pytest.mark.parametrize("make", [_hook_flat, _hook_object, _pre_hook_partial])
def test_a_hook_returning_a_value_from_state_it_changes_is_refused(make):
    """Failed before: compiled, every compiled call returned the export's ``out * 1`` (eager's second call
    ``out * 2``: 0.75 off)."""
    m, count = make()
    with pytest.raises(AtenExecutorError, match=r"a forward (pre-)?hook of Linear \(.*\) changes its own Python "
                                                r"state .* and returns a value"):
        _compile(m, torch.randn(2, 4))
    assert count() == 1   # (the export's one call of the hook)


def test_a_hook_returning_its_output_as_given_while_counting_compiles():
    """A hook that counts and returns the very output it was given is a counter (the documented one call)."""
    m = nn.Linear(4, 4)
    n = [0]

    def hook(mod, args, out):
        n[0] += 1
        return out

    m.register_forward_hook(hook)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert torch.equal(step(x), m(x))


CYCLE = itertools.cycle([1.0, 2.0, 3.0])


class _GlobalIterator(nn.Module):
    def forward(self, x):
        return x * next(CYCLE)


def _closure_generator():
    def numbers():
        n = 0
        while True:
            n += 1
            yield n

    it = numbers()

    class _ClosureGenerator(nn.Module):
        def forward(self, x):
            return x * next(it)

    return _ClosureGenerator()


@pytest.mark.parametrize("make", [_GlobalIterator, _closure_generator])
def test_an_iterator_in_a_global_or_closure_advanced_by_forward_is_refused(make):
    """Failed before: compiled, every compiled call used the export's value (eager's calls take the next: 1.56 off
    at the first call of the cycle's)."""
    with pytest.raises(AtenExecutorError, match=r"forward advances the iterator in the (global CYCLE|closure "
                                                r"variable it) .*\(next\(\) on it\)"):
        _compile(make(), torch.randn(2, 4))


@dataclasses.dataclass
class _Counter:
    n: int = 0


COUNTER = _Counter()
COUNTERS = [_Counter()]


class _GlobalObject(nn.Module):
    def forward(self, x):
        COUNTER.n += 1
        return x * COUNTER.n


class _GlobalListObject(nn.Module):
    def forward(self, x):
        COUNTERS[0].n += 1
        return x * COUNTERS[0].n


@pytest.mark.parametrize("make,obj", [(_GlobalObject, lambda: COUNTER), (_GlobalListObject, lambda: COUNTERS[0])])
def test_a_user_object_in_a_global_changed_by_forward_is_refused_and_put_back(make, obj):
    """Failed before: compiled (an object inside a global was watched nowhere): every compiled call used the export's
    count, and the export's change stayed (eager's first call after compile saw 2)."""
    with pytest.raises(AtenExecutorError, match=r"forward changes the attribute n of the _Counter object in the "
                                                r"global COUNTERS? .*\(0 at compile, 1 after the export's call\)"):
        _compile(make(), torch.randn(2, 4))
    assert obj().n == 0


def _make_counter():
    n = 0

    def step():
        nonlocal n
        n += 1
        return n

    return step


class _HeldCounter(nn.Module):
    def __init__(self):
        super().__init__()
        self.step = _make_counter()

    def forward(self, x):
        return x * self.step()


def test_a_function_held_as_an_attribute_whose_closure_counts_is_refused():
    """Failed before: compiled (functions held by a module's instance were not walked): the export's count at every
    compiled call."""
    m = _HeldCounter()
    with pytest.raises(AtenExecutorError, match=r"the closure variable n of _make_counter.<locals>.step \(0 at "
                                                r"compile, 1 after"):
        _compile(m, torch.randn(2, 4))
    assert m.step() == 1   # (put back: eager's first count is 1)


class _SwapsClass(nn.Module):
    def forward(self, x):
        self.__class__ = _Swapped
        return x * 2


class _Swapped(_SwapsClass):
    def forward(self, x):
        return x * 3


def test_forward_changing_its_modules_class_is_refused_and_put_back():
    """Failed before: compiled, every compiled call returned ``x * 2`` (eager's second: ``x * 3``)."""
    m = _SwapsClass()
    with pytest.raises(AtenExecutorError, match=r"forward changes the class of _SwapsClass \(<class '.*_SwapsClass'> "
                                                r"at compile, <class '.*_Swapped'> after"):
        _compile(m, torch.randn(2, 4))
    assert type(m) is _SwapsClass


STATS: collections.defaultdict = collections.defaultdict(list)


class _DefaultdictGlobal(nn.Module):
    def forward(self, x):
        STATS["k"].append(1)
        return x * len(STATS["k"])


class _DefaultdictAttribute(nn.Module):
    def __init__(self):
        super().__init__()
        self.stats = collections.defaultdict(list)

    def forward(self, x):
        self.stats["k"].append(1)
        return x * len(self.stats["k"])


@pytest.mark.parametrize("make", [_DefaultdictGlobal, _DefaultdictAttribute])
def test_a_new_list_of_counts_in_a_defaultdict_is_refused(make):
    """Failed before (both): ``STATS["k"]``'s new ``[1]`` was no plain change (a list, not a number): compiled, every
    compiled call returned ``x * 1``."""
    STATS.clear()
    m = make()
    with pytest.raises(AtenExecutorError, match=r"forward changes (the global STATS|_DefaultdictAttribute.stats) .*in "
                                                r"place"):
        _compile(m, torch.randn(2, 4))
    assert not STATS and not getattr(m, "stats", None)


# --- a hook counting in a container the module holds too ------------------------------------------------------------


class _HookCountsInModuleList(nn.Module):
    def __init__(self, forward_bumps: bool):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self._counts = [[0]]
        self.forward_bumps = forward_bumps
        counts = self._counts

        def hook(mod, args, out):
            counts[0][0] += 1

        self.lin.register_forward_hook(hook)

    def forward(self, x):
        if self.forward_bumps:
            self._counts[0][0] += 1
        return self.lin(x) * 2


def test_a_hook_counting_in_a_list_the_module_holds_compiles_seeing_one_call():
    """Failed before: refused as "forward changes _HookCountsInModuleList._counts[0] in place", where the same hook
    counting in a list held nowhere compiles (the export's one call, documented)."""
    m = _HookCountsInModuleList(forward_bumps=False)
    x = torch.randn(2, 4)
    step = _compile(m, x)
    assert m._counts == [[1]]
    assert torch.equal(step(x), m(x))


def test_forward_bumping_the_hooks_list_itself_is_still_refused():
    with pytest.raises(AtenExecutorError, match=r"forward changes _HookCountsInModuleList\._counts\[0\] in place"):
        _compile(_HookCountsInModuleList(forward_bumps=True), torch.randn(2, 4))


# --- the sweep's round 62 entries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deep_config_read", "counting_hook_as_given", "cached_split_method",
                                  "lazy_linear_built", "held_closure"])
def test_round62_blocks_are_bitwise_on_one_and_three_streams(name):
    """Each must compile (round 62's stricter watches refuse none of them) and equal eager bitwise; before this
    round ``deep_config_read``'s five levels were partly unwatched, and ``counting_hook_as_given`` and
    ``cached_split_method`` were refused."""
    import runtime.aten.sweep as sweep

    case = next(c for c in sweep.CASES if c.name == name)
    seen = []
    modes = [("s1", 1, False), ("s3", 3, False)]
    sweep.run_case(case, torch.device("cpu"), modes, lambda n, mode, verdict, t, **kw: seen.append((mode, verdict)))
    assert seen == [("s1", "bitwise"), ("s3", "bitwise")], seen


def test_round62_sweep_entries_are_listed_once():
    import runtime.aten.sweep as sweep
    from runtime.aten.sweep_blocks62 import BLOCKS62

    listed = [c.name for c in sweep.CASES]
    assert len(BLOCKS62) >= 9 and all(listed.count(n) == 1 for n, _m, _i in BLOCKS62)


# --- the hunt's second batch: state reached through globals(), partials, classes, thread-locals, context vars -----

N_VIA_GLOBALS = 0
CLASS_ITER_START = 1
TLOCAL = threading.local()
CVAR = contextvars.ContextVar("cvar62", default=0)


class _ViaGlobals(nn.Module):
    def forward(self, x):
        globals()["N_VIA_GLOBALS"] += 1
        return x * globals()["N_VIA_GLOBALS"]


def _bump_bound(store, t):
    store[0][0] += 1
    return t * store[0][0]


class _PartialHeld(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = functools.partial(_bump_bound, [[0]])

    def forward(self, x):
        return self.f(x)


class _ClassIterator(nn.Module):
    it = itertools.count(1)

    def forward(self, x):
        return x * next(type(self).it)


class _ThreadLocal(nn.Module):
    def forward(self, x):
        TLOCAL.n = getattr(TLOCAL, "n", 0) + 1
        return x * TLOCAL.n


class _ContextVar(nn.Module):
    def forward(self, x):
        CVAR.set(CVAR.get() + 1)
        return x * CVAR.get()


@pytest.mark.parametrize("make,message", [
    (_ViaGlobals, r"forward changes the global N_VIA_GLOBALS .*\(0 at compile, 1 after"),
    (_PartialHeld, r"forward changes the argument 0 bound by _PartialHeld\.f at \[0\] in place"),
    (_ClassIterator, r"forward advances the iterator in the class attribute _ClassIterator\.it"),
    (_ThreadLocal, r"forward changes the (attribute n of the _local object in the global TLOCAL|attributes of the "
                   r"_local object in the global TLOCAL)"),
    (_ContextVar, r"forward changes the context variable cvar62 in the global CVAR .*\(0 at compile, 1 after"),
], ids=["globals()", "partial", "class iterator", "threading.local", "ContextVar"])
def test_state_reached_through_globals_partials_classes_threads_and_contexts_is_refused(make, message):
    """Failed before (each): compiled, every compiled call used the export's count (1.55 off at the first or second
    call); ``globals()["N"]`` names no ``N`` in the code, a partial's bound list, an iterator on a class, a
    ``threading.local``'s field and a ``ContextVar`` were watched nowhere."""
    TLOCAL.__dict__.clear()
    with pytest.raises(AtenExecutorError, match=message):
        _compile(make(), torch.randn(2, 4))
    assert N_VIA_GLOBALS == 0 and CVAR.get() == 0 and getattr(TLOCAL, "n", 0) == 0
