"""An exported program, its memplan graph, and the facts that tie the two together.

The executor must run the FX graph's ATen ops on the graph tensors that memplan planned. Those ids are
the importer's (``memplan.importers.torch.trace_torch``): FX node names, getitem names, ``.writes.``
views; in-place ops rebind an FX name to a new tensor. This module holds that correspondence, once, as
plain data: the fake tensor (dtype, shape, strides, storage offset) of every graph tensor, the tensor
each FX argument names at each node, the user inputs and outputs in call order, and the module's own
weights, buffers and constants (never copied: the program reads and writes them where they are).
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from memplan.errors import GraphError
from memplan.graph import Graph
from memplan.importers.torch import subgraphs

from . import fastpath
from .errors import AtenExecutorError, add_source


@dataclass(frozen=True)
class TensorSpec:
    """A graph tensor's layout, read off its fake tensor: ``byte_offset`` is its storage offset in
    bytes (from the start of its root's storage)."""

    dtype: Any
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    byte_offset: int

    @property
    def itemsize(self) -> int:
        return int(self.dtype.itemsize)


@dataclass(frozen=True)
class Program:
    """Everything the executor needs from export and import; built by ``load_program``."""

    exported: Any                        # torch.export.ExportedProgram
    graph: Graph
    specs: Mapping[str, TensorSpec]      # every graph tensor
    env: Mapping[str, Mapping[str, Any]]  # graph node -> FX argument name -> tensor id (or list, or None)
    values: Mapping[str, Any]            # FX name -> final tensor id (or list)
    weights: Mapping[str, Any]           # weight root tensor id -> the module's own torch.Tensor
    user_inputs: tuple[tuple[int, str], ...]  # (position among the flattened call leaves, graph input id)
    #: per user output: ("arena", tid) | ("weight", tid) | ("const", value) | ("input", k): a user input
    #: returned as it is, ``user_inputs[k]`` (the caller's tensor: the plan may reuse its slot once read)
    user_outputs: tuple[Any, ...]
    in_spec: Any                         # pytree spec of (args, kwargs) the program was exported with
    #: graph node -> role -> tensor id of the side results its kernel writes and nobody reads (the
    #: importer's ``trace["side"]``: max-pool indices, batch-norm saved statistics), planned in the arena
    side: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: (position among the flattened call leaves, name, value) of each non-tensor user input: export
    #: specialized the program to that value, so a call must pass the same
    user_consts: tuple[tuple[int, str, Any], ...] = ()
    #: a functionalized program's state updates (``run_decompositions()`` turns ``buf.add_(x)`` into an
    #: output ``BUFFER_MUTATION``, a parameter's ``PARAMETER_MUTATION``): ("buffer", its name, the module's
    #: tensor, source) or ("input", its graph
    #: id, user input index, source), ``source`` as in ``user_outputs``; the executor copies each into place
    #: after every call
    mutations: tuple[tuple[str, str, Any, Any], ...] = ()
    #: (k, j) pairs of ``user_inputs`` indices whose example tensors were one tensor object: export merges a
    #: tensor passed twice into one input (the program reads only one of the two placeholders), so a call must
    #: pass the two alike (``_merged_inputs``)
    merged: tuple[tuple[int, int], ...] = ()
    #: (``user_inputs`` index, weight id, the module's tensor) where the example input was a parameter, buffer or
    #: constant of the module itself: export merges the two as it merges a tensor passed twice (the program
    #: reads the input for both), so a call must pass that tensor there
    merged_weights: tuple[tuple[int, str, Any], ...] = ()
    #: where ``forward`` read ``torch.get_default_dtype()`` in Python while it was exported ("file.py:123"): what it
    #: made of the value is baked into the program (``emb.to(torch.get_default_dtype())``), which no node shows
    default_dtype_reads: tuple[str, ...] = ()
    #: each read of the caller's grad, inference or autocast mode by ``forward`` while it was exported (getter, its
    #: arguments, the value, "file.py:123": ``mode_reads.watch_mode_reads``): the branch it took is fixed in the program
    mode_reads: tuple[tuple[str, tuple, Any, str], ...] = ()
    #: (id of the module, attribute) of each module attribute ``forward`` set while it was exported (``self.mult = 2``):
    #: every eager call sets it again, so the guard does not take it for a user's change of a setting
    forward_writes: frozenset[tuple[int, str]] = frozenset()
    #: (id of the object, attribute) of each attribute of a settings object the module holds (``guard.Settings``)
    #: that the export read, and the ids of the objects so watched: the guard watches only the values read of those
    object_reads: frozenset[tuple[int, str]] = frozenset()
    read_watched: frozenset[int] = frozenset()
    #: of the attributes ``forward_writes`` names on the module's own tree: (the module, attribute, its value before
    #: the export, the last value ``forward`` set), as ``module_writes.ModuleWrites`` records them (the export puts the old
    #: values back)
    forward_values: tuple[tuple[Any, str, Any, Any], ...] = ()
    #: (name, contents before, contents after, the container) of each list or dict attribute of the module's tree
    #: that the export's ``forward`` changed in place (``module_containers.undo_container_changes``, which put them back)
    container_changes: tuple[tuple[str, Any, Any, Any], ...] = ()
    #: (module, attribute, name) of each public attribute of the module's tree that ``forward`` set to a tensor (or a
    #: list, tuple or dict of them: ``tensor_attrs.tensor_value``) while it was exported (``self.last = y``): the program
    #: returns ``(forward's output, (their values...))``, the executor hands forward's output back and keeps the
    #: values in ``Executor.attribute_values`` for the compiled call to set (``call_state.watch_call_state``)
    attr_outputs: tuple[tuple[Any, str, str], ...] = ()
    #: (module, attribute, name, value before, value after) of each attribute of the module's tree (private ones too,
    #: torch's own fields aside) that the export's call changed (``call_state.CallState``; ``MISSING`` where it had none before or after): writes that
    #: bypass ``nn.Module.__setattr__`` too (``object.__setattr__``, ``__dict__``, ``del``)
    call_changes: tuple[tuple[Any, str, str, Any, Any], ...] = ()
    #: (module, store, key, name, value before, value after; ``MISSING`` where none) of each entry of a module's ``_parameters``, ``_buffers`` or ``_modules`` that the export's call added, deleted or
    #: replaced (``del self.sub``, ``self.register_buffer("b", ...)``: ``call_state.CallState.registry``; put back after
    #: the export, which left a ``FakeTensor`` buffer registered or a deleted submodule gone)
    registry_changes: tuple[tuple[Any, str, str, str, Any, Any], ...] = ()
    #: the host random generators ``forward`` drew from while it was exported ("random", "numpy.random"): the
    #: number drawn is baked into the program (``host_random.host_random_states``; their states put back after)
    host_random: tuple[str, ...] = ()
    #: ``random``'s module-level draws ``forward`` made while exported and Python never read (``host_random.HostDraws``:
    #: MusicGen's layerdrop in eval), when they are all it drew: each compiled call repeats them (``repeat_draws``)
    #: once ``sets.take_unread_draws`` has proven the program the same under other draws
    host_draws: tuple[tuple[str, tuple, dict], ...] = ()
    #: (what, value before, value after) of each process-wide torch setting ``forward`` changed and left changed
    #: while exported (``call_state.CallState.settings``; put back after the export)
    settings_left: tuple[tuple[str, Any, Any], ...] = ()
    #: whether the export ran inside ``torch.inference_mode()`` (every fake value an inference tensor then: which
    #: outputs ``forward`` made in a block of its own no fake tells; ``executor._inference_outputs``)
    inference_export: bool = False
    #: (label, value before, value after, whether a plain value changed, the place) of the Python state beside the module that
    #: the export's ``forward`` changed (``python_state.python_state``: globals, closures, class attributes), put back after
    python_changes: tuple[tuple[str, Any, Any, bool, Any], ...] = ()
    #: the forward hooks that changed a plain value of their own state and returned a value other than what they were
    #: given (``hook_state.hook_results_watched``): ``sets.check_hook_results`` exports again to tell whether the
    #: program follows that state
    hook_results: tuple[str, ...] = ()
    #: each read of a tensor's layout by ``forward`` while it was exported (method, "file.py:123":
    #: ``layout_reads.watch_layout_reads``): what it made of the export's layout is fixed in the program; and each
    #: ``contiguous()`` that returned its tensor itself (``layout_reads.LAYOUT_IDENTITIES``: a written input must keep the
    #: export's layout then)
    layout_reads: tuple[tuple[str, str], ...] = ()
    #: whether ``layout_reads`` watched ``forward``'s Python (a non-strict export of a module here; not a strict
    #: export, nor an ``ExportedProgram`` given): only then does the absence of a ``contiguous()`` that returned its
    #: tensor say that a user input the program returns as it is is ``return x`` (``Executor._direct``)
    layout_watched: bool = False
    #: each ``stride()`` / ``dim_order()`` read of a module's own parameter or buffer by ``forward`` while it was
    #: exported (method, where): the strides of its size-1 dimensions are then in the program too, so the guard
    #: compares a replacement's strides exactly (``guard.changes``); without one (and ``layout_watched``) a
    #: replacement differing only there is rebound, as ``is_contiguous()`` and the kernels ignore them (round 52)
    module_stride_reads: tuple[tuple[str, str], ...] = ()
    #: the flattened call positions of the user inputs whose memory a ``contiguous()`` of ``layout_reads`` returned
    #: itself (a write to such an input is refused where it is laid out otherwise than at export); None: not told,
    #: every input's (round 43)
    identity_inputs: frozenset[int] | None = None
    #: whether the program is a lowering of the export (``run_decompositions({})`` of a vmap...: ``trace_torch``'s
    #: ``lowered``): its views need not be eager's (``eager_views``)
    lowered: bool = False
    #: (placeholder, path, owner module, attribute, key or None, generator) of each ``torch.Generator`` of the module
    #: that the program draws from (``_module_generators``): the launches take the module's own object
    generators: tuple[tuple[str, str, Any, str, Any, Any], ...] = ()
    #: (layer, where its query, key and value come from, what an intermediate query requires grad through) of each ``nn.MultiheadAttention`` /
    #: ``nn.TransformerEncoderLayer`` that the export called as eager's fused fast path takes it (``fastpath.record``,
    #: by ``load_program``: a program reused with ``program=`` keeps them): () where not recorded (a strict export, an
    #: ``ExportedProgram``: no ``forward`` of the module ran)
    fast_calls: tuple[tuple[Any, tuple, tuple | None], ...] = ()
    #: whether ``fast_calls`` was recorded (a module's ``forward`` ran in the export): where not, ``compile`` takes every
    #: such layer of the module as one eager may run fused (``fastpath.unrecorded``)
    fast_recorded: bool = False
    #: (argument's name, path of it in the output) of each transformers ``DynamicCache`` (or ``EncoderDecoderCache``)
    #: argument that ``forward`` grows in place and returns as itself (a decode step's cache): the compiled call writes
    #: the program's cache into the caller's object and returns that object (``cache_adopt.adopt_cache``); a cache inside
    #: a container argument is named by its path (``state['cache']``: ``cache_growth.nested_growth``, round 57)
    returned_caches: tuple[tuple[str, tuple], ...] = ()
    #: (argument's name, path of it in the output) of each dict, list or tuple argument ``forward`` returns as itself
    #: (``return logits, state``), unchanged or grown only in its caches: the compiled call returns the caller's
    #: object there, as eager does (``returned_args``, round 58: a new container before); (name, path in the output,
    #: path in the argument) of a container held inside one and returned on its own (``state["inner"]``, round 59)
    returned_arguments: tuple[tuple, ...] = ()
    #: (key path in the output, ((layer index, tokens seen, window), ...)) of each ``DynamicCache`` with sliding-window
    #: layers that ``forward`` returns (a prefill's, an ``EncoderDecoderCache``'s too): the compiled call sets them on
    #: its output as the export's ``forward`` left them (``cache_windows.window_counts``; the cache's unflattening takes the
    #: count from the keys' length)
    cache_counts: tuple[tuple[tuple, tuple], ...] = ()
    #: (argument's path, ((layer index, tokens seen, tokens held), ...)) of each ``DynamicCache`` in the arguments
    #: (``past_key_values``, ``state['cache']``, ``cache.self_attention_cache``: ``cache_args.call_caches``) with sliding-
    #: window layers, as the example's counted them (``cache_windows.window_inputs``): the export's cache was set to count so,
    #: and a call's cache that counts otherwise is refused (``cache_windows.window_mismatch``)
    window_inputs: tuple[tuple[str, tuple], ...] = ()

    #: (id, "file.py:123") of each real tensor (a global, closure variable, module attribute) ``forward`` read as Python
    #: numbers while it was exported (``value_reads.watch_value_reads``: ``T.tolist()``, ``float(T)``): baked into the
    #: program, so ``byte_values`` watches each by its version, whatever its size and whether the program reads it too
    value_reads: tuple[tuple[int, str], ...] = ()
    #: (id, weak reference) of each tensor of ``value_reads`` that takes one: the tensor itself, watched by its version
    #: wherever it is held (``guard.record``: a global a lambda hook reads, one deep in a settings object; round 67)
    value_objects: tuple[tuple[int, Any], ...] = field(default=(), compare=False, repr=False)
    #: (flag, "file.py:12", the installed package it is in, "" for the user's code) of each tracing flag (``torch.compiler.is_compiling()``...)
    #: ``forward`` asked and the export answered True where eager answers False (``flag_reads``, round 68): compile
    #: compares the compiled program with eager on the example inputs
    flag_reads: tuple[tuple[str, str, str], ...] = ()
    #: (dotted name, owner's ``_buffers``, attribute, tensor) of each small integer buffer exported as a constant of
    #: its value (``_buffers_watched``): the guard refuses one replaced after compile (``m.stride = torch.tensor(2)``),
    #: which no version counter of the old tensor shows
    constant_buffers: tuple[tuple[str, dict, str, Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def generator_args(self) -> dict[str, Any]:
        """{placeholder name: the module's generator} (``lower._bind``)."""
        return {g[0]: g[5] for g in self.generators}


def load_program(module: Any, example_inputs: tuple, kwargs: dict | None = None, *, strict: bool = False,
                 name: str | None = None, exported: Any = None, container_outputs: bool = False,
                 plain_draws: bool = False) -> Program:
    """Export ``module`` (or take an ``ExportedProgram``; or ``exported``, already exported from
    ``module``), import it, and collect the program facts. ``container_outputs``: the tensors ``forward`` puts into
    its lists and dicts in place are returned too (``attr_outputs``: for ``sets.check_container_caches``' proof).
    ``plain_draws``: ``random``'s draws hand ``forward`` plain floats, not their read-marking stand-ins (for
    ``sets.take_unread_draws``' second export).

    One at a time in the process (the importer's ``EXPORT_LOCK``, held from the snapshots before the export to the
    state put back after it). Why: what an export is judged by is process-wide state compared before and after it
    (torch's backend flags and settings, the random states, the globals ``forward`` names), and torch's export itself
    switches cuDNN, NNPACK and oneDNN off around its trace: a compile in another thread whose export ended meanwhile
    was refused for a ``forward`` that "changes cuDNN ... and leaves it so", and two exports at once failed inside torch
    (round 49)."""
    from memplan.importers.torch import EXPORT_LOCK

    traced: list = []   # (the ExportedProgram, once traced: a refusal of one of its nodes names its source line)
    with EXPORT_LOCK:
        try:
            try:
                return _load_program(module, example_inputs, kwargs, strict=strict, name=name, exported=exported,
                                     container_outputs=container_outputs, plain_draws=plain_draws, traced=traced)
            except GraphError as exc:
                found = [] if strict or exported is not None else _constant_buffers(module, exc)
                if not found:
                    raise
                import torch

                from memplan.importers.torch.int_buffers import WrittenBuffer, buffers_as_constants

                traced.clear()
                try:
                    with buffers_as_constants(torch, found):
                        program = _load_program(module, example_inputs, kwargs, strict=strict, name=name,
                                                exported=None, container_outputs=container_outputs,
                                                plain_draws=plain_draws, traced=traced)
                except WrittenBuffer as written:
                    raise GraphError(written.refusal(str(exc))) from None
                return _buffers_watched(program, found)
        except AtenExecutorError as exc:
            add_source(exc, traced[0] if traced else None)
            raise


def _buffers_watched(program: Program, found: list) -> Program:
    """``program`` with each buffer of ``found`` (exported as a constant of its value) among the tensors ``forward``
    read as numbers (``Program.value_reads`` / ``value_objects``): the guard watches each by its version counter
    (``guard.read_tensors``), so a value changed after compile (``m.stride.fill_(2)``) exports again and is refused,
    naming it, where the program would silently run the old value."""
    import weakref

    reads = tuple((id(owner._buffers[name]), f"{type(owner).__name__}.{name} (a buffer exported as a constant)")
                  for owner, name, _path in found)
    objects = tuple((id(owner._buffers[name]), weakref.ref(owner._buffers[name])) for owner, name, _path in found)
    held = tuple((path, owner._buffers, name, owner._buffers[name]) for owner, name, path in found)
    return replace(program, value_reads=program.value_reads + reads, value_objects=program.value_objects + objects,
                   constant_buffers=program.constant_buffers + held)


def _constant_buffers(module: Any, failure: BaseException) -> list:
    """The small integer buffers of ``module``'s tree to export again as constants of their values after its export
    failed with ``failure`` (``int_buffers.retry_buffers``: the decision ``from_torch`` takes too), else [].
    Why: EnCodec's and Mimi's conv padding comes from 0-dim int64 buffers, which torch.export traces as unknown values
    (round 70); exported as constants of their values (``int_buffers``), then watched at each call
    (``_buffers_watched``). Put back as buffers after the export."""
    import torch

    from memplan.importers.torch.int_buffers import retry_buffers

    return retry_buffers(torch, module, failure)


def _load_program(module: Any, example_inputs: tuple, kwargs: dict | None, *, strict: bool, name: str | None,
                  exported: Any, container_outputs: bool, plain_draws: bool, traced: list) -> Program:
    """``load_program`` under the export lock; appends the ``ExportedProgram`` to ``traced`` once traced."""
    import torch
    from torch.export.graph_signature import ConstantArgument, InputKind, OutputKind

    from memplan.importers.torch import trace_torch

    source = exported if exported is not None else module
    from .cache_args import check_cache_layers, check_unwatched_caches, dense_cache_examples
    from .cache_windows import unwatched_window_refusal, window_inputs
    from .call_state import watch_call_state
    from .default_dtype import watch_default_dtype_reads
    from .disable_names import held_swapped
    from .held_iterators import advanced_iterators, held_iterators
    from .held_params import held_parameters, parameter_behind
    from .hook_state import hook_containers, hook_results_watched, hooks_tracked
    from .host_random import (
        HostDraws,
        draws_account_for,
        host_random_states,
        kept_draws,
        restore_host_random,
        watch_host_draws,
    )
    from .layout_reads import watch_layout_reads
    from .lazy_defaults import dynamo_handlers_built, forget_dynamo_handlers, settle_lazy_defaults
    from .lru_caches import cache_refusal, clear_filled, lru_caches
    from .mode_reads import watch_mode_reads
    from .module_containers import container_snapshots, cyclic_attribute, undo_container_changes
    from .module_writes import ModuleWrites, watch_module_writes
    from .object_reads import watch_object_reads
    from .process_settings import process_settings, restore_process_settings
    from .python_state import PythonPlace, python_state, undo_python_changes
    from .registries import registry_snapshots, restore_registries
    from .sdpa_branch import eager_sdpa_branch
    from .settings import settings_objects
    from .tensor_attrs import restore_tensor_attributes, tensor_attribute_values
    from .value_reads import watch_value_reads

    # (a strict export traces through Dynamo, which would trace the patched ``__setattr__`` too: not watched)
    writes_watch = contextlib.nullcontext(ModuleWrites()) if strict else watch_module_writes(torch)
    reads_watch = (contextlib.nullcontext((set(), set())) if strict or exported is not None
                   or not isinstance(module, torch.nn.Module)
                   else watch_object_reads(settings_objects(torch, module)))
    # (strict: Dynamo follows the modes itself, and would trace the patched getters' frame inspection: not watched)
    modes_watch = contextlib.nullcontext([]) if strict else watch_mode_reads(torch)
    layout_watch = (contextlib.nullcontext([]) if strict
                    else watch_layout_reads(torch, module if exported is None else None))
    cyclic = cyclic_attribute(torch, module) if exported is None else None
    if cyclic is not None:   # (torch's export recursed without end on it, naming nothing: round 62)
        raise AtenExecutorError(f"{cyclic} holds itself (a list, dict or tuple inside it contains it): torch.export "
                                "walks every attribute of the module's tree and recurses without end on such a cycle; "
                                "break the cycle or keep the object outside the module")
    snapshots = container_snapshots(torch, module) if exported is None else []
    iterators = held_iterators(torch, module) if exported is None else []
    registries = registry_snapshots(torch, module) if exported is None else []
    places = python_state(torch, module) if exported is None and not strict else []
    hooked = [p for p in places if p.hooked]   # (a counting hook's object the module holds too: round 61b)
    # (and a module's container a hook keeps its count in, ``self._counts = [[0]]``: round 62)
    hook_held = hook_containers(torch, module) if snapshots else set()
    held_snaps = [snap for snap in snapshots if id(snap[3]) in hook_held]
    tracked = hooked + [PythonPlace(name, functools.partial(lambda o: o, obj), lambda _v: None, obj, copy, True)
                        for name, _owner, _key, obj, copy in held_snaps]
    hooks_only: set[int] = set()
    caches = lru_caches(torch, module) if exported is None else []
    randoms = host_random_states(torch, module) if exported is None else host_random_states()
    windows: tuple = ()
    if isinstance(module, torch.nn.Module):   # (a cache the program cannot carry: named before any export)
        check_cache_layers(torch, module, example_inputs, kwargs)
        windows = window_inputs(torch, module, example_inputs, kwargs)
        example_inputs, kwargs = dense_cache_examples(torch, example_inputs, kwargs)
        if strict or exported is not None:
            check_unwatched_caches(module, example_inputs, kwargs,
                                   "a strict export" if strict else "a given ExportedProgram")
    settle_lazy_defaults(torch)   # (before the settings are read: torch's own first-use changes are no forward's)
    settings = process_settings(torch)
    inference = torch.is_inference_mode_enabled()   # (before the modes' watch: no read of ``forward``'s)
    tensors = tensor_attribute_values(torch, module) if exported is None and not strict else []
    # (strict: Dynamo would trace the instance's ``_call_impl``; an ``ExportedProgram`` has no module to watch)
    call_watched = not strict and exported is None and isinstance(module, torch.nn.Module)
    state_watch = (watch_call_state(torch, module, snapshots if container_outputs else None, windows)
                   if call_watched else contextlib.nullcontext(None))
    # (the mode watching ``forward``'s value reads on torch's stack for the module's call alone, where
    # ``state_watch`` wraps that call: not for the export's machinery and the import around it, round 66)
    values_watch = (contextlib.nullcontext({}) if strict
                    else watch_value_reads(torch, forward_only=call_watched))
    # (the tree's own references to ``DisableTorchFunction``, a closure's or a default's, point at the stand-in that
    # keeps the value-read mode on, round 67)
    disables_watch = held_swapped(torch, module) if call_watched else contextlib.nullcontext()
    # (strict: Dynamo would trace the patched functions; an ``ExportedProgram`` runs no forward)
    draws_watch = (contextlib.nullcontext(HostDraws(read=True)) if strict or exported is not None
                   or not isinstance(module, torch.nn.Module) else watch_host_draws(mark=not plain_draws))
    # the attention layers eager may run fused (``fastpath.record``): here, so that a program of ``load_program``
    # itself (the sweep's, a ``program=`` of one) is checked at its calls as compile's own (round 53: it was not)
    fused: list = []
    fast_watch = (fastpath.record(torch, fused, module) if not strict and exported is None
                  and isinstance(module, torch.nn.Module) else contextlib.nullcontext())
    writes = ModuleWrites()
    call_state = None
    draws = HostDraws(read=True)
    hook_results = (hook_results_watched(torch, module) if exported is None else contextlib.nullcontext([]))
    handlers_built = dynamo_handlers_built()   # (Dynamo's table of torch functions: not to be keyed by the watches')
    # (transformers' SDPA attention traced down eager's ``pack_gqa`` branch for a one-token query, round 76)
    sdpa_watch = eager_sdpa_branch() if call_watched else contextlib.nullcontext()
    try:
        with (watch_default_dtype_reads(torch) as reads, writes_watch as writes, modes_watch as modes,
              reads_watch as (object_reads, watched), state_watch as call_state, draws_watch as draws,
              layout_watch as layouts, fast_watch, hook_results as hook_changes,
              hooks_tracked(torch, module, tracked) as hooks_only, values_watch as value_reads,
              disables_watch, sdpa_watch):
            ep, graph, trace = trace_torch(source, example_inputs, kwargs=kwargs, strict=strict, name=name,
                                           lower_vmap=True)
            traced.append(ep)
    except Exception as exc:
        if draws.calls and draws.read:   # (torch took a drawn number's stand-in: ``x * random.random()``)
            raise AtenExecutorError("forward draws from random in Python while it runs, and the program reads the "
                                    "number: torch.export would keep the number drawn at the export as a constant, "
                                    "so every compiled call would reuse it where each eager call draws anew (draw "
                                    "with torch's random ops, torch.rand / torch.bernoulli, which the program runs "
                                    "at every call, or pass the number in as an input)") from exc
        for name, what in (call_state.resized if call_state is not None else ()):   # (torch's own error says
            # "list index out of range": round 58)
            raise AtenExecutorError(f"forward changes the shape or strides of its tensor argument {name!r} in place "
                                    f"({what}; an in-place view op: unsqueeze_, t_, resize_, as_strided_): eager "
                                    "changes the caller's tensor itself, which a compiled call cannot; return the new "
                                    "view instead (x = x.unsqueeze(0))") from exc
        raise
    finally:   # a failed export (or ^C) too: its fake tensors are not left on the user's module
        forget_dynamo_handlers(handlers_built)
        unread = (not draws.read and bool(draws.calls) and not kept_draws(draws)
                  and draws_account_for(draws.calls, randoms[0][2], randoms[0][1][0]()))
        hooks_own = {id(snap[3]) for i, snap in enumerate(held_snaps) if len(hooked) + i in hooks_only}
        changed = undo_container_changes([snap for snap in snapshots if id(snap[3]) not in hooks_own])
        python_changes = undo_python_changes([p for p in places if not p.hooked]
                                             + [p for i, p in enumerate(hooked) if i not in hooks_only])
        kept_caches = clear_filled(torch, caches, module)   # (a cached helper holding the export's fake tensors: round 61)
        restore_tensor_attributes(torch, tensors)   # (the export's call wrote the module's own constants)
        own_writes = _own_writes(torch, module, writes)
        _undo_bypassing_writes(call_state, writes)
        restore_registries(registries, call_state.registry if call_state is not None else ())
        drawn = restore_host_random(randoms)
        restore_process_settings(torch, settings)
    for f, entries in kept_caches:   # (the user's entries kept: round 61b)
        raise AtenExecutorError(cache_refusal(f, entries))
    for label in advanced_iterators(iterators):
        raise AtenExecutorError(f"forward advances the iterator {label} (next() on an iterator or generator the module "
                                "holds): torch.export ran forward once and keeps the value it took then, so every "
                                "compiled call would reuse it where each eager call takes the next one (and this "
                                "compile has consumed one): keep such a position in a buffer, or pass the value in")
    returned_caches = tuple(call_state.returned_caches) if call_state is not None else ()
    grown_in = set(call_state.grown_in) if call_state is not None else set()
    for _name, why in (call_state.cache_refusals if call_state is not None else ()):
        raise AtenExecutorError(why)   # (a cache in a container grown and not returned: named by path and layer)
    for name, what in (call_state.inputs if call_state is not None else ()):
        if name in dict(returned_caches) or name in grown_in:
            continue
        raise AtenExecutorError(f"forward changes its argument {name!r} in place: {what}. A compiled call runs the "
                                "program on the argument's tensors and never forward's Python on the caller's objects, "
                                "so they would stay as passed where eager changes them (a list appended to, a dict "
                                "key set, a KV cache object that grows): return the new values instead, or pass a "
                                "cache of fixed size (a static cache's tensors, written in place)")
    graph = _order_random_ops(torch, ep, graph)
    specs = {tid: _spec(torch, tid, val) for tid, val in trace["fake"].items()}
    sig = ep.graph_signature
    state = dict(ep.state_dict)
    consts = dict(getattr(ep, "constants", {}) or {})
    generators = _module_generators(torch, ep, consts, module)
    if isinstance(module, torch.nn.Module):  # the module's own tensors, non-persistent buffers too
        state.update(module.named_parameters(remove_duplicate=False))
        state.update(module.named_buffers(remove_duplicate=False))
    weights: dict[str, Any] = {}
    user_inputs: list[tuple[int, str]] = []
    user_consts: list[tuple[int, str, Any]] = []
    held_params = held_parameters(torch, module) if any(
        s.kind == InputKind.CONSTANT_TENSOR for s in sig.input_specs) else {}
    leaf = 0
    for s in sig.input_specs:
        arg = getattr(s.arg, "name", None)
        if s.kind == InputKind.USER_INPUT:
            if arg is not None and arg in graph.tensor_index:
                user_inputs.append((leaf, arg))
            elif isinstance(s.arg, ConstantArgument):
                user_consts.append((leaf, str(arg), s.arg.value))
            leaf += 1
            continue
        if arg is None:
            continue
        if arg not in graph.tensor_index:
            continue
        if s.kind == InputKind.TOKEN:
            # a decomposed program's effect token (``with_effects``: ``aten._print``): no state-dict entry, and the
            # caller passes none (``ep.module()`` makes it): an empty tensor, the 0-byte input the plan holds
            weights[arg] = torch.empty((0,))
            continue
        # a non-persistent buffer (a rotary embedding's ``inv_freq``) is no state-dict entry: an export keeps
        # it among its constants, so an ExportedProgram (in memory or loaded from a .pt2) has it only there
        src = state if s.kind in (InputKind.PARAMETER, InputKind.BUFFER) else consts
        if s.target not in src:
            src = next((d for d in (state, consts) if s.target in d), src)
        if s.target not in src:
            raise AtenExecutorError(f"weight {arg!r} ({s.target}) is in neither the state dict nor the "
                                    "program's constants")
        t = src[s.target]
        # the Parameter itself, not ``.data``: eager's kernels read ``requires_grad`` even under no_grad
        # (``matmul`` folds to one ``mm`` when its smaller operand requires grad); a held module's parameter too,
        # which export lifts as a detached constant (``held_params``, round 74)
        weights[arg] = parameter_behind(torch, t, held_params) if s.kind == InputKind.CONSTANT_TENSOR else t
    for n in ep.graph.nodes:  # get_attr constants (not lifted)
        if n.op == "get_attr" and n.name in graph.tensor_index and n.name not in weights:
            obj = ep.graph_module
            for part in str(n.target).split("."):
                obj = getattr(obj, part)
            weights[n.name] = obj
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    flat_out = list(out_node.args[0]) if isinstance(out_node.args[0], (list, tuple)) else [out_node.args[0]]
    user_outputs: list[Any] = []
    mutations: list[tuple[str, str, Any, Any]] = []

    def source(a: Any) -> Any:
        """Where an output's value lies: ("const", value), ("input", k), ("weight"|"arena", tensor id)."""
        if not isinstance(a, torch.fx.Node):
            return ("const", a)
        tid = trace["values"].get(a.name)
        if a.name in trace["input_outputs"]:
            return ("input", next(k for k, (_p, t) in enumerate(user_inputs) if t == tid))
        if not isinstance(tid, str):
            val = a.meta.get("val")
            if isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool)):
                # ``return x.max().item()`` / ``x.tolist()``: "not one tensor (a NoneType)" said nothing of why
                raise AtenExecutorError(f"output {a.name!r} is a {type(val).__name__.removeprefix('Sym').lower()} "
                                        f"read from a tensor's values ({a.target}) while the program runs: the "
                                        "executor returns tensors, constants and sizes fixed at export (return the "
                                        "tensor itself and call .item() on it)")
            raise AtenExecutorError(f"output {a.name!r} is not one tensor (a {type(tid).__name__})")
        ti = graph.tensor_index[tid]
        root = graph.tensors[graph.root[ti]]
        return ("weight" if root.kind == "weight" else "arena", tid)

    for s, a in zip(sig.output_specs, flat_out):
        # a parameter written in place under no_grad (``with torch.no_grad(): self.w.add_(1)``) is a state update
        # as a buffer's is: skipped as "not a user output", the parameter was never written
        if s.kind in (OutputKind.BUFFER_MUTATION, OutputKind.PARAMETER_MUTATION):
            where = s.target
            src = source(a)
            into = state.get(where) if where in state else consts.get(where)
            if not isinstance(into, torch.Tensor) or src[0] == "const":
                what = "buffer" if s.kind == OutputKind.BUFFER_MUTATION else "parameter"
                raise AtenExecutorError(f"output {getattr(s.arg, 'name', s.arg)!r} updates {what} {where!r}, "
                                        "which is in neither the state dict nor the program's constants")
            mutations.append(("buffer", where, into, src))
            continue
        if s.kind == OutputKind.USER_INPUT_MUTATION:
            k = next((k for k, (_p, t) in enumerate(user_inputs) if t == s.target), None)
            src = source(a)
            if k is None or src[0] == "const":
                raise AtenExecutorError(f"output {getattr(s.arg, 'name', s.arg)!r} updates user input "
                                        f"{s.target!r}, which is no tensor input of the program")
            mutations.append(("input", s.target, k, src))
            continue
        if s.kind != OutputKind.USER_OUTPUT:
            continue
        if not isinstance(a, torch.fx.Node):
            user_outputs.append(("const", a))
            continue
        user_outputs.append(source(a))
    if strict or exported is not None:   # (unwatched: a returned sliding-window cache's counts cannot be set)
        why = unwatched_window_refusal(torch, getattr(getattr(ep, "call_spec", None), "out_spec", None),
                                       [a for s, a in zip(sig.output_specs, flat_out) if s.kind == OutputKind.USER_OUTPUT],
                                       "a strict export" if strict else "a given ExportedProgram")
        if why is not None:
            raise AtenExecutorError(why)
    return Program(ep, graph, specs, trace["env"], trace["values"], weights, tuple(user_inputs),
                   tuple(user_outputs), getattr(ep, "call_spec", None) and ep.call_spec.in_spec,
                   dict(trace.get("side", {})), tuple(user_consts), tuple(mutations),
                   _merged_inputs(ep, user_inputs, example_inputs, kwargs),
                   _merged_weights(ep, user_inputs, example_inputs, kwargs,
                                   {k: v for d in (consts, state) for k, v in d.items() if isinstance(v, torch.Tensor)}),
                   tuple(dict.fromkeys(reads)), tuple(dict.fromkeys(modes)), frozenset(writes), frozenset(object_reads),
                   _read_field_by_field(object_reads, watched, module),
                   own_writes, changed, tuple(call_state.returned) if call_state is not None else (),
                   tuple(call_state.changes) if call_state is not None else (),
                   registry_changes=tuple(call_state.registry) if call_state is not None else (),
                   host_random=drawn, host_draws=tuple(draws.calls) if unread and drawn == ("random",) else (),
                   settings_left=tuple(call_state.settings) if call_state is not None else (),
                   inference_export=inference, python_changes=python_changes, hook_results=tuple(hook_changes),
                   layout_reads=tuple(dict.fromkeys(layouts)),
                   module_stride_reads=tuple(dict.fromkeys(getattr(layouts, "module_strides", ()))),
                   layout_watched=not strict and exported is None and isinstance(module, torch.nn.Module),
                   returned_caches=returned_caches,
                   returned_arguments=tuple(call_state.returned_arguments) if call_state is not None else (),
                   cache_counts=tuple(call_state.cache_counts) if call_state is not None else (),
                   window_inputs=windows if call_state is not None else (), fast_calls=tuple(dict.fromkeys(fused)), fast_recorded=not isinstance(fast_watch, contextlib.nullcontext),
                   identity_inputs=(None if getattr(layouts, "identity_any", True)
                                    else frozenset(getattr(layouts, "identity_inputs", ()))),
                   lowered=bool(trace.get("lowered", False)), generators=generators,
                   value_reads=tuple(value_reads.items()),
                   value_objects=tuple(getattr(value_reads, "objects", {}).items()),
                   flag_reads=tuple((f, w, pkg) for (f, w), pkg in getattr(value_reads, "flags", {}).items()))


def _held_generators(torch: Any, module: Any) -> list[tuple[str, Any, str, Any, Any]]:
    """(path, owner module, attribute, key or None, generator) of each ``torch.Generator`` ``module``'s tree holds as
    an attribute (``G.g``) or in a list, tuple or dict attribute (``G.gens[0]``)."""
    if not isinstance(module, torch.nn.Module):
        return []
    out = []
    top = type(module).__name__
    for prefix, sub in module.named_modules():
        for name, v in vars(sub).items():
            where = f"{top}.{prefix + '.' if prefix else ''}{name}"
            items = (v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, (list, tuple))
                     else [(None, v)])
            out += [(where if k is None else f"{where}[{k!r}]", sub, name, k, g) for k, g in items
                    if isinstance(g, torch.Generator)]
    return out


def _module_generators(torch: Any, ep: Any, consts: dict, module: Any) -> tuple[tuple[str, str, Any, str, Any, Any],
                                                                                ...]:
    """(placeholder, path, owner module, attribute, key, generator) of each ``torch.Generator`` the program draws from
    (``torch.rand(shape, generator=self.g)``): the module's own generator, which each compiled call draws from as each
    eager call does. Why: torch.export lifts a *copy* of the generator into the program's constants, so the program
    drew from that copy (never advancing the module's generator: other numbers than eager's from the 2nd call on);
    the executor could not run it at all ("a CustomObjArgument the executor cannot reproduce", after the arena was
    allocated). The copy is told from the module's generators by its state, which the export copied: refused, naming
    the node, where no generator the module holds has that state (a generator of a global, an ``ExportedProgram``
    given) or more than one has (two seeded alike: which one each op draws from the program does not say)."""
    from torch.export.graph_signature import InputKind

    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    held = None
    out = []
    for spec in ep.graph_signature.input_specs:
        lifted = consts.get(spec.target)
        if spec.kind != InputKind.CUSTOM_OBJ or not isinstance(lifted, torch.Generator):
            continue
        name = getattr(spec.arg, "name", None)
        node = nodes.get(name)
        user = next(iter(node.users), None) if node is not None else None
        if held is None:
            held = _held_generators(torch, module)
        state = lifted.get_state()
        same = [h for h in held if h[4].device == lifted.device and torch.equal(h[4].get_state(), state)]
        if len({id(h[4]) for h in same}) == 1:   # (one object, under one path or several: shared by submodules)
            out.append((name, *same[0]))
            continue
        why = (f"the module holds {', '.join(h[0] for h in held)}, and {' and '.join(h[0] for h in same)} are in the "
               "same state, so which one it draws from the program does not tell (seed them apart)" if same else
               f"no generator the module holds ({', '.join(h[0] for h in held) or 'none'}) is in its state (a "
               "generator passed as an argument, which export keeps as a constant; one of a global; an ExportedProgram "
               "given)")
        raise AtenExecutorError(f"forward draws from a torch.Generator object, and {why}: torch.export "
                                "keeps a copy of it in the program, where each eager call draws on from the original "
                                "(draw from the module's own generator attribute, or from torch's default "
                                "generator, or pass the random values in as an input)",
                                user.name if user is not None else None, str(user.target) if user is not None else None)
    return tuple(out)


def _undo_bypassing_writes(state: Any, writes: Any) -> None:
    """Each attribute the export's call changed without ``nn.Module.__setattr__`` (``object.__setattr__``,
    ``self.__dict__[...]``, ``del``: not in ``writes``) put back as it was: compile runs no call. (torch's export
    puts back the attributes a module had; one made so was left holding the export's fake tensor.)"""
    from .module_writes import MISSING

    for owner, key, _name, before, _after in (state.changes if state is not None else ()):
        if (id(owner), key) in writes:
            continue
        if before is MISSING:
            vars(owner).pop(key, None)
        else:
            vars(owner)[key] = before


def _own_writes(torch: Any, module: Any, writes: Any) -> tuple[tuple[Any, str, Any, Any], ...]:
    """``writes``' values (``module_writes.ModuleWrites``) of the attributes of ``module``'s own submodules (the export's
    writes to torch's tracing objects are not the module's state), after taking away each plain attribute
    ``forward`` made. Why: torch's export puts back the attributes a module had, not those ``forward`` made
    (``self.cache = y``), which it left holding the export's fake tensors (a ``FakeTensor`` on the user's module, read
    by no call of the program); compile runs no call, so the module is left as it was."""
    from .module_writes import MISSING

    if not isinstance(module, torch.nn.Module):
        return ()
    own = {id(m) for m in module.modules(remove_duplicate=False)}
    values = tuple((owner, name, before, after) for (oid, name), (owner, before, after) in writes.values.items()
                   if oid in own)
    for owner, name, before, _after in values:
        if before is MISSING:
            vars(owner).pop(name, None)
    return values


def _example_leaves(ep: Any, example_inputs: tuple, kwargs: dict | None) -> list:
    """The flattened example inputs of the export (they keep each tensor's identity, through a ``.pt2`` too);
    the given ones stand in where the program has none."""
    from torch.utils import _pytree as pytree

    ex = getattr(ep, "example_inputs", None)
    args, kw = ex if isinstance(ex, tuple) and len(ex) == 2 else (example_inputs, kwargs)
    return pytree.tree_leaves((tuple(args), dict(kw or {})))


def _merged_weights(ep: Any, user_inputs: list[tuple[int, str]], example_inputs: tuple, kwargs: dict | None,
                    weights: Mapping[str, Any]) -> tuple[tuple[int, str, Any], ...]:
    """(user input index, its name in the module, the tensor) where the example input was the module's own tensor.

    Why: ``compile(m, (m.c,))`` traces ``x * 10 + self.c`` with the input's placeholder read for ``self.c`` too (the
    buffer's has no user), so a call with another ``x`` computed ``x * 10 + x``, silently."""
    leaves = _example_leaves(ep, example_inputs, kwargs)
    by_id = {id(w): wid for wid, w in weights.items()}
    return tuple((k, by_id[id(leaves[pos])], leaves[pos]) for k, (pos, _tid) in enumerate(user_inputs)
                 if pos < len(leaves) and id(leaves[pos]) in by_id)


def _merged_inputs(ep: Any, user_inputs: list[tuple[int, str]], example_inputs: tuple,
                   kwargs: dict | None) -> tuple[tuple[int, int], ...]:
    """Pairs (k, j), k < j, of user inputs whose example tensors were the very same object.

    Why: ``torch.export`` traces ``f(t, t)`` with one placeholder read for both arguments (the other has no
    user), so the program computes ``a * 2 + b`` as ``b * 2 + b``; a call with two different tensors then got
    a silently wrong result. The export's own example inputs say which (they keep the identity, through a
    ``.pt2`` too); the given ones stand in where the program has none."""
    leaves = _example_leaves(ep, example_inputs, kwargs)
    if len(leaves) <= max((pos for pos, _tid in user_inputs), default=-1):
        return ()
    return tuple((k, j) for k, (pk, _a) in enumerate(user_inputs) for j, (pj, _b) in enumerate(user_inputs)
                 if k < j and leaves[pk] is leaves[pj])


def _order_random_ops(torch, ep: Any, graph: Graph) -> Graph:
    """``graph`` with each random op (``dropout``, ``rand``, ``bernoulli_``...: torch's
    ``nondeterministic_seeded`` tag; or a higher-order op such as ``torch.cond`` whose branches hold one)
    also reading the first result of the random op before it.

    Why: they draw from one generator in the order they run, which no tensor edge records; a multi-stream
    schedule could issue a later one first, and every random number (and output) then differed from eager
    under the same seed. The extra read keeps their program order in every schedule, at the cost of a
    result living until the next random op starts; the executor binds arguments from the program, not
    from graph inputs, so nothing else changes."""
    seeded = [n.name for n in ep.graph.nodes if n.name in graph.node_index
              and graph.node(n.name).outputs and _draws(torch, ep.graph_module, n)]
    if len(seeded) < 2:
        return graph
    nodes = list(graph.nodes)
    for prev, cur in zip(seeded, seeded[1:]):
        k = graph.node_index[cur]
        dep = graph.node(prev).outputs[0]
        if dep not in nodes[k].inputs:
            nodes[k] = replace(nodes[k], inputs=nodes[k].inputs + (dep,))
    return Graph(graph.name, graph.tensors, tuple(nodes), graph.alignment)


def _draws(torch, owner: Any, node: Any, depth: int = 0) -> bool:
    """Whether ``node`` draws from the generator: a seeded op, or a higher-order op (``cond``, ``map``,
    ``while_loop``) one of whose subgraphs (``get_attr`` arguments of ``owner``) holds one at any depth."""
    if node.op != "call_function":
        return False
    if torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ()):
        return True
    if depth > 32:
        return False
    return any(_draws(torch, sub, n, depth + 1) for sub in subgraphs(torch, owner, node) for n in sub.graph.nodes)


def _spec(torch, tid: str, val: Any) -> TensorSpec:
    if not isinstance(val, torch.Tensor):
        raise AtenExecutorError(f"tensor {tid!r} has no fake tensor in the export")
    item = val.element_size()
    return TensorSpec(val.dtype, tuple(int(s) for s in val.shape), tuple(int(s) for s in val.stride()),
                      int(val.storage_offset()) * item)


def call_leaves(program: Program, args: tuple, kwargs: dict | None) -> tuple[list[Any], Any]:
    """The call's pytree leaves in the export's order, and their spec (another than ``program.in_spec`` where the call
    does not match the export's: ``flatten_inputs`` refuses it)."""
    from torch.utils import _pytree as pytree

    leaves, spec = pytree.tree_flatten((tuple(args), dict(kwargs or {})))
    if program.in_spec is not None and spec != program.in_spec:
        # keywords (and dict inputs) in another order than the export's: the same call to Python, another spec
        template = pytree.tree_unflatten([None] * program.in_spec.num_leaves, program.in_spec)
        leaves, spec = pytree.tree_flatten(_in_order((tuple(args), dict(kwargs or {})), template))
    return leaves, spec


def flatten_inputs(program: Program, args: tuple, kwargs: dict | None) -> list[Any]:
    """The call's tensors in the order of ``program.user_inputs`` (pytree-flattened like the export)."""
    import torch
    from torch.utils import _pytree as pytree

    leaves, spec = call_leaves(program, args, kwargs)
    if program.in_spec is not None and spec != program.in_spec:
        # (None leaves: ``_shape_of`` shows every leaf as *, and transformers' DynamicCache unflattening skips a None
        # layer where it ran ``update`` on a '*', a raw "'str' object has no attribute 'device'")
        mine = _shape_of(args, kwargs)
        theirs = _shape_of(*pytree.tree_unflatten([None] * program.in_spec.num_leaves, program.in_spec))
        raise AtenExecutorError(f"call arguments {mine} do not match the export's {theirs}"
                                " (same positional arguments, keywords and nesting; * is one value)"
                                + (_node_difference(spec, program.in_spec) if mine == theirs else ""))
    for pos, name, value in program.user_consts:
        x = leaves[pos] if pos < len(leaves) else None
        if isinstance(x, torch.Tensor) or not _same_constant(x, value):
            raise AtenExecutorError(f"argument {name!r} (argument leaf {pos}) is {x!r}, the program was exported "
                                    f"with {value!r}: export specializes non-tensor inputs (compile again for "
                                    "another value)")
    out = []
    for pos, tid in program.user_inputs:
        x = leaves[pos] if pos < len(leaves) else None
        if not isinstance(x, torch.Tensor):
            raise AtenExecutorError(f"input {tid!r} (argument leaf {pos}) must be a tensor, got {type(x).__name__}")
        out.append(x)
    for k, j in program.merged:
        if not _alike(out[k], out[j]):
            (_p, a), (_q, b) = program.user_inputs[k], program.user_inputs[j]
            raise AtenExecutorError(f"inputs {a!r} and {b!r} were one tensor in the export's example inputs, which "
                                    "torch.export merges into one input (the program reads only one of them); this "
                                    "call passes two different tensors: compile with separate example tensors "
                                    "(clone one) to call with different ones")
    for k, wid, w in program.merged_weights:
        if not _alike(out[k], w):
            raise AtenExecutorError(f"input {program.user_inputs[k][1]!r} was the module's own tensor {wid!r} in the "
                                    "export's example inputs, which torch.export merges with it (the program reads "
                                    "the input for both); this call passes another tensor: compile with a copy of "
                                    "it (.clone()) to call with other tensors")
    return out


def _node_difference(call: Any, export: Any) -> str:
    """Where a call's pytree spec first differs from the export's, for a refusal whose two structures read alike:
    ``_shape_of`` shows a registered node as one value, and transformers' ``DynamicCache`` keeps its layers' sliding
    windows in its spec's context (a plain model's cache passed to a sliding-window step: "(*, cache=*)" twice)."""
    kids = tuple(list(s.children() if hasattr(s, "children") else s.children_specs) for s in (call, export))
    if call.type is not export.type or call.context != export.context or len(kids[0]) != len(kids[1]):
        def name(s: Any) -> str:
            return "a value" if s.is_leaf() else f"a {getattr(s.type, '__name__', s.type)}"
        return f"; the call passes {name(call)} with {call.context!r} where the export had {name(export)} with " \
               f"{export.context!r}"
    return next((d for a, b in zip(*kids) if (d := _node_difference(a, b))), "")


def _read_field_by_field(object_reads: set[tuple[int, str]], watched: set[int], module: Any = None) -> frozenset[int]:
    """``watched`` (the settings objects whose reads the export recorded, ``Program.read_watched``) less those read
    wholesale (``vars(cfg)["k"]``, ``cfg.__dict__``, ``copy.copy(cfg)``: the read of ``k`` names ``__dict__`` only).
    Why: for these every plain value is watched, as for an object whose reads were not recorded; with only the
    names read watched, ``m.cfg.k = 3.0`` (or an equal copy but ``k``, taken by ``settings_copies``) ran the
    export's ``k`` silently (round 65 review)."""
    from .object_reads import WHOLE_READS
    from .raw_reads import reads_past_getattribute

    if watched and module is not None and reads_past_getattribute(sys.modules["torch"], module):   # (round 66)
        return frozenset()   # (``object.__getattribute__(cfg, "k")``: no read recorded by name, all watched)
    whole = {i for i, key in object_reads if key in WHOLE_READS}
    return frozenset(i for i in watched if i not in whole)


def _same_constant(x: Any, value: Any) -> bool:
    """Whether call value ``x`` is the constant ``value`` export specialized the program to, type included.

    Why the type: ``x * n`` exported with ``n=2`` multiplies an int tensor to an int result; ``n=2.0`` (equal
    to 2) gave that int result where eager's is float, and ``True`` passed for ``1`` likewise. A float's sign
    of zero counts (``x * -0.0``), and NaN is NaN."""
    if x is value:
        return True
    if type(x) is not type(value):
        return False
    if isinstance(x, float):
        return (math.isnan(x) and math.isnan(value)) or (x == value and math.copysign(1, x) == math.copysign(1, value))
    try:
        return bool(x == value)
    except Exception:   # a leaf whose == is no plain bool (an object export kept as a constant)
        return False


def _alike(a: Any, b: Any) -> bool:
    """Whether two tensors are one (or views of the same elements, laid out alike): a program that reads one
    of them for both computes what eager computes with these two. Laid out alike by ``strides_agree`` (round 51:
    by the strides themselves, so ``x`` beside ``x.as_strided((1, 4), (1, 1))``, the very elements, was refused)."""
    if a is b:
        return True
    return (a.device == b.device and a.dtype == b.dtype and a.layout == b.layout and a.shape == b.shape
            and strides_agree(tuple(a.shape), tuple(a.stride()), tuple(b.stride()))
            and (a.numel() == 0 or a.data_ptr() == b.data_ptr())
            and a.is_conj() == b.is_conj() and a.is_neg() == b.is_neg())


def strides_agree(shape: tuple, a: tuple, b: tuple) -> bool:
    """Whether strides ``a`` and ``b`` of one ``shape`` address the same elements at the same places: equal in each
    dimension of more than one element, and any strides of a tensor of no element (``memplan``'s ``same_layout`` on
    bare tuples, for the export's specs). Why: a size-1 dimension's stride addresses nothing and torch sets it freely
    (``x.t()`` of a ``(4, 1)`` tensor is ``(1, 4)`` at ``(1, 1)``, a fake kernel's result at ``(4, 1)``)."""
    if any(n == 0 for n in shape):
        return True
    return all(n <= 1 or x == y for n, x, y in zip(shape, a, b))


def _in_order(value: Any, template: Any) -> Any:
    """``value`` with each dict's keys in ``template``'s order where both hold the same keys (recursively):
    Python passes ``f(x, y=1, z=2)`` and ``f(x, z=2, y=1)`` alike, and eager takes either, but a pytree spec
    records the keys' order, so a call naming its keywords in another order than the export did was refused."""
    if isinstance(value, dict) and isinstance(template, dict) and set(value) == set(template):
        return {k: _in_order(value[k], template[k]) for k in template}
    if type(value) in (tuple, list) and type(value) is type(template) and len(value) == len(template):
        return type(value)(_in_order(v, t) for v, t in zip(value, template))
    return value


def _shape_of(args: Any, kwargs: Any) -> str:
    """A call's argument structure on one line, ``(*, [*, *], k=*)``: the pytree spec's repr spans lines
    and reads as internals."""
    def show(x: Any) -> str:
        """Containers by their type where it is not the plain one (a namedtuple, an ``OrderedDict``, a dataclass):
        a call passing a tuple where the export had a namedtuple read "((*, *)) do not match ((*, *))"."""
        if isinstance(x, (tuple, list)):
            inner = ", ".join(show(v) for v in x)
            text = f"({inner}{',' if isinstance(x, tuple) and len(x) == 1 else ''})" if isinstance(x, tuple) \
                else f"[{inner}]"
        elif isinstance(x, dict):
            text = "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in x.items()) + "}"
        elif is_dataclass(x) and not isinstance(x, type):
            return f"{type(x).__name__}(" + ", ".join(f"{f.name}={show(getattr(x, f.name))}"
                                                      for f in fields(x)) + ")"
        else:
            return "*"
        return text if type(x) in (tuple, list, dict) else f"{type(x).__name__}{text}"
    pos = ", ".join(show(v) for v in tuple(args))
    kw = ", ".join(f"{k}={show(v)}" for k, v in dict(kwargs or {}).items())
    return f"({pos}{', ' if pos and kw else ''}{kw})"
