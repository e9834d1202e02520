"""Pausing Python's cyclic garbage collector around the big array-and-list passes.

Planning a million-tensor graph allocates tens of millions of small tuples and lists that die by
reference counting; none form cycles. The cyclic collector still walks every live container (the
graph alone holds millions) each time enough of them pile up, which measured 20-40% of
``graph_optimize``, the solvers and the verifier at 300k-1M nodes. ``paused`` switches it off for
one call and back on afterwards (unless it was already off), so nothing leaks past the call.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def paused(fn: F) -> F:
    """Run ``fn`` with the cyclic garbage collector off (re-enabled after, if it was on)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run  # type: ignore[return-value]
