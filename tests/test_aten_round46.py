"""Round 46: outputs that are views of a user input, compared with eager on the CPU (``cuda_graph=False``).

Bugs fixed (each test failed before):
- a view of the caller's input in another dtype or a conjugate one (``x.view(torch.int32)``, ``x.view(torch.uint8)``,
  ``torch.view_as_real(z)``, ``view_as_complex``, ``z.real`` / ``z.imag``, ``z.conj()``) came back as a copy, so a
  write to it left the caller's tensor as it was where eager's changes it;
- an identity conversion of the input (``x.float()`` on a float tensor, ``x.to(x.dtype)``, ``x.type_as(x)``) came
  back as a new view of it (``step(x) is x`` False), where eager returns ``x`` itself;
- the views a multi-view op returns (``x.chunk(2, 1)``, ``split``, ``unbind``) of an input laid out otherwise than
  at export (transposed) came back as copies with the export's strides, where eager's are views of the caller's
  tensor with its strides.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _bits(t):
    t = t.resolve_conj().resolve_neg()
    t = torch.view_as_real(t) if t.is_complex() else t
    return t.contiguous().view(torch.uint8) if t.is_floating_point() else t


def _same_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _check(fn, example, call):
    """Compile ``fn`` on ``example``, call it and eager on two clones of ``call``: outputs alike (values, dtype,
    strides, conj bit, aliasing of the caller's tensor, identity), then a write to each output shows alike."""
    step = compile(Fn(fn), (example,), cuda_graph=False)
    xe, xg = call.clone(), call.clone()
    if not call.is_contiguous():
        xe = torch.empty_strided(call.shape, call.stride(), dtype=call.dtype).copy_(call)
        xg = torch.empty_strided(call.shape, call.stride(), dtype=call.dtype).copy_(call)
    e, g = fn(xe), step(xg)
    e, g = (e if isinstance(e, tuple) else (e,)), (g if isinstance(g, tuple) else (g,))
    for a, b in zip(e, g, strict=True):
        assert (a.dtype, a.shape, a.stride(), a.is_conj()) == (b.dtype, b.shape, b.stride(), b.is_conj())
        assert torch.equal(_bits(a), _bits(b))
        assert _same_storage(a, xe) == _same_storage(b, xg)
        assert (a is xe) == (b is xg)
    for a, b in zip(e, g):
        a.mul_(0) if a.dtype.is_floating_point or a.is_complex() else a.fill_(7)
        b.mul_(0) if b.dtype.is_floating_point or b.is_complex() else b.fill_(7)
    assert torch.equal(_bits(xe), _bits(xg))   # the caller's tensor written through the outputs as eager's


X = torch.randn(4, 6)
Z = torch.randn(4, 6, dtype=torch.complex64)


@pytest.mark.parametrize("name", ["int32", "uint8", "int16"])
def test_input_view_in_another_dtype_is_eagers_view(name):
    _check(lambda x: x.view(getattr(torch, name)), X, X)


@pytest.mark.parametrize("fn", [torch.view_as_real, lambda z: z.real, lambda z: z.imag, lambda z: z.conj(),
                                lambda z: z.conj()[1:]], ids=["view_as_real", "real", "imag", "conj", "conj_slice"])
def test_complex_views_of_input_are_eagers_views(fn):
    _check(fn, Z, Z)


def test_view_as_complex_of_input_is_eagers_view():
    _check(lambda x: torch.view_as_complex(x.view(4, 3, 2)), X, X)


@pytest.mark.parametrize("fn", [lambda x: x.float(), lambda x: x.to(x.dtype), lambda x: x.type_as(x),
                                lambda x: x.to(torch.float32)[1:]], ids=["float", "to_dtype", "type_as", "to_slice"])
def test_identity_conversion_returns_the_input_itself(fn):
    _check(fn, X, X)


def test_identity_conversion_of_transposed_input_is_itself():
    _check(lambda x: x.float(), X, torch.randn(6, 4).t())


@pytest.mark.parametrize("fn", [lambda x: x.chunk(2, 1), lambda x: x.split([1, 3], 0), lambda x: x.unbind(1)],
                         ids=["chunk", "split", "unbind"])
def test_multi_view_ops_of_a_transposed_input_are_eagers_views(fn):
    _check(fn, X, torch.randn(6, 4).t())


def test_dtype_view_of_transposed_input_is_eagers_view():
    _check(lambda x: x.view(torch.int32), X, torch.randn(6, 4).t())


def test_intermediate_dtype_view_still_a_copy():
    _check(lambda x: (x * 2).view(torch.int32), X, X)


# --- random ops over an input laid out otherwise than at export -------------------------------------------------
# Before: the program drew in the export's memory order, eager in the caller's layout's, so under one seed a train-mode
# dropout or ``rand_like`` of a transposed / channels-last input returned other values than eager, silently.

X4 = torch.randn(2, 3, 4, 5)
X4_CL = X4.to(memory_format=torch.channels_last)
XT = torch.randn(6, 4).t()


@pytest.mark.parametrize("fn, example, call", [
    (lambda x: torch.nn.functional.dropout(x, 0.5, True), X, XT),
    (lambda x: torch.nn.functional.dropout(x, 0.5, True), X4, X4_CL),
    (lambda x: torch.rand_like(x) + x, X, XT),
    (lambda x: torch.empty_like(x).normal_() * x, X4, X4_CL),
    (lambda x: x.clone().bernoulli_(0.3), X4, X4_CL),
], ids=["dropout_t", "dropout_cl", "rand_like", "normal_", "bernoulli_"])
def test_random_op_following_a_relaid_input_is_refused(fn, example, call):
    step = compile(Fn(fn), (example,), cuda_graph=False)
    torch.manual_seed(5)
    want = fn(call.clone(memory_format=torch.preserve_format))
    torch.manual_seed(5)
    with pytest.raises(AtenExecutorError, match="random node"):
        got = step(call.clone(memory_format=torch.preserve_format))
        assert torch.equal(got, want)   # (what it would have to be)


@pytest.mark.parametrize("fn, example, call", [
    (lambda x: torch.bernoulli(x.sigmoid()), X, XT),   # (bernoulli(p) draws in a contiguous result's order)
    (lambda x: torch.rand(4, 6) + x, X, XT),
    (lambda x: torch.nn.functional.dropout(x, 0.5, False) * 2, X4, X4_CL),   # (eval: no draw)
    (lambda x: torch.nn.functional.dropout(x, 0.5, True), X, X),
], ids=["bernoulli_p", "rand_shape", "eval_dropout", "same_layout"])
def test_random_op_not_following_the_layout_runs_as_eager(fn, example, call):
    step = compile(Fn(fn), (example,), cuda_graph=False)
    xe, xg = call.clone(memory_format=torch.preserve_format), call.clone(memory_format=torch.preserve_format)
    torch.manual_seed(7)
    want = fn(xe)
    after_eager = torch.rand(3)
    torch.manual_seed(7)
    got = step(xg)
    assert torch.equal(got, want) and torch.equal(torch.rand(3), after_eager)   # (the generator advanced alike)


# --- an in-place op on a conjugate view (``w = z.conj(); w.mul_(2)``) -----------------------------------------------
# Before: the in-place result's planned view, made from the export's spec, lost the conjugate bit, so every later
# reader (and the output) read ``z``'s bytes unconjugated: other values than eager's.


class ConjWrite(nn.Module):
    def forward(self, z):
        w = z.conj()
        w.mul_(2)
        return w + 0, (w * 1j).real, w.imag, w


class ConjWriteIntermediate(nn.Module):
    def forward(self, z):
        w = (z * 1).conj()
        w.add_(1)
        return w.abs() + w.angle(), w


@pytest.mark.parametrize("module", [ConjWrite, ConjWriteIntermediate])
def test_in_place_write_through_a_conjugate_view_keeps_its_bit(module):
    z = torch.randn(3, 4, dtype=torch.complex64)
    step = compile(module(), (z.clone(),), cuda_graph=False)
    ze, zg = z.clone(), z.clone()
    want, got = module()(ze), step(zg)
    for a, b in zip(want, got, strict=True):
        assert (a.is_conj(), a.is_neg()) == (b.is_conj(), b.is_neg())
        assert torch.equal(_bits(a), _bits(b))
    assert torch.equal(ze, zg)


# --- one view of the caller's input (or of a weight) returned twice under ``return_views`` --------------------------
# Before: two view objects (``a is b`` False), where eager returns one tensor twice.


class W(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 6))

    def forward(self, x):
        y, c, v = x[1:], x.chunk(2), self.w[1:]
        return y, y, c[0], c[0], v, v, x


@pytest.mark.parametrize("return_views", [False, True])
def test_one_view_returned_twice_is_one_object(return_views):
    m = W()
    step = compile(m, (X.clone(),), cuda_graph=False, return_views=return_views)
    xe, xg = X.clone(), X.clone()
    want, got = m(xe), step(xg)
    for i in range(len(want)):
        for j in range(i + 1, len(want)):
            assert (want[i] is want[j]) == (got[i] is got[j]), (i, j)
    assert got[-1] is xg and _same_storage(got[0], xg) and _same_storage(got[4], m.w)


# --- a reshape that is a view in eager for the caller's layout, a copy at export ------------------------------------
# Before: ``x.t().reshape(-1)`` of a transposed ``x`` (contiguous at export) came back as a copy: a write to it left the
# caller's tensor as it was, where eager's is a view of it.


@pytest.mark.parametrize("fn", [lambda x: x.t().reshape(-1), lambda x: x.t().flatten(), lambda x: x.mT.reshape(2, 12)],
                         ids=["t_reshape", "t_flatten", "mT_reshape"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_reshape_that_is_a_view_in_eager_is_eagers_view(fn, layout):
    _check(fn, X, X if layout == "contiguous" else torch.randn(6, 4).t())


def test_reshape_of_relaid_input_that_copies_in_eager_stays_a_copy():
    _check(lambda x: x.t().reshape(-1), X, torch.randn(4, 12)[:, ::2])
