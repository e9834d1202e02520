"""torch importer, round 41: what a dynamic program's example sizes make of its dimensions; bodies of control flow.

- ``x`` exported with ``{0: 4 * Dim("k")}`` and given a size of 4 (``k`` = 1, below torch's range of 2..16 for it)
  or 13 (no ``k``) was refused only by torch's guard text ("Guard failed: x.size()[0] // 4 != 1"), which named
  neither the dimension nor what the size made of it: a dimension that is an expression of one symbol now binds
  that symbol, whose range is checked; a guard torch still refuses names the values the inputs gave.
- An ``as_strided`` inside a ``cond`` / ``map`` / ``while_loop`` body reads from its operand's storage start, past
  the operand's own elements; the top level kept a user input's example layout for it, and grew a root to what
  the view touches, but a body's was not looked at: the operand was planned at its own elements' bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Rows4(nn.Module):
    def forward(self, x):
        return x.reshape(-1, 4) * 2


def _rows4() -> torch.export.ExportedProgram:
    return torch.export.export(Rows4(), (torch.randn(8),), dynamic_shapes={"x": {0: 4 * Dim("k", max=16)}})


@pytest.mark.parametrize("loaded", [False, True], ids=["memory", "loaded"])
def test_a_derived_dimension_below_its_symbols_range_is_named(loaded):
    ep = _rows4()
    ep = _saved_and_loaded(ep) if loaded else ep
    with pytest.raises(GraphError, match=r"from input 'x' dimension 0 = 4\*s\d+ = 4\) is 1, outside the exported "
                                         r"program's range \[2, 16\]") as err:
        memplan.from_torch(ep, (torch.randn(4),))
    assert "Guard failed" not in str(err.value)
    with pytest.raises(GraphError, match=r"input 'x' dimension 0 is 13, which its size 4\*s\d+ is for no integer"):
        memplan.from_torch(ep, (torch.randn(13),))
    with pytest.raises(GraphError, match=r"input 'x' dimension 0 is 80, outside the exported program's range "
                                         r"\[0, 64\] for its dynamic dimension 4\*s\d+"):
        memplan.from_torch(ep, (torch.randn(80),))
    assert {t.id: t.size for t in memplan.from_torch(ep, (torch.randn(12),)).tensors}["x"] == 48


def test_a_size_of_zero_solves_a_derived_dimension():
    # torch's symbols are positive: solved as they were, 0 = 4*s6 had "no integer" s6, where 0 is one (out of range)
    from memplan.importers.torch import sized_inputs

    with pytest.raises(GraphError, match=r"= 4\*s\d+ = 0\) is 0, outside the exported program's range \[2, 16\]"):
        memplan.from_torch(_rows4(), sized_inputs(_rows4(), None, {"x.0": 0})[0])


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x.sum() + y.reshape(-1, 4).sum()


def test_two_dimensions_of_one_symbol_that_disagree_or_fail_a_guard_are_named():
    k = Dim("k", max=16)
    ep = torch.export.export(TwoInputs(), (torch.randn(3), torch.randn(12)),
                             dynamic_shapes={"x": {0: k}, "y": {0: 4 * k}})
    with pytest.raises(GraphError, match=r"input 'y' dimension 0 is 16 = 4\*s\d+ with k \(torch's s\d+\) = 4, but "
                                         r"input 'x' dimension 0 makes it 3"):
        memplan.from_torch(ep, (torch.randn(3), torch.randn(16)))
    # k's range is 0..16 here, but the program's guards refuse k = 1: the error says what the inputs made of k
    with pytest.raises(GraphError, match=r"Guard failed: .*\(the example inputs make k \(torch's s\d+\) = 1 "
                                         r"\(input 'x' dimension 0\); torch traces a dynamic size as at least 2"):
        memplan.from_torch(ep, (torch.randn(1), torch.randn(4)))
    assert memplan.from_torch(ep, (torch.randn(2), torch.randn(8))).tensors


def test_the_cli_names_a_derived_dimension_out_of_range(tmp_path):
    program = tmp_path / "m.pt2"
    torch.export.save(_rows4(), str(program))
    r = subprocess.run([sys.executable, "-m", "memplan", "import", str(program), "-o", str(tmp_path / "g.json"),
                        "--dim", "x.0=4", "-q"], env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "input 'x' dimension 0 = 4*s" in lines[0] and "is 1, outside" in lines[0], r.stderr
    assert not (tmp_path / "g.json").exists()
