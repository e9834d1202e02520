"""A settings object a compiled module holds, replaced after compile by an equal copy (``m.cfg = copy.deepcopy(m.cfg)``):
proven equal and taken, with no export, where the guard refused it as a replaced object.

Why: the guard watches the fields ``forward`` read on the very object compile saw (``guard.Settings.held``: one put in
its place after compile, ``m.cfg = Cfg(t=3.0)``, ran the export's 2.0 silently in round 64d, so any other object is
refused). A deep copy (a checkpoint's config reloaded, a training loop's ``copy.deepcopy``) is another object with
the same values, and every compiled call after it was refused though eager computes what the program computes.

The proof, without exporting again: the old object still holds what compile saw (its watched fields, and the
containers the reads' watch holds in it), and the new one is of the same class and holds the same values, field by
field and item by item (plain values compared as the guard compares them, ``settings.same_value``; containers and
nested settings objects walked, those of ``__slots__`` slot by slot; anything else only where it is the very
object). A plain field ``forward`` did not
read (``Program.object_reads``) may differ. Then the guard watches the new object's fields in place of the old one's,
and the reads' watch is recorded again from the module now. Anything else is left to the guard, which refuses as
before: a field that differs, a tensor or array in the object (the program may hold the old tensor itself), an object
of a class of no settings (a module, a generator), one the tree still holds at another place too, a module with hooks.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from typing import Any

from .guard import _MISSING as UNSET
from .module_writes import MISSING
from .object_fields import object_field_dict
from .settings import SCALARS, same_value

#: how many containers and settings objects deep the proof walks, and how many items it looks at in all
_DEPTH = 8
_ITEMS = 10_000


def adopt_copies(torch: Any, guard: Any, program: Any) -> Any:
    """``guard`` watching the equal copies put in the place of its settings objects (``m.cfg = deepcopy(m.cfg)``)
    in place of the old ones, where each is proven equal (see the module's doc); ``guard`` itself otherwise."""
    settings = getattr(guard, "settings", None)
    if settings is None or settings.unchanged():
        return guard
    names, dicts, keys, objects = settings.held
    pairs = [(obj, d.get(key, MISSING)) for d, key, obj in zip(dicts, keys, objects) if d.get(key, MISSING) is not obj]
    if not pairs or any(now is MISSING for _was, now in pairs):
        return guard
    if guard.calls is not None and guard.calls.busy:   # (a hook's state is watched on its own objects: left alone)
        return guard
    old = {id(was) for was, _now in pairs}
    if any(d.get(key, MISSING) is obj and id(obj) in old for d, key, obj in zip(dicts, keys, objects)):
        return guard   # (still held at another place: its fields stay watched there)
    fresh = None
    if guard.reads is not None and guard.reads.first_changed() is not None:
        fresh = _reads_now(torch, guard)
        if not _reads_as_compiled(guard.reads, fresh):
            return guard
    read = _read_keys(program)
    mapping: dict[int, tuple[Any, Any]] = {}
    budget = [_ITEMS]
    compiled = _compiled_fields(settings)
    if not all(_equal_object(torch, was, now, read, mapping, _DEPTH, budget, compiled) for was, now in pairs):
        return guard
    copied = {id(d) for o, d in zip(*settings.owners) if id(o) in mapping}
    for d, key, was in zip(settings._now(), settings.keys, settings.values):   # (the fields of no copied object)
        if id(d) in copied or any(d is vars(o) for o, _d in zip(*settings.owners) if id(o) in mapping):
            continue   # (a copied object's: its copy was compared with compile's values above, not the old one)
        now = d.get(key, was if was is UNSET else MISSING)   # (a class's field forward read: still not set)
        if now is not was and not same_value(now, was):
            return guard
    if _held_elsewhere(settings, mapping) or _referenced_outside(torch, guard.root, mapping):
        return guard
    keep = [was for i, (was, _now) in mapping.items() if i in read]   # (named by id in the program's read sets)
    return _adopted(torch, guard, {i: now for i, (_was, now) in mapping.items()}, keep, fresh)


def _reads_now(torch: Any, guard: Any) -> Any:
    """The reads' watch recorded again from the module as it is now (the copies in their places)."""
    from .python_reads import record_reads

    r = guard.reads
    return record_reads(torch, guard.root, r.skip, r.live, r.read, r.held)


def _reads_as_compiled(was: Any, now: Any) -> bool:
    """Whether each place the reads' watch ``was`` recorded at compile holds, in the watch ``now`` recorded from the
    module as it is (the copies in place), what it held at compile: a container equal item by item to its copy then, a
    plain value equal, anything else the very object. Why not ``was.first_changed()``: it reads the places through the
    old objects the copy replaced, and a list of the old one appended to after the copy took its place
    (``old.extra.append(3)``) refused the copy, whose own list is compile's [1, 2] (round 71)."""
    from .python_reads import _deep_same

    if was.buffers is not None and was.buffers.first_changed() is not None:
        return False
    copies = dict(was.copies)
    at = {label: i for i, label in enumerate(now.labels)}
    for i, label in enumerate(was.labels):
        j = at.get(label)
        if j is None:
            return False
        v, before = now.values[j], was.values[i]
        if i in copies:
            if not _deep_same(v, copies[i]):
                return False
        elif v is not before and not (isinstance(v, SCALARS) and isinstance(before, SCALARS)
                                       and type(v) is type(before) and same_value(v, before)):
            return False
    return True


def _held_elsewhere(settings: Any, mapping: dict[int, tuple[Any, Any]]) -> bool:
    """Whether a place the guard watches outside the copied objects still holds one of the old objects the copy
    replaces (``m.b.inner`` being the old ``m.cfg.inner``): its fields stay watched on that object there."""
    inside = {id(d) for was, _now in mapping.values() if type(d := getattr(was, "__dict__", None)) is dict}
    inside |= {id(d) for o, d in zip(*settings.owners) if id(o) in mapping}
    _names, dicts, keys, objects = settings.held
    return any(id(obj) in mapping and id(d) not in inside and d.get(key, MISSING) is obj
               for d, key, obj in zip(dicts, keys, objects))


def _referenced_outside(torch: Any, root: Any, mapping: dict[int, tuple[Any, Any]]) -> bool:
    """Whether the globals of ``forward``'s code (the modules of the tree's classes and of the old objects' classes)
    or the closure of a ``forward`` still hold one of the old objects the copy replaces (``DEFAULT = Cfg(2.0)``,
    which ``forward`` may compare with: ``self.cfg is DEFAULT``, ``TABLE[id(self.cfg)]``). Why: the program took
    the branch of the old object's identity, which no field tells; an equal copy ran ``1.0 if self.cfg is DEFAULT
    else 5.0`` as 1.0 where eager gives 5.0 (round 65 review). Such an old object is left to the guard, which
    refuses the replaced one as before round 65. Not a walk of the heap (``gc.get_referrers``: 120 ms a copy): a
    global of another module that ``forward``'s helpers compare with is not seen."""
    olds = {id(was) for was, _now in mapping.values()}
    classes = [type(m) for m in root.modules()] if isinstance(root, torch.nn.Module) else [type(root)]
    classes += [type(was) for was, _now in mapping.values()]
    places: list[Any] = []
    for name in dict.fromkeys(c.__module__ for c in classes):
        d = getattr(sys.modules.get(name), "__dict__", None)
        if type(d) is dict:
            places += list(d.values())
    for c in dict.fromkeys(classes):
        for cell in getattr(getattr(c, "forward", None), "__closure__", None) or ():
            with contextlib.suppress(ValueError):   # (an empty cell)
                places.append(cell.cell_contents)
    return any(id(v) in olds for v in places)


def _read_keys(program: Any) -> dict[int, set[str]]:
    """{id of a settings object whose reads the export watched: the fields ``forward`` read}."""
    out: dict[int, set[str]] = {i: set() for i in getattr(program, "read_watched", ())}
    for i, key in getattr(program, "object_reads", ()):
        if i in out:   # (one read wholesale, ``vars(cfg)``, is no longer in ``read_watched``: all its fields compared)
            out[i].add(key)
    return out


def _compiled_fields(settings: Any) -> dict[int, dict[str, Any]]:
    """{id of a settings object whose fields the guard watches: {field: its value at compile}} (``UNSET``: not in
    its ``__dict__`` then, read from its class), slotted objects' slots too."""
    by_dict = {id(d): o for o, d in zip(*settings.owners)}
    out: dict[int, dict[str, Any]] = {}
    for d, key, value in zip(settings.dicts, settings.keys, settings.values):
        o = by_dict.get(id(d))
        if o is not None:
            out.setdefault(id(o), {})[key] = value
    _names, objects, keys, values = settings.slotted
    for o, key, value in zip(objects, keys, values):
        out.setdefault(id(o), {})[key] = value
    return out


def _equal_object(torch: Any, was: Any, now: Any, read: dict[int, set[str]], mapping: dict[int, tuple[Any, Any]],
                  depth: int, budget: list[int], compiled: dict[int, dict[str, Any]] | None = None) -> bool:
    """Whether the settings object ``now`` holds what ``was`` held at compile (its fields, walked); records ``mapping``
    {id(was): (was, now)} for each pair of objects found equal.

    The fields the guard watches are compared with their values at compile (``compiled``), not with ``was``'s now,
    and a field ``forward`` did not read is not compared. Why: the old object may change after the copy took its
    place (``old = m.cfg; m.cfg = copy.deepcopy(old); old.scale = 5.0``, or ``old.extra.append(3)`` of a list forward
    never reads), and the compiled model reads the copy alone, which holds what compile saw: each such call was
    refused as a replaced object though eager computed what the program computes (round 71)."""
    if now is was:
        return True
    if id(was) in mapping:   # (met before: a cycle, or one object held at two places of the copy too)
        return mapping[id(was)][1] is now
    if type(now) is not type(was) or depth <= 0:
        return False
    a, b = object_field_dict(torch, was), object_field_dict(torch, now)
    if a is None or b is None:
        return False
    at_compile = (compiled or {}).get(id(was))
    if at_compile:
        a = dict(a)
        for key, value in at_compile.items():
            if value is UNSET:
                a.pop(key, None)
            else:
                a[key] = value
    mapping[id(was)] = (was, now)
    fields = read.get(id(was))   # (a slotted object's reads are not recorded by name: all its slots compared)
    for key in list(dict.fromkeys([*a, *b])):
        x, y = a.get(key, MISSING), b.get(key, MISSING)
        if x is y:
            continue
        if (fields is not None and key not in fields and (at_compile is None or key not in at_compile)
                and not _holds_tensor(torch, x) and not _holds_tensor(torch, y)):
            continue   # (a field forward did not read, no tensor in it: no value of the program)
        if not _equal(torch, x, y, read, mapping, depth - 1, budget, compiled):
            del mapping[id(was)]
            return False
    return True


def _holds_tensor(torch: Any, v: Any) -> bool:
    """Whether ``v`` is a tensor or array, or a list, tuple or dict holding one at its top (the program may hold
    such a tensor itself: left to the guard, as before)."""
    items = list(v.values()) if type(v) is dict else v if type(v) in (list, tuple) else [v]
    return any(isinstance(x, torch.Tensor) or type(x).__name__ == "ndarray" for x in items)


def _scalar(v: Any) -> bool:
    return v is MISSING or isinstance(v, SCALARS)


def _equal(torch: Any, x: Any, y: Any, read: dict[int, set[str]], mapping: dict[int, tuple[Any, Any]], depth: int,
           budget: list[int], compiled: dict[int, dict[str, Any]] | None = None) -> bool:
    """Whether ``y`` holds what ``x`` holds, as ``_equal_object`` proves it."""
    budget[0] -= 1
    if x is y:
        return True
    if x is MISSING or y is MISSING or type(x) is not type(y) or depth <= 0 or budget[0] < 0:
        return False
    if isinstance(x, SCALARS):
        return same_value(x, y)
    if type(x) in (tuple, list):
        return len(x) == len(y) and all(_equal(torch, p, q, read, mapping, depth - 1, budget, compiled)
                                        for p, q in zip(x, y))
    if type(x) is dict:
        return (len(x) == len(y) and all(type(p) is type(q) and same_value(p, q) for p, q in zip(x, y))
                and all(_equal(torch, x[p], y[q], read, mapping, depth - 1, budget, compiled) for p, q in zip(x, y)))
    if type(x) in (set, frozenset):   # (item by item in iteration order: ``for v in cfg.vals`` runs in it, and
        return (len(x) == len(y)      # ``{1} == {True}``, ``{0.0} == {-0.0}``; ``{1, 9}`` and ``{9, 1}`` run apart)
                and all(isinstance(p, SCALARS) and same_value(p, q) for p, q in zip(x, y)))
    return _equal_object(torch, x, y, read, mapping, depth, budget, compiled)


def _adopted(torch: Any, guard: Any, mapping: dict[int, Any], keep: list[Any], fresh: Any = None) -> Any:
    """``guard`` with its settings watching ``mapping``'s new objects (their ``__dict__``) in place of the old ones,
    and the reads' watch recorded again from the module now; ``keep``: the old objects the program's read sets name
    by id, kept alive (``Settings.retired``) so that no new object takes such an id (a copy made at every step
    retires nothing more: the copies' ids are in no read set)."""
    from .python_reads import record_reads

    s = guard.settings
    olds = {id(o): o for o in s.owners[0] if id(o) in mapping}
    old_dicts = {id(d): vars(mapping[id(o)]) for o, d in zip(*s.owners) if id(o) in mapping}
    old_dicts.update({id(vars(o)): vars(mapping[i]) for i, o in olds.items()})
    dicts = [old_dicts.get(id(d), d) for d in s.dicts]
    owners = ([mapping.get(id(o), o) for o in s.owners[0]], [old_dicts.get(id(d), d) for d in s.owners[1]])
    names, hdicts, hkeys, hobjects = s.held
    held_dicts = [old_dicts.get(id(d), d) for d in hdicts]
    held_objects = [d.get(k, MISSING) if id(o) in mapping else o for d, k, o in zip(held_dicts, hkeys, hobjects)]
    retired = (*s.retired, *(o for o in keep if not any(o is r for r in s.retired)))
    snames, sobjects, skeys, svalues = s.slotted   # (a slotted object's slots: watched on its copy now)
    slotted = (snames, [mapping.get(id(o), o) for o in sobjects], skeys, svalues)
    settings = replace(s, dicts=dicts, owners=owners, held=(names, held_dicts, hkeys, held_objects),
                       retired=retired, slotted=slotted).refreshed()
    reads = guard.reads
    if reads is not None:
        reads = fresh or record_reads(torch, guard.root, reads.skip, reads.live, reads.read, reads.held)
    return replace(guard, settings=settings, reads=reads)
