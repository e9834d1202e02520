"""Round 59's models for ``runtime.aten.sweep``: timm architectures, torchvision variants and torchaudio models the
sweep lacked, each built tiny (random weights, small inputs).

Why: the executor is checked on models nobody hand-picked; torchvision, timm and torchaudio were installed on the
CPU machines for the first time in round 59, and these reach code the sweep's models do not (LeViT's attention
biases, XCiT's cross-covariance attention, NFNet's scaled weight standardisation, RepVGG/MobileOne/FastViT's
re-parameterisable branches, GhostNet's cheap ops, Hiera's unrolled tokens, torchaudio's conformer, Emformer,
WaveRNN, HDemucs' STFT). Each entry is ``(name, make, inputs)``: ``make``
raises ImportError where its package is absent (the sweep reports SKIP-MISSING), ``inputs(generator, device,
dtype)`` gives the positional arguments.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn


def rand(*shape):
    return lambda g, dev, dt: (torch.randn(*shape, generator=g, device=dev).to(dt),)


IMG = rand(1, 3, 64, 64)


def timm(name, **kw):
    """timm's ``name`` (pretrained=False)."""
    return lambda: importlib.import_module("timm").create_model(name, pretrained=False, **kw)


#: (sweep name, timm name, create_model's keyword arguments, inputs): the small variant of each family
TIMM = [
    ("timm_convnextv2_atto", "convnextv2_atto", {}, IMG),
    ("timm_efficientformer_l1", "efficientformer_l1", {}, rand(1, 3, 224, 224)),   # (its attention: 7x7 tokens)
    ("timm_efficientformerv2_s0", "efficientformerv2_s0", {"img_size": 64}, IMG),
    ("timm_mobilevit_xxs", "mobilevit_xxs", {}, IMG),
    ("timm_mobilevitv2_050", "mobilevitv2_050", {}, IMG),
    ("timm_coatnet", "test_coatnet", {}, rand(1, 3, 160, 160)),
    ("timm_coatnext_nano", "coatnext_nano_rw_224", {"img_size": 64}, IMG),
    ("timm_maxvit", "test_maxvit", {}, rand(1, 3, 160, 160)),
    ("timm_maxxvit_rmlp_nano", "maxxvit_rmlp_nano_rw_256", {"img_size": 64}, IMG),
    ("timm_nfnet", "test_nfnet", {}, IMG),
    ("timm_nf_regnet_b0", "nf_regnet_b0", {}, IMG),
    ("timm_regnetx_002", "regnetx_002", {}, IMG),
    ("timm_regnetz_b16", "regnetz_b16", {}, IMG),
    ("timm_repvgg_a0", "repvgg_a0", {}, IMG),
    ("timm_mobileone_s0", "mobileone_s0", {}, IMG),
    ("timm_ghostnet_050", "ghostnet_050", {}, IMG),
    ("timm_ghostnetv2_100", "ghostnetv2_100", {}, IMG),
    ("timm_levit_128s", "levit_128s", {"img_size": 64}, IMG),
    ("timm_levit_conv_128s", "levit_conv_128s", {"img_size": 64}, IMG),
    ("timm_pit_ti", "pit_ti_224", {"img_size": 64}, IMG),
    ("timm_pit_xs_distilled", "pit_xs_distilled_224", {"img_size": 64}, IMG),
    ("timm_cait_xxs24", "cait_xxs24_224", {"img_size": 64, "depth": 2}, IMG),
    ("timm_xcit_nano", "xcit_nano_12_p16_224", {"img_size": 64, "depth": 2}, IMG),
    ("timm_eva02_tiny", "eva02_tiny_patch14_224", {"img_size": 56, "depth": 2}, rand(1, 3, 56, 56)),
    ("timm_beit", "beit_base_patch16_224", {"img_size": 64, "depth": 2, "embed_dim": 64, "num_heads": 4}, IMG),
    ("timm_beitv2", "beitv2_base_patch16_224", {"img_size": 64, "depth": 2, "embed_dim": 64, "num_heads": 4}, IMG),
    ("timm_swinv2_cr_tiny", "swinv2_cr_tiny_ns_224", {"img_size": 64, "window_size": 4}, IMG),
    ("timm_swinv2_tiny_w8", "swinv2_tiny_window8_256", {"img_size": 64, "window_size": 4}, IMG),
    ("timm_davit_tiny", "davit_tiny", {}, IMG),
    ("timm_fastvit_t8", "fastvit_t8", {}, IMG),
    ("timm_hiera_tiny", "hiera_tiny_224", {"img_size": 64}, IMG),
    ("timm_resnet10t", "resnet10t", {}, IMG),
    ("timm_efficientnet_lite0", "efficientnet_lite0", {}, IMG),
    ("timm_mixnet_s", "mixnet_s", {}, IMG),
    ("timm_mobilenetv4_conv_small", "mobilenetv4_conv_small", {}, IMG),
    ("timm_fbnetv3_b", "fbnetv3_b", {}, IMG),
    ("timm_lcnet_050", "lcnet_050", {}, IMG),
    ("timm_rexnet_100", "rexnet_100", {}, IMG),
    ("timm_dla34", "dla34", {}, IMG),
    ("timm_dpn48b", "dpn48b", {}, IMG),
    ("timm_cspresnet50", "cspresnet50", {}, IMG),
    ("timm_ese_vovnet19b_dw", "ese_vovnet19b_dw", {}, IMG),
    ("timm_hrnet_w18_small", "hrnet_w18_small", {}, IMG),
    ("timm_selecsls42b", "selecsls42b", {}, IMG),
    ("timm_skresnet18", "skresnet18", {}, IMG),
    ("timm_resnest14d", "resnest14d", {}, IMG),
    ("timm_res2net50_14w_8s", "res2net50_14w_8s", {}, IMG),
    ("timm_inception_next_atto", "inception_next_atto", {}, IMG),
    ("timm_poolformerv2_s12", "poolformerv2_s12", {}, IMG),
    ("timm_convit_tiny", "convit_tiny", {"img_size": 64, "depth": 4}, IMG),
    ("timm_tnt_s", "tnt_s_patch16_224", {"img_size": 64, "depth": 2}, IMG),
    ("timm_visformer_tiny", "visformer_tiny", {"img_size": 64}, IMG),
    ("timm_mvitv2_tiny", "mvitv2_tiny", {"img_size": 64}, IMG),
    ("timm_gcvit_xxtiny", "gcvit_xxtiny", {}, rand(1, 3, 224, 224)),
    ("timm_sequencer2d_s", "sequencer2d_s", {}, IMG),
    ("timm_mixer_s16", "mixer_s16_224", {"img_size": 64}, IMG),
    ("timm_gmlp_ti16", "gmlp_ti16_224", {"img_size": 64}, IMG),
    ("timm_resmlp_12", "resmlp_12_224", {"img_size": 64}, IMG),
    ("timm_efficientvit_b0", "efficientvit_b0", {}, IMG),
    ("timm_efficientvit_m0", "efficientvit_m0", {"img_size": 64}, IMG),
    ("timm_tiny_vit_5m", "tiny_vit_5m_224", {}, rand(1, 3, 224, 224)),
    ("timm_edgenext_xx_small", "edgenext_xx_small", {}, IMG),
    ("timm_focalnet_tiny_srf", "focalnet_tiny_srf", {}, IMG),
    ("timm_starnet_s050", "starnet_s050", {}, IMG),
    ("timm_mambaout_femto", "mambaout_femto", {}, IMG),
    ("timm_repvit_m0_9", "repvit_m0_9", {}, IMG),
    ("timm_hgnetv2_b0", "hgnetv2_b0", {}, IMG),
    ("timm_pvt_v2_b0", "pvt_v2_b0", {}, IMG),
    ("timm_legacy_seresnet18", "legacy_seresnet18", {}, IMG),
    ("timm_ecaresnet26t", "ecaresnet26t", {}, IMG),
    ("timm_gernet_s", "gernet_s", {}, IMG),
    ("timm_botnet26t", "botnet26t_256", {"img_size": 64}, IMG),
    ("timm_halonet26t", "halonet26t", {}, rand(1, 3, 256, 256)),
    ("timm_lambda_resnet26t", "lambda_resnet26t", {"img_size": 64}, IMG),
    ("timm_coat_lite_tiny", "coat_lite_tiny", {"img_size": 64}, IMG),
    ("timm_twins_svt_small", "twins_svt_small", {"img_size": 64}, IMG),
    ("timm_vit_relpos", "test_vit_relpos", {}, rand(1, 3, 160, 160)),
    ("timm_vit_rope", "vit_small_patch16_rope_224", {"img_size": 64, "depth": 2}, IMG),
    ("timm_crossvit_tiny", "crossvit_tiny_240", {}, rand(1, 3, 240, 240)),
    ("timm_xception41", "xception41", {}, IMG),
]


def tv(fn, where="", **kw):
    """torchvision's ``fn`` (weights=None) from ``torchvision.models`` or its sub-package ``where``."""
    def make():
        mod = importlib.import_module("torchvision.models" + (f".{where}" if where else ""))
        return getattr(mod, fn)(weights=None, **kw)
    return make


TORCHVISION = [
    ("inception_v3_transform", tv("inception_v3", aux_logits=False, init_weights=True, transform_input=True),
     rand(1, 3, 80, 80)),
    ("googlenet_transform", tv("googlenet", aux_logits=False, init_weights=True, transform_input=True), IMG),
    ("resnet50_dilated", tv("resnet50", replace_stride_with_dilation=[False, True, True]), rand(1, 3, 32, 32)),
    ("efficientnet_v2_m", tv("efficientnet_v2_m"), IMG),
    ("convnext_small", tv("convnext_small"), IMG),
    ("regnet_y_1_6gf", tv("regnet_y_1_6gf"), IMG),
    ("vit_l_32", tv("vit_l_32", image_size=64), IMG),
    ("swin_s", tv("swin_s"), IMG),
    ("swin3d_s", tv("swin3d_s", "video"), rand(1, 3, 4, 32, 32)),
    ("q_shufflenet_v2_x1_0", tv("shufflenet_v2_x1_0", "quantization", quantize=False), IMG),
    ("q_resnext101_32x8d", tv("resnext101_32x8d", "quantization", quantize=False), rand(1, 3, 32, 32)),
    ("fcn_resnet101", tv("fcn_resnet101", "segmentation", weights_backbone=None, num_classes=3, aux_loss=True),
     rand(1, 3, 32, 32)),
]


def ta(fn, **kw):
    """torchaudio's ``models.fn(**kw)``."""
    return lambda: getattr(importlib.import_module("torchaudio.models"), fn)(**kw)


class First(nn.Module):
    """A model's first output alone (torchaudio's encoders return (features, lengths), lengths None without them)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, *xs):
        return self.m(*xs)[0]


def first(make):
    return lambda: First(make())


W2V = dict(extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2)], extractor_conv_bias=False, encoder_embed_dim=64,
           encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4,
           encoder_num_layers=2, encoder_num_heads=4, encoder_attention_dropout=0.0, encoder_ff_interm_features=128,
           encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_drop=0.0)


def with_lengths(b, t, d, short=2):
    """(features (b, t, d), lengths (b,): the last row ``short`` frames shorter)."""
    def f(g, dev, dt):
        lengths = torch.full((b,), t, dtype=torch.long, device=dev)
        lengths[-1] = t - short
        return torch.randn(b, t, d, generator=g, device=dev).to(dt), lengths
    return f


def wave_lengths(b, n):
    def f(g, dev, dt):
        return torch.randn(b, n, generator=g, device=dev).to(dt), torch.tensor([n, n - 100][:b], device=dev)
    return f


def wavernn_inputs(g, dev, dt):
    return torch.randn(1, 1, 16, generator=g, device=dev).to(dt), torch.randn(1, 1, 8, 8, generator=g, device=dev).to(dt)


TORCHAUDIO = [
    ("ta_wav2vec2", first(ta("wav2vec2_model", extractor_mode="group_norm", encoder_layer_norm_first=False,
                             aux_num_out=None, **W2V)), rand(2, 800)),
    ("ta_wav2vec2_lengths", first(ta("wav2vec2_model", extractor_mode="layer_norm", encoder_layer_norm_first=True,
                                     aux_num_out=10, **W2V)), wave_lengths(2, 800)),
    ("ta_wavlm", first(ta("wavlm_model", extractor_mode="group_norm", encoder_layer_norm_first=False,
                          encoder_num_buckets=16, encoder_max_distance=32, aux_num_out=None,
                          **W2V)), rand(2, 800)),
    ("ta_conformer", first(ta("Conformer", input_dim=16, num_heads=4, ffn_dim=32, num_layers=2,
                              depthwise_conv_kernel_size=7)), with_lengths(2, 10, 16)),
    ("ta_emformer", first(ta("Emformer", input_dim=16, num_heads=4, ffn_dim=32, num_layers=2, segment_length=4,
                             right_context_length=1)), with_lengths(2, 9, 16, short=1)),
    ("ta_wavernn", ta("WaveRNN", upsample_scales=[2, 2], n_classes=16, hop_length=4, n_res_block=1, n_rnn=16,
                      n_fc=16, kernel_size=5, n_freq=8, n_hidden=8, n_output=8), wavernn_inputs),
    ("ta_conv_tasnet", ta("ConvTasNet", num_sources=2, enc_kernel_size=8, enc_num_feats=16, msk_kernel_size=3,
                          msk_num_feats=8, msk_num_hidden_feats=16, msk_num_layers=2, msk_num_stacks=1),
     rand(1, 1, 400)),
    ("ta_deepspeech", ta("DeepSpeech", n_feature=16, n_hidden=32, n_class=10), rand(1, 1, 12, 16)),
    ("ta_wav2letter", ta("Wav2Letter", num_classes=10, input_type="mfcc", num_features=13), rand(1, 13, 40)),
    ("ta_hdemucs", ta("HDemucs", sources=["a", "b"], audio_channels=1, channels=8, growth=2, nfft=1024, depth=4),
     rand(1, 1, 2048)),
]

#: the entries whose eager reference runs ``nn.MultiheadAttention``'s standard path (``Case.mha_slow_path``)
MHA_SLOW = {"vit_l_32"}

MODELS59 = ([(name, timm(model, **kw), inputs) for name, model, kw, inputs in TIMM]
            + TORCHVISION + TORCHAUDIO)
