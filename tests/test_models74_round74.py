"""Round 74 (models74): real PyTorch models run through ``runtime.aten`` in ways the sweep does not (an eager call
between compiled ones, weights changed between calls), and what broke.

A transformers classifier compiled *with* labels reads ``config.problem_type`` (None) and its ``forward`` sets it once
for good; after one eager call (which sets it, as every first call does) each compiled call was refused ("...
problem_type is 'single_label_classification' now, None at compile"), though exporting again from the value now gives
the very program. Now the guard takes such a settings state where that export proves it (``_prove_settings``), and a
value that makes another program is still refused.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Options:
    def __init__(self):
        self.scale = 2.0
        self.label_kind = None   # set by forward at its first call with labels (transformers' config.problem_type)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.config = Options()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, labels):
        y = self.lin(x) * self.config.scale
        if self.config.label_kind is None:
            self.config.label_kind = "square"   # BertForSequenceClassification: config.problem_type = ...
        if self.config.label_kind == "square":
            return y, (y - labels).square().mean()
        return y, (y - labels).abs().mean()


def _eager(m, *args):
    with torch.no_grad():
        return m(*args)


def test_a_setting_forward_sets_once_for_good_is_taken_after_an_eager_call():
    m = Classifier().eval()
    x, lab = torch.randn(2, 4), torch.randn(2, 4)
    step = compile(m, (x, lab), streams=1, poison=True)
    assert m.config.label_kind is None   # (the export's change put back)
    want = _eager(m, x, lab)             # eager's first call sets it
    assert m.config.label_kind == "square"
    got = step(x, lab)                   # refused before: "Classifier.config.label_kind is 'square' now, None ..."
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    got = step(x * 2, lab)
    assert all(torch.equal(a, b) for a, b in zip(got, _eager(m, x * 2, lab)))


def test_a_setting_that_makes_another_program_is_still_refused_once_per_state():
    m = Classifier().eval()
    x, lab = torch.randn(2, 4), torch.randn(2, 4)
    step = compile(m, (x, lab), streams=3, poison=True)
    _eager(m, x, lab)
    step(x, lab)
    m.config.label_kind = "abs"   # another loss: the program holds the square one
    with pytest.raises(AtenExecutorError, match=r"Classifier\.config\.label_kind is 'abs' now, 'square' at compile"):
        step(x, lab)
    assert step.settings_refuted is not None
    exports = []
    again = step._export_again
    step._export_again = lambda *a, **k: exports.append(1) or again(*a, **k)
    with pytest.raises(AtenExecutorError, match=r"label_kind is 'abs' now"):
        step(x, lab)
    assert exports == []   # (the refuted state is answered without an export)
    m.config.label_kind = "square"
    assert all(torch.equal(a, b) for a, b in zip(step(x, lab), _eager(m, x, lab)))
    m.config.scale = 3.0   # baked into the program as a number
    with pytest.raises(AtenExecutorError, match=r"Classifier\.config\.scale is 3\.0 now, 2\.0 at compile"):
        step(x, lab)


def test_a_transformers_classifier_compiled_with_labels_runs_after_an_eager_call():
    transformers = need("transformers")
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    m = transformers.BertForSequenceClassification(cfg).eval()
    ids, labels = torch.randint(0, 64, (2, 6)), torch.tensor([0, 2])
    step = compile(m, (), kwargs={"input_ids": ids, "labels": labels}, streams=3, poison=True)
    assert m.config.problem_type is None
    with torch.no_grad():
        want = m(input_ids=ids, labels=labels)
    assert m.config.problem_type == "single_label_classification"
    got = step(input_ids=ids, labels=labels)
    assert torch.equal(got.loss, want.loss) and torch.equal(got.logits, want.logits)


# --- a program= whose export installed forward hooks once (transformers 5's output capturing: LLaVA's vision tower) --


class LazyTap(nn.Module):
    """Installs a forward hook on its block at its first call, marking itself (transformers' output capturing, which
    LLaVA's vision tower asks for at every call: ``output_hidden_states=True``)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        if not getattr(self, "_tapped", False):
            self.block.register_forward_hook(lambda mod, args, out: out * 3)
            self._tapped = True
        return self.head(self.block(x))


def _hooks(m):
    return sum(len(x._forward_hooks) for x in m.modules())


@pytest.mark.parametrize("streams", [1, 3])
def test_a_given_program_whose_export_installed_hooks_once_compiles_as_compiles_own_export(streams):
    """Failed before: ``compile(m, x, program=load_program(m, x))`` refused ("forward registers a forward hook of
    LazyTap.block while it runs ... register hooks outside forward"), where ``compile(m, x)`` settles the hooks."""
    import copy

    from runtime.aten.program import load_program

    m = LazyTap()
    e = copy.deepcopy(m)
    x0 = torch.randn(2, 4)
    program = load_program(m, (x0,))
    assert _hooks(m) == 0   # (the export's hook put back)
    step = compile(m, (x0,), cuda_graph=False, poison=True, streams=streams, program=program)
    for k in range(2):
        x = torch.randn(2, 4, generator=torch.Generator().manual_seed(k))
        assert torch.equal(step(x), _eager(e, x))
        assert _hooks(m) == _hooks(e) == 1 and m._tapped and e._tapped


def test_a_given_program_exported_before_an_eager_call_installed_the_hooks_is_refused_not_installed_twice():
    from runtime.aten.program import load_program

    m = LazyTap()
    x0 = torch.randn(2, 4)
    program = load_program(m, (x0,))
    _eager(m, x0)   # installs the hook (and the mark) as the export did
    with pytest.raises(AtenExecutorError, match=r"forward registers a forward hook of LazyTap\.block"):
        compile(m, (x0,), cuda_graph=False, program=program)
    assert _hooks(m) == 1
    step = compile(m, (x0,), cuda_graph=False)   # (exported from the state now: no hook registered)
    assert torch.equal(step(x0), _eager(m, x0))


# --- a proof's second export and the sign of a NaN -------------------------------------------------------------------


class _Cfg:
    def __init__(self, a: float) -> None:
        self.a = a


class ScaledByCfg(nn.Module):
    def __init__(self, a: float) -> None:
        super().__init__()
        self.cfg = _Cfg(a)

    def forward(self, x):
        return x * self.cfg.a


A = float("nan")


class ScaledByGlobal(nn.Module):
    def forward(self, x):
        return x * A


def _same_bits(got, want) -> bool:
    return torch.equal(got.isnan(), want.isnan()) and torch.equal(got.signbit(), want.signbit())


@pytest.mark.parametrize("where", ["setting", "global"])
def test_a_nan_changed_to_minus_nan_is_not_proven_the_same_program(where):
    """Failed (setting) once round 74 proved settings by a second export, and (global) before: ``format_node`` writes
    both NaNs as ``nan``, so the second export was "the same program" and the compiled call returned NaNs of the
    export's sign where eager's were negative (found by test_review_round65's property test)."""
    global A
    nan = float("nan")
    m = ScaledByCfg(nan) if where == "setting" else ScaledByGlobal()
    A = nan
    x = torch.ones(2)
    step = compile(m, (x,), streams=1, cuda_graph=False, poison=True)
    if where == "setting":
        m.cfg.a = -nan
    else:
        A = -nan
    want = _eager(m, x)
    assert want.signbit().all()
    try:
        got = step(x)
    except AtenExecutorError:
        return
    finally:
        A = nan
    assert _same_bits(got, want), (got.signbit(), want.signbit())
