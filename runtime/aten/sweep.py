"""Sweep runtime.aten.compile over real models; compare every output with torch eager on the same device.

    python -m runtime.aten.sweep [--device cuda|cpu] [--only NAME,NAME] [--budget S] [--out F.json] [--list]

Why: the executor's claim is bitwise equality with eager on models nobody hand-picked; the tests hold a
few, this sweep ~795 (torchvision, timm, torchaudio and tiny ``transformers`` architectures, serving steps over KV caches the
caller owns, half-precision variants),
the measure docs/aten.md quotes. Models whose package (torchvision, timm, torchaudio) or config class is missing are
SKIP-MISSING.

Per model: export once (runtime.aten.program.load_program), compile that program in each mode with the arena
NaN-poisoned before every call, and call it twice on fresh random inputs (same shapes) against eager
(torch.no_grad) on the same inputs. Modes on CUDA: s1 (1 stream, no graph), s3+graph (3 streams, one CUDA
graph), auto+graph (streams="auto", one CUDA graph); a graph mode that cannot be captured (an op syncs with
the host) is reported NOCAPTURE and run again without the graph (as "s3" / "auto"). On a CPU: s1 and s3, no
graphs ("auto" is one stream there). One line per (model, mode), the verdict one of
    bitwise | close(maxabs=..) | WRONG(..) | ERROR(Type: ..) | EXPORT(..) | NOCAPTURE(..)
    | SKIP-EAGER(..) | SKIP-MISSING(..) | SKIP-BUILD(..) | SKIP-DEVICE(..)
A CUDA error that breaks the context (device-side assert, illegal address) prints CUDA-FATAL, the models not
run, and exits 3. --list prints the model names; the *_bf16/*_f16 variants run on CUDA only: on a CPU they are
left out of the list, and SKIP-DEVICE when --only names them. --only runs each named model once (in the list's
order): a name given twice is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from dataclasses import replace

try:
    import torch
    from torch import nn
    from torch.utils import _pytree as pytree
except ImportError as _missing:   # (run without the torch extra: one line and exit 2, not a traceback)
    from runtime.tool_args import exit_if_missing

    exit_if_missing("python -m runtime.aten.sweep", _missing, __name__ == "__main__")
    raise

from memplan.argtypes import OneLineParser, print_error
from memplan.argtypes import real as strict_real
from memplan.errors import GraphError
from memplan.files import atomic_write_text
from runtime.aten import compile as aten_compile
from runtime.aten.compile import check_device
from runtime.aten.errors import AtenExecutorError
from runtime.aten.program import load_program
from runtime.aten.sweep_blocks import BLOCKS, BLOCKS40
from runtime.aten.sweep_blocks58 import BLOCKS58
from runtime.aten.sweep_blocks60 import BLOCKS60, BLOCKS60_BF16
from runtime.aten.sweep_blocks61 import BLOCKS61
from runtime.aten.sweep_blocks62 import BLOCKS62
from runtime.aten.sweep_kit import (
    DROP,
    Call,
    Case,
    Missing,
    Out,
    hf,
    hf_model,
    ids,
    ids_mask,
    img,
    missing_as,
    need,
    timm_model,
    tiny,
    tv,
)
from runtime.aten.sweep_models59 import MHA_SLOW, MODELS59
from runtime.aten.sweep_models60 import MODELS60
from runtime.aten.sweep_models61 import MODELS61
from runtime.aten.sweep_models69 import MODELS69
from runtime.aten.sweep_models71 import MODELS71
from runtime.aten.sweep_models75 import MODELS75
from runtime.aten.sweep_models76 import MODELS76
from runtime.bits import same_tensor_bits
from runtime.tool_args import ToolArgError, out_path, results_json

STICKY = ("device-side assert", "illegal memory access", "unspecified launch failure", "misaligned address",
          "illegal instruction")



LM = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
          max_position_embeddings=128, intermediate_size=128)
NOCACHE = {"use_cache": False}
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)  # inside the tiny vocabulary


def causal(cfg_cls, model_cls, attn="sdpa", **kw):
    return hf(cfg_cls, model_cls, attn, fixed=NOCACHE, **{k: v for k, v in {**LM, **kw}.items() if v is not DROP})


def encoder(cfg_cls, model_cls, attn="sdpa", names=("input_ids",), **kw):
    cfg = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=128, intermediate_size=128)
    return hf(cfg_cls, model_cls, attn, names=names, fields=("last_hidden_state",), **{**cfg, **kw})


def vision(cfg_cls, model_cls, attn="sdpa", fields=("last_hidden_state", "pooler_output"), **kw):
    cfg = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32,
               patch_size=8)
    return hf(cfg_cls, model_cls, attn, names=("pixel_values",), fields=fields, **{**cfg, **kw})


def pixels(cfg_cls, model_cls, fields=("last_hidden_state", "pooler_output"), attn="eager", **cfg):
    """A vision model whose config is no ViT's (CNNs, hierarchical transformers): ``cfg`` in full."""
    return hf(cfg_cls, model_cls, attn, names=("pixel_values",), fields=fields, **cfg)


def tvq(fn, **kw):
    """A torchvision quantizable model in float mode (QuantStub/DeQuantStub, FloatFunctional adds)."""
    def make():
        need("torchvision")
        from torchvision.models import quantization
        if not hasattr(quantization, fn):
            raise Missing(f"torchvision.models.quantization has no {fn}")
        return getattr(quantization, fn)(weights=None, quantize=False, **kw)
    return make


class Feats(nn.Module):
    """A backbone that returns a dict of feature maps (an FPN's): its values, in key order."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return tuple(self.m(x).values())


def tv_fpn(backbone, **kw):
    def make():
        need("torchvision")
        from torchvision.models.detection import backbone_utils as bu
        if backbone.startswith("mobilenet"):
            return Feats(bu.mobilenet_backbone(backbone_name=backbone, weights=None, fpn=True, **kw))
        return Feats(bu.resnet_fpn_backbone(backbone_name=backbone, weights=None, **kw))
    return make


class DetHead(nn.Module):
    """A torchvision detection model up to its post-processing: transform (normalise, resize, batch), backbone
    and FPN, head, anchors. Why: the rest (score thresholds, NMS, per-image box lists) has data-dependent sizes
    torch.export refuses, and a plan needs every size; this part is most of the work."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        m = self.m
        images, _ = m.transform(list(x.unbind(0)))
        feats = m.backbone(images.tensors)
        feats = list(feats.values()) if isinstance(feats, dict) else [feats]
        if hasattr(m, "rpn"):  # two-stage: the region proposal network's head
            objectness, deltas = m.rpn.head(feats)
            return (*objectness, *deltas, *m.rpn.anchor_generator(images, feats))
        return (*m.head(feats).values(), *m.anchor_generator(images, feats))


def tv_det(fn, **kw):
    def make():
        need("torchvision")
        from torchvision.models import detection
        if not hasattr(detection, fn):
            raise Missing(f"torchvision.models.detection has no {fn}")
        return DetHead(getattr(detection, fn)(weights=None, weights_backbone=None, num_classes=3, **kw))
    return make


SEQ2SEQ = dict(names=("input_ids", "decoder_input_ids"), fixed=NOCACHE, vocab_size=128)
BART = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=128, decoder_ffn_dim=128)
MOE_Q2 = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=64)
MLA = dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, first_k_dense_replace=1,
           n_shared_experts=1, q_lora_rank=None, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8,
           v_head_dim=16, n_group=1, topk_group=1, num_key_value_heads=4)
AUDIO = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, conv_dim=(16, 16),
             conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
IMG = img(1, 3, 64, 64)
DETR = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=3)
DETR_BACKBONE = {"model_type": "resnet", "embedding_size": 16, "hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 1, 1],
                 "layer_type": "basic", "out_features": ["stage4"]}


def ts_inputs(b, ctx, pred, nfeat):
    """A time-series transformer's (past values, past time features, observed mask, future time features)."""
    def f(g, dev, dt):
        return (torch.randn(b, ctx, generator=g, device=dev).to(dt),
                torch.randn(b, ctx, nfeat, generator=g, device=dev).to(dt),
                torch.ones(b, ctx, device=dev, dtype=dt),
                torch.randn(b, pred, nfeat, generator=g, device=dev).to(dt))
    return f


class RoiOps(nn.Module):
    """torchvision's custom ops (no out= forms: run functionally) on fixed boxes: ``deform_conv2d``,
    ``roi_align``, ``roi_pool``, ``ps_roi_align``, ``box_iou``, ``FrozenBatchNorm2d``, ``SqueezeExcitation``."""

    def __init__(self):
        super().__init__()
        need("torchvision")
        from torchvision import ops
        self.ops = ops
        self.conv = nn.Conv2d(4, 18, 3, padding=1)
        self.dconv = ops.DeformConv2d(4, 8, 3, padding=1)
        self.frozen = ops.FrozenBatchNorm2d(8)
        self.se = ops.SqueezeExcitation(8, 4)

    def forward(self, x, boxes):
        y = self.se(self.frozen(self.dconv(x, self.conv(x))))
        r1 = self.ops.roi_align(y, [boxes], 2, 0.5, 2, aligned=True)
        r2 = self.ops.roi_pool(y, [boxes], 2, 0.5)
        r3 = self.ops.ps_roi_align(y, [boxes], 2, 0.5)
        return r1, r2, r3, self.ops.box_iou(boxes, boxes), self.ops.sigmoid_focal_loss(y, y.sigmoid())


def roi_inputs(g, dev, dt):
    x = torch.randn(1, 4, 16, 16, generator=g, device=dev).to(dt)
    xy = torch.rand(3, 2, generator=g, device=dev) * 16
    wh = torch.rand(3, 2, generator=g, device=dev) * 12 + 2
    return x, torch.cat([xy, xy + wh], 1).to(dt)


TSN = ("past_values", "past_time_features", "past_observed_mask", "future_time_features")
TS = dict(prediction_length=4, context_length=8, lags_sequence=[1, 2], num_time_features=2, d_model=16,
          encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
          encoder_ffn_dim=32, decoder_ffn_dim=32, num_parallel_samples=2)
V = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32,
         patch_size=8)


def ids_mask_dec(b, t, td, vocab=128):
    """(encoder ids, their right-padded mask, decoder ids): under torch.export some encoder-decoders (LongT5,
    Switch) build no mask of their own and fail, so the mask is an input."""
    def f(g, dev, dt):
        x, mask = ids_mask(b, t, vocab)(g, dev, dt)
        return x, mask, torch.randint(0, vocab, (b, td), generator=g, device=dev)
    return f


S2M = dict(names=("input_ids", "attention_mask", "decoder_input_ids"), fixed=NOCACHE, vocab_size=128)
T5S = dict(d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16, decoder_start_token_id=0)
MLA_Q = {**MLA, "q_lora_rank": 16}
MROPE = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}  # (sums to head_dim 16 / 2)  # (DeepSeek-V3.2 and later configs take no q_lora_rank=None)

RTD = dict(names=("pixel_values",), fields=("logits", "pred_boxes"), d_model=32, encoder_hidden_dim=32,
           encoder_in_channels=[32, 48, 64], feat_strides=[8, 16, 32], encoder_layers=1, decoder_layers=2,
           num_queries=10, encoder_ffn_dim=64, decoder_ffn_dim=64, decoder_in_channels=[32, 32, 32],
           num_feature_levels=3, hidden_expansion=0.5, use_pretrained_backbone=False, use_timm_backbone=False,
           backbone=None, backbone_config={"model_type": "rt_detr_resnet", "embedding_size": 16,
                                           "hidden_sizes": [16, 32, 48, 64], "depths": [1, 1, 1, 1],
                                           "layer_type": "basic", "out_features": ["stage2", "stage3", "stage4"]})


def boxes(b, t, side=0, vocab=128):
    """Token ids and their boxes (x0, y0, x1, y1 in 0..1000), and an image of ``side`` pixels where one is read."""
    def f(g, dev, dt):
        x0 = torch.randint(0, 500, (b, t, 2), generator=g, device=dev)
        out = (torch.randint(3, vocab, (b, t), generator=g, device=dev),
               torch.cat([x0, x0 + torch.randint(0, 400, (b, t, 2), generator=g, device=dev)], -1))
        return out + ((torch.randn(b, 3, side, side, generator=g, device=dev).to(dt),) if side else ())
    return f


# ---------------------------------------------------------------- session 40: task heads and composite models

def pad_ids(b, t, vocab=128):
    """Token ids, the first row right-padded with pad id 0 (a sequence classifier pools each row's last non-pad)."""
    def f(g, dev, dt):
        x = torch.randint(3, vocab, (b, t), generator=g, device=dev)
        x[0, t - 2:] = 0
        return (x,)
    return f


def choice_ids(b, k, t, vocab=128):
    """Multiple-choice ids: ``(batch, choices, tokens)``."""
    return lambda g, dev, dt: (torch.randint(0, vocab, (b, k, t), generator=g, device=dev),)


def text_image(b, t, side, vocab=128):
    """(token ids, an image): a dual encoder's (CLIP's, SigLIP's) or an image-conditioned decoder's inputs."""
    return lambda g, dev, dt: (torch.randint(3, vocab, (b, t), generator=g, device=dev),
                               torch.randn(b, 3, side, side, generator=g, device=dev).to(dt))


def audio_mask(b, n):
    """(raw audio, its attention mask, the first row's last 80 samples masked)."""
    def f(g, dev, dt):
        mask = torch.ones(b, n, dtype=torch.long, device=dev)
        mask[0, n - 80:] = 0
        return torch.randn(b, n, generator=g, device=dev).to(dt), mask
    return f


def image_prompt(n_img, n_txt, token, side, lead=2):
    """A vision-language model's (ids with ``n_img`` image tokens ``token`` after ``lead`` text tokens, an image)."""
    def f(g, dev, dt):
        x = torch.randint(3, 90, (1, lead + n_img + n_txt), generator=g, device=dev)
        x[:, lead:lead + n_img] = token
        return x, torch.randn(1, 3, side, side, generator=g, device=dev).to(dt)
    return f


def auto_causal(model_type, **kw):
    """A causal LM of a ``transformers`` model type whose classes the top-level package does not export by name
    (``AutoConfig.for_model``), on ``LM`` and ``TOKENS`` with ``kw`` over them, eager attention, no cache."""
    def make():
        tf = need("transformers")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        if model_type not in CONFIG_MAPPING_NAMES:
            raise Missing(f"transformers {tf.__version__} has no model type {model_type}")
        cfg = tf.AutoConfig.for_model(model_type, **{**LM, **TOKENS, **kw})
        cfg._attn_implementation = "eager"
        return Out(tf.AutoModelForCausalLM.from_config(cfg).eval(), ("input_ids",), ("logits",), **NOCACHE)
    return make


BERT_HEAD = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=128, intermediate_size=128,
                 num_labels=3)
QA = ("start_logits", "end_logits")
V_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32,
               patch_size=8)
TEXT_TOWER = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=128,
                  max_position_embeddings=32, **TOKENS)
VLM_TEXT = {**LM, **TOKENS}
MOE_AUTO = dict(num_experts=4, num_local_experts=4, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                moe_topk=2)
MLA_AUTO = {**MLA, "num_key_value_heads": 4, "q_lora_rank": 16}


# ---------------------------------------------------------------- round 58: model types the list lacked



def tensors(*shapes):
    """Random float inputs of these shapes."""
    return lambda g, dev, dt: tuple(torch.randn(*s, generator=g, device=dev).to(dt) for s in shapes)


def composite(kind, encoder, decoder, names):
    """transformers' ``{kind}EncoderDecoderModel`` of two tiny configs (``(config class, kwargs)`` each; the decoder
    cross-attends): the composites a user builds from two pretrained halves (BERT2BERT, ViT + GPT-2, wav2vec 2 +
    BERT). Random weights, no cache."""
    def make():
        tf = need("transformers")
        enc, dec = (getattr(tf, c)(**kw) for c, kw in (encoder, decoder))
        cfg = getattr(tf, f"{kind}EncoderDecoderConfig").from_encoder_decoder_configs(enc, dec)
        cfg.decoder_start_token_id, cfg.pad_token_id = 1, 0
        cfg._attn_implementation = "eager"
        return Out(getattr(tf, f"{kind}EncoderDecoderModel")(config=cfg).eval(), names, ("logits",), **NOCACHE)
    return make


BERT_DEC = ("BertConfig", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                               vocab_size=128, max_position_embeddings=64, is_decoder=True, add_cross_attention=True))


TXT58 = dict(max_position_embeddings=64)
VIS58 = dict(image_size=32, patch_size=8, names=("pixel_values",))


# ---------------------------------------------------------------- inference-serving programs (session 30)

def cache_keyword(model: nn.Module) -> str:
    """The keyword that hands a cache to ``model``: transformers renamed ``past_key_values`` to ``cache`` (5.2x), and
    its model outputs' ``cache`` field with it (the device image's 5.17 has neither: the DynamicCache steps failed
    there reading ``out.cache``), so the steps ask the model's signature and read the cache object they built."""
    import inspect

    params = inspect.signature(model.forward).parameters
    name = "cache" if "cache" in params else "past_key_values"
    if name not in params:
        raise TypeError(f"{type(model).__name__}.forward takes neither 'cache' nor 'past_key_values'")
    return name


class KVStep(nn.Module):
    """One serving step over a static KV cache the caller owns: ``(ids, pos, k0, v0, k1, v1, ...)`` -> (last
    token's logits, the caches). Each layer's cache is a user input written in place (``index_copy_``; the
    sliding-window layers of a full window ``roll`` + ``index_put_`` + ``copy_``), so the program returns inputs it
    mutates. ``filled``: the tokens a sliding-window layer already holds (a Python int: export specializes it)."""

    def __init__(self, m, cache_len: int, filled: int = 0):
        super().__init__()
        self.m, self.cache_len, self.filled = m, cache_len, filled
        self.cache_kw = cache_keyword(m)

    def forward(self, input_ids, pos, *kv):
        tf = need("transformers")
        cache = tf.StaticCache(max_cache_len=self.cache_len, config=self.m.config.get_text_config())
        for i, layer in enumerate(cache.layers[:len(kv) // 2]):
            layer.keys, layer.values = kv[2 * i], kv[2 * i + 1]
            layer.batch_size, layer.num_heads, _, layer.k_head_dim = kv[2 * i].shape
            layer.v_head_dim, layer.device = kv[2 * i + 1].shape[-1], kv[0].device
            layer.cumulative_length = pos.clone()
            layer.cumulative_length_int = self.filled
            layer.is_initialized = True
        logits = self.m(input_ids=input_ids, use_cache=True, **{self.cache_kw: cache}).logits
        return (logits[:, -1, :], *kv)


class DynStep(nn.Module):
    """One decode step over a ``DynamicCache`` built from past ``(k, v)`` inputs: (greedy token, last logits, every
    layer's grown ``k``, ``v``: ``cat`` results)."""

    def __init__(self, m):
        super().__init__()
        self.m, self.cache_kw = m, cache_keyword(m)

    def forward(self, input_ids, *past):
        tf = need("transformers")
        cache = tf.DynamicCache(config=self.m.config.get_text_config())
        for i in range(len(past) // 2):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.m(input_ids=input_ids, use_cache=True, **{self.cache_kw: cache})
        grown = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        return (out.logits[:, -1:].argmax(-1), out.logits[:, -1], *grown)


class Beam(nn.Module):
    """A beam-search step: the caches reordered by ``beam_idx`` (``index_select``), a ``KVStep``, then the best
    ``beams`` (beam, token) pairs by ``topk`` over every beam's log-probabilities and the ids ``gather``ed."""

    def __init__(self, m, cache_len: int):
        super().__init__()
        self.step = KVStep(m, cache_len)

    def forward(self, input_ids, pos, beam_idx, scores, *kv):
        logits, *kv = self.step(input_ids, pos, *[t.index_select(0, beam_idx) for t in kv])
        top, idx = (torch.log_softmax(logits, -1) + scores[:, None]).view(-1).topk(input_ids.shape[0])
        beam = torch.div(idx, logits.shape[-1], rounding_mode="floor")
        return top, beam, idx % logits.shape[-1], torch.gather(input_ids, 0, beam[:, None]), *kv


class LoRA(nn.Module):
    """A LoRA adapter over a linear layer (peft's ``lora.Linear`` in eval, unmerged): ``base(x) + B(A(x)) * s``."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: int = 8):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.A = nn.Linear(base.in_features, rank, bias=False)
        self.B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.normal_(self.B.weight, std=0.02)

    def forward(self, x):
        return self.base(x) + self.B(self.A(x)) * self.scale


class Masked(nn.Module):
    """Logits of the last token under a caller's 4-D float attention mask (``(B, 1, T, T)``, 0 or -inf)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, mask):
        return self.m(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[:, -1]


def served(wrap, cfg_cls, model_cls, attn="sdpa", lora=False, **kw):
    """A tiny causal LM (``LM`` with ``kw``) wrapped for serving by ``wrap(model)``; ``lora``: adapters on every
    attention's q and v projections."""
    def make():
        m = hf_model(cfg_cls, model_cls, attn, **{**LM, **TOKENS, **kw}).eval()
        if lora:
            for layer in m.model.layers:
                layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
                layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
        return wrap(m)
    return make


def cache_step(b, t, pos, lens=(8, 8), heads=2, head_dim=16, vocab=128, beam=False):
    """(ids (b, t), pos, [beam_idx, scores,] one k and one v per layer of (b, heads, len, head_dim)); no pos where
    ``pos`` is None (a ``DynStep``'s past)."""
    def f(g, dev, dt):
        first = (torch.randint(3, vocab, (b, t), generator=g, device=dev),)
        first += (torch.tensor(pos, device=dev),) if pos is not None else ()
        if beam:
            first += (torch.randint(0, b, (b,), generator=g, device=dev), torch.randn(b, generator=g, device=dev).to(dt))
        return first + tuple(torch.randn(b, heads, n, head_dim, generator=g, device=dev).to(dt) for n in lens
                             for _kv in range(2))
    return f


def mask4d(b, t, vocab=128):
    """Ids and a causal 4-D float mask whose second row also hides its first two (left-padded) positions."""
    def f(g, dev, dt):
        mask = torch.full((b, 1, t, t), float("-inf"), device=dev).triu(1)
        mask[1:, :, 2:, :2] = float("-inf")
        return torch.randint(3, vocab, (b, t), generator=g, device=dev), mask.to(dt)
    return f


#: the building blocks whose eager reference runs without the MHA fast path (``Case.mha_slow_path``)
MHA_FUSED = frozenset({"nn_transformer", "nn_mha_masks", "nn_encoder_decoder_layers"})

SERVED_MOE = dict(num_experts=4, num_experts_per_tok=2)
# (against eager these are close, not bitwise, where transformers takes another attention-mask or GQA path while
# torch.export traces it: ``is_torchdynamo_exporting``; tests/test_aten_round30.py compares them with the exported
# program, bitwise)
SERVING = [
    Case("llama_kv_decode", served(lambda m: KVStep(m, 8), "LlamaConfig", "LlamaForCausalLM"), cache_step(1, 1, 5)),
    Case("qwen2_kv_prefill", served(lambda m: KVStep(m, 8), "Qwen2Config", "Qwen2ForCausalLM"), cache_step(1, 5, 0)),
    Case("mistral_kv_window_full", served(lambda m: KVStep(m, 8, filled=7), "MistralConfig", "MistralForCausalLM",
                                          sliding_window=4), cache_step(1, 1, 7, lens=(4, 4))),
    Case("gemma2_kv_decode", served(lambda m: KVStep(m, 8, filled=7), "Gemma2Config", "Gemma2ForCausalLM", "eager",
                                    head_dim=16, sliding_window=4), cache_step(1, 1, 7, lens=(4, 8))),
    Case("qwen2_moe_kv_decode", served(lambda m: KVStep(m, 8), "Qwen2MoeConfig", "Qwen2MoeForCausalLM", **MOE_Q2),
         cache_step(1, 1, 3)),
    Case("mixtral_kv_prefill", served(lambda m: KVStep(m, 8), "MixtralConfig", "MixtralForCausalLM",
                                      num_local_experts=4, num_experts_per_tok=2, intermediate_size=64),
         cache_step(1, 4, 2)),
    Case("olmoe_kv_decode", served(lambda m: KVStep(m, 8), "OlmoeConfig", "OlmoeForCausalLM", **SERVED_MOE),
         cache_step(1, 1, 6)),
    Case("llama_dyn_decode", served(DynStep, "LlamaConfig", "LlamaForCausalLM"), cache_step(2, 1, None, lens=(3, 3))),
    Case("mistral_dyn_window", served(DynStep, "MistralConfig", "MistralForCausalLM", sliding_window=4),
         cache_step(2, 1, None, lens=(3, 3))),
    Case("llama_lora_kv_decode", served(lambda m: KVStep(m, 8), "LlamaConfig", "LlamaForCausalLM", lora=True),
         cache_step(1, 1, 4)),
    Case("qwen2_beam_step", served(lambda m: Beam(m, 8), "Qwen2Config", "Qwen2ForCausalLM"),
         cache_step(3, 1, 3, beam=True)),
    Case("llama_mask4d", served(Masked, "LlamaConfig", "LlamaForCausalLM"), mask4d(2, 5)),
]


# cheap and important first; the largest graphs (export and planning take longest) last
CASES = [
    Case("resnet18", tv("resnet18"), img(2, 3, 64, 64)),
    Case("llama", causal("LlamaConfig", "LlamaForCausalLM"), ids(2, 8)),
    Case("mobilenet_v3_small", tv("mobilenet_v3_small"), IMG),
    Case("qwen2_moe", causal("Qwen2MoeConfig", "Qwen2MoeForCausalLM", **MOE_Q2), ids(1, 6)),
    Case("mixtral", causal("MixtralConfig", "MixtralForCausalLM", num_local_experts=4, num_experts_per_tok=2,
                           intermediate_size=64), ids(2, 5)),
    Case("qwen2", causal("Qwen2Config", "Qwen2ForCausalLM", "eager"), ids(1, 7)),
    Case("gpt2", hf("GPT2Config", "GPT2LMHeadModel", "sdpa", fixed=NOCACHE, n_embd=64, n_layer=2, n_head=4,
                    n_positions=64, vocab_size=128, bos_token_id=1, eos_token_id=2), ids(2, 7)),
    Case("bert_mask", encoder("BertConfig", "BertModel", "eager", names=("input_ids", "attention_mask")),
         ids_mask(2, 7)),
    Case("efficientnet_b0", tv("efficientnet_b0"), IMG),
    Case("mistral", causal("MistralConfig", "MistralForCausalLM", sliding_window=4), ids(2, 7)),
    Case("gemma", causal("GemmaConfig", "GemmaForCausalLM", head_dim=16), ids(1, 7)),
    Case("gemma2", causal("Gemma2Config", "Gemma2ForCausalLM", "eager", head_dim=16, sliding_window=4), ids(2, 6)),
    Case("gemma3_text", causal("Gemma3TextConfig", "Gemma3ForCausalLM", "eager", head_dim=16, sliding_window=4),
         ids(1, 6)),
    Case("phi3", causal("Phi3Config", "Phi3ForCausalLM", "eager", **TOKENS), ids(2, 3)),
    Case("squeezenet1_1", tv("squeezenet1_1"), img(2, 3, 64, 64)),
    Case("shufflenet_v2_x0_5", tv("shufflenet_v2_x0_5"), IMG),
    Case("regnet_y_400mf", tv("regnet_y_400mf"), IMG),
    Case("gptneox", causal("GPTNeoXConfig", "GPTNeoXForCausalLM", num_key_value_heads=DROP, **TOKENS), ids(1, 6)),
    Case("opt", causal("OPTConfig", "OPTForCausalLM", ffn_dim=128, word_embed_proj_dim=64, num_key_value_heads=DROP,
                       intermediate_size=DROP, **TOKENS), ids(2, 5)),
    Case("falcon", causal("FalconConfig", "FalconForCausalLM", new_decoder_architecture=True, num_kv_heads=2,
                          num_key_value_heads=DROP, intermediate_size=DROP), ids(1, 5)),
    Case("roberta", encoder("RobertaConfig", "RobertaModel", max_position_embeddings=130), ids(1, 5)),
    Case("distilbert", hf("DistilBertConfig", "DistilBertModel", "sdpa", fields=("last_hidden_state",), dim=64,
                          n_layers=2, n_heads=4, hidden_dim=128, vocab_size=128), ids(2, 6)),
    Case("modernbert", encoder("ModernBertConfig", "ModernBertModel", global_attn_every_n_layers=2,
                               local_attention=4, cls_token_id=1, sep_token_id=2, reference_compile=False,
                               **TOKENS), ids(1, 8)),  # (older transformers torch.compile its MLP on CUDA)
    Case("t5", hf("T5Config", "T5ForConditionalGeneration", "eager", d_model=64, d_ff=128, num_layers=2,
                  num_heads=4, d_kv=16, decoder_start_token_id=0, **SEQ2SEQ), ids(2, 6, 3)),
    Case("bart", hf("BartConfig", "BartForConditionalGeneration", "sdpa", max_position_embeddings=64, **BART,
                    **SEQ2SEQ), ids(1, 6, 4)),
    Case("whisper_encoder", hf("WhisperConfig", "WhisperModel", "sdpa", names=("input_features",),
                               fields=("last_hidden_state",), sub="encoder", num_mel_bins=16, max_source_positions=32,
                               vocab_size=128, decoder_start_token_id=1, **BART, **TOKENS), img(1, 16, 64)),
    Case("vit_hf", vision("ViTConfig", "ViTModel"), img(2, 3, 32, 32)),
    Case("clip_vision", vision("CLIPVisionConfig", "CLIPVisionModel"), img(1, 3, 32, 32)),
    Case("siglip_vision", vision("SiglipVisionConfig", "SiglipVisionModel"), img(1, 3, 32, 32)),
    Case("olmoe", causal("OlmoeConfig", "OlmoeForCausalLM", num_experts=4, num_experts_per_tok=2, **TOKENS),
         ids(1, 5)),
    Case("qwen3_moe", causal("Qwen3MoeConfig", "Qwen3MoeForCausalLM", num_experts=5, num_experts_per_tok=2,
                             moe_intermediate_size=16, head_dim=16), ids(1, 4)),
    Case("deepseek_v2", causal("DeepseekV2Config", "DeepseekV2ForCausalLM", "eager", **MLA), ids(1, 4)),
    Case("mamba", hf("MambaConfig", "MambaModel", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                     hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=128, expand=2, conv_kernel=4),
         ids(1, 6)),
    Case("timm_convnext_atto", timm_model("convnext_atto"), IMG),
    Case("timm_vit_tiny", timm_model("vit_tiny_patch16_224", img_size=64), img(2, 3, 64, 64)),
    Case("lraspp_mobilenet_v3", tv("lraspp_mobilenet_v3_large", weights_backbone=None, num_classes=5), IMG),
    Case("deeplabv3_mobilenet_v3", tv("deeplabv3_mobilenet_v3_large", weights_backbone=None, num_classes=5), IMG),
    Case("densenet121", tv("densenet121"), IMG),
    Case("convnext_tiny", tv("convnext_tiny"), IMG),
    Case("swin_t", tv("swin_t"), IMG),
    Case("vit_b_16", tv("vit_b_16", image_size=64), IMG, mha_slow_path=True),   # (nn.MultiheadAttention, self-attention)
    Case("r3d_18", tv("r3d_18"), img(1, 3, 4, 32, 32)),
    # session 20 (CPU: all bitwise on 1 and 3 streams): more decoders, encoder-decoders, encoders, vision and
    # speech towers, torchvision CNNs, optical flow and video
    Case("bloom", hf("BloomConfig", "BloomForCausalLM", "eager", fixed=NOCACHE, hidden_size=64, n_layer=2, n_head=4,
                     vocab_size=128, **TOKENS), ids(2, 6)),
    Case("codegen", hf("CodeGenConfig", "CodeGenForCausalLM", "eager", fixed=NOCACHE, n_embd=64, n_layer=2, n_head=4,
                       rotary_dim=8, n_positions=64, n_ctx=64, vocab_size=128, **TOKENS), ids(1, 6)),
    Case("gptj", hf("GPTJConfig", "GPTJForCausalLM", "eager", fixed=NOCACHE, n_embd=64, n_layer=2, n_head=4,
                    rotary_dim=8, n_positions=64, vocab_size=128, **TOKENS), ids(2, 5)),
    Case("gpt_bigcode", hf("GPTBigCodeConfig", "GPTBigCodeForCausalLM", "sdpa", fixed=NOCACHE, n_embd=64, n_layer=2,
                           n_head=4, n_positions=64, vocab_size=128, multi_query=True, **TOKENS), ids(2, 6)),
    Case("mpt", hf("MptConfig", "MptForCausalLM", "eager", fixed=NOCACHE, d_model=64, n_layers=2, n_heads=4,
                   vocab_size=128, max_seq_len=64, **TOKENS), ids(1, 6)),
    Case("olmo2", causal("Olmo2Config", "Olmo2ForCausalLM", **TOKENS), ids(2, 6)),
    Case("xglm", hf("XGLMConfig", "XGLMForCausalLM", "eager", fixed=NOCACHE, d_model=64, num_layers=2,
                    attention_heads=4, ffn_dim=128, vocab_size=128, max_position_embeddings=64, **TOKENS), ids(2, 6)),
    Case("stablelm", causal("StableLmConfig", "StableLmForCausalLM", **TOKENS), ids(1, 6)),
    Case("persimmon", causal("PersimmonConfig", "PersimmonForCausalLM", num_key_value_heads=DROP, **TOKENS),
         ids(1, 6)),
    Case("cohere", causal("CohereConfig", "CohereForCausalLM", **TOKENS), ids(1, 6)),
    Case("pegasus", hf("PegasusConfig", "PegasusForConditionalGeneration", "sdpa", max_position_embeddings=64,
                       decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS), ids(2, 6, 3)),
    Case("marian", hf("MarianConfig", "MarianMTModel", "sdpa", max_position_embeddings=64, decoder_start_token_id=1,
                      **BART, **SEQ2SEQ, **TOKENS), ids(1, 5, 4)),
    Case("mbart", hf("MBartConfig", "MBartForConditionalGeneration", "sdpa", max_position_embeddings=64,
                     decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("albert", encoder("AlbertConfig", "AlbertModel", embedding_size=32), ids(2, 6)),
    Case("deberta_v2", encoder("DebertaV2Config", "DebertaV2Model", "eager"), ids(2, 6)),
    Case("xlm_roberta_mask", encoder("XLMRobertaConfig", "XLMRobertaModel", names=("input_ids", "attention_mask"),
                                     max_position_embeddings=130), ids_mask(2, 6)),
    Case("deit", vision("DeiTConfig", "DeiTModel"), img(2, 3, 32, 32)),
    Case("yolos", hf("YolosConfig", "YolosForObjectDetection", "sdpa", names=("pixel_values",),
                     fields=("logits", "pred_boxes"), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, image_size=[32, 32], patch_size=8, num_detection_tokens=5),
         img(1, 3, 32, 32)),
    Case("swin_hf", hf("SwinConfig", "SwinModel", "eager", names=("pixel_values",),
                       fields=("last_hidden_state", "pooler_output"), image_size=32, patch_size=2, embed_dim=16,
                       depths=[1, 1], num_heads=[2, 2], window_size=4), img(1, 3, 32, 32)),
    Case("mobilevit", hf("MobileViTConfig", "MobileViTModel", "eager", names=("pixel_values",),
                         fields=("last_hidden_state", "pooler_output"), image_size=64, hidden_sizes=[16, 24, 32],
                         neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64]), IMG),
    Case("wav2vec2", hf("Wav2Vec2Config", "Wav2Vec2Model", "eager", names=("input_values",),
                        fields=("last_hidden_state",), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
                        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4), img(1, 400)),
    Case("googlenet", tv("googlenet", aux_logits=False, init_weights=True), IMG),
    Case("inception_v3", tv("inception_v3", aux_logits=False, init_weights=True), img(1, 3, 80, 80)),
    Case("mnasnet0_5", tv("mnasnet0_5"), IMG),
    Case("alexnet", tv("alexnet"), IMG),
    Case("vgg11", tv("vgg11"), img(1, 3, 32, 32)),
    Case("resnext50", tv("resnext50_32x4d"), img(1, 3, 32, 32)),
    Case("mobilenet_v2", tv("mobilenet_v2"), IMG),
    Case("fcn_resnet50", tv("fcn_resnet50", weights_backbone=None, num_classes=3, aux_loss=True), img(1, 3, 32, 32)),
    Case("raft_small", lambda: Call(tv("raft_small")(), num_flow_updates=2),
         lambda g, dev, dt: tuple(torch.randn(1, 3, 128, 128, generator=g, device=dev).to(dt) for _ in range(2))),
    Case("swin_v2_t", tv("swin_v2_t"), IMG),
    Case("swin3d_t", tv("swin3d_t"), img(1, 3, 4, 32, 32)),
    Case("mc3_18", tv("mc3_18"), img(1, 3, 4, 32, 32)),
    # session 21 (CPU: all bitwise on 1 and 3 streams but BEiT, whose exported program differs from eager): more
    # vision, speech, encoder, encoder-decoder, decoder, state-space and torchvision families (docs/aten.md)
    Case("segformer", pixels("SegformerConfig", "SegformerForSemanticSegmentation", ("logits",),
                             num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32],
                             patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                             decoder_hidden_size=32, num_labels=3), IMG),
    Case("dinov2", vision("Dinov2Config", "Dinov2Model"), img(1, 3, 32, 32)),
    Case("beit", vision("BeitConfig", "BeitModel", use_relative_position_bias=True, use_mean_pooling=True),
         img(1, 3, 32, 32)),
    Case("data2vec_vision", vision("Data2VecVisionConfig", "Data2VecVisionModel", use_relative_position_bias=True,
                                   use_mean_pooling=True), img(1, 3, 32, 32)),
    Case("levit", pixels("LevitConfig", "LevitModel", image_size=64, hidden_sizes=[32, 48, 64],
                         num_attention_heads=[2, 3, 4], depths=[1, 1, 1], key_dim=[8, 8, 8],
                         down_ops=[["Subsample", 8, 4, 4, 2, 2], ["Subsample", 8, 6, 4, 2, 2]]), img(2, 3, 64, 64)),
    Case("poolformer", pixels("PoolFormerConfig", "PoolFormerModel", ("last_hidden_state",), depths=[1, 1, 1, 1],
                              hidden_sizes=[8, 16, 24, 32]), IMG),
    Case("convnextv2", pixels("ConvNextV2Config", "ConvNextV2Model", hidden_sizes=[8, 16, 24, 32],
                              depths=[1, 1, 1, 1]), IMG),
    Case("efficientnet_hf", pixels("EfficientNetConfig", "EfficientNetModel", image_size=64, width_coefficient=0.25,
                                   depth_coefficient=0.3, hidden_dim=320), IMG),
    Case("regnet_hf", pixels("RegNetConfig", "RegNetModel", embedding_size=16, hidden_sizes=[16, 32, 48, 64],
                             depths=[1, 1, 1, 1], groups_width=8, layer_type="y"), IMG),
    Case("resnet_hf", pixels("ResNetConfig", "ResNetModel", embedding_size=16, hidden_sizes=[16, 32, 48, 64],
                             depths=[1, 1, 1, 1], layer_type="bottleneck", downsample_in_bottleneck=True), IMG),
    Case("bit", pixels("BitConfig", "BitModel", embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                       num_groups=4, global_padding="SAME", embedding_dynamic_padding=True), IMG),
    Case("focalnet", pixels("FocalNetConfig", "FocalNetModel", image_size=32, embed_dim=16, depths=[1, 1],
                            hidden_sizes=[16, 32], focal_levels=[2, 2], focal_windows=[3, 3], use_layerscale=True,
                            use_post_layernorm_in_modulation=True, normalize_modulator=True), img(1, 3, 32, 32)),
    Case("glpn", pixels("GLPNConfig", "GLPNForDepthEstimation", ("predicted_depth",), depths=[1, 1, 1, 1],
                        hidden_sizes=[8, 16, 24, 32], num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=16),
         IMG),
    Case("dpt", hf("DPTConfig", "DPTForDepthEstimation", "eager", names=("pixel_values",),
                   fields=("predicted_depth",), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=128, image_size=32, patch_size=8, backbone_out_indices=[0, 1],
                   neck_hidden_sizes=[16, 32], reassemble_factors=[2, 1], fusion_hidden_size=16,
                   head_in_index=-1), img(1, 3, 32, 32)),
    Case("mobilenet_v2_hf", pixels("MobileNetV2Config", "MobileNetV2Model", image_size=64, depth_multiplier=0.35),
         IMG),
    Case("mobilenet_v1_hf", pixels("MobileNetV1Config", "MobileNetV1Model", image_size=64, depth_multiplier=0.25),
         IMG),
    Case("electra", encoder("ElectraConfig", "ElectraModel", embedding_size=32), ids(2, 6)),
    Case("mpnet", encoder("MPNetConfig", "MPNetModel", "eager"), ids(2, 6)),
    Case("funnel", hf("FunnelConfig", "FunnelModel", "eager", fields=("last_hidden_state",), block_sizes=[1, 1],
                      num_decoder_layers=1, d_model=64, n_head=4, d_head=16, d_inner=128, vocab_size=128),
         ids(2, 8)),
    Case("fnet", encoder("FNetConfig", "FNetModel", "eager", num_attention_heads=DROP), ids(1, 8)),
    Case("squeezebert", encoder("SqueezeBertConfig", "SqueezeBertModel", "eager", embedding_size=64), ids(2, 6)),
    Case("layoutlm", encoder("LayoutLMConfig", "LayoutLMModel", "eager"), ids(1, 6)),
    Case("data2vec_text", encoder("Data2VecTextConfig", "Data2VecTextModel", max_position_embeddings=130),
         ids(1, 6)),
    Case("canine", encoder("CanineConfig", "CanineModel", "eager", vocab_size=DROP, num_hash_buckets=64,
                           local_transformer_stride=4, max_position_embeddings=64, downsampling_rate=2),
         ids(1, 8)),
    Case("big_bird", encoder("BigBirdConfig", "BigBirdModel", "eager", attention_type="original_full",
                             max_position_embeddings=64), ids(2, 6)),
    Case("t5_encoder", hf("T5Config", "T5EncoderModel", "eager", fields=("last_hidden_state",), d_model=64, d_ff=128,
                          num_layers=2, num_heads=4, d_kv=16, vocab_size=128, feed_forward_proj="gated-gelu"),
         ids(2, 6)),
    Case("m2m_100", hf("M2M100Config", "M2M100ForConditionalGeneration", "sdpa", max_position_embeddings=64,
                       decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("blenderbot", hf("BlenderbotConfig", "BlenderbotForConditionalGeneration", "sdpa",
                          max_position_embeddings=64, decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS),
         ids(1, 6, 4)),
    Case("prophetnet", hf("ProphetNetConfig", "ProphetNetForConditionalGeneration", "eager", hidden_size=64,
                          encoder_ffn_dim=128, decoder_ffn_dim=128, num_encoder_layers=2, num_decoder_layers=2,
                          num_encoder_attention_heads=4, num_decoder_attention_heads=4, max_position_embeddings=64,
                          relative_max_distance=16, **SEQ2SEQ), ids(1, 6, 4)),
    Case("speech_to_text_encoder", hf("Speech2TextConfig", "Speech2TextModel", "eager", names=("input_features",),
                                      fields=("last_hidden_state",), sub="encoder", input_feat_per_channel=16,
                                      conv_channels=32, max_source_positions=64, vocab_size=128, **BART, **TOKENS),
         img(1, 40, 16)),
    Case("hubert", hf("HubertConfig", "HubertModel", "eager", names=("input_values",), fields=("last_hidden_state",),
                      **AUDIO), img(1, 400)),
    Case("wavlm", hf("WavLMConfig", "WavLMModel", "eager", names=("input_values",), fields=("last_hidden_state",),
                     num_buckets=32, max_bucket_distance=64, **AUDIO), img(1, 400)),
    Case("data2vec_audio", hf("Data2VecAudioConfig", "Data2VecAudioModel", "eager", names=("input_values",),
                              fields=("last_hidden_state",), conv_pos_kernel_size=5, num_conv_pos_embeddings=2,
                              **{k: v for k, v in AUDIO.items() if k != "num_conv_pos_embeddings"}),
         img(1, 400)),
    Case("sew", hf("SEWConfig", "SEWModel", "eager", names=("input_values",), fields=("last_hidden_state",),
                   squeeze_factor=2, **AUDIO), img(1, 400)),
    Case("unispeech", hf("UniSpeechConfig", "UniSpeechModel", "eager", names=("input_values",),
                         fields=("last_hidden_state",), **AUDIO), img(1, 400)),
    Case("granite", causal("GraniteConfig", "GraniteForCausalLM", embedding_multiplier=2.0, residual_multiplier=0.5,
                           attention_multiplier=0.2, logits_scaling=4.0, **TOKENS), ids(1, 6)),
    Case("granitemoe", causal("GraniteMoeConfig", "GraniteMoeForCausalLM", num_local_experts=4,
                              num_experts_per_tok=2, **TOKENS), ids(1, 5)),
    Case("phimoe", causal("PhimoeConfig", "PhimoeForCausalLM", num_local_experts=4, num_experts_per_tok=2, **TOKENS),
         ids(1, 5)),
    Case("starcoder2", causal("Starcoder2Config", "Starcoder2ForCausalLM", sliding_window=4, **TOKENS), ids(1, 6)),
    Case("nemotron", causal("NemotronConfig", "NemotronForCausalLM", **TOKENS), ids(1, 6)),
    Case("helium", causal("HeliumConfig", "HeliumForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("glm", causal("GlmConfig", "GlmForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("exaone4", causal("Exaone4Config", "Exaone4ForCausalLM", sliding_window=4, sliding_window_pattern=2,
                           **TOKENS), ids(1, 6)),
    Case("smollm3", causal("SmolLM3Config", "SmolLM3ForCausalLM", **TOKENS), ids(1, 6)),
    Case("llama3_rope", causal("LlamaConfig", "LlamaForCausalLM", rope_parameters={
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 32}), ids(1, 6)),
    Case("qwen2_yarn", causal("Qwen2Config", "Qwen2ForCausalLM", rope_parameters={
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32}),
         ids(1, 6)),
    Case("qwen2_vl_text", hf("Qwen2VLTextConfig", "Qwen2VLTextModel", "sdpa", fields=("last_hidden_state",),
                             fixed=NOCACHE, **{**LM, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                                      "mrope_section": [2, 3, 3]}}), ids(1, 6)),
    Case("jamba", causal("JambaConfig", "JambaForCausalLM", "eager", num_experts=2, expert_layer_period=2,
                         expert_layer_offset=1, attn_layer_period=2, attn_layer_offset=1, use_mamba_kernels=False,
                         mamba_d_state=8, mamba_dt_rank=8, **TOKENS), ids(1, 6)),
    Case("falcon_mamba", hf("FalconMambaConfig", "FalconMambaModel", "eager", fields=("last_hidden_state",),
                            fixed=NOCACHE, hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=128,
                            expand=2, conv_kernel=4, use_mambapy=False), ids(1, 6)),
    Case("rwkv", hf("RwkvConfig", "RwkvModel", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                    hidden_size=64, num_hidden_layers=2, attention_hidden_size=64, intermediate_size=128,
                    vocab_size=128, context_length=32), ids(1, 6)),
    Case("recurrent_gemma", hf("RecurrentGemmaConfig", "RecurrentGemmaForCausalLM", "eager", fixed=NOCACHE,
                               hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                               num_key_value_heads=2, head_dim=16, lru_width=64, attention_window_size=8,
                               vocab_size=128, **TOKENS), ids(1, 6)),
    Case("qwen3", causal("Qwen3Config", "Qwen3ForCausalLM", head_dim=16, **TOKENS), ids(2, 5)),
    Case("ernie4_5", causal("Ernie4_5Config", "Ernie4_5ForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("llama4_text", causal("Llama4TextConfig", "Llama4ForCausalLM", "eager", head_dim=16,
                               intermediate_size_mlp=128, num_local_experts=4, num_experts_per_tok=1,
                               moe_layers=[1], no_rope_layers=[1, 0], attention_chunk_size=4, **TOKENS),
         ids(1, 6)),
    Case("mamba2", hf("Mamba2Config", "Mamba2Model", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                      num_heads=8, head_dim=16, hidden_size=64, state_size=16, num_hidden_layers=2, vocab_size=128,
                      n_groups=2, chunk_size=4), ids(1, 6)),
    Case("bamba", causal("BambaConfig", "BambaForCausalLM", "eager", attn_layer_indices=[1], mamba_n_heads=8,
                         mamba_d_head=16, mamba_d_state=16, mamba_chunk_size=4, **TOKENS), ids(1, 6)),
    Case("zamba", causal("ZambaConfig", "ZambaForCausalLM", "eager", attention_hidden_size=128,
                         attention_head_dim=32, num_hidden_layers=5, attn_layer_period=2, attn_layer_offset=0,
                         use_mamba_kernels=False, mamba_dt_rank=8, mamba_d_state=8, **TOKENS), ids(1, 6)),
    Case("sew_d", hf("SEWDConfig", "SEWDModel", "eager", names=("input_values",), fields=("last_hidden_state",),
                     squeeze_factor=2, max_position_embeddings=64, position_buckets=16, **AUDIO), img(1, 400)),
    Case("moonshine_encoder", hf("MoonshineConfig", "MoonshineModel", "eager", names=("input_values",),
                                 fields=("last_hidden_state",), sub="encoder", hidden_size=64, intermediate_size=128,
                                 encoder_num_hidden_layers=2, decoder_num_hidden_layers=2,
                                 encoder_num_attention_heads=4, decoder_num_attention_heads=4,
                                 encoder_num_key_value_heads=4, decoder_num_key_value_heads=4, vocab_size=128),
         img(1, 1600)),
    Case("detr", hf("DetrConfig", "DetrForObjectDetection", "eager", names=("pixel_values",),
                    fields=("logits", "pred_boxes"), use_timm_backbone=False, backbone_config=DETR_BACKBONE,
                    use_pretrained_backbone=False, backbone=None, num_queries=5, **DETR), IMG),
    Case("conditional_detr", hf("ConditionalDetrConfig", "ConditionalDetrForObjectDetection", "eager",
                                names=("pixel_values",), fields=("logits", "pred_boxes"), use_timm_backbone=False,
                                backbone_config=DETR_BACKBONE, use_pretrained_backbone=False, backbone=None,
                                num_queries=5, **DETR), IMG),
    Case("efficientnet_v2_s", tv("efficientnet_v2_s"), IMG),
    Case("maxvit_t", tv("maxvit_t"), img(1, 3, 224, 224)),  # (its 7x7 windows: 224 or a multiple of 32*7)
    Case("regnet_x_400mf", tv("regnet_x_400mf"), IMG),
    Case("wide_resnet50_2", tv("wide_resnet50_2"), img(1, 3, 32, 32)),
    Case("shufflenet_v2_x1_0", tv("shufflenet_v2_x1_0"), IMG),
    Case("mobilenet_v3_large", tv("mobilenet_v3_large"), IMG),
    Case("s3d", tv("s3d"), img(1, 3, 16, 224, 224)),  # (its last pool is 2x7x7)
    Case("r2plus1d_18", tv("r2plus1d_18"), img(1, 3, 4, 32, 32)),
    Case("q_resnet18", tvq("resnet18"), IMG),
    Case("q_mobilenet_v3_large", tvq("mobilenet_v3_large"), IMG),
    Case("q_inception_v3", tvq("inception_v3", aux_logits=False, init_weights=True), img(1, 3, 80, 80)),
    Case("q_shufflenet_v2", tvq("shufflenet_v2_x0_5"), IMG),
    Case("fpn_mobilenet_v3", tv_fpn("mobilenet_v3_large", trainable_layers=0), IMG),
    Case("fpn_resnet18", tv_fpn("resnet18", trainable_layers=0), IMG),
    Case("mvit_v2_s", tv("mvit_v2_s"), img(1, 3, 16, 224, 224)),
    # session 22 (CPU: all bitwise on 1 and 3 streams but Qwen3-Next, whose exported program differs from eager):
    # newer decoders and hybrids, encoders, encoder-decoders, vision and vision-language towers, detection and
    # segmentation heads, speech and codec encoders, time-series models, torchvision CNNs, RAFT-large, MViT-v1,
    # quantizable models in float mode, torchvision's custom ops (docs/aten.md)
    Case("cohere2", causal("Cohere2Config", "Cohere2ForCausalLM", sliding_window=4, **TOKENS), ids(1, 6)),
    Case("deepseek_v3", causal("DeepseekV3Config", "DeepseekV3ForCausalLM", "eager", **MLA), ids(1, 4)),
    Case("gpt_neo", hf("GPTNeoConfig", "GPTNeoForCausalLM", "eager", fixed=NOCACHE, hidden_size=64, num_layers=2,
                       num_heads=4, attention_types=[[["global", "local"], 1]], window_size=4, vocab_size=128,
                       max_position_embeddings=64, **TOKENS), ids(1, 6)),
    Case("gpt_oss", causal("GptOssConfig", "GptOssForCausalLM", "eager", num_local_experts=4, num_experts_per_tok=2,
                           head_dim=16, sliding_window=4, **TOKENS), ids(1, 6)),
    Case("olmo3", causal("Olmo3Config", "Olmo3ForCausalLM", sliding_window=4, **TOKENS), ids(1, 6)),
    Case("lfm2", causal("Lfm2Config", "Lfm2ForCausalLM", "eager", layer_types=["conv", "full_attention"],
                        **TOKENS), ids(1, 6)),
    Case("falcon_h1", causal("FalconH1Config", "FalconH1ForCausalLM", "eager", mamba_d_ssm=64, mamba_n_heads=4,
                             mamba_d_head=16, mamba_d_state=8, mamba_chunk_size=4, head_dim=16, **TOKENS), ids(1, 6)),
    Case("zamba2", causal("Zamba2Config", "Zamba2ForCausalLM", "eager", num_hidden_layers=4, mamba_d_state=8,
                          mamba_headdim=16, n_mamba_heads=8, chunk_size=4, hybrid_layer_ids=[1, 3],
                          layers_block_type=["mamba", "hybrid", "mamba", "hybrid"],
                          use_mem_eff_path=False, **TOKENS), ids(1, 6)),
    Case("granitemoehybrid", causal("GraniteMoeHybridConfig", "GraniteMoeHybridForCausalLM", "eager",
                                    layer_types=["mamba", "attention"], num_local_experts=4, num_experts_per_tok=2,
                                    mamba_n_heads=8, mamba_d_head=16, mamba_d_state=8, mamba_chunk_size=4,
                                    **TOKENS), ids(1, 6)),
    Case("nemotron_h", causal("NemotronHConfig", "NemotronHForCausalLM", "eager", num_hidden_layers=3,
                              hybrid_override_pattern="M*-", mamba_num_heads=8, mamba_head_dim=16, ssm_state_size=8,
                              chunk_size=4, n_groups=2, head_dim=16, **TOKENS), ids(1, 6)),
    Case("qwen3_next", causal("Qwen3NextConfig", "Qwen3NextForCausalLM", "eager", head_dim=16, num_experts=4,
                              num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32,
                              linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=16,
                              linear_value_head_dim=16, layer_types=["linear_attention", "full_attention"],
                              **TOKENS), ids(1, 6)),
    Case("minimax", causal("MiniMaxConfig", "MiniMaxForCausalLM", "eager", num_local_experts=4, num_experts_per_tok=2,
                           head_dim=16, layer_types=["linear_attention", "full_attention"], block_size=4, **TOKENS),
         ids(1, 6)),
    Case("dots1", causal("Dots1Config", "Dots1ForCausalLM", n_routed_experts=4, num_experts_per_tok=2,
                         moe_intermediate_size=16, first_k_dense_replace=1, n_shared_experts=1, n_group=1,
                         topk_group=1, head_dim=16, **TOKENS), ids(1, 6)),
    Case("glm4", causal("Glm4Config", "Glm4ForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("glm4_moe", causal("Glm4MoeConfig", "Glm4MoeForCausalLM", n_routed_experts=4, num_experts_per_tok=2,
                            moe_intermediate_size=16, first_k_dense_replace=1, n_shared_experts=1, n_group=1,
                            topk_group=1, head_dim=16, **TOKENS), ids(1, 6)),
    Case("hunyuan_dense", causal("HunYuanDenseV1Config", "HunYuanDenseV1ForCausalLM", head_dim=16, **TOKENS),
         ids(1, 6)),
    Case("hunyuan_moe", causal("HunYuanMoEV1Config", "HunYuanMoEV1ForCausalLM", head_dim=16, num_experts=4,
                               moe_topk=2, **TOKENS), ids(1, 6)),
    Case("arcee", causal("ArceeConfig", "ArceeForCausalLM", **TOKENS), ids(1, 6)),
    Case("diffllama", causal("DiffLlamaConfig", "DiffLlamaForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("doge", causal("DogeConfig", "DogeForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("ministral", causal("MinistralConfig", "MinistralForCausalLM", sliding_window=4, head_dim=16, **TOKENS),
         ids(1, 6)),
    Case("seed_oss", causal("SeedOssConfig", "SeedOssForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("vaultgemma", causal("VaultGemmaConfig", "VaultGemmaForCausalLM", "eager", head_dim=16, sliding_window=4,
                              **TOKENS), ids(1, 6)),
    Case("bitnet", causal("BitNetConfig", "BitNetForCausalLM", **TOKENS), ids(1, 6)),
    Case("apertus", causal("ApertusConfig", "ApertusForCausalLM", **TOKENS), ids(1, 6)),
    Case("openai_gpt", hf("OpenAIGPTConfig", "OpenAIGPTLMHeadModel", "eager", n_embd=64, n_layer=2, n_head=4,
                          n_positions=64, vocab_size=128), ids(1, 6)),
    Case("ctrl", hf("CTRLConfig", "CTRLLMHeadModel", "eager", fixed=NOCACHE, n_embd=64, n_layer=2, n_head=4, dff=128,
                    n_positions=64, vocab_size=128), ids(1, 6)),
    Case("xlnet", hf("XLNetConfig", "XLNetLMHeadModel", "eager", fixed=NOCACHE, d_model=64, n_layer=2, n_head=4,
                     d_inner=128, vocab_size=128, **TOKENS), ids(1, 6)),
    Case("biogpt", causal("BioGptConfig", "BioGptForCausalLM", num_key_value_heads=DROP, **TOKENS), ids(1, 6)),
    Case("olmo", causal("OlmoConfig", "OlmoForCausalLM", **TOKENS), ids(1, 6)),
    Case("phi", causal("PhiConfig", "PhiForCausalLM", **TOKENS), ids(1, 6)),
    Case("minicpm3", causal("MiniCPM3Config", "MiniCPM3ForCausalLM", "eager", q_lora_rank=16, kv_lora_rank=16,
                            qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16, num_key_value_heads=4,
                            **TOKENS), ids(1, 6)),
    Case("ernie4_5_moe", causal("Ernie4_5_MoeConfig", "Ernie4_5_MoeForCausalLM", head_dim=16, moe_num_experts=4,
                                moe_k=2, moe_intermediate_size=32, moe_layer_start_index=1, **TOKENS), ids(1, 6)),
    Case("cohere2_moe", causal("Cohere2MoeConfig", "Cohere2MoeForCausalLM", sliding_window=4, num_experts=4,
                               num_experts_per_tok=2, **TOKENS), ids(1, 6)),
    Case("flex_olmo", causal("FlexOlmoConfig", "FlexOlmoForCausalLM", num_experts=4, num_experts_per_tok=2,
                             **TOKENS), ids(1, 6)),
    Case("lfm2_moe", causal("Lfm2MoeConfig", "Lfm2MoeForCausalLM", "eager", layer_types=["conv", "full_attention"],
                            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, num_dense_layers=1,
                            **TOKENS), ids(1, 6)),
    Case("modernbert_decoder", causal("ModernBertDecoderConfig", "ModernBertDecoderForCausalLM", "eager",
                                      num_key_value_heads=DROP, local_attention=4, global_attn_every_n_layers=2,
                                      **TOKENS), ids(1, 6)),
    Case("kimi_linear", causal("KimiLinearConfig", "KimiLinearForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("xlstm", hf("xLSTMConfig", "xLSTMModel", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                     hidden_size=64, num_hidden_layers=2, num_heads=4, vocab_size=128, mode="inference",
                     chunk_size=4), ids(1, 8)),
    Case("afmoe", causal("AfmoeConfig", "AfmoeForCausalLM", "eager", num_experts=4, num_experts_per_tok=2,
                         head_dim=16, **TOKENS), ids(1, 6)),
    Case("imagegpt", hf("ImageGPTConfig", "ImageGPTModel", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                        n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=129), ids(1, 8)),
    Case("decision_transformer", hf("DecisionTransformerConfig", "DecisionTransformerModel", "eager",
                                    names=("states", "actions", "returns_to_go", "timesteps"),
                                    fields=("state_preds", "action_preds"), state_dim=5, act_dim=3, hidden_size=64,
                                    n_layer=2, n_head=4, max_ep_len=32),
         lambda g, dev, dt: (torch.randn(1, 4, 5, generator=g, device=dev).to(dt),
                             torch.randn(1, 4, 3, generator=g, device=dev).to(dt),
                             torch.randn(1, 4, 1, generator=g, device=dev).to(dt),
                             torch.randint(0, 32, (1, 4), generator=g, device=dev))),
    Case("musicgen_decoder", hf("MusicgenDecoderConfig", "MusicgenForCausalLM", "eager", fixed=NOCACHE,
                                hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
                                vocab_size=64, num_codebooks=2, max_position_embeddings=64, **TOKENS),
         lambda g, dev, dt: (torch.randint(0, 64, (2, 6), generator=g, device=dev),)),
    Case("convbert", encoder("ConvBertConfig", "ConvBertModel", "eager", embedding_size=64, head_ratio=2,
                             conv_kernel_size=3), ids(2, 6)),
    Case("deberta", encoder("DebertaConfig", "DebertaModel", "eager", relative_attention=True,
                            pos_att_type=["c2p", "p2c"], max_relative_positions=16), ids(2, 6)),
    Case("rembert", encoder("RemBertConfig", "RemBertModel", "eager", input_embedding_size=32,
                            output_embedding_size=32), ids(1, 6)),
    Case("roformer", encoder("RoFormerConfig", "RoFormerModel", "eager", embedding_size=64), ids(2, 6)),
    Case("mobilebert", encoder("MobileBertConfig", "MobileBertModel", "eager", embedding_size=32,
                               intra_bottleneck_size=32, num_feedforward_networks=2, true_hidden_size=32), ids(1, 6)),
    Case("yoso", encoder("YosoConfig", "YosoModel", "eager", use_expectation=True, max_position_embeddings=64),
         ids(1, 8)),
    Case("mra", encoder("MraConfig", "MraModel", "eager", max_position_embeddings=64), ids(1, 8)),
    Case("esm", encoder("EsmConfig", "EsmModel", "eager", position_embedding_type="rotary", pad_token_id=1,
                        mask_token_id=3), ids(1, 6)),
    Case("megatron_bert", encoder("MegatronBertConfig", "MegatronBertModel", "eager"), ids(1, 6)),
    Case("ibert", encoder("IBertConfig", "IBertModel", "eager", quant_mode=False), ids(1, 6)),
    Case("nomic_bert", encoder("NomicBertConfig", "NomicBertModel", "eager"), ids(1, 6)),
    Case("eurobert", encoder("EuroBertConfig", "EuroBertModel", "eager", num_key_value_heads=2, **TOKENS), ids(1, 6)),
    Case("roc_bert", encoder("RoCBertConfig", "RoCBertModel", "eager", pronunciation_vocab_size=32,
                             shape_vocab_size=32), ids(1, 6)),
    Case("camembert", encoder("CamembertConfig", "CamembertModel", max_position_embeddings=130), ids(1, 6)),
    Case("ernie", encoder("ErnieConfig", "ErnieModel"), ids(1, 6)),
    Case("roberta_prelayernorm", encoder("RobertaPreLayerNormConfig", "RobertaPreLayerNormModel",
                                         max_position_embeddings=130), ids(1, 6)),
    Case("xlm_roberta_xl", encoder("XLMRobertaXLConfig", "XLMRobertaXLModel", max_position_embeddings=130),
         ids(1, 6)),
    Case("splinter", encoder("SplinterConfig", "SplinterModel", "eager"), ids(1, 6)),
    Case("luke", encoder("LukeConfig", "LukeModel", "eager", entity_vocab_size=16, entity_emb_size=32), ids(1, 6)),
    Case("gte", encoder("GteConfig", "GteModel", "eager"), ids(1, 6)),
    Case("bert_generation", encoder("BertGenerationConfig", "BertGenerationEncoder", "eager"), ids(1, 6)),
    Case("perceiver", hf("PerceiverConfig", "PerceiverForMaskedLM", "eager", num_latents=8, d_latents=32, d_model=32,
                         num_blocks=1, num_self_attends_per_block=1, num_self_attention_heads=2,
                         num_cross_attention_heads=2, vocab_size=128, max_position_embeddings=16), ids(1, 16)),
    Case("umt5", hf("UMT5Config", "UMT5ForConditionalGeneration", "eager", d_model=64, d_ff=128, num_layers=2,
                    num_heads=4, d_kv=16, decoder_start_token_id=0, **SEQ2SEQ), ids(1, 6, 3)),
    Case("mt5", hf("MT5Config", "MT5ForConditionalGeneration", "eager", d_model=64, d_ff=128, num_layers=2,
                   num_heads=4, d_kv=16, decoder_start_token_id=0, **SEQ2SEQ), ids(1, 6, 3)),
    Case("plbart", hf("PLBartConfig", "PLBartForConditionalGeneration", "sdpa", max_position_embeddings=64,
                      decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("mvp", hf("MvpConfig", "MvpForConditionalGeneration", "eager", max_position_embeddings=64,
                   decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("blenderbot_small", hf("BlenderbotSmallConfig", "BlenderbotSmallForConditionalGeneration", "sdpa",
                                max_position_embeddings=64, decoder_start_token_id=1, **BART, **SEQ2SEQ, **TOKENS),
         ids(1, 6, 4)),
    Case("bigbird_pegasus", hf("BigBirdPegasusConfig", "BigBirdPegasusForConditionalGeneration", "eager",
                               attention_type="original_full", max_position_embeddings=64, decoder_start_token_id=1,
                               **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("pegasus_x", hf("PegasusXConfig", "PegasusXForConditionalGeneration", "eager", max_position_embeddings=64,
                         decoder_start_token_id=1, block_size=4, num_global_tokens=2, **BART, **SEQ2SEQ, **TOKENS),
         ids(1, 8, 4)),
    Case("t5gemma", hf("T5GemmaConfig", "T5GemmaForConditionalGeneration", "eager", names=SEQ2SEQ["names"],
                       fixed=NOCACHE, encoder=dict(LM, head_dim=16, sliding_window=4, **TOKENS),
                       decoder=dict(LM, head_dim=16, sliding_window=4, **TOKENS), vocab_size=128, **TOKENS),
         ids(1, 6, 4)),
    Case("dinov2_registers", vision("Dinov2WithRegistersConfig", "Dinov2WithRegistersModel", num_register_tokens=2),
         img(1, 3, 32, 32)),
    Case("dinov3_vit", vision("DINOv3ViTConfig", "DINOv3ViTModel", num_register_tokens=2, rope_theta=100.0),
         img(1, 3, 32, 32)),
    Case("dinov3_convnext", pixels("DINOv3ConvNextConfig", "DINOv3ConvNextModel", hidden_sizes=[8, 16, 24, 32],
                                   depths=[1, 1, 1, 1]), IMG),
    Case("hiera", pixels("HieraConfig", "HieraModel", image_size=[64, 64], embed_dim=16, depths=[1, 1, 1, 1],
                         num_heads=[1, 2, 2, 4], patch_stride=[4, 4], masked_unit_size=[8, 8],
                         query_stride=[2, 2]), IMG),
    Case("pvt", pixels("PvtConfig", "PvtModel", ("last_hidden_state",), image_size=64, num_encoder_blocks=2,
                       depths=[1, 1], sequence_reduction_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[4, 2],
                       strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2]), IMG),
    Case("pvt_v2", pixels("PvtV2Config", "PvtV2Model", ("last_hidden_state",), image_size=64, num_encoder_blocks=2,
                          depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[7, 3], strides=[4, 2],
                          num_attention_heads=[1, 2], mlp_ratios=[2, 2]), IMG),
    Case("swiftformer", pixels("SwiftFormerConfig", "SwiftFormerModel", ("last_hidden_state",), depths=[1, 1, 1, 1],
                               embed_dims=[8, 16, 24, 32]), IMG),
    Case("swinv2_hf", hf("Swinv2Config", "Swinv2Model", "eager", names=("pixel_values",),
                         fields=("last_hidden_state", "pooler_output"), image_size=32, patch_size=2, embed_dim=16,
                         depths=[1, 1], num_heads=[2, 2], window_size=4), img(1, 3, 32, 32)),
    Case("convnext_hf", pixels("ConvNextConfig", "ConvNextModel", hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1]),
         IMG),
    Case("vit_msn", vision("ViTMSNConfig", "ViTMSNModel", fields=("last_hidden_state",)), img(1, 3, 32, 32)),
    Case("ijepa", vision("IJepaConfig", "IJepaModel"), img(1, 3, 32, 32)),
    Case("textnet", pixels("TextNetConfig", "TextNetModel", stem_out_channels=8,
                           conv_layer_kernel_sizes=[[[3, 3]], [[3, 3]], [[3, 3]], [[3, 3]]],
                           conv_layer_strides=[[1], [2], [2], [2]], hidden_sizes=[8, 8, 16, 24, 32]), IMG),
    Case("hgnet_v2", pixels("HGNetV2Config", "HGNetV2Backbone", ("feature_maps",)), IMG),
    Case("mobilevitv2", pixels("MobileViTV2Config", "MobileViTV2Model", image_size=64, width_multiplier=0.25), IMG),
    Case("aimv2_vision", vision("Aimv2VisionConfig", "Aimv2VisionModel"), img(1, 3, 32, 32)),
    Case("vitdet", pixels("VitDetConfig", "VitDetModel", ("last_hidden_state",), hidden_size=64, num_hidden_layers=2,
                          num_attention_heads=4, mlp_ratio=2, image_size=32, pretrain_image_size=32, patch_size=8,
                          window_size=2, window_block_indices=[0], use_relative_position_embeddings=True),
         img(1, 3, 32, 32)),
    Case("videomae", vision("VideoMAEConfig", "VideoMAEModel", fields=("last_hidden_state",), num_frames=4,
                            tubelet_size=2), img(1, 4, 3, 32, 32)),
    Case("vivit", hf("VivitConfig", "VivitModel", "eager", names=("pixel_values",),
                     fields=("last_hidden_state", "pooler_output"), hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=128, image_size=32, num_frames=4,
                     tubelet_size=[2, 8, 8]), img(1, 4, 3, 32, 32)),
    Case("timesformer", vision("TimesformerConfig", "TimesformerModel", "eager", fields=("last_hidden_state",),
                               num_frames=2), img(1, 2, 3, 32, 32)),
    Case("depth_anything", hf("DepthAnythingConfig", "DepthAnythingForDepthEstimation", "eager",
                              names=("pixel_values",), fields=("predicted_depth",),
                              backbone_config={"model_type": "dinov2", "hidden_size": 64, "num_hidden_layers": 4,
                                               "num_attention_heads": 4, "intermediate_size": 128,
                                               "image_size": 32, "patch_size": 8,
                                               "out_indices": [1, 2, 3, 4], "reshape_hidden_states": False},
                              neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16, head_hidden_size=8,
                              reassemble_hidden_size=64, patch_size=8), img(1, 3, 32, 32)),
    Case("upernet", hf("UperNetConfig", "UperNetForSemanticSegmentation", "eager", names=("pixel_values",),
                       fields=("logits",), backbone_config={"model_type": "convnext", "hidden_sizes": [8, 16, 24, 32],
                                                            "depths": [1, 1, 1, 1],
                                                            "out_features": ["stage1", "stage2", "stage3", "stage4"]},
                       hidden_size=16, auxiliary_in_channels=24, auxiliary_channels=8, num_labels=3), IMG),
    Case("swin2sr", pixels("Swin2SRConfig", "Swin2SRForImageSuperResolution", ("reconstruction",), image_size=16,
                           patch_size=1, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4, upscale=2),
         img(1, 3, 16, 16)),
    Case("vitpose", hf("VitPoseConfig", "VitPoseForPoseEstimation", "eager", names=("pixel_values",),
                       fields=("heatmaps",), backbone_config={"model_type": "vitpose_backbone", "hidden_size": 64,
                                                              "num_hidden_layers": 2, "num_attention_heads": 4,
                                                              "intermediate_size": 128, "image_size": [32, 32],
                                                              "patch_size": [8, 8], "out_indices": [2]},
                       num_labels=5), img(1, 3, 32, 32)),
    Case("owlvit_vision", vision("OwlViTVisionConfig", "OwlViTVisionModel"), img(1, 3, 32, 32)),
    Case("clipseg_vision", vision("CLIPSegVisionConfig", "CLIPSegVisionModel"), img(1, 3, 32, 32)),
    Case("chinese_clip_vision", vision("ChineseCLIPVisionConfig", "ChineseCLIPVisionModel"), img(1, 3, 32, 32)),
    Case("altclip_vision", vision("AltCLIPVisionConfig", "AltCLIPVisionModel"), img(1, 3, 32, 32)),
    Case("groupvit_vision", hf("GroupViTVisionConfig", "GroupViTVisionModel", "eager", names=("pixel_values",),
                               fields=("last_hidden_state", "pooler_output"), hidden_size=64,
                               num_hidden_layers=2, depths=[1, 1], num_group_tokens=[4, 0],
                               num_output_groups=[4, 4], num_attention_heads=4, intermediate_size=128,
                               image_size=32, patch_size=8), img(1, 3, 32, 32)),
    Case("pixtral_vision", hf("PixtralVisionConfig", "PixtralVisionModel", "eager", names=("pixel_values",),
                              fields=("last_hidden_state",), head_dim=16, **V), img(1, 3, 32, 32)),
    Case("mllama_vision", hf("MllamaVisionConfig", "MllamaVisionModel", "eager",
                             names=("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask"),
                             fields=("last_hidden_state",), hidden_size=32, num_hidden_layers=2,
                             num_global_layers=1, attention_heads=4, intermediate_size=64, image_size=32,
                             patch_size=8, vision_output_dim=64, max_num_tiles=1,
                             supported_aspect_ratios=[[1, 1]], intermediate_layers_indices=[0]),
         lambda g, dev, dt: (torch.randn(1, 1, 1, 3, 32, 32, generator=g, device=dev).to(dt),
                             torch.ones(1, 1, dtype=torch.long, device=dev),
                             torch.ones(1, 1, 1, dtype=torch.long, device=dev))),
    Case("donut_swin", hf("DonutSwinConfig", "DonutSwinModel", "eager", names=("pixel_values",),
                          fields=("last_hidden_state", "pooler_output"), image_size=32, patch_size=2, embed_dim=16,
                          depths=[1, 1], num_heads=[2, 2], window_size=4), img(1, 3, 32, 32)),
    Case("maskformer_swin", hf("MaskFormerSwinConfig", "MaskFormerSwinModel", "eager", names=("pixel_values",),
                               fields=("last_hidden_state",), image_size=32, patch_size=2, embed_dim=16,
                               depths=[1, 1], num_heads=[2, 2], window_size=4), img(1, 3, 32, 32)),
    Case("rt_detr_resnet", pixels("RTDetrResNetConfig", "RTDetrResNetBackbone", ("feature_maps",),
                                  embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"]), IMG),
    Case("table_transformer", hf("TableTransformerConfig", "TableTransformerForObjectDetection", "eager",
                                 names=("pixel_values",), fields=("logits", "pred_boxes"), use_timm_backbone=False,
                                 backbone_config=DETR_BACKBONE, use_pretrained_backbone=False, backbone=None,
                                 num_queries=5, **DETR), IMG),
    Case("dab_detr", hf("DabDetrConfig", "DabDetrForObjectDetection", "eager", names=("pixel_values",),
                        fields=("logits", "pred_boxes"), use_timm_backbone=False, backbone_config=DETR_BACKBONE,
                        use_pretrained_backbone=False, backbone=None, num_queries=5, hidden_size=32,
                        encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                        encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=3), IMG),
    Case("blip_vision", vision("BlipVisionConfig", "BlipVisionModel", "eager"), img(1, 3, 32, 32)),
    Case("git_vision", vision("GitVisionConfig", "GitVisionModel", "eager", fields=("last_hidden_state",)),
         img(1, 3, 32, 32)),
    Case("flava_image", vision("FlavaImageConfig", "FlavaImageModel", "eager"), img(1, 3, 32, 32)),
    Case("ast", hf("ASTConfig", "ASTModel", "eager", names=("input_values",), fields=("last_hidden_state",),
                   hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, patch_size=8,
                   frequency_stride=8, time_stride=8, max_length=32, num_mel_bins=16), img(1, 32, 16)),
    Case("wav2vec2_conformer", hf("Wav2Vec2ConformerConfig", "Wav2Vec2ConformerModel", "eager",
                                  names=("input_values",), fields=("last_hidden_state",),
                                  position_embeddings_type="rotary", conv_depthwise_kernel_size=3, **AUDIO),
         img(1, 400)),
    Case("wav2vec2_conformer_rel", hf("Wav2Vec2ConformerConfig", "Wav2Vec2ConformerModel", "eager",
                                      names=("input_values",), fields=("last_hidden_state",),
                                      position_embeddings_type="relative", conv_depthwise_kernel_size=3, **AUDIO),
         img(1, 400)),
    Case("wav2vec2_bert", hf("Wav2Vec2BertConfig", "Wav2Vec2BertModel", "eager", names=("input_features",),
                             fields=("last_hidden_state",), hidden_size=64, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=128, feature_projection_input_dim=32,
                             conv_depthwise_kernel_size=3, position_embeddings_type="relative_key",
                             left_max_position_embeddings=8, right_max_position_embeddings=8), img(1, 20, 32)),
    Case("unispeech_sat", hf("UniSpeechSatConfig", "UniSpeechSatModel", "eager", names=("input_values",),
                             fields=("last_hidden_state",), **AUDIO), img(1, 400)),
    Case("dac", hf("DacConfig", "DacModel", "eager", names=("input_values",), fields=("audio_values",),
                   encoder_hidden_size=4, downsampling_ratios=[2, 2], decoder_hidden_size=16, n_codebooks=2,
                   codebook_size=16, codebook_dim=4, upsampling_ratios=[2, 2], hidden_size=32), img(1, 1, 64)),
    Case("clap_audio", hf("ClapAudioConfig", "ClapAudioModel", "eager", names=("input_features",),
                          fields=("last_hidden_state", "pooler_output"), spec_size=32, patch_size=4, patch_stride=4,
                          num_mel_bins=16, window_size=2, depths=[1, 1], num_attention_heads=[2, 2],
                          patch_embeds_hidden_size=16, hidden_size=32, enable_fusion=False), img(1, 1, 64, 16)),
    Case("parakeet_encoder", hf("ParakeetEncoderConfig", "ParakeetEncoder", "eager", names=("input_features",),
                                fields=("last_hidden_state",), hidden_size=64, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=128, num_mel_bins=16, subsampling_factor=4,
                                subsampling_conv_channels=8, conv_kernel_size=3), img(1, 32, 16)),
    Case("qwen2_audio_encoder", hf("Qwen2AudioEncoderConfig", "Qwen2AudioEncoder", "eager", names=("input_features",),
                                   fields=("last_hidden_state",), num_mel_bins=16, encoder_layers=2,
                                   encoder_attention_heads=4, encoder_ffn_dim=64, d_model=32,
                                   max_source_positions=16), img(1, 16, 32)),
    Case("gemma3n_audio", hf("Gemma3nAudioConfig", "Gemma3nAudioEncoder", "eager",
                             names=("audio_mel", "audio_mel_mask"), fields=("last_hidden_state",), hidden_size=64,
                             conf_num_hidden_layers=1, conf_num_attention_heads=4, input_feat_size=16,
                             sscp_conv_channel_size=[8, 8], vocab_size=32),
         lambda g, dev, dt: (torch.randn(1, 32, 16, generator=g, device=dev).to(dt),
                             torch.zeros(1, 32, dtype=torch.bool, device=dev))),
    Case("patchtst", hf("PatchTSTConfig", "PatchTSTModel", "eager", names=("past_values",),
                        fields=("last_hidden_state",), num_input_channels=3, context_length=32, patch_length=8,
                        patch_stride=8, d_model=32, num_attention_heads=4, num_hidden_layers=2, ffn_dim=64),
         img(2, 32, 3)),
    Case("patchtsmixer", hf("PatchTSMixerConfig", "PatchTSMixerModel", "eager", names=("past_values",),
                            fields=("last_hidden_state",), num_input_channels=3, context_length=32, patch_length=8,
                            patch_stride=8, d_model=16, num_layers=2), img(2, 32, 3)),
    Case("timesfm", hf("TimesFmConfig", "TimesFmModelForPrediction", "eager", names=("past_values",),
                       fields=("mean_predictions",), patch_length=8, context_length=32, horizon_length=8,
                       hidden_size=32, intermediate_size=64, head_dim=8, num_attention_heads=4,
                       num_hidden_layers=2), img(2, 32)),
    Case("time_series_transformer", hf("TimeSeriesTransformerConfig", "TimeSeriesTransformerModel", "eager",
                                       names=TSN, fields=("last_hidden_state",), **TS), ts_inputs(1, 10, 4, 2)),
    Case("informer", hf("InformerConfig", "InformerModel", "eager", names=TSN, fields=("last_hidden_state",),
                        attention_type="full", distil=False, **TS), ts_inputs(1, 10, 4, 2)),
    Case("autoformer", hf("AutoformerConfig", "AutoformerModel", "eager", names=TSN, fields=("last_hidden_state",),
                          moving_average=3, **TS), ts_inputs(1, 10, 4, 2)),
    Case("resnet50", tv("resnet50"), img(1, 3, 64, 64)),
    Case("resnet34", tv("resnet34"), IMG),
    Case("vgg11_bn", tv("vgg11_bn"), img(1, 3, 32, 32)),
    Case("squeezenet1_0", tv("squeezenet1_0"), IMG),
    Case("efficientnet_b3", tv("efficientnet_b3"), IMG),
    Case("mnasnet1_3", tv("mnasnet1_3"), IMG),
    Case("shufflenet_v2_x1_5", tv("shufflenet_v2_x1_5"), IMG),
    Case("regnet_y_800mf", tv("regnet_y_800mf"), IMG),
    Case("densenet169", tv("densenet169"), IMG),
    Case("vit_b_32", tv("vit_b_32", image_size=64), IMG, mha_slow_path=True),
    Case("swin_v2_s", tv("swin_v2_s"), IMG),
    Case("deeplabv3_resnet50", tv("deeplabv3_resnet50", weights_backbone=None, num_classes=3, aux_loss=True),
         img(1, 3, 32, 32)),
    Case("raft_large", lambda: Call(tv("raft_large")(), num_flow_updates=2),
         lambda g, dev, dt: tuple(torch.randn(1, 3, 128, 128, generator=g, device=dev).to(dt) for _ in range(2))),
    Case("mvit_v1_b", tv("mvit_v1_b"), img(1, 3, 16, 224, 224)),
    Case("q_googlenet", tvq("googlenet", aux_logits=False, init_weights=True), IMG),
    Case("q_mobilenet_v2", tvq("mobilenet_v2"), IMG),
    Case("q_resnet50", tvq("resnet50"), img(1, 3, 32, 32)),
    Case("tv_ops", RoiOps, roi_inputs),
    # session 25 (CPU: all bitwise on 1 and 3 streams but Qwen3.5-MoE and OLMo-hybrid, whose exported programs
    # differ from eager, and NLLB-MoE, which torch.export cannot export): newer decoders, MoE and linear-attention
    # hybrids, encoders, an encoder-decoder, vision towers, depth, matching and speech models (docs/aten.md)
    Case("gemma4_text", causal("Gemma4TextConfig", "Gemma4ForCausalLM", "eager", head_dim=16, sliding_window=4,
                               vocab_size_per_layer_input=128, hidden_size_per_layer_input=16,
                               enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=32,
                               **TOKENS), ids(1, 6)),
    Case("glm4_moe_lite", causal("Glm4MoeLiteConfig", "Glm4MoeLiteForCausalLM", "eager", **MLA, **TOKENS), ids(1, 6)),
    Case("exaone_moe", causal("ExaoneMoeConfig", "ExaoneMoeForCausalLM", sliding_window=4, sliding_window_pattern=2,
                              num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                              first_k_dense_replace=1, num_shared_experts=1, n_group=1, topk_group=1, **TOKENS),
         ids(1, 6)),
    Case("minimax_m2", causal("MiniMaxM2Config", "MiniMaxM2ForCausalLM", num_local_experts=4, num_experts_per_tok=2,
                              head_dim=16, **TOKENS), ids(1, 6)),
    Case("jais2", causal("Jais2Config", "Jais2ForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("nanochat", causal("NanoChatConfig", "NanoChatForCausalLM", **TOKENS), ids(1, 6)),
    Case("cwm", causal("CwmConfig", "CwmForCausalLM", head_dim=16, sliding_window=4, **TOKENS), ids(1, 6)),
    Case("lfm3", causal("Lfm3Config", "Lfm3ForCausalLM", "eager", head_dim=16, layer_types=["conv", "full_attention"],
                        **TOKENS), ids(1, 6)),
    Case("zaya", causal("ZayaConfig", "ZayaForCausalLM", "eager", intermediate_size=DROP, head_dim=16, num_experts=4,
                        num_experts_per_tok=1, moe_intermediate_size=32, **TOKENS), ids(1, 6)),
    Case("laguna", causal("LagunaConfig", "LagunaForCausalLM", head_dim=16, num_experts=4, num_experts_per_tok=2,
                          moe_intermediate_size=32, shared_expert_intermediate_size=32, sliding_window=4,
                          layer_types=["sliding_attention", "full_attention"], **TOKENS), ids(1, 6)),
    Case("solar_open", causal("SolarOpenConfig", "SolarOpenForCausalLM", intermediate_size=DROP, head_dim=16,
                              n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=1,
                              n_group=1, topk_group=1, **TOKENS), ids(1, 6)),
    Case("mellum", causal("MellumConfig", "MellumForCausalLM", head_dim=16, num_experts=4, num_experts_per_tok=2,
                          moe_intermediate_size=32, sliding_window=4,
                          layer_types=["sliding_attention", "full_attention"], **TOKENS), ids(1, 6)),
    Case("hy_v3", causal("HYV3Config", "HYV3ForCausalLM", head_dim=16, num_experts=4, num_experts_per_tok=2,
                         num_shared_experts=1, moe_intermediate_size=32, **TOKENS), ids(1, 6)),
    Case("qwen3_5_text", causal("Qwen3_5TextConfig", "Qwen3_5ForCausalLM", "eager", head_dim=16,
                                linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=16,
                                linear_value_head_dim=16, layer_types=["linear_attention", "full_attention"],
                                **TOKENS), ids(1, 6)),
    Case("qwen3_5_moe_text", causal("Qwen3_5MoeTextConfig", "Qwen3_5MoeForCausalLM", "eager", intermediate_size=DROP,
                                    head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                                    shared_expert_intermediate_size=32, linear_num_value_heads=4,
                                    linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
                                    layer_types=["linear_attention", "full_attention"], **TOKENS), ids(1, 6)),
    Case("olmo_hybrid", causal("OlmoHybridConfig", "OlmoHybridForCausalLM", "eager", linear_num_value_heads=4,
                               linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
                               layer_types=["linear_attention", "full_attention"], **TOKENS), ids(1, 6)),
    Case("trocr", hf("TrOCRConfig", "TrOCRForCausalLM", "eager", fixed=NOCACHE, d_model=64, decoder_layers=2,
                     decoder_attention_heads=4, decoder_ffn_dim=128, vocab_size=128, max_position_embeddings=64,
                     **TOKENS), ids(1, 6)),
    Case("markuplm", encoder("MarkupLMConfig", "MarkupLMModel", "eager", max_depth=8, xpath_unit_hidden_size=8,
                             max_position_embeddings=64), ids(1, 6)),
    # (EXPORT: its experts loop over the experts hit; its router's ``self.classifier.to(dtype)``, a no-op, is taken)
    Case("nllb_moe", hf("NllbMoeConfig", "NllbMoeForConditionalGeneration", "eager", max_position_embeddings=64,
                        decoder_start_token_id=1, num_experts=4, expert_capacity=4, encoder_sparse_step=2,
                        decoder_sparse_step=2, **BART, **SEQ2SEQ, **TOKENS), ids(1, 6, 4)),
    Case("mgp_str", hf("MgpstrConfig", "MgpstrForSceneTextRecognition", "eager", names=("pixel_values",),
                       fields=("logits",), image_size=[32, 64], patch_size=8, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=4, max_token_length=8, num_character_labels=16, num_bpe_labels=32,
                       num_wordpiece_labels=32), img(1, 3, 32, 64)),
    Case("sam_vision", hf("SamVisionConfig", "SamVisionModel", "eager", names=("pixel_values",),
                          fields=("last_hidden_state",), hidden_size=64, output_channels=32, num_hidden_layers=2,
                          num_attention_heads=4, image_size=64, patch_size=8, window_size=4,
                          global_attn_indexes=[1], mlp_dim=128), IMG),
    Case("zoedepth", hf("ZoeDepthConfig", "ZoeDepthForDepthEstimation", "eager", names=("pixel_values",),
                        fields=("predicted_depth",),
                        backbone_config={"model_type": "beit", "hidden_size": 64, "num_hidden_layers": 4,
                                         "num_attention_heads": 4, "intermediate_size": 128, "image_size": 32,
                                         "patch_size": 8, "out_indices": [1, 2, 3, 4],
                                         "use_relative_position_bias": True, "reshape_hidden_states": False},
                        neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16, bottleneck_features=16,
                        num_attractors=[4, 4, 4, 4], bin_embedding_dim=16,
                        bin_configurations=[{"n_bins": 8, "min_depth": 1e-3, "max_depth": 10.0, "name": "nyu"}],
                        num_patch_transformer_layers=1, patch_transformer_hidden_size=16,
                        patch_transformer_intermediate_size=32, patch_transformer_num_attention_heads=2),
         img(1, 3, 32, 32)),
    Case("pixio", vision("PixioConfig", "PixioModel", "eager", intermediate_size=DROP, n_cls_tokens=2),
         img(1, 3, 32, 32)),
    Case("efficient_loftr", hf("EfficientLoFTRConfig", "EfficientLoFTRForKeypointMatching", "eager",
                               names=("pixel_values",), fields=("matches", "matching_scores"),
                               stage_num_blocks=[1, 1, 1, 1], out_features=[16, 16, 32, 64],
                               stage_stride=[2, 1, 2, 2], hidden_size=64, num_attention_layers=1,
                               num_attention_heads=8),
         img(1, 2, 3, 64, 64)),
    Case("speecht5_asr", hf("SpeechT5Config", "SpeechT5ForSpeechToText", "eager",
                            names=("input_values", "decoder_input_ids"), fixed=NOCACHE, hidden_size=64,
                            encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, decoder_layers=2,
                            decoder_attention_heads=4, decoder_ffn_dim=128, conv_dim=(16, 16), conv_stride=(5, 2),
                            conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            vocab_size=128, max_speech_positions=64, max_text_positions=64, **TOKENS),
         lambda g, dev, dt: (torch.randn(1, 400, generator=g, device=dev).to(dt),
                             torch.randint(0, 128, (1, 4), generator=g, device=dev))),
    Case("dpr", hf("DPRConfig", "DPRQuestionEncoder", "eager", fields=("pooler_output",), hidden_size=64,
                   num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=128,
                   projection_dim=32), ids(2, 6)),
    Case("visual_bert", encoder("VisualBertConfig", "VisualBertModel", "eager", visual_embedding_dim=16),
         ids(1, 6)),
    Case("tapas", encoder("TapasConfig", "TapasModel", "eager", max_position_embeddings=64), ids(1, 6)),
    Case("flaubert", hf("FlaubertConfig", "FlaubertModel", "eager", fields=("last_hidden_state",), emb_dim=64,
                        n_layers=2, n_heads=4, vocab_size=128, max_position_embeddings=64), ids(2, 6)),
    Case("xlm", hf("XLMConfig", "XLMWithLMHeadModel", "eager", fields=("logits",), emb_dim=64, n_layers=2,
                   n_heads=4, vocab_size=128, max_position_embeddings=64), ids(2, 6)),
    # session 26 (CPU: all bitwise on 1 and 3 streams but LaraMini and Qwen4-exp, whose exported programs differ
    # from eager): newer decoders (MoE, latent attention, sliding windows, byte-level BLT), text and vision towers,
    # LongT5 (local and transient-global) with its attention mask, Pop2Piano, ViT-MAE with its noise an input, audio
    # and torchvision detection models up to their post-processing (docs/aten.md)
    Case("apertus1p5", causal("Apertus1p5TextConfig", "Apertus1p5TextForCausalLM", **TOKENS), ids(1, 6)),
    Case("aria_text", causal("AriaTextConfig", "AriaTextForCausalLM", moe_num_experts=4, moe_topk=2,
                             moe_intermediate_size=32, **TOKENS), ids(1, 6)),
    Case("bailing_hybrid", causal("BailingHybridConfig", "BailingHybridForCausalLM", **TOKENS), ids(1, 6)),
    Case("blt", causal("BltConfig", "BltForCausalLM", vocab_size=260, patching_mode="static", patch_in_forward=False,
                       encoder_hash_byte_group_vocab=64, encoder_hash_byte_group_size=[3],
                       patcher_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           num_key_value_heads=2, intermediate_size=64, head_dim=16),
                       encoder_config=dict(hidden_size=32, hidden_size_global=64, num_attention_heads=2,
                                           num_key_value_heads=2, intermediate_size=64),
                       decoder_config=dict(hidden_size=32, hidden_size_global=64, num_hidden_layers=1,
                                           num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                                           head_dim=16),
                       global_config=dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                                          num_hidden_layers=1, intermediate_size=128, head_dim=16), **TOKENS),
         ids(1, 8)),
    Case("deepseek_v32", causal("DeepseekV32Config", "DeepseekV32ForCausalLM", "eager", **MLA_Q), ids(1, 4)),
    Case("deepseek_v4", causal("DeepseekV4Config", "DeepseekV4ForCausalLM", "eager", **MLA_Q), ids(1, 4)),
    Case("glm_moe_dsa", causal("GlmMoeDsaConfig", "GlmMoeDsaForCausalLM", "eager", **MLA_Q), ids(1, 4)),
    Case("mistral4", causal("Mistral4Config", "Mistral4ForCausalLM", "eager", **MLA), ids(1, 4)),
    Case("youtu", causal("YoutuConfig", "YoutuForCausalLM", "eager", **MLA), ids(1, 4)),
    Case("emu3_text", causal("Emu3TextConfig", "Emu3ForCausalLM", **TOKENS), ids(1, 6)),
    Case("gpt_neox_japanese", hf("GPTNeoXJapaneseConfig", "GPTNeoXJapaneseForCausalLM", "eager", fixed=NOCACHE,
                                 hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_multiple_size=2, vocab_size=128, max_position_embeddings=64,
                                 **TOKENS), ids(1, 6)),
    Case("gemma3n_text", causal("Gemma3nTextConfig", "Gemma3nForCausalLM", "eager", head_dim=16, sliding_window=4,
                                laurel_rank=8, altup_num_inputs=2, hidden_size_per_layer_input=8,
                                vocab_size_per_layer_input=128, num_kv_shared_layers=0,
                                activation_sparsity_pattern=[0.0, 0.0],
                                layer_types=["sliding_attention", "full_attention"]), ids(1, 6)),
    Case("granitemoeshared", causal("GraniteMoeSharedConfig", "GraniteMoeSharedForCausalLM", num_local_experts=4,
                                    num_experts_per_tok=2, shared_intermediate_size=64, **TOKENS), ids(1, 6)),
    Case("granite_swa", causal("GraniteSWAConfig", "GraniteSWAForCausalLM", "eager", sliding_window=4, **TOKENS),
         ids(1, 6)),
    Case("granitemoe_swa", causal("GraniteMoeSWAConfig", "GraniteMoeSWAForCausalLM", "eager", sliding_window=4,
                                  num_local_experts=4, num_experts_per_tok=2, **TOKENS), ids(1, 6)),
    Case("hy_v4", causal("HYV4Config", "HYV4ForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("hyperclovax", causal("HyperCLOVAXConfig", "HyperCLOVAXForCausalLM", **TOKENS), ids(1, 6)),
    Case("mimo_v2_flash", causal("MiMoV2FlashConfig", "MiMoV2FlashForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("ministral3", causal("Ministral3Config", "Ministral3ForCausalLM", **TOKENS), ids(1, 6)),
    Case("hrm_text", causal("HrmTextConfig", "HrmTextForCausalLM", **TOKENS), ids(1, 6)),
    Case("lara_mini", causal("LaraMiniConfig", "LaraMiniForCausalLM", **TOKENS), ids(1, 6)),
    Case("kolibri1", causal("Kolibri1Config", "Kolibri1ForCausalLM", **TOKENS), ids(1, 6)),
    Case("flint", causal("FlintConfig", "FlintForCausalLM", "eager", **TOKENS), ids(1, 6)),
    Case("dory", causal("DoryConfig", "DoryForCausalLM", **TOKENS), ids(1, 6)),
    Case("qwen4_exp_text", causal("Qwen4ExpTextConfig", "Qwen4ExpForCausalLM", head_dim=16, **TOKENS), ids(1, 6)),
    Case("mllama_text", causal("MllamaTextConfig", "MllamaForCausalLM", cross_attention_layers=[1], **TOKENS),
         ids(1, 6)),
    Case("clip_text", encoder("CLIPTextConfig", "CLIPTextModel", max_position_embeddings=32, **TOKENS), ids(2, 6)),
    Case("siglip_text", encoder("SiglipTextConfig", "SiglipTextModel", max_position_embeddings=32, **TOKENS),
         ids(2, 6)),
    Case("altclip_text", encoder("AltCLIPTextConfig", "AltCLIPTextModel", max_position_embeddings=40, project_dim=32),
         ids(1, 6)),
    Case("chinese_clip_text", encoder("ChineseCLIPTextConfig", "ChineseCLIPTextModel", "eager"), ids(1, 6)),
    Case("groupvit_text", encoder("GroupViTTextConfig", "GroupViTTextModel", "eager", max_position_embeddings=32,
                                  **TOKENS), ids(1, 6)),
    Case("owlvit_text", encoder("OwlViTTextConfig", "OwlViTTextModel", "eager", max_position_embeddings=32, **TOKENS),
         ids(1, 6)),
    Case("clap_text", encoder("ClapTextConfig", "ClapTextModel", "eager", max_position_embeddings=40,
                              projection_dim=32), ids(1, 6)),
    Case("metaclip2_text", encoder("MetaClip2TextConfig", "MetaClip2TextModel", max_position_embeddings=32,
                                   **TOKENS), ids(1, 6)),
    Case("embedding_gemma2", encoder("EmbeddingGemma2TextConfig", "EmbeddingGemma2TextModel", num_key_value_heads=2,
                                     head_dim=16, **TOKENS), ids(1, 6)),
    Case("ultrabert", encoder("UltrabertConfig", "UltrabertModel", **TOKENS), ids(1, 6)),
    Case("jina_v3", encoder("JinaEmbeddingsV3Config", "JinaEmbeddingsV3Model", max_position_embeddings=64),
         ids(1, 6)),
    Case("esmc", encoder("EsmcConfig", "EsmcModel", vocab_size=64, **TOKENS), ids(1, 6, vocab=64)),
    Case("bros", encoder("BrosConfig", "BrosModel", "eager", names=("input_ids", "bbox")),
         lambda g, dev, dt: (torch.randint(0, 128, (1, 6), generator=g, device=dev),
                             torch.rand(1, 6, 4, generator=g, device=dev).to(dt))),
    Case("longt5", hf("LongT5Config", "LongT5ForConditionalGeneration", "eager", local_radius=2, **T5S, **S2M),
         ids_mask_dec(2, 8, 3)),
    Case("longt5_tglobal", hf("LongT5Config", "LongT5ForConditionalGeneration", "eager", local_radius=2,
                              global_block_size=4, encoder_attention_type="transient-global", **T5S, **S2M),
         ids_mask_dec(2, 8, 3)),
    Case("pop2piano", hf("Pop2PianoConfig", "Pop2PianoForConditionalGeneration", "eager",
                         names=("input_features", "decoder_input_ids"), fixed=NOCACHE, vocab_size=128, **T5S),
         lambda g, dev, dt: (torch.randn(1, 6, 64, generator=g, device=dev).to(dt),
                             torch.randint(0, 128, (1, 3), generator=g, device=dev))),
    Case("blip2_vision", vision("Blip2VisionConfig", "Blip2VisionModel"), img(1, 3, 32, 32)),
    Case("internvl_vision", vision("InternVLVisionConfig", "InternVLVisionModel", image_size=[32, 32],
                                   patch_size=[8, 8], fields=("last_hidden_state",)), img(1, 3, 32, 32)),
    Case("mlcd_vision", vision("MLCDVisionConfig", "MLCDVisionModel"), img(1, 3, 32, 32)),
    Case("metaclip2_vision", vision("MetaClip2VisionConfig", "MetaClip2VisionModel"), img(1, 3, 32, 32)),
    Case("owlv2_vision", vision("Owlv2VisionConfig", "Owlv2VisionModel"), img(1, 3, 32, 32)),
    Case("align_vision", pixels("AlignVisionConfig", "AlignVisionModel", image_size=64, width_coefficient=0.25,
                                depth_coefficient=0.25, hidden_dim=64), IMG),
    Case("vit_mae", hf("ViTMAEConfig", "ViTMAEModel", "eager", names=("pixel_values", "noise"),
                       fields=("last_hidden_state", "mask", "ids_restore"), mask_ratio=0.5, **V),
         lambda g, dev, dt: (torch.randn(1, 3, 32, 32, generator=g, device=dev).to(dt),
                             torch.rand(1, 16, generator=g, device=dev).to(dt))),  # eager draws it otherwise
    Case("chameleon", causal("ChameleonConfig", "ChameleonForConditionalGeneration", vocabulary_map={"<image>": 3},
                             vq_config=dict(embed_dim=32, num_embeddings=32, latent_channels=32, base_channels=32,
                                            channel_multiplier=[1, 2], resolution=32, num_res_blocks=1), **TOKENS),
         ids(1, 6)),
    Case("cpmant", hf("CpmAntConfig", "CpmAntForCausalLM", "eager", fixed=NOCACHE, hidden_size=64,
                      num_attention_heads=4, dim_head=16, dim_ff=128, num_hidden_layers=2, vocab_size=128,
                      max_length=64, prompt_length=4, prompt_types=3, segment_types=8, position_bias_num_buckets=16,
                      position_bias_max_distance=32), ids(1, 6, vocab=64)),
    Case("xclip_vision", vision("XCLIPVisionConfig", "XCLIPVisionModel", num_frames=2, mit_hidden_size=32,
                                mit_intermediate_size=64, mit_num_hidden_layers=1, mit_num_attention_heads=4),
         img(2, 3, 32, 32)),
    Case("pix2struct_vision", hf("Pix2StructVisionConfig", "Pix2StructVisionModel", "eager",
                                 names=("flattened_patches", "attention_mask"), fields=("last_hidden_state",),
                                 hidden_size=64, num_hidden_layers=2, num_attention_heads=4, d_ff=128, d_kv=16,
                                 patch_embed_hidden_size=48, seq_len=16),
         lambda g, dev, dt: (torch.cat([torch.arange(16, device=dev).div(4, rounding_mode="floor").view(1, 16, 1) + 1,
                                        torch.arange(16, device=dev).remainder(4).view(1, 16, 1) + 1,  # row, column
                                        torch.randn(1, 16, 48, generator=g, device=dev)], -1).to(dt),
                             torch.ones(1, 16, device=dev).to(dt))),
    Case("cvt", pixels("CvtConfig", "CvtModel", ("last_hidden_state",), embed_dim=[16, 32], num_heads=[1, 2],
                       depth=[1, 2], patch_sizes=[7, 3], patch_stride=[4, 2], patch_padding=[2, 1],
                       mlp_ratio=[2.0, 2.0], qkv_bias=[True, True], cls_token=[False, True], drop_rate=[0.0, 0.0],
                       attention_drop_rate=[0.0, 0.0], drop_path_rate=[0.0, 0.0], stride_kv=[2, 2],
                       kernel_qkv=[3, 3], padding_kv=[1, 1], stride_q=[1, 1], padding_q=[1, 1],
                       qkv_projection_method=["dw_bn", "dw_bn"]), IMG),  # (depth[i] > i: transformers indexes so)
    Case("fasterrcnn_mobilenet_320_head", tv_det("fasterrcnn_mobilenet_v3_large_320_fpn", min_size=64, max_size=64),
         IMG),
    Case("retinanet_head", tv_det("retinanet_resnet50_fpn", min_size=64, max_size=64), IMG),
    Case("fcos_head", tv_det("fcos_resnet50_fpn", min_size=64, max_size=64), IMG),
    Case("ssdlite_head", tv_det("ssdlite320_mobilenet_v3_large"), IMG),  # (resized to 320 x 320 inside)
    Case("maskrcnn_v2_head", tv_det("maskrcnn_resnet50_fpn_v2", min_size=64, max_size=64), IMG),
    Case("keypointrcnn_head", tv_det("keypointrcnn_resnet50_fpn", min_size=64, max_size=64), IMG),
    # session 28 (CPU: all bitwise on 1 and 3 streams once linear with a 1-D weight lowered): whole RT-DETR-family
    # detectors (D-FINE and DEIMv2 integrate box distributions with F.linear(probs, vector)), document models
    Case("rt_detr", hf("RTDetrConfig", "RTDetrForObjectDetection", "eager", **RTD), IMG),
    Case("rt_detr_v2", hf("RTDetrV2Config", "RTDetrV2ForObjectDetection", "eager", **RTD), img(2, 3, 64, 96)),
    Case("dfine", hf("DFineConfig", "DFineForObjectDetection", "eager", **RTD), IMG),
    Case("deimv2", hf("Deimv2Config", "Deimv2ForObjectDetection", "eager", **RTD), IMG),
    Case("deformable_detr", hf("DeformableDetrConfig", "DeformableDetrForObjectDetection", "eager",
                               names=("pixel_values",), fields=("logits", "pred_boxes"), d_model=32, encoder_layers=1,
                               decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                               encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=10, num_feature_levels=3,
                               backbone_config={**RTD["backbone_config"], "model_type": "resnet"},
                               use_pretrained_backbone=False, use_timm_backbone=False, backbone=None,
                               disable_custom_kernels=True), IMG),
    Case("pp_ocrv5_mobile_det", pixels("PPOCRV5MobileDetConfig", "PPOCRV5MobileDetForObjectDetection",
                                       ("last_hidden_state",)), IMG),
    Case("layoutlmv3", hf("LayoutLMv3Config", "LayoutLMv3Model", "eager", names=("input_ids", "bbox", "pixel_values"),
                          fields=("last_hidden_state",), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=128, vocab_size=128, max_position_embeddings=66, input_size=32,
                          patch_size=8, coordinate_size=8, shape_size=16, pad_token_id=1, rel_pos_bins=8,
                          max_rel_pos=16, rel_2d_pos_bins=8, max_rel_2d_pos=32), boxes(2, 5, 32)),
    Case("lilt", hf("LiltConfig", "LiltModel", "eager", names=("input_ids", "bbox"), fields=("last_hidden_state",),
                    hidden_size=96, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=128,
                    max_position_embeddings=66, channel_shrink_ratio=4, pad_token_id=1), boxes(2, 6)),
    # session 39 (CPU: all bitwise on 1 stream and "auto" but the nn.MultiheadAttention ones, close: eval MHA's
    # fast path): newer text towers (sliding windows, MoE, multimodal RoPE), SigLIP2's packed patches, LASR and
    # Parakeet-CTC speech encoders, a HiFi-GAN vocoder, more torchvision detection heads; then torch.nn building blocks and op families (sweep_blocks.py)
    Case("muse_spark_text", hf("MuseSparkTextConfig", "MuseSparkTextModel", "eager", fields=("last_hidden_state",),
                               fixed=NOCACHE, head_dim=16, num_local_experts=4, num_experts_per_tok=2,
                               moe_intermediate_size=32, moe_hidden_size=32, **LM, **TOKENS), ids(1, 6)),
    Case("muse_glimmer_text", hf("MuseGlimmerTextConfig", "MuseGlimmerTextModel", "eager", fields=("last_hidden_state",),
                                 fixed=NOCACHE, head_dim=16, **LM, **TOKENS), ids(1, 6)),
    Case("inkling_text", causal("InklingTextConfig", "InklingForCausalLM", "eager", head_dim=16, swa_head_dim=16,
                                swa_num_attention_heads=4, swa_num_key_value_heads=2, n_routed_experts=4,
                                num_experts_per_tok=2, n_shared_experts=1, moe_intermediate_size=32, **TOKENS),
         ids(1, 6)),
    Case("inkling2_text", causal("Inkling2TextConfig", "Inkling2ForCausalLM", "eager", head_dim=16, swa_head_dim=16,
                                 swa_num_attention_heads=4, swa_num_key_value_heads=2, n_routed_experts=4,
                                 num_experts_per_tok=2, moe_intermediate_size=32, **TOKENS), ids(1, 6)),
    Case("minimax_m3_vl_text", causal("MiniMaxM3VLTextConfig", "MiniMaxM3VLForCausalLM", "eager", head_dim=16,
                                      num_local_experts=4, num_experts_per_tok=2, dense_intermediate_size=128,
                                      shared_intermediate_size=64, index_head_dim=16, **TOKENS), ids(1, 6)),
    Case("qwen3_vl_text", hf("Qwen3VLTextConfig", "Qwen3VLTextModel", "eager", fields=("last_hidden_state",),
                             fixed=NOCACHE, head_dim=16, **LM, **TOKENS), ids(1, 6)),
    Case("qwen3_vl_moe_text", hf("Qwen3VLMoeTextConfig", "Qwen3VLMoeTextModel", "eager", fields=("last_hidden_state",),
                                 fixed=NOCACHE, head_dim=16, num_experts=4, num_experts_per_tok=2,
                                 moe_intermediate_size=32, **LM, **TOKENS), ids(1, 6)),
    Case("qwen2_5_vl_text", hf("Qwen2_5_VLTextConfig", "Qwen2_5_VLTextModel", "eager", fields=("last_hidden_state",),
                               fixed=NOCACHE, rope_parameters=MROPE, **LM, **TOKENS), ids(1, 6)),
    Case("hunyuan_vl_text", hf("HunYuanVLTextConfig", "HunYuanVLTextModel", "eager", fields=("last_hidden_state",),
                               fixed=NOCACHE, head_dim=16, rope_parameters=MROPE, **LM, **TOKENS), ids(1, 6)),
    Case("glm4v_text", hf("Glm4vTextConfig", "Glm4vTextModel", "eager", fields=("last_hidden_state",), fixed=NOCACHE,
                          rope_parameters={**MROPE, "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5}, **LM,
                          **TOKENS), ids(1, 6)),
    Case("glm4v_moe_text", hf("Glm4vMoeTextConfig", "Glm4vMoeTextModel", "eager", fields=("last_hidden_state",),
                              fixed=NOCACHE, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                              first_k_dense_replace=1, n_group=1, topk_group=1,
                              rope_parameters={**MROPE, "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5},
                              **LM, **TOKENS), ids(1, 6)),
    Case("lasr_encoder", hf("LasrEncoderConfig", "LasrEncoder", "eager", names=("input_features",),
                            fields=("last_hidden_state",), num_mel_bins=16, **{**LM, "vocab_size": DROP,
                                                                              "max_position_embeddings": DROP,
                                                                              "num_key_value_heads": 4}),
         img(1, 32, 16)),
    Case("parakeet_ctc", hf("ParakeetCTCConfig", "ParakeetForCTC", "eager", names=("input_features",), fields=("logits",),
                            vocab_size=32, encoder_config=dict(num_mel_bins=16, subsampling_conv_channels=16,
                                                               hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                               intermediate_size=128, num_key_value_heads=4)),
         img(1, 32, 16)),
    Case("siglip2_vision", hf("Siglip2VisionConfig", "Siglip2VisionModel", "eager",
                              names=("pixel_values", "pixel_attention_mask", "spatial_shapes"),
                              fields=("last_hidden_state",), **{**V, "image_size": DROP, "patch_size": 4, "num_patches": 16}),
         lambda g, dev, dt: (torch.randn(1, 16, 48, generator=g, device=dev).to(dt),
                             torch.ones(1, 16, dtype=torch.long, device=dev), torch.tensor([[4, 4]], device=dev))),
    Case("speecht5_hifigan", lambda: hf_model("SpeechT5HifiGanConfig", "SpeechT5HifiGan", "eager", model_in_dim=16,
                                              upsample_initial_channel=32, upsample_rates=[2, 2],
                                              upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3],
                                              resblock_dilation_sizes=[[1, 3]]), img(1, 10, 16)),
    Case("ssd300_vgg16_head", tv_det("ssd300_vgg16"), IMG),  # (resized to 300 x 300 inside)
    Case("fasterrcnn_r50_head", tv_det("fasterrcnn_resnet50_fpn", min_size=64, max_size=64), IMG),
    Case("retinanet_v2_head", tv_det("retinanet_resnet50_fpn_v2", min_size=64, max_size=64), IMG),
    Case("vgg13_bn", tv("vgg13_bn"), img(1, 3, 32, 32)),
    # session 40 (CPU: all bitwise on 1 stream and "auto"): task heads (sequence / token classification, question
    # answering, masked LM, multiple choice, pre-training, image classification, semantic segmentation, CTC, audio
    # classification, x-vectors), whole dual encoders and vision-language models, model types the top-level package
    # does not name; then flex_attention, torch.vmap, parametrizations, reuse and tied weights (sweep_blocks.py)
    Case("bert_seqcls", hf("BertConfig", "BertForSequenceClassification", "sdpa", names=("input_ids", "attention_mask"),
                           **BERT_HEAD), ids_mask(2, 6)),
    Case("bert_tokcls", hf("BertConfig", "BertForTokenClassification", "eager", **BERT_HEAD), ids(2, 6)),
    Case("bert_qa", hf("BertConfig", "BertForQuestionAnswering", "sdpa", fields=QA, **{**BERT_HEAD, "num_labels": 2}),
         ids(2, 6)),
    Case("bert_mlm", hf("BertConfig", "BertForMaskedLM", "sdpa", **BERT_HEAD), ids(2, 6)),
    Case("bert_multiple_choice", hf("BertConfig", "BertForMultipleChoice", "sdpa", **BERT_HEAD), choice_ids(2, 3, 5)),
    Case("bert_pretraining", hf("BertConfig", "BertForPreTraining", "sdpa",
                                fields=("prediction_logits", "seq_relationship_logits"), **BERT_HEAD), ids(2, 6)),
    Case("roberta_mlm", hf("RobertaConfig", "RobertaForMaskedLM", "sdpa", max_position_embeddings=130, **BERT_HEAD),
         ids(1, 6)),
    Case("distilbert_qa", hf("DistilBertConfig", "DistilBertForQuestionAnswering", "sdpa", fields=QA, dim=64,
                             n_layers=2, n_heads=4, hidden_dim=128, vocab_size=128), ids(2, 6)),
    Case("deberta_v2_seqcls", hf("DebertaV2Config", "DebertaV2ForSequenceClassification", "eager", **BERT_HEAD),
         ids(2, 6)),
    Case("albert_mlm", hf("AlbertConfig", "AlbertForMaskedLM", "eager", embedding_size=32, **BERT_HEAD), ids(2, 6)),
    Case("electra_pretraining", hf("ElectraConfig", "ElectraForPreTraining", "eager", embedding_size=32, **BERT_HEAD),
         ids(2, 6)),
    Case("modernbert_seqcls", hf("ModernBertConfig", "ModernBertForSequenceClassification", "sdpa",
                                 global_attn_every_n_layers=2, local_attention=4, pad_token_id=0, **BERT_HEAD),
         ids(2, 6)),
    Case("xlnet_seqcls", hf("XLNetConfig", "XLNetForSequenceClassification", "eager", d_model=64, n_layer=2, n_head=4,
                            d_inner=128, vocab_size=128, num_labels=3), ids(2, 6)),
    Case("llama_seqcls", hf("LlamaConfig", "LlamaForSequenceClassification", "sdpa", fixed=NOCACHE, num_labels=3,
                            pad_token_id=0, **LM), pad_ids(2, 6)),
    Case("gemma_seqcls", hf("GemmaConfig", "GemmaForSequenceClassification", "eager", fixed=NOCACHE, num_labels=2,
                            pad_token_id=0, head_dim=16, **LM), pad_ids(2, 6)),
    Case("qwen2_tokcls", hf("Qwen2Config", "Qwen2ForTokenClassification", "sdpa", num_labels=3, **LM), ids(2, 6)),
    Case("mistral_qa", hf("MistralConfig", "MistralForQuestionAnswering", "sdpa", fields=QA, **LM), ids(2, 6)),
    Case("llama_padded", hf("LlamaConfig", "LlamaForCausalLM", "sdpa", names=("input_ids", "attention_mask"),
                            fixed=NOCACHE, **LM), ids_mask(2, 8)),
    Case("gpt2_seqcls", hf("GPT2Config", "GPT2ForSequenceClassification", "sdpa", fixed=NOCACHE, n_embd=64, n_layer=2,
                           n_head=4, vocab_size=128, n_positions=64, num_labels=3, pad_token_id=0), pad_ids(2, 6)),
    Case("gpt2_double_heads", hf("GPT2Config", "GPT2DoubleHeadsModel", "eager", fields=("logits", "mc_logits"),
                                 fixed=NOCACHE, n_embd=64, n_layer=2, n_head=4, vocab_size=128, n_positions=64),
         choice_ids(2, 3, 5)),
    Case("t5_qa", hf("T5Config", "T5ForQuestionAnswering", "eager", fields=QA, names=("input_ids", "decoder_input_ids"),
                     vocab_size=128, **T5S), ids(2, 6, 4)),
    Case("vit_imgcls", vision("ViTConfig", "ViTForImageClassification", fields=("logits",), num_labels=3),
         img(2, 3, 32, 32)),
    Case("deit_teacher", vision("DeiTConfig", "DeiTForImageClassificationWithTeacher",
                                fields=("logits", "cls_logits", "distillation_logits"), num_labels=3), img(2, 3, 32, 32)),
    Case("vit_mim", vision("ViTConfig", "ViTForMaskedImageModeling", fields=("reconstruction",), encoder_stride=8),
         img(1, 3, 32, 32)),
    Case("dinov2_imgcls", vision("Dinov2Config", "Dinov2ForImageClassification", fields=("logits",), num_labels=3),
         img(1, 3, 32, 32)),
    Case("convnext_imgcls", pixels("ConvNextConfig", "ConvNextForImageClassification", ("logits",),
                                   hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_labels=3), IMG),
    Case("swin_imgcls", pixels("SwinConfig", "SwinForImageClassification", ("logits",), image_size=32, patch_size=2,
                               embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4, num_labels=3),
         img(1, 3, 32, 32)),
    Case("resnet_imgcls", pixels("ResNetConfig", "ResNetForImageClassification", ("logits",), embedding_size=16,
                                 hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_labels=3), IMG),
    Case("segformer_imgcls", pixels("SegformerConfig", "SegformerForImageClassification", ("logits",),
                                    num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32],
                                    patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                                    num_labels=3), IMG),
    Case("mobilevit_semseg", pixels("MobileViTConfig", "MobileViTForSemanticSegmentation", ("logits",), image_size=64,
                                    hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                                    aspp_out_channels=16, num_labels=3), IMG),
    Case("dpt_semseg", hf("DPTConfig", "DPTForSemanticSegmentation", "eager", names=("pixel_values",), fields=("logits",),
                          hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                          image_size=32, patch_size=8, backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32],
                          reassemble_factors=[2, 1], fusion_hidden_size=16, head_in_index=-1, num_labels=3),
         img(1, 3, 32, 32)),
    Case("wav2vec2_ctc", hf("Wav2Vec2Config", "Wav2Vec2ForCTC", "eager", names=("input_values",), vocab_size=32,
                            **AUDIO), img(2, 400)),
    Case("wav2vec2_seqcls", hf("Wav2Vec2Config", "Wav2Vec2ForSequenceClassification", "eager",
                               names=("input_values", "attention_mask"), classifier_proj_size=16,
                               feat_extract_norm="layer", num_labels=3, **AUDIO), audio_mask(2, 400)),
    Case("wav2vec2_xvector", hf("Wav2Vec2Config", "Wav2Vec2ForXVector", "eager", names=("input_values",),
                                fields=("logits", "embeddings"), tdnn_dim=(16, 16, 32), tdnn_kernel=(3, 3, 1),
                                tdnn_dilation=(1, 2, 1), xvector_output_dim=16, num_labels=3, **AUDIO), img(2, 800)),
    Case("wav2vec2_framecls", hf("Wav2Vec2Config", "Wav2Vec2ForAudioFrameClassification", "eager",
                                 names=("input_values",), num_labels=3, **AUDIO), img(2, 400)),
    Case("hubert_ctc", hf("HubertConfig", "HubertForCTC", "eager", names=("input_values",), vocab_size=32, **AUDIO),
         img(1, 400)),
    Case("whisper_full", hf("WhisperConfig", "WhisperForConditionalGeneration", "sdpa",
                            names=("input_features", "decoder_input_ids"), fixed=NOCACHE, num_mel_bins=16,
                            max_source_positions=32, max_target_positions=32, vocab_size=128,
                            decoder_start_token_id=1, **BART, **TOKENS),
         lambda g, dev, dt: (torch.randn(1, 16, 64, generator=g, device=dev).to(dt),
                             torch.randint(0, 128, (1, 5), generator=g, device=dev))),
    Case("whisper_audiocls", hf("WhisperConfig", "WhisperForAudioClassification", "sdpa", names=("input_features",),
                                num_mel_bins=16, max_source_positions=32, vocab_size=128, classifier_proj_size=16,
                                num_labels=3, **BART, **TOKENS), img(1, 16, 64)),
    Case("clip_full", hf("CLIPConfig", "CLIPModel", "sdpa", names=("input_ids", "pixel_values"),
                         fields=("logits_per_image", "logits_per_text", "text_embeds", "image_embeds"), projection_dim=32,
                         text_config=TEXT_TOWER, vision_config=V_SMALL), text_image(2, 6, 32)),
    Case("siglip_full", hf("SiglipConfig", "SiglipModel", "sdpa", names=("input_ids", "pixel_values"),
                           fields=("logits_per_image", "logits_per_text"), text_config=TEXT_TOWER,
                           vision_config=V), text_image(2, 6, 32)),
    Case("llava_full", hf("LlavaConfig", "LlavaForConditionalGeneration", "sdpa", names=("input_ids", "pixel_values"),
                          fixed=NOCACHE, image_token_id=100, projector_hidden_act="gelu", vision_feature_layer=-1,
                          text_config={"model_type": "llama", **VLM_TEXT},
                          vision_config={"model_type": "clip_vision_model", **V_SMALL}), image_prompt(16, 4, 100, 32)),
    Case("paligemma_full", hf("PaliGemmaConfig", "PaliGemmaForConditionalGeneration", "eager",
                              names=("input_ids", "pixel_values"), fixed=NOCACHE, image_token_id=100, projection_dim=64,
                              text_config={"model_type": "gemma", "head_dim": 16, **VLM_TEXT},
                              vision_config={"model_type": "siglip_vision_model", **V_SMALL}),
         image_prompt(16, 4, 100, 32)),
    Case("gemma3_vlm", hf("Gemma3Config", "Gemma3ForConditionalGeneration", "eager", names=("input_ids", "pixel_values"),
                          fixed=NOCACHE, image_token_id=100, mm_tokens_per_image=4, boi_token_index=101,
                          eoi_token_index=102, text_config={"model_type": "gemma3_text", "head_dim": 16,
                                                            "sliding_window": 4, **VLM_TEXT},
                          vision_config={"model_type": "siglip_vision_model", **V_SMALL}), image_prompt(4, 4, 100, 32)),
    Case("blip2_full", hf("Blip2Config", "Blip2ForConditionalGeneration", "eager", names=("pixel_values", "input_ids"),
                          fixed=NOCACHE, num_query_tokens=4, image_token_index=100, vision_config=V_SMALL,
                          text_config={"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 4, "ffn_dim": 128, "vocab_size": 128,
                                       "word_embed_proj_dim": 64, "max_position_embeddings": 64, **TOKENS},
                          qformer_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                          "intermediate_size": 64, "encoder_hidden_size": 32, "vocab_size": 128,
                                          "cross_attention_frequency": 1}),
         lambda g, dev, dt: image_prompt(4, 4, 100, 32)(g, dev, dt)[::-1]),
    Case("git_full", hf("GitConfig", "GitForCausalLM", "eager", names=("input_ids", "pixel_values"), hidden_size=64,
                        num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=128,
                        max_position_embeddings=64, vision_config=V_SMALL, **TOKENS), text_image(1, 6, 32)),
    Case("kosmos2_full", hf("Kosmos2Config", "Kosmos2ForConditionalGeneration", "eager",
                            names=("pixel_values", "input_ids", "image_embeds_position_mask"), latent_query_num=4,
                            text_config=dict(embed_dim=64, layers=2, attention_heads=4, ffn_dim=128, vocab_size=128,
                                             max_position_embeddings=64, **TOKENS), vision_config=V_SMALL),
         lambda g, dev, dt: (torch.randn(1, 3, 32, 32, generator=g, device=dev).to(dt),
                             torch.randint(3, 90, (1, 8), generator=g, device=dev),
                             torch.tensor([[0, 1, 1, 1, 1, 0, 0, 0]], device=dev, dtype=torch.bool))),
    Case("fuyu", hf("FuyuConfig", "FuyuForCausalLM", "eager", fixed=NOCACHE, hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=128, vocab_size=128, max_position_embeddings=64,
                    patch_size=8, text_config={"model_type": "persimmon", "hidden_size": 64, "num_hidden_layers": 2,
                                               "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 128},
                    **TOKENS), ids(1, 6)),
    Case("sam_full", hf("SamConfig", "SamModel", "eager", names=("pixel_values", "input_points"),
                        fields=("iou_scores", "pred_masks"),
                        vision_config=dict(hidden_size=64, output_channels=32, num_hidden_layers=2, num_attention_heads=4,
                                           image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1],
                                           mlp_dim=128, num_pos_feats=16),
                        prompt_encoder_config=dict(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=4),
                        mask_decoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_dim=64,
                                                 iou_head_hidden_dim=32)),
         lambda g, dev, dt: (torch.randn(1, 3, 64, 64, generator=g, device=dev).to(dt),
                             (torch.rand(1, 1, 2, 2, generator=g, device=dev) * 64).to(dt))),
    Case("prompt_depth_anything", hf("PromptDepthAnythingConfig", "PromptDepthAnythingForDepthEstimation", "eager",
                                     names=("pixel_values", "prompt_depth"), fields=("predicted_depth",),
                                     reassemble_hidden_size=64, neck_hidden_sizes=[16, 32, 48, 64],
                                     fusion_hidden_size=16, head_hidden_size=8, patch_size=8,
                                     backbone_config={"model_type": "dinov2", "hidden_size": 64,
                                                      "num_hidden_layers": 4, "num_attention_heads": 4,
                                                      "intermediate_size": 128, "image_size": 32, "patch_size": 8,
                                                      "out_indices": [1, 2, 3, 4], "reshape_hidden_states": False}),
         lambda g, dev, dt: (torch.randn(1, 3, 32, 32, generator=g, device=dev).to(dt),
                             torch.rand(1, 1, 16, 16, generator=g, device=dev).to(dt))),
    Case("beam", auto_causal("beam", **MOE_AUTO), ids(1, 6)),
    Case("exaone", auto_causal("exaone", **MOE_AUTO), ids(1, 6)),
    Case("gemma4_unified_text", auto_causal("gemma4_unified_text", **MOE_AUTO), ids(1, 6)),
    Case("inkling2_loop_text", auto_causal("inkling2_loop_text", **MOE_AUTO), ids(1, 6)),
    Case("internlm3", auto_causal("internlm3", **MOE_AUTO), ids(1, 6)),
    Case("iquestcoder", auto_causal("iquestcoder", **MOE_AUTO), ids(1, 6)),
    Case("moshi", auto_causal("moshi", **MOE_AUTO), ids(1, 6)),
    Case("sarvam_moe", auto_causal("sarvam_moe", **MOE_AUTO), ids(1, 6)),
    Case("sarvam_mla", auto_causal("sarvam_mla", **MLA_AUTO), ids(1, 6)),
    Case("axk1", auto_causal("axk1", **MLA_AUTO), ids(1, 6)),
    Case("axk2", auto_causal("axk2", **MLA_AUTO), ids(1, 6)),
    # round 58: model types the list lacked (tiny, random weights, eager attention; all bitwise on a CPU, s1 and s3)
    Case("ergo", auto_causal("ergo", **MOE_AUTO), ids(1, 6)),
    Case("minicpm5_moe", auto_causal("minicpm5_moe", **MOE_AUTO), ids(1, 6)),
    Case("param2moe", auto_causal("param2moe", **MOE_AUTO), ids(1, 6)),
    Case("granite_docling_text", tiny("granite_docling_text", layer_types=None), ids(1, 6)),
    Case("molmo2_text", tiny("molmo2_text", layer_types=None), ids(1, 6)),
    Case("lxmert", tiny("lxmert", names=("input_ids", "visual_feats", "visual_pos"), fields=("language_output",)),
         lambda g, dev, dt: (torch.randint(3, 128, (1, 6), generator=g, device=dev),
                             torch.randn(1, 4, 2048, generator=g, device=dev).to(dt),
                             torch.rand(1, 4, 4, generator=g, device=dev).to(dt))),
    Case("timesfm2_5", tiny("timesfm2_5", names=("past_values",)), tensors((1, 64))),
    Case("radio", tiny("radio", names=("pixel_values",)), IMG),
    Case("seggpt", tiny("seggpt", names=("pixel_values", "prompt_pixel_values", "prompt_masks"), image_size=[32, 16],
                        patch_size=8), tensors((1, 3, 16, 16), (1, 3, 16, 16), (1, 3, 16, 16))),
    *[Case(name, tiny(mt, cls, **TXT58), ids(1, 6)) for name, mt, cls in [
        ("aimv2_text", "aimv2_text_model", "Aimv2TextModel"), ("align_text", "align_text_model", "AlignTextModel"),
        ("blip_text", "blip_text_model", "BlipTextModel"), ("clipseg_text", "clipseg_text_model", "CLIPSegTextModel"),
        ("owlv2_text", "owlv2_text_model", "Owlv2TextModel"), ("siglip2_text", "siglip2_text_model", "Siglip2TextModel"),
        ("xclip_text", "xclip_text_model", "XCLIPTextModel"), ("flava_text", "flava_text_model", "FlavaTextModel")]],
    *[Case(name, tiny(mt, cls, **VIS58), img(1, 3, 32, 32)) for name, mt, cls in [
        ("idefics3_vision", "idefics3_vision", "AutoModel"), ("smolvlm_vision", "smolvlm_vision", "AutoModel"),
        ("instructblip_vision", "instructblip_vision_model", "InstructBlipVisionModel"),
        ("janus_vision", "janus_vision_model", "JanusVisionModel")]],
    Case("univnet", tiny("univnet", names=("input_features", "noise_sequence"), fields=("waveforms",),
                         model_in_channels=8, model_hidden_channels=8, num_mel_bins=8, resblock_stride_sizes=[2, 2],
                         resblock_kernel_sizes=[3, 3], resblock_dilation_sizes=[[1, 3], [1, 3]],
                         kernel_predictor_hidden_channels=8, kernel_predictor_num_blocks=1),
         tensors((1, 10, 8), (1, 10, 8))),   # (the noise an input: drawn inside, it is eager's only seeded alike)
    Case("bert2bert", composite("", ("BertConfig", {**BERT_DEC[1], "is_decoder": False, "add_cross_attention": False}),
                                BERT_DEC, ("input_ids", "decoder_input_ids")), ids(1, 7, 5)),
    Case("vit2gpt2", composite("Vision", ("ViTConfig", V_SMALL),
                               ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=128,
                                                   add_cross_attention=True, is_decoder=True)),
                               ("pixel_values", "decoder_input_ids")),
         lambda g, dev, dt: (torch.randn(1, 3, 32, 32, generator=g, device=dev).to(dt),
                             torch.randint(3, 128, (1, 5), generator=g, device=dev))),
    Case("wav2vec2_to_bert", composite("Speech", ("Wav2Vec2Config", AUDIO), BERT_DEC, ("inputs", "decoder_input_ids")),
         lambda g, dev, dt: (torch.randn(1, 400, generator=g, device=dev).to(dt),
                             torch.randint(3, 128, (1, 5), generator=g, device=dev))),
    *[Case(name, make, inputs) for name, make, inputs in BLOCKS58],
    # session 59 (CPU, the first run of torchvision, timm and torchaudio there): timm families, torchvision
    # variants and torchaudio models the list lacked, tiny (sweep_models59.py)
    *[Case(name, missing_as(make), inputs, mha_slow_path=name in MHA_SLOW) for name, make, inputs in MODELS59],
    # round 60: transformers model types the list lacked, tiny from their own default configs (sweep_models60.py)
    *[Case(name, make, inputs) for name, make, inputs in MODELS60],
    # round 61: transformers model types the list lacked (Qwen3.5 LMs, Llama 4, Mllama's and other text towers,
    # SAM 2 and SigLIP 2 vision; sweep_models61.py)
    *[Case(name, make, inputs) for name, make, inputs in MODELS61],
    # round 69: one or two small models of each timm family (sweep_models69.py; sweep_paths.py runs them through the
    # importer too, in bfloat16, at batch 3 and with a dynamic batch dimension)
    *[Case(name, missing_as(make), inputs) for name, make, inputs in MODELS69],
    # round 71: transformers 5.25's model types no list named (DBRX, LongCat-Flash, Kolibri, GLM-5 Next, DepthPro,
    # Sapiens 2, VideoPrism...; sweep_models71.py; sweep_paths.py runs them through the importer too)
    *[Case(name, make, inputs) for name, make, inputs in MODELS71],
    # round 75: timm families and transformers vision/audio models no list named (SAM's ViT, NaFlexViT, Hiera-Det,
    # RepVGG deployed, Mask2Former, ViTPose's experts...; sweep_models75.py)
    *[Case(name, missing_as(make), inputs) for name, make, inputs in MODELS75],
    # round 76: transformers families no list named (Bark, MusicGen-Melody, SeamlessM4T, Dia) and decoders called with
    # use_cache at its default, their returned caches compared (sweep_models76.py)
    *[Case(name, missing_as(make), inputs) for name, make, inputs in MODELS76],
    # round 60: plain-PyTorch patterns (out= variants, where with scalars, int64 index math, ...; sweep_blocks60.py)
    *[Case(name, make, inputs) for name, make, inputs in BLOCKS60],
    *[Case(name, make, inputs, dtype=torch.bfloat16) for name, make, inputs in BLOCKS60_BF16],
    # round 61: custom ops, while_loop, duplicate-index scatters, buffer-view writes, aliased outputs, ... (sweep_blocks61.py)
    *[Case(name, make, inputs) for name, make, inputs in BLOCKS61],
    # round 62: hostile Python around forward that must compile and replay as eager (sweep_blocks62.py)
    *[Case(name, make, inputs) for name, make, inputs in BLOCKS62],
    *[Case(name, make, inputs, mha_slow_path=name in MHA_FUSED) for name, make, inputs in BLOCKS],
    *[Case(name, make, inputs) for name, make, inputs in BLOCKS40],
]
CASES += SERVING
_by_name = {c.name: c for c in CASES}
CASES += [replace(_by_name[n], name=f"{n}_{tag}", dtype=dt, cuda_only=True)  # half-precision variants
          for n, tag, dt in [("llama", "bf16", torch.bfloat16), ("qwen2_moe", "bf16", torch.bfloat16),
                             ("mixtral", "bf16", torch.bfloat16), ("gpt2", "f16", torch.float16),
                             ("resnet18", "f16", torch.float16), ("llama_kv_decode", "bf16", torch.bfloat16),
                             ("mixtral_kv_prefill", "bf16", torch.bfloat16)]]


# ---------------------------------------------------------------- comparing

def leaves(x):
    return pytree.tree_leaves(x.to_tuple() if hasattr(x, "to_tuple") else x)


def compare(out, ref, dtype) -> tuple[str, float]:
    """("bitwise" | "close" | "WRONG(...)", max abs difference) of one call's outputs."""
    rtol, atol = (1e-4, 1e-5) if dtype == torch.float32 else (1e-2, 1e-2)
    fo, fr = leaves(out), leaves(ref)
    if len(fo) != len(fr):
        return f"WRONG(structure: {len(fo)} leaves vs {len(fr)})", float("nan")
    verdict, worst = "bitwise", 0.0
    for i, (a, b) in enumerate(zip(fo, fr)):
        if not isinstance(b, torch.Tensor):
            if a != b:
                return f"WRONG(leaf {i}: {a!r} vs {b!r})", float("nan")
            continue
        if not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            got = f"{tuple(a.shape)} {a.dtype}" if isinstance(a, torch.Tensor) else type(a).__name__
            return f"WRONG(leaf {i}: {got} vs {tuple(b.shape)} {b.dtype})", float("nan")
        if same_tensor_bits(a, b):   # the bits: NaN payloads and signed zeros too (values called -0.0 and 0.0 equal)
            continue
        diff = (a.double() - b.double()).abs().nan_to_num(nan=float("inf")).max().item()
        worst = max(worst, diff)
        try:
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True)
            verdict = "close"
        except AssertionError:
            nans = int(a.isnan().sum()) - int(b.isnan().sum()) if a.is_floating_point() else 0
            return (f"WRONG(leaf {i} {tuple(a.shape)}: maxabs={diff:.3g}, "
                    f"{int((a != b).sum())}/{a.numel()} differ, {nans} extra NaN)"), diff
    return verdict, worst


# ---------------------------------------------------------------- running

def cuda_broken(exc, dev) -> bool:
    """Whether ``exc`` left the CUDA context unusable (a sticky error: every later call fails too)."""
    if dev.type != "cuda":
        return False
    if any(s in str(exc) for s in STICKY):
        return True
    for _ in range(2):  # a non-sticky error (a failed capture) may be reported once more, then cleared
        try:
            torch.cuda.synchronize()
            return torch.ones(4, device=dev).sum().item() != 4.0
        except Exception:
            pass
    return True


def short(exc) -> str:
    """The exception on one line, whole: a refusal's advice comes at its end (round 66's JSON cut it at 150
    characters and kept the line, lost the remedy); ``cut`` shortens it for the printed table only."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def cut(verdict: str, width: int = 160) -> str:
    """A verdict shortened for the printed table (the JSON keeps it whole)."""
    return verdict if len(verdict) <= width else verdict[:width - 3] + "..."


def free(dev):
    """The last model's memory back before the next one's: on a GPU, where a cycle holding CUDA tensors keeps their
    blocks from the caching allocator until a full collection finds it. Not on the CPU: there a full collection
    (0.28 s a call once torch and transformers are loaded) frees nothing the next model needs, since freed host
    memory is reused by the allocator whenever the collector gets to it."""
    if dev.type == "cuda":
        gc.collect()
        try:  # (a broken context raises here again: the caller reports the first error)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        except Exception:
            pass


@contextlib.contextmanager
def mha_fastpath(on: bool):
    """``torch.backends.mha``'s fast path on or off for a block, put back after."""
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(on)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


def run_mode(model, program, x0, calls, refs, case, dev, streams, graph) -> dict:
    """Compile ``program`` in one mode and compare each call with eager's outputs for the same inputs."""
    c = aten_compile(model, x0, streams=streams, cuda_graph=graph, poison=True, device=dev, program=program)
    info = {"streams": c.plan.streams, "copies": c.stats.copies_per_call, "arena": c.arena_bytes}
    verdict, worst = "bitwise", 0.0
    for x, ref in zip(calls, refs):
        # under the modes eager's reference ran in (CPU ``lstm`` follows the grad mode, round 52: a grad-mode call
        # was 1.2e-07 off the no_grad reference of nn_rnns); a serving step writes its cache inputs: each mode gets
        # them unwritten
        with torch.no_grad(), mha_fastpath(not case.mha_slow_path):
            out = c(*[t.clone() for t in x])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        v, d = compare(out, ref, case.dtype)
        worst = max(worst, d) if d == d else worst
        if v.startswith("WRONG"):
            verdict = v
            break
        verdict = "close" if v == "close" else verdict
    del c
    return {"verdict": f"close(maxabs={worst:.3g})" if verdict == "close" else verdict, "maxabs": worst, **info}


def run_case(case, dev, modes, emit) -> None:
    """One model in every mode. Raises only what broke the CUDA context (or a bug of this script's)."""
    t0 = time.time()
    torch.manual_seed(0)
    try:
        model = case.make().eval().to(device=dev, dtype=case.dtype)
    except Missing as exc:
        return emit(case.name, "-", f"SKIP-MISSING({exc})", t0)
    except Exception as exc:
        return emit(case.name, "-", f"SKIP-BUILD({short(exc)})", t0)
    g = torch.Generator(device=dev).manual_seed(1)
    x0 = case.inputs(g, dev, case.dtype)                               # compile's example inputs
    calls = [case.inputs(g, dev, case.dtype) for _ in range(2)]        # fresh inputs, same shapes
    try:
        with torch.no_grad(), mha_fastpath(not case.mha_slow_path):
            model(*x0)
            refs = [model(*[t.clone() for t in x]) for x in calls]
            again = model(*[t.clone() for t in calls[0]])
        eager_det = compare(again, refs[0], case.dtype)[0] == "bitwise"
    except Exception as exc:
        if cuda_broken(exc, dev):
            raise
        return emit(case.name, "-", f"SKIP-EAGER({short(exc)})", t0)
    if not eager_det:
        print(f"  note: {case.name}: eager itself is not bitwise reproducible on the same inputs", flush=True)
    t1 = time.time()
    try:
        program = load_program(model, x0)
    except Exception as exc:
        if cuda_broken(exc, dev):
            raise
        # the importer turns torch.export's own failures into GraphErrors that say so
        by_torch = isinstance(exc, GraphError) and str(exc).startswith(("torch.export failed", "decomposing"))
        return emit(case.name, "export", f"{'EXPORT' if by_torch else 'ERROR'}({short(exc)})", t1)
    print(f"  {case.name}: exported, {len(program.graph.nodes)} nodes ({time.time() - t1:.1f}s)", flush=True)
    for mode, streams, graph in modes:
        t = time.time()
        try:
            r = run_mode(model, program, x0, calls, refs, case, dev, streams, graph)
            emit(case.name, mode, r.pop("verdict"), t, eager_det=eager_det, **r)
        except Exception as exc:
            if cuda_broken(exc, dev):
                raise
            if not (graph and "captur" in str(exc).lower()):  # the executor's error, or torch's capture_end's
                emit(case.name, mode, f"ERROR({short(exc)})", t)
                continue
            emit(case.name, mode, f"NOCAPTURE({short(exc)})", t)
            free(dev)
            t, mode = time.time(), mode.replace("+graph", "")
            try:  # the same streams without the graph
                r = run_mode(model, program, x0, calls, refs, case, dev, streams, False)
                emit(case.name, mode, r.pop("verdict"), t, eager_det=eager_det, **r)
            except Exception as exc2:
                if cuda_broken(exc2, dev):
                    raise
                emit(case.name, mode, f"ERROR({short(exc2)})", t)
        finally:
            free(dev)


def _budget(text: str) -> float:
    """Seconds as ``memplan`` reads a number (``float()`` also took '１', ' 5' and '1_0')."""
    try:
        v = strict_real(text, "a number")
    except argparse.ArgumentTypeError:
        v = float("nan")
    if not 0 < v < 1e7:   # nan and inf fail too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 1e7)")
    return v


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m runtime.aten.sweep", description=__doc__.splitlines()[0],
                       who="runtime.aten.sweep")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--only", default=None, help="comma-separated model names (see --list), each at most once (a "
                    "repeated name is refused); cuda-only ones on --device cpu are reported SKIP-DEVICE, not run")
    ap.add_argument("--budget", type=_budget, default=240.0, help="seconds; no model starts after that")
    ap.add_argument("--out", default="", help="write every result here as JSON (atomically)")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(c.name + ("  (cuda only)" if c.cuda_only else "") for c in CASES))
        return 0
    try:
        dev = check_device(torch, a.device)
    except AtenExecutorError as exc:
        print_error(f"--device: {exc}", "runtime.aten.sweep")
        return 2
    if a.out:
        try:   # before the models run (minutes): a missing directory lost every result at the end
            out_path(a.out)
        except ToolArgError as exc:
            print_error(str(exc), "runtime.aten.sweep")
            return 2
    if dev.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        modes = [("s1", 1, False), ("s3+graph", 3, True), ("auto+graph", "auto", True)]
    else:
        modes = [("s1", 1, False), ("s3", 3, False)]
    cases = [c for c in CASES if dev.type == "cuda" or not c.cuda_only]
    if a.only is not None:   # ("--only ''" read as no --only: every model of the list, hours, for an empty value)
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        if not names:   # "--only ," ran no model and reported an empty success
            print(f"python -m runtime.aten.sweep: --only {a.only!r}: no model names (see --list)", file=sys.stderr)
            return 2
        # (a repeated name ran once, silently: "--only a,a" reported one model where two runs were asked for)
        twice = next((n for k, n in enumerate(names) if n in names[:k]), None)
        if twice is not None:
            print(f"python -m runtime.aten.sweep: --only {a.only!r}: model {twice!r} named twice (each at most once)",
                  file=sys.stderr)
            return 2
        unknown = sorted(set(names) - set(_by_name) - {c.name for c in CASES})
        if unknown:
            print(f"python -m runtime.aten.sweep: --only: unknown models {', '.join(unknown)} (see --list)",
                  file=sys.stderr)
            return 2
        cases = [c for c in CASES if c.name in names]
    versions = {}
    for package in ("torchvision", "transformers", "timm"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = "missing"
    if versions["transformers"] != "missing":
        sys.modules["transformers"].logging.set_verbosity_error()
    where = f"{dev} ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else str(dev)
    print(f"torch {torch.__version__}, " + ", ".join(f"{k} {v}" for k, v in versions.items())
          + f"; {where}; {len(cases)} models; budget {a.budget:.0f}s", flush=True)
    results: list[dict] = []

    def emit(name, mode, verdict, t, **extra):
        secs = time.time() - t
        results.append({"model": name, "mode": mode, "verdict": verdict, "seconds": round(secs, 2), **extra})
        more = f"  [streams {extra['streams']}, copies {extra['copies']}]" if "streams" in extra else ""
        print(f"{name:24s} {mode:10s} {cut(verdict)}  {secs:.1f}s{more}", flush=True)

    start, status, fatal = time.time(), 0, ""
    for k, case in enumerate(cases):
        if time.time() - start > a.budget:
            rest = [c.name for c in cases[k:]]
            results += [{"model": n, "mode": "-", "verdict": "SKIPPED-BUDGET", "seconds": 0} for n in rest]
            print(f"BUDGET spent ({a.budget:.0f}s): {len(rest)} models not started: {','.join(rest)}", flush=True)
            break
        if case.cuda_only and dev.type != "cuda":   # (named by --only: it ran on the CPU, as no other entry may)
            emit(case.name, "-", f"SKIP-DEVICE(cuda only; this run is on {dev.type})", time.time())
            continue
        try:
            run_case(case, dev, modes, emit)
        except Exception as exc:
            if not cuda_broken(exc, dev):  # a bug of this script's: report it and go on
                emit(case.name, "-", f"ERROR({short(exc)})", time.time())
                continue
            rest = [c.name for c in cases[k + 1:]]
            results.append({"model": case.name, "mode": "-", "verdict": f"CUDA-FATAL({short(exc)})", "seconds": 0})
            results += [{"model": n, "mode": "-", "verdict": "NOT-RUN", "seconds": 0} for n in rest]
            fatal = (f"CUDA-FATAL in {case.name}: {short(exc)}\nThe CUDA context is broken: {case.name} did not "
                     f"finish and {len(rest)} models did not run. Rerun them with:\n  --only {','.join(rest) or '-'}")
            print(fatal, flush=True)
            status = 3
            break
        free(dev)
    total = time.time() - start
    counts: dict[str, int] = {}
    for r in results:
        counts[r["verdict"].split("(")[0]] = counts.get(r["verdict"].split("(")[0], 0) + 1
    print(f"\nSUMMARY ({total:.0f}s): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for r in results:
        if r["verdict"] != "bitwise":
            print(f"  {r['model']:24s} {r['mode']:10s} {cut(r['verdict'])}")
    if a.out:
        atomic_write_text(a.out, results_json({"device": str(dev), "torch": torch.__version__, **versions,
                                             "seconds": round(total, 1), "counts": counts, "fatal": fatal,
                                             "results": results}, indent=1) + "\n")
        print(f"wrote {a.out}")
    if fatal:
        print(fatal)
    return status


if __name__ == "__main__":
    from ..tool_args import run_main

    raise SystemExit(run_main(main, "runtime.aten.sweep"))
