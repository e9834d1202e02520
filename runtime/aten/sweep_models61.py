"""Round 61's ``transformers`` models for ``runtime.aten.sweep``: model types whose config the sweep's lists did not
name (listed against ``CONFIG_MAPPING_NAMES``), each built tiny from its own default config (random weights, small
inputs) with round 60's ``tiny60``.

Why: the executor is checked on models nobody hand-picked; these reach code the sweep's models do not (Qwen3.5's
hybrid gated-delta / full attention stack as a causal LM on a padded batch, Phi-4-multimodal's, GLM-5-Next's,
Cosmos3-Edge's (M-RoPE) and TIPSv2's text paths, SAM 2's and SAM 3's image encoders with their necks, UVDoc's
backbone, ViTMatte's matting head, Qwen3-ASR's audio encoder, and transformers models' call forms beyond ids: labels
and their loss, every hidden state and attention map, input embeddings with position ids, token types).
Each entry is ``(name, make, inputs)``: ``make`` raises the sweep's ``Missing`` where ``transformers`` or the model
type is absent (the device image's 5.17 lacks some). Listed against transformers 5.25, where DBRX (its
attention config lacks ``rope_theta``) and LongCat-Flash, GLM-OCR's and GLM-Image's text towers (their M-RoPE
sections ignore a tiny head) fail in eager as built tiny: left out.
"""

from __future__ import annotations

import torch

from .sweep_kit import hf
from .sweep_models60 import causal60, ids, ids_mask, rand, tiny60

T = dict(max_position_embeddings=64)
PIX = ("pixel_values",)

def asr_inputs(g, dev, dt):
    """(log-mel features (1, 128, 100), their mask: every frame real)."""
    return (torch.randn(1, 128, 100, generator=g, device=dev).to(dt), torch.ones(1, 100, dtype=torch.long, device=dev))


def hf61(cfg_cls, model_cls, attn, names=("input_ids",), fields=("logits",), fixed=None, **cfg):
    """The sweep's ``hf`` (a ``transformers`` model from a config class), keyword arguments named."""
    return lambda: hf(cfg_cls, model_cls, attn, names=names, fields=fields, fixed=fixed, **cfg)()


LM = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
          max_position_embeddings=128, intermediate_size=128, pad_token_id=0, bos_token_id=1, eos_token_id=2)
BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=128, intermediate_size=128)


def ids_labels(b, t):
    """(ids (b, t), labels: the ids with the first row's last 2 positions ignored, -100)."""
    def f(g, dev, dt):
        x = torch.randint(3, 128, (b, t), generator=g, device=dev)
        y = x.clone()
        y[0, t - 2:] = -100
        return x, y
    return f


def embeds_positions(g, dev, dt):
    """(input embeddings (2, 6, 64), position ids: the second row starting at 3)."""
    pos = torch.arange(6, device=dev).repeat(2, 1)
    pos[1] += 3
    return torch.randn(2, 6, 64, generator=g, device=dev).to(dt), pos


MROPE = {"rope_theta": 10000.0, "rope_type": "default", "mrope_section": [2, 3, 3]}   # (half of the tiny head_dim)

MODELS61 = [
    # decoder-only LMs: a hybrid gated-delta / full-attention stack padded, text towers of multimodal models
    ("qwen3_5_lm_padded", causal60("qwen3_5", names=("input_ids", "attention_mask")), ids_mask(6)),
    ("phi4_multimodal_lm", causal60("phi4_multimodal"), ids(1, 6)),
    ("glm5_next_text", tiny60("glm5_next_text", num_key_value_heads=4, **T), ids(1, 6)),
    ("cosmos3_edge_text", tiny60("cosmos3_edge_text", rope_parameters=MROPE, **T), ids(1, 6)),
    ("tipsv2_text", tiny60("tipsv2_text_model", **T), ids(1, 6)),
    # vision encoders: SAM 2's Hiera with its FPN neck, SAM 3's ViT with its neck, UVDoc's dewarping backbone
    ("sam2_vision", tiny60("sam2_vision_model", names=PIX, backbone_config={"hidden_size": 96,
                                                                           "blocks_per_stage": [1, 1, 2, 1],
                                                                           "global_attention_blocks": [3]}),
     rand((1, 3, 64, 64))),
    ("sam3_vision", tiny60("sam3_vision_model", names=PIX), rand((1, 3, 56, 56))),
    ("uvdoc_backbone", tiny60("uvdoc_backbone", "UVDocBackbone", names=PIX, fields=("feature_maps",)),
     rand((1, 3, 64, 64))),
    # the call forms of transformers models: losses from labels (shifted, ignore_index -100), every hidden state and
    # attention map returned (outputs that alias: the last hidden state is one of them), input embeddings and
    # position ids instead of ids, token types
    ("llama_loss", hf61("LlamaConfig", "LlamaForCausalLM", "sdpa", names=("input_ids", "labels"),
                        fields=("loss", "logits"), fixed={"use_cache": False}, **LM), ids_labels(2, 6)),
    ("bert_mlm_loss", hf61("BertConfig", "BertForMaskedLM", "eager", names=("input_ids", "labels"),
                           fields=("loss", "logits"), **BERT), ids_labels(2, 6)),
    ("t5_labels", hf61("T5Config", "T5ForConditionalGeneration", "eager", names=("input_ids", "labels"),
                       fields=("loss", "logits"), d_model=64, d_ff=128, d_kv=16, num_layers=2, num_heads=4,
                       vocab_size=128, decoder_start_token_id=0, pad_token_id=0), ids_labels(2, 6)),
    ("bert_seqcls_labels", hf61("BertConfig", "BertForSequenceClassification", "eager", names=("input_ids", "labels"),
                                fields=("loss", "logits"), num_labels=3, **BERT),   # (forward sets problem_type)
     lambda g, dev, dt: (torch.randint(3, 128, (2, 6), generator=g, device=dev),
                         torch.randint(0, 3, (2,), generator=g, device=dev))),
    ("bart_labels", hf61("BartConfig", "BartForConditionalGeneration", "eager", names=("input_ids", "labels"),
                         fields=("loss", "logits"), d_model=64, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         vocab_size=128, max_position_embeddings=64, pad_token_id=1, decoder_start_token_id=2),
     ids_labels(2, 6)),
    ("llama_hidden_states", hf61("LlamaConfig", "LlamaModel", "eager", fields=("last_hidden_state", "hidden_states"),
                                 fixed={"use_cache": False, "output_hidden_states": True}, **LM), ids(1, 6)),
    ("bert_attentions", hf61("BertConfig", "BertModel", "eager", fields=("hidden_states", "attentions"),
                             fixed={"output_hidden_states": True, "output_attentions": True}, **BERT), ids(2, 6)),
    ("llama_embeds_positions", hf61("LlamaConfig", "LlamaModel", "sdpa", names=("inputs_embeds", "position_ids"),
                                    fields=("last_hidden_state",), fixed={"use_cache": False}, **LM),
     embeds_positions),
    ("gpt2_token_types", hf61("GPT2Config", "GPT2Model", "eager", names=("input_ids", "token_type_ids"),
                              fields=("last_hidden_state",), fixed={"use_cache": False}, n_embd=64, n_layer=2,
                              n_head=4, vocab_size=128, n_positions=64), ids(2, 6, 6)),
    # image matting: ViTMatte's ViTDet backbone (4 channels: the image and its trimap) fused with a conv stream
    ("vitmatte", tiny60("vitmatte", "VitMatteForImageMatting", names=PIX, fields=("alphas",), hidden_size=64,
                        convstream_hidden_sizes=[8, 16, 32], fusion_hidden_sizes=[32, 16, 8, 8],
                        backbone_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                         "image_size": 64, "patch_size": 16, "num_channels": 4, "mlp_ratio": 2,
                                         "stage_names": ["stem", "stage1", "stage2"], "out_features": ["stage2"],
                                         "out_indices": [2]}),
     rand((1, 4, 64, 64))),
    # audio: Qwen3-ASR's encoder with its feature mask
    ("qwen3_asr_encoder", tiny60("qwen3_asr_encoder", names=("input_features", "input_features_mask")), asr_inputs),
]
