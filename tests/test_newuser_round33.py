"""Round 33, a new user's first hour: option names carried between the CLI and Python, and the torch
importer's failures on transformers models, each said with the way out."""

from __future__ import annotations

import pytest
from cli_contract import assert_bad_input
from cli_contract import run_memplan as run
from needs import need

import memplan
import memplan.examples


@pytest.mark.parametrize("typo, meant", [(["--memory-bugdet", "1M"], "--memory-budget"), (["--event_us", "3"], "--event-us"),
                                         (["--memory_budget=1M"], "--memory-budget"), (["--max_events", "3"], "--max-events")])
def test_cli_unknown_option_names_the_nearest(tmp_path, capsys, graph_file, typo, meant):
    """``memplan plan G -o P --event_us 3`` (the Python keyword on the command line) or a typo was
    "unrecognized arguments" alone; ``memplan.plan(g, memory_bugdet=...)`` already named the option meant."""
    p = tmp_path / "p.json"
    code, _, err = run(capsys, ["plan", str(graph_file), "-o", str(p), *typo])
    assert_bad_input(code, err, "unrecognized arguments", f"(did you mean {meant}?)")
    assert not p.exists()


def test_cli_unknown_option_far_from_any_gets_no_guess(tmp_path, capsys, graph_file):
    code, _, err = run(capsys, ["plan", str(graph_file), "-o", str(tmp_path / "p.json"), "--xyzzy"])
    assert_bad_input(code, err, "unrecognized arguments: --xyzzy")
    assert "did you mean" not in err


def test_cli_streams_typo_says_auto_is_taken(tmp_path, capsys, graph_file):
    """``--streams autp`` said "not a count: 'autp' (plain ASCII decimal digits)", as if only numbers were taken."""
    code, _, err = run(capsys, ["plan", str(graph_file), "-o", str(tmp_path / "p.json"), "--streams", "autp"])
    assert_bad_input(code, err, "--streams", "'autp'", "or auto")


@pytest.mark.parametrize("call", ["plan", "simulate", "graph_optimize"])
def test_event_us_keyword_points_at_the_cost_model(call):
    """``memplan.plan(g, event_us=3)`` (the CLI's ``--event-us``) was "unknown option 'event_us'" with no word on
    ``CostModel``, which holds it."""
    import handgraphs

    g = handgraphs.qkv()
    args = (g, memplan.plan(g)) if call == "simulate" else (g,)
    with pytest.raises(memplan.OptionError, match=r"event_us.*cost_model=memplan\.CostModel\(event_us=\.\.\.\)"):
        getattr(memplan, call)(*args, event_us=3)


def test_unknown_option_without_a_home_elsewhere_keeps_its_nearest():
    import handgraphs

    g = handgraphs.qkv()
    with pytest.raises(memplan.OptionError, match=r"did you mean 'fused_groups'\?"):
        memplan.verify(g, memplan.plan(g), fused_group=True)
    with pytest.raises(memplan.OptionError) as info:   # verify takes no cost model: no CostModel hint
        memplan.verify(g, memplan.plan(g), event_us=3)
    assert "CostModel" not in str(info.value)


def test_from_torch_of_a_forward_returning_a_cache_says_use_cache():
    """A transformers decoder built from a config returns its ``DynamicCache``: the error was torch's advice to
    register a pytree, where ``kwargs={'use_cache': False}`` is what a caller passes."""
    torch = need("torch")

    class DynamicCache:
        def __init__(self, k):
            self.k = k

    class Decoder(torch.nn.Module):
        def forward(self, x):
            return x * 2, DynamicCache(x + 1)

    with pytest.raises(memplan.GraphError, match=r"DynamicCache.*kwargs=\{'use_cache': False\}") as info:
        memplan.from_torch(Decoder(), (torch.randn(4),))
    assert "functorch" not in str(info.value)


def test_cli_import_of_a_program_with_an_unloadable_output_type_says_so(tmp_path, capsys):
    """A GPT-2 saved from ``torch.export.export(model, (ids,))`` returns a ``CausalLMOutput...``, which
    ``torch.export.load`` cannot rebuild: ``memplan import`` said "not a torch.export program", which it is."""
    torch = need("torch")
    pytree = torch.utils._pytree

    class Output:
        def __init__(self, y):
            self.y = y

    class Model(torch.nn.Module):
        def forward(self, x):
            return Output(x + 1)

    pytree.register_pytree_node(Output, lambda o: ([o.y], None), lambda v, _: Output(v[0]),
                                serialized_type_name="round33.Output")
    try:
        ep = torch.export.export(Model(), (torch.randn(4),))
        torch.export.save(ep, str(tmp_path / "m.pt2"))
    finally:
        pytree._deregister_pytree_node(Output)   # as in a fresh `memplan import` process
    out = tmp_path / "g.json"
    code, _, err = run(capsys, ["import", str(tmp_path / "m.pt2"), "-o", str(out)])
    assert_bad_input(code, err, "m.pt2", "round33.Output", "return_dict", "cannot load")
    assert "not a torch.export program" not in err
    assert not out.exists()


@pytest.mark.parametrize("call, meant", [(lambda b: b.node("a", "U", ["x"], "t", in_place={"t": "x"}), "inplace="),
                                         (lambda b: b.node("a", "U", ["x"], "t", costs=3.0), "cost="),
                                         (lambda b: b.node("a", "U", ["x"], "t", Group="g"), "group="),
                                         (lambda b: b.intermediate("t", 16, viewof="x"), "view_of=")])
def test_builder_refuses_a_misspelt_keyword(call, meant):
    """``GraphBuilder.node(..., in_place={...})`` or ``costs=3`` was kept as a free-form attribute, which the
    planner never reads: the graph lost its in-place pair or cost without a word."""
    b = memplan.GraphBuilder("g")
    b.input("x", 16)
    with pytest.raises(memplan.GraphError, match=f"did you mean {meant}"):
        call(b)


def test_builder_view_names_its_own_offset_keyword():
    """``b.view("v", "x", 8, view_offset=4)`` (tensor()'s and the JSON's name) was Python's TypeError "got
    multiple values for keyword argument 'view_offset'"."""
    b = memplan.GraphBuilder("g")
    b.input("x", 16)
    with pytest.raises(memplan.GraphError, match="offset="):
        b.view("v", "x", 8, view_offset=4, kind="input")


def test_builder_keeps_free_form_attrs():
    b = memplan.GraphBuilder("g")
    b.input("x", 16, shape=[4], dtype="f32")
    b.node("a", "U", ["x"], b.output("y", 16, device=0), cost=1.0, shape=[4], dtype="f32")
    g = b.build()
    assert g.node("a").attrs == {"shape": [4], "dtype": "f32"} and g.node("a").cost == 1.0


def test_readme_executor_block_runs(capsys):
    """README's "Driving your own executor": the block runs as written, and what it prints is the plan's own
    offsets and events (each wait an event whose ``before`` is that node)."""
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    body = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith("# an executor's view"))
    scope: dict = {"__name__": "__readme__"}
    exec(compile(body, "README.md", "exec"), scope)
    plan, binding = scope["plan"], scope["binding"]
    assert binding.places["k"].offset == plan.offsets()["k"]
    for step in binding.steps:
        assert all(plan.events[i][1] == step.node for i in step.waits)
        assert all(plan.events[i][0] == step.node for i in step.records)
    assert sum(len(s.waits) for s in binding.steps) == len(plan.events) > 0
    assert capsys.readouterr().out.count("\n") == 1 + len(binding.steps)


def _chain_graph():
    b = memplan.GraphBuilder("chain")
    b.input("x", 1024)
    prev = "x"
    for i in range(4):
        prev = b.node(f"op{i}", "U", [prev], b.intermediate(f"t{i}", 1024) if i < 3 else b.output("y", 1024), cost=5.0)
    return b.build()


def test_split_plan_against_its_unsplit_graph_names_the_split_graph(tmp_path, capsys):
    """``plan = memplan.plan(g, devices=2)`` then ``memplan.verify(g, plan)`` (or ``memplan verify G.json P.json``
    without ``--graph-out``'s file) listed "order names unknown node 'copy:...'" and "(wrong graph?)": the plan
    refers to the split graph, which ``plan()`` never hands back, and nothing said so."""
    g = _chain_graph()
    plan = memplan.plan(g, devices=2)
    assert plan.devices == 2
    with pytest.raises(memplan.UnsafePlan, match=r"split over 2 devices.*plan_graph\(graph, devices=2\)\.graph"):
        memplan.verify(g, plan)
    with pytest.raises(memplan.UnsafePlan, match="split over 2 devices"):
        memplan.simulate(g, plan)
    memplan.save_graph(g, str(tmp_path / "g.json"))
    plan.save(str(tmp_path / "p.json"))
    code, _, err = run(capsys, ["verify", str(tmp_path / "g.json"), str(tmp_path / "p.json")])
    assert_bad_input(code, err, "split over 2 devices", "--graph-out")
    memplan.verify(memplan.plan_graph(g, devices=2).graph, plan)   # the split graph: safe, no finding


def test_one_device_foreign_plan_gets_no_split_hint():
    g = _chain_graph()
    other = memplan.plan(memplan.examples.qkv_attention())
    with pytest.raises(memplan.UnsafePlan) as info:
        memplan.verify(g, other)
    assert "split" not in str(info.value)


def _block_doc() -> dict:
    """norm -> (pa, pb) -> add -> out, with ``a2`` a view of ``pa``'s output read by ``add``."""
    return {"format": "memplan.graph/1", "name": "block",
            "tensors": [{"id": "x", "size": 256, "kind": "input"}, {"id": "h", "size": 256, "kind": "intermediate"},
                        {"id": "a", "size": 256, "kind": "intermediate"}, {"id": "b", "size": 256, "kind": "intermediate"},
                        {"id": "a2", "size": 256, "kind": "intermediate", "view_of": "a"},
                        {"id": "s", "size": 256, "kind": "intermediate"}, {"id": "y", "size": 256, "kind": "output"}],
            "nodes": [{"id": "norm", "op": "N", "inputs": ["x"], "outputs": ["h"]},
                      {"id": "pa", "op": "M", "inputs": ["h"], "outputs": ["a"]},
                      {"id": "pb", "op": "M", "inputs": ["h"], "outputs": ["b"]},
                      {"id": "va", "op": "VIEW", "inputs": ["a"], "outputs": ["a2"]},
                      {"id": "add", "op": "ADD", "inputs": ["a2", "b"], "outputs": ["s"]},
                      {"id": "out", "op": "U", "inputs": ["s"], "outputs": ["y"]}]}


def test_a_cycle_is_named_by_its_nodes():
    """A hand-written graph whose ``pa`` also reads ``s`` (written by ``add``, which reads ``pa``'s output through a
    view) said "out of topological order or a cycle", leaving the author to find out which."""
    doc = _block_doc()
    doc["nodes"][1]["inputs"].append("s")
    with pytest.raises(memplan.GraphError, match=r"a cycle: 'pa' -> 'va' -> 'add' -> 'pa'"):
        memplan.graph_from_dict(doc)


def test_a_misordered_listing_says_there_is_no_cycle():
    doc = _block_doc()
    doc["nodes"].insert(0, doc["nodes"].pop(4))   # add listed first: its writers come later, but no cycle
    with pytest.raises(memplan.GraphError, match="out of topological order: no cycle") as info:
        memplan.graph_from_dict(doc)
    assert "'add' reads tensor 'a2'" in str(info.value)
