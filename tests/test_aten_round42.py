"""Round 42: ATen executor defects found by attacking it on the CPU (``cuda_graph=False``).

Bugs fixed (each test marked "failed before" did):
- ``exact._cudnn_conv`` passed cuDNN's legacy ``torch.backends.cudnn.allow_tf32`` to ``cudnn_convolution``: that
  getter raises where convolutions and RNNs were given different float32 precisions (torch 2.9's API,
  ``torch.backends.cudnn.conv.fp32_precision = "ieee"`` beside RNNs' "tf32"), so lowering any CUDA convolution
  under that state was a raw RuntimeError; now the convolutions' own precision, what eager's convolution reads.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")


from runtime.aten import ambient, compile, exact  # noqa: E402


def _compile(m, *inputs, **kw):
    return compile(m, inputs, cuda_graph=False, **kw)


@pytest.fixture
def settings_kept():
    """Every process setting the tests touch put back after, whatever a test (or a bug) left."""
    saved = ambient.process_settings(torch)
    yield saved
    ambient.restore_process_settings(torch, saved)


@pytest.mark.skipif(not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"),
                    reason="torch before 2.9 has no per-op float32 precision")
@pytest.mark.parametrize("conv, rnn", [("ieee", "tf32"), ("tf32", "ieee")])
def test_cudnn_conv_reads_the_convolutions_own_tf32_precision(settings_kept, monkeypatch, conv, rnn):
    """Failed before (RuntimeError "mix of the legacy and new APIs"): under conv and RNN precisions that differ,
    the lowering of a cuDNN convolution read the legacy getter, which raises. Eager's convolution passes
    ``allowTF32CuDNN(CONV)``: TF32 exactly where the convolutions' precision is "tf32". The backend choice is
    stubbed to cuDNN (no GPU here); the lowering is built, not run."""
    torch.backends.cudnn.conv.fp32_precision = conv
    torch.backends.cudnn.rnn.fp32_precision = rnn
    with pytest.raises(RuntimeError):   # (the state this test is about)
        _ = torch.backends.cudnn.allow_tf32
    monkeypatch.setattr(torch._C, "_select_conv_backend", lambda *a: torch._C._ConvBackend.Cudnn)
    x, w = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3)
    out = torch.empty(1, 3, 3, 3)
    kind, run, copies = exact._cudnn_conv(torch, {"input": x, "weight": w}, out)
    assert (kind, copies) == ("exact", 0)
    assert run.func is torch.ops.aten.cudnn_convolution.out
    assert run.args[-1] is (conv == "tf32")   # allow_tf32, after benchmark and deterministic
