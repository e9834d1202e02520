"""Round 31 of the PyTorch path on the CPU: hostile *program features* (not architectures) run by the ATen
executor against eager (1 and 3 streams and "auto", poisoned arena, fresh inputs per call).

- The same tensor passed as two example inputs: ``torch.export`` merges them into one input (the other
  placeholder has no user), so the program computes ``a * 2 + b`` as ``b * 2 + b``; a later call with two
  different tensors returned that, silently wrong. Such a call is now refused naming both inputs; and where the
  program writes the one tensor, the call it was made for (the tensor passed twice) runs: it was refused as
  "inputs share memory, and the program writes the first in place".
- An in-place metadata op on a user input or a weight itself (``x.t_()``, ``x.squeeze_()``, ``self.b.t_()``):
  eager changes the caller's tensor (the module's buffer), the executor only its arena copy's view, silently
  leaving the caller's shape as it was. Refused naming node and tensor, as ``resize_`` of one is.
- A non-tensor input export specialized (``n=2``) took a call with an equal value of another type (``2.0``,
  ``True``) or a float of the other zero sign: ``x * n`` then returned the exported int result where eager's is
  float. The type (and a float's sign) must match too.
- A nested tensor passed for a dense input: torch's raw "Internal error" from its `.shape`; now named."""

from __future__ import annotations

import copy

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402

STREAMS = [1, 3, "auto"]


class Add(nn.Module):
    def forward(self, a, b):
        return a * 2 + b


@pytest.mark.parametrize("streams", STREAMS)
def test_one_tensor_passed_twice_runs_as_eager_and_two_different_ones_are_refused(streams):
    t = torch.randn(5)
    step = compile(Add(), (t, t), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(5)
        assert torch.equal(step(x, x), Add()(x, x))
        assert torch.equal(step(x, x.view(5)), Add()(x, x))   # a view of the same elements, laid out alike
    a, b = torch.randn(5), torch.randn(5)
    with pytest.raises(AtenExecutorError, match=r"inputs 'a' and 'b' were one tensor in the export"):
        step(a, b)   # was b * 2 + b: silently wrong
    with pytest.raises(AtenExecutorError, match=r"inputs 'a' and 'b'"):
        step(a, a.flip(0))   # the same storage, other elements


def test_one_tensor_passed_twice_in_a_loaded_program_is_known_too(tmp_path):
    t = torch.randn(5)
    path = tmp_path / "add.pt2"
    torch.export.save(torch.export.export(Add(), (t, t)), path)
    step = compile(torch.export.load(path), streams=1)
    x = torch.randn(5)
    assert torch.equal(step(x, x), Add()(x, x))
    with pytest.raises(AtenExecutorError, match=r"inputs 'a' and 'b' were one tensor"):
        step(torch.randn(5), torch.randn(5))


def test_separate_example_tensors_take_any_call():
    """Exported with two tensors, the program reads both: one tensor passed twice is a call like any other."""
    step = compile(Add(), (torch.randn(5), torch.randn(5)), streams=3, poison=True)
    x, y = torch.randn(5), torch.randn(5)
    assert torch.equal(step(x, y), Add()(x, y))
    assert torch.equal(step(x, x), Add()(x, x))


class Meta(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op
        self.register_buffer("b", torch.randn(3, 4))

    def forward(self, x):
        self.op(self, x)
        return x * 2 + self.b.sum()


@pytest.mark.parametrize("op,shape,node,what", [
    (lambda m, x: x.t_(), (3, 4), "t_", "user input 'x'"),
    (lambda m, x: x.squeeze_(), (3, 1), "squeeze_", "user input 'x'"),
    (lambda m, x: x.swapdims_(0, 1), (3, 4), "swapdims_", "user input 'x'"),
    (lambda m, x: x.as_strided_((2, 2), (1, 2)), (3, 4), "as_strided_", "user input 'x'"),
    (lambda m, x: m.b.t_(), (3, 4), "t_", "weight 'b_b'"),
], ids=["t_", "squeeze_", "swapdims_", "as_strided_", "buffer_t_"])
def test_a_metadata_op_on_a_callers_or_modules_tensor_is_refused_naming_it(op, shape, node, what):
    """Eager leaves the caller's ``x`` (the module's ``b``) transposed; the executor left it as it was."""
    with pytest.raises(AtenExecutorError, match=rf"node '{node}' \(aten\.{node}\.[a-z]+\): {node} changes the "
                                                rf"shape or strides of {what}"):
        compile(Meta(op), (torch.randn(*shape),), streams=1)


@pytest.mark.parametrize("op,shape", [
    (lambda m, x: x.squeeze_(), (3, 4)),          # no size-1 dimension: nothing changes
    (lambda m, x: x.detach_(), (3, 4)),
    (lambda m, x: x[0].unsqueeze_(0), (3, 4)),    # a view of the input: the caller's tensor keeps its shape
    (lambda m, x: x.t().t_(), (3, 4)),
], ids=["squeeze_nothing", "detach_", "view_unsqueeze_", "view_t_"])
@pytest.mark.parametrize("streams", STREAMS)
def test_a_metadata_op_that_changes_no_callers_tensor_runs_as_eager(op, shape, streams):
    m = Meta(op)
    step = compile(copy.deepcopy(m), (torch.randn(*shape),), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(*shape)
        ref_x = x.clone()
        ref = m(ref_x)
        assert torch.equal(step(x), ref) and x.shape == ref_x.shape


class Scale(nn.Module):
    def forward(self, x, n):
        return x * n


@pytest.mark.parametrize("exported,called", [
    (2, 2.0),                  # int result where eager's is float
    (2, True),
    (True, 1),
    (True, 1.0),
    (0.0, -0.0),               # eager's x * -0.0 is -0.0 for a positive x
], ids=["int_float", "int_bool", "bool_int", "bool_float", "zero_sign"])
def test_a_specialized_scalar_of_another_type_or_zero_sign_is_refused(exported, called):
    step = compile(Scale(), (torch.arange(4), exported), streams=1)
    with pytest.raises(AtenExecutorError, match=rf"argument 'n' \(argument leaf 1\) is {called!r}, the program "
                                                rf"was exported with {exported!r}"):
        step(torch.arange(4), called)


@pytest.mark.parametrize("value", [2, 2.5, True, float("nan"), -0.0, "a"], ids=repr)
def test_the_specialized_scalar_itself_runs_as_eager(value):
    class Pick(nn.Module):
        def forward(self, x, n):
            return x * 2 if isinstance(n, str) else x * n

    step = compile(Pick(), (torch.ones(3), value), streams=1)
    out, ref = step(torch.ones(3), value), Pick()(torch.ones(3), value)
    assert out.dtype == ref.dtype and torch.equal(out.view(torch.int32), ref.view(torch.int32))  # bitwise: -0.0


def test_a_nested_tensor_passed_for_a_dense_input_is_named():
    """Its ``.shape`` is torch's raw "Internal error: NestedTensorImpl doesn't support sizes"."""
    step = compile(Scale(), (torch.randn(3), 2), streams=1)
    nested = torch.nested.nested_tensor([torch.randn(3)])
    with pytest.raises(AtenExecutorError, match=r"input 'x' is a nested tensor, the program runs on dense tensors "
                                                r"of shape \(3,\)"):
        step(nested, 2)


class WritesOne(nn.Module):
    def forward(self, a, b):
        a.add_(1)
        return b * 2, a


@pytest.mark.parametrize("streams", STREAMS)
def test_a_module_writing_one_tensor_passed_twice_runs_as_eager(streams):
    """The export merged the two (its program writes and reads one placeholder): the call it was made for was
    refused as "inputs share memory, and the program writes the first in place", so it could never run."""
    t = torch.randn(3)
    step = compile(WritesOne(), (t, t), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(3)
        y = x.clone()
        out, ref = step(x, x), WritesOne()(y, y)
        assert all(torch.equal(a, b) for a, b in zip(out, ref)) and torch.equal(x, y)
