"""torch importer, round 43 (fix43b): a loaded program's recorded dtype of a factory op (``ones``, ``zeros``,
``full``, ``arange``: no ``dtype`` argument) is checked against the op run again.

Before: the check ran such an op with the recorded dtype as its ``dtype`` (torch's default at trace time is the
record's word), so an edited ``.pt2`` recording ``ones([4, 3])`` as int8, or ``full([3], 2)`` (int64 whatever the
default) as int16, was planned smaller than eager writes, silently. A dtype a default could have made (float16 from
``torch.set_default_dtype(torch.float16)``) still stands.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_export_round43 import _edited as edited_pt2  # noqa: E402
from torch import nn  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402

#: torch.export's serialized ScalarType numbers
BYTE, CHAR, SHORT, INT, HALF, BOOL, BFLOAT16 = 1, 2, 3, 4, 6, 12, 13


class Factories(nn.Module):
    def forward(self, x):
        return x + torch.ones(4, 3) + torch.zeros(3) + torch.full((3,), 2.5) + torch.full((3,), 2) + torch.arange(3)


def _edited(tmp_path, edit, module: nn.Module | None = None) -> str:
    """``module`` (``Factories``) saved, its ``model.json``'s tensor records edited in place by ``edit``."""
    return edited_pt2(tmp_path, edit, module or Factories())


def _load(path: str):
    from memplan.importers.torch import load_exported

    return load_exported(path)


@pytest.mark.parametrize("node, dtype, recorded, made", [
    ("ones", CHAR, r"int8 \[4, 3\]", r"float32 \[4, 3\]"),
    ("zeros", BOOL, r"bool \[3\]", r"float32 \[3\]"),
    ("full", BYTE, r"uint8 \[3\]", r"float32 \[3\]"),
    ("full_1", SHORT, r"int16 \[3\]", r"int64 \[3\]"),
    ("full_1", HALF, r"float16 \[3\]", r"int64 \[3\]"),
    ("arange", INT, r"int32 \[3\]", r"int64 \[3\]"),
])
def test_a_factory_result_recorded_in_a_smaller_dtype_is_refused(tmp_path, node, dtype, recorded, made):
    """Each was planned at the record's bytes (``ones`` 12 where eager writes 48), silently."""
    ep = _load(_edited(tmp_path, lambda tv: tv[node].update(dtype=dtype)))
    with pytest.raises(GraphError, match=rf"node '{node}' \(aten\.\w+\.default\): the program records its result as "
                                         rf"{recorded}.*but the op makes {made}.* \(a corrupted or edited program"):
        memplan.from_torch(ep)


@pytest.mark.parametrize("dtype, size", [(HALF, 24), (BFLOAT16, 24)])
def test_a_factory_result_recorded_in_a_default_dtype_still_imports(tmp_path, dtype, size):
    """A forward that sets the default dtype records its ``ones`` so: the record is the trace-time default's word."""
    g = memplan.from_torch(_load(_edited(tmp_path, lambda tv: tv["ones"].update(dtype=dtype))))
    assert {t.id: t.size for t in g.tensors}["ones"] == size


class DefaultHalf(nn.Module):
    def forward(self, x):
        torch.set_default_dtype(torch.float16)
        try:
            return x + torch.ones(4, 3) + torch.arange(3.0) + torch.full((3,), 2)
        finally:
            torch.set_default_dtype(torch.float32)


def test_a_program_traced_under_a_half_default_still_imports(tmp_path):
    ep = torch.export.export(DefaultHalf(), (torch.randn(4, 3, dtype=torch.float16),))
    for program in (ep, _load(_edited(tmp_path, lambda tv: None, DefaultHalf()))):
        sizes = {t.id: (t.size, t.attrs["dtype"]) for t in memplan.from_torch(program).tensors}
        assert sizes["ones"] == (24, "float16") and sizes["arange"] == (6, "float16") and sizes["full"] == (24, "int64")


def test_an_unedited_program_still_imports(tmp_path):
    sizes = {t.id: t.size for t in memplan.from_torch(_load(_edited(tmp_path, lambda tv: None))).tensors}
    assert (sizes["ones"], sizes["zeros"], sizes["full"], sizes["full_1"], sizes["arange"]) == (48, 12, 12, 24, 24)
