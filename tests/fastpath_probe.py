"""What eager PyTorch does with an eval attention call, for the tests of ``runtime.aten.fastpath``.

Why a module: the fast-path tests (tests/test_aten_round53*.py) judge the executor's verdict against what eager
really calls, so both need the same recording of torch's fused kernels and the same grad modes by name."""

from __future__ import annotations

import contextlib

from needs import need

torch = need("torch")

#: torch's fused kernels of the eval fast path: MultiheadAttention's and TransformerEncoderLayer's
FUSED = ("_native_multi_head_attention", "_transformer_encoder_layer_fwd")


@contextlib.contextmanager
def fused_calls():
    """The names of ``FUSED`` kernels eager calls inside the block, in call order (torch's own functions wrapped)."""
    seen: list[str] = []
    was = {n: getattr(torch, n) for n in FUSED}

    def wrap(n):
        def f(*a, **k):
            seen.append(n)
            return was[n](*a, **k)
        return f

    for n in FUSED:
        setattr(torch, n, wrap(n))
    try:
        yield seen
    finally:
        for n in FUSED:
            setattr(torch, n, was[n])


def grad_mode(name: str):
    """The context of a grad mode by name: ``"grad"``, ``"no_grad"`` or ``"inference"``."""
    return {"grad": contextlib.nullcontext, "no_grad": torch.no_grad, "inference": torch.inference_mode}[name]()


class Three(torch.nn.Module):
    """An eval-able attention given the root's three inputs as its query, key and value."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.MultiheadAttention(12, 2, batch_first=True)

    def forward(self, q, k, v):
        return self.a(q, k, v)[0]
