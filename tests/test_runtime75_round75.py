"""Round 75 (runtime75): the GPU runtimes' CPU-side front doors, with hostile plans and options. CPU only."""

from __future__ import annotations

import importlib

import pytest

TOOLS_WITH_OUT = ["runtime.bench", "runtime.bench_multi_gpu", "runtime.tools.attn_bench", "runtime.tools.attn_tune",
                  "runtime.tools.bound", "runtime.tools.gemm_bench", "runtime.tools.profile", "runtime.tools.rule_ab"]


@pytest.mark.parametrize("tool", TOOLS_WITH_OUT)
def test_an_empty_out_is_refused_before_the_run(tool, capsys):
    """``--out ''`` passed the pre-run check (taken as no ``--out``): the tools with a default file ran on the GPU
    and ended in a MemplanError traceback from the final write (results lost); bound and rule_ab, whose ``--out``
    is optional, skipped the write silently."""
    main = importlib.import_module(tool).main
    assert main(["--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out ''" in err and "empty path" in err and "Traceback" not in err, err


def test_an_installed_package_whose_import_fails_is_not_called_missing(capsys, monkeypatch):
    """A tool whose import of an installed optional package failed inside it (a submodule missing, a version
    mismatch: ``ModuleNotFoundError`` of 'torch._gone') said "needs torch, which is not installed here: pip
    install ...", which is false and advises the install already there; a package that is absent still says so.
    numpy stands in for the optional package: it is installed wherever these tests run, torch may not be."""
    import runtime.tool_args as ta

    monkeypatch.setitem(ta._EXTRAS, "numpy", "pip install numpy")

    def main(_argv):
        raise ModuleNotFoundError("No module named 'numpy._gone'", name="numpy._gone")

    assert ta.run_main(main, "tool", []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "installed but failed to import" in err and "numpy._gone" in err, err
    assert "not installed" not in err, err


def test_an_absent_package_is_still_called_missing(capsys, monkeypatch):
    import sys

    from runtime.tool_args import run_main

    monkeypatch.setitem(sys.modules, "pycuda", None)

    def main(_argv):
        raise ModuleNotFoundError("No module named 'pycuda'", name="pycuda")

    assert run_main(main, "tool", []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs pycuda, which is not installed here" in err, err


def _strict_json(text: str):
    """json.loads as a strict reader (jq, JSON.parse) takes it: NaN and Infinity are no JSON."""
    import json

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_results_json_writes_non_finite_numbers_as_null_and_the_rest_as_before():
    """The tools' results held ``Infinity`` (``logits_rel_diff_vs_*`` where a mode's logits were not finite) and
    ``NaN`` as Python writes them: the file was no JSON for jq or a browser, exactly in the run that went wrong."""
    import json

    from runtime.tool_args import results_json

    doc = {"a": float("inf"), "b": [1.5, float("nan"), (2, -float("inf"))], "c": {"d": 0.25, "e": True, "f": None}}
    assert _strict_json(results_json(doc, indent=1)) == {"a": None, "b": [1.5, None, [2, None]],
                                                         "c": {"d": 0.25, "e": True, "f": None}}
    finite = {"x": [1, 2.5, {"y": "z"}], "w": False}   # (finite results: the same bytes as before)
    assert results_json(finite, indent=1) == json.dumps(finite, indent=1)
    assert results_json(finite) == json.dumps(finite)


def test_compare_launches_prints_strict_json_when_an_output_is_nan(monkeypatch, capsys):
    import numpy as np

    import runtime.emulate
    from runtime.tools import compare_launches

    def nan_logits(graph, plan, weights, inputs, **kw):
        return {"logits": np.array([np.nan, 1.0], np.float32)}, None, {}

    monkeypatch.setattr(runtime.emulate, "emulate", nan_logits)
    assert compare_launches.main(["--config", "tiny", "--batches", "1", "--layers", "1", "--fuse", "runtime",
                                  "--emulate"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert lines
    for ln in lines:
        row = _strict_json(ln)
        assert row["emulated"]["logits"]["max_abs_diff"] is None and row["emulated"]["logits"]["finite"] is False


def test_aten_bench_refuses_compile_on_the_cpu_instead_of_ignoring_it(tmp_path, capsys):
    """``--device cpu --compile llama-1b-decode`` ran the model and compiled nothing, without a word (the bench
    compiles on CUDA only); ``--compile none`` and no ``--compile`` stay as they were."""
    pytest.importorskip("torch")
    from runtime.aten import bench

    out = tmp_path / "r.json"
    assert bench.main(["--device", "cpu", "--quick", "--models", "llama-1b-decode", "--compile", "llama-1b-decode",
                       "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--compile 'llama-1b-decode' with --device cpu" in err, err
    assert not out.exists()


def _pycuda_without_bindings(monkeypatch) -> None:
    """A pycuda that sees one device, and no cuda.bindings (the ``cuda`` extra alone)."""
    import sys
    import types

    drv = types.ModuleType("pycuda.driver")
    drv.init = lambda: None
    drv.Device = types.SimpleNamespace(count=lambda: 1)
    pkg = types.ModuleType("pycuda")
    pkg.driver = drv
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
    for name in ("cuda", "cuda.bindings", "cuda.bindings.driver"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("tool", TOOLS_WITH_OUT)
def test_tools_without_cuda_bindings_say_so_before_running(tool, monkeypatch, tmp_path, capsys):
    """Every tool times CUDA graphs, which go through cuda.bindings: with pycuda alone the checks passed, the
    kernels compiled and the bandwidths were measured, then the first capture raised GpuStackMissing as a
    traceback (run_main let an ImportError without a package name through)."""
    _pycuda_without_bindings(monkeypatch)
    main = importlib.import_module(tool).main
    assert main(["--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cuda.bindings for CUDA graphs" in err and "Traceback" not in err, err


def test_run_main_names_a_missing_graph_stack_in_one_line(capsys):
    from runtime.cuda_util import GpuStackMissing
    from runtime.tool_args import run_main

    def main(_argv):
        raise GpuStackMissing("capturing a CUDA graph needs cuda.bindings for CUDA graphs (pip install -e "
                              "'.[graphs]'): No module named 'cuda'")

    assert run_main(main, "tool", []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "capturing a CUDA graph needs cuda.bindings" in err, err
