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


def _dropped(d: dict) -> dict:
    return {k: (_dropped(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in DERIVED}


def tiny71(model_type, model_cls="AutoModel", names=("input_ids",), fields=("last_hidden_state",), fixed=None,
           shrink=True, **over):
    """``sweep_models60.tiny60`` with a backbone's derived stage names dropped (``DERIVED``: kept, a 2-layer ViT's
    config still named "stage12") and ``model_cls`` looked up in ``transformers`` or in the model type's own module
    (sub-models no auto class maps: PP-LCNet's backbone)."""
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
        cfg = type(base)(**_dropped({k: v for k, v in d.items()
                                     if k not in ("model_type", "transformers_version", "architectures")}))
        cfg._attn_implementation = "eager"
        m = cls.from_config(cfg) if model_cls.startswith("Auto") else cls._from_config(cfg)
        return Out(m.eval(), names, fields, **(fixed or {}))
    return make


def causal71(model_type, **over):
    return tiny71(model_type, "AutoModelForCausalLM", fields=("logits",), fixed=NOCACHE, **over)


PIX = ("pixel_values",)

MODELS71 = [
    # decoders
    ("dbrx", causal71("dbrx", d_model=64, n_heads=4, n_layers=2, max_seq_len=64,
                      attn_config={"kv_n_heads": 2, "rope_theta": 10000.0},
                      ffn_config={"hidden_size": 64, "ffn_hidden_size": 64, "moe_num_experts": 4, "moe_top_k": 2}),
     ids(1, 6)),
    ("longcat_flash", causal71("longcat_flash", num_layers=1, q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16,
                               qk_rope_head_dim=8, head_dim=8, v_head_dim=16, qk_head_dim=24, n_routed_experts=4,
                               zero_expert_num=2, moe_topk=2, expert_ffn_hidden_size=32, ffn_hidden_size=64),
     ids(1, 6)),
    ("kolibri1_1", causal71("kolibri1_1", sliding_window=4, index_layers=None, kv_source_layers=None,
                            layer_types=["sliding_attention", "indexed_attention"], index_topk=4,
                            index_pool_size=8, moe_intermediate_size=32, shared_expert_intermediate_size=32),
     ids(1, 6)),
    ("glm5_next", tiny71("glm5_next", "AutoModel", num_key_value_heads=4), ids(1, 6)),
    ("neomme", tiny71("neomme"), ids(1, 6)),
    ("glm_ocr_text", tiny71("glm_ocr_text", num_attention_heads=1, num_key_value_heads=1), ids(1, 6)),
    ("glm_image_text", tiny71("glm_image_text", num_attention_heads=1, num_key_value_heads=1), ids(1, 6)),
    # text encoders
    ("sam3_lite_text_text", tiny71("sam3_lite_text_text_model", "Sam3LiteTextTextModel"), ids(1, 6)),
    # vision
    ("depth_pro", tiny71("depth_pro", names=PIX, fields=("last_hidden_state",)), rand((1, 3, 64, 64))),
    ("tipsv2_vision", tiny71("tipsv2_vision_model", "Tipsv2VisionModel", names=PIX, image_size=32, patch_size=8),
     rand((1, 3, 32, 32))),
    ("sapiens2", tiny71("sapiens2", names=PIX, image_size=32, patch_size=8), rand((1, 3, 32, 32))),
    ("uvdoc", tiny71("uvdoc", names=PIX, shrink=False), rand((1, 3, 64, 64))),
    ("dinat", tiny71("dinat", names=PIX, kernel_size=3, depths=[1, 1], num_heads=[2, 4], dilations=[[1], [1]]),
     rand((1, 3, 64, 64))),
]
