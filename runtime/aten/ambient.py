"""The caller's process-global torch state that a call of a compiled program meets, and what the executor does
with it.

Why a module of its own: eager's ``forward`` reads this state at every call, the program was built under the state
of its compile. Each piece is either followed or refused, never run silently under the old one:

- the default dtype (``torch.set_default_dtype``): export pins no dtype a node takes from it (``torch.zeros(3)``
  is ``aten.zeros.default([3], device=cpu)``; ``int_tensor * 0.5``, ``int_tensor / 2``, ``torch.sqrt(int_tensor)``
  promote to it; a ``torch.tensor(1.5)`` made in ``forward`` is a float32 constant of the program; what
  ``forward`` computes from ``torch.get_default_dtype()`` is a plain dtype in it). Such a node makes float32 where
  eager under float64 makes float64, so a program holding one is refused under another default
  (``default_dtype_nodes`` names them, found at the first such call); every other program runs, its dtypes
  being its inputs' and weights' alone, as eager's are.
- the backend flags (``backend_flags``: TF32, cuDNN, reduced-precision reductions, deterministic algorithms,
  attention backends): the executor's kernels read them at every run as eager's do, but lowering reads some once
  (``exact._cudnn_conv`` passes cuDNN's ``benchmark`` / ``deterministic`` / ``allow_tf32``; layout probes run
  kernels) and a captured CUDA graph replays the kernels chosen at capture. A change since the build is followed
  by building the executor again (``CompiledModule``); a bare ``Executor`` refuses the call.
- grad mode and inference mode: a call runs under ``no_grad`` whatever the caller's mode (inference only), and its
  outputs are made in the caller's mode, as eager's. Where ``forward`` read the mode itself while it was exported
  (``torch.is_grad_enabled()``, ``torch.is_inference_mode_enabled()``, ``torch.is_autocast_enabled()``: the branch
  it took is fixed in the program), a call under which the read gives another value is refused, naming it
  (``mode_reads_changed``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backend_flags import (  # noqa: F401
    _FLAGS,
    _FP32_LEGACY,
    _FP32_PRECISIONS,
    _LEGACY_TF32,
    _SDP_SETTERS,
    FP32_PRECISION,
    MIXED,
    _getters,
    _put_fp32_precisions,
    _set_flag,
    _tolerant,
    backend_flags,
    changed_flag,
    flag_names,
    fp32_precisions,
)
from .cache_adopt import (  # noqa: F401
    CACHE_NOT_ADOPTED,
    _is_adoptable,
    _pairs,
    _path_of,
    adopt_cache,
    check_adoptable,
    cross_flags_refusal,
    returned_caches,
)
from .cache_args import (  # noqa: F401
    _held,
    _is_dynamic_cache,
    cache_refusal,
    call_caches,
    check_cache_layers,
    check_unwatched_caches,
    dense_cache_examples,
)
from .cache_windows import (  # noqa: F401
    put_window_counts,
    set_window_counts,
    unwatched_window_refusal,
    window_counts,
    window_inputs,
    window_mismatch,
    window_refusal,
)
from .call_args import (  # noqa: F401
    _argument_names,
    _same_leaf,
    _spec_text,
    input_changes,
    input_structure,
    tensor_meta_changes,
    tensor_metas,
)
from .call_state import CallState, _own, _public_state, _state_changes, watch_call_state  # noqa: F401
from .default_dtype import (  # noqa: F401
    _DEFAULTS,
    _DTYPE_READS,
    _MADE_IN_FORWARD,
    Ambient,
    _call_nodes,
    _fake_mode,
    _follows_default,
    _made_in_forward,
    _result_dtypes,
    _writes,
    default_dtype_nodes,
    record,
    watch_default_dtype_reads,
)
from .held_iterators import (  # noqa: F401
    _ITERATORS_PER_CONTAINER,
    _position_part,
    advanced_iterators,
    held_iterators,
    iterator_position,
)
from .hook_state import _KEPT_CONTAINERS, _filled, _forward_hooks, _has_state, _hook_places, _kept, hook_state_kept  # noqa: F401
from .host_random import (  # noqa: F401
    _DRAWS,
    _REPEATABLE,
    _STAND_IN,
    _STAND_IN_OWN,
    _UNREAD,
    HostDraws,
    _generator_access,
    _held_values,
    _same_random_state,
    _stand_in,
    _stand_in_type,
    draws_account_for,
    host_random_states,
    kept_draws,
    repeat_draws,
    restore_host_random,
    watch_host_draws,
)
from .layout_reads import (  # noqa: F401
    _LAYOUT_READS,
    _OWN_PACKAGES,
    _TORCH_PUBLIC,
    LAYOUT_GETTERS,
    LAYOUT_IDENTITIES,
    _identity_reader,
    _kept_by_layout,
    _layout_watched,
    _LayoutReads,
    _leaves_hook,
    _module_tensor,
    _note_identity,
    watch_layout_reads,
)
from .lazy_defaults import _dynamo_handlers, dynamo_handlers_built, forget_dynamo_handlers, settle_lazy_defaults  # noqa: F401
from .mode_reads import _MODE_READS, MODE_GETTERS, _mode_watched, mode_reads_changed, watch_mode_reads  # noqa: F401
from .module_containers import (  # noqa: F401
    _CONTAINERS,
    _is_container,
    _same_item,
    _set_key,
    _snapshot,
    _unchanged,
    container_snapshots,
    container_tensors,
    plain_change,
    undo_container_changes,
)
from .module_writes import _MODULE_WRITES, MISSING, ModuleWrites, held_before, module_fields, watch_module_writes  # noqa: F401
from .object_reads import _patched_classes, _read_watch, _reading, _writes_lock, watch_object_reads  # noqa: F401
from .process_settings import (  # noqa: F401
    _LABELLED_FLAGS,
    DEFAULT_DEVICE,
    _cpu_rows,
    _default_device,
    _settings_table,
    process_settings,
    restore_process_settings,
    setting_change,
)
from .registries import (  # noqa: F401
    _GRADS,
    GRAD_FLAGS,
    HOOK_FLAGS,
    REGISTRIES,
    _grads,
    registry_changes,
    registry_snapshots,
    restore_registries,
)
from .settings import SCALARS, same_value
from .tensor_attrs import _version, restore_tensor_attributes, tensor_attribute_values, tensor_value  # noqa: F401
from .torch_reads import _OWN_CODE, _dynamo_generated, _MethodPatch, _reader, _recording, _SharedPatch  # noqa: F401


@dataclass
class PythonPlace:
    """One piece of Python state a ``forward`` may change beside its module (``python_state``): how an error names it,
    how to read it now (``MISSING`` where it is gone) and put a value back, and its value (a container's shallow copy
    in ``copy``) before the export."""

    label: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    value: Any
    copy: Any = None


#: packages whose classes and functions are no user's state: torch's own modules (``nn.Linear``) and the builtins
_NOT_USERS = frozenset({"torch", "builtins", "functools", "typing", "abc"})


def _users(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "builtins").partition(".")[0] not in _NOT_USERS


def _code_names(code: Any) -> set[str]:
    """The global names ``code`` and the functions and comprehensions inside it read or write."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


def _functions(cls: type) -> list[Any]:
    """The functions of ``cls``'s own namespace: methods, static and class methods, properties' getters and setters,
    each with the functions it wraps (``@torch.no_grad()`` around ``forward``)."""
    out = []
    for v in vars(cls).values():
        for f in (getattr(v, "__func__", None), getattr(v, "fget", None), getattr(v, "fset", None), v):
            while f is not None and f not in out:
                if inspect.isfunction(f):
                    out.append(f)
                f = getattr(f, "__wrapped__", None)
    return out


def _watched_value(v: Any) -> bool:
    return isinstance(v, SCALARS) or type(v) in _KEPT_CONTAINERS


def _missing_ok(read: Callable[[], Any]) -> Callable[[], Any]:
    def get() -> Any:
        try:
            return read()
        except (KeyError, ValueError, AttributeError):   # (a global deleted, a cell emptied)
            return MISSING
    return get


def python_state(torch: Any, module: Any) -> list[PythonPlace]:
    """The Python state a ``forward`` of ``module``'s tree may change beside the module: the globals the code of its
    classes' functions names (plain values and containers), their closures' cells, the
    functions' own attributes, one level into the user's functions these hold, the classes' own attributes (``calls =
    0`` on the class, ``type(self).calls += 1``) and the attributes of the settings objects the tree holds
    (``self.st.n += 1``). torch's own classes and functions left out.

    Why: a compiled call runs no Python. ``global COUNTER; COUNTER += 1``, a closure's ``n[0] += 1``, a class counter
    or a held object's field so changed compiled (the export changed it once, for good) and every compiled call
    computed the export's value where eager's calls followed it, silently (session 41). Not covered: state reached
    deeper (a helper's helper, an object inside a global), nor a global ``forward`` makes anew."""
    if not isinstance(module, torch.nn.Module):
        return []
    from .settings import settings_objects

    places: list[PythonPlace] = []
    seen: set[Any] = set()

    def add(key: Any, label: str, read: Callable[[], Any], write: Callable[[Any], None]) -> None:
        if key in seen:
            return
        seen.add(key)
        get = _missing_ok(read)
        value = get()
        if value is MISSING or _watched_value(value):
            places.append(PythonPlace(label, get, write, value, value.copy() if type(value) in _KEPT_CONTAINERS else None))

    def put_global(g: dict, name: str) -> Callable[[Any], None]:
        return lambda v: g.pop(name, None) if v is MISSING else g.__setitem__(name, v)

    def put_attr(owner: Any, name: str) -> Callable[[Any], None]:
        def put(v: Any) -> None:
            if v is MISSING:
                if name in vars(owner):
                    (type.__delattr__ if isinstance(owner, type) else object.__delattr__)(owner, name)
            else:
                (type.__setattr__ if isinstance(owner, type) else object.__setattr__)(owner, name, v)
        return put

    def put_cell(cell: Any) -> Callable[[Any], None]:
        def put(v: Any) -> None:
            if v is MISSING:
                del cell.cell_contents
            else:
                cell.cell_contents = v
        return put

    def attrs(owner: Any, label: str, holder: str) -> None:
        if ("attrs", id(owner)) in seen:
            return
        seen.add(("attrs", id(owner)))
        for name, v in list(vars(owner).items()):
            if not name.startswith("__") and _watched_value(v):
                add((id(owner), name), label.format(name=name), functools.partial(lambda o, n: vars(o)[n], owner, name),
                    put_attr(owner, name))
        names = functools.partial(lambda o: tuple(sorted(n for n in vars(o) if not n.startswith("__"))), owner)

        def drop_new(old: tuple[str, ...], owner: Any = owner) -> None:   # (``f.calls = 1`` made anew: deleted)
            for n in set(names()) - set(old):
                put_attr(owner, n)(MISSING)
        places.append(PythonPlace(f"the attributes of {holder} (attributes made anew)", names, drop_new, names()))

    def function(fn: Any, depth: int) -> None:
        if ("fn", id(fn)) in seen or not _users(fn):
            return
        seen.add(("fn", id(fn)))
        g, where = fn.__globals__, f"module {fn.__globals__.get('__name__', '?')}"
        attrs(fn, f"the attribute {{name}} of the function {fn.__qualname__}", f"the function {fn.__qualname__}")
        defaults = dict(zip(fn.__code__.co_varnames[fn.__code__.co_argcount - len(fn.__defaults__ or ()):],
                            fn.__defaults__ or ()))
        for arg, v in {**defaults, **(fn.__kwdefaults__ or {})}.items():   # (``acc=[]``: one list for every call)
            if type(v) in _KEPT_CONTAINERS:
                add(("default", id(v)), f"the default of argument {arg} of {fn.__qualname__}", lambda v=v: v,
                    lambda _v: None)
        for name in sorted(_code_names(fn.__code__)):
            if name not in g:   # (a builtin, an attribute's name; a global made anew in ``forward`` is not seen)
                continue
            add((id(g), name), f"the global {name} ({where})", functools.partial(lambda d, n: d[n], g, name),
                put_global(g, name))
            if depth and inspect.isfunction(g.get(name)):
                function(g[name], depth - 1)
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            add(("cell", id(cell)), f"the closure variable {var} of {fn.__qualname__}",
                functools.partial(lambda c: c.cell_contents, cell), put_cell(cell))
            inner = _missing_ok(functools.partial(lambda c: c.cell_contents, cell))()
            if depth and inspect.isfunction(inner):
                function(inner, depth - 1)

    classes: list[type] = []
    for m in module.modules():
        classes += [c for c in type(m).__mro__ if c not in classes and _users(c)]
    for cls in classes:
        attrs(cls, f"the class attribute {cls.__name__}.{{name}}", f"the class {cls.__name__}")
        for fn in _functions(cls):
            function(fn, 1)
    for obj in settings_objects(torch, module):
        if _users(type(obj)):
            attrs(obj, f"the attribute {{name}} of the {type(obj).__name__} object the module holds",
                  f"the {type(obj).__name__} object the module holds")
    return places


def undo_python_changes(places: list[PythonPlace]) -> tuple[tuple[str, Any, Any, bool, PythonPlace], ...]:
    """(label, value before, value after, whether a plain value is among the change, the place) of each place of
    ``places`` changed since, each put back as it was (a container in place, the very object): compile runs no call.
    The place comes along so that ``sets.check_python_state`` can put the value after back for a second export."""
    out = []
    for p in places:
        now = p.read()
        if p.copy is not None and now is p.value:   # (the same container: its contents)
            if _unchanged(now, p.copy):
                continue
            out.append((p.label, p.copy, now.copy(), plain_change(p.copy, now), p))
            now.clear()
            (now.update if hasattr(now, "update") else now.extend)(p.copy)
            continue
        if type(now) is tuple and now == p.value:   # (the names of a holder's attributes: the same ones)
            continue
        if now is p.value or (isinstance(now, SCALARS) and isinstance(p.value, SCALARS)
                              and type(now) is type(p.value) and same_value(now, p.value)):
            continue
        out.append((p.label, p.value, now, True, p))
        p.write(p.value)
    return tuple(out)


def put_python_values(changes: tuple[tuple[str, Any, Any, bool, PythonPlace], ...], after: bool) -> None:
    """Each place of ``changes`` (``undo_python_changes``) set to its value after the export's call (``after``) or
    before it: a container's contents in place (the very object), anything else written."""
    for _label, before, now, _plain, place in changes:
        value = now if after else before
        if place.copy is not None and place.read() is place.value:
            place.value.clear()
            (place.value.update if hasattr(place.value, "update") else place.value.extend)(value)
        else:
            place.write(value)
