"""Session 76 (mut76): hand mutation testing of the safety core: ``memplan/verify.py``, ``memplan/lifetimes.py``,
``memplan/reuse.py``. Round 62 drew its hand mutants at the faults the verifier is there to stop; this round aims at the
paths added since (the wide paths on 16 or more streams: latest writers kept as arrays, a root's floor; clocks kept as
differences from a stored clock and in narrow types; the painting's blocks; ``fused_groups``' own findings; the bounds
of the lifetimes and the memory budget's ``issue_order_bound``) and at a few of round 62's lines again.

A mutant is ``(id, module, old text, new text, what it breaks)``: ``old`` occurs exactly once in the module, the mutant
is the module with it replaced. Each runs its module's fast test files with ``pytest -x`` in a copy of the tree
(``--slow``: then the slow files too, for a survivor), the round's own test file left out (``--before``), as the
"before" column of docs/experiments/mutation_s76.txt.

Run from a checkout: ``python docs/experiments/mutation_s76.py [--ids V14,L13] [--slow] [--before]``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

V = "memplan/verify.py"
L = "memplan/lifetimes.py"
R = "memplan/reuse.py"
MUTANTS: list[tuple[str, str, str, str, str]] = [
 ("V1", V, "        clock[own] = idx[ni] - 1\n        return bool(", "        clock[own] = idx[ni]\n        return bool(", "seen_by wide: reader counts itself as writer"),
 ("V2", V, "(clock[kept[1]] >= kept[2]).all()", "(clock[kept[1]] > kept[2]).all()", "seen_by wide: >= -> >"),
 ("V3", V, "            if add:\n                lat_idx[sw], lat_w[sw] = idx[w], w", "            if False:\n                lat_idx[sw], lat_w[sw] = idx[w], w", "LatestWriters array: view's own writer dropped"),
 ("V4", V, "drop = live & (lat_idx <= base)", "drop = live & (lat_idx <= base + 1)", "LatestWriters array: drops a writer one past w's clock"),
 ("V5", V, "        v[stream[x]] = idx[x] - 1\n        if out is None:", "        v[stream[x]] = idx[x]\n        if out is None:", "_floor: b's access counts itself"),
 ("V6", V, "return all(floor[s] >= last for s, last, _x in last_of(a))", "return all(floor[s] > last for s, last, _x in last_of(a))", "before wide: >= -> >"),
 ("V7", V, "return b in floor_memo or len(last_of(a)) >= _WIDE or len(first_of(b)) >= _WIDE", "return True", "wide(): always floor"),
 ("V8", V, "if b is None or idx[a] > idx[b]:\n                v[stream[a]] = a", "if b is None or idx[a] < idx[b]:\n                v[stream[a]] = a", "last_per_stream keeps first access"),
 ("V9", V, "if stream[x] not in v or idx[x] < idx[v[stream[x]]]:", "if stream[x] not in v or idx[x] > idx[v[stream[x]]]:", "first_per_stream keeps last access"),
 ("V10", V, "return -1 if r in starts else", "return 0 if r in starts else", "first_pos: input at 0 not -1"),
 ("V11", V, "x == n or at(x, sn) >= inn for x in first_of(b)", "x == n or at(x, sn) > inn for x in first_of(b)", "inplace_ok: b's other-stream access must count past n"),
 ("V12", V, "        if a in ends or b in starts:\n            return False\n        for n in inplace_pairs", "        if b in starts:\n            return False\n        for n in inplace_pairs", "inplace_ok: output overwritten in place"),
 ("V13", V, "        if a in ends or b in starts:\n            return False\n        for n in inplace_pairs", "        if a in ends:\n            return False\n        for n in inplace_pairs", "inplace_ok: b in starts dropped (equiv?)"),
 ("V14", V, "if reach is None or reach[0] != dev or hi > reach[1]:", "if True:", "fused: reach always the last root"),
 ("V15", V, "reach[0] == dev and lo < reach[1]:", "reach[0] == dev and lo <= reach[1]:", "fused: adjacent roots overlap"),
 ("V16", V, "groups = {g: m for g, m in graph.groups().items() if len(m) > 1}", "groups = {g: m for g, m in graph.groups().items() if len(m) > 0}", "fused: one-node groups judged"),
 ("V17", V, "if a in last_of and b is not None and pos[b] <= pos[last_of[a][1]]:", "if a in last_of and b is not None and pos[b] < pos[last_of[a][1]]:", "fused: unfusable <= -> < (equiv?)"),
 ("V18", V, "            unfused.add(last_of[a][0])", "            pass", "fused: unfusable groups judged as kernels"),
 ("V19", V, "and graph.tensors[r].size > 0 and offset[r] is not None", "and graph.tensors[r].size >= 0 and offset[r] is not None", "rule 3: zero-size roots painted"),
 ("V20", V, "roots.sort(key=lambda r: (0 if tdev is None else tdev[r], first_pos(r), r))", "roots.sort(key=lambda r: (0 if tdev is None else tdev[r], r))", "rule 3: painted by index"),
 ("V21", V, "                hi = len(path)\n", "                hi = len(path) - 1\n", "failing_writers: top of chain not named"),
 ("V22", V, "        while hi - lo > 1:", "        while hi - lo > 2:", "failing_writers: binary search stops early (equiv?)"),
 ("V23", V, "        merged[s] = count[s]\n", "", "_clocks: own component not set (equiv?)"),
 ("V24", V, "for base in (bases[-1], bases[0]) if len(bases) > 1 else bases:", "for base in (bases[0],):", "_shared_or_own: only own base (equiv)"),
 ("V25", V, "            if merged[t] < v:\n                merged[t] = v", "            if merged[t] > v:\n                merged[t] = v", "_raise_to small: lowers"),
 ("V26", V, "merged[keys] = np.maximum(merged[keys],", "merged[keys] = np.minimum(merged[keys],", "_raise_to many: min"),
 ("V27", V, "        if len(diff) < _MANY:\n            for t, v in diff.items():\n                out[t] = v", "        if len(diff) < 0:\n            for t, v in diff.items():\n                out[t] = v", "_materialize: array path always (equiv)"),
 ("V28", V, "np.min_scalar_type(int(clock.max()) if len(clock) else 0)", "np.min_scalar_type(int(clock.max()) // 2 if len(clock) else 0)", "_narrow: too narrow"),
 ("V29", V, "        return int(base[t])   # (a Python int", "        return base[t]   # (a Python int", "at(): narrow scalar not widened"),
 ("V30", V, "for k in range(place[members[0]], place[members[-1]] + 1):", "for k in range(place[members[0]], place[members[-1]]):", "group interruption: last member not scanned (equiv)"),
 ("V31", V, "lambda ni, last: last < pos[ni]", "lambda ni, last: last <= pos[ni]", "rule1 read: < -> <= (equiv?)"),
 ("V32", V, "        return a != b and at(b, stream[a]) >= idx[a]", "        return at(b, stream[a]) >= idx[a]", "hb: a != b dropped"),
 ("V33", V, "            return all(at(ni, s) - (s == own) >= i for s, i, _w in lw)", "            return all(at(ni, s) - (s == own) >= i for s, i, _w in lw[:1])", "seen_by small: first writer only"),
 ("V34", V, "        if len(keep) < len(acc) or not any(hb(w, e[2]) for e in keep):", "        if not any(hb(w, e[2]) for e in keep):", "latest: drop shortcut (equiv)"),
 ("V35", V, "keep = tuple(e for e in acc if e[2] != w and seen[e[0]] < e[1])", "keep = tuple(e for e in acc if e[2] != w and seen[e[0]] <= e[1])", "latest wide: keep counted writer (equiv?)"),
 ("V36", V, "            keep = tuple(e for e in acc if e[2] != w and not hb(e[2], w))", "            keep = tuple(e for e in acc if e[2] != w and not hb(w, e[2]))", "latest small: hb reversed"),
 ("V37", V, "            if seq[k] not in inside:", "            if seq[k] not in inside and False:", "group interrupted (prev covered)"),
 ("V38", V, "        if len(starts[b0]) > 2 * self._BLOCK:", "        if len(starts[b0]) > 2 * self._BLOCK and False:", "painting: blocks never split (equiv perf)"),
 ("V39", V, "                if b1 + 1 == len(starts) or starts[b1 + 1][0] >= hi:", "                if b1 + 1 == len(starts) or starts[b1 + 1][0] > hi:", "painting: next block starting at hi entered"),
 ("V40", V, "            if ends[last_b][last_i] > hi:", "            if ends[last_b][last_i] > hi + 1:", "painting: last segment's tail one byte lost"),
 ("L1", L, "if a < 0 or b < 0 or a == b or has_end[a] or has_start[b]:", "if a < 0 or b < 0 or a == b or has_end[a]:", "compatible: has_start[b] dropped (equiv)"),
 ("L2", L, "            first[list(members)] = members[0]", "            first[list(members)] = members[-1]", "fused groups: live from last member only"),
 ("L3", L, "    for a, t in left_out:\n        diff[t] -= all_weights[a]\n        diff[t + 1] += all_weights[a]\n", "", "sweep bound: in-place inputs not left out"),
 ("L4", L, "    return int(rounded.sum()) - int((rounded - sizes).max())", "    return int(rounded.sum())", "inputs bound: last pad counted"),
 ("L5", L, "lasts = (np.maximum.reduceat(seqs, starts) + 1).astype(SEQ)", "lasts = (np.maximum.reduceat(seqs, starts)).astype(SEQ)", "last table one early"),
 ("L6", L, "firsts = np.minimum.reduceat(seqs, starts) if len(starts) else seqs", "firsts = np.maximum.reduceat(seqs, starts) if len(starts) else seqs", "first table = last access"),
 ("L7", L, "lf_v = np.searchsorted(cols, kl * pr.big + pr.firsts[sl] + 1, side=\"left\")", "lf_v = np.searchsorted(cols, kl * pr.big + pr.firsts[sl], side=\"left\")", "sparse live_from one early"),
 ("L8", L, "            v[j, own] = pr.lasts[own]\n", "", "dense: own last looked up"),
 ("L9", L, "    live_from[has_start] = 0\n", "", "input live_from not 0"),
 ("L10", L, "    upper[has_end] = n_nodes + 2\n", "    upper[has_end] = n_nodes + 1\n", "output upper n+1 (equiv?)"),
 ("L11", L, "            acc_a = acc_nodes_of(acc_ptr, acc_n_a, a)[::-1]", "            acc_a = acc_nodes_of(acc_ptr, acc_n_a, a)", "compatible scan order (equiv)"),
 ("L12", L, "if size_o > size_i or d % max(alignment, 1):", "if d % max(alignment, 1):", "_exact_shift: larger out exact"),
 ("L13", L, "if arena[a] and not ends[a] and hi[a] == pos[n] + 1})", "if arena[a] and not ends[a]})", "sweep: in-place input left out even if not last"),
 ("L14", L, "    lo[np.array([k == \"input\" for k in kinds], dtype=bool) & arena] = 0", "    pass", "sweep: inputs from first read"),

 ("B1", V, "the wait comes before the record in issue order{copies}\")\n            continue", "the wait comes before the record in issue order{copies}\")", "backward event kept as a wait (equiv via not ia?)"),
 ("B2", V, "            if sa == s or not ia:", "            if sa == s:", "_clocks: not-ia guard dropped (equiv alone)"),
 ("B3", V, "last_issued = _ChainFold(graph, written, pos.__getitem__, max)", "last_issued = _ChainFold(graph, written, pos.__getitem__, min)", "rule 1 read: earliest writer only"),
 ("B4", V, "            for t in graph.node_inputs[ni]:\n                j = written[t]", "            for t in graph.node_inputs[ni][:1]:\n                j = written[t]", "rule 2: first input only"),
 ("B6", V, "    if len(diff) < _MANY:\n        for t, v in diff.items():\n            if merged[t] < v:", "    if len(diff) < 0:\n        for t, v in diff.items():\n            if merged[t] < v:", "_raise_to: array path always (equiv)"),
 ("B7", V, "        if k < fewest:", "        if k <= fewest:", "_shared_or_own: <= (equiv?)"),
 ("B9", V, "            v = diff.get(t)\n            if v is not None:\n                return v\n        return int(base[t])", "            v = diff.get(t)\n            if v:\n                return v\n        return int(base[t])", "at(): diff 0 read from base (equiv)"),
 ("B11", V, "                if at(x, s) - (stream[x] == s) < last:\n                    return False\n        return True", "                if at(x, s) - (stream[x] == s) <= last:\n                    return False\n        return True", "before small: stricter"),
 ("B12", V, "            return all(at(ni, s) - (s == own) >= i for s, i, _w in lw)", "            return all(at(ni, s) - (s == own) > i for s, i, _w in lw)", "seen_by small: stricter (equiv via naming?)"),
 ("B14", L, "upper[rows] = times[base + np.minimum(visible[rows], lens)].max(axis=1, initial=0)", "upper[rows] = times[base + np.minimum(visible[rows], lens)].min(axis=1, initial=0)", "seen_by_all: min stream"),
 ("B15", L, "            upper[lt.has_end[sel]] = n_nodes + 2\n", "", "restrict: outputs not to the end"),
 ("B16", L, "if len(own_nodes) and (len(foreign) == 0 or hb.pos[foreign].max() < hb.pos[own_nodes].min()):", "if len(own_nodes):", "restrict: own streams always"),
 ("B17", L, "        diff[q] -= sizes[a]\n        diff[q + 1] += sizes[a]\n", "", "per-node bound: in-place input counted at n"),
 ("B18", L, "            bound = max(bound, lower_bound(graph, hb, lt, rounded) - pad)", "            bound = max(bound, lower_bound(graph, hb, lt, rounded) - pad + 1)", "aligned bound one too high"),
 ("B21", R, "free_from = {s: graph.nodes[int(hb.stream_nodes[s][int(lt.visible[b, s])])].id", "free_from = {s: graph.nodes[int(hb.stream_nodes[s][max(int(lt.visible[b, s]) - 1, 0)])].id", "reuse: free one node early"),
 ("B23", L, "            if all(x == n or hb.hb(int(x), n) for x in acc_a) and all(", "            if all(hb.hb(int(x), n) for x in acc_a) and all(", "compatible never (quality)"),
 ("B25", L, "if route == \"dense\" or (route == \"auto\" and searched * DENSE_SHARE >= len(pb)):", "if route == \"dense\":", "thresholds: never dense in auto (equiv)"),
]

FAST_V = ["tests/test_mut76_round76.py", "tests/test_mutation_round62.py", "tests/test_verify.py", "tests/test_mutants.py",
          "tests/test_mutation_round55.py", "tests/test_verify_round41.py", "tests/test_verify_round42.py",
          "tests/test_verify_round44.py", "tests/test_verify_round45.py", "tests/test_verify_round51b.py",
          "tests/test_verify_round52.py", "tests/test_verify_round52b.py", "tests/test_verify_round54.py",
          "tests/test_verify75_round75.py", "tests/test_lifetimes.py", "tests/test_fused_groups.py"]
SLOW_V = ["tests/test_verify_round50.py", "tests/test_verify_round51.py", "tests/test_verify_round47.py",
          "tests/test_verify_round49.py", "tests/test_verify_round69.py", "tests/test_verify_round70.py",
          "tests/test_verify_round30.py", "tests/test_verify_round38.py", "tests/test_oracle.py",
          "tests/test_verify_oracle65.py"]
FAST_L = ["tests/test_mut76_round76.py", "tests/test_lifetimes.py", "tests/test_mutation_round62.py", "tests/test_mutants.py",
          "tests/test_mutation_round55.py", "tests/test_precedence.py", "tests/test_bounds.py", "tests/test_fused_groups.py"]
FAST_R = ["tests/test_mut76_round76.py", "tests/test_mutation_round62.py", "tests/test_reuse_round34.py", "tests/test_reuse_round35.py", "tests/test_reuse_round36.py", "tests/test_review_round36c_reuse.py"]
SLOW_L = ["tests/test_scale_round45.py", "tests/test_devices.py", "tests/test_oracle.py", "tests/test_bound_round48.py", "tests/test_verify_round69.py"]


OWN = "tests/test_mut76_round76.py"


def _run(tree: str, tests: list[str], timeout: float) -> tuple[bool | None, str]:
    """True: a test failed (killed); False: all passed; None: past ``timeout`` seconds. And the first failure."""
    tests = [t for t in tests if os.path.exists(os.path.join(tree, t))]
    env = dict(os.environ, PYTHONPATH=tree, PYTHONDONTWRITEBYTECODE="1")
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=tree,
                           env=env, capture_output=True, timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        return None, ""
    failed = [x for x in r.stdout.splitlines() if x.startswith(("FAILED", "ERROR"))]
    return r.returncode != 0, (failed[0] if failed else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", default="")
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--before", action="store_true", help="leave out tests/test_mut76_round76.py")
    a = ap.parse_args()
    root = os.getcwd()
    want = set(filter(None, a.ids.split(",")))
    tree = tempfile.mkdtemp(prefix="mut76_")
    for d in ("memplan", "runtime", "tests"):
        shutil.copytree(os.path.join(root, d), os.path.join(tree, d), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(root, "pyproject.toml"), tree)
    if a.before:
        os.remove(os.path.join(tree, OWN))
    try:
        for mid, path, old, new, desc in MUTANTS:
            if want and mid not in want:
                continue
            src = open(os.path.join(root, path)).read()
            if src.count(old) != 1:
                print(f"{mid:5s} BADTEXT {desc}", flush=True)
                continue
            target = os.path.join(tree, path)
            with open(target, "w") as f:
                f.write(src.replace(old, new))
            fast, slow = ((FAST_V, SLOW_V) if path == V else (FAST_R, SLOW_L) if path == R else (FAST_L, SLOW_L))
            t0 = time.time()
            dead, why = _run(tree, fast, 600)
            if dead is False and a.slow:
                dead, why = _run(tree, slow, 1200)
            with open(target, "w") as f:
                f.write(src)
            verdict = "TIMEOUT" if dead is None else "KILLED" if dead else "SURVIVED"
            print(f"{mid:5s} {verdict:8s} {time.time() - t0:6.1f}s {desc} {why[:120]}", flush=True)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
