"""The entry points: ``from_torch`` (a module or an ``ExportedProgram`` into a graph), ``trace_torch``
(the program the runtimes execute) and the export itself.

Why here and last: exporting calls into every step before it (dims, checks, translation), and the runtimes need the
same traced program the plan was made from.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

from ..._forklocks import fork_safe
from ...errors import GraphError, OptionError, plain_bool, positional_checked
from ...errors import short_repr as _short
from ...graph import DEFAULT_ALIGNMENT, Graph, check_alignment
from .. import Progress, check_progress
from ..quiet import logger_off
from ..rng import rng_kept
from .argument_layouts import argument_layout_refusal, argument_layouts_watched, overlapping_arguments
from .checks import _block_write, _concrete, _is_vmap_entry, check_custom_fakes, subgraphs
from .common import (
    EXPORT_LOCK,
    _export_failure,
    _need_torch,
    _op_name,
    node_source,
    packed_weights_refusal,
    transformers_cache_registered,
)
from .conversions import unchanged_conversions_kept
from .data_reads import data_read_advice
from .dims import _check_example_types, _check_ranges, _guard_context, _has_dynamic_inputs, _in_spec_order
from .layouts import _check_weights_held, _saved_examples
from .load import _cache_dir_made
from .lstm_meta import decomposing, fix_lstm_hidden_metas
from .state_kept import state_kept
from .translate import _METADATA_READS, _from_exported, _partial_graph_dropped, _traced
from .unique_meta import check_unique_index_metas
from .untrusted import _check_guards_code


# (an option by position, ``from_torch(m, (x,), None)``, or the module left out was Python's bare TypeError where
# README promises an OptionError: ``memplan.from_torch`` names it, this module's own entry points did not)
@positional_checked()
def from_torch(module: Any, example_inputs: Any = (), *, kwargs: dict | None = None, name: str | None = None,
               alignment: int = DEFAULT_ALIGNMENT, strict: bool = False, decompose: bool = False,
               progress: Progress | None = None, check_custom_ops: bool = True) -> Graph:
    """Export ``module(*example_inputs, **kwargs)`` and build a validated Graph of its forward pass.

    ``module`` may also be an ``ExportedProgram``: ``example_inputs`` (and ``kwargs``) then only give the sizes of
    its dynamic dimensions (``torch.export.Dim``); where it has none, any given must be its inputs as exported (a
    GraphError names one that is not). ``decompose``
    lowers the program to core ATen first (``run_decompositions``): composite ops such as ``linear`` or
    ``matmul`` become the kernels and copies they run, so their hidden temporaries get planned too.
    ``check_custom_ops``: where the program calls a custom op (``torch.library``), at the top level or in a ``cond`` /
    ``map`` / ``while_loop`` body, and its example inputs and weights are CPU tensors, the program runs once on them and
    a custom op whose result is not what its fake kernel said is refused (``check_custom_fakes``: a plan sized from an
    under-reporting fake gives the op fewer bytes than it writes); False runs nothing (a custom op with effects beyond
    its result, a log). A given ``ExportedProgram`` runs on the example inputs given, else on those it was exported
    with (``ep.example_inputs``, which ``torch.export.save`` keeps); one with neither, or with dynamic dimensions and
    none given, is not checked.
    """
    check_progress(progress, "from_torch")
    # (``strict`` and ``decompose`` too, round 73: ``decompose="no"`` is truthy, and decomposed the program silently;
    # ``strict="no"`` ran Dynamo's strict export)
    # (a numpy bool as the bool it equals, as every entry point takes a flag: ``errors.plain_bool``)
    check_custom_ops, strict, decompose = plain_bool(check_custom_ops), plain_bool(strict), plain_bool(decompose)
    for option, value in (("check_custom_ops", check_custom_ops), ("strict", strict), ("decompose", decompose)):
        if not isinstance(value, bool):
            raise OptionError(f"from_torch: {option} must be True or False, not {_short(value)}")
    check_alignment(alignment)  # before the export, not after
    _check_kwargs(kwargs, "from_torch")
    torch = _need_torch()
    given = isinstance(module, torch.export.ExportedProgram)
    after: list = []   # (a given program's custom-op check: once its records are)
    with state_kept(torch, module):   # (non-strict export writes real tensors the module holds: undone)
        ep, default = _export(torch, module, example_inputs, kwargs, strict, decompose, check_custom_ops, after)
    # (exported in this process: a module, or a dynamic program specialized to example inputs)
    here = not given or ((example_inputs != () or bool(kwargs)) and _has_dynamic_inputs(torch, module))
    if not here and _unpinned_sizes(torch, ep):
        # (a given program of data-dependent sizes: exported again here, so their bounds are those torch derives from
        # the program's asserts in this process, not its file's ranges, which the plan would trust)
        ep = _exported_again(torch, module)
        if decompose:
            ep = _decomposed(torch, ep, decomposing(torch, ep))
        given, here = False, True
    if not decompose and any(_loose_offsets(torch, n) for n in ep.graph.nodes):
        # (a ``while_loop`` traced under autograd returns its last carry at a symbolic storage offset, ``12*u0 - 12``,
        # in a storage holding every iteration's: no plan places it, and ``torch._check`` cannot pin it. The inference
        # program traced again returns fresh results, as eager's under ``no_grad`` and as the program saved and
        # loaded imports: lowered so, as ``trace_torch`` does)
        ep = _lowered_loose(torch, ep, default)
    # (the fake runs that check a given program's records, and the layout probes, fail on fake tensors by design where
    # a record is wrong: torch's fake-tensor mode logged each failure's whole traceback on stderr, 30 lines above the
    # one the CLI prints for a weight or record it refuses)
    with logger_off("torch._subclasses.fake_tensor"):
        graph = _from_exported(torch, ep, name if name is not None else default, alignment, progress,
                               check_records=given, bounded=here)
    for check in after if given else ():   # (exported again here: its records are torch's, not checked, so neither)
        check()
    return graph


def _unpinned_sizes(torch, ep: Any) -> bool:
    """Whether a result the program records has a data-dependent size, stride or storage offset (an unbacked
    ``u0``) no check pins to a number: one ``_from_exported`` plans at its bound, if the program asserts one."""
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        for v in torch.utils._pytree.tree_leaves(n.meta.get("val")):
            if isinstance(v, torch.Tensor) and any(
                    not isinstance(_concrete(d), int) and any(str(s).startswith("u") for s in d.node.expr.free_symbols)
                    for d in (*v.shape, *v.stride(), v.storage_offset()) if hasattr(d, "node")):
                return True
    return False


def export_of_module(torch, ep: Any, args: tuple, kwargs: dict | None, strict: bool = False) -> Any:
    """``torch.export.export(ep.module(), args, kwargs)``: ``ep`` exported again from its module, on other inputs.
    Where the module's guard function fails as torch generated it (``NameError: name 'L' is not defined``), exported
    from the module without it (``check_guards=False``): torch's check of the inputs against the program's symbols,
    their ranges and equalities, still runs (a forward pre-hook), and ``memplan`` checks ranges itself first.

    Why: torch writes a guard on an input inside a keyword argument's pytree (a decode step's ``past_key_values``
    ``DynamicCache`` with a dynamic length: "L['kwargs']['past_key_values']['value_cache'][0].size()[2] == ...") into
    a function that has no ``L``: every specialization of such a program failed, ``memplan import decode.pt2 --dim
    ...`` with "specializing the exported program's dynamic shapes to the example inputs failed: name 'L' is not
    defined", as ``ep.module()(...)`` itself does in torch (round 54)."""
    try:
        return torch.export.export(_views_detached(torch, ep.module()), args, kwargs=kwargs, strict=strict)
    except NameError as exc:
        if "'L'" not in str(exc):
            raise
    return torch.export.export(_views_detached(torch, ep.module(check_guards=False)), args, kwargs=kwargs,
                               strict=strict)


def _views_detached(torch, module: Any) -> Any:
    """``module`` (an ``ep.module()``) with each plain tensor attribute (a lifted constant) that is an autograd view
    replaced by ``detach()`` of it: the same storage, offset, shape and strides, no longer a view.

    Why: ``torch.export.load`` gives a program's tensor constants as views of the storage it read them into, and a
    ``torch.tensor([0, 0])`` literal is traced as ``lift_fresh_copy`` then ``detach_``, which the export of such a
    module refuses ("Can't detach views in-place"): every dynamic ``.pt2`` with a tensor literal (an index list, a
    mask) failed to specialize (``memplan import --dim``, ``from_torch(loaded, inputs)``, round 75), where the
    program in memory, whose constants are no views, did. Registered parameters and buffers are left as they are."""
    for sub in module.modules():
        for name, value in list(vars(sub).items()):
            if type(value) is torch.Tensor and value._base is not None:
                setattr(sub, name, value.detach())
    return module


def _exported_again(torch, ep: Any) -> Any:
    """Fixed-size program ``ep`` exported again from its module (``ep.module()``), on its saved example inputs (or
    uninitialized tensors of its recorded input sizes where it has none): the same ATen ops, weights and asserts,
    whose records and data-dependent ranges torch makes in this process.

    Why: a data-dependent size (``nonzero``'s ``u0``) is planned at the bound its shape environment holds for it
    (``checks._upper_bound``), which torch derives from the program's runtime asserts (``torch._check(n <= 5)``) and
    the op's own fake kernel (``nonzero``: its input's element count); a loaded ``.pt2``'s ranges are its file's word
    (``range_constraints``: an edited ``[0, 1]`` would plan one row where the op writes five). Exported again, the
    ranges are torch's from the program's own asserts, as for a module exported here. Its guards and weight records
    are checked first, as before a dynamic program is specialized."""
    from torch.export.graph_signature import InputKind
    from torch.utils import _pytree as pytree

    _check_weights_held(torch, ep)
    _check_guards_code(torch, ep, None, GraphError)   # (before ep.module(), which runs them)
    examples = _saved_examples(ep)
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    try:
        leaves = []
        for spec in (s for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT):
            name = getattr(spec.arg, "name", None)
            val = nodes[name].meta.get("val") if name in nodes else None
            if type(spec.arg).__name__ == "ConstantArgument" or name not in nodes:
                leaves.append(getattr(spec.arg, "value", None))
            elif isinstance(examples.get(name), torch.Tensor):
                leaves.append(examples[name])
            elif isinstance(val, torch.Tensor):   # (uninitialized: the export reads no value, nor writes one)
                leaves.append(torch.empty_strided(tuple(val.shape), tuple(val.stride()), dtype=val.dtype,
                                                  device=val.device))
            else:
                leaves.append(val)
        args, kwargs = pytree.tree_unflatten(leaves, ep.call_spec.in_spec)
        with _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"):
            return _traced(torch, lambda: export_of_module(torch, ep, tuple(args), dict(kwargs)))
    except Exception as exc:
        raise GraphError(f"exporting the program again, to bound its data-dependent sizes by its own asserts, "
                         f"failed: {_export_failure(exc)}") from None


def _check_kwargs(kwargs: Any, who: str) -> None:
    """``kwargs`` (forward's keyword arguments) is None or a dict of them by name. Why: ``kwargs=5`` or a list of
    pairs was refused as "torch.export failed for Linear: inspect.Signature.bind() argument after ** must be a
    mapping, not _IntWrapper", blaming the export (and naming a torch internal) for an option's wrong value."""
    from collections.abc import Mapping

    if kwargs is None:
        return
    if not isinstance(kwargs, Mapping):
        raise OptionError(f"{who}: kwargs must be a dict of forward's keyword arguments (name: value) or None, not "
                          f"{type(kwargs).__name__} {_short(kwargs)}")
    bad = next((k for k in kwargs if not isinstance(k, str)), None)
    if bad is not None:
        raise OptionError(f"{who}: kwargs must be keyed by forward's parameter names (str), not "
                          f"{type(bad).__name__} {_short(bad)}")


@positional_checked()
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
    _check_kwargs(kwargs, "trace_torch")
    torch = _need_torch()
    given = isinstance(module, torch.export.ExportedProgram)
    # (int_buffers=False: the runtime makes such buffers constants itself, around its whole export and its watches,
    # and guards them at every call: ``runtime.aten.program.load_program``)
    with state_kept(torch, module):
        ep, default = _export(torch, module, example_inputs, kwargs, strict, decompose, int_buffers=False)
    exported = ep
    if lower_vmap and not decompose:
        ep = lower_vmapped(torch, ep, default)
    # ("lowered": the program is no longer the export's own: its decompositions may hold a ``view`` where eager's
    # composite op, a ``reshape``, copies; the ATen executor replays no view of it on a caller's tensor)
    trace: dict = {"fake": {}, "env": {}, "values": {}, "side": {}, "input_outputs": set(),
                   "lowered": decompose or ep is not exported}
    with logger_off("torch._subclasses.fake_tensor"):   # (as from_torch)
        graph = _from_exported(torch, ep, name if name is not None else default, alignment, None, trace,
                               check_records=given)
    return ep, graph, trace


def _export_buffers_constant(torch, module: Any, example_inputs: tuple, kwargs: dict | None, failure: BaseException,
                             message: str, forks: list[str]) -> tuple[Any, Any] | None:
    """(program, ``rng_kept``'s reseeded) of ``module`` exported again with its small integer buffers as constants
    (``int_buffers``), where the first export's failure (``failure``; ``message``, its refusal) is one they may explain
    (``int_buffers.retry_buffers``, the decision ``runtime.aten`` takes too); else None (the first failure stands).
    Why: EnCodec's and Mimi's conv padding, computed from 0-dim int64 buffers, was refused as data-dependent (round
    70). A GraphError where forward writes such a buffer (``WrittenBuffer``): the retry's program would not."""
    from .int_buffers import WrittenBuffer, buffers_as_constants, retry_buffers

    found = retry_buffers(torch, module, failure)
    if not found:
        return None
    try:
        with EXPORT_LOCK, _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"), \
                unchanged_conversions_kept(torch), rng_kept(torch, watch=True, forks=forks) as reseeded, \
                buffers_as_constants(torch, found):
            ep = _traced(torch, lambda: torch.export.export(module, example_inputs, kwargs=kwargs, strict=False))
    except WrittenBuffer as written:
        raise GraphError(written.refusal(message)) from None
    except Exception:  # noqa: BLE001 - the first failure is the one to name (the buffers were not its cause)
        return None
    return ep, reseeded


def _export(torch, module: Any, example_inputs: Any, kwargs: dict | None, strict: bool, decompose: bool,
            check_custom_ops: bool = False, after: list | None = None, int_buffers: bool = True):
    """``(ExportedProgram, default graph name)``; export failures are GraphErrors naming the module.
    ``check_custom_ops``: ``from_torch``'s. Not for ``trace_torch``: the executor builds without running a custom op
    (it may have effects) and checks each of its results against the fake at every call. ``after``: where the check of
    a given fixed program is appended, for the caller to run once the program's records are checked (an edited custom-op
    record is the file's fault, not its fake kernel's: the record check names it so, and runs first).
    ``int_buffers``: where the export failed on a data-dependent expression, export once more with the tree's small
    integer buffers as constants of their values (``int_buffers``); False for ``trace_torch`` (see there)."""
    after = [] if after is None else after
    relaid: list[str] = []   # (filled by ``argument_layouts_watched`` as the export's call returns)
    _cache_dir_made("export")
    transformers_cache_registered(torch)   # (a decoder's KV cache in or out: its tensors, not "not a known type")
    if isinstance(module, torch.export.ExportedProgram):
        ep = module
        default = "exported"
        if (example_inputs != () or kwargs) and not _has_dynamic_inputs(torch, ep):
            # a fixed program takes no other sizes: examples that are not its inputs were ignored, and a caller
            # giving a batch of 8 to a program exported at 4 had the plan for 4, silently
            if not isinstance(example_inputs, tuple):
                example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
            _check_example_types(torch, ep, example_inputs, _in_spec_order(ep, kwargs))
            if check_custom_ops:   # (a given program's custom ops: its kernels' word on the inputs given with it)
                given_ep, given_args = ep, example_inputs
                after.append(lambda: check_custom_fakes(torch, given_ep, given_args, kwargs))
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
            _check_guards_code(torch, ep, None, GraphError)   # (before ep.module(), which runs them)
            try:
                with _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"):
                    ep = _traced(torch, lambda: export_of_module(torch, module, example_inputs, kwargs, strict))
            except Exception as exc:
                raise GraphError(f"specializing the exported program's dynamic shapes to the example inputs "
                                 f"failed: {_export_failure(exc)}{_guard_context(exc, given)}") from None
            if check_custom_ops:
                check_custom_fakes(torch, ep, example_inputs, kwargs)
        elif check_custom_ops and isinstance(getattr(ep, "example_inputs", None), tuple) and \
                len(ep.example_inputs) == 2 and not _has_dynamic_inputs(torch, ep):
            # (none given: the examples it was exported with, which torch.export keeps and saves with it)
            args, saved = ep.example_inputs
            after.append(lambda: check_custom_fakes(torch, module, tuple(args), dict(saved or {})))
    else:
        if not isinstance(example_inputs, tuple):
            example_inputs = tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,)
        forks: list[str] = []
        try:
            # (a shape error while tracing: the fake-tensor mode logs the kernel's whole traceback, 30+
            # lines, at error level before export raises what our GraphError says in one line)
            with EXPORT_LOCK, _partial_graph_dropped(torch), logger_off("torch._subclasses.fake_tensor"), \
                    unchanged_conversions_kept(torch), rng_kept(torch, watch=not strict, forks=forks) as reseeded, \
                    (contextlib.nullcontext() if strict else argument_layouts_watched(torch, module, relaid)):
                ep = _traced(torch, lambda: torch.export.export(module, example_inputs, kwargs=kwargs,
                                                                strict=strict))
        except Exception as exc:  # export errors are many and deep; name the module and the first line
            if relaid:   # (torch's own error: "list index out of range")
                raise GraphError(f"torch.export failed for {type(module).__name__}: "
                                 f"{argument_layout_refusal(relaid)}") from None
            first = _export_failure(exc)
            said = data_read_advice(module, first) or packed_weights_refusal(torch, module, first) or first
            refusal = f"torch.export failed for {type(module).__name__}: {said}"
            again = None if strict or not int_buffers else _export_buffers_constant(
                torch, module, example_inputs, kwargs, exc, refusal, forks)
            if again is None:
                raise GraphError(refusal) from None
            ep, reseeded = again
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
        # (a custom op's fake kernel is the user's word for its result's size: run against its kernel where it can be)
        if check_custom_ops:
            check_custom_fakes(torch, ep, example_inputs, kwargs)
    fix_lstm_hidden_metas(torch, ep)   # (torch 2.11's fake lstm recorded h_n and c_n of another shape)
    check_unique_index_metas(torch, ep)   # (torch 2.11's fake unique recorded counts and inverse as floats)
    if decompose:
        try:
            ep = _decomposed(torch, ep, decomposing(torch, ep))
        except GraphError:
            raise
        except Exception as exc:
            first = argument_layout_refusal(relaid) or _export_failure(exc) + _decomposition_node(ep, exc)
            shared = "" if relaid else overlapping_arguments(torch, module, example_inputs, kwargs)
            if shared:   # (torch's own error: "Expected !size_bytes_is_heap_allocated_ to be true")
                first = (f"the example arguments {shared} share memory, which torch's decomposition cannot take where "
                         f"the program writes one of them in place: pass tensors of their own (clone one) (torch: "
                         f"{first.split('  (Could this error message')[0]})")
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
        tied = _tied_weights(ep) if what.startswith("torch.no_grad()") else []
        if tied:   # (torch's own assertion names neither: "expected compiled_fn to be GraphModule, got function")
            raise GraphError(f"lowering {default}'s {what}{_block_source(torch, ep)} to ATen ops failed inside torch "
                             f"({_export_failure(exc)}): the module holds one tensor under several names "
                             f"({' = '.join(repr(n) for n in tied)}), which torch's lowering of such a block cannot "
                             "take: give each name its own tensor (untie them), or write the tensor outside "
                             "forward") from None
        raise GraphError(f"lowering {default}'s {what} to ATen ops failed: {_export_failure(exc)}") from None


def _tied_weights(ep: Any) -> list[str]:
    """The names of the first parameter or buffer ``ep`` holds under several names (tied weights: an embedding and
    its output head, ``b.weight = a.weight``), else []. Why: torch's lowering of a ``no_grad`` block that writes in
    place (``run_decompositions``) fails on them with an assertion of its own that names neither (round 61)."""
    state = getattr(ep, "state_dict", None) or {}
    sig = ep.graph_signature
    names: dict[int, list[str]] = {}
    for name in (*getattr(sig, "parameters", ()), *getattr(sig, "buffers", ())):
        if name in state:
            names.setdefault(id(state[name]), []).append(str(name))
    return next((group for group in names.values() if len(group) > 1), [])


def _block_source(torch, ep: Any) -> str:
    """`` (at FILE:LINE ...)`` of the first node with a model line inside ``ep``'s higher-order ops (a ``no_grad``
    block's write), else ""."""
    for n in ep.graph.nodes:
        if n.op != "call_function":
            continue
        for sub in subgraphs(torch, ep.graph_module, n):
            where = next((w for w in map(node_source, sub.graph.nodes) if w), "")
            if where:
                return where
    return ""


def _lowered_loose(torch, ep: Any, default: str) -> Any:
    """``ep`` traced again for inference (``run_decompositions({})``, which lowers nothing else): its higher-order ops'
    results at symbolic storage offsets (``_loose_offsets``) become fresh ones at offset 0."""
    try:
        return _decomposed(torch, ep, lambda: ep.run_decompositions({}))
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(f"lowering {default}'s higher-order op traced under autograd to ATen ops failed: "
                         f"{_export_failure(exc)}") from None


def _decomposition_node(ep: Any, exc: BaseException) -> str:
    """Where in ``ep`` a failed decomposition was (torch's "While executing %view_6"): `` (node 'view_6'
    (aten.view.default) at FILE:LINE ...; the program as exported imports: decompose=False)``, else "". Why: GPT-2's
    decomposition failed in torch's fake ``view`` ("Cannot view a tensor with shape torch.Size([2, 7, 64]) and strides
    (64, 128, 1) as a tensor with shape (14, 64)!", a batch of 2), naming no node, no line and no way out, where the
    program as exported imports (round 73)."""
    import re

    found = re.search(r"While executing %(\w+)", str(exc))
    node = next((n for n in ep.graph.nodes if n.name == found[1]), None) if found else None
    if node is None:
        return ""
    op = _op_name(node.target) if node.op == "call_function" else node.op
    return (f" (node {node.name!r} ({op}){node_source(node)}: torch's decomposition failed there; the program as "
            "exported imports: decompose=False)")


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
_EFFECTS_LISTED: tuple[threading.Lock, Counter] = (fork_safe(threading.Lock()), Counter())


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
