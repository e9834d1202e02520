"""Round 52 fuzz: ``memplan.plan`` end to end on random, unusual and hostile graph documents and options.

Why it exists: each earlier property test covers one step or one option; this one draws whole ``memplan.graph/1``
documents (``fuzz52_gen``: views of views at offsets, zero-size and 2**48-byte tensors, alignments up to 2**40,
in-place pairs, fusion groups, nodes with no inputs or outputs, duplicate reads, roots written through a view
before their producer) with every option of ``plan_graph`` at its edges (every solver with tiny time limits,
``streams`` 1/2/auto/64, ``max_events`` 0/1/1000, ``devices``, ``memory_budget`` feasible and not,
``device_capacity``, ``fused_groups``, ``alignment``, a given schedule with an event dropped or added), and holds
the library to its one promise: a plan that both ``memplan.verify`` and the independent oracle (``tests/oracle.py``)
accept, whose bound lies between the contract's live-at-one-node bound and the brute-force optimum (the arena
equal to that optimum where the solver says OPTIMAL), whose in-place outputs overlap their inputs only exactly (the
planner's promise beyond the contract), and whose JSON is byte-identical on a second run and in other processes
with other hash seeds; or a ``memplan.errors`` exception with a one-line message. Never another exception type.

The loader half mutates valid documents (wrong types, bools for ints, 1.0 / 1e300 / NaN / inf, negative sizes,
duplicate ids, unknown and missing keys, cycles, self-loops, odd unicode) and requires a GraphError or a graph
that round-trips and plans.

CI runs a few seconds of examples; ``FUZZ52_EXAMPLES=2000`` runs a longer local exploration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import oracle
from fuzz52_gen import HOSTILE_VALUES, graph_docs, inplace_docs, mutated_docs, odd_named, plan_options
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import schedules

import memplan
from memplan.errors import MemplanError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("FUZZ52_EXAMPLES", "0"))


def _n(ci: int) -> int:
    """Examples per test: ``ci`` by default (a few seconds on CI's two cores), ``FUZZ52_EXAMPLES`` when set."""
    return EXAMPLES or ci


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with warnings (UnusedOption, FieldWarning: the options are random) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _one_line(exc: MemplanError) -> None:
    """A memplan error the CLI can print as one ``memplan: error: ...`` line that says something."""
    text = str(exc).strip()
    assert text and "\n" not in text, repr(text)


@st.composite
def plan_cases(draw, max_nodes: int = 8, docs=None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(graph document, ``plan_graph`` options), the options sometimes with a given schedule: a random
    topological order on 1..8 streams with the events it needs, one of them dropped or one random event added.
    ``docs``: the documents' strategy (``graph_docs`` by default)."""
    doc = draw(docs if docs is not None else graph_docs(max_nodes=max_nodes))
    opts = draw(plan_options())
    try:
        g = _quiet(memplan.graph_from_dict, doc)
    except MemplanError:
        return doc, opts
    if g.nodes and draw(st.integers(0, 3)) == 0:
        order, stream_of = draw(schedules(g, max_streams=draw(st.sampled_from([1, 2, 3, 8]))))
        made = memplan.schedule_with_events(g, order, stream_of)
        events = list(made.events)
        how = draw(st.sampled_from(["keep", "keep", "drop", "add"]))
        if how == "drop" and events:
            events.pop(draw(st.integers(0, len(events) - 1)))
        elif how == "add":
            events.append(memplan.Event(draw(st.sampled_from(order)), draw(st.sampled_from(order))))
        opts = {k: v for k, v in opts.items() if k != "devices"}
        opts["schedule"] = memplan.Schedule(made.order, made.streams, tuple(events))
    return doc, opts


def check_plan_case(doc: dict[str, Any], opts: dict[str, Any]) -> str | None:
    """The end-to-end property for one case; returns the plan's JSON (None where memplan refused, by name)."""
    opts = dict(opts)
    try:
        g = _quiet(memplan.graph_from_dict, doc)
        if opts.get("memory_budget") == -1:   # a budget just below what the serial plan needs: often feasible
            opts["memory_budget"] = _quiet(memplan.plan, g, solver="greedy").arena_bytes * 3 // 4 + 1
        planned = _quiet(memplan.plan_graph, g, **opts)
    except MemplanError as exc:
        _one_line(exc)
        # the final verify refusing the planner's own plan is a planner bug, not a refusal of the input (a given
        # schedule short of events is the caller's)
        assert not isinstance(exc, memplan.UnsafePlan) or "schedule" in opts, exc
        return None
    fused = opts.get("fused_groups", False)
    memplan.verify(planned.graph, planned.plan, fused_groups=fused)
    text = planned.plan.to_json()
    gd, pd = planned.graph.to_dict(), json.loads(text)
    assert not oracle.findings(gd, pd, fused_groups=fused)
    assert not inexact_inplace(gd, pd, fused), inexact_inplace(gd, pd, fused)
    assert oracle.per_node_bound(gd, pd) <= pd["lower_bound_bytes"] <= pd["arena_bytes"]
    best = oracle.optimal_arena(gd, pd, fused_groups=fused, max_roots=6)
    if best is not None:
        assert pd["lower_bound_bytes"] <= best, (pd["lower_bound_bytes"], best)
        if pd["solver"].get("status") == "OPTIMAL":
            assert pd["arena_bytes"] == best, (pd["arena_bytes"], best)
    if "stopped" not in pd["solver"]:   # (a wall-clock stop is the documented exception to repeatability)
        assert _quiet(memplan.plan_graph, g, **opts).plan.to_json() == text
    return text


def inexact_inplace(gd: dict[str, Any], pd: dict[str, Any], fused: bool) -> list[tuple]:
    """The in-place pairs ``(node, out, in)`` whose roots ``plan`` overlaps by the contract's in-place exception
    (their accesses not ordered otherwise) anywhere but exactly: ``out`` at ``in``'s first byte, no larger than
    it, and the roots sharing no byte outside ``out``. The contract allows any overlap; the planner promises this
    one (CHANGELOG, round 51: a kernel writes an in-place output over its input itself), and the verifier does not
    check it, so only a test can."""
    m = oracle._Model(gd, pd)
    out = []
    for nid, node in m.nodes.items():
        for o, i in (node.get("inplace") or {}).items():
            ro, ri = m.root(o), m.root(i)
            if ro == ri or m.offset.get(ro) is None or m.offset.get(ri) is None:
                continue
            if m.tensor_device.get(ro) != m.tensor_device.get(ri):
                continue
            lo = max(m.offset[ro], m.offset[ri])
            hi = min(m.offset[ro] + m.tensors[ro]["size"], m.offset[ri] + m.tensors[ri]["size"])
            if lo >= hi:
                continue
            ao, ai = m.accesses(ro, fused), m.accesses(ri, fused)
            if all(m.hb(x, y) for x in ao for y in ai) or all(m.hb(y, x) for x in ao for y in ai):
                continue   # apart in time: any overlap is the contract's plain reuse
            at_o, at_i = m.offset[ro] + m.in_root(o), m.offset[ri] + m.in_root(i)
            size_o = m.tensors[o]["size"]
            if not (at_o == at_i and size_o <= m.tensors[i]["size"] and at_o <= lo and hi <= at_o + size_o):
                out.append((nid, o, i, at_o, at_i, (lo, hi)))
    return out


@settings(max_examples=_n(20))
@given(plan_cases(docs=inplace_docs()))
def test_in_place_outputs_overlap_their_inputs_only_exactly(case):
    check_plan_case(*case)


@settings(max_examples=_n(40))
@given(plan_cases())
def test_plan_end_to_end_is_verified_repeatable_or_refused_by_name(case):
    check_plan_case(*case)


@settings(max_examples=_n(10))
@given(plan_cases(max_nodes=20))
def test_plan_end_to_end_on_larger_graphs(case):
    check_plan_case(*case)


@settings(max_examples=_n(20))
@given(plan_cases(docs=odd_named(graph_docs())))
def test_plan_end_to_end_with_odd_names(case):
    """Ids with newlines, bidi overrides, lone surrogates, the split's ``@dev1`` suffix: still one-line errors (each
    message shows ids by ``repr``), verified plans, the same JSON twice."""
    check_plan_case(*case)


def _check_loaded(doc: Any, via_file: bool, tmp: Path) -> None:
    """A mutated document: refused with a one-line GraphError, or a graph that saves, loads back equal and plans."""
    try:
        if via_file:
            try:
                text = json.dumps(doc)   # (NaN and inf written as JSON never allows: the loader refuses them)
            except (TypeError, ValueError):
                return
            path = tmp / "g.json"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            g = _quiet(memplan.load_graph, str(path))
        else:
            g = _quiet(memplan.graph_from_dict, doc)
    except MemplanError as exc:
        assert isinstance(exc, memplan.GraphError), exc
        _one_line(exc)
        return
    assert _quiet(memplan.graph_from_dict, g.to_dict()).to_dict() == g.to_dict()
    memplan.save_graph(g, str(tmp / "saved.json"))
    assert memplan.load_graph(str(tmp / "saved.json")).to_dict() == g.to_dict()
    try:
        made = _quiet(memplan.plan, g, solver="greedy")
    except MemplanError as exc:   # (a graph check passed: only its sizes can make a plan impossible)
        _one_line(exc)
        return
    memplan.verify(g, made)


@settings(max_examples=_n(60))
@given(doc=mutated_docs(), via_file=st.booleans())
def test_loader_refuses_malformed_documents_by_name(doc, via_file, tmp_path_factory):
    _check_loaded(doc, via_file, tmp_path_factory.mktemp("doc"))


def test_hostile_values_include_the_briefs_cases():
    """The mutation values cover what a hostile user writes (a guard against trimming them unnoticed)."""
    have = {repr(v) for v in HOSTILE_VALUES}
    for v in (True, 1.0, 1e300, float("nan"), float("inf"), -1, None, "", [], {}):
        assert repr(v) in have


CHILD = r"""
import hashlib, json, sys, warnings
sys.path.insert(0, sys.argv[2])
import memplan
from test_fuzz_round52 import check_plan_case
out = []
for doc, opts in json.load(open(sys.argv[1])):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = check_plan_case(doc, opts)
    stopped = text is None or '"stopped"' in text   # (a wall-clock stop: the documented exception)
    out.append(None if stopped else hashlib.sha256(text.encode()).hexdigest())
print(json.dumps(out))
"""


def test_plans_repeat_across_processes_with_other_hash_seeds(tmp_path):
    """A sample of random cases (no given schedule: options only, as JSON) planned in two child interpreters with
    different ``PYTHONHASHSEED``: set and dict orders of the string ids differ between them, the plans may not."""
    cases: list[tuple[dict, dict]] = []

    @settings(max_examples=_n(8), database=None)
    @given(graph_docs(hostile=False, max_nodes=12), plan_options())
    def collect(doc, opts):
        cases.append((doc, opts))

    collect()
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    outs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(ROOT / "tests")], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(json.loads(r.stdout))
    assert outs[0] == outs[1]
    assert any(h is not None for h in outs[0])
