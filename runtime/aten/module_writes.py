"""The attributes ``forward`` sets on its module tree through ``nn.Module.__setattr__`` while it is exported, each with
the value it held before (``MISSING`` where none) and the last one written; and which of a module's ``__dict__``
entries are torch's own fields, left out of every watch of its state (``module_fields``).

Why: the compiled module refuses a plain setting changed after compile (``guard.Settings``), but one ``forward``
sets itself is set again by every eager call; compile must tell one set to the same value each call (Funnel's
``pooling_mult``) from one that changes at each (``self.n += 1``: another program at every call).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from .torch_reads import SharedPatch, passed_on


def module_fields(torch: Any) -> frozenset[str]:
    """torch's own ``nn.Module`` fields (``_parameters``, ``training``, the hook dicts, ...): no state of a user's
    module, left out wherever its ``__dict__`` is watched or compared (the guard, the call-state watch, the
    containers' snapshot, ``sets.check_private_sets``)."""
    return frozenset(vars(torch.nn.Module()))


#: the watch on ``nn.Module.__setattr__`` (``watch_module_writes``)
_MODULE_WRITES = SharedPatch()


#: the value ``ModuleWrites`` records for an attribute that was not there before the block's first write of it
MISSING = object()


class ModuleWrites(set):
    """The (id of the module, attribute) pairs set inside a ``watch_module_writes`` block, and in ``values`` each
    one's module, the value it held before the block's first write (``MISSING`` where it had none) and the last value
    written. Why the values: a program holds one call's reads, so an attribute ``forward`` changes (``self.n += 1``,
    a ``self.first = False`` flag) makes eager's next call another program, which compile must tell apart from one
    ``forward`` only sets to the same value each call (Funnel's ``pooling_mult``)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[int, str], tuple[Any, Any, Any]] = {}

    def record(self, owner: Any, name: str, value: Any) -> None:
        key = (id(owner), name)
        before = self.values[key][1] if key in self.values else held_before(owner, name)
        self.values[key] = (owner, before, value)
        self.add(key)


def held_before(owner: Any, name: str) -> Any:
    """What ``owner.name`` holds before a write: a plain attribute, else a parameter, buffer or submodule of that
    name, else what a property of its class (a data descriptor) gives, else ``MISSING``.

    Why the property: its value lives elsewhere (``self._mult`` behind ``self.mult``), so ``vars`` never holds it;
    read as ``MISSING`` at every write, ``self.mult = 2`` from None looked made anew at each call (a counter: compile
    refused a fixed point) and compile could not put it back (the refused compile left ``_mult`` at 2)."""
    own = vars(owner)
    if name in own:
        return own[name]
    for store in ("_parameters", "_buffers", "_modules"):
        held = own.get(store)
        if isinstance(held, dict) and name in held:
            return held[name]
    if hasattr(inspect.getattr_static(type(owner), name, None), "__set__"):
        try:
            return getattr(owner, name)
        except Exception:  # noqa: BLE001 - a getter that fails before the first write: nothing held yet
            return MISSING
    return MISSING


@contextlib.contextmanager
def watch_module_writes(torch: Any) -> Iterator[ModuleWrites]:
    """(id of the module, attribute name) of each attribute set through ``nn.Module.__setattr__`` inside the block
    (an export: ``forward``'s own ``self.pooling_mult = 2``), in this thread.

    Why: the compiled module refuses a plain setting changed after compile (``guard.Settings``), but one ``forward``
    sets itself (Funnel's ``pooling_mult``, RecurrentGemma's ``recurrent_states``) is set again by every eager call,
    which then made the next compiled call refuse. Patched once for the process while any block runs, recording
    into the calling thread's innermost block, as ``watch_default_dtype_reads`` does."""
    def wrap(real: Any) -> Any:
        def watched(self: Any, name: str, value: Any) -> None:
            seen = _MODULE_WRITES.innermost()
            if seen is not None:
                seen.record(self, name, value)
            try:
                real(self, name, value)
            except BaseException as exc:
                passed_on(exc)
                raise   # (bare: another thread's failing ``setattr`` shows no frame of this wrapper)

        return watched

    with _MODULE_WRITES.block(torch.nn.Module, "__setattr__", wrap, ModuleWrites()) as seen:
        yield seen
