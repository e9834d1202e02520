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
from cli_contract import assert_bad_input, leftovers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import graphs, view_chains

import memplan
from memplan.cli import main
from memplan.examples import qkv_attention
from memplan.io import graph_text, load_graph, save_graph

FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _run(*argv) -> tuple[int, str, str]:
    """``memplan argv`` in-process: (exit code, stdout, stderr); argparse's SystemExit is its code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


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
        assert str(refused)[:60] in err, (cli, str(refused), err)
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
        elif kind == "stream":
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
