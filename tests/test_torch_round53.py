"""Round 53 of the torch.export importer: transformers decoders with their KV cache.

- A transformers decoder called with ``use_cache=True`` (its default) returns its KV cache as a ``DynamicCache``, and a
  decode step takes one as ``past_key_values``: ``from_torch`` refused both ("not a known type ... pass use_cache=
  False"), though decode graphs with a KV cache are what inference runtimes plan. The cache is flattened now with
  transformers' own pytree registration (``register_dynamic_cache_export_support``): its key and value tensors are
  graph inputs (decode) and outputs (prefill and decode), planned and verified on 1, 2 and "auto" streams; so is
  ``memplan import`` of a decoder saved with its cache. An encoder-decoder's ``EncoderDecoderCache`` (T5, BART) is
  flattened into its two ``DynamicCache``s (a registration of ours whose context names no class).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
transformers = need("transformers")

import memplan  # noqa: E402

_TINY = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def _decoder(kind: str):
    torch.manual_seed(0)
    config, model = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}[kind]
    return getattr(transformers, model)(getattr(transformers, config)(**_TINY)).eval()


def _kinds(g) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t in g.tensors:   # (views too: T5's encoder state is returned as a view of its last ``mul``)
        out.setdefault(t.kind, []).append(t.size)
    return out


def _planned_on_streams(g) -> None:
    for streams in (1, 2, "auto"):
        planned = memplan.plan_graph(g, streams=streams)
        memplan.verify(planned.graph, planned.plan)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_a_decoder_with_its_kv_cache_imports_for_prefill_and_decode(kind):
    # (refused before: "Found <class 'transformers.cache_utils.DynamicCache'> in output, which is not a known type")
    m = _decoder(kind)
    ids = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(1))
    head_dim = _TINY["hidden_size"] // _TINY["num_attention_heads"]
    per_token = _TINY["num_key_value_heads"] * head_dim * 4   # (float32 bytes of one layer's keys, per token)

    prefill = memplan.from_torch(m, (ids,), kwargs={"use_cache": True})
    outs = sorted(_kinds(prefill)["output"])
    # logits (5 x 64 floats) and, per layer, its keys and values of the 5 tokens
    assert outs == sorted([5 * 64 * 4] + [5 * per_token] * 2 * _TINY["num_hidden_layers"])
    _planned_on_streams(prefill)

    with torch.no_grad():
        cache = m(ids, use_cache=True).past_key_values
    before = [(layer.keys.shape, layer.values.shape) for layer in cache.layers]
    decode = memplan.from_torch(m, (ids[:, :1],), kwargs={"use_cache": True, "past_key_values": cache})
    assert [(layer.keys.shape, layer.values.shape) for layer in cache.layers] == before   # (the caller's, untouched)
    kinds = _kinds(decode)
    assert sorted(kinds["output"]) == sorted([64 * 4] + [6 * per_token] * 2 * _TINY["num_hidden_layers"])
    assert sorted(kinds["input"]).count(5 * per_token) == 2 * _TINY["num_hidden_layers"]
    _planned_on_streams(decode)


def test_memplan_import_of_a_decoder_saved_with_its_kv_cache(tmp_path, capsys):
    # (refused before: "a transformers.cache_utils.DynamicCache, which torch cannot load back": the class registers
    # with transformers' own function, which nothing called in a fresh `memplan import` process)
    from cli_contract import run_memplan
    from transformers.cache_utils import DynamicCache

    pytree = torch.utils._pytree
    m = _decoder("llama")
    ids = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(1))
    from transformers.integrations.executorch import register_dynamic_cache_export_support

    register_dynamic_cache_export_support()   # (as the user who saved it did)
    ep = torch.export.export(m, (ids,))   # (use_cache: the config's default, True)
    in_memory = memplan.from_torch(ep)
    torch.export.save(ep, tmp_path / "prefill.pt2")
    pytree._deregister_pytree_node(DynamicCache)   # as in a fresh `memplan import` process
    code, _out, err = run_memplan(capsys, ["import", tmp_path / "prefill.pt2", "-o", tmp_path / "g.json", "-q"])
    assert code == 0, err
    assert DynamicCache in pytree.SUPPORTED_NODES
    loaded = memplan.load_graph(str(tmp_path / "g.json"))
    assert sorted(t.size for t in loaded.tensors if t.kind == "output") == \
        sorted(t.size for t in in_memory.tensors if t.kind == "output")
    # a decode step's program saves its example cache pickled: imported since round 54 (tests/test_torch_round54.py)
    with torch.no_grad():
        cache = m(ids, use_cache=True).past_key_values
    torch.export.save(torch.export.export(m, (ids[:, :1],), kwargs={"past_key_values": cache}), tmp_path / "decode.pt2")
    pytree._deregister_pytree_node(DynamicCache)
    code, _out, err = run_memplan(capsys, ["import", tmp_path / "decode.pt2", "-o", tmp_path / "d.json", "-q"])
    assert code == 0, err


def test_an_encoder_decoder_with_its_cache_imports(tmp_path, capsys):
    # (refused before: "Found <class 'transformers.cache_utils.EncoderDecoderCache'> in output")
    from cli_contract import run_memplan
    from transformers.cache_utils import EncoderDecoderCache

    from memplan.importers.torch import trace_torch

    torch.manual_seed(0)
    m = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)).eval()
    ids = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(1))
    # (trace_torch: from_torch's export, and the program too, to save)
    ep, g, _trace = trace_torch(m, (ids,), kwargs={"decoder_input_ids": ids[:, :2]})
    # logits (2 x 64 floats), the encoder's last state (5 x 32), the decoder's self-attention keys and values
    # (4 heads x 2 tokens x 8) and its cross-attention keys and values (4 x 5 x 8)
    assert sorted(_kinds(g)["output"]) == sorted([2 * 64 * 4, 5 * 32 * 4] + [4 * 2 * 8 * 4] * 2 + [4 * 5 * 8 * 4] * 2)
    _planned_on_streams(g)
    assert ep.call_spec.out_spec.children_specs[1].context is None   # (its file names no class to build)
    torch.export.save(ep, tmp_path / "t5.pt2")
    torch.utils._pytree._deregister_pytree_node(EncoderDecoderCache)   # as in a fresh `memplan import` process
    code, _out, err = run_memplan(capsys, ["import", tmp_path / "t5.pt2", "-o", tmp_path / "g.json", "-q"])
    assert code == 0, err
    loaded = memplan.load_graph(str(tmp_path / "g.json"))
    assert sorted(t.size for t in loaded.tensors if t.kind == "output") == sorted(_kinds(g)["output"])


@torch.library.custom_op("memplan_round53::rows4", mutates_args=())
def _rows4(x: torch.Tensor) -> torch.Tensor:
    return x.repeat(4, 1)


@_rows4.register_fake
def _rows4_fake(x):
    return x.new_empty(x.shape)   # (a quarter of the rows the kernel returns)


class Rows4InABranch(torch.nn.Module):
    """The under-reporting op in ``cond``'s true branch (``p.sum() > 0``), through a parameter."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 3))

    def forward(self, x, p):
        return torch.cond(p.sum() > 0, lambda x: torch.ops.memplan_round53.rows4(x @ self.w).sum(0, keepdim=True),
                          lambda x: x[:1] + 1, (x,))


class Rows4InAMapBody(torch.nn.Module):
    def forward(self, xs):
        from torch._higher_order_ops.map import map as map_

        return map_(lambda x: torch.ops.memplan_round53.rows4(x).sum(0), xs)


class Rows4InALoopBody(torch.nn.Module):
    def forward(self, x):
        from torch._higher_order_ops.while_loop import while_loop

        return while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, torch.ops.memplan_round53.rows4(y)[:2] * 1),
                          (torch.tensor(0), x))[1]


_MISFIT = r"\[8, 3\] float32 \(96 bytes\).*fake \(meta\) kernel says \[2, 3\] float32 \(24 bytes\)"


@pytest.mark.parametrize("module, args", [(Rows4InABranch, (torch.randn(2, 3), torch.ones(2))),
                                          (Rows4InAMapBody, (torch.randn(3, 2, 3),)),
                                          (Rows4InALoopBody, (torch.randn(2, 3),))])
def test_a_custom_op_under_reporting_in_a_body_is_refused(module, args):
    # (planned before at the fake's 24 bytes for the kernel's 96: the check skipped every body)
    hop = {Rows4InABranch: "cond", Rows4InAMapBody: "map_impl", Rows4InALoopBody: "while_loop"}[module]
    with pytest.raises(memplan.errors.GraphError, match=rf"node 'rows4' in a body of node '{hop}' "
                                                         rf"\(memplan_round53\.rows4\.default\).*{_MISFIT}"):
        memplan.from_torch(module(), args)
    memplan.from_torch(module(), args, check_custom_ops=False)   # (opted out: the fake's word, as before)


def test_a_branch_the_example_inputs_do_not_take_is_not_checked():
    # documented: the check runs the program once, on the example inputs; the untaken branch's op never runs
    g = memplan.from_torch(Rows4InABranch(), (torch.randn(2, 3), -torch.ones(2)))
    assert g.tensors


def test_a_given_program_is_checked_on_its_own_or_the_given_examples(tmp_path):
    # (from_torch(ep) ran nothing before: the fake's 24 bytes were planned)
    m = CallsRows4()
    x = torch.randn(2, 3)
    ep = torch.export.export(m, (x,))
    with pytest.raises(memplan.errors.GraphError, match=rf"node 'rows4' \(memplan_round53.rows4.default\).*{_MISFIT}"):
        memplan.from_torch(ep)   # (on ep.example_inputs)
    with pytest.raises(memplan.errors.GraphError, match=_MISFIT):
        memplan.from_torch(ep, (torch.zeros(2, 3),))
    assert memplan.from_torch(ep, check_custom_ops=False).tensors
    torch.export.save(ep, tmp_path / "m.pt2")   # (and saved: its examples are saved with it)
    with pytest.raises(memplan.errors.GraphError, match=_MISFIT):
        memplan.from_torch(memplan.importers.torch.load_exported(str(tmp_path / "m.pt2")))


class CallsRows4(torch.nn.Module):
    def forward(self, x):
        return torch.ops.memplan_round53.rows4(x * 2) + 1
