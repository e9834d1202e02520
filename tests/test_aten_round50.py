"""Round 50 (aten50): the runtime's tools' options and the ATen executor against eager on the CPU.

Bugs fixed (each test failed before):
- every runtime tool (``python -m runtime.aten.sweep``, ``runtime.aten.bench``, ``runtime.bench``,
  ``runtime.tools.*``) took an abbreviated option (``--dev cpu`` as ``--device cpu``, ``--lis`` as ``--list``),
  which the ``memplan`` command refuses (round 49): now refused alike, one line naming it, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

TOOLS = ("runtime.aten.sweep", "runtime.aten.bench", "runtime.aten.bench_scatter", "runtime.aten.profile_gap",
         "runtime.bench", "runtime.bench_multi_gpu", "runtime.torch_peer", "runtime.tools.attn_bench",
         "runtime.tools.attn_tune", "runtime.tools.bound", "runtime.tools.compare_launches",
         "runtime.tools.gemm_bench", "runtime.tools.pdl_check", "runtime.tools.profile", "runtime.tools.rule_ab")


class _Parsed(Exception):
    pass


def _parser_of(monkeypatch, tool: str) -> argparse.ArgumentParser:
    """The parser ``tool``'s ``main`` builds, caught at its parse (nothing of the tool runs)."""
    mod = importlib.import_module(tool)
    got: dict = {}

    def grab(self, args=None, namespace=None):
        got["parser"] = self
        raise _Parsed

    with monkeypatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_known_args", grab)
        with pytest.raises(_Parsed):
            mod.main([])
    return got["parser"]


@pytest.mark.parametrize("tool", TOOLS)
def test_runtime_tools_refuse_abbreviated_options(monkeypatch, capsys, tool):
    """Each long option of each tool, cut short by its last letter (a prefix no other option shares): refused as an
    unrecognized argument, one line, exit 2, as ``memplan plan G --str 2`` is; was taken as the option."""
    parser = _parser_of(monkeypatch, tool)
    longs = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert longs, tool
    for option in longs:
        cut = option[:-1]
        if len(cut) < 3 or any(o.startswith(cut) for o in longs if o != option):
            continue
        action = parser._option_string_actions[option]
        argv = [cut] if action.nargs == 0 else [cut, "1"]
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "unrecognized arguments" in err and cut in err, \
            (tool, option, err)
        # the option spelt in full is still taken where its value is (a store_true flag always is)
        if action.nargs == 0:
            assert getattr(parser.parse_args([option]), action.dest) not in (None, False), (tool, option)


def test_the_sweep_refuses_an_abbreviated_list_option(capsys):
    """``python -m runtime.aten.sweep --lis`` printed the model list and exited 0."""
    from runtime.aten import sweep

    with pytest.raises(SystemExit) as info:
        sweep.main(["--lis"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == "" and "unrecognized arguments: --lis" in err, err
