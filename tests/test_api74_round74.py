"""Round 74, api74: the Python API used the way integrating programs use a library (reprs, copies, threads, paths)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import memplan
from memplan.errors import GraphError, OptionError, ScheduleError, SolverError
from memplan.examples import chain, qkv_attention, views_inplace
from memplan.lifetimes import buffer_problem


def test_repr_of_a_large_graph_and_its_plans_is_bounded() -> None:
    """Failed before: the generated dataclass ``repr`` spelt out every field, so ``repr(graph)`` of a 20,000-node
    chain was 4.2 MB and that of its ``Planned`` 4.9 MB (a debugger's variable view or a test failure printing one
    stalled); each is now at most a few entries per tuple, the rest counted."""
    g = chain(3000)
    p = memplan.plan(g)
    planned = memplan.plan_graph(g)
    split, split_plan = memplan.plan_devices(g, 2)
    schedule = memplan.serial_schedule(g)
    problem = buffer_problem(g, memplan.build_happens_before(g, schedule))
    for obj in (g, p, planned, split, split_plan, schedule, problem, memplan.simulate(g, p)):
        text = repr(obj)
        assert len(text) < 20_000, (type(obj).__name__, len(text))
        assert text.startswith(type(obj).__name__ + "(")
    assert "...<2969 more>" in repr(g)   # 3001 tensors, 32 shown
    assert "...<2968 more>" in repr(p)   # 3000 order entries, 32 shown


def test_repr_of_a_small_value_is_the_dataclass_repr() -> None:
    """The bound changes nothing within it: a small graph, plan and tensor print as the generated repr printed."""
    t = memplan.Tensor("x", 5, attrs={"a": [1, (2,), {"b": "c"}]})
    assert repr(t) == ("Tensor(id='x', size=5, kind='intermediate', view_of=None, view_offset=0, "
                       "attrs={'a': [1, (2,), {'b': 'c'}]})")
    g = qkv_attention()
    assert repr(g) == (f"Graph(name={g.name!r}, tensors={g.tensors!r}, nodes={g.nodes!r}, alignment={g.alignment!r})")
    s = memplan.Schedule(order=("a",), streams=(0,))
    assert repr(s) == "Schedule(order=('a',), streams=(0,), events=())"
    long_id = "t" * 1000
    assert len(repr(memplan.Tensor(long_id, 5))) < 400


def test_numpy_bools_are_taken_for_flags() -> None:
    """Failed before: a flag computed with numpy (``np.True_``, a 0-d bool array) was refused by every entry point
    ("fused_groups must be True or False, not np.True_"), which take numpy integers as the ints they equal; each now
    plans, verifies and writes as with the Python bool. An integer option still names a numpy bool as given."""
    g = views_inplace()
    p = memplan.plan(g, streams=2, fused_groups=True)
    assert memplan.plan(g, streams=2, fused_groups=np.True_).to_json() == p.to_json()
    assert memplan.plan(g, streams=2, fused_groups=np.array(True)).to_json() == p.to_json()
    assert memplan.plan(g, check=np.False_).to_json() == memplan.plan(g).to_json()
    memplan.verify(g, p, fused_groups=np.True_)
    tid = g.tensors[2].id
    assert memplan.reuse_after(g, p, tid, fused_groups=np.True_) == memplan.reuse_after(g, p, tid, fused_groups=True)
    assert memplan.ReuseIndex(g, p, fused_groups=np.True_).after(tid) == memplan.reuse_after(g, p, tid, fused_groups=True)
    assert p.to_json(timings=np.False_) == p.to_json()
    assert type(memplan.CostModel(use_graph_costs=np.False_).use_graph_costs) is bool
    with pytest.raises(ScheduleError, match=r"not np\.True_"):
        memplan.plan(g, streams=np.True_)
    with pytest.raises(SolverError, match="fused_groups must be True or False"):
        memplan.plan(g, fused_groups=1)


class _CaseBlind(str):
    """An id class whose ``==`` and ``hash`` ignore case (a caller's own str subclass)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


def test_ids_of_a_str_subclass_are_looked_up_by_their_characters() -> None:
    """Failed before: ``reuse_after(g, p, CaseBlind("XN"))`` (and ``reuse_table``, ``ReuseIndex.after``,
    ``Graph.tensor``, ``Graph.node``) answered for the graph's tensor "xn", a tensor of another name, through the
    subclass's own ``==`` and ``hash``, where ``schedule_with_events`` and the graph's own checks read ids by their
    characters; each now refuses the id the graph lacks, and a numpy string is answered under its plain str."""
    g = qkv_attention()
    p = memplan.plan(g, streams=3)
    for call in (lambda: memplan.reuse_after(g, p, _CaseBlind("XN")),
                 lambda: memplan.reuse_table(g, p, [_CaseBlind("XN")]),
                 lambda: memplan.ReuseIndex(g, p).after(_CaseBlind("XN"))):
        with pytest.raises(ScheduleError, match="has no tensor 'XN'"):
            call()
    with pytest.raises(GraphError, match="unknown tensor 'XN'"):
        g.tensor(_CaseBlind("XN"))
    with pytest.raises(GraphError, match="unknown node 'NORM'"):
        g.node(_CaseBlind("NORM"))
    assert g.tensor(_CaseBlind("xn")).id == "xn"
    r = memplan.reuse_after(g, p, np.str_("xn"))
    assert type(r.tensor) is str and r == memplan.reuse_after(g, p, "xn")
    assert [type(k) for k in memplan.reuse_table(g, p, np.array(["xn", "q"]))] == [str, str]


def test_from_torch_takes_numpy_bools_for_its_flags() -> None:
    """Failed before: ``from_torch(m, (x,), decompose=np.False_)`` was refused ("decompose must be True or False, not
    np.False_") where ``import_onnx`` and the planner's entry points take a numpy bool for a flag."""
    torch = pytest.importorskip("torch")
    m = torch.nn.ReLU()
    x = torch.ones(4, 8)
    want = memplan.from_torch(m, (x,)).to_dict()
    assert memplan.from_torch(m, (x,), strict=np.False_, decompose=np.False_,
                              check_custom_ops=np.True_).to_dict() == want


@pytest.mark.parametrize("n", [2.0, 10**30, "x", None])
def test_plan_devices_names_a_bad_device_count_before_reading_it(n) -> None:
    """Failed before: ``plan_devices(g, 2.0, device_capacity=N)`` was a raw TypeError ("can't multiply sequence by
    non-int of type 'float'"), ``n=10**30`` a raw OverflowError and ``n="x"`` with ``solver="ggml"`` a raw
    TypeError: the capacities and the ggml check read ``n`` before the split checked it."""
    with pytest.raises(ScheduleError, match="devices must be an integer in 1..1024"):
        memplan.plan_devices(qkv_attention(), n, device_capacity=10**9)
    with pytest.raises(ScheduleError, match="devices must be an integer in 1..1024"):
        memplan.plan_devices(qkv_attention(), n, solver="ggml")


def test_an_array_for_streams_is_named_by_plan_devices_and_split_devices() -> None:
    """Failed before: ``plan_devices(g, 2, streams=np.array([1, 2]))`` (and ``split_devices``) raised numpy's raw
    "truth value of an array ... is ambiguous" from the one-stream warning's ``streams == 1``."""
    g = qkv_attention()
    for call in (lambda: memplan.plan_devices(g, 2, streams=np.array([1, 2])),
                 lambda: memplan.split_devices(g, 2, streams=np.array([1, 2]), max_events=1)):
        with pytest.raises(ScheduleError, match="streams must be an integer"):
            call()


def test_array_arguments_are_named_not_raw_numpy_errors() -> None:
    """Failed before: ``plan_devices(g, 2, solver=np.array([...]))`` (and ``plan(g, devices=2, solver=...)``) raised
    numpy's raw "truth value of an array is ambiguous" from the ggml check, ``ReuseIndex.table(np.array(3))`` a raw
    "iteration over a 0-d array", and ``HappensBefore.hb(np.True_, 2**64)`` a raw OverflowError."""
    g = qkv_attention()
    p = memplan.plan(g)
    with pytest.raises(SolverError, match="unknown solver"):
        memplan.plan_devices(g, 2, solver=np.array(["greedy", "size"]))
    with pytest.raises(SolverError, match="unknown solver"):
        memplan.plan(g, devices=2, solver=np.array(["greedy", "size"]))
    with pytest.raises(ScheduleError, match="tensors is a collection of tensor ids"):
        memplan.ReuseIndex(g, p).table(np.array(3))
    hb = memplan.build_happens_before(g, memplan.serial_schedule(g))
    with pytest.raises(ScheduleError, match="HappensBefore.hb: node a"):
        hb.hb(np.True_, 2**64)
    with pytest.raises(ScheduleError, match="HappensBefore.first_at_least"):
        hb.first_at_least(np.True_, 2**64, np.array([1]))


@pytest.mark.parametrize("protocol", [0, 1, pickle.HIGHEST_PROTOCOL])
def test_a_reuse_index_pickles_under_every_protocol(protocol) -> None:
    """Failed before (protocols 0 and 1): the lifetimes' ``StreamTable`` (``__slots__``, no ``__getstate__``) could
    not be pickled, so neither could a ``ReuseIndex``, while graphs, plans and schedules pickle under any protocol."""
    g = views_inplace()
    p = memplan.plan(g, streams=2)
    index = memplan.ReuseIndex(g, p)
    again = pickle.loads(pickle.dumps(index, protocol))
    assert again.table() == index.table()
    assert copy.deepcopy(index).table() == index.table()


def test_an_unknown_huge_id_is_named_short() -> None:
    """Failed before: ``g.tensor("z" * 10**6)`` (and ``g.node``) raised a GraphError of a megabyte, the whole id
    quoted, where ``reuse_after`` and the other lookups cut it."""
    g = qkv_attention()
    for lookup, what in ((g.tensor, "tensor"), (g.node, "node")):
        with pytest.raises(GraphError, match=f"unknown {what} 'zzz") as err:
            lookup("z" * 10**6)
        assert len(str(err.value)) < 300
    with pytest.raises(GraphError, match="^unknown tensor 'nope'$"):
        g.tensor("nope")


def test_minimalloc_tables_print_short_and_solve_table_names_a_misspelt_option() -> None:
    """Failed before: a 20,000-row ``CsvTable`` printed 0.8 MB, and ``solve_table(t, time_limit=1)`` was Python's
    bare TypeError ("unexpected keyword argument"); now the repr is bounded and the option an OptionError pointing
    to ``SolveOptions`` (as ``plan_devices`` and ``solvers.solve``, which take their solver options there too)."""
    from memplan.io.minimalloc import parse_csv, solve_table

    big = parse_csv("id,lower,upper,size\n" + "".join(f"{i},{i},{i + 2},8\n" for i in range(20000)))
    assert len(repr(big)) < 5000
    small = parse_csv("id,lower,upper,size\n0,0,2,8\n1,1,3,8\n")
    assert repr(small).startswith("CsvTable(path='<csv>', header=('id', 'lower', 'upper', 'size'), rows=(('0',")
    with pytest.raises(OptionError, match=r"unknown option 'time_limit' \(did you mean options=memplan\.solvers\."
                                          r"SolveOptions\(time_limit=\.\.\.\)\?\)"):
        solve_table(small, time_limit=1)
    with pytest.raises(OptionError, match=r"SolveOptions\(seed=\.\.\.\)"):
        memplan.plan_devices(qkv_attention(), 2, seed=1)
    assert solve_table(small, np.int64(16)).offsets.tolist() == [0, 8]


def test_examples_and_csv_readers_name_a_misspelt_option() -> None:
    """Failed before: ``memplan.examples.qkv_attention(hiden=5)`` (README's example graphs), ``chain(4, 1024, 3)`` and
    ``io.minimalloc.read_csv(pth=...)`` were Python's bare TypeErrors; each is an OptionError naming the option, as
    every entry point of ``memplan.__all__`` gives."""
    from memplan import examples
    from memplan.io.minimalloc import parse_csv, read_csv

    with pytest.raises(OptionError, match=r"unknown option 'hiden' \(did you mean 'hidden'\?\)"):
        examples.qkv_attention(hiden=5)
    with pytest.raises(OptionError, match="chain\\(\\) takes at most 2"):
        examples.chain(4, 1024, 3)
    with pytest.raises(OptionError, match="unknown option 'pth'"):
        read_csv(pth="x.csv")
    with pytest.raises(OptionError, match="needs argument 'text'"):
        parse_csv()
    assert examples.chain(np.int64(3)) == examples.chain(3)


def test_a_method_call_that_does_not_bind_is_an_option_error() -> None:
    """Failed before: ``plan.to_json(timing=True)``, ``plan.save()``, ``plan.offsets(1)``, ``index.after(tensr="x")``
    and ``graph.tensor()`` were Python's bare TypeErrors, and ``plan.ratio_text(dec=3)`` a PlanFormatError blaming the
    plan's fields ("cannot be computed from field(s) arena_bytes=..."); each is an OptionError naming the argument."""
    g = qkv_attention()
    p = memplan.plan(g, streams=3)
    index = memplan.ReuseIndex(g, p)
    for call, match in ((lambda: p.to_json(timing=True), r"Plan.to_json\(\) got an unknown option 'timing' \(did you "
                                                         r"mean 'timings'\?\)"),
                        (lambda: p.save(), r"Plan.save\(\) needs argument 'path'"),
                        (lambda: p.offsets(1), r"Plan.offsets\(\) takes no arguments, not 1: 1$"),
                        (lambda: p.ratio_text(dec=3), r"Plan.ratio_text\(\) got an unknown option 'dec'"),
                        (lambda: index.after(tensr="x"), r"ReuseIndex.after\(\) got an unknown option 'tensr'"),
                        (lambda: g.tensor(), r"Graph.tensor\(\) needs argument 'tid'"),
                        (lambda: g.node("norm", 2), r"Graph.node\(\) takes at most 1")):
        with pytest.raises(OptionError, match=match):
            call()
    assert p.ratio_text(decimals=2) == "1.00" and g.node(nid="norm").id == "norm"
    bad = memplan.Plan("g", 256, "x", 0, 1, (), (), ())
    with pytest.raises(memplan.PlanFormatError, match="cannot be computed from field"):
        bad.ratio_text()
