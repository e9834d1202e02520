"""Round 69 (models69): torchvision and timm models through both torch paths (``runtime.aten.sweep_paths``), and
what they found.

- timm's hook-based feature extractors (``create_model(name, features_only=True, feature_cls="hook")``: every model
  whose ``forward_intermediates`` timm lacks falls back to them) were refused by ``compile``: ``FeatureHooks.
  get_output`` empties its per-device record with ``self._feature_outputs[device] = OrderedDict()`` in every call,
  and ``module_containers._inert`` took a fresh ``OrderedDict`` for an object eager's next call uses, where a fresh
  ``{}`` was a record of values and compiled. Now the dict kinds (and a deque) holding tensors and plain values are
  records as a dict is; one holding a count is still refused.
"""

from __future__ import annotations

import collections

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Taps:
    """timm's ``FeatureHooks`` in small: forward hooks record each tapped module's output per device into a
    ``kind()`` record, and ``get`` hands the record over and starts a fresh one."""

    def __init__(self, kind):
        self.kind = kind
        self.out = collections.defaultdict(kind)

    def hook(self, name):
        def record(_mod, _inp, out):
            self.out[out.device][name] = out
        return record

    def get(self, device):
        got = self.out[device]
        self.out[device] = self.kind()
        return got


class Tapped(nn.Module):
    """Two convolutions whose outputs ``forward`` returns through the taps (timm's ``FeatureHookNet``'s form)."""

    def __init__(self, kind):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)
        self.taps = Taps(kind)
        self.a.register_forward_hook(self.taps.hook("a"))
        self.b.register_forward_hook(self.taps.hook("b"))

    def forward(self, x):
        self.b(self.a(x).relu())
        return tuple(self.taps.get(x.device).values())


@pytest.mark.parametrize("kind", [dict, collections.OrderedDict])
@pytest.mark.parametrize("warm", [False, True], ids=["first-call", "after-eager"])
def test_feature_hooks_record_compiles(kind, warm):
    """Refused for ``OrderedDict`` before ("forward changes the attribute out of the Taps object ... in place"),
    compiled for ``dict``; now both compile and return eager's features bit for bit."""
    torch.manual_seed(0)
    m = Tapped(kind).eval()
    x = torch.randn(1, 3, 8, 8)
    if warm:   # (eager called first: the record holds the device's empty record already)
        with torch.no_grad():
            m(x)
    c = compile(m, (x,), streams=1, cuda_graph=False, poison=True)
    y = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        ref = m(y)
        out = c(y)
    assert len(out) == len(ref) == 2
    assert all(torch.equal(a, b) for a, b in zip(out, ref))


class Counted(nn.Module):
    """A fresh ``OrderedDict`` that holds a count each call: state eager's next call reads (still refused)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.state = {}

    def forward(self, x):
        n = self.state["calls"]["n"] + 1 if "calls" in self.state else 1
        self.state["calls"] = collections.OrderedDict(n=n)
        return self.lin(x) * n


def test_ordered_dict_holding_a_count_still_refused():
    with pytest.raises(AtenExecutorError, match="state"):
        compile(Counted().eval(), (torch.randn(2, 4),), streams=1, cuda_graph=False)


def test_sweep_paths_families_and_verdicts():
    """The sweep driver's own parts: which models it takes, batch 3 inputs, and which exception is a bug."""
    from memplan.errors import GraphError
    from runtime.aten import sweep_paths as sp

    fams = {c.name: sp.family(c) for c in sp.CASES}
    assert fams["resnet18"] == "torchvision" and fams["retinanet_head"] == "torchvision"
    assert fams["raft_small"] == "torchvision"   # (a lambda around the builder: left out before)
    assert fams["timm_vit_tiny"] == "timm" and fams["timm_tf_efficientnet_b0"] == "timm"
    assert fams.get("llama", "") == ""
    g = torch.Generator().manual_seed(0)
    x3 = sp.rebatched((torch.zeros(1, 3, 4, 4),), 3, g)
    assert x3 is not None and x3[0].shape == (3, 3, 4, 4)
    assert sp.rebatched((torch.zeros(1, 4, dtype=torch.long),), 3, g) is None
    assert sp.verdict_of(GraphError("torch.export failed for M: x")).startswith("EXPORT(")
    assert sp.verdict_of(AtenExecutorError("no")).startswith("REFUSED(")
    assert sp.verdict_of(KeyError("k")).startswith("CRASH(")
