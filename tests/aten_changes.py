"""What the ATen tests of changes after compile share: compile a CPU module, change a value, compare with eager.

Why one module: rounds 64e and 65 probe the same question (a value ``forward`` or a hook reads changed after compile:
the compiled call equals eager's or is refused, never silently the export's) with the same three helpers.
"""

from __future__ import annotations

import warnings

from needs import need

torch = need("torch")

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def compile_cpu(m, *args):
    """``m`` compiled for the CPU on one stream, poisoned arena, warnings quiet; its example inputs ``args``
    (``torch.ones(4)`` where none are given)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(m, args or (torch.ones(4),), streams=1, cuda_graph=False, poison=True, device="cpu")


def matches_eager_or_refused(m, change, calls=2):
    """Compile ``m``, change a value, and check each compiled call against eager's: equal, or refused."""
    x = torch.ones(3)
    cm = compile_cpu(m, x)
    for _ in range(calls):   # (the per-call watch by identity, ``hook_watch``, taken after the first call)
        assert torch.allclose(cm(x), m(x))
    change()
    want = m(x)
    try:
        got = cm(x)
    except AtenExecutorError:
        return
    assert torch.allclose(got, want), f"compiled {got.tolist()} where eager gave {want.tolist()}"


def ran_or_refused(m, change, x=None) -> str:
    """Compile ``m``, check two calls against eager, ``change()``, and compare the next call with eager's:
    "ran" (bitwise equal) or "refused" (our error); a silently different result fails."""
    x = torch.ones(3) if x is None else x
    step = compile_cpu(m, x)
    for _ in range(2):
        assert torch.equal(step(x), m(x))
    change()
    try:   # (the compiled call first: an eager call in between may set off a check that hides the hole)
        got = step(x)
    except AtenExecutorError:
        return "refused"
    want = m(x)
    assert torch.equal(got, want), f"compiled {got.tolist()} where eager gave {want.tolist()}"
    return "ran"


class Settings:
    """A plain settings object (no ``__init__``, no slots): what a user hangs configuration on."""


def settings_chain(depth: int):
    """A settings object ``depth`` objects deep to its tensor ``t`` (``cfg.a.a...t``, ``[2.0]``): (root, the last
    object). Rounds 66-68 move the tensor deeper than the guard's walk went, each round a little further."""
    root = cur = Settings()
    for _ in range(depth - 1):
        cur.a = Settings()
        cur = cur.a
    cur.t = torch.tensor([2.0])
    return root, cur


def seeded_linear():
    """A ``Linear(3, 3)`` of seed 0's weights."""
    torch.manual_seed(0)
    return torch.nn.Linear(3, 3)


def assert_hook_counts_as_eager(hook, reset, count):
    """A forward hook that counts in a class (``count()``, zeroed by ``reset()``) counts once for the export and once
    per eager call, never for the proofs' exports: the compiled calls (no hook) leave it alone."""
    lin = seeded_linear()
    lin.register_forward_hook(hook)
    x = torch.ones(3)
    reset()
    cm = compile_cpu(lin, x)
    assert count() == 1   # (the export's one call, as documented)
    lin(x)
    for _ in range(3):
        assert torch.allclose(cm(x), lin.forward(x))   # (``forward``: no hook, no count)
    assert count() == 2
