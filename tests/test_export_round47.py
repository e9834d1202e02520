"""Round 47: the torch.export importer refuses a program that runs no tensor op (it planned nothing silently)."""
import pytest

from tests.needs import need

torch = need("torch")

from memplan.errors import GraphError, MemplanError  # noqa: E402
from memplan.importers import from_torch  # noqa: E402


class _Constant(torch.nn.Module):
    def forward(self, x):
        return 3


class _NoneOut(torch.nn.Module):
    def forward(self, x):
        return None


class _DeadWork(torch.nn.Module):
    def forward(self, x):
        x * 2
        return None


@pytest.mark.parametrize("cls", [_Constant, _NoneOut])
def test_forward_with_no_tensor_op_is_refused(cls):
    with pytest.raises(GraphError, match="runs no tensor op") as info:
        from_torch(cls(), (torch.randn(3),))
    assert isinstance(info.value, MemplanError)
    assert cls.__name__ in str(info.value)


def test_dead_work_still_planned():
    """A forward that computes a tensor nobody returns still runs that op eagerly: its bytes are planned."""
    g = from_torch(_DeadWork(), (torch.randn(3),))
    assert [n.op for n in g.nodes] == ["mul.Tensor"]
    assert {t.id: t.size for t in g.tensors}["mul"] == 12


def test_cli_import_of_a_program_with_no_tensor_op(tmp_path, capsys):
    """``memplan import n.pt2`` of such a program: one line naming why, exit 2, no file written."""
    from memplan.cli import main

    path, out = tmp_path / "n.pt2", tmp_path / "g.json"
    torch.export.save(torch.export.export(_Constant(), (torch.randn(3),)), str(path))
    assert main(["import", str(path), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runs no tensor op" in err, err
    assert not out.exists()
