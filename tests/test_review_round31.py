"""Round-31 review: bugs the round's own fixes introduced (each test fails on main before the fix in its commit)."""

from __future__ import annotations

import json
import sys

from cli_contract import assert_bad_input, run_memplan

from memplan import examples
from memplan.io import save_graph


def _minimalloc_dir(tmp_path, name: str):
    d = tmp_path / "mm"
    d.mkdir()
    (d / name).write_text("id,lower,upper,size\na,0,2,10\nb,1,3,20\n")
    return d


def test_bench_takes_a_file_name_capacity_with_leading_zeros_past_19_digits(tmp_path, capsys):
    """``A.<21 zeros>64.csv`` names capacity 64 (befd190 ran it so). The round-31 check counted digits before
    dropping leading zeros and refused it as "the capacity ... is not below 2**63", which it is."""
    name = "A." + "0" * 21 + "64.csv"
    d = _minimalloc_dir(tmp_path, name)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                          "--solvers", "greedy", "--json", "-"])
    assert code == 0 and "Traceback" not in err, err
    (row,) = json.loads(out)
    assert row["problem"] == "A" and row["capacity"] == 64, row


def test_bench_still_refuses_a_file_name_capacity_of_2_63_written_with_leading_zeros(tmp_path, capsys):
    """The fix above drops leading zeros only: 2**63 behind them is still refused, naming the file."""
    name = "A.000" + str(1 << 63) + ".csv"
    d = _minimalloc_dir(tmp_path, name)
    code, out, err = run_memplan(capsys, ["bench", "planners", "--corpus", "minimalloc", "--minimalloc", d,
                                          "--solvers", "greedy"])
    assert_bad_input(code, err, name, "capacity")
    assert out == ""


def test_plan_to_stdout_redirected_over_its_input_says_the_shell_emptied_it(tmp_path, capsys, monkeypatch):
    """``memplan plan G -o - > G``: the shell truncates ``G`` before memplan runs. The round-31 check said
    "refusing to write over an input (redirect stdout elsewhere)", as if ``G`` were intact: it is already empty, and
    the user must restore it. (``>> G`` leaves ``G`` whole: that message stays.)"""
    g = tmp_path / "g.json"
    g.write_text("")   # what '> g.json' leaves
    with open(g, "a") as out, monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, err, "-o -", "input graph", "emptied")
    assert "refusing to write over an input" not in err

    save_graph(examples.qkv_attention(), str(g))
    before = g.read_text()
    with open(g, "a") as out, monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        code, _, err = run_memplan(capsys, ["plan", g, "-o", "-", "-q"])
    assert_bad_input(code, err, "-o -", "input graph", "refusing to write over an input")
    assert g.read_text() == before


def test_exact_float_ranges_converts_only_scalars_and_only_beside_a_range(monkeypatch):
    """Round 31's Range correction converted every Constant of every model to numpy, whatever its size and whether
    or not the model has a Range (a large Constant weight copied once more in each import; a tenth of a 20,000-node
    chain's import with the per-node spec check, ~20% slower than befd190 in all). Only scalars are Range inputs."""
    from needs import need

    need("onnx")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx_patch import patch_importer

    from memplan.importers.onnx import fold, infer

    converted: list[int] = []
    real = fold._to_array
    patch_importer(monkeypatch, "_to_array", lambda t: converted.append(int(np.prod(t.dims))) or real(t))
    big = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.zeros(4096, np.float32), "w"))
    scalars = [helper.make_node("Constant", [], [v], value=numpy_helper.from_array(np.array(x, np.float32), v))
               for v, x in (("s", 0.3), ("l", 5.3), ("d", 0.2))]
    rng = helper.make_node("Range", ["s", "l", "d"], ["r"])
    for nodes in ([big], [big, *scalars, rng]):
        converted.clear()
        g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                                                               None)])
        infer._exact_float_ranges(onnx, g)
        assert 4096 not in converted, (len(nodes), converted)
    assert [n.op_type for n in g.node][-1] != "Range"   # (the Range itself still corrected: 26 elements, a Constant)
