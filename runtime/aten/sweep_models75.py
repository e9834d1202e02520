"""Round 75's models for ``runtime.aten.sweep``: timm families and variants and transformers vision/audio models no
earlier list names (random weights, tiny where the model takes it).

Why: they reach module forms the listed ones do not (SAM's windowed ViT with a global-attention block, NaFlexViT's
flexible patch embedding, mixed-frequency 2-D RoPE, MetaFormer's CAFormer, EfficientViT-L's ReLU linear attention,
SHViT's single-head attention, Hiera-Det (SAM 2's trunk), the Perception Encoder, CSATv2, Next-ViT, FasterNet's partial
convolution, RepVGG, MobileOne and FastViT re-parameterized for deployment, Mask2Former's masked attention and multi-scale deformable pixel
decoder, ViTPose's per-dataset expert MLP chosen by an index tensor, transformers' TimmBackbone, OmniASR's CTC
encoder). Round 75 ran each at 1, 2, 3 and "auto" streams, two calls of fresh inputs, a weight changed between calls
and the module switched to train mode after compile (refused, naming it): every output bitwise eager. Each entry is
``(name, make, inputs)``; ``make`` raises the sweep's ``Missing`` where timm or transformers (or the model) is absent.
"""

from __future__ import annotations

from typing import Any

import torch

from .sweep_kit import Missing, Out, img, need, timm_model

#: (timm name, image side, create_model keywords)
TIMM75: list[tuple[str, int, dict[str, Any]]] = [
    ("samvit_base_patch16", 64, dict(img_size=64, depth=2, embed_dim=64, num_heads=2, window_size=2,
                                     global_attn_indexes=(1,))),
    ("naflexvit_base_patch16_gap", 64, dict(img_size=64, depth=2)),
    ("vit_base_patch16_rope_mixed_224", 64, dict(img_size=64, depth=2)),
    ("vit_pe_core_tiny_patch16_384", 64, dict(img_size=64, depth=2)),
    ("caformer_s18", 64, {}),
    ("efficientvit_l1", 64, {}),
    ("shvit_s1", 64, {}),
    ("hieradet_small", 64, {}),
    ("csatv2", 64, {}),
    ("nextvit_small", 64, {}),
    ("fasternet_t0", 64, {}),
    ("test_vit3", 160, {}),
    ("vit_small_patch16_18x2_224", 64, dict(img_size=64, depth=2)),   # (parallel blocks)
    ("vit_little_patch16_reg4_gap_256", 64, dict(img_size=64, depth=2)),   # (register tokens)
    ("resnetv2_50x1_bit", 64, {}),
    ("ghostnetv3_050", 64, {}),
    ("lambda_resnet26rpt_256", 64, dict(img_size=64)),
]


def timm_deployed(name: str, **kw: Any):
    """A timm model re-parameterized for deployment (``timm.utils.reparameterize_model``: RepVGG's branches fused
    into one convolution)."""
    def make():
        timm = need("timm")
        from timm.utils.model import reparameterize_model
        return reparameterize_model(timm.create_model(name, pretrained=False, **kw).eval())
    return make


def _transformers(*names: str):
    tf = need("transformers")
    missing = [n for n in names if not hasattr(tf, n)]
    if missing:
        raise Missing(f"transformers {tf.__version__} has no {', '.join(missing)}")
    return tf


def mask2former():
    """Mask2Former's model (no loss: its loss needs scipy) on a 4-stage Swin of one block each."""
    tf = _transformers("Mask2FormerConfig", "Mask2FormerModel", "SwinConfig")
    swin = tf.SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=2, image_size=64,
                         out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = tf.Mask2FormerConfig(backbone_config=swin, num_queries=8, feature_size=32, mask_feature_size=32,
                               hidden_dim=32, dim_feedforward=64, decoder_layers=2, encoder_layers=1,
                               num_attention_heads=4, encoder_feedforward_dim=64, num_labels=3)
    return Out(tf.Mask2FormerModel(cfg).eval(), ("pixel_values",),
               ("encoder_last_hidden_state", "pixel_decoder_last_hidden_state",
                "transformer_decoder_last_hidden_state", "masks_queries_logits"))


def vitpose_experts():
    """ViTPose's backbone with two per-dataset experts, picked per image by ``dataset_index`` (an int tensor)."""
    tf = _transformers("VitPoseBackboneConfig", "VitPoseBackbone")
    cfg = tf.VitPoseBackboneConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                   image_size=[64, 48], patch_size=[16, 16], num_experts=2, part_features=8,
                                   out_indices=[2])
    return Out(tf.VitPoseBackbone(cfg).eval(), ("pixel_values", "dataset_index"), ("feature_maps",))


def timm_backbone():
    """transformers' ``TimmBackbone`` (a timm model with ``features_only``) of a ResNet-D."""
    need("timm")
    tf = _transformers("TimmBackboneConfig", "TimmBackbone")
    cfg = tf.TimmBackboneConfig(backbone="resnet18d", out_indices=(1, 2, 4), use_pretrained_backbone=False)
    return Out(tf.TimmBackbone(cfg).eval(), ("pixel_values",), ("feature_maps",))


def _pose_inputs(g, dev, dt):
    return (torch.randn(2, 3, 64, 48, generator=g, device=dev).to(dt),
            torch.randint(0, 2, (2,), generator=g, device=dev))


MODELS75 = [(f"timm_{name}", timm_model(name, **kw), img(1, 3, side, side)) for name, side, kw in TIMM75]
MODELS75 += [
    ("timm_repvgg_a0_deploy", timm_deployed("repvgg_a0"), img(1, 3, 64, 64)),
    ("timm_mobileone_s0_deploy", timm_deployed("mobileone_s0"), img(1, 3, 64, 64)),
    ("timm_fastvit_t8_deploy", timm_deployed("fastvit_t8"), img(1, 3, 64, 64)),
    ("mask2former", mask2former, img(1, 3, 64, 64)),
    ("vitpose_experts", vitpose_experts, _pose_inputs),
    ("hf_timm_backbone", timm_backbone, img(1, 3, 64, 64)),
]
