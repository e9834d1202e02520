"""The verifier: an independent check of the contract's four safety rules for any plan.

It shares no code with the planner (no schedule, lifetimes or solver imports) so that a bug there
cannot hide here: it rebuilds happens-before itself from the plan's order and events, derives each
root's accesses from the graph, and finds overlapping roots by painting the arena in order of first
access. Happens-before between roots is transitive, so checking each byte's consecutive occupants
proves every overlapping pair.

Rules 1 and 2 hold every read to every writer along its view chain, none left out, through two
summaries kept per view, each made once from the view above it (``_ChainFold``): the latest issue
position among the writers (the read must be issued after it), and the latest writers, those no other
writer of the chain happens after (the read's clock must count past each: what happens-before a latest
writer happens-before the read too; at most one per stream, as a stream's nodes run in order, and
mostly one). That is exact, and linear in a chain of k written views with a reader each, where listing
every writer for every read is k^2 / 2 steps. The writers are listed only to name those a finding is
about, walking up only while a writer that fails remains above.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache, partial
from typing import Any

import numpy as np

from ._gc import paused
from .errors import PlanFormatError, UnsafePlan, named_options, some_of, twin_spelling, unicode_twins
from .errors import short_repr as _short
from .graph import Graph, check_graph
from .ops import COPY_OP
from .planfile import MAX_STREAMS, Plan, check_plan_fields, check_plan_for, plan_from_dict, split_graph_hint

#: the findings kept of each rule: one rule broken thousands of times (an event per node restated on its own
#: stream) filled a cap shared by all rules, and the others' findings were dropped unsaid (see ``check``)
MAX_REPORTED = 200


@named_options
def verify(graph: Graph, plan: Plan | dict[str, Any], *, fused_groups: bool = False) -> None:
    """Raise ``UnsafePlan`` listing every rule the plan breaks; return None when it is safe.
    ``fused_groups``: also prove the plan safe for a backend that runs a fusion group of several nodes as one
    kernel, as ``runtime/`` issues it (``runtime.step``): at its last member's place in ``order``, after every
    member's waits, with every member's records after it (an event cannot be recorded mid-kernel). Node by node
    a plan must still be safe (such a backend runs a group it cannot fuse node by node), and the contract's
    happens-before already orders the kernel as the plan orders its members: what waits for a member waits for
    the kernel, since the member's record comes after it, and what a member waits for, the kernel waited for. So
    the one thing fusing adds is inside the group: the kernel may read any of its members' inputs while it writes
    any of their outputs, so no two roots the group touches may share bytes (an in-place pair inside a group of
    several nodes neither). A group one of whose members' events is waited on by a node issued before the last
    member (or by the last member) cannot run as one kernel (its record would come after that wait, which CUDA
    then skips): it runs node by node, as ``runtime.step.unfusable_groups`` runs it, and is judged so. Why not
    the group's first and last member for each member's access (as before): that refused safe plans, e.g. a
    node waiting on the group's first member and then reusing bytes the group read (the record comes after the
    whole kernel), or the last member reading what a node it waits for wrote over bytes freed before the first.

    A plan whose ``graph`` field names another graph is ``PlanMismatch`` (an ``UnsafePlan``), as ``simulate``,
    ``ReuseIndex`` and ``memplan verify`` refuse it (``planfile.check_plan_for``). Why: with the same node and tensor
    ids, ``verify(qkv, plan of 'other')`` returned None where each of them refused the pair; ``check`` (the
    contract's rules alone, which say nothing of the name) still judges such a plan by its nodes and bytes."""
    plan = _named_for(graph, plan)
    problems = check(graph, plan, fused_groups=fused_groups)
    if problems:
        raise UnsafePlan(problems, total=problems.total, total_exact=problems.exact, named=problems.named)


def _named_for(graph: Graph, plan: Any) -> Any:
    """``plan`` (a dict read as a Plan), after ``PlanMismatch`` if it names a graph other than ``graph``; anything
    else as it came, for ``check`` to refuse in its words (not a Plan, a graph that is none, a bad field)."""
    check_graph(graph, "verify")
    if isinstance(plan, dict):
        plan = plan_from_dict(plan)
    name = plan.graph if isinstance(plan, Plan) else None
    # (str's own ``!=``: a str subclass's is the caller's code; a name that is no str is check_plan_fields' refusal)
    if isinstance(name, str) and name and str.__ne__(name, graph.name):
        check_plan_for(graph, plan)   # the name and every other mismatch, in the pairing check's words
    return plan


class Findings(list):
    """``check``'s findings (a list of ``(rule, message)``, at most ``MAX_REPORTED`` of each rule) with ``total``, how
    many the plan has in all, and ``exact``: False where ``total`` is a lower bound (past the cap a read that fails is
    counted once, its failing writers not named: walking every chain for every such read would cost more than the
    check). Why: ``UnsafePlan`` said "and 195 more" for a plan with 10,000 racy reads, counting the kept ones."""

    total: int = 0
    exact: bool = True
    #: {index of a finding: the findings its message counts itself ("... and 5 more": 6)}, for ``UnsafePlan``
    named: dict[int, int] | None = None


@named_options
@paused
def check(graph: Graph, plan: Plan | dict[str, Any], *, fused_groups: bool = False) -> Findings:
    """All findings as ``(rule, message)``, at most ``MAX_REPORTED`` of each rule, by rule (1 to 4; within a rule in
    the order found); empty when the plan is safe (see ``verify``). A ``Findings`` list: its ``total`` counts those past
    the cap too (a lower bound where not ``exact``). Every rule is judged whatever the others find (``_placement``):
    only an order without every node leaves rules 2 and 3 unjudged."""
    return _by_rule(_check(graph, plan, fused_groups))


def _by_rule(found: Findings) -> Findings:
    """``found`` in rule order, stable, ``named`` following its findings. Why: rule 4's placement is judged before rule
    3 (which needs the offsets), so a plan breaking both listed "rule 4: ...; rule 3: ..."."""
    keys = sorted(range(len(found)), key=lambda i: found[i][0])
    if keys == list(range(len(found))):
        return found
    out = Findings(found[i] for i in keys)
    out.total, out.exact = found.total, found.exact
    where = {old: new for new, old in enumerate(keys)}
    out.named = {where[i]: n for i, n in (found.named or {}).items()}
    return out


def _check(graph: Graph, plan: Plan | dict[str, Any], fused_groups: bool) -> Findings:
    """``check``'s findings in the order its passes find them."""
    check_graph(graph, "verify")
    if not isinstance(fused_groups, bool):
        raise PlanFormatError(f"verify: fused_groups must be True or False, not {_short(fused_groups)}")
    if isinstance(plan, dict):
        plan = plan_from_dict(plan)
    if not isinstance(plan, Plan):
        raise PlanFormatError(f"verify needs a memplan Plan (or its dict), not {type(plan).__name__}")
    check_plan_fields(plan)  # a Plan built in code: the types and ranges a plan file must have
    out = Findings()
    named: dict[int, int] = {}
    out.named = named
    kept = [0] * 5   # findings kept per rule (0 unused), each up to MAX_REPORTED

    def bad(rule: int, msg: str, count: int = 1) -> None:
        """Keep a finding, up to MAX_REPORTED of each rule. Why per rule: with one cap for all, a plan with 250 events
        inside one stream (rule 1) was reported as breaking rule 1 alone, while it also raced reads (rule 2) and
        reused memory too early (rule 3): the findings of every rule it breaks are listed. ``count``: the nodes or
        tensors one message names (``errors.some_of``: "order is missing 8 nodes: ..."), each a finding of its own, as
        a node listed twice or an unknown one is, so ``total`` and ``UnsafePlan``'s "and N more" count them all (one
        finding for 1,000 missing nodes was counted as one)."""
        out.total += count
        if kept[rule] < MAX_REPORTED:
            kept[rule] += 1
            out.append((rule, msg))
            if count > 1:
                named[len(out) - 1] = count

    def past_cap(j: int) -> None:
        """One more finding, past the cap, not made into a message, for a read whose nearest written tensor is ``j``:
        exact where ``j`` is a root (its producer its one writer), else writers further up may fail too, uncounted."""
        out.total += 1
        if graph.tensors[j].view_of is not None:
            out.exact = False

    split = split_graph_hint(graph, plan)
    if split:
        bad(1, split)
    else:
        foreign = _foreign_note(graph, plan)
        if foreign:
            bad(1, foreign)
    nodes = graph.nodes
    N = len(nodes)
    node_twin = unicode_twins(graph.node_index)   # (an id that prints as a graph's own: the note tells them apart)
    nm = twin_spelling(graph.tensor_index, graph.node_index)   # (two of the graph's own ids that print alike: escaped)
    # ---- rule 1: order is a permutation and topological; events forward; groups ---------------
    pos = [-1] * N
    stream = [0] * N
    for p, (nid, s) in enumerate(plan.order):
        ni = graph.node_index.get(nid)
        if ni is None:
            bad(1, f"order names unknown node {nid!r}{node_twin(nid)}")
            continue
        if pos[ni] >= 0:
            bad(1, f"node {nm(nid)} appears twice in order")
            continue
        if not isinstance(s, int) or s < 0 or s >= plan.streams:
            bad(1, f"node {nm(nid)} runs on stream {s!r}, outside 0..{plan.streams - 1}")
        pos[ni], stream[ni] = p, s
    missing = [nodes[i].id for i in range(N) if pos[i] < 0]
    if missing:
        bad(1, "order is missing " + some_of(missing, "node", nm), len(missing))
        # happens-before (rules 2, 3) needs every node's place; the placement (rule 4) does not, and is still judged:
        # a plan missing a node and placing a tensor past the arena was reported as missing the node alone
        tdev = _device_findings(graph, plan, bad) if plan.devices > 1 else None
        _placement(graph, plan, tdev, bad, nm)
        return out
    tensors, producer = graph.tensors, graph.producer

    written = _nearest_written(graph)

    def failing_writers(t: int, fold: _ChainFold, clear, fails):
        """The producers along ``t``'s view chain (its own first, following ``written``: one step per producer, not
        per view) for which ``fails(w)`` holds, up the chain only below the first view ``j`` above ``t``'s nearest
        written one where ``clear(fold.of(j))`` says no writer at or above it fails. Why the stop: a read that fails
        on one writer near it walked the whole chain to name it, and the same for every such read (up to
        ``MAX_REPORTED``): 300 readers of the last of a 200,000-view chain, its last writer not waited for, took 56 s
        instead of 3. Why that view is found by doubling, then halving the distance (``clear`` holds from some view
        up, as each view's writers include those above it): ``clear`` of a view written on many streams costs an
        array of its latest writers (``seen_by``), and asking it of every view walked kept one such pair per view:
        a read missing one of 1,024 streams' writers of a 20,000-view chain held 310 MB of them, 13 s."""
        path = [written[t]]   # the written views from t's nearest up, extended as far as asked

        def at_least(k: int) -> bool:
            while len(path) <= k:
                parent = tensors[path[-1]].view_of
                j = -1 if parent is None else written[graph.tensor_index[parent]]
                if j < 0:
                    return False
                path.append(j)
            return True

        lo, hi, step = 0, None, 1   # path[lo] is not clear (0: not asked); path[hi] is (or hi == len(path))
        while hi is None:
            k = lo + step
            if not at_least(k):
                hi = len(path)
            elif clear(fold.of(path[k])):
                hi = k
            else:
                lo, step = k, step * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if clear(fold.of(path[mid])):
                hi = mid
            else:
                lo = mid
        for j in path[:hi]:
            w = producer[j]
            if fails(w):
                yield w

    # a read is in order when its chain's latest-issued writer is issued first (one number per view,
    # each from the view above it); the chain is walked only to name the writers that are not
    def report_reads(rule: int, fold: _ChainFold, clear, fails, text) -> None:
        """Rules 1 and 2 alike: every read whose chain ``fold`` does not show ``clear(ni, folded)`` names each writer
        ``fails(ni, w)`` holds for (``text(ni, t, w)``), until the rule's cap; past it each read is only counted."""
        for ni in range(N):
            for t in graph.node_inputs[ni]:
                j = written[t]
                if j < 0 or clear(ni, fold.of(j)):
                    continue
                if kept[rule] >= MAX_REPORTED:
                    past_cap(j)
                    continue
                for w in failing_writers(t, fold, partial(clear, ni), partial(fails, ni)):
                    bad(rule, text(ni, t, w))
                    if kept[rule] >= MAX_REPORTED:
                        if graph.tensors[written[t]].view_of is not None:
                            out.exact = False   # (this read's writers further up, if any, are not counted)
                        break

    last_issued = _ChainFold(graph, written, pos.__getitem__, max)
    report_reads(1, last_issued, lambda ni, last: last < pos[ni], lambda ni, w: pos[w] > pos[ni],
                 lambda ni, t, w: f"node {nm(nodes[ni].id)} is issued before {nm(nodes[w].id)}, which writes "
                                  f"{nm(graph.tensors[t].id)} that it reads")
    waits: dict[int, list[int]] = {}  # a dict: a list per node costs 56 MB per million nodes
    # each distinct event once: a copy restates the same happens-before edge (harmless, as CONTRACT.md defines
    # safety by happens-before alone), and a bad one listed k times was k identical findings
    listed: dict[tuple[str, str], int] = {}
    for a_id, b_id in plan.events:   # (an entry may be a list: check_plan_fields takes both)
        listed[a_id, b_id] = listed.get((a_id, b_id), 0) + 1
    for (a_id, b_id), times in listed.items():
        copies = f" (listed {times} times)" if times > 1 else ""
        a, b = graph.node_index.get(a_id), graph.node_index.get(b_id)
        if a is None or b is None:
            bad(1, f"event {a_id!r}->{b_id!r} names an unknown node{node_twin(a_id if a is None else b_id)}{copies}")
            continue
        if stream[a] == stream[b]:
            bad(1, f"event {nm(a_id)}->{nm(b_id)} joins stream {stream[a]} to itself{copies}")
        if pos[a] >= pos[b]:
            bad(1, f"event {nm(a_id)}->{nm(b_id)}: the wait comes before the record in issue order{copies}")
            continue
        waits.setdefault(b, []).append(a)
    by_pos = sorted(range(N), key=pos.__getitem__)
    groups = graph.groups()
    if groups:
        # each stream's nodes in issue order, and each node's place there: the nodes of a group's stream
        # issued between its first and last members are a slice of that list, scanned up to the first
        # outsider (scanning the whole issue order between them was quadratic: 512 groups of 100 nodes
        # issued round-robin over 512 streams took 5 s)
        on_stream: dict[int, list[int]] = {}
        place = [0] * N
        for ni in by_pos:
            seq = on_stream.setdefault(stream[ni], [])
            place[ni] = len(seq)
            seq.append(ni)
    for gname, members in groups.items():
        if len({stream[m] for m in members}) != 1:
            split = ", ".join(f"{nm(nodes[m].id)} on {stream[m]}" for m in members)
            bad(1, f"fusion group {gname!r} runs on several streams ({split})")
            continue
        ps = [pos[m] for m in members]
        if ps != sorted(ps):
            # the first member issued before one listed ahead of it, both named (the group's name alone left the
            # user to compare each member's place in a long order)
            k = next(k for k in range(1, len(ps)) if ps[k] < ps[k - 1])
            bad(1, f"fusion group {gname!r} is not issued in its listed order: its member "
                   f"{nm(nodes[members[k]].id)} is issued before {nm(nodes[members[k - 1]].id)}, listed ahead of it")
        s = stream[members[0]]
        inside = set(members)
        seq = on_stream[s]
        for k in range(place[members[0]], place[members[-1]] + 1):
            if seq[k] not in inside:
                bad(1, f"fusion group {gname!r} is interrupted by {nm(nodes[seq[k]].id)} on stream {s}")
                break
    tdev = _device_findings(graph, plan, bad) if plan.devices > 1 else None
    if len(set(stream)) > max(plan.streams, MAX_STREAMS):
        # stray stream ids (each named above) past the declared count and past the most streams a plan may have: the
        # clocks below are as wide as the streams used, so a plan declaring 1 stream with its 6,000 nodes on 6,000 ids
        # took 330 MB (N^2), 100,000 nodes would take ~90 GB; happens-before is not built (rules 2 and 3), the plan is
        # refused already, and its placement is still judged (rule 4). A few stray ids (a node on stream 5 of a plan
        # of 2) are judged as the streams they name, every rule: the findings of rule 2 to 4 were left unsaid
        _placement(graph, plan, tdev, bad, nm)
        return out

    # ---- happens-before: vector clocks rebuilt from scratch ------------------------------------
    # clocks are indexed by the streams the order uses, renumbered densely: a plan naming stream
    # 10**9 (or -1) must not make the verifier allocate S x S clocks (or wrap a negative index)
    dense = {s: i for i, s in enumerate(sorted(set(stream)))}
    stream = [dense[s] for s in stream]
    S = max(max(stream) + 1, 1) if N else 1
    idx, rep = _clocks(by_pos, stream, waits, pos, S)
    at = _clock_reader(stream, idx, rep)

    def hb(a: int, b: int) -> bool:
        return a != b and at(b, stream[a]) >= idx[a]

    # ---- rule 2: every read sees its data -------------------------------------------------------
    # Every writer on t's chain (t's producer, its root's, and any view between) must happen-before
    # the reader. What happens-before a writer happens-before all the writer does, so that holds
    # exactly when the chain's *latest* writers do, those no other writer of the chain comes after:
    # ``last_writers`` keeps them per view (at most one per stream, mostly one: each view's from the
    # view above it), and the reader's clock must count past each (past: on its own stream the reader
    # itself is counted). All writers are checked, none pruned; the chain is walked only to name those
    # that fail, and only as far up as the view above still sums up a writer that fails.
    def latest(acc: tuple[tuple[int, int, int], ...], new: tuple[tuple[int, int, int], ...]):
        """The latest writers of ``acc`` and the one writer of ``new``: those that happen-before it dropped, and it
        left out where it happens-before one of them. Why not each stream's last writer (as before): a chain of
        20,000 written views whose writers are dealt round-robin over 1,024 streams, each waiting for the one
        before, kept up to 1,024 pairs per view: 1.5 GB and 8 s to verify, where one writer is the latest."""
        w = new[0][2]
        if len(acc) < _WIDE:
            keep = tuple(e for e in acc if e[2] != w and not hb(e[2], w))
        else:   # many concurrent writers: w's clock read once, as a list (a clock read per writer tripled the time)
            clock = _materialize(rep[w])
            clock[stream[w]] = idx[w]
            seen = clock.tolist()
            keep = tuple(e for e in acc if e[2] != w and seen[e[0]] < e[1])
        if len(keep) < len(acc) or not any(hb(w, e[2]) for e in keep):
            return keep + new   # (a writer that some kept one happens-before dropped none: acc is an antichain)
        return keep

    last_writers = _LatestWriters(graph, written, stream, idx, rep, hb, S, latest)

    as_arrays: dict[int, tuple[tuple, np.ndarray, np.ndarray]] = {}   # id of a wide ``lw`` -> it, its streams, indices

    def seen_by(ni: int, lw: tuple[tuple[int, int, int], ...]) -> bool:
        """Whether node ``ni``'s clock counts past each (stream, index, writer) of ``lw``: every writer it sums up
        happens-before ``ni``. Writers latest on many streams (concurrent writes into one chain) are compared in one
        array operation with ``ni``'s clock: a clock read per writer and read cost 20,000 readers of a view written
        on 1,024 streams 20 million reads."""
        own = stream[ni]
        if len(lw) < _WIDE:
            return all(at(ni, s) - (s == own) >= i for s, i, _w in lw)
        kept = as_arrays.get(id(lw))
        if kept is None:   # (``lw`` is kept with its arrays: its id stays its own)
            kept = as_arrays[id(lw)] = (lw, np.array([e[0] for e in lw]), np.array([e[1] for e in lw]))
        clock = _materialize(rep[ni])
        clock[own] = idx[ni] - 1
        return bool((clock[kept[1]] >= kept[2]).all())

    report_reads(2, last_writers, seen_by, lambda ni, w: not hb(w, ni),
                 lambda ni, t, w: f"node {nm(nodes[ni].id)} reads {nm(graph.tensors[t].id)} but its writer "
                                  f"{nm(nodes[w].id)} does not happen-before it (missing event?)")

    # ---- rule 4 and offsets -----------------------------------------------------------------------
    offset, twice = _placement(graph, plan, tdev, bad, nm)
    T = len(graph.tensors)
    if plan.devices > 1 and tdev is None:
        return out   # (no device for every tensor: which roots share an arena is unknown; rule 4 says why)

    # ---- rule 3: no memory reused too early ---------------------------------------------------------
    acc: dict[int, list[int]] = {}
    for ni in range(N):
        for t in graph.node_inputs[ni] + graph.node_outputs[ni]:
            r = graph.root[t]
            if graph.tensors[r].kind != "weight":
                lst = acc.setdefault(r, [])
                if not lst or lst[-1] != ni:
                    lst.append(ni)
    starts = {r for r in range(T) if graph.tensors[r].kind == "input" and graph.root[r] == r}
    ends = {graph.root[t] for t in range(T) if graph.tensors[t].kind == "output"}

    def last_per_stream(r: int) -> tuple[tuple[int, int, int], ...]:
        """(stream, index of r's last access on it, that access), for the streams r is accessed on (one or two,
        mostly). The access itself is kept for ``unordered`` to name (it walked all of r's accesses again for each
        finding: 200 findings of a root read by 200,000 nodes took 34 s)."""
        v: dict[int, int] = {}
        for a in acc.get(r, ()):
            b = v.get(stream[a])
            if b is None or idx[a] > idx[b]:
                v[stream[a]] = a
        return tuple((s, idx[a], a) for s, a in v.items())

    def first_per_stream(b: int) -> tuple[int, ...]:
        """b's first access on each stream it is accessed on. Along a stream the clocks only grow, so an
        access of b counts on any stream at least what b's first access on its own stream counts: the
        first ones stand for all of them."""
        v: dict[int, int] = {}
        for x in acc.get(b, ()):
            if stream[x] not in v or idx[x] < idx[v[stream[x]]]:
                v[stream[x]] = x
        return tuple(v.values())

    # roots are painted in order of first access, so queries are local: a bounded cache keeps the
    # verifier's memory flat on million-tensor graphs
    last_of = lru_cache(maxsize=1 << 14)(last_per_stream)
    first_of = lru_cache(maxsize=1 << 14)(first_per_stream)
    floor_memo: dict[int, np.ndarray] = {}   # the root being painted -> its floor (one entry: see ``floor_of``)

    def floor_of(b: int) -> np.ndarray:
        """Per stream ``t``, how many of ``t``'s nodes happen-before every access of root ``b`` (``_floor`` of b's first
        accesses), for the root now painted: it is compared with every root it covers, then never again."""
        f = floor_memo.get(b)
        if f is None:
            floor_memo.clear()
            f = floor_memo[b] = _floor(first_of(b), stream, idx, rep, S)
        return f

    def wide(a: int, b: int) -> bool:
        """Whether ``before``/``unordered`` compare ``a`` with ``b`` by ``b``'s floor: either is accessed on many
        streams (each access of b checked against each of a's last accesses was streams x streams clock reads per
        pair: 20 fan-outs of 1,024 readers each on 1,024 streams, one root after another, took 9 of 10 s; and b's
        1,024 first accesses for each of 10,000 roots it covers, each read on one stream: 10 million reads, 2.4 s),
        or the floor is at hand already. The floor costs one array minimum per first access of b, once."""
        return b in floor_memo or len(last_of(a)) >= _WIDE or len(first_of(b)) >= _WIDE

    def before(a: int, b: int) -> bool:
        """Every access of root a happens-before every access of root b: on each stream s that a is
        accessed on, every access x of b has counted a's last access there (``at(x, s)``, less x
        itself when x runs on s); b's first access on each of its streams stands for the rest there
        (``first_per_stream``). Only a's streams are compared: on the others a has nothing to order.
        (Comparing whole per-stream vectors cost O(streams) per pair and per access: 6.3 of 8 s verifying
        50,000 nodes on 1024 streams; every access of b, per a: 34 s for 32,000 roots b's range covered,
        b read by 32,000 nodes.)"""
        if a in ends or b in starts:
            return False
        if wide(a, b):
            floor = floor_of(b)
            return all(floor[s] >= last for s, last, _x in last_of(a))
        xs = first_of(b)
        for s, last, _x in last_of(a):
            for x in xs:
                if at(x, s) - (stream[x] == s) < last:
                    return False
        return True

    def unordered(a: int, b: int) -> str:
        """The accesses that make a rule-3 finding of roots ``a`` and ``b`` (``a`` painted first: its first access is
        issued no later than ``b``'s), named: an access of ``a`` that does not happen-before one of ``b``, found by
        the per-stream summaries ``before`` reads. Why: the finding named the two tensors alone, and a plan with
        dozens of accesses of each left the user to search for the event that was missing."""
        ta, tb = nm(graph.tensors[a].id), nm(graph.tensors[b].id)
        if a in ends:
            return f"{ta} holds an output, kept to the end of the run, and {tb} is accessed during the run"
        if b in starts:
            return ("both are inputs, written before the run" if a in starts else
                    f"{tb} is an input, written before the run, and {ta} is accessed during the run")
        same = None
        floor = floor_of(b) if wide(a, b) else None
        for s, last, x in last_of(a):
            if floor is not None and floor[s] >= last:
                continue   # every access of b counts a's last one on s
            for y in first_of(b):
                if at(y, s) - (stream[y] == s) < last:
                    if y != x:
                        return (f"node {nm(nodes[x].id)}, which accesses {ta}, does not happen-before node "
                                f"{nm(nodes[y].id)}, which accesses {tb}")
                    same = x
        return f"node {nm(nodes[same].id)} accesses both (not as an in-place overwrite of {ta} by {tb} that the "\
               "contract allows)" if same is not None else "their accesses are not ordered"

    inplace_pairs: dict[tuple[int, int], list[int]] = {}
    for ni, node in enumerate(nodes):
        # the roots n writes, once per node (per pair it was quadratic on a node of thousands of pairs); not named
        # ``written``, the per-tensor list the closures above read
        roots_written = {graph.root[o] for o in graph.node_outputs[ni]} if node.inplace else set()
        for o_id, i_id in node.inplace:
            a, b = graph.root[graph.tensor_index[i_id]], graph.root[graph.tensor_index[o_id]]
            # n must produce out's root, and not write in's root too (a view output: it would land on out)
            if graph.producer[b] == ni and a not in roots_written:
                inplace_pairs.setdefault((a, b), []).append(ni)

    def inplace_ok(a: int, b: int) -> bool:
        """Some node ``n`` that overwrites in's root ``a`` with out's root ``b`` is ``a``'s last access and ``b``'s
        first: every other access of ``a`` happens-before ``n`` (on each stream, ``a``'s last access there is
        counted by ``n``'s clock; on ``n``'s own stream that is ``n`` or an earlier node), and ``n`` happens-before
        every other access of ``b`` (``b``'s first access on each stream counts ``n``, or is ``n``: along a stream
        the clocks only grow). By those per-stream summaries, not access by access: walking ``a``'s readers for
        each overlapping ``b`` was quadratic (10,000 nodes each overwriting a slice of one input took 7 s)."""
        if a in ends or b in starts:
            return False
        for n in inplace_pairs.get((a, b), ()):
            sn, inn = stream[n], idx[n]
            if all(at(n, s) >= last for s, last, _x in last_of(a)) and all(
                    x == n or at(x, sn) >= inn for x in first_of(b)):
                return True
        return False

    # the arena roots with definite bytes: one offset (misplaced or not, see ``_placement``) on a known device
    roots = [r for r in range(T) if graph.root[r] == r and graph.tensors[r].kind != "weight"
             and graph.tensors[r].size > 0 and offset[r] is not None and r not in twice
             and (tdev is None or tdev[r] is not None)]

    def first_pos(r: int) -> int:
        return -1 if r in starts else min(map(pos.__getitem__, acc.get(r, ())), default=N)

    roots.sort(key=lambda r: (0 if tdev is None else tdev[r], first_pos(r), r))
    arena = _Painting()
    painting = 0
    for b in roots:
        if tdev is not None and tdev[b] != painting:  # one arena per device: a fresh painting
            painting, arena = tdev[b], _Painting()
        checked = set()
        for a in arena.paint(offset[b], offset[b] + graph.tensors[b].size, b):
            if a not in checked:
                checked.add(a)
                if before(a, b) or inplace_ok(a, b):
                    continue
                if kept[3] >= MAX_REPORTED:
                    out.total += 1   # (counted exactly: the pair was checked; only its message is not made)
                else:
                    bad(3, f"tensors {nm(graph.tensors[a].id)} and {nm(graph.tensors[b].id)} overlap in "
                           f"the arena but not every access of one happens-before every access of the other: "
                           + unordered(a, b))
    if fused_groups:
        for msg in _fused_overlaps(graph, plan, pos, offset, tdev, nm, set(roots)):
            bad(3, msg)
    return out


def _placement(graph: Graph, plan: Plan, tdev: list[int | None] | None, bad, nm) -> tuple[list[int | None], set[int]]:
    """Rule 4: each tensor placed once, at its graph size, views at their parent's offset plus ``view_offset``, roots
    aligned and inside the arena (and their device's arena). Returns each tensor's offset (by graph index; None where
    the plan gives none) and the tensors placed more than once (which of their offsets holds is unknown).

    Rule 3 is then judged on every arena root with one offset, misplaced or not (a root past the arena or off the
    alignment still has definite bytes), the others left out. Why: a plan with any rule-4 finding stopped before rule
    3, so a plan that placed one tensor past the arena and also reused another's bytes too early was reported for the
    first alone; a user who fixed that was refused again for the second."""
    T = len(graph.tensors)
    offset: list[int | None] = [None] * T
    seen = [False] * T
    twice: set[int] = set()
    tensor_twin = unicode_twins(graph.tensor_index)
    for tid, off, size in plan.tensors:
        t = graph.tensor_index.get(tid)
        if t is None:
            bad(4, f"plan places unknown tensor {tid!r}{tensor_twin(tid)}")
            continue
        if seen[t]:
            bad(4, f"tensor {nm(tid)} is placed twice")
            twice.add(t)
        seen[t] = True
        if size != graph.tensors[t].size:
            bad(4, f"tensor {nm(tid)} has size {size} in the plan but {graph.tensors[t].size} in the graph")
        offset[t] = off
    unplaced = [tensor.id for t, tensor in enumerate(graph.tensors) if not seen[t]]
    if unplaced:
        bad(4, "plan does not place " + some_of(unplaced, "tensor", nm), len(unplaced))
    align = graph.alignment
    for t, tensor in enumerate(graph.tensors):
        r = graph.root[t]
        in_arena = graph.tensors[r].kind != "weight"
        off = offset[t]
        if not in_arena:
            if off is not None:
                bad(4, f"tensor {nm(tensor.id)} lives in weight memory but has offset {off}")
            continue
        if off is None:
            if seen[t]:   # (one not placed at all is said above: "has no offset" too was two findings, one cause)
                bad(4, f"tensor {nm(tensor.id)} lives in the arena but has no offset")
            continue
        if tensor.view_of is not None:
            parent = graph.tensor_index[tensor.view_of]
            poff = offset[parent]
            if poff is not None and off != poff + tensor.view_offset:
                bad(4, f"view {nm(tensor.id)} is at {off}, not at its parent {nm(tensor.view_of)}'s "
                       f"offset {poff} + view_offset {tensor.view_offset}")
            continue
        if off < 0 or off % align:
            bad(4, f"tensor {nm(tensor.id)} offset {off} is not a non-negative multiple of alignment {align}")
        elif off % plan.alignment:  # the plan's own alignment (rule 4), which a file may set apart from the graph's
            bad(4, f"tensor {nm(tensor.id)} offset {off} is not a multiple of the plan's alignment {plan.alignment}")
        if off + tensor.size > plan.arena_bytes:
            bad(4, f"tensor {nm(tensor.id)} [{off}, {off + tensor.size}) ends past arena_bytes {plan.arena_bytes}")
        elif tdev is not None and tdev[t] is not None and off + tensor.size > plan.device_arena_bytes[tdev[t]]:
            bad(4, f"tensor {nm(tensor.id)} [{off}, {off + tensor.size}) ends past device {tdev[t]}'s arena of "
                   f"{plan.device_arena_bytes[tdev[t]]} bytes")
    # a false lower bound is a rule-4 finding of its own (a plan whose lower_bound_bytes exceeded its arena was
    # reported under rule 4 alone, its overlapping roots left unsaid: tests/test_verify_oracle65.py)
    if plan.lower_bound_bytes > plan.arena_bytes:
        bad(4, f"lower_bound_bytes {plan.lower_bound_bytes} exceeds arena_bytes {plan.arena_bytes}: "
               "the bound is false")
    return offset, twice


def _fused_overlaps(graph: Graph, plan: Plan, pos: list[int], offset: list[int | None],
                    tdev: list[int | None] | None, nm, placed: set[int]) -> list[str]:
    """``verify(fused_groups=True)``'s own findings (see ``verify``): two roots that share bytes (on one device) and
    are both touched by one fusion group of several nodes that can run as one kernel, each named with a member
    touching it. A group can run as one kernel unless an event after a member other than its last is waited on by
    a node issued no later than the last member (``runtime.step.unfusable_groups``' rule). The roots of each group
    are swept in address order, each compared with the one reaching furthest before it: one finding per root that
    overlaps an earlier one, O(r log r) per group of r roots. ``placed``: the roots rule 3 judges (``check``)."""
    tensors, root = graph.tensors, graph.root
    groups = {g: m for g, m in graph.groups().items() if len(m) > 1}
    if not groups:
        return []
    last_of: dict[int, tuple[str, int]] = {}   # a member other than the last -> (its group, the last member)
    for g, members in groups.items():
        last = max(members, key=pos.__getitem__)
        for m in members:
            if m != last:
                last_of[m] = (g, last)
    unfused = set()
    for a_id, b_id in plan.events:
        a, b = graph.node_index.get(a_id), graph.node_index.get(b_id)
        if a in last_of and b is not None and pos[b] <= pos[last_of[a][1]]:
            unfused.add(last_of[a][0])
    out = []
    for g, members in groups.items():
        if g in unfused:
            continue
        by: dict[int, int] = {}   # each root the group touches -> its first member touching it
        for m in members:
            for t in graph.node_inputs[m] + graph.node_outputs[m]:
                r = root[t]
                if r in placed:   # (rule 3's roots: in the arena, of some size, with definite bytes)
                    by.setdefault(r, m)
        spans = sorted((0 if tdev is None else tdev[r], offset[r], offset[r] + tensors[r].size, r) for r in by)
        reach: tuple[int, int, int] | None = None   # (device, end, root) of the furthest-reaching root so far
        for dev, lo, hi, r in spans:
            if reach is not None and reach[0] == dev and lo < reach[1]:
                a = reach[2]
                out.append(f"tensors {nm(tensors[a].id)} and {nm(tensors[r].id)} overlap in the arena and fusion group "
                           f"{g!r} touches both ({nm(graph.nodes[by[a]].id)} accesses {nm(tensors[a].id)}, "
                           f"{nm(graph.nodes[by[r]].id)} accesses {nm(tensors[r].id)}; fusion groups counted as one "
                           "kernel, which may write one while it still reads the other)")
            if reach is None or reach[0] != dev or hi > reach[1]:
                reach = (dev, hi, r)
    return out


def _foreign_note(graph: Graph, plan: Plan) -> str | None:
    """The lead rule-1 finding for a plan made for another graph, naming the first node that differs, else None. Why:
    such a plan was refused as "order names unknown node 'op0'" and "order is missing node 'a' and 3 more", as if a
    node had been dropped from a plan of this graph; the findings after it are kept (no check is skipped). A plan is
    another graph's when its order lacks some of the graph's nodes and names nodes the graph does not have, or names
    another graph (a renamed graph with the same nodes is judged as usual, and one stray id in events or tensors has
    its own finding)."""
    listed = {n for n, _ in plan.order}
    if len(listed & graph.node_index.keys()) == len(graph.nodes):
        return None
    made = f" (it was made for graph {_short(plan.graph)})" if plan.graph and plan.graph != graph.name else ""
    where = f"the plan does not belong to graph {_short(graph.name)}{made}: "
    nid = next((n for n, _ in plan.order if n not in graph.node_index), None)
    if nid is not None:
        return where + (f"its order names node {_short(nid)}, which the graph does not have"
                        + unicode_twins(graph.node_index)(nid))
    if made:
        first = next(n.id for n in graph.nodes if n.id not in listed)
        return where + f"its order has no node {_short(first)} of the graph"
    return None


def _last_per_stream(waited: list[int], stream: list[int], idx: list[int], pos: list[int]) -> list[int]:
    """Of the nodes a node waits on (its events' ``after``, all issued before it), the last on each stream, the
    latest issued first: a stream's nodes run in order, so the clock of its last one counts all its earlier
    ones, and joining theirs too changes nothing; and a node the joined clocks count already adds nothing either
    (the caller skips it), which the latest-first order makes likely. Joining every event cost O(streams) each:
    a plan file repeating one event a million times (35 MB) took 44 s to verify on 1024 streams; now the joins
    are at most one per stream and node, and a node waiting on every earlier one joins one clock."""
    if len(waited) < 2:
        return waited
    last: dict[int, int] = {}
    for a in waited:
        b = last.get(stream[a])
        if b is None or idx[a] > idx[b]:
            last[stream[a]] = a
    return sorted(last.values(), key=pos.__getitem__, reverse=True)


#: a node's clock is kept as (a shared list, the components where it differs from that list) while those
#: differences are at most one in ``_SHARE_SLACK`` of the streams: one pointer per node for the nodes of a
#: stream between its joins, and a few entries for a join that takes another clock over (a fan-out's
#: branches, each waiting on the fork)
_SHARE_SLACK = 16


def _clocks(by_pos: list[int], stream: list[int], waits: dict[int, list[int]], pos: list[int],
            S: int) -> tuple[list[int], list[tuple[np.ndarray, dict[int, int] | None]]]:
    """Vector clocks of happens-before, from the order's streams and the events' waits: ``idx[x]``, x's 1-based
    place on its stream, and ``rep[x] = (base, diff)``: x's clock counts ``diff.get(t, base[t])`` nodes of stream
    ``t`` (t not x's own stream; on its own stream ``idx[x]``, and ``base`` holds no more than that).

    Why not a row per node: N x streams ints (800 MB for 100,000 nodes on 1,024 streams). A clock changes only
    where a node's wait raises it; the nodes between two such joins share their stream's last clock (one object,
    their own count aside), and a join whose clock is some stored clock but for a few streams stores only those.
    Memory is one reference per node plus an array per join that raises more than ``S / _SHARE_SLACK``
    components of every clock it could share: a few per fork/join layer, not one per node; such an array is kept in
    the narrowest unsigned type its counts fit (``_narrow``). The clocks are numpy arrays (int64 while a join is
    made), so a join's component-wise maximum and its count of differences are one C loop each: as Python
    lists they were most of the verifier's time on many streams (20,000 random-DAG nodes dealt over 1,024 streams:
    60,000 joins of 1,024 components, ~4 s)."""
    N = len(stream)
    idx = [0] * N
    count = [0] * S
    zero: tuple[np.ndarray, dict[int, int] | None] = (np.zeros(S, dtype=np.uint8), None)   # (``_narrow``)
    rep = [zero] * N
    tip = [zero] * S
    slack = S // _SHARE_SLACK
    for ni in by_pos:
        s = stream[ni]
        cur = tip[s]
        merged: np.ndarray | None = None
        bases: list[np.ndarray] = []
        for a in _last_per_stream(waits.get(ni, ()), stream, idx, pos):
            sa, ia = stream[a], idx[a]
            if sa == s or not ia:   # (its own stream's earlier nodes are counted already)
                continue
            if (merged[sa] if merged is not None else _component(cur, sa)) >= ia:
                continue   # a is counted already, and so is all it counts
            if merged is None:
                merged = _materialize(cur)
                bases.append(cur[0])
            va, oa = rep[a]
            np.maximum(merged, va, out=merged)
            if oa:
                _raise_to(merged, oa)
            merged[sa] = ia
            bases.append(va)
        count[s] += 1
        idx[ni] = count[s]
        if merged is not None:
            merged[s] = count[s]
            cur = _shared_or_own(merged, bases, s, slack)
            tip[s] = cur
        rep[ni] = cur
    return idx, rep


#: ``before`` compares roots through the later one's floor (``_floor``) where either is accessed on this many streams
_WIDE = 16


def _floor(xs, stream: list[int], idx: list[int], rep: list[tuple[np.ndarray, dict[int, int] | None]],
           S: int) -> np.ndarray:
    """Per stream ``t``, the fewest nodes of ``t`` that happen-before a node of ``xs`` (its own stream's nodes before
    it counted on its own stream): a root's accesses all count its stream-``t`` predecessors up to that many, so a
    root accessed last on ``t`` at index ``i`` happens-before all of them exactly when ``floor[t] >= i``. One array
    minimum per node of ``xs`` in C, where reading each clock at each stream of the other root was a Python call per
    pair (streams x streams per pair of roots). No node in ``xs``: no bound on any stream."""
    out: np.ndarray | None = None
    for x in xs:
        v = _materialize(rep[x])
        v[stream[x]] = idx[x] - 1
        if out is None:
            out = v
        else:
            np.minimum(out, v, out=out)
    return np.full(S, np.iinfo(np.int64).max, dtype=np.int64) if out is None else out


def _component(r: tuple[np.ndarray, dict[int, int] | None], t: int) -> int:
    """Component ``t`` of a clock kept as ``(base, diff)`` (not its node's own stream: see ``_clocks``)."""
    base, diff = r
    if diff:
        v = diff.get(t)
        if v is not None:
            return v
    return int(base[t])


def _materialize(r: tuple[np.ndarray, dict[int, int] | None]) -> np.ndarray:
    """A clock kept as ``(base, diff)`` as a fresh array."""
    base, diff = r
    out = base.astype(np.int64)   # (a copy, and the arithmetic's width: a stored clock may be narrower, ``_narrow``)
    if diff:
        if len(diff) < _MANY:
            for t, v in diff.items():
                out[t] = v
        else:
            out[np.fromiter(diff.keys(), np.intp, len(diff))] = np.fromiter(diff.values(), np.int64, len(diff))
    return out


#: a clock's differences (``diff``) are read into or out of an array in one numpy operation from this many on (one
#: Python step per difference below it: 64 differences per join of a 50-layer mesh on 1,024 streams were 3 s)
_MANY = 8


def _raise_to(merged: np.ndarray, diff: dict[int, int]) -> None:
    """``merged`` raised to ``diff``'s components where they are larger (a clock's differences from its base)."""
    if len(diff) < _MANY:
        for t, v in diff.items():
            if merged[t] < v:
                merged[t] = v
        return
    keys = np.fromiter(diff.keys(), np.intp, len(diff))
    merged[keys] = np.maximum(merged[keys], np.fromiter(diff.values(), np.int64, len(diff)))


#: the memory one of a clock's differences from a stored clock takes (a dict entry and its int objects, about)
_DIFF_BYTES = 64


def _narrow(clock: np.ndarray) -> np.ndarray:
    """A clock (int64, every component >= 0) stored in the narrowest unsigned type that holds its largest count
    (``np.min_scalar_type``): one byte a stream while no stream has run 256 nodes (a 100-layer mesh on 1,024 streams,
    102,400 nodes: 1 KB a node's clock, not 8 KB, which were 800 MB). Readers widen it (``_materialize``, ``int`` in
    ``at``): a narrow scalar less one wraps around."""
    return clock.astype(np.min_scalar_type(int(clock.max()) if len(clock) else 0), copy=False)


def _shared_or_own(merged: np.ndarray, bases: list[np.ndarray], s: int,
                   slack: int) -> tuple[np.ndarray, dict[int, int] | None]:
    """``merged`` (a join's clock on stream ``s``) kept as the stored array it differs least from, of the clock it
    joined last and its stream's own (``bases[-1]`` and ``bases[0]``), with the differences, where they are at most
    ``slack`` streams (``s`` itself aside: a node's own count is its ``idx``); else as an array of its own. Why those
    two: a join mostly takes over the clock it waited on (a fork's branch the fork's) or adds a few streams to its
    own; trying every clock it joined cost streams x waits per join (a join of 1,023 branches: twice the time).
    Differences are kept only while they take less memory than an array of its own in its narrow type (``_narrow``,
    ``_DIFF_BYTES`` a difference): 64 of them (a dict) took 5 KB where the array takes 1 KB (a 100-layer mesh on
    1,024 streams, each node waiting on its neighbours' columns)."""
    narrow = _narrow(merged)   # (compared in the stored clocks' own type: a mixed-type compare is 2x slower)
    best, fewest = None, min(slack, narrow.nbytes // _DIFF_BYTES) + 1
    for base in (bases[-1], bases[0]) if len(bases) > 1 else bases:
        k = int(np.count_nonzero(narrow != base)) - bool(merged[s] != base[s])
        if k < fewest:
            best, fewest = base, k
            if not k:
                return base, None
    if best is None:
        return narrow, None
    return best, {t: int(merged[t]) for t in np.flatnonzero(merged != best).tolist() if t != s} or None


def _clock_reader(stream: list[int], idx: list[int], rep: list[tuple[np.ndarray, dict[int, int] | None]]):
    """``at(x, t)``: how many nodes of stream ``t`` happen-before node ``x`` or are it (``idx[x]`` on its own)."""

    def at(x: int, t: int) -> int:
        if t == stream[x]:
            return idx[x]
        base, diff = rep[x]
        if diff:
            v = diff.get(t)
            if v is not None:
                return v
        return int(base[t])   # (a Python int: a stored clock may be narrow and unsigned, ``_narrow``)

    return at


class _Painting:
    """Who painted each byte of one arena last: disjoint segments ``[start, end)`` with their owner, in
    address order, kept in blocks of at most ``2 * _BLOCK`` segments. One list of every segment moved all
    the segments after each insertion: roots painted from the arena's top down were quadratic (300,000 of them
    took 10 s more than painted upwards, a million ran for many minutes)."""

    _BLOCK = 512

    def __init__(self) -> None:
        self.starts: list[list[int]] = []   # per block, its segments' starts, ends and owners
        self.ends: list[list[int]] = []
        self.owners: list[list[int]] = []
        self.heads: list[int] = []          # each block's first start

    def paint(self, lo: int, hi: int, owner: int) -> list[int]:
        """Paint ``[lo, hi)`` (``lo < hi``) with ``owner``; return the owners of the segments it covers (wholly or
        in part), in address order."""
        starts, ends, owners, heads = self.starts, self.ends, self.owners, self.heads
        if not heads:
            starts.append([lo])
            ends.append([hi])
            owners.append([owner])
            heads.append(lo)
            return []
        b0 = max(bisect_right(heads, lo) - 1, 0)
        i0 = bisect_right(starts[b0], lo) - 1
        if i0 < 0 or ends[b0][i0] <= lo:
            i0 += 1
        # the covered segments run from (b0, i0) up to the first segment starting at or after hi: (b1, i1)
        b1, i1 = b0, i0
        covered: list[int] = []
        while True:
            if i1 == len(starts[b1]):
                if b1 + 1 == len(starts) or starts[b1 + 1][0] >= hi:
                    break
                b1, i1 = b1 + 1, 0
                continue
            if starts[b1][i1] >= hi:
                break
            covered.append(owners[b1][i1])
            i1 += 1
        new_s, new_e, new_o = [lo], [hi], [owner]
        if covered:
            first_s = starts[b0][i0] if i0 < len(starts[b0]) else starts[b0 + 1][0]
            first_b, first_i = (b0, i0) if i0 < len(starts[b0]) else (b0 + 1, 0)
            if first_s < lo:   # the first covered segment keeps its bytes below lo
                new_s, new_e, new_o = [first_s, lo], [lo, hi], [owners[first_b][first_i], owner]
            last_b, last_i = (b1, i1 - 1) if i1 > 0 else (b1 - 1, len(starts[b1 - 1]) - 1)
            if ends[last_b][last_i] > hi:   # and the last one its bytes from hi on
                new_s.append(hi)
                new_e.append(ends[last_b][last_i])
                new_o.append(owners[last_b][last_i])
        # splice: block b0 keeps its part before i0, then the new segments, then block b1's part from i1
        if b1 == b0:
            starts[b0][i0:i1], ends[b0][i0:i1], owners[b0][i0:i1] = new_s, new_e, new_o
        else:
            starts[b0][i0:] = new_s + starts[b1][i1:]
            ends[b0][i0:] = new_e + ends[b1][i1:]
            owners[b0][i0:] = new_o + owners[b1][i1:]
            del starts[b0 + 1:b1 + 1], ends[b0 + 1:b1 + 1], owners[b0 + 1:b1 + 1], heads[b0 + 1:b1 + 1]
        heads[b0] = starts[b0][0]
        if len(starts[b0]) > 2 * self._BLOCK:   # split in two
            h = len(starts[b0]) // 2
            for lists in (starts, ends, owners):
                lists.insert(b0 + 1, lists[b0][h:])
                del lists[b0][h:]
            heads.insert(b0 + 1, starts[b0 + 1][0])
        return covered


def _device_findings(graph: Graph, plan: Plan, bad) -> list[int | None] | None:
    """Multi-device plans: each stream runs on one device (rule 1); every tensor has a device, views
    share their root's, and a node touches only its own device's tensors except a ``COPY``, which reads its
    own device's and may write another's (rule 4).
    Returns each tensor's device (by graph index; None for one the plan gives none in range), or None when the
    device lists do not match the plan's entries."""
    D = plan.devices
    if len(plan.device_arena_bytes) != D:
        bad(4, f"plan has {D} devices but {len(plan.device_arena_bytes)} device_arena_bytes")
        return None
    for d, a in enumerate(plan.device_arena_bytes):
        if a > plan.arena_bytes:
            bad(4, f"device {d}'s arena of {a} bytes exceeds arena_bytes {plan.arena_bytes}")
        elif a < 0:   # a byte count (a device without tensors was accepted with -5)
            bad(4, f"device {d}'s arena of {a} bytes is negative")
    if len(plan.node_devices) != len(plan.order) or len(plan.tensor_devices) != len(plan.tensors):
        bad(4, "a multi-device plan needs a device for every order entry and every tensor")
        return None
    # a node's device, None where it is unknown (out of range: rule 1 names it; or not in ``order``): the checks below
    # skip it, where a 0 here read a node on device 7 as on device 0 and blamed it for touching device 1's tensors
    ndev: list[int | None] = [None] * len(graph.nodes)
    nm = twin_spelling(graph.tensor_index, graph.node_index)
    stream_dev: dict[int, tuple[int, str]] = {}
    for (nid, s), d in zip(plan.order, plan.node_devices):
        if not 0 <= d < D:
            bad(1, f"node {nm(nid)} runs on device {d}, outside 0..{D - 1}")
            continue
        if nid in graph.node_index:
            ndev[graph.node_index[nid]] = d
        other = stream_dev.setdefault(s, (d, nid))
        if other[0] != d:
            bad(1, f"stream {s} runs {nm(other[1])} on device {other[0]} and {nm(nid)} on device {d}: a stream "
                   "belongs to one device")
    # a tensor's device, None where unknown (out of range: named here; or not in ``tensors``: rule 4 names it): the
    # checks below and rule 3 leave it out. Why not stop at the first (as before): the other tensors' findings and
    # rule 3 went unsaid for a plan with one device id out of range
    tdev: list[int | None] = [None] * len(graph.tensors)
    for (tid, _off, _size), d in zip(plan.tensors, plan.tensor_devices):
        t = graph.tensor_index.get(tid)
        if t is None:
            continue
        if not 0 <= d < D:
            bad(4, f"tensor {nm(tid)} lives on device {d}, outside 0..{D - 1}")
            continue
        tdev[t] = d
    root = graph.root
    for t, tensor in enumerate(graph.tensors):
        if tdev[t] is not None and tdev[root[t]] is not None and tdev[t] != tdev[root[t]]:
            bad(4, f"view {nm(tensor.id)} is on device {tdev[t]} but its root "
                   f"{nm(graph.tensors[root[t]].id)} is on device {tdev[root[t]]}")
    for ni, node in enumerate(graph.nodes):
        if ndev[ni] is None:
            continue
        if node.op == COPY_OP:
            # a COPY crosses devices as a push, issued on its source's device (docs/format.md): a plan putting it on
            # the destination's stream was accepted, and an executor then ran a pull the contract does not describe
            for t in graph.node_inputs[ni]:
                if tdev[root[t]] is not None and tdev[root[t]] != ndev[ni]:
                    bad(4, f"COPY node {nm(node.id)} runs on device {ndev[ni]} but its source {nm(graph.tensors[t].id)} "
                           f"is on device {tdev[root[t]]}: a COPY runs on its source's device (a push)")
            continue
        for t in graph.node_inputs[ni] + graph.node_outputs[ni]:
            if tdev[root[t]] is not None and tdev[root[t]] != ndev[ni]:
                bad(4, f"node {nm(node.id)} on device {ndev[ni]} accesses {nm(graph.tensors[t].id)} on device "
                       f"{tdev[root[t]]} (only a COPY node may cross devices)")
    return tdev


class _ChainFold:
    """``of(j)``, for a tensor ``j`` with a producer: ``leaf(w)`` of every writer ``w`` on ``j``'s view
    chain (``j``'s producer and those of the tensors above it), combined with ``join``. Memoized per
    view, each view's value from the one above it, so the reads of a chain of k views that each have
    a producer cost O(k) joins in all, where walking every writer for every read costs O(k^2)."""

    def __init__(self, graph: Graph, written: list[int], leaf, join):
        self.tensors, self.tindex, self.producer = graph.tensors, graph.tensor_index, graph.producer
        self.written, self.leaf, self.join = written, leaf, join
        self.memo: dict[int, Any] = {}

    def of(self, j: int):
        tensors, memo = self.tensors, self.memo
        if tensors[j].view_of is None:  # a root: its producer is its only writer
            return self.leaf(self.producer[j])
        chain = []
        while j >= 0 and j not in memo:  # up to a known view, or past the root
            chain.append(j)
            parent = tensors[j].view_of
            j = -1 if parent is None else self.written[self.tindex[parent]]
        acc = memo[j] if j >= 0 else None
        for c in reversed(chain):  # down again, each from the one above
            v = self.leaf(self.producer[c])
            acc = v if acc is None else self.join(acc, v)
            memo[c] = acc
        return acc


class _LatestWriters(_ChainFold):
    """``_ChainFold`` of the latest writers of each view (``(stream, index, writer)``, at most one per stream), ``join``
    (``latest``) while they are few; once ``_WIDE`` or more, kept down the chain in two mutable arrays indexed by
    stream (``lat_idx``, ``lat_w``: -1 where none), a tuple made only for the view asked and every ``_CHECKPOINT``-th
    view walked (so a later ask above it walks at most that many). Why: a tuple of up to 1,024 writers per view, each
    filtered from the one above in Python, cost 20,000 views written round-robin over 1,024 streams ~20 million steps
    and one tuple per view (162 MB); the arrays drop the writers the new one's clock counts in one operation."""

    def __init__(self, graph: Graph, written: list[int], stream: list[int], idx: list[int], rep, hb, S: int, join):
        super().__init__(graph, written, lambda w: ((stream[w], idx[w], w),), join)
        self.stream, self.idx, self.rep, self.hb, self.S = stream, idx, rep, hb, S

    def of(self, j: int):
        tensors, memo, producer, stream, idx = self.tensors, self.memo, self.producer, self.stream, self.idx
        if tensors[j].view_of is None:
            return self.leaf(producer[j])
        asked = j
        chain = []
        while j >= 0 and j not in memo:
            chain.append(j)
            parent = tensors[j].view_of
            j = -1 if parent is None else self.written[self.tindex[parent]]
        acc = memo[j] if j >= 0 else None
        lat_idx = lat_w = None
        for step, c in enumerate(reversed(chain)):
            w = producer[c]
            if lat_idx is None:
                v = self.leaf(w)
                acc = v if acc is None else self.join(acc, v)
                if len(acc) >= _WIDE:
                    lat_idx, lat_w = np.full(self.S, -1, dtype=np.int64), np.full(self.S, -1, dtype=np.int64)
                    for s, i, x in acc:
                        lat_idx[s], lat_w[s] = i, x
                memo[c] = acc
                continue
            # the writers w's clock counts (they happen-before it), read off its (base, diff) form, not a copy of it
            base, diff = self.rep[w]
            sw = stream[w]
            live = lat_idx >= 0
            drop = live & (lat_idx <= base)
            for t, v in (diff or {}).items():
                drop[t] = live[t] and lat_idx[t] <= v
            drop[sw] = live[sw] and lat_idx[sw] <= idx[w]
            if drop.any():
                lat_idx[drop] = -1
                lat_w[drop] = -1
                add = True   # (one dropped: w happens-before none left, as the kept ones are an antichain)
            else:
                add = not any(self.hb(w, x) for x in lat_w[live].tolist())
            if add:
                lat_idx[sw], lat_w[sw] = idx[w], w
            if c == asked or step % _CHECKPOINT == 0:
                live = np.flatnonzero(lat_idx >= 0)
                memo[c] = tuple(zip(live.tolist(), lat_idx[live].tolist(), lat_w[live].tolist()))
        return memo[asked]


#: views walked between two kept tuples of ``_LatestWriters`` in its array form
_CHECKPOINT = 256


def _nearest_written(graph: Graph) -> list[int]:
    """For each tensor, the nearest tensor at or above it on its view chain (itself, its parent, ...
    its root) that has a producer, or -1; each view is computed once, from its parent. The verifier's
    own copy of ``Graph.written``: it derives the accesses it checks from the graph's plain fields."""
    tensors, tindex, producer = graph.tensors, graph.tensor_index, graph.producer
    written: list[int | None] = [None] * len(tensors)
    for t in range(len(tensors)):
        chain = []
        j = t
        while written[j] is None:  # up to a tensor already known, or past the root
            chain.append(j)
            parent = tensors[j].view_of
            if parent is None:
                break
            j = tindex[parent]
        w = -1 if written[j] is None else written[j]
        for c in reversed(chain):
            if producer[c] >= 0:
                w = c
            written[c] = w
    return written  # type: ignore[return-value]
