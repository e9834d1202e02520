"""Storages and layouts: which bytes each value occupies, weights kept or shared, and every recorded result
checked against the op run on fake tensors.

Why: a plan sized from an edited record would be smaller than what the op writes. Layouts are computed from the fake
tensors and checked against the records and the saved weights, so a ``.pt2`` is never taken at its JSON's word.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
import threading
from typing import Any

from ..._forklocks import OuterBlock, fork_safe
from ..._warnblock import warnings_caught
from ...errors import GraphError
from ...errors import short_repr as _short
from .. import first_line
from .checks import (
    _checked_target,
    _declared_aliases,
    _device_key,
    _elements,
    _extent,
    _fake_of,
    _flat_nodes,
    _layout_words,
    _lazy_bits_of,
    _meta_arg,
    _overlapping,
    _plain_layout,
    _schema_arg,
    subgraphs,
    wrapped_results,
    written_args,
)
from .common import _KEEPS_STORAGE, _op_name, _target_name
from .dims import _has_dynamic_inputs

#: ops whose ``storage_offset`` argument counts from the start of their input's storage (over a user input, the
#: example's own place in its storage is then part of the program: ``runtime.aten`` asks a call for it), and ops
#: that may grow a storage (a user input's fake storage then holds the grown size, not the example's)
_STORAGE_BOUND = frozenset({"as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter", "set_", "resize_",
                            "resize_as_"})


def _keeps_input_layouts(torch, n: Any, input_storages: set, val_of: Any = None, owner: Any = None) -> bool:
    """Whether FX node ``n`` makes the user inputs' example layouts part of the program (``_own_layout`` is then
    not used): a ``_STORAGE_BOUND`` op, or an op other than an in-place one that writes a user input (an ``out=``
    call, which resizes its ``out`` to the result: ``torch.add(a, b, out=x)`` with an empty ``x`` grows ``x``'s
    storage, and the 12 bytes the program then writes were taken for a larger example's). ``input_storages``: the
    user inputs' storages (``StorageWeakRef``); a write to anything else (a training-mode ``batch_norm``'s running
    statistics, a buffer) leaves the inputs as they are. ``val_of``: an FX node's fake tensor (``_saved_layouts``).
    ``owner``: the module holding the program's subgraphs, where a higher-order op (``cond``, ``map``,
    ``while_loop``) whose body holds a ``_STORAGE_BOUND`` op counts as one (``_bound_in_body``)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    if n.op != "call_function":
        return False
    base = _op_name(n.target).split(".")[0]
    if base in _STORAGE_BOUND or (owner is not None and _bound_in_body(torch, owner, n)):
        return True
    val_of = val_of or (lambda a: a.meta.get("val"))
    written = written_args(torch, n) if not base.endswith("_") else ()
    return any(a.name in written and isinstance(val_of(a), torch.Tensor)
               and StorageWeakRef(val_of(a).untyped_storage()) in input_storages
               for a in _flat_nodes(torch, (n.args, n.kwargs)))


def _bound_in_body(torch, owner: Any, n: Any, depth: int = 0) -> bool:
    """Whether a subgraph of higher-order op node ``n`` (``subgraphs``), at any depth, holds a ``_STORAGE_BOUND`` op.
    Why: an ``as_strided`` inside a ``cond`` branch counts its offset from its operand's storage start as one at the
    top level does, but only the top level's kept the user inputs' example layouts (``_keeps_input_layouts``): an
    input ``arange(20.)[3:5]`` read at ``as_strided((2,), (1,), 6)`` in a branch was planned at its own 8 bytes where
    the branch reads bytes 24..32 of its storage."""
    if depth > 32:
        return False
    return any(m.op == "call_function" and (_op_name(m.target).split(".")[0] in _STORAGE_BOUND
                                            or _bound_in_body(torch, sub, m, depth + 1))
               for sub in subgraphs(torch, owner, n) for m in sub.graph.nodes)


def _body_operands(torch, n: Any) -> list:
    """The FX nodes higher-order op ``n`` hands its subgraphs as their placeholders, in order: its node arguments
    after its last subgraph (``cond(pred, t, f, (x,))``: ``x``; ``map_impl(f, [xs], [p])``: ``xs``, ``p``, of which
    the body gets slices of ``xs``; ``while_loop(c, b, carried, extra)``)."""
    last = max((k for k, a in enumerate(n.args) if isinstance(a, torch.fx.Node) and a.op == "get_attr"), default=None)
    if last is None:
        return []
    return _flat_nodes(torch, (tuple(n.args[last + 1:]), n.kwargs))


def _alias_source(torch, m: Any) -> Any:
    """The FX node whose memory node ``m`` is, following the aliases ops' schemas declare (``view``, ``slice``,
    ``split``'s items): a placeholder where ``m`` is a view of one."""
    for _ in range(10_000):
        if m.op != "call_function":
            return m
        src, k = (m.args[0], m.args[1]) if m.target is operator.getitem else (m, 0)
        if not isinstance(src, torch.fx.Node) or not isinstance(k, int):
            return m
        declared = _declared_aliases(torch, src, k + 1)[k] if src.op == "call_function" else None
        found = next((a for a in src.all_input_nodes if a.name == declared), None)
        if found is None:
            return m
        m = found
    return m


def body_reach(torch, owner: Any, n: Any, depth: int = 0, *, scatter: bool = True) -> dict[str, tuple[int, int]]:
    """``{operand FX name: (absolute, relative)}`` for higher-order op node ``n``: the bytes a ``_STORAGE_BOUND`` view
    in its subgraphs (``as_strided``, ``as_strided_copy``, ``as_strided_scatter``: at any depth) touches in that
    operand's storage, counted from the storage's start (an explicit ``storage_offset``) or from the operand's own
    first element (none given: the view keeps its input's offset; a ``map``'s slice's, the operand's last slice's).

    Why: the top level grows a root to what such a view touches (``make_view``); inside a body nothing did, so a
    loaded program's input (its example not saved: its fake tensor is its elements alone) read by a branch's
    ``as_strided((2,), (1,), 6)`` was planned at 8 bytes where the branch reads 24..32. Sizes that are not plain
    numbers (a body's symbols) are left out. ``scatter=False`` leaves out ``as_strided_scatter`` (whose window counts in
    a clone of its input, dense where the input is not: no bound on the input's storage), as ``storage_reach`` does."""
    reach: dict[str, tuple[int, int]] = {}
    if depth > 32:
        return reach
    operands = _body_operands(torch, n)
    for sub in subgraphs(torch, owner, n):
        holders = [p for p in sub.graph.nodes if p.op == "placeholder"]
        if len(holders) != len(operands):
            continue
        by_holder = dict(zip((p.name for p in holders), operands))
        for m in sub.graph.nodes:
            for src, absolute, relative in _touches(torch, sub, m, depth, scatter=scatter):
                holder = _alias_source(torch, src)
                outer = by_holder.get(holder.name) if holder.op == "placeholder" else None
                if outer is None:
                    continue
                if relative and holder is src:
                    relative += _slice_start(torch, holder, outer)
                else:
                    relative = 0   # (relative to a view of the operand, or through a nested op: not followed)
                was = reach.get(outer.name, (0, 0))
                reach[outer.name] = (max(was[0], absolute), max(was[1], relative))
    return reach


def _touches(torch, sub: Any, m: Any, depth: int, *, scatter: bool = True) -> list[tuple[Any, int, int]]:
    """``(input node, absolute, relative)`` bytes (``body_reach``) that subgraph node ``m`` touches in its inputs'
    storages: an ``as_strided``-like view's, or a nested higher-order op's, by its operands."""
    if m.op != "call_function":
        return []
    if isinstance(m.target, torch._ops.HigherOrderOperator):
        names = {a.name: a for a in _flat_nodes(torch, (m.args, m.kwargs))}
        return [(names[k], a, 0) for k, (a, _) in body_reach(torch, sub, m, depth + 1, scatter=scatter).items()
                if k in names]
    op = _op_name(m.target).split(".")[0]
    if op not in _STRIDED_READS or (not scatter and op == "as_strided_scatter"):
        return []
    x = m.args[0] if m.args else None
    val = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
    size, stride, offset = (_schema_arg(m, k) for k in ("size", "stride", "storage_offset"))
    if not isinstance(val, torch.Tensor) or not all(isinstance(d, int) for d in (*size, *stride)) or \
            not isinstance(offset, (int, type(None))):
        return []
    span = 0 if any(d == 0 for d in size) else (sum((d - 1) * st for d, st in zip(size, stride)) + 1)
    item = val.element_size()
    if offset is None:
        return [(x, 0, span * item)]
    return [(x, (offset + span) * item if span else 0, 0)]


#: the ops that read or write their input's storage at an explicit storage offset (counted from its start)
_STRIDED_READS = frozenset({"as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter"})


def storage_reach(torch, n: Any) -> dict[str, tuple[int, int]]:
    """``{input FX name: (absolute, relative)}`` (as ``body_reach``'s) for an ``as_strided``-family node ``n`` of the
    top level itself: the bytes it touches in its input's storage, from the storage's start (an explicit
    ``storage_offset``) or from the input's first element (none given). Empty for any other node.

    Why: the importer compares them with the storage the input lies in (``_from_exported``): torch refuses an
    ``as_strided`` past its storage at run time ("setStorage: ... out of bounds for storage of size 8"), where its
    fake and meta kernels check nothing, so such a program exported, and was planned with the input grown to what the
    view reads (round 50)."""
    if n.op != "call_function" or isinstance(n.target, torch._ops.HigherOrderOperator) or \
            _op_name(n.target).split(".")[0] == "as_strided_scatter":
        # (``as_strided_scatter`` writes its window into a clone of its input, dense where the input overlaps (an
        # expand): its offset counts in the result's storage, which ``_scatter_result_as_eager`` lays out)
        return {}
    return {x.name: (absolute, relative) for x, absolute, relative in _touches(torch, None, n, 0)}


def _slice_start(torch, holder: Any, outer: Any) -> int:
    """Bytes from operand ``outer``'s first element to the first element of the last slice its subgraph placeholder
    ``holder`` is run on: 0 where ``holder`` is ``outer`` itself (``cond``), the leading dimension's last step
    where it is one slice of it (``map``'s ``xs[i]``)."""
    inner, val = holder.meta.get("val"), outer.meta.get("val")
    if not (isinstance(inner, torch.Tensor) and isinstance(val, torch.Tensor)) or val.dim() != inner.dim() + 1:
        return 0
    steps, stride = val.shape[0], val.stride()[0]
    if not (isinstance(steps, int) and isinstance(stride, int)) or steps == 0:
        return 0
    return (steps - 1) * stride * val.element_size()


def _lone_weight_storages(torch, graph_nodes: list, weight_names: set, val_of: Any = None) -> set:
    """The storages (``StorageWeakRef``) of the weights (parameters, buffers, constants) that no other weight
    shares: each such weight is planned at its own elements' bytes (``_own_layout``), as a user input is.

    Why: a weight's fake tensor in memory is its module tensor's layout, storage and all, so a 4-byte buffer
    ``register_buffer("b", torch.arange(5.)[1])`` was planned at its storage's 20 bytes (its elements 4 bytes
    in), while the same program loaded from a ``.pt2`` (whose fake tensors lie at offset 0 in storages of their
    own elements) was planned at 4: one program, two graphs. Bytes no op of the program reaches are no part of
    it, so both take the 4. Weights sharing a storage keep its layout: a later one is a view of the first
    (``_shared_weight``) at its place in that storage, which a relaid first weight would not cover. ``val_of``: an
    FX node's fake tensor (``_saved_layouts``)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    seen: dict[Any, int] = {}
    for n in graph_nodes:
        val = val_of(n) if val_of is not None else n.meta.get("val")
        if n.op in ("placeholder", "get_attr") and isinstance(val, torch.Tensor) and (
                n.op == "get_attr" or n.name in weight_names):
            try:
                ref = StorageWeakRef(val.untyped_storage())
            except (NotImplementedError, RuntimeError):   # (not strided: refused where it is imported)
                continue
            seen[ref] = seen.get(ref, 0) + 1
    return {ref for ref, count in seen.items() if count == 1}


def _saved_examples(ep: Any) -> dict[str, Any]:
    """``{user input placeholder name: its example}`` from ``ep.example_inputs`` (what ``torch.export.save`` keeps of
    them), paired in the signature's order; empty where the program has none (saved without them) or they do not
    pair. Why a function: a user input's storage is known exactly where its example is (``_saved_layouts`` lays the
    input out as it; ``_storage_reach`` refuses a read past it), and only guessed where it is not."""
    from torch.utils import _pytree as pytree

    user = [n for n in ep.graph_signature.user_inputs if isinstance(n, str)]
    try:
        leaves = pytree.tree_leaves(getattr(ep, "example_inputs", None))
    except Exception:   # (examples of a form pytree cannot flatten: none taken)
        leaves = []
    return dict(zip(user, leaves)) if len(leaves) == len(user) else {}


def _saved_layouts(torch, ep: Any, graph_nodes: list) -> dict[str, Any]:
    """Fake tensors in the layouts of the tensors a program runs on, by placeholder name, for the placeholders
    whose own fake tensor lost that layout: a weight (parameter, buffer, constant) of a program loaded from a
    ``.pt2``, laid out as its saved tensor (``ep.state_dict``, ``ep.constants``), and a user input as its saved
    example (``ep.example_inputs``); weights (and inputs) sharing a storage share one again. Empty for a program
    in memory, whose fake tensors are those tensors' layouts already.

    Why: a loaded program's fake tensors all lie at storage offset 0 of storages of their own elements, but
    ``torch.export.load`` gives its weights back in their saved storages (a slice ``arange(10.)[2:6]`` at
    element 2 of its 40 bytes, sharing them with the other weights on them). An ``as_strided`` over such a
    weight counts its offset from the storage's start: ``p.as_strided((2,), (1,), 4)`` reads bytes 16..24,
    planned as a view of the 16 bytes the loaded fake tensor had (the program in memory: its 40). A restored
    tensor has the fake tensor's shape, strides and dtype; a saved tensor of another one is not taken."""
    from torch.export.graph_signature import InputKind

    saved_of: dict[str, Any] = {}
    weights: dict[str, str] = {}   # placeholder -> the module's name for the weight
    kinds: dict[str, str] = {}   # placeholder -> "parameter", "buffer" or "constant"
    tables = (getattr(ep, "state_dict", None) or {}, getattr(ep, "constants", None) or {})
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR) and name is not None:
            saved_of[name] = next((t[spec.target] for t in tables if spec.target in t), None)
            weights[name] = str(spec.target)
            kinds[name] = {InputKind.PARAMETER: "parameter", InputKind.BUFFER: "buffer"}.get(spec.kind, "constant")
    saved_of.update(_saved_examples(ep))
    groups: dict[tuple, list] = {}
    for n in graph_nodes:
        fake, real = n.meta.get("val"), saved_of.get(n.name)
        if n.op == "placeholder" and isinstance(real, torch.Tensor) and real.layout != torch.strided:
            # (a loaded program's fake tensors are all strided: only the saved tensor tells, where it was saved)
            # (a weight named as the module names it: round 61, "node 'b_s'" was export's name for buffer 's')
            what = f"the module's {kinds[n.name]} {weights[n.name]!r} (node {n.name!r})" if n.name in weights \
                else f"node {n.name!r}"
            raise GraphError(f"{what}: its example (or saved) tensor is a "
                             f"{str(real.layout).removeprefix('torch.')} tensor (only dense, strided tensors are "
                             "supported)")
        if n.op == "placeholder" and n.name in weights:
            _check_saved_weight(torch, n.name, weights[n.name], fake, real)
        if n.op == "placeholder":
            _check_saved_span(torch, n.name, fake, real)
        if n.op != "placeholder" or not _same_tensor_type(torch, fake, real):
            continue
        try:
            key = (str(real.device), real.untyped_storage().data_ptr(), int(real.untyped_storage().nbytes()))
        except Exception:   # (no storage: a fake or sparse saved tensor; its fake tensor stays)
            continue
        groups.setdefault(key if key[1] else (id(real),), []).append((n, fake, real))
    restored: dict[str, Any] = {}
    for members in groups.values():
        n0, fake0, real0 = members[0]
        fakes = {id(f.untyped_storage()) for _, f, _ in members}
        if len(fakes) == 1 and all(f.storage_offset() == r.storage_offset() and
                                   f.untyped_storage().nbytes() == r.untyped_storage().nbytes() and
                                   (f.is_conj(), f.is_neg()) == (r.is_conj(), r.is_neg())
                                   for _, f, r in members):
            continue   # (a program in memory: its fake tensors are these tensors' layouts)
        nbytes = int(real0.untyped_storage().nbytes())
        mode = getattr(fake0, "fake_mode", None)
        try:
            with mode if mode is not None else contextlib.nullcontext():
                base = torch.empty(nbytes, dtype=torch.uint8, device=fake0.device if mode is not None else "meta")
                for n, fake, real in members:
                    item = fake.element_size()
                    typed = base[:nbytes - nbytes % item].view(fake.dtype)
                    restored[n.name] = _lazy_bits_of(   # (a conjugate example: its bit, as in memory)
                        torch, real, typed.as_strided(tuple(fake.shape), tuple(fake.stride()), real.storage_offset()))
        except Exception:   # (a dtype a byte storage cannot be viewed as): those keep their fake tensors
            for n, _, _ in members:
                restored.pop(n.name, None)
    return restored


def _check_weights_held(torch, ep: Any) -> None:
    """Refuse a dynamic program whose weight (parameter, buffer, constant) record disagrees with the tensor it holds
    for it (``_check_saved_weight``), before the program is exported again to specialize it.

    Why: that export runs ``ep.module()``, built on the tensors the program holds, not on its records, and its
    records then agree with them: a ``.pt2`` whose ``[1, 3]`` buffer was replaced in the archive by a ``[5, 3]``
    tensor was planned with that buffer (and the sums it broadcasts into) at the edited size under ``--batch 5``,
    and refused under ``--batch 4`` with torch's "Attempting to broadcast a dimension of length 5", which named
    no buffer. The fixed program's record check (``_saved_layouts``) never saw the original records. A weight the
    program holds no tensor for (``ep.constants`` edited) is refused too: that export failed as "failed: 'c'"."""
    from torch.export.graph_signature import InputKind

    tables = (getattr(ep, "state_dict", None) or {}, getattr(ep, "constants", None) or {})
    records = {n.name: n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"}
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR) and name is not None:
            real = next((t[spec.target] for t in tables if spec.target in t), None)
            if real is None:   # (the export reads it from the module: it failed as a bare KeyError, "failed: 'c'")
                table = "state_dict" if spec.kind != InputKind.CONSTANT_TENSOR and spec.persistent is not False \
                    else "constants"
                what = "tensor constant" if spec.kind == InputKind.CONSTANT_TENSOR else spec.kind.name.lower()
                raise GraphError(f"node {name!r}: the program holds no tensor for its {what} "
                                 f"{str(spec.target)!r} (not in its {table}), which specializing its dynamic shapes "
                                 "needs: a corrupted or edited program, export and save it again")
            _check_saved_weight(torch, name, str(spec.target), records.get(name), real)


def _check_saved_weight(torch, name: str, target: str, fake: Any, real: Any) -> None:
    """Refuse weight placeholder ``name`` (the module's ``target``) whose recorded fake tensor has another shape or
    dtype than the tensor the program holds for it (``real``), naming both.

    Why: the plan sizes a weight by its record, and the program runs on the tensor: a ``.pt2`` whose ``model.json``
    recorded a float32 ``[4, 3]`` buffer as ``[1, 3]`` (or uint8) had it planned at 12 bytes where its tensor holds
    48, silently (its ops' records broadcast it and agree with themselves, ``_check_recorded_results``)."""
    if not (isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor)) or not _plain_layout(torch, fake):
        return
    if tuple(fake.shape) != tuple(real.shape) or fake.dtype != real.dtype or \
            _device_key(fake.device) != _device_key(real.device):
        raise GraphError(f"node {name!r}: the program records weight {target!r} as "
                         f"{_tensor_words(fake, real)}, but holds a {_tensor_words(real, fake)} tensor for it (a corrupted or "
                         "edited program: export and save it again)")


def _check_saved_span(torch, name: str, fake: Any, real: Any) -> None:
    """Refuse placeholder ``name`` whose recorded fake tensor spans other elements than the tensor the program holds
    (a weight) or was exported with (a user input's saved example) for it, of one shape and dtype: more, fewer, or
    elements sharing memory where the tensor's do not.

    Why: the plan sizes a placeholder by its record's span: a ``.pt2`` whose ``model.json`` recorded ``[4, 3]``
    weight ``lin.weight`` (or input ``x``) with strides edited to ``(2**40, 1)`` was planned at 13 TB (round 48a),
    the tensor it runs on spanning 12 elements. Nor another dtype or shape (a weight's is ``_check_saved_weight``'s):
    a ``.pt2`` whose float32 ``[2, 3]`` input ``x`` was recorded float64 (its readers' records edited to match) was
    planned at twice its bytes and every result after it too (round 49). A dynamic record (symbolic sizes) is left
    to the export that specializes it, which records the example inputs it is given."""
    if not (isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor)) or not _plain_layout(torch, fake):
        return
    if real.layout == torch.strided and fake.layout == torch.strided and (
            fake.dtype != real.dtype or tuple(fake.shape) != tuple(real.shape)
            or _device_key(fake.device) != _device_key(real.device)):
        raise GraphError(f"node {name!r}: the program records it as {_tensor_words(fake, real)}, but the tensor it holds or "
                         f"was exported with is {_tensor_words(real, fake)} (a corrupted or edited program: export and save "
                         "it again)")
    if real.layout != torch.strided or fake.layout != torch.strided or tuple(fake.shape) != tuple(real.shape) \
            or fake.dtype != real.dtype or not all(isinstance(d, int) for d in (*fake.shape, *fake.stride())):
        return
    if _elements(fake) != _elements(real) or (_overlapping(torch, fake) and not _overlapping(torch, real)):
        raise GraphError(f"node {name!r}: the program records it as {_layout_words(fake)}, but the tensor it holds "
                         f"or was exported with is {_layout_words(real)}, spanning {_elements(real)} elements, not "
                         f"{_elements(fake)} (a corrupted or edited program: export and save it again)")


def _tensor_words(t: Any, other: Any) -> str:
    """``float32 [4, 3]`` (``float32 [4, 3] on cuda:0`` where ``other``, the tensor it is compared with, lies on
    another device), for the weight and input record checks."""
    on = f" on {t.device}" if _device_key(t.device) != _device_key(other.device) else ""
    return f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}{on}"


def _same_tensor_type(torch, fake: Any, real: Any) -> bool:
    """Whether saved tensor ``real`` is what placeholder fake tensor ``fake`` describes: both dense tensors of one
    dtype, shape and strides, all plain numbers (``_saved_layouts``)."""
    if not (isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor)):
        return False
    if fake.layout != torch.strided or real.layout != torch.strided or fake.dtype != real.dtype:
        return False
    dims = (*fake.shape, *fake.stride(), fake.storage_offset())
    return all(isinstance(d, int) for d in dims) and tuple(fake.shape) == tuple(real.shape) and \
        tuple(fake.stride()) == tuple(real.stride())


def _own_layout(torch, val: Any) -> Any:
    """User input ``val`` (a fake tensor) in a storage of its own elements' bytes, at storage offset 0, its shape
    and strides kept; ``val`` itself where it lies so already (or has symbolic sizes, refused later).

    Why: an input's fake tensor is its *example's* layout, storage and all. An example that was a slice of a
    larger tensor (``big[10:12]``, 32 bytes of a 1600-byte storage) was planned at the whole 1600 bytes, its
    elements 160 bytes in; a 0-dim loss computed by eager's CPU ``mse_loss`` (mean), whose kernel leaves its
    result in a storage of the input's size, was planned at 20 bytes for a 4-byte scalar. A call's input is
    copied into its slot whatever storage the caller's tensor lies in, so the slot needs its elements alone."""
    try:
        storage, off, span = _extent(val, "")
    except GraphError:
        return val
    if off == 0 and storage <= span:
        return val
    mode = getattr(val, "fake_mode", None)
    with mode if mode is not None else contextlib.nullcontext():
        return _lazy_bits_of(torch, val, torch.empty_strided(tuple(val.shape), tuple(val.stride()), dtype=val.dtype,
                                                             device=val.device if mode is not None else "meta"))


def _shared_weight(torch, val: Any, roots: dict) -> str | None:
    """The earlier weight whose storage ``val`` (a weight's fake tensor) shares, else None; ``roots``: each weight
    storage (a ``StorageWeakRef``) with the first weight on it.

    Why: a buffer that is a view of another (``register_buffer("b", self.a[1])``) is a placeholder of its own,
    and was planned as a tensor of its own: ``self.a.add_(x)`` then ``self.b * 2`` had nothing ordering the read
    of ``b`` after the write to ``a``, whose bytes it is (another stream could read the old values). As a view
    of ``a`` it is ordered as every view is. Fake tensors share storages only as the module's tensors do (a
    program in memory; a loaded one keeps no sharing). Looked up by storage: a scan of the weights before each
    one was quadratic (4,000 buffers: 2.8 s of a 4.1 s import)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    try:
        ref = StorageWeakRef(val.untyped_storage())
    except (NotImplementedError, RuntimeError):
        return None
    return roots.get(ref)


def _preserved_strides_result(torch, x: Any, v: Any) -> Any:
    """``v``, a ``*_scatter`` result over the non-overlapping input ``x``, laid out as eager's
    ``clone_preserve_strides(x)`` lays it: a storage of ``x``'s size, ``x``'s strides and storage offset.

    Why: torch's fake kernel gives that layout, but its fake-tensor cache does not: a program exported a second
    time in one process (session 59's CI: the same module exported twice) had ``slice_scatter`` over a view at
    storage offset 2 (of 32 elements) recorded at offset 0 of 30 elements, so the same program imported to another
    graph (the result 120 B instead of 128, its views 8 B lower) by what the process had exported before. A program
    memplan exports itself is traced again without that cache (``translate._traced``); one the caller exported is
    laid out here."""
    try:
        shape, stride, offset = tuple(int(d) for d in x.shape), tuple(int(d) for d in x.stride()), \
            int(x.storage_offset())
        nbytes = int(x.untyped_storage().nbytes())
        if tuple(int(d) for d in v.shape) != shape or v.dtype != x.dtype:
            return v
        if (tuple(int(d) for d in v.stride()), int(v.storage_offset()), int(v.untyped_storage().nbytes())) == \
                (stride, offset, nbytes):
            return v    # (the fake kernel's own layout: eager's)
    except Exception:   # symbolic: the fake kernel's layout stands
        return v
    mode = getattr(v, "fake_mode", None)
    with mode if mode is not None else contextlib.nullcontext():
        base = torch.empty(nbytes // v.element_size(), dtype=v.dtype,
                           device=v.device if mode is not None else "meta")
        return base.as_strided(shape, stride, offset)


def _scatter_result_as_eager(torch, op: str, n: Any, v: Any) -> Any:
    """The result of a ``_KEEPS_STORAGE`` op laid out as eager's kernel lays it out, where its fake tensor gives it
    another layout: rebuilt by torch's fake-tensor cache (``_preserved_strides_result``), or an ``as_strided_scatter``
    over an input whose elements share memory (an ``expand``), below.

    Why: eager's kernel starts from ``clone_preserve_strides(input)``, which cannot keep an overlapping
    layout (a copy into it would write one element twice) and clones such an input into a dense tensor of
    its own (``clone()``'s layout, the window's storage offset counting from its start). The fake kernel
    (torch 2.14's ``prims.as_strided_scatter``) keeps the input's strides and storage: the result got the
    expanded strides and a slot of the input's few bytes, and an executor writing eager's result there
    was refused by torch ("more than one element of the written-to tensor refers to a single memory
    location"), where eager computes. The views of the result and in-place writes to it, whose fake tensors
    were derived from the fake layout, are laid out again from the corrected one (``_view_on_layouts``)."""
    if op.split(".")[0] not in _KEEPS_STORAGE or not n.args:
        return v
    x = getattr(n.args[0], "meta", {}).get("val")
    if not isinstance(x, torch.Tensor):
        return v
    try:
        if torch._debug_has_internal_overlap(x) != 1:  # 1: MemOverlap::Yes
            return _preserved_strides_result(torch, x, v)
        if op.split(".")[0] != "as_strided_scatter":
            return v
        shape = tuple(int(s) for s in v.shape)
        stride = tuple(int(s) for s in x.stride())
    except Exception:   # symbolic: the import refuses it anyway
        return v
    # clone()'s layout of the input's, computed by torch's own rule (meta tensors: no data)
    want = torch.empty_strided(shape, stride, dtype=v.dtype, device="meta").clone().stride()
    if tuple(v.stride()) == tuple(want) and v.storage_offset() == 0 and \
            v.untyped_storage().nbytes() >= math.prod(shape) * v.element_size():
        return v    # a fake kernel that lays it out as eager does
    mode = getattr(v, "fake_mode", None)
    with mode if mode is not None else contextlib.nullcontext():
        return torch.empty_strided(shape, want, dtype=v.dtype, device=v.device if mode is not None else "meta")


def _view_on_layouts(torch, n: Any, k: int, alias: str, recs: dict, current: dict, laid: set,
                     where: str, fresh: bool, like: Any = None) -> Any:
    """Output ``k`` of view or in-place node ``n`` of ``alias`` (a tensor in ``laid``: laid out otherwise than
    its fake tensor, or one of a loaded program, whose fake tensors lost their storage offsets), laid out as
    torch lays it out over the corrected layouts: the op runs once more on meta tensors of its arguments
    (those in ``laid`` in their corrected layout). A view shares ``alias``'s storage; ``fresh``: an in-place result that
    is a new tensor of the graph, with a storage of its own. ``like``: a tensor whose shape and strides the
    result takes (only its storage offset is torch's). A GraphError where the op fails there."""
    try:
        args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs),
                                             lambda a: _meta_arg(torch, a, current, recs, laid))
        res = n.target(*args, **kwargs)
        r = res[k] if isinstance(res, (list, tuple)) else res
        base = recs[alias].val
        if not isinstance(r, torch.Tensor) or (fresh and r.dtype != base.dtype):
            raise TypeError(f"result {k} is no {base.dtype} tensor")
        shape, stride = (tuple(r.shape), tuple(r.stride())) if like is None else (tuple(like.shape),
                                                                                   tuple(like.stride()))
        mode = getattr(base, "fake_mode", None)
        with mode if mode is not None else contextlib.nullcontext():
            if not fresh:   # a view: in the alias's storage (in its own dtype: view_as_complex, view(dtype))
                if r.dtype != base.dtype:   # (torch views no conjugate or negative tensor as another dtype)
                    n_el = int(base.untyped_storage().nbytes()) // base.element_size()
                    flat = _lazy_bits_of(torch, None, base.as_strided((n_el,), (1,), 0))
                    base = flat.view(r.dtype)
                return _lazy_bits_of(torch, r, base.as_strided(shape, stride, r.storage_offset()))
            own = torch.empty(int(base.untyped_storage().nbytes()) // base.element_size(), dtype=base.dtype,
                              device=base.device)
            return _lazy_bits_of(torch, r, own.as_strided(shape, stride, r.storage_offset()))
    except Exception as exc:
        raise GraphError(f"{where}: cannot lay out this view of {alias!r} again on meta tensors (an "
                         f"as_strided_scatter result the export lays out otherwise than torch, or a view in a "
                         f"loaded program): {first_line(exc)}") from None


def _covers_root(recs: dict, tid: str, root: str) -> bool:
    """Whether view ``tid`` is the whole of ``root`` (offset 0 along its chain, the root's size)."""
    off, t = 0, tid
    while recs[t].view_of is not None:
        off += recs[t].view_offset
        t = recs[t].view_of
    return t == root and off == 0 and recs[tid].size == recs[root].size


#: aliasing ops whose result starts where their input starts (no storage offset of their own)
_OFFSET0 = {"view", "_unsafe_view", "reshape", "reshape_as", "_reshape_alias", "flatten", "unflatten", "permute",
            "transpose", "t", "expand", "expand_as", "unsqueeze", "squeeze", "alias", "detach", "view_as",
            "contiguous", "to", "type_as", "view_as_real", "view_as_complex", "movedim", "swapaxes", "mT", "T"}
#: ops that return new memory although their fake result shares its input's storage (export's fake
#: ``lift_fresh_copy`` of a lifted constant returns the constant's storage; the real op copies it)
_FRESH = {"lift_fresh_copy"}
def _check_no_stray_symbols(torch, ep: Any, graph_nodes: list) -> None:
    """Refuse a given program every input of which has a fixed size but whose record of a node's result has a
    dynamic dimension's symbol (``s77``) in its sizes, strides or storage offset: a GraphError naming the node.

    Why: such a symbol comes from no input (torch makes them only for dynamic inputs; a size computed from values is
    an unbacked ``u0``, named so by ``_symbolic``), so no example input and no ``--dim`` fixes it: a ``.pt2`` whose
    input ``x`` was edited to a fixed size, its ``relu`` left at ``s77``, was refused as a "symbolic size s77" to
    fix with ``--batch N or --dim SYMBOL=N``, and every such option then as "this program has none"."""
    if _has_dynamic_inputs(torch, ep):
        return
    from torch.utils._pytree import tree_leaves

    for n in graph_nodes:
        if n.op != "call_function":
            continue
        for v in tree_leaves(n.meta.get("val")):
            dims = (*v.shape, *v.stride(), v.storage_offset()) if isinstance(v, torch.Tensor) else (v,)
            stray = next((d for d in dims if isinstance(d, torch.SymInt) and any(
                not str(sym).startswith("u") for sym in d.node.expr.free_symbols)), None)
            if stray is not None:
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): its result is recorded with the "
                                 f"dynamic dimension {stray}, but every input of the program has a fixed size, so "
                                 "nothing fixes it (no example input, no --dim): the program's records disagree "
                                 "(an edited .pt2?); export it and save it again")


def _check_recorded_results(torch, graph_nodes: list, owner: Any = None) -> None:
    """Refuse an ATen op node whose recorded result (``meta["val"]``, what a plan sizes) is not what the op makes from
    its recorded arguments: another shape, a dtype of fewer bytes, or fewer bytes spanned than the op's own result; a
    GraphError naming the node. Each op runs once more on fake tensors of its arguments' recorded layouts (no data,
    no memory); a node the fake run cannot take (symbolic sizes, a data-dependent op) is left as recorded, one whose
    kernel refuses its recorded arguments is refused (``_refuses_its_arguments``), and so is one with no fake kernel
    in this process (``_missing_fake_kernel``: its record could be any size).

    Why: a program loaded from a ``.pt2`` is its JSON's word, and the importer trusted every size in it: a file whose
    ``x * 2`` recorded a ``[1, 3]`` result of a ``[4, 3]`` input (an edited or corrupted ``model.json``) was planned
    at 12 bytes where the op writes 48, and one recording that result with strides ``(0, 0)`` at 4 bytes: an arena
    too small, silently. A program in memory agrees with itself (torch made its records the same way). An op that
    writes its arguments is checked too (an edited ``y.add_(1)`` recording ``[1, 3]`` for a ``[4, 3]`` ``y``, its
    reader ``* 3`` ``[1, 3]`` as well, planned that product at 12 bytes where eager writes 48), unless nothing reads
    its result (``_unread_write``)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    modes: dict[bool, Any] = {}
    for n in graph_nodes:
        if n.op != "call_function" or not _checked_target(torch, n, owner) or _unread_write(torch, n):
            continue
        recorded = n.meta.get("val")
        outs = list(recorded) if isinstance(recorded, (list, tuple)) else [recorded]
        if not any(isinstance(v, torch.Tensor) for v in outs) or not all(
                _plain_layout(torch, v) for v in outs if isinstance(v, torch.Tensor)):
            continue
        # (a higher-order op runs in a mode with a shape environment: ``while_loop``'s fake run asks for one, and
        # without it raised, so its record stood unchecked; ATen ops run without, where a data-dependent one raises
        # ``DynamicOutputShapeException``, which ``_check_sizes_asserted`` answers)
        hop = isinstance(n.target, torch._ops.HigherOrderOperator)
        if hop not in modes:
            modes[hop] = FakeTensorMode(shape_env=ShapeEnv()) if hop else FakeTensorMode()
        mode = modes[hop]

        def run(n: Any = n, outs: list = outs, mode: Any = mode) -> list:
            with mode, warnings_caught():
                args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), lambda a: _fake_of(torch, a, owner))
                made = n.target(*args, **kwargs)
                again = _ambient_dtype(torch, n, kwargs, outs[0], made)
                made = made if again is None else n.target(*args, **again)
            return list(made) if isinstance(made, (list, tuple)) else [made]

        try:
            made = run()
            promoted = _default_promoted(torch, outs, made)
            if promoted is not None:   # (made again under the trace's default dtype, as the record says it was)
                made = _under_default_dtype(torch, promoted, run) or made
        except Exception as exc:   # (a symbolic or data-dependent size: the record stands)
            missing = _missing_fake_kernel(exc)
            if missing is not None:
                what = "its op" if missing == _target_name(n.target) else f"op {missing} in its subgraph"
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): {what} has no fake (meta) kernel in "
                                 "this process, so the size the program records for its result cannot be checked "
                                 "against the op (a saved program's record is only its file's word): register the "
                                 "op's fake implementation (torch.library.register_fake) before importing the "
                                 "program") from None
            if _refuses_its_arguments(torch, n, exc):
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the op refuses the arguments the "
                                 f"program records ({type(exc).__name__}: {_short(first_line(exc))}), so it cannot "
                                 "run (a corrupted or edited program: export and save it again)") from None
            if type(exc).__name__ == "DynamicOutputShapeException" and isinstance(n.target, torch._ops.OpOverload):
                _check_sizes_asserted(torch, n, owner)
            continue
        # (a *_scatter's fake kernel keeps an overlapping input's strides, which eager's does not: laid out again
        # where it is imported, ``_scatter_result_as_eager``, and its span is no record to check)
        keeps_layout = _op_name(n.target).split(".")[0] not in _KEEPS_STORAGE
        for k, (v, m) in enumerate(zip(outs, made)):
            if not (isinstance(v, torch.Tensor) and isinstance(m, torch.Tensor)) or not _plain_layout(torch, m):
                continue
            # (the dtype must be the op's own: the trace's default dtype is taken from the record above, and a dtype
            # of more bytes let through for it planned an edited float64 ``relu`` of a float32 program at twice its
            # bytes, a complex128 one at four times, round 49; the elements spanned must agree both ways: a record
            # spanning more planned a linear's [2, 4] result with strides edited to (2**40, 1) at 4 TiB, round 48)
            smaller = v.dtype != m.dtype or (keeps_layout and _elements(v) != _elements(m))
            # (nor may elements share memory where the op's own do not: a [2, 2] result edited to strides (3, 0)
            # spans its 4 elements and writes 2 of them twice)
            smaller = smaller or (keeps_layout and _overlapping(torch, v) and not _overlapping(torch, m))
            # (nor on another device than the op makes it: a plan is one device's memory, and the executor runs each
            # node on its record's device; an edited ``relu`` of a CPU program recorded on ``cuda``, round 50)
            smaller = smaller or _device_key(v.device) != _device_key(m.device)
            if tuple(v.shape) != tuple(m.shape) or smaller:
                which = f"result {k}" if len(outs) > 1 else "result"
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the program records its {which} as "
                                 f"{_layout_words(v, m)}, but the op makes {_layout_words(m, v)} from the arguments it "
                                 "records (a corrupted or edited program: export and save it again)")


def _check_sizes_asserted(torch, n: Any, owner: Any) -> None:
    """Refuse ATen op node ``n``, whose result's size depends on its input's values (``nonzero``, ``masked_select``:
    the fake run without a shape environment cannot size it) and whose record gives it plain sizes, where the program
    asserts nothing of such a size (no ``_assert_scalar`` reads a ``sym_size`` of it): a GraphError naming the node.

    Why: export records such a size as an unbacked symbol (``u0``), refused as data-dependent; a plain number there
    comes only from a check the program keeps (``torch._check(y.shape[0] == 2)``: ``sym_size``, ``eq`` and
    ``_assert_scalar`` nodes). An edited ``.pt2`` whose ``abs`` became ``nonzero`` recording ``[1, 1]`` was planned at
    8 bytes where eager's ``nonzero`` of 4 elements writes up to 32 (round 50)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    try:
        with FakeTensorMode(shape_env=ShapeEnv()), warnings_caught():
            args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), lambda a: _fake_of(torch, a, owner))
            made = n.target(*args, **kwargs)
    except Exception:  # noqa: BLE001 - no answer: every dimension may be the op's choice
        made = None
    results = list(made) if isinstance(made, (list, tuple)) else [made]
    #: each data-dependent size (a symbol, or None: unknown) -> the (result, dimension) pairs it sizes
    by_size: dict[Any, list[tuple[int, int | None]]] = {}
    for k, m in enumerate(results if made is not None else ()):
        for d, size in enumerate(m.shape if isinstance(m, torch.Tensor) else ()):
            if not isinstance(size, int):
                by_size.setdefault(str(size), []).append((k, d))
    if made is None:
        by_size[None] = [(k, None) for k in range(len(results))]
    holders = {0: n} if not isinstance(n.meta.get("val"), (list, tuple)) else {
        u.args[1]: u for u in n.users if u.target is operator.getitem}
    for pairs in by_size.values():
        sizes = [u for k, d in pairs if k in holders for u in holders[k].users
                 if _op_name(u.target).split(".")[0] == "sym_size" and (d is None or _schema_arg(u, "dim") == d)]
        for u in sizes:   # (an asserted size other than the recorded one: the plan would hold the wrong size)
            recorded = u.args[0].meta.get("val") if isinstance(u.args[0], torch.fx.Node) else None
            dim = _schema_arg(u, "dim")
            if not isinstance(recorded, torch.Tensor) or not isinstance(dim, int) or not -recorded.dim() <= dim < \
                    recorded.dim():
                continue
            want = recorded.shape[dim]
            for e in u.users:
                other = [a for a in e.args if a is not u] if e.target is operator.eq else []
                if len(other) == 1 and type(other[0]) is int and other[0] != want and _asserted(torch, e):
                    raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the program records its result's "
                                     f"dimension {dim} as {want}, but asserts at run time that it is {other[0]} "
                                     "(a corrupted or edited program: export and save it again)")
        if not any(_asserted(torch, u) for u in sizes):
            d = pairs[0][1]
            what = f"dimension {d}" if d is not None else "sizes"
            raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the op computes its result's {what} from "
                             "its input's values, but the program records it as a fixed number and asserts nothing "
                             "of it (no runtime check of that size): a corrupted or edited program, export and save "
                             "it again")
        for u in sizes:   # (asserted, but pinned to the record? ``torch._check(n <= 5)`` lets the op write 5 rows)
            recorded, dim = u.args[0].meta.get("val"), _schema_arg(u, "dim")
            if not isinstance(recorded, torch.Tensor) or not isinstance(dim, int) or \
                    not -recorded.dim() <= dim < recorded.dim():
                continue
            want = recorded.shape[dim]
            lo, hi = _asserted_range(torch, u)
            if not lo == hi == want:
                allows = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the program records its result's "
                                 f"dimension {dim} as {want}, a size the op computes from its input's values, but its "
                                 f"asserts do not fix it at {want} (they allow {allows}): the op may write more than "
                                 "planned (a corrupted or edited program: export and save it again)")


#: comparisons of a size with a number that an ``_assert_scalar`` asserts, as ``(lower, upper)`` offsets of the number
#: they bound the size to (``size <= N``: at most N; ``size < N``: at most N - 1; ``N <= size``: at least N)
_SIZE_BOUNDS = {operator.eq: (0, 0), operator.le: (None, 0), operator.lt: (None, -1), operator.ge: (0, None),
                operator.gt: (1, None)}
_SWAPPED = {operator.eq: operator.eq, operator.le: operator.ge, operator.lt: operator.gt, operator.ge: operator.le,
            operator.gt: operator.lt}


def _asserted_range(torch, u: Any) -> tuple[int | None, int | None]:
    """``(lowest, highest)`` the value of FX node ``u`` (a ``sym_size`` of a data-dependent result) may take by the
    program's runtime asserts that compare it with a number directly (``_assert_scalar(le(u, 5))``, the form export
    writes ``torch._check(n <= 5)`` and a pinned ``torch._check(n == 2)`` in); None where none bounds that side.

    Why: ``_check_sizes_asserted`` took any assert reaching the size for one pinning it, so an edited ``.pt2`` whose
    ``nonzero`` (asserted ``u0 <= 5``) recorded ``[1, 2]`` was planned at 16 bytes where eager writes up to 5 rows
    (round 51); only an assert of the size itself counts (``not_(eq(u, 2))`` asserts that it is *not* 2)."""
    lo: int | None = None
    hi: int | None = None
    for e in u.users:
        if e.op != "call_function" or e.target not in _SIZE_BOUNDS or len(e.args) != 2 or not any(
                w.op == "call_function" and _op_name(w.target).split(".")[0] == "_assert_scalar" and w.args
                and w.args[0] is e for w in e.users):
            continue
        op, (a, b) = e.target, e.args
        if a is not u:
            op, a, b = _SWAPPED[op], b, a
        if a is not u or type(b) is not int:
            continue
        low, high = _SIZE_BOUNDS[op]
        if low is not None:
            lo = b + low if lo is None else max(lo, b + low)
        if high is not None:
            hi = b + high if hi is None else min(hi, b + high)
    return lo, hi


def _asserted(torch, s: Any) -> bool:
    """Whether a value computed from FX node ``s`` (a ``sym_size``) reaches an ``_assert_scalar`` of the program. Each
    node is visited once: a hostile program's diamonds of number arithmetic would make every path its own walk."""
    seen, stack = {s}, [s]
    while stack:
        for u in stack.pop().users:
            if u.op != "call_function" or u in seen:
                continue
            if _op_name(u.target).split(".")[0] == "_assert_scalar":
                return True
            seen.add(u)
            stack.append(u)
    return False


def _missing_fake_kernel(exc: BaseException) -> str | None:
    """The op that has no fake (meta) kernel in this process where ``exc`` (a fake run's failure, or one it chained,
    as a higher-order op's subgraph raises it) says so, else None: torch's ``UnsupportedOperatorException`` (an op of
    neither a meta kernel nor a fallback: a ``torch.library`` op with only a CPU or CUDA kernel) or a
    ``torch.library.custom_op`` with no ``register_fake``.

    Why: such a node's record was taken at its word (``_check_recorded_results`` left it as recorded), so a ``.pt2``
    whose custom op's ``[8, 3]`` result was edited to ``[1, 3]`` was planned at 12 bytes where its kernel writes 96;
    and a ``custom_op`` with no fake was refused as an op refusing its arguments, which it does not."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(seen) < 32:
        seen.add(id(e))
        if type(e).__name__ == "UnsupportedOperatorException":
            return str(e.args[0]) if e.args else "?"
        text = str(e)
        if "no fake impl registered for" in text:
            found = re.search(r"CustomOpDef\(([^)]+)\)", text)
            return found[1].replace("::", ".") + ".default" if found else "?"
        e = e.__cause__ or e.__context__
    return None


#: what a fake run raises where the kernel itself refuses its arguments (a shape, an index, a storage offset), as
#: opposed to one that cannot tell (no fake kernel, a symbolic or data-dependent size: subclasses of these, and
#: ``_fake_of``'s TypeError)
_ARGUMENT_ERRORS = (RuntimeError, ValueError, IndexError)


def _refuses_its_arguments(torch, n: Any, exc: BaseException) -> bool:
    """Whether ``exc``, raised by ``_check_recorded_results``'s fake run of ATen op node ``n``, says the op refuses
    the arguments its program records (exactly a RuntimeError, ValueError or IndexError from the kernel: not a
    subclass such as torch's "no fake kernel" or data-dependent errors, nor a higher-order op's subgraph).

    Why: such a node was "left as recorded": an edited ``.pt2`` whose ``linear`` took the ``[4]`` bias as its weight
    (eager: "size mismatch"), or whose ``as_strided`` starts at storage offset -1, was planned from its records
    (the linear at 32 bytes, the as_strided as the whole input) for a program that cannot run (round 49). Programs
    torch exported never fail so: their records are the fake runs' own (no such error over ~120 models checked).
    Arguments recorded on two devices where the kernel takes one (torch's fake ``FakeTensorDeviceMismatchError``, a
    subclass: an edited ``.pt2`` whose input ``x`` was recorded on ``cuda`` and ``linear``'s weight on the CPU)
    are refused too: eager raises "Expected all tensors to be on the same device" (round 50)."""
    return isinstance(n.target, torch._ops.OpOverload) and (
        type(exc) in _ARGUMENT_ERRORS or type(exc).__name__ == "FakeTensorDeviceMismatchError")


def _unread_write(torch, n: Any) -> bool:
    """Whether FX node ``n`` writes a program input (a buffer, a parameter, a user input) and nothing reads its result
    (no user, not an output).

    Why ``_check_recorded_results`` leaves such a node out: export's own write-back of a buffer the ``forward``
    replaced (``self.b = self.b.half()``: ``copy_(b, to)``, nothing reading it) records the new value's layout
    (float16), not the buffer's that ``copy_`` returns (float32), and was refused as an edited program; an unread
    result sizes no other tensor, and a write to an input is planned over the whole input. A write to an
    intermediate is checked even so: later readers of the written tensor read its result."""
    if n.users:
        return False
    written = written_args(torch, n)
    return any(a.op == "placeholder" and a.name in written for a in n.all_input_nodes)


#: each complex dtype's real one: the default dtype under which type promotion makes that complex dtype
_REAL_OF_COMPLEX = {"complex32": "float16", "complex64": "float32", "complex128": "float64"}


def _default_promoted(torch, outs: list, made: list) -> Any:
    """The default dtype (floating) under which the fake run would make a result in its recorded dtype where it made
    it in this process's default dtype instead (so possibly the trace's default, ``int_x / 4``: type promotion to the
    default dtype), or that default's complex dtype (``int_x * 1j``: complex128 under a float64 default); else None."""
    default = torch.get_default_dtype()
    default_complex = next((c for c, r in _REAL_OF_COMPLEX.items() if r == str(default).removeprefix("torch.")), None)
    for v, m in zip(outs, made):
        if not (isinstance(v, torch.Tensor) and isinstance(m, torch.Tensor)) or v.dtype == m.dtype:
            continue
        if m.dtype == default and v.dtype.is_floating_point:
            return v.dtype
        real = _REAL_OF_COMPLEX.get(str(v.dtype).removeprefix("torch."))
        if str(m.dtype).removeprefix("torch.") == default_complex and real is not None:
            return getattr(torch, real)
    return None


def _under_default_dtype(torch, dtype: Any, run: Any) -> Any:
    """``run()`` with torch's default dtype set to ``dtype`` (put back after), None where torch takes no such default.
    Why: ``_check_recorded_results`` runs each op in this process, whose default dtype may not be the trace's: a
    program exported under float32 recorded ``torch.arange(4) / 4`` as float32, and imported where
    ``torch.set_default_dtype(torch.float64)`` was set (a program in memory too) it was refused as "corrupted or
    edited" ("records its result as float32 [4] ..., but the op makes float64 [4]").

    Under ``_DEFAULT_DTYPE_LOCK``: the default is one for the process, and two imports' blocks that overlapped (threads)
    put back each other's, the last out the first's ``dtype``, so the process kept float64 (or float16) as its
    default for good (round 76). A forked child gets back the default the outermost running block found where that
    block is another thread's (``_DEFAULT_DTYPE_BLOCKS``: a worker forked beside an import kept float64 as its
    default for good, the block's thread never running in it; round 76 review)."""
    with _DEFAULT_DTYPE_LOCK:
        old = torch.get_default_dtype()
        # (marked before the change: a fork in between puts back the default it has still)
        with _DEFAULT_DTYPE_BLOCKS.outermost(lambda: torch.set_default_dtype(old)):
            try:
                torch.set_default_dtype(dtype)
            except (TypeError, ValueError, RuntimeError):
                return None
            try:
                return run()
            finally:
                torch.set_default_dtype(old)


#: held while ``_under_default_dtype`` has torch's default dtype changed
_DEFAULT_DTYPE_LOCK = fork_safe(threading.RLock())
#: the outermost running ``_under_default_dtype``, undone in a forked child where another thread runs it
_DEFAULT_DTYPE_BLOCKS = OuterBlock()


#: the dtypes ``torch.set_default_dtype`` takes, and the complex ones each makes a complex result (``full`` of ``1j``)
_DEFAULT_FLOATS = ("float16", "bfloat16", "float32", "float64")
_DEFAULT_COMPLEX = ("complex32", "complex64", "complex128")


def _ambient_dtype(torch, n: Any, kwargs: dict, recorded: Any, made: Any) -> dict | None:
    """``kwargs`` of node ``n`` for ``_check_recorded_results``'s run again, with the recorded result's dtype as
    ``dtype``, where the op takes one, the node leaves it to torch's default dtype (``torch.ones(4)``), the run without
    it (``made``) took this process's default, and the record is a dtype a default could have made; else None (``made``
    stands). Why: that default is the caller's at trace time (a ``forward`` that calls
    ``torch.set_default_dtype(torch.float64)`` records float64 ``ones``), not this process's now, so a default's dtype
    on record is its word; but only such a dtype: an edited ``.pt2`` recording ``ones([4, 3])`` as int8, or
    ``full([3], 2)`` (int64 whatever the default) as int16, was taken at its word and planned smaller than the op
    writes."""
    schema = getattr(n.target, "_schema", None)
    if schema is None or not any(a.name == "dtype" for a in schema.arguments) or _schema_arg(n, "dtype") is not None \
            or not isinstance(recorded, torch.Tensor):
        return None
    first = made[0] if isinstance(made, (list, tuple)) and made else made
    dtype = getattr(first, "dtype", None)
    if dtype is None or n.all_input_nodes and any(isinstance(a.meta.get("val"), torch.Tensor)
                                                  for a in n.all_input_nodes):
        return None   # (``ones_like(x)``, ``x.sum()``: their input's dtype decides, not the default)
    if dtype.is_floating_point:
        allowed = _DEFAULT_FLOATS
    elif dtype.is_complex:
        allowed = _DEFAULT_COMPLEX
    else:
        return None   # (int64 ``arange(3)``, bool ``full(..., True)``: no default decided it, the run is the op's word)
    if str(recorded.dtype).removeprefix("torch.") not in allowed:
        return None
    return {**kwargs, "dtype": recorded.dtype}


def _siblings_sharing(torch, out_vals: list, in_storages: set) -> set[int]:
    """The indices of ``out_vals`` (one node's results) that share one storage with another of them, a storage no
    input holds: ``torch.where(cond)``'s index tensors, the ``unbind`` of one fresh ``nonzero`` result.

    Why: imported in memory, each became a root sized by the whole storage (32 + 32 bytes for two results of 2
    indices, the second one's elements at offset 16), while the program saved and loaded, whose fake tensors each lie
    at offset 0 of a storage of their own, imported them at 16 + 16: a program and its saved copy planned otherwise
    (``_layout_alone`` lays each out as the loaded program does)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    seen: dict = {}
    for k, v in enumerate(out_vals):
        if isinstance(v, torch.Tensor):
            try:
                seen.setdefault(StorageWeakRef(v.untyped_storage()), []).append(k)
            except Exception:
                continue
    return {k for s, ks in seen.items() if len(ks) > 1 and s not in in_storages for k in ks}


def wrapped_siblings(torch, n: Any, out_vals: list, in_storages: set, current: dict, recs: dict,
                     laid: set, kept: bool) -> dict[int, tuple[int, Any]]:
    """For a ``_WRAPS`` node ``n`` (a ``torch.no_grad()`` or ``torch.autocast`` block run as one node) with results
    ``out_vals``: ``{k: (first, layout)}`` for each result in one fresh storage (no operand's) with another result,
    ``first`` the lowest index in that storage and ``layout`` the result's place in it (its fake tensor where the
    export's storages say so, else torch's from the block run again: ``wrapped_results``, unless ``kept``: the
    export's storages are torch's, see ``checks._storages_kept``, and say there are none).

    Why: ``with torch.no_grad(): y = x @ w; z = y[1:]`` returns ``y`` and its view ``z``; planned as two tensors (as
    ``_siblings_sharing`` lays out ``torch.where``'s index tensors) a later ``y.mul_(2)`` never reached ``z``, and the
    ATen executor returned ``z`` unscaled where eager scaled it. The first is the root of the others, at its storage's
    bytes, and the others are its views at their places there."""
    from torch.multiprocessing.reductions import StorageWeakRef

    tensors = [k for k, v in enumerate(out_vals) if isinstance(v, torch.Tensor)]
    layouts = dict.fromkeys(tensors)
    shared = _siblings_sharing(torch, out_vals, in_storages)
    if shared:
        layouts = {k: out_vals[k] for k in tensors}
    elif kept:
        return {}
    else:
        found = wrapped_results(torch, n, current, recs, laid)
        if found is None:
            return {}
        res, owners = found
        layouts = {k: res[k] for k in tensors if k < len(res) and isinstance(res[k], torch.Tensor)
                   and res[k].layout == torch.strided and StorageWeakRef(res[k].untyped_storage()) not in owners
                   and res[k].dtype == out_vals[k].dtype and tuple(res[k].shape) == tuple(out_vals[k].shape)}
        in_storages = set()
    groups: dict = {}
    for k, v in layouts.items():
        if v is not None and (not shared or k in shared):
            groups.setdefault(StorageWeakRef(v.untyped_storage()), []).append(k)
    return {k: (ks[0], layouts[k]) for s, ks in groups.items() if len(ks) > 1 and s not in in_storages for k in ks}


def _layout_alone(torch, v: Any) -> Any:
    """``v``'s shape and strides at storage offset 0 of a storage of its own elements (``_siblings_sharing``); ``v``
    itself where a size, stride or offset is symbolic (the loaded program keeps those too)."""
    try:
        shape = tuple(int(s) for s in v.shape)
        stride = tuple(int(s) for s in v.stride())
        int(v.storage_offset())
    except Exception:
        return v
    mode = getattr(v, "fake_mode", None)
    with mode if mode is not None else contextlib.nullcontext():
        return torch.empty_strided(shape, stride, dtype=v.dtype, device=v.device if mode is not None else "meta")
