"""The runtime's command-line entry points (``python -m runtime.bench``, ``runtime.tools.*``, ``runtime.aten.*``,
``runtime.torch_peer``), table-driven: ``--help`` needs no GPU; a bad argument (unknown option, wrong type,
zero, negative, huge, an empty list, an unknown name, an ``--out`` that cannot be written) is one line on stderr
and exit 2, with no traceback and no file written; a run that needs a GPU and finds none says so in one line,
exit 2, and writes nothing.

Run in-process (``cli_contract.run_tool``), each in an empty working directory so that a default ``--out``
written by mistake is seen. The GPU stack is hidden from every test (pycuda unimportable, torch seeing no CUDA
device), so that on a GPU machine too a check that let a bad value through fails here instead of starting a run.
One subprocess runs every module as ``__main__`` to show that its exit status reaches the shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_contract import assert_tool_refused, exit_code, run_tool
from needs import need

#: every module with a command line (``grep -rln __main__ runtime``)
TOOLS = ("runtime.bench", "runtime.bench_multi_gpu", "runtime.torch_peer", "runtime.tools.attn_tune",
         "runtime.tools.attn_bench", "runtime.tools.pdl_check", "runtime.tools.bound", "runtime.tools.gemm_bench",
         "runtime.tools.profile", "runtime.tools.compare_launches", "runtime.tools.rule_ab", "runtime.aten.bench",
         "runtime.aten.bench_scatter", "runtime.aten.bench_reads", "runtime.aten.bench_compile", "runtime.aten.sweep", "runtime.aten.profile_gap",
         "runtime.aten.sweep_paths", "runtime.aten.bench_state")

ROOT = Path(__file__).resolve().parent.parent

#: the tools that run PyTorch (the ``torch`` extra): past parsing (and ``runtime.aten.sweep`` at import) they need it
TORCH_TOOLS = frozenset(t for t in TOOLS if t.startswith("runtime.aten.") or t == "runtime.torch_peer")


def _torch_for(tool: str) -> None:
    """Skip (fail under CI) a check of a PyTorch tool where torch is not installed; the others run without it."""
    if tool in TORCH_TOOLS:
        need("torch")


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch, tmp_path):
    """No pycuda, no CUDA device for torch, and an empty working directory. Without torch (no ``torch`` extra)
    there is no torch CUDA to hide, and every tool must still parse and refuse as here: not a skip."""
    for name in ("pycuda", "pycuda.driver", "pycuda.autoprimaryctx"):
        monkeypatch.setitem(sys.modules, name, None)   # import raises ImportError
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_entry_point_is_listed():
    """A new ``__main__`` under runtime/ joins this table (and so these checks)."""
    found = set()
    for path in (ROOT / "runtime").rglob("*.py"):
        if "__main__" in path.read_text():
            found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert found == set(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_help_needs_no_gpu(capsys, tool, no_gpu):
    import importlib

    _torch_for(tool)

    assert exit_code(importlib.import_module(tool).main, ["--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: python -m " + tool) and err == "", (out, err)
    assert os.listdir(no_gpu) == []


HUGE = "9" * 30

#: (tool, argv, words the one error line holds)
BAD = [
    *[(t, ["--bogus"], ["unrecognized arguments: --bogus"]) for t in TOOLS],
    # runtime.torch_peer: plain argparse (usage lines), type=int; --batch 0 / an unknown config were tracebacks
    ("runtime.torch_peer", ["--batch", "0"], ["--batch", "0 is not at least 1"]),
    ("runtime.torch_peer", ["--steps", "-1"], ["--steps", "-1 is not in 1.."]),
    ("runtime.torch_peer", ["--rounds", "\uff15"], ["--rounds", "not an integer"]),
    ("runtime.torch_peer", ["--batch", HUGE], ["--batch", "below 2**63"]),
    ("runtime.torch_peer", ["--batch", "100000000000"], ["batch 100000000000", "absurd"]),
    ("runtime.torch_peer", ["--config", "nosuch"], ["--config 'nosuch'", "unknown config"]),
    ("runtime.torch_peer", ["--config", "8b,1b"], ["--config '8b,1b'", "one config, not a list"]),
    ("runtime.torch_peer", ["--config", ""], ["--config ''", "empty value"]),
    # runtime.aten.bench_scatter: --scatters 0 and --reps 0 divided by zero, --big-mib -1 and 10**22 were torch
    # tracebacks, --scatters 10**22 looped for ever
    ("runtime.aten.bench_scatter", ["--scatters", "0"], ["--scatters", "0 is not in 1..1024"]),
    ("runtime.aten.bench_scatter", ["--scatters", HUGE], ["--scatters", "below 2**63"]),
    ("runtime.aten.bench_scatter", ["--scatters", "100000"], ["--scatters", "not in 1..1024"]),
    ("runtime.aten.bench_scatter", ["--reps", "0"], ["--reps", "0 is not in"]),
    ("runtime.aten.bench_scatter", ["--big-mib", "-1"], ["--big-mib", "-1 is not in 0.."]),
    ("runtime.aten.bench_scatter", ["--big-mib", "10000000"], ["--big-mib", "is not in 0.."]),
    ("runtime.aten.bench_scatter", ["--streams", "0"], ["--streams", "0 is not in 1..1024"]),
    ("runtime.aten.bench_scatter", ["--streams", "nan"], ["--streams", "not an integer"]),
    # runtime.aten.profile_gap: an unknown model and --iters 0 were tracebacks
    ("runtime.aten.profile_gap", ["nosuch"], ["model 'nosuch'", "unknown model"]),
    ("runtime.aten.profile_gap", ["googlenet-b1,googlenet-b8"], ["one model, not a list"]),
    ("runtime.aten.profile_gap", ["--iters", "0"], ["--iters", "0 is not in 1.."]),
    ("runtime.aten.profile_gap", ["--top", "-3"], ["--top", "-3 is not at least 1"]),
    ("runtime.aten.profile_gap", ["a", "b"], ["unrecognized arguments: b"]),
    # runtime.tools.compare_launches (runs on the CPU): memplan's refusals were tracebacks, exit 1
    ("runtime.tools.compare_launches", ["--config", "tiny", "--layers", "5000"], ["--layers 5000", "at most 1024"]),
    ("runtime.tools.compare_launches", ["--config", "tiny", "--vocab", "10" * 8], ["--vocab", "absurd"]),
    ("runtime.tools.compare_launches", ["--config", "tiny", "--batches", "100000000000"], ["batch 100000000000"]),
    ("runtime.tools.compare_launches", ["--devices", "100000"], ["--devices 100000", "at most 1024"]),
    ("runtime.tools.compare_launches", ["--streams", "5000"], ["--streams '5000'", "1..1024"]),
    ("runtime.tools.compare_launches", ["--config", "8b,1b"], ["--config '8b,1b'", "one config, not a list"]),
    ("runtime.tools.compare_launches", ["--config", "tiny", "--batches", "1", "--fuse", "norms", "--devices", "500"],
     ["devices=500 is more than graph"]),
    # the pycuda tools: a batch or --layers memplan refuses was a traceback after the kernels compiled
    ("runtime.bench", ["--batches", "1,100000000000"], ["batch 100000000000", "absurd"]),
    ("runtime.bench_multi_gpu", ["--batches", "100000000000"], ["batch 100000000000", "absurd"]),
    ("runtime.bench_multi_gpu", ["--devices", "5000"], ["--devices 5000", "at most 1024"]),
    ("runtime.tools.bound", ["--batches", "100000000000"], ["batch 100000000000"]),
    ("runtime.tools.profile", ["--batch", "100000000000"], ["batch 100000000000"]),
    ("runtime.tools.rule_ab", ["--batches", "100000000000"], ["batch 100000000000"]),
    ("runtime.tools.pdl_check", ["--layers", "5000"], ["--layers 5000", "at most 1024"]),
    # what held before, kept: types, ranges, lists, names, --out
    ("runtime.bench", ["--steps", "0"], ["--steps 0", "at least 1"]),
    ("runtime.bench", ["--rounds", HUGE], ["--rounds", "below 2**63"]),
    ("runtime.bench", ["--timed-ms", "nan"], ["--timed-ms"]),
    ("runtime.bench", ["--batches", ""], ["--batches ''", "empty value"]),
    ("runtime.bench", ["--configs", "1b,1b"], ["repeated value '1b'"]),
    ("runtime.bench", ["--fuse", "nosuch"], ["unknown mode 'nosuch'"]),
    ("runtime.tools.attn_bench", ["--batches", "-1"], ["--batches '-1'"]),
    ("runtime.tools.attn_tune", ["--variants", "nosuch"], ["unknown variant 'nosuch'"]),
    ("runtime.tools.gemm_bench", ["--rows", "65"], ["--rows '65'", "1..64"]),
    ("runtime.tools.rule_ab", ["--variant", "v:NOPE=1"], ["--variant v", "'NOPE'"]),
    ("runtime.aten.bench", ["--stop-after", "nan"], ["--stop-after"]),
    ("runtime.aten.bench", ["--stop-after", "-1"], ["--stop-after -1"]),
    ("runtime.aten.sweep", ["--budget", "0"], ["--budget"]),
    ("runtime.aten.sweep", ["--device", "xpu"], ["--device"]),
    # runtime.aten.bench / sweep: a repeated model ran twice; '１' and '1_0' were read as numbers
    ("runtime.aten.bench", ["--models", "googlenet-b1,googlenet-b1"], ["repeated value 'googlenet-b1'"]),
    ("runtime.aten.bench", ["--models", "googlenet-b1,"], ["empty value"]),
    ("runtime.aten.bench", ["--compile", "none,googlenet-b1"], ["'none' stands alone"]),
    ("runtime.aten.bench", ["--stop-after", "\uff11"], ["--stop-after", "not a number"]),
    ("runtime.aten.sweep", ["--budget", "\uff11"], ["--budget", "is not a number of seconds"]),
    ("runtime.aten.sweep", ["--budget", "1_0"], ["--budget", "is not a number of seconds"]),
]

#: every tool with an --out: a directory, a missing directory, a path ending in a slash
OUT_TOOLS = ("runtime.bench", "runtime.bench_multi_gpu", "runtime.tools.attn_tune", "runtime.tools.attn_bench",
             "runtime.tools.bound", "runtime.tools.gemm_bench", "runtime.tools.profile", "runtime.tools.rule_ab",
             "runtime.aten.bench")
BAD += [(t, ["--out", out], words) for t in OUT_TOOLS for out, words in (
    (".", ["--out .", "is a directory"]), ("no/x.json", ["--out no/x.json", "no directory"]),
    ("x.json/", ["--out x.json/", "may not end with a slash"]),
    ("-", ["--out -", "give a file name"]))]   # (the JSON came out between the progress lines, once per row)
BAD += [("runtime.aten.sweep", ["--device", "cpu", "--out", "-"], ["--out -", "give a file name"])]


@pytest.mark.parametrize("tool,argv,words", BAD, ids=[f"{t.split('.')[-1]}:{' '.join(a)[:40]}" for t, a, _ in BAD])
def test_a_bad_argument_is_one_line_and_exit_2(capsys, no_gpu, tool, argv, words):
    _torch_for(tool)
    assert_tool_refused(*run_tool(capsys, tool, argv), *words)
    assert os.listdir(no_gpu) == []


#: (tool, argv): a run that needs the GPU, as given (defaults), on a machine without one
NO_GPU = [("runtime.bench", []), ("runtime.bench_multi_gpu", []), ("runtime.tools.attn_tune", []),
          ("runtime.tools.attn_bench", []), ("runtime.tools.pdl_check", []), ("runtime.tools.bound", ["--out", "b.json"]),
          ("runtime.tools.gemm_bench", []), ("runtime.tools.profile", []), ("runtime.tools.rule_ab", ["--out", "r.json"]),
          ("runtime.torch_peer", []), ("runtime.torch_peer", ["--read-bandwidth-only"]), ("runtime.aten.bench", []),
          ("runtime.aten.sweep", ["--out", "s.json"]), ("runtime.aten.profile_gap", [])]


@pytest.mark.parametrize("tool,argv", NO_GPU)
def test_no_gpu_is_one_line_exit_2_and_no_file(capsys, no_gpu, tool, argv):
    """torch_peer and profile_gap ran into torch's "Found no NVIDIA driver" traceback (after building the model),
    aten.bench's line had no tool name."""
    _torch_for(tool)
    code, err = run_tool(capsys, tool, argv)
    assert_tool_refused(code, err)
    assert ": error: " in err and any(w in err for w in ("GPU", "CUDA device")), err
    assert os.listdir(no_gpu) == []


def test_tool_arg_helpers():
    import argparse

    from runtime.tool_args import ToolArgError, at_most, count_in, llama_graphs, one_name

    assert count_in(1)("7") == 7 and count_in(0, 3)("0") == 0
    for text, why in (("0", "at least 1"), ("-2", "at least 1"), ("x", "not an integer"), (HUGE, r"2\*\*63")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            count_in(1)(text)
    with pytest.raises(argparse.ArgumentTypeError, match="4 is not in 1..3"):
        count_in(1, 3)("4")
    assert one_name("8b", "--config") == "8b"
    with pytest.raises(ToolArgError, match="one config, not a list"):
        one_name("8b,8b", "--config")
    at_most(3, "--devices", 3)
    with pytest.raises(ToolArgError, match="--devices 4: expected at most 3"):
        at_most(4, "--devices", 3)
    llama_graphs(["tiny"], [1, 64], ("norms", "runtime"), layers=3)   # what runs is let through
    with pytest.raises(ToolArgError, match="config tiny at batch 1 --layers 2000: .*at most 1024"):
        llama_graphs(["tiny"], [1], layers=2000)


def test_the_exit_status_reaches_the_shell(no_gpu):
    """Each module run as ``__main__`` (``python -m``): its ``main``'s status is the process's, for a bad
    option (2) and for ``--help`` (0); one subprocess for all of them (the PyTorch tools only where torch is)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            need("torch")   # (fails: CI installs the torch extra)
        tools = [t for t in TOOLS if t not in TORCH_TOOLS]
    else:
        tools = list(TOOLS)
    script = (
        "import json, runpy, sys, io, contextlib\n"
        "sys.modules['pycuda'] = None\n"
        "codes = {}\n"
        f"for tool in {tools!r}:\n"
        "    for arg in ('--bogus', '--help'):\n"
        "        sys.argv = [tool, arg]\n"
        "        sys.modules.pop(tool, None)   # (imported by another tool: runpy would warn on stderr)\n"
        "        err = io.StringIO()\n"
        "        try:\n"
        "            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
        "                runpy.run_module(tool, run_name='__main__', alter_sys=True)\n"
        "            codes[tool + arg] = 'returned'\n"
        "        except SystemExit as exc:\n"
        "            codes[tool + arg] = [exc.code, err.getvalue().count(chr(10))]\n"
        "print(json.dumps(codes))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=no_gpu, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    codes = json.loads(p.stdout.strip().splitlines()[-1])
    assert codes == {t + a: [2, 1] if a == "--bogus" else [0, 0] for t in tools for a in ("--bogus", "--help")}
