"""Options shared by every solver; heuristics ignore the ones they have no use for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..problem import Solution


@dataclass(frozen=True)
class SolveOptions:
    """``time_limit`` in seconds (None: heuristics only in ``auto``); ``workers`` and ``seed`` make
    CP-SAT deterministic; ``progress`` receives one-line progress messages for long solves."""

    time_limit: float | None = None
    seed: int = 0
    workers: int = 1
    progress: Callable[[str], None] | None = None
    warm_start: Solution | None = None
