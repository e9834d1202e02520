"""Round 48 (aten48): the ATen executor against eager on the CPU (``cuda_graph=False``, a NaN-poisoned arena).

Bugs fixed (each test failed before):
- under ``return_views``, a previous call's output fed back as an input that the program writes in place
  (``h.mul_(0.5)``, a recurrent state updated in place) had its new value written back into the caller's arena view
  after the call: over this call's own output in the same bytes, which came back holding ``h * 0.5`` where eager's
  is ``tanh(...)``. Now the call writes into its copy of the input (the caller's view is of bytes the call
  overwrites, as documented), and its outputs are eager's;
- likewise a fed-back input returned as it is (``return x * 2, x, x[1:]``): the second and third outputs were the
  caller's arena view, which this call had overwritten with ``x * 2``; now that copy, holding the input's values;
- two inputs whose byte spans interleave but share no element (the halves of ``qk.chunk(2, -1)``, ``t[:, ::2]`` beside
  ``t[:, 1::2]``) were refused where the program writes one in place ("share memory ... pass separate tensors"),
  where eager runs; now decided element by element (``layout.share_elements``): run, bitwise eager's, and inputs
  that do share an element are refused as before;
- under ``torch.use_deterministic_algorithms(True)`` (``fill_uninitialized_memory``, its default) eager's ``empty``
  family fills the new tensor (NaN, an integer dtype's largest value), which the program left as the arena's bytes:
  ``o = torch.empty(4, 3); o[:2] = x; return o`` held 0xFF bytes under ``poison`` (int64 -1 for 2**63 - 1, another
  NaN). Now filled as eager's, bit for bit, also after the mode is switched on after compile;
- ``torch._assert_async(cond)`` in ``forward``, and a custom op returning nothing that writes nothing (a check that
  raises, a logger), were dropped by the importer with export's shape asserts, so a call whose check fails ran on
  where eager raises and the logger never ran; now each is a node reading its tensor, run where eager's is: the call
  raises naming the node (and the message), and the next good call runs as eager;
- a module whose ``forward`` writes a parameter in place outside a ``no_grad`` block, compiled under ``no_grad``, then
  called under grad mode: eager refuses the write ("a leaf Variable that requires grad ..."), the program made it,
  silently changing the parameter. Now refused naming the parameter (found by one export under grad mode, at the
  first such call); a write inside ``with torch.no_grad():`` (an EMA update) still runs under grad mode as eager.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.layout import share_elements  # noqa: E402


class _Cell(nn.Module):
    """A recurrent step whose state input is updated in place."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x, h):
        h.mul_(0.5)
        return torch.tanh(self.lin(x) + h)


class _Returns(nn.Module):
    def forward(self, x):
        return x * 2, x, x[1:]


@pytest.mark.parametrize("streams", [1, 3])
def test_a_fed_back_output_written_in_place_leaves_this_calls_outputs_as_eagers(streams):
    torch.manual_seed(0)
    m = _Cell().eval()
    x, h = torch.randn(3, 8), torch.randn(3, 8)
    step = compile(m, (x, h.clone()), return_views=True, poison=True, cuda_graph=False, streams=streams)
    with torch.no_grad():
        y = step(x, h.clone())
        want_y = m(x, h.clone())
        assert torch.equal(y, want_y)
        for k in range(3):
            x = torch.randn(3, 8)
            y = step(x, y)            # the previous call's view, written by the program
            want_y = m(x, want_y)
            assert torch.equal(y, want_y), k


def test_a_fed_back_input_returned_as_it_is_holds_its_values():
    torch.manual_seed(0)
    m = _Returns()
    x = torch.randn(3, 4)
    step = compile(m, (x,), return_views=True, poison=True, cuda_graph=False)
    a, b, _ = step(x)
    assert b is x
    before = a.clone()
    got = step(a)
    want = m(before)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    got[1].add_(1)   # the returned input and its view still share memory, as eager's
    assert torch.equal(got[2], got[1][1:])


class _WritesBoth(nn.Module):
    def forward(self, a, b):
        b.add_(1)
        a.mul_(2)
        return a + b


def _halves():
    t = torch.randn(3, 8)
    return t, tuple(t.chunk(2, -1))


def _interleaved():
    t = torch.randn(3, 8)
    return t, (t[:, ::2], t[:, 1::2])


@pytest.mark.parametrize("make", [_halves, _interleaved])
def test_inputs_interleaved_in_one_storage_without_a_shared_element_run_as_eager(make):
    m = _WritesBoth()
    _, example = make()
    step = compile(m, tuple(x.clone() for x in example), poison=True, cuda_graph=False)
    for _ in range(2):
        t, args = make()
        te = t.clone()
        want = m(*make_like(te, args, t))
        got = step(*args)
        assert torch.equal(got, want)
        assert torch.equal(t, te)   # the caller's storage written as eager's


def make_like(te, args, t):
    """``args`` (views of ``t``) as the same views of ``te``."""
    return tuple(te.as_strided(a.shape, a.stride(), a.storage_offset()) for a in args)


def test_inputs_sharing_an_element_are_still_refused():
    m = _WritesBoth()
    step = compile(m, (torch.randn(3, 4), torch.randn(3, 4)), cuda_graph=False)
    t = torch.randn(3, 5)
    with pytest.raises(AtenExecutorError, match="share memory"):
        step(t[:, :4], t[:, 1:])


def _brute(a, b) -> bool:
    def bytes_of(t):
        base = t.data_ptr()
        out = set()
        for idx in torch.cartesian_prod(*[torch.arange(n) for n in t.shape]).reshape(-1, t.dim()).tolist():
            p = base + sum(i * s for i, s in zip(idx, t.stride())) * t.element_size()
            out.update(range(p, p + t.element_size()))
        return out
    return bool(bytes_of(a) & bytes_of(b))


_dims = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 7)), min_size=1, max_size=2)


@settings(max_examples=60, deadline=None)
@given(_dims, _dims, st.integers(0, 24), st.integers(0, 24), st.sampled_from([torch.float32, torch.int16, torch.uint8]))
def test_share_elements_agrees_with_listing_every_byte(da, db, oa, ob, dtype):
    store = torch.zeros(256, dtype=torch.uint8)
    f32 = store.view(torch.float32)
    other = store.view(dtype)
    a = f32.as_strided([n for n, _ in da], [s for _, s in da], oa)
    b = other.as_strided([n for n, _ in db], [s for _, s in db], ob)
    assert share_elements(a, b) == _brute(a, b)


class _Empties(nn.Module):
    def forward(self, x):
        o = torch.empty(4, 3)
        o[:2] = x
        return (o, torch.empty(5, dtype=torch.int64), x.new_empty(2, 2), torch.empty_like(x),
                torch.empty_strided((2, 3), (1, 2)), torch.empty(3, dtype=torch.bool),
                torch.empty(2, dtype=torch.bfloat16), torch.empty(2, dtype=torch.complex64),
                torch.empty(3, dtype=torch.uint8) + 1)


def _bits(t):
    return t.contiguous().view(-1).view(torch.uint8) if t.dtype != torch.bool else t.contiguous().view(torch.uint8)


@pytest.fixture
def deterministic():
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.utils.deterministic.fill_uninitialized_memory = before[2]


@pytest.mark.parametrize("switched_on_after_compile", [False, True])
def test_empty_under_deterministic_algorithms_is_filled_as_eagers(deterministic, switched_on_after_compile):
    m = _Empties()
    x = torch.randn(2, 3)
    torch.use_deterministic_algorithms(not switched_on_after_compile)
    step = compile(m, (x,), poison=True, cuda_graph=False)
    torch.use_deterministic_algorithms(True)
    for k in range(2):
        x = torch.randn(2, 3)
        for got, want in zip(step(x), m(x)):
            assert got.dtype == want.dtype and torch.equal(_bits(got), _bits(want)), (k, got, want)
    torch.utils.deterministic.fill_uninitialized_memory = False   # eager fills nothing: neither does the program
    got = step(x)[1]
    assert torch.equal(got, torch.full((5,), -1, dtype=torch.int64))   # the poison's bytes


class _Checked(nn.Module):
    def __init__(self, msg: str | None) -> None:
        super().__init__()
        self.msg = msg

    def forward(self, x):
        y = x * 2
        if self.msg is None:
            torch._assert_async((x > 0).all())
        else:
            torch._assert_async((x > 0).all(), self.msg)
        return y + 1


@pytest.mark.parametrize("msg", [None, "x must be positive"])
def test_assert_async_in_forward_runs_as_eagers(msg):
    m = _Checked(msg)
    step = compile(m, (torch.rand(4) + 0.5,), poison=True, cuda_graph=False)
    assert any(n.op == "_assert_async" or "_assert_async" in n.op for n in step.graph.nodes)
    bad = torch.tensor([1.0, -1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError):
        m(bad)
    with pytest.raises(AtenExecutorError, match=msg or "nonzero"):
        step(bad)
    good = torch.rand(4) + 0.5
    assert torch.equal(step(good), m(good))


_LOGGED: list[float] = []


@torch.library.custom_op("aten48_test::check_finite", mutates_args=())
def _check_finite(x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError("non-finite values")


@_check_finite.register_fake
def _(x):
    return None


@torch.library.custom_op("aten48_test::log_sum", mutates_args=())
def _log_sum(x: torch.Tensor) -> None:
    _LOGGED.append(float(x.sum()))


@_log_sum.register_fake
def _(x):
    return None


class _Effects(nn.Module):
    def forward(self, x):
        y = x * 2
        torch.ops.aten48_test.check_finite(y)
        torch.ops.aten48_test.log_sum(y)
        return y + 1


def test_custom_ops_returning_nothing_run_at_every_call_as_eagers():
    m = _Effects()
    step = compile(m, (torch.rand(3),), poison=True, cuda_graph=False)
    _LOGGED.clear()
    x = torch.ones(3)
    assert torch.equal(step(x), m(x))
    assert _LOGGED == [6.0, 6.0]   # the compiled call's, then eager's
    with pytest.raises(AtenExecutorError, match="non-finite values"):
        step(torch.tensor([1.0, float("inf"), 0.0]))


class _WritesWeight(nn.Module):
    def __init__(self, guarded: bool) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.guarded = guarded

    def forward(self, x):
        if self.guarded:
            with torch.no_grad():
                self.w.mul_(0.5)
        else:
            self.w.mul_(0.5)
        return x * self.w


def test_a_parameter_written_outside_no_grad_is_refused_under_grad_mode_as_eager():
    m, eager = _WritesWeight(False), _WritesWeight(False)
    with torch.no_grad():
        step = compile(m, (torch.ones(3),), cuda_graph=False)
        m.w.fill_(1.0)
        x = torch.randn(3)
        assert torch.equal(step(x), eager(x))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        eager(x)
    before = m.w.detach().clone()
    for _ in range(2):
        with pytest.raises(AtenExecutorError, match="parameter 'w'"):
            step(x)
    assert torch.equal(m.w.detach(), before)   # not written
    with torch.no_grad():
        assert torch.equal(step(x), eager(x))


def test_a_parameter_written_inside_no_grad_still_runs_under_grad_mode():
    m, eager = _WritesWeight(True), _WritesWeight(True)
    with torch.no_grad():
        step = compile(m, (torch.ones(3),), cuda_graph=False)
        m.w.fill_(1.0)
    for _ in range(2):
        x = torch.randn(3)
        got, want = step(x), eager(x)
        assert torch.equal(got.detach(), want.detach())
        assert torch.equal(m.w.detach(), eager.w.detach())
