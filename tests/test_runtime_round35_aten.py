"""Round 35 (runtime review), the ATen executor's arena: a plan of alignment above torch's own (a given
``plan=`` made with ``memplan plan --alignment 4096``) gets an arena whose base is that aligned, so every tensor
lies where the plan aligned it (docs/format.md); it ran them 64 bytes off their boundary on the CPU."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from aten_models import CNN, MLP  # noqa: E402

import memplan  # noqa: E402
from memplan.schedule import schedule_of  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _arena_roots(c) -> list[str]:
    g = c.graph
    return [t.id for ti, t in enumerate(g.tensors) if g.is_root(ti) and g.in_arena(ti) and t.size]


@pytest.mark.parametrize("alignment", [4096, 1 << 16])
@pytest.mark.parametrize("streams", [1, 3])
def test_a_plan_aligned_above_torchs_allocation_gets_an_aligned_arena(alignment, streams):
    torch.manual_seed(0)
    for m, x in ((MLP().eval(), torch.randn(4, 32)), (CNN().eval(), torch.randn(2, 3, 32, 32))):
        c = compile(m, (x,), streams=streams)
        p = memplan.plan(c.graph, schedule_of(c.plan), alignment=alignment)   # the same schedule, realigned
        assert p.alignment == alignment
        a = compile(m, (x,), plan=p, program=c.program, poison=True)
        views = a.executor.layout.views
        off = {t: views[t].data_ptr() % alignment for t in _arena_roots(a)}
        assert all(v == 0 for v in off.values()), {t: v for t, v in off.items() if v}
        with torch.no_grad():
            want = m(x)
        assert torch.equal(a(x), want)



@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("alignment", [4096, 1 << 21])
def test_a_plan_aligned_above_the_caching_allocators_512_gets_an_aligned_cuda_arena(alignment):
    """On CUDA torch's caching allocator hands out 512-byte-aligned blocks: the arena base is aligned above it,
    the tensors lie on the plan's alignment, and the 3-stream plan gives the 256-aligned plan's bits."""
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.manual_seed(0)
    m, x = CNN().eval().cuda(), torch.randn(2, 3, 32, 32, device="cuda")
    c = compile(m, (x,), streams=3, poison=True)
    a = compile(m, (x,), plan=memplan.plan(c.graph, schedule_of(c.plan), alignment=alignment), program=c.program,
                poison=True)
    views = a.executor.layout.views
    assert [t for t in _arena_roots(a) if views[t].data_ptr() % alignment] == []
    assert torch.equal(a(x), c(x))
    with torch.no_grad():
        torch.testing.assert_close(a(x), m(x), rtol=1e-4, atol=1e-4)
