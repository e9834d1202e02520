"""Hostile input, round 26: command lines.

Each test names the input, what the command did with it, and what it does now.
"""

from __future__ import annotations

import pytest

import memplan
from memplan import examples
from memplan.cli import main

ODD = "esc\x1b[31mred\nline"   # an ANSI escape and a newline in an output path


@pytest.mark.parametrize("command", ["plan", "trace", "csv"])
def test_a_summary_line_escapes_its_output_path(tmp_path, capsys, command):
    """``memplan plan G -o $'a\\x1b[31m\\nb.json'`` printed its summary ``OUT: arena ...`` with the escape and the
    newline as they were: the terminal turned red and the one line became two (``trace``, ``draw``, ``csv`` and
    ``import`` alike). Error lines and ``memplan example``'s paths were escaped already; summaries are now too."""
    g = tmp_path / "g.json"
    memplan.save_graph(examples.bundled()["qkv"], str(g))
    out = tmp_path / f"{ODD}.json"
    if command == "plan":
        argv = ["plan", str(g), "-o", str(out)]
    elif command == "trace":
        p = tmp_path / "p.json"
        assert main(["plan", str(g), "-o", str(p), "-q"]) == 0
        argv = ["trace", str(g), str(p), "-o", str(out)]
    else:
        csv = tmp_path / "c.csv"
        csv.write_text("id,lower,upper,size\n1,0,2,10\n")
        argv = ["csv", str(csv), "-o", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert out.exists()
    assert len(err.splitlines()) == 1 and "\x1b" not in err, err
    assert "esc\\x1b[31mred\\nline.json: " in err
