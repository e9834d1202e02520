"""Round 74 polish (polish74): small wording and refusal defects the round left.

* ``runtime.aten``: a list setting changed from NaN to -NaN was refused, but the message printed
  ``([nan, 1.0] -> [nan, 1.0])``: no visible change (``settings._nan_signs`` signed a tuple's NaNs, not a list's).
"""

from __future__ import annotations

NAN = float("nan")


def test_a_list_setting_changed_to_minus_nan_shows_the_signs_in_its_refusal() -> None:
    from runtime.aten.python_reads import reads_refusal

    class _Reads:
        def first_changed(self):
            return "cfg.a", [-NAN, 1.0], [NAN, 1.0]

    why = reads_refusal(_Reads())
    assert "([+nan, 1.0] -> [-nan, 1.0])" in why
