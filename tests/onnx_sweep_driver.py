"""The driver the ONNX differential sweeps share (``onnx_sweep_round65`` to ``onnx_sweep_round69``): compare each case,
print each class's lines and the counts, read the command line, and the exit status.

Why one module: rounds 65-68 each wrote the same ``run`` and ``main`` again (the ``duplicates`` tool paired them), so a
change to how a sweep reports (a class's lines, the summary) had to be made five times. Each sweep keeps its own
cases, classes and ``compare``; ``run`` and ``main`` are a line or two each over this.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable


def run(cases: list, compare: Callable, show: int = 20, out=sys.stdout, count_ops: bool = False) -> Counter:
    """Compare ``cases`` (``compare(case) -> (class, lines)``), print the lines of each class (``show`` at most a
    class) and the counts; return the counts by class. ``count_ops``: also count the distinct ops of the cases
    compared (classes ``agree`` and ``MISMATCH``), as ``counts["ops"]`` and in the summary (round 65's)."""
    counts: Counter = Counter()
    lines: dict[str, list[str]] = {}
    ops: set[str] = set()
    for c in cases:
        kind, ls = compare(c)
        counts[kind] += 1
        lines.setdefault(kind, []).extend(ls)
        if count_ops and kind in ("agree", "MISMATCH"):
            ops.update(n.op_type for n in c.model.graph.node)
    for kind, ls in lines.items():
        for line in ls[:show]:
            print(f"[{kind}] {line}", file=out)
    if count_ops:
        counts["ops"] = len(ops)
        print(f"{len(cases)} cases over {len(ops)} ops compared: "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "ops"), file=out)
    else:
        print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=out)
    return counts


def options(argv: list[str], valued: Iterable[str] = ("--show",)) -> tuple[int, list[str]]:
    """``(show, words)`` of a sweep's command line: ``--show N`` (20 by default) and the words that are neither an
    option nor the value of one of the ``valued`` options (the substrings of the labels to run)."""
    valued = tuple(valued)
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 20
    words = [a for k, a in enumerate(argv) if not a.startswith("--") and (k == 0 or argv[k - 1] not in valued)]
    return show, words


def chosen(cases: Iterable, words: list[str]) -> list:
    """The ``cases`` whose label holds one of ``words`` (all of them where there are none)."""
    cases = list(cases)
    return [c for c in cases if any(w in c.label for w in words)] if words else cases


def status(counts: Counter, failing: Iterable[str]) -> int:
    """The exit status of a sweep: 1 where any case is of a ``failing`` class, else 0."""
    return 1 if any(counts[k] for k in failing) else 0
