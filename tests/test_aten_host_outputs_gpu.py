"""ATen executor on CUDA: an output eager returns on the CPU comes back on the CPU (marker ``gpu(backend="torch")``).

Every result of a compiled program lives in the device arena, so an output eager computed on the host (a loop
counter made with ``torch.zeros(())`` and carried through ``while_loop`` beside CUDA data, a table built from CPU
constants) came back as a CUDA tensor: equal values, another device, and ``torch.equal(out, eager_out)`` raised
"Expected all tensors to be on the same device" (the round-61 sweep's ``while_loop_carry`` on an H100).
"""

from __future__ import annotations

import pytest
from needs import need

pytestmark = pytest.mark.gpu(backend="torch")

torch = need("torch")
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


class CountedLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 6) * 0.3)

    def forward(self, x):
        from torch._higher_order_ops import while_loop

        n, h = while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, torch.tanh(h @ self.w)),
                          (torch.zeros((), dtype=torch.int64), x))
        return n, h, n


class HostTable(nn.Module):
    def forward(self, x):
        t = torch.arange(4) * 2          # CPU constants, CPU result in eager
        return x + 1, t, t


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.device == b.device, (a.device, b.device)
        assert a.dtype == b.dtype and torch.equal(a, b)
    else:
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("return_views", [False, True])
def test_a_host_loop_counter_comes_back_on_the_host(streams, return_views):
    torch.manual_seed(0)
    m = CountedLoop().cuda()
    x = torch.randn(3, 6, device="cuda")
    c = compile(m, (x,), streams=streams, cuda_graph=False, poison=True, return_views=return_views)
    for k in range(3):
        xk = x + k
        out, ref = c(xk.clone()), m(xk.clone())
        assert out[0].device.type == "cpu" and out[1].device.type == "cuda"
        _same(out, ref)
        assert out[0] is out[2]   # one eager tensor returned twice stays one object


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_a_table_of_host_constants_comes_back_on_the_host(cuda_graph):
    m = HostTable().cuda()
    x = torch.randn(5, device="cuda")
    c = compile(m, (x,), streams=3, cuda_graph=cuda_graph, poison=True)
    for k in range(3):
        out, ref = c(x + k), m(x + k)
        _same(out, ref)
        assert out[1] is out[2]
