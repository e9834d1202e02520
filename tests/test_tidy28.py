"""Tidy 28: example builders' sizes, simulate of an empty graph, and ``draw -o .png``."""

from __future__ import annotations

import numpy as np
import pytest
from cli_contract import assert_bad_input

import memplan
from memplan import GraphBuilder, examples
from memplan.cli import main
from memplan.errors import GraphError

SIZED = [
    (examples.chain, "chain", {}),
    (examples.diamond, "diamond", {}),
    (examples.fanout_join15, "fanout_join15", {}),
    (examples.moe, "moe", {"experts": 2}),
    (examples.views_inplace, "views_inplace", {}),
]


@pytest.mark.parametrize("builder,func,more", SIZED[:-1], ids=[s[1] for s in SIZED[:-1]])
@pytest.mark.parametrize("bad", [2.5, -1, True, "64", None])
def test_example_builders_name_a_bad_size_argument(builder, func, more, bad):
    """A bad ``size`` was refused only by the graph builder, as tensor ``'x'``'s size: an error naming no
    argument the caller gave. Now each builder names itself and its ``size`` (as ``views_inplace`` did)."""
    with pytest.raises(GraphError, match=rf"^{func}: size must be an integer >= 0"):
        builder(size=bad, **more)


@pytest.mark.parametrize("builder,func,more", SIZED, ids=[s[1] for s in SIZED])
def test_example_builders_take_a_numpy_size_as_the_int_it_equals(builder, func, more):
    a, b = builder(size=np.int64(512), **more), builder(size=512, **more)
    assert [t.size for t in a.tensors] == [t.size for t in b.tensors]
    assert all(type(t.size) is int for t in a.tensors)


def test_simulate_of_an_empty_graph_says_there_is_nothing_to_run(tmp_path, capsys):
    """An empty graph's makespan line said "on 0 stream(s)", as if the plan had lost its streams."""
    gpath, ppath = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(GraphBuilder("empty").build(), str(gpath))
    assert main(["plan", str(gpath), "-o", str(ppath), "-q"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(gpath), str(ppath)]) == 0
    out = capsys.readouterr().out
    assert "0 stream" not in out
    assert "no nodes" in out.splitlines()[0]


def test_simulate_still_counts_the_streams_nodes_use(tmp_path, capsys):
    gpath, ppath = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(examples.diamond(), str(gpath))
    assert main(["plan", str(gpath), "-o", str(ppath), "-q", "--streams", "2"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(gpath), str(ppath)]) == 0
    assert "on 2 stream(s)" in capsys.readouterr().out


@pytest.mark.parametrize("name,words", [
    (".png", ["'.png'", "no stem", "plan.png"]),
    (".SVG", ["'.SVG'", "no stem"]),
    ("plan", ["no extension", ".png"]),
])
def test_draw_says_what_a_picture_name_lacks(tmp_path, capsys, name, words):
    """``draw -o .png`` was "unknown picture format ''": a leading dot starts a hidden file's name (as
    ``import`` reads ``.onnx``), so the name has an extension but no stem, and the error now says so; a name
    with no extension at all says that. Both are refused before the graph and plan are read."""
    code = main(["draw", str(tmp_path / "g.json"), str(tmp_path / "p.json"), "-o", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert_bad_input(code, err, *words)
    assert "unknown picture format" not in err
    assert not (tmp_path / name).exists()
