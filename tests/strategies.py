"""Hypothesis strategies: random valid graphs and random schedules for them.

The graphs have the shapes that break planners: fan-out and joins, view chains (reshape/slice),
nodes that write through a view into an existing tensor (SET_ROWS into a cache or an activation),
in-place pairs, fusion groups, inputs, weights, outputs and zero-sized tensors. Schedules are a random
topological issue order (fusion groups kept together) with a random stream per node.
"""

from __future__ import annotations

from hypothesis import strategies as st

from memplan import Graph, GraphBuilder


def fit_devices(graph: Graph, opts: dict) -> dict:
    """``opts`` with ``devices`` lowered to the most stages ``graph`` can be cut into: more devices than that
    are refused by name (``devices.split.check_stages``), and random graphs may have a single node."""
    if opts.get("devices", 1) <= 1:
        return opts
    from memplan.devices import cut_constraints, units_of
    from memplan.devices.split import max_stages

    return dict(opts, devices=min(opts["devices"], max_stages(cut_constraints(graph, units_of(graph))[0])))


@st.composite
def graphs(draw, max_nodes: int = 9) -> Graph:
    alignment = draw(st.sampled_from([1, 8, 64, 256]))
    b = GraphBuilder("rand", alignment=alignment)
    size = st.one_of(st.integers(0, 1200), st.sampled_from([256, 512, 1024]))
    available: list[tuple[str, int]] = []   # readable tensors (id, size)
    roots: list[tuple[str, int]] = []       # roots a node may write a view into
    kinds: dict[str, str] = {}
    # roots declared now but produced by a later node: a node may write a view into one before its
    # producer runs (legal: only reads must follow the writers); they become readable once produced
    pending: dict[str, tuple[int, list[tuple[str, int]]]] = {}
    n_inputs = draw(st.integers(1, 3))
    for i in range(n_inputs):
        s = draw(size)
        b.input(f"in{i}", s)
        available.append((f"in{i}", s))
        roots.append((f"in{i}", s))
        kinds[f"in{i}"] = "input"
    if draw(st.booleans()):
        s = draw(st.integers(0, 2048))
        b.weight("w0", s)
        available.append(("w0", s))
        roots.append(("w0", s))
        kinds["w0"] = "weight"
    n_nodes = draw(st.integers(1, max_nodes))
    t_count = 0

    def tail_view(pid: str, psize: int) -> tuple[str, int]:
        """A fresh view over the last bytes of ``pid``, for a node to write into."""
        nonlocal t_count
        vs = draw(st.integers(0, psize))
        vid = f"v{t_count}"
        t_count += 1
        b.view(vid, pid, vs, psize - vs)
        return vid, vs

    group_id = 0
    open_group: str | None = None
    for k in range(n_nodes):
        if draw(st.integers(0, 6)) == 0:
            tid = f"t{t_count}"
            t_count += 1
            s = draw(size)
            b.tensor(tid, s, draw(st.sampled_from(["intermediate", "output"])))
            pending[tid] = (s, [])
        # an unproduced view (reshape / slice) of something readable, sometimes a chain
        if available and draw(st.integers(0, 3)) == 0:
            pid, psize = draw(st.sampled_from(available))
            vs = draw(st.integers(0, psize))
            vo = draw(st.integers(0, psize - vs))
            vid = f"v{t_count}"
            t_count += 1
            b.view(vid, pid, vs, vo, kind=draw(st.sampled_from(["intermediate"] * 4 + ["output"])))
            available.append((vid, vs))
        ins = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3)) if available else []
        outs: list[str] = []
        new_roots: list[tuple[str, int]] = []
        for _ in range(draw(st.integers(1, 2))):
            if pending and draw(st.integers(0, 3)) == 0:
                kind_ = draw(st.sampled_from(["produce", "write"]))
                pid = draw(st.sampled_from(sorted(pending)))
                psize, views = pending[pid]
                if kind_ == "produce" or pid in outs:
                    if pid in outs:
                        continue
                    del pending[pid]
                    outs.append(pid)
                    new_roots.extend([(pid, psize)] + views)
                    roots.append((pid, psize))
                else:  # write a view into a root whose producer comes later
                    vid, vs = tail_view(pid, psize)
                    outs.append(vid)
                    views.append((vid, vs))
            elif roots and draw(st.integers(0, 4)) == 0:
                # write through a fresh view into an existing root (SET_ROWS-style)
                vid, vs = tail_view(*draw(st.sampled_from(roots)))
                outs.append(vid)
                new_roots.append((vid, vs))
            else:
                tid = f"t{t_count}"
                t_count += 1
                s = draw(size)
                kind = draw(st.sampled_from(["intermediate"] * 3 + ["output"]))
                b.tensor(tid, s, kind)
                outs.append(tid)
                new_roots.append((tid, s))
                roots.append((tid, s))
                kinds[tid] = kind
        inplace = {}
        if ins and draw(st.integers(0, 2)) == 0:  # one or two in-place pairs (possibly one input twice)
            for o in draw(st.lists(st.sampled_from(outs), min_size=1, max_size=2, unique=True)):
                inplace[o] = draw(st.sampled_from([t for t, _ in ins]))
        # fusion groups: contiguous runs of nodes
        if open_group is not None and draw(st.booleans()):
            group = open_group
        elif draw(st.integers(0, 4)) == 0:
            group = f"g{group_id}"
            group_id += 1
        else:
            group = None
        open_group = group
        b.node(f"n{k}", "OP", [t for t, _ in ins], outs, inplace=inplace, group=group,
               cost=float(draw(st.integers(1, 5))))
        available.extend(new_roots)
    if pending:  # every declared root gets its producer
        b.node("last", "OP", [], sorted(pending))
    return b.build()


def data_deps(graph: Graph) -> dict[str, set[str]]:
    """node -> nodes that write what it reads (along view chains), computed independently."""
    producer = {o: n.id for n in graph.nodes for o in n.outputs}
    parent = {t.id: t.view_of for t in graph.tensors}
    deps: dict[str, set[str]] = {}
    for n in graph.nodes:
        d = set()
        for t in n.inputs:
            cur = t
            while cur is not None:
                if cur in producer:
                    d.add(producer[cur])
                cur = parent[cur]
        d.discard(n.id)
        deps[n.id] = d
    return deps


@st.composite
def schedules(draw, graph: Graph, max_streams: int = 3) -> tuple[list[str], dict[str, int]]:
    """A random topological issue order (each fusion group issued as one block) and streams."""
    deps = data_deps(graph)
    units: list[list[str]] = []
    for n in graph.nodes:
        if n.group is not None and units and graph.node(units[-1][-1]).group == n.group:
            units[-1].append(n.id)
        else:
            units.append([n.id])
    done: set[str] = set()
    order: list[str] = []
    remaining = list(range(len(units)))
    while remaining:
        ready = [u for u in remaining
                 if all(d in done or d in units[u] for m in units[u] for d in deps[m])]
        u = draw(st.sampled_from(ready))
        remaining.remove(u)
        order.extend(units[u])
        done.update(units[u])
    streams = draw(st.integers(1, max_streams))
    stream_of = {}
    for unit in units:
        s = draw(st.integers(0, streams - 1))
        for m in unit:
            stream_of[m] = s
    return order, stream_of


@st.composite
def view_chains(draw, max_nodes: int = 12) -> Graph:
    """Graphs rich in views that nodes produce, the shapes whose writers the planner and verifier fold
    per view: view ops reading their parent (an ONNX Reshape/Identity chain imported as views, ggml VIEW
    nodes), nodes writing a view of a tensor without reading it (SET_ROWS), views of those views,
    unproduced views between, readers at any depth, in-place pairs, fusion groups (a member may read a
    view another member writes) and zero costs (ties in the scheduler)."""
    b = GraphBuilder("chains", alignment=draw(st.sampled_from([1, 64, 256])))
    sizes: dict[str, int] = {}
    avail: list[str] = []
    for i in range(draw(st.integers(1, 2))):
        sizes[f"in{i}"] = draw(st.sampled_from([256, 512, 1024]))
        avail.append(b.input(f"in{i}", sizes[f"in{i}"]))
    group, gid = None, 0
    for k in range(draw(st.integers(1, max_nodes))):
        t = draw(st.sampled_from(avail))
        what = draw(st.sampled_from(["view_op", "view_op", "set_rows", "plain_view", "compute", "compute"]))
        extra = draw(st.lists(st.sampled_from(avail), max_size=1))
        cost = float(draw(st.sampled_from([0, 0, 1, 3])))
        if what == "plain_view":  # no node: the next one reads through it
            v = b.view(f"u{k}", t, sizes[t] // 2, draw(st.sampled_from([0, sizes[t] // 2])))
            sizes[v] = sizes[t] // 2
            avail.append(v)
            continue
        if group is not None and draw(st.booleans()):
            pass  # the fusion group goes on
        elif draw(st.integers(0, 4)) == 0:
            group, gid = f"g{gid}", gid + 1
        else:
            group = None
        if what == "view_op":
            out = b.view(f"v{k}", t, sizes[t])
            sizes[out] = sizes[t]
            b.node(f"n{k}", "RESHAPE", [t, *extra], out, cost=cost, group=group)
        elif what == "set_rows":
            out = b.view(f"v{k}", t, sizes[t] // 2, sizes[t] - sizes[t] // 2)
            sizes[out] = sizes[t] // 2
            b.node(f"n{k}", "SET_ROWS", extra or [avail[0]], out, cost=cost, group=group)
        else:
            kind = draw(st.sampled_from(["intermediate"] * 4 + ["output"]))
            sizes[f"t{k}"] = draw(st.sampled_from([0, 256, 512, 1024]))
            out = b.tensor(f"t{k}", sizes[f"t{k}"], kind)
            inplace = {out: t} if draw(st.integers(0, 3)) == 0 else None
            b.node(f"n{k}", "OP", [t, *extra], out, cost=cost, group=group, inplace=inplace)
        avail.append(out)
    return b.build()


@st.composite
def llama_shapes(draw, max_hidden: int = 1536) -> dict:
    """Keyword overrides of ``runtime.models.llama.config``: a Llama step off the named configs' paths.

    Head sizes the kernels take (multiples of 8, the common ones and odd ones such as 24 or 80), grouped
    query attention from 1 to 8 heads per KV head, FFN widths and vocabularies that are not multiples of
    anything (the fallback products), an empty or long cache, one or two layers. ``max_hidden`` keeps a CPU
    run short.
    """
    d = draw(st.sampled_from([8, 16, 24, 32, 40, 64, 80, 96, 128, 256]))
    kv = draw(st.integers(1, 4))
    grp = draw(st.sampled_from([g for g in (1, 2, 3, 4, 5, 8) if d * kv * g <= max_hidden] or [1]))
    kv = kv if d * kv * grp <= max_hidden else 1
    return dict(hidden=d * kv * grp, heads=kv * grp, kv_heads=kv,
                ffn=draw(st.one_of(st.integers(1, 140).map(lambda k: 8 * k), st.integers(3, 1100))),
                vocab=draw(st.integers(1, 1100)), ctx=draw(st.sampled_from([0, 1, 7, 64, 300])),
                layers=draw(st.integers(1, 2)))
