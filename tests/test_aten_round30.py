"""Round 30 of the PyTorch path on the CPU: ``out=`` calls with several outs, and inference-serving programs
(KV caches, MoE routing, LoRA, beam gathers), run by the ATen executor against eager (1 and 3 streams,
poisoned arena, bitwise).

- ``torch.max(x, 1, out=(v, i))``, ``torch.sort(..., out=...)``, ``torch.topk(..., out=...)``: every out the
  call resizes (or the plan places apart) is an in-place result of its own; two of them were refused as
  "2 in-place results over 2 written arguments (unsupported)". They run as the functional twin's out=
  overload into the planned results.
- Serving steps (the sweep's ``SERVING`` cases: static KV caches the caller owns written in place, prefill and
  decode, a full sliding window's roll, MoE, a DynamicCache, LoRA adapters, a beam step, a 4-D float mask) equal
  the exported program bitwise on 3 streams and memplan's "auto" plan; data-dependent MoE routing is refused
  naming the node."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_aten_round29 import _equal_eager  # noqa: E402  (each call on fresh inputs equals eager, bitwise)
from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402


def _max(x, outs):
    return torch.max(x, 1, out=outs)


def _min(x, outs):
    return torch.min(x, 1, keepdim=True, out=outs)


def _sort(x, outs):
    return torch.sort(x, dim=-1, descending=True, out=outs)


def _topk(x, outs):
    return torch.topk(x, 3, out=outs)


def _kthvalue(x, outs):
    return torch.kthvalue(x, 2, 1, out=outs)


def _aminmax(x, outs):
    return torch.aminmax(x, dim=0, out=outs)


class SeveralOuts(nn.Module):
    """``fn(x * 2, out=(v, i))`` into outs of ``size`` elements (0: every out resized), read afterwards."""

    def __init__(self, fn, size: int, second=torch.long):
        super().__init__()
        self.fn, self.size, self.second = fn, size, second

    def forward(self, x):
        v = torch.empty(self.size)
        i = torch.empty(self.size, dtype=self.second)
        self.fn(x * 2, (v, i))
        return v + 1, i * 1


@pytest.mark.parametrize("fn,second", [(_max, torch.long), (_min, torch.long), (_sort, torch.long),
                                       (_topk, torch.long), (_kthvalue, torch.long), (_aminmax, torch.float32)],
                         ids=["max", "min", "sort", "topk", "kthvalue", "aminmax"])
@pytest.mark.parametrize("streams", [1, 3])   # (no "auto": on a CPU it plans serial, the plan of streams=1)
def test_out_calls_with_several_resized_outs_run_as_eager(fn, second, streams):
    step = _equal_eager(SeveralOuts(fn, 0, second), lambda: (torch.randn(4, 8),), streams)
    assert step.stats.copies_per_call == 0   # the functional twin's out= overload, straight into the plan


def test_several_outs_of_the_right_size_run_where_the_plan_puts_them():
    step = _equal_eager(SeveralOuts(_max, 4), lambda: (torch.randn(4, 8),), 3)
    assert step.stats.copies_per_call == 0


class SortsIntoItsInput(nn.Module):
    """``torch.sort(y, out=(y, i))``: an out that is also the input the op reads."""

    def forward(self, x):
        y = x * 2
        i = torch.empty(0, dtype=torch.long)
        torch.sort(y, dim=1, out=(y, i))
        return y + 1, i * 1


@pytest.mark.parametrize("streams", [1, 3])
def test_an_out_that_is_also_the_input_the_op_reads(streams):
    _equal_eager(SortsIntoItsInput(), lambda: (torch.randn(4, 8),), streams)


# ---------------------------------------------------------------- inference-serving programs

def _run_serving(name: str, streams):
    """The sweep's serving case ``name`` compiled on ``streams`` (or memplan's "auto" plan, which ``compile``
    makes serial on a CPU), poisoned arena: outputs and the caches it writes equal the exported program's,
    bitwise, on two calls (eager takes transformers' other mask path: close to it)."""
    import memplan
    from runtime.aten import sweep
    from runtime.aten.program import load_program

    need("transformers")
    case = sweep._by_name[name]
    torch.manual_seed(0)
    model = case.make().eval()
    g = torch.Generator().manual_seed(1)
    x0 = case.inputs(g, torch.device("cpu"), torch.float32)
    program = load_program(model, tuple(t.clone() for t in x0))
    plan = memplan.plan(program.graph, streams="auto") if streams == "auto" else None
    step = compile(model, x0, streams=streams, plan=plan, program=program, poison=True)
    reference = program.exported.module()
    for _ in range(2):
        xs = case.inputs(g, torch.device("cpu"), torch.float32)
        mine, theirs, eager = ([t.clone() for t in xs] for _k in range(3))
        out = step(*mine)
        with torch.no_grad():
            ref, ref_eager = reference(*theirs), model(*eager)
        for a, b, e in zip(out, ref, ref_eager):
            assert a.shape == b.shape and torch.equal(a, b)
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs))   # the caches written in place
    return step


@pytest.mark.parametrize("name,streams", [("llama_kv_decode", 3), ("llama_kv_decode", "auto"),
                                          ("qwen2_kv_prefill", 3), ("mistral_kv_window_full", 3),
                                          ("qwen2_moe_kv_decode", "auto"), ("llama_dyn_decode", 3),
                                          ("qwen2_beam_step", 3), ("llama_lora_kv_decode", "auto"),
                                          ("llama_mask4d", 3)])
def test_serving_steps_match_the_exported_program_bitwise(name, streams):
    step = _run_serving(name, streams)
    if streams == "auto":
        assert step.plan.streams > 1   # a multi-stream plan, run in issue order on the CPU


class RoutesByWhere(nn.Module):
    """An MoE dispatch written with data-dependent shapes (``torch.where`` of the top-k choice per expert)."""

    def __init__(self, d: int = 8, experts: int = 3):
        super().__init__()
        self.gate = nn.Linear(d, experts)
        self.experts = nn.ModuleList(nn.Linear(d, d) for _ in range(experts))

    def forward(self, x):
        w, sel = self.gate(x).softmax(-1).topk(2, -1)
        out = torch.zeros_like(x)
        for i, ex in enumerate(self.experts):
            tok, slot = torch.where(sel == i)
            out.index_add_(0, tok, ex(x[tok]) * w[tok, slot, None])
        return out


def test_data_dependent_routing_is_refused_naming_the_node():
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=r"node 'where' \(aten\.where\.default\): data-dependent size"):
        compile(RoutesByWhere().eval(), (torch.randn(5, 8),), streams=1)


class _OldKwarg(nn.Module):
    def forward(self, input_ids, past_key_values=None, use_cache=False, **kwargs):
        return input_ids


class _NoCache(nn.Module):
    def forward(self, input_ids, **kwargs):
        return input_ids


def test_the_serving_steps_hand_the_cache_under_the_models_own_keyword():
    """transformers 5.2x renamed ``past_key_values`` to ``cache``; a model takes an unknown keyword into its ``**kwargs``
    and may run without the cache, silently: the steps ask the model's signature."""
    from runtime.aten.sweep import cache_keyword

    assert cache_keyword(_OldKwarg()) == "past_key_values"
    with pytest.raises(TypeError, match="_NoCache"):
        cache_keyword(_NoCache())


@pytest.mark.parametrize("name", ["llama_kv_decode", "llama_dyn_decode"])
def test_the_serving_steps_read_their_caches(name):
    """Other past keys and values give other logits: a step that drops its cache (above) would pass every
    comparison with its own export, so this is the test that can see it."""
    from runtime.aten.sweep import CASES

    case = next(c for c in CASES if c.name == name)
    model = case.make()
    g = torch.Generator().manual_seed(0)
    xs = case.inputs(g, torch.device("cpu"), torch.float32)
    other = tuple(t if t.dtype != torch.float32 else t * 3 + 1 for t in xs)
    logits = [i for i, t in enumerate(model(*xs)) if t.dtype == torch.float32][0]
    with torch.no_grad():
        a, b = model(*[t.clone() for t in xs])[logits], model(*[t.clone() for t in other])[logits]
    assert not torch.equal(a, b)
