"""Round 76 (export76): torch.export programs that stress the importer and ``runtime.aten``.

- A decomposed program with side effects (``torch._print`` in ``forward``, then ``run_decompositions()``: a
  ``with_effects`` node threading an effect token, a ``TOKEN`` input) was refused by ``runtime.aten.compile``, in
  memory and loaded, as "weight 'token' (None) is in neither the state dict nor the program's constants": the token
  is no weight, and the caller passes none (``ep.module()`` makes it).
"""

from __future__ import annotations

import warnings

from needs import need
from torch_saved import saved_and_loaded

torch = need("torch")

from runtime.aten import compile  # noqa: E402


def _compiled(program, *args):
    """``program`` compiled for the CPU on one stream, arena poisoned."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(program, args, streams=1, cuda_graph=False, poison=True, device="cpu")


class _Effect(torch.nn.Module):
    def forward(self, x):
        y = x * 2
        torch._print("export76")
        return y + 1


def test_a_decomposed_program_with_an_effect_token_compiles_and_runs():
    ep = torch.export.export(_Effect(), (torch.randn(4, 3),)).run_decompositions()
    assert any(s.kind.name == "TOKEN" for s in ep.graph_signature.input_specs)
    x = torch.randn(4, 3)
    for program in (ep, saved_and_loaded(ep)):
        got = _compiled(program, x)(x)
        assert torch.equal(got, x * 2 + 1)
