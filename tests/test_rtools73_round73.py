"""Round 73 (rtools73): the runtime's command-line tools and entry points under hostile arguments, on a machine
without a GPU. Each test failed before its fix; all run in-process, on the CPU, in well under a second each."""

from __future__ import annotations

import importlib
import sys
import types

import pytest


def _pycuda_without_device(monkeypatch, *, count: int = 0, init_error: str | None = None) -> None:
    """pycuda that imports, on a machine whose driver finds no device (``CUDA_VISIBLE_DEVICES=``, a host whose
    driver is not loaded): ``cuInit`` raises pycuda's error, or the device count is 0."""
    driver = types.ModuleType("pycuda.driver")

    class RuntimeError_(RuntimeError):   # (pycuda._driver.RuntimeError's shape)
        pass

    def init(flags: int = 0) -> None:
        if init_error:
            raise RuntimeError_(init_error)

    driver.init = init
    driver.Device = type("Device", (), {"count": staticmethod(lambda: count)})
    context = types.ModuleType("pycuda.autoprimaryctx")
    package = types.ModuleType("pycuda")
    package.driver, package.autoprimaryctx = driver, context
    for name, module in (("pycuda", package), ("pycuda.driver", driver), ("pycuda.autoprimaryctx", context)):
        monkeypatch.setitem(sys.modules, name, module)


GPU_TOOLS = [("runtime.bench", ["--configs", "tiny", "--batches", "1", "--out", "o.json"]),
             ("runtime.bench_multi_gpu", ["--configs", "tiny", "--batches", "1", "--out", "o.json"]),
             ("runtime.tools.attn_bench", ["--out", "o.json"]), ("runtime.tools.attn_tune", ["--out", "o.json"]),
             ("runtime.tools.bound", []), ("runtime.tools.gemm_bench", ["--out", "o.json"]),
             ("runtime.tools.pdl_check", []), ("runtime.tools.profile", ["--out", "o.json"]),
             ("runtime.tools.rule_ab", ["--configs", "1b", "--batches", "1"])]


@pytest.mark.parametrize("init_error", ["cuInit failed: no CUDA-capable device is detected", None])
@pytest.mark.parametrize("tool,argv", GPU_TOOLS)
def test_gpu_tools_with_pycuda_but_no_device_say_so_in_one_line(monkeypatch, capsys, tmp_path, tool, argv,
                                                                init_error):
    """pycuda installed, no device its driver can see: the tools checked only that pycuda imports, then ended in
    a traceback from their first context (``GpuStackMissing: runtime: KernelLibrary found no usable CUDA device``,
    or pycuda's own ``cuInit failed`` from ``bench_multi_gpu`` and ``attn_tune``). Now one line, exit 2."""
    from runtime.tool_args import run_main

    monkeypatch.chdir(tmp_path)
    _pycuda_without_device(monkeypatch, init_error=init_error)
    assert run_main(importlib.import_module(tool).main, tool, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error: needs an NVIDIA GPU: pycuda finds no" in err, err
    assert (init_error or "no CUDA device here") in err
    assert not list(tmp_path.iterdir())   # (nothing written)


@pytest.mark.parametrize("argv,says", [
    (["--variants", ""], "--variants '': an empty value"),
    (["--paths", ","], "--paths ',': an empty value"),
    (["--variants", "f32,f32"], "--variants 'f32,f32': repeated value 'f32'"),
    (["--paths", "aten, importer"], "value ' importer' has spaces around it"),
    (["--only", ""], "--only '': an empty value"),
    (["--only", ","], "--only ',': an empty value"),
    (["--only", "resnet18,resnet18"], "repeated value 'resnet18'"),
    (["--only", "resnet18", "--family", "timm"], "--only: unknown models resnet18 (see --list --family timm)"),
    (["--skip", "resnet1"], "--skip: unknown models resnet1 (see --list)"),
    (["--skip", ""], "--skip '': an empty value"),
])
def test_sweep_paths_lists_are_sets_of_known_names(capsys, argv, says):
    """``runtime.aten.sweep_paths`` dropped empty list values: ``--variants ''`` or ``--paths ,`` built every one of
    its 214 models, ran none of them and exited 0 (minutes on a CPU); ``--variants f32,f32`` ran f32 twice; ``--only
    ''`` ran every model; ``--skip`` took a misspelt name and skipped nothing; ``--only ,`` said "unknown models"
    naming none. Each is one line and exit 2 now, before any model is built (``--list`` too)."""
    from needs import need

    need("torch")
    from runtime.aten.sweep_paths import main

    for extra in ([], ["--list"]):
        assert main([*argv, *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("runtime.aten.sweep_paths: error: ") and says in err, err


def test_sweep_paths_still_takes_its_lists(capsys):
    from needs import need

    need("torch")
    from runtime.aten.sweep_paths import main

    assert main(["--only", "resnet18,timm_vit_tiny", "--skip", "timm_vit_tiny", "--variants", "f32,dyn",
                 "--paths", "importer,split", "--list"]) == 0
    assert capsys.readouterr().out == "resnet18  (torchvision)\n"


def test_aten_compile_takes_numpy_integers_for_streams_and_memory_budget():
    """``memplan.plan`` takes any integer to Python (``np.int64``, a 0-d integer array) as the int it equals
    (``named_options``); ``runtime.aten.compile`` refused ``streams=np.int64(2)`` ("streams must be an integer in
    1..1024 or 'auto', not np.int64(2)") and ``memory_budget=np.int64(1 << 20)``. Same plan as with plain ints."""
    from needs import need

    torch = need("torch")
    import numpy as np

    from memplan.errors import BudgetError
    from runtime.aten import compile

    m, x = torch.nn.Linear(4, 4).eval(), torch.randn(2, 4)
    want = compile(m, (x,), streams=2, memory_budget=1 << 20, cuda_graph=False)
    got = compile(m, (x,), streams=np.int64(2), memory_budget=np.array(1 << 20), cuda_graph=False)
    assert got.plan == want.plan
    assert torch.equal(got(x), m(x).detach())
    with pytest.raises(BudgetError, match="memory_budget must be a non-negative byte count"):
        compile(m, (x,), memory_budget=np.float64(1 << 20))   # (a float stays refused, as memplan.plan refuses it)


def test_bench_compile_refuses_trees_with_value_mode(capsys):
    """``python -m runtime.aten.bench_compile --value-mode TREE`` ignored TREE: it measured this process's tree
    (seconds), and read as a measurement of the tree given. Now one line, exit 2, before torch is imported."""
    from runtime.aten.bench_compile import main

    with pytest.raises(SystemExit) as exit_:
        main(["--value-mode", "."])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and err.count("\n") == 1, err
    assert "error: --value-mode measures this tree alone: give no source trees with it (got .)" in err


@pytest.mark.parametrize("argv,says", [
    (["--models", "googlenet-b1", "--compile", "inception_v3-b1"],
     "--compile 'inception_v3-b1': inception_v3-b1 not in --models 'googlenet-b1', so it would not run"),
    (["--models", "googlenet-b1", "--compile", "googlenet-b1,llama-1b-decode"], "llama-1b-decode not in --models"),
])
def test_aten_bench_refuses_a_compile_model_it_would_not_run(capsys, tmp_path, argv, says):
    """``python -m runtime.aten.bench --models googlenet-b1 --compile inception_v3-b1`` ran googlenet without
    torch.compile and said nothing of inception_v3-b1 (torch.compile runs only beside a model's own run): the
    option was taken and ignored. Now one line, exit 2, before any model runs; the default --compile still takes
    only those of its models that run."""
    from needs import need

    need("torch")
    from runtime.aten.bench import main

    out = tmp_path / "o.json"
    assert main(["--device", "cpu", "--quick", *argv, "--out", str(out)]) == 2
    stdout, err = capsys.readouterr()
    assert stdout == "" and err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_compile_per_count_takes_a_numpy_integer_limit():
    """``compile_per_count(m, x, limit=np.int64(2))`` was refused ("limit must be an int of at least 1 ..., got
    np.int64(2)"); an integer to Python is the int it equals, as everywhere else (a float stays refused)."""
    from needs import need

    torch = need("torch")
    import numpy as np

    from runtime.aten import compile_per_count
    from runtime.aten.errors import AtenExecutorError

    m, x = torch.nn.Linear(4, 4).eval(), torch.randn(2, 4)
    c = compile_per_count(m, (x,), limit=np.int64(2), streams=np.int64(1), cuda_graph=False)
    assert torch.equal(c(x), m(x).detach())
    with pytest.raises(AtenExecutorError, match="limit must be an int of at least 1"):
        compile_per_count(m, (x,), limit=np.float64(2.0))


def test_aten_compile_names_a_misspelt_option():
    """``runtime.aten.compile(m, x, stream=2)`` was Python's bare TypeError ("got an unexpected keyword argument"),
    no memplan error and no hint; an option by position ("takes from 1 to 2 positional arguments but 4 were
    given") too. Now memplan's ``OptionError`` (still a TypeError) naming the nearest option, as ``memplan.plan``
    says it, before anything is exported; ``compile_per_count`` passes its options on to the same check."""
    from needs import need

    torch = need("torch")
    from memplan.errors import OptionError
    from runtime.aten import compile, compile_per_count

    m, x = torch.nn.Linear(4, 4).eval(), torch.randn(2, 4)
    with pytest.raises(OptionError, match=r"compile\(\) got an unknown option 'stream' \(did you mean 'streams'\?\)"):
        compile(m, (x,), stream=2)
    with pytest.raises(OptionError, match=r"compile\(\) takes at most 2 \(module, example_inputs\) positional"):
        compile(m, (x,), None, 2)
    with pytest.raises(OptionError, match="did you mean 'cuda_graph'"):
        compile_per_count(m, (x,), cuda_grap=False)
    assert "streams" in str(__import__("inspect").signature(compile))   # (help() still shows compile's own)


@pytest.mark.parametrize("cls", ["runtime.executor.Executor", "runtime.multi_gpu.MultiGpuExecutor"])
def test_pycuda_executors_name_a_misspelt_option(cls):
    """``Executor(g, plan, prefetsh=...)`` / ``pdl=False`` was Python's bare TypeError, no memplan error; now an
    ``OptionError`` (still a TypeError) naming the nearest option, before pycuda is looked for (none here)."""
    from memplan.errors import OptionError

    module, name = cls.rsplit(".", 1)
    executor = getattr(importlib.import_module(module), name)
    with pytest.raises(OptionError, match=rf"{name}\(\) got an unknown option 'prefetsh'.*options: graph, plan"):
        executor(None, None, prefetsh=())
    assert "plan" in str(__import__("inspect").signature(executor))


@pytest.mark.parametrize("argv,says", [(["--config", "8b"], "--config with --read-bandwidth-only"),
                                       (["--batch", "16", "--no-compile"], "--batch, --no-compile with"),
                                       (["--config", "zz"], "--config with --read-bandwidth-only")])
def test_torch_peer_refuses_model_options_with_read_bandwidth_only(capsys, argv, says):
    """``python -m runtime.torch_peer --read-bandwidth-only --config 8b`` (or ``--batch``, ``--steps``, ``--rounds``,
    ``--no-compile``) measured the 4 GiB read alone and ignored the model's options, unchecked (``--config zz``
    ran too): now one line, exit 2, before torch is asked for a GPU."""
    from runtime.torch_peer import main

    assert main(["--read-bandwidth-only", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err and "needs an NVIDIA GPU" not in err, err


@pytest.mark.parametrize("policy", ["fast", None, ["auto"]])
def test_executor_names_a_bad_pdl_policy_first(monkeypatch, policy):
    """``Executor(g, plan, pdl_policy="fast")`` was named only after pycuda was looked for and the plan verified,
    bound and laid out (on a machine without pycuda: "needs pycuda", the typo unsaid). Now first."""
    import memplan
    from memplan.errors import ExecutorError
    from runtime.executor import Executor
    from runtime.models import llama as L

    g = L.build_graph(L.config("tiny", batch=1))
    p = memplan.plan(g)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(ExecutorError, match=r"pdl_policy .*: expected 'auto', 'chain', 'always' or 'off'"):
        Executor(g, p, pdl_policy=policy)
