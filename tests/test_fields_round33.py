"""A graph document's misspelt field is warned about (``FieldWarning``; one ``memplan: warning:`` line in the CLI).

The contract has readers ignore unknown fields, so ``in_place`` or ``viewof`` planned the user's in-place pair or
alias as memory of its own without a word — a plan safe for the graph memplan read, not for the one the user
meant. The meaning is unchanged (the field is still ignored); only keys close to a field are named, each once.
"""

from __future__ import annotations

import json
import warnings

import pytest

import memplan
from memplan.cli import main
from memplan.errors import FieldWarning


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``memplan argv`` run in process (``cli.main``, what ``python -m memplan`` runs): a
    subprocess spent a second or more of CI starting Python and importing memplan again for the same lines and exit
    status (tests/test_cli.py keeps the real entry point's tests)."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def doc(**extra) -> dict:
    d = {"format": "memplan.graph/1", "name": "m",
         "tensors": [{"id": "x", "size": 64, "kind": "input"}, {"id": "z", "size": 64, "kind": "output"}],
         "nodes": [{"id": "n", "op": "RELU", "inputs": ["x"], "outputs": ["z"]}]}
    for where, (key, value) in extra.items():
        target = d if where == "top" else d["tensors"][1] if where == "tensor" else d["nodes"][0]
        target[key] = value
    return d


@pytest.mark.parametrize("where,key,meant", [
    ("node", "in_place", "inplace"), ("node", "costs", "cost"), ("node", "groups", "group"),
    ("node", "Group", "group"), ("tensor", "viewof", "view_of"), ("tensor", "view-offset", "view_offset"),
    ("tensor", "View_Of", "view_of"), ("top", "alignement", "alignment")])
def test_a_misspelt_field_is_named_with_the_field_meant(where, key, meant):
    with pytest.warns(FieldWarning, match=rf"{where if where != 'top' else 'top-level'} field '{key}' .*did you "
                                          rf"mean '{meant}'\?\); ignored"):
        g = memplan.graph_from_dict(doc(**{where: (key, {"z": "x"} if key == "in_place" else 1)}))
    assert g.nodes[0].inplace == ()   # still ignored: the meaning of the document is the contract's


@pytest.mark.parametrize("key", ["shape", "dtype", "layout", "offset", "name", "strides", "attrs_extra"])
def test_free_form_keys_far_from_every_field_are_not_warned_about(key):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memplan.graph_from_dict(doc(tensor=(key, 1), node=(key, 1)))


def test_each_distinct_key_is_named_once_however_many_entries_hold_it():
    d = doc()
    d["tensors"] += [{"id": f"t{i}", "size": 8, "kind": "input", "viewof": "x"} for i in range(50)]
    with pytest.warns(FieldWarning) as rec:
        memplan.graph_from_dict(d)
    assert len([w for w in rec if issubclass(w.category, FieldWarning)]) == 1


def test_the_cli_says_it_on_one_line_and_still_plans(tmp_path, capsys):
    src = tmp_path / "g.json"
    src.write_text(json.dumps(doc(node=("in_place", {"z": "x"}))))
    code, err = _cli(capsys, "plan", str(src), "-o", str(tmp_path / "p.json"))
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "warning" in ln]
    assert lines == [f"memplan: warning: {src}: node field 'in_place' is not a field of memplan.graph/1 "
                     "(did you mean 'inplace'?); ignored"]
    assert (tmp_path / "p.json").exists()


def test_a_document_its_misspelling_breaks_is_one_error_line_naming_the_field_meant(tmp_path, capsys):
    """``kinds`` for ``kind``: the tensor has no kind, an error; the CLI said it in two lines (a warning, then the
    error: found by tests/fuzz_cli.py), now in one, the note beside the error."""
    d = doc()
    d["tensors"][1]["knd"] = d["tensors"][1].pop("kind")
    src = tmp_path / "g.json"
    src.write_text(json.dumps(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(memplan.GraphError, match=r"tensor 'z' has no 'kind' .*; note: tensor field 'knd' is not "
                                                      r"a field of memplan.graph/1 \(did you mean 'kind'\?\)$"):
            memplan.load_graph(str(src))
    code, err = _cli(capsys, "plan", str(src), "-o", str(tmp_path / "p.json"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "did you mean 'kind'" in err


def test_a_later_error_stays_one_line_with_the_misspelling_beside_it(tmp_path, capsys):
    """The graph reads (its ``costs`` ignored), then the plan file is bad: one line, exit 2, the field noted."""
    src, bad = tmp_path / "g.json", tmp_path / "p.json"
    src.write_text(json.dumps(doc(node=("costs", 3))))
    bad.write_text("{}")
    code, err = _cli(capsys, "verify", str(src), str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error:") and "; note: " in lines[0]
    assert "g.json: node field 'costs' is not a field of memplan.graph/1 (did you mean 'cost'?)" in lines[0]
