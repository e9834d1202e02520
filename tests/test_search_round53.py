"""Round 53: the search's work budget charges what the search does (estimated CPU, counted where it scans), not a
fixed ~100 us per node: minimalloc's A at ``time_limit=0.5`` ran 1.0-1.2 CPU s, tiled problems up to 6x their limit."""
import os
import time

import numpy as np

import memplan
from memplan.benchmarks.scale import random_dag
from memplan.io.minimalloc import read_csv
from memplan.problem import BufferProblem
from memplan.solvers import SolveOptions, search_tree, solve


def _random_intervals(n: int) -> BufferProblem:
    """``n`` short-lived buffers whose heuristic arena stays above the bound (the search builds its tree)."""
    rng = np.random.default_rng(0)
    lower = rng.integers(0, n, n)
    return BufferProblem(rng.integers(1, 1 << 12, n) * 256, lower, lower + rng.integers(1, 50, n), alignment=256)


def test_a_budget_below_one_try_setup_searches_no_node():
    """A try's setup (its arrays, its partitions, every buffer's preorder key: ms on thousands of buffers) is charged:
    a budget below it ends the search before its first node. Nodes alone were charged, 256 at a time, so any budget
    ran 256 nodes and more (counts, not the clock: deterministic)."""
    p = _random_intervals(2000)
    s = solve(p, "search", SolveOptions(time_limit=1e-4))
    assert s.arena > s.lower_bound   # (the start is not optimal: a tree was built and tried)
    assert s.info["nodes"] == 0


def test_search_charges_scans_so_a_budget_buys_fewer_dear_nodes(monkeypatch):
    """The same budget buys fewer nodes where each node scans more: with the per-entry and per-buffer charges zeroed
    (``WORK_*_PER_*``) the search of a 2,000-buffer problem makes more nodes than with them, and the solve repeats
    exactly either way."""
    p = _random_intervals(2000)
    charged = solve(p, "search", SolveOptions(time_limit=0.2))
    again = solve(p, "search", SolveOptions(time_limit=0.2))
    assert charged.info == again.info and np.array_equal(charged.offsets, again.offsets)
    for name in ("WORK_NODE_PER_BUFFER", "WORK_BATCH_PER_BUFFER", "WORK_SUBPROBLEM_PER_BUFFER",
                 "WORK_TRY_START_PER_ENTRY"):
        monkeypatch.setattr(search_tree, name, 0)
    cheap = solve(p, "search", SolveOptions(time_limit=0.2))
    assert charged.info["nodes"] < cheap.info["nodes"]


def test_search_on_tiled_minimalloc_stays_near_its_time_limit_in_cpu_time(minimalloc_dir):
    """12 copies of minimalloc's A, each overlapping the next by half (1,848 buffers, one pair in place: the clique
    sections), at ``time_limit=1``: 6.2 CPU s when a node was charged ~100 us whatever it scanned (its nodes cost
    ~1.4 ms), 1.3-1.5 s then, 0.65 s on a later machine. Measured against A itself at ``time_limit=0.5`` on the same
    machine, in the same process: a unit of budget costs the tiled solve 1.4x what it costs A's (A spends its whole
    budget too), 2.8x under the flat charge. Why relative: CPU seconds per unit of estimated work are the machine's
    speed (CI's 2-core machine ran the tiled solve in 4.3 s, 2.6x this one's every test), so an absolute bound failed
    on a slower machine with the charge right; the ratio is the charge's accuracy across problem sizes, which is what
    the fix made right."""
    a = read_csv(os.path.join(minimalloc_dir, "challenging", "A.1048576.csv")).problem()
    k, half = 12, int(a.upper.max()) // 2
    lower = np.concatenate([a.lower + i * half for i in range(k)])
    upper = np.concatenate([a.upper + i * half for i in range(k)])
    sizes = np.tile(a.sizes, k)
    first, second = BufferProblem(sizes=sizes, lower=lower, upper=upper).conflict_pairs()
    p = BufferProblem(sizes=sizes, lower=lower, upper=upper, compatible=frozenset({(int(first[0]), int(second[0]))}))
    c0 = time.process_time()
    ref = solve(a, "search", SolveOptions(time_limit=0.5))
    c1 = time.process_time()
    s = solve(p, "search", SolveOptions(time_limit=1))
    c2 = time.process_time()
    assert ref.info["gap"] > 0 and "stopped" not in ref.info   # (A spent its budget: its CPU time measures a unit)
    per_unit_a, per_unit_tiled = (c1 - c0) / 0.5, (c2 - c1) / 1
    assert per_unit_tiled < 2.2 * per_unit_a, (c1 - c0, c2 - c1)
    assert s.info["nodes"] > 0 and "stopped" not in s.info


def test_the_default_solves_polish_keeps_its_node_budget(monkeypatch):
    """``auto.polish`` (a default plan of a small problem) searches a fixed number of nodes, not the time limit's
    estimated work: the default plan is the same however dear the estimate makes a node (``random_dag(40, seed=3)`` on
    2 streams: the polish finds 604,160 B where the heuristics end at 609,280 B; with the estimate's node charged,
    it found nothing in the budget and the default plan changed)."""
    g = random_dag(40, seed=3)
    before = memplan.plan(g, streams=2)
    monkeypatch.setattr(search_tree, "WORK_NODE", 10 ** 9)
    after = memplan.plan(g, streams=2)
    assert (after.arena_bytes, after.tensors) == (before.arena_bytes, before.tensors)
    assert before.solver["name"] == "search"
