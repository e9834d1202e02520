"""Which outputs a compiled program hands back on the host (``executor._host_outputs``), checked on the CPU.

On a GPU the executor returns each user output whose export value is a CPU tensor on the CPU
(tests/test_aten_host_outputs_gpu.py). Here every export value is a CPU tensor, so asking as if the program ran
on CUDA must name exactly the outputs held in the arena: never a weight, a constant or a returned input (those are
the module's or the caller's own objects), and its pairing of the export's outputs with ``Program.user_outputs``
must hold on programs with every kind of output, and with outputs that update buffers and inputs beside them.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.executor import _host_outputs  # noqa: E402


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4))
        self.register_buffer("seen", torch.zeros(4))

    def forward(self, x):
        self.seen.add_(x)            # a buffer update: an output of the export before the user outputs
        y = x * self.w
        return y, self.w, x, y.sum(), torch.arange(3) * 2, y


class InputWrite(nn.Module):
    def forward(self, x):
        x.mul_(2)                    # a user-input update: another non-user output of the export
        return x + 1


@pytest.mark.parametrize("make, kinds", [
    (Mixed, ["arena", "weight", "input", "arena", "arena", "arena"]),
    (InputWrite, ["arena"]),
])
def test_host_outputs_are_the_arena_outputs_when_asked_for_a_device(make, kinds):
    torch.manual_seed(0)
    c = compile(make(), (torch.randn(4),), streams=1)
    program = c.executor.program
    assert [k for k, _v in program.user_outputs] == kinds
    assert _host_outputs(torch, program, torch.device("cuda")) == tuple(i for i, k in enumerate(kinds) if k == "arena")
    assert _host_outputs(torch, program, torch.device("cpu")) == ()
