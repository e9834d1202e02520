"""Property: no corruption of a valid graph, plan or CSV file breaks the CLI's contract.

Random corruptions (tests/corrupt.py: byte flips, truncations, JSON values swapped for huge, negative or
wrong-typed ones or for text that is not JSON, deleted keys, duplicated entries, CSV cells) go through
``memplan.cli.main`` in-process with every command that reads the file. Each run must exit 2 with one
line ``memplan: error: ...`` and write nothing, or exit 0 when the corruption happens to be valid; no
input may change. tests/fuzz_cli.py runs the same cases by the thousand.
"""

from __future__ import annotations

import random

import pytest
from corrupt import commands, corrupt_n, make_inputs, run_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(str(tmp_path_factory.mktemp("hostile")))


@settings(max_examples=700, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_corrupted_inputs_keep_the_cli_contract(inputs, seed):
    rnd = random.Random(seed)
    target = rnd.choice(sorted(inputs.files))
    what, data = corrupt_n(inputs.files[target], rnd, csv=target.endswith(".csv"))
    argv = rnd.choice(commands(inputs, target))
    code, problem = run_case(inputs, target, data, argv, timeout=60)
    assert problem is None, f"{target} ({what}): memplan {' '.join(argv)}: {problem}"   # exit 0 or 2, one line
