"""PyTorch modules into memplan graphs through ``torch.export``: ``from_torch(module, example_inputs)``.

Why torch.export: it records every ATen op of one forward pass with a fake tensor per value
(``node.meta["val"]``: shape, strides, dtype, storage offset, and which storage it shares), which is
exactly what an arena plan needs, without running the model. torch is imported only when called.

Mapping:
- parameters, buffers and lifted constants -> ``weight``; user inputs -> ``input``; user outputs -> ``output``;
- an op whose result shares storage with an input (``view``, ``reshape`` of a contiguous tensor,
  ``permute``, ``transpose``, ``slice``, ``expand``, ``t``, ``unsqueeze``, ``squeeze``, ``split``...) ->
  a view of that input at the byte offset the fake tensor reports; aliasing is read off the fake
  tensors' storages, not guessed from op names, so ``reshape`` is a view exactly when torch made one;
- an in-place op (its schema writes an argument: ``relu_``, ``add_``...) on an intermediate that nothing
  else views -> a new tensor with ``inplace {out: in}``, and later readers of the mutated value read
  ``out``; on anything else (an input, a weight, a tensor with live views) the node writes a view of the
  mutated tensor, so the write is an access of its memory and no plan can move it;
- side results the op's kernel writes and nobody reads (``max_pool2d``'s int64 indices, eval
  ``batch_norm``'s saved statistics) -> extra outputs ``<node>.indices``, ``<node>.save_mean``,
  ``<node>.save_invstd`` that no node reads: their bytes are planned, live for that one node, and are
  reused right away (torch's own allocator holds them for the same instant);
- ``cost``: roofline microseconds from a FLOP estimate (2*M*N*K for matmuls and convolutions).
Dynamic (symbolic) shapes are refused with a GraphError: export with concrete example inputs; an ExportedProgram
with dynamic dimensions is specialized to the example inputs given with it, which must be its inputs (structure,
dtypes, ranks, fixed sizes) with other sizes. A given program's every ATen op's (and higher-order op's) recorded result
is checked against the op run on fake tensors of its recorded arguments, and every weight's record against its tensor:
a ``.pt2`` is its JSON's word, and a plan sized from an edited record would be smaller than what the op writes.
"""

from __future__ import annotations

import ast
import contextlib
import getpass
import importlib
import logging
import math
import operator
import os
import pickle
import re
import sys
import tempfile
import threading
import warnings
from collections import Counter
from typing import Any

from ..errors import GraphError, InputFormatError, MemplanError, report_progress
from ..errors import short_repr as _short
from ..files import check_readable, open_input
from ..graph import DEFAULT_ALIGNMENT, Graph, Node, Tensor, check_alignment
from . import Progress, check_progress, first_line, node_cost
from .pt2_archive import check_archive
from .quiet import logger_off, stderr_held
from .rng import rng_kept
from .torch_ops import flops as _flops
from .torch_ops import side_results as _side_results


def _need_torch():
    try:
        import torch
    except ImportError:
        raise MemplanError("the torch importer needs PyTorch: pip install 'memplan[torch]'") from None
    return torch


def from_torch(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, name: str | None = None,
               alignment: int = DEFAULT_ALIGNMENT, strict: bool = False, decompose: bool = False,
               progress: Progress | None = None) -> Graph:
    """Export ``module(*example_inputs, **kwargs)`` and build a validated Graph of its forward pass.

    ``module`` may also be an ``ExportedProgram``: ``example_inputs`` (and ``kwargs``) then only give the sizes of
    its dynamic dimensions (``torch.export.Dim``); where it has none, any given must be its inputs as exported (a
    GraphError names one that is not). ``decompose``
    lowers the program to core ATen first (``run_decompositions``): composite ops such as ``linear`` or
    ``matmul`` become the kernels and copies they run, so their hidden temporaries get planned too.
    """
    check_progress(progress, "from_torch")
    check_alignment(alignment)  # before the export, not after
    torch = _need_torch()
    given = isinstance(module, torch.export.ExportedProgram)
    ep, default = _export(torch, module, example_inputs, kwargs, strict, decompose)
    # (the fake runs that check a given program's records, and the layout probes, fail on fake tensors by design where
    # a record is wrong: torch's fake-tensor mode logged each failure's whole traceback on stderr, 30 lines above the
    # one the CLI prints for a weight or record it refuses)
    with logger_off("torch._subclasses.fake_tensor"):
        return _from_exported(torch, ep, name if name is not None else default, alignment, progress,
                              check_records=given)


def trace_torch(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, name: str | None = None,
                alignment: int = DEFAULT_ALIGNMENT, strict: bool = False, decompose: bool = False,
                lower_vmap: bool = False) -> tuple:
    """``(exported_program, graph, trace)``: ``from_torch`` plus what an executor needs to run the graph.

    ``trace`` maps every graph tensor to the fake tensor it came from (``trace["fake"]``: dtype, shape,
    strides, storage offset), every graph node to the tensor id each of its FX arguments was bound to when
    the node ran (``trace["env"]``: in-place writes rebind names), and every FX value to its final tensor
    id(s) (``trace["values"]``, for the program's outputs), and every node whose kernel writes side
    results nobody reads to those results' tensor ids by role (``trace["side"]``: ``{"indices": id}`` for
    ``max_pool2d``, ``{"save_mean": id, "save_invstd": id}`` for eval ``batch_norm``). A user input
    returned as it is (which ``from_torch`` refuses: no node produces it) is no graph output here; its FX
    name is in ``trace["input_outputs"]``, for the executor to return the caller's tensor.
    ``lower_vmap``: a program holding ``torch.vmap``, or a ``no_grad``/``autocast`` block writing its operand in
    place (which ``from_torch`` refuses), is lowered first (``lower_vmapped``), every other program imported as
    exported.
    """
    check_alignment(alignment)  # before the export, not after
    torch = _need_torch()
    given = isinstance(module, torch.export.ExportedProgram)
    ep, default = _export(torch, module, example_inputs, kwargs, strict, decompose)
    if lower_vmap and not decompose:
        ep = lower_vmapped(torch, ep, default)
    trace: dict = {"fake": {}, "env": {}, "values": {}, "side": {}, "input_outputs": set()}
    with logger_off("torch._subclasses.fake_tensor"):   # (as from_torch)
        graph = _from_exported(torch, ep, name if name is not None else default, alignment, None, trace,
                               check_records=given)
    return ep, graph, trace


def _export(torch, module: Any, example_inputs: Any, kwargs: dict | None, strict: bool, decompose: bool):
    """``(ExportedProgram, default graph name)``; export failures are GraphErrors naming the module."""
    _cache_dir_made("export")
    if isinstance(module, torch.export.ExportedProgram):
        ep = module
        default = "exported"
        if (example_inputs != () or kwargs) and not _has_dynamic_inputs(torch, ep):
            # a fixed program takes no other sizes: examples that are not its inputs were ignored, and a caller
            # giving a batch of 8 to a program exported at 4 had the plan for 4, silently
            if not isinstance(example_inputs, tuple):
                example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
            _check_example_types(torch, ep, example_inputs, _in_spec_order(ep, kwargs))
        elif example_inputs != () or kwargs:
            # a program exported with dynamic shapes (Dim): specialized to the example inputs' sizes by
            # exporting its module again (the same ATen ops and the very same weight tensors); a plan needs
            # every size, and the caller named them
            if not isinstance(example_inputs, tuple):
                example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
            kwargs = _in_spec_order(ep, kwargs)
            _check_example_types(torch, ep, example_inputs, kwargs)
            given = _check_ranges(torch, ep, example_inputs, kwargs)
            _check_weights_held(torch, ep)
            try:
                with _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"):
                    ep = _traced(torch, lambda: torch.export.export(module.module(), example_inputs,
                                                                    kwargs=kwargs, strict=strict))
            except Exception as exc:
                raise GraphError(f"specializing the exported program's dynamic shapes to the example inputs "
                                 f"failed: {_export_failure(exc)}{_guard_context(exc, given)}") from None
    else:
        if not isinstance(example_inputs, tuple):
            example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
        forks: list[str] = []
        try:
            # (a shape error while tracing: the fake-tensor mode logs the kernel's whole traceback, 30+
            # lines, at error level before export raises what our GraphError says in one line)
            with EXPORT_LOCK, _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"), \
                    rng_kept(torch, watch=not strict, forks=forks) as reseeded:
                ep = _traced(torch, lambda: torch.export.export(module, example_inputs, kwargs=kwargs,
                                                                strict=strict))
        except Exception as exc:  # export errors are many and deep; name the module and the first line
            first = _export_failure(exc)
            raise GraphError(f"torch.export failed for {type(module).__name__}: {first}") from None
        if any(reseeded):
            raise GraphError(f"{type(module).__name__}'s forward sets torch's random state itself (torch.manual_seed, "
                             "set_rng_state...), which torch.export does not record: the program would draw "
                             "from the caller's generator where eager reseeds it (seed outside forward, or pass "
                             "random values in as inputs)")
        drawing = next((n for n in ep.graph.nodes if n.op == "call_function"
                        and getattr(n.target, "_nondeterministic_seeded", False)), None)
        if forks and drawing is not None:
            raise GraphError(f"{type(module).__name__}'s forward enters torch.random.fork_rng() ({forks[0]}) and the "
                             f"program draws random numbers (node {drawing.name!r}): eager puts the generator back after "
                             "the block, so draws inside it are the same numbers at every call, where the program "
                             "would draw on from the caller's generator (draw outside the block, or pass the random "
                             "values in as inputs)")
        default = type(module).__name__
    if decompose:
        try:
            ep = _decomposed(torch, ep, ep.run_decompositions)
        except GraphError:
            raise
        except Exception as exc:
            first = _export_failure(exc)
            raise GraphError(f"decomposing {default} to core ATen failed: {first}") from None
    return ep, default


def lower_vmapped(torch, ep: Any, default: str) -> Any:
    """``ep`` itself, or, where it holds ``torch.vmap`` (functorch's pre-dispatch ``_add_batch_dim``), ``ep``
    lowered to the ATen dispatch level with no decomposition (``run_decompositions({})``).

    Why: export keeps a vmap as pre-dispatch ops over batched tensors, which have no plannable layout
    (``_check_not_vmapped``); ``flex_attention`` builds its default block mask under one, so every module
    calling it was refused. The empty table lowers only what has to go (the vmap's ops become the batched ATen
    ops its batching rules run), and ``linear``, ``scaled_dot_product_attention``... stay as exported. A
    program with no vmap is returned as it is (not even traced again).

    A program whose ``torch.no_grad()`` / ``autocast`` block writes one of its operands in place (an EMA buffer
    or momentum teacher updated under ``no_grad``, ``spectral_norm``'s power iteration in training mode), which
    ``_check_block_writes`` refuses as one op, is lowered the same way: the empty table inlines the block, its
    writes become the functionalized program's state updates (or ordinary in-place ops on user inputs), which
    the executor writes back after each call. Before, ``runtime.aten.compile`` refused every such module, naming
    ``from_torch(..., decompose=True)``, an option ``compile`` does not have. So is one whose higher-order op has a
    result at a symbolic storage offset (``_loose_offsets``: a ``while_loop`` over a module's parameters)."""
    nodes = [n for n in ep.graph.nodes if n.op == "call_function"]
    if any(_is_vmap_entry(n.target) for n in nodes):
        what = "torch.vmap"
    elif any(_block_write(torch, ep.graph_module, n) is not None for n in nodes):
        what = "torch.no_grad()/autocast block that writes in place"
    elif any(_loose_offsets(torch, n) for n in nodes):
        what = "higher-order op traced under autograd"
    else:
        return ep
    try:
        return _decomposed(torch, ep, lambda: ep.run_decompositions({}))
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(f"lowering {default}'s {what} to ATen ops failed: {_export_failure(exc)}") from None


def _decomposed(torch, ep: Any, decompose: Any) -> Any:
    """``decompose()`` (a ``run_decompositions`` of ``ep``, traced by ``_traced``) with every op of ``ep`` that runs
    for its effect alone (``_effect_op``: ``torch._assert_async(cond)``, a custom op returning nothing that checks or
    logs a tensor) kept; a GraphError naming the node where the decomposed program still lost one.

    Why: the decomposition's dead-code elimination keeps only the ops torch lists as side-effectful
    (``torch.fx.node._side_effectful_functions``: ``_assert_async.msg``, not ``_assert_async.default``), so a forward
    that also used ``torch.vmap`` (lowered so) or was imported with ``decompose=True`` lost its
    ``torch._assert_async``: a failing check ran on silently where eager raises (round 48). They are listed there
    for the decomposition's time (``_listed_as_effects``: torch reads that one process-wide set, so no decomposition
    can be told otherwise) and their count checked after."""
    effects = [n for n in ep.graph.nodes if _effect_op(torch, n)]
    if not effects:
        return _traced(torch, decompose)
    with _listed_as_effects(torch, {n.target for n in effects}):
        out = _traced(torch, decompose)
    left = Counter(_op_name(n.target) for n in out.graph.nodes if n.op == "call_function")
    for name, count in Counter(_op_name(n.target) for n in effects).items():
        if left[name] < count:
            node = next(n for n in effects if _op_name(n.target) == name)
            raise GraphError(f"node {node.name!r} ({name}): lowering the program to ATen ops dropped this op, which "
                             "runs for its effect alone (a check that raises, a logging op): the program would run on "
                             "where eager's check raises; export without torch.vmap / decompose=True")
    return out


#: (lock, {op: how many decompositions in flight listed it}) of ``_listed_as_effects``: torch's set is one per process
_EFFECTS_LISTED: tuple[threading.Lock, Counter] = (threading.Lock(), Counter())


@contextlib.contextmanager
def _listed_as_effects(torch, ops: set):
    """``ops`` in torch's set of side-effectful functions (``torch.fx.node._side_effectful_functions``, which
    dead-code elimination keeps) while the block runs, in every thread that needs them so; put back after the last.

    Why counted under a lock: the set is process-wide, and each decomposition added the ops it lacked and removed
    them after. A second thread's decomposition of a program with the same op found it listed (the first's), added
    nothing, and lost it when the first finished: its ``torch._assert_async`` was dropped and its import refused
    ("lowering the program ... dropped this op") where it runs alone. Now an op is removed only when no decomposition
    in flight needs it, and never one torch (or anyone before) listed."""
    lock, count = _EFFECTS_LISTED
    listed = torch.fx.node._side_effectful_functions
    with lock:
        ours = [op for op in ops if count[op] or op not in listed]
        for op in ours:
            count[op] += 1
            listed.add(op)
    try:
        yield
    finally:
        with lock:
            for op in ours:
                count[op] -= 1
                if not count[op]:
                    del count[op]
                    listed.discard(op)


def _effect_op(torch, n: Any) -> bool:
    """Whether FX node ``n`` calls an op that returns nothing, writes no argument and reads a tensor (``_assert_async``,
    a custom checking op): it runs for its effect alone, and dead-code elimination would drop it."""
    schema = getattr(n.target, "_schema", None) if n.op == "call_function" else None
    if schema is None or schema.returns or schema.is_mutable or _op_name(n.target).split(".")[0] in _METADATA_READS:
        return False
    return any(isinstance(a, torch.fx.Node) and isinstance(a.meta.get("val"), torch.Tensor)
               for a in torch.utils._pytree.tree_leaves((n.args, n.kwargs)))


def _loose_offsets(torch, n: Any) -> bool:
    """Whether higher-order op node ``n`` (a ``while_loop`` whose body reads a parameter that requires grad) has a
    result of static shape at a symbolic storage offset: traced under autograd, torch's ``while_loop`` keeps every
    iteration's carry for the backward and returns the last one's slice (``storage_offset`` ``12*u0 - 12``), which no
    plan can place ("data-dependent size u0 - 1"). The inference program ``run_decompositions({})`` traces again
    returns fresh results (offset 0), as eager's under ``no_grad``."""
    if n.op != "call_function" or not isinstance(n.target, torch._ops.HigherOrderOperator):
        return False
    for v in torch.utils._pytree.tree_leaves(n.meta.get("val")):
        if (isinstance(v, torch.Tensor) and all(isinstance(d, int) for d in v.shape)
                and not isinstance(v.storage_offset(), int)):
            return True
    return False


#: fake-tensor exceptions whose message is the op's name alone, and what they mean
_FAKE_FAILURES = {
    "DynamicOutputShapeException": "its output shape depends on its input's values (no fake kernel can size it)",
    "DataDependentOutputException": "its output depends on its input's values (no fake kernel can compute it)",
    "UnsupportedOperatorException": "no fake kernel (meta implementation) for it",
}


def _export_failure(exc: BaseException) -> str:
    """An export failure in one line. Why not ``first_line`` alone: torch's fake-tensor exceptions carry only
    the op's name (``linalg_lstsq``: "torch.export failed for M: aten.linalg_lstsq.default"), which said
    neither what failed nor why."""
    first = first_line(exc)
    why = _FAKE_FAILURES.get(type(exc).__name__)
    if why is not None and " " not in first:
        return f"{first}: {why} ({type(exc).__name__})"
    unknown = _UNKNOWN_OUTPUT.search(first)
    if unknown:   # (torch's advice, registering a pytree, is not what a caller of a library model does)
        return f"{first.split('. ')[0]}: {_output_advice(unknown[1])}"
    return first


#: torch.export's message for a forward returning an object it cannot flatten (transformers' ``DynamicCache``)
_UNKNOWN_OUTPUT = re.compile(r"Found <class '([^']+)'> in output, which is not a known type")


def _output_advice(type_name: str) -> str:
    """What to pass for a forward that returns a ``type_name`` torch.export cannot flatten. Why: a tiny GPT-2
    built from a config (``from_torch(model, (ids,))``) failed with torch's advice to register a pytree for
    ``DynamicCache``, where the KV cache is merely an option of the model's forward."""
    if type_name.rsplit(".", 1)[-1].endswith("Cache"):
        return "the forward returns its KV cache; pass kwargs={'use_cache': False} (or a cache the export takes)"
    return "make the forward return tensors, tuples, lists or dicts"


def is_dynamic(ep: Any) -> bool:
    """Whether the ExportedProgram ``ep`` has a user input of symbolic size (``_has_dynamic_inputs``): what
    ``memplan import`` asks before it plans a ``.pt2``, to name the ``--dim``s that fix it."""
    return _has_dynamic_inputs(_need_torch(), ep)


def _has_dynamic_inputs(torch, ep) -> bool:
    """Whether a placeholder of ``ep`` (a user input) has a symbolic size, stride or storage offset, or is a
    symbolic int itself (``forward(x, n: int)`` exported with ``n`` dynamic: the program was refused naming a
    symbolic size, "give ... example inputs", though the example inputs had been given)."""
    for n in ep.graph.nodes:
        val = n.meta.get("val") if n.op == "placeholder" else None
        if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return True
        if isinstance(val, torch.Tensor) and any(
                not isinstance(d, int) for d in (*val.shape, *val.stride(), val.storage_offset())):
            return True
    return False


#: example values compared with an exported constant input by value (``_check_example_types``)
_PLAIN_TYPES = (int, float, bool, str, type(None), complex)


def _user_leaves(ep: Any, leaves: list) -> list[tuple[Any, Any]]:
    """``(placeholder, example leaf)`` for each user input of ``ep`` that is a placeholder, paired by the
    signature's order of user inputs (a constant one, ``f: float`` fixed at 2.0, takes its leaf and has none).

    Why: pairing the placeholders with the leaves by position shifted every input after a constant one
    (``forward(f, x)``): ``x``'s range went unchecked, its size read off another leaf."""
    from torch.export.graph_signature import InputKind

    specs = [s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    return [(nodes[arg.name], x) for arg, x in zip(specs, leaves)
            if type(arg).__name__ != "ConstantArgument" and getattr(arg, "name", None) in nodes]


def _check_ranges(torch, ep: Any, example_inputs: tuple, kwargs: dict | None) -> list[str]:
    """Refuse example inputs whose sizes lie outside a dynamic program's range constraints, naming the input,
    the dimension and the range. Why: re-exporting ``ep.module()`` checks some bounds (a size above ``max``
    failed as torch's "Guard failed: x.size()[0] <= 64") but not a ``Dim`` whose ``min`` is 2, torch's
    default, which then accepted a size of 1 and planned a program whose ops were traced for sizes >= 2
    (export may specialize on that: a broadcast, a squeeze). A binding is read off each dimension that is
    one symbol, or an expression of one (``4*s6``: ``_bind_derived``); every constraint whose symbols are all bound is
    then checked. Returns each bound symbol's value in words (``k (torch's s6) = 1 (from ...)``), for
    ``_guard_context``."""
    from torch.utils import _pytree as pytree

    leaves = pytree.tree_leaves((tuple(example_inputs), dict(kwargs or {})))
    users = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in set(ep.graph_signature.user_inputs)]
    bound: dict[Any, tuple[int, str]] = {}   # symbol -> (size, where it was read)
    derived: list[tuple[Any, int, str]] = []   # (size expression of one symbol, size, where)
    for n, x in _user_leaves(ep, leaves):
        val = n.meta.get("val")
        expr = getattr(getattr(val, "node", None), "expr", None)
        if isinstance(val, torch.SymInt) and isinstance(x, int) and expr is not None and expr.is_Symbol:
            bound.setdefault(expr, (int(x), f"input '{n.name}'"))   # (a symbolic int: its range and guards)
            continue
        if not (isinstance(val, torch.Tensor) and isinstance(x, torch.Tensor)) or val.dim() != x.dim():
            continue   # (the export that specializes the program names a wrong structure or rank)
        for k, (d, size) in enumerate(zip(val.shape, x.shape)):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is not None and expr.is_Symbol:
                bound.setdefault(expr, (int(size), f"input '{n.name}' dimension {k}"))
            elif expr is not None and len(expr.free_symbols) == 1:
                derived.append((expr, int(size), f"input '{n.name}' dimension {k}"))
    names = _dim_names(torch, users)[0]
    for expr, size, where in derived:
        _bind_derived(bound, expr, size, where, names)
    dims = {expr: where for expr, _, where in derived}   # (a derived dimension out of range: named as itself)
    for expr, vr in (getattr(ep, "range_constraints", None) or {}).items():
        if not expr.free_symbols or not all(s in bound for s in expr.free_symbols):
            continue
        value = expr.subs({s: bound[s][0] for s in expr.free_symbols})
        if bool(value < vr.lower) or bool(value > vr.upper):
            where = bound[expr][1] if expr in bound else dims[expr] if expr in dims else \
                f"{expr} (from {bound[next(iter(expr.free_symbols))][1]})"
            what = _symbol_named(str(expr), names) if expr.is_Symbol else str(expr)
            raise GraphError(f"{where} is {value}, outside the exported program's range "
                             f"[{_bound(vr.lower)}, {_bound(vr.upper)}] "
                             f"for its dynamic dimension {what}: give an example size inside it (or export again "
                             "with that Dim's min/max)")
    return [f"{_symbol_named(str(sym), names)} = {value} ({where.removeprefix(_symbol_named(str(sym), names) + ' (').removesuffix(')')})"
            if not where.startswith("input ") else f"{_symbol_named(str(sym), names)} = {value} ({where})"
            for sym, (value, where) in sorted(bound.items(), key=lambda kv: str(kv[0]))]


def _check_example_types(torch, ep: Any, example_inputs: tuple, kwargs: dict | None) -> None:
    """Refuse example inputs that are not the dynamic program's inputs with other sizes: another structure (count,
    keywords, nesting), a non-tensor for a tensor input, a tensor of another dtype or rank, or a non-integer for a
    symbolic int input; a GraphError naming the input, what it takes and what was given.

    Why: example inputs only size a dynamic program's dimensions, but the specializing export traced whatever it
    was given: ``x`` exported as a float32 matrix and given a float64 one (or a rank-3 tensor) was planned as
    another program, in float64 (or rank 3), silently; a rank-1 tensor failed as torch's "tuple index out of
    range", and a wrong structure as torch's "Trying to flatten user inputs with exported input tree spec:"."""
    from torch.utils import _pytree as pytree

    expected = getattr(getattr(ep, "call_spec", None), "in_spec", None)
    leaves, spec = pytree.tree_flatten((tuple(example_inputs), dict(kwargs or {})))
    if expected is not None and spec != expected:
        given, takes = _structure(spec), _structure(expected)
        if given == takes:   # (the counts and keywords agree: a nested structure differs)
            given, takes = f"{given} ({' '.join(str(spec).split())})", f"{takes} ({' '.join(str(expected).split())})"
        raise GraphError(f"the example inputs are {given}, but the exported program takes {takes}: give one "
                         "example per input, structured as when it was exported")
    from torch.export.graph_signature import InputKind

    # (every user input in order, a constant one too: ``forward(x, n: int, f: float)`` exported with ``f``
    # specialized lists ``x, n, 2.0``; matching placeholders by name alone dropped the whole check, and an
    # ``n`` given as a tensor was traced as another program, its ``n + 1`` a planned tensor)
    specs = [s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    if len(specs) != len(leaves):
        return   # (a structure torch flattens otherwise: the export names any mismatch)
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    for arg, x in zip(specs, leaves):
        n = nodes.get(getattr(arg, "name", None))
        if n is None:
            continue
        val = n.meta.get("val")
        if type(arg).__name__ == "ConstantArgument":   # (an input export fixed at its example's value)
            # (2 for 2.0 passes: the program holds its own constant; True for 1 does not, nor a tensor for a number)
            if isinstance(x, bool) != isinstance(arg.value, bool) or type(x) not in _PLAIN_TYPES or x != arg.value:
                raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported "
                                 f"program fixed it at {arg.value!r} (only its dynamic dimensions and symbolic "
                                 "ints take other values: export again with it)")
            continue
        if isinstance(val, torch.Tensor):
            want = _tensor_words(val)
            if not isinstance(x, torch.Tensor):
                raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported "
                                 f"program takes {want} there")
            if x.dtype != val.dtype or x.dim() != val.dim():
                raise GraphError(f"example input '{n.name}' is {_tensor_words(x)}, but the exported program takes "
                                 f"{want}: example inputs only give a dynamic program its sizes (export again for "
                                 "another dtype or rank)")
            fixed = next((k for k, (d, s) in enumerate(zip(val.shape, x.shape)) if isinstance(d, int) and d != s), None)
            if fixed is not None:
                raise GraphError(f"example input '{n.name}' dimension {fixed} is {x.shape[fixed]}, but the exported "
                                 f"program fixes it at {val.shape[fixed]} (only its dynamic dimensions take other "
                                 "sizes)")
        elif isinstance(val, torch.SymInt) and (not isinstance(x, int) or isinstance(x, bool)):
            raise GraphError(f"example input '{n.name}' is {_short(x)} ({type(x).__name__}), but the exported program "
                             "takes an int there (a symbolic int input)")


def _tensor_words(t: Any) -> str:
    """``a float32 tensor of rank 2`` (``an int64 ...``), for ``_check_example_types``."""
    dtype = str(t.dtype).removeprefix("torch.")
    return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype} tensor of rank {t.dim()}"


def _structure(spec: Any) -> str:
    """A call's ``(args, kwargs)`` tree spec in words: ``2 positional inputs and keyword inputs y, z``."""
    try:
        args, kw = spec.child(0), spec.child(1)
        words = f"{args.num_children} positional input{'s' * (args.num_children != 1)}"
        keys = list(kw.context or [])
    except (AttributeError, IndexError, TypeError, ValueError):
        return str(spec)
    if keys:
        words += f" and keyword input{'s' * (len(keys) != 1)} {', '.join(map(str, keys))}"
    return words


def _guard_context(exc: BaseException, given: list[str]) -> str:
    """What the example inputs made of the program's dynamic dimensions (``given``, from ``_check_ranges``), to follow
    torch's "Guard failed: ..." where the specializing export failed on one of its guards; "" otherwise.

    Why: a guard's text names a Python expression of the inputs' sizes (``(y.size()[0] // 4) != 1``), not the dynamic
    dimension it refuses nor its value: ``y`` exported with ``{0: 4 * Dim("k")}`` and given 4 (``k`` = 1, which torch
    traced as at least 2) was refused so, with no word of ``k``."""
    if not given or not first_line(exc).startswith("Guard failed"):
        return ""
    small = "; torch traces a dynamic size as at least 2, so 0 or 1 may fail its guards" \
        if any(g.split(" = ")[1].split(" ")[0] in ("0", "1") for g in given) else ""
    return f" (the example inputs make {', '.join(given)}{small})"


def _bind_derived(bound: dict, expr: Any, size: int, where: str, names: dict[str, str]) -> None:
    """Bind the one symbol of input dimension ``where``'s size expression ``expr`` (``4*s6``) to the value that
    makes it ``size``, in ``bound`` (``_check_ranges``); a GraphError naming the dimension where no integer does or
    where an earlier dimension bound the symbol to another value.

    Why: only dimensions that are one symbol were read, so ``x`` exported with ``{0: 4 * Dim("k")}`` and given a
    size of 4 (``k`` = 1, below torch's lower bound of 2) or 13 (no ``k``) bound nothing, and was refused only by
    torch's guard text ("Guard failed: x.size()[0] // 4 != 1"), which named neither the ``Dim`` nor its value."""
    sym = next(iter(expr.free_symbols))
    what = _symbol_named(str(sym), names)
    value = _integer_root(expr, size)
    if value is None:
        raise GraphError(f"{where} is {size}, which its size {expr} is for no integer {what}: give an example "
                         "size it takes")
    if sym in bound and bound[sym][0] != value:
        raise GraphError(f"{where} is {size} = {expr} with {what} = {value}, but {bound[sym][1]} makes it "
                         f"{bound[sym][0]}: give example sizes of one {what}")
    bound.setdefault(sym, (value, f"{what} (from {where} = {expr} = {size})"))


def _symbol_named(symbol: str, names: dict[str, str]) -> str:
    """torch's ``symbol`` as a message names it: by the user's name for it where there is one (``k (torch's s6)``)."""
    named = _name_of(symbol, names)
    return f"{named} (torch's {symbol})" if named not in (None, symbol) else symbol


def _integer_root(expr: Any, value: int) -> int | None:
    """The one integer the one symbol of ``expr`` takes for ``expr`` to be ``value``, else None. Solved for a plain
    symbol: torch's symbols are declared positive, so a size of 0 (``4*s6`` = 0) had no solution though 0 is one,
    and was refused as "no integer" where the range check says why (below the lower bound)."""
    import sympy

    sym = next(iter(expr.free_symbols))
    plain = sympy.Symbol("_memplan_root")
    found = [r for r in sympy.solve(sympy.Eq(expr.subs(sym, plain), value), plain) if r.is_integer]
    return int(found[0]) if len(found) == 1 else None


def _in_spec_order(ep: Any, kwargs: dict | None) -> dict:
    """``kwargs`` in the order the program's placeholders take them (its ``in_spec``). Why: read in the caller's
    order, ``kwargs={"z": .., "y": ..}`` for ``forward(x, *, y, z)`` bound ``y``'s placeholder to ``z``'s sizes
    (``_check_ranges`` refused a valid size as outside ``y``'s range), and ``ep.module()``'s guards did the same
    (the export again failed "Guard failed: y.size()[1] >= 5"). Left as given where the keys differ (the export
    that follows names the mismatch)."""
    given = dict(kwargs or {})
    try:
        keys = list(ep.call_spec.in_spec.child(1).context)
    except (AttributeError, IndexError, TypeError, ValueError):
        return given
    return {k: given[k] for k in keys} if set(keys) == set(given) else given


def _bound(b: Any) -> str:
    """A range bound as a number, or ``inf`` (torch's ``int_oo``, which ``int()`` cannot take though it says it is
    finite)."""
    text = str(b)
    return text.replace("int_oo", "inf").replace("oo", "inf") if "oo" in text else str(int(b))


def sized_inputs(ep: Any, batch: int | None, dims: dict[str, int]) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of zero tensors sized as a dynamic ``ExportedProgram``'s user inputs with its symbolic
    dimensions fixed: ``batch`` for the leading one of every input whose first dimension is symbolic,
    ``dims`` by name (``_dim_names``: torch's symbol ``s31``, the input dimension ``x.1``, or the ``Dim``'s own
    name where the program still knows it). Why: ``memplan import x.pt2`` has no example inputs to specialize a
    dynamic program with (``from_torch(ep, inputs)`` does), so ``--batch`` / ``--dim`` make them, as they fix
    an ONNX model's symbolic dimensions. Values do not matter: the export that specializes the program runs
    on fake tensors, and the dynamic export already ran without data-dependent branches."""
    torch = _need_torch()
    from torch.utils import _pytree as pytree

    if not _has_dynamic_inputs(torch, ep):
        raise GraphError("--batch/--dim fix symbolic dimensions; this program has none (it was exported with fixed "
                         "sizes)")
    users = [n for n in ep.graph.nodes if n.op == "placeholder"
             and n.name in set(ep.graph_signature.user_inputs)]
    names, sourced = _dim_names(torch, users)
    derived = _derived_dims(torch, users, names)
    known = _dims_by_symbol(dims, names, sourced, derived, _fixed_dims(torch, users))
    if batch is not None:   # the leading symbol of each input names the batch: bind it first
        for n in users:
            val = n.meta.get("val")
            if isinstance(val, torch.Tensor) and val.dim() and not isinstance(val.shape[0], int):
                expr = val.shape[0].node.expr
                if expr.is_Symbol:
                    if known.setdefault(str(expr), (batch, "--batch"))[0] != batch:
                        given = _option(*known[str(expr)][::-1])
                        raise GraphError(f"--batch {batch} and {given} disagree: "
                                         f"{expr} is input '{n.name}'s leading dimension")
    _check_given_ranges(ep, known, names)

    def size(d: Any, where: str, what: str = "symbolic size") -> int:
        if isinstance(d, int):
            return d
        expr = d.node.expr
        missing = sorted(str(s) for s in expr.free_symbols if str(s) not in known)
        if missing:
            name = _name_of(missing[0], names)
            if name is None:
                raise GraphError(f"input '{where}': {what} {d}: torch's symbol {missing[0]} has no name a --dim "
                                 f"can give (a torch.export.Dim named {missing[0]!r} is another dimension, "
                                 f"{names[missing[0]]}): rename that Dim, or name this one")
            spelled = _spellings(missing[0], names, derived)
            raise GraphError(f"input '{where}': {what} {d} (fix it with "
                             f"{' or '.join(f'--dim {k}=N' for k in spelled)}"
                             f"{_batch_hint(torch, users, missing[0])})")
        value = int(expr.subs({s: known[str(s)][0] for s in expr.free_symbols}))
        if value < 0:   # (torch.zeros raised its own RuntimeError: a raw traceback out of `memplan import`)
            given = ", ".join(f"{s} = {known[str(s)][0]} ({known[str(s)][1]})"
                              for s in sorted(expr.free_symbols, key=str))
            raise GraphError(f"input '{where}': {what} {d} is {value} with {given}: a size is never negative")
        return value

    from torch.export.graph_signature import InputKind

    # (every user input in order, a constant one by its value: ``forward(x, n: int, f: float)`` exported with
    # ``f`` fixed at 2.0 has no placeholder ``f`` among ``users``, and two leaves for a spec of three were
    # torch's ValueError "treespec.unflatten(leaves)", a raw traceback out of ``memplan import``)
    by_name = {n.name: n for n in users}
    leaves = []
    for arg in (s.arg for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT):
        n = by_name.get(getattr(arg, "name", None))
        if n is None or type(arg).__name__ == "ConstantArgument":
            leaves.append(getattr(arg, "value", None))
            continue
        val = n.meta.get("val")
        if isinstance(val, torch.Tensor):
            leaves.append(_unread_tensor(torch, n.name, [size(d, n.name) for d in val.shape], val.dtype, known))
        elif isinstance(val, torch.SymInt):
            leaves.append(size(val, n.name, "symbolic int"))
        else:
            leaves.append(val)
    try:
        args, kwargs = pytree.tree_unflatten(leaves, ep.call_spec.in_spec)
    except Exception as exc:   # (inputs this program's signature and its input spec disagree on: an edited program)
        raise GraphError(f"the program's {len(leaves)} user inputs do not fit its input structure "
                         f"({_export_failure(exc)}): a corrupted or edited program, export and save it again") from None
    return tuple(args), dict(kwargs)


def _batch_hint(torch, users: list, symbol: str) -> str:
    """", or with --batch N ..." where ``symbol`` is the leading dimension of one of the user inputs ``users`` (what
    ``--batch`` binds), else "". Why: the hint was given for every open symbol, so a program exported with
    ``{0: 2 * Dim("k")}`` (its ``x.0`` is ``2*s6``, which ``--batch`` does not bind) said "or with --batch N", and
    ``--batch 4`` got the same line back; ``--dim x.0=N`` (which does bind it) went unsaid."""
    for n in users:
        val = n.meta.get("val")
        if isinstance(val, torch.Tensor) and val.dim() and str(getattr(getattr(val.shape[0], "node", None), "expr",
                                                                       val.shape[0])) == symbol:
            return ", or with --batch N where it is an input's leading dimension"
    return ""


def _unread_tensor(torch, name: str, shape: list[int], dtype: Any, known: dict[str, tuple[int, str]]) -> Any:
    """An uninitialized tensor of ``shape`` for input ``name`` of ``sized_inputs``; a GraphError naming the input, its
    size and the options given (``known``) where it cannot be made.

    Why ``empty``, not ``zeros``: the specializing export reads no value (it traces on fake tensors), and zeros wrote
    every byte: ``--dim x.0=400000000000`` on a program with no upper bound asked the machine for 4.8 TB, and failed
    with torch's raw "DefaultCPUAllocator: can't allocate memory" traceback (a size past int64, "Storage size
    calculation overflowed"); a size the machine could just hold was written through, page by page."""
    try:
        return torch.empty(shape, dtype=dtype)
    except (RuntimeError, MemoryError, OverflowError) as exc:
        given = ", ".join(_option(k, v) for v, k in known.values()) or "the sizes given"
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        why = "past int64" if "overflow" in first_line(exc).lower() else "more than this machine can allocate"
        raise GraphError(f"input '{name}' would be {list(shape)} ({nbytes} bytes) with {given}: {why} for the "
                         "example input the program is exported again with (give smaller sizes)") from None


def _option(name: str, value: int) -> str:
    """The option that gave a symbol its value, as the user wrote it: ``--batch 8``, ``--dim x.0=8``, or for an input
    dimension that is an expression of the symbol (``_dims_by_symbol`` records it as ``y.0=1 (s77``), the option
    and the symbol's value it made: ``--dim y.0=1 (s77=0)``."""
    if name == "--batch":
        return f"--batch {value}"
    return f"--dim {name}={value}{')' * ('(' in name)}"


def _check_given_ranges(ep: Any, known: dict[str, tuple[int, str]], names: dict[str, str]) -> None:
    """Refuse a ``--dim`` / ``--batch`` value (``known``: ``{symbol: (value, name given)}``, ``_dims_by_symbol``) that
    puts one of the program's dynamic dimensions outside its range constraints, naming the option given.

    Why: the range was checked only once the zero inputs were made (``_check_ranges``), which names an input's
    dimension: ``--dim y.0=1`` where ``y.0`` is ``b + 1`` (so ``b`` = 0, below its range [2, 64]) was refused as
    "input 'x' dimension 0 is 0", an input and a dimension the user had not written."""
    for expr, vr in (getattr(ep, "range_constraints", None) or {}).items():
        syms = sorted(expr.free_symbols, key=str)
        if not syms or not all(str(s) in known for s in syms):
            continue
        value = expr.subs({s: known[str(s)][0] for s in syms})
        if bool(value < vr.lower) or bool(value > vr.upper):
            given = " and ".join(_option(known[str(s)][1], known[str(s)][0]) for s in syms)
            what = _symbol_named(str(expr), names) if expr.is_Symbol else str(expr)
            raise GraphError(f"{given}: makes the dynamic dimension {what} {value}, outside the exported program's "
                             f"range [{_bound(vr.lower)}, {_bound(vr.upper)}] for it: give a value inside it (or "
                             "export again with that Dim's min/max)")


def _dim_names(torch, users: list) -> tuple[dict[str, str], bool]:
    """``(names, sourced)``: every name a ``--dim`` may give a symbolic dimension of the user inputs ``users``, and
    the symbol it names; and whether the program still knows where its symbols came from (a program in memory:
    ``sourced``; one loaded from a ``.pt2``: not).

    The names, the user's first: the ``torch.export.Dim``'s own name (``batch``) where the program still knows
    it; a symbolic int input's name (``forward(x, n: int)`` exported with ``n`` dynamic: ``n``); ``INPUT.K``,
    dimension ``K`` of user input ``INPUT`` where that dimension is one symbol (``x.0``); and torch's symbol
    itself (``s77``), unless a name of the user's above spells it for another symbol (a ``Dim("s17")`` on the
    symbol ``s77`` while torch's ``s17`` is another dimension: ``--dim s17=N`` is the ``Dim``, as written).

    Why: the symbols are all a saved program had, and torch numbers them by a hash of where they were made
    (``s77``, ``s17``): a user had to import once to learn them, and they change with the export. torch's
    ``export.save`` keeps no ``Dim`` names (its archive holds none: only symbols and their ranges), so a loaded
    program is named by its inputs' dimensions, which the user wrote and which do not change; a program still
    in memory (``sized_inputs`` from Python) also by its ``Dim`` names, read off its shape environment. A
    symbolic int input was nameable by its symbol alone (``--dim n=2``: "no such symbolic dimension")."""
    symbols: dict[str, str] = {}   # torch's symbol names
    inputs: dict[str, str] = {}    # INPUT.K and symbolic int inputs
    env = None
    for n in users:
        val = n.meta.get("val")
        for k, d in enumerate(_sizes_of(torch, val)):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is None:
                continue
            env = env or getattr(d.node, "shape_env", None)
            for s in expr.free_symbols:
                symbols.setdefault(str(s), str(s))
            if expr.is_Symbol:
                inputs.setdefault(f"{n.name}.{k}" if isinstance(val, torch.Tensor) else n.name, str(expr))
    debug = getattr(env, "source_name_to_debug_name", None) or {}
    replaced = getattr(env, "replacements", None) or {}
    sources = getattr(env, "var_to_sources", None) or {}
    names: dict[str, str] = {}
    for sym, where in sources.items():
        now = replaced.get(sym, sym)   # (a Dim's symbol torch found equal to another: `k` of x and of y)
        for src in where:
            try:
                text = src.name() if callable(src.name) else src.name   # (a property in torch 2.14)
            except Exception:   # (a source torch cannot name: no Dim name from it)
                continue
            # (the root ``k`` of a Dim used only derived, ``{0: 2 * Dim("k")}``, has no input dimension of its own: its
            # source is the Dim's name itself, a ConstantSource, which ``source_name_to_debug_name`` does not hold)
            dim_name = debug.get(text) or (text if type(src).__name__ == "ConstantSource" else None)
            if isinstance(dim_name, str) and dim_name.isidentifier() and str(now) in symbols:
                names.setdefault(dim_name, str(now))
    for table in (inputs, symbols):
        for name, sym in table.items():
            names.setdefault(name, sym)
    return names, bool(sources)


def _derived_dims(torch, users: list, names: dict[str, str]) -> dict[str, tuple[str, Any]]:
    """``INPUT.K`` -> ``(symbol, size expression)`` for each dimension of the user inputs ``users`` whose size is an
    expression of one symbol other than the symbol itself (``x`` exported with ``{0: 2 * Dim("n")}``: ``x.0`` is
    ``2*s17``), unless ``names`` already has that name.

    Why: such a dimension had no name a ``--dim`` could give; a loaded program (which keeps no ``Dim`` names) was
    refused with "name a dimension by its input, INPUT.K", which named none there: ``--dim s17=N``, torch's hashed
    symbol, was the only way in. Its size now gives the symbol's value (``_solved``)."""
    out: dict[str, tuple[str, Any]] = {}
    for n in users:
        val = n.meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        for k, d in enumerate(val.shape):
            expr = getattr(getattr(d, "node", None), "expr", None)
            if expr is not None and not expr.is_Symbol and len(expr.free_symbols) == 1:
                name = f"{n.name}.{k}"
                if name not in names:
                    out.setdefault(name, (str(next(iter(expr.free_symbols))), expr))
    return out


def _solved(name: str, value: int, symbol: str, expr: Any, names: dict[str, str] | None = None) -> int:
    """The value of ``symbol`` for which the size ``expr`` (of input dimension ``name``) is ``value``; a GraphError
    naming the dimension and its expression where no integer gives it (``--dim x.0=13`` for ``4*s6``), and the
    ``--dim`` that sets the symbol by the name the user gave it where the program knows one (the ``Dim``'s)."""
    option = _name_of(symbol, names or {}) or symbol
    found = _integer_root(expr, value)
    if found is not None and found < 0:   # (a negative symbol made another input's dimension negative: a raw error)
        raise GraphError(f"--dim {name}={value}: input dimension {name} is {expr}, which makes {symbol} {found}: "
                         f"a size is never negative (give a larger {name})")
    if found is None:
        raise GraphError(f"--dim {name}={value}: input dimension {name} is {expr}, which no integer {symbol} makes "
                         f"{value} (give --dim {option}=N, or a size it takes)")
    return found


def _spellings(symbol: str, names: dict[str, str], derived: dict[str, tuple[str, Any]]) -> list[str]:
    """Every name a ``--dim`` gives ``symbol`` by: torch's symbol itself where it still names it, then the user's names
    (the ``Dim``'s, ``INPUT.K``), then the input dimensions that are an expression of it (``x.0`` = ``2*s6``).

    Why all of them: the refusal listed torch's symbol and one other name, so ``x`` exported with ``{0: 2 * Dim("k")}``
    and ``y`` with ``{0: Dim("k")}`` named ``k`` and ``x.0`` but not ``y.0``, and a program whose ``Dim`` is only used
    derived did not name the ``Dim`` at all."""
    own = [symbol] if names.get(symbol) == symbol else []
    return own + [k for k, s in names.items() if s == symbol and k != symbol] + \
        [k for k, (s, _) in derived.items() if s == symbol]


def _name_of(symbol: str, names: dict[str, str]) -> str | None:
    """The name a ``--dim`` gives ``symbol`` by (``_dim_names``), the user's first (a ``Dim``'s, then an input's),
    torch's own symbol last; None where every name it had spells another symbol (a ``Dim`` named like it)."""
    spelled = [k for k, s in names.items() if s == symbol]
    return next((k for k in spelled if k != symbol), symbol if symbol in spelled else None)


def _fixed_dims(torch, users: list) -> dict[str, int]:
    """``INPUT.K`` -> size, for each dimension of the user inputs ``users`` the program fixed (a plain number)."""
    return {f"{n.name}.{k}": d for n in users if isinstance(n.meta.get("val"), torch.Tensor)
            for k, d in enumerate(n.meta["val"].shape) if isinstance(d, int)}


def _dims_by_symbol(dims: dict[str, int], names: dict[str, str], sourced: bool = True,
                    derived: dict[str, tuple[str, Any]] | None = None,
                    fixed: dict[str, int] | None = None) -> dict[str, tuple[int, str]]:
    """``dims`` (by any of the ``names`` of ``_dim_names``) as ``{symbol: (value, the name given)}``; a name the
    program has not is a GraphError listing those it has, and so are two names of one symbol given two values
    (``--dim x.0=4 --dim s77=5``: which one a plan took would be the order of the options). ``sourced``: whether
    the program knows where its symbols came from (``_dim_names``): only where it does not (a program loaded
    from a ``.pt2``) does the error say that a saved program keeps no ``Dim`` names; one in memory exported
    without named ``Dim``s (``Dim.AUTO``, ``Dim.DYNAMIC``) was told so too, which was not why."""
    known: dict[str, tuple[int, str]] = {}
    derived = derived or {}
    for name, value in dims.items():
        sym = names.get(name)
        if sym is None and name in derived:   # (an input dimension that is an expression of one symbol: x.0 = 2*s17)
            sym = derived[name][0]
            value, name = _solved(name, value, *derived[name], names), f"{name}={value} ({sym}"
        if sym is None and name in (fixed or {}):   # (``x.1`` of a program that fixed it: "no such" named no cause)
            listed = sorted(k for k in [*names, *derived] if "." in k)
            raise GraphError(f"--dim {name}={value}: dimension {name.rpartition('.')[2]} of input "
                             f"'{name.rpartition('.')[0]}' is fixed at {fixed[name]} in the exported program, not "
                             f"symbolic (its symbolic input dimensions: {', '.join(listed) or 'none'})")
        if sym is None and not name.replace(".", "").isidentifier():
            raise GraphError(_expression_named(name, value, names, derived))
        if sym is None:
            listed = sorted([*names, *derived], key=lambda k: (k != names.get(k), k))   # (torch's symbols first)
            lost = "" if sourced else \
                "; a saved program keeps no torch.export.Dim names: name a dimension by its input, INPUT.K"
            raise GraphError(f"--dim {name}: the program has no such symbolic dimension "
                             f"(it has: {', '.join(listed) or 'none'}{lost})")
        if sym in known and known[sym][0] != value:
            raise GraphError(f"--dim {known[sym][1]}={known[sym][0]}{')' * ('(' in known[sym][1])} and --dim "
                             f"{name}={value}{')' * ('(' in name)} disagree: both name the symbolic dimension {sym}")
        known.setdefault(sym, (value, name))
    return known


def _expression_named(name: str, value: int, names: dict[str, str], derived: dict[str, tuple[str, Any]]) -> str:
    """Why ``--dim NAME=VALUE`` with an expression for a name (``2*s6``, ``2*k``: the size a refusal shows for ``x``
    exported with ``{0: 2 * Dim("k")}``) names no dimension, and the option that does.

    Why: a ``--dim`` sets one free symbol, and the refusal showed the input's size ``2*s6``; given back as a name it
    was "no such symbolic dimension" with a list that did not say which entry it was. Where the expression (its
    names read as the symbols they give: ``2*k`` is ``2*s6``) is an input dimension's size, that input dimension is
    named, with the value that gives it."""
    spelled = re.sub(r"[A-Za-z_][A-Za-z_0-9]*", lambda m: names.get(m.group(0), m.group(0)), name).replace(" ", "")
    for dim, (symbol, expr) in derived.items():
        if str(expr).replace(" ", "") == spelled:
            return (f"--dim {name}={value}: {name} is not a free symbol but the size of input dimension {dim} "
                    f"({expr}, an expression of {_symbol_named(symbol, names)}): give --dim {dim}={value}")
    free = sorted({_symbol_named(s, names) for s in names.values()})
    return (f"--dim {name}={value}: a --dim names one free symbol of the program, not an expression (its free "
            f"symbols: {', '.join(free) or 'none'}; or name an input dimension, INPUT.K)")


def _sizes_of(torch, val: Any) -> list:
    return list(val.shape) if isinstance(val, torch.Tensor) else [val] if isinstance(val, torch.SymInt) else []


def load_exported(path: str):
    """An ExportedProgram saved with ``torch.export.save`` (a ``.pt2`` file): a regular file of any size
    (a FIFO would block the reader), checked before torch is needed. Given to torch as an open file, not a
    path: torch reads a path only if it ends in ``.pt2`` (``.PT2`` or another name logged a warning on a quiet
    stderr, which torch says will become an error), and the file opened is the one that was checked. Both
    ``torch.export`` and the deserializer's own logger (``torch._export.serde.serialize``, which torch gives a
    stderr handler of its own) are held: a program with a runtime
    check on a tensor's values (transformers' ``torch_compilable_check``, ``torch._check_tensor_all``) loads with
    "Symbol u0 did not appear in the graph that was deserialized" logged at warning level, a line of torch's
    internals on the quiet CLI's stderr for every such model (D-FINE, DEIMv2)."""
    check_readable(path, InputFormatError, 1 << 62)
    torch = _need_torch()
    _archive_reader()
    try:
        f = open_input(path)   # (a FIFO put in its place: no wait)
    except OSError as exc:
        raise InputFormatError(f"{path}: {exc.strerror or exc}") from None
    try:
        check_archive(f, path)   # (AOTInductor code, member paths, sizes, CRCs: before torch reads any of it)
    except BaseException:
        f.close()
        raise
    held = _HeldErrors()
    try:
        with _LOADS, _held_by(logging.getLogger("torch.export"), held), \
                _held_by(logging.getLogger("torch._export.serde.serialize"), held, logging.WARNING), f, \
                _no_code_from(path):
            ep = torch.export.load(f)
        _check_record_layouts(path)
        _check_guards_code(torch, ep, path)
        return ep
    except (_PickledCode, InputFormatError) as exc:
        raise InputFormatError(str(exc)) from None
    except Exception as exc:
        refused = _refusal_within(exc) or _refusal_within(held.exc)
        if refused is not None:   # (ours, wrapped by torch's deserializer: "failed deserializing node ...")
            raise InputFormatError(str(refused)) from None
        # (torch's "ValueRangeError: Invalid ranges [10:3]", or "RuntimeError: numel: integer multiplication
        # overflow" from a record, logged as held.last)
        inverted = _inverted_range(path) or _bad_tensor_record(path) or _dangling_read(path) or _schema_misfit(path)
        if inverted:
            raise InputFormatError(f"{path}: {inverted}") from None
        why = f"{type(exc).__name__}: {first_line(exc)}"
        if isinstance(exc, pickle.UnpicklingError) or isinstance(exc.__cause__, pickle.UnpicklingError):
            raise InputFormatError(_pickled_code(path, "an object torch's weights-only unpickler refuses")) from None
        if "warnings above" in str(exc):   # torch's own message points at a log this CLI keeps quiet
            why = held.last or "no exported program in the archive (a zip file torch.export.save did not write)"
        unloadable = _UNREGISTERED.search(why)
        if unloadable:
            raise InputFormatError(_unloadable_type(path, unloadable[1])) from None
        # (torch's C++ reader prefixes its messages with where it failed: "[enforce fail at inline_container.cc:180] .")
        why = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", why)
        kind = _other_torch_file(path) if "archive_format" in why else None
        if kind:
            raise InputFormatError(f"{path}: {kind}, not a torch.export program (which memplan import reads: export "
                                   "the model with torch.export.export and save it with torch.export.save)") from None
        others = _programs_named(path) if isinstance(exc, KeyError) else []
        if others and "model" not in others:
            raise InputFormatError(f"{path}: a .pt2 archive of exported program(s) {', '.join(map(repr, others))}, none "
                                   "named 'model', the one torch.export.save writes and torch.export.load reads: "
                                   "save the program to import with torch.export.save") from None
        raise InputFormatError(f"{path}: not a torch.export program ({why})") from None


def _inverted_range(path: str) -> str | None:
    """Words naming the first ``range_constraints`` entry of ``path``'s program that torch cannot load, with the input
    dimensions of its symbol: a ``min_val`` above its ``max_val``, a bound that is no integer, or a range that leaves
    out the example size the program records for that dimension (its ``model.json``, read again from the archive
    ``check_archive`` passed); None where none is found.

    Why: torch's deserializer refused such a file with "ValueRangeError: Invalid ranges [10:3]", "AssertionError: 4
    not in VR[10, 20]" or "invalid literal for int()", naming no symbol and no input (round 48)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("models/model.json")), None)
            program = json.loads(archive.read(name)) if name else None
        ranges = program["range_constraints"]
        graph = program["graph_module"]["graph"]
        for symbol, r in ranges.items():
            used = re.compile(rf"(?<![\w]){re.escape(symbol)}(?![\w])")
            dims = [(f"input {t['as_tensor']['name']!r} dimension {d}", size["as_expr"].get("hint"))
                    for t in graph["inputs"] if "as_tensor" in t
                    for d, size in enumerate(graph["tensor_values"].get(t["as_tensor"]["name"], {}).get("sizes", ()))
                    if isinstance(size, dict) and isinstance(size.get("as_expr"), dict)
                    and used.search(str(size["as_expr"].get("expr_str", "")))]
            where = f" ({', '.join(w for w, _ in dims[:4])})" if dims else ""
            lo, hi = r.get("min_val"), r.get("max_val")   # (None: unbounded, as torch saves a Dim with no max)
            bad = [b for b in (lo, hi) if b is not None and (not isinstance(b, int) or isinstance(b, bool))]
            if bad:
                return (f"range_constraints gives symbol {symbol!r}{where} the bound {_short(bad[0])}, which is no "
                        "integer (a corrupted or edited program: export and save it again)")
            lo, hi = -math.inf if lo is None else lo, math.inf if hi is None else hi
            if lo > hi:
                return (f"range_constraints gives symbol {symbol!r}{where} the range [{lo}, {hi}]: its min_val is "
                        "above its max_val (a corrupted or edited program: export and save it again)")
            for w, hint in dims:
                size = hint.get("as_int") if isinstance(hint, dict) else None
                if isinstance(size, int) and not lo <= size <= hi:
                    return (f"range_constraints gives symbol {symbol!r} the range [{lo}, {hi}], which leaves out the "
                            f"size {size} the program records for {w} (a corrupted or edited program: export and "
                            "save it again)")
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


#: the dtype codes of a serialized tensor record (``torch._export.serde.schema.ScalarType``), and the floating and
#: complex ones among them (which alone may require gradients)
_DTYPE_CODES = frozenset({*range(1, 14), *range(28, 36)})
_GRAD_DTYPE_CODES = frozenset({6, 7, 8, 9, 10, 11, 13, 29, 30, 31, 32, 33})
#: the most elements a tensor may have (torch counts them in int64)
_MAX_NUMEL = (1 << 63) - 1


def _program_json(path: str) -> Any:
    """The parsed ``models/model.json`` of the ``.pt2`` archive at ``path`` (which ``check_archive`` passed); None where
    it has none. Raises what zipfile and json raise (callers that only add words catch it)."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        name = next((n for n in archive.namelist() if n.endswith("models/model.json")), None)
        return json.loads(archive.read(name)) if name else None


#: the serialized tensor layouts (``torch._export.serde.schema.Layout``) other than strided, by code
_NOT_STRIDED = {0: "unknown-layout", 1: "sparse_coo", 2: "sparse_csr", 3: "sparse_csc", 4: "sparse_bsr",
                5: "sparse_bsc", 6: "mkldnn"}
#: the serialized strided layout
_STRIDED = 7


def _check_record_layouts(path: str) -> None:
    """Refuse a loaded ``.pt2`` a tensor record of which (its ``model.json``'s ``tensor_values``, in the graph or a
    subgraph) has a layout other than strided: an ``InputFormatError`` naming the tensor and its layout.

    Why: torch's deserializer drops the layout: a sparse input saved with its serialized strides ``(0, 0)`` came back
    as a *strided* ``[3, 3]`` fake tensor of overlapping elements, planned at 4 bytes, and a program reading it
    (``x.to_dense() * 2``) was refused as "corrupted or edited" (its op runs again on the strided record and makes
    strides ``(0, 0)``), where the same program in memory is refused as sparse (round 49). A program that cannot be
    read so is left to the checks after it."""
    try:
        program = _program_json(path)
    except Exception:  # noqa: BLE001 - torch read it; its records are checked as it loaded them
        return
    stack = [program]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
            continue
        if not isinstance(x, dict):
            continue
        values = x.get("tensor_values")
        for tensor, record in (values.items() if isinstance(values, dict) else ()):
            layout = record.get("layout", _STRIDED) if isinstance(record, dict) else _STRIDED
            if layout != _STRIDED:
                words = _NOT_STRIDED.get(layout, f"layout-code-{_short(layout)}")
                raise InputFormatError(f"{path}: the program records tensor {tensor!r} as a {words} tensor (only "
                                       "dense, strided tensors are supported)")
        stack.extend(v for k, v in x.items() if k != "tensor_values" and isinstance(v, (dict, list)))


def _bad_tensor_record(path: str) -> str | None:
    """Words naming the first tensor record of ``path``'s program (its ``model.json``'s ``tensor_values``, read again
    from the archive ``check_archive`` passed) that torch cannot make a fake tensor of: a dtype code no dtype has, a
    negative size, sizes whose product overflows int64, or a tensor of a dtype other than floating or complex that
    requires gradients; None where none is found (or the program cannot be read so: torch's words stand).

    Why: torch's deserializer refused such a file with "RuntimeError: numel: integer multiplication overflow",
    "Trying to create tensor with negative dimension -1: [-1, 4]" or "Only Tensors of floating point and complex
    dtype can require gradients", naming no tensor, and ``memplan import`` said the file was "not a torch.export
    program", which it is (round 49)."""
    try:
        graph = _program_json(path)["graph_module"]["graph"]
        inputs = {t["as_tensor"]["name"] for t in graph["inputs"] if "as_tensor" in t}
        records = list(graph["tensor_values"].items())
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    for tensor, record in records:
        if not isinstance(record, dict):
            continue
        what = f"{'graph input' if tensor in inputs else 'tensor'} {tensor!r}"
        sizes = [d.get("as_int") if isinstance(d, dict) else None for d in record.get("sizes") or ()]
        sizes = [d for d in sizes if type(d) is int]   # (a symbolic size: as_expr)
        dtype = record.get("dtype")
        if type(dtype) is not int or dtype not in _DTYPE_CODES:
            why = f"the dtype code {_short(dtype)}, which is no torch dtype"
        elif any(d < 0 for d in sizes):
            why = f"the negative size {next(d for d in sizes if d < 0)}"
        elif math.prod(sizes) > _MAX_NUMEL:
            why = f"sizes {sizes}, more elements than int64 counts"
        elif record.get("requires_grad") is True and dtype not in _GRAD_DTYPE_CODES:
            why = "requires_grad with a dtype that is neither floating nor complex (no gradient can be one)"
        else:
            continue
        return (f"the program's record of {what} gives it {why} (a corrupted or edited program: export and save it "
                "again)")
    return None


def _tensor_names(x: Any) -> list[str]:
    """The tensor names a serialized argument or output (``{"as_tensor": {"name": N}}``, ``{"as_tensors": [...]}``,
    nested in lists and dicts) refers to, in order."""
    names, stack = [], [x]
    while stack:
        y = stack.pop()
        if isinstance(y, list):
            stack.extend(reversed(y))
        elif isinstance(y, dict):
            for k, v in y.items():
                if k == "as_tensor" and isinstance(v, dict) and isinstance(v.get("name"), str):
                    names.append(v["name"])
                elif k == "as_tensors" and isinstance(v, list):
                    names.extend(t["name"] for t in v if isinstance(t, dict) and isinstance(t.get("name"), str))
                elif isinstance(v, (dict, list)) and k != "as_graph":
                    stack.append(v)
    return names


def _dangling_read(path: str) -> str | None:
    """Words naming the first node of ``path``'s program (its top graph, in order) that reads a tensor no input or
    earlier node makes; None where none does (or the program cannot be read so).

    Why: torch's deserializer refused such a file (an edited ``model.json`` whose ``gelu`` reads ``view``, made after
    it, or ``linear`` reading itself) with a bare "KeyError: 'view'", and ``memplan import`` said it was "not a
    torch.export program" (round 49)."""
    try:
        graph = _program_json(path)["graph_module"]["graph"]
        made = set(_tensor_names(graph["inputs"]))
        for node in graph["nodes"]:
            read = next((t for t in _tensor_names(node.get("inputs")) if t not in made), None)
            if read is not None:
                return (f"node {node.get('name') or '?'!r} ({_short(node.get('target'))}) reads tensor {read!r}, which no "
                        "input or earlier node makes (a corrupted or edited program: export and save it again)")
            made.update(_tensor_names(node.get("outputs")))
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


def _schema_misfit(path: str) -> str | None:
    """Words naming the first node of ``path``'s program (its top graph) calling an ATen-style op (``torch.ops.NS.OP.
    OVERLOAD``, looked up by name, nothing called) without an argument its schema requires; None where none does.

    Why: torch's deserializer refused such a file (an edited ``model.json`` whose ``twice(x)`` became ``aten.relu``,
    its argument still named ``x``, not ``self``) with a bare "KeyError: 'self'", and ``memplan import`` said it was
    "not a torch.export program" (round 49)."""
    import torch

    try:
        graph = _program_json(path)["graph_module"]["graph"]
        for node in graph["nodes"]:
            target = node.get("target")
            if not isinstance(target, str) or not target.startswith("torch.ops."):
                continue
            op: Any = torch.ops
            for part in target.split(".")[2:]:
                op = getattr(op, part, None)
            schema = getattr(op, "_schema", None)
            if schema is None:
                continue
            given = {i.get("name") for i in node.get("inputs") or () if isinstance(i, dict)}
            missing = next((a.name for a in schema.arguments if not a.has_default_value() and a.name not in given), None)
            if missing is not None:
                return (f"node {node.get('name') or '?'!r} ({target}) gives the op no argument {missing!r}, which its "
                        f"schema requires (it gives {sorted(map(str, given))}; a corrupted or edited program: export and "
                        "save it again)")
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


def _refusal_within(exc: BaseException | None) -> _PickledCode | None:
    """The ``_PickledCode`` refusal that ``exc`` wraps (its causes and contexts), or None. Why: torch's deserializer
    re-raises what a stand-in raised inside it as its own error, and the file's refusal read "not a torch.export
    program (_PickledCode: FILE: a symbolic size ...)", the file named twice in one line."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _PickledCode):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _other_torch_file(path: str) -> str | None:
    """What other torch archive ``path`` is (a TorchScript module, a ``torch.save`` file), from its members; None
    where it is neither or cannot be read. Why: both were "not a torch.export program (RuntimeError:
    PytorchStreamReader failed locating file archive_format: file not found.)", a reader's internals."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = [n.split("/", 1)[-1] for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return "a TorchScript module (torch.jit.save)"
    if "data.pkl" in parts:
        return "a torch.save file (a checkpoint or a pickled module)"
    return None


def _programs_named(path: str) -> list[str]:
    """The names of the exported programs a ``.pt2`` archive holds (``*/models/NAME.json``); [] where it cannot be
    read as a zip. Why: an archive ``package_pt2`` wrote with programs named ``first`` and ``second`` was "not a
    torch.export program (KeyError: 'model')", which named neither what it is nor what is missing."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return []
    found = (n.split("/") for n in names)
    return sorted({p[-1][:-len(".json")] for p in found if len(p) == 3 and p[1] == "models" and p[-1].endswith(".json")})


#: where torch keeps its compile caches, which importing its archive reader creates
_CACHE_DIR_VAR = "TORCHINDUCTOR_CACHE_DIR"


def _archive_reader() -> None:
    """Import torch's ``.pt2`` reader, which imports ``torch._dynamo``, which creates torch's cache directory
    (``TORCHINDUCTOR_CACHE_DIR``, else ``torchinductor_USER`` in the temporary directory) as it loads.

    Why here, before the file is opened: where that directory cannot be made (the variable names a path under a
    file, or a read-only place), the import raised inside the load, and ``memplan import x.pt2`` said the file
    was "not a torch.export program (NotADirectoryError: ...)": the file was blamed for the environment."""
    _cache_dir_made("load")
    try:
        importlib.import_module("torch.export.pt2_archive._package")
    except ImportError:
        return   # (another torch layout: torch.export.load imports what it needs, and says what fails)
    except OSError as exc:
        raise _cache_dir_error(exc, os.environ.get(_CACHE_DIR_VAR), "load") from None


def _cache_dir_made(verb: str) -> None:
    """Make torch's cache directory (``_torch_cache_dir``) before torch imports ``torch._dynamo``, which makes it
    as it loads; a MemplanError naming it (and the variable) where it cannot be made. ``verb``: what torch needs
    it for ("load", "export"). Nothing where ``torch._dynamo`` is imported already (it no longer looks).

    Why before torch: its import failing on the directory left ``torch._dynamo`` half-imported, and a second
    ``load_exported`` (or ``from_torch``) in the process, the directory fixed or not, failed inside torch
    ("Artifact of type=precompile already registered in mega-cache artifact factory") and blamed the file (the
    module) again. Made here, the error is the same on every call, and the first call after the directory is
    fixed works."""
    if "torch._dynamo" in sys.modules:
        return
    given = os.environ.get(_CACHE_DIR_VAR)
    try:
        os.makedirs(_torch_cache_dir(given), exist_ok=True)   # (as torch's cache_dir() does on import)
    except OSError as exc:
        raise _cache_dir_error(exc, given, verb) from None


def _cache_dir_error(exc: OSError, given: str | None, verb: str) -> MemplanError:
    """The error for torch's cache directory that cannot be made (``exc``), with the variable put back as it was
    (``given``: torch sets it to its absolute path before it tries)."""
    if given is None:
        os.environ.pop(_CACHE_DIR_VAR, None)
        where = f"its default cache directory {exc.filename or '?'}"
        fix = f"set {_CACHE_DIR_VAR} to a writable directory"
    else:
        os.environ[_CACHE_DIR_VAR] = given
        where = f"the cache directory {_CACHE_DIR_VAR}={given}"
        fix = f"point {_CACHE_DIR_VAR} at a writable directory"
    why = exc.strerror or type(exc).__name__
    at = f" ({exc.filename})" if exc.filename and given is not None and exc.filename != given else ""
    needed = "load any torch.export program" if verb == "load" else "export any module"
    return MemplanError(f"torch cannot create {where}{at}: {why}; {fix} (torch creates it to {needed})")


def _torch_cache_dir(given: str | None) -> str:
    """The directory torch's ``cache_dir()`` (``torch._inductor.runtime.cache_dir_utils``) makes as ``torch._dynamo``
    is imported: ``given`` (``TORCHINDUCTOR_CACHE_DIR``), else ``torchinductor_USER`` in the temporary directory.
    Computed here, not asked of torch: importing that module imports ``torch._dynamo``, which makes it."""
    if given is not None:
        return os.path.abspath(given)
    try:
        user = getpass.getuser()
    except (KeyError, ModuleNotFoundError, OSError):
        getuid = getattr(os, "getuid", None)
        user = f"uid_{getuid()}" if callable(getuid) else "unknown_user"
    return os.path.join(tempfile.gettempdir(), "torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))


#: one ``.pt2`` load at a time in the process (``load_exported``). Why: what guards a load is process-wide (torch's
#: archive reader's ``pickle`` and deserializer's ``sympy`` swapped for refusing stand-ins, ``torch.load`` forced
#: weights-only by its environment variable, warnings and two loggers held), and each guard put back what it had found
#: at its end: a load in a second thread found the first's stand-ins, so when the first ended the second ran on
#: unguarded (a pickled object in its archive unpickled, its code run) and then put the first's stand-ins back for
#: good (every later ``torch.load`` of the process weights-only, the loggers' records lost, warnings off)
_LOADS = threading.Lock()

#: the environment variables by which ``torch.load`` takes ``weights_only`` whatever its caller passes
_FORCE_WEIGHTS_ONLY, _FORCE_NO_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


class _PickledCode(Exception):
    """A pickled Python object in a ``.pt2`` archive that loading would have run (``_no_code_from``)."""


def _pickled_code(path: str, what: str) -> str:
    return (f"{path}: the archive holds {what} (a pickle, which can run any code when loaded): memplan import "
            "reads only tensors and the program from a .pt2; if you trust the file, load it in Python "
            "(torch.export.load) and import the program with memplan.from_torch")


class _RefusingPickle:
    """Stands in for the ``pickle`` module of torch's archive reader while ``memplan import`` loads a file:
    its ``loads`` (an opaque object constant's) refuses instead of unpickling."""

    def __init__(self, path: str) -> None:
        self.path = path

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        raise _PickledCode(_pickled_code(self.path, "an opaque Python object constant"))

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)


#: the sympy classes whose first argument ``sympy.srepr`` writes as a string (a symbol's name, a float's digits), and
#: that read it as that (no ``sympify``): the only places a string may stand (``_sympy_text_refusal``)
_NAMED_BY_STRING = frozenset({"Symbol", "Dummy", "Float"})


def _sympy_text_refusal(text: Any) -> str | None:
    """Why ``text`` is not an expression ``sympy.srepr`` writes (how torch.export saves a symbolic size), or
    None: only calls of sympy classes (``Symbol``, ``Integer``, ``Add``, torch's ``FloorDiv``...) on numbers,
    sympy constants, such calls and constant keyword arguments, with a string only as the name of a ``Symbol`` or
    ``Dummy`` or the digits of a ``Float``. Why so narrow: ``sympy.sympify`` of a string is Python's ``eval``,
    with the builtins in reach (``open``, ``__import__``), an f-string's or an attribute's code runs too; and
    a sympy class given a string elsewhere sympifies it in turn (``Max("__import__('os')...", 1)`` and ``Poly``
    ran it: the token filter before took any plain string anywhere). A sympy class built so runs nothing."""
    if not isinstance(text, str):
        return None   # (sympify of a non-string evaluates nothing)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        return f"it does not parse ({exc})"
    return _srepr_refusal(tree.body)


#: the sympy classes a saved size may call: arithmetic, comparisons and logic, the ones torch's symbolic sizes are made
#: of (with torch's own functions, ``_sympy_class``). Any other sympy class evaluates as it is built, some for ever:
#: ``factorial(Integer(10**8))`` in a size ran for minutes inside torch's deserializer
_SYMPY_SIZE_CLASSES = frozenset({
    "Symbol", "Dummy", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max", "Min", "floor", "ceiling",
    "Abs", "sign", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Eq",
    "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Xor", "Piecewise", "ExprCondPair", "BooleanTrue",
    "BooleanFalse", "Tuple"})
#: torch's sympy classes that are bases, not functions a size calls
_SYMPY_BASES = frozenset({"Application", "Expr", "LatticeOp", "MinMaxBase", "Basic", "Function"})
#: calls that raise their first argument to the power of their second (``LShift``: times 2 to it)
_POWERS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})
#: the largest power a saved size may take, nested powers multiplied (torch writes ``s0**2``; ``Pow(Integer(10),
#: Integer(10**8))`` is a number of 10**8 digits, which sympy computed as the text was read: a hang)
MAX_EXPONENT = 64
#: the largest precision (bits or digits) a saved ``Float`` may ask for
_MAX_PRECISION = 1024


def _small_number(x: ast.AST) -> float | None:
    """The value of ``x`` where it is a number literal, ``-`` one, or ``Integer(n)`` / ``Float(...)`` / ``Rational(p,
    q)`` of such; else None."""
    if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
        v = _small_number(x.operand)
        return None if v is None else -v
    if isinstance(x, ast.Constant) and type(x.value) in (int, float):
        return float(x.value)
    if isinstance(x, ast.Constant) and type(x.value) is str:
        try:
            return float(x.value)
        except ValueError:
            return None
    if isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in ("Integer", "Float", "Rational") \
            and x.args and not x.keywords:
        parts = [_small_number(a) for a in x.args]
        if any(p is None for p in parts):
            return None
        return parts[0] / parts[1] if len(parts) == 2 and parts[1] else parts[0]
    return None


def _srepr_refusal(node: ast.AST) -> str | None:
    """``_sympy_text_refusal`` of one parsed (sub)expression. Iterative: a deep text is no recursion error.
    Each node is walked with the product of the exponents of the powers around it (``MAX_EXPONENT``)."""
    import sympy

    stack: list[tuple[ast.AST, float]] = [(node, 1.0)]
    while stack:
        x, scale = stack.pop()
        if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
            x = x.operand   # (a negative number: srepr writes Integer(-2))
        if isinstance(x, ast.Constant) and type(x.value) in (int, float, bool) or (
                isinstance(x, ast.Constant) and x.value is None):
            continue
        if isinstance(x, ast.Tuple):
            stack.extend((e, scale) for e in x.elts)
            continue
        if isinstance(x, ast.Name) and not x.id.startswith("_") and isinstance(getattr(sympy, x.id, None), sympy.Basic):
            continue   # (a constant: oo, true, pi)
        if isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and _sympy_class(sympy, x.func.id):
            name = x.func.id
            named = name in _NAMED_BY_STRING and x.args and isinstance(x.args[0], ast.Constant) and \
                type(x.args[0].value) is str
            args = x.args[1:] if named else x.args
            if name in _POWERS and len(args) == 2:
                power = _small_number(args[1])
                if power is None or abs(power) * scale > MAX_EXPONENT:
                    return (f"{_short(ast.unparse(x))} raises to a power other than a constant of at most "
                            f"{MAX_EXPONENT}")
                stack.append((args[0], scale * max(1.0, abs(power))))
                continue
            stack.extend((a, scale) for a in args)
            for kw in x.keywords:
                if kw.arg is None or not isinstance(kw.value, ast.Constant) or type(kw.value.value) is str:
                    return f"keyword {kw.arg or '**'} of {name} is no constant"
                if kw.arg in ("precision", "dps", "prec") and not (
                        type(kw.value.value) is int and 0 < kw.value.value <= _MAX_PRECISION):
                    return f"keyword {kw.arg} of {name} asks for a precision over {_MAX_PRECISION}"
            continue
        return f"{_short(ast.unparse(x))} is no part of a sympy expression"
    return None


#: what a saved guard (``ExportedProgram._guards_code``) may name: the inputs (``L``), ``math`` and what torch's guard
#: namespace holds (``torch.fx.experimental.symbolic_shapes.SYMPY_INTERP``: ``torch``'s ``sym_*`` functions and dtypes,
#: two helper functions)
_GUARD_NAMES = frozenset({"L", "math", "inf", "torch", "IsNonOverlappingAndDenseIndicator",
                          "cast_symbool_to_symint_guardless"})
#: what of ``math`` a guard may use (``math.factorial(10**8)`` would run for minutes as the guard is checked)
_GUARD_MATH = frozenset({"isnan", "isinf", "isfinite", "inf", "nan", "floor", "ceil", "trunc", "sqrt", "log", "log2", "pow", "fmod",
                         "log10", "exp", "pi", "e", "fabs", "copysign", "cos", "sin", "tan", "acos", "asin", "atan",
                         "cosh", "sinh", "tanh", "asinh", "acosh", "atanh"})
#: the methods and attributes of an input a guard may use
_GUARD_TENSOR_ATTRS = frozenset({"size", "stride", "storage_offset", "dim", "numel", "shape", "dtype", "device"})
#: the expression nodes a guard is made of (besides names, attributes, calls and subscripts, checked one by one)
_GUARD_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Tuple, ast.Load,
                ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.keyword)


#: the largest constant a saved guard may multiply by (torch writes small coefficients: ``2*L['n']``)
MAX_GUARD_FACTOR = 1 << 32


#: the methods of an input whose result is a number (``size(0)`` and ``stride(0)`` too, given an index)
_GUARD_NUMBER_METHODS = frozenset({"numel", "dim", "storage_offset"})
#: the ``math`` names that are numbers, not functions
_GUARD_MATH_NUMBERS = frozenset({"inf", "nan", "pi", "e"})


def _repeats(side: ast.AST, sequence_inputs: frozenset[str] = frozenset()) -> bool:
    """Whether ``side``, an operand of a guard's ``*`` (or the left one of its ``%``), could make Python repeat a
    sequence (or format a string) or build a huge number: anything not surely a number (``_surely_number``), or a
    constant above ``MAX_GUARD_FACTOR``. ``sequence_inputs``: the placeholder names of the program's user inputs
    that are no tensor or number (a ``str`` one: ``_sequence_inputs``).

    Why: ``'a' * 10**11 == 0`` or ``L['x'].size() * 10**10 == 0`` passes every name rule and, run by ``ep.module()``,
    builds 100 GB before the comparison (a MemoryError or an out-of-memory kill, not a refusal). The forms that did so
    were listed one by one before, and ``L['x'].shape * 4000000000``, ``L['x'].size()[:] * 4000000000`` (tuples,
    under the factor bound), ``torch.sym_max(L['x'].size(), (1,)) * ...``, a ``str`` input ``L['s'] * 4000000000``
    and ``'%0999999999d' % 1`` (a 1 GB string, no ``*`` at all) still passed (round 49): now only what is surely a
    number is taken."""
    if isinstance(side, ast.Constant) and type(side.value) is int and abs(side.value) > MAX_GUARD_FACTOR:
        return True
    return not _surely_number(side, sequence_inputs)


def _surely_number(x: ast.AST, sequence_inputs: frozenset[str]) -> bool:
    """Whether guard expression ``x`` is a number (or a tensor, or an error) whatever the inputs: a number constant, a
    comparison, an indexed ``size()``/``stride()``/``shape``, ``numel()``/``dim()``/``storage_offset()``, a ``math``
    function or constant, torch's ``sym_*`` functions and guard helpers of numbers, arithmetic and logic of numbers,
    and an input (``L['n']``) that is a tensor or a number: not one in ``sequence_inputs``. A sequence or string
    repeated by ``*`` (or formatted by ``%``) is what ``_repeats`` refuses. Iterative: a deep text is no recursion
    error."""
    stack = [x]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Constant):
            if type(x.value) not in (int, float, bool, complex):
                return False
        elif isinstance(x, ast.Compare):
            continue   # (a bool, whatever it compares)
        elif isinstance(x, ast.Name):
            if x.id != "inf":
                return False
        elif isinstance(x, ast.Attribute):
            if not (isinstance(x.value, ast.Name) and x.value.id == "math" and x.attr in _GUARD_MATH_NUMBERS):
                return False
        elif isinstance(x, (ast.UnaryOp, ast.BinOp, ast.BoolOp)):
            stack.extend(c for c in ast.iter_child_nodes(x) if isinstance(c, ast.expr))
        elif isinstance(x, ast.Subscript):
            if _input_key(x) is not None:
                if _input_key(x) in sequence_inputs or any(n.startswith(_input_key(x) + "_") for n in sequence_inputs) \
                        or sequence_inputs and _input_key(x) == "flat_args":
                    return False
                continue
            index = x.slice.operand if isinstance(x.slice, ast.UnaryOp) else x.slice
            indexed = isinstance(index, ast.Constant) and type(index.value) is int
            of_sizes = isinstance(x.value, ast.Attribute) and x.value.attr == "shape" or (
                isinstance(x.value, ast.Call) and isinstance(x.value.func, ast.Attribute)
                and x.value.func.attr in ("size", "stride") and not x.value.args)
            if not (indexed and of_sizes):
                return False
        elif isinstance(x, ast.Call) and isinstance(x.func, ast.Attribute):
            owner = x.func.value.id if isinstance(x.func.value, ast.Name) else None
            if owner == "math":
                continue   # (a float, or math's own error)
            if owner == "torch" and x.func.attr.startswith("sym_"):
                stack.extend(x.args)   # (sym_max, sym_ite... return an argument: each must be a number)
                stack.extend(k.value for k in x.keywords)
                continue
            method = x.func.attr in _GUARD_NUMBER_METHODS or (x.func.attr in ("size", "stride") and x.args)
            if owner is not None or not method:
                return False
        elif isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id in _GUARD_NAMES:
            continue   # (IsNonOverlappingAndDenseIndicator, cast_symbool_to_symint_guardless: ints)
        else:
            return False
    return True


def _input_key(x: ast.Subscript) -> str | None:
    """The first key of ``L['xs'][0]...`` (``'xs'``), the input a guard names; None where ``x`` is no such chain."""
    while isinstance(x, ast.Subscript) and isinstance(x.value, ast.Subscript):
        x = x.value
    if isinstance(x, ast.Subscript) and isinstance(x.value, ast.Name) and x.value.id == "L" and \
            isinstance(x.slice, ast.Constant) and isinstance(x.slice.value, str):
        return x.slice.value
    return None


def _sequence_inputs(ep: Any) -> frozenset[str]:
    """The placeholder names of ``ep``'s user inputs that are neither a tensor nor a number (a ``str`` constant input,
    a script object), which a guard may not multiply (``_repeats``)."""
    numeric = {"TensorArgument", "SymIntArgument", "SymFloatArgument", "SymBoolArgument"}
    names = set()
    for spec in getattr(getattr(ep, "graph_signature", None), "input_specs", ()):
        if str(getattr(spec.kind, "name", spec.kind)) != "USER_INPUT":
            continue
        arg = spec.arg
        kind = type(arg).__name__
        if kind in numeric:
            continue
        if kind == "ConstantArgument" and (getattr(arg, "value", None) is None or
                                           type(arg.value) in (int, float, bool, complex)):
            continue
        names.add(str(getattr(arg, "name", "")))
    return frozenset(names)


def _guard_text_refusal(torch, text: Any, sequence_inputs: frozenset[str] = frozenset()) -> str | None:
    """Why ``text`` is not a guard torch.export writes (``(L['x'].size()[0] % 2) == 0``), or None: an expression of
    the inputs' sizes, strides and values, numbers and strings, ``math``'s functions and torch's ``sym_*`` ones.

    Why: ``ExportedProgram.module()`` pastes each saved guard into Python source as ``torch._assert(GUARD, "Guard
    failed: GUARD")`` and ``exec``s it, with the builtins and all of ``torch`` in reach; ``memplan import x.pt2 --dim
    s77=8`` specializes a dynamic program through it, and a guard ``__import__('os').system(...) == 0`` in a
    ``.pt2`` ran. A newline, a double quote or a backslash would leave the call or its message's string literal."""
    if not isinstance(text, str):
        return f"a {type(text).__name__}, not text"
    bad = next((c for c in ("\n", "\r", '"', "\\") if c in text), None)
    if bad is not None:
        return f"it holds {bad!r}"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"it does not parse ({type(exc).__name__})"
    stack: list[ast.AST] = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Constant):
            if type(x.value) not in (int, float, bool, str, type(None)):
                return f"{_short(ast.unparse(x))} is no number or string"
            continue
        if isinstance(x, ast.Name):
            if x.id not in _GUARD_NAMES:
                return f"it names {x.id!r}"
            continue
        if isinstance(x, ast.Attribute):
            owner = x.value.id if isinstance(x.value, ast.Name) else None
            fine = not x.attr.startswith("_") and (
                owner == "math" and x.attr in _GUARD_MATH or x.attr in _GUARD_TENSOR_ATTRS and owner is None or
                owner == "torch" and (
                    x.attr.startswith("sym_") or isinstance(getattr(torch, x.attr, None), torch.dtype)))
            if not fine:
                return f"it uses {_short(ast.unparse(x))}"
            stack.append(x.value)
            continue
        if isinstance(x, ast.BinOp) and isinstance(x.op, (ast.Pow, ast.LShift)):
            power = x.right.value if isinstance(x.right, ast.Constant) else None
            nested = any(isinstance(y, ast.BinOp) and isinstance(y.op, (ast.Pow, ast.LShift)) for y in ast.walk(x.left))
            if type(power) is not int or abs(power) > MAX_EXPONENT or nested:
                return f"{_short(ast.unparse(x))} raises to a power other than a constant of at most {MAX_EXPONENT}"
        if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult) and any(
                _repeats(side, sequence_inputs) for side in (x.left, x.right)):
            return (f"{_short(ast.unparse(x))} repeats a string, tuple or size list (multiplies what is not surely a "
                    f"number), or multiplies by more than {MAX_GUARD_FACTOR}")
        if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mod) and not _surely_number(x.left, sequence_inputs):
            return f"{_short(ast.unparse(x))} formats a string (the % of what is not surely a number)"
        if isinstance(x, (ast.Call, ast.Subscript)) or isinstance(x, _GUARD_NODES):
            stack.extend(ast.iter_child_nodes(x))
            continue
        return f"{_short(ast.unparse(x))} is no part of a guard"
    return None


def _check_guards_code(torch, ep: Any, path: str) -> None:
    """Refuse a loaded program any saved guard of which is not one torch writes (``_guard_text_refusal``), naming the
    file and the guard, before anything builds ``ep.module()``, which would run it."""
    sequences = _sequence_inputs(ep)
    for text in getattr(ep, "_guards_code", None) or ():
        why = _guard_text_refusal(torch, text, sequences)
        if why is not None:
            raise InputFormatError(f"{path}: a guard in the program, {_short(text)}, is not one torch.export writes "
                                   f"({why}): memplan import does not run it (torch would run it as Python code "
                                   "when the program is specialized to a size)")


def _sympy_class(sympy: Any, name: str) -> bool:
    """Whether ``name`` is a sympy class a saved size may call (``_SYMPY_SIZE_CLASSES``) or one of torch's sympy
    functions (not a base class of theirs), as srepr calls them."""
    if name.startswith("_") or name in _SYMPY_BASES:
        return False
    found = getattr(sympy, name, None) if name in _SYMPY_SIZE_CLASSES else getattr(_sympy_functions(), name, None)
    return isinstance(found, type) and issubclass(found, sympy.Basic)


def _sympy_functions():
    """torch's sympy functions (``FloorDiv``, ``ModularIndexing``...), which its saved sizes call."""
    import torch.utils._sympy.functions as functions

    return functions


class _CheckedSympy:
    """Stands in for the ``sympy`` module of torch's program deserializer while ``memplan import`` loads a
    file: ``sympify`` takes only text ``sympy.srepr`` could have written (``_sympy_text_refusal``)."""

    def __init__(self, sympy: Any, path: str) -> None:
        self.sympy, self.path = sympy, path

    def sympify(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        why = _sympy_text_refusal(text)
        if why is not None:
            raise _PickledCode(f"{self.path}: a symbolic size in the program, {_short(text)}, is not an "
                               f"expression torch.export.save writes ({why}): memplan import does not evaluate it "
                               "(sympy would run it as Python code)")
        return self.sympy.sympify(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sympy, name)


def _torch_module(name: str) -> Any:
    """The torch module ``name``, or None where this torch release has none of that name."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@contextlib.contextmanager
def _no_code_from(path: str):
    """While a ``.pt2`` file is loaded: every ``torch.load`` is weights-only (tensors and plain containers,
    torch's own safe unpickler), ``pickle.loads`` of an opaque object refuses, and torch's warnings stay off
    stderr. Why: ``torch.export.load`` unpickles with ``weights_only=False`` a weight or constant marked
    ``use_pickle``, falls back to it for sample inputs the safe unpickler refuses, and unpickles opaque
    objects with ``pickle.loads``: a hostile file ran any code it liked on ``memplan import``. Its symbolic
    sizes (``expr_str``, which torch gives to ``sympy.sympify``, an ``eval``) must be what ``sympy.srepr``
    writes (``_sympy_text_refusal``): ``__import__('os').system(...)`` in one ran too. What stays trusted is
    torch's own: its weights-only unpickler, the rest of its JSON program deserializer, and TorchScript's
    unpickler for TorchBind objects (which builds registered C++ classes only, no Python callables)."""
    # (torch's module layout moves between releases: a stand-in goes where its module and name are found;
    # the weights-only switch is torch.load's documented environment variable and holds in every release)
    swaps = [(module, name, make) for module, name, make in (
        (_torch_module("torch.export.pt2_archive._package"), "pickle", lambda old: _RefusingPickle(path)),
        (_torch_module("torch._export.serde.serialize"), "sympy", lambda old: _CheckedSympy(old, path)))
        if module is not None and hasattr(module, name)]
    saved = {k: os.environ.get(k) for k in (_FORCE_WEIGHTS_ONLY, _FORCE_NO_WEIGHTS_ONLY)}
    saved_attrs = [getattr(module, name) for module, name, _ in swaps]
    os.environ[_FORCE_WEIGHTS_ONLY] = "1"
    os.environ.pop(_FORCE_NO_WEIGHTS_ONLY, None)   # (both set: torch.load refuses every file)
    for (module, name, make), old in zip(swaps, saved_attrs):
        setattr(module, name, make(old))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # (the weights-only unpickler's "pickle protocol 4" note...)
            yield
    finally:
        for (module, name, _), old in zip(swaps, saved_attrs):
            setattr(module, name, old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: torch.export.load's message for a program whose inputs or outputs are a Python class torch's pytree cannot
#: rebuild (transformers' ``ModelOutput`` classes, even with transformers imported)
_UNREGISTERED = re.compile(r"Deserializing (\S+) in pytree is not registered")


def _unloadable_type(path: str, type_name: str) -> str:
    """The error for a saved program torch cannot load back because of a Python class in its signature. Why
    not "not a torch.export program": it is one (a GPT-2 saved from ``torch.export.export(model, (ids,))``),
    and the way out is in the export: plain tensors, tuples, lists and dicts load without any class."""
    return (f"{path}: a torch.export program whose inputs or outputs are a {type_name}, which torch cannot load "
            "back (its pytree type is not registered for serialization): export with plain tensor, tuple or dict "
            "inputs and outputs (transformers: kwargs={'return_dict': False}) and save again, or call "
            "memplan.from_torch on the ExportedProgram before saving it")


class _HeldErrors(logging.Handler):
    """The last exception a logger logged, as one line (``last``).

    Why: ``torch.export.load`` logs the error that made it give up on an archive (``file in archive is not
    in a subdirectory``, ``failed locating file archive_format``: a ``torch.save`` checkpoint) and raises
    "Please check the warnings above", which the importer keeps off stderr; the one line names the cause."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: str | None = None
        self.exc: BaseException | None = None   # (the exception itself)

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        self.exc = exc
        while exc.__cause__ is not None:   # the innermost cause says what failed ("failed deserializing node
            exc = exc.__cause__            # Node(...)" wraps "failed to resolve torch.ops.lib.op")
        text = first_line(exc)
        if len(text) > 200 and ". " in text[:200]:   # its first sentence: the rest dumps the serialized node
            text = text[:text.index(". ") + 1]
        self.last = f"{type(exc).__name__}: {text}"
        if "failed to resolve" in text:
            self.last += (" (an op this process does not have, a custom op: load the program in Python after "
                          "importing the library that registers it, and import it with memplan.from_torch)")


@contextlib.contextmanager
def _held_by(logger: logging.Logger, handler: logging.Handler, level: int = logging.DEBUG):
    """For the block, ``logger``'s records (``level`` and up: all by default) go to ``handler`` alone: none
    reaches stderr. A chatty logger is held from ``WARNING`` up: at ``DEBUG`` the deserializer logs every
    node it reads, work for nothing."""
    saved = (logger.disabled, logger.propagate, logger.handlers[:], logger.level)
    logger.disabled, logger.propagate, logger.handlers[:] = False, False, [handler]
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.disabled, logger.propagate, logger.handlers[:] = saved[0], saved[1], saved[2]
        logger.setLevel(saved[3])


#: non-view ops whose result keeps its input's storage offset, in a storage like the input's (torch's
#: ``clone_preserve_strides``): results torch's fake-tensor cache rebuilds otherwise (``_traced``)
_KEEPS_STORAGE = frozenset({"slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"})


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
    with EXPORT_LOCK:
        ep = trace()
        if any(_rebuilt_may_differ(torch, n) for n in ep.graph.nodes):
            with _fake_cache_off(torch):
                ep = trace()
    return ep


#: one export (or decomposition) at a time in the process (``_traced``; ``runtime.aten.program.load_program`` holds it
#: around its whole export, state snapshots included). Why: torch's export is not thread-safe (its module-hierarchy
#: global, the proxy mode's slot), so two threads exporting at once (``runtime.aten.compile`` of two modules) failed in
#: torch ("ProxyTorchDispatchMode slot already occupied", "_EXPORT_MODULE_HIERARCHY must not be None", "Trying to pop
#: empty mode stack"), each naming its module as the failure. Reentrant: held by a caller around its own exports
EXPORT_LOCK = threading.RLock()


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
                   trace: dict | None = None, *, check_records: bool = True) -> Graph:
    """``check_records``: check each op's recorded result against the op (``_check_recorded_results``), for a program
    given as an ``ExportedProgram`` (loaded from a file, perhaps edited); one exported here from a module is torch's
    own word made in this process, and on CUDA its fake re-run can differ from export's record where no size is
    wrong (a Kosmos-2 text model's ``aten.dropout``, session 43), refusing a program that runs."""
    from torch.export.graph_signature import InputKind, OutputKind
    from torch.multiprocessing.reductions import StorageWeakRef

    sig = ep.graph_signature
    weight_names = {s.arg.name for s in sig.input_specs
                    if s.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
                    and hasattr(s.arg, "name")}
    out_names = [s.arg.name for s in sig.output_specs
                 if s.kind in (OutputKind.USER_OUTPUT, OutputKind.BUFFER_MUTATION, OutputKind.PARAMETER_MUTATION,
                               OutputKind.USER_INPUT_MUTATION)
                 and hasattr(s.arg, "name")]

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
    #: tensors laid out otherwise than their fake tensors (``_overlap_scatter_result``), and views of them
    relaid: set[str] = set()
    #: tensors whose fake tensor is not their place in their storage: ``relaid`` ones, and the views of a
    #: loaded program laid out again (its fake tensors all lie at storage offset 0 of storages of their own)
    laid: set[str] = set()
    #: views of a loaded program that could not be laid out again (``_view_on_layouts``): whole-parent views
    loose: set[str] = set()

    def new_rec(tid: str, val, kind: str, where: str) -> _Rec:
        _check_strided(torch, val, where)
        size, off, span = _extent(val, where)
        attrs = {"shape": [int(s) for s in val.shape], "dtype": str(val.dtype).removeprefix("torch.")}
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
        _, off, span = _extent(val, where)
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
        voff, vsize = off - start, span
        attrs = {"shape": [int(s) for s in val.shape], "dtype": str(val.dtype).removeprefix("torch.")}
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
        for fx_name, (absolute, relative) in body_reach(torch, ep.graph_module, n).items():
            tid = current.get(fx_name)
            if isinstance(tid, str):   # (bytes from its storage's start: its root's bytes 0..size are that storage)
                root = recs[root_of(tid)]
                root.size = max(root.size, absolute, recs[tid].off + relative if relative else 0)
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
        for k, v in enumerate(out_vals):
            if not isinstance(v, torch.Tensor):
                ids.append(None)
                continue
            tid = n.name if not isinstance(val, (list, tuple)) else getitem_names.get(k, f"{n.name}.{k}")
            if tid in recs:
                tid = f"{tid}.{k}"
            _check_strided(torch, v, where)
            fixed = _overlap_scatter_result(torch, op, n, v)
            if fixed is not v:
                v = fixed
                relaid.add(tid)
                laid.add(tid)
            sref = StorageWeakRef(v.untyped_storage())
            whole = unshared = False
            alias = None if op.split(".")[0] in _FRESH else next(
                (t for t in in_ids if recs[t].storage == sref), None)
            if alias is None and k < len(declared) and declared[k] is not None:
                # storages not shared (a program loaded from .pt2): trust the schema, except for ops that
                # alias only when they can (reshape of a non-viewable layout copies)
                cand = current.get(declared[k])
                if cand in in_vals and _aliases_here(
                        torch, op, recs[cand].val if cand in laid else in_vals[cand].meta["val"], v, n):
                    alias, unshared = cand, True
            elif alias is None and not kept:
                # storages not shared, and no schema to say: a composite op that returns its input or a view
                # of it (eval dropout, einsum "ij->ji", broadcast_tensors) is asked of torch on meta tensors
                if probed is None:
                    probed = _probed_aliases(torch, n, len(out_vals), current, recs, laid)
                cand = current.get(probed[k]) if probed[k] is not None else None
                if cand in in_vals:
                    alias, unshared = cand, True
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
                                         like=None if alias in relaid else v)
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
                    inplace.append((tid, alias))
                    redirect[in_vals[alias].name] = tid
                else:
                    make_view(tid, v, alias, where)
                    forced.add(root_of(alias))
            elif alias is not None:
                make_view(tid, v, alias, where, whole=whole)
            else:
                new_rec(tid, v, "intermediate", where)
            outs.append(tid)
            ids.append(tid)
        for fx_name in mutated:  # written arguments, returned or not
            t = current.get(fx_name)
            for tid in (t if isinstance(t, list) else [t]):
                if isinstance(tid, str) and fx_name not in redirect:
                    forced.add(root_of(tid))
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
        for role, meta in _side_results(torch, op, n, val):  # written by the op's kernel, read by nobody
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
            cost = node_cost(_flops(torch, op, n, out_vals), nbytes)
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
            raise GraphError(f"output {fx_name!r} is the user input {tid!r} itself: no node produces it "
                             "(unsupported; return a copy)")
        r.kind = "output"
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


def body_reach(torch, owner: Any, n: Any, depth: int = 0) -> dict[str, tuple[int, int]]:
    """``{operand FX name: (absolute, relative)}`` for higher-order op node ``n``: the bytes a ``_STORAGE_BOUND`` view
    in its subgraphs (``as_strided``, ``as_strided_copy``, ``as_strided_scatter``: at any depth) touches in that
    operand's storage, counted from the storage's start (an explicit ``storage_offset``) or from the operand's own
    first element (none given: the view keeps its input's offset; a ``map``'s slice's, the operand's last slice's).

    Why: the top level grows a root to what such a view touches (``make_view``); inside a body nothing did, so a
    loaded program's input (its example not saved: its fake tensor is its elements alone) read by a branch's
    ``as_strided((2,), (1,), 6)`` was planned at 8 bytes where the branch reads 24..32. Sizes that are not plain
    numbers (a body's symbols) are left out."""
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
            for src, absolute, relative in _touches(torch, sub, m, depth):
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


def _touches(torch, sub: Any, m: Any, depth: int) -> list[tuple[Any, int, int]]:
    """``(input node, absolute, relative)`` bytes (``body_reach``) that subgraph node ``m`` touches in its inputs'
    storages: an ``as_strided``-like view's, or a nested higher-order op's, by its operands."""
    if m.op != "call_function":
        return []
    if isinstance(m.target, torch._ops.HigherOrderOperator):
        names = {a.name: a for a in _flat_nodes(torch, (m.args, m.kwargs))}
        return [(names[k], a, 0) for k, (a, _) in body_reach(torch, sub, m, depth + 1).items() if k in names]
    if _op_name(m.target).split(".")[0] not in ("as_strided", "as_strided_copy", "as_strided_scatter"):
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
    from torch.utils import _pytree as pytree

    saved_of: dict[str, Any] = {}
    weights: dict[str, str] = {}   # placeholder -> the module's name for the weight
    tables = (getattr(ep, "state_dict", None) or {}, getattr(ep, "constants", None) or {})
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR) and name is not None:
            saved_of[name] = next((t[spec.target] for t in tables if spec.target in t), None)
            weights[name] = str(spec.target)
    user = [n for n in ep.graph_signature.user_inputs if isinstance(n, str)]
    try:
        leaves = pytree.tree_leaves(getattr(ep, "example_inputs", None))
    except Exception:   # (examples of a form pytree cannot flatten: none taken)
        leaves = []
    if len(leaves) == len(user):
        saved_of.update(zip(user, leaves))
    groups: dict[tuple, list] = {}
    for n in graph_nodes:
        fake, real = n.meta.get("val"), saved_of.get(n.name)
        if n.op == "placeholder" and isinstance(real, torch.Tensor) and real.layout != torch.strided:
            # (a loaded program's fake tensors are all strided: only the saved tensor tells, where it was saved)
            raise GraphError(f"node {n.name!r}: its example (or saved) tensor is a "
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
    if tuple(fake.shape) != tuple(real.shape) or fake.dtype != real.dtype:
        raise GraphError(f"node {name!r}: the program records weight {target!r} as "
                         f"{str(fake.dtype).removeprefix('torch.')} {list(fake.shape)}, but holds a "
                         f"{str(real.dtype).removeprefix('torch.')} {list(real.shape)} tensor for it (a corrupted or "
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
            fake.dtype != real.dtype or tuple(fake.shape) != tuple(real.shape)):
        raise GraphError(f"node {name!r}: the program records it as {str(fake.dtype).removeprefix('torch.')} "
                         f"{list(fake.shape)}, but the tensor it holds or was exported with is "
                         f"{str(real.dtype).removeprefix('torch.')} {list(real.shape)} (a corrupted or edited program: "
                         "export and save it again)")
    if real.layout != torch.strided or fake.layout != torch.strided or tuple(fake.shape) != tuple(real.shape) \
            or fake.dtype != real.dtype or not all(isinstance(d, int) for d in (*fake.shape, *fake.stride())):
        return
    if _elements(fake) != _elements(real) or (_overlapping(torch, fake) and not _overlapping(torch, real)):
        raise GraphError(f"node {name!r}: the program records it as {_layout_words(fake)}, but the tensor it holds "
                         f"or was exported with is {_layout_words(real)}, spanning {_elements(real)} elements, not "
                         f"{_elements(fake)} (a corrupted or edited program: export and save it again)")


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


def _overlap_scatter_result(torch, op: str, n: Any, v: Any) -> Any:
    """The result of ``as_strided_scatter`` laid out as eager's kernel lays it out, where torch's fake kernel
    gives it another layout: over an input whose elements share memory (an ``expand``).

    Why: eager's kernel starts from ``clone_preserve_strides(input)``, which cannot keep an overlapping
    layout (a copy into it would write one element twice) and clones such an input into a dense tensor of
    its own (``clone()``'s layout, the window's storage offset counting from its start). The fake kernel
    (torch 2.14's ``prims.as_strided_scatter``) keeps the input's strides and storage: the result got the
    expanded strides and a slot of the input's few bytes, and an executor writing eager's result there
    was refused by torch ("more than one element of the written-to tensor refers to a single memory
    location"), where eager computes. The views of the result and in-place writes to it, whose fake tensors
    were derived from the fake layout, are laid out again from the corrected one (``_view_on_layouts``)."""
    if op.split(".")[0] != "as_strided_scatter" or not n.args:
        return v
    x = getattr(n.args[0], "meta", {}).get("val")
    if not isinstance(x, torch.Tensor):
        return v
    try:
        if torch._debug_has_internal_overlap(x) != 1:  # 1: MemOverlap::Yes
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


def _meta_arg(torch, a: Any, current: dict, recs: dict, laid: set) -> Any:
    """FX argument ``a`` as a meta tensor of its layout (the corrected one, for a tensor in ``laid``), in a
    storage of its own; a non-tensor value as it is.

    Made with ``set_``, not ``as_strided``: an ``as_strided`` result is a view (``_is_view``), and ops that
    refuse views ran on it as on none eager ever gave them. A loaded program's ``torch.tensor([...])``
    literal is ``lift_fresh_copy`` then ``detach_``, and ``detach_`` of a view raises ("Can't detach views
    in-place"), so its result, and every view of it (``[1:]``), claimed its whole parent at offset 0 where the
    program in memory has it 4 bytes in, and the ATen executor refused the loaded program."""
    t = current.get(a.name)
    val = recs[t].val if isinstance(t, str) and t in laid else a.meta.get("val")
    if not isinstance(val, torch.Tensor):
        return val
    n_el = -(-int(val.untyped_storage().nbytes()) // val.element_size())
    storage = torch.empty(n_el, dtype=val.dtype, device="meta").untyped_storage()
    return _lazy_bits_of(torch, val, torch.empty(0, dtype=val.dtype, device="meta").set_(
        storage, val.storage_offset(), tuple(val.shape), tuple(val.stride())))


def _target_name(target) -> str:
    """An FX target as messages name it: an ATen op as torch prints it (``aten.add.Tensor``), a Python function
    by its qualified name (its repr carries a memory address: messages differed from run to run)."""
    if callable(target) and not hasattr(target, "_schema") and hasattr(target, "__qualname__"):
        return f"{getattr(target, '__module__', None) or '?'}.{target.__qualname__}"
    return str(target)


def _op_name(target) -> str:
    s = str(target)
    s = s[len("aten."):] if s.startswith("aten.") else s
    return s.removesuffix(".default")


def _covers_root(recs: dict, tid: str, root: str) -> bool:
    """Whether view ``tid`` is the whole of ``root`` (offset 0 along its chain, the root's size)."""
    off, t = 0, tid
    while recs[t].view_of is not None:
        off += recs[t].view_offset
        t = recs[t].view_of
    return t == root and off == 0 and recs[tid].size == recs[root].size


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


#: aliasing ops whose result starts where their input starts (no storage offset of their own)
_OFFSET0 = {"view", "_unsafe_view", "reshape", "reshape_as", "_reshape_alias", "flatten", "unflatten", "permute",
            "transpose", "t", "expand", "expand_as", "unsqueeze", "squeeze", "alias", "detach", "view_as",
            "contiguous", "to", "type_as", "view_as_real", "view_as_complex", "movedim", "swapaxes", "mT", "T"}
#: ops that return new memory although their fake result shares its input's storage (export's fake
#: ``lift_fresh_copy`` of a lifted constant returns the constant's storage; the real op copies it)
_FRESH = {"lift_fresh_copy"}
#: ops whose schema says "aliases its input" but which copy when no view can express the result
_MAY_ALIAS = {"reshape", "reshape_as", "flatten", "contiguous", "to", "type_as", "_reshape_alias", "resolve_conj",
              "resolve_neg"}


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
    no memory); a node the fake run cannot take (no fake kernel, symbolic sizes, a data-dependent op) is left as
    recorded, and one whose kernel refuses its recorded arguments is refused (``_refuses_its_arguments``).

    Why: a program loaded from a ``.pt2`` is its JSON's word, and the importer trusted every size in it: a file whose
    ``x * 2`` recorded a ``[1, 3]`` result of a ``[4, 3]`` input (an edited or corrupted ``model.json``) was planned
    at 12 bytes where the op writes 48, and one recording that result with strides ``(0, 0)`` at 4 bytes: an arena
    too small, silently. A program in memory agrees with itself (torch made its records the same way). An op that
    writes its arguments is checked too (an edited ``y.add_(1)`` recording ``[1, 3]`` for a ``[4, 3]`` ``y``, its
    reader ``* 3`` ``[1, 3]`` as well, planned that product at 12 bytes where eager writes 48), unless nothing reads
    its result (``_unread_write``)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = None
    for n in graph_nodes:
        if n.op != "call_function" or not _checked_target(torch, n, owner) or _unread_write(torch, n):
            continue
        recorded = n.meta.get("val")
        outs = list(recorded) if isinstance(recorded, (list, tuple)) else [recorded]
        if not any(isinstance(v, torch.Tensor) for v in outs) or not all(
                _plain_layout(torch, v) for v in outs if isinstance(v, torch.Tensor)):
            continue
        mode = mode or FakeTensorMode()

        def run(n: Any = n, outs: list = outs, mode: Any = mode) -> list:
            with mode, warnings.catch_warnings():
                warnings.simplefilter("ignore")
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
        except Exception as exc:   # (no fake kernel, a symbolic or data-dependent size: the record stands)
            if _refuses_its_arguments(torch, n, exc):
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the op refuses the arguments the "
                                 f"program records ({type(exc).__name__}: {_short(first_line(exc))}), so it cannot "
                                 "run (a corrupted or edited program: export and save it again)") from None
            continue
        # (a *_scatter's fake kernel keeps an overlapping input's strides, which eager's does not: laid out again
        # where it is imported, ``_overlap_scatter_result``, and its span is no record to check)
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
            if tuple(v.shape) != tuple(m.shape) or smaller:
                which = f"result {k}" if len(outs) > 1 else "result"
                raise GraphError(f"node {n.name!r} ({_target_name(n.target)}): the program records its {which} as "
                                 f"{_layout_words(v)}, but the op makes {_layout_words(m)} from the arguments it "
                                 "records (a corrupted or edited program: export and save it again)")


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
    torch exported never fail so: their records are the fake runs' own (no such error over ~120 models checked)."""
    return isinstance(n.target, torch._ops.OpOverload) and type(exc) in _ARGUMENT_ERRORS


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
    edited" ("records its result as float32 [4] ..., but the op makes float64 [4]")."""
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
    except (TypeError, ValueError, RuntimeError):
        return None
    try:
        return run()
    finally:
        torch.set_default_dtype(old)


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


def _plain_layout(torch, v: Any) -> bool:
    """Whether tensor ``v`` is strided with every size, stride and storage offset a plain number."""
    try:
        return v.layout == torch.strided and all(isinstance(d, int) for d in (*v.shape, *v.stride(),
                                                                               v.storage_offset()))
    except Exception:
        return False


def _checked_target(torch, n: Any, owner: Any) -> bool:
    """Whether ``_check_recorded_results`` runs FX node ``n`` again: an ATen op, or a higher-order op (``cond``,
    ``map_impl``, ``while_loop``) whose subgraphs ``owner`` holds. Why the latter: an edited ``.pt2`` whose ``cond``
    recorded ``[1, 3]`` for branches that make ``[4, 3]`` (and its reader ``* 3`` ``[1, 3]``) was planned at 12
    bytes where eager writes 48; run again, the branches' ops make the result from the operands' records."""
    if isinstance(n.target, torch._ops.OpOverload):
        return True
    return owner is not None and isinstance(n.target, torch._ops.HigherOrderOperator) and bool(
        subgraphs(torch, owner, n))


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


def _layout_words(v: Any) -> str:
    """``float32 [4, 3] strides (3, 1)``, for ``_check_recorded_results``."""
    return f"{str(v.dtype).removeprefix('torch.')} {list(v.shape)} strides {tuple(v.stride())}"


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
        return bool(inp.is_contiguous(memory_format=fmt if fmt is not None else torch.contiguous_format))
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
        raise GraphError(f"{where}: torch.vmap inside the program (a vmap, or associative_scan's generic mode): "
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


def _block_write(torch, owner: Any, n: Any, depth: int = 0) -> str | None:
    """The name of a node inside ``n``'s subgraphs (``get_attr`` operands of ``owner``, at any depth) that writes
    memory of the subgraph's inputs (by fake storage: a view of an input is the input), else None. Writes to
    tensors the subgraph makes itself are its own business."""
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
            for name in written_args(torch, m):
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


def _symbolic(d: Any) -> str:
    """Why a symbolic size cannot be planned, in words that fit where it came from.

    Export makes two kinds of symbols: backed ones (``s0``) for dimensions declared dynamic, which concrete
    example inputs remove; and unbacked ones (``u0``) for sizes computed from a tensor's *values*
    (``nonzero``, ``.tolist()`` split sizes, ``.item()``), which no example input removes: telling the user
    to export with concrete inputs (they did) was wrong for those."""
    try:
        data_dependent = any(str(sym).startswith("u") for sym in d.node.expr.free_symbols)
    except AttributeError:
        data_dependent = False
    if data_dependent:
        return (f"data-dependent size {d} (computed from a tensor's values, e.g. nonzero, .tolist() or .item(); "
                "a plan needs every size before the model runs)")
    return (f"symbolic size {d} (dynamic shapes are not supported: export with concrete example inputs and no "
            "dynamic_shapes, or give an ExportedProgram with dynamic shapes example inputs, whose sizes it then takes)")


def _extent(val, where: str) -> tuple[int, int, int]:
    """(storage bytes, byte offset in the storage, bytes spanned) of a fake tensor."""
    shape = tuple(val.shape)
    for d in list(shape) + [val.storage_offset()]:
        if not isinstance(d, int):
            raise GraphError(f"{where}: {_symbolic(d)}")
    item = val.element_size()
    off = val.storage_offset() * item
    numel = math.prod(shape) if shape else 1
    span = 0 if numel == 0 else (sum((s - 1) * st for s, st in zip(shape, val.stride())) + 1) * item
    try:
        storage = int(val.untyped_storage().nbytes())
    except Exception:
        storage = off + span
    return storage, off, span
