"""Round 76's models for ``runtime.aten.sweep``: transformers models and call forms no earlier list names (random
weights, tiny configs).

Why: the families are new to the sweep (Bark's semantic model, MusicGen-Melody's LM over interleaved codebooks,
SeamlessM4T's text-to-text, Dia's encoder-decoder over audio channels, MarianMT's LM head given a padded mask), and
the call forms are the ones users write: every earlier decoder entry passes ``use_cache=False``; these leave it at
its default, so the program returns the model's ``DynamicCache`` (a full sliding window of 4 over 7 tokens:
Mistral's; ALiBi: Bloom's and Falcon's; partial rotary: GPT-NeoX's; long-rope scaling past its original length:
Phi-3's) or T5's ``EncoderDecoderCache``, each compared tensor by tensor. Round 76 ran each at 1, 2, 3 and "auto"
streams, two calls of fresh inputs and a weight changed between calls: every output bitwise eager, its .pt2 planned
and verified. Each entry is ``(name, make, inputs)``; ``make`` raises the sweep's ``Missing`` where transformers (or
the model) is absent.
"""

from __future__ import annotations

from typing import Any

import torch

from .sweep_kit import Missing, Out, ids, need

#: an encoder-decoder's small sizes (BART-style configs: Marian, SeamlessM4T's text model)
SEQ2SEQ = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
               encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, max_position_embeddings=64, pad_token_id=1,
               decoder_start_token_id=2)


def _tf(*names: str) -> Any:
    tf = need("transformers")
    missing = [n for n in names if not hasattr(tf, n)]
    if missing:
        raise Missing(f"transformers {tf.__version__} has no {', '.join(missing)}")
    return tf


def bark_semantic():
    tf = _tf("BarkSemanticConfig", "BarkSemanticModel")
    cfg = tf.BarkSemanticConfig(block_size=64, input_vocab_size=96, output_vocab_size=96, num_layers=2, num_heads=2,
                                hidden_size=32)
    return Out(tf.BarkSemanticModel(cfg).eval(), ("input_ids",), ("logits",), use_cache=False)


def musicgen_melody_lm():
    """MusicGen-Melody's decoder LM: its ids are (batch x codebooks, length), 2 codebooks."""
    tf = _tf("MusicgenMelodyDecoderConfig", "MusicgenMelodyForCausalLM")
    cfg = tf.MusicgenMelodyDecoderConfig(vocab_size=64, max_position_embeddings=64, num_hidden_layers=2, ffn_dim=64,
                                         num_attention_heads=2, hidden_size=32, num_codebooks=2)
    return Out(tf.MusicgenMelodyForCausalLM(cfg).eval(), ("input_ids",), ("logits",), use_cache=False)


def seamless_t2t():
    tf = _tf("SeamlessM4TConfig", "SeamlessM4TForTextToText")
    cfg = tf.SeamlessM4TConfig(
        vocab_size=96, t2u_vocab_size=32, hidden_size=32, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=64,
        decoder_ffn_dim=64, encoder_attention_heads=2, decoder_attention_heads=2, max_position_embeddings=64,
        speech_encoder_layers=1, speech_encoder_attention_heads=2, speech_encoder_intermediate_size=64,
        t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_attention_heads=2, t2u_decoder_attention_heads=2,
        t2u_encoder_ffn_dim=64, t2u_decoder_ffn_dim=64, unit_hifi_gan_vocab_size=16, vocoder_num_langs=1,
        vocoder_num_spkrs=1)
    return Out(tf.SeamlessM4TForTextToText(cfg).eval(), ("input_ids", "decoder_input_ids"), ("logits",),
               use_cache=False)


def dia():
    """Dia's encoder-decoder: decoder ids of 3 audio channels, (batch, length, channels)."""
    tf = _tf("DiaConfig", "DiaEncoderConfig", "DiaDecoderConfig", "DiaModel")
    enc = tf.DiaEncoderConfig(max_position_embeddings=64, num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                              num_key_value_heads=1, head_dim=16, intermediate_size=64, vocab_size=96)
    dec = tf.DiaDecoderConfig(max_position_embeddings=64, num_hidden_layers=1, hidden_size=32, intermediate_size=64,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, cross_num_attention_heads=2,
                              cross_head_dim=16, cross_num_key_value_heads=1, cross_hidden_size=32, vocab_size=40,
                              num_channels=3)
    cfg = tf.DiaConfig(encoder_config=enc, decoder_config=dec, delay_pattern=[0, 1, 2])
    return Out(tf.DiaModel(cfg).eval(), ("input_ids", "decoder_input_ids"), ("last_hidden_state",), use_cache=False)


def _dia_inputs(g, dev, dt):
    return (torch.randint(0, 96, (2, 8), generator=g, device=dev),
            torch.randint(0, 40, (2, 5, 3), generator=g, device=dev))


def marian_mt():
    tf = _tf("MarianConfig", "MarianMTModel")
    return Out(tf.MarianMTModel(tf.MarianConfig(**SEQ2SEQ)).eval(), ("input_ids", "attention_mask", "decoder_input_ids"),
               ("logits",), use_cache=False)


def _masked_seq2seq(b: int, t: int, td: int, vocab: int = 96):
    """Encoder ids with the first row right-padded by 2, and decoder ids."""
    def f(g, dev, dt):
        mask = torch.ones(b, t, dtype=torch.long, device=dev)
        mask[0, t - 2:] = 0
        return (torch.randint(3, vocab, (b, t), generator=g, device=dev), mask,
                torch.randint(3, vocab, (b, td), generator=g, device=dev))
    return f


def _lm(cfg_cls: str, model_cls: str, **cfg: Any):
    """A decoder LM called as its users call it: ``use_cache`` at its default, so the program returns its
    ``DynamicCache`` beside the logits."""
    def make():
        tf = _tf(cfg_cls, model_cls)
        return Out(getattr(tf, model_cls)(getattr(tf, cfg_cls)(**cfg)).eval(), ("input_ids", "attention_mask"),
                   ("logits", "past_key_values"))
    return make


def _left_padded(b: int, t: int, vocab: int = 96):
    """Ids with the first row left-padded by 2 (a batch of prompts as generation pads them)."""
    def f(g, dev, dt):
        mask = torch.ones(b, t, dtype=torch.long, device=dev)
        mask[0, :2] = 0
        return torch.randint(3, vocab, (b, t), generator=g, device=dev), mask
    return f


LM76 = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64)


def t5_cached():
    """T5 given decoder ids, ``use_cache`` at its default: logits and its ``EncoderDecoderCache``."""
    tf = _tf("T5Config", "T5ForConditionalGeneration")
    cfg = tf.T5Config(d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1, num_heads=2, vocab_size=96,
                      relative_attention_num_buckets=8)
    return Out(tf.T5ForConditionalGeneration(cfg).eval(), ("input_ids", "attention_mask", "decoder_input_ids"),
               ("logits", "past_key_values", "encoder_last_hidden_state"))


MODELS76 = [
    ("bark_semantic", bark_semantic, ids(2, 9, vocab=96)),
    ("musicgen_melody_lm", musicgen_melody_lm, ids(4, 7, vocab=60)),
    ("seamless_m4t_t2t", seamless_t2t, ids(2, 8, 5, vocab=96)),
    ("dia", dia, _dia_inputs),
    ("marian_mt_masked", marian_mt, _masked_seq2seq(2, 8, 5)),
    ("mistral_window_cached", _lm("MistralConfig", "MistralForCausalLM", num_key_value_heads=1, sliding_window=4,
                                  **LM76), _left_padded(2, 7)),
    ("bloom_cached", _lm("BloomConfig", "BloomForCausalLM", vocab_size=96, hidden_size=32, n_layer=2, n_head=2),
     _left_padded(2, 7)),
    ("falcon_alibi_cached", _lm("FalconConfig", "FalconForCausalLM", vocab_size=96, hidden_size=32,
                                num_hidden_layers=2, num_attention_heads=2, alibi=True,
                                new_decoder_architecture=False, multi_query=True), _left_padded(2, 7)),
    ("gptneox_partial_rotary_cached", _lm("GPTNeoXConfig", "GPTNeoXForCausalLM", rotary_pct=0.25, **LM76),
     _left_padded(2, 7)),
    ("phi3_longrope_cached", _lm("Phi3Config", "Phi3ForCausalLM", pad_token_id=0,
                                 original_max_position_embeddings=16,
                                 rope_parameters=dict(rope_type="longrope", rope_theta=10000.0, short_factor=[1.0] * 8,
                                                      long_factor=[2.0] * 8, original_max_position_embeddings=16,
                                                      partial_rotary_factor=1.0), **LM76), _left_padded(2, 20)),
    ("t5_cached", t5_cached, _masked_seq2seq(2, 8, 5)),
]
