"""What a torch op means to a plan beyond its value: the side results its kernel writes, and its FLOPs.

Kept apart from ``torch.py`` (which walks the exported program) because both are tables of op knowledge
that grow with the ops memplan meets, and both are read by the importer alone.
"""

from __future__ import annotations

import math
from typing import Any

_MATMUL_FIRST = {"mm", "bmm", "matmul", "linear", "_scaled_mm"}
_MATMUL_SECOND = {"addmm", "baddbmm", "addbmm", "addmv"}
_CONV = {"convolution", "conv1d", "conv2d", "conv3d", "_convolution", "cudnn_convolution"}
_ATTENTION = {"scaled_dot_product_attention", "_scaled_dot_product_efficient_attention",
              "_scaled_dot_product_flash_attention"}


def _meta_of(torch, v):
    """A meta tensor with the layout of fake tensor ``v`` (other values unchanged)."""
    if not isinstance(v, torch.Tensor):
        return v
    return torch.empty_strided(tuple(v.shape), tuple(v.stride()), dtype=v.dtype, device="meta")


def side_results(torch, op: str, n, val) -> list[tuple[str, Any]]:
    """``(role, meta tensor)`` for each side result the kernel behind ``n`` writes besides its value:
    ``max_pool2d`` runs ``max_pool2d_with_indices`` (int64 indices, laid out like the output), eval
    ``batch_norm`` with running statistics runs ``native_batch_norm`` (saved mean and inverse std, per
    channel). They become graph tensors no node reads, so the plan gives them a few bytes for an instant
    instead of the executor keeping them outside the arena. Empty for every other op, and whenever the
    kernel's value would not be laid out like ``val`` (``same_layout``: an executor then runs the op another way)."""
    base = op.split(".")[0]
    if base not in ("max_pool2d", "batch_norm") or not isinstance(val, torch.Tensor):
        return []
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        return []
    named = dict(zip((a.name for a in schema.arguments), n.args))
    named.update(n.kwargs)
    named = {k: _meta_of(torch, v.meta.get("val") if isinstance(v, torch.fx.Node) else v) for k, v in named.items()}
    try:
        if base == "max_pool2d":
            def ints(v, default):
                return [int(x) for x in v] if v else default
            o, idx = torch.ops.aten.max_pool2d_with_indices.default(
                named["self"], ints(named["kernel_size"], []), ints(named.get("stride"), []),
                ints(named.get("padding"), [0]), ints(named.get("dilation"), [1]), bool(named.get("ceil_mode", False)))
            side = [("indices", idx)]
        else:
            rm, rv = named.get("running_mean"), named.get("running_var")
            if named.get("training", True) or rm is None or rv is None:
                return []
            o, mean, invstd = torch.ops.aten.native_batch_norm.default(
                named["input"], named.get("weight"), named.get("bias"), rm, rv, False, float(named["momentum"]),
                float(named["eps"]))
            side = [("save_mean", mean), ("save_invstd", invstd)]
    except Exception:  # arguments the meta kernel refuses: no side results (the executor falls back)
        return []
    if not same_layout(o, val):
        return []
    return [(role, t) for role, t in side if t.numel() > 0]


def same_layout(a, b) -> bool:
    """Whether tensors ``a`` and ``b`` lay their elements out alike: one shape, and one stride in every dimension of
    more than one element (none matters in a tensor of no element). Why not the strides themselves: a stride of a
    size-1 dimension addresses nothing, and torch sets it freely (``x[:, None]``, a record saved or edited with
    another); ``side_results`` compared them exactly, so an eval ``batch_norm`` / ``max_pool2d`` of a batch of one
    whose record gave the batch dimension another stride lost its planned side results (the kernel wrote its saved
    statistics and indices outside the plan, round 50)."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    if any(int(d) == 0 for d in a.shape):
        return True
    return all(int(d) == 1 or int(x) == int(y) for d, x, y in zip(a.shape, a.stride(), b.stride()))




def flops(torch, op: str, n, out_vals: list) -> float:
    base = op.split(".")[0]
    out = sum(int(v.numel()) for v in out_vals if isinstance(v, torch.Tensor))
    tensors = [a.meta.get("val") for a in n.args if isinstance(a, torch.fx.Node)]
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    try:
        if base in _MATMUL_FIRST and tensors and tensors[0].dim() >= 1:
            return 2.0 * out * int(tensors[0].shape[-1])
        if base in _MATMUL_SECOND and len(tensors) >= 2 and tensors[1].dim() >= 1:
            return 2.0 * out * int(tensors[1].shape[-1])
        if base in _CONV and len(tensors) >= 2:
            return 2.0 * out * math.prod(int(s) for s in tensors[1].shape[1:])
        if base in _ATTENTION and len(tensors) >= 2 and tensors[0].dim() >= 2:
            q, k = tensors[0], tensors[1]
            return 4.0 * int(q.numel()) * int(k.shape[-2])
    except TypeError:
        pass
    return float(max([out] + [int(t.numel()) for t in tensors]))
