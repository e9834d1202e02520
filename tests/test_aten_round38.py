"""Round 38: the ATen executor where ``forward``'s results or writes are not plain tensors in planned memory.

Bugs fixed (each test marked "failed before" did): an output that is a ``torch.Size`` (``return y, x.shape``) came
back as a plain tuple (torch's pytree node for ``Size`` unflattens to one); a tensor attribute ``forward`` sets
(``self.last = y``) was never set by the compiled calls, where eager's leave this call's ``y``; writes that bypass
``nn.Module.__setattr__`` (``object.__setattr__``, ``self.__dict__[...] =``, ``del self.attr``) were never seen by
compile and ran silently wrong; the second export of a ``forward`` that sets plain attributes ran its hooks again.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3]


def _same(a, b):
    """``a`` and ``b`` equal bit for bit, of the same types all the way down (a ``torch.Size`` is no tuple)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(a, b) or (a.isnan() == b.isnan()).all() and torch.equal(a.nan_to_num(), b.nan_to_num())
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    else:
        assert a == b


class Shapes(nn.Module):
    def forward(self, x):
        return x + 1, x.shape, (x.shape, 3), x.size(), x.shape[1:], {"s": x[0].shape}


@pytest.mark.parametrize("streams", STREAMS)
def test_a_shape_output_is_a_torch_size(streams):
    """Failed before: ``x.shape`` came back as ``(3, 4)``, a tuple, where eager returns ``torch.Size([3, 4])``."""
    m = Shapes()
    x = torch.randn(3, 4)
    step = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        _same(step(x), m(x))
