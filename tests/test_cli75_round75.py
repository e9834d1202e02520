"""Round 75 (cli75): the ``memplan`` command and its files as scripts and CI pipelines use them (CPU, in-process).

Each test names what the command did with an input or option nobody had shown it, and what holds now.
"""

from __future__ import annotations

from memplan.cli import main


def test_bench_devices_refuses_ggml_before_planning(monkeypatch, capsys):
    """``memplan bench devices --solver ggml`` (a choice its ``--help`` lists) printed the table's header, then failed
    at the first split (the default ``--devices 2 4``: ggml plans one serial stream, every split has several), and
    with ``--devices 1 2`` after planning the one-device rows; one line before any plan now, as bench schedule."""
    from memplan.benchmarks import devices

    def no_graphs(name):
        raise AssertionError("a graph was built before the refusal")

    monkeypatch.setattr(devices, "model_graph", no_graphs)
    for argv in (["--solver", "ggml"], ["--devices", "1", "2", "--solver", "ggml"]):
        assert main(["bench", "devices", "--models", "tiny", *argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith("memplan: error: --solver ggml plans one serial stream, and a split over 2 devices")


def test_bench_devices_takes_ggml_on_one_device(capsys):
    """``--devices 1`` alone splits nothing: ggml plans it (the refusal is for splits only)."""
    assert main(["bench", "devices", "--models", "tiny", "--devices", "1", "--solver", "ggml"]) == 0
    out, err = capsys.readouterr()
    assert "llama-tiny-decode" in out and err == ""
