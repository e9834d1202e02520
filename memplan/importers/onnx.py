"""ONNX models into memplan graphs: ``import_onnx(path_or_model, batch=..., dims=...)``.

Why: an arena plan is only as good as its sizes, and ONNX files carry every tensor's dtype and (after
shape inference) shape. This module turns a model into the graph contract and refuses anything it cannot
translate faithfully — a symbolic dimension left unknown, a dtype without a fixed byte size, a control-flow
subgraph, nodes out of topological order — with a ``GraphError`` naming the input, value or node, rather
than producing a graph that would plan the wrong sizes.

Mapping:
- initializers (and ``Constant`` nodes, which every runtime folds into initializers) -> ``weight``;
- graph inputs -> ``input``; graph outputs -> ``output``; every other value -> ``intermediate``;
- Reshape, Squeeze, Unsqueeze, Flatten, Identity -> the output is a view (``view_of`` the data input,
  offset 0) produced by the op's node, as ggml does, because every runtime executes them as views; so is an
  output an onnxruntime kernel requires to share its input's buffer (SparseAttention's present key / value);
- node order is the model's (the ONNX spec requires it topological; it is checked, not assumed);
- node ``cost``: roofline microseconds from a FLOP and byte estimate per op.

Shape inference never sees the large initializers' data: they are passed as typed graph inputs instead,
so importing a model costs memory proportional to its structure, not to its weights.
"""

from __future__ import annotations

import enum
import functools
import math
import os
import posixpath
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import GraphError, InputFormatError, MemplanError, OptionError, as_int, named_options, report_progress
from ..errors import short_repr as _short
from ..files import check_outputs, check_readable, directory_of
from ..graph import DEFAULT_ALIGNMENT, Graph, Node, Tensor, check_alignment
from . import Progress, check_progress, first_line, node_cost
from .onnx_kernels import (
    check_before_inference,
    check_constant_of_shape_value,
    check_empty_optional,
    check_recurrent_operands,
    check_resize_scale_range,
    check_topk_k,
    check_unbroadcast_variadic,
    check_vector_operands,
)

#: ops every runtime executes as a view of their first input (no kernel, no new memory)
ONNX_VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"})
#: ops that carry subgraphs: not supported (their bodies' tensors would be invisible to the plan)
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
#: standard ops whose output length depends on the values of their input, not its shape: a size the model
#: declares for such an output (a traced example's, or a ``--dim`` the user gives its name) holds for one
#: input only, so it is never planned (a longer result at run time would overrun its slot)
#: (NonZero and Unique are sized by their input's values, ``SHAPE_INPUTS``: of a constant, ``_spec_shapes`` counts)
DATA_DEPENDENT_OPS = frozenset({"NonMaxSuppression",
                                "ImageDecoder"})  # (its height and width are the encoded image's)
#: onnxruntime's (``com.microsoft``) ops with outputs of data-dependent length: op -> those outputs' indices (its
#: Unique's ``y`` and ``counts`` have one entry per distinct value; its ``idx`` one per input element; the path
#: DynamicTimeWarping finds is ``[2, x]`` with ``max(M, N) <= x < M + N`` by the costs; RemovePadding's output has
#: one row per token the counts it is given keep)
ORT_DATA_DEPENDENT = {"Unique": (0, 2), "DynamicTimeWarping": (0,), "RemovePadding": (0,)}
#: onnxruntime's (``com.microsoft``) ops whose output shape follows the *values* of these inputs, as
#: ``SHAPE_INPUTS`` for the standard ops: its Range's start/limit/delta, its Pad's pads, CropAndResize's crop_size,
#: ExpandDims's axis, RelativePositionBias's query and key lengths. Why: one of them computed from a graph input's
#: values left the output sized by the model's declaration (a traced example's): a CropAndResize declared
#: ``[2, 3, 4, 4]`` was planned 384 bytes, and onnxruntime wrote 600 into it for a crop_size of ``[5, 5]``
ORT_SHAPE_INPUTS = {"Range": (0, 1, 2), "Pad": (1,), "CropAndResize": (3,), "ExpandDims": (1,),
                    "RelativePositionBias": (1, 2)}
#: standard ops whose output shape follows the *values* of these inputs (a Reshape's target shape, a Range's
#: limit, a Slice's ends...): when such an input is computed from the values a graph input carries at run
#: time (not from shapes alone, as ``Shape`` / ``Size`` give them), the output's size is data-dependent too
SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2), "ConstantOfShape": (0,),
    "Slice": (1, 2, 3, 4), "TopK": (1,), "OneHot": (1,), "Resize": (2, 3), "Upsample": (1,), "Pad": (1, 3),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,), "Col2Im": (1, 2),
    "MaxUnpool": (2,), "DFT": (1, 2),  # (dft_length; axis since opset 20)
    "Compress": (1,),   # (its condition: a constant one keeps a known count of slices, ``_compress_shape``)
    "NonZero": (0,), "Unique": (0,),   # (their one input: a constant one has a known count, ``_nonzero_unique``)
    "STFT": (1, 3), "AffineGrid": (1,), "MelWeightMatrix": (0, 1),
    # (which tensor of a sequence, and so its shape: the pieces of a split, the element taken, the order)
    "SplitToSequence": (1,), "SequenceAt": (1,), "SequenceInsert": (2,), "SequenceErase": (1,),
    **{op: (0,) for op in ("BlackmanWindow", "HannWindow", "HammingWindow")},   # (the window's length)
    **{op: (1,) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                            "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                            "ReduceSumSquare")},
}
#: why a data-dependent value (``_data_dependent_outputs``) has no size
RUN_TIME = ("it depends on values computed at run time from what the graph inputs hold (through a data-dependent op such as NonZero or "
            "Unique, or an input that sizes an output: a Reshape's shape, a Range's limit...)")
#: ops whose shape inputs moved between opsets: (first opset of the layout, its SHAPE_INPUTS), newest first
#: (Resize-10's scales are input 1, where Resize-11 put the roi, which sizes nothing)
SHAPE_INPUTS_BEFORE = {"Resize": ((11, (2, 3)), (10, (1,)))}
#: ops whose output values depend only on their input's shape (a SequenceLength: on how many tensors its sequence
#: holds, which only a data-dependent ``split`` or position changes, and those mark the sequence sized)
SHAPE_OF_OPS = frozenset({"Shape", "Size", "SequenceLength"})
#: ops whose output is a sequence or optional made of whole tensors (or containers) the node reads, so that
#: its bytes are exactly theirs: op -> how many of its first inputs it holds (None: all of them). Others
#: (SequenceErase) hold the tensors the importer followed into them where it knows them all
#: (``_track_sequence``); a custom op's container, or one of unknown tensors, is refused by name
CONTAINER_OPS = {"SplitToSequence": 1, "SequenceConstruct": None, "SequenceEmpty": 0, "SequenceInsert": 2,
                 "Optional": 1, "OptionalGetElement": 1, "Identity": 1}
#: initializers up to this many elements keep their data for shape inference (Reshape shapes, axes)
SMALL_INITIALIZER = 64
#: elements above which a ``Constant`` node's tensor is left out of the copy given to shape inference, typed by its
#: dims (``_large_constants``): far above any shape tensor; where a size does follow its data anyway (a Slice of it
#: as a Reshape's shape), ``_infer`` infers again with the data
LARGE_CONSTANT = 1 << 16

# bits per element of each ONNX TensorProto data type with a fixed size (STRING/UNDEFINED are absent)
_BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64,
    14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
    27: 6, 28: 6,
}


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise MemplanError("the ONNX importer needs the 'onnx' package: pip install 'memplan[onnx]'") from None
    return onnx


def _dtype_name(onnx, elem: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem).lower()
    except ValueError:
        return f"type#{elem}"


def _type_text(onnx, tp, depth: int = 0) -> str:
    """An ONNX type as the spec writes it (``optional(tensor(float))``, ``seq(tensor(int64))``,
    ``map(int64, tensor(float))``). Why: every graph input that was no tensor was refused as "sequences/maps are
    unsupported", for an optional or a sparse tensor too, naming neither the kind nor what it holds."""
    kind = tp.WhichOneof("value")
    if kind is None or depth > 8:   # (protobuf allows any nesting; the words stop well before)
        return "?" if kind is None else "..."
    if kind in ("tensor_type", "sparse_tensor_type"):
        return f"{kind.removesuffix('_type')}({_dtype_name(onnx, getattr(tp, kind).elem_type)})"
    if kind == "sequence_type":
        return f"seq({_type_text(onnx, tp.sequence_type.elem_type, depth + 1)})"
    if kind == "optional_type":
        return f"optional({_type_text(onnx, tp.optional_type.elem_type, depth + 1)})"
    if kind == "map_type":
        m = tp.map_type
        return f"map({_dtype_name(onnx, m.key_type)}, {_type_text(onnx, m.value_type, depth + 1)})"
    return kind.removesuffix("_type")


def _nbytes(bits: int, dims: tuple[int, ...]) -> int:
    return (math.prod(dims) * bits + 7) // 8


#: an ONNX file holds at most 2 GiB (protobuf's limit; larger weights live in external data files)
MAX_ONNX_BYTES = 1 << 31
#: dimensions (``--batch``, ``--dim``) are int64 in ONNX
MAX_DIM = (1 << 63) - 1
#: nodes a model's graph may grow to by inlining its local functions (``_check_inlined_size``): far above any real
#: model's (the largest exports have a few hundred thousand nodes); importing as many takes minutes already
MAX_INLINED_NODES = 1 << 20
#: a ``--dim`` value as written: ASCII digits (a "-" only to name a negative value out of range)
_DECIMAL = re.compile(r"-?[0-9]+")


def load_model(path: str):
    """Read an ONNX file without its external weight data (only dims and dtypes are needed).

    Only a regular, non-empty file of at most ``MAX_ONNX_BYTES`` that holds a model with a graph is
    accepted: protobuf parses an empty file (and much else) as an empty model, which is no model."""
    onnx = _need_onnx()
    if check_readable(path, InputFormatError, MAX_ONNX_BYTES) == 0:
        raise InputFormatError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # DecodeError, OSError: the file is not an ONNX model
        raise InputFormatError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    _check_has_graph(model, path)
    return model


def _external_tensors(onnx, model):
    """``(what, tensor)`` for every tensor of ``model`` whose data lies in an external file: initializers, sparse
    ones, Constant and other attribute tensors, in subgraphs and local functions too; ``what`` names it as the
    model does (``initializer 'W'``, ``the 'value' tensor of node 'c'``)."""

    def tensor(what: str, t):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            yield what, t

    def graph(g):
        for t in g.initializer:
            yield from tensor(f"initializer {t.name!r}", t)
        for st in g.sparse_initializer:
            yield from tensor(f"sparse initializer {st.values.name!r} (its values)", st.values)
            yield from tensor(f"sparse initializer {st.values.name!r} (its indices)", st.indices)
        yield from nodes(g.node, "")

    def nodes(ns, where: str):
        for n in ns:
            for a in n.attribute:
                what = f"the {a.name!r} tensor of node {n.name or n.op_type!r}{where}"
                for t in [a.t, *a.tensors]:
                    yield from tensor(what, t)
                for st in [a.sparse_tensor, *a.sparse_tensors]:
                    yield from tensor(what, st.values)
                    yield from tensor(what, st.indices)
                for sub in [a.g, *a.graphs]:
                    yield from graph(sub)

    yield from graph(model.graph)
    for f in model.functions:
        yield from nodes(f.node, f" of local function {_function_name(f)}")


def _location(t) -> str:
    """The file name an external tensor's ``location`` entry gives ("" where it has none)."""
    return next((e.value for e in t.external_data if e.key == "location"), "")


def external_data_files(model, folder: str) -> dict[str, str]:
    """``{path: tensor name}`` of every file the model's external data lives in (``_external_tensors``), each
    location joined to the model's ``folder``: the model's own files, which no output may replace. Locations are
    taken as written, even those the importer would refuse to read (outside the folder): an output must not replace
    them either."""
    onnx = _need_onnx()
    found: dict[str, str] = {}
    for _, t in _external_tensors(onnx, model):
        location = _location(t)
        if location and isinstance(location, str) and "\0" not in location:   # (else it names no file)
            for path in (os.path.join(folder, location), _data_path(folder, location)):   # (as written, and
                found.setdefault(path, t.name)   # ``\\`` read as ``/``, as the importer reads it)
    return found


def _location_problem(base_dir: str, model_file: str | None, location: str) -> DataProblem | None:
    """Why external data cannot be loaded from ``location`` in the model's folder ``base_dir`` whatever data file
    were there, or None: it escapes the folder (``_outside_folder``), names something that is no regular file (a
    directory, a named pipe) or the model file itself. A data file that is not there, or too short (truncated, a
    git-lfs pointer), is no problem here: the importer plans from the model alone, without its weights, and a size
    that follows a small tensor whose data it cannot read is refused where it is needed. Nothing is read; only
    files inside the folder are stat'ed."""
    real_dir = os.path.dirname(os.path.realpath(model_file)) if model_file is not None else None
    why = _outside_folder(base_dir, location, real_dir)
    if why is not None:
        return None if why.reason is Reason.MISSING else why
    if model_file is not None and os.path.samefile(_data_path(base_dir, location), model_file):
        return DataProblem(Reason.MODEL_FILE, location)
    return None


def _count_problem(t, location: str) -> DataProblem | None:
    """The first ``offset`` / ``length`` entry of external tensor ``t`` that is no byte count, or None."""
    for e in t.external_data:
        if e.key in ("offset", "length") and (not _DECIMAL.fullmatch(e.value.strip()) or int(e.value) < 0):
            return DataProblem(Reason.NO_BYTE_COUNT, location, e.key, e.value)
    return None


def _check_external_data(onnx, model, base_dir: str | None, model_file: str | None) -> None:
    """GraphError naming the first tensor whose external data cannot be loaded from its location
    (``_location_problem``, each location checked once) or whose ``offset`` / ``length`` is no byte count, before
    anything is inferred. Why: the importer reads no weights, so a location outside the model's folder
    (``../x.bin``, an absolute path, a link out of it), a directory, the model file itself or an offset that is no
    byte count was planned as if the data were there, a model onnxruntime refuses to load; small tensors were
    refused only where they sized something. ``base_dir`` None (a ModelProto without its folder): nothing to
    check against. Its entries are checked in any case (``_check_external_keys``)."""
    for what, t in _external_tensors(onnx, model):
        _check_external_keys(what, t)
    if base_dir is None:
        return
    checked: dict[str, DataProblem | None] = {}
    for what, t in _external_tensors(onnx, model):
        location = _location(t)
        if location not in checked:
            checked[location] = _location_problem(base_dir, model_file, location)
        why = checked[location] or _count_problem(t, location)
        if why is not None:
            ort = "; onnxruntime refuses to load such a model" if why.reason.onnxruntime_refuses else ""
            raise GraphError(f"{what}: its external data is not read: {why}{ort}")


#: the keys of an external tensor's ``external_data`` entries onnxruntime reads; any other one makes it refuse the
#: model ("model format error!"), as does a second ``location``
EXTERNAL_DATA_KEYS = frozenset({"location", "offset", "length", "checksum"})


def _check_external_keys(what: str, t) -> None:
    """GraphError naming external tensor ``t`` (``what``) where its ``external_data`` holds a key onnxruntime does
    not read (``EXTERNAL_DATA_KEYS``: ``basepath``, ``LOCATION``, ``""``) or a second ``location``.

    Why: onnxruntime refuses to load such a model ("TensorProto external data has duplicate 'location' entries",
    "model format error!"), and the importer read the first ``location`` alone (onnx's loader takes the last: a
    second entry ``../x`` was never even looked at) and planned the model."""
    keys = [e.key for e in t.external_data]
    odd = next((k for k in keys if k not in EXTERNAL_DATA_KEYS), None)
    if odd is not None:
        raise GraphError(f"{what}: its external data has an entry {odd!r}, none of "
                         f"{', '.join(sorted(EXTERNAL_DATA_KEYS))}; onnxruntime refuses to load such a model")
    if keys.count("location") > 1:
        places = [e.value for e in t.external_data if e.key == "location"]
        raise GraphError(f"{what}: its external data names {len(places)} locations ({', '.join(map(repr, places))}); "
                         "onnxruntime refuses to load such a model")


def _check_has_graph(model, source: str) -> None:
    """A model without nodes or outputs is no model (what protobuf makes of an empty or foreign message),
    whether it came from a file or from the caller: importing it would give an empty graph."""
    if not model.HasField("graph") or not (len(model.graph.node) or len(model.graph.output)):
        raise InputFormatError(f"{source}: not an ONNX model (it has no graph: no nodes and no outputs)")


@dataclass(frozen=True)
class Spelling:
    """How the import's messages name its two size options: as the Python arguments of ``import_onnx``
    (``dims={'N': VALUE}``, ``batch=N``), or as ``memplan import``'s options (``--dim N=VALUE``, ``--batch N``).
    A library caller told to "pass --dim N=VALUE" was told about an option its call does not have."""

    cli: bool = False

    def dim(self, name: str, value: object = "VALUE") -> str:
        return f"--dim {name}={value}" if self.cli else f"dims={{{name!r}: {value}}}"

    def dim_key(self, name: str) -> str:
        return f"--dim {name}" if self.cli else f"dims[{name!r}]"

    def batch(self, value: object = "N") -> str:
        return f"--batch {value}" if self.cli else f"batch={value}"

    @property
    def batch_option(self) -> str:
        return "--batch" if self.cli else "batch"


PYTHON = Spelling(cli=False)
CLI = Spelling(cli=True)


@named_options
def import_onnx(
    model: Any,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    name: str | None = None,
    alignment: int = DEFAULT_ALIGNMENT,
    progress: Progress | None = None,
    outputs: Mapping[str, str] | None = None,
    external_data_dir: str | os.PathLike | None = None,
    constant_initializers: bool = False,
) -> Graph:
    """Build a validated Graph from an ONNX model (a path or an ``onnx.ModelProto``).

    ``dims`` fixes symbolic dimensions by name; ``batch`` fixes the leading dimension of every graph
    input that is symbolic or unknown (an explicit ``dims`` entry for the same name wins). The model
    passed in is never modified. ``outputs`` (label -> path, as ``files.check_outputs`` takes them): the
    files the caller will write the result to, refused before the import when one is a file the model's
    external data lives in (``memplan import m.onnx -o weights.bin`` replaced the model's weights).
    ``external_data_dir``: for a ModelProto loaded without its external data (``onnx.load(path,
    load_external_data=False)``), the folder of the file it was loaded from, where its small shape tensors'
    data is read as for a model given by path; without it, a size that follows such a tensor is refused.
    ``constant_initializers``: take an initializer the model also lists as a graph input (from IR version 4 a
    default the caller may override) as the constant it holds, as if it were not an input: for exports that list
    every initializer as an input (``keep_initializers_as_inputs``) and never feed them. Without it, a size that
    follows such an input's value is refused as run-time data (a fed value could need more bytes).
    """
    return import_spelled(model, batch=batch, dims=dims, name=name, alignment=alignment, progress=progress,
                          outputs=outputs, spelling=PYTHON, external_data_dir=external_data_dir,
                          constant_initializers=constant_initializers)


def _check_external_data_dir(model: Any, folder: Any) -> str:
    """``external_data_dir`` as a path (``os.fspath``): given only with a ModelProto (a model read from a path
    has its folder), naming an existing directory. Why: a misspelt folder read nothing, and every size that
    follows an external shape tensor was refused as if no folder had been given, blaming the ModelProto."""
    if isinstance(model, (str, os.PathLike)):
        raise OptionError("import_onnx: external_data_dir is for a ModelProto; a model given by its path reads its "
                          "external data from the path's folder (leave external_data_dir out)")
    path = os.fspath(folder) if isinstance(folder, (str, os.PathLike)) else folder
    if not isinstance(path, str) or not path or "\0" in path:
        raise OptionError(f"import_onnx: external_data_dir {_short(path)} is not a folder's path")
    if not os.path.isdir(path):
        raise OptionError(f"import_onnx: external_data_dir {path!r} is not a folder")
    return path


def import_spelled(model: Any, *, batch: int | None, dims: Mapping[str, int] | None, name: str | None,
                   alignment: int, progress: Progress | None, outputs: Mapping[str, str] | None,
                   spelling: Spelling, external_data_dir: str | os.PathLike | None = None,
                   constant_initializers: bool = False) -> Graph:
    """``import_onnx``, its messages naming the size options as ``spelling`` says (``CLI`` for ``memplan
    import``, which has checked its own arguments; ``PYTHON`` for ``import_onnx``)."""
    check_progress(progress, "import_onnx")
    check_alignment(alignment)  # before the model is read and inferred, not after
    if not isinstance(constant_initializers, bool):
        raise OptionError(f"import_onnx: constant_initializers must be True or False, not "
                          f"{_short(constant_initializers)}")
    onnx = _need_onnx()
    source = "model"
    folder = None if external_data_dir is None else _check_external_data_dir(model, external_data_dir)
    base_dir = None if folder is None else os.path.realpath(folder)   # (as the kernel resolves it: ``directory_of``)
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        model = load_model(source)
        default_name = os.path.splitext(os.path.basename(source))[0]
        folder, base_dir = os.path.dirname(source), directory_of(source)
    else:
        if not isinstance(model, onnx.ModelProto):
            raise InputFormatError(f"import_onnx: expected a path or onnx.ModelProto, got {type(model).__name__}")
        _check_has_graph(model, source)
        default_name = model.graph.name or "onnx"
    if constant_initializers:
        model = _initializers_not_inputs(model)
    if outputs and folder is not None:
        check_outputs({f"file holding the external data of {source} (tensor {name!r})": path
                       for path, name in external_data_files(model, folder).items()}, dict(outputs))
    try:
        model_file = None if source == "model" else source
        _check_external_data(onnx, model, base_dir, model_file)
        return _import(onnx, model, source, base_dir, default_name, batch, dims, name, alignment, progress,
                       spelling, model_file and os.path.dirname(os.path.realpath(model_file)))
    except GraphError as exc:
        msg = str(exc)
        raise GraphError(msg if msg.startswith(f"{source}: ") else f"{source}: {msg}") from None


def _import(onnx, model, source: str, base_dir: str | None, default_name: str, batch, dims, name, alignment,
            progress, spelling: Spelling, real_dir: str | None = None) -> Graph:
    fixed = _check_dims_option(batch, dims)
    _check_ir_version(onnx, model)
    _check_opset(onnx, model)
    _check_functions(onnx, model)
    _check_node_names(model)
    model = _check_node_domains(model)
    model = _check_function_opsets(onnx, model)
    model = _bind_function_bodies_to_model_opset(onnx, model)
    model = _inline_functions(model)
    g = model.graph

    _check_text(g)
    init_names = [t.name for t in g.initializer] + [t.values.name for t in g.sparse_initializer]
    inits = set(init_names)
    node_ids = _node_ids(g)
    _check_structure(g, node_ids, inits)
    _check_domain_versions(onnx, g, node_ids, model.opset_import)
    _check_required_names(onnx, g, node_ids, {("" if o.domain == "ai.onnx" else o.domain): o.version
                                              for o in model.opset_import})
    _check_node_schemas(onnx, g, node_ids, model)

    unread: dict[str, str] = {}  # small external tensors whose data was not read: which -> why
    hidden: dict[str, str] = {}   # the values those tensors are (initializers, Constant outputs) -> which
    facts: dict[str, Any] = {"real_dir": real_dir}   # what _infer found: "ort" (whether onnxruntime's shape
    #   inference was there to size its own ops), "data_dependent" (a DataDependent); and "real_dir", the model
    #   file's own folder, its links resolved (``_data_root``)
    seq_bytes: dict[str, list[int]] = {}   # sequence value -> the bytes of each tensor it holds, where known
    inferred = _infer(onnx, model, batch, fixed, inits, source, base_dir, unread, spelling, facts, seq_bytes,
                      hidden)
    shapes = _shapes(g, inferred)

    input_names = [v.name for v in g.input if v.name not in inits]
    output_names = [v.name for v in g.output]
    out_set = set(output_names)

    tensors: list[Tensor] = []
    tindex: dict[str, int] = {}
    declared_dims = {vi.name: [d.dim_param for d in vi.type.tensor_type.shape.dim]
                     for vi in list(g.input) + list(g.output) + list(g.value_info) if vi.type.HasField("tensor_type")}
    dim_names = {d for dims in declared_dims.values() for d in dims if d}
    data_dependent, unread_sized = facts["data_dependent"].sized, facts["data_dependent"].by_unread
    overridable = facts["overridable"]
    # values made by ops onnx does not define (onnxruntime's fused ops: com.microsoft's, and its
    # SimplifiedLayerNormalization in the default domain): sized only by what the model declares
    custom = {o: f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in g.node
              if not onnx.defs.has(n.op_type, "" if n.domain == "ai.onnx" else n.domain) for o in n.output if o}
    ort_ops = {o for n in g.node if _is_ort_op(onnx, n) for o in n.output if o}

    def unknown_why(vname: str) -> str:
        """How the input that alone sizes ``vname`` (``_check_taken``) is unknown, as the general message says it."""
        if vname in unread_sized:
            return f"is held in external data that was not read: {_unread_why(g, vname, hidden, unread)}"
        if vname in data_dependent:
            return ("is computed at run time from what the graph inputs hold"
                    + _overridden_note(g, vname, overridable))
        return ("is not a value the importer knows (a large initializer or one computed by an op it does not "
                "evaluate)")

    def unsized(vname: str) -> str:
        """Why the output of an op onnx does not define has no size: which inference was tried."""
        if custom[vname].startswith(NCHWC_DOMAIN + ":"):
            return (f"{custom[vname]} is onnxruntime's blocked-layout op (saved only at ORT_ENABLE_ALL, its channels "
                    "padded to the block size of the CPU that saved the model: plan the model saved at "
                    "ORT_ENABLE_EXTENDED, or the original), which no shape inference sizes")
        if vname not in ort_ops:
            return f"{custom[vname]} is not an op onnx defines, so its shape inference cannot size it"
        if facts.get("ort"):
            return (f"{custom[vname]} is onnxruntime's op, which neither onnx's nor onnxruntime's shape inference "
                    "could size here")
        return (f"{custom[vname]} is onnxruntime's op, which onnx's shape inference cannot size (with onnxruntime "
                "installed, memplan sizes it by onnxruntime's shape inference: pip install onnxruntime)")

    def sized(vname: str, what: str) -> tuple[int, tuple[int, ...], int]:
        info = shapes.get(vname)
        if info is None:
            why = (f"{unsized(vname)}, and the model declares none in value_info" if vname in custom
                   else "shape inference could not find one")
            raise GraphError(f"{what}: value {vname!r} has no type or shape ({why})")
        elem, shape = info
        if elem == -1 and vname in containers:
            return containers[vname], (), -1
        if elem == -1:
            article = "an" if str(shape)[:1] in "aeiou" else "a"
            raise GraphError(f"{what}: value {vname!r} is {article} {shape}, not a tensor (only tensors are supported)")
        bits = _BITS.get(elem)
        if bits is None:
            raise GraphError(f"{what}: value {vname!r} has dtype {_dtype_name(onnx, elem)}, which has no fixed "
                             "byte size (unsupported)")
        if shape is None:
            why = (_unread_why(g, vname, hidden, unread) if vname in unread_sized else
                   RUN_TIME + _overridden_note(g, vname, overridable) if vname in data_dependent else
                   f"{unsized(vname)}, and the model declares none" if vname in custom else
                   "shape inference could not find its rank")
            raise GraphError(f"{what}: value {vname!r} has no shape: {why}")
        for i, d in enumerate(shape):
            if not isinstance(d, int):
                # only a name the model declares can be fixed; ONNX names the others (unk__0) itself
                declared = declared_dims.get(vname, ())
                d = d if d in dim_names else declared[i] if i < len(declared) else ""
                if vname in data_dependent:  # a --dim would plan one input's length (see DATA_DEPENDENT_OPS)
                    d = ""
                hint = (f" (symbolic {d!r}: pass {spelling.dim(d)})" if d else f": {_unread_why(g, vname, hidden, unread)}"
                        if vname in unread_sized else f": {RUN_TIME}, so no size can be "
                        f"planned{_overridden_note(g, vname, overridable)}" if vname in data_dependent else
                        f": {unsized(vname)}, and the model declares no size for this dimension" if vname in custom
                        else
                        ": ONNX's shape inference could not derive it from the node's inputs, although it does not "
                        "depend on values the graph inputs carry at run time (an op, dtype or attribute beyond what "
                        "onnx's inference and the importer's constant folding follow), so no size can be planned")
                if unread and vname not in unread_sized:  # the likelier cause: a shape constant not read
                    k, why = next(iter(unread.items()))
                    more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
                    hint += f"; note: the external data of {k}{more} was not read: {why}"
                raise GraphError(f"{what}: value {vname!r} dimension {i} is unknown after shape inference{hint}")
            if d < 0:  # checked per dimension: an even number of them multiplies to a plausible size
                raise GraphError(f"{what}: value {vname!r} dimension {i} is negative ({d})")
        return _nbytes(bits, shape), shape, elem

    def add(vname: str, kind: str, what: str, view_of: str | None = None) -> None:
        size, shape, elem = sized(vname, what)
        if elem == -1:
            attrs = {"container": shapes[vname][1]}
        else:
            attrs = {"shape": list(shape), "dtype": _dtype_name(onnx, elem)}
        tindex[vname] = len(tensors)
        tensors.append(Tensor(vname, size, kind, view_of, 0, attrs))

    for v in input_names:
        add(v, "input", f"graph input {v!r}")
        if v in out_set:
            raise GraphError(f"graph output {v!r} is also a graph input: no node produces it (unsupported)")
    read = {v for n in g.node for v in n.input if v} | out_set
    for v in init_names:
        if v not in read and _BITS.get(shapes.get(v, (None, None))[0]) is None:
            continue   # an unused initializer of a type with no byte size (a string table): nothing to plan
        if v in out_set and v in overridable:   # the caller's value fed in its place, returned as it is
            raise GraphError(f"graph output {v!r} is an initializer the caller may override (it is a graph input "
                             "too, ONNX IR version 4 and later): no node produces it (unsupported; if it is a "
                             "constant, import with constant_initializers=True (memplan import "
                             "--constant-initializers))")
        if v not in tindex:   # one the graph also returns stays a weight: it outlives the run anyway
            add(v, "weight", f"initializer {v!r}")

    containers: dict[str, int] = {}  # sequence/optional value -> the bytes of the tensors it holds
    seqs: dict[str, list] = {}   # sequence value -> the (shape, elem) of the tensors it holds, where known
    opset = _default_opset(model)
    nodes: list[Node] = []
    shared_at: list[tuple[int, str, dict[str, str]]] = []  # nodes whose outputs share an input's buffer
    empty_optionals: set[str] = set()   # optionals known to hold nothing (check_empty_optional)
    total = len(g.node)
    for i, n in enumerate(g.node):
        nid = node_ids[i]
        where = f"node {nid!r} ({n.op_type})"
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for o in n.output:
                if o:   # a weight, also where the graph returns it (onnxruntime makes it an initializer)
                    add(o, "weight", where)
            continue
        ins = [v for v in n.input if v]
        outs = [v for v in n.output if v]
        for o in outs:
            if shapes.get(o, (0, None))[0] == -1:
                containers[o] = _container_bytes(n, where, o, shapes[o][1], [tensors[tindex[v]].size for v in ins],
                                                 seq_bytes.get(o))
        _check_slice1(n, where, shapes)
        _check_spec_shape(n, where, shapes, facts["values"], seqs)
        _check_taken(n, where, shapes, facts["values"], seqs, unknown_why)
        _check_range(n, where, facts["values"])
        _check_split_keepdims(n, where, shapes, facts["values"])
        _check_resize_scales(n, where, shapes, facts["values"], opset)
        _check_resize_mode(n, where, shapes, facts["values"], opset)
        check_resize_scale_range(n, where, shapes, facts["values"], opset, _ort_resize_scales)
        check_topk_k(n, where, shapes, facts["values"], opset)
        check_constant_of_shape_value(n, where)
        check_empty_optional(n, where, empty_optionals)
        check_recurrent_operands(n, where, shapes)
        check_unbroadcast_variadic(n, where, shapes, opset)
        check_vector_operands(n, where, shapes)
        _check_ml_node(n, where, shapes)
        _check_window_attributes(n, where)
        _check_transpose_perm(n, where, shapes)
        _check_reduce_axes(n, where, shapes)
        _check_conv(n, where, shapes)
        _check_conv_transpose(n, where, shapes)
        _check_op_attributes(n, where, shapes, facts["values"])
        _check_unique_axis(n, where, shapes)
        _check_block_rearrange(n, where, shapes)
        _check_pad_mode(n, where, shapes, facts["values"], opset)
        _check_kernel_extents(n, where, shapes, facts["values"])
        _check_prelu_slope(n, where, shapes, opset)
        _check_known_indices(n, where, shapes, facts["values"])
        _check_operand_shapes(n, where, shapes, opset)
        _check_quantize_params(n, where, shapes, opset)
        _check_layer_norm_params(n, where, shapes)
        _check_group_norm(n, where, shapes, opset)
        _check_element_operands(n, where, shapes, opset)
        _check_reverse_sequence(n, where, shapes, facts["values"])
        _check_einsum_lengths(n, where, shapes)
        _check_as_standard(n, where, shapes)
        is_view = (n.op_type in ONNX_VIEW_OPS and n.domain in ("", "ai.onnx") and ins and len(outs) == 1)
        if is_view and sized(outs[0], where)[0] != tensors[tindex[ins[0]]].size:
            raise GraphError(f"{where}: output {outs[0]!r} has {sized(outs[0], where)[0]} bytes but its input "
                             f"{ins[0]!r} has {tensors[tindex[ins[0]]].size}: not a valid {n.op_type}")
        shared = _shared_buffers(n)
        for o, v in shared.items():
            if sized(o, where)[0] != tensors[tindex[v]].size:
                raise GraphError(f"{where}: onnxruntime's {n.op_type} writes its output {o!r} into the buffer of its "
                                 f"input {v!r} (it refuses to run unless the two share one), but {o!r} has "
                                 f"{sized(o, where)[0]} bytes and {v!r} {tensors[tindex[v]].size}")
        for o in outs:
            kind = "output" if o in out_set else "intermediate"
            add(o, kind, where, view_of=ins[0] if is_view else shared.get(o))
        in_bytes = sum(tensors[tindex[v]].size for v in dict.fromkeys(ins))
        out_bytes = sum(tensors[tindex[v]].size for v in outs)
        if is_view:
            cost = 0.0
        else:
            flops = _flops(n, [_dims(shapes[v]) for v in ins], [_dims(shapes[v]) for v in outs])
            cost = node_cost(flops, in_bytes + out_bytes)
        nodes.append(Node(nid, n.op_type, tuple(ins), tuple(outs), cost))
        if shared:
            shared_at.append((len(nodes) - 1, where, shared))
        if progress is not None:
            report_progress(progress, i + 1, total, caller="import_onnx (nodes imported, of all)")
    for v in output_names:
        if v not in tindex:
            raise GraphError(f"graph output {v!r} is produced by no node")
    _check_shared_buffers(tensors, tindex, nodes, shared_at)
    return Graph(name if name is not None else default_name, tuple(tensors), tuple(nodes), alignment)


#: onnxruntime's ops whose kernel requires some outputs to share their input's buffer: op -> ((output index,
#: input index), ...). SparseAttention appends the new keys and values to its cache in place and refuses to
#: run ("past_key->DataRaw() == present_key->DataRaw() ... was false") when present and past are two buffers
SHARED_BUFFER_OPS = {"SparseAttention": ((1, 3), (2, 4))}


def _shared_buffers(n) -> dict[str, str]:
    """``{output: input}`` of node ``n`` that its kernel requires to be one buffer (``SHARED_BUFFER_OPS``).

    Why: planned as two tensors, each got its own slot, a plan onnxruntime refuses to run. The contract's
    ``inplace`` only allows the sharing (a planner may or may not take it); a view is the sharing itself: the
    output is made a view (offset 0) of the input, produced by the node, so the input's memory holds it and
    lives until its last reader, as the kernel writes it. Its size must then be the input's (checked by the
    caller)."""
    pairs = SHARED_BUFFER_OPS.get(n.op_type, ()) if n.domain == ORT_DOMAIN else ()
    return {n.output[o]: n.input[i] for o, i in pairs
            if o < len(n.output) and n.output[o] and i < len(n.input) and n.input[i]}


def _check_shared_buffers(tensors: list[Tensor], tindex: dict[str, int], nodes: list[Node],
                          shared_at: list[tuple[int, str, dict[str, str]]]) -> None:
    """Each input whose buffer a node overwrites in place (``_shared_buffers``: its output a view of it) must hold
    nothing any other node, or the model's outputs, reads as its own value: its bytes are the node's output once
    the node runs. Refused, naming the node and the value: an input that is an initializer or Constant (a weight:
    the node would write into the model's constants), one also read by another node or a graph output (of it,
    or of a view of its memory not made from the node's output), or one two outputs share (past key and value
    one tensor, or two nodes' caches).

    Why: the contract orders a read of a buffer before nothing that writes a view of it (only reads after
    writes), so such a reader could run before or after the overwrite, on any stream, and a second writer
    clobbered the first's output; each was planned and verified, and computed other bits than the model
    (onnxruntime runs such a node only on a cache the caller binds as both past and present, read by it
    alone)."""
    def chain(j: int) -> list[int]:   # j, its parent, ... its root
        out = [j]
        while tensors[out[-1]].view_of is not None:
            out.append(tindex[tensors[out[-1]].view_of])
        return out

    if not shared_at:
        return
    chains = [chain(j) for j in range(len(tensors))]
    claimed: dict[int, tuple[str, str]] = {}   # root -> (node, input) that overwrites it
    for _k, where, shared in shared_at:
        for o, v in shared.items():
            root = chains[tindex[v]][-1]
            if tensors[root].kind == "weight":
                raise GraphError(f"{where}: it writes its output {o!r} into the buffer of its input {v!r}, which "
                                 "is an initializer or Constant (a weight): a model's constants are read-only "
                                 "(onnxruntime runs it only on a cache bound as both past and present)")
            if root in claimed:
                raise GraphError(f"{where}: it writes its output {o!r} into the buffer of its input {v!r}, which "
                                 f"{claimed[root][0]} also writes its output into (through {claimed[root][1]!r}): "
                                 "one output would overwrite the other")
            claimed[root] = (where, v)
    presents = {tindex[o] for _k, _w, shared in shared_at for o in shared}
    readers: dict[int, list[int]] = {}   # tensor -> the nodes reading it, in order
    for m, node in enumerate(nodes):
        for x in dict.fromkeys(node.inputs):
            readers.setdefault(tindex[x], []).append(m)
    for k, where, shared in shared_at:
        for o, v in shared.items():
            above = chains[tindex[v]]
            # the tensors on the root that hold the old bytes (not the node's output or a view made from it)
            old = {j for j, c in enumerate(chains) if c[-1] == above[-1] and presents.isdisjoint(c)}
            makers = set(above)   # the nodes making past (or a view above it) run before the node
            for j in sorted(old):
                for m in readers.get(j, ()):
                    node = nodes[m]
                    if m == k or any(tindex[x] in makers for x in node.outputs):
                        continue
                    raise GraphError(f"{where}: it overwrites its input {v!r} in place (its output {o!r} "
                                     f"shares that buffer), but node {node.id!r} ({node.op}) also reads "
                                     f"{tensors[j].id!r}, the old bytes of that buffer: it could read them after the "
                                     "overwrite; give that reader a copy")
            for j in old:
                if tensors[j].kind == "output":
                    raise GraphError(f"{where}: it overwrites its input {v!r} in place (its output {o!r} shares "
                                     f"that buffer), but graph output {tensors[j].id!r} is the old bytes of that "
                                     "buffer: it would end holding the node's output")


#: ops onnxruntime builds with its ``ConvAttributes`` (which refuse ``auto_pad`` with ``pads``), by domain
CONV_ATTRIBUTE_OPS = {"": {"Conv", "ConvInteger", "QLinearConv"}, "ai.onnx": {"Conv", "ConvInteger", "QLinearConv"},
                      "com.microsoft": {"FusedConv"}}
#: pooling ops onnxruntime builds with its ``PoolAttributes`` (which refuse a pad not smaller than the kernel)
POOL_ATTRIBUTE_OPS = frozenset({"MaxPool", "AveragePool", "LpPool", "MaxUnpool"})


REDUCE_OPS = frozenset({"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})


def _check_reduce_axes(n, where: str, shapes: dict) -> None:
    """Refuse, naming the node, a Reduce op, Squeeze or Unsqueeze whose ``axes`` attribute (before it became an input)
    names an axis outside the rank it counts in (its input's; an Unsqueeze's output's): ONNX's inference of those
    opsets does not check it for all of them and sized the output by the axes in range, while onnxruntime refuses to run
    it ("IsAxisInRange(axis, tensor_rank) was false")."""
    if n.op_type not in REDUCE_OPS | {"Squeeze", "Unsqueeze"} or n.domain not in ("", "ai.onnx") or not n.input:
        return
    axes = next((list(a.ints) for a in n.attribute if a.name == "axes"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if not axes or x is None or (not x and n.op_type in REDUCE_OPS):
        return   # (onnxruntime reduces a scalar to itself, whatever axes it is given)
    rank = len(x) + (len(axes) if n.op_type == "Unsqueeze" else 0)
    bad = next((a for a in axes if not -rank <= a < rank), None)
    if bad is not None:
        counted = f"the {rank} dimensions of its output" if n.op_type == "Unsqueeze" else f"the {rank} dimensions of its input"
        raise GraphError(f"{where}: its axes {axes} name axis {bad}, outside {counted} ({n.input[0]!r}: "
                         f"{list(x)}); onnxruntime refuses to run it")


def _check_transpose_perm(n, where: str, shapes: dict) -> None:
    """Refuse, naming the node, a Transpose whose ``perm`` attribute does not name each of its input's dimensions
    (empty, or of another length than the input's rank): onnxruntime refuses to run it ("perm size: 3 does not match
    input rank: 4"), while ONNX's inference reads an empty perm as absent (reverse the dimensions) and sizes a short
    one by the dimensions it names (a ``[2, 1, 1, 1]`` by ``perm=[2, 0, 1]`` was planned ``[1, 2, 1]``)."""
    if n.op_type != "Transpose" or n.domain not in ("", "ai.onnx") or not n.input:
        return
    perm = next((a for a in n.attribute if a.name == "perm"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if perm is None or x is None or len(perm.ints) == len(x):
        return
    raise GraphError(f"{where}: its perm {list(perm.ints)} does not name each of the {len(x)} dimensions of its input "
                     f"{n.input[0]!r}; onnxruntime refuses to run it (\"perm size: {len(perm.ints)} does not match "
                     f"input rank: {len(x)}\"): give a permutation of all of them, or no perm to reverse them")


def _check_window_attributes(n, where: str) -> None:
    """Refuse, naming the node, what onnxruntime refuses in a convolution's or pool's attributes alone when it builds
    the kernel: a Conv (ConvInteger, QLinearConv, ``com.microsoft:FusedConv``) with both ``auto_pad`` (other than
    ``NOTSET``) and ``pads``, even all zero ("A Conv/ConvTranspose node has both 'auto_pad' and 'pads' attributes");
    a MaxPool, AveragePool, LpPool or MaxUnpool with a pad not smaller than its kernel along that axis ("Pad should be smaller
    than kernel"), whatever its ``auto_pad``.

    Why: ONNX's inference allows both (Conv takes ``auto_pad`` and ignores ``pads``; a pool pads by them), so they were
    planned, and onnxruntime refuses to load the model."""
    attrs = {a.name: a for a in n.attribute}
    if "pads" not in attrs:
        return
    pads = list(attrs["pads"].ints)
    if n.op_type in CONV_ATTRIBUTE_OPS.get(n.domain, ()):
        auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
        if auto_pad not in ("NOTSET", ""):
            raise GraphError(f"{where}: it has both auto_pad {auto_pad} and pads {pads}; onnxruntime refuses to load "
                             "it (\"A Conv/ConvTranspose node has both 'auto_pad' and 'pads' attributes\"): drop one")
    elif n.op_type in POOL_ATTRIBUTE_OPS and n.domain in ("", "ai.onnx") and "kernel_shape" in attrs:
        kernel = list(attrs["kernel_shape"].ints)
        k = len(kernel)
        if len(pads) != 2 * k:
            return   # (ONNX's inference refuses it)
        big = next((i for i in range(2 * k) if pads[i] >= kernel[i % k]), None)
        if big is not None:
            raise GraphError(f"{where}: its pad {pads[big]} (pads {pads}) is not smaller than its kernel's "
                             f"{kernel[big % k]} along spatial axis {big % k}; onnxruntime refuses to load it (\"Pad "
                             "should be smaller than kernel\")")


def _check_conv(n, where: str, shapes: dict) -> None:
    """A Conv (or onnxruntime's FusedConv, sized as one) whose input, weight and attributes onnxruntime's kernel
    refuses (``ConvAttributes``: ``ValidateInputShape``, ``ComputeKernelShape``, ``InferPadsAndOutputShape``) is
    refused as it is, naming the node: ONNX's inference checks none of these and sized an output onnxruntime
    never writes (a weight of the wrong channel count or ``kernel_shape``, a dilated ``SAME_*`` padding, an
    input smaller than the dilated kernel: a zero-sized output). Checked only where the shapes are static."""
    if not ((n.op_type == "Conv" and n.domain in ("", "ai.onnx")) or (n.op_type == "FusedConv"
                                                                       and n.domain == ORT_DOMAIN)):
        return
    if len(n.input) < 2 or not n.input[0] or not n.input[1]:
        return
    x, w = (shapes.get(v, (0, None))[1] for v in n.input[:2])
    if not isinstance(x, tuple) or not isinstance(w, tuple) or not all(isinstance(d, int) for d in (*x, *w)):
        return
    attrs = {a.name: a for a in n.attribute}
    ints = (lambda k, default: list(attrs[k].ints) if k in attrs else default)   # noqa: E731
    group = attrs["group"].i if "group" in attrs else 1
    auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
    why = ""
    if len(x) != len(w):
        why = f"its input {n.input[0]!r} ({list(x)}) and weight {n.input[1]!r} ({list(w)}) differ in rank"
    elif len(x) < 3:
        return   # (ONNX's inference refuses it)
    elif group < 1 or x[1] != w[1] * group:
        why = (f"its input {n.input[0]!r} has {x[1]} channels, not its weight {n.input[1]!r}'s {w[1]} per group "
               f"times group {group}")
    elif w[0] % group:
        why = f"its weight {n.input[1]!r} has {w[0]} output channels, not divisible by group {group}"
    elif _bias_shape(n, shapes) not in (None, (w[0],)):
        why = (f"its bias {n.input[2]!r} ({list(_bias_shape(n, shapes))}) is not 1-D of its {w[0]} output channels "
               f"(weight {n.input[1]!r}: {list(w)})")
    elif "kernel_shape" in attrs and ints("kernel_shape", []) != list(w[2:]):
        why = f"its kernel_shape {ints('kernel_shape', [])} is not its weight's {list(w[2:])}"
    else:
        spatial = len(x) - 2
        dil, pads = ints("dilations", [1] * spatial), ints("pads", [0] * 2 * spatial)
        if len(dil) != spatial or len(pads) != 2 * spatial:
            return   # (ONNX's inference refuses it)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and any(d != 1 for d in dil):
            why = f"its auto_pad {auto_pad} with dilations {dil} (onnxruntime supports only dilation 1 there)"
        elif auto_pad in ("NOTSET", "VALID"):
            total = [0] * spatial if auto_pad == "VALID" else [pads[i] + pads[i + spatial] for i in range(spatial)]
            small = [i for i in range(spatial) if x[2 + i] + total[i] < dil[i] * (w[2 + i] - 1) + 1]
            if small:
                i = small[0]
                why = (f"its input {n.input[0]!r} ({list(x)}) is, padded, {x[2 + i] + total[i]} along dimension "
                       f"{2 + i}, smaller than its kernel's {dil[i] * (w[2 + i] - 1) + 1} (dilated): an empty output")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _bias_shape(n, shapes: dict) -> tuple | None:
    """The static shape of a Conv's or ConvTranspose's bias (input 2), None where it has none or it is not static."""
    b = shapes.get(n.input[2], (0, None))[1] if len(n.input) > 2 and n.input[2] else None
    return tuple(b) if b is not None and all(isinstance(d, int) for d in b) else None


def _check_conv_transpose(n, where: str, shapes: dict) -> None:
    """A ConvTranspose whose input's channels are not its weight's first dimension, whose ``kernel_shape`` is not its
    weight's, or whose bias is not 1-D of its output channels (weight's second dimension times ``group``), is
    refused naming the node, where the shapes are static. Why: ONNX's inference checks none of these (it sizes the
    output by the weight and attributes) and memplan planned them; onnxruntime refuses to run them ("filter number
    not equal to input channel number", "kernel_shape is not compatible with W shape", "Bias shape is not
    compatible with number of output channels")."""
    if n.op_type != "ConvTranspose" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x, w = (shapes.get(v, (0, None))[1] for v in n.input[:2])
    if x is None or w is None or not all(isinstance(d, int) for d in (*x, *w)) or len(x) != len(w) or len(x) < 3:
        return
    attrs = {a.name: a for a in n.attribute}
    group = attrs["group"].i if "group" in attrs else 1
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else list(w[2:])
    why = ""
    if x[1] != w[0]:
        why = f"its input {n.input[0]!r} ({list(x)}) has {x[1]} channels, not its weight {n.input[1]!r}'s {w[0]}"
    elif kernel != list(w[2:]):
        why = f"its kernel_shape {kernel} is not its weight's {list(w[2:])}"
    elif _bias_shape(n, shapes) not in (None, (w[1] * group,)):
        why = (f"its bias {n.input[2]!r} ({list(_bias_shape(n, shapes))}) is not 1-D of its {w[1] * group} output "
               f"channels (weight {n.input[1]!r}: {list(w)}, group {group})")
    else:
        why = _conv_transpose_refused(attrs, list(x[2:]), kernel)
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")
    y = shapes.get(n.output[0], (0, None))[1] if n.output and n.output[0] else None
    ort = [x[0], w[1] * group, *_conv_transpose_dims(attrs, list(x[2:]), kernel)]
    if y is not None and all(isinstance(d, int) for d in y) and (len(y) != len(ort) or math.prod(y) < math.prod(ort)):
        raise GraphError(f"{where}: its output {n.output[0]!r} is sized {list(y)}, but onnxruntime writes {ort}: a "
                         "plan of that size would not hold it")


def _conv_transpose_attrs(attrs: dict, spatial: int) -> tuple[list[int], list[int], list[int], list[int], str]:
    """(strides, dilations, output_padding, pads, auto_pad) of a ConvTranspose's ``attrs``, with their defaults."""
    ints = (lambda k, default: list(attrs[k].ints) if k in attrs else default)   # noqa: E731
    auto_pad = attrs["auto_pad"].s.decode(errors="replace") if "auto_pad" in attrs else "NOTSET"
    return (ints("strides", [1] * spatial), ints("dilations", [1] * spatial), ints("output_padding", [0] * spatial),
            ints("pads", [0] * 2 * spatial), auto_pad or "NOTSET")


def _conv_transpose_dims(attrs: dict, x: list[int], kernel: list[int]) -> list[int]:
    """The spatial dimensions onnxruntime's ConvTranspose kernel makes of spatial input dimensions ``x`` (its
    ``ComputeTransposePadAndOutputShape``): ``output_shape`` where given (its padding computed from it, at least 0);
    with ``SAME_*`` the smaller of ``in * stride`` and the unpadded size; with ``VALID`` the unpadded size; else the
    unpadded size less ``pads``. The unpadded size is ``(in - 1) * stride + (kernel - 1) * dilation + 1 +
    output_padding``. Checked against onnxruntime 1.32 on 3,000 random 1-D cases."""
    spatial = len(x)
    strides, dilations, adj, pads, auto_pad = _conv_transpose_attrs(attrs, spatial)
    out = list(attrs["output_shape"].ints) if "output_shape" in attrs else []
    if len(out) == spatial + 2:
        out = out[2:]
    dims = []
    for i in range(spatial):
        full = (x[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 + adj[i]
        if out:
            dims.append(out[i])
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            dims.append(min(x[i] * strides[i], full))
        elif auto_pad == "VALID":
            dims.append(full)
        else:
            dims.append(full - pads[i] - pads[i + spatial])
    return dims


def _conv_transpose_refused(attrs: dict, x: list[int], kernel: list[int]) -> str:
    """Why onnxruntime's kernel refuses to run a ConvTranspose of ``attrs`` on spatial input dimensions ``x`` (an
    ``output_padding`` not below the stride, or the dilation; an output dimension not positive; an ``output_shape`` or
    ``output_padding`` from which its check computes back another input size); empty where it runs it. ONNX's
    inference checks none of them, and sizes the output from the attributes alone."""
    spatial = len(x)
    strides, dilations, adj, pads, auto_pad = _conv_transpose_attrs(attrs, spatial)
    out = list(attrs["output_shape"].ints) if "output_shape" in attrs else []
    if not len(strides) == len(dilations) == len(adj) == len(kernel) == spatial or len(pads) != 2 * spatial \
            or min(strides, default=1) < 1 or min(dilations, default=1) < 1:
        return ""   # (ONNX's inference refuses them)
    if out and len(out) != spatial:
        return (f"its output_shape {out} does not give one size per spatial dimension ({spatial}) (onnxruntime's "
                "shape inference: \"Attribute output_shape has incorrect size\")")
    dims = _conv_transpose_dims(attrs, x, kernel)
    for i in range(spatial):
        if adj[i] >= max(strides[i], dilations[i]):
            return (f"its output_padding {adj[i]} along spatial dimension {i} is not less than max(stride, dilation) "
                    f"({max(strides[i], dilations[i])})")
        reach = (kernel[i] - 1) * dilations[i] + 1
        full = (x[i] - 1) * strides[i] + reach + adj[i]
        if dims[i] <= 0:
            return f"its output would be {dims[i]} long along spatial dimension {i} (input {x[i]})"
        padding = max(0, full - dims[i]) if out or auto_pad != "NOTSET" else pads[i] + pads[i + spatial]
        if (dims[i] + padding - reach) // strides[i] + 1 != x[i]:
            given = f"output_shape {out}" if out else f"output_padding {adj}"
            return (f"its {given} makes a spatial dimension {i} of {dims[i]}, from which onnxruntime computes back an "
                    f"input of {(dims[i] + padding - reach) // strides[i] + 1}, not its input's {x[i]}")
    return ""


def _check_op_attributes(n, where: str, shapes: dict, values: dict) -> None:
    """An ``axis`` outside its input's rank for LpNormalization (attribute) and CumSum (known input), an LRN whose
    ``size`` is not odd and positive, and an ArgMax/ArgMin along an axis of no element (the others holding some)
    are refused naming the node.

    Why: ONNX's inference checks none of these (it gives the output the input's shape, or drops the axis) and memplan
    planned them; onnxruntime refuses to run them ("axis must be in [-r, r-1]", LRN's "size > 0" and "size % 2 ==
    1", an arg-reduction of an empty axis)."""
    import numpy as np

    if n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    op = n.op_type
    if op not in ("LpNormalization", "CumSum", "LRN", "ArgMax", "ArgMin"):
        return
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    if op == "LRN":
        size = attrs.get("size")
        if size is not None and (size <= 0 or size % 2 == 0):
            raise GraphError(f"{where}: its size {size} is not an odd positive count; onnxruntime refuses to run it")
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None:
        return
    if op == "CumSum":
        v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        if v is None or np.asarray(v).size != 1 or np.asarray(v).dtype.kind not in "iu":
            return
        axis = int(np.asarray(v).reshape(-1)[0])
    else:
        axis = attrs.get("axis", -1 if op == "LpNormalization" else 0)
    if not -len(x) <= axis < len(x):
        raise GraphError(f"{where}: its axis {axis} is outside its input {n.input[0]!r}'s {len(x)} dimensions "
                         f"({list(x)}); onnxruntime refuses to run it")
    if op in ("ArgMax", "ArgMin") and x[axis] == 0 and all(isinstance(d, int) for d in x) and math.prod(
            d for k, d in enumerate(x) if k != axis % len(x)) > 0:   # (an output of no element is written)
        raise GraphError(f"{where}: it reduces axis {axis} of its input {n.input[0]!r} ({list(x)}), which holds no "
                         "element, to an index per position of the others; onnxruntime refuses to run it")


def _check_unique_axis(n, where: str, shapes: dict) -> None:
    """A Unique along an ``axis`` whose length is not 0 while the dimensions after it multiply to 0 (``[3, 0]`` or
    ``[2, 0, 2]`` along axis 0) is refused, naming the node.

    Why: onnxruntime's kernel does not refuse such a Unique, it kills the whole process running it (a failed
    internal check, SIGABRT); memplan planned the model silently, a plan no runtime can use."""
    if n.op_type != "Unique" or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    shape = shapes.get(n.input[0], (0, None))[1]
    if axis is None or shape is None or not all(isinstance(d, int) for d in shape) or not -len(shape) <= axis < len(shape):
        return
    at = axis + (len(shape) if axis < 0 else 0)
    if shape[at] > 0 and math.prod(shape[at + 1:]) == 0:
        raise GraphError(f"{where}: a Unique along axis {axis} of {n.input[0]!r} ({list(shape)}), whose "
                         f"dimensions after the axis hold no element while the axis has {shape[at]}: onnxruntime "
                         "cannot run it (it aborts the process)")


def _check_block_rearrange(n, where: str, shapes: dict) -> None:
    """A DepthToSpace whose channels are no multiple of ``blocksize`` squared, or a SpaceToDepth whose height or width is no
    multiple of ``blocksize``, is refused naming the node. Checked where the input's shape is static.

    Why: ONNX's inference divides and rounds down (a DepthToSpace of ``[1, 6, 2, 2]`` by 2 was planned ``[1, 1, 4, 4]``,
    64 bytes of the input's 96), while onnxruntime refuses to run it ("DepthToSpace requires input depth to be a
    multiple of (block_size * block_size)", "SpaceToDepth requires input height to be a multiple of block_size")."""
    if n.op_type not in ("DepthToSpace", "SpaceToDepth") or n.domain not in ("", "ai.onnx") or not n.input:
        return
    bs = next((a.i for a in n.attribute if a.name == "blocksize"), None)
    x = shapes.get(n.input[0], (0, None))[1]
    if not bs or bs < 1 or x is None or len(x) != 4 or not all(isinstance(d, int) for d in x):
        return   # (ONNX's inference refuses a missing or non-positive blocksize and another rank)
    if n.op_type == "DepthToSpace" and x[1] % (bs * bs):
        why = f"its input {n.input[0]!r} ({list(x)}) has {x[1]} channels, no multiple of blocksize {bs} squared"
    elif n.op_type == "SpaceToDepth" and (x[2] % bs or x[3] % bs):
        why = f"its input {n.input[0]!r} ({list(x)}) has height {x[2]} and width {x[3]}, not both multiples of blocksize {bs}"
    else:
        return
    raise GraphError(f"{where}: {why}; onnxruntime refuses to run it (ONNX's inference rounds the output down)")


def _check_operand_shapes(n, where: str, shapes: dict, opset: int) -> None:
    """A Gemm whose bias ``C`` does not broadcast to its ``[M, N]`` product (one way: ``[2]`` for ``[2, 4]``, a rank
    over 2), or an InstanceNormalization whose input has fewer than 3 dimensions or whose ``scale`` or ``B`` is not
    1-D of the input's channel count, is refused naming the node, where the shapes are static.

    Why: ONNX's inference sizes both by their first input(s) and checks nothing of these operands; memplan planned
    them, and onnxruntime refuses to run them ("Gemm: Invalid bias shape for broadcast", "Mismatch between input
    data and scale: size of scale != input channel count")."""
    if n.domain not in ("", "ai.onnx") or n.op_type not in ("Gemm", "InstanceNormalization") or len(n.input) < 3:
        return
    got = [shapes.get(v, (0, None))[1] if v else None for v in n.input[:3]]
    if any(d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    why = ""
    if n.op_type == "Gemm" and opset >= 7 and len(got[0]) == 2 and len(got[1]) == 2:
        attrs = {a.name: a.i for a in n.attribute if a.name in ("transA", "transB")}
        mn = (got[0][1] if attrs.get("transA") else got[0][0], got[1][0] if attrs.get("transB") else got[1][1])
        c = got[2]
        if len(c) > 2 or any(d not in (1, t) for d, t in zip(reversed(c), reversed(mn))):
            why = f"its bias {n.input[2]!r} ({list(c)}) does not broadcast to its product's shape {list(mn)}"
    elif n.op_type == "InstanceNormalization":
        x = got[0]
        if len(x) < 3:
            why = f"its input {n.input[0]!r} ({list(x)}) has fewer than 3 dimensions"
        else:
            bad = next((k for k in (1, 2) if len(got[k]) != 1 or got[k][0] != x[1]), None)
            if bad is not None:
                why = (f"its {('scale', 'B')[bad - 1]} {n.input[bad]!r} ({list(got[bad])}) is not 1-D of the {x[1]} "
                       f"channels of its input {n.input[0]!r} ({list(x)})")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_einsum_lengths(n, where: str, shapes: dict) -> None:
    """An Einsum whose inputs give one label two lengths neither of which is 1 (``ij,jk`` of ``[2, 3]`` and
    ``[4, 5]``), or whose term repeats a label over two lengths (``ii`` of ``[2, 1]``), is refused naming the node and
    the label, where the shapes are static.

    Why: ONNX's inference takes each label's first length and checks nothing; memplan planned such an Einsum, and
    onnxruntime refuses to run it ("Einsum operands could not be broadcast together")."""
    if n.op_type != "Einsum" or n.domain not in ("", "ai.onnx") or not n.input:
        return
    equation = next((a.s for a in n.attribute if a.name == "equation"), b"").decode("utf-8", "replace")
    parsed = _einsum_terms(equation)
    got = [shapes.get(v, (0, None))[1] for v in n.input]
    if parsed is None or len(parsed[0]) != len(n.input) or any(
            d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    seen: dict[str, tuple[int, str]] = {}
    for term, v, shape in zip(parsed[0], n.input, got):
        labels = _einsum_labels(term, len(shape))
        if labels is None:
            return   # (ONNX's inference refuses it)
        own: dict[str, int] = {}
        for c, d in zip(labels, shape):
            if c is not None and own.setdefault(c, d) != d:   # (a diagonal: its lengths must be equal, 1 or not)
                raise GraphError(f"{where}: its label {c!r} appears twice in the term of {v!r} ({list(shape)}) with "
                                 f"lengths {own[c]} and {d}; onnxruntime refuses to run it")
            if c is None or d == 1:
                continue
            if c in seen and seen[c][0] != d:
                raise GraphError(f"{where}: its label {c!r} has length {seen[c][0]} in {seen[c][1]!r} and {d} in {v!r}; "
                                 "onnxruntime refuses to run it")
            seen.setdefault(c, (d, v))


def _check_reverse_sequence(n, where: str, shapes: dict, values: dict) -> None:
    """A ReverseSequence whose ``sequence_lens`` is not 1-D of its input's batch length (static shapes), or holds a
    known length outside ``0..time`` (the input's length along ``time_axis``), is refused naming the node.

    Why: ONNX's inference gives the output the input's shape and checks neither; memplan planned such nodes, and
    onnxruntime refuses to run them ("sequence_lens shape must be {batch_size}", "Invalid sequence length")."""
    import numpy as np

    if n.op_type != "ReverseSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x, lens = (shapes.get(v, (0, None))[1] if v else None for v in n.input[:2])
    if x is None or len(x) < 2 or not all(isinstance(d, int) for d in x):
        return
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    batch, time = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
    if {batch, time} - {0, 1} or batch == time:
        return   # (ONNX's inference refuses them)
    why = ""
    if lens is not None and all(isinstance(d, int) for d in lens) and tuple(lens) != (x[batch],):
        why = (f"its sequence_lens {n.input[1]!r} is {list(lens)}, not [{x[batch]}], the batch length of its input "
               f"{n.input[0]!r} ({list(x)})")
    elif n.input[1] in values:
        v = np.asarray(values[n.input[1]]).reshape(-1)
        out = v[(v < 0) | (v > x[time])] if v.dtype.kind in "iu" else v[:0]
        if out.size:
            why = (f"its sequence_lens {n.input[1]!r} hold {int(out[0])}, outside 0..{x[time]}, the length of its "
                   f"input {n.input[0]!r} ({list(x)}) along time axis {time}")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_element_operands(n, where: str, shapes: dict, opset: int) -> None:
    """Operand shapes onnxruntime's kernels refuse and ONNX's inference does not check, refused naming the node where
    the shapes are static: a Clip (opset 11 on) whose ``min`` or ``max`` is neither a scalar nor of shape ``[1]``; a
    GatherElements or ScatterElements whose indices differ in rank from the data or exceed it in a dimension other
    than ``axis``, a ScatterElements whose updates are not the indices' shape; a ScatterND whose updates are not
    ``indices.shape[:-1] + data.shape[k:]``; a floating Mod without ``fmod=1``.

    Why: ONNX's inference sizes each by its first input and memplan planned them, while onnxruntime refuses to run
    them ("min should be a scalar", "'indices' shape should have values within bounds of 'data' shape", "Indices vs
    updates dimensions differs", "fmod attribute must be true for float, float16 and double types")."""
    op = n.op_type
    if n.domain not in ("", "ai.onnx") or op not in ("Clip", "GatherElements", "ScatterElements", "ScatterND", "Mod"):
        return

    def static(k: int):
        v = n.input[k] if k < len(n.input) else ""
        d = shapes.get(v, (0, None))[1] if v else None
        return tuple(d) if d is not None and all(isinstance(e, int) for e in d) else None

    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    why = ""
    if op == "Clip" and opset >= 11:
        for k, what in ((1, "min"), (2, "max")):
            d = static(k)
            if d is not None and d not in ((), (1,)):
                why = f"its {what} {n.input[k]!r} ({list(d)}) is neither a scalar nor of shape [1]"
                break
    elif op == "Mod":
        elem = shapes.get(n.input[0], (0, None))[0] if n.input and n.input[0] else 0
        if elem in (1, 10, 11, 16) and not attrs.get("fmod", 0):
            why = "it takes the remainder of floating values without fmod=1"
    elif op in ("GatherElements", "ScatterElements"):
        data, idx = static(0), static(1)
        if data is None or idx is None:
            return
        axis = attrs.get("axis", 0)
        axis += len(data) if axis < 0 else 0
        if len(idx) != len(data):
            why = f"its indices {n.input[1]!r} ({list(idx)}) differ in rank from its data {n.input[0]!r} ({list(data)})"
        elif any(i > d for k, (i, d) in enumerate(zip(idx, data)) if k != axis):
            why = (f"its indices {n.input[1]!r} ({list(idx)}) exceed its data {n.input[0]!r} ({list(data)}) in a "
                   f"dimension other than axis {axis}")
        elif op == "ScatterElements" and static(2) is not None and static(2) != idx:
            why = f"its updates {n.input[2]!r} ({list(static(2))}) are not its indices' shape {list(idx)}"
    else:   # ScatterND
        data, idx, upd = static(0), static(1), static(2)
        if data is None or idx is None or upd is None or not idx or idx[-1] > len(data):
            return   # (ONNX's inference refuses an index longer than the data's rank)
        want = idx[:-1] + data[idx[-1]:]
        if upd != want:
            why = (f"its updates {n.input[2]!r} ({list(upd)}) are not {list(want)} (its indices' {list(idx[:-1])} and "
                   f"its data's dimensions after the first {idx[-1]})")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_group_norm(n, where: str, shapes: dict, opset: int) -> None:
    """A GroupNormalization whose ``num_groups`` does not divide its input's channels (or is not positive), or whose
    ``scale`` or ``bias`` holds neither one value per group (opsets 18-20) or per channel (21 on) nor one for all, is
    refused naming the node, where the shapes are static.

    Why: ONNX's inference (and memplan's rule, ``SAME_SHAPE_OPS``) give the output the input's shape and check
    nothing of these; onnxruntime, which runs the op's function body, refuses to run them (its Reshape to the groups
    fails)."""
    if n.op_type != "GroupNormalization" or n.domain not in ("", "ai.onnx") or len(n.input) < 3:
        return
    x, scale, bias = (shapes.get(v, (0, None))[1] if v else None for v in n.input[:3])
    if x is None or len(x) < 2 or not all(isinstance(d, int) for d in x):
        return
    groups = next((a.i for a in n.attribute if a.name == "num_groups"), None)
    if groups is None:
        return   # (the checker refuses a missing required attribute)
    why = ""
    if groups <= 0 or x[1] % groups:
        why = f"its num_groups {groups} does not divide the {x[1]} channels of its input {n.input[0]!r} ({list(x)})"
    else:
        want, per = (x[1], "channel") if opset >= 21 else (groups, "group")
        for v, shape, what in ((n.input[1], scale, "scale"), (n.input[2], bias, "bias")):
            if shape is not None and all(isinstance(d, int) for d in shape) and math.prod(shape) not in (want, 1):
                why = f"its {what} {v!r} ({list(shape)}) holds neither one value per {per} ({want}) nor one for all"
                break
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_layer_norm_params(n, where: str, shapes: dict) -> None:
    """A LayerNormalization whose ``Scale`` or ``B`` does not broadcast (one way) to its input ``X`` (``[5]`` or
    ``[2, 4]`` for a ``[2, 3, 4]``, a rank over X's) is refused naming the node, where the shapes are static.

    Why: ONNX's inference gives the output X's shape and checks nothing of the others; memplan planned such nodes,
    and onnxruntime refuses to run them ("Scale and (optional) bias must match X.shape[axis:] or be
    NumPy-broadcastable to it")."""
    if n.op_type != "LayerNormalization" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
        return
    x = shapes.get(n.input[0], (0, None))[1]
    axis = next((a.i for a in n.attribute if a.name == "axis"), -1)
    if x is not None and not -len(x) <= axis < len(x):
        # (ONNX's function-body inference sizes Y as X whatever the axis; onnxruntime: "Unexpected axis value")
        raise GraphError(f"{where}: its axis {axis} is outside its input {n.input[0]!r}'s {len(x)} dimensions "
                         f"({list(x)}); onnxruntime refuses to run it")
    if x is None or not all(isinstance(d, int) for d in x):
        return
    for k, what in ((1, "scale"), (2, "bias")):
        v = n.input[k] if k < len(n.input) else ""
        s = shapes.get(v, (0, None))[1] if v else None
        if s is None or not all(isinstance(d, int) for d in s):
            continue
        if len(s) > len(x) or any(d not in (1, t) for d, t in zip(reversed(s), reversed(x))):
            raise GraphError(f"{where}: its {what} {v!r} ({list(s)}) does not broadcast to its input {n.input[0]!r} "
                             f"({list(x)}); onnxruntime refuses to run it")


def _check_quantize_params(n, where: str, shapes: dict, opset: int) -> None:
    """A QuantizeLinear or DequantizeLinear (opset 13 on) whose ``scale`` or zero point does not fit its input as
    onnxruntime's kernel reads them is refused naming the node, where the shapes are static: per tensor (a scale of
    one element), the zero point of one element too; per axis, a 1-D scale (and zero point) of the input's length
    along ``axis``; blocked (``block_size`` > 0, opset 21 on), a scale of the input's rank, ``ceil(dim / block_size)``
    along ``axis`` and the input's dimensions elsewhere, and a zero point of the scale's shape.

    Why: ONNX's inference sizes the output by the input alone and memplan planned such nodes (a per-axis scale of
    ``[3]`` for ``[2, 4]`` along axis 1, a blocked scale with a scalar zero point), while onnxruntime refuses to run
    them ("scale must be 1D tensor with size 4", "x_zero_point must be null or 1D tensor with size 4")."""
    if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or n.domain not in ("", "ai.onnx") or opset < 13:
        return
    if len(n.input) < 2 or not n.input[0] or not n.input[1]:
        return
    got = [shapes.get(v, (0, None))[1] if v else () for v in (list(n.input[:3]) + [""] * 3)[:3]]
    if any(d is None or not all(isinstance(k, int) for k in d) for d in got):
        return
    x, scale, zp = got
    zero = n.input[2] if len(n.input) > 2 and n.input[2] else None
    attrs = {a.name: a.i for a in n.attribute if a.type == 2}
    axis, block = attrs.get("axis", 1), attrs.get("block_size", 0) if opset >= 21 else 0
    one = (lambda d: len(d) == 0 or (len(d) == 1 and d[0] == 1))   # noqa: E731 - a scalar or one-element vector
    why = ""
    if block > 0 or not one(scale):
        if not -len(x) <= axis < len(x):
            return   # (ONNX's inference refuses it)
        axis += len(x) if axis < 0 else 0
        want = (tuple(-(-d // block) if k == axis else d for k, d in enumerate(x)) if block > 0 else (x[axis],))
        how = f"blocked by {block} along axis {axis}" if block > 0 else f"per axis {axis}"
        if tuple(scale) != want:
            why = f"its scale {n.input[1]!r} is {list(scale)}, where {how} of its input {n.input[0]!r} ({list(x)}) takes {list(want)}"
        elif zero is not None and tuple(zp) != want:
            why = (f"its zero point {zero!r} is {list(zp)}, where {how} of its input {n.input[0]!r} ({list(x)}) takes "
                   f"{list(want)}, its scale's shape")
    elif zero is not None and not one(zp):
        why = f"its zero point {zero!r} is {list(zp)}, where its scale {n.input[1]!r} ({list(scale)}) is one value"
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


#: ops that index their data input (0) by an indices input (1) along one ``axis`` (attribute, default 0)
AXIS_INDEXED_OPS = frozenset({"Gather", "GatherElements", "Scatter", "ScatterElements"})


def _check_known_indices(n, where: str, shapes: dict, values: dict) -> None:
    """A Gather, GatherElements, Scatter, ScatterElements, GatherND or ScatterND whose indices are known (a constant,
    an initializer, a value folded from shapes) and address an element outside its data's static dimension (an
    index ``i`` of a dimension of ``d`` not in ``-d..d-1``) is refused naming the node, the index and the dimension.

    Why: ONNX's inference sizes these by shapes alone and memplan planned them, while onnxruntime refuses to run
    them ("indices element out of data bounds, idx=3 must be within the inclusive range [-3,2]", "invalid index
    found"): a model whose every run fails."""
    import numpy as np

    op = n.op_type
    if n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[0] or n.input[1] not in values:
        return
    if op not in AXIS_INDEXED_OPS and op not in ("GatherND", "ScatterND"):
        return
    data = shapes.get(n.input[0], (0, None))[1]
    idx = np.asarray(values[n.input[1]])
    if data is None or not all(isinstance(d, int) for d in data) or idx.dtype.kind not in "iu" or idx.size == 0:
        return
    attrs = {a.name: a.i for a in n.attribute if a.name in ("axis", "batch_dims")}
    if op in AXIS_INDEXED_OPS:
        axis = attrs.get("axis", 0)
        if not -len(data) <= axis < len(data):
            return   # (ONNX's inference refuses it)
        axis += len(data) if axis < 0 else 0
        columns = [(axis, idx.reshape(-1))]
    else:
        if idx.ndim < 1:
            return
        first = attrs.get("batch_dims", 0) if op == "GatherND" else 0
        k = idx.shape[-1]
        if first < 0 or first + k > len(data):
            return   # (ONNX's inference refuses it)
        flat = idx.reshape(-1, k)
        columns = [(first + j, flat[:, j]) for j in range(k)]
    for dim, col in columns:
        d = data[dim]
        out = col[(col < -d) | (col >= d)]
        if out.size:
            raise GraphError(f"{where}: its indices {n.input[1]!r} hold {int(out[0])}, outside dimension {dim} of its "
                             f"data {n.input[0]!r} ({list(data)}: -{d}..{d - 1}); onnxruntime refuses to run it")


def _check_prelu_slope(n, where: str, shapes: dict, opset: int) -> None:
    """A PRelu (opset 7 on) whose input and slope do not broadcast (``[2, 3]`` by ``[2]``) is refused naming the node,
    where both shapes are static. Why: ONNX's inference checks nothing of the slope and planned ``X``'s shape;
    onnxruntime's kernel broadcasts the two and refuses to run it ("axis == 1 || axis == largest"). (PRelu-1 and -6
    apply a slope per channel, ``[3]`` to ``[2, 3, 4]``.)"""
    if n.op_type != "PRelu" or n.domain not in ("", "ai.onnx") or len(n.input) != 2 or opset < 7:
        return
    x, slope = (shapes.get(v, (0, None))[1] for v in n.input)
    if (x is None or slope is None or not all(isinstance(d, int) for d in (*x, *slope))
            or _broadcast([x, slope]) is not None):
        return
    raise GraphError(f"{where}: its input {n.input[0]!r} ({list(x)}) and slope {n.input[1]!r} ({list(slope)}) do not "
                     "broadcast; onnxruntime refuses to run it")


def _pad_amounts(n, rank: int, values: dict, opset: int) -> list[tuple[int, int]] | None:
    """``[(before, after)]`` per axis of a Pad of known pads (an attribute before opset 11; inputs ``pads`` and
    ``axes`` from 11 on), or None where they are unknown or malformed (ONNX's inference judges those)."""
    import numpy as np

    if opset < 11:
        pads = next((list(a.ints) for a in n.attribute if a.name == "pads"), None)
        axes = None
    else:
        pads = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        axes = values.get(n.input[3]) if len(n.input) > 3 and n.input[3] else None
        if pads is None or (len(n.input) > 3 and n.input[3] and axes is None):
            return None
    try:
        pads = [int(v) for v in np.asarray(pads).reshape(-1)]
        axes = list(range(rank)) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
    except (TypeError, ValueError):
        return None
    axes = [a + rank if a < 0 else a for a in axes]
    if len(pads) != 2 * len(axes) or not all(0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        return None
    amounts = [(0, 0)] * rank
    for k, a in enumerate(axes):
        amounts[a] = (pads[k], pads[k + len(axes)])
    return amounts


def _check_pad_mode(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Pad in ``edge``, ``reflect`` or ``wrap`` mode that onnxruntime's kernel refuses for its (static) input
    shape and (known) pads is refused naming the node and the axis: an empty input padded to a non-empty axis
    (``edge``, ``reflect``), any empty input (``wrap``), an axis that negative pads crop to nothing, and a
    ``reflect`` pad of ``p`` on an axis of ``n <= p`` elements (after cropping).

    Why: ONNX's inference sizes these by ``dim + before + after`` alone, and memplan planned them (a ``reflect`` Pad
    of ``[2, 3]`` by 5 on each side of axis 1, an ``edge`` Pad of ``[2, 0]`` by 1), while onnxruntime refuses to run
    them ("Pad reflect: pre-pad (5) exceeds maximum allowed (2)", "Cannot use 'edge' mode to pad dimension with a
    value of 0"), as numpy's ``np.pad`` refuses the same. Measured on onnxruntime 1.32's CPU kernel for every
    axis length 0..3 and pads -2..4 on each side (``tests/test_onnx_round46.py``)."""
    if n.op_type != "Pad" or n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    mode = next((a.s.decode(errors="replace") for a in n.attribute if a.name == "mode"), "constant")
    if mode not in ("edge", "reflect", "wrap"):
        return
    x = shapes.get(n.input[0], (0, None))[1]
    if x is None or not all(isinstance(d, int) for d in x) or not x:
        return
    amounts = _pad_amounts(n, len(x), values, opset)
    if amounts is None or any(d + b + a < 0 for d, (b, a) in zip(x, amounts)):
        return   # (a negative output dimension is refused as such)
    why = ""
    if math.prod(x) == 0:
        grown = [i for i, (d, (b, a)) in enumerate(zip(x, amounts)) if d == 0 and b + a > 0]
        if mode == "wrap":
            why = f"its input {n.input[0]!r} ({list(x)}) is empty, which the 'wrap' mode cannot pad"
        elif grown:
            why = (f"it pads axis {grown[0]} of its input {n.input[0]!r} ({list(x)}), of 0 elements, to "
                   f"{sum(amounts[grown[0]])} in {mode!r} mode, which has no element to repeat")
    else:
        for i, (d, (b, a)) in enumerate(zip(x, amounts)):
            kept = d + min(b, 0) + min(a, 0)
            if kept <= 0:
                why = (f"its pads {[b, a]} crop axis {i} of its input {n.input[0]!r} ({list(x)}) to nothing, which "
                       f"the {mode!r} mode cannot pad")
            elif mode == "reflect" and max(b, a) >= kept:
                why = (f"it reflects {max(b, a)} elements on axis {i} of its input {n.input[0]!r} ({list(x)}), which "
                       f"has {kept} (at most {kept - 1} can be reflected)")
            if why:
                break
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


#: the pools onnxruntime's ``PoolAttributes::SetOutputSize`` checks: only the batch axis of their input may be empty
_POOLS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "MaxPool", "AveragePool", "LpPool")


def _check_kernel_extents(n, where: str, shapes: dict, values: dict) -> None:
    """Refuse, naming the node, what onnxruntime's CPU kernel refuses to run although ONNX's inference sizes it (at
    0 bytes, or at the input's): a Pad of a rank-0 input ("data_rank > 0 was false"); a MaxUnpool whose known
    ``output_shape`` is smaller than the unpooled shape along some axis ("output_shape is smaller than minimum
    required": a 0 there planned 0 bytes, or batch and channels not its input's); a Col2Im whose padded image is smaller than its dilated block along some
    axis ("Padded image extent is smaller than the dilated kernel"); an STFT whose frame is longer than its signal
    ("Ensure that the dft size is smaller than the signal"); a pool (``_POOLS``: global or not) of an input empty
    along an axis other than its batch (0 channels: "input_shape.Size() > 0 || input_shape[0] == 0"). Round 48b: each
    was planned (MaxPool/AveragePool/LpPool since session 48's lead fix)."""
    import numpy as np

    if n.domain not in ("", "ai.onnx") or not n.input or not n.input[0]:
        return
    op = n.op_type
    x = shapes.get(n.input[0], (0, None))[1]
    static = x is not None and all(isinstance(d, int) for d in x)
    ints = {a.name: list(a.ints) for a in n.attribute if a.ints}

    def known(k: int):
        v = values.get(n.input[k]) if k < len(n.input) and n.input[k] else None
        return None if v is None or np.asarray(v).dtype.kind not in "iu" else [int(d) for d in np.asarray(v).reshape(-1)]

    why = ""
    if op == "Pad" and x is not None and len(x) == 0:
        why = f"its input {n.input[0]!r} is a scalar (rank 0), which onnxruntime cannot pad"
    elif op == "MaxUnpool" and static and len(x) >= 3 and known(2) is not None and len(known(2)) == len(x):
        target, r = known(2), len(x) - 2
        kernel = ints.get("kernel_shape", [])
        strides, pads = ints.get("strides", [1] * r), ints.get("pads", [0] * 2 * r)
        if len(kernel) == r and len(strides) == r and len(pads) == 2 * r:
            least = list(x[:2]) + [(x[i + 2] - 1) * strides[i] - pads[i] - pads[i + r] + kernel[i] for i in range(r)]
            small = [i for i in range(len(x)) if target[i] < least[i]]
            if target[:2] != least[:2]:
                why = (f"its output_shape {target} has batch and channels {target[:2]}, not its input's {least[:2]} "
                       "(onnxruntime: \"output_shape batch and channel dimensions must match input\")")
            elif small:
                why = (f"its output_shape {target} is smaller than the unpooled shape {least} along axis {small[0]} "
                       "(onnxruntime: \"output_shape is smaller than minimum required\")")
    elif op == "Col2Im" and known(1) is not None and known(2) is not None and len(known(1)) == len(known(2)):
        image, block, r = known(1), known(2), len(known(1))
        dil, pads = ints.get("dilations", [1] * r), ints.get("pads", [0] * 2 * r)
        if len(dil) == r and len(pads) == 2 * r:
            for i in range(r):
                if image[i] + pads[i] + pads[i + r] < (block[i] - 1) * dil[i] + 1:
                    why = (f"its padded image ({image[i]} + pads {pads[i]} + {pads[i + r]}) is smaller than its "
                           f"dilated block ({(block[i] - 1) * dil[i] + 1}) along spatial axis {i}")
                    break
    elif op == "STFT" and static and len(x) >= 2:
        frame = known(3)
        window = shapes.get(n.input[2], (0, None))[1] if len(n.input) > 2 and n.input[2] else None
        length = frame[0] if frame and len(frame) == 1 else (window[0] if window and isinstance(window[0], int) else None)
        if length is not None and length > x[1]:
            why = f"its frame of {length} samples is longer than its signal {n.input[0]!r} of {x[1]}"
    elif op in _POOLS and static and x and x[0] != 0 and 0 in x:
        why = (f"its input {n.input[0]!r} ({list(x)}) is empty along an axis other than the batch (onnxruntime: "
               "\"input_shape.Size() > 0 || input_shape[0] == 0\", or \"invalid channel count\")")
    if why:
        raise GraphError(f"{where}: {why}; onnxruntime refuses to run it")


def _check_slice1(n, where: str, shapes: dict) -> None:
    """A Slice-1 (``starts`` / ``ends`` / ``axes`` attributes) is sized by the rule onnxruntime runs it with
    (``_slice1_shape``): attributes it refuses (an axis out of range or repeated, lengths that differ) are refused
    here too, where ONNX's inference planned the input's shape for them (``axes=[2]`` of a matrix), and an
    inferred shape that differs from the rule's is refused rather than planned."""
    if n.op_type != "Slice" or n.domain not in ("", "ai.onnx") or len(n.input) != 1 or not n.output:
        return
    elem, shape = shapes.get(n.input[0], (0, None))
    if not n.output[0] or shape is None or not all(isinstance(d, int) for d in shape):
        return
    found = _slice1_shape(n, n.output[0], shape, elem)
    attrs = {a.name: list(a.ints) for a in n.attribute if a.name in ("starts", "ends", "axes")}
    if not found:
        raise GraphError(f"{where}: its attributes {attrs} are not valid for an input of shape {list(shape)} (an axis "
                         "out of range or repeated, or lists of different lengths): onnxruntime refuses it")
    inferred = shapes.get(n.output[0], (0, None))[1]
    if inferred is not None and all(isinstance(d, int) for d in inferred) and tuple(inferred) != found[n.output[0]][0]:
        raise GraphError(f"{where}: value {n.output[0]!r} is inferred {list(inferred)}, but a slice {attrs} of "
                         f"{list(shape)} is {list(found[n.output[0]][0])}")


#: ``ai.onnx.ml`` ops onnxruntime runs only on inputs of some ranks: op -> (lowest, highest or None), why
_ML_RANKS = {"Normalizer": (1, 2, "[C] or [N, C]"), "LinearRegressor": (1, 2, "[C] or [N, C]"),
             "SVMRegressor": (1, 2, "[C] or [N, C]"), "SVMClassifier": (1, 2, "[C] or [N, C]"),
             "Scaler": (1, None, "at least one dimension"), "Imputer": (1, None, "at least one dimension")}


def _check_ml_node(n, where: str, shapes: dict) -> None:
    """An ``ai.onnx.ml`` node onnxruntime refuses is refused here by its rule, naming the node.

    Why: these ops have no ONNX shape inference (or one that checks less than the runtime): a Normalizer of a
    3-D input was refused only as "shape inference could not find its rank", a Scaler of a scalar was planned
    as a scalar, and a LinearClassifier with no ``intercepts`` was planned with a ``[N, 0]`` score, though
    onnxruntime refuses each (the classifier's rules below are those its kernel checks when loading). A linear
    model with fewer coefficients than its classes (targets) times the input's features is refused as its kernel
    refuses it when run (``_check_linear_coefficients``): planned, it failed only at run time."""
    if n.domain != "ai.onnx.ml":
        return
    op = n.op_type
    attrs = {a.name: a for a in n.attribute}
    if op in _ML_RANKS and n.input and n.input[0]:
        shape = shapes.get(n.input[0], (0, None))[1]
        low, high, takes = _ML_RANKS[op]
        if shape is not None and (len(shape) < low or high is not None and len(shape) > high):
            raise GraphError(f"{where}: its input {n.input[0]!r} has rank {len(shape)} ({list(shape)}), but {op} "
                             f"takes {takes} (onnxruntime refuses it too)")
    elem = shapes.get(n.input[0], (0, None))[0] if n.input and n.input[0] else 0
    if op in _ML_FLOAT_ONLY and elem and elem != 1:
        raise GraphError(f"{where}: its input {n.input[0]!r} is {_ML_TYPE_NAMES.get(elem, f'type {elem}')}, but "
                         f"onnxruntime runs {op} on float only (no kernel for another type, on any provider: "
                         "onnxruntime's ai.onnx.ml ops are CPU ones); Cast it to float first")
    if op == "LinearRegressor" and "targets" in attrs and attrs["targets"].i < 1:
        raise GraphError(f"{where}: its attribute targets is {attrs['targets'].i}, but it must be at least 1 (one "
                         "column of output per target); onnxruntime refuses the model")
    if op == "SVMClassifier":
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        classes = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        per_class = list(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else []
        floats = (lambda k: len(attrs[k].floats) if k in attrs else 0)   # noqa: E731
        why = ("it has no class labels (classlabels_ints or classlabels_strings)" if classes == 0 else
               f"its vectors_per_class has {len(per_class)} entries, not one per class ({classes})"
               if sum(per_class) > 0 and len(per_class) != classes else
               f"its prob_a has {floats('prob_a')} entries and its prob_b {floats('prob_b')}"
               if floats("prob_a") != floats("prob_b") else "")
        if why:
            raise GraphError(f"{where}: {why}; onnxruntime refuses the model")
    _check_ml_declared(n, where, shapes)
    if op == "LinearClassifier":
        count = len(attrs["intercepts"].floats) if "intercepts" in attrs else 0
        # the kernel takes the string labels where there are any, else the integer ones
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        n_labels = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        labels = f"{n_labels} ({'classlabels_strings' if strings else 'classlabels_ints'})"
        coefficients = len(attrs["coefficients"].floats) if "coefficients" in attrs else 0
        why = ("it has no intercepts (one per class: its score would have no column)" if count == 0 else
               f"it has one intercept (binary) but {labels} class labels, not 2" if count == 1 and n_labels not in (0, 2)
               else f"its {count} intercepts define {count} classes but it has {labels if n_labels else 'no'} class labels"
               if count > 1 and n_labels < count else
               f"its {coefficients} coefficients are no multiple of its {count} classes (intercepts)"
               if coefficients % count else "")
        if why:
            raise GraphError(f"{where}: {why}; onnxruntime refuses the model")
        _check_linear_coefficients(n, where, shapes, coefficients, count, "classes (intercepts)")
    if op == "LinearRegressor":
        targets = attrs["targets"].i if "targets" in attrs else 1
        coefficients = len(attrs["coefficients"].floats) if "coefficients" in attrs else 0
        _check_linear_coefficients(n, where, shapes, coefficients, targets, "targets")
    if op in ("SVMRegressor", "SVMClassifier"):
        _check_svm_features(n, where, shapes)


def _check_ml_declared(n, where: str, shapes: dict) -> None:
    """An ``ai.onnx.ml`` output the spec's rule sizes (``_ml_shapes``) that the model declares of another shape is
    refused, naming the node: ONNX's inference has no rule for these ops, so the declaration was planned as given,
    and onnxruntime writes the rule's shape whatever the model declares (a LinearRegressor of 2 targets declared
    ``[2, 1]`` was planned 8 bytes; onnxruntime writes ``[2, 2]``, 16, past the slot)."""
    static = {v: tuple(info[1]) for v, info in shapes.items()
              if isinstance(info[1], tuple) and all(isinstance(d, int) for d in info[1])}
    elems = {v: info[0] for v, info in shapes.items() if info[0] and info[0] != -1}
    for o, (dims, _elem) in _ml_shapes(n, static, elems).items():
        have = shapes.get(o, (0, None))[1]
        if isinstance(have, tuple) and (len(have) != len(dims) or any(isinstance(a, int) and a != b
                                                                       for a, b in zip(have, dims))):
            raise GraphError(f"{where}: value {o!r} is declared {list(have)}, but onnxruntime's {n.op_type} writes "
                             f"it {list(dims)} for its input {n.input[0]!r} ({list(static.get(n.input[0], ()))}) "
                             "and attributes: a plan of the declared size would not hold it; correct or remove "
                             "the declaration")


#: ``ai.onnx.ml`` ops onnxruntime has a kernel for only of float input (its CPU registry; its other providers
#: register none of that domain), though the spec allows double, int32 and int64
_ML_FLOAT_ONLY = frozenset({"LinearRegressor", "SVMRegressor"})
_ML_TYPE_NAMES = {10: "float16", 11: "double", 6: "int32", 7: "int64", 16: "bfloat16"}


def _check_svm_features(n, where: str, shapes: dict) -> None:
    """SVMRegressor / SVMClassifier: onnxruntime's kernel takes exactly the features its support vectors have
    (``support_vectors`` over their count: ``n_supports``, or the sum of ``vectors_per_class``), or, with none
    (a linear SVM), its ``coefficients`` over its classes (one for the regressor; ``classlabels_*``, at least one,
    for the classifier), and fails at run time on an input whose last dimension differs ("Invalid input for
    SVMRegressor: expected feature_count=3, actual num_features=4"); planned, such a model failed only when run."""
    shape = shapes.get(n.input[0], (0, None))[1] if n.input and n.input[0] else None
    if shape is None or len(shape) not in (1, 2) or not isinstance(shape[-1], int):
        return
    attrs = {a.name: a for a in n.attribute}
    floats = (lambda k: len(attrs[k].floats) if k in attrs else 0)   # noqa: E731
    if n.op_type == "SVMRegressor":
        vectors, classes = (attrs["n_supports"].i if "n_supports" in attrs else 0), 1
    else:
        vectors = sum(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else 0
        classes = (len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0) or \
            (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0) or 1
    if vectors > 0:
        features, whence = floats("support_vectors") // vectors, f"its {vectors} support vectors have"
    else:
        features, whence = floats("coefficients") // classes, "its coefficients (a linear SVM) take"
    if shape[-1] != features:
        raise GraphError(f"{where}: {whence} {features} features, but its input {n.input[0]!r} ({list(shape)}) has "
                         f"{shape[-1]}; onnxruntime refuses to run it")


def _check_linear_coefficients(n, where: str, shapes: dict, coefficients: int, rows: int, what: str) -> None:
    """LinearClassifier / LinearRegressor: onnxruntime's kernel reads ``rows`` x features coefficients (features:
    the last dimension of a ``[C]`` or ``[N, C]`` input) and fails at run time when there are fewer ("coefficients
    size (4) is less than class_count (2) * num_features (3)"); more are accepted (the rest unread)."""
    shape = shapes.get(n.input[0], (0, None))[1] if n.input and n.input[0] else None
    if shape is None or len(shape) not in (1, 2) or not isinstance(shape[-1], int):
        return
    if coefficients < rows * shape[-1]:
        raise GraphError(f"{where}: it has {coefficients} coefficients, fewer than its {rows} {what} times the "
                         f"{shape[-1]} features of its input {n.input[0]!r} ({list(shape)}); onnxruntime refuses to "
                         "run it")


def _container_bytes(n, where: str, out: str, kind: str, in_bytes: list[int], held_bytes: list[int] | None) -> int:
    """The bytes of the sequence or optional ``out`` of node ``n``: those of the tensors it holds, which
    are the node's inputs (``CONTAINER_OPS``), so that its size is exact and never estimated. The dynamo
    exporter writes ``torch.split`` as SplitToSequence -> SequenceAt when it does not optimize; runtimes
    keep the pieces, one tensor each, until the last SequenceAt (which copies one out). (No sequence holds a
    sub-byte type, whose pieces would each round up: ONNX's type check refuses them.) Another op's sequence
    (SequenceErase's) holds ``held_bytes``, the bytes of the tensors the importer followed into it, where known."""
    held = CONTAINER_OPS.get(n.op_type, -1) if n.domain in ("", "ai.onnx") else -1
    if held == -1 and held_bytes is not None and n.domain in ("", "ai.onnx"):
        return sum(held_bytes)
    if held == -1:
        article = "an" if kind[:1] in "aeiou" else "a"
        raise GraphError(f"{where}: value {out!r} is {article} {kind} whose elements' sizes no shape tells (only "
                         f"tensors, and sequences or optionals made by {', '.join(sorted(CONTAINER_OPS))}, are supported)")
    return sum(in_bytes if held is None else in_bytes[:held])


def _dims(info: tuple) -> tuple:
    """A value's dims for the cost estimate: a sequence or optional has none (its elements' are unknown)."""
    return () if info[0] == -1 else info[1]


def parse_dims(items: list[str] | None) -> dict[str, int]:
    """``["batch=4", "seq=128"]`` -> ``{"batch": 4, "seq": 128}`` (the CLI's ``--dim`` values)."""
    out: dict[str, int] = {}
    for item in items or ():
        # (split at the last '=': the value is digits, while an exporter's dimension name may hold '=' itself, as
        # ``N=2``, which the first '=' made unnameable: "--dim 'N=2=3': value '2=3' is not an integer")
        key, sep, val = item.rpartition("=")
        key, val = key.strip(), val.strip(" ")   # (spaces around '=' are the syntax's; the value's digits are ASCII)
        if not sep or not key:
            raise GraphError(f"--dim {item!r}: expected NAME=VALUE")
        if not _DECIMAL.fullmatch(val):   # int() also takes ' 4', '1_0' and other scripts' digits ('٤')
            raise GraphError(f"--dim {item!r}: value {val!r} is not an integer (plain ASCII decimal digits)")
        # (past int()'s 4300 digits, out of range all the same)
        n = int(val) if len(val) < 100 else (-1 if val[0] == "-" else MAX_DIM + 1)
        if not 0 <= n <= MAX_DIM:   # named by the option, not by the model the check would be made on later
            raise GraphError(f"--dim {item!r}: value {n} is not in 0..2**63-1")
        if key in out:   # a typo'd repeat must not silently override the first value, and a repeat is refused
            raise GraphError(f"--dim {item!r}: {key!r} is already {out[key]} (each dimension at most once, as "
                             "every option and list value of memplan's: give it once)")   # (argtypes.StoreOnce)
        out[key] = n
    return out


# -- checks before inference --------------------------------------------------------------------------

def _dims_hint(inputs, params: set[str]) -> str:
    """The symbolic dimensions a ``--dim`` may name, the graph inputs' first: exporters also name inner
    dimensions by formula (torch.onnx's ``seq + 1``), which fixing the inputs' dimensions already decides."""
    own = sorted({d.dim_param for vi in inputs if vi.type.HasField("tensor_type")
                  for d in vi.type.tensor_type.shape.dim if d.dim_param})
    inner = sorted(params - set(own))
    if not params:
        return "it has none"
    return "; ".join(part for part in (own and f"its inputs have: {', '.join(own)}",
                                       inner and f"inside it: {', '.join(inner)}") if part)


def _check_dims_option(batch: int | None, dims: Mapping[str, int] | None) -> dict[str, int]:
    """The ``dims`` a Python caller gave, checked and named as the arguments they are (the CLI's ``--dim`` and
    ``--batch`` were checked by its parser): a key that is no string (``{1: 4}``) was taken as the name "1"."""
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or not 0 <= batch <= MAX_DIM):
        raise GraphError(f"batch={_short(batch)} is not a non-negative integer below 2**63")
    if dims is not None and not isinstance(dims, Mapping):
        raise GraphError(f"dims must be a mapping of dimension names to sizes, not {type(dims).__name__}")
    fixed = {}
    for k, v in (dims or {}).items():
        if not isinstance(k, str) or not k:
            raise GraphError(f"dims: key {_short(k)} is not a dimension name (a non-empty string)")
        n = as_int(v)   # a numpy integer as the int it equals, as every other integer option takes it
        if n is None or not 0 <= n <= MAX_DIM:
            raise GraphError(f"dims[{k!r}]: value {_short(v)} is not a non-negative integer below 2**63")
        fixed[k] = n
    return fixed


def _names(g):
    """``(what, value)`` for every name field of the graph that memplan reads, copies or turns into an id."""
    yield "graph name", g.name
    for t in g.initializer:
        yield "initializer name", t.name
    for st in g.sparse_initializer:
        yield "sparse initializer name", st.values.name
    for i, n in enumerate(g.node):
        yield f"node #{i} name", n.name
        yield f"node #{i} op_type", n.op_type
        yield f"node #{i} domain", n.domain
        for v in list(n.input) + list(n.output):
            yield f"node #{i} value name", v
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        yield "value name", vi.name
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                yield f"dimension name of value {vi.name!r}", d.dim_param


def _check_text(g) -> None:
    """Every name is text. protobuf (upb) hands back ``bytes`` for a string field that is not valid
    UTF-8: copied into another message it raises ``UnicodeDecodeError``, and as an id it is no string."""
    for what, v in _names(g):
        if isinstance(v, bytes):
            raise GraphError(f"{what} {v!r} is not valid UTF-8")


def _check_ir_version(onnx, model) -> None:
    """The model's IR version must be one this onnx release reads (1..``onnx.IR_VERSION``). The IR version
    says how the file's fields are to be read (IR 4 let initializers stop being graph inputs, IR 10 added
    per-value metadata, later ones new types and attributes): shape inference ran on a model stamped with a
    future version as if it were today's, silently, and one without a version (0: the field is missing, as in
    a hand-made or truncated model) is no valid model at all; onnx's own checker refuses both."""
    v = model.ir_version
    if v <= 0:
        raise GraphError(f"the model has no valid IR version (ir_version {v}; an ONNX file always sets one): not a "
                         "model onnx can read")
    if v > onnx.IR_VERSION:
        raise GraphError(f"the model's IR version {v} is newer than the installed onnx {onnx.__version__} reads "
                         f"(IR 1..{onnx.IR_VERSION}): a newer onnx may know it")


def _check_opset(onnx, model) -> None:
    """Each domain is imported at one version, by the model and by each model-local function, and the default
    domain's is one this onnx release defines.

    Why: shapes are inferred with the newest schema at or below the imported version, so a model stamped with a
    future opset (99) would be sized by today's ops, silently, where a later version may change them (as
    Reshape, Squeeze, Split changed inputs to attributes and back); opset 0 is no opset. A domain listed twice
    at two versions names no version at all: onnx.proto says a function "can rely on at most one version" of a
    domain, and for a model the spec's "highest version" and onnxruntime (which takes the last one listed)
    disagree, so which schema sizes its ops (``ai.onnx.ml``'s LabelEncoder-1 or -4...) is unknown. A local
    function's body is inlined and sized like the graph's nodes, so its imports are checked the same way
    (``_check_function_opsets`` checks them against the model's)."""
    newest = onnx.defs.onnx_opset_version()
    owners = [("the model", model.opset_import)]
    owners += [(f"local function {_function_name(f)}", f.opset_import) for f in model.functions]
    for owner, imports in owners:
        seen: dict[str, int] = {}
        for o in imports:
            default = (o.domain or "") in ("", "ai.onnx")
            domain = "" if default else o.domain
            if domain in seen and seen[domain] != o.version:
                what = "the default ONNX domain" if default else f"domain {domain!r}"
                raise GraphError(f"{owner} imports {what} twice, at opsets {seen[domain]} and {o.version}: which "
                                 "version its ops follow is unknown (ONNX allows one version of a domain)")
            seen[domain] = o.version
            if default and not 1 <= o.version <= newest:
                raise GraphError(f"{owner} uses opset {o.version} of the default ONNX domain; the installed onnx "
                                 f"{onnx.__version__} defines opsets 1..{newest} (a newer onnx may know it)")
            if domain in SINGLE_VERSION_DOMAINS and o.version != SINGLE_VERSION_DOMAINS[domain]:
                # (sized at its one version, silently, where onnxruntime refuses the model: "Current official
                # support for domain com.microsoft is till opset 1", or at 0 none of its ops registered)
                raise GraphError(f"{owner} imports domain {domain!r} at opset {o.version}; onnxruntime defines only "
                                 f"opset {SINGLE_VERSION_DOMAINS[domain]} of it and refuses the model")


#: the training domains: their ops (Gradient, Adagrad, Adam, Momentum) compute gradients and updated weights, which no
#: inference runtime runs and memplan cannot size (onnx's inference gives Gradient's outputs no shape)
TRAINING_DOMAINS = frozenset({"ai.onnx.preview.training", "ai.onnx.training"})


def _newest_opset(onnx, domain: str) -> int:
    """The newest opset of ``domain`` the installed onnx defines (the newest version any op of it has)."""
    return max((s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.domain == domain), default=0)


def _check_domain_versions(onnx, g, node_ids: list[str], opset_import) -> None:
    """Refuse a node of ``ai.onnx.ml`` where the model imports that domain at an opset the installed onnx does not
    define (past its newest, or below 1), and a node of a training domain, naming the node, domain and version.

    Why: ``_check_opset`` checked the default domain's version alone, so a Normalizer of ``ai.onnx.ml`` opset 6
    (or 99) was sized by opset 5's rules, which a later opset may change, and planned (onnxruntime refuses it); an
    ``Adagrad`` of ``ai.onnx.preview.training`` was planned too, although no inference runtime runs it and
    a Gradient's outputs have no shape at all: a plan of an op that cannot be sized is a silently wrong plan."""
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in opset_import}
    newest_ml = None
    for nid, n in zip(node_ids, g.node):
        if n.domain in TRAINING_DOMAINS:
            raise GraphError(f"node {nid!r} ({n.domain}:{n.op_type}) is a training op (domain {n.domain!r}, opset "
                             f"{versions.get(n.domain, '(not imported)')}): it computes gradients or weight "
                             "updates, which memplan cannot size and onnxruntime's inference does not run "
                             "(unsupported; plan the inference model)")
        if n.domain == "ai.onnx.ml":
            newest_ml = _newest_opset(onnx, "ai.onnx.ml") if newest_ml is None else newest_ml
            v = versions.get("ai.onnx.ml", newest_ml)
            if not 1 <= v <= newest_ml:
                raise GraphError(f"node {nid!r} (ai.onnx.ml:{n.op_type}) is of domain 'ai.onnx.ml', which the model "
                                 f"imports at opset {v}; the installed onnx {onnx.__version__} defines opsets "
                                 f"1..{newest_ml} of it, so which rules size the node is unknown (a newer onnx may "
                                 "know it; onnxruntime refuses an opset it does not know)")


#: domains of which onnxruntime has one version only: a model that uses one without importing it runs at that
#: version (onnxruntime fills a domain the model does not import with its newest version)
SINGLE_VERSION_DOMAINS = {"com.microsoft": 1}


def _check_node_domains(model):
    """The model (a copy where an import is added) importing the domain of each of its graph's nodes: a node of a
    domain it does not import is refused naming the node (a call of a model-local function too, as onnxruntime
    refuses it), except ``com.microsoft``, imported at its one version.

    Why: onnxruntime runs such a node at its own newest version of the domain; onnx's inference refused it with
    "No opset import for domain com.microsoft" naming the node only by its ONNX name (or not at all, unnamed).
    ``com.microsoft`` has one version, so the version onnxruntime runs is known; the default domain's and
    ``ai.onnx.ml``'s newest differ between onnxruntime and onnx releases, so which rules size the node is not."""
    imported = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in model.opset_import}
    local = {f.domain for f in model.functions}
    missing: dict[str, int] = {}
    for nid, n in zip(_node_ids(model.graph), model.graph.node):
        domain = "" if (n.domain or "") in ("", "ai.onnx") else n.domain
        if domain in imported or domain in missing:
            continue
        if domain in local:   # (inlined, it was planned; onnxruntime refuses: "No opset import for domain 'local'")
            raise GraphError(f"node {nid!r} ({n.domain}:{n.op_type}) calls a model-local function of domain "
                             f"{domain!r}, which the model does not import; onnxruntime refuses the model (import "
                             "the domain)")
        if domain not in SINGLE_VERSION_DOMAINS:
            op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
            raise GraphError(f"node {nid!r} ({op}) is of domain {domain or 'ai.onnx'!r}, which the model does not "
                             "import: which version of it sizes the node is unknown (onnxruntime takes its own newest, "
                             "onnx has no rule); import the domain at the version the model was written for")
        missing[domain] = SINGLE_VERSION_DOMAINS[domain]
    if not missing:
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for d, version in sorted(missing.items()):
        copy.opset_import.append(_need_onnx().helper.make_opsetid(d, version))
    return copy


def _runtime_op(onnx, domain: str, name: str, opsets) -> bool:
    """Whether ``domain:name`` is an op a runtime has without the model's help: one onnx defines at the version
    of its domain the caller imports (``opsets``: its ``opset_import``), or one of onnxruntime's own
    (``_ort_op_names``). Why: a model-local function of that name does not replace it in onnxruntime, which
    ran its Relu where memplan inlined and sized the model's function "Relu"."""
    domain = "" if domain == "ai.onnx" else domain
    version = next((o.version for o in opsets if ("" if o.domain == "ai.onnx" else o.domain) == domain), None)
    if version is not None and onnx.defs.has(name, domain):
        try:
            onnx.defs.get_schema(name, version, domain)
            return True
        except onnx.defs.SchemaError:   # (defined from a later version on: the function is the op here)
            pass
    return name in ORT_DEFAULT_DOMAIN_OPS if domain == "" else domain == ORT_DOMAIN and name in _ort_op_names()


@functools.cache
def _ort_op_names() -> frozenset[str]:
    """The ``com.microsoft`` ops onnxruntime has: from its schemas where it is installed, else the ones this
    importer knows by name (its rules and refusals)."""
    try:
        from onnxruntime.capi import _pybind_state

        return frozenset(s.name for s in _pybind_state.get_all_operator_schema() if s.domain == ORT_DOMAIN)
    except Exception:  # noqa: BLE001 - no onnxruntime, or one without its schemas: the names memplan knows
        return frozenset(ORT_RULES) | ORT_RULED_ONLY | ORT_UNSIZED | frozenset(ORT_WRONG)


def _function_name(f) -> str:
    """A model-local function as messages name it: ``domain:name``, and its overload where it has one."""
    name = f"{f.domain}:{f.name}" if f.domain else f.name
    return f"{name} (overload {f.overload!r})" if getattr(f, "overload", "") else name


def _check_function_opsets(onnx, model):
    """A local function that imports a domain other than the default one at another version than the model
    must bind each of its ops of that domain to the schema the model's version gives; the model returned (a
    copy where any import changes) has such a function import the model's version, which onnx's inliner
    needs to inline it (it converts only the default domain).

    Why: inlined, the body's nodes are inferred (and run) at the model's version of their domain. onnx.proto
    allows the two versions to differ only where "the operator schema returned for op_type, domain, version
    combination for both the versions should be same": a body written for ``ai.onnx.ml`` 1 whose LabelEncoder
    changed by the model's version 4 would be sized by rules it was not written for. (The default domain's
    body is converted to the model's opset while inlining.) An op onnx defines no schema for (a runtime's
    custom op) cannot be shown to agree, and is refused too. A function's ``ai.onnx.ml`` opset the installed onnx
    does not define (6, 99) is refused where the body has a node of it: aligned to the model's 5, such a body was
    planned, and onnxruntime refuses the model."""
    model_v = {o.domain: o.version for o in model.opset_import if (o.domain or "") not in ("", "ai.onnx")}
    local = {(f.domain, f.name) for f in model.functions}
    aligned = None
    for k, f in enumerate(model.functions):
        own = {o.domain: o.version for o in f.opset_import if (o.domain or "") not in ("", "ai.onnx")}
        for n in f.node:
            d = n.domain
            if d == "ai.onnx.ml" and d in own and not 1 <= own[d] <= _newest_opset(onnx, d):
                # (as _check_domain_versions for the model's import: the inliner would take the model's version)
                raise GraphError(f"local function {_function_name(f)} imports domain 'ai.onnx.ml' at opset {own[d]}, "
                                 f"and its node {n.name or n.op_type!r} (ai.onnx.ml:{n.op_type}) is of it; the "
                                 f"installed onnx {onnx.__version__} defines opsets 1..{_newest_opset(onnx, d)} of it, "
                                 "so which rules size the node is unknown (a newer onnx may know it; onnxruntime "
                                 "refuses an opset it does not know)")
            if d not in own or d not in model_v or own[d] == model_v[d] or (d, n.op_type) in local:
                continue
            where = (f"local function {_function_name(f)} imports domain {d!r} at version {own[d]} and the model "
                     f"at version {model_v[d]}, and its node {n.name or n.op_type!r} ({d}:{n.op_type})")
            try:
                a = onnx.defs.get_schema(n.op_type, own[d], d).since_version
                b = onnx.defs.get_schema(n.op_type, model_v[d], d).since_version
            except Exception:  # noqa: BLE001 - no schema at one of the versions
                raise GraphError(f"{where} has no schema onnx defines at both versions, so whether they agree "
                                 "is unknown; import the domain at one version") from None
            if a != b:
                raise GraphError(f"{where} follows {d}:{n.op_type}-{a} in the function but -{b} in the model: "
                                 "import the domain at one version")
        if any(d in model_v and v != model_v[d] for d, v in own.items()):
            if aligned is None:
                aligned = onnx.ModelProto()
                aligned.CopyFrom(model)
            for o in aligned.functions[k].opset_import:
                if o.domain in model_v:
                    o.version = model_v[o.domain]
    return model if aligned is None else aligned


def _called_functions(model) -> dict[int, str]:
    """``{index in model.functions: who calls it first}`` for each local function a node of the graph calls,
    directly or through the bodies of the functions it calls (a function nothing calls is never run, nor inlined).
    (By index: protobuf gives a repeated field's element a new Python object on each access, so ``id`` is no key.)"""
    funcs: dict[tuple[str, str], list[int]] = {}
    for k, f in enumerate(model.functions):
        funcs.setdefault((f.domain, f.name), []).append(k)
    ids = _node_ids(model.graph)
    todo = [(f"node {nid!r}", n) for nid, n in zip(ids, model.graph.node)]
    called: dict[int, str] = {}
    while todo:
        who, n = todo.pop(0)
        for k in funcs.get((n.domain, n.op_type), ()):
            if k not in called:
                called[k] = who
                f = model.functions[k]
                todo.extend((f"node {m.name or m.op_type!r} of local function {_function_name(f)}", m) for m in f.node)
    return called


def _bind_function_bodies_to_model_opset(onnx, model):
    """The model (a copy where any import changes) whose called local functions import the default ONNX domain at
    the model's version, each body node of that domain first checked against its schema at the model's version.

    Why: onnxruntime binds a function body's default-domain ops to the *model's* opset, whatever the function
    imports (a body written for opset 11 in an opset-17 model runs its ``Squeeze(axes=[0])`` as Squeeze-13, whose
    ``axes`` is an input, and refuses the model: "Unrecognized attribute: axes"), and infers its shapes there (a
    ``Split`` of no ``split`` written for opset 13 is refused at 18: "Neither 'split' input nor 'num_outputs'").
    onnx's inliner instead converted such a body to the model's opset, so memplan planned models onnxruntime
    refuses to load. Checking and inferring the body at the model's opset refuses what onnxruntime refuses and
    sizes what it runs as it runs it. A function nothing calls is not checked (onnxruntime loads it unchecked)."""
    model_v = next((o.version for o in model.opset_import if (o.domain or "") in ("", "ai.onnx")), None)
    if model_v is None or not model.functions:
        return model
    called = _called_functions(model)
    local = {(f.domain, f.name) for f in model.functions}
    ctx = None
    aligned = None
    for k, f in enumerate(model.functions):
        own = next((o.version for o in f.opset_import if (o.domain or "") in ("", "ai.onnx")), None)
        if own is None or own == model_v or k not in called:
            continue
        if ctx is None:
            ctx = onnx.checker.C.CheckerContext()
            ctx.ir_version = model.ir_version
            ctx.opset_imports = {("" if (o.domain or "") in ("", "ai.onnx") else o.domain): o.version
                                 for o in model.opset_import}
        for i, n in enumerate(f.node):
            if (n.domain or "") not in ("", "ai.onnx") or ("", n.op_type) in local or (n.domain, n.op_type) in local:
                continue
            if n.op_type == "Constant" or _has_external_tensor(n) or any(a.type in (5, 10) for a in n.attribute):
                continue   # (a Constant is folded, its data checked as an initializer's; a subgraph refused before)
            node = onnx.NodeProto()
            node.CopyFrom(n)
            node.domain = ""
            why = _checker_says(onnx, node, ctx)
            if why is not None:
                label = repr(n.name) if n.name else f"#{i}"
                raise GraphError(f"local function {_function_name(f)} (called by {called[k]}) imports the default "
                                 f"ONNX domain at opset {own} and the model at opset {model_v}: its node {label} "
                                 f"({n.op_type}) runs as {n.op_type} of opset {model_v} (onnxruntime binds a "
                                 f"function's ops to the model's opset), which refuses it: {why}; write the body "
                                 "for the model's opset")
        if aligned is None:
            aligned = type(model)()
            aligned.CopyFrom(model)
        for o in aligned.functions[k].opset_import:
            if (o.domain or "") in ("", "ai.onnx"):
                o.version = model_v
    return model if aligned is None else aligned


def _check_functions(onnx, model) -> None:
    """Every call of a model-local function names one the model defines, and every function the model defines
    is well formed: each output made by a node of its body (not one of its inputs), each value its nodes read
    an input of the function or an output of an earlier node of the body. Errors name the function and node.

    Why: onnx's inliner checks none of this. A call of a function that does not exist (a typo, another
    overload) was imported as an op nobody defines, sized by the model's declaration alone (onnxruntime fails:
    "is not a registered function/op"); a function whose output is its input, or an output no body node makes,
    was inlined to nothing, and the import failed with "graph output 'y' is produced by no node" naming
    neither; a body that reads a name it does not define bound it to the caller's value of that name
    (functions have no outer scope); a body node of a domain the function does not import (``com.microsoft``
    the model does not import either) failed in onnx's inference with "No opset import for domain" naming neither,
    and one the model imports was planned. onnxruntime refuses such functions, called or not."""
    funcs: dict[tuple[str, str], dict[str, Any]] = {}
    for f in model.functions:
        overloads = funcs.setdefault((f.domain, f.name), {})
        overload = getattr(f, "overload", "")
        if overload in overloads:
            raise GraphError(f"local function {_function_name(f)} is defined twice")
        overloads[overload] = f
    if not funcs:
        return
    domains = {d for d, _ in funcs}
    caller: dict[int, str] = {}   # id of a function -> the first graph node that calls it (for messages)
    graph_ids = _node_ids(model.graph)
    callers = [(f"node {nid!r}", n, model.opset_import) for nid, n in zip(graph_ids, model.graph.node)]
    callers += [(f"node {n.name or n.op_type!r} of local function {_function_name(f)}", n, f.opset_import)
                for f in model.functions for n in f.node]
    for who, n, opsets in callers:
        if n.domain not in domains:
            continue
        overloads = funcs.get((n.domain, n.op_type))
        overload = getattr(n, "overload", "")
        if overloads is None:
            if onnx.defs.has(n.op_type, n.domain):
                continue
            names = ", ".join(sorted(name for d, name in funcs if d == n.domain))
            raise GraphError(f"{who} calls {n.domain}:{n.op_type}, which is no local function of the model (its "
                             f"functions in domain {n.domain!r}: {names}) and no op onnx defines")
        if overload not in overloads:
            have = ", ".join(repr(o) for o in sorted(overloads))
            raise GraphError(f"{who} calls local function {n.domain}:{n.op_type} overload {overload!r}, which the "
                             f"model does not define (its overloads: {have})")
        f = overloads[overload]
        caller.setdefault(id(f), who)
        if _runtime_op(onnx, n.domain, n.op_type, opsets):
            raise GraphError(f"{who} calls {_function_name(f)}, which is both a local function of the model and an "
                             "op the runtime has: onnxruntime runs its op, onnx's inliner the function, so which one "
                             "runs (and the sizes it makes) is not known; rename the function or its domain")
        if len(n.input) > len(f.input) or len(n.output) > len(f.output):
            raise GraphError(f"{who} calls local function {_function_name(f)} with {len(n.input)} inputs and "
                             f"{len(n.output)} outputs; it takes {len(f.input)} and returns {len(f.output)}")
    for f in model.functions:
        name = f"local function {_function_name(f)}"
        if id(f) in caller:
            name += f" (called by {caller[id(f)]})"
        defined = set(f.input)
        imported = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in f.opset_import}
        for i, n in enumerate(f.node):
            label = repr(n.name) if n.name else f"#{i} ({n.op_type})"
            domain = "" if (n.domain or "") in ("", "ai.onnx") else n.domain
            if domain not in imported:
                op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
                raise GraphError(f"{name}: its node {repr(n.name) + f' ({op})' if n.name else f'#{i} ({op})'} is of "
                                 f"domain {domain or 'ai.onnx'!r}, which the function does not import (a function "
                                 "binds its ops by its own opset_import, not the model's; onnxruntime refuses it: "
                                 "\"No opset registered for domain\")")
            if id(f) in caller:
                _check_no_subgraph(n, f"{name}: its node {n.name!r} ({n.op_type})" if n.name else f"{name}: its node {label}")
            for v in n.input:
                if v and v not in defined:
                    raise GraphError(f"{name}: its node {label} reads {v!r}, which is "
                                     "no input of the function and no output of an earlier node of its body "
                                     "(a function sees no value of its caller's)")
            for o in n.output:
                if o and o in defined:
                    raise GraphError(f"{name}: value {o!r} is produced twice in its body (or is one of its inputs)")
                defined.add(o)
        for o in f.output:
            if not o:
                raise GraphError(f"{name} has an output with an empty name")
            if o in f.input:
                raise GraphError(f"{name} returns its input {o!r} as its output, unsupported (onnxruntime refuses "
                                 "it too): make the output with an Identity node in its body")
            if o not in defined:
                raise GraphError(f"{name}: its output {o!r} is made by no node of its body")


def _default_opset(model) -> int:
    """The model's opset of the default ONNX domain (``_check_opset`` made sure there is at most one)."""
    return next((o.version for o in model.opset_import if (o.domain or "") in ("", "ai.onnx")), 1)


def _inline_functions(model):
    """The model with its model-local functions inlined (a new model; the one given is not modified).

    A call of a local function is one node, but its body runs ops whose intermediates need memory: runtimes
    inline such calls, so the importer does too, and the body's tensors are planned."""
    local = {(f.domain, f.name) for f in model.functions}
    if not any((n.domain, n.op_type) in local for n in model.graph.node):
        return model
    try:
        from onnx import inliner
    except ImportError:  # onnx < 1.16
        raise MemplanError("the model calls local functions: inlining them needs onnx >= 1.16") from None
    _check_inlined_size(model)
    model = _import_function_domains(_with_attribute_defaults(model))
    try:
        try:   # a body written for another opset of the default domain is converted to the model's
            inlined = inliner.inline_local_functions(model, convert_version=True)
        except TypeError:   # an onnx without the option
            inlined = inliner.inline_local_functions(model)
    except Exception as exc:  # a malformed function body
        msg = first_line(exc)
        raise GraphError(f"inlining the model's local functions failed: {msg}") from None
    # the inliner leaves a call it cannot inline (a body at another opset it could not convert) as one node,
    # whose body's intermediates would then get no memory: refuse it by name
    left = sorted({(n.domain, n.op_type) for n in inlined.graph.node if (n.domain, n.op_type) in local})
    if left:
        domain, name = left[0]
        raise GraphError(f"local function {domain}:{name} could not be inlined (its body's opset differs from the "
                         "model's and could not be converted); convert the model to one opset first")
    return inlined


def _call_key(n) -> tuple[str, str, str]:
    """The local function a node calls, if any: (domain, name, overload), as ``FunctionProto`` keys it."""
    return n.domain, n.op_type, getattr(n, "overload", "")


def _inlined_sizes(model) -> dict[tuple[str, str, str], int]:
    """``{function key: nodes its body becomes once every local call in it is inlined}``, without inlining.

    Iterative (a chain of thousands of functions is no recursion); a function on a call cycle counts its call
    to the cycle as one node (the inliner refuses the cycle by name)."""
    bodies = {(f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions}
    counts: dict[tuple[str, str, str], int] = {}
    opened: set[tuple[str, str, str]] = set()
    for root in bodies:
        stack = [root]
        while stack:
            key = stack[-1]
            calls = [_call_key(n) for n in bodies[key].node]
            if key not in opened:
                opened.add(key)
                stack.extend(c for c in calls if c in bodies and c not in opened)
                continue
            stack.pop()
            counts.setdefault(key, sum(counts.get(c, 1) for c in calls))
    return counts


def _check_inlined_size(model) -> None:
    """Refuse a model whose local-function calls would inline to more than ``MAX_INLINED_NODES`` nodes, naming
    the call that inlines the most. Why: a function calling another twice, and so on 24 deep, is a 1 KB file that
    inlines to 16 million nodes: the import ran out of time and memory instead of saying so."""
    sizes = _inlined_sizes(model)
    calls = [(sizes.get(_call_key(n), 1), k) for k, n in enumerate(model.graph.node)]
    total = sum(size for size, _ in calls)
    if total > max(MAX_INLINED_NODES, len(calls)):   # (a graph that large as written is no amplification)
        size, k = max(calls)
        n = model.graph.node[k]
        raise GraphError(f"node {_node_ids(model.graph)[k]!r} calls local function {n.domain}:{n.op_type}, whose "
                         f"body inlines to {size} nodes (the graph to {total}), over the importer's limit of "
                         f"{MAX_INLINED_NODES}: its functions call each other too many times over")


def _with_attribute_defaults(model):
    """The model (a copy where any is added) with each call of a local function that omits an attribute the
    function gives a default value (``FunctionProto.attribute_proto``, IR 9) given that default.

    Why: onnx's inliner drops a body attribute that refers to one the call omits, default or not, so a body
    ``Gather`` whose ``axis`` refers to an attribute defaulting to 1 was sized at Gather's own default (0: 32
    bytes planned where onnxruntime writes 48), and a ``Concat``'s was refused ("Required attribute axis is
    missing", naming no node of the model). A body's call passing on its function's attribute (a reference) to a
    callee that defaults it takes the callee's default where the outer call omits it (``_implied_defaults``)."""
    if not any(len(f.attribute_proto) for f in model.functions):
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in copy.functions}
    ambiguous = _implied_defaults(funcs)
    for n in [*copy.graph.node, *(n for f in copy.functions for n in f.node)]:
        f = funcs.get((n.domain, n.op_type, getattr(n, "overload", "")))
        if f is None:
            continue
        given = {a.name for a in n.attribute}
        n.attribute.extend(a for a in f.attribute_proto if a.name not in given)
        left = sorted(ambiguous.get(id(f), set()) - given - {a.name for a in f.attribute_proto})
        if left:
            raise GraphError(f"node {n.name or n.op_type!r} calls local function {_function_name(f)} without its "
                             f"attribute {left[0]!r}, which the function passes on to nodes that default it to "
                             "different values: which value each takes is unknown to onnx's inliner; give it")
    return copy


def _implied_defaults(funcs: dict) -> dict[int, set[str]]:
    """Give each function of ``funcs`` (key -> FunctionProto; modified) a default for each attribute ``r`` it has
    none for whose every use in its body is an attribute of a call of a local function defaulting it to one same
    value: a call omitting ``r`` must run each of those callees with that default, which onnx's inliner would
    drop. Returns ``{id(function): {r}}`` where the uses would take different values (a callee's default, an
    op's own), left to the callers to give (one a later round defaults is no longer undecided)."""
    ambiguous: dict[int, set[str]] = {}
    changed = True
    while changed:   # (a default given to one function may settle the uses in the functions calling it)
        changed = False
        for f in funcs.values():
            defaulted = {a.name for a in f.attribute_proto}
            uses: dict[str, dict] = {}   # r -> {the value a use takes when r is omitted (bytes, None: dropped,
            #                                   or "?": undecided): that value's AttributeProto}
            for n in f.node:
                callee = funcs.get((n.domain, n.op_type, getattr(n, "overload", "")))
                own = {a.name: a for a in callee.attribute_proto} if callee is not None else {}
                for a in n.attribute:
                    if not a.ref_attr_name or a.ref_attr_name in defaulted:
                        continue
                    d = own.get(a.name)
                    taken = d.SerializeToString() if d is not None else (
                        "?" if callee is not None and a.name in ambiguous.get(id(callee), ()) else None)
                    uses.setdefault(a.ref_attr_name, {})[taken] = d
            for r, taken in uses.items():
                if len(taken) == 1 and isinstance(next(iter(taken)), bytes):
                    d = f.attribute_proto.add()
                    d.CopyFrom(next(iter(taken.values())))
                    d.name = r
                    changed = True
                elif (len(taken) > 1 or "?" in taken) and r not in ambiguous.get(id(f), ()):
                    ambiguous.setdefault(id(f), set()).add(r)
                    changed = True
    return ambiguous


def _import_function_domains(model):
    """The model (a copy where any import is added) importing each domain a local function it calls imports
    but the model does not, at the function's version; two called functions importing such a domain at two
    versions are refused, naming both.

    Why: a function's body may use a domain (``com.microsoft``) the model never imports; onnxruntime runs such
    a model, but once inlined the body's nodes stand in the graph, whose inference then refused them with
    onnx's "No opset import for domain ..." naming no node. The user's ModelProto is never modified."""
    funcs: dict[tuple[str, str], list] = {}
    for f in model.functions:
        funcs.setdefault((f.domain, f.name), []).append(f)
    have = {"" if (o.domain or "") in ("", "ai.onnx") else o.domain for o in model.opset_import}
    todo = [(n.domain, n.op_type) for n in model.graph.node if (n.domain, n.op_type) in funcs]
    seen: set[tuple[str, str]] = set()
    added: dict[str, tuple[int, str]] = {}   # domain -> (version, the function importing it)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        for f in funcs[key]:
            todo.extend((n.domain, n.op_type) for n in f.node if (n.domain, n.op_type) in funcs)
            for o in f.opset_import:
                d = "" if (o.domain or "") in ("", "ai.onnx") else o.domain
                if d in have or d in {fd for fd, _ in funcs}:
                    continue
                if d in added and added[d][0] != o.version:
                    raise GraphError(f"local functions {added[d][1]} and {_function_name(f)} import domain "
                                     f"{d or 'ai.onnx'!r} at versions {added[d][0]} and {o.version}, which the model "
                                     "does not import: which version their ops follow is unknown; import it in the "
                                     "model at one version")
                added.setdefault(d, (o.version, _function_name(f)))
    if not added:
        return model
    copy = type(model)()
    copy.CopyFrom(model)
    for d, (version, _) in sorted(added.items()):
        o = copy.opset_import.add()
        o.domain, o.version = d, version
    return copy


def _name_by_ids(g2, ids: list[str]) -> None:
    """Name each node of the inference copy ``g2`` by its node id (``ids``, in order), as errors name it.

    Why: onnx's inference errors name a node by its ONNX name ("node name: ins"), and where two nodes share a name
    (or have none, or a nameless one is ``SequenceInsert_3`` in one count and another in the copy, whose stood-in
    constants are left out) the node blamed was another than the one at fault: a SequenceInsert of an int64 tensor
    into a float sequence, second of two nodes named ``ins``, was reported as ``ins``, the valid first one."""
    for n, nid in zip(g2.node, ids):
        n.name = nid


def _is_constant(n) -> bool:
    """Whether ``n`` is ONNX's ``Constant``, which runtimes fold into an initializer when they load the model (it
    is no node there: its name may repeat another node's, and the importer plans its output as a weight)."""
    return n.op_type == "Constant" and (getattr(n, "domain", "") or "") in ("", "ai.onnx")


def _repeated_name(nodes) -> tuple[str, int, int] | None:
    """``(name, first index, second index)`` of the first two of ``nodes`` that share a name, or None; unnamed nodes
    and ``Constant`` nodes (folded away by runtimes) do not count."""
    seen: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if not n.name or _is_constant(n):
            continue
        if n.name in seen:
            return n.name, seen[n.name], i
        seen[n.name] = i
    return None


def _check_node_names(model) -> None:
    """Two nodes of one name in the graph, or in the body of a local function a node calls, are refused naming the
    name, the nodes' positions and ops (and the function), as onnxruntime refuses the model ("two nodes with same
    node name").

    Why: the importer made the second ``n`` into ``n_1`` (and pushed a node really named ``n_1`` to ``n_2``), so
    the graph and the plan named nodes the model does not have, with nothing saying which ONNX node each was,
    while onnxruntime will not load the model at all. ``Constant`` nodes are exempt (onnxruntime folds them into
    initializers before it checks the names, and runs such a model), and so are uncalled functions (never inlined,
    never checked)."""
    g = model.graph
    hit = _repeated_name(g.node)
    if hit is not None:
        name, a, b = hit
        raise GraphError(f"nodes #{a} ({g.node[a].op_type}) and #{b} ({g.node[b].op_type}) of the graph are both "
                         f"named {name!r}: onnxruntime refuses the model (\"two nodes with same node name\"); give "
                         "each node its own name")
    for k, who in sorted(_called_functions(model).items()):
        f = model.functions[k]
        hit = _repeated_name(f.node)
        if hit is not None:
            name, a, b = hit
            raise GraphError(f"nodes #{a} ({f.node[a].op_type}) and #{b} ({f.node[b].op_type}) of local function "
                             f"{_function_name(f)} (called by {who}) are both named {name!r}: onnxruntime refuses "
                             "the model once it inlines the call (\"two nodes with same node name\"); give each "
                             "node of the body its own name")


def _node_ids(g) -> list[str]:
    """ONNX node names, kept as they are; an unnamed node is ``<op>_<index>``.

    Two named nodes other than ``Constant``s never share a name here (``_check_node_names``); the first other
    node of a name gets it. A generated name that is taken, and a ``Constant`` (folded away, never a node of the
    graph) whose name another node has, get the first free suffix ``_1``, ``_2``...; the search resumes where the
    last repeat of that name stopped (a suffix once refused stays refused), so 100k nodes of one name cost
    100k tries, not 5 billion (the checks before ``_check_node_names`` name nodes by these ids too)."""
    taken = {n.name for n in g.node if n.name}
    owner: dict[str, int] = {}   # a name -> the first node not a Constant that has it: that node's id is its name
    for i, n in enumerate(g.node):
        if n.name and not _is_constant(n):
            owner.setdefault(n.name, i)
    seen: set[str] = set()
    next_k: dict[str, int] = {}
    ids = []
    for i, n in enumerate(g.node):
        base = n.name or f"{n.op_type}_{i}"
        nid = base
        if nid in seen or owner.get(nid, i) != i or (nid != n.name and nid in taken):
            k = next_k.get(base, 1)
            nid = f"{base}_{k}"
            while nid in seen or nid in taken:  # never n.name itself: that is base
                k += 1
                nid = f"{base}_{k}"
            next_k[base] = k + 1
        seen.add(nid)
        ids.append(nid)
    return ids


def _declared_type(vi) -> tuple[int, list | None] | None:
    """``(elem type, dims)`` a value_info declares (dims: ints, or None for a symbolic or unknown one; the
    list None when no shape is given), or None when it declares no tensor type."""
    if not vi.type.HasField("tensor_type"):
        return None
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
    return tt.elem_type, dims


def _show_type(elem: int, dims: list | None) -> str:
    shape = "of unknown rank" if dims is None else ["?" if d is None else d for d in dims]
    return f"{_dtype_name(_need_onnx(), elem)} {shape}"


def _check_declarations(g) -> None:
    """A value declared more than once (graph input, graph output, ``value_info``) must not be declared with
    two types or shapes. ONNX's inference checks a declaration against what it infers, but an op it does not
    define (a custom or ``com.microsoft`` op) is sized by its declaration alone, and which of two conflicting
    ones was taken depended on their order: ``[3]`` then ``[1000]`` planned 4,000 bytes, the reverse 12.
    A negative declared dimension is refused here, before inference: a Slice of such a value aborted the process
    (onnx's Slice inference clamps into ``[0, dim - 1]`` under a C++ assertion) before the importer could refuse it."""
    seen: dict[str, tuple[int, list | None]] = {}
    kinds = ["graph input"] * len(g.input) + ["graph output"] * len(g.output) + ["value_info"] * len(g.value_info)
    for kind, vi in zip(kinds, list(g.input) + list(g.output) + list(g.value_info)):
        this = _declared_type(vi)
        if this is None:
            continue
        if vi.type.tensor_type.elem_type == 0:   # (onnxruntime: "Invalid tensor data type 0"; onnx's own text)
            raise GraphError(f"{kind} {vi.name!r} has dtype undefined, which has no fixed byte size (it is declared "
                             "a tensor of element type 0, UNDEFINED: onnxruntime refuses to load the model, \"Invalid "
                             "tensor data type 0\")")
        for i, d in enumerate(this[1] or ()):
            if d is not None and d < 0:   # (before inference: onnx's Slice inference aborts the process on one)
                raise GraphError(f"{kind} {vi.name!r}: value {vi.name!r} dimension {i} is negative ({d}), which no "
                                 "tensor has")
        first = seen.setdefault(vi.name, this)
        (e1, d1), (e2, d2) = first, this
        clash = (e1 and e2 and e1 != e2) or (d1 is not None and d2 is not None and (
            len(d1) != len(d2) or any(a is not None and b is not None and a != b for a, b in zip(d1, d2))))
        if clash:
            raise GraphError(f"value {vi.name!r} is declared twice with different types or shapes "
                             f"({_show_type(e1, d1)} and {_show_type(e2, d2)}): which one the runtime makes is unknown")
        # (what the two say together: the first's where the second adds nothing)
        seen[vi.name] = (e1 or e2, d2 if d1 is None else [a if a is not None else b for a, b in zip(d1, d2 or d1)])


def _check_no_subgraph(n, who: str) -> None:
    """Refuse a node with a subgraph (``If``, ``Loop``, ``Scan``...), ``who`` naming it as the user knows it.

    Why a function body is checked before inlining: once inlined, an unnamed body node is ``<op>_<index>`` of the
    inlined graph, a name the user's model does not have (a call's ``If`` was refused as ``'If_0'``)."""
    for a in n.attribute:
        if a.type in (5, 10) or a.g.ByteSize() or len(a.graphs):  # GRAPH, GRAPHS
            raise GraphError(f"{who} has a subgraph (attribute {a.name!r}): control flow (If/Loop/Scan) is not "
                             "supported; inline or unroll it first")
    if n.op_type in SUBGRAPH_OPS:
        raise GraphError(f"{who} is control flow: not supported")


#: the typed field of a TensorProto that holds each dtype's values when it has no raw_data (onnx.proto), and how
#: many of them one element takes (complex: 2) or how many elements one entry packs (2-bit: 4, 4-bit: 2)
_TYPED_FIELD = {
    1: ("float_data", 1, 1), 14: ("float_data", 2, 1), 11: ("double_data", 1, 1), 15: ("double_data", 2, 1),
    7: ("int64_data", 1, 1), 12: ("uint64_data", 1, 1), 13: ("uint64_data", 1, 1), 8: ("string_data", 1, 1),
    **{dt: ("int32_data", 1, 1) for dt in (2, 3, 4, 5, 6, 9, 10, 16, 17, 18, 19, 20, 24, 27, 28)},
    **{dt: ("int32_data", 1, 2) for dt in (21, 22, 23)}, **{dt: ("int32_data", 1, 4) for dt in (25, 26)},
}


def _check_tensor_dims(dims, what: str) -> None:
    """GraphError naming ``what`` (an initializer) when one of its dims is negative or their product, taken in
    order as onnxruntime takes it, leaves int64: onnx.checker and onnxruntime refuse the model, and memplan planned
    it (a product overflowing past a later 0 was planned as 0 bytes)."""
    product = 1
    for k, d in enumerate(dims):
        if d < 0:
            raise GraphError(f"{what} dimension {k} is negative ({d}, in its dims {list(dims)}; onnx.checker and "
                             "onnxruntime refuse the model)")
        product *= d
        if product > MAX_DIM:
            raise GraphError(f"{what}: the product of its dims {list(dims)} overflows int64 (onnx.checker and "
                             "onnxruntime refuse the model)")


def _check_tensor_data(onnx, t, what: str) -> None:
    """GraphError naming ``what`` (an initializer) when the data it holds is not as long as its dims and dtype
    make it: ``raw_data`` (where set, even empty) of another byte length, an external file's ``length`` (where given;
    the file itself is not read), or else another count of values in the dtype's typed field (``float_data``,
    ``int64_data``, ...). Why: memplan planned such a weight by its dims, while onnxruntime refuses the model
    ("raw_data size (8 bytes) does not match expected size"): a plan for a model that never runs."""
    _check_tensor_dims(t.dims, what)
    bits = _BITS.get(t.data_type)
    count = math.prod(t.dims)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        length = next((e.value for e in t.external_data if e.key == "length"), None)
        if length is not None and bits is not None and length.strip().isdigit() \
                and int(length) != _nbytes(bits, tuple(t.dims)):
            raise GraphError(f"{what}: its external data's length is {int(length)} bytes, but its dims "
                             f"{list(t.dims)} and dtype {_dtype_name(onnx, t.data_type)} make "
                             f"{_nbytes(bits, tuple(t.dims))} (onnxruntime refuses the model)")
        return
    if t.HasField("raw_data"):
        if bits is not None and len(t.raw_data) != _nbytes(bits, tuple(t.dims)):
            raise GraphError(f"{what}: its raw_data holds {len(t.raw_data)} bytes, but its dims {list(t.dims)} and "
                             f"dtype {_dtype_name(onnx, t.data_type)} make {_nbytes(bits, tuple(t.dims))} "
                             "(onnxruntime refuses the model)")
        return
    field = _TYPED_FIELD.get(t.data_type)
    if field is None:
        return
    name, per_element, per_entry = field
    want = -(-count * per_element // per_entry)
    have = len(getattr(t, name))
    if have != want:
        raise GraphError(f"{what}: its {name} holds {have} values, but its dims {list(t.dims)} and dtype "
                         f"{_dtype_name(onnx, t.data_type)} make {want} (onnxruntime refuses the model)")


def _check_sparse(onnx, st, what: str) -> None:
    """``_check_tensor_data``'s checks of a sparse tensor ``what`` (a sparse initializer, a Constant's
    ``sparse_value``): its dense dims, its values and indices, and each index inside the dense shape."""
    _check_tensor_dims(st.dims, what)
    _check_tensor_data(onnx, st.values, f"{what}'s values")
    _check_tensor_data(onnx, st.indices, f"{what}'s indices")
    values, indices = list(st.values.dims), list(st.indices.dims)
    if len(values) != 1 or indices not in (values, [*values, len(st.dims)]):
        raise GraphError(f"{what}: its values' dims {values} and its indices' dims {indices} are not [NNZ] and [NNZ] "
                         f"or [NNZ, {len(st.dims)}] (onnx.checker and onnxruntime refuse the model)")
    if st.indices.data_type not in SPARSE_INDEX_TYPES:   # (a uint64 index was read as the int64 it wraps to)
        raise GraphError(f"{what}: its indices {st.indices.name!r} are of dtype "
                         f"{_dtype_name(onnx, st.indices.data_type)}; onnxruntime takes int8, int16, int32 or int64 "
                         "and refuses the model")
    _check_sparse_indices(st, what)


#: the dtypes of a sparse tensor's indices that onnxruntime reads (TensorProto's INT8, INT16, INT32, INT64)
SPARSE_INDEX_TYPES = frozenset({3, 5, 6, 7})


#: the tensor attributes of the nodes that are data, not a description (folded into weights, or a fill value)
_DATA_ATTRIBUTES = {"Constant": ("value", "sparse_value"), "ConstantOfShape": ("value",)}


def _check_node_tensors(onnx, n, nid: str) -> None:
    """``_check_tensor_data`` (``_check_sparse``) of the data a ``Constant`` or ``ConstantOfShape`` node holds, each
    error naming the node and the attribute: a dense value was checked alone, so a ``sparse_value`` or a fill whose
    data disagreed with its dims was planned, where onnxruntime refuses the model."""
    names = _DATA_ATTRIBUTES.get(n.op_type, ()) if n.domain in ("", "ai.onnx") else ()
    for a in n.attribute:
        if a.name not in names:
            continue
        what = f"node {nid!r} ({n.op_type})'s {a.name}"
        if a.HasField("t"):
            _check_tensor_data(onnx, a.t, what)
        if a.HasField("sparse_tensor"):
            _check_sparse(onnx, a.sparse_tensor, what)


def _check_sparse_indices(st, what: str) -> None:
    """GraphError naming the sparse tensor ``what`` one of whose indices lies outside its dense shape: onnx.checker
    and onnxruntime refuse such a model, and memplan planned it (as the dense weight its dims declare). The
    indices are the linear ones (shape ``[NNZ]``, in ``0 .. prod(dims) - 1``) or coordinates (``[NNZ, rank]``,
    column ``k`` in ``0 .. dims[k] - 1``). Indices in an external file are not read here (the weights never are)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    if st.indices.data_location == TensorProto.EXTERNAL:
        return
    try:
        idx = np.asarray(numpy_helper.to_array(st.indices))
    except Exception:   # noqa: BLE001 - indices onnx itself cannot read: left to the rest of the import
        return
    dims = [int(d) for d in st.dims]
    top = np.iinfo(np.int64).max   # (a larger dense size has no index past it)
    if idx.ndim == 1:
        limits = np.int64(min(math.prod(dims), top))
    elif idx.ndim == 2 and idx.shape[1] == len(dims):
        limits = np.asarray([min(d, top) for d in dims], dtype=np.int64)
    else:
        return
    idx = idx.astype(np.int64, copy=False)
    bad = np.flatnonzero(((idx < 0) | (idx >= limits)).ravel())
    if bad.size:
        at = np.unravel_index(int(bad[0]), idx.shape)
        raise GraphError(f"{what}: index {int(idx[at])} at position {list(map(int, at))} "
                         f"of its indices {st.indices.name!r} lies outside its dims {dims} (onnx.checker and "
                         "onnxruntime refuse the model)")


def _check_structure(g, node_ids: list[str], inits: set[str]) -> None:
    """Subgraphs, topological order and single assignment, each error naming the node."""
    for what, values in (("graph input", [v.name for v in g.input]), ("graph output", [v.name for v in g.output]),
                         ("initializer", [t.name for t in g.initializer]),
                         ("sparse initializer", [t.values.name for t in g.sparse_initializer])):
        for i, v in enumerate(values):
            if not v:  # else a tensor of id "" (an error naming no ONNX element) or an output nothing makes
                raise GraphError(f"{what} #{i} has an empty name (ONNX names every {what})")
        if what != "graph output" and len(set(values)) != len(values):   # (an output may be listed twice)
            dup = next(v for i, v in enumerate(values) if v in values[:i])
            raise GraphError(f"{what} {dup!r} is declared twice (ONNX names each value once)")
    _check_declarations(g)
    both = {t.name for t in g.initializer} & {t.values.name for t in g.sparse_initializer}
    if both:   # two weights of one name: which one a reader means (and its size) is anyone's guess
        raise GraphError(f"initializer {min(both)!r} is declared twice, as a dense and as a sparse initializer "
                         "(ONNX names each value once)")
    import onnx

    for t in g.initializer:
        _check_tensor_data(onnx, t, f"initializer {t.name!r}")
    for st in g.sparse_initializer:
        _check_sparse(onnx, st, f"sparse initializer {st.values.name!r}")
    for i, n in enumerate(g.node):   # a Constant is an initializer the runtime folds in (planned as a weight)
        _check_node_tensors(onnx, n, node_ids[i])
    producer: dict[str, int] = {}
    inputs = {v.name for v in g.input}
    for i, n in enumerate(g.node):
        _check_no_subgraph(n, f"node {node_ids[i]!r} ({n.op_type})")
        check_before_inference(n, f"node {node_ids[i]!r} ({n.op_type})")   # (inference may kill the process)
        _check_resize_axes(n, node_ids[i])
        _check_rnn_layout(n, node_ids[i])
        for o in n.output:
            if not o:
                continue
            if o in producer:
                raise GraphError(f"value {o!r} is produced twice (by nodes {node_ids[producer[o]]!r} and "
                                 f"{node_ids[i]!r})")
            if o in inits:
                raise GraphError(f"node {node_ids[i]!r} writes initializer {o!r}")
            if o in inputs:  # else one id for two tensors, an error that names no node
                raise GraphError(f"node {node_ids[i]!r} writes graph input {o!r}")
            producer[o] = i
    defined = inputs | inits
    for i, n in enumerate(g.node):
        for v in n.input:
            if not v or v in defined:
                continue
            p = producer.get(v)
            if p is None:
                raise GraphError(f"node {node_ids[i]!r} ({n.op_type}) reads {v!r}, which is no graph input, "
                                 "initializer or node output")
            what = "a cycle" if p >= i else "nodes out of topological order"
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}) reads {v!r} before its producer "
                             f"{node_ids[p]!r} runs ({what}; ONNX requires topological node order)")
        defined.update(o for o in n.output if o)


def _check_required_names(onnx, g, node_ids: list[str], opsets: dict[str, int]) -> None:
    """An empty name marks an omitted *optional* input or output; one in the place of a required one (a formal
    parameter the op's schema marks single) is refused, naming the node, the place and the parameter.

    Why: ``Add(X, "")`` or a ``Relu`` whose one output is ``""`` was imported and planned (a node reading only
    ``X``; a node writing nothing), while onnx's checker and onnxruntime refuse the model ("input 1 is marked
    single but has an empty string"): a plan of a model no runtime runs. An empty name among a variadic
    parameter's (a ``Split`` of outputs ``["a", "", "c"]``, a ``Concat`` or ``Sum`` reading ``""``) is refused
    too: ONNX's IR lets an empty name stand only for an omitted *optional* one, a variadic parameter has none to
    omit, and onnxruntime 1.32 crashes on such a Split (the process dies: a segmentation fault) where memplan
    planned it. Ops onnx has no schema for (custom domains, onnxruntime's own) are left as they are: their own
    runtime judges them."""
    schemas: dict[tuple[str, str], Any] = {}
    for i, n in enumerate(g.node):
        if all(n.input) and all(n.output):
            continue
        domain = "" if n.domain == "ai.onnx" else n.domain
        key = (domain, n.op_type)
        if key not in schemas:
            try:
                schemas[key] = onnx.defs.get_schema(n.op_type, opsets.get(domain, 0), domain)
            except Exception:  # noqa: BLE001 - no schema at that version (a custom op): not ours to judge
                schemas[key] = None
        schema = schemas[key]
        if schema is None:
            continue
        option = onnx.defs.OpSchema.FormalParameterOption
        for what, names, params in (("input", n.input, schema.inputs), ("output", n.output, schema.outputs)):
            for k, v in enumerate(names):
                if v or not params:
                    continue
                param = params[min(k, len(params) - 1)]   # (only the last formal parameter may be variadic)
                if k < len(params) and param.option == option.Single:
                    raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {what} #{k} is empty, but {what} "
                                     f"{param.name!r} of {n.op_type}-{schema.since_version} is required (an empty "
                                     "name marks an omitted optional one; onnxruntime refuses the model too)")
                if param.option == option.Variadic and (k >= len(params) - 1):
                    raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {what} #{k} is empty, but it is one of "
                                     f"the variadic {what}s {param.name!r} of {n.op_type}-{schema.since_version}, "
                                     "which ONNX does not let one leave out (an empty name marks an omitted "
                                     "optional one); onnxruntime 1.32 refuses such a model or crashes on it")


#: domains whose ops onnx's checker judges by their schema (onnxruntime runs the same check on them)
_SCHEMA_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def _has_external_tensor(n) -> bool:
    """Whether a tensor attribute of node ``n`` keeps its data in an external file (onnx's checker would look the
    file up relative to the working directory: not the model's folder, and never read here)."""
    external = 1   # TensorProto.EXTERNAL
    return any(t.data_location == external
               for a in n.attribute
               for t in [a.t, *a.tensors, a.sparse_tensor.values, a.sparse_tensor.indices,
                         *(s.values for s in a.sparse_tensors), *(s.indices for s in a.sparse_tensors)])


#: ops onnx marks deprecated at an opset that onnxruntime still runs there (GroupNormalization-18, whose scale and bias
#: are per group, superseded by -21's per channel): onnx's checker refuses them, onnxruntime does not
ORT_RUNS_DEPRECATED = frozenset({("", "GroupNormalization")})


def _check_node_schemas(onnx, g, node_ids: list[str], model) -> None:
    """Each node of an op onnx defines (the default and ``ai.onnx.ml`` domains) checked against its schema at the
    model's opset, as ``onnx.checker.check_node`` does: an attribute given twice, of another type than the schema's
    (or of none), one the op does not have, an op deprecated at that opset... refused naming the node and what the
    checker says.

    Why: such a node was planned by what onnx's shape inference reads of it (the last of two ``axis`` attributes,
    the integer field of ``axis=1.0``: 0), a reading no runtime makes: onnxruntime runs this very check on every
    node before it runs a model, and refuses it (a Gather of ``[3, 2]`` by 5 indices with ``axis`` 1 then 0 was
    planned 40 bytes; taken by its first axis it writes 60). Left out: an op onnx has no schema for at that opset
    (onnxruntime's own ops in the default domain, such as ``SimplifiedLayerNormalization``: their runtime judges
    them), a ``Constant`` (folded into a weight; its data is checked as an initializer's), and a node with a tensor
    attribute in an external file (the checker would look for it relative to the working directory) or a subgraph
    (refused before: ``_check_no_subgraph``)."""
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = opsets
    known: dict[tuple[str, str], bool] = {}
    for i, n in enumerate(g.node):
        domain = "" if n.domain == "ai.onnx" else n.domain
        if (domain not in _SCHEMA_DOMAINS or (n.op_type == "Constant" and domain == "") or _has_external_tensor(n)
                or any(a.type in (5, 10) for a in n.attribute)):   # (a subgraph: refused before, by name)
            continue
        key = (domain, n.op_type)
        if key not in known:
            known[key] = onnx.defs.has(n.op_type, domain) and domain in opsets and _schema_at(
                onnx, n.op_type, opsets[domain], domain)
        if not known[key]:
            continue
        names = [a.name for a in n.attribute]
        twice = next((a for k, a in enumerate(names) if a in names[:k]), None)
        if twice is not None:   # (onnx's inference reads the last, a runtime may read the first)
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): attribute {twice!r} is given twice (onnx's "
                             "checker and onnxruntime refuse the model)")
        untyped = next((a.name for a in n.attribute if not a.type), None)
        if untyped is not None:
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): attribute {untyped!r} has no type (onnx's "
                             "checker and onnxruntime refuse the model)")
        why = _checker_says(onnx, n, ctx) if n.domain == domain else None
        if n.domain != domain or why is not None:   # (a copy only then: copying every node doubles the time)
            node = onnx.NodeProto()   # named as memplan names it, its domain as the checker knows the default one
            node.CopyFrom(n)
            node.name, node.domain = node_ids[i], domain
            why = _checker_says(onnx, node, ctx)
        if why is not None and (domain, n.op_type) in ORT_RUNS_DEPRECATED and "is deprecated" in why:
            why = None   # (onnxruntime still runs it: sized by its schema, as onnxruntime runs it)
        if why is not None:
            raise GraphError(f"node {node_ids[i]!r} ({n.op_type}): {why} (onnx's checker refuses the node, and "
                             "onnxruntime the model)")


def _checker_says(onnx, n, ctx) -> str | None:
    """The first line of what ``onnx.checker.check_node`` refuses node ``n`` for, or None where it passes."""
    try:
        onnx.checker.check_node(n, ctx)
    except onnx.checker.ValidationError as exc:
        return str(exc).split("\n")[0].strip().rstrip(".")
    return None


def _schema_at(onnx, op: str, version: int, domain: str) -> bool:
    """Whether onnx defines ``op`` of ``domain`` at opset ``version`` (a schema that version resolves to)."""
    try:
        onnx.defs.get_schema(op, version, domain)
    except Exception:  # noqa: BLE001 - onnx.defs.SchemaError: none at that version
        return False
    return True


def _check_rnn_layout(n, nid: str) -> None:
    """Refuse an LSTM, GRU or RNN with ``layout`` other than 0, naming the node.

    Why: one with ``layout=1`` (batch-major, as ``torch.nn.LSTM(batch_first=True)`` means) was planned, sized by
    ONNX's inference, while onnxruntime refuses to create the kernel ("Batchwise recurrent operations (layout ==
    1) are not supported"): a plan for a model no runtime the importer sizes for can run."""
    if n.domain not in ("", "ai.onnx") or n.op_type not in ("LSTM", "GRU", "RNN"):
        return
    layout = next((a.i for a in n.attribute if a.name == "layout"), 0)
    if layout != 0:
        raise GraphError(f"node {nid!r} ({n.op_type}) has layout={layout} (batch-major): onnxruntime refuses to run "
                         "it (\"Batchwise recurrent operations (layout == 1) are not supported\"); export it "
                         "sequence-major (layout=0)")


def _check_resize_axes(n, nid: str) -> None:
    """A Resize that keeps the aspect ratio (``keep_aspect_ratio_policy`` not ``stretch``) over negative ``axes``
    is refused: its output's size is not one that runtimes agree on. ONNX's inference (and the spec) count the
    axes from the end and scale them by one ratio; onnxruntime 1.32 leaves those dimensions at the input's size
    (``[1, 1, 3, 5]`` to ``sizes=[7, 4], axes=[-2, -1]``, ``not_larger``: planned [1, 1, 2, 4], 32 bytes, where
    onnxruntime writes 60); onnx's reference evaluator fails. Positive axes size the same everywhere."""
    if n.op_type != "Resize" or n.domain not in ("", "ai.onnx"):
        return
    attrs = {a.name: a for a in n.attribute}
    policy = attrs["keep_aspect_ratio_policy"].s if "keep_aspect_ratio_policy" in attrs else b"stretch"
    policy = policy.decode("utf-8", "replace") if isinstance(policy, bytes) else str(policy)
    if policy != "stretch" and "axes" in attrs and any(a < 0 for a in attrs["axes"].ints):
        raise GraphError(f"node {nid!r} (Resize) keeps the aspect ratio ({policy!r}) over negative axes "
                         f"{list(attrs['axes'].ints)}, whose output size runtimes disagree on (onnxruntime leaves "
                         "them at the input's size): write the axes as non-negative")


def _flat(v):
    """A known value as the 1-D array onnxruntime reads it (None stays None).

    Why: onnxruntime reads a Resize's ``scales`` or ``sizes`` of any rank by their elements (a 0-D ``2.0``, a
    ``[[20]]``); ``len()`` of a 0-D one, and ``float()`` of a row of a 2-D one, failed with a raw TypeError."""
    import numpy as np

    return None if v is None else np.asarray(v).reshape(-1)


def _ort_resize_dims(n, x: tuple, values: dict, opset: int) -> tuple[dict[int, int], str] | None:
    """({axis: size} onnxruntime's kernel gives the output of Resize or Upsample ``n`` of an ``x``-shaped input,
    how it computes them), for the dimensions it computes in float32 arithmetic: ``int64(scale * dim)`` for
    ``scales`` (an attribute before Upsample-9), ``round(min or max(size / dim) * dim)`` for ``sizes`` kept in
    their aspect ratio (``keep_aspect_ratio_policy``, Resize-18). None where neither applies or is known."""
    import numpy as np

    attrs = {a.name: a for a in n.attribute}
    axes = list(attrs["axes"].ints) if opset >= 18 and "axes" in attrs else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if any(not 0 <= a < len(x) or not isinstance(x[a], int) for a in axes):
        return None
    sized = n.op_type == "Resize" and opset >= 11 and len(n.input) > 3 and n.input[3]
    with np.errstate(all="ignore"):
        if sized:
            policy = attrs["keep_aspect_ratio_policy"].s if "keep_aspect_ratio_policy" in attrs else b"stretch"
            sizes = _flat(values.get(n.input[3]))
            if opset < 18 or policy not in (b"not_larger", b"not_smaller") or sizes is None or len(sizes) != len(axes):
                return None
            pick = min if policy == b"not_larger" else max
            scale = pick(np.float32(s) / np.float32(x[a]) for a, s in zip(axes, sizes.astype(np.float32)))
            dims = [np.floor(np.float32(scale * np.float32(x[a])) + np.float32(0.5)) for a in axes]
            how = f"{policy.decode()} sizes {[int(v) for v in sizes]}"
        else:
            if n.op_type == "Upsample" and opset < 9:
                scales = np.asarray(list(attrs["scales"].floats) if "scales" in attrs else [], np.float32)
            else:
                k = 2 if n.op_type == "Resize" and opset >= 11 else 1
                scales = _flat(values.get(n.input[k])) if k < len(n.input) and n.input[k] else None
                if scales is None or scales.dtype.kind != "f":
                    return None
            if len(scales) != len(axes):
                return None
            dims = [np.float32(scale) * np.float32(x[a]) for a, scale in zip(axes, scales.astype(np.float32))]
            how = f"scales {[float(v) for v in scales.astype(np.float32)]}"
    if not all(np.isfinite(d) for d in dims):
        return None
    return {a: int(d) for a, d in zip(axes, dims)}, how


def _ort_resize_scales(n, x: tuple, values: dict, opset: int) -> list[float] | None:
    """The scale of every dimension onnxruntime's Resize kernel validates for node ``n`` of an ``x``-shaped input:
    its ``scales`` (1 for an axis ``axes`` leaves out), ``size / dim`` of its ``sizes``, or the one scale
    ``keep_aspect_ratio_policy`` picks for the axes it names. None where they are unknown."""
    import numpy as np

    if not all(isinstance(d, int) for d in x):
        return None
    attrs = {a.name: a for a in n.attribute}
    if n.op_type == "Upsample":   # (scales an attribute before opset 9, an input from 9)
        if opset < 9:
            scales = list(attrs["scales"].floats) if "scales" in attrs else None
        else:
            v = values.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
            scales = None if v is None or v.dtype.kind != "f" else [float(np.float32(e)) for e in v.reshape(-1)]
        return scales if scales is not None and len(scales) == len(x) else None
    if n.op_type != "Resize" or opset < 11:
        return None
    axes = list(attrs["axes"].ints) if opset >= 18 and "axes" in attrs else list(range(len(x)))
    axes = [a + len(x) if a < 0 else a for a in axes]
    if any(not 0 <= a < len(x) for a in axes) or len(set(axes)) != len(axes):
        return None
    given = None
    if len(n.input) > 3 and n.input[3]:
        sizes = _flat(values.get(n.input[3]))
        if sizes is None or sizes.dtype.kind not in "iu" or len(sizes) != len(axes) or any(x[a] == 0 for a in axes):
            return None
        given = [float(np.float32(s) / np.float32(x[a])) for a, s in zip(axes, sizes)]
        policy = attrs["keep_aspect_ratio_policy"].s if opset >= 18 and "keep_aspect_ratio_policy" in attrs else b"stretch"
        if policy in (b"not_larger", b"not_smaller"):
            given = [(min if policy == b"not_larger" else max)(given)] * len(axes)
    elif len(n.input) > 2 and n.input[2]:
        scales = _flat(values.get(n.input[2]))
        if scales is None or scales.dtype.kind != "f" or len(scales) != len(axes):
            return None
        given = [float(np.float32(v)) for v in scales]
    if given is None:
        return None
    full = [1.0] * len(x)
    for a, v in zip(axes, given):
        full[a] = v
    return full


def _check_resize_mode(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Resize or Upsample of a mode it does not have (Resize: ``nearest``, ``linear``, ``cubic``; Upsample from opset
    7: ``nearest``, ``linear``), or a ``linear`` or ``cubic`` one whose scales onnxruntime's kernel does not interpolate,
    is refused naming the node: ``linear`` of 2-D and 3-D inputs, 4-D ones of outermost two scales 1 (or outermost and innermost: NHWC),
    5-D ones of outermost two 1; ``cubic`` of 2-D inputs, 4-D ones of outermost two scales 1, or of outermost and
    innermost 1 with ``antialias`` or with every other scale at least 1. (``nearest`` takes any.)

    Why: ONNX's inference sizes any such Resize and memplan planned it (a linear Resize of ``[1, 2, 6, 8]`` to
    ``sizes`` ``[1, 2, 2, 7]`` kept in aspect ratio scales every axis by 1/3: planned ``[0, 1, 2, 3]``), while
    onnxruntime refuses to run it ("'Linear' mode only supports: ... 4-D inputs with the corresponding outermost 2
    scale values being 1")."""
    if n.op_type not in ("Resize", "Upsample") or n.domain not in ("", "ai.onnx") or not n.input:
        return
    mode = next((a.s for a in n.attribute if a.name == "mode"), b"nearest")
    known = (b"nearest", b"linear") if n.op_type == "Upsample" else (b"nearest", b"linear", b"cubic")
    if (n.op_type == "Resize" or opset >= 7) and mode not in known:
        raise GraphError(f"{where}: its mode {mode.decode(errors='replace')!r} is none of {n.op_type}'s "
                         f"({', '.join(repr(k.decode()) for k in known)}); onnxruntime refuses to run it")
    if mode not in (b"linear", b"cubic"):
        return
    x = shapes.get(n.input[0], (0, None))[1]
    sc = _ort_resize_scales(n, x, values, opset) if x is not None else None
    if sc is None:
        return
    r = len(sc)
    antialias = next((a.i for a in n.attribute if a.name == "antialias"), 0) if opset >= 18 else 0
    outer = r >= 2 and sc[0] == 1 and sc[1] == 1
    nhwc = r == 4 and sc[0] == 1 and sc[3] == 1
    if mode == b"linear":
        ok = r in (2, 3) or (r == 4 and (outer or nhwc)) or (r == 5 and outer)
    else:
        ok = r == 2 or (r == 4 and (outer or (nhwc and (antialias or (sc[1] >= 1 and sc[2] >= 1)))))
    if not ok:
        raise GraphError(f"{where}: its {mode.decode()} mode over a {r}-D input {n.input[0]!r} ({list(x)}) at "
                         f"scales {sc} is not one onnxruntime's kernel interpolates (its outermost scales must be 1); "
                         "onnxruntime refuses to run it")


def _check_resize_scales(n, where: str, shapes: dict, values: dict, opset: int) -> None:
    """A Resize or Upsample whose output size onnxruntime computes otherwise than ONNX's inference is refused,
    naming the node and the dimension. onnxruntime's kernels compute it in float32 arithmetic
    (``_ort_resize_dims``), ONNX's inference (and the spec) exactly: where ``dim * scale`` falls just below an
    integer (or, kept in aspect ratio, just below a half), float32 rounds it up (``10 * 1.6999999``: ONNX 16,
    onnxruntime 17; ``50 * 23 / 20``: 57 and 58), and a Resize of ``[1, 1, 10, 13]`` planned 1,664 bytes was
    written 1,768 by onnxruntime, an overrun that also gives everything after it the wrong shape."""
    if n.op_type not in ("Resize", "Upsample") or n.domain not in ("", "ai.onnx") or not n.input or not n.output:
        return
    x, y = shapes.get(n.input[0], (0, None))[1], shapes.get(n.output[0], (0, None))[1]
    found = _ort_resize_dims(n, x, values, opset) if x is not None and y is not None and len(x) == len(y) else None
    for a, ort in (found[0] if found else {}).items():
        if isinstance(y[a], int) and ort != y[a]:
            raise GraphError(f"{where}: dimension {a} of its output {n.output[0]!r} ({x[a]} by {found[1]}) is {y[a]} "
                             f"by ONNX's rule and {ort} as onnxruntime computes it (in float32): which size a runtime "
                             "writes is unknown; give the output's size exactly (Resize's 'sizes', stretched)")


# -- shape inference --------------------------------------------------------------------------------

def _check_batch_applies(source: str, batch: int, static: list[tuple[str, int]], applied: bool,
                         spelling: Spelling) -> None:
    """``batch`` must set some input's leading dimension or agree with the model's: on a model whose every
    leading dimension is fixed, a batch it cannot take would be ignored, and the user would get a graph of
    another batch than the one asked for, silently. One input whose leading dimension equals ``batch`` is
    agreement: other inputs' leading dimensions need not be a batch (``Expand``'s shape, a ``[3]`` scale)."""
    if not applied and static and all(v != batch for _name, v in static):
        name, v = static[0]
        raise GraphError(f"{source}: {spelling.batch(batch)}: graph input {name!r} has a fixed leading dimension "
                         f"{v} and no input's is symbolic or unknown, so the batch cannot be set (leave "
                         f"{spelling.batch_option} out)")


def _shape_inputs(op: str, opset: int) -> tuple[int, ...]:
    """The inputs of standard op ``op`` whose values size its outputs, at the model's ``opset``."""
    for since, controls in SHAPE_INPUTS_BEFORE.get(op, ()):
        if opset >= since:
            return controls
    return SHAPE_INPUTS.get(op, ())


@dataclass(frozen=True)
class DataDependent:
    """The values whose size depends on run-time data (``sized``), and those of them only the unread small
    tensors make so (``by_unread``: computed from ``hidden`` values, not from a graph input's values or a
    data-dependent op), which the errors blame on the unread data rather than on run time."""

    sized: frozenset[str]
    by_unread: frozenset[str]


def _data_dependent_outputs(g, opset: int, hidden: Collection[str] = (),
                            overridable: Collection[str] = ()) -> DataDependent:
    """The values whose size depends on what the graph inputs hold at run time, not only on their shapes: no
    declared size of theirs is planned (it is a traced example's: a longer result would overrun its slot).

    One pass in node order (ONNX lists nodes topologically) with two marks: *valued* (computed from the
    values of a graph input, or from a data-dependent shape) and *sized* (the shape itself is data-dependent).
    An output is sized when its op is in ``DATA_DEPENDENT_OPS`` (or it is one ``ORT_DATA_DEPENDENT`` names), when one of its ``SHAPE_INPUTS`` (``ORT_SHAPE_INPUTS``) is valued,
    or when any input is sized (a shape carried on); valued when any input is valued or sized, except that
    ``Shape`` / ``Size`` of a tensor whose size is fixed give fixed values. Initializers and constants are
    neither: a Reshape to ``Concat(Shape(x)[0], 64)`` stays planned, a Range to ``ReduceMax(x)`` does not.
    ``hidden`` values (small tensors whose external data was not read) are valued too: a shape computed from
    one is as unknown to the importer as one computed from an input, and the model's declaration of it is
    no more checked (an Expand to an unread shape constant declared half its size was planned at that).
    ``overridable`` initializers (``_overridable``) are graph inputs, valued like the others.

    The same pass carries both marks twice, with and without ``hidden`` (the second only where there are
    hidden values), so the graph is walked once per import: it was walked three times, each a fifth of the
    import of a 5,000-node chain."""
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    base = {v.name for v in g.input if v.name not in inits} | set(overridable)
    tracks = [(base | set(hidden), set())] + ([(set(base), set())] if hidden else [])
    for n in g.node:
        ins = [i for i in n.input if i]
        standard = n.domain in ("", "ai.onnx")
        shape_of = standard and n.op_type in SHAPE_OF_OPS
        controls = (() if shape_of else _shape_inputs(n.op_type, opset) if standard
                    else ORT_SHAPE_INPUTS.get(n.op_type, ()) if n.domain == ORT_DOMAIN else ())
        by_op = standard and n.op_type in DATA_DEPENDENT_OPS and not shape_of
        ort_sized = ORT_DATA_DEPENDENT.get(n.op_type, ()) if n.domain == "com.microsoft" else ()
        for valued, sized in tracks:
            any_sized = any(i in sized for i in ins)
            if shape_of:
                out_valued, out_sized = any_sized, False
            else:
                out_sized = any_sized or by_op or any(k < len(n.input) and n.input[k] in valued for k in controls)
                out_valued = any_sized or any(i in valued for i in ins)
            for k, o in enumerate(n.output):
                if o:
                    if out_valued:
                        valued.add(o)
                    if out_sized or k in ort_sized:
                        sized.add(o)
    sized = tracks[0][1]
    return DataDependent(frozenset(sized), frozenset(sized - tracks[1][1]) if hidden else frozenset())


def _computed_from(g, vname: str) -> list[str]:
    """Every value ``vname`` is computed from (itself included), back through the nodes of ``g`` that make them."""
    producer = {o: n for n in g.node for o in n.output if o}
    seen, todo = {vname}, [vname]
    while todo:
        v = todo.pop()
        for i in producer[v].input if v in producer else ():
            if i and i not in seen:
                seen.add(i)
                todo.append(i)
    return list(seen)


def _initializers_not_inputs(model):
    """``model`` without the graph inputs that are also initializers (a copy; the caller's model is never changed):
    each is then the constant it holds, as IR version 3 read it (``import_onnx(constant_initializers=True)``)."""
    inits = {t.name for t in model.graph.initializer} | {t.values.name for t in model.graph.sparse_initializer}
    if not any(v.name in inits for v in model.graph.input):
        return model
    keep = [v for v in model.graph.input if v.name not in inits]
    copy = type(model)()
    copy.CopyFrom(model)
    del copy.graph.input[:]
    copy.graph.input.extend(keep)
    return copy


def _overridable(model) -> frozenset[str]:
    """The graph inputs of ``model`` that are also initializers where its IR version (4 and later) makes such an
    initializer a default value the caller may override (IR 3 listed every initializer as an input, a constant).

    Why: onnxruntime runs such an input with whatever the caller feeds (and never folds it as a constant), so a
    Reshape, Expand or Range sized by its value sizes what the caller feeds, not the default: an ``Expand`` to an
    overridable ``[2, 3, 4]`` was planned 96 bytes, and fed ``[5, 2, 3, 4]`` onnxruntime wrote 480."""
    if model.ir_version < 4:
        return frozenset()
    inits = {t.name for t in model.graph.initializer} | {t.values.name for t in model.graph.sparse_initializer}
    return frozenset(v.name for v in model.graph.input if v.name in inits)


def _overridden_note(g, vname: str, overridable: Collection[str]) -> str:
    """The note on a data-dependent ``vname`` computed from overridable initializers (``_overridable``), naming
    the first: the value is data-dependent only because the model lists a constant among its inputs."""
    found = sorted(v for v in _computed_from(g, vname) if v in overridable)
    if not found:
        return ""
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"; note: it follows graph input {found[0]!r}{more}, whose initializer is only a default the caller may "
            "override (ONNX IR version 4 and later), so its value is not known before the run; if it is a constant, "
            "remove it from the graph inputs, or import with constant_initializers=True (memplan import "
            "--constant-initializers)")


def _unread_why(g, vname: str, hidden: dict[str, str], unread: dict[str, str]) -> str:
    """Why ``vname``, sized by small tensors whose external data was not read, has no size: the first of those
    it is computed from, and why it was not read (``hidden``: value -> which tensor; ``unread``: which -> why,
    as ``_infer`` records them)."""
    found = list(dict.fromkeys(hidden[v] for v in _computed_from(g, vname) if v in hidden))
    k = min(found) if found else next(iter(unread))
    why = unread[k]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"its size follows values held in external data: {k}{more}, not read ({why}), so no size can be "
            "planned (the model's declared one cannot be checked against them)")


def _infer(onnx, model, batch: int | None, fixed: dict[str, int], inits: set[str], source: str,
           base_dir: str | None = None, unread: dict[str, str] | None = None, spelling: Spelling = PYTHON,
           facts: dict | None = None, seq_bytes: dict | None = None, hidden: dict[str, str] | None = None,
           stand_in: bool = True):
    """Shape-infer a light copy of the model with symbolic dims fixed; returns the inferred graph.

    Initializers of at most ``SMALL_INITIALIZER`` elements keep their data (Reshape shapes, axes), read from
    their external data file when they have one (``base_dir``: the model's folder); one that cannot be read
    is recorded in ``unread``, for the error about the dimension it leaves unknown. The outputs of
    onnxruntime's own ops are sized by its inference where it is installed (``_size_ort_ops``; whether it is:
    ``facts["ort"]``); ``facts["data_dependent"]`` receives the model's data-dependent values
    (``_data_dependent_outputs``, computed once per import, here), ``facts["values"]`` the values folding
    knows (``_known_values``); ``seq_bytes`` receives the byte sizes of
    the tensors each sequence holds, where all of them are known (``_fold_round``); ``hidden`` receives the values whose data was not read
    (each unread initializer, and the outputs of a node with an unread tensor attribute), each with its key in
    ``unread``; ``facts["overridable"]`` the initializers the caller may override (``_overridable``), whose data
    inference is not given."""
    hidden = {} if hidden is None else hidden
    g = model.graph
    m2 = onnx.ModelProto()
    m2.ir_version = model.ir_version
    m2.functions.extend(model.functions)
    g2 = m2.graph
    g2.name = g.name
    stood_in = _large_constants(onnx, g, {(f.domain, f.name) for f in model.functions}) if stand_in else {}
    g2.node.extend(n for k, n in enumerate(g.node) if k not in stood_in)
    _name_by_ids(g2, [nid for k, nid in enumerate(_node_ids(g)) if k not in stood_in])
    _default_domain_as_empty(onnx, model, m2)
    _read_small_attribute_tensors(onnx, g2, base_dir, unread, hidden, g, (facts or {}).get("real_dir"))
    _explicit_defaults(onnx, g2, {("" if o.domain == "ai.onnx" else o.domain): o.version for o in m2.opset_import})
    g2.input.extend(_typed_by_initializers(onnx, g, source, _overridable(model)))
    g2.input.extend(stood_in.values())
    g2.output.extend(g.output)
    g2.value_info.extend(g.value_info)
    declared = {v.name for v in g.input}
    facts = {} if facts is None else facts
    overridable = facts["overridable"] = _overridable(model)
    sizing = _sizing_initializers(g, {(f.domain, f.name) for f in model.functions})
    for t in g.initializer:
        if t.name in overridable:   # typed by its dims as a graph input (_typed_by_initializers), its value unknown
            continue
        external = t.data_location == onnx.TensorProto.EXTERNAL
        small = math.prod(t.dims) <= SMALL_INITIALIZER or t.name in sizing
        if small and external:
            loaded = _read_small_external(onnx, t, base_dir, facts.get("real_dir"))
            if isinstance(loaded, str):
                if unread is not None:
                    unread[f"initializer {t.name!r}"] = loaded
                hidden[t.name] = f"initializer {t.name!r}"
            else:
                t, external = loaded, False
        if small and not external:
            g2.initializer.append(t)
        elif t.name not in declared:
            g2.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:  # a declared input too (IR < 4): drop its data, keep its declaration (typed by its dims)
            pass
    for st in g.sparse_initializer:
        if st.values.name in declared:
            continue
        small = math.prod(st.dims) <= SMALL_INITIALIZER
        if small and onnx.TensorProto.EXTERNAL in (st.values.data_location, st.indices.data_location):
            st, why = _read_sparse_external(onnx, st, base_dir, facts.get("real_dir"))
            if why is not None:
                if unread is not None:
                    unread[f"sparse initializer {st.values.name!r}"] = why
                hidden[st.values.name] = f"sparse initializer {st.values.name!r}"
        dense = _dense_of_sparse(onnx, st) if small else None
        if dense is not None:
            g2.initializer.append(dense)
        else:
            g2.input.append(onnx.helper.make_tensor_value_info(st.values.name, st.values.data_type, list(st.dims)))
    _densify_sparse_constants(onnx, g2)
    if m2.ir_version < 4:
        # IR 3 required every initializer among the graph inputs, and ONNX's inference of such a model types an
        # initializer only through its input: one the model does not list (onnxruntime runs the model all the same)
        # left every value it feeds unsized ("shape inference could not find its rank", "Input 0 expected to have
        # type but instead is null"). Typed here by its own dims, as onnxruntime takes it.
        listed = {vi.name for vi in g2.input}
        g2.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                        for t in g2.initializer if t.name not in listed)

    _standard_ort_ranges(onnx, g2, _default_opset(model))
    _exact_float_ranges(onnx, g2)
    _conv_transpose_output_shapes(onnx, g2, _default_opset(model))
    if any(n.op_type == "Squeeze" for n in g2.node):
        _squeeze_all_of_empty_axes(g2, _initializer_or_constant_values(
            onnx, g2, {n.input[1] for n in g2.node if n.op_type == "Squeeze" and len(n.input) > 1}))
    _standard_slice_ends(onnx, m2)

    # which names exist, to catch typos in --dim
    params: set[str] = set()
    for vi in list(g.input) + list(g2.output) + list(g2.value_info):
        if vi.type.HasField("tensor_type"):
            params.update(d.dim_param for d in vi.type.tensor_type.shape.dim if d.dim_param)
    constants = {vi.name for vi in stood_in.values()}
    real_inputs = [vi for vi in g2.input if vi.name not in inits and vi.name not in constants]
    for k in fixed:
        if k not in params:
            raise GraphError(f"{source}: {spelling.dim_key(k)}: the model has no symbolic dimension {k!r} "
                             f"({_dims_hint(real_inputs, params)})")
    mapping = dict(fixed)
    if batch is not None:
        static: list[tuple[str, int]] = []   # inputs whose leading dimension the model fixes
        applied = False
        for vi in real_inputs:
            shape = vi.type.tensor_type.shape if vi.type.HasField("tensor_type") else None
            if shape is None or not shape.dim:
                continue
            d0 = shape.dim[0]
            if d0.dim_param:
                if fixed.get(d0.dim_param, batch) != batch:   # both options fix it: which one was meant?
                    raise GraphError(f"{source}: graph input {vi.name!r} dimension 0 ({d0.dim_param!r}) is fixed "
                                     f"twice: {spelling.batch(batch)} and "
                                     f"{spelling.dim(d0.dim_param, fixed[d0.dim_param])}; "
                                     "give one")
                mapping.setdefault(d0.dim_param, batch)
                applied = True
            elif not d0.HasField("dim_value"):
                d0.dim_value = batch
                applied = True
            else:
                static.append((vi.name, d0.dim_value))
        _check_batch_applies(source, batch, static, applied, spelling)
    facts["data_dependent"] = _data_dependent_outputs(g, _default_opset(model), hidden, overridable)
    data_dependent = facts["data_dependent"].sized
    # a NonZero's or Unique's size is its input's count alone (``_nonzero_unique``), whatever the model declares: a
    # traced example's count, which a Shape-made input of other dimensions changes (a declared [2, 6] was planned
    # for the 15 entries onnxruntime counts at n=5)
    counted = {o for n in g.node if n.op_type in ("NonZero", "Unique") and n.domain in ("", "ai.onnx")
               for o in n.output if o}
    for vi in list(g2.input) + list(g2.output) + list(g2.value_info):
        if not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if vi.name in data_dependent or vi.name in counted:
                d.Clear()  # only inference may size it: the declared size held for the traced input only
            elif d.dim_param:
                if d.dim_param in mapping:
                    d.dim_value = mapping[d.dim_param]
                elif vi.name not in declared:
                    d.Clear()  # let inference derive it from the fixed inputs
    for vi in real_inputs:
        if not vi.type.HasField("tensor_type"):
            has = f"has type {_type_text(onnx, vi.type)}" if vi.type.WhichOneof("value") else "has no type"
            raise GraphError(f"{source}: graph input {vi.name!r} {has}, not a tensor (only tensors are supported)")
        tt = vi.type.tensor_type
        if tt.elem_type not in _BITS:
            raise GraphError(f"{source}: graph input {vi.name!r} has dtype {_dtype_name(onnx, tt.elem_type)}, "
                             "which has no fixed byte size (unsupported)")
        if not tt.HasField("shape"):
            raise GraphError(f"{source}: graph input {vi.name!r} has no shape")
        for i, d in enumerate(tt.shape.dim):
            if not d.HasField("dim_value"):
                if d.dim_param:
                    how = f"pass {spelling.dim(d.dim_param)}" + (f" or {spelling.batch()}" if i == 0 else "")
                    raise GraphError(f"{source}: graph input {vi.name!r} dimension {i} is symbolic "
                                     f"({d.dim_param!r}) and not fixed: {how}")
                how = f"pass {spelling.batch()}" if i == 0 else "the model must give it"
                raise GraphError(f"{source}: graph input {vi.name!r} dimension {i} is unknown: {how}")
    propagate = _propagates(onnx, m2)
    _check_slice_data(onnx, m2, g, source, propagate)
    ort = facts["ort"] = _size_ort_ops(onnx, m2, source, data_dependent)
    try:
        # (not where --dim/--batch fixed a dimension: a declaration that contradicts them most likely marks a model
        # exported at its example's size, whose own shapes hold at that size only; _contradicted_hint says so)
        inferred = _run_inference(onnx, m2, source, propagate=propagate, lenient=not mapping)
    except GraphError as exc:
        raise GraphError(f"{exc}{_contradicted_hint(g2, str(exc), mapping)}"
                         f"{_contradicted_value(onnx, m2, g, str(exc), propagate)}"
                         f"{_incompatible_hint(str(exc), mapping)}") from None

    def infer_folded(propagate: bool):
        if _slices_unsized(m2, inferred):   # (a fold may have made a negative dimension known: a Pad's pads)
            _check_slice_data(onnx, m2, g, source, propagate)
        try:
            return _run_inference(onnx, m2, source, folded=True, propagate=propagate, lenient=not mapping)
        except GraphError as exc:   # (folded shape values may meet where the dimensions fixed disagree)
            raise GraphError(f"{exc}{_incompatible_hint(str(exc), mapping)}") from None

    for _ in range(MAX_FOLD_ROUNDS):
        pooled = _ort_smaller_outputs(onnx, m2, inferred)   # (before any fold reads the shapes it corrects)
        pooled = _standard_slice_ends(onnx, m2) or pooled   # (likewise: before a fold runs the Slice)
        pooled = _kept_resize_shapes(onnx, m2, inferred) or pooled   # (ONNX leaves a 0 it computes unknown)
        pooled = _einsum_broadcasts(onnx, m2, inferred) or pooled   # (ONNX does not broadcast a label of length 1)
        pooled = _prelu_broadcasts(onnx, m2, inferred) or pooled   # (ONNX does not broadcast X to the slope's shape)
        pooled = _squeezed_split_pieces(onnx, m2, inferred) or pooled   # (onnxruntime drops the axis, ONNX keeps it)
        if any(n.op_type == "Squeeze" and len(n.input) > 1 for n in m2.graph.node):   # (axes folded only now)
            pooled = _squeeze_all_of_empty_axes(m2.graph, _known_values(onnx, m2)) or pooled
        if not pooled and (_all_static(inferred) or not _fold_round(onnx, m2, inferred, seq_bytes)):
            break
        if ort and _ort_outputs_unsized(onnx, m2, inferred):
            # an input only the fold sized (a Reshape to Sqrt of a shape): onnxruntime's inference follows it now
            _check_slice_data(onnx, m2, g, source, propagate)   # (onnxruntime's inference runs onnx's on it too)
            _size_ort_ops(onnx, m2, source, data_dependent)
        propagate = propagate and _long_vector(inferred) is None   # (a long 1-D value sized by the last round)
        inferred = infer_folded(propagate)
    if ort and _ort_outputs_unsized(onnx, m2, inferred):
        # onnxruntime's pass stopped at a standard op its rules fail on (an Expand whose shape it cannot follow):
        # once more, the standard ops onnx sized given to it as sized
        _size_ort_ops(onnx, m2, source, data_dependent, _static_infos(inferred))
        inferred = infer_folded(propagate and _long_vector(inferred) is None)
    if stood_in and not _all_static(inferred):
        # a size left unknown may follow a large Constant's data (a Slice or Gather of it as a Reshape's shape):
        # infer again with every Constant copied in, as before the stand-ins (a model that sizes all its values
        # without that data, the usual one, never pays for this)
        return _infer(onnx, model, batch, fixed, inits, source, base_dir, unread, spelling, facts, seq_bytes,
                      hidden, stand_in=False)
    facts["values"] = _known_values(onnx, m2)
    return inferred


def _read_sparse_external(onnx, st, base_dir: str | None, real_dir: str | None = None):
    """(a copy of the small sparse initializer ``st`` with the external data of its values and indices read in, None),
    or (``st``, why one part cannot be read), as ``_read_small_external`` reads a dense one.

    Why: a sparse initializer whose data lies in an external file was never read, so one used as a Reshape's shape
    was refused as a dimension "ONNX's shape inference could not derive ... although it does not depend on values
    the graph inputs carry", naming neither the tensor nor its unread file."""
    copy = onnx.SparseTensorProto()
    copy.CopyFrom(st)
    for part in (copy.values, copy.indices):
        if part.data_location == onnx.TensorProto.EXTERNAL:
            loaded = _read_small_external(onnx, part, base_dir, real_dir)
            if isinstance(loaded, str):
                return st, loaded
            part.CopyFrom(loaded)
    return copy, None


def _dense_of_sparse(onnx, st):
    """The dense TensorProto (named as the values) that the sparse tensor ``st`` stands for, or None where its data
    lies in an external file or onnx cannot read it.

    Why: onnx's shape inference reads no sparse tensor's data, so a small sparse initializer or a ``Constant``'s
    ``sparse_value`` used as a Reshape's shape (``[0, -1]`` stored as the one value -1 at index 1) left the
    Reshape's output unknown, refused as a dimension "ONNX's shape inference could not derive", where onnxruntime
    reads it as the dense tensor it is (zeros where no index is). The indices are linear (``[NNZ]``) or
    coordinates (``[NNZ, rank]``); ``_check_sparse`` has already checked them against the dims."""
    import numpy as np
    from onnx import numpy_helper

    if onnx.TensorProto.EXTERNAL in (st.values.data_location, st.indices.data_location):
        return None
    try:
        values = np.asarray(numpy_helper.to_array(st.values)).reshape(-1)
        idx = np.asarray(numpy_helper.to_array(st.indices)).astype(np.int64)
        dims = tuple(int(d) for d in st.dims)
        dense = np.zeros(math.prod(dims), dtype=values.dtype)
        if idx.ndim == 2:
            idx = np.ravel_multi_index(tuple(idx.T), dims) if idx.size else idx.reshape(-1)
        dense[idx.reshape(-1)] = values
        t = numpy_helper.from_array(dense.reshape(dims), st.values.name)
    except Exception:  # noqa: BLE001 - data onnx cannot read: left unknown to shape inference, as before
        return None
    if t.data_type != st.values.data_type:
        return None
    return t


def _densify_sparse_constants(onnx, g2) -> None:
    """Give each ``Constant`` of ``g2`` (the copy shape inference reads) holding a small ``sparse_value`` the
    dense ``value`` it stands for (``_dense_of_sparse``: onnx's inference reads no sparse data)."""
    for n in g2.node:
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.attribute) != 1:
            continue
        a = n.attribute[0]
        if a.name != "sparse_value" or math.prod(a.sparse_tensor.dims) > SMALL_INITIALIZER:
            continue
        dense = _dense_of_sparse(onnx, a.sparse_tensor)
        if dense is not None:
            del n.attribute[:]
            n.attribute.extend([onnx.helper.make_attribute("value", dense)])


def _static_infos(g) -> dict:
    """``{value: ValueInfoProto}`` of the values graph ``g`` (an inferred one) gives a dtype and static shape."""
    return {vi.name: vi for vi in list(g.value_info) + list(g.output)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type
            and vi.type.tensor_type.HasField("shape")
            and all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}


def _ort_outputs_unsized(onnx, m2, inferred) -> bool:
    """Whether some output of onnxruntime's own ops in ``m2`` has no static shape in ``inferred``."""
    static = _static_shapes(inferred)
    return any(o and o not in static for n in m2.graph.node if _is_ort_op(onnx, n) for o in n.output)


#: input positions of standard ops whose *data* sizes an output (a shape, axes, pads, sizes, k, a range's bounds)
_SIZE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Slice": (1, 2, 3, 4),
                "Pad": (1, 2, 3), "Resize": (1, 2, 3), "Upsample": (1,), "TopK": (1,), "Range": (0, 1, 2),
                "OneHot": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,),
                "Col2Im": (1, 2), "MaxUnpool": (2,), "DFT": (1, 2), "STFT": (1, 2, 3), "Compress": (1,), "NonZero": (0,), "Unique": (0,), "NonMaxSuppression": (2,)}


def _feeds_sizes(g, functions: set) -> set[str]:
    """The values of ``g`` whose data some output's size may follow: those at a sizing input (``_SIZE_INPUTS``,
    the axes of a Reduce op, any input of a model-local function) and, back through every node but ``Shape`` and
    ``Size`` (which read only dims), the values they are computed from."""
    need: set[str] = set()
    for n in g.node:
        if (n.domain, n.op_type) in functions:
            need.update(n.input)
        elif n.domain in ("", "ai.onnx"):
            at = (1,) if n.op_type.startswith("Reduce") else _SIZE_INPUTS.get(n.op_type, ())
            need.update(n.input[i] for i in at if i < len(n.input))
    for n in reversed(g.node):   # topological: a value's consumers come after its producer
        if n.op_type not in ("Shape", "Size") and any(o in need for o in n.output):
            need.update(n.input)
    need.discard("")
    return need


def _sizing_initializers(g, functions: set) -> set[str]:
    """The initializers of ``g`` of more than ``SMALL_INITIALIZER`` and at most ``MAX_FOLD_ELEMENTS`` elements whose
    data some output's size may follow (``_feeds_sizes``): these keep their data for shape inference too.

    Why: only initializers of up to 64 elements did, so a Compress by a constant mask of 100 entries (or a
    Reshape to a shape gathered from a table of 100) was refused as a size "ONNX's shape inference could not
    derive"; such a table is at most 32 KB. The walk is paid only by a model holding such an initializer."""
    if not any(SMALL_INITIALIZER < math.prod(t.dims) <= MAX_FOLD_ELEMENTS for t in g.initializer):
        return set()
    return _feeds_sizes(g, functions) & {t.name for t in g.initializer
                                         if SMALL_INITIALIZER < math.prod(t.dims) <= MAX_FOLD_ELEMENTS}


def _large_constants(onnx, g, functions: set = frozenset()) -> dict:
    """Node index -> a typed graph input standing in for it, for each ``Constant`` node of ``g`` whose ``value``
    holds more than ``LARGE_CONSTANT`` elements: in the copy given to shape inference its output is typed by the
    tensor's dtype and dims, and its data is left out, as a large initializer's is.

    Why: the copy took every constant's data along (and inference serialized and parsed it again, in each
    folding round): a model of 20 Constant weights of 16 MB imported with 2 GB of memory at its peak, one with its
    weights as initializers with 0.7 GB. Shape tensors, axes and pads are small, but a Slice or Gather of a large
    table can be one: a constant whose data may reach a size (``_feeds_sizes``) keeps its data, or a wrong size
    the model declares would stand unchecked (a ConstantOfShape declared [1, 8] where the data says [2, 8])."""
    out = {}
    sizing = None
    for k, n in enumerate(g.node):
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx") or len(n.output) != 1 or not n.output[0]:
            continue
        value = [a for a in n.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR]
        if len(n.attribute) != 1 or not value or math.prod(value[0].t.dims) <= LARGE_CONSTANT:
            continue
        sizing = _feeds_sizes(g, functions) if sizing is None else sizing   # (only for a model with a large one)
        if n.output[0] in sizing:
            continue
        t = value[0].t
        if t.data_type not in _BITS:
            continue
        out[k] = onnx.helper.make_tensor_value_info(n.output[0], t.data_type, list(t.dims))
    return out


def _typed_by_initializers(onnx, g, source: str, overridable: Collection[str] = ()) -> list:
    """The graph inputs of ``g`` for shape inference, each that is also an initializer (an input with a default
    value: IR < 4 lists every initializer so) typed by the initializer's own dtype and dims.

    Why: runtimes run such an input with the initializer's data unless the caller feeds another, and
    onnxruntime takes its shape from the initializer, not from the declaration. A declaration with a symbolic
    dimension (``["N"]``) left every value after it unknown, or, with ``N`` fixed by ``--dim`` for the other
    inputs, planned them at that size while the runtime made them the initializer's (``--dim N=1`` on a
    100-element initializer: 4 bytes planned for a 400-byte result). A declared fixed dimension or dtype the
    initializer contradicts is refused, as onnxruntime refuses it. So is one that leaves a dimension open (or
    declares no shape) where the initializer is ``overridable``: onnxruntime takes a value fed in its place at
    any size the declaration allows, and what follows is sized by it (a MatMul by an overridable ``["a", "b"]``
    weight of dims [3, 4] was planned 32 bytes; fed a [3, 10] one, onnxruntime wrote 80)."""
    inits = {t.name: (t.data_type, tuple(t.dims)) for t in g.initializer}
    inits.update((st.values.name, (st.values.data_type, tuple(st.dims))) for st in g.sparse_initializer)
    out = []
    for vi in g.input:
        if vi.name not in inits:
            out.append(vi)
            continue
        elem, dims = inits[vi.name]
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is not None and tt.elem_type and tt.elem_type != elem:
            raise GraphError(f"{source}: graph input {vi.name!r} is declared {_dtype_name(onnx, tt.elem_type)} but "
                             f"its initializer is {_dtype_name(onnx, elem)}")
        if tt is not None and tt.HasField("shape"):
            declared = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in tt.shape.dim]
            if len(declared) != len(dims) or any(isinstance(d, int) and d != k for d, k in zip(declared, dims)):
                raise GraphError(f"{source}: graph input {vi.name!r} is declared with shape {declared} but its "
                                 f"initializer has dims {list(dims)}")
        if vi.name in overridable and (tt is None or not tt.HasField("shape") or
                                       not all(d.HasField("dim_value") for d in tt.shape.dim)):
            what = (f"shape {[d.dim_value if d.HasField('dim_value') else d.dim_param or '?' for d in tt.shape.dim]}"
                    if tt is not None and tt.HasField("shape") else "no shape")
            raise GraphError(f"{source}: graph input {vi.name!r} is declared with {what}, "
                             f"which a value fed in place of its initializer (dims {list(dims)}, only a default the caller "
                             "may override: ONNX IR version 4 and later) may fill at other sizes, and onnxruntime then "
                             "sizes what follows by the value fed; if it is a constant, remove it from the graph inputs, "
                             "or import with constant_initializers=True (memplan import --constant-initializers)")
        out.append(onnx.helper.make_tensor_value_info(vi.name, elem, list(dims)))
    return out


def _incompatible_hint(msg: str, mapping: dict[str, int]) -> str:
    """Why shape inference found two sizes a node needs alike different, where two or more dimensions were fixed
    (``mapping``): the values given may disagree. ``torch.onnx.export(dynamo=False)`` names each input's dynamic
    axes apart unless told otherwise (``input_ids`` ``[d0_0, d0_1]``, its ``attention_mask`` ``[d1_0, d1_1]``), so a
    ``--dim`` per name can give one sequence two lengths; onnx's message ("Incompatible dimensions") names the node
    alone, not the dimensions fixed."""
    if len(mapping) < 2 or "Incompatible dimensions" not in msg:
        return ""
    fixed = ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))
    return (f"; the dimensions fixed ({fixed}) may give one size of the model two values (an exporter may name it "
            "apart in each input, as torch.onnx.export(dynamo=False) names each input's dynamic axes): give such "
            "dimensions the same value")


def _contradicted_hint(g2, msg: str, mapping: dict[str, int]) -> str:
    """Why shape inference found a declared shape contradicted, where dimensions were fixed (``mapping``): the
    outputs the model declares for the node ONNX names, and the likely cause. torch.export specializes a
    dimension whose example size is 1 to 1 inside the graph while the exported input keeps it symbolic: at
    any other size the model's own shapes (and its Reshape targets) are wrong, and onnxruntime fails too."""
    found = re.search(r"node name: ([^)]*)\)", msg)
    if not mapping or "differ in dimension" not in msg or not found:
        return ""
    declared = {vi.name: [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                          for d in vi.type.tensor_type.shape.dim]
                for vi in list(g2.value_info) + list(g2.output) if vi.type.tensor_type.HasField("shape")}
    node = next((n for n in g2.node if n.name == found.group(1)), None)
    outs = [f"{o!r} is declared {declared[o]}" for o in (node.output if node is not None else ()) if o in declared]
    if not outs:
        return ""
    fixed = ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))
    return (f"; its output {', '.join(outs)}, which the dimensions fixed ({fixed}) contradict: the model was "
            "likely exported with that dimension fixed at its example's size (torch.export does so for a "
            "size of 1) and runs at that size only: import it at that size, or export it from a larger example")


def _disagree(declared: tuple[int, list | None], inferred: tuple[int, list | None]) -> bool:
    """Whether a declared (elem type, dims) and an inferred one contradict: both types known and different, or
    both ranks known and different, or a dimension both know at different values."""
    (de, dd), (ie, idims) = declared, inferred
    if de and ie and de != ie:
        return True
    if dd is None or idims is None:
        return False
    return len(dd) != len(idims) or any(a is not None and b is not None and a != b for a, b in zip(dd, idims))


def _contradicted_value(onnx, m2, g, msg: str, propagate: bool = True) -> str:
    """Which declared value (``value_info`` or graph output) shape inference found contradicted, and the node
    of the model's graph ``g`` that makes it (named as every error names it), found by inferring once more without the declarations: onnx's message names the op type
    alone ("(op_type:Relu): Inferred shape and existing shape differ in dimension 0: (2) vs (5)") where the
    node has no name, which left the user to search the model for the value. Empty where that finds none."""
    if "existing" not in msg and "merge shape" not in msg:
        return ""
    bare = onnx.ModelProto()
    bare.CopyFrom(m2)
    declared = {vi.name: t for vi in list(m2.graph.value_info) + list(m2.graph.output)
                if (t := _declared_type(vi)) is not None}
    del bare.graph.value_info[:]
    for vi in bare.graph.output:
        vi.ClearField("type")
    try:
        g = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - inconsistent without the declarations too: onnx's message is all there is
        return ""
    inferred = {vi.name: t for vi in list(g.value_info) + list(g.output) if (t := _declared_type(vi)) is not None}
    for nid, n in zip(_node_ids(g), g.node):
        for o in n.output:
            if o in declared and o in inferred and _disagree(declared[o], inferred[o]):
                return (f"; value {o!r}, which node {nid!r} ({n.op_type}) makes, is declared "
                        f"{_show_type(*declared[o])}, but the node's inputs make it {_show_type(*inferred[o])}")
    return ""


def _explicit_defaults(onnx, g2, opsets: dict[str, int]) -> None:
    """Write out, on the nodes of ``g2`` (the copy given to shape inference), every attribute a node omits
    whose schema has a default.

    Why: ONNX's shape inference functions read an omitted attribute with a default of their own, which is
    not always the schema's. STFT's ``onesided`` defaults to 1 (onnxruntime and the reference evaluator
    return ``frame_length // 2 + 1`` frequency bins) but its inference function takes 0 and infers
    ``frame_length`` bins: a size no runtime allocates, and the refusal of a model that declares the right
    one. Written out, the attribute is read at the spec's value by every inference function."""
    defaults: dict[tuple[str, str], list] = {}
    for n in g2.node:
        domain = "" if n.domain == "ai.onnx" else n.domain
        key = (domain, n.op_type)
        if key not in defaults:
            defaults[key] = []
            if domain in opsets:
                try:
                    schema = onnx.defs.get_schema(n.op_type, opsets[domain], domain)
                except Exception:  # noqa: BLE001 - no schema (a custom op): nothing to write
                    pass
                else:
                    defaults[key] = [a.default_value for a in schema.attributes.values()
                                     if a.default_value.type != onnx.AttributeProto.UNDEFINED]
        have = {a.name for a in n.attribute}
        n.attribute.extend(d for d in defaults[key] if d.name not in have)


def _read_small_external(onnx, t, base_dir: str | None, real_dir: str | None = None):
    """A copy of the small initializer ``t`` with its external data read in, or why it cannot be: its file
    must be in (or below) the model's folder and hold exactly the tensor's bytes at its offset."""
    from onnx import external_data_helper as edh

    bits = _BITS.get(t.data_type)
    if base_dir is None:
        return ("the model was passed as a ModelProto, so its folder is unknown: pass the model's path, "
                "external_data_dir=its folder, or a ModelProto loaded with its external data")
    if bits is None:
        return f"dtype {_dtype_name(onnx, t.data_type)}"
    want = _nbytes(bits, tuple(t.dims))
    try:
        info = edh.ExternalDataInfo(t)
        bad = _outside_folder(base_dir, info.location, real_dir)
        if bad is not None:
            return str(bad)
        path = _data_path(base_dir, info.location)   # a link is followed (onnx's loader refuses links)
        size, offset = os.path.getsize(path), info.offset or 0
        length = size - offset if info.length is None else info.length   # (none: the rest of the file)
        if offset + max(length, 0) > size:
            return (f"its data file {info.location!r} ends at byte {size}, before its data does (offset {offset}, "
                    f"length {length})")
        if length != want:
            return f"its data file {info.location!r} holds {length} bytes for it, not {want}"
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        folder = _data_root(base_dir, real_dir, path) or base_dir
        resolved = os.path.relpath(os.path.realpath(path), folder)
        for e in copy.external_data:
            if e.key == "location":
                e.value = resolved
        edh.load_external_data_for_tensor(copy, folder)
    except Exception as exc:  # noqa: BLE001 - a missing or short file, a location outside the folder
        return f"its data could not be read: {first_line(exc)}"
    if len(copy.raw_data) != want:
        return f"its data file holds {len(copy.raw_data)} bytes for it, not {want}"
    return copy


def _default_domain_as_empty(onnx, model, m2) -> None:
    """Give ``m2`` (the copy for shape inference, its nodes copied) the model's opset imports, and name the
    default domain "" in them and on its nodes, where the model spells it ``ai.onnx``.

    Why: ``ai.onnx`` is the default domain's name (onnxruntime runs a ``Relu`` of domain ``ai.onnx`` under an
    import of ``""``, and the reverse), but onnx's shape inference knows the default domain only as "": such a
    node failed inference ("No opset import for domain ai.onnx") or was left without a shape, and the model
    was refused. ``_check_opset`` made sure the two spellings name one version."""
    seen = set()
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        if domain not in seen:
            seen.add(domain)
            m2.opset_import.append(onnx.helper.make_opsetid(domain, o.version))
    for n in m2.graph.node:
        if n.domain == "ai.onnx":
            n.domain = ""


def _read_small_attribute_tensors(onnx, g2, base_dir: str | None, unread: dict[str, str] | None,
                                  hidden: dict[str, str], g, real_dir: str | None = None) -> None:
    """Read in, on the nodes of ``g2`` (the copy given to shape inference), the external data of every small
    tensor attribute (a ``Constant``'s value, a ``ConstantOfShape``'s fill), as ``_read_small_external`` reads
    small initializers: only from a file in the model's folder. Folding such a node evaluated its tensor with
    onnx's loader, which read the data file relative to the working directory, not the model's folder: any
    file there (or a named pipe, which blocks) decided a Reshape's shape. One that cannot be read stays
    external, so that its node is never folded (``_external_attribute``), and is recorded in ``unread`` (its
    node's outputs in ``hidden``). ``g``: the model's graph, whose value names the new inputs stay clear of."""
    taken: set[str] | None = None   # every value name, gathered once (per unread Constant it was quadratic)
    for n in g2.node:
        for a in n.attribute:
            for t in [a.t] if a.HasField("t") else list(a.tensors):
                if t.data_location != onnx.TensorProto.EXTERNAL or math.prod(t.dims) > SMALL_INITIALIZER:
                    continue
                loaded = _read_small_external(onnx, t, base_dir, real_dir)
                if isinstance(loaded, str):
                    which = f"the {a.name!r} tensor of node {n.name or n.op_type!r}"
                    if unread is not None:
                        unread[which] = loaded
                    hidden.update((o, which) for o in n.output if o)
                    if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and a.name == "value":
                        taken = _value_names(g) if taken is None else taken
                        _as_unknown_value(onnx, g2, n, t, taken)
                        break
                else:
                    t.CopyFrom(loaded)
                    t.data_location = onnx.TensorProto.DEFAULT
                    del t.external_data[:]


def _range_lengths(start, limit, delta) -> tuple[int, int] | None:
    """(onnxruntime's, ONNX's inference's) length of a float Range of these scalar values, or None where either is
    not finite. onnxruntime (and onnx's reference evaluator) compute ``ceil((limit - start) / delta)`` in float64;
    ONNX's inference subtracts in the values' own type first (float32: ``5.3 - 0.3`` rounds to 4.9999995, 25
    elements where onnxruntime makes 26)."""
    import numpy as np

    with np.errstate(all="ignore"):
        ort = np.ceil((np.float64(limit) - np.float64(start)) / np.float64(delta))
        onnx_n = np.ceil(np.float64(limit - start) / np.float64(delta))
    if not (np.isfinite(ort) and np.isfinite(onnx_n)):
        return None
    return max(int(ort), 0), max(int(onnx_n), 0)


def _integer_range_lengths(start: int, limit: int, delta: int, bits: int) -> tuple[int, int] | None:
    """(onnxruntime's, ONNX's inference's) length of an int32 (``bits`` 32) or int64 Range of these values, or None
    where ``delta`` is 0 (onnxruntime refuses it). onnxruntime's kernel counts ``ceil((limit - start) / delta)`` of
    the exact integers; ONNX's inference subtracts in the values' own type (wrapping past its range) and divides
    in float64 (rounding a difference past 2**53)."""
    if not delta:
        return None
    exact = max(-((start - limit) // delta), 0)
    wrapped = (limit - start + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
    onnx_n = math.ceil(float(wrapped) / float(delta))
    return exact, max(onnx_n, 0)


def _exact_range(onnx, n, values: dict, g2, taken: set[str]) -> tuple[list, int, Any, int] | None:
    """(the nodes to stand, in the inference copy ``g2``, for a float32, int32 or int64 Range ``n`` of known scalar
    ``values`` whose length ONNX's inference computes otherwise than onnxruntime (``_range_lengths``,
    ``_integer_range_lengths``), its length, its value or None, its element type): its value as a Constant (up to
    ``MAX_FOLD_ELEMENTS``) or a ConstantOfShape of its length; None where ``n`` is no such Range. A static shape the
    model declares for it that onnxruntime's length contradicts is refused, naming the node. ``taken``: the value
    names in use, for the length's (updated).

    Why: ``Range(0.3, 5.3, 0.2)`` was planned 25 elements where onnxruntime writes 26, an overrun (one in six random
    float32 Ranges differed, either way); folding did not correct it, as a value that disagrees with ONNX's
    inference is never folded, and what followed was sized by ONNX's length. An integer Range whose difference
    wraps in its type or passes 2**53 was so too: ``Range(-2**31, 2**31 - 1, 2**31 - 1)`` (int32) planned empty,
    where onnxruntime writes 3 elements."""
    import numpy as np
    from onnx import numpy_helper

    ins = list(n.input)
    if n.op_type != "Range" or n.domain not in ("", "ai.onnx") or len(ins) != 3 or not n.output or not n.output[0]:
        return None
    args = [values.get(v) for v in ins]
    if any(a is None or a.size != 1 for a in args) or len({a.dtype for a in args}) != 1:
        return None
    dtype = args[0].dtype
    if dtype == np.float32:
        start, limit, delta = (a.reshape(()) for a in args)
        lengths = _range_lengths(start, limit, delta)
        how = f"ceil(({float(limit)!r} - {float(start)!r}) / {float(delta)!r}) in float64; ONNX's inference subtracts in float32"
    elif dtype in (np.int32, np.int64):
        start, limit, delta = (int(a.reshape(-1)[0]) for a in args)
        lengths = _integer_range_lengths(start, limit, delta, dtype.itemsize * 8)
        how = (f"ceil(({limit} - {start}) / {delta}) of the exact integers; ONNX's inference subtracts in "
               f"{dtype.name}, wrapping, and divides in float64")
    else:
        return None
    if lengths is None or lengths[0] == lengths[1]:
        return None
    length, out = lengths[0], n.output[0]
    if length >= 2**63:   # (its length is no int64: a raw OverflowError making the ConstantOfShape's shape)
        raise GraphError(f"{f'node {n.name!r}' if n.name else 'a node'} (Range): its count of elements "
                         f"ceil(({limit} - {start}) / {delta}) is {length}, which exceeds int64's range: onnxruntime "
                         "refuses to run it (\"the computed number of elements exceeds the supported range\")")
    for vi in (*g2.value_info, *g2.output):
        declared = _declared_type(vi) if vi.name == out else None
        if declared and declared[1] is not None and None not in declared[1] and declared[1] != [length]:
            raise GraphError(f"{f'node {n.name!r}' if n.name else 'a node'} (Range): value {out!r} is declared {declared[1]} in the model, "
                             f"but onnxruntime's Range makes it [{length}] ({how} and gets "
                             f"{lengths[1]}): correct or remove the declaration")
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    if length <= MAX_FOLD_ELEMENTS:
        if dtype == np.float32:
            value = (np.float64(start) + np.arange(length) * np.float64(delta)).astype(np.float32)
        else:   # (exact: every element lies between start and limit, though k * delta may pass the type's range)
            value = np.array([start + k * delta for k in range(length)], dtype)
        return [onnx.helper.make_node("Constant", [], [out], value=numpy_helper.from_array(value, out))], length, value, elem
    shape = next(f"{out}::length{k or ''}" for k in range(len(taken) + 1) if f"{out}::length{k or ''}" not in taken)
    taken.add(shape)
    return [onnx.helper.make_node("Constant", [], [shape], value=numpy_helper.from_array(np.array([length], np.int64),
                                                                                           shape)),
            onnx.helper.make_node("ConstantOfShape", [shape], [out], value=numpy_helper.from_array(
                np.zeros(1, dtype)))], length, None, elem


def _elem_types(g2) -> dict[str, int]:
    """``{value: elem type}`` of the values graph ``g2`` types without inference: its initializers, Constants'
    tensors, inputs and declarations."""
    elems = {vi.name: vi.type.tensor_type.elem_type for vi in (*g2.input, *g2.value_info, *g2.output)
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type}
    elems.update((t.name, t.data_type) for t in g2.initializer)
    elems.update((n.output[0], n.attribute[0].t.data_type) for n in g2.node
                 if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and len(n.attribute) == 1
                 and n.attribute[0].name == "value")
    return elems


#: the element types of Range's kernels (the standard Range-11 and ``com.microsoft:Range``): float, int32, int64,
#: double, int16
RANGE_TYPES = frozenset({1, 6, 7, 11, 5})


def _fresh_name(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem`` and a number, whichever is first not in ``taken`` (which receives it)."""
    name = next(f"{stem}{k or ''}" for k in range(len(taken) + 1) if f"{stem}{k or ''}" not in taken)
    taken.add(name)
    return name


def _standard_ort_ranges(onnx, g2, opset: int) -> None:
    """Each ``com.microsoft:Range`` of the inference copy ``g2`` replaced by the standard Range it computes (its
    omitted ``delta`` given as a Constant 1 of the start's type), where the default domain's ``opset`` has Range
    (11 and later), so that onnx's inference, the importer's folding and ``_exact_float_ranges`` size it as they
    size the standard one. onnxruntime runs the two with one kernel (``ceil((limit - start) / delta)`` elements,
    ``delta`` 1 where omitted; float, double, int16, int32 and int64 both).

    Why: a ``com.microsoft:Range`` of constants was refused ("value 'y' has no type or shape") where it has no
    ``delta`` (``Range(0, 9)``: onnxruntime's inference reads all three inputs or sizes nothing) or is of floats
    (``Range(0.3, 5.3, 0.2)``, 26 elements). One whose inputs follow what the graph inputs hold stays refused as
    data-dependent (``ORT_SHAPE_INPUTS``), as the standard one is."""
    if opset < 11 or not any(n.op_type == "Range" and n.domain == ORT_DOMAIN for n in g2.node):
        return
    elems = _elem_types(g2)
    taken = _value_names(g2)
    nodes = []
    for n in g2.node:
        ins = list(n.input)
        if n.op_type != "Range" or n.domain != ORT_DOMAIN or not 2 <= len(ins) <= 3 or not all(ins[:2]):
            nodes.append(n)
            continue
        before = []
        if len(ins) == 2 or not ins[2]:
            elem = elems.get(ins[0]) or elems.get(ins[1])
            if elem is None and opset < 15:
                nodes.append(n)   # (a type not known before inference, and no CastLike to take it then)
                continue
            if elem is not None and elem not in RANGE_TYPES:
                nodes.append(n)   # (a type onnxruntime's Range has no kernel for: left to its inference)
                continue
            one = _fresh_name(f"{n.output[0]}::delta", taken)
            before.append(onnx.helper.make_node("Constant", [], [one], value=onnx.helper.make_tensor(
                one, elem or onnx.TensorProto.INT64, [], [1])))
            if elem is None:   # the start's type, whatever inference finds it to be
                like = _fresh_name(f"{n.output[0]}::delta", taken)
                before.append(onnx.helper.make_node("CastLike", [one, ins[0]], [like]))
                one = like
            ins = [*ins[:2], one]
        standard = onnx.NodeProto()
        standard.CopyFrom(n)
        standard.domain = ""
        del standard.input[:]
        standard.input.extend(ins)
        nodes.extend([*before, standard])
    del g2.node[:]
    g2.node.extend(nodes)


def _exact_float_ranges(onnx, g2) -> None:
    """Each float32 Range of the inference copy ``g2`` whose inputs are initializers or Constants, and whose length
    ONNX's inference gets wrong, replaced as ``_exact_range`` says (a Range of computed inputs: ``_fold_round``).
    Only scalars are read, and only where there is a Range: every Constant was converted to numpy, whatever its
    size, in every import (a thirtieth of a 20,000-node chain's)."""
    if not any(n.op_type == "Range" for n in g2.node):
        return
    values = {v: a[0] for v, a in ((t.name, _to_array(t)) for t in g2.initializer if math.prod(t.dims) == 1) if a}
    values.update((n.output[0], a[0]) for n, a in ((n, _to_array(n.attribute[0].t)) for n in g2.node
                  if n.op_type == "Constant" and n.output and len(n.attribute) == 1 and n.attribute[0].name == "value"
                  and math.prod(n.attribute[0].t.dims) == 1) if a)
    nodes, changed, taken = [], False, _value_names(g2)
    for n in g2.node:
        exact = _exact_range(onnx, n, values, g2, taken)
        nodes.extend([n] if exact is None else exact[0])
        changed = changed or exact is not None
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)


def _conv_transpose_output_shapes(onnx, g2, opset: int) -> None:
    """Each ConvTranspose of the inference copy ``g2`` with an ``output_shape`` attribute (default domain) replaced
    by one without it, no ``pads`` or ``auto_pad`` and ``output_padding`` grown by ``stride - 1``,
    whose output a Slice cuts to ``output_shape`` along the last ``len(output_shape)`` axes: the size onnxruntime's
    kernel writes (``output_shape`` itself, the padding computed from it), wherever onnxruntime runs the node at all
    (an ``output_shape`` at most ``stride - 1`` past the unpadded size; ``_check_conv_transpose`` refuses the rest).

    Why: ONNX's inference, meeting an ``output_shape`` smaller than the input's spatial size, gives up half-way and
    leaves a shape of the batch and channel dimensions alone: a ConvTranspose of ``[1, 1, 5]`` to ``output_shape=[3]``
    was planned ``[1, 1]`` (4 bytes) and onnxruntime writes ``[1, 1, 3]`` (12) into it; where the model declared
    ``[1, 1, 3]`` (or a Concat of it with a skip connection followed) the import failed in shape inference."""
    import numpy as np
    from onnx import numpy_helper

    targets = {k for k, n in enumerate(g2.node) if n.op_type == "ConvTranspose" and n.domain in ("", "ai.onnx")
               and n.output and n.output[0] and any(a.name == "output_shape" and a.ints for a in n.attribute)}
    if not targets:
        return
    taken = _value_names(g2)
    nodes = []
    for i, n in enumerate(g2.node):
        attrs = {a.name: a for a in n.attribute}
        if i not in targets or ("pads" in attrs and attrs["auto_pad"].s not in (b"", b"NOTSET") if "auto_pad" in attrs
                                else False):   # (ONNX's inference refuses the pair)
            nodes.append(n)
            continue
        out = list(attrs["output_shape"].ints)
        k = len(out)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * k
        adj = list(attrs["output_padding"].ints) if "output_padding" in attrs else [0] * k
        if len(strides) != k or len(adj) != k or min(strides) < 1 or min(out) < 1:
            nodes.append(n)   # (left to ONNX's inference and _check_conv_transpose, which refuse them)
            continue
        y = n.output[0]
        full = _fresh_name(f"{y}::full", taken)
        wide = onnx.NodeProto()
        wide.CopyFrom(n)
        wide.output[0] = full
        del wide.attribute[:]
        wide.attribute.extend(a for a in n.attribute if a.name not in ("output_shape", "pads", "auto_pad",
                                                                          "output_padding"))
        wide.attribute.append(onnx.helper.make_attribute("output_padding", [a + s - 1 for a, s in zip(adj, strides)]))
        nodes.append(wide)
        if opset < 10:   # (Slice-1 takes attributes; its negative axes are sized by _slice1_shape)
            nodes.append(onnx.helper.make_node("Slice", [full], [y], name=n.name, starts=[0] * k, ends=out,
                                               axes=list(range(-k, 0))))
            continue
        cut = [_fresh_name(f"{y}::{what}", taken) for what in ("starts", "ends", "axes")]
        for name, value in zip(cut, ([0] * k, out, list(range(-k, 0)))):
            nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
                np.array(value, np.int64), name)))
        nodes.append(onnx.helper.make_node("Slice", [full, *cut], [y], name=n.name))
    del g2.node[:]
    g2.node.extend(nodes)


#: the ends onnxruntime's Slice (10 and later) reads as "to the end of the dimension" whatever their step's sign
SLICE_END_ALL = (2**31 - 1, 2**63 - 1)


def _ort_slice_ends(n, values: dict, opset: int):
    """The ends that, read by ONNX's rule, make of Slice ``n`` what onnxruntime makes of its own, where they differ
    (an end of ``SLICE_END_ALL`` with a negative step taken as the dimension's start, an end before it); None where
    ``n`` is no Slice of such known ends and steps (``values``: ``_known_values``'s).

    Why: onnxruntime's kernel reads an end of INT32_MAX or INT64_MAX as "none" (numpy's ``x[s::-1]``) whatever the
    step, and a negative step then runs down to index 0, where ONNX's rule clamps the end to ``dim - 1``: a
    ``Slice(x[7, 5], starts=[0], ends=[INT64_MAX], steps=[-1])`` was planned empty where onnxruntime writes row 0
    (20 bytes), and ``starts=[4]``, 5 rows."""
    import numpy as np

    if n.op_type != "Slice" or n.domain not in ("", "ai.onnx") or opset < 10 or len(n.input) < 3 or not n.input[2]:
        return None
    ends = values.get(n.input[2])
    if ends is None or ends.ndim != 1 or ends.dtype not in (np.int32, np.int64):
        return None
    steps = values.get(n.input[4]) if len(n.input) > 4 and n.input[4] else np.ones_like(ends)
    if steps is None or steps.shape != ends.shape or steps.dtype.kind not in "iu":
        return None
    hit = np.isin(ends, SLICE_END_ALL) & (steps < 0)
    if not hit.any():
        return None
    fixed = ends.copy()
    fixed[hit] = np.iinfo(ends.dtype).min   # (before any dimension's start: clamped to -1, past index 0)
    return fixed


def _standard_slice_ends(onnx, m2) -> bool:
    """Give each Slice of the inference copy ``m2`` whose known ends onnxruntime reads otherwise than ONNX's rule
    (``_ort_slice_ends``) the ends ONNX's rule reads as onnxruntime does, as a Constant of their own; True when any
    was. The declared shapes of what follows are dropped (``_forget_declared_after``): ONNX's count made them."""
    from onnx import numpy_helper

    opset = _default_opset(m2)
    slices = [n for n in m2.graph.node if n.op_type == "Slice" and len(n.input) >= 3]
    if opset < 10 or not slices:
        return False
    # (only the ends and steps read: every Constant to numpy in each fold round would cost a large model dearly)
    wanted = {v for n in slices for v in n.input[2::2] if v}
    values = {t.name: r[0] for t in m2.graph.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in m2.graph.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        fixed = _ort_slice_ends(n, values, opset)
        if fixed is not None:
            taken = _value_names(m2.graph) if taken is None else taken
            name = _fresh_name(f"{n.input[2]}::ends", taken)
            nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(fixed, name)))
            n.input[2] = name
            changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _kept_resize_shapes(onnx, m2, inferred) -> bool:
    """Declare, in the inference copy ``m2``, the output shape of each Resize (18 and later) whose ``sizes`` are
    kept in their aspect ratio and known and whose input is sized but output is not, as onnxruntime makes it
    (``_ort_resize_dims``); True when any was.

    Why: ONNX's inference leaves a dimension its rule computes as 0 unknown, so a ``[1, 7, 2, 6]`` Resized to
    ``sizes=[1, 1]`` over axes ``[2, 3]``, ``not_larger`` (scale 1/6: ``[1, 7, 0, 1]``, which onnxruntime writes)
    was refused as a dimension ONNX "could not derive", although nothing of it depends on what the inputs hold."""
    from onnx import helper

    opset = _default_opset(m2)
    resizes = [n for n in m2.graph.node if n.op_type == "Resize" and n.domain in ("", "ai.onnx") and len(n.input) > 3
               and n.input[3] and n.output and n.output[0]]
    if opset < 18 or not resizes:
        return False
    shapes = _static_shapes(inferred)
    wanted = {n.input[3] for n in resizes}
    values = {t.name: r[0] for t in m2.graph.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in m2.graph.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    elems = _elem_types(inferred)
    changed = False
    for n in resizes:
        x, out = shapes.get(n.input[0]), n.output[0]
        found = _ort_resize_dims(n, x, values, opset) if x is not None and out not in shapes else None
        if not found or n.input[0] not in elems or any(d < 0 for d in found[0].values()):
            continue
        dims = [found[0].get(a, d) for a, d in enumerate(x)]
        typed = helper.make_tensor_value_info(out, elems[n.input[0]], dims)
        held = next((vi for vi in (*m2.graph.output, *m2.graph.value_info) if vi.name == out), None)
        if held is None:
            m2.graph.value_info.append(typed)
        else:
            held.type.CopyFrom(typed.type)
        changed = True
    return changed


def _value_names(g) -> set[str]:
    """Every value name graph ``g`` uses: its nodes' inputs and outputs, its inputs, outputs, initializers and
    declarations."""
    names = {v for n in g.node for v in (*n.input, *n.output)}
    names.update(v.name for v in (*g.input, *g.output, *g.value_info))
    names.update(t.name for t in g.initializer)
    names.update(t.values.name for t in g.sparse_initializer)
    return names


def _as_unknown_value(onnx, g2, n, t, taken: set[str]) -> None:
    """Make the ``Constant`` node ``n`` of ``g2`` an ``Identity`` of a new graph input typed as its tensor ``t``:
    a value of known type and shape whose data inference does not know. ``taken``: the value names in use
    (``_value_names``), the new input's added.

    Why: ``t``'s data could not be read; left external, onnx's data propagation failed on it ("Cannot parse
    data from external tensors. Please load external data into raw data") where it sizes a Reshape or Expand,
    and the import stopped with that advice instead of naming the tensor and why it was not read. The node
    stays (as an Identity) so that ``g2``'s nodes keep the model's positions."""
    name = f"{n.output[0]}::unread"
    while name in taken:
        name += "_"
    taken.add(name)
    g2.input.append(onnx.helper.make_tensor_value_info(name, t.data_type, list(t.dims)))
    n.op_type = "Identity"
    del n.attribute[:]
    n.input.append(name)


def _external_attribute(onnx, n) -> bool:
    """Whether a tensor attribute of node ``n`` still has its data in an external file (see above)."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL
               for a in n.attribute for t in ([a.t] if a.HasField("t") else list(a.tensors)))


def _data_root(base_dir: str, real_dir: str | None, path: str) -> str | None:
    """The folder, of the model's (``base_dir``, where its data is looked for, and ``real_dir``, the model file's
    own folder with its links resolved), that ``path`` lies in once its links are resolved, or None.

    Why two: a hub cache links ``snapshots/REV/model.onnx`` and its ``model.onnx_data`` to files in ``blobs/``;
    onnxruntime finds the data beside the link and accepts it as inside the folder of the model file's target."""
    target = os.path.realpath(path)
    for root in dict.fromkeys(os.path.realpath(r) for r in (base_dir, real_dir) if r):
        if os.path.commonpath([root, target]) == root:
            return root
    return None


def _location_parts(location: str) -> list[str]:
    """The folders and file name of an external data ``location``, ``\\`` read as ``/`` (a model saved on Windows)."""
    return location.replace("\\", "/").split("/")


def _data_path(base_dir: str, location: str) -> str:
    """The path of the file an external data ``location`` names in the model's folder ``base_dir``, as
    ``_outside_folder`` checks it: every check and stat of that file must use this one path (a Windows-style
    ``weights\\w.bin`` joined as written is no file here, and ``os.path.samefile`` raised on it)."""
    return os.path.join(base_dir, *_location_parts(location))


@enum.unique   # (two reasons of one message would be one member: an alias)
class Reason(enum.Enum):
    """Why an external data location is not read: the message's words (a ``str.format`` of ``DataProblem``'s
    fields) and whether onnxruntime refuses such a model too. Code branches on the reason, never on the words."""

    NUL = ("its data file {location!r} is no file name (it holds a NUL character)", True)
    TOO_LONG = ("its data file {location!r} is no file name this system can open ({detail})", True)
    NOT_RELATIVE = ("its data file {location!r} is not a relative path inside the model's folder", True)
    DRIVE = ("its data file {location!r} names a drive ({detail}): saved on Windows, it is no file in the model's "
             "folder", False)   # (onnxruntime on Linux reads a file named so)
    OUTSIDE = ("its data file {location!r} is outside the model's folder", True)
    COMES_BACK = ("its data file {location!r} leaves the model's folder through its parent before coming back into "
                  "it: it names another file once the folder is renamed or moved", False)
    LINK_OUT = ("its data file {location!r} goes through a symbolic link out of the model's folder", True)
    MISSING = ("its data file {location!r} is not a file in the model's folder", True)
    NOT_A_FILE = ("its data file {location!r} is not a file in the model's folder (it is a directory, a pipe or "
                  "another special file)", True)
    MODEL_FILE = ("its data file {location!r} is the model file itself, whose bytes are the model, not its weights",
                  False)   # (onnxruntime reads a model file that is long enough as the data)
    NO_BYTE_COUNT = ("its {key} {detail!r} in {location!r} is no byte count", True)

    @property
    def onnxruntime_refuses(self) -> bool:
        return self.value[1]


@dataclass(frozen=True)
class DataProblem:
    """An external data location that is not read, and why (``Reason``); ``str()`` is the message."""

    reason: Reason
    location: str
    key: str = ""
    detail: str = ""

    def __str__(self) -> str:
        return self.reason.value[0].format(location=self.location, key=self.key, detail=self.detail)


#: the longest file name (one folder or file) and path this system opens, where it does not say (Linux's)
NAME_MAX, PATH_MAX = 255, 4096


def _too_long(base_dir: str, location: str) -> str:
    """What makes ``location`` longer than the file system opens in ``base_dir`` ("" where nothing): one of its
    names past ``NAME_MAX`` bytes or the joined path past ``PATH_MAX``. Checked before any stat, which would fail
    on it with ENAMETOOLONG as if the file were missing."""
    try:
        name_max = os.pathconf(base_dir, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = NAME_MAX
    longest = max((len(os.fsencode(p)) for p in _location_parts(location)), default=0)
    if longest > name_max:
        return f"a name of {longest} bytes, longer than the {name_max} a file name may have here"
    size = len(os.fsencode(_data_path(base_dir, location)))
    return f"a path of {size} bytes, longer than the {PATH_MAX} a path may have" if size > PATH_MAX else ""


def _outside_folder(base_dir: str, location: str, real_dir: str | None = None) -> DataProblem | None:
    """Why the external data ``location`` (the model's word) is not to be touched, or None: it must name a
    regular file inside ``base_dir`` by a relative path. The path is read as a model saved on Windows means it
    (``\\`` as ``/``, so ``C:``, ``\\\\host`` are a drive and a share), normalized (``sub/../w.bin`` is
    ``w.bin``, which onnxruntime reads) and must stay inside the folder; then the file the kernel opens (through
    its links) must lie inside it too, or inside ``real_dir``: ``_data_root``. Checked before anything reads or
    stats it (an error quoting a size would tell the size of any file; a named pipe blocks a read), and not left
    to onnx's loader, which checks paths only since onnx 1.16."""
    if "\0" in location:
        return DataProblem(Reason.NUL, location)
    slashed = "/".join(_location_parts(location))
    if not location or os.path.isabs(location) or slashed.startswith("/"):
        return DataProblem(Reason.NOT_RELATIVE, location)
    drive = re.match(r"[A-Za-z]:", slashed)   # (``C:w.bin`` is relative to drive C's working folder)
    if drive:
        return DataProblem(Reason.DRIVE, location, detail=drive.group())
    long = _too_long(base_dir, location)
    if long:
        return DataProblem(Reason.TOO_LONG, location, detail=long)
    path = _data_path(base_dir, location)
    inside = _data_root(base_dir, real_dir, path) is not None
    normal = posixpath.normpath(slashed)
    if normal == ".." or normal.startswith("../"):
        return DataProblem(Reason.COMES_BACK if inside else Reason.OUTSIDE, location)
    if not inside:
        return DataProblem(Reason.LINK_OUT, location)
    if not os.path.isfile(path):
        return DataProblem(Reason.NOT_A_FILE if os.path.lexists(path) else Reason.MISSING, location)
    return None


def _slices_unsized(m2, inferred) -> bool:
    """Whether a Slice of ``m2`` reads a value ``inferred`` leaves without a static shape: only then can a fold make a
    negative dimension it reads known (``_check_slice_data``, a whole inference, is not paid in every fold round)."""
    data = {n.input[0] for n in m2.graph.node if n.op_type == "Slice" and n.input and n.input[0]}
    if not data:
        return False
    static = _static_shapes(inferred)
    return any(v not in static for v in data)


def _check_slice_data(onnx, m2, g, source: str, propagate: bool = True) -> None:
    """Refuse a value of a negative dimension that a Slice of the inference copy ``m2`` slices, naming the node
    that makes it (``g``: the model's graph, for the node's id), before ONNX's inference of the whole model meets
    it: the Slices left out, the model is inferred leniently, and each Slice's data checked.

    Why: onnx's Slice inference clamps a start into ``[0, dim - 1]`` under a C++ assertion, which aborts the process
    where ``dim`` is negative: a Pad by negative pads (``[2, 3]`` padded by -2 on each side of axis 1 is ``[2, -1]``),
    a Conv or pool of a kernel larger than its input, an Expand, a TopK or a Resize of negative sizes, followed by
    a Slice, killed ``memplan import`` with SIGABRT, where the same value followed by a Relu is refused. Slices are
    put back a round at a time, those whose data no left-out Slice feeds, so that a negative dimension made after
    another Slice (a Pad by negative pads of a Slice's output) is seen too."""
    slices = [k for k, n in enumerate(m2.graph.node) if n.op_type == "Slice" and n.domain in ("", "ai.onnx")
              and n.input and n.input[0]]
    left_out = set(slices)
    while left_out:
        dims = _lenient_dims(onnx, m2, left_out, propagate)
        if dims is None:
            return
        def negative(v: str, dims=dims):
            return next(((i, d.dim_value) for i, d in enumerate(dims.get(v, ())) if d.HasField("dim_value")
                         and d.dim_value < 0), None)

        sliced = next((m2.graph.node[k].input[0] for k in sorted(left_out) if negative(m2.graph.node[k].input[0])),
                      None)
        if sliced is not None:
            # the node that first makes a negative dimension (the Slice's data may carry it on: a Transpose of it)
            feeds = _feeding(g.node, sliced)   # (another node's negative value, not read by the Slice, is not it)
            at, v = next(((j, o) for j, n in enumerate(g.node) for o in n.output if o in feeds and negative(o)),
                         (None, sliced))
            i, d = negative(v)
            who = f"node {_node_ids(g)[at]!r} ({g.node[at].op_type}): " if at is not None else ""
            raise GraphError(f"{source}: {who}value {v!r} dimension {i} is negative ({d}), which no tensor has")
        after = _computed_after(m2.graph.node, left_out)
        clean = _clean_after(m2.graph.node, left_out, after, lambda v: negative(v) is None)
        safe = {k for k in left_out if m2.graph.node[k].input[0] not in after or m2.graph.node[k].input[0] in clean}
        if not safe:
            return
        left_out -= safe   # (their data checked: inferred with them, what they feed is known in the next round)


def _lenient_dims(onnx, m2, left_out: set[int], propagate: bool = True) -> dict | None:
    """Each value's inferred dims in ``m2`` without its nodes ``left_out`` (inferred leniently), or None where even
    that inference fails (the whole model's inference then says what is wrong)."""
    m3 = onnx.ModelProto()
    m3.CopyFrom(m2)
    del m3.graph.node[:]
    m3.graph.node.extend(n for k, n in enumerate(m2.graph.node) if k not in left_out)
    try:
        inferred = onnx.shape_inference.infer_shapes(m3, check_type=False, strict_mode=False,
                                                     data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - the whole model's inference says what is wrong
        return None
    return {vi.name: vi.type.tensor_type.shape.dim for vi in (*inferred.value_info, *inferred.output, *inferred.input)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}


def _feeding(nodes, value: str) -> set[str]:
    """``value`` and every value it is computed from in the topologically ordered ``nodes``: where a negative
    dimension a Slice reads can have been made."""
    feeds = {value}
    for n in reversed(nodes):
        if any(o in feeds for o in n.output if o):
            feeds.update(i for i in n.input if i)
    return feeds


#: standard ops whose output dimensions onnx infers from their inputs' dimensions alone (equal, broadcast, summed,
#: permuted, kept or dropped), so none is negative unless an input's is; a Reshape's target with a negative entry
#: other than -1 leaves its shape unknown, never negative
NO_NEGATIVE_DIM_OPS = frozenset({
    "Abs", "Add", "And", "Cast", "Ceil", "Concat", "Cos", "Div", "Equal", "Erf", "Exp", "Floor", "Gather", "Gelu",
    "Greater", "GreaterOrEqual", "Identity", "LayerNormalization", "Less", "LessOrEqual", "Log", "LogSoftmax",
    "MatMul", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Reciprocal", "Relu", "Reshape", "Round",
    "Shape", "Sigmoid", "Sign", "Sin", "Softmax", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})


def _clean_after(nodes, left_out: set[int], after: set[str], known_clean) -> set[str]:
    """The values of ``after`` (computed from a left-out Slice) that cannot hold a negative dimension once every
    Slice is back: each made by a Slice of a clean value or by an op of ``NO_NEGATIVE_DIM_OPS`` of clean inputs,
    a value not in ``after`` being clean where ``known_clean`` says its inferred dims are. Why: without it a chain
    of Slices put back one per round cost a whole inference per link (a language model's rotary Slices, layer after
    layer); with it only the links through an op that can make a negative dimension (a Pad, a Conv) wait."""
    clean: set[str] = set()
    def ok(v: str) -> bool:
        return not v or (v in clean if v in after else known_clean(v))
    for k, n in enumerate(nodes):
        outs = [o for o in n.output if o]
        if not outs or not any(o in after for o in outs):
            continue
        standard = n.domain in ("", "ai.onnx")
        if k in left_out and ok(n.input[0]) or standard and n.op_type in NO_NEGATIVE_DIM_OPS and all(map(ok, n.input)):
            clean.update(outs)
    return clean


def _computed_after(nodes, left_out: set[int]) -> set[str]:
    """The values computed, in the topologically ordered ``nodes``, from an output of a node of ``left_out``: a
    Slice reading one is checked only once the Slices before it are back in the inference (what it reads is
    unknown while they are left out, and may be negative: a Pad by negative pads of a Slice's output)."""
    after = {o for k in left_out for o in nodes[k].output if o}
    for n in nodes:
        if any(i in after for i in n.input):
            after.update(o for o in n.output if o)
    return after


#: elements of a 1-D value above which ONNX's data propagation is not run on the model (``_propagates``): onnx makes
#: one dimension object per element of every 1-D value an Add, Sub, Mul, Cast, Concat, Gather or Slice reads (about a
#: microsecond and 200 bytes each), where a shape tensor has a handful; memplan's fold rounds size shape computations
#: without it
LONG_VECTOR = 1 << 18


def _is_long(dims) -> bool:
    """Whether ``dims`` (a TensorShapeProto's) are those of a 1-D value longer than ``LONG_VECTOR``."""
    return len(dims) == 1 and dims[0].HasField("dim_value") and dims[0].dim_value > LONG_VECTOR


def _long_vector(g) -> str | None:
    """The first value of the (inferred) graph ``g`` that a node reads and that is 1-D of a static length over
    ``LONG_VECTOR``, or None."""
    read = {v for n in g.node for v in n.input if v}
    for vi in (*g.input, *g.value_info, *g.output):
        if vi.name in read and vi.type.HasField("tensor_type") and _is_long(vi.type.tensor_type.shape.dim):
            return vi.name
    return next((t.name for t in g.initializer if t.name in read and len(t.dims) == 1 and t.dims[0] > LONG_VECTOR),
                None)


def _propagates(onnx, m2) -> bool:
    """Whether shape inference of the inference copy ``m2`` may run ONNX's data propagation: not where a node
    reads a long 1-D value (``_is_long``), as a lenient inference without it (cheap; its Slices left out, as
    ``_check_slice_data`` leaves them, since onnx's Slice inference aborts on a negative dimension) finds them.

    Why: onnx's data propagation costs time and memory in proportion to the length of every 1-D value an Add, Sub,
    Mul, Cast, Concat, Gather or Slice reads, shape or not: ten Adds of 1-D float tensors of 4M elements (a 168 MB
    model) took 72 s and 6.4 GB to import, forty of 16M elements ran past ten minutes and 22 GB."""
    slices = {k for k, n in enumerate(m2.graph.node) if n.op_type == "Slice" and n.domain in ("", "ai.onnx")}
    dims = _lenient_dims(onnx, m2, slices, propagate=False)
    read = {v for n in m2.graph.node for v in n.input if v}
    return dims is None or not any(v in read and _is_long(d) for v, d in dims.items())


def _merge_contradicted_shapes(onnx, m2, propagate: bool) -> bool:
    """Where the shapes ``m2`` declares (``value_info``, graph outputs) contradict what its nodes make, and only
    their shapes (no element type), rewrite each such declaration to the made shape (a dimension the nodes leave
    open: unknown), as onnxruntime merges them
    ("Error merging shape info ... Falling back to lenient merge": its kernels then write the sizes the nodes
    make); whether any was rewritten. A declaration whose element type is contradicted is left: onnxruntime
    refuses that model ("Type Error").

    Why: ONNX's strict inference refuses the model ("Inferred shape and existing shape differ in dimension 0:
    (2) vs (3)") and the import failed, for a model onnxruntime loads and runs at every opset; the sizes its
    kernels write are those of the nodes' inputs, which inference without the declarations finds."""
    bare = onnx.ModelProto()
    bare.CopyFrom(m2)
    del bare.graph.value_info[:]
    for vi in bare.graph.output:
        vi.ClearField("type")
    try:
        made = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=propagate).graph
    except Exception:  # noqa: BLE001 - inconsistent without the declarations too: not a contradicted declaration
        return False
    inferred = {vi.name: t for vi in list(made.value_info) + list(made.output) if (t := _declared_type(vi)) is not None}
    fixes = []
    for vi in list(m2.graph.value_info) + list(m2.graph.output):
        declared = _declared_type(vi)
        if declared is None or vi.name not in inferred or not _disagree(declared, inferred[vi.name]):
            continue
        (de, dd), (ie, idims) = declared, inferred[vi.name]
        if de and ie and de != ie:
            return False
        fixes.append((vi, dd, idims))
    for vi, dd, idims in fixes:
        shape = vi.type.tensor_type.shape
        if len(dd) != len(idims):
            vi.type.tensor_type.ClearField("shape")
            continue
        for d, made_dim in zip(shape.dim, idims):   # (a dimension the nodes leave open is not taken from a
            d.Clear()                                # declaration known wrong: onnxruntime's merge drops it too)
            if made_dim is not None:
                d.dim_value = made_dim
    return bool(fixes)


def _run_inference(onnx, m2, source: str, folded: bool = False, propagate: bool = True, lenient: bool = False):
    """The inferred graph of ``m2``. After folding, a failure of ONNX's data propagation is retried
    without it: its Add/Sub/Mul propagators take every known value for a 1-D shape and refuse two
    folded values of other ranks that broadcast ((1, 1, 4, 1) + (2, 1, 1, 1): "Invalid rank").
    ``propagate``: whether to run data propagation at all (``_propagates``). ``lenient``: a declared shape the
    nodes contradict is merged into what they make (``_merge_contradicted_shapes``), as onnxruntime does, and
    inference reruns (``m2`` is rewritten so)."""
    try:
        out = onnx.shape_inference.infer_shapes(m2, check_type=True, strict_mode=True, data_prop=propagate)
    except Exception as exc:  # InferenceError, ValidationError: the model is inconsistent
        msg = first_line(exc)
        if lenient and _merge_contradicted_shapes(onnx, m2, propagate):
            return _run_inference(onnx, m2, source, folded, propagate)
        if folded and propagate:
            try:
                return onnx.shape_inference.infer_shapes(m2, check_type=True, strict_mode=True).graph
            except Exception:  # noqa: BLE001 - the first error is the one to show
                pass
        raise GraphError(f"{source}: ONNX shape inference failed: {msg}") from None
    return out.graph


# -- onnxruntime's own ops ------------------------------------------------------------------------------
#
# Models optimized by onnxruntime or optimum hold its fused ops (com.microsoft's Attention, SkipLayerNormalization,
# MatMulNBits, RotaryEmbedding...; SimplifiedLayerNormalization in the default domain). onnx defines none of
# them, so its inference leaves their outputs to what the model declares: a wrong declaration planned a slot of
# the wrong size (too small: the kernel overruns it), a missing one was refused. onnxruntime ships a shape
# inference that knows them; where onnxruntime is installed, it sizes them, and a declaration that disagrees
# is refused by name.

#: onnxruntime's ops: those of its domain, and the ones it defines in the default domain. Only these are sized
#: by its inference, whose rules go by op name alone (another domain's "Attention" is no concern of theirs)
ORT_DOMAIN = "com.microsoft"
ORT_DEFAULT_DOMAIN_OPS = frozenset({"SimplifiedLayerNormalization"})


@functools.cache  # (looked for once per process: the answer is a fact about the installation)
def _ort_symbolic():
    """onnxruntime's ``SymbolicShapeInference`` class, or None where onnxruntime (or sympy, which it needs) is not
    installed. Loaded lazily, never when ``memplan`` is imported, and as its own file: importing it as
    ``onnxruntime.tools.symbolic_shape_infer`` runs ``onnxruntime.tools/__init__``, which imports torch where torch
    is installed (1.5 s and its memory for a module that needs only onnx, numpy and sympy)."""
    import importlib.util
    import logging

    found = None
    try:
        spec = importlib.util.find_spec("onnxruntime")   # (locates the package without importing it)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, "tools", "symbolic_shape_infer.py")
        if not os.path.isfile(path):
            continue
        try:
            mspec = importlib.util.spec_from_file_location("memplan._onnxruntime_symbolic_shape_infer", path)
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
            found = module.SymbolicShapeInference
            # its warnings ("unsupported broadcast...") are not the user's business: memplan's errors say what
            # matters, and the CLI writes one line on stderr or none
            quiet = logging.getLogger(module.__name__)
            quiet.addHandler(logging.NullHandler())
            quiet.propagate = False
        except Exception:  # noqa: BLE001 - sympy missing, an onnxruntime whose file differs: not there
            found = None
        break
    return found


#: onnxruntime's domain of blocked-layout (NCHWc) ops: ``ReorderInput``, its ``Conv``, pools, ``ReorderOutput``
NCHWC_DOMAIN = "com.microsoft.nchwc"


def _is_ort_op(onnx, n) -> bool:
    """Whether node ``n`` is one of onnxruntime's own ops (``ORT_DOMAIN``'s, ``ORT_DEFAULT_DOMAIN_OPS``), not onnx's."""
    if n.domain == ORT_DOMAIN:
        return not onnx.defs.has(n.op_type, n.domain)
    return n.domain in ("", "ai.onnx") and n.op_type in ORT_DEFAULT_DOMAIN_OPS and not onnx.defs.has(n.op_type, "")


def _ort_inferred(onnx, cls, m2, also: dict, known: dict | None = None) -> dict[str, tuple[int, tuple[int, ...]]]:
    """``{value: (elem type, static dims)}`` of the outputs of onnxruntime's own ops in ``m2``, as onnxruntime's
    symbolic shape inference makes them (the ones it leaves symbolic or untyped are absent).

    It runs on a copy of ``m2`` cut to what it can follow: a node it has no rule for (an op of another domain)
    is replaced by its outputs as graph inputs, typed as the model declares them (the nodes after one it does
    not declare are left out), so that one such op does not end its pass. Its declared ``value_info`` is not
    given to it (it would not be checked, but copied). ``known`` (value -> ValueInfoProto of static shape, from
    onnx's inference): a standard node all of whose outputs are known is given as those outputs, typed, unless
    one is a small integer tensor (a shape, an axis: a value the rules may read); onnxruntime's pass stops at
    the first op its rules fail on (its Expand of a shape it cannot follow), which left every op of its own
    after that one unsized, and the model refused, where onnxruntime runs it. Its private loop is driven here
    rather than through its ``infer_shapes``, which saves the model to ``sym_shape_infer_temp.onnx`` in the working directory whenever
    some value stays symbolic, as data-dependent ones do."""
    g2 = m2.graph
    inst = cls(2**31 - 1, False, False, 0)
    inst.dispatcher_ = {**getattr(inst, "dispatcher_", {}), **_ort_hooks(onnx, inst, also)}
    known_ops = set(inst.dispatcher_)
    declared = {vi.name: vi for vi in list(g2.value_info) + list(g2.output)}
    cut = onnx.ModelProto()
    cut.ir_version = m2.ir_version
    cut.opset_import.extend(m2.opset_import)
    cg = cut.graph
    cg.name = g2.name
    cg.input.extend(g2.input)
    cg.initializer.extend(g2.initializer)
    unknown: set[str] = set()
    wanted: list[str] = []
    for n in g2.node:
        outs = [o for o in n.output if o]
        if any(v in unknown for v in n.input if v):
            unknown.update(outs)
            continue
        domain = "" if n.domain == "ai.onnx" else n.domain
        if known and outs and onnx.defs.has(n.op_type, domain) and all(_given_sized(known.get(o)) for o in outs):
            cg.input.extend(known[o] for o in outs)
            continue
        if onnx.defs.has(n.op_type, domain) or (_is_ort_op(onnx, n) and n.op_type in known_ops):
            cg.node.append(n)
            if _is_ort_op(onnx, n):
                wanted.extend(outs)
            continue
        for o in outs:   # an op it cannot size: its outputs as the model declares them
            vi = declared.get(o)
            if vi is not None and vi.type.WhichOneof("value"):
                cg.input.append(vi)
            else:
                unknown.add(o)
    if not wanted:
        return {}
    cg.output.extend(onnx.ValueInfoProto(name=o) for o in dict.fromkeys(wanted))
    found: dict[str, tuple[int, tuple[int, ...]]] = {}
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inst._preprocess(cut)
            for _ in range(4):   # (it repeats a pass only to merge symbols, which it is not asked to)
                if not inst.run_ or inst._infer_impl():
                    break
    except Exception:  # noqa: BLE001 - an op its rules fail on: what it sized before that still stands
        pass
    for o in wanted:
        vi = getattr(inst, "known_vi_", {}).get(o)
        if vi is None or vi.type.WhichOneof("value") != "tensor_type":
            continue
        tt = vi.type.tensor_type
        if tt.elem_type and tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0
                                                         for d in tt.shape.dim):
            found[o] = (tt.elem_type, tuple(d.dim_value for d in tt.shape.dim))
    return found


#: integer types: a small tensor of one may be a value onnxruntime's rules read (a shape, an axis)
_INTEGER_TYPES = frozenset({2, 3, 4, 5, 6, 7, 12, 13})


def _given_sized(vi) -> bool:
    """Whether a value onnx's inference sized (``vi``; None: it did not) may be given to onnxruntime's inference as
    a typed input in place of its node: not a small integer tensor, whose data its rules may need."""
    if vi is None:
        return False
    tt = vi.type.tensor_type
    return not (tt.elem_type in _INTEGER_TYPES and math.prod(d.dim_value for d in tt.shape.dim) <= SMALL_INITIALIZER)


def _fused_matmul(attrs: dict, shapes: list, elems: list, value) -> dict:
    """FusedMatMul: MatMul of its inputs, each with its last two axes swapped where ``transA`` / ``transB`` say
    (onnxruntime's inference has no rule for it). ``transBatchA`` / ``transBatchB`` have none here either. A 1-D
    input has no axes to swap: onnxruntime's kernel ignores its flag (``[K]`` with ``transA`` is still the vector
    ``[K]``), so it is sized as MatMul sizes it rather than refused as unsized."""
    import numpy as np

    if len(shapes) < 2 or shapes[0] is None or shapes[1] is None or attrs.get("transBatchA") or attrs.get("transBatchB"):
        return {}
    a, b = list(shapes[0]), list(shapes[1])
    for s, t in ((a, attrs.get("transA")), (b, attrs.get("transB"))):
        if t and len(s) >= 2:
            s[-1], s[-2] = s[-2], s[-1]
    if not a or not b:
        return {}
    one_a, one_b = len(a) == 1, len(b) == 1
    a, b = ([1] + a if one_a else a), (b + [1] if one_b else b)
    if a[-1] != b[-2]:
        return {}
    try:
        batch = list(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    except ValueError:
        return {}
    return {0: (elems[0], tuple(batch + ([] if one_a else [a[-2]]) + ([] if one_b else [b[-1]])))}


def _skip_layer_norm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """(Skip)(Simplified)LayerNormalization's outputs: the input's shape, and its ``mean`` / ``inv_std_var`` float
    of the input's shape with the last axis 1, as onnxruntime's kernels write them (its inference leaves those
    two unsized)."""
    x = shapes[0] if shapes else None
    if not x:
        return {}
    stat = (1, tuple(x[:-1]) + (1,))   # (float: the kernels' type U, whatever the input's type)
    return {0: (elems[0], tuple(x)), 1: stat, 2: stat, 3: (elems[0], tuple(x))}


def _multi_head_attention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MultiHeadAttention: output ``[B, S, num_heads * v_head]``, present key / value ``[B, num_heads, P + L,
    head]`` of the key's / value's own head size (onnxruntime's inference took the value's for both, and gave
    none for a 4-D key), and the optional ``qk`` scores ``[B, num_heads, S, P + L]`` (its inference gave them
    none: refused as unsized), in the query's type or the one the model declares (``ORT_DECLARED_TYPES``). Query ``[B, S, H]`` or packed ``[B, S, N, 3, h]``; key ``[B, L, H]``, ``[B, N, L, h]`` or
    packed with the value ``[B, L, N, 2, h]``; past key / value (inputs 6, 7) ``[B, N, P, h]``."""
    n = attrs.get("num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    q, k, v = get(0), get(1), get(2)
    if n <= 0 or q is None:
        return {}
    if len(q) == 5 and k is None and v is None:
        batch, seq, length, hk, hv = q[0], q[1], q[1], q[4], q[4]
    elif len(q) == 3 and k is not None:
        batch, seq = q[0], q[1]
        if len(k) == 5 and v is None:
            length, hk, hv = k[1], k[4], k[4]
        elif len(k) == 4 and v is not None and len(v) == 4:
            length, hk, hv = k[2], k[3], v[3]
        elif len(k) == 3 and v is not None and len(v) == 3 and k[2] % n == 0 and v[2] % n == 0:
            length, hk, hv = k[1], k[2] // n, v[2] // n
        else:
            return {}
    else:
        return {}
    past = get(6)
    total = length + (past[2] if past is not None and len(past) == 4 else 0)
    return {0: (elems[0], (batch, seq, n * hv)), 1: (elems[0], (batch, n, total, hk)),
            2: (elems[0], (batch, n, total, hv)), 3: (elems[0], (batch, n, seq, total))}


def _group_query_attention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GroupQueryAttention's present key / value ``[B, kv_num_heads, T, head]``: onnxruntime's kernels make ``T``
    ``max(P, total_sequence_length)`` for a past of ``P``, where ``total_sequence_length`` must be ``P + L`` (a
    cache that grows by the ``L`` new tokens) or at most ``P`` (a cache of fixed size). Its inference took ``P``:
    a growing cache's present overran that by ``L`` tokens. Where ``total_sequence_length`` is a value known here
    that is ``T``; where it is not (a graph input), ``P + L``, the largest onnxruntime accepts; a declared ``P``,
    right for a cache of fixed size, is then accepted (``[..., "also"]``) but not planned."""
    n, kv = attrs.get("num_heads", 0), attrs.get("kv_num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    q, k = get(0), get(1)
    if n <= 0 or kv <= 0 or q is None or len(q) != 3:
        return {}
    if k is not None and len(k) == 3 and k[2] % kv == 0:
        head, length = k[2] // kv, k[1]
    elif k is None and q[2] % (n + 2 * kv) == 0:
        head, length = q[2] // (n + 2 * kv), q[1]
    else:
        return {}
    past = get(3)
    p = past[2] if past is not None and len(past) == 4 else 0
    total = value(6)
    also: tuple = ()
    if total is None:
        t = p + length
        also = ((q[0], kv, p, head),) if p > 0 else ()
    elif total == p + length or length <= total <= p:
        t = max(p, total)
    else:
        return {0: (elems[0], (q[0], q[1], n * head))}   # (onnxruntime refuses the node: its presents unsized)
    present = (elems[0], (q[0], kv, t, head), also)
    return {0: (elems[0], (q[0], q[1], n * head)), 1: present, 2: present}


def _gather_block_quantized(attrs: dict, shapes: list, elems: list, value) -> dict:
    """GatherBlockQuantized: ``data`` gathered along ``gather_axis`` by ``indices``, in the scales' type. Data of
    type uint8 packs ``8 // bits`` values per byte along its last axis, which the output has unpacked (a 4-bit
    ``[V, K / 2]`` table gives ``[..., K]``); onnxruntime takes uint8 data only with ``gather_axis`` 0 and
    ``quantize_axis`` its last. onnxruntime's inference sized it as a Gather of the packed bytes along ``axis``
    (an attribute the op does not have): half the bytes its kernel writes for 4 bits, and the wrong axis."""
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    data, idx = get(0), get(1)
    if data is None or idx is None or not data or len(elems) < 3 or not elems[2]:
        return {}
    rank = len(data)
    gax, qax = attrs.get("gather_axis", 0), attrs.get("quantize_axis", 1)
    gax, qax = (gax + rank if gax < 0 else gax), (qax + rank if qax < 0 else qax)
    if not 0 <= gax < rank or not 0 <= qax < rank or gax == qax:
        return {}
    dims = list(data)
    if elems[0] == 2:   # uint8: packed
        bits = attrs.get("bits", 4)
        if gax != 0 or qax != rank - 1 or not isinstance(bits, int) or bits not in (2, 4, 8):
            return {}
        dims[-1] *= 8 // bits
    return {0: (elems[2], tuple(dims[:gax]) + tuple(idx) + tuple(dims[gax + 1:]))}


def _unfold_tensor(attrs: dict, shapes: list, elems: list, value) -> dict:
    """UnfoldTensor: the windows of ``size`` every ``step`` along axis ``dim`` (default -1, the last): that axis
    becomes the count of windows, ``(d - size) // step + 1``, and a last axis of ``size`` is added. onnxruntime's
    inference counted a negative ``dim`` other than -1 from the end of the output (one axis more): ``dim=-3``
    of ``[3, 5, 4]`` was planned ``[3, 5, 1, 2]``, 192 bytes where the kernel writes ``[2, 5, 4, 2]``, 320."""
    x = shapes[0] if shapes else None
    size, step, dim = attrs.get("size"), attrs.get("step", 1), attrs.get("dim", -1)
    if not x or not all(isinstance(a, int) for a in (size, step, dim)):
        return {}
    dim = dim + len(x) if dim < 0 else dim
    if not 0 <= dim < len(x) or size <= 0 or step <= 0 or size > x[dim]:
        return {}
    dims = list(x)
    dims[dim] = (x[dim] - size) // step + 1
    return {0: (elems[0], tuple(dims) + (size,))}


#: onnxruntime's fusions of a standard op with an activation: op -> (the standard op, its inputs that size it)
AS_STANDARD = {"FusedConv": ("Conv", 2), "FusedGemm": ("Gemm", 2)}


def _as_standard(op: str, inputs: int):
    """A rule for onnxruntime's fusion of standard op ``op`` with an activation (FusedConv: Conv then Relu...;
    FusedGemm): its output is ``op``'s, so ONNX's inference of ``op`` on the first ``inputs`` inputs sizes it, with
    the attributes ``op`` has (the fused activation's are dropped). onnxruntime's inference has no rule for them:
    every model its optimizer saved from a model of symbolic batch was refused at its first FusedConv, whose
    declared output size (symbolic) cannot be fixed by a ``--batch``."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) < inputs or any(s is None for s in shapes[:inputs]) or not all(elems[:inputs]):
            return {}
        dims = _standard_inference(op, attrs, shapes[:inputs], elems[:inputs])
        return {} if dims is None else {0: (elems[0], dims)}
    return rule


def _standard_inference(op: str, attrs: dict, shapes: list, elems: list) -> tuple[int, ...] | None:
    """The static output shape ONNX's inference of standard op ``op`` gives for these inputs and attributes (those
    ``op`` has), None where it gives none; raises onnx's error where it refuses them (``pads`` of the wrong
    length), as onnxruntime's own check of its fused op does."""
    import onnx

    schema = onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "")
    names = [f"in{k}" for k in range(len(shapes))]
    node = onnx.helper.make_node(op, names, ["out"], **{k: v for k, v in attrs.items() if k in schema.attributes})
    types = {v: onnx.helper.make_tensor_type_proto(elems[k], shapes[k]) for k, v in enumerate(names)}
    tt = onnx.shape_inference.infer_node_outputs(schema, node, types)["out"].tensor_type
    if not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
        return None
    return tuple(d.dim_value for d in tt.shape.dim)


def _check_as_standard(n, where: str, shapes: dict) -> None:
    """onnxruntime's fusion of a standard op (FusedConv, FusedGemm: ``AS_STANDARD``) whose attributes or inputs
    ONNX's inference of that op refuses is refused naming the node, as a Conv or Gemm is: onnxruntime checks its
    fused op by that inference when it loads it ("Attribute pads has incorrect size"). Sized by the same rule, it
    was refused only as unsized, or, where the model declared its output, planned."""
    if n.domain != ORT_DOMAIN or n.op_type not in AS_STANDARD:
        return
    op, inputs = AS_STANDARD[n.op_type]
    if len(n.input) < inputs or not all(n.input[:inputs]):
        return
    given = [shapes.get(v, (0, None)) for v in n.input[:inputs]]
    if not all(isinstance(s, tuple) and all(isinstance(d, int) for d in s) and e > 0 for e, s in given):
        return
    import onnx

    try:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        _standard_inference(op, attrs, [s for _, s in given], [e for e, _ in given])
    except Exception as exc:  # noqa: BLE001 - onnx's InferenceError (or an attribute of the wrong kind)
        raise GraphError(f"{where}: ONNX's inference of the {op} it fuses refuses it: {first_line(exc)}; "
                         "onnxruntime refuses it too") from None


def _shape_of_input(k: int):
    """A rule for onnxruntime's ops whose output has input ``k``'s shape and type: its elementwise ops
    (QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, Inverse, its Trilu, GatedRMSNorm, GatedAdd, SampleOp,
    MRotaryEmbedding: their first input's), NGramRepeatBlock (its scores', input 1). Its inference has no rule for
    them: a declaration was planned as given (a QLinearSigmoid of ``[2, 3, 4]`` declared ``[2, 3, 2]`` was planned
    12 bytes, the kernel writes 24; a SampleOp of ``[2, 3]`` declared ``[1, 1]`` 4 bytes of 24)."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        x = shapes[k] if k < len(shapes) else None
        return {} if x is None or not elems[k] else {0: (elems[k], tuple(x))}
    return rule


_same_shape = _shape_of_input(0)


def _murmur_hash3(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MurmurHash3: one 32-bit hash per element of its input (of any type, strings too): uint32 where ``positive``
    (its default, 1), int32 otherwise."""
    x = shapes[0] if shapes else None
    return {} if x is None else {0: (12 if attrs.get("positive", 1) else 6, tuple(x))}


def _matmul_bnb4(attrs: dict, shapes: list, elems: list, value) -> dict:
    """MatMulBnb4: ``A [..., K]`` times the 4-bit ``B`` of ``N`` columns (its attributes ``K`` and ``N``; B is a flat
    byte array) gives ``[..., N]`` in A's type."""
    a, k, n = (shapes[0] if shapes else None), attrs.get("K"), attrs.get("N")
    if not a or not isinstance(n, int) or n < 0 or a[-1] != k:
        return {}
    return {0: (elems[0], tuple(a[:-1]) + (n,))}


def _dynamic_quantize_lstm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """DynamicQuantizeLSTM: ONNX's LSTM of ``X [seq, batch, input]`` (its quantized weights transposed): ``Y
    [seq, directions, batch, hidden_size]``, ``Y_h`` and ``Y_c`` ``[directions, batch, hidden_size]`` in X's type,
    two directions where ``direction`` is ``bidirectional``."""
    x, hidden = (shapes[0] if shapes else None), attrs.get("hidden_size")
    if x is None or len(x) != 3 or not isinstance(hidden, int) or hidden <= 0:
        return {}
    dirs = 2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    last = (elems[0], (dirs, x[1], hidden))
    return {0: (elems[0], (x[0], dirs, x[1], hidden)), 1: last, 2: last}


def _matmul_to(elem_input: int):
    """onnxruntime's quantized MatMuls (DynamicQuantizeMatMul, MatMulIntegerToFloat): a MatMul of inputs 0 and 1
    (ONNX's inference of MatMul), written in the type of input ``elem_input`` (the float input A; A's scale).
    Its inference has no rule for them: a declaration was planned as given."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) <= elem_input or shapes[0] is None or shapes[1] is None or not elems[elem_input]:
            return {}
        dims = _standard_inference("MatMul", {}, shapes[:2], [1, 1])   # (the shapes only: A may be uint8)
        return {} if dims is None else {0: (elems[elem_input], dims)}
    return rule


def _cdist(attrs: dict, shapes: list, elems: list, value) -> dict:
    """CDist: the distances ``[M, N]`` between the rows of A ``[M, K]`` and B ``[N, K]``, in A's type."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    if a is None or b is None or len(a) != 2 or len(b) != 2 or a[1] != b[1]:
        return {}
    return {0: (elems[0], (a[0], b[0]))}


def _expand_dims(attrs: dict, shapes: list, elems: list, value) -> dict:
    """ExpandDims: the input with a dimension of 1 inserted at ``axis`` (its scalar second input; negative from the
    end of the output), where that value is known."""
    x, axis = (shapes[0] if shapes else None), value(1)
    if x is None or axis is None or not -len(x) - 1 <= axis <= len(x):
        return {}
    axis += len(x) + 1 if axis < 0 else 0
    return {0: (elems[0], tuple(x[:axis]) + (1,) + tuple(x[axis:]))}


def _channels_last_op(op: str, sized_by: tuple[int, ...], elem_input: int | None = None, nhwc: bool = False):
    """onnxruntime's quantized / layout forms of a standard op whose output is ``op``'s (ONNX's inference of
    ``op`` on inputs ``sized_by``, with the attributes ``op`` has): QLinearConv (x, w), QLinearAveragePool,
    NhwcMaxPool, MaxpoolWithMask. Where ``channels_last`` is set (NhwcMaxPool: always) the first input and the
    output are ``[N, spatial..., C]``: moved to ``[N, C, spatial...]`` for the inference and back. Written in the
    type of input ``elem_input`` where it is given (QLinearConv: its ``y_zero_point``), else the first input's.
    onnxruntime's inference has no rule for them: a declaration was planned as given (a QLinearConv declared a
    row short of what its kernel writes overran its slot)."""
    def rule(attrs: dict, shapes: list, elems: list, value) -> dict:
        if len(shapes) <= max(sized_by) or any(shapes[k] is None for k in sized_by) or not elems[0]:
            return {}
        x = tuple(shapes[sized_by[0]])
        last = nhwc or attrs.get("channels_last", 0) == 1
        if last:
            if len(x) < 3:
                return {}
            x = (x[0], x[-1]) + x[1:-1]
        ins = [x] + [tuple(shapes[k]) for k in sized_by[1:]]
        dims = _standard_inference(op, attrs, ins, [1] * len(ins))
        if dims is None:
            return {}
        if last:
            dims = (dims[0],) + tuple(dims[2:]) + (dims[1],)
        e = elems[elem_input] if elem_input is not None and elem_input < len(elems) and elems[elem_input] else elems[0]
        return {0: (e, dims)}
    return rule


def _qlinear_global_average_pool(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearGlobalAveragePool: every spatial axis of the input becomes 1 (``[N, C, 1, 1]``; with
    ``channels_last``, ``[N, 1, 1, C]``), in the input's type."""
    x = shapes[0] if shapes else None
    if x is None or len(x) < 3 or not elems[0]:
        return {}
    if attrs.get("channels_last", 0) == 1:
        return {0: (elems[0], (x[0],) + (1,) * (len(x) - 2) + (x[-1],))}
    return {0: (elems[0], (x[0], x[1]) + (1,) * (len(x) - 2))}


def _qgemm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QGemm: Gemm of A (input 0) and B (input 3), ``transA`` / ``transB`` applied; quantized in its
    ``y_zero_point``'s type where it has one (input 8), else float: onnxruntime's kernel writes float for a
    ``y_scale`` (input 7) given alone, too."""
    a, b = (shapes[k] if k < len(shapes) else None for k in (0, 3))
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return {}
    m = a[1] if attrs.get("transA", 0) else a[0]
    ka = a[0] if attrs.get("transA", 0) else a[1]
    kb, n = (b[1], b[0]) if attrs.get("transB", 0) else (b[0], b[1])
    if ka != kb:
        return {}
    return {0: (elems[8] if len(elems) > 8 and elems[8] else 1, (m, n))}


def _qlinear_concat(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearConcat: inputs ``Y_scale, Y_zero_point`` then a ``(X, X_scale, X_zero_point)`` triple per tensor,
    concatenated along ``axis``, written in ``Y_zero_point``'s type."""
    xs = shapes[2::3]
    axis = attrs.get("axis")
    if not xs or any(x is None for x in xs) or len(elems) < 2 or not elems[1] or not isinstance(axis, int):
        return {}
    rank = len(xs[0])
    axis += rank if axis < 0 else 0
    if not 0 <= axis < rank or any(len(x) != rank or any(x[d] != xs[0][d] for d in range(rank) if d != axis)
                                   for x in xs):
        return {}
    dims = list(xs[0])
    dims[axis] = sum(x[axis] for x in xs)
    return {0: (elems[1], tuple(dims))}


def _broadcast(shapes: list) -> tuple[int, ...] | None:
    """The numpy broadcast of ``shapes``, None where they do not broadcast."""
    import numpy as np

    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        return None


def _qlinear_where(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QLinearWhere: the broadcast of ``condition`` (0), ``X`` (1) and ``Y`` (4), in ``z_zero_point``'s type (8)."""
    if len(shapes) < 9 or any(shapes[k] is None for k in (0, 1, 4)) or not elems[8]:
        return {}
    dims = _broadcast([shapes[0], shapes[1], shapes[4]])
    return {} if dims is None else {0: (elems[8], dims)}


def _grid_sample(attrs: dict, shapes: list, elems: list, value) -> dict:
    """com.microsoft's GridSample: ``X [N, C, H, W]`` sampled at ``grid [N, H_out, W_out, 2]`` gives ``[N, C,
    H_out, W_out]``, in X's type."""
    x, grid = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    if x is None or grid is None or len(x) != 4 or len(grid) != 4 or grid[3] != 2 or grid[0] != x[0]:
        return {}
    return {0: (elems[0], (x[0], x[1], grid[1], grid[2]))}


def _crop_and_resize(attrs: dict, shapes: list, elems: list, value) -> dict:
    """CropAndResize: ``[num_rois, C, crop_height, crop_width]`` for ``X [N, C, H, W]``, ``rois [num_rois, 4]``
    and ``crop_size`` (input 3, two values), where those values are known."""
    x, rois = (shapes[k] if k < len(shapes) else None for k in (0, 1))
    crop = value(3, many=True)
    if x is None or rois is None or len(x) != 4 or len(rois) != 2 or crop is None or len(crop) != 2:
        return {}
    return {0: (elems[0], (rois[0], x[1], crop[0], crop[1]))}


def _qattention(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QAttention: ``input [B, S, H]``, ``weight [H, 3 * H_out]``: output ``[B, S, H_out]`` in ``input_scale``'s
    type (input 3, float); ``present`` ``[2, B, num_heads, P + S, H_out / num_heads]`` for a ``past`` (input 8)
    ``[2, B, num_heads, P, head]``."""
    heads = attrs.get("num_heads", 0)
    get = (lambda i: shapes[i] if i < len(shapes) else None)   # noqa: E731
    x, w = get(0), get(1)
    if heads <= 0 or x is None or w is None or len(x) != 3 or len(w) != 2 or w[1] % 3 or len(elems) < 4:
        return {}
    hidden = w[1] // 3
    e = elems[3] or 1
    out = {0: (e, (x[0], x[1], hidden))}
    past = get(8)
    if hidden % heads == 0:
        p = past[3] if past is not None and len(past) == 5 else 0
        out[1] = (e, (2, x[0], heads, p + x[1], hidden // heads))
    return out


def _qembed_layer_norm(attrs: dict, shapes: list, elems: list, value) -> dict:
    """QEmbedLayerNormalization: ``input_ids [B, S]`` and a word embedding ``[V, H]`` (input 2) give the layer
    norm's ``[B, S, H]`` in the scales' float type (input 8) and the mask index ``[B]`` int32."""
    ids, word = (shapes[k] if k < len(shapes) else None for k in (0, 2))
    if ids is None or word is None or len(ids) != 2 or len(word) != 2:
        return {}
    e = elems[8] if len(elems) > 8 and elems[8] else 1
    return {0: (e, (ids[0], ids[1], word[1])), 1: (6, (ids[0],))}


def _unique_indices(attrs: dict, shapes: list, elems: list, value) -> dict:
    """com.microsoft's Unique of a 1-D ``x [N]``: its ``idx`` (output 1) is int64 ``[N]``; its ``y`` and ``counts``
    (0, 2) have as many entries as ``x`` has distinct values, known only at run time (``ORT_DATA_DEPENDENT``)."""
    x = shapes[0] if shapes else None
    return {} if x is None or len(x) != 1 else {1: (7, tuple(x))}


#: memplan's own rules for onnxruntime ops whose outputs its inference sizes wrongly or not at all, each
#: checked against what onnxruntime 1.32's kernels write (tests/test_onnx_round27b.py, test_onnx_left28.py,
#: test_onnx_left28c.py): op ->
#: rule(attributes, static input shapes (None: absent or not static), input elem types, value(i) of a constant
#: scalar input) -> {output index: (elem, dims) or (elem, dims, other dims a declaration may have)}
ORT_RULES = {"FusedMatMul": _fused_matmul, "SkipLayerNormalization": _skip_layer_norm,
             "SkipSimplifiedLayerNormalization": _skip_layer_norm, "MultiHeadAttention": _multi_head_attention,
             "GroupQueryAttention": _group_query_attention, "GatherBlockQuantized": _gather_block_quantized,
             "UnfoldTensor": _unfold_tensor, "FusedConv": _as_standard(*AS_STANDARD["FusedConv"]),
             "FusedGemm": _as_standard(*AS_STANDARD["FusedGemm"]), "QLinearSigmoid": _same_shape,
             "QLinearLeakyRelu": _same_shape, "QLinearSoftmax": _same_shape, "Inverse": _same_shape,
             "Trilu": _same_shape, "TransposeMatMul": _fused_matmul, "DynamicQuantizeMatMul": _matmul_to(0),
             "MatMulIntegerToFloat": _matmul_to(2), "CDist": _cdist, "ExpandDims": _expand_dims,
             "QLinearConv": _channels_last_op("Conv", (0, 3), 7), "QGemm": _qgemm,
             "QLinearAveragePool": _channels_last_op("AveragePool", (0,)),
             "QLinearGlobalAveragePool": _qlinear_global_average_pool, "QLinearConcat": _qlinear_concat,
             "QLinearWhere": _qlinear_where, "NhwcMaxPool": _channels_last_op("MaxPool", (0,), nhwc=True),
             "MaxpoolWithMask": _channels_last_op("MaxPool", (0,)), "GridSample": _grid_sample,
             "CropAndResize": _crop_and_resize, "QAttention": _qattention,
             "QEmbedLayerNormalization": _qembed_layer_norm, "Unique": _unique_indices,
             **{op: _shape_of_input(0) for op in ("GatedRMSNorm", "GatedAdd", "SampleOp", "MRotaryEmbedding")},
             "NGramRepeatBlock": _shape_of_input(1), "MurmurHash3": _murmur_hash3, "MatMulBnb4": _matmul_bnb4,
             "DynamicQuantizeLSTM": _dynamic_quantize_lstm}
#: the ops of ``ORT_RULES`` added in round 30, which no shape inference sized before (a declaration was planned as
#: given): an output their rule cannot size (an input of unknown shape, attributes onnxruntime refuses) is refused,
#: not taken from a declaration nothing checks
ORT_RULED_ONLY = frozenset({"GatedRMSNorm", "GatedAdd", "SampleOp", "MRotaryEmbedding", "NGramRepeatBlock",
                            "MurmurHash3", "MatMulBnb4", "DynamicQuantizeLSTM"})
#: onnxruntime's ops with a CPU kernel that no shape inference sizes and memplan has no rule for (each too
#: intricate to size without a check against its kernel: state caches, n-gram hashing, generation loops whose
#: length is a value): refused by name, wherever they are, rather than planned at a declared size nothing checks
#: (a declaration of half the size was planned at that, the kernel writing past it)
ORT_UNSIZED = frozenset({"AttnLSTM", "BeamSearch", "BifurcationDetector", "CausalConvWithState",
                         "ConvTransposeWithDynamicPads", "EngramGate", "GatedDeltaNet", "GatherPacked", "GreedySearch",
                         "LinearAttention", "LinearAttentionGate", "MatMulFpQ4", "MoEGroupRouter", "NGramHashMapping",
                         "QMoE", "Sampling", "SparseToDenseMatMul", "Tokenizer", "VarlenCausalConvWithState",
                         "VarlenNGramHashMapping", "WhisperBeamSearch", "WordConvEmbedding"})
#: the outputs whose size onnxruntime's own rule gets wrong: where memplan's rule gives none (an input it cannot
#: size, attributes onnxruntime refuses), onnxruntime's is not taken either
ORT_WRONG = {"MultiHeadAttention": (0, 1, 2, 3), "GroupQueryAttention": (1, 2), "GatherBlockQuantized": (0,),
             "UnfoldTensor": (0,)}


#: outputs of onnxruntime's ops whose type the kernel takes from the model, any of these: op -> {output index:
#: elem types}. MultiHeadAttention's ``qk`` has its own type parameter (``QK``): a float16 model may declare it
#: float, and the kernel then writes float (twice the bytes of the query's type that its rule gives). Its kernels
#: take QK float or float16 only (CPU: float, or the query's float16; CUDA: either, for a query of either): a
#: ``qk`` declared bfloat16 runs nowhere and is refused; float16 in a float model runs on CUDA (CPU refuses it,
#: "Tensor type mismatch") and is planned as CUDA writes it
ORT_DECLARED_TYPES = {"MultiHeadAttention": {3: (1, 10)}}


def _ort_hooks(onnx, inst, also: dict) -> dict:
    """``ORT_RULES`` as handlers for onnxruntime's inference ``inst`` (its ``dispatcher_``): each runs the
    handler it replaces, if any, then writes the outputs its rule sizes; ``also`` receives the other
    declarations a rule accepts."""
    def handler(rule, original):
        def run(node):
            if original is not None:
                try:
                    original(node)
                except Exception:  # noqa: BLE001 - its rule failed: ours may still size the outputs
                    pass
            shapes, elems = [], []
            for name in node.input:
                vi = inst.known_vi_.get(name) if name else None
                tt = vi.type.tensor_type if vi is not None and vi.type.HasField("tensor_type") else None
                static = (tt is not None and tt.HasField("shape")
                          and all(d.HasField("dim_value") for d in tt.shape.dim))
                shapes.append(tuple(d.dim_value for d in tt.shape.dim) if static else None)
                elems.append(tt.elem_type if tt is not None else 0)

            def value(i: int, many: bool = False):
                """Input ``i``'s known constant: a scalar int, or (``many``) a tuple of ints; None where unknown."""
                if i >= len(node.input) or not node.input[i]:
                    return None
                try:
                    v = inst._try_get_value(node, i)
                    if many:
                        v = list(v.flatten()) if hasattr(v, "flatten") else v
                        items = v if isinstance(v, list) else [v]
                        return (tuple(int(x) for x in items)
                                if v is not None and all(str(x).lstrip("-").isdigit() for x in items) else None)
                    v = v[0] if isinstance(v, list) and len(v) == 1 else v
                    return int(v) if v is not None and str(v).lstrip("-").isdigit() else None
                except Exception:  # noqa: BLE001 - not a value it knows
                    return None

            try:
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                sized = rule(attrs, shapes, elems, value)
            except Exception:  # noqa: BLE001 - attributes of the wrong type: no size from this rule
                sized = {}
            for k in ORT_WRONG.get(node.op_type, ()):
                o = node.output[k] if k < len(node.output) else ""
                vi = inst.known_vi_.get(o) if o else None
                if vi is not None and k not in sized and vi.type.tensor_type.HasField("shape"):
                    for j, d in enumerate(vi.type.tensor_type.shape.dim):   # unknown from here on, not wrong
                        d.dim_param = f"memplan_unsized_{o}_{j}"
            for k, found in sized.items():
                o = node.output[k] if k < len(node.output) else ""
                if o and o in inst.known_vi_ and found[0]:
                    inst.known_vi_[o].CopyFrom(onnx.helper.make_tensor_value_info(o, found[0], list(found[1])))
                    if len(found) > 2:
                        also[o] = found[2]
        return run

    table = getattr(inst, "dispatcher_", {})
    return {op: handler(rule, table.get(op)) for op, rule in ORT_RULES.items()}


def _fits(declared: list, dims: tuple) -> bool:
    """Whether a declared shape (None for a dimension it leaves open) admits ``dims``."""
    return len(declared) == len(dims) and all(a is None or a == b for a, b in zip(declared, dims))


def _refuse_unsized_ort_ops(g2, ort_nodes: list, source: str) -> None:
    """Refuse the first node of ``ORT_UNSIZED`` among ``ort_nodes`` (``(index, node)`` of onnxruntime's ops in
    ``g2``), naming it and its op, whether or not onnxruntime is installed: nothing sizes its outputs but the
    model's declaration, which nothing checks."""
    for i, n in ort_nodes:
        if n.op_type in ORT_UNSIZED:
            outs = [o for o in n.output if o]
            raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): neither onnx's nor "
                             f"onnxruntime's shape inference sizes onnxruntime's {n.op_type}, and memplan has no rule "
                             f"for it checked against its kernel, so its output {outs[0] if outs else ''!r} could "
                             "only be planned at the size the model declares, which nothing checks (unsupported)")


def _refuse_unruled(g2, ort_nodes: list, source: str, found: dict, data_dependent: Collection[str]) -> None:
    """Refuse an output of an ``ORT_RULED_ONLY`` op that its rule did not size (``found``: what onnxruntime's
    inference and memplan's rules sized), naming the node, op and value: before round 30 such an output was
    planned at its declaration, and the rule is the only check of one. A data-dependent value is left to
    that refusal."""
    for i, n in ort_nodes:
        if n.op_type not in ORT_RULED_ONLY:
            continue
        for o in n.output:
            if o and o not in found and o not in data_dependent:
                raise GraphError(f"{source}: node {_node_ids(g2)[i]!r} ({n.domain}:{n.op_type}): memplan's rule for "
                                 f"{n.op_type} (checked against onnxruntime's kernel) cannot size its output {o!r} "
                                 "from these inputs (one of unknown shape or type, or attributes the kernel "
                                 "refuses), and a declared size is not checked (unsupported)")


def _size_ort_ops(onnx, m2, source: str, data_dependent: set[str], known: dict | None = None) -> bool:
    """Declare in ``m2`` (the copy given to shape inference) the outputs of onnxruntime's own ops as onnxruntime's
    shape inference sizes them, so that onnx's inference sizes what follows from them; refuse a declaration of
    the model's that disagrees, naming the node and value. False where onnxruntime is not installed (the
    model's declarations are then taken as before: the only size there is). A value whose size depends on what
    the graph inputs hold (``data_dependent``) is left to that refusal, whatever onnxruntime makes of it.
    ``known``: values onnx's inference sized, handed to onnxruntime's as sized (``_ort_inferred``)."""
    ort_nodes = [(i, n) for i, n in enumerate(m2.graph.node) if _is_ort_op(onnx, n)]
    if not ort_nodes:
        return True
    _refuse_unsized_ort_ops(m2.graph, ort_nodes, source)
    cls = _ort_symbolic()
    if cls is None:
        return False
    also: dict[str, tuple] = {}   # value -> other shapes a declaration of it may have (a bound is planned)
    found = _ort_inferred(onnx, cls, m2, also, known or {})
    _refuse_unruled(m2.graph, ort_nodes, source, found, data_dependent)
    if not found:
        return True
    g2 = m2.graph
    ids = _node_ids(g2)
    declared: dict[str, list] = {}
    for vi in list(g2.value_info) + list(g2.output):
        declared.setdefault(vi.name, []).append(vi)
    for i, n in ort_nodes:
        op = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
        for o in n.output:
            if not o or o not in found or o in data_dependent:
                continue
            elem, dims = found[o]
            free = ORT_DECLARED_TYPES.get(n.op_type, {}).get(list(n.output).index(o), ())
            for vi in declared.get(o, ()):
                kind = vi.type.WhichOneof("value")
                tt = vi.type.tensor_type
                if kind == "tensor_type" and tt.elem_type in free:
                    elem = tt.elem_type   # (the type the kernel writes: the model's, not the rule's)
                elif kind == "tensor_type" and free and tt.elem_type and tt.elem_type != elem:
                    takes = " or ".join(_dtype_name(onnx, e) for e in free)
                    have_type = _dtype_name(onnx, tt.elem_type)
                    raise GraphError(f"{source}: node {ids[i]!r} ({op}): value {o!r} is declared {have_type}, but "
                                     f"onnxruntime's {n.op_type} kernels write it only as {takes} (no provider has one "
                                     f"writing {have_type} for an input of {_dtype_name(onnx, elem)}); declare it "
                                     f"{takes}")
                if kind is None or (kind == "tensor_type" and not tt.elem_type and not tt.HasField("shape")):
                    continue
                have = ([d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                        if tt.HasField("shape") else None)
                if (kind != "tensor_type" or (tt.elem_type and tt.elem_type != elem)
                        or (have is not None and not any(_fits(have, s) for s in (dims, *also.get(o, ()))))):
                    shown = f"a {kind.removesuffix('_type')}" if kind != "tensor_type" else _show_type(tt.elem_type, have)
                    by = (f"memplan's rule for {n.op_type} (checked against onnxruntime's kernels)"
                          if n.op_type in ORT_RULES else "onnxruntime's shape inference")
                    # (a declaration at least as large would hold it, but the nodes after it would be sized by a
                    # shape that never occurs: refused as well, and said so)
                    larger = (kind == "tensor_type" and have is not None and None not in have
                              and (tt.elem_type or elem) in _BITS and elem in _BITS
                              and _nbytes(_BITS[tt.elem_type or elem], have) >= _nbytes(_BITS[elem], dims))
                    why = ("larger than onnxruntime writes, what follows it would be sized by a shape that never occurs"
                           if larger else
                           "a plan of the declared size would not hold what onnxruntime writes")
                    raise GraphError(f"{source}: node {ids[i]!r} ({op}): value {o!r} is declared {shown}, but {by} "
                                     f"makes it {_show_type(elem, list(dims))}: {why}; correct or remove the "
                                     "declaration")
            tp = onnx.helper.make_tensor_type_proto(elem, list(dims))
            if o in declared:
                for vi in declared[o]:
                    vi.type.CopyFrom(tp)
            else:
                g2.value_info.append(onnx.helper.make_value_info(o, tp))
    return True


# -- folding of shape computations --------------------------------------------------------------------
#
# ONNX's data propagation follows Shape -> Gather -> Concat -> Reshape, but not Div, Cast, Equal, Where,
# ConstantOfShape, Range...: exporters (torch.onnx for torchvision's ViT, Swin, ShuffleNet) compute
# shapes with them, so the tensors behind such a Reshape, Expand, Pad or Slice had unknown dimensions. As
# the runtimes' constant folding does, nodes whose inputs are all known small values (constants, the
# shape of a tensor whose shape is known) are evaluated (onnx's reference evaluator) and replaced by
# Constants in the copy given to shape inference, and inference runs again, until nothing new folds.

#: most rounds of fold-and-infer (each resolves shapes that depend on the shapes found by the last)
MAX_FOLD_ROUNDS = 32
#: values up to this many elements are folded (shape computations are tiny; masks and weights are not)
MAX_FOLD_ELEMENTS = 4096
#: ops never folded: random, or not a pure function of their inputs; or whose work no size of theirs
#: bounds (a window or a sampling ratio is an attribute: the reference evaluator's MaxPool of an 8x8 constant
#: with a 3000x3000 window ran 80 s, its RoiAlign with sampling_ratio 64 a minute), which compute no shapes
_NO_FOLD = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                      "Bernoulli", "Dropout",
                      "MaxPool", "AveragePool", "LpPool", "MaxRoiPool", "RoiAlign", "Conv", "ConvTranspose",
                      "ConvInteger", "QLinearConv", "DeformConv", "GridSample", "Col2Im", "MaxUnpool", "LRN",
                      "RNN", "LSTM", "GRU", "NonMaxSuppression", "STFT", "DFT"})


def _all_static(g) -> bool:
    """Every value a node makes has a static shape: a value inference left out of ``value_info`` (an op
    without an inference function: GroupNormalization-21) is not static, and is left to a fold round."""
    typed = set()
    for vi in list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None or not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
            return False
        typed.add(vi.name)
    return all(not o or o in typed for n in g.node if n.op_type != "Constant" for o in n.output)


def _static_shapes(g) -> dict[str, tuple[int, ...]]:
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                out[vi.name] = tuple(d.dim_value for d in dims)
    for t in g.initializer:
        out[t.name] = tuple(t.dims)
    return out


#: ops onnxruntime may make smaller outputs of than ONNX's inference sizes (``_ort_fewer``), and the first opset at
#: which they do (pooling's ``ceil_mode``; ConvTranspose's ``output_padding`` beside ``SAME_*``)
ORT_SMALLER = {"MaxPool": 10, "AveragePool": 10, "LpPool": 18, "ConvTranspose": 1}


def _pool_windows(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: windows}`` onnxruntime's kernel makes along each spatial axis of pooling node ``n`` of an
    ``x``-shaped input where it makes fewer than ONNX's inference (``y``). onnxruntime counts
    ``(in + pads - dilation * (kernel - 1) - 1) / stride + 1`` windows, rounded down (up in ``ceil_mode``, less a
    last window that would start at or past the end of the input and its leading padding, as PyTorch does), its
    ``SAME_*`` pads being those of an undilated kernel."""
    attrs = {a.name: a for a in n.attribute}
    ceil = attrs["ceil_mode"].i if "ceil_mode" in attrs else 0
    spatial = len(x) - 2
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else []
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * spatial
    dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * spatial
    pads = list(attrs["pads"].ints) if "pads" in attrs else [0] * 2 * spatial
    auto_pad = attrs["auto_pad"].s if "auto_pad" in attrs else b"NOTSET"
    if (spatial < 1 or len(y) != len(x) or not len(kernel) == len(strides) == len(dilations) == spatial
            or len(pads) != 2 * spatial or min(strides) < 1):
        return {}
    out = {}
    for i in range(spatial):
        size, stride, windows = x[2 + i], strides[i], y[2 + i]
        head, total = (pads[i], pads[i] + pads[i + spatial]) if auto_pad in (b"NOTSET", b"") else (0, 0)
        if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
            total = (-(-size // stride) - 1) * stride + kernel[i] - size
            head = total // 2 if auto_pad == b"SAME_UPPER" else (total + 1) // 2
        span = size + total - dilations[i] * (kernel[i] - 1) - 1
        if span < 0:
            continue
        ort = (-(-span // stride) if ceil else span // stride) + 1
        if ceil and ort > 1 and (ort - 1) * stride >= size + head:
            ort -= 1
        if ort < windows:
            out[2 + i] = ort
    return out


def _conv_transpose_size(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: size}`` of the output of ConvTranspose ``n`` of an ``x``-shaped input along each spatial axis where
    onnxruntime makes it smaller than ONNX's inference (``y``): with ``SAME_*`` and no ``output_shape``, onnxruntime
    makes ``in * stride`` and ignores ``output_padding``, which ONNX's inference adds."""
    attrs = {a.name: a for a in n.attribute}
    if (attrs["auto_pad"].s if "auto_pad" in attrs else b"") not in (b"SAME_UPPER", b"SAME_LOWER") or "output_shape" in attrs:
        return {}
    spatial = len(x) - 2
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * spatial
    if spatial < 1 or len(y) != len(x) or len(strides) != spatial:
        return {}
    return {2 + i: x[2 + i] * strides[i] for i in range(spatial) if x[2 + i] * strides[i] < y[2 + i]}


def _ort_fewer(n, x: tuple[int, ...], y: tuple[int, ...]) -> dict[int, int]:
    """``{axis: size}`` onnxruntime makes of the output of ``n`` (one of ``ORT_SMALLER``) where ONNX's is larger."""
    return _conv_transpose_size(n, x, y) if n.op_type == "ConvTranspose" else _pool_windows(n, x, y)


def _ort_smaller_outputs(onnx, m2, inferred) -> bool:
    """Make each node of the inference copy ``m2`` (``ORT_SMALLER``) whose output onnxruntime makes smaller than
    ONNX's inference sizes it (``_ort_fewer``) write into a value of its own, sliced down to onnxruntime's size
    into the values the model names; True when any was.

    Why: ONNX's inference counts ``ceil((in + pads - kernel) / stride) + 1`` windows in ``ceil_mode``, and
    onnxruntime (with PyTorch) drops a last window that would start in the trailing padding:
    ``MaxPool2d(2, 2, padding=1, ceil_mode=True)`` of a 5x5 was planned 4x4 (192 bytes of 3 channels), onnxruntime
    writes 3x3 (108); a ``SAME_*`` pool of a dilated kernel makes fewer windows than ONNX's ``ceil(in / stride)``;
    a ConvTranspose ``SAME_*`` with ``output_padding`` makes ``in * stride``, without the padding ONNX adds; what
    followed was sized by ONNX's count too (waste, never an overrun)."""
    import numpy as np
    from onnx import numpy_helper

    opset = next((o.version for o in m2.opset_import if (o.domain or "") in ("", "ai.onnx")), 1)
    if not any(n.op_type in ORT_SMALLER and opset >= ORT_SMALLER[n.op_type] for n in m2.graph.node):
        return False
    shapes = _static_shapes(inferred)
    nodes, taken, sliced = [], None, set()
    for n in m2.graph.node:
        nodes.append(n)
        x = shapes.get(n.input[0]) if n.input else None
        y = shapes.get(n.output[0]) if n.output and n.output[0] else None
        if (n.op_type not in ORT_SMALLER or n.domain not in ("", "ai.onnx") or opset < ORT_SMALLER[n.op_type] or x is None
                or y is None):
            continue
        fewer = _ort_fewer(n, x, y)
        if not fewer:
            continue
        taken = _value_names(m2.graph) if taken is None else taken
        axes = sorted(fewer)
        for k, o in enumerate(n.output):
            if not o:
                continue
            full = next(f"{o}::windows{j or ''}" for j in range(len(taken) + 1) if f"{o}::windows{j or ''}" not in taken)
            n.output[k] = full
            if opset < 10:   # (Slice-1 takes attributes: a ConvTranspose's of opset 1-9, which inference refused)
                taken.add(full)
                nodes.append(onnx.helper.make_node("Slice", [full], [o], starts=[0] * len(axes),
                                                   ends=[fewer[a] for a in axes], axes=axes))
                sliced.add(o)
                continue
            names = [f"{full}::{w}" for w in ("starts", "ends", "axes")]
            taken.update([full, *names])
            for name, value in zip(names, ([0] * len(axes), [fewer[a] for a in axes], axes)):
                nodes.append(onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
                    np.array(value, np.int64), name)))
            nodes.append(onnx.helper.make_node("Slice", [full, *names], [o]))
            sliced.add(o)
    return _replace_nodes(m2.graph, nodes, sliced)


def _einsum_terms(equation: str) -> tuple[list[str], str] | None:
    """The input terms and the output labels of an Einsum ``equation`` (implicit: the labels used once), spaces
    dropped; None where a term holds anything but letters and one ellipsis."""
    eq = equation.replace(" ", "")
    ins, arrow, out = eq.partition("->")
    terms = ins.split(",")

    def plain(t: str) -> bool:
        rest = t.replace("...", "", 1)
        return rest == "" or rest.isascii() and rest.isalpha()

    if not all(plain(t) for t in [*terms, out]):
        return None
    if not arrow:
        out = "".join(c for c in set(ins) if c.isalpha() and ins.count(c) == 1)
    return terms, out.replace("...", "")


def _einsum_labels(term: str, rank: int) -> list[str | None] | None:
    """The label of each of the ``rank`` dimensions an Einsum ``term`` names (None: one its ellipsis stands for), or
    None where the term does not fit the rank."""
    head, dots, tail = term.partition("...")
    if not dots:
        return list(head) if len(head) == rank else None
    if len(head) + len(tail) > rank:
        return None
    return [*head, *[None] * (rank - len(head) - len(tail)), *tail]


def _einsum_expanded(n, shapes: dict) -> dict[int, tuple[int, ...]]:
    """``{input index: the shape onnxruntime broadcasts it to}`` for Einsum node ``n`` whose inputs ``shapes`` knows:
    an output label of length 1 in that input and N in another (numpy and onnxruntime broadcast it to N)."""
    attrs = {a.name: a.s for a in n.attribute}
    parsed = _einsum_terms(attrs.get("equation", b"").decode("utf-8", "replace"))
    if parsed is None or len(parsed[0]) != len(n.input) or not all(v in shapes for v in n.input):
        return {}
    terms, out = parsed
    labels = [_einsum_labels(t, len(shapes[v])) for t, v in zip(terms, n.input)]
    if None in labels:
        return {}
    longest: dict[str | None, int] = {}
    for ls, v in zip(labels, n.input):
        for c, d in zip(ls, shapes[v]):
            longest[c] = max(longest.get(c, d), d)
    found = {}
    for k, (ls, v) in enumerate(zip(labels, n.input)):
        wide = tuple(longest[c] if d == 1 and c is not None and c in out else d for c, d in zip(ls, shapes[v]))
        if wide != shapes[v]:
            found[k] = wide
    return found


def _einsum_broadcasts(onnx, m2, inferred) -> bool:
    """Make each Einsum of the inference copy ``m2`` that broadcasts an output label of length 1 (``_einsum_expanded``)
    read its inputs Expanded to the lengths onnxruntime broadcasts them to; True when any was.

    Why: ONNX's Einsum inference takes a label's first length and does not broadcast: ``bij,bjk->bik`` of a
    ``[1, 3, 4]`` and a ``[5, 4, 6]`` was planned ``[1, 3, 6]`` (72 bytes), and onnxruntime (as numpy) writes
    ``[5, 3, 6]`` (360 bytes) into it."""
    import numpy as np
    from onnx import numpy_helper

    if not any(n.op_type == "Einsum" and n.domain in ("", "ai.onnx") for n in m2.graph.node):
        return False
    shapes = _static_shapes(inferred)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        wide = _einsum_expanded(n, shapes) if n.op_type == "Einsum" and n.domain in ("", "ai.onnx") else {}
        for k, shape in sorted(wide.items()):
            taken = _value_names(m2.graph) if taken is None else taken
            name = _fresh_name(f"{n.input[k]}::broadcast", taken)
            target = _fresh_name(f"{name}::shape", taken)
            nodes.append(onnx.helper.make_node("Constant", [], [target], value=numpy_helper.from_array(
                np.array(shape, np.int64), target)))
            nodes.append(onnx.helper.make_node("Expand", [n.input[k], target], [name]))
            n.input[k] = name
            changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _prelu_broadcasts(onnx, m2, inferred) -> bool:
    """Make each PRelu of the inference copy ``m2`` whose slope broadcasts its input ``X`` to a larger shape read
    ``X`` Expanded to that shape; True when any did.

    Why: ONNX's PRelu broadcasts the slope to ``X`` alone (unidirectionally) and sizes the output as ``X``;
    onnxruntime's kernel broadcasts both ways, as ``Add`` does: a PRelu of ``X`` ``[2, 1]`` by a slope of ``[3]``
    was planned 8 bytes, and onnxruntime writes ``[2, 3]`` (24 bytes) into it. (Shapes that do not broadcast at all
    are refused by ``_check_prelu_slope``.)"""
    import numpy as np
    from onnx import numpy_helper

    if _default_opset(m2) < 7 or not any(n.op_type == "PRelu" and n.domain in ("", "ai.onnx") for n in m2.graph.node):
        return False   # (PRelu-1 and -6 apply a slope per channel: sized as X, and onnxruntime runs neither)
    shapes = _static_shapes(inferred)
    nodes, taken, changed = [], None, set()
    for n in m2.graph.node:
        if (n.op_type == "PRelu" and n.domain in ("", "ai.onnx") and len(n.input) == 2
                and all(v in shapes for v in n.input)):
            wide = _broadcast([shapes[n.input[0]], shapes[n.input[1]]])
            if wide is not None and wide != shapes[n.input[0]]:
                taken = _value_names(m2.graph) if taken is None else taken
                name = _fresh_name(f"{n.input[0]}::broadcast", taken)
                target = _fresh_name(f"{name}::shape", taken)
                if _default_opset(m2) < 9:   # (no Expand before opset 8, no int64 Constant before 9: X plus the
                    #   slope's zeros, broadcast both ways by Add since opset 7, is X at the wide shape)
                    nodes.append(onnx.helper.make_node("Sub", [n.input[1], n.input[1]], [target]))
                    nodes.append(onnx.helper.make_node("Add", [n.input[0], target], [name]))
                else:
                    nodes.append(onnx.helper.make_node("Constant", [], [target], value=numpy_helper.from_array(
                        np.array(wide, np.int64), target)))
                    nodes.append(onnx.helper.make_node("Expand", [n.input[0], target], [name]))
                n.input[0] = name
                changed.update(o for o in n.output if o)
        nodes.append(n)
    return _replace_nodes(m2.graph, nodes, changed)


def _scalar_split_keepdims0(n, values: dict):
    """The known scalar ``split`` of SplitToSequence ``n`` with ``keepdims=0``, as an int; None where ``n`` is none such.
    onnxruntime honours ``keepdims=0`` with a scalar ``split`` (the spec ignores ``keepdims`` wherever ``split`` is
    given, as onnxruntime does for a 1-D one)."""
    if (n.op_type != "SplitToSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[1]
            or not any(a.name == "keepdims" and a.i == 0 for a in n.attribute)):
        return None
    v = values.get(n.input[1])
    return int(v) if v is not None and v.ndim == 0 and v.dtype.kind in "iu" else None


def _squeeze_all_of_empty_axes(g2, values: dict) -> bool:
    """Make each Squeeze of the inference copy ``g2`` whose ``axes`` are known and empty (an attribute of no value up
    to opset 12, an input of no element from 13; ``values``: the known ones) one without ``axes``, which squeezes every
    dimension of length 1, as onnxruntime's kernel does with them; True when any was. The declared shapes of what
    follows are dropped (``_forget_declared_after``).

    Why: ONNX's inference reads empty ``axes`` as "squeeze nothing" and kept ``[1, 3, 1]``, while onnxruntime makes
    ``[3]``: what followed was sized for the wrong rank (plus a ``[3, 1]``: planned ``[1, 3, 1]``, 12 bytes, and
    onnxruntime writes ``[3, 3]``, 36)."""
    changed: set[str] = set()
    for n in g2.node:
        if n.op_type != "Squeeze" or n.domain not in ("", "ai.onnx") or not n.output or not n.output[0]:
            continue
        empty_attr = [k for k, a in enumerate(n.attribute) if a.name == "axes" and not a.ints]
        if empty_attr:
            del n.attribute[empty_attr[0]]
            changed.add(n.output[0])
        elif len(n.input) > 1 and n.input[1] and n.input[1] in values and values[n.input[1]].size == 0:
            del n.input[1:]
            changed.add(n.output[0])
    if changed:
        _forget_declared_after(g2, changed)
    return bool(changed)


def _initializer_or_constant_values(onnx, g2, wanted: set[str]) -> dict:
    """``{name: numpy value}`` of the initializers and Constant outputs of ``g2`` named in ``wanted`` (small ones)."""
    values = {t.name: r[0] for t in g2.initializer if t.name in wanted and math.prod(t.dims) <= MAX_FOLD_ELEMENTS
              for r in [_to_array(t)] if r is not None}
    values.update((n.output[0], r[0]) for n in g2.node
                  if n.op_type == "Constant" and n.output and n.output[0] in wanted and len(n.attribute) == 1
                  and n.attribute[0].name == "value" for r in [_to_array(n.attribute[0].t)] if r is not None)
    return values


def _check_split_keepdims(n, where: str, shapes: dict, values: dict) -> None:
    """Refuse a SplitToSequence with ``keepdims=0`` and a scalar ``split`` whose value is not known, naming the node:
    onnxruntime drops the axis of its pieces, or refuses to run it, as the value decides (``_squeezed_split_pieces``
    sizes a known one), while ONNX's inference keeps the axis; what follows would be sized for another rank."""
    if (n.op_type != "SplitToSequence" or n.domain not in ("", "ai.onnx") or len(n.input) < 2 or not n.input[1]
            or not any(a.name == "keepdims" and a.i == 0 for a in n.attribute) or n.input[1] in values):
        return
    if shapes.get(n.input[1], (0, None))[1] == ():
        raise GraphError(f"{where}: its scalar split {n.input[1]!r} with keepdims=0 is not a value the importer knows: "
                         "onnxruntime drops the axis of pieces of length 1 (the spec ignores keepdims where a split is "
                         "given) and refuses longer ones, so neither the rank nor the size of its pieces can be "
                         "planned; give keepdims=1 or a 1-D split")


def _squeezed_split_pieces(onnx, m2, inferred) -> bool:
    """Make each SplitToSequence of the inference copy ``m2`` with ``keepdims=0`` and a known scalar ``split`` that
    cuts its input into pieces of length 1 read no ``split`` (pieces of length 1, the axis dropped: what onnxruntime
    makes of it); True when any did. Refuse, naming the node, one whose pieces are longer: onnxruntime drops the axis
    of every piece by a reshape, which fails for them.

    Why: ONNX's inference ignores ``keepdims`` where ``split`` is given and keeps the axis (``[3, 1]`` pieces of a
    ``[3, 4]`` split by 1 on axis 1), onnxruntime's kernel makes ``[3]``: what follows was sized for the wrong rank
    (an ``Add`` of a ``SequenceAt`` piece and a ``[3, 1]`` was planned ``[3, 1]``, 12 bytes, and onnxruntime writes
    ``[3, 3]``, 36); a split of 2 was planned, and onnxruntime refuses to run it."""
    if not any(n.op_type == "SplitToSequence" and len(n.input) > 1 and n.input[1] for n in m2.graph.node):
        return False
    values = _known_values(onnx, m2)
    shapes = _static_shapes(inferred)
    changed: set[str] = set()
    for n in m2.graph.node:
        step = _scalar_split_keepdims0(n, values)
        x = shapes.get(n.input[0]) if step is not None else None
        if x is None:
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        if not -len(x) <= axis < len(x) or step <= 0:
            continue   # (left to the inference and the checks, which refuse them)
        length = x[axis + len(x) if axis < 0 else axis]
        if length > 1 and step != 1:
            raise GraphError(f"node {n.name or n.op_type!r} (SplitToSequence): its scalar split {n.input[1]!r} of "
                             f"{step} with keepdims=0 cuts axis {axis} of its input {n.input[0]!r} ({list(x)}) into "
                             "pieces longer than 1, whose axis onnxruntime drops (the spec ignores keepdims where a "
                             "split is given): onnxruntime refuses to run it; give keepdims=1")
        del n.input[1:]
        changed.update(o for o in n.output if o)
    if changed:
        _forget_declared_after(m2.graph, changed)
    return bool(changed)


def _replace_nodes(g2, nodes: list, changed: set[str]) -> bool:
    """Put ``nodes`` in place of the nodes of inference copy ``g2`` where a rewrite changed values (``changed``), and
    forget what was declared of those values and of every value computed from them. Returns whether it did."""
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)
        _forget_declared_after(g2, changed)
    return bool(changed)


def _forget_declared_after(g2, changed: set[str]) -> None:
    """Drop, in the inference copy ``g2``, the declared shapes of ``changed`` values and of every value computed
    from them: a declaration made by ONNX's count (torch.onnx declares what ONNX's inference gives) would contradict
    the corrected shapes, and inference derives them again."""
    after = set(changed)
    for n in g2.node:
        if any(v in after for v in n.input):
            after.update(o for o in n.output if o)
    for vi in (*g2.value_info, *g2.output):
        if vi.name in after and vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")


def _initializer_values(onnx, g2) -> dict[str, Any]:
    """``{name: numpy value}`` of the initializers of ``g2`` small enough to fold (their data in the model)."""
    values: dict[str, Any] = {}
    for t in g2.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL and math.prod(t.dims) <= MAX_FOLD_ELEMENTS:
            r = _to_array(t)
            if r is not None:
                values[t.name] = r[0]
    return values


def _known_values(onnx, m2) -> dict[str, Any]:
    """``{name: numpy value}`` of what the folded ``m2`` knows: its small initializers and Constant outputs (the
    values folding computed stand as Constants in place of their nodes)."""
    values = _initializer_values(onnx, m2.graph)
    for n in m2.graph.node:
        if (n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output and n.output[0]
                and len(n.attribute) == 1 and n.attribute[0].name == "value"):
            r = _to_array(n.attribute[0].t)
            if r is not None and r[0].size <= MAX_FOLD_ELEMENTS:
                values[n.output[0]] = r[0]
    return values


def _check_spec_shape(n, where: str, shapes: dict, values: dict, seqs: dict) -> None:
    """A static shape the model declares for an output of standard node ``n`` that the spec's rule for its op
    (``_spec_shapes``) contradicts is refused, naming the node and the value; ``seqs`` follows the sequences
    (``_track_sequence``) from node to node. ``shapes``: ``_shapes``'s, ``values``: ``_known_values``'s.

    Why: where ONNX's inference is silent (GroupNormalization-21, MaxUnpool with ``output_shape``, a Concat-4 of a
    negative axis, SequenceAt and ConcatFromSequence of a sequence of unlike tensors), a declared shape was taken
    unchecked: a ``[2, 3, 8, 1]`` declared for a GroupNormalization of a ``[2, 3, 8, 8]`` was planned 192 bytes,
    and onnxruntime writes 1,536. (Slice-1 is ``_check_slice1``'s.)"""
    if (n.domain not in ("", "ai.onnx") or (n.op_type == "Slice" and len(n.input) == 1)
            or n.op_type not in SPEC_SHAPE_OPS):   # (nothing to check or track: it was a tenth of a 20,000-node chain's import)
        return
    static, elems = {}, {}
    for v in (*n.input, *n.output):
        elem, dims = shapes.get(v, (0, None))
        if v and elem > 0 and dims is not None and all(isinstance(d, int) for d in dims):
            static[v], elems[v] = tuple(dims), elem
    for o, (shape, _elem) in _spec_shapes(n, static, elems, values, seqs).items():
        if o in static and static[o] != shape:
            raise GraphError(f"{where}: value {o!r} is declared {list(static[o])} in the model, but {n.op_type} makes "
                             f"it {list(shape)} from its inputs (as onnxruntime writes it): a plan of the declared "
                             "size would not hold it; correct or remove the declaration")
    _track_sequence(n, static, elems, values, seqs, as_run=True)


def _check_range(n, where: str, values: dict) -> None:
    """Refuse a Range (standard or ``com.microsoft``) of known scalar inputs that onnxruntime refuses to run: a
    ``delta`` of 0, a float count ``ceil((limit - start) / delta)`` that is not finite (an infinite or NaN limit)
    or past int64's range (``Range(0, 1e30, 1e-30)``). ``values``: ``_known_values``'s.

    Why: ONNX's inference makes each of them an empty tensor, which was planned (0 bytes), while onnxruntime
    stops the run ("delta in Range operator can not be zero", "the computed number of elements is not a finite
    value", "... exceeds the supported range")."""
    import numpy as np

    if n.op_type != "Range" or n.domain not in ("", "ai.onnx", ORT_DOMAIN) or len(n.input) < 2:
        return
    names = list(n.input[:3])
    args = [values.get(v) if v else None for v in names]
    if len(args) < 3 or args[2] is None and not names[2] and n.domain == ORT_DOMAIN:
        args[2:] = [np.ones(1, args[0].dtype if args[0] is not None else np.int64)]   # (onnxruntime's default)
    if any(a is None or a.size != 1 or a.dtype.kind not in "iuf" for a in args):
        return
    start, limit, delta = (a.reshape(-1)[0] for a in args)
    if delta == 0:
        raise GraphError(f"{where}: its delta {names[2]!r} is 0: onnxruntime refuses to run it (\"delta in Range "
                         "operator can not be zero\")")
    if args[0].dtype.kind == "f":
        with np.errstate(all="ignore"):
            count = np.ceil((np.float64(limit) - np.float64(start)) / np.float64(delta))
        if not np.isfinite(count) or count >= 2.0**63:
            what = "is not finite" if not np.isfinite(count) else f"({count:.4g}) exceeds int64's range"
            raise GraphError(f"{where}: its count of elements ceil(({float(limit)!r} - {float(start)!r}) / "
                             f"{float(delta)!r}) {what}: onnxruntime refuses to run it")


def _check_seq_position(n, where: str, values: dict, seqs: dict) -> None:
    """Refuse a SequenceInsert or SequenceErase whose known position lies outside its known sequence (an insert
    may name one past the end), naming the node and the position.

    Why: SequenceInsert at 5 into a sequence of 1 tensor was planned (its tensors all alike, the insert was taken
    as an append), and a later SequenceAt was blamed where tensors differed; onnxruntime refuses to run the insert
    itself ("Invalid sequence index (5) specified for sequence of size (1)")."""
    k = 2 if n.op_type == "SequenceInsert" else 1
    if len(n.input) <= k or not n.input[k] or not n.input[0]:
        return
    held, known = seqs.get(n.input[0]), values.get(n.input[k])
    if held is None or known is None or known.dtype.kind not in "iu" or known.size != 1:
        return
    extra = 1 if n.op_type == "SequenceInsert" else 0
    if _position(known, len(held), extra) is None:
        raise GraphError(f"{where}: its position {n.input[k]!r} is {int(known.reshape(-1)[0])}, outside sequence "
                         f"{n.input[0]!r} of {len(held)} tensors (positions {-len(held)} to {len(held) - 1 + extra}): "
                         "onnxruntime refuses to run it (\"Invalid sequence index\")")


def _check_taken(n, where: str, shapes: dict, values: dict, seqs: dict, unknown_why: Callable[[str], str]) -> None:
    """Refuse a SequenceAt whose known position lies outside its known sequence, and a SequenceAt, Compress, NonZero
    or Unique whose output is left unsized, naming the node, the input that decides its size and why that input is not known
    (``unknown_why(output)``: computed at run time, held in external data not read, or beyond what is evaluated).

    Why: a SequenceAt at 7 of a 4-tensor sequence of like tensors was planned (onnxruntime refuses to run it:
    "Invalid sequence index"), one of unlike tensors was refused as a dimension "ONNX's shape inference could not
    derive"; a run-time position or condition got the general run-time note, naming neither input."""
    op = n.op_type
    if n.domain in ("", "ai.onnx") and op in ("NonZero", "Unique") and n.input and n.input[0]:
        what, counted = n.input[0], "non-zero entry" if op == "NonZero" else "distinct value (or slice)"
        for out in (o for o in n.output if o):
            dims = shapes.get(out, (0, None))[1]
            if dims is not None and all(isinstance(d, int) for d in dims):
                continue
            known, source = values.get(what), unknown_why(out)
            if known is None and source.startswith("is computed at run time"):
                return   # (the general message says so, as for every data-dependent size)
            why = (f"that input {source}" if known is None
                   else f"onnxruntime counts the scalar {what!r} otherwise than ONNX's inference ([1, n], not [0, n])"
                   if op == "NonZero" else f"{what!r} holds NaN, which onnxruntime's ordering merges with other values "
                   "(its count is not numpy's)")
            raise GraphError(f"{where}: value {out!r} has no size: {op} makes one entry per {counted} of its "
                             f"input {what!r}, and {why}")
        return
    if n.domain in ("", "ai.onnx") and op in ("SequenceInsert", "SequenceErase"):
        _check_seq_position(n, where, values, seqs)
        return
    if n.domain not in ("", "ai.onnx") or op not in ("SequenceAt", "Compress") or len(n.input) < 2:
        return
    out, what = (n.output[0] if n.output else ""), n.input[1]
    if not out or not what:
        return
    known = values.get(what)
    if op == "SequenceAt":
        held = seqs.get(n.input[0])
        if held is not None and known is not None and known.dtype.kind in "iu" and known.size == 1 \
                and _position(known, len(held), 0) is None:
            raise GraphError(f"{where}: its position {what!r} is {int(known.reshape(-1)[0])}, outside sequence "
                             f"{n.input[0]!r} of {len(held)} tensors (positions {-len(held)} to {len(held) - 1}): "
                             "onnxruntime refuses to run it (\"Invalid sequence index\")")
    dims = shapes.get(out, (0, None))[1]
    if known is not None or op != "Compress" and dims is not None and all(isinstance(d, int) for d in dims):
        return   # (sized, or unsized for another reason than this input: the general message)
    # (a Compress's size is its condition's count of true entries alone: a size the model declares for it, which
    # onnx's inference merely repeats, is a traced example's, and with the condition unread it is not checked)
    source = unknown_why(out)
    if op == "Compress":
        data = shapes.get(n.input[0], (0, None))[1]
        if data is None or not all(isinstance(d, int) for d in data):
            return   # (the data's own size is unknown: the general message names why)
        raise GraphError(f"{where}: value {out!r} has no size: Compress keeps one slice of {n.input[0]!r} per true "
                         f"entry of its condition {what!r}, and the condition {source}")
    held = seqs.get(n.input[0])
    if held is None or len({s for s, _ in held}) < 2:
        return   # (tensors not all known, or all alike: not the position's doing)
    shapes_held = f" ({', '.join(str(list(s)) for s, _ in held)})" if len(held) <= 8 else ""
    kind = "tensors of unlike shapes"
    raise GraphError(f"{where}: value {out!r} has no size: sequence {n.input[0]!r} holds {kind}{shapes_held}, "
                     f"so the size of the one SequenceAt takes follows its position {what!r}, and the position "
                     f"{source}")


def _fold_round(onnx, m2, inferred, seq_bytes: dict | None = None) -> bool:
    """Replace, in ``m2``, every foldable node by a Constant of its value; True when any was replaced.
    ``seq_bytes`` (cleared first) receives the bytes of each tensor of every sequence whose tensors are known."""
    import numpy as np
    from onnx import numpy_helper

    g2 = m2.graph
    shapes = _static_shapes(inferred)
    elems = {vi.name: vi.type.tensor_type.elem_type for vi in list(inferred.input) + list(inferred.value_info)
             + list(inferred.output) if vi.type.HasField("tensor_type")}
    elems.update((t.name, t.data_type) for t in g2.initializer)
    values = _initializer_values(onnx, g2)
    opsets = {o.domain or "": o.version for o in m2.opset_import}
    opsets.setdefault("", opsets.get("ai.onnx", 1))
    changed = False
    nodes = []
    seqs: dict[str, list] = {}   # sequence value -> [(shape, elem)] of the tensors it holds, in order
    filled: dict[str, tuple[tuple[int, ...], int]] = {}   # shapes the spec gave where ONNX's inference gave none
    taken = _value_names(g2) if any(n.op_type == "Range" for n in g2.node) else set()   # (for _exact_range)
    for n in g2.node:
        nodes.append(n)
        if n.domain == "ai.onnx.ml":   # sized by the spec's rule where ONNX's inference gives no shape
            for o, found in _ml_shapes(n, shapes, elems).items():
                if o not in shapes:
                    filled[o] = found
                    shapes[o], elems[o] = found
            continue
        if n.domain not in ("", "ai.onnx") or any(a.type in (5, 10) for a in n.attribute) or _external_attribute(onnx, n):
            continue   # (a tensor attribute whose data was not read: evaluating it would read it from the CWD)
        if n.op_type == "Slice" and _ort_slice_ends(n, values, opsets[""]) is not None:
            for o in n.output:   # (ends known only now: the next round gives it onnxruntime's, before it runs)
                shapes.pop(o, None)
            changed = True
            continue
        exact = _exact_range(onnx, n, values, g2, taken) if n.op_type == "Range" else None
        if exact is not None:   # (ONNX's inference would size it otherwise than onnxruntime)
            nodes[-1:] = exact[0]
            shapes[n.output[0]], elems[n.output[0]] = (exact[1],), exact[3]
            if exact[2] is not None:
                values[n.output[0]] = exact[2]
            changed = True
            continue
        own = None   # the outputs' shapes from this node's inputs alone (and their values, where folded)
        evaluated = n.op_type not in ("Constant", "Shape", "Size") and all(not v or v in values for v in n.input)
        if evaluated or any(o and o not in shapes for o in n.output):  # sized by the values folded this round
            own = _infer_node(onnx, n, shapes, elems, values, opsets[""])
            for o, found in _spec_shapes(n, shapes, elems, values, seqs).items():
                if o not in own:   # where ONNX's inference gives none, the spec's rule for this op
                    own[o] = found
                    if o not in shapes:
                        filled[o] = found
            for o, (shape, elem) in own.items():
                if o in shapes and shapes[o] != shape:   # a declared shape the values contradict
                    raise GraphError(f"value {o!r} has shape {shapes[o]} in the model, but its {n.op_type} "
                                     f"node makes it {shape} from its inputs")
                shapes[o], elems[o] = shape, elem
        _track_sequence(n, shapes, elems, values, seqs)
        if n.op_type in _NO_FOLD:
            continue
        if evaluated and not all(not o or o in own for o in n.output):
            continue  # run only once sized from its inputs: a declared [1, 1] must not run a folded [10**6] * 2
        # only values inference has sized, small: a ConstantOfShape of a folded [10**6, 10**6] is never run
        if not any(n.output) or not all(not o or o in shapes and math.prod(shapes[o]) <= MAX_FOLD_ELEMENTS
                                        for o in n.output):
            continue
        result = None
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            result = _to_array(n.attribute[0].t)  # cheap, and every round meets them again
        elif n.op_type in ("Shape", "Size"):
            if n.input and n.input[0] in shapes:
                result = _shape_of(n, shapes[n.input[0]])
        elif n.op_type == "SequenceLength" and n.domain in ("", "ai.onnx"):
            if n.input and n.input[0] in seqs:   # (a sequence whose tensors are followed: how many it holds)
                result = [np.array(len(seqs[n.input[0]]), dtype=np.int64)]
        elif n.op_type == "Slice" and n.domain in ("", "ai.onnx") and opsets[""] >= 10 and len(n.input) >= 3:
            if all(not v or v in values for v in n.input):   # (not onnx's evaluator: numpy's clamping, ``_ort_slice``)
                result = _ort_slice([values[v] if v else None for v in n.input])
        elif n.op_type == "Unique" and n.domain in ("", "ai.onnx"):
            if n.input and n.input[0] in values:   # (not onnx's evaluator: its sorted=0 is sorted, ``_ort_unique``)
                result = _ort_unique(n, values[n.input[0]])
        elif all(not v or v in values for v in n.input):
            result = _evaluate(n, [values[v] if v else None for v in n.input], opsets)
        if result is None or len(result) != len(n.output):
            continue
        if any(not isinstance(r, np.ndarray) or r.size > MAX_FOLD_ELEMENTS for r in result):
            continue
        if evaluated and any(o and r.shape != own[o][0] for o, r in zip(n.output, result)):
            continue  # the evaluator disagrees with ONNX's inference: its value would size what follows
        for o, r in zip(n.output, result):
            if o:
                values[o] = r
                shapes[o] = r.shape
        if n.op_type != "Constant":
            nodes.pop()  # the node's values, one Constant each, in its place
            if opsets[""] < 9 and any(r.dtype.kind not in "f" for o, r in zip(n.output, result) if o):
                # (a Constant holds floats only before opset 9, and onnx's inference refused the int64 one made of a
                # folded Shape: "output has unsupported type tensor(int64)"; an initializer holds any type)
                for o, r in zip(n.output, result):
                    if o:   # (declared too: inference types no initializer, and the value's size is read from it)
                        g2.initializer.append(numpy_helper.from_array(r, o))
                        g2.value_info.append(onnx.helper.make_tensor_value_info(
                            o, onnx.helper.np_dtype_to_tensor_dtype(r.dtype), list(r.shape)))
            else:
                nodes.extend(onnx.helper.make_node("Constant", [], [o], value=numpy_helper.from_array(r, o))
                             for o, r in zip(n.output, result) if o)
            changed = True
    if seq_bytes is not None:
        seq_bytes.clear()
        seq_bytes.update((v, [_nbytes(_BITS[e], shape) for shape, e in held]) for v, held in seqs.items()
                         if all(e in _BITS for _, e in held))
    if changed:
        del g2.node[:]
        g2.node.extend(nodes)
    if filled:   # declared to the next inference, which sizes what follows from them
        declared = {vi.name: vi for vi in list(g2.output) + list(g2.value_info)}
        for o, (shape, elem) in filled.items():
            tp = onnx.helper.make_tensor_type_proto(elem, shape)
            if o in declared:
                declared[o].type.CopyFrom(tp)
            else:
                g2.value_info.append(onnx.helper.make_value_info(o, tp))
    return changed or bool(filled)


#: standard ops whose first output has the shape and dtype of their first input, in every opset: where ONNX
#: gives it no shape (GroupNormalization-21, a context-dependent function without an inference function; the
#: opset-1..5 versions of the activations, which had none), the input's is the output's, as the spec says
SAME_SHAPE_OPS = frozenset({
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BatchNormalization", "BitwiseNot", "Ceil", "Celu",
    "Clip", "Cos", "Cosh", "CumSum", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "GroupNormalization",
    "Hardmax", "HardSigmoid", "HardSwish", "InstanceNormalization", "LayerNormalization", "LeakyRelu", "Log",
    "LogSoftmax", "LpNormalization", "LRN", "MeanVarianceNormalization", "Mish", "Neg", "Not", "PRelu",
    "Reciprocal", "Relu", "ReverseSequence", "RMSNormalization", "Round", "Scatter", "ScatterElements", "ScatterND",
    "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh",
    "ThresholdedRelu", "Trilu"})
#: the ops ``_check_spec_shape`` has anything to do for: those ``_spec_shapes`` sizes, and the sequence ops
#: ``_track_sequence`` follows (SequenceAt and ConcatFromSequence read what they hold)
SPEC_SHAPE_OPS = SAME_SHAPE_OPS | {"Slice", "Concat", "MaxUnpool", "Pad", "Range", "Compress", "NonZero", "Unique", "SequenceAt", "ConcatFromSequence",
                                   "GatherND", "Attention",
                                   "SequenceEmpty", "SequenceConstruct", "Identity", "Optional", "OptionalGetElement",
                                   "SequenceInsert", "SequenceErase", "SplitToSequence"}


def _spec_shapes(n, shapes: dict, elems: dict, values: dict, seqs: dict) -> dict:
    """``{output: (static shape, elem type)}`` of standard node ``n`` by the spec's own rule, for the ops whose
    outputs ONNX's inference leaves unsized although what sizes them is known: ``SAME_SHAPE_OPS``; MaxUnpool
    with an ``output_shape`` input of known value (its inference checks that input and returns); a
    float16/bfloat16 or int16 Range of known values (onnx computes lengths for the other types only); a Slice-1
    (``_slice1_shape``: ONNX's inference gives up on negative axes and clamped bounds); SequenceAt and
    ConcatFromSequence over a sequence whose tensors are known (``seqs``: ONNX merges its elements into one
    shape, so a dimension they differ in, and the count of them, is lost). Empty when nothing applies."""
    import numpy as np

    op, ins = n.op_type, list(n.input)
    first = ins[0] if ins and ins[0] in shapes and elems.get(ins[0]) else None
    out = n.output[0] if n.output else ""
    if not out:
        return {}

    def value(k: int):
        v = values.get(ins[k]) if k < len(ins) and ins[k] else None
        return None if v is None or v.dtype.kind not in "iu" else v

    if op == "PRelu" and first and len(ins) == 2 and ins[1] in shapes and _broadcast(
            [shapes[first], shapes[ins[1]]]) != shapes[first]:
        return {}   # (a slope that grows X, from opset 7 on: _prelu_broadcasts sizes it as onnxruntime does)
    if op == "BatchNormalization" and first and len(shapes[first]) >= 2 and len(n.output) > 1 \
            and all(n.output[1:]) and next((a.i for a in n.attribute if a.name == "spatial"), 1) == 1:
        # Y as its input; every other output (running or saved mean and variance, opsets 7-13's five outputs
        # included, which ONNX's inference leaves unsized) one value per channel, of the mean's type. (Not where
        # an output in between is omitted: onnxruntime 1.32 exits the process running such a node.)
        stats = elems.get(ins[3]) if len(ins) > 3 and ins[3] else None
        found = {out: (shapes[first], elems[first])}
        found.update((o, ((shapes[first][1],), stats or elems[first])) for o in n.output[1:5] if o)
        return found
    if op in SAME_SHAPE_OPS and first:
        return {out: (shapes[first], elems[first])}
    if op == "Slice" and first and len(ins) == 1:
        return _slice1_shape(n, out, shapes[first], elems[first])
    if op == "Concat" and ins and all(v in shapes and elems.get(v) for v in ins):
        return _concat_shape(n, out, [shapes[v] for v in ins], elems[ins[0]])
    if op == "MaxUnpool" and first:
        target = value(2)
        if target is not None and target.ndim == 1 and len(target) == len(shapes[first]) and (target >= 0).all():
            return {out: (tuple(int(d) for d in target), elems[first])}
    if op == "Range" and (len(ins) != 3 or any(v in values and np.asarray(values[v]).size != 1 for v in ins)):
        return {}   # (a start, limit or delta of other than one element: onnxruntime refuses it, "should be scalar
        #            like tensor"; the rules below took its first element, or failed in numpy broadcasting)
    if op == "Range" and len(ins) == 3 and all(v in values for v in ins) and elems.get(ins[0]) in (10, 16):
        # Range-27's function body: the length in float32 arithmetic, max(ceil((limit - start) / delta), 0)
        start, limit, delta = (np.float32(np.asarray(values[v]).astype(np.float32).reshape(-1)[0]) for v in ins)
        with np.errstate(all="ignore"):
            count = np.ceil((limit - start) / delta)
        if np.isfinite(count):
            return {out: ((max(int(count), 0),), elems[ins[0]])}
    if op == "Range" and len(ins) == 3 and elems.get(ins[0]) == 5 and all(value(k) is not None for k in range(3)):
        # int16: onnxruntime's kernel, ceil((limit - start) / delta) of exact (promoted) integers; onnx's inference
        # computes no length for this type (an int16 Range of constants was refused as unsized)
        start, limit, delta = (int(np.asarray(value(k)).reshape(-1)[0]) for k in range(3))
        if delta:
            return {out: ((max(-((start - limit) // delta), 0),), 5)}
    if op == "GatherND" and first and len(ins) > 1 and ins[1] in shapes:
        # ``indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]``: ONNX's inference sets no shape where
        # that is a scalar (indices ``[2]`` into a ``[2, 3]``), and the output was refused as of no known rank
        data, idx = shapes[first], shapes[ins[1]]
        b = next((a.i for a in n.attribute if a.name == "batch_dims"), 0)
        if idx and 0 <= b < len(idx) and b + idx[-1] <= len(data):
            return {out: (tuple(idx[:-1]) + tuple(data[b + idx[-1]:]), elems[first])}
    if op == "Attention" and len(ins) > 2 and len(n.output) > 2 and (len(ins) < 5 or not ins[4]):
        return _attention_presents(n, shapes, elems)
    if op == "Compress" and first and len(ins) > 1 and ins[1] in values:
        return _compress_shape(n, out, shapes[first], elems[first], values[ins[1]])
    if op in ("NonZero", "Unique") and first and ins[0] in values:
        return _nonzero_unique(n, shapes[first], elems[first], values[ins[0]])
    if op in ("NonZero", "Unique") and first and 0 in shapes[first]:
        # an empty input holds no value, so its count (0) is known whatever feeds it: onnxruntime runs it (NonZero
        # ``[rank, 0]``, Unique's four outputs of no entry), and it was refused as depending on run-time values
        return _nonzero_unique(n, shapes[first], elems[first], np.zeros(shapes[first], np.float32))
    if op == "Pad" and first and shapes[first]:
        amounts = _pad_amounts(n, len(shapes[first]), values, 11 if len(ins) > 1 else 1)
        if amounts is not None and all(d + b + a >= 0 for d, (b, a) in zip(shapes[first], amounts)):
            # each axis ``dim + before + after`` where ONNX's inference gives up (Pad-18 of empty ``pads`` and
            # ``axes``: onnxruntime returns the input's shape; it was refused as "could not derive")
            return {out: (tuple(d + b + a for d, (b, a) in zip(shapes[first], amounts)), elems[first])}
    held = seqs.get(ins[0]) if ins else None
    if held is None:
        return {}
    if op == "SequenceAt":
        at = _position(value(1), len(held), 0)
        if at is not None:
            return {out: held[at]}
    if op == "ConcatFromSequence" and held and len({e for _, e in held}) == 1:
        attrs = {a.name: a.i for a in n.attribute}
        axis, new_axis, rank = attrs.get("axis", 0), attrs.get("new_axis", 0), len(held[0][0])
        if new_axis and len({s for s, _ in held}) == 1 and -rank - 1 <= axis <= rank:
            axis += rank + 1 if axis < 0 else 0
            return {out: (held[0][0][:axis] + (len(held),) + held[0][0][axis:], held[0][1])}
        if not new_axis and -rank <= axis < rank and all(len(s) == rank for s, _ in held):
            axis += rank if axis < 0 else 0
            rest = {s[:axis] + s[axis + 1:] for s, _ in held}
            if len(rest) == 1:
                shape = held[0][0]
                return {out: (shape[:axis] + (sum(s[axis] for s, _ in held),) + shape[axis + 1:], held[0][1])}
        _refuse_unlike_concat(n, [s for s, _ in held], attrs.get("axis", 0), new_axis)
    return {}


def _attention_presents(n, shapes: dict, elems: dict) -> dict:
    """``{present_key / present_value: (shape, elem)}`` of an Attention-23 ``n`` without a past cache: its K and V
    as ``[batch, kv_heads, kv_sequence, head_size]`` (a 3-D ``[batch, kv_sequence, kv_heads * head_size]`` one split
    by ``kv_num_heads``), as onnxruntime writes them. ONNX's inference sizes the presents only from a past, and a
    model returning them without one was refused as of no known rank."""
    kv = next((a.i for a in n.attribute if a.name == "kv_num_heads"), 0)
    found = {}
    for k in (1, 2):
        o, s = n.output[k], shapes.get(n.input[k])
        if not o or s is None or not elems.get(n.input[k]):
            continue
        if len(s) == 4:
            found[o] = (tuple(s), elems[n.input[k]])
        elif len(s) == 3 and kv > 0 and s[2] % kv == 0:
            found[o] = ((s[0], kv, s[1], s[2] // kv), elems[n.input[k]])
    return found


def _refuse_unlike_concat(n, shapes: list[tuple[int, ...]], axis: int, new_axis: int) -> None:
    """GraphError naming a ConcatFromSequence whose sequence's known tensors cannot be joined at ``axis`` (shapes
    that differ off it, or at all with ``new_axis``; ranks that differ; an axis out of range), as onnxruntime refuses
    to run it. Why: the value was left unsized and refused as a dimension "ONNX's inference could not derive",
    which blamed onnx's inference for a model no runtime runs (``SplitToSequence`` of 5 by 2, then concatenated on
    the other axis)."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        why = "of different ranks"
    elif not (-rank - 1 <= axis <= rank if new_axis else -rank <= axis < rank):
        why = f"of rank {rank}, out of range of axis {axis}"
    else:
        why = "that differ" + ("" if new_axis else f" off axis {axis}")
    raise GraphError(f"node {n.name or n.op_type!r} (ConcatFromSequence): its sequence holds tensors of shapes "
                     f"{[list(s) for s in shapes]}, {why} (new_axis={new_axis}): onnxruntime refuses to concatenate "
                     "them")


def _slice1_shape(n, out: str, shape: tuple[int, ...], elem: int) -> dict:
    """``{out: (shape, elem)}`` of a Slice-1 (``starts``/``ends``/``axes`` attributes) of a ``shape`` input, by
    the rule onnxruntime runs it with: a negative axis counts from the end, a negative start or end from the end
    of its dimension, and both are then clamped to the dimension. ONNX's inference of Slice-1 gives up on a
    negative axis, and on a start or end it has to clamp (``starts=[-100]``), although nothing of either depends
    on what the inputs hold. Empty where the attributes are invalid (different lengths, an axis out of range or
    repeated): left unsized, as onnxruntime refuses them."""
    attrs = {a.name: list(a.ints) for a in n.attribute}
    starts, ends = attrs.get("starts"), attrs.get("ends")
    rank = len(shape)
    axes = attrs.get("axes", list(range(len(starts or ()))))
    if starts is None or ends is None or not len(starts) == len(ends) == len(axes):
        return {}
    axes = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        return {}
    dims = list(shape)
    for a, start, end in zip(axes, starts, ends):
        d = shape[a]
        start, end = (min(max(v + d if v < 0 else v, 0), d) for v in (start, end))
        dims[a] = max(end - start, 0)
    return {out: (tuple(dims), elem)}


def _concat_shape(n, out: str, shapes: list[tuple[int, ...]], elem: int) -> dict:
    """``{out: (shape, elem)}`` of a Concat of inputs of ``shapes``, a negative ``axis`` counted from the end, as
    onnxruntime runs every version of it. ONNX's inference of Concat-4 (opsets 4-10) gives up on a negative axis
    (allowed from Concat-11), which torch.onnx writes at those opsets too (``torch.roll``, ``unfold``, ``split``
    then ``cat`` on dim -1): every value after it was refused as unknown. Empty where the inputs do not agree
    off the axis or the axis is out of range (onnxruntime refuses those)."""
    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    rank = len(shapes[0])
    if axis is None or not -rank <= axis < rank or any(len(s) != rank for s in shapes):
        return {}
    axis += rank if axis < 0 else 0
    if len({s[:axis] + s[axis + 1:] for s in shapes}) != 1:
        return {}
    return {out: (shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:], elem)}


#: ``ai.onnx.ml`` ops whose output has its input's shape, where ONNX's inference gives none: op -> the output's
#: elem type (None: the input's), the input ranks the runtime takes (None: any). Normalizer and Scaler always
#: return float (their spec's ``tensor(float)``), whatever they read; Normalizer takes [C] or [N, C] only
_ML_SAME_SHAPE = {"Normalizer": (1, (1, 2)), "Scaler": (1, None), "Imputer": (None, None)}


def _ml_shapes(n, shapes: dict, elems: dict) -> dict:
    """``{output: (static shape, elem type)}`` of ``ai.onnx.ml`` node ``n`` by its spec's rule, for the ops
    ONNX's shape inference leaves unsized (Normalizer, Scaler, Imputer, LinearRegressor, SVMRegressor,
    SVMClassifier, FeatureVectorizer: none of them has an inference function; ArrayFeatureExtractor of a vector or with a
    scalar index). Each rule was checked against onnxruntime's outputs: a regressor or feature vector of a
    1-D input ``[C]`` is one row, ``[1, ...]``, as is ArrayFeatureExtractor's of a vector. Empty where no rule
    applies (the value is then refused as unsized)."""
    ins = list(n.input)
    out = n.output[0] if n.output else ""
    if not out or not ins or ins[0] not in shapes or not elems.get(ins[0]):
        return {}
    shape, elem = shapes[ins[0]], elems[ins[0]]
    attrs = {a.name: a for a in n.attribute}
    rows = (1,) if len(shape) == 1 else shape[:1]   # a regressor's examples: [C] is one, [N, C] N
    op = n.op_type
    if op in _ML_SAME_SHAPE:
        out_elem, ranks = _ML_SAME_SHAPE[op]
        if ranks is None or len(shape) in ranks:
            return {out: (shape, out_elem or elem)}
    elif op in ("LinearRegressor", "SVMRegressor") and len(shape) in (1, 2):
        targets = attrs["targets"].i if op == "LinearRegressor" and "targets" in attrs else 1
        if targets >= 1:
            return {out: (rows + (targets,), 1)}
    elif op == "SVMClassifier" and len(shape) in (1, 2) and len(n.output) >= 2 and n.output[1]:
        # onnxruntime's kernel: labels [N] (strings where it has string labels, else int64); scores [N, classes],
        # except an SVM of support vectors without probabilities (prob_a), which writes one score per pair of
        # classes (classes * (classes - 1) / 2), or 2 for two classes or one: its post_transform changes no size
        strings = len(attrs["classlabels_strings"].strings) if "classlabels_strings" in attrs else 0
        classes = strings or (len(attrs["classlabels_ints"].ints) if "classlabels_ints" in attrs else 0)
        vectors = sum(attrs["vectors_per_class"].ints) if "vectors_per_class" in attrs else 0
        probabilities = "prob_a" in attrs and len(attrs["prob_a"].floats) > 0
        if classes >= 1:
            width = classes if vectors <= 0 or probabilities else max(classes * (classes - 1) // 2, 2)
            return {out: (rows, 8 if strings else 7), n.output[1]: (rows + (width,), 1)}
    elif op == "FeatureVectorizer":
        widths = list(attrs["inputdimensions"].ints) if "inputdimensions" in attrs else []
        sized = [shapes.get(v) for v in ins]
        if (len(widths) == len(ins) and all(w >= 0 for w in widths) and None not in sized
                and all(len(s) >= 1 for s in sized)
                and len({(1,) if len(s) == 1 else s[:1] for s in sized}) == 1):
            return {out: (rows + (sum(widths),), 1)}
    elif op == "ArrayFeatureExtractor" and len(shape) >= 1 and len(ins) > 1 and ins[1] in shapes:
        return {out: (((1,) if len(shape) == 1 else shape[:-1]) + (math.prod(shapes[ins[1]]),), elem)}
    return {}


def _position(v, length: int, extra: int) -> int | None:
    """The place in a sequence of ``length`` tensors that the integer position value ``v`` names (``extra``: 1
    where one past the end is allowed, as SequenceInsert allows), counted from 0, or None where ``v`` is unknown,
    not one number, or outside. Why: a position of shape ``[1]``, which onnxruntime takes as the number it holds,
    was read by ``int()`` of a 1-d array, which numpy refuses (a TypeError out of the import)."""
    if v is None or v.size != 1:
        return None
    k = int(v.reshape(-1)[0])
    return k + (length if k < 0 else 0) if -length <= k < length + extra else None


def _nonzero_unique(n, shape: tuple[int, ...], elem: int, value) -> dict:
    """``{output: (shape, elem)}`` of a NonZero or Unique of the known ``value`` (of ``shape``), as onnxruntime makes
    them: NonZero ``[rank, count of non-zero entries]`` int64; Unique's ``Y`` of one entry (or, along ``axis``, one
    slice) per distinct value, ``indices`` and ``counts`` as many, ``inverse_indices`` one per entry (per slice).
    Empty where onnxruntime's count is not numpy's: a scalar NonZero (onnxruntime makes it ``[1, n]``, ONNX's
    inference ``[0, n]``), a Unique of a NaN (onnxruntime's ordering merges NaNs with other values).

    Why: both were taken as data-dependent whatever their input, so one of a constant (an initializer, a folded
    ``Shape``) was refused as depending on "values computed at run time from what the graph inputs hold", which
    none of it does; onnxruntime writes the same size on every run."""
    import numpy as np

    a = np.asarray(value)
    if a.shape != tuple(shape):
        return {}
    outs = list(n.output)
    if n.op_type == "NonZero":
        return {outs[0]: ((a.ndim, int(np.count_nonzero(a))), 7)} if a.ndim and outs[0] else {}
    if a.dtype.kind == "f" and np.isnan(a).any() or a.dtype.kind in "OSUV":
        return {}
    axis = next((at.i for at in n.attribute if at.name == "axis"), None)
    if axis is None:
        distinct, per = len(set(a.reshape(-1).tolist())), a.size
        y = (distinct,)
    else:
        if not -a.ndim <= axis < a.ndim:
            return {}
        axis += a.ndim if axis < 0 else 0
        # (the slice's length spelled out: ``-1`` cannot be inferred where ``a`` is empty, a ValueError out of import)
        slices = np.moveaxis(a, axis, 0).reshape(a.shape[axis], a.size // a.shape[axis] if a.shape[axis] else 0)
        distinct, per = len({tuple(row) for row in slices.tolist()}), a.shape[axis]
        y = a.shape[:axis] + (distinct,) + a.shape[axis + 1:]
    found = [(y, elem), ((distinct,), 7), ((per,), 7), ((distinct,), 7)]
    return {o: f for o, f in zip(outs, found) if o}


def _compress_shape(n, out: str, shape: tuple[int, ...], elem: int, condition) -> dict:
    """``{out: (shape, elem)}`` of a Compress of a ``shape`` input by the known ``condition``, as onnxruntime makes
    it: along ``axis``, or over the flattened input without one, it keeps a slice for each true entry among the
    condition's first ``shape[axis]`` (it reads the condition flattened, and no further than the input goes).
    Empty where the axis is outside the input's rank (left to the checks that refuse it).

    Why: Compress was taken as data-dependent whatever its condition, so one of a constant mask (an initializer
    or a Constant ``[True, False, True, True]``) was refused as depending on "values computed at run time from
    what the graph inputs hold", which none of it does; onnxruntime writes the same size on every run."""
    import numpy as np

    axis = next((a.i for a in n.attribute if a.name == "axis"), None)
    keep = np.asarray(condition).reshape(-1).astype(bool)
    if axis is None:
        return {out: ((int(np.count_nonzero(keep[:math.prod(shape)])),), elem)}
    if not -len(shape) <= axis < len(shape):
        return {}
    axis += len(shape) if axis < 0 else 0
    kept = int(np.count_nonzero(keep[:shape[axis]]))
    return {out: (shape[:axis] + (kept,) + shape[axis + 1:], elem)}


def _track_sequence(n, shapes: dict, elems: dict, values: dict, seqs: dict, as_run: bool = False) -> None:
    """Record in ``seqs`` the tensors (shape, elem type) the sequence node ``n`` makes, in order, where all of
    them are known: so that SequenceAt and ConcatFromSequence of it are sized (``_spec_shapes``). ``as_run``: ``n`` is
    the model's own node, not the inference copy's (where ``_squeezed_split_pieces`` rewrites a SplitToSequence of a
    scalar split and keepdims=0, which ONNX sizes otherwise until it has)."""
    op, ins = n.op_type, [v for v in n.input]
    out = n.output[0] if n.output else ""
    if not out:
        return

    def tensor(v: str):
        return (shapes[v], elems[v]) if v in shapes and elems.get(v) else None

    def position(k: int, length: int, extra: int):
        if k >= len(ins) or not ins[k]:
            return length - 1 + extra
        v = values.get(ins[k])
        return _position(None if v is None or v.dtype.kind not in "iu" else v, length, extra)

    held = None
    if op == "SequenceEmpty":
        held = []
    elif op == "SequenceConstruct":
        items = [tensor(v) for v in ins]
        held = None if None in items else items
    elif op in ("Identity", "Optional", "OptionalGetElement") and ins and ins[0] in seqs:
        held = list(seqs[ins[0]])
    elif op == "SequenceInsert" and len(ins) >= 2 and ins[0] in seqs and tensor(ins[1]):
        at = position(2, len(seqs[ins[0]]), 1)
        if at is None and all(t == tensor(ins[1]) for t in seqs[ins[0]]):
            at = len(seqs[ins[0]])   # (a position not known, where every tensor is alike, changes nothing)
        if at is not None:
            held = list(seqs[ins[0]])
            held.insert(at, tensor(ins[1]))
    elif op == "SequenceErase" and ins and ins[0] in seqs and seqs[ins[0]]:
        at = position(1, len(seqs[ins[0]]), 0)
        if at is None and len(set(seqs[ins[0]])) == 1:
            at = 0
        if at is not None:
            held = list(seqs[ins[0]])
            del held[at]
    elif op == "SplitToSequence" and ins and tensor(ins[0]):
        held = _split_pieces(n, *tensor(ins[0]), values.get(ins[1]) if len(ins) > 1 and ins[1] else None,
                             len(ins) > 1 and bool(ins[1]), as_run)
    if held is not None:
        seqs[out] = held


def _split_pieces(n, shape: tuple[int, ...], elem: int, split, given: bool, as_run: bool = False):
    """The tensors SplitToSequence makes of a ``shape`` tensor: ``split`` (its value; None when ``given``
    but unknown) a scalar chunk length (the last chunk shorter) or 1-D lengths; absent, pieces of length 1,
    the axis dropped unless ``keepdims``. None when unknown or invalid."""
    attrs = {a.name: a.i for a in n.attribute}
    axis, keepdims, rank = attrs.get("axis", 0), attrs.get("keepdims", 1), len(shape)
    if not -rank <= axis < rank or (given and (split is None or split.dtype.kind not in "iu")):
        return None
    axis += rank if axis < 0 else 0
    length = shape[axis]
    if not given:
        piece = shape[:axis] + ((1,) if keepdims else ()) + shape[axis + 1:]
        return [(piece, elem)] * length
    if split.ndim == 0:
        step = int(split)
        if step <= 0:
            return None
        lengths = [min(step, length - i) for i in range(0, length, step)]
        if not keepdims:   # (onnxruntime drops the axis of pieces of length 1 and refuses longer ones, where ONNX
            # keeps it: _squeezed_split_pieces makes the inference copy's node one of no split; until it has, unknown)
            if not as_run or any(d != 1 for d in lengths):
                return None
            return [(shape[:axis] + shape[axis + 1:], elem)] * len(lengths)
    elif split.ndim == 1 and (split >= 0).all() and int(split.sum()) == length:
        lengths = [int(d) for d in split]
    else:
        return None
    return [(shape[:axis] + (d,) + shape[axis + 1:], elem) for d in lengths]


def _infer_node(onnx, n, shapes: dict, elems: dict, values: dict, opset: int) -> dict:
    """``{output: (static shape, elem type)}`` as ONNX infers them for node ``n`` alone, from its inputs'
    shapes and folded values: so a round sizes the values after a folded Reshape shape, and folds the
    Shape of them, instead of leaving each to the next round (a round per block of Swin: 27 for swin_b);
    and a node is run only at the size its inputs give it. Empty when an input is not sized or the op has
    no schema; the next full inference checks."""
    from onnx import numpy_helper

    ins = [v for v in n.input if v]
    found: dict[str, tuple[tuple[int, ...], int]] = {}
    if not all(v in shapes and v in elems for v in ins):
        return found
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, "")
        types = {v: onnx.helper.make_tensor_type_proto(elems[v], shapes[v]) for v in ins}
        data = {v: numpy_helper.from_array(values[v], v) for v in ins if v in values}
        out = onnx.shape_inference.infer_node_outputs(schema, n, types, data)
    except Exception:  # noqa: BLE001 - no schema, an exotic dtype, an inconsistent node: left to inference
        return found
    for o, tp in out.items():
        if o and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape"):
            dims = tp.tensor_type.shape.dim
            if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
                found[o] = (tuple(d.dim_value for d in dims), tp.tensor_type.elem_type)
    return found


def _to_array(t):
    """``[numpy value]`` of a TensorProto, or None when numpy cannot hold it (bad data, exotic dtype) or its data
    is in an external file (onnx's loader would read it relative to the working directory)."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        return None
    try:
        return [numpy_helper.to_array(t)]
    except Exception:  # noqa: BLE001 - not folded: left to shape inference
        return None


def _shape_of(n, shape: tuple[int, ...]):
    """The value of a Shape (with opset 15's ``start``/``end``) or Size node, from the static shape."""
    import numpy as np

    if n.op_type == "Size":
        return [np.array(math.prod(shape), dtype=np.int64)]
    attrs = {a.name: a.i for a in n.attribute}
    r = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    return [np.array(shape[start:end], dtype=np.int64)]


def _ort_slice(inputs: list) -> list | None:
    """The output of a Slice (10 and later) of the known ``inputs`` (data, starts, ends, axes, steps; None for one
    omitted) as onnxruntime computes it, or None where onnxruntime refuses it (a step of 0, an axis twice or out of
    range) or an input is not what the op takes.

    Why: onnx's reference evaluator slices with numpy, which clamps a start before the first index to "nothing"
    for a negative step (``x[-9::-2]`` of 4 entries is empty) where ONNX's rule and onnxruntime clamp it to index 0
    (one entry); the evaluator's value then disagreed with inference, was not folded, and a ``ConstantOfShape`` of
    ``Slice(Shape(x), [-9], [INT_MAX], steps=[-2])`` was refused as a dimension ONNX "could not derive"."""
    import numpy as np

    data, starts, ends = (np.asarray(v) if v is not None else None for v in inputs[:3])
    axes = inputs[3] if len(inputs) > 3 else None
    steps = inputs[4] if len(inputs) > 4 else None
    if data is None or starts is None or ends is None or starts.ndim != 1 or starts.shape != ends.shape:
        return None
    k = len(starts)
    axes = np.arange(k) if axes is None else np.asarray(axes)
    steps = np.ones(k, np.int64) if steps is None else np.asarray(steps)
    if axes.shape != (k,) or steps.shape != (k,) or any(a.dtype.kind not in "iu" for a in (starts, ends, axes, steps)):
        return None
    index = [slice(None)] * data.ndim
    seen = set()
    for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        axis += data.ndim if axis < 0 else 0
        if not 0 <= axis < data.ndim or axis in seen or step == 0:
            return None
        seen.add(axis)
        dim = data.shape[axis]
        start += dim if start < 0 else 0
        if end in SLICE_END_ALL:   # ("to the end of the dimension", whatever the step's sign: _ort_slice_ends)
            end = dim if step > 0 else -1
        else:
            end += dim if end < 0 else 0
            end = min(max(end, -1 if step < 0 else 0), dim)
        start = min(max(start, 0), dim - 1 if step < 0 else dim)
        index[axis] = slice(start, None if end < 0 else end, step)
    return [data[tuple(index)]]


def _ort_unique(n, x) -> list | None:
    """The outputs of the Unique node ``n`` of the known ``x`` as onnxruntime writes them (``Y``, ``indices``,
    ``inverse_indices``, ``counts``, as many as ``n`` names), or None where onnxruntime's order is not numpy's
    (a NaN: ``_nonzero_unique``) or ``x`` is no numeric tensor.

    Why: onnx's reference evaluator ignores ``sorted=0`` for a Unique of one output (it returns numpy's sorted
    values, where onnxruntime keeps the order of first occurrence) and takes the slices of its other outputs along
    axis 0 whatever ``axis`` is: ``Gather(Unique(c, sorted=0), 0)`` of ``[5, 1, 5, 3]`` folded to 1 where
    onnxruntime makes 5, so a ``ConstantOfShape`` of it was planned 4 bytes and written 20."""
    import numpy as np

    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.dtype.kind == "f" and bool(np.isnan(x).any()):
        return None
    attrs = {a.name: a.i for a in n.attribute if a.name in ("axis", "sorted")}
    axis = attrs.get("axis")
    if axis is not None and not -x.ndim <= axis < x.ndim:
        return None
    ax = 0 if axis is None else axis % x.ndim
    try:
        y, idx, inv, cnt = np.unique(x.reshape(-1) if axis is None else x, return_index=True, return_inverse=True,
                                     return_counts=True, axis=None if axis is None else ax)
    except (ValueError, TypeError):  # (numpy refuses some empty inputs along an axis: left unfolded)
        return None
    inv = inv.reshape(-1)
    if not attrs.get("sorted", 1):   # (onnxruntime's order: each value where it first occurs)
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y, idx, cnt, inv = np.take(y, order, axis=ax), idx[order], cnt[order], rank[inv]
    found = [y, idx.astype(np.int64), inv.astype(np.int64), cnt.astype(np.int64)]
    return found[:len(n.output)]


def _evaluate(n, inputs: list, opsets: dict[str, int]):
    """The outputs of node ``n`` on ``inputs`` (None for an omitted optional input), or None when the
    reference evaluator cannot run it.

    The node is run inside a one-node model that imports the model's ``opsets``: onnx's evaluator ignores
    ``opsets`` for a bare NodeProto and runs every op at the newest opset, so an old model's Unsqueeze-11
    (``axes`` an attribute) failed as Unsqueeze-13 and its shape computation was never folded (every
    tensor after it refused as unknown), and an op whose meaning changed would have been run by the wrong
    version's rules."""
    import warnings

    import numpy as np
    from onnx import TypeProto, helper
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # a division by zero is its value's business
            warnings.simplefilter("ignore")
            ins = [v for v in dict.fromkeys(n.input) if v]
            graph = helper.make_graph([n], "fold", [helper.make_value_info(v, TypeProto()) for v in ins],
                                      [helper.make_value_info(o, TypeProto()) for o in n.output if o])
            imports = {**opsets, "ai.onnx": opsets[""]}   # (a node may name the default domain either way)
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in imports.items()])
            ev = ReferenceEvaluator(model)
            feeds = {v: x for v, x in zip(n.input, inputs) if v}
            return list(ev.run(None, feeds))
    except Exception:  # noqa: BLE001 - an op the evaluator lacks or refuses: left to shape inference
        return None


def _shapes(g, inferred) -> dict[str, tuple[int, tuple | None]]:
    """value name -> (elem_type, dims) where dims hold ints, or dim_param strings / "" when unknown."""
    out: dict[str, tuple[int, tuple | None]] = {}
    for vi in list(inferred.value_info) + list(inferred.output) + list(inferred.input):
        if not vi.type.HasField("tensor_type"):
            kind = vi.type.WhichOneof("value")
            if kind:
                out[vi.name] = (-1, kind.removesuffix("_type"))  # a sequence, map or optional
            continue
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim)
        elem, had = out.get(vi.name, (0, None))
        if isinstance(had, tuple) and (shape is None or len(shape) == len(had)):
            # declared twice (a graph output typed without a shape, value_info with one): what the two say
            # together, not the last one alone (``_check_declarations`` refused two that disagree)
            shape = had if shape is None else tuple(a if isinstance(a, int) else b for a, b in zip(shape, had))
        out[vi.name] = (tt.elem_type or elem, shape)
    for t in g.initializer:
        out[t.name] = (t.data_type, tuple(t.dims))
    for st in g.sparse_initializer:
        out[st.values.name] = (st.values.data_type, tuple(st.dims))
    for n in g.node:  # Dropout's optional mask has the data's shape (old opsets: no inferred shape)
        if n.op_type == "Dropout" and len(n.output) > 1 and n.output[1] and n.input and n.input[0] in out:
            elem, shape = out.get(n.output[1], (0, None))
            if shape is None or not all(isinstance(d, int) for d in shape):
                out[n.output[1]] = (elem or 9, out[n.input[0]][1])  # bool unless typed otherwise
    for n in g.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    out[n.output[0]] = (a.t.data_type, tuple(a.t.dims))
    return out


# -- cost ---------------------------------------------------------------------------------------------

def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _flops(n, in_shapes: list[tuple], out_shapes: list[tuple]) -> float:
    """A FLOP estimate: 2*M*N*K for matrix products and convolutions, one per element otherwise."""
    op = n.op_type
    out = _numel(out_shapes[0]) if out_shapes else 0
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul") and in_shapes and in_shapes[0]:
        return 2.0 * out * in_shapes[0][-1]
    if op == "Gemm" and in_shapes and len(in_shapes[0]) == 2:
        trans_a = any(x.name == "transA" and x.i for x in n.attribute)
        return 2.0 * out * in_shapes[0][0 if trans_a else 1]
    if op in ("Conv", "ConvInteger", "QLinearConv") and len(in_shapes) >= 2:
        w = in_shapes[1] if op != "QLinearConv" else in_shapes[3] if len(in_shapes) > 3 else in_shapes[1]
        return 2.0 * out * _numel(w[1:])
    if op == "ConvTranspose" and len(in_shapes) >= 2:
        return 2.0 * _numel(in_shapes[0]) * _numel(in_shapes[1][1:])
    return float(max([out] + [_numel(s) for s in in_shapes]))
