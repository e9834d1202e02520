"""``memplan plan --devices``: a pipeline split from the command line (split graph out, verify, determinism,
capacity errors)."""

from __future__ import annotations

import os

from memplan.cli import main
from memplan.examples import LLAMA_TINY, llama
from memplan.io import save_graph


def test_cli_devices_round_trip(tmp_cwd, capsys):
    save_graph(llama(LLAMA_TINY), "g.json")
    assert main(["plan", "g.json", "-o", "p.json", "--devices", "2", "-q"]) == 2
    assert "--graph-out" in capsys.readouterr().err
    assert not os.path.exists("p.json")
    assert main(["plan", "g.json", "-o", "p.json", "--devices", "2", "--graph-out", "s.json", "--streams", "2",
                 "-q"]) == 0
    assert main(["verify", "s.json", "p.json"]) == 0
    first = open("p.json").read()
    assert main(["plan", "g.json", "-o", "p2.json", "--devices", "2", "--graph-out", "s2.json", "--streams", "2",
                 "-q"]) == 0
    assert open("p2.json").read() == first and open("s2.json").read() == open("s.json").read()
    assert main(["verify", "g.json", "p.json"]) == 2  # the plan refers to the split graph
    assert main(["plan", "g.json", "-o", "p3.json", "--devices", "2", "--graph-out", "s3.json",
                 "--device-capacity", "100", "-q"]) == 2
    assert "device 0 needs" in capsys.readouterr().err


def test_cli_devices_with_a_memory_budget_names_the_flags(tmp_cwd, capsys):
    """The library's refusal names its keyword arguments (memory_budget, device_capacity); the command line
    names its own flags, in one line, before any work or output."""
    save_graph(llama(LLAMA_TINY), "g.json")
    assert main(["plan", "g.json", "-o", "p.json", "--devices", "2", "--graph-out", "s.json",
                 "--memory-budget", "1000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--memory-budget" in err and "--device-capacity" in err, err
    assert "memory_budget" not in err and not os.path.exists("p.json") and not os.path.exists("s.json")
    assert main(["plan", "g.json", "-o", "p.json", "--devices", "1", "--memory-budget", "1000000", "-q"]) == 0
