"""Lowering: each FX node of the program becomes one ``Launch`` that writes its result in planned memory.

Why a lowering step: an exported program calls functional ATen ops, which allocate their results; an
arena executor must make every result land at its planned offset instead. Per node, in this order:

- a view op (every result a graph view) runs once at build time, and its result must be exactly the
  planned view (same address, shape, strides): nothing runs per call, and a mismatch is an error;
- an op that writes an argument (``relu_``, ``index_copy_``, ``copy_``) runs as it stands on the planned
  views; when the plan gave an in-place result (``inplace {out: in}``) its own place, the functional
  ``out=`` form writes it there instead (or a counted copy moves the input first);
- a few ops get exact kernel-for-kernel lowerings (``linear`` -> ``addmm``/``mm`` out, ``embedding`` ->
  ``index_select`` out, copies and casts -> ``copy_``, factories -> ``fill_``);
- an op whose eager CUDA kernel reads a device value on the host (``masked_fill`` with a 0-dim device
  value, transformers' ``grouped_mm_fallback``) gets a lowering a CUDA graph can capture (``capturable.py``);
- otherwise the op's ``out=`` overload (found by schema) writes into the planned views;
- an op with no ``out=`` form runs functionally and its results are copied into place: ``Launch.copies``
  counts them (and out= overloads that torch itself implements as functional + copy).

A ``Launch`` is just a callable plus what it is: a fused kernel (a compiled subgraph) can stand where an
ATen launch stands, as long as it writes the same views.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from memplan._forklocks import fork_safe
from memplan._warnblock import warnings_caught
from memplan.importers.quiet import logger_off
from memplan.importers.torch import body_reach, written_args

from .capturable import capturable_inplace, capturable_lowering
from .errors import AtenExecutorError
from .exact import COPIES, Scratch, exact_lowering, matmul_out_differs
from .grad_masks import GRAD_PICKED, grad_derived, grad_slots, value_grads, with_grad_mask
from .hostfold import fold, foldable
from .layout import byte_span
from .program import Program

#: factory arguments an out= overload takes from its out tensor instead
_FACTORY = {"dtype", "layout", "device", "pin_memory"}
#: in-place ops that change a tensor's metadata (shape, strides; autograd), never its data. Run as they
#: stand they would rewrite the arena's own view objects (or a parameter's ``requires_grad``), and torch
#: refuses ``detach_`` on a view, which every arena tensor is: their result is the view op's instead
_METADATA_ONLY = {"detach_", "unsqueeze_", "squeeze_", "transpose_", "t_", "swapdims_", "swapaxes_", "as_strided_"}
#: in-place ops that make their tensor name other bytes (``set_``: another tensor's; ``resize_``: more or fewer of
#: its own), writing none. Run as they stand on an arena view they rewrote that view object, which every later
#: call reuses (a second call's ``copy_`` into it failed on the new shape), or pointed a module's buffer into
#: the arena (``self.b.set_(x)``: the buffer then changed with every call)
_REBINDING = {"set_", "resize_", "resize_as_"}
#: ops whose ``storage_offset`` argument counts from the start of the input's storage (``_rebase_storage_offset``)
_STORAGE_OFFSET_OPS = {"as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter"}
#: ops whose out= kernels take two results in one storage for the same tensor (``is_alias_of``): every arena
#: view shares the arena's storage. ``linalg_qr.out`` then triangularised R's old bytes (poison: NaN) and
#: returned a wrong R, or failed an internal assert (a tall matrix). They run functionally, results copied.
_OUTS_APART = {"linalg_qr"}
#: full reductions whose functional kernel refuses an input of no elements ("max(): Expected reduction dim to be
#: specified for input.numel() == 0") where their ``unary_out`` kernel returns its identity (-inf, the dtype's
#: lowest): such a node runs functionally, failing as eager's at each call (round 76: ``x.max()`` of a ``(0, 3)``
#: input returned -inf where eager raises)
_EMPTY_REFUSED = {("max", "default"), ("min", "default")}
#: batch-norm ops of a functionalized program whose saved statistics (results 1 and 2, read by no inference op: the
#: backward's) the CPU kernel makes in the running statistics' dtype for an f16/bf16 input with f32 statistics (a
#: mixed-type batch norm, which eager runs), where the export's fake kernel said the input's dtype (``_mixed_stats``).
#: Private ops that ``nn.BatchNorm`` / ``F.batch_norm`` decompose to, whose statistics no ``forward`` returns; not the
#: public ``torch.native_batch_norm``, whose statistics a caller may get (there the cast would change their dtype)
_BN_STATS_OPS = {"_native_batch_norm_legit_no_training", "_native_batch_norm_legit_functional",
                 "_native_batch_norm_legit"}
#: ops whose kernel follows the grad mode it runs under, not only its arguments: CPU ``lstm`` takes oneDNN's
#: inference path under ``no_grad`` and its training one otherwise, which round differently (one ulp of
#: ``nn.LSTM(4, 6)``'s output). The executor runs its launches under ``no_grad``; these run under the caller's mode
#: (``caller_grad``), as eager's ``forward`` would (round 52); on the CPU only: cuDNN's RNNs follow their
#: ``train`` argument, not the grad mode, and a capture should record no autograd work
_GRAD_MODE_KERNELS = {"lstm"}


class _CallerGrad(threading.local):
    #: the grad mode of the call being run in this thread (``Executor``'s caller's); False outside a call
    enabled = False
    #: the export's values that require grad in eager at this call (``grad_masks.value_grads``) where one of the
    #: caller's inputs does; None where none does (then the weights' flags and ``enabled`` decide, as fixed at build)
    graded: frozenset | None = None


caller_grad = _CallerGrad()
#: Python dunder ops without an out= overload, and the op that has one
_ALIASES = {"__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor"}


@dataclass(frozen=True)
class Launch:
    """One node's work per call: ``run()`` (None: nothing to do, e.g. a view) and what kind it is."""

    node: str
    op: str
    kind: str  # "view" | "out" | "inplace" | "copy" (functional then copied, or through a temporary) | "exact" | "fill" | "noop"
    run: Callable[[], Any] | None
    copies: int = 0  # result copies into the arena per call (functional runs, torch's functional out=)
    scratch_bytes: int = 0  # memory the launch keeps outside the arena (side results the plan has no tensor for)
    #: the export's values whose ``requires_grad`` in eager picks this CPU launch's kernel (``grad_masks``), where a
    #: caller's input may reach one: the executor finds the call's ``caller_grad.graded`` for their inputs
    grad_of: frozenset = frozenset()


@dataclass(frozen=True)
class Target:
    """What lowering needs to know about where it runs."""

    device_type: str          # "cpu" or "cuda"
    autogen: frozenset[str]   # torch's functional + copy out= overloads (``autogen_outs``)
    scratch: Scratch | None = None       # shared buffers for side results the plan has no tensor for
    stream_of: Mapping[str, int] | None = None  # node -> plan stream (who may share scratch)
    #: tensors whose view is torch's real layout rather than the export's fake one (see ``_adopt_layout``)
    adopted: set[str] = field(default_factory=set)
    #: whether results over ``adopted`` tensors follow torch's layout (``lower_program`` turns it off when
    #: that leaves a later view op no planned place: the layouts the plan made, as before session 16)
    adopt: bool = True
    fake: list = field(default_factory=list)  # a FakeTensorMode, made on first use
    #: storages of the module's weights (``_adopt_real_layout``'s probes pass them as they are), made on first use
    weight_ptrs: list = field(default_factory=list)
    #: program constants no node writes (``fixed_constants``), made on first use; and the device copies of
    #: the ones a copy-family op reads from another device (source tensor id -> copy, ``_constant_on_device``)
    constants: list = field(default_factory=list)
    moved: dict = field(default_factory=dict)
    #: (out= overload, argument layouts) -> whether its kernel writes its results' bytes alone
    #: (``_out_stays_in_its_bytes``)
    out_probes: dict = field(default_factory=dict)
    #: host work on fixed constants done once (``hostfold``): tensor id -> host value, and the folds in order
    host: dict = field(default_factory=dict)
    folds: list = field(default_factory=list)
    #: the roots some node writes (``written_roots``), made on first use: never folded
    written: list = field(default_factory=list)
    #: the nodes whose results require grad in eager under grad mode (``grad_masks.grad_derived``), made on first
    #: use by a CPU SDPA node
    grad_derived: list = field(default_factory=list)

    def reads_adopted(self, env: Mapping[str, Any]) -> bool:
        """Whether a node with argument names ``env`` reads a tensor laid out as torch lays it."""
        return self.adopt and bool(self.adopted) and any(t in self.adopted for t in _tids(env))


def lower_program(program: Program, views: Mapping[str, Any], device_type: str, *,
                  scratch: Scratch | None = None, stream_of: Mapping[str, int] | None = None,
                  moved: list | None = None, folds: list | None = None) -> dict[str, Launch]:
    """A Launch for every graph node (keyed by node id); AtenExecutorError names any FX node the executor
    cannot run, never skipping one silently. ``scratch`` and ``stream_of`` let launches of one stream
    share buffers for side results nobody reads. ``moved`` receives (source, device copy) for every program
    constant the launches read moved to another device (``_constant_on_device``): the executor refreshes a
    copy whose source changed in place since; ``folds`` the host work done once (``hostfold.HostFold``)."""
    import torch

    planned = dict(views)
    ctx = Target(device_type, autogen_outs(torch), scratch, stream_of)
    try:
        launches = _lower_program(torch, program, views, ctx)
    except AtenExecutorError:
        # torch's layout for results over tensors it lays out otherwise than the export (_adopt_layout) can
        # leave a later view op without a view in the plan's bytes (a permute then reshape that torch copies):
        # lower again on the plan's layouts, which run (rounding may then differ from eager), or fail as such
        if not ctx.adopted or not isinstance(views, dict):
            raise
        views.clear()
        views.update(planned)
        ctx = Target(device_type, autogen_outs(torch), scratch, stream_of, adopt=False)
        launches = _lower_program(torch, program, views, ctx)
    if moved is not None:
        moved.extend(ctx.moved.values())
    if folds is not None:
        folds.extend(ctx.folds)
    return launches


def check_lowerable(program: Program) -> None:
    """The refusals of ``lower_program`` that depend on the program alone, made before any arena exists: a node
    producing a tensor the graph has no node for, a non-tensor value (an ``item()``) that an op uses, an argument
    the executor cannot reproduce (a script object the export lifted), a graph node with no FX node. Why:
    ``lower_program`` runs on the arena's views, so these came after the arena was allocated (on a GPU, bytes the
    caching allocator then kept reserved) for a program no plan could ever run."""
    import torch

    graph = program.graph
    gens = program.generator_args
    seen: set[str] = set()
    for n in program.exported.graph.nodes:
        if n.op != "call_function":
            continue
        if n.name in graph.node_index:
            seen.add(n.name)
            env = program.env.get(n.name, {})
            used: list = []
            torch.fx.node.map_arg((tuple(n.args), dict(n.kwargs)), used.append)
            for a in used:
                if isinstance(env.get(a.name), (str, list)) or a.op == "get_attr" or a.name in gens:
                    continue
                v = a.meta.get("val")
                if not (isinstance(v, (bool, int, float)) or v is None):
                    raise AtenExecutorError(f"argument {a.name!r} is a {type(v).__name__} the executor cannot "
                                            "reproduce", n.name, str(n.target))
            schema = getattr(n.target, "_schema", None)
            if schema is not None:   # (out= resizing, or x.t_() of, the caller's tensor or a weight)
                _refuse_caller_resize(torch, program, n, env, _mutated(torch, n, schema))
            if _base(n.target) in _METADATA_ONLY and n.args:
                root = _own_tensor(program, n.args[0], env)
                x, r = getattr(n.args[0], "meta", {}).get("val"), n.meta.get("val")
                if root is not None and isinstance(x, torch.Tensor) and isinstance(r, torch.Tensor):
                    _refuse_metadata_change(program, n, root, x, r)
            continue
        _check_unplanned(torch, n)
    missing = [nd.id for nd in graph.nodes if nd.id not in seen]
    if missing:
        raise AtenExecutorError(f"graph node {missing[0]!r} has no FX node in the program")


def _check_unplanned(torch, n: Any) -> None:
    """Refuse FX node ``n``, which no graph node stands for, where it makes a tensor, or a non-tensor value an op
    uses; asserts and metadata checks (``_assert_tensor_metadata``, ``_assert_scalar``) run nothing."""
    if getattr(n.target, "__name__", None) == "getitem":
        return
    val = n.meta.get("val")
    if isinstance(val, torch.Tensor) or (isinstance(val, (list, tuple))
                                         and any(isinstance(v, torch.Tensor) for v in val)):
        raise AtenExecutorError("produces a tensor the graph has no node for", n.name, str(n.target))
    users = [u for u in n.users if u.op != "output"]
    if val is not None and users and not _only_asserted(torch, n):
        raise AtenExecutorError(f"produces a non-tensor value ({type(val).__name__}) that "
                                f"{users[0].name!r} uses: the executor runs only static-shape programs",
                                n.name, str(n.target))


def _lower_program(torch, program: Program, views: Mapping[str, Any], ctx: Target) -> dict[str, Launch]:
    graph = program.graph
    launches: dict[str, Launch] = {}
    for n in program.exported.graph.nodes:
        if n.op != "call_function":
            continue
        if n.name in graph.node_index:
            folded = _lower_folded(torch, program, n, views, ctx)
            launches[n.name] = folded if folded is not None else _lower(torch, program, n, views, ctx)
            _check_input_bytes(program, n)
            _check_body_offsets(torch, program, n)
            continue
        _check_unplanned(torch, n)
    missing = [nd.id for nd in graph.nodes if nd.id not in launches]
    if missing:
        raise AtenExecutorError(f"graph node {missing[0]!r} has no FX node in the program")
    return launches


def _check_input_bytes(program: Program, n: Any) -> None:
    """Each result of node ``n`` that lies in a user input's storage lies within the input's own elements.

    Why: the arena slot of a user input holds a copy of the caller's elements only. A view reaching past them
    (``x.as_strided((4,), (1,), 0)`` of an ``x = base[2:4]``: eager reads ``base``'s bytes around ``x``), or an
    ``out=`` that grows the input (``torch.add(a, 1, out=x)`` with an empty ``x``: eager resizes the caller's
    tensor), read bytes no input copy wrote: NaN under ``poison``, silently wrong otherwise."""
    from .layout import span_bytes

    graph = program.graph
    for tid in graph.node(n.name).outputs:
        root = graph.tensors[graph.root[graph.tensor_index[tid]]]
        if root.kind != "input" or root.id == tid:
            continue
        spec, own = program.specs[tid], program.specs[root.id]
        lo, hi = spec.byte_offset, spec.byte_offset + span_bytes(spec)
        own_lo, own_hi = own.byte_offset, own.byte_offset + span_bytes(own)
        if hi > lo and not (own_lo <= lo and hi <= own_hi):
            raise AtenExecutorError(f"its result {tid!r} spans bytes [{lo}, {hi}) of user input {root.id!r}'s "
                                    f"storage, outside the input's own elements [{own_lo}, {own_hi}): eager reaches "
                                    "the caller's storage around them (as_strided) or grows the caller's tensor (an "
                                    "out= that resizes it); the executor holds a copy of the input's elements only "
                                    "(unsupported)", n.name, str(n.target))


def _check_body_offsets(torch, program: Program, n: Any) -> None:
    """Refuse higher-order op ``n`` (``cond``, ``map``, ``while_loop``) where a subgraph's ``as_strided`` (``_copy``,
    ``_scatter``) takes a storage offset over an operand in the arena (``body_reach``).

    Why: that offset counts from the start of the operand's storage, and every arena tensor's storage is the arena:
    the subgraph, run by torch on the arena's views, read from the arena's start. A branch's
    ``y.as_strided((2,), (1,), 6)`` of an intermediate ``y`` read another tensor's bytes (zeros where eager read
    [12, 14]), silently. A top-level one is rebased (``_rebase_storage_offset``); a subgraph's is not reachable so.
    A weight operand keeps its own storage and runs as eager."""
    graph = program.graph
    for fx_name, (absolute, _relative) in body_reach(torch, program.exported.graph_module, n).items():
        tid = program.env.get(n.name, {}).get(fx_name)
        if not absolute or not isinstance(tid, str) or tid not in graph.tensor_index:
            continue
        if graph.tensors[graph.root[graph.tensor_index[tid]]].kind != "weight":
            raise AtenExecutorError(f"its subgraph takes an as_strided storage offset over operand {tid!r}, which "
                                    "counts from the start of that tensor's storage: in the executor every operand "
                                    "is a view of the arena (unsupported: move the as_strided out of the "
                                    "subgraph)", n.name, str(n.target))


#: runtime checks of export's (a guard on a data-dependent value): not run, like the shape asserts
_ASSERTS = ("_assert_scalar", "_assert_async", "sym_constrain_range", "sym_constrain_range_for_size")


def _only_asserted(torch, n: Any, depth: int = 0) -> bool:
    """Whether non-tensor value ``n`` (an ``item()``'s SymInt) feeds only export's runtime asserts, through
    symbolic arithmetic and comparisons (``u0 <= 6`` -> ``_assert_scalar``), and no op that computes a tensor.

    Why: XLM and FlauBERT ``assert lengths.max().item() <= slen``; export keeps that as ``item`` -> ``le`` ->
    ``_assert_scalar``, and the whole model was refused ("a non-tensor value ... static-shape programs")
    although no size or tensor depends on it. Such asserts are not run, as export's shape asserts are not
    (the plan fixed every size already)."""
    if depth > 64:
        return False
    for u in n.users:
        if u.op == "output":
            return False
        if u.op != "call_function":
            return False
        if _base(u.target).split(".")[0] in _ASSERTS:
            continue
        if not isinstance(u.meta.get("val"), (torch.SymInt, torch.SymBool, torch.SymFloat, int, bool, float)):
            return False   # the value reaches a tensor (or something else the plan would have to know)
        returns = u.target._schema.returns if isinstance(u.target, torch._ops.OpOverload) else ()
        if any(str(r.type).startswith("Tensor") for r in returns):
            return False
        if not _only_asserted(torch, u, depth + 1):
            return False
    return True


def _base(target: Any) -> str:
    s = str(target)
    s = s[len("aten."):] if s.startswith("aten.") else s
    return s.split(".")[0]


def _lower(torch, program: Program, n, views: Mapping[str, Any], ctx: Target) -> Launch:
    gn = program.graph.node(n.name)
    op = n.target
    name = str(op)
    env = program.env.get(n.name, {})
    adopted_in = ctx.reads_adopted(env)
    if adopted_in and gn.inplace:  # a result in place over an input laid out as torch lays it: its layout
        for o, i in gn.inplace:
            if i not in ctx.adopted:
                continue
            if _same_bytes(views[o], views[i]):   # the same view
                views[o] = views[i]
            elif _same_shape(views[o], views[i]) and _dense(views[o]) and _dense(views[i]):
                # placed apart (``leaky_relu_`` run as ``leaky_relu`` out): eager's result is the input
                # itself, in its layout, so the result's bytes take that order too (Swin2SR: 3e-8 after the
                # next convolution, which ran on the export's channels-last order)
                vo, vi = views[o], views[i]
                views[o] = vo.as_strided(tuple(vi.shape), tuple(vi.stride()), vo.storage_offset())
            else:
                continue
            ctx.adopted.add(o)
    # only the arguments read the moved copies: the later steps write ``views`` itself
    read = views if _base(op) in COPIES else _constants_moved_for(torch, program, env, gn, views, ctx, n)
    args, kwargs = _bind(torch, n, env, read, root=program.exported.graph_module,
                       objects=program.generator_args)
    if _base(op) in _STORAGE_OFFSET_OPS:
        args, kwargs = _rebase_storage_offset(torch, n, program, env, views, args, kwargs)
    val = n.meta.get("val")
    out_vals = list(val) if isinstance(val, (list, tuple)) else [val]
    tensor_outs = [k for k, v in enumerate(out_vals) if isinstance(v, torch.Tensor)]
    outs = list(gn.outputs[:len(tensor_outs)])
    out_views = [views[t] for t in outs]
    if _base(op) in COPIES and out_views:
        args, kwargs = _constant_on_device(torch, program, n, env, args, kwargs, out_views[0], ctx)
    schema = getattr(op, "_schema", None)
    mutated = _mutated(torch, n, schema)
    if adopted_in and mutated and not gn.inplace:
        _adopt_written(schema, n, env, views, outs, tensor_outs, ctx.adopted)
    try:
        if mutated:
            return _lower_mutating(torch, program, n, gn, env, views, args, kwargs, mutated, ctx)
        graph = program.graph
        if outs and all(graph.tensor(t).view_of is not None for t in outs):
            return _lower_view(torch, n, op, args, kwargs, out_views, tensor_outs, views, outs, ctx.adopted,
                               adopted_in)
        probed = False
        if adopted_in and _probe_allowed(torch, op):
            # its result takes torch's layout for those inputs: the real kernel's, learned on stand-ins (the
            # fake kernels lay out size-1 dimensions otherwise: an elementwise op over a (1, C, H, W) view
            # with batch stride C keeps it for real, the fake gives C*H*W, and a convolution after it
            # picks channels-last from the one and not the other)
            probed = _adopt_real_layout(torch, op, args, kwargs, outs, tensor_outs, views, ctx,
                                        _weight_ptrs(torch, program, ctx))
        if adopted_in and not probed:  # no real probe: the fake kernel's layout for those inputs
            _adopt_layout(torch, op, args, kwargs, outs, tensor_outs, views, ctx)
        out_views = [views[t] for t in outs]
        if ctx.adopt and not probed and _fake_layout_suspect(torch, op, args, kwargs, out_views):
            _adopt_real_layout(torch, op, args, kwargs, outs, tensor_outs, views, ctx,
                               _weight_ptrs(torch, program, ctx))
            out_views = [views[t] for t in outs]
        side = {role: views[t] for role, t in program.side.get(n.name, {}).items()}
        if ctx.device_type == "cpu" and _base(op) in GRAD_PICKED:
            return _lower_graded(torch, program, n, op, args, kwargs, out_views, tensor_outs, len(out_vals), ctx,
                                 name, side)
        return _lower_result(torch, n.name, op, args, kwargs, out_views, tensor_outs, len(out_vals),
                             ctx, name, side, stats_unread=_results_unread(n, (1, 2)))
    except AtenExecutorError:
        raise
    except Exception as exc:
        raise AtenExecutorError(f"cannot lower: {type(exc).__name__}: {exc}", n.name, name) from exc


def _lower_graded(torch, program: Program, n, op, args, kwargs, out_views, tensor_outs, n_vals: int, ctx: Target,
                  name: str, side: Mapping[str, Any]) -> Launch:
    """A CPU node whose kernel eager picks by an operand's ``requires_grad`` (``grad_masks.GRAD_PICKED``): an SDPA's
    mask, a folding ``matmul``'s matrix, an RNN's weights. Where the operand comes from weights that require grad
    (``grad_derived``), run + copy with the operand passed as requiring grad under grad mode (round 74); where a
    caller's input may reach it (``value_grads`` of every input), the launch also follows ``caller_grad.graded``, the
    values requiring grad at the call (round 75: a caller's ``w`` or ``mask`` that requires grad ran 2e-07 .. 5e-07
    off eager, whose kernels saw the flag where the executor's arena copies never carry it). A node no input and no
    such weight reaches is lowered as any other; one only inputs reach keeps its launch for calls where none of
    them requires grad (the cost of such a call unchanged)."""
    if not ctx.grad_derived:
        ctx.grad_derived.append(grad_derived(torch, program))
        ctx.grad_derived.append(value_grads(torch, program, frozenset(tid for _pos, tid in program.user_inputs)))
    built = grad_slots(torch, n, args, ctx.grad_derived[0])
    reach = grad_slots(torch, n, args, ctx.grad_derived[1]) if ctx.grad_derived[1] else built
    if not reach:
        return _lower_result(torch, n.name, op, args, kwargs, out_views, tensor_outs, n_vals, ctx, name, side)
    names = frozenset(v for _slot, v in reach)
    if built:
        launch = _lower_result(torch, n.name, op, args, kwargs, out_views, tensor_outs, n_vals, ctx, name, side,
                               grad_mask=reach, built=built)
        return replace(launch, grad_of=names)
    launch = _lower_result(torch, n.name, op, args, kwargs, out_views, tensor_outs, n_vals, ctx, name, side)
    alt = _lower_result(torch, n.name, op, args, kwargs, out_views, tensor_outs, n_vals, ctx, name, side,
                        grad_mask=reach, built=())

    def run(plain=launch.run, graded=alt.run, names=names) -> None:
        g = caller_grad.graded
        if g is not None and not names.isdisjoint(g):
            graded()
        else:
            plain()
    return replace(launch, run=run, grad_of=names)


def fixed_constants(torch, program: Program) -> frozenset[str]:
    """Graph ids of the program's constants that no node writes: lifted ``CONSTANT_TENSOR`` inputs (a plain
    tensor attribute, a tensor made in ``forward``) and ``get_attr`` tensors. Never parameters or buffers (a
    user may update those between calls, and the program reads them where they are), never user inputs.
    A constant that an op writes (its schema says so), or that a higher-order op (``torch.cond``: no
    schema to say) takes, is left out: its value may change while the program runs."""
    from torch.export.graph_signature import InputKind

    ep, graph = program.exported, program.graph
    ids = {s.arg.name for s in ep.graph_signature.input_specs
           if s.kind == InputKind.CONSTANT_TENSOR and getattr(s.arg, "name", None) is not None}
    ids |= {n.name for n in ep.graph.nodes if n.op == "get_attr"}
    ids &= {tid for tid in program.weights if tid in graph.tensor_index}
    written = written_roots(torch, program)
    # Storage, not graph identity, decides what a write reaches: two plain attributes over one storage
    # (``self.b = self.a[:2]``) are two lifted constants, and ``b.add_`` changes ``a``; a constant over a
    # parameter's or buffer's storage (``self.t = self.w.detach()``) changes with every update of it. Such
    # a constant is not fixed: moved once, it would be read stale
    unfixed = {_storage_key(program.weights[t]) for t in program.weights if t not in ids or t in written}
    return frozenset(t for t in ids if t not in written and _storage_key(program.weights[t]) not in unfixed)


def _root_id(graph, tid: str) -> str:
    """The id of the root tensor ``tid`` is a view of (``tid`` itself for a root)."""
    return graph.tensors[graph.root[graph.tensor_index[tid]]].id


def written_roots(torch, program: Program) -> frozenset[str]:
    """Graph ids of the root tensors some node writes (its schema says so), or that a higher-order op
    (``torch.cond``: no schema to say) or a ``getitem`` takes: their values may change while the program runs."""
    ep, graph = program.exported, program.graph
    written: set[str] = set()
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        env = program.env.get(n.name, {})
        if not isinstance(n.target, torch._ops.OpOverload):   # a higher-order op (no schema), getitem
            written |= {_root_id(graph, t) for t in _tids(env) if t in graph.tensor_index}
            continue
        for fx in written_args(torch, n):
            tids = env.get(fx)
            for t in tids if isinstance(tids, list) else [tids]:
                if isinstance(t, str) and t in graph.tensor_index:
                    written.add(_root_id(graph, t))
    return frozenset(written)


def _storage_key(t: Any) -> tuple[str, int]:
    """Which memory a weight lives in: its storage's device and address (an empty one is no memory)."""
    ptr = t.untyped_storage().data_ptr()
    return str(t.device), ptr if ptr else -id(t)


def _is_fixed_constant(torch, program: Program, tid: Any, ctx: Target) -> bool:
    """Whether graph tensor ``tid`` is a program constant no node writes, or a view of one (``detach``, a
    slice...): ``fixed_constants``, made once per lowering."""
    graph = program.graph
    if not isinstance(tid, str) or tid not in graph.tensor_index:
        return False
    if not ctx.constants:
        ctx.constants.append(fixed_constants(torch, program))
    return _root_id(graph, tid) in ctx.constants[0]


def _moved_once(ctx: Target, tid: str, x: Any, device: Any, dtype: Any) -> Any:
    """Constant ``x`` (tensor id ``tid``) on ``device`` in ``dtype``, copied the first time it is asked for and
    kept in ``ctx.moved`` (which the executor refreshes after an in-place change of ``x``)."""
    key = (tid, device, dtype)
    entry = ctx.moved.get(key)
    if entry is None:
        entry = ctx.moved[key] = (x, x.to(device=device, dtype=dtype))
    return entry[1]


def constant_source(torch, program: Program, n, env: Mapping[str, Any], ctx: Target) -> str | None:
    """The tensor id of node ``n``'s first argument (a copy-family op's source) where it is a program
    constant no node writes, or a view of one (``detach``, a slice...); else None."""
    fx = n.args[0] if n.args else n.kwargs.get("self", n.kwargs.get("input"))
    tid = env.get(getattr(fx, "name", None))
    return tid if _is_fixed_constant(torch, program, tid, ctx) else None


def _constant_on_device(torch, program: Program, n, env: Mapping[str, Any], args: tuple, kwargs: dict, out,
                        ctx: Target) -> tuple[tuple, dict]:
    """A copy-family op (``type_as``, ``_to_copy``, ``to``, ``clone``...) reading a fixed program constant
    (``constant_source``) on another device than its result reads that constant moved to the result's
    device (in its dtype) once, here. Why: a plain tensor attribute is no buffer, so ``module.to("cuda")`` leaves it on the
    CPU (VideoMAE's sinusoid table), and eager copies the fixed table host to device every call: a CUDA
    graph cannot capture a copy from pageable host memory. An in-place change of that CPU tensor after
    ``compile`` bumps its version counter, and the executor copies it again before the next call or replay
    (``Executor._refresh_moved``); a write through ``.data`` (no version bump) is not seen."""
    x = args[0] if args else None
    if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.device != out.device):
        return args, kwargs
    tid = constant_source(torch, program, n, env, ctx)
    if tid is None:
        return args, kwargs
    # in the result's dtype too: eager's copy between host and device casts on the host (``copy_`` runs
    # ``.to(dtype)`` there first), and so does this one, once
    return (_moved_once(ctx, tid, x, out.device, out.dtype), *args[1:]), kwargs


def _lower_folded(torch, program: Program, n, views: Mapping[str, Any], ctx: Target) -> Launch | None:
    """Host work on fixed constants (``hostfold``): computed once here as eager computes it, and copied
    into its planned bytes every call; None where the node is lowered as any other (a folded view too:
    its bytes are its base's)."""
    if not foldable(torch, n, ctx.device_type):
        return None
    graph = program.graph
    gn = graph.node(n.name)
    if len(gn.outputs) != 1:
        return None
    env = program.env.get(n.name, {})
    if ctx.reads_adopted(env):
        return None
    if not ctx.written:
        ctx.written.append(written_roots(torch, program))
    out = gn.outputs[0]
    # a result some later node writes in place (``a.add_(1)``, through a view too) is no fixed value: its host
    # copy would stay as folded, and a fold reading it (or a view of it taken before the write) would read it stale
    if _root_id(graph, out) in ctx.written[0]:
        return None
    is_view = graph.tensor(out).view_of is not None
    found = fold(torch, n, list(_tids(env)), out, views, ctx.host,
                 lambda tid: _is_fixed_constant(torch, program, tid, ctx),
                 lambda values: _bind(torch, n, env, values, root=program.exported.graph_module,
                                      objects=program.generator_args), is_view)
    if found is None:
        return None
    ctx.folds.append(found)
    if is_view or found.device is None:
        return None
    target, value = views[out], found.device
    return Launch(n.name, str(n.target), "copy", lambda: target.copy_(value), copies=1)


def _constants_moved_for(torch, program: Program, env: Mapping[str, Any], gn, views: Mapping[str, Any],
                         ctx: Target, n=None) -> Mapping[str, Any]:
    """``views`` with each fixed program constant (or view of one) that node ``gn`` reads from another device
    than its planned results replaced by that constant moved to the results' device, in its own dtype, once.
    Why: a module's plain tensor attribute stays on the CPU through ``module.to("cuda")`` and eager works it
    on the host before copying the result over (torchvision's SSD anchors: ``clamp`` of a CPU table, then
    ``.to(device)``); here every result of such an op lives in the device arena, and an op cannot mix
    devices. The values are the same on either device for the ops such host work uses (exact elementwise,
    cat, repeat). The executor copies a moved constant again after an in-place change of its CPU tensor
    (``Executor._refresh_moved``), as for ``_constant_on_device``. A 0-dim constant of an op that eager ran on
    the device (FX node ``n``'s result) stays where it is: eager read it as a host scalar."""
    outs = [views[t] for t in gn.outputs if t in views]
    device = next((v.device for v in outs if isinstance(v, torch.Tensor)), None)
    if device is None:
        return views
    moved: dict[str, Any] = {}
    # where eager ran the op on the device, a 0-dim CPU constant was its own mixed call: CUDA reads it as a host
    # scalar (``x / c`` runs as ``x * (1 / c)``); moved, it would be a device tensor, and the division exact
    scalars = _ran_on_device(torch, n)
    for tid in _tids(env):
        x = views.get(tid)
        if tid in moved or not isinstance(x, torch.Tensor) or x.device == device or (scalars and x.dim() == 0):
            continue
        if _is_fixed_constant(torch, program, tid, ctx):
            moved[tid] = _moved_once(ctx, tid, x, device, x.dtype)
    return {**views, **moved} if moved else views


def _ran_on_device(torch, n) -> bool:
    """Whether eager ran FX node ``n`` on a device other than the CPU (its first tensor result's device)."""
    val = n.meta.get("val") if n is not None else None
    first = next((v for v in val if isinstance(v, torch.Tensor)), None) if isinstance(val, (list, tuple)) else val
    return isinstance(first, torch.Tensor) and first.device.type != "cpu"


def _rebase_storage_offset(torch, n, program: Program, env: Mapping[str, Any], views: Mapping[str, Any],
                           args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``as_strided``'s ``storage_offset`` counts from the start of its input's *storage*. In eager that is
    the input's root tensor's own storage; here it is the arena, where the root starts at its planned
    offset: the same number would read bytes of another tensor (a view 256 bytes off, refused). Shift it
    by where the input's root starts in the arena (its storage's byte 0). Why the root's place and not the
    input view's storage offset less its fake one: a view over a tensor laid out as torch lays it
    (``ctx.adopted``) has torch's storage offset, not the fake's (a channel slice of a channels-last result:
    2 where the fake says 2*H*W), and the difference then moved the window off eager's bytes. A weight (or a
    view of one) is the module's own tensor in its own storage: the offset stands as eager gives it."""
    schema = n.target._schema
    names = [a.name for a in schema.arguments]
    k = names.index("storage_offset")
    given = kwargs.get("storage_offset") if "storage_offset" in kwargs else (args[k] if k < len(args) else None)
    fx = n.args[0] if n.args else n.kwargs.get("self")
    tid = env.get(getattr(fx, "name", None))
    if given is None or not isinstance(tid, str) or tid not in program.specs or tid not in views:
        return args, kwargs   # no offset given: the input's own, the same in both
    graph = program.graph
    ti = graph.tensor_index[tid]
    if not graph.in_arena(ti):
        return args, kwargs
    if _offset_in_a_copy(torch, _base(n.target), views[tid]):
        return args, kwargs
    root = graph.tensors[graph.root[ti]].id
    rv = views[root]
    start = int(rv.storage_offset()) * rv.element_size() - program.specs[root].byte_offset  # root's byte 0
    delta, rest = divmod(start, views[tid].element_size())
    if rest:
        raise AtenExecutorError(f"input {tid!r} starts {rest} bytes off its element size in the arena: "
                                "as_strided's storage offset cannot be moved there", n.name, str(n.target))
    if "storage_offset" in kwargs:
        return args, {**kwargs, "storage_offset": given + delta}
    return (*args[:k], given + delta, *args[k + 1:]), kwargs


def storage_offset_readers(program: Program, *, offset_given: bool = True) -> dict[str, str]:
    """{user input id: the first node that reads its storage offset}: an ``as_strided`` (``as_strided_``,
    ``_copy``, ``_scatter``) with a ``storage_offset`` given, over the input or a view of it. With
    ``offset_given=False``, every such node, with an offset or without: those read the input's storage by strides.

    Why: that offset counts from the start of the *caller's* storage in eager, so eager's window moves with the
    caller's tensor's own storage offset; the executor's copy of the input sits at the export's. A call whose
    input has another storage offset (``base[1:5]`` where the export saw ``base[2:6]``) read other elements than
    eager, silently: the executor asks for the export's offset (``Executor.load_inputs``). Likewise its strides
    (round 42): ``x.as_strided((2, 3), (1, 2))`` of a transposed caller's tensor reads other elements in eager than
    of the export's contiguous one, whose layout the executor's copy of the input has."""
    graph = program.graph
    inputs = {tid for _pos, tid in program.user_inputs}
    out: dict[str, str] = {}
    for n in program.exported.graph.nodes:
        if n.op != "call_function" or _base(n.target) not in _STORAGE_OFFSET_OPS or n.name not in graph.node_index:
            continue
        names = [a.name for a in n.target._schema.arguments]
        k = names.index("storage_offset")
        given = n.kwargs.get("storage_offset") if "storage_offset" in n.kwargs else (n.args[k] if k < len(n.args)
                                                                                      else None)
        fx = n.args[0] if n.args else n.kwargs.get("self")
        tid = program.env.get(n.name, {}).get(getattr(fx, "name", None))
        if (given is None and offset_given) or not isinstance(tid, str) or tid not in graph.tensor_index:
            continue
        root = graph.tensors[graph.root[graph.tensor_index[tid]]].id
        if root in inputs:
            out.setdefault(root, n.name)
    return out


def _offset_in_a_copy(torch, base: str, x) -> bool:
    """Whether eager's ``as_strided_copy``/``as_strided_scatter`` of ``x`` runs on a fresh copy of ``x``, its
    storage offset then counting from that copy's start, not from ``x``'s storage (nothing to shift): a
    conjugate or negative view (torch's math-bit fallback resolves it into a new tensor before these
    kernels run; views keep it), or for ``as_strided_scatter`` one whose elements share memory (an expand:
    its kernel clones that, ``clone_preserve_strides``)."""
    if base not in ("as_strided_copy", "as_strided_scatter"):
        return False
    if x.is_conj() or x.is_neg():
        return True
    return base == "as_strided_scatter" and torch._debug_has_internal_overlap(x) == 1


def _bind(torch, n, env: Mapping[str, Any], views: Mapping[str, Any], override: Mapping[str, str] | None = None,
          root: Any = None, objects: Mapping[str, Any] | None = None):
    """The node's (args, kwargs) with every FX value replaced by its planned view (and a ``get_attr``
    that is no graph tensor, such as the subgraph of a higher-order op, by the attribute of ``root``; a lifted
    ``torch.Generator`` by the module's own, ``objects``: ``Program.generator_args``)."""
    def value(a):
        tid = (override or {}).get(a.name, env.get(a.name))
        if isinstance(tid, str):
            return views[tid]
        if isinstance(tid, list):
            return [views[t] if isinstance(t, str) else None for t in tid]
        if objects and a.op == "placeholder" and a.name in objects:
            return objects[a.name]
        if a.op == "get_attr" and root is not None:
            obj = root
            for part in str(a.target).split("."):
                obj = getattr(obj, part)
            return obj
        v = a.meta.get("val")
        if isinstance(v, (bool, int, float)) or v is None:
            return v
        raise AtenExecutorError(f"argument {a.name!r} is a {type(v).__name__} the executor cannot reproduce",
                                n.name, str(n.target))

    return torch.fx.node.map_arg((tuple(n.args), dict(n.kwargs)), value)


def _mutated(torch, n, schema) -> list[tuple[int | str, str]]:
    """(position or keyword, FX name) of each argument the schema writes."""
    if schema is None:
        return []
    out = []
    for k, arg in enumerate(schema.arguments):
        if arg.alias_info is None or not arg.alias_info.is_write:
            continue
        key: int | str = arg.name if arg.name in n.kwargs else k
        v = n.kwargs.get(arg.name) if isinstance(key, str) else (n.args[k] if k < len(n.args) else None)
        if isinstance(v, torch.fx.Node):
            out.append((key, v.name))
    return out


def _same_view(a, b) -> bool:
    """Same dtype, shape, address and strides (a stride of a size-1 dimension does not matter)."""
    if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    if a.numel() == 0:
        return True
    return a.data_ptr() == b.data_ptr() and all(
        sa == sb for n, sa, sb in zip(a.shape, a.stride(), b.stride()) if n != 1)


def _flat_results(torch, res) -> list:
    return list(res) if isinstance(res, (list, tuple)) else [res]


def _lower_view(torch, n, op, args, kwargs, out_views, tensor_outs, views=None, outs=(),
                adopted: set[str] | None = None, adopted_in: bool = False) -> Launch:
    """A view op: torch's view of the planned inputs must be the planned view. Where the two differ only
    in the stride of a size-1 dimension (export's fake tensors compute some of those unlike the real op),
    later nodes get torch's: kernels read those strides too (a convolution picks its memory format from
    them), and eager hands them torch's; such views join ``adopted``. ``adopted_in`` (the node reads a
    tensor already laid out as torch, not the export, lays it out): torch's view may differ in any
    stride, as long as it stays inside the bytes of the tensors it views."""
    res = _flat_results(torch, op(*args, **kwargs))
    for k, v, tid in zip(tensor_outs, out_views, outs or [None] * len(out_views)):
        r = res[k]
        if (adopted_in and adopted is not None and tid is not None and isinstance(r, torch.Tensor)
                and r.dtype == v.dtype
                and tuple(r.shape) == tuple(v.shape) and not _same_view(r, v) and _inside_args(torch, r, args)):
            views[tid] = r
            adopted.add(tid)
            continue
        if not isinstance(r, torch.Tensor) or not _same_view(r, v):
            got = (f"{tuple(r.shape)} strides {tuple(r.stride())} at {r.data_ptr():#x}"
                   if isinstance(r, torch.Tensor) else type(r).__name__)
            raise AtenExecutorError(f"torch's view is {got}, the plan's is {tuple(v.shape)} strides "
                                    f"{tuple(v.stride())} at {v.data_ptr():#x}", n.name, str(op))
        if views is not None and tid is not None and tuple(r.stride()) != tuple(v.stride()):
            views[tid] = r
            if adopted is not None:
                adopted.add(tid)
        elif views is not None and tid is not None and _lazy_bits(r) != _lazy_bits(v):
            # ``_conj``/``_neg_view``: the same bytes read conjugated or negated (a bit on the tensor, not
            # in its layout, which the plan's view cannot carry): later nodes get torch's view with the bit
            views[tid] = r
    return Launch(n.name, str(op), "view", None)


def _keep_lazy_bits(views, o: str, vi) -> None:
    """An in-place result ``o`` on the very bytes of its input ``vi`` is that input, its conjugate and negative bits
    too (``w = z.conj(); w.mul_(2)``: the plan's view of ``w.mul_``'s result, made from the export's spec, carries no
    bit, so later nodes and the output read ``z``'s bytes unconjugated: other values than eager's; round 46)."""
    if _lazy_bits(views[o]) != _lazy_bits(vi):
        views[o] = vi


def _lazy_bits(t) -> tuple[bool, bool]:
    """A tensor's lazy conjugate and negative bits: views with them read their bytes transformed."""
    return bool(t.is_conj()), bool(t.is_neg())


def _tids(env: Mapping[str, Any]):
    for t in env.values():
        if isinstance(t, str):
            yield t
        elif isinstance(t, list):
            yield from (x for x in t if isinstance(x, str))


def _dense(t) -> bool:
    """Non-overlapping and dense: its elements fill ``numel`` consecutive elements of memory."""
    expected = 1
    for size, stride in sorted((d for d in zip(t.shape, t.stride()) if d[0] != 1), key=lambda d: d[1]):
        if stride != expected:
            return False
        expected *= size
    return True


def _same_bytes(a, b) -> bool:
    """Same dtype and shape, both dense from the same address: the same bytes, maybe in another order."""
    return _same_shape(a, b) and (a.numel() == 0 or a.data_ptr() == b.data_ptr()) and _dense(a) and _dense(b)


def _inside_args(torch, r, args) -> bool:
    """Whether every byte of view ``r`` lies inside one tensor argument's bytes."""
    lo, hi = _span(r)
    for a in torch.utils._pytree.tree_leaves(args):
        if isinstance(a, torch.Tensor) and a.device == r.device:
            alo, ahi = _span(a)
            if alo <= lo and hi <= ahi:
                return True
    return False


def _adopt_layout(torch, op, args, kwargs, outs, tensor_outs, views, ctx: Target) -> None:
    """Lay out a result as torch lays it out for inputs of torch's real layout. The export's fake tensors
    gave some inputs other strides than the real ones (``_lower_view``); an op whose result layout follows
    its inputs' (a convolution's memory format, an elementwise op's order) then gets another layout in
    eager than the plan's, and the kernels after it (the next convolution) differ too. The op runs once
    on fake tensors of the planned views to learn torch's layout; where it differs and both fill the same
    bytes (dense, same address), later nodes get the view in torch's order."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    if not ctx.fake:
        ctx.fake.append(FakeTensorMode(allow_non_fake_inputs=True))
    mode = ctx.fake[0]
    try:
        # the fake-tensor mode logs a whole traceback at error level for a kernel that fails on fake tensors
        # (making a fake tensor of a complex view runs one: 36 lines for DeepSeek-V2's rotary
        # view_as_complex) before raising; a failed probe is expected here (the plan's layout stays)
        with logger_off("torch._subclasses.fake_tensor"):
            fa, fk = torch.utils._pytree.tree_map(
                lambda a: mode.from_tensor(a) if isinstance(a, torch.Tensor) else a, (args, kwargs))
            with mode:
                res = _flat_results(torch, op(*fa, **fk))
    except Exception:  # no fake kernel (or no fake tensor of an input, a complex view): the plan's layout stays
        return
    _take_layouts(torch, res, outs, tensor_outs, views, ctx)


def _take_layouts(torch, res: list, outs, tensor_outs, views, ctx: Target, size_one: bool = False) -> None:
    """Where result ``res[k]`` (torch's) has other strides than its planned view and both fill the same
    bytes (dense, same address), later nodes get the view in torch's order (``ctx.adopted``). ``size_one``:
    ``res`` came from the real kernel, so a size-1 dimension's stride counts too (kernels that follow
    ``suggest_memory_format`` read it: ``_unordered``); a fake kernel's strides there are no evidence."""
    for k, tid in zip(tensor_outs, outs):
        r, v = res[k], views[tid]
        if not isinstance(r, torch.Tensor) or tuple(r.shape) != tuple(v.shape) or r.dtype != v.dtype:
            continue
        if all(sr == sv for size, sr, sv in zip(v.shape, r.stride(), v.stride()) if size_one or size != 1):
            continue
        if not (_dense(r) and _dense(v)):
            continue
        views[tid] = v.as_strided(tuple(v.shape), tuple(r.stride()), v.storage_offset())
        ctx.adopted.add(tid)


def _unordered(t) -> bool:
    """A tensor of two or more elements not in contiguous order (a transpose, channels-last, a strided
    slice), or in contiguous order with another stride than a contiguous tensor's for a size-1 dimension:
    the inputs whose results' layouts a fake kernel may compute otherwise than the real one. Why the
    second: such a tensor is both contiguous and channels-last to torch (``(1, C, 1, 1)`` with strides
    ``(C, 1, C, C)``), and kernels that follow ``suggest_memory_format`` see channels-last; CPU eval
    ``batch_norm`` returns it contiguous where its fake kernel keeps those strides, so the bilinear
    upsampling after it (UperNet's pyramid pooling) ran channels-last, another rounding than eager's."""
    if t.dim() < 2 or t.numel() <= 1:
        return False
    if not t.is_contiguous():
        return True
    expected, strides = 1, []
    for size in reversed(t.shape):
        strides.append(expected)
        expected *= size
    return tuple(t.stride()) != tuple(reversed(strides))


def _weight_ptrs(torch, program: Program, ctx: Target) -> frozenset:
    """The storages of the module's weights (made once per program): probes pass those as they are."""
    if not ctx.weight_ptrs:
        ctx.weight_ptrs.append(frozenset(w.untyped_storage().data_ptr() for w in program.weights.values()
                                         if isinstance(w, torch.Tensor)))
    return ctx.weight_ptrs[0]


def _probe_allowed(torch, op) -> bool:
    """Whether ``_adopt_real_layout`` may run ``op`` once at build time on stand-ins: ATen's own ops that
    draw no random numbers (a draw would shift eager's stream; a custom op may have effects beyond its result;
    a higher-order op's subgraph may draw)."""
    return (getattr(op, "namespace", None) == "aten" and not isinstance(op, torch._ops.HigherOrderOperator)
            and torch.Tag.nondeterministic_seeded not in getattr(op, "tags", ()))


def _fake_layout_suspect(torch, op, args, kwargs, out_views) -> bool:
    """Whether the op's real kernel may lay out a result otherwise than the export's fake kernel did: a
    non-pointwise op (pointwise ones share TensorIterator's layout logic with their fake kernels) reading a
    tensor not in contiguous order, with a dense result of two or more dimensions. Only ATen's own ops: the
    probe runs the op once more at build time, and a custom op (``torch.library``) may have effects beyond
    its result (I/O, counters, caches) that a call on zeros must not trigger."""
    if torch.Tag.pointwise in getattr(op, "tags", ()) or getattr(op, "namespace", None) != "aten":
        return False
    if not any(isinstance(v, torch.Tensor) and v.dim() >= 2 and v.numel() > 1 and _dense(v) for v in out_views):
        return False
    return any(isinstance(a, torch.Tensor) and _unordered(a) for a in torch.utils._pytree.tree_leaves((args, kwargs)))


def _adopt_real_layout(torch, op, args, kwargs, outs, tensor_outs, views, ctx: Target,
                       own: frozenset = frozenset()) -> bool:
    """Lay out a result as the device's real kernel does where its fake kernel lays it out otherwise.

    Why: some CPU kernels keep a channels-last input's format where their fake (meta) kernels return a
    contiguous result (``group_norm``, ``roll``, ``channel_shuffle`` in torch 2.14), and eval ``batch_norm``
    returns a contiguous result where its fake kernel keeps a transposed input's order. The export's fake
    tensor, so the plan's view, had the other layout; the executor wrote eager's values in that order, and
    the op after it then ran on another layout than eager's: other rounding (HF BiT with channels-last
    inputs, 2.7e-6 after the next convolution; a sum over a transposed batch norm's time axis, 1e-4).

    The op runs once here, at build time, on zero-filled stand-ins of its arena arguments with their
    layouts (never on the arena: garbage indices could fault), to learn the real layout; where it differs
    and both fill the same bytes, later nodes get it (``_take_layouts``). Ops that draw random numbers are
    left alone (a draw here would shift eager's stream), as is any op the stand-ins make fail. Returns
    whether the probe ran. Here a size-1 dimension's stride counts (``_take_layouts``): it is the real one."""
    if not _probe_allowed(torch, op):
        return False

    def stand_in(a):
        if not isinstance(a, torch.Tensor):
            return a
        fresh = torch.empty_strided(tuple(a.shape), tuple(a.stride()), dtype=a.dtype, device=a.device)
        if not (a.numel() and a.untyped_storage().data_ptr() in own):
            return fresh.zero_()
        # the module's weights are real data: a Parameter that requires grad (the large ones: projections,
        # embeddings) stands for itself, as its requires_grad steers kernels (matmul folds such an operand);
        # buffers and frozen weights are copied, as an op may write them though its schema declares no
        # write: train-mode ``batch_norm`` updates its running statistics (a probe over a channels-last
        # input moved them once more at build time, and every later call's from there)
        if a.requires_grad:
            return a
        n = fresh.untyped_storage().nbytes() // fresh.element_size()   # its span: a copy of an expanded
        fresh.as_strided((n,), (1,), 0).copy_(a.as_strided((n,), (1,)))  # buffer cannot write one element twice
        return fresh

    try:
        sa, sk = torch.utils._pytree.tree_map(stand_in, (args, kwargs))
        with torch.no_grad():
            res = _flat_results(torch, op(*sa, **sk))
    except Exception:  # keep the plan's layout
        return False
    _take_layouts(torch, res, outs, tensor_outs, views, ctx, size_one=True)
    return True


def _adopt_written(schema, n, env, views, outs, tensor_outs, adopted: set[str]) -> None:
    """A result that is an argument the op writes where it stands (``add_`` on a slice returns the slice)
    is that argument's view: where the argument took torch's layout, so does the result (the importer made
    it a view in the export's layout, which would read the bytes in another order)."""
    if schema is None:
        return
    for tid, k in zip(outs, tensor_outs):
        ret = schema.returns[k] if k < len(schema.returns) else None
        if ret is None or ret.alias_info is None or not ret.alias_info.is_write:
            continue
        for pos, arg in enumerate(schema.arguments):
            if arg.alias_info is None or arg.alias_info.before_set != ret.alias_info.before_set:
                continue
            fx = n.kwargs.get(arg.name) if arg.name in n.kwargs else (n.args[pos] if pos < len(n.args) else None)
            src = env.get(getattr(fx, "name", None))
            if isinstance(src, str) and src in adopted and _same_shape(views[src], views[tid]):
                views[tid] = views[src]
                adopted.add(tid)
            break


def _same_shape(a, b) -> bool:
    return a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and a.device == b.device


def _lower_mutating(torch, program, n, gn, env, views, args, kwargs, mutated, ctx) -> Launch:
    op, name = n.target, str(n.target)
    if _base(op) == "set_" or (_base(op) in _REBINDING and not gn.inplace):
        return _lower_rebinding(torch, program, n, gn, env, views, args)
    _refuse_caller_resize(torch, program, n, env, mutated)
    if _base(op) in _METADATA_ONLY:
        _refuse_caller_metadata(torch, program, n, env, args, kwargs)
        adopted_in = ctx.reads_adopted(env)
        return _lower_metadata(torch, n, gn, views, args, kwargs, ctx.adopted, adopted_in)
    fresh = _fresh_results(torch, n, gn, views)
    if not gn.inplace:  # writes a weight, an input or a viewed tensor where it stands
        for _key, fx in mutated:   # (its result, a tensor of its own on the written one's very view: that view)
            vi = views.get(env.get(fx)) if isinstance(env.get(fx), str) else None
            for o in gn.outputs:
                if vi is not None and o in views and _same_view(views[o], vi):
                    _keep_lazy_bits(views, o, vi)
        if fresh:   # and returns new tensors too (a custom op updating a cache and returning an output)
            return _run_then_copy_fresh(torch, n, op, args, kwargs, fresh)
        return Launch(n.name, name, "inplace", _in_place(torch, op, args, kwargs, ctx))
    if fresh:
        raise AtenExecutorError(f"writes {len(mutated)} argument(s), the plan puts the written result apart, and "
                                f"it returns {len(fresh)} new tensor(s) too (unsupported)", n.name, name)
    if len(gn.inplace) == len(mutated) > 1:
        several = _lower_several_outs(torch, n, gn, env, views, args, kwargs, mutated, ctx)
        if several is not None:
            return several
    if len(gn.inplace) != 1 or len(mutated) != 1:
        raise AtenExecutorError(f"{len(gn.inplace)} in-place results over {len(mutated)} written arguments "
                                "(unsupported)", n.name, name)
    (o, i), (_key, fx_in) = gn.inplace[0], mutated[0]
    vo, vi = views[o], views[i]
    if _same_view(vo, vi):
        _keep_lazy_bits(views, o, vi)
        return Launch(n.name, name, "inplace", _in_place(torch, op, args, kwargs, ctx))
    overlap = _overlaps(vo, vi)
    functional, fkwargs = _functional_of(torch, op), kwargs
    if functional is None:   # mm.out into an ``out`` it must resize: mm, then copied into the planned result
        functional, fkwargs = _functional_of_out(op, kwargs)
    if functional is not None and not overlap:  # relu_(x) placed apart from x: relu(x) into the result
        launch = _lower_result(torch, n.name, functional, args, fkwargs, [vo], [0], 1, ctx, name)
        if launch.kind != "copy":
            return launch
    if not overlap:  # move the input to the result's place, then write it there
        a2, k2 = _bind(torch, n, env, views, {fx_in: o}, root=program.exported.graph_module,
                       objects=program.generator_args)

        def run(vo=vo, vi=vi, a2=a2, k2=k2):
            vo.copy_(vi)
            op(*a2, **k2)
        return Launch(n.name, name, "copy", run, 1)
    if functional is not None:  # partly over its input: compute apart, then copy into place (counted)
        def run_apart(vo=vo, f=functional, args=args, kwargs=fkwargs):
            vo.copy_(f(*args, **kwargs))
        return Launch(n.name, name, "copy", run_apart, 1)
    raise AtenExecutorError(f"in-place result {o!r} partly overlaps its input {i!r}, and the op has no "
                            "functional form", n.name, name)


def _in_place(torch, op, args, kwargs, ctx: Target) -> Callable[[], Any]:
    """The in-place ``op``'s run where its written argument stands: eager's op, or a lowering of it that a CUDA
    graph can capture (``capturable_inplace``: ``x[mask] = 0`` without ``nonzero``'s host read)."""
    if hasattr(op, "_schema"):
        named = dict(zip((a.name for a in op._schema.arguments), args))
        named.update(kwargs)
        run = capturable_inplace(torch, op, named, ctx.device_type)
        if run is not None:
            return run
    return functools.partial(op, *args, **kwargs)


def _fresh_results(torch, n, gn, views) -> list[tuple[int, Any]]:
    """(return index, planned view) of each tensor an op that writes its arguments returns *new* (its schema
    return has no alias annotation): ``m::upd(Tensor x, Tensor(a!) cache) -> Tensor`` (a custom op with
    ``mutates_args=("cache",)``, or ``"unknown"``), not ``relu_``'s ``Tensor(a!)`` return, which is its
    argument."""
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        return []
    val = n.meta.get("val")
    vals = list(val) if isinstance(val, (list, tuple)) else [val]
    tensor_outs = [k for k, v in enumerate(vals) if isinstance(v, torch.Tensor)]
    returns = list(schema.returns)
    out = []
    for j, k in enumerate(tensor_outs):
        if j < len(gn.outputs) and k < len(returns) and returns[k].alias_info is None:
            out.append((k, views[gn.outputs[j]]))
    return out


def _run_then_copy_fresh(torch, n, op, args, kwargs, fresh: list[tuple[int, Any]]) -> Launch:
    """Run an op that writes its arguments where they stand, then copy each new tensor it returns into its
    planned view (counted copies). Run as an in-place op alone, its returns were dropped: the output's planned
    bytes were never written (NaN under ``poison``, a previous call's values or garbage without)."""
    name = str(n.target)

    def run():
        res = _flat_results(torch, op(*args, **kwargs))
        for k, vo in fresh:
            _check_result(torch, res[k] if k < len(res) else None, vo, k, n.name, name)
        for k, vo in fresh:
            vo.copy_(res[k])
    return Launch(n.name, name, "copy", run, len(fresh))


def _lower_several_outs(torch, n, gn, env, views, args, kwargs, mutated, ctx) -> Launch | None:
    """An ``out=`` call with several outs (``torch.max(x, 1, out=(v, i))``, ``sort``, ``topk``) whose results
    the importer gave tensors of their own (``inplace`` pairs: each out resized, or placed apart): where every
    result is its out's very view, the op itself; else the functional twin (``max.dim``) into the planned
    results, by its out= overload where no out is also an input of the call, or computed apart and each
    result copied into place (counted). None where the written arguments are not all out arguments or the op
    has no functional twin (the caller's error names the node)."""
    name = str(n.target)
    schema = n.target._schema
    out_names = [a.name for a in schema.arguments if a.is_out]
    arg_names = [a.name for a in schema.arguments]
    written = {env.get(fx): (key if isinstance(key, str) else arg_names[key]) for key, fx in mutated}
    if len(written) != len(mutated) or not all(a in out_names for a in written.values()):
        return None
    by_result: dict[int, str] = {}
    for o, i in gn.inplace:
        arg = written.get(i)
        if arg is None:
            return None
        by_result[out_names.index(arg)] = o
    if sorted(by_result) != list(range(len(out_names))):
        return None
    vos = [views[by_result[k]] for k in range(len(out_names))]
    if all(_same_view(views[o], views[i]) for o, i in gn.inplace):
        for o, i in gn.inplace:
            _keep_lazy_bits(views, o, views[i])
        return Launch(n.name, name, "inplace", functools.partial(n.target, *args, **kwargs))
    functional, fkwargs = _functional_of_out(n.target, kwargs)
    if functional is None:
        return None
    ins = [v for a, v in zip(schema.arguments, n.args) if not a.is_out]
    ins += [v for k, v in n.kwargs.items() if k not in out_names]
    read = {x.name for v in ins for x in _fx_nodes(torch, v)} & {fx for _key, fx in mutated}
    if not read:  # (the functional twin reads no out: each result may land on any out's bytes)
        launch = _lower_result(torch, n.name, functional, args, fkwargs, vos, list(range(len(vos))), len(vos),
                               ctx, name)
        if launch.kind != "copy":
            return launch

    def run_apart(f=functional, args=args, kwargs=fkwargs, vos=tuple(vos)):
        res = _flat_results(torch, f(*args, **kwargs))
        for k, (r, vo) in enumerate(zip(res, vos)):
            _check_result(torch, r, vo, k, n.name, name)
        for r, vo in zip(res, vos):
            vo.copy_(r)
    return Launch(n.name, name, "copy", run_apart, len(vos))


def _fx_nodes(torch, v: Any) -> list:
    """The FX nodes in an argument (a node, or a list or tuple of them)."""
    if isinstance(v, torch.fx.Node):
        return [v]
    return [x for a in v for x in _fx_nodes(torch, a)] if isinstance(v, (list, tuple)) else []


def _lower_rebinding(torch, program: Program, n, gn, env, views, args) -> Launch:
    """``set_`` (and ``resize_``/``resize_as_`` with no result of their own): the importer made the result a
    view of the bytes the tensor names afterwards (``set_``'s source; the tensor's own root, sized by its grown
    storage), so nothing runs where that view is the plan's. Refused, naming the node, where the tensor is a
    user input or a weight (eager rebinds or resizes the caller's tensor or the module's buffer itself, which
    an arena copy cannot do), and for ``set_`` from a storage (no tensor to take the bytes of)."""
    name, base = str(n.target), _base(n.target)
    graph = program.graph
    tid = env.get(getattr(n.args[0], "name", None))
    root = graph.tensors[graph.root[graph.tensor_index[tid]]] if isinstance(tid, str) else None
    if root is not None and root.kind in ("input", "weight") and _resizes_to_itself(n, base, args) \
            and _same_view(args[0], views[gn.outputs[0]]):
        # ``out.resize_(out.shape)`` of a caller's buffer: eager returns the tensor untouched, nothing to refuse
        return Launch(n.name, name, "noop", None)
    if root is None or root.kind in ("input", "weight"):
        what = "its tensor" if root is None else f"{'user input' if root.kind == 'input' else 'weight'} {root.id!r}"
        raise AtenExecutorError(f"{base} makes {what} name other memory: eager changes the caller's tensor or the "
                                "module's own, which the executor cannot (unsupported: it runs on an arena copy, and a "
                                "module tensor pointed into the arena would change with every call)", n.name, name)
    if base == "set_":
        if n.target is not torch.ops.aten.set_.source_Tensor:
            raise AtenExecutorError("set_ to a storage or to nothing (unsupported: only set_(tensor))", n.name, name)
        r = args[1]
    else:
        size = tuple(args[1]) if base == "resize_" else tuple(args[1].shape)
        fmt = n.kwargs.get("memory_format") or torch.contiguous_format
        stride = torch.empty(size, device="meta", memory_format=fmt).stride()
        r = args[0].as_strided(size, stride, args[0].storage_offset())
    vo = views[gn.outputs[0]]
    if not _same_view(r, vo):
        raise AtenExecutorError(f"torch's result is {tuple(r.shape)} strides {tuple(r.stride())} at "
                                f"{r.data_ptr():#x}, the plan's is {tuple(vo.shape)} strides {tuple(vo.stride())} "
                                f"at {vo.data_ptr():#x}", n.name, name)
    return Launch(n.name, name, "noop", None)


def _own_tensor(program: Program, fx: Any, env) -> Any:
    """The graph root that FX argument ``fx`` is itself (not a view of it) where that root is a user input or
    a weight: the caller's or the module's own tensor object, which an in-place op on it changes in eager.
    None for an intermediate or a view."""
    graph = program.graph
    tid = env.get(getattr(fx, "name", fx))
    if not isinstance(tid, str):
        return None
    root = graph.tensors[graph.root[graph.tensor_index[tid]]]
    return root if root.id == tid and root.kind in ("input", "weight") else None


def _refuse_caller_metadata(torch, program: Program, n, env, args, kwargs) -> None:
    """An in-place metadata op (``x.t_()``, ``x.squeeze_()``, ``self.b.as_strided_(...)``) that changes the
    shape or strides of a user input or a weight: eager changes the caller's tensor (or the module's buffer)
    itself, and the executor ran its view op on its arena copy, silently leaving the caller's tensor as it
    was. Refused naming node and tensor, as ``resize_`` of one is; a change to nothing (``squeeze_`` with no
    size-1 dimension, ``detach_``) runs."""
    root = _own_tensor(program, n.args[0] if n.args else None, env)
    if root is None:
        return
    x = args[0]
    r = getattr(torch.ops.aten, _base(n.target)[:-1])(*args, **kwargs)
    _refuse_metadata_change(program, n, root, x, r)


def _refuse_metadata_change(program: Program, n, root: Any, x: Any, r: Any) -> None:
    """Refuse node ``n``, an in-place metadata op on user input or weight ``root`` (``x``), whose result ``r`` has
    another shape, strides or storage offset (``_refuse_caller_metadata``; ``check_lowerable`` on the export's
    fake values, before any arena)."""
    if (tuple(r.shape), tuple(r.stride()), r.storage_offset()) == (tuple(x.shape), tuple(x.stride()),
                                                                  x.storage_offset()):
        return
    what = f"{'user input' if root.kind == 'input' else 'weight'} {root.id!r}"
    raise AtenExecutorError(f"{_base(n.target)} changes the shape or strides of {what}: eager changes the caller's "
                            "tensor or the module's own, which the executor cannot (unsupported: it runs on an arena "
                            "copy; apply the out-of-place view instead, e.g. x = x.t())", n.name, str(n.target))


def _resizes_to_itself(n, base: str, args) -> bool:
    """Whether ``resize_`` / ``resize_as_`` asks for the tensor's own sizes with no memory format: torch then
    returns the tensor as it is (its strides kept), changing nothing."""
    if base not in ("resize_", "resize_as_") or n.kwargs.get("memory_format") is not None or len(args) < 2:
        return False
    size = tuple(args[1]) if base == "resize_" else tuple(args[1].shape)
    return size == tuple(args[0].shape)


def _refuse_caller_resize(torch, program: Program, n, env, mutated) -> None:
    """An ``out=`` call whose out is a user input or a weight itself, of another shape than the result
    (``torch.add(a, 1, out=x)`` with a 5-element ``x`` and a 3-element result): eager resizes the caller's
    tensor (the module's buffer) to the result's shape, which the executor cannot (its copy of the input has
    the export's shape): refused naming node and tensor, as ``resize_`` of one is. It ran, and failed at the
    call with torch's "The size of tensor a (5) must match the size of tensor b (3)"."""
    schema = n.target._schema
    outs = [a.name for a in schema.arguments if a.is_out]
    val = n.meta.get("val")
    vals = list(val) if isinstance(val, (list, tuple)) else [val]
    names = [a.name for a in schema.arguments]
    for key, fx in mutated:
        arg = key if isinstance(key, str) else names[key]
        root = _own_tensor(program, fx, env)
        if root is None or arg not in outs or outs.index(arg) >= len(vals):
            continue
        result = vals[outs.index(arg)]
        shape = program.specs[root.id].shape
        if isinstance(result, torch.Tensor) and tuple(result.shape) != shape:
            what = f"{'user input' if root.kind == 'input' else 'weight'} {root.id!r}"
            raise AtenExecutorError(f"out= resizes {what} from {shape} to {tuple(result.shape)}: eager changes the "
                                    "caller's tensor or the module's own, which the executor cannot (unsupported: "
                                    "it runs on an arena copy; pass an out of the result's shape)", n.name, str(n.target))


def _lower_metadata(torch, n, gn, views, args, kwargs, adopted: set[str] | None = None,
                    adopted_in: bool = False) -> Launch:
    """An in-place metadata op (``unsqueeze_``, ``t_``, ``detach_``...): the same view op applied out of
    place to its input gives the result. Where the plan put the result there, nothing runs; where it put
    it apart (an ``inplace`` result of its own), the data moves there (a counted copy)."""
    name = str(n.target)
    view_op = getattr(torch.ops.aten, _base(n.target)[:-1])  # the packet: transpose_.default -> transpose.int
    r = view_op(*args, **kwargs)  # a new view object: the arena's views keep their metadata
    vo = views[gn.inplace[0][0]] if gn.inplace else views[gn.outputs[0]]
    if _same_view(r, vo):
        return Launch(n.name, name, "noop", None)
    if (not gn.inplace and adopted_in and adopted is not None and r.dtype == vo.dtype and tuple(r.shape) == tuple(vo.shape)
            and _inside_args(torch, r, args)):  # its input took torch's layout: so does its result
        views[gn.outputs[0]] = r
        adopted.add(gn.outputs[0])
        return Launch(n.name, name, "noop", None)
    if not gn.inplace:
        raise AtenExecutorError(f"torch's result is {tuple(r.shape)} strides {tuple(r.stride())} at "
                                f"{r.data_ptr():#x}, the plan's is {tuple(vo.shape)} strides {tuple(vo.stride())} "
                                f"at {vo.data_ptr():#x}", n.name, name)
    if _overlaps(vo, r):  # partly over its input: through a temporary
        return Launch(n.name, name, "copy", lambda vo=vo, r=r: vo.copy_(r.clone()), 1)
    return Launch(n.name, name, "copy", functools.partial(vo.copy_, r), 1)


def _span(t) -> tuple[int, int]:
    """The byte range ``[lo, hi)`` from a tensor's first element to one past its last (strides >= 0; an empty
    tensor spans none)."""
    return (0, 0) if t.numel() == 0 else byte_span(t)


def _overlaps(a, b) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1


def _functional_of(torch, op):
    """``add_.Tensor`` -> ``add.Tensor`` (None where there is none)."""
    packet = getattr(op, "overloadpacket", None)
    if packet is None or not packet.__name__.endswith("_"):
        return None
    ns = getattr(torch.ops, op.namespace, None)
    fpacket = getattr(ns, packet.__name__[:-1], None) if ns is not None else None
    return getattr(fpacket, op._overloadname, None) if fpacket is not None else None


def _functional_of_out(op, kwargs: dict) -> tuple[Any, dict]:
    """``mm.out`` -> (``mm.default``, ``kwargs`` without ``out``): the overload of the same packet whose
    arguments are the out= overload's other arguments, with one result per out argument ((None, kwargs) where
    there is none). An exported ``out=`` call whose out tensor is resized (``torch.mm(a, b, out=empty(2))``)
    reaches the executor as an in-place result partly over that tensor; the functional op computes it apart."""
    schema, packet = getattr(op, "_schema", None), getattr(op, "overloadpacket", None)
    if schema is None or packet is None:
        return None, kwargs
    outs = [a.name for a in schema.arguments if a.is_out]
    if not outs:
        return None, kwargs
    ins = [(a.name, str(a.type)) for a in schema.arguments if not a.is_out]
    for oname in packet.overloads():
        cand = getattr(packet, oname)
        cs = cand._schema
        if (not any(a.is_out for a in cs.arguments) and [(a.name, str(a.type)) for a in cs.arguments] == ins
                and len(cs.returns) == len(outs)):
            return cand, {k: v for k, v in kwargs.items() if k not in outs}
    return None, kwargs


def _find_out(torch, op, n_returns: int) -> tuple[Any, tuple[str, ...]]:
    out_op, names = _find_out_impl(torch, op)
    if out_op is None or len(names) != n_returns:
        return None, ()
    return out_op, names


def _find_out_impl(torch, op) -> tuple[Any, tuple[str, ...]]:
    """The ``out=`` overload of ``op``: same non-factory arguments (names and types), out arguments for
    every return. (None, ()) when there is none."""
    schema = getattr(op, "_schema", None)
    packet = getattr(op, "overloadpacket", None)
    if schema is None or packet is None:
        return None, ()
    mine = [(a.name, str(a.type)) for a in schema.arguments]
    for oname in packet.overloads():
        cand = getattr(packet, oname)
        cs = cand._schema
        outs = [a for a in cs.arguments if a.kwarg_only and a.alias_info is not None and a.alias_info.is_write]
        if not outs or len(outs) != len(schema.returns):
            continue
        rest = [(a.name, str(a.type)) for a in cs.arguments if not (a.kwarg_only and a.alias_info is not None
                                                                      and a.alias_info.is_write)]
        names = {a.name for a in cs.arguments}
        want = [x for x in mine if x[0] not in _FACTORY or x[0] in names]
        if rest == want:
            return cand, tuple(a.name for a in outs)
    return None, ()


def _out_call(torch, op, out_op, out_names, args, kwargs, out_views) -> Callable[[], Any] | None:
    """``out_op(**named args, out=views)`` as a partial, or None when a factory argument disagrees."""
    names = [a.name for a in op._schema.arguments]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    keep = {a.name for a in out_op._schema.arguments}
    call = {}
    for k, v in bound.items():
        if k in keep:
            call[k] = v
        elif k not in _FACTORY:
            return None
    if any(v is None for v in out_views):
        return None
    call.update(zip(out_names, out_views))
    return functools.partial(out_op, **call)


def autogen_outs(torch) -> frozenset[str]:
    """The out= overloads torch generates as functional + copy (``autogen:`` in native_functions.yaml,
    shipped with torch in torchgen): running one still copies the result."""
    import os

    try:
        import torchgen
    except ImportError:
        return frozenset()
    path = os.path.join(os.path.dirname(torchgen.__file__), "packaged", "ATen", "native", "native_functions.yaml")
    try:
        st = os.stat(path)
    except OSError:
        return frozenset()
    return _autogen_names(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _autogen_names(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """The ``autogen:`` names of native_functions.yaml at ``path``, read once per version of the file (its
    modification time and size are part of the key). Why: read at every compile, its 13,000 lines cost ~6 ms of
    each (round 72: 1.8 s of 309 compiles)."""
    names: set[str] = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("autogen:"):
                names.update(x.strip() for x in line[len("autogen:"):].split(","))
    return frozenset(names)


def _overload(op) -> str:
    """``name.overload`` as native_functions.yaml spells an op (``mse_loss.out``; ``default``: the name alone)."""
    return op._schema.name.removeprefix("aten::") + (f".{op._overloadname}" if op._overloadname != "default" else "")


def _out_stays_in_its_bytes(torch, op, out_op, out_names, args, kwargs, out_views, ctx: Target) -> bool:
    """Whether ``out_op`` (the out= overload of functional ``op``) writes nothing but its results' elements,
    as the executor's plan assumes.

    Why: a hand-written out= kernel may use its result as scratch of another size. The reduced losses
    (``mse_loss``, ``huber_loss``, ``smooth_l1_loss``, ``soft_margin_loss`` with ``reduction`` mean or sum,
    torch 2.14 CPU) resize their 0-d result to the input's shape, write the elementwise loss there, reduce,
    and resize it back: on an arena view, the input's size in bytes past the 4-byte slot, over whatever the
    plan put there (silently wrong results), or, near the arena's end, a grown storage the executor refused
    at the call. ``structured`` in native_functions.yaml does not rule it out (``mse_loss.out`` is).

    Only a kernel with an argument of more elements than its largest result can need more room than its
    results (scratch of an input's shape); such a one runs once here on zero-filled stand-ins of its arena
    arguments (weights as they are), each result in a storage of exactly its bytes. A storage that grew or moved says the kernel wrote past them, and the
    op runs functionally, its result copied in (counted). Once per overload and layout of arguments and
    results; never autogen'd overloads (functional + copy: the result sized once), ops that draw random
    numbers or are not ATen's own (as the layout probe), nor where the stand-ins make the kernel fail (no
    verdict: the out= form, as before)."""
    name = _overload(out_op)
    if name in ctx.autogen or not _probe_allowed(torch, op):
        return True
    leaves = torch.utils._pytree.tree_leaves((args, kwargs))
    most = max((v.numel() for v in out_views), default=0)
    if not any(isinstance(x, torch.Tensor) and x.numel() > most for x in leaves):
        return True

    def layout(x):   # (no storage offset: the stand-ins have none, and a model's layers differ in theirs alone)
        if isinstance(x, torch.Tensor):
            return ("T", tuple(x.shape), tuple(x.stride()), x.dtype, x.device.type)
        return repr(x)

    key = (name, tuple(layout(x) for x in leaves), tuple(layout(v) for v in out_views))
    if key in ctx.out_probes:
        return ctx.out_probes[key]

    arena = {v.untyped_storage().data_ptr() for v in out_views}

    def stand_in(a):   # arena values (garbage now: indices could fault) as zeros; the module's weights (an
        # embedding table: not copied) as they are, as the kernel only reads its arguments
        if not isinstance(a, torch.Tensor) or a.untyped_storage().data_ptr() not in arena:
            return a
        return torch.empty_strided(tuple(a.shape), tuple(a.stride()), dtype=a.dtype, device=a.device).zero_()

    def own_storage(v):   # exactly the bytes of v's elements, from offset 0
        span = 1 + sum((n - 1) * st for n, st in zip(v.shape, v.stride())) if v.numel() else 0
        return torch.zeros(span, dtype=v.dtype, device=v.device).as_strided(tuple(v.shape), tuple(v.stride()), 0)

    verdict = True
    try:
        sa, sk = torch.utils._pytree.tree_map(stand_in, (args, kwargs))
        outs = [own_storage(v) for v in out_views]
        before = [(o.untyped_storage().data_ptr(), o.untyped_storage().nbytes()) for o in outs]
        call = _out_call(torch, op, out_op, out_names, sa, sk, outs)
        if call is not None:
            with torch.no_grad(), _resize_warnings_off(torch):
                call()
            verdict = before == [(o.untyped_storage().data_ptr(), o.untyped_storage().nbytes()) for o in outs]
    except Exception:   # no verdict: the out= form, as before
        verdict = True
    ctx.out_probes[key] = verdict
    return verdict


#: held while a probe's stderr is redirected (``_resize_warnings_off``): fd 2 is the process's, not a thread's
_STDERR_LOCK = fork_safe(threading.RLock())


@contextlib.contextmanager
def _resize_warnings_off(torch):
    """torch's "An output with one or more elements was resized" warning, off for a probe that expects it (a
    call's own warning still reaches the caller).

    Why the file descriptor too: an ``OpOverload`` call's C++ warning is no Python warning (no handler turns it
    into one there): c10 wrote it to stderr, two lines per probed loss at each compile (``mse_loss``,
    ``huber_loss`` with ``reduction="mean"``, round 69). For the probe's call alone, stderr (fd 2) goes to a
    temporary file, and every line but the resize warning's is written back after it (another thread's output in
    that moment comes late, not lost).

    Why the lock: fd 2 is the process's. Two threads probing at once (two compiles) each saved "fd 2" and put it
    back, the second one the first's temporary file, so the process's stderr went to a deleted file for good
    (review of round 69: every later warning and traceback lost). A temporary file that cannot be made (no
    writable temporary directory) leaves stderr as it is."""
    import os
    import sys
    import tempfile

    with warnings_caught(), _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (AttributeError, OSError, ValueError):   # (no fd 2, a stderr of no file: only Python's off)
            saved = None
        try:
            tmp = tempfile.TemporaryFile() if saved is not None else None
        except OSError:   # (no writable temporary directory: stderr as it is, the fd not leaked)
            tmp = None
        if tmp is None:
            if saved is not None:
                os.close(saved)
            yield
            return
        with tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = b"".join(line for line in tmp.read().splitlines(keepends=True)
                                if b"was resized since it had shape" not in line)
                if kept:
                    os.write(2, kept)


def _hidden_copies(out_op, autogen: frozenset[str]) -> int:
    """Result copies inside an out= overload that torch implements as functional + copy."""
    return len(out_op._schema.returns) if _overload(out_op) in autogen else 0


def _lower_result(torch, node: str, op, args, kwargs, out_views, tensor_outs, n_vals: int, ctx: Target,
                  name: str, side: Mapping[str, Any] | None = None, grad_mask: tuple | None = None,
                  built: tuple = (), stats_unread: bool = False) -> Launch:
    """A functional op writing ``out_views``: an exact lowering, its out= overload, or run + copy.
    ``side``: planned views for the side results its kernel writes (role -> view). ``grad_mask``: (slot, value)
    of each operand whose ``requires_grad`` picks the CPU kernel (``grad_masks.grad_slots``): run + copy, each
    operand passed as requiring grad where eager's does (``built``'s, of weights, under grad mode; at a call where a
    caller's input requires grad, those ``caller_grad.graded`` names). ``stats_unread``: the node's results 1 and 2
    are read by nothing (``_results_unread``): a public batch norm's statistics may then be cast (``_mixed_stats``)."""
    base = _base(op)
    if hasattr(op, "_schema"):
        names = [a.name for a in op._schema.arguments]
        named = dict(zip(names, args))
        named.update(kwargs)
        stream = (ctx.stream_of or {}).get(node, 0)
        exact = exact_lowering(torch, base, named, out_views, ctx.device_type, ctx.scratch, stream, side)
        if exact is None:
            exact = capturable_lowering(torch, op, named, out_views, ctx.device_type)
        if exact is not None:
            kind, run, scratch = exact
            return Launch(node, name, kind, run, 1 if kind == "copy" else 0, scratch)
    target = op
    if base in _ALIASES and hasattr(op, "_overloadname"):
        packet = getattr(torch.ops.aten, _ALIASES[base], None)
        alt = getattr(packet, op._overloadname, None) if packet is not None else None
        target = alt if alt is not None else op
    eager_folds = base == "matmul" and matmul_out_differs(torch, *(args[:2] if len(args) >= 2 else (None, None)))
    if base == "linear" and len(args) >= 2 and isinstance(args[1], torch.Tensor):
        # linear runs matmul(input, weight.t()) where the exact lowering does not apply (a non-contiguous
        # input): with a parameter weight eager folds it to one mm, linear.out runs bmm (other rounding)
        eager_folds = matmul_out_differs(torch, args[0], args[1].t())
    empty_refused = ((base, getattr(op, "_overloadname", None)) in _EMPTY_REFUSED and len(args) >= 1
                     and isinstance(args[0], torch.Tensor) and args[0].numel() == 0)
    cast_stats = _mixed_stats(torch, base, args, ctx.device_type, stats_unread)
    if (len(tensor_outs) == n_vals and hasattr(target, "_schema") and not eager_folds and base not in _OUTS_APART
            and grad_mask is None and not empty_refused and not cast_stats):
        out_op, names = _find_out(torch, target, n_vals)
        if out_op is not None:
            call = _out_call(torch, target, out_op, names, args, kwargs, out_views)
            if call is not None and _out_stays_in_its_bytes(torch, target, out_op, names, args, kwargs, out_views,
                                                            ctx):
                return Launch(node, name, "out", call, _hidden_copies(out_op, ctx.autogen))
    if not callable(op):
        raise AtenExecutorError("is not callable", node, name)

    def run(op=op, args=args, kwargs=kwargs, pairs=tuple(zip(tensor_outs, out_views)),
            graded=base in _GRAD_MODE_KERNELS and ctx.device_type == "cpu",   # (cuDNN's follows ``train``)
            repeated=frozenset(k for k, v in zip(tensor_outs, out_views) if _repeats(v)),
            built_slots=tuple(s for s, _v in built)):
        on = None
        if grad_mask is not None:   # (eager's operand requires grad: its kernel; no autograd record)
            g = caller_grad.graded
            on = (built_slots if caller_grad.enabled else ()) if g is None else tuple(s for s, v in grad_mask if v in g)
        if on:
            masked_args, masked_kwargs = with_grad_mask(args, kwargs, on)
            with torch.no_grad():
                res = op(*masked_args, **masked_kwargs)
        elif graded:   # the kernel under eager's grad mode (its autograd record, if any, dropped with ``res``)
            with torch.set_grad_enabled(caller_grad.enabled):
                res = op(*args, **kwargs)
        else:
            res = op(*args, **kwargs)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        for k, v in pairs:
            if cast_stats and k in (1, 2) and isinstance(res[k], torch.Tensor) and res[k].shape == v.shape:
                v.copy_(res[k])   # (f32 statistics into the planned f16/bf16 slot; of no elements in eval)
                continue
            _check_result(torch, res[k], v, k, node, name)
            if k in repeated:
                _copy_repeated(v, res[k])
            else:
                v.copy_(res[k])
    return Launch(node, name, "copy", run, len(out_views))


def _mixed_stats(torch, base: str, args: tuple, device_type: str, stats_unread: bool = False) -> bool:
    """Whether a batch-norm node (``_BN_STATS_OPS``; the public ``native_batch_norm`` where its statistics are read
    by nothing, ``stats_unread``) is a CPU mixed-type one: an f16/bf16 input with running statistics of another
    dtype. Why: its kernel makes the saved statistics in the statistics' dtype (f32), the export's fake kernel said
    the input's, and the planned slots were refused at every call ("Expected out tensor to have dtype float, but got
    c10::Half" from the ``out=`` form; "the op's fake implementation disagrees with its kernel" run functionally)
    where eager runs it (round 76: a half network with f32 BatchNorms in a functionalized program, a ``no_grad``
    block writing a buffer; its review: ``torch.native_batch_norm(x, ...)[0]``, whose unread statistics are planned
    all the same). Run functionally, those two are cast into their slots. A public op whose statistics a caller gets
    is left as it is: cast, they would come back in the export's dtype, not eager's."""
    if device_type != "cpu" or len(args) < 4 or not (
            base in _BN_STATS_OPS or (base == "native_batch_norm" and stats_unread)):
        return False
    x, rm = args[0], args[3]
    return (isinstance(x, torch.Tensor) and isinstance(rm, torch.Tensor)
            and x.dtype in (torch.float16, torch.bfloat16) and rm.dtype != x.dtype)


def _results_unread(n, results: tuple[int, ...]) -> bool:
    """Whether fx node ``n``'s results at the positions ``results`` are read by nothing: no ``getitem`` of one of
    them has a user (the program's output counts as one), and ``n`` itself is read only through ``getitem``."""
    import operator

    for u in n.users:
        if u.op != "call_function" or u.target is not operator.getitem:
            return False
        if len(u.args) > 1 and u.args[1] in results and u.users:
            return False
    return True


def _repeats(v: Any) -> bool:
    """Whether planned view ``v`` repeats its elements along a dimension (stride 0 over more than one element)."""
    return any(st == 0 and size > 1 for size, st in zip(v.shape, v.stride()))


def _copy_repeated(v: Any, r: Any) -> None:
    """Copy result ``r`` into planned view ``v`` whose elements repeat along its stride-0 dimensions, through the
    first element of each, where ``r`` repeats along them too (an expand), else as ``copy_`` does.

    Why: a ``torch.no_grad()`` block's expanded result (``with torch.no_grad(): y = (x * 2).expand(3, 4, 6)``, one
    ``wrap_with_set_grad_enabled`` node run and copied into place) is planned at the expand's strides, and
    ``v.copy_(r)`` raised torch's "more than one element of the written-to tensor refers to a single memory location"
    at every call of a program eager runs."""
    for d, (size, st) in enumerate(zip(v.shape, v.stride())):
        if st == 0 and size > 1 and r.stride(d) == 0:
            v, r = v.narrow(d, 0, 1), r.narrow(d, 0, 1)
    v.copy_(r)


def _check_result(torch, r: Any, v: Any, k: int, node: str, name: str) -> None:
    """A functional result must be what the export's fake kernel said, whose bytes were planned: ``copy_``
    broadcast a smaller one over the planned view and cast one of another dtype without a word (a custom op
    whose fake implementation lies), and refused a larger one only as "The size of tensor a (3) must match the
    size of tensor b (6)"."""
    if not isinstance(r, torch.Tensor) or tuple(r.shape) != tuple(v.shape) or r.dtype != v.dtype:
        what = f"{tuple(r.shape)} {r.dtype}" if isinstance(r, torch.Tensor) else type(r).__name__
        raise AtenExecutorError(f"result {k} is {what}, but the export's fake kernel said {tuple(v.shape)} "
                                f"{v.dtype} (planned so): the op's fake implementation disagrees with its kernel",
                                node, name)
