"""Round 54 (aten54): attention layers of a program whose export no ``forward`` watch recorded (a strict export, a
given ``ExportedProgram``) are judged from the program itself (``fastpath.from_program``).

Bugs fixed (each test failed before):
- false refusals: every ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` of the module counted as called
  in the fast path's form, so calls eager runs on the standard path (a 2-D input, a float mask, ``a(x, y, y)``, a
  layer ``forward`` never calls) were refused under ``no_grad``; and a strict export under ``no_grad`` holds torch's
  fused kernel itself, whose calls equal eager's fused path, refused too.
- silently other numbers: that strict export's program called under grad mode with parameters that require grad
  (eager's standard path) ran its fused kernel: 2.4e-7 off on a ``TransformerEncoderLayer(12, 2, 16)``, no error.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from fastpath_probe import fused_calls, grad_mode  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402
from runtime.aten.program import load_program  # noqa: E402
from runtime.aten.sweep import mha_fastpath  # noqa: E402


def _x(seed, *shape):
    return torch.randn(*(shape or (2, 5, 12)), generator=torch.Generator().manual_seed(seed))


class Layers(nn.Module):
    """One form of call of an attention layer (``how``), each of torch's fast-path conditions on the call's form."""

    def __init__(self, how: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.how = how
        self.a = nn.MultiheadAttention(12, 2, batch_first=True)
        self.layer = nn.TransformerEncoderLayer(12, 2, 16, batch_first=True, dropout=0.0)
        self.mask = torch.randn(5, 5, generator=torch.Generator().manual_seed(9))

    def forward(self, x, y):
        if self.how == "mha_self":              # the fast path's form: fused where the modes let it
            return self.a(x, x, x)[0] + y
        if self.how == "mha_cross":             # key and value other than the query: never fused
            return self.a(x, y, y)[0]
        if self.how == "mha_float_mask":        # a float mask: never fused
            return self.a(x, x, x, attn_mask=self.mask)[0] + y
        if self.how == "mha_2d":                # not batched: never fused
            h = x[0]
            return self.a(h, h, h)[0] + y[0]
        if self.how == "encoder":               # the fast path's form
            return self.layer(x + y)
        if self.how == "encoder_2d":            # not batched
            return self.layer(x[0]) + y[0]
        return x * 2 + y                        # "unused": no layer called


HOWS = ["mha_self", "mha_cross", "mha_float_mask", "mha_2d", "encoder", "encoder_2d", "unused"]
FUSED_OPS = ("_native_multi_head_attention", "_transformer_encoder_layer_fwd")


def _program(m, args, export):
    """A program no ``forward`` watch recorded: a strict export under ``no_grad`` (torch traces the encoder layer's
    fused kernel then) or a given non-strict ``ExportedProgram``."""
    if export == "strict_no_grad":
        with torch.no_grad():
            return load_program(m, args, strict=True)
    return load_program(m, args, exported=torch.export.export(m, args))


@pytest.mark.parametrize("export", ["strict_no_grad", "exported"])
@pytest.mark.parametrize("how", HOWS)
def test_a_call_is_refused_exactly_where_eager_takes_another_path_than_the_program(how, export):
    """Against eager, under each grad mode with parameters that require grad or not: a call runs (and equals eager
    bitwise) where eager takes the program's path, and is refused naming the fast path where it takes the other."""
    m = Layers(how).eval()
    x, y = _x(1), _x(2)
    program = _program(m, (x, y), export)
    assert not program.fast_recorded
    in_program = any(str(n.target).split(".")[1] in FUSED_OPS for n in program.exported.graph.nodes
                     if n.op == "call_function" and str(n.target).startswith("aten."))
    step = compile(m, (x, y), program=program)
    seen_fused = 0
    with mha_fastpath(True):
        for frozen in (False, True):
            m.requires_grad_(not frozen)
            for mode in ("grad", "no_grad", "inference"):
                with fused_calls() as seen, grad_mode(mode):
                    ref = m(x, y)
                seen_fused += bool(seen)
                try:
                    with grad_mode(mode):
                        out = step(x, y)
                except AtenExecutorError as e:
                    assert "fused fast path" in str(e)
                    assert bool(seen) != in_program, (how, export, frozen, mode, str(e)[:200])
                    continue
                assert bool(seen) == in_program, (how, export, frozen, mode, "ran on the other path")
                assert torch.equal(out, ref), (how, export, frozen, mode)
    assert (seen_fused > 0) == (how in ("mha_self", "encoder")), seen_fused   # (the table covers both paths)


def test_a_call_passing_one_tensor_twice_is_taken_as_fused_where_a_layer_is_cross_attention():
    """``a(x, y, y)`` of a program exported from two tensors, called ``m(x, x)``: eager's query, key and value are
    then one tensor and it takes the fast path; the program's standard path would differ, so it is refused."""
    m = Layers("mha_cross").eval()
    x, y = _x(1), _x(2)
    step = compile(m, (x, y), program=_program(m, (x, y), "exported"))
    with mha_fastpath(True), torch.no_grad():
        assert torch.equal(step(x, y), m(x, y))
        with fused_calls() as seen:
            m(x, x)
        assert seen
        with pytest.raises(AtenExecutorError, match="fused fast path"):
            step(x, x)


class Branches(nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda a: a.abs() + 1, lambda a: a.abs() - 1, (x,))


def test_a_strict_export_after_compiling_a_torch_cond_still_traces_attention():
    """``torch.cond`` runs Dynamo inside compile's watched export, where ``torch.is_grad_enabled`` is the watch's
    wrapper: Dynamo's once-per-process table of the torch functions it handles was keyed by it, and every later strict
    export of an attention layer failed ("torch.* op returned non-Tensor": this file after tests/test_aten_round51.py).
    The table built during a watched export is now dropped after it."""
    import torch._dynamo.variables.torch as dynamo_torch

    dynamo_torch.TorchInGraphFunctionVariable._get_handlers.cache_clear()   # (a process whose first trace is below)
    x = torch.randn(3, 4)
    assert torch.equal(compile(Branches(), (x,))(x), Branches()(x))
    m = Layers("mha_self").eval()
    program = _program(m, (_x(1), _x(2)), "strict_no_grad")
    assert not program.fast_recorded
