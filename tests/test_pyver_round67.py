"""Round 67 (pyver67): what runs without an optional package says what to install.

A pycuda executor's ``capture`` (and the runtime tools' timing graphs) goes through ``cuda.bindings`` (pycuda has
no graph API), which the ``cuda`` extra does not bring: without cuda-python it was a bare ``No module named 'cuda'``
from inside ``runtime.cuda_util``; now ``GpuStackMissing`` (an ImportError) names cuda-python, before anything is
issued. Round 68: it names the ``graphs`` extra (cuda-bindings 12.x: "pip install cuda-python" gave 13.x, which needs
an R580 driver).
"""

from __future__ import annotations

import sys

import pytest

from runtime import cuda_util


@pytest.mark.parametrize("call", ["capture_graph", "launch_graph", "destroy_graph", "check"])
def test_graph_helpers_without_cuda_bindings_name_what_to_install(monkeypatch, call):
    for name in ("cuda", "cuda.bindings", "cuda.bindings.driver"):
        monkeypatch.setitem(sys.modules, name, None)   # import raises ImportError, as where it is not installed
    issued = []
    args = {"capture_graph": (object(), lambda: issued.append(1)), "launch_graph": (object(), object()),
            "destroy_graph": (object(), object()), "check": ((0, None), "cuInit")}[call]
    with pytest.raises(cuda_util.GpuStackMissing, match=r"needs cuda\.bindings .*pip install -e '\.\[graphs\]'"):
        getattr(cuda_util, call)(*args)
    assert issued == []
