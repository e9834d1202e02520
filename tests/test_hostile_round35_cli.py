"""Round 35 (hostile): the CLI's counts of graph families counted in units of several nodes."""

from __future__ import annotations

import pytest

from memplan.argtypes import MAX_NODES
from memplan.cli import build_parser


@pytest.mark.parametrize("option,per,unit", [("--transformer", 20, "layers"), ("--moe-blocks", 770, "blocks"),
                                             ("--chains", 10, "chains"), ("--experts", 4, "experts")])
def test_bench_scale_caps_a_count_of_units_at_the_node_limit(capsys, option, per, unit):
    """``bench scale --transformer L`` counts 20-node layers, but was held to ``MAX_NODES`` layers: 9,999,999 (200
    million nodes) began building, and 100,000,000 was refused as "more than 10000000 nodes"."""
    top = MAX_NODES // per
    assert build_parser().parse_args(["bench", "scale", option, str(top)]) is not None
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["bench", "scale", option, str(top + 1)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{top + 1} {unit} is more than {top} {unit} ({per} nodes each" in err[0]
