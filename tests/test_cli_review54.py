"""Review of round 54's plan-alone checks: ``memplan.show.describe`` (the summary ``memplan show`` prints) from Python
summarised a plan that contradicts itself (a node on stream 3 of 3, a tensor past the arena) that ``memplan show``
refuses; now both refuse it in the same words, and a sound plan is summarised as before."""

from __future__ import annotations

import copy
import json

import pytest
from cli_contract import run_memplan
from test_cli_round54 import EDITS, fanout  # noqa: F401 - the fixture, reused

from memplan.errors import PlanFormatError
from memplan.planfile import plan_from_dict
from memplan.show import describe


@pytest.mark.parametrize("name, edit, words", EDITS, ids=[e[0] for e in EDITS])
def test_describe_refuses_what_show_refuses_in_its_words(fanout, tmp_path, capsys, name, edit, words):  # noqa: F811
    _graph, doc = fanout
    bad = copy.deepcopy(doc)
    edit(bad)
    with pytest.raises(PlanFormatError) as caught:
        describe(plan_from_dict(bad))
    assert all(w in str(caught.value) for w in words), str(caught.value)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(bad))
    code, _out, err = run_memplan(capsys, ["show", path])
    assert code == 2 and str(caught.value).split(": ", 1)[1] in err, err   # (the same words after the source)


def test_describe_of_a_sound_plan_is_what_show_prints(fanout, tmp_path, capsys):  # noqa: F811
    _graph, doc = fanout
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    code, out, err = run_memplan(capsys, ["show", path])
    assert code == 0, err
    assert out == describe(plan_from_dict(doc), encoding="utf-8") + "\n"
