"""Round 73 (lead): a CUDA-graph capture refused at a higher-order op names the op inside it that broke the capture.

On an H100, GLM-5 Next's indexer (a ``@torch.no_grad()`` method: one ``wrap_with_set_grad_enabled`` node whose body
indexes by a boolean mask) was refused as "node 'to_25' (wrap_with_set_grad_enabled): cannot be captured into a CUDA
graph", naming a wrapper the user never wrote. ``runtime.aten.errors.add_source`` now adds the body's first node of a
data-dependent size and the model's line that led there; the CUDA path (``Executor._run_call``'s capture) calls it. CPU-checked here on the
exported program (the capture itself needs a GPU).
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from runtime.aten.errors import AtenExecutorError, add_source  # noqa: E402
from runtime.aten.program import load_program  # noqa: E402

_CAPTURE = "cannot be captured into a CUDA graph (CUDA error: operation not permitted when stream is capturing)"


class MaskedInNoGrad(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    @torch.no_grad()
    def pick(self, x):
        keep = (x > 0).any(0)
        return x[:, keep].sum(1)

    def forward(self, x):
        return self.lin(x).sum(1) + self.pick(x)


class DenseInNoGrad(MaskedInNoGrad):
    @torch.no_grad()
    def pick(self, x):
        return torch.where(x > 0, x, 0).sum(1)


def _hop(ep):
    (n,) = [n for n in ep.graph.nodes if n.op == "call_function" and "wrap_with_set_grad_enabled" in str(n.target)]
    return n.name


def _refusal(module, message=_CAPTURE) -> str:
    ep = load_program(module, (torch.randn(3, 4),)).exported
    exc = AtenExecutorError(message, _hop(ep), "wrap_with_set_grad_enabled")
    add_source(exc, ep)
    return str(exc)


def test_a_capture_refused_at_a_no_grad_body_names_the_masked_index_and_its_line():
    text = _refusal(MaskedInNoGrad())
    assert "(wrap_with_set_grad_enabled): cannot be captured" in text
    assert "inside it, node 'index' (aten.index.Tensor) makes a data-dependent size" in text
    # (torch records a body node's trace up to the frame that called the no_grad method: that line is named)
    assert "test_lead_round73.py" in text and "self.pick(x)" in text


def test_a_body_of_fixed_sizes_or_another_refusal_gets_no_culprit():
    # negative controls: a body without a data-dependent size, and a refusal that is not a capture's
    assert "inside it" not in _refusal(DenseInNoGrad())
    assert "inside it" not in _refusal(MaskedInNoGrad(), "failed: some kernel error")


@pytest.mark.parametrize("node", [None, "no_such_node"])
def test_no_node_or_an_unknown_one_changes_nothing(node):
    ep = load_program(MaskedInNoGrad(), (torch.randn(3, 4),)).exported
    exc = AtenExecutorError(_CAPTURE, node, "op")
    before = str(exc)
    add_source(exc, ep)
    assert str(exc) == before


def test_a_second_call_adds_nothing_more():
    # (the body's traces dropped: with no " (at ...)" the call's own guard against a second source does not apply)
    ep = load_program(MaskedInNoGrad(), (torch.randn(3, 4),)).exported
    for sub in ep.graph_module.modules():
        for n in getattr(sub, "graph", None).nodes if hasattr(sub, "graph") else ():
            n.meta.pop("stack_trace", None)
    exc = AtenExecutorError(_CAPTURE, _hop(ep), "wrap_with_set_grad_enabled")
    add_source(exc, ep)
    once = str(exc)
    add_source(exc, ep)
    assert str(exc) == once and once.count("inside it") == 1
