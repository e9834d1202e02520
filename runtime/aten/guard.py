"""The module's own tensors and submodules as ``compile`` found them, checked before every call.

Why: the program reads the module's parameters, buffers and tensor constants where they are, but it holds the
tensor objects it was built with (and views of them, device copies of CPU constants, host folds), and it was
exported for one module tree in one training mode. A change in place (``p.copy_()``, ``load_state_dict``) is
seen; a *replaced* tensor was not: ``p.data = t``, ``m.w = nn.Parameter(...)``, ``m.buf = torch.zeros(...)``
left the program reading the old tensor (silently stale), ``m.to(torch.float64)`` / ``m.half()`` failed deep in
a kernel, ``m.to("meta")`` or ``del m.w`` ran on the old values, a swapped submodule, a parametrization, broken
weight tying or ``m.train()`` after an eval compile ran the export's code, not eager's;
so did a forward hook added or removed after compile, or a ``forward`` patched (``Calls``), and a plain setting
forward read as a constant (``m.temperature = 0.5``: ``Settings``).

The check is one loop over plain tuples recorded at compile (no ``named_parameters()`` walk): per submodule, its
slot in its parent, its class and its training flag; per module tensor the program reads (each name of a tied
one), the tensor in its owner's ``_parameters`` / ``_buffers`` / ``__dict__``, its ``data_ptr()``, shape, strides and dtype. When all
match, the call runs. Otherwise ``changes`` says what changed: a tensor replaced by one laid out alike (dtype,
shape, strides, device, ``requires_grad``) is *rebound* (``rebound_program``: the executor is built again over
the new tensors, so arena views, moved constants and host folds are remade, and a captured CUDA graph is
captured again, ``needs_recapture``); anything else is an ``AtenExecutorError`` naming the attribute and saying
to compile again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import attrgetter, is_
from typing import Any

from .errors import AtenExecutorError
from .object_fields import object_fields, slot_names
from .program import Program, strides_agree
from .python_reads import record_reads
from .settings import SCALARS
from .settings import function_value as _function_value
from .settings import plain as _plain
from .settings import same_value as _same_value
from .settings import settings_object as _settings_object
from .settings import value_text as _value_text
from .subclass import difference

_STORES = ("_parameters", "_buffers")


@dataclass(frozen=True)
class Slot:
    """One name the program's tensor ``tid`` has in the module (``l.weight``): where it lives and what it was."""

    name: str
    tid: str
    owner: Any         # the submodule holding it
    attr: str
    store: dict        # the owner's dict that held it: ``_parameters``, ``_buffers`` or its ``__dict__``
    tensor: Any        # the tensor compile saw there
    ptr: int           # its data_ptr() then
    meta: tuple        # its ``_meta`` then (``p.data = t`` changes it on the same object)


@dataclass(frozen=True)
class Held:
    """A tensor the program reads that a module holds inside a container attribute (``self.tables = [t]``,
    ``self.d = {"a": t}``): ``path`` the container chain from the owner's ``__dict__`` (each step: the container
    and the key in it). Export lifts it as a constant like a plain tensor attribute; replacing it
    (``m.tables[0] = t2``, ``m.tables = [t2]``) left the program reading the old one. Not rebound: refused."""

    name: str
    path: tuple[tuple[Any, Any], ...]
    tensor: Any
    ptr: int
    meta: tuple
    #: what the program holds of it, for the refusal of one replaced
    what: str = "a constant held in a list, tuple or dict attribute or a settings object's field"

    def unchanged(self) -> bool:
        """Whether the path, followed through the containers there now, still ends at the tensor compile saw.

        Through the containers there *now*: torchvision's ``AnchorGenerator`` builds its ``cell_anchors`` list again
        in every forward (``[a.to(dtype, device) for a in ...]``, the same tensors), and a check of the containers'
        identities refused the compiled call after any eager one."""
        t = self.path[0][0]
        for _container, key in self.path:
            t = _item(t, key)
        return t is self.tensor and t.data_ptr() == self.ptr and _meta(t)[:4] == self.meta[:4]


@dataclass(frozen=True)
class Calls:
    """How ``module(...)`` reaches code for each module of the tree (root first), as compile saw it: its forward
    pre-hooks and hooks (the handles' ids, unique for the process: a hook removed and another added shows), a
    ``forward`` set on the instance, its class's ``forward``; and torch's global module hooks
    (``register_module_forward_hook``). Export traced the hooks there then into the program; one added, removed or
    a ``forward`` patched after compile ran in eager only, the program silently the old code.

    Plain lists read with ``map`` (no Python call per module): ~40 us per call for 226 modules."""

    names: tuple[str, ...]
    dicts: list[dict]                  # per module: its pre-hook dict, its hook dict; then the global two
    keys: list[tuple]                  # the handle ids in each then
    lens: list[int]                    # len of each then (the fast path's first look)
    busy: list[tuple[dict, tuple]]     # (dict, its keys then) of those not empty then (a hook swapped for another)
    own: list[dict]                    # per module: its ``__dict__``
    own_forward: list[Any]             # ``vars(m).get("forward")`` then
    classes: list[type]                # the tree's classes, once each
    class_forward: list[Any]           # their ``forward`` then

    def unchanged(self) -> bool:
        """Whether every hook dict holds the handles it held, and every forward is the one compile saw."""
        return (list(map(len, self.dicts)) == self.lens and all(tuple(d) == k for d, k in self.busy)
                and all(map(is_, map(dict.get, self.own, _FORWARD * len(self.own)), self.own_forward))
                and all(map(is_, map(_class_forward, self.classes), self.class_forward)))

    def changed(self) -> str | None:
        """What changed, in words (None: nothing)."""
        for k, (d, keys) in enumerate(zip(self.dicts, self.keys)):
            if tuple(d) != keys:
                kind = "pre-hooks" if k % 2 == 0 else "hooks"
                if k // 2 == len(self.names):
                    return (f"torch's global module forward {kind} (torch.nn.modules.module.register_module_forward_"
                            f"{'pre_' if k % 2 == 0 else ''}hook) changed after compile")
                return f"the forward {kind} of {self.names[k // 2]} changed after compile"
        for name, own, forward in zip(self.names, self.own, self.own_forward):
            if own.get("forward") is not forward:
                return f"{name}.forward was replaced after compile"
        for cls, forward in zip(self.classes, self.class_forward):
            if _class_forward(cls) is not forward:
                return f"{cls.__name__}.forward was replaced after compile"
        return None


_FORWARD = ["forward"]
_class_forward = attrgetter("forward")


def record_calls(torch: Any, root_name: str, owners: Mapping[str, Any]) -> Calls:
    """``Calls`` of the module tree ``owners`` (path -> module, the root at "") and torch's global hooks."""
    names = tuple(f"{root_name}.{path}" if path else root_name for path in owners)
    mods = list(owners.values())
    glob = torch.nn.modules.module
    dicts = [d for m in mods for d in (m._forward_pre_hooks, m._forward_hooks)] + [
        glob._global_forward_pre_hooks, glob._global_forward_hooks]
    keys = list(map(tuple, dicts))
    own = list(map(vars, mods))
    classes = list(dict.fromkeys(map(type, mods)))
    return Calls(names, dicts, keys, list(map(len, dicts)), [(d, k) for d, k in zip(dicts, keys) if k], own,
                 [d.get("forward") for d in own], classes, list(map(_class_forward, classes)))


_MISSING = object()


@dataclass(frozen=True)
class Settings:
    """The plain values (numbers, strings, None, tuples of them: ``self.scale``, a conv's ``padding``, a dropout's
    ``p``) under public names in each module's ``__dict__`` as compile saw them, torch's own ``nn.Module`` fields
    aside. Export bakes
    what ``forward`` made of them into the program; one set after compile (``m.temperature = 0.5``) changed eager's
    result and silently not the program's. Read per call by identity (``map``); a value set again to an equal one
    (another object) is recorded again, not refused."""

    names: tuple[str, ...]     # "Net.a.scale"
    dicts: list[dict]          # the owner's ``__dict__``
    keys: list[str]
    values: list[Any]
    #: each settings object whose fields are watched, and its ``__dict__`` then: ``cfg.__dict__ = {"t": 3.0}``
    #: replaced the dict the fields are read from, so the old one's values were compared, silently (round 64d)
    owners: tuple[list[Any], list[dict]] = ([], [])
    #: (names, dicts, keys, objects) of each place a watched settings object is held at (``self.cfg``): one put
    #: there after compile (``m.cfg = Cfg(t=3.0)``) left the old one's fields watched, and the export's 2.0 ran
    #: silently (round 64d); now refused, naming it, as the fields watched are another object's
    held: tuple[list[str], list[dict], list[Any], list[Any]] = ([], [], [], [])
    #: the settings objects an equal copy took the place of (``settings_copies``), kept alive: the program's read
    #: sets name them by id, which a new object must not take
    retired: tuple[Any, ...] = ()
    #: (names, objects, slot names, values) of the plain values in ``__slots__`` of the settings-like objects with
    #: no ``__dict__`` a module holds (``slots_fields``): unwatched, ``m.cfg.x = 3.0`` ran the export's 2.0 (round 66)
    slotted: tuple[list[str], list[Any], list[str], list[Any]] = ([], [], [], [])
    #: {id of a held settings object: its text at compile (``held_text``)}; why: a refusal of a replaced one wrote
    #: the old object's text at refusal, whose fields may have changed since ("... _Cfg70(scale=5.0) at compile ...
    #: set it back to _Cfg70(scale=5.0)" for a 5.0 set after compile: review of round 70)
    held_texts: Mapping[int, str] = field(default_factory=dict)

    def held_text(self, was: Any) -> str:
        """``was``'s text at compile where it is a held settings object recorded then, else its text now."""
        text = self.held_texts.get(id(was)) if any(was is o for o in self.held[3]) else None
        return text if text is not None else _value_text(was)

    def unchanged(self) -> bool:
        return (all(map(is_, map(dict.get, self.dicts, self.keys, repeat(_MISSING)), self.values))
                and all(map(is_, map(vars, self.owners[0]), self.owners[1]))
                and all(map(is_, map(dict.get, self.held[1], self.held[2], repeat(_MISSING)), self.held[3]))
                and all(map(is_, map(getattr, self.slotted[1], self.slotted[2], repeat(_MISSING)), self.slotted[3])))

    def _now(self) -> list[dict]:
        """Each value's dict now: a settings object's ``__dict__`` as it is now (replaced since, maybe)."""
        if all(map(is_, map(vars, self.owners[0]), self.owners[1])):
            return self.dicts
        moved = {id(d): vars(o) for o, d in zip(*self.owners)}
        return [moved.get(id(d), d) for d in self.dicts]

    def values_now(self) -> list[Any]:
        """Each watched value as it is now (``_MISSING`` where deleted): the state a refuted proof remembers
        (``CompiledModule._prove_settings``)."""
        return list(map(dict.get, self._now(), self.keys, repeat(_MISSING)))

    def changed(self) -> str | None:
        """The first value no longer equal to compile's, in words (None: all equal, maybe other objects)."""
        first = self.first_changed()
        if first is None:
            return None
        name, now, was = first
        return (f"{name} was deleted" if now is _MISSING
                else f"{name} is {_value_text(now)} now, {self.held_text(was)} at compile")

    def first_changed(self) -> tuple[str, Any, Any] | None:
        """(name, value now, value at compile) of the first value no longer equal to compile's, named at a place that
        holds its object now (``_place_now``)."""
        for name, d, key, was in zip(self.names, self._now(), self.keys, self.values):
            now = d.get(key, _MISSING)
            if now is not was and not _same_value(now, was) and (place := self._place_now(name)) is not None:
                return place, now, was
        for name, d, key, was in zip(*self.held):
            now = d.get(key, _MISSING)
            if now is not was:
                return name, now, was
        for name, obj, key, was in zip(*self.slotted):
            now = getattr(obj, key, _MISSING)
            if now is not was and not _same_value(now, was) and (place := self._place_now(name)) is not None:
                return place, now, was
        return None

    def _place_now(self, name: str) -> str | None:
        """``name`` (a watched field's path at compile, ``Net.a.cfg.scale``) as a path that holds the field's object
        now; None where no watched place holds it any more. Why: a settings object held at two places (``m.a.cfg is
        m.b.cfg``) has its fields recorded under the first; after ``m.a.cfg`` was replaced by a copy, a change made
        through ``m.b.cfg`` was named ``a.cfg.scale``, whose value had not changed (round 70). The deepest place on
        the path that no longer holds its object is replaced by another watched place that does. None: the object is
        held nowhere the guard watches, and the place it left is refused as replaced (``held``) instead."""
        names, dicts, keys, objects = self.held

        def holds(i: int) -> bool:
            return dicts[i].get(keys[i], _MISSING) is objects[i]

        def on(path: str) -> list[int]:   # (the watched places on ``path``: its own and those above it)
            return [i for i, h in enumerate(names) if path == h or path.startswith(h + ".")]

        broken = [i for i in on(name) if not holds(i)]
        if not broken:
            return name
        j = max(broken, key=lambda i: len(names[i]))
        alt = next((names[i] for i in range(len(names))
                    if objects[i] is objects[j] and i != j and all(map(holds, on(names[i])))), None)
        return None if alt is None else alt + name[len(names[j]):]

    def refreshed(self) -> Settings:
        dicts = self._now()
        slotted = (*self.slotted[:3], list(map(getattr, self.slotted[1], self.slotted[2], repeat(_MISSING))))
        return replace(self, dicts=dicts, values=list(map(dict.get, dicts, self.keys, repeat(_MISSING))),
                       owners=(self.owners[0], list(map(vars, self.owners[0]))), slotted=slotted,
                       held_texts=held_texts(self.held[3]))


def record_settings(torch: Any, root_name: str, owners: Mapping[str, Any],
                    forward_writes: frozenset[tuple[int, str]] = frozenset(),
                    object_reads: frozenset[tuple[int, str]] = frozenset(),
                    read_watched: frozenset[int] = frozenset()) -> Settings:
    """``Settings`` of the module tree ``owners`` (path -> module, the root at ""): each module's plain public values,
    and those of each settings object a module holds (once each: every layer of a transformers model holds the one
    ``config``, whose ``output_hidden_states`` forward reads). Not the attributes ``forward`` itself set while it was
    exported (``forward_writes``): each eager call sets them again. Of a settings object whose reads the export
    watched (``read_watched``), only the values it read (``object_reads``): one forward did not read baked nothing
    (a classifier's ``config.problem_type``, set by an eager call with labels, read only with labels)."""
    from .module_writes import module_fields

    internal = module_fields(torch)   # (training is guarded apart)
    names: list[str] = []
    dicts: list[dict] = []
    keys: list[str] = []
    values: list[Any] = []
    seen: set[int] = set()
    watched_objects: set[int] = set()   # (the settings objects whose values are watched)
    owned: tuple[list[Any], list[dict]] = ([], [])
    held: tuple[list[str], list[dict], list[Any], list[Any]] = ([], [], [], [])
    slotted: tuple[list[str], list[Any], list[str], list[Any]] = ([], [], [], [])

    def add(prefix: str, d: dict, key: str, v: Any, limit: int) -> bool:
        """Watch ``d[key]`` (``v``) unless ``limit`` values are watched already (then False)."""
        if len(keys) >= limit:
            return False
        names.append(f"{prefix}.{key}")
        dicts.append(d)
        keys.append(key)
        values.append(v)
        return True

    by_owner: dict[int, set[str]] = {}
    for i, key in object_reads:
        by_owner.setdefault(i, set()).add(key)

    def take(prefix: str, d: dict, skip: set[str] | frozenset[str], limit: int, owner: int = 0,
             cls: type | None = None) -> None:
        if cls is not None and owner in read_watched:   # (a read field the instance does not hold: the class's)
            for key in sorted(by_owner.get(owner, ()) - d.keys()):
                if not key.startswith("_") and _plain(getattr(cls, key, _MISSING)) and not add(prefix, d, key,
                                                                                             _MISSING, limit):
                    return
        for key, v in d.items():
            if key in skip or (key.startswith("_") and not _private_read(cls, owner, key, object_reads)) or (
                    owner, key) in forward_writes:   # (a library's private flags, ``_has_warned``, change under
                continue                             # eager calls, not by the user)
            if owner in read_watched and (owner, key) not in object_reads:   # (no module id is in read_watched)
                continue
            if _plain(v):
                if not add(prefix, d, key, v, limit):
                    return
                if _fields_of_scalar(v) and id(v) not in seen:   # (``m.f = F(2.0)``; ``m.f.k = 3.0``: round 66)
                    seen.add(id(v))
                    owned[0].append(v)
                    owned[1].append(vars(v))
                    take(f"{prefix}.{key}", vars(v), frozenset(), len(keys) + _OBJECT_VALUES, id(v))
            elif _function_value(v):   # (a function ``forward`` calls; a partial's keywords as its settings)
                if not add(prefix, d, key, v, limit):
                    return
                if isinstance(v, functools.partial) and type(v.keywords) is dict and id(v) not in seen:
                    seen.add(id(v))
                    take(f"{prefix}.{key}.keywords", v.keywords, frozenset(), len(keys) + _OBJECT_VALUES, id(v))
            elif id(v) in watched_objects:   # (one held by a second module too, ``m.a.cfg is m.b.cfg``: its place
                for column, item in zip(held, (f"{prefix}.{key}", d, key, v)):   # there watched as well;
                    column.append(item)   # ``m.b.cfg = Cfg(3.0)`` ran the export's 2.0 silently, round 64e)
            elif id(v) not in seen and slots_fields(torch, v):   # (round 66)
                seen.add(id(v))
                for column, item in zip(held, (f"{prefix}.{key}", d, key, v)):   # (replaced: refused)
                    column.append(item)
                for slot, x in slots_fields(torch, v):
                    for column, item in zip(slotted, (f"{prefix}.{key}.{slot}", v, slot, x)):
                        column.append(item)
            elif limit > len(keys) and _settings_object(torch, v) and id(v) not in seen:
                seen.add(id(v))
                if type(vars(v)) is dict:
                    owned[0].append(v)
                    owned[1].append(vars(v))
                before = len(keys)
                take(f"{prefix}.{key}", vars(v), frozenset(), len(keys) + _OBJECT_VALUES, id(v), type(v))
                if len(keys) > before:   # (one whose values forward read: replaced, the program may be another)
                    watched_objects.add(id(v))
                    for column, item in zip(held, (f"{prefix}.{key}", d, key, v)):
                        column.append(item)

    for path, m in owners.items():
        take(f"{root_name}.{path}" if path else root_name, vars(m), internal, 1 << 62, id(m))
    return Settings(tuple(names), dicts, keys, values, owned, held, slotted=slotted, held_texts=held_texts(held[3]))


#: the longest text of a settings object a refusal quotes (a config with long fields: its start names it)
_HELD_TEXT = 300


def held_texts(objects: list[Any]) -> dict[int, str]:
    """{id: text} of each held settings object, as a refusal of a replaced one quotes it (``Settings.held_text``)."""
    out: dict[int, str] = {}
    for o in objects:
        if id(o) not in out:
            text = _value_text(o)
            out[id(o)] = text if len(text) <= _HELD_TEXT else text[:_HELD_TEXT] + "..."
    return out


def slots_fields(torch: Any, v: Any, limit: int = 64) -> list[tuple[str, Any]]:
    """(slot, value) of the plain values (``settings.plain``) in the ``__slots__`` of ``v``, an object of a class of
    the user's with no ``__dict__`` (``@dataclass(slots=True)``, ``__slots__ = ("x",)``), at most ``limit``; empty
    for any other value. Why: the settings watch reads an object's ``__dict__`` (``settings.settings_object``), and
    such an object has none: ``m.cfg.x = 3.0`` after compile ran the export's 2.0 silently (round 66). All its plain
    slots are watched (a read of one through its class's descriptor is not recorded by name)."""
    from .settings import user_class

    cls = type(v)
    if hasattr(v, "__dict__") or isinstance(v, (torch.Tensor, torch.nn.Module, type, tuple)) or not user_class(cls):
        return []
    out: list[tuple[str, Any]] = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            x = getattr(v, slot, _MISSING) if not slot.startswith("__") else _MISSING
            if x is not _MISSING and _plain(x) and len(out) < limit:
                out.append((slot, x))
    return out


def _fields_of_scalar(v: Any) -> bool:
    """Whether ``v`` is a scalar of a subclass of the user's holding fields of its own (``f = F(2.0); f.k = 1.0``).
    Why: the guard watches a plain value by identity, and ``f.k = 3.0`` set on the same object after compile changed
    eager's ``m.f.k * m.f`` and silently not the program's (round 66): its fields are watched as a settings
    object's."""
    return type(v) not in SCALARS and isinstance(v, SCALARS) and type(getattr(v, "__dict__", None)) is dict


def _private_read(cls: type | None, owner: int, key: str, object_reads: frozenset[tuple[int, str]]) -> bool:
    """Whether ``key``, a private field (``_x``) of a settings object of the user's own class (not an installed
    package's: a transformers config's ``_attn_implementation_internal`` stays as round 65 watched it), is one the
    export saw ``forward`` read, through a property or a method (``return self._x``). Why: private fields were never
    watched, so ``cfg._x = 3.0`` after compile ran the export's 2.0 silently (round 66)."""
    from .code_names import _installed

    return (cls is not None and not key.startswith("__") and (owner, key) in object_reads
            and not _installed(cls))


def forward_sets(torch: Any, module: Any, program: Program) -> tuple[tuple[str, Any, str, Any, Any], ...]:
    """(name as the guard spells it, module, attribute, value before the export, value after) of each plain attribute
    of ``module``'s tree that ``forward`` set to another value while it was exported (``self.n += 1``,
    ``self.mult = 2`` from None). Why: an eager call leaves that value behind, and the next eager call starts
    from it; the program ran once from the value before. Values that are no plain setting (a tensor, a list) and
    values set to what they were are left out, as before."""
    from .module_writes import MISSING

    return tuple((label, owner, name, before, after)
                 for label, owner, name, before, after in public_forward_values(torch, module, program)
                 if _plain(after) and (before is MISSING or (_plain(before) and not _same_value(before, after))))


def public_forward_values(torch: Any, module: Any, program: Program) -> list[tuple[str, Any, str, Any, Any]]:
    """(name as the guard spells it, module, attribute, value before the export, value after) of each public attribute
    of ``module``'s own tree among ``program.forward_values``: what ``forward_sets`` (plain values) and
    ``sets.fixed_sets`` (the others) take their part of."""
    if not isinstance(module, torch.nn.Module):
        return []
    paths = {id(m): path for path, m in module.named_modules(remove_duplicate=False)}
    root = type(module).__name__
    return [(f"{root}.{paths[id(owner)]}.{name}" if paths[id(owner)] else f"{root}.{name}", owner, name, before, after)
            for owner, name, before, after in program.forward_values
            if id(owner) in paths and not name.startswith("_")]


def widened(torch: Any, guard: ModuleGuard, program: Program, other: Program) -> ModuleGuard:
    """``guard`` watching also the settings-object values that ``other`` (the module exported again, with arguments
    compile left out) read, and leaving alone what compile's ``forward`` set itself. Why: a call taken because
    that export gave compile's program (``CompiledModule._prove``) may follow a path of ``forward`` that reads a
    config value compile's path did not; changed later, eager's call with those arguments follows it, the program
    not. Recorded now, after the guard found everything else as compile saw it. What only ``other``'s path sets
    stays watched: calls without those arguments read it as compile's did (unwatched, ``m.temperature = 0.3`` after a
    proof whose path sets ``self.temperature`` ran the program's baked 0.5 silently)."""
    owners = {"": guard.root, **{path: child for path, _p, _a, child, _c, _t in guard.modules}}
    settings = record_settings(torch, guard.root_cls.__name__, owners, program.forward_writes,
                               program.object_reads | other.object_reads, program.read_watched | other.read_watched)
    return replace(guard, settings=settings)


def module_tensor_ids(torch: Any, guard: ModuleGuard) -> frozenset[int]:
    """The ids of every tensor ``guard``'s module tree holds now: parameters, buffers, plain tensor attributes and
    tensors in list, tuple or dict attributes. Why: a proof (``callform.same_export``) must not take one of them for
    another that holds the same bits now (the program reads the object, not its values)."""
    owners = {"": guard.root, **{path: child for path, _p, _a, child, _c, _t in guard.modules}}
    return frozenset([*(id(t) for _n, t in _named_tensors(torch, guard.root, owners)),
                      *(id(t) for _n, _p, t in _held_tensors(torch, owners))])


#: at most this many plain values are watched per settings object (a config holds a few dozen)
_OBJECT_VALUES = 512


def _item(container: Any, key: Any) -> Any:
    """``container[key]`` (a settings object's field, ``key`` a ``_Field``: read from its ``__dict__``), or None where
    it is no longer there."""
    if type(key) is _Field:
        d = getattr(container, "__dict__", None)
        if type(d) is dict:
            return d.get(key.name)
        return getattr(container, key.name, None) if key.name in slot_names(type(container)) else None
    try:
        return container[key]
    except (KeyError, IndexError, TypeError):
        return None


@dataclass(frozen=True)
class _Field:
    """A step of a ``Held`` path into a settings object's field (``self.cfg.t``)."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ModuleGuard:
    """What ``compile`` saw: the root module's class and training flag, ``modules`` (path, parent, attribute,
    submodule, its class, training flag) below it, and the ``slots`` of the module tensors the program reads.
    ``fast`` holds the same as flat lists for ``unchanged``: one ``map`` each, no Python loop per tensor (~180 us
    for 300 parameters in 150 submodules on a loaded 2-core CPU: ~65 us identities and ``data_ptr()``, the rest
    shapes, strides and dtypes, which catch a layout changed where it stands, ``b.t_()``)."""

    root: Any
    root_cls: type
    root_training: bool
    modules: tuple[tuple[str, Any, str, Any, type, bool], ...]
    slots: tuple[Slot, ...]
    data_ptr: Any      # ``torch.Tensor.data_ptr`` unbound: half the cost of ``p.data_ptr()`` on a Parameter
    stride: Any        # ``torch.Tensor.stride`` unbound
    held: tuple[Held, ...] = ()   # module tensors the program reads inside a list, tuple or dict attribute
    calls: Calls | None = None    # the hooks and forwards the export traced
    settings: Settings | None = None   # the plain values forward read as constants
    reads: Any = None   # ``python_reads.PythonReads``: globals, closures, class attributes, held objects' fields
    fast: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        m, s = self.modules, self.slots
        object.__setattr__(self, "fast", (
            [p._modules for _a, p, _b, _c, _d, _e in m], [a for _a, _p, a, _c, _d, _e in m],
            [c for _a, _p, _b, c, _d, _e in m], [t for _a, _p, _b, _c, _d, t in m], [k for _a, _p, _b, _c, k, _e in m],
            [x.store for x in s], [x.attr for x in s], [x.tensor for x in s], [x.ptr for x in s],
            [x.meta[1] for x in s], [x.meta[2] for x in s], [x.meta[0] for x in s], [x.meta[4] for x in s],
            _layout_check([x.tensor for x in s], [x.meta[1] for x in s], [x.meta[2] for x in s])))

    def unchanged(self) -> bool:
        """Whether every submodule and tensor is still the one compile saw (the per-call fast path)."""
        if type(self.root) is not self.root_cls or self.root.training is not self.root_training:
            return False
        dicts, attrs, children, flags, classes, stores, names, tensors, ptrs, shapes, strides, dtypes, grads, layout = (
            self.fast)
        return (all(map(is_, map(dict.get, dicts, attrs), children)) and list(map(_training, children)) == flags
                and all(map(is_, map(type, children), classes)) and all(map(is_, map(dict.get, stores, names), tensors))
                and list(map(self.data_ptr, tensors)) == ptrs
                and ((layout is not None and layout(*tensors)) or (
                    list(map(_size, tensors)) == shapes and list(map(self.stride, tensors)) == strides
                    and list(map(_dtype, tensors)) == dtypes and list(map(_requires_grad, tensors)) == grads))
                and all(map(Held.unchanged, self.held)) and (self.calls is None or self.calls.unchanged())
                and (self.settings is None or self.settings.unchanged())
                and (self.reads is None or self.reads.unchanged()))


_training = attrgetter("training")


def training_now(guard: ModuleGuard) -> tuple[bool, ...]:
    """The training flags of the root and each submodule the guard holds, as they are now (``training_then``'s
    order)."""
    return (guard.root.training, *map(_training, guard.fast[2]))


def training_then(guard: ModuleGuard) -> tuple[bool, ...]:
    """The training flags compile saw (or a proof took since: ``with_training_now``)."""
    return (guard.root_training, *guard.fast[3])


def with_training_now(guard: ModuleGuard) -> ModuleGuard:
    """``guard`` taking each module's training flag as it is now (``CompiledModule._prove_training``: the program an
    export in these modes gives is compile's)."""
    return replace(guard, root_training=guard.root.training,
                   modules=tuple((p, a, b, c, k, c.training) for p, a, b, c, k, _t in guard.modules))
# the layout of a tensor can change on the same object at the same address (``b.t_()``, ``p.data = p.data[:2]``,
# ``p.data = p.data.view(torch.int32)``): the views and kernels built at compile would read it the old way
_size, _dtype = attrgetter("shape"), attrgetter("dtype")
# eager's kernels read a weight's ``requires_grad`` even under no_grad (``matmul`` folds a 3-D operand into one ``mm``
# when its matrix operand requires grad), and the lowering chose its kernels by it at build time
_requires_grad = attrgetter("requires_grad")


def _layout_check(tensors: list[Any], shapes: list[Any], strides: list[Any]) -> Any:
    """One C++ call that says whether each of ``tensors`` still has these sizes and strides, and the dtype, device
    and ``requires_grad`` it has now (and its dispatch keys): torch's own ``TensorGuards`` (Dynamo's). True implies
    what ``ModuleGuard.unchanged``'s four maps check; where it says False (a TLS state such as inference mode
    changes the keys it compares) the maps decide. Why: ~25 us for resnet50's 320 tensors where the maps cost
    ~145 us (round 35's ``requires_grad`` map alone ~25 us). None where torch has no such class: the maps alone."""
    try:
        import torch
        from torch._C._dynamo.guards import TensorGuards

        def made() -> Any:
            return TensorGuards(*tensors, dynamic_dims_sizes=[list(s) for s in shapes],
                                dynamic_dims_strides=[list(s) for s in strides]).check

        plain = made()
        with torch.inference_mode():   # (a second one for calls under inference mode, where keys differ)
            inference = made()
    except Exception:  # noqa: BLE001 - an older or trimmed torch (no Dynamo), another signature: the maps stand
        return None
    on = torch.is_inference_mode_enabled
    return lambda *now: (inference if on() else plain)(*now)


def record(torch: Any, module: Any, program: Program) -> ModuleGuard | None:
    """The guard of ``program`` compiled from ``module`` (None for an ``ExportedProgram``: no module to watch)."""
    if not isinstance(module, torch.nn.Module):
        return None
    modules = []
    for path, child in module.named_modules(remove_duplicate=False):
        if path:
            parent_path, _, attr = path.rpartition(".")
            modules.append((path, module.get_submodule(parent_path), attr, child, type(child), child.training))
    owners = {"": module, **{path: child for path, _p, _a, child, _c, _t in modules}}
    by_id = {id(w): tid for tid, w in program.weights.items() if isinstance(w, torch.Tensor)}
    slots = []
    for name, t in _named_tensors(torch, module, owners):
        tid = by_id.get(id(t))
        if tid is not None:
            path, _, attr = name.rpartition(".")
            slots.append(Slot(name, tid, owners[path], attr, _store(owners[path], attr), t, t.data_ptr(), _meta(t)))
    held = tuple(Held(name, path, t, t.data_ptr(), _meta(t)) for name, path, t in _held_tensors(torch, owners)
                 if id(t) in by_id)
    held += tuple(Held(name, ((store, attr),), t, t.data_ptr(), _meta(t),
                       "a small integer buffer whose value the export made a constant")
                  for name, store, attr, t in program.constant_buffers)
    return ModuleGuard(module, type(module), module.training, tuple(modules), tuple(slots), torch.Tensor.data_ptr,
                       torch.Tensor.stride, held, record_calls(torch, type(module).__name__, owners),
                       record_settings(torch, type(module).__name__, owners, program.forward_writes,
                                       program.object_reads, program.read_watched),
                       record_reads(torch, module, live=frozenset(by_id),
                                    read=frozenset(i for i, _where in program.value_reads),
                                    held=read_tensors(program)))


def read_tensors(program: Program) -> tuple[tuple[str, Any], ...]:
    """(where read, tensor) of each tensor ``forward`` read as Python numbers at export that is still alive (its weak
    reference in ``Program.value_objects``): ``byte_values.find`` watches each wherever it is held. Why: one no walk
    of the module's state reaches (a global only a lambda hook names, ``float(H)``; one more than five objects deep
    in a settings object) was warned of alone, and a change in place ran the export's numbers silently (round 67)."""
    where = dict(program.value_reads)
    out = []
    for i, ref in program.value_objects:
        t = ref()
        if t is not None and id(t) == i and i in where:
            out.append((where[i], t))
    return tuple(out)


_MODULE_DICTS = frozenset({"_parameters", "_buffers", "_modules"})


def _held_tensors(torch: Any, owners: Mapping[str, Any], depth: int = 3) -> list[tuple[str, tuple, Any]]:
    """(name, container path, tensor) of each tensor inside a list, tuple or dict attribute of a module of the tree,
    or a field of a settings object there (``self.cfg.t``, ``self.cfg._t``), up to ``depth`` containers deep (``m.tables[0]``).
    Why settings objects: export lifts ``x * self.cfg.t`` as a constant, and ``m.cfg = copy.deepcopy(m.cfg)`` (or
    ``m.cfg.t = t2``) after compile left the program reading the old tensor: a write in place of the new one then
    changed eager's result and silently not the program's (round 65b)."""
    out: list[tuple[str, tuple, Any]] = []

    def walk(name: str, path: tuple, value: Any, left: int) -> None:
        if isinstance(value, torch.Tensor):
            out.append((name, path, value))
        elif left and isinstance(value, (list, tuple, dict)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, v in items:
                walk(f"{name}[{key!r}]", (*path, (value, key)), v, left - 1)
        elif left and (fields := object_fields(torch, value)) is not None:
            for key, v in fields:   # (private fields too: ``self.cfg._t``, round 65 review; only the program's are
                walk(f"{name}.{key}", (*path, (value, _Field(key))), v, left - 1)   # kept; a slotted one's: round 68)
        elif not left and object_fields(torch, value) is not None:
            deeper(name, path, value)

    def deeper(name: str, path: tuple, value: Any) -> None:   # (round 66: ``m.cfg.a.b.c.t`` was unwatched)
        from .deep_settings import deep_tensors

        out.extend(deep_tensors(torch, name, path, value, _Field))

    for prefix, owner in owners.items():
        rnn = isinstance(owner, torch.nn.RNNBase)
        for attr, value in vars(owner).items():
            if rnn and attr == "_flat_weights":   # (torch's own mirror of the RNN's registered weights, which the
                continue   # slots watch and rebind; ``RNNBase.__setattr__``/``_apply`` keep it in step: round 74,
                # ``gru.requires_grad_(False)`` or a weight replaced alike was refused as a held constant changed)
            if attr not in _MODULE_DICTS and (isinstance(value, (list, tuple, dict))
                                              or object_fields(torch, value) is not None):
                walk(f"{prefix}.{attr}" if prefix else attr, ((vars(owner), attr),), value, depth)
    return out


def _named_tensors(torch: Any, module: Any, owners: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every (dotted name, tensor) of the module tree: parameters, buffers and plain tensor attributes (which
    export lifts as constants and the program reads where they are), tied ones under each of their names."""
    out = []
    for path, owner in owners.items():
        prefix = f"{path}." if path else ""
        for store in _STORES:
            out += [(prefix + k, v) for k, v in getattr(owner, store).items() if v is not None]
        out += [(prefix + k, v) for k, v in vars(owner).items() if isinstance(v, torch.Tensor)]
    return out


def _store(owner: Any, attr: str) -> dict:
    """The dict of ``owner`` where ``nn.Module`` keeps ``attr`` now (its ``__dict__`` when it is gone)."""
    return next((d for d in (owner._parameters, owner._buffers) if d.get(attr) is not None), vars(owner))


def _lookup(owner: Any, attr: str) -> Any:
    """The tensor ``owner.attr`` names now (None when it is gone)."""
    return _store(owner, attr).get(attr)


def _meta(t: Any) -> tuple:
    """What the program's kernels and views were built for: a tensor laid out alike can stand in for it."""
    return (t.dtype, tuple(t.shape), tuple(t.stride()), t.device, t.requires_grad, t.layout)


def _layout(meta: tuple) -> tuple:
    """``meta`` less ``requires_grad``: a tensor frozen or unfrozen in place (``p.requires_grad_(False)``) is the same
    tensor, laid out alike: the executor is built again over it (``changes``), not refused."""
    return meta[:4] + meta[5:]


def _strides_exact(program: Program | None) -> bool:
    """Whether a module tensor's replacement must have the very strides of compile's, a size-1 dimension's too: where
    ``forward`` read a module tensor's ``stride()`` or ``dim_order()`` while it was exported (the program holds the
    answer: ``x * self.w.stride(0)``), or where its reads were not watched (a strict export, an ``ExportedProgram``
    given, no program)."""
    return program is None or not program.layout_watched or bool(program.module_stride_reads)


def _alike(now: tuple, then: tuple, exact: bool) -> bool:
    """Whether a module tensor of ``_meta`` ``now`` can stand for compile's ``then``: equal, or (not ``exact``)
    equal but in the strides of size-1 dimensions (and any strides of a tensor of no element). Why: those address
    nothing and torch sets them freely (``nn.Parameter(torch.randn(4, 1).t())`` is ``(1, 4)`` at strides ``(1, 1)``,
    contiguous to ``is_contiguous()``), yet such a replacement of a ``Linear(4, 1)``'s ``(1, 4)`` weight at ``(4, 1)``
    was refused ("compile again"), where eager's ``forward`` computes the same with either (round 52)."""
    if now == then:
        return True
    if exact:
        return False
    return (now[:2] == then[:2] and now[3:] == then[3:]
            and strides_agree(tuple(now[1]), tuple(now[2]), tuple(then[2])))


def _describe(meta: tuple) -> str:
    dtype, shape, stride, device, requires_grad, layout = meta
    return f"{shape} {dtype} (strides {stride}, {str(layout).removeprefix('torch.')}) on {device}, " \
           f"requires_grad={requires_grad}"


def holding_node(program: Program | None, value: Any) -> str | None:
    """The first node of ``program``'s export that takes the float ``value`` (same ``repr``) as an argument, as
    "node 'dropout' (aten.dropout.default)"; None where none does (forward made something else of it) or ``value``
    is no float (an int, True or None is an argument of many nodes for other reasons)."""
    graph = getattr(getattr(program, "exported", None), "graph", None)
    if graph is None or type(value) is not float:
        return None
    for node in graph.nodes:
        if any(_same_value(a, value) for a in (*node.args, *node.kwargs.values())):
            return f"node {node.name!r} ({node.target})"
    return None


def settings_refusal(guard: ModuleGuard, program: Program | None) -> str | None:
    """Why a changed plain setting is refused, naming it and, where the program takes the old value as an argument,
    the node that does. Why no rule decides that a change is inert: ``forward`` reads the value, and the program
    holds it even where eager's kernel then ignores it (an eval-mode dropout's ``p`` is ``aten.dropout``'s
    argument, which it does not read when ``train`` is False): only the op knows, so the message says where the
    value went and that setting it back runs the program again."""
    first = guard.settings.first_changed() if guard.settings is not None else None
    if first is None:
        return None
    name, now, was = first
    if now is _MISSING:
        return f"{name} was deleted: export baked the value forward read into the program: compile again"
    if was is _MISSING:   # (``cfg.t = 3.0`` over the class's ``t`` that forward read: round 65 review)
        return (f"{name} is {_value_text(now)} now, the class's value at compile (forward read that): export baked "
                f"it into the program, eager reads it anew: delete {name}, or compile again")
    where = holding_node(program, was)
    now, was = _value_text(now), guard.settings.held_text(was)   # (a ``__repr__`` that raises: ours, round 64)
    held = (f"{was} is an argument of the program's {where}, where it may have gone" if where else
            "export baked what forward made of it into the program")
    return (f"{name} is {now} now, {was} at compile: {held}, eager reads it anew (the executor cannot tell "
            f"whether a kernel ignores it): set it back to {was}, or compile again (or keep a value that changes "
            "between calls in a buffer)")


def changes(torch: Any, guard: ModuleGuard, program: Program | None = None) -> dict[int, Any]:
    """{id of a tensor the program holds: the tensor now in its place} for every replaced tensor that can be
    rebound (empty when nothing changed but a tensor's data pointer, e.g. nothing at all); an
    ``AtenExecutorError`` naming the module attribute for any change the program cannot follow (a setting's,
    with the node of ``program`` that takes its old value)."""
    root = guard.root_cls.__name__
    for path, parent, attr, child, cls, training in (("", None, "", guard.root, guard.root_cls, guard.root_training),
                                                    *guard.modules):
        where = f"{root}.{path}" if path else root
        if path and parent._modules.get(attr) is not child:
            raise AtenExecutorError(f"submodule {where} was replaced after compile (the program runs the exported "
                                    "one's code and weights): compile again")
        if type(child) is not cls:
            raise AtenExecutorError(f"{where} is a {type(child).__name__} now, not the {cls.__name__} compile saw "
                                    "(a parametrization?): the program runs the exported code: compile again")
        if child.training is not training:
            mode = "train" if child.training else "eval"
            raise AtenExecutorError(f"{where} is in {mode} mode now, the program was exported in "
                                    f"{'train' if training else 'eval'} mode (dropout, batch norm follow it): "
                                    "compile again in this mode")
    changed = guard.calls.changed() if guard.calls is not None else None
    if changed is not None:
        raise AtenExecutorError(f"{changed}: the program runs the code export traced then (hooks included), eager "
                                "the code there now: compile again")
    refusal = settings_refusal(guard, program)
    if refusal is not None:
        raise AtenExecutorError(refusal)
    for h in guard.held:
        if not h.unchanged():
            raise AtenExecutorError(f"{root}.{h.name} was replaced or changed its layout after compile (the program "
                                    f"reads the tensor that was there, {h.what}): compile again"
                                    + ("" if h.what.startswith("a small integer buffer") else ", or keep it in a buffer"))
    exact = _strides_exact(program)
    now: dict[str, list[tuple[Slot, Any]]] = {}   # per program tensor: each of its names, the tensor there now
    for s in guard.slots:
        t = _lookup(s.owner, s.attr)
        if t is s.tensor and t.data_ptr() == s.ptr and _layout(_meta(t)) == _layout(s.meta):
            now.setdefault(s.tid, []).append((s, t))
            continue
        where = f"{root}.{s.name}"
        if not isinstance(t, torch.Tensor):
            raise AtenExecutorError(f"attribute {where} was deleted after compile (the program reads it as "
                                    f"{s.tid!r}): compile again")
        why = difference(torch, type(t))
        if why is not None:   # (round 73: ``m.b = m.b.as_subclass(Scaled)`` was rebound and read as plain data)
            raise AtenExecutorError(f"attribute {where} is a {type(t).__name__} now, a tensor subclass {why}: eager "
                                    "runs forward's ops through it, the program runs ATen's kernels on its data alone "
                                    "(hold a plain tensor, t.as_subclass(torch.Tensor), where that is what eager "
                                    "would compute)")
        writer = _resizing_writer(torch, program, s, t)
        if writer is not None:
            raise AtenExecutorError(f"attribute {where} is {tuple(t.shape)} now, {s.meta[1]} at compile: the program's "
                                    f"{writer} resized it in place while a call ran, as its eager kernel resizes the "
                                    "tensors it writes (the export's fake kernel keeps their sizes, and the plan "
                                    "follows it; eager's first call resizes them alike, a QAT observer's per-channel "
                                    "scale): compile again now, over the sizes the module's tensors have")
        if not _alike(_meta(t), s.meta, exact):
            read = program.module_stride_reads[0] if program is not None and program.module_stride_reads \
                and _alike(_meta(t), s.meta, False) else None   # (only a size-1 dimension's stride differs)
            why = (f", and forward read Tensor.{read[0]}() of a module tensor at {read[1]} while it was exported "
                   "(its answer is fixed in the program)" if read is not None else "")
            raise AtenExecutorError(f"attribute {where} is {_describe(_meta(t))} now, the program was compiled for "
                                    f"{_describe(s.meta)} (a .to(), .half(), .data = or a new tensor laid out "
                                    f"otherwise){why}: compile again")
        now.setdefault(s.tid, []).append((s, t))
    out: dict[int, Any] = {}
    for tid, pairs in now.items():
        tensors = {id(t): t for _s, t in pairs}
        if len(tensors) > 1 and not _one_memory(list(tensors.values())):
            names = ", ".join(f"{root}.{s.name}" for s, _t in pairs)
            raise AtenExecutorError(f"attributes {names} were one tensor at compile (tied weights, which the program "
                                    "reads as one) and are different tensors now: compile again")
        if any(t is not s.tensor or t.data_ptr() != s.ptr or _meta(t) != s.meta for s, t in pairs):
            # (the same tensor frozen or unfrozen in place too: built again, as the lowering chose kernels by its
            # flag); keyed by the tensor the program holds, which after a rebind of tied names is the first's
            held = program.weights[tid] if program is not None else pairs[0][0].tensor
            out[id(held)] = pairs[0][1]
    for h in guard.held:   # the old tensor still in a container: which one eager reads depends on the path
        if id(h.tensor) in out:
            raise AtenExecutorError(f"{root}.{h.name} and an attribute the program reads as the same tensor are "
                                    "different tensors now (one was replaced): compile again")
    return out


def _resizing_writer(torch: Any, program: Program | None, s: Any, t: Any) -> str | None:
    """"node 'x' (op)" of the program's first node that writes the module tensor of slot ``s`` where that tensor is
    still the object compile saw, in its dtype and device, and only its sizes (and so strides) changed: a kernel that
    resizes what it writes (``fused_moving_avg_obs_fake_quant`` grows a per-channel observer's ``scale`` and
    ``min_val`` from (1,) to (C,) at eager's first call), which no user action did; None otherwise. Why: the call
    after was refused as if the user had replaced or cast the tensor ("a .to(), .half(), .data = ..."), where the
    program's own node changed it."""
    if program is None or t is not s.tensor or _meta(t)[0] != s.meta[0] or _meta(t)[3] != s.meta[3] \
            or tuple(t.shape) == s.meta[1]:
        return None
    from memplan.importers.torch import written_args

    for n in getattr(getattr(program, "exported", None), "graph", None).nodes if program.exported is not None else ():
        if n.op == "call_function" and s.tid in written_args(torch, n):
            return f"node {n.name!r} ({n.target})"
    return None


def _one_memory(tensors: list[Any]) -> bool:
    """Whether tensors that are several objects now read the same elements: one address, one layout. Why:
    ``load_state_dict(sd, assign=True)`` gives each name of tied weights its own ``Parameter`` over the one tensor
    ``sd`` holds for both (eager reads the same values through either, and an in-place write through one shows in
    the other); it was refused as weights untied."""
    first = tensors[0]
    return all(t.data_ptr() == first.data_ptr() and _meta(t) == _meta(first)
               and t.untyped_storage().data_ptr() == first.untyped_storage().data_ptr() for t in tensors[1:])


def rebound_program(program: Program, new: Mapping[int, Any]) -> Program:
    """``program`` over the replaced tensors ``new`` ({id of the old tensor: its replacement}): its weights, the
    buffers its state updates write, the module tensors the export merged with an input."""
    def sub(t: Any) -> Any:
        return new.get(id(t), t)
    return replace(program,
                   weights={tid: sub(w) for tid, w in program.weights.items()},
                   mutations=tuple((kind, name, sub(into) if kind == "buffer" else into, src)
                                   for kind, name, into, src in program.mutations),
                   merged_weights=tuple((k, wid, sub(w)) for k, wid, w in program.merged_weights))


def rebound_guard(guard: ModuleGuard, new: Mapping[int, Any]) -> ModuleGuard:
    """``guard`` recording the replacements ``new`` as what the program now reads."""
    def now(s: Slot) -> Slot:   # the tensor at the slot itself (``changes`` accepted it): tied names may hold
        t = _lookup(s.owner, s.attr)   # other objects of one memory (``_one_memory``)
        t = t if t is not None else new.get(id(s.tensor), s.tensor)
        return replace(s, store=_store(s.owner, s.attr), tensor=t, ptr=t.data_ptr(), meta=_meta(t))
    slots = tuple(now(s) for s in guard.slots)
    return replace(guard, slots=slots, settings=guard.settings and guard.settings.refreshed(),
                   reads=guard.reads and guard.reads.refreshed())


def needs_recapture(cuda_graph: bool, captured: bool, rebound: bool) -> bool:
    """Whether a call must capture its CUDA graph again: it was captured over the old tensors' addresses, and a
    rebind moved them (the graph would replay reading freed or stale memory). Kept apart from the rebuild so
    that the decision is testable on a CPU, where nothing is captured."""
    return cuda_graph and captured and rebound
