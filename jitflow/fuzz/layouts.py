"""Memory layouts of the arrays a case hands to native code: the same values as the C-ordered,
native-endian, writable array the oracle sees, but Fortran-ordered, transposed views, strided
or reversed views, byte-swapped (`>f4` on little-endian machines), read-only, or Python lists.
A compiled result that depends on the layout (a copy that keeps F order, a cache keyed on
`dtype.num`) is a silent wrong answer; the cases of issue 15 items 2 and 3.
"""
from __future__ import annotations

import numpy as np

# name -> whether a @jit argument may use it (a Python list has no dtype: @jit infers one)
LAYOUTS = {"fortran": True, "transposed": True, "strided": True, "reversed": True, "byteswap": True,
           "readonly": True, "byteswap+fortran": True, "strided+readonly": True, "byteswap+reversed": True,
           "list": False}


def _one(array: np.ndarray, name: str):
    a = np.asarray(array)
    if name == "fortran":
        return np.asfortranarray(a)
    if name == "transposed":       # a view of a transposed C array: strides in reverse order
        return np.ascontiguousarray(a.T).T
    if name == "strided":          # every other element of a larger buffer, along every axis
        if a.ndim == 0:
            return a
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if name == "reversed":         # negative strides
        if a.ndim == 0:
            return a
        return np.flip(np.ascontiguousarray(np.flip(a)))
    if name == "byteswap":         # the other byte order, same values
        return a.astype(a.dtype.newbyteorder("S"))
    if name == "readonly":
        out = a.view()                 # keeps the strides of what it views
        out.flags.writeable = False
        return out
    if name == "list":
        return a.tolist()
    raise ValueError(f"unknown fuzz layout {name!r}")


def with_layout(array, name: str):
    """`array`'s values in layout `name` ('byteswap+fortran': both, applied left to right)."""
    out = np.asarray(array)
    parts = name.split("+")
    for part in parts:
        out = _one(out, part)
    return out


def layouts_for(array, jit: bool) -> tuple:
    """The layouts that change something for this array (0-d arrays and bools have fewer)."""
    a = np.asarray(array)
    names = [n for n, ok_in_jit in LAYOUTS.items() if ok_in_jit or not jit]
    if a.ndim < 2 or a.size < 2:
        names = [n for n in names if n not in ("fortran", "transposed", "byteswap+fortran")]
    if a.ndim == 0:
        names = [n for n in names if "strided" not in n and "reversed" not in n]
    if a.size == 0:                 # a nested list of an empty array loses its trailing dims
        names = [n for n in names if n != "list"]
    if a.dtype.itemsize == 1:
        names = [n for n in names if "byteswap" not in n] or ["readonly"]
    return tuple(names)
