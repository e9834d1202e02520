"""Helpers for tests of programs saved with ``torch.export.save`` and loaded again (a loaded program's fake tensors
lie at storage offset 0 of storages of their own: the importer must plan it as the program in memory)."""

from __future__ import annotations

import io
from typing import Any


def saved_and_loaded(ep: Any) -> Any:
    """``ep`` saved to bytes and loaded back (``torch.export.load``)."""
    import torch

    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    return torch.export.load(buf)


def rows(g: Any) -> list[tuple]:
    """A graph's tensors as (id, size, kind, view_of, view_offset), in its order: what a plan sizes and aliases."""
    return [(t.id, t.size, t.kind, t.view_of, t.view_offset) for t in g.tensors]
