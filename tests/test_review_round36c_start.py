"""Round 36c review: a caller's ``default_start`` / ``warm_start`` whose ``info`` is no dict.

The start's ``info`` is read for its run marks (``interrupted``, ``stopped``), so a ``default_start`` with
``info=None`` (or a list, a string), and a ``warm_start`` so that beat the default's plan, failed deep in the exact
solver with a raw AttributeError. Now None is read as no info and anything else that is no mapping is refused
naming the option."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from memplan.errors import SolverError
from memplan.problem import BufferProblem, Solution
from memplan.solvers import SolveOptions, solve

start_module = importlib.import_module("memplan.solvers.named")
SOLVERS = ["search", pytest.param("cpsat", marks=pytest.mark.skipif(
    importlib.util.find_spec("ortools") is None, reason="needs ortools"))]


def _two_buffers() -> BufferProblem:
    return BufferProblem(sizes=np.array([16, 16]), lower=np.array([0, 0]), upper=np.array([1, 1]), alignment=16)


def _start(info, offsets=(0, 16)) -> Solution:
    return Solution(np.array(offsets), 32, "mine", info=info)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("option", ["default_start", "warm_start"])
def test_a_start_without_info_is_taken(solver, option):
    made = solve(_two_buffers(), solver, SolveOptions(time_limit=0.1, **{option: _start(None)}))
    assert made.arena == 32


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("option", ["default_start", "warm_start"])
@pytest.mark.parametrize("info", [[], "x", 3])
def test_a_start_whose_info_is_no_dict_is_refused_naming_the_option(solver, option, info):
    with pytest.raises(SolverError, match=f"{option}'s info must be a dict"):
        solve(_two_buffers(), solver, SolveOptions(time_limit=0.1, **{option: _start(info)}))


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_warm_start_without_info_that_beats_the_default_is_taken(monkeypatch, solver):
    # the default's plan made worse (a gap between the two buffers), so the caller's start is the one kept
    monkeypatch.setattr(start_module, "default_plan", lambda problem, options: Solution(np.array([0, 32]), 48, "auto"))
    made = solve(_two_buffers(), solver, SolveOptions(time_limit=0.1, warm_start=_start(None, (16, 0))))
    assert made.arena == 32
