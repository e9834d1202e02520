"""Review of round 31 (b): the module guard of ``runtime.aten.compile`` against a module tensor whose layout
changes on the same object at the same address.

Before: the per-call check compared only the tensor objects and their ``data_ptr()``, so ``b.t_()`` (an in-place
transpose of a buffer), ``p.data = p.data.t()`` or ``p.data = p.data[:2]`` passed it, and the program went on
reading the tensor through the views and kernels it built for the old layout: a silently wrong result. Now
the guard also compares shapes, strides and dtypes, and such a change is an ``AtenExecutorError`` naming the
attribute (the same refusal a replacement laid out otherwise gets); freezing a tensor in place
(``requires_grad_(False)``) is still followed.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Reads(nn.Module):
    """A buffer read through views made at build time (a slice, a flat view) and a weight through a transpose."""

    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.randn(4, 4))
        self.w = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return x @ self.b[:, 1:] + self.b.reshape(-1)[:3] + (x @ self.w.t())[:, :3]


def _transpose_in_place(m):
    with torch.no_grad():
        m.b.t_()


def _data_transposed(m):
    m.w.data = m.w.data.t()


def _data_reinterpreted(m):
    m.b.data = m.b.data.view(torch.int32)


def _data_sliced(m):
    m.w.data = m.w.data[:2]


@pytest.mark.parametrize("streams", [1, 3, "auto"])
@pytest.mark.parametrize("change", [_transpose_in_place, _data_transposed, _data_reinterpreted, _data_sliced])
def test_same_address_new_layout_is_refused_naming_the_attribute(streams, change):
    torch.manual_seed(0)
    m = Reads().eval()
    x = torch.randn(3, 4)
    step = compile(m, (x,), streams=streams, poison=True)
    assert torch.equal(step(x), m(x))
    change(m)
    name = "Reads.b" if change in (_transpose_in_place, _data_reinterpreted) else "Reads.w"
    for _ in range(2):   # refused every call, never recorded as the new normal
        with pytest.raises(AtenExecutorError, match=name.replace(".", r"\.") + " is "):
            step(x)


@pytest.mark.parametrize("streams", [1, "auto"])
def test_freezing_in_place_still_runs(streams):
    torch.manual_seed(0)
    m = Reads().eval()
    x = torch.randn(3, 4)
    step = compile(m, (x,), streams=streams, poison=True)
    m.w.requires_grad_(False)
    m.b = torch.randn(4, 4)   # a replacement laid out alike sends the call through the slow path
    with torch.no_grad():
        assert torch.equal(step(x), m(x))
    assert step.rebinds == 1


class Held(nn.Module):
    """Constants held in a list and a dict attribute (export lifts them as it lifts a plain tensor attribute), and
    a parameter also held in a list."""

    def __init__(self):
        super().__init__()
        self.tables = [torch.randn(4)]
        self.d = {"a": [torch.randn(4)]}
        self.w = nn.Parameter(torch.randn(4))
        self.ws = [self.w]

    def forward(self, x):
        return x * self.tables[0] + self.d["a"][0] + self.ws[0]


def _replace_element(m):
    m.tables[0] = torch.randn(4)


def _replace_container(m):
    m.d = {"a": [torch.randn(4)]}


def _replace_nested(m):
    m.d["a"][0] = torch.randn(4)


def _untie_from_list(m):
    m.w = nn.Parameter(torch.randn(4))   # eager reads the old one through ws[0]


@pytest.mark.parametrize("streams", [1, 3, "auto"])
@pytest.mark.parametrize("change", [_replace_element, _replace_container, _replace_nested, _untie_from_list])
def test_a_tensor_held_in_a_container_replaced_is_refused(streams, change):
    torch.manual_seed(0)
    m = Held().eval()
    x = torch.randn(4)
    step = compile(m, (x,), streams=streams, poison=True)
    with torch.no_grad():
        assert torch.equal(step(x), m(x))
        m.tables[0].mul_(2)   # a change in place is read (no refusal)
        assert torch.equal(step(x), m(x))
    change(m)
    with pytest.raises(AtenExecutorError, match=r"Held\.(tables|d|ws)\["):
        step(x)
