"""Round 67: a saved guard may call ``max`` / ``min`` of two or more plain values, and nothing more of them.

torch 2.11 (the GPU machine's) writes guards such as ``max(1, 6*(L['x'].size()[0] // L['n'])) == 6`` for a dynamic
program; ``untrusted._guard_text_refusal`` refused them ("it names 'max'"), so such a program could not be imported
or specialized there (``test_export_round46``'s ranges, ``test_torch_round39``'s symbolic int inputs on 2.11).
Guards are run by ``ExportedProgram.module()`` with the builtins in reach, so the call is let through only in the
shape torch writes: two or more positional arguments, each itself a guard expression; one iterable argument (a
``max(range(10**18))`` runs for ever), keywords (``key=``), starred arguments and the bare name stay refused.
"""

from __future__ import annotations

import pytest
from needs import need

torch = need("torch")

from memplan.importers.torch.untrusted import _guard_text_refusal  # noqa: E402


@pytest.mark.parametrize("text", [
    "max(1, 6*(L['x'].size()[0] // L['n'])) == 6",
    "min(L['x'].size()[0], 8) >= 2",
    "max(1, 2, L['x'].size()[1]) * 3 == 6",
    "max(min(L['x'].size()[0], 4), 1) == 4",
])
def test_a_guard_of_max_or_min_of_values_is_accepted(text):
    assert _guard_text_refusal(torch, text) is None


@pytest.mark.parametrize("text,why", [
    ("max(L['x'].shape) == 4", "two or more plain values"),
    ("max(range(10**18)) == 4", "two or more plain values"),
    ("max(1, 2, key=abs) == 2", "two or more plain values"),
    ("max(*L['x'].shape, 1) == 4", "two or more plain values"),
    ("max == max", "it names 'max'"),
    ("max(1, __import__('os').system('true')) == 1", "__import__"),
    ("max(1, 2) * 'a' == 'aa'", "repeats"),
    ("abs(-1) == 1", "it names 'abs'"),
])
def test_other_uses_of_max_and_min_stay_refused(text, why):
    refusal = _guard_text_refusal(torch, text)
    assert refusal is not None and why in refusal, refusal
