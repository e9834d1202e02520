"""Round 75 (grad75): a *caller's* input that requires grad, through ``runtime.aten.compile``, compared with eager bit
for bit.

CPU kernels pick their path by an operand's ``requires_grad``: ``matmul`` (and ``linear`` of an input that is not
contiguous) folds a 3-D operand into one ``mm`` when its matrix requires grad, SDPA runs its math kernel where the
mask requires grad and flash where not, ``gru`` / ``rnn_tanh`` take another path where a weight does. Round 74 fed
that flag from the module's parameters alone, fixed when the program was built; the executor's kernels read arena
copies of the caller's inputs, which never require grad, so ``w @ x.transpose(-1, -2)`` or SDPA ``attn_mask=mask``
with ``w`` / ``mask`` requiring grad ran 2e-07 .. 6e-07 off eager (under grad mode, ``no_grad`` and
``inference_mode`` alike: a leaf and its views keep the flag there), and ``(w * s) @ x...`` with ``s`` requiring grad
under grad mode. Now the values requiring grad are found per call from the inputs' flags and grad mode
(``grad_masks.value_grads``, cached per pattern) and the launches pass those operands as requiring grad.

The chain of ``requires_grad`` itself, as eager's autograd carries it (each was a silent 2e-07 .. 6e-07):
- export's ``aten.alias`` (a slice over a whole dimension, ``w[:, :4]``) was taken for a detach;
- a tensor filled in place from one (``m.add_(mask)``, ``m2[0].copy_(mask[0])``) and its view's base;
- an op returning its input itself (``type_as`` of the same dtype) keeps a leaf's flag under ``no_grad``;
- a view's flag is its base's alone (``mask.view_as(other)``);
- through ``torch.cond`` under grad mode, and a ``set_grad_enabled`` block by its own mode (none under
  ``inference_mode``).

And writes eager's autograd refuses once an input requires grad under grad mode (``out=`` of a differentiable op, a
multi-output or ``no_grad`` view written in place, ``resize_``) ran silently: now refused naming the input, the node
and eager's message (``grad_refusals``).
"""

from __future__ import annotations

import re

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.func import functional_call  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from runtime.aten import compile  # noqa: E402

MODES = (torch.enable_grad, torch.no_grad, torch.inference_mode)


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def _check(step, m, args, graded):
    """``step(*args)`` equals ``m(*args)`` bit for bit under each mode, the inputs at ``graded`` requiring grad."""
    call = [a.detach().clone().requires_grad_(k in graded) for k, a in enumerate(args)]
    for mode in MODES:
        with mode():
            got, want = _flat(step(*call)), _flat(m(*call))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert torch.equal(g.detach(), w.detach()), (graded, mode.__name__, float((g - w).abs().max()))


class Products(nn.Module):
    """A caller's matrix and masks: ``w @ x.transpose(-1, -2)``, ``linear`` of a transposed input, SDPA with a float
    mask and with a bool mask."""

    def forward(self, x, w, v, b, q, mask, keep):
        return (w @ x.transpose(-1, -2), F.linear(x.transpose(0, 1), v, b),
                F.scaled_dot_product_attention(q, q, q, attn_mask=mask),
                F.scaled_dot_product_attention(q, q, q, attn_mask=keep))


def _products_args():
    torch.manual_seed(0)
    return (torch.randn(3, 2, 4), torch.randn(5, 4), torch.randn(5, 4), torch.randn(5), torch.randn(2, 2, 6, 8),
            torch.randn(2, 2, 6, 6), torch.rand(2, 2, 6, 6) > 0.3)


@pytest.mark.parametrize("streams", [1, 3])
def test_a_callers_matrix_and_mask_that_require_grad_pick_eagers_kernels(streams):
    m, args = Products(), _products_args()
    step = compile(m, args, streams=streams)
    for graded in ((), (1, 2, 5), (1,), (5,), (2, 3, 4), (), (0, 1, 2, 3, 4, 5)):   # flags flipped between calls
        _check(step, m, args, graded)


def test_a_program_compiled_with_inputs_that_require_grad_follows_calls_without():
    m, args = Products(), _products_args()
    step = compile(m, tuple(a.requires_grad_(a.is_floating_point()) for a in (t.clone() for t in args)))
    for graded in ((), (1, 5), ()):
        _check(step, m, args, graded)


class Derived(nn.Module):
    """Operands computed from a caller's input (and a frozen parameter): they require grad under grad mode only."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 4), requires_grad=False)

    def forward(self, x, s, q, m):
        part, _rest = (m * 1.0).split(6, dim=-1)
        return (self.w * s) @ x.transpose(-1, -2), F.scaled_dot_product_attention(q, q, q, attn_mask=part)


@pytest.mark.parametrize("streams", [1, 3])
def test_operands_computed_from_a_callers_input_that_requires_grad(streams):
    torch.manual_seed(0)
    m = Derived()
    args = (torch.randn(3, 2, 4), torch.randn(()), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 12))
    step = compile(m, args, streams=streams)
    for graded in ((1, 3), (), (1,), (3,)):
        _check(step, m, args, graded)


class Recurrent(nn.Module):
    """RNNs given the caller's weights and states, and kernels that follow no flag (conv, einsum, baddbmm, bmm, addmm,
    layer_norm with the caller's weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru, self.rnn, self.lstm = (nn.GRU(4, 6, batch_first=True), nn.RNN(4, 6, batch_first=True),
                                         nn.LSTM(4, 6, batch_first=True))

    def forward(self, x, h0, c0, gi, gh, gbi, gbh, ri, rh, rbi, rbh, img, k, a, b, lw):
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        gru, rnn = dict(zip(names, (gi, gh, gbi, gbh))), dict(zip(names, (ri, rh, rbi, rbh)))
        return (functional_call(self.gru, gru, (x, h0)), functional_call(self.rnn, rnn, (x, h0)),
                self.lstm(x, (h0, c0)), F.conv2d(img, k, padding=1), torch.einsum("bij,jk->bik", a, b[0]),
                torch.baddbmm(a, a, b.transpose(1, 2).expand(3, 4, 4)), torch.bmm(a, b),
                torch.addmm(a[0], a[0], b[0]), F.layer_norm(a, (4,), lw, lw * 0.5))


@pytest.mark.parametrize("streams", [1, 3])
def test_rnn_weights_and_other_kernels_given_by_the_caller(streams):
    torch.manual_seed(0)
    m = Recurrent()
    weights = [p.detach().clone() for rnn in (nn.GRU(4, 6), nn.RNN(4, 6)) for p in rnn.parameters()]
    args = (torch.randn(2, 5, 4), torch.randn(1, 2, 6), torch.randn(1, 2, 6), *weights, torch.randn(1, 2, 5, 5),
            torch.randn(3, 2, 3, 3), torch.randn(3, 4, 4), torch.randn(3, 4, 4), torch.randn(4))
    step = compile(m, args, streams=streams)
    for graded in ((3,), (7,), tuple(range(len(args))), (), (1, 2, 4, 12, 15)):
        _check(step, m, args, graded)


def test_a_call_without_inputs_that_require_grad_reads_their_flags_alone():
    """The cost: a program no input's flag reaches reads none; one whose inputs may reach a kernel's operand reads
    theirs (``_grad_inputs``), and looks a pattern up once it has met it."""
    class Plain(nn.Module):
        def forward(self, x, w):
            return w @ x + 1   # (a 2-D ``x``: nothing folds)

    plain = compile(Plain(), (torch.randn(4, 3), torch.randn(5, 4)))
    assert plain.executor._grad_inputs == ()
    m, args = Products(), _products_args()
    step = compile(m, args)
    assert step.executor._grad_inputs == (1, 2, 5)   # w, v and the float mask: not x, b, q nor the bool mask
    call = list(args)
    assert step.executor._graded(call) is None
    call[1] = args[1].clone().requires_grad_(True)
    with torch.no_grad():
        first = step.executor._graded(call)
        assert "w" in first and step.executor._graded(call) is first


class WholeSlices(nn.Module):
    """Slices over a whole dimension (``w[:, :4]`` of a 4-column ``w``), which export writes as ``aten.alias``: a view
    that requires grad where its base does, in eager."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 4))
        self.bias = nn.Parameter(torch.randn(1, 1, 6, 6))

    def forward(self, x, q, v):
        return ((self.w[:, :4] * 1.0) @ x.transpose(-1, -2),
                F.scaled_dot_product_attention(q, q, q, attn_mask=self.bias[:, :, :6] * 1.0),
                F.linear(x.transpose(0, 1), v[:, :4] * 1.0))


@pytest.mark.parametrize("streams", [1, 3])
def test_a_slice_over_a_whole_dimension_keeps_the_flag(streams):
    torch.manual_seed(0)
    m = WholeSlices()
    args = (torch.randn(3, 2, 4), torch.randn(2, 2, 6, 8), torch.randn(5, 4))
    step = compile(m, args, streams=streams)
    assert "alias" in str(step.program.exported.graph)
    for graded in ((), (2,)):
        _check(step, m, args, graded)


class OutOfGrad(nn.Module):
    """Writes eager's autograd refuses where ``x`` requires grad under grad mode: ``out=`` of a differentiable op (not
    ``eq``'s), a multi-output view written in place, a view made under ``no_grad`` written, ``resize_``."""

    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which

    def forward(self, x, o):
        if self.which == "out":
            t = torch.empty(2, 3)
            torch.mul(x * 2, 1, out=t)
            torch.eq(x, 1, out=o)
            return t + 1, o
        y = x * 2
        if self.which == "unbind":
            a, b = y.unbind(0)
            a.add_(1)
            return a + b
        if self.which == "no_grad_view":
            with torch.no_grad():
                v = y[0]
            v.add_(1)
            return y
        y.resize_(4)
        return y


@pytest.mark.parametrize("which,node,message", [
    ("out", "mul_1", "functions with out=... arguments don't support automatic differentiation"),
    ("unbind", "add_", "is a view and is being modified inplace"),
    ("no_grad_view", "add_", "A view was created in no_grad mode"),
    ("resize", "resize_", "cannot resize variables that require grad")])
def test_writes_eagers_autograd_refuses_for_an_input_that_requires_grad_are_refused(which, node, message):
    from runtime.aten.errors import AtenExecutorError

    torch.manual_seed(0)
    m = OutOfGrad(which)
    x, o = torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.bool)
    step = compile(m, (x, o))
    xr = x.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match=re.escape(message)):
        m(xr, o.clone())
    for _ in range(2):   # (the pattern's verdict cached)
        with pytest.raises(AtenExecutorError, match=f"input 'x' requires grad.*at node '{node}'.*{re.escape(message)}"):
            step(xr, o.clone())
    for mode in (torch.no_grad, torch.inference_mode):   # (eager runs these)
        with mode():
            assert all(torch.equal(a, b) for a, b in zip(_flat(step(xr, o.clone())), _flat(m(xr, o.clone()))))
    assert all(torch.equal(a, b) for a, b in zip(_flat(step(x, o.clone())), _flat(m(x, o.clone()))))


class AllowedWrites(nn.Module):
    """Writes eager's autograd takes with an input that requires grad: in place on a fresh result, into a zeros
    tensor, ``out=`` of a detached input, an in-place ReLU, a train-mode BatchNorm's statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.bn, self.lin = nn.BatchNorm1d(3), nn.Linear(3, 3)

    def forward(self, x):
        y = x * 2
        y.add_(1)
        z = torch.zeros(4, 3)
        z.add_(x)
        t = torch.empty(4, 3)
        torch.add(x.detach(), 1, out=t)
        return self.bn(y) + z + t + F.relu(self.lin(x), inplace=True)


def test_writes_eagers_autograd_takes_run_with_an_input_that_requires_grad():
    torch.manual_seed(0)
    m, twin = AllowedWrites(), AllowedWrites()
    twin.load_state_dict(m.state_dict())
    step = compile(m, (torch.randn(4, 3),))
    for graded in (True, False, True):
        x = torch.randn(4, 3, requires_grad=graded)
        assert torch.equal(step(x), twin(x).detach())


class FilledInPlace(nn.Module):
    """Masks and a matrix filled in place from the caller's tensors (``m.add_(mask)``, ``m2[0].copy_(mask[0])``,
    ``a += w``): in eager the filled tensor (and a view's base) requires grad from then on, under grad mode."""

    def forward(self, q, mask, w, x):
        m = torch.zeros(2, 2, 6, 6)
        m.add_(mask)
        m2 = torch.zeros(2, 2, 6, 6)
        m2[0].copy_(mask[0])
        a = torch.zeros(5, 4)
        a += w
        return (F.scaled_dot_product_attention(q, q, q, attn_mask=m),
                F.scaled_dot_product_attention(q, q, q, attn_mask=m2), a @ x.transpose(-1, -2))


@pytest.mark.parametrize("streams", [1, 3])
def test_a_mask_filled_in_place_from_a_callers_input_keeps_the_flag(streams):
    torch.manual_seed(0)
    m = FilledInPlace()
    args = (torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 6), torch.randn(5, 4), torch.randn(3, 2, 4))
    step = compile(m, args, streams=streams)
    for graded in ((1,), (1, 2), (), (2,)):
        _check(step, m, args, graded)


class ReturnsItsInput(nn.Module):
    """Ops that return their input itself in eager though their schema says nothing of it (``type_as`` of the same
    dtype): the result keeps a caller's leaf's ``requires_grad`` under ``no_grad`` and ``inference_mode`` too."""

    def forward(self, x, w, mask, q):
        return (w.type_as(x).reshape(5, 4) @ x.transpose(-1, -2),
                F.scaled_dot_product_attention(q, q, q, attn_mask=mask.type_as(q)))


@pytest.mark.parametrize("streams", [1, 3])
def test_an_op_returning_its_input_keeps_the_flag_outside_grad_mode(streams):
    torch.manual_seed(0)
    m = ReturnsItsInput()
    args = (torch.randn(3, 2, 4), torch.randn(5, 4), torch.randn(2, 2, 6, 6), torch.randn(2, 2, 6, 8))
    step = compile(m, args, streams=streams)
    for graded in ((1, 2), (), (1,), (2,)):
        _check(step, m, args, graded)


class ShapedAfter(nn.Module):
    """``mask.view_as(other)``, ``w.type_as(other)``: the result's ``requires_grad`` is the first tensor's alone."""

    def forward(self, q, mask, other, w, x):
        return (F.scaled_dot_product_attention(q, q, q, attn_mask=mask.view_as(other)),
                w.type_as(other) @ x.transpose(-1, -2))


def test_a_view_as_takes_no_flag_from_the_tensor_it_is_shaped_after():
    torch.manual_seed(0)
    m = ShapedAfter()
    args = (torch.randn(2, 2, 6, 8), torch.randn(2, 2, 36), torch.randn(2, 2, 6, 6), torch.randn(5, 4),
            torch.randn(3, 2, 4))
    step = compile(m, args)
    for graded in ((2,), (1, 3), (1, 2, 3)):
        _check(step, m, args, graded)


class FromCond(nn.Module):
    """A mask out of ``torch.cond`` from the caller's mask, and a matrix out of a ``torch.no_grad()`` block: eager's
    autograd carries the flag through ``cond`` under grad mode, never out of the ``no_grad`` block."""

    def forward(self, q, mask, w, x):
        m = torch.cond(q.sum() > 0, lambda a: a * 2, lambda a: a - 1, (mask,))
        with torch.no_grad():
            w2 = w * 1.0
        return F.scaled_dot_product_attention(q, q, q, attn_mask=m), w2 @ x.transpose(-1, -2)


@pytest.mark.parametrize("streams", [1, 3])
def test_a_mask_out_of_cond_keeps_the_flag(streams):
    torch.manual_seed(0)
    m = FromCond()
    args = (torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 6), torch.randn(5, 4), torch.randn(3, 2, 4))
    step = compile(m, args, streams=streams)
    for graded in ((1,), (1, 2), (), (2,)):
        _check(step, m, args, graded)


class GradBlock(nn.Module):
    """A matrix computed in a ``torch.enable_grad()`` block: it requires grad under a caller's ``no_grad`` (eager's
    block turns grad mode on), never under ``inference_mode``."""

    def forward(self, w, x):
        with torch.enable_grad():
            w3 = w * 1.0
        return w3 @ x.transpose(-1, -2)


def test_an_enable_grad_block_compiled_under_no_grad_follows_its_own_mode():
    torch.manual_seed(0)
    m = GradBlock()
    args = (torch.randn(5, 4), torch.randn(3, 2, 4))
    with torch.no_grad():   # (the export keeps the block: docs/aten.md)
        step = compile(m, args)
    assert "wrap_with_set_grad_enabled" in str(step.program.exported.graph)
    for graded in ((0,), ()):
        _check(step, m, args, graded)
