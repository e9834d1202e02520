"""The Python state a ``forward`` may change beside its module (the globals its classes' code names, closures' cells,
functions' and classes' own attributes, the settings objects the tree holds), read before an export and put back
after it.

Why: a compiled call runs no Python. ``global COUNTER; COUNTER += 1``, a closure's ``n[0] += 1`` or a class counter
so changed compiled (the export changed it once, for good) and every compiled call computed the export's value where
eager's calls followed it, silently.
"""

from __future__ import annotations

import collections.abc
import contextvars
import functools
import inspect
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .byte_values import is_buffer, plain_tensor
from .code_names import _code_names, _functions, _installed
from .held_iterators import iterator_position
from .module_containers import CONTAINERS, INNER_LIMIT, ITEM_LIMIT, inner_containers, plain_change, unchanged
from .module_writes import MISSING
from .settings import SCALARS, plain, same_value, settings_object, user_class


@dataclass
class PythonPlace:
    """One piece of Python state a ``forward`` may change beside its module (``python_state``): how an error names it,
    how to read it now (``MISSING`` where it is gone) and put a value back, and its value (a container's shallow copy
    in ``copy``) before the export."""

    label: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    value: Any
    copy: Any = None
    #: a place of an object a forward hook keeps state in (``hook_state.hooks_tracked``: changed by hooks alone, no
    #: change of ``forward``'s)
    hooked: bool = False
    #: what ``read`` reads, for a per-call check that reads many places in one C-level ``map`` instead of calling
    #: ``read`` (three Python frames each): ``("map", mapping, key)`` (``mapping.get(key, MISSING)``), ``("attr",
    #: owner, name)`` (the same in ``vars(owner)``, whose ``__dict__`` may be replaced), ``("cell", cell)``
    #: (``cell.cell_contents``), ``("const", obj)`` (always ``obj``); None: only ``read`` says (``python_reads``)
    source: tuple | None = None


#: how the place of an iterator's position begins (``sets.check_python_state`` words its refusal so)
ITERATOR_LABEL = "where it stands (next() on it), the iterator in"

#: packages whose classes and functions are no user's state: torch's own modules (``nn.Linear``) and the builtins
_NOT_USERS = frozenset({"torch", "builtins", "functools", "typing", "abc"})


def _users(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "builtins").partition(".")[0] not in _NOT_USERS


def _watched_value(v: Any) -> bool:
    """A value whose place is kept: a scalar, a container, a byte buffer (a NumPy array: ``byte_values`` watches
    its contents, which a caller changes in place; round 64) or a plain tensor (``float(T)``: the same; and of any
    size: a global ``W`` the program holds, replaced by the caller, kept the old one in the program; round 64c)."""
    return isinstance(v, SCALARS) or type(v) in CONTAINERS or is_buffer(v) or plain_tensor(v)


def _own_function(v: Any) -> bool:
    """A function of the user's own code (``_own_code``: no installed library's), plain or as a ``staticmethod`` /
    ``classmethod``: a place holding one is watched by identity, since the program holds what the export traced of it
    (round 73: a global helper or a class's method replaced after compile changed eager's result, silently not the
    program's). An installed library's are left out: a tiny transformers Llama's tree names 217 of them, a third more
    per-call reads."""
    fn = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
    return isinstance(fn, types.FunctionType) and _own_code(fn)


def _cached_properties(cls: type) -> frozenset[str]:
    """The names of the ``functools.cached_property`` attributes of ``cls`` and its bases."""
    return frozenset(n for c in cls.__mro__ for n, v in vars(c).items() if isinstance(v, functools.cached_property))


def _attribute_names(owner: Any, cached: frozenset[str]) -> tuple[str, ...]:
    """The names of ``owner``'s own attributes (``attrs``' "attributes made anew"), less those of its ``cached``
    properties that hold a plain value. Why: a config's ``@cached_property def head_dim(self)`` that ``forward`` read
    first at the export was refused as an attribute made anew (review61; and, round 61's watch of objects held in
    lists, ``self.cfgs = [Cfg()]``, refused modules that compiled before), though it is computed once for good, as
    eager's first call computes it: its value is kept. One holding anything else (a tensor: the export's fake one)
    is still made anew, refused and dropped."""
    d = vars(owner)
    return tuple(sorted(n for n in d if not n.startswith("__") and not (n in cached and plain(d[n]))))


def _own_code(cls: type) -> bool:
    """Whether ``cls`` (a class or function) is the user's own code: no ``object``, nor the standard library's,
    torch's (``settings.user_class``) or an installed package's (``_installed``). ``classes_state`` walks the bases
    and methods of these alone."""
    return cls is not object and _users(cls) and user_class(cls) and not _installed(cls)


def _iterator(torch: Any, v: Any) -> bool:
    """An iterator or generator whose position ``held_iterators.iterator_position`` may read (no object of the user's
    own class: a settings object)."""
    return (isinstance(v, collections.abc.Iterator) and not isinstance(v, torch.Tensor)
            and (inspect.isgenerator(v) or not hasattr(v, "__dict__")))


#: the exact types of a value ``held_by`` finds no state in: no iterator, context variable, class, thread-local or
#: settings object (a module's and a builtin's class is the standard library's, a function is a function value). Why:
#: most globals a function names are these (``torch``, ``F``, a helper, a constant), each asked every question
#: (round 72: 150,000 calls a run of 309 compiles)
_INERT = frozenset({types.ModuleType, types.FunctionType, types.BuiltinFunctionType, int, float, str, bool,
                    type(None)})


def _var_value(v: Any) -> Any:
    """A ``contextvars.ContextVar``'s value (its default where unset), ``MISSING`` where it has none."""
    try:
        return v.get()
    except LookupError:
        return MISSING


def _set_var(v: Any, value: Any) -> None:
    if value is not MISSING:   # (one unset with no default cannot be unset again without the token: left)
        v.set(value)


def _missing_ok(read: Callable[[], Any]) -> Callable[[], Any]:
    def get() -> Any:
        try:
            return read()
        except (KeyError, ValueError, AttributeError):   # (a global deleted, a cell emptied)
            return MISSING
    return get


def _attr_source(owner: Any, name: str) -> tuple | None:
    """``PythonPlace.source`` of ``vars(owner)[name]``: a class's namespace read as it is (a live view; a class's
    ``__dict__`` cannot be replaced), an object's through ``vars(owner)`` at each read (its ``__dict__`` may be
    replaced). None for a ``threading.local`` (``vars`` gives the
    calling thread's dict: only ``read`` may say) or an owner whose ``vars`` is no plain dict."""
    if isinstance(owner, threading.local):
        return None
    if isinstance(owner, type):
        return ("map", vars(owner), name) if type(vars(owner)) is types.MappingProxyType else None
    return ("attr", owner, name) if type(vars(owner)) is dict else None


def python_state(torch: Any, module: Any) -> list[PythonPlace]:
    """The Python state a ``forward`` of ``module``'s tree may change beside the module: the globals the code of its
    classes' functions names (plain values and containers), their closures' cells, the
    functions' own attributes, one level into the user's functions these hold, the classes' own attributes (``calls =
    0`` on the class, ``type(self).calls += 1``) and the attributes of the settings objects the tree holds
    (``self.st.n += 1``). torch's own classes and functions left out.

    Why: a compiled call runs no Python. ``global COUNTER; COUNTER += 1``, a closure's ``n[0] += 1``, a class counter
    or a held object's field so changed compiled (the export changed it once, for good) and every compiled call
    computed the export's value where eager's calls followed it, silently (session 41). Round 62: the containers inside
    each at any depth (bounded by size), iterators and the user's objects in globals and closure variables, the
    closures of functions held as module attributes, and each module's class. Not covered: state reached deeper (a
    helper's helper), nor a global ``forward`` makes anew."""
    if not isinstance(module, torch.nn.Module):
        return []
    from .settings import settings_objects

    places: list[PythonPlace] = []
    seen: set[Any] = set()
    cached_of: dict[type, frozenset[str]] = {}   # (``_cached_properties`` per class: no code runs during the walk)

    inner_seen: set[int] = set()
    budget = [INNER_LIMIT]

    def add(key: Any, label: str, read: Callable[[], Any], write: Callable[[Any], None],
            source: tuple | None = None, functions: bool = False) -> None:
        if key in seen:
            return
        seen.add(key)
        get = _missing_ok(read)
        value = get()
        if (value is MISSING or _watched_value(value) or _users_object(value)
                or (functions and _own_function(value))):
            places.append(PythonPlace(label, get, write, value, value.copy() if type(value) in CONTAINERS else None,
                                      source=source))
        if type(value) in CONTAINERS or type(value) is tuple:   # (its inner containers, at any depth, bounded by
            # size: a shallow copy holds the very inner list, so ``STATE["n"][0] += 1`` was no change, round 61, and
            # one three levels down, ``STATE["x"][0][0][0] += 1``, until round 62; a tuple's too, ``G = ([0],)``)
            if type(value) in CONTAINERS:
                inner_seen.add(id(value))
            for keys, v in inner_containers(value, inner_seen, budget):
                add(("inner", id(v)), label + "".join(f" at [{k!r}]" for k in keys), lambda v=v: v, lambda _v: None,
                    ("const", v))

    def _users_object(v: Any) -> bool:
        """A settings object of the user's in a global or closure variable (``held_by`` watches its fields): its place
        is kept too, so one put there after compile (``CFG = Cfg(t=3.0)``) is seen; the fields watched were the old
        one's, and the export's 2.0 ran silently (round 64d)."""
        return settings_object(torch, v) and _users(type(v)) and not callable(v)

    def put_global(g: dict, name: str) -> Callable[[Any], None]:
        return lambda v: g.pop(name, None) if v is MISSING else g.__setitem__(name, v)

    def put_attr(owner: Any, name: str) -> Callable[[Any], None]:
        def put(v: Any) -> None:
            if v is MISSING:
                if name in vars(owner):
                    (delattr if isinstance(owner, threading.local) else type.__delattr__ if isinstance(owner, type)
                     else object.__delattr__)(owner, name)
            elif isinstance(owner, threading.local):   # (its own ``__setattr__``: the calling thread's value)
                setattr(owner, name, v)
            else:
                (type.__setattr__ if isinstance(owner, type) else object.__setattr__)(owner, name, v)
        return put

    def put_cell(cell: Any) -> Callable[[Any], None]:
        def put(v: Any) -> None:
            if v is MISSING:
                del cell.cell_contents
            else:
                cell.cell_contents = v
        return put

    def attrs(owner: Any, label: str, holder: str) -> None:
        if ("attrs", id(owner)) in seen:
            return
        seen.add(("attrs", id(owner)))
        methods = isinstance(owner, type) and _own_code(owner)   # (its functions too, by identity: round 73,
        # ``M.helper = fn`` after compile changed eager's result and silently not the program's)
        for name, v in list(vars(owner).items()):
            if not name.startswith("__") and (_watched_value(v) or (methods and _own_function(v))):
                add((id(owner), name), label.format(name=name), functools.partial(lambda o, n: vars(o)[n], owner, name),
                    put_attr(owner, name), _attr_source(owner, name), functions=methods)
            elif not name.startswith("__") and _iterator(torch, v):   # (``it = itertools.count()`` on a class:
                held_by(v, label.format(name=name))   # round 62, its ``next`` compiled silently)
        if isinstance(owner, type):
            cached: frozenset[str] = frozenset()
        else:
            cached = cached_of.get(type(owner))
            if cached is None:
                cached = cached_of[type(owner)] = _cached_properties(type(owner))
        names = functools.partial(_attribute_names, owner, cached)

        def drop_new(old: tuple[str, ...], owner: Any = owner) -> None:   # (``f.calls = 1`` made anew: deleted)
            for n in set(names()) - set(old):
                put_attr(owner, n)(MISSING)
        places.append(PythonPlace(f"the attributes of {holder} (attributes made anew)", names, drop_new, names()))

    def held_by(value: Any, label: str) -> None:
        """The state held by a global's or closure variable's ``value`` beside its own: where an iterator in it stands
        (``next(CYCLE)``), the attributes of the user's objects in it (``CFG.n += 1``, ``TRACKERS[0].n += 1``).
        Why: both compiled silently (round 62): every compiled call used the export's value where eager's calls
        advance it, and the export's change stayed."""
        if type(value) in _INERT:
            return
        objs = [((), value)]
        if type(value) in CONTAINERS or type(value) is tuple:
            objs += [((k,), v) for k, v in (value.items() if isinstance(value, dict) else enumerate(value))
                     ][:ITEM_LIMIT] if len(value) <= ITEM_LIMIT else []
        for keys, v in objs:
            if ("held", id(v)) in seen:
                continue
            where = label + "".join(f" at [{k!r}]" for k in keys) if keys else label
            if _iterator(torch, v):
                position = iterator_position(v)
                if position is not None:
                    seen.add(("held", id(v)))
                    places.append(PythonPlace(f"{ITERATOR_LABEL} {where}", functools.partial(
                        iterator_position, v), lambda _v: None, position))
            elif isinstance(v, contextvars.ContextVar):   # (``CV.set(CV.get() + 1)``: round 62)
                seen.add(("held", id(v)))
                places.append(PythonPlace(f"the context variable {v.name} in {where}", functools.partial(_var_value, v),
                                          functools.partial(_set_var, v), _var_value(v)))
            elif (isinstance(v, type) and _users(v) and user_class(v)
                  and not issubclass(v, torch.nn.Module)):   # (a class of the user's forward names, ``K.s``: its
                seen.add(("held", id(v)))   # attributes, as its module's class's; unwatched, ``K.s = 3.0`` after
                classes_state(v, f" (in {where})")   # compile ran the export's value silently, round 64e; its bases'
                # and methods' too, round 65. Not machinery's (``settings._MACHINERY``): ``tqdm``, a global of
                # transformers' generation code, whose ``tqdm.monitor`` any progress bar of the process sets, torch's
                # export's own among them: the first compile of a model whose export made one (T5Gemma2's) was
                # refused as forward's change, and a call after the user's first ``tqdm(loader)`` exported again
                # to prove it; round 73)
            elif isinstance(v, threading.local) or (settings_object(torch, v) and _users(type(v))
                                                      and not callable(v)):   # (a thread's ``TL.n += 1`` too)
                seen.add(("held", id(v)))
                attrs(v, f"the attribute {{name}} of the {type(v).__name__} object in {where}",
                      f"the {type(v).__name__} object in {where}")
                if not isinstance(v, threading.local):   # (its class's attributes and methods: ``OBJ.prop``)
                    classes_state(type(v), f" (of the {type(v).__name__} object in {where})")

    def classes_state(cls: type, where: str) -> None:
        """The attributes of ``cls`` and of its bases of the user's (``class B: s = 2.0; class K(B)``: ``K.s`` reads
        ``B.s``), and the globals and closures of their functions (a ``@property``, ``@classmethod`` or
        ``@staticmethod`` ``forward`` calls reading a global ``G``). Why: round 64e watched the class's own
        namespace alone, so ``B.s = 3.0``, or ``G = 3.0`` read through ``OBJ.prop``, after compile ran the export's
        value silently (round 65). A module's class is left to the module walk (its MRO is walked there)."""
        if not _own_code(cls):   # (an installed library's class, a transformers config, or the standard library's,
            # ``threading.ExceptHookArgs``: its own attributes alone, as before; its bases' and methods' state made
            # a tiny Llama's per-call check 4x longer, and watched ``threading._active``, which a thread changes)
            attrs(cls, f"the class attribute {cls.__name__}.{{name}}{where}", f"the class {cls.__name__}")
            return
        bases = [c for c in cls.__mro__ if _own_code(c) and not issubclass(c, torch.nn.Module)]
        for c in bases:
            attrs(c, f"the class attribute {c.__name__}.{{name}}{where}", f"the class {c.__name__}")
            for fn in _functions(c):
                function(fn, 1)
        shadows(bases, where)

    def shadows(bases: list[type], where: str) -> None:
        """A place, empty now, in each class of ``bases`` (an MRO's classes of the user's) for each public value it
        finds in a later one: ``K.s = 3.0`` put on ``class K(B)`` after compile hides ``B.s`` (a new name of
        ``K``'s, which the per-call check does not watch, ran the export's ``B.s``; round 65)."""
        for i, c in enumerate(bases):
            for name, v in list(vars(c).items()):
                if name.startswith("_") or not _watched_value(v):
                    continue
                for d in bases[:i]:
                    if name not in vars(d):
                        add((id(d), name), f"the class attribute {d.__name__}.{name}{where}",
                            functools.partial(lambda o, n: vars(o)[n], d, name), put_attr(d, name),
                            _attr_source(d, name))

    walked: dict[int, int] = {}   # id of each function walked -> the deepest depth it was walked at
    globals_walked: set[tuple[int, str]] = set()   # (id of a module's globals, name) whose ``held_by`` returned

    def function(fn: Any, depth: int) -> None:
        # (walked again where reached deeper: a helper first named as a global at depth 0, then held as a class's
        # method at depth 1, had its own helpers' globals watched nowhere; round 61)
        if walked.get(id(fn), -1) >= depth or not _users(fn):
            return
        walked[id(fn)] = depth
        g, where = fn.__globals__, f"module {fn.__globals__.get('__name__', '?')}"
        attrs(fn, f"the attribute {{name}} of the function {fn.__qualname__}", f"the function {fn.__qualname__}")
        defaults = dict(zip(fn.__code__.co_varnames[fn.__code__.co_argcount - len(fn.__defaults__ or ()):],
                            fn.__defaults__ or ()))
        for arg, v in {**defaults, **(fn.__kwdefaults__ or {})}.items():   # (``acc=[]``: one list for every call)
            if type(v) in CONTAINERS:
                add(("default", id(v)), f"the default of argument {arg} of {fn.__qualname__}", lambda v=v: v,
                    lambda _v: None, ("const", v))
        names = _code_names(fn.__code__)
        if "globals" in names and "globals" not in g:   # (``globals()["N"] += 1`` names no N: every plain global
            names |= {n for n in list(g)[:ITEM_LIMIT] if not n.startswith("__")}   # of its module, round 62)
        for name in sorted(names):
            if name not in g:   # (a builtin, an attribute's name; a global made anew in ``forward`` is not seen)
                continue
            if (id(g), name) in globals_walked:   # (a global another function named: added, and its value's
                # state walked to the end, with this very label; ``held_by`` again found nothing new: round 72, most
                # of a walk's calls. One whose walk is still under way, further up, is walked again, as before)
                if depth and inspect.isfunction(g.get(name)):
                    function(g[name], depth - 1)
                continue
            # (a function of the user's own code too, by identity: ``_own_function``)
            add((id(g), name), f"the global {name} ({where})", functools.partial(lambda d, n: d[n], g, name),
                put_global(g, name), ("map", g, name) if type(g) is dict else None, functions=True)
            held_by(g.get(name), f"the global {name} ({where})")
            globals_walked.add((id(g), name))
            if depth and inspect.isfunction(g.get(name)):
                function(g[name], depth - 1)
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            add(("cell", id(cell)), f"the closure variable {var} of {fn.__qualname__}",
                functools.partial(lambda c: c.cell_contents, cell), put_cell(cell), ("cell", cell))
            inner = _missing_ok(functools.partial(lambda c: c.cell_contents, cell))()
            held_by(inner, f"the closure variable {var} of {fn.__qualname__}")
            if depth and inspect.isfunction(inner):
                function(inner, depth - 1)

    classes: list[type] = []
    for path, m in module.named_modules():
        classes += [c for c in type(m).__mro__ if c not in classes and _users(c)]
        name = f"{type(module).__name__}.{path}" if path else type(module).__name__
        # (``self.__class__ = Other`` in forward: round 62, compiled, every compiled call ran the first class's code)
        places.append(PythonPlace(f"the class of {name}", functools.partial(type, m),
                                  functools.partial(object.__setattr__, m, "__class__"), type(m)))
        for key, v in vars(m).items():   # (a function held as an attribute, ``self.step = make_counter()``: its
            fn = getattr(v, "func", getattr(v, "__func__", v))   # closure's ``nonlocal n; n += 1`` compiled
            if inspect.isfunction(fn) and not key.startswith("__"):   # silently, round 62)
                function(fn, 1)
            if isinstance(v, functools.partial) and not key.startswith("__"):   # (its bound lists: ``partial(f,
                for i, arg in enumerate([*v.args, *v.keywords.values()]):   # [[0]])``'s count, round 62)
                    if type(arg) in CONTAINERS or type(arg) is tuple or is_buffer(arg):   # (an array: its bytes)
                        add(("bound", id(arg)), f"the argument {i} bound by {name}.{key}", lambda a=arg: a,
                            lambda _v: None, ("const", arg))
                    held_by(arg, f"the argument {i} bound by {name}.{key}")   # (the fields of a settings object
                    # bound or in a bound list: ``partial(g, [Cfg()])``'s ``t`` changed ran silently, round 64d)
    for cls in classes:
        attrs(cls, f"the class attribute {cls.__name__}.{{name}}", f"the class {cls.__name__}")
        for fn in _functions(cls):
            function(fn, 1)
    for m in module.modules():   # (``type(self).scale`` found on a base: one put on the module's class hides it)
        shadows([c for c in type(m).__mro__ if c in classes and _own_code(c)], "")
    from .hook_state import hook_objects

    hooked = {id(o) for o in settings_objects(torch, module, roots=hook_objects(torch, module))}
    for obj in settings_objects(torch, module):
        start = len(places)
        if _users(type(obj)):
            attrs(obj, f"the attribute {{name}} of the {type(obj).__name__} object the module holds",
                  f"the {type(obj).__name__} object the module holds")
            if _own_code(type(obj)):
                classes_state(type(obj), f" (of the {type(obj).__name__} object the module holds)")
        for p in places[start:] if id(obj) in hooked else ():
            p.hooked = True
    return places


def undo_python_changes(places: list[PythonPlace]) -> tuple[tuple[str, Any, Any, bool, PythonPlace], ...]:
    """(label, value before, value after, whether a plain value is among the change, the place) of each place of
    ``places`` changed since, each put back as it was (a container in place, the very object): compile runs no call.
    The place comes along so that ``sets.check_python_state`` can put the value after back for a second export."""
    out = []
    for p in places:
        now = p.read()
        if p.copy is not None and now is p.value:   # (the same container: its contents)
            if unchanged(now, p.copy):
                continue
            out.append((p.label, p.copy, now.copy(), plain_change(p.copy, now, objects=True), p))
            now.clear()
            (now.update if hasattr(now, "update") else now.extend)(p.copy)
            continue
        if type(now) is tuple and now == p.value:   # (the names of a holder's attributes: the same ones)
            continue
        if now is p.value or (isinstance(now, SCALARS) and isinstance(p.value, SCALARS)
                              and type(now) is type(p.value) and same_value(now, p.value)):
            continue
        out.append((p.label, p.value, now, True, p))
        p.write(p.value)
    return tuple(out)


def put_python_values(changes: tuple[tuple[str, Any, Any, bool, PythonPlace], ...], after: bool) -> None:
    """Each place of ``changes`` (``undo_python_changes``) set to its value after the export's call (``after``) or
    before it: a container's contents in place (the very object), anything else written."""
    for _label, before, now, _plain, place in changes:
        value = now if after else before
        if place.copy is not None and place.read() is place.value:
            place.value.clear()
            (place.value.update if hasattr(place.value, "update") else place.value.extend)(value)
        else:
            place.write(value)
