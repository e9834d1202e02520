"""Round 43: ATen executor defects found by comparing compiled modules with eager on the CPU (``cuda_graph=False``).

Bugs fixed (each test marked "failed before" did):
- under ``return_views=True`` a user input returned as it is (``return x.contiguous()``, the input itself in the
  program) came back as the caller's tensor whatever its layout: a transposed ``x`` itself, where eager's
  ``contiguous()`` is a contiguous copy (a write to the result changed the caller's tensor); without
  ``return_views`` the copy had the caller's strides (``is_contiguous()`` False). Now a copy laid out as at export
  in both modes (the session-42 rule: the caller's tensor only where laid out as at export);
- under ``return_views`` an input laid out otherwise returned beside views of it came back as the caller's tensor
  beside the arena's views (a write to a view did not show in it): now the arena's views of one storage, as the
  copies sharing one storage without ``return_views``;
- ``_check_layouts`` walked the export's whole graph at every call (its placeholders' layouts): found once per build;
- where the export saw no ``contiguous()`` / ``to(memory_format=...)`` return its tensor itself, a returned input laid
  out otherwise is the caller's tensor and its views eager's views (the export's view ops run again on it): copies
  before; with such a call seen, copies as above;
- a write to an input through a reshape of it or a ``contiguous()`` that returned it (``x.reshape(-1).add_(1)``),
  called with the input laid out otherwise, changed the caller's tensor where eager's reshape copies: refused;
- ``x.detach()`` / ``self.w.detach()[1:]`` returned required grad where eager's does not;
- subclass inputs: a pass-through ``__torch_function__`` runs (refused before), one overriding a ``torch.Tensor``
  method (``__mul__``) is refused (taken before, silently wrong), and results are of the subclass where eager's are.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_aten_round42 import AddsToProducts  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


def _compile(m, *inputs, **kw):
    return compile(m, inputs, cuda_graph=False, **kw)


class Contiguous(nn.Module):
    def forward(self, x):
        return x.contiguous()


class ReturnsInputTwice(nn.Module):
    def forward(self, x):
        return x, x


class ReturnsContiguousTwice(nn.Module):
    def forward(self, x):
        y = x.contiguous()
        return y, y


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_returned_laid_out_otherwise_is_a_copy_laid_out_as_at_export(return_views):
    """Failed before: under ``return_views`` the caller's transposed ``x`` itself came back (eager's ``contiguous()`` is
    a new contiguous tensor, so the write below changed the caller's ``x``); without it a copy with the caller's
    strides (1, 3), where eager's is contiguous (4, 1)."""
    m = Contiguous()
    step = _compile(m, torch.randn(3, 4), return_views=return_views)
    for _ in range(2):
        x = torch.randn(4, 3).t()
        before = x.clone()
        got, want = step(x), m(x)
        assert got is not x and want is not x
        assert torch.equal(got, want) and got.stride() == want.stride() == (4, 1) and got.is_contiguous()
        got.fill_(7.0)
        assert torch.equal(x, before)
    x = torch.randn(3, 4)
    assert step(x) is x and m(x) is x   # (laid out as at export: the caller's tensor, as before)


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_returned_twice_laid_out_otherwise_is_one_copy(return_views):
    """``y = x.contiguous(); return y, y`` of a transposed ``x``: one copy returned twice (``a is b``, as eager's one
    object twice)."""
    m = ReturnsContiguousTwice()
    step = _compile(m, torch.randn(3, 4), return_views=return_views)
    x = torch.randn(4, 3).t()
    a, b = step(x)
    want = m(x)
    assert a is b and a is not x and torch.equal(a, x) and a.stride() == want[0].stride() == (4, 1)


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_returned_as_it_is_laid_out_otherwise_is_the_callers_tensor(return_views):
    """Failed before (a copy): where the export saw ``forward`` call no ``contiguous()`` (nor ``to(memory_format=)``)
    that returned its tensor, the program's ``return x`` is eager's, the caller's tensor whatever its layout: a
    transposed ``x`` comes back itself, twice for ``return x, x``, and a write to it is the caller's."""
    m = ReturnsInputTwice()
    step = _compile(m, torch.randn(3, 4), return_views=return_views)
    assert step.program.layout_watched and step.program.layout_reads == ()
    x = torch.randn(4, 3).t()
    a, b = step(x)
    want = m(x)
    assert a is b is x and want[0] is x
    assert step.stats.output_copies == 0


class ToChannelsLast(nn.Module):
    def forward(self, x):
        return x.to(memory_format=torch.channels_last)


def test_an_input_returned_by_to_memory_format_laid_out_otherwise_is_a_copy():
    """``x.to(memory_format=torch.channels_last)`` of a channels-last export is the input itself in the program; of a
    contiguous caller's ``x`` eager's is a channels-last copy: the export records the call, so that is a copy laid out
    as at export, as ``contiguous()``'s is."""
    m = ToChannelsLast()
    step = _compile(m, torch.randn(1, 3, 4, 4).to(memory_format=torch.channels_last))
    assert [method for method, _w in step.program.layout_reads] == ["to"]
    x = torch.randn(1, 3, 4, 4)
    got, want = step(x), m(x)
    assert got is not x and torch.equal(got, want) and got.stride() == want.stride()


class ReturnsInputBesideViews(nn.Module):
    def forward(self, x):
        x = x.contiguous()   # (the input itself at export: the program cannot tell it from ``return x, ...``)
        return x, x[1], x[:, ::2], x * 2


def test_return_views_an_input_laid_out_otherwise_beside_its_views_shares_one_storage():
    """Failed before: under ``return_views`` a transposed ``x`` came back itself beside the arena's views of its slot,
    so a write to ``x[1]`` returned did not show in the returned ``x`` (eager's are one tensor and its views). Now all
    are the arena's views of its slot (one storage: valid until the next call, as every ``return_views`` output), as
    they are copies sharing one storage without ``return_views``."""
    m = ReturnsInputBesideViews()
    step = _compile(m, torch.randn(3, 4), return_views=True)
    x = torch.randn(4, 3).t()
    before = x.clone()
    got, want = step(x), m(x)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert got[0] is not x
    got[1].fill_(7.0)
    assert torch.equal(got[0][1], torch.full((4,), 7.0)) and torch.equal(got[2][1], torch.full((2,), 7.0))
    assert torch.equal(x, before)
    x = torch.randn(3, 4)   # (laid out as at export: the caller's tensor and its views, as before)
    got = step(x)
    assert got[0] is x and m(x)[0] is x
    got[1].zero_()
    assert torch.equal(x[1], torch.zeros(4))


class BranchesOnLayout(nn.Module):
    def forward(self, x, y):
        return x * 2 + y if x.is_contiguous() else x * 3 + y


def test_layout_check_reads_no_graph_per_call(monkeypatch):
    """Failed before (the graph's nodes walked at every call): ``_check_layouts`` rebuilt its placeholder map per call;
    it is found once, at the build. The refusal itself is round 42's."""
    m = BranchesOnLayout()
    step = _compile(m, torch.randn(3, 4), torch.randn(3, 4))
    assert step.program.layout_reads
    walks = []
    real = torch.fx.Graph.nodes

    def nodes(graph):
        walks.append(graph)
        return real.fget(graph)
    monkeypatch.setattr(torch.fx.Graph, "nodes", property(nodes))
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    for _ in range(3):
        assert torch.equal(step(x, y), m(x, y))
    assert walks == []
    with pytest.raises(Exception, match=r"input 'x' has strides \(1, 3\), the export's \(4, 1\)"):
        step(torch.randn(4, 3).t(), y)


class ReturnsDetachedViews(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 4))

    def forward(self, x):
        return x.detach(), x.detach()[1], self.w.detach(), self.w.detach()[1:], x[1].detach(), self.w[1:], x[2]


def test_a_detached_view_of_an_input_or_weight_requires_no_grad():
    """Failed before: ``x.detach()`` (and ``self.w.detach()[1:]``) came back as a new view of the caller's ``x`` (of the
    parameter) made in grad mode, requiring grad with an ``AsStridedBackward0`` where eager's requires none, so a loss
    built on it sent gradients to ``x``. The views without a ``detach`` still require grad, as eager's."""
    m = ReturnsDetachedViews()
    step = _compile(m, torch.randn(3, 4))
    x = torch.randn(3, 4, requires_grad=True)
    got, want = step(x), m(x)
    assert [g.requires_grad for g in got] == [w.requires_grad for w in want] == [False] * 5 + [True] * 2
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    got[0][0, 0] = 5.0   # (still the caller's storage, as eager's detach shares it)
    assert x[0, 0].item() == 5.0
    got[-1].sum().backward()
    assert torch.equal(x.grad[2], torch.ones(4))


class PassThrough(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs)


class PassThroughKwargs(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        return super().__torch_function__(func, types, args, kwargs)


class PassThroughOr(PassThrough):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})



class OwnMul(torch.Tensor):
    def __mul__(self, other):
        return super().__mul__(other) + 100


class PlainSubclass(torch.Tensor):
    pass


class MixesWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3))

    def forward(self, x):
        y = x * 3 + self.w
        return y, self.w * 2, x[1], y, (x.sum() > 0).float()


def _outputs_match(got, want):
    assert [type(g) for g in got] == [type(w) for w in want]
    assert all(torch.equal(g.as_subclass(torch.Tensor), w.as_subclass(torch.Tensor)) for g, w in zip(got, want))


@pytest.mark.parametrize("cls", [PassThrough, PassThroughKwargs, PassThroughOr])
def test_an_input_of_a_pass_through_torch_function_subclass_runs_as_eager(cls):
    """Failed before (refused since round 42): a ``__torch_function__`` that only passes each call on to torch's adds no
    behaviour; it runs, each output the subclass where eager's is (``y`` returned twice: one object)."""
    m = MixesWeights()
    with torch.no_grad():
        step = _compile(m, torch.randn(3))
        x = torch.randn(3).as_subclass(cls)
        got, want = step(x), m(x)
    _outputs_match(got, want)
    assert type(got[0]) is cls and type(got[1]) is torch.Tensor and got[0] is got[3]


def test_a_plain_subclass_inputs_results_are_of_its_class():
    """Failed before: a subclass that changes nothing ran, but ``x * 3 + self.w`` came back a plain ``torch.Tensor``
    where eager's is the subclass (torch's ``Tensor.__torch_function__`` converts each op's result); a result of the
    weights alone stays plain, as eager's."""
    m = MixesWeights()
    with torch.no_grad():
        step = _compile(m, torch.randn(3))
        x = torch.randn(3).as_subclass(PlainSubclass)
        _outputs_match(step(x), m(x))
        p = nn.Parameter(torch.randn(3), requires_grad=False)   # (Parameter's results are plain tensors in eager)
        _outputs_match(step(p), m(p))


def test_a_subclass_that_does_more_than_pass_through_is_refused_saying_why():
    m = MixesWeights()
    step = _compile(m, torch.randn(3))
    with pytest.raises(AtenExecutorError, match=r"input 'x' is a AddsToProducts, a tensor subclass with a "
                                                r"__torch_function__ or __torch_dispatch__ of its own \(AddsToProducts"
                                                r".__torch_function__ does more than pass each call on"):
        step(torch.randn(3).as_subclass(AddsToProducts))


def test_a_subclass_overriding_a_tensor_method_is_refused():
    """Failed before: ``OwnMul`` defines no ``__torch_function__``, so it was taken as a plain subclass and the compiled
    call returned ``x * 3 + w`` where eager's ``x * 3`` calls its ``__mul__`` (+ 100), silently."""
    m = MixesWeights()
    step = _compile(m, torch.randn(3))
    x = torch.randn(3).as_subclass(OwnMul)
    assert not torch.equal(m(x)[0].as_subclass(torch.Tensor), (x.as_subclass(torch.Tensor) * 3 + m.w))
    with pytest.raises(AtenExecutorError, match=r"input 'x' is a OwnMul, a tensor subclass that overrides "
                                                r"torch.Tensor.__mul__ \(OwnMul.__mul__\)"):
        step(x)


class WritesThroughReshapes(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):
        if self.how == "reshape":
            x.reshape(-1).add_(1)
        elif self.how == "flatten":
            x.flatten()[:2].mul_(2)
        else:
            x.add_(1)
        return x * 1


@pytest.mark.parametrize("how", ["reshape", "flatten"])
def test_a_write_through_a_reshape_of_an_input_laid_out_otherwise_is_refused(how):
    """Failed before: exported with a contiguous ``x``, ``x.reshape(-1).add_(1)`` writes ``x`` (the reshape is a view)
    and the executor copied the result back into the caller's tensor; eager's reshape of a transposed ``x`` is a copy,
    so eager leaves the caller's ``x`` as it was: the compiled call changed it, silently. Laid out as at export, it
    runs as before."""
    m = WritesThroughReshapes(how)
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4))
        base = torch.randn(4, 3)
        x, xe = base.clone().t(), base.clone().t()
        m(xe)
        assert torch.equal(xe, base.t())   # (eager: the caller's tensor unchanged)
        with pytest.raises(AtenExecutorError, match=rf"input 'x' has strides \(1, 3\), the export's \(4, 1\), and "
                                                    rf"node '\w+' writes it in place through a {how} of it"):
            step(x)
        assert torch.equal(x, base.t())
        x, xe = torch.randn(3, 4), None
        xe = x.clone()
        assert torch.equal(step(x), m(xe)) and torch.equal(x, xe)


def test_a_direct_write_to_an_input_laid_out_otherwise_still_runs():
    m = WritesThroughReshapes("add")
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4))
        base = torch.randn(4, 3)
        x, xe = base.clone().t(), base.clone().t()
        assert torch.equal(step(x), m(xe)) and torch.equal(x, xe)


class WritesThroughContiguous(nn.Module):
    def forward(self, x):
        x.contiguous().mul_(2)
        return x * 1


def test_a_write_through_contiguous_of_an_input_laid_out_otherwise_is_refused():
    """Failed before: export records no op for ``x.contiguous()`` of its contiguous ``x``, so the program writes ``x``
    and the executor copied the result into the caller's transposed tensor, where eager's ``contiguous()`` is a copy
    and the caller's ``x`` stays as it was. Now the export records the ``contiguous()`` that returned its tensor, and
    a call writing an input laid out otherwise is refused naming it; laid out as at export it runs as before, and a
    program that writes no input takes any layout."""
    m = WritesThroughContiguous()
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4))
        assert [method for method, _where in step.program.layout_reads] == ["contiguous"]
        base = torch.randn(4, 3)
        x = base.clone().t()
        with pytest.raises(AtenExecutorError, match=r"input 'x' has strides \(1, 3\), the export's \(4, 1\), the "
                                                    r"program writes it in place, and forward's Tensor.contiguous\(\) "
                                                    r"at test_aten_round43.py:\d+ returned its tensor itself"):
            step(x)
        assert torch.equal(x, base.t())
        x = torch.randn(3, 4)
        xe = x.clone()
        assert torch.equal(step(x), m(xe)) and torch.equal(x, xe)
        reads = _compile(Contiguous(), torch.randn(3, 4))
        x = torch.randn(4, 3).t()
        assert torch.equal(reads(x), x)   # (no input written: any layout, as before)


class ReturnsViewsOfInput(nn.Module):
    def forward(self, x):
        return x, x[1], x[:, ::2], x.t(), x.detach()[0], x * 2


@pytest.mark.parametrize("return_views", [False, True])
def test_an_input_laid_out_otherwise_and_its_views_are_the_callers_tensor_and_eagers_views(return_views):
    """Failed before (copies sharing one new storage, laid out as at export): where no ``contiguous()`` stood between
    them (the export saw none return its tensor), a transposed ``x`` returned beside views of it is the caller's ``x``
    and eager's views of it, made by running the export's view ops again on it: its strides, its storage, a write to
    one showing in the caller's tensor, as eager's."""
    m = ReturnsViewsOfInput()
    with torch.no_grad():
        step = _compile(m, torch.randn(3, 4), return_views=return_views)
        assert step.program.layout_reads == ()
        for _ in range(2):
            base = torch.randn(4, 3)
            x, xe = base.clone().t(), base.clone().t()
            got, want = step(x), m(xe)
            assert got[0] is x and want[0] is xe
            for g, w in zip(got[1:5], want[1:5]):
                assert torch.equal(g, w) and g.stride() == w.stride() and g.storage_offset() == w.storage_offset()
                assert g.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
            assert torch.equal(got[5], want[5])
            got[1].fill_(7.0)
            assert torch.equal(x[1], torch.full((4,), 7.0))


class ViewsOfContiguous(nn.Module):
    def forward(self, x):
        y = x.contiguous()
        return y, y[1]


def test_views_through_contiguous_of_an_input_laid_out_otherwise_stay_copies():
    """``y = x.contiguous(); return y, y[1]``: the program's ``y`` is ``x`` itself, eager's a contiguous copy of a
    transposed ``x``; the export recorded the ``contiguous()``, so both are copies sharing one storage, laid out as at
    export, as eager's are (the caller's ``x`` untouched by a write to them)."""
    m = ViewsOfContiguous()
    step = _compile(m, torch.randn(3, 4))
    base = torch.randn(4, 3)
    x = base.clone().t()
    got, want = step(x), m(x)
    assert got[0] is not x and all(torch.equal(g, w) and g.stride() == w.stride() for g, w in zip(got, want))
    got[1].fill_(7.0)
    assert torch.equal(got[0][1], torch.full((4,), 7.0)) and torch.equal(x, base.t())


class ViewsNeedingContiguity(nn.Module):
    def forward(self, x):
        return x, x.view(-1)


def test_a_view_eager_refuses_on_the_callers_layout_stays_a_copy():
    """``x.view(-1)`` of a transposed ``x`` fails in eager; the program computed it on the export's layout. Round 50:
    the call is refused naming the node, as eager's fails (``eager_views``; before, it returned copies sharing one
    storage)."""
    from runtime.aten.errors import AtenExecutorError

    m = ViewsNeedingContiguity()
    step = _compile(m, torch.randn(3, 4))
    x = torch.randn(4, 3).t()
    with pytest.raises(RuntimeError):
        m(x)
    with pytest.raises(AtenExecutorError, match="view size is not compatible") as info:
        step(x)
    assert info.value.node is not None and info.value.node.startswith("view")


class WritesAndReturnsInput(nn.Module):
    def forward(self, x):
        x.mul_(2)
        return x, x[1], x * 3


def test_an_input_written_and_returned_laid_out_otherwise_is_the_callers_tensor():
    """Failed before (copies sharing one storage): ``x.mul_(2); return x, x[1]`` of a transposed ``x`` is, in eager,
    the caller's ``x`` (written) and its row; where the export saw no ``contiguous()`` return its tensor, so they are
    here, the write-back giving ``x`` its values."""
    m = WritesAndReturnsInput()
    with torch.no_grad():
        step = _compile(m, torch.ones(3, 4))
        base = torch.randn(4, 3)
        x, xe = base.clone().t(), base.clone().t()
        got, want = step(x), m(xe)
        assert got[0] is x and want[0] is xe and torch.equal(x, xe)
        assert all(torch.equal(g, w) for g, w in zip(got, want)) and got[1].stride() == want[1].stride()
        got[1].zero_()
        assert torch.equal(x[1], torch.zeros(4))
