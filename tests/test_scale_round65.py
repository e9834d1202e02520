"""Round 65: the lifetimes' ``first`` and ``last`` tables hold the accessed (buffer, stream) cells alone.

As dense int32 (buffers x streams) tables they took 86 MiB each for ``layered_graph(20000)`` on 1,024 streams, 48,000
accessed cells of 21.5 million: with ``visible`` and ``live_from`` the peak of the lifetimes, and ``first`` held
again by the problem's ``HBOrder`` through the solve. Now ``memplan.streamtable.StreamTable`` (CSR by buffer) holds
them; every reader (``_thresholds``, ``cut_bound``, ``reuse``, ``HBOrder.precedes`` / ``first_csr``,
``same_problem``, greedy's stream times, ``decompose``) gives what it gave from the dense tables. Structural tests:
sizes and equalities, never times."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import draw_scheduled

from memplan.benchmarks.scale import layered_graph, random_dag
from memplan.lifetimes import NEVER, SEQ, buffer_problem, compute_lifetimes
from memplan.problem import HBOrder, same_problem
from memplan.schedule import build_happens_before, schedule_with_events
from memplan.solvers import greedy, solve
from memplan.solvers.decompose import subproblem
from memplan.streamtable import StreamTable


def _scheduled(g, streams: int, seed: int = 0):
    rng = random.Random(seed)
    order = [x.id for x in g.nodes]
    s = schedule_with_events(g, order, {x: rng.randrange(streams) for x in order})
    return build_happens_before(g, s)


def _dense_first_last(g, hb, lt) -> tuple[np.ndarray, np.ndarray]:
    """``first`` and ``last`` as compute_lifetimes built them before round 65: one cell per (buffer, stream), by
    ``ufunc.at`` over every access."""
    B, S = len(lt.roots), hb.num_streams
    first = np.full((B, S), NEVER, dtype=SEQ)
    last = np.zeros((B, S), dtype=SEQ)
    owners = np.repeat(np.arange(B), np.diff(lt.acc_ptr))
    nodes = lt.acc_nodes
    np.minimum.at(first, (owners, hb.stream[nodes]), hb.seq[nodes].astype(SEQ))
    np.maximum.at(last, (owners, hb.stream[nodes]), (hb.seq[nodes] + 1).astype(SEQ))
    return first, last


def _with_dense_first(p):
    """``p`` with its order's ``first`` as the dense table (as a problem built in code has it)."""
    o = p.order
    order = HBOrder(o.first.toarray(), o.visible, o.has_start, o.has_end, o.last_time, o.stream_time)
    return type(p)(sizes=p.sizes, lower=p.lower, upper=p.upper, alignment=p.alignment, names=p.names, order=order,
                   compatible=p.compatible, inplace=p.inplace, lower_bound=p.lower_bound, meta=dict(p.meta))


# ---- the tables hold the accessed cells alone ----

def test_first_and_last_hold_the_accessed_cells_alone_on_many_streams():
    """A layered DAG dealt over 1,024 streams: ``first`` and ``last`` store one cell per accessed (buffer, stream)
    pair (about 2 a buffer), not buffers x streams, and equal the dense tables cell for cell."""
    g = layered_graph(1200)
    hb = _scheduled(g, 1024, seed=1)
    lt = compute_lifetimes(g, hb)
    B, S = len(lt.roots), hb.num_streams
    assert S == 1024
    dense_first, dense_last = _dense_first_last(g, hb, lt)
    accessed = int((dense_last > 0).sum())
    for table, dense, fill in ((lt.first, dense_first, NEVER), (lt.last, dense_last, 0)):
        assert isinstance(table, StreamTable) and table.shape == (B, S) and table.dtype == SEQ
        assert len(table.vals) == accessed and table.fill == fill
        assert table.nbytes <= 8 * (B + 1) + 6 * accessed < dense.nbytes // 50
        assert np.array_equal(table.toarray(), dense)
    assert np.array_equal(lt.first.ptr, lt.last.ptr) and np.array_equal(lt.first.cols, lt.last.cols)


def test_problem_order_holds_the_sparse_first():
    """``buffer_problem``'s order holds the lifetimes' own ``first`` (no dense copy), and its precedence columns
    (``first_csr``) are those of the dense table."""
    g = random_dag(500, seed=2)
    hb = _scheduled(g, 64, seed=2)
    lt = compute_lifetimes(g, hb)
    p = buffer_problem(g, hb, lt, clique=False)
    assert p.order.first is lt.first
    dense = _with_dense_first(p)
    for x, y in zip(p.order.first_csr(), dense.order.first_csr()):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_sparse_tables_agree_with_dense_ones_on_random_graphs(data):
    """Random graphs (views, in-place pairs, inputs, outputs) on random multi-stream schedules: the stored cells are
    the dense tables' cells; precedence, conflicts, ``same_problem`` and greedy's stream times read from the sparse
    ``first`` what they read from the dense one."""
    g, _order, _streams, s = draw_scheduled(data, max_streams=4)
    hb = build_happens_before(g, s)
    lt = compute_lifetimes(g, hb)
    dense_first, dense_last = _dense_first_last(g, hb, lt)
    assert np.array_equal(lt.first.toarray(), dense_first) and np.array_equal(lt.last.toarray(), dense_last)
    p = buffer_problem(g, hb, lt, clique=False)
    if p.order is None:
        return
    d = _with_dense_first(p)
    n = len(p)
    for i in range(n):
        for j in range(n):
            assert p.order.precedes(i, j) == d.order.precedes(i, j), (i, j)
            assert p.conflicts(i, j) == d.conflicts(i, j), (i, j)
    assert same_problem(p, d) and same_problem(d, p) and same_problem(p, p)
    sp, sd = greedy._sparse_stream_times(p), greedy._sparse_stream_times(d)
    assert (sp is None) == (sd is None)
    if sp is not None:
        assert (sp.first, sp.home, sp.regular, sp.accessed) == (sd.first, sd.home, sd.regular, sd.accessed)
    if n > 1:
        idx = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1), label="rows")))
        a, b = subproblem(p, idx), subproblem(d, idx)
        assert np.array_equal(a.order.first.toarray(), b.order.first)
        assert all(a.conflicts(i, j) == b.conflicts(i, j) for i in range(len(idx)) for j in range(len(idx)))


def test_same_problem_tells_sparse_firsts_apart():
    """One cell of the sparse ``first`` changed: not the same problem (a kept solve would be reused wrongly)."""
    g = random_dag(120, seed=4)
    hb = _scheduled(g, 8, seed=4)
    p = buffer_problem(g, hb, compute_lifetimes(g, hb), clique=False)
    f = p.order.first
    vals = f.vals.copy()
    vals[len(vals) // 2] += 1
    q = _with_dense_first(p)
    other = HBOrder(StreamTable(f.ptr, f.cols, vals, f.shape, f.fill), q.order.visible, q.order.has_start,
                    q.order.has_end, q.order.last_time, q.order.stream_time)
    changed = type(p)(sizes=p.sizes, lower=p.lower, upper=p.upper, alignment=p.alignment, names=p.names,
                      order=other, compatible=p.compatible, inplace=p.inplace, lower_bound=p.lower_bound,
                      meta=dict(p.meta))
    assert not same_problem(p, changed) and not same_problem(changed, q)


def test_plans_are_the_same_from_dense_and_sparse_firsts():
    """Greedy and size solve a 64-stream problem to the same offsets with either ``first``."""
    g = random_dag(400, seed=5)
    hb = _scheduled(g, 64, seed=5)
    p = buffer_problem(g, hb, compute_lifetimes(g, hb))
    d = _with_dense_first(p)
    for solver in ("greedy", "size"):
        assert list(solve(p, solver).offsets) == list(solve(d, solver).offsets), solver


# ---- StreamTable reads as the dense table ----

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_stream_table_reads_as_its_dense_table(data):
    rows = data.draw(st.integers(0, 6), label="rows")
    cols = data.draw(st.integers(1, 5), label="cols")
    fill = data.draw(st.sampled_from([0, int(NEVER)]), label="fill")
    dense = np.full((rows, cols), fill, dtype=SEQ)
    for _ in range(data.draw(st.integers(0, rows * cols), label="cells")):
        r, c = data.draw(st.integers(0, max(rows - 1, 0))), data.draw(st.integers(0, cols - 1))
        if rows:
            dense[r, c] = data.draw(st.integers(1, 50))
    t = StreamTable.from_dense(dense, fill)
    assert np.array_equal(t.toarray(), dense) and t.tolist() == dense.tolist() and np.array_equal(np.asarray(t), dense)
    for r in range(-rows, rows):
        assert np.array_equal(t[r], dense[r])
        for c in range(-cols, cols):
            assert t[r, c] == dense[r, c]
    for c in range(cols):
        assert np.array_equal(t[:, c], dense[:, c])
    pick = np.array(data.draw(st.lists(st.integers(0, max(rows - 1, 0)), max_size=8) if rows else st.just([])),
                    dtype=np.int64)
    assert np.array_equal(t[pick].toarray(), dense[pick].reshape(len(pick), cols))
    mask = np.array([data.draw(st.booleans()) for _ in range(rows)], dtype=bool)
    assert np.array_equal(t[mask].toarray(), dense[mask])
    assert np.array_equal(t[1:].toarray(), dense[1:])
    with pytest.raises(IndexError):
        t[rows, 0]


def test_stream_table_equals_its_copies_by_value():
    """A pickled or copied ``HBOrder`` equals its original (``values.by_value`` compares the table by value), and
    one cell changed is another table."""
    import copy
    import pickle

    t = StreamTable.from_dense(np.array([[5, NEVER], [NEVER, 3]], dtype=SEQ), NEVER)
    u = pickle.loads(pickle.dumps(t))
    assert u == t and hash(u) == hash(t) and copy.copy(t) == t
    vals = t.vals.copy()
    vals[0] = 6
    assert StreamTable(t.ptr, t.cols, vals, t.shape, t.fill) != t
    g = random_dag(80, seed=3)
    p = buffer_problem(g, _scheduled(g, 4, seed=3), clique=False)
    assert pickle.loads(pickle.dumps(p.order)) == p.order
