"""Reading an ONNX file and its external data without trusting either.

Why: a model names files for its tensors' data (``location``); a hostile one names ``../../etc/shadow``, a fifo, a
path too long for the file system or more bytes than the file holds. Every location is checked against the model's
folder before anything is read, and each problem is a ``DataProblem`` naming the tensor.
"""

from __future__ import annotations

import enum
import os
import posixpath
import re
from dataclasses import dataclass

from ...errors import GraphError, InputFormatError
from ...files import check_opened, check_readable, input_errors, json_model_hint, open_input, read_limited
from .common import _DECIMAL, _function_name, _need_onnx
from .protoscan import NESTING_LIMIT, nesting_depth, top_level_trouble

#: an ONNX file holds at most 2 GiB (protobuf's limit; larger weights live in external data files)
MAX_ONNX_BYTES = 1 << 31


def _format_of(onnx, path: str) -> str:
    """The serialization format of model file ``path`` from its extension, as ``onnx.load(path)`` infers it (a
    text-format model still loads), "protobuf" where the extension names none. Why not
    ``onnx.serialization.registry`` alone: onnx 1.14 (which ``memplan[onnx]`` allows) has no ``onnx.serialization``
    and reads protobuf only, and every import there was an AttributeError traceback (round 60)."""
    registry = getattr(getattr(onnx, "serialization", None), "registry", None)
    if registry is None:
        return "protobuf"
    return registry.get_format_from_file_extension(os.path.splitext(str(path))[1]) or "protobuf"


def load_model(path: str):
    """Read an ONNX file without its external weight data (only dims and dtypes are needed).

    Only a regular, non-empty file of at most ``MAX_ONNX_BYTES`` that holds a model with a graph is
    accepted: protobuf parses an empty file (and much else) as an empty model, which is no model."""
    onnx = _need_onnx()
    fmt = _format_of(onnx, path)
    # (read here, checked on the open file, then parsed: ``onnx.load(path)`` opened the path again after the check,
    # so a model swapped for a FIFO in between blocked that open for ever, and ``/dev/zero`` was read without end;
    # a binary model's top-level fields are walked first, so a 2 GB file that is none is not read whole: protoscan)
    size = check_readable(path, InputFormatError, MAX_ONNX_BYTES)
    with input_errors(path, InputFormatError), open_input(path) as f:
        check_opened(f, path, InputFormatError, MAX_ONNX_BYTES)
        why = top_level_trouble(f, size) if fmt == "protobuf" else None
        if why:
            f.seek(0)
            raise InputFormatError(f"{path}: not a readable ONNX model ({why}){json_model_hint(f.read(4096) or b'')}")
        f.seek(0)
        data = read_limited(f, path, InputFormatError, MAX_ONNX_BYTES)
    if not data:
        raise InputFormatError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load_from_string(data, fmt)
    except Exception as exc:  # DecodeError, OSError: the file is not an ONNX model
        depth = nesting_depth(data) if fmt == "protobuf" else 0
        if depth > NESTING_LIMIT:   # (round 71: said as a corrupt file's "Error parsing message")
            raise InputFormatError(f"{path}: not a readable ONNX model: its subgraphs (If / Loop / Scan bodies in "
                                   f"one another) nest its messages over {NESTING_LIMIT} deep, past what protobuf "
                                   "parses (onnxruntime refuses it too: \"Protobuf parsing failed\")") from None
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
    """The first ``offset`` / ``length`` entry of external tensor ``t`` that is no byte count, or None.

    A byte count as onnxruntime parses it: ASCII digits alone (no sign, no space around them), an offset of at most
    2**63 - 1 (a signed 64-bit integer), a length of at most 2**64 - 1. Why exactly: onnxruntime refuses to load a
    model whose entry it cannot parse ("Failed to parse value"), whatever the file holds, and an offset of ``" 0"``,
    ``"0\n"`` or 2**63 was planned (round 73; ``"+0"`` and ``"-4"`` were refused)."""
    for e in t.external_data:
        if e.key in ("offset", "length") and (not _DECIMAL.fullmatch(e.value) or e.value.startswith("-")
                                              or int(e.value) > _COUNT_LIMIT[e.key]):
            return DataProblem(Reason.NO_BYTE_COUNT, location, e.key, e.value)
    return None


#: the largest ``offset`` / ``length`` onnxruntime parses (its types: ``ptrdiff_t``, ``size_t``)
_COUNT_LIMIT = {"offset": 2**63 - 1, "length": 2**64 - 1}


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

    NUL = ("its data file {location!r} is no file name (it holds a NUL character; onnxruntime cuts the name there "
           "and reads {detail!r})", False)   # (round 76: onnxruntime was said to refuse it; it runs the model)
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
        return DataProblem(Reason.NUL, location, detail=location.split("\0", 1)[0])
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
