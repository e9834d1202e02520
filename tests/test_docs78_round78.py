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


def test_csv_workers_at_an_alignment_cpsat_runs_one_thread_is_warned_of(tmp_path, capsys):
    """docs/format.md: "A run never silently ignores an option it was given"; CP-SAT runs one thread above an
    alignment of 2**30 B. Since round 77 a minimalloc CSV may give an ``alignment`` column, and ``memplan csv
    --solver cpsat --workers 2`` of rows aligned to 2**31 ran one thread without a word (``plan`` warned). The
    library's ``UnusedOption`` (``solve_table``) and the command's warning line say so now; at 2**30 nothing."""
    import warnings

    from memplan.cli import main
    from memplan.errors import UnusedOption
    from memplan.io.minimalloc import read_csv, solve_table
    from memplan.solvers import SolveOptions

    for alignment, warned in ((1 << 31, True), (1 << 30, False)):
        path = tmp_path / f"a{alignment}.csv"
        path.write_text(f"id,lower,upper,size,alignment\n0,0,2,3,{alignment}\n1,1,3,3,{alignment}\n")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sol = solve_table(read_csv(str(path)), solver="cpsat", options=SolveOptions(time_limit=1, workers=3))
        assert sol.arena == alignment + 3
        said = [str(w.message) for w in caught if issubclass(w.category, UnusedOption)]
        assert said == ([f"workers=3 has no effect on a CSV problem of alignment {alignment}: CP-SAT runs one thread "
                         "at an alignment above 2**30 B (several gave false optima there); ignored"] if warned else [])
        assert main(["csv", str(path), "-o", str(tmp_path / "out.csv"), "--solver", "cpsat", "--time-limit", "1",
                     "--workers", "2", "-q"]) == 0
        err = capsys.readouterr().err
        assert (f"memplan: warning: --workers 2 has no effect on a CSV problem of alignment {alignment}" in err) == warned, err


def test_verify_and_show_warn_of_a_gap_of_zero_the_numbers_do_not_support(tmp_path, capsys):
    """docs/format.md: the solver block's ``gap`` is 0.0 only where the arena meets the bound, and ``show`` /
    ``verify`` warn of a claim the plan's numbers do not support. A Q/K/V plan edited to arena 10496 over its bound
    10240, ``FEASIBLE`` with ``gap`` 0.0 (read by a tool as an arena at its bound), was shown and verified without a
    word (only an ``OPTIMAL`` status was checked). Both warn now; the plan as planned (gap 0.0 at its bound) and an
    honest gap do not."""
    import json

    from memplan.cli import main
    from memplan.examples import qkv_attention
    from memplan.show import solver_claim_warnings

    g = qkv_attention()
    graph = tmp_path / "qkv.json"
    memplan.save_graph(g, str(graph))
    doc = json.loads(memplan.plan(g, streams=3).to_json())
    assert doc["solver"]["gap"] == 0.0 and solver_claim_warnings(memplan.plan_from_dict(doc)) == []
    doc["arena_bytes"] += 256
    for gap, warned in ((0.0, True), (0, True), (0.0244, False)):
        doc["solver"] = {"name": "size", "status": "FEASIBLE", "gap": gap}
        said = solver_claim_warnings(memplan.plan_from_dict(doc))
        assert said == ([f"the solver block claims gap {gap} but arena_bytes 10496 is not lower_bound_bytes 10240 and "
                         "no proven bound equals it (an edited plan?): a gap of 0 says the arena meets its bound, "
                         "unsupported"] if warned else []), said
        path = tmp_path / "p.json"
        path.write_text(json.dumps(doc))
        claim = f"claims gap {gap} but arena_bytes 10496"
        assert main(["verify", str(graph), str(path)]) == 0
        assert (claim in capsys.readouterr().err) == warned   # (verify: a warning line on stderr)
        assert main(["show", str(path)]) == 0
        assert (claim in capsys.readouterr().out) == warned   # (show: a warning row of its report)
    doc["solver"] = {"name": "search", "status": "FEASIBLE", "gap": 0.0, "bound": 10496}   # (a proven bound there)
    assert solver_claim_warnings(memplan.plan_from_dict(doc)) == []
