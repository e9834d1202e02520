"""Round 52: an in-place op whose node reads its written tensor again (``x.add_(x)``, ``torch.add(x, x, out=x)``,
``x.lerp_(x.flip(0), w)``) runs as eager when the plan puts its result apart from its input.

Why this holds (and what was asked): ``_lower_mutating`` compares an in-place result only with its partner input, not
with the node's other reads of that input's root. The importer gives a node an in-place pair only for a written
intermediate that is a whole root with no views (``translate``: ``simple``), so its other reads of that root are the
written tensor itself; a write into one view of a base while reading another (``x[0:4].add_(x[4:8])``) is imported
as a write where it stands (no pair), and overlapping ones (``x[0:6].copy_(x[2:8])``, ``x.index_add_(0, i, x)``)
torch itself refuses. With the result apart, the copy path rebinds every reference to the written tensor and the
functional path reads all of them before it writes: eager's bits either way.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from plan_mutators import plan_with_roots_apart  # noqa: E402
from torch import nn  # noqa: E402

import memplan  # noqa: E402
from runtime.aten import compile  # noqa: E402


class SelfRead(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def forward(self, a):
        x = a * 2
        if self.how == "add_":
            x.add_(x)
        elif self.how == "addcmul_":
            x.addcmul_(x, x, value=0.5)
        elif self.how == "out":
            torch.add(x, x, out=x)
        else:
            x.lerp_(x.flip(0), 0.3)
        return x + 1


@pytest.mark.parametrize("how", ["add_", "addcmul_", "out", "lerp_"])
def test_a_node_reading_its_written_tensor_again_runs_as_eager_with_its_result_apart(how):
    m = SelfRead(how)
    a = (torch.arange(32, dtype=torch.float32).reshape(8, 4) * 0.37).sin()
    c = compile(m, (a,), streams=1, poison=True)
    pairs = [n for n in c.graph.nodes if n.inplace]
    assert len(pairs) == 1   # (the case: a pair over a tensor the node reads twice)
    apart = compile(m, (a,), plan=plan_with_roots_apart(c.graph, c.plan), program=c.program, poison=True)
    memplan.verify(apart.graph, apart.plan)
    want = m(a.clone())
    for step in (c, apart):
        assert torch.equal(step(a.clone()), want)


def test_a_write_into_one_view_reading_another_is_no_in_place_pair():
    class Halves(nn.Module):
        def forward(self, a):
            x = a * 2
            x[0:4].add_(x[4:8])
            return x + 1

    a = torch.randn(8, 4)
    c = compile(Halves(), (a,), streams=1, poison=True)
    assert not any(n.inplace for n in c.graph.nodes)
    assert torch.equal(c(a.clone()), Halves()(a.clone()))
