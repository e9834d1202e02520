"""Round 50b: the ATen runtime's exact lowerings and call forms.

The exact lowerings compared strides exactly, so a tensor whose size-1 dimension has another stride (the same
elements at the same addresses) left the fast path; keyword calls on modules holding a ``torch.Generator``."""
from __future__ import annotations

import pytest
from needs import need, need_generator_export

torch = need("torch")

from runtime.aten.exact import exact_lowering  # noqa: E402


def _odd_size1(shape, dtype, stride0=999):
    """A tensor of ``shape`` (batch of one) over a bigger buffer, its batch dimension given stride ``stride0``."""
    n = 1
    for d in shape[1:]:
        n *= d
    buf = torch.full((n + 8,), -7, dtype=dtype)
    dense = torch.empty(shape, dtype=dtype).stride()
    return buf, buf.as_strided(tuple(shape), (stride0,) + tuple(dense[1:]), 4)


@pytest.mark.parametrize("odd", ["out", "indices", "both"])
def test_max_pool2d_fast_path_with_another_size1_stride(odd):
    """A max_pool2d output or planned indices whose batch-of-one dimension has another stride is laid out as the
    kernel writes it: the exact lowering runs (it returned None for the output, so the generic path ran) and the
    indices land in their planned bytes (they went to scratch); the bits are eager's."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    want, want_idx = torch.ops.aten.max_pool2d_with_indices.default(x, [2, 2], [2, 2])
    shape = tuple(want.shape)
    if odd in ("out", "both"):
        obuf, out = _odd_size1(shape, torch.float32)
    else:
        obuf, out = None, torch.empty(shape)
    if odd in ("indices", "both"):
        ibuf, idx = _odd_size1(shape, torch.int64, stride0=5)
    else:
        ibuf, idx = None, torch.empty(shape, dtype=torch.int64)
    named = {"self": x, "kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1],
             "ceil_mode": False}
    got = exact_lowering(torch, "max_pool2d", named, [out], "cpu", side={"indices": idx})
    assert got is not None and got[0] == "exact" and got[2] == 0
    kw = got[1].keywords
    assert kw["indices"].data_ptr() == idx.data_ptr() and kw["out"].data_ptr() == out.data_ptr()
    got[1]()
    assert torch.equal(out, want) and torch.equal(idx, want_idx)
    for buf in (obuf, ibuf):
        if buf is not None:   # nothing written outside the view's elements
            assert (buf[:4] == -7).all() and (buf[4 + want.numel():] == -7).all()


def test_max_pool2d_other_layout_still_refused():
    """An output laid out otherwise (channels last, more than one element per dimension) keeps the refusal."""
    x = torch.randn(2, 3, 8, 8)
    out = torch.empty(2, 4, 4, 3).permute(0, 3, 1, 2)
    named = {"self": x, "kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1],
             "ceil_mode": False}
    assert exact_lowering(torch, "max_pool2d", named, [out], "cpu") is None


class _Drawing(torch.nn.Module):
    """Draws from its own generators; ``extra`` and ``other`` are keywords of ``**kw`` (as transformers takes
    ``return_dict``): ``extra=None`` leaves the program as it is, ``other=True`` draws from ``g2``."""

    def __init__(self):
        super().__init__()
        self.g = torch.Generator().manual_seed(3)
        self.g2 = torch.Generator().manual_seed(4)

    def forward(self, x, **kw):
        g = self.g2 if kw.get("other") else self.g
        y = x + torch.rand(x.shape, generator=g)
        if kw.get("extra") is not None:
            y = y * kw["extra"]
        return y


def test_keyword_call_on_module_with_generator_is_eager():
    """``cm(x, extra=None)`` after a compile without it: exported again, the program is compile's (the lifted
    generator stands for the same ``self.g``), so the call runs and draws on as eager's does. It was refused
    ("forward gave another program"): the lifted copies are new objects at each export, compared by identity,
    and their input specs' text held each export's fake object address."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    from runtime.aten import compile

    torch.manual_seed(0)
    m, e = _Drawing(), _Drawing()
    x = torch.randn(5)
    cm = compile(m, (x,))
    assert torch.equal(cm(x), e(x))
    for kw in ({"extra": None}, {}, {"extra": None}, {}):
        assert torch.equal(cm(x, **kw), e(x, **kw))
    assert torch.equal(m.g.get_state(), e.g.get_state()) and torch.equal(m.g2.get_state(), e.g2.get_state())


@pytest.mark.parametrize("kw", [{"other": True}, {"extra": 2.0}])
def test_keyword_that_changes_generator_or_program_still_refused(kw):
    """A keyword that makes forward draw from another generator (``other=True``: ``self.g2``) or changes a node
    (``extra=2.0``) is another program: refused, and no generator advanced."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    from runtime.aten import compile
    from runtime.aten.callform import ExtraArguments

    m = _Drawing()
    x = torch.randn(5)
    cm = compile(m, (x,))
    cm(x)
    states = (m.g.get_state(), m.g2.get_state())
    with pytest.raises(ExtraArguments, match="another program"):
        cm(x, **kw)
    assert torch.equal(states[0], m.g.get_state()) and torch.equal(states[1], m.g2.get_state())


def test_lazy_clone_of_expanded_input_with_another_size1_stride():
    """``_lazy_clone`` of an expanded input into a result laid out alike but for a size-1 dimension's stride: the
    bytes the input spans are copied (it fell to ``out.copy_``, which refuses a destination whose elements share
    memory: a RuntimeError)."""
    x = torch.randn(1, 1, 4).expand(3, 1, 4)            # strides (0, 4, 1)
    buf = torch.zeros(8)
    out = buf.as_strided((3, 1, 4), (0, 1, 1), 2)       # the same elements, another stride in dimension 1
    got = exact_lowering(torch, "_lazy_clone", {"self": x}, [out], "cpu")
    assert got is not None and got[0] == "exact"
    got[1]()
    assert torch.equal(out, x) and (buf[:2] == 0).all() and (buf[6:] == 0).all()


class _DrawingLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.g = torch.Generator().manual_seed(3)
        self.l = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.l(x) + torch.rand(x.shape, generator=self.g)


def test_inert_hook_after_compile_on_module_with_generator_is_eager():
    """An inert forward hook added after compile is proven by exporting again (``_prove_calls``, the same
    ``same_program``): with a generator in the module, every call after it was refused ("the forward hooks of D.l
    changed after compile"); now each gives eager's bits and draws on as eager's does."""
    need_generator_export()   # (torch 2.11: export cannot take a torch.Generator)
    from runtime.aten import compile

    torch.manual_seed(0)
    m, e = _DrawingLinear(), _DrawingLinear()
    e.load_state_dict(m.state_dict())
    x = torch.randn(2, 4)
    cm = compile(m, (x,))
    assert torch.equal(cm(x), e(x))
    for mod in (m, e):
        mod.l.register_forward_hook(lambda mod, i, o: None)
    for _ in range(2):
        assert torch.equal(cm(x), e(x))
    assert torch.equal(m.g.get_state(), e.g.get_state())
