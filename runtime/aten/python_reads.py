"""The plain Python values a ``forward`` reads beside its module (globals, closure cells, class attributes, the
fields of the objects its tree and its globals hold, the containers inside each), as compile left them, checked at
every compiled call.

Why: a compiled call runs no Python. ``forward`` returning ``x * SCALE`` had ``SCALE`` baked into the program at the
export; a caller's ``SCALE = 3.0`` after compile changed eager's result and silently not the program's (1.71 off on
one call, round 62). The same held for a closure's ``box[0]``, ``type(self).s``, ``self.cfg["a"][0][0]``, a global
object's field and a field of an object in a list attribute. ``python_state`` already finds these places for the
export's writes; here the same places are watched for the caller's.

A changed value is no error by itself (round 63): ``forward`` may change one once for good (a warn-once set, a
logged-once flag, a kernel bound lazily into a global: round 41c), or read one that does not change its program (a
``VERBOSE`` flag). ``CompiledModule._prove_reads`` exports ``forward`` again from the values now, as
``_prove_calls`` does for hooks: the very program takes them as the new baseline; another program is refused,
naming the value. ``ReadProofs`` keeps both answers, so a state of the values costs one export, not one per call.
"""

from __future__ import annotations

import functools
import operator
import types
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from operator import is_
from typing import Any

from . import byte_values
from .byte_values import BufferReads
from .module_containers import CONTAINERS, INNER_LIMIT, ITEM_LIMIT, inner_containers, plain_change, same_item
from .module_containers import unchanged as _same_items
from .module_writes import MISSING
from .py310 import call
from .python_state import ITERATOR_LABEL, PythonPlace, python_state
from .settings import SCALARS, same_value, value_text

_CALL = call   # (any callable: a place reads through a function or a partial)


def _watched(p: PythonPlace) -> bool:
    """Whether a change of ``p`` by the caller changes what ``forward`` computes: not the names of a holder's
    attributes (a field added to a config is no value ``forward`` read), not an iterator's position (``forward``
    advancing one is refused at compile; the caller's ``next`` is no read of it), not a module's class (the module
    guard checks it), not the state a hook keeps (hooks change it at each call)."""
    return not (p.hooked or p.label.endswith("(attributes made anew)") or p.label.startswith(ITERATOR_LABEL)
                or p.label.startswith("the class of ") or p.label.endswith(_HELD) or _private(p.label))


def _private(label: str) -> bool:
    """A private class attribute (``PreTrainedModel._no_split_modules``) or a dunder global (``__name__``): a
    library's bookkeeping, not a value the caller sets between calls; left out, as ``Settings`` leaves private names,
    to keep the per-call check short (a small transformers Llama: ~110 places, ~85 us a call, before)."""
    if label.startswith("the class attribute "):
        return label.removeprefix("the class attribute ").split(" ")[0].rpartition(".")[2].startswith("_")
    return label.startswith("the global __")


#: how ``python_state`` labels the fields of the settings objects the tree holds: left to the module guard's
#: ``Settings``, which watches only the values ``forward`` read (a callable holder of counters a compiled step keeps
#: on its module is no setting); those held in a module's list, tuple or dict, which ``Settings`` does not reach,
#: are watched here (``_held_objects``)
_HELD = " object the module holds"


@dataclass(frozen=True)
class PythonReads:
    """Each watched place's label, how to read it, its value after compile and (a list, dict or set) its shallow copy.
    ``unchanged`` is the per-call check: one read per place and an identity check (a container: its items by identity
    against the copy), a few microseconds for tens of places. A container changed by tensors alone (a global
    ``CACHE["last"] = x``, a feature tap's ``self.feats.append(y)``) is a cache or a record, no value the program
    baked (``module_containers.plain_change``, as compile judges ``forward``'s own changes): recorded anew, not
    refused."""

    labels: tuple[str, ...]
    reads: tuple[Any, ...]
    values: list[Any]
    copies: tuple[tuple[int, Any], ...]   # (index into values, the copy) of the containers
    #: (id of a module, attribute) of the containers each compiled call sets anew (``CompiledModule.sets``): not
    #: watched (``record_reads``)
    skip: frozenset[tuple[int, str]] = frozenset()
    #: each place's ``PythonPlace.source`` (what its read reads; None: only the read says)
    sources: tuple[tuple | None, ...] = ()
    #: the byte buffers (NumPy arrays, ``bytearray``...) among the places and the module's attributes, compared by
    #: their contents (``byte_values``: changed in place, no identity moves; round 64); None where there are none
    buffers: BufferReads | None = None
    #: the ids of the tensors the program reads itself (``byte_values.find``: a small plain tensor among them is no
    #: value export baked), kept for the places found anew
    live: frozenset[int] = frozenset()
    #: the ids of the tensors ``forward`` read as Python numbers at export (``Program.value_reads``: watched whatever
    #: their size, the program's own too; round 64c), kept for the places found anew
    read: frozenset[int] = frozenset()
    #: (where read, tensor) of the tensors of ``read`` still alive at compile (``guard.read_tensors``): watched
    #: wherever they are held, kept for the places found anew (round 67)
    held: tuple[tuple[str, Any], ...] = ()
    #: the per-call check's plan, made from ``sources`` and ``values`` (``_FastReads``)
    fast: _FastReads = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", _FastReads.of(self.reads, self.values, self.sources, self.copies))

    def unchanged(self) -> bool:
        """Whether every place still holds the very object it held (a container: the very items). False is no
        refusal: ``first_changed`` then compares the values (``CompiledModule._prove_reads``)."""
        if self.buffers is not None and not self.buffers.unchanged():
            return False
        if not self.fast.unchanged():
            return False
        if self.fast.items_unchanged():
            return True
        values = self.values   # (a dict whose keys are equal, not the very objects: compared as round 63 did)
        return all(_same_objects(values[i], c) for i, c in self.copies)

    def first_changed(self) -> tuple[str, Any, Any] | None:
        """(label, value now, value at compile) of the first place whose value is no longer equal to compile's (None:
        all equal, some maybe other objects: ``refreshed`` then records them)."""
        copies = dict(self.copies)
        for i, (label, read, was) in enumerate(zip(self.labels, self.reads, self.values)):
            now = read()
            if i in copies:
                if now is not was:
                    if _deep_same(now, copies[i]):   # (another object holding equal values: ``replaced``)
                        continue
                    return label, now, was
                if not _same_items(now, copies[i]) and plain_change(copies[i], now, objects=True):
                    return label, now.copy(), copies[i]
                continue
            if now is was or (isinstance(now, SCALARS) and isinstance(was, SCALARS) and type(now) is type(was)
                              and same_value(now, was)):
                continue
            return label, now, was
        return self.buffers.first_changed() if self.buffers is not None else None

    def replaced(self) -> bool:
        """Whether a watched container is another object now (a module's ``self.cfg = {...}``, a global's
        ``NESTED = {...}``): its inner containers' places watch the old ones, so the places must be found anew
        (``record_reads``), not only their values read again (``refreshed``)."""
        return any(self.reads[i]() is not self.values[i] for i, _c in self.copies)

    def refreshed(self) -> PythonReads:
        values = [r() for r in self.reads]   # (a container deleted or replaced by another value: no copy kept)
        return replace(self, values=values, copies=tuple((i, values[i].copy()) for i, _c in self.copies
                                                         if type(values[i]) in CONTAINERS),
                       buffers=self.buffers.refreshed() if self.buffers is not None else None)


_cell_contents = operator.attrgetter("cell_contents")
_proxy_get = types.MappingProxyType.get


@dataclass(frozen=True)
class _FastReads:
    """The places of a ``PythonReads`` grouped by what they read, each group read in one C-level ``map`` and compared
    by identity with the values recorded: the globals and fields in their dicts (``dict.get``), the class attributes
    in their namespaces, the closure cells (``cell_contents``), and, read through their ``read``, the rest (a context
    variable, a thread's local, an emptied cell). An object's field is read from ``vars(obj)`` each call, as its read
    reads it (``obj.__dict__ = {...}`` replaces the dict). A place that reads a fixed object (an inner container, a
    function's default list, a partial's bound list: ``("const", obj)``) is not read at all: its read returns that
    very object whatever happens, so only its items (``PythonReads.copies``) can change.

    Why: read through ``read`` each place cost three Python frames (``_missing_ok``, the partial, the lambda); a
    small transformers Llama's 163 places (closure cells of transformers' ``deprecate_kwarg`` wrappers, mostly) made
    ``guard.unchanged`` ~3.5x round 62's."""

    dicts: tuple[list, list, tuple]     # (dicts, keys, values then)
    proxies: tuple[list, list, tuple]   # (class namespaces, keys, values then)
    cells: tuple[list, tuple]           # (cells, values then): filled then
    attrs: tuple[list, list, tuple]     # (the object of each field read, its name, its value then)
    slow: tuple[list, tuple]            # (reads, values then)
    #: the containers (``PythonReads.copies``): all of them and their lengths then; the lists and deques, and the
    #: items of their copies in one row; the dicts, and the keys and values of their copies in one row; the sets and
    #: their copies
    sized: tuple[list, list]
    sequences: tuple[list, tuple]
    mappings: tuple[list, tuple, tuple]
    sets: tuple[list, list]   # (the sets, the ids of their copies' items: the copies hold them, so no id is reused)

    @classmethod
    def of(cls, reads: tuple[Any, ...], values: list[Any], sources: tuple[tuple | None, ...],
           copies: tuple[tuple[int, Any], ...]) -> _FastReads:
        groups: dict[str, list[tuple]] = {"map": [], "proxy": [], "attr": [], "cell": [], "slow": []}
        for i, (read, value) in enumerate(zip(reads, values)):
            src = sources[i] if i < len(sources) else None
            kind = src[0] if src is not None else None
            if kind == "const" and value is src[1]:
                continue
            if kind == "map" and type(src[1]) is dict:
                groups["map"].append((src[1], src[2], value))
            elif kind == "map" and type(src[1]) is types.MappingProxyType:
                groups["proxy"].append((src[1], src[2], value))
            elif kind == "attr" and type(vars(src[1])) is dict:
                groups["attr"].append((src[1], src[2], value))
            elif kind == "cell" and value is not MISSING:
                groups["cell"].append((src[1], value))
            else:
                groups["slow"].append((read, value))

        def columns(rows: list[tuple], n: int) -> tuple:
            return tuple(list(c) for c in zip(*rows)) if rows else tuple([] for _ in range(n))
        m, p, a = columns(groups["map"], 3), columns(groups["proxy"], 3), columns(groups["attr"], 3)
        c, s = columns(groups["cell"], 2), columns(groups["slow"], 2)
        held = [(values[i], copy) for i, copy in copies]
        seqs = [(v, copy) for v, copy in held if not isinstance(copy, (dict, set))]
        maps = [(v, copy) for v, copy in held if isinstance(copy, dict)]
        return cls((m[0], m[1], tuple(m[2])), (p[0], p[1], tuple(p[2])), (c[0], tuple(c[1])),
                   (a[0], a[1], tuple(a[2])), (s[0], tuple(s[1])),
                   ([v for v, _c in held], [len(copy) for _v, copy in held]),
                   ([v for v, _c in seqs], tuple(chain.from_iterable(copy for _v, copy in seqs))),
                   ([v for v, _c in maps], tuple(chain.from_iterable(copy for _v, copy in maps)),
                    tuple(chain.from_iterable(copy.values() for _v, copy in maps))),
                   ([v for v, copy in held if isinstance(copy, set)],
                    [frozenset(map(id, copy)) for _v, copy in held if isinstance(copy, set)]))

    def items_unchanged(self) -> bool:
        """Whether each container holds the very items of its copy (a dict: the very keys, in order, and values), in
        a few C-level ``map``s over all of them at once. False is no change by itself: a dict whose keys are equal
        objects, not the same ones, or a set holding equal values, not the same ones, is compared by
        ``_same_objects`` then."""
        sized, lens = self.sized
        if list(map(len, sized)) != lens:
            return False
        seqs, items = self.sequences
        if items and not all(map(is_, chain.from_iterable(seqs), items)):
            return False
        maps, keys, values = self.mappings
        if keys and not (all(map(is_, chain.from_iterable(maps), keys))
                and all(map(is_, chain.from_iterable(map(dict.values, maps)), values))):
            return False
        sets, ids = self.sets
        return not ids or list(map(frozenset, map(map, repeat(id), sets))) == ids

    def unchanged(self) -> bool:
        """Whether every place read holds the very object recorded (identity alone: equality is ``first_changed``'s)."""
        dicts, keys, values = self.dicts
        if values and not all(map(is_, map(dict.get, dicts, keys, repeat(MISSING)), values)):
            return False
        owners, keys, values = self.attrs   # (each group skipped where empty: a small watch pays no empty maps)
        try:
            if values and not all(map(is_, map(dict.get, map(vars, owners), keys, repeat(MISSING)), values)):
                return False
        except TypeError:   # (a ``__dict__`` that is no dict now)
            return False
        dicts, keys, values = self.proxies
        if values and not all(map(is_, map(_proxy_get, dicts, keys, repeat(MISSING)), values)):
            return False
        cells, values = self.cells
        try:
            if values and not all(map(is_, map(_cell_contents, cells), values)):
                return False
        except ValueError:   # (a cell emptied since)
            return False
        reads, values = self.slow
        return not values or all(map(is_, map(_CALL, reads), values))


def _same_objects(now: Any, copy: Any) -> bool:
    """Whether container ``now`` holds the very objects of its ``copy`` (a dict: under the same keys, in the same
    order), compared by identity in C (``map(is_, ...)``); a set as ``module_containers.unchanged`` compares it.
    Why: the per-call check of a small transformers Llama's 27 containers took as long as its 163 reads with
    ``unchanged``'s per-item ``same_item``. False is no refusal: ``first_changed`` then compares the values."""
    if isinstance(now, dict):
        return len(now) == len(copy) and now.keys() == copy.keys() and all(map(is_, now.values(), copy.values()))
    if isinstance(now, set):
        return _same_items(now, copy)
    return len(now) == len(copy) and all(map(is_, now, copy))


def watched_places(torch: Any, module: Any) -> list[PythonPlace]:
    """The places of ``python_state`` a caller's change of which changes what ``forward`` computes (``_watched``)."""
    return [p for p in python_state(torch, module) if _watched(p)]


def record_reads(torch: Any, module: Any, skip: frozenset[tuple[int, str]] = frozenset(),
                 live: frozenset[int] = frozenset(), read: frozenset[int] = frozenset(),
                 held: tuple[tuple[str, Any], ...] = ()) -> PythonReads | None:
    """``PythonReads`` of ``module``'s tree now (after the export, whose own changes ``check_python_state`` settled):
    None where there is nothing to watch. ``skip``: ``PythonReads.skip``; ``held``: ``PythonReads.held``."""
    places = watched_places(torch, module)
    buffers, _too_big = byte_values.find(torch, module, places, live, read, held)
    places += _module_containers(torch, module, skip)
    if not places and buffers is None:
        return None
    values = [p.read() for p in places]
    copies = tuple((i, v.copy()) for i, (p, v) in enumerate(zip(places, values)) if p.copy is not None
                   and v is p.value)
    return PythonReads(tuple(p.label for p in places), tuple(p.read for p in places), values, copies, skip,
                       tuple(p.source for p in places), buffers, live, read, held)


def without_sets(torch: Any, module: Any, reads: PythonReads | None, sets: Any) -> PythonReads | None:
    """``reads`` found anew leaving out the list and dict attributes ``forward`` sets (``sets``: (owner, name,
    value) of ``CompiledModule.sets``), which each compiled call sets to a new copy, as eager's ``forward`` does.
    Why: watched, each call found the attribute another object and paid the slow path (the places found anew: ~40 ms
    for a small Llama), for a value no caller set."""
    skip = frozenset((id(owner), name) for owner, name, value in sets if type(value) in (list, dict))
    return reads if reads is None or not skip else record_reads(torch, module, skip, reads.live, reads.read,
                                                                                    reads.held)


def _module_containers(torch: Any, module: Any, skip: frozenset[tuple[int, str]] = frozenset()) -> list[PythonPlace]:
    """A place for each list, dict or set under a public attribute of each module of the tree and each one inside
    it, at any depth (bounded by size: ``inner_containers``). Why: ``self.cfg["a"][0][0]`` read by ``forward`` and
    set by the caller after compile compiled silently (round 62); ``Settings`` watches plain values alone."""
    if not isinstance(module, torch.nn.Module):
        return []
    out: list[PythonPlace] = []
    seen: set[int] = set()
    budget = [INNER_LIMIT]
    for path, m in module.named_modules():
        where = f"{type(module).__name__}.{path}" if path else type(module).__name__
        for name, v in list(vars(m).items()):
            if not name.startswith("_") and (id(m), name) not in skip:   # (a settings object's lists, round 64d)
                out += _object_containers(torch, f"{where}.{name}", v, seen, budget)
            if name.startswith("_") or not (type(v) in CONTAINERS or type(v) is tuple) or (id(m), name) in skip:
                continue
            if type(v) in CONTAINERS and id(v) not in seen and len(v) <= ITEM_LIMIT:
                seen.add(id(v))
                out.append(_held(f"the attribute {where}.{name}", v, functools.partial(vars(m).get, name, MISSING),
                                 ("map", vars(m), name)))
            for keys, inner in inner_containers(v, seen, budget):
                label = f"{where}.{name}" + "".join(f"[{k!r}]" for k in keys)
                out.append(_held(f"the attribute {label}", inner))
                out += _held_objects(torch, label, inner, seen)   # (``self.v = {"a": [Cfg()]}``: a field of one
                # two containers down, changed after compile, ran the export's value silently, round 64d)
            out += _held_objects(torch, f"{where}.{name}", v, seen)
    return out


def _object_containers(torch: Any, where: str, obj: Any, seen: set[int], budget: list[int]) -> list[PythonPlace]:
    """A place for each list, dict or set under a public field of a settings object a module holds
    (``self.cfg = Cfg(steps=[2.0])``), read through ``vars(obj)`` at each call, and each one inside it. Why:
    ``forward`` reading ``self.cfg.steps[0]`` compiled, and ``m.cfg.steps[0] = 3.0`` ran the export's 2.0 silently
    (round 64d): ``Settings`` watches the plain fields alone, the containers here were those of modules only."""
    from .settings import settings_object

    if id(obj) in seen or callable(obj) or not settings_object(torch, obj) or type(vars(obj)) is not dict:
        return []
    seen.add(id(obj))
    out: list[PythonPlace] = []
    for name, v in list(vars(obj).items())[:ITEM_LIMIT]:
        if name.startswith("_") or not (type(v) in CONTAINERS or type(v) is tuple):
            continue
        if type(v) in CONTAINERS and id(v) not in seen and len(v) <= ITEM_LIMIT:
            seen.add(id(v))
            out.append(_held(f"the attribute {where}.{name}", v, functools.partial(_field, obj, name),
                             ("attr", obj, name)))
        for keys, inner in inner_containers(v, seen, budget):
            out.append(_held(f"the attribute {where}.{name}" + "".join(f"[{k!r}]" for k in keys), inner))
    return out


def _field(obj: Any, name: str) -> Any:
    """``vars(obj)[name]`` now (``MISSING`` where gone)."""
    return vars(obj).get(name, MISSING)


def _held_objects(torch: Any, where: str, container: Any, seen: set[int]) -> list[PythonPlace]:
    """A place for each public plain field of each object of the user's (no callable one: a counter's holder) that a
    module's list, tuple or dict holds as an item (``self.objs = [Knob()]``, ``forward`` reading ``self.objs[0].s``:
    silently the export's value after ``m.objs[0].s = 3.0``, round 62)."""
    from .settings import plain, settings_object

    if len(container) > ITEM_LIMIT:
        return []
    items = container.items() if isinstance(container, dict) else enumerate(container)
    out: list[PythonPlace] = []
    for key, obj in list(items):
        if id(obj) in seen or callable(obj) or not settings_object(torch, obj) or not hasattr(obj, "__dict__"):
            continue
        seen.add(id(obj))
        fields = vars(obj)
        for name, v in list(fields.items())[:ITEM_LIMIT]:
            if not name.startswith("_") and plain(v):
                out.append(PythonPlace(f"the attribute {name} of the {type(obj).__name__} object at {where}[{key!r}]",
                                       functools.partial(_field, obj, name), lambda _v: None, v,
                                       source=("attr", obj, name) if type(fields) is dict else None))
                # (read through ``vars(obj)`` at each call: ``obj.__dict__ = {...}`` left the old dict's values
                # watched, and the export's ran silently, round 64d)
    return out


def _held(label: str, v: Any, read: Any = None, source: tuple | None = None) -> PythonPlace:
    """A container's place: read through ``read`` (a module attribute's: ``self.cfg = {...}`` replaced by the caller
    is seen; ``source``: what it reads), else the very object (one inside another: a change of the outer one's items
    is that one's)."""
    if read is None:
        return PythonPlace(label, lambda: v, lambda _v: None, v, v.copy(), source=("const", v))
    return PythonPlace(label, read, lambda _v: None, v, v.copy(), source=source)


def _deep_same(now: Any, before: Any, depth: int = 8) -> bool:
    """Whether ``now`` (a container that replaced the one whose shallow copy is ``before``) holds equal values at any
    depth (``same_item`` at the leaves; the same types, lengths and keys in order), bounded by ``depth`` and
    ``ITEM_LIMIT`` (beyond: not the same, so proven by an export)."""
    if same_item(now, before):
        return True
    if type(now) is not type(before) or not (type(now) in CONTAINERS or type(now) is tuple) or depth <= 0:
        return False
    if len(now) != len(before) or len(now) > ITEM_LIMIT:
        return False
    if isinstance(now, set):
        return _same_items(now, before)
    if isinstance(now, dict):
        return list(now) == list(before) and all(_deep_same(now[k], before[k], depth - 1) for k in now)
    return all(_deep_same(a, b, depth - 1) for a, b in zip(now, before))


#: how many states of the values ``ReadProofs`` keeps an answer for, of each kind (the latest)
PROOFS_KEPT = 8


@dataclass
class ReadProofs:
    """The states of the watched values (``PythonReads`` snapshots) an export showed to give compile's program
    (``proven``) and those it showed not to, with the refusal (``refuted``): the latest ``PROOFS_KEPT`` of each. Why:
    a refused state met again at every call must not cost an export per call, and a caller toggling a flag between
    two proven values must not either."""

    proven: list[PythonReads] = field(default_factory=list)
    refuted: list[tuple[PythonReads, str]] = field(default_factory=list)

    def known(self) -> tuple[bool, str | None]:
        """(whether the values now are a state proven or refuted before, the refusal then or None)"""
        for snap in reversed(self.proven):
            if snap.first_changed() is None:
                return True, None
        for snap, why in reversed(self.refuted):
            if snap.first_changed() is None:
                return True, why
        return False, None

    def record(self, snap: PythonReads, why: str | None) -> None:
        if why is None:
            self.proven = [*self.proven, snap][-PROOFS_KEPT:]
        else:
            self.refuted = [*self.refuted, (snap, why)][-PROOFS_KEPT:]


def reads_refusal(reads: PythonReads | None, proof: str = "") -> str | None:
    """Why a changed Python value ``forward`` reads is refused, naming it and both values; ``proof``: what the export
    from the values now showed (``CompiledModule._prove_reads``: "forward gives another program than compile's")."""
    first = reads.first_changed() if reads is not None else None
    if first is None:
        return None
    label, now, was = first
    proof = f" ({proof})" if proof else ""
    if now is MISSING:
        return (f"{label} was deleted since compile{proof}: export baked the value forward read into the program: "
                "compile again")
    return (f"{label} changed since compile ({_short(was)} -> {_short(now)}){proof}: export baked the value forward "
            "read into the program, eager reads it anew: set it back, or compile again (or pass a value that changes "
            "between calls as an argument or keep it in a buffer)")


def _short(v: Any) -> str:
    text = value_text(v)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["PROOFS_KEPT", "PythonReads", "ReadProofs", "record_reads", "reads_refusal", "without_sets"]
