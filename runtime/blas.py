"""Finds the CBLAS routines numpy ships (scipy-openblas, ILP64: GEMM, GEMV and
SYRK for float32/float64) so compiled code can call them directly; absent BLAS
means codegen emits its own loops."""
from __future__ import annotations

import ctypes
import glob
import os

_CANDIDATES = {f"jf_cblas_{p}{routine}": (f"scipy_cblas_{p}{routine}64_", f"cblas_{p}{routine}64_")
               for p in "sd" for routine in ("gemm", "gemv", "syrk")}
_cache: dict = {}


def blas_symbols() -> dict:
    """{'jf_cblas_sgemm': address, 'jf_cblas_dgemm': address} or {} when none is found."""
    if "symbols" in _cache:
        return _cache["symbols"]
    symbols = {}
    if os.environ.get("JITFLOW_BLAS", "1") != "0":
        import numpy
        libdir = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*.so"))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            found = {}
            for ours, names in _CANDIDATES.items():
                for name in names:   # ILP64 names only: our ABI passes 64-bit ints
                    if hasattr(lib, name):
                        found[ours] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                        break
            if len(found) == len(_CANDIDATES):
                symbols = found
                _cache["lib"] = lib
                break
    _cache["symbols"] = symbols
    return symbols
