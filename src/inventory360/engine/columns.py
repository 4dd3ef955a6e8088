"""Growable numpy columns indexed by dense ids (the engine's state storage)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class Columns:
    """Named numpy arrays that grow together; row ``i`` belongs to id ``i``."""

    def __init__(self, spec: dict[str, tuple[type, object]]) -> None:
        self._spec = spec
        self._cap = 1024
        self.size = 0
        self.data: dict[str, np.ndarray] = {
            name: np.full(self._cap, fill, dtype=dtype) for name, (dtype, fill) in spec.items()
        }

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def grow_to(self, size: int) -> None:
        """Make ids below ``size`` valid (new rows take each column's fill value)."""
        if size <= self._cap:
            self.size = max(self.size, size)
            return
        cap = max(size, self._cap * 2)
        for name, (dtype, fill) in self._spec.items():
            bigger: np.ndarray = np.full(cap, fill, dtype=dtype)
            bigger[: self.size] = self.data[name][: self.size]
            self.data[name] = bigger
        self._cap = cap
        self.size = size

    def view(self) -> dict[str, np.ndarray]:
        """The live part of every column (no copy)."""
        return {name: arr[: self.size] for name, arr in self.data.items()}


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array: its only chunk as it is, else its chunks concatenated.

    (``ChunkedArray.combine_chunks`` copies even a single chunk.)
    """
    if isinstance(col, pa.Array):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
