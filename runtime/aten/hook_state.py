"""The Python state a module tree's forward hooks (and torch's global ones) may change, kept across an export that is
no call.

Why: compile exports ``forward`` again to check the attributes it sets, and a call exports it with arguments compile
left out; each export runs the hooks, so a hook counting its calls (``calls += 1``, ``seen.append(...)``) saw an
extra call that no eager call made.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Iterator
from typing import Any

from .byte_values import CONTENT_LIMIT, TOTAL_LIMIT, _found, _raw, _tensor, contents, is_buffer, put_back, size
from .module_containers import CONTAINERS, INNER_LIMIT, inner_containers, unchanged
from .settings import SCALARS, user_class


def _forward_hooks(torch: Any, module: Any) -> list[Any]:
    """The forward hooks and pre-hooks of ``module``'s tree, of the layers it holds in list, tuple or dict attributes
    (``held_modules``: a held layer's counting hook, run by a proof's export, was left advanced, so the next call
    exported again, round 63b) and torch's global ones: what an export runs."""
    from .held_modules import held_trees

    mod = sys.modules["torch.nn.modules.module"]
    hooks = [*mod._global_forward_hooks.values(), *mod._global_forward_pre_hooks.values()]
    for m in [*module.modules(), *(m for _name, m in held_trees(torch, module))]:
        hooks += [*m._forward_hooks.values(), *m._forward_pre_hooks.values()]
    return hooks


def _hook_places(torch: Any, hook: Any) -> list[tuple[str, Any, Any]]:
    """("cell", cell, None), ("global", globals, name), ("object", obj, None) of what ``hook`` may change: its
    closure's cells, the module globals its code names, the object it is bound to or is (a callable object), and
    the function's own attributes, but never an ``nn.Module`` (the module's state is the export's business)."""
    if isinstance(hook, functools.partial):   # ``partial(fn, store)``: the state is in its arguments (a list it
        bound = [*hook.args, *hook.keywords.values()]   # appends to, an object it sets), and in ``fn``'s own places
        # (a byte buffer or a tuple bound is a value too: ``partial(h, np.array([2.0]))`` changed in place, or
        # ``partial(h, ([2.0],))``'s inner list, ran the export's value silently, round 64d)
        places = [("value", v, None) for v in bound if _bound_value(v)]
        places += [("object", v, None) for v in bound if not _bound_value(v) and _has_state(torch, v)]
        return places + _hook_places(torch, hook.func)
    fn = getattr(hook, "__func__", hook)
    owner = getattr(hook, "__self__", None)
    places: list[tuple[str, Any, Any]] = []
    if not inspect.isfunction(fn):   # a callable object: its own ``__call__`` and state
        owner, fn = hook, inspect.getattr_static(type(hook), "__call__", None)
    if owner is not None and hasattr(owner, "__dict__") and not isinstance(owner, torch.nn.Module):
        places.append(("object", owner, None))
    if inspect.isfunction(fn):
        if vars(fn):   # its own attributes (``hook.calls += 1``: the second export counted a call no eager call made)
            places.append(("object", fn, None))
        places += [("cell", c, None) for c in fn.__closure__ or ()]
        places += [("global", fn.__globals__, n) for n in fn.__code__.co_names if n in fn.__globals__]
        places += _method_places(torch, places)
    return places


def _method_places(torch: Any, places: list[tuple[str, Any, Any]], depth: int = 2) -> list[tuple[str, Any, Any]]:
    """("cell", ...) and ("global", ...) of the functions of the user's that ``places`` hold and of the functions
    (methods, properties, class and static methods) of the classes of the user's they hold (a class ``K``, an object
    ``OBJ``, and their bases of the user's), ``depth`` levels: what ``helper()``, ``K.helper()`` or ``OBJ.prop``
    reads (and ``helper()`` reading ``OBJ.prop``). Why: a hook reading a global ``G`` through one, ``G = 3.0`` after
    compile, ran the export's value silently (round 65)."""
    from .code_names import _code_names, _functions, _installed

    out: list[tuple[str, Any, Any]] = []
    done: set[Any] = set()

    def of(fn: Any) -> list[tuple[str, Any, Any]]:
        return [*(("cell", cell, None) for cell in fn.__closure__ or ()),
                *(("global", fn.__globals__, n) for n in sorted(_code_names(fn.__code__)) if n in fn.__globals__)]

    todo = places
    for _ in range(depth):
        found: list[tuple[str, Any, Any]] = []
        for kind, where, name in todo:
            if kind == "cell":
                value = where.cell_contents if _filled(where) else None
            elif kind == "global":
                value = where.get(name)
            else:
                continue
            if id(value) in done:
                continue
            done.add(id(value))
            if inspect.isfunction(value) and user_class(value) and not _installed(value):   # (a helper of the
                # user's the hook calls)
                found += of(value)
                continue
            cls = value if isinstance(value, type) else type(value) if _has_state(torch, value) else None
            if cls is None or not user_class(cls) or issubclass(cls, torch.nn.Module) or _installed(cls):
                continue
            for c in user_bases(cls):
                for f in _functions(c) if ("class", id(c)) not in done else ():
                    found += of(f)
                done.add(("class", id(c)))
        out += found
        todo = found
    return out


def _global_object(torch: Any, value: Any) -> bool:
    """Whether a global a hook names is a user's object whose fields ``hook_values`` fingerprints (round 64b): then a
    proof's export must put its fields back, or a hook counting in it (``CFG.n += 1``) advanced at each proof, and the
    next call saw a change and exported again."""
    from .settings import settings_object

    return not isinstance(value, SCALARS) and type(value) not in (*CONTAINERS, tuple) and settings_object(torch, value)


def hook_roots(torch: Any, module: Any) -> list[tuple[str, Any]]:
    """(label, value) of each place the forward hooks of ``module``'s tree keep state in: their closures' filled cells,
    the globals they name, a partial's bound arguments, their object's fields. Written once for the walks that look
    for what a hook may read (``byte_values``' buffers, ``walk_bounds``' containers), so both name a place alike."""
    out: list[tuple[str, Any]] = []
    for hook in _forward_hooks(torch, module):
        label = getattr(hook, "__qualname__", type(hook).__name__)
        for kind, where, name in _hook_places(torch, hook):
            if kind == "cell" and _filled(where):
                out.append((f"a closure variable of hook {label}", where.cell_contents))
            elif kind == "global":
                out.append((f"the global {name} of hook {label}", where.get(name)))
            elif kind == "value":
                out.append((f"an argument bound to hook {label}", where))
            elif kind == "object":
                out += [(f"{type(where).__name__}.{k} of hook {label}", v) for k, v in vars(where).items()]
    return out


def _filled(cell: Any) -> bool:
    """Whether a closure cell holds a value (an empty one raises on reading)."""
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def _has_state(torch: Any, value: Any) -> bool:
    """Whether ``value`` is an object whose attributes a hook may change (not a module, class, function or tensor)."""
    return (hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, torch.Tensor, type))
            and not callable(value))


def _bound_value(value: Any) -> bool:
    """Whether a value a ``functools.partial`` hook binds is watched as a value (its contents): a container, a tuple
    (the containers in it), a byte buffer (its bytes)."""
    return _kept(value) is not None or type(value) is tuple or is_buffer(value)


def _kept(value: Any) -> Any:
    """What restoring needs of ``value``: a shallow copy of a container (restored in place), else None."""
    return value.copy() if type(value) in CONTAINERS else None


@contextlib.contextmanager
def hook_state_kept(torch: Any, module: Any) -> Iterator[None]:
    """The Python state the module tree's forward hooks (and torch's global ones) may change put back as it was
    after the block: their closures' cells, the plain values and containers of the globals their code names, and
    the attributes of the objects they are bound to (shallow), and the containers inside each at any depth.

    Why: compile exports ``forward`` again to check the attributes it sets (``sets.check_forward_sets``), and a
    call exports it with arguments compile left out (``CompiledModule._prove``): each export runs the hooks, so a
    hook counting its calls (``calls += 1``, ``seen.append(...)``) saw an extra call that no eager call made. Not
    covered: what a hook changes through other functions it calls or objects it reaches deeper.

    Yields a list that, after the block, names each place a hook changed in it (before it is put back): a call's
    proof that hooks added after compile leave the program as it is takes only hooks that changed nothing there
    (``CompiledModule._prove_calls``: a hook appending to a list is work every eager call does and no compiled one)."""
    changed: list[str] = []
    if not isinstance(module, torch.nn.Module):
        yield changed
        return
    saved: list[tuple[str, Any, Any, Any, Any]] = []
    for hook in _forward_hooks(torch, module):
        for kind, where, name in _hook_places(torch, hook):
            if kind == "cell":
                try:
                    value = where.cell_contents
                except ValueError:   # (an empty cell)
                    continue
            elif kind == "global":
                value = where[name]
                if _global_object(torch, value):   # (a user's object a hook names: its fields, as a bound object's)
                    kind, where, value = "object", value, dict(vars(value))
                    saved += [("item", value, k, v, _kept(v)) for k, v in value.items() if _kept(v) is not None]
                elif not isinstance(value, (*SCALARS, type)) and type(value) not in (*CONTAINERS, tuple):
                    continue   # (a module, a function: no state of the hook's)
            elif kind == "value":   # (a container a ``functools.partial`` holds: its contents, in place)
                saved.append(("item", where, None, where, _kept(where)))
                continue
            else:
                value = dict(vars(where))
                saved += [("item", value, k, v, _kept(v)) for k, v in value.items() if _kept(v) is not None]
            if kind in ("cell", "global") and isinstance(value, type) and user_class(value):   # (a class of the
                for c in user_bases(value):   # user's the hook counts in, ``K.calls += 1``: each export counted
                    fields = dict(own_fields(c))   # one more, round 64e; each base's own, round 65)
                    saved.append(("class", c, None, fields, None))
                    saved += [("item", fields, k, v, _kept(v)) for k, v in fields.items() if _kept(v) is not None]
            saved.append((kind, where, name, value, _kept(value) if kind != "object" else None))
    # (the containers inside them, at any depth, bounded by size: a shallow copy holds the very inner lists, so a
    # hook's ``state[0][0] += 1`` was left counting each export, round 62)
    seen = {id(entry[3]) for entry in saved if entry[4] is not None}
    budget = [INNER_LIMIT]
    for entry in list(saved):
        value = entry[3]
        if entry[4] is not None or (type(value) is tuple and entry[0] != "object"):
            saved += [("item", c, None, c, c.copy()) for _keys, c in inner_containers(value, seen, budget)]
    buffers = kept_buffers(torch, module)   # (a NumPy array a hook changes in place: round 64)
    try:
        yield changed
    finally:
        if not all(put_back(buf, raw) for buf, raw in buffers):
            changed.append("buffer")
        for kind, where, name, value, copy in saved:
            now = (where.cell_contents if kind == "cell" and _filled(where) else where.get(name) if kind == "global"
                   else vars(where) if kind == "object" else value)
            if (copy is not None and not unchanged(value, copy)) or (kind in ("cell", "global") and now is not value) \
                    or (kind == "object" and (now.keys() != value.keys()
                                              or any(now[k] is not v for k, v in value.items()))):
                changed.append(name if kind == "global" else kind)
            elif kind == "class" and any(where.__dict__.get(k, _GONE) is not v for k, v in value.items()):
                changed.append(f"the class {where.__name__}")
        for kind, where, name, value, copy in reversed(saved):
            if copy is not None:   # the same container, its contents as they were
                value.clear()
                (value.update if hasattr(value, "update") else value.extend)(copy)
            if kind == "class":
                for k, v in value.items():
                    type.__setattr__(where, k, v)
            elif kind == "object":
                vars(where).clear()
                vars(where).update(value)
            elif kind == "cell":
                where.cell_contents = value
            elif kind == "global":
                where[name] = value


_GONE = object()


def hook_objects(torch: Any, module: Any) -> list[Any]:
    """The objects the forward hooks of ``module``'s tree (and torch's global ones) keep state in: a hook that is a
    callable object, the object a hook method is bound to, the objects a ``functools.partial`` hook binds (never a
    module). ``python_state`` watches the settings objects reached from them through ``hooks_tracked``."""
    if not isinstance(module, torch.nn.Module):
        return []
    out: dict[int, Any] = {}
    for hook in _forward_hooks(torch, module):
        for kind, where, _name in _hook_places(torch, hook):
            if kind == "object" and not inspect.isfunction(where):
                out.setdefault(id(where), where)
    return list(out.values())


def _snap(place: Any) -> tuple[Any, Any]:
    value = place.read()
    return value, value.copy() if type(value) in CONTAINERS else None


def _same(place: Any, snap: tuple[Any, Any]) -> bool:
    from .settings import same_value

    now, (value, copy) = place.read(), snap
    if copy is not None:
        return now is value and unchanged(now, copy)
    return now is value or (type(now) is tuple and now == value) or (
        isinstance(now, SCALARS) and isinstance(value, SCALARS) and same_value(now, value))


@contextlib.contextmanager
def hooks_tracked(torch: Any, module: Any, places: list[Any]) -> Iterator[set[int]]:
    """Runs the block (an export) with the tree's forward hooks wrapped, and yields a set that, after it, holds the
    index of each of ``places`` (``python_state``'s places of the objects hooks keep state in) changed only inside
    hook calls. The hooks' reads of settings objects are not recorded for the guard (``object_reads``).

    Why: a hook counting its calls in an object the module also holds (``self.counters = [c]``, ``c`` registered on
    a submodule) was refused at compile as a change ``forward`` made (round 61 looked into list attributes for
    settings objects), where the same hook held nowhere compiled and saw the export's one, as documented: a hook's
    own Python side effects happen once, at export. A change ``forward`` itself makes there (between hook calls) is
    still refused."""
    from .object_reads import reads_unwatched

    hooks_only: set[int] = set()
    if not places or not isinstance(module, torch.nn.Module):
        yield hooks_only
        return
    last = [_snap(p) for p in places]
    outside: set[int] = set()
    inside: set[int] = set()

    def wrap(hook: Any) -> Any:
        def tracked(*args: Any, **kwargs: Any) -> Any:
            for i, p in enumerate(places):
                if not _same(p, last[i]):
                    outside.add(i)
            try:
                with reads_unwatched():
                    return hook(*args, **kwargs)
            finally:
                for i, p in enumerate(places):
                    if not _same(p, last[i]):
                        inside.add(i)
                        last[i] = _snap(p)
        return tracked

    try:
        with _hooks_wrapped(_hook_tables(module), lambda _where, hook: wrap(hook)):
            yield hooks_only
    finally:
        for i, p in enumerate(places):
            if not _same(p, last[i]):
                outside.add(i)
        hooks_only |= inside - outside


def _fingerprint(torch: Any, v: Any, depth: int = 6, budget: list[int] | None = None, tensors: bool = True,
                 visited: list[Any] | None = None) -> Any:
    """The plain values ``v`` holds (numbers, strings, the items of its containers, the fields of a settings object
    of the user's, ``settings.settings_object``), as a comparable value; tensors, modules, functions, Python modules
    and the standard library's objects stand as their kind alone (their values are the program's business, or no
    hook's state), and at most ``budget[0]`` (4096) values are looked at. Why the bounds: a global hook's code names
    ``nn``, whose namespace walked six levels down never ended. ``tensors=False`` (``hook_values``, what hooks read):
    tensors are left out of containers and fields, and a container past the bound stands as its kind, not its
    length: a record of tensors (a feature-tap list the caller clears or grows) is no value a program is made from."""
    from .settings import function_value, settings_object, value_text

    budget = [4096] if budget is None else budget
    budget[0] -= 1
    if visited is not None:   # (each value looked at: what ``hook_watch`` compares by identity at the next call)
        visited.append(v)

    if isinstance(v, SCALARS):
        return ("v", type(v).__name__, value_text(v) if isinstance(v, float) else v)
    if is_buffer(v):   # (a NumPy array the hook reads, changed in place by the caller: round 64)
        return ("b", contents(v)) if size(v) <= CONTENT_LIMIT else ("o", type(v).__name__)
    if isinstance(v, type) and depth > 0:   # (a class a hook reads, ``K.s``: which one and its
        # public plain attributes; by its kind alone, ``K.s = 3.0`` after compile ran the export's value, round 64e)
        return ("k", Same(v), tuple((k, _fingerprint(torch, x, depth - 1, budget, tensors, visited))
                                    for k, x in class_fields(torch, v)))
    if depth <= 0 or budget[0] <= 0 or isinstance(v, (torch.Tensor, torch.nn.Module, type)):
        return ("o", type(v).__name__)
    if callable(v) and (tensors or not settings_object(torch, v)):   # (``hook_values``: a callable object of the
        # user's is a settings object, its fields walked; a function is which one it is: a hook calling ``act(out)``
        # or ``self.f(out)`` ran the export's function after ``self.f = other``, silently, round 64d)
        return ("f", Same(v)) if not tensors and function_value(v) else ("o", type(v).__name__)

    def kept(x: Any) -> bool:
        return tensors or not isinstance(x, torch.Tensor)

    def inner(x: Any) -> Any:
        return _fingerprint(torch, x, depth - 1, budget, tensors, visited)

    if type(v) in (*CONTAINERS, tuple):
        if len(v) > 1024:
            return ("n", len(v) if tensors else type(v).__name__)
        if isinstance(v, dict):
            return ("m", type(v).__name__, tuple((repr(k), inner(x)) for k, x in v.items() if kept(x)))
        items = sorted(v, key=repr) if isinstance(v, set) else list(v)
        return ("c", type(v).__name__, tuple(inner(x) for x in items if kept(x)))
    if settings_object(torch, v):   # (and its class's attributes, ``OBJ.s`` defined on the class, round 65)
        return ("d", type(v).__name__, tuple((k, inner(x)) for k, x in vars(v).items() if kept(x)), inner(type(v)))
    return ("o", type(v).__name__)


#: how many of a class's attributes (its own and its bases') a hook's fingerprint takes at most (``class_fields``);
#: past it, compile warns naming the class (``hook_values.too_deep``)
CLASS_FIELDS = 1024


def user_bases(cls: type) -> list[type]:
    """``cls`` and its bases of the user's (``settings.user_class``; no ``object``), in lookup order: the classes
    whose namespaces an attribute read ``cls.s`` may find its value in."""
    return [c for c in cls.__mro__ if c is not object and user_class(c)]


def own_fields(cls: type) -> list[tuple[str, Any]]:
    """(name, value) of the public plain attributes (numbers, strings, containers) ``cls`` defines itself."""
    return [(k, x) for k, x in vars(cls).items() if not k.startswith("_")
            and (isinstance(x, SCALARS) or type(x) in (*CONTAINERS, tuple))]


def class_fields(torch: Any, cls: type, limit: int | None = CLASS_FIELDS) -> list[tuple[str, Any]]:
    """(name, value) of the public plain attributes (numbers, strings, containers) a class of the user's defines
    itself or finds in a base of the user's (``user_bases``: the value ``cls.name`` reads), at most ``limit``: what a
    hook reading ``K.s`` reads. None of a library's class (torch's, the standard library's: ``settings.user_class``),
    whose attributes change through its own machinery, if at all. Why the bases: ``class K(B)`` reading ``K.s``
    reads ``B.s``, and ``B.s = 3.0`` after compile ran the export's value silently (round 65; and past the 64th
    attribute, round 64e's bound)."""
    if not user_class(cls):
        return []
    out: dict[str, Any] = {}
    for c in user_bases(cls):
        for k, x in own_fields(c):
            out.setdefault(k, x)
    return list(out.items())[:limit]


class Same:
    """An object in a fingerprint, equal to another ``Same`` of the very object only. Why not its ``id``: the object is
    held, so a new one freed and made at the same address is never taken for it (a global function deleted and
    defined anew); why not the object itself: its own ``__eq__`` may answer anything (a DataFrame's, an array)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return type(other) is Same and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"<{type(self.obj).__name__} at {id(self.obj):#x}>"


def _hook_state_now(torch: Any, hook: Any) -> tuple:
    """The fingerprint of what ``hook`` may change (``_hook_places``): its closure's cells, the globals its code names,
    the objects it is bound to or binds."""
    out = []
    for kind, where, name in _hook_places(torch, hook):
        if kind == "cell":
            value = where.cell_contents if _filled(where) else None
        elif kind == "global":
            value = where.get(name)
            if is_buffer(value):
                pass   # (a byte buffer: its bytes, ``_fingerprint``, round 64)
            elif _global_object(torch, value):   # (a user's object: its fields, ``CFG.n += 1``, round 64b; its
                value = (dict(vars(value)), type(value))   # class's attributes, ``CFG.s`` on the class, round 65)
            elif isinstance(value, type) and user_class(value):
                pass   # (a class of the user's: its plain attributes, ``K.n += 1; return out * K.n``, round 64e)
            elif not isinstance(value, SCALARS) and type(value) not in (*CONTAINERS, tuple):
                continue   # (a Python module, a function, a library's class: no state of the hook's)
        elif kind == "object":   # (a callable object's own fields: the object itself is callable)
            value = dict(vars(where))
        else:
            value = where
        out.append(_fingerprint(torch, value))
    return tuple(out)


@contextlib.contextmanager
def hook_results_watched(torch: Any, module: Any) -> Iterator[list[str]]:
    """Runs the block (an export) with the tree's forward hooks and pre-hooks wrapped, and yields a list that, after
    it, names each hook that changed a plain value of its own state (a count in its closure, a field of its object)
    and returned a value (a new output, new arguments).

    Why: a compiled call runs no hook's Python: the program holds what the hook returned at the export, computed from
    its state then, where each eager call's hook computes from the state the calls before left (``n[0] += 1; return
    out * n[0]``: every compiled call returned ``out * 1``, eager's second ``out * 2``, silently; round 62). A hook
    that only counts (returns None, or the very output or arguments it was given: the documented one call seen at
    export) or returns without changing its state is left as before. A hook that changes its state and writes a
    tensor it was given in place (``n[0] += 1; out.mul_(n[0])``, returning None: the version counter of its output
    or arguments moved) is named too (round 63: it compiled, every compiled call scaled by 1 where eager's second
    scaled by 2). Not seen: a write to a tensor it was not given (a buffer, a tensor of its closure)."""
    found: list[str] = []
    if not isinstance(module, torch.nn.Module):
        yield found
        return
    def wrap(where: str, hook: Any) -> Any:
        def watched(*args: Any, **kwargs: Any) -> Any:
            before = _hook_state_now(torch, hook)
            versions = _versions(torch, args[1:])
            result = hook(*args, **kwargs)
            given = args[-1] if args else None   # (a forward hook's output, a pre-hook's arguments)
            same = result is given or (type(result) is tuple and type(given) is tuple and len(result) == len(given)
                                       and all(a is b for a, b in zip(result, given)))
            wrote = versions != _versions(torch, args[1:])   # (``out.mul_(n[0])``: the result is the write)
            if ((result is not None and not same) or wrote) and _hook_state_now(torch, hook) != before:
                label = f"{where} ({getattr(hook, '__qualname__', type(hook).__name__)})"
                label += ", writing what it was given in place," if wrote else ""
                if label not in found:
                    found.append(label)
            return result
        return watched

    with _hooks_wrapped(_hook_tables(module), wrap):
        yield found


def _versions(torch: Any, value: Any) -> list[int]:
    """The version counters of the tensors in ``value`` (a hook's arguments: the module's inputs, its output), which
    an in-place write moves, in a fake tensor of the export too."""
    from torch.utils import _pytree as pytree

    return [t._version for t in pytree.tree_leaves(value)   # (an inference tensor keeps none: "Inference tensors
            if isinstance(t, torch.Tensor) and not t.is_inference()]   # do not track version counter", round 51)


def _hook_tables(module: Any) -> list[tuple[str, dict]]:
    """torch's global forward hook and pre-hook tables, then each module's of the tree, each with what names it."""
    mod = sys.modules["torch.nn.modules.module"]
    tables = [("torch's global forward hooks", mod._global_forward_hooks),
              ("torch's global forward pre-hooks", mod._global_forward_pre_hooks)]
    for path, m in module.named_modules():
        name = f"{type(module).__name__}.{path}" if path else type(module).__name__
        tables += [(f"a forward hook of {name}", m._forward_hooks),
                   (f"a forward pre-hook of {name}", m._forward_pre_hooks)]
    return tables


@contextlib.contextmanager
def _hooks_wrapped(tables: list[tuple[str, dict]], wrap: Any) -> Iterator[None]:
    """Runs the block with each hook of ``tables`` replaced by ``wrap(where, hook)``, and puts every one still
    registered back after it (a hook removed inside the block stays removed)."""
    saved = [(table, key, hook) for _where, table in tables for key, hook in list(table.items())]
    for where, table in tables:
        for key, hook in list(table.items()):
            table[key] = wrap(where, hook)
    try:
        yield
    finally:
        for table, key, hook in saved:
            if key in table:
                table[key] = hook


def hook_refusal(label: str) -> str:
    """The one line compile refuses a hook ``hook_results_watched`` named with (``sets.check_hook_results``)."""
    return (f"{label} changes its own Python state (a count, a field) at each call and returns a value that follows "
            "it, or writes one in place (exported again from the state the export's call left, forward gives another "
            "program): a compiled call runs no hook's Python, so the program holds the value the hook made at the "
            "export where each eager call's hook computes from the state the calls before left (keep such state in a "
            "buffer of the module, or let the hook only record and leave its tensors as given)")


def hook_containers(torch: Any, module: Any) -> set[int]:
    """The ids of the containers the forward hooks of ``module``'s tree (and torch's global ones) keep state in (their
    closures' cells, the globals they name, the objects they are bound to or bind), and of those inside them.

    Why: a hook counting its calls in a list the module holds too (``self._counts = [[0]]``, the hook closing over
    it) was refused at compile as ``forward``'s change of the module's container (round 62), where the same count
    held nowhere compiled, seeing the export's one call as documented: ``program.load_program`` tracks these
    through ``hooks_tracked`` as it tracks the objects hooks keep state in (round 61b)."""
    if not isinstance(module, torch.nn.Module):
        return set()
    roots: list[Any] = []
    for hook in _forward_hooks(torch, module):
        for kind, where, name in _hook_places(torch, hook):
            if kind == "cell" and _filled(where):
                roots.append(where.cell_contents)
            elif kind == "global":
                roots.append(where.get(name))
            elif kind == "value":
                roots.append(where)
            elif kind == "object":
                roots += list(vars(where).values())
    seen: set[int] = set()
    budget = [INNER_LIMIT]
    for v in roots:
        if type(v) in CONTAINERS:
            seen.add(id(v))
        if type(v) in CONTAINERS or type(v) is tuple:
            inner_containers(v, seen, budget)
    return seen


def hook_buffers(torch: Any, module: Any) -> list[tuple[str, Any]]:
    """(label, buffer) of the buffers the forward hooks of ``module``'s tree read from their own state (their closures'
    cells, the globals they name, a partial's arguments, their object's fields), which ``hook_values`` compares at
    each call by their contents up to ``CONTENT_LIMIT`` bytes."""
    roots = hook_roots(torch, module) if isinstance(module, torch.nn.Module) else []
    return [(label, buf) for root, value in roots for label, _read, buf in _found(root, lambda: None, value)
            if not _tensor(buf)]


def kept_buffers(torch: Any, module: Any) -> list[tuple[Any, Any]]:
    """(buffer, a copy of its contents) of each buffer the forward hooks of ``module``'s tree keep in their state, for
    ``hook_state_kept`` to put back after an export (``put_back``). Why: an export runs each hook once,
    and a hook counting its calls in a NumPy array (``a[0] += 1``) was left advanced by compile's and each proof's
    export, where the container counts are put back (round 64)."""
    out: dict[int, tuple[Any, Any]] = {}
    for _label, buf in hook_buffers(torch, module):
        if id(buf) not in out and size(buf) <= TOTAL_LIMIT:
            out[id(buf)] = (buf, _raw(buf))
    return list(out.values())
