"""Reading a saved ``.pt2`` (``load_exported``): the archive checked, torch's cache kept out of the way.

Why: a saved program is an input file like any other: it may name several programs, another torch file, ranges that
contradict themselves or a cache folder that cannot be written. Each case is refused by name before planning.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import importlib
import logging
import math
import os
import pickle
import re
import sys
import tempfile
import threading
from typing import Any

from ..._forklocks import fork_safe
from ..._warnblock import warnings_caught
from ...errors import InputFormatError, MemplanError
from ...errors import short_repr as _short
from ...files import check_opened, check_readable, open_input
from .. import first_line
from ..pt2_archive import check_archive
from .common import TRANSFORMERS_CACHES, _need_torch, transformers_cache_registered
from .untrusted import (
    _UNREGISTERED,
    _check_guards_code,
    _held_by,
    _HeldErrors,
    _no_code_from,
    _pickled_code,
    _PickledCode,
    _unloadable_type,
)


def load_exported(path: str):
    """An ExportedProgram saved with ``torch.export.save`` (a ``.pt2`` file): a regular file of any size
    (a FIFO would block the reader), checked before torch is needed. Given to torch as an open file, not a
    path: torch reads a path only if it ends in ``.pt2`` (``.PT2`` or another name logged a warning on a quiet
    stderr, which torch says will become an error), and the file opened is the one that was checked. Both
    ``torch.export`` and the deserializer's own logger (``torch._export.serde.serialize``, which torch gives a
    stderr handler of its own) are held: a program with a runtime
    check on a tensor's values (transformers' ``torch_compilable_check``, ``torch._check_tensor_all``) loads with
    "Symbol u0 did not appear in the graph that was deserialized" logged at warning level, a line of torch's
    internals on the quiet CLI's stderr for every such model (D-FINE, DEIMv2)."""
    check_readable(path, InputFormatError, 1 << 62)
    try:
        f = open_input(path)   # (a FIFO put in its place: no wait)
    except OSError as exc:
        raise InputFormatError(f"{path}: {exc.strerror or exc}") from None
    try:
        # (AOTInductor code, member paths, sizes, CRCs: before torch reads any of it, and before torch is imported:
        # importing it took ~630 MB, so a 50 GB sparse file of zeros peaked at 664 MB RSS before it was refused)
        check_opened(f, path, InputFormatError, 1 << 62)
        check_archive(f, path)
        torch = _need_torch()
        _archive_reader()
    except BaseException:
        f.close()
        raise
    caches = _known_libraries(torch, f)
    held = _HeldErrors()
    try:
        with _LOADS, _held_by(logging.getLogger("torch.export"), held), \
                _held_by(logging.getLogger("torch._export.serde.serialize"), held, logging.WARNING), f, \
                _no_code_from(path), return_types_named(torch), _cache_examples_read(torch, caches):
            ep = torch.export.load(f)
        if caches:
            _cache_examples_rebuilt(torch, ep, path)
        _check_record_layouts(path)
        _check_guards_code(torch, ep, path)
        return ep
    except (_PickledCode, InputFormatError) as exc:
        raise InputFormatError(str(exc)) from None
    except Exception as exc:
        refused = _refusal_within(exc) or _refusal_within(held.exc)
        if refused is not None:   # (ours, wrapped by torch's deserializer: "failed deserializing node ...")
            raise InputFormatError(str(refused)) from None
        # (torch's "ValueRangeError: Invalid ranges [10:3]", or "RuntimeError: numel: integer multiplication
        # overflow" from a record, logged as held.last)
        inverted = _inverted_range(path) or _bad_tensor_record(path) or _dangling_read(path) or _schema_misfit(path)
        if inverted:
            raise InputFormatError(f"{path}: {inverted}") from None
        why = f"{type(exc).__name__}: {first_line(exc)}"
        if isinstance(exc, pickle.UnpicklingError) or isinstance(exc.__cause__, pickle.UnpicklingError):
            raise InputFormatError(_pickled_code(path, "an object torch's weights-only unpickler refuses" +
                                                 _refused_global(str(exc)))) from None
        if "warnings above" in str(exc):   # torch's own message points at a log this CLI keeps quiet
            why = held.last or _unfinished(path) or \
                "no exported program in the archive (a zip file torch.export.save did not write)"
        text = _STRING_OUTPUT.search(why)
        if text:
            raise InputFormatError(f"{path}: the program returns a Python string ({text[1]!r}) among its outputs, "
                                   "which torch.export.save writes but torch.export.load cannot read back: export a "
                                   "forward that returns tensors (and numbers) only, the string kept apart") from None
        unloadable = _UNREGISTERED.search(why)
        if unloadable:
            raise InputFormatError(_unloadable_type(path, unloadable[1])) from None
        # (torch's C++ reader prefixes its messages with where it failed: "[enforce fail at inline_container.cc:180] .")
        why = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", why)
        if caches and (_raised_in(exc, _EXAMPLE_CHECKS) or _raised_in(held.exc, _EXAMPLE_CHECKS)):
            raise InputFormatError(f"{path}: the example inputs saved with the program (its sample inputs, which hold "
                                   f"a KV cache) do not fit its input structure ({why}): a corrupted or edited "
                                   "archive") from None
        other = _other_release(torch, path, why) or _unknown_constant(torch, path, why)
        if other:
            raise InputFormatError(f"{path}: {other}") from None
        elsewhere = _device_elsewhere(path, why)
        if elsewhere:
            raise InputFormatError(f"{path}: {elsewhere}") from None
        if why.startswith("SpecViolationError"):   # (torch's verifier: it read a program, one that breaks its rules)
            raise InputFormatError(f"{path}: the program breaks torch.export's rules ({why}): a corrupted or edited "
                                   "program, export and save it again") from None
        kind = _other_torch_file(path) if "archive_format" in why else None
        if kind:
            raise InputFormatError(f"{path}: {kind}, not a torch.export program (which memplan import reads: export "
                                   "the model with torch.export.export and save it with torch.export.save)") from None
        missing = _MISSING_MEMBER.search(why)
        if missing and _programs_named(path):
            raise InputFormatError(f"{path}: the archive holds an exported program but not its member "
                                   f"{missing[1]!r}, which torch's reader needs to load it (a weight, constant or the "
                                   "sample inputs: an incomplete or edited .pt2; save it again)") from None
        others = _programs_named(path) if isinstance(exc, KeyError) else []
        if others and "model" not in others:
            raise InputFormatError(f"{path}: a .pt2 archive of exported program(s) {', '.join(map(repr, others))}, none "
                                   "named 'model', the one torch.export.save writes and torch.export.load reads: "
                                   "save the program to import with torch.export.save") from None
        raise InputFormatError(f"{path}: not a torch.export program ({why})") from None


#: the class torch's weights-only unpickler names where it refuses one ("Unsupported global: GLOBAL a.b.C was not ...")
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")


def _refused_global(message: str) -> str:
    """Words naming the class a weights-only unpickling ``message`` refused, for the refusal; "" where it names none.
    Why: a decode step exported with ``past_key_values`` saves its example ``DynamicCache`` pickled among the sample
    inputs, and the refusal said "an object" without saying which, or where it came from."""
    found = _REFUSED_GLOBAL.search(message)
    if found is None:
        return ""
    name = found[1].rstrip(".")
    if name.startswith("transformers.") and name.endswith("Cache"):
        return (f" ({name}: the KV cache given as past_key_values when it was exported, saved pickled among its example "
                "inputs)")
    return f" ({name})"


#: op namespaces that installed libraries register on import, and the module that registers them: a program saved from
#: such a library's model names its ops (``torch.ops.transformers.grouped_mm_fallback``: every Mixtral, Qwen2-MoE... of
#: transformers 5 on CPU) and loads only where they are registered. A fixed table: a file chooses no package to import
_OP_LIBRARIES = {"transformers": "transformers.integrations.moe",
                 "transformers_msa": "transformers.integrations.msa_attention"}
_OP_NAMESPACE = re.compile(r'"torch\.ops\.([A-Za-z_][A-Za-z0-9_]*)\.')
#: the packages whose classes a saved input or output structure may name (its pytree type, ``transformers.
#: modeling_outputs.BaseModelOutputWithPoolingAndCrossAttentions``: a model called with ``return_dict=True``), whose
#: module is imported so that the class registers itself (transformers' ``ModelOutput`` subclasses do as they are made)
_TYPE_PACKAGES = ("transformers",)
_TYPE_NAME = re.compile(r'\\?"type\\?": \\?"((?:' + "|".join(_TYPE_PACKAGES) +
                        r')(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\.([A-Za-z_][A-Za-z0-9_]*)\\?"')
#: at most this many modules are imported for one file
_MAX_LIBRARY_MODULES = 16


def _known_libraries(torch: Any, f: Any) -> frozenset[str]:
    """Import, where installed, the module of each ``_OP_LIBRARIES`` namespace the program of ``f`` names, and the module
    of each ``_TYPE_PACKAGES`` class its input or output structure names that torch's pytree does not know yet, so that
    torch's deserializer resolves those ops (and their fake kernels check the program's records) and those classes.
    ``f``: the ``.pt2`` file, open (left at its start).

    Why: ``memplan import`` refused a Mixtral or Qwen2-MoE saved from transformers 5 ("failed to resolve
    torch.ops.transformers.grouped_mm_fallback.default") and any transformers model saved as called by default,
    ``return_dict=True`` ("a transformers.modeling_outputs.BaseModelOutputWithPoolingAndCrossAttentions, which torch
    cannot load back"): the op and the class register as transformers is imported, which the CLI never did (round 52).
    Only the caller's installed packages named in these tables are imported (a module under them that is no such
    module fails to import, and torch's refusal stands); nothing of the file runs. Returns the transformers KV cache
    classes (``TRANSFORMERS_CACHES``) the program's structure names and that are registered now: a decode step's, whose
    example cache is pickled among its sample inputs (``_cache_examples_read``)."""
    try:
        import zipfile

        with zipfile.ZipFile(f) as archive:   # (the file ``check_archive`` passed, open: not its path again)
            names = [n for n in archive.namelist() if n.endswith("models/model.json")]
            text = archive.read(names[0]).decode("utf-8", "replace") if names else ""
    except Exception:  # noqa: BLE001 - an archive torch will refuse in its own words
        return frozenset()
    finally:
        with contextlib.suppress(OSError, ValueError):   # (what cannot seek, torch refuses in its own words)
            f.seek(0)
    known = torch.utils._pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE
    modules = [_OP_LIBRARIES[ns] for ns in sorted(set(_OP_NAMESPACE.findall(text)) & _OP_LIBRARIES.keys())]
    found = {f"{module}.{cls}" for module, cls in _TYPE_NAME.findall(text)}
    named = found - set(known)
    modules += sorted({name.rsplit(".", 1)[0] for name in named})
    for module in modules[:_MAX_LIBRARY_MODULES]:
        if module in sys.modules:
            continue
        try:
            with warnings_caught():
                importlib.import_module(module)
        except Exception:  # noqa: BLE001 - not installed, or not importable here: torch's refusal names the op or class
            continue
    if named & TRANSFORMERS_CACHES:   # (a model saved with its KV cache: the class does not register itself on import)
        transformers_cache_registered(torch)
    # (registered before this call too: by the caller, or an earlier load in the process)
    return frozenset(name for name in found & TRANSFORMERS_CACHES if name in known)


#: the classes a transformers KV cache given as an example input pickles as (the cache, and the layers of a
#: ``DynamicCache`` that transformers' pytree flattening takes), in ``transformers.cache_utils``
_CACHE_PICKLED = ("DynamicCache", "EncoderDecoderCache", "DynamicLayer", "DynamicSlidingWindowLayer", "DummyLayer")


@contextlib.contextmanager
def _cache_examples_read(torch: Any, caches: frozenset[str]):
    """For the block, torch's weights-only unpickler builds transformers' KV cache classes (``_CACHE_PICKLED``) where
    ``caches`` (``_known_libraries``) is not empty; nothing otherwise.

    Why: a decode step exported with ``past_key_values=DynamicCache`` saves that cache pickled among its sample inputs,
    and the weights-only unpickler refused it ("Unsupported global: GLOBAL transformers.cache_utils.DynamicCache"):
    ``memplan import`` refused every such ``.pt2`` (round 53). What the unpickler does with a class allowed so is
    inert: ``cls.__new__`` and an update of the instance's ``__dict__`` with what the pickle holds (tensors, numbers,
    lists, these classes: weights-only values); no ``__init__``, no method of the file's choice. The name a pickle
    gives resolves to a stand-in (``_cache_stand_in``), not the class: the unpickler also *calls* what a name gives it
    (REDUCE), and with the class itself a file ran its constructor with arguments of its choice
    (``DynamicCache(None, None, True)`` made a CUDA stream: "CUDA error: ...", raw; round 54 review). The classes
    themselves are allowed under names no pickle can spell (with a newline), for the unpickler's check of what it
    fills in (BUILD). The objects it builds are thrown away after the load (``_cache_examples_rebuilt``).
    Process-wide while the block runs (torch keeps one allow-list): a ``torch.load`` in another thread meanwhile may
    build these classes too, as inertly."""
    if not caches:
        yield
        return
    import transformers.cache_utils as cache_utils

    real = [(name, cls) for name in _CACHE_PICKLED if isinstance(cls := getattr(cache_utils, name, None), type)]
    allowed = [(_cache_stand_in(cls), f"transformers.cache_utils.{name}") for name, cls in real]
    allowed += [(cls, f"memplan\nbuilt.{name}") for name, cls in real]
    with torch.serialization.safe_globals(allowed):
        yield


@functools.cache
def _cache_stand_in(cls: type) -> type:
    """What a pickle's name of the cache class ``cls`` gives torch's weights-only unpickler: a class whose ``__new__``
    (NEWOBJ, and a call of it: REDUCE) makes a bare ``cls`` instance (``object.__new__``; Python does not run
    ``__init__`` on an object of another class) and refuses arguments. Why: see ``_cache_examples_read``; made once
    per class (``functools.cache``) so that torch's allow-list, a set, holds one stand-in however many loads."""

    def __new__(stand_in: type, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            raise pickle.UnpicklingError(f"{cls.__module__}.{cls.__qualname__} is built by its constructor in this "
                                         "pickle, with arguments; a KV cache torch.export.save writes is not")
        return object.__new__(cls)

    return type(f"_Pickled{cls.__name__}", (), {"__new__": __new__, "__module__": __name__})


def _cache_examples_rebuilt(torch: Any, ep: Any, path: str) -> None:
    """Replace ``ep``'s example inputs by ones rebuilt from their leaves through the program's input structure
    (``ep.call_spec.in_spec``): each KV cache a new one made by transformers' own unflattening from its tensors; an
    ``InputFormatError`` naming the file and the input where a leaf is not a tensor where the program takes one, or not
    a plain value where it takes a constant.

    Why: the caches unpickled by ``_cache_examples_read`` hold whatever attributes the file gave them; only their
    tensors (which torch checked against the program's structure as it loaded them) are kept, in caches transformers
    builds as it does for a call of the program."""
    pytree = torch.utils._pytree
    examples = getattr(ep, "example_inputs", None)
    if examples is None:
        return
    try:
        leaves = pytree.tree_leaves(examples)
    except Exception as exc:  # noqa: BLE001 - transformers' flattening of a cache the file made up
        raise InputFormatError(f"{path}: the example inputs saved with the program (its sample inputs) hold a KV "
                               f"cache its input structure cannot take ({type(exc).__name__}: {first_line(exc)}): a "
                               "corrupted or edited archive") from None
    user = [spec.arg for spec in ep.graph_signature.input_specs if str(getattr(spec.kind, "name", "")) == "USER_INPUT"]
    for arg, leaf in zip(user, leaves):
        tensor = type(arg).__name__ == "TensorArgument"
        if (type(leaf) is not torch.Tensor) if tensor else not isinstance(leaf, (int, float, bool, str, type(None))):
            raise InputFormatError(f"{path}: the example inputs saved with the program (its sample inputs) give its input "
                                   f"{getattr(arg, 'name', '?')!r} a {type(leaf).__name__}, where the program takes "
                                   f"{'a tensor' if tensor else 'a plain value'}: a corrupted or edited archive")
    ep.example_inputs = pytree.tree_unflatten(leaves, ep.call_spec.in_spec)


#: the members ``torch.export.save`` writes before it serializes the program (``archive_format``...)
_SAVE_PREAMBLE = ("archive_format", "archive_version", "byteorder")


def _unfinished(path: str) -> str | None:
    """Words for an archive ``torch.export.save`` began and gave up on: its first members (``archive_format``...) and
    no program; None for anything else.

    Why: ``torch.export.save`` opens the file and writes those members before it serializes the program, and leaves
    them behind when that raises: a program whose outputs are a ``torch.return_types`` (``torch.max(x, dim=0)``,
    ``topk``, ``sort``) in a torch release that gives those no serialization name ("No registered serialization name
    for <class 'torch.return_types.max'>"). Such a file was refused as "a zip file torch.export.save did not write",
    which it did, in part (round 52)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception:  # noqa: BLE001 - not a zip we can list: torch's own words stand
        return None
    tails = {n.rsplit("/", 1)[-1] for n in names}
    if not all(t in tails for t in _SAVE_PREAMBLE) or any("/models/" in n or n.startswith("models/") for n in names):
        return None
    return ("no exported program in the archive, only the members torch.export.save writes first: an unfinished "
            "archive (torch.export.save stops so when it "
            "cannot serialize the program, e.g. outputs of type torch.return_types from torch.max(x, dim=0), topk or "
            "sort, which some torch releases cannot save: return them as a plain tuple, tuple(torch.max(x, dim=0)), "
            "export and save again, or import the ExportedProgram in Python with memplan.from_torch)")


@contextlib.contextmanager
def return_types_named(torch: Any):
    """For the block, torch's pytree serializes and deserializes every ``torch.return_types`` class (a structseq:
    ``torch.return_types.max``) under its qualified name, as torch releases that name them do; afterwards torch's
    registry is as it was.

    Why: the planner needs a program's output leaves, not the Python class around them, yet a ``.pt2`` whose outputs
    are ``torch.max(x, dim=0)``'s was refused on load in a torch that does not name those classes ("Deserializing
    torch.return_types.max in pytree is not registered"). The registration is the one torch's later releases make
    (name ``torch.return_types.<name>``, context ``None``): structure only, no code is named by the file."""
    pytree = torch.utils._pytree
    added: list[tuple[type, Any, str]] = []
    with _RETURN_TYPES:
        try:
            for cls in getattr(torch.return_types, "all_return_types", ()):
                name = f"torch.return_types.{cls.__name__}"
                old = pytree.SUPPORTED_SERIALIZED_TYPES.get(cls)
                if cls not in pytree.SUPPORTED_NODES or name in pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE or (
                        old is not None and old.serialized_type_name != pytree.NO_SERIALIZED_TYPE_NAME_FOUND):
                    continue   # (named already: by this torch, or by the user)
                pytree.SUPPORTED_SERIALIZED_TYPES[cls] = pytree._SerializeNodeDef(cls, name, None, None)
                pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE[name] = cls
                added.append((cls, old, name))
            yield
        finally:
            for cls, old, name in added:
                pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE.pop(name, None)
                if old is None:
                    pytree.SUPPORTED_SERIALIZED_TYPES.pop(cls, None)
                else:
                    pytree.SUPPORTED_SERIALIZED_TYPES[cls] = old


#: held while ``return_types_named`` changes torch's registry (two loads at once would restore each other's)
_RETURN_TYPES = fork_safe(threading.RLock())


def _inverted_range(path: str) -> str | None:
    """Words naming the first ``range_constraints`` entry of ``path``'s program that torch cannot load, with the input
    dimensions of its symbol: a ``min_val`` above its ``max_val``, a bound that is no integer, or a range that leaves
    out the example size the program records for that dimension (its ``model.json``, read again from the archive
    ``check_archive`` passed); None where none is found.

    Why: torch's deserializer refused such a file with "ValueRangeError: Invalid ranges [10:3]", "AssertionError: 4
    not in VR[10, 20]" or "invalid literal for int()", naming no symbol and no input (round 48)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("models/model.json")), None)
            program = json.loads(archive.read(name)) if name else None
        ranges = program["range_constraints"]
        graph = program["graph_module"]["graph"]
        for symbol, r in ranges.items():
            used = re.compile(rf"(?<![\w]){re.escape(symbol)}(?![\w])")
            dims = [(f"input {t['as_tensor']['name']!r} dimension {d}", size["as_expr"].get("hint"))
                    for t in graph["inputs"] if "as_tensor" in t
                    for d, size in enumerate(graph["tensor_values"].get(t["as_tensor"]["name"], {}).get("sizes", ()))
                    if isinstance(size, dict) and isinstance(size.get("as_expr"), dict)
                    and used.search(str(size["as_expr"].get("expr_str", "")))]
            where = f" ({', '.join(w for w, _ in dims[:4])})" if dims else ""
            lo, hi = r.get("min_val"), r.get("max_val")   # (None: unbounded, as torch saves a Dim with no max)
            bad = [b for b in (lo, hi) if b is not None and (not isinstance(b, int) or isinstance(b, bool))]
            if bad:
                return (f"range_constraints gives symbol {symbol!r}{where} the bound {_short(bad[0])}, which is no "
                        "integer (a corrupted or edited program: export and save it again)")
            lo, hi = -math.inf if lo is None else lo, math.inf if hi is None else hi
            if lo > hi:
                return (f"range_constraints gives symbol {symbol!r}{where} the range [{lo}, {hi}]: its min_val is "
                        "above its max_val (a corrupted or edited program: export and save it again)")
            for w, hint in dims:
                size = hint.get("as_int") if isinstance(hint, dict) else None
                if isinstance(size, int) and not lo <= size <= hi:
                    return (f"range_constraints gives symbol {symbol!r} the range [{lo}, {hi}], which leaves out the "
                            f"size {size} the program records for {w} (a corrupted or edited program: export and "
                            "save it again)")
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


#: the dtype codes of a serialized tensor record (``torch._export.serde.schema.ScalarType``), and the floating and
#: complex ones among them (which alone may require gradients)
_DTYPE_CODES = frozenset({*range(1, 14), *range(28, 36)})
_GRAD_DTYPE_CODES = frozenset({6, 7, 8, 9, 10, 11, 13, 29, 30, 31, 32, 33})
#: the most elements a tensor may have (torch counts them in int64)
_MAX_NUMEL = (1 << 63) - 1


def _program_json(path: str) -> Any:
    """The parsed ``models/model.json`` of the ``.pt2`` archive at ``path`` (which ``check_archive`` passed); None where
    it has none. Raises what zipfile and json raise (callers that only add words catch it)."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        name = next((n for n in archive.namelist() if n.endswith("models/model.json")), None)
        return json.loads(archive.read(name)) if name else None


#: the serialized tensor layouts (``torch._export.serde.schema.Layout``) other than strided, by code
_NOT_STRIDED = {0: "unknown-layout", 1: "sparse_coo", 2: "sparse_csr", 3: "sparse_csc", 4: "sparse_bsr",
                5: "sparse_bsc", 6: "mkldnn"}
#: the serialized strided layout
_STRIDED = 7


def _check_record_layouts(path: str) -> None:
    """Refuse a loaded ``.pt2`` a tensor record of which (its ``model.json``'s ``tensor_values``, in the graph or a
    subgraph) has a layout other than strided: an ``InputFormatError`` naming the tensor and its layout.

    Why: torch's deserializer drops the layout: a sparse input saved with its serialized strides ``(0, 0)`` came back
    as a *strided* ``[3, 3]`` fake tensor of overlapping elements, planned at 4 bytes, and a program reading it
    (``x.to_dense() * 2``) was refused as "corrupted or edited" (its op runs again on the strided record and makes
    strides ``(0, 0)``), where the same program in memory is refused as sparse (round 49). A program that cannot be
    read so is left to the checks after it."""
    try:
        program = _program_json(path)
    except Exception:  # noqa: BLE001 - torch read it; its records are checked as it loaded them
        return
    stack = [program]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
            continue
        if not isinstance(x, dict):
            continue
        values = x.get("tensor_values")
        for tensor, record in (values.items() if isinstance(values, dict) else ()):
            layout = record.get("layout", _STRIDED) if isinstance(record, dict) else _STRIDED
            if layout != _STRIDED:
                words = _NOT_STRIDED.get(layout, f"layout-code-{_short(layout)}")
                raise InputFormatError(f"{path}: the program records tensor {tensor!r} as a {words} tensor (only "
                                       "dense, strided tensors are supported)")
        stack.extend(v for k, v in x.items() if k != "tensor_values" and isinstance(v, (dict, list)))


def _bad_tensor_record(path: str) -> str | None:
    """Words naming the first tensor record of ``path``'s program (its ``model.json``'s ``tensor_values``, read again
    from the archive ``check_archive`` passed) that torch cannot make a fake tensor of: a dtype code no dtype has, a
    negative size, sizes whose product overflows int64, or a tensor of a dtype other than floating or complex that
    requires gradients; None where none is found (or the program cannot be read so: torch's words stand).

    Why: torch's deserializer refused such a file with "RuntimeError: numel: integer multiplication overflow",
    "Trying to create tensor with negative dimension -1: [-1, 4]" or "Only Tensors of floating point and complex
    dtype can require gradients", naming no tensor, and ``memplan import`` said the file was "not a torch.export
    program", which it is (round 49)."""
    try:
        graph = _program_json(path)["graph_module"]["graph"]
        inputs = {t["as_tensor"]["name"] for t in graph["inputs"] if "as_tensor" in t}
        records = list(graph["tensor_values"].items())
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    for tensor, record in records:
        if not isinstance(record, dict):
            continue
        what = f"{'graph input' if tensor in inputs else 'tensor'} {tensor!r}"
        sizes = [d.get("as_int") if isinstance(d, dict) else None for d in record.get("sizes") or ()]
        sizes = [d for d in sizes if type(d) is int]   # (a symbolic size: as_expr)
        dtype = record.get("dtype")
        if type(dtype) is not int or dtype not in _DTYPE_CODES:
            why = f"the dtype code {_short(dtype)}, which is no torch dtype"
        elif any(d < 0 for d in sizes):
            why = f"the negative size {next(d for d in sizes if d < 0)}"
        elif math.prod(sizes) > _MAX_NUMEL:
            why = f"sizes {sizes}, more elements than int64 counts"
        elif record.get("requires_grad") is True and dtype not in _GRAD_DTYPE_CODES:
            why = "requires_grad with a dtype that is neither floating nor complex (no gradient can be one)"
        else:
            continue
        return (f"the program's record of {what} gives it {why} (a corrupted or edited program: export and save it "
                "again)")
    return None


def _tensor_names(x: Any) -> list[str]:
    """The tensor names a serialized argument or output (``{"as_tensor": {"name": N}}``, ``{"as_tensors": [...]}``,
    nested in lists and dicts) refers to, in order."""
    names, stack = [], [x]
    while stack:
        y = stack.pop()
        if isinstance(y, list):
            stack.extend(reversed(y))
        elif isinstance(y, dict):
            for k, v in y.items():
                if k == "as_tensor" and isinstance(v, dict) and isinstance(v.get("name"), str):
                    names.append(v["name"])
                elif k == "as_tensors" and isinstance(v, list):
                    names.extend(t["name"] for t in v if isinstance(t, dict) and isinstance(t.get("name"), str))
                elif isinstance(v, (dict, list)) and k != "as_graph":
                    stack.append(v)
    return names


def _dangling_read(path: str) -> str | None:
    """Words naming the first node of ``path``'s program (its top graph, in order) that reads a tensor no input or
    earlier node makes; None where none does (or the program cannot be read so).

    Why: torch's deserializer refused such a file (an edited ``model.json`` whose ``gelu`` reads ``view``, made after
    it, or ``linear`` reading itself) with a bare "KeyError: 'view'", and ``memplan import`` said it was "not a
    torch.export program" (round 49)."""
    try:
        graph = _program_json(path)["graph_module"]["graph"]
        made = set(_tensor_names(graph["inputs"]))
        for node in graph["nodes"]:
            read = next((t for t in _tensor_names(node.get("inputs")) if t not in made), None)
            if read is not None:
                return (f"node {node.get('name') or '?'!r} ({_short(node.get('target'))}) reads tensor {read!r}, which no "
                        "input or earlier node makes (a corrupted or edited program: export and save it again)")
            made.update(_tensor_names(node.get("outputs")))
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


def _schema_misfit(path: str) -> str | None:
    """Words naming the first node of ``path``'s program (its top graph) calling an ATen-style op (``torch.ops.NS.OP.
    OVERLOAD``, looked up by name, nothing called) without an argument its schema requires; None where none does.

    Why: torch's deserializer refused such a file (an edited ``model.json`` whose ``twice(x)`` became ``aten.relu``,
    its argument still named ``x``, not ``self``) with a bare "KeyError: 'self'", and ``memplan import`` said it was
    "not a torch.export program" (round 49)."""
    import torch

    try:
        graph = _program_json(path)["graph_module"]["graph"]
        for node in graph["nodes"]:
            target = node.get("target")
            if not isinstance(target, str) or not target.startswith("torch.ops."):
                continue
            op: Any = torch.ops
            for part in target.split(".")[2:]:
                op = getattr(op, part, None)
            schema = getattr(op, "_schema", None)
            if schema is None:
                continue
            given = {i.get("name") for i in node.get("inputs") or () if isinstance(i, dict)}
            missing = next((a.name for a in schema.arguments if not a.has_default_value() and a.name not in given), None)
            if missing is not None:
                return (f"node {node.get('name') or '?'!r} ({target}) gives the op no argument {missing!r}, which its "
                        f"schema requires (it gives {sorted(map(str, given))}; a corrupted or edited program: export and "
                        "save it again)")
    except Exception:  # noqa: BLE001 - a program we cannot read so: torch's own words stand
        return None
    return None


def _refusal_within(exc: BaseException | None) -> _PickledCode | None:
    """The ``_PickledCode`` refusal that ``exc`` wraps (its causes and contexts), or None. Why: torch's deserializer
    re-raises what a stand-in raised inside it as its own error, and the file's refusal read "not a torch.export
    program (_PickledCode: FILE: a symbolic size ...)", the file named twice in one line."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _PickledCode):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


#: what torch says where a device a saved tensor names is not in this process (no driver, no such build, no such GPU)
_NO_DEVICE = re.compile(r"NVIDIA driver|not compiled with|No CUDA GPUs|no (XPU|MPS|HIP)|invalid device ordinal|"
                        r"CUDA error|device-side|is not available", re.IGNORECASE)


#: the functions of torch's deserializer that flatten the saved example inputs (their setter on the program, and the
#: check for modules among them)
_EXAMPLE_CHECKS = frozenset({"example_inputs", "_get_graph_inputs_of_type_nn_module"})


def _raised_in(exc: BaseException | None, functions: frozenset[str]) -> bool:
    """Whether ``exc`` (or what it wraps) was raised inside a function named in ``functions`` (its traceback's
    frames). Why: torch flattens the saved example inputs as it builds the program (``_EXAMPLE_CHECKS``), and a cache the file made up failed there in transformers' words alone ("This pytree
    flattening function should be applied to DynamicCache containing only ..."), refused as "not a torch.export
    program" (round 54)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name in functions:
                return True
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return False


#: torch's refusals of a ``.pt2`` written by another release: its program's schema version, its archive's version
_OTHER_SCHEMA = re.compile(r"Serialized schema version SchemaVersion\(major=(-?\d+), minor=(-?\d+)\) does not match our "
                           r"current schema version \((-?\d+), (-?\d+)\)")
_OTHER_ARCHIVE = re.compile(r"Saved archive version (\S+) does not match our current archive version (\S+?)\.?$")


def _other_release(torch: Any, path: str, why: str) -> str | None:
    """Words saying that ``path`` was saved by a torch release whose ``.pt2`` this one cannot read (torch's failure:
    ``why``), with the versions and the release named in the file where it names one; None for any other failure.

    Why: such a file was "not a torch.export program (SerializeError: Serialized schema version SchemaVersion(major=9,
    minor=20) does not match our current schema version (8, 20).)", and for an archive of another version "not a
    torch.export program (ValueError: Saved archive version 99 ...)": it is one, from another release, and the way out
    is to save it again with this one (or import it where it was saved), round 54."""
    schema, archive = _OTHER_SCHEMA.search(why), _OTHER_ARCHIVE.search(why)
    if schema is None and archive is None:
        return None
    try:
        saved_by = (_program_json(path) or {}).get("torch_version")
    except Exception:  # noqa: BLE001 - the release is words only
        saved_by = None
    by = f" by torch {_short(saved_by)}" if isinstance(saved_by, str) and saved_by else ""
    if schema is not None:
        what = (f"a torch.export program saved{by} in program schema version {schema[1]}.{schema[2]}, which this torch "
                f"({torch.__version__}) cannot read (it reads schema major version {schema[3]})")
    else:
        what = (f"a .pt2 archive saved{by} in archive version {archive[1]}, which this torch ({torch.__version__}) "
                f"cannot read (it reads version {archive[2]})")
    if saved_by == torch.__version__:   # (this very release wrote another version: not what it writes)
        return f"{what}, though it names this torch as its writer: a corrupted or edited file, export and save it again"
    return (f"{what}: export and save it again with this torch, or import it with the torch release that saved it "
            "(or a corrupted or edited file)")


#: torch's reader's failure on a constant member of a kind it has no loader for (``data/constants/NAME``)
_UNKNOWN_CONSTANT = re.compile(r"Unsupported constant type: (\S+)")


def _unknown_constant(torch: Any, path: str, why: str) -> str | None:
    """Words saying that ``path`` holds a constant of a kind this torch release does not load (torch's failure:
    ``why``), naming the member; None for any other failure.

    Why: torch 2.14 saves an opaque Python object constant as a pickle (``opaque_obj_N``, which ``_no_code_from``
    refuses to unpickle); torch 2.11's reader has no such kind and failed on it as "not a torch.export program
    (RuntimeError: Unsupported constant type: opaque_obj_0)": the file is one, of a newer release or edited."""
    found = _UNKNOWN_CONSTANT.search(why)
    if found is None:
        return None
    name = found[1]
    what = " (an opaque Python object constant, a pickle: memplan import does not unpickle it)" \
        if name.startswith("opaque_obj") else ""
    return (f"the archive holds a constant {_short(name)} of a kind this torch ({torch.__version__}) does not load"
            f"{what}: export and save it again with this torch without that constant, or load it in Python with the "
            "torch release that saved it (torch.export.load, if you trust the file) and import the program with "
            "memplan.from_torch (or a corrupted or edited file)")


def _device_elsewhere(path: str, why: str) -> str | None:
    """Words saying that ``path``'s weights or constants are saved on a device this process lacks, where torch's
    failure (``why``) is about a device and the archive's payload configs name one other than the CPU; else None.

    Why: ``torch.export.load`` moves each saved tensor to its recorded device, so a program exported and saved on a GPU
    failed on a machine without one as "not a torch.export program (RuntimeError: Found no NVIDIA driver on your
    system...)", blaming a valid file for the machine (round 50)."""
    import json
    import zipfile

    if not _NO_DEVICE.search(why):
        return None
    devices: set[str] = set()
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(("_weights_config.json", "_constants_config.json")):
                    config = json.loads(archive.read(name)).get("config") or {}
                    for entry in config.values():
                        device = ((entry or {}).get("tensor_meta") or {}).get("device") or {}
                        if isinstance(device.get("type"), str) and device["type"] != "cpu":
                            index = device.get("index")
                            devices.add(device["type"] + (f":{index}" if isinstance(index, int) else ""))
    except Exception:  # noqa: BLE001 - an archive we cannot read so: torch's own words stand
        return None
    if not devices:
        return None
    return (f"the program's weights are saved on {', '.join(sorted(devices))}, which torch cannot use in this process "
            f"({why}): import it where that device is, or save the program from CPU weights "
            "(torch.export.load moves each saved tensor to the device it was saved on)")


#: torch's reader's words for a member the archive lacks
#: torch's reader's refusal of a string among a program's outputs (``return logits, "done"``): torch.export.save wrote it
#: (round 71: "not a torch.export program (SerializeError: Unable to deserialize output node Argument(as_string=s))")
_STRING_OUTPUT = re.compile(r"Unable to deserialize output node Argument\(as_string=(.*)\)$")
_MISSING_MEMBER = re.compile(r"failed locating file (\S+?): file not found")


def _other_torch_file(path: str) -> str | None:
    """What other torch archive ``path`` is (a TorchScript module, a ``torch.save`` file), from its members; None
    where it is neither or cannot be read. Why: both were "not a torch.export program (RuntimeError:
    PytorchStreamReader failed locating file archive_format: file not found.)", a reader's internals."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = [n.split("/", 1)[-1] for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return "a TorchScript module (torch.jit.save)"
    if "data.pkl" in parts:
        return "a torch.save file (a checkpoint or a pickled module)"
    return None


def _programs_named(path: str) -> list[str]:
    """The names of the exported programs a ``.pt2`` archive holds (``*/models/NAME.json``); [] where it cannot be
    read as a zip. Why: an archive ``package_pt2`` wrote with programs named ``first`` and ``second`` was "not a
    torch.export program (KeyError: 'model')", which named neither what it is nor what is missing."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return []
    found = (n.split("/") for n in names)
    return sorted({p[-1][:-len(".json")] for p in found if len(p) == 3 and p[1] == "models" and p[-1].endswith(".json")})


#: where torch keeps its compile caches, which importing its archive reader creates
_CACHE_DIR_VAR = "TORCHINDUCTOR_CACHE_DIR"


def _archive_reader() -> None:
    """Import torch's ``.pt2`` reader, which imports ``torch._dynamo``, which creates torch's cache directory
    (``TORCHINDUCTOR_CACHE_DIR``, else ``torchinductor_USER`` in the temporary directory) as it loads.

    Why here, before the file is opened: where that directory cannot be made (the variable names a path under a
    file, or a read-only place), the import raised inside the load, and ``memplan import x.pt2`` said the file
    was "not a torch.export program (NotADirectoryError: ...)": the file was blamed for the environment."""
    _cache_dir_made("load")
    try:
        importlib.import_module("torch.export.pt2_archive._package")
    except ImportError:
        return   # (another torch layout: torch.export.load imports what it needs, and says what fails)
    except OSError as exc:
        raise _cache_dir_error(exc, os.environ.get(_CACHE_DIR_VAR), "load") from None


def _cache_dir_made(verb: str) -> None:
    """Make torch's cache directory (``_torch_cache_dir``) before torch imports ``torch._dynamo``, which makes it
    as it loads; a MemplanError naming it (and the variable) where it cannot be made. ``verb``: what torch needs
    it for ("load", "export"). Nothing where ``torch._dynamo`` is imported already (it no longer looks).

    Why before torch: its import failing on the directory left ``torch._dynamo`` half-imported, and a second
    ``load_exported`` (or ``from_torch``) in the process, the directory fixed or not, failed inside torch
    ("Artifact of type=precompile already registered in mega-cache artifact factory") and blamed the file (the
    module) again. Made here, the error is the same on every call, and the first call after the directory is
    fixed works."""
    if "torch._dynamo" in sys.modules:
        return
    given = os.environ.get(_CACHE_DIR_VAR)
    try:
        os.makedirs(_torch_cache_dir(given), exist_ok=True)   # (as torch's cache_dir() does on import)
    except OSError as exc:
        raise _cache_dir_error(exc, given, verb) from None


def _cache_dir_error(exc: OSError, given: str | None, verb: str) -> MemplanError:
    """The error for torch's cache directory that cannot be made (``exc``), with the variable put back as it was
    (``given``: torch sets it to its absolute path before it tries)."""
    if given is None:
        os.environ.pop(_CACHE_DIR_VAR, None)
        where = f"its default cache directory {exc.filename or '?'}"
        fix = f"set {_CACHE_DIR_VAR} to a writable directory"
    else:
        os.environ[_CACHE_DIR_VAR] = given
        where = f"the cache directory {_CACHE_DIR_VAR}={given}"
        fix = f"point {_CACHE_DIR_VAR} at a writable directory"
    why = exc.strerror or type(exc).__name__
    at = f" ({exc.filename})" if exc.filename and given is not None and exc.filename != given else ""
    needed = "load any torch.export program" if verb == "load" else "export any module"
    return MemplanError(f"torch cannot create {where}{at}: {why}; {fix} (torch creates it to {needed})")


def _torch_cache_dir(given: str | None) -> str:
    """The directory torch's ``cache_dir()`` (``torch._inductor.runtime.cache_dir_utils``) makes as ``torch._dynamo``
    is imported: ``given`` (``TORCHINDUCTOR_CACHE_DIR``), else ``torchinductor_USER`` in the temporary directory.
    Computed here, not asked of torch: importing that module imports ``torch._dynamo``, which makes it."""
    if given is not None:
        return os.path.abspath(given)
    try:
        user = getpass.getuser()
    except (KeyError, ModuleNotFoundError, OSError):
        getuid = getattr(os, "getuid", None)
        user = f"uid_{getuid()}" if callable(getuid) else "unknown_user"
    return os.path.join(tempfile.gettempdir(), "torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))


#: one ``.pt2`` load at a time in the process (``load_exported``). Why: what guards a load is process-wide (torch's
#: archive reader's ``pickle`` and deserializer's ``sympy`` swapped for refusing stand-ins, ``torch.load`` forced
#: weights-only by its environment variable, warnings and two loggers held), and each guard put back what it had found
#: at its end: a load in a second thread found the first's stand-ins, so when the first ended the second ran on
#: unguarded (a pickled object in its archive unpickled, its code run) and then put the first's stand-ins back for
#: good (every later ``torch.load`` of the process weights-only, the loggers' records lost, warnings off)
_LOADS = fork_safe(threading.Lock())
