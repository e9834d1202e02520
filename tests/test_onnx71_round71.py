"""ONNX importer, round 71: optionals through a nested If, GroupQueryAttention's run-time total, hostile files.

* An optional made by an If in the branch of an If on a run-time condition (a nested If, returning an optional or
  an optional sequence) was refused ("whether its then_branch's optional holds a value is not known at import")
  while onnxruntime runs it. ``fed_optionals`` now follows the nested If into its branches (its taken one where its
  condition is a constant) and plans the output with the bytes of the branch that holds a value; a nested If on a
  condition folded at import that takes its empty branch is asked of the expansion (``held_states``), not read as
  holding one. Planned sizes are held against onnxruntime's for every pair of conditions.
* com.microsoft GroupQueryAttention with ``total_sequence_length`` fed at run time is planned at past + new tokens
  (the most onnxruntime accepts; held here against every total it runs); a total folded at import that onnxruntime
  refuses (a ``--dim`` of 9 for a past of 4 and 1 token) is refused naming the node, the value and the ``--dim``
  (was "value 'present_key' has no shape"); a total of more than one element, which onnxruntime refuses to run, was
  planned and is now refused naming it.
* Hostile files: an initializer, Constant value or declaration of an element type ONNX does not define (999) was
  refused as "ONNX shape inference failed: Invalid tensor data type 999", naming nothing; it is named now. The rest
  of the hostile pass (truncated / corrupt files, external data out of the folder, dims of -3 and 2**62, an empty
  op type, an unimported domain, a value made twice, a subgraph reading a name nothing defines, opset 0 / 99) is
  pinned here: one ``memplan: error:`` line and exit 2, nothing read outside the model's folder.
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import warnings

import numpy as np
import pytest
from cli_contract import run_memplan
from needs import need

need("onnx")
need("onnxruntime")

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import control_flow, import_onnx  # noqa: E402

V = helper.make_tensor_value_info


def _run(model, feeds: dict) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _held_bytes(value) -> int:
    """The bytes of an optional output onnxruntime returns: None (empty), an array, or a list of them."""
    if value is None:
        return 0
    return sum(np.asarray(v).nbytes for v in value) if isinstance(value, list) else np.asarray(value).nbytes


def _sizes(model, **kw) -> dict[str, int]:
    return {t.id: t.size for t in import_onnx(model, **kw).tensors}


# -- optionals through a nested If -------------------------------------------------------------------------------------

def _elem(kind: str):
    tensor = helper.make_tensor_type_proto(T.FLOAT, None)
    return helper.make_sequence_type_proto(tensor) if kind == "sequence" else tensor


def _opt(kind: str):
    return helper.make_optional_type_proto(_elem(kind))


def _branch(label: str, kind: str, holds: bool, source: str, extra=()):
    """A branch returning an optional of ``kind``: empty, or holding Relu(``source``) (a sequence: two of them)."""
    out = f"{label}_opt"
    if not holds:
        nodes = [helper.make_node("Optional", [], [out], type=_elem(kind))]
    elif kind == "tensor":
        nodes = [helper.make_node("Relu", [source], [f"{label}_r"]), helper.make_node("Optional", [f"{label}_r"], [out])]
    else:
        nodes = [helper.make_node("Relu", [source], [f"{label}_r{i}"]) for i in range(2)]
        nodes += [helper.make_node("SequenceConstruct", [f"{label}_r0", f"{label}_r1"], [f"{label}_s"]),
                  helper.make_node("Optional", [f"{label}_s"], [out])]
    return helper.make_graph(list(extra) + nodes, label, [], [helper.make_value_info(out, _opt(kind))])


def _nested(kind: str, inner: tuple[bool, bool], outer_else: bool, rows=(2, 2, 2), cond_nodes=(), cond: str = "d",
            depth: int = 1):
    """``y = If(c, then: If(cond, inner...), else: outer_else)``: the then_branch's optional made by a nested If on
    ``cond`` (``d``, a graph input, or what ``cond_nodes`` make in the branch); ``depth`` levels of such nesting."""
    then = _branch("ithen", kind, inner[0], "a")
    other = _branch("ielse", kind, inner[1], "b")
    made = None
    for level in range(depth):
        node = helper.make_node("If", [cond], [f"inner_y{level}"], name=f"inner_if{level}", then_branch=then,
                                else_branch=other)
        made = helper.make_graph(list(cond_nodes) + [node], f"then{level}", [],
                                 [helper.make_value_info(f"inner_y{level}", _opt(kind))])
        then, other = _branch(f"empty{level}", kind, False, "a"), made   # (d false: down to ielse)
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="the_if", then_branch=made,
                          else_branch=_branch("else", kind, outer_else, "e"))], "g",
        [V("c", T.BOOL, []), V("d", T.BOOL, []), V("a", T.FLOAT, [rows[0], 3]), V("b", T.FLOAT, [rows[1], 3]),
         V("e", T.FLOAT, [rows[2], 3])], [helper.make_value_info("y", _opt(kind))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def _ran(model, rows=(2, 2, 2)) -> dict[tuple[bool, bool], int]:
    """The bytes onnxruntime's ``y`` holds for each pair of conditions."""
    r = np.random.default_rng(71)
    feeds = {k: r.standard_normal((n, 3)).astype(np.float32) for k, n in zip("abe", rows)}
    return {(c, d): _held_bytes(_run(model, {**feeds, "c": np.array(c), "d": np.array(d)})[0])
            for c, d in itertools.product((True, False), repeat=2)}


@pytest.mark.parametrize("kind,inner,outer_else", [
    ("tensor", (True, True), True), ("tensor", (True, False), True), ("tensor", (False, True), False),
    ("tensor", (False, False), True), ("tensor", (False, False), False), ("sequence", (True, True), False),
    ("sequence", (False, True), True), ("sequence", (True, False), False)])
def test_an_optional_made_by_a_nested_if_is_planned_with_the_bytes_onnxruntime_makes_at_most(kind, inner, outer_else):
    # (refused before: "whether its then_branch's optional holds a value is not known at import")
    m = _nested(kind, inner, outer_else)
    ran = _ran(m)
    assert _sizes(m)["y"] == max(ran.values()), ran


def test_three_levels_of_nested_ifs_are_followed():
    m = _nested("tensor", (False, True), False, depth=3)
    ran = _ran(m)
    assert max(ran.values()) == 24
    assert _sizes(m)["y"] == 24


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("folded", [False, True])
def test_a_nested_if_on_a_constant_condition_is_planned_as_the_branch_it_takes(value, folded, monkeypatch):
    # (folded: a Not of a Constant, which only the expansion's folding knows; taking the empty branch, the element
    # of its empty optional was read, "of unknown shape where the then_branch runs")
    k = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(value), "k"))
    nodes, cond = ([k, helper.make_node("Not", ["k"], ["nk"])], "nk") if folded else ([k], "k")
    m = _nested("tensor", (True, False), True, cond_nodes=nodes, cond=cond)
    ran = _ran(m)
    assert _sizes(m)["y"] == max(ran.values()) == 24


def test_the_folded_nested_if_is_asked_of_the_expansion_or_it_is_misread(monkeypatch):
    k = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(True), "k"))
    m = _nested("tensor", (True, False), True, cond_nodes=[k, helper.make_node("Not", ["k"], ["nk"])], cond="nk")
    real = control_flow._Expander.expand_fed_if

    def unasked(self, *args, **kwargs):
        self.held = None
        return real(self, *args, **kwargs)

    monkeypatch.setattr(control_flow._Expander, "expand_fed_if", unasked)
    with pytest.raises(GraphError, match=r"node 'the_if' \(If\): its output #0 'y'.*unknown shape"):
        import_onnx(m)


def test_a_nested_if_whose_branches_hold_two_shapes_is_refused_naming_the_nested_if():
    m = _nested("tensor", (True, True), True, rows=(2, 3, 2))
    with pytest.raises(GraphError, match=r"node 'the_if/then/inner_if0' \(If\): its output #0 "
                                         r"'the_if/then/inner_y0' \(an optional; its condition 'd' known only at run "
                                         r"time\): its branches' optionals hold tensors of two shapes"):
        import_onnx(m)


def _nested_sequences(rows=(3, 2, 2)):
    """``z = ConcatFromSequence(If(c, then: If(d, [Relu(a)] * 2, [Relu(b)] * 2), else: [Relu(e)] * 2))``."""
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.FLOAT, None))

    def branch(tag, source):
        return helper.make_graph([helper.make_node("Relu", [source], [f"{tag}r"]),
                                  helper.make_node("SequenceConstruct", [f"{tag}r", f"{tag}r"], [f"{tag}s"])], tag, [],
                                 [helper.make_value_info(f"{tag}s", seq)])

    inner = helper.make_node("If", ["d"], ["iy"], name="inner", then_branch=branch("a", "a"),
                             else_branch=branch("b", "b"))
    then = helper.make_graph([inner], "then", [], [helper.make_value_info("iy", seq)])
    g = helper.make_graph([helper.make_node("If", ["c"], ["y"], name="outer", then_branch=then,
                                            else_branch=branch("e", "e")),
                           helper.make_node("ConcatFromSequence", ["y"], ["z"], axis=0)], "g",
                          [V("c", T.BOOL, []), V("d", T.BOOL, []), V("a", T.FLOAT, [rows[0], 3]),
                           V("b", T.FLOAT, [rows[1], 3]), V("e", T.FLOAT, [rows[2], 3])], [V("z", T.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_a_nested_if_of_sequences_of_two_shapes_is_refused_naming_the_nested_if_and_its_output():
    # (was "ONNX shape inference failed: ... (op_type:Where, node name: outer/then/inner/select_0/0): Incompatible
    # dimensions": the outer If's count of its sequence asked an expansion whose checks were dropped)
    with pytest.raises(GraphError, match=r"node 'outer/then/inner' \(If\): its output #0 'outer/then/iy' \(a sequence; "
                                         r"its condition 'd' known only at run time\): its tensor #0: its branches make "
                                         r"it of two shapes"):
        import_onnx(_nested_sequences())
    m = _nested("sequence", (True, True), True, rows=(3, 2, 2), cond="c")
    with pytest.raises(GraphError, match=r"node 'the_if/then/inner_if0' \(If\): its output #0 'the_if/then/inner_y0' "
                                         r"\(an optional sequence; .*\): its tensor #0: its branches make it of two"):
        import_onnx(m)
    assert _sizes(_nested_sequences(rows=(2, 2, 2)))["z"] == 4 * 3 * 4   # (of one shape: planned)


def test_a_nested_optional_of_another_shape_than_the_other_branch_is_refused_naming_the_if():
    m = _nested("tensor", (True, False), True, rows=(2, 2, 3))
    with pytest.raises(GraphError, match=r"node 'the_if' \(If\): its output #0 'y' \(an optional; .*\): its "
                                         r"branches' optionals hold tensors of two shapes"):
        import_onnx(m)


def test_a_nested_if_optional_plan_is_the_same_every_time():
    m = _nested("sequence", (False, True), True)
    a, b = (json.dumps(memplan.plan(import_onnx(m)).to_json(), sort_keys=True) for _ in range(2))
    assert a == b


# -- GroupQueryAttention's total_sequence_length -------------------------------------------------------------------

def _gqa(b: int, s: int, past, total=None, mask: bool = False):
    """GroupQueryAttention of 4 heads (2 kv heads) of 8, a past of ``past`` (an int or a dim name); its total a graph
    input of shape ``total`` ([]: a scalar), or (``mask``) the length of an int64 mask ``[b, "total"]``."""
    heads, kv, h = 4, 2, 8
    ins = [V("q", T.FLOAT, [b, s, heads * h]), V("k", T.FLOAT, [b, s, kv * h]), V("v", T.FLOAT, [b, s, kv * h]),
           V("pk", T.FLOAT, [b, kv, past, h]), V("pv", T.FLOAT, [b, kv, past, h]), V("sl", T.INT32, [b])]
    nodes = []
    if mask:
        ins.append(V("mask", T.INT64, [b, "total"]))
        nodes = [helper.make_node("Shape", ["mask"], ["ms"], start=1, end=2),
                 helper.make_node("Cast", ["ms"], ["msc"], to=T.INT32), helper.make_node("Squeeze", ["msc"], ["tot"])]
    else:
        ins.append(V("tot", T.INT32, total if total is not None else []))
    nodes.append(helper.make_node("GroupQueryAttention", ["q", "k", "v", "pk", "pv", "sl", "tot"],
                                  ["o", "present_key", "present_value"], name="gqa", domain="com.microsoft",
                                  num_heads=heads, kv_num_heads=kv))
    outs = [helper.make_value_info(o, helper.make_tensor_type_proto(T.FLOAT, None))
            for o in ("o", "present_key", "present_value")]
    return helper.make_model(helper.make_graph(nodes, "g", ins, outs),
                             opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])


@pytest.mark.parametrize("b,s,past", [(1, 1, 4), (2, 1, 4), (1, 3, 4), (2, 3, 0)])
def test_a_fed_total_sequence_length_is_planned_at_the_most_onnxruntime_runs(b, s, past):
    m = _gqa(b, s, past)
    planned = _sizes(m)
    r = np.random.default_rng(71)
    ran = {}
    for total in range(1, past + s + 3):   # (every total; onnxruntime refuses all but past + s and s..past)
        feeds = {"q": r.standard_normal((b, s, 32)), "k": r.standard_normal((b, s, 16)),
                 "v": r.standard_normal((b, s, 16)), "pk": r.standard_normal((b, 2, past, 8)),
                 "pv": r.standard_normal((b, 2, past, 8))}
        feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
        feeds.update(sl=np.full((b,), total - 1, np.int32), tot=np.array(total, np.int32))
        try:
            outs = _run(m, feeds)
        except Exception:  # noqa: BLE001 - onnxruntime's refusal of that total
            continue
        ran[total] = [o.nbytes for o in outs]
    assert past + s in ran, ran   # (the growing cache's total runs)
    for got in ran.values():
        assert [planned["o"], planned["present_key"], planned["present_value"]] >= got
        assert planned["present_key"] >= got[1] and planned["present_value"] >= got[2]
    assert planned["present_key"] == max(g[1] for g in ran.values())   # (exact: the growing cache's)


def test_a_total_folded_from_a_dim_that_onnxruntime_refuses_is_refused_naming_the_node_and_the_dim():
    m = _gqa(1, 1, "past", mask=True)
    assert _sizes(m, dims={"past": 4, "total": 5})["present_key"] == 2 * 5 * 8 * 4
    assert _sizes(m, dims={"past": 4, "total": 3})["present_key"] == 2 * 4 * 8 * 4   # (a cache of fixed size)
    # (was: "value 'present_key' has no shape: ... neither onnx's nor onnxruntime's shape inference could size here")
    with pytest.raises(GraphError, match=r"node 'gqa' \(com\.microsoft:GroupQueryAttention\): its "
                                         r"total_sequence_length \(input #6\) is 9 at import, but with a past of 4 and "
                                         r"1 new tokens onnxruntime takes only 4 \+ 1 = 5 .* or from 1 to 4 .*--dim"):
        import_onnx(m, dims={"past": 4, "total": 9})


def test_a_total_of_more_than_one_element_is_refused_as_onnxruntime_refuses_to_run_it():
    m = _gqa(1, 1, 4, total=[2])
    feeds = {"q": np.zeros((1, 1, 32), np.float32), "k": np.zeros((1, 1, 16), np.float32),
             "v": np.zeros((1, 1, 16), np.float32), "pk": np.zeros((1, 2, 4, 8), np.float32),
             "pv": np.zeros((1, 2, 4, 8), np.float32), "sl": np.array([4], np.int32), "tot": np.array([5, 5], np.int32)}
    with pytest.raises(Exception, match="must be of one element"):  # noqa: B017 - (onnxruntime's own error type)
        _run(m, feeds)
    with pytest.raises(GraphError, match=r"node 'gqa' \(GroupQueryAttention\): its total_sequence_length 'tot' is of "
                                         r"shape \[2\], not one element; onnxruntime refuses to run it"):
        import_onnx(m)   # (was planned: present_key [1, 2, 5, 8])
    assert _sizes(_gqa(1, 1, 4, total=[1]))["present_key"] == 2 * 5 * 8 * 4   # (one element of [1]: runs)


# -- hostile files -------------------------------------------------------------------------------------------------

def _relu(x=None, y=None, opset: int | None = 17, **kw):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x or V("x", T.FLOAT, [2, 3])],
                          [y or V("y", T.FLOAT, [2, 3])], **kw)
    return helper.make_model(g, opset_imports=[] if opset is None else [helper.make_opsetid("", opset)])


def _undefined_type_models():
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    w.data_type = 999
    add = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g", [V("x", T.FLOAT, [2, 3])],
                            [V("y", T.FLOAT, [2, 3])], initializer=[w])
    const = helper.make_graph([helper.make_node("Constant", [], ["w"], name="k", value=w),
                               helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g",
                              [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, [2, 3])])
    vi = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="r"), helper.make_node("Relu", ["t"], ["y"])],
                           "g", [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, [2, 3])], value_info=[V("t", 999, [2, 3])])
    ops = [helper.make_opsetid("", 17)]
    return {"initializer 'w' has data_type 999": helper.make_model(add, opset_imports=ops),
            r"node 'k' \(Constant\)'s value has data_type 999": helper.make_model(const, opset_imports=ops),
            "value_info 't' has dtype type#999": helper.make_model(vi, opset_imports=ops),
            "graph output 'y' has dtype type#999": _relu(y=V("y", 999, [2, 3]))}


@pytest.mark.parametrize("words", list(_undefined_type_models()))
def test_an_element_type_onnx_does_not_define_is_refused_naming_the_tensor(words):
    # (was "ONNX shape inference failed: Invalid tensor data type 999", naming nothing)
    m = _undefined_type_models()[words]
    with pytest.raises(Exception, match="."):  # noqa: B017 - (onnxruntime's own error type)
        _run(m, {"x": np.zeros((2, 3), np.float32)})
    with pytest.raises(GraphError, match=words + r".*onnxruntime refuses to load the model"):
        import_onnx(m)


@pytest.mark.parametrize("version", [0, -5])
def test_an_opset_below_one_is_not_said_to_be_known_to_a_newer_onnx(version):
    with pytest.raises(GraphError, match=rf"uses opset {version} of the default ONNX domain; .*\(ONNX's opsets start "
                                         r"at 1: no onnx knows it\)"):
        import_onnx(_relu(opset=version))


def _external(location: str):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = T.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        e = w.external_data.add()
        e.key, e.value = key, value
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add")], "g", [V("x", T.FLOAT, [2, 3])],
                          [V("y", T.FLOAT, [2, 3])], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _subgraph_reading_a_ghost(op: str):
    x, y = [V("x", T.FLOAT, [2, 3])], [V("y", T.FLOAT, [2, 3])]
    if op == "If":
        then = helper.make_graph([helper.make_node("Neg", ["ghost"], ["t"])], "then", [], [V("t", T.FLOAT, [2, 3])])
        other = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [], [V("e", T.FLOAT, [2, 3])])
        nodes = [helper.make_node("If", ["c"], ["y"], name="node0", then_branch=then, else_branch=other)]
        x = x + [V("c", T.BOOL, [])]
    else:
        body = helper.make_graph([helper.make_node("Add", ["s", "ghost"], ["so"])], "body", [V("s", T.FLOAT, [3])],
                                 [V("so", T.FLOAT, [3])])
        nodes = [helper.make_node("Scan", ["x"], ["y"], name="node0", body=body, num_scan_inputs=1)]
    return helper.make_model(helper.make_graph(nodes, "g", x, y), opset_imports=[helper.make_opsetid("", 17)])


def _hostile_files(folder) -> dict[str, tuple[bytes, str]]:
    """name -> (the file's bytes, words of its refusal)."""
    good = _relu().SerializeToString()
    two = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r"),
                             helper.make_node("Neg", ["x"], ["y"], name="n")], "g", [V("x", T.FLOAT, [2, 3])],
                            [V("y", T.FLOAT, [2, 3])])
    empty_op = _relu()
    empty_op.graph.node[0].op_type = ""
    domain = _relu()
    domain.graph.node[0].domain = "com.evil"
    return {
        "truncated": (good[: len(good) // 2], "not a readable ONNX model .*cut short"),
        "garbage": (bytes(range(7, 250)), "not a readable ONNX model"),
        "outside": (_external("../../etc/passwd").SerializeToString(),
                    "initializer 'w': its external data is not read: its data file '../../etc/passwd' is outside "
                    "the model's folder"),
        "absolute": (_external("/etc/passwd").SerializeToString(),
                     "its data file '/etc/passwd' is not a relative path inside the model's folder"),
        "negative_dim": (_relu(x=V("x", T.FLOAT, [2, -3])).SerializeToString(),
                         "graph input 'x' dimension 1 is unknown"),
        "huge_dim": (_relu(x=V("x", T.FLOAT, [2**62, 3])).SerializeToString(), "tensor 'x': size .* is absurd"),
        "empty_op": (empty_op.SerializeToString(), "node 'r': its op '' is not an op of the default ONNX domain"),
        "unknown_domain": (domain.SerializeToString(),
                           r"node 'r' \(com.evil:Relu\) is of domain 'com.evil', which the model does not import"),
        "made_twice": (helper.make_model(two, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                       r"value 'y' is produced twice \(by nodes 'r' and 'n'\)"),
        "ghost_if": (_subgraph_reading_a_ghost("If").SerializeToString(),
                     r"node 'node0' \(If\): its then_branch reads 'ghost', which neither"),
        "ghost_scan": (_subgraph_reading_a_ghost("Scan").SerializeToString(),
                       r"node 'node0' \(Scan\): its body reads 'ghost', which neither"),
        "no_opset": (_relu(opset=None).SerializeToString(), r"node 'r' \(Relu\) is of domain 'ai.onnx', which the "
                                                            "model does not import"),
        "opset99": (_relu(opset=99).SerializeToString(), "the model uses opset 99 of the default ONNX domain"),
    }


@pytest.mark.parametrize("name", list(_hostile_files(None)))
def test_a_hostile_file_is_one_error_line_exit_2_and_nothing_read_outside_its_folder(name, tmp_path, capsys,
                                                                                       monkeypatch):
    data, words = _hostile_files(tmp_path)[name]
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / f"{name}.onnx"
    path.write_bytes(data)
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *a, **k):
        if isinstance(file, (str, os.PathLike)):
            opened.append(os.path.realpath(file))
        return real_open(file, *a, **k)

    def spy_os_open(file, *a, **k):
        opened.append(os.path.realpath(file))
        return real_os_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    code, _, err = run_memplan(capsys, ["import", str(path), "-o", str(tmp_path / "g.json"), "-q"])
    monkeypatch.undo()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memplan: error: "), err
    with pytest.raises(GraphError if "readable" not in words else Exception, match=words):
        import_onnx(str(path))
    assert "/etc/passwd" not in opened and not any(p.startswith("/etc/") for p in opened), opened


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (``helper`` cannot build messages nested past protobuf's limit)."""
    def varint(n: int) -> bytes:
        out = b""
        while n > 0x7F:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _nested_ifs_bytes(depth: int) -> bytes:
    """A model of ``depth`` Ifs on a fed ``c``, each in the then_branch of the one before (3 messages a level)."""
    inner = helper.make_graph([helper.make_node("Relu", ["x"], [f"o{depth}"])], "leaf", [],
                              [V(f"o{depth}", T.FLOAT, [2, 3])]).SerializeToString()
    for d in range(depth - 1, -1, -1):
        other = helper.make_graph([helper.make_node("Neg", ["x"], [f"e{d}"])], f"e{d}", [], [V(f"e{d}", T.FLOAT, [2, 3])])
        node = helper.make_node("If", ["c"], [f"o{d}"], else_branch=other, name=f"if{d}").SerializeToString()
        # (AttributeProto: name, type GRAPH (field 20: tag 0xa0 0x01), g)
        node += _field(5, _field(1, b"then_branch") + b"\xa0\x01\x05" + _field(6, inner))
        inner = _field(1, node) + _field(2, f"g{d}".encode()) + _field(12, V(f"o{d}", T.FLOAT, [2, 3]).SerializeToString())
    g = helper.make_graph([helper.make_node("Identity", ["o0"], ["y"])], "g",
                          [V("x", T.FLOAT, [2, 3]), V("c", T.BOOL, [])], [V("y", T.FLOAT, [2, 3])])
    m = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 17)])
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, _field(1, node) + g.SerializeToString())


def test_subgraphs_nested_past_protobufs_limit_are_refused_saying_so(tmp_path, capsys):
    # (was "not a readable ONNX model (DecodeError: Error parsing message with type 'onnx.ModelProto')", as a corrupt
    # file is; onnxruntime refuses it too, "Protobuf parsing failed")
    from memplan.importers.onnx.protoscan import nesting_depth

    shallow = _nested_ifs_bytes(4)
    assert nesting_depth(shallow) == 2 + 3 * 4 + 1   # (model, graph, node/attribute/graph an If, the leaf's node)
    shallow_path = tmp_path / "shallow.onnx"
    shallow_path.write_bytes(shallow)
    assert _sizes(str(shallow_path))["y"] == 24
    path = tmp_path / "deep.onnx"
    path.write_bytes(_nested_ifs_bytes(60))
    with pytest.raises(Exception, match="Protobuf parsing failed"):  # noqa: B017 - (onnxruntime's own error type)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    code, _, err = run_memplan(capsys, ["import", str(path), "-o", str(tmp_path / "g.json"), "-q"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "its subgraphs (If / Loop / Scan bodies in one another) nest its messages over 100 deep" in err, err
