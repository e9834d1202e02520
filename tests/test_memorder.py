"""The memory budget's last resort: a serial order that keeps fewer bytes live (``optimize.memorder``).

Before it, a budget the listed order missed was a ``BudgetError`` even where another order of the same
graph fits (planning every serial order of the units finds one for 168 of 592 such refusals on tiny
random graphs; the greedy plans 157). It is tried only after every other candidate, so plans that were
made before do not change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from strategies import graphs

import memplan
from memplan import BudgetError, GraphBuilder
from memplan.optimize.memorder import LOW_MEMORY, memory_order
from memplan.schedule import check_schedule, data_dependencies


def two_branches(n: int = 2, size: int = 1 << 20) -> memplan.Graph:
    """``n`` branches listed breadth-first: every branch's big intermediate is made before any is read,
    so the listed order keeps all of them live; branch by branch keeps one."""
    b = GraphBuilder("branches")
    b.input("x", 256)
    for i in range(n):
        b.intermediate(f"big{i}", size)
        b.intermediate(f"small{i}", 256)
    b.output("y", 256)
    for i in range(n):
        b.node(f"make{i}", "MUL_MAT", ["x"], [f"big{i}"])
    for i in range(n):
        b.node(f"use{i}", "SUM", [f"big{i}"], [f"small{i}"])
    b.node("join", "ADD", [f"small{i}" for i in range(n)], ["y"])
    return b.build()


@pytest.mark.parametrize("streams", [None, 1, 2])
def test_a_budget_only_another_order_meets_is_planned_not_refused(streams):
    g = two_branches(3)
    serial = memplan.plan(g)
    assert serial.arena_bytes >= 3 << 20
    budget = (1 << 20) + 4096
    p = memplan.plan(g, memory_budget=budget, streams=streams)   # verified inside, as every plan
    assert p.arena_bytes <= budget and p.streams == 1 and not p.events
    block = p.solver["schedule"]
    assert block["candidate"] == LOW_MEMORY and block["serial_arena_bytes"] == serial.arena_bytes
    assert [n for n, _s in p.order][:2] == ["make0", "use0"]
    # deterministic: the same plan again, byte for byte
    assert memplan.plan(g, memory_budget=budget, streams=streams).to_json() == p.to_json()


def test_a_budget_no_order_meets_still_names_both_numbers():
    g = two_branches(3)
    with pytest.raises(BudgetError, match=r"needs an arena of \d+ B, over the memory budget of 1000 B "
                                           r"\(a low-memory serial order needs \d+ B\)"):
        memplan.plan(g, memory_budget=1000)


def test_a_given_schedule_is_never_reordered_for_a_budget():
    g = two_branches(3)
    with pytest.raises(BudgetError, match="the given schedule needs"):
        memplan.plan(g, schedule=memplan.serial_schedule(g), memory_budget=(1 << 20) + 4096)


def test_plans_that_met_the_budget_before_are_unchanged():
    """The listed order already fits: it is planned as before (the low-memory order is never tried)."""
    g = two_branches(3)
    p = memplan.plan(g, memory_budget=memplan.plan(g).arena_bytes)
    assert p.solver["schedule"]["candidate"] == "serial" and [n for n, _ in p.order] == [n.id for n in g.nodes]


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_the_order_is_a_schedule_of_the_graph(g):
    """Every node once, each after the producers it reads (rule 2's data dependencies), fusion groups
    whole and in their listed order, one stream, no events."""
    s = memory_order(g)
    check_schedule(g, s)
    pos = {nid: i for i, nid in enumerate(s.order)}
    assert sorted(pos) == sorted(n.id for n in g.nodes) and set(s.streams) <= {0} and not s.events
    for i, n in enumerate(g.nodes):
        assert all(pos[g.nodes[d].id] < pos[n.id] for d in data_dependencies(g, i) if d != i)
    for members in g.groups().values():
        at = [pos[g.nodes[m].id] for m in members]
        assert at == list(range(at[0], at[0] + len(at)))
    assert memory_order(g) == s


def _count_writers(g: memplan.Graph) -> dict:
    """Count ``g.writers`` calls (each walks a view chain: O(depth)) in the returned dict's "n"."""
    calls = {"n": 0}
    real = g.writers

    def counting(t):
        calls["n"] += 1
        return real(t)

    object.__setattr__(g, "writers", counting)
    return calls


def test_a_deep_view_chain_is_ordered_in_linear_time():
    """Listing every writer of a 100,000-view chain for every reader is quadratic (minutes); the chain
    vertices keep it linear. A count of steps, not a clock: the writers walked stay within a few per node."""
    from memplan.benchmarks.scale import chain_graph

    g = chain_graph(20000)
    calls = _count_writers(g)
    s = memory_order(g)
    assert len(s.order) == len(g.nodes) and calls["n"] == 0


def _group_over_its_own_root(b: GraphBuilder) -> None:
    """A view ``V`` of ``W`` written (by ``wv``) before ``W``'s producer, which is fused with a reader of
    ``V``: the group writes above the view it reads, through another unit's write (legal: reads follow
    the writers, and every writer is listed before the reader)."""
    b.input("x", 256)
    b.intermediate("W", 1024)
    b.view("V", "W", 256, 0)
    b.node("wv", "OP", ["x"], ["V"])
    b.node("mkW", "OP", ["x"], ["W"], group="g")
    b.node("rdV", "OP", ["V"], [b.output("yV", 256)], group="g")


def test_a_group_writing_above_a_view_it_reads_makes_no_cycle():
    """A first version's chain vertex of ``V`` waited for ``W``'s vertex, and that for the group, which
    waited for ``V``'s: a cycle, and a fallback listed every writer of every read of the whole graph
    (quadratic: with a chain of 8,000 views beside it, 15 s). The order now comes from the optimizer's unit
    graph (``streams.build_units``), where such a group lists ``V``'s writers itself: no cycle, and beside a
    deep chain only that one read walks a chain."""
    from memplan.benchmarks.scale import chain_graph

    b = GraphBuilder("group-over-root")
    _group_over_its_own_root(b)
    g = b.build()
    s = memory_order(g)
    check_schedule(g, s)
    assert s.order == ("wv", "mkW", "rdV")
    chain = chain_graph(2000).to_dict()
    d = g.to_dict()
    big = memplan.graph_from_dict(dict(chain, tensors=d["tensors"] + chain["tensors"][1:],
                                       nodes=d["nodes"] + chain["nodes"]))
    calls = _count_writers(big)
    check_schedule(big, memory_order(big))
    assert calls["n"] <= 2


def test_an_output_made_early_counts_for_the_rest_of_the_run():
    """A node with no inputs that makes a big output changes nothing but that output's lifetime: from its
    producer to the end. Taking outputs for live throughout (never counted), the greedy issued it first
    and kept the output beside every branch (2 MiB, over the budget); last, it needs about one branch's."""
    g = two_branches(3)
    d = g.to_dict()
    d["tensors"].append({"id": "table", "size": 1 << 20, "kind": "output"})
    d["nodes"].append({"id": "fill", "op": "FILL", "inputs": [], "outputs": ["table"]})
    g = memplan.graph_from_dict(d)
    s = memory_order(g)
    assert s.order[0] != "fill" and s.order[-1] == "fill"
    budget = (1 << 20) + 4096
    assert memplan.plan(g).arena_bytes > budget
    p = memplan.plan(g, memory_budget=budget)
    assert p.arena_bytes <= budget and p.solver["schedule"]["candidate"] == LOW_MEMORY


def test_an_input_read_early_is_freed():
    """An input is live until its last reader (CONTRACT.md): the node that reads a big input frees it, so
    the greedy runs it before a node with a big scratch result. Taking inputs for live throughout, it ran
    the scratch node first (its result dies at once: no change after it) with the input still live."""
    b = GraphBuilder("input-freed")
    b.input("x", 256)
    b.input("big_in", 1 << 20)
    b.node("scratch", "OP", ["x"], [b.intermediate("tmp", 1 << 20), b.intermediate("t", 256)])
    b.node("read", "SUM", ["big_in"], [b.intermediate("s", 512)])
    b.node("join", "ADD", ["t", "s"], [b.output("y", 256)])
    g = b.build()
    assert memory_order(g).order == ("read", "scratch", "join")
    budget = (1 << 20) + 4096
    assert memplan.plan(g).arena_bytes > budget
    assert memplan.plan(g, memory_budget=budget).arena_bytes <= budget
