"""Round 54 (aten54): transformers' sliding-window KV caches through ``runtime.aten.compile``.

Bugs fixed (each test failed before):
- a tiny Mistral's decode step given its ``DynamicCache`` (``DynamicSlidingWindowLayer``s: ``sliding_window`` is 4096
  by default) was refused with "forward changes its argument 'past_key_values' in place" (a window not yet full: it
  now runs, bitwise) or "a corrupted or edited program" (a full window: the cached keys are a slice of the step's
  ``cat``; still refused, now naming the layer's token count, ``cumulative_length``, which the cache's flattening
  does not carry).
- a compiled prefill past its window returned a cache counting the kept tokens, not the seen ones.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _mistral(**window):
    torch.manual_seed(0)
    cfg = transformers.MistralConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     **window)
    cfg._attn_implementation = "eager"
    return transformers.MistralForCausalLM(cfg).eval()


def _ids(seed, n=6):
    return torch.randint(0, 128, (2, n), generator=torch.Generator().manual_seed(seed))


def _state(cache):
    return [(type(x).__name__, getattr(x, "cumulative_length", None), getattr(x, "sliding_window", None), x.keys.shape)
            for x in cache.layers]


def _prefilled(e, seed):
    with torch.no_grad():
        return e(_ids(seed), use_cache=True).past_key_values


@pytest.mark.parametrize("streams", [1, 3])
def test_a_decode_step_with_an_open_sliding_window_cache_grows_it_as_eager(streams):
    """Window 7, 6 tokens cached (the window not full: the layers' whole state is their tensors): the step fills
    the window, so eager keeps the last 6 tokens and counts 7. Refused before (round 53b's "forward changes its
    argument in place"); now bitwise, logits, cache tensors and counts, and the next eager step on either cache too.
    The full cache that step left is then refused naming the full window (the program would count otherwise)."""
    import copy

    m = _mistral(sliding_window=7)
    e = copy.deepcopy(m)
    example = _prefilled(e, 0)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": example}, streams=streams, cuda_graph=False)
    assert _state(example)[0][1] == 6   # (compile leaves its example as passed)
    mine, theirs = _prefilled(e, 1), _prefilled(e, 1)
    out = step(_ids(7, 1), past_key_values=mine)
    with torch.no_grad():
        ref = e(_ids(7, 1), past_key_values=theirs)
    assert out.past_key_values is mine and torch.equal(out.logits, ref.logits)
    assert _state(mine) == _state(theirs) and _state(mine)[0][1:] == (7, 7, (2, 2, 6, 8))
    assert all(torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
               for a, b in zip(mine.layers, theirs.layers))
    with torch.no_grad():
        assert torch.equal(e(_ids(8, 1), past_key_values=mine).logits, e(_ids(8, 1), past_key_values=theirs).logits)
    full = _prefilled(e, 2)
    step(_ids(3, 1), past_key_values=full)
    with pytest.raises(AtenExecutorError, match=r"layer 0 is a DynamicSlidingWindowLayer.* whose window is full: "
                                                r"it has seen 7 tokens and keeps the last 6"):
        step(_ids(4, 1), past_key_values=full)


def test_a_decode_step_compiled_with_a_full_sliding_window_is_refused_naming_it():
    """Window 4, 6 tokens: the layer counts 6 and keeps 3, a count the flattened cache loses. Refused before with
    "a corrupted or edited program" (its keys are a slice of the prefill's ``cat``); now named. Round 55: the export's
    cache counts as the example's, so such a step runs (``tests/test_aten_round55.py``); a call whose count differs
    from the export's is what is refused, naming it."""
    m = _mistral(sliding_window=4)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(m, 0)}, cuda_graph=False)
    cache = _prefilled(m, 1)
    cache.layers[0].cumulative_length = 7
    with pytest.raises(AtenExecutorError, match=r"argument 'past_key_values' is a DynamicCache whose layer 0 is a "
                       r"DynamicSlidingWindowLayer \(sliding_window=4\) whose window is full: it has seen 7 tokens "
                       r"and keeps the last 3, where the program was exported from one that had seen 6"):
        step(_ids(0, 1), past_key_values=cache)


@pytest.mark.parametrize("streams", [1, 3])
def test_a_prefill_past_its_window_returns_the_cache_eager_does(streams):
    """6 tokens through ``sliding_window=4``: eager's layers count 6 tokens and keep the last 3. The program's
    cache, rebuilt from its tensors by transformers' unflattening, counted 3 (and its window was a tensor), so an
    eager decode step given it attended at other positions (1.3e-3 off, no error); its counts are now eager's."""
    import copy

    m = _mistral(sliding_window=4)
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0),), kwargs={"use_cache": True}, streams=streams, cuda_graph=False)
    out = step(_ids(1), use_cache=True)
    with torch.no_grad():
        ref = e(_ids(1), use_cache=True)
    assert _state(out.past_key_values) == _state(ref.past_key_values)
    assert out.past_key_values.layers[0].cumulative_length == 6
    assert torch.equal(out.logits, ref.logits)
    with torch.no_grad():
        a = e(_ids(5, 1), past_key_values=out.past_key_values).logits
        b = e(_ids(5, 1), past_key_values=ref.past_key_values).logits
    assert torch.equal(a, b)


def test_a_strict_export_of_a_decode_step_is_refused_naming_its_cache():
    """No ``forward`` watch runs in a strict export, so whether it grows the cache passed in cannot be told: before,
    the compiled call returned a new cache and left the caller's 6 tokens long where eager's grew to 7, no error."""
    from runtime.aten.program import load_program

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    m = transformers.LlamaForCausalLM(cfg).eval()
    with pytest.raises(AtenExecutorError, match=r"argument 'past_key_values' is a transformers DynamicCache and "
                                                r"this program is a strict export"):
        program = load_program(m, (_ids(0, 1),), {"past_key_values": _prefilled(m, 0)}, strict=True)
        step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(m, 0)}, program=program,
                       cuda_graph=False)
        cache = _prefilled(m, 1)
        step(_ids(7, 1), past_key_values=cache)
        assert cache.layers[0].keys.shape[-2] == 7, "the caller's cache was left as passed"


def test_a_gemma2_decode_step_of_sliding_and_full_layers_equals_eager():
    """Gemma2 alternates sliding-window (4096 by default) and full layers: refused before as Mistral's; both kinds
    are now grown in the caller's cache as eager grows them, bitwise (3 streams)."""
    import copy

    torch.manual_seed(0)
    cfg = transformers.Gemma2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                    max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    m = transformers.Gemma2ForCausalLM(cfg).eval()
    e = copy.deepcopy(m)
    step = compile(m, (_ids(0, 1),), kwargs={"past_key_values": _prefilled(e, 0)}, streams=3, cuda_graph=False)
    mine, theirs = _prefilled(e, 1), _prefilled(e, 1)
    assert [type(x).__name__ for x in mine.layers] == ["DynamicSlidingWindowLayer", "DynamicLayer"]
    out = step(_ids(7, 1), past_key_values=mine)
    with torch.no_grad():
        ref = e(_ids(7, 1), past_key_values=theirs)
    assert out.past_key_values is mine and torch.equal(out.logits, ref.logits) and _state(mine) == _state(theirs)
    assert all(torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
               for a, b in zip(mine.layers, theirs.layers))


def test_a_strict_export_of_a_prefill_past_its_window_is_refused():
    """Unwatched, the returned cache's counts cannot be set as eager's: a strict export's prefill of 6 tokens with
    ``sliding_window=4`` returned a cache counting 3 where eager's counts 6 (an eager step given it: 1.3e-3 off)."""
    from runtime.aten.program import load_program

    m = _mistral(sliding_window=4)
    with pytest.raises(AtenExecutorError, match=r"strict export and returns a DynamicCache whose layer 0 is a "
                                                r"sliding-window layer \(sliding_window=4\) holding 3 tokens"):
        program = load_program(m, (_ids(0),), {"use_cache": True}, strict=True)
        step = compile(m, (_ids(0),), kwargs={"use_cache": True}, program=program, cuda_graph=False)
        out = step(_ids(1), use_cache=True)
        assert out.past_key_values.layers[0].cumulative_length == 6, "counted the kept tokens, not the seen ones"
