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
    # an option the command has no flag for keeps the library's spelling (no made-up --cost-model)
    assert UnusedOption.of("{cost_model} with {streams}", cost_model=None, streams=1).spelled(
        __import__("memplan.argtypes").argtypes.flag_spelling) == "cost_model=None with --streams 1"


# ---- byte counts: whole numbers, never rounded ------------------------------------------------------------

@pytest.mark.parametrize("value", ["10.5", "1e3", "1000.0", '"12"', "-0.0", "1E3"])
def test_a_graph_size_that_is_no_json_integer_is_refused_naming_tensor_and_field(d, value) -> None:
    """CONTRACT.md: ``tensors[].size`` is bytes, an integer >= 0. Written as a fraction, an exponent or a string it
    is refused (library and CLI alike) naming the file, the tensor and the field, never rounded."""
    from memplan.errors import GraphError
    from memplan.io import load_graph

    doc = json.load(open(_p(d, "g.json")))
    tid = doc["tensors"][1]["id"]
    text = json.dumps(doc).replace(json.dumps(doc["tensors"][1])[:-1],
                                   json.dumps(doc["tensors"][1])[:-1].replace(
                                       f'"size": {doc["tensors"][1]["size"]}', f'"size": {value}'), 1)
    assert f'"size": {value}' in text
    with open(_p(d, "h.json"), "w") as f:
        f.write(text)
    with pytest.raises(GraphError, match=f"tensor '{tid}'.*'size'"):
        load_graph(_p(d, "h.json"))
    code, _out, err = _run("plan", _p(d, "h.json"), "-o", _p(d, "h.plan.json"))
    assert_bad_input(code, err, "h.json", repr(tid), "'size'", "not an integer")
    assert not os.path.exists(_p(d, "h.plan.json"))


@pytest.mark.parametrize(("option", "value", "near"), [
    ("--memory-budget", "10000.5", "10000 or 10001"), ("--memory-budget", "0.5", "0 or 1"),
    ("--memory-budget", "1.0001K", "1024 or 1025"), ("--memory-budget", "1e-99999999999999999999", "0 or 1"),
    ("--device-capacity", "1G,0.5", "0 or 1"), ("--device-capacity", "99.9", "99 or 100")])
def test_a_fractional_byte_option_is_refused_not_rounded_down(d, option, value, near) -> None:
    """``--memory-budget 0.5`` was a budget of 0 B, ``--capacity 99.9`` a capacity of 99 B, with nothing said; the
    library refuses a budget of 1.5 outright. Now one error line naming the option, the value and the whole byte
    counts around it; nothing written."""
    extra = ["--devices", "2", "--graph-out", _p(d, "s.json")] if "," in value else []
    code, _out, err = _run("plan", _p(d, "g.json"), "-o", _p(d, "x.json"), option, value, *extra)
    assert_bad_input(code, err, option, repr(value.split(",")[-1]), "not a whole number of bytes", near)
    assert not os.path.exists(_p(d, "x.json"))


def test_csv_capacity_fractional_is_refused_and_whole_decimal_forms_are_taken(d) -> None:
    from memplan.argtypes import size

    with open(_p(d, "c.csv"), "w") as f:
        f.write("id,lower,upper,size\na,0,2,16\nb,1,3,16\n")
    code, _out, err = _run("csv", _p(d, "c.csv"), "-o", _p(d, "o.csv"), "--capacity", "31.5")
    assert_bad_input(code, err, "--capacity", "'31.5'", "31 or 32")
    assert not os.path.exists(_p(d, "o.csv"))
    assert size("1.5K") == 1536 and size("1e3") == 1000 and size("32.0") == 32 and size("0.5K") == 512
    assert size("9007199254740993.0") == 2 ** 53 + 1 and size("0e999") == 0
    code, _out, err = _run("csv", _p(d, "c.csv"), "-o", _p(d, "o.csv"), "--capacity", "32.0", "-q")
    assert code == 0 and err == "", err


# ---- a repeated key names where it is --------------------------------------------------------------------------

@pytest.mark.parametrize(("before", "after", "said"), [
    ('"kind": "input"', '"kind": "input", "attrs": {"s": 1, "s": 2}', "key 's' appears twice in one object at "
                                                                        "['attrs'] of 'x'"),
    ('"kind": "input"', '"kind": "input", "attrs": {"a": [{"b": {"s": 1, "s": 2}}]}', "at ['attrs']['a']['b'] of 'x'"),
    ('"op": "MUL_MAT"', '"op": "MUL_MAT", "attrs": {"k": {"t": 1, "t": 2}}', "key 't' appears twice in one object at "
                                                                           "['attrs']['k'] of 'mm_q'"),
    ('"name"', '"meta": {"a": 1, "a": 2}, "name"', "key 'a' appears twice in one object at ['meta']"),
])
def test_a_key_repeated_inside_a_field_names_the_tensor_or_node_and_the_field(d, before, after, said) -> None:
    """A key repeated in an object without an id of its own (a tensor's ``attrs``) was "key 's' appears twice in one
    object", naming no tensor, node or field (an out-of-range number there named both); now the object around it
    that has an id is named, with the keys down to the repeating object."""
    from memplan.errors import GraphError
    from memplan.io import load_graph

    text = json.dumps(json.load(open(_p(d, "g.json"))))
    assert before in text
    with open(_p(d, "h.json"), "w") as f:
        f.write(text.replace(before, after, 1))
    with pytest.raises(GraphError) as exc:
        load_graph(_p(d, "h.json"))
    assert said in str(exc.value)
    code, _out, err = _run("plan", _p(d, "h.json"), "-o", _p(d, "h.plan.json"))
    assert_bad_input(code, err, said)


@pytest.mark.parametrize(("before", "after", "said"), [
    ('"name": "greedy"', '"name": "greedy", "name": "x"', "key 'name' appears twice in one object at ['solver']"),
    ('"method"', '"method": 1, "method"', "at ['solver']['schedule']"),
    ('"stream": 0', '"stream": 0, "x": {"a": 1, "a": 2}', "key 'a' appears twice in one object at ['x'] of order entry"),
    ('"stream": 0', '"stream": 0, "x": 1e400', "key ['x'] of order entry"),
])
def test_a_repeated_key_or_huge_number_in_a_plan_names_where(d, before, after, said) -> None:
    from memplan.errors import PlanFormatError
    from memplan.io import load_plan

    text = json.dumps(json.load(open(_p(d, "p.json"))))
    assert before in text
    with open(_p(d, "h.json"), "w") as f:
        f.write(text.replace(before, after, 1))
    with pytest.raises(PlanFormatError) as exc:
        load_plan(_p(d, "h.json"))
    assert said in str(exc.value)
    code, out, err = _run("show", _p(d, "h.json"))
    assert_bad_input(code, err, said)
    assert out == ""


# ---- outputs: atomic, never over an input, no privilege bits carried over -------------------------------------

@pytest.mark.parametrize("mode", [0o4755, 0o2775, 0o6711, 0o1644])
def test_a_replaced_output_keeps_its_permission_bits_but_not_setuid_setgid_or_sticky(d, mode) -> None:
    """The new file replacing an output took the old file's whole mode, set-user-ID included: a plan written over
    ``-rwsr-xr-x`` came out set-user-ID and owned by whoever ran memplan. Only the permission bits carry over."""
    for argv, out in ((["plan", _p(d, "g.json"), "-o"], "o.json"), (["trace", _p(d, "g.json"), _p(d, "p.json"), "-o"],
                                                                    "t.json")):
        with open(_p(d, out), "w") as f:
            f.write("old")
        os.chmod(_p(d, out), mode)
        code, _o, err = _run(*argv, _p(d, out), "-q")
        assert code == 0, err
        assert os.stat(_p(d, out)).st_mode & 0o7777 == mode & 0o777
        assert open(_p(d, out)).read() != "old"


@pytest.mark.parametrize("command", ["plan", "csv"])
def test_progress_with_quiet_and_a_heuristic_is_one_warning_line(d, command) -> None:
    """``-q --progress`` with a solver that reports no progress was warned of twice, once for each reason; an option
    without effect is one line, the first reason (the user's own -q)."""
    if command == "plan":
        argv = ["plan", _p(d, "g.json"), "-o", _p(d, "x.json"), "--solver", "greedy"]
    else:
        with open(_p(d, "c.csv"), "w") as f:
            f.write("id,lower,upper,size\na,0,2,16\nb,1,3,16\n")
        argv = ["csv", _p(d, "c.csv"), "-o", _p(d, "x.csv"), "--solver", "greedy"]
    code, _out, err = _run(*argv, "-q", "--progress")
    assert code == 0, err
    assert _warning_lines(err) == ["memplan: warning: --progress has no effect with -q/--quiet: -q drops all progress "
                                   "and summary lines: give one of them; ignored"]


def test_an_output_into_a_directory_without_write_bits_is_refused_for_root_too(d) -> None:
    """A file without a write bit is refused as an output even for root; a folder without one (``chmod a-w``) took a
    plan (``-o ro/p.json``), an example set (a directory made inside it) or ``save_graph`` as root, and failed for
    every other user. Refused alike now, naming the folder, with nothing written."""
    from memplan.errors import MemplanError

    ro = _p(d, "ro")
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    try:
        code, _out, err = _run("plan", _p(d, "g.json"), "-o", os.path.join(ro, "p.json"))
        assert_bad_input(code, err, "-o", "the directory is read-only")
        code, _out, err = _run("plan", _p(d, "g.json"), "-o", _p(d, "ok.json"), "--devices", "2", "--graph-out",
                               os.path.join(ro, "s.json"))
        assert_bad_input(code, err, "--graph-out", "read-only")
        assert not os.path.exists(_p(d, "ok.json"))
        code, out, err = _run("example", "-o", os.path.join(ro, "ex", "more"))
        assert_bad_input(code, err, "cannot create directory", "read-only")
        with pytest.raises(MemplanError, match="read-only"):
            save_graph(chain(4), os.path.join(ro, "g.json"))
        assert os.listdir(ro) == []
    finally:
        os.chmod(ro, 0o755)


@pytest.mark.parametrize("given", [True, False])
def test_workers_where_cpsat_runs_one_thread_is_the_librarys_warning_too(d, given) -> None:
    """``plan(g, solver="cpsat", workers=4, alignment=2**31)`` ran one CP-SAT thread in silence while the command warned
    of ``--workers`` itself: the warning is the library's now, and the command prints it, once, in its flags."""
    from memplan.errors import UnusedOption

    big = 1 << 31
    graph = chain(4)
    if not given:
        doc = json.loads(open(_p(d, "other.json")).read())
        doc["alignment"] = big
        graph = memplan.graph_from_dict(doc)
    kw = {"alignment": big} if given else {}
    with pytest.warns(UnusedOption) as caught:
        memplan.plan(graph, solver="cpsat", time_limit=0.2, workers=4, **kw)
    texts = [str(w.message) for w in caught if isinstance(w.message, UnusedOption)]
    where = f"with alignment={big}" if given else f"on a graph of alignment {big}"
    assert texts == [f"workers=4 has no effect {where}: CP-SAT runs one thread at an alignment above 2**30 B (several "
                     "gave false optima there); ignored"]
    with pytest.warns(UnusedOption):
        memplan.plan_devices(graph, 2, solver="cpsat", options=memplan.solvers.SolveOptions(time_limit=0.2, workers=3),
                             **kw)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnusedOption)
        memplan.plan(chain(4), solver="cpsat", time_limit=0.2, workers=4, alignment=1 << 30)
    with pytest.warns(UnusedOption, match="workers=4 has no effect with solver='greedy'") as caught:
        memplan.plan(graph, solver="greedy", workers=4, **kw)   # (a heuristic: its own warning, round 49b)
    assert len([w for w in caught if "alignment" in str(w.message)]) == 0
