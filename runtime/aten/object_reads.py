"""The attributes of the settings objects a module holds (transformers' ``config``) that ``forward`` read while it was
exported.

Why: the guard watches the plain values of those objects (``guard.Settings``); a value ``forward`` did not read is
no setting of the program, and a change of it (``config.problem_type``, set by an eager call with labels) must not
refuse the next call.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from memplan._forklocks import fork_safe

from .torch_reads import _Token, passed_on, redone

#: guards the classes ``watch_object_reads`` patches (``_patched_classes``), across threads
_writes_lock = fork_safe(threading.RLock())   # (an RLock: ``redone`` lets go of a hold an interrupt left)


class _Stacks(threading.local):
    """Each thread's block stack, None where it never entered one: read by the class default, not a ``getattr`` with
    a default (an ``AttributeError`` raised and caught inside, some 1 us on every attribute read of a watched class
    by any other thread, round 65c)."""

    stack: list | None = None


_read_watch = _Stacks()
_patched_classes: dict[type, list[Any]] = {}   # class -> [blocks using it, its own __getattribute__ or None]


@contextlib.contextmanager
def watch_object_reads(objects: list[Any]) -> Iterator[tuple[set[tuple[int, str]], set[int]]]:
    """(id of the object, attribute name) of each attribute of one of ``objects`` read inside the block (an export:
    ``forward``'s ``self.config.output_hidden_states``), in this thread; and the ids of the objects watched (those
    whose class could take a ``__getattribute__``: not a builtin type's).

    Why: the guard watches the plain values of the settings objects a module holds (``guard.Settings``); a value
    ``forward`` did not read is no setting of the program. transformers' ``*ForSequenceClassification`` sets
    ``config.problem_type`` in an eager call with labels: a module compiled without labels refused its next call
    though the program never read it. Each class is patched while any block uses it, as ``watch_module_writes``
    patches ``nn.Module.__setattr__``; the objects' own classes are restored to what they were."""
    reads: set[tuple[int, str]] = set()
    watched: set[int] = set()
    stack = getattr(_read_watch, "stack", None)
    if stack is None:
        stack = _read_watch.stack = []
    classes = list(dict.fromkeys(map(type, objects)))
    token = _Token()   # (this block's, in each class's set: taking it out twice is harmless, a count's was not)
    entry = (reads, watched)
    pushed = False
    try:
        taken: list[type] = []
        redone(lambda: taken.__setitem__(slice(None), _take_classes(classes, token)), _writes_lock)
        watched.update(id(o) for o in objects if type(o) in taken)
        pushed = True
        stack.append(entry)
        yield reads, watched
    finally:
        if pushed:
            redone(lambda: _drop(stack, entry))
        redone(lambda: _give_back(classes, token), _writes_lock)


def _take_classes(classes: list[type], token: object) -> list[type]:
    """Patch each of ``classes`` not patched yet and add ``token`` to its blocks; the classes that took it."""
    taken: list[type] = []
    with _writes_lock:
        for cls in classes:
            if cls not in _patched_classes:
                own = cls.__dict__.get("__getattribute__")
                try:
                    cls.__getattribute__ = _reading(cls.__getattribute__)
                except Exception:  # noqa: BLE001 - a builtin or immutable type (TypeError), a metaclass that refuses
                    continue       # it: its objects stay unwatched (all their values guarded)
                _patched_classes[cls] = [weakref.WeakSet(), own]
            _patched_classes[cls][0].add(token)
            taken.append(cls)
    return taken


def _give_back(classes: list[type], token: object) -> None:
    """Take ``token`` out of each class's blocks and restore the class's own ``__getattribute__`` (or none) where it
    was the last; idempotent (redone where an interrupt cut it short)."""
    with _writes_lock:
        for cls in classes:
            entry = _patched_classes.get(cls)
            if entry is None:
                continue
            entry[0].discard(token)
            if not entry[0]:
                with contextlib.suppress(Exception):   # (a metaclass refusing it: the wrapper records nothing
                    if entry[1] is None:               # outside a block)
                        if "__getattribute__" in cls.__dict__:
                            del cls.__getattribute__
                    else:
                        cls.__getattribute__ = entry[1]
                del _patched_classes[cls]


def _drop(stack: list, entry: Any) -> None:
    """Take ``entry`` off this thread's block stack wherever it sits (blocks left out of order by an interrupt)."""
    for k in range(len(stack) - 1, -1, -1):
        if stack[k] is entry:
            del stack[k]
            break


@contextlib.contextmanager
def reads_unwatched() -> Iterator[None]:
    """No read inside the block is recorded (a forward hook's: ``hook_state.hooks_tracked``). Why: a counting hook
    reads its own ``n``; recorded, the guard watched it and refused the next compiled call after an eager one."""
    stack = getattr(_read_watch, "stack", None)
    if stack is None:
        stack = _read_watch.stack = []
    stack.append((set(), set()))
    try:
        yield
    finally:
        stack.pop()


#: the attributes through which a settings object's fields are read all at once (``vars(cfg)["k"]``, ``cfg.__dict__``,
#: ``copy.copy(cfg)``), none by name: the object's fields are all watched (``program._read_field_by_field``)
WHOLE_READS = frozenset({"__dict__", "__getstate__", "__reduce__", "__reduce_ex__", "__copy__", "__deepcopy__"})


def _not_ours(frame: Any) -> bool:
    """Whether the reader ``frame`` is no code of this runtime's or memplan's (whose walks of the module's state,
    ``vars(obj)``, read nothing for ``forward``)."""
    return str(frame.f_globals.get("__name__", "")).partition(".")[0] not in ("runtime", "memplan")


def _reading(real: Any) -> Any:
    """``real`` (a class's ``__getattribute__``) that also records the read into this thread's innermost block."""

    def reading(self: Any, name: str) -> Any:
        blocks = _read_watch.stack
        if blocks and id(self) in blocks[-1][1] and (name not in WHOLE_READS or _not_ours(sys._getframe(1))):
            blocks[-1][0].add((id(self), name))
        try:
            return real(self, name)
        except BaseException as exc:
            passed_on(exc)
            raise   # (bare: another thread's ``AttributeError`` shows no frame of this wrapper)

    return reading
