"""Hostile input, round 23: command lines: the runtime tools' numbers and ``--`` in ``memplan``'s.

The runtime's GPU tools read integers with Python's ``int()`` (and reals with ``float()``), which take
'１６', '٣', '1_6' and ' 16' (and 'nan', 'inf'), where the ``memplan`` command refuses them; a ``--`` after
the options of ``memplan plan`` was refused. Each test names the input, what happened, and what happens
now. The tools' options are all checked before anything needs a GPU: these run on the CPU.
"""

from __future__ import annotations

import pytest
from cli_contract import assert_bad_input, assert_tool_refused, exit_code, run_tool
from cli_contract import run_memplan as run

import memplan
from memplan.cli import main


@pytest.mark.parametrize("tool,argv,words", [
    ("runtime.bench", ["--batches", "\uff11\uff16"], ["--batches", "is not an integer", "ASCII"]),
    ("runtime.bench_multi_gpu", ["--batches", "1,\u0663"], ["--batches", "is not an integer"]),
    ("runtime.tools.gemm_bench", ["--rows", "1_6"], ["--rows", "'1_6' is not an integer"]),
    ("runtime.tools.bound", ["--batches", "1, 4"], ["--batches", "' 4' has spaces around it"]),
    ("runtime.tools.pdl_check", ["--batches", "\u0661"], ["--batches", "is not an integer"]),
    ("runtime.tools.attn_bench", ["--dims", "\uff16\uff14"], ["--dims", "is not an integer"]),
    ("runtime.tools.compare_launches", ["--batches", "\uff12"], ["--batches", "is not an integer"]),
    ("runtime.tools.compare_launches", ["--streams", "\uff12"], ["--streams", "is not an integer"]),
    # rule_ab read its batches with a bare int(): '１' ran, 'x' was Python's "invalid literal" message
    ("runtime.tools.rule_ab", ["--batches", "\uff11"], ["--batches", "is not an integer"]),
    ("runtime.tools.rule_ab", ["--batches", "x"], ["--batches", "'x' is not an integer"]),
    ("runtime.tools.rule_ab", ["--variant", "v:ROPE_BASE=nan"], ["--variant v", "ROPE_BASE='nan' is not a number"]),
    ("runtime.tools.rule_ab", ["--variant", "v:ROPE_BASE=1e999"], ["--variant v", "is not a number", "finite"]),
    ("runtime.tools.rule_ab", ["--variant", "v:WG_MIN_ROWS=\uff12"], ["--variant v", "is not an integer"]),
    # single numbers: type=int / type=float
    ("runtime.bench", ["--rounds", "\uff15"], ["--rounds", "not an integer"]),
    ("runtime.bench", ["--timed-ms", "inf"], ["--timed-ms", "not a number"]),
    ("runtime.bench", ["--timed-ms", "1e999"], ["--timed-ms", "not a finite number"]),
    ("runtime.bench_multi_gpu", ["--devices", " 2"], ["--devices", "not an integer"]),
    ("runtime.tools.attn_bench", ["--ctx", "5_12"], ["--ctx", "not an integer"]),
    ("runtime.tools.bound", ["--rounds", "\u0663"], ["--rounds", "not an integer"]),
    ("runtime.tools.compare_launches", ["--layers", "\uff12"], ["--layers", "not an integer"]),
    ("runtime.tools.pdl_check", ["--replays", "\uff15"], ["--replays", "not an integer"]),
    ("runtime.tools.profile", ["--batch", "\uff11"], ["--batch", "not an integer"]),
    ("runtime.tools.rule_ab", ["--steps", "\uff14\uff10"], ["--steps", "not an integer"]),
])
def test_runtime_tools_read_numbers_as_memplan_does(capsys, tool, argv, words):
    assert_tool_refused(*run_tool(capsys, tool, argv), *words)


def test_runtime_tool_lists_still_take_plain_numbers():
    from runtime.tool_args import ToolArgError, count_arg, int_list

    assert int_list("1,4,16", "--batches") == [1, 4, 16]
    assert int_list("0,2", "--batches", lo=0) == [0, 2]
    assert count_arg("-3") == -3 and count_arg("512") == 512   # the tools' own checks name a negative
    with pytest.raises(ToolArgError, match="digits are too many"):
        int_list("9" * 5000, "--batches")


# --- '--' in memplan's command line: each command's first '--' ends its options (POSIX, argparse) -------

@pytest.mark.parametrize("argv", [["--", "plan", "{g}", "-o", "{p}", "--"], ["--", "plan", "-o", "{p}", "--", "{g}"],
                                  ["plan", "{g}", "-o", "{p}", "--"]])
def test_a_double_dash_before_the_command_and_after_its_options(tmp_path, capsys, graph_file, argv):
    """``memplan -- plan G -o P --`` was "unrecognized arguments: --": the CLI dropped a '--' that argparse
    handed back only when the command line held no other '--' (here one also stood before the command)."""
    p = tmp_path / "p.json"
    argv = [a.format(g=graph_file, p=p) for a in argv]
    assert exit_code(main, argv) == 0, capsys.readouterr().err
    memplan.verify(memplan.load_graph(str(graph_file)), memplan.load_plan(str(p)))


@pytest.mark.parametrize("tail, word", [(["--", "--"], "unrecognized arguments: --"),
                                        (["--", "-q"], "unrecognized arguments: -q"),
                                        (["--", "--", "x"], "unrecognized arguments: -- x")])
def test_after_the_first_double_dash_everything_is_an_argument(tmp_path, capsys, graph_file, tail, word):
    """Only the first '--' of a command ends its options; a later one (or an option's name) is an argument,
    which ``plan`` (one graph) does not take, with a '--' before the command too."""
    p = tmp_path / "p.json"
    code, _, err = run(capsys, ["--", "plan", graph_file, "-o", p, *tail])
    assert_bad_input(code, err, word)
    assert not p.exists()


def test_a_runtime_tool_takes_a_double_dash_after_its_options(capsys):
    """``python -m runtime.tools.bound --rounds 1 --`` was "unrecognized arguments: --": the tools' parser
    shares memplan's one-line errors, and now its '--'. A second '--' is still an argument it does not take."""
    from runtime.tool_args import ToolParser

    ap = ToolParser(prog="python -m runtime.tools.t")
    ap.add_argument("--rounds", type=int, default=3)
    assert ap.parse_args(["--rounds", "2", "--"]).rounds == 2
    code, err = run_tool(capsys, "runtime.tools.bound", ["--rounds", "1", "--", "--"])
    assert code == 2 and err.count("\n") == 1 and "unrecognized arguments: --" in err, err
