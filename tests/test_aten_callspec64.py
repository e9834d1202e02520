"""A compiled call does not read ``ExportedProgram.call_spec``: torch builds a new ``NamedTuple`` class on every
access of that property, which every call paid (about a fifth of a small MLP's Python calls per step)."""
import pytest

torch = pytest.importorskip("torch")
from torch.export import ExportedProgram  # noqa: E402

from runtime.aten import compile  # noqa: E402


def test_calls_do_not_rebuild_the_call_spec(monkeypatch):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        step = compile(m, (x,), streams=1)
        want = m(x)
        step(x)
        reads = []
        original = ExportedProgram.call_spec

        def counted(self):
            reads.append(1)
            return original.fget(self)

        monkeypatch.setattr(ExportedProgram, "call_spec", property(counted))
        for _ in range(3):
            got = step(x)
    assert torch.equal(got, want)
    assert reads == [], f"{len(reads)} call_spec reads in 3 calls"
