"""Round 60 (mutation60): tests that kill the mutants ``docs/experiments/mutation_s60.py`` found alive in the code
round 59 added or changed (the default solve's wide polish tier, the search's bulk partitions, parts and preorder
keys, the index accessors, the importer's scatter relayout, and the modules split out of ``runtime/aten/ambient.py``).
Each test's docstring names the mutants (ids of ``docs/experiments/mutation_s60.txt``) it kills; each fails with its
mutants applied and passes without. They test behaviour (verdicts, refusals, layouts, which path is taken), never the
exact arena of a heuristic plan."""

from __future__ import annotations

import random
import types

from memplan.examples import diamond
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, auto, search_tree
from memplan.solvers.options import SearchParams

# --- memplan/solvers/auto.py: the wide polish tier ------------------------------------------------------------------


def _chain(n: int) -> BufferProblem:
    """``n`` buffers of 256 B live one after another: no two conflict (bound 256)."""
    return BufferProblem(sizes=[256] * n, lower=list(range(n)), upper=[i + 1 for i in range(n)], alignment=1)


def test_no_polish_at_the_bound_whatever_the_problems_size():
    """Heuristics that ended at the bound leave the search nothing to find, on a small problem too (kills auto 0 and
    2: ``arena <= lb`` skipped or made ``<``, so a small problem at its bound was polished), and one just above it is
    (the small tier: any gap)."""
    for n in (1, 10, auto.POLISH_BUFFERS):   # (the small tier's sizes, whatever its limit)
        assert not auto.worth_polish(_chain(n), 1000, 1000)
        assert auto.worth_polish(_chain(n), 1001, 1000)
    assert not auto.worth_polish(_chain(10), 999, 1000)


def test_an_empty_problem_never_polishes():
    """``polishes``: no buffer, no polish (kills auto 1 and 3: ``0 <`` dropped or made ``0 <=``), as ``small`` says;
    up to ``POLISH_WIDE_BUFFERS`` without a time limit it may, above or with a time limit not."""
    empty = BufferProblem(sizes=[], lower=[], upper=[])
    assert not auto.small(empty) and not auto.polishes(empty, SolveOptions())
    wide = auto.POLISH_WIDE_BUFFERS
    assert auto.polishes(_chain(1), SolveOptions()) and auto.polishes(_chain(wide), SolveOptions())
    assert not auto.polishes(_chain(wide + 1), SolveOptions())
    assert not auto.polishes(_chain(10), SolveOptions(time_limit=1.0))


# --- memplan/solvers/search_tree.py: preorder keys in bulk from KEYS_BULK_BUFFERS ------------------------------------


def test_preorder_keys_are_made_in_bulk_from_exactly_keys_bulk_buffers(monkeypatch):
    """``KEYS_BULK_BUFFERS`` (128): a subproblem of 127 buffers is keyed in Python, one of 128 in bulk (kills tree 7:
    every subproblem keyed in bulk, and tree 9: ``>=`` made ``>``, 128 keyed in Python), the same order either way."""
    k = search_tree.KEYS_BULK_BUFFERS
    rng = random.Random(7)
    n = max(300, 2 * k)
    lo = [rng.randint(0, n) for _ in range(n)]
    p = BufferProblem(sizes=[rng.randint(1, 5000) for _ in range(n)], lower=lo,
                      upper=[v + rng.randint(1, 30) for v in lo], alignment=1)
    s = search_tree.PackingSearch(p, SearchParams(), search_tree.WorkBudget(10**9, 1e9))
    s.total, s.noise, s.order_key = s.total0.copy(), None, SearchParams().preorders[0]
    assert s.key_bulk and len(s.active) > k
    real, calls = search_tree.PackingSearch._bulk_keys, []

    def spied(self, bufs):
        calls.append(len(bufs))
        return real(self, bufs)
    monkeypatch.setattr(search_tree.PackingSearch, "_bulk_keys", spied)
    small, edge = s.active[:k - 1], s.active[:k]
    keys_small = s._keys(small)
    assert calls == []
    keys_edge = s._keys(edge)
    assert calls == [k]
    assert keys_small == s._keys(small) and keys_edge == real(s, edge)


# --- memplan/graph.py: index accessors --------------------------------------------------------------------------------


def test_graph_writers_of_the_first_tensor():
    """``Graph.writers(0)`` answers (kills graph 16: ``t < 0`` made ``t <= 0``, refusing index 0): the first tensor
    of ``diamond`` is the input, written by no node; the output's writer is the last node."""
    g = diamond()
    assert g.writers(0) == []
    assert g.writers(len(g.tensors) - 1) == [len(g.nodes) - 1]


# --- memplan/problem.py: conflicts ------------------------------------------------------------------------------------


def test_a_buffer_live_at_no_time_conflicts_with_none_either_way():
    """A buffer of bytes over an empty interval ``[t, t)`` inside another's interval conflicts with it neither as
    ``i`` nor as ``j`` (kills problem 19: only ``j``'s empty interval tested)."""
    p = BufferProblem(sizes=[64, 64, 64], lower=[0, 3, 1], upper=[8, 3, 5], alignment=1)
    assert not p.conflicts(1, 0) and not p.conflicts(0, 1)
    assert p.conflicts(0, 2) and p.conflicts(2, 0)


# --- memplan/importers/torch/layouts.py: the scatter relayout ---------------------------------------------------------


def _scatter_node(x):
    """A stand-in of a torch.fx node whose first argument's recorded value is ``x``."""
    return types.SimpleNamespace(args=[types.SimpleNamespace(meta={"val": x})])


def test_an_overlapping_inputs_scatter_result_off_its_storages_start_is_laid_out_again():
    """``as_strided_scatter`` over an expanded (overlapping) input: eager's result is a dense clone at storage offset
    0. A recorded result with that clone's strides but at another offset is laid out again (kills layouts 30: the
    ``storage_offset() == 0`` test dropped, and 32: made ``!=``); one already laid out as eager's is kept itself."""
    from needs import need

    torch = need("torch")
    from memplan.importers.torch import layouts

    x = torch.empty(4, device="meta").expand(3, 4)
    want = torch.empty_strided((3, 4), (0, 1), device="meta").clone().stride()
    node = _scatter_node(x)
    off = torch.empty(16, device="meta").as_strided((3, 4), want, 4)
    got = layouts._scatter_result_as_eager(torch, "as_strided_scatter.default", node, off)
    assert got is not off and (got.shape, got.stride(), got.storage_offset()) == ((3, 4), want, 0)
    ok = torch.empty_strided((3, 4), want, device="meta")
    assert layouts._scatter_result_as_eager(torch, "as_strided_scatter.default", node, ok) is ok


def test_a_fake_scatter_result_laid_out_again_stays_on_its_device():
    """A ``slice_scatter`` result the fake-tensor cache recorded at offset 0 of a smaller storage is laid out as
    ``clone_preserve_strides(input)``: the input's strides, storage offset and storage size, on the result's own
    device: a fake tensor of the result's own fake mode, never memory allocated for real (a model's activation of
    gigabytes), and a meta one for a meta result (kills layouts 31 and 33: the fake mode's conditional swapped or
    flipped, a real CPU tensor made outside the mode, and ``with None`` for a meta result)."""
    from needs import need

    torch = need("torch")
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from memplan.importers.torch import layouts

    mode = FakeTensorMode()
    with mode:
        x = torch.empty(4, 8)[:, 2:]
        v = torch.empty(4, 6)
    got = layouts._scatter_result_as_eager(torch, "slice_scatter.default", _scatter_node(x), v)
    assert got is not v and got.device == v.device == torch.device("cpu")
    assert isinstance(got, FakeTensor) and got.fake_mode is mode
    assert (got.shape, got.stride(), got.storage_offset()) == ((4, 6), (8, 1), 2)
    assert got.untyped_storage().nbytes() == 128
    same = layouts._scatter_result_as_eager(torch, "slice_scatter.default", _scatter_node(x), got)
    assert same is got
    xm = torch.empty(4, 8, device="meta")[:, 2:]
    meta = layouts._scatter_result_as_eager(torch, "slice_scatter.default", _scatter_node(xm),
                                            torch.empty(4, 6, device="meta"))
    assert meta.is_meta and (meta.stride(), meta.storage_offset(), meta.untyped_storage().nbytes()) == ((8, 1), 2, 128)


# --- runtime/aten/call_args.py ----------------------------------------------------------------------------------------


def test_an_arguments_structure_change_names_both_specs_cut_at_120_characters():
    """``input_changes``' refusal of a dict argument given a key shows each pytree spec in one line of at most 120
    characters and ``...`` (kills callargs 34: the limit's default 120 made 121)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.call_args import input_changes, input_structure

    arg = {f"key_number_{k}": torch.zeros(1) for k in range(20)}
    before = [("state", arg, *input_structure(torch, arg))]
    arg["one_more"] = torch.zeros(1)
    ((name, what),) = input_changes(torch, before)
    assert name == "state" and what.startswith("its structure changed (")
    first, second = what[len("its structure changed ("):-len(" after)")].split(" before the call, ")
    assert len(first) == len(second) == 123 and first.endswith("...") and second.endswith("...")


# --- runtime/aten/held_iterators.py -----------------------------------------------------------------------------------


def _holder(torch, it):
    """A module holding ``it`` beside plain attributes (a count, a name, a list and a dict of ints)."""
    m = torch.nn.Module()
    m.it, m.n, m.name, m.steps, m.cfg = it, 3, "x", [1, 2], {"a": 1}
    return m


def _pulls(it):
    """A generator that waits at one instruction and takes each item from ``it``: its position is ``it``'s alone."""
    while True:
        yield next(it)


def test_held_iterators_list_the_iterators_alone():
    """A module's ints, strings, lists and dicts of ints are no iterators (kills iters 42: the ``Iterator`` test
    dropped, every value without a ``__dict__`` listed); its iterator is, under the attribute's name."""
    from needs import need

    torch = need("torch")
    from runtime.aten.held_iterators import held_iterators

    assert [label for label, _, _ in held_iterators(torch, _holder(torch, iter([1, 2])))] == ["Module.it"]


def test_a_generator_pulling_from_a_map_is_seen_to_advance():
    """A generator waiting at one ``yield`` whose local is a ``map`` over a list iterator: its position reads that list
    iterator's index four levels down, within the limits counted from the top (kills iters 39: ``iterator_position``'s
    ``depth`` default 0 made 1, the index then one level past the limit and the advance unseen)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.held_iterators import advanced_iterators, held_iterators

    gen = _pulls(map(float, iter([1.0, 2.0, 3.0, 4.0])))
    next(gen)   # (from now on it waits at the same instruction)
    m = _holder(torch, gen)
    held = held_iterators(torch, m)
    assert advanced_iterators(held) == []
    next(m.it)
    assert advanced_iterators(held) == ["Module.it"]


def test_a_count_past_the_small_ints_that_did_not_move_is_no_advance():
    """``itertools.count(10**6)``: its position holds an int that ``__reduce__`` makes anew each time; an equal value
    is the same position (kills iters 40: plain values taken by identity, so a count that did not move was seen to
    advance), and one step is an advance."""
    import itertools

    from needs import need

    torch = need("torch")
    from runtime.aten.held_iterators import advanced_iterators, held_iterators

    m = _holder(torch, itertools.count(10**6))
    held = held_iterators(torch, m)
    assert advanced_iterators(held) == []
    next(m.it)
    assert advanced_iterators(held) == ["Module.it"]


class _UsersIterator:
    """An iterator of the user's own class (it has a ``__dict__``: a settings object ``python_state`` watches), whose
    ``__reduce__`` records each call: user code the iterator watch must not run."""

    def __init__(self):
        self.i, self.reduced = 0, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        return float(self.i)

    def __reduce__(self):
        self.reduced += 1
        return (type(self), (), {"i": self.i})


def test_the_iterator_watch_runs_no_reduce_of_the_users_own_iterator():
    """A ``map`` over an iterator of the user's own class: the map is watched, the user's object inside it is taken
    by identity, its ``__reduce__`` (user code, with effects of its own) never called (kills iters 41: the
    ``__dict__`` test dropped at depth, the user's ``__reduce__`` called at every position read)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.held_iterators import advanced_iterators, held_iterators

    users = _UsersIterator()
    m = _holder(torch, map(float, users))
    held = held_iterators(torch, m)
    assert [label for label, _, _ in held] == ["Module.it"]
    advanced_iterators(held)
    assert users.reduced == 0


# --- runtime/aten/module_containers.py --------------------------------------------------------------------------------


def test_container_snapshots_of_what_is_no_module_are_none():
    """A callable that is no ``nn.Module`` holds no watched containers (kills contain 43: the check skipped, an
    AttributeError from ``named_modules``)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.module_containers import container_snapshots

    assert container_snapshots(torch, lambda x: x) == []
    assert container_snapshots(torch, None) == []


def test_the_containers_inside_a_container_of_over_1024_items_are_not_snapshotted():
    """``_snapshot``: the containers inside one of at most 1024 items are watched, those inside a longer one not (its
    own entry alone: kills contain 44, the length limit dropped, 1025 more snapshots taken)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.module_containers import container_snapshots

    m = torch.nn.Module()
    m.big, m.small = [[i] for i in range(1025)], [[i] for i in range(1024)]
    names = [name for name, *_ in container_snapshots(torch, m)]
    assert names[0] == "Module.big" and "Module.big[0]" not in names and len(names) == 2 + 1024
    assert "Module.small[0]" in names and "Module.small[1023]" in names


def test_a_tensor_slot_given_a_count_is_a_plain_change():
    """``plain_change``: a list slot whose number a tensor replaced is a change the next eager call reads (kills
    contain 47: the items of the list before the call that were replaced left out, only the tensor that replaced
    it seen), as one whose tensor a number replaced; a tensor replacing a tensor is none."""
    from needs import need

    torch = need("torch")
    from runtime.aten.module_containers import plain_change

    assert plain_change([5], [torch.zeros(1)])
    assert plain_change([torch.zeros(1)], [5])
    assert not plain_change([torch.zeros(1)], [torch.ones(1)])
    assert plain_change([4], [5])
    assert plain_change({"k": torch.zeros(1)}, {"k": 5})


# --- runtime/aten/python_state.py -------------------------------------------------------------------------------------


def test_python_state_of_what_is_no_module_is_none():
    """A callable that is no ``nn.Module`` has no Python state watched (kills pystate 48: the check skipped, an
    AttributeError from ``modules``)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.python_state import python_state

    assert python_state(torch, lambda x: x) == []
    assert python_state(torch, None) == []


# --- runtime/aten/hook_state.py ---------------------------------------------------------------------------------------

_HOOK_LOG: list = []
_HOOK_CALLS = 0


def _log_hook(mod, args, out):
    global _HOOK_CALLS
    _HOOK_CALLS += 1
    _HOOK_LOG.append(1)


def test_hook_state_kept_names_and_puts_back_what_a_hook_changed():
    """Around a call (an export), a forward hook's closure list appended to in place, its module's global list and its
    global count are put back, and the places it changed are named (kills hooks 56: a global number skipped, the
    count left one call ahead)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.hook_state import hook_state_kept

    seen: list = []

    def closure_hook(mod, args, out):
        seen.append(1)

    m = torch.nn.Linear(2, 2)
    m.register_forward_hook(closure_hook)
    m.register_forward_hook(_log_hook)
    calls = _HOOK_CALLS
    with hook_state_kept(torch, m) as changed:
        m(torch.zeros(1, 2))
        assert seen == [1] and _HOOK_LOG == [1] and _HOOK_CALLS == calls + 1
    assert seen == [] and _HOOK_LOG == [] and _HOOK_CALLS == calls
    assert sorted(changed) == ["_HOOK_CALLS", "_HOOK_LOG", "cell"]


class _CountingHook:
    """A callable object as a forward hook, marking its first call with an attribute it did not have."""

    def __call__(self, mod, args, out):
        self.called = True


def test_hook_state_kept_names_an_attribute_a_hook_object_made_anew():
    """A hook object that gives itself a new attribute changed its state (its attributes' names differ): named
    ``object`` and the attribute removed after the block (kills hooks 57: only the attributes it had compared, a new
    one unseen)."""
    from needs import need

    torch = need("torch")
    from runtime.aten.hook_state import hook_state_kept

    hook = _CountingHook()
    m = torch.nn.Linear(2, 2)
    m.register_forward_hook(hook)
    with hook_state_kept(torch, m) as changed:
        m(torch.zeros(1, 2))
        assert hook.called
    assert changed == ["object"] and vars(hook) == {}


# --- runtime/aten/cache_windows.py ------------------------------------------------------------------------------------


def _sliding_cache(layers: int, seen: int):
    """A transformers ``DynamicCache`` of ``layers`` sliding-window layers (window 4), each having seen ``seen`` tokens
    (keeping the last 3 once past the window)."""
    from needs import need

    torch, transformers = need("torch"), need("transformers")
    cfg = transformers.MistralConfig(num_hidden_layers=layers, sliding_window=4, vocab_size=128, hidden_size=32,
                                     intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
    cache = transformers.cache_utils.DynamicCache(config=cfg)
    for k in range(layers):
        cache.update(torch.zeros(1, 2, seen, 8), torch.zeros(1, 2, seen, 8), k)
    return cache


def test_a_cache_lacking_an_exported_layer_is_left_to_the_spec_check():
    """``window_mismatch`` of a call's cache with fewer layers than the export's: the missing layer is another
    layout, which the call's spec check refuses, not an IndexError here (kills windows 61: ``k < len(layers)`` made
    ``<=``); a layer counting as the export's is no mismatch, one counting otherwise is named with both counts."""
    from needs import need

    torch = need("torch")
    from runtime.aten.cache_windows import window_inputs, window_mismatch

    class Step(torch.nn.Module):
        def forward(self, past_key_values):
            return past_key_values

    two = _sliding_cache(2, 6)
    ((path, layers),) = window_inputs(torch, Step(), (), {"past_key_values": two})
    assert path == "past_key_values" and layers == ((0, 6, 3), (1, 6, 3))
    assert window_mismatch(torch, path, _sliding_cache(1, 6), layers) is None
    assert window_mismatch(torch, path, two, layers) is None
    why = window_mismatch(torch, path, _sliding_cache(2, 2), layers)
    assert "layer 0" in why and "that has seen 2 tokens and keeps 2" in why and "seen 6 tokens and kept 3" in why
