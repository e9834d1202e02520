"""Round 38b: tensor attributes ``forward`` sets that the compiled calls cannot set (the fallback of
``sets.check_forward_sets``: exported again from the state a call leaves, ``forward`` gives another program).

Bugs fixed (each test marked "failed before" did): in the fallback nothing is set and each compiled call is the
export's call from the module as at compile, so a tensor attribute carrying state between calls ran silently wrong
from the second call on (an accumulator ``self.c = x + self.c`` returned ``x + c_at_compile`` at every call, a
first-call fill ``if self.h is None: self.h = x * 2`` returned ``x`` at every call); now refused naming it
(``sets.check_carried_state``). A non-plain, non-tensor attribute set beside a tensor one (``self.lin.seen =
x.shape`` beside ``self.taps = {...}``) made no attribute be set at all; now fixed values are set by each call
(``sets.fixed_sets``), others refused naming them.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

CARRIES = r"carries a tensor between calls through it"


def _public(m):
    return {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}


class Accumulates(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.zeros(4)

    def forward(self, x):
        self.c = x + self.c
        return self.c


class FillsOnce(nn.Module):
    def __init__(self):
        super().__init__()
        self.h = None

    def forward(self, x):
        if self.h is None:
            self.h = x * 2
            return x
        return x + self.h


class SubFillsOnce(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = FillsOnce()

    def forward(self, x):
        return self.body(x) * 3


class DrawsOnce(nn.Module):
    """A noise drawn at the first call and reused: a value of no input, but each compiled call would draw anew."""

    def __init__(self):
        super().__init__()
        self.noise = None

    def forward(self, x):
        if self.noise is None:
            self.noise = torch.randn(4)
        return x + self.noise


class CountsInTensor(nn.Module):
    """A counter kept in a plain tensor attribute: a value of no input, computed from its own."""

    def __init__(self):
        super().__init__()
        self.n = torch.zeros(())

    def forward(self, x):
        self.n = self.n + 1
        return x * self.n


@pytest.mark.parametrize("cls, match", [
    (Accumulates, r"forward sets Accumulates\.c to a tensor computed from (the call's inputs|its own value before)"),
    (FillsOnce, r"forward sets FillsOnce\.h to a tensor computed from the call's inputs"),
    (SubFillsOnce, r"forward sets SubFillsOnce\.body\.h to a tensor computed from the call's inputs"),
    (DrawsOnce, r"forward sets DrawsOnce\.noise to a tensor computed from a random op \(aten\.randn"),
    (CountsInTensor, r"forward sets CountsInTensor\.n to a tensor computed from its own value before the call"),
])
def test_a_tensor_attribute_carrying_state_between_calls_is_refused(cls, match):
    """Failed before: compiled, ``step.attrs == ()`` and every call was the export's call: ``Accumulates`` returned
    ``x + 0`` at every call where eager's sum grew, ``FillsOnce`` returned ``x`` where eager's second call returned
    ``x + h``. The module is left as it was."""
    m = cls()
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in _public(m).items()}
    with pytest.raises(AtenExecutorError, match=match) as err:
        compile(m, (torch.ones(4),), poison=True)
    assert CARRIES in str(err.value)
    now = _public(m)
    assert now.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(now[k], v) if isinstance(v, torch.Tensor) else now[k] is v


class LengthCache(nn.Module):
    """wav2vec2-conformer's rotary cache: a key and a table of the length alone (``type_as`` of the input reads its
    dtype, an eval dropout before it returns its input), filled at the first call, read by every later one."""

    def __init__(self):
        super().__init__()
        self.register_buffer("inv_freq", torch.tensor([1.0, 0.5]), persistent=False)
        self.key = None
        self.table = None
        self.drop = nn.Dropout(0.1).eval()

    def forward(self, x):
        h = self.drop(x)
        if self.key == h.shape[0] and self.table is not None:
            return h * self.table
        self.key = h.shape[0]
        t = torch.arange(h.shape[0], dtype=self.inv_freq.dtype)
        self.table = torch.outer(t, self.inv_freq).sum(-1).cos().type_as(h)
        return h * self.table


class SetsOneValue(nn.Module):
    """A tensor attribute set to one value at every call (a table of a weight)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4))
        self.table = None

    def forward(self, x):
        self.table = self.w * 2
        return x + self.table


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("warm", [False, True])
def test_a_cache_of_the_shapes_and_weights_alone_runs_as_eager(streams, warm):
    """Kept: a cache filled at the first call with a value of no call's data is computed by every compiled call as
    eager's later calls read it (the fallback: the module stays as at compile)."""
    m, e = LengthCache(), LengthCache()
    if warm:   # (an eager call first: the cache hit, nothing set)
        m(torch.randn(5))
    step = compile(m, (torch.randn(5),), streams=streams, poison=True)
    assert step.attrs == () and (m.key, m.table is None) == ((5, False) if warm else (None, True))
    for _ in range(3):
        x = torch.randn(5)
        assert torch.equal(step(x), e(x))


def test_a_tensor_attribute_set_to_one_value_is_set_by_each_call():
    m, e = SetsOneValue(), SetsOneValue()
    e.load_state_dict(m.state_dict())
    step = compile(m, (torch.randn(4),), poison=True)
    assert [name for _o, _k, name in step.attrs] == ["SetsOneValue.table"]
    for _ in range(3):
        x = torch.randn(4)
        assert torch.equal(step(x), e(x)) and torch.equal(m.table, e.table)


def test_wav2vec2_conformer_rotary_cache_is_taken():
    """The sweep's ``wav2vec2_conformer`` (tiny, CPU): its rotary cache is ``type_as`` of the hidden states after an
    eval dropout; compiled == eager over 3 calls."""
    transformers = need("transformers")
    cfg = transformers.Wav2Vec2ConformerConfig(
        position_embeddings_type="rotary", conv_depthwise_kernel_size=3, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    m = transformers.Wav2Vec2ConformerModel(cfg).eval()
    e = transformers.Wav2Vec2ConformerModel(cfg).eval()
    e.load_state_dict(m.state_dict())
    with torch.no_grad():
        step = compile(m, (torch.randn(1, 200),), poison=True)
        for _ in range(3):
            x = torch.randn(1, 200)
            assert torch.equal(step(x).last_hidden_state, e(x).last_hidden_state)


class SeenBesideTaps(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        self.lin.seen = x.shape
        self.shapes = [x.shape, (x.dtype, x.device)]
        y = self.lin(x)
        self.taps = {"y": y}
        return y * 2


@pytest.mark.parametrize("streams", [1, 3])
def test_a_fixed_value_beside_a_tensor_attribute_is_set_by_each_call(streams):
    """Failed before: ``seen`` (a ``torch.Size``, no plain value) made no attribute be set at all: ``m.taps`` and
    ``m.lin.seen`` were never made, where eager's calls set them."""
    m, e = SeenBesideTaps(), SeenBesideTaps()
    e.load_state_dict(m.state_dict())
    step = compile(m, (torch.randn(2, 4),), streams=streams, poison=True)
    held = []
    for _ in range(3):
        x = torch.randn(2, 4)
        assert torch.equal(step(x), e(x))
        assert type(m.lin.seen) is torch.Size and m.lin.seen == e.lin.seen
        assert m.shapes == e.shapes and torch.equal(m.taps["y"], e.taps["y"])
        held.append(m.shapes)
    assert held[0] is not held[1]   # a list of its own at each call, as eager makes


class Box:
    def __init__(self, v):
        self.v = v


class SetsAnObject(nn.Module):
    def forward(self, x):
        y = x * 2
        self.box = Box(3)
        self.taps = [y]
        return y


class SetsAMixedList(nn.Module):
    def forward(self, x):
        y = x * 2
        self.mixed = [None, y]
        return y + 1


@pytest.mark.parametrize("cls, match", [
    (SetsAnObject, r"forward sets SetsAnObject\.box to a Box \(neither a plain value"),
    (SetsAMixedList, r"forward sets SetsAMixedList\.mixed to a list"),
])
def test_another_object_forward_sets_is_refused_naming_it(cls, match):
    """Failed before: compiled, no call set it (nor ``taps`` beside it), silently."""
    m = cls()
    with pytest.raises(AtenExecutorError, match=match):
        compile(m, (torch.randn(4),), poison=True)
    assert _public(m) == {}
