"""Review round 33a: ``runtime.bits.same_tensor_bits`` on tensors that are not plain strided ones.

Round 33 viewed every tensor's elements as unsigned integers: a quantized tensor (``torch.quantize_per_tensor``,
a quantized model's output before its dequant) crashed the whole process with a segmentation fault (the sweep,
an ATen bench: every later model's result lost), where ``torch.equal`` before compared it; a sparse one raised
torch's raw "unsupported memory format option Contiguous".
"""

from __future__ import annotations

import subprocess
import sys

from needs import need

torch = need("torch")

from runtime.bits import same_tensor_bits  # noqa: E402


def test_quantized_tensors_compare_without_crashing_the_process():
    code = ("import warnings; warnings.simplefilter('ignore'); import torch; from runtime.bits import same_tensor_bits;"
            "t = torch.quantize_per_tensor(torch.tensor([0.5, -1.0, 2.0]), 0.1, 0, torch.qint8);"
            "print(same_tensor_bits(t, t.clone()))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.strip() == "True"


def test_quantized_tensors_differ_by_values_or_parameters():
    x = torch.tensor([0.5, -1.0, 2.0])
    t = torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)
    assert not same_tensor_bits(t, torch.quantize_per_tensor(x, 0.2, 0, torch.qint8))
    assert not same_tensor_bits(t, torch.quantize_per_tensor(x * 2, 0.1, 0, torch.qint8))
    c = torch.quantize_per_channel(torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), 0, torch.quint8)
    assert same_tensor_bits(c, c.clone())
    assert not same_tensor_bits(c, torch.quantize_per_channel(c.dequantize(), torch.tensor([0.1, 0.3]),
                                                              torch.tensor([0, 1]), 0, torch.quint8))


def test_sparse_tensors_compare_their_elements():
    a = torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]).to_sparse()
    assert same_tensor_bits(a, a.clone())
    assert not same_tensor_bits(a, torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse())
