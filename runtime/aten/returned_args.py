"""A container argument ``forward`` returns as itself (``return out.logits, state``): the compiled call returns the
caller's very object there, as eager does.

Why: a compiled call's output is the program's output structure unflattened, so a dict, list or tuple argument
returned as it is came back as a new container holding the same leaves (round 57 left this open: a decode step
given ``state = {"cache": c}`` that returned ``state`` gave the caller a new dict around its grown cache, where
eager's ``step(ids, state)[1] is state``), and a caller that kept writing into what it got back (``st["n"] = 1``)
wrote into a copy. Only an argument ``forward`` left as it was is so returned, or one whose change lies wholly in the
caches it holds that the compiled call grows in the caller's object (``cache_growth.nested_growth``): its leaves are
then the caller's own, as eager's are. Any other change of an argument is refused before (``call_args.input_changes``).
"""

from __future__ import annotations

from typing import Any

#: the container types whose identity ``forward`` may hand back (a ``ModelOutput`` is a dict)
CONTAINERS = (dict, list, tuple)


def _paths_of(out: Any, target: Any, path: tuple = (), depth: int = 0) -> list[tuple]:
    """Every path (keys and indices) of ``target`` itself in ``out`` through dicts, lists and tuples (a container
    returned twice, ``{"cfg": cfg, "all": [cfg]}``, is the caller's object at both)."""
    if out is target:
        return [path]
    if depth > 8:
        return []
    items = out.items() if isinstance(out, dict) else enumerate(out) if type(out) in (list, tuple) else ()
    return [found for k, v in items for found in _paths_of(v, target, (*path, k), depth + 1)]


def _containers_in(value: Any, path: tuple = (), depth: int = 0) -> list[tuple[tuple, Any]]:
    """(path inside ``value``, container) of ``value`` itself and every dict, list or non-empty tuple it holds through
    dicts, lists and tuples (a ``ModelOutput`` is a dict), ``value`` first."""
    found = [(path, value)]
    if depth > 8:
        return found
    items = value.items() if isinstance(value, dict) else enumerate(value) if type(value) in (list, tuple) else ()
    for k, v in items:
        if isinstance(v, CONTAINERS) and not (isinstance(v, tuple) and not v):
            found += _containers_in(v, (*path, k), depth + 1)
    return found


def returned_arguments(given: list[tuple[str, Any]], changed: set[str], grown_in: set[str], caches: set[str],
                       out: Any) -> list[tuple]:
    """(name, path in ``out``) of each place of each container argument of ``given`` ((name, value) pairs of the
    export's watched call) that ``forward`` returns as itself, unchanged (not in ``changed``) or changed only by the
    caches in it the compiled call grows (``grown_in``); (name, path in ``out``, path in the argument) of each
    container inside such an argument returned on its own (``return y, state["inner"]``). ``caches``: the arguments
    that are themselves caches (``Program.returned_caches``' business). An empty tuple is left out: Python has one,
    so ``is`` finds it anywhere."""
    found: list[tuple] = []
    for name, value in given:
        if not isinstance(value, CONTAINERS) or name in caches or (isinstance(value, tuple) and not value):
            continue
        if name in changed and name not in grown_in:
            continue
        for inner, held in _containers_in(value):
            found += [(name, path, inner) if inner else (name, path) for path in _paths_of(out, held)]
    return found


def _held(value: Any, path: tuple) -> Any:
    """What ``value`` holds at ``path`` (keys and indices), None where the call's argument has no container there."""
    for k in path:
        try:
            value = value[k] if isinstance(value, CONTAINERS) else None
        except (KeyError, IndexError, TypeError):
            return None
    return value


def put_arguments(named: dict[str, Any], returned: tuple[tuple, ...], out: Any) -> Any:
    """``out`` with the caller's argument (or the container it holds at the entry's third item, a path) at each path
    of ``returned`` (``Program.returned_arguments``) where the call passed one of the export's container type (a call
    may pass a list where compile's example had a tuple: the program's structure check refuses what differs);
    ``named``: the call's arguments by name."""
    put: list[tuple] = []
    for name, path, *inner in sorted(returned, key=lambda r: len(r[1])):
        caller = _held(named.get(name), inner[0]) if inner else named.get(name)
        if not isinstance(caller, CONTAINERS) or any(path[:len(p)] == p for p in put):
            continue   # (inside a caller's container put already: eager's is what the caller's holds, unchanged)
        out = put_at(out, path, caller)
        put.append(path)
    return out


def put_at(out: Any, path: tuple, value: Any) -> Any:
    """``out`` with ``value`` at ``path`` (a dict's or list's item set in place; a tuple rebuilt)."""
    if not path:
        return value
    inner = put_at(out[path[0]], path[1:], value)
    if type(out) is tuple:
        return tuple(inner if i == path[0] else v for i, v in enumerate(out))
    out[path[0]] = inner
    return out
