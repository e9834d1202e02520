"""The zip container of a ``.pt2`` file, checked before torch reads a byte of it (``check_archive``).

Why a check of our own: torch's reader trusts the container. ``torch.export.load`` extracts every member under
``data/aotinductor/`` to a temporary directory and ``dlopen``s the shared library among them (an AOTInductor
package): a crafted ``.pt2`` ran native code of its choice on ``memplan import``, before any program was read.
Its zip reader checks no CRC (a flipped byte in a weight, in the sample inputs or in ``byteorder`` loaded as if
nothing had happened), takes two members of one name (a program read from one, another tool from the other),
names outside the archive's directory (``../``), and allocates whatever size a member declares before it
inflates it (a member of a few bytes declaring terabytes). Its weights' and tensor constants' layouts come from the
archive's payload configs (``_check_payloads``): an empty record it fills with zeros of the declared size (terabytes
from a few bytes again), and a layout past its record's bytes it refused naming no weight. None of that needs torch
to see, so this module is
plain ``zipfile``: bounded memory (members are streamed in chunks; only a zip nested in a member, the sample inputs'
torch.save archive, is read whole, as torch reads it, its size counted first), and every refusal an
``InputFormatError`` naming the file and the member.

What passes is what ``torch.export.save`` writes (one top directory, stored members, sizes that fit the file)
and any other well-formed zip: a torch.save checkpoint or a TorchScript module still reaches torch's reader,
which says what it is.
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from typing import IO

from ..errors import InputFormatError

#: the members of an AOTInductor package, which ``torch.export.load`` extracts and loads as native code
AOTI_DIR = "data/aotinductor/"
#: bytes read from a member at a time while its CRC is checked
CHUNK = 1 << 20
#: a compressed member inflating to more than ``BOMB_BYTES`` and more than ``BOMB_RATIO`` times its compressed size is
#: refused as a zip bomb. Why: torch's reader inflates every member whole, even one it never uses, and held about 1.9
#: bytes per inflated byte: a 1 MB .pt2 holding a deflated 1 GiB member of zeros imported with a 2.7 GB peak RSS
#: (0.8 GB for a plain program), and one of 24 MB declaring less than the machine's memory was killed, not refused.
#: ``torch.export.save`` stores its members, and model weights deflate by far less than 100:1.
BOMB_BYTES = 64 << 20
BOMB_RATIO = 100
#: the first bytes of a zip archive (a nested one: sample inputs and pickled weights are torch.save archives)
ZIP_MAGIC = b"PK\x03\x04"


#: where a container's memory limit is (cgroup v2, then v1): a limit below the machine's is the one that counts
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_bytes() -> int:
    """The memory this process may use in bytes: the machine's physical memory (1 TiB where the OS does not say), or
    its container's limit where that is lower. The most a ``.pt2``'s members may declare in all, since torch's reader
    holds each member it reads whole in memory (in a container, past its limit the process is killed, not refused)."""
    try:
        total = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        total = 1 << 40
    for limit_file in CGROUP_LIMITS:
        try:
            with open(limit_file) as f:
                text = f.read(64).strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def check_archive(f: IO[bytes], path: str, limit: int | None = None) -> None:
    """Refuse the ``.pt2`` in the open binary file ``f`` (named ``path`` in messages) unless its zip container is
    safe to give torch: an ``InputFormatError`` naming the file and the member for a container zipfile cannot read,
    a member path that leaves the archive's directory or is given twice, AOTInductor compiled code (``AOTI_DIR``),
    a stored member whose declared size is not the size it stores, members declaring more than ``limit`` bytes in
    all (default: ``memory_bytes``, counting zip archives nested in members too), or a member whose bytes fail
    their CRC-32. ``f`` is left at its start for the reader that follows.

    Why each: see the module's docstring. The CRC pass reads the whole file once more (zlib's CRC runs at
    gigabytes a second); it is what ``unzip -t`` does, and the only way to know a weight is the one saved."""
    limit = memory_bytes() if limit is None else limit
    try:
        total = _check_zip(f, limit, path)
        f.seek(0)
        _check_payloads(f, path, limit, total)
    finally:
        f.seek(0)


#: the members that describe a program's weights and tensor constants (``torch.export.save``'s payload configs), under
#: the archive's directory, and the prefix of a tensor constant's record among the constants'
PAYLOAD_CONFIGS = re.compile(r"(data/weights/)[^/]*_weights_config\.json|(data/constants/)[^/]*_constants_config\.json")
TENSOR_CONSTANT = "tensor_"
#: bytes per element of each dtype by its serialized code (``torch._export.serde.schema.ScalarType``)
ELEMENT_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 2, 7: 4, 8: 8, 9: 4, 10: 8, 11: 16, 12: 1, 13: 2, 28: 2, 29: 1, 30: 1,
                 31: 1, 32: 1, 33: 1, 34: 4, 35: 8}
#: the floating and complex dtypes among them, which alone may require gradients
GRAD_DTYPES = frozenset({6, 7, 8, 9, 10, 11, 13, 29, 30, 31, 32, 33})


def _check_payloads(f: IO[bytes], path: str, limit: int, total: int) -> None:
    """Refuse a weight or tensor constant whose payload config (``data/weights/*_weights_config.json``,
    ``data/constants/*_constants_config.json``) gives it a layout its record cannot hold, or an empty record whose
    declared size would bring the bytes torch's reader holds (``total``: the members' declared sizes) above ``limit``;
    an ``InputFormatError`` naming the file, the config member, the weight and its record.

    Why: torch's reader takes each record's layout from that config. An empty record (what ``torch.export.save``
    writes for a fake weight) it fills with ``torch.zeros`` of the declared size: a few-byte ``.pt2`` declaring a
    ``[2**17, 2**15]`` weight had torch allocate and zero 16 GiB (an out-of-memory kill on a smaller machine, not a
    refusal). A layout past its record's bytes (a ``[4, 3]`` weight edited to ``[8, 3]``, to float64, or to a storage
    offset of -5) was "not a torch.export program (RuntimeError: setStorage: sizes [8, 3] ...)", naming no weight.
    A config this check cannot read (no JSON, a symbolic size, a dtype it does not know) is left to torch's reader,
    which says what fails."""
    import json

    with zipfile.ZipFile(f) as archive:
        infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        for name in sorted(infos):
            top, _, rel = name.partition("/")
            found = PAYLOAD_CONFIGS.fullmatch(rel)
            if not found:
                continue
            try:
                config = json.loads(archive.read(infos[name]))["config"]
                entries = list(config.items())
            except Exception:  # noqa: BLE001 - torch's reader says what is wrong with it
                continue
            base = f"{top}/{found.group(1) or found.group(2)}"
            total = _check_config(entries, infos, base, f"{path}: member {name!r}", limit, total,
                                  constants=found.group(2) is not None)


def _check_config(entries: list, infos: dict, base: str, where: str, limit: int, total: int, constants: bool) -> int:
    """``_check_payloads`` of one config's ``entries`` (``(name, payload meta)``), whose records lie under ``base``;
    returns ``total`` with the bytes of the zero tensors torch makes for its empty records added. Records are read as
    torch reads them: one flat tensor per record, in the dtype of the first entry naming it, each entry a view of it."""
    flat: dict[str, tuple[int, int]] = {}   # record -> (its bytes as torch holds them, element bytes)
    for fqn, meta in entries:
        layout = _declared_layout(meta, constants)
        if layout is None:
            continue
        record, item, sizes, strides, offset = layout
        what = f"{'constant' if constants else 'weight'} {fqn!r} (record {record!r})"
        info = infos.get(base + record)
        if info is None:
            continue   # (torch's reader names the record it cannot find)
        if record not in flat:
            held = info.file_size
            if held == 0:   # (torch.zeros of the declared size)
                held = math.prod(sizes) * item if all(d >= 0 for d in sizes) else 0
                total += held
                if total > limit:
                    raise InputFormatError(f"{where} gives {what} an empty record of declared size {sizes}, which "
                                           f"torch's reader fills with zeros: {held} bytes, bringing what it holds to "
                                           f"{total}, more than this machine's {limit} bytes of memory (a corrupted "
                                           "or edited archive)")
            flat[record] = (held, item)
        held, flat_item = flat[record]
        if meta.get("tensor_meta", {}).get("requires_grad") is True and meta["tensor_meta"]["dtype"] not in GRAD_DTYPES:
            raise InputFormatError(f"{where} gives {what} requires_grad with a dtype that is neither floating nor "
                                   "complex (no gradient can be one): a corrupted or edited archive")
        if any(d < 0 for d in (*sizes, *strides, offset)):
            raise InputFormatError(f"{where} gives {what} a negative size, stride or storage offset ({sizes}, strides "
                                   f"{strides}, offset {offset}): a corrupted or edited archive")
        span = 0 if 0 in sizes else offset + 1 + sum((d - 1) * st for d, st in zip(sizes, strides))
        if span * flat_item > held:
            raise InputFormatError(f"{where} gives {what} sizes {sizes}, strides {strides} and storage offset "
                                   f"{offset} in {flat_item}-byte elements, which reach byte {span * flat_item} of a "
                                   f"record holding {held} (a corrupted or edited archive)")
    return total


def _declared_layout(meta: object, constants: bool) -> tuple[str, int, list[int], list[int], int] | None:
    """``(record, element bytes, sizes, strides, storage offset)`` of one payload config entry that torch reads as a
    raw tensor record; None for a pickled one (refused elsewhere), a constant that is no tensor, or one whose layout
    is not plain numbers (left to torch's reader)."""
    if not isinstance(meta, dict) or meta.get("use_pickle"):
        return None
    record, tm = meta.get("path_name"), meta.get("tensor_meta")
    if not isinstance(record, str) or not isinstance(tm, dict) or (constants and not record.startswith(TENSOR_CONSTANT)):
        return None
    item = ELEMENT_BYTES.get(tm.get("dtype")) if type(tm.get("dtype")) is int else None

    def ints(values: object) -> list[int] | None:
        if not isinstance(values, list):
            return None
        out = [v.get("as_int") if isinstance(v, dict) else None for v in values]
        return out if all(type(v) is int for v in out) else None

    sizes, strides, offset = ints(tm.get("sizes")), ints(tm.get("strides")), ints([tm.get("storage_offset")])
    if item is None or sizes is None or strides is None or offset is None or len(sizes) != len(strides):
        return None
    return record, item, sizes, strides, offset[0]


def _json_hint(f: IO[bytes]) -> str:
    """``files.json_model_hint`` of the first bytes of the file ``f`` (a graph or plan JSON under a ``.pt2`` name)."""
    from ..files import json_model_hint

    try:
        f.seek(0)
        return json_model_hint(f.read(4096) or b"")
    except (OSError, ValueError):
        return ""


def _check_zip(f: IO[bytes], limit: int, where: str, total: int = 0, inner: bool = False) -> int:
    """``check_archive`` of the zip in ``f`` (``where``: the file, or ``FILE, member M`` for a nested zip), whose
    members' declared sizes add to ``total`` (those of the zips around it and before it); returns the new total.
    ``inner``: a zip in a member of the .pt2, whose own members are not unpacked in turn."""
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, UnicodeDecodeError) as exc:
        if inner:   # (a member that only starts like a zip: a raw weight whose first int32 is 67324752)
            return total
        if isinstance(exc, zipfile.BadZipFile) and _starts_as_zip(f):
            raise InputFormatError(f"{where}: a truncated or damaged .pt2: it begins as a zip archive, but zipfile cannot "
                                   f"read its directory ({exc}); an incomplete download or copy? Copy or save it "
                                   "again") from None
        raise InputFormatError(f"{where}: not a torch.export program ({type(exc).__name__}: {exc})"
                               + _json_hint(f)) from None
    with archive:
        shift = _directory_shift(f, archive)
        if shift:
            raise InputFormatError(
                f"{where}: {'a member that is ' if inner else ''}a zip archive whose directory lies {shift} bytes from "
                "where its end record says (zipfile reads its members there, torch's reader where the record says: "
                "they would read different members). torch.export.save writes no such archive: a truncated .pt2 that "
                "ends inside a member that is itself a zip (its sample inputs), or a crafted one; copy or save it "
                "again") from None
        infos = archive.infolist()
        total = _check_members(infos, where, limit, total, inner)
        for info in infos:   # (one level down only: torch unpacks a member's archive, never one inside that)
            nested = None if info.is_dir() else _read_checked(archive, info, where, unpack=not inner)
            if nested is not None:
                with nested:
                    total = _check_zip(nested, limit, f"{where}, member {info.filename!r}", total, inner=True)
    return total


def _directory_shift(f: IO[bytes], archive: zipfile.ZipFile) -> int:
    """How many bytes the central directory ``zipfile`` read (``archive.start_dir``) lies from the offset the zip's
    end record gives (0 for any archive ``torch.export.save`` or ``torch.save`` writes; 0 where it cannot be told).

    Why: ``zipfile`` takes a zip with bytes before it (a self-extractor) by shifting every offset by that much, where
    torch's reader (miniz) takes the offsets as written. So the members this check passed were not those torch read:
    a ``.pt2`` cut just after its sample inputs (a zip member ending in an end record of its own) was checked as that
    inner archive and refused by torch as "not a torch.export program (... invalid header or archive is corrupted)";
    a crafted file could show this check one directory and torch another (round 54)."""
    end_record = getattr(zipfile, "_EndRecData", None)
    try:
        record = end_record(f) if end_record is not None else None
        return int(archive.start_dir) - int(record[zipfile._ECD_OFFSET]) if record else 0
    except (OSError, ValueError, TypeError, IndexError, AttributeError, zipfile.BadZipFile):
        return 0


def _starts_as_zip(f: IO[bytes]) -> bool:
    """Whether the file ``f`` begins with a zip member's header (``ZIP_MAGIC``). Why: a zip whose end was cut off
    (the central directory, which zipfile reads first, is at the end) was "not a torch.export program (BadZipFile:
    File is not a zip file)", the words for a file that never was one (round 54)."""
    try:
        f.seek(0)
        return f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except (OSError, ValueError):
        return False


def _check_members(infos: list[zipfile.ZipInfo], where: str, limit: int, total: int, inner: bool) -> int:
    """The names (``_check_name``; not an ``inner`` zip's: torch reads a member's records by name and extracts none)
    and declared sizes of one zip's members (``check_archive``), whose sizes add to ``total``; returns the new
    total."""
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if not inner:
            _check_name(name, seen, where)
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise InputFormatError(f"{where}: member {name!r} declares {info.file_size} bytes but stores "
                                   f"{info.compress_size} (a corrupt archive)")
        if (info.compress_type != zipfile.ZIP_STORED and info.file_size > BOMB_BYTES
                and info.file_size > BOMB_RATIO * max(info.compress_size, 1)):
            raise InputFormatError(f"{where}: member {name!r} inflates {info.compress_size} compressed bytes to "
                                   f"{info.file_size}, more than {BOMB_RATIO} times as many: a zip bomb (torch's "
                                   "reader inflates every member whole in memory; torch.export.save stores members "
                                   "uncompressed). If you trust the file, store it uncompressed (zip -0)")
        total += info.file_size
        if total > limit:
            raise InputFormatError(f"{where}: member {name!r} brings the bytes its archive's members declare to "
                                   f"{total}, more than this machine's {limit} bytes of memory, which torch's reader "
                                   "would hold them in (a corrupt archive or a zip bomb)")
    return total


#: a Windows drive at the start of a member's name (``C:``, ``C:/``): a path outside the archive's directory there. Only
#: a drive: ``torch.export.save`` names its directory after the file, and ``model:v2.pt2``'s members start "model:v2/"
_DRIVE = re.compile(r"[A-Za-z]:")


def _check_name(name: str, seen: set[str], where: str) -> None:
    """Refuse member ``name`` of the .pt2 given twice (``seen``: the names before it, which it joins), outside the
    archive's directory, or under ``AOTI_DIR``."""
    if name in seen:
        raise InputFormatError(f"{where}: the archive holds member {name!r} twice (which one a reader takes is "
                               "its own choice; torch.export.save writes each once)")
    seen.add(name)
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or _DRIVE.match(name):
        raise InputFormatError(f"{where}: member {name!r} has a path that leaves the archive's directory "
                               "(torch.export.save writes every member under one directory of its own)")
    # torch's reader names a member by what follows the first "/" (its archive directory may hold a backslash: a
    # member "a\\b/data/aotinductor/..." is compiled code to torch), and a Windows reader splits at "\\" as well
    if any(rel.startswith(AOTI_DIR) for rel in (name.partition("/")[2], "/".join(parts[1:]))):
        raise InputFormatError(f"{where}: member {name!r} is AOTInductor compiled code, which torch.export.load "
                               "extracts and loads as a native library (it runs whatever the file holds): "
                               "memplan import reads only the exported program; save it with torch.export.save "
                               "(no compiled package), or, if you trust the file, load it in Python "
                               "(torch.export.load) and import the program with memplan.from_torch")


def _read_checked(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, unpack: bool) -> io.BytesIO | None:
    """Read member ``info`` through its CRC-32 check (``zipfile`` compares it at the member's end): streamed, or,
    where the member is itself a zip archive to be checked in turn (``unpack``: in the .pt2 itself, not in a nested
    archive, so a zip that holds itself is checked once), read whole and returned as a file. Why whole:
    torch reads such a member whole before it unpacks it (its declared size is counted already), and a zip read in
    place through ``zipfile``'s member file rewinds and re-reads the member for every backward seek, which a nested
    archive listing its members last to first made quadratic."""
    try:
        with archive.open(info) as member:
            head = member.read(len(ZIP_MAGIC))
            if head == ZIP_MAGIC and unpack:
                return io.BytesIO(head + member.read())
            while member.read(CHUNK):
                pass
        return None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise InputFormatError(f"{where}: member {info.filename!r} is corrupt ({type(exc).__name__}: "
                               f"{exc})") from None
