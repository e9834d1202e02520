"""Session 62 (mutation62): mutation testing of the modules that decide safety, at the faults they are there to stop.

Rounds 55-61 drew their mutants evenly over a module's comparisons, ``and``/``or`` operands, guards and ``+ 1``s
(round 55 sampled ``verify``, ``lifetimes``, ``events`` and ``planfile`` that way, round 56 ``solvers/check``). This
round writes most of its mutants by hand, each a fault a planner or verifier of multi-stream plans can really have,
at the line that stops it: an interval end off by one, ``<`` for ``<=``, a happens-before edge or an event dropped,
a clock counting one too few or too many, an alignment or view offset ignored, a view's root ignored, in-place pairs
ignored or taken the wrong way round, a multi-device COPY issued on the wrong device or in another order, a stream
put on two devices. Targets: ``verify.py`` (rules 1-4, the clocks, the painting, the device rules), ``lifetimes.py``
(the accesses, intervals, thresholds, in-place pairs), ``reuse.py``, ``optimize/events.py`` (``wait_pairs``' event
choice), ``schedule.schedule_with_events``, ``solvers/check.py``, ``planfile.check_plan_fields``,
``io.load_safe_pair``, ``devices/rewrite.py`` and ``devices/split.check_capacity``; plus an evenly spaced sample of
rounds 55-61's operators over the modules no round sampled (``reuse.py``, ``devices/rewrite.py``,
``io/minimalloc.py``).

A hand mutant is ``(target, old text, new text, what it breaks)``: ``old`` must occur exactly once in the module
(``--list`` checks every one), and the mutant is the module with it replaced. Its tests are its target's.

Run from a checkout: ``PYTHONPATH=$PWD python docs/experiments/mutation_s62.py [--only verify,lifetimes] [--list]
[--ids 3,17] [--tests tests/x.py] [--without tests/test_mutation_round62.py] [--timeout 60] [--retry 180]``.
Round 61's run is imported, not copied: its temporary tree, round 59's ``_run`` (``pytest -x -q``, a timeout
reported apart and rerun once at ``--retry`` seconds), round 55's evenly spaced ``pick`` and round 61's
``candidates``/``mutate`` for the sampled operators.
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutation_s55 as s55  # noqa: E402  (round 55's driver: the evenly spaced pick)
import mutation_s59 as s59  # noqa: E402  (round 59's run: a timeout apart)
import mutation_s61 as s61  # noqa: E402  (round 61's candidates and mutate: rounds 55-61's operators)

R62 = "tests/test_mutation_round62.py"
#: target -> (module, fast test files (or node ids) that cover it)
TARGETS: dict[str, tuple[str, list[str]]] = {
    "verify": ("memplan/verify.py", [R62, "tests/test_verify.py", "tests/test_mutants.py",
                                     "tests/test_mutation_round55.py", "tests/test_verify_round30.py"]),
    "devverify": ("memplan/verify.py", [R62, "tests/test_devices.py", "tests/test_hostile_round37_devices.py"]),
    "lifetimes": ("memplan/lifetimes.py", [R62, "tests/test_lifetimes.py", "tests/test_mutants.py",
                                           "tests/test_precedence.py", "tests/test_bounds.py",
                                           "tests/test_mutation_round55.py"]),
    "reuse": ("memplan/reuse.py", [R62, "tests/test_reuse_round34.py", "tests/test_reuse_round35.py",
                                   "tests/test_reuse_round36.py", "tests/test_review_round36c_reuse.py"]),
    "events": ("memplan/optimize/events.py", [R62, "tests/test_optimize_fast.py", "tests/test_schedule.py",
                                              "tests/test_mutation_round55.py"]),
    "schedule": ("memplan/schedule.py", [R62, "tests/test_schedule.py", "tests/test_lifetimes.py"]),
    "check": ("memplan/solvers/check.py", [R62, "tests/test_mutants.py", "tests/test_solver_round42.py"]),
    "planfile": ("memplan/planfile.py", [R62, "tests/test_hostile_round37_fields.py",
                                         "tests/test_roundtrip_round27.py", "tests/test_mutation_round55.py"]),
    "io": ("memplan/io/__init__.py", [R62, "tests/test_io_round50.py", "tests/test_io_round60.py"]),
    "rewrite": ("memplan/devices/rewrite.py", [R62, "tests/test_devices.py", "tests/test_devices_round29.py"]),
    "split": ("memplan/devices/split.py", [R62, "tests/test_devices.py"]),
    "minimalloc": ("memplan/io/minimalloc.py", [R62, "tests/test_minimalloc_csv.py"]),
}

_IN = "    for ni in range(N):\n        for t in graph.node_inputs[ni] + graph.node_outputs[ni]:"
#: (target, old, new, what it breaks); ids in this order, then the sampled operators'
HAND: list[tuple[str, str, str, str]] = [
    # ---- verify: rule 1 (order, events, streams) -------------------------------------------------------------
    ("verify", "if stream[a] == stream[b]:", "if False:", "an event within one stream accepted"),
    ("verify", "if pos[a] >= pos[b]:", "if pos[a] > pos[b]:", "an event from a node to itself accepted"),
    ("verify", "waits.setdefault(b, []).append(a)", "pass", "every event dropped"),
    ("verify", "or s < 0 or s >= plan.streams:", "or s < 0 or s > plan.streams:", "stream == streams accepted"),
    ("verify", "if ps != sorted(ps):", "if False:", "a group issued out of its listed order"),
    ("verify", "            if seq[k] not in inside:", "            if False:", "a group interrupted on its stream"),
    # ---- verify: the clocks (happens-before) ---------------------------------------------------------------------
    ("verify", "            merged[sa] = ia\n", "            merged[sa] = ia - 1\n",
     "a waited node not counted itself (off by one)"),
    ("verify", "        b = last.get(stream[a])\n        if b is None or idx[a] > idx[b]:",
     "        b = last.get(stream[a])\n        if b is None or idx[a] < idx[b]:",
     "the earliest waited node per stream joined, not the last"),
    ("verify", "            if (merged[sa] if merged is not None else _component(cur, sa)) >= ia:",
     "            if (merged[sa] if merged is not None else _component(cur, sa)) >= ia - 1:",
     "a join skipped when one short"),
    ("verify", "return a != b and at(b, stream[a]) >= idx[a]", "return a != b and at(b, stream[a]) > idx[a]",
     "hb: >= for >"),
    ("verify", "            return all(at(ni, s) - (s == own) >= i for s, i, _w in lw)",
     "            return all(at(ni, s) >= i for s, i, _w in lw)", "a reader counting itself as its writer"),
    # ---- verify: rule 2 (reads see their writers) ----------------------------------------------------------------
    ("verify", "            return keep + new   # (a writer", "            return keep   # (a writer",
     "a view's own writer dropped from the chain"),
    ("verify", "            if producer[c] >= 0:\n                w = c", "            if producer[c] > 0:\n"
     "                w = c", "node 0 taken for no producer"),
    ("verify", "                if j < 0 or clear(ni, fold.of(j)):", "                if j <= 0 or clear(ni, fold.of(j)):",
     "reads of tensor 0's chain skipped"),
    # ---- verify: rule 4 (offsets) ---------------------------------------------------------------------------
    ("verify", "if poff is not None and off != poff + tensor.view_offset:", "if poff is not None and off != poff:",
     "a view's offset ignored"),
    ("verify", "if off < 0 or off % align:", "if off % align:", "a negative offset accepted"),
    ("verify", "elif off % plan.alignment:", "elif False:", "the plan's own alignment ignored"),
    ("verify", "if off + tensor.size > plan.arena_bytes:", "if off + tensor.size > plan.arena_bytes + 1:",
     "one byte past the arena accepted"),
    ("verify", "if size != graph.tensors[t].size:", "if False:", "a size unlike the graph's accepted"),
    ("verify", "if plan.lower_bound_bytes > plan.arena_bytes:", "if plan.lower_bound_bytes > plan.arena_bytes + 1:",
     "a bound one above the arena accepted"),
    ("verify", "        if seen[t]:\n            bad(4", "        if False:\n            bad(4", "a tensor placed twice"),
    # ---- verify: rule 3 (reuse) ------------------------------------------------------------------------------
    ("verify", _IN, "    for ni in range(N):\n        for t in graph.node_outputs[ni]:", "reads are no accesses"),
    ("verify", "                lst = acc.setdefault(r, [])", "                lst = acc.setdefault(t, [])",
     "a view's accesses not its root's"),
    ("verify", 'ends = {graph.root[t] for t in range(T) if graph.tensors[t].kind == "output"}',
     'ends = {t for t in range(T) if graph.tensors[t].kind == "output"}', "an output view's root not live to the end"),
    ("verify", "                if at(x, s) - (stream[x] == s) < last:", "                if at(x, s) < last:",
     "before(): an access of b on a's stream counts itself"),
    ("verify", "        if a in ends or b in starts:\n            return False\n        if wide",
     "        if a in ends:\n            return False\n        if wide", "before(): an input overwritten mid-run"),
    ("verify", "x == n or at(x, sn) >= inn for x in first_of(b)", "True for x in first_of(b)",
     "in-place: b's later accesses not checked"),
    ("verify", "if all(at(n, s) >= last for s, last, _x in last_of(a)) and all(", "if all(",
     "in-place: a's other accesses not checked"),
    ("verify", "if graph.producer[b] == ni and a not in roots_written:", "if graph.producer[b] == ni:",
     "in-place: a node writing in's root too"),
    ("verify", "a, b = graph.root[graph.tensor_index[i_id]], graph.root[graph.tensor_index[o_id]]",
     "b, a = graph.root[graph.tensor_index[i_id]], graph.root[graph.tensor_index[o_id]]",
     "in-place pairs taken out -> in"),
    ("verify", "arena.paint(offset[b], offset[b] + graph.tensors[b].size, b)",
     "arena.paint(offset[b], offset[b] + graph.tensors[b].size - 1, b)", "an interval's last byte not painted"),
    ("verify", "        if i0 < 0 or ends[b0][i0] <= lo:", "        if i0 < 0 or ends[b0][i0] <= lo + 1:",
     "painting: a segment ending one past lo skipped"),
    ("verify", "            if starts[b1][i1] >= hi:", "            if starts[b1][i1] >= hi - 1:",
     "painting: a segment starting at hi - 1 skipped"),
    ("verify", "            if first_s < lo:", "            if first_s < lo - 1:", "painting: a split one byte off"),
    # ---- verify: devices -----------------------------------------------------------------------------------------
    ("devverify", "if tdev is not None and tdev[b] != painting:", "if False:", "one arena painted for all devices"),
    ("devverify", "                if tdev[graph.root[t]] != ndev[ni]:\n                    bad(4, f\"COPY",
     "                if False:\n                    bad(4, f\"COPY", "a COPY issued on its destination's device"),
    ("devverify", "        if other[0] != d:", "        if False:", "a stream on two devices"),
    ("devverify", "        if tdev[t] != tdev[graph.root[t]]:", "        if False:", "a view on another device than its root"),
    ("devverify", "elif tdev is not None and off + tensor.size > plan.device_arena_bytes[tdev[t]]:",
     "elif tdev is not None and off + tensor.size > plan.device_arena_bytes[tdev[t]] + 1:",
     "one byte past a device's arena"),
    ("devverify", "            if tdev[graph.root[t]] != ndev[ni]:\n                bad(4, f\"node",
     "            if False:\n                bad(4, f\"node", "a plain node crossing devices"),
    ("devverify", "        if a > plan.arena_bytes:", "        if False:", "a device arena above arena_bytes"),
    # ---- lifetimes ---------------------------------------------------------------------------------------------
    ("lifetimes", "np.maximum.at(last.reshape(-1), cell, (a_seq + 1).astype(SEQ))",
     "np.maximum.at(last.reshape(-1), cell, a_seq.astype(SEQ))", "a stream's last access one early"),
    ("lifetimes", "    lower[has_start] = 0\n", "", "an input's interval starting at its first read"),
    ("lifetimes", 'if tensor.view_of is not None and tensor.kind == "output" and buf_of[root[t]] >= 0:', "if False:",
     "an output view's root not live to the end"),
    ("lifetimes", "    np.maximum(upper, lower + 1, out=upper)\n", "", "an interval may end where it starts"),
    ("lifetimes", "    visible[has_end] = NEVER\n", "", "an output's root visible as free"),
    ("lifetimes", "            if graph.producer[int(arena_roots[b])] != n:", "            if False:",
     "in-place: a node not producing out's root"),
    ("lifetimes", "            if root[graph.tensor_index[i_id]] in written:\n                continue",
     "            if False:\n                continue", "in-place: a node writing in's root too"),
    ("lifetimes", "hb.hb(int(x), n) for x in acc_a", "True for x in acc_a", "in-place: a's other accesses unchecked"),
    ("lifetimes", "x == n or hb.hb(n, int(x)) for x in acc_bb", "True for x in acc_bb",
     "in-place: b's other accesses unchecked"),
    ("lifetimes", "if a < 0 or b < 0 or a == b or has_end[a] or has_start[b]:", "if a < 0 or b < 0 or a == b or "
     "has_start[b]:", "in-place over an output's root"),
    ("lifetimes", "            last[list(members)] = members[-1]", "            last[list(members)] = members[0]",
     "fused groups: live to the first member only"),
    ("lifetimes", "times[base + np.minimum(visible[rows], lens)]", "times[base + np.minimum(visible[rows], lens - 1)]",
     "never-seen read as the stream's last node"),
    ("lifetimes", 'n_vis = np.searchsorted(key_last, key, side="right") - base[:S]',
     'n_vis = np.searchsorted(key_last, key, side="left") - base[:S]', "thresholds: one access too few searched"),
    ("lifetimes", "    visible[np.bincount(pb, minlength=B) == 0] = 0", "", "an unused buffer never visible"),
    ("lifetimes", "acc_b_a = buf_of[np.asarray(root, dtype=np.int64)[touched]] if len(touched) else touched",
     "acc_b_a = buf_of[touched] if len(touched) else touched", "a view's accesses not its root's"),
    # ---- reuse ------------------------------------------------------------------------------------------------
    ("reuse", "int(hb.stream_nodes[s][int(lt.last[b, s]) - 1])", "int(hb.stream_nodes[s][int(lt.last[b, s]) - 2])",
     "last access one node early"),
    ("reuse", "if b is None or lt.has_end[b]:", "if b is None:", "an output's root freed"),
    ("reuse", "return [a for a in ends if not any(hb.hb(a, b) for b in ends)]",
     "return [a for a in ends if not any(hb.hb(b, a) for b in ends)]", "the first accesses kept, not the last"),
    ("reuse", "    return {t[0]: d for t, d in zip(plan.tensors, plan.tensor_devices)}, streams",
     "    return {t[0]: 0 for t, d in zip(plan.tensors, plan.tensor_devices)}, streams",
     "every tensor on device 0"),
    ("reuse", "r = graph.root[graph.tensor_index[tensor]]", "r = graph.tensor_index[tensor]", "a view's root ignored"),
    # ---- events (the optimizer's event choice) ---------------------------------------------------------------
    ("events", "cur.get(sd, 0)) <= pos[d]:  # not yet", "cur.get(sd, 0)) < pos[d]:  # not yet",
     "an event taken as implied one node early"),
    ("events", "                    if (cur[sd] if dense else cur.get(sd, 0)) <= pos[d]:\n",
     "                    if (cur[sd] if dense else cur.get(sd, 0)) < pos[d]:\n", "rescore: implied one node early"),
    ("events", "    deps.pop(s, None)\n    ds = list", "    ds = list", "an event within one stream"),
    ("events", "        if sw not in deps or pos[w] > pos[deps[sw]]:\n            deps[sw] = w\n    for per",
     "        if sw not in deps or pos[w] < pos[deps[sw]]:\n            deps[sw] = w\n    for per",
     "the earliest writer per stream waited for"),
    ("events", "                    elif direct and stream[direct[0]] != s:\n                        ds = direct",
     "                    elif direct and stream[direct[0]] != s:\n                        ds = ()",
     "the one cross-stream writer's event dropped"),
    ("events", "                                cur[sd] = pos[d] + 1", "                                cur[sd] = pos[d] + 2",
     "a dict clock counting one node too many"),
    ("events", "        cur[sd] = count\n        cur[s] = 0", "        cur[sd] = count + 1\n        cur[s] = 0",
     "a dense clock counting one node too many"),
    ("events", "(fold.of(t) for t in viewed), s, stream, pos)", "(fold.of(t) for t in ()), s, stream, pos)", "a view's writers not waited for"),
    ("events", "        elif direct and stream[direct[0]] != s:\n            out.append(direct)",
     "        elif direct and stream[direct[0]] != s:\n            out.append(())", "rescore: a cross-stream writer"),
    ("events", "        if sw not in deps or pos[w] > pos[deps[sw]]:\n                deps[sw] = w",
     "        if sw not in deps or pos[w] < pos[deps[sw]]:\n                deps[sw] = w",
     "a view's earliest writer per stream"),
    # ---- schedule_with_events ------------------------------------------------------------------------------------
    ("schedule", "if sd != s and cur[sd] <= seq[d]:", "if sd != s and cur[sd] < seq[d]:",
     "schedule_with_events: an event taken as implied one node early"),
    ("schedule", "for d in sorted(deps.values(), key=lambda d: -node_pos[d]):",
     "for d in sorted(deps.values(), key=lambda d: node_pos[d]):", "earliest dependency first (more events)"),
    # ---- solvers/check ---------------------------------------------------------------------------------------
    ("check", "    if n and (off % problem.alignment).any():", "    if False:", "an unaligned offset packed"),
    ("check", "    if arena_of(problem, off) != sol.arena:", "    if arena_of(problem, off) > sol.arena:",
     "an arena above the offsets' span"),
    ("check", "if p > 0 and ends[owner[starts[p - 1]]] > o:", "if p > 0 and ends[owner[starts[p - 1]]] > o + 1:",
     "a lower neighbour overlapping by one byte"),
    ("check", "if p < len(starts) and starts[p] < ends[i]:", "if p < len(starts) and starts[p] < ends[i] - 1:",
     "an upper neighbour overlapping by one byte"),
    ("check", "live = np.flatnonzero((sizes > 0) & (upper > lower))",
     "live = np.flatnonzero((sizes > 0) & (upper > lower + 1))", "a one-step interval not checked"),
    ("check", "    times = np.concatenate([upper[live], lower[live]])",
     "    times = np.concatenate([upper[live] + 1, lower[live]])", "intervals closed at their end"),
    ("check", "    if sol.arena < int(problem.lower_bound or 0):", "    if False:", "a packing below the bound"),
    ("check", "    return find_collision(problem, off) if len(problem) <= PAIRWISE_LIMIT else None", "    return None",
     "general problems never checked"),
    ("check", "    if n and (off < 0).any():", "    if False:", "a negative offset packed"),
    # ---- planfile / io ---------------------------------------------------------------------------------------
    ("planfile", "    integer(plan.alignment, \"field 'alignment'\", 1)", "    integer(plan.alignment, \"field 'alignment'\", 0)",
     "alignment 0 taken"),
    ("planfile", "    integer(plan.streams, \"field 'streams'\", 1, MAX_STREAMS)",
     "    integer(plan.streams, \"field 'streams'\", 0, MAX_STREAMS)", "streams 0 taken"),
    ("planfile", "    if plan.devices == 1:\n        _check_one_device_fields(plan, source)", "    pass",
     "a one-device plan with device fields"),
    ("planfile", "    if plan.device_arena_bytes not in ((), (plan.arena_bytes,)):", "    if False:",
     "a one-device arena unlike arena_bytes"),
    ("planfile", "off = None if e[1] is None else integer(e[1], f\"tensors[{i}] ({e[0]!r}): 'offset'\")",
     "off = e[1]", "a float offset kept"),
    ("io", "        verify(graph, plan, fused_groups=fused_groups)\n", "", "load_safe_pair: no verify"),
    ("io", "        verify(graph, plan, fused_groups=fused_groups)", "        verify(graph, plan)",
     "load_safe_pair: fused_groups ignored"),
    # ---- devices -------------------------------------------------------------------------------------------------
    ("rewrite", "copy_nodes.setdefault(src, []).append((node, src))", "copy_nodes.setdefault(d, []).append((node, d))",
     "a COPY issued on its destination"),
    ("rewrite", "key=lambda x: (x[0], graph.producer[graph.root[x[1]]], x[1], x[2])",
     "key=lambda x: (x[0], x[1], x[2])", "copies ordered by tensor, not by producer"),
    ("rewrite", 'attrs={"device": src, "src_device": src, "dst_device": d}',
     'attrs={"device": src, "src_device": d, "dst_device": src}', "a COPY's src and dst swapped"),
    ("rewrite", "inplace=tuple((o, ren.get(i, i)) for o, i in node.inplace)", "inplace=node.inplace",
     "in-place pairs keep the source device's input"),
    ("rewrite", "            if src > d:\n", "            if src > d + 1:\n", "a read from the next device"),
    ("rewrite", "            if src == d or (t, d) in copy_of:", "            if src == d:", "one copy per read"),
    ("split", "    if weights + plan.arena_bytes > cap:", "    if plan.arena_bytes > cap:", "weights left out of capacity"),
    ("split", 'return sum(t.size for i, t in enumerate(graph.tensors) if t.kind == "weight" and graph.root[i] == i)',
     'return sum(t.size for i, t in enumerate(graph.tensors) if t.kind == "weight")', "a weight view's bytes counted"),
]

#: stream ids swapped (added after the first run: ids after the sampled ones)
LATE: list[tuple[str, str, str, str]] = [
    ("verify", "return a != b and at(b, stream[a]) >= idx[a]", "return a != b and at(b, stream[b]) >= idx[a]",
     "hb reads b's own stream, not a's"),
    ("events", "                        sd = stream[d]\n", "                        sd = stream[v]\n",
     "the waiting node's stream taken for its writer's"),
    ("schedule", "if sd != s and cur[sd] <= seq[d]:", "if sd != s and cur[s] <= seq[d]:",
     "schedule_with_events: the clock read on its own stream"),
    ("lifetimes", "    cell = acc_b_a * S + a_stream", "    cell = acc_b_a * S + (S - 1 - a_stream)",
     "accesses filed under the mirrored stream"),
]

#: targets sampled with rounds 55-61's operators (module's functions to mutate, None: all) and how many
SAMPLED: dict[str, tuple[tuple[str, ...] | None, int]] = {
    "reuse": (None, 8),
    "rewrite": (("insert_copies", "pinned_roots", "cut_constraints", "shared_weights", "crossing_bytes",
                 "_root_spans"), 8),
    "minimalloc": (("parse_csv", "format_csv", "_offsets", "_header"), 8),
}


def plan_all(root: str) -> list[tuple[int, str, str, str, str, int, str]]:
    """Every mutant as (id, target, module, mutated source, original source, line, description)."""
    srcs: dict[str, str] = {}
    out = []
    def hand(mutants: list[tuple[str, str, str, str]]) -> None:
        for name, old, new, what in mutants:
            path = TARGETS[name][0]
            src = srcs.setdefault(path, open(os.path.join(root, path)).read())
            n = src.count(old)
            if n != 1:
                raise SystemExit(f"hand mutant {what!r}: its text occurs {n} times in {path}")
            line = src[:src.index(old)].count("\n") + 1 + (old[:1] == "\n")
            out.append((len(out), name, path, src.replace(old, new), src, line, f"hand {what}"))

    hand(HAND)
    for name, (funcs, quota) in SAMPLED.items():
        path = TARGETS[name][0]
        src = srcs.setdefault(path, open(os.path.join(root, path)).read())
        tree = ast.parse(src)
        for c in s55.pick(s61.candidates(tree, funcs, ()), quota):
            text, line = s61.mutate(tree, c)
            out.append((len(out), name, path, text, src, line, f"{c[0]:4s} {c[3]}"))
    hand(LATE)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--ids", default="")
    ap.add_argument("--tests", default="", help="comma-separated test files to run instead of the target's own")
    ap.add_argument("--without", default="", help="a test file left out of every run (the 'before' column)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--retry", type=float, default=180.0, help="the limit of the one rerun of a mutant that timed out")
    a = ap.parse_args()
    root = os.getcwd()
    want = {int(x) for x in a.ids.split(",") if x}
    only = set(a.only.split(","))
    plan = [m for m in plan_all(root) if m[1] in only and (not want or m[0] in want)]
    if a.list:
        for k, name, _path, _text, _src, line, what in plan:
            print(f"{k:3d} {name:10s} L{line:<4d} {what}")
        return
    tmp = tempfile.mkdtemp(prefix="mut62_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tmp, d), ignore=shutil.ignore_patterns("__pycache__"))
    if a.without and os.path.exists(os.path.join(tmp, a.without)):
        os.remove(os.path.join(tmp, a.without))
    env = dict(os.environ, PYTHONPATH=tmp, PYTHONDONTWRITEBYTECODE="1")
    counts = {"KILLED": 0, "SURVIVED": 0, "TIMEOUT": 0}
    try:
        for k, name, path, text, src, line, what in plan:
            target = os.path.join(tmp, path)
            with open(target, "w") as f:
                f.write(text)
            tests = a.tests.split(",") if a.tests else TARGETS[name][1]
            tests = [t for t in tests if os.path.exists(os.path.join(tmp, t.split("::")[0]))]
            t0 = time.perf_counter()
            dead = s59._run(tests, tmp, env, a.timeout)
            how = ""
            if dead is None:   # (the machine's load or a hang: one more run with a longer limit decides)
                dead = s59._run(tests, tmp, env, a.retry)
                how = f" (timeout at {a.timeout:.0f} s, rerun at {a.retry:.0f} s)"
            with open(target, "w") as f:
                f.write(src)
            verdict = "TIMEOUT" if dead is None else "KILLED" if dead else "SURVIVED"
            counts[verdict] += 1
            print(f"{k:3d} {name:10s} L{line:<4d} {what[:52]:52s} {verdict:8s} {time.perf_counter() - t0:5.1f} s{how}",
                  flush=True)
    finally:
        shutil.rmtree(tmp)
    total = sum(counts.values())
    print(f"total {total}: killed {counts['KILLED']}, survived {counts['SURVIVED']}, timeout {counts['TIMEOUT']}")


if __name__ == "__main__":
    main()
