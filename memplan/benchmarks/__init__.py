"""Benchmarks behind ``memplan bench``: each suite is a module with ``run(args) -> list[dict]``.

Suites are imported lazily by name, so a suite's extra needs (ortools for cpsat) cost nothing
until it runs. Performance is measured here, never by timed unit tests.
"""

from __future__ import annotations

#: suite name -> module (relative to memplan.benchmarks) defining ``add_arguments(parser)`` and ``run(args)``
#: (and, for a suite that reads files, ``inputs(args)``: label -> path, which ``--json`` may not name)
SUITES = {
    "planners": "planners",   # issue 5: planners vs lower bound on minimalloc CSVs, examples, generated graphs
    "schedule": "schedule",   # issue 4: graph_optimize speedups, streams, events, arenas vs baselines
    "scale": "scale",         # issue 3: plan time and peak memory on 100k-node / 1M-tensor graphs
    "devices": "devices",     # issue 8: pipeline splits over 2/4 GPUs: per-device arenas, balance, copy bytes
}
