"""Round 42: ATen executor defects found by attacking it on the CPU (``cuda_graph=False``).

Bugs fixed (each test marked "failed before" did):
- ``exact._cudnn_conv`` passed cuDNN's legacy ``torch.backends.cudnn.allow_tf32`` to ``cudnn_convolution``: that
  getter raises where convolutions and RNNs were given different float32 precisions (torch 2.9's API,
  ``torch.backends.cudnn.conv.fp32_precision = "ieee"`` beside RNNs' "tf32"), so lowering any CUDA convolution
  under that state was a raw RuntimeError; now the convolutions' own precision, what eager's convolution reads;
- a user input returned as it is (``return x``, ``y.contiguous()`` of a contiguous ``y``) came back as a copy, and
  beside views of it (``return x, x[1]``) as copies sharing a new storage, so an in-place write to the result left
  the caller's tensor as it was where eager's changes it (a view of ``x`` returned alone was already the caller's
  view); now the caller's tensor itself and views of it, where it is laid out as at export;
- an ``as_strided`` over a user input (``x.as_strided((2, 3), (1, 2))``) reads the caller's storage by strides, but a
  call with a tensor of other strides than at export (a transposed one) ran on the executor's copy laid out as at
  export: other elements than eager's, silently; now refused naming the input, its strides and the node;
- ``forward`` reading a tensor's layout in Python (``if x.is_contiguous():``, ``x.stride(0)``, ``x.storage_offset()``)
  had the export's answer fixed in the program: a call with a transposed input took the export's branch, silently;
  now such reads are recorded at export and a call laid out otherwise is refused naming the input and the read;
- ``forward`` taking ``next()`` of an iterator or generator its module holds (``self.it = iter(scales)``,
  ``itertools.count()``, a generator) compiled, and every compiled call reused the value the export took (compile
  consumed one); now refused at compile naming the attribute;
- an input of a tensor subclass with a ``__torch_function__`` of its own ran the plain program on its data, where
  eager's ops go through the subclass (a product plus 100): now refused naming the input and its class.
"""

from __future__ import annotations

import itertools

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile, exact, process_settings  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs, **kw):
    return compile(m, inputs, cuda_graph=False, **kw)


@pytest.fixture
def settings_kept():
    """Every process setting the tests touch put back after, whatever a test (or a bug) left."""
    saved = process_settings.process_settings(torch)
    yield saved
    process_settings.restore_process_settings(torch, saved)


@pytest.mark.skipif(not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"),
                    reason="torch before 2.9 has no per-op float32 precision")
@pytest.mark.parametrize("conv, rnn", [("ieee", "tf32"), ("tf32", "ieee")])
def test_cudnn_conv_reads_the_convolutions_own_tf32_precision(settings_kept, monkeypatch, conv, rnn):
    """Failed before (RuntimeError "mix of the legacy and new APIs"): under conv and RNN precisions that differ,
    the lowering of a cuDNN convolution read the legacy getter, which raises. Eager's convolution passes
    ``allowTF32CuDNN(CONV)``: TF32 exactly where the convolutions' precision is "tf32". The backend choice is
    stubbed to cuDNN (no GPU here); the lowering is built, not run."""
    torch.backends.cudnn.conv.fp32_precision = conv
    torch.backends.cudnn.rnn.fp32_precision = rnn
    with pytest.raises(RuntimeError):   # (the state this test is about)
        _ = torch.backends.cudnn.allow_tf32
    monkeypatch.setattr(torch._C, "_select_conv_backend", lambda *a: torch._C._ConvBackend.Cudnn)
    x, w = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3)
    out = torch.empty(1, 3, 3, 3)
    kind, run, copies = exact._cudnn_conv(torch, {"input": x, "weight": w}, out)
    assert (kind, copies) == ("exact", 0)
    assert run.func is torch.ops.aten.cudnn_convolution.out
    assert run.args[-1] is (conv == "tf32")   # allow_tf32, after benchmark and deterministic


class ReturnsInput(nn.Module):
    def forward(self, x):
        return x


class ReturnsInputBesideViews(nn.Module):
    def forward(self, x, y):
        return x, x[1], x[:, ::2], y.contiguous(), x * 2


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_returned_as_it_is_is_the_callers_tensor(return_views):
    """Failed before (without ``return_views``): ``return x`` gave a copy, so ``step(x).add_(1)`` left the caller's
    ``x`` as it was where eager's changes it (its ``x.view(-1)`` returned was already the caller's view)."""
    x = torch.randn(3, 4)
    step = _compile(ReturnsInput(), x, return_views=return_views)
    for _ in range(2):
        x = torch.randn(3, 4)
        before = x.clone()
        got = step(x)
        assert got is x and ReturnsInput()(x) is x
        got.add_(1)
        assert torch.equal(x, before + 1)
    assert step.stats.output_copies == 0


@pytest.mark.parametrize("streams", [1, 3])
def test_an_input_returned_beside_views_of_it_is_the_callers_tensor_and_they_its_views(streams):
    """Failed before: ``return x, x[1], ...`` gave copies sharing one new storage, so a write to any of them left the
    caller's ``x`` as it was; eager's are ``x`` and views of it. ``y.contiguous()`` is ``y`` itself in eager too."""
    m = ReturnsInputBesideViews()
    step = compile(m, (torch.randn(3, 4), torch.randn(5)), streams=streams, poison=True, cuda_graph=False)
    for _ in range(2):
        x, y = torch.randn(3, 4), torch.randn(5)
        want = m(x.clone(), y.clone())
        got = step(x, y)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        assert got[0] is x and got[3] is y
        got[1].zero_()   # eager: a row of the caller's x
        assert torch.equal(x[1], torch.zeros(4)) and torch.equal(got[2][1], torch.zeros(2))
        assert not torch.equal(got[4][1], torch.zeros(4))   # (x * 2: a tensor of its own)
    assert step.stats.output_copies == 1


def test_an_input_laid_out_otherwise_returned_beside_views_of_it_keeps_them_sharing():
    """A caller's input with other strides than at export: its views are not eager's (those have the caller's
    strides; the program computed the export's), so the input and its views stay copies sharing one storage, with
    eager's values."""
    m = ReturnsInputBesideViews()
    step = _compile(m, torch.randn(3, 4), torch.randn(5))
    x, y = torch.randn(4, 3).t(), torch.randn(5)
    want, got = m(x, y), step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert got[0] is not x and got[3] is y
    got[0][1].fill_(7.0)
    assert torch.equal(got[1], torch.full((4,), 7.0))   # (one storage, as eager's outputs share one)


class ReturnsInputBesideAnIntView(nn.Module):
    def forward(self, x):
        return x, x[1], x.view(torch.int32)


def test_an_input_returned_beside_a_view_of_another_dtype_keeps_all_sharing_one_storage():
    """A view in another dtype is no view the executor makes of the caller's tensor: then the input and all its views
    stay copies sharing one storage (as before), so a write to one shows in the others as in eager, rather than the
    input the caller's and that view a copy apart."""
    m = ReturnsInputBesideAnIntView()
    step = _compile(m, torch.randn(3, 4))
    x = torch.randn(3, 4)
    got, want = step(x), m(x.clone())
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    got[0].zero_()
    want[0].zero_()
    assert all(torch.equal(a, b) for a, b in zip(got, want))

class StridedWindow(nn.Module):
    def __init__(self, offset=None):
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return x.as_strided((2, 3), (1, 2), self.offset) * 1


@pytest.mark.parametrize("offset", [None, 0])
def test_an_as_strided_read_of_an_input_requires_the_exports_strides(offset):
    """Failed before: ``as_strided`` reads the caller's storage by strides, so of a transposed caller's tensor (the
    export's contiguous) eager's window holds other elements than the program's, which read its copy of the input
    laid out as at export: a wrong result, silently. A tensor with the export's strides at another storage offset
    (no offset given: the window follows the tensor's own) still runs, as eager."""
    m = StridedWindow(offset)
    step = compile(m, (torch.randn(4, 6),), cuda_graph=False, poison=True)
    for x in (torch.randn(4, 6), torch.randn(30)[:24].view(4, 6)):
        assert torch.equal(step(x), m(x))
    if offset is None:
        x = torch.randn(30)[3:27].view(4, 6)
        assert torch.equal(step(x), m(x))
    x = torch.randn(6, 4).t()
    with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 4\), the program was exported with "
                                                r"\(6, 1\), and node 'as_strided' reads the caller's storage"):
        step(x)


class BranchesOnLayout(nn.Module):
    def forward(self, x):
        return x * 2 if x.is_contiguous() else x * 3


class ReadsOffset(nn.Module):
    def forward(self, x):
        return x * x.storage_offset()


class ReadsNoLayout(nn.Module):
    def forward(self, x):
        return (x * 2).t().contiguous()


def test_forward_reading_an_inputs_layout_refuses_a_call_laid_out_otherwise():
    """Failed before: export fixes ``x.is_contiguous()``'s answer of the export's input in the program, so a call with
    a transposed tensor returned ``x * 2`` where eager's returns ``x * 3``, silently. Now refused naming the input,
    its strides, the read and its line; a call laid out as at export runs, and the watch leaves ``torch.Tensor``'s
    methods as they were."""
    m = BranchesOnLayout()
    step = _compile(m, torch.randn(4, 6))
    assert [method for method, _where in step.program.layout_reads] == ["is_contiguous"]
    assert "is_contiguous" not in vars(torch.Tensor) and "stride" not in vars(torch.Tensor)
    x = torch.randn(4, 6)
    assert torch.equal(step(x), m(x))
    x = torch.randn(6, 4).t()
    with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 4\), the export's \(6, 1\), and forward "
                                                r"read Tensor.is_contiguous\(\) at test_aten_round42.py:\d+ while"):
        step(x)


def test_forward_reading_a_storage_offset_refuses_a_call_at_another_offset():
    """Failed before: ``x * x.storage_offset()`` computed the export's offset (2) for a call at offset 1."""
    m = ReadsOffset()
    step = _compile(m, torch.randn(10)[2:8])
    x = torch.randn(10)[2:8]
    assert torch.equal(step(x), m(x))
    with pytest.raises(AtenExecutorError, match=r"input 'x' has storage offset 1, the export's 2, and forward read "
                                                r"Tensor.storage_offset\(\)"):
        step(torch.randn(10)[1:7])


class ReadsDimOrder(nn.Module):
    def forward(self, x):
        return x * 2 if x.dim_order() == (0, 1) else x * 3


@pytest.mark.skipif(not hasattr(torch.Tensor, "dim_order"), reason="torch before 2.3 has no dim_order")
def test_forward_reading_an_inputs_dim_order_refuses_a_call_laid_out_otherwise():
    """Failed before (round 42 review): ``x.dim_order()`` is torch's Python, whose ``stride()`` read is torch's own,
    so nothing was recorded and a transposed ``x`` returned the export's ``x * 2`` where eager gives ``x * 3``."""
    m = ReadsDimOrder()
    step = _compile(m, torch.randn(4, 4))
    x = torch.randn(4, 4)
    assert torch.equal(step(x), m(x))
    with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 4\), the export's \(4, 1\), and "
                                                r"forward read Tensor.dim_order\(\)"):
        step(torch.randn(4, 4).t())


class ReadsOffset2d(nn.Module):
    def forward(self, x):
        return x * x.storage_offset()


def test_forward_reading_a_storage_offset_alone_takes_other_strides():
    """Failed before (round 42 review: "input 'x' has strides (1, 4)..., forward read Tensor.storage_offset()"):
    ``x.storage_offset()`` says nothing of the strides, yet a transposed input at the export's offset was refused."""
    m = ReadsOffset2d()
    step = _compile(m, torch.randn(4, 4))
    x = torch.randn(4, 4).t()
    assert torch.equal(step(x), m(x))


def test_a_forward_reading_no_layout_runs_on_any_layout():
    """torch's own layout reads (its kernels' and decompositions', the importer's) are no ``forward``'s: a program
    without a read of ``forward``'s takes a transposed input as before, eager's values."""
    m = ReadsNoLayout()
    step = _compile(m, torch.randn(4, 6))
    assert step.program.layout_reads == ()
    x = torch.randn(6, 4).t()
    assert torch.equal(step(x), m(x))


class TakesNext(nn.Module):
    def __init__(self, it, in_list=False):
        super().__init__()
        if in_list:
            self.its = [it]
        else:
            self.it = it

    def forward(self, x):
        it = self.its[0] if hasattr(self, "its") else self.it
        return x * next(it)


def _counter():
    n = 0
    while True:
        n += 1
        yield n


@pytest.mark.parametrize("make, label", [
    (lambda: TakesNext(iter([1.0, 2.0, 3.0])), "TakesNext.it"),
    (lambda: TakesNext(itertools.count(1)), "TakesNext.it"),
    (lambda: TakesNext(_counter()), "TakesNext.it"),
    (lambda: TakesNext(iter({2.0: "a", 3.0: "b"})), "TakesNext.it"),
    (lambda: TakesNext(_counter(), in_list=True), r"TakesNext.its\[0\]"),
    # (round 42 review, failed before: compiled, every call ``x * 0.5``; the list iterator they advance is the same
    # object at every position, and ``__reduce__`` showed it only by identity)
    (lambda: TakesNext(map(float, [0.5, 1.0, 2.0])), "TakesNext.it"),
    (lambda: TakesNext(filter(None, [1.0, 2.0, 3.0])), "TakesNext.it"),
])
def test_forward_advancing_an_iterator_its_module_holds_is_refused(make, label):
    """Failed before: compiled, and every compiled call returned ``x * 1`` (the export's ``next()``) where eager's
    calls give ``x * 2``, ``x * 3``..."""
    with pytest.raises(AtenExecutorError, match=rf"forward advances the iterator {label} \(next\(\)"):
        _compile(make(), torch.ones(2))


def test_an_iterator_forward_does_not_advance_is_no_change():
    class Holds(nn.Module):
        def __init__(self):
            super().__init__()
            self.it, self.g, self.m = iter([1, 2]), _counter(), map(int, [1, 2])

        def forward(self, x):
            return x * 2

    m = Holds()
    step = _compile(m, torch.ones(2))
    assert torch.equal(step(torch.ones(2)), torch.full((2,), 2.0))
    assert next(m.it) == 1 and next(m.g) == 1 and next(m.m) == 1


class AddsToProducts(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func in (torch.Tensor.mul, torch.mul, torch.Tensor.__mul__):
            with torch._C.DisableTorchFunctionSubclass():
                return out + 100
        return out


class PlainSubclass(torch.Tensor):
    pass


class Triples(nn.Module):
    def forward(self, x):
        return x * 3


def test_an_input_of_a_subclass_with_its_own_torch_function_is_refused():
    """Failed before: the compiled call returned ``x * 3`` where eager's went through the subclass (``x * 3 + 100``).
    A subclass that changes nothing (``nn.Parameter``'s disabled ``__torch_function__``) still runs."""
    step = _compile(Triples(), torch.randn(3))
    x = torch.randn(3)
    with pytest.raises(AtenExecutorError, match=r"input 'x' is a AddsToProducts, a tensor subclass with a "
                                                r"__torch_function__ or __torch_dispatch__ of its own"):
        step(x.as_subclass(AddsToProducts))
    assert torch.equal(step(nn.Parameter(x, requires_grad=False)), x * 3)
    assert torch.equal(step(x.as_subclass(PlainSubclass)).as_subclass(torch.Tensor), x * 3)


class Contiguous(nn.Module):
    def forward(self, x):
        return x.contiguous()


def test_an_input_returned_laid_out_otherwise_than_at_export_is_a_copy():
    """Failed before (``got is x``): compiled with a contiguous ``x``, ``x.contiguous()`` is the input itself in the
    program, and a transposed caller's ``x`` came back itself where eager returns a contiguous copy of it, so a write
    to the result changed the caller's tensor. Laid out otherwise than at export, a returned input is a copy (the
    program cannot tell ``return x`` from ``x.contiguous()``); a size-1 dimension's stride does not count."""
    m = Contiguous()
    step = _compile(m, torch.randn(3, 4))
    x = torch.randn(4, 3).t()
    got, want = step(x), m(x)
    assert want is not x and got is not x and torch.equal(got, want)
    got.fill_(7.0)
    assert not torch.equal(x, got)
    step = _compile(m, torch.randn(1, 4))
    x = torch.randn(3, 4)[1:2]   # (stride (4, 1) where the export's is (4, 1) too; a (1, 4) slice of (3, 8): (8, 1))
    y = torch.randn(3, 8)[1:2, :4]
    assert step(x) is x and m(y) is y and step(y) is y


class ReadsItsWeightsLayout(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 4))
        self.register_buffer("b", torch.randn(4))

    def forward(self, x):
        k = self.w.stride(0) + self.b.stride(0) + int(self.w.is_contiguous())
        return x @ self.w * k


def test_forward_reading_its_own_weights_layout_takes_any_input_layout():
    """Failed before ("input 'x' has strides (1, 4)... forward read Tensor.stride()"): a read of the module's own
    parameter or buffer (``self.w.stride(0)``) was recorded as a layout read, so every call with a transposed input
    was refused, though the read never looked at an input; a weight's layout is the guard's (held to compile's)."""
    m = ReadsItsWeightsLayout()
    with torch.no_grad():
        step = _compile(m, torch.randn(4, 4))
        assert step.program.layout_reads == ()
        x = torch.randn(4, 4).t()
        assert torch.equal(step(x), m(x))


class WritesAndReturnsInput(nn.Module):
    def forward(self, x):
        x.mul_(2)
        return x, x.view(-1), x * 3


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_written_in_place_and_returned_is_the_callers_tensor(return_views):
    """Failed before (round 42 review: ``got[0] is x`` False): ``x.mul_(2); return x`` returned a view of the caller's
    ``x`` (its values, sharing its storage) where eager returns ``x`` itself."""
    m = WritesAndReturnsInput()
    with torch.no_grad():
        step = _compile(m, torch.ones(2, 3), return_views=return_views)
        for _ in range(2):
            x, xe = torch.ones(2, 3), torch.ones(2, 3)
            got, want = step(x), m(xe)
            assert got[0] is x and want[0] is xe
            assert all(torch.equal(a, b) for a, b in zip(got, want)) and torch.equal(x, xe)
            got[1].add_(1)
            assert torch.equal(x, torch.full((2, 3), 3.0))
