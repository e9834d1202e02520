"""Round 75 (docs75): what README.md and docs/*.md tell a user to type, checked as a user copying it meets it
(CPU, in-process, cheap).

Each test names what the docs said, what the code did, and what holds now. The runnable blocks themselves run in
tests/test_docs_round32.py, the links and inline commands in tests/test_docs74_round74.py; this file adds the
inline Python expressions of the prose that those runners do not evaluate.
"""

from __future__ import annotations

import os
import re

import memplan
import memplan.generators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def test_tutorials_fanout_join_expression_is_a_graph():
    """docs/tutorial.md named the 10,000-node picture's graph `memplan.generators.fanout_join(10000)`, which
    returns ``(graph, schedule)``: a user passing it to ``plan`` or ``draw`` got "plan needs a memplan Graph ...,
    not tuple". The expression the tutorial gives now evaluates to a Graph (built smaller here: same call)."""
    text = " ".join(read("docs/tutorial.md").split())
    found = re.findall(r"`(memplan\.generators\.fanout_join\((\d+)\)[^`]*)`", text)
    assert found, "docs/tutorial.md no longer names the fan-out/join graph it draws"
    for expr, n in found:
        assert int(n) == 10000
        value = eval(expr.replace(f"({n})", "(40)", 1), {"memplan": memplan})  # noqa: S307 - the doc's own text
        assert isinstance(value, memplan.Graph), (expr, type(value))
