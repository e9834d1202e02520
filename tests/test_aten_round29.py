"""Round 29 of the PyTorch path on the CPU: program shapes rather than models, run by the ATen executor against
eager (1 and 3 streams, poisoned arena, bitwise).

- An input exported expanded (stride 0: ``torch.randn(4, 1).expand(4, 4)``) keeps those strides in the export,
  so its planned slot holds the few distinct elements; ``copy_`` into it raised torch's "more than one element
  of the written-to tensor refers to a single memory location" at every call.
- ``set_`` and ``resize_`` make a tensor name other bytes. Run as they stand on an arena view they rewrote that
  view object: the next call's ``clone`` into it failed on the new shape (``set_``), and ``self.b.set_(x)``
  pointed the module's buffer into the arena."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _equal_eager(module, make_inputs, streams: int, calls: int = 3):
    """Compile on ``make_inputs()``, then each call on fresh inputs equals eager bitwise (outputs and inputs)."""
    step = compile(module, make_inputs(), streams=streams, poison=True)
    for _ in range(calls):
        xs = make_inputs()   # none of these programs writes its inputs: eager and the executor share them
        with torch.no_grad():
            ref = module(*xs)
        out = step(*xs)
        ref, out = (ref, out) if isinstance(ref, tuple) else ((ref,), (out,))
        assert len(out) == len(ref)
        for a, b in zip(out, ref):
            assert a.shape == b.shape and torch.equal(a, b)
    return step


class ReadsItsInput(nn.Module):
    def forward(self, x):
        return x * 2, x.sum(), x + x.transpose(0, 1), x.t().contiguous()


def _expanded():
    return torch.randn(4, 1).expand(4, 4)


@pytest.mark.parametrize("make,planned", [
    (_expanded, 16),                                          # a column's 4 floats
    (lambda: torch.randn(1, 1).expand(4, 4), 4),              # one float
    (lambda: torch.randn(7).as_strided((4, 4), (1, 1)), 28),  # rows one element apart: no zero stride
], ids=["expand_cols", "expand_all", "overlapping_rows"])
@pytest.mark.parametrize("streams", [1, 3])
def test_an_input_exported_with_elements_sharing_memory_loads_and_runs_as_eager(make, planned, streams):
    step = _equal_eager(ReadsItsInput(), lambda: (make(),), streams)
    assert step.graph.tensor(step.program.user_inputs[0][1]).size == planned


def test_a_call_laid_out_otherwise_than_an_expanded_input_is_refused_naming_it():
    """Its slot holds a column's distinct values only: a dense tensor's 16 values have no place there."""
    step = compile(ReadsItsInput(), (_expanded(),), streams=1)
    with pytest.raises(AtenExecutorError, match=r"input 'x' was exported with strides \(1, 0\).*\(4, 1\)"):
        step(torch.randn(4, 4))
    out = step(_expanded())   # and the executor still works
    assert out[0].shape == (4, 4)


class SetsAnIntermediate(nn.Module):
    def forward(self, x, z):
        y = x.clone()
        y.set_(z * 3)
        return y * 2, y.sum()


class ResizesAViewedIntermediate(nn.Module):
    def forward(self, x):
        y = x * 2
        v = y[0]
        y.resize_(40)
        y.fill_(2.0)
        return y + v.sum(), y


@pytest.mark.parametrize("streams", [1, 3])
def test_set_and_resize_of_an_intermediate_run_call_after_call(streams):
    """The second call failed in ``clone``'s copy into the arena's view object of ``clone``, which the first
    call's ``set_`` had rebound to ``z * 3``'s bytes and shape."""
    _equal_eager(SetsAnIntermediate(), lambda: (torch.randn(3), torch.randn(5)), streams)
    step = _equal_eager(ResizesAViewedIntermediate(), lambda: (torch.randn(3, 4),), streams)
    assert tuple(step.executor.layout.views["mul"].shape) == (3, 4)   # the arena's views keep their shapes


class SetsABuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.zeros(3))

    def forward(self, z):
        self.b.set_(z * 1)
        return self.b + 1


class SetsItsInput(nn.Module):
    def forward(self, x, z):
        x.set_(z)
        return x * 2


class ResizesItsInput(nn.Module):
    def forward(self, x):
        x.resize_(40)
        return x.fill_(1.0) + 0


@pytest.mark.parametrize("module,inputs,what", [
    (SetsABuffer(), (torch.randn(5),), "set_ makes weight 'b_b'"),
    (SetsItsInput(), (torch.randn(3), torch.randn(5)), "set_ makes user input 'x'"),
    (ResizesItsInput(), (torch.randn(3, 4),), "resize_ makes user input 'x'"),
], ids=["set_buffer", "set_input", "resize_input"])
def test_set_or_resize_of_a_user_input_or_a_weight_is_refused_naming_the_node(module, inputs, what):
    """Eager changes the caller's tensor or the module's buffer itself: the buffer was pointed into the arena
    (changing with every later call), and a grown input failed in the next op with a shape mismatch."""
    with pytest.raises(AtenExecutorError, match=rf"node '(set_|resize_)' \(aten\.(set_|resize_)[.a-zA-Z_]*\): {what}"):
        compile(module, inputs, streams=1)


class ReturnsExpansions(nn.Module):
    """Outputs that are views whose elements share memory: of an intermediate, of the input, of a weight."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8))

    def forward(self, x):
        y = x + 1
        return y.expand(100000, 100000, 8), x.expand(100000, 100000, 8), self.w.expand(3, 8), y.expand(2, 8) * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_an_expanded_output_is_returned_as_eager_returns_it_not_written_out_densely(streams):
    """eager returns the 32 bytes under ``y.expand(100000, 100000, 8)`` as a view; the executor's output copy
    (``clone()``) wrote its 8e10 elements densely and failed in torch's allocator ("you tried to allocate
    320000000000 bytes"); smaller expansions returned dense copies of all their elements."""
    m = ReturnsExpansions()
    step = compile(m, (torch.randn(8),), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(8)
        with torch.no_grad():
            ref = m(x)
        out = step(x)
        for k, (a, b) in enumerate(zip(out, ref)):
            assert a.shape == b.shape and a.stride() == b.stride()
            assert k == 3 or a.untyped_storage().nbytes() == 32   # the dense product: its 64 bytes
            assert torch.equal(a[(0,) * (a.dim() - 1)], b[(0,) * (b.dim() - 1)])
            assert torch.equal(a[(-1,) * (a.dim() - 1)], b[(-1,) * (b.dim() - 1)])


def _lying_op(name: str, real, fake):
    """A ``torch.library`` custom op whose kernel returns ``real(x)`` while its fake implementation (what export
    plans by) says ``fake(x)``."""
    def kernel(x: torch.Tensor) -> torch.Tensor:
        return real(x)
    op = torch.library.custom_op(f"memplan_round29::{name}", kernel, mutates_args=())
    op.register_fake(fake)
    return op


_LIARS = {
    "broadcasts": _lying_op("broadcasts", lambda x: x[:1] * 2, torch.empty_like),
    "other_dtype": _lying_op("other_dtype", lambda x: x.double(), torch.empty_like),
    "larger": _lying_op("larger", lambda x: torch.cat([x, x]), torch.empty_like),
}


class CallsALiar(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, x):
        return self.op(x * 1)


@pytest.mark.parametrize("liar,real", [("broadcasts", r"\(1, 4\) torch.float32"),
                                       ("other_dtype", r"\(3, 4\) torch.float64"),
                                       ("larger", r"\(6, 4\) torch.float32")])
def test_a_custom_op_whose_result_is_not_its_fake_is_refused_naming_the_node(liar, real):
    """Its result is copied into the view planned from the fake: ``copy_`` broadcast a (1, 4) result over the
    (3, 4) slot and cast a float64 one to float32 without a word (eager returns the (1, 4) and the float64), and
    refused a larger one only as "The size of tensor a (3) must match the size of tensor b (6)"."""
    step = compile(CallsALiar(_LIARS[liar]), (torch.randn(3, 4),), streams=1)
    with pytest.raises(AtenExecutorError, match=rf"node '{liar}' \(memplan_round29\.{liar}\.default\): result 0 is "
                                                rf"{real}, but the export's fake kernel said \(3, 4\) torch.float32"):
        step(torch.randn(3, 4))


class _OutResized(nn.Module):
    """An ``out=`` tensor of the wrong size, which eager resizes (with a warning): ``mm`` into 2 elements of a
    2 x 2 result (several resized outs, ``max(dim, out=(v, i))``, stay refused naming the node)."""

    def forward(self, a, b):
        y = torch.mm(a, b, out=torch.empty(2))
        return y * 2, y


@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")
@pytest.mark.parametrize("streams", [1, 3])
def test_an_out_call_into_a_tensor_it_must_resize_runs_its_functional_op(streams):
    """The export keeps ``aten.mm.out`` writing its resized ``out``, a result partly over that tensor; the
    executor refused it "the op has no functional form", which ``mm.default`` is. The out= overload's
    functional twin now computes it apart and the result is copied into place."""
    _equal_eager(_OutResized(), lambda: (torch.randn(2, 3), torch.randn(3, 2)), streams)
