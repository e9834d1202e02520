"""Round 75 (docs75): what README.md and docs/*.md tell a user to type, checked as a user copying it meets it
(CPU, in-process, cheap).

Each test names what the docs said, what the code did, and what holds now. The runnable blocks themselves run in
tests/test_docs_round32.py, the links and inline commands in tests/test_docs74_round74.py; this file adds the
inline Python expressions of the prose that those runners do not evaluate.
"""

from __future__ import annotations

import os
import re

import pytest
from needs import need

import memplan
import memplan.generators
from memplan.cli import main

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


def _relu_model(path: str, leading) -> None:
    """A one-node ONNX model whose input 'x' is ``[leading, 4]`` (None: a dimension with neither value nor name)."""
    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [leading, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_import_help_says_what_batch_fixes(tmp_path, capsys):
    """``memplan import --help`` said --batch fixes "the leading dimension of every graph input that is symbolic",
    while docs/importers.md (and the import) fix an *unknown* ONNX leading dimension too, and take a batch on a
    model of fixed leading dimensions only where it equals one of them. The help says both now, and both hold."""
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    said = re.search(r"--batch N (.*?) --dim", text).group(1)
    assert "symbolic" in said and "unknown" in said and "fixed one" in said, said
    unknown, fixed = str(tmp_path / "unknown.onnx"), str(tmp_path / "fixed.onnx")
    _relu_model(unknown, None)
    _relu_model(fixed, 3)
    assert main(["import", unknown, "-o", str(tmp_path / "u.json"), "--batch", "5", "-q"]) == 0
    assert memplan.load_graph(str(tmp_path / "u.json")).tensors[0].size == 5 * 4 * 4
    assert main(["import", fixed, "-o", str(tmp_path / "f.json"), "--batch", "3", "-q"]) == 0
    capsys.readouterr()
    assert main(["import", fixed, "-o", str(tmp_path / "f5.json"), "--batch", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "fixed leading dimension 3" in err, err


def test_format_doc_names_the_subsets_lower_bound_and_its_limit():
    """Round 75 (plan75) raised `lower_bound_bytes` of small problems to `problem.subset_lower_bound`, serial ones
    too where a node overwrites an input in place, while docs/format.md's "The lower bound" still said a serial plan
    reports the per-node bound and only multi-stream ones more. The page names the bound, its function and its buffer
    limit now, and they are the code's."""
    from memplan import problem

    text = " ".join(read("docs/format.md").split())
    said = re.search(r"A schedule of at most (\d+) buffers \(`memplan\.problem\.SUBSET_BUFFERS`\)", text)
    assert said and int(said.group(1)) == problem.SUBSET_BUFFERS
    assert "`memplan.problem.subset_lower_bound`" in text and "overwrites an input in place" in text
    assert callable(problem.subset_lower_bound)
