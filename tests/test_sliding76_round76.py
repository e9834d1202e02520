"""Round 76 (sliding76): a compiled decode step of transformers' SDPA attention with grouped key/value heads given a
sliding-window cache that reaches its window was not bitwise eager.

Round 76's models helper found a tiny Cohere2's decode step given a sliding-window cache (window 4, 3 or 6 cached
tokens) 4e-9 to 7e-9 off eager. The executor was equal to the exported program bit for bit (``torch.fx.Interpreter``
over it); the program was not eager's computation: transformers' ``sdpa_attention_forward`` runs a one-token query with
grouped key/value heads and a mask through ``pack_gqa`` (``sdpa(q(b, kv_heads, n_rep, d), k, v, mask)``) only ``if not
is_torchdynamo_compiling()``, and the export traced ``repeat_kv`` (``sdpa(q(b, heads, 1, d), k and v repeated,
mask)``), which CPU SDPA rounds otherwise. Eager materializes the mask whatever its values once the keys reach the
window; not Cohere2's alone: Mistral, Qwen2 and Gemma3 steps were 6e-8 to 1.2e-7 off. The export now traces eager's
branch there (``runtime/aten/sdpa_branch.py``); below the window eager skips an all-True mask (``enable_gqa``), which
the program's ``repeat_kv`` rounds as, and that stays.
"""

from __future__ import annotations

import copy
import sys

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

from runtime.aten import compile, sdpa_branch  # noqa: E402

SIZES = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _model(config: str, model: str, layers: int = 1, **extra):
    torch.manual_seed(0)
    cfg = getattr(transformers, config)(**{**SIZES, "num_hidden_layers": layers}, **extra)
    cfg._attn_implementation = "sdpa"
    return getattr(transformers, model)(cfg).eval()


def _step_against_eager(m, cached: int, batch: int = 1):
    """A decode step after ``cached`` tokens, compiled (1 stream) and eager, on copies of one prefilled cache."""
    g = torch.Generator().manual_seed(0)
    ids, nxt = torch.randint(3, 100, (batch, cached), generator=g), torch.randint(3, 100, (batch, 1), generator=g)
    kw = {"input_ids": nxt, "use_cache": True}
    with torch.no_grad():
        cache = m(input_ids=ids, use_cache=True).past_key_values
    e = copy.deepcopy(m)
    step = compile(m, (), kwargs={**kw, "past_key_values": copy.deepcopy(cache)}, streams=1, cuda_graph=False)
    mine, theirs = copy.deepcopy(cache), copy.deepcopy(cache)
    out = step(**kw, past_key_values=mine)
    with torch.no_grad():
        ref = e(**kw, past_key_values=theirs)
    return out, ref, mine, theirs


def test_a_cohere2_decode_step_given_a_reached_sliding_window_is_bitwise_eager():
    """Window 4, 3 cached tokens, batch 2: 3.7e-9 off before (the round 76 sweep's case; on one thread and two), the
    program's SDPA on ``repeat_kv``."""
    m = _model("Cohere2Config", "Cohere2ForCausalLM", sliding_window=4)
    out, ref, mine, theirs = _step_against_eager(m, 3, batch=2)
    assert torch.equal(out.logits, ref.logits), (out.logits - ref.logits).abs().max().item()
    for a, b in zip(mine.layers, theirs.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)


def test_a_mistral_decode_step_given_a_reached_sliding_window_is_bitwise_eager():
    """Mistral passes its window as the attention's ``sliding_window`` keyword (no layer attribute): 7.5e-8 off before."""
    m = _model("MistralConfig", "MistralForCausalLM", layers=2, sliding_window=4)
    out, ref, _mine, _theirs = _step_against_eager(m, 3)
    assert torch.equal(out.logits, ref.logits), (out.logits - ref.logits).abs().max().item()


def test_a_decode_step_below_any_window_keeps_the_program_eager_rounds_as():
    """A Llama's step with no mask: eager skips the all-True mask (``enable_gqa``), the export materializes it; the
    program's ``repeat_kv`` rounds as eager there, and packing the query (eager's masked branch) was 1.2e-7 off."""
    m = _model("LlamaConfig", "LlamaForCausalLM")
    out, ref, _mine, _theirs = _step_against_eager(m, 5, batch=2)
    assert torch.equal(out.logits, ref.logits), (out.logits - ref.logits).abs().max().item()


def test_the_flag_is_put_back_after_the_export_and_a_foreign_one_left_alone(monkeypatch):
    """The swap is of transformers' own flag function, for the export alone (a failed one too); called from elsewhere
    than the attention, or from another thread, it answers as transformers' own."""
    mod = pytest.importorskip(sdpa_branch.MODULE)
    original = getattr(mod, sdpa_branch.NAME)
    with pytest.raises(RuntimeError), sdpa_branch.eager_sdpa_branch():
        assert getattr(mod, sdpa_branch.NAME) is not original
        assert getattr(mod, sdpa_branch.NAME)() is original()
        raise RuntimeError("a failed export")
    assert getattr(mod, sdpa_branch.NAME) is original

    def theirs() -> bool:
        return True

    monkeypatch.setattr(mod, sdpa_branch.NAME, theirs)
    with sdpa_branch.eager_sdpa_branch():
        assert getattr(mod, sdpa_branch.NAME) is theirs
    assert getattr(mod, sdpa_branch.NAME) is theirs
    assert sys.modules[sdpa_branch.MODULE] is mod


def test_the_stand_in_answers_eager_only_in_the_exporting_thread_where_the_keys_reach_the_window():
    """Within ``sdpa_attention_forward`` whose keys (length 4) reach the window (4): False in the export's thread,
    transformers' own answer (here True) in another thread and below the window."""
    import threading

    def sdpa_attention_forward(flag, module, key, **kwargs):   # (the frame the stand-in reads: its name and locals)
        return flag()

    layer = type("Layer", (), {"sliding_window": 4})()
    flag = sdpa_branch._stand_in(lambda: True, threading.get_ident())
    assert sdpa_attention_forward(flag, layer, torch.zeros(1, 2, 4, 8)) is False
    assert sdpa_attention_forward(flag, None, torch.zeros(1, 2, 4, 8), sliding_window=4) is False   # (Mistral's)
    assert sdpa_attention_forward(flag, layer, torch.zeros(1, 2, 3, 8)) is True
    seen = []
    thread = threading.Thread(target=lambda: seen.append(sdpa_attention_forward(flag, layer, torch.zeros(1, 2, 4, 8))))
    thread.start()
    thread.join()
    assert seen == [True]
