"""torch importer, round 39: weights' sizes, ``--dim`` names, and the cache directory torch needs to load a program.

- A weight that is a slice of a larger storage (``register_buffer("b", torch.arange(5.)[1])``) was planned at its
  storage's 20 bytes in memory and at its 4 bytes when the same program was loaded from a ``.pt2``: it is its own
  elements' bytes in both (weights sharing a storage keep it: the later ones are views of the first in it).
- ``--dim`` / ``sized_inputs`` could not name a symbolic int input (``forward(x, n: int)``) by its name.
- A ``Dim`` named like one of torch's symbols (``Dim("s17")``) lost to torch's symbol of that name, another
  dimension: the user's names come first.
- "a saved program keeps no Dim names" was said of programs in memory exported without named ``Dim``s.
- ``memplan import x.pt2`` blamed the file where torch could not create its cache directory.
- (hunt) A node using a number read from a tensor's values (``torch.full((2,), x.sum().item())``) read nothing of
  it: ``item`` is no graph node. It reads that tensor now; one written in place before the use is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.export import Dim  # noqa: E402
from torch_saved import rows as _rows  # noqa: E402
from torch_saved import saved_and_loaded as _saved_and_loaded  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import sized_inputs  # noqa: E402
from runtime.aten import compile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SliceWeights(nn.Module):
    """A buffer and a parameter, each a slice of a storage larger than itself, and a view of one."""

    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.arange(5.0)[1])
        self.p = nn.Parameter(torch.arange(10.0)[2:4])

    def forward(self, x):
        return x * self.b + self.p.sum() + self.b.view(1)


def test_a_weight_slice_is_its_own_bytes_in_memory_as_loaded():
    ep = torch.export.export(SliceWeights(), (torch.ones(3),))
    here, loaded = memplan.from_torch(ep), memplan.from_torch(_saved_and_loaded(ep))
    sizes = {t.id: t.size for t in here.tensors if t.kind == "weight"}
    assert sizes == {"p_p": 8, "b_b": 4}
    assert _rows(here) == _rows(loaded)
    view = next(t for t in here.tensors if t.id == "view")
    assert (view.view_of, view.view_offset, view.size) == ("b_b", 0, 4)


def test_a_relaid_weight_runs_as_eager():
    m = SliceWeights()
    c = compile(m, (torch.ones(3),), poison=True)
    for _ in range(2):
        x = torch.randn(3)
        assert torch.equal(c(x), m(x))


class SharedWeights(nn.Module):
    """Two buffers on one storage: the second is a view of the first, at its place in the storage."""

    def __init__(self):
        super().__init__()
        big = torch.arange(5.0)
        self.register_buffer("a", big[0:2])
        self.register_buffer("c", big[3])

    def forward(self, x):
        return x * self.c + self.a.sum()


def test_weights_sharing_a_storage_keep_its_layout():
    g = memplan.from_torch(SharedWeights(), (torch.ones(3),))
    t = {x.id: x for x in g.tensors}
    assert (t["b_a"].size, t["b_a"].view_of) == (20, None)
    assert (t["b_c"].view_of, t["b_c"].view_offset, t["b_c"].size) == ("b_a", 12, 4)


class IntArg(nn.Module):
    def forward(self, x, n: int):
        return x.reshape(n, -1) * 2


def _int_program():
    return torch.export.export(IntArg(), (torch.ones(4, 6), 2),
                               dynamic_shapes=({0: Dim("batch")}, Dim.DYNAMIC))


@pytest.mark.parametrize("loaded", [False, True])
def test_dim_names_a_symbolic_int_input(loaded):
    ep = _int_program()
    ep = _saved_and_loaded(ep) if loaded else ep
    args, kwargs = sized_inputs(ep, None, {"x.0": 6, "n": 3})
    assert tuple(args[0].shape) == (6, 6) and args[1] == 3
    g = memplan.from_torch(ep, args, kwargs=kwargs or None)
    assert next(t for t in g.tensors if t.kind == "output").size == 6 * 6 * 4


def test_an_unnamed_symbolic_int_input_is_named_in_the_error():
    with pytest.raises(GraphError, match=r"input 'n': symbolic int .*--dim n=N"):
        sized_inputs(_saved_and_loaded(_int_program()), None, {"x.0": 4})


class Two(nn.Module):
    def forward(self, x, y):
        return x.sum() + y.sum()


def _symbol_of_y() -> str:
    ep = torch.export.export(Two(), (torch.ones(4), torch.ones(5)), dynamic_shapes=({0: Dim("a")}, {0: Dim("b")}))
    return str(next(n for n in ep.graph.nodes if n.name == "y").meta["val"].shape[0])


def test_a_dim_named_like_a_torch_symbol_is_the_users():
    sym = _symbol_of_y()   # torch's symbol for y's dimension (a hash of where it was made: the same each export)
    ep = torch.export.export(Two(), (torch.ones(4), torch.ones(5)),
                             dynamic_shapes=({0: Dim(sym)}, {0: Dim("b")}))
    assert str(next(n for n in ep.graph.nodes if n.name == "y").meta["val"].shape[0]) == sym
    args, _ = sized_inputs(ep, None, {sym: 7, "b": 3})
    assert (tuple(args[0].shape), tuple(args[1].shape)) == ((7,), (3,))
    with pytest.raises(GraphError, match=r"input 'y': .*--dim b=N"):   # (torch's own name for y's: the Dim's)
        sized_inputs(ep, None, {sym: 7})


def test_a_symbol_only_a_dim_of_another_spells_has_no_name():
    from memplan.importers.torch.dims import _name_of

    assert _name_of("s17", {"s17": "s77", "x.0": "s77", "s77": "s77"}) is None
    assert _name_of("s17", {"s17": "s77", "y.0": "s17"}) == "y.0"
    assert _name_of("s17", {"b": "s17", "y.0": "s17", "s17": "s17"}) == "b"


def test_the_saved_program_hint_only_for_a_saved_program():
    ep = torch.export.export(Two(), (torch.ones(4), torch.ones(5)),
                             dynamic_shapes=({0: Dim.AUTO}, {0: Dim.DYNAMIC}))
    with pytest.raises(GraphError, match="no such symbolic dimension") as here:
        sized_inputs(ep, None, {"batch": 3})
    assert "saved program" not in str(here.value)
    with pytest.raises(GraphError, match="a saved program keeps no torch.export.Dim names"):
        sized_inputs(_saved_and_loaded(ep), None, {"batch": 3})


class Double(nn.Module):
    def forward(self, x):
        return x * 2


@pytest.mark.parametrize("default", [False, True])
def test_a_cache_directory_torch_cannot_create_is_named(tmp_path, default):
    program = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(Double(), (torch.ones(4),)), str(program))
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["PYTHONPATH"] = ROOT
    if default:   # torch's own place: torchinductor_USER in the temporary directory, here a file
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        import getpass
        (tmp / f"torchinductor_{getpass.getuser()}").write_text("")
        env["TMPDIR"] = str(tmp)
    else:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(blocker / "sub")
    r = subprocess.run([sys.executable, "-m", "memplan", "import", str(program), "-o", str(tmp_path / "g.json")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: torch cannot create"), r.stderr
    assert "not a torch.export program" not in r.stderr and "TORCHINDUCTOR_CACHE_DIR" in r.stderr
    assert ("default cache directory" in r.stderr) == default
    assert not (tmp_path / "g.json").exists()


class ItemFull(nn.Module):
    """A number read from a tensor's values (``item``) sizes nothing but is used by a later node."""

    def forward(self, x):
        return torch.full((2,), x.sum().item()) * 2, x * x.amax().item()


@pytest.mark.parametrize("decompose", [False, True])
def test_a_node_using_an_item_reads_its_tensor(decompose):
    ep = torch.export.export(ItemFull(), (torch.randn(3),))
    for g in (memplan.from_torch(ep, decompose=decompose), memplan.from_torch(_saved_and_loaded(ep))):
        reads = {n.op.split(".")[0]: n.inputs for n in g.nodes}
        assert "sum_1" in reads["full"], reads
        mul = next(n for n in g.nodes if n.op.startswith("mul") and "x" in n.inputs)
        assert "amax" in mul.inputs, reads
        memplan.verify(g, memplan.plan(g, streams=3))


class ItemThenWrite(nn.Module):
    def forward(self, x):
        v = x[0].item()
        x.add_(1)
        return torch.full((2,), v) + x[1]


def test_an_item_of_a_tensor_written_before_its_use_is_refused():
    with pytest.raises(GraphError, match=r"node 'full' .*number read from the values of 'select'.*written in place"):
        memplan.from_torch(ItemThenWrite(), (torch.randn(3),))
