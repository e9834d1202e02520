"""The warm-up calls before a CUDA-graph capture leave the module tensors a node writes where they stand as they
were: the replay makes the call's one write. Without it a custom op's ``cache.add_(x)`` on a buffer was applied
three times at the first captured call (two warm-ups and the replay): outputs and buffer off eager's. The capture
itself is a CUDA feature, so the CPU test runs the warm-ups with the recording left out (``issuer.capture``
replaced by a no-op); the GPU twin is test_aten_round31_programs' captured custom-op test."""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from test_aten_round31_programs import UpdatesACache  # noqa: E402

from runtime.aten import compile  # noqa: E402


@pytest.mark.parametrize("streams", [1, 3])
def test_warm_ups_leave_a_buffer_written_where_it_stands_as_it_was(streams):
    m = UpdatesACache()
    g = torch.Generator().manual_seed(7)
    x, cache = torch.randn(3, generator=g), torch.randn(3, generator=g)
    step = compile(m, (x, cache), streams=streams, poison=True)
    ex = step.executor
    assert [w is m.c for w in ex._written_where_they_stand()] == [True]
    before = m.c.clone()
    ex.load_inputs([x, cache.clone()])
    ex.issuer.capture = lambda: None   # records nothing on the CPU
    ex._capture([x, cache.clone()])
    assert torch.equal(m.c, before)    # was before + 2 x: both warm-ups' add_
