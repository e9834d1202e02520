"""Session 40's lead fixes, found by the H200 run of the session-39 sweep entries."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from runtime.aten import compile as aten_compile  # noqa: E402


class _EmbMaxNorm(torch.nn.Module):
    """``max_norm`` renormalises the embedding's weight in place (``embedding_renorm_``) at every call: a write to
    a leaf that requires grad, legal only under no_grad."""

    def __init__(self):
        super().__init__()
        self.e = torch.nn.Embedding(20, 8, max_norm=1.0)

    def forward(self, i):
        return self.e(i) * 2


def test_the_captured_path_runs_under_no_grad_where_a_weight_is_renormalised_in_place():
    """The capture's warm-ups ran under ``inference_mode(False)``, which turns grad mode back on: every captured
    call of an Embedding with ``max_norm`` failed ("a leaf Variable that requires grad is being used in an in-place
    operation") on CUDA. On the CPU the capture path is driven with the capture itself left out (the warm-ups and
    the grad mode are the same code)."""
    torch.manual_seed(0)
    ref = _EmbMaxNorm().eval()
    m = _EmbMaxNorm().eval()
    m.load_state_dict(ref.state_dict())
    i = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(1))
    c = aten_compile(m, (i,), cuda_graph=False)
    ex = c.executor
    seen = []
    ex.cuda_graph = True
    ex.issuer.capture = lambda: seen.append(torch.is_grad_enabled())
    ex.issuer.replay = ex.issuer.issue
    for k in range(3):
        x = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(2 + k))
        with torch.no_grad():
            want = ref(x)
        assert torch.equal(c(x), want)
    assert seen == [False]
    assert torch.equal(m.e.weight, ref.e.weight)   # renormalised as eager's

