"""Round 30 of the torch importer: a dynamic program's range constraints bind the sizes it is specialized to.

A ``Dim`` with ``min=2`` (torch's own default lower bound) took an example size of 1: re-exporting
``ep.module()`` checks a size above ``max`` but not that one, so a program traced for sizes >= 2 was planned
(and run by the ATen executor) at size 1. Every size outside the range is now a GraphError naming the input,
the dimension and the range, in memory, from a ``.pt2`` and in the CLI (exit 2, one line)."""

from __future__ import annotations

import pytest
from cli_contract import assert_bad_input, run_memplan
from needs import need

torch = need("torch")

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


class Sums(torch.nn.Module):
    def forward(self, x, y):
        return (x * 2).sum(0) + y.sum(0)


def _dynamic(lo: int, hi: int | None = None):
    batch = torch.export.Dim("batch", min=lo, **({"max": hi} if hi is not None else {}))
    return torch.export.export(Sums(), (torch.randn(4, 8), torch.randn(4, 8)),
                               dynamic_shapes={"x": {0: batch}, "y": {0: batch}})


@pytest.mark.parametrize("lo,hi,size,shown", [(2, None, 1, r"\[2, inf\]"), (2, 64, 1, r"\[2, 64\]"),
                                              (2, 64, 65, r"\[2, 64\]"), (3, None, 2, r"\[3, inf\]")])
def test_a_size_outside_the_range_is_refused_naming_input_and_dimension(lo, hi, size, shown):
    ep = _dynamic(lo, hi)
    with pytest.raises(GraphError, match=rf"input 'x' dimension 0 is {size}, outside the exported program's "
                                         rf"range {shown}"):
        memplan.from_torch(ep, (torch.randn(size, 8), torch.randn(size, 8)))


def test_sizes_inside_the_range_still_specialize():
    g = memplan.from_torch(_dynamic(2, 64), (torch.randn(2, 8), torch.randn(2, 8)))
    assert g.tensor("x").attrs["shape"] == [2, 8]


def test_the_executor_and_the_cli_refuse_it_from_a_saved_program(capsys, tmp_path):
    """The CLI's ``main`` in-process: a subprocess spent its time importing torch again (the process boundary of
    ``import`` is tests/test_onnx_round31_constant_inits.py's)."""
    from runtime.aten import compile
    path = tmp_path / "dyn.pt2"
    torch.export.save(_dynamic(2), str(path))
    loaded = torch.export.load(str(path))
    with pytest.raises(GraphError, match="input 'x' dimension 0 is 1"):
        compile(loaded, (torch.randn(1, 8), torch.randn(1, 8)), streams=1)
    code, _out, err = run_memplan(capsys, ["import", path, "--batch", "1", "-o", tmp_path / "g.json"])
    assert_bad_input(code, err, "--batch 1: makes the dynamic dimension x.0 (torch's s")
    assert not (tmp_path / "g.json").exists()
