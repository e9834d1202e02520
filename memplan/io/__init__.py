"""Reading and writing files: graph and plan JSON, atomically, within documented limits.

Outputs are written to a temporary file in the destination directory and renamed over the target
(``memplan.files``), so a failed or interrupted run never leaves a half-written or stale-looking file
behind. Inputs are read only from regular files within the limits of docs/format.md ("Limits"), so a
hostile file gives a one-line error naming it, never a traceback or a hang.
"""

from __future__ import annotations

import json
import math
import os  # (also: tests patch os.replace through here; the writer lives in memplan.files)
from typing import Any

from .._gc import paused
from ..errors import GraphError, MemplanError, PlanFormatError, UnsafePlan, named_options, short_repr
from ..files import (
    MAX_FILE_BYTES,
    MAX_JSON_DEPTH,
    atomic_write_bytes,
    atomic_write_text,
    is_stdout_file,
    json_depth,
    markup_hint,
    not_utf8,
    path_text,
    read_text_input,
    text_trouble,
)
from ..graph import Graph, check_graph, graph_from_doc
from ..planfile import Plan, json_text, json_trouble, json_writable, key_trouble, plan_from_dict

__all__ = ["MAX_FILE_BYTES", "MAX_JSON_DEPTH", "atomic_write_bytes", "atomic_write_text", "json_depth",
           "load_graph", "load_plan", "read_json", "save_graph", "save_plan"]



@paused
def read_json(path: str, error: type[MemplanError]) -> Any:
    """Parse a JSON file within the documented limits (docs/format.md "Limits"), or raise ``error``
    naming the file: a regular file of at most ``MAX_FILE_BYTES``, nested at most ``MAX_JSON_DEPTH``
    deep, without ``NaN``/``Infinity`` (not JSON), numbers beyond a double's range (``1e400``: Python reads it
    as infinity, which no writer writes back), integers too long to parse, or a key repeated in one object
    (JSON leaves its meaning open: Python keeps the last value, other readers the first)."""
    data = read_text_input(path, error, explain=_model_kind)
    if not data or data.isspace():   # (it was "not valid JSON (Expecting value at line 1 column 1)"; no copy)
        shell = " (stdout is redirected to it: the shell emptied it before memplan ran)" if is_stdout_file(path) else ""
        raise error(f"{path}: empty file, not JSON{shell}")
    why = text_trouble(data)
    if why:
        raise error(f"{path}: {_model_kind(path, data) or why}")
    if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise error(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {_model_kind(path, data) or not_utf8(data, exc)}") from None
    del data  # the text alone while parsing: a large file is not held twice more
    if text.startswith("\ufeff"):  # refused as the CSV reader does; json said "decode using utf-8-sig"
        raise error(f"{path}: starts with a byte-order mark (U+FEFF); save it as UTF-8 without one")
    numbers = _Numbers()
    try:
        doc = json.loads(text, parse_constant=numbers.constant, parse_float=numbers.parse,
                         object_pairs_hook=numbers.unique_keys)
    except json.JSONDecodeError as exc:
        model = _model_kind(path, text[:1].encode("utf-8")) if exc.pos == 0 else None
        why = f"not valid JSON ({_decode_message(exc)}){_csv_hint(text)}{markup_hint(text, 'JSON')}"
        raise error(f"{path}: {model or why}") from None
    except _DuplicateKey as exc:
        raise error(f"{path}: {exc.args[0]}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        raise error(f"{path}: a number has too many digits (integers must lie below 2**63)") from None
    found = numbers.where(doc) if numbers.seen else None
    if found is not None:   # in a top-level field (an object without an id), or the document is an array
        raise error(f"{path}: {_problem_message(*found)}")
    return doc


#: the suffix that makes a zip a torch.export archive by its name alone (``torch.export.save``'s ``.pt2``). Not
#: ``.pt``: torch.save's checkpoints are zips of that name as often (a ``.pt`` or ``.ep`` is one by its directory)
_EXPORT_SUFFIX = ".pt2"
#: the most bytes of a zip's central directory read to find an ``archive_format`` entry (about 20,000 entries of
#: torch.export's names). Why: listing costs ~25 us and ~600 bytes of memory an entry, and a 1 GiB input may hold
#: 13 million: 300,000 took 7 s and 200 MB, for a hint; a larger directory keeps the plain zip message
MAX_ZIP_DIRECTORY = 2 << 20


def _model_kind(path: str, data: bytes) -> str | None:
    """What to say where a JSON input that is no JSON is a model ``memplan import`` reads: an ONNX model (a
    protobuf: named ``.onnx``, or its first byte 0x08, the tag of ``ModelProto.ir_version``, which starts no text)
    or a torch.export archive (a zip named ``.pt2`` or with an ``archive_format`` entry in its directory). ``data``:
    the file's first bytes. Called only once the input failed as JSON at its first byte, so a JSON file named
    ``.onnx``, broken or not, is judged as JSON. Why: ``memplan plan model.onnx`` was "not
    valid JSON (Expecting value at line 1 column 1)" and a ``.pt2`` "a zip archive, not text (extract the file from
    it first)", advice that leads nowhere: the command that reads either is ``memplan import``."""
    low = path.lower()
    if data.startswith(b"PK\x03\x04"):
        if not low.endswith(_EXPORT_SUFFIX) and not _lists_archive_format(path):
            return None
        kind = "a torch.export archive"
    elif low.endswith(".onnx") and data[:4096].lstrip()[:1] not in (b"{", b"[", b""):
        # (a protobuf never starts as JSON does: ``{``, ``[`` and white space are no ModelProto field's tag; a JSON
        # file named .onnx whose trouble is a byte past its start, 0xff or a NUL, was called an ONNX model)
        kind = "an ONNX model (protobuf)"
    elif data[:1] == b"\x08":   # (``memplan import`` takes an ONNX model by its name's suffix)
        return ("an ONNX model (protobuf), by its first byte, not JSON: named *.onnx, 'memplan import MODEL.onnx "
                "-o graph.json' makes graph JSON of it")
    else:
        return None
    import shlex

    # (the hint is a command to paste: a path with a space or a quote was split by the shell or broke it)
    return f"{kind}, not JSON: 'memplan import {shlex.quote(path)} -o graph.json' makes graph JSON of it"


def _lists_archive_format(path: str) -> bool:
    """Whether the zip at ``path`` has an ``archive_format`` entry (torch.export.save's mark), its directory read
    only where it is a regular file once opened (without blocking: the input was checked one, but a FIFO swapped in
    since was waited on for good) and its directory at most ``MAX_ZIP_DIRECTORY`` bytes (by its end record, which
    zipfile reads the same way, zip64's too); False where it cannot tell."""
    import stat
    import zipfile

    from ..files import open_input

    end_record = getattr(zipfile, "_EndRecData", None)   # (zipfile's own reader of the sizes it then reads by)
    try:
        with open_input(path) as f:
            if end_record is None or not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return False
            end = end_record(f)
            if not end or not 0 <= end[zipfile._ECD_SIZE] <= MAX_ZIP_DIRECTORY:
                return False
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError, IndexError,
            TypeError):
        return False
    return any(n == "archive_format" or n.endswith("/archive_format") for n in names)


def _csv_hint(text: str) -> str:
    """What to add where a JSON input is a minimalloc CSV problem (its first line a header naming ``id`` and
    ``size``): which command reads it. Why: ``memplan plan problem.csv`` was "not valid JSON (Expecting value at line
    1 column 1)" alone, where a graph and a plan given for each other are named so."""
    head = {c.strip().lower() for c in text[:4096].split("\n", 1)[0].split(",")}
    if {"id", "size"} <= head:
        return "; this looks like a minimalloc CSV problem (id,lower,upper,size), which 'memplan csv' solves"
    return ""


def _decode_message(exc: json.JSONDecodeError) -> str:
    """The parser's complaint with its line and column. CPython's text for a raw control character in a string is
    "Invalid control character at", its position given apart, which read "... at at line 3 column 18" naming no
    character: the character is named (escaped, as a terminal cannot show it) and how JSON writes one."""
    where = f"at line {exc.lineno} column {exc.colno}"
    if exc.msg.startswith("Invalid control character") and 0 <= exc.pos < len(exc.doc):
        c = exc.doc[exc.pos]
        return f"invalid control character {ascii(c)} in a string {where}; JSON writes it escaped: \\u{ord(c):04x}"
    return f"{exc.msg.removesuffix(' at')} {where}"


class _DuplicateKey(ValueError):
    pass


def _repeated_key(pairs: list[tuple[str, Any]], d: dict[str, Any]) -> str | None:
    """The first key ``pairs`` repeat (``d`` is their dict), or None."""
    if len(d) == len(pairs):
        return None
    seen: set[str] = set()
    return next(k for k, _ in pairs if k in seen or seen.add(k))


class _Repeated:
    """A key repeated in an object that names nothing itself (a tensor's ``attrs``, a plan's ``solver`` block), held
    until an object around it that has an ``id`` is complete and can be named, as an ``_OutOfRange`` is."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _repeated_message(key: str, at: str = "", of: str = "") -> str:
    """The message for ``key`` repeated in the object at the subscripts ``at`` (of an object ``of``)."""
    return f"key {short_repr(key)} appears twice in one object{' at ' + at if at else ''}{of} (a repeated key is ambiguous)"


def _of(d: dict[str, Any]) -> str:
    """`` of 'ID'`` for an object with a string ``id`` (a tensor, a node), `` of order entry 'NODE'`` for a
    plan's order entry, `` of event 'A'->'B'`` for an event, else nothing: a repeated ``stream`` in a plan
    of thousands of order entries is otherwise found only by reading the file."""
    eid = d.get("id")
    if isinstance(eid, str):
        return f" of {short_repr(eid)}"
    node = d.get("node")
    if isinstance(node, str):
        return f" of order entry {short_repr(node)}"
    after, before = d.get("after"), d.get("before")
    if isinstance(after, str) and isinstance(before, str):
        return f" of event {short_repr(after)}->{short_repr(before)}"
    return ""


_DOUBLE_RANGE = "JSON numbers are read as doubles, finite up to about 1.8e308"


class _OutOfRange:
    """A number literal past a double's range (``1e400``), held in its text until the object holding it is
    complete and can be named: ``float`` made it ``inf``, which passed every reader of a free-form field
    (``attrs``, a plan's ``solver`` block or extra fields) and was then refused when the file was written
    back (``--graph-out`` after a whole multi-device plan), naming no input."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Constant(_OutOfRange):
    """``NaN``, ``Infinity`` or ``-Infinity`` (Python's json reads them, JSON has none), held and named as an
    ``_OutOfRange`` is. Why: the file was refused as "not valid JSON (NaN is not a JSON number)", naming no field: in
    a plan of 100,000 tensors the user was left to search for it."""

    __slots__ = ()


class _Numbers:
    """The number and object hooks of one ``read_json`` call. ``parse`` reads a fraction or exponent as a float, or
    as an ``_OutOfRange`` beyond a double; ``unique_keys`` makes each object's dict, and a key it repeats is refused at
    once where the object names itself (``_of``: a tensor, a node, an order entry, an event), else held as a
    ``_Repeated``. Once either was seen it finds where: an object holding one (in a field, an array or an object
    within) is refused when it has an ``id``, named with the keys down to it; an object without one is remembered
    for the object around it, and the document's top level is looked at once parsed (``where``). Why a repeated key
    too: one inside a tensor's ``attrs`` of a graph of 100,000 tensors was "key 's' appears twice in one object",
    naming neither the tensor nor the field, where an out-of-range number there names both."""

    def __init__(self) -> None:
        self.seen = False
        # id() of an object holding one -> (its subscripts, the number's text or the repeated key)
        self.held: dict[int, tuple[str, _OutOfRange | _Repeated]] = {}

    def constant(self, text: str) -> _Constant:
        self.seen = True
        return _Constant(text)

    def parse(self, text: str) -> float | _OutOfRange:
        v = float(text)
        if math.isfinite(v):
            return v
        self.seen = True
        return _OutOfRange(text)

    def unique_keys(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) == len(pairs) and not self.seen:   # (every object of a sound file: one test, no call)
            return d
        repeated = _repeated_key(pairs, d)
        if repeated is not None:
            if _of(d):
                raise _DuplicateKey(_repeated_message(repeated, "", _of(d)))
            self.seen = True
            self.held[id(d)] = ("", _Repeated(repeated))
            return d
        if self.seen:
            for key, value in pairs:
                found = self.where(value)
                if found is not None:
                    at, problem = f"[{short_repr(key)}]{found[0]}", found[1]
                    if _of(d):   # (a tensor or node by its id, an order entry, an event)
                        raise _DuplicateKey(_problem_message(at, problem, _of(d)))
                    self.held[id(d)] = (at, problem)
                    break
        return d

    def where(self, value: Any) -> tuple[str, _OutOfRange | _Repeated] | None:
        """(the subscripts from ``value`` down to an out-of-range number or an object repeating a key in it, that
        number or key), or None. Arrays are walked (their indices are left out); an object was looked at, and
        remembered, by its own hook."""
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, _OutOfRange):
                return "", v
            if isinstance(v, dict):
                if id(v) in self.held:
                    return self.held[id(v)]
            elif isinstance(v, list):
                stack.extend(reversed(v))
        return None


def _problem_message(at: str, problem: _OutOfRange | _Repeated, of: str = "") -> str:
    """The message for what ``_Numbers`` found at the subscripts ``at`` (of an object ``of``)."""
    if isinstance(problem, _Repeated):
        return _repeated_message(problem.key, at, of)
    if isinstance(problem, _Constant):
        return f"not valid JSON ({'key ' + at + of + ': ' if at else ''}{problem.text} is not a JSON number)"
    return _out_of_range_message(at, problem.text, of)


def _out_of_range_message(at: str, text: str, of: str = "") -> str:
    """The message for the number ``text`` past a double's range at the subscripts ``at`` (of an object ``of``)."""
    number = text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"   # (a file's worth)
    return f"{'key ' + at + of + ': ' if at else ''}the number {number} is beyond the range of a double ({_DOUBLE_RANGE})"


def _path(path, error) -> str:
    """A file path (str or os.PathLike); an int would be taken for a file descriptor."""
    p = path_text(path)
    if p is None:   # (a bool, an int, a PathLike whose ``__fspath__`` gives neither str nor bytes)
        raise error(f"expected a file path, not {type(path).__name__} {short_repr(path, 40)}")
    if not isinstance(p, str):   # a PathLike of bytes: every message below joins it to text
        raise error(f"expected a file path as text, not {type(p).__name__} {short_repr(p, 40)}")
    return p


@named_options
@paused   # (the document and the graph both: a deferred collection after it walks the graph alone)
def load_graph(path: str) -> Graph:
    """Read and validate a ``memplan.graph/1`` file (docs/format.md): the file is anyone's input, so every
    reader limit applies and a ``GraphError`` names the file and the bad field, node or tensor."""
    path = _path(path, GraphError)
    doc = read_json(path, GraphError)
    # (read_json's document is this call's alone; every message starts with ``path: ``: a test of
    # ``startswith(path)`` here took a file named ``n`` for named in "node 'r' reads unknown tensor 'x'")
    return graph_from_doc(doc, source=path, owned=True)


@named_options
def save_graph(graph: Graph, path: str) -> None:
    """Write ``graph`` as ``memplan.graph/1`` JSON, atomically: a graph whose ``attrs`` ``load_graph`` could
    not read back (NaN, numpy scalars, sets) is refused naming the entry, so every saved file loads."""
    atomic_write_text(path, graph_text(graph, "save_graph"))


def graph_text(graph: Graph, caller: str = "graph_text") -> str:
    """The text ``save_graph`` writes for ``graph`` (its last line ended), or ``GraphError`` naming the entry
    whose ``attrs`` ``load_graph`` could not read back. Why apart: ``memplan example`` compares it with a file
    already there before writing over it."""
    check_graph(graph, caller)
    doc = graph.to_dict()
    text = json_text(doc)
    # free-form attrs from code: NaN, a numpy scalar, a set, nested too deep, a key written twice (``key_trouble``)
    if text is None or any(key_trouble(e["attrs"]) for part in ("tensors", "nodes") for e in doc[part] if "attrs" in e):
        raise GraphError(f"{_unwritable(doc)}: attrs are not JSON that load_graph reads back ({json_trouble(doc)})")
    return text + "\n"


def _unwritable(doc: dict[str, Any]) -> str:
    """The first tensor or node of a graph document that ``json`` cannot write (without NaN), named."""
    for key, what in (("tensors", "tensor"), ("nodes", "node")):
        for e in doc[key]:
            if not json_writable(e, depth=2):   # (inside the document and its list)
                return f"{what} {e['id']!r}"
    return f"graph {doc['name']!r}"


@named_options
@paused
def load_plan(path: str) -> Plan:
    """Read a ``memplan.plan/1`` file, refusing a malformed one (``PlanFormatError``). Its safety is not
    judged here: a plan belongs to a graph, so ``verify(graph, plan)`` does that."""
    path = _path(path, PlanFormatError)
    return plan_from_dict(read_json(path, PlanFormatError), source=path)


@named_options
def load_safe_pair(graph_path: str, plan_path: str, *, fused_groups: bool = False) -> tuple[Graph, Plan]:
    """A graph and a plan made for it that ``verify`` proves safe, for every command that shows, draws
    or simulates a plan: a plan for another graph is ``PlanMismatch`` (``check_plan_for``), an unsafe one
    ``UnsafePlan`` (a picture or a simulation of an unsafe plan would mislead). ``fused_groups``: see
    ``verify``."""
    from ..planfile import check_plan_for
    from ..verify import verify

    graph, plan = load_graph(graph_path), load_plan(plan_path)
    try:
        check_plan_for(graph, plan)
        verify(graph, plan, fused_groups=fused_groups)
    except UnsafePlan as exc:   # the command's one line names the file it refuses
        raise exc.at(str(plan_path)) from None
    return graph, plan


@named_options
def save_plan(plan: Plan, path: str, *, timings: bool = False) -> None:
    """Write ``plan`` as ``memplan.plan/1`` JSON, atomically (``Plan.save``). Without ``timings`` the solver
    block leaves out wall-clock seconds, so the same graph and options give byte-identical files."""
    if not isinstance(plan, Plan):
        raise PlanFormatError(f"save_plan needs a memplan Plan (not a Graph or a dict: plan_from_dict reads one), "
                              f"not {type(plan).__name__}")
    plan.save(path, timings=timings)
