"""The zip container of a ``.pt2`` file, checked before torch reads a byte of it (``check_archive``).

Why a check of our own: torch's reader trusts the container. ``torch.export.load`` extracts every member under
``data/aotinductor/`` to a temporary directory and ``dlopen``s the shared library among them (an AOTInductor
package): a crafted ``.pt2`` ran native code of its choice on ``memplan import``, before any program was read.
Its zip reader checks no CRC (a flipped byte in a weight, in the sample inputs or in ``byteorder`` loaded as if
nothing had happened), takes two members of one name (a program read from one, another tool from the other),
names outside the archive's directory (``../``), and allocates whatever size a member declares before it
inflates it (a member of a few bytes declaring terabytes). None of that needs torch to see, so this module is
plain ``zipfile``: bounded memory (members are streamed in chunks; only a zip nested in a member, the sample inputs'
torch.save archive, is read whole, as torch reads it, its size counted first), and every refusal an
``InputFormatError`` naming the file and the member.

What passes is what ``torch.export.save`` writes (one top directory, stored members, sizes that fit the file)
and any other well-formed zip: a torch.save checkpoint or a TorchScript module still reaches torch's reader,
which says what it is.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from typing import IO

from ..errors import InputFormatError

#: the members of an AOTInductor package, which ``torch.export.load`` extracts and loads as native code
AOTI_DIR = "data/aotinductor/"
#: bytes read from a member at a time while its CRC is checked
CHUNK = 1 << 20
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
        _check_zip(f, limit, path)
    finally:
        f.seek(0)


def _check_zip(f: IO[bytes], limit: int, where: str, total: int = 0, inner: bool = False) -> int:
    """``check_archive`` of the zip in ``f`` (``where``: the file, or ``FILE, member M`` for a nested zip), whose
    members' declared sizes add to ``total`` (those of the zips around it and before it); returns the new total.
    ``inner``: a zip in a member of the .pt2, whose own members are not unpacked in turn."""
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, UnicodeDecodeError) as exc:
        if inner:   # (a member that only starts like a zip: a raw weight whose first int32 is 67324752)
            return total
        raise InputFormatError(f"{where}: not a torch.export program ({type(exc).__name__}: {exc})") from None
    with archive:
        infos = archive.infolist()
        total = _check_members(infos, where, limit, total, inner)
        for info in infos:   # (one level down only: torch unpacks a member's archive, never one inside that)
            nested = None if info.is_dir() else _read_checked(archive, info, where, unpack=not inner)
            if nested is not None:
                with nested:
                    total = _check_zip(nested, limit, f"{where}, member {info.filename!r}", total, inner=True)
    return total


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
