"""The process-wide bound on the arrays kept on buffer problems and their orders: the conflict arrays
(``BufferProblem.conflict_csr`` and ``BufferProblem.conflict_pairs``), the in-place pairs' sorted keys
(``BufferProblem._compatible_keys``) and an order's precedence columns (``HBOrder.first_csr``).

Why: a problem keeps its CSR arrays (up to ``problem.CSR_CACHE_PAIRS`` pairs, 16 MiB) and its conflicting pairs (as
large again) for as long as it lives, so a caller holding many problems held every one's: a memory budget's candidates
kept for their exact probes, a device split's problem per device, a caller's own list of problems. ``LEDGER`` keeps
the most recently made or used arrays up to ``CSR_CACHE_BYTES`` in all and takes the least recently used off their
problems past it; a problem asked again builds them again (a pure function of the problem: the same arrays), so only
time is at stake, never a plan. The in-place keys and the precedence columns are small beside the conflict arrays
(the order's columns are at most twice its ``first`` array) but were kept outside any bound for as long as their
owner lived; counted here, the bound is on everything these caches keep (round 63).

Why one ledger for the process and not one per plan: what it bounds is what outlives a plan. The problems a caller
holds between plans (its own list, a cache of problems, a budget's candidates handed back) are owned by no single
plan, and a ledger per plan would bound each plan's share while the sum over plans grew without bound, the leak this
module exists for. So it is global, and made safe as global state must be: one lock for every step (solves may run in
threads), a fresh lock in a forked child (``os.register_at_fork``: a fork taken while another thread held the lock
would leave the child's copy held for ever), and ``LEDGER.clear()`` to take every kept array off its problem.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

#: the most bytes of conflict arrays kept on all live problems together: two problems at ``CSR_CACHE_PAIRS`` (a
#: problem and one made from it such as its clique-bounded copy, solved one after the other), each with its pairs
#: (16 MiB) and its CSR arrays (16 MiB of neighbours, and bounds of 8 bytes a buffer: 4 MiB at 500,000 buffers)
CSR_CACHE_BYTES = 80 << 20
#: the attribute of a ``BufferProblem`` its CSR arrays are kept in
ATTR = "_csr_cache"
#: the attribute of a ``BufferProblem`` its conflicting pairs are kept in (``(chunk, (a, b))``)
PAIRS_ATTR = "_pairs_cache"
#: the attribute of a ``BufferProblem`` its in-place pairs' sorted keys are kept in (``(keys,)``)
KEYS_ATTR = "_compatible_key_array"
#: every attribute of a ``BufferProblem`` the ledger counts (what it leaves out of a copy or a pickle)
ATTRS = (ATTR, PAIRS_ATTR, KEYS_ATTR)
#: the attribute of an ``HBOrder`` its precedence columns are kept in (``(ptr, cols, vals)``; left out of its copies)
FIRST_ATTR = "_first_csr"


class CsrLedger:
    """Which problems (and orders) keep which arrays (an attribute of ``ATTRS`` each, or ``FIRST_ATTR`` on an order),
    least recently used first, and their bytes (``total``).

    Entries are keyed by ``(id, attribute)`` and hold a weak reference: the ledger never keeps a problem alive, and a
    problem that is collected is struck off (its weak reference's callback only notes it, ``_dead``: a callback can
    run inside the ledger's own step, where the dict is changing). Thread-safe: solves may run in threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, str], tuple[weakref.ref, int]] = OrderedDict()
        self._dead: list[tuple[tuple[int, str], weakref.ref]] = []
        self.total = 0

    def keep(self, owner: Any, arrays: tuple[np.ndarray, ...], limit: int | None = None, attr: str = ATTR,
             value: Any = None, alone: bool = False) -> bool:
        """Keep ``value`` (default ``arrays``) on ``owner`` as its ``attr`` where ``arrays`` fit ``limit`` (default
        ``CSR_CACHE_BYTES``) by themselves, taking the least recently used arrays of problems (this one's others too)
        off them while the total is over it. Returns whether they were kept.

        ``alone``: arrays larger than ``limit`` by themselves are kept too, as the ledger's only entry (every other
        taken off), unless ``limit`` is 0 (nothing is kept then); the next array kept takes them off in turn (the
        total is then over the limit), so at most one such entry lives at a time, and only until anything else is
        kept. Why: the precedence
        columns are asked for by every conflict test (greedy asks twice a buffer), and above the cap they were built
        again each time, a pass over the order's whole ``first`` array (round 64)."""
        limit = CSR_CACHE_BYTES if limit is None else limit
        nbytes = sum(int(a.nbytes) for a in arrays)
        if nbytes > limit:
            if not (alone and limit > 0):
                return False
            limit = nbytes
        key = (id(owner), attr)
        with self._lock:
            self._sweep()
            self._forget(key)
            ref = weakref.ref(owner, lambda r, key=key: self._dead.append((key, r)))
            object.__setattr__(owner, attr, arrays if value is None else value)
            self._kept[key] = (ref, nbytes)
            self.total += nbytes
            while self.total > limit:
                old, (old_ref, _) = next(iter(self._kept.items()))
                self._forget(old)
                other = old_ref()
                if other is not None:
                    other.__dict__.pop(old[1], None)
        return True

    def used(self, owner: Any, attr: str = ATTR) -> None:
        """Mark ``owner``'s ``attr`` the most recently used (the last to be taken off)."""
        key = (id(owner), attr)
        with self._lock:
            entry = self._kept.get(key)
            if entry is not None and entry[0]() is owner:
                self._kept.move_to_end(key)

    def clear(self) -> None:
        """Take every kept array off its problem and forget them all (a caller done with its problems, a test)."""
        with self._lock:
            for (_, attr), (ref, _) in self._kept.items():
                owner = ref()
                if owner is not None:
                    owner.__dict__.pop(attr, None)
            self._kept.clear()
            self._dead.clear()
            self.total = 0

    def _forget(self, key: tuple[int, str]) -> None:
        entry = self._kept.pop(key, None)
        if entry is not None:
            self.total -= entry[1]

    def _sweep(self) -> None:
        """Strike off the problems collected since (only the entry that is still theirs: an id may be reused)."""
        while self._dead:
            key, ref = self._dead.pop()
            entry = self._kept.get(key)
            if entry is not None and entry[0] is ref:
                self._forget(key)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, and the entries as they were. Why: a fork copies the lock as it was, held
        if another thread of the parent was inside ``keep`` or ``used`` then, and that thread does not exist in the
        child: its first ``conflict_csr`` waited for good (a ``multiprocessing`` pool forked beside solving threads).
        The entries stay true in the child: its problems are the parent's, at the same ids; ``total`` is counted
        again from them (a ``keep`` or ``_forget`` cut short between its entry and its sum left them apart)."""
        self._lock = threading.Lock()
        self.total = sum(nbytes for _ref, nbytes in self._kept.values())

    def live_bytes(self) -> int:
        """The bytes kept on problems still alive (for tests: ``total`` after striking off the collected ones)."""
        with self._lock:
            self._sweep()
            return self.total


#: the one ledger of the process (``BufferProblem.conflict_csr``)
LEDGER = CsrLedger()


def _reset_after_fork() -> None:
    LEDGER._after_fork()   # (looked up at fork time: a test may swap ``LEDGER``)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
