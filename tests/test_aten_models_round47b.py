"""Round 47b: more real models end to end through memplan on CPU (torch.export import, ``memplan.plan`` with
``streams="auto"``, verify, the ATen executor over a NaN-poisoned arena), compared bitwise against eager over two
calls with different inputs.  Tiny random-weight configs only; regression coverage for architectures that no
earlier round exercised (Phi3, Gemma2 sliding window + softcap, Mistral sliding window, GPT-NeoX, Falcon,
Qwen2-MoE, Mixtral, T5 encoder, CLIP text, Whisper encoder, ShuffleNet)."""

from __future__ import annotations

import copy

import pytest
from needs import need

torch = need("torch")

from runtime.aten import compile  # noqa: E402


def _ids(k):
    return (torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(k)),)


def _lm(cfg_name, model_name, **kw):
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = getattr(transformers, cfg_name)(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                           **kw)
    cfg._attn_implementation = "eager"
    return getattr(transformers, model_name)(cfg).eval(), _ids, {"use_cache": False}


def _whisper_encoder():
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = transformers.WhisperConfig(vocab_size=128, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                                     encoder_ffn_dim=64, num_mel_bins=8, max_source_positions=8, decoder_layers=1,
                                     decoder_attention_heads=4, decoder_ffn_dim=64, pad_token_id=0, bos_token_id=1,
                                     eos_token_id=2, decoder_start_token_id=1)
    cfg._attn_implementation = "eager"
    enc = transformers.WhisperModel(cfg).get_encoder().eval()
    return enc, lambda k: (torch.randn(2, 8, 16, generator=torch.Generator().manual_seed(k)),), {}


def _t5_encoder():
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    cfg._attn_implementation = "eager"
    return transformers.T5EncoderModel(cfg).eval(), _ids, {}


def _clip_text():
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = transformers.CLIPTextConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=16)
    cfg._attn_implementation = "eager"
    return transformers.CLIPTextModel(cfg).eval(), _ids, {}


def _shufflenet():
    """A ShuffleNet-v2 unit (split, depthwise branch, concat, channel shuffle) written out: torchvision is not one of
    the extras CI installs, and the model's pattern (views, transposes and a chunk feeding two branches) is the point."""
    torch.manual_seed(0)

    class Unit(torch.nn.Module):
        def __init__(self, c: int = 8):
            super().__init__()
            h = c // 2
            self.branch = torch.nn.Sequential(
                torch.nn.Conv2d(h, h, 1, bias=False), torch.nn.BatchNorm2d(h), torch.nn.ReLU(),
                torch.nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), torch.nn.BatchNorm2d(h),
                torch.nn.Conv2d(h, h, 1, bias=False), torch.nn.BatchNorm2d(h), torch.nn.ReLU())

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            y = torch.cat((a, self.branch(b)), dim=1)
            n, c, hh, ww = y.shape
            return y.view(n, 2, c // 2, hh, ww).transpose(1, 2).contiguous().view(n, c, hh, ww)

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), Unit(), Unit(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    return m, lambda k: (torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(k)),), {}


CASES = {
    "phi3": lambda: _lm("Phi3Config", "Phi3ForCausalLM", intermediate_size=64, num_key_value_heads=2,
                        max_position_embeddings=32, pad_token_id=0),
    "gemma2_sliding": lambda: _lm("Gemma2Config", "Gemma2ForCausalLM", intermediate_size=64, num_key_value_heads=2,
                                  head_dim=8, sliding_window=4, max_position_embeddings=32),
    "mistral_sliding": lambda: _lm("MistralConfig", "MistralForCausalLM", intermediate_size=64,
                                   num_key_value_heads=2, sliding_window=3, max_position_embeddings=32),
    "gpt_neox": lambda: _lm("GPTNeoXConfig", "GPTNeoXForCausalLM", intermediate_size=64, max_position_embeddings=32),
    "falcon": lambda: _lm("FalconConfig", "FalconForCausalLM"),
    "qwen2_moe": lambda: _lm("Qwen2MoeConfig", "Qwen2MoeForCausalLM", intermediate_size=64, moe_intermediate_size=16,
                             shared_expert_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
                             num_key_value_heads=2),
    "mixtral": lambda: _lm("MixtralConfig", "MixtralForCausalLM", intermediate_size=32, num_key_value_heads=2,
                           num_local_experts=4, num_experts_per_tok=2),
    "t5_encoder": _t5_encoder,
    "clip_text": _clip_text,
    "whisper_encoder": _whisper_encoder,
    "shufflenet": _shufflenet,
}


def _first(out):
    return out.logits if hasattr(out, "logits") else out if isinstance(out, torch.Tensor) else out[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_model_runs_bitwise_as_eager_over_a_poisoned_arena_twice(name):
    m, make, kw = CASES[name]()
    eager = copy.deepcopy(m)
    step = compile(m, make(0), kwargs=kw, cuda_graph=False, poison=True)
    for k in range(2):
        args = make(k)
        with torch.no_grad():
            ref = _first(eager(*args, **kw))
        out = _first(step(*args, **kw))
        assert torch.equal(out, ref), name
