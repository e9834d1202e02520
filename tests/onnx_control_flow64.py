"""The control-flow models of ``onnx_agreement63``'s corpus (round 64): those with an If, Loop, Scan or SequenceMap
node (anywhere: in a subgraph or a local function too) that onnxruntime loads, each imported by memplan and its
first line of refusal tabled by op and cause. Not a test: the count ``onnx_refusal_causes63`` gives as "control flow"
(44 in round 63), measured on the models that can have it, in seconds rather than the whole corpus's minutes.

Run: ``python tests/onnx_control_flow64.py [--show N]`` from the repository root (``PYTHONPATH=$PWD``).
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_agreement63 as A  # noqa: E402 - the corpus is the agreement script's
import onnx_refusal_causes63 as C  # noqa: E402 - and so are the causes

CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def _ops(graph):
    for n in graph.node:
        yield n.op_type
        for a in n.attribute:
            if a.HasField("g"):
                yield from _ops(a.g)
            for sub in a.graphs:
                yield from _ops(sub)


def control_flow_ops(model) -> set[str]:
    ops = set(_ops(model.graph))
    for f in model.functions:
        ops.update(_ops(f))
    return ops & CONTROL_FLOW


def main(argv: list[str]) -> int:
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 0
    table: Counter = Counter()
    fixed: Counter = Counter()
    lines: list[str] = []
    for source in (A.backend_models(), C.node_models()):
        for name, model in source:
            ops = control_flow_ops(model)
            if not ops or not A.ort_loads(model)[0]:
                continue
            planned, why = A.memplan_plans(model)
            cause = "planned" if planned else next((c for c, pat in C.CAUSES if re.search(pat, why)), "other")
            table[("/".join(sorted(ops)), cause)] += 1
            lines.append(f"{'PLANNED' if planned else 'refused'} {name}: {why[:200]}")
            values = None if planned else C._test_inputs(name, model)
            if values:   # the test's input values made constants: what the model is once they are known
                fixed[A.memplan_plans(C._frozen(model, values, 0))[0]] += 1
    total = sum(table.values())
    planned = sum(k for (_, c), k in table.items() if c == "planned")
    unsupported = sum(k for (_, c), k in table.items() if c.startswith("control flow (If/Loop/Scan/SequenceMap)"))
    run_time = sum(k for (_, c), k in table.items() if c.startswith("control flow on run-time values"))
    print(f"control-flow models ort loads: {total}; memplan plans {planned}; refused as control flow "
          f"{unsupported + run_time} ({unsupported} as an op not expanded, {run_time} on run-time values)")
    print(f"of those refused, with their inputs fixed to the test's values (initializers): {fixed[True]} planned, "
          f"{fixed[False]} refused")
    for (ops, cause), k in sorted(table.items()):
        print(f"{k:5}  {ops:24} {cause}")
    for line in lines[:show] if show else ():
        print("   ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
