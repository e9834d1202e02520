"""The ``functools.lru_cache`` / ``functools.cache`` functions a module tree's code calls, emptied where an export
filled them.

Why: an export calls ``forward`` on fake tensors, so a cached helper it calls (``@functools.cache def table(n):
return torch.arange(n) * 0.5``, a rotary table or a mask built once per length) keeps the export's ``FakeTensor``
as its result. Every later eager call of the module then read it from the cache: ``m(x)`` returned a ``FakeTensor``
after ``compile(m, ...)`` (round 61). A cache's entries cannot be read or removed one by one (its C implementation
has no such API), so one that was empty before the export and made an entry in it is cleared whole (no entry of
the user's is lost). One that held entries before is not: a cache of stateful objects (a cached factory building an
``nn.Linear`` lazily) rebuilt its entries after compile with new random weights, and the user's eager model changed
silently (round 61b). An unbounded one (``functools.cache``) that held entries loses just the export's: its dict
of results, read through CPython's garbage collector (``gc.get_referents``), has the keys the export added removed
(the C wrapper reads and writes that dict alone, so it stays consistent). A bounded one (``lru_cache(maxsize=n)``)
keeps its order in links that dict points to, which cannot be mended from Python: it is left holding what it held
and compile is refused naming the function, unless each object the export's entries added is a plain value (a
number, string, dtype, tuple or list of them, a module of the tree: no fake state); where none of this can be read, refused too.
"""

from __future__ import annotations

import gc
import inspect
from typing import Any

#: packages whose functions are no user's (their caches are theirs: torch's own keep no tensors of a call)
_NOT_USERS = frozenset({"torch", "builtins", "functools", "typing", "abc"})


def _is_cache(v: Any) -> bool:
    return (callable(v) and not isinstance(v, type) and callable(getattr(v, "cache_info", None))
            and callable(getattr(v, "cache_clear", None)))


def _info(f: Any) -> Any:
    """``f.cache_info()`` where it gives ``functools``' counts (an int ``misses``), else None. Why: a user's class or
    object with such method names only looks like a cache (``class Table: def cache_info(self)``, named by
    ``forward``): its ``cache_info()`` raised out of compile (round 61 review: ``TypeError: missing 1 required
    positional argument: 'self'``, a module that changes no state refused), or gave something else."""
    try:
        info = f.cache_info()
    except Exception:   # noqa: BLE001 - a user's object that only looks like a cache: left alone
        return None
    return info if type(getattr(info, "misses", None)) is int else None


def _users(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "builtins").partition(".")[0] not in _NOT_USERS


def _held(f: Any) -> list[Any] | None:
    """The objects bounded cache ``f`` holds (its keys and results, which its traverse visits link by link, and its
    own fields), from CPython's garbage collector; None where that cannot be read (no dict of links among them)."""
    try:
        own = vars(f)
        out: list[Any] = []
        found = False
        for r in gc.get_referents(f):
            if type(r) is dict and r is not own:
                found = True   # (key -> its link, opaque: the keys and results are visited on their own)
            else:
                out.append(r)
        return out if found else None
    except Exception:   # noqa: BLE001 - another Python's cache: unreadable
        return None


def _results(f: Any) -> dict | None:
    """An unbounded cache's own dict (key -> result), from CPython's garbage collector; None for a bounded one (its
    values are links) or where it cannot be read."""
    try:
        if f.cache_parameters().get("maxsize", 0) is not None:
            return None
        own = vars(f)
        dicts = [r for r in gc.get_referents(f) if type(r) is dict and r is not own]
    except Exception:   # noqa: BLE001 - another Python's cache: unreadable
        return None
    return dicts[0] if len(dicts) == 1 else None


def _snapshot(f: Any) -> Any:
    """What ``clear_filled`` needs of a cache that holds entries: an unbounded one's keys (the dict, copied), else the
    objects it holds (``_held``)."""
    results = _results(f)
    return ("keys", dict(results)) if results is not None else ("held", _held(f))


def _harmless(torch: Any, v: Any, depth: int = 3, known: frozenset[int] = frozenset()) -> bool:
    """A value an export's cache entry may hold without fake state: a scalar, a dtype or device, a type, ``functools``'
    keyword marker, an object of ``known`` (the ids of the module tree's modules: a cached method's ``self`` in its
    key), a (frozen) tuple, list, set or dict of them (a bounded cache's keys, ``functools._HashedSeq``, are lists of
    the arguments; a cached ``[n // 2, n - n // 2]`` of split sizes is a list of ints).

    Why lists and modules (round 62): ``@lru_cache(maxsize=4) def split(self, n): return (n // 2, n - n // 2)`` on a
    module's class, or a helper returning a list of ints, was refused at compile once it held an eager entry, though
    the export's entry holds nothing of the export (the very module, plain numbers) and an eager call for that key
    returns the same."""
    import functools

    from .settings import SCALARS

    if isinstance(v, (*SCALARS, torch.dtype, torch.device, type)) or type(v) is object or id(v) in known:
        return True
    if depth <= 0:
        return False
    if isinstance(v, (tuple, frozenset, functools._HashedSeq)) or type(v) in (list, set):
        return all(_harmless(torch, x, depth - 1, known) for x in v)
    return type(v) is dict and all(_harmless(torch, x, depth - 1, known) for kv in v.items() for x in kv)


def lru_caches(torch: Any, module: Any) -> list[tuple[Any, Any, Any]]:
    """(cached function, its ``cache_info()`` now) of each cache the code of ``module``'s tree's classes, and of the
    settings objects it holds (a helper object: ``self.rope.table(n)``), may call: the globals their functions name,
    one level into the user's functions those name, and cached methods of the classes themselves
    (``functools.cache`` on a method or static method)."""
    if not isinstance(module, torch.nn.Module):
        return []
    found: dict[int, Any] = {}
    walked: set[int] = set()

    def function(fn: Any, depth: int) -> None:
        if id(fn) in walked or not inspect.isfunction(fn) or not _users(fn):
            return
        walked.add(id(fn))
        names = set(fn.__code__.co_names)
        for const in fn.__code__.co_consts:   # (nested functions and comprehensions)
            if hasattr(const, "co_names"):
                names |= set(const.co_names)
        for name in names:
            v = fn.__globals__.get(name)
            if _is_cache(v) and _users(v):
                found.setdefault(id(v), v)
            elif depth and inspect.isfunction(v):
                function(v, depth - 1)

    from .settings import settings_objects

    classes: list[type] = []
    for obj in [*module.modules(), *settings_objects(torch, module)]:   # (a helper object's cached method too:
        classes += [c for c in type(obj).__mro__ if c not in classes and _users(c)]   # ``self.rope.table(n)``)
    for cls in classes:
        for v in vars(cls).values():
            inner = getattr(v, "__func__", v)
            if _is_cache(inner) and _users(inner):
                found.setdefault(id(inner), inner)
            while inner is not None:
                function(inner, 1)
                inner = getattr(inner, "__wrapped__", None)
    infos = [(f, _info(f)) for f in found.values()]
    return [(f, info, _snapshot(f) if info.currsize else None) for f, info in infos if info is not None]


def clear_filled(torch: Any, caches: list[tuple[Any, Any, Any]], module: Any = None) -> list[tuple[Any, int]]:
    """Clear each cache of ``caches`` (``lru_caches``) that was empty and made an entry since (a miss: its result
    computed on the export's fake tensors); of one that held entries, an unbounded one, remove just the keys the
    export added; (function, entries before) of each other (bounded) that held entries before and to which the export
    added an object that is no plain value (``_harmless``), left as it is: compile refuses it
    (``program.load_program``). A hit returned what an eager call cached before, and leaves it (transformers' cached
    ``is_torch_available()`` and the like, hit at every export)."""
    kept: list[tuple[Any, int]] = []
    known = frozenset(id(m) for m in module.modules()) if isinstance(module, torch.nn.Module) else frozenset()
    for f, before, snap in caches:
        try:
            if f.cache_info().misses == before.misses:
                continue
            if not before.currsize:
                f.cache_clear()
                continue
            kind, held = snap
            results = _results(f) if kind == "keys" else None
            if results is not None:   # (the user's entries, the very objects, stay; the export's go)
                old_keys = {id(k) for k in held}
                for k in [k for k in results if id(k) not in old_keys]:
                    results.pop(k, None)
                continue
            now = _held(f)
            old = {id(v) for v in held or ()}
            if held is None or now is None or not all(_harmless(torch, v, known=known) for v in now if id(v) not in old):
                kept.append((f, before.currsize))
        except Exception:   # noqa: BLE001 - a user's object that only looks like a cache: left alone
            continue
    return kept


def cache_refusal(f: Any, entries: int) -> str:
    """The one line compile refuses a cache ``clear_filled`` kept with."""
    name = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"
    return (f"forward's export added an entry to the functools cache {name} (computed on the export's fake "
            f"tensors), which held {entries} entries of eager calls before: clearing it would drop them (a cached "
            "factory would rebuild its objects, an nn.Linear with new random weights) and a bounded cache's entries "
            "cannot be removed one by one, so it is left holding the export's entry too, which an eager call for "
            f"these inputs would now return: call {getattr(f, '__qualname__', 'it')}.cache_clear(), call the module "
            "eagerly once with these inputs (the export then only hits the cache) and compile again, or make the "
            "cache unbounded (functools.cache), whose export entries compile removes")
