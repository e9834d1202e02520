"""A walk over the top-level fields of a protobuf file, reading only their tags and lengths.

Why: protobuf can only parse a model held whole in memory, so ``memplan import`` of a 2 GB file that is no model
(a sparse file of zeros, a disk image, a truncated download) read all of it first: 2 GB of memory and 14 s before
"not a readable ONNX model". Every protobuf message is a sequence of (tag, value) fields whose tags and lengths say
where the next field starts; a ModelProto has a handful of top-level fields (``ir_version``, ``opset_import``, the
``graph``, ...), so checking that they tile the file exactly costs a few small reads and refuses such a file (a zero
byte is no tag; a length past the end is a truncation) before anything is loaded. What passes is parsed by protobuf
as before: this is a necessary condition, never a reason to accept.
"""

from __future__ import annotations

from typing import BinaryIO

#: protobuf's largest field number (2^29 - 1)
_MAX_FIELD = (1 << 29) - 1
#: the top-level fields walked at most: past them the rest is left to protobuf. Why: a field is a few Python steps
#: (~1 us each), so a file of many tiny fields (``08 01`` repeated: a valid message, ``ir_version`` over and
#: over) took 2.3 s to walk 4 MB that protobuf parses in 10 ms (a 2 GB one: ~20 minutes); a model has a
#: handful of top-level fields (its local functions and metadata entries aside), so this bound never cuts a real one
MAX_FIELDS = 1 << 16
#: wire type -> the bytes its value takes, for the two fixed-width ones (a varint and a length prefix say their own)
_FIXED = {1: 8, 5: 4}


def _varint(f: BinaryIO) -> int | None:
    """The varint at ``f``'s position (None where the file ends inside it or it runs past 10 bytes)."""
    value = 0
    for shift in range(0, 70, 7):
        b = f.read(1)
        if not b:
            return None
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
    return None


def top_level_trouble(f: BinaryIO, size: int) -> str | None:
    """Why the ``size`` bytes of the open binary file ``f`` (from its start) are no protobuf message, or None.

    Only top-level fields are walked (a length-delimited one is skipped by its length, not looked into), the first
    ``MAX_FIELDS`` of them (None past them: protobuf judges the rest); groups (wire types 3 and 4, which no ONNX
    message has) are refused. ``f`` is left at an unspecified position."""
    f.seek(0)
    pos = 0
    for _ in range(MAX_FIELDS):
        if pos >= size:
            break
        tag = _varint(f)
        if tag is None:
            return f"at byte {pos}: the file ends inside a field's tag"
        field, wire = tag >> 3, tag & 7
        if not 1 <= field <= _MAX_FIELD:
            return f"at byte {pos}: field number {field} (a protobuf field is numbered 1..{_MAX_FIELD})"
        if wire == 0:
            if _varint(f) is None:
                return f"at byte {pos}: field {field}'s integer value is cut short or over 10 bytes"
        elif wire == 2:
            n = _varint(f)
            if n is None:
                return f"at byte {pos}: field {field}'s length is cut short or over 10 bytes"
            start = f.tell()
            if n > size - start:
                return (f"at byte {pos}: field {field} says it holds {n} bytes, but the file ends {size - start} "
                        "bytes later (cut short?)")
            f.seek(start + n)
        elif wire in _FIXED:
            if f.tell() + _FIXED[wire] > size:
                return f"at byte {pos}: the file ends inside field {field}'s value"
            f.seek(f.tell() + _FIXED[wire])
        else:
            return f"at byte {pos}: field {field} has wire type {wire}, which no ONNX message uses"
        pos = f.tell()
    return None


#: protobuf's limit of messages nested in one another (Python's and onnxruntime's C++ parser): deeper is refused
NESTING_LIMIT = 100

#: (message, field number) -> the message that field holds, along the paths an ONNX model nests its subgraphs by:
#: the model's graph and local functions, their nodes, a node's attributes, an attribute's graph(s)
_NESTS = {("model", 7): "graph", ("model", 25): "function", ("graph", 1): "node", ("function", 7): "node",
          ("node", 5): "attribute", ("attribute", 6): "graph", ("attribute", 11): "graph"}


def _fields(data: bytes, start: int, end: int):
    """``(field, wire, value start, value end)`` of the fields of the message ``data[start:end]``; ends early at a
    field it cannot read (the parse's own error stands then)."""
    pos = start
    while pos < end:
        tag, pos = _varint_at(data, pos, end)
        if tag is None:
            return
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint_at(data, pos, end)
            if pos is None:
                return
            continue
        if wire == 2:
            n, at = _varint_at(data, pos, end)
            if n is None or at + n > end:
                return
            yield field, wire, at, at + n
            pos = at + n
        elif wire in _FIXED:
            pos += _FIXED[wire]
        else:
            return


def _varint_at(data: bytes, pos: int, end: int) -> tuple[int | None, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= end:
            return None, pos
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
    return None, pos


def nesting_depth(data: bytes) -> int:
    """How deep the messages of the ONNX model ``data`` nest along its subgraphs (the model 1, its graph 2, a node 3,
    its attribute 4, that attribute's graph 5...). Why: a model whose If / Loop bodies nest past ``NESTING_LIMIT``
    fails protobuf's parse with "Error parsing message", as a corrupt file does; its refusal should say which.
    Walked without recursion (a stack of spans), only after such a failure."""
    deepest = 0
    stack = [("model", 0, len(data), 1)]
    while stack:
        kind, start, end, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > NESTING_LIMIT + 1:
            continue
        for field, _wire, a, b in _fields(data, start, end):
            child = _NESTS.get((kind, field))
            if child is not None:
                stack.append((child, a, b, depth + 1))
    return deepest
