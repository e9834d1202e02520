"""A real Ctrl-C at one chosen line of a module, for tests that prove a block survives a SIGINT at every line.

Why here: round 49b (``importers/quiet.py``'s switches) and round 50 (``memplan/files.py``'s writes) each traced
their module's lines and raised SIGINT at the k-th one; the tracing and putting back a coverage tool's trace is
the same, only which lines count differs (``counts``)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType


def interrupted_at(block: Callable[[], object], k: int, path: str,
                   counts: Callable[[FrameType], bool] = lambda frame: True) -> tuple[int, bool]:
    """Run ``block`` raising a real SIGINT at the ``k``-th line of file ``path`` it runs for which ``counts(frame)``
    holds (never, for k 0): (the lines counted, whether a KeyboardInterrupt came out of ``block``)."""
    seen = [0]

    def trace(frame, event, arg):
        if frame.f_code.co_filename != path:
            return None
        if event == "line" and counts(frame):
            seen[0] += 1
            if seen[0] == k:
                signal.raise_signal(signal.SIGINT)
        return trace

    outer = sys.gettrace()   # (a coverage tool's: put back after)
    sys.settrace(trace)
    interrupted = False
    try:
        block()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        sys.settrace(outer)
    return seen[0], interrupted
