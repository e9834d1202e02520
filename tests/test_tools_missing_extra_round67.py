"""Round 67: a runtime tool run without its optional package ends with one line and exit status 2.

Without the torch extra, ``python -m runtime.aten.bench`` (and every tool that imports torch: the sweep, the peer,
the read and compile benchmarks, profile_gap) ended in a 7-16-line ``ModuleNotFoundError`` traceback. The package
is hidden here by ``sys.modules[name] = None`` (Python then refuses its import), so this runs where torch is
installed (CI) as well; the tools' own parsing and the memplan command are untouched by it.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys

import pytest

from runtime.tool_args import _missing_extra

TORCH_TOOLS = ["runtime.aten.sweep", "runtime.aten.bench", "runtime.torch_peer", "runtime.aten.bench_reads",
               "runtime.aten.bench_compile", "runtime.aten.profile_gap", "runtime.aten.bench_state"]


#: each tool run as ``__main__`` in turn in one fresh interpreter with torch hidden (runtime's modules dropped between
#: tools, so each imports its own afresh), its stderr on the process's own fd 2 (whatever writes there is seen) and its
#: exit status as the interpreter makes it of a ``SystemExit`` or an uncaught exception, each tool's after a marker
_BATCH = """
import os, runpy, sys, traceback
sys.modules["torch"] = None
for tool in TOOLS:
    for m in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        del sys.modules[m]
    sys.argv = [tool]
    try:
        runpy.run_module(tool, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, ("\\0END %s %d\\n" % (tool, code)).encode())
"""


@functools.cache
def _torch_tools_without_torch() -> dict[str, tuple[int, str]]:
    """tool -> (exit status, stderr) of ``python -m tool`` without torch: one subprocess for all of them (each of
    its own was a fresh interpreter importing memplan and runtime again)."""
    r = subprocess.run([sys.executable, "-c", f"TOOLS = {TORCH_TOOLS!r}\n" + _BATCH], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out, err = {}, r.stderr
    for tool in TORCH_TOOLS:
        head, _, err = err.partition(f"\0END {tool} ")
        code, _, err = err.partition("\n")
        out[tool] = int(code), head
    assert err == "" and set(out) == set(TORCH_TOOLS), r.stderr[-2000:]
    return out


@pytest.mark.parametrize("tool", TORCH_TOOLS)
def test_a_torch_tool_without_torch_says_what_to_install_in_one_line(tool):
    returncode, stderr = _torch_tools_without_torch()[tool]
    assert returncode == 2, stderr[-600:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "needs torch" in lines[0] and "pip install" in lines[0], stderr[-600:]
    assert "Traceback" not in stderr


def test_one_interpreter_tells_each_tools_exit_status_and_stderr_apart():
    """The batch's negative control: a tool that exits 0, one whose ``main`` raises, one exiting with a message, and
    one writing to fd 2 itself come back as a fresh ``python -m`` of each would end (status 0, 1 with the
    traceback, 1 with the message, the bytes)."""
    tools = {"ok": "", "boom": "raise KeyError('boom')", "says": "sys.exit('stopped: why')",
             "raw": "os.write(2, b'raw bytes\\n'); sys.exit(2)"}
    fake_runpy = ("import os, sys, types\n"
                  "sys.modules['runpy'] = types.SimpleNamespace(run_module=lambda name, run_name=None: "
                  "exec(CODE[name], {'os': os, 'sys': sys}))\n")
    script = fake_runpy + f"CODE = {tools!r}\nTOOLS = {list(tools)!r}\n" + _BATCH
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\0END ok 0\n" in r.stderr and "\0END says 1\n" in r.stderr and "\0END raw 2\n" in r.stderr, r.stderr
    assert re.search(r"Traceback[^\0]*KeyError: 'boom'\n\0END boom 1\n", r.stderr), r.stderr
    assert "stopped: why\n\0END says 1" in r.stderr and "raw bytes\n\0END raw 2" in r.stderr, r.stderr


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
