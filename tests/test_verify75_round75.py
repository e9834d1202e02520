"""Round 75 (verify75): ``memplan.verify`` against a fresh oracle written from CONTRACT.md alone, on *hand-made*
plans (not a planner's plans and their mutants, as tests/test_verify_oracle65.py does): random small graphs (views
chained, produced by a node or by none, over inputs, weights and outputs; nodes with two outputs, an input read
twice, in-place pairs onto views; fusion groups) and plans drawn at random for them: any issue order (a node moved
backwards breaks rule 1), one to three streams, random events (duplicates, backwards ones), random aligned offsets
(some one byte off the alignment, a view's offset one byte off its parent's, the arena one byte short). The oracle
builds happens-before as an explicit transitive closure, lists every access of every root (virtual first access of
an ``input``, virtual last of an ``output``) and checks every pair of overlapping roots access by access, with the
in-place exception; with ``fused_groups`` it adds the documented kernel rule (docs/format.md). The two must agree
on safe / unsafe in both directions.

Two readings the oracle takes from the project's documents, not from the contract's letter (both checked to be
deliberate): a read waits for every writer along its view chain (verify.py's docstring: the contract names the
view's and the root's producer only, but a writer of a middle view writes the bytes read too), and a fusion group is
"consecutive on one stream" among that stream's nodes (another stream's node may be issued between members).

Round 75 found no disagreement (about 900,000 random plans, a view-chain shape with up to 24 concurrent writer
streams among them); this file keeps the comparison as a cheap deterministic property.
"""

from __future__ import annotations

import copy
import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memplan
from memplan.errors import PlanFormatError, UnsafePlan


def _oracle(g: dict, p: dict, fused: bool = False) -> list[str]:
    """The problems of plan ``p`` for graph ``g`` by CONTRACT.md (empty: safe). Fields are assumed well-formed."""
    probs: list[str] = []
    T = {t["id"]: t for t in g["tensors"]}
    N = {n["id"]: n for n in g["nodes"]}

    def chain(t: str) -> list[str]:
        out = [t]
        while T[t].get("view_of") is not None:
            t = T[t]["view_of"]
            out.append(t)
        return out

    def root(t: str) -> str:
        return chain(t)[-1]

    prod = {o: n["id"] for n in g["nodes"] for o in n["outputs"]}
    order = [e["node"] for e in p["order"]]
    if sorted(order) != sorted(N):
        return ["order is not every node once"]
    pos = {n: i for i, n in enumerate(order)}
    st_ = {e["node"]: e["stream"] for e in p["order"]}
    succ: dict[str, set[str]] = {n: set() for n in order}
    for a, b in itertools.combinations(order, 2):
        if st_[a] == st_[b]:
            succ[a].add(b)
    for e in p["events"]:
        a, b = e["after"], e["before"]
        if st_[a] == st_[b]:
            probs.append(f"event on one stream {a}->{b}")
        if pos[a] >= pos[b]:
            probs.append(f"event backwards {a}->{b}")
        succ[a].add(b)

    def reach(a: str) -> set[str]:
        seen: set[str] = set()
        todo = [a]
        while todo:
            for y in succ[todo.pop()]:
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return seen

    R = {n: reach(n) for n in order}

    def hb(a: str, b: str) -> bool:
        if a == "-inf":
            return b != "-inf"
        if b == "+inf":
            return a != "+inf"
        if a == "+inf" or b == "-inf":
            return False
        return b in R[a]

    for n in g["nodes"]:                     # rules 1 and 2: every writer up the view chain, issued before and HB
        for t in n["inputs"]:
            for w in {prod.get(c) for c in chain(t)} - {None}:
                if pos[w] >= pos[n["id"]]:
                    probs.append(f"{n['id']} issued before its writer {w}")
                if not hb(w, n["id"]):
                    probs.append(f"{n['id']} reads {t} not after {w}")
    groups: dict[str, list[str]] = {}
    for n in g["nodes"]:
        if n.get("group") is not None:
            groups.setdefault(n["group"], []).append(n["id"])
    for gid, mem in groups.items():            # rule 1: consecutive among its stream's nodes, in the listed order
        ps = [pos[m] for m in mem]
        s0 = st_[mem[0]]
        if (ps != sorted(ps) or len({st_[m] for m in mem}) > 1
                or any(ps[0] < pos[x] < ps[-1] and x not in mem for x in order if st_[x] == s0)):
            probs.append(f"group {gid}")
    off = {e["id"]: e["offset"] for e in p["tensors"]}
    for t in T:                                # a view's offset is its parent's plus view_offset
        if T[t].get("view_of") is not None:
            po = off[T[t]["view_of"]]
            if off[t] != (None if po is None else po + T[t]["view_offset"]):
                probs.append(f"view offset {t}")
    roots = [t for t in T if T[t].get("view_of") is None and T[t]["kind"] != "weight"]
    for r in roots:                            # rule 4
        o = off[r]
        if o is None or o < 0 or o % g.get("alignment", 256) or o % p["alignment"]:
            probs.append(f"alignment {r}")
        elif o + T[r]["size"] > p["arena_bytes"]:
            probs.append(f"arena {r}")
    acc: dict[str, set[str]] = {r: set() for r in roots}
    for r in roots:
        acc[r] |= {"-inf"} if T[r]["kind"] == "input" else set()
        acc[r] |= {"+inf"} if T[r]["kind"] == "output" else set()
        acc[r] |= {prod[r]} if r in prod else set()
    for n in g["nodes"]:
        for t in n["inputs"] + [o for o in n["outputs"] if T[o].get("view_of") is not None]:
            if root(t) in acc:
                acc[root(t)].add(n["id"])
    inplace = {(n["id"], root(i), root(o)) for n in g["nodes"] for o, i in (n.get("inplace") or {}).items()
               if prod.get(root(o)) == n["id"]}

    def before(A: str, B: str) -> bool:
        return all(hb(x, y) or (x == y and (x, A, B) in inplace) for x in acc[A] for y in acc[B])

    def overlap(a: str, b: str) -> bool:
        oa, ob, sa, sb = off[a], off[b], T[a]["size"], T[b]["size"]
        return oa is not None and ob is not None and sa > 0 and sb > 0 and oa < ob + sb and ob < oa + sa

    for a, b in itertools.combinations(roots, 2):   # rule 3
        if overlap(a, b) and not (before(a, b) or before(b, a)):
            probs.append(f"overlap {a} {b}")
    if fused and not probs:                    # docs/format.md: a fusable group's roots share no bytes
        for mem in groups.values():
            last = max(pos[m] for m in mem)
            if len(mem) < 2 or any(e["after"] in mem and pos[e["before"]] <= last for e in p["events"]):
                continue
            rs = sorted({root(t) for m in mem for t in N[m]["inputs"] + N[m]["outputs"]} & set(roots))
            probs += [f"fused {a} {b}" for a, b in itertools.combinations(rs, 2) if overlap(a, b)]
    return probs


def _graph(rng: random.Random) -> dict:
    """A random small graph document (always valid per CONTRACT.md)."""
    tensors: list[dict] = []
    nodes: list[dict] = []

    def new(kind: str, size: int | None = None, view_of: str | None = None, vo: int = 0) -> dict:
        t = {"id": f"t{len(tensors)}", "size": rng.choice([0, 1, 2, 4, 8, 16]) if size is None else size, "kind": kind}
        if view_of is not None:
            t["view_of"], t["view_offset"] = view_of, vo
        tensors.append(t)
        return t

    for _ in range(rng.randint(0, 2)):
        new("input")
    for _ in range(rng.randint(0, 1)):
        new("weight")
    for i in range(rng.randint(1, 6)):
        ins = rng.sample([t["id"] for t in tensors], min(len(tensors), rng.randint(0, 2)))
        outs: list[str] = []
        inplace: dict[str, str] = {}
        if rng.random() < 0.2 and tensors:     # a view op: a node producing a view of an earlier tensor
            par = rng.choice(tensors)
            if par["size"] > 0:
                vs = rng.randint(0, par["size"])
                kind = par["kind"] if par["kind"] in ("intermediate", "output") else "intermediate"
                outs.append(new(kind, vs, par["id"], rng.randint(0, par["size"] - vs))["id"])
        if not outs:
            outs.append(new(rng.choice(["intermediate", "intermediate", "output"]))["id"])
            if rng.random() < 0.3:
                outs.append(new(rng.choice(["intermediate", "output"]))["id"])
                if ins and rng.random() < 0.5:
                    inplace[outs[1]] = rng.choice(ins)
            if ins and rng.random() < 0.3:
                inplace[outs[0]] = rng.choice(ins)
            if ins and rng.random() < 0.2:
                ins = ins + [rng.choice(ins)]
        node = {"id": f"n{i}", "op": "OP", "inputs": ins, "outputs": outs}
        if inplace:
            node["inplace"] = inplace
        nodes.append(node)
    if rng.random() < 0.3 and len(nodes) >= 2:
        i = rng.randrange(len(nodes) - 1)
        for k in range(i, min(len(nodes), i + rng.randint(2, 3))):
            nodes[k]["group"] = "G"
    if rng.random() < 0.2 and tensors:         # a view no node produces
        par = rng.choice(tensors)
        if par["size"] > 0:
            kind = par["kind"] if par["kind"] != "output" else "intermediate"
            new(kind, 1, par["id"], rng.randint(0, par["size"] - 1))
    return {"format": "memplan.graph/1", "name": "g", "alignment": rng.choice([1, 4, 8, 256]),
            "tensors": tensors, "nodes": nodes}


def _plan(rng: random.Random, g: dict) -> dict:
    """A random plan document for ``g``: well-formed, safe or not."""
    nodes = [n["id"] for n in g["nodes"]]
    order = list(nodes)
    for _ in range(rng.randint(0, 2)):
        i, j = rng.randrange(len(order)), rng.randrange(len(order))
        order[i], order[j] = order[j], order[i]
    S = rng.randint(1, 3)
    streams = {n: rng.randrange(S) for n in order}
    if rng.random() < 0.3:                     # a fusion group kept on one stream, mostly consecutive
        gm = [n["id"] for n in g["nodes"] if n.get("group")]
        for x in gm:
            streams[x] = streams[gm[0]]
        if gm and rng.random() < 0.7:
            order = [x for x in nodes if x not in gm]
            order[nodes.index(gm[0]):nodes.index(gm[0])] = gm
    events = []
    for _ in range(rng.randint(0, 4)):
        if len(order) < 2:
            break
        i, j = sorted(rng.sample(range(len(order)), 2))
        if rng.random() < 0.1:
            i, j = j, i
        if streams[order[i]] != streams[order[j]]:
            events.append({"after": order[i], "before": order[j]})
    T = {t["id"]: t for t in g["tensors"]}
    a = g["alignment"]
    off: dict[str, int | None] = {}

    def place(tid: str) -> int | None:
        if tid not in off:
            t = T[tid]
            if t.get("view_of") is not None:
                po = place(t["view_of"])
                off[tid] = None if po is None else po + t["view_offset"]
            elif t["kind"] == "weight":
                off[tid] = None
            else:
                off[tid] = a * rng.randint(0, 4) + (rng.choice([1, -1]) if rng.random() < 0.05 else 0)
        return off[tid]

    for t in g["tensors"]:
        place(t["id"])
    end = max([o + T[t]["size"] for t, o in off.items() if o is not None] + [0])
    if rng.random() < 0.1:
        views = [t for t, o in off.items() if o is not None and T[t].get("view_of") is not None]
        if views:
            off[rng.choice(views)] += rng.choice([1, -1, a])
    return {"format": "memplan.plan/1", "graph": "g", "alignment": a,
            "arena_bytes": max(0, end - (1 if rng.random() < 0.1 else 0)), "lower_bound_bytes": 0, "streams": S,
            "order": [{"node": n, "stream": streams[n]} for n in order], "events": events,
            "tensors": [{"id": t["id"], "offset": off[t["id"]], "size": t["size"]} for t in g["tensors"]],
            "solver": {"name": "hand"}}


def _verdict(g: dict, p: dict, fused: bool) -> str:
    """``memplan.verify``'s verdict ("" when safe, else its message); any other exception propagates (a crash)."""
    try:
        memplan.verify(memplan.graph_from_dict(copy.deepcopy(g)), copy.deepcopy(p), fused_groups=fused)
    except (UnsafePlan, PlanFormatError) as e:
        return str(e) or "unsafe"
    return ""


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), fused=st.booleans())
def test_verify_agrees_with_an_oracle_from_the_contract_on_hand_made_plans(seed: int, fused: bool) -> None:
    """Random graph, random plan: ``verify`` and the oracle agree in both directions (safe plans accepted, unsafe
    ones refused), with and without ``fused_groups``."""
    rng = random.Random(seed)
    g = _graph(rng)
    p = _plan(rng, g)
    found = _oracle(g, p, fused)
    got = _verdict(g, p, fused)
    assert bool(got) == bool(found), (f"verify: {got or 'safe'}; oracle: {found or 'safe'}", g, p)


def test_the_generator_makes_both_safe_and_unsafe_plans() -> None:
    """A guard on the property above: its plans are neither all safe nor all unsafe (about a third are safe), so the
    comparison tests both directions."""
    verdicts = []
    for seed in range(200):
        rng = random.Random(seed)
        g = _graph(rng)
        verdicts.append(not _oracle(g, _plan(rng, g)))
    assert 20 < sum(verdicts) < 180
