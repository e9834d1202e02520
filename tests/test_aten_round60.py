"""Round 60 (aten60): 46 ``transformers`` model types (49 entries) the sweep lacked (tiny, from their default configs) and
plain-PyTorch patterns (``out=`` variants, ``torch.where`` with scalars, int64 index math, writes through views of
inputs, ``torch.nn.functional`` corners, complex64, channels-last, bfloat16 on a CPU) run on the CPU, 1 and 3 streams.

Bugs fixed (each test failed before):
- a node refused for a data-dependent size named only the ATen op ("node 'split_with_sizes'
  (aten.split_with_sizes.default): data-dependent size u0"), never the model's line that made it (JetMoE's router
  ``inputs.split(expert_size)``, V-JEPA 2's ``target.repeat(B, max_patch_num, 1)``, SuperPoint's keypoints);
- the executor's own refusals of a node at compile (``torch.add(x, 1, out=self.buf)`` resizing a buffer,
  ``x.set_(y)`` of an input) named the node alone, not the line of ``forward``;
- a view at a data-dependent storage offset (``hist[i]`` of a 0-dim int64 tensor: ``select(hist, 0, i.item())``) was
  refused as a "data-dependent size u1 ... e.g. nonzero, .tolist()", a size it does not have.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from memplan.errors import GraphError  # noqa: E402
from runtime.aten import compile  # noqa: E402


class SplitByCounts(torch.nn.Module):
    """An MoE-style split of rows by counts read from values (JetMoE's router)."""

    def forward(self, x):
        counts = (x > 0).sum(0)
        parts = x.split(counts.tolist(), dim=0)
        return parts[0] * 2


class StepSlot(torch.nn.Module):
    """A buffer row written at a slot from a step counter (a ring buffer of statistics)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("hist", torch.zeros(3, 4))

    def forward(self, x):
        self.steps += 1
        self.hist[self.steps % 3] = x.sum(0)
        return self.hist * 1


class StepSlotIndexed(StepSlot):
    def forward(self, x):
        self.steps += 1
        self.hist[(self.steps % 3).view(1)] = x.sum(0)
        return self.hist * 1


def test_a_data_dependent_size_refusal_names_the_models_source_line():
    with pytest.raises(GraphError) as err:
        compile(SplitByCounts(), (torch.randn(2, 2),), streams=1)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("node 'split_with_sizes' (aten.split_with_sizes.default): data-dependent size u")
    assert "(at test_aten_round60.py:" in text and "in forward: `parts = x.split(counts.tolist(), dim=0)`)" in text


def test_a_view_at_a_data_dependent_offset_is_refused_as_an_offset_with_the_way_around_it():
    from runtime.aten.errors import AtenExecutorError

    with pytest.raises((GraphError, AtenExecutorError)) as err:
        compile(StepSlot(), (torch.randn(5, 4),), streams=1)
    text = str(err.value)
    if isinstance(err.value, AtenExecutorError):   # (torch 2.11's export reads the 0-d index as a Python number)
        assert "Python value from the values of the buffer StepSlot.steps" in text, text
        assert "(at test_aten_round60.py:" not in text and "test_aten_round60.py:" in text, text
        pytest.skip(f"this torch ({torch.__version__}) reads hist[steps % 3]'s index as a number: the value-read "
                    "refusal names it; no data-dependent offset to refuse")
    assert "): data-dependent storage offset u" in text and "hist[i.view(1)]" in text, text
    assert "data-dependent size" not in text and "(at test_aten_round60.py:" in text


@pytest.mark.parametrize("streams", [1, 3])
def test_the_suggested_one_element_index_runs_and_updates_the_buffer_as_eager(streams):
    eager, mine = StepSlotIndexed(), StepSlotIndexed()
    step = compile(mine, (torch.randn(5, 4),), streams=streams)
    mine.load_state_dict(eager.state_dict())
    for k in range(4):
        x = torch.randn(5, 4, generator=torch.Generator().manual_seed(k))
        assert torch.equal(step(x), eager(x))
        assert torch.equal(mine.hist, eager.hist) and torch.equal(mine.steps, eager.steps)


class OutResizesBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.zeros(2))

    def forward(self, x):
        torch.add(x, 1, out=self.buf)
        return self.buf * 2


class SetsInput(torch.nn.Module):
    def forward(self, x, y):
        x.set_(y)
        return x * 2


@pytest.mark.parametrize("module, inputs, node, line", [
    (OutResizesBuffer, (4,), "node 'add' (aten.add.out): out= resizes", "torch.add(x, 1, out=self.buf)"),
    (SetsInput, (4, 3), "node 'set_' (aten.set_.source_Tensor): set_ makes user input 'x'", "x.set_(y)")])
def test_an_executor_refusal_of_a_node_names_the_models_source_line(module, inputs, node, line):
    from runtime.aten.errors import AtenExecutorError

    with pytest.raises(AtenExecutorError) as err:
        compile(module(), tuple(torch.randn(n) for n in inputs), streams=1)
    text = str(err.value)
    assert text.startswith(node) and "\n" not in text
    assert text.endswith(f" in forward: `{line}`)") and "(at test_aten_round60.py:" in text, text


def test_per_layer_lists_are_cut_to_the_tiny_layer_count():
    """``tiny60`` builds hybrid stacks (Qwen3.5's ``layer_types``) the sweep's ``tiny`` could not: their per-layer
    lists keep the default's length (32) where ``num_hidden_layers`` is 2, which the config refuses."""
    from runtime.aten.sweep_models60 import _per_layer

    base = {"num_hidden_layers": 4, "layer_types": ["lin", "lin", "lin", "full"], "sizes": [1, 2],
            "per_layer": {"0": 1, "2": 3}, "sub": {"num_layers": 3, "kinds": ["a", "b", "c"]}}
    tiny = {**base, "num_hidden_layers": 2, "sub": {"num_layers": 2, "kinds": ["a", "b", "c"]}}
    out = _per_layer(tiny, base)
    assert out["layer_types"] == ["lin", "full"] and out["sizes"] == [1, 2] and out["per_layer"] == {"0": 1}
    assert out["sub"]["kinds"] == ["b", "c"]


def test_round60_sweep_entries_are_listed_once_and_missing_where_transformers_lacks_them(monkeypatch):
    """Every new name is in the sweep once; a model type this transformers lacks (the device image's 5.17) is
    SKIP-MISSING, never SKIP-BUILD."""
    import runtime.aten.sweep as sweep
    from runtime.aten.sweep_blocks60 import BLOCKS60, BLOCKS60_BF16
    from runtime.aten.sweep_models60 import MODELS60, tiny60

    names = [n for n, _m, _i in MODELS60 + BLOCKS60 + BLOCKS60_BF16]
    listed = [c.name for c in sweep.CASES]
    assert len(MODELS60) >= 40 and all(listed.count(n) == 1 for n in names)
    assert not any(c.cuda_only for c in sweep.CASES if c.name in names)
    need("transformers")
    case = sweep.Case("absent", tiny60("no_such_model_type_60"), lambda g, dev, dt: ())
    seen = []
    sweep.run_case(case, torch.device("cpu"), [], lambda name, mode, verdict, t, **kw: seen.append(verdict))
    assert len(seen) == 1 and seen[0].startswith("SKIP-MISSING"), seen


@pytest.mark.parametrize("name", ["out_variants", "where_scalars", "int_index_math", "input_view_writes",
                                  "writes_after_reads", "complex_math", "bf16_block"])
def test_round60_blocks_are_bitwise_on_one_and_three_streams(name):
    import runtime.aten.sweep as sweep

    case = next(c for c in sweep.CASES if c.name == name)
    seen = []
    modes = [("s1", 1, False), ("s3", 3, False)]
    sweep.run_case(case, torch.device("cpu"), modes, lambda n, mode, verdict, t, **kw: seen.append((mode, verdict)))
    assert seen == [("s1", "bitwise"), ("s3", "bitwise")], seen
