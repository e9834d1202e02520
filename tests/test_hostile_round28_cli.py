"""Hostile round 28, the command line: option values and files that earlier rounds did not try."""

from __future__ import annotations

import pytest
from cli_contract import assert_bad_input, run_memplan

from memplan.examples import chain
from memplan.io import save_graph

#: exponents past what ``decimal`` reads (about 10**18): ``--memory-budget 1e99999999999999999999`` was an
#: ``InvalidOperation`` traceback from the byte-count parser, not a usage error
HUGE_EXPONENTS = ["1e99999999999999999999", "1.0e99999999999999999999", "1e99999999999999999999K",
                  "2.5E+1000000000000000000000000000000M"]
TINY_EXPONENTS = ["1e-99999999999999999999", "1.5e-99999999999999999999", "1e-99999999999999999999T"]


@pytest.mark.parametrize("value", HUGE_EXPONENTS + ["-1e99999999999999999999", "-1e-99999999999999999999"])
def test_a_byte_count_with_an_exponent_past_decimals_range_is_a_usage_error(tmp_path, capsys, value):
    g = tmp_path / "g.json"
    save_graph(chain(), str(g))
    for option in ("--memory-budget", "--device-capacity"):
        code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "p.json", f"{option}={value}"])
        assert_bad_input(code, err, option, value)
        assert ("negative" in err) == value.startswith("-"), err
    (tmp_path / "c.csv").write_text("id,lower,upper,size\na,0,1,8\n")
    code, _, err = run_memplan(capsys, ["csv", tmp_path / "c.csv", "-o", tmp_path / "o.csv", f"--capacity={value}"])
    assert_bad_input(code, err, "--capacity", value)
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("value", TINY_EXPONENTS)
def test_a_byte_count_below_one_byte_by_any_exponent_is_no_whole_number_of_bytes(value):
    import argparse

    from memplan.argtypes import size

    with pytest.raises(argparse.ArgumentTypeError, match="not a whole number of bytes"):   # (round 49: was 0)
        size(value)
    assert size("0e99999999999999999999") == 0
    # within decimal's range: exact, and whole (1.5 was rounded down to 1 before round 49)
    assert size("1.5K") == 1536 and size("9007199254740993.0") == 9007199254740993
    assert size("9.223372036854775807e18") == 2 ** 63 - 1


@pytest.mark.parametrize(("first", "second"), [("--time-limit", "5"), ("--memory-budget", "2G"),
                                               ("--streams", "2"), ("--event-us", "1e1")])
def test_an_option_given_twice_is_quoted_as_typed(tmp_path, capsys, first, second):
    """The second value was quoted as parsed: ``--time-limit 5`` as "5.0", ``--memory-budget 2G`` as
    "2147483648", not as the user typed it."""
    g = tmp_path / "g.json"
    save_graph(chain(), str(g))
    code, _, err = run_memplan(capsys, ["plan", g, "-o", tmp_path / "p.json", first, second, first, second])
    assert_bad_input(code, err, first, f"the second time as {first} {second})")
