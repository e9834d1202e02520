"""ONNX importer, round 70: sequences through an If on a run-time condition, and the ops LLM exports are made of.

* An ``If`` whose condition only the run knows and whose branches return sequences (``SequenceConstruct``,
  ``SplitToSequence``, ``SequenceInsert``...) is planned tensor by tensor (``importers/onnx/fed_sequences.py``): each
  tensor the ``Where`` of the branches' ``SequenceAt``, the output their ``SequenceConstruct``. Was refused ("not as a
  tensor") while onnxruntime runs it. Counts or tensor shapes that differ between the branches, or a count not known
  at import, are refused naming the If, the output and what differs.
* com.microsoft's GroupQueryAttention of a batch over 1, several new tokens and a known total that is not their
  count (a prompt after a past), and com.microsoft's RotaryEmbedding whose position_ids is not ``[batch, seq]`` of
  its input: planned, while onnxruntime refuses to run both; now refused naming the node.
* The differential sweep (``tests/onnx_sweep_round70.py``: the contrib and opset 23/24 ops of LLM exports, and the
  sequences) holds every case against onnxruntime.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from needs import need

need("onnx")
need("onnxruntime")

import onnx_sweep_round70 as sweep  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

import memplan  # noqa: E402
from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import fed_sequences, import_onnx, ort_ops  # noqa: E402

V = helper.make_tensor_value_info
U = helper.ValueInfoProto


def _case(label: str) -> sweep.Case:
    return next(c for c in sweep.all_cases() if c.label == label)


def _refusal(label: str) -> str:
    with pytest.raises(GraphError) as info:
        import_onnx(_case(label).model)
    return str(info.value)


# -- the sweep -----------------------------------------------------------------------------------------------------

def test_the_round_70_sweep_agrees_with_onnxruntime():
    counts = sweep.run(list(sweep.all_cases()), show=5)
    assert not any(counts[k] for k in sweep.sweep69.FAILING), counts
    assert counts["agree"] > 200 and counts["both refuse"] >= 15, counts


def test_the_sweep_catches_a_present_cache_planned_one_step_short(monkeypatch):
    # (the hazard: GroupQueryAttention's present sized as its past, as onnxruntime's inference sizes it)
    real = ort_ops._group_query_attention

    def short(attrs, shapes, elems, value):
        out = real(attrs, shapes, elems, value)
        if 1 in out and len(shapes) > 3 and shapes[3] is not None and len(shapes[3]) == 4:
            e, s, *_ = out[1]
            out[1] = out[2] = (e, (s[0], s[1], shapes[3][2], s[3]))
        return out

    monkeypatch.setitem(ort_ops.ORT_RULES, "GroupQueryAttention", short)
    kind, lines = sweep.compare(_case("gqa_p4_s1_b2_kv2_qkv_float32"))
    assert kind == "MISMATCH" and any("present_key" in line for line in lines), (kind, lines)


# -- sequences through an If on a run-time condition ------------------------------------------------------------------

@pytest.mark.parametrize("cond", [True, False])
def test_a_fed_if_of_sequences_is_planned_tensor_by_tensor_and_verifies(cond):
    case = _case(f"fed_seq_construct_construct_abs_concat_{cond}")
    g = import_onnx(case.model)
    ops = {n.id: n.op for n in g.nodes}
    assert ops["If_2/select_0"] == "SequenceConstruct" and ops["If_2/select_0/1"] == "Where", ops
    sizes = {t.id: t.size for t in g.tensors}
    assert sizes["s"] == 96 and sizes["y"] == 96 and sizes["If_2/then/then_s"] == sizes["If_2/else/else_s"] == 96
    memplan.verify(g, memplan.plan(g))
    assert sweep.compare(case) == ("agree", [])


@pytest.mark.parametrize("label", ["fed_seq_split_rows_split_rows_at_True", "fed_seq_insert_construct_length_False",
                                   "fed_seq_split_pairs_split_pairs_relu_concat_True",
                                   "fed_seq_split_cols_split_cols_neg_concat_False", "fed_seq_empty_empty_length_True",
                                   "fed_seq_two_outputs_True", "fed_seq_computed_condition"])
def test_each_way_of_making_a_sequence_is_planned_at_onnxruntime_s_sizes(label):
    assert sweep.compare(_case(label)) == ("agree", [])


@pytest.mark.parametrize("label", ["fed_seq_nested_fed_True", "fed_seq_nested_fed_False",
                                   "fed_seq_nested_constant_True", "fed_seq_nested_reads_around_True"])
def test_a_sequence_made_by_an_if_in_the_branch_is_counted_through_it(label):
    # (the count's folding is given the branch with its own If expanded: it took no If, and refused the model)
    assert sweep.compare(_case(label)) == ("agree", [])


def test_ifs_whose_branches_read_each_other_s_sequences_are_refused_not_a_hang():
    # (each If of sequences waits for what its branches read to be expanded: two that wait for each other looped for
    # ever without the guard)
    def branch(tag, node):
        return helper.make_graph([node], tag, [], [U(name=node.output[0])])

    nodes = [helper.make_node("Constant", [], ["zero"], value=sweep._init("zero", np.array(0, np.int64))),
             helper.make_node("If", ["c"], ["s1"],
                              then_branch=branch("a", helper.make_node("SequenceConstruct", ["t2", "x"], ["as"])),
                              else_branch=branch("b", helper.make_node("SequenceConstruct", ["x", "x"], ["bs"]))),
             helper.make_node("If", ["c"], ["t2"],
                              then_branch=branch("p", helper.make_node("SequenceAt", ["s1", "zero"], ["pt"])),
                              else_branch=branch("q", helper.make_node("SequenceAt", ["s1", "zero"], ["qt"])))]
    m = sweep._model(nodes, [V("x", T.FLOAT, [2, 3]), V("c", T.BOOL, [])], ["t2"], opset=19, ms=False)
    with pytest.raises(GraphError, match=r"node 'If_1' \(If\): what it reads is computed from control flow that "
                                         r"reads what it makes"):
        import_onnx(m)


@pytest.mark.parametrize("label, message", [
    ("fed_seq_construct_construct_three_at_True",
     r"node 'If_2' \(If\): its output #0 's' \(a sequence; its condition 'c' known only at run time\): its "
     r"then_branch's sequence holds 2 tensors, its else_branch's 3: which branch runs is known only at run time"),
    ("fed_seq_construct_construct_unlike_at_True",
     r"node 'If_2' \(If\): its output #0 's' \(a sequence; .*\): its tensor #1 is \[4, 3\] where the then_branch runs "
     r"and \[1, 1\] where the else_branch does"),
    ("fed_seq_split_fed_split_rows_at_True",
     r"node 'If_2' \(If\): its output #0 's' \(a sequence; .*\): how many tensors its then_branch's sequence holds "
     r"is not known at import"),
    ("fed_seq_construct_cast_at_True", r"node 'If_2' \(If\): its output #0 's' \(a sequence; .*\): its tensor #0: "
                                       r"its branches make it of two types"),
])
def test_a_fed_if_of_unlike_sequences_is_refused_naming_the_if_and_what_differs(label, message):
    text = _refusal(label)
    assert re.search(message, text), text


def test_a_fed_if_of_sequences_is_planned_the_same_every_time():
    m = _case("fed_seq_two_outputs_False").model
    a, b = import_onnx(m), import_onnx(m)
    assert json.dumps(memplan.plan(a).to_json(), sort_keys=True) == json.dumps(memplan.plan(b).to_json(),
                                                                              sort_keys=True)


def test_the_sequence_selection_is_what_plans_it(monkeypatch):
    # (the hazard: round 69's expansion, a Where over the sequences, which ONNX's inference refuses)
    monkeypatch.setattr(fed_sequences, "sequence_outputs", lambda n, g, *_: [])
    monkeypatch.setattr("memplan.importers.onnx.control_flow.sequence_outputs", lambda n, g, *_: [])
    kind, lines = sweep.compare(_case("fed_seq_construct_construct_abs_concat_True"))
    assert kind == "over-refusal" and "not as a tensor" in lines[0], (kind, lines)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_any_fed_if_of_split_sequences_is_planned_or_refused_as_onnxruntime_runs_it(pieces_t, pieces_e, rows, cols,
                                                                                   cond):
    """Each branch splits its own [pieces * rows, cols] tensor into ``pieces`` of ``rows`` rows: planned at
    onnxruntime's sizes where both branches make as many pieces, refused naming the counts where they differ."""
    def branch(tag):
        return helper.make_graph([helper.make_node("SplitToSequence", [f"x{tag}", "k"], [f"{tag}s"], axis=0)],
                                 tag, [], [U(name=f"{tag}s")])

    k = helper.make_node("Constant", [], ["k"], value=sweep._init("k", np.array(rows, np.int64)))
    nodes = [k, helper.make_node("If", ["c"], ["s"], then_branch=branch("t"), else_branch=branch("e")),
             helper.make_node("ConcatFromSequence", ["s"], ["y"], axis=1)]
    ins = [V("xt", T.FLOAT, [pieces_t * rows, cols]), V("xe", T.FLOAT, [pieces_e * rows, cols]), V("c", T.BOOL, [])]
    feeds = {"xt": sweep._x((pieces_t * rows, cols)), "xe": sweep._x((pieces_e * rows, cols), seed=1),
             "c": np.array(cond)}
    case = sweep.Case("hypothesis", sweep._model(nodes, ins, ["y"], opset=19, ms=False), feeds)
    kind, lines = sweep.compare(case)
    if pieces_t == pieces_e:
        assert (kind, lines) == ("agree", [])
    else:
        assert kind == "known refusal" and f"its then_branch's sequence holds {pieces_t} tensors, its else_branch's " \
            f"{pieces_e}" in lines[0], (kind, lines)


def test_a_fed_if_of_sequences_over_the_bound_is_refused_before_copying(monkeypatch):
    monkeypatch.setattr(fed_sequences, "MAX_SELECTED", 3)
    with pytest.raises(GraphError, match=r"node 'If_2' \(If\): its output #0 's' \(a sequence; .*\): its branches' "
                                         r"sequences hold 4 tensors each, over the 3"):
        import_onnx(_case("fed_seq_split_rows_split_rows_at_True").model)
    monkeypatch.setattr(fed_sequences, "MAX_SELECTED", 4)
    assert sweep.compare(_case("fed_seq_split_rows_split_rows_at_True")) == ("agree", [])


def test_the_cli_refuses_a_fed_if_of_unlike_sequences_in_one_line(tmp_path, capsys):
    import onnx

    from memplan.cli import main

    path = tmp_path / "m.onnx"
    onnx.save(_case("fed_seq_construct_construct_three_concat_True").model, str(path))
    assert main(["import", str(path), "-o", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its then_branch's sequence holds 2 tensors, its else_branch's 3" in err
    assert not (tmp_path / "g.json").exists()


# -- the ops of LLM exports ---------------------------------------------------------------------------------------------

def test_a_gqa_prompt_after_a_past_of_a_batch_is_refused_naming_it():
    text = _refusal("gqa_p4_s3_b2_kv2_qkv_float32_const")
    assert "node 'GroupQueryAttention_0' (GroupQueryAttention): its query 'query' ([2, 3, 32]) is a batch of 2 of 3 " \
           "new tokens, and its total_sequence_length 'total_sequence_length' is 7, not 3" in text, text
    assert sweep.compare(_case("gqa_p4_s3_b2_kv2_qkv_float32_const"))[0] == "both refuse"
    # (a first prompt, total = tokens, runs: the plan stands where the total is known only at run time)
    g = import_onnx(_case("gqa_p0_s3_b2_kv2_qkv_float32").model)
    assert {t.id: t.attrs["shape"] for t in g.tensors if t.kind == "output"}["present_key"] == [2, 2, 3, 8]
    assert sweep.compare(_case("gqa_p4_s3_b1_kv2_packed_float16")) == ("agree", [])


def test_a_contrib_rotary_of_position_ids_not_its_inputs_is_refused_naming_it():
    text = _refusal("rotary_ms_rank4_seq_second")
    assert "node 'RotaryEmbedding_0' (RotaryEmbedding): its position_ids 'position_ids' is [2, 3], where its input " \
           "'input' ([2, 3, 2, 8]) requires [batch, sequence_length] = [2, 2] (or [1])" in text, text
    assert sweep.compare(_case("rotary_ms_rank4_seq_second"))[0] == "both refuse"
    assert sweep.compare(_case("rotary_ms_offset")) == ("agree", [])


@pytest.mark.parametrize("label, message", [
    ("gqa_rotary_h8_p0_s1_b2_qkv_float32", r"node 'GroupQueryAttention_0' \(GroupQueryAttention\): it applies rotary "
                                           r"embedding \(do_rotary=1\) to heads of size 8, not a multiple of 16"),
    ("gqa_rotary_h8_p4_s1_b2_packed_float16", r"heads of size 8, not a multiple of 16"),
    ("matmulnbits4_a3d_k32_b24_zp0", r"node 'MatMulNBits_0' \(MatMulNBits\): its block_size is 24: onnxruntime takes "
                                     r"only a power of two of 16 or more"),
    ("gather_block_q_int4_ga0_qa1_b8", r"node 'GatherBlockQuantized_0' \(GatherBlockQuantized\): its block_size is 8"),
])
def test_an_llm_op_onnxruntime_refuses_for_its_block_or_head_size_is_refused_naming_it(label, message):
    text = _refusal(label)
    assert re.search(message, text), text
    assert sweep.compare(_case(label))[0] == "both refuse"
    ok = label.replace("_h8_", "_h16_").replace("_b24_", "_b32_").replace("_b8", "_b16")
    assert sweep.compare(_case(ok)) == ("agree", [])


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([4, 8]), st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 70),
       st.integers(1, 9), st.sampled_from([16, 32, 64, 8, 48]))
def test_any_matmulnbits_is_planned_at_onnxruntime_s_sizes_or_refused_as_it_refuses(bits, lead, k, n, block):
    blocks = -(-k // block)
    ins = {"A": sweep._x(tuple(lead) + (2, k)), "B": sweep._x((n, blocks, block * bits // 8), np.uint8, 1),
           "scales": sweep._x((n * blocks,), seed=2) + 1}
    case = sweep._case("hypothesis", "MatMulNBits", ins, ["y"], consts=("B", "scales"), K=k, N=n, bits=bits,
                       block_size=block)
    kind, lines = sweep.compare(case)
    assert kind in ("agree", "both refuse"), (kind, lines)
    assert (kind == "both refuse") == (block in (8, 48)), (kind, lines)
