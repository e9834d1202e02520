"""Round 51: the ATen executor's refusals come before any write, and layouts compared as eager lays out elements.

Bugs fixed (each test below failed before):
- a program writing an input in place, called outside inference mode with an inference tensor: eager refuses the
  write ("Inplace update to inference tensor outside InferenceMode") before it writes anything; the executor refused
  only at the write-back, after its launches had updated a train-mode BatchNorm's running statistics (and
  ``num_batches_tracked``). Now refused before the call runs, the module's buffers and every input as they were.
- under grad mode, a written input that is a view made under ``no_grad`` of a tensor requiring grad, or a view of a
  multi-view op (``unbind``): eager refuses the in-place write, the executor wrote it silently (the call runs under
  ``no_grad``); and a non-leaf tensor that requires grad, which eager writes recording the op in autograd, was written
  behind its gradient history (a silently wrong gradient). All three refused naming the input, before anything runs.
"""

from __future__ import annotations

import random

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class WritesAndNorms(nn.Module):
    """Writes both inputs in place and normalizes in train mode (running statistics written every call)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x, y):
        y.add_(1)
        x.mul_(2)
        return self.bn(x + y)


@pytest.fixture(scope="module")
def writes_and_norms():
    m = WritesAndNorms().train()
    return m, compile(m, (torch.randn(3, 4), torch.randn(3, 4)), poison=True)


def _state(m: nn.Module) -> dict:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_inference_tensor_written_outside_inference_mode_is_refused_before_any_write(writes_and_norms):
    m, step = writes_and_norms
    with torch.inference_mode():
        xi = torch.randn(3, 4)
    y = torch.zeros(3, 4)
    before = _state(m)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        m(xi, torch.zeros(3, 4))   # eager's own refusal (at ``x.mul_``)
    for k, v in _state(m).items():   # (eager's refusal came before the BatchNorm)
        assert torch.equal(v, before[k]), k
    with pytest.raises(AtenExecutorError, match="input 'x' is written in place .* an inference tensor"):
        step(xi, y)
    for k, v in _state(m).items():   # running_mean, running_var, num_batches_tracked as they were
        assert torch.equal(v, before[k]), k
    assert torch.equal(y, torch.zeros(3, 4))
    with torch.inference_mode():   # inside inference mode eager writes it, and so does the program
        xe, xc = xi.clone(), xi.clone()
        me = WritesAndNorms().train()
        me.load_state_dict(m.state_dict())
        ye, yc = torch.zeros(3, 4), torch.zeros(3, 4)
        want = me(xe, ye)
        got = step(xc, yc)
    assert torch.equal(got, want) and torch.equal(xc, xe) and torch.equal(yc, ye)
    for k, v in m.state_dict().items():
        assert torch.equal(v, me.state_dict()[k]), k


def _no_grad_view():
    b = torch.randn(2, 3, 4, requires_grad=True) * 1
    with torch.no_grad():
        return b[0]


def _unbound():
    return (torch.randn(2, 3, 4, requires_grad=True) * 1).unbind(0)[0]


@pytest.mark.parametrize("make,eager_says,what", [
    (_no_grad_view, "view was created in no_grad mode", "made under no_grad or by a multi-view op"),
    (_unbound, "function that returns multiple views", "made under no_grad or by a multi-view op"),
    (lambda: torch.randn(3, 4, requires_grad=True) * 1, None, "a tensor that requires grad: eager records"),
])
def test_written_input_eager_cannot_write_or_records_in_autograd_is_refused(writes_and_norms, make, eager_says, what):
    m, step = writes_and_norms
    x = make()
    if eager_says is not None:
        with pytest.raises(RuntimeError, match=eager_says):
            WritesAndNorms().train()(make(), torch.zeros(3, 4))
    before, state = x.detach().clone(), _state(m)
    y = torch.zeros(3, 4)
    with pytest.raises(AtenExecutorError, match=f"input 'x' is written in place .* {what}"):
        step(x, y)
    assert torch.equal(x.detach(), before) and torch.equal(y, torch.zeros(3, 4))
    for k, v in _state(m).items():
        assert torch.equal(v, state[k]), k
    with torch.no_grad():   # outside grad mode eager writes each, and so does the program
        xe = make()
        xc = xe.clone()
        me = WritesAndNorms().train()
        me.load_state_dict(m.state_dict())
        want = me(xe, torch.zeros(3, 4))
        got = step(xc, torch.zeros(3, 4))
    assert torch.equal(got, want) and torch.equal(xc, xe.detach())


# --- layouts: a size-1 dimension's stride (and any stride of a tensor of no element) addresses nothing ----------------


class WritesInNoGrad(nn.Module):
    """A ``no_grad`` block's write (functionalized: the new value is an output the executor copies back), then the
    input and a view of it returned: eager returns the caller's tensor itself and a view of it."""

    def forward(self, x):
        with torch.no_grad():
            x.mul_(2)
        return x, x[:, 1:]


def _one_row(strides_of_t: bool) -> torch.Tensor:
    """A ``(1, 4)`` tensor at strides ``(1, 1)`` (a transposed column) or ``(4, 1)`` (contiguous): the same layout."""
    return torch.randn(4, 1).t() if strides_of_t else torch.randn(1, 4)


@pytest.mark.parametrize("export_t,call_t", [(True, True), (True, False), (False, True)])
def test_size1_stride_does_not_turn_returned_input_and_its_views_into_copies(export_t, call_t):
    step = compile(WritesInNoGrad(), (_one_row(export_t),))
    x = _one_row(call_t)
    want = x * 2
    a, b = step(x)
    assert a is x and torch.equal(x, want)   # eager's ``x.mul_(2); return x``: the caller's tensor
    assert b.data_ptr() == x.data_ptr() + x.element_size() and torch.equal(b, want[:, 1:])
    b.fill_(7)   # a view of the caller's tensor, as eager's: the write shows in ``x``
    assert torch.equal(x[:, 1:], torch.full((1, 3), 7.0))


def test_zero_size_input_of_other_strides_is_returned_itself():
    """Strides of a tensor of no element address nothing: eager's ``x.mul_(2); return x`` is ``x`` whatever they are."""
    step = compile(WritesInNoGrad(), (torch.randn(0, 4),))
    x = torch.randn(4, 0).t()   # (0, 4) at strides (1, 4)
    a, b = step(x)
    assert a is x and b.shape == (0, 3)


class AddsTwo(nn.Module):
    def forward(self, x, y):
        return x * 2 + y


def test_merged_inputs_of_the_same_elements_with_another_size1_stride_run():
    """``compile(m, (e, e))``: export merges the two inputs; a call passing one tensor and a view of its very elements
    whose size-1 dimension has another stride computes what eager does (refused before, as "two different tensors")."""
    e = torch.randn(1, 4)
    m = AddsTwo()
    step = compile(m, (e, e))
    x = torch.randn(1, 4)
    assert torch.equal(step(x, x.as_strided((1, 4), (1, 1))), m(x, x))
    with pytest.raises(AtenExecutorError, match="one tensor in the export's example inputs"):
        step(x, x.clone())


class ScalesByStride(nn.Module):
    def forward(self, x):
        return x * x.stride(0)


class BranchesOnContiguity(nn.Module):
    def forward(self, x):
        return x * 2 if x.is_contiguous() else x * 3


def test_stride_read_in_forward_counts_a_size1_dimensions_stride():
    """``x.stride(0)`` of a ``(1, 4)`` input is 1 at strides ``(1, 1)`` and 4 at the export's ``(4, 1)``: the program
    fixed ``x * 4``, and such a call returned it silently (the layout check ignored size-1 dimensions, as
    ``is_contiguous()`` does, for every read)."""
    m = ScalesByStride()
    step = compile(m, (torch.randn(1, 4),))
    x = torch.randn(4, 1).t()
    assert not torch.equal(m(x), x * 4)   # eager's: x * 1
    with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 1\), the export's \(4, 1\), and forward "
                                                r"read Tensor.stride\(\)"):
        step(x)
    y = torch.randn(1, 4)
    assert torch.equal(step(y), m(y))


def test_is_contiguous_read_still_ignores_a_size1_dimensions_stride():
    m = BranchesOnContiguity()
    step = compile(m, (torch.randn(1, 4),))
    x = torch.randn(4, 1).t()   # contiguous to torch: eager takes the export's branch
    assert torch.equal(step(x), m(x))


class DrawsLayerdrop(nn.Module):
    """MusicGen's layerdrop: a draw from Python's ``random`` at every call, read only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        p = random.uniform(0, 1)
        if self.training and p < 0.5:
            return x
        return self.lin(x)


def test_refused_call_leaves_pythons_random_as_it_was():
    """The compiled call repeats ``forward``'s unread draws before it runs; a call the executor then refused (an
    input of another shape than the export's) had advanced ``random`` all the same."""
    m = DrawsLayerdrop().eval()
    step = compile(m, (torch.randn(2, 4),))
    state = random.getstate()
    with pytest.raises(AtenExecutorError, match="input 'x' is"):
        step(torch.randn(3, 4))
    assert random.getstate() == state
    x = torch.randn(2, 4)
    random.setstate(state)
    want = m(x)
    after = random.getstate()
    random.setstate(state)
    assert torch.equal(step(x), want) and random.getstate() == after   # a call that runs draws as eager's


class ScalesAndSums(nn.Module):
    def forward(self, w, x):
        return w * 2 + x.sum()


@pytest.mark.parametrize("streams", [1, 3])
def test_refused_expanded_input_leaves_the_previous_return_views_outputs(streams):
    """An input exported expanded (stride 0: its slot holds the few distinct elements) refuses a call passing a tensor
    laid out otherwise; that refusal came while the inputs were being copied in, after the arena had been poisoned
    (and earlier inputs' slots written), so the previous call's ``return_views`` outputs, the arena's bytes, read NaN."""
    step = compile(ScalesAndSums(), (torch.randn(4, 4), torch.randn(4, 1).expand(4, 4)), streams=streams,
                   return_views=True, poison=True)
    y = step(torch.randn(4, 4), torch.randn(4, 1).expand(4, 4))
    kept = y.clone()
    with pytest.raises(AtenExecutorError, match="input 'x' was exported with strides \\(1, 0\\)"):
        step(torch.randn(4, 4), torch.randn(4, 4))
    assert torch.equal(y, kept)


class Doubles(nn.Module):
    def forward(self, x):
        return x * 2


def test_input_exported_with_overlapping_rows_is_not_squeezed_into_its_slot():
    """``torch.randn(5).as_strided((3, 3), (1, 1))``: nine elements on five places, which torch's overlap test calls
    "too hard" (not an expand). Its slot was loaded by a plain ``copy_``, so a contiguous caller's nine values were
    squeezed into five places and the call returned other values than eager's, silently. Now such a slot is found
    by listing its positions: a caller's tensor laid out alike is copied span for span, another refused."""
    m = Doubles()
    step = compile(m, (torch.randn(5).as_strided((3, 3), (1, 1)),), poison=True)
    with pytest.raises(AtenExecutorError, match=r"input 'x' was exported with strides \(1, 1\), whose elements share"):
        step(torch.randn(3, 3))
    x = torch.randn(5).as_strided((3, 3), (1, 1))
    assert torch.equal(step(x), m(x))


def test_input_exported_interleaved_but_distinct_takes_any_layout():
    """``(2, 3)`` at strides ``(3, 2)``: torch says "too hard", yet no two elements share memory: any caller's tensor
    is copied in as before."""
    m = Doubles()
    step = compile(m, (torch.randn(8).as_strided((2, 3), (3, 2)),), poison=True)
    for x in (torch.randn(2, 3), torch.randn(8).as_strided((2, 3), (3, 2)), torch.randn(3, 2).t()):
        assert torch.equal(step(x), m(x))


class WritesAndAdds(nn.Module):
    def forward(self, x):
        x.mul_(2)
        return x + 1


def test_written_input_with_overlapping_rows_is_refused():
    """Eager's ``x.mul_(2)`` of ``ones(5).as_strided((3, 3), (1, 1))`` multiplies a place once per element that shares
    it (``[2, 4, 8, 4, 2]``); the program doubled each place once (``[2, 2, 2, 2, 2]``), silently: torch's overlap test
    says "too hard" there, and only its certain answer (an expand) was refused."""
    m = WritesAndAdds()
    step = compile(m, (torch.randn(3, 3),))
    base = torch.ones(5)
    eager_base = torch.ones(5)
    m(eager_base.as_strided((3, 3), (1, 1)))
    assert eager_base.tolist() == [2, 4, 8, 4, 2]
    with pytest.raises(AtenExecutorError, match="input 'x' is written in place .* share memory"):
        step(base.as_strided((3, 3), (1, 1)))
    assert torch.equal(base, torch.ones(5))
    interleaved = torch.ones(8)   # distinct elements (``(2, 3)`` at ``(3, 2)``), also "too hard": written as eager
    eager_il = torch.ones(8)
    step_il = compile(m, (torch.randn(2, 3),))
    assert torch.equal(step_il(interleaved.as_strided((2, 3), (3, 2))), m(eager_il.as_strided((2, 3), (3, 2))))
    assert torch.equal(interleaved, eager_il)


def test_module_built_under_inference_mode_written_outside_is_refused_before_any_write():
    """A train-mode BatchNorm built under ``torch.inference_mode()`` (its buffers inference tensors), compiled there
    and called outside: eager's running-statistics update refuses; the program failed at that node mid-run, after
    the launches before it (another buffer written), and the caller's written input left unwritten. Now refused
    before anything runs, naming the buffer."""
    with torch.inference_mode():
        m = WritesAndNorms().train()
        step = compile(m, (torch.randn(3, 4), torch.randn(3, 4)))
    before = _state(m)
    y = torch.zeros(3, 4)
    with pytest.raises(AtenExecutorError, match=r"writes module tensor 'bn\.(running_mean|running_var|num_batches_tracked)'"):
        step(torch.randn(3, 4), y)
    assert torch.equal(y, torch.zeros(3, 4))
    for k, v in _state(m).items():
        assert torch.equal(v, before[k]), k
    with torch.inference_mode():   # inside it, as eager
        x = torch.randn(3, 4)
        me = WritesAndNorms().train()
        me.load_state_dict(m.state_dict())
        assert torch.equal(step(x.clone(), torch.zeros(3, 4)), me(x.clone(), torch.zeros(3, 4)))


class Branches(nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda a: a.abs() + 1, lambda a: a.abs() - 1, (x,))


def test_torch_cond_guards_are_no_stride_read_of_forward():
    """``torch.cond`` runs Dynamo over its branches while the module is exported, and Dynamo's guard code (compiled from
    a string) reads every guarded tensor's ``stride()``: taken for ``forward``'s read at ``<string>:9``, so a
    transposed input was refused ("forward read Tensor.stride()") though ``forward`` read no layout."""
    m = Branches()
    step = compile(m, (torch.randn(3, 4),))
    assert not any(where.startswith("<string>") for _m, where in step.program.layout_reads)
    x = torch.randn(4, 3).t()
    assert torch.equal(step(x), m(x))
