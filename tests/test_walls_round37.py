"""No circle among memplan's modules through imports inside functions either.

``test_walls.import_circles`` reads imports outside functions only; farm-studio draws a function's import as a tie
too, and it showed one circle that way: ``solvers.start`` ran the default solve (``auto``) for a named exact solver,
and ``auto`` runs the exact solvers (start -> auto -> search -> start). The default's run moved above them
(``solvers.named``). An import of a module's own package (``from . import get_solver``: the package's
``__init__`` re-exports its modules) is no tie here, as farm-studio does not draw one."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_walls import PACKAGES, ROOT, _within, circles_of, import_graph


def lazy_circles(root: Path, package: str = "memplan") -> list[list[str]]:
    """Circles among ``package``'s modules, reading every import (in functions too) but those of an enclosing
    package. Each circle once, starting at its least name."""
    graph = import_graph(root)

    def tie(module: str, target: str) -> bool:
        return (target != module and target in graph and _within(target, (package,))
                and not module.startswith(target + "."))

    return circles_of({m: sorted({i.target for _, i in imps if tie(m, i.target)}) for m, imps in graph.items()
                       if _within(m, (package,))})


def test_no_circle_through_imports_in_functions(tmp_path):
    assert lazy_circles(ROOT) == []
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "memplan/solvers/start.py"   # the circle as it was: the default's run asked for from below
    path.write_text(path.read_text() + "\n\ndef default_plan(problem, options):\n    from .auto import solve\n"
                    "    return solve(problem, options)\n")
    assert ["memplan.solvers.auto", "memplan.solvers.search", "memplan.solvers.start"] in lazy_circles(tmp_path)
