"""Differential sweep (round 65): the ONNX importer against onnxruntime, op by op, value by value.

Why: a planned tensor smaller than what onnxruntime writes is a memory corruption in every plan made from the model,
and a refusal of a model onnxruntime runs is a model nobody can plan. Each case is a small model of one default-domain
op (or of the few ops of its function expansion), run by onnxruntime's CPU provider with every value exposed as a graph
output, and imported by memplan; every value's shape, element type and bytes are compared.

Cases: onnx's own node test cases (``onnx.backend.test.case.node``: real attributes, dtypes, broadcasting, and inputs
whose values are valid for the op), each also varied, where the variation applies:

* ``opset=V``: the model stamped with another default opset in 13..``MAX_OPSET`` (the newest onnxruntime loads) at which every op of it has the same
  schema version (the importer's per-version rules, for versions the case was not written at);
* ``float16`` / ``double``: every float input, output and initializer of another float type;
* ``empty``: the leading dimension of every float input of it made 0 (an empty batch);
* ``negaxes``: an ``axis``/``axes`` attribute's entries made negative (by the rank of the op's first input);
* ``const``: every integer input an initializer of the value it is fed (shapes and axes known at import);
* ``chained``: the first float input made by a ``Relu`` before the op (a two-op model; onnx's ``*_expanded`` cases,
  an op as its function body's nodes, are the many-op ones).

Each case is one of: ``agree`` (every value compared and equal), ``MISMATCH`` (a value planned of another shape, dtype
or size: printed), ``over-refusal`` (memplan refuses what onnxruntime runs: printed), ``ort refuses, memplan plans``
(onnxruntime refuses to load it: printed; one it refuses only as it runs is counted apart, ``run refused``, since that
may depend on what the inputs hold; one it has no CPU kernel for, ``no CPU kernel``, is not judged: memplan plans for
other providers too), ``data-dependent refusal`` (memplan refuses a size a graph input's value decides: right),
``known refusal`` (memplan refuses on purpose what runtimes size differently, or a case ``KNOWN_REFUSALS`` lists),
``both refuse``, ``RAW`` (memplan raised something else than its own errors).

Run: ``python tests/onnx_sweep_round65.py [--sample N] [--seed S] [--show N] [NAME_SUBSTRING ...]`` from the repository
root (``PYTHONPATH=$PWD``). ``--sample N`` checks N cases drawn by the seed (what ``tests/test_onnx_round65.py`` runs).
Exit status 1 on any MISMATCH, over-refusal, load-refusal planned or RAW.
"""

from __future__ import annotations

import functools
import random
import sys
import warnings
from collections import Counter
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_sweep_driver as driver
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx_oracle import ORT_ERRORS

from memplan.errors import MemplanError
from memplan.importers.onnx import import_onnx

MIN_OPSET = 13


def _newest_opset() -> int:
    """The newest default opset that both onnx (its schemas) and onnxruntime (it loads a model of it) know."""
    for v in range(onnx.defs.onnx_opset_version(), MIN_OPSET, -1):
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info(
            "x", T.FLOAT, [1])], [helper.make_tensor_value_info("y", T.FLOAT, [1])])
        try:
            _session(helper.make_model(g, opset_imports=[helper.make_opsetid("", v)], ir_version=10))
        except ORT_ERRORS:
            continue
        return v
    return MIN_OPSET


FLOATS = {"float16": (T.FLOAT16, np.float16), "double": (T.DOUBLE, np.float64)}
#: ops whose sweep cases are left out: they read files, or run a subgraph the importer refuses by design
SKIP_OPS = frozenset({"Scan", "SequenceMap"})


#: ops onnxruntime 1.32 aborts the process on, given an empty leading dimension (a GRU of ``seq_length`` 0:
#: "terminate called without an active exception"): not emptied
EMPTY_ABORTS = frozenset({"GRU", "LSTM", "RNN"})


class Case:
    """One model to compare: its label, the model, and the inputs to run it on."""

    def __init__(self, label: str, model, feeds: dict[str, np.ndarray]) -> None:
        self.label, self.model, self.feeds = label, model, feeds


@functools.cache
def _collected() -> list:
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return node_cases.collect_testcases(None)


def base_cases() -> Iterator[Case]:
    """onnx's node test cases of default-domain ops, with their first data set's inputs."""
    collected = _collected()
    for c in collected:
        m = c.model
        if not c.data_sets or any(n.domain not in ("", "ai.onnx") for n in m.graph.node):
            continue
        if any(n.op_type in SKIP_OPS for n in m.graph.node):
            continue
        inputs, _outputs = c.data_sets[0]
        inputs = [np.asarray(v) if isinstance(v, np.generic) else v for v in inputs]   # (0-D inputs: numpy scalars)
        names = [vi.name for vi in m.graph.input if vi.name not in {t.name for t in m.graph.initializer}]
        if len(inputs) != len(names) or any(not isinstance(v, np.ndarray) or v.dtype.kind not in "biufc" for v in inputs):
            continue   # (sequences, optionals, strings, bfloat16 and float8 arrays: fed otherwise; not this sweep's)
        yield Case(c.name, m, dict(zip(names, inputs)))


def _opset(m) -> int:
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 1)


def _copy(m):
    c = onnx.ModelProto()
    c.CopyFrom(m)
    return c


def restamped(case: Case, version: int) -> Case | None:
    """``case`` at default opset ``version``, where every op of it has the schema there that it has at its own."""
    m = case.model
    own = _opset(m)
    if version == own:
        return None
    for n in m.graph.node:
        try:
            a = onnx.defs.get_schema(n.op_type, own, "").since_version
            b = onnx.defs.get_schema(n.op_type, version, "").since_version
        except onnx.defs.SchemaError:
            return None
        if a != b:
            return None
    c = _copy(m)
    for o in c.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version
    c.ir_version = max(c.ir_version, 8)
    return Case(f"{case.label}@opset={version}", c, case.feeds)


def retyped(case: Case, name: str) -> Case | None:
    """``case`` with every float32 input, output, declaration and initializer of the float type ``name``; None where
    it has none, or a node fixes a float type by attribute (Cast's ``to``, a Constant's tensor)."""
    elem, dtype = FLOATS[name]
    m = _copy(case.model)
    g = m.graph
    if any(a.name in ("to", "dtype", "value", "output_dtype", "stash_type") or a.HasField("g")
           for n in g.node for a in n.attribute):
        return None
    hit = False
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == T.FLOAT:
            vi.type.tensor_type.elem_type = elem
            hit = True
    for k, t in enumerate(g.initializer):
        if t.data_type == T.FLOAT:
            g.initializer[k].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(dtype), t.name))
    feeds = {k: v.astype(dtype) if v.dtype == np.float32 else v for k, v in case.feeds.items()}
    return Case(f"{case.label}@{name}", m, feeds) if hit else None


def emptied(case: Case) -> Case | None:
    """``case`` with the leading dimension of every float input that has one made 0 (inputs whose leading dimension
    is the first one's only: broadcasting partners stay partners)."""
    floats = [k for k, v in case.feeds.items() if v.dtype.kind == "f" and v.ndim >= 1]
    if not floats or any(n.op_type in EMPTY_ABORTS for n in case.model.graph.node):
        return None
    lead = case.feeds[floats[0]].shape[0]
    if lead in (0, 1):
        return None
    feeds = dict(case.feeds)
    m = _copy(case.model)
    for vi in m.graph.input:
        if vi.name in floats and case.feeds[vi.name].shape[0] == lead:
            feeds[vi.name] = case.feeds[vi.name][:0]
            dims = vi.type.tensor_type.shape.dim
            if dims:
                dims[0].Clear()
                dims[0].dim_value = 0
    for vi in m.graph.output:   # (outputs re-inferred: their declared shapes no longer hold)
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    return Case(f"{case.label}@empty", m, feeds)


def chained(case: Case) -> Case | None:
    """``case`` with its first float input made by a node before it (``Relu`` of a graph input of the same shape, fed
    non-negative values so the op sees what it saw): a two-op model, the op's input sized by inference rather than
    by a declaration."""
    first = next((k for k, v in case.feeds.items() if v.dtype.kind == "f"), None)
    if first is None or first in {t.name for t in case.model.graph.initializer}:
        return None
    m = _copy(case.model)
    g = m.graph
    raw = f"{first}__raw"
    for vi in g.input:
        if vi.name == first:
            vi.name = raw
    relu = helper.make_node("Relu", [raw], [first], name="chained_relu")
    nodes = [relu, *g.node]
    del g.node[:]
    g.node.extend(nodes)
    feeds = {(raw if k == first else k): v for k, v in case.feeds.items()}
    feeds[raw] = np.asarray(np.abs(feeds[raw]))   # (of a 0-D array: a numpy scalar, which onnxruntime takes not)
    return Case(f"{case.label}@chained", m, feeds)


def constant_ints(case: Case) -> Case | None:
    """``case`` with every integer input made an initializer of the value it is fed: shapes, sizes, axes, indices
    known at import (as an exporter writes them), so what they decide is sized rather than refused."""
    ints = [k for k, v in case.feeds.items() if v.dtype.kind in "iu"]
    if not ints:
        return None
    m = _copy(case.model)
    g = m.graph
    keep = [vi for vi in g.input if vi.name not in ints]
    del g.input[:]
    g.input.extend(keep)
    g.initializer.extend(numpy_helper.from_array(case.feeds[k], k) for k in ints)
    return Case(f"{case.label}@const", m, {k: v for k, v in case.feeds.items() if k not in ints})


def negated_axes(case: Case) -> Case | None:
    """``case`` with each node's non-negative ``axis``/``axes`` attribute entries made negative, by the rank of the
    node's first input where that is a graph input of known rank."""
    m = _copy(case.model)
    ranks = {k: v.ndim for k, v in case.feeds.items()}
    hit = False
    for n in m.graph.node:
        r = ranks.get(n.input[0]) if n.input else None
        if r is None or n.op_type in ("Unsqueeze",):   # (Unsqueeze's axes count in the output's rank)
            continue
        for a in n.attribute:
            if a.name == "axis" and a.type == onnx.AttributeProto.INT and 0 <= a.i < r:
                a.i -= r
                hit = True
            elif a.name == "axes" and a.type == onnx.AttributeProto.INTS and all(0 <= x < r for x in a.ints):
                new = [x - r for x in a.ints]
                del a.ints[:]
                a.ints.extend(new)
                hit = hit or bool(new)
    return Case(f"{case.label}@negaxes", m, case.feeds) if hit else None


def variations(c: Case) -> Iterator[Case]:
    """``c`` and each of its variations (opsets: each version at which it restamps)."""
    yield c
    for v in range(MIN_OPSET, MAX_OPSET + 1):   # (MAX_OPSET: set below, once _session is defined)
        r = restamped(c, v)
        if r is not None:
            yield r
    for make in (lambda c: retyped(c, "float16"), lambda c: retyped(c, "double"), emptied, negated_axes,
                 constant_ints, chained):
        r = make(c)
        if r is not None:
            yield r


def all_cases() -> Iterator[Case]:
    """Every base case and each of its variations."""
    for c in base_cases():
        yield from variations(c)


# -- the two sides ----------------------------------------------------------------------------------------------------

def _exposed(model):
    m = _copy(model)
    outs = {o.name for o in m.graph.output}
    for o in dict.fromkeys(o for n in m.graph.node for o in n.output if o and o not in outs):
        m.graph.output.append(helper.ValueInfoProto(name=o))
    return m


def _session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_values(case: Case) -> tuple[str, dict]:
    """(``"ok"``, ``{value: (shape, type text, bytes)}``) of every tensor onnxruntime makes running ``case`` (every
    value exposed; failing that, the graph outputs), or (``"load"``/``"run"``/``"kernel"``, ``{"": its message}``) where it refuses to
    load or run it, or has no CPU kernel for a node's types (memplan plans for other providers too: not judged)."""
    stage, why = "load", ""
    for m in (_exposed(case.model), case.model):
        try:
            stage = "load"
            s = _session(m)
            stage = "run"
            values = s.run_with_ort_values(None, {k: ort.OrtValue.ortvalue_from_numpy(v)
                                                  for k, v in case.feeds.items()})
        except ORT_ERRORS as exc:
            why = str(exc).replace("\n", " ")
            if "Could not find an implementation" in why or "Failed to find kernel" in why:
                stage = "kernel"
            continue
        out = {}
        for o, v in zip(s.get_outputs(), values):
            if v.has_value() and v.is_tensor() and v.data_type() != "tensor(string)":
                out[o.name] = (list(v.shape()), v.data_type(), v.tensor_size_in_bytes())
        return "ok", out
    return stage, {"": why}


def _planned_type(dtype: str) -> str:
    return f"tensor({dtype})"


def imported(case: Case) -> tuple[object, str | None, list[str]]:
    """``(graph, None, [])`` where memplan plans the case, ``(None, its refusal's first line, [])`` where it refuses
    it, ``(None, None, [the RAW line])`` where it raised anything else (a bug: counted and shown). Both sweeps judge
    a case's import alike."""
    try:
        return import_onnx(case.model), None, []
    except MemplanError as exc:
        return None, str(exc).split("\n")[0], []
    except Exception as exc:  # noqa: BLE001 - a raw exception is a bug: counted and shown
        return None, None, [f"{case.label}: RAW {type(exc).__name__}: {str(exc)[:200]}"]


def compare(case: Case) -> tuple[str, list[str]]:
    """The case's class (see the module's docstring) and its lines to print."""
    status, real = ort_values(case)
    g, planned, raw = imported(case)
    if raw:
        return "RAW", raw
    if status != "ok":
        if g is None:
            return "both refuse", []
        if status == "kernel":
            return "no CPU kernel, memplan plans", []
        if status == "load":
            return "ort refuses, memplan plans", [f"{case.label}: memplan plans it; onnxruntime refuses to load it: "
                                                  f"{real[''][:260]}"]
        return "run refused", [f"{case.label}: memplan plans it; onnxruntime refuses to run it: {real[''][:200]}"]
    if g is None:
        if any(w in planned for w in DATA_DEPENDENT):
            return "data-dependent refusal", [f"{case.label}: {planned[:220]}"]
        known = next((why for label, why in KNOWN_REFUSALS.items() if case.label.startswith(label)), None)
        if known is not None or any(w in planned for w in DELIBERATE):
            return "known refusal", [f"{case.label}: {known or planned[:220]}"]
        return "over-refusal", [f"{case.label}: memplan refuses: {planned[:220]}"]
    bad = []
    for t in g.tensors:
        if t.id not in real or t.kind == "input":
            continue
        shape, dtype, size = real[t.id]
        want = (shape, dtype, size)
        got = (list(t.attrs.get("shape", [])), _planned_type(str(t.attrs.get("dtype"))), t.size)
        if "shape" not in t.attrs or "dtype" not in t.attrs:
            got = (shape, dtype, t.size)   # (a value planned by size alone: its bytes compared)
        if got != want:
            under = " UNDER" if t.size < size else ""
            bad.append(f"{case.label}: {t.id!r} planned {got}, onnxruntime made {want}{under}")
    return ("MISMATCH", bad) if bad else ("agree", [])


def run(cases: list[Case], show: int = 20, out=sys.stdout) -> Counter:
    """Compare ``cases``, print the lines of each class (``show`` at most a class) and the counts; return the
    counts (by class, and ``ops``: the distinct ops compared)."""
    return driver.run(cases, compare, show, out, count_ops=True)


#: the words of memplan's refusals of a size or a course that depends on what a graph input holds (an AffineGrid's
#: ``size`` fed at run time): right, since the plan is made before the run (the ``const`` variation folds them)
DATA_DEPENDENT = ("computed at run time from what the graph inputs hold", "not a constant known at import")
#: the words of memplan's refusals of what runtimes size differently (a Resize keeping the aspect ratio over negative
#: axes: onnxruntime leaves those axes at the input's size, the spec does not): deliberate, the user told how to fix it
DELIBERATE = ("runtimes disagree",)
#: cases memplan refuses though onnxruntime runs them, left for later (label prefix -> why)
KNOWN_REFUSALS = {
    "test_affine_grid_2d_expanded": "ONNX's inference of Range takes only 0-D inputs, onnxruntime's kernel also [1]",
    "test_affine_grid_2d_align_corners_expanded": "(as test_affine_grid_2d_expanded)",
    "test_affine_grid_3d_expanded": "(as test_affine_grid_2d_expanded)",
    "test_affine_grid_3d_align_corners_expanded": "(as test_affine_grid_2d_expanded)",
}
#: the newest default opset the sweep stamps (onnx 1.23 and onnxruntime 1.32: 25)
MAX_OPSET = _newest_opset()
FAILING = ("MISMATCH", "over-refusal", "ort refuses, memplan plans", "RAW")


def sample(n: int, seed: int) -> list[Case]:
    """``n`` cases drawn by ``seed`` (the same ones for the same seed and onnx version): ``n`` base cases, each with
    one of its variations (or itself) drawn. Why not ``n`` of every case: making all 16,000 first took most of the
    bounded test's time."""
    rng = random.Random(seed)
    bases = list(base_cases())
    return [rng.choice(list(variations(c))) for c in rng.sample(bases, min(n, len(bases)))]


def main(argv: list[str]) -> int:
    show, words = driver.options(argv, ("--show", "--seed", "--sample"))
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 65
    cases = sample(int(argv[argv.index("--sample") + 1]), seed) if "--sample" in argv else list(all_cases())
    return driver.status(run(driver.chosen(cases, words), show), FAILING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
