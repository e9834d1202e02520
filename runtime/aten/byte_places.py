"""The byte buffers at the places ``forward``'s Python code and the forward hooks read (``python_reads.watched_places``,
``hook_state.hook_buffers``): those too big to compare at each call (``unwatched``, which ``walk_bounds`` warns of),
and the refusal of ``forward`` changing one in place during compile's export (``forward_writes_refused``).

Why a module of its own: ``byte_values`` fingerprints buffers and is read by ``python_state``, ``python_reads`` and
``hook_state``; these two steps need the places those modules find, so they sit above all of them (``byte_values``
asked ``python_reads`` and ``hook_state`` back in functions: a circle of imports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .byte_values import CONTENT_LIMIT, _put_back, _raw, find, size
from .errors import AtenExecutorError
from .hook_state import hook_buffers
from .python_reads import watched_places


def unwatched(torch: Any, module: Any) -> list[str]:
    """The labels of the buffers ``module``'s tree and the Python state ``forward``'s code names hold that are too big
    to compare at each call (``walk_bounds`` warns naming them)."""
    try:
        big = find(torch, module, watched_places(torch, module))[1]
        return big + [f"{label} ({size(buf):,} bytes)" for label, buf in hook_buffers(torch, module)
                      if size(buf) > CONTENT_LIMIT]
    except Exception:  # noqa: BLE001 - a warning's walk must never fail a compile
        return []


@contextlib.contextmanager
def forward_writes_refused(torch: Any, module: Any) -> Iterator[None]:
    """Runs the block (compile's export) and refuses, with ``AtenExecutorError`` naming it, a buffer ``forward``
    changed in place (``self.n[0] += 1`` on a NumPy array), its bytes put back as they were.

    Why: a compiled call runs no Python, so it neither changes such a buffer nor follows it, where each eager call
    does; and the per-call watch (``BufferReads``) saw each eager call's change as the caller's, and its proof's export
    changed the buffer once more (round 64). A buffer filled once for good is refused too: fill it before compile."""
    try:
        reads = find(torch, module, watched_places(torch, module), live=None)[0]
    except Exception:  # noqa: BLE001 - the watch is an extra: the export's own errors come first
        reads = None
    saved = [] if reads is None else [(b, _raw(b)) for b in reads.objects]
    yield
    if reads is None or reads.unchanged():
        return
    label, now, was = reads.first_changed()
    for buf, raw in saved:
        _put_back(buf, raw)
    raise AtenExecutorError(
        f"forward changes {label} in place ({was} before the export's call, {now} after): a compiled call runs no "
        "Python, so it would neither change it nor follow it as each eager call does (keep such state in a buffer "
        "of the module, register_buffer, which the program updates, or change it outside forward)")
