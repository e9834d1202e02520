"""Round 78 (cli78): the ``memplan`` command under hostile use.

Why: the command's contract for a Ctrl-C is one line, ``memplan: error: interrupted``, and exit 130: no traceback,
whenever it comes (``memplan/_interrupt.py``). These tests pin the cases round 78 found broken."""

from __future__ import annotations

import datetime

from test_cli_round51 import _SITE, INTERRUPTED, _run


def test_ctrl_c_while_numpy_imports_datetime_is_one_line(tmp_path):
    """A Ctrl-C while ``import memplan`` runs numpy's C init, as it imports ``datetime`` (``PyCapsule_Import``): the
    handler's SystemExit became numpy's "ImportError: PyCapsule_Import could not import module "datetime"", with no
    trace of it, and the command printed the line and then that 40-line traceback ("IMPORTANT: PLEASE READ THIS ...
    bad install"), exit 130. Now the line alone (``_interrupt._silent_once_said``)."""
    (tmp_path / "sitecustomize.py").write_text(_SITE)
    r = _run(str(tmp_path), 1, datetime.__file__, ["-m", "memplan", "--version"], cwd=str(tmp_path))
    assert (r.returncode, r.stderr) == (130, INTERRUPTED + "\n"), r.stderr


def _relu_model(path, shape) -> None:
    """A one-node ONNX model (Relu) whose input and output have ``shape``."""
    from needs import need

    onnx = need("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_import_batch_of_a_model_whose_inputs_have_no_leading_dimension_is_refused(tmp_path, capsys):
    """``memplan import m.onnx --batch 3`` of a model whose one input is a scalar wrote the graph of that scalar
    (4 bytes), exit 0: the batch asked for silently ignored, where a model of fixed leading dimensions is refused
    ("has a fixed leading dimension 2 ..., so the batch cannot be set"). Now refused the same way, nothing written;
    without --batch the model imports as before."""
    from cli_contract import assert_bad_input, run_memplan

    _relu_model(tmp_path / "m.onnx", [])
    out = tmp_path / "g.json"
    code, _, err = run_memplan(capsys, ["import", tmp_path / "m.onnx", "-o", out, "--batch", "3", "-q"])
    assert_bad_input(code, err, "m.onnx", "--batch 3", "no graph input has a leading dimension")
    assert not out.exists()
    code, _, err = run_memplan(capsys, ["import", tmp_path / "m.onnx", "-o", out, "-q"])
    assert code == 0 and out.exists(), err
    _relu_model(tmp_path / "r.onnx", None)   # (an input of unknown rank: its own error, not the batch's)
    code, _, err = run_memplan(capsys, ["import", tmp_path / "r.onnx", "-o", tmp_path / "r.json", "--batch", "3"])
    assert_bad_input(code, err, "graph input 'x' has no shape")


def test_draw_summary_counts_the_boxes_it_drew(tmp_path, capsys):
    """``memplan draw`` said "memory map of 11 tensors" for the Q/K/V example, every tensor its plan lists, where the
    picture holds 7 boxes: its 4 weights are outside the arena (and a view lies within its root's box). The summary
    now counts the boxes, one per arena root, and says what the rest of the plan's tensors are."""
    from needs import need

    need("matplotlib")
    from cli_contract import run_memplan

    import memplan
    from memplan.examples import qkv_attention

    g = tmp_path / "g.json"
    memplan.save_graph(qkv_attention(), str(g))
    assert run_memplan(capsys, ["plan", g, "-o", tmp_path / "p.json", "-q"])[0] == 0
    code, _, err = run_memplan(capsys, ["draw", g, tmp_path / "p.json", "-o", tmp_path / "d.png"])
    assert code == 0, err
    assert err.splitlines()[0] == (
        f"{tmp_path / 'd.png'}: memory map of 7 tensors (of the plan's 11: views lie within their root's box, "
        "weights outside the arena)"), err


def test_an_option_cut_short_names_every_option_it_begins(tmp_path, capsys):
    """The command takes no abbreviated option (``--mem 1G`` is no ``--memory-budget 1G``), and its error named none
    there (``--mem`` is too far from ``--memory-budget`` for a close match), while ``--str 3`` named ``--streams``;
    ``plan --time 5`` named ``--timings``, a flag, not ``--time-limit``, which takes the value given. Now every option
    the token begins is named."""
    from cli_contract import assert_bad_input, run_memplan

    g = tmp_path / "g.json"
    g.write_text('{"format": "memplan.graph/1", "name": "one", "tensors": [{"id": "a", "size": 4, "kind": "input"}, '
                 '{"id": "b", "size": 4, "kind": "output"}], "nodes": [{"id": "n", "op": "X", "inputs": ["a"], '
                 '"outputs": ["b"]}]}')
    out = tmp_path / "p.json"
    for option, meant in (("--mem", "--memory-budget?"), ("--time", "--time-limit?"),
                          ("--device", "--devices or --device-capacity?")):
        code, _, err = run_memplan(capsys, ["plan", g, "-o", out, option, "1"])
        assert_bad_input(code, err, f"unrecognized arguments: {option} 1 (did you mean {meant})")
    assert not out.exists()
