"""Round 53b (aten53b): the fused fast path's verdict for a query computed inside ``forward``.

Bugs fixed (each test failed before):
- a query computed inside ``forward`` (a frozen attention, or encoder layer, fed by a trainable ``nn.Linear``) was
  taken as requiring no grad, so a call under grad mode was refused though eager's query requires grad and eager
  runs the standard path. The export now records what the query requires grad through (its autograd leaves:
  parameters by name, inputs of the call), resolved at each call from the call's grad mode and their flags.
- a layer ``forward`` calls inside ``torch.no_grad()``, called under grad mode with parameters that require grad, was
  let through, while eager (grad off inside) took the fast path: other numbers with no error. Now refused.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
from needs import need

torch = need("torch")

from fastpath_probe import Three, fused_calls, grad_mode  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.sweep import mha_fastpath  # noqa: E402


class Fed(nn.Module):
    """An attention (or encoder layer) whose query is a trainable Linear's output: an intermediate of the export."""

    def __init__(self, kind: str, inner_no_grad: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(12, 12)
        self.kind = kind
        self.inner_no_grad = inner_no_grad
        self.a = (nn.MultiheadAttention(12, 2, batch_first=True) if kind == "mha"
                  else nn.TransformerEncoderLayer(12, 2, 16, batch_first=True, dropout=0.0))

    def forward(self, x):
        q = self.lin(x)
        with torch.no_grad() if self.inner_no_grad else contextlib.nullcontext():
            return self.a(q, q, q)[0] if self.kind == "mha" else self.a(q)


def _verdicts(m, step, x, mode):
    """(eager took the fast path, the executor refused the call as fused; on a call let through, its result is
    eager's, bitwise)."""
    with fused_calls() as seen, grad_mode(mode):
        want = m(x)
    try:
        with grad_mode(mode):
            got = step(x)
    except AtenExecutorError as e:
        assert "fused fast path" in str(e)
        return bool(seen), True
    assert torch.equal(got.detach(), want.detach())
    return bool(seen), False


def _x(grad=False):
    return torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(3)).requires_grad_(grad)


def _table(m, step):
    """Each (mode, Linear frozen, layer frozen, input requires grad): (eager's fast path, refused)."""
    rows = {}
    with mha_fastpath(True):
        for mode, lin_frozen, frozen, x_grad in itertools.product(["grad", "no_grad", "inference"], [False, True],
                                                                  [False, True], [False, True]):
            if x_grad and mode == "inference":
                continue
            for p in m.lin.parameters():
                p.requires_grad_(not lin_frozen)
            for p in m.a.parameters():
                p.requires_grad_(not frozen)
            rows[mode, lin_frozen, frozen, x_grad] = _verdicts(m, step, _x(x_grad), mode)
    return rows


@pytest.mark.parametrize("kind", ["mha", "encoder"])
def test_a_computed_querys_verdict_is_eagers(kind):
    """Compiled with an input that requires grad (the export follows the query to it too): the verdict is eager's
    in every row, the frozen layer fed by the trainable Linear under grad mode (eager's standard path) included."""
    m = Fed(kind).eval()
    rows = _table(m, compile(m, (_x(True),)))
    for row, (eager, refused) in rows.items():
        assert refused == eager, (row, eager)
    assert rows["grad", False, True, False] == (False, False)   # (the brief's case: let through, eager's bits)
    assert any(e for e, _ in rows.values()) and not all(e for e, _ in rows.values())


@pytest.mark.parametrize("kind", ["mha", "encoder"])
def test_a_query_through_an_input_the_export_did_not_follow_is_refused_never_let_through_fused(kind):
    """Compiled with an input that requires no grad, the export cannot see the query depend on it: a call whose
    only grad source is its input is refused (eager's standard path: the safe side); no fused call ever runs, and
    the trainable Linear's rows are still eager's."""
    m = Fed(kind).eval()
    rows = _table(m, compile(m, (_x(),)))
    for row, (eager, refused) in rows.items():
        assert refused or not eager, row
        if not (row[0] == "grad" and row[1] and row[3]):
            assert refused == eager, (row, eager)
    assert rows["grad", False, True, False] == (False, False)


def test_a_layer_forward_runs_under_no_grad_is_refused_under_grad_mode():
    m = Fed("encoder", inner_no_grad=True).eval()
    step = compile(m, (_x(),))
    with mha_fastpath(True):
        eager, refused = _verdicts(m, step, _x(), "grad")
    assert eager and refused
    with mha_fastpath(False):
        assert _verdicts(m, step, _x(), "grad") == (False, False)


@pytest.mark.parametrize("mode", ["no_grad", "inference"])
def test_a_call_with_two_tensors_for_merged_inputs_gets_the_merged_inputs_refusal(mode):
    """Compiled from ``m(x, x, x)`` (export merges the three into one input), called ``m(x, y, y)`` where the fast
    path is on: the accurate refusal is the merged inputs' (the program reads one tensor for all three), not the
    fast path's (eager takes none there: not self-attention). Before, the fast path's message."""
    m = Three().eval()
    x = _x()
    step = compile(m, (x, x, x))
    y = torch.randn(2, 5, 12)
    with mha_fastpath(True):
        for args in ((x, y, y), (y, x, x), (x, x, y)):
            with grad_mode(mode), pytest.raises(AtenExecutorError, match="torch.export merges into one input"):
                step(*args)
        with grad_mode(mode), pytest.raises(AtenExecutorError, match="fused fast path"):
            step(y, y, y)


@pytest.mark.parametrize("inner_no_grad", [True, False])
def test_compiled_with_grad_off_a_call_under_grad_mode_is_refused_where_forward_may_turn_grad_off(inner_no_grad):
    """Compiled under ``torch.no_grad()``, the export cannot tell whether ``forward`` runs the layer in a
    ``no_grad`` block of its own; where it does, eager takes the fast path under grad mode too. Before, such a call
    was let through and returned other numbers than eager's (the inner ``no_grad`` case); now refused, naming why
    (the other case on the safe side); with the switch off, eager's bits."""
    m = Fed("encoder", inner_no_grad=inner_no_grad).eval()
    with torch.no_grad():
        step = compile(m, (_x(),))
    x = _x()
    with mha_fastpath(True):
        with fused_calls() as seen:
            m(x)
        assert bool(seen) == inner_no_grad
        with pytest.raises(AtenExecutorError, match="compiled with grad off.*no_grad\\(\\) block of its own"):
            step(x)
        assert _verdicts(m, step, x, "no_grad") == (True, True)
    with mha_fastpath(False):
        assert _verdicts(m, step, x, "grad") == (False, False)
