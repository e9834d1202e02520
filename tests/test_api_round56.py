"""Round 56 (api): hostile input to the public API and the CLI.

A probe (every ``plan()`` option at NaN, inf, negative, bool, str, huge ints; every CLI command given directories,
empty files, binary junk, symlinks and hard links to an input, an output path naming an input, read-only outputs,
1e400, 10**400, NaN, duplicate keys) found two misbehaviours, both fixed here:

- ``memplan.verify(graph, plan)`` called a plan that names another graph safe (same node and tensor ids), where
  ``simulate``, ``ReuseIndex``, ``runtime.binding.bind`` and ``memplan verify`` itself refuse it as ``PlanMismatch``;
- a graph document with 1,000 distinct misspelt fields gave 1,000 ``FieldWarning``s (1,000 ``memplan: warning:``
  lines in the CLI); now one, naming the first few and the count.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

import memplan
from memplan.errors import FieldWarning, PlanMismatch, UnsafePlan
from memplan.examples import diamond, qkv_attention
from memplan.verify import check

# ---- verify: a plan naming another graph ---------------------------------------------------------------------


def test_verify_refuses_a_plan_that_names_another_graph():
    """``verify(qkv, plan)`` with the plan's ``graph`` field "other" (the same ids: a plan of a graph of the same
    shape) returned None, while ``simulate`` of the same pair raised ``PlanMismatch`` naming both graphs."""
    g = qkv_attention()
    p = dataclasses.replace(memplan.plan(g, streams=2), graph="other")
    with pytest.raises(PlanMismatch, match=r"plan was made for graph 'other', not 'qkv'"):
        memplan.verify(g, p)
    with pytest.raises(PlanMismatch, match=r"plan was made for graph 'other', not 'qkv'"):
        memplan.verify(g, p.to_dict())   # (a dict too, as verify takes one)
    with pytest.raises(PlanMismatch, match=r"plan was made for graph 'other', not 'qkv'"):
        memplan.simulate(g, p)           # (the refusal verify now shares)


def test_verify_of_a_graph_renamed_after_planning_is_refused_as_its_files_are():
    """The graph renamed (the plan still names the old one): ``memplan verify`` refused the pair, Python's verify
    accepted it; both refuse it now, and a ``PlanMismatch`` is an ``UnsafePlan`` (callers catching that still do)."""
    g = diamond()
    p = memplan.plan(g)
    renamed = memplan.graph_from_dict({**g.to_dict(), "name": "diamond2"})
    with pytest.raises(UnsafePlan, match=r"plan was made for graph 'diamond', not 'diamond2'"):
        memplan.verify(renamed, p)


def test_verify_still_accepts_a_plan_without_a_graph_name_and_check_judges_safety_alone():
    """A plan document with no ``graph`` field names no graph: it is judged by the contract's rules as before; and
    ``verify.check`` (the safety findings, which the contract's rules define) is unchanged for a renamed plan."""
    g = diamond()
    p = memplan.plan(g, streams=2)
    doc = p.to_dict()
    del doc["graph"]
    memplan.verify(g, doc)
    memplan.verify(g, p)
    assert check(g, dataclasses.replace(p, graph="renamed")) == []


# ---- a graph document's misspelt fields: one warning ------------------------------------------------------------

def _typo_doc(n: int) -> dict:
    """qkv with ``n`` weights, each with its own misspelling of ``view_of`` (``v<CJK char>ew_of``)."""
    doc = qkv_attention().to_dict()
    for i in range(n):
        doc["tensors"].append({"id": f"w{i}", "size": 8, "kind": "weight", f"v{chr(0x4E00 + i)}ew_of": "x"})
    return doc


def test_a_thousand_misspelt_fields_are_one_warning_naming_the_first_few_and_the_count():
    """1,000 distinct misspelt keys gave 1,000 FieldWarnings; one now, naming the first three and the rest's count."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        memplan.graph_from_dict(_typo_doc(1000), source="g.json")
    texts = [str(w.message) for w in seen if issubclass(w.category, FieldWarning)]
    assert len(texts) == 1, len(texts)
    assert texts[0].startswith("g.json: 1000 fields are not fields of memplan.graph/1: tensor field 'v\u4e00ew_of' "
                               "(did you mean 'view_of'?), tensor field 'v\u4e01ew_of' (did you mean 'view_of'?), "
                               "tensor field 'v\u4e02ew_of' (did you mean 'view_of'?) and 997 more; ignored"), texts[0]


def test_one_misspelt_field_is_warned_about_as_before():
    with pytest.warns(FieldWarning) as rec:
        memplan.graph_from_dict(_typo_doc(1))
    assert [str(w.message) for w in rec if issubclass(w.category, FieldWarning)] == [
        "graph: tensor field 'v\u4e00ew_of' is not a field of memplan.graph/1 (did you mean 'view_of'?); ignored"]


def test_the_cli_says_a_thousand_misspelt_fields_in_one_line(tmp_path, capsys):
    """(In process, ``cli.main``: a subprocess spent a second or more of CI starting memplan again for the same
    lines; tests/test_cli.py keeps the real entry point's tests.)"""
    from memplan.cli import main

    src = tmp_path / "g.json"
    src.write_text(json.dumps(_typo_doc(1000)))
    code = main(["plan", str(src), "-o", str(tmp_path / "p.json"), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"memplan: warning: {src}: 1000 fields are not fields of "), lines
    assert lines[0].endswith(" and 997 more; ignored"), lines[0]


# ---- Plan.offsets() / Plan.stream_of() of a Plan built in code -------------------------------------------------

@pytest.mark.parametrize("field, value, words", [
    ("order", None, r"field 'order' is not a tuple \(NoneType\)"),
    ("order", "ab", r"field 'order' is not a tuple \(str\)"),
    ("order", ("ab",), r"order\[0\] is not a \(node, stream\) tuple"),
    ("order", (("mm_q", "1"),), r"order\[0\] \('mm_q'\): 'stream' is not an integer"),
    ("tensors", 5, r"field 'tensors' is not a tuple \(int\)"),
    ("tensors", (("x", 1.5, 4096),), r"tensors\[0\] \('x'\): 'offset' is not an integer"),
])
def test_offsets_and_stream_of_refuse_a_plan_from_code_with_malformed_entries(field, value, words):
    """``Plan.offsets()`` and ``Plan.stream_of()`` (the README's executor view) of a Plan built in code with a
    malformed ``order`` or ``tensors`` raised a raw TypeError/ValueError (``order=None``: "'NoneType' object is not
    iterable"), or answered with what no plan file holds (``order=("ab",)``: node "a" on stream "b"; an offset 1.5);
    they refuse it as ``to_dict``, ``save`` and ``verify`` do, naming the field."""
    p = dataclasses.replace(memplan.plan(qkv_attention(), streams=2), **{field: value})
    method = p.stream_of if field == "order" else p.offsets
    with pytest.raises(memplan.PlanFormatError, match=words):
        method()


# ---- progress callbacks that cannot take the progress message ----------------------------------------------------

def _no_args() -> None:
    pass


@pytest.mark.parametrize("progress", [_no_args, lambda a, b: None, lambda *, msg: None])
def test_a_progress_callback_that_cannot_take_one_message_is_refused_on_entry(progress):
    """``plan(g, solver="cpsat", time_limit=0.5, progress=lambda: None)`` was taken, and the solve failed at its first
    message (0.1 s into ``random_dag(150)``, or minutes into a large one) with a TypeError from the call; it is
    refused on entry now, as a progress that is no callable is."""
    with pytest.raises(memplan.SolverError, match=r"progress must be a callable taking one message .*cannot be "
                                                 r"called with one argument"):
        memplan.plan(qkv_attention(), solver="cpsat", time_limit=0.5, progress=progress)


@pytest.mark.parametrize("make", [lambda seen: print, lambda seen: seen.append, lambda seen: lambda m: seen.append(m),
                                  lambda seen: lambda *a: seen.append(a[0]), lambda seen: lambda m, x=1: seen.append(m)])
def test_progress_callbacks_that_take_one_message_still_run(make, capsys):
    """Each is called with the solver's messages. (Round 69: this planned ``qkv_attention()``, on which CP-SAT sends no
    message, so nothing checked that the callbacks were called, or called with one message, at all.)"""
    from memplan.benchmarks.scale import random_dag

    seen: list = []
    memplan.plan(random_dag(100, seed=1), solver="cpsat", time_limit=0.5, progress=make(seen))
    said = seen or capsys.readouterr().out.splitlines()
    assert said and all(str(m).startswith("cpsat ") for m in said), said


def test_an_import_progress_that_cannot_take_done_and_total_is_refused_on_entry(tmp_path):
    """``import_onnx(path, progress=f)`` calls ``f(done, total)``; a one-argument ``f`` failed after the model was
    loaded and its shapes inferred; refused on entry now (before the file is read)."""
    pytest.importorskip("onnx")
    from memplan.importers.onnx import import_onnx

    with pytest.raises(memplan.GraphError, match=r"progress must be a callable \(done, total\) .*cannot be called "
                                                 r"with two arguments"):
        import_onnx(str(tmp_path / "none.onnx"), progress=lambda done: None)
