"""torch importer, round 34: ``memplan import hostile.pt2`` runs no code from the file.

``torch.export.load`` unpickles a weight or constant the archive marks ``use_pickle`` with
``torch.load(weights_only=False)``, falls back to ``weights_only=False`` for sample inputs its safe unpickler
refuses, unpickles an opaque object constant with ``pickle.loads``, and hands every symbolic size's text to
``sympy.sympify`` (Python's ``eval``). Each of those ran a payload written into a saved program (here: one that
creates a marker file). Every archive below is a real ``torch.export.save`` file with one member rewritten."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need

torch = need("torch")

from memplan.errors import InputFormatError  # noqa: E402
from memplan.importers.torch import load_exported  # noqa: E402
from memplan.importers.torch import untrusted as torch_importer  # noqa: E402
from memplan.importers.torch.untrusted import _sympy_text_refusal  # noqa: E402


class _Payload:
    """Unpickling it creates ``marker`` (harmless stand-in for any code a pickle may run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        self.c = torch.ones(4)   # (a lifted tensor constant)

    def forward(self, x):
        return self.lin(x).relu() + self.c


def _saved(folder: Path, dynamic: bool = False) -> Path:
    kw = {"dynamic_shapes": {"x": {0: torch.export.Dim("b", min=2, max=64)}}} if dynamic else {}
    path = folder / ("dyn.pt2" if dynamic else "small.pt2")
    torch.export.save(torch.export.export(_Small(), (torch.ones(4, 3),), **kw), str(path))
    return path


def _rewritten(src: Path, dst: Path, change) -> Path:
    """``src`` with each member's bytes passed through ``change(name, data)`` (None: left out) and any extra
    ``(name, data)`` it returns from ``change("", b"")`` added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)
        for name, data in change("", b"") or ():
            zout.writestr(f"{zin.namelist()[0].split('/')[0]}/{name}", data)
    return dst


def _pickled_weight(marker: Path):
    def change(name: str, data: bytes):
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            config["config"]["lin.bias"]["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("data/weights/weight_1"):   # (lin.bias, the second weight torch.export.save writes)
            return pickle.dumps(_Payload(marker))
        return None if not name else data
    return change


def _pickled_sample_inputs(marker: Path):
    def change(name: str, data: bytes):
        if name.endswith("sample_inputs/model.pt"):
            return pickle.dumps(_Payload(marker))
        return None if not name else data
    return change


def _opaque_constant(marker: Path):
    def change(name: str, data: bytes):
        if not name:
            return [("data/constants/opaque_obj_0", pickle.dumps(_Payload(marker)))]
        if name.endswith("model_constants_config.json"):
            config = json.loads(data)
            config["config"]["c"].update(path_name="opaque_obj_0", tensor_meta=None, use_pickle=True)
            return json.dumps(config).encode()
        return data
    return change


def _evaluated_size(marker: Path):
    symbol = "Symbol('s77', positive=True, integer=True)"

    def change(name: str, data: bytes):
        if name.endswith("models/model.json"):
            text = data.decode()
            assert symbol in text, "torch names the batch symbol otherwise: update the test"
            return text.replace(symbol, f"{symbol} + 0*len(open({str(marker)!r}, 'w').name)", 1).encode()
        return None if not name else data
    return change


HOSTILE = {"pickled weight": (_pickled_weight, False, r"weights-only unpickler refuses"),
           "pickled sample inputs": (_pickled_sample_inputs, False, r"weights-only unpickler refuses"),
           "opaque object constant": (_opaque_constant, False, r"opaque Python object constant"),
           "evaluated symbolic size": (_evaluated_size, True, r"symbolic size in the program.*does not evaluate")}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_runs_no_code_and_is_refused_naming_the_file(tmp_path, case):
    # was: the marker was created (any code the file held ran); three of the four then imported or failed
    # "not a torch.export program", the opaque constant's even imported cleanly
    make, dynamic, message = HOSTILE[case]
    marker = tmp_path / "ran"
    hostile = _rewritten(_saved(tmp_path, dynamic), tmp_path / "hostile.pt2", make(marker))
    with pytest.raises(InputFormatError, match=rf"^{hostile}: .*{message}"):
        load_exported(str(hostile))
    assert not marker.exists(), f"{case}: code in the archive ran"


def test_the_cli_refuses_in_one_line_with_exit_2(capsys, tmp_path):
    """``memplan import`` through the CLI's ``main`` in-process (a subprocess spent its time importing torch
    again; the process boundary of ``import`` is tests/test_onnx_round31_constant_inits.py's): had the archive's
    code run, it would have run here and left the marker."""
    marker = tmp_path / "ran"
    hostile = _rewritten(_saved(tmp_path), tmp_path / "hostile.pt2", _pickled_sample_inputs(marker))
    code, _out, err = run_memplan(capsys, ["import", hostile, "-o", tmp_path / "g.json"])
    assert_bad_input(code, err, "weights-only unpickler")
    assert not marker.exists() and not (tmp_path / "g.json").exists()


def test_saved_programs_still_load_and_torch_is_left_as_it_was(tmp_path, monkeypatch):
    from torch._export.serde import serialize
    from torch.export.pt2_archive import _package

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")   # (the user's own: torch.load refuses both)
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    # (torch 2.11's archive reader has no ``pickle``: it unpickles no opaque object, it refuses the member itself)
    before = (getattr(_package, "pickle", None), serialize.sympy)
    for dynamic in (False, True):
        assert load_exported(str(_saved(tmp_path, dynamic))).graph is not None
    with pytest.raises(InputFormatError, match=r"h\.pt2: the archive holds .*an opaque Python object constant"):
        load_exported(str(_rewritten(_saved(tmp_path), tmp_path / "h.pt2", _opaque_constant(tmp_path / "m"))))
    assert (getattr(_package, "pickle", None), serialize.sympy) == before
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == "1"
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


def test_what_srepr_writes_is_taken_and_anything_else_refused():
    import sympy
    from torch.utils._sympy.functions import FloorDiv, ModularIndexing

    s = sympy.Symbol("s0", positive=True, integer=True)
    for expr in (s, 2 * s - 3, FloorDiv(s, 2) + s**2, ModularIndexing(s, 1, 4), sympy.Eq(s, 3), sympy.Max(s, 1),
                 sympy.Float(1.5) * s, sympy.Rational(1, 2) * s, sympy.true, sympy.oo):
        assert _sympy_text_refusal(sympy.srepr(expr)) is None, sympy.srepr(expr)
    for text in ("__import__('os')", "Symbol('s0') + 1", "open('x', 'w')", "Integer(f'{1}')",
                 "Integer(1).__class__", "Symbol(exec('1'))", "lambda: 0", "Integer([1][0])", "parse_expr('1')"):
        assert _sympy_text_refusal(text) is not None, text
    assert torch_importer._sympy_text_refusal(sympy.Integer(1)) is None   # (no text: nothing to evaluate)
