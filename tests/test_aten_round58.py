"""Round 58 (aten58): a container argument ``forward`` returns as itself, a refused arena rebuild of
``compile_per_count``, and round 58's new sweep entries (models and plain-PyTorch modules nobody hand-picked).

Bugs fixed (each test failed before):
- a dict, list or tuple argument that ``forward`` returns as itself (``return out.logits, state`` of a decode step
  given its cache in ``state``; ``return x * cfg["s"], cfg``) came back as a new container holding the same leaves,
  where eager returns the caller's very object: now the compiled call returns the caller's object there.
"""

from __future__ import annotations

import copy
import re

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from test_aten_round54_cache import _ids, _mistral, _state  # noqa: E402  (round 54's cache helpers)

from runtime.aten import compile  # noqa: E402


class ReturnsState(torch.nn.Module):
    """A decode step given its cache inside ``state`` (``read(state)``) that returns ``state`` itself."""

    def __init__(self, lm, read):
        super().__init__()
        self.lm, self.read = lm, read

    def forward(self, ids, state):
        out = self.lm(ids, past_key_values=self.read(state), use_cache=True)
        return out.logits, state


def _prefilled(e, seed, n=6):
    with torch.no_grad():
        return e(_ids(seed, n), use_cache=True).past_key_values


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("kind,window,streams", [("dict", None, 1), ("list", 4, 3)])   # (4: a full window)
def test_a_container_holding_a_grown_cache_returned_as_itself_is_the_callers_object(kind, window, streams):
    """Before: a new dict (list) around the caller's grown cache; eager returns ``state`` itself."""
    wrap, read = {"dict": (lambda c: {"cache": c}, lambda s: s["cache"]),
                  "list": (lambda c: [c], lambda s: s[0])}[kind]
    lm = _mistral(sliding_window=window)
    e = copy.deepcopy(lm)
    step = compile(ReturnsState(lm, read), (_ids(0, 1), wrap(_prefilled(e, 0))), streams=streams, cuda_graph=False)
    mine, theirs = wrap(_prefilled(e, 1)), wrap(_prefilled(e, 1))
    cache = read(mine)
    logits, got = step(_ids(5, 1), mine)
    with torch.no_grad():
        ref_logits, ref = ReturnsState(e, read)(_ids(5, 1), theirs)
    assert ref is theirs                                   # (eager's)
    assert got is mine and read(got) is cache
    assert torch.equal(logits, ref_logits) and _state(cache) == _state(read(ref))
    assert cache.get_seq_length() == read(ref).get_seq_length() == 7


class ReturnsConfig(torch.nn.Module):
    def forward(self, x, cfg):
        return x * cfg["s"], cfg


class ReturnsTuple(torch.nn.Module):
    def forward(self, x, pair):
        return {"y": x + pair[0], "pair": pair}


def test_an_unchanged_container_argument_returned_as_itself_is_the_callers_object():
    """``return y, cfg``: eager's second output is the caller's dict (a caller writing into it writes its own), and
    a tuple returned inside a dict output is the caller's tuple; before, new containers."""
    step = compile(ReturnsConfig(), (torch.randn(3), {"s": torch.ones(3)}), cuda_graph=False)
    cfg = {"s": torch.full((3,), 2.0)}
    x = torch.randn(3)
    y, got = step(x, cfg)
    assert got is cfg and got["s"] is cfg["s"] and torch.equal(y, x * 2)
    step2 = compile(ReturnsTuple(), (torch.randn(3), (torch.ones(3), torch.ones(3))), streams=3, cuda_graph=False)
    pair = (torch.randn(3), torch.randn(3))
    out = step2(x, pair)
    assert out["pair"] is pair and torch.equal(out["y"], x + pair[0])


class ChangesAndReturns(torch.nn.Module):
    def forward(self, x, acc):
        acc.append(x)
        return x * 2, acc


def test_a_container_changed_and_returned_stays_refused():
    """The compiled call runs no Python on the caller's list: a change of it stays refused, returned or not."""
    from runtime.aten.errors import AtenExecutorError

    with pytest.raises(AtenExecutorError, match="forward changes its argument 'acc' in place"):
        compile(ChangesAndReturns(), (torch.randn(3), []), cuda_graph=False)


class TimesOnes(torch.nn.Module):
    """A decode step whose ``torch.ones(1)`` takes the default dtype: its program follows the default, so a rebuild
    under another default is refused (``CompiledModule._check_rebuild``)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids, past_key_values):
        out = self.lm(ids, past_key_values=past_key_values, use_cache=True)
        return out.logits * torch.ones(1), out.past_key_values


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_compile_per_count_a_refused_arena_rebuild_keeps_the_older_arena_correct():
    """Round 57 left it unchecked: window 7, count 3 compiled under float32, count 5 (a larger arena) under float64,
    where count 3's program cannot be built again (a node follows the default dtype): it keeps its older arena, and
    calls of both counts, interleaved, stay bitwise eager's (logits and caches); the next new count (4, under
    float32) settles count 3 onto the shared arena."""
    from runtime.aten import compile_per_count

    m = _mistral(sliding_window=7)
    e = copy.deepcopy(m)
    steps = compile_per_count(TimesOnes(m), (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0, 3)},
                              streams=1, cuda_graph=False)
    ref_step = TimesOnes(e)

    def check(seed, n, dtype):
        was = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            mine, theirs = _prefilled(e, seed, n), _prefilled(e, seed, n)
            logits, cache = steps(_ids(seed + 10, 1), past_key_values=mine)
            with torch.no_grad():
                ref_logits, _ref = ref_step(_ids(seed + 10, 1), past_key_values=theirs)
        finally:
            torch.set_default_dtype(was)
        assert cache is mine and logits.dtype == ref_logits.dtype and torch.equal(logits, ref_logits)
        assert _state(mine) == _state(theirs)
        assert all(torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
                   for a, b in zip(mine.layers, theirs.layers))

    check(1, 3, torch.float32)
    check(2, 5, torch.float64)
    three, five = (steps.programs[k] for k in list(steps.programs))
    def storage(p):
        return p.executor.layout.arena.untyped_storage().data_ptr()

    assert storage(three) != storage(five)              # (three kept its older arena: its rebuild was refused)
    for seed, n, dtype in [(3, 3, torch.float32), (4, 5, torch.float64), (5, 3, torch.float32)]:
        check(seed, n, dtype)
    check(6, 4, torch.float32)                           # (a new count: three is settled onto the shared arena)
    assert storage(three) == storage(five) == steps.arena.base.untyped_storage().data_ptr()
    check(7, 3, torch.float32)


class UnsqueezesInput(torch.nn.Module):
    def forward(self, x, y):
        y.unsqueeze_(0)
        return x * 2 + y


def test_an_in_place_rank_change_of_an_argument_is_refused_naming_it():
    """``y.unsqueeze_(0)`` on an argument: eager changes the caller's tensor's shape; torch.export fails on it deep in
    its guards, and compile said only "torch.export failed for UnsqueezesInput: list index out of range". Now one
    line naming the argument and its shapes (a ``t_`` of the same rank was refused at its node already)."""
    from runtime.aten.errors import AtenExecutorError

    with pytest.raises(AtenExecutorError, match=re.escape(
            "forward changes the shape or strides of its tensor argument 'y' in place (it went from shape [3] "
            "strides [1] to shape [1, 3] strides [3, 1]")) as info:
        compile(UnsqueezesInput(), (torch.randn(3), torch.randn(3)), cuda_graph=False)
    assert "\n" not in str(info.value)


class BranchesOnValues(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        if not (y > 0).any():
            return y - 1
        return y + 1


def test_an_export_failing_on_a_data_dependent_branch_names_the_line_and_its_code():
    """torch.export refuses a Python branch on a tensor's values; the one-line refusal said only "Could not guard on
    data-dependent expression Eq(u0, 1)" (FSMT's, LED's, Longformer's, ViLT's padding checks in the round 58 sweep),
    torch's note of the user's line left in the pages after it. Now it names the file, line, function and code."""
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=re.escape("(at test_aten_round58.py:") + r"\d+ in forward: "
                       + re.escape("`if not (y > 0).any():`)")) as info:
        compile(BranchesOnValues(), (torch.randn(3),), cuda_graph=False)
    assert str(info.value).startswith("torch.export failed for BranchesOnValues: Could not guard on data-dependent")
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["inplace_view_chains", "where_scatter_index_put", "einsum_forms", "int8_bf16_cpu",
                                  "nn_transformer_decoder", "blip_text"])
def test_round58_sweep_entries_run_bitwise_on_1_and_3_streams(name):
    """A few of round 58's sweep entries (the cheapest), run as the sweep runs them: export once, compile on 1 and 3
    streams with the arena poisoned, two fresh calls each, bitwise eager's (coverage: these passed before too)."""
    from runtime.aten import sweep

    results = []
    sweep.run_case(next(c for c in sweep.CASES if c.name == name), torch.device("cpu"),
                   [("s1", 1, False), ("s3", 3, False)], lambda n, mode, verdict, t, **kw: results.append(verdict))
    assert results == ["bitwise", "bitwise"], results



class PackedLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 8, batch_first=True)

    def forward(self, x):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        packed = pack_padded_sequence(x, [5, 3, 2], batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.lstm(packed)[0], batch_first=True)[0]


@pytest.mark.filterwarnings("ignore")
def test_an_rnn_given_a_packed_sequence_is_refused_naming_the_module_and_the_packing():
    """torch.export fails inside ``nn.LSTM``'s packed path; the refusal was torch's "zeros(): argument 'size' failed
    to unpack the object at pos 2 ... FakeTensor", naming neither. Now it names the module and what to pass."""
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=re.escape("(in LSTM.forward given a PackedSequence: torch.export cannot "
                                                   "trace its per-step batch sizes; pass the padded batch")) as info:
        compile(PackedLSTM(), (torch.randn(3, 5, 6),), cuda_graph=False)
    assert "\n" not in str(info.value)


class MovesItsLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        self.lin = self.lin.to(torch.float64)   # (Switch Transformers' router does so with its classifier)
        return self.lin(x.double())


@pytest.mark.filterwarnings("ignore")
def test_an_export_failure_names_the_models_deepest_line():
    """torch's first line named no place of the model ("_apply(): Couldn't swap Linear.weight"); now the deepest
    frame of the model's own code follows it."""
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=re.escape("(at test_aten_round58.py:") + r"\d+"
                       + re.escape(" in forward: `self.lin = self.lin.to(torch.float64) #")) as info:
        compile(MovesItsLinear(), (torch.randn(2, 4),), cuda_graph=False)
    assert "\n" not in str(info.value)



class ReturnsTwice(torch.nn.Module):
    def forward(self, x, cfg, inner):
        return {"y": x * cfg["s"] + inner[0], "cfg": cfg, "all": [cfg, inner]}


class ReturnsNested(torch.nn.Module):
    def forward(self, x, a, b):
        return x + a["l"][0] + b[0], a, b


def test_a_container_argument_returned_twice_and_one_inside_another_are_the_callers():
    """Returned at two places, the caller's dict is at both (the first version put it at the first alone); an
    argument the export saw inside another returned one (``b`` in ``a["l"]``) is left as the caller's ``a`` holds it:
    never written into the caller's object (a call passing another list there keeps it)."""
    step = compile(ReturnsTwice(), (torch.randn(3), {"s": torch.ones(3)}, [torch.ones(3)]), cuda_graph=False)
    inner, cfg = [torch.full((3,), 5.0)], {"s": torch.full((3,), 2.0)}
    out = step(torch.ones(3), cfg, inner)
    assert out["cfg"] is cfg and out["all"][0] is cfg and out["all"][1] is inner
    assert torch.equal(out["y"], torch.full((3,), 7.0))
    shared = [torch.ones(3)]
    step2 = compile(ReturnsNested(), (torch.randn(3), {"l": shared}, shared), cuda_graph=False)
    t = torch.full((3,), 2.0)
    l1, l2 = [t], [t]   # (two lists, one tensor: the export merged the example's into one input)
    a = {"l": l1}
    y, got_a, got_b = step2(torch.ones(3), a, l2)
    assert got_a is a and got_b is l2 and a["l"] is l1 and torch.equal(y, torch.full((3,), 5.0))
