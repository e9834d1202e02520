"""Lowerings for ops whose eager CUDA kernel waits on the host, so that a CUDA graph can capture them.

Why: a CUDA graph records device work only. An op that reads a device value on the host to decide what to
launch (``.item()``, ``.tolist()``, ``offs.cpu()``) synchronizes the stream, which CUDA forbids while the
stream captures: the capture is invalidated and the whole program falls back to eager (``cuda_graph=False``).
Each lowering here computes the same result with device work alone:

- ``masked_fill`` with a 0-dim ``value`` tensor on the result's device (a constant the executor moved to the
  device, SEW-D's ``finfo.min``): eager's CUDA kernel reads ``value.item()``; ``where(mask, value, self)``
  picks the same element bits with no host read (a NaN value first made what eager's host conversion makes
  of it: ``_host_nan``), so it replaces it in every mode (bitwise eager's result, one host round trip fewer
  per call);
- ``index_put`` / ``index_put_`` with one boolean mask (``x[mask] = v``, ``x[:, mask] = v``; wav2vec2's
  ``hidden_states[~mask] = 0``): eager's kernel finds the mask's true positions with ``nonzero``, whose count
  the host reads to size the result. Where ``v`` broadcasts to one masked element's slice (no row per true
  position), ``where(mask, v, x)`` writes the same bits with no host read, in every mode; ``v`` with one row
  per true position needs that count, and is left to eager's kernel;
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

from .layout import share_memory

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
    if qualified == "aten.index_put.default":
        return _masked_put(torch, named, out)
    return None


def capturable_inplace(torch, op: Any, named: Mapping[str, Any], device_type: str) -> Callable[[], Any] | None:
    """A host-sync-free run of the in-place ``op`` writing its ``self`` where it stands, or None (eager's op)."""
    if device_type != "cuda" or str(op) != "aten.index_put_.default":
        return None
    low = _masked_put(torch, named, named.get("self"))
    return None if low is None else low[1]


def _masked_put(torch, named: Mapping[str, Any], out) -> Lowering | None:
    """``index_put(x, [None]*p + [mask], v)`` as ``where``: the mask's dims in place, ``v`` broadcast to the rest.

    Eager's result (``x[..., mask, ...]`` has one row per true position, shape ``x.shape[:p] + (N,) + rest``)
    takes ``v`` broadcast to it; where ``v``'s size along the ``N`` axis is 1 (or ``v`` has no such axis), each
    true position gets the same slice of ``v`` whatever ``N`` is: ``where`` over the mask, its dims kept, writes
    exactly those bits. Index and value checks eager makes (dtypes alike, the mask's shape the indexed dims')
    are made here, so every call this lowers is one eager runs without an error."""
    x, indices, v = named.get("self"), named.get("indices"), named.get("values")
    if named.get("accumulate", False) or not isinstance(indices, (list, tuple)) or not indices:
        return None
    if not all(isinstance(t, torch.Tensor) for t in (x, v, out)) or not isinstance(indices[-1], torch.Tensor):
        return None
    p, mask = len(indices) - 1, indices[-1]
    if any(i is not None for i in indices[:-1]) or mask.dtype != torch.bool or mask.dim() == 0:
        return None
    k = mask.dim()
    if tuple(mask.shape) != tuple(x.shape[p:p + k]) or mask.device != x.device or v.device != x.device:
        return None
    if v.dtype != x.dtype or out.dtype != x.dtype or tuple(out.shape) != tuple(x.shape):
        return None
    if not eager_kernels_take(torch, x.dtype):
        return None   # (eager raises "not implemented" where ``where`` would run)
    if torch.are_deterministic_algorithms_enabled() and x.dtype in (torch.float16, torch.bfloat16):
        return None   # (review 41b: CUDA's deterministic ``index_put_`` sorts and converts each half value through
        # float32, which may quiet a NaN's payload ``where`` keeps; the flag's change rebuilds the executor)
    if torch._debug_has_internal_overlap(out) != 0 or (out.data_ptr() != 0 and any(share_memory(t, out)
                                                                                for t in (v, mask))):
        return None   # (eager refuses an expanded ``self``; a value read from the bytes written: left to it. The
        # bytes, not the storage: every planned view is a view of the one arena. A device stand-in has none)
    lead, rest = tuple(x.shape[:p]), tuple(x.shape[p + k:])
    indexed = (*lead, 1, *rest)   # eager's ``x[..., mask, ...]`` with its N true positions taken as one
    if v.dim() > len(indexed):
        return None
    try:
        if tuple(torch.broadcast_shapes(tuple(v.shape), indexed)) != indexed:
            return None
    except RuntimeError:
        return None
    full = (1,) * (len(indexed) - v.dim()) + tuple(v.shape)
    value = v.reshape(full[:p] + (1,) * k + full[p + 1:])   # the N axis as the mask's k dims
    where = mask.reshape((1,) * p + tuple(mask.shape) + (1,) * len(rest))
    return "exact", lambda: torch.where(where, value, x, out=out), 0


#: dispatch keys whose kernel computes a call on a CUDA tensor (``Library.impl``'s "" is its library's default)
_CUDA_COMPUTE_KEYS = ("CUDA", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional",
                      "CompositeImplicitAutograd", "")


def python_effect_nodes(torch, program: Any) -> list[tuple[str, str]]:
    """(node, op) of each planned node of ``program`` whose op returns nothing, writes no argument and computes a
    CUDA call in Python (``torch.library.custom_op``, a ``Library.impl`` of a Python function): a check that raises,
    a logger, a counter. Such an op runs for its Python alone, and a CUDA graph replays device work only.

    Why refused under ``cuda_graph=True`` (``Executor``): its Python ran at the first call only (twice in the
    warm-ups, once in the capture), and never in the replays, where eager's runs at every call: a failing check
    passed silently from the second call on, a logger logged three times then never. An op that returns a result
    (or writes an argument) is device work the graph replays; its Python runs at the capture alone (documented).
    ATen's own ``_assert_async`` is a device kernel: captured, its assert fires in the replays as eager's does."""
    impls = getattr(torch.library, "_impls", set())
    try:
        from torch._library.custom_ops import OPDEFS
    except ImportError:   # (an older torch: ``Library.impl``'s record alone)
        OPDEFS = {}
    out: list[tuple[str, str]] = []
    for n in program.exported.graph.nodes:
        op = n.target
        schema = getattr(op, "_schema", None)
        if (n.op != "call_function" or n.name not in program.graph.node_index or schema is None or schema.returns
                or schema.is_mutable or not isinstance(op, torch._ops.OpOverload)):
            continue
        over = op._overloadname
        names = {op._opname, f"{op._opname}.{over}"} if over == "default" else {f"{op._opname}.{over}"}
        if (f"{op.namespace}::{op._opname}" in OPDEFS
                or any(f"{op.namespace}/{name}/{key}" in impls for name in names for key in _CUDA_COMPUTE_KEYS)):
            out.append((n.name, str(op)))
    return out


def eager_kernels_take(torch, dtype) -> bool:
    """Whether eager's CUDA ``index_put`` and ``masked_fill`` kernels take ``dtype`` in every mode: the standard
    integer, floating and complex dtypes, bool, half and bfloat16. Why: ``where`` implements more (``uint16``,
    ``uint32``, ``uint64``), so a lowered call of such a dtype returned a tensor where eager raised ("index_put" not
    implemented for 'UInt16'; review 41b); complex32 and the 8-bit floats are taken by some of eager's kernels and
    not others (``index_put``'s deterministic one takes neither): they keep eager's op too, which raises as eager's
    where it does."""
    return dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                     torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)


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
    if x.dtype.is_complex or not eager_kernels_take(torch, x.dtype):
        return None   # complex: how the host conversion leaves their NaNs is not modelled (``_host_nan``), and a
        # dtype eager's kernel lacks (``uint16``) raises there: eager's kernel
    nan = _host_nan(torch, x.dtype)
    if nan is None:
        return "exact", lambda: torch.where(mask, value, x, out=out), 0
    as_int, keep, ones = nan

    def run():
        # eager's kernel fills with ``value.item()`` converted back to the dtype on the host, which quiets a
        # NaN (and in half precision drops its payload, in bfloat16 its sign too): the same here, on the device
        bits = value.view(as_int)
        torch.where(mask, torch.where(value.isnan(), ((bits & keep) | ones).view(value.dtype), value), x, out=out)
    return "exact", run, 0


def _host_nan(torch, dtype) -> tuple[Any, int, int] | None:
    """How eager's ``masked_fill`` leaves a NaN value of ``dtype``, as (integer dtype of its width, bits kept,
    bits set), or None where it keeps the NaN's bits. Why: its kernel reads ``value.item()`` (a double) and
    converts it back with c10's host conversions: float32 via double quiets a signalling NaN (payload kept),
    half's ``fp16_ieee_from_fp32_value`` gives ``0x7E00`` with the sign, bfloat16's ``round_to_nearest_even``
    gives ``0x7FC0``; float64 and integers come back as they were. ``where`` copies the value's bits as they
    are, so a NaN with a payload or a sign filled other bits than eager's."""
    return {torch.float32: (torch.int32, -1, 0x00400000), torch.float16: (torch.int16, -0x8000, 0x7E00),
            torch.bfloat16: (torch.int16, 0, 0x7FC0)}.get(dtype)


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
