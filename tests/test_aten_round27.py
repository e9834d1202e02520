"""Round 27 of the PyTorch path on the CPU: programs loaded from ``.pt2`` (``torch.export.load``, what
``memplan import x.pt2`` reads) must import and run as the same program exported in memory does.

A loaded program's fake tensors share no storage, so the importer learns which results alias their input
from the op's schema; composite ops that return their input or a view of it (eval ``dropout``, ``einsum``,
``broadcast_tensors``...) declare no alias there. Each check compiles on 1 and 3 streams with a poisoned
arena and must equal eager bitwise, outputs and the caller's inputs."""

from __future__ import annotations

import copy
import io
import os

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from needs import need

torch = need("torch")

import test_aten_fuzz as fz  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import from_torch, trace_torch  # noqa: E402
from runtime.aten import compile  # noqa: E402


def _loaded(ep):
    """``ep`` saved with ``torch.export.save`` and loaded back, in memory."""
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    return torch.export.load(buf)


def _shape(graph) -> tuple:
    """What a plan is made of: every tensor's size, kind and bytes in its root (a view of ``x`` at offset 0
    of ``x``'s size and ``x`` itself are one place: which of the two a view names as parent is no matter),
    every node's edges."""
    by_id = {t.id: t for t in graph.tensors}

    def place(t) -> tuple:
        off = 0
        while t.view_of is not None:
            off += t.view_offset
            t = by_id[t.view_of]
        return t.id, off

    return (tuple((t.id, t.size, t.kind, place(t)) for t in graph.tensors),
            tuple((n.id, n.inputs, n.outputs, n.inplace) for n in graph.nodes))


def _arena_tensor_bytes(graph) -> int:
    return sum(t.size for i, t in enumerate(graph.tensors) if graph.is_root(i) and t.kind != "weight")


class ReturnsItsInput(nn.Module):
    """Composite ops whose result is their input or a view of it, with no alias in their schema."""

    def forward(self, x, y):
        h = x * 2
        d = F.dropout(h, 0.3, training=False)            # h itself
        e = torch.einsum("ij->ji", h)                    # a permute of h
        a, b = torch.broadcast_tensors(h[:, :1], y)      # expands
        t = h.type_as(y)                                 # h itself (same dtype)
        s = h.sum_to_size(4, 4)                          # h itself (same size)
        fd = F.dropout2d(h[None, None], 0.1, training=False)   # feature_dropout: its input
        return d + 1, e.sum(0), a * b, t[0], s[1], fd


def test_a_loaded_program_imports_as_the_program_in_memory():
    """Each of those results was imported from a loaded program as a new tensor: bytes planned that eager
    never allocates (GPT-2's eval dropouts: +4.5% arena tensors), and a copy per call into them."""
    m = ReturnsItsInput().eval()
    ep = torch.export.export(m, (torch.randn(4, 4), torch.randn(4, 4)))
    live, loaded = from_torch(ep), from_torch(_loaded(ep))
    assert _shape(loaded) == _shape(live)
    views = {t.id: t.view_of for t in live.tensors}
    for tid in ("dropout", "einsum", "type_as", "sum_to_size", "feature_dropout"):
        assert views[tid] is not None, tid
    assert _arena_tensor_bytes(loaded) == _arena_tensor_bytes(live)


class WritesThroughAnAlias(nn.Module):
    """In-place writes through those results: eager's write reaches the tensor they alias (an input too)."""

    def forward(self, x, z):
        F.dropout(x, 0.2, training=False).add_(1)        # writes the caller's x
        h = z * 2
        torch.einsum("ij->ji", h)[0].mul_(3)             # writes h's column 0
        return h + 0, x * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_a_write_through_an_undeclared_alias_reaches_its_tensor_in_a_loaded_program(streams):
    """The loaded program wrote a private copy: the caller's input kept its old value and ``h`` missed the
    einsum write (both silently wrong)."""
    m = WritesThroughAnAlias()
    x, z = torch.randn(4, 4), torch.randn(4, 4)
    ep = _loaded(torch.export.export(m, (x.clone(), z.clone())))
    c = compile(ep, (x.clone(), z.clone()), streams=streams, poison=True)
    for _ in range(2):
        x, z = torch.randn(4, 4), torch.randn(4, 4)
        ex, ez, cx, cz = x.clone(), z.clone(), x.clone(), z.clone()
        with torch.no_grad():
            ref = m(ex, ez)
        out = c(cx, cz)
        for o, r in zip(out, ref):
            assert o.dtype == r.dtype and torch.equal(o, r)
        assert torch.equal(cx, ex) and torch.equal(cz, ez)
    assert c.stats.copies_per_call == 0   # (each result was copied out of its input, every call)


@pytest.mark.parametrize("streams", [1, 3])
def test_a_loaded_program_with_undeclared_aliases_runs_as_eager(streams):
    """``broadcast_tensors``' results, imported as new tensors with the expanded strides of their fake
    tensors, failed every call ("more than one element of the written-to tensor refers to a single memory
    location": the copy into them)."""
    m = ReturnsItsInput().eval()
    x, y = torch.randn(4, 4), torch.randn(4, 4)
    c = compile(_loaded(torch.export.export(m, (x, y))), (x, y), streams=streams, poison=True)
    for _ in range(2):
        x, y = torch.randn(4, 4), torch.randn(4, 4)
        with torch.no_grad():
            ref = m(x, y)
        out = c(x, y)
        for o, r in zip(out, ref):
            assert o.dtype == r.dtype and o.shape == r.shape and torch.equal(o, r)


def test_a_loaded_training_dropout_is_no_alias_and_draws_as_eager():
    """The meta probe must not take a random op for a view, nor draw from the CPU generator itself."""
    class Drop(nn.Module):
        def forward(self, x):
            return F.dropout(x * 1, 0.5, training=True), F.dropout(x, 0.5, training=True) + 1

    m = Drop()
    x = torch.randn(6, 6)
    ep = _loaded(torch.export.export(m, (x,)))
    graph = from_torch(ep)
    assert all(t.view_of is None for t in graph.tensors if t.id.startswith("dropout"))
    c = compile(ep, (x,), streams=3, poison=True)
    torch.manual_seed(7)
    ref = m(x)
    torch.manual_seed(7)
    out = c(x)
    assert all(torch.equal(o, r) for o, r in zip(out, ref))


def test_memplan_import_of_a_pt2_plans_the_bytes_of_the_program_in_memory(tmp_path):
    """The CLI reads ``.pt2`` files, always loaded programs: its graph is the in-memory export's."""
    m = ReturnsItsInput().eval()
    ep = torch.export.export(m, (torch.randn(4, 4), torch.randn(4, 4)))
    torch.export.save(ep, tmp_path / "m.pt2")
    from memplan.cli import main
    from memplan.io import load_graph

    assert main(["import", str(tmp_path / "m.pt2"), "-o", str(tmp_path / "g.json"), "-q"]) == 0

    assert _shape(load_graph(str(tmp_path / "g.json"))) == _shape(from_torch(ep, name="m"))


class ReducedLosses(nn.Module):
    """Losses reduced to a 0-d result beside values still live after them (a training step's forward)."""

    def __init__(self, loss: str, reduction: str):
        super().__init__()
        self.loss, self.reduction = loss, reduction

    def forward(self, x, y):
        h = x * 2
        g = y - 1
        loss = getattr(F, self.loss)(h, g, reduction=self.reduction)
        return loss, h + g, loss * 3


@pytest.mark.parametrize("loss", ["mse_loss", "huber_loss", "smooth_l1_loss", "soft_margin_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_losses_write_only_their_planned_bytes(loss, reduction):
    """Their out= kernels (CPU) resize the 0-d result to the input's shape, write the elementwise loss there,
    then reduce and resize back: over the planned values after the loss's slot (wrong results, silently), or
    past the arena's end (the call refused: "the arena's storage moved"). They run functionally now."""
    from runtime.aten.program import load_program

    m = ReducedLosses(loss, reduction)
    for dtype in (torch.float32, torch.bfloat16):
        x, y = torch.randn(24, 32, dtype=dtype), torch.randn(24, 32, dtype=dtype)
        program = load_program(m, (x, y))   # (one export per dtype, planned and lowered on each stream count)
        for streams in (1, 3):
            c = compile(m, (x, y), streams=streams, poison=True, program=program)
            for _ in range(2):
                x, y = torch.randn(24, 32, dtype=dtype), torch.randn(24, 32, dtype=dtype)
                out, ref = c(x, y), m(x, y)
                for o, r in zip(out, ref):
                    assert o.dtype == r.dtype and o.shape == r.shape and torch.equal(o, r)


def _import_error(tmp_path, capfd, path) -> str:
    """The one line ``memplan import`` writes for ``path`` (exit 2, no graph written)."""
    from memplan.cli import main

    capfd.readouterr()
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capfd.readouterr().err   # (capfd: what torch's C++ writes to file descriptor 2 too)
    assert err.count("\n") == 1 and err.startswith("memplan: error: "), err
    assert not (tmp_path / "g.json").exists()
    return err


def test_a_pt2_torch_cannot_read_says_why_in_its_one_line(tmp_path, capfd):
    """``torch.export.load`` logs why it gave up on an archive and raises "Please check the warnings above",
    which the CLI keeps quiet: the one line said to look at warnings nobody was shown. It names the cause."""
    import zipfile

    torch.save({"w": torch.zeros(2)}, tmp_path / "checkpoint.pt2")   # a torch.save checkpoint: a zip archive
    err = _import_error(tmp_path, capfd, tmp_path / "checkpoint.pt2")
    assert "warnings above" not in err and "torch.save" in err   # named as what it is (was: archive_format)
    with zipfile.ZipFile(tmp_path / "other.pt2", "w") as z:
        z.writestr("notes.txt", "no program")
    err = _import_error(tmp_path, capfd, tmp_path / "other.pt2")
    assert "warnings above" not in err and "notes.txt" in err
    buf = io.BytesIO()
    torch.export.save(torch.export.export(ReturnsItsInput(), (torch.randn(4, 4), torch.randn(4, 4))), buf)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(tmp_path / "no_model.pt2", "w") as z:
        for name in src.namelist():
            if not name.endswith("models/model.json"):
                z.writestr(name, src.read(name))
    err = _import_error(tmp_path, capfd, tmp_path / "no_model.pt2")
    assert "warnings above" not in err and "no exported program" in err
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(tmp_path / "custom_op.pt2", "w") as z:
        for name in src.namelist():   # a program using an op this process has not registered (a custom op)
            data = src.read(name)
            if name.endswith("models/model.json"):
                data = data.replace(b"torch.ops.aten.mul.Tensor", b"torch.ops.memplan_nolib27.twice.default")
            z.writestr(name, data)
    err = _import_error(tmp_path, capfd, tmp_path / "custom_op.pt2")
    assert "memplan_nolib27.twice" in err and "Node(" not in err and "custom op" in err


# --- the fuzzer's random programs, loaded ------------------------------------------------------------------
# ``memplan import x.pt2`` and ``compile(torch.export.load(...))`` see a program whose fake tensors share no
# storage: each random program of ``test_aten_fuzz`` (with buffers updated in ``forward`` too) must import from
# its loaded copy exactly as from the export in memory, and run from both as eager does, call after call.
# ``MEMPLAN_FUZZ_LOADED_EXAMPLES=300`` runs a campaign.

LOADED_EXAMPLES = int(os.environ.get("MEMPLAN_FUZZ_LOADED_EXAMPLES", "5"))


@settings(max_examples=LOADED_EXAMPLES, deadline=None, derandomize=LOADED_EXAMPLES <= 20,
          suppress_health_check=list(HealthCheck))
@given(fz.programs(stateful=True), st.lists(st.sampled_from(fz.LAYOUTS), min_size=2, max_size=2))
def test_random_programs_loaded_from_pt2_import_and_run_as_in_memory(prog, layouts):
    module, shapes = prog
    note(f"steps={module.steps} outputs={module.outputs} shapes={shapes} dtypes={module.dtypes}")
    if any(k == "state_" for k, *_ in module.steps):
        event("updates a buffer")
    example = tuple(torch.randn(s, dtype=fz.DTYPES[d]) for s, d in zip(shapes, module.dtypes))
    pristine = copy.deepcopy(module)   # each run below starts from this state: eager's, and each program's
    try:
        saved = io.BytesIO()
        torch.export.save(torch.export.export(copy.deepcopy(pristine), example), saved)
    except Exception as exc:   # what export or its serializer refuses is no example
        event(f"export/save rejects: {str(exc)[:50]}")
        assume(False)

    def program(how: str):
        if how == "live":
            return torch.export.export(copy.deepcopy(pristine), example)
        saved.seek(0)
        return torch.export.load(saved)

    try:   # (trace_torch: the executor's import, which takes a program returning its input as it is)
        live = trace_torch(program("live"))[1]
    except GraphError as exc:
        assert "node " in str(exc)
        event(f"import refuses: {str(exc)[:90]}")
        return
    event("imported and run")
    assert _shape(trace_torch(program("loaded"))[1]) == _shape(live)
    calls = [fz._fresh_inputs(module, shapes, layouts, "cpu") for _ in range(2)]
    for how in ("live", "loaded"):
        for streams in (1, 3):
            eager, c = copy.deepcopy(pristine), compile(program(how), example, streams=streams, poison=True)
            for k, (xs, eager_in) in enumerate(calls):
                what = f"{how}, {streams} streams, call {k}"
                ex, cx = tuple(x.clone() for x in eager_in), tuple(fz._fresh_like(x) for x in xs)
                with torch.no_grad():
                    ref = eager(*ex)
                out = c(*cx)
                assert len(out) == len(ref)
                for i, (o, r) in enumerate(zip(out, ref)):
                    assert fz._same(o, r), f"{what}: output {i} differs from eager"
                for i, (x, e) in enumerate(zip(cx, ex)):
                    assert fz._same(x, e), f"{what}: input {i} left otherwise than eager leaves it"
