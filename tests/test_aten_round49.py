"""Round 49 (aten49): the ATen executor and the torch importer against eager on the CPU, and across threads.

Bugs fixed (each test failed before):
- the importer listed a program's effect ops (``torch._assert_async``, a custom check returning nothing) in torch's
  process-wide ``torch.fx.node._side_effectful_functions`` for a decomposition and removed them after: a second
  thread's decomposition of a program with the same op found it listed by the first, and lost it when the first
  finished, so its check was dropped and its import refused. Now counted under a lock (``_listed_as_effects``).
"""

from __future__ import annotations

import threading

from needs import need

torch = need("torch")

from torch import nn  # noqa: E402

from memplan.errors import GraphError  # noqa: E402


class _Asserts(nn.Module):
    def forward(self, x):
        torch._assert_async((x > 0).all())
        return x * 2


def test_two_threads_decomposing_keep_each_others_effect_ops_listed():
    """Thread A lists ``_assert_async`` and decomposes; B enters its decomposition (finding it listed), A finishes,
    then B's decomposition runs: before, A's exit had removed the op and B's lost its check (a GraphError)."""
    from memplan.importers import torch as imp

    op = torch.ops.aten._assert_async.default
    listed = torch.fx.node._side_effectful_functions
    assert op not in listed
    ep = torch.export.export(_Asserts(), (torch.ones(3),))
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def decompose_a():
        a_in.set()
        assert b_in.wait(10)
        return ep.run_decompositions({})

    def decompose_b():
        b_in.set()
        assert a_done.wait(10)
        results["b listed"] = op in listed
        return ep.run_decompositions({})

    def run(name, decompose, first=None):
        if first is not None:
            assert first.wait(10)
        try:
            results[name] = imp._decomposed(torch, ep, decompose)
        except (GraphError, AssertionError) as exc:
            results[name] = exc
        if name == "a":
            a_done.set()

    threads = [threading.Thread(target=run, args=("a", decompose_a)),
               threading.Thread(target=run, args=("b", decompose_b, a_in))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["b listed"] is True
    for name in "ab":
        out = results[name]
        assert not isinstance(out, Exception), out
        assert any(n.target is op for n in out.graph.nodes)
    assert op not in listed   # put back after the last one
