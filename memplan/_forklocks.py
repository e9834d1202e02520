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
"""

from __future__ import annotations

import os
from typing import TypeVar

L = TypeVar("L")

#: every lock ``fork_safe`` registered, in order
_LOCKS: list = []


def fork_safe(lock: L) -> L:
    """``lock``, made free again in a forked child unless the forking thread holds it (see the module)."""
    _LOCKS.append(lock)
    return lock


def _after_fork_in_child() -> None:
    for lock in _LOCKS:
        owned = getattr(lock, "_is_owned", None)
        if owned is not None and owned():
            continue   # (an RLock of the forking thread: it lets go of it in the child)
        reinit = getattr(lock, "_at_fork_reinit", None)
        if reinit is not None:
            reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
