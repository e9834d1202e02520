"""The plan document (``memplan.plan/1``) as a plain dataclass, and its exact JSON form.

A Plan is string-keyed, like the JSON, so it can be loaded and checked without the planner that
made it. ``to_json`` is canonical (fixed key order, no wall-clock fields unless asked for), so the
same input and options give byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ._gc import paused
from .errors import (
    OptionError,
    PlanFormatError,
    PlanMismatch,
    array_hint,
    as_int,
    counted,
    named_fields,
    named_method,
    named_options,
    plain_bool,
    plain_str,
    some_of,
    swapped_hint,
    twin_spelling,
    unicode_twins,
)
from .errors import short_repr as _short
from .files import MAX_JSON_DEPTH, atomic_write_text, json_depth
from .jsoncopy import json_key as _json_key
from .jsoncopy import json_shown as _json_shown
from .jsoncopy import own_json
from .values import bounded_repr, derived, frozen

if TYPE_CHECKING:
    from .graph import Graph

PLAN_FORMAT = "memplan.plan/1"
#: the most streams (all devices together) a plan may declare; ``memplan plan --streams`` allows as many
MAX_STREAMS = 1024
#: every integer of a plan (offsets, sizes, arena, stream ids) lies in [-2**63, 2**63)
INT64 = 1 << 63
#: solver fields that vary run to run; kept out of the JSON unless timings are asked for
TIMING_FIELDS = ("seconds",)
#: the top-level fields a plan document defines (the format's and the multi-device ones); ``Plan.extra`` holds
#: only the others, the fields readers ignore
PLAN_FIELDS = frozenset({"format", "graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order",
                         "events", "tensors", "solver", "devices", "device_arena_bytes"})


def _own_block(key: str, value: Any) -> Any:
    """``own_json(value)`` of the free-form field ``key`` ("solver" or "extra"), a mapping read as a dict. Why:
    a block from code is the caller's object, and one that cannot be read (a dict subclass whose ``items()``
    raises, at any depth) raised that raw exception from ``Plan(...)`` or ``to_json``, naming no field; it is a
    PlanFormatError naming the field. A value that is no mapping is kept, for ``to_dict``/``save`` to name."""
    try:
        if isinstance(value, tuple):   # (no mapping: kept as given, for ``to_dict`` to name with its type)
            return value
        return own_json(dict(value.items()) if isinstance(value, Mapping) and type(value) is not dict else value)
    except Exception as exc:   # (the caller's own code: any exception; KeyboardInterrupt passes)
        raise PlanFormatError(f"plan: field {key!r} cannot be read as JSON ({_short(exc)})") from None


def _plain(value: Any) -> Any:
    """``value`` with every numpy array (anything with ``tolist``) as its Python values and every list as a tuple,
    for ``Plan.__eq__``. Why: a Plan built in code with an array for a field (``order=np.array(...)``, which
    ``to_dict`` refuses naming the field) made ``plan == other`` a raw ValueError ("The truth value of an array
    with more than one element is ambiguous") where it is just unequal to a plan of plain entries."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value) not in (str, bytes, int, float, bool):   # (numpy scalars too)
        with contextlib.suppress(Exception):
            return _plain(tolist())
    return value


def _owned_entries(value: Any) -> Any:
    """``value`` (a Plan's entry list) as a tuple holding no list, when it is or holds a list (of any list or tuple
    class: a tuple subclass of lists, or a tuple of list subclasses, kept the caller's lists, which an edit after
    ``verify`` changed); anything else as it is, for ``check_plan_fields`` to judge. One pass over the entry types."""
    if isinstance(value, list) or (isinstance(value, tuple) and any(issubclass(t, list) for t in set(map(type, value)))):
        return tuple(tuple(e) if isinstance(e, list) else e for e in value)
    return value


@bounded_repr
@named_fields
@dataclass(frozen=True)
class Plan:
    """A ``memplan.plan/1`` document (docs/format.md) as an immutable value: ``order`` is ``(node, stream)``
    in issue order, ``events`` ``(after, before)``, ``tensors`` ``(id, offset or None, size)``; ``solver``
    says how the offsets were found, and ``extra`` keeps the fields of a read file that memplan does not
    know (``to_dict`` writes them back, so another tool's additions survive a round trip). ``plan()``
    returns one only after ``verify`` passed; one read from a file or built by hand is merely well-formed
    until ``verify(graph, plan)`` judges it."""

    graph: str
    alignment: int
    arena_bytes: int
    lower_bound_bytes: int
    streams: int
    order: tuple[tuple[str, int], ...]
    events: tuple[tuple[str, str], ...]
    tensors: tuple[tuple[str, int | None, int], ...]
    solver: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: multi-device plans (docs/format.md "Multi-device plans"): the device count, the device of each
    #: ``order`` entry and of each ``tensors`` entry (parallel tuples), and each device's arena bytes.
    #: Emitted only when ``devices > 1``, so single-device plans keep their exact bytes.
    devices: int = 1
    node_devices: tuple[int, ...] = ()
    tensor_devices: tuple[int, ...] = ()
    device_arena_bytes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """The scalar integer fields as plain ints when they are integers to Python (``errors.as_int``: numpy
        integers from a caller's arithmetic); ``check_plan_fields`` does the same for the entries and refuses
        what is no integer."""
        for key in ("alignment", "arena_bytes", "lower_bound_bytes", "streams", "devices"):
            v = getattr(self, key)
            if type(v) is not int and as_int(v) is not None:
                object.__setattr__(self, key, as_int(v))
        # lists given for the tuples (and list entries) as tuples: a caller's list kept by the plan let an edit after
        # ``verify`` change the verified plan (an offset moved, a node put on another stream) and what ``save`` wrote
        for key in ("order", "events", "tensors", "node_devices", "tensor_devices", "device_arena_bytes"):
            object.__setattr__(self, key, _owned_entries(getattr(self, key)))
        # the free-form blocks as copies of their own: a plan kept the solver block and extra objects it was given
        # (by ``plan_from_dict``, from the caller's document), and a later edit of those changed it and its JSON
        for key in ("solver", "extra"):
            object.__setattr__(self, key, _own_block(key, getattr(self, key)))

    def __eq__(self, other: object) -> bool:
        """Every field the JSON carries, the solver block without its run-to-run timings (``TIMING_FIELDS``):
        ``plan(g) == plan(g)`` held only if both runs took the same ``seconds`` to the microsecond, so two
        byte-identical plan files came from plans that compared unequal."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        if self is other:
            return True
        try:
            return bool(self._compared() == other._compared())
        except (TypeError, ValueError):   # (a field of a Plan built in code holding a numpy array: no truth value)
            return _plain(self._compared()) == _plain(other._compared())

    def _compared(self) -> tuple:
        """The compared values; a ``solver`` that is no mapping (a Plan built in code: ``to_dict`` names it) as it is.
        Why: ``Plan(..., solver=None) == plan`` raised a raw AttributeError ("'NoneType' object has no attribute
        'items'") where ``hash`` and every reader answer or name the field."""
        block = self.solver
        untimed = {k: v for k, v in block.items() if k not in TIMING_FIELDS} if isinstance(block, Mapping) else block
        return (*self._fields().values(), untimed)

    def _fields(self) -> dict[str, Any]:
        """The compared fields but the solver block, by name, as the JSON carries them: a one-device plan's device
        fields that restate its one device (``plan_devices(g, 1)`` keeps them) as none (``_one_device_defaults``),
        which is what its file holds and ``load_plan`` reads back."""
        fields = {key: getattr(self, key) for key in _HASHED}
        if type(self.devices) is int and self.devices == 1:
            fields.update(_one_device_defaults(self))
        return fields

    def __hash__(self) -> int:
        """The hash of every compared field but the solver block: a plan is a frozen value users keep in sets and
        as dict keys, but the generated hash took the block, a dict, and ``hash(plan)`` was "unhashable type:
        'dict'". Equal plans have equal blocks, so leaving it out keeps the hash consistent with ``==`` (plans that
        differ only there share a hash and still compare unequal; two runs' ``seconds`` do not count for either). A field that holds
        an unhashable value (a Plan built in code, whose entries ``to_dict`` would refuse) hashes by its plain value
        (``values.frozen``): it was a TypeError, so a set of plans built in code failed on one bad field."""
        fields = tuple(self._fields().values())
        try:
            return hash(fields)
        except TypeError:
            return hash(frozen(_plain(fields)))

    @property
    @derived(PlanFormatError, "arena_bytes", "lower_bound_bytes")
    def ratio(self) -> float:
        """Arena over lower bound (1.0 is optimal for this schedule). A bound of 0 under a nonzero arena proves
        nothing about it: infinite (1.0 said such a plan, a hand-made one with ``lower_bound_bytes`` 0, was optimal)."""
        if not self.lower_bound_bytes:
            return 1.0 if not self.arena_bytes else math.inf
        return self.arena_bytes / self.lower_bound_bytes

    @derived(PlanFormatError, "arena_bytes", "lower_bound_bytes")
    def ratio_text(self, decimals: int = 4) -> str:
        """``ratio`` as text for people (``memplan show``, the CLI's summary, the memory map's title): ``ratio_text``
        of the plan's own integers."""
        return ratio_text(self.arena_bytes, self.lower_bound_bytes, decimals)

    @named_method
    def offsets(self) -> dict[str, int | None]:
        """Each tensor's byte offset in its device's arena, by id (views included: their root's offset plus
        ``view_offset``); None for weights and views of weights, which live outside the arena. An executor's
        addresses: arena base + offset (``runtime.binding.bind`` adds the device and the root). A Plan built in code
        is held to what a plan file holds first (``check_plan_fields``), as ``to_dict`` holds it: ``tensors=None`` was
        a raw TypeError here, an offset 1.5 an answer."""
        check_plan_fields(self)
        return {tid: off for tid, off, _ in self.tensors}

    @named_method
    def stream_of(self) -> dict[str, int]:
        """Each node's stream, by id (global stream ids: a split plan's devices own contiguous ranges); a Plan built
        in code checked as in ``offsets`` (``order=(("a", "1"),)`` answered stream "1")."""
        check_plan_fields(self)
        return dict(self.order)

    @named_method
    def to_dict(self, *, timings: bool = False) -> dict[str, Any]:
        timings = plain_bool(timings)   # (a numpy bool as the bool it equals, as every entry point takes it)
        if not isinstance(timings, bool):   # save_plan(p, path, timings="no") wrote the timings: any text is true
            raise PlanFormatError(f"timings must be True or False, not {_short(timings)}")
        # a Plan built in code is held to what ``load_plan`` reads back, field by field, before any of it is written:
        # an entry that is a string (``order=("ab",)``) unpacked into node "a" on stream "b", and a wrong type was
        # written as it was, both into a document that ``save`` and ``load_plan`` then refused (a block that is no
        # mapping raised a bare AttributeError from ``.items()``)
        check_plan_fields(self)
        _check_device_fields(self)
        # copies of the free-form blocks' objects and arrays: a caller editing the returned document (to write a
        # variant) edited this plan's solver block and extra fields, and so its JSON, through the shared nesting
        solver = {k: v for k, v in _own_block("solver", self.solver).items() if timings or k not in TIMING_FIELDS}
        # an extra field that names a plan field: a single-device plan with extra {"devices": 2} was written
        # as a file declaring two devices, which load_plan refused (or one of its fields read otherwise)
        # (a key of a str subclass by its characters, as json writes it: ``Ident("devices")`` hashed past the set)
        clash = sorted(plain_str(k) for k in self.extra if isinstance(k, str) and plain_str(k) in PLAN_FIELDS)
        if clash:
            raise PlanFormatError(f"plan: field 'extra' holds {clash[0]!r}, a field of the plan itself (extra holds "
                                  "only fields memplan.plan/1 does not define)")
        return self._with_fields(_own_block("extra", self.extra), solver)

    def _with_fields(self, doc: dict[str, Any], solver: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (the extra fields) with the plan's own fields, in the document's order."""
        doc.update({
            "format": PLAN_FORMAT,
            "graph": self.graph,
            "alignment": self.alignment,
            "arena_bytes": self.arena_bytes,
            "lower_bound_bytes": self.lower_bound_bytes,
            "streams": self.streams,
            "order": [{"node": n, "stream": s} for n, s in self.order],
            "events": [{"after": a, "before": b} for a, b in self.events],
            "tensors": [{"id": t, "offset": o, "size": s} for t, o, s in self.tensors],
            "solver": solver,
        })
        if self.devices > 1:
            doc = _with_devices(doc, self)
        return doc

    @named_method
    def to_json(self, *, timings: bool = False) -> str:
        doc = self.to_dict(timings=timings)
        text = json_text(doc)
        # the free-form fields (the solver block, extra fields: from code) may write a key twice (``key_trouble``)
        if text is not None and not key_trouble({k: v for k, v in doc.items() if k not in ("order", "events", "tensors")}):
            return text + "\n"
        # a solver block or extra field from code: NaN, a numpy scalar, a set, nested too deep, a key written twice
        key = next((k for k, v in doc.items() if not json_writable(v, depth=1)), "extra")   # (else: extra's own keys)
        raise PlanFormatError(f"plan: field {key!r} is not JSON that load_plan reads back ({json_trouble(doc)})")

    @named_method
    def save(self, path: str, *, timings: bool = False) -> None:
        """Write ``to_json`` to ``path`` atomically (``memplan.save_plan`` is this same call); a Plan whose
        fields ``load_plan`` would refuse (``to_dict`` checks them) is not written."""
        atomic_write_text(path, self.to_json(timings=timings))


#: the fields ``Plan.__hash__`` hashes: those ``==`` compares, but the solver block (a dict; ``extra`` is not compared)
_HASHED = ("graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order", "events", "tensors",
           "devices", "node_devices", "tensor_devices", "device_arena_bytes")


#: the most decimals ``ratio_text`` writes (a ratio's digits past these say nothing about a plan)
MAX_RATIO_DECIMALS = 100
#: the significant digits of its excess over 1 that ``ratio_text`` prints where ``decimals`` would show none
RATIO_DIGITS = 3


def ratio_text(arena: int, bound: int, decimals: int = 4) -> str:
    """``arena / bound`` to ``decimals`` decimals as ``f"{ratio:.4f}"`` writes it, but rounded from exact integers,
    except that an arena above its bound never reads as ``1.0000`` (the optimal ratio): where that rounding would
    show no excess, as many decimals as show ``RATIO_DIGITS`` significant digits of it (``1.000000000000000222``).

    Why: at huge arenas a plan bytes above its bound (an arena of ``2**60 + 256`` B over a bound of ``2**60`` B, any
    excess below 5e-5 of the bound) printed ``ratio 1.0000`` beside FEASIBLE and a gap above 0 (``problem.gap_of``
    keeps such gaps above 0 the same way), and the float division cannot tell: ``(2**60 + 256) / 2**60`` is ``1.0``
    exactly. And a ratio past 2**53 printed the float's digits, not the plan's: an arena of ``2**63 - 1`` B over a
    bound of 1 B read ``9223372036854775808.0000``, one byte more than the arena. A ratio exactly halfway between two
    texts goes the way the float quotient lies, as ``format`` rounded it, so a ratio prints as before unless the
    float's own rounding (about 1e-16 of it) had moved a digit.

    ``decimals`` is an integer from 0 to ``MAX_RATIO_DECIMALS``, else an OptionError naming it: ``None`` or ``"x"``
    was a raw TypeError or ValueError from the format, and ``2**40`` hung computing ``10**decimals``. A numpy integer
    is the int it equals (``errors.as_int``, as every other integer option takes it: ``np.int64(3)`` was refused)."""
    count = as_int(decimals)
    if count is None or not 0 <= count <= MAX_RATIO_DECIMALS:
        raise OptionError(f"ratio_text: decimals must be an integer from 0 to {MAX_RATIO_DECIMALS}, not "
                          f"{_short(decimals)}")
    decimals = count
    arena, bound = int(arena), int(bound)
    if not bound:
        return f"{1.0 if not arena else math.inf:.{decimals}f}"
    if arena < 0 or bound < 0:   # (no plan's integers: the float's text, as before)
        return f"{arena / bound:.{decimals}f}"
    text = _fixed(arena, bound, decimals, Fraction(arena / bound))
    if arena <= bound or text != f"{1:.{decimals}f}":
        return text
    excess = arena - bound
    first = 1   # the decimal place of the excess's first nonzero digit: excess * 10**first >= bound
    while excess * 10 ** first < bound:
        first += 1
    return _fixed(arena, bound, max(decimals, first + RATIO_DIGITS - 1))


def _fixed(arena: int, bound: int, places: int, near: Fraction | None = None) -> str:
    """``arena / bound`` (non-negative integers, ``bound`` above 0) to ``places`` decimals, rounded from the exact
    quotient; a quotient halfway between two texts goes the side ``near`` (the float quotient) lies on, half to
    even where it lies on the tie or is not given (``format``'s rounding of a float)."""
    scaled, rest = divmod(arena * 10 ** places, bound)
    if 2 * rest == bound and near is not None and near != Fraction(2 * scaled + 1, 2 * 10 ** places):
        scaled += near > Fraction(2 * scaled + 1, 2 * 10 ** places)
    elif 2 * rest > bound or (2 * rest == bound and scaled % 2):
        scaled += 1
    whole, frac = divmod(scaled, 10 ** places)
    return f"{whole}.{frac:0{places}d}" if places else f"{whole}"


def json_text(doc: Any) -> str | None:
    """``doc`` as the indented JSON memplan writes, or None when the loaders would not read it back (NaN, a
    numpy scalar, a set, or nesting past ``MAX_JSON_DEPTH`` by the reader's own measure): the one dump of
    ``save_graph`` and ``Plan.to_json``, whose callers then name the entry or field at fault."""
    try:
        text = _dumps_by_entry(doc) if _by_entry(doc) else json.dumps(doc, indent=1, allow_nan=False, default=_json_int)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if json_depth(text.encode(), MAX_JSON_DEPTH) <= MAX_JSON_DEPTH else None


#: a document's top-level list longer than this is dumped one entry at a time (``_dumps_by_entry``)
BY_ENTRY = 1000


def _by_entry(doc: Any) -> bool:
    """Whether ``doc`` is an object of string keys with a list of more than ``BY_ENTRY`` entries (a graph's
    tensors and nodes, a plan's order and tensors)."""
    return (type(doc) is dict and all(type(k) is str for k in doc)
            and any(type(v) is list and len(v) > BY_ENTRY for v in doc.values()))


def _dumps_by_entry(doc: dict[str, Any]) -> str:
    """``json.dumps(doc, indent=1, allow_nan=False, default=_json_int)``, the same text, with a top-level list
    dumped ``BY_ENTRY`` entries at a time, each piece indented one level deeper and its brackets cut off (a JSON
    string holds no raw newline, so every newline of a piece starts one of its lines). Why: with ``indent``
    Python's encoder is the pure-Python one, which collected the whole document as tens of small strings per
    entry before joining them: about ten times the text at once (a 1M-node graph's 205 MB of JSON: 2.3 GB)."""
    encode = json.JSONEncoder(indent=1, allow_nan=False, default=_json_int).encode

    def dump(value: Any) -> str:   # (a value of the top-level object: one level deep)
        return encode(value).replace("\n", "\n ")

    parts = []
    for key, value in doc.items():
        if type(value) is list and value:
            # "[\n  e,\n  e\n ]" once a level deeper: the entries' lines, as they stand in the whole list
            body = ",\n".join([dump(value[k:k + BY_ENTRY])[2:-3] for k in range(0, len(value), BY_ENTRY)])
            parts.append(f" {encode(key)}: [\n{body}\n ]")
        else:
            parts.append(f" {encode(key)}: {dump(value)}")
    return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"


def json_writable(value: Any, depth: int = 0) -> bool:
    """Whether ``json`` writes ``value`` as JSON that the loaders read back (``json_trouble``): the probe
    that names the field (plan) or entry (graph) a save cannot write."""
    return json_trouble(value, depth) is None


def json_trouble(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is no JSON the loaders read back, or None: NaN or Infinity, a numpy scalar or a set
    (``json``'s words), or arrays and objects nested more than ``MAX_JSON_DEPTH`` deep counting the
    ``depth`` levels around it (the file was written, then refused; far deeper, ``json`` hit Python's
    recursion limit)."""
    if depth + nesting(value, MAX_JSON_DEPTH - depth) > MAX_JSON_DEPTH:
        return f"nested more than {MAX_JSON_DEPTH} levels deep in the file"
    try:
        json.dumps(value, allow_nan=False, default=_json_int)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return key_trouble(value)


def key_trouble(value: Any) -> str | None:
    """Why ``json`` writes an object of ``value`` with one key twice, or None. It writes a key that is no string
    as text (``1`` as "1", ``True`` as "true", ``None`` as "null"), so ``{1: a, "1": b}`` in a graph's ``attrs`` or
    a plan's ``solver`` block (from code) became a file repeating "1", which the loaders refuse (a repeated key
    is ambiguous). Call it on what ``json.dumps`` has written: a cyclic value would never end here."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if any(type(k) is not str for k in v):
                names: dict[str, Any] = {}
                for k in v:
                    name = _json_key(k)
                    if name in names:
                        return f"keys {names[name]!r} and {k!r} are both written as {name!r}"
                    names[name] = k
            stack.extend(x for x in v.values() if isinstance(x, (dict, list, tuple)))
        elif isinstance(v, (list, tuple)):
            stack.extend(x for x in v if isinstance(x, (dict, list, tuple)))
    return None


def _json_int(value: Any) -> int:
    """``json``'s fallback for what it cannot write: an integer to Python (``errors.as_int``: a numpy integer
    in a graph's ``attrs.shape`` or a solver block) is written as the plain int it equals, the same bytes; any
    other object is still json's TypeError naming its type (a numpy float, a set)."""
    v = as_int(value)
    if v is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return v


def nesting(value: Any, stop: int) -> int:
    """How deep lists, tuples and dicts nest in ``value`` (``[1]`` is 1, as in JSON text), found without
    recursion; it stops counting once past ``stop`` (a cycle is infinitely deep)."""
    best = 0
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, (list, tuple)):
            continue
        d += 1
        if d > best:
            best = d
            if best > stop:
                return best
        stack.extend((x, d) for x in v)
    return best


def check_plan_fields(plan: Plan, source: str = "plan") -> None:
    """Raise ``PlanFormatError`` unless every field of ``plan`` has the type and range ``plan_from_dict``
    demands of a file: a Plan built in code (not loaded) may hold a float offset, a string stream or a
    malformed entry, which the verifier would misjudge or crash on and whose file could not be read back.
    A plan that passed (or that ``plan_from_dict`` read) is not checked again while its fields are the objects
    that passed (``_mark_checked``): they are immutable once checked, and ``memplan verify`` checked a plan of a
    million entries three times (pairing check, verifier, ``offsets``)."""
    if _fields_checked(plan):
        return

    def integer(v: Any, what: str, low: int = -INT64, top: int = INT64 - 1) -> int:
        i = as_int(v)
        if i is None or not low <= i <= top:
            raise PlanFormatError(f"{source}: {what} is not an integer in {'±2**63' if low < 0 else f'{low}..{top}'} "
                                  f"({type(v).__name__} {_short(v)})")
        return i

    if not isinstance(plan.graph, str):
        raise PlanFormatError(f"{source}: field 'graph' is not a string ({type(plan.graph).__name__})")
    object.__setattr__(plan, "graph", plain_str(plan.graph))
    integer(plan.alignment, "field 'alignment'", 1)  # every root offset is a multiple of it
    for key in ("arena_bytes", "lower_bound_bytes"):
        integer(getattr(plan, key), f"field {key!r}", 0)
    integer(plan.streams, "field 'streams'", 1, MAX_STREAMS)  # order's stream ids lie in 0 .. streams - 1
    integer(plan.devices, "field 'devices'", 1, MAX_STREAMS)
    for key, fields in (("order", ("node", "stream")), ("events", ("after", "before")),
                        ("tensors", ("id", "offset", "size"))):
        entries = getattr(plan, key)
        if not isinstance(entries, (tuple, list)):
            raise PlanFormatError(f"{source}: field {key!r} is not a tuple ({type(entries).__name__})")
        if _entries_ok(entries, key):
            continue
        plain = []   # the entries with plain ints (a numpy integer is one), written back below
        for i, e in enumerate(entries):  # the first bad entry, named
            if not isinstance(e, (tuple, list)) or len(e) != len(fields):
                raise PlanFormatError(f"{source}: {key}[{i}] is not a ({', '.join(fields)}) tuple ({_short(e)})")
            if not isinstance(e[0], str) or (key == "events" and not isinstance(e[1], str)):
                raise PlanFormatError(f"{source}: {key}[{i}]: {fields[0]!r} is not a string ({_short(e)})")
            # ids of a str subclass as plain str: what the file says, not what the class's ``==`` or ``<`` makes of them
            if key == "order":
                e = (plain_str(e[0]), integer(e[1], f"order[{i}] ({e[0]!r}): 'stream'"))
            elif key == "tensors":
                off = None if e[1] is None else integer(e[1], f"tensors[{i}] ({e[0]!r}): 'offset'")
                e = (plain_str(e[0]), off, integer(e[2], f"tensors[{i}] ({e[0]!r}): 'size'"))
            else:
                e = (plain_str(e[0]), plain_str(e[1]))
            plain.append(tuple(e))
        object.__setattr__(plan, key, tuple(plain))   # equal values: what the plan means is unchanged
    for key in ("node_devices", "tensor_devices", "device_arena_bytes"):
        values = getattr(plan, key)
        if not isinstance(values, (tuple, list)):
            raise PlanFormatError(f"{source}: field {key!r} is not a tuple ({type(values).__name__})")
        if any(type(v) is not int for v in values):
            object.__setattr__(plan, key, tuple(integer(v, f"{key}[{i}]") for i, v in enumerate(values)))
        else:
            for i, v in enumerate(values):
                integer(v, f"{key}[{i}]")
    if plan.devices == 1:
        _check_one_device_fields(plan, source)
    for key in ("solver", "extra"):
        if not isinstance(getattr(plan, key), Mapping):
            raise PlanFormatError(f"{source}: field {key!r} is not a mapping ({type(getattr(plan, key)).__name__})")
    _mark_checked(plan)


#: the Plan fields ``check_plan_fields`` judges (all of them)
_CHECKED_FIELDS = ("graph", "alignment", "arena_bytes", "lower_bound_bytes", "streams", "order", "events", "tensors",
                   "solver", "extra", "devices", "node_devices", "tensor_devices", "device_arena_bytes")
#: id() of each live Plan that passed ``check_plan_fields`` -> (a weak reference to it, the field objects that passed).
#: Kept apart from the plan (not in its ``__dict__``, which callers spread into ``Plan(**p.__dict__)``); an entry goes
#: with its plan (the reference's callback), and a reused id is told apart by the reference
_CHECKED: dict[int, tuple[weakref.ref, tuple]] = {}


def _mark_checked(plan: Plan) -> None:
    """Remember that ``plan``'s fields, these very objects, have the types and ranges ``check_plan_fields`` demands.
    Sound because what was checked cannot change: the entries are then tuples of str, int and None, the scalars
    immutable, and ``solver``/``extra`` are judged by their type alone; a field set anew (``object.__setattr__``)
    is another object, and the plan is checked again."""
    key = id(plan)

    def forget(ref: weakref.ref, key: int = key) -> None:
        held = _CHECKED.get(key)
        if held is not None and held[0] is ref:
            del _CHECKED[key]

    _CHECKED[key] = (weakref.ref(plan, forget), tuple(getattr(plan, k) for k in _CHECKED_FIELDS))


def _fields_checked(plan: Any) -> bool:
    """Whether ``plan``'s fields are those ``_mark_checked`` remembered for it (by identity)."""
    held = _CHECKED.get(id(plan))
    return (held is not None and held[0]() is plan
            and all(v is getattr(plan, k) for k, v in zip(_CHECKED_FIELDS, held[1])))


def _check_one_device_fields(plan: Plan, source: str) -> None:
    """PlanFormatError where a one-device Plan built in code holds device fields that contradict it: a node or tensor
    on a device other than 0, or ``device_arena_bytes`` other than ``(arena_bytes,)`` (or none), as
    ``_check_one_device`` refuses them in a file. Why: ``verify`` called such a plan safe (it reads device fields only
    from a plan of several devices) while ``runtime.binding.bind`` refused it, ``simulate`` counted a COPY between its
    "devices" as a transfer, and ``save`` dropped the fields, so the plan read back from its own file compared unequal."""
    for key, entries, name in (("node_devices", plan.order, "node"), ("tensor_devices", plan.tensors, "tensor")):
        i = next((i for i, d in enumerate(getattr(plan, key)) if d != 0), None)
        if i is not None:
            which = f"{name} {_short(entries[i][0])}" if i < len(entries) else f"entry {i}"
            raise PlanFormatError(f"{source}: field {key!r} puts {which} on device {getattr(plan, key)[i]}, outside "
                                  "0..0 (the plan spans 1 device)")
    if plan.device_arena_bytes not in ((), (plan.arena_bytes,)):
        raise PlanFormatError(f"{source}: field 'device_arena_bytes' is {_short(plan.device_arena_bytes)} in a "
                              "plan of 1 device: it can only be (arena_bytes,) or empty")


#: per entry list of a Plan: the types each column may hold
_COLUMNS = {"order": ((str,), (int,)), "events": ((str,), (str,)), "tensors": ((str,), (int, type(None)), (int,))}


def _entries_ok(entries, key: str) -> bool:
    """Whether every entry of a Plan's ``order``/``events``/``tensors`` is well formed, column by column
    (a million tensors in a fraction of a second); False sends ``check_plan_fields`` entry by entry."""
    if not entries:
        return True
    columns = _COLUMNS[key]
    if not set(map(type, entries)) <= {tuple, list} or set(map(len, entries)) != {len(columns)}:
        return False
    return _columns_ok(tuple(zip(*entries)), key)


def _columns_ok(cols: tuple, key: str) -> bool:
    """``_entries_ok`` of the entries whose columns are ``cols`` (one sequence per entry field, of equal length)."""
    for col, allowed in zip(cols, _COLUMNS[key]):
        if not set(map(type, col)) <= set(allowed):  # exact types: no bool, no float, no int subclass
            return False
        if int in allowed:
            ints = [v for v in col if v is not None] if type(None) in allowed else col
            if ints and not (-INT64 <= min(ints) and max(ints) < INT64):
                return False
    return True


#: the fields of an ``order``, ``events`` and ``tensors`` entry (``device``: a multi-device plan's)
ENTRY_FIELDS = {"order": frozenset({"node", "stream", "device"}), "events": frozenset({"after", "before"}),
                "tensors": frozenset({"id", "offset", "size", "device"})}


def _typo_note(doc: dict, key: str, fields: frozenset[str] = PLAN_FIELDS, where: str = "the document") -> str:
    """``graph.missing_field_note`` of a plan document's (or entry's, ``where``) missing field ``key``. Why: a plan
    edited by hand with ``"evnets"`` was refused as "field 'events' is missing" with no word of the key that was
    there, where a graph document's misspelt fields are named; an entry's ``"nod"`` or ``"ofset"`` was "order[0]
    has no 'node'" alone."""
    from .graph import missing_field_note

    return missing_field_note(doc, key, fields, where)


@named_options
@paused
def plan_from_dict(doc: Any, *, source: str = "plan") -> Plan:
    """Parse a plan document, rejecting structural problems (the verifier judges safety); messages
    start with ``source``, the file name for a document read from one."""
    if not isinstance(source, str):   # the label every message starts with
        raise PlanFormatError(f"source must be a string naming the document, not {type(source).__name__}")
    if not isinstance(doc, dict):
        raise PlanFormatError(f"{source}: top level must be a JSON object" + array_hint(doc, "plan"))
    if not isinstance(doc.get("format"), str) or doc.get("format") != PLAN_FORMAT:   # an array: elementwise
        fmt = doc.get("format")
        # (a document without the field said "unknown format None", as if it had named one)
        what = f"unknown format {_short(fmt)}" if "format" in doc else "no 'format' field"
        raise PlanFormatError(f"{source}: {what} (expected {PLAN_FORMAT!r})"
                              + swapped_hint(fmt, "plan", doc) + _typo_note(doc, "format"))

    def need(key: str, typ: type | tuple[type, ...]) -> Any:
        v = doc.get(key)
        if typ is int and as_int(v) is not None:   # a numpy integer in a document built in Python too
            return as_int(v)
        if not isinstance(v, typ) or isinstance(v, bool):
            # (it said "is missing or not an int" of a field that was there, 2.0 or "2": which of the two, and what)
            if key not in doc:
                raise PlanFormatError(f"{source}: field {key!r} is missing" + _typo_note(doc, key))
            name = {int: "an integer", list: "a list"}.get(typ, f"a {getattr(typ, '__name__', typ)}")
            raise PlanFormatError(f"{source}: field {key!r} is {_json_shown(v)}, not {name}")
        return v

    def count(key: str, top: int = INT64 - 1, low: int = 0) -> int:
        v = need(key, int)
        if not low <= v <= top:
            raise PlanFormatError(f"{source}: field {key!r} is {_short(v)}, outside {low}..{top}")
        return v

    if not isinstance(doc.get("graph", ""), str):
        raise PlanFormatError(f"{source}: field 'graph' is not a string (the graph's name)")
    # the contract's solver block is an object; a list or string there was silently read as {} (its content lost)
    if "solver" in doc and not isinstance(doc["solver"], dict):
        raise PlanFormatError(f"{source}: field 'solver' is not an object ({_short(doc['solver'])})")
    # the free-form blocks (the solver block, fields another tool added) hold only what a plan file holds: a
    # document built in Python with ``solver["gap"] = float("nan")`` was taken, and ``to_json``/``save_plan`` of the
    # plan refused it later, far from the dict that held it (``load_plan`` of a file refuses NaN as it reads it)
    for key in ("solver", *(k for k in doc if k not in PLAN_FIELDS)):
        if key in doc:
            _check_free_form(key, doc[key], source)

    # each entry named by list and index (and its node or tensor), with the file name: the entries of plain types
    # (every file's) read at once, column by column (``_read_entries``), the rest entry by entry (``_entries_named``)
    order = _read_entries(need("order", list), "order", source)
    events = _read_entries(need("events", list), "events", source)
    tensors = _read_entries(need("tensors", list), "tensors", source)
    devices, node_devices, tensor_devices, device_arena = _read_devices(doc, source)
    plan = Plan(
        graph=plain_str(doc.get("graph", "")),
        alignment=count("alignment", low=1),
        arena_bytes=count("arena_bytes"),
        lower_bound_bytes=count("lower_bound_bytes"),
        streams=count("streams", MAX_STREAMS, 1),
        order=order,
        events=events,
        tensors=tensors,
        solver=doc.get("solver", {}),   # (checked above; Plan copies both)
        extra={k: v for k, v in doc.items() if k not in PLAN_FIELDS},
        devices=devices, node_devices=node_devices, tensor_devices=tensor_devices,
        device_arena_bytes=device_arena,
    )
    # every field was read to the types and ranges ``check_plan_fields`` demands: it is not checked again (a plan of
    # a million entries was checked three times more on its way through ``memplan verify``)
    _mark_checked(plan)
    return plan


def _check_free_form(key: Any, value: Any, source: str) -> None:
    """PlanFormatError unless the free-form field ``key`` of a plan document (``solver``, or a field memplan does not
    define) is JSON a plan file holds, naming the path of the first value that is not (``solver.gap``,
    ``tool.runs[2]``): NaN and infinities (any float's), and what ``json_trouble`` names (a set, a numpy float32, an
    object; nesting past ``MAX_JSON_DEPTH``; two keys JSON writes alike) by the field. Why: ``plan_from_dict`` of such
    a document built in Python returned a plan, and only its ``to_json``/``save_plan`` refused it (the contract's
    plan is JSON: no field may hold what JSON cannot, and the free-form blocks are no exception). Each container
    is walked once (a cycle, or a list shared twice, is not walked again: ``json_trouble`` refuses a cycle)."""
    name = plain_str(key) if isinstance(key, str) else _json_key(key) if isinstance(key, (int, float)) else key
    stack: list[tuple[Any, str, int]] = [(value, f"{name}", 1)]
    seen: set[int] = set()
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                raise PlanFormatError(f"{source}: field {path!r} is {float.__repr__(v)}: NaN and infinities are no "
                                      "JSON numbers (a plan file cannot hold them; load_plan refuses them)")
            continue
        if not isinstance(v, (dict, list, tuple)) or id(v) in seen or depth > MAX_JSON_DEPTH:
            continue   # (scalars, repeats and what is too deep: ``json_trouble`` below names what is wrong there)
        seen.add(id(v))
        if isinstance(v, dict):
            children = [(x, _child_path(path, k), depth + 1) for k, x in v.items()]
        else:
            children = [(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
        stack.extend(reversed(children))   # (document order: the first bad value is named)
    trouble = json_trouble(value, depth=1)
    if trouble is not None:
        raise PlanFormatError(f"{source}: field {name!r} is not JSON that a plan file holds ({trouble})")


def _child_path(path: str, key: Any) -> str:
    """The path of ``key`` in the object at ``path``: ``solver.gap``, or ``solver["a b"]`` for a key that is no
    plain name (so a path reads back as one)."""
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{plain_str(key)}"
    return f"{path}[{json.dumps(plain_str(key)) if isinstance(key, str) else _short(key)}]"


#: the keys of an ``order``, ``events`` and ``tensors`` entry ``plan_from_dict`` reads: the ids, then the integers
_ENTRY_KEYS = {"order": (("node",), ("stream",)), "events": (("after", "before"), ()),
               "tensors": (("id",), ("offset", "size"))}


def _read_entries(entries: list, key: str, source: str) -> tuple[tuple, ...]:
    """The entries of a plan document's list ``key`` as a Plan's tuples, or ``PlanFormatError`` naming the first bad
    one. Entries of plain types (dicts of str ids and int values, every JSON file's) are read column by column and
    judged at once by ``_entries_ok``, the test ``check_plan_fields`` makes; any other list entry by entry
    (``_entries_named``), which names what is wrong or converts what is an integer or a string to Python (a numpy
    integer, a str subclass in a document built in code). Why: each entry was checked once to name a bad one, then
    read again converting every value (``as_int`` twice per integer), then checked again by ``check_plan_fields``."""
    ids, ints = _ENTRY_KEYS[key]
    names = ids + ints
    try:
        if set(map(type, entries)) <= {dict}:
            cols = [[e[f] for e in entries] for f in names]
            if _columns_ok(cols, key):
                return tuple(zip(*cols))
    except KeyError:   # (a missing key: named below)
        pass
    return _entries_named(entries, key, source)


def _entries_named(entries: list, key: str, source: str) -> tuple[tuple, ...]:
    """``_read_entries`` entry by entry: the first bad entry named by list and index (and its node or tensor)."""
    ids, ints = _ENTRY_KEYS[key]
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise PlanFormatError(f"{source}: {key}[{i}] is not an object")
        for f in ids + ints:
            if f not in e:
                raise PlanFormatError(f"{source}: {key}[{i}] has no {f!r}"
                                      + _typo_note(e, f, ENTRY_FIELDS[key], "the entry"))
        for f in ids:
            if not isinstance(e[f], str):
                raise PlanFormatError(f"{source}: {key}[{i}]: {f!r} is not a string ({_json_shown(e[f])})")
        row = [plain_str(e[f]) for f in ids]
        for f in ints:
            v = e[f]
            i64 = as_int(v)
            if not (v is None and f == "offset") and (i64 is None or not -INT64 <= i64 < INT64):
                raise PlanFormatError(f"{source}: {key}[{i}] ({e[ids[0]]!r}): {f!r} is not an integer within ±2**63 "
                                      f"({_json_shown(v)})")
            row.append(None if v is None else i64)
        out.append(tuple(row))
    return tuple(out)


class Mismatches(list):
    """``plan_mismatches``' findings (a list of ``(rule, message)``, at most ``limit`` of each rule) with ``total``, how
    many the plan has in all: each node or tensor a message names counts, "and N more" included, and so does each
    finding past the limit (a missing node past ``limit`` unknown ones, every event that names an unknown node). Why:
    "plan has no entry for graph node 'v' and 999 more" was one finding in ``PlanMismatch.total``, where the verifier
    (``verify.Findings.total``) counts the same plan's 1,000 missing nodes as 1,000."""

    total: int = 0
    #: {index of a finding: the findings its message counts itself ("... and 5 more": 6)}, for ``UnsafePlan``
    named: dict[int, int] | None = None


def plan_mismatches(graph: Graph, plan: Plan, limit: int = 20) -> Mismatches:
    """Whether ``plan`` was made for ``graph``, as findings ``(rule, message)``; empty when it was.

    The plan must name the graph (when it names one), list exactly the graph's nodes once each in
    ``order`` and only those in ``events`` (rule 1), and place exactly the graph's tensors once each
    with the graph's sizes (rule 4). Nothing else: safety is the verifier's job. At most ``limit``
    findings of each rule are listed; ``total`` counts them all (``Mismatches``). Why of each: a plan whose
    order named ``limit`` unknown nodes was refused for rule 1 alone, its tensors (unknown ones, other sizes)
    never looked at. A node or tensor the plan lacks is put down to another graph ("(wrong graph?)") only where
    the plan names another graph or an id this graph does not have: a plan of this graph with one entry dropped
    (an edited file) was told it was another graph's.
    """
    out = Mismatches()
    named: dict[int, int] = {}
    out.named = named
    total = 0

    def found(rule: int, msg: str, count: int = 1) -> None:
        nonlocal total
        total += count
        out.append((rule, msg))

    split = split_graph_hint(graph, plan)
    if split:
        found(1, split)
    if plan.graph and plan.graph != graph.name:
        found(1, f"plan was made for graph {_short(plan.graph)}, not {_short(graph.name)} (wrong graph?)")
    nindex, tindex = graph.node_index, graph.tensor_index
    node_twin, tensor_twin = unicode_twins(nindex), unicode_twins(tindex)
    spelled = twin_spelling(tindex, nindex)
    foreign = bool(out) or any(nid not in nindex for nid, _ in plan.order) or any(
        tid not in tindex for tid, _o, _s in plan.tensors)
    guess = " (wrong graph?)" if foreign else ""

    def own(x: str) -> str:   # a graph's id, escaped where another of its ids prints alike (``twin_spelling``)
        text = spelled(x)
        return text if len(text) <= 60 else text[:57] + "..."

    def missing(ids: list[str], present: set[str], noun: str) -> tuple[str, int]:
        gone = [i for i in ids if i not in present]
        return some_of(gone, noun, own) + guess, len(gone)

    seen: set[str] = set()
    for nid, _ in plan.order:
        if len(out) >= limit:   # (past the limit counted, not written)
            total += nid not in nindex or nid in seen
        elif nid not in nindex:
            found(1, f"plan names node {_short(nid)}, which graph {_short(graph.name)} does not have"
                     + (node_twin(nid) or " (wrong graph?)"))
        elif nid in seen:
            found(1, f"node {own(nid)} appears twice in the plan's order")
        seen.add(nid)
    if len(seen & nindex.keys()) < len(nindex):
        text, n = missing([n.id for n in graph.nodes], seen, "graph node")
        found(1, "plan has no entry for " + text, n)
        named[len(out) - 1] = n
    bad_events = {(a, b) for a, b in plan.events if a not in nindex or b not in nindex}
    if bad_events:
        a, b = next((a, b) for a, b in plan.events if a not in nindex or b not in nindex)
        found(1, f"event {_short(a)}->{_short(b)} names a node the graph does not have"
                 + (node_twin(a if a not in nindex else b) or " (wrong graph?)"), len(bad_events))
    del out[limit:]
    ordered = len(out)   # rule 1's findings: rule 4's have a limit of their own
    placed: set[str] = set()
    for tid, _off, size in plan.tensors:
        t = tindex.get(tid)
        if len(out) - ordered >= limit:   # (past the limit counted, not written)
            total += t is None or tid in placed or size != graph.tensors[t].size
        elif t is None:
            found(4, f"plan places tensor {_short(tid)}, which graph {_short(graph.name)} does not have"
                     + (tensor_twin(tid) or " (wrong graph?)"))
        elif tid in placed:
            found(4, f"tensor {own(tid)} is placed twice")
        elif size != graph.tensors[t].size:
            found(4, f"tensor {own(tid)} has size {size} in the plan but {graph.tensors[t].size} in the "
                     "graph (wrong graph?)")
        placed.add(tid)
    if len(placed & tindex.keys()) < len(tindex):
        text, n = missing([t.id for t in graph.tensors], placed, "graph tensor")
        found(4, "plan does not place " + text, n)
        named[len(out) - 1] = n
    del out[ordered + limit:]
    out.total = total
    out.named = {i: n for i, n in named.items() if i < len(out)}
    return out


def split_graph_hint(graph: Graph, plan: Plan) -> str | None:
    """The finding for a multi-device plan paired with the graph it was planned *from*, else None. Why: such a
    plan refers to the split graph (with COPY nodes), which ``memplan.plan(graph, devices=2)`` never hands back,
    and "plan names node 'copy:h@dev1' ... (wrong graph?)" did not say which graph was the right one. Not where the
    plan names another graph (its split graph keeps the name of the graph it was split from): a split plan of
    'llama-L2-b1' paired with the Q/K/V graph was told it "refers to the split graph (graph 'qkv' with COPY nodes),
    not the graph it was planned from", as if it had been planned from 'qkv'."""
    from .ops import COPY_OP

    if plan.devices < 2 or any(n.op == COPY_OP for n in graph.nodes) or (plan.graph and plan.graph != graph.name):
        return None
    if all(nid in graph.node_index for nid, _ in plan.order):
        return None
    return (f"the plan is split over {plan.devices} devices and refers to the split graph (graph {_short(graph.name)} "
            "with COPY nodes), not the graph it was planned from: pair it with the graph `memplan plan --graph-out` "
            f"wrote, or in Python memplan.plan_graph(graph, devices={plan.devices}).graph")


@paused
def check_plan_for(graph: Graph, plan: Plan) -> None:
    """Raise ``PlanMismatch`` (a ``PlanFormatError`` and an ``UnsafePlan``) unless ``plan`` was made for
    ``graph``: the one pairing check of every command and function that takes both. A plan whose fields a
    plan file could not hold (``check_plan_fields``: a Plan built in code) is a ``PlanFormatError`` first."""
    check_plan_fields(plan)
    found = plan_mismatches(graph, plan)
    if found:
        raise PlanMismatch(found, total=found.total, named=found.named)


def plan_alone_problems(plan: Plan, limit: int = 1) -> tuple[list[str], int]:
    """What a plan document contradicts in itself, without its graph: up to ``limit`` messages (each naming its node,
    tensor or event) and how many there are in all. Every one of them the verifier (``verify.check``) refuses for any
    graph, so a plan it calls safe has none. Checked: node and tensor ids non-empty and listed once; each node on a stream in
    ``0..streams-1``; each event between two listed nodes on different streams, its record issued before its wait;
    each placed tensor at a non-negative offset with ``offset + size`` within ``arena_bytes`` (its device's arena in a
    split plan), a size of at least 0; a lower bound no larger than the arena; a split plan's devices in range, each
    stream on one device. Why: ``memplan show plan.json`` (no ``--graph``) summarised a plan with a node on stream 7 of
    3, an event waited on before its record, a tensor placed past the arena or twice, as readily as a sound one (and
    a tool that trusts the summary trusts the file). Linear in the plan's size."""
    found: list[str] = []
    total = 0

    def bad(msg: str) -> None:
        nonlocal total
        total += 1
        if len(found) < limit:
            found.append(msg)

    split = plan.devices > 1
    ids = [nid for nid, _ in plan.order]
    streams = [s for _, s in plan.order]
    # each id's first place (a dict built from the end); the entry-by-entry pass below only where something is wrong,
    # to name it (a million nodes: 0.3 s instead of 1.2 s)
    place: dict[str, int] = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1)))
    stream_of: dict[str, int] = dict(zip(ids, streams))
    fine = (len(place) == len(ids) and "" not in place and not split
            and (not streams or (min(streams) >= 0 and max(streams) < plan.streams)))
    if not fine:
        place, stream_of = {}, {}
    device_of_stream: dict[int, tuple[int, str]] = {}
    for k, (nid, s) in enumerate(() if fine else plan.order):
        if not nid:   # (a graph refuses an empty id: graph._register_id)
            bad(f"order[{k}] names node '', an empty id (a node id is a non-empty string)")
        if nid in place:
            bad(f"node {_short(nid)} appears twice in order (order[{place[nid]}] and order[{k}])")
            continue
        place[nid], stream_of[nid] = k, s
        if not 0 <= s < plan.streams:
            bad(f"node {_short(nid)} runs on stream {s}, outside 0..{plan.streams - 1} (the plan declares "
                f"{counted(plan.streams, 'stream')})")
        if split and k < len(plan.node_devices):
            d = plan.node_devices[k]
            if not 0 <= d < plan.devices:
                bad(f"node {_short(nid)} runs on device {d}, outside 0..{plan.devices - 1}")
            elif device_of_stream.setdefault(s, (d, nid))[0] != d:
                other = device_of_stream[s]
                bad(f"stream {s} runs node {_short(other[1])} on device {other[0]} and node {_short(nid)} on device "
                    f"{d}: a stream belongs to one device")
    for a, b in dict.fromkeys(plan.events):   # (an event listed twice restates one edge: harmless, as verify holds)
        pa, pb = place.get(a), place.get(b)
        if pa is not None and pb is not None and pa < pb and stream_of[a] != stream_of[b]:
            continue   # (the messages below are made only for the events at fault: a million events, 2 s less)
        what = f"event {_short(a)}->{_short(b)}"
        if pa is None or pb is None:
            bad(f"{what} names node {_short(a if pa is None else b)}, which the plan's order does not list")
        elif stream_of[a] == stream_of[b]:
            bad(f"{what} joins stream {stream_of[a]} to itself (an event links two streams)")
        else:
            bad(f"{what} is waited on before it is recorded: {_short(b)} is issued at order[{pb}], "
                f"{_short(a)} at order[{pa}] (a wait on an event not yet recorded is a no-op: a race)")
    arenas = plan.device_arena_bytes if split else ()
    for d, a in enumerate(arenas):
        if not 0 <= a <= plan.arena_bytes:
            bad(f"device {d}'s arena of {a} bytes lies outside 0..arena_bytes {plan.arena_bytes}")
    tids = [t for t, _o, _s in plan.tensors]
    ends = [o + z for _t, o, z in plan.tensors if o is not None]
    fine = (not split and len(set(tids)) == len(tids) and "" not in tids
            and all(z >= 0 for _t, _o, z in plan.tensors) and all(o >= 0 for _t, o, _z in plan.tensors if o is not None)
            and (not ends or max(ends) <= plan.arena_bytes))
    placed: dict[str, int] = {}
    for k, (tid, off, size) in enumerate(() if fine else plan.tensors):
        if not tid:
            bad(f"tensors[{k}] places tensor '', an empty id (a tensor id is a non-empty string)")
        if tid in placed:
            bad(f"tensor {_short(tid)} is placed twice (tensors[{placed[tid]}] and tensors[{k}])")
            continue
        placed[tid] = k
        if size < 0:
            bad(f"tensor {_short(tid)} has size {size}, below 0")
            continue
        d = plan.tensor_devices[k] if split and k < len(plan.tensor_devices) else None
        if d is not None and not 0 <= d < plan.devices:
            bad(f"tensor {_short(tid)} lives on device {d}, outside 0..{plan.devices - 1}")
            continue
        if off is None:
            continue
        end, where = (plan.arena_bytes, "arena_bytes") if d is None or d >= len(arenas) else (
            arenas[d], f"device {d}'s arena")
        if off < 0:
            bad(f"tensor {_short(tid)} has offset {off}, below 0")
        elif off + size > end:
            bad(f"tensor {_short(tid)} [{off}, {off + size}) ends past {where} of {end} bytes")
    if plan.lower_bound_bytes > plan.arena_bytes:
        bad(f"lower_bound_bytes {plan.lower_bound_bytes} exceeds arena_bytes {plan.arena_bytes}: no plan beats a "
            "proven bound")
    return found, total


def check_plan_alone(plan: Plan, source: str = "plan") -> None:
    """``PlanFormatError`` naming the first thing ``plan`` contradicts in itself (``plan_alone_problems``) and how
    many more there are: the check of a command that reads a plan without its graph (``memplan show PLAN``)."""
    check_plan_fields(plan, source)
    refuse_self_contradiction(plan, source)


def refuse_self_contradiction(plan: Plan, source: str = "plan") -> None:
    """``check_plan_alone`` for a plan whose fields are already checked (``check_plan_fields``): ``describe`` checks
    them as it takes its argument, and a second pass cost a million-node plan as much again."""
    _check_device_fields(plan)
    found, total = plan_alone_problems(plan)
    if found:
        more = f" (and {counted(total - 1, 'more problem')})" if total > 1 else ""
        raise PlanFormatError(f"{source}: {found[0]}{more}; no plan with this is safe for any graph")


def _one_device_defaults(plan: Plan) -> dict[str, tuple]:
    """The device fields of one-device ``plan`` that merely restate its one device (every entry on device 0;
    ``device_arena_bytes`` of ``(arena_bytes,)``), each mapped to ``()``: what ``load_plan`` reads for them (a
    one-device file holds no device fields, and a file that restates them is read as the one device they describe).
    Why: such a plan (built in code, or ``plan_devices(g, 1)``'s) was saved without them and read back with none, so
    it compared unequal to its own file (and hashed otherwise). Fields that contradict one device are kept, for
    ``check_plan_fields`` to refuse (and they make the plan unequal to any other)."""
    def zeros(values: Any) -> bool:
        return isinstance(values, tuple) and bool(values) and all(
            not isinstance(d, bool) and as_int(d) == 0 for d in values)

    out: dict[str, tuple] = {key: () for key in ("node_devices", "tensor_devices") if zeros(getattr(plan, key))}
    arenas, arena = plan.device_arena_bytes, as_int(plan.arena_bytes)
    if (isinstance(arenas, tuple) and len(arenas) == 1 and not isinstance(arenas[0], bool) and arena is not None
            and as_int(arenas[0]) == arena):
        out["device_arena_bytes"] = ()
    return out


def _check_device_fields(plan: Plan) -> None:
    """PlanFormatError unless a multi-device plan's lists fit the file's form: one arena per device (``load_plan``
    refuses any other count) and no more devices per entry than ``order`` and ``tensors`` have entries (a file
    holds one in each entry: the rest were dropped unsaid). Not part of ``check_plan_fields``: ``verify`` reports
    such a Plan built in code as findings (rule 4, rule 1). A list shorter than its entries is written with -1
    for the missing devices, which the file holds and ``verify`` refuses."""
    if plan.devices <= 1:
        return
    if len(plan.device_arena_bytes) != plan.devices:
        listed = counted(len(plan.device_arena_bytes), "byte count")
        raise PlanFormatError(f"plan: field 'device_arena_bytes' lists {listed} for {plan.devices} devices (a plan "
                              "file lists one per device)")
    for key, entries in (("node_devices", "order"), ("tensor_devices", "tensors")):
        n = len(getattr(plan, entries))
        if len(getattr(plan, key)) > n:
            raise PlanFormatError(f"plan: field {key!r} lists {counted(len(getattr(plan, key)), 'device')} for {n} "
                                  f"{entries} entr{'y' if n == 1 else 'ies'} (a plan file holds one in each)")


def _with_devices(doc: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """``doc`` with the multi-device fields: ``devices`` and ``device_arena_bytes`` after ``streams``,
    a ``device`` in every order and tensor entry (a missing one is written as -1, which verify rejects)."""
    nd, td = plan.node_devices, plan.tensor_devices
    for k, e in enumerate(doc["order"]):
        e["device"] = nd[k] if k < len(nd) else -1
    for k, e in enumerate(doc["tensors"]):
        e["device"] = td[k] if k < len(td) else -1
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "streams":
            out["devices"] = plan.devices
            out["device_arena_bytes"] = list(plan.device_arena_bytes)
    return out


def _read_devices(doc: dict[str, Any], source: str):
    """The multi-device fields of a plan document (defaults: one device, nothing per entry)."""
    given = doc.get("devices", 1)
    devices = as_int(given)
    if devices is None or not 1 <= devices <= MAX_STREAMS:
        raise PlanFormatError(f"{source}: field 'devices' is not an integer in 1..{MAX_STREAMS} ({_json_shown(given)})")
    if devices == 1:
        _check_one_device(doc, source)
        return 1, (), (), ()
    arenas = doc.get("device_arena_bytes")
    if not isinstance(arenas, list) or len(arenas) != devices:
        raise PlanFormatError(f"{source}: field 'device_arena_bytes' must list {devices} byte counts"
                              + _typo_note(doc, "device_arena_bytes"))
    device_arena = tuple(_int(a, f"device_arena_bytes[{d}]", source) for d, a in enumerate(arenas))
    for key, name in (("order", "node"), ("tensors", "id")):   # (entries are objects: checked on entry)
        i = next((i for i, e in enumerate(doc[key]) if "device" not in e), None)
        if i is not None:   # (it said "(missing 'device')", naming no entry, nor a misspelt key there)
            raise PlanFormatError(f"{source}: a multi-device plan needs a 'device' in every order and tensor entry: "
                                  f"{key}[{i}] ({name} {_short(doc[key][i].get(name))}) has none"
                                  + _typo_note(doc[key][i], "device", ENTRY_FIELDS[key], "the entry"))
    node_devices = tuple(_int(e["device"], f"device of order entry {e.get('node')!r}", source) for e in doc["order"])
    tensor_devices = tuple(_int(e["device"], f"device of tensor {e.get('id')!r}", source) for e in doc["tensors"])
    return devices, node_devices, tensor_devices, device_arena


def _check_one_device(doc: dict[str, Any], source: str) -> None:
    """PlanFormatError where a one-device plan document (no ``devices``, or 1) holds device fields that contradict
    it: an entry on a device other than 0, or ``device_arena_bytes`` other than ``[arena_bytes]``. Why: they were
    read as nothing, and the plan verified "safe" while its file told an executor that reads them another device,
    or an arena of 5 bytes for 3,072 (and ``load_plan``/``save_plan`` dropped them unsaid). Where they agree (a tool
    that writes them for every plan) they are read as the one device they describe."""
    arenas = doc.get("device_arena_bytes")
    if arenas is not None and not (isinstance(arenas, list) and len(arenas) == 1 and not isinstance(arenas[0], bool)
                                   and as_int(arenas[0]) is not None and as_int(arenas[0]) == as_int(doc.get("arena_bytes"))):
        raise PlanFormatError(f"{source}: field 'device_arena_bytes' is {_json_shown(arenas)} in a one-device plan (no "
                              f"'devices' field, or 1): it can only be [arena_bytes]; give 'devices' for a split plan"
                              + _typo_note(doc, "devices"))
    for key, name in (("order", "node"), ("tensors", "id")):
        if not any("device" in e for e in doc[key]):   # (every one-device file: one test an entry)
            continue
        for e in doc[key]:
            d = e.get("device", 0)
            if isinstance(d, bool) or as_int(d) != 0:
                raise PlanFormatError(f"{source}: {key} entry {_short(e.get(name))} is on device {_json_shown(d)} in a "
                                      "one-device plan (no 'devices' field, or 1): give 'devices' for a split plan"
                                      + _typo_note(doc, "devices"))


def _int(v: Any, what: str, source: str = "plan") -> int:
    """``v`` if it is an integer within ±2**63, else PlanFormatError naming ``what`` in ``source`` (the file)."""
    i = as_int(v)   # a numpy integer in a document built in Python: the plain int it equals
    if i is None or not -INT64 <= i < INT64:
        raise PlanFormatError(f"{source}: {what} is not an integer within ±2**63 ({_json_shown(v)})")
    return i
