"""Review of round 35's settings guard (``runtime.aten.guard.Settings``): objects a module holds that are the
program's machinery, not its settings.

The guard watched the public plain values of every non-callable object with a ``__dict__`` a module holds. A
``logging.Logger`` on the module (``self.log = logging.getLogger(...)``) changes its ``level`` by ``setLevel``, an
LR scheduler its ``last_epoch`` by ``step()``, a ``random.Random`` its ``gauss_next``: each refused the next compiled
call ("Net.log.level is 10 now, 0 at compile"), though forward bakes none of them. A namespace of options
(``argparse.Namespace``, ``types.SimpleNamespace``, a user's class) is still watched."""

from __future__ import annotations

import argparse
import logging
import random
import types

import pytest
from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from runtime.aten import compile  # noqa: E402
from runtime.aten.errors import AtenExecutorError  # noqa: E402


class Held(nn.Module):
    """A linear layer and whatever objects ``held`` names, on the module before the compile."""

    def __init__(self, **held):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        for k, v in held.items():
            setattr(self, k, v)

    def forward(self, x):
        opts = getattr(self, "opts", None)
        return self.lin(x) * (opts.scale if opts is not None else 1.0)


def _eager(m, x):
    with torch.no_grad():
        return m(x)


def _scheduler() -> object:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    return torch.optim.lr_scheduler.StepLR(opt, step_size=1)


MACHINERY = {   # name -> (the object, what ordinary use does to it)
    "a logger's setLevel": (lambda: logging.getLogger("review35b.model"), lambda o: o.setLevel(logging.DEBUG)),
    "an LR scheduler's step": (_scheduler, lambda o: (o.optimizer.step(), o.step())),
    "a random.Random drawn from": (lambda: random.Random(0), lambda o: o.gauss(0.0, 1.0)),
}


@pytest.mark.parametrize("case", sorted(MACHINERY))
def test_machinery_a_module_holds_changed_by_its_own_methods_is_no_setting(case):
    make, use = MACHINERY[case]
    m = Held(thing=make()).eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1, poison=True)
    use(m.thing)
    assert torch.equal(step(x), _eager(m, x))   # was refused: "Held.thing.level is 10 now, 0 at compile"


@pytest.mark.parametrize("namespace", [argparse.Namespace, types.SimpleNamespace])
def test_a_namespace_of_options_is_still_a_setting(namespace):
    m = Held(opts=namespace(scale=2.0)).eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1, poison=True)
    assert torch.equal(step(x), _eager(m, x))
    m.opts.scale = 3.0
    with pytest.raises(AtenExecutorError, match=r"Held\.opts\.scale is 3\.0 now, 2\.0 at compile"):
        step(x)


class Square(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Parameter(torch.randn(4, 4))
        self.register_buffer("b", torch.randn(4, 4))

    def forward(self, x):
        return x @ self.w + x @ self.b


CHANGES = {   # in place, same tensor objects: the guard's one C++ layout check (TensorGuards) must see each
    "a buffer transposed in place": lambda m: m.b.t_(),
    "a weight frozen in place": lambda m: m.w.requires_grad_(False),
    "a buffer's dtype viewed": lambda m: setattr(m.b, "data", m.b.data.view(torch.int32)),
    "a weight's shape cut": lambda m: setattr(m.w, "data", m.w.data[:2]),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_the_fast_path_sees_a_layout_changed_in_place(case):
    m = Square().eval()
    step = compile(m, (torch.randn(2, 4),), streams=1)
    assert step.guard.unchanged()
    CHANGES[case](m)
    assert not step.guard.unchanged()


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "enable_grad"])
def test_the_fast_path_holds_under_every_grad_mode(mode):
    """The C++ check compares dispatch keys under the thread's state (inference mode drops the autograd ones):
    where it says no, the maps decide, and an unchanged module is unchanged."""
    m = Square().eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1)
    with getattr(torch, mode)():
        assert step.guard.unchanged()
        assert torch.equal(step(x), m(x))
    assert step.rebinds == 0


class Options:
    def __init__(self):
        self.scale = 2.0
        self.label_kind = None   # read by forward only with labels (transformers' config.problem_type)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.config = Options()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, labels=None):
        y = self.lin(x) * self.config.scale
        if labels is not None:
            if self.config.label_kind is None:
                self.config.label_kind = "single"   # BertForSequenceClassification: config.problem_type = ...
            return y, (y - labels).square().mean()
        return y


def test_a_config_value_forward_did_not_read_at_export_is_no_setting():
    """Compiled without labels, an eager call with labels sets ``label_kind``; the program never read it (it was
    refused: "Classifier.config.label_kind is 'single' now, None at compile"). ``scale``, read, still is watched."""
    m = Classifier().eval()
    x = torch.randn(2, 4)
    step = compile(m, (x,), streams=1, poison=True)
    with torch.no_grad():
        m(x, labels=torch.zeros(2, 4))
    assert m.config.label_kind == "single"
    assert torch.equal(step(x), _eager(m, x))
    m.config.scale = 3.0
    with pytest.raises(AtenExecutorError, match=r"Classifier\.config\.scale is 3\.0 now, 2\.0 at compile"):
        step(x)
    assert "__getattribute__" not in vars(Options)   # the class as it was


def test_a_transformers_classifier_compiled_without_labels_runs_after_an_eager_call_with_labels():
    transformers = need("transformers")
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    m = transformers.BertForSequenceClassification(cfg).eval()
    ids = torch.randint(0, 64, (1, 8))
    own = vars(type(cfg)).get("__getattribute__"), vars(transformers.PretrainedConfig).get("__getattribute__")
    step = compile(m, (), kwargs={"input_ids": ids}, streams=1)
    assert (vars(type(cfg)).get("__getattribute__"), vars(transformers.PretrainedConfig).get("__getattribute__")) == own
    with torch.no_grad():
        m(input_ids=ids, labels=torch.tensor([1]))   # an eval loss, eager: config.problem_type set
        want = m(input_ids=ids).logits
    assert m.config.problem_type == "single_label_classification"
    got = step(input_ids=ids)
    assert torch.equal(got.logits if hasattr(got, "logits") else got[0], want)
    m.config.return_dict = False   # a value forward reads: still refused
    with pytest.raises(AtenExecutorError, match=r"config\.return_dict is False now, True at compile"):
        step(input_ids=ids)


class OwnGetattribute:
    def __init__(self):
        self.a, self.b = 1, 2

    def __getattribute__(self, name):
        return object.__getattribute__(self, name)


def test_the_read_watch_restores_each_class_through_nesting_and_errors():
    from runtime.aten.object_reads import watch_object_reads

    own = vars(OwnGetattribute)["__getattribute__"]
    o, p, ns = OwnGetattribute(), Options(), types.SimpleNamespace(c=3)
    with pytest.raises(KeyboardInterrupt):
        with watch_object_reads([o, p, ns]) as (outer, watched):
            assert watched == {id(o), id(p)}   # (a builtin type takes no patch: its values stay all watched)
            with watch_object_reads([o]) as (inner, _):
                assert o.a == 1
            assert p.scale == 2.0 and o.b == 2
            raise KeyboardInterrupt
    assert inner == {(id(o), "a")} and outer == {(id(p), "scale"), (id(o), "b")}
    assert vars(OwnGetattribute)["__getattribute__"] is own and "__getattribute__" not in vars(Options)
