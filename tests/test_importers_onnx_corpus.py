"""The ONNX importer's sizes against what onnxruntime really allocates, on a corpus nobody hand-picked.

Why: every other importer test checks a size someone worked out by hand, for a model built to test it.
onnx ships about 1,900 single-op test models (``onnx.backend.test.case.node``) with their inputs, and
small converted models on disk; a deterministic sample of them is imported, run on onnxruntime's CPU
provider with every intermediate exposed as an output, and each value's real byte size compared with
the planned ``size``. A smaller plan is a buffer overrun, a larger one waste: both fail the test. A
refusal (``GraphError``) is fine; any other exception is a bug. Each model is also imported with its
inputs' dimensions symbolic (fixed by ``dims=``) and its declared output shapes dropped, so that every
size comes from inference; and, where a graph input sizes an output (a Reshape's shape fed as an input,
which the importer refuses as run-time data), with that input made a constant holding the test's value.
Cases onnxruntime cannot run are skipped.

The whole corpus (``STRIDE = 1``, about 8 s) ran clean in session 24 after the STFT ``onesided`` fix,
which this sample catches.
"""

from __future__ import annotations

import functools
import glob
import os
import warnings

import numpy as np
from needs import need

onnx = need("onnx")
ort = need("onnxruntime")

from onnx import numpy_helper  # noqa: E402
from onnx_oracle import ort_sizes, size_mismatches  # noqa: E402

from memplan.errors import GraphError  # noqa: E402
from memplan.importers.onnx import import_onnx  # noqa: E402
from memplan.importers.onnx.common import _default_opset  # noqa: E402
from memplan.importers.onnx.infer import _shape_inputs  # noqa: E402

#: one node test case in STRIDE, by name order (deterministic; STRIDE = 1 runs all of them)
STRIDE = 4
#: the on-disk model folders of onnx's backend test data taken whole (small models)
DISK = ("simple", "pytorch-operator")
@functools.cache
def _corpus() -> tuple:
    """``(name, model, inputs)`` of the sample: onnx's node cases one in STRIDE, and the DISK folders."""
    import onnx.backend.test.case.node as nodecases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        node_cases = sorted((c for c in nodecases.collect_testcases() if c.model is not None and c.data_sets),
                            key=lambda c: c.name)
    out = []
    for c in node_cases[::STRIDE]:
        ins = [numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else x for x in c.data_sets[0][0]]
        out.append((c.name, c.model, ins))
    base = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for kind in DISK:
        for d in sorted(glob.glob(os.path.join(base, kind, "*"))):
            files = sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")),
                           key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
            ins = []
            for f in files:
                t = onnx.TensorProto()
                with open(f, "rb") as fh:
                    t.ParseFromString(fh.read())
                ins.append(numpy_helper.to_array(t))
            if os.path.exists(os.path.join(d, "model.onnx")):
                out.append((f"{kind}/{os.path.basename(d)}", onnx.load(os.path.join(d, "model.onnx")), ins))
    return tuple(out)


def _symbolic(model):
    """A copy with every graph input dimension symbolic and no declared output or intermediate shape."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name for t in m.graph.initializer}
    for j, vi in enumerate(m.graph.input):
        if vi.name not in inits and vi.type.HasField("tensor_type"):
            for i, d in enumerate(vi.type.tensor_type.shape.dim):
                d.Clear()
                d.dim_param = f"s{j}_{i}"
    for vi in m.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    return m


def _constant_shapes(model, feeds: dict):
    """``(model, feeds)`` with the graph inputs that size an output (a Reshape's shape, a Slice's ends:
    ``SHAPE_INPUTS``) made initializers holding the test's values, or None when there are none: onnx's node
    tests feed them as inputs, which the importer rightly refuses as run-time data, and exporters write
    them as constants."""
    inits = {t.name for t in model.graph.initializer}
    controls = {n.input[k] for n in model.graph.node for k in _shape_inputs(n.op_type, _default_opset(model))
                if k < len(n.input) and n.input[k] in feeds and n.input[k] not in inits}
    if not controls:
        return None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.initializer.extend(numpy_helper.from_array(feeds[v], v) for v in sorted(controls))
    kept = [vi for vi in m.graph.input if vi.name not in controls]
    del m.graph.input[:]
    m.graph.input.extend(kept)
    return m, {k: v for k, v in feeds.items() if k not in controls}


def _compare(name: str, model, feeds: dict, real: dict) -> tuple[int, list[str]]:
    """(values compared, mismatches) of ``model`` imported as declared and with symbolic inputs."""
    compared, mismatches = 0, []
    for variant, m in (("declared", model), ("symbolic", _symbolic(model))):
        dims = {}
        if variant == "symbolic":
            named = {d.dim_param for vi in m.graph.input for d in vi.type.tensor_type.shape.dim if d.dim_param}
            dims = {f"s{j}_{i}": n for j, vi in enumerate(m.graph.input) if vi.name in feeds
                    for i, n in enumerate(feeds[vi.name].shape) if f"s{j}_{i}" in named}
        try:
            g = import_onnx(m, dims=dims or None)
        except GraphError:
            continue   # refused by name: fine
        got, bad = size_mismatches(g, real, f"{name} ({variant}): ")
        compared += got
        mismatches += bad
    return compared, mismatches


def test_the_importers_sizes_are_what_onnxruntime_allocates():
    compared, mismatches = 0, []
    for name, model, ins in _corpus():
        inits = {t.name for t in model.graph.initializer}
        inputs = [v for v in model.graph.input if v.name not in inits]
        if any(isinstance(x, list) or x is None for x in ins):
            continue   # a sequence or optional input: refused by the importer, fed differently to onnxruntime
        feeds = {v.name: np.asarray(x) for v, x in zip(inputs, ins)}
        variants = [("", (model, feeds))]
        constant = _constant_shapes(model, feeds)
        if constant is not None:
            variants.append((", shapes constant", constant))
        for label, (m, f) in variants:
            real = ort_sizes(m, f)
            if real is None:
                continue
            got, found = _compare(f"{name}{label}", m, f, real)
            compared += got
            mismatches += found
    assert not mismatches, "\n".join(mismatches)
    assert compared > 500, f"only {compared} values compared: the corpus or onnxruntime went missing"
