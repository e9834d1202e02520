"""Round 78 (docs78): what README.md and docs/ promise, tried for real.

Each test is one promise of the docs that the code broke (or a doc line that said otherwise than the code does),
checked as a user would meet it.
"""

from __future__ import annotations

import pytest

import memplan


def test_binding_address_refuses_a_base_whose_allocation_passes_the_64_bit_address_space():
    """README ("Driving your own executor"): ``binding.address(id, arena_base, root_base)`` is the address of a
    tensor. A base of 2**64 gave tensor 'k' (offset 8192) the number 2**64 + 8192, which no pointer holds: passed
    to ctypes or a driver call it wraps around to 8192, another allocation's bytes. A base whose arena (or own
    root) would end past 2**64 is an ExecutorError naming the base now; the highest base that fits is taken."""
    from memplan.errors import ExecutorError
    from memplan.examples import qkv_attention
    from runtime.binding import bind

    g = qkv_attention()
    b = bind(g, memplan.plan(g, streams=3))
    arena = b.arena_bytes[0]
    top = (1 << 64) - arena
    assert b.address("k", [top], {}) == top + b.places["k"].offset < 1 << 64
    for base in (top + 1, 1 << 64, 1 << 70):
        with pytest.raises(ExecutorError, match=rf"arena_base\[0\] = {base} puts device 0's {arena}-byte arena past "
                                                r"the end of the 64-bit address space \(2\*\*64; tensor 'k'\)"):
            b.address("k", [base], {})
    wq = dict(b.own_roots)["wq"]
    assert b.address("wq", [0], {"wq": (1 << 64) - wq}) == (1 << 64) - wq
    with pytest.raises(ExecutorError, match=rf"root_base\['wq'\] = {(1 << 64) - wq + 1} puts root 'wq' \({wq} B\) "
                                            "past the end of the 64-bit address space"):
        b.address("wq", [0], {"wq": (1 << 64) - wq + 1})


@pytest.mark.parametrize("bindings, extra", [(False, "'.[graphs]'"), (True, "'.[cuda]'")])
def test_gpu_tools_name_the_extra_that_lets_them_run(monkeypatch, capsys, bindings, extra):
    """docs/runtime.md: the GPU tools all time CUDA graphs, so they need cuda.bindings beside pycuda (the
    ``graphs`` extra; the ``cuda`` extra is pycuda alone). On a machine with neither, ``python -m
    runtime.tools.profile`` said "needs pycuda and an NVIDIA GPU (pip install -e '.[cuda]')": that install gave
    pycuda and then a second refusal naming '.[graphs]'. With neither, the line names '.[graphs]' now; where
    cuda.bindings is there (torch's CUDA wheels bring it), '.[cuda]' as before."""
    import sys
    import types

    from runtime.tools import profile

    monkeypatch.setitem(sys.modules, "pycuda", None)   # (None in sys.modules: the import fails)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    if bindings:
        cuda, sub, driver = (types.ModuleType(n) for n in ("cuda", "cuda.bindings", "cuda.bindings.driver"))
        cuda.bindings, sub.driver = sub, driver
        for mod in (cuda, sub, driver):
            monkeypatch.setitem(sys.modules, mod.__name__, mod)
    else:
        monkeypatch.setitem(sys.modules, "cuda.bindings", None)
        monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    assert profile.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("profile: error: needs pycuda"), err
    assert f"(pip install -e {extra})" in err, err
