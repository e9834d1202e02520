"""Round 74 (contract74): CONTRACT.md read clause by clause, each edge tried from both sides; the defects it
found, each pinned by a test that fails without its fix."""

from __future__ import annotations

import pytest

from memplan import GraphError, graph_from_dict


def _view_chain_graph(nodes: list[dict]) -> dict:
    """x -> t (512 B) with a view chain tv (of t) -> tvv (of tv), and an output y; ``nodes`` in the given order."""
    return {
        "format": "memplan.graph/1",
        "name": "g",
        "tensors": [
            {"id": "x", "size": 256, "kind": "input"},
            {"id": "t", "size": 512, "kind": "intermediate"},
            {"id": "tv", "size": 256, "kind": "intermediate", "view_of": "t", "view_offset": 0},
            {"id": "tvv", "size": 128, "kind": "intermediate", "view_of": "tv", "view_offset": 0},
            {"id": "y", "size": 256, "kind": "output"},
        ],
        "nodes": nodes,
    }


@pytest.mark.parametrize("nodes,expect", [
    # a reader of a view listed before the root's producer
    ([{"id": "b", "op": "ADD", "inputs": ["tvv"], "outputs": ["y"]},
      {"id": "a", "op": "MUL", "inputs": ["x"], "outputs": ["t"]}],
     "node 'b' reads tensor 'tvv', a view of 't', whose producer 'a' comes later (nodes out of topological order"),
    # a node reading a view of its own output (a cycle through the view chain)
    ([{"id": "a", "op": "MUL", "inputs": ["x", "tv"], "outputs": ["t"]},
      {"id": "b", "op": "ADD", "inputs": ["t"], "outputs": ["y"]}],
     "node 'a' reads tensor 'tv', a view of 't', whose producer 'a' is the node itself (cycle)"),
    # a node reading its own output directly
    ([{"id": "a", "op": "MUL", "inputs": ["x", "t"], "outputs": ["t"]},
      {"id": "b", "op": "ADD", "inputs": ["t"], "outputs": ["y"]}],
     "node 'a' reads tensor 't' whose producer 'a' is the node itself (cycle)"),
])
def test_read_before_a_view_chains_writer_names_the_tensor_written(nodes, expect):
    """A read of a view whose root is written later named the writing node as the "view parent" ("node 'b' reads
    tensor 'tvv' whose view parent 'a' comes later"): 'a' is a node, the view's parent is a tensor, and the
    tensor whose writer comes late ('t') was named nowhere. It is named now, with its producer; and a node reading
    what it writes itself no longer "comes later" than itself."""
    with pytest.raises(GraphError) as e:
        graph_from_dict(_view_chain_graph(nodes))
    assert expect in str(e.value)
    assert "view parent" not in str(e.value)


@pytest.mark.parametrize("key", ["tensors", "nodes"])
def test_a_graph_without_its_tensors_or_nodes_field_names_it_missing(key):
    """CONTRACT.md's graph has both lists and gives neither a default. A document without one was refused as
    "graph: 'nodes' must be a list", as if a 'nodes' of another type were there; the plan reader says "field
    'events' is missing" of its own. Now the field is named as missing; one of another type keeps its message."""
    doc = _view_chain_graph([{"id": "a", "op": "MUL", "inputs": ["x"], "outputs": ["t"]},
                             {"id": "b", "op": "ADD", "inputs": ["tvv"], "outputs": ["y"]}])
    graph_from_dict(doc)   # the document is valid with both
    del doc[key]
    with pytest.raises(GraphError, match=rf"^graph: no '{key}' field \(a list of the graph's {key}; \[\] for none\)$"):
        graph_from_dict(doc)
    doc[key] = None
    with pytest.raises(GraphError, match=rf"^graph: '{key}' must be a list$"):
        graph_from_dict(doc)


@pytest.mark.parametrize("call,expect", [
    (lambda b: b.input("x"), r"^GraphBuilder\.input\(\) needs argument 'size': it has no default$"),
    (lambda b: b.view("v", "x"), r"^GraphBuilder\.view\(\) needs argument 'size'"),
    (lambda b: b.node("a", "RELU", ["x"], ["y"], 5.0),
     r"^GraphBuilder\.node\(\) takes at most 4 \(id, op, inputs, outputs\) positional arguments, not 5: 5\.0 and any "
     r"after it must be given by keyword; options: cost, inplace, group$"),
    (lambda b: b.input("x", 256, size=512), r"^GraphBuilder\.input\(\) got argument 'size' twice: by position \(256\)"),
    (lambda b: b.tensor("x", 256, "input", kind="output"), r"^GraphBuilder\.tensor\(\) got argument 'kind' twice"),
    (lambda b: b.weight(), r"^GraphBuilder\.weight\(\) needs argument 'id'"),
])
def test_graph_builder_methods_name_a_call_that_does_not_bind(call, expect):
    """README's GraphBuilder (``b.input``, ``b.node``, ...) builds the contract's graphs in code, and README promises
    an ``OptionError`` for "an option given by position, or a required argument left out or given twice"; each of
    these was Python's bare TypeError (``GraphBuilder.node() takes 5 positional arguments but 6 were given``: the
    cost by position), while ``GraphBuilder(...)`` itself names such a call. Still a TypeError, as before."""
    from memplan import GraphBuilder, OptionError

    b = GraphBuilder("g")
    with pytest.raises(OptionError, match=expect) as e:
        call(b)
    assert isinstance(e.value, TypeError)
    # a call that binds builds as before
    b.input("x", 256)
    b.node("a", "RELU", ["x"], b.output("y", 256), cost=5.0)
    assert [n.cost for n in b.build().nodes] == [5.0]
