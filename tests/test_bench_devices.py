"""``memplan bench devices``: one row per model and device count, balanced, every arena and copy counted."""

from __future__ import annotations

import argparse

from memplan.benchmarks import devices as bench


def test_bench_devices_suite_rows():
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    rows = bench.run(p.parse_args(["--models", "tiny", "--devices", "2", "3"]))
    assert {(r["devices"], r["model"]) for r in rows} >= {(2, "llama-tiny-decode"), (3, "llama-tiny-decode")}
    for r in rows:
        assert r["balance"] >= 1.0 and len(r["device_arena_bytes"]) == r["devices"] and r["copy_bytes"] > 0
