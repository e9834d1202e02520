"""Round 70b: small integer buffers read as Python numbers (EnCodec's and Mimi's conv padding) export as constants.

Before, ``register_buffer("pad", torch.tensor(3), persistent=False)`` read into ``F.pad`` was a data-dependent size:
``from_torch`` and ``runtime.aten.compile`` both refused the module ("Could not guard on data-dependent expression").
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


class IntPad(nn.Module):
    """A conv padded by a 0-dim int64 buffer, as EnCodec's ``EncodecConv1d`` is (and branching on it, ``_pad1d``)."""

    def __init__(self, pad: int = 3) -> None:
        super().__init__()
        self.register_buffer("pad", torch.tensor(pad, dtype=torch.int64), persistent=False)
        self.conv = nn.Conv1d(2, 2, 3)

    def forward(self, x):
        x = nn.functional.pad(x, (self.pad, self.pad))
        if x.shape[-1] <= self.pad:
            x = x * 2
        return self.conv(x)


class Assigned(IntPad):
    """The buffer assigned in ``__init__`` (``self.pad = nn.Buffer(...)``, EnCodec's way): ``__init__`` is no writer."""

    def __init__(self) -> None:
        super().__init__()
        del self.pad
        self.pad = nn.Buffer(torch.tensor(3, dtype=torch.int64), persistent=False)


class Counted(IntPad):
    """The same, but forward writes the buffer: it must stay a buffer (refused as before)."""

    def forward(self, x):
        self.pad.add_(0)
        return super().forward(x)


def _x():
    return torch.randn(1, 2, 8)


@pytest.mark.parametrize("cls", [IntPad, Assigned])
def test_from_torch_plans_int_buffer_padding(cls) -> None:
    m = cls().eval()
    graph = memplan.from_torch(m, (_x(),))
    memplan.plan(graph)   # (verified before it is returned)
    pads = [n for n in graph.nodes if "pad" in n.op]
    assert pads, [n.op for n in graph.nodes]
    # the module is put back as it was: its class, its buffer (non-persistent still)
    assert type(m) is cls and list(m._buffers) == ["pad"] and "pad" in m._non_persistent_buffers_set
    assert "pad" not in m.__dict__ and "pad" not in m.state_dict()


def test_written_buffer_still_refused() -> None:
    m = Counted().eval()
    with pytest.raises(GraphError, match="data-dependent"):
        memplan.from_torch(m, (_x(),))
    assert type(m) is Counted and list(m._buffers) == ["pad"]


def test_written_buffer_still_refused_by_runtime() -> None:
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = Counted().eval()
    with pytest.raises(AtenExecutorError, match=r"Counted\.pad"):
        compile(m, (_x(),))
    assert type(m) is Counted and list(m._buffers) == ["pad"]


@pytest.mark.parametrize("change", ["in_place", "replaced"])
def test_runtime_compiles_and_guards_int_buffer(change: str) -> None:
    """runtime.aten exports the buffer as a constant and watches it: changed in place (its version) or replaced
    (its slot in ``_buffers``) after compile, the call is refused naming it, not run on the old value."""
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = IntPad().eval()
    x = _x()
    c = compile(m, (x,))
    assert torch.equal(c(x), m(x))
    assert type(m) is IntPad and list(m._buffers) == ["pad"] and "pad" in m._non_persistent_buffers_set
    if change == "in_place":
        m.pad.fill_(1)
    else:
        m.pad = torch.tensor(1)
    with pytest.raises(AtenExecutorError, match=r"IntPad\.pad"):
        c(x)


@pytest.mark.parametrize("name", ["encodec", "mimi"])
def test_audio_codecs_planned(name: str) -> None:
    """The sweep's smallest EnCodec and Mimi (round 70's refusals): imported and planned (~4 and ~7 s on CPU)."""
    pytest.importorskip("transformers")
    from runtime.aten.sweep_models60 import MODELS60

    case = next(c for c in MODELS60 if c[0] == name)
    torch.manual_seed(0)
    m = case[1]().eval()
    x = case[2](torch.Generator().manual_seed(1), "cpu", torch.float32)
    classes = [type(sub) for sub in m.modules()]
    buffers = [(k, v) for k, v in m.named_buffers()]
    graph = memplan.from_torch(m, tuple(x))
    memplan.plan(graph)
    assert [type(sub) for sub in m.modules()] == classes   # (put back as it was)
    now = list(m.named_buffers())
    assert [k for k, _v in now] == [k for k, _v in buffers] and all(a is b for (_k, a), (_j, b) in zip(now, buffers))
