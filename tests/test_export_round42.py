"""torch importer, round 42: programs loaded from ``.pt2`` plan as the programs they were saved from.

- A ``torch.tensor([...])`` literal in ``forward`` is exported as ``lift_fresh_copy`` then ``detach_``. Loaded, the
  importer lays out each view again on meta tensors made with ``as_strided``, which are views, and ``detach_``
  of a view raises: the literal's ``[1:]`` claimed the whole literal at offset 0 (the program in memory: 4 bytes
  in), and the ATen executor refused the loaded program.
- ``--dim`` / ``sized_inputs`` giving a dimension that is an expression of a symbol (``y`` exported with
  ``{0: Dim("b") + 1}``) a size that makes the symbol negative (``--dim y.0=0``: ``b`` = -1), or a symbol a negative
  value from Python, made a negative size: torch's raw RuntimeError out of ``memplan import`` (exit 1).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import rows as _rows  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import sized_inputs  # noqa: E402


class LiteralSlice(nn.Module):
    def forward(self, x):
        return x + torch.tensor([1.0, 2, 3, 4, 5, 6])[1:].sum()


def test_a_loaded_literal_slice_is_at_its_offset():
    ep = torch.export.export(LiteralSlice(), (torch.randn(4, 6),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    view = next(t for t in loaded.tensors if t.id == "slice_1")
    assert (view.view_of, view.view_offset, view.size) == ("detach_", 4, 20)
    assert _rows(here) == _rows(loaded)


class CatRows(nn.Module):
    def forward(self, x, y):
        return torch.cat([x, y]) * 2


def _cat_rows() -> torch.export.ExportedProgram:
    b = Dim("b", min=2, max=64)
    return torch.export.export(CatRows(), (torch.randn(4, 3), torch.randn(5, 3)), dynamic_shapes=({0: b}, {0: b + 1}))


def test_a_dim_that_makes_a_symbol_negative_is_refused_naming_it():
    """``--dim y.0=0`` where ``y.0`` is ``b + 1`` made ``b`` -1 and ``x`` a -1-row tensor: torch's raw RuntimeError
    ("zeros: Dimension size must be non-negative"), a traceback out of ``memplan import``."""
    ep = _cat_rows()
    with pytest.raises(
        GraphError,
        match=r"--dim y\.0=0: input dimension y\.0 is s\d+ \+ 1, which makes s\d+ -1: a "
        r"size is never negative",
    ):
        sized_inputs(ep, None, {"y.0": 0})
    with pytest.raises(GraphError, match=r"--dim b=-3: makes the dynamic dimension b \(torch's s\d+\) -3, outside"):
        sized_inputs(ep, None, {"b": -3})
    args, _ = sized_inputs(ep, None, {"y.0": 6})
    assert [tuple(a.shape) for a in args] == [(5, 3), (6, 3)]
