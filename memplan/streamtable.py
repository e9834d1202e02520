"""A (buffers x streams) table that holds one value (``fill``) in all but a few cells, stored by row (CSR).

Why: a buffer is accessed on a few streams, so its first and last access per stream (``Lifetimes.first`` and
``last``, ``HBOrder.first``) are ``NEVER`` or 0 nearly everywhere; as dense int32 tables they took 86 MiB each for
``layered_graph(20000)`` on 1,024 streams (48,000 accessed cells of 21.5 million) and were a plan's peak. Here they
take the accessed cells alone. The reads the library makes of them are by row (a buffer's streams), by cell, or of
every stored cell at once (``cells``); a dense copy (``toarray``) is for tests and small tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class StreamTable:
    """``shape`` (rows, streams) of ``fill`` but for row ``r``'s cells ``cols[ptr[r]:ptr[r + 1]]`` (ascending), which
    hold ``vals[ptr[r]:ptr[r + 1]]``. Read-only: its arrays are shared by every table sliced from it."""

    __slots__ = ("ptr", "cols", "vals", "shape", "fill", "__weakref__")

    def __init__(self, ptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], fill: Any) -> None:
        self.ptr, self.cols, self.vals = ptr, cols, vals
        self.shape = (int(shape[0]), int(shape[1]))
        self.fill = vals.dtype.type(fill)

    def __reduce__(self) -> tuple:
        """Pickle and copy as the constructor's arguments. Why: a class with ``__slots__`` and no ``__getstate__``
        pickles only from protocol 2, so a ``ReuseIndex`` (whose lifetimes hold two tables) failed under
        ``pickle.dumps(index, 0)`` / ``1`` ("a class that defines __slots__ without defining __getstate__ cannot be
        pickled"), where the graph, plan and every other memplan value pickle under any protocol."""
        return (StreamTable, (self.ptr, self.cols, self.vals, self.shape, self.fill))

    @classmethod
    def from_cells(cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int],
                   fill: Any) -> StreamTable:
        """The table of the cells ``(rows[k], cols[k])`` holding ``vals[k]``, each cell once, sorted by row and then
        column (as ``np.nonzero`` of a dense table lists them)."""
        ptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=ptr[1:])
        return cls(ptr, np.asarray(cols, dtype=_col_type(shape[1])), vals, shape, fill)

    @classmethod
    def from_dense(cls, table: np.ndarray, fill: Any) -> StreamTable:
        """The cells of ``table`` (2-D) that do not hold ``fill``."""
        rows, cols = np.nonzero(table != fill)
        return cls.from_cells(rows, cols, table[rows, cols], table.shape, fill)

    # ---- what numpy arrays answer too ----

    @property
    def dtype(self) -> np.dtype:
        return self.vals.dtype

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.ptr.nbytes + self.cols.nbytes + self.vals.nbytes

    def __len__(self) -> int:
        return self.shape[0]

    def toarray(self) -> np.ndarray:
        """The dense table (``shape`` cells: tests and small tables only)."""
        out = np.full(self.shape, self.fill, dtype=self.dtype)
        rows, cols, vals = self.cells()
        out[rows, cols] = vals
        return out

    def tolist(self) -> list:
        return self.toarray().tolist()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.toarray()
        return a if dtype is None else a.astype(dtype)

    def __eq__(self, other: object) -> bool:
        """The same table by value (``same``): a copy or a pickle of an ``HBOrder`` equals it (``values.by_value``)."""
        if not isinstance(other, StreamTable):
            return NotImplemented
        return self.same(other)

    def __hash__(self) -> int:
        return hash((self.shape, self.fill.item(), self.dtype.str, self.ptr.tobytes(), self.cols.tobytes(),
                     self.vals.tobytes()))

    def __repr__(self) -> str:
        return f"StreamTable(shape={self.shape}, cells={len(self.vals)}, fill={self.fill})"

    def __getitem__(self, key: Any) -> Any:
        """``t[r, s]`` a cell; ``t[:, s]`` a column and ``t[r]`` a row, dense; ``t[rows]`` (a slice, an index or bool
        array) the table of those rows, in that order."""
        if isinstance(key, tuple):
            r, s = key
            if isinstance(r, slice) and r == slice(None):
                return self.column(_index(s, self.shape[1]))
            return self.at(_index(r, self.shape[0]), _index(s, self.shape[1]))
        if isinstance(key, (int, np.integer)):
            return self.row(_index(key, self.shape[0]))
        return self.take(np.arange(self.shape[0])[key])

    # ---- reads by row, by cell, of every cell ----

    def row_cells(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``r``'s stored columns and their values."""
        lo, hi = int(self.ptr[r]), int(self.ptr[r + 1])
        return self.cols[lo:hi], self.vals[lo:hi]

    def row(self, r: int) -> np.ndarray:
        out = np.full(self.shape[1], self.fill, dtype=self.dtype)
        cols, vals = self.row_cells(r)
        out[cols] = vals
        return out

    def at(self, r: int, s: int) -> Any:
        cols, vals = self.row_cells(r)
        k = int(np.searchsorted(cols, s))
        return vals[k] if k < len(cols) and cols[k] == s else self.fill

    def column(self, s: int) -> np.ndarray:
        out = np.full(self.shape[0], self.fill, dtype=self.dtype)
        rows, cols, vals = self.cells()
        on = cols == s
        out[rows[on]] = vals[on]
        return out

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored cell: (rows, columns, values), by row and then column."""
        rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.ptr))
        return rows, self.cols, self.vals

    def take(self, rows: np.ndarray) -> StreamTable:
        """The table of ``rows`` (indices, in their order)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.ptr)[rows]
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        total = int(ptr[-1])
        at = np.repeat(self.ptr[rows] - ptr[:-1], counts) + np.arange(total, dtype=np.int64)
        return StreamTable(ptr, self.cols[at], self.vals[at], (len(rows), self.shape[1]), self.fill)

    def same(self, other: StreamTable) -> bool:
        """The same table (shape, type, fill and cells)."""
        return (self.shape == other.shape and self.dtype == other.dtype and self.fill == other.fill
                and np.array_equal(self.ptr, other.ptr) and np.array_equal(self.cols, other.cols)
                and np.array_equal(self.vals, other.vals))


def dense(table: np.ndarray | StreamTable) -> np.ndarray:
    """``table`` as a dense array (a ``StreamTable``'s ``toarray``; an array as it is)."""
    return table.toarray() if isinstance(table, StreamTable) else table


def accessed_cells(first: np.ndarray | StreamTable, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells of a ``first`` table (dense or not) below their stream's length ``lens[s]``: (rows, streams, values),
    by row and then stream, in int64."""
    if isinstance(first, StreamTable):
        rows, cols, vals = first.cells()
        cols = cols.astype(np.int64)
        on = vals < lens[cols]
        return rows[on], cols[on], vals[on].astype(np.int64)
    rows, cols = np.nonzero(first < lens)
    return rows, cols, first[rows, cols].astype(np.int64)


def _col_type(streams: int) -> type:
    return np.int16 if streams <= np.iinfo(np.int16).max else np.int32


def _index(i: Any, n: int) -> int:
    """``i`` as an index below ``n`` (negative from the end), IndexError as numpy's past either end."""
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for axis of size {n}")
    return i + n if i < 0 else i
