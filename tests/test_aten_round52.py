"""Round 52 (aten52): the ATen executor against eager on the CPU.

Bugs fixed (each test failed before):
- a kernel failing mid-run (``embedding`` of an index out of range) raised after the launches before it had written
  the module's buffers in place (a train-mode BatchNorm's running statistics, ``num_batches_tracked``), while the
  caller's written inputs were left as they were: half a call. Now a failed call changes nothing the caller sees
  and its error names the node.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class WritesNormsLooksUp(nn.Module):
    """Writes its input, normalizes it in train mode (running statistics written in place), then looks up rows."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.e = nn.Embedding(5, 4)

    def forward(self, x, i):
        x.mul_(2)
        return self.bn(x) + self.e(i)


def _state(m: nn.Module) -> dict:
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("streams", [1, 2])
def test_kernel_failing_mid_run_leaves_module_and_inputs_as_they_were(streams):
    torch.manual_seed(0)
    m = WritesNormsLooksUp().train()
    twin = WritesNormsLooksUp().train()
    twin.load_state_dict(m.state_dict())
    step = compile(m, (torch.randn(3, 4), torch.tensor([0, 1, 2])), streams=streams, poison=True)
    before, x = _state(m), torch.randn(3, 4)
    x0 = x.clone()
    with pytest.raises(AtenExecutorError, match=r"node 'embedding' \(aten\.embedding\.default\): failed"):
        step(x, torch.tensor([0, 9, 2]))
    now = _state(m)
    assert all(torch.equal(now[k], before[k]) for k in before), [k for k in before if not torch.equal(now[k], before[k])]
    assert torch.equal(x, x0)
    # the next call is eager's, bit for bit, and so are the module's buffers after it
    for _ in range(2):
        x, i = torch.randn(3, 4), torch.tensor([4, 1, 0])
        xe = x.clone()
        want = twin(xe, i)
        assert torch.equal(step(x, i), want) and torch.equal(x, xe)
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), twin.state_dict().values()))
