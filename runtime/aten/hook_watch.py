"""The per-call check of the Python state forward hooks read (``hook_values``): by identity first, the fingerprint
only where something moved.

Why: ``HookValues.now`` fingerprints every hook's whole state (a walk with a ``repr`` per float and a kind test per
value) at every compiled call: ~74 us a call for a 3-layer MLP with three hooks per layer on a loaded 2-core CPU, the
largest part of the per-call checks. The fingerprint is a function of what its walk read: the objects each place
holds (a cell's contents, a global, an object's fields, a ``functools.partial``'s argument), the items of the
containers and the fields of the settings objects it walked into, and their types. Where every one of those is the
very object it was, the fingerprint is the one taken then, so the call compares identities alone (a few ``map``s over
flat lists); where one moved, the fingerprint is taken again and compared as before (``HookValues.changed``): an equal
one (a float set to an equal float, a list rebuilt alike) takes the new objects as the new watch.

No detection is lost: the watch holds every object the walk visited (``hook_state._fingerprint``'s ``visited``), and a
kind whose fingerprint may follow its contents without its identity moving (a byte buffer: a NumPy array, a
``bytearray``; a container of more items than the watch takes, or holding a tensor, which it would keep alive) leaves
its hook out of the watch (``watch_hooks``): that hook is fingerprinted at every call, as before. Held: strong
references to what the state held at the last fingerprint (not its tensors), until the next one.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, is_
from typing import Any

from .hook_state import own_fields, user_bases
from .module_containers import CONTAINERS
from .settings import SCALARS, settings_object, user_class

#: the items (container items, fields) one watch compares at most; past it, the hooks are fingerprinted per call
LIMIT = 16_384

_MISSING = object()
_CELL = attrgetter("cell_contents")
#: objects whose fingerprint is their kind or identity alone: no contents of theirs is walked
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


@dataclass
class Watch:
    """What a fingerprint of the hooks' state read, for ``holds``: the places' objects (``cells``, the globals by
    ``dicts``/``names``, the ``owners`` whose ``__dict__`` is read), every object walked and its type, and the
    contents of each container and field dict walked, flat."""

    cells: list[Any]
    cell_values: list[Any]
    dicts: list[dict]
    names: list[str]
    values: list[Any]
    owners: list[Any]
    owner_dicts: list[dict]
    objects: list[Any]
    types: list[type]
    sized: list[Any]     # each container and field dict walked, and its length then
    lens: list[int]
    sequences: list[Any]   # the lists, deques and sets among them; their items then, flat
    items: list[Any]
    maps: list[dict]       # the dicts (and field dicts); their keys and values then, flat
    keys: list[Any]
    map_values: list[Any]
    classes: list[type]   # each class walked, once per attribute its fingerprint took; the names and values then
    class_names: list[str]
    class_values: list[Any]

    def holds(self) -> bool:
        """Whether every object the fingerprint read is the very one it read (then the fingerprint is the same)."""
        try:
            if not all(map(is_, map(_CELL, self.cells), self.cell_values)):
                return False
        except ValueError:   # (a cell emptied: ``del n`` of a closure's variable)
            return False
        return (all(map(is_, map(dict.get, self.dicts, self.names, repeat(_MISSING)), self.values))
                and all(map(is_, map(vars, self.owners), self.owner_dicts))
                and list(map(type, self.objects)) == self.types
                and list(map(len, self.sized)) == self.lens   # (so the flat lists below line up)
                and all(map(is_, chain.from_iterable(self.sequences), self.items))
                and all(map(is_, chain.from_iterable(self.maps), self.keys))
                and all(map(is_, chain.from_iterable(map(dict.values, self.maps)), self.map_values))
                and all(map(is_, map(_class_get, self.classes, self.class_names), self.class_values)))


def watch_hooks(torch: Any, places: tuple, visited: list[list[Any]]) -> tuple[Watch | None, tuple[int, ...]]:
    """(one ``Watch`` of the hooks whose state identities can vouch for, the indices of the others), from each hook's
    ``places`` and what its fingerprint just walked (``visited``, per hook). Why per hook: a feature tap's list of
    tensors (no watch) beside a steering hook's config left every hook fingerprinted at every call; now the tap's
    alone. None for the watch only where the vouched hooks together pass ``LIMIT`` items (then all are fingerprinted)."""
    vouched = [i for i in range(len(places)) if watch(torch, (places[i],), visited[i]) is not None]
    together = watch(torch, tuple(places[i] for i in vouched), [v for i in vouched for v in visited[i]])
    others: dict[tuple, int] = {}   # (one hook on every layer: its places fingerprinted once, as its state is one)
    for i in range(len(places)):
        if together is None or i not in vouched:
            others.setdefault(tuple((kind, id(where), name) for kind, where, name in places[i]), i)
    return together, tuple(others.values())


def watch(torch: Any, places: tuple, visited: list[Any]) -> Watch | None:
    """The ``Watch`` of the hooks' ``places`` (``hook_values.HookValues.places``) and of ``visited`` (each object the
    fingerprint just taken walked, ``hook_state._fingerprint``'s), or None where identities cannot vouch for it (a
    byte buffer, a container holding a tensor, an empty cell, a place of a kind unknown here, more than ``LIMIT``
    items)."""
    w = Watch([], [], [], [], [], [], [], [], [], [], [], [], [], [], [], [], [], [], [])
    done: set[int] = set()

    def walked(v: Any) -> bool:
        """Watch ``v`` (an object the fingerprint read); False where its identity cannot vouch for it."""
        if id(v) in done or type(v) in SCALARS or type(v) is tuple or v is None:
            return True   # (immutable: its items, where walked, are ``visited`` themselves)
        done.add(id(v))
        w.objects.append(v)
        w.types.append(type(v))
        if isinstance(v, type) and user_class(v):   # (a class: the public plain attributes its fingerprint took,
            for c in user_bases(v):   # ``K.s``, round 64e; each where it is defined, a base's too, round 65)
                fields = own_fields(c)
                w.classes += [c] * len(fields)
                w.class_names += [k for k, _x in fields]
                w.class_values += [x for _k, x in fields]
                w.sized.append(c.__dict__)   # (a mappingproxy: the class's live namespace, its length a new
                w.lens.append(len(c.__dict__))   # attribute, one shadowing a base's too)
            return True
        if isinstance(v, SCALARS) or isinstance(v, (torch.Tensor, torch.nn.Module, *_OPAQUE)):
            return True
        if _buffer(v):   # (a byte buffer's fingerprint may follow its bytes: per call)
            return False
        if type(v) in CONTAINERS:
            if any(isinstance(x, torch.Tensor) for x in (v.values() if isinstance(v, dict) else v)):
                return False   # (a feature tap's record: watched here, it would keep the caller's tensors alive)
            return contents(v)
        if settings_object(torch, v):
            d = vars(v)
            if type(d) is not dict:
                return False
            w.owners.append(v)
            w.owner_dicts.append(d)
            return contents(d)
        return True   # (any other object: its kind or identity alone)

    def contents(c: Any) -> bool:
        w.sized.append(c)
        w.lens.append(len(c))
        if isinstance(c, dict):
            w.maps.append(c)
            w.keys += c.keys()
            w.map_values += c.values()
        else:
            w.sequences.append(c)
            w.items += c
        return len(w.items) + len(w.keys) <= LIMIT

    seen: set[tuple] = set()
    for kind, where, name in (p for hook in places for p in hook):
        key = (kind, id(where), name)
        if key in seen:   # (one hook registered on every layer: its cells once)
            continue
        seen.add(key)
        if kind == "cell":
            try:
                value = where.cell_contents
            except ValueError:
                return None
            w.cells.append(where)
            w.cell_values.append(value)
        elif kind == "global":
            value = where.get(name, _MISSING)
            w.dicts.append(where)
            w.names.append(name)
            w.values.append(value)
        elif kind == "object":
            value = vars(where)
            if type(value) is not dict:   # (a class's ``mappingproxy``: another object at each read)
                return None
            w.owners.append(where)
            w.owner_dicts.append(value)
            if id(value) not in done:
                done.add(id(value))
                if not contents(value):
                    return None
            value = list(value.values())   # (each field's object: walked below as the fingerprint's copy was)
        elif kind == "value":   # (a container a ``functools.partial`` binds)
            value = where
        else:
            return None
        for v in value if kind == "object" else (value,):
            if v is not _MISSING and not walked(v):
                return None
    if not all(map(walked, visited)):
        return None
    return w


def _class_get(cls: type, name: str) -> Any:
    """The attribute ``name`` a class defines itself now (``_MISSING`` where deleted)."""
    return cls.__dict__.get(name, _MISSING)


def _buffer(v: Any) -> bool:
    """Whether ``v`` exposes its bytes (a NumPy array, an object-dtype one too, ``bytearray``, ``array.array``,
    ``memoryview``): contents that change in place, which a fingerprint may read (round 64's byte values)."""
    if hasattr(type(v), "__array_interface__") or hasattr(type(v), "__array__"):
        return True
    try:
        memoryview(v).release()
    except (TypeError, ValueError):
        return False
    return True
