"""Round 75, lead: review75's refusal of writes eager's autograd refuses for a parameter that requires grad ran a fake
pass over the export, which for a module compiled under ``no_grad`` holds no trace of a ``with torch.no_grad():`` block
around the write: it refused round 48's guarded parameter write (``tests/test_aten_round48.py``) and the same block
around an ``out=`` of a value computed from the parameter, both of which eager runs under grad mode. The verdict now
comes from an export of ``forward`` under grad mode (``CompiledModule._grad_mode_writes``), as round 48's did."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class _OutFromWeight(nn.Module):
    def __init__(self, guarded: bool) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.register_buffer("t", torch.zeros(3))
        self.guarded = guarded

    def forward(self, x):
        if self.guarded:
            with torch.no_grad():
                torch.mul(self.w * 2, 1, out=self.t)
        else:
            torch.mul(self.w * 2, 1, out=self.t)
        return x + self.t


def test_an_out_of_a_weights_value_inside_no_grad_runs_under_grad_mode_as_eager():
    m, eager = _OutFromWeight(True), _OutFromWeight(True)
    x = torch.randn(3)
    with torch.no_grad():
        step = compile(m, (x,), cuda_graph=False)
    for _ in range(2):
        x = torch.randn(3)
        assert torch.equal(step(x).detach(), eager(x).detach())
        assert torch.equal(m.t, eager.t)


def test_an_out_of_a_weights_value_outside_no_grad_is_refused_under_grad_mode_as_eager():
    m = _OutFromWeight(False)
    x = torch.randn(3)
    with torch.no_grad():
        step = compile(m, (x,), cuda_graph=False)
        assert torch.equal(step(x), _OutFromWeight(False)(x))
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        _OutFromWeight(False)(x)
    for _ in range(2):
        with pytest.raises(AtenExecutorError, match=r"weight 'p_w' \(the module's parameter 'w'\) requires grad"):
            step(x)


class _OutFromInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("t", torch.zeros(3))

    def forward(self, x):
        with torch.no_grad():
            torch.mul(x * 2, 1, out=self.t)
        return x + self.t


@pytest.mark.parametrize("compiled_under", ["no_grad", "grad"])
def test_an_out_of_an_inputs_value_inside_no_grad_runs_under_grad_mode_as_eager(compiled_under):
    """The caller's input requiring grad: grad75's fake run refused it where compile ran under ``no_grad`` (the export
    holds no trace of the block); such a program now takes no verdict from that run."""
    m, eager = _OutFromInput(), _OutFromInput()
    x = torch.randn(3)
    with torch.no_grad() if compiled_under == "no_grad" else torch.enable_grad():
        step = compile(m, (x,), cuda_graph=False)
    for _ in range(2):
        x = torch.randn(3, requires_grad=True)
        assert torch.equal(step(x).detach(), eager(x).detach())
        assert torch.equal(m.t, eager.t)


class _OutFromInputUnguarded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("t", torch.zeros(3))

    def forward(self, x):
        torch.mul(x * 2, 1, out=self.t)
        return x + self.t


def test_an_out_of_an_inputs_value_outside_no_grad_is_refused_under_grad_mode_as_eager():
    """Compiled under ``no_grad``: the verdict for the caller's input requiring grad comes from an export under grad
    mode with the example input flagged (once per set of flags), as eager refuses it; no flag, or no_grad, runs."""
    m = _OutFromInputUnguarded()
    x = torch.randn(3)
    with torch.no_grad():
        step = compile(m, (x,), cuda_graph=False)
    xr = torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        _OutFromInputUnguarded()(xr)
    for _ in range(2):
        with pytest.raises(AtenExecutorError, match=r"input 'x' requires grad.*automatic differentiation"):
            step(xr)
    x = torch.randn(3)
    assert torch.equal(step(x), _OutFromInputUnguarded()(x))
    with torch.no_grad():
        assert torch.equal(step(xr), _OutFromInputUnguarded()(xr))
