"""Review of round 37's train-mode norm writes in the torch importer.

Bug fixed (failed before): ``torch.batch_norm_update_stats(x, rm, rv, momentum)`` updates ``rm``/``rv`` in place
(its schema declares no write, like train-mode ``batch_norm``'s) but was not in the importer's table of undeclared
statistics writes: statistics given as inputs were never written back to the caller's tensors (eager's were), and
nothing ordered a later reader of them after the update, silently.
"""

from __future__ import annotations

import copy

import pytest
from needs import need

torch = need("torch")

from test_torch_round37 import StatsOfIntermediates, _x  # noqa: E402
from torch import nn  # noqa: E402

from memplan import from_torch  # noqa: E402
from runtime.aten import compile  # noqa: E402


class UpdatesIntermediates(StatsOfIntermediates):
    """Round 37's running statistics of intermediates, updated by ``batch_norm_update_stats``."""

    def forward(self, x):
        rm, rv = self.m.clone(), self.v.clone()
        mean, invstd = torch.batch_norm_update_stats(x, rm, rv, 0.5)
        return mean * invstd, rm * 1 + x.sum().sin()


class UpdatesInputs(nn.Module):
    def forward(self, x, rm, rv):
        mean, invstd = torch.batch_norm_update_stats(x, rm, rv, 0.5)
        return mean + invstd


class NoStatistics(nn.Module):
    def forward(self, x):
        mean, invstd = torch.batch_norm_update_stats(x, None, None, 0.5)
        return mean + invstd


def test_the_update_is_a_write_a_later_reader_follows():
    g = from_torch(UpdatesIntermediates(), (_x((16, 4)),))
    upd = next(n for n in g.nodes if n.op == "batch_norm_update_stats")
    writes = [t for t in upd.outputs if ".writes." in t]
    assert sorted(g.tensor(t).view_of for t in writes) == ["clone", "clone_1"]
    mul = next(n for n in g.nodes if n.op.startswith("mul") and any("writes" in t for t in n.inputs))
    assert "batch_norm_update_stats.writes.clone" in mul.inputs
    assert not any(".writes." in t.id for t in from_torch(NoStatistics(), (_x((16, 4)),)).tensors)


@pytest.mark.parametrize("streams", [1, 3])
def test_statistics_given_as_inputs_are_updated_in_the_callers_tensors(streams):
    x = _x((16, 4))
    stats = [torch.zeros(4), torch.ones(4)], [torch.zeros(4), torch.ones(4)]
    c = compile(UpdatesInputs(), (x, torch.zeros(4), torch.ones(4)), streams=streams, poison=True)
    assert torch.equal(c(x, *stats[0]), UpdatesInputs()(x, *stats[1]))
    assert all(map(torch.equal, *stats))


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("cls", [UpdatesIntermediates, NoStatistics])
def test_outputs_are_eagers(cls, streams):
    m, x = cls(), _x((16, 4))
    ref = copy.deepcopy(m)(x.clone())
    out = compile(m, (x.clone(),), streams=streams, poison=True)(x.clone())
    ref, out = (ref, out) if isinstance(ref, tuple) else ((ref,), (out,))
    assert all(torch.equal(a, b) for a, b in zip(out, ref))
