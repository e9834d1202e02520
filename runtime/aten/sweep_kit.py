"""The pieces ``runtime.aten.sweep``'s model lists are built from: a case, input makers, the wrapper that turns a
model's output fields into tensors, and the builders of ``transformers`` / torchvision / timm models that report an
absent package or model class as ``Missing`` (SKIP-MISSING).

Why a module of its own: the sweep's later model lists (``sweep_models60``, ``sweep_models61``) build on these, and
``sweep`` imports those lists; with the pieces in ``sweep`` itself each list had to import ``sweep`` back at call
time, an import circle. Now the lists and ``sweep`` both import from here and nothing imports back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class Missing(Exception):
    """A package, or a model class, this environment lacks."""


# ---------------------------------------------------------------- models

@dataclass
class Case:
    name: str
    make: Callable[[], nn.Module]             # built on the CPU, float32
    inputs: Callable[[Any, Any, Any], tuple]  # (generator, device, dtype) -> positional args
    dtype: Any = torch.float32
    cuda_only: bool = False
    #: eager's reference with ``nn.MultiheadAttention``'s eval fast path off. Why: that path runs fused kernels
    #: torch.export never traces (it traces the standard path), so compiled calls equal the exported program and
    #: eager without it bitwise, and on CUDA differ from the fused kernels by up to ~3e-4 (H200, session 40)
    mha_slow_path: bool = False


def img(*shape):
    return lambda g, dev, dt: (torch.randn(*shape, generator=g, device=dev).to(dt),)


def ids(b, *lengths, vocab=128):  # one id tensor per length (encoder ids, decoder ids)
    return lambda g, dev, dt: tuple(torch.randint(0, vocab, (b, t), generator=g, device=dev) for t in lengths)


def ids_mask(b, t, vocab=128):
    def f(g, dev, dt):
        mask = torch.ones(b, t, dtype=torch.long, device=dev)
        mask[0, t - 2:] = 0  # the first row right-padded
        return torch.randint(0, vocab, (b, t), generator=g, device=dev), mask
    return f


class Out(nn.Module):
    """``m(**dict(zip(names, inputs)), **fixed)``'s output fields ``fields``: tensors in, tensors out."""

    def __init__(self, m, names, fields, **fixed):
        super().__init__()
        self.m, self.names, self.fields, self.fixed = m, names, fields, fixed

    def forward(self, *xs):
        out = self.m(**dict(zip(self.names, xs)), **self.fixed)
        got = tuple(getattr(out, f) for f in self.fields)
        return got[0] if len(got) == 1 else got


def need(package):
    try:
        return __import__(package)
    except ImportError as exc:
        raise Missing(f"{package}: {exc}") from None


def tv(fn, **kw):
    def make():
        need("torchvision")
        from torchvision import models
        for mod in (models, models.segmentation, models.video, models.optical_flow):
            if hasattr(mod, fn):
                return getattr(mod, fn)(weights=None, **kw)
        raise Missing(f"torchvision has no {fn}")
    return make


class Call(nn.Module):
    """``m(*inputs, **fixed)``: a forward argument that is no tensor (RAFT's ``num_flow_updates``) fixed."""

    def __init__(self, m, **fixed):
        super().__init__()
        self.m, self.fixed = m, fixed

    def forward(self, *xs):
        return self.m(*xs, **self.fixed)


def missing_as(make):
    """``make`` with an ImportError (its package absent) raised as Missing: reported SKIP-MISSING."""
    def built():
        try:
            return make()
        except ImportError as exc:
            raise Missing(str(exc)) from None
    return built


def timm_model(name, **kw):
    return lambda: need("timm").create_model(name, pretrained=False, **kw)


def hf_model(cfg_cls, model_cls, attn, **cfg):
    """A ``transformers`` model of ``model_cls`` on a ``cfg_cls(**cfg)`` with attention ``attn``, random weights."""
    tf = need("transformers")
    for name in (cfg_cls, model_cls):
        if not hasattr(tf, name):
            raise Missing(f"transformers {tf.__version__} has no {name}")
    c = getattr(tf, cfg_cls)(**{k: v for k, v in cfg.items() if v is not DROP})
    cls = getattr(tf, model_cls)
    try:
        return cls._from_config(c, attn_implementation=attn)
    except Exception:
        c._attn_implementation = attn
        return cls(c)


def hf(cfg_cls, model_cls, attn, names=("input_ids",), fields=("logits",), sub=None, fixed=None, **cfg):
    def make():
        m = hf_model(cfg_cls, model_cls, attn, **cfg)
        return Out((getattr(m, sub) if sub else m).eval(), names, fields, **(fixed or {}))
    return make


DROP = object()  # a key of LM this config does not take


#: the sizes ``tiny`` gives every config (and sub-config) field of these names that holds an int
TINY = {"hidden_size": 64, "d_model": 64, "num_hidden_layers": 2, "num_layers": 2, "encoder_layers": 2,
        "decoder_layers": 2, "num_decoder_layers": 2, "num_attention_heads": 4, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "num_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "d_ff": 128, "vocab_size": 128, "head_dim": 16,
        "moe_intermediate_size": 32, "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4,
        "num_experts_per_tok": 2, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "decoder_start_token_id": 0, "d_kv": 16, "max_position_embeddings": 128}


def tiny_dict(d: dict, over: dict) -> dict:
    """``d`` (a config's ``to_dict()``) with ``over``'s values and ``TINY``'s sizes, nested configs too."""
    out = {}
    for k, v in d.items():
        if k in over and not isinstance(over[k], dict):
            out[k] = over[k]
        elif isinstance(v, dict):
            out[k] = tiny_dict(v, over[k] if isinstance(over.get(k), dict) else {})
        elif k in TINY and isinstance(v, int) and not isinstance(v, bool):
            out[k] = TINY[k]
        else:
            out[k] = v
    return out


def tiny(model_type, model_cls="AutoModel", names=("input_ids",), fields=("last_hidden_state",), fixed=None, **over):
    """A ``transformers`` model of ``model_type``'s default config made tiny (``TINY``, then ``over``), built with
    ``model_cls`` (an ``Auto*`` class, or a model class for a sub-config the auto classes do not map), eager
    attention. Why: many model types (sub-models of composite ones among them) take none of ``LM``'s keys as they
    are; shrinking their own defaults builds them without a config written out for each."""
    def make():
        tf = need("transformers")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        if model_type not in CONFIG_MAPPING_NAMES or not hasattr(tf, model_cls):
            raise Missing(f"transformers {tf.__version__} has no {model_type} / {model_cls}")
        base = tf.AutoConfig.for_model(model_type)
        cfg = type(base)(**{k: v for k, v in tiny_dict(base.to_dict(), over).items()
                            if k not in ("model_type", "transformers_version", "architectures")})
        cfg._attn_implementation = "eager"
        cls = getattr(tf, model_cls)
        m = cls.from_config(cfg) if model_cls.startswith("Auto") else cls._from_config(cfg)
        return Out(m.eval(), names, fields, **(fixed or {}))
    return make
