"""The ONNX and torch importers are packages of layers: each module imports only the modules before it.

Why a test: the order is what keeps the packages readable (a module is understood from those below it) and free of
import cycles that would appear only when a rarely used module is loaded first. The check reads the source, so it
holds without onnx or torch installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = {
    "memplan/importers/onnx": ["common", "kernels", "protoscan", "files", "node_checks", "ort_ops", "type_rules", "function_body", "graph_scope", "untaken", "fed_sequences", "fed_optionals", "control_flow", "model_checks", "fold", "infer", "importer"],
    "memplan/importers/torch": ["common", "untrusted", "load", "dims", "checks", "layouts", "translate", "data_reads",
                                "lstm_meta", "unique_meta", "conversions", "int_buffers", "state_kept", "argument_layouts",
                                "trace"],
}


def upward_imports(package: Path, order: list[str]) -> list[str]:
    """Every import of a sibling module that is not below the importing one, as 'module -> sibling'."""
    rank = {name: i for i, name in enumerate(order)}
    found = []
    for path in sorted(package.glob("*.py")):
        here = path.stem
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            targets = [node.module] if node.module else [a.name for a in node.names]
            for target in targets:
                target = target.split(".")[0]
                if here == "__init__":
                    if target not in rank:
                        found.append(f"__init__ -> {target} (not a layer)")
                elif here not in rank or target not in rank or rank[target] >= rank[here]:
                    found.append(f"{here} -> {target}")
    return found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_module_imports_only_the_layers_below_it(package):
    path = ROOT / package
    assert sorted(p.stem for p in path.glob("*.py") if p.stem != "__init__") == sorted(LAYERS[package])
    assert upward_imports(path, LAYERS[package]) == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_an_upward_import_is_caught(tmp_path, package):
    order = LAYERS[package]
    for path in (ROOT / package).glob("*.py"):
        (tmp_path / path.name).write_text(path.read_text())
    low = tmp_path / f"{order[0]}.py"
    low.write_text(low.read_text() + f"\n\ndef _f():\n    from .{order[-1]} import x\n")
    assert upward_imports(tmp_path, order) == [f"{order[0]} -> {order[-1]}"]
