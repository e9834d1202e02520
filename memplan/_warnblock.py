"""``warnings.catch_warnings`` blocks taken one at a time over the whole process.

Why: ``catch_warnings`` saves the process-wide ``warnings.filters`` on entry and puts that list back on exit, so two
threads' blocks that overlap undo each other: the first to leave puts back the list it saw, the last puts back the
one it saw, the first's ``simplefilter("ignore")`` included. Four threads importing ONNX models at once (constant
folding silences the reference evaluator per node) left an "ignore every warning" filter on the process for good,
memplan's own ``UnusedOption`` and ``WallClockStop`` warnings and the user's silenced after it (round 76). Every
such block of memplan and ``runtime`` holds ``WARNINGS_LOCK`` (reentrant: blocks nest), so they no longer overlap one
another; a caller's own ``catch_warnings`` in another thread is still Python's to order (Python < 3.14 keeps one list).
No block takes another of memplan's locks inside but a ``.pt2`` load's own (taken nowhere else), so no two
locks are ever taken in both orders.

A forked child (``os.register_at_fork``) gets the filters back as the outermost running block found them where that
block is another thread's: only the forking thread lives on in the child, so the block's ``__exit__`` never ran
there, and a ``ProcessPoolExecutor``/``multiprocessing`` worker forked while another thread imported an ONNX model
(or exported a torch one) kept its "ignore every warning" filter for its whole life (round 76 review).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

from ._forklocks import OuterBlock, fork_safe

#: held around every ``catch_warnings`` block of memplan and ``runtime``
WARNINGS_LOCK = fork_safe(threading.RLock())

#: the outermost running block: what a forked child undoes where that block is another thread's
_BLOCKS = OuterBlock()


@contextlib.contextmanager
def warnings_caught(ignore: bool = True) -> Iterator[None]:
    """``warnings.catch_warnings()`` under ``WARNINGS_LOCK``; with ``ignore``, every warning ignored inside (the
    block's own filters otherwise, set by the caller inside it)."""
    with WARNINGS_LOCK:
        block = warnings.catch_warnings()
        # (marked before ``__enter__`` saves the filters and cleared after ``__exit__`` puts them back: a child forked
        # before the entry finds nothing to undo, its ``__exit__`` refused and suppressed)
        with _BLOCKS.outermost(lambda: block.__exit__(None, None, None)), block:
            if ignore:
                warnings.simplefilter("ignore")
            yield
