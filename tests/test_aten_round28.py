"""Round 28 of the PyTorch path on the CPU: real models the sweep did not hold, run by the ATen executor
against eager (1 and 3 streams, poisoned arena, bitwise).

D-FINE's box head integrates a distribution over bins with ``F.linear(probs, project)``, ``project`` a
vector: ``linear`` with a 1-D weight, whose result has the input's leading dimensions alone. The exact
``linear`` lowering folded the result as a matrix of the weight's rows and failed to lower the node
("shape '[40, 40]' is invalid for input of size 40"); eager runs ``matmul(x, w)``, an ``mv`` of the folded
input, which the lowering now runs too."""

from __future__ import annotations

import pytest
from needs import need, save_or_skip

torch = need("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from runtime.aten import compile  # noqa: E402


class VectorLinear(nn.Module):
    """``F.linear`` with a 1-D weight (and a 0-d bias, which eager adds after the ``mv``), its input made by
    an op first (an arena tensor), transposed where ``transpose`` says so (the generic ``linear.out`` path)."""

    def __init__(self, features: int, bias: bool, transpose: bool):
        super().__init__()
        self.w = nn.Parameter(torch.randn(features))
        self.b = nn.Parameter(torch.randn(())) if bias else None
        self.transpose = transpose

    def forward(self, x):
        y = x.softmax(-1) if not self.transpose else (x * 2).transpose(-1, -2)
        return F.linear(y, self.w, self.b)


@pytest.mark.parametrize("shape,bias,transpose", [
    ((40, 33), False, False),        # D-FINE's: (queries * 4 sides, bins)
    ((2, 5, 33), False, False),
    ((2, 2, 5, 33), True, False),    # 4-D with a bias: matmul, then add_ (2-D/3-D with a bias: eager's addmm refuses)
    ((0, 33), False, False),         # no rows
    ((6, 7), False, True),           # a transposed input: linear.out, eager's mv too
    ((2, 6, 7), False, True),
])
@pytest.mark.parametrize("streams", [1, 3])
def test_linear_with_a_vector_weight_runs_as_eager(shape, bias, transpose, streams):
    torch.manual_seed(0)
    features = shape[-2] if transpose else shape[-1]
    m = VectorLinear(features, bias, transpose).eval()
    x = torch.randn(*shape)
    step = compile(m, (x,), streams=streams, poison=True)
    for _ in range(2):
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = m(x)
        out = step(x)
        assert out.shape == ref.shape and torch.equal(out, ref)
    if not transpose:   # contiguous inputs: mv straight into the planned result, no copy
        assert step.stats.copies_per_call == 0


def _dfine(batch: int, height: int, width: int):
    tf = need("transformers")
    if not hasattr(tf, "DFineConfig"):
        pytest.skip(f"transformers {tf.__version__} has no D-FINE")
    backbone = {"model_type": "rt_detr_resnet", "embedding_size": 16, "hidden_sizes": [16, 32, 48, 64],
                "depths": [1, 1, 1, 1], "layer_type": "basic", "out_features": ["stage2", "stage3", "stage4"]}
    cfg = tf.DFineConfig(d_model=32, encoder_hidden_dim=32, encoder_in_channels=[32, 48, 64], feat_strides=[8, 16, 32],
                         encoder_layers=1, decoder_layers=2, num_queries=10, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         decoder_in_channels=[32, 32, 32], num_feature_levels=3, hidden_expansion=0.5,
                         backbone_config=backbone, use_pretrained_backbone=False, use_timm_backbone=False,
                         backbone=None)
    torch.manual_seed(0)
    model = tf.DFineForObjectDetection._from_config(cfg, attn_implementation="eager").eval()

    class Boxes(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            out = self.m(pixel_values=pixel_values)
            return out.logits, out.pred_boxes

    return Boxes().eval(), (batch, 3, height, width)


def test_dfine_detector_equals_eager_bitwise_on_one_and_three_streams():
    """The real model the bug was found in (tiny, random weights): every node lowers, and both outputs are
    eager's bits on a 1- and a 3-stream plan over a poisoned arena."""
    from runtime.aten.program import load_program

    model, shape = _dfine(1, 64, 64)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(*shape, generator=g)
    program = load_program(model, (x0,))
    assert any(n.target is torch.ops.aten.linear.default and n.args[1].meta["val"].dim() == 1
               for n in program.exported.graph.nodes if n.op == "call_function" and len(n.args) > 1)
    for streams in (1, 3):
        step = compile(model, (x0,), streams=streams, poison=True, program=program)
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            ref = model(x)
        out = step(x)
        for a, b in zip(out, ref):
            assert torch.equal(a, b)


class ChecksItsInput(nn.Module):
    """A runtime check on a tensor's values (transformers' ``torch_compilable_check``, in D-FINE and DEIMv2):
    the export keeps an ``item`` and scalar asserts on an unbacked symbol that the saved graph no longer names."""

    def forward(self, x):
        torch._check_tensor_all(x.abs() >= 0)
        return x * 2


def test_memplan_import_of_a_pt2_with_a_value_check_is_quiet(tmp_path, capfd):
    """Loading such a program, torch's deserializer logs "Symbol u0 did not appear in the graph that was
    deserialized" from a logger with a stderr handler of its own: a line of torch's internals that ``-q``
    printed for every such model. It is held with the loader's other messages; the graph is imported."""
    from memplan.cli import main
    from memplan.io import load_graph

    save_or_skip(torch.export.export(ChecksItsInput(), (torch.randn(4),)), tmp_path / "m.pt2")   # (2.11 cannot)
    capfd.readouterr()
    assert main(["import", str(tmp_path / "m.pt2"), "-o", str(tmp_path / "g.json"), "-q"]) == 0
    assert capfd.readouterr().err == ""
    assert load_graph(str(tmp_path / "g.json")).tensors
    # the logger is as it was after the load: a program loaded outside memplan still warns as torch does
    import logging

    serde = logging.getLogger("torch._export.serde.serialize")
    assert serde.level == logging.NOTSET and not serde.propagate and serde.handlers
