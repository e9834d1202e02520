"""The graph IR: a valid graph round-trips; each way to break the graph contract is a GraphError that
names the offending node, tensor or field."""

from __future__ import annotations

import copy
import json

import handgraphs as H
import pytest

import memplan
from memplan import GraphBuilder, GraphError, graph_from_dict


def base() -> dict:
    """x -> a -> t -> b -> y, with a weight w and a view tv of t."""
    return {
        "format": "memplan.graph/1",
        "name": "g",
        "alignment": 256,
        "tensors": [
            {"id": "x", "size": 1024, "kind": "input"},
            {"id": "w", "size": 4096, "kind": "weight"},
            {"id": "t", "size": 1024, "kind": "intermediate"},
            {"id": "tv", "size": 512, "kind": "intermediate", "view_of": "t", "view_offset": 512},
            {"id": "y", "size": 1024, "kind": "output"},
        ],
        "nodes": [
            {"id": "a", "op": "MUL_MAT", "inputs": ["w", "x"], "outputs": ["t"], "cost": 1.5},
            {"id": "b", "op": "ADD", "inputs": ["tv", "x"], "outputs": ["y"], "inplace": {"y": "x"}},
        ],
    }


def tensor(doc, tid):
    return next(t for t in doc["tensors"] if t["id"] == tid)


def node(doc, nid):
    return next(n for n in doc["nodes"] if n["id"] == nid)


def bad(doc, *names: str) -> str:
    with pytest.raises(GraphError) as info:
        graph_from_dict(doc)
    msg = str(info.value)
    for n in names:
        assert n in msg, (n, msg)
    assert "\n" not in msg
    return msg


def test_valid_graph_indices_and_round_trip():
    g = graph_from_dict(base())
    assert g.name == "g" and g.alignment == 256
    t = g.tensor_index
    assert g.root[t["tv"]] == t["t"] and g.root[t["t"]] == t["t"]
    assert g.producer[t["t"]] == 0 and g.producer[t["y"]] == 1 and g.producer[t["x"]] == -1
    assert g.node("b").inplace == (("y", "x"),)
    assert g.in_arena(t["x"]) and not g.in_arena(t["w"])
    assert graph_from_dict(g.to_dict()) == g
    assert json.loads(json.dumps(g.to_dict())) == g.to_dict()


def test_defaults_and_unknown_fields_ignored():
    doc = base()
    del doc["alignment"]
    doc["extra_field"] = {"anything": 1}
    tensor(doc, "t")["future"] = True
    node(doc, "a")["future"] = [1]
    g = graph_from_dict(doc)
    assert g.alignment == 256   # (kind has no default: tests/test_contract_round31.py)


def test_builder_and_examples_are_valid():
    for g in (H.chain(), H.diamond(), H.qkv(), H.fanout15(), H.moe(), H.views(), H.kv_cache()):
        assert graph_from_dict(g.to_dict()) == g
    from memplan.examples import bundled

    for stem, g in bundled().items():
        assert graph_from_dict(json.loads(json.dumps(g.to_dict()))) == g, stem


def test_graph_is_immutable():
    g = graph_from_dict(base())
    with pytest.raises(AttributeError):
        g.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        g.tensors[0].size = 1  # type: ignore[misc]


# --- one test per GraphError case --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [None, "memplan.graph/2", "memplan.plan/1", 1])
def test_unknown_format(fmt):
    doc = base()
    if fmt is None:
        del doc["format"]
    else:
        doc["format"] = fmt
    bad(doc, "format", repr(fmt) if fmt is not None else "no 'format' field")   # (not "unknown format None")


def test_not_an_object():
    with pytest.raises(GraphError, match="JSON object"):
        graph_from_dict([base()])


def test_duplicate_tensor_id():
    doc = base()
    doc["tensors"].append({"id": "t", "size": 1, "kind": "intermediate"})
    bad(doc, "duplicate", "'t'")


def test_duplicate_node_id():
    doc = base()
    doc["nodes"].append({"id": "a", "op": "X", "inputs": ["y"], "outputs": []})
    bad(doc, "duplicate", "'a'")


def test_node_reads_unknown_tensor():
    doc = base()
    node(doc, "b")["inputs"].append("ghost")
    bad(doc, "'b'", "'ghost'")


def test_node_writes_unknown_tensor():
    doc = base()
    node(doc, "b")["outputs"].append("ghost")
    bad(doc, "'b'", "'ghost'")


def test_view_of_unknown_tensor():
    doc = base()
    tensor(doc, "tv")["view_of"] = "ghost"
    bad(doc, "'tv'", "'ghost'")


def test_tensor_produced_twice():
    doc = base()
    node(doc, "b")["outputs"].append("t")
    bad(doc, "'t'", "twice", "'a'", "'b'")


@pytest.mark.parametrize("kind", ["input", "weight"])
def test_input_or_weight_that_is_produced(kind):
    doc = base()
    tensor(doc, "t")["kind"] = kind
    bad(doc, "'t'", kind, "'a'")


@pytest.mark.parametrize("kind", ["intermediate", "output"])
def test_intermediate_or_output_without_producer(kind):
    doc = base()
    doc["tensors"].append({"id": "orphan", "size": 8, "kind": kind})
    bad(doc, "'orphan'", "no producing node")


def test_nodes_out_of_topological_order():
    doc = base()
    doc["nodes"].reverse()  # b reads tv (a view of t) before a produces t
    bad(doc, "'b'", "'tv'", "'a'", "topological")


def test_reader_before_direct_producer():
    doc = base()
    doc["tensors"].append({"id": "u", "size": 8, "kind": "intermediate"})
    doc["nodes"].insert(0, {"id": "early", "op": "X", "inputs": ["u"], "outputs": []})
    doc["nodes"].append({"id": "late", "op": "X", "inputs": ["x"], "outputs": ["u"]})
    bad(doc, "'early'", "'u'", "'late'")


def test_cycle_node_reads_its_own_output():
    doc = base()
    node(doc, "a")["inputs"].append("t")
    bad(doc, "'a'", "'t'", "cycle")


@pytest.mark.parametrize("size,word", [(-1, "negative"), (1.5, "not an integer"), ("8", "not an integer"),
                                       (True, "not an integer"), (None, "not an integer"),
                                       (1 << 60, "absurd")])
def test_bad_size(size, word):
    doc = base()
    tensor(doc, "t")["size"] = size
    bad(doc, "'t'", word)


def test_missing_size():
    doc = base()
    del tensor(doc, "t")["size"]
    bad(doc, "'t'", "size")


def test_unknown_kind():
    doc = base()
    tensor(doc, "t")["kind"] = "scratch"
    bad(doc, "'t'", "'scratch'")


@pytest.mark.parametrize("offset,size", [(600, 512), (0, 2048), (1024, 1)])
def test_view_outside_parent(offset, size):
    doc = base()
    tensor(doc, "tv").update(view_offset=offset, size=size)
    bad(doc, "'tv'", "outside", "'t'")


def test_view_outside_parent_along_chain():
    doc = base()
    doc["tensors"].append({"id": "tvv", "size": 256, "kind": "intermediate", "view_of": "tv", "view_offset": 384})
    bad(doc, "'tvv'", "'tv'", "outside")


@pytest.mark.parametrize("offset", [-1, 1.5, "0"])
def test_bad_view_offset(offset):
    doc = base()
    tensor(doc, "tv")["view_offset"] = offset
    bad(doc, "'tv'", "view_offset")


def test_view_cycle():
    doc = base()
    doc["tensors"] += [
        {"id": "c1", "size": 8, "kind": "intermediate", "view_of": "c2"},
        {"id": "c2", "size": 8, "kind": "intermediate", "view_of": "c1"},
    ]
    bad(doc, "view cycle", "'c")


def test_view_of_itself():
    doc = base()
    doc["tensors"].append({"id": "me", "size": 8, "kind": "intermediate", "view_of": "me"})
    bad(doc, "view cycle", "'me'")


def test_inplace_output_not_the_nodes():
    doc = base()
    node(doc, "b")["inplace"] = {"t": "x"}  # t is a's output
    bad(doc, "'b'", "'t'", "output")


def test_inplace_input_not_the_nodes():
    doc = base()
    node(doc, "b")["inplace"] = {"y": "w"}  # b does not read w
    bad(doc, "'b'", "'w'", "input")


def test_inplace_not_an_object():
    doc = base()
    node(doc, "b")["inplace"] = [["y", "x"]]
    bad(doc, "'b'", "inplace")


def test_fusion_group_not_contiguous():
    doc = base()
    doc["tensors"].append({"id": "z", "size": 8, "kind": "output"})
    doc["nodes"].append({"id": "c", "op": "X", "inputs": ["y"], "outputs": ["z"], "group": "g1"})
    node(doc, "a")["group"] = "g1"
    bad(doc, "'g1'", "'c'", "'a'", "contiguous")


@pytest.mark.parametrize("alignment", [0, 3, 96, -256, 256.0, "256", True])
def test_alignment_not_power_of_two(alignment):
    doc = base()
    doc["alignment"] = alignment
    bad(doc, "alignment", repr(alignment))


def test_absurd_alignment():
    doc = base()
    doc["alignment"] = 1 << 70  # a power of two, but offsets would overflow int64
    bad(doc, "alignment", "absurd")


@pytest.mark.parametrize("cost", [-1, float("nan"), float("inf"), "fast"])
def test_bad_cost(cost):
    doc = base()
    node(doc, "a")["cost"] = cost
    bad(doc, "'a'", "cost")


@pytest.mark.parametrize("field,value", [("tensors", {}), ("nodes", None)])
def test_tensors_and_nodes_must_be_lists(field, value):
    doc = base()
    doc[field] = value
    bad(doc, field)


def test_entries_must_be_objects_with_ids():
    doc = base()
    doc["tensors"].append("x")
    bad(doc, "tensors[5]")
    doc = base()
    doc["nodes"].append({"op": "X"})
    bad(doc, "nodes[2]", "id")


def test_inputs_must_be_a_list():
    doc = base()
    node(doc, "a")["inputs"] = "x"
    bad(doc, "'a'", "inputs")


def test_builder_errors_name_the_tensor():
    b = GraphBuilder("b")
    b.input("x", 8)
    b.node("n", "OP", ["x"], "missing_out")
    with pytest.raises(GraphError, match="'missing_out'"):
        b.build()


def test_error_is_a_memplan_error_and_value_error():
    doc = copy.deepcopy(base())
    doc["alignment"] = 3
    with pytest.raises(memplan.MemplanError, match="alignment 3 is not a positive power of two"):
        graph_from_dict(doc)
    with pytest.raises(ValueError):
        graph_from_dict(doc)


def test_load_graph_prefixes_the_path(tmp_path):
    doc = base()
    tensor(doc, "t")["size"] = -5
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(GraphError) as info:
        memplan.load_graph(str(path))
    assert str(info.value).startswith(str(path)) and "'t'" in str(info.value)


def test_name_must_be_a_string():
    doc = base()
    doc["name"] = 5
    bad(doc, "name")


def test_group_must_be_a_string():
    doc = base()
    node(doc, "a")["group"] = 5
    bad(doc, "'a'", "group")


def test_inplace_pair_naming_a_non_string():
    doc = base()
    node(doc, "b")["inplace"] = {"y": 5}
    bad(doc, "'b'", "5")


def test_attrs_must_be_objects():
    doc = base()
    tensor(doc, "t")["attrs"] = [1]
    bad(doc, "'t'", "attrs")
    doc = base()
    node(doc, "a")["attrs"] = "x"
    bad(doc, "'a'", "attrs")


@pytest.mark.parametrize("value", [0, False, [], "", 0.0])
@pytest.mark.parametrize("where,eid,field", [
    ("tensors", "t", "attrs"), ("nodes", "a", "attrs"), ("nodes", "b", "inplace"),
])
def test_wrong_typed_empty_attrs_and_inplace(where, eid, field, value):
    # falsy values of the wrong type were taken as "none" (``e.get("attrs") or {}``)
    doc = base()
    next(e for e in doc[where] if e["id"] == eid)[field] = value
    msg = bad(doc, f"'{eid}'", field)
    assert repr(value) in msg, msg


@pytest.mark.parametrize("value", [0, False, [], "", [("y", "x")]])
def test_builder_inplace_must_be_a_mapping(value):
    b = GraphBuilder()
    b.input("x", 64)
    with pytest.raises(GraphError, match="'n'.*inplace"):
        b.node("n", "OP", ["x"], b.output("y", 64), inplace=value)


@pytest.mark.parametrize("value", [None, {}])
@pytest.mark.parametrize("where,eid,field", [
    ("tensors", "t", "attrs"), ("nodes", "a", "attrs"), ("nodes", "b", "inplace"),
])
def test_null_or_empty_attrs_and_inplace_mean_none(where, eid, field, value):
    doc = base()
    next(e for e in doc[where] if e["id"] == eid)[field] = value
    g = graph_from_dict(doc)
    got = g.tensor(eid) if where == "tensors" else g.node(eid)
    assert not getattr(got, field)
    absent = base()
    next(e for e in absent[where] if e["id"] == eid).pop(field, None)
    assert g.to_dict() == graph_from_dict(absent).to_dict()


def test_offset_in_root_adds_up_a_chain_of_views():
    b = GraphBuilder()
    b.input("x", 64)
    b.view("v", "x", 32, offset=16)
    b.view("w", "v", 8, offset=4)
    b.intermediate("y", 8)
    b.node("n", "OP", inputs=["w"], outputs=["y"])
    g = b.build()
    assert [g.offset_in_root(g.tensor_index[t]) for t in ("x", "v", "w", "y")] == [0, 16, 20, 0]


@pytest.mark.parametrize("target", [5, ["x"]])
def test_inplace_entry_with_a_non_id_input_is_malformed(target):
    """inplace {"y": 5} or {"y": ["x"]} is a GraphError naming a malformed entry (not "not an input", not a TypeError)."""
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "x", "size": 4, "kind": "input"}, {"id": "y", "size": 4, "kind": "output"}],
           "nodes": [{"id": "n", "op": "OP", "inputs": ["x"], "outputs": ["y"], "inplace": {"y": target}}]}
    with pytest.raises(GraphError, match="malformed inplace entry"):
        graph_from_dict(doc)


def test_view_of_that_is_not_a_string_is_named():
    """A view_of that is not a tensor id (a list) is a GraphError saying so, not a TypeError from the id lookup."""
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "x", "size": 4, "kind": "input"},
                       {"id": "v", "size": 4, "kind": "intermediate", "view_of": ["x"], "view_offset": 0}],
           "nodes": []}
    with pytest.raises(GraphError, match="is not a tensor id"):
        graph_from_dict(doc)


def test_root_bytes_adding_up_to_exactly_2_63_are_refused():
    """The total limit is exclusive: 2**15 roots of 2**48 bytes at alignment 1 sum to 2**63 and are refused."""
    b = GraphBuilder("exact-total", alignment=1)
    for k in range(1 << 15):
        b.input(f"x{k}", 1 << 48)
    with pytest.raises(GraphError, match="2\\*\\*63"):
        b.build()



def test_root_total_counts_each_size_rounded_up_not_padded():
    """The limit counts each root rounded up to the alignment (docs/format.md "Limits"), so sizes that
    are already multiples cost nothing extra: 2**15 - 1 roots of 2**48 bytes at alignment 2**48 come to
    2**63 - 2**48 bytes and are accepted (each was counted as 2**49 - 1 bytes, the graph refused with a
    total near 2**64 that no rounding gives); one more root makes exactly 2**63, refused naming that total."""
    def roots(n: int) -> GraphBuilder:
        b = GraphBuilder("aligned-total", alignment=1 << 48)
        for k in range(n):
            b.input(f"x{k}", 1 << 48)
        b.tensor("empty", 0)   # a zero-size root rounds to 0 bytes
        b.node("n", "OP", ["x0"], ["empty"])
        return b

    assert len(roots((1 << 15) - 1).build().tensors) == 1 << 15
    with pytest.raises(GraphError, match=f"add up to {1 << 63} bytes"):
        roots(1 << 15).build()

def _one_node(**node):
    return {"format": "memplan.graph/1", "name": "g",
            "tensors": [{"id": "x", "size": 4, "kind": "input"}, {"id": "y", "size": 4, "kind": "output"}],
            "nodes": [{"id": "n", "op": "OP", "inputs": ["x"], "outputs": ["y"], **node}]}


@pytest.mark.parametrize("node,words", [
    ({"op": 5}, "op must be a string"),
    ({"id": ""}, "node #0: field .id. is the empty string"),
])
def test_node_op_and_id_must_be_strings(node, words):
    """A non-string op or an empty node id: GraphErrors naming them."""
    with pytest.raises(GraphError, match=words):
        graph_from_dict(_one_node(**node))


def test_cost_limit_is_inclusive():
    """A cost of exactly MAX_COST_US is accepted; just above is refused."""
    from memplan.graph import MAX_COST_US
    assert graph_from_dict(_one_node(cost=MAX_COST_US)).nodes[0].cost == MAX_COST_US
    with pytest.raises(GraphError, match="cost"):
        graph_from_dict(_one_node(cost=MAX_COST_US * 2))


def test_a_view_listed_before_its_parent_still_depends_on_the_parents_producer():
    """Graph.written / writers follow a view to a parent listed after it (not the parent's not-yet-computed -1)."""
    doc = {"format": "memplan.graph/1", "name": "g",
           "tensors": [{"id": "v", "size": 2, "kind": "intermediate", "view_of": "t", "view_offset": 2},
                       {"id": "x", "size": 4, "kind": "input"}, {"id": "t", "size": 4, "kind": "intermediate"},
                       {"id": "y", "size": 4, "kind": "output"}],
           "nodes": [{"id": "p", "op": "OP", "inputs": ["x"], "outputs": ["t"]},
                     {"id": "r", "op": "OP", "inputs": ["v"], "outputs": ["y"]}]}
    g = graph_from_dict(doc)
    assert g.written[0] == 2 and g.writers(0) == [0]
    doc["nodes"].reverse()  # r before p: reads v before its root is written
    with pytest.raises(GraphError, match="'r' reads tensor 'v'"):
        graph_from_dict(doc)
