"""Which objects a module holds for their values (a transformers config, a dataclass of options): its settings.

Why a module of its own: the export watches which of their values ``forward`` reads (``program.load_program``),
and the compiled call's guard watches those values for changes (``guard``); both ask the same question, and the
guard reads the program, so the answer lives below both.
"""

from __future__ import annotations

import functools
import struct
import sys
from typing import Any


def settings_objects(torch: Any, module: Any, roots: list[Any] | None = None) -> list[Any]:
    """The settings objects in ``module``'s tree (``settings_object``, and those they hold) that the compiled call's
    guard may watch, found before the export so that it can watch which of their values ``forward`` reads. Given
    ``roots`` (the hook objects ``hook_state.hook_objects`` names), those reached from them instead."""
    found: dict[int, Any] = {}

    def visit(v: Any, depth: int) -> None:
        if id(v) in found:
            return
        if settings_object(torch, v):
            found[id(v)] = v
            walk(vars(v))
        elif depth < 2 and type(v) in (list, tuple, dict) and len(v) <= 1024:   # (one held in a list or dict
            for item in list(v.values() if isinstance(v, dict) else v):   # attribute, ``self.objs = [S()]``: round
                visit(item, depth + 1)   # 61, its ``self.objs[0].n += 1`` compiled silently; two levels down)

    def walk(d: dict) -> None:
        for key, v in list(d.items()):
            if not key.startswith("_"):
                visit(v, 0)

    for root in roots if roots is not None else ():
        visit(root, 0)
    for m in module.modules() if roots is None else ():
        walk(vars(m))
    return list(found.values())


def settings_object(torch: Any, v: Any) -> bool:
    """An object held for its values (a ``PretrainedConfig``, a dataclass of options, a callable object of the user's
    whose ``__call__`` reads its own fields: ``self.f = Scale(2.0)``): it has a ``__dict__`` and is no tensor, module,
    class or function (``function_value``: watched by identity), nor an object of the standard library's or torch's
    machinery (``_MACHINERY``). Only the values ``forward`` read during the export are watched, so a callable holder
    of counters it does not read (a compiled step stored on the module) is not refused after its calls. (Session 40b:
    callable objects were left out, and ``m.f.k = 9.0`` after compile changed eager's result silently.)"""
    return (hasattr(v, "__dict__") and not isinstance(v, (torch.Tensor, torch.nn.Module, type)) and not function_value(v)
            and user_class(type(v)))


def user_class(cls: type) -> bool:
    """Whether ``cls`` is a class of the user's: not torch's nor the standard library's (``_MACHINERY``). What makes
    an object a settings object (``settings_object``) and a class one whose attributes a hook's or ``forward``'s
    reads are watched (``hook_state.class_fields``, round 64e)."""
    return (getattr(cls, "__module__", None) or "builtins").partition(".")[0] not in _MACHINERY


#: packages whose objects a module may hold are machinery, not its settings: their public values change through
#: their own methods in ordinary use (a ``logging.Logger``'s ``level`` by ``setLevel``, a ``random.Random``'s
#: ``gauss_next``, an LR scheduler's ``last_epoch`` by ``step()``), which refused the next compiled call. The
#: standard library's namespaces of options (``argparse.Namespace``, ``types.SimpleNamespace``) are settings.
_MACHINERY = frozenset(sys.stdlib_module_names - {"argparse", "types"} | {"torch", "tqdm"})


def function_value(v: Any) -> bool:
    """A function held as a module's attribute for ``forward`` to call (``self.act = torch.tanh``, a lambda, a bound
    method, a ``functools.partial``): export traced the one there into the program, so the guard watches it as it
    watches a plain setting (by identity; one of the same ``repr``, a partial of the same function and arguments, is
    no change). Why: ``m.f = functools.partial(scale, k=5.0)`` after compile changed eager's result and silently not
    the program's (session 40b). A callable object of a class of the user's is not one: a settings object."""
    import types

    return isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial))


#: the types of a plain value: what a module's setting or a container's item may be for the program to bake it in
SCALARS = (bool, int, float, complex, str, type(None))


def plain(v: Any, depth: int = 2) -> bool:
    """A plain value: a scalar (``SCALARS``), or a tuple of plain values ``depth`` levels down."""
    return isinstance(v, SCALARS) or (depth > 0 and type(v) is tuple and all(plain(x, depth - 1) for x in v))


def same_value(a: Any, b: Any) -> bool:
    """Equal as the program would use them: same type and ``repr`` (NaN is NaN, -0.0 is not 0.0). Written once for
    the guard (a setting changed since compile) and the export's watch (a container ``forward`` changed).

    A value whose ``repr`` raises (a ``float`` subclass of the user's with a broken ``__repr__``) is compared by its
    built-in base's ``repr`` (``float.__repr__``: what export made of it), or, being no plain value, by identity.
    Why: the guard's check let the user's ``RuntimeError`` out of a compiled call raw, naming no setting (round 64)."""
    if type(a) is not type(b):
        return False
    try:
        if repr(a) != repr(b):
            return False
    except Exception:  # noqa: BLE001 - the user's ``__repr__`` may raise anything
        ta, tb = _base_text(a), _base_text(b)
        if ta is None and tb is None:
            return a is b
        if ta is None or ta != tb:
            return False
    return a is b or _same_bits(a, b)


def _same_bits(a: Any, b: Any, depth: int = 2) -> bool:
    """Whether ``a`` and ``b``, of one type and one ``repr``, hold what the program would use alike: a scalar
    subclass's ``repr`` of the user's may hide its value (``__repr__`` returning "F": 2.0 and 3.0 alike) or fields
    set on it (``f.scale``), and ``repr`` writes every NaN "nan" whatever its sign (``math.copysign(1, t)``: 1 or
    -1). Why: the guard and ``settings_copies`` took such a value for compile's and ran the export's number silently
    (round 65 review). A tuple's items are compared ``depth`` levels down."""
    if type(a) is tuple:
        return depth <= 0 or all(_same_bits(x, y, depth - 1) for x, y in zip(a, b))
    if not isinstance(a, SCALARS):
        return True
    if type(a) not in SCALARS and (_base_text(a) != _base_text(b) or getattr(a, "__dict__", None)
                                   or getattr(b, "__dict__", None)):
        return False
    if isinstance(a, complex):
        return _same_float(a.real, b.real) and _same_float(a.imag, b.imag)
    return not isinstance(a, float) or _same_float(a, b)


def _same_float(a: float, b: float) -> bool:
    """Same bits where both are NaN (sign and payload), equal otherwise (``repr`` already told -0.0 from 0.0)."""
    return a == a or struct.pack("<d", a) == struct.pack("<d", b)


def value_text(v: Any) -> str:
    """``repr(v)`` for a message, never raising: where the value's own ``__repr__`` raises, its built-in base's
    (``float.__repr__`` of a ``float`` subclass, a tuple's items so shown) with its class named, else the class and
    what the ``repr`` raised. Why: a refusal naming a changed setting must reach the caller as our error (round
    64: a ``float`` subclass whose ``__repr__`` raises let the user's ``RuntimeError`` out raw)."""
    try:
        text = repr(v)
    except Exception as exc:  # noqa: BLE001 - the user's ``__repr__`` may raise anything
        text = _base_text(v)
        if text is not None:
            return f"{text} (a {type(v).__name__})"
        return f"<a {type(v).__name__} object whose repr raised {type(exc).__name__}>"
    return _signed_nans(v, text)


def _signed_nans(v: Any, text: str) -> str:
    """``text`` (``repr(v)``) with each NaN of a float, complex, tuple or list of them written with its sign: ``-nan``
    where the sign bit is set, ``+nan`` where not (and its bits where its payload is not the usual one). Why: ``repr`` writes "nan" for both, and a NaN-sign change
    (``same_value`` tells them apart) was refused as "cfg.t is nan now, nan at compile" (round 65), and a list
    setting's as "([nan, 1.0] -> [nan, 1.0])" (round 74)."""
    nans = _nan_signs(v, 2)
    if nans and type(v) is complex:   # (``repr`` writes "(nan+nanj)" whatever the signs)
        return f"complex({_signed_nans(v.real, repr(v.real))}, {_signed_nans(v.imag, repr(v.imag))})"
    if not nans or text.count("nan") != len(nans):   # (a user's ``__repr__`` writing them otherwise: as it is)
        return text
    parts = text.split("nan")
    return "".join(part + nan for part, nan in zip(parts, nans)) + parts[-1]


def _nan_signs(v: Any, depth: int) -> list[str]:
    """The text of each NaN in ``v`` (a float, a complex's real then imaginary part, a tuple's or list's items
    ``depth`` levels down), in ``repr``'s order: "+nan" or "-nan", "+nan(0x7ff8000000000001)" with a payload of its own."""
    import math

    if isinstance(v, float):
        if v == v:
            return []
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        payload = f"(0x{bits:016x})" if bits & ((1 << 63) - 1) != 0x7FF8000000000000 else ""
        return [("-" if math.copysign(1.0, v) < 0 else "+") + "nan" + payload]
    if isinstance(v, complex):
        return _nan_signs(v.real, 0) + _nan_signs(v.imag, 0)
    if type(v) in (tuple, list) and depth > 0:
        return [sign for x in v for sign in _nan_signs(x, depth - 1)]
    return []


def _base_text(v: Any, depth: int = 2) -> str | None:
    """The ``repr`` of ``v`` as its built-in base type writes it (a scalar subclass; a tuple of them ``depth`` levels
    down), None for any other value or where that raises too."""
    try:
        for base in SCALARS:
            if isinstance(v, base) and base is not type(None):
                return base.__repr__(v)
        if isinstance(v, tuple) and depth > 0:
            items = [_base_text(x, depth - 1) for x in v]
            if all(t is not None for t in items):
                return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    except Exception:  # noqa: BLE001
        return None
    return None
