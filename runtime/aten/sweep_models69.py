"""Round 69's timm models for ``runtime.aten.sweep`` and ``runtime.aten.sweep_paths``: small models of the timm
families and variants session 59's list (``sweep_models59.TIMM``) lacks (random weights, 64 x 64 images where the
model takes any size, ``depth=2`` for plain ViT stacks).

Why: timm's variants reach ops and module forms the listed ones do not (TF ``SAME`` padding, group-norm
EfficientNets, a ResNet-stem hybrid ViT, SigLIP's attention-pool head, Swin v1's shifted windows at a small window,
MaxViT's relative-position MLP, NesT's block aggregation, VOLO's outlooker (unfold / fold), MobileNetV4's multi-query
attention, TResNet's space-to-depth stem). Each entry is ``(name, make, inputs)``;
``make`` raises the sweep's ``Missing`` where timm is absent.
"""

from __future__ import annotations

from typing import Any

from .sweep_kit import img, timm_model

#: (timm name, image side, create_model keywords)
TIMM69: list[tuple[str, int, dict[str, Any]]] = [
    ("convnext_atto_rms", 64, {}),
    ("efficientnet_b0_gn", 64, {}),
    ("tf_efficientnet_b0", 64, {}),          # (TF "SAME" padding: pads computed from the input size)
    ("efficientnetv2_rw_t", 64, {}),
    ("deit_tiny_distilled_patch16_224", 64, dict(img_size=64)),
    ("vit_tiny_r_s16_p8_224", 64, dict(img_size=64)),   # (ResNet stem + ViT)
    ("vit_base_patch16_siglip_224", 64, dict(img_size=64, depth=2)),   # (attention-pool head)
    ("vit_relpos_small_patch16_224", 64, dict(img_size=64, depth=2)),
    ("swin_tiny_patch4_window7_224", 64, dict(img_size=64, window_size=2)),
    ("maxvit_rmlp_pico_rw_256", 64, dict(img_size=64)),
    ("maxvit_nano_rw_256", 64, dict(img_size=64)),
    ("coatnet_nano_rw_224", 64, dict(img_size=64)),
    ("regnety_002", 64, {}),
    ("eca_nfnet_l0", 64, {}),
    ("fastvit_mci0", 64, {}),
    ("poolformer_s12", 64, {}),
    ("mixer_s32_224", 64, dict(img_size=64)),
    ("mobilenetv4_hybrid_medium", 64, {}),   # (multi-query attention)
    ("tinynet_e", 64, {}),
    ("tresnet_m", 64, {}),                   # (space-to-depth stem, anti-aliased downsampling)
    ("res2net50_26w_4s", 64, {}),
    ("nest_tiny", 64, dict(img_size=64)),
    ("repghostnet_050", 64, {}),
    ("starnet_s1", 64, {}),
    ("resnet18d", 64, {}),
    ("seresnext26d_32x4d", 64, {}),
    ("volo_d1_224", 64, dict(img_size=64)),   # (outlooker attention: unfold / fold)
    ("rdnet_tiny", 64, {}),
    ("flexivit_small", 64, dict(img_size=64, depth=2)),
]

#: timm's feature extractors (``features_only=True``: a list of feature maps), each of its three kinds: the model's
#: ``forward_intermediates`` (the default where the model has it), forward hooks (``feature_cls="hook"``: a
#: ``FeatureHooks`` record the hooks fill and ``forward`` empties, refused before round 69), an FX graph (``"fx"``)
FEATURES69: list[tuple[str, str, int, dict[str, Any]]] = [
    ("timm_resnet18d_features", "resnet18d", 64, dict(features_only=True)),
    ("timm_resnet18d_features_hook", "resnet18d", 64, dict(features_only=True, feature_cls="hook")),
    ("timm_mobilenetv3_small_050_features_hook", "mobilenetv3_small_050", 64,
     dict(features_only=True, feature_cls="hook")),
    ("timm_regnety_002_features_fx", "regnety_002", 64, dict(features_only=True, feature_cls="fx")),
    ("timm_vit_tiny_features", "vit_tiny_patch16_224", 64, dict(features_only=True, img_size=64)),
    ("timm_swin_tiny_features", "swin_tiny_patch4_window7_224", 64,
     dict(features_only=True, img_size=64, window_size=2)),
    ("timm_levit_128s_features", "levit_128s", 64, dict(features_only=True, img_size=64)),
]

MODELS69 = [(f"timm_{name}", timm_model(name, **kw), img(1, 3, side, side)) for name, side, kw in TIMM69]
MODELS69 += [(label, timm_model(name, **kw), img(1, 3, side, side)) for label, name, side, kw in FEATURES69]
