"""Round 38, after the sweep: a ``forward`` that sets a tensor attribute and holds a 0-dim constant of more than one
byte per element (raft_small's correlation pyramid beside its integer scalars) failed every compile on the CPU
and the GPU ("self.dim() cannot be 0 to view Long as Byte"): the second export's constant comparison
(``callform._same_tensor``) viewed the 0-dim tensors as bytes. It compares bits with ``runtime.bits`` now."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.callform import _same_tensor  # noqa: E402


class KeepsLastWithScalar(nn.Module):
    """Sets a tensor attribute each call (a second export proves it) and lifts a 0-dim int64 constant."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.last = torch.zeros(1)

    def forward(self, x):
        y = self.lin(x) * torch.tensor(3)
        self.last = y.sum(dim=0)
        return y


@pytest.mark.parametrize("streams", [1, 3])
def test_a_tensor_attribute_beside_a_0_dim_constant_compiles_and_is_set(streams):
    torch.manual_seed(0)
    eager, m = KeepsLastWithScalar().eval(), KeepsLastWithScalar().eval()
    m.load_state_dict(eager.state_dict())
    step = compile(m, (torch.randn(2, 4),), streams=streams)   # failed before: the 0-dim view as bytes
    for k in range(3):
        x = torch.randn(2, 4) + k
        assert torch.equal(step(x.clone()), eager(x.clone()))
        assert torch.equal(m.last, eager.last)


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32, torch.float16, torch.bool, torch.complex64])
def test_0_dim_constants_compare_by_their_bits(dtype):
    a = torch.tensor(1, dtype=dtype)
    assert _same_tensor(a, a.clone())
    assert not _same_tensor(a, torch.tensor(0, dtype=dtype))
    assert not _same_tensor(a, a.reshape(1))
    nan = torch.tensor(float("nan"))
    assert _same_tensor(nan, nan.clone())   # the same bits, though NaN != NaN
