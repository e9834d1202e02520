"""The google/minimalloc problems bundled in ``tests/data/minimalloc`` (Apache-2.0, see its README), by name.

Why one place: tests read the "challenging" problems by letter, and several read them from the development machine's
``/work/shared/data``, which a fresh clone on CI lacks, so those tests skipped there and never ran in CI.
"""

from __future__ import annotations

import os

from memplan.problem import BufferProblem

#: tests/data/minimalloc/challenging: the eleven problems A..K, capacity 1048576 each
CHALLENGING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "minimalloc", "challenging")


def challenging_path(name: str) -> str:
    """The CSV file of challenging problem ``name`` (a letter A..K)."""
    return os.path.join(CHALLENGING, f"{name}.1048576.csv")


def challenging(name: str, capacity: int | None = None) -> BufferProblem:
    """Challenging problem ``name`` as a ``BufferProblem`` (with ``capacity``, if given)."""
    from memplan.io.minimalloc import read_csv

    return read_csv(challenging_path(name)).problem(capacity)
