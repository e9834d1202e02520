"""Monkeypatching the ONNX importer, a package whose modules each bind the names they import."""

from __future__ import annotations

import importlib
import pkgutil


def patch_importer(monkeypatch, name: str, value) -> None:
    """Replace ``name`` in every module of ``memplan.importers.onnx`` that looks it up, as patching the one
    module did before the importer was a package; a name no module has is a stale test, so it fails."""
    import memplan.importers.onnx as pkg

    hit = []
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(module, name):
            monkeypatch.setattr(module, name, value)
            hit.append(info.name)
    assert hit, f"no module of the ONNX importer has {name!r}"
