"""Round 40: models and usage patterns the sweep did not hold (transformers task heads, composite vision-language
models, ``torch.nn`` patterns), run as the sweep runs them (CPU, 1 stream and ``streams="auto"``, two calls on fresh
inputs against eager, the arena NaN-poisoned), and planned through ``memplan.from_torch`` + ``plan`` + ``verify``.

The one bug found (docs/aten.md, "Models the list did not hold (session 40)"): ``compile`` of a module that calls
``flex_attention`` (or ``torch.vmap``) was refused ("torch.vmap inside the program ... import the decomposed
program (from_torch(..., decompose=True), ...)": flex_attention builds its default block mask under a vmap), advice
``compile`` has no option for; compile now lowers such a program's vmap (``run_decompositions({})``: its batched
ops become plain ATen ops, every other op as exported) and runs it bitwise eager.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from sweep_verdicts import BY_NAME  # noqa: E402
from sweep_verdicts import verdicts as _verdicts  # noqa: E402
from torch import nn  # noqa: E402

from runtime.aten import compile, sweep  # noqa: E402


class FlexCausal(nn.Module):
    """Self-attention through ``flex_attention`` with a causal ``score_mod`` (no block mask: flex_attention builds
    its default one under ``torch.vmap``), and one with a ``create_block_mask`` mask."""

    def __init__(self, block_mask: bool):
        super().__init__()
        self.qkv, self.block_mask = nn.Linear(32, 96), block_mask

    def forward(self, x):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 4, 8).permute(2, 0, 3, 1, 4)
        if self.block_mask:
            bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, t, t, device=x.device)
            return flex_attention(q, k, v, block_mask=bm)
        return flex_attention(q, k, v, score_mod=lambda s, b, h, qi, ki: torch.where(qi >= ki, s, -float("inf")))


class Vmapped(nn.Module):
    """A per-example function under ``torch.vmap`` (a matrix-vector product and a pointwise op)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        return torch.vmap(lambda r: (self.w @ r).sin() * 2)(x)


@pytest.mark.parametrize("make,shape", [(lambda: FlexCausal(False), (2, 16, 32)), (lambda: FlexCausal(True), (2, 16, 32)),
                                        (Vmapped, (4, 6))], ids=["flex_score_mod", "flex_block_mask", "vmap"])
def test_a_program_with_a_vmap_compiles_and_equals_eager(make, shape):
    torch.manual_seed(0)
    m = make().eval()
    g = torch.Generator().manual_seed(1)
    program = None   # the one export (streams plan what it exported; "auto" reuses it, as the sweep does)
    with torch.no_grad():
        for streams in (1, "auto"):
            step = compile(m, (torch.randn(*shape, generator=g),), streams=streams, poison=True, program=program)
            program = step.program
            for _ in range(2):
                x = torch.randn(*shape, generator=g)
                assert torch.equal(step(x), m(x))


SESSION40 = ["bert_seqcls", "bert_qa", "bert_multiple_choice", "llama_seqcls", "gpt2_double_heads", "vit_imgcls",
             "wav2vec2_xvector", "whisper_full", "clip_full", "llava_full", "sam_full", "axk1", "flex_attention",
             "vmap_fns", "parametrize_maps", "reused_tied", "assoc_scan_generic"]


def test_session40_entries_are_listed_once_and_run_on_a_cpu():
    names = [c.name for c in sweep.CASES]
    assert len(names) == len(set(names))
    assert set(SESSION40) <= set(names)
    assert not any(BY_NAME[n].cuda_only for n in SESSION40)


@pytest.mark.parametrize("name", ["flex_attention", "vmap_fns", "parametrize_maps", "reused_tied", "llama_seqcls",
                                  "bert_multiple_choice"])
def test_entry_bitwise_on_one_and_auto_streams(name):
    assert _verdicts(name) == {"s1": "bitwise", "auto": "bitwise"}


def test_flex_attention_program_plans_through_from_torch_once_lowered():
    """``from_torch`` keeps refusing a vmap (naming ``decompose=True``); the decomposed program plans and verifies."""
    import memplan
    from memplan.errors import GraphError

    case = BY_NAME["flex_attention"]
    model = case.make().eval()
    x = case.inputs(torch.Generator().manual_seed(1), torch.device("cpu"), torch.float32)
    with pytest.raises(GraphError, match=r"torch\.vmap inside the program.*decompose=True"):
        memplan.from_torch(model, x)
    graph = memplan.from_torch(model, x, decompose=True)
    for streams in (None, "auto"):
        planned = memplan.plan_graph(graph, streams=streams)
        memplan.verify(planned.graph, planned.plan)


def test_a_sequence_classifier_pooling_at_eos_is_refused_naming_the_node():
    """BART's classifier checks every row holds as many ``<eos>`` as the others (``unique_consecutive`` of a count):
    a size computed from the ids' values, which no plan can hold."""
    from memplan.errors import GraphError

    case = sweep.Case("bart_seqcls", sweep.hf("BartConfig", "BartForSequenceClassification", "sdpa", num_labels=3,
                                              vocab_size=128, max_position_embeddings=64, eos_token_id=2, **sweep.BART),
                      sweep.ids(2, 6))
    ids = torch.randint(3, 128, (2, 6))
    ids[:, -1] = 2
    with pytest.raises(GraphError, match=r"node 'unique_consecutive' \(aten\.unique_consecutive\.default\): "
                                         r"data-dependent size"):
        compile(case.make().eval(), (ids,), streams=1)
