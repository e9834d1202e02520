"""``runtime.aten.bench``'s derived figures and table: torch's CUDA graph timed before and after memplan ran.

Why: once kernels have run on a second stream, a CUDA graph captured earlier replays with longer gaps between
its kernels (Inception-v3 b1 on an H200: torch's own graph 1.840 -> 2.075 ms, docs/aten.md). The bench's only
eager-graph reading was taken before memplan's private streams ran, every memplan reading after: the
"1s vs eager graph" ratio compared two process states. These CPU tests pin the second reading's arithmetic and
its place in the table (no torch needed: the functions take plain dicts).
"""

from __future__ import annotations

from runtime.aten import bench


def _rec(after: float | None) -> dict:
    rec = {"model": "m", "eager_ms": 10.0, "eager_graph_ms": 1.8,
           "memplan_1": {"ms": 2.0, "arena_bytes": 1 << 20, "streams": 1, "copies_per_call": 3},
           "memplan_auto": {"ms": 1.25, "arena_bytes": 1 << 20, "streams": 3},
           "memplan_budget": {"ms": 1.3, "arena_bytes": 1 << 20, "streams": 3}}
    if after is not None:
        rec["eager_graph_after_ms"] = after
    return rec


def test_derive_compares_with_both_eager_graph_readings():
    rec = _rec(2.1)
    bench._derive(rec)
    assert rec["memplan_1"]["speedup_vs_eager_graph"] == 0.9          # 1.8 / 2.0: the state before memplan ran
    assert rec["memplan_1"]["speedup_vs_eager_graph_after"] == 1.05   # 2.1 / 2.0: the same state as memplan's
    assert rec["memplan_auto"]["speedup_vs_eager_graph_after"] == 1.68


def test_derive_without_a_second_reading_adds_no_ratio():
    rec = _rec(None)   # the CPU bench, or an eager graph that failed to capture
    bench._derive(rec)
    assert "speedup_vs_eager_graph_after" not in rec["memplan_1"]
    assert rec["memplan_1"]["speedup_vs_eager_graph"] == 0.9


def test_table_shows_before_and_after():
    rec = _rec(2.1)
    bench._derive(rec)
    header, rule, row = bench.table([rec]).splitlines()
    cols = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cols) == len(cells) == rule.count("---")
    by = dict(zip(cols, cells))
    assert by["eager graph ms (before / after memplan)"] == "1.800 / 2.100"
    assert by["1s vs eager graph (before / after)"] == "0.900x / 1.050x"
    rec2 = _rec(None)
    bench._derive(rec2)
    by2 = dict(zip(cols, (c.strip() for c in bench.table([rec2]).splitlines()[2].strip("|").split("|"))))
    assert by2["eager graph ms (before / after memplan)"] == "1.800 / –"
    assert by2["1s vs eager graph (before / after)"] == "0.900x / –"
