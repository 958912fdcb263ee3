"""Large constants in canonical IR text (the kernel-cache key): hashed, or set aside.

`canonical=True` prints an array of more than DENSE_LIMIT elements as `sha256<f32[784,512]: ...>`,
the digest of its bytes. `canonical=LargeArrays()` (a collector) prints it as
`array<f32[784,512]: #i>` instead, its position among the function's large arrays, and appends
the array to the collector: the text then describes the computation's structure without
hashing megabytes of values (W4's initializer: ~1 ms of sha256 on every warm start).

runtime/build.py keys the disk cache by that structural text: the object code never depends on
the values of a constant with more than one element (the schedule gives such a constant a CONST
buffer, read through its slot pointer at run time; only 1-element constants, always printed in
full, become literals in the code). The executable, which owns its constants, is told apart from
others of the same structure by `values_digest`, computed only when two of them meet in the
process's memory cache.
"""
from __future__ import annotations

import hashlib

import numpy as np


class LargeArrays(list):
    """The large arrays of a canonical print, in print order (see the module docstring). Always
    true, so that it can stand for `canonical=True` wherever the printer tests it."""

    def __bool__(self) -> bool:
        return True


def sha256_of(array: np.ndarray, np_dtype) -> str:
    """The digest of the array's elements as `np_dtype` (little-endian), C order, hashed in place."""
    contiguous = np.ascontiguousarray(array, dtype=np_dtype)
    return hashlib.sha256(memoryview(contiguous).cast("B")).hexdigest()


def printed_dtype(array: np.ndarray):
    """The dtype the canonical printer hashes an array as (printer.py format_array)."""
    from .types import as_dtype
    return as_dtype(array.dtype).np.newbyteorder("<")


def values_digest(arrays) -> str:
    """One digest of the values of `arrays` (a LargeArrays, in print order): with the structural
    text, which gives each one's dtype and shape, it identifies the function as `canonical=True` does."""
    outer = hashlib.sha256()
    for array in arrays:
        outer.update(sha256_of(array, printed_dtype(array)).encode())
    return outer.hexdigest()
