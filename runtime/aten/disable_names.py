"""The user's own references to ``torch._C.DisableTorchFunction`` (``from torch._C import DisableTorchFunction``,
``DTF = torch._C.DisableTorchFunction``, a closure's cell, a default argument, an object's attribute), pointed at
``value_reads``' stand-in while an export watches.

Why: torch consults no ``TorchFunctionMode`` inside ``with DisableTorchFunction():``, so the value-read watch saw no
``T.tolist()`` there. Round 65 replaced the attribute ``torch._C.DisableTorchFunction`` for the export's length; a
name bound to torch's class before compile still held it, and ``T.mul_(1.5)`` after compile ran the export's numbers
silently (round 66); so did the class held in a closure cell, a default argument (``def forward(self, x,
dtf=DisableTorchFunction)``) or an object's attribute (``self.dtf``, ``self.cfg.dtf``: round 67). Swapped to the
stand-in, and back at the end where they still hold it:

- ``swap_in``: the globals of the user's modules (not the standard library's, torch's, an installed package's,
  memplan's or this runtime's), and in them their functions' cells and defaults, their classes' attributes and
  methods, and their objects' attributes (``HELPER.dtf``), ``DEPTH`` levels down;
- ``held_swapped``: the same from the module tree being exported: each module's attributes, the methods of its
  user classes, its hooks.

The stand-in does torch's own in any thread that watches nothing. Not swapped (docs/aten.md): the class held in a
list, tuple or dict, or bound in a ``functools.partial``: a read under it is recorded by ``loose_reads``' getters on
``torch.Tensor`` instead (round 68).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

from .installed import library_module

#: the top-level packages whose modules are no user's
_NOT_USERS = frozenset(sys.stdlib_module_names | {"torch", "memplan", "runtime", "numpy", "_pytest", "pytest",
                                                  "hypothesis", "pluggy", "__mp_main__"})
#: how many objects down from a global or a module of the tree the walk follows (a closure's function, an object's
#: object: ``self.cfg.dtf``, ``make()``'s class's method's cell)
DEPTH = 3

#: an undo entry: (kind, where, key, what was there)
Swap = tuple[str, Any, Any, Any]


def swap_in(original: Any, stand_in: Any) -> list[Swap]:
    """Point each user module's global holding ``original`` at ``stand_in``, and each cell, default and attribute
    their functions, classes and objects hold (``_Walk``); the places pointed, for ``swap_back``."""
    walk = _Walk(original, stand_in)
    for name, mod in list(sys.modules.items()):
        if mod is None or name.partition(".")[0] in _NOT_USERS or _installed(mod):
            continue
        d = getattr(mod, "__dict__", None)
        if type(d) is dict:
            walk.mapping(d, DEPTH)
    return walk.done


def swap_back(swapped: list[Swap], original: Any, stand_in: Any) -> None:
    """Put ``original`` back in each place ``swap_in`` (``held_swapped``) pointed that still holds ``stand_in``."""
    for kind, where, key, was in reversed(swapped):
        if kind == "map":
            if where.get(key) is stand_in:
                where[key] = original
        elif kind == "cell":
            with contextlib.suppress(ValueError):
                if where.cell_contents is stand_in:
                    where.cell_contents = original
        elif kind == "attr":
            if vars(where).get(key) is stand_in:
                setattr(where, key, original)
        elif getattr(where, key) is was[1]:   # ("defaults": (the old tuple, the swapped one))
            setattr(where, key, was[0])


@contextlib.contextmanager
def held_swapped(torch: Any, module: Any) -> Iterator[None]:
    """For the block (a watched export of ``module``), the references to torch's ``DisableTorchFunction`` that
    ``module``'s tree holds (its modules' attributes, their user classes' attributes and methods' cells and defaults,
    its hooks) point at ``value_reads``' stand-in; nothing where none is in place (no export watches)."""
    from .value_modes import _DISABLE

    original, stand_in = _DISABLE.get("torch"), torch._C.DisableTorchFunction
    if original is None or stand_in is original or not isinstance(module, torch.nn.Module):
        yield
        return
    walk = _Walk(original, stand_in)
    for m in _unique(module.modules()):
        for cls in type(m).__mro__:
            if _user_module(getattr(cls, "__module__", None)):
                walk.klass(cls, DEPTH)
        walk.object(m, DEPTH)
        for store in ("_forward_hooks", "_forward_pre_hooks"):
            for hook in list(getattr(m, store, {}).values()):
                walk.value(hook, DEPTH)
    try:
        yield
    finally:
        swap_back(walk.done, original, stand_in)


def _unique(items: Iterable[Any]) -> list[Any]:
    return list({id(x): x for x in items}.values())


class _Walk:
    """Points the places it meets holding ``original`` at ``stand_in``, recording each in ``done``: a mapping's
    values, a user function's closure cells and defaults (and the functions and objects they hold), a user class's
    attributes and methods, a user object's attributes; each object once, ``depth`` levels down."""

    def __init__(self, original: Any, stand_in: Any) -> None:
        self.original, self.stand_in = original, stand_in
        self.done: list[Swap] = []
        self.seen: set[int] = set()

    def mapping(self, d: dict, depth: int) -> None:
        for key, v in list(d.items()):
            if v is self.original:
                d[key] = self.stand_in
                self.done.append(("map", d, key, None))
            elif depth > 0:
                self.value(v, depth - 1)

    def value(self, v: Any, depth: int) -> None:
        if id(v) in self.seen:
            return
        if isinstance(v, types.FunctionType):
            self.function(v, depth)
        elif isinstance(v, types.MethodType):
            self.value(v.__func__, depth)
            self.value(v.__self__, depth)
        elif isinstance(v, type):
            if _user_module(getattr(v, "__module__", None)):
                self.klass(v, depth)
        elif _user_module(getattr(type(v), "__module__", None)):
            self.object(v, depth)

    def function(self, f: types.FunctionType, depth: int) -> None:
        self.seen.add(id(f))
        if not _user_module(getattr(f, "__module__", None)):
            if str(getattr(f, "__module__", "")).startswith(__package__ or "runtime.aten") and depth > 0:
                for v in _cells(f):   # (this runtime's wrapper of a user's hook during the export: its hook)
                    if isinstance(v, types.FunctionType):
                        self.value(v, depth - 1)
            return
        for cell in f.__closure__ or ():
            try:
                v = cell.cell_contents
            except ValueError:   # (an empty cell: a name not yet bound)
                continue
            if v is self.original:
                cell.cell_contents = self.stand_in
                self.done.append(("cell", cell, None, None))
            elif depth > 0:
                self.value(v, depth - 1)
        old = f.__defaults__
        if old and any(v is self.original for v in old):
            new = tuple(self.stand_in if v is self.original else v for v in old)
            f.__defaults__ = new
            self.done.append(("defaults", f, "__defaults__", (old, new)))
        if f.__kwdefaults__:
            self.mapping(f.__kwdefaults__, 0)

    def klass(self, cls: type, depth: int) -> None:
        if id(cls) in self.seen:
            return
        self.seen.add(id(cls))
        for key, v in list(vars(cls).items()):
            if v is self.original:
                setattr(cls, key, self.stand_in)
                self.done.append(("attr", cls, key, None))
                continue
            f = (v.__func__ if isinstance(v, (staticmethod, classmethod)) else v.fget if isinstance(v, property)
                 else v)
            if isinstance(f, types.FunctionType) and id(f) not in self.seen:
                self.function(f, depth)

    def object(self, obj: Any, depth: int) -> None:
        self.seen.add(id(obj))
        if _user_module(getattr(type(obj), "__module__", None)):   # (``self.cfg.dtf``, a class attribute of Cfg)
            self.klass(type(obj), depth)
        d = getattr(obj, "__dict__", None)
        if type(d) is dict:
            self.mapping(d, depth)


def _cells(f: types.FunctionType) -> list[Any]:
    """The values of ``f``'s filled closure cells."""
    out = []
    for cell in f.__closure__ or ():
        with contextlib.suppress(ValueError):   # (an empty cell: a name not yet bound)
            out.append(cell.cell_contents)
    return out


def _user_module(name: Any) -> bool:
    """Whether the module named ``name`` is a user's (``_NOT_USERS`` aside, and no installed package's)."""
    if not isinstance(name, str) or name.partition(".")[0] in _NOT_USERS:
        return False
    mod = sys.modules.get(name)
    return mod is None or not _installed(mod)


def _installed(mod: Any) -> bool:
    """Whether module ``mod`` is an installed library's (``installed.library_code``: the one rule)."""
    return library_module(mod)
