"""Session 68's lead fixes found by the GPU suite.

- An installed package is told from the user's own code by its distribution's ``RECORD`` too, not only by a
  ``site-packages`` path: the GPU machine's transformers, installed with ``pip install --target DIR`` on
  ``PYTHONPATH``, counted as the user's code, so every tiny Llama's ``is_compiling()`` reads were compared with eager
  at compile (``TracingFlagWarning`` on a model whose GPU outputs agreed within rounding; a refusal where rounding
  exceeds the tolerance) and its configs walked by the per-call watch (``runtime/aten/installed.py``).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from needs import need

torch = need("torch")

from runtime.aten.installed import installed_file  # noqa: E402

_MODULE = textwrap.dedent('''
    import torch


    class Branchy(torch.nn.Module):
        def forward(self, x):
            if torch.compiler.is_compiling():
                return x * 2
            return x * 3
''')


def _package(root, name: str, recorded: bool):
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(_MODULE)
    if recorded:   # what `pip install --target root` leaves beside the package
        info = root / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "RECORD").write_text(f"{name}/__init__.py,,\n{name}/model.py,sha256=x,10\n{info.name}/RECORD,,\n")
    return pkg / "model.py"


def test_a_package_installed_with_target_is_installed_and_a_plain_folder_is_not(tmp_path):
    assert installed_file(str(_package(tmp_path / "target", "tgtpkg", recorded=True)))
    assert not installed_file(str(_package(tmp_path / "plain", "plainpkg", recorded=False)))
    assert installed_file("/usr/lib/python3/dist-packages/x/y.py")
    assert not installed_file("<stdin>") and not installed_file("")


@pytest.mark.parametrize("recorded", [True, False])
def test_a_tracing_flag_read_in_a_target_installed_package_is_not_compared(tmp_path, monkeypatch, recorded):
    """Installed (a RECORD beside it), a model library's (transformers', standing in ``installed.LIBRARIES``):
    compiled as transformers' reads are, no comparison. The same code in a plain folder on the path is the user's:
    compared, and its export-only branch refused. (Round 69: an installed package defining the compiled class is
    the user's unless it is such a library: ``tests/test_aten_round69.py``.)"""
    from runtime.aten import installed

    name = f"flagpkg_{'rec' if recorded else 'plain'}"
    monkeypatch.setattr(installed, "LIBRARIES", installed.LIBRARIES | {name})
    _package(tmp_path, name, recorded)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    mod = importlib.import_module(f"{name}.model")
    from runtime.aten import compile, flag_reads
    from runtime.aten.errors import AtenExecutorError

    compared = []
    real = flag_reads._both
    monkeypatch.setattr(flag_reads, "_both", lambda *a, **k: compared.append(1) or real(*a, **k))
    x = torch.ones(3)
    try:
        if recorded:
            compile(mod.Branchy(), (x,), streams=1, cuda_graph=False, device="cpu")
            assert compared == []
        else:
            with pytest.raises(AtenExecutorError, match="is_compiling"):
                compile(mod.Branchy(), (x,), streams=1, cuda_graph=False, device="cpu")
            assert compared == [1]
    finally:
        sys.modules.pop(f"{name}.model", None)
        sys.modules.pop(name, None)


_STRICT_AFTER_COND = textwrap.dedent('''
    import torch
    from torch import nn
    from runtime.aten import compile


    class Branches(nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda a: a.abs() + 1, lambda a: a.abs() - 1, (x,))


    class Asks(nn.Module):
        def forward(self, x):
            return x + 1 if torch.compiler.is_compiling() else x - 1


    compile(Branches(), (torch.randn(3, 4),), streams=1, cuda_graph=False, device="cpu")
    ep = torch.export.export(Asks(), (torch.randn(3),), strict=True)
    print("strict export ok", len(list(ep.graph.nodes)))
''')


def test_a_strict_export_after_compiling_a_torch_cond_still_folds_the_tracing_flags(tmp_path):
    """In a fresh process (Dynamo not yet imported): ``torch.cond`` runs Dynamo inside compile's watched export, while
    the tracing flags are ``flag_reads``' wrappers; Dynamo's once-a-process ``tracing_state_functions`` was keyed by
    them, so every later strict export asking ``torch.compiler.is_compiling()`` failed ("torch.* op returned
    non-Tensor": a tiny Mistral's, in CI). The tables built during a watched export are dropped after it."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", _STRICT_AFTER_COND], capture_output=True, text=True, timeout=600,
                         env=env)
    assert run.returncode == 0 and "strict export ok" in run.stdout, run.stderr[-2000:]
