"""Module-level locks a forked child gets back free.

Why: ``os.fork`` copies every lock as it is, held or not, and only the thread that forked lives on in the child. A
lock another thread held at that moment stays held in the child for good, so the child's first call that takes it
waits for ever. memplan holds some of its process-wide locks for a whole step: ``EXPORT_LOCK`` for a torch export
(seconds), ``torch.load``'s ``_LOADS`` for a ``.pt2`` load, ``io.minimalloc``'s for a CSV parse, the memory map's
style lock for a drawing. A ``ProcessPoolExecutor`` or ``multiprocessing`` worker forked (Linux's default start)
while another thread of the parent was inside one of them hung at its first import, load or parse (round 76;
``_csrcache`` and ``_gc`` renew their own locks the same way).

``fork_safe(lock)`` registers a module's lock (and returns it, for ``_LOCK = fork_safe(threading.Lock())``): in the
child each is made free again in place (``_at_fork_reinit``, what ``threading`` does for its own locks), so every
module that imported the object sees the fresh one. An ``RLock`` the forking thread itself holds is kept as it is:
that thread goes on in the child and lets go of it there. A plain ``Lock`` has no owner to ask; none of the blocks
these guard forks (they run torch's export and load, ``csv`` and matplotlib, never a user's fork between taking the
lock and letting go of it), so a held one is another thread's.

``OuterBlock`` is the same for what such a lock guards: a block that changes process-wide state for its own time
(warning filters, torch's default dtype, matplotlib's rcParams) never ends in a child forked while another thread was
inside it, so the child kept the change for its whole life (round 76 review). The outermost running block is marked
with what undoes it, and the child runs that where the block is another thread's (the forking thread's own block goes
on in the child and undoes itself).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

L = TypeVar("L")

#: every lock ``fork_safe`` registered, in order
_LOCKS: list = []


def fork_safe(lock: L) -> L:
    """``lock``, made free again in a forked child unless the forking thread holds it (see the module)."""
    _LOCKS.append(lock)
    return lock


class OuterBlock:
    """The outermost running block of one process-wide change, with what undoes it in a forked child (see the module).
    Marked and cleared under the change's own lock, so one block at a time is outermost."""

    def __init__(self) -> None:
        self._outer: tuple[int, Callable[[], object]] | None = None
        _BLOCKS.append(self)

    @contextlib.contextmanager
    def outermost(self, undo: Callable[[], object]) -> Iterator[None]:
        """Within: this block marked with ``undo`` unless an outer one is. Enter it before the change and leave it
        after the change is put back, so a fork in between undoes it once more, to the same state."""
        first = self._outer is None
        if first:
            self._outer = (threading.get_ident(), undo)
        try:
            yield
        finally:
            if first:
                self._outer = None

    def _undo_in_child(self) -> None:
        outer = self._outer
        if outer is None or outer[0] == threading.get_ident():
            return
        self._outer = None
        with contextlib.suppress(Exception):   # (a handler that raised would print in every child)
            outer[1]()


#: every ``OuterBlock`` made, in order
_BLOCKS: list[OuterBlock] = []


def _after_fork_in_child() -> None:
    for block in _BLOCKS:
        block._undo_in_child()
    for lock in _LOCKS:
        owned = getattr(lock, "_is_owned", None)
        if owned is not None and owned():
            continue   # (an RLock of the forking thread: it lets go of it in the child)
        reinit = getattr(lock, "_at_fork_reinit", None)
        if reinit is not None:
            reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
