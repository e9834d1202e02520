"""What a function's code names and where a class or function comes from: the global names a code object reads or
writes (``_code_names``), the functions of a class's own namespace (``_functions``), and whether a class or function
is an installed library's (``_installed``).

Why a module of its own: the walks of ``forward``'s Python state (``python_state``), of the forward hooks' state
(``hook_state``), of the raw reads (``raw_reads``), of the refusals (``value_refusals``) and the guard's watch of
settings objects all ask these, and took them from ``python_state``, which asks ``hook_state`` in turn: a circle of
imports. This one imports only ``installed``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .installed import library_code


def _code_names(code: Any) -> set[str]:
    """The global names ``code`` and the functions and comprehensions inside it read or write (a new set each call:
    callers add to it)."""
    return set(_code_names_of(code))


@functools.lru_cache(maxsize=4096)
def _code_names_of(code: Any) -> frozenset[str]:
    """``_code_names``, kept per code object. Exact: a code object's ``co_names`` and ``co_consts`` cannot change
    (``fn.__code__ = other`` gives another key), and two equal code objects have equal names and constants. Why:
    walked anew for each function at each of the ~4 walks of a compile (round 72)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names_of(const)
    return frozenset(names)


def _functions(cls: type) -> list[Any]:
    """The functions of ``cls``'s own namespace: methods, static and class methods, properties' getters and setters,
    each with the functions it wraps (``@torch.no_grad()`` around ``forward``)."""
    out = []
    for v in vars(cls).values():
        for f in (getattr(v, "__func__", None), getattr(v, "fget", None), getattr(v, "fset", None), v):
            while f is not None and f not in out:
                if inspect.isfunction(f):
                    out.append(f)
                f = getattr(f, "__wrapped__", None)
    return out


def _installed(cls: type) -> bool:
    """Whether ``cls`` (a class or function) comes from an installed library (transformers' configs), no code of the
    user's own (``installed.library_code``: a user's package installed with ``pip install .`` is the user's):
    ``classes_state`` watches its own attributes alone."""
    return library_code(getattr(cls, "__module__", None))
