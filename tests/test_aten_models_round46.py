"""Round 46 (models46): real-model features the ATen executor got wrong, each as a tiny module on the CPU.

Bugs fixed (each test marked "failed before" did):
- ``forward`` changing its argument's containers in place (``acc.append(y)``, ``d["k"] = t``, ``xs[0] = t``, a counter
  in a dict, a KV-cache object passed in that grows: transformers' ``DynamicCache`` registered as a pytree node,
  ``register_dynamic_cache_export_support``) compiled, and every compiled call left the caller's objects as passed
  where eager changes them: silently another state after the call. Now compile refuses it naming the argument.
- a transformers 5 model compiled with ``output_hidden_states=True`` / ``output_attentions=True`` was refused
  ("forward registers a forward hook ... while it runs"): its capturing hooks are installed once, at the first call
  that asks. Hooks a forward installs once and for all are kept now, where a second export from that state is the same
  program (``sets.settle_hook_installs``).
- one eager call with ``output_hidden_states=True`` after compile (the same inert hooks) made every later compiled call
  refuse; hooks added after compile are taken where an export with them gives the same program and they change no
  Python state (``CompiledModule._prove_calls``).
"""

from __future__ import annotations

import copy
import sys

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Appends(nn.Module):
    def forward(self, x, acc: list):
        y = x * 2
        acc.append(y)
        return y.sum()


class SetsKey(nn.Module):
    def forward(self, x, d: dict):
        d["y"] = x + 1
        return x * 3


class ReplacesSlot(nn.Module):
    def forward(self, xs: list):
        xs[0] = xs[0] * 2
        return xs[0] + xs[1]


class Counts(nn.Module):
    def forward(self, x, state: dict):
        state["n"] = state["n"] + 1
        return x * 2


class TinyCache:
    """A KV cache of one layer that grows by concatenation, as transformers' ``DynamicCache`` does."""

    def __init__(self, k):
        self.k = k

    def update(self, k):
        self.k = torch.cat([self.k, k], dim=0)
        return self.k


pytree.register_pytree_node(TinyCache, lambda c: ([c.k], None), lambda leaves, _ctx: TinyCache(leaves[0]),
                            flatten_with_keys_fn=lambda c: ([(pytree.GetAttrKey("k"), c.k)], None))


class Decodes(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, cache: TinyCache):
        k = cache.update(self.lin(x))
        return k.sum(0)


def _shape_of(args):
    """The structure of a call's arguments and their leaves (tensors by identity, other values by value)."""
    leaves, spec = pytree.tree_flatten(args)
    return spec, [id(a) if isinstance(a, torch.Tensor) else a for a in leaves]


CHANGERS = [
    (Appends, lambda: (torch.randn(3), [torch.randn(3)]), r"argument 'acc' in place: its structure changed"),
    (SetsKey, lambda: (torch.randn(3), {"a": torch.randn(3)}), r"argument 'd' in place: its structure changed"),
    (ReplacesSlot, lambda: ([torch.randn(3), torch.randn(3)],), r"argument 'xs' in place: its leaf 0 \(a tensor\)"),
    (Counts, lambda: (torch.randn(3), {"n": 1}), r"argument 'state' in place: its leaf 0 \(a int\)"),
    (Decodes, lambda: (torch.randn(1, 4), TinyCache(torch.randn(2, 4))),
     r"argument 'cache' in place: its leaf 0 \(a tensor\) was replaced"),
]


@pytest.mark.parametrize(("cls", "args", "message"), CHANGERS, ids=[c[0].__name__ for c in CHANGERS])
def test_forward_changing_its_arguments_containers_is_refused_naming_it(cls, args, message):
    """Failed before: compiled, and the caller's list / dict / cache stayed as passed where eager changes them."""
    torch.manual_seed(0)
    m = cls().eval()
    eager_args = args()
    before = _shape_of(eager_args)
    with torch.no_grad():
        m(*eager_args)
    assert _shape_of(eager_args) != before   # eager changes the caller's objects
    with pytest.raises(AtenExecutorError, match=message):
        compile(m, args(), cuda_graph=False)


class WritesIntoListed(nn.Module):
    """An in-place write into a tensor held in a list argument: the same tensor, the program writes it back."""

    def forward(self, xs: list, d: dict):
        xs[0].add_(1)
        return xs[0] * d["s"] + xs[1]


@pytest.mark.parametrize("streams", [1, 3])
def test_reading_and_writing_into_an_arguments_tensors_still_runs_as_eager(streams):
    m = WritesIntoListed()

    def args(k):
        g = torch.Generator().manual_seed(k)
        return [torch.randn(3, generator=g), torch.randn(3, generator=g)], {"s": torch.randn(3, generator=g)}

    step = compile(m, args(0), cuda_graph=False, poison=True, streams=streams)
    for k in range(2):
        a, b = args(k + 1), args(k + 1)
        ref = m(*a)
        out = step(*b)
        assert torch.equal(out, ref)
        assert all(torch.equal(p, q) for p, q in zip(pytree.tree_leaves(a), pytree.tree_leaves(b)))


# --- forward hooks a forward installs once (transformers 5's output capturing) ---------------------------------------


class LazyTap(nn.Module):
    """Installs a forward hook on its block at its first call, marking itself (transformers' ``capture_outputs``):
    the hook scales the block's output where ``scale`` says so; later calls install none."""

    def __init__(self, after: bool = False):
        super().__init__()
        self.block = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.after = after

    def _install(self):
        if not getattr(self, "_tapped", False):
            self.block.register_forward_hook(lambda mod, args, out: out * 3)
            self._tapped = True

    def forward(self, x):
        if not self.after:
            self._install()
        y = self.head(self.block(x))
        if self.after:   # installed after the block ran: eager's first call runs no hook, every later one does
            self._install()
        return y


class EveryCallTap(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Linear(4, 4)

    def forward(self, x):
        self.block.register_forward_hook(lambda mod, args, out: out + 1)
        return self.block(x)


def _hooks(m):
    return sum(len(x._forward_hooks) for x in m.modules())


@pytest.mark.parametrize("streams", [1, 3])
def test_a_hook_forward_installs_once_compiles_and_runs_as_eager(streams):
    """Failed before: refused ("forward registers a forward hook of LazyTap.block while it runs")."""
    torch.manual_seed(0)
    m = LazyTap()
    e = copy.deepcopy(m)
    step = compile(m, (torch.randn(2, 4),), cuda_graph=False, poison=True, streams=streams)
    for k in range(3):
        x = torch.randn(2, 4, generator=torch.Generator().manual_seed(k))
        with torch.no_grad():
            ref = e(x)
        assert torch.equal(step(x), ref)
        assert _hooks(m) == _hooks(e) == 1 and m._tapped and e._tapped


def test_a_hook_installed_after_the_first_calls_result_or_at_every_call_is_still_refused():
    """The first call's program is not the later calls' (hook installed after the block ran), or every call adds one:
    refused as before, the module left without the export's hook or flag."""
    for m, who in ((LazyTap(after=True), "LazyTap.block"), (EveryCallTap(), "EveryCallTap.block")):
        with pytest.raises(AtenExecutorError, match=rf"forward registers a forward hook of {who} "):
            compile(m, (torch.randn(2, 4),), cuda_graph=False)
        assert _hooks(m) == 0 and not getattr(m, "_tapped", False)


def test_transformers_output_hidden_states_and_attentions_compile_bitwise():
    """Failed before: ``output_hidden_states=True`` refused (transformers installs its capturing hooks at the first
    call that asks)."""
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    cfg._attn_implementation = "eager"
    m = transformers.LlamaForCausalLM(cfg).eval()
    e = copy.deepcopy(m)
    kw = {"use_cache": False, "output_hidden_states": True, "output_attentions": True}
    step = compile(m, (torch.randint(0, 128, (2, 6)),), kwargs=kw, cuda_graph=False, poison=True)
    for k in range(2):
        ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(k))
        with torch.no_grad():
            ref = e(ids, **kw)
        out = step(ids, **kw)
        assert torch.equal(out.logits, ref.logits)
        for name in ("hidden_states", "attentions"):
            a, b = getattr(out, name), getattr(ref, name)
            assert len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))
    assert _hooks(m) == _hooks(e)


# --- hooks added after compile that leave the program as it is --------------------------------------------------------


def _two_layers():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


class _Inert:
    """transformers 5's capturing hook: inert unless a collector is active (here: never)."""

    active = None

    def __call__(self, module, args, out):
        if _Inert.active is None:
            return None
        return out * 2


@pytest.mark.parametrize("streams", [1, 3])
def test_an_inert_hook_added_after_compile_is_taken_once_proven(streams, monkeypatch):
    """Failed before: every compiled call after it was refused ("the forward hooks of Sequential.0 changed after
    compile"). One export proves it, then calls take the fast path again."""
    compile_module = sys.modules["runtime.aten.compile"]

    m = _two_layers()
    step = compile(m, (torch.randn(3, 4),), cuda_graph=False, poison=True, streams=streams)
    m[0].register_forward_hook(_Inert())
    exports = []
    real = compile_module.load_program
    monkeypatch.setattr(compile_module, "load_program", lambda *a, **k: exports.append(1) or real(*a, **k))
    for k in range(3):
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(k))
        with torch.no_grad():
            ref = m(x)
        assert torch.equal(step(x), ref)
    assert len(exports) == 1


HOOKS_REFUSED = [
    ("feature tap", lambda store: (lambda mod, args, out: store.append(out))),
    ("counter", lambda store: (lambda mod, args, out: store.append(1))),
    ("changes the result", lambda store: (lambda mod, args, out: out * 2)),
]


@pytest.mark.parametrize(("what", "make"), HOOKS_REFUSED, ids=[h[0] for h in HOOKS_REFUSED])
def test_a_hook_added_after_compile_that_does_work_or_changes_the_result_stays_refused(what, make, monkeypatch):
    """A hook eager runs with an effect (its result, a list it appends to) is no compiled call's: refused, once
    exported, then at once (no export per call), and the hook's list is left as eager's calls leave it."""
    compile_module = sys.modules["runtime.aten.compile"]

    m = _two_layers()
    step = compile(m, (torch.randn(3, 4),), cuda_graph=False)
    store = []
    m[0].register_forward_hook(make(store))
    exports = []
    real = compile_module.load_program
    monkeypatch.setattr(compile_module, "load_program", lambda *a, **k: exports.append(1) or real(*a, **k))
    for _ in range(2):
        with pytest.raises(AtenExecutorError, match=r"the forward hooks of Sequential\.0 changed after compile"):
            step(torch.randn(3, 4))
    assert len(exports) == 1 and store == []


def test_transformers_hidden_states_asked_eagerly_after_compile_leave_the_compiled_calls_running():
    """Failed before: one eager call with ``output_hidden_states=True`` after compile installed transformers' inert
    capturing hooks, and every compiled call after it was refused."""
    transformers = need("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    m = transformers.LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 128, (2, 6))
    step = compile(m, (ids,), kwargs={"use_cache": False}, cuda_graph=False, poison=True)
    with torch.no_grad():
        m(ids, use_cache=False, output_hidden_states=True)
        ref = m(ids, use_cache=False)
    assert torch.equal(step(ids, use_cache=False).logits, ref.logits)
