"""torch.export importer: sizes, views, in-place ops (the ``torch`` extra, installed in CI)."""

from __future__ import annotations

import json

import pytest
from needs import need, save_or_skip

torch = need("torch")
from torch import nn  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402


class Views(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 32)
        self.register_buffer("shift", torch.ones(32))

    def forward(self, x):
        h = self.lin(x).relu_()          # in-place on a fresh intermediate
        h = h + self.shift
        v = h.view(2, 4, 32)             # view chain: view -> permute
        p = v.permute(0, 2, 1)
        c = p.contiguous()               # a copy
        s = c.transpose(1, 2)[:, 1:3]    # transpose -> slice (non-zero offset)
        a, b = h.split(16, dim=1)        # two views at offsets 0 and 16 floats
        y = s.reshape(2, 2, 32).sum() + a.mean() + b.t().sum()
        return y, h.unsqueeze(0)         # an output that is a view


def test_views_inplace_weights_and_sizes():
    g = memplan.from_torch(Views().eval(), (torch.randn(8, 16),))
    t = {x.id: x for x in g.tensors}
    assert t["x"].kind == "input" and t["x"].size == 8 * 16 * 4
    assert t["p_lin_weight"].kind == "weight" and t["p_lin_weight"].size == 32 * 16 * 4
    assert t["b_shift"].kind == "weight"
    assert t["linear"].size == 8 * 32 * 4 and t["linear"].view_of is None
    # relu_ wrote over its input: a new tensor that may share it, and add reads the new value
    relu = g.node("relu_")
    assert relu.inplace == (("relu_", "linear"),)
    assert g.node("add").inputs[0] == "relu_"
    assert (t["view"].view_of, t["permute"].view_of) == ("add", "view")
    assert t["contiguous"].view_of is None
    assert (t["transpose"].view_of, t["slice_1"].view_of, t["slice_1"].view_offset) == ("contiguous", "transpose", 4)
    assert [(t[n].view_of, t[n].view_offset, t[n].size) for n in ("getitem", "getitem_1")] == [
        ("add", 0, (7 * 32 + 16) * 4), ("add", 16 * 4, (7 * 32 + 16) * 4)]
    assert g.node("split").outputs == ("getitem", "getitem_1")
    assert (t["unsqueeze"].view_of, t["unsqueeze"].kind) == ("add", "output")
    assert t["add_2"].kind == "output" and t["add_2"].size == 4
    assert g.node("view").cost == 0.0 and g.node("linear").cost > 0
    p = memplan.plan(g)
    memplan.verify(g, p)
    off = p.offsets()
    assert off["permute"] == off["add"] and off["slice_1"] == off["contiguous"] + 4


class ForcedInplace(nn.Module):
    def forward(self, x):
        h = x * 2
        v = h[:, :4]        # a view of h that stays live
        h.add_(1)           # mutates h while v views it: must stay in h's memory
        x.mul_(3)           # mutates the user input
        return v.sum() + h.sum() + x.sum()


def test_inplace_with_live_views_writes_the_root():
    g = memplan.from_torch(ForcedInplace(), (torch.randn(4, 8),))
    add_ = next(n for n in g.nodes if n.op.startswith("add_"))
    assert not add_.inplace
    (out,) = add_.outputs
    assert g.tensor(out).view_of == "mul" and g.tensor(out).view_offset == 0
    mul_ = next(n for n in g.nodes if n.op.startswith("mul_"))
    assert g.tensor(mul_.outputs[0]).view_of == "x"
    p = memplan.plan(g)
    memplan.verify(g, p)


def test_resnet_like_and_transformer_plan_and_verify():
    from memplan.importers.torch_compare import build

    for name in ("resnet18", "transformer"):
        module, inputs = build(name, 1)
        g = memplan.from_torch(module, inputs)
        assert sum(t.kind == "weight" for t in g.tensors) > 4
        assert any(t.view_of for t in g.tensors)
        p = memplan.plan(g)
        memplan.verify(g, p)
        biggest = max(t.size for i, t in enumerate(g.tensors) if g.is_root(i) and t.kind != "weight")
        assert biggest <= p.lower_bound_bytes <= p.arena_bytes


def test_conv_cost_exceeds_relu_cost():
    m = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())  # compute-bound conv, memory-bound relu
    g = memplan.from_torch(m, (torch.randn(16, 256, 14, 14),))
    conv = next(n for n in g.nodes if "conv" in n.op)
    relu = next(n for n in g.nodes if "relu" in n.op)
    assert conv.cost > 3 * relu.cost


def test_returning_an_input_keeps_it_to_the_end():
    # (refused until round 54: "output 'x' is the user input 'x' itself ... return a copy"; tests/test_torch_round54.py)
    class Echo(nn.Module):
        def forward(self, x):
            return x, x + 1

    g = memplan.from_torch(Echo(), (torch.randn(3),))
    returned = g.tensor("x.returned")
    assert (returned.kind, returned.view_of, returned.size) == ("output", "x", 12)


def test_export_failure_is_a_graph_error():
    class Bad(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow cannot export
                return x + 1
            return x - 1

    with pytest.raises(GraphError, match="torch.export failed for Bad"):
        memplan.from_torch(Bad(), (torch.randn(3),))


def test_export_failure_leaves_out_torchs_partial_graph_dump(capsys):
    """On a data-dependent guard torch.export prints the whole graph traced so far to sys.stderr (Longformer:
    500 lines) before raising: the one-line GraphError is all that is left; other stderr output passes."""
    class Bad(nn.Module):
        def forward(self, x):
            y = torch.relu(x) * 2
            if y.sum() > 0:
                return y + 1
            return y - 1

    with pytest.raises(GraphError, match="torch.export failed for Bad"):
        memplan.from_torch(Bad(), (torch.randn(3),))
    err = capsys.readouterr().err
    assert "def forward" not in err and "aten.relu" not in err, err[:300]


def test_a_shape_error_while_exporting_logs_no_traceback(capfd):
    """A kernel that fails on fake tensors while export traces (Nystromformer's landmark broadcast): torch's
    fake-tensor mode logged the kernel's whole traceback (30+ lines) at error level before the GraphError."""
    class Bad(nn.Module):
        def forward(self, x):
            return x + x[:2]

    with pytest.raises(GraphError, match="torch.export failed for Bad: Attempting to broadcast"):
        memplan.from_torch(Bad(), (torch.randn(3, 4),))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "failed while attempting to run meta" not in err, err[:300]


def test_to_with_copy_true_is_no_view():
    """``.to(..., copy=True)`` copies even where the layout would let it alias: the importer took it for a
    view of its input (the schema says it may alias), so VideoMAE's copy of its sinusoid table was a view of
    the constant and a user input's copy a view of the input (a plan would let a write to it hit the input)."""
    class Copies(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.randn(2, 3)

        def forward(self, x):
            b = x.to(torch.float32, copy=True)
            b.add_(1)
            return self.c.to(x.device, copy=True) + b, x.to(torch.float32) * 2

    g = memplan.from_torch(Copies(), (torch.randn(2, 3),))
    views = {n.id: g.tensor(n.outputs[0]).view_of for n in g.nodes if n.op.startswith("to.")}
    assert len(views) == 3 and sorted(v for v in views.values() if v) == ["x"], views  # x.to(float32) aliases


def test_an_export_with_stderr_closed_still_imports(monkeypatch, capsys):
    """``2>&-`` leaves ``sys.stderr`` None: passing export's held stderr text on to it failed an import that
    worked ("'NoneType' object has no attribute 'write'"); so did a stderr that refuses writes."""
    import sys
    import warnings

    class Warns(nn.Module):
        def forward(self, x):
            print("export wrote this", file=sys.stderr)   # text held during the export, passed on after
            return torch.relu(x) + 1

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    for err in (None, Full()):
        monkeypatch.setattr(sys, "stderr", err)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = memplan.from_torch(Warns(), (torch.randn(3),))
        assert sys.stderr is err and len(g.nodes) >= 2
    monkeypatch.undo()
    memplan.from_torch(Warns(), (torch.randn(3),))
    assert "export wrote this" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["item", "tolist"])
def test_a_data_dependent_size_is_named_as_such(how):
    """A size computed from a tensor's values (an unbacked symbol) that the program does not bound is refused as
    data-dependent, not with "export with concrete example inputs" (they were). (A bounded one, ``nonzero`` or
    JetMoE's ``split`` by ``.tolist()`` expert counts, is planned at its bound from round 51:
    tests/test_torch_round51.py.)"""
    class DataDependent(nn.Module):
        def forward(self, x):
            if how == "item":
                return torch.zeros(x.sum().long().item()) + 1
            counts = (x * 100).long().tolist()
            return torch.ones(counts[0][0]) * 2

    with pytest.raises(GraphError, match=r"node '\w+' \(.*\): data-dependent size u\d+ .*values") as info:
        memplan.from_torch(DataDependent(), (torch.randn(2, 3),))
    assert "concrete example inputs" not in str(info.value)


def test_compare_prints_json_without_cuda(capsys):
    from memplan.importers.torch_compare import main

    assert main(["mlp", "--batch", "2", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["model"] == "mlp" and row["memplan_arena_bytes"] >= row["memplan_lower_bound_bytes"] > 0
    assert row["torch_activation_bytes"] is None and row["input_bytes"] == 2 * 1024 * 4


class MoreViews(nn.Module):
    def forward(self, x):
        e = x[:, :1].expand(4, 8)          # slice then expand: stride-0 view, a few bytes wide
        s = x.unsqueeze(0).squeeze(0)      # unsqueeze/squeeze round trip
        r = x.select(0, 2)                 # one row
        return (e * 2).sum() + s.sum() + r.sum() + x.reshape(32).sum()


def test_expand_squeeze_select_reshape_are_views():
    g = memplan.from_torch(MoreViews(), (torch.randn(4, 8),))
    t = {x.id: x for x in g.tensors}
    views = {x.id: x for x in g.tensors if x.view_of is not None}
    assert {"expand", "unsqueeze", "squeeze", "select", "reshape"} <= set(views)
    assert t["expand"].view_of == "slice_1" and t["expand"].size == (3 * 8 + 1) * 4
    assert (t["select"].view_of, t["select"].view_offset, t["select"].size) == ("x", 2 * 8 * 4, 8 * 4)
    assert t["reshape"].view_of == "x" and t["reshape"].size == 32 * 4
    for v in views.values():
        parent = t[v.view_of]
        assert v.view_offset + v.size <= parent.size
    memplan.verify(g, memplan.plan(g))


def test_cli_imports_a_pt2_file(tmp_path, capsys):
    from memplan.cli import main

    ep = torch.export.export(Views().eval(), (torch.randn(8, 16),))
    path = tmp_path / "views.pt2"
    torch.export.save(ep, str(path))
    out = tmp_path / "g.json"
    assert main(["import", str(path), "-o", str(out), "-q", "--name", "views"]) == 0
    g = memplan.load_graph(str(out))
    assert g.name == "views" and g.tensor("permute").view_of == "view"
    direct = memplan.from_torch(ep, name="views")
    assert g.nodes == direct.nodes
    # a loaded program's fake tensors lost their storage offsets; the importer lays its views out again
    assert g.to_dict() == direct.to_dict()
    assert any(direct.tensor(t).view_offset > 0 for t in ("slice_1", "getitem", "getitem_1"))
    capsys.readouterr()
    assert main(["import", str(path), "-o", str(out), "--batch", "2"]) == 2
    assert "this program has none (it was exported with fixed sizes)" in capsys.readouterr().err
    (tmp_path / "junk.pt2").write_bytes(b"junk")
    assert main(["import", str(tmp_path / "junk.pt2"), "-o", str(out)]) == 2
    assert "not a torch.export program" in capsys.readouterr().err


class TwoInputs(nn.Module):
    def forward(self, x, *, ids):
        return x.cumsum(1) * 2, ids.sum(-1)


def test_cli_fixes_a_dynamic_pt2_programs_sizes(tmp_path, capsys):
    """A .pt2 saved with dynamic shapes: ``memplan import --batch/--dim`` fix its symbols, as they do an ONNX
    model's, and the graph is the one a fixed-size export gives. (They were refused: "--batch/--dim apply to
    ONNX models; a .pt2 program has fixed sizes", while the import without them said to give example inputs,
    which the CLI cannot: such a file could not be imported at all.)"""
    from memplan.cli import main

    b, t = torch.export.Dim("b", max=64), torch.export.Dim("t", max=64)
    x, ids = torch.randn(2, 5), torch.zeros(2, 3, dtype=torch.long)
    ep = torch.export.export(TwoInputs(), (x,), {"ids": ids}, dynamic_shapes={"x": {0: b, 1: t}, "ids": {0: b}})
    path, out = tmp_path / "dyn.pt2", tmp_path / "g.json"
    torch.export.save(ep, str(path))
    loaded = torch.export.load(str(path))
    sym = {n.name: [str(d) for d in n.meta["val"].shape] for n in loaded.graph.nodes if n.op == "placeholder"}
    batch, seq = sym["x"]
    assert sym["ids"] == [batch, "3"]
    assert main(["import", str(path), "-o", str(out), "-q"]) == 2
    # (the dimensions that are open, each by the --dim that fixes it: round 46)
    assert (f"input 'x': symbolic size {batch} (fix it with --dim {batch}=N or --dim x.0=N or --dim ids.0=N, or "
            "with --batch N" in capsys.readouterr().err)
    assert main(["import", str(path), "-o", str(out), "-q", "--batch", "4"]) == 2   # seq is still open
    assert f"input 'x': symbolic size {seq} (fix it with --dim {seq}=N" in capsys.readouterr().err
    assert not out.exists()
    assert main(["import", str(path), "-o", str(out), "-q", "--batch", "4", "--dim", f"{seq}=7"]) == 0
    fixed = memplan.from_torch(TwoInputs(), (torch.randn(4, 7),), kwargs={"ids": torch.zeros(4, 3, dtype=torch.long)})
    got = memplan.load_graph(str(out))
    assert [(x.id, x.size, x.kind) for x in got.tensors] == [(x.id, x.size, x.kind) for x in fixed.tensors]
    assert got.tensor("x").size == 4 * 7 * 4 and got.tensor("ids").size == 4 * 3 * 8
    for bad, why in ((["--dim", "s999=2"], "--dim s999: the program has no such symbolic dimension"),
                     (["--batch", "2", "--dim", f"{batch}=3"], f"--batch 2 and --dim {batch}=3 disagree")):
        assert main(["import", str(path), "-o", str(tmp_path / "h.json"), "-q", "--dim", f"{seq}=7", *bad]) == 2
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1


class CacheUpdate(nn.Module):
    """A KV-cache-like buffer: read, written in place through an index, read again."""

    def __init__(self):
        super().__init__()
        self.register_buffer("cache", torch.zeros(8, 4))

    def forward(self, x, idx):
        before = self.cache.sum(0)        # must finish before the write (write after read)
        self.cache[idx] = x * 2           # index_put_ into the buffer
        after = self.cache.sum(0)         # must see the write (read after write)
        y = x.clone()
        y[:, 0] = 0                       # a write through a view of an intermediate
        return before + after + y.sum(0)


def test_inplace_writes_are_ordered_by_data():
    g = memplan.from_torch(CacheUpdate(), (torch.randn(2, 4), torch.tensor([1, 3])))
    write = next(n for n in g.nodes if n.op.startswith("index_put_"))
    (w,) = [o for o in write.outputs if g.tensor(o).view_of == "b_cache"]
    first, second = [n for n in g.nodes if n.op.startswith("sum") and {"b_cache", w} & set(n.inputs)]
    assert first.outputs[0] in write.inputs                               # write after read
    assert w in second.inputs                                             # read after write
    fill = next(n for n in g.nodes if n.op.startswith("fill_"))
    (fw,) = [o for o in fill.outputs if g.tensor(o).view_of == "clone" and g.tensor(o).size == 2 * 4 * 4]
    later = [n for n in g.nodes if "clone" in n.inputs and g.node_index[n.id] > g.node_index[fill.id]]
    assert later and all(fw in n.inputs for n in later)
    # every multi-stream schedule of the graph respects these edges: check one
    p = memplan.plan(g, streams="auto")
    memplan.verify(g, p)
    pos = {nid: i for i, (nid, _) in enumerate(p.order)}
    assert pos[first.id] < pos[write.id] < pos[second.id]


def test_decompose_to_core_aten_exposes_hidden_copies():
    from memplan.importers.torch_compare import build

    module, inputs = build("transformer", 1)
    g = memplan.from_torch(module, inputs)
    d = memplan.from_torch(module, inputs, decompose=True)
    ops = {n.op.split(".")[0] for n in d.nodes}
    assert "linear" in {n.op.split(".")[0] for n in g.nodes} and "linear" not in ops
    assert {"addmm", "bmm", "clone"} <= ops  # matmul's hidden contiguous copies are nodes now
    assert len(d.nodes) > len(g.nodes)
    p = memplan.plan(d)
    memplan.verify(d, p)
    def root_bytes(graph):
        return sum(t.size for i, t in enumerate(graph.tensors) if graph.is_root(i) and t.kind != "weight")

    assert root_bytes(d) > root_bytes(g)  # the copies cost memory of their own


def test_pool_indices_and_bn_statistics_are_tensors_nobody_reads():
    """max_pool2d's kernel writes int64 indices, eval batch_norm's saved statistics: each is an extra
    output of its node, read by no node, planned for that node alone. Training batch_norm (whose
    statistics the kernel computes anyway) and models without either op get no extra tensors."""
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True))
    x = torch.randn(2, 3, 12, 12)
    g = memplan.from_torch(m.eval(), (x,))
    pool = next(n for n in g.nodes if n.op == "max_pool2d")
    bn = next(n for n in g.nodes if n.op == "batch_norm")
    assert pool.outputs == (pool.id, f"{pool.id}.indices")
    assert bn.outputs == (bn.id, f"{bn.id}.save_mean", f"{bn.id}.save_invstd")
    idx = g.tensor(f"{pool.id}.indices")
    assert idx.attrs == {"shape": [2, 8, 5, 5], "dtype": "int64"} and idx.size == 2 * 8 * 5 * 5 * 8
    assert idx.kind == "intermediate" and idx.view_of is None
    assert [g.tensor(t).attrs for t in bn.outputs[1:]] == [{"shape": [8], "dtype": "float32"}] * 2
    assert not {t for n in g.nodes for t in n.inputs} & {idx.id, *bn.outputs[1:]}
    for streams in (None, "auto"):
        p = memplan.plan(g, streams=streams)
        memplan.verify(g, p)
        assert p.offsets()[idx.id] is not None
    from memplan.importers.torch import trace_torch

    _ep, g2, trace = trace_torch(m.eval(), (x,))
    assert trace["side"] == {pool.id: {"indices": idx.id},
                             bn.id: {"save_mean": f"{bn.id}.save_mean", "save_invstd": f"{bn.id}.save_invstd"}}
    assert tuple(trace["fake"][idx.id].shape) == (2, 8, 5, 5) and g2.tensors == g.tensors
    train = memplan.from_torch(m.train(), (x,))
    # (training batch_norm writes its running statistics: views of those buffers, no side results)
    assert next(n for n in train.nodes if n.op == "batch_norm").outputs == (
        bn.id, f"{bn.id}.writes.b_1_running_mean", f"{bn.id}.writes.b_1_running_var")
    assert all("." not in t.id for t in memplan.from_torch(Views().eval(), (torch.randn(8, 16),)).tensors)


# --- hostile programs --------------------------------------------------------------------------------

class ToSparse(nn.Module):
    def forward(self, x):
        return (x * 2).to_sparse()


def test_a_sparse_result_is_a_graph_error_naming_its_node():
    """A sparse tensor has no single strided storage to size (torch raised NotImplementedError)."""
    with pytest.raises(GraphError, match=r"node 'to_sparse'.*sparse_coo.*(strided|dense)"):
        memplan.from_torch(ToSparse(), (torch.randn(4, 4),))


@pytest.mark.parametrize("data, words", [(b"junk", "not a torch.export program"),
                                         # (round 54: a zip's first header and no directory, named so)
                                         (b"PK\x03\x04" + bytes(100), "a truncated or damaged .pt2")])
def test_a_pt2_that_is_no_zip_archive_is_one_error_line(tmp_path, capfd, data, words):
    """torch's zip reader prints its own warning to the process's stderr before raising: the CLI's one
    line must be the only one (capfd sees what C++ writes to file descriptor 2)."""
    from memplan.cli import main

    bad = tmp_path / "bad.pt2"
    bad.write_bytes(data)
    assert main(["import", str(bad), "-o", str(tmp_path / "g.json")]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memplan: error: ") and words in err
    assert not (tmp_path / "g.json").exists()


def test_contiguous_into_another_memory_format_is_a_copy():
    """``contiguous(memory_format=channels_last)`` returns its input itself only where the input is contiguous
    in *that* format: the importer asked about the default format, so a contiguous intermediate's
    channels-last copy was a view of it in the graph (a plan could place a write to it over the input)."""
    class Formats(nn.Module):
        def forward(self, x):
            h = torch.relu(x)
            a = h.contiguous(memory_format=torch.channels_last)
            c = torch.relu(x.unsqueeze(2)).contiguous(memory_format=torch.channels_last_3d)
            return a + 1, c * 2

    g = memplan.from_torch(Formats(), (torch.randn(2, 3, 4, 5),))
    views = {n.id: g.tensor(n.outputs[0]).view_of for n in g.nodes if n.op.startswith("contiguous")}
    assert views == {"contiguous": None, "contiguous_1": None}, views


class Vmapped(nn.Module):
    def forward(self, x):
        return torch.vmap(lambda r: r.sin() * 2)(x)


def test_vmap_inside_the_program_is_a_graph_error_naming_its_node(tmp_path):
    """Export keeps ``torch.vmap`` as pre-dispatch ops whose values are functorch batched tensors: in memory
    they have no storage (a raw ``NotImplementedError`` out of the importer), loaded from a .pt2 they read as
    per-example tensors a batch too small. Both are refused naming the node and saying what imports; the
    decomposed program (plain batched ATen ops) imports."""
    x = torch.randn(4, 6)
    ep = torch.export.export(Vmapped(), (x,))
    path = tmp_path / "v.pt2"
    for source in (Vmapped(), ep):
        with pytest.raises(GraphError, match=r"node '_add_batch_dim' \(torch\._functorch\.predispatch\._add_batch_dim\)"
                                             r": torch\.vmap inside the program.*decompose=True"):
            memplan.from_torch(source, (x,))
    g = memplan.from_torch(Vmapped(), (x,), decompose=True)
    assert all(n.op.split(".")[0] in ("sin", "mul") for n in g.nodes)
    save_or_skip(ep, str(path))   # (torch 2.11 cannot save it: its lazy_load_decompositions node)
    with pytest.raises(GraphError, match=r"node '_add_batch_dim' \(torch\._functorch\.predispatch\._add_batch_dim\)"
                                         r": torch\.vmap inside the program.*decompose=True"):
        memplan.from_torch(torch.export.load(str(path)), (x,))


class LeastSquares(nn.Module):
    def forward(self, x):
        return torch.linalg.lstsq(x, x[:, :2]).solution


def test_an_op_fake_tensors_cannot_size_is_named_with_the_reason():
    """torch's DynamicOutputShapeException says only the op's name: the error read "torch.export failed for
    LeastSquares: aten.linalg_lstsq.default", neither what nor why."""
    with pytest.raises(GraphError, match=r"^torch\.export failed for LeastSquares: aten\.linalg_lstsq\.default: its "
                                         r"output shape depends on its input's values .*\(DynamicOutputShapeException\)$"):
        memplan.from_torch(LeastSquares(), (torch.randn(4, 6),))


class StepsUnderNoGrad(nn.Module):
    def __init__(self, view: bool):
        super().__init__()
        self.w, self.view = nn.Parameter(torch.zeros(6)), view

    def forward(self, x):
        with torch.no_grad():
            self.w.add_(1)
            y = self.w if self.view else torch.zeros(6)   # the block returns a view of what it wrote, or not
        return x + self.w + y


class LocalsUnderNoGrad(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(6))

    def forward(self, x):
        with torch.no_grad():
            y = torch.zeros(6)
            y[0] = 2                        # writes only what the block made
            v = self.w[1:3]                 # and returns a view of an operand it does not write
        with torch.autocast("cpu", enabled=False):
            z = x * 2
        return x + y + z + v.sum()


@pytest.mark.parametrize("view", [True, False])
def test_an_in_place_write_inside_a_no_grad_block_is_a_graph_error(view):
    """``with torch.no_grad(): self.w.add_(1)`` in forward exports as ``wrap_with_set_grad_enabled`` over a
    subgraph whose write the importer did not see: with the block returning a view of ``w`` the node was a
    view (the ATen executor ran it once, at compile: every call returned the first call's result); otherwise no
    edge ordered the write against ``w``'s other readers. Refused naming the node; the decomposed program
    (the write inlined) imports; a block writing only its own tensors still imports."""
    x = torch.randn(6)
    with pytest.raises(GraphError, match=r"node '\w+' \(wrap_with_set_grad_enabled\): writes its operand in place "
                                         r"inside a torch\.no_grad\(\)/autocast block \(subgraph node 'add_'\).*"
                                         r"decompose=True"):
        memplan.from_torch(StepsUnderNoGrad(view), (x,))
    g = memplan.from_torch(StepsUnderNoGrad(view), (x,), decompose=True)
    assert not any("wrap_with" in n.op for n in g.nodes)
    g = memplan.from_torch(LocalsUnderNoGrad(), (x,))
    assert sum("wrap_with" in n.op for n in g.nodes) == 2
