"""Round 48: the ``memplan`` CLI against the library, differentially and by round trips.

For random valid graphs (``strategies.graphs``/``view_chains``) and random option sets, ``memplan plan G -o P``
must write the bytes ``memplan.plan_graph(G, **same options)`` saves, or fail exactly where the library fails
(one line, exit 2, no file); ``verify`` accepts what ``plan`` wrote, ``simulate`` prints the library's makespan,
``load_plan(save(plan)) == plan`` and a graph re-dumped is byte-stable. Mutants of a plan are refused by
``verify`` with the library's own reason, and ``simulate`` agrees. Every numeric option refuses 0/-1/nan/inf/
1e400/2**70/text where out of range in one line, exit 2, with no file written; an option the others leave
without effect says so (``--streams 1`` with ``--max-events`` / ``--event-us``). ``main`` runs in-process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings

import pytest
from cli_contract import assert_bad_input, leftovers, run_captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import need
from strategies import graphs, view_chains

import memplan
from memplan.examples import qkv_attention
from memplan.io import graph_text, load_graph, save_graph

FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


_run = run_captured


@st.composite
def plan_options(draw, split_path: str) -> tuple[list[str], dict]:
    """One random ``memplan plan`` option set and the ``plan_graph`` keywords of the same meaning."""
    cli: list[str] = []
    lib: dict = {}
    solver = draw(st.sampled_from([None, "auto", "greedy", "size", "search", "cpsat", "ggml"]))
    if solver:
        cli += ["--solver", solver]
        lib["solver"] = solver
    if draw(st.integers(0, 4)) == 0:
        cli += ["--time-limit", "0.1"]
        lib["time_limit"] = 0.1
    if draw(st.integers(0, 4)) == 0:
        seed = draw(st.integers(0, 5))
        cli += ["--seed", str(seed)]
        lib["seed"] = seed
    streams = draw(st.sampled_from([None, None, 2, 3, "auto"]))
    if streams is not None:
        cli += ["--streams", str(streams)]
        lib["streams"] = streams
    devices = draw(st.sampled_from([None, None, None, 1, 2]))
    if devices is not None:
        cli += ["--devices", str(devices)]
        lib["devices"] = devices
        if devices > 1:
            cli += ["--graph-out", split_path]
    if draw(st.integers(0, 3)) == 0 and (devices or 1) == 1:
        budget = draw(st.integers(0, 20000))
        cli += ["--memory-budget", str(budget)]
        lib["memory_budget"] = budget
    if streams is not None and draw(st.integers(0, 3)) == 0:
        cap = draw(st.integers(0, 3))
        cli += ["--max-events", str(cap)]
        lib["max_events"] = cap
    if (streams is not None or (devices or 1) > 1) and draw(st.integers(0, 3)) == 0:
        us = draw(st.sampled_from([0, 0.5, 40]))
        cli += ["--event-us", str(us)]
        lib["cost_model"] = memplan.CostModel(event_us=us)
    if draw(st.integers(0, 4)) == 0:
        cli.append("--fused-groups")
        lib["fused_groups"] = True
    if draw(st.integers(0, 4)) == 0:
        align = draw(st.sampled_from([256, 1024]))
        cli += ["--alignment", str(align)]
        lib["alignment"] = align
    if draw(st.integers(0, 4)) == 0:
        if (devices or 1) > 1 and draw(st.booleans()):
            caps = [draw(st.integers(0, 30000)) for _ in range(devices)]
            cli += ["--device-capacity", ",".join(map(str, caps))]
            lib["device_capacity"] = caps
        else:
            cap = draw(st.integers(0, 30000))
            cli += ["--device-capacity", str(cap)]
            lib["device_capacity"] = cap
    return cli, lib


@FAST
@given(graph=st.one_of(graphs(), view_chains()), data=st.data())
def test_plan_writes_the_librarys_bytes_and_every_command_agrees(tmp_path_factory, graph, data) -> None:
    d = tmp_path_factory.mktemp("diff")
    gp, pp, lp, sp = (str(d / n) for n in ("g.json", "p.json", "l.json", "split.json"))
    cli, lib = data.draw(plan_options(sp))
    save_graph(graph, gp)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = memplan.plan_graph(load_graph(gp), **lib)
        want.plan.save(lp)
        refused = None
    except memplan.MemplanError as exc:
        refused = exc
    code, _out, err = _run("plan", gp, "-o", pp, "-q", *cli)
    if refused is not None:   # the library's refusal, said in one line, and no file
        assert_bad_input(code, err)
        said = str(refused)   # (the CLI names its flags as typed: since round 77; round 78 spells them through ``errors.NamesOptions``)
        n = lib.get("devices")
        if n is not None and said.startswith(f"devices={n}"):
            said = f"--devices {n}" + said[len(f"devices={n}"):]
        if lib.get("device_capacity") is not None:
            said = said.replace("the device_capacity of", "--device-capacity").replace(" as a memory_budget:",
                                                                                     " as a memory budget:")
        assert said[:60] in err, (cli, said, err)
        assert not os.path.exists(pp) and not os.path.exists(sp) and not leftovers(d)
        return
    assert code == 0, (cli, err)
    with open(pp, "rb") as a, open(lp, "rb") as b:
        assert a.read() == b.read(), cli
    loaded = memplan.load_plan(pp)
    assert loaded == want.plan
    if (lib.get("devices") or 1) > 1:
        with open(sp) as f:
            assert f.read() == graph_text(want.graph)
        gp = sp
    verify_opts = ["--fused-groups"] if lib.get("fused_groups") else []
    code, out, err = _run("verify", gp, pp, *verify_opts)
    assert code == 0 and out.endswith(": safe" + (" (fusion groups as one kernel each)" if verify_opts else "") + "\n"), err
    code, out, err = _run("simulate", gp, pp)
    assert code == 0, err
    sim = memplan.simulate(want.graph, want.plan)
    assert out.startswith(f"makespan     {sim.makespan_us:.3f} us"), (out, sim)
    assert f"serial       {sim.serial_us:.3f} us" in out
    # the graph document is a fixed point of load + save
    again = str(d / "again.json")
    save_graph(load_graph(gp), again)
    with open(gp) as a, open(again) as b:
        assert a.read() == b.read()


def _mutate(doc: dict, data) -> dict:
    """``doc`` (a plan document) with one or two of: an offset copied from another tensor, an event dropped,
    a node moved to another stream, two neighbours in ``order`` swapped, the arena shrunk."""
    doc = json.loads(json.dumps(doc))
    for _ in range(data.draw(st.integers(1, 2))):
        kind = data.draw(st.sampled_from(["offset", "event", "stream", "swap", "arena"]))
        placed = [t for t in doc["tensors"] if t["offset"] is not None]
        if kind == "offset" and placed:
            data.draw(st.sampled_from(placed))["offset"] = data.draw(st.sampled_from(placed))["offset"]
        elif kind == "event" and doc["events"]:
            doc["events"].pop(data.draw(st.integers(0, len(doc["events"]) - 1)))
        elif kind == "stream" and doc["order"]:
            data.draw(st.sampled_from(doc["order"]))["stream"] = data.draw(st.integers(0, doc["streams"] - 1))
        elif kind == "swap" and len(doc["order"]) > 1:
            i = data.draw(st.integers(0, len(doc["order"]) - 2))
            doc["order"][i], doc["order"][i + 1] = doc["order"][i + 1], doc["order"][i]
        elif kind == "arena":
            doc["arena_bytes"] = max(0, doc["arena_bytes"] - data.draw(st.integers(1, 512)))
    return doc


@FAST
@given(graph=st.one_of(graphs(), view_chains()), streams=st.sampled_from([None, 2, 3, "auto"]),
       fused=st.booleans(), data=st.data())
def test_verify_and_simulate_refuse_a_mutant_with_the_librarys_reason(tmp_path_factory, graph, streams, fused,
                                                                       data) -> None:
    d = tmp_path_factory.mktemp("mut")
    gp, mp = str(d / "g.json"), str(d / "m.json")
    save_graph(graph, gp)
    try:
        made = memplan.plan(graph, streams=streams, fused_groups=fused)
    except memplan.MemplanError:
        return
    with open(mp, "w") as f:
        json.dump(_mutate(made.to_dict(), data), f)
    try:
        memplan.verify(load_graph(gp), memplan.load_plan(mp), fused_groups=fused)
        reason = None
    except memplan.MemplanError as exc:
        reason = str(exc)
    flags = ["--fused-groups"] if fused else []
    code, out, err = _run("verify", gp, mp, *flags)
    sim_code, _sim_out, sim_err = _run("simulate", gp, mp)
    if reason is None:
        assert code == 0 and out.endswith(": safe" + (" (fusion groups as one kernel each)" if fused else "") + "\n")
        if not fused:
            assert sim_code == 0, sim_err
        return
    assert_bad_input(code, err)
    tail = reason.split(": ", 1)[-1][:80]   # (the CLI's line names the plan's path first)
    assert tail in err, (reason, err)
    if not fused:   # (a plan unsafe only with fused groups is safe as plain nodes: simulate runs it)
        assert_bad_input(sim_code, sim_err)
        assert tail in sim_err, (reason, sim_err)


# ---- option edge cases ---------------------------------------------------------------------------------

#: values no numeric option takes as written (text, specials, spacing, other scripts' digits, overflow)
NOT_NUMBERS = ["nan", "inf", "-inf", "abc", "", "0x10", " 3", "1_000", "+5", "\u0663"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    graph = qkv_attention()
    save_graph(graph, str(d / "g.json"))
    memplan.plan(graph, streams=2).save(str(d / "p.json"))
    (d / "in.csv").write_text("id,lower,upper,size\nA,0,2,4\nB,1,3,4\n")
    return d


#: (command line before the option, the option, values it refuses besides NOT_NUMBERS, one it takes)
NUMERIC = [
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--time-limit", ["0", "-1", "1e400", "1" + "0" * 30], "0.5"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--seed", ["-1", "1e3", "1.5", str(2 ** 31), str(2 ** 70)], "7"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--workers", ["0", "-1", "1.5", "1025", str(2 ** 70)], "2"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--streams", ["0", "-1", "1.5", "1025", str(2 ** 70)], "auto"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--memory-budget", ["-1", "1e400", str(2 ** 63), str(2 ** 70)],
     "64M"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json", "--streams", "2"], "--max-events",
     ["-1", "1.5", "1e3", str(2 ** 63)], "0"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json", "--streams", "2"], "--event-us",
     ["-1", "1e400", "1e16", str(2 ** 70)], "0"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json", "--graph-out", "{d}/split.json"], "--devices",
     ["0", "-1", "1.5", str(2 ** 70)], "2"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--device-capacity", ["-1", "1e400", str(2 ** 70), "1,-1", "1,,2"],
     "1T"),
    (["plan", "{d}/g.json", "-o", "{d}/out.json"], "--alignment", ["0", "-1", "3", "1.5", str(2 ** 70)], "4096"),
    (["csv", "{d}/in.csv", "-o", "{d}/out.csv"], "--capacity", ["-1", "1e400", str(2 ** 70)], "1K"),
    (["csv", "{d}/in.csv", "-o", "{d}/out.csv"], "--time-limit", ["0", "-1", "1e400"], "1"),
    (["show", "{d}/p.json"], "--top", ["-1", "1.5", str(2 ** 63)], "0"),
    (["simulate", "{d}/g.json", "{d}/p.json"], "--event-us", ["-1", "1e400", "1e16"], "0"),
]


@pytest.mark.parametrize(("head", "option", "bad", "good"), NUMERIC, ids=[f"{h[0]}{o}" for h, o, _b, _g in NUMERIC])
def test_every_numeric_option_refuses_bad_values_in_one_line_and_writes_nothing(inputs, head, option, bad,
                                                                                  good) -> None:
    argv = [a.format(d=inputs) for a in head]
    before = sorted(os.listdir(inputs))
    for value in [*bad, *NOT_NUMBERS]:
        code, _out, err = _run(*argv, f"{option}={value}")
        assert_bad_input(code, err, option)
        assert sorted(os.listdir(inputs)) == before, (option, value)   # no output, no temporary file
    code, _out, err = _run(*argv, f"{option}={good}")
    assert code == 0, err
    for name in ("out.json", "out.csv", "split.json"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(inputs / name)


@pytest.mark.parametrize("output", ["{d}", "{d}/", "{d}/no/such/dir/p.json", "{d}/g.json", "{d}/./g.json",
                                    "/dev/null", "{d}/p.json\x00x"])
def test_plan_output_paths_that_cannot_take_a_plan_are_refused(inputs, output) -> None:
    """A directory, a missing directory, the input graph (also by another spelling), a device and a NUL:
    one line, exit 2, the input left as it was and nothing written."""
    graph = (inputs / "g.json").read_bytes()
    before = sorted(os.listdir(inputs))
    code, _out, err = _run("plan", inputs / "g.json", "-o", output.format(d=inputs))
    assert_bad_input(code, err)
    assert (inputs / "g.json").read_bytes() == graph and sorted(os.listdir(inputs)) == before


def test_dash_output_is_the_plan_on_stdout_and_dash_input_is_refused(inputs) -> None:
    code, out, err = _run("plan", inputs / "g.json", "-o", "-", "-q")
    assert code == 0, err
    ref = memplan.plan(load_graph(str(inputs / "g.json")))
    assert json.loads(out) == ref.to_dict()
    code, _out, err = _run("plan", "-", "-o", inputs / "x.json")
    assert_bad_input(code, err, "standard input")


# ---- options without effect: said, not silently dropped ------------------------------------------------

@pytest.mark.parametrize(("extra", "said"), [
    (["--max-events", "0"], "--max-events 0 has no effect with --streams 1"),
    (["--event-us", "50"], "--event-us 50 has no effect with --streams 1"),
    (["--max-events", "0", "--devices", "2", "--graph-out", "{d}/split.json"], "--max-events 0 has no effect with "
                                                                               "--streams 1"),
])
def test_one_stream_says_max_events_and_event_us_do_nothing(inputs, extra, said) -> None:
    """``--streams 1`` plans the serial plan: no cross-stream event to cap or time (a split's cross-device events
    are never capped), as without ``--streams``, which refuses ``--max-events`` and warns of ``--event-us``; the
    two were accepted in silence. The plan is still written, the same as without them."""
    out, ref = inputs / "one.json", inputs / "ref.json"
    argv = [a.format(d=inputs) for a in extra]
    code, _out, err = _run("plan", inputs / "g.json", "-o", out, "--streams", "1", *argv)
    assert code == 0, err
    assert f"memplan: warning: {said}" in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("memplan: warning:")]
    assert len(lines) == 1, err
    plain = [a for a in argv if a not in ("--max-events", "--event-us", "0", "50")]
    assert _run("plan", inputs / "g.json", "-o", ref, "--streams", "1", "-q", *plain)[0] == 0
    a, b = memplan.load_plan(str(out)), memplan.load_plan(str(ref))
    assert (a.order, a.events, a.tensors) == (b.order, b.events, b.tensors)
    for name in ("one.json", "ref.json", "split.json"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(inputs / name)


def test_event_us_with_one_stream_per_device_of_a_split_is_not_warned_of(inputs) -> None:
    """A split's cross-device events are timed by ``--event-us`` whatever ``--streams``: no warning there."""
    code, _out, err = _run("plan", inputs / "g.json", "-o", inputs / "s.json", "--streams", "1", "--devices", "2",
                           "--graph-out", inputs / "split2.json", "--event-us", "50")
    assert code == 0 and "warning" not in err, err
    assert memplan.load_plan(str(inputs / "s.json")).solver["split"]["event_us"] == 50
    for name in ("s.json", "split2.json"):
        os.remove(inputs / name)


# ---- pictures, traces, reports: well-formed, escaped, deterministic ------------------------------------

#: ids a picture or a trace must carry as text, never as markup, script or a line break
HOSTILE_IDS = ["a<b", "c&d", 'e"f', "g'h", "</script><script>alert(1)</script>", "new\nline", "\u00fc\u00f1\u00ed\U0001f600",
               "$x^2$", "\x1b[31mred", "]]>", "<!--", "\u2028sep"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A chain whose graph name, node ids, ops and tensor ids hold ``HOSTILE_IDS``, and its 2-stream plan."""
    d = tmp_path_factory.mktemp("hostile")
    b = memplan.GraphBuilder('n<a&m"e</script>\n$\\x$')
    prev = b.input(HOSTILE_IDS[0], 4096)
    for i, tid in enumerate(HOSTILE_IDS[1:]):
        last = i == len(HOSTILE_IDS) - 2
        out = b.output(tid, 4096) if last else b.intermediate(tid, 4096 * (1 + i % 3))
        b.node(f"n{i}{tid}", "OP<&>", [prev], out)
        prev = tid
    graph = b.build()
    save_graph(graph, str(d / "g.json"))
    assert _run("plan", d / "g.json", "-o", d / "p.json", "--streams", "2", "-q")[0] == 0
    return d, graph


def test_draw_svg_of_hostile_ids_is_well_formed_inert_and_repeatable(hostile) -> None:
    need("matplotlib")
    import xml.etree.ElementTree as ET

    d, _graph = hostile
    pictures = []
    for k in range(2):
        out = d / f"m{k}.svg"
        code, _out, err = _run("draw", d / "g.json", d / "p.json", "-o", out, "-q",
                               "--title", "<script>alert('t')</script> & \"q\"\n$\\frac{1}{0}$")
        assert code == 0, err
        pictures.append(out.read_bytes())
    assert pictures[0] == pictures[1]
    root = ET.fromstring(pictures[0])
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        assert tag not in ("script", "foreignObject", "iframe"), tag
        assert not any(a.rsplit("}", 1)[-1].lower().startswith("on") for a in el.attrib), el.attrib
        assert not any("javascript:" in str(v).lower() for v in el.attrib.values())


def test_trace_of_hostile_ids_is_json_naming_each_node_exactly_and_repeatable(hostile) -> None:
    d, graph = hostile
    code, first, err = _run("trace", d / "g.json", d / "p.json", "-o", "-", "-q")
    assert code == 0, err
    assert _run("trace", d / "g.json", d / "p.json", "-o", "-", "-q")[1] == first
    doc = json.loads(first)
    slices = {e["name"] for e in doc["traceEvents"] if e["ph"] == "X"}
    assert slices == {n.id for n in graph.nodes}
    plan = memplan.load_plan(str(d / "p.json"))
    sim = memplan.simulate(graph, plan)
    assert doc["otherData"]["makespan_us"] == round(sim.makespan_us, 3)
    assert max(e["args"]["live"] for e in doc["traceEvents"] if e["ph"] == "C") <= plan.arena_bytes


def test_show_and_verify_print_hostile_ids_on_their_own_lines(hostile) -> None:
    d, _graph = hostile
    from memplan.show import describe

    code, out, err = _run("show", d / "p.json", "--top", "50")
    assert code == 0, err
    assert out == describe(memplan.load_plan(str(d / "p.json")), top=50) + "\n"
    assert "\x1b" not in out and "\u2028" not in out and "new\nline" not in out
    code, out, err = _run("verify", d / "g.json", d / "p.json")
    assert code == 0 and out.count("\n") == 1, (out, err)


# ---- csv: the CLI is solve_table, and its output reads back --------------------------------------------

def _read_csv_text(path) -> str:
    """The file's text with its line ends as written (a quoted cell may hold a lone "\\r")."""
    with open(path, newline="") as f:
        return f.read()


CELLS = st.text(st.sampled_from(list('ab,"\r\n =\u00e9\U0001f600;')), min_size=1, max_size=5)


@FAST
@given(rows=st.lists(st.tuples(CELLS, st.integers(0, 5), st.integers(1, 4), st.integers(0, 100)), min_size=1,
                     max_size=6, unique_by=lambda r: r[0].strip()),
       solver=st.sampled_from(["greedy", "size", "search", "auto"]))
def test_csv_output_is_the_librarys_and_solving_it_again_gives_the_same_bytes(tmp_path_factory, rows, solver) -> None:
    import csv

    from memplan.io.minimalloc import format_csv, read_csv, solve_table

    d = tmp_path_factory.mktemp("csv")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "lower", "upper", "size"])
    for bid, lower, length, size in rows:
        writer.writerow([bid, lower, lower + length, size])
    (d / "in.csv").write_text(buf.getvalue(), newline="")
    code, _out, err = _run("csv", d / "in.csv", "-o", d / "o.csv", "--solver", solver, "-q")
    try:
        table = read_csv(str(d / "in.csv"))
    except memplan.MemplanError as exc:
        assert_bad_input(code, err)
        assert str(exc)[:60] in err
        return
    assert code == 0, err
    text = _read_csv_text(d / "o.csv")
    assert text == format_csv(table, solve_table(table, solver=solver).offsets)
    again = read_csv(str(d / "o.csv"))
    assert again.ids == table.ids and (again.sizes == table.sizes).all()
    assert _run("csv", d / "o.csv", "-o", d / "o2.csv", "--solver", solver, "-q")[0] == 0
    assert _read_csv_text(d / "o2.csv") == text


# ---- the real entry point: the same bytes under any hash seed ------------------------------------------

def test_plan_bytes_do_not_depend_on_the_hash_seed(tmp_path) -> None:
    """Two ``python -m memplan plan`` processes of other ``PYTHONHASHSEED``s write the same plan (a set iterated in
    the planner would show here, not in-process)."""
    import subprocess
    import sys

    from memplan.generators import fanout_join

    save_graph(fanout_join(60, max_width=6, streams=4, seed=11)[0], str(tmp_path / "g.json"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    texts = []
    for seed in ("0", "1"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=root)
        out = tmp_path / f"p{seed}.json"
        r = subprocess.run([sys.executable, "-m", "memplan", "plan", "g.json", "-o", out.name, "--streams", "auto",
                            "--memory-budget", "300K", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        texts.append(out.read_text())
    assert texts[0] == texts[1]


# ---- csv --minimize with auto: said to do nothing only where it does nothing ---------------------------

#: 7 buffers whose heuristics pack 21 bytes where 20 fit (the lower bound): auto's short search finds 20
SMALL_CSV = "id,lower,upper,size\nb0,4,8,1\nb1,3,5,8\nb2,0,3,7\nb3,2,3,5\nb4,1,4,1\nb5,1,5,7\nb6,6,7,8\n"


def test_csv_minimize_with_auto_on_a_small_problem_is_not_called_idle(tmp_path) -> None:
    """Without --time-limit, auto runs a short search on a problem of at most 64 buffers, which stops at the first
    packing within --capacity unless --minimize: ``--capacity 28 --minimize`` writes an arena of 20 where the first
    fit is 21, and was warned of as "no effect ...; ignored"."""
    (tmp_path / "p.csv").write_text(SMALL_CSV)
    code, _out, err = _run("csv", tmp_path / "p.csv", "-o", tmp_path / "fit.csv", "--capacity", "28", "--solver",
                           "auto")
    assert code == 0 and "arena 21 within capacity 28" in err, err
    code, _out, err = _run("csv", tmp_path / "p.csv", "-o", tmp_path / "min.csv", "--capacity", "28", "--solver",
                           "auto", "--minimize")
    assert code == 0 and "arena 20 within capacity 28" in err, err
    assert "warning" not in err, err


def test_csv_minimize_with_auto_on_a_large_problem_is_still_called_idle(tmp_path) -> None:
    """Past 200 buffers (``auto.POLISH_WIDE_BUFFERS``; 64 before round 59, and this problem had 70) auto without
    --time-limit runs its heuristics alone, which pack the same either way: the warning stays, naming the size, and
    the file is the one written without --minimize."""
    rows = "".join(f"b{i},{i % 7},{i % 7 + 2},{i * 37 % 50 + 1}\n" for i in range(300))
    (tmp_path / "p.csv").write_text("id,lower,upper,size\n" + rows)
    outs = []
    for extra in ([], ["--minimize"]):
        out = tmp_path / f"o{len(extra)}.csv"
        code, _out, err = _run("csv", tmp_path / "p.csv", "-o", out, "--capacity", "100000", "--solver", "auto",
                               "-q", *extra)
        assert code == 0, err
        outs.append(out.read_text())
        if extra:
            assert "memplan: warning: --minimize has no effect with --solver auto without --time-limit on 300 " \
                   "buffers" in err, err
    assert outs[0] == outs[1]


# ---- --workers where CP-SAT runs one thread ------------------------------------------------------------

@pytest.mark.parametrize("where", ["option", "graph"])
def test_workers_above_the_interleave_alignment_is_said_to_do_nothing(tmp_path, where) -> None:
    """Above an alignment of 2**30 B CP-SAT runs one thread whatever ``--workers`` says (solvers.cpsat); the option
    was dropped in silence. Now one warning line, and the plan is the one ``--workers 1`` writes; at 2**30 itself
    no warning."""
    graph = qkv_attention()
    big = 1 << 31
    if where == "graph":
        doc = json.loads(graph_text(graph))
        doc["alignment"] = big
        (tmp_path / "g.json").write_text(json.dumps(doc))
        extra: list[str] = []
        said = f"--workers 4 has no effect on a graph of alignment {big}"
    else:
        save_graph(graph, str(tmp_path / "g.json"))
        extra = ["--alignment", str(big)]
        said = f"--workers 4 has no effect with --alignment {big}"
    base = ["plan", tmp_path / "g.json", "--solver", "cpsat", "--time-limit", "0.2", *extra]
    code, _out, err = _run(*base, "-o", tmp_path / "w4.json", "--workers", "4", "-q")
    assert code == 0 and err.count("\n") == 1 and f"memplan: warning: {said}" in err, err
    assert _run(*base, "-o", tmp_path / "w1.json", "-q")[0] == 0
    assert (tmp_path / "w4.json").read_bytes() == (tmp_path / "w1.json").read_bytes()
    if where == "option":
        code, _out, err = _run("plan", tmp_path / "g.json", "--solver", "cpsat", "--time-limit", "0.2", "--alignment",
                               str(1 << 30), "-o", tmp_path / "w.json", "--workers", "4", "-q")
        assert code == 0 and "warning" not in err, err
