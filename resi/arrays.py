"""What the vectorized checks need of arrow arrays, in one place: one contiguous array, its values as numpy,
and a tally of its values."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array of ``values`` (chunks joined; an array as it is)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return contiguous(values).to_numpy(zero_copy_only=False)


def tally(values: pa.Array | pa.ChunkedArray) -> Counter:
    """Value -> rows that have it (nulls not counted)."""
    counted = pc.value_counts(values.drop_null())
    return Counter(dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())))
