"""Round 67: a runtime tool run without its optional package ends with one line and exit status 2.

Without the torch extra, ``python -m runtime.aten.bench`` (and every tool that imports torch: the sweep, the peer,
the read and compile benchmarks, profile_gap) ended in a 7-16-line ``ModuleNotFoundError`` traceback. The package
is hidden here by ``sys.modules[name] = None`` (Python then refuses its import), so this runs where torch is
installed (CI) as well; the tools' own parsing and the memplan command are untouched by it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.tool_args import _missing_extra

TORCH_TOOLS = ["runtime.aten.sweep", "runtime.aten.bench", "runtime.torch_peer", "runtime.aten.bench_reads",
               "runtime.aten.bench_compile", "runtime.aten.profile_gap", "runtime.aten.bench_state"]


def _run_without(tool: str, hidden: str, args: list[str]) -> subprocess.CompletedProcess:
    code = (f"import runpy, sys; sys.modules[{hidden!r}] = None; sys.argv = [{tool!r}, *{args!r}]; "
            f"runpy.run_module({tool!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("tool", TORCH_TOOLS)
def test_a_torch_tool_without_torch_says_what_to_install_in_one_line(tool):
    r = _run_without(tool, "torch", [])
    assert r.returncode == 2, r.stderr[-600:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs torch" in lines[0] and "pip install" in lines[0], r.stderr[-600:]
    assert "Traceback" not in r.stderr


def test_the_sweep_imported_without_torch_still_raises():
    """Imported (not run as a command), the sweep's missing torch is the importer's ImportError, not an exit."""
    code = "import sys; sys.modules['torch'] = None\ntry:\n    import runtime.aten.sweep\nexcept ImportError:\n    print('raised')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "raised", r.stderr[-600:]


@pytest.mark.parametrize("name,found", [("torch", True), ("torch.fx", True), ("transformers", True),
                                         ("onnx", True), ("matplotlib", True), ("memplan", False),
                                         ("json", False), (None, False)])
def test_only_an_optional_package_counts_as_a_missing_extra(name, found):
    """A missing module of memplan's own (or of the standard library) is a bug: it still raises."""
    exc = ModuleNotFoundError("x", name=name)
    assert (_missing_extra(exc) is not None) is found
