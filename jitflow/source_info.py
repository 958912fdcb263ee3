"""Finds the user's source line that created a node: the first stack frame
outside jitflow's own files (jitflow/, codegen/, runtime/)."""
from __future__ import annotations

import linecache
import os
import sys

from .ir.core import SourceLoc

_PACKAGE_ROOT = os.path.dirname(os.path.abspath(__file__))
_OWN_DIRS = tuple(os.path.join(os.path.dirname(_PACKAGE_ROOT), d) + os.sep
                  for d in ("jitflow", "codegen", "runtime"))


_OWN_FILES: dict[str, bool] = {}     # filename -> _is_own (a code object's filename never changes)


def _is_own(filename: str) -> bool:
    own = _OWN_FILES.get(filename)
    if own is None:
        own = _OWN_FILES[filename] = os.path.abspath(filename).startswith(_OWN_DIRS) or \
            filename.startswith("<frozen")
    return own


def user_location() -> SourceLoc | None:
    frame = sys._getframe(1)
    while frame is not None and _is_own(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return None
    filename, line = frame.f_code.co_filename, frame.f_lineno
    return SourceLoc(filename, line, linecache.getline(filename, line).strip())
