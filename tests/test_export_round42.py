"""torch importer, round 42: programs loaded from ``.pt2`` plan as the programs they were saved from.

- A ``torch.tensor([...])`` literal in ``forward`` is exported as ``lift_fresh_copy`` then ``detach_``. Loaded, the
  importer lays out each view again on meta tensors made with ``as_strided``, which are views, and ``detach_``
  of a view raises: the literal's ``[1:]`` claimed the whole literal at offset 0 (the program in memory: 4 bytes
  in), and the ATen executor refused the loaded program.
"""

from __future__ import annotations

from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch_saved import rows as _rows  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402


class LiteralSlice(nn.Module):
    def forward(self, x):
        return x + torch.tensor([1.0, 2, 3, 4, 5, 6])[1:].sum()


def test_a_loaded_literal_slice_is_at_its_offset():
    ep = torch.export.export(LiteralSlice(), (torch.randn(4, 6),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    view = next(t for t in loaded.tensors if t.id == "slice_1")
    assert (view.view_of, view.view_offset, view.size) == ("detach_", 4, 20)
    assert _rows(here) == _rows(loaded)
