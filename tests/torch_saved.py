"""Helpers for tests of programs saved with ``torch.export.save`` and loaded again (a loaded program's fake tensors
lie at storage offset 0 of storages of their own: the importer must plan it as the program in memory)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
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


def small_module() -> Any:
    """A one-Linear module, ``relu(Linear(3, 4)(x))``: the smallest program whose ``.pt2`` holds a weight, a bias, an
    input and two nodes, which the archive and record-editing tests save, edit and load."""
    import torch

    class Small(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 4)

        def forward(self, x):
            return self.lin(x).relu()

    return Small()


def edited_program(src: Path, dst: Path, edit) -> Path:
    """``src`` (a saved ``.pt2``) with its ``models/model.json`` passed through ``edit(program)``, written to ``dst``:
    the hostile-archive tests' edited records."""
    with zipfile.ZipFile(io.BytesIO(src.read_bytes())) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("models/model.json"):
                program = json.loads(data)
                edit(program)
                data = json.dumps(program).encode()
            zout.writestr(info.filename, data)
    return dst
