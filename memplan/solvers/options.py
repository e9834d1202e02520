"""Options shared by every solver; heuristics ignore the ones they have no use for.

Why budgets are work, not seconds: a solve cut by the wall clock depends on the machine and its load,
so the same input would give different plans run to run. ``time_limit`` is therefore turned into a
deterministic work budget (search nodes, CP-SAT's deterministic time) calibrated to take about that
many seconds here; the wall clock (``wall_limit``) is only a safety stop, and a solve it stops says so
(``info["stopped"] == "wall_clock"``) because that plan may not repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ..problem import Solution


class Objective(str, Enum):
    """MINIMIZE: the smallest arena. FIT: the first packing within ``problem.capacity``."""

    MINIMIZE = "minimize"
    FIT = "fit"


@dataclass(frozen=True)
class SearchParams:
    """The exact search's switches, one per idea (as minimalloc's ``SolverParams``); defaults are the
    tuned setting. Turning one off is for measuring what it buys, never for correctness."""

    #: the static preorders searched side by side: W width, A area, T largest section total, Z size
    preorders: tuple[str, ...] = ("WAT", "TAW", "TWA")
    #: each round first tries the proven bound with a doubling node budget
    bound_first: bool = True
    #: random capacities tried per round of the ladder, besides one below the best
    ladder_rungs: int = 8
    #: randomised restarts with perturbed preorder scores (node budget each, at least 4 per buffer)
    restarts: bool = True
    restart_nodes: int = 3000
    restart_jitter: float = 0.3
    #: a buffer with no unplaced neighbour that failed ends its siblings' tries too
    hatless_pruning: bool = True
    #: once no unplaced buffer spans a time cut, both sides are solved apart
    dynamic_decomposition: bool = True
    #: search nodes per second of ``time_limit`` (the deterministic work budget; calibrated here)
    nodes_per_second: int = 10_000


@dataclass(frozen=True)
class SolveOptions:
    """``time_limit``: seconds of work for the exact solvers, as a deterministic budget (None: heuristics
    only in ``auto``, a default budget when an exact solver is asked for by name). ``wall_limit``:
    the wall-clock safety stop (default: four times the time limit plus ten seconds). ``workers`` and
    ``seed`` make CP-SAT deterministic; ``progress`` receives one-line progress messages."""

    time_limit: float | None = None
    seed: int = 0
    workers: int = 1
    progress: Callable[[str], None] | None = None
    warm_start: Solution | None = None
    objective: Objective = Objective.MINIMIZE
    wall_limit: float | None = None
    search: SearchParams = field(default_factory=SearchParams)

    def wall_seconds(self, work_seconds: float) -> float:
        """The wall-clock safety stop for a solve given ``work_seconds`` of work."""
        return self.wall_limit if self.wall_limit is not None else 4.0 * work_seconds + 10.0
