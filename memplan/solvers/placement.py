"""Finding room for one buffer among the blocks it must not overlap: the step every heuristic shares."""

from __future__ import annotations


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def gaps(blocks: list[tuple[int, int]], alignment: int) -> list[tuple[int, int]]:
    """Free aligned ``(start, end)`` gaps between ``(start, end)`` blocks; the last is open (end -1)."""
    blocks.sort()
    out = []
    cursor = 0
    for s, e in blocks:
        if s > cursor:
            out.append((cursor, s))
        cursor = max(cursor, _align(e, alignment))
    out.append((cursor, -1))
    return out


def best_fit(blocks: list[tuple[int, int]], size: int, alignment: int) -> int:
    """Smallest interior gap that fits (lowest offset on ties), else the open tail (like ggml)."""
    best_off, best_len = -1, -1
    for s, e in gaps(blocks, alignment):
        if e < 0:
            return s if best_off < 0 else best_off
        length = e - s
        if length >= size and (best_off < 0 or length < best_len):
            best_off, best_len = s, length
    raise AssertionError("unreachable: gaps always ends with the open tail")


def first_fit(blocks: list[tuple[int, int]], size: int, alignment: int) -> int:
    """Lowest offset that fits (TFLite's greedy-by-size placement, generalised)."""
    for s, e in gaps(blocks, alignment):
        if e < 0 or e - s >= size:
            return s
    raise AssertionError("unreachable")


def fits_at(blocks: list[tuple[int, int]], offset: int, size: int) -> bool:
    end = offset + size
    return all(e <= offset or s >= end for s, e in blocks)
