"""torch importer, round 43: what a dynamic program is given, checked against what it takes.

- ``--dim y.0=1`` where ``y.0`` is ``b + 1`` (so ``b`` = 0, below its range [2, 64]) was refused as "input 'x'
  dimension 0 is 0, outside ...": an input and a dimension the user had not written. The option is named now.
- A dynamic program given example inputs of another dtype or rank was exported again with them and planned as
  another program (float64, rank 3), silently; a rank-1 tensor failed as torch's "tuple index out of range", a
  wrong structure as torch's bare "Trying to flatten user inputs with exported input tree spec:".
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
from memplan.importers.torch import sized_inputs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CatRows(nn.Module):
    def forward(self, x, y):
        return torch.cat([x, y]) * 2


def _cat_rows() -> torch.export.ExportedProgram:
    b = Dim("b", min=2, max=64)
    return torch.export.export(CatRows(), (torch.randn(4, 3), torch.randn(5, 3)), dynamic_shapes=({0: b}, {0: b + 1}))


@pytest.mark.parametrize("dims, named", [
    ({"y.0": 1}, r"--dim y\.0=1 \(s\d+=0\): makes the dynamic dimension \S+ \(torch's s\d+\) 0, outside"),
    ({"y.0": 200}, r"--dim y\.0=200 \(s\d+=199\): makes the dynamic dimension \S+ \(torch's s\d+\) 199, outside"),
    ({"x.0": 65}, r"--dim x\.0=65: makes the dynamic dimension x\.0 \(torch's s\d+\) 65, outside"),
], ids=["derived-low", "derived-high", "plain-high"])
def test_a_dim_out_of_range_names_the_option_given(dims, named):
    ep = _saved_and_loaded(_cat_rows())
    with pytest.raises(GraphError, match=named + r" the exported program's range \[2, 64\]"):
        sized_inputs(ep, None, dims)
    with pytest.raises(GraphError, match=r"^--batch 1: makes the dynamic dimension x\.0 .* 1, outside"):
        sized_inputs(ep, 1, {})
    args, _ = sized_inputs(ep, None, {"y.0": 65})
    assert [tuple(a.shape) for a in args] == [(64, 3), (65, 3)]


def test_the_cli_names_the_dim_option_out_of_range(tmp_path):
    program = tmp_path / "m.pt2"
    torch.export.save(_cat_rows(), str(program))
    r = subprocess.run([sys.executable, "-m", "memplan", "import", str(program), "-o", str(tmp_path / "g.json"),
                        "--dim", "y.0=1", "-q"], env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dim y.0=1 (s" in lines[0] and "input 'x'" not in lines[0], r.stderr


class Double(nn.Module):
    def forward(self, x):
        return x * 2


@pytest.fixture(scope="module", params=[False, True], ids=["memory", "loaded"])
def double(request) -> torch.export.ExportedProgram:
    ep = torch.export.export(Double(), (torch.randn(4, 3),), dynamic_shapes=({0: Dim("n", max=100)},))
    return _saved_and_loaded(ep) if request.param else ep


@pytest.mark.parametrize("example, words", [
    ((torch.randn(5, 3, dtype=torch.float64),), r"example input 'x' is a float64 tensor of rank 2, but the exported "
                                                 r"program takes a float32 tensor of rank 2"),
    ((torch.randn(5, 3, 2),), r"example input 'x' is a float32 tensor of rank 3, but .* rank 2"),
    ((torch.randn(5),), r"example input 'x' is a float32 tensor of rank 1, but .* rank 2"),
    ((torch.zeros(5, 3, dtype=torch.int64),), r"example input 'x' is an int64 tensor"),
    ((torch.randn(5, 4),), r"example input 'x' dimension 1 is 4, but the exported program fixes it at 3"),
    ((3,), r"example input 'x' is 3 \(int\), but the exported program takes a float32 tensor of rank 2"),
    ((torch.randn(5, 3), torch.randn(2)), r"the example inputs are 2 positional inputs, but the exported program "
                                          r"takes 1 positional input"),
    (([torch.randn(5, 3)],), r"the example inputs are 1 positional input \(TreeSpec.*list"),
], ids=["dtype", "rank3", "rank1", "int64", "static-dim", "int", "count", "nested"])
def test_example_inputs_of_another_dtype_rank_or_structure_are_refused(double, example, words):
    with pytest.raises(GraphError, match=words) as err:
        memplan.from_torch(double, example)
    assert "\n" not in str(err.value)


def test_example_inputs_of_the_programs_types_still_size_it(double):
    g = memplan.from_torch(double, (torch.randn(5, 3),))
    assert {t.id: (t.size, t.attrs["dtype"]) for t in g.tensors}["x"] == (60, "float32")
