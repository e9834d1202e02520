"""Round 74 (aten74): a compiled ``runtime.aten`` module called the way serving code calls it (CPU).

Bugs fixed (each test failed before):
- two programs compiled on one ``layout.SharedArena`` (``compile(..., shared_arena=sa)``, a public option) called from
  two threads ran at once over each other's intermediates (each executor's lock was its own; only
  ``compile_per_count`` took the shared arena's lock around its calls): 4 wrong results in 400, silently. Now every
  call of a program on a shared arena holds its lock.
"""

from __future__ import annotations

import threading

from needs import need

torch = need("torch")

from runtime.aten import compile  # noqa: E402
from runtime.aten.layout import SharedArena  # noqa: E402


class _Mlp(torch.nn.Module):
    def __init__(self, act: str) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)
        self.act = act

    def forward(self, x):
        return getattr(self.lin(x), self.act)() * 2


def test_calls_of_two_programs_on_one_shared_arena_wait_for_each_other():
    """A call of a program on a shared arena waits while another call on that arena runs (its lock held): before, a
    second program's call ran at once, writing the same bytes."""
    torch.manual_seed(0)
    arena = SharedArena()
    m1, m2 = _Mlp("relu").eval(), _Mlp("tanh").eval()
    x = torch.randn(8, 16)
    s1 = compile(m1, (x,), shared_arena=arena)
    s2 = compile(m2, (x,), shared_arena=arena)
    assert s1.executor.layout.arena.untyped_storage().data_ptr() == \
        s2.executor.layout.arena.untyped_storage().data_ptr()
    got: list = []
    worker = threading.Thread(target=lambda: got.append(s2(x)))
    with arena.lock:   # (as a call of s1 holds it while it runs)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "a call on the shared arena ran while another held it"
    worker.join(30)
    assert not worker.is_alive()
    assert torch.equal(got[0], m2(x))
    assert torch.equal(s1(x), m1(x))
