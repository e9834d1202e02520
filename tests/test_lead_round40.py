"""Session 40's lead fixes, found by the H200 run of the session-39 sweep entries."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from runtime.aten import compile as aten_compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


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



class _LayerDrop(torch.nn.Module):
    """MusicGen's and VITS' layerdrop: a draw at every layer, read only in training."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])
        self.layerdrop = 0.5

    def forward(self, x):
        import random

        for layer in self.layers:
            p = random.uniform(0, 1)
            if self.training and p < self.layerdrop:
                continue
            x = layer(x)
        return x


class _Scaled(torch.nn.Module):
    def forward(self, x):
        import math
        import random

        return x * math.exp(random.random())   # read by math.exp in C: no unread mark sees it


class _Branch(torch.nn.Module):
    def forward(self, x):
        import random

        return x * 2 if random.random() < 0.5 else x * 3


def _calls(fn, x, seed=5):
    import random

    random.seed(seed)
    out = [fn(x) for _ in range(3)]
    return out, random.getstate()


def test_an_unread_layerdrop_draw_compiles_and_leaves_random_where_eager_does():
    """aten40 refused every draw from ``random`` in forward, MusicGen's decoder too (bitwise before): its draw changes
    nothing in eval. Now taken, and each compiled call draws what eager's does (the same ``random`` state after)."""
    m = _LayerDrop().eval()
    x = torch.randn(2, 4)
    c = aten_compile(m, (x,))
    want, after_eager = _calls(m, x)
    got, after_compiled = _calls(c, x)
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    assert after_eager == after_compiled


@pytest.mark.parametrize("module", [_Scaled, _Branch])
def test_a_draw_the_program_reads_is_still_refused(module):
    with pytest.raises(AtenExecutorError, match="draws from random"):
        aten_compile(module().eval(), (torch.randn(2, 4),))


def test_the_second_export_refuses_a_draw_the_marks_missed(monkeypatch):
    """The second export is the backstop behind the marks: with the marks taken away (each draw handed back as the
    plain float), ``x * math.exp(random.random())`` is still refused because exporting again under other draws gives
    another constant; and, as the negative control, without that comparison too it compiles and every call gives the
    export's number."""
    from runtime.aten import host_random, sets

    plain = type("Plain", (float,), {})   # (a float C reads unmarked, as the first version's subclass)
    monkeypatch.setattr(host_random, "_UNREAD", {float: lambda value, draws: plain(value)})
    with pytest.raises(AtenExecutorError, match="draws from random"):
        aten_compile(_Scaled().eval(), (torch.ones(2, 4),))
    monkeypatch.setattr(sets, "same_program", lambda *a, **k: True)
    c = aten_compile(_Scaled().eval(), (torch.ones(2, 4),))
    first, second = c(torch.ones(2, 4)), c(torch.ones(2, 4))
    assert torch.equal(first, second)   # the baked number, where eager draws anew


def test_a_draw_read_in_c_is_marked():
    """review 40d: the first version's float subclass was read by C without a method call (``math.exp(p) > 1.6``),
    and the second export took the same branch often enough to compile silently wrong; the stand-in is read by C
    only through its methods."""
    import math

    from runtime.aten.host_random import _UNREAD, HostDraws

    reads = (math.exp, lambda p: "%.0f" % p, lambda p: p > 0.5, lambda p: 0.5 < p, float,  # noqa: UP031
             lambda p: isinstance(p, float))
    for read in reads:
        draws = HostDraws()
        read(_UNREAD[float](0.25, draws))
        assert draws.read, read
    draws = HostDraws()
    kept = _UNREAD[float](0.25, draws)   # stored, never looked at
    assert kept is not None and not draws.read
