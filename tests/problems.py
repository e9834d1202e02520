"""Random interval offset problems for the solver tests, the same for the same seed."""

from __future__ import annotations

import numpy as np

from memplan.problem import BufferProblem


def random_intervals(seed: int = 5, n: int = 250, *, horizon: int = 400, max_size: int = 64, unit: int = 16,
                     max_length: int = 60) -> BufferProblem:
    """``n`` buffers, each starting at a step in ``[0, horizon)``, live for ``1..max_length - 1`` steps and
    ``unit * (1..max_size - 1)`` bytes."""
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, horizon, n)
    return BufferProblem(sizes=rng.integers(1, max_size, n) * unit, lower=lower,
                         upper=lower + rng.integers(1, max_length, n))
