"""What ``forward``'s call did to its module tree, its arguments and the process, seen from the call's own end inside
the export (``CallState``), and the call made to return the tensors it set for the compiled call to set them.

Why at the call's end: writes that bypass ``nn.Module.__setattr__`` (``object.__setattr__``, ``self.__dict__[...]``,
``del self.n``) are seen there, and torch's export puts the old values back after, so compile saw no change and
every compiled call ran compile's values where eager's calls followed them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import cache_growth, returned_args
from .cache_adopt import is_adoptable, returned_caches
from .cache_windows import set_window_counts, window_counts
from .call_args import argument_names, input_changes, input_structure, tensor_meta_changes, tensor_metas
from .module_containers import container_tensors, same_item
from .module_writes import MISSING, module_fields
from .process_settings import process_settings
from .registries import registry_changes, registry_snapshots
from .tensor_attrs import tensor_value
from .value_reads import forward_watched


@dataclass
class CallState:
    """What ``forward``'s call did to the attributes of its module tree (private ones too, torch's own fields aside),
    seen from the call's own end (inside the export, where torch has not yet put them back; ``watch_call_state``): ``changes`` (module, attribute, name
    as the guard spells it, value before, value after; ``MISSING`` where there was none) and, of them, ``returned``
    (module, attribute, name): the tensor values the call returned as extra outputs, in their order.

    Why at the call's end and not through ``nn.Module.__setattr__`` (``watch_module_writes``): writes that bypass
    it (``object.__setattr__(self, "n", ...)``, ``self.__dict__["n"] = ...``, ``del self.n``) were never seen,
    and torch's export puts the old values back after, so compile saw no change and every compiled call ran
    compile's values where eager's calls followed them. And a tensor ``forward`` sets (``self.last = y``) is a value
    of the call the program must hand back for the compiled call to set it as eager does."""

    changes: list[tuple[Any, str, str, Any, Any]] = field(default_factory=list)
    returned: list[tuple[Any, str, str]] = field(default_factory=list)
    #: (module, store, key, name, value before, value after) of each entry of a ``_parameters``, ``_buffers`` or
    #: ``_modules`` of the tree the call added, deleted (``MISSING``) or replaced (``registry_changes``)
    registry: list[tuple[Any, str, str, str, Any, Any]] = field(default_factory=list)
    #: (what, value before, value after) of each process-wide torch setting the call changed and left changed
    #: (``torch.set_default_dtype``, ``torch.set_grad_enabled``: ``process_settings``)
    settings: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: (argument's name, what happened to it) of each argument whose containers ``forward`` changed in place
    #: (``input_changes``): ``acc.append(y)``, ``d["k"] = t``, a ``DynamicCache`` passed in that grows
    inputs: list[tuple[str, str]] = field(default_factory=list)
    #: (argument's name, path in the output) of each transformers ``DynamicCache`` argument the call changed and
    #: returned as itself (``returned_caches``)
    returned_caches: list[tuple[str, tuple]] = field(default_factory=list)
    #: the arguments whose change lies wholly inside the caches they hold (``cache_growth.nested_growth``): the
    #: caches grown and returned are in ``returned_caches`` by their paths (``state['cache']``)
    grown_in: list[str] = field(default_factory=list)
    #: (argument's name, why) of each argument holding a cache ``forward`` grows that the compiled call cannot
    #: grow as eager's (not returned: ``cache_growth.nested_growth``), named by its path and layer
    cache_refusals: list[tuple[str, str]] = field(default_factory=list)
    #: (argument's name, path in the output) of each dict, list or tuple argument the call returned as itself, left
    #: as it was or changed only by the caches it grows (``returned_args.returned_arguments``, round 58)
    returned_arguments: list[tuple[str, tuple]] = field(default_factory=list)
    #: (argument's name, what) of each tensor argument whose shape or strides ``forward`` changed in place
    #: (``x.unsqueeze_(0)``: ``tensor_meta_changes``), which torch.export fails on without saying so (round 58)
    resized: list[tuple[str, str]] = field(default_factory=list)
    #: (path in the output, ((layer index, tokens seen, window), ...)) of each transformers ``DynamicCache`` the call
    #: returned with sliding-window layers (``window_counts``)
    cache_counts: list[tuple[tuple, tuple]] = field(default_factory=list)


def _public_state(module: Any, internal: frozenset[str]) -> list[tuple[Any, str, dict]]:
    """(module, name as the guard spells it, shallow copy of its own ``__dict__`` entries: ``_own``) of each module of
    the tree, once each."""
    root = type(module).__name__
    seen: set[int] = set()
    out = []
    for path, m in module.named_modules():
        if id(m) not in seen:
            seen.add(id(m))
            out.append((m, f"{root}.{path}" if path else root, _own(m, internal)))
    return out


def _own(m: Any, internal: frozenset[str]) -> dict:
    """A shallow copy of module ``m``'s ``__dict__`` entries but torch's own fields (``internal``: ``_parameters``, the
    hook dicts, ``training``: the mode is watched apart) and dunder names. Private ones too (session 39b:
    ``object.__setattr__(self, "_n", self._n + 1)`` bypassed every watch and each compiled call ran compile's value)."""
    return {k: v for k, v in vars(m).items() if k not in internal and not k.startswith("__")}


def _state_changes(states: list[tuple[Any, str, dict]], internal: frozenset[str]) -> list[tuple[Any, str, str, Any, Any]]:
    out = []
    for m, label, before in states:
        now = _own(m, internal)
        for key in list(before) + [k for k in now if k not in before]:
            old, new = before.get(key, MISSING), now.get(key, MISSING)
            if same_item(old, new):
                continue
            out.append((m, key, f"{label}.{key}", old, new))
    return out


@contextlib.contextmanager
def watch_call_state(torch: Any, module: Any, containers: list | None = None,
                     windows: tuple = ()) -> Iterator[CallState]:
    """``module``'s call inside the block (an export) recording its ``CallState``; where it set tensor attributes,
    the call returns ``(its output, (their values...))``. The root's ``_call_impl`` is replaced on the instance for
    the block (its hooks still run inside it, as in eager): ``nn.Module.__call__`` looks it up on the instance.
    A call that sets no tensor attribute returns its output as it is: the program of every other module is the one
    it was. ``containers`` (``container_snapshots``, for ``sets.check_container_caches``' proof alone): the tensors
    the call put into them in place are returned too, each as (the container, its key, name) in ``returned``.
    ``windows`` (``window_inputs``): the sliding layers' counts of the example's caches, set on the caches the call
    is given (``set_window_counts``: the unflattening counted their keys).

    Where the module's class has a ``__call__`` of its own (``return super().__call__(x) * self._d["t"].item()``,
    or one calling ``forward`` itself, or not at all), that is the call recorded, set on the class for the block
    (this instance's calls alone; put back, or deleted where inherited, at the end). Why: the export calls the root
    through its class's ``__call__``; recording ``_call_impl`` alone, a value read around it was recorded nowhere
    (``d["t"].mul_(1.5)`` after compile ran the export's numbers silently), and one that never reaches
    ``_call_impl`` recorded nothing of the call at all (round 67)."""
    state = CallState()
    cls = type(module)
    own = cls.__call__
    own_call_recorded = own is not torch.nn.Module.__call__ and callable(own)
    real: Any = functools.partial(_unbound, own) if own_call_recorded else cls._call_impl
    internal = module_fields(torch) | {"_call_impl"}

    def call(*args: Any, **kwargs: Any) -> Any:
        set_window_counts(torch, module, args, kwargs, windows)
        before = _public_state(module, internal)
        stores = registry_snapshots(torch, module)
        settings = process_settings(torch)
        given = [(name, value, *input_structure(torch, value)) for name, value in argument_names(module, args, kwargs)]
        shells = [(name, value, cache_growth.snapshot(torch, name, value)) for name, value, *_ in given
                  if not is_adoptable(value)]
        metas = tensor_metas(torch, given)
        with forward_watched(torch):   # (``forward``'s value reads: ``value_reads``' mode for its call alone)
            out = real(module, *args, **kwargs)
        state.resized = tensor_meta_changes(torch, metas)
        state.inputs = input_changes(torch, given)
        state.returned_caches = returned_caches(dict((n, v) for n, v, *_ in given), state.inputs, out)
        changed = dict(state.inputs)
        for name, value, shell in shells:
            found = (cache_growth.nested_growth(torch, name, value, shell, out)
                     if shell is not None and name in changed else None)
            if found is not None:
                state.returned_caches += found[0]
                if found[1] is None:
                    state.grown_in.append(name)
                else:
                    state.cache_refusals.append((name, found[1]))
        state.returned_arguments = returned_args.returned_arguments(
            [(n, v) for n, v, *_ in given], set(changed), set(state.grown_in),
            {n for n, _p in state.returned_caches}, out)
        state.cache_counts = window_counts(torch, out)
        state.changes = _state_changes(before, internal)
        state.registry = registry_changes(stores)
        after = dict(process_settings(torch))
        state.settings = [(what, a, after[what]) for what, a in settings if what in after and after[what] != a]
        state.returned = [(m, key, label) for m, key, label, _old, new in state.changes
                          if not key.startswith("_") and tensor_value(torch, new)]   # (a private tensor is
        # ``sets.check_private_sets``' business, or refused where set without ``__setattr__``)
        values = [vars(m)[key] for m, key, _label in state.returned]
        for obj, key, label, value in container_tensors(torch, containers or []):
            state.returned.append((obj, key, label))
            values.append(value)
        if not state.returned:
            return out
        return out, tuple(values)

    if not own_call_recorded:
        vars(module)["_call_impl"] = call
        try:
            with _graph_module_called(torch, module, call):
                yield state
        finally:
            vars(module).pop("_call_impl", None)
        return

    # (round 67: the class's own ``__call__`` is the call recorded, for this instance; see the docstring)
    @functools.wraps(own)
    def own_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs) if self is module else own(self, *args, **kwargs)

    had, before = "__call__" in vars(cls), vars(cls).get("__call__")
    cls.__call__ = own_call
    try:
        with _graph_module_called(torch, module, call):
            yield state
    finally:
        if had:
            cls.__call__ = before
        elif vars(cls).get("__call__") is own_call:
            delattr(cls, "__call__")


@contextlib.contextmanager
def _graph_module_called(torch: Any, module: Any, call: Any) -> Iterator[None]:
    """For a ``torch.fx.GraphModule`` root (``symbolic_trace``, torchvision's ``create_feature_extractor``, FX
    quantization's ``prepare_qat_fx``): torch.export runs such a root through ``torch.fx.Interpreter(mod).run(*args)``
    (its keywords' values appended to its arguments, in order), never calling it, so the watch of the call saw nothing
    and compile was refused ("the export ran the module without calling it (this torch version ...)", round 74);
    inside the block that run of this very module is its call (``call``: the module called with those arguments, its
    generated ``forward`` the same ops, and its hooks run, as eager runs them). Elsewhere nothing."""
    if not isinstance(module, torch.fx.GraphModule):
        yield
        return
    interpreter = torch.fx.Interpreter
    had, before = "run" in vars(interpreter), vars(interpreter).get("run")
    plain = interpreter.run

    @functools.wraps(plain)
    def run(self: Any, *args: Any, initial_env: Any = None, enable_io_processing: bool = True) -> Any:
        if self.module is module and initial_env is None and enable_io_processing:
            return call(*args)
        return plain(self, *args, initial_env=initial_env, enable_io_processing=enable_io_processing)

    interpreter.run = run
    try:
        yield
    finally:
        if had:
            interpreter.run = before
        elif vars(interpreter).get("run") is run:
            delattr(interpreter, "run")


def _unbound(own: Any, module: Any, *args: Any, **kwargs: Any) -> Any:
    """``own(module, ...)``: the class's own ``__call__`` as ``watch_call_state``'s ``call`` calls ``_call_impl``."""
    return own(module, *args, **kwargs)
