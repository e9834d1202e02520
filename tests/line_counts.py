"""Work counted as lines run, for tests that hold a step to linear cost without timing it.

Why here: round 77's opt77 (``memorder.memory_order``) and chain77 (``streams.chain_cover``) each traced the lines
their module runs and stopped past a limit; the tracer is the same, only the module and the call differ."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def lines_run(path: str, call: Callable[[], Any], limit: int, what: str) -> tuple[int, Any]:
    """Run ``call`` counting the lines it runs in file ``path``: (the count, its result). Past ``limit`` lines an
    AssertionError naming ``what`` stops it, so a quadratic regression fails fast instead of running for minutes."""
    lines = 0

    def local(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
            if lines > limit:
                raise AssertionError(f"{what} ran more than {limit} lines")
        return local

    def outer(frame, event, arg):
        return local if frame.f_code.co_filename == path else None

    sys.settrace(outer)
    try:
        result = call()
    finally:
        sys.settrace(None)
    return lines, result
