"""Round 49: the ``memplan`` command against hostile input, subcommand by subcommand.

``show PLAN --graph GRAPH`` checks the plan against its graph before it summarises it; warnings come from one source
(the library's, rendered in the command's words) and each is one stderr line; and every file argument, option and
output path a user can get wrong is one error line, exit 2, no traceback and no file written. ``main`` runs
in-process (``cli_contract.run_captured``); every output goes into a fresh ``mkdtemp`` folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest
from cli_contract import assert_bad_input, run_captured

import memplan
from memplan.examples import chain, qkv_attention
from memplan.io import save_graph

_run = run_captured


@pytest.fixture()
def d():
    """A fresh mkdtemp folder with ``g.json`` (a Q/K/V graph), its 3-stream plan ``p.json`` and another graph
    ``other.json`` (a chain); removed after the test."""
    folder = tempfile.mkdtemp(prefix="memplan-cli49-")
    save_graph(qkv_attention(), os.path.join(folder, "g.json"))
    save_graph(chain(4), os.path.join(folder, "other.json"))
    assert _run("plan", os.path.join(folder, "g.json"), "-o", os.path.join(folder, "p.json"), "--streams", "3",
                "-q")[0] == 0
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _p(folder: str, name: str) -> str:
    return os.path.join(folder, name)


# ---- show PLAN --graph GRAPH ---------------------------------------------------------------------------------

def test_show_with_its_graph_is_the_summary_and_a_verified_line(d) -> None:
    code, plain, err = _run("show", _p(d, "p.json"))
    assert code == 0, err
    code, out, err = _run("show", _p(d, "p.json"), "--graph", _p(d, "g.json"))
    assert code == 0 and err == "", err
    assert out == plain + f"verified     safe for {_p(d, 'g.json')}\n"


def test_show_with_another_graph_is_refused_naming_the_mismatch(d) -> None:
    code, out, err = _run("show", _p(d, "p.json"), "--graph", _p(d, "other.json"))
    assert_bad_input(code, err, "p.json", "wrong graph")
    assert out == ""


def test_show_of_an_unsafe_plan_with_its_graph_is_refused_naming_the_rule(d) -> None:
    doc = json.load(open(_p(d, "p.json")))
    placed = [t for t in doc["tensors"] if t["offset"] is not None]
    for t in placed:   # every arena tensor at 0: overlaps of tensors live together
        t["offset"] = 0
    with open(_p(d, "bad.json"), "w") as f:
        json.dump(doc, f)
    assert _run("show", _p(d, "bad.json"))[0] == 0   # (alone, a plan cannot be judged)
    code, out, err = _run("show", _p(d, "bad.json"), "--graph", _p(d, "g.json"))
    assert_bad_input(code, err, "bad.json", "unsafe plan", "rule 3")
    assert out == ""


def test_show_of_a_split_plan_needs_its_split_graph(d) -> None:
    code, _out, err = _run("plan", _p(d, "g.json"), "-o", _p(d, "p2.json"), "--devices", "2", "--graph-out",
                           _p(d, "s2.json"), "-q")
    assert code == 0, err
    code, out, err = _run("show", _p(d, "p2.json"), "--graph", _p(d, "s2.json"))
    assert code == 0 and out.endswith(f"verified     safe for {_p(d, 's2.json')}\n"), err
    code, _out, err = _run("show", _p(d, "p2.json"), "--graph", _p(d, "g.json"))
    assert_bad_input(code, err, "split graph", "--graph-out")


@pytest.mark.parametrize(("graph", "said"), [("p.json", "where a graph is expected"), ("missing.json", "no such file"),
                                             (".", "is a directory")])
def test_show_with_a_graph_that_is_no_graph_is_refused(d, graph, said) -> None:
    code, out, err = _run("show", _p(d, "p.json"), "--graph", _p(d, graph))
    assert_bad_input(code, err, f"{_p(d, graph)}: ", said)
    assert out == ""


# ---- warnings: one source, each said once, on stderr --------------------------------------------------------

def _warning_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("memplan: warning: ")]


@pytest.mark.parametrize("split", [False, True])
def test_max_events_with_one_stream_is_the_librarys_warning_in_the_commands_words(d, split) -> None:
    """The command said this warning itself and filtered the library's out by its text; now the library's
    ``UnusedOption`` is the one source, spelt with the command's flags, one line, the plan still written."""
    from memplan.argtypes import flag_spelling
    from memplan.errors import UnusedOption

    extra = ["--devices", "2", "--graph-out", _p(d, "s.json")] if split else []
    code, _out, err = _run("plan", _p(d, "g.json"), "-o", _p(d, "one.json"), "--streams", "1", "--max-events", "3",
                           *extra)
    assert code == 0, err
    with pytest.warns(UnusedOption) as caught:
        memplan.plan(qkv_attention(), streams=1, max_events=3, **({"devices": 2} if split else {}))
    ours = [w.message for w in caught if isinstance(w.message, UnusedOption)]
    assert len(ours) == 1
    assert _warning_lines(err) == [f"memplan: warning: {ours[0].spelled(flag_spelling)}"]
    assert _warning_lines(err)[0].startswith("memplan: warning: --max-events 3 has no effect with --streams 1: ")
    assert "max_events=" not in err and "streams=" not in err


def test_the_library_spells_the_same_warning_as_keywords() -> None:
    from memplan.errors import UnusedOption

    with pytest.warns(UnusedOption) as caught:
        memplan.plan(chain(4), streams=1, max_events=0)
    text = str(caught[0].message)
    assert text.startswith("max_events=0 has no effect with streams=1: ") and "streams='auto'" in text
    assert "--" not in text


def test_a_warning_given_twice_is_one_line() -> None:
    """``argtypes.warning_line`` holds each (category, text) once: a field warned of on each read, or an option
    warned of by two entries, is one line."""
    from memplan.argtypes import warning_line
    from memplan.errors import FieldWarning, UnusedOption

    held: list = []
    for _ in range(2):
        warning_line(FieldWarning("g.json: x"), FieldWarning, "f", 1, held=held)
        warning_line(UnusedOption.of("{max_events} idle", max_events=2), UnusedOption, "f", 1, held=held)
    assert held == [(FieldWarning, "g.json: x"), (UnusedOption, "--max-events 2 idle")]
