"""The iterators and generators a module tree holds (``self.it = iter(steps)``, ``itertools.count()``) and where each
stands.

Why: ``forward`` calling ``next(self.it)`` ran once, at the export, and the program holds the value it gave; every
compiled call reused it where each eager call takes the next (and compile consumed one). An export that moved one
is refused.
"""

from __future__ import annotations

import collections.abc
import contextlib
import inspect
import sys
import warnings
from typing import Any

from memplan._warnblock import warnings_caught

#: how many entries of one list, tuple or dict attribute ``held_iterators`` looks at
_ITERATORS_PER_CONTAINER = 512


def held_iterators(torch: Any, module: Any) -> list[tuple[str, Any, Any]]:
    """(label, iterator, its position: ``iterator_position``) of each iterator or generator a module of ``module``'s tree
    holds as an attribute, or in a list, tuple or dict attribute (``self.it = iter(steps)``, ``self.g = gen()``,
    ``itertools.count()``), whose position can be read. An iterator object of the user's own class (one with a
    ``__dict__``) is a settings object, whose fields ``python_state`` watches."""
    out: list[tuple[str, Any, Any]] = []
    if not isinstance(module, torch.nn.Module):
        return out
    for mod in module.modules():
        for name, value in vars(mod).items():
            label = f"{type(mod).__name__}.{name}"
            entries = [(label, value)]
            if isinstance(value, (list, tuple)):
                entries += [(f"{label}[{i}]", v) for i, v in enumerate(value[:_ITERATORS_PER_CONTAINER])]
            elif isinstance(value, dict) and name not in ("_parameters", "_buffers", "_modules"):
                entries += [(f"{label}[{k!r}]", v) for k, v in list(value.items())[:_ITERATORS_PER_CONTAINER]]
            for where, v in entries:
                if (isinstance(v, collections.abc.Iterator) and not isinstance(v, torch.Tensor)
                        and (inspect.isgenerator(v) or not hasattr(v, "__dict__"))):
                    position = iterator_position(v)
                    if position is not None:
                        out.append((where, v, position))
    return out


def iterator_position(it: Any, depth: int = 0) -> Any:
    """What tells where iterator ``it`` stands, or None where nothing does: a generator's frame (the instruction it
    waits at and its locals), a built-in iterator's ``__reduce__`` (a list iterator's index), an ``itertools``
    object's state as ``_itertools_position`` reads it (``itertools.count``'s next number). Why: ``forward`` calling ``next(self.it)`` ran once, at the export, and the program holds the value
    it gave: every compiled call reused it where each eager call takes the next (and compile consumed one)."""
    if inspect.isgenerator(it):
        frame = it.gi_frame
        if frame is None:
            return ("generator", "finished")
        return ("generator", frame.f_lasti, tuple((k, _position_part(v, depth)) for k, v in frame.f_locals.items()))
    if any(c.__module__ == "itertools" for c in type(it).__mro__):
        return _itertools_position(it, depth)
    try:
        return _position_part(it.__reduce__(), depth)
    except Exception:
        return None


def _itertools_position(it: Any, depth: int) -> Any:
    """Where an ``itertools`` object stands, without its ``__reduce__`` (deprecated in Python 3.12, a warning at
    each call, an error under ``-W error`` that made the position None, unwatched; removed in 3.14, where every
    held ``itertools.count()`` went unwatched and ``next(self.steps)`` compiled the export's value silently): its
    ``repr`` where that names its state (``count(5)``, ``repeat(x, 3)``: the times left by ``length_hint``, no
    ``repr`` of the value), its ``length_hint``, and the positions of what it holds (``gc.get_referents``: the
    iterator an ``islice``, ``chain`` or ``cycle``'s first pass advances, an ``accumulate``'s total, a
    ``product``'s result). A ``cycle`` past its first pass and a ``tee`` keep their index in C alone: where
    ``__reduce__`` still exists (Python < 3.14), its answer is taken for them, its warning off for that call."""
    import gc
    import operator

    kind = next(c for c in type(it).__mro__ if c.__module__ == "itertools").__name__
    if kind in ("cycle", "_tee") and sys.version_info < (3, 14):   # (their index: ``__reduce__`` alone tells it)
        with contextlib.ExitStack() as stack:
            if sys.version_info >= (3, 12):   # (no warning to take off before: 25 us a read saved)
                stack.enter_context(warnings_caught(ignore=False))
                warnings.simplefilter("ignore", DeprecationWarning)
            with contextlib.suppress(Exception):
                return (kind, _position_part(it.__reduce__(), depth))
    parts: list[Any] = [kind, operator.length_hint(it, -1)]
    if kind == "count":
        parts.append(repr(it))
    parts += [_position_part(ref, depth + 1) for ref in gc.get_referents(it)]
    return tuple(parts)


def _position_part(v: Any, depth: int = 0) -> Any:
    """A cheap stand-in of ``v`` for ``iterator_position``: plain values as they are, tuples item by item, a list by
    its length (a dict iterator's ``__reduce__`` lists the keys left, a new list each time), anything else by
    identity (no ``repr`` of a tensor a generator holds), and an iterator inside by its own position: ``map(float,
    [0.5, 1.0])``'s ``__reduce__`` holds the list iterator it advances, the same object at every position (round 42
    review: ``next()`` of a held ``map`` or ``filter`` compiled, and every call reused the export's value)."""
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, tuple):   # (``__reduce__``'s tuples are new each time: deeper than 8, by length, never by id)
        return tuple(_position_part(x, depth + 1) for x in v) if depth < 8 else ("tuple", len(v))
    if isinstance(v, list):
        return ("list", len(v))
    if isinstance(v, range):   # (a range iterator's ``__reduce__`` makes a new range each time: by value, not id)
        return ("range", v.start, v.stop, v.step)
    if (depth < 4 and isinstance(v, collections.abc.Iterator) and not hasattr(v, "__dict__")) or (
            depth < 4 and inspect.isgenerator(v)):
        return ("iterator", iterator_position(v, depth + 1))
    return ("object", id(v))


def advanced_iterators(held: list[tuple[str, Any, Any]]) -> list[str]:
    """The labels of ``held`` (``held_iterators``) whose iterator stands elsewhere now."""
    return [label for label, it, position in held if iterator_position(it) != position]
