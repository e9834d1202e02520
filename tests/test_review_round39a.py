"""Review of round 39's merged changes (review39a).

- cpsat's wall-clock safety stop is ``_run``'s own since solver39, and a solve it fired on was marked
  ``stopped: wall_clock`` whatever its status: a component CP-SAT had proven OPTIMAL (its optimum found and closed as
  the deadline passed: a progress consumer slow on that last solution, a loaded machine) was marked cut, a plan
  "that may not repeat", and ``_whole_over`` then took no verdict from it. A proven answer is the one an unstopped
  run gives, so it is not marked (as before solver39).
- hostile39 made cpsat without OR-Tools a SolverError, catching ImportError alone: an installed OR-Tools that fails
  with its own exception as it imports (protobuf's VersionError where the protobuf runtime is older than OR-Tools'
  generated code) was still a raw traceback from ``plan --solver cpsat`` and ended ``auto``'s time-limited solve.
- Checked clean, kept as guards (both fail at c82e7c3): a number from ``item()`` through symbolic arithmetic into
  three nodes, and the graph views of a weight planned at its own bytes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from memplan.problem import BufferProblem, Status
from memplan.solvers import SolveOptions, cpsat, get_solver, solve

pytest.importorskip("ortools")

#: eight buffers over time; greedy packs them in 144 B, size in 152 B; CP-SAT finds and proves 112 B at once
FIRST_FIT_MISSES = BufferProblem(np.array([48, 40, 8, 8, 56, 56, 56, 40]), np.array([2, 3, 4, 5, 0, 0, 4, 5]),
                                 np.array([3, 5, 8, 7, 2, 4, 6, 7]), alignment=8)


def test_a_finished_solve_is_not_marked_cut_by_the_clock():
    reason = cpsat.stop_reason
    assert reason(finished=True, interrupted=False, deterministic_time=0.01, budget=0.15, wall_fired=True) is None
    assert reason(finished=False, interrupted=False, deterministic_time=0.2, budget=0.15, wall_fired=True) == \
        "wall_clock"


def test_an_optimum_proven_as_the_deadline_passes_is_not_marked_stopped():
    """The progress consumer takes 0.8 s over the optimal solution's message, past the 0.3 s wall limit; CP-SAT has
    proven that solution optimal by then (its bound is the problem's), and the plan is the unstopped one."""
    p = FIRST_FIT_MISSES
    pair = (solve(p, "greedy"), solve(p, "size"))
    assert min(s.arena for s in pair) > p.lower_bound == 112
    said: list[str] = []

    def slow(msg: str) -> None:
        said.append(msg)
        if "best arena 112," in msg:
            time.sleep(0.8)

    sol = get_solver("cpsat")(p, SolveOptions(time_limit=1.0, wall_limit=0.3, progress=slow), heuristics=pair)
    unstopped = get_solver("cpsat")(p, SolveOptions(time_limit=1.0), heuristics=pair)
    assert sol.status == Status.OPTIMAL and sol.arena == 112, sol.info
    assert "stopped" not in sol.info, sol.info
    assert not any("wall-clock safety stop" in m for m in said), said
    assert sol.offsets.tolist() == unstopped.offsets.tolist()


@pytest.fixture
def broken_ortools(monkeypatch, tmp_path):
    """OR-Tools that is installed but fails as it imports, as with a protobuf runtime older than its generated code
    (``google.protobuf.runtime_version.VersionError``, an Exception and no ImportError: "Detected incompatible
    Protobuf Gencode/Runtime versions when loading ortools/sat/cp_model.proto")."""
    import sys

    pkg = tmp_path / "ortools" / "sat" / "python"
    pkg.mkdir(parents=True)
    for d in (tmp_path / "ortools", tmp_path / "ortools" / "sat", pkg):
        (d / "__init__.py").write_text("")
    (pkg / "cp_model.py").write_text(
        "class VersionError(Exception):\n    pass\n\n"
        "raise VersionError('Detected incompatible Protobuf Gencode/Runtime versions when loading "
        "ortools/sat/cp_model.proto: gencode 6.31.1 runtime 5.29.3')\n")
    for name in [m for m in sys.modules if m == "ortools" or m.startswith("ortools.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_cpsat_with_an_ortools_that_fails_to_import_is_a_solver_error(broken_ortools):
    """hostile39 caught ImportError alone: a broken install's own error (protobuf's VersionError) was a raw
    traceback from ``plan --solver cpsat``, and ``auto`` with a time limit died of it where ``search`` could plan."""
    import memplan
    from memplan.examples import diamond

    with pytest.raises(memplan.SolverError, match=r"needs OR-Tools, which does not import \(VersionError: Detected"):
        memplan.plan(diamond(), solver="cpsat")
    with pytest.raises(memplan.SolverError, match="needs OR-Tools"):
        solve(FIRST_FIT_MISSES, "cpsat", SolveOptions(time_limit=0.3))


def test_the_cli_with_a_broken_ortools_is_one_line(broken_ortools, tmp_path, capsys):
    import memplan
    from memplan.cli import main
    from memplan.examples import diamond

    memplan.save_graph(diamond(), str(tmp_path / "g.json"))
    assert main(["plan", str(tmp_path / "g.json"), "-o", str(tmp_path / "p.json"), "--solver", "cpsat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs OR-Tools" in err and "VersionError" in err, err
    assert not (tmp_path / "p.json").exists()


# --- export39, checked clean: guards for cases its tests did not take ---------------------------------------------


def test_a_number_through_sym_ops_is_read_by_every_node_using_it():
    """``v = x.sum().item()`` and ``w = v * 2 + 1`` (FX nodes of no tensor) used by ``full``, ``mul`` and ``add``:
    each reads ``sum_1``, the tensor the number came from."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import memplan

    class M(nn.Module):
        def forward(self, x):
            v = x.sum().item()
            w = v * 2 + 1
            return torch.full((2,), w), x * w, x + v

    g = memplan.from_torch(torch.export.export(M(), (torch.randn(3),)))
    users = [n for n in g.nodes if n.op.split(".")[0] in ("full", "mul", "add")]
    assert len(users) == 3 and all("sum_1" in n.inputs for n in users), [(n.id, n.inputs) for n in users]
    memplan.verify(g, memplan.plan(g, streams=3))


def test_views_of_a_weight_slice_stay_inside_its_own_bytes():
    """``b`` is 6 floats 8 bytes into a 48-byte storage: planned at its 24 bytes, every graph view of it (a
    transpose, unfold, an expand of a slice) inside them, the same in memory and loaded from a ``.pt2``."""
    torch = pytest.importorskip("torch")
    import io

    from torch import nn

    import memplan

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.arange(12.0)[2:8].reshape(2, 3))

        def forward(self, x):
            return x + self.b.t()[1:].sum(), self.b.unfold(1, 2, 1).sum(), self.b[:, 1:].expand(4, 2, 2).sum()

    ep = torch.export.export(M(), (torch.ones(3, 2),))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    here, loaded = memplan.from_torch(ep), memplan.from_torch(torch.export.load(buf))
    rows = [[(t.id, t.size, t.view_of, t.view_offset) for t in g.tensors] for g in (here, loaded)]
    assert rows[0] == rows[1]
    t = {x.id: x for x in here.tensors}
    assert t["b_b"].size == 24
    for x in here.tensors:
        if x.view_of is not None:
            assert x.view_offset + x.size <= t[x.view_of].size, (x.id, x.view_of, x.view_offset, x.size)
    memplan.verify(here, memplan.plan(here, streams=2))
