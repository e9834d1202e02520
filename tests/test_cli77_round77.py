"""Round 77 (cli77): the ``memplan`` command as a hostile user drives it (CPU, in-process).

Each test names what the command did with an input or option nobody had shown it, and what holds now.
"""

from __future__ import annotations

import pytest

from memplan.cli import main


def test_bench_devices_refuses_more_devices_than_stages_before_planning(monkeypatch, capsys):
    """``memplan bench devices --models tiny --devices 2 40`` printed the table's header and planned the 2-device row,
    then failed at the split over 40 with the library's "devices=40 is more than graph ... can use" (an option spelt as
    no command line writes it); one line naming ``--devices 40`` and the model now, before the header and any plan."""
    from memplan.benchmarks import devices

    def no_plans(*args, **kwargs):
        raise AssertionError("a split was planned before the refusal")

    monkeypatch.setattr(devices, "measure", no_plans)
    assert main(["bench", "devices", "--models", "tiny", "--devices", "2", "40"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("memplan: error: --devices 40: model llama-tiny-decode can be cut into at most 36 ")


def _import_error(tmp_path, capsys, name: str, text: str) -> str:
    model = tmp_path / name
    model.write_text(text)
    assert main(["import", str(model), "-o", str(tmp_path / "out.json")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert not (tmp_path / "out.json").exists()
    return err


def test_import_of_graph_json_under_a_model_name_says_what_it_is(tmp_path, capsys):
    """``memplan import m.onnx -o g.onnx`` writes graph JSON under a model's name, and ``memplan import g.onnx`` then
    said "not a readable ONNX model (at byte 0: field 15 has wire type 3, which no ONNX message uses)" (a ``.pt2``:
    "not a torch.export program (BadZipFile: File is not a zip file)"): protobuf's and zipfile's view of the first
    byte. The line now says the file is JSON text, and which memplan document it is where it says."""
    from needs import need

    import memplan
    from memplan import examples

    graph = tmp_path / "g.json"
    memplan.save_graph(examples.diamond(), str(graph))
    err = _import_error(tmp_path, capsys, "g.pt2", graph.read_text())
    assert "not a torch.export program" in err
    assert "; this is JSON text: a memplan graph (memplan.graph/1, which 'memplan plan' plans as it is), not a model" in err
    plan = memplan.plan(examples.diamond())
    need("onnx")
    err = _import_error(tmp_path, capsys, "p.onnx", plan.to_json())
    assert "not a readable ONNX model" in err and "; this is JSON text: a memplan plan (memplan.plan/1), not a model" in err
    err = _import_error(tmp_path, capsys, "a.onnx", "[1, 2]\n")
    assert "; this is JSON text, not a model (memplan import reads ONNX protobuf files" in err



def test_bench_results_given_for_a_graph_or_plan_are_named(tmp_path, capsys):
    """``memplan plan results.json`` / ``show results.json`` (the rows ``memplan bench ... --json`` wrote, given back for
    a graph or a plan) were "top level must be a JSON object" alone, where a trace, a picture or the other document
    given by mistake is named as what it is; the line now says it is a JSON array of objects such as bench writes."""
    import json

    rows = tmp_path / "results.json"
    rows.write_text(json.dumps([{"corpus": "file", "problem": "g", "arena": 1}, {"corpus": "file", "problem": "h"}]))
    for argv, expected in ((["plan", str(rows), "-o", str(tmp_path / "p.json")], "graph"), (["show", str(rows)], "plan")):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.rstrip("\n").endswith("top level must be a JSON object (this is a JSON array of 2 objects, such as the "
                                         f"results 'memplan bench SUITE --json' writes, where a {expected} is expected)"), err
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["show", str(empty)]) == 2
    assert capsys.readouterr().err.rstrip("\n").endswith("top level must be a JSON object")


def test_json_and_csv_outputs_under_a_picture_or_model_name_are_refused(tmp_path, capsys):
    """``memplan import m.onnx -o m2.onnx`` wrote graph JSON into a file named an ONNX model (exit 0), which onnxruntime
    and ``memplan import`` then refuse as no model; ``plan -o p.png``, ``--graph-out g.pdf``, ``csv -o o.svg`` and
    ``bench --json r.pt2`` wrote JSON or CSV under a picture's or a model's name, where ``trace -o t.png`` was refused
    for that reason (round 33). Each is one line naming the option and what the file would be, before any work, and an
    existing file of that name is left as it was."""
    import memplan
    from memplan import examples

    graph = tmp_path / "g.json"
    memplan.save_graph(examples.diamond(), str(graph))
    problem = tmp_path / "p.csv"
    problem.write_text("id,lower,upper,size\n0,0,2,8\n1,1,3,8\n")
    cases = [
        (["plan", str(graph), "-o", "{out}"], "p.PNG", "-o {out}: a plan is JSON, not a picture"),
        (["plan", str(graph), "-o", str(tmp_path / "q.json"), "--graph-out", "{out}"], "s.pdf",
         "--graph-out {out}: a graph is JSON, not a picture"),
        (["csv", str(problem), "-o", "{out}"], "o.svg", "-o {out}: the offsets are a CSV table, not a picture"),
        (["bench", "planners", "--graph", str(graph), "--solvers", "greedy", "--json", "{out}"], "r.pt2",
         "--json {out}: the results are JSON, not a torch.export program"),
        (["trace", str(graph), str(tmp_path / "q.json"), "-o", "{out}"], "t.onnx",
         "-o {out}: a trace is JSON (open it in ui.perfetto.dev), not an ONNX model"),
        (["import", str(tmp_path / "m.onnx"), "-o", "{out}"], "m2.onnx",
         "-o {out}: memplan import writes graph JSON (memplan.graph/1), not an ONNX model"),
    ]
    for argv, name, says in cases:
        out = tmp_path / name
        out.write_text("old")
        assert main([a.replace("{out}", str(out)) for a in argv]) == 2
        stdout, err = capsys.readouterr()
        assert stdout == "" and err.count("\n") == 1, err
        assert err.startswith("memplan: error: " + says.replace("{out}", str(out))), err
        assert out.read_text() == "old"
    assert main(["plan", str(graph), "-o", str(tmp_path / "p.json"), "-q"]) == 0   # the control: a JSON name


def test_plan_names_devices_and_device_capacity_as_the_flags_given(tmp_path, capsys):
    """``memplan plan G -o P --devices 40 --graph-out S`` on a graph of 36 stages was refused as "devices=40 is more
    than graph ... can use", and ``--device-capacity 1K`` as "... over the device_capacity of 1024 B": the library's
    keywords, where every other refusal of the command names the flag the user typed. Now ``--devices 40`` and
    ``--device-capacity``."""
    import memplan
    from memplan import examples

    graph = tmp_path / "g.json"
    memplan.save_graph(examples.llama(examples.LLAMA_TINY), str(graph))
    base = ["plan", str(graph), "-o", str(tmp_path / "p.json")]
    assert main([*base, "--devices", "40", "--graph-out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memplan: error: --devices 40 is more than graph ") and err.count("\n") == 1, err
    assert main([*base, "--device-capacity", "1K"]) == 2
    err = capsys.readouterr().err
    assert "over --device-capacity 1024 B" in err and "device_capacity" not in err and err.count("\n") == 1, err
    assert main([*base, "--device-capacity", "164328"]) == 2   # (weights fit, the arena does not: planned again)
    err = capsys.readouterr().err
    assert "over --device-capacity 164328 B; planned again with the " in err, err
    assert "as a memory budget: " in err and "_" not in err.partition("graph ")[0], err
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "s.json").exists()


def test_import_fixes_an_onnx_dimension_whose_name_ends_in_a_space(tmp_path, capsys):
    """An ONNX input dimension named ``'n '`` was refused advising "pass --dim n =VALUE", and ``--dim 'n '=3`` (``--dim``
    drops the spaces around NAME, its documented syntax) then said "the model has no symbolic dimension 'n'": such a
    dimension could not be fixed from the command line at all. The advice now names it as ``--dim`` finds it
    (``--dim n=VALUE``, round 77 review77b), and a NAME the model lacks fixes the one dimension that is NAME once its edges' white space is dropped."""
    from needs import need

    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n ", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n ", 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    out = tmp_path / "g.json"
    assert main(["import", str(model), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.rstrip("\n").endswith("is symbolic ('n ') and not fixed: pass --dim n=VALUE or --batch N"), err
    for given in ("n =3", "n=3"):
        assert main(["import", str(model), "-o", str(out), "--dim", given, "-q"]) == 0
        capsys.readouterr()
        assert '"size": 96' in out.read_text()


def test_an_option_after_the_double_dash_is_not_suggested_as_itself(tmp_path, capsys):
    """``memplan plan G -o P -- --streams 2`` (``--`` ends the options, so ``--streams`` is an argument there) said
    "unrecognized arguments: --streams 2 (did you mean --streams?)", suggesting the very option given; it now says the
    option comes after '--' and to give it before."""
    import memplan
    from memplan import examples

    graph = tmp_path / "g.json"
    memplan.save_graph(examples.diamond(), str(graph))
    with pytest.raises(SystemExit) as info:
        main(["plan", str(graph), "-o", str(tmp_path / "p.json"), "--", "--streams", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean" not in err, err
    assert "unrecognized arguments: --streams 2 (--streams comes after '--', which ends the options: give it before" in err
    with pytest.raises(SystemExit):   # (a required option after '--': "the following arguments are required" alone)
        main(["plan", "--", str(graph), "-o", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert "required: -o/--output; -o comes after '--', which ends the options: give it before the '--'" in err, err
    with pytest.raises(SystemExit):
        main(["plan", str(graph), "-o", str(tmp_path / "p.json"), "--event_us", "3"])
    assert "(did you mean --event-us?)" in capsys.readouterr().err   # (a near option is still named)
    assert not (tmp_path / "p.json").exists()
