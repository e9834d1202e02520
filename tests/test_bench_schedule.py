"""``memplan bench schedule``: serial, qkv-only and graph_optimize rows on Llama decode; the budgeted
schedule keeps its arena within 1.05x of serial and beats the qkv-only baseline."""

from __future__ import annotations

import argparse

from memplan.benchmarks import schedule as bench


def test_schedule_benchmark_rows(capsys):
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    rows = bench.run(p.parse_args(["--layers", "2", "--quick"]))
    assert "graph_optimize@1.05x" in capsys.readouterr().out
    by = {(r["graph"], r["method"]): r for r in rows}
    for g in ("llama-L2-b1", "llama-L2-b32"):
        assert by[(g, "serial")]["speedup"] == 1.0 and by[(g, "serial")]["events"] == 0
        assert by[(g, "graph_optimize@1.05x")]["arena_vs_serial"] <= 1.05
        assert by[(g, "graph_optimize@1.05x")]["speedup"] > by[(g, "qkv-only")]["speedup"] > 1.0
