"""Review 41b: session 41's ``index_put`` lowering (``capturable._masked_put``), checked where it must give eager's
bits or eager's error for every call it lowers, and the runtime41 plan/array checks.

The lowering is chosen as on CUDA (``device_type="cuda"``) over CPU tensors, as ``test_aten_capturable.py`` does.
The CPU's eager ``index_put_`` is not CUDA's for a one-element value on the CPU (it dispatches to ``masked_fill`` with
``value.item()``, which quiets a NaN): CUDA eager, with the value on the device as the lowering requires, runs the
index kernel, whose bits the same call with the mask's true positions as integer indices gives here (``_cuda_eager``).

Bug found: a dtype eager's ``index_put`` (and ``masked_fill``) kernels do not implement (``uint16``, ``uint32``,
``uint64``: "index_put" not implemented for 'UInt16') was lowered to ``where``, which implements it: the compiled
call returned a tensor where eager raised. Now such dtypes (and the rarely used complex32 and 8-bit floats, whose
kernels differ between eager's paths) keep eager's op, which raises as eager does.
"""

from __future__ import annotations

import warnings

import pytest
from needs import need

torch = need("torch")

from runtime.aten import capturable  # noqa: E402

_PUT = "aten.index_put_.default"


class _Op:
    """An op object whose ``str`` is what the lowering matches."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name


def _cuda_eager(x, indices, v):
    """CUDA eager's ``index_put_`` bits on the CPU: the mask's true positions as integer indices (no ``masked_fill``
    dispatch, which the CPU takes for a one-element value)."""
    p, mask = len(indices) - 1, indices[-1]
    return torch.ops.aten.index_put_.default(x.clone(), [None] * p + list(mask.nonzero().unbind(1)), v)


def _lowered(x, indices, v, inplace):
    """The lowering's result (apart, or in place over a copy of ``x``), or None where it keeps eager's op."""
    if inplace:
        y = x.clone()
        run = capturable.capturable_inplace(torch, _Op(_PUT), {"self": y, "indices": indices, "values": v}, "cuda")
        if run is None:
            return None
        run()
        return y
    out = torch.empty_like(x)
    low = capturable._masked_put(torch, {"self": x, "indices": indices, "values": v}, out)
    if low is None:
        return None
    low[1]()
    return out


def _bits(t):
    if t.dtype == torch.bool:
        return t.to(torch.uint8)
    if t.dtype.is_complex:
        return torch.view_as_real(t).contiguous().view(torch.uint8)
    return t.contiguous().view(torch.uint8)


_NAN_BITS = {torch.float32: (torch.int32, 0x7F800001), torch.float16: (torch.int16, -0x8000 + 0x7C01),
             torch.bfloat16: (torch.int16, -0x7F), torch.float64: (torch.int64, 0x7FF0000000000001)}


def _value(kind, shape, dtype, g):
    if kind == "nan":
        as_int, bits = _NAN_BITS[dtype]
        return torch.full(shape, bits, dtype=as_int).view(dtype)   # a signalling NaN with a payload (a sign too)
    if kind == "-0":
        return torch.full(shape, -0.0, dtype=dtype)
    r = torch.randn(shape, generator=g) * 3
    return torch.complex(r, -r) if dtype.is_complex else r.to(dtype)


_SHAPES = [((4, 3), 0, 1), ((2, 4, 3), 1, 1), ((2, 4, 3), 1, 2), ((0, 3), 0, 1), ((3, 0), 0, 1), ((3, 0), 0, 2),
           ((2, 3, 4), 0, 3), ((5,), 0, 1)]


@pytest.mark.parametrize("dtype", [torch.bool, torch.int8, torch.uint8, torch.int64, torch.float16, torch.bfloat16,
                                   torch.float32, torch.float64, torch.complex64])
def test_every_lowered_call_is_cuda_eagers_bits_or_declined(dtype):
    """All-false, all-true and random masks, 0-size dims, values of every broadcastable shape and of more dims than
    the indexed shape, NaN payloads and -0.0: each call lowered (apart and in place) writes eager's bits, and each
    call eager refuses is declined (eager's op then raises as eager)."""
    g = torch.Generator().manual_seed(7)
    kinds = ["rand", "nan", "-0"] if dtype.is_floating_point else ["rand"]
    lowered = 0
    for fill in ("none", "all", "rand"):
        for shape, p, k in _SHAPES:
            mshape = shape[p:p + k]
            mask = (torch.zeros(mshape, dtype=torch.bool) if fill == "none" else
                    torch.ones(mshape, dtype=torch.bool) if fill == "all" else torch.rand(mshape, generator=g) > 0.5)
            lead, rest = shape[:p], shape[p + k:]
            for vshape in [(), (1,), rest, (1, *rest), (*lead, 1, *rest), (1,) * (len(shape) + 2), (1, 1, *rest),
                           (2, *rest)]:
                for kind in kinds:
                    x, v = _value("rand", shape, dtype, g), _value(kind, vshape, dtype, g)
                    try:
                        want = _cuda_eager(x, [None] * p + [mask], v)
                    except (RuntimeError, IndexError):
                        want = None
                    for inplace in (False, True):
                        got = _lowered(x, [None] * p + [mask], v, inplace)
                        if got is None:
                            continue
                        lowered += 1
                        assert want is not None, (shape, p, k, vshape, "lowered where eager raises")
                        assert torch.equal(_bits(got), _bits(want)), (shape, p, k, vshape, kind, inplace)
    assert lowered > 100


def test_non_contiguous_and_conjugate_x_and_strided_values():
    g = torch.Generator().manual_seed(3)
    cases = [(torch.randn(3, 4, generator=g).t(), [torch.tensor([True, False, True, True])], torch.tensor(5.0)),
             (torch.randn(6, 8, generator=g)[::2, 1::3], [None, torch.tensor([True, False, True])], torch.ones(1)),
             (torch.randn(5, 4, 3, generator=g), [(torch.rand(4, 5, generator=g) > 0.5).t()],
              torch.randn(1, 6, generator=g)[:, ::2]),
             (torch.complex(torch.randn(4, 3), torch.randn(4, 3)).conj(), [torch.tensor([True, False, True, True])],
              torch.complex(torch.randn(3), torch.randn(3)))]
    for x, indices, v in cases:
        want = _cuda_eager(x, indices, v)
        for inplace in (False, True):
            got = _lowered(x, indices, v, inplace)
            if got is not None:   # (a sliced x: internal overlap "too hard" to tell, eager's op)
                assert torch.equal(got.resolve_conj(), want.resolve_conj()), (x.shape, x.stride(), inplace)


def test_the_lowering_reads_the_views_it_was_built_over_at_each_run():
    """Built once, run at every call: the mask and value reshapes are views (a copy would replay build time's)."""
    x, out = torch.randn(5, 4, 3), torch.empty(5, 4, 3)
    mask, v = (torch.rand(4, 5) > 0.5).t(), torch.randn(1, 6)[:, ::2]
    run = capturable._masked_put(torch, {"self": x, "indices": [mask], "values": v}, out)[1]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        mask.copy_(torch.rand(5, 4, generator=g) > 0.5)
        v.copy_(torch.randn(1, 3, generator=g))
        x.copy_(torch.randn(5, 4, 3, generator=g))
        run()
        assert torch.equal(out, _cuda_eager(x, [mask], v))


def test_masks_other_than_one_trailing_bool_mask_and_accumulate_keep_eagers_op():
    x, mask = torch.zeros(4, 3), torch.tensor([True, False, True, True])
    v = torch.ones(3)
    for indices, extra in (([mask, None], {}),
                           ([torch.tensor([True, False, True, True]).view(4, 1).expand(4, 3)[:, 0], None], {}),
                           ([mask.to(torch.uint8)], {}),
                           ([torch.tensor([True, True, False, False]), torch.tensor([True, False, True])], {}),
                           ([mask], {"accumulate": True})):
        named = {"self": x, "indices": indices, "values": v, **extra}
        assert capturable._masked_put(torch, named, torch.empty_like(x)) is None, indices


@pytest.mark.parametrize("dtype", [torch.uint16, torch.uint32, torch.uint64])
def test_a_dtype_eagers_kernels_lack_keeps_eagers_op(dtype):
    """``index_put`` of a ``uint16`` tensor raises in eager ("not implemented for 'UInt16'"); ``where`` implements it,
    so the lowering returned a result where eager raised. Declined now: eager's op raises as eager's."""
    x = torch.arange(12, dtype=torch.int64).reshape(4, 3).to(dtype)
    mask, v = torch.tensor([True, False, True, True]), torch.arange(3, dtype=torch.int64).to(dtype)
    with pytest.raises(NotImplementedError):
        torch.ops.aten.index_put_.default(x.clone(), [mask], v)
    assert capturable._masked_put(torch, {"self": x, "indices": [mask], "values": v}, torch.empty_like(x)) is None
    assert capturable.capturable_inplace(torch, _Op(_PUT), {"self": x, "indices": [mask], "values": v}, "cuda") is None
    fill = {"self": x, "mask": mask.view(4, 1).expand(4, 3), "value": torch.tensor(7, dtype=torch.int64).to(dtype)}
    with pytest.raises(NotImplementedError):
        torch.ops.aten.masked_fill.Tensor(fill["self"], fill["mask"], fill["value"])
    assert capturable._masked_fill(torch, fill, torch.empty_like(x)) is None


class _Put(torch.nn.Module):
    def forward(self, x, m, v):
        h = x.clone()
        h[m] = v
        return h


def test_compile_of_a_uint16_put_raises_as_eager(monkeypatch):
    """The whole path on the CPU, the lowering chosen as on CUDA: eager raises, so does the compiled call."""
    import runtime.aten.lower as lower
    from runtime.aten import compile

    real = capturable.capturable_inplace
    monkeypatch.setattr(lower, "capturable_inplace", lambda t, op, named, _dev: real(t, op, named, "cuda"))
    x = torch.arange(16, dtype=torch.int64).reshape(4, 4).to(torch.uint16)
    m, v = torch.tensor([True, False, True, False]), torch.arange(4, dtype=torch.int64).to(torch.uint16)
    with pytest.raises(NotImplementedError):
        _Put()(x, m, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compile(_Put(), (x, m, v), streams=1, cuda_graph=False)
        with pytest.raises(Exception, match="not implemented for 'UInt16'"):
            c(x, m, v)


class _Scenes(torch.nn.Module):
    """Written in place: an intermediate, its transpose, a view of its base with a value from the same base, a
    buffer, the caller's input, a conjugate view; functional puts of a weight's slice."""

    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.zeros(4, 6))
        self.w = torch.nn.Parameter(torch.randn(4, 6))

    def forward(self, x, m):
        a, h = x * 3, x * 2
        h[m[:, 0]] = a[0]
        t = (x * 5).t()
        t[m.t()] = -0.0
        base = x * 7
        base[:2][m[:2, 0]] = base[3]
        self.b[m] = 1.0
        w = torch.index_put(self.w[:, 1:], [m[:, 0]], x[0, :5])
        z = torch.complex(x, x * 2)
        z.conj()[m[:, 0]] = torch.complex(a[1], a[2])
        x[m] = 9.0
        return h, t * 1, base * 1, x + self.b, w * 1, z * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_compiled_scenes_with_the_lowering_forced_are_eagers_bits(monkeypatch, streams):
    import runtime.aten.lower as lower
    from runtime.aten import compile

    chosen, real_in, real_out = [], capturable.capturable_inplace, capturable.capturable_lowering

    def inplace(t, op, named, _dev):
        run = real_in(t, op, named, "cuda")
        chosen.append(run is not None)
        return run

    def functional(t, op, named, outs, dev):
        if str(op).startswith("aten.index_put"):
            low = real_out(t, op, named, outs, "cuda")
            chosen.append(low is not None)
            return low
        return real_out(t, op, named, outs, dev)
    monkeypatch.setattr(lower, "capturable_inplace", inplace)
    monkeypatch.setattr(lower, "capturable_lowering", functional)
    g = torch.Generator().manual_seed(11)

    def inputs():
        return torch.randn(4, 6, generator=g), torch.rand(4, 6, generator=g) > 0.5
    m = _Scenes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compile(m, inputs(), streams=streams, cuda_graph=False, poison=True)
    assert sum(chosen) >= 6, chosen
    for _ in range(2):
        x, mask = inputs()
        ref = _Scenes()
        ref.load_state_dict(m.state_dict())
        xe, xc = x.clone(), x.clone()
        with torch.no_grad():
            want, got = ref(xe, mask), c(xc, mask)
        for a, b in zip(got, want):
            assert torch.equal(_bits(a.resolve_conj()), _bits(b.resolve_conj()))
        assert torch.equal(xc, xe)


# -- runtime41: compile(streams=, plan=) ---------------------------------------------------------------------------

class _Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (torch.nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        return self.c(torch.relu(self.a(x)) + torch.relu(self.b(x)))


def test_the_stream_cap_counts_the_streams_a_plan_runs_on_not_its_highest_id():
    """A valid plan declaring 3 streams whose nodes run on ids 0 and 2 runs two at once: ``streams=2`` takes it (as
    ``memplan.verify`` renumbers the ids it uses densely), ``streams=1`` and ``None`` (compile's serial) refuse it."""
    from dataclasses import replace

    import memplan
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    torch.manual_seed(0)
    m, x = _Branches().eval(), torch.randn(4, 8)
    c = compile(m, (x,), streams=3, cuda_graph=False)
    assert sorted({s for _n, s in c.plan.order}) == [0, 1]
    gapped = replace(c.plan, order=tuple((n, 2 if s == 1 else s) for n, s in c.plan.order), streams=3)
    memplan.verify(c.program.graph, gapped)
    taken = compile(m, (x,), streams=2, plan=gapped, program=c.program, cuda_graph=False)
    with torch.no_grad():
        assert torch.equal(taken(x), m(x))
    for cap in (1, None):
        with pytest.raises(AtenExecutorError, match=f"streams={cap!r} asks for at most 1 stream.*2 streams"):
            compile(m, (x,), streams=cap, plan=gapped, program=c.program, cuda_graph=False)
