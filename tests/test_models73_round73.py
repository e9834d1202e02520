"""Round 73 (models73): real and hand-written models through ``runtime.aten.compile`` on the CPU, the defects found.

- ``tqdm``, a global of transformers' generation code (every ``GenerationMixin`` model's tree names it), was watched
  as a class of the user's: its ``tqdm.monitor`` class attribute, which the first progress bar of the process sets
  (torch's export makes one where it propagates unbacked sizes), refused the first compile of T5Gemma2 in a fresh
  process ("forward changes the class attribute tqdm.monitor"), and a compiled call after the user's first
  ``tqdm(loader)`` exported ``forward`` again to prove the change (one more export). Machinery's classes
  (``settings._MACHINERY``: torch's, tqdm's, the standard library's) are no Python state of the user's.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")
tqdm = need("tqdm")

from runtime.aten import compile  # noqa: E402
from runtime.aten.python_state import python_state  # noqa: E402

_tqdm = tqdm.tqdm


class Progress(torch.nn.Module):
    """A module whose code names the global ``tqdm`` class, as transformers' generation mixin does."""

    def progress(self, it):
        return _tqdm(it, disable=True)

    def forward(self, x):
        return x * 2 + 1


def test_tqdm_class_is_no_python_state_of_the_users():
    labels = [p.label for p in python_state(torch, Progress())]
    assert not [label for label in labels if "tqdm" in label], labels


def test_a_progress_bar_after_compile_needs_no_export(monkeypatch):
    m = Progress()
    x = torch.randn(3, 4)
    step = compile(m, (x,))
    monkeypatch.setattr(_tqdm, "monitor", object())   # (what the process's first progress bar leaves)

    def no_export(*_a, **_k):
        raise AssertionError("a compiled call exported forward again")
    monkeypatch.setattr(torch.export, "export", no_export)
    assert torch.equal(step(x), m(x))


def test_data_dependent_refusal_quotes_no_torch_text_as_the_models_code():
    """A train-mode ``BatchNorm1d(momentum=None)`` (``float(num_batches_tracked)``) was refused "(at <string>:1 in
    <lambda>: `The error above occurred when calling torch.export.export. ...`)": torch's next paragraph quoted as the
    model's code, in a file no user can open; no frame of the model's own is on the stack, so torch's layer's line is
    named."""
    import memplan
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match="data-dependent") as info:
        memplan.from_torch(torch.nn.BatchNorm1d(4, momentum=None).train(), (torch.randn(3, 4, 5),))
    assert "The error above" not in str(info.value) and "<string>" not in str(info.value), str(info.value)
    assert "(at batchnorm.py:" in str(info.value) and "float(self.num_batches_tracked)" in str(info.value)


def test_raising_call_without_a_source_line_quotes_no_code():
    from memplan.importers.torch.common import _raising_call

    text = ("The following call raised this error:\n  File \"<stdin>\", line 11, in forward\n\n\n"
            "The error above occurred when calling torch.export.export. If you would like ...\n")
    assert _raising_call(text) == " (at <stdin>:11 in forward)"
    assert _raising_call(text.replace('"<stdin>", line 11, in forward', '"<string>", line 1, in <lambda>')) == ""


@pytest.mark.parametrize("option", ["strict", "decompose"])
@pytest.mark.parametrize("value", ["no", 0, None])
def test_from_torch_boolean_options_are_checked(option, value):
    """``decompose="no"`` (truthy) decomposed the program silently, ``strict="no"`` ran a strict export: checked as
    ``check_custom_ops`` is, before any export."""
    import memplan
    from memplan.errors import OptionError

    with pytest.raises(OptionError, match=f"from_torch: {option} must be True or False"):
        memplan.from_torch(torch.nn.Linear(4, 4), (torch.randn(2, 4),), **{option: value})


class RandomRange(torch.nn.Module):
    def forward(self, x):
        return (x * 1)[:, :2].random_(0, 5)


def test_random_from_overload_refusal_names_the_op_and_the_way_out():
    """``Tensor.random_(0, 5)`` (``aten.random_.from``: an overload named with a Python keyword, which torch's FX code
    cannot hold) was refused as "invalid syntax (proxy_tensor.py:1910 in wrapped, line 7)"."""
    import memplan
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=r"aten\.random_\.from: .*'from', a Python keyword.*torch\.randint"):
        memplan.from_torch(RandomRange(), (torch.randn(3, 8),))


class Unsqueezes(torch.nn.Module):
    def forward(self, x):
        return x.unsqueeze_(0) * 2


class Transposes(torch.nn.Module):
    def forward(self, x, *, y):
        y.t_()
        return x + y


def test_from_torch_names_an_argument_forward_reshapes_in_place():
    """``x.unsqueeze_(0)`` on an argument was refused as "torch.export failed for M: list index out of range", and
    ``y.t_()`` under ``decompose=True`` as "len(mutations) (0) != num_mutated_inp_runtime_indices (1)"."""
    import memplan
    from memplan.errors import GraphError

    x, m = torch.randn(3, 3), Unsqueezes()
    with pytest.raises(GraphError, match=r"tensor argument 'x' \(it went from shape \[3, 3\] strides \[3, 1\] to "
                                         r"shape \[1, 3, 3\] strides \[9, 3, 1\]\) in place"):
        memplan.from_torch(m, (x,))
    assert not m._forward_hooks and not m._forward_pre_hooks and x.shape == (3, 3)   # (the watch's hooks gone)
    assert len(memplan.from_torch(Transposes(), (x,), kwargs={"y": x.clone()}).nodes) == 2   # (exported: planned)
    with pytest.raises(GraphError, match=r"decomposing Transposes to core ATen failed: .*argument 'y'"):
        memplan.from_torch(Transposes(), (x,), kwargs={"y": x.clone()}, decompose=True)


class WritesFirst(torch.nn.Module):
    def forward(self, a, b):
        a.add_(1)
        return a + b


def test_decompose_names_example_arguments_that_share_memory():
    """Two overlapping example arguments, one written in place, under ``decompose=True`` failed with torch's
    "Expected !size_bytes_is_heap_allocated_ to be true"; apart, they import."""
    import memplan
    from memplan.errors import GraphError

    base = torch.randn(10)
    with pytest.raises(GraphError, match=r"the example arguments 'a' and 'b' share memory"):
        memplan.from_torch(WritesFirst(), (base[:8].view(2, 4), base[2:].view(2, 4)), decompose=True)
    assert len(memplan.from_torch(WritesFirst(), (base[:4], base[4:8]), decompose=True).nodes) == 2


class Doubling(torch.Tensor):
    """A tensor subclass whose ``__torch_function__`` doubles ``torch.add``'s results (eager's ops go through it)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return out * 2 if func is torch.add else out


class AddsWeights(torch.nn.Module):
    def __init__(self, b):
        super().__init__()
        self.register_buffer("b", b)
        self.w = torch.nn.Parameter(torch.randn(4))

    def forward(self, x):
        return torch.add(x, self.b) + self.w


def test_weight_of_a_subclass_that_computes_otherwise_is_refused():
    """A buffer of such a subclass compiled, and every call gave the plain program's values (3.7 off eager's); the
    caller's inputs of such classes were refused since round 42."""
    from runtime.aten.errors import AtenExecutorError

    x = torch.randn(4)
    with pytest.raises(AtenExecutorError, match=r"AddsWeights\.b is a buffer of Doubling, a tensor subclass with a "
                                                r"__torch_function__"):
        compile(AddsWeights(torch.randn(4).as_subclass(Doubling)), (x,))
    m = AddsWeights(torch.randn(4))
    step = compile(m, (x,))
    assert torch.equal(step(x), m(x))
    m.b = m.b.as_subclass(Doubling)   # (after compile: rebound, the program read its data as a plain buffer's)
    with pytest.raises(AtenExecutorError, match=r"attribute AddsWeights\.b is a Doubling now, a tensor subclass"):
        step(x)


def _act(x):
    return x.relu()


class CallsHelpers(torch.nn.Module):
    """``forward`` calls a global helper function and a method of its class."""

    def helper(self, x):
        return x * 2

    def forward(self, x):
        return self.helper(_act(x))


@pytest.mark.parametrize("where", ["global", "method"])
def test_helper_function_replaced_after_compile_is_proven(monkeypatch, where):
    """A global helper (``_act = other``) or a method of the module's class (``M.helper = other``) replaced after
    compile changed eager's result and silently not the program's (which holds what the export traced); now such a
    function of the user's own code is watched by identity: another program is refused naming it, and the very one
    (an equal function, or the old one put back) runs."""
    from runtime.aten.errors import AtenExecutorError

    m, x = CallsHelpers(), torch.randn(5)
    step = compile(m, (x,))
    if where == "global":
        monkeypatch.setitem(globals(), "_act", lambda t: t.sigmoid())
        label = "the global _act"
    else:
        monkeypatch.setattr(CallsHelpers, "helper", lambda self, t: t * 3)
        label = "the class attribute CallsHelpers.helper"
    with pytest.raises(AtenExecutorError, match=f"{label} .*changed since compile"):
        step(x)
    monkeypatch.undo()
    assert torch.equal(step(x), m(x))


class Views(torch.nn.Module):
    def forward(self, x):
        return (x * 2).view(-1)


def test_decomposition_failure_names_the_node_and_the_way_out():
    """A tiny GPT-2 (batch 2) under ``decompose=True`` failed in torch's fake ``view`` ("Cannot view a tensor with
    shape torch.Size([2, 7, 16]) and strides (16, 32, 1) as a tensor with shape (14, 16)!"), naming no node, no line
    and not that the program as exported imports; torch's "While executing %view_6" names the node."""
    from memplan.importers.torch.trace import _decomposition_node

    ep = torch.export.export(Views(), (torch.randn(2, 3),))
    failure = ValueError("Cannot view a tensor ...\n\nWhile executing %view : [num_users=1] = call_function[...]")
    text = _decomposition_node(ep, failure)
    assert text.startswith(" (node 'view' (view) (at test_models73_round73.py:") and "decompose=False" in text, text
    assert _decomposition_node(ep, ValueError("no node named")) == ""


class VmapsWeight(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return torch.vmap(lambda r: self.w @ r)(x)


def test_vmap_lifted_tensor_refusal_names_the_vmap_line():
    """``torch.vmap(lambda r: self.w @ r)(x)`` failed in torch.export with "We found a fake tensor in the exported
    program constant's list ... Please file an issue on github", naming no line and no way out."""
    import memplan
    from memplan.errors import GraphError

    with pytest.raises(GraphError, match=r"forward calls torch\.vmap \(at test_models73_round73\.py:\d+ in forward: "
                                         r"`return torch\.vmap\(lambda r: self\.w @ r\)\(x\)`\).*without torch\.vmap"):
        memplan.from_torch(VmapsWeight(), (torch.randn(5, 4),))
