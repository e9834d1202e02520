"""Copies of free-form JSON blocks (node ``attrs``, a plan's solver block and extra fields), and their plain
JSON form (``plain_json``: what ``json`` writes of a value, in plain Python types).

Why a module of its own: the graph (``graph.py``) and the plan document (``planfile.py``) both keep blocks a
caller hands them, and neither may share a nested dict or list with the caller, or a later edit on one side
would reach the other. Below both of them, it lets each import it without either importing the other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from itertools import islice
from typing import Any

from .errors import as_int, plain_str, short_repr


def own_json(value: Any) -> Any:
    """``value`` with each of its JSON objects and arrays (dicts, lists and tuples, nested) copied, a tuple as the
    list JSON reads back and each key as the text ``json`` writes for it (``1`` as "1", as ``plain_json`` does),
    its other values shared: what a Plan keeps of, or hands out as, a free-form block, so that neither side's
    later edits reach the other, and a plan equals the one read back from its own JSON (a solver block or extra
    field from code with ``{1: ..}`` or a tuple came back as ``{"1": ..}`` or a list: the round trip was no
    identity). Iterative, and each container copied once (a list twice inside stays one list, a cycle a cycle):
    a block from code may nest past the recursion limit, and is refused only when saved; so are two keys JSON
    writes alike (``{1: a, "1": b}``: kept as given, for the writer to name)."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    return _copy_tree(value, (dict, list, tuple), _same, _plain_key)


def plain_json(value: Any) -> Any:
    """``value`` as the JSON value ``json`` writes of it, in plain Python types and sharing no container with it:
    what a ``Graph`` keeps of the ``attrs`` a caller gives in code. Each dict (or other mapping) becomes a dict,
    each list or tuple a list, each ``str``/``int``/``float`` subclass (a str-mixin or int enum, ``np.float64``)
    its plain value, a numpy integer or bool its Python one, a key its JSON text (``1`` as "1"). Why: the graph
    then equals the graph read back from its own JSON, so both plan to the same bytes, and a caller's later edit
    of the object it passed (a shape list appended to) cannot change a validated graph. What JSON cannot hold (a
    set, NaN, an object) is kept as it is, for ``save_graph`` to name; so are the keys of a mapping two of whose
    keys JSON writes alike (``{1: a, "1": b}``), which ``save_graph`` refuses. Iterative, each container copied
    once (a cycle stays a cycle), like ``own_json``."""
    if not isinstance(value, (Mapping, list, tuple)):
        return _plain_scalar(value)
    return _copy_tree(value, (Mapping, list, tuple), _plain_scalar, _plain_key)


def _same(v: Any) -> Any:
    return v


def _copy_tree(value: Any, containers: tuple, scalar: Any, key: Any) -> Any:
    """The walk both copies share: each container of ``containers`` in ``value`` copied once (a mapping as a dict,
    the others as lists), its scalars passed through ``scalar`` and its keys through ``key`` (unless two keys
    come out alike: then the keys stay as given, for the writer to name). Iterative (no recursion limit), and
    a container met twice is one copy (a cycle stays a cycle); every container seen is kept alive to the end,
    so no ``id`` is reused by a temporary."""
    copies: dict[int, Any] = {}
    todo: list[tuple[Any, Any]] = []

    def copy_of(v: Any) -> Any:
        if not isinstance(v, containers):
            return scalar(v)
        if id(v) not in copies:
            copies[id(v)] = new = {} if isinstance(v, Mapping) else []
            todo.append((v, new))
        return copies[id(v)]

    keep = [value]
    top = copy_of(value)
    while todo:
        src, dst = todo.pop()
        keep.append(src)
        if isinstance(dst, dict):
            items = list(src.items())
            keys = [key(k) for k, _ in items]
            if len(set(keys)) < len(keys):   # two keys written alike: left for the writer to name
                keys = [k for k, _ in items]
            for k, (_, v) in zip(keys, items):
                dst[k] = copy_of(v)
        else:
            dst.extend(copy_of(v) for v in src)
    return top


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_scalar(v: Any) -> Any:
    """A JSON scalar as the plain value ``json`` writes (see ``plain_json``); anything else as it is."""
    if type(v) in _PLAIN_SCALARS:
        return v
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, float):
        return float.__float__(v)   # its value, as ``json`` writes it (an overriding ``__float__`` is not asked)
    if isinstance(v, int):
        return int.__int__(v)
    i = as_int(v)   # a numpy integer: ``json_text`` writes it as this int
    if i is not None:
        return i
    if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        try:
            item = v.item()   # np.bool_, np.float32: the Python value
        except Exception:
            return v
        if type(item) in (bool, float):
            return item
    return v


def _plain_key(k: Any) -> Any:
    """A mapping key as the text ``json`` writes for it, when it writes one; else the key itself (a NaN or infinite
    float too: memplan's writer refuses those, as it refuses NaN values, so ``save_graph`` names the tensor)."""
    if type(k) is str:
        return k
    if isinstance(k, float) and not math.isfinite(k):
        return k
    if isinstance(k, (str, int, float)) or k is None:
        return json_key(k)
    return k


def json_key(key: Any) -> str:
    """The text ``json`` writes for a key (it writes only these types; others fail ``json.dumps`` first). A key of a
    ``str`` subclass is its characters as a plain str (``plain_str``): two keys ``"a"`` of a class that compares by
    identity were two keys here, and the file repeating "a" was written, then refused by the loaders."""
    if isinstance(key, str):
        return plain_str(key)
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, float):
        return float.__repr__(key)
    return int.__repr__(key)


def json_shown(v: Any) -> str:
    """A JSON value as a message shows it: ``true``, ``false`` and ``null`` as JSON spells them (not Python's
    ``True`` and ``None``), also inside a list or object (``[true]``), anything else cut short (``short_repr``).
    Why inside entries too (round 77): ``"offset": true`` in a tensors entry, ``"device": null`` or
    ``"device_arena_bytes": [true]`` were quoted back as ``True``, ``None``, ``[True]``, which the file does not hold."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, (list, dict)) and has_json_word(v):
        try:
            text = json.dumps(v, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):   # (not JSON a file holds: shown as Python sees it)
            return short_repr(v)
        return text if len(text) <= 60 else text[:57] + "..."
    return short_repr(v)


def has_json_word(v: Any, depth: int = 0) -> bool:
    """Whether ``v`` (a list or dict) holds ``true``, ``false`` or ``null`` within a few levels (else ``short_repr``
    shows it as JSON would, but for quotes)."""
    if v is None or isinstance(v, bool):
        return True
    if depth > 3 or not isinstance(v, (list, dict)):
        return False
    return any(has_json_word(x, depth + 1) for x in islice(v.values() if isinstance(v, dict) else v, 8))
