"""``runtime.aten.fastpath``: the calls of ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` where eager
takes torch's fused fast path and the program cannot.

Why: in eval mode, outside grad mode (``torch.no_grad()``, ``torch.inference_mode()``, or parameters that require
no grad) and with ``torch.backends.mha.get_fastpath_enabled()`` on, eager runs these layers through one fused kernel
(``torch._native_multi_head_attention`` / ``torch._transformer_encoder_layer_fwd``), which rounds otherwise than the
standard path; an export always traces the standard path (torch turns the fast path off while it traces), so the
executor returned other numbers than eager's with no error (round 52: 6e-8 on an ``nn.MultiheadAttention(8, 2)``,
2.4e-7 on an ``nn.TransformerEncoderLayer(8, 2, 16)``). Such a call is refused, naming the layer and how to get
eager's numbers of the standard path.

What decides the fast path is torch's own list (``MultiheadAttention.forward``, ``TransformerEncoderLayer.forward``):
what the export's call passed (batched input, self-attention ``q is k is v``, no float mask, matching dtypes) is
recorded while compile exports (``record``); what the module and the call's state hold (eval, flags, hooks, modes)
is read at each call (``fused_layer``). Under grad mode with parameters that require no grad, eager still takes it
where the query requires no grad; the check refuses there too (the program runs under ``no_grad`` and has no
gradients to give either way).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

#: torch's fused kernel, by layer class name (for the message)
FUSED = {"MultiheadAttention": "torch._native_multi_head_attention",
         "TransformerEncoderLayer": "torch._transformer_encoder_layer_fwd"}


@contextlib.contextmanager
def record(torch: Any, calls: list) -> Iterator[None]:
    """Append to ``calls`` (layer, whether only an aliased call can take it) for each layer
    (``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``, subclasses too) that the block's export called with
    arguments that let eager take the fast path: an attention given distinct query, key and value there is one
    where a call passing one tensor for several inputs can make them the same (``forward(q, k, v)`` compiled with
    three tensors, called ``m(x, x, x)``: eager's fast path, round 52b). The classes' ``forward`` is wrapped for the
    block only (put back after, whatever happens), under the importer's export lock (a reentrant one: the export
    inside takes it again): two compiles' wraps in two threads must not interleave, or the later one put the earlier
    one's wrapper back for good. (Eager calls of these layers in another thread meanwhile are recorded too: refused
    calls on the safe side, never other numbers.)"""
    from memplan.importers.torch import EXPORT_LOCK

    with EXPORT_LOCK:
        yield from _recording(torch, calls)


def _recording(torch: Any, calls: list) -> Iterator[None]:
    """``record``'s body, under the lock."""
    nn = torch.nn
    originals = {cls: cls.__dict__["forward"] for cls in (nn.MultiheadAttention, nn.TransformerEncoderLayer)}

    @functools.wraps(originals[nn.MultiheadAttention])   # (the signature export binds a root layer's call by)
    def mha(self: Any, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
            attn_mask: Any = None, *args: Any, **kwargs: Any) -> Any:
        floating = any(m is not None and torch.is_floating_point(m) for m in (attn_mask, key_padding_mask))
        if (query.dim() == 3 and not floating and self.in_proj_weight is not None and self.in_proj_bias is not None
                and query.dtype == self.in_proj_weight.dtype and query.dtype == self.in_proj_bias.dtype
                and query.shape == key.shape == value.shape and query.dtype == key.dtype == value.dtype):
            calls.append((self, not (query is key and key is value)))
        return originals[nn.MultiheadAttention](self, query, key, value, key_padding_mask, need_weights, attn_mask,
                                                *args, **kwargs)

    @functools.wraps(originals[nn.TransformerEncoderLayer])
    def layer(self: Any, src: Any, *args: Any, **kwargs: Any) -> Any:
        if src.dim() == 3:
            calls.append((self, False))
        return originals[nn.TransformerEncoderLayer](self, src, *args, **kwargs)

    nn.MultiheadAttention.forward, nn.TransformerEncoderLayer.forward = mha, layer
    try:
        yield
    finally:
        for cls, forward in originals.items():
            cls.forward = forward


def _takes_fast_path(torch: Any, m: Any) -> bool:
    """Whether eager's call of ``m`` (whose export call's arguments allowed it) takes the fast path in the current
    state: torch's conditions on the module and the modes (``MultiheadAttention.forward``,
    ``TransformerEncoderLayer.forward``)."""
    nn = torch.nn
    if m.training or torch.is_autocast_enabled():
        return False
    layer = isinstance(m, nn.TransformerEncoderLayer)
    attn = m.self_attn if layer else m
    if torch.is_grad_enabled():
        first = attn.in_proj_weight   # (the common grad-mode call is answered by it alone)
        if first is not None and first.requires_grad:
            return False
        params = (attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias)
        if layer:
            params += (m.norm1.weight, m.norm1.bias, m.norm2.weight, m.norm2.bias, m.linear1.weight,
                       m.linear1.bias, m.linear2.weight, m.linear2.bias)
        if any(p is not None and p.requires_grad for p in params):
            return False
    if (attn.num_heads % 2 != 0 or not attn.batch_first or attn.in_proj_bias is None
            or not attn._qkv_same_embed_dim):
        return False
    if not layer:
        return attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn
    return (bool(m.activation_relu_or_gelu) and m.norm1.eps == m.norm2.eps
            and not any(x._forward_hooks or x._forward_pre_hooks for x in m.modules()))


def aliased(torch: Any, args: tuple, kwargs: dict) -> bool:
    """Whether the call passes one tensor for two of its inputs (``m(x, x, x)``), containers' too."""
    ids = [id(t) for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    return len(set(ids)) < len(ids)


def fused_layer(torch: Any, root: Any, calls: tuple, args: tuple = (), kwargs: dict | None = None) -> str | None:
    """The refusal of a call (of ``args``, ``kwargs``) where eager takes the fused fast path of one of ``calls``
    (``record``'s), naming the first layer by its path in ``root``; None where none does (or
    ``torch.backends.mha``'s switch is off). A layer that only an aliased call can take it with counts where the call
    is aliased (``aliased``): the safe side, as which inputs reach its query, key and value is not followed."""
    if not calls or not torch.backends.mha.get_fastpath_enabled():
        return None
    alias = None
    for m, needs_alias in calls:
        if needs_alias:
            if alias is None:
                alias = aliased(torch, args, kwargs or {})
            if not alias:
                continue
        if _takes_fast_path(torch, m):
            path = next((name for name, x in root.named_modules(remove_duplicate=False) if x is m), None)
            kind = next(c.__name__ for c in type(m).__mro__ if c.__name__ in FUSED
                        and c.__module__.startswith("torch.nn"))
            mode = ("torch.inference_mode()" if torch.is_inference_mode_enabled() else "torch.no_grad()"
                    if not torch.is_grad_enabled() else "parameters that require no grad")
            where = repr(path) if path else "(the compiled module itself)" if path == "" else "(of the module)"
            return (f"{kind} {where} is in eval mode and this call runs under {mode}, where "
                    f"eager takes torch's fused fast path ({FUSED[kind]}), which rounds otherwise than the exported "
                    "standard path: the results would differ from eager's; for eager's numbers of the standard path "
                    "call with torch.backends.mha.set_fastpath_enabled(False) (as eager then does), or under grad "
                    "mode with parameters that require grad")
    return None
