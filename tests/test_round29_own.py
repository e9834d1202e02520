"""Round 29: the runtime's tools (CPU-side)."""

import pytest


@pytest.mark.parametrize("name, batch", [("8b", 1), ("1b", 16)])
def test_launch_comparison_names_a_dying_output_under_a_live_one_the_same(name, batch):
    """Split over 5 devices, the final add+norm group's plan puts the residual it writes (read by nobody
    outside the group) at the address of ``fa``, the normed output the same launch writes after it; the
    one-GPU plan puts them apart. The launches are the same (the later operand is what readers see), but
    the tool named the dying write ``fa`` in one table and ``(unread)`` in the other and reported a
    difference that was none."""
    from runtime.tools.compare_launches import compare_plans, one_and_split

    _cfg, g, single, split, multi = one_and_split(name, batch, 5, "runtime")
    c = compare_plans(g, single, split.graph, multi)
    assert c.same, c.differing[:2]
    last = [r for r in c.b.rows if r.node == "out_norm_w"][-1]
    assert [w[0] for w in last.writes] == ["(unread)", "fa"]


class _PycudaMemoryError(Exception):   # pycuda's MemoryError is no subclass of Python's
    pass


_PycudaMemoryError.__name__ = "MemoryError"


@pytest.mark.parametrize("exc", [_PycudaMemoryError("cuMemAlloc failed: out of memory"), MemoryError(),
                                 RuntimeError("cuGraphInstantiate failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"),
                                 RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
                                 RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously "
                                              "reported")])
def test_a_tool_out_of_gpu_memory_is_one_line_and_exit_2(exc, capsys):
    """A run out of GPU memory (``--batches 65536`` of the 8B builds a graph and plans it: only the
    allocation fails) ended in a traceback from pycuda after the kernels compiled."""
    from runtime.tool_args import run_main

    def main(argv):
        raise exc

    assert run_main(main, "runtime.bench") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("runtime.bench: error: out of memory"), err


def test_a_tool_bug_still_raises():
    """Only memory exhaustion is mapped: any other failure is a bug and keeps its traceback."""
    from runtime.tool_args import run_main

    def main(argv):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_main(main, "runtime.bench")


def test_every_tool_entry_point_maps_out_of_memory():
    """Each ``python -m`` tool of the runtime runs its ``main`` through ``run_main``."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "runtime"
    mains = [p for p in root.rglob("*.py") if 'if __name__ == "__main__":' in p.read_text()]
    assert len(mains) >= 15
    for p in mains:
        tail = p.read_text().split('if __name__ == "__main__":', 1)[1]
        assert re.search(r"run_main\(main, \"[\w.]+\"\)", tail), p


def test_device_memory_names_the_failed_allocation():
    """``DeviceMemory.alloc`` turns the driver's bare "out of memory" into an error naming the device, the bytes
    and the graph (a ``MemoryError`` still, for callers that catch that)."""
    import types

    from runtime.device_memory import DeviceMemory, DeviceOutOfMemory

    def mem_alloc(n):
        raise _PycudaMemoryError("cuMemAlloc failed: out of memory")

    dm = DeviceMemory.__new__(DeviceMemory)
    dm.cuda = types.SimpleNamespace(mem_alloc=mem_alloc, mem_get_info=lambda: (10, 100))
    dm.graph = types.SimpleNamespace(name="g")
    dm._ctxs, dm._allocs = None, []
    with pytest.raises(DeviceOutOfMemory, match=r"device 0: cannot allocate 123 B for graph 'g' \(10 B free of 100"):
        dm.alloc(123)
    assert issubclass(DeviceOutOfMemory, MemoryError)


@pytest.mark.parametrize("tool, args", [
    ("runtime.bench", ["--rounds", "1000000000000"]),
    ("runtime.bench", ["--steps", "100001"]),
    ("runtime.bench", ["--eager-steps", "10000000"]),
    ("runtime.bench_multi_gpu", ["--rounds", "999999999"]),
    ("runtime.tools.bound", ["--rounds", "10000000000"]),
    ("runtime.tools.pdl_check", ["--replays", "100000000"]),
    ("runtime.tools.rule_ab", ["--steps", "100000000"]),
    ("runtime.torch_peer", ["--rounds", "100000000"]),
    ("runtime.aten.profile_gap", ["--iters", "100000000"]),
])
def test_repeat_counts_have_a_ceiling(tool, args, capsys):
    """A repeat count beyond ``MAX_REPEATS`` (a typo's extra digits; 10**12 rounds ran until killed) is one
    line naming the option, exit 2, before anything runs."""
    import importlib

    from runtime.tool_args import MAX_REPEATS

    main = importlib.import_module(tool).main
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(args))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and args[0] in err and str(MAX_REPEATS) in err.replace("..", " "), err


def test_swapped_graph_and_plan_files_are_named_as_such(tmp_path):
    """``memplan verify PLAN GRAPH`` said only "unknown format 'memplan.plan/1'"; a plan given where a
    graph is expected (and the other way round) now says what it is and asks whether two arguments are
    swapped. Another unknown format gets no such hint."""
    import json

    import memplan
    from memplan.errors import GraphError, PlanFormatError

    b = memplan.GraphBuilder("g")
    b.input("x", 256)
    b.node("a", "UNARY", ["x"], b.output("y", 256))
    g = b.build()
    plan = memplan.plan(g)
    gp, pp = tmp_path / "g.json", tmp_path / "p.json"
    memplan.save_graph(g, gp)
    plan.save(pp)
    with pytest.raises(GraphError, match=r"this is a plan, where a graph is expected: are two file arguments swapped"):
        memplan.load_graph(pp)
    with pytest.raises(PlanFormatError, match=r"this is a graph, where a plan is expected"):
        memplan.load_plan(gp)
    other = tmp_path / "o.json"
    other.write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(GraphError) as e:
        memplan.load_graph(other)
    assert "file arguments" not in str(e.value)


@pytest.mark.parametrize("ins, outs, out_size, words", [
    (["x", "y"], ["z"], 256, "COPY takes 1 input and 1 output, not 2 and 1"),
    (["x"], ["z", "w"], 256, "COPY takes 1 input and 1 output, not 1 and 2"),
    ([], ["z"], 256, "COPY takes 1 input and 1 output, not 0 and 1"),
    (["x"], ["z"], 512, "COPY writes 512 bytes into 'z' from 'x' of 256 bytes"),
])
def test_runtime_refuses_a_copy_node_it_cannot_run(ins, outs, out_size, words):
    """The contract lets a hand-made graph's COPY node have any operands and the verifier accepts it; the
    runtime copies the output's bytes from the first input, so a second input was ignored, a second output
    never written, no input a raw IndexError in ``layout``, a larger output read past its input. Both the
    multi-GPU layout and the registry's node check refuse them naming the node."""
    import memplan
    from runtime.kernels.ops import KernelError, check_node
    from runtime.layout import layout

    b = memplan.GraphBuilder("copies")
    b.input("x", 256)
    b.input("y", 256)
    o = [b.output(t, out_size) for t in outs]
    b.node("c", "COPY", ins, o)
    if not ins:
        b.node("r", "UNARY", ["x", "y"], b.output("r_out", 256))
    g = b.build()
    p = memplan.plan(g)
    with pytest.raises(KernelError, match=words.replace("(", r"\(")):
        layout(g, p)
    with pytest.raises(KernelError, match="node 'c'"):
        check_node(g, [n.id for n in g.nodes].index("c"))


#: a random graph (hypothesis, tests/test_semantic.py) where node n2 reads the 1-byte t2 that n1 writes
_ONE_BYTE_RACE = '{"format":"memplan.graph/1","name":"rand","alignment":64,"tensors":[{"id":"in0","size":1024,"kind":"input"},{"id":"in1","size":449,"kind":"input"},{"id":"w0","size":0,"kind":"weight"},{"id":"v0","size":562,"kind":"intermediate","view_of":"in0","view_offset":462},{"id":"t1","size":577,"kind":"intermediate"},{"id":"t2","size":1,"kind":"intermediate"},{"id":"v3","size":0,"kind":"intermediate","view_of":"in0","view_offset":0},{"id":"v4","size":0,"kind":"intermediate","view_of":"in0","view_offset":1024},{"id":"t5","size":450,"kind":"intermediate"},{"id":"v6","size":0,"kind":"intermediate","view_of":"in0","view_offset":0},{"id":"t7","size":0,"kind":"intermediate"},{"id":"v8","size":0,"kind":"intermediate","view_of":"in0","view_offset":1024},{"id":"t9","size":0,"kind":"intermediate"},{"id":"v10","size":0,"kind":"intermediate","view_of":"in0","view_offset":0},{"id":"t11","size":0,"kind":"intermediate"},{"id":"t12","size":0,"kind":"intermediate"}],"nodes":[{"id":"n0","op":"OP","inputs":["in0"],"outputs":["v0","t1"],"cost":1.0},{"id":"n1","op":"OP","inputs":["in0"],"outputs":["t2"],"cost":1.0,"group":"g0"},{"id":"n2","op":"OP","inputs":["t2"],"outputs":["v4"],"cost":1.0,"inplace":{"v4":"t2"}},{"id":"n3","op":"OP","inputs":["in0"],"outputs":["t5"],"cost":1.0,"inplace":{"t5":"in0"},"group":"g1"},{"id":"n4","op":"OP","inputs":["in0"],"outputs":["t7"],"cost":1.0},{"id":"n5","op":"OP","inputs":["in0"],"outputs":["v8"],"cost":1.0,"inplace":{"v8":"in0"},"group":"g2"},{"id":"n6","op":"OP","inputs":["in1"],"outputs":["t9"],"cost":1.0,"inplace":{"t9":"in1"},"group":"g3"},{"id":"n7","op":"OP","inputs":["in0"],"outputs":["t11"],"cost":1.0,"inplace":{"t11":"in0"},"group":"g4"},{"id":"n8","op":"OP","inputs":["in0"],"outputs":["t12"],"cost":1.0,"group":"g5"}]}'


def test_a_race_on_one_byte_is_seen_whatever_the_junk():
    """``semantic.check`` filled every run's arena with the same junk, so a read before its write of a
    1-byte tensor went unseen when the junk byte there equalled the byte written (1 time in 256: this graph,
    n1 moved off n2's stream with no event between them, from the property test
    ``test_plans_with_an_unordered_observable_read_fail``). Each interleaving now starts from its own junk."""
    import copy
    import json

    import semantic

    import memplan

    g = memplan.graph_from_dict(json.loads(_ONE_BYTE_RACE))
    p = memplan.plan(g, streams=3).to_dict()
    assert semantic.check(g, p) == []
    q = copy.deepcopy(p)
    q["order"][0]["stream"] = (q["order"][0]["stream"] + 1) % 3   # n1 beside n2's stream, no event
    assert [n for n, _ in [(e["node"], e["stream"]) for e in q["order"]][:1]] == ["n1"]
    assert semantic.check(g, q) != []
