"""The benchmark's models, built with random weights at real sizes (or tiny ones for ``--quick``).

Why its own module: building them is most of the benchmark's code and none of its measuring. LLM
steps are one-token decode steps through ``transformers``' static KV cache
(``TorchExportableModuleWithStaticCache``, the recipe transformers ships for ``torch.export``) when that
exports; otherwise a one-token forward without a cache, and the model's ``note`` says which ran. CNNs
are torchvision's Inception-v3 and GoogLeNet (``weights=None``); without torchvision (CPU smoke runs)
the test suite's Inception-style CNN (``runtime.aten.tiny_cnn``) stands in.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchModel:
    name: str
    module: Any
    args: tuple
    kwargs: dict = field(default_factory=dict)
    note: str = ""
    exported: Any = None  # the ExportedProgram, when building already exported it


def _logits_only(torch, lm):
    class LogitsOnly(torch.nn.Module):
        """A causal LM's logits for ``input_ids``, without a cache."""

        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids):
            return self.lm(input_ids=input_ids, use_cache=False).logits
    return LogitsOnly(lm)


@contextlib.contextmanager
def _defaults(torch, device, dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


LLM_SIZES = {
    # name: (config class, kwargs); real sizes (Llama-3.2-1B, Llama-3.1-8B, Qwen1.5-MoE-A2.7B with 12 layers)
    "llama-1b-decode": ("LlamaConfig", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                            num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                            head_dim=64, max_position_embeddings=4096)),
    "llama-8b-decode": ("LlamaConfig", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                            num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                            head_dim=128, max_position_embeddings=4096)),
    "qwen2-moe-decode": ("Qwen2MoeConfig", dict(hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                                                shared_expert_intermediate_size=5632, num_experts=60,
                                                num_experts_per_tok=4, num_hidden_layers=12, num_attention_heads=16,
                                                num_key_value_heads=16, vocab_size=151936,
                                                max_position_embeddings=4096)),
}
QUICK = dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, shared_expert_intermediate_size=64,
             num_experts=4, num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=256, head_dim=16)
CNNS = ("inception_v3-b1", "inception_v3-b8", "googlenet-b1", "googlenet-b8")


def build(name: str, device: str, dtype: Any, quick: bool, cache_len: int = 1024) -> BenchModel:
    import torch

    if name in LLM_SIZES:
        return _llm(torch, name, device, dtype, quick, cache_len)
    return _cnn(torch, name, device, dtype, quick)


def _llm(torch, name, device, dtype, quick, cache_len) -> BenchModel:
    import transformers as tf

    cls_name, kw = LLM_SIZES[name]
    if quick:
        kw = {k: QUICK.get(k, v) for k, v in kw.items()}
        cache_len = 32
    config = getattr(tf, cls_name)(**kw)
    model_cls = {"LlamaConfig": tf.LlamaForCausalLM, "Qwen2MoeConfig": tf.Qwen2MoeForCausalLM}[cls_name]
    torch.manual_seed(0)
    with _defaults(torch, device, dtype):
        model = model_cls(config).eval()
    pos = cache_len // 2
    try:
        from transformers.integrations.executorch import TorchExportableModuleWithStaticCache

        model.generation_config.use_cache = True
        model.generation_config.cache_implementation = "static"
        wrapper = TorchExportableModuleWithStaticCache(model, batch_size=1, max_cache_len=cache_len, device=device)
        kwargs = {"input_ids": torch.tensor([[7]], device=device), "cache_position": torch.tensor([pos], device=device)}
        ep = torch.export.export(wrapper, (), kwargs=kwargs, strict=False)
        return BenchModel(name, wrapper, (), kwargs, f"1-token decode, static KV cache of {cache_len}, position {pos}",
                          ep)
    except Exception as exc:  # the fallback is stated in the results
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        ids = torch.tensor([[7]], device=device)
        return BenchModel(name, _logits_only(torch, model), (ids,), {}, f"1-token forward WITHOUT KV cache (static cache "
                                                                 f"export failed: {why})")


def _cnn(torch, name, device, dtype, quick) -> BenchModel:
    arch, batch = name.split("-b")
    size = 299 if arch == "inception_v3" else 224
    torch.manual_seed(0)
    try:
        import torchvision
    except ImportError:
        torchvision = None
    with _defaults(torch, device, dtype):
        if torchvision is None or quick:
            from .tiny_cnn import CNN

            module, note, size = CNN().eval(), "the tests' Inception-style CNN (quick / no torchvision)", 32
        elif arch == "inception_v3":
            module = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
            note = "torchvision Inception-v3, weights=None"
        else:
            module = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).eval()
            note = "torchvision GoogLeNet, weights=None"
        x = torch.randn(int(batch), 3, size, size)
    return BenchModel(name, module, (x,), {}, note)
