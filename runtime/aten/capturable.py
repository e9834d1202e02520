"""Lowerings for ops whose eager CUDA kernel waits on the host, so that a CUDA graph can capture them.

Why: a CUDA graph records device work only. An op that reads a device value on the host to decide what to
launch (``.item()``, ``.tolist()``, ``offs.cpu()``) synchronizes the stream, which CUDA forbids while the
stream captures: the capture is invalidated and the whole program falls back to eager (``cuda_graph=False``).
Each lowering here computes the same result with device work alone:

- ``masked_fill`` with a 0-dim ``value`` tensor on the result's device (a constant the executor moved to the
  device, SEW-D's ``finfo.min``): eager's CUDA kernel reads ``value.item()``; ``where(mask, value, self)``
  picks the same element bits with no host read, so it replaces it in every mode (bitwise eager's result,
  one host round trip fewer per call);
- ``transformers::grouped_mm_fallback`` (the experts' product transformers exports for weights that are not
  bfloat16: Mixtral, GraniteMoE, DeepSeek-V3... in float32 or float16): eager reads the group ends with
  ``offs.tolist()`` and runs one ``mm`` per non-empty group. Outside a capture the launch runs exactly that
  (eager's bits); while capturing, every expert's product over *all* rows, each row kept from its own
  group's product by a device-side mask. The same products row by row, but ``mm`` over more rows may take
  another cuBLAS kernel, so a captured call is close to eager, not always bitwise; it costs ``E`` products
  of all rows where eager ran ``E`` products of one group each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: (kind, run, scratch bytes), as ``exact.Exact``
Lowering = tuple[str, Callable[[], Any], int]


def capturable_lowering(torch, op: Any, named: Mapping[str, Any], out_views: list,
                        device_type: str) -> Lowering | None:
    """A host-sync-free lowering of ``op`` (schema-named arguments ``named``) into ``out_views``, or None.
    Ops are matched by their qualified name (``namespace.name.overload``), never by the name alone: another
    library's op of the same name is left to the generic path."""
    if device_type != "cuda" or len(out_views) != 1:
        return None
    out, qualified = out_views[0], str(op)
    if qualified == "aten.masked_fill.Tensor":
        return _masked_fill(torch, named, out)
    if qualified == "transformers.grouped_mm_fallback.default":
        return _grouped_mm(torch, op, named, out)
    return None


def _masked_fill(torch, named: Mapping[str, Any], out) -> Lowering | None:
    x, mask, value = named.get("self"), named.get("mask"), named.get("value")
    if not all(isinstance(t, torch.Tensor) for t in (x, mask, value)):
        return None
    # value converted to the result's dtype is where's type promotion only when the dtypes agree; a 0-dim value
    # on another device (the CPU: no sync in eager) keeps eager's kernel
    if value.dim() != 0 or value.device != out.device or value.dtype != x.dtype or out.dtype != x.dtype:
        return None
    if mask.dtype != torch.bool or tuple(torch.broadcast_shapes(mask.shape, x.shape)) != tuple(out.shape):
        return None
    return "exact", lambda: torch.where(mask, value, x, out=out), 0


def _grouped_mm(torch, op, named: Mapping[str, Any], out) -> Lowering | None:
    x, w, offs = named.get("input"), named.get("weight"), named.get("offs")
    if not all(isinstance(t, torch.Tensor) for t in (x, w, offs)):
        return None
    if x.dim() != 2 or w.dim() != 3 or offs.dim() != 1 or offs.shape[0] != w.shape[0]:
        return None
    if offs.device != out.device or tuple(out.shape) != (x.shape[0], w.shape[2]) or out.dtype != x.dtype:
        return None
    rows = torch.arange(x.shape[0], device=out.device)
    tmp = torch.empty(tuple(out.shape), dtype=out.dtype, device=out.device)

    def run():
        if torch.cuda.is_current_stream_capturing():
            grouped_mm_masked(torch, x, w, offs, out, tmp, rows)
        else:
            out.copy_(op(x, w, offs))
    return "copy", run, tmp.nbytes + rows.nbytes


def grouped_mm_masked(torch, x, w, offs, out, tmp, rows) -> None:
    """``out`` = eager ``grouped_mm_fallback(x, w, offs)`` with no host read: row ``r`` takes ``x @ w[i]`` for
    the group ``i`` whose rows ``[offs[i-1], offs[i])`` hold it, a later group's over an earlier one's (as
    eager's ``out=`` slices overwrite), zero past the last group. ``tmp``: one product; ``rows``: arange."""
    hi = offs.to(torch.int64)
    lo = torch.cat([hi.new_zeros(1), hi[:-1]])
    out.zero_()
    for i in range(w.shape[0]):
        keep = (rows >= lo[i]) & (rows < hi[i])
        torch.mm(x, w[i], out=tmp)
        torch.where(keep.unsqueeze(1), tmp, out, out=out)
