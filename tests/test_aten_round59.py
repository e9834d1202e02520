"""Round 59 (aten59): torchvision, timm and torchaudio models run on the CPU for the first time here (the sweep's
entries and ~60 new ones), and round 58's open sub-container return.

Bugs fixed (each test failed before):
- a container held inside an argument and returned on its own (``return y, state["inner"]``) came back as a new
  container holding the same leaves, where eager returns the caller's ``state["inner"]``.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from runtime.aten import compile  # noqa: E402


class ReturnsInner(torch.nn.Module):
    def forward(self, x, state):
        return x * state["inner"]["s"], state["inner"], state["pairs"][1]


@pytest.mark.parametrize("streams", [1, 3])
def test_a_container_inside_an_argument_returned_on_its_own_is_the_callers(streams):
    """``return y, state["inner"]``: eager's second output is the caller's ``state["inner"]`` (a tuple inside a list
    too); before, a new dict and a new tuple."""
    example = {"inner": {"s": torch.ones(3)}, "pairs": [(torch.ones(3),), (torch.ones(3), torch.ones(3))]}
    step = compile(ReturnsInner(), (torch.randn(3), example), streams=streams, cuda_graph=False)
    state = {"inner": {"s": torch.full((3,), 2.0)}, "pairs": [(torch.ones(3),), (torch.zeros(3), torch.ones(3))]}
    x = torch.randn(3)
    y, inner, pair = step(x, state)
    assert inner is state["inner"] and pair is state["pairs"][1] and torch.equal(y, x * 2)
    eager = ReturnsInner()(x, state)
    assert eager[1] is inner and eager[2] is pair


def test_round59_sweep_entries_are_missing_where_their_package_is_absent(monkeypatch):
    """CI installs neither torchvision, timm nor torchaudio: each new entry is SKIP-MISSING there, never a
    SKIP-BUILD or a crash of the sweep."""
    import runtime.aten.sweep as sweep
    from runtime.aten.sweep_models59 import MODELS59

    modules = __import__("sys").modules
    for package in ("timm", "torchvision", "torchaudio"):   # (import raises ImportError; submodules an earlier
        for name in [n for n in modules if n == package or n.startswith(package + ".")] + [package]:   # test imported
            monkeypatch.setitem(modules, name, None)                                                  # too)
    names = {n for n, _m, _i in MODELS59}
    assert len(names) == len(MODELS59) >= 100 and names <= {c.name for c in sweep.CASES}
    seen = []
    for case in (c for c in sweep.CASES if c.name in names):
        sweep.run_case(case, torch.device("cpu"), [], lambda name, mode, verdict, t, **kw: seen.append(verdict))
    assert len(seen) == len(names) and all(v.startswith("SKIP-MISSING") for v in seen), seen[:3]
