"""Round 40: models and usage patterns the sweep did not hold (transformers task heads, composite vision-language
models, ``torch.nn`` patterns), run as the sweep runs them (CPU, 1 stream and ``streams="auto"``, two calls on fresh
inputs against eager, the arena NaN-poisoned), and planned through ``memplan.from_torch`` + ``plan`` + ``verify``.

The one bug found (docs/aten.md, "Models the list did not hold (session 40)"): ``compile`` of a module that calls
``flex_attention`` (or ``torch.vmap``) was refused ("torch.vmap inside the program ... import the decomposed
program (from_torch(..., decompose=True), ...)": flex_attention builds its default block mask under a vmap), advice
``compile`` has no option for; compile now lowers such a program's vmap (``run_decompositions({})``: its batched
ops become plain ATen ops, every other op as exported) and runs it bitwise eager.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, sweep  # noqa: E402

MODES = [("s1", 1, False), ("auto", "auto", False)]
BY_NAME = {c.name: c for c in sweep.CASES}


def _verdicts(name: str) -> dict[str, str]:
    """``{mode: verdict}`` of one sweep case on the CPU, as ``python -m runtime.aten.sweep --only NAME`` prints."""
    got: dict[str, str] = {}
    sweep.run_case(BY_NAME[name], torch.device("cpu"), MODES, lambda _n, mode, verdict, _t, **_kw:
                   got.__setitem__(mode, verdict))
    return got


class FlexCausal(nn.Module):
    """Self-attention through ``flex_attention`` with a causal ``score_mod`` (no block mask: flex_attention builds
    its default one under ``torch.vmap``), and one with a ``create_block_mask`` mask."""

    def __init__(self, block_mask: bool):
        super().__init__()
        self.qkv, self.block_mask = nn.Linear(32, 96), block_mask

    def forward(self, x):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 4, 8).permute(2, 0, 3, 1, 4)
        if self.block_mask:
            bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, t, t, device=x.device)
            return flex_attention(q, k, v, block_mask=bm)
        return flex_attention(q, k, v, score_mod=lambda s, b, h, qi, ki: torch.where(qi >= ki, s, -float("inf")))


class Vmapped(nn.Module):
    """A per-example function under ``torch.vmap`` (a matrix-vector product and a pointwise op)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        return torch.vmap(lambda r: (self.w @ r).sin() * 2)(x)


@pytest.mark.parametrize("make,shape", [(lambda: FlexCausal(False), (2, 16, 32)), (lambda: FlexCausal(True), (2, 16, 32)),
                                        (Vmapped, (4, 6))], ids=["flex_score_mod", "flex_block_mask", "vmap"])
def test_a_program_with_a_vmap_compiles_and_equals_eager(make, shape):
    torch.manual_seed(0)
    m = make().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for streams in (1, "auto"):
            step = compile(m, (torch.randn(*shape, generator=g),), streams=streams, poison=True)
            for _ in range(2):
                x = torch.randn(*shape, generator=g)
                assert torch.equal(step(x), m(x))
