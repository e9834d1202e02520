"""Round 58 (mutation58): tests that kill the mutants ``docs/experiments/mutation_s58.py`` found surviving.

Each test names the mutant(s) it kills (id, module, line, what changed). Targets: the ONNX and torch.export
importers, ``memplan.io``, the CLI's exit codes, and the ATen executor's CPU-runnable parts (arena layout, the
issue order of events on streams, the program's call checks). The event order of ``runtime.aten.streams.Issuer`` is
pinned with a fake ``torch.cuda`` (streams, events and launches logged in issue order): the real one needs a GPU,
and no CPU test could tell a skipped ``wait_event`` or ``record`` from the plan's own.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from needs import need

from runtime.binding import Step


def _streams():
    need("torch")
    from runtime.aten import streams

    return streams


class _FakeEvent:
    def __init__(self, log: list, name: str):
        self.log, self.name = log, name

    def record(self, stream) -> None:
        self.log.append(("record", self.name, stream.name))


class _FakeStream:
    device_index = 0   # (every fake stream is of the caller's device: ``_issue`` puts back no other)

    def __init__(self, log: list, name: str):
        self.log, self.name = log, name

    def wait_event(self, event) -> None:
        self.log.append(("wait", self.name, event.name))


class _FakeCuda:
    """The calls ``Issuer._issue`` makes on ``torch.cuda``, logged."""

    def __init__(self, log: list):
        self.log = log
        self.caller = _FakeStream(log, "caller")
        self.current = self.caller

    def current_stream(self, device=None):
        return self.current

    def set_stream(self, s) -> None:
        self.current = s

    def current_device(self) -> int:
        return 0

    def _sleep(self, cycles: int) -> None:
        self.log.append(("sleep", self.current.name, cycles))


def _fake_issuer(steps: list[Step], n_events: int, asked: list | None = None):
    """An ``Issuer`` built for the CPU, then given fake CUDA streams and events (``s0``, ``s1``...; ``e0``...; the
    fork ``fork``, the joins ``j0``...): its CUDA issue path runs, logging every wait, record and launch."""
    streams_mod = _streams()
    log: list = []
    cuda = _FakeCuda(log)
    launches = {s.node: SimpleNamespace(op="aten.x", run=(lambda n=s.node: log.append(("run", n, cuda.current.name))))
                for s in steps}
    issuer = streams_mod.Issuer(steps, launches, 2, "cpu", n_events)
    issuer.torch = SimpleNamespace(cuda=cuda, no_grad=contextlib.nullcontext)
    issuer.cuda = True
    issuer.streams = {sid: _FakeStream(log, f"s{sid}") for sid in streams_mod.used_streams(steps)}
    issuer.events = [_FakeEvent(log, f"e{i}") for i in range(n_events)]
    issuer.fork = _FakeEvent(log, "fork")
    issuer.joins = [_FakeEvent(log, f"j{i}") for i in range(len(issuer.streams))]
    if asked is not None:
        def status():
            asked.append(1)
            return 1   # CAPTURE_ACTIVE
        issuer.capture_status = status
    return issuer, log


#: a on stream 0 records e0; b on stream 1 waits e0, runs, records e1; c on stream 0 waits e1
STEPS = [Step("a", 0, 0, (), (0,)), Step("b", 1, 0, (0,), (1,)), Step("c", 0, 0, (1,), ())]
ISSUED = [
    ("record", "fork", "caller"), ("wait", "s0", "fork"), ("wait", "s1", "fork"),
    ("run", "a", "s0"), ("record", "e0", "s0"),
    ("wait", "s1", "e0"), ("run", "b", "s1"), ("record", "e1", "s1"),
    ("wait", "s0", "e1"), ("run", "c", "s0"),
    ("record", "j0", "s0"), ("wait", "caller", "j0"), ("record", "j1", "s1"), ("wait", "caller", "j1"),
]


def test_issue_forks_waits_records_and_joins_in_plan_order():
    """Kills streams 46 (L92 ``self.fork.record`` dropped: the plan streams wait on an event never recorded, so
    they do not wait for the caller's input copies), 47 (L94 ``s.wait_event(fork)`` dropped), 49-50 (L106/L108:
    ``delays`` tested when None, a run dropped) and 51 (L119 a join ``record`` dropped: the caller
    would read outputs before a plan stream finished): the whole issue sequence of a two-stream plan, exactly."""
    issuer, log = _fake_issuer(STEPS, 2)
    issuer.issue()
    assert log == ISSUED


def test_issue_sleeps_only_before_the_delayed_node():
    issuer, log = _fake_issuer(STEPS, 2)
    issuer.issue({"b": 7})
    assert ("sleep", "s1", 7) in log and log.index(("sleep", "s1", 7)) == log.index(("run", "b", "s1")) - 1
    assert sum(e[0] == "sleep" for e in log) == 1


def test_capture_status_asked_only_while_capturing():
    """The capture status is asked after each launch only while capturing (the eager path and replays pay no
    query per node, streams.py L106): an eager call asks nothing, a capturing one asks before and after each."""
    asked: list = []
    issuer, _log = _fake_issuer(STEPS, 2, asked)
    issuer.issue()
    assert asked == []
    issuer.capturing = True
    issuer.issue()
    assert len(asked) == 2 * len(STEPS)


# -- ONNX dtype sizes (memplan/importers/onnx/common.py ``_BITS``, ``_nbytes``) ---------------------------------

#: bytes of a [3, 5] tensor (15 elements) of each ONNX dtype with a fixed size, from the ONNX spec, written here
#: independently of the importer's table: sub-byte types are packed (int4: 60 bits -> 8 bytes, int2: 30 -> 4)
ONNX_15_BYTES = {
    "FLOAT": 60, "UINT8": 15, "INT8": 15, "UINT16": 30, "INT16": 30, "INT32": 60, "INT64": 120, "BOOL": 15,
    "FLOAT16": 30, "DOUBLE": 120, "UINT32": 60, "UINT64": 120, "COMPLEX64": 120, "COMPLEX128": 240, "BFLOAT16": 30,
    "FLOAT8E4M3FN": 15, "FLOAT8E4M3FNUZ": 15, "FLOAT8E5M2": 15, "FLOAT8E5M2FNUZ": 15, "UINT4": 8, "INT4": 8,
    "FLOAT4E2M1": 8, "FLOAT8E8M0": 15, "UINT2": 4, "INT2": 4,
}
#: float6 types: onnx's Identity takes none, so an unread graph input of [3, 5] beside an Identity on floats
ONNX_15_BYTES_UNREAD = {"FLOAT6E2M3": 12, "FLOAT6E3M2": 12}


def _identity_model(onnx, elem: int, unread: int | None = None):
    h = onnx.helper
    x = h.make_tensor_value_info("x", elem, [3, 5])
    y = h.make_tensor_value_info("y", elem, [3, 5])
    ins = [x] + ([h.make_tensor_value_info("u", unread, [3, 5])] if unread is not None else [])
    g = h.make_graph([h.make_node("Identity", ["x"], ["y"], name="id")], "g", ins, [y])
    return h.make_model(g)


@pytest.mark.parametrize("dtype", sorted(ONNX_15_BYTES))
def test_onnx_dtype_sizes(dtype):
    """Kills onnxsize 1-3 (``_BITS`` of FLOAT16, FLOAT8E4M3FNUZ, INT2 doubled): each dtype's tensor planned at
    the spec's bytes, the graph input and the node's output alike."""
    onnx = need("onnx")
    from memplan.importers.onnx import import_onnx

    elem = onnx.TensorProto.DataType.Value(dtype)
    sizes = {t.id: t.size for t in import_onnx(_identity_model(onnx, elem)).tensors}
    assert sizes == {"x": ONNX_15_BYTES[dtype], "y": ONNX_15_BYTES[dtype]}


def test_onnx_node_keeps_its_name_beside_a_constant_of_that_name():
    """Kills onnxsize 4 (common.py L125, ``owner.setdefault`` dropped): a ``Constant`` (folded into a weight, no
    node of the graph) named like a later node must not take that node's name; the node keeps it, unsuffixed."""
    onnx = need("onnx")
    from memplan.importers.onnx import import_onnx

    h = onnx.helper
    c = h.make_node("Constant", [], ["k"], name="n", value=h.make_tensor("kv", 1, [3, 5], [0.0] * 15))
    add = h.make_node("Add", ["x", "k"], ["y"], name="n")
    g = h.make_graph([c, add], "g", [h.make_tensor_value_info("x", 1, [3, 5])],
                     [h.make_tensor_value_info("y", 1, [3, 5])])
    graph = import_onnx(h.make_model(g))
    assert [n.id for n in graph.nodes] == ["n"]
    assert {t.id: (t.kind, t.size) for t in graph.tensors} == {"x": ("input", 60), "k": ("weight", 60),
                                                               "y": ("output", 60)}


def test_onnx_input_returned_as_output_is_an_output_view():
    """Kills onnximp 7 (importer.py L512, ``tensors.append`` dropped in ``_return_inputs``): a graph input the model
    also returns is planned as an ``output`` view of it (``x::output``, offset 0, its size and shape), so no plan
    reuses its bytes after its last reader."""
    onnx = need("onnx")
    from memplan.importers.onnx import import_onnx

    h = onnx.helper
    x = h.make_tensor_value_info("x", 1, [3, 5])
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"], name="r")], "g", [x],
                     [h.make_tensor_value_info("y", 1, [3, 5]), h.make_tensor_value_info("x", 1, [3, 5])])
    graph = import_onnx(h.make_model(g))
    out = {t.id: t for t in graph.tensors}["x::output"]
    assert (out.kind, out.view_of, out.view_offset, out.size) == ("output", "x", 0, 60)
    assert out.attrs["graph_output"] == "x" and out.attrs["shape"] == [3, 5]


def test_onnx_unread_initializer_is_a_weight_unless_it_has_no_byte_size():
    """Kills onnximp 8 (importer.py L391, the byte-size test dropped: every unread initializer left out): an
    initializer no node reads is still a weight of the model (planned with its bytes); only one of a dtype with no
    byte size (a string table) is left out."""
    onnx = need("onnx")
    from memplan.importers.onnx import import_onnx

    h = onnx.helper
    w = h.make_tensor("w", 1, [2, 3], [0.0] * 6)
    s = h.make_tensor("s", onnx.TensorProto.STRING, [2], [b"a", b"b"])
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"], name="r")], "g", [h.make_tensor_value_info("x", 1, [4])],
                     [h.make_tensor_value_info("y", 1, [4])], initializer=[w, s])
    graph = import_onnx(h.make_model(g))
    assert {t.id: (t.kind, t.size) for t in graph.tensors} == {"x": ("input", 16), "w": ("weight", 24),
                                                               "y": ("output", 16)}


# -- plan / graph JSON reader and writer (memplan/io/__init__.py) --------------------------------------------


def test_plan_reader_names_a_nul_byte(tmp_path):
    """Kills io 26 (L47, ``text_trouble`` skipped): a file holding a NUL byte is refused as binary, at its byte,
    not with the parser's complaint about "extra data"."""
    from memplan.errors import PlanFormatError
    from memplan.io import load_plan

    p = tmp_path / "p.json"
    p.write_bytes(b'{"a": 1}\x00')
    with pytest.raises(PlanFormatError, match=r"NUL byte \(at byte 8\)"):
        load_plan(str(p))


@pytest.mark.parametrize(("depth", "why"), [(64, "top level must be a JSON object"),
                                            (65, "JSON nested more than 64 levels deep")])
def test_plan_reader_nesting_limit_is_inclusive(tmp_path, depth, why):
    """Kills io 29 (L49, ``> MAX_JSON_DEPTH`` -> ``>=``): a document nested exactly 64 deep is within the limit
    (docs/format.md "Limits"); 65 is refused."""
    from memplan.errors import PlanFormatError
    from memplan.io import load_plan

    p = tmp_path / "p.json"
    p.write_text("[" * depth + "]" * depth)
    with pytest.raises(PlanFormatError, match=why):
        load_plan(str(p))


def test_plan_reader_refuses_an_int_path():
    """Kills io 30 (L239, the type test of ``_path`` dropped): an int is no path (``open`` would take it for a file
    descriptor and read whatever that is)."""
    from memplan.errors import PlanFormatError
    from memplan.io import load_plan

    with pytest.raises(PlanFormatError, match="expected a file path, not int 0"):
        load_plan(0)


def test_save_plan_refuses_a_dict(tmp_path):
    """Kills io 28 (L312, the Plan test skipped): a dict is refused by name, not an AttributeError."""
    from memplan.errors import PlanFormatError
    from memplan.io import save_plan

    with pytest.raises(PlanFormatError, match="save_plan needs a memplan Plan .* not dict"):
        save_plan({"format": "memplan.plan/1"}, str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists()


def test_save_graph_names_the_tensor_with_unwritable_attrs(tmp_path):
    """Kills io 31 (L280, ``_unwritable`` returning the graph's name): the refusal names the tensor whose attrs
    hold a NaN, and writes nothing."""
    import dataclasses

    import memplan
    from memplan.errors import GraphError
    from memplan.io import save_graph

    b = memplan.GraphBuilder("tiny")
    b.input("x", 64)
    b.node("a", "UNARY", ["x"], b.output("y", 64))
    g = b.build()
    bad = dataclasses.replace(g, tensors=(g.tensors[0], dataclasses.replace(g.tensors[1], attrs={"w": float("nan")})))
    with pytest.raises(GraphError, match=r"^tensor 'y': attrs are not JSON"):
        save_graph(bad, str(tmp_path / "g.json"))
    assert list(tmp_path.iterdir()) == []


def test_onnx_overridable_initializer_refused_only_when_returned():
    """Kills onnximp 10 (importer.py L393, ``v in out_set`` -> ``not in``): an initializer that is also a graph
    input (IR 4+: the caller may override it) and that a node reads imports as a weight; only one the graph returns
    with no node producing it is refused."""
    onnx = need("onnx")
    from memplan.errors import GraphError
    from memplan.importers.onnx import import_onnx

    h = onnx.helper
    w = h.make_tensor("w", 1, [4], [1.0] * 4)
    vi = {v: h.make_tensor_value_info(v, 1, [4]) for v in "xwy"}
    read = h.make_graph([h.make_node("Add", ["x", "w"], ["y"], name="a")], "g", [vi["x"], vi["w"]], [vi["y"]],
                        initializer=[w])
    graph = import_onnx(h.make_model(read))
    assert {t.id: (t.kind, t.size) for t in graph.tensors} == {"x": ("input", 16), "w": ("weight", 16),
                                                               "y": ("output", 16)}
    returned = h.make_graph([h.make_node("Relu", ["x"], ["y"], name="a")], "g", [vi["x"], vi["w"]],
                            [vi["y"], vi["w"]], initializer=[w])
    with pytest.raises(GraphError, match="graph output 'w' is an initializer the caller may override"):
        import_onnx(h.make_model(returned))


# -- the ATen executor's arena layout (runtime/aten/layout.py) -----------------------------------------------


def test_span_bytes_of_an_empty_tensor_is_zero():
    """Kills layout 38 (L40, the no-element return skipped): a tensor with a 0 dimension spans no bytes (the formula
    alone gives 4 * 1 + (0 - 1) * 1 + 1 = 4 elements, 16 bytes, for shape (5, 0) at strides (1, 1))."""
    need("torch")
    from runtime.aten.layout import span_bytes
    from runtime.aten.program import TensorSpec

    assert span_bytes(TensorSpec(torch_dtype("float32"), (5, 0), (1, 1), 0)) == 0
    assert span_bytes(TensorSpec(torch_dtype("float32"), (0, 4), (4, 1), 0)) == 0
    assert span_bytes(TensorSpec(torch_dtype("float32"), (3, 4), (4, 1), 0)) == 48
    assert span_bytes(TensorSpec(torch_dtype("float16"), (3, 4), (1, 6), 0)) == 2 * (2 * 1 + 3 * 6 + 1)


def torch_dtype(name: str):
    return getattr(need("torch"), name)


def test_arena_larger_than_the_machine_refused_before_allocating():
    """Kills layout 41 (L55, ``held is not None`` -> ``is None``): an arena above the device's memory is refused by
    size, naming it, before the allocator is asked (which may take it lazily and fail page by page)."""
    torch = need("torch")
    from runtime.aten.errors import ArenaOutOfMemory
    from runtime.aten.layout import aligned_arena, device_bytes

    held = device_bytes(torch, "cpu")
    assert held is not None
    with pytest.raises(ArenaOutOfMemory, match=rf"is more than cpu holds \({held} B\)"):
        aligned_arena(torch, held + 64, 64, "cpu")


def test_share_memory_adjacent_spans_do_not_share():
    """Kills layout 43 (L234, ``a0 < b1`` -> ``<=``): two halves of one tensor meet at a byte boundary but share
    none; overlapping slices do."""
    torch = need("torch")
    from runtime.aten.layout import share_memory

    t = torch.zeros(8)
    assert not share_memory(t[4:], t[:4])
    assert not share_memory(t[:4], t[4:])
    assert share_memory(t[3:], t[:4]) and share_memory(t[:4], t[3:])
    assert not share_memory(t[:0], t)


# -- the ATen program's specs and call checks (runtime/aten/program.py) ---------------------------------------


def test_spec_of_a_value_that_is_no_tensor_is_refused_by_name():
    """Kills program 52 (L624, the tensor test of ``_spec`` skipped: an AttributeError on ``None``)."""
    torch = need("torch")
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.program import _spec

    with pytest.raises(AtenExecutorError, match="tensor 'buf' has no fake tensor in the export"):
        _spec(torch, "buf", None)
    s = _spec(torch, "v", torch.zeros(4, 6, dtype=torch.float16)[1:, ::2])
    assert (s.shape, s.stride, s.byte_offset, s.itemsize) == ((3, 3), (6, 2), 12, 2)


def _bare_program(**kw):
    base = dict(in_spec=None, user_consts=(), user_inputs=((0, "x"), (1, "y")), merged=(), merged_weights=())
    return SimpleNamespace(**{**base, **kw})


def test_flatten_inputs_refuses_a_non_tensor_for_a_tensor_input():
    """Kills program 53 (L667, the tensor test skipped: a number passed for a tensor input reached the kernels)."""
    torch = need("torch")
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.program import flatten_inputs

    x = torch.zeros(4)
    assert flatten_inputs(_bare_program(), (x, x), None) == [x, x]
    with pytest.raises(AtenExecutorError, match=r"input 'y' \(argument leaf 1\) must be a tensor, got int"):
        flatten_inputs(_bare_program(), (x, 3), None)


def test_alike_needs_the_same_elements_and_takes_a_plain_view():
    """Kills program 54 (L723, the data-pointer test dropped: two different tensors of one layout taken as one, so a
    call passing two tensors where the export merged one ran the program on one of them for both) and 56 (L726,
    ``is_conj() ==`` -> ``!=``: a plain view of the same elements refused)."""
    torch = need("torch")
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.program import _alike, flatten_inputs

    a, b = torch.zeros(4), torch.zeros(4)
    assert not _alike(a, b)
    assert _alike(a, a[:]) and _alike(a, a.view(4))
    merged = _bare_program(merged=((0, 1),))
    assert flatten_inputs(merged, (a, a[:]), None)[1] is not a
    with pytest.raises(AtenExecutorError, match="inputs 'x' and 'y' were one tensor in the export's example inputs"):
        flatten_inputs(merged, (a, b), None)


def test_same_constant_values():
    """Kills program 57 (L712, ``bool(x == value)`` -> ``!=``: a call passing 1000 where the export had 1000, another
    int object, was refused, and 3 for 2 taken): a non-float constant is the same by ``==`` and type; a float as
    documented (a signed zero counts, NaN is NaN)."""
    need("torch")
    from runtime.aten.program import _same_constant

    assert _same_constant(int("1000"), 1000) and _same_constant(("a", int("700")), ("a", 700))
    assert not _same_constant(3, 2) and not _same_constant("b", "a") and not _same_constant(True, 1)
    assert _same_constant(2.5, 2.5) and _same_constant(float("nan"), float("nan"))
    assert not _same_constant(2.5, 3.5) and not _same_constant(-0.0, 0.0) and not _same_constant(2.0, 2)


# -- the torch.export importer (memplan/importers/torch/translate.py) -----------------------------------------


def test_torch_program_of_no_tensor_op_is_refused():
    """Kills torchtr 14 (translate.py L553, the no-node refusal skipped): a forward that returns its parameter
    runs no op; imported as a graph of no node, every command "planned" it silently."""
    torch = need("torch")
    from memplan.errors import GraphError
    from memplan.importers.torch import from_torch

    class ReturnsWeight(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.w

    with pytest.raises(GraphError, match=r"ReturnsWeight: the program runs no tensor op \(its forward returns 'p_w'\)"):
        from_torch(ReturnsWeight(), (torch.zeros(4),))


def test_torch_as_strided_past_a_user_input_is_refused():
    """Kills torchtr 16 (translate.py L261, every user input taken for one whose storage is unknown): with the
    example input in hand, an ``as_strided`` reading bytes 24..40 of an 8-float input (32 bytes) is refused, as
    torch refuses it at run time, instead of growing the input's planned size to 40."""
    torch = need("torch")
    from memplan.errors import GraphError
    from memplan.importers.torch import from_torch

    class PastEnd(torch.nn.Module):
        def forward(self, x):
            return x.as_strided((4,), (1,), 6) * 2

    with pytest.raises(GraphError, match=r"reads or writes bytes up to 40 of the storage of 'x' .* which holds 32"):
        from_torch(PastEnd(), (torch.zeros(8),))


def test_torch_write_through_a_view_runs_after_earlier_readers():
    """Pins translate.py L497 (``readers_since``: write after read): ``a[:2].add_(3)`` after ``b = a * 2`` reads
    ``mul`` as well, so no schedule runs the write before that reader; its whole-root write is a view of ``add``."""
    torch = need("torch")
    from memplan.importers.torch import from_torch

    class WriteAfterRead(torch.nn.Module):
        def forward(self, x):
            a = x + 1
            b = a * 2
            a[:2].add_(3)
            return a, b

    g = from_torch(WriteAfterRead(), (torch.zeros(4),))
    nodes = {n.id: n for n in g.nodes}
    assert nodes["add_"].inputs == ("slice_1", "mul")
    assert nodes["add_"].outputs == ("add_", "add_.writes.add")
    t = {t.id: t for t in g.tensors}
    assert (t["slice_1"].view_of, t["slice_1"].size) == ("add", 8)
    assert (t["add_.writes.add"].view_of, t["add_.writes.add"].size) == ("add", 16)


def test_torch_elements_spanned():
    """Kills torchck 22 (checks.py L193, ``+ 1`` dropped): the elements a tensor's first to last element span, as
    the refusal of an edited program's record quotes them ("spanning N elements")."""
    torch = need("torch")
    from memplan.importers.torch.checks import _elements

    t = torch.zeros(3, 4)
    assert (_elements(t), _elements(t[:, ::2]), _elements(t.t()), _elements(t[:0])) == (12, 11, 12, 0)
    assert _elements(torch.zeros(1)) == 1


def test_torch_may_alias_op_with_another_dtype_is_no_alias():
    """Kills torchck 24 (checks.py L297, ``inp.dtype != out.dtype`` -> ``==``): a ``to`` whose result has another
    dtype (or device) is a copy, whatever the schema's ``Tensor(a)``; same dtype and strides, an alias."""
    torch = need("torch")
    from memplan.importers.torch.checks import _aliases_here

    x = torch.zeros(2, 3)
    assert not _aliases_here(torch, "to.dtype", x, x.half())
    assert _aliases_here(torch, "to.dtype", x, x.view(2, 3))
    assert not _aliases_here(torch, "to.dtype", x, x.t().contiguous().t())


def _viewed_buffers_program():
    """A module with a float buffer ``a`` and two views of it the program reads: ``b``, its bytes 8..24 as int32
    (``register_buffer("b", self.a.view(torch.int32)[2:6])``), and ``c``, its first three floats (byte 0)."""
    torch = need("torch")
    from runtime.aten.program import load_program

    class ViewedBuffers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a", torch.arange(8, dtype=torch.float32))
            self.register_buffer("b", self.a.view(torch.int32)[2:6])
            self.register_buffer("c", self.a[:3])

        def forward(self, x):
            return x + self.b, self.c * 2

    m = ViewedBuffers()
    return m, load_program(m, (torch.zeros(4, dtype=torch.int32),))


def test_layout_views_of_weights_in_their_dtype_and_place():
    """Kills layout 42 (L169, ``own.dtype != spec.dtype`` -> ``==``: a buffer that is another's bytes in another
    dtype was viewed in the module tensor's dtype, float 2.0 where the program reads int32 0x40000000), 45 (L176,
    ``start < 0`` -> ``<=``: a view at byte 0 of its weight refused) and 44 (L162, the shape test dropped: a weight
    the module now holds in another shape than the export's was used as it is, where it is refused by name)."""
    import dataclasses

    import memplan
    from runtime.aten.errors import AtenExecutorError
    from runtime.aten.layout import build_layout
    from runtime.binding import bind

    m, prog = _viewed_buffers_program()
    binding = bind(prog.graph, memplan.plan(prog.graph))
    views = build_layout(prog, binding, "cpu").views
    b = next(v for tid, v in views.items() if tid.endswith("b_b"))
    c = next(v for tid, v in views.items() if tid.endswith("b_c"))
    assert b.dtype == torch_dtype("int32") and b.tolist() == m.a.view(torch_dtype("int32"))[2:6].tolist()
    assert b.data_ptr() == m.a.data_ptr() + 8
    assert c.dtype == torch_dtype("float32") and c.data_ptr() == m.a.data_ptr() and c.tolist() == [0.0, 1.0, 2.0]
    root = next(tid for tid in prog.weights)
    grown = dataclasses.replace(prog, weights={**prog.weights, root: need("torch").zeros(9)})
    with pytest.raises(AtenExecutorError, match=rf"weight {root!r} is \(9,\) torch.float32 in the module but \(8,\)"):
        build_layout(grown, binding, "cpu")


def test_torch_op_sharing_its_input_storage_without_a_schema_alias_is_a_view():
    """Pins the alias of an op whose schema declares none: ``aten._unsafe_view``'s result is its input's storage,
    so it is a view (offset 0), not 120 bytes of its own at another place than the bytes torch's kernel returns.
    (Written for torchtr 18, translate.py L402 ``op in _FRESH`` -> ``not in``, which it does NOT kill: the importer's
    probe of the op on meta tensors finds the same alias, see mutation_s58.txt.)"""
    torch = need("torch")
    from memplan.importers.torch import from_torch

    class UnsafeView(torch.nn.Module):
        def forward(self, x, w):
            return torch.ops.aten._unsafe_view(x @ w, (6, 5)) * 2

    g = from_torch(UnsafeView(), (torch.zeros(2, 3, 4), torch.zeros(4, 5)))
    t = {t.id: t for t in g.tensors}
    assert (t["_unsafe_view"].view_of, t["_unsafe_view"].view_offset, t["_unsafe_view"].size) == ("matmul", 0, 120)


def test_torch_loaded_scatter_of_a_slice_imports_as_in_memory():
    """Kills torchtr 20 (translate.py L426, ``src not in relaid`` -> ``in``): a program saved to .pt2 and loaded
    (its fake tensors share no storage, all at offset 0) whose ``slice_scatter`` takes a slice: the result keeps the
    slice's storage offset, so its views count from there, as in the program in memory."""
    torch = need("torch")
    from torch_saved import saved_and_loaded

    from memplan.importers.torch import from_torch

    class ScatterOfSlice(torch.nn.Module):
        def forward(self, x):
            z = torch.slice_scatter((x * 2)[:, 2:], torch.ones(4, 3), 1, 0, 3)
            return z[1:] * 1

    ep = torch.export.export(ScatterOfSlice(), (torch.randn(4, 8),))
    direct = from_torch(ep)
    assert any(t.view_offset > 0 for t in direct.tensors)
    assert from_torch(saved_and_loaded(ep)).to_dict() == direct.to_dict()
