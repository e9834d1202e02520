"""Round 38 (hostile, CLI): ``memplan draw`` where matplotlib cannot make its config directory."""

from __future__ import annotations

import pytest
from cli_forks import memplan_cli

import memplan
from memplan.examples import diamond


def _memplan(argv, cwd, **env):
    """``python -m memplan argv`` as its own process (forked from one interpreter that imported memplan, not
    matplotlib: ``cli_forks``), ``env`` set for it."""
    return memplan_cli(argv, cwd=cwd, env=env, text=True)


@pytest.fixture
def no_config_dir(tmp_path):
    """An MPLCONFIGDIR matplotlib cannot make (under a file: even root cannot), as with ``HOME`` read-only or the
    ``nobody`` user's ``/nonexistent``."""
    pytest.importorskip("matplotlib")
    (tmp_path / "file").write_text("")
    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    memplan.save_plan(memplan.plan(diamond()), str(tmp_path / "p.json"))
    return str(tmp_path / "file" / "mpl")


def test_a_failing_draw_is_one_line_where_matplotlib_has_no_config_dir(tmp_path, no_config_dir):
    """matplotlib logged "mkdir -p failed ..." and "Matplotlib created a temporary cache directory ..." on stderr
    as it was imported, before the graph was read: an error in the graph was the third line of stderr."""
    (tmp_path / "bad.json").write_text('{"format": "memplan.graph/1", "name": "bad"}')
    r = _memplan(["draw", "bad.json", "p.json", "-o", "d.png"], tmp_path, MPLCONFIGDIR=no_config_dir)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("memplan: error: bad.json: ")
    assert not (tmp_path / "d.png").exists()


def test_a_quiet_draw_is_quiet_where_matplotlib_has_no_config_dir(tmp_path, no_config_dir):
    r = _memplan(["draw", "g.json", "p.json", "-o", "d.png", "-q"], tmp_path, MPLCONFIGDIR=no_config_dir)
    assert r.returncode == 0 and r.stderr == "" and (tmp_path / "d.png").stat().st_size > 0


def test_a_draw_says_matplotlibs_notes_as_warning_lines_after_its_summary(tmp_path, no_config_dir):
    r = _memplan(["draw", "g.json", "p.json", "-o", "d.png"], tmp_path, MPLCONFIGDIR=no_config_dir)
    lines = r.stderr.splitlines()
    assert r.returncode == 0 and lines[0] == "d.png: memory map of 5 tensors"
    assert lines[1:] and all(line.startswith("memplan: warning: matplotlib: ") for line in lines[1:])
    assert any("temporary cache directory" in line for line in lines[1:])


def _bad_graph(tmp_path) -> str:
    (tmp_path / "bad.json").write_text('{"format": "memplan.graph/1", "name": "bad"}')
    return str(tmp_path / "bad.json")


def _csv(tmp_path) -> str:
    (tmp_path / "p.csv").write_text("id,lower,upper,size\na,0,2,16\nb,1,3,16\n")
    return str(tmp_path / "p.csv")


@pytest.mark.parametrize("argv", [
    ["plan", "{bad}", "-o", "{out}", "--seed", "3"],
    ["plan", "{bad}", "-o", "{out}", "--solver", "greedy", "--time-limit", "5", "--workers", "2"],
    ["plan", "{bad}", "-o", "{out}", "--progress", "-q"],
    ["plan", "{bad}", "-o", "{out}", "--event-us", "5"],
    ["csv", "{missing}", "-o", "{out}", "--minimize"],
    ["csv", "{csv}", "-o", "{out}", "--solver", "greedy", "--capacity", "8", "--time-limit", "1"],
], ids=["seed", "limit-workers", "progress-quiet", "event-us", "minimize", "csv-over-capacity"])
def test_an_option_without_effect_leaves_a_failing_commands_error_one_line(tmp_path, capsys, argv):
    """``plan bad.json --seed 3`` printed "memplan: warning: --seed 3 has no effect ..." at once, before the graph
    was read, and then the graph's error: two lines (three with ``--progress -q``'s two) where an error is one."""
    from memplan.cli import main

    out = tmp_path / "out.json"
    names = dict(bad=_bad_graph(tmp_path), out=str(out), csv=_csv(tmp_path), missing=str(tmp_path / "no.csv"))
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memplan: error: ") and "has no effect" not in err
    assert not out.exists()


def test_an_option_without_effect_is_said_once_the_command_is_through(tmp_path, capsys):
    from memplan.cli import main

    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    assert main(["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--seed", "3", "--workers", "2"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("p.json: arena 3072 B, lower bound 3072 B (x1.000), 1 stream(s), 0 event(s), solver greedy "
                             "OPTIMAL in " + lines[0].rsplit(" in ", 1)[1])
    assert [line.split(" has no effect")[0] for line in lines[1:]] == ["memplan: warning: --seed 3",
                                                                        "memplan: warning: --workers 2"]


def test_a_misspelt_field_still_rides_on_the_error_and_the_unused_option_does_not(tmp_path, capsys):
    import json

    from memplan.cli import main

    doc = diamond().to_dict()
    doc["nodes"][0]["in_place"] = {}
    doc["nodes"][1]["inputs"] = ["nope"]
    (tmp_path / "g.json").write_text(json.dumps(doc))
    assert main(["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown tensor 'nope'; note: " in err and "'in_place'" in err
    assert "--seed" not in err


@pytest.fixture(scope="module")
def fuzz_inputs(tmp_path_factory):
    from corrupt import make_inputs

    return make_inputs(str(tmp_path_factory.mktemp("round38")))


def test_corrupted_inputs_with_hostile_options_keep_the_cli_contract(fuzz_inputs):
    """``corrupt.with_options`` (tests/fuzz_cli.py ``--options``): the command's own options with hostile values on
    top of a corrupted file. Seeds 0..149 include ``--time-limit`` with ``--solver greedy`` on a file that fails."""
    import random

    from corrupt import commands, corrupt_n, run_case, with_options

    for seed in range(150):
        rnd = random.Random(seed)
        target = rnd.choice(sorted(fuzz_inputs.files))
        what, data = corrupt_n(fuzz_inputs.files[target], rnd, csv=target.endswith(".csv"))
        argv = with_options(rnd.choice(commands(fuzz_inputs, target)), rnd, fuzz_inputs.directory)
        code, problem = run_case(fuzz_inputs, target, data, argv, timeout=60)
        assert problem is None, f"seed {seed}: {target} ({what}): memplan {' '.join(argv)}: {problem}"
