"""The ``functools.lru_cache`` / ``functools.cache`` functions a module tree's code calls, emptied where an export
filled them.

Why: an export calls ``forward`` on fake tensors, so a cached helper it calls (``@functools.cache def table(n):
return torch.arange(n) * 0.5``, a rotary table or a mask built once per length) keeps the export's ``FakeTensor``
as its result. Every later eager call of the module then read it from the cache: ``m(x)`` returned a ``FakeTensor``
after ``compile(m, ...)`` (round 61). A cache's entries cannot be read or removed one by one (its C implementation
has no such API), so one whose counts the export changed is cleared whole: a cache is a cache, its next eager call
computes the values again (and those cached before compile: only their time is lost).
"""

from __future__ import annotations

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


def lru_caches(torch: Any, module: Any) -> list[tuple[Any, Any]]:
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
    return [(f, info) for f, info in infos if info is not None]


def clear_filled(caches: list[tuple[Any, Any]]) -> None:
    """Clear each cache of ``caches`` (``lru_caches``) that made an entry since (a miss: its result computed on the
    export's fake tensors). A hit returned what an eager call cached before, and leaves it (transformers' cached
    ``is_torch_available()`` and the like, hit at every export)."""
    for f, before in caches:
        try:
            if f.cache_info().misses != before.misses:
                f.cache_clear()
        except Exception:   # noqa: BLE001 - a user's object that only looks like a cache: left alone
            continue
