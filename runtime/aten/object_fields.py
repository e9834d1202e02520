"""The fields of a settings object (its ``__dict__``'s, or a user's slotted object's filled ``__slots__``), as the
per-call watches (``guard``), compile's put-back of module state (``module_state``), the copy proof
(``settings_copies``) and the walks of held parameters and deep settings (``held_params``, ``deep_settings``) all read
them.

Why a module of its own: those modules import one another (``guard`` imports ``program``, which imports
``held_params`` in a function), and each took these helpers from ``guard``: a circle of imports. This one imports
only ``settings``, so every one of them can read fields alike without reaching back up.
"""

from __future__ import annotations

from typing import Any

from .settings import settings_object, user_class


def slot_names(cls: type) -> tuple[str, ...]:
    """The ``__slots__`` names of ``cls`` and its bases (``__dict__`` and ``__weakref__`` aside)."""
    names: list[str] = []
    for c in cls.__mro__:
        slots = vars(c).get("__slots__", ())
        names += [n for n in ((slots,) if isinstance(slots, str) else slots) if n not in ("__dict__", "__weakref__")]
    return tuple(dict.fromkeys(names))


def object_fields(torch: Any, value: Any) -> list[tuple[str, Any]] | None:
    """(name, value) of a settings object's fields: its ``__dict__``'s, or, for an object of a user's class with
    ``__slots__`` and no ``__dict__``, its filled slots'; None for anything else. Why slots: such an object was no
    settings object (``settings.settings_object`` asks for a ``__dict__``), so ``x * self.s.t`` with ``s.t`` replaced
    after compile ran the old tensor silently (round 68)."""
    if settings_object(torch, value):
        d = vars(value)
        return list(d.items()) if type(d) is dict else None
    cls = type(value)
    if (hasattr(value, "__dict__") or isinstance(value, (torch.Tensor, torch.nn.Module, type)) or callable(value)
            or not user_class(cls)):
        return None
    names = slot_names(cls)
    return [(n, getattr(value, n)) for n in names if hasattr(value, n)] if names else None


def object_field_dict(torch: Any, value: Any) -> dict[str, Any] | None:
    """``object_fields`` as a new dict (None for no settings object): what the copy proof (``settings_copies``) and
    compile's put-back of module state (``module_state``) compare and snapshot."""
    fields = object_fields(torch, value)
    return None if fields is None else dict(fields)
