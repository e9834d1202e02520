"""The GPU runtime's refusals of a caller's input are memplan's own errors (``memplan.errors.ExecutorError``,
``KernelError``: both ``MemplanError``), as the planner's are: one ``except MemplanError`` catches what the library
says of bad input, and each still is the ``ValueError`` it was. Everything here runs on the CPU."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import memplan
from memplan.errors import ExecutorError, MemplanError
from runtime import binding
from runtime.emulate import emulate
from runtime.kernels import registry
from runtime.kernels.ops import KernelError
from runtime.models import llama
from runtime.step import plan_step

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: the runtime's modules that take a caller's input (the tools' own command lines have ``ToolArgError``)
CALLER_FACING = ("binding", "cuda_core", "device_memory", "emulate", "executor", "kernels/registry", "layout",
                 "models/llama", "multi_gpu", "step")


@pytest.mark.parametrize("module", CALLER_FACING)
def test_no_caller_facing_runtime_module_raises_a_bare_value_error(module):
    tree = ast.parse((ROOT / "runtime" / f"{module}.py").read_text())
    bare = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
            and isinstance(n.exc.func, ast.Name) and n.exc.func.id in ("ValueError", "TypeError")]
    assert not bare, f"runtime/{module}.py raises a bare ValueError/TypeError at lines {bare}"


def _tiny():
    cfg = llama.config("tiny")
    g = llama.build_graph(cfg)
    return cfg, g, memplan.plan(g)


def test_a_bad_config_name_option_batch_and_input_are_memplan_errors_naming_them():
    with pytest.raises(ExecutorError, match="unknown llama config 'huge'") as e:
        llama.config("huge")
    assert isinstance(e.value, MemplanError) and isinstance(e.value, ValueError)
    cfg, g, p = _tiny()
    with pytest.raises(ExecutorError, match="num_sms 0"):
        registry.launches_for(g, lambda t: 0, num_sms=0)
    with pytest.raises(ExecutorError, match="plan_step: batch 0"):
        plan_step(g, batch=0)
    with pytest.raises(ExecutorError, match="emulate: graph must be a Graph"):
        emulate(None, p, {}, {})
    b = binding.bind(g, p)
    tid = b.inputs[0]
    want = binding.INPUT_DTYPES[g.tensor(tid).attrs.get("dtype", "f32")]
    wrong = np.int16 if want != np.int16 else np.float32
    with pytest.raises(ExecutorError, match=rf"input {tid!r}: int16 given|input {tid!r}: float32 given"):
        binding.host_input(g, b, tid, np.zeros(g.tensor(tid).size // np.dtype(wrong).itemsize, wrong))
    with pytest.raises(ExecutorError, match="input 'nope': not an input tensor"):
        binding.host_input(g, b, "nope", np.zeros(1, np.float32))


def test_a_node_the_registry_has_no_kernel_for_is_a_memplan_error():
    assert issubclass(KernelError, MemplanError) and issubclass(KernelError, ValueError)
    g = memplan.graph_from_dict({"format": "memplan.graph/1", "name": "g", "tensors": [
        {"id": "x", "size": 64, "kind": "input", "attrs": {"dtype": "f32"}},
        {"id": "y", "size": 64, "kind": "output", "attrs": {"dtype": "f32"}}],
        "nodes": [{"id": "n", "op": "NO_SUCH_OP", "inputs": ["x"], "outputs": ["y"]}]})
    with pytest.raises(KernelError, match="'n'"):
        registry.launches_for(g, lambda t: 0)
