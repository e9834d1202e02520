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
