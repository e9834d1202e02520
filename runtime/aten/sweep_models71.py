"""Round 71's ``transformers`` models for ``runtime.aten.sweep`` and ``runtime.aten.sweep_paths``: model types of
transformers 5.25 that no earlier list names, each built tiny from its own default config (random weights).

Why: families newer than the lists reach code the listed ones do not (DBRX's fused experts, LongCat-Flash's
zero-computation experts, Kolibri's sliding / indexed attention layers, GLM's multimodal rotary sections in a text
tower, EoMT's query tokens inside a ViT, PP-LCNet's depthwise convolutions, DepthPro's multi-scale patches...).
Each entry is ``(name, make, inputs)``; ``make`` raises the sweep's ``Missing`` where ``transformers`` or the model
type is absent (the GPU image's older transformers lacks most of them).
"""

from __future__ import annotations

from .sweep_kit import Missing, Out, need, tiny_dict
from .sweep_models60 import NOCACHE, _per_layer, ids, rand

#: keys a backbone config derives from its stage count: dropped so that the tiny config derives them again
DERIVED = ("out_features", "out_indices", "stage_names")


def _dropped(d: dict, over: dict) -> dict:
    """``d`` without ``DERIVED``'s keys (nested configs too), but for those ``over`` gives."""
    return {k: (_dropped(v, over.get(k) if isinstance(over.get(k), dict) else {}) if isinstance(v, dict) else v)
            for k, v in d.items() if k not in DERIVED or k in over}


def tiny71(model_type, model_cls="AutoModel", names=("input_ids",), fields=("last_hidden_state",), fixed=None,
           shrink=True, setup=None, **over):
    """``sweep_models60.tiny60`` with a backbone's derived stage names dropped (``DERIVED``: kept, a 2-layer ViT's
    config still named "stage12"), ``model_cls`` an auto class or a model class (sub-models no auto class maps:
    PP-LCNet v3's backbone), a backend the model imports absent reported ``Missing`` (EoMT's scipy), and
    ``setup(config)`` setting what the config class does not take (DBRX's attention reads a ``rope_theta`` its
    attention config has no field for)."""
    def make():
        tf = need("transformers")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        if model_type not in CONFIG_MAPPING_NAMES:
            raise Missing(f"transformers {tf.__version__} has no {model_type}")
        cls = getattr(tf, model_cls, None)
        if cls is None:
            raise Missing(f"transformers {tf.__version__} has no {model_cls}")
        base = tf.AutoConfig.for_model(model_type)
        d0 = base.to_dict()
        d = _per_layer(tiny_dict(d0, over), d0) if shrink else {**d0, **over}
        d = {k: v for k, v in d.items() if k not in ("model_type", "transformers_version", "architectures")}
        cfg = type(base)(**(_dropped(d, over) if shrink else d))
        cfg._attn_implementation = "eager"
        if setup is not None:
            setup(cfg)
        try:
            m = cls.from_config(cfg) if model_cls.startswith("Auto") else cls._from_config(cfg)
        except ImportError as exc:   # (a backend it needs)
            raise Missing(str(exc).strip().splitlines()[0]) from None
        return Out(m.eval(), names, fields, **(fixed or {}))
    return make


def causal71(model_type, **over):
    return tiny71(model_type, "AutoModelForCausalLM", fields=("logits",), fixed=NOCACHE, **over)


PIX = ("pixel_values",)


def _dbrx_rope(cfg) -> None:
    cfg.attn_config.rope_theta = cfg.rope_parameters["rope_theta"]

#: DBRX made tiny (its attention reads a ``rope_theta`` and a ``clip_qkv`` its defaults leave unset)
DBRX = dict(d_model=64, n_heads=4, n_layers=2, max_seq_len=64, attn_config={"kv_n_heads": 2, "clip_qkv": 8.0},
            ffn_config={"hidden_size": 64, "ffn_hidden_size": 64, "moe_num_experts": 4, "moe_top_k": 2},
            setup=_dbrx_rope)

MODELS71 = [
    # decoders
    ("dbrx", causal71("dbrx", **DBRX), ids(1, 6)),
    ("longcat_flash", causal71("longcat_flash", num_layers=1, num_key_value_heads=4, q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16,
                               qk_rope_head_dim=8, head_dim=8, v_head_dim=16, qk_head_dim=24, n_routed_experts=4,
                               zero_expert_num=2, moe_topk=2, expert_ffn_hidden_size=32, ffn_hidden_size=64),
     ids(1, 6)),
    ("kolibri1_1", causal71("kolibri1_1", sliding_window=4, index_layers=None, kv_source_layers=None,
                            layer_types=["sliding_attention", "indexed_attention"], index_topk=4,
                            index_pool_size=8, index_compression=4, index_num_heads=2, moe_intermediate_size=32, shared_expert_intermediate_size=32),
     ids(1, 6)),
    ("glm5_next", tiny71("glm5_next", text_config={"num_key_value_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 16,
                                                     "qk_nope_head_dim": 16, "v_head_dim": 16, "qk_head_dim": 16,
                                                     "index_head_dim": 16, "index_n_heads": 2, "index_topk": 4,
                                                     "index_kpool": 2, "linear_head_dim": 16,
                                                     "linear_num_heads": 4},
                         vision_config={"depth": 1, "out_hidden_size": 64, "projection_intermediate_size": 64}), ids(1, 6)),
    ("neomme", tiny71("neomme"), ids(1, 6)),
    ("glm_ocr_text", tiny71("glm_ocr_text", num_attention_heads=1, num_key_value_heads=1), ids(1, 6)),
    ("glm_image_text", tiny71("glm_image_text", num_attention_heads=1, num_key_value_heads=1), ids(1, 6)),
    # text encoders
    ("sam3_lite_text_text", tiny71("sam3_lite_text_text_model", "Sam3LiteTextTextModel"), ids(1, 6)),
    # vision
    ("depth_pro", tiny71("depth_pro", "DepthProForDepthEstimation", names=PIX, fields=("predicted_depth",), patch_size=32, intermediate_hook_ids=[1, 0],
                        fusion_hidden_size=16, intermediate_feature_dims=[16, 16],
                        scaled_images_feature_dims=[32, 32, 16],
                        image_model_config={"image_size": 32, "patch_size": 8},
                        patch_model_config={"image_size": 32, "patch_size": 8},
                        fov_model_config={"image_size": 32, "patch_size": 8}), rand((1, 3, 128, 128))),
    ("tipsv2_vision", tiny71("tipsv2_vision_model", "Tipsv2VisionModel", names=PIX, image_size=32, patch_size=8),
     rand((1, 3, 32, 32))),
    ("sapiens2", tiny71("sapiens2", names=PIX, image_size=32, patch_size=8, num_key_value_heads_per_layer=None,
                       num_first_full_attention_layers=1, num_last_full_attention_layers=1,
                       num_key_value_attention_heads=2), rand((1, 3, 32, 32))),
    # (EoMT: its loss needs scipy, absent here: SKIP-MISSING where so)
    ("eomt", tiny71("eomt", "EomtForUniversalSegmentation", names=PIX,
                    fields=("class_queries_logits", "masks_queries_logits"), image_size=32, patch_size=8,
                    num_queries=4, num_blocks=1, num_register_tokens=1), rand((1, 3, 32, 32))),
    ("pp_lcnet", tiny71("pp_lcnet", "PPLCNetForImageClassification", names=PIX, scale=0.25,
                            class_expand=64, shrink=False),
     rand((1, 3, 64, 64))),
    ("lw_detr_vit", tiny71("lw_detr_vit", "LwDetrViTBackbone", names=PIX, fields=("feature_maps",), image_size=32,
                           pretrain_image_size=32, patch_size=8, num_windows=4, num_windows_side=2), rand((1, 3, 32, 32))),
    ("rf_detr_dinov2", tiny71("rf_detr_dinov2", "RfDetrDinov2Backbone", names=PIX, fields=("feature_maps",),
                              image_size=32, patch_size=8, num_windows=2, window_block_indexes=[0]),
     rand((1, 3, 32, 32))),
    ("pp_lcnet_v3", tiny71("pp_lcnet_v3", "PPLCNetV3Backbone", names=PIX, fields=("feature_maps",), scale=0.25,
                           shrink=False), rand((1, 3, 64, 64))),
]
