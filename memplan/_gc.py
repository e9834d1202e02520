"""Pausing Python's cyclic garbage collector around the big array-and-list passes.

Planning a million-tensor graph allocates tens of millions of small tuples and lists that die by
reference counting; none form cycles. The cyclic collector still walks every live container (the
graph alone holds millions) each time enough of them pile up, which measured 20-40% of
``graph_optimize``, the solvers and the verifier at 300k-1M nodes. ``paused`` stops its automatic
runs for one call and puts them back afterwards, so nothing leaks past the call.

Why the first generation's threshold (``gc.set_threshold(0, ...)``, which the ``gc`` module documents as
"disables collection") and not ``gc.disable()``: the on/off switch is one process-wide flag with no owner.
A pause that turned it off and back on undid another thread's ``gc.disable()`` made while the pause ran
(the user's program then ran with the collector on, against its own call), and it could not tell that
call from its own. The switch is now left to the program alone. The threshold is process-wide too, but
a change to it is seen: the pause puts the saved thresholds back only where they are still the ones it
set, so another thread's ``gc.set_threshold`` during the pause stands (all but one that sets exactly the values the
pause holds, which no one can tell from the pause's own). Pauses of several threads (or
nested ones) share one: the first saves the thresholds, the last one out restores them, under a lock.
An explicit ``gc.collect()`` still runs during a pause, as it did under ``gc.disable()``.

A forked child (``os.register_at_fork``) gets a fresh lock and keeps only the pauses of the thread that forked (the
one thread it has): a ``ProcessPoolExecutor``/``multiprocessing`` worker forked while another thread was planning
ran its whole life with automatic collection off (the pause's owner never ran in it to put the thresholds back, and
every later pause of the child only nested in it), and one forked while that thread held the lock hung at its first
plan (round 76).
"""

from __future__ import annotations

import functools
import gc
import os
import threading
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_lock = threading.Lock()
#: how many pauses are running now, over all threads
_depth = 0
#: the thresholds the first running pause found (None: it found automatic collection off already, and left it)
_saved: tuple[int, ...] | None = None
#: how many of the running pauses each thread holds (``threading.get_ident()`` -> count): what a forked child keeps
_owners: dict[int, int] = {}


def _enter() -> None:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            found = gc.get_threshold()
            _saved = found if found[0] != 0 else None
            if _saved is not None:
                gc.set_threshold(0, *found[1:])
        _depth += 1
        me = threading.get_ident()
        _owners[me] = _owners.get(me, 0) + 1


def _leave() -> None:
    global _depth
    with _lock:
        _depth -= 1
        me = threading.get_ident()
        if _owners.get(me, 0) > 1:
            _owners[me] -= 1
        else:
            _owners.pop(me, None)
        _restore_if_last()


def _restore_if_last() -> None:
    """The saved thresholds back where no pause runs any more (and they are still the pause's own)."""
    global _saved
    if _depth == 0 and _saved is not None:
        if gc.get_threshold() == (0, *_saved[1:]):   # (else another thread set its own since: it stands)
            gc.set_threshold(*_saved)
        _saved = None


def _after_fork_in_child() -> None:
    """In a forked child: a fresh lock, and the pauses of the forking thread alone (the others' threads do not exist
    here and will never leave theirs); with none of its own, the thresholds back as the first pause found them."""
    global _lock, _depth, _owners
    _lock = threading.Lock()
    me = threading.get_ident()
    mine = _owners.get(me, 0)
    _owners = {me: mine} if mine else {}
    _depth = mine
    _restore_if_last()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def paused(fn: F) -> F:
    """Run ``fn`` with the cyclic garbage collector's automatic runs off (back as they were after)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        _enter()
        try:
            return fn(*args, **kwargs)
        finally:
            _leave()

    return run  # type: ignore[return-value]
