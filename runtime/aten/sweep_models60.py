"""Round 60's ``transformers`` models for ``runtime.aten.sweep``: model types whose config the sweep's lists did not
name, each built tiny from its own default config (random weights, small inputs).

Why: the executor is checked on models nobody hand-picked; these reach code the sweep's models do not (Longformer's
sliding-chunk attention, Reformer's LSH buckets, Nystromformer's landmarks, Switch Transformers' capacity routing,
hybrid linear/full attention stacks such as Qwen3.5's, SAM-HQ's windowed ViT, V-JEPA 2's video tubelets,
SuperPoint's keypoint top-k, Voxtral's audio encoder). Each entry is ``(name, make, inputs)``: ``make`` raises the
sweep's ``Missing`` where ``transformers`` or the model type is absent (the device image's 5.17 lacks some),
``inputs(generator, device, dtype)`` gives the positional arguments.
"""

from __future__ import annotations

import torch

from .sweep_kit import Missing, Out, need, tiny_dict

NOCACHE = {"use_cache": False}


def _per_layer(d: dict, base: dict) -> dict:
    """``d`` (a shrunk config dict) with each per-layer list of ``base`` (one entry per default layer: Qwen3.5's
    ``layer_types``, Gemma 3n's ``intermediate_size``) cut to ``d``'s layer count, its last entries kept (a
    hybrid stack's pattern ends with its full-attention layer), and per-layer dicts keyed by layer index cut alike."""
    out = dict(d)
    for key in ("num_hidden_layers", "num_layers", "encoder_layers"):
        n0, n = base.get(key), d.get(key)
        if isinstance(n0, int) and isinstance(n, int) and n < n0:
            break
    else:
        n0 = n = None
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            if n is not None and v and all(str(i).isdigit() for i in v):
                out[k] = {i: x for i, x in v.items() if int(i) < n}
            else:
                out[k] = _per_layer(v, base[k])
        elif n is not None and isinstance(v, list) and len(v) == n0 and isinstance(base.get(k), list):
            out[k] = v[-n:]
    return out


def tiny60(model_type, model_cls="AutoModel", names=("input_ids",), fields=("last_hidden_state",), fixed=None,
           shrink=True, **over):
    """The sweep's ``tiny`` with per-layer lists cut to the tiny layer count (``_per_layer``); ``shrink=False``
    keeps the default sizes (models whose sizes are tied to each other in ways ``TINY`` breaks: codecs)."""
    def make():
        tf = need("transformers")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        if model_type not in CONFIG_MAPPING_NAMES or not hasattr(tf, model_cls):
            raise Missing(f"transformers {tf.__version__} has no {model_type} / {model_cls}")
        base = tf.AutoConfig.for_model(model_type)
        d0 = base.to_dict()
        d = _per_layer(tiny_dict(d0, over), d0) if shrink else {**d0, **over}
        cfg = type(base)(**{k: v for k, v in d.items()
                            if k not in ("model_type", "transformers_version", "architectures")})
        cfg._attn_implementation = "eager"
        cls = getattr(tf, model_cls)
        try:
            m = cls.from_config(cfg) if model_cls.startswith("Auto") else cls._from_config(cfg)
        except ImportError as exc:   # (a backend it needs: timm_wrapper's timm)
            raise Missing(str(exc).strip().splitlines()[0]) from None
        return Out(m.eval(), names, fields, **(fixed or {}))
    return make


def with_experts(make, implementation):
    """``make``'s model with transformers' experts implementation ``implementation`` (``set_experts_implementation``).
    Why: a model whose config defaults to the "eager" experts loop (OpenAI's privacy filter) is refused for its
    data-dependent trip count; the refusal says to choose "grouped_mm", and this entry runs that way out (round 70)."""
    def built():
        out = make()
        out.m.set_experts_implementation(implementation)
        return out
    return built


def causal60(model_type, **over):
    return tiny60(model_type, "AutoModelForCausalLM", fields=("logits",), fixed=NOCACHE, **over)


def ids(b, *lengths, vocab=128):
    return lambda g, dev, dt: tuple(torch.randint(3, vocab, (b, t), generator=g, device=dev) for t in lengths)


def rand(*shapes):
    return lambda g, dev, dt: tuple(torch.randn(*s, generator=g, device=dev).to(dt) for s in shapes)


def ids_pixels(t, side):
    return lambda g, dev, dt: (torch.randint(3, 128, (1, t), generator=g, device=dev),
                               torch.randn(1, 3, side, side, generator=g, device=dev).to(dt))


def ids_mask(t, dec=0):
    """(ids (2, t), their mask: the second row's last 2 positions padding[, decoder ids (2, dec)])."""
    def f(g, dev, dt):
        mask = torch.ones(2, t, dtype=torch.long, device=dev)
        mask[1, t - 2:] = 0
        out = (torch.randint(3, 128, (2, t), generator=g, device=dev), mask)
        return out + (torch.randint(3, 128, (2, dec), generator=g, device=dev),) if dec else out
    return f


T = dict(max_position_embeddings=64)
V32 = dict(image_size=32, patch_size=8, names=("pixel_values",))
PIX = ("pixel_values",)
DUAL = dict(names=("input_ids", "pixel_values"), fields=("logits_per_image",),
            text_config={"max_position_embeddings": 64}, vision_config={"image_size": 32, "patch_size": 8})


def video_ids(g, dev, dt):
    return (torch.randint(3, 128, (1, 6), generator=g, device=dev),
            torch.randn(1, 2, 3, 32, 32, generator=g, device=dev).to(dt))


def ids_audio(g, dev, dt):
    return (torch.randint(3, 128, (1, 6), generator=g, device=dev),
            torch.randn(1, 1, 64, 16, generator=g, device=dev).to(dt))


def udop_inputs(g, dev, dt):
    """(ids (1, 6), their word boxes (x0, y0, x1, y1) in [0, 1], an image (1, 3, 32, 32), decoder ids (1, 4))."""
    corner = torch.rand(1, 6, 2, generator=g, device=dev) * 0.5
    boxes = torch.cat([corner, corner + 0.4], -1).to(dt)
    return (torch.randint(3, 128, (1, 6), generator=g, device=dev), boxes,
            torch.randn(1, 3, 32, 32, generator=g, device=dev).to(dt),
            torch.randint(3, 128, (1, 4), generator=g, device=dev))


def pix2struct_inputs(g, dev, dt):
    """Pix2Struct's flattened patches: 16 of 8x8x3 on a 4x4 grid (row and column, from 1, in front), every one real,
    and decoder ids (1, 5)."""
    patches = torch.randn(1, 16, 2 + 3 * 8 * 8, generator=g, device=dev).to(dt)
    k = torch.arange(16, device=dev)
    patches[..., 0], patches[..., 1] = k.div(4, rounding_mode="floor") + 1, k % 4 + 1
    return (patches, torch.ones(1, 16, dtype=torch.long, device=dev),
            torch.randint(3, 128, (1, 5), generator=g, device=dev))


MODELS60 = [
    # text: decoder-only LMs (MoE, hybrid linear/full attention), encoders with odd attention, encoder-decoders
    ("jetmoe", causal60("jetmoe"), ids(1, 6)),
    ("reformer_lm", causal60("reformer", axial_pos_shape=[4, 4], axial_pos_embds_dim=[32, 32],
                             attn_layers=["local", "lsh"], local_attn_chunk_length=4, lsh_attn_chunk_length=4,
                             num_buckets=4, attention_head_size=16, feed_forward_size=64, is_decoder=True),
     ids(1, 16)),
    ("xmod", tiny60("xmod", default_language="en_XX", **T), ids(1, 6)),
    ("longformer", tiny60("longformer", attention_window=[4, 4], **T), ids(1, 8)),
    ("nystromformer", tiny60("nystromformer", num_landmarks=4, segment_means_seq_len=8, **T), ids(1, 8)),
    ("led", tiny60("led", names=("input_ids", "decoder_input_ids"), attention_window=[4, 4],
                   max_encoder_position_embeddings=64, max_decoder_position_embeddings=64), ids(1, 8, 5)),
    ("fsmt", tiny60("fsmt", names=("input_ids", "decoder_input_ids"), src_vocab_size=128, tgt_vocab_size=128,
                    langs=["en", "de"]), ids(1, 7, 5)),
    ("switch_transformers", tiny60("switch_transformers", names=("input_ids", "decoder_input_ids"),
                                   num_sparse_encoder_layers=1, num_sparse_decoder_layers=1, expert_capacity=8),
     ids(1, 7, 5)),
    # (round 70: with the mask its traced path leaves unset, past its router's no-op .to(): refused at its experts loop)
    ("switch_transformers_mask", tiny60("switch_transformers", names=("input_ids", "attention_mask", "decoder_input_ids"),
                                        num_sparse_encoder_layers=1, num_sparse_decoder_layers=1, expert_capacity=8),
     lambda g, dev, dt: (torch.randint(3, 128, (1, 7), generator=g, device=dev), torch.ones(1, 7, dtype=torch.long,
                         device=dev), torch.randint(3, 128, (1, 5), generator=g, device=dev))),
    ("openai_privacy_filter", tiny60("openai_privacy_filter"), ids(1, 6)),
    ("openai_privacy_filter_grouped_mm", with_experts(tiny60("openai_privacy_filter"), "grouped_mm"), ids(1, 6)),
    ("ultravbert", tiny60("ultravbert", **T), ids(1, 6)),
    # padded batches: the mask an input, one row shorter
    ("fsmt_padded", tiny60("fsmt", names=("input_ids", "attention_mask", "decoder_input_ids"), src_vocab_size=128,
                           tgt_vocab_size=128, langs=["en", "de"]), ids_mask(7, 5)),
    ("ultravbert_padded", tiny60("ultravbert", names=("input_ids", "attention_mask"), **T), ids_mask(6)),
    ("modernvbert_padded", tiny60("modernvbert", "AutoModelForSequenceClassification",
                                  names=("input_ids", "attention_mask"), fields=("logits",)), ids_mask(6)),
    ("modernvbert_cls", tiny60("modernvbert", "AutoModelForSequenceClassification", fields=("logits",)),
     ids(1, 6)),
    ("clvp_encoder", tiny60("clvp_encoder", "ClvpEncoder", fields=("embeds",), use_rotary_embedding=False),
     ids(1, 6)),
    ("blip_2_qformer", tiny60("blip_2_qformer", "Blip2QFormerModel", names=("query_embeds", "encoder_hidden_states"),
                              encoder_hidden_size=32), rand((1, 4, 64), (1, 5, 32))),
    # dual encoders: both towers and their similarity logits
    *[(name, tiny60(name, **DUAL), ids_pixels(6, 32))
      for name in ("groupvit", "clipseg", "chinese_clip", "altclip", "metaclip_2", "aimv2", "blip")],
    ("owlv2", tiny60("owlv2", **{**DUAL, "text_config": {"max_position_embeddings": 16}}), ids_pixels(6, 32)),
    ("xclip", tiny60("xclip", **{**DUAL, "fields": ("logits_per_video",),
                                 "vision_config": {"image_size": 32, "patch_size": 8, "num_frames": 2}},
                     prompt_layers=1), video_ids),
    # their task heads: open-vocabulary detection, text-prompted segmentation, image-text matching
    *[(f"{mt}_detection", tiny60(mt, cls, names=("input_ids", "pixel_values"), fields=("logits", "pred_boxes"),
                                 projection_dim=64, text_config={"max_position_embeddings": 16},
                                 vision_config={"image_size": 32, "patch_size": 8}), ids_pixels(6, 32))
      for mt, cls in (("owlvit", "OwlViTForObjectDetection"), ("owlv2", "Owlv2ForObjectDetection"))],
    ("clipseg_segmentation", tiny60("clipseg", "CLIPSegForImageSegmentation", **{**DUAL, "fields": ("logits",)},
                                    extract_layers=[0, 1], reduce_dim=16), ids_pixels(6, 32)),
    ("blip_itm", tiny60("blip", "BlipForImageTextRetrieval", **{**DUAL, "fields": ("itm_score",)}),
     ids_pixels(6, 32)),
    ("bridgetower", tiny60("bridgetower", names=("input_ids", "pixel_values"), fields=("pooler_output",),
                           text_config={"max_position_embeddings": 64},
                           vision_config={"image_size": 32, "patch_size": 8}), ids_pixels(6, 32)),
    # document models: Pix2Struct's flattened patches into a T5-style decoder, UDOP's text, layout boxes and image
    ("pix2struct", tiny60("pix2struct", "Pix2StructForConditionalGeneration",
                          names=("flattened_patches", "attention_mask", "decoder_input_ids"), fields=("logits",),
                          vision_config={"patch_embed_hidden_size": 192, "seq_len": 16, "d_kv": 16},
                          text_config={"d_kv": 16}), pix2struct_inputs),
    ("udop", tiny60("udop", names=("input_ids", "bbox", "pixel_values", "decoder_input_ids"), image_size=32,
                    patch_size=8, relative_bias_args=[{"type": "1d"}, {"type": "horizontal"}, {"type": "vertical"}]),
     udop_inputs),
    ("flava", tiny60("flava", names=("input_ids", "pixel_values"), fields=("multimodal_embeddings",),
                     text_config={"max_position_embeddings": 64}, image_config={"image_size": 32, "patch_size": 8}),
     ids_pixels(6, 32)),
    ("clap", tiny60("clap", names=("input_ids", "input_features"), fields=("logits_per_audio",),
                    text_config={"max_position_embeddings": 64},
                    audio_config={"spec_size": 64, "patch_embeds_hidden_size": 16, "depths": [1, 1],
                                  "num_attention_heads": [2, 2], "window_size": 4, "hidden_size": 32,
                                  "num_mel_bins": 16}), ids_audio),
    # vision encoders
    ("sam3_vit", tiny60("sam3_vit_model", names=PIX, image_size=56, patch_size=14, window_size=2,
                        global_attn_indexes=[1], pretrain_image_size=28), rand((1, 3, 56, 56))),
    ("timm_wrapper", tiny60("timm_wrapper", "TimmWrapperForImageClassification", names=PIX, fields=("logits",),
                            architecture="resnet18"), rand((1, 3, 64, 64))),
    ("sam_hq_vision", tiny60("sam_hq_vision_model", names=PIX, image_size=64, patch_size=16, output_channels=32,
                             window_size=2, global_attn_indexes=[1]), rand((1, 3, 64, 64))),
    ("sam2_hiera", tiny60("sam2_hiera_det_model", names=PIX, hidden_size=96, blocks_per_stage=[1, 1, 2, 1],
                          global_attention_blocks=[3]), rand((1, 3, 64, 64))),
    ("vjepa2", tiny60("vjepa2", names=("pixel_values_videos",), crop_size=32, frames_per_clip=4,
                      pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=4),
     rand((1, 4, 3, 32, 32))),
    ("videoprism_vision", tiny60("videoprism_vision_model", names=("pixel_values_videos",), image_size=36,
                                 num_frames=4, num_spatial_layers=2, num_temporal_layers=1, num_auxiliary_layers=1),
     rand((1, 4, 3, 36, 36))),
    ("metaclip_2_vision", tiny60("metaclip_2_vision_model", "MetaClip2VisionModel", **V32), rand((1, 3, 32, 32))),
    ("superpoint", tiny60("superpoint", "SuperPointForKeypointDetection", names=PIX, fields=("scores",)),
     rand((1, 3, 64, 64))),
    ("vilt", tiny60("vilt", names=("input_ids", "pixel_values"), image_size=32, patch_size=8, **T),
     ids_pixels(6, 32)),
    # audio
    ("voxtral_encoder", tiny60("voxtral_encoder", names=("input_features",)), rand((1, 128, 3000))),
    ("glmasr_encoder", tiny60("glmasr_encoder", names=("input_features",), num_mel_bins=16), rand((1, 16, 60))),
    ("lasr_ctc", tiny60("lasr_ctc", "AutoModelForCTC", names=("input_features",), fields=("logits",)),
     rand((1, 40, 128))),
    ("fastspeech2_conformer", tiny60("fastspeech2_conformer", fields=("spectrogram",), encoder_linear_units=64,
                                     decoder_linear_units=64, duration_predictor_channels=32,
                                     energy_predictor_channels=32, pitch_predictor_channels=32,
                                     speech_decoder_postnet_units=32, vocab_size=78), ids(1, 6, vocab=78)),
    ("mimi", tiny60("mimi", names=("input_values",), fields=("audio_values",), shrink=False, num_hidden_layers=1,
                    hidden_size=64, num_filters=8, upsampling_ratios=[4, 4], upsample_groups=64, intermediate_size=64,
                    num_attention_heads=4, num_key_value_heads=4, head_dim=16, codebook_dim=32, codebook_size=64,
                    vector_quantization_hidden_dimension=32, num_quantizers=4), rand((1, 1, 320))),
    ("encodec", tiny60("encodec", names=("input_values",), fields=("audio_values",), shrink=False,
                       num_lstm_layers=1, upsampling_ratios=[4, 4], num_filters=8, hidden_size=32,
                       codebook_dim=32, codebook_size=64), rand((1, 1, 320))),
]
