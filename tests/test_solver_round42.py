"""Round 42 (solvers): ratios past a float's precision, ggml's in-place pairs.

1. ``planfile.ratio_text`` printed the float quotient's digits: past 2**53 they are not the plan's (an arena of
   ``2**63 - 1`` B over a bound of 1 B read ``9223372036854775808.0000``, one byte more than the arena).
2. ``ggml`` took every ``inplace`` pair in place, also one the problem does not let overlap (not in ``compatible``:
   a BufferProblem made in code), and the check called that "a solver bug".
3. ``memplan bench planners`` printed ``arena/lb`` as the rounded float: ``1.0000`` beside HEURISTIC for a plan
   bytes above a bound near 2**50 (``memplan show`` prints ``ratio_text`` since round 41).
4. ``memplan bench planners`` called every SolverError of a minimalloc row ``INVALID`` ("a solver bug: an invalid
   packing"), also a solver's refusal to run (no OR-Tools, a problem past its size limit); only the check's refusal
   (``check.InvalidPacking``) is INVALID now, in graph rows too (where ggml's was ``n/a``).
5. ``io.minimalloc.format_csv`` took a bool among the offsets (numpy makes ``[True, 8]`` the ints ``[1, 8]``) and
   wrote ``True`` as offset 1.
6. A ``BufferProblem``'s ``order`` (an ``HBOrder`` built in code) was read only inside the solvers: a row short, a
   column more in ``visible``, an int ``has_end`` or lists raised numpy's raw IndexError, ValueError or
   UFuncTypeError from every solver. ``problem._check_order`` names the field. So did a ``meta`` that is no dict
   (None: the in-place rejoin's ``meta.get``), and a ``meta["inplace_inexact"]`` of no pairs.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bench_planners import args as _bench_args  # (the bench's own namespace of defaults)
from test_solver_round40 import _huge_graph  # (round 40's three tensors of about 2**48 B, 189 B over)

from memplan.benchmarks import planners
from memplan.cli import main
from memplan.errors import SolverError
from memplan.io import save_graph
from memplan.io.minimalloc import format_csv, parse_csv
from memplan.planfile import ratio_text
from memplan.problem import BufferProblem, HBOrder, Solution
from memplan.solvers import cpsat, greedy, solve
from memplan.solvers.check import InvalidPacking

# ---- 1. a ratio's text is the plan's integers' quotient ---------------------------------------------------------


@pytest.mark.parametrize("arena, bound, decimals, text", [
    (2**63 - 1, 1, 4, "9223372036854775807.0000"),        # (the float quotient is 2**63)
    (2**63 - 1, 3, 3, "3074457345618258602.333"),         # (the float's: 3074457345618258432.000)
    (2**62 + 3, 2, 1, "2305843009213693953.5"),
    (100_005, 100_000, 4, "1.0001"),                      # a tie goes the way the float quotient lies, as before
    (1_081_344, 1_048_576, 4, "1.0312"),                  # (1.03125 exactly: half to even, as before)
])
def test_a_ratio_past_a_floats_precision_is_the_exact_quotient(arena, bound, decimals, text):
    assert ratio_text(arena, bound, decimals) == text


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1), st.sampled_from([0, 3, 4]))
def test_a_ratios_text_is_within_half_a_unit_of_the_exact_quotient(arena, bound, decimals):
    text = ratio_text(arena, bound, decimals)
    places = len(text.split(".")[1]) if "." in text else 0
    assert places >= decimals
    assert abs(Fraction(text) - Fraction(arena, bound)) <= Fraction(1, 2 * 10 ** places)


# ---- 2. ggml's in place only where the pair may overlap --------------------------------------------------------


def test_ggml_takes_in_place_only_pairs_the_problem_lets_overlap():
    sizes, lower, upper = [8, 8], [0, 1], [2, 3]   # (1 is written at 1, while 0 is still read there)
    apart = solve(BufferProblem(sizes=sizes, lower=lower, upper=upper, inplace=((1, 0),)), "ggml")
    assert apart.offsets.tolist() == [0, 8] and apart.arena == 16
    joined = solve(BufferProblem(sizes=sizes, lower=lower, upper=upper, inplace=((1, 0),),
                                 compatible=frozenset({(0, 1)})), "ggml")
    assert joined.offsets.tolist() == [0, 0] and joined.arena == 8


# ---- 3. the bench table's ratio is the plan's integers' ---------------------------------------------------------


def test_bench_never_prints_ratio_1_above_the_bound(tmp_path, capsys):
    path = tmp_path / "huge.json"
    save_graph(_huge_graph(), str(path))
    assert main(["bench", "planners", "--graph", str(path), "--solvers", "greedy,size"]) == 0
    rows = {ln.split()[4]: ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("file ")}
    greedy, size = rows["greedy"], rows["size"]
    assert greedy[9] == "HEURISTIC" and int(greedy[5]) > int(greedy[6])
    assert greedy[7] == ratio_text(int(greedy[5]), int(greedy[6])) and greedy[7].startswith("1.0000") \
        and greedy[7] != "1.0000"
    assert size[9] == "OPTIMAL" and size[7] == "1.0000"   # (a met bound reads 1.0000, as before)


# ---- 4. INVALID is a wrong packing, not a solver that did not run ----------------------------------------------


def _no_ortools():
    raise SolverError("solver 'cpsat' needs OR-Tools, which does not import (ImportError: planted)")


def _overlapping(problem, options=None, **kw):
    return Solution(np.zeros(len(problem), dtype=np.int64), int(problem.sizes.max()), "greedy")


def test_bench_tells_a_refusal_from_an_invalid_packing(tmp_path, minimalloc_dir, monkeypatch, capsys):
    shutil.copy(f"{minimalloc_dir}/examples/input.12.csv", tmp_path / "X.12.csv")
    monkeypatch.setattr(cpsat, "_cp_model", _no_ortools)
    rows = planners.run(_bench_args(minimalloc=str(tmp_path), corpus="minimalloc", solvers="cpsat,size"))
    assert {r["solver"]: r["status"] for r in rows} == {"cpsat": "SolverError", "size": "OPTIMAL"}
    monkeypatch.setattr(greedy, "solve", _overlapping)   # (a planted solver bug)
    with pytest.raises(InvalidPacking, match="overlapped conflicting buffers"):
        solve(_table(tmp_path).problem(), "greedy")
    rows = planners.run(_bench_args(minimalloc=str(tmp_path), corpus="minimalloc", solvers="greedy"))
    assert [(r["status"], r["verified"]) for r in rows] == [("INVALID", False)]
    rows = planners.run(_bench_args(corpus="examples", only="chain", solvers="greedy,ggml", minimalloc=None))
    assert {r["status"] for r in rows if r["solver"] == "greedy"} == {"INVALID"}
    assert capsys.readouterr().out


def _table(directory):
    from memplan.io.minimalloc import read_csv

    return read_csv(str(directory / "X.12.csv"))


# ---- 5. no bool is a CSV offset ------------------------------------------------------------------------------


@pytest.mark.parametrize("offsets", [[True, 8], [0, np.True_], (False, 8)])
def test_format_csv_refuses_a_bool_offset(offsets):
    table = parse_csv("id,lower,upper,size\na,0,2,4\nb,1,3,4\n", "t.csv")
    with pytest.raises(SolverError, match=r"t.csv: offsets must be 2 integers, one per row"):
        format_csv(table, offsets)
    assert format_csv(table, [0, 8]) == "id,lower,upper,size,offset\na,0,2,4,0\nb,1,3,4,8\n"


# ---- 6. an HBOrder the solvers cannot read is refused by name ---------------------------------------------------

_N = 3
_ORDER = dict(first=np.zeros((_N, 2), dtype=np.int64), visible=np.ones((_N, 2), dtype=np.int64),
              has_start=np.zeros(_N, dtype=bool), has_end=np.zeros(_N, dtype=bool))


@pytest.mark.parametrize("change, field", [
    (dict(first=np.zeros((2, 2), dtype=np.int64)), r"order\.first must be an integer array of shape \(3, streams\)"),
    (dict(visible=np.ones((_N, 3), dtype=np.int64)), r"order\.visible .*\(2 in first\), not an array of shape \(3, 3\)"),
    (dict(first=np.zeros(_N, dtype=np.int64)), r"order\.first .*not an array of shape \(3,\)"),
    (dict(first=[[0, 0]] * _N), r"order\.first .*not list"),
    (dict(visible=np.full((_N, 2), np.nan)), r"order\.visible .*\(float64\)"),
    (dict(has_start=np.zeros(2, dtype=bool)), r"order\.has_start must be a bool array of 3 entries"),
    (dict(has_end=np.zeros(_N, dtype=np.int64)), r"order\.has_end must be a bool array .*\(int64\)"),
    (dict(last_time=np.zeros(1, dtype=np.int64)), r"order\.last_time must be None or an integer array of 3"),
    (dict(stream_time=(np.arange(3),)), r"order\.stream_time must be None or a tuple of 2 integer arrays"),
])
def test_a_malformed_hb_order_is_refused_naming_its_field(change, field):
    with pytest.raises(SolverError, match=field):
        BufferProblem(sizes=[4, 4, 4], lower=[0, 0, 1], upper=[2, 2, 3], order=HBOrder(**{**_ORDER, **change}))


def test_a_well_formed_hb_order_plans_as_before():
    with pytest.raises(SolverError, match="order must be a memplan HBOrder or None, not str 'x'"):
        BufferProblem(sizes=[4], lower=[0], upper=[1], order="x")
    order = HBOrder(**_ORDER, last_time=np.array([1, 1, 2]), stream_time=(np.arange(3), np.arange(2)))
    p = BufferProblem(sizes=[4, 4, 4], lower=[0, 0, 1], upper=[2, 2, 3], order=order)
    assert solve(p, "auto").arena == 12


@pytest.mark.parametrize("meta, message", [
    (None, r"meta must be a dict, not NoneType None"),
    ([], r"meta must be a dict, not list \[\]"),
    ({"inplace_inexact": 5}, r"meta\['inplace_inexact'\] must be a set of \(output, input\) pairs"),
])
def test_a_problems_meta_the_solvers_cannot_read_is_refused(meta, message):
    with pytest.raises(SolverError, match=message):
        BufferProblem(sizes=[8, 8], lower=[0, 1], upper=[2, 3], compatible=frozenset({(0, 1)}), inplace=((1, 0),),
                      meta=meta)
    p = BufferProblem(sizes=[8, 8], lower=[0, 1], upper=[2, 3], compatible=frozenset({(0, 1)}), inplace=((1, 0),),
                      meta={"inplace_inexact": frozenset({(1, 0)}), "source": "mine"})
    assert solve(p, "auto").arena == 16   # (round 51: an inexact pair is kept apart, a conflict)
