"""Ops whose eager CUDA kernel reads device values on the host, lowered so that a CUDA graph captures them
(``runtime/aten/capturable.py``).

- ``masked_fill`` with a 0-dim value tensor on the device (SEW-D: a ``torch.tensor(finfo.min)`` constant the
  executor moved to the GPU; eager's kernel then calls ``.item()``) runs as ``where``: the same bits.
- transformers' ``grouped_mm_fallback`` (f32/f16 MoE experts: Mixtral, GraniteMoE...) reads its group ends with
  ``.tolist()``; while capturing, every expert's product over all rows, masked per row on the device.
The arithmetic is checked on the CPU against the eager ops (small integers, so every product is exact and the
comparison bitwise whatever the GEMM kernel), including empty, decreasing and short groups; the lowering's
choice with a ``meta`` stand-in for the device; the captured runs on the GPU (marker ``gpu``).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from runtime.aten import capturable  # noqa: E402


def _int_floats(g, *shape, dtype=torch.float32):
    return torch.randint(-3, 4, shape, generator=g).to(dtype)


def _eager_grouped_mm(x, w, offs):
    """transformers' fallback as it runs (kept here so the test needs no transformers)."""
    out = torch.zeros(x.shape[0], w.shape[2], dtype=x.dtype)
    start = 0
    for i, end in enumerate(offs.tolist()):
        if start == end:
            continue
        torch.mm(x[start:end], w[i], out=out[start:end])
        start = end
    return out


@pytest.mark.parametrize("ends", [[2, 2, 5, 7], [0, 3, 3, 7], [4, 2, 6, 7], [1, 2, 3, 4], [7, 7, 7, 7],
                                  [0, 0, 0, 0], [3, 9, 9, 12]])
def test_masked_grouped_mm_equals_eager_bitwise(ends):
    g = torch.Generator().manual_seed(len(ends) + sum(ends))
    S, K, N, E = 7, 16, 12, len(ends)
    x, w = _int_floats(g, S, K), _int_floats(g, E, K, N)
    offs = torch.tensor(ends, dtype=torch.int32)
    want = _eager_grouped_mm(x, w, offs)
    out = torch.full((S, N), float("nan"))   # poisoned, as a planned arena slot is
    capturable.grouped_mm_masked(torch, x, w, offs, out, torch.empty(S, N), torch.arange(S))
    assert torch.equal(out, want), (ends, (out - want).abs().max())


def test_masked_grouped_mm_takes_a_transposed_weight_view():
    g = torch.Generator().manual_seed(9)
    x, w = _int_floats(g, 6, 8), _int_floats(g, 3, 10, 8).transpose(1, 2)   # (E, K, N) over (E, N, K) storage
    offs = torch.tensor([2, 5, 6])
    out = torch.empty(6, 10)
    capturable.grouped_mm_masked(torch, x, w, offs, out, torch.empty(6, 10), torch.arange(6))
    assert torch.equal(out, _eager_grouped_mm(x, w, offs))


class _Op:
    """Stands for the custom op object: its ``str`` is what the lowering matches, calling it runs eager."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def __str__(self):
        return self.name

    def __call__(self, *a):
        return self.fn(*a)


def test_grouped_mm_launch_runs_eager_outside_a_capture_and_masked_inside(monkeypatch):
    g = torch.Generator().manual_seed(4)
    x, w = _int_floats(g, 5, 8), _int_floats(g, 2, 8, 4)
    offs = torch.tensor([3, 5])
    calls = []
    op = _Op("transformers.grouped_mm_fallback.default", lambda *a: calls.append(1) or _eager_grouped_mm(*a))
    out = torch.empty(5, 4)
    low = capturable._grouped_mm(torch, op, {"input": x, "weight": w, "offs": offs}, out)
    kind, run, scratch = low
    assert kind == "copy" and scratch > 0
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    run()
    assert calls == [1] and torch.equal(out, _eager_grouped_mm(x, w, offs))
    out.fill_(float("nan"))
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    run()
    assert calls == [1], "inside a capture the eager op (a host read) must not run"
    assert torch.equal(out, _eager_grouped_mm(x, w, offs))


def test_masked_fill_as_where_is_eager_bitwise():
    g = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool):
        x = torch.randn(2, 3, 4, generator=g).to(dtype)
        mask = torch.rand(1, 3, 1, generator=g) > 0.5
        value = torch.tensor(torch.finfo(dtype).min if dtype.is_floating_point else 1).to(dtype)
        out = torch.empty(2, 3, 4, dtype=dtype)
        kind, run, _ = capturable._masked_fill(torch, {"self": x, "mask": mask, "value": value}, out)
        run()
        assert kind == "exact" and torch.equal(out, x.masked_fill(mask, value)), dtype


@pytest.mark.parametrize(("dtype", "raw"), [
    (torch.float32, [0x7F800001, -0x007FFFFF, 0x7FC12345, -0x80000000]),   # signalling (both signs), payload, -0.0
    (torch.float16, [0x7C01, -0x03FF, 0x7E01, -0x0200, -0x8000]),          # sNaN, -sNaN, payload, -qNaN, -0.0
    (torch.bfloat16, [0x7F81, -0x0040, 0x7FC1, -0x8000]),                  # sNaN, -qNaN, payload, -0.0
    (torch.float64, [0x7FF0000000000001, -0x8000000000000000])])
def test_masked_fill_with_a_nan_value_fills_eagers_bits(dtype, raw):
    """Eager's kernel fills with ``value.item()`` converted back on the host: a NaN comes back quieted (float32),
    as ``0x7E00`` with its sign (half) or ``0x7FC0`` (bfloat16); ``where`` alone copied the value's own bits.
    The CPU kernel takes the same host conversion as the CUDA one."""
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[dtype.itemsize]
    x = torch.randn(3, 4).to(dtype)
    mask = torch.tensor([[True], [False], [True]])
    for r in raw:
        value = torch.tensor(r, dtype=as_int).view(dtype)
        out = torch.empty(3, 4, dtype=dtype)
        kind, run, _ = capturable._masked_fill(torch, {"self": x, "mask": mask, "value": value}, out)
        run()
        assert torch.equal(out.view(as_int), x.masked_fill(mask, value).view(as_int)), (dtype, hex(r))


def test_lowering_choice_on_a_device_stand_in():
    """Only on CUDA, only a same-device 0-dim value of the input's dtype, only an out of the result's shape."""
    m = torch.device("meta")
    x, mask = torch.empty(2, 4, device=m), torch.empty(1, 4, dtype=torch.bool, device=m)
    named = {"self": x, "mask": mask, "value": torch.empty((), device=m)}
    op = _Op("aten.masked_fill.Tensor", None)
    out = torch.empty(2, 4, device=m)
    assert capturable.capturable_lowering(torch, op, named, [out], "cuda")[0] == "exact"
    assert capturable.capturable_lowering(torch, op, named, [out], "cpu") is None
    for bad in ({"value": torch.empty(())},                                  # on the CPU: eager has no sync
                {"value": torch.empty((), dtype=torch.float64, device=m)},  # another dtype
                {"value": torch.empty(1, device=m)},                        # not 0-dim: eager's error
                {"mask": torch.empty(1, 4, device=m)}):                     # not a bool mask
        assert capturable.capturable_lowering(torch, op, {**named, **bad}, [out], "cuda") is None
    assert capturable.capturable_lowering(torch, op, named, [torch.empty(4, 2, device=m)],
                                          "cuda") is None
    scalar = _Op("aten.masked_fill.Scalar", None)
    assert capturable.capturable_lowering(torch, scalar, {**named, "value": 1.0}, [out], "cuda") is None
    gm = _Op("transformers.grouped_mm_fallback.default", None)
    args = {"input": torch.empty(5, 8, device=m), "weight": torch.empty(3, 8, 4, device=m),
            "offs": torch.empty(3, dtype=torch.int32, device=m)}
    assert capturable.capturable_lowering(torch, gm, args, [torch.empty(5, 4, device=m)],
                                          "cuda")[0] == "copy"
    assert capturable.capturable_lowering(torch, gm, {**args, "offs": torch.empty(2, device=m)},
                                          [torch.empty(5, 4, device=m)], "cuda") is None
    other = _Op("mylib.grouped_mm_fallback.default", None)   # somebody else's op of that name: left alone
    assert capturable.capturable_lowering(torch, other, args, [torch.empty(5, 4, device=m)],
                                          "cuda") is None


class _FinfoMask(torch.nn.Module):
    """SEW-D's mask: ``masked_fill`` with ``torch.tensor(finfo.min)``, a constant lifted by export."""

    def forward(self, x, keep):
        s = x @ x.transpose(-1, -2)
        s = s.masked_fill(~keep, torch.tensor(torch.finfo(s.dtype).min))
        return s.softmax(-1)


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, 3])
def test_finfo_masked_fill_is_captured_bitwise_on_cuda(streams):
    """SEW-D on the H200: "operation not permitted when stream is capturing" at its ``masked_fill``."""
    from runtime.aten import compile

    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device="cuda").manual_seed(1)
    m = _FinfoMask().cuda()

    def inputs():
        return (torch.randn(2, 6, 8, device="cuda", generator=g),
                torch.rand(2, 1, 6, device="cuda", generator=g) > 0.3)
    c = compile(m, inputs(), streams=streams, cuda_graph=True, poison=True)
    for _ in range(3):
        x = inputs()
        got = c(*x)
        torch.cuda.synchronize()
        assert torch.equal(got, m(*x))
    assert c.executor._captured


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, "auto"])
def test_f32_mixtral_is_captured_close_to_eager(streams):
    """f32 Mixtral's experts export as ``grouped_mm_fallback`` (``.tolist()``), which refused every CUDA-graph
    mode. Captured now: replays of fresh ids (other routings each time) close to eager."""
    need("transformers")
    from aten_models import tiny_lm

    from runtime.aten import compile

    torch.backends.cuda.matmul.allow_tf32 = False
    m = tiny_lm("mixtral").cuda()
    g = torch.Generator(device="cuda").manual_seed(3)
    ids = torch.randint(0, 128, (2, 16), device="cuda", generator=g)
    c = compile(m, (ids,), streams=streams, cuda_graph=True, poison=True)
    for _ in range(3):
        ids = torch.randint(0, 128, (2, 16), device="cuda", generator=g)
        with torch.no_grad():
            want = m(ids)
        got = c(ids)
        torch.cuda.synchronize()
        assert c.executor._captured and not torch.isnan(got).any()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_exported_mixtral_experts_op_is_the_one_lowered():
    """The lowering matches the op object a real export holds (f32 Mixtral, transformers' custom op), with the
    argument names its schema gives: a renamed op or argument would silently fall back to the host read."""
    need("transformers")
    from aten_models import tiny_lm

    ep = torch.export.export(tiny_lm("mixtral"), (torch.randint(0, 128, (1, 4)),))
    nodes = [n for n in ep.graph.nodes if n.op == "call_function" and "grouped_mm" in str(n.target)]
    assert nodes
    meta = torch.device("meta")
    for n in nodes:
        names = [a.name for a in n.target._schema.arguments]
        named = {k: a.meta["val"].to(meta) for k, a in zip(names, n.args)}
        out = n.meta["val"].to(meta)
        low = capturable.capturable_lowering(torch, n.target, named, [out], "cuda")
        assert low is not None and low[0] == "copy", str(n.target)


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_functionalized_state_updates_on_cuda(cuda_graph):
    """A functionalized program's buffer and input updates (copied into place after each call, outside any
    replay) on CUDA, captured or not: three calls equal the program's own eager run (``ep.module()``: the same
    decomposed kernels; eager's cuDNN batch norm is another) in outputs, buffers and the caller's input."""
    import copy

    from test_aten_hostile import UpdatesItsState

    from runtime.aten import compile

    m = UpdatesItsState().train().cuda()
    g = torch.Generator(device="cuda").manual_seed(6)
    x, acc = torch.randn(4, 6, device="cuda", generator=g), torch.randn(6, device="cuda", generator=g)
    ep = torch.export.export(m, (x, acc.clone())).run_decompositions()
    ref = copy.deepcopy(ep).module()
    c = compile(ep, (x, acc.clone()), streams=3, poison=True, cuda_graph=cuda_graph)
    a, b = acc.clone(), acc.clone()
    for _ in range(3):
        x = torch.randn(4, 6, device="cuda", generator=g)
        got = c(x, a)
        with torch.no_grad():
            want = ref(x, b)
        torch.cuda.synchronize()
        assert torch.equal(got, want) and torch.equal(a, b)
        for name, t in ref.state_dict().items():
            assert torch.equal(ep.state_dict[name], t), name
    assert c.executor._captured == cuda_graph


# --- index_put with one boolean mask (session 41: wav2vec2's ``hidden_states[~mask] = 0``, NOCAPTURE on the H200)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _masked_puts(draw):
    """(x, indices, v): ``x[None]*p + [mask]`` with ``v`` of any shape that broadcasts to one masked slice."""
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=4)))
    p = draw(st.integers(0, len(shape) - 1))
    k = draw(st.integers(1, len(shape) - p))
    lead, rest = shape[:p], shape[p + k:]
    indexed = (*lead, 1, *rest)
    keep = draw(st.integers(0, len(indexed)))   # v: the last ``keep`` dims of the indexed shape, some set to 1
    vshape = tuple(1 if draw(st.booleans()) else d for d in indexed[len(indexed) - keep:])
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 3).to(dtype)
    v = (torch.randn(vshape, generator=g) * 3).to(dtype)
    mask = torch.rand(shape[p:p + k], generator=g) > draw(st.sampled_from([0.0, 0.5, 1.0]))
    return x, [None] * p + [mask], v


def _subscript_put(x, indices, v):
    y = x.clone()
    y[(slice(None),) * (len(indices) - 1) + (indices[-1],)] = v
    return y


@settings(max_examples=120, deadline=None)
@given(_masked_puts())
def test_masked_put_as_where_is_eager_bitwise(case):
    """Every lowered call writes eager ``index_put_``'s bits, in place over ``self`` and into a result apart."""
    x, indices, v = case
    want = torch.ops.aten.index_put_.default(x.clone(), indices, v)   # (the op the program runs)
    assert torch.equal(want, _subscript_put(x, indices, v))
    apart = torch.empty_like(x)
    kind, run, scratch = capturable._masked_put(torch, {"self": x, "indices": indices, "values": v}, apart)
    run()
    assert kind == "exact" and scratch == 0 and torch.equal(apart, want)
    inplace = x.clone()
    run = capturable.capturable_inplace(torch, _Op("aten.index_put_.default", None),
                                        {"self": inplace, "indices": indices, "values": v}, "cuda")
    run()
    assert torch.equal(inplace, want)


def test_masked_put_leaves_to_eager_what_needs_the_count_or_errs():
    """A value with a row per true position (kosmos-2's image embeddings), accumulate, integer or several
    indices, another dtype, a mask of another shape, an expanded self and a value read from self: eager's op."""
    x, mask = torch.zeros(4, 3), torch.tensor([True, False, True, True])
    ok = {"self": x, "indices": [mask], "values": torch.ones(3)}
    assert capturable._masked_put(torch, ok, x) is not None
    for bad in ({"values": torch.ones(3, 3)},                      # one row per true position: needs N
                {"values": torch.ones(2, 1)},                      # eager's broadcast error (N=3)
                {"accumulate": True},
                {"indices": [torch.tensor([0, 2])]},              # integer index
                {"indices": [mask, None]},                         # the mask not last
                {"indices": [mask, torch.tensor([True, False, True])]},
                {"indices": [torch.tensor([1, 0, 1, 1], dtype=torch.uint8)]},
                {"indices": [torch.tensor([True, False])]},       # another shape: eager's IndexError
                {"values": torch.ones(3, dtype=torch.float64)},  # eager's dtype error
                {"self": torch.zeros(4, 1).expand(4, 3)},
                {"values": x[0]}):                                 # a row of self itself
        named = {**ok, **bad}
        assert capturable._masked_put(torch, named, named["self"]) is None, bad
    op = _Op("aten.index_put_.default", None)
    assert capturable.capturable_inplace(torch, op, ok, "cpu") is None
    assert capturable.capturable_inplace(torch, _Op("aten.index_put_.hacked_twin", None), ok, "cuda") is None
    m = torch.device("meta")
    meta = {"self": torch.empty(4, 3, device=m), "indices": [torch.empty(4, dtype=torch.bool, device=m)],
            "values": torch.empty((), device=m)}
    fn = _Op("aten.index_put.default", None)
    assert capturable.capturable_lowering(torch, fn, meta, [torch.empty(4, 3, device=m)], "cuda")[0] == "exact"
    assert capturable.capturable_lowering(torch, fn, meta, [torch.empty(4, 3, device=m)], "cpu") is None


class _PaddedFrames(torch.nn.Module):
    """wav2vec2's encoder: padded frames zeroed in place (``h[~mask] = 0``), a learnt vector over masked ones."""

    def __init__(self):
        super().__init__()
        self.spec = torch.nn.Parameter(torch.randn(8))

    def forward(self, x, keep, masked):
        h = x * 2
        h[~keep.unsqueeze(-1).expand_as(h)] = 0
        h[masked] = self.spec
        return h.softmax(-1)


@pytest.mark.parametrize("streams", [1, 3])
def test_masked_put_is_lowered_over_the_arenas_views(monkeypatch, streams):
    """The lowering's choice over the executor's real views (the CPU, choosing as on CUDA): every planned tensor is
    a view of the one arena, so a storage test refused every call (found on the H200); the bytes decide."""
    import runtime.aten.lower as lower
    from runtime.aten import compile

    chosen, real = [], capturable.capturable_inplace

    def as_on_cuda(torch_, op, named, device_type):
        run = real(torch_, op, named, "cuda")
        chosen.append(run is not None)
        return run
    monkeypatch.setattr(lower, "capturable_inplace", as_on_cuda)
    g = torch.Generator().manual_seed(5)
    m = _PaddedFrames()

    def inputs():
        return torch.randn(2, 6, 8, generator=g), torch.rand(2, 6, generator=g) > 0.3, torch.rand(2, 6, generator=g) > 0.6
    c = compile(m, inputs(), streams=streams, cuda_graph=False, poison=True)
    assert len(chosen) >= 2 and all(chosen), chosen
    for _ in range(3):
        x = inputs()
        with torch.no_grad():
            assert torch.equal(c(*x), m(*x))


@pytest.mark.gpu(backend="torch")
@pytest.mark.parametrize("streams", [1, 3])
def test_masked_index_put_is_captured_bitwise_on_cuda(streams):
    """``index_put_`` with a boolean mask refused every CUDA graph ("operation not permitted when stream is
    capturing": ``nonzero``); captured now, replays of fresh masks bitwise eager's."""
    from runtime.aten import compile

    g = torch.Generator(device="cuda").manual_seed(5)
    m = _PaddedFrames().cuda()

    def inputs():
        return (torch.randn(2, 6, 8, device="cuda", generator=g),
                torch.rand(2, 6, device="cuda", generator=g) > 0.3,
                torch.rand(2, 6, device="cuda", generator=g) > 0.6)
    c = compile(m, inputs(), streams=streams, cuda_graph=True, poison=True)
    for _ in range(3):
        x = inputs()
        got = c(*x)
        torch.cuda.synchronize()
        with torch.no_grad():
            assert torch.equal(got, m(*x))
    assert c.executor._captured


def test_masked_put_keeps_eagers_op_for_half_floats_in_deterministic_mode():
    """CUDA's deterministic ``index_put_`` goes through a sort that converts half and bfloat16 values through float32
    (a NaN payload may come back canonical): there eager's op runs; float32 and integers are still lowered."""
    x, mask = torch.zeros(4, 3), torch.tensor([True, False, True, True])
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        for dtype, lowered in ((torch.float16, False), (torch.bfloat16, False), (torch.float32, True),
                               (torch.int32, True)):
            y = x.to(dtype)
            named = {"self": y, "indices": [mask], "values": torch.ones(3, dtype=dtype)}
            assert (capturable._masked_put(torch, named, y) is not None) == lowered, dtype
        torch.use_deterministic_algorithms(False)
        y = x.half()
        assert capturable._masked_put(torch, {"self": y, "indices": [mask], "values": torch.ones(3).half()}, y)
    finally:
        torch.use_deterministic_algorithms(before)
