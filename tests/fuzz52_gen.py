"""Round 52 fuzz: random graph documents and random ``plan()`` options, for end-to-end checks.

Why its own generator (``strategies.graphs`` exists): that one builds small valid graphs through the builder; this
one draws ``memplan.graph/1`` *documents* (plain dicts), so a failing case prints as JSON a user could have written,
and reaches what the builder's strategy never draws: sizes and alignments near the limits (2**48-byte tensors,
alignments up to 2**40, totals near 2**63), views of views at offsets, nodes with no inputs or no outputs, an
input read twice by one node, in-place pairs across views, and every option ``plan()`` takes at its edges.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from memplan.graph import MAX_TENSOR_BYTES

#: sizes: small, aligned, zero, and near the per-tensor limit (2**48) and beyond it (refused by name)
SIZES = st.integers(0, 9).flatmap(lambda k: (
    st.integers(0, 600) if k < 5 else
    st.sampled_from([0, 1, 255, 256, 257, 4096, 1 << 20]) if k < 9 else
    st.sampled_from([MAX_TENSOR_BYTES - 1, MAX_TENSOR_BYTES, 1 << 40, (1 << 47) + 3])))   # (huge ones: 1 in 10)
HUGE = st.sampled_from([MAX_TENSOR_BYTES + 1, (1 << 62) - 1, 1 << 62, 1 << 63])
ALIGNMENTS = st.sampled_from([1, 2, 8, 256, 256, 4096, 1 << 20, 1 << 31, 1 << 40])


@st.composite
def graph_docs(draw, max_nodes: int = 8, hostile: bool = True) -> dict[str, Any]:
    """A ``memplan.graph/1`` document, valid by construction unless ``hostile`` draws a huge size."""
    tensors: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    size_of: dict[str, int] = {}
    readable: list[str] = []      # tensors a node may read (inputs, weights, produced ones, their views)
    roots: list[str] = []         # arena or weight roots a node may write a fresh view into
    count = [0]

    def fresh(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def add(tid: str, size: int, kind: str, parent: str | None = None, offset: int = 0) -> str:
        t: dict[str, Any] = {"id": tid, "size": size, "kind": kind}
        if parent is not None:
            t["view_of"], t["view_offset"] = parent, offset
        tensors.append(t)
        size_of[tid] = size
        return tid

    def view_of(parent: str, written: bool = False) -> str:
        psize = size_of[parent]
        vs = draw(st.one_of(st.integers(0, min(psize, 600)), st.just(psize), st.just(0)))
        vo = draw(st.one_of(st.just(0), st.just(psize - vs), st.integers(0, psize - vs)))
        kind = next(t["kind"] for t in tensors if t["id"] == parent)
        kind = "weight" if kind == "weight" and not written else draw(st.sampled_from(["intermediate", "intermediate", "output"]))
        return add(fresh("v"), vs, kind, parent, vo)

    for _ in range(draw(st.integers(0, 3))):
        tid = add(fresh("in"), draw(SIZES), "input")
        readable.append(tid)
        roots.append(tid)
    for _ in range(draw(st.integers(0, 2))):
        tid = add(fresh("w"), draw(SIZES), "weight")
        readable.append(tid)
        roots.append(tid)
    if hostile and draw(st.integers(0, 30)) == 17:
        tid = add(fresh("huge"), draw(HUGE), draw(st.sampled_from(["input", "weight"])))
        readable.append(tid)

    pending: list[str] = []       # roots declared now, produced by a later node (a view into one may be written first)
    group_no, open_group = 0, None
    for k in range(draw(st.integers(0, max_nodes))):
        if draw(st.integers(0, 5)) == 0:
            pending.append(add(fresh("p"), draw(SIZES), draw(st.sampled_from(["intermediate", "output"]))))
        # views (chains too) of readable tensors, made by no node
        while readable and draw(st.integers(0, 3)) == 0:
            readable.append(view_of(draw(st.sampled_from(readable))))
        ins = draw(st.lists(st.sampled_from(readable), max_size=4)) if readable else []
        outs: list[str] = []
        for _ in range(draw(st.integers(0, 3))):
            how = draw(st.integers(0, 6))
            if how == 6 and pending:   # produce a pending root, or write a view into it before its producer runs
                pid = draw(st.sampled_from(pending))
                if draw(st.booleans()) and pid not in outs:
                    pending.remove(pid)
                    outs.append(pid)
                    roots.append(pid)
                else:
                    outs.append(view_of(pid, True))
            elif how == 0 and roots:   # write through a fresh view into an existing root (SET_ROWS)
                outs.append(view_of(draw(st.sampled_from(roots)), True))
            elif how == 1 and readable:   # a view op: the node produces a view of what it reads
                outs.append(view_of(draw(st.sampled_from(ins or readable)), True))
            else:
                tid = add(fresh("t"), draw(SIZES), draw(st.sampled_from(["intermediate", "intermediate", "output"])))
                outs.append(tid)
                roots.append(tid)
        node: dict[str, Any] = {"id": f"n{k}", "op": draw(st.sampled_from(["OP", "VIEW", "ADD"])),
                                "inputs": ins, "outputs": outs}
        if draw(st.booleans()):
            node["cost"] = draw(st.sampled_from([0, 0.5, 1, 3.0, 1e6]))
        if ins and outs and draw(st.integers(0, 2)) == 0:
            node["inplace"] = {o: draw(st.sampled_from(ins))
                               for o in draw(st.lists(st.sampled_from(outs), min_size=1, max_size=2, unique=True))}
        if open_group is not None and draw(st.booleans()):
            node["group"] = open_group
        elif draw(st.integers(0, 4)) == 0:
            open_group = node["group"] = f"g{group_no}"
            group_no += 1
        else:
            open_group = None
        nodes.append(node)
        readable.extend(o for o in outs if not any(o == p or _root(tensors, o) == p for p in pending))
    if pending:   # every declared root gets its producer
        nodes.append({"id": "last", "op": "OP", "inputs": [], "outputs": pending})
    return {"format": "memplan.graph/1", "name": "fuzz52", "alignment": draw(ALIGNMENTS),
            "tensors": tensors, "nodes": nodes}


def _root(tensors: list[dict[str, Any]], tid: str) -> str:
    """The root of ``tid`` along its view chain."""
    parent = {t["id"]: t.get("view_of") for t in tensors}
    while parent.get(tid) is not None:
        tid = parent[tid]
    return tid


SOLVERS = ["auto", "auto", "greedy", "size", "search", "cpsat", "ggml"]


@st.composite
def plan_options(draw) -> dict[str, Any]:
    """Keyword options for ``memplan.plan_graph``, each at its edges (``devices``: 2 or 3 at most)."""
    opts: dict[str, Any] = {"solver": draw(st.sampled_from(SOLVERS))}
    if opts["solver"] in ("search", "cpsat") or draw(st.booleans()):   # (their default budget: 60 s and 10 s)
        opts["time_limit"] = draw(st.sampled_from([0.01, 0.05, 0.2]))
    streams = draw(st.sampled_from([None, None, 1, 2, "auto", 64]))
    if streams is not None:
        opts["streams"] = streams
    if draw(st.integers(0, 2)) == 0 and (streams is not None or draw(st.integers(0, 9)) == 7):
        opts["max_events"] = draw(st.sampled_from([0, 1, 1000]))
    if draw(st.integers(0, 3)) == 0:
        opts["devices"] = draw(st.sampled_from([1, 2, 3]))
    elif draw(st.integers(0, 2)) == 0:
        # -1: three quarters of the serial arena (``check_plan_case``), often feasible with streams
        opts["memory_budget"] = draw(st.sampled_from([-1, -1, -1, 0, 1, 1 << 62, 4096]))
    if draw(st.integers(0, 3)) == 0:
        opts["fused_groups"] = True
    if draw(st.integers(0, 4)) == 0:
        opts["alignment"] = draw(ALIGNMENTS)
    if draw(st.integers(0, 9)) == 9:
        opts["device_capacity"] = draw(st.sampled_from([0, 4096, 1 << 30]))
    return opts


#: values a hostile document puts where another type is expected
HOSTILE_VALUES = [True, False, None, 0, 1, -1, 1.0, 0.5, 256.0, 1e300, -0.0, float("nan"), float("inf"),
                  float("-inf"), 2**63, 2**64, 10**400, -2**63, "", "x", "n0", "in1", "t1", "\u00e9", "e\u0301",
                  "\ud800", "a\x00b", "\u202e", "\U0001f642", [], [1], ["x"], {}, {"a": 1}, {"": None}, [[]],
                  "memplan.graph/1"]
_KEYS = ["extra", "view_of", "view_offset", "inplace", "group", "size", "kind", "cost", "Inputs", "in_place", "viewof"]


def _paths(v: Any, p: tuple = ()):
    """Every path into the nested document ``v`` (dict keys and list indices), ``()`` included."""
    yield p
    if isinstance(v, dict):
        for k in list(v):
            yield from _paths(v[k], p + (k,))
    elif isinstance(v, list):
        for i in range(len(v)):
            yield from _paths(v[i], p + (i,))


@st.composite
def mutated_docs(draw) -> Any:
    """A valid document with one to three hostile edits: a value replaced (``HOSTILE_VALUES``), a key deleted, a
    key added (unknown, misspelt or a real field with a bad value), an entry duplicated (duplicate ids), or a node
    made to read the last node's output (a cycle, or a self-loop when it is that node)."""
    doc = copy.deepcopy(draw(graph_docs(hostile=False, max_nodes=5)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        how = draw(st.sampled_from(["set", "set", "del", "add", "dup", "cycle"]))
        if not path:
            doc = {"format": "memplan.graph/1", "tensors": draw(st.sampled_from(HOSTILE_VALUES)), "nodes": []}
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        target = parent[path[-1]]
        if how == "set":
            parent[path[-1]] = draw(st.sampled_from(HOSTILE_VALUES))
        elif how == "del":
            del parent[path[-1]]
        elif how == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(_KEYS))] = draw(st.sampled_from(HOSTILE_VALUES))
        elif how == "add" and isinstance(target, list):
            target.append(draw(st.sampled_from(HOSTILE_VALUES)))
        elif how == "dup":
            for key in ("tensors", "nodes"):
                if isinstance(doc.get(key), list) and doc[key]:
                    doc[key].append(copy.deepcopy(draw(st.sampled_from(doc[key]))))
        elif how == "cycle":
            nodes = doc.get("nodes")
            last = nodes[-1] if isinstance(nodes, list) and nodes else None
            if isinstance(last, dict) and isinstance(last.get("outputs"), list) and last["outputs"]:
                reader = draw(st.sampled_from(nodes))
                if isinstance(reader, dict) and isinstance(reader.get("inputs"), list):
                    reader["inputs"].append(last["outputs"][0])
    return doc


@st.composite
def inplace_docs(draw) -> dict[str, Any]:
    """A document built around in-place pairs a kernel may run over views: a root ``X`` (an input, or made by a
    node), views of it at offsets (chains too), a node reading some of them that writes outputs in place of one or
    two of them, a side branch the streams may run beside it, and readers after. Why: random pairs
    (``graph_docs``) are seldom the last access of their input, so the planner rarely takes them, and its exactness
    promise (an in-place output shares its input's root only exactly over the input) went unexercised."""
    align = draw(st.sampled_from([1, 8, 256]))
    sx = draw(st.integers(1, 64)) * 8
    tensors: list[dict[str, Any]] = [{"id": "X", "size": sx, "kind": draw(st.sampled_from(["input", "intermediate"]))}]
    nodes: list[dict[str, Any]] = []
    if tensors[0]["kind"] == "intermediate":
        tensors.append({"id": "a", "size": draw(st.sampled_from([0, 8, 64])), "kind": "input"})
        nodes.append({"id": "mk", "op": "OP", "inputs": ["a"], "outputs": ["X"]})
    views = ["X"]
    for k in range(draw(st.integers(0, 4))):
        parent = draw(st.sampled_from(views))
        psize = next(t["size"] for t in tensors if t["id"] == parent)
        size = draw(st.integers(0, psize))
        off = draw(st.one_of(st.just(0), st.just(psize - size), st.integers(0, psize - size)))
        tensors.append({"id": f"x{k}", "size": size, "kind": "intermediate", "view_of": parent, "view_offset": off})
        views.append(f"x{k}")
    if draw(st.booleans()):   # a side branch the scheduler may run beside the in-place node
        tensors.append({"id": "s", "size": draw(st.sampled_from([8, 64, sx])), "kind": "intermediate"})
        nodes.append({"id": "side", "op": "OP", "inputs": draw(st.lists(st.sampled_from(views), max_size=2)),
                      "outputs": ["s"], "cost": 5.0})
    reads = draw(st.lists(st.sampled_from(views), min_size=1, max_size=3))
    outs, inplace = [], {}
    for j in range(draw(st.integers(1, 2))):
        src = draw(st.sampled_from(reads))
        ssize = next(t["size"] for t in tensors if t["id"] == src)
        size = draw(st.one_of(st.just(ssize), st.integers(0, ssize + 16)))
        tensors.append({"id": f"y{j}", "size": size, "kind": "intermediate"})
        outs.append(f"y{j}")
        if draw(st.integers(0, 4)):
            inplace[f"y{j}"] = src
    node: dict[str, Any] = {"id": "ip", "op": "ADD", "inputs": reads, "outputs": outs, "inplace": inplace}
    if draw(st.booleans()):
        node["group"] = "g"
    nodes.append(node)
    later = outs + (["s"] if any(n["id"] == "side" for n in nodes) else [])
    if draw(st.integers(0, 3)) == 0:   # a later read of X: the in-place node is then not its last access
        later.append(draw(st.sampled_from(views)))
    tensors.append({"id": "out", "size": draw(st.sampled_from([8, 64, sx])), "kind": "output"})
    nodes.append({"id": "fin", "op": "OP", "inputs": later, "outputs": ["out"],
                  **({"group": "g"} if node.get("group") and draw(st.booleans()) else {})})
    return {"format": "memplan.graph/1", "name": "inplace52", "alignment": align, "tensors": tensors, "nodes": nodes}


#: ids a hostile document uses: control characters, bidi overrides, lone surrogates, combining marks, the split's own
#: suffix (``x@dev1``), format strings, the empty id, a long one (not the oracle's ``<start>`` / ``<end>``)
ODD_NAMES = ["a\nb", "x@dev1", "in1@dev1", "", " ", "\u202e", "'", '"', "\\", "{}", "{0}", "%s", "e\u0301", "\u00e9",
             "\x00", "\r", "a\tb", "\ud800", "\U0001f642", "COPY", "n0", "t5", "None", "x" * 300]


@st.composite
def odd_named(draw, docs) -> dict[str, Any]:
    """A document of ``docs`` with some tensor, node, group and graph names replaced by ``ODD_NAMES`` (alone, which may
    make two ids equal and the document refused, or as a prefix of the old name, which keeps them distinct)."""
    doc = draw(docs)
    names: dict[str, str] = {}
    for t in [t["id"] for t in doc["tensors"]] + [n["id"] for n in doc["nodes"]]:
        if draw(st.integers(0, 3)) == 0:
            names[t] = draw(st.sampled_from(ODD_NAMES)) + draw(st.sampled_from(["", "_" + t]))
    if draw(st.booleans()):
        doc["name"] = draw(st.sampled_from(ODD_NAMES))

    def r(x: str) -> str:
        return names.get(x, x)
    for t in doc["tensors"]:
        t["id"] = r(t["id"])
        if t.get("view_of") is not None:
            t["view_of"] = r(t["view_of"])
    for n in doc["nodes"]:
        n["id"], n["inputs"], n["outputs"] = r(n["id"]), [r(x) for x in n["inputs"]], [r(x) for x in n["outputs"]]
        if "inplace" in n:
            n["inplace"] = {r(k): r(v) for k, v in n["inplace"].items()}
        if "group" in n and draw(st.integers(0, 3)) == 0:
            n["group"] = draw(st.sampled_from(ODD_NAMES))
    return doc
