"""The one place where arrays are made fit for compiled code.

Compiled kernels read (and, for variables, write) a numpy array through its raw
data pointer as a dense C-order block of native-endian elements. numpy arrays
handed in by users may be anything else: Fortran-ordered (`w.T`, `torch
weight.numpy().T`), strided views (`x[:, ::2]`), byte-swapped (`>f4` from a file
or a network), misaligned (a view into a byte buffer) or read-only (`np.load(...,
mmap_mode='r')`, `np.broadcast_to`). Every entry point that hands an array to
native code (Session feeds, `Variable.load`, `Saver.restore`, Keras weights,
tf.data elements) goes through one of these two functions:

- `native_array(value, dtype)`: an array to be READ by compiled code. Returns
  `value` itself when it already is a C-contiguous, aligned, native-endian
  ndarray of `dtype` (read-only is fine), otherwise a converted copy.
- `owned_native_array(value, dtype)`: an array compiled code WRITES into (a
  variable's value in a Session). Always a fresh, writable copy that aliases
  nothing the caller holds.
"""
from __future__ import annotations

import numpy as np


def native_dtype(dtype) -> np.dtype:
    """`dtype` in the machine's byte order ('>f4' -> float32 on x86)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def native_array(value, dtype=None) -> np.ndarray:
    """`value` as a C-contiguous, aligned, native-endian ndarray of `dtype` (default: its own
    dtype in native byte order); no copy when it already is one. For data compiled code reads."""
    target = None if dtype is None else native_dtype(dtype)
    if type(value) is np.ndarray:
        if target is None:
            target = native_dtype(value.dtype)
        if value.dtype == target and value.dtype.isnative:
            flags = value.flags
            if flags.c_contiguous and flags.aligned:
                return value
    array = np.asarray(value)      # lists, scalars, ndarray subclasses (np.matrix, memmap) -> base ndarray
    if target is None:
        target = native_dtype(array.dtype)
    # np.array(order="C") always returns a fresh, aligned, C-ordered array in the target byte order
    return np.array(array, dtype=target, order="C", copy=True)


def owned_native_array(value, dtype=None) -> np.ndarray:
    """A fresh, writable, C-contiguous, aligned, native-endian copy of `value` (as `dtype`). For data
    compiled code writes in place (variable values): it never aliases the caller's array."""
    array = np.asarray(value)
    target = native_dtype(array.dtype if dtype is None else dtype)
    return np.array(array, dtype=target, order="C", copy=True)
