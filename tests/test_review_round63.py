"""Round 63 review: an op of onnx's domains used at an opset before onnx defines it (``Gelu`` at opset 17: Gelu-20 is
its first) was planned, though onnxruntime refuses the model ("No Op registered for Gelu with domain_version of 17").
Three checks each left it to another: the schema check skips an op with no schema at the opset (for onnxruntime's own
ops), the kernel-version check and the type rules skip it "for the schema check". Now the schema check refuses it,
unless onnxruntime registers a schema of that op at the opset itself (its LayerNormalization-1,
MeanVarianceNormalization-1 and ThresholdedRelu-1 in the default domain, which it loads)."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T  # noqa: E402
from onnx import helper  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx, type_rules  # noqa: E402


def _unary(op: str, opset: int, inputs: int = 1):
    ins = [helper.make_tensor_value_info("x", T.FLOAT, [2, 3])]
    ins += [helper.make_tensor_value_info(f"s{k}", T.FLOAT, [3]) for k in range(1, inputs)]
    node = helper.make_node(op, [i.name for i in ins], ["y"], name="n0")
    g = helper.make_graph([node], "g", ins, [helper.make_empty_tensor_value_info("y")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


@pytest.mark.parametrize("op,opset,first", [("Gelu", 17, 20), ("Mish", 13, 18), ("Celu", 11, 12), ("Erf", 7, 9),
                                            ("HardSwish", 13, 14), ("BitwiseNot", 17, 18)])
def test_an_op_before_its_first_version_is_refused(op, opset, first):
    with pytest.raises(GraphError, match=rf"node 'n0' \({op}\): onnx defines {op} from opset {first} of the default "
                                         rf"domain on, and the model imports opset {opset}.*onnxruntime refuses"):
        import_onnx(_unary(op, opset))


@pytest.mark.parametrize("op,opset,inputs", [("LayerNormalization", 13, 2), ("LayerNormalization", 7, 2),
                                             ("MeanVarianceNormalization", 7, 1), ("ThresholdedRelu", 7, 1)])
@pytest.mark.parametrize("with_ort", [True, False])
def test_onnxruntimes_own_earlier_versions_are_still_planned(op, opset, inputs, with_ort, monkeypatch):
    """onnxruntime registers these before onnx defines them, and loads the model: planned, with onnxruntime's
    schemas or without them (then by the names this importer knows)."""
    if with_ort:
        pytest.importorskip("onnxruntime")
    else:
        monkeypatch.setattr(type_rules, "_ort_schemas", lambda: {})
    import_onnx(_unary(op, opset, inputs))


def _early_models():
    """Every default-domain op of one type parameter, no required attribute, at the opsets 7..19 before its first."""
    first: dict[str, int] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain == "" and not s.deprecated:
            first[s.name] = min(first.get(s.name, 999), s.since_version)
    for op, v0 in sorted(first.items()):
        s = onnx.defs.get_schema(op, v0, "")
        if (any(a.required for a in s.attributes.values()) or not s.inputs
                or len({p.type_str for p in [*s.inputs, *s.outputs]}) != 1):
            continue
        for v in (7, 11, 13, 17, 19):
            if v < v0:
                ins = [helper.make_tensor_value_info(f"x{k}", T.FLOAT, [2, 3]) for k in range(max(1, s.min_input))]
                outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(max(1, s.min_output))]
                g = helper.make_graph([helper.make_node(op, [i.name for i in ins], [o.name for o in outs])], "g",
                                      ins, outs)
                m = helper.make_model(g, opset_imports=[helper.make_opsetid("", v)])
                m.ir_version = 7
                yield f"{op}@{v}", m


def test_memplan_plans_an_early_op_exactly_where_onnxruntime_loads_it():
    """Agreement with onnxruntime over every such model (27 were planned that onnxruntime refuses; none refused
    that it loads)."""
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.log_severity_level = 4
    disagree = []
    for name, m in _early_models():
        try:
            ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
            loads = True
        except Exception:  # noqa: BLE001 - any refusal
            loads = False
        try:
            import_onnx(m)
            plans = True
        except GraphError:
            plans = False
        if loads != plans:
            disagree.append((name, loads, plans))
    assert not disagree
