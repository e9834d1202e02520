"""Round 74 (models74b): non-LLM PyTorch models and hand-written ``nn`` modules through ``runtime.aten.compile`` on
the CPU, the defects found.

- An ``nn.RNN`` / ``LSTM`` / ``GRU`` compiled, then frozen in place (``rnn.requires_grad_(False)``, the usual step
  before inference), a weight replaced by one laid out alike (``rnn.weight_hh_l0 = nn.Parameter(...)``, which
  ``RNNBase.__setattr__`` mirrors into its ``_flat_weights`` list), ``share_memory()`` or ``double()`` then ``float()``
  was refused at every later call ("GRU._flat_weights[0] was replaced or changed its layout after compile ... keep it
  in a buffer"), where the same change of a ``Linear`` is followed: the guard watched torch's own mirror of the
  registered weights as a user's container of constants. The weights themselves are watched and rebound as any
  module's (``guard._held_tensors`` skips ``_flat_weights`` of an ``RNNBase``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _replace_weight(m: nn.Module) -> None:
    m.weight_hh_l0 = nn.Parameter(m.weight_hh_l0.detach() * 2)


def _double_and_back(m: nn.Module) -> None:
    m.double()
    m.float()


@pytest.mark.parametrize("change", [lambda m: m.requires_grad_(False), _replace_weight, lambda m: m.share_memory(),
                                    _double_and_back], ids=["frozen", "weight_replaced", "share_memory", "double_float"])
@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM])
def test_rnn_weights_changed_after_compile_are_followed(cls, change):
    torch.manual_seed(0)
    m = cls(4, 6, batch_first=True).eval()
    x = torch.randn(2, 3, 4)
    step = compile(m, (x,), streams=3)
    with torch.no_grad():
        assert torch.equal(step(x)[0], m(x)[0])
        change(m)
        for _ in range(2):
            got, want = step(x), m(x)
            assert torch.equal(got[0], want[0])
            assert torch.equal(got[1][0] if cls is nn.LSTM else got[1], want[1][0] if cls is nn.LSTM else want[1])


def test_rnn_weight_replaced_by_another_layout_is_still_refused():
    m = nn.GRU(4, 6, batch_first=True).eval()
    x = torch.randn(2, 3, 4)
    step = compile(m, (x,), streams=1)
    m.weight_hh_l0 = nn.Parameter(torch.randn(6, 18).t())
    with pytest.raises(AtenExecutorError, match=r"attribute GRU\.weight_hh_l0 is \(18, 6\) .*strides \(1, 18\)"):
        step(x)


class HeldRecurrent(nn.Module):
    """A GRU and an RNN held in a plain list (no submodules: torch.export lifts their parameters as detached
    constants), and a parameter held in a list that ``w @ x`` reads with a 3-D ``x``."""

    def __init__(self) -> None:
        super().__init__()
        self.rnns = [nn.GRU(4, 6, batch_first=True), nn.RNN(6, 3, batch_first=True)]
        self.ws = [nn.Parameter(torch.randn(5, 4))]

    def forward(self, x):
        y, _h = self.rnns[0](x)
        z, _g = self.rnns[1](y)
        return z, self.ws[0] @ x.transpose(-1, -2)


@pytest.mark.parametrize("grad", [False, True])
def test_held_modules_parameters_are_read_as_parameters(grad):
    """CPU ``gru``/``rnn_tanh`` kernels and ``matmul``'s folding read the weights' ``requires_grad``; the program read
    the export's detached constants of the held parameters, and each output was 1 ulp off eager's (6e-08)."""
    torch.manual_seed(0)
    m = HeldRecurrent()
    x = torch.randn(2, 3, 4)
    step = compile(m, (x,), streams=3)
    with torch.set_grad_enabled(grad):
        for k in range(2):
            got, want = step(x * (k + 1)), m(x * (k + 1))
            assert all(torch.equal(a, b) for a, b in zip(got, want))
        with torch.no_grad():
            m.rnns[0].weight_hh_l0.mul_(1.5)   # (an in-place change of a held weight still shows)
        assert all(torch.equal(a, b) for a, b in zip(step(x), m(x)))


_GLOBAL_GRU = nn.GRU(4, 6, batch_first=True)


class HeldElsewhere(nn.Module):
    """Parameters no submodule registers, reached otherwise than through a list: a settings object's field, an
    attribute set past ``nn.Module.__setattr__``, a global and a closure of ``forward``'s class."""

    def __init__(self) -> None:
        super().__init__()
        import types

        self.cfg = types.SimpleNamespace(w=nn.Parameter(torch.randn(5, 4)), rnn=nn.RNN(4, 3, batch_first=True))
        object.__setattr__(self, "hidden", nn.GRU(4, 2, batch_first=True))

    def forward(self, x):
        return (self.cfg.w @ x.transpose(-1, -2), self.cfg.rnn(x)[0], self.hidden(x)[0], _GLOBAL_GRU(x)[0],
                _closure_gru(x))


_closure_gru = (lambda g: (lambda x: g(x)[0]))(nn.GRU(4, 3, batch_first=True))
HeldElsewhere.closure = staticmethod(_closure_gru)   # (not forward's closure itself: one reached by a global)


def _with_closure():
    g = nn.GRU(4, 3, batch_first=True)

    class Closed(nn.Module):
        def forward(self, x):
            return (g(x)[0],)
    return Closed()


@pytest.mark.parametrize("make", [HeldElsewhere, _with_closure], ids=["fields_attributes_globals", "closure"])
def test_parameters_held_elsewhere_are_read_as_parameters(make):
    torch.manual_seed(0)
    m = make()
    x = torch.randn(2, 3, 4)
    step = compile(m, (x,), streams=1)
    for k in range(2):
        got, want = step(x * (k + 1)), m(x * (k + 1))
        assert all(torch.equal(a, b) for a, b in zip(got, want))


class Tail(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x)).relu()
        return {"feat": y, "pooled": y.mean((2, 3))}


@pytest.mark.parametrize("streams", [1, 3])
def test_graph_module_root_compiles_and_runs_its_hooks(streams):
    """A ``torch.fx.GraphModule`` root (``symbolic_trace``, torchvision's ``create_feature_extractor``, FX QAT's
    ``prepare_qat_fx``) was refused: torch.export runs it through ``torch.fx.Interpreter`` without calling it, and
    compile said "the export ran the module without calling it (this torch version calls its forward directly) ...
    compile with a torch whose export calls the module (as 2.1 to 2.14 do)" on torch 2.14. Now it compiles, its
    forward hooks run as eager runs them (the interpreter skipped them)."""
    torch.manual_seed(0)
    g = torch.fx.symbolic_trace(Tail().eval())
    g.register_forward_pre_hook(lambda m, a: (a[0] * 2,))
    g.register_forward_hook(lambda m, a, o: {**o, "pooled": o["pooled"] + 1})
    x = torch.randn(2, 3, 8, 8)
    step = compile(g, (x,), streams=streams)
    for k in range(2):
        got, want = step(x + k), g(x + k)
        assert got.keys() == want.keys() and all(torch.equal(got[n], want[n]) for n in want)


def test_graph_module_submodule_of_a_graph_module_is_no_root():
    """Only the root's interpreter run is its call: a GraphModule inside it runs as before."""
    torch.manual_seed(0)
    inner = torch.fx.symbolic_trace(nn.Sequential(nn.Linear(4, 4), nn.GELU()))
    outer = torch.fx.symbolic_trace(nn.Sequential(inner, nn.Linear(4, 2)))
    x = torch.randn(3, 4)
    step = compile(outer, (x,), streams=1)
    assert torch.equal(step(x), outer(x))
    assert torch.fx.Interpreter.run is torch.fx.Interpreter.__dict__["run"]   # (put back after the export)



def test_an_exported_programs_module_compiles():
    """``torch.export.export(m, args).module()`` (a GraphModule too) was refused the same way."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    gm = torch.export.export(Tail().eval(), (x,)).module()
    step = compile(gm, (x,), streams=1)
    got, want = step(x * 2), gm(x * 2)
    assert all(torch.equal(got[n], want[n]) for n in want)


class BiasedAttention(nn.Module):
    """SDPA with a mask computed from a parameter (a relative position bias, as Swin's in Mask2Former's backbone)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, 1, 16, 16))

    def forward(self, q, k, v):
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.bias * 1.0)


@pytest.mark.parametrize("streams", [1, 3])
def test_sdpa_mask_that_requires_grad_in_eager_runs_eagers_kernel(streams):
    """CPU SDPA picks its kernel by the mask's ``requires_grad``: under grad mode eager's mask (from a parameter)
    requires grad, the executor's arena view did not, and the call was up to 6e-07 off eager's bits."""
    torch.manual_seed(0)
    m = BiasedAttention()
    q, k, v = (t.clone() for t in torch.randn(3, 2, 2, 16, 8).unbind(0))
    step = compile(m, (q, k, v), streams=streams)
    for grad in (True, False, True):
        with torch.set_grad_enabled(grad):
            got = step(q, k, v)
            assert torch.equal(got, m(q, k, v)) and not got.requires_grad
    m.requires_grad_(False)   # (frozen: eager's mask requires no grad, under grad mode too)
    with torch.enable_grad():
        assert torch.equal(step(q, k, v), m(q, k, v))
