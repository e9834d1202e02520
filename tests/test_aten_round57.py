"""Round 57 (aten57): a transformers cache inside a container that ``forward`` grows, and ``compile_per_count``
from several threads, its programs on one arena.

Bugs fixed (each test failed before):
- a ``DynamicCache`` inside a dict, list or tuple argument (``state['cache']``) that a decode step grows and returns
  was refused ("forward changes its argument 'state' in place"), though the output holds the grown cache: now the
  step grows the caller's cache as eager's (the very object, its layers kept; logits, tensors and counts bitwise on
  1 and 3 streams); one grown and not returned is refused naming its path and layer.
- ``compile_per_count``: two threads meeting a new count compiled it twice (the second program let the first go);
  now one compiles and the other waits on that count's lock.
- ``compile_per_count``'s programs each held an arena of their own (two counts: two arenas); now one arena, sized to
  the largest program's, grown when a larger count comes (``share_arena=False``: one each, as before).
"""

from __future__ import annotations

import copy
import re
import threading

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from test_aten_round54_cache import _ids, _mistral, _state  # noqa: E402  (round 54's cache helpers)
from test_aten_round56 import CONTAINERS, AbsolutePositions, _mistral_cache  # noqa: E402

from runtime.aten import compile, compile_per_count  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class GrowsNested(torch.nn.Module):
    """A decode step given its cache inside a container argument (``read(state)``): it grows it, and returns it
    beside the logits where ``returns``."""

    def __init__(self, lm, read, returns=True):
        super().__init__()
        self.lm, self.read, self.returns = lm, read, returns

    def forward(self, ids, state):
        out = self.lm(ids, past_key_values=self.read(state), use_cache=True)
        return (out.logits, out.past_key_values) if self.returns else out.logits


def _prefilled(e, seed, n=6):
    with torch.no_grad():
        return e(_ids(seed, n), use_cache=True).past_key_values


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("kind,window,streams", [("dict", 4, 1), ("list", None, 3), ("tuple_in_dict", 4, 3)])   # (None:
# DynamicLayers; 4: DynamicSlidingWindowLayers past a full window)
def test_a_cache_inside_a_container_that_forward_grows_and_returns_is_grown_as_eager(kind, window, streams):
    """Refused before ("forward changes its argument 'state' in place"). Now the caller's cache is grown as eager's:
    the output holds the caller's very cache, which the container still holds, each layer object kept, its tensors
    and counts eager's (window 4: 7 seen, 3 kept; full layers: 7 held), the logits bitwise eager's."""
    wrap, read, _path = CONTAINERS[kind]
    lm = _mistral(sliding_window=window)
    e = copy.deepcopy(lm)
    step = compile(GrowsNested(lm, read), (_ids(0, 1), wrap(_prefilled(e, 0))), streams=streams, cuda_graph=False)
    mine, theirs = wrap(_prefilled(e, 1)), wrap(_prefilled(e, 1))
    layers = list(read(mine).layers)
    logits, cache = step(_ids(5, 1), mine)
    with torch.no_grad():
        ref_logits, ref_cache = GrowsNested(e, read)(_ids(5, 1), theirs)
    assert torch.equal(logits, ref_logits)
    assert cache is read(mine) and all(a is b for a, b in zip(cache.layers, layers))
    assert _state(cache) == _state(ref_cache) and _state(cache)[0][1] == (7 if window else None)
    assert all(torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
               for a, b in zip(cache.layers, ref_cache.layers))
    assert cache.get_seq_length() == ref_cache.get_seq_length() == 7


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_cache_inside_a_container_grown_and_not_returned_is_refused_naming_its_path_and_layer():
    """The program's outputs hold no grown tensors of a cache ``forward`` does not return: refused naming the path,
    the layer and its tokens (before: "forward changes its argument 'state' in place", naming neither)."""
    wrap, read, _path = CONTAINERS["dict"]
    lm = _mistral(sliding_window=None)
    with pytest.raises(AtenExecutorError, match=re.escape(
            "forward grows the DynamicCache at \"state['cache']\" (its layers[0] held 6 tokens before the call and 7 "
            "after) and does not return it")):
        compile(GrowsNested(lm, read, returns=False), (_ids(0, 1), wrap(_prefilled(lm, 0))), cuda_graph=False)


class GrowsAndCounts(GrowsNested):
    def forward(self, ids, state):
        state["steps"] = state.get("steps", 0) + 1   # (a container change beside the cache: no program output)
        return super().forward(ids, state)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_container_changed_beside_its_grown_cache_stays_refused():
    lm = _mistral(sliding_window=None)
    with pytest.raises(AtenExecutorError, match=r"forward changes its argument 'state' in place: its structure "
                                                r"changed"):
        compile(GrowsAndCounts(lm, lambda s: s["cache"]), (_ids(0, 1), {"cache": _prefilled(lm, 0)}),
                cuda_graph=False)


def test_compile_per_count_compiles_a_new_count_once_for_two_threads():
    """Two threads meet count 7 (compiled for 6): one compiles it, the other waits on that count's lock and takes
    its program (before: both compiled, 3 compiles, the first program let go). Each result is eager's."""
    read = CONTAINERS["dict"][1]
    m = AbsolutePositions(read).eval()
    steps = compile_per_count(m, (_ids(0, 2), {"cache": _mistral_cache(0)}), streams=1, cuda_graph=False)
    real, entered, met = steps._compile, [], threading.Condition()

    def slow(*args, **kwargs):   # (a compile that waits, up to 1.5 s, for a second thread to enter one too)
        with met:
            entered.append(threading.get_ident())
            met.notify_all()
            met.wait_for(lambda: len(entered) >= 2, timeout=1.5)
        return real(*args, **kwargs)

    steps._compile = slow
    states = [{"cache": _mistral_cache(k, 7)} for k in (1, 2)]
    results, errors = [None, None], []

    def call(k):
        try:
            results[k] = steps(_ids(3, 2), states[k])
        except Exception as exc:   # (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(entered) == 1 and steps.compiles == 2
    with torch.no_grad():
        assert all(torch.equal(results[k], m(_ids(3, 2), states[k])) for k in (0, 1))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_compile_per_count_programs_share_one_arena_sized_to_the_largest():
    """Window 7, counts 3, 5, 3: the programs of 3 and 5 tokens share one arena, a larger one made when the 5's
    comes (the 3's program built again on it), each step bitwise eager, logits and cache (before: an arena each,
    their sum held); ``share_arena=False`` keeps an arena each."""
    m = _mistral(sliding_window=7)
    e = copy.deepcopy(m)
    steps = compile_per_count(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0, 3)}, streams=1,
                              cuda_graph=False)
    first = steps.arena_bytes
    for seed, n in [(1, 3), (2, 5), (3, 3)]:
        mine, theirs = _prefilled(e, seed, n), _prefilled(e, seed, n)
        out = steps(_ids(seed + 10, 1), past_key_values=mine)
        with torch.no_grad():
            ref = e(_ids(seed + 10, 1), past_key_values=theirs)
        assert out.past_key_values is mine and torch.equal(out.logits, ref.logits)
        assert _state(mine) == _state(theirs) and torch.equal(mine.layers[0].keys, theirs.layers[0].keys)
    programs = list(steps.programs.values())
    sizes = [p.arena_bytes for p in programs]   # (the plans' arenas: 3 tokens 3872 B, 5 tokens 5424 B)
    assert steps.compiles == 2 and first < steps.arena_bytes
    assert max(sizes) <= steps.arena_bytes < max(sizes) + 64   # (the allocation: whole 64-byte rounds)
    assert len({p.executor.layout.arena.untyped_storage().data_ptr() for p in programs}) == 1
    own = compile_per_count(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0, 3)}, streams=1,
                            cuda_graph=False, share_arena=False)
    own(_ids(11, 1), past_key_values=_prefilled(e, 1, 5))
    assert own.arena_bytes == sum(sizes)


class StepsT5(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, enc, ids, state):
        out = self.m(encoder_outputs=enc, decoder_input_ids=ids, cache=state["cache"])
        return out.logits, out.cache


def test_an_encoder_decoder_cache_inside_a_dict_grows_as_eager():
    """T5's ``EncoderDecoderCache`` in a dict (refused before, as a ``DynamicCache`` there): the caller's very cache
    grows as eager's (6 to 7 tokens), logits and tensors bitwise, 3 streams."""
    from test_aten_round56 import _prefilled as _t5_prefilled
    from test_aten_round56 import _same_tensors
    from test_aten_round56 import _state as _t5_state

    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=128, d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8,
                                decoder_start_token_id=0)
    cfg._attn_implementation = "eager"
    m = transformers.T5ForConditionalGeneration(cfg).eval()
    e = copy.deepcopy(m)
    enc, example = _t5_prefilled(e, 0)
    step = compile(StepsT5(m), (enc, _ids(0, 1), {"cache": example}), streams=3, cuda_graph=False)
    enc, mine = _t5_prefilled(e, 1)
    theirs = copy.deepcopy(mine)
    logits, cache = step(enc, _ids(7, 1), {"cache": mine})
    with torch.no_grad():
        ref, _ = StepsT5(e)(enc, _ids(7, 1), {"cache": theirs})
    assert cache is mine and torch.equal(logits, ref)
    assert _t5_state(mine) == _t5_state(theirs) and _t5_state(mine)[0][0][3] == (2, 4, 7, 8)
    assert _same_tensors(mine, theirs)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("share_arena", [False])   # (calls overlap: the stronger case)
def test_compile_per_count_from_four_threads_with_new_counts_compiles_one_at_a_time(share_arena):
    """Four threads stepping counts 3-6 of a window of 7, the counts new to the program as they come (session 57):
    two compiles at once failed in torch.export ("expected an instance of Token"), and a call during
    another count's compile was refused ("the forward pre-hooks of MistralForCausalLM changed after compile"), both
    under torch.export patching the module. Now a compile runs alone; every step is eager's, bitwise."""
    m = _mistral(sliding_window=7)
    e = copy.deepcopy(m)
    prefilled = lambda seed, n: _prefilled(e, seed, n)   # noqa: E731  (the module's helper, this copy of the model)
    steps = compile_per_count(m, (_ids(0, 1),), kwargs={"past_key_values": prefilled(0, 3)}, streams=1,
                              cuda_graph=False, share_arena=share_arena)
    jobs = {t: [(k, 3 + (t + k) % 4) for k in range(4)] for t in range(4)}
    want = {}
    for t, todo in jobs.items():
        for k, n in todo:
            with torch.no_grad():
                want[t, k] = e(_ids(100 + 10 * t + k, 1), past_key_values=prefilled(10 * t + k, n)).logits
    wrong, errors = [], []

    def worker(t):
        try:
            for k, n in jobs[t]:
                out = steps(_ids(100 + 10 * t + k, 1), past_key_values=prefilled(10 * t + k, n))
                if not torch.equal(out.logits, want[t, k]):
                    wrong.append((t, k, n))
        except Exception as exc:   # (reported below)
            errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not wrong and steps.compiles == 4
