"""Review of round 36's ATen work: the left-out keyword proof, calls inside transforms and ``torch.compile``.

Bugs fixed (each test here failed before its fix, checked against the tree without it):
- the proof that a keyword compile left out is inert compared the top graph only: a keyword that changed a scalar
  inside a ``torch.cond`` branch was proven, and the call ran compile's branch silently (``t * 2`` for eager's
  ``t * 3``);
- the proof exported with the call's tensors under the call's torch state and remembered its answer for the values
  alone: one call inside ``torch.autocast``, under another default dtype, under ``no_grad`` (a ``forward`` that
  branches on grad mode) or with an input of another shape refused those values for good, calls that eager and
  the program agree on too;
- a keyword that picked another tensor of the module (``self.tables[1]`` for ``self.tables[0]``) holding equal bits
  at the proof was proven (lifted constants were compared by value): a later write to it showed in eager only;
- after a proof whose path sets a module attribute (``self.temperature = 0.5``), the attribute was no longer
  watched: set after, calls without the keyword ran the program's baked value silently;
- an input returned beside views of it (``return x, x.view(-1), x[1]``) was copied out apart from them: an in-place
  op on the returned ``x`` did not show in its views as in eager;
- a call inside ``torch.vmap`` / ``torch.func.grad`` failed with torch's raw "Cannot access storage of
  BatchedTensorImpl" (now an ``AtenExecutorError`` naming the input and the transform);
- ``torch.compile`` of a function that calls a compiled module traced into the executor, and the backend failed on
  its arena views (``BackendCompilerFailed``: "as_strided_scatter ... out of bounds"); the call is now a graph break
  and runs as it is.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_aten_round33_ambient import default_dtype  # noqa: E402
from test_aten_round36 import ReadsDefaultDtypeOnAPath  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class CondScale(nn.Module):
    """A keyword that changes only what a ``torch.cond`` branch multiplies by."""

    def forward(self, x, **kwargs):
        s = 2.0 if kwargs.get("flag") is None else 3.0
        return torch.cond(x.sum() > 0, lambda t: t * s, lambda t: t + 1.0, (x,))


def test_a_keyword_that_changes_a_cond_branch_is_refused_not_run_as_compile_s_branch():
    x = torch.ones(2, 4)
    m = CondScale()
    step = compile(m, (x,), poison=True)
    assert torch.equal(step(x, flag=None), m(x, flag=None))   # (inert: proven, same branches)
    with pytest.raises(AtenExecutorError, match=r"argument 'flag' is given.*forward gave another program"):
        step(x, flag=1)


class ReadsDefaultDtype(ReadsDefaultDtypeOnAPath):
    def forward(self, x, **kwargs):
        y = super().forward(x, **kwargs)
        return y + torch.zeros(4, dtype=y.dtype)   # (bfloat16 zeros in an autocast export)


class BranchesOnGradMode(ReadsDefaultDtypeOnAPath):
    def forward(self, x, **kwargs):
        y = self.lin(x)
        return y * 2 if torch.is_grad_enabled() else y * 2.0 + 0.0


AMBIENT = {
    "autocast": (lambda: torch.autocast("cpu", dtype=torch.bfloat16), r"called inside a torch\.autocast region"),
    "default_float64": (lambda: default_dtype(torch.float64), r"called with default dtype torch\.float64"),
}


@pytest.mark.parametrize("state", sorted(AMBIENT))
def test_a_keyword_first_given_under_another_torch_state_is_refused_for_it_and_taken_after(state):
    """The call under the state is refused for the state (the executor's own check), and the values are not
    refused for good: outside the state the same call is eager's."""
    enter, why = AMBIENT[state]
    m = ReadsDefaultDtype().eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), poison=True)
    with enter(), pytest.raises(AtenExecutorError, match=why):
        step(x, mode="a")
    with torch.no_grad():
        assert torch.equal(step(x, mode="a"), m(x, mode="a"))
    assert not step.refuted


def test_a_keyword_first_given_under_no_grad_is_proven_as_compile_exported():
    m = BranchesOnGradMode().eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), poison=True)
    # (forward branches on the grad mode: the call under no_grad is refused for it (round 36b), the proof is not)
    with torch.no_grad(), pytest.raises(AtenExecutorError, match=r"torch\.is_grad_enabled\(\) .*\(True\), it is False"):
        step(x, mode="a")
    assert torch.equal(step(x, mode="a"), m(x, mode="a").detach())
    assert not step.refuted and len(step.proven) == 1


class Flattens(nn.Module):
    def forward(self, x, **kwargs):
        return x.reshape(x.shape[0] * 4) * 2


def test_a_keyword_first_given_with_an_input_of_another_shape_is_taken_with_the_right_shape():
    m = Flattens()
    x = torch.randn(2, 4)
    step = compile(m, (x,), poison=True)
    with pytest.raises(AtenExecutorError, match=r"input 'x' is \(3, 4\) torch\.float32, the program was exported "
                       r"with \(2, 4\)"):
        step(torch.randn(3, 4), flag=None)
    assert torch.equal(step(x, flag=None), m(x))
    assert not step.refuted


def _linear_step():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    x = torch.randn(2, 4)
    return m, x, compile(m, (x,), poison=True)


@pytest.mark.parametrize("transform", ["vmap", "grad"])
def test_a_call_inside_a_functorch_transform_is_refused_naming_the_input(transform):
    m, x, step = _linear_step()
    if transform == "vmap":
        def run():
            return torch.vmap(lambda t: step(t.view(2, 4)).view(-1))(x.view(1, 8).repeat(3, 1))
    else:
        def run():
            return torch.func.grad(lambda t: step(t).sum())(x)
    with pytest.raises(AtenExecutorError, match=r"inside a functorch transform \(input 'input' is a batched or "
                       r"grad-tracking tensor"):
        run()
    assert torch.equal(step(x), m(x).detach())   # (still usable)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile_of_a_function_calling_a_compiled_module_equals_eager(backend):
    m, x, step = _linear_step()
    torch._dynamo.reset()
    try:
        got = torch.compile(lambda t: step(t.relu() + 1) * 2 + step(t), backend=backend)(x)
    finally:
        torch._dynamo.reset()
    with torch.no_grad():
        want = m(x.relu() + 1) * 2 + m(x)
    assert torch.equal(got, want)


class PicksATable(nn.Module):
    """A keyword that picks another tensor of a list attribute (equal to compile's at the first call), next to a
    constant ``forward`` makes in every export."""

    def __init__(self):
        super().__init__()
        self.tables = [torch.zeros(4), torch.zeros(4)]

    def forward(self, x, **kwargs):
        t = self.tables[0] if kwargs.get("flag") is None else self.tables[1]
        return x + t + torch.tensor([1.0, 2.0, 3.0, 4.0])


def test_a_keyword_that_picks_another_module_tensor_with_equal_values_is_refused():
    m = PicksATable()
    x = torch.randn(2, 4)
    step = compile(m, (x,), poison=True)
    assert torch.equal(step(x, flag=None), m(x, flag=None))   # (the same table; forward's constant equal by bits)
    with pytest.raises(AtenExecutorError, match=r"argument 'flag' is given.*forward gave another program"):
        step(x, flag=1)   # (tables[1]: eager reads it, the program tables[0]; a write to it showed in eager only)
    m.tables[1].add_(5)
    with pytest.raises(AtenExecutorError, match=r"argument 'flag' is given"):
        step(x, flag=1)


class ResetsTemperature(nn.Module):
    def __init__(self):
        super().__init__()
        self.temperature = 0.5

    def forward(self, x, **kwargs):
        if kwargs.get("reset"):
            self.temperature = 0.5
        return x * self.temperature


def test_an_attribute_only_a_proven_keywords_path_sets_stays_watched_for_calls_without_it():
    m = ResetsTemperature()
    x = torch.randn(2, 4)
    step = compile(m, (x,), poison=True)
    assert torch.equal(step(x, reset=True), m(x, reset=True))   # (proven: the same program)
    m.temperature = 0.3
    with pytest.raises(AtenExecutorError, match=r"ResetsTemperature\.temperature is 0\.3 now, 0\.5 at compile"):
        step(x)   # (eager: x * 0.3; the program's 0.5 ran silently, the attribute no longer watched)


class ReturnsItsInput(nn.Module):
    def forward(self, x, y):
        return x, x.view(-1), x[1], x * 2, y


@pytest.mark.parametrize("streams", [1, 3])
def test_an_input_returned_beside_views_of_it_shares_memory_with_them_as_in_eager(streams):
    x, y = torch.randn(3, 4), torch.randn(2)
    m = ReturnsItsInput()
    step = compile(m, (x, y), streams=streams, poison=True)
    for _ in range(2):
        got = step(x, y)
        want = m(x.clone(), y)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        got[0].add_(1)   # eager: shows in x.view(-1) and x[1] (the input itself: not x * 2, not y)
        want[0].add_(1)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        assert got[0] is x and got[4] is y   # (the caller's own, as eager's: round 42; copies before)
    assert step.stats.output_copies == 1   # (x * 2; x, its two views and y are the caller's own: round 42)
