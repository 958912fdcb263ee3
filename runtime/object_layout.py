"""The numpy-object memory layout that compiled code relies on (the runtime's calling convention).

Buffers of these kinds reach the entry point as `PyArrayObject *` (one slot each); generated code
loads the array's data pointer from NDARRAY_DATA_OFFSET bytes into the object (PyObject_HEAD:
refcount and type, then `char *data`). runtime/executable.py checks at import that this numpy keeps
the pointer there; codegen/cpu.py emits the loads from these constants.
"""
from __future__ import annotations

BOXED_KINDS = ("param", "var", "output")   # buffer kinds passed as numpy array objects
NDARRAY_DATA_OFFSET = 16   # PyArrayObject: PyObject_HEAD (refcount, type), then `char *data`
