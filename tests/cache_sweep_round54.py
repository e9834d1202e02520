"""Round 54's CPU sweep of tiny transformers decoders with a ``DynamicCache`` through ``runtime.aten.compile``.

``PYTHONPATH=$PWD python tests/cache_sweep_round54.py llama mistral ...`` (families: ``FAMILIES``): for each, the
prefill (``use_cache=True``) and one decode step given a prefilled cache of 6 tokens, compiled on 1 and 3 streams,
against eager: logits, every cache tensor, each layer's kind, token count and window, and an eager step given either
cache, bit for bit (BITWISE), or refused with the executor's message (REFUSED). Not a test (minutes of CPU on a
loaded machine): what tests/test_aten_round54_cache.py picks its cases from."""

from __future__ import annotations

import copy
import sys
import time

import torch
import transformers as tf

from runtime.aten import compile

BASE = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64)
MOE = dict(num_experts_per_tok=2)
#: name -> (config class, model class, config beyond ``BASE``); ``_w4`` / ``_w7``: a sliding window of 4 (full
#: after the 6-token prefill) or 7 (filled by the decode step)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", dict(MOE, num_experts=4, moe_intermediate_size=32,
                                                                shared_expert_intermediate_size=32)),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(head_dim=8)),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(MOE, num_local_experts=4)),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(head_dim=8)),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(head_dim=8)),
    "phi": ("PhiConfig", "PhiForCausalLM", {}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(pad_token_id=0)),
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", {}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64)),
    "opt": ("OPTConfig", "OPTForCausalLM", dict(ffn_dim=64, word_embed_proj_dim=32, pad_token_id=1)),
}
for w in (4, 7):
    FAMILIES.update({
        f"mistral_w{w}": ("MistralConfig", "MistralForCausalLM", dict(sliding_window=w)),
        f"mixtral_w{w}": ("MixtralConfig", "MixtralForCausalLM", dict(MOE, num_local_experts=4, sliding_window=w)),
        f"gemma2_w{w}": ("Gemma2Config", "Gemma2ForCausalLM", dict(head_dim=8, sliding_window=w)),
        f"gemma3_w{w}": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(head_dim=8, sliding_window=w)),
        f"qwen2_w{w}": ("Qwen2Config", "Qwen2ForCausalLM", dict(use_sliding_window=True, sliding_window=w,
                                                                 max_window_layers=0)),
        f"phi3_w{w}": ("Phi3Config", "Phi3ForCausalLM", dict(pad_token_id=0, sliding_window=w)),
        f"starcoder2_w{w}": ("Starcoder2Config", "Starcoder2ForCausalLM", dict(sliding_window=w)),
    })


def build(name):
    config, model, extra = FAMILIES[name]
    kw = dict(vocab_size=128) if name == "gpt2" else dict(BASE)
    if name == "opt":
        del kw["num_key_value_heads"], kw["intermediate_size"]
    kw.update(extra)
    torch.manual_seed(0)
    cfg = getattr(tf, config)(**kw)
    cfg._attn_implementation = "eager"
    return getattr(tf, model)(cfg).eval()


def ids(seed, n=6):
    return torch.randint(2, 128, (2, n), generator=torch.Generator().manual_seed(seed))


def tensors(cache):
    return [t for layer in getattr(cache, "layers", []) for t in (layer.keys, layer.values)]


def state(cache):
    return [(type(x).__name__, getattr(x, "cumulative_length", None), getattr(x, "sliding_window", None))
            for x in getattr(cache, "layers", [])]


def same(out, ref, eager):
    """Whether ``out`` is ``ref`` bit for bit (logits, cache tensors and layers' state, an eager step on each)."""
    a, b = tensors(out.past_key_values), tensors(ref.past_key_values)
    ok = (torch.equal(out.logits, ref.logits) and len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b)))
    if state(out.past_key_values) != state(ref.past_key_values):
        print("   STATE", state(out.past_key_values), state(ref.past_key_values))
        ok = False
    with torch.no_grad():
        x = eager(ids(9, 1), past_key_values=out.past_key_values).logits
        y = eager(ids(9, 1), past_key_values=ref.past_key_values).logits
    if not torch.equal(x, y):
        print("   NEXT STEP", (x - y).abs().max().item())
        ok = False
    return ok, (out.logits - ref.logits).abs().max().item()


def prefilled(eager, seed):
    with torch.no_grad():
        return eager(ids(seed), use_cache=True).past_key_values


def run(name, phase, streams):
    m = build(name)
    e = copy.deepcopy(m)
    if phase == "prefill":
        step = compile(m, (ids(0),), kwargs={"use_cache": True}, streams=streams, cuda_graph=False)
        with torch.no_grad():
            ref = e(ids(1), use_cache=True)
        out = step(ids(1), use_cache=True)
    else:
        step = compile(m, (ids(0, 1),), kwargs={"past_key_values": prefilled(e, 0)}, streams=streams,
                       cuda_graph=False)
        mine, theirs = prefilled(e, 1), prefilled(e, 1)
        with torch.no_grad():
            ref = e(ids(7, 1), past_key_values=theirs)
        out = step(ids(7, 1), past_key_values=mine)
        if out.past_key_values is not mine:
            return "WRONG: a new cache, the caller's left as passed"
    ok, diff = same(out, ref, e)
    return "BITWISE" if ok else f"WRONG {diff:.2e}"


def main(names):
    for name in names:
        for streams in (1, 3):
            for phase in ("prefill", "decode"):
                t0 = time.time()
                try:
                    verdict = run(name, phase, streams)
                except Exception as exc:  # noqa: BLE001 - a sweep reports every failure and goes on
                    verdict = f"REFUSED {type(exc).__name__}: {str(exc)[:300]}"
                print(f"{name:14s} {phase:8s} s{streams} {time.time() - t0:5.1f}s {verdict}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(FAMILIES))
