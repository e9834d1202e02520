"""Session 29, scale: steps that did work per pair or per candidate where linear work does, checked by
counting that work (never by timing), and against the code they replace where the result must not change."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import view_chains

from memplan.problem import _clique_search


class _CountingSet(set):
    """A neighbour set that counts membership tests: the old branch and bound asked one per candidate per
    expansion (20,000 x 2,000 per problem), the numpy one reads each set once."""

    tests = 0

    def __contains__(self, item) -> bool:
        type(self).tests += 1
        return super().__contains__(item)


def _old_clique_search(nbr, sizes, rounded, incumbent, budget):
    """The Python branch and bound before session 29, for comparison (same frames, same cuts)."""
    best = incumbent
    expansions = 0
    order = sorted((i for i in range(len(sizes)) if sizes[i] > 0), key=lambda i: (-rounded[i], i))

    def enter(total, pad, cand):
        nonlocal best
        best = max(best, total - pad)
        return [total, pad, cand, 0, sum(rounded[c] for c in cand)]

    stack = [enter(0, 0, order)]
    while stack:
        frame = stack[-1]
        total, pad, cand, k, room = frame
        if k >= len(cand) or expansions >= budget or total + room - pad <= best:
            stack.pop()
            continue
        v = cand[k]
        expansions += 1
        frame[3], frame[4] = k + 1, room - rounded[v]
        rest = [u for u in cand[k + 1:] if u in nbr[v]]
        stack.append(enter(total + rounded[v], max(pad, rounded[v] - sizes[v]), rest))
    return best


def test_clique_search_reads_each_neighbour_set_once_on_a_dense_clique():
    # one node's 1,500 outputs on several streams: every pair conflicts, the search runs its whole budget
    n = 1500
    sizes = [256] * (n - 1) + [1]
    _CountingSet.tests = 0
    nbr = [_CountingSet(set(range(n)) - {i}) for i in range(n)]
    assert _clique_search(nbr, sizes, [256] * n, 0, budget=20_000) == 256 * n - 255
    assert _CountingSet.tests == 0   # the Python loop asked about 1.1M times


def test_clique_search_is_the_python_search_under_every_budget():
    rng = random.Random(29)
    for case in range(150):
        n = rng.randint(1, 60)
        density = rng.random()
        sizes = [rng.choice([0, 1, 100, 256, 300, 512, 4096, 1 << 62]) for _ in range(n)]
        rounded = [-(-s // 256) * 256 for s in sizes]
        nbr = [set() for _ in range(n)]
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < density:
                    nbr[a].add(b)
                    nbr[b].add(a)
        incumbent = rng.choice([0, 0, max(sizes)])
        for budget in (0, 1, 3, 17, 200, 10 ** 6):
            assert (_clique_search(nbr, sizes, rounded, incumbent, budget)
                    == _old_clique_search(nbr, sizes, rounded, incumbent, budget)), (case, budget)


def _score_forks_merges(monkeypatch, k: int) -> tuple[int, list]:
    """(merges of {stream: writer} maps, the forks) of ``score_forks`` on a chain of ``k`` written views, by windows."""
    from memplan import schedule
    from memplan.benchmarks.scale import chain_graph
    from memplan.optimize import budget
    from memplan.optimize.streams import optimize

    g = chain_graph(k)
    opt = optimize(g, 8)
    monkeypatch.setattr(budget, "MAX_REPLAY_STEPS", 0)   # every fork by its window (as past 2M replayed nodes)
    calls = []
    real = schedule.merge_latest
    monkeypatch.setattr(schedule, "merge_latest", lambda *a: calls.append(1) or real(*a))
    forks = budget.score_forks(g, opt, opt.schedule)
    return len(calls), forks


def test_fork_windows_do_not_walk_view_chains_to_their_root(monkeypatch):
    # each window of a 1,000-view chain's 250 forks walked the chain from its reads up to the root again:
    # 220,726 merges (724,476 at 2,000 views); now each view's writers are merged once, in the full run
    merges, forks = _score_forks_merges(monkeypatch, 1000)
    assert len(forks) == 250 and merges <= 1000


@settings(max_examples=60, deadline=None)
@given(view_chains(max_nodes=24), st.randoms(use_true_random=False))
def test_fork_windows_with_inherited_writers_are_the_fresh_windows(g, rnd):
    """``rerun_window`` reading the full run's writer fold below its window (``Replay._inherited``) gives the
    (events, makespan) a fresh fold gives, for any window and any streams inside it."""
    from memplan.optimize.events import Replay

    order = list(range(len(g.nodes)))   # (the listed order is topological)
    N = len(order)
    streams = [rnd.randrange(3) for _ in range(N)]
    cost = [float(rnd.randint(0, 5)) for _ in range(N)]
    marks = sorted(rnd.sample(range(N), min(N, 4)))
    replay = Replay(g, order, streams, cost, 2.0, marks)
    for p in marks:
        stop = rnd.randint(p, N)
        window = [rnd.randrange(3) for _ in range(stop - p)]
        inherited = replay.rerun_window(p, stop, window)
        fresh = Replay(g, order, streams, cost, 2.0, marks)
        fresh._inherited = lambda p: None   # (the fold starts empty, as before session 29)
        assert inherited == fresh.rerun_window(p, stop, window)


def test_bench_scale_measures_the_new_shapes(capsys):
    import json

    from memplan.benchmarks import scale

    for kind, n, tensors in (("random", 60, 64), ("experts", 5, 31), ("io", 40, 80)):
        assert scale.child_main([kind, str(n), "serial"]) == 0
        row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert row["graph"] == kind and row["tensors"] == tensors and row["arena"] >= row["lower_bound"] > 0


def test_random_dag_reads_two_to_eight_recent_tensors():
    from memplan.benchmarks.scale import random_dag

    g = random_dag(3000)
    made = {t.id: k for k, t in enumerate(g.tensors)}
    for node in g.nodes[:-1]:
        assert 1 <= len(node.inputs) <= 8   # (2-8 draws; a repeated draw is read once)
        assert all(made[node.outputs[0]] - made[t] <= 1024 + 4 for t in node.inputs)
    assert sum(len(nd.inputs) for nd in g.nodes) > 4 * len(g.nodes)


def test_json_text_of_a_large_graph_holds_a_few_times_its_text(monkeypatch):
    # Python's indenting encoder gathered a 20,000-node graph's JSON as ~40 small strings per entry before
    # joining them: 9.5 times the text at once (2.3 GB to save a 1M-node graph); by entry it is 3.7 times
    import tracemalloc

    from memplan import planfile
    from memplan.generators import fanout_join

    doc = fanout_join(5000)[0].to_dict()   # (the ratios do not depend on the size: 3.7 and 9.6 at 5,000 nodes too)
    monkeypatch.setattr(planfile, "json_depth", lambda data, stop=None: 0)   # (its fixed-size scan apart)
    tracemalloc.start()
    try:
        text = planfile.json_text(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text is not None and peak < 5 * len(text)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
                     | st.text(max_size=6), lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _JSON, max_size=4), st.lists(_JSON, max_size=40),
       st.integers(0, 2500), st.sampled_from([1, 3, 1000]))
def test_json_text_by_entry_is_json_dumps(doc, entries, at, by):
    """The same text as ``json.dumps(doc, indent=1)`` (or the same refusal, None), whatever the entries hold:
    newlines and quotes in strings, nested lists and objects, empty ones, and non-finite floats."""
    import json

    from memplan import planfile

    doc = dict(doc)
    doc["entries"] = (entries * (at // max(len(entries), 1) + 1))[:at] if entries else []
    if at % 7 == 0 and doc["entries"]:
        doc["entries"][at // 2 % len(doc["entries"])] = {"x": float("inf")}
    try:
        want: str | None = json.dumps(doc, indent=1, allow_nan=False, default=planfile._json_int)
    except ValueError:
        want = None
    saved, planfile.BY_ENTRY = planfile.BY_ENTRY, by
    try:
        assert planfile._by_entry(doc) or len(doc["entries"]) <= by
        assert planfile.json_text(doc) == want
    finally:
        planfile.BY_ENTRY = saved
