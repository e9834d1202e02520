"""Per-op checks of an exported graph: declared aliases and writes, strided and dense layouts, vmap and
quantized ops, writes inside control-flow bodies.

Why: memplan reads aliasing and writes off the schema and the fake tensors; an op whose schema hides a write or a view,
or whose layout memplan cannot express, would be planned wrongly. Those are refused naming the node.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

from ...errors import GraphError
from .. import first_line
from .common import _op_name


def _lazy_bits_of(torch, r: Any, t: Any) -> Any:
    """``t`` (a fresh view) with the conjugate and negative bits of ``r`` (torch's result of the op on meta tensors,
    or the tensor a meta argument stands for; None: neither bit).

    Why: a loaded program's fake tensors carry neither bit (``torch.export.save`` keeps no ``is_conj``), and the view
    laid out again (``_view_on_layouts``) was made with ``as_strided``, which kept the base's: ``z.conj()`` then read
    as a plain view, and ``resolve_conj`` of it, which eager computes into a new tensor, was taken for the view it is
    only where there is no bit to resolve (``_aliases_here``): its result was planned over ``z``'s bytes, and an
    output at that (the program in memory: a tensor of its own)."""
    conj, neg = (False, False) if r is None else (bool(r.is_conj()), bool(r.is_neg()))
    if t.is_conj() != conj:
        torch._C._set_conj(t, conj)
    if t.is_neg() != neg:
        torch._C._set_neg(t, neg)
    return t


def _meta_arg(torch, a: Any, current: dict, recs: dict, laid: set, mode: Any = None) -> Any:
    """FX argument ``a`` as a meta tensor of its layout (the corrected one, for a tensor in ``laid``), in a
    storage of its own; a non-tensor value as it is, and a ``get_attr`` subgraph (a ``wrap_with_autocast`` body) as
    the module it names. ``mode``: a fake tensor mode to make it in instead, on its own device (where the device
    decides the result: ``torch.autocast("cpu")`` makes nothing bfloat16 on meta tensors).

    Made with ``set_``, not ``as_strided``: an ``as_strided`` result is a view (``_is_view``), and ops that
    refuse views ran on it as on none eager ever gave them. A loaded program's ``torch.tensor([...])``
    literal is ``lift_fresh_copy`` then ``detach_``, and ``detach_`` of a view raises ("Can't detach views
    in-place"), so its result, and every view of it (``[1:]``), claimed its whole parent at offset 0 where the
    program in memory has it 4 bytes in, and the ATen executor refused the loaded program."""
    t = current.get(a.name)
    val = recs[t].val if isinstance(t, str) and t in laid else a.meta.get("val")
    if a.op == "get_attr" and not isinstance(val, torch.Tensor):
        sub = a.graph.owning_module
        for part in str(a.target).split("."):
            sub = getattr(sub, part, None)
        if isinstance(sub, torch.fx.GraphModule):
            return sub
    if not isinstance(val, torch.Tensor):
        return val
    n_el = -(-int(val.untyped_storage().nbytes()) // val.element_size())
    device = "meta" if mode is None else val.device
    with mode if mode is not None else contextlib.nullcontext():
        storage = torch.empty(n_el, dtype=val.dtype, device=device).untyped_storage()
        return _lazy_bits_of(torch, val, torch.empty(0, dtype=val.dtype, device=device).set_(
            storage, val.storage_offset(), tuple(val.shape), tuple(val.stride())))


#: higher-order ops that run a subgraph of ``forward`` as one node under another grad or autocast mode (a
#: ``torch.no_grad()`` / ``torch.autocast`` block, a ``@torch.no_grad()`` method): no schema says which of their results
#: are views of their operands or of one another (``with torch.no_grad(): y = x @ w; z = y[1:]`` returns ``y`` and its
#: view ``z``), and a program loaded from ``.pt2`` keeps no storage to say it either
_WRAPS = frozenset({"wrap_with_autocast", "wrap_with_set_grad_enabled"})


def is_wrap(n: Any) -> bool:
    """Whether FX node ``n`` runs a ``_WRAPS`` higher-order op."""
    return n.op == "call_function" and _op_name(n.target) in _WRAPS


def _fake_mode_of(torch, n: Any) -> Any:
    """The fake tensor mode of FX node ``n``'s recorded results or arguments (None where it has none)."""
    for v in (n.meta.get("val"), *(a.meta.get("val") for a in n.all_input_nodes)):
        for t in (v if isinstance(v, (list, tuple)) else [v]):
            mode = getattr(t, "fake_mode", None)
            if mode is not None:
                return mode
    return None


def wrapped_results(torch, n: Any, current: dict, recs: dict, laid: set) -> tuple[list, dict] | None:
    """A ``_WRAPS`` node ``n`` run once more in its program's fake mode on fake tensors of its operands' layouts, each
    in a storage of its own: (its results, {storage: the FX name of the operand it is}); None where that run fails.
    Which results share a storage (with an operand, or with one another) and where in it they lie is torch's word
    there, for a program loaded from ``.pt2`` (its fake tensors share nothing) as for one in memory."""
    from torch.multiprocessing.reductions import StorageWeakRef

    mode = _fake_mode_of(torch, n)
    if mode is None:
        return None
    owners: dict = {}

    def fake(a):
        t = _meta_arg(torch, a, current, recs, laid, mode)
        if isinstance(t, torch.Tensor):
            owners.setdefault(StorageWeakRef(t.untyped_storage()), a.name)
        return t

    try:
        args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), fake)
        with mode:
            res = n.target(*args, **kwargs)
    except Exception:
        return None
    return (list(res) if isinstance(res, (list, tuple)) else [res]), owners


def _flat_nodes(torch, obj) -> list:
    out: list = []
    torch.fx.node.map_arg(obj, out.append)
    return out


def written_args(torch, n) -> set[str]:
    """FX names of the arguments the op's schema writes (``Tensor(a!)``), each element of a written list too
    (``_foreach_add_([x, y], 1)``: ``Tensor(a!)[]``). The ATen executor asks the same question of the same
    nodes (which user inputs a program writes), so it uses this one definition."""
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        return set()
    out = set()
    hidden = _hidden_writes(schema, n)
    for k, arg in enumerate(schema.arguments):
        info = arg.alias_info
        if (info is None or not info.is_write) and arg.name not in hidden:
            continue
        v = n.kwargs.get(arg.name) if arg.name in n.kwargs else (n.args[k] if k < len(n.args) else None)
        for a in _flat_nodes(torch, v) if v is not None else []:
            out.add(a.name)
    return out


#: ATen ops that update their running statistics in place, in training mode, though their schemas declare
#: no write (``Tensor? running_mean``, not ``Tensor(a!)``): op name -> the flag that turns the update on (None:
#: always, ``batch_norm_update_stats``, which is the update)
_UNDECLARED_STAT_WRITES = {"aten::batch_norm": "training", "aten::native_batch_norm": "training",
                           "aten::_batch_norm_impl_index": "training", "aten::cudnn_batch_norm": "training",
                           "aten::miopen_batch_norm": "training", "aten::instance_norm": "use_input_stats",
                           "aten::batch_norm_update_stats": None}


def _hidden_writes(schema: Any, n: Any) -> frozenset[str]:
    """Names of the arguments node ``n``'s op writes although its schema does not say so: train-mode
    ``batch_norm`` (and ``instance_norm`` with ``use_input_stats``) update ``running_mean``/``running_var``.

    Why: read off the schema alone, the update was no write, so nothing ordered a later reader of the
    statistics (``rm * 1`` after ``F.batch_norm(x, rm, rv, training=True)``, a module reading its
    ``bn.running_mean``) after it: on more than one stream the reader ran first and got the old values,
    silently (``batch_norm_update_stats``, which always updates them: statistics given as inputs were never
    written back to the caller's tensors). Flags the node does not set are the schema's defaults (none: all are
    required)."""
    if schema.name not in _UNDECLARED_STAT_WRITES or schema.overload_name not in ("", "default"):
        return frozenset()
    flag = _UNDECLARED_STAT_WRITES[schema.name]
    if flag is not None and _schema_arg(n, flag) is not True:
        return frozenset()
    return frozenset({"running_mean", "running_var"})


#: ops whose schema says "aliases its input" but which copy when no view can express the result (``ravel``, round 74:
#: ``torch.ravel(y[:, 1:])`` copies as ``reshape(-1)`` does, and was planned as a view over ``y``'s bytes; the
#: ``_autocast_to_*`` casts copy where they change the dtype)
_MAY_ALIAS = {"reshape", "reshape_as", "flatten", "ravel", "contiguous", "to", "type_as", "_reshape_alias", "resolve_conj",
              "resolve_neg", "_autocast_to_reduced_precision", "_autocast_to_full_precision"}


def _declared_aliases(torch, n, n_out: int) -> list[str | None]:
    """Per output: the FX name of the argument the op's schema says it aliases (``Tensor(a)``), or None."""
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        return [None] * n_out
    source = _schema_arg(n, "source") if schema.name == "aten::set_" else None
    if isinstance(source, torch.fx.Node):
        # ``y.set_(w)`` returns ``y``, which from then on *is* ``w``'s memory: its schema's ``Tensor(a!)`` names
        # ``y``, whose old storage it leaves. Taken at its word (a loaded program, whose fake storages say
        # nothing), ``set_`` was an in-place result in ``y``'s slot, and a later ``y.add_(1)`` never reached ``w``
        return [source.name] * n_out
    sets: dict[str, str] = {}
    wildcard = None
    for k, arg in enumerate(schema.arguments):
        info = arg.alias_info
        if info is None:
            continue
        v = n.kwargs.get(arg.name) if arg.name in n.kwargs else (n.args[k] if k < len(n.args) else None)
        found = _flat_nodes(torch, v) if v is not None else []
        if len(found) != 1:
            continue
        for a in info.before_set:
            sets[a] = found[0].name
        if "*" in info.after_set:
            wildcard = found[0].name  # "Tensor(a -> *)": list results (split, unbind) alias it
    out: list[str | None] = []
    for r in schema.returns:
        info = r.alias_info
        if info is None:
            out.append(None)
        elif info.before_set:
            out.append(next((sets[a] for a in info.before_set if a in sets), None))
        else:
            out.extend([wildcard] * n_out)
    return (out + [None] * n_out)[:n_out]


def _plain_layout(torch, v: Any) -> bool:
    """Whether tensor ``v`` is strided with every size, stride and storage offset a plain number."""
    try:
        return v.layout == torch.strided and all(isinstance(d, int) for d in (*v.shape, *v.stride(),
                                                                               v.storage_offset()))
    except Exception:
        return False


def _checked_target(torch, n: Any, owner: Any) -> bool:
    """Whether ``_check_recorded_results`` runs FX node ``n`` again: an ATen (or ``torch.library``) op, or any
    higher-order op of a program whose module ``owner`` holds its subgraphs. Why the latter: an edited ``.pt2`` whose
    ``cond`` recorded ``[1, 3]`` for branches that make ``[4, 3]`` (and its reader ``* 3`` ``[1, 3]``) was planned at
    12 bytes where eager writes 48; run again, the branches' ops make the result from the operands' records. Those
    with no subgraph too (round 51): a decomposed mutating custom op's ``auto_functionalized_v2`` recorded ``[1, 3]``
    for its ``[4, 3]`` and ``[5, 3]`` results was planned at 12 bytes each."""
    if isinstance(n.target, torch._ops.OpOverload):
        return True
    return owner is not None and isinstance(n.target, torch._ops.HigherOrderOperator)


def _fake_of(torch, a: Any, owner: Any = None) -> Any:
    """FX argument ``a``'s recorded value: a tensor as a fresh one of its layout (in the fake mode entered), a
    subgraph (``get_attr`` of a higher-order op's branch or body) as ``owner``'s module, any other value as it is. A
    recorded tensor of symbolic sizes raises (``_check_recorded_results`` skips that node)."""
    if a.op == "get_attr" and owner is not None:
        sub = owner
        for part in str(a.target).split("."):
            sub = getattr(sub, part, None)
        if isinstance(sub, torch.fx.GraphModule):
            return sub
    v = a.meta.get("val")
    if not isinstance(v, torch.Tensor):
        return v
    if not _plain_layout(torch, v):
        raise TypeError("symbolic or not strided")
    return torch.empty_strided(tuple(v.shape), tuple(v.stride()), dtype=v.dtype, device=v.device)


def _elements(v: Any) -> int:
    """Elements tensor ``v``'s first to last element span (0 for none): ``_span`` in elements, so that a record in a
    dtype of more bytes (promoted at trace time) compares with the op's own result."""
    if any(d == 0 for d in v.shape):
        return 0
    return sum((d - 1) * st for d, st in zip(v.shape, v.stride())) + 1


def _overlapping(torch, v: Any) -> bool:
    """Whether elements of tensor ``v`` surely share memory (torch's internal-overlap test: an expand's zero stride)."""
    try:
        return torch._debug_has_internal_overlap(v) == 1
    except Exception:  # noqa: BLE001 - no answer: not surely
        return False


def _layout_words(v: Any, other: Any = None) -> str:
    """``float32 [4, 3] strides (3, 1)`` (``... on cuda:0`` where ``other``, the tensor it is compared with, lies on
    another device), for ``_check_recorded_results``."""
    on = f" on {v.device}" if other is not None and _device_key(v.device) != _device_key(other.device) else ""
    return f"{str(v.dtype).removeprefix('torch.')} {list(v.shape)} strides {tuple(v.stride())}{on}"


def _device_key(device: Any) -> tuple[str, int]:
    """``device`` as ``(type, index)``, an index not given read as 0: torch's fake tensors say ``cuda:0`` where a record
    may say ``cuda`` (and the CPU has no index), one device either way."""
    return str(device.type), int(device.index or 0)


def _storages_kept(torch, graph_nodes: list) -> bool:
    """Whether the program's fake tensors share storages as torch's do (an export in memory), judged by its
    first view op (``view``, ``slice``...: the schema says its result aliases its input); False for a program
    loaded from ``.pt2`` (each fake tensor has a storage of its own) and for one with no view op.

    Why: only where storages are lost must aliases the schema does not declare be asked of torch
    (``_probed_aliases``), which costs a meta run of the op; where they are kept, they say it already."""
    from torch.multiprocessing.reductions import StorageWeakRef

    for n in graph_nodes:
        if n.op != "call_function" or _op_name(n.target).split(".")[0] in _MAY_ALIAS:
            continue
        val = n.meta.get("val")
        declared = _declared_aliases(torch, n, 1) if isinstance(val, torch.Tensor) else [None]
        src = next((a for a in n.all_input_nodes if a.name == declared[0]), None)
        x = src.meta.get("val") if src is not None else None
        if isinstance(x, torch.Tensor) and x.layout == torch.strided and val.layout == torch.strided:
            try:
                return StorageWeakRef(val.untyped_storage()) == StorageWeakRef(x.untyped_storage())
            except (NotImplementedError, RuntimeError):   # no storage (a batched tensor): the next one
                continue
    return False


def _python_composite(torch, target: Any) -> bool:
    """Whether ATen op ``target`` has a Python kernel for its composite key (``torch._decomp``'s
    ``py_impl(CompositeImplicitAutograd)``: ``dropout``, ``matmul``, ``broadcast_tensors``, the upsamples...).

    Why: an export runs that Python kernel to make the op's fake result, eager runs the C++ one, and the two
    need not alias alike: torch 2.11's eval ``dropout`` there is ``input.clone()``, a storage of its own, where
    eager returns the input itself. So even where the export's storages are kept (``_storages_kept``) such an
    op's aliases are asked of torch's C++ kernel (``_probed_aliases``); other ops cost no meta run."""
    kernels = getattr(target, "py_kernels", None)
    return isinstance(kernels, dict) and torch._C.DispatchKey.CompositeImplicitAutograd in kernels


#: ATen ops with kernels of their own (not composite) that return views of their input though their schemas
#: declare no alias: the "unsafe" views autograd does not track (``_unsafe_view``: decomposed ``matmul``/
#: ``linear``'s reshapes; ``unsafe_split``, ``unsafe_split_with_sizes``)
_UNDECLARED_VIEWS = frozenset({"aten::_unsafe_view", "aten::unsafe_split", "aten::unsafe_split_with_sizes"})


def _probed_aliases(torch, n: Any, n_out: int, current: dict, recs: dict, laid: set) -> list[str | None]:
    """Per output of FX node ``n``: the FX name of the argument whose memory torch's op returns (the argument
    itself or a view of it), run on meta tensors of its arguments; None for a new tensor.

    Why: a composite ATen op may return its input, or a view of it, with no alias in its schema (eval
    ``dropout`` and its kin return their input; ``einsum("ij->ji")`` a permute; ``broadcast_tensors`` and
    ``meshgrid`` expands; ``type_as`` and ``sum_to_size`` their input where nothing changes). In memory
    their fake results share storage with the input; loaded from ``.pt2`` they share nothing, and each was
    imported as a new tensor: planned bytes of its own eager never allocates, and an in-place write through
    the result (``F.dropout(x, training=False).add_(1)``) never reached ``x``. Only ATen ops with a composite
    (decomposing) kernel and no alias in their schema are asked: other kernels return what their schema
    says, but for ``_UNDECLARED_VIEWS`` (loaded, ``torch.unsafe_split(y, 2)[0].add_(1)`` never reached ``y``).
    A failure on meta tensors (no meta kernel) leaves the result new, as before."""
    none: list[str | None] = [None] * n_out
    if is_wrap(n):
        # (loaded, ``with torch.autocast("cpu"): z = y.t()`` was a new tensor: ``y.add_(1)`` after it never reached
        # ``z``, and the ATen executor's result missed the write)
        from torch.multiprocessing.reductions import StorageWeakRef

        found = wrapped_results(torch, n, current, recs, laid)
        if found is None:
            return none
        res, owners = found
        return [owners.get(StorageWeakRef(r.untyped_storage())) if isinstance(r, torch.Tensor)
                and r.layout == torch.strided else None for r in res[:n_out]] + none[len(res):]
    schema = getattr(n.target, "_schema", None)
    if schema is None or not schema.name.startswith("aten::") or any(r.alias_info is not None
                                                                       for r in schema.returns):
        return none
    full = schema.name + (f".{schema.overload_name}" if schema.overload_name else "")
    if schema.name not in _UNDECLARED_VIEWS and not torch._C._dispatch_has_kernel_for_dispatch_key(
            full, "CompositeImplicitAutograd"):
        return none
    from torch.multiprocessing.reductions import StorageWeakRef

    owners: dict = {}

    def meta(a):
        t = _meta_arg(torch, a, current, recs, laid)
        if isinstance(t, torch.Tensor):
            owners.setdefault(StorageWeakRef(t.untyped_storage()), a.name)
        return t

    try:
        args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), meta)
        res = n.target(*args, **kwargs)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        return [owners.get(StorageWeakRef(r.untyped_storage())) if isinstance(r, torch.Tensor)
                and r.layout == torch.strided else None for r in res[:n_out]] + none[len(res):]
    except Exception:
        return none


def _aliases_here(torch, op: str, inp, out, n: Any = None) -> bool:
    """Whether a schema-declared alias really is one (only in doubt for the may-copy ops). ``n``: the FX
    node, whose ``copy=True`` makes ``to`` copy whatever the layouts (``.to(device, copy=True)``, as
    VideoMAE copies its sinusoid table: taken for a view of it, the executor found torch's result at
    another address than the plan's and refused the model)."""
    base = op.split(".")[0]
    if base not in _MAY_ALIAS:
        return True
    if inp.dtype != out.dtype or inp.device != out.device:
        return False
    if base == "to" and n is not None and _schema_arg(n, "copy") is True:
        return False
    if base == "contiguous":  # torch returns the input itself only if it is contiguous in the format asked
        fmt = _schema_arg(n, "memory_format") if n is not None else None
        return _contiguous_or_false(torch, inp, fmt if fmt is not None else torch.contiguous_format)
    if base in ("resolve_conj", "resolve_neg"):  # a new tensor when there is a lazy bit to resolve
        return not bool(inp.is_conj() if base == "resolve_conj" else inp.is_neg())
    fmt = _schema_arg(n, "memory_format") if base == "to" and n is not None else None
    if fmt is not None and fmt != torch.preserve_format:
        # torch's ``to`` returns its input only where the input's *suggested* memory format is the one asked
        # for (``to_will_alias``), which equal strides do not tell: a (N, 1, 1, 1) tensor's contiguous and
        # channels-last strides are one, and ``to(memory_format=torch.channels_last)`` copies it. Asked of
        # torch itself, on a meta tensor of the input's layout
        probe = torch.empty_strided(tuple(inp.shape), tuple(inp.stride()), dtype=inp.dtype, device="meta")
        return probe.to(memory_format=fmt) is probe
    if base in ("to", "type_as"):
        return tuple(inp.stride()) == tuple(out.stride())
    try:  # reshape-like: a view exactly when .view() can express it
        probe = torch.empty_strided(tuple(inp.shape), tuple(inp.stride()), dtype=inp.dtype, device="meta")
        probe.view(tuple(out.shape))
        return True
    except RuntimeError:
        return False


def _contiguous_or_false(torch, t: Any, fmt: Any) -> bool:
    """Whether fake tensor ``t`` is contiguous in format ``fmt`` for every value its data-dependent sizes take; False
    where that turns on them. Why: ``masked_select(x, m).unsqueeze(0).expand(2, -1).contiguous()`` is contiguous
    only when no element is selected (``u0 == 0``), and ``is_contiguous`` asked torch to guard on ``u0``: from_torch
    raised torch's raw ``GuardOnDataDependentSymNode``. Not contiguous means a copy planned in its own bytes, which
    holds any run's result (a zero-element one too); taken for an alias, the copy's 2 * u0 elements were planned in
    its input's u0."""
    if all(isinstance(d, int) for d in (*t.shape, *t.stride())):   # (plain sizes: torch's own answer, as before)
        return bool(t.is_contiguous(memory_format=fmt))
    from torch._prims_common import is_contiguous_for_memory_format_or_false

    return bool(is_contiguous_for_memory_format_or_false(t, memory_format=fmt))


def _schema_arg(n: Any, name: str) -> Any:
    """The value FX node ``n`` passes for its op's argument ``name`` (keyword or by position), else None."""
    if name in n.kwargs:
        return n.kwargs[name]
    schema = getattr(n.target, "_schema", None)
    for k, arg in enumerate(schema.arguments if schema is not None else ()):
        if arg.name == name:
            return n.args[k] if k < len(n.args) else None
    return None


def _check_strided(torch, val, where: str) -> None:
    """Only dense (strided) tensors have one storage whose bytes a plan can place: a sparse or other
    layout's ``untyped_storage()`` raises ``NotImplementedError``, and so does a strided wrapper tensor that
    has no storage of its own (a functorch batched tensor): both are GraphErrors naming the node, not a raw
    ``NotImplementedError`` out of the importer."""
    if val.layout != torch.strided:
        raise GraphError(f"{where}: a {str(val.layout).removeprefix('torch.')} tensor (only dense, strided "
                         "tensors are supported)")
    try:
        val.untyped_storage()
    except (NotImplementedError, RuntimeError) as exc:
        raise GraphError(f"{where}: a {type(val).__name__} with no storage of its own ({first_line(exc)}; "
                         "only dense tensors with a storage can be planned)") from None


#: functorch's pre-dispatch vmap ops (``torch._functorch.predispatch``) that turn a tensor into a batched one
_VMAP_ENTRY = frozenset({"_add_batch_dim"})


def _is_vmap_entry(target: Any) -> bool:
    """Whether ``target`` is functorch's pre-dispatch op that makes a batched tensor (a vmap's entry)."""
    return getattr(target, "__module__", "") == "torch._functorch.predispatch" and \
        getattr(target, "__name__", "") in _VMAP_ENTRY


def _check_not_vmapped(n: Any, where: str) -> None:
    """Refuse ``torch.vmap`` inside the program (a user's ``vmap``, ``associative_scan``'s generic mode).

    Why: export keeps vmap as pre-dispatch ops; between ``_add_batch_dim`` and ``_remove_batch_dim`` every
    value is a functorch batched tensor, whose fake tensor is the *logical* per-example tensor, not the
    memory its kernels write (a whole batch). In memory the fake tensors have no storage (the importer
    raised a raw ``NotImplementedError``); loaded from a ``.pt2`` they read as small plain tensors, which a
    plan would have placed too small. ``run_decompositions()`` removes the vmap (its ops become batched ATen
    ops on plain tensors), and that program imports and runs."""
    if _is_vmap_entry(n.target):
        # (flex_attention builds its default block mask under a vmap: its caller wrote no vmap, and the refusal named
        # only a vmap or associative_scan, round 54)
        flex = any("flex_attention" in str(getattr(m, "target", "")) for m in n.graph.nodes)
        whose = "flex_attention's default block mask, which torch builds under one" if flex else \
            "a vmap, or associative_scan's generic mode"
        raise GraphError(f"{where}: torch.vmap inside the program ({whose}): "
                         "its batched tensors have no plannable layout; import the decomposed program "
                         "(from_torch(..., decompose=True), or ExportedProgram.run_decompositions())")


def _check_not_quantized(torch, n: Any, where: str) -> None:
    """Refuse an op that makes a quantized tensor (``quantize_per_tensor(x, s, z, torch.qint8)``,
    ``quantize_per_channel``, ``_empty_affine_quantized``: a quantized dtype among its arguments).

    Why: torch's fake kernels do not describe a quantized result: ``quantize_per_tensor``'s fake tensor is
    a float32 tensor (4 bytes an element, not 1), and ``dequantize``'s shares that fake storage, so the
    graph had the wrong dtype and size and planned ``dequantize``'s new tensor as a view of its input,
    silently; the ATen executor then failed at the call ("Expected out tensor to have dtype c10::qint8").
    Quantized tensors carry their scale and zero point outside their bytes; a plan cannot place them."""
    quantized = {torch.qint8, torch.quint8, torch.qint32, torch.quint4x2, torch.quint2x4}
    found = next((a for a in torch.utils._pytree.tree_leaves((n.args, n.kwargs))
                  if isinstance(a, torch.dtype) and a in quantized), None)
    if found is not None:
        raise GraphError(f"{where}: makes a quantized tensor ({str(found).removeprefix('torch.')}), whose bytes "
                         "torch's fake tensors do not describe (quantized programs are not supported; "
                         "plan the float program, or a fake-quantized one)")


#: ATen op names of the ops that make or take tensors of another layout than strided (``to_sparse``,
#: ``sparse_coo_tensor``, ``_sparse_mm``, ``to_mkldnn``...)
_NOT_DENSE_OP = re.compile(r"sparse|to_mkldnn|mkldnn_reorder")


def _check_dense_op(torch, n: Any, where: str) -> None:
    """Refuse an op that makes or takes a sparse (or mkldnn) tensor, or is asked for one (``layout=torch.sparse_coo``).

    Why: a program loaded from a ``.pt2`` keeps no layout in its fake tensors (every one reads strided), so
    ``(x * 2).to_sparse()`` loaded was planned as a dense 36-byte tensor where eager's holds indices and values
    (in memory its fake tensor says sparse, and ``_check_strided`` refuses it). Such ops all involve a tensor whose
    bytes a plan cannot place."""
    for v in torch.utils._pytree.tree_leaves(n.meta.get("val")):   # (where its fake tensor says: named so)
        if isinstance(v, torch.Tensor):
            _check_strided(torch, v, where)
    layout = next((a for a in torch.utils._pytree.tree_leaves((n.args, n.kwargs))
                   if isinstance(a, torch.layout) and a != torch.strided), None)
    base = _op_name(n.target).split(".")[0]
    if layout is not None or (hasattr(n.target, "_schema") and _NOT_DENSE_OP.search(base)):
        what = str(layout).removeprefix("torch.") if layout is not None else base
        raise GraphError(f"{where}: makes or takes a tensor of another layout than strided ({what}; only dense, "
                         "strided tensors are supported)")


def _check_block_writes(torch, owner: Any, n: Any, where: str) -> None:
    """Refuse a higher-order op whose subgraph writes one of its operands in place: a ``torch.no_grad()`` or
    ``autocast`` block in ``forward`` (``with torch.no_grad(): self.w.add_(1)``) exports as
    ``wrap_with_set_grad_enabled`` / ``wrap_with_autocast`` over a subgraph this importer does not look into.

    Why: the write was invisible. Where the block returned a view of the written tensor, the node was taken for
    a view, which the ATen executor runs once at build time: the parameter was written once, at ``compile``, and
    never by a call (every call returned the first call's result, silently). Otherwise nothing ordered the
    write against the written tensor's other readers. ``run_decompositions()`` inlines such blocks (their
    writes become ordinary in-place ops, or state updates once functionalized), and that program imports."""
    written = _block_write(torch, owner, n)
    if written is not None:
        raise GraphError(f"{where}: writes its operand in place inside a torch.no_grad()/autocast block (subgraph "
                         f"node {written!r}), which cannot be planned as one op; import the decomposed program "
                         "(from_torch(..., decompose=True), or ExportedProgram.run_decompositions())")


def subgraphs(torch, owner: Any, n: Any) -> list:
    """The subgraphs a higher-order op node ``n`` (``cond``, ``map``, ``while_loop``, ``wrap_with_*``) runs: its
    ``get_attr`` operands resolved on ``owner`` (the module that holds them), in argument order; [] for any other
    node. Shared by the importer and the ATen executor, which both look into them (writes, random draws)."""
    if n.op != "call_function" or not isinstance(n.target, torch._ops.HigherOrderOperator):
        return []
    found = []
    for arg in _flat_nodes(torch, (n.args, n.kwargs)):
        if arg.op != "get_attr":
            continue
        sub = owner
        for part in str(arg.target).split("."):
            sub = getattr(sub, part, None)
        if isinstance(sub, torch.fx.GraphModule):
            found.append(sub)
    return found


def _literal_detach(torch, m: Any) -> bool:
    """Whether FX node ``m`` is the ``detach_`` of a ``lift_fresh_copy``: a ``torch.tensor([...])`` literal's, which
    writes no bytes, and those of a fresh copy.

    Why: export's fake ``lift_fresh_copy`` shares the lifted constant's fake storage, so a literal in a
    ``torch.no_grad()`` block (``x[:, torch.tensor([2, 0])]``) was refused as a block writing its operand in place
    (round 75). A ``detach_`` of an operand itself (``x.detach_()`` in the block) is still refused: the executor runs
    it on the input's arena view, which ``detach_`` refuses."""
    if m.op != "call_function" or m.target is not torch.ops.aten.detach_.default or not m.args:
        return False
    src = m.args[0]
    return getattr(src, "op", None) == "call_function" and src.target is torch.ops.aten.lift_fresh_copy.default


def wrap_fresh_results(torch, owner: Any, n: Any) -> frozenset[int]:
    """Indices of the results of ``_WRAPS`` node ``n`` (its subgraph a ``get_attr`` of ``owner``) that are a
    ``torch.tensor([...])`` literal made inside the block (``lift_fresh_copy``, through ``detach_`` and any op whose
    fake result shares its first argument's storage): new memory at every call.

    Why: export's fake ``lift_fresh_copy`` shares the lifted constant's fake storage, so the block's result was planned
    as a view of the constant (a weight): ``with torch.no_grad(): idx = torch.tensor([0, 1])`` then ``idx.add_(1)``
    wrote the constant, and the compiled module's second call indexed with ``[2, 3]`` where eager's makes ``[0, 1]``
    afresh (round 75)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    if not is_wrap(n):
        return frozenset()
    fresh = set()
    for sub in subgraphs(torch, owner, n)[:1]:
        out = next((m for m in sub.graph.nodes if m.op == "output"), None)
        results = out.args[0] if out is not None and out.args else ()
        for k, m in enumerate(results if isinstance(results, (list, tuple)) else (results,)):
            for _ in range(len(sub.graph.nodes)):
                if getattr(m, "op", None) != "call_function":
                    break
                if m.target is torch.ops.aten.lift_fresh_copy.default:
                    fresh.add(k)
                    break
                src = m.args[0] if m.args and isinstance(m.args[0], torch.fx.Node) else None
                mv, sv = m.meta.get("val"), src.meta.get("val") if src is not None else None
                try:
                    same = isinstance(mv, torch.Tensor) and isinstance(sv, torch.Tensor) and \
                        StorageWeakRef(mv.untyped_storage()) == StorageWeakRef(sv.untyped_storage())
                except (NotImplementedError, RuntimeError):
                    same = False
                if not same:
                    break
                m = src
    return frozenset(fresh)


def fresh_storages(torch, out_vals: list, fresh: frozenset[int], where: str) -> set:
    """The fake storages of a block's ``fresh`` results (``wrap_fresh_results``): new memory, though the lifted
    constant's fake storage, so that results sharing one are laid out as views of one another, as the same
    program loaded lays them out (``with torch.no_grad(): w = torch.tensor([1., 2., 3.]); v = w[1:]``, then
    ``w.mul_(s)``: two separate tensors in memory, ``v`` never scaled). A result that is no literal in such a storage
    (a view of the constant itself) is refused naming the node: which bytes it shares is not known."""
    from torch.multiprocessing.reductions import StorageWeakRef

    def ref(v: Any) -> Any:
        try:
            return StorageWeakRef(v.untyped_storage()) if isinstance(v, torch.Tensor) else None
        except (NotImplementedError, RuntimeError):
            return None

    found = {ref(out_vals[k]) for k in fresh if k < len(out_vals)} - {None}
    if any(k not in fresh and ref(v) in found for k, v in enumerate(out_vals)):
        raise GraphError(f"{where}: a torch.no_grad()/autocast block returns a tensor literal it makes "
                         "(torch.tensor([...])) and a view of the constant it is copied from, which cannot be told "
                         "apart; import the decomposed program (from_torch(..., decompose=True), or "
                         "ExportedProgram.run_decompositions())")
    return found


def _block_write(torch, owner: Any, n: Any, depth: int = 0) -> str | None:
    """The name of a node inside ``n``'s subgraphs (``get_attr`` operands of ``owner``, at any depth) that writes
    memory of the subgraph's inputs (by fake storage: a view of an input is the input), else None. Writes to
    tensors the subgraph makes itself are its own business (``_literal_detach``)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    if depth > 32:
        return None
    for sub in subgraphs(torch, owner, n):
        inputs = set()
        for p in sub.graph.nodes:
            val = p.meta.get("val")
            if p.op == "placeholder" and isinstance(val, torch.Tensor):
                try:
                    inputs.add(StorageWeakRef(val.untyped_storage()))
                except (NotImplementedError, RuntimeError):
                    pass
        nodes = {m.name: m for m in sub.graph.nodes}
        for m in sub.graph.nodes:
            for name in () if _literal_detach(torch, m) else written_args(torch, m):
                val = nodes[name].meta.get("val") if name in nodes else None
                try:
                    hit = not isinstance(val, torch.Tensor) or StorageWeakRef(val.untyped_storage()) in inputs
                except (NotImplementedError, RuntimeError):
                    hit = True
                if hit:
                    return m.name
            inner = _block_write(torch, sub, m, depth + 1)
            if inner is not None:
                return inner
    return None


def _symbolic(d: Any, what: str = "size") -> str:
    """Why a symbolic size cannot be planned, in words that fit where it came from.

    Export makes two kinds of symbols: backed ones (``s0``) for dimensions declared dynamic, which concrete
    example inputs remove; and unbacked ones (``u0``) for sizes computed from a tensor's *values*
    (``nonzero``, ``.tolist()`` split sizes, ``.item()``), which no example input removes: telling the user
    to export with concrete inputs (they did) was wrong for those."""
    try:
        data_dependent = any(str(sym).startswith("u") for sym in d.node.expr.free_symbols)
    except AttributeError:
        data_dependent = False
    if data_dependent and what != "size":   # (round 60: a view at a slot read from values was "a size u1")
        return (f"data-dependent {what} {d} (a view at a place computed from a tensor's values: an index that is a "
                "0-dim tensor, hist[i], traced as select(hist, 0, i.item()); index with a tensor of one element, "
                "hist[i.view(1)], or write with index_copy_/index_put_)")
    if data_dependent:
        # (the executor's way out said after "needs it exact": round 67's CPU sweep, JetMoE's split by expert
        # counts, Reformer's axial columns from .item(), X-MOD's rows selected by language, ended at the dead end)
        return (f"data-dependent size {d} (computed from a tensor's values, e.g. nonzero, .tolist() or .item(); "
                "a plan needs every size before the model runs: from_torch plans a size the program bounds, "
                "torch._check(size <= N), at N; an executor needs it exact: keep that size fixed by the input "
                "shapes (mask the rows with torch.where rather than select them; a mixture of experts: run every "
                "expert on every row and weight the results, which may round differently from the rows selected), "
                "or compile the parts of the model before and after "
                "that line apart, the second taking that tensor as an input)")
    return (f"symbolic size {d} (dynamic shapes are not supported: export with concrete example inputs and no "
            "dynamic_shapes, or give an ExportedProgram with dynamic shapes example inputs, whose sizes it then takes)")


def _concrete(d: Any) -> Any:
    """``d`` as an int where it is one: a symbolic size export pinned to a number (``torch._check(y.shape[0] == 2)``
    after a ``nonzero``: its symbol is replaced by 2), else ``d`` itself. Why: such a size was refused as a "symbolic
    size 2" in memory, while the same program saved and loaded (plain numbers) was planned (round 50)."""
    if isinstance(d, int):
        return d
    node = getattr(d, "node", None)
    try:
        value = node.maybe_as_int() if node is not None else None
    except Exception:  # noqa: BLE001 - not a number torch can tell: symbolic
        value = None
    return value if isinstance(value, int) else d


def _upper_bound(d: Any) -> int | None:
    """The largest value data-dependent size ``d`` (a SymInt of unbacked symbols only: ``u0`` of a ``nonzero``) takes
    within the ranges its shape environment holds for its symbols, else None (a backed symbol, an unbounded range).

    Why: such a size was refused outright, though the program asserts a bound at run time (``torch._check(n <= 5)``,
    and ``nonzero``'s own ``u0 <= numel``, which export keeps as ``_assert_scalar`` nodes and as the symbol's range): a
    buffer of the bound's bytes holds what any run that passes those asserts writes. Only ranges torch derived in this
    process are asked (``_from_exported``'s ``bounded``: a program exported here), never a saved file's word."""
    node = getattr(d, "node", None)
    expr, env = getattr(node, "expr", None), getattr(node, "shape_env", None)
    if expr is None or env is None or not expr.free_symbols or \
            any(not str(sym).startswith("u") for sym in expr.free_symbols):
        return None
    try:
        from torch.utils._sympy.value_ranges import bound_sympy

        upper = bound_sympy(expr, dict(env.var_to_range)).upper
        return int(upper) if upper.is_number and upper.is_finite and bool(upper >= 0) else None
    except Exception:  # noqa: BLE001 - no answer: unbounded
        return None


def _extent(val, where: str, bounded: bool = False) -> tuple[int, int, int]:
    """(storage bytes, byte offset in the storage, bytes spanned) of a fake tensor. ``bounded``: a data-dependent
    size, stride or storage offset counts at its upper bound (``_upper_bound``), each alone: as sizes and strides are
    never negative, ``sum((size - 1) * stride)`` at their bounds is at least the span at any of their values."""
    shape = tuple(_concrete(d) for d in val.shape)
    offset = _concrete(val.storage_offset())
    strides = tuple(_concrete(st) for st in val.stride())
    if bounded:
        shape, strides = _bounded(shape), _bounded(strides)
        offset = _bounded((offset,))[0]
    for d in list(shape) + [offset]:
        if not isinstance(d, int):
            raise GraphError(f"{where}: {_symbolic(d, 'size' if d is not offset else 'storage offset')}")
    item = val.element_size()
    off = offset * item
    numel = math.prod(shape) if shape else 1
    if bounded and numel and not all(isinstance(st, int) for st in strides):
        raise GraphError(f"{where}: {_symbolic(next(st for st in strides if not isinstance(st, int)))}")
    span = 0 if numel == 0 else (sum((s - 1) * st for s, st in zip(shape, strides)) + 1) * item
    try:
        storage = int(val.untyped_storage().nbytes())
    except Exception:
        storage = off + span
    return storage, off, span


def _bounded(dims: tuple) -> tuple:
    """``dims`` with each data-dependent one at its upper bound where it has one (``_upper_bound``)."""
    out = []
    for d in dims:
        upper = None if isinstance(d, int) else _upper_bound(d)
        out.append(d if upper is None else upper)
    return tuple(out)


#: the op namespaces torch itself defines: their fake kernels are torch's own, checked by torch's own tests
_TORCH_NAMESPACES = frozenset({"aten", "prims", "rngprims", "quantized", "_quantized", "quantized_decomposed",
                               "profiler", "c10d", "_c10d_functional", "_c10d_functional_autograd", "_dtensor",
                               "mkldnn", "mkl", "onednn", "higher_order", "inductor", "debugprims"})


#: the op namespaces of libraries whose fake kernels are written and tested with their kernels (transformers' MoE
#: ``grouped_mm_fallback``, torchvision's ``roi_align``): not run. Why: every transformers MoE model on CPU calls one, and
#: a real-size Mixtral's whole forward on CPU at import, to check a fake that mirrors its kernel, is minutes for nothing
_TESTED_NAMESPACES = frozenset({"transformers", "transformers_msa", "torchvision", "torchaudio"})


def _custom_ops(torch, gm: Any, within: str = "", depth: int = 0) -> dict:
    """``{node: how a message names it}`` for the FX nodes of graph module ``gm`` (an ``ExportedProgram``'s
    ``graph_module``), and of the ``cond`` / ``map`` / ``while_loop`` bodies it runs at any depth, that call an op from
    outside torch and its tested libraries (``torch.library``: ``mylib.pad``). ``within``: the words for ``gm``'s place
    (a body's node is named with the top-level node that runs it: body nodes' names repeat across bodies)."""
    found = {}
    for n in gm.graph.nodes:
        if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload) and \
                n.target.namespace not in _TORCH_NAMESPACES | _TESTED_NAMESPACES:
            found[n] = f"node {n.name!r}{within}"
        if depth < 32:
            for sub in subgraphs(torch, gm, n):
                found.update(_custom_ops(torch, sub, within or f" in a body of node {n.name!r}", depth + 1))
    return found


def check_body_constants(torch, gm: Any, within: str = "", depth: int = 0) -> None:
    """Refuse a program a ``cond`` / ``while_loop`` / ``map`` body of which (at any depth) reads a tensor constant
    holding no values (a ``FakeTensor``; a ``meta`` one is a meta model's, planned as before): a GraphError naming the top-level node and the
    constant. ``within``: the words for ``gm``'s place, as ``_custom_ops``.

    Why: torch 2.11's export of ``while_loop(cond, body, (i, x), ())`` whose body closes over a module's parameter
    (``x @ self.w``) keeps that parameter in the body as a constant ``_param_constant0`` that is the FakeTensor it
    traced with, not ``self.w``. Its bytes are nobody's: the program was planned and verified, and the compiled call
    returned 3.6e16, 1e-25, -6.4e29 where eager gives 1.91, 0.47, -0.44, silently (``ep.module()`` itself returns a
    FakeTensor). A forward argument the body closes over is kept so too, and a body's ``acc.add_(x)`` into it lost."""
    for n in gm.graph.nodes:
        if n.op == "get_attr" and depth:
            val = getattr(gm, str(n.target), None)
            if isinstance(val, torch.Tensor) and type(val).__name__ == "FakeTensor":
                raise GraphError(
                    f"node {within}: its body reads tensor constant {str(n.target)!r}, which torch.export recorded "
                    f"without its values ({type(val).__name__} {_described(torch, val)}): the body closes over a tensor "
                    "(a module's parameter or buffer, an argument of forward) rather than taking it as an operand; "
                    "pass it to the op as one instead (a while_loop's: while_loop(cond, body, carried, (self.w,)), "
                    "its cond and body taking it as their last argument)")
        if depth < 32:
            for sub in subgraphs(torch, gm, n):
                check_body_constants(torch, sub, within or repr(n.name), depth + 1)


def _described(torch, t: Any) -> str:
    """``[8, 3] float32 (96 bytes)``: a tensor's shape, dtype and element bytes, as a refusal names them."""
    shape = [_concrete(d) for d in t.shape]
    nbytes = math.prod(shape) * t.element_size() if all(isinstance(d, int) for d in shape) else None
    return f"{shape} {str(t.dtype).removeprefix('torch.')}" + (f" ({nbytes} bytes)" if nbytes is not None else "")


class _FakeMisfit(Exception):
    """A custom op whose real result on the example inputs is not what its fake kernel recorded (``check_custom_fakes``);
    ``words``: the refusal (the interpreter appends its own lines to the exception's text)."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


def check_custom_fakes(torch, ep: Any, example_inputs: tuple, kwargs: dict | None) -> None:
    """Refuse a program exported here from a module whose custom op (one from outside torch: ``torch.library``'s
    ``custom_op`` or ``Library.define``) returns, run for real on the example inputs, a result of another shape or
    dtype than its fake (meta) kernel recorded for the export: a GraphError naming the node, the op and both.

    Why: every size of a plan is the fake kernels' word. torch's own are checked against their real kernels by torch;
    a user's ``register_fake`` is not, and one returning ``[2, 3]`` where the kernel writes ``[8, 3]`` was planned at
    24 bytes for 96 written: the kernel wrote past its slot into its neighbours' bytes, and nothing said so.

    Cheap where it cannot matter, and only where it can tell: programs without a custom op run nothing; otherwise the
    program's graph runs once on CPU (``torch.fx.Interpreter``, no gradients, the caller's random state put back,
    inputs, buffers and constants on clones, parameters where the program writes them: the caller's tensors keep their
    values), only where a custom op's result has a fixed size to compare and where every example input,
    weight and buffer is a CPU tensor. A run that raises, for any reason (a CUDA-only kernel, an op eager refuses on
    these inputs), checks nothing: the import goes on as before. Data-dependent sizes (a fake's symbols) are not
    compared. Ops inside a ``cond``, ``map`` or ``while_loop`` body are, wherever the run calls the body (a branch not
    taken on the example inputs is not run, so not checked): torch's own higher-order ops call each body through a
    checking interpreter. (They were skipped before: a fake under-reporting inside a branch was planned as its word.)"""
    customs = {n: label for n, label in _custom_ops(torch, ep.graph_module).items() if any(
        isinstance(f, torch.Tensor) and all(isinstance(_concrete(d), int) for d in f.shape)
        for f in torch.utils._pytree.tree_leaves(n.meta.get("val")))}
    if not customs:   # (none, or only data-dependent results, which nothing here compares: no run for nothing)
        return
    try:
        flat = list(ep._graph_module_flat_inputs(tuple(example_inputs), dict(kwargs or {})))
    except Exception:  # noqa: BLE001 - inputs torch cannot flatten so: nothing to run the program on
        return
    if not all(not isinstance(x, torch.Tensor) or (x.device.type == "cpu" and type(x) in (
            torch.Tensor, torch.nn.Parameter) and x.layout == torch.strided) for x in flat):
        return
    holders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    written = {a for n in ep.graph.nodes if n.op == "call_function" for a in written_args(torch, n)}
    if len(holders) != len(flat):
        return
    params = {getattr(spec.arg, "name", None) for spec in ep.graph_signature.input_specs
              if str(getattr(spec.kind, "name", spec.kind)) == "PARAMETER"}
    if any(_block_write(torch, ep.graph_module, n) is not None for n in ep.graph.nodes):
        params = set()   # (a body writing its operands in place: every input on a clone, parameters too)
    # (inputs and buffers on clones whatever writes them, through a view too: ``x[0].add_(1)`` writes the slice;
    # parameters, the bulk of the bytes, only where a node writes one itself)
    flat = [x.clone() if isinstance(x, torch.Tensor) and (h.name not in params or h.name in written) else x
            for h, x in zip(holders, flat)]

    class Checking(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            out = super().run_node(n)
            if n in customs:
                _compare(torch, n, out, customs[n])
            return out

        def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
            # (a body the higher-order op calls, run by a checking interpreter of its own: torch's ``cond``, ``map``
            # and ``while_loop`` call it as eager does, once per branch taken, slice or iteration)
            sub = super().get_attr(target, args, kwargs)
            return _Checked(sub) if isinstance(sub, torch.fx.GraphModule) else sub

    class _Checked(torch.nn.Module):
        def __init__(self, gm: Any) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, *args: Any) -> Any:
            return Checking(self.gm).run(*args)

    state = torch.get_rng_state()
    try:
        with torch.no_grad():
            Checking(ep.graph_module).run(*flat)
    except _FakeMisfit as exc:
        raise GraphError(exc.words) from None
    except Exception:  # noqa: BLE001 - a program that does not run here on CPU: nothing is compared
        return
    finally:
        torch.set_rng_state(state)


def _compare(torch, n: Any, out: Any, label: str) -> None:
    """Raise ``_FakeMisfit`` where custom-op node ``n``'s real result ``out`` differs in shape or dtype from its
    recorded fake result (``n.meta["val"]``), leaf by leaf; sizes the fake leaves symbolic are not compared.
    ``label``: the node as the refusal names it (``node 'rows4'``, in a body: ``... in a body of node 'cond' ...``)."""
    real = torch.utils._pytree.tree_leaves(out)
    fake = torch.utils._pytree.tree_leaves(n.meta.get("val"))
    for k, (r, f) in enumerate(zip(real, fake)):
        if not (isinstance(r, torch.Tensor) and isinstance(f, torch.Tensor)):
            continue
        shape = [_concrete(d) for d in f.shape]
        if not all(isinstance(d, int) for d in shape):
            continue
        if list(r.shape) != shape or r.dtype != f.dtype:
            which = f" result {k}" if len(fake) > 1 else " result"
            smaller = math.prod(r.shape) * r.element_size() > math.prod(shape) * f.element_size()
            raise _FakeMisfit(
                f"{label} ({n.target}): the op's{which} on the example inputs is {_described(torch, r)}, where "
                f"its fake (meta) kernel says {_described(torch, f)}" +
                (": a plan sized from the fake kernel gives the op fewer bytes than its kernel writes"
                 if smaller else ": every size after it would be planned from the fake kernel's") +
                " (fix the op's torch.library.register_fake to return what the kernel returns)")
