"""Round 71: ``from_torch`` leaves the user's module as it was (non-strict export runs forward on the real tensors a
module holds outside its registered weights; their in-place writes are undone)."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import state_kept as kept_mod  # noqa: E402
from memplan.importers.torch import trace_torch  # noqa: E402


class _Child(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pad", torch.full((4,), 3.0))


class ListAlias(nn.Module):
    """A buffer reached through a plain list: export swaps ``child.pad`` for a fake, not the list's element."""

    def __init__(self):
        super().__init__()
        self.child = _Child()
        self.hold = [self.child.pad]

    def forward(self, x):
        self.hold[0].add_(1)
        return x + self.child.pad


class ListPlain(nn.Module):
    def __init__(self):
        super().__init__()
        self.hold = [torch.zeros(4)]

    def forward(self, x):
        self.hold[0].add_(1)
        return x + self.hold[0]


class DictInChild(nn.Module):
    def __init__(self):
        super().__init__()
        self.child = nn.Module()
        self.child.d = {"k": [torch.arange(4.0)]}

    def forward(self, x):
        self.child.d["k"][0].index_put_((torch.tensor([1]),), torch.tensor(7.0))
        return x + self.child.d["k"][0]


class PlainAttr(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = torch.zeros(4)

    def forward(self, x):
        self.t.copy_(x)
        return x * 2


class HeldModule(nn.Module):
    """A module in a plain list (not a submodule): export leaves its buffer real."""

    def __init__(self):
        super().__init__()
        self.helpers = [_Child()]

    def forward(self, x):
        self.helpers[0].pad.mul_(2)
        return x + 1


class BufferWrite(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.zeros(4))
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        self.b.add_(1)
        return self.lin(x) + self.b


class WritesThenFails(ListPlain):
    def forward(self, x):
        self.hold[0].add_(1)
        raise RuntimeError("boom in forward")


def _state(tensors):
    return [(t.clone(), t._version) for t in tensors]


def _same(tensors, before):
    for t, (b, v) in zip(tensors, before):
        assert torch.equal(t, b), (t, b)
        assert t._version == v, (t._version, v)


@pytest.mark.parametrize("make, reach", [
    (ListAlias, lambda m: [m.child.pad, m.hold[0]]),
    (ListPlain, lambda m: [m.hold[0]]),
    (DictInChild, lambda m: [m.child.d["k"][0]]),
    (PlainAttr, lambda m: [m.t]),
    (HeldModule, lambda m: [m.helpers[0].pad]),
    (BufferWrite, lambda m: [m.b, m.lin.weight, m.lin.bias]),
])
def test_from_torch_leaves_module_tensors_as_they_were(make, reach):
    m = make()
    tensors = reach(m)
    before = _state(tensors)
    graph = memplan.from_torch(m, (torch.ones(4),))
    assert graph.nodes
    _same(tensors, before)


def test_buffer_alias_in_list_was_written_before_the_fix():
    # (the reviewer's case: pad was 3, from_torch left it at 4 and its version moved)
    m = ListAlias()
    memplan.from_torch(m, (torch.ones(4),))
    memplan.from_torch(m, (torch.ones(4),))
    assert m.child.pad.tolist() == [3.0] * 4
    assert m.hold[0] is m.child.pad and m.child.pad._version == 0


def test_writes_undone_when_export_fails():
    m = WritesThenFails()
    with pytest.raises(GraphError, match="torch.export failed for WritesThenFails: boom in forward"):
        memplan.from_torch(m, (torch.ones(4),))
    assert m.hold[0].tolist() == [0.0] * 4 and m.hold[0]._version == 0


def test_trace_torch_leaves_module_as_it_was():
    m = ListAlias()
    trace_torch(m, (torch.ones(4),))
    assert m.child.pad.tolist() == [3.0] * 4 and m.child.pad._version == 0


def test_written_tensor_over_the_copy_budget_is_named(monkeypatch):
    monkeypatch.setattr(kept_mod, "_BUDGET", 0)
    m = ListAlias()
    with pytest.raises(GraphError, match=r"ListAlias's forward wrote tensor 'child\.pad' in place during the export: .* may now hold"):
        memplan.from_torch(m, (torch.ones(4),))


def test_unwritten_tensors_over_the_budget_import(monkeypatch):
    # (a tensor too large to copy that forward only reads: nothing to put back, the import goes on)
    monkeypatch.setattr(kept_mod, "_BUDGET", 0)
    m = PlainAttr()
    m.forward = lambda x: x * 2 + m.t
    assert memplan.from_torch(m, (torch.ones(4),)).nodes
    assert m.t.tolist() == [0.0] * 4 and m.t._version == 0


def test_walk_is_bounded_and_names_paths():
    m = DictInChild()
    m.loop = [m]   # (a cycle through a plain list: walked once)
    m.deep = [[[[[[[[torch.ones(1)]]]]]]]]
    registered, held = kept_mod.reachable_tensors(torch, m)
    assert [p for p, _ in held] == ["child.d['k'][0]"]
    assert registered == []


class _Cache:
    """A plain object (not a container the walk opens) holding a registered buffer."""

    def __init__(self, t):
        self.t = t


class ObjectAlias(ListAlias):
    def __init__(self):
        super().__init__()
        self.hold = _Cache(self.child.pad)

    def forward(self, x):
        self.hold.t.add_(1)
        return x + self.child.pad


class ClosureAlias(ListAlias):
    def __init__(self):
        super().__init__()
        self.hold = []
        self.bump = (lambda t: lambda: t.add_(1))(self.child.pad)   # (a reference inside code: not walked)

    def forward(self, x):
        self.bump()
        return x + self.child.pad


def test_buffer_alias_in_a_plain_object_is_put_back():
    m = ObjectAlias()
    memplan.from_torch(m, (torch.ones(4),))
    assert m.child.pad.tolist() == [3.0] * 4 and m.child.pad._version == 0


def test_registered_buffer_written_through_an_unwalked_reference_is_named():
    m = ClosureAlias()
    with pytest.raises(GraphError, match=r"wrote tensor 'child\.pad' in place during the export: a registered "
                                         r"parameter or buffer, written through a reference"):
        memplan.from_torch(m, (torch.ones(4),))
