"""Round 77 (cli77): the ``memplan`` command as a hostile user drives it (CPU, in-process).

Each test names what the command did with an input or option nobody had shown it, and what holds now.
"""

from __future__ import annotations

from memplan.cli import main


def test_bench_devices_refuses_more_devices_than_stages_before_planning(monkeypatch, capsys):
    """``memplan bench devices --models tiny --devices 2 40`` printed the table's header and planned the 2-device row,
    then failed at the split over 40 with the library's "devices=40 is more than graph ... can use" (an option spelt as
    no command line writes it); one line naming ``--devices 40`` and the model now, before the header and any plan."""
    from memplan.benchmarks import devices

    def no_plans(*args, **kwargs):
        raise AssertionError("a split was planned before the refusal")

    monkeypatch.setattr(devices, "measure", no_plans)
    assert main(["bench", "devices", "--models", "tiny", "--devices", "2", "40"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("memplan: error: --devices 40: model llama-tiny-decode can be cut into at most 36 ")
