"""Round 68 (py312): setup.py's extras against what the code imports and what its messages tell a user to install.

Why: the ``cuda`` extra brought pycuda but not ``cuda.bindings``, which CUDA-graph capture needs, and the message
said "pip install cuda-python", which resolves to cuda-bindings 13 (an R580 driver only); the ``graphs`` extra pins
12.x. The ONNX importer told a user to "pip install onnxruntime", which only the ``dev`` extra brought. These tests
read setup.py (no install needed) and scan ``memplan/`` and ``runtime/`` with ``ast``: an optional import no extra
brings, or a message naming an extra that does not bring the package its ``try`` imports, fails here.
"""

from __future__ import annotations

import ast
import functools
import gc
import os
import re
import sys

import pytest
from packaging.requirements import Requirement

from memplan._gc import paused

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the distribution each optional import comes from
DIST = {"torch": "torch", "transformers": "transformers", "torchvision": "torchvision", "onnx": "onnx", "onnxruntime": "onnxruntime",
        "matplotlib": "matplotlib", "pycuda": "pycuda", "cuda": "cuda-bindings"}
#: imports that come with another optional package's distribution (torch requires sympy; torchgen is in torch's wheel)
BROUGHT_BY = {"sympy": "torch", "torchgen": "torch"}
#: model zoos ``runtime.aten.sweep`` / ``bench`` try where installed (their cases are SKIP-MISSING without them):
#: no extra brings them, by design
ZOO = {"timm"}   # (timm: runtime.aten.sweep_paths, round 69; torchvision is the torch extra's since round 70)
#: an extra named in a message: ``pip install -e '.[X]'`` or ``pip install 'memplan[X]'``
NAMED_EXTRA = re.compile(r"(?:memplan|\.)\[([\w,]+)\]")


def setup_call() -> dict:
    """setup()'s keyword arguments that are literals, read from setup.py without running it."""
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            pass
    return out


def extras() -> dict[str, set[str]]:
    """extra -> the distribution names it installs."""
    return {name: {Requirement(r).name for r in reqs} for name, reqs in setup_call()["extras_require"].items()}


def core() -> set[str]:
    return {Requirement(r).name for r in setup_call()["install_requires"]}


def sources():
    yield from _parsed_sources()


@functools.cache
@paused
def _parsed_sources() -> tuple[tuple[str, ast.Module], ...]:
    """(path, syntax tree) of each file of memplan/ and runtime/, parsed once for the module's tests (which only read
    the trees), with the cyclic collector's automatic runs paused meanwhile (``memplan._gc.paused``) and the trees
    frozen after: they are no cyclic garbage, and its passes over them as they piled up were four fifths of the
    parse's CPU time."""
    out = []
    for top in ("memplan", "runtime"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(d, name)
                    with open(path, encoding="utf-8") as f:
                        out.append((os.path.relpath(path, ROOT), ast.parse(f.read())))
    gc.freeze()   # (and out of its later passes, as conftest freezes the heap at each module)
    return tuple(out)


@pytest.fixture(scope="module", autouse=True)
def _drop_the_parsed_sources_after_the_module():
    """The trees let go when this module ends (the files after it in the worker do not carry them)."""
    yield
    _parsed_sources.cache_clear()


def imported(node: ast.AST) -> set[str]:
    """Top-level names of the absolute imports under ``node``."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.add(n.module.split(".")[0])
    return out


def optional(top: str) -> bool:
    return top not in sys.stdlib_module_names and top not in ("memplan", "runtime") and top not in CORE_IMPORTS


CORE_IMPORTS = {"numpy", "ortools", "sortedcontainers"}


def dist_of(top: str) -> str | None:
    """The distribution an extra must list for ``top``; None for a zoo package."""
    if top in ZOO:
        return None
    return DIST.get(top) or BROUGHT_BY.get(top)


def constants(tree: ast.Module) -> dict[str, str]:
    """The module's top-level string constants (f-strings of earlier constants resolved): a message may name its
    install line through one (``GRAPH_STACK``)."""
    out: dict[str, str] = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            text = text_of(n.value, out)
            if text is not None:
                out[n.targets[0].id] = text
    return out


def text_of(node: ast.AST, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = [text_of(v.value if isinstance(v, ast.FormattedValue) else v, names) or "" for v in node.values]
        return "".join(parts)
    return None


def handler_texts(handler: ast.ExceptHandler, names: dict[str, str]) -> str:
    """Every string a handler writes (constants, f-strings, module constants it names), joined."""
    out = []
    for n in ast.walk(handler):
        if isinstance(n, (ast.Constant, ast.JoinedStr, ast.Name)):
            t = text_of(n, names)
            if t:
                out.append(t)
    return " ".join(out)


def catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(getattr(k, "id", "") in ("ImportError", "ModuleNotFoundError", "Exception") for k in kinds)


def guarded_imports():
    """(file, line, optional top-level imports of a ``try`` body, extras its ImportError handlers name)."""
    for rel, tree in sources():
        names = constants(tree)
        for n in ast.walk(tree):
            if not isinstance(n, ast.Try):
                continue
            tops = {t for t in imported(ast.Module(body=n.body, type_ignores=[])) if optional(t)}
            if not tops:
                continue
            named = set()
            for h in n.handlers:
                if catches_import_error(h):
                    for spec in NAMED_EXTRA.findall(handler_texts(h, names)):
                        named |= set(spec.split(","))
            yield rel, n.lineno, tops, named


def test_every_optional_import_is_in_an_extra():
    """Each package memplan/ or runtime/ imports beyond the standard library and install_requires is brought by
    one of setup.py's extras (or comes with one: sympy and torchgen with torch), the sweep's model zoos aside."""
    ext = extras()
    brought = set().union(*ext.values())
    assert {"numpy", "ortools", "sortedcontainers"} == core() == CORE_IMPORTS
    unknown, missing = [], []
    for rel, tree in sources():
        for top in sorted(t for t in imported(tree) if optional(t)):
            if top in ZOO:
                continue
            dist = dist_of(top)
            if dist is None:
                unknown.append((rel, top))
            elif dist not in brought:
                missing.append((rel, top, dist))
    assert unknown == [], "an optional import this test does not know: add it to an extra and to DIST"
    assert missing == []


def test_messages_name_the_extra_that_brings_what_the_try_imports():
    """Where a ``try`` imports an optional package and its ImportError handler names an extra (``.[X]``,
    ``memplan[X]``), that extra brings the package."""
    ext = extras()
    seen, bad = 0, []
    for rel, line, tops, named in guarded_imports():
        if not named:
            continue
        seen += 1
        for extra in named:
            if extra not in ext:
                bad.append((rel, line, extra, "no such extra"))
                continue
            for top in tops:
                dist = dist_of(top)
                if dist is not None and dist not in ext[extra]:
                    bad.append((rel, line, top, f"not in extra {extra!r}"))
    assert bad == []
    assert seen >= 5   # cuda_util (pycuda, cuda.bindings), memmap, the onnx and torch importers


def test_every_extra_a_message_names_exists():
    """Any ``.[X]`` / ``memplan[X]`` in a string of memplan/ or runtime/ names an extra of setup.py."""
    ext = extras()
    bad = []
    for rel, tree in sources():
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "pip install" in n.value:
                for spec in NAMED_EXTRA.findall(n.value):
                    bad += [(rel, n.lineno, e) for e in spec.split(",") if e not in ext]
    assert bad == []


def test_tool_and_test_tables_name_extras_that_bring_the_package():
    """The runtime tools' one-line messages (``tool_args._EXTRAS``) and the tests' skips (``needs.EXTRA``) map
    a missing module to an extra: that extra brings the module's distribution."""
    import needs

    from runtime import tool_args

    ext = extras()
    bad = []
    for module, line in tool_args._EXTRAS.items():
        (spec,) = NAMED_EXTRA.findall(line)
        if DIST[module] not in ext.get(spec, set()):
            bad.append(("tool_args", module, spec))
    for module, extra in needs.EXTRA.items():
        if DIST[module] not in ext.get(extra, set()):
            bad.append(("needs", module, extra))
    assert bad == []


def test_graphs_extra_pins_cuda_bindings_to_the_12_line():
    """cuda-bindings 13 needs an R580 driver; 12.x runs on every CUDA 12 driver (525.60.13 on) and on R580. The
    ``graphs`` extra takes 12.8 (the first 12.x release of ``cuda-bindings`` on PyPI with ``cuda.bindings``) up to,
    not including, 13; it brings pycuda too (the executors)."""
    (req,) = [Requirement(r) for r in setup_call()["extras_require"]["graphs"] if r.startswith("cuda-bindings")]
    assert {"pycuda", "cuda-bindings"} <= extras()["graphs"]
    spec = req.specifier
    assert "12.9.10" in spec and "12.8.0" in spec
    assert "13.0.0" not in spec and "13.5.0" not in spec and "12.6.2" not in spec
    assert "cuda-bindings" not in extras()["cuda"]   # (pycuda alone: torch's CUDA 13 wheels bring their own 13.x)


def test_graph_capture_without_cuda_bindings_names_the_graphs_extra(monkeypatch):
    """The runtime's GpuStackMissing for a capture without cuda.bindings names the extra that brings it."""
    from runtime import cuda_util

    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(cuda_util.GpuStackMissing) as info:
        cuda_util.launch_graph(object(), object())
    (spec,) = NAMED_EXTRA.findall(str(info.value))
    assert "cuda-bindings" in extras()[spec]


def test_docs_say_which_extra_brings_cuda_bindings():
    """README and docs/runtime.md name the ``graphs`` extra and its range, so the install line there is setup.py's."""
    (req,) = [r for r in setup_call()["extras_require"]["graphs"] if r.startswith("cuda-bindings")]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(ROOT, "docs", "runtime.md"), encoding="utf-8") as f:
        runtime_md = f.read()
    assert "`graphs`" in readme and '".[graphs]"' in readme
    assert f"`{req}`" in runtime_md and "'.[graphs]'" in runtime_md
