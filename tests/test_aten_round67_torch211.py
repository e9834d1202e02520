"""Round 67: torch 2.11 (the GPU machine's torch) against the CPU suite: its fake ``lstm`` (CPU).

torch 2.11's lstm decomposition, which a non-strict export records ``aten.lstm.input``'s results with, squeezes
the wrong dimension of each layer's hidden state (``hx.squeeze(1)``; torch 2.14's is ``squeeze(0)``): ``h_n`` and
``c_n`` of a bidirectional ``nn.LSTM`` on a batch of 2 were recorded ``(2, 1, 2, 6)`` where the kernel returns
``(2, 2, 6)``, and the executor refused the module ("the op's fake implementation disagrees with its kernel";
tests/test_aten_round52b.py's lstm tests failed there). The importer records them at ``hx``'s shapes
(``memplan.importers.torch.lstm_meta``). CI's torch has the fix, so the tests put 2.11's squeeze back.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


def _squeeze_as_torch_211(monkeypatch) -> None:
    """torch 2.11's ``one_layer_lstm``: the final ``(1, B, H)`` hidden state squeezed at 1, not 0."""
    import torch._decomp.decompositions as dec

    real = dec.one_layer_lstm

    def one_layer_lstm_211(*args, **kwargs):
        out, (h, c) = real(*args, **kwargs)
        return out, (h.unsqueeze(0).squeeze(1), c.unsqueeze(0).squeeze(1))

    monkeypatch.setattr(dec, "one_layer_lstm", one_layer_lstm_211)


class _Recurrent(nn.Module):
    def __init__(self, proj: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True, bidirectional=True, proj_size=proj)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return y, h, c


@pytest.mark.parametrize("proj", [0, 3])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("as_211", [False, True])
def test_an_lstm_compiles_and_equals_eager_under_either_fake_squeeze(monkeypatch, as_211, batch, proj):
    if as_211:
        _squeeze_as_torch_211(monkeypatch)
    torch.manual_seed(0)
    m = _Recurrent(proj)
    x = torch.randn(batch, 5, 4)
    step = compile(m, (x,), streams=2, cuda_graph=False, poison=True, device="cpu")
    for k in range(2):
        got, want = step(x + k), m(x + k)
        assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]
        assert all(torch.equal(a, b) for a, b in zip(got, want))
