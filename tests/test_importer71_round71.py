"""Round 71: the importer's retry with small integer buffers as constants (``int_buffers``), and hostile inputs.

Before: a buffer written by code other than its owner's (a parent's ``self.child.pad.add_(1)``, a free function,
``out=``), or held under a second name, was exported as a constant and the write silently dropped from the plan;
a data-dependent failure with nothing to do with such buffers (``if (x > 0).any():`` in a model with a BatchNorm)
was exported twice; ``from_torch`` and ``runtime.aten`` each decided the retry on their own.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.torch import int_buffers  # noqa: E402


class Child(nn.Module):
    """A conv padded by a 0-dim int64 buffer and branching on it (EnCodec's way): exported with it as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pad", torch.tensor(3), persistent=False)
        self.conv = nn.Conv1d(2, 2, 3)

    def forward(self, x):
        x = nn.functional.pad(x, (self.pad, self.pad))
        if x.shape[-1] <= self.pad:
            x = x * 2
        return self.conv(x)


def _bump(child: nn.Module) -> None:
    child.pad.add_(1)


class Parent(nn.Module):
    """Writes its child's buffer after the child read it, in one of several ways (``how``)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.child = Child()
        self.how = how

    def forward(self, x):
        y = self.child(x)
        c = self.child
        if self.how == "method":
            c.pad.add_(1)
        elif self.how == "function":
            _bump(c)
        elif self.how == "out":
            torch.add(c.pad, 1, out=c.pad)
        elif self.how == "view":
            c.pad.view(-1)[0] = 5
        elif self.how == "detach":
            c.pad.detach().fill_(2)
        return y


def _x():
    return torch.randn(1, 2, 8)


@pytest.mark.parametrize("how", ["method", "function", "out", "view", "detach"])
def test_buffer_written_elsewhere_is_refused(how: str) -> None:
    m = Parent(how).eval()
    with pytest.raises(GraphError, match=r"'child\.pad' cannot be exported as a constant.*writes it in place"):
        memplan.from_torch(m, (_x(),))
    assert type(m.child) is Child and list(m.child._buffers) == ["pad"] and int(m.child.pad) == 3


def test_buffer_written_elsewhere_is_refused_by_runtime() -> None:
    """Refused, naming the buffer (before: compiled, and the compiled call left the buffer as it was)."""
    from runtime.aten import compile
    from runtime.aten.errors import AtenExecutorError

    m = Parent("method").eval()
    with pytest.raises(AtenExecutorError, match=r"buffer Parent\.child\.pad"):
        compile(m, (_x(),))
    assert type(m.child) is Child and list(m.child._buffers) == ["pad"]


class Aliased(nn.Module):
    """Holds its child's buffer under a second name and writes it through that name before the child reads it."""

    def __init__(self, as_buffer: bool) -> None:
        super().__init__()
        self.child = Child()
        if as_buffer:
            self.register_buffer("alias", self.child.pad, persistent=False)
        else:
            self.alias = self.child.pad

    def forward(self, x):
        self.alias.add_(1)
        return self.child(x)


@pytest.mark.parametrize("as_buffer", [True, False])
def test_buffer_held_twice_is_no_constant(as_buffer: bool) -> None:
    m = Aliased(as_buffer).eval()
    assert int_buffers.constant_buffers(torch, m) == []
    with pytest.raises(GraphError, match="data-dependent"):
        memplan.from_torch(m, (_x(),))


def test_torch_layers_writes_read() -> None:
    """BatchNorm counts ``num_batches_tracked`` in training: read from torch's own code, it stays a buffer."""
    assert "num_batches_tracked" in int_buffers._source_writes(nn.BatchNorm1d)
    m = nn.Sequential(nn.BatchNorm1d(2), Child()).train()
    assert [p for _o, _n, p in int_buffers.constant_buffers(torch, m)] == ["1.pad"]


class Other(nn.Module):
    """Fails to export on a branch over its input's values; its BatchNorm holds a 0-dim int64 buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        x = self.bn(x)
        if (x > 0).any():
            x = x * 2
        return x


def _exports(monkeypatch) -> list:
    calls: list = []
    real = torch.export.export

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(torch.export, "export", counted)
    return calls


def test_unrelated_failure_exported_once(monkeypatch) -> None:
    calls = _exports(monkeypatch)
    with pytest.raises(GraphError, match=r"torch\.export failed for Other: Could not guard on data-dependent"):
        memplan.from_torch(Other().eval(), (_x(),))
    assert len(calls) == 1


def test_related_failure_still_retried(monkeypatch) -> None:
    calls = _exports(monkeypatch)
    memplan.from_torch(Child().eval(), (_x(),))
    assert len(calls) == 2


def test_one_decision_for_both_paths(monkeypatch) -> None:
    """``runtime.aten`` asks the importer's ``retry_buffers``: the same buffers, and none for ``Other``."""
    from runtime.aten import program

    asked: list = []
    real = int_buffers.retry_buffers

    def spy(torch_, module, failure):
        out = real(torch_, module, failure)
        asked.append([p for _o, _n, p in out])
        return out
    monkeypatch.setattr(int_buffers, "retry_buffers", spy)
    with pytest.raises(Exception, match="data-dependent"):
        program.load_program(Other().eval(), (_x(),))
    program.load_program(Child().eval(), (_x(),))
    with pytest.raises(GraphError, match="data-dependent"):
        memplan.from_torch(Other().eval(), (_x(),))
    assert asked == [[], ["pad"], []]
