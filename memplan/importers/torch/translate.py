"""An ``ExportedProgram`` into the graph contract (``_from_exported``): tensors, views, in-place writes,
side results and costs.

Why one function: views, in-place writes and aliases are decided per node from the fake tensors' storages, and each
decision depends on what earlier nodes made; one pass in program order keeps those facts in one place.
"""

from __future__ import annotations

import contextlib
import operator
import re
from typing import Any

from ...errors import GraphError, report_progress
from ...graph import Graph, Node, Tensor
from .. import Progress, node_cost
from ..quiet import stderr_held
from ..torch_ops import flops as _flops
from ..torch_ops import side_results as _side_results
from .checks import (
    _aliases_here,
    _bounded,
    _check_block_writes,
    _check_dense_op,
    _check_not_quantized,
    _check_not_vmapped,
    _check_strided,
    _concrete,
    _declared_aliases,
    _extent,
    _flat_nodes,
    _probed_aliases,
    _python_composite,
    _storages_kept,
    check_body_constants,
    fresh_storages,
    is_wrap,
    wrap_fresh_results,
    written_args,
)
from .common import _KEEPS_STORAGE, EXPORT_LOCK, _op_name, _target_name, node_source
from .dims import MADE_BY
from .layouts import (
    _FRESH,
    _check_no_stray_symbols,
    _check_recorded_results,
    _covers_root,
    _keeps_input_layouts,
    _layout_alone,
    _lone_weight_storages,
    _own_layout,
    _saved_examples,
    _saved_layouts,
    _scatter_result_as_eager,
    _shared_weight,
    _siblings_sharing,
    _view_on_layouts,
    body_reach,
    storage_reach,
    wrapped_siblings,
)


def _traced(torch, trace):
    """``trace()`` (an export, or a decomposition of one), traced again without torch's fake-tensor
    dispatch cache where the cache may have rebuilt a result wrong.

    Why: the cache rebuilds a non-view result as a fresh tensor at storage offset 0 in a storage of its
    elements alone, whatever the kernel gave (torch 2.14, ``_get_output_tensor_from_cache_entry``: offsets
    and storages restored for views only). A ``*_scatter`` result keeps its input's storage offset in a
    storage like its input's (eager's and the uncached fake's), so the second one traced with an input
    layout at an offset (twice in one model, or in an earlier import in the process) had another storage
    offset and root size in the graph than the first: the same module imported twice gave different
    graphs, and an ``as_strided_scatter`` window over such a result (its storage offset counts in that
    storage) took other elements than eager's. Only then (a ``*_scatter`` of an input at an offset or
    in a larger storage: where a rebuilt result can differ) is it traced again, uncached: tracing without
    the cache costs about a third more on a transformer, and most models have no such scatter."""
    with EXPORT_LOCK, _leaked_registration_hooks_removed(torch):
        ep = trace()
        if any(_rebuilt_may_differ(torch, n) for n in ep.graph.nodes):
            with _fake_cache_off(torch):
                ep = trace()
    return ep


#: torch's process-wide module registration hook tables (``register_module_buffer_registration_hook`` and its
#: kin), where an export that raises may leave its own hook behind
_REGISTRATION_HOOKS = ("_global_buffer_registration_hooks", "_global_module_registration_hooks",
                       "_global_parameter_registration_hooks")


@contextlib.contextmanager
def _leaked_registration_hooks_removed(torch):
    """Around a trace: take out each global module registration hook of torch's own code that the trace added and
    left behind.

    Why: torch 2.11's non-strict export registers a global buffer registration hook
    (``_aot_autograd.utils.register_buffer_assignment_hook``) and removes it only when the trace returns; an export
    that raised (a data-dependent guard: the first try of an int-buffer model, any refused model) left it installed
    for the rest of the process, and the user's next ``m.pad = torch.tensor(1)`` on that root module failed inside
    torch with "AssertionError: expected FakeTensor" (seen on the GPU machine's torch 2.11 after
    ``runtime.aten.compile``; torch 2.14 removes it in a ``finally``). Only hooks defined in torch's modules and
    added during the trace are removed: the user's own, and any added before, stay."""
    from torch.nn.modules import module as _module

    tables = [t for t in (getattr(_module, name, None) for name in _REGISTRATION_HOOKS) if isinstance(t, dict)]
    before = [set(t) for t in tables]
    try:
        yield
    finally:
        for table, keys in zip(tables, before):
            for key in [k for k in table if k not in keys]:
                if str(getattr(table[key], "__module__", "") or "").startswith("torch."):
                    table.pop(key, None)


def _rebuilt_may_differ(torch, n) -> bool:
    """Whether FX node ``n`` is a ``_KEEPS_STORAGE`` op whose input lies at a storage offset or in a storage
    larger than its elements (a cache-rebuilt result, at offset 0 in a storage of its elements alone,
    differs from the kernel's there only)."""
    if n.op != "call_function" or _op_name(n.target).split(".")[0] not in _KEEPS_STORAGE or not n.args:
        return False
    x = getattr(n.args[0], "meta", {}).get("val")
    if not isinstance(x, torch.Tensor):
        return False
    try:
        storage, off, span = _extent(x, n.name)
    except Exception:   # symbolic: the import refuses it anyway
        return False
    return off != 0 or storage > span


def _fake_cache_off(torch):
    """A context without torch's fake-tensor dispatch cache (for the fake modes made inside it), where this
    torch has one (``_traced``)."""
    try:
        from torch._dynamo import config
    except ImportError:
        return contextlib.nullcontext()
    if not hasattr(config, "fake_tensor_cache_enabled"):
        return contextlib.nullcontext()
    return config.patch(fake_tensor_cache_enabled=False)


@contextlib.contextmanager
def _partial_graph_dropped(torch):
    """Run ``torch.export.export`` without the partial graph it prints on failure.

    Why: on a data-dependent guard (``if x.any():``, ``.item()`` deciding a branch) export ``print``s the
    whole FX graph traced so far to ``sys.stderr`` (hundreds of lines) before it raises; our GraphError
    says what failed in one line, and a CLI or sweep over models drowned in the dump. Everything else
    export writes to ``sys.stderr`` (warnings) is passed on, only that one dump (the exception's own
    ``partial_fx_graph``) is left out. What export writes is held until it returns (``quiet.stderr_held``: this
    thread's text alone; exports in two threads used to leave ``sys.stderr`` the first one's dead buffer), and
    passing it on is best effort: a closed stderr (``2>&-`` leaves ``sys.stderr`` None) or a full one must not fail
    an export that worked."""

    def pass_on(real: Any, text: str) -> None:
        if real is not None and text:
            try:
                real.write(text)
            except (OSError, ValueError):   # a closed or full stream: the text is lost, the result is not
                pass

    with stderr_held() as (buf, real):   # (this thread's text alone; ``quiet``: threads export at once too)
        try:
            yield
        except BaseException as exc:
            text, dump = buf.getvalue(), getattr(exc, "partial_fx_graph", None)
            if isinstance(dump, str) and dump:
                text = text.replace(dump + "\n", "")
            pass_on(real, text)
            raise
        else:
            pass_on(real, buf.getvalue())


class _Rec:
    """A tensor under construction (kind is settled at the end, once outputs are known)."""

    __slots__ = ("id", "size", "kind", "view_of", "view_offset", "attrs", "storage", "off", "span", "val")

    def __init__(self, id: str, size: int, kind: str, attrs: dict, storage: Any, off: int, span: int,
                 view_of: str | None = None, view_offset: int = 0):
        self.id, self.size, self.kind, self.attrs = id, size, kind, attrs
        self.storage, self.off, self.span = storage, off, span
        self.view_of, self.view_offset = view_of, view_offset
        self.val: Any = None


def _from_exported(torch, ep, name: str, alignment: int, progress: Progress | None,
                   trace: dict | None = None, *, check_records: bool = True, bounded: bool = False) -> Graph:
    """``_graph_of`` (see it), a refusal of one node ("node 'split_with_sizes' (aten...): ...") given the model's
    source line that made the node where export recorded one (``common.node_source``)."""
    try:
        return _graph_of(torch, ep, name, alignment, progress, trace, check_records=check_records, bounded=bounded)
    except GraphError as exc:
        _add_source(exc, ep)
        raise


def _add_source(exc: GraphError, ep: Any) -> None:
    """Append `` (at FILE:LINE in FN: `CODE`)`` to ``exc``'s message, in place, where it opens with a node of
    ``ep``'s graph and names no place yet."""
    text = str(exc.args[0]) if len(exc.args) == 1 else ""
    m = re.match(r"node '([^']+)'", text)
    if m is None or " (at " in text:
        return
    source = node_source(next((n for n in ep.graph.nodes if n.name == m.group(1)), None))
    if source:
        exc.args = (text + source,)


def _graph_of(torch, ep, name: str, alignment: int, progress: Progress | None,
              trace: dict | None = None, *, check_records: bool = True, bounded: bool = False) -> Graph:
    """``check_records``: check each op's recorded result against the op (``_check_recorded_results``), for a program
    given as an ``ExportedProgram`` (loaded from a file, perhaps edited); one exported here from a module is torch's
    own word made in this process, and on CUDA its fake re-run can differ from export's record where no size is
    wrong (a Kosmos-2 text model's ``aten.dropout``, session 43), refusing a program that runs. ``bounded``: the
    program was exported in this process, so a data-dependent size is planned at the bound its shape environment
    holds (``checks._upper_bound``); never for an executor's ``trace``, which runs each tensor at its exact size."""
    from torch.export.graph_signature import InputKind, OutputKind
    from torch.multiprocessing.reductions import StorageWeakRef

    check_body_constants(torch, ep.graph_module)
    sig = ep.graph_signature
    weight_names = {s.arg.name for s in sig.input_specs
                    if s.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
                    and hasattr(s.arg, "name")}
    out_names = [s.arg.name for s in sig.output_specs
                 if s.kind in (OutputKind.USER_OUTPUT, OutputKind.BUFFER_MUTATION, OutputKind.PARAMETER_MUTATION,
                               OutputKind.USER_INPUT_MUTATION)
                 and hasattr(s.arg, "name")]

    #: data-dependent sizes planned at the bounds torch derived from the program's asserts (``_upper_bound``): only for
    #: a program exported in this process (a given one's ranges are its file's word) and for a plan alone (``trace``:
    #: an executor runs each tensor at its exact size, which a bound is not)
    bounded = bounded and trace is None
    recs: dict[str, _Rec] = {}
    order: list[str] = []
    current: dict[str, Any] = {}  # FX node name -> tensor id, or list of ids / None for tuple results
    views_of_root: dict[str, int] = {}
    # in-place writes the planner cannot move (into inputs, weights, viewed tensors) are ordered by data:
    # later readers of that root also read the write's full-root view (read after write), and the write
    # also reads the outputs of the root's readers since the previous write (write after read)
    last_write: dict[str, str] = {}
    readers_since: dict[str, list[str]] = {}
    #: FX values that are numbers read from tensors' values (``item``), with those tensors and the write each
    #: tensor's root had had when it was read (``_value_reads``)
    value_reads: dict[str, tuple[tuple[str, str | None], ...]] = {}
    nodes: list[Node] = []
    #: tensors laid out otherwise than their fake tensors (``_scatter_result_as_eager``), and views of them
    relaid: set[str] = set()
    #: tensors whose fake tensor is not their place in their storage: ``relaid`` ones, and the views of a
    #: loaded program laid out again (its fake tensors all lie at storage offset 0 of storages of their own)
    laid: set[str] = set()
    #: views of a loaded program that could not be laid out again (``_view_on_layouts``): whole-parent views
    loose: set[str] = set()

    def shape_attrs(val) -> dict:
        shape = _bounded(tuple(_concrete(d) for d in val.shape))
        attrs = {"shape": [int(s) for s in shape], "dtype": str(val.dtype).removeprefix("torch.")}
        if any(not isinstance(_concrete(d), int) for d in val.shape):   # (planned at its bound: what it is, in words)
            attrs["bound_of"] = "[" + ", ".join(str(d) for d in val.shape) + "]"
        return attrs

    def new_rec(tid: str, val, kind: str, where: str) -> _Rec:
        _check_strided(torch, val, where)
        size, off, span = _extent(val, where, bounded)
        attrs = shape_attrs(val)
        r = _Rec(tid, max(size, off + span), kind, attrs, StorageWeakRef(val.untyped_storage()), off, span)
        r.val = val
        recs[tid] = r
        order.append(tid)
        return r

    def root_of(tid: str) -> str:
        while recs[tid].view_of is not None:
            tid = recs[tid].view_of
        return tid

    def make_view(tid: str, val, parent: str, where: str, whole: bool = False) -> _Rec:
        _, off, span = _extent(val, where, bounded)
        # (a view at a data-dependent storage offset, ``x[n:]`` of an ``n`` read from values: no one place; it claims
        # its whole parent, a true range, as a loaded view that cannot be laid out again does)
        whole = whole or not isinstance(_concrete(val.storage_offset()), int)
        p = recs[parent]
        # a view's graph bytes are its own elements' range of the storage; a root's, the storage's bytes
        # 0..size (where its elements start at an offset: a *_scatter of a view, clone_preserve_strides)
        start = p.off if p.view_of is not None else 0
        if whole:
            off, span = start, p.size
        if not (start <= off and off + span <= start + (p.span if p.view_of is not None else p.size)):
            parent = root_of(parent)  # outside its direct parent (e.g. an expand); place it in the root
            p = recs[parent]
            start = 0
        if off + span > start + p.size:
            # past its root's bytes (only where a fake tensor lost its place in its storage: an as_strided
            # over a loaded program's input saved without its example): the root grows to what the view
            # touches. Claiming the root's bytes alone planned 32 bytes where the op read 172
            p.size = off + span
            made.pop(p.id, None)   # (grown by a resize_ or an out= write: its storage is no longer what it was made)
        voff, vsize = off - start, span
        attrs = shape_attrs(val)
        r = _Rec(tid, vsize, "intermediate", attrs, StorageWeakRef(val.untyped_storage()), off, span,
                 view_of=parent, view_offset=voff)
        r.val = val
        recs[tid] = r
        order.append(tid)
        rt = root_of(parent)
        views_of_root[rt] = views_of_root.get(rt, 0) + 1
        return r

    graph_nodes = list(ep.graph.nodes)
    #: placeholders whose fake tensor lost the layout of the tensor the program runs on (a loaded program's); first,
    #: as it refuses a weight or input record that disagrees with its tensor, which the record check would blame on
    #: the op reading it ("linear refuses its arguments" for an edited ``lin.weight``)
    restored = _saved_layouts(torch, ep, graph_nodes)
    #: user inputs whose storage is not known (a loaded program saved without its example inputs: each fake tensor lies
    #: in a storage of its own elements): an ``as_strided`` reading past one grows it, where any other is refused
    examples = _saved_examples(ep)
    guessed = {n.name for n in graph_nodes if n.op == "placeholder" and n.name not in weight_names
               and not isinstance(examples.get(n.name), torch.Tensor)}
    #: results of ops that make a fresh tensor, and the bytes it is made of: in memory, torch's fake ``as_strided``
    #: past such a result's storage grows that fake storage (the plan's size) where eager refuses the view
    made: dict[str, int] = {}
    if check_records:
        _check_no_stray_symbols(torch, ep, graph_nodes)
        _check_recorded_results(torch, graph_nodes, ep.graph_module)
    kept = _storages_kept(torch, graph_nodes)

    def val_of(a: Any) -> Any:
        """FX node ``a``'s fake tensor, in its saved tensor's layout where a loaded program lost it."""
        return restored.get(a.name, a.meta.get("val"))

    for n in graph_nodes:   # (a sparse input: refused naming it, before its storage is asked for)
        if n.op == "placeholder" and isinstance(n.meta.get("val"), torch.Tensor):
            _check_strided(torch, val_of(n), f"node {n.name!r} ({_target_name(n.target)})")
    input_storages = {StorageWeakRef(val_of(n).untyped_storage()) for n in graph_nodes
                      if n.op == "placeholder" and n.name not in weight_names
                      and isinstance(n.meta.get("val"), torch.Tensor)}
    relay_inputs = not any(_keeps_input_layouts(torch, n, input_storages, val_of, ep.graph_module)
                           for n in graph_nodes)
    relay_weights = _lone_weight_storages(torch, graph_nodes, weight_names, val_of)
    if any(_keeps_input_layouts(torch, n, set(relay_weights), val_of, ep.graph_module) for n in graph_nodes):
        relay_weights = set()
    #: each weight storage's first weight, by storage (``_shared_weight``: a later weight on it is its view)
    weight_roots: dict[Any, str] = {}
    total = len(graph_nodes)
    for i, n in enumerate(graph_nodes):
        where = f"node {n.name!r} ({_target_name(n.target)})"
        val = n.meta.get("val")
        if n.op in ("placeholder", "get_attr"):
            if isinstance(val, torch.Tensor):
                saved = val_of(n)
                kind = "weight" if (n.op == "get_attr" or n.name in weight_names) else "input"
                shared = _shared_weight(torch, saved, weight_roots) if kind == "weight" else None
                if shared is not None:
                    _check_strided(torch, saved, where)
                    make_view(n.name, saved, shared, where)
                    if saved is not val:
                        laid.add(n.name)
                else:
                    relay = relay_inputs if kind == "input" else \
                        StorageWeakRef(saved.untyped_storage()) in relay_weights
                    own = _own_layout(torch, saved) if relay else saved
                    r = new_rec(n.name, own, kind, where)
                    if kind == "weight":
                        weight_roots.setdefault(StorageWeakRef(saved.untyped_storage()), n.name)
                    if own is not val:
                        laid.add(n.name)
                        # (the results of the program's ops over it share the example's storage: an eval dropout
                        # returning the input, whose schema declares no alias, is found by that storage alone)
                        r.storage = StorageWeakRef(val.untyped_storage())
                current[n.name] = n.name
            continue
        if n.op == "output":
            continue
        if n.op != "call_function":
            raise GraphError(f"{where}: unsupported FX op {n.op!r}")
        _check_not_vmapped(n, where)
        _check_not_quantized(torch, n, where)
        _check_dense_op(torch, n, where)
        _check_block_writes(torch, ep.graph_module, n, where)
        own = storage_reach(torch, n)   # (a body's reach only grows: a *_scatter there writes its own clone)
        # (what an as_strided in a subgraph (a cond branch, a map body) reads is bounded by its operand's storage as one
        # at the top level is: a branch's as_strided((4,), (1,), 6) over an 8-float input grew the input to 40 bytes,
        # where eager raises "out of bounds for storage of size 32" when the branch runs (round 52))
        storage_bound = {**body_reach(torch, ep.graph_module, n, scatter=False), **own}
        for fx_name, (absolute, relative) in {**body_reach(torch, ep.graph_module, n), **own}.items():
            tid = current.get(fx_name)
            if isinstance(tid, str):   # (bytes from its storage's start: its root's bytes 0..size are that storage)
                need = max(absolute, recs[tid].off + relative if relative else 0)
                root = recs[root_of(tid)]
                holds = made.get(root.id, root.size)
                if fx_name in storage_bound and tid not in loose and root.id not in guessed:
                    b_abs, b_rel = storage_bound[fx_name]
                    reads = max(b_abs, recs[tid].off + b_rel if b_rel else 0)
                    if reads > holds:
                        inside = "" if fx_name in own else " (in a subgraph: a branch or body that reads past it when it runs)"
                        raise GraphError(
                            f"{where} reads or writes bytes up to {reads} of the storage of {tid!r}{inside} (an "
                            f"as_strided's storage offset counts from its start), which holds {holds} bytes: torch "
                            f"refuses that at run time (out of bounds for the storage)"
                            f"{_past_words(root.kind, getattr(examples.get(root.id), MADE_BY, None))}")
                root.size = max(root.size, need)
        if n.target is operator.getitem:
            src = current.get(n.args[0].name)
            current[n.name] = src[n.args[1]] if isinstance(src, list) else None
            if n.args[0].name in value_reads:
                value_reads[n.name] = value_reads[n.args[0].name]
            continue
        in_ids: list[str] = []
        in_vals: dict[str, Any] = {}
        for a in _flat_nodes(torch, (n.args, n.kwargs)):
            t = current.get(a.name)
            for tid in (t if isinstance(t, list) else [t]):
                if tid is not None and tid not in in_vals:
                    in_ids.append(tid)
                    in_vals[tid] = a
        out_vals = list(val) if isinstance(val, (list, tuple)) else [val]
        mutated = written_args(torch, n)
        used = _value_reads(n, value_reads, last_write, root_of, where)
        if not any(isinstance(v, torch.Tensor) for v in out_vals) and not any(
                isinstance(current.get(a), (str, list)) for a in mutated) and not _runs_for_effect(n, in_ids):
            # shape arithmetic, asserts: no memory (an op writing its tensor arguments and returning nothing,
            # such as _foreach_add_, is a node: dropped, its writes were silently lost); a number read from a
            # tensor's values is remembered, for the nodes that use it to read that tensor
            reads = used if _op_name(n.target).split(".")[0] in _METADATA_READS or not in_ids else \
                tuple(dict.fromkeys(used + tuple((t, last_write.get(root_of(t))) for t in in_ids)))
            if reads:
                value_reads[n.name] = reads
            continue
        op = _op_name(n.target)
        if trace is not None:
            trace["env"][n.name] = {a.name: current.get(a.name) for a in _flat_nodes(torch, (n.args, n.kwargs))}
        outs: list[str] = []
        ids: list[str | None] = []
        inplace: list[tuple[str, str]] = []
        redirect: dict[str, str] = {}
        forced: set[str] = set()  # roots this node writes in place where it stands
        getitem_names = {u.args[1]: u.name for u in n.users if u.target is operator.getitem}
        declared = _declared_aliases(torch, n, len(out_vals))
        probed: list | None = None
        siblings = _siblings_sharing(torch, out_vals, {recs[t].storage for t in in_ids}) if len(out_vals) > 1 else set()
        #: a no_grad/autocast block's results that are tensor literals it makes: new memory (``wrap_fresh_results``),
        #: whose fake storage (the lifted constant's) is then no operand's, so those sharing one are siblings below
        fresh_wrapped = wrap_fresh_results(torch, ep.graph_module, n) if is_wrap(n) else frozenset()
        operand_storages = {recs[t].storage for t in in_ids} - fresh_storages(torch, out_vals, fresh_wrapped, where)
        #: a no_grad/autocast block's results in one fresh storage: views of the first of them (``wrapped_siblings``)
        wrapped = wrapped_siblings(torch, n, out_vals, operand_storages, current, recs, laid, kept) \
            if len(out_vals) > 1 and is_wrap(n) else {}
        siblings -= set(wrapped)
        for k, v in enumerate(out_vals):
            if not isinstance(v, torch.Tensor):
                ids.append(None)
                continue
            tid = n.name if not isinstance(val, (list, tuple)) else getitem_names.get(k, f"{n.name}.{k}")
            if tid in recs:
                tid = f"{tid}.{k}"
            _check_strided(torch, v, where)
            fixed = _scatter_result_as_eager(torch, op, n, v)
            if k in siblings or (k in fresh_wrapped and k not in wrapped):
                fixed = _layout_alone(torch, v)   # (a literal alone: its own elements, as loaded)
            elif k in wrapped:
                fixed = wrapped[k][1]
            if fixed is not v:
                v = fixed
                relaid.add(tid)
                laid.add(tid)
            sref = StorageWeakRef(v.untyped_storage())
            whole = unshared = composite = False
            alias = None if op.split(".")[0] in _FRESH or k in wrapped or k in fresh_wrapped else next(
                (t for t in in_ids if recs[t].storage == sref), None)
            if alias is None and k < len(declared) and declared[k] is not None:
                # storages not shared (a program loaded from .pt2): trust the schema, except for ops that
                # alias only when they can (reshape of a non-viewable layout copies)
                cand = current.get(declared[k])
                if cand in in_vals and _aliases_here(
                        torch, op, recs[cand].val if cand in laid else in_vals[cand].meta["val"], v, n):
                    alias, unshared = cand, True
            elif alias is None and k not in wrapped and (not kept or _python_composite(torch, n.target)):
                # storages not shared, and no schema to say: a composite op that returns its input or a view
                # of it (eval dropout, einsum "ij->ji", broadcast_tensors) is asked of torch on meta tensors;
                # so is one whose fake result came from a Python kernel, storages kept or not: torch 2.11's
                # eval dropout there is a clone, and ``y = F.dropout(x, training=False); x.add_(1); y * 2``
                # missed the write (eager [6, 8, 10, 12], the compiled call [4, 6, 8, 10])
                if probed is None:
                    probed = _probed_aliases(torch, n, len(out_vals), current, recs, laid)
                cand = current.get(probed[k]) if probed[k] is not None else None
                if cand in in_vals:
                    # (storages kept, the fake result a Python kernel's copy: its layout is the copy's, not the
                    # view's torch returns; a strided input's eval dropout was refused at run by the executor)
                    alias, unshared, composite = cand, True, kept
            writes = alias is not None and in_vals[alias].name in mutated
            simple = writes and (recs[alias].view_of is None and recs[alias].kind == "intermediate"
                                 and views_of_root.get(alias, 0) == 0)
            if alias is None and op.split(".")[0] in _KEEPS_STORAGE and n.args:
                # a result at its input's storage offset, in a storage like its input's: laid out again
                # where the input's fake tensor is not its real layout (a relaid one, a loaded view)
                src = current.get(getattr(n.args[0], "name", None))
                if isinstance(src, str) and src in laid and src not in relaid:
                    v = _view_on_layouts(torch, n, k, src, recs, current, laid, where, True, like=v)
                    laid.add(tid)
            if alias is not None and alias in loose:
                whole = True   # a view of a view placed loosely: loose too
            elif alias is not None and (alias in laid or unshared):
                # a view of (or an in-place write to) a tensor the export lays out otherwise than torch (its
                # fake tensor was derived from that layout; torch's, from the corrected one), or one whose
                # fake tensor has lost its place in its parent's storage: deserialized fake tensors (a
                # program loaded from .pt2) share no storage and all lie at storage offset 0, so `x[1][2:]`
                # was imported as covering its whole parent and the executor refused torch's real view
                try:
                    # (a loaded program's own fake tensor keeps its shape and strides: torch's would differ
                    # in size-1 dimensions only, which the executor tells apart from the export's itself)
                    v = _view_on_layouts(torch, n, k, alias, recs, current, laid, where, simple,
                                         like=None if alias in relaid or composite else v)
                except GraphError:
                    if alias in relaid or not unshared:
                        raise
                    # (no meta kernel, symbolic sizes) the view claims its whole parent: a true range, if a
                    # loose one, never a wrong offset; so do the views of it
                    whole = True
                    loose.add(tid)
                else:
                    laid.add(tid)
                    if alias in relaid:
                        relaid.add(tid)
            if writes:
                if simple:
                    written = new_rec(tid, v, "intermediate", where)
                    # the op writes its result over the written tensor's bytes (``inplace``): that tensor is
                    # planned at least at what it writes. A loaded program's ``torch.add(x, 1, out=y)`` into an
                    # ``empty(0)`` had a 0-byte ``y`` (in memory, its fake storage grew as the export ran: 16)
                    recs[alias].size = max(recs[alias].size, written.size)
                    made.pop(alias, None)   # (its storage may have grown: a resize_, an out= write)
                    inplace.append((tid, alias))
                    redirect[in_vals[alias].name] = tid
                else:
                    make_view(tid, v, alias, where)
                    forced.add(root_of(alias))
            elif alias is not None:
                make_view(tid, v, alias, where, whole=whole)
            elif k in wrapped and wrapped[k][0] != k:
                make_view(tid, v, ids[wrapped[k][0]], where)
            else:
                fresh = new_rec(tid, v, "intermediate", where)
                if op.split(".")[0] not in _KEEPS_STORAGE and not mutated and tid not in relaid and k not in wrapped:
                    made[tid] = fresh.off + fresh.span
            outs.append(tid)
            ids.append(tid)
        for fx_name in mutated:  # written arguments, returned or not
            t = current.get(fx_name)
            for tid in (t if isinstance(t, list) else [t]):
                if isinstance(tid, str) and fx_name not in redirect:
                    forced.add(root_of(tid))
        for r in forced:   # (a write may grow its storage, resize_ of a viewed tensor: no longer what it was made)
            made.pop(r, None)
        extra: list[str] = []
        for r in sorted(forced):  # write after read
            extra += [x for x in readers_since.pop(r, ()) if x not in outs]
        read_roots = {root_of(t) for t in in_ids}
        for r in sorted(read_roots):  # read after write
            w = last_write.get(r)
            if w is not None and w not in outs:
                extra.append(w)
        for r in sorted(forced):
            full = next((o for o in outs if _covers_root(recs, o, r)), None)
            if full is None:
                full = make_view(f"{n.name}.writes.{r}", recs[r].val, r, where, whole=True).id
                outs.append(full)
            last_write[r] = full
        if outs:
            for r in read_roots - forced:
                readers_since.setdefault(r, []).append(outs[0])
        extra += [t for t, _ in used]   # (the tensors whose values gave the numbers it takes: read them)
        in_ids += [x for x in dict.fromkeys(extra) if x not in in_ids]
        current[n.name] = ids if isinstance(val, (list, tuple)) else ids[0]
        for fx_name, tid in redirect.items():
            current[fx_name] = tid
        # (a data-dependent size planned at its bound: the side results' meta run needs plain sizes, and the kernel
        # that writes them is one ``runtime.aten`` does not run on such a program)
        plain = not bounded or all(_plain(torch, v) for v in (*out_vals, *(a.meta.get("val") for a in n.all_input_nodes))
                                   if isinstance(v, torch.Tensor))
        for role, meta in _side_results(torch, op, n, val) if plain else ():  # written by the kernel, read by nobody
            tid = f"{n.name}.{role}"
            new_rec(tid, meta, "intermediate", where)
            outs.append(tid)
            if trace is not None:
                trace["side"].setdefault(n.name, {})[role] = tid
        is_view = all(recs[o].view_of is not None for o in outs) and not inplace
        if is_view and not mutated:
            cost = 0.0
        else:
            nbytes = sum(recs[t].size for t in in_ids) + sum(recs[o].size for o in outs)
            cost = node_cost(_flops(torch, op, n, out_vals) if plain else _bound_flops(recs, in_ids, outs), nbytes)
        nodes.append(Node(n.name, op, tuple(in_ids), tuple(outs), cost, tuple(inplace)))
        if progress is not None:
            report_progress(progress, i + 1, total, caller="from_torch (nodes imported, of all)")

    for fx_name in out_names:
        tid = current.get(fx_name)
        if tid is None or isinstance(tid, list):
            continue
        r = recs[tid]
        if r.kind == "weight" or (r.view_of is not None and recs[root_of(tid)].kind == "weight"):
            continue  # a parameter or buffer returned (or its updated view): it outlives the run anyway
        if r.kind == "input":
            if trace is not None:  # an executor returns the caller's own tensor: nothing to plan
                trace["input_outputs"].add(fx_name)
                continue
            # Returned as given (a T5 or BART decode step returns its `encoder_outputs`): the input's bytes are an
            # output, so they must survive the run. Was refused ("unsupported; return a copy"), which a caller of a
            # library model cannot do (round 54). An output view of the whole input, produced by no node (a view
            # may be), keeps its root to the end as any output view does; no bytes of its own.
            returned = f"{tid}.returned"
            while returned in recs:
                returned += "_"
            make_view(returned, r.val, tid, f"output {fx_name!r}", whole=True).kind = "output"
            continue
        r.kind = "output"
    if trace is None:
        # A user input the program writes in place (``x.add_(1)``, ``x[:10].mul_(2)``, not returned): the caller's tensor
        # holds the written value after the call, so that value is an output of the run, as torch's functional form says
        # (``USER_INPUT_MUTATION``: ``decompose=True`` planned it so). Planned as an ``input`` whose bytes are free after
        # its last reader, other tensors were placed over the written value (round 54). The last write's whole-input view
        # is that value. (An executor's trace copies it out itself: ``runtime.aten``'s write-back.)
        for r, w in last_write.items():
            if recs[r].kind == "input" and recs[w].kind == "intermediate":
                recs[w].kind = "output"
    if not nodes and trace is None:
        # Why refused: a forward computing no tensor (``return None``, ``return 3``, a parameter returned) imported
        # as a graph of no node, and every command then "planned" it silently: nothing the model runs was planned.
        raise GraphError(f"{name}: the program runs no tensor op (its forward returns {_outputs_words(out_names)}): "
                         "nothing to plan; return a tensor the forward computes")
    tensors = tuple(Tensor(r.id, r.size, r.kind, r.view_of, r.view_offset, r.attrs)
                    for r in (recs[t] for t in order))
    if trace is not None:
        trace["fake"].update((t, recs[t].val) for t in order)
        trace["values"].update(current)
    return Graph(name, tensors, tuple(nodes), alignment)


def _plain(torch, v: Any) -> bool:
    """Whether fake tensor ``v``'s sizes, strides and storage offset are all plain numbers (pinned ones too)."""
    return all(isinstance(_concrete(d), int) for d in (*v.shape, *v.stride(), v.storage_offset()))


def _bound_flops(recs: dict, in_ids: list, outs: list) -> float:
    """One operation per element of the largest tensor a node reads or writes, at their planned (bounded) sizes: the
    cost of a node whose data-dependent sizes ``_flops`` cannot count (it asks for exact sizes)."""
    return float(max([recs[t].size // max(1, recs[t].val.element_size()) for t in (*in_ids, *outs)
                      if recs[t].val is not None], default=0))


def _past_words(kind: str, made_by: str | None = None) -> str:
    """What to do about an ``as_strided`` past the storage of a tensor of ``kind`` (``_from_exported``); ``made_by``:
    the options a ``sized_inputs`` input was made for (``dims.MADE_BY``), where it was made so."""
    if kind == "input" and made_by is not None:
        return (f"; the input was made for {made_by}, in a storage of its own elements alone, as a call's dense input "
                "of those sizes lies (eager refuses that too): give sizes for which it holds what the program reads")
    if kind == "input":
        return ("; the example input the program was exported with lies in that storage: export with an example "
                "in the storage the program reads (a view of a larger tensor)")
    return ": a corrupted or edited program, or one that cannot run (eager raises too)"


def _outputs_words(out_names: list) -> str:
    """How a forward's outputs read in a refusal: their FX names, or "no tensor" where it returns none."""
    names = [str(x) for x in out_names if x]
    return "no tensor" if not names else ", ".join(repr(x) for x in names[:4]) + (" ..." if len(names) > 4 else "")


#: ops that return a number read off a tensor's metadata, not its values (their results need no tensor's bytes)
_METADATA_READS = frozenset({"sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "dim", "size", "stride",
                             "numel", "storage_offset", "_assert_tensor_metadata"})


def _runs_for_effect(n: Any, in_ids: list) -> bool:
    """Whether FX node ``n``, an op whose schema returns nothing and that writes no argument, reads a tensor for an
    effect of its own: ``torch._assert_async(cond)`` raising where ``cond`` is false, a custom op that checks or logs
    its argument (``mutates_args=()``, ``-> None``). Such a node reads that tensor, so the op runs where eager's does.
    Why: they were dropped with export's shape asserts ("no memory"), so a compiled call whose check fails ran on
    where eager raises, and a logging op never ran (round 48). Metadata checks (``_assert_tensor_metadata``: static
    shapes hold them) and export's asserts on numbers (``_assert_scalar``: no tensor read) are not."""
    schema = getattr(n.target, "_schema", None)
    return (bool(in_ids) and schema is not None and not schema.returns
            and _op_name(n.target).split(".")[0] not in _METADATA_READS)


def _value_reads(n: Any, value_reads: dict, last_write: dict, root_of: Any, where: str) -> tuple:
    """The ``(tensor id, write its root had had)`` pairs behind the numbers FX node ``n`` takes (``value_reads``:
    an ``item()`` of a tensor, and arithmetic on it); a GraphError where the tensor was written in place since
    its value was read (``last_write``: a node reading the tensor would read the new value).

    Why: ``item`` and the arithmetic on its number return no tensor, so they are no node of the graph, and
    ``torch.full((2,), x.sum().item())`` imported as a ``full`` reading nothing: no plan ordered it after the
    ``sum``, and the ``sum``'s bytes, read by nobody, could be given to another tensor before the number was
    read from them. The node that uses the number now reads the tensor it came from."""
    pairs: list = []
    for a in n.all_input_nodes:
        pairs += value_reads.get(a.name, ())
    for tid, write in pairs:
        if last_write.get(root_of(tid)) != write:
            raise GraphError(f"{where} uses a number read from the values of {tid!r}, which is written in place "
                             f"(by {last_write[root_of(tid)]!r}'s node) before it: unsupported (read the number "
                             "after the write, or clone the tensor first)")
    return tuple(dict.fromkeys(pairs))
