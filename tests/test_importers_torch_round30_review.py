"""Review of session 30's range check of a dynamic program's example sizes (``_check_ranges``).

Keyword inputs given in another order than ``forward`` takes them (``kwargs={"z": .., "y": ..}`` for
``forward(x, *, y, z)``) were read in the caller's order: ``y``'s placeholder got ``z``'s sizes, and a valid
size was refused as outside ``y``'s range (and ``ep.module()``'s guards, run by the export that specializes
the program, failed the same way). They are now read in the program's own order, as ``torch.export`` reads a
call's keywords."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


class Keywords(torch.nn.Module):
    def forward(self, x, *, y, z):
        return x.sum(0) + y.sum(1) + z.sum(1)


def _dynamic():
    b = torch.export.Dim("b", min=2, max=64)
    c = torch.export.Dim("c", min=5, max=64)
    return torch.export.export(Keywords(), (torch.randn(4, 6),), {"y": torch.randn(6, 8), "z": torch.randn(6, 2)},
                               dynamic_shapes={"x": {0: b}, "y": {1: c}, "z": None})


@pytest.mark.parametrize("order", [("y", "z"), ("z", "y")])
def test_keyword_inputs_in_any_order_specialize(order):
    given = {"y": torch.randn(6, 5), "z": torch.randn(6, 2)}
    g = memplan.from_torch(_dynamic(), (torch.randn(3, 6),), kwargs={k: given[k] for k in order})
    assert g.tensor("y").attrs["shape"] == [6, 5] and g.tensor("x").attrs["shape"] == [3, 6]


def test_a_keyword_input_out_of_range_is_still_named_in_any_order():
    with pytest.raises(GraphError, match=r"input 'y' dimension 1 is 4, outside the exported program's range \[5, 64\]"):
        memplan.from_torch(_dynamic(), (torch.randn(3, 6),), kwargs={"z": torch.randn(6, 2), "y": torch.randn(6, 4)})
