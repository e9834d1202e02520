"""Value semantics (``==`` and ``hash``) for memplan's public frozen dataclasses, whatever their fields hold.

Why: the generated ``__eq__`` and ``__hash__`` of a frozen dataclass compare and hash the tuple of its fields, so a
dataclass that holds numpy columns or dicts by design (``HappensBefore``, ``BufferProblem``, ``Solution``, ``Reuse``,
``Simulation``) raised on ``hash`` ("unhashable type: 'numpy.ndarray'") and on ``==`` between two equal copies ("The
truth value of an array with more than one element is ambiguous"), and one built in code with a wrong field type
(``Schedule(order={})``, ``Event({}, "b")``, ``CostModel(event_us=[])``) raised a raw TypeError from ``hash``.
``by_value`` gives each class an ``==`` that compares the fields by their plain values (an array as its list, a
mapping as its items) and a ``hash`` consistent with it that never raises.

``derived(error, *fields)`` does the same for a property or method computed from fields: one of a dataclass built
in code with fields of the wrong type (``Schedule(order=None, streams=()).stream_of()``, ``Plan(...,
arena_bytes=None).ratio``, ``Solution(..., arena=None).gap``) raised a raw TypeError from inside the arithmetic; it
is ``error`` naming the fields and their values.

Guarantee: ``a == b`` implies ``hash(a) == hash(b)``; ordinary fields (tuples of strings and integers) keep the
generated fast path, so plans and schedules hash as before.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import operator
from collections.abc import Callable, Mapping, Set
from typing import Any, TypeVar

from .errors import MemplanError, refuse_unbound, short_repr

_T = TypeVar("_T", bound=type)
_F = TypeVar("_F", bound=Callable[..., Any])

#: what NaN stands for in a frozen value: ``float("nan")`` hashes by identity, so an array's NaN (a new float per
#: ``tolist``) hashed differently on each call
_NAN = ("memplan.values", "nan")
#: what a value that is neither hashable nor a container stands for: every such value hashes alike (no ``repr``:
#: two equal objects may print differently), which keeps ``hash`` consistent with ``==``
_OPAQUE = ("memplan.values", "opaque")


def frozen(value: Any, _depth: int = 0) -> Any:
    """A hashable stand-in of ``value``: itself when hashable, a list or array as a tuple of frozen entries, a mapping
    as the frozenset of its frozen items, a set as a frozenset; anything else as one shared marker. Nesting past
    200 levels is the marker too (a self-referencing list must not recurse without end)."""
    if _depth > 200:
        return _OPAQUE
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    try:
        hash(value)
    except Exception:   # (any hash that fails: TypeError, or a class's own __hash__ raising something else)
        pass
    else:
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, (list, tuple, Mapping)):   # numpy arrays
        try:
            value = tolist()
        except Exception:
            return _OPAQUE
        if not isinstance(value, list):   # (a 0-d array: its scalar)
            return frozen(value, _depth + 1)
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v, _depth + 1) for v in value)
    if isinstance(value, Mapping):
        try:
            return ("memplan.values", "mapping", frozenset((frozen(k, _depth + 1), frozen(v, _depth + 1))
                                                           for k, v in value.items()))
        except Exception:
            return _OPAQUE
    if isinstance(value, Set):
        try:
            return frozenset(frozen(v, _depth + 1) for v in value)
        except Exception:
            return _OPAQUE
    return _OPAQUE


def by_value(cls: _T) -> _T:
    """``cls`` (a frozen dataclass) with the ``==`` and ``hash`` described in the module docstring. The compared
    fields are read by one ``attrgetter`` made here: ``dataclasses.fields`` on every call made hashing an Event
    (``Schedule`` deduplicates its events through a dict) several times slower."""
    names = tuple(f.name for f in dataclasses.fields(cls) if f.compare)
    if len(names) == 1:
        name = names[0]

        def compared(obj: Any) -> tuple:
            return (getattr(obj, name),)
    elif names:
        compared = operator.attrgetter(*names)
    else:
        def compared(obj: Any) -> tuple:
            return ()

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        if self is other:
            return True
        a, b = compared(self), compared(other)
        try:
            return bool(a == b)
        except Exception:   # (an array field: no truth value; a field whose own == raises)
            return frozen(a) == frozen(b)

    def __hash__(self: Any) -> int:
        fields = compared(self)
        try:
            return hash(fields)
        except Exception:
            return hash(frozen(fields))

    cls.__eq__ = __eq__
    cls.__hash__ = __hash__
    return bounded_repr(cls)


#: the most entries of one tuple, list or mapping that the ``repr`` of a memplan value spells out (``bounded_repr``)
REPR_ENTRIES = 32
#: the most characters of one string that it spells out
REPR_CHARS = 200
#: the deepest nesting of containers it spells out
REPR_DEPTH = 12


def bounded_repr(cls: _T) -> _T:
    """``cls`` (a dataclass) with the generated ``repr``'s text, but at most ``REPR_ENTRIES`` entries of each tuple,
    list or dict, at most ``REPR_CHARS`` characters of each string and ``REPR_DEPTH`` levels of nesting, the rest
    counted (``...<19968 more>``). Why: the generated ``repr`` spelt out every field, so ``repr(graph)`` of a
    20,000-node chain was 4.2 MB (a ``Planned`` or ``DeviceSplit`` 5 MB, a ``Plan`` 0.7 MB, growing with the graph):
    a notebook cell, a debugger's variable view, a log line or a test failure printing one stalled on megabytes.
    A value within those bounds prints exactly as before."""
    def __repr__(self: Any) -> str:
        return _repr_of(self, 0)

    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    cls.__repr__ = __repr__
    cls.__bounded_repr__ = True
    return cls


def _repr_of(value: Any, depth: int) -> str:
    """``repr(value)`` within ``bounded_repr``'s bounds: a ``bounded_repr`` dataclass field by field, the builtin
    containers and strings cut, anything else as its own ``repr`` (a numpy array summarises itself)."""
    if depth > REPR_DEPTH:
        return "..."
    kind = type(value)
    if getattr(kind, "__bounded_repr__", False) and dataclasses.is_dataclass(value):
        shown = ", ".join(f"{f.name}={_repr_of(getattr(value, f.name), depth + 1)}"
                          for f in dataclasses.fields(value) if f.repr)
        return f"{kind.__qualname__}({shown})"
    if kind is str:
        return repr(value) if len(value) <= REPR_CHARS else f"{value[:REPR_CHARS]!r}...<{len(value)} characters>"
    if kind is tuple or kind is list:
        shown = [_repr_of(v, depth + 1) for v in value[:REPR_ENTRIES]]
        if len(value) > REPR_ENTRIES:
            shown.append(f"...<{len(value) - REPR_ENTRIES} more>")
        if kind is list:
            return f"[{', '.join(shown)}]"
        return f"({shown[0]},)" if len(value) == 1 else f"({', '.join(shown)})"
    if kind is dict:
        shown = [f"{_repr_of(k, depth + 1)}: {_repr_of(v, depth + 1)}"
                 for k, v in itertools.islice(value.items(), REPR_ENTRIES)]
        if len(value) > REPR_ENTRIES:
            shown.append(f"...<{len(value) - REPR_ENTRIES} more>")
        return f"{{{', '.join(shown)}}}"
    return repr(value)


def derived(error: type[MemplanError], *fields: str) -> Callable[[_F], _F]:
    """Wrap a method (or a property's getter) computed from ``fields``: a raw TypeError, ValueError, AttributeError,
    KeyError, IndexError or OverflowError it raises (fields of a dataclass built in code holding the wrong types) becomes ``error``
    naming the class, the method and those fields' values. A ``MemplanError`` passes as it is."""
    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except MemplanError:
                raise
            except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:
                if isinstance(exc, TypeError):   # a call that does not bind (``p.ratio_text(dec=3)``) is the caller's
                    refuse_unbound(fn, f"{type(self).__name__}.{fn.__name__}", self, args, kwargs)   # not the fields'
                held = ", ".join(f"{name}={short_repr(getattr(self, name, None), 40)}" for name in fields)
                raise error(f"{type(self).__name__}.{fn.__name__}: cannot be computed from field(s) {held} "
                            f"({type(exc).__name__}: {short_repr(str(exc), 80)}); a {type(self).__name__} built in "
                            "code needs fields of the types memplan gives them") from None
        return checked  # type: ignore[return-value]
    return wrap
