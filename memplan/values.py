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
import math
import operator
from collections.abc import Callable, Mapping, Set
from typing import Any, TypeVar

from .errors import MemplanError, short_repr

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
    return cls


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
                held = ", ".join(f"{name}={short_repr(getattr(self, name, None), 40)}" for name in fields)
                raise error(f"{type(self).__name__}.{fn.__name__}: cannot be computed from field(s) {held} "
                            f"({type(exc).__name__}: {short_repr(str(exc), 80)}); a {type(self).__name__} built in "
                            "code needs fields of the types memplan gives them") from None
        return checked  # type: ignore[return-value]
    return wrap
