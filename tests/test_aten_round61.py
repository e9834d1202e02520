"""Round 61: the ATen executor on patterns the sweep did not hold (CPU, tiny, torch and transformers only).

Bugs fixed (each test marked "failed before" did):
- ``python_state``'s walk marked a function seen at the first depth it reached it: a module-level helper named by
  one class's ``forward`` (walked at depth 0, its own helpers not entered) and held as another class's method
  (depth 1) was not walked again, so a global counter its helper bumped was watched nowhere: compiled, every compiled
  call left the counter where eager's calls advanced it, and compile left it advanced by the export.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs, streams=1):
    return compile(m, inputs, streams=streams, cuda_graph=False, poison=True, device="cpu")


# --- python_state: a function reached at two depths ---------------------------------------------------------------

BUMPS = 0


def _bump() -> None:
    global BUMPS
    BUMPS += 1


def _helper(x):
    _bump()
    return x * 2


class _Inner(nn.Module):
    step = staticmethod(_helper)   # (the helper held as a method: walked at depth 1, its helpers at 0)

    def forward(self, x):
        return self.step(x)


class _Outer(nn.Module):
    """``forward`` names ``_helper`` (a global: walked at depth 0, before ``_Inner``'s methods)."""

    def __init__(self):
        super().__init__()
        self.inner = _Inner()

    def forward(self, x):
        return _helper(x) + self.inner(x)


def test_a_helper_reached_first_as_a_global_is_walked_again_as_a_method():
    """Failed before: compiled, ``BUMPS`` left at 2 by the export (eager's calls add 2 each, the compiled calls
    none); now refused naming the global and put back."""
    global BUMPS
    BUMPS = 0
    with pytest.raises(AtenExecutorError, match=r"the global BUMPS \(module .*test_aten_round61\)"):
        _compile(_Outer(), torch.ones(3))
    assert BUMPS == 0
