"""The compiler fingerprint: a sha256 over the installed code that decides what native code is generated.

It is one part of every kernel-cache key (kernel_cache.py, build.py), so a changed code generator, op
record, pass or runtime calling convention never reuses object code that an older version compiled.

What is covered is found from the packages as Python imported them, never from a source tree that may
sit next to them: the files inside each covered package (`importlib.resources.files`, which works for an
editable install, a wheel in site-packages and a zip alike), recursively, plus the file of every loaded
module under a covered name that the walk did not list. Covered: `jitflow.codegen`, `jitflow.runtime`,
`jitflow.ops`, `jitflow.passes`, `jitflow.ir` (whole packages) and `jitflow.framework.lowering`. A module
counts by its source (`.py`); one installed without source counts by its bytecode (`.pyc`). Each file
enters the hash under its dotted module name (not its path), so the same code installed in two places
gives the same fingerprint and shares cache entries.

Computed once per process (about 2 ms for the ~60 files of today, measured by tests/test_fingerprint_wheel.py;
see its timing test) and cached. If a covered package yields no file at all (an unusual loader), the fingerprint
takes a per-process random part and warns: the disk cache then misses instead of risking stale code.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import os
import sys
import threading
import warnings

COVERED_PACKAGES = ("jitflow.codegen", "jitflow.runtime", "jitflow.ops", "jitflow.passes", "jitflow.ir")
COVERED_MODULES = ("jitflow.framework.lowering",)

_lock = threading.Lock()
_cached: dict = {}


def _dotted(package: str, parts: list, stem: str) -> str:
    return ".".join([package] + parts + ([] if stem == "__init__" else [stem]))


def _walk(package: str, node, parts: list, out: dict):
    """Adds {module name: resource} for the .py (or source-less .pyc) files under `node`."""
    try:
        children = _children(node)
    except (OSError, NotADirectoryError):
        return
    names = {child.name for child in children}
    for child in children:
        name = child.name
        if child.is_dir():
            if name != "__pycache__" and not name.startswith("."):
                _walk(package, child, parts + [name], out)
        elif name.endswith(".py"):
            out[_dotted(package, parts, name[:-3])] = child
        elif name.endswith(".pyc") and name[:-1] not in names:          # installed without source
            out.setdefault(_dotted(package, parts, name[:-4]), child)


def _children(node) -> list:
    """The entries of a package directory: os.scandir for a plain folder (one call, types cached),
    the resource API otherwise (a zip)."""
    if isinstance(node, _PathResource) or type(node).__module__ == "pathlib":
        with os.scandir(os.fspath(node)) as entries:
            return [_PathResource(entry.path, entry.is_dir()) for entry in entries]
    return list(node.iterdir())


def _module_file(module) -> str | None:
    path = getattr(module, "__file__", None)
    return path if path and os.path.isfile(path) else None


def covered_files() -> dict:
    """{dotted module name: resource (a path-like with read_bytes)} of everything the fingerprint hashes."""
    files: dict = {}
    for package in COVERED_PACKAGES:
        module = importlib.import_module(package)
        before = len(files)
        _walk(package, importlib.resources.files(module), [], files)
        if len(files) == before and _module_file(module):
            files[package] = _PathResource(module.__file__)
    for name in COVERED_MODULES:
        module = importlib.import_module(name)
        if _module_file(module):
            files[name] = _PathResource(module.__file__)
    prefixes = tuple(p + "." for p in COVERED_PACKAGES)
    for name, module in list(sys.modules.items()):            # loaded, but not found by the walk
        if (name in COVERED_PACKAGES or name.startswith(prefixes)) and name not in files:
            path = _module_file(module)
            if path:
                files[name] = _PathResource(path)
    return files


class _PathResource:
    """A plain file, with the two methods the walk's resources have."""

    def __init__(self, path: str, directory: bool = False):
        self.path = path
        self.name = os.path.basename(path)
        self._directory = directory

    def is_dir(self) -> bool:
        return self._directory

    def iterdir(self):
        return iter(_children(self))

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()

    def __fspath__(self):
        return self.path


def _compute() -> dict:
    files = covered_files()
    from . import fingerprint_memo      # unchanged files since the last process: no reading and hashing
    memo_key = fingerprint_memo.stat_key(files)
    memo = fingerprint_memo.load(memo_key)
    if memo is not None:
        return memo
    result = _hash(files)
    if not result.pop("random", False):
        fingerprint_memo.store(memo_key, result)
    return result


def _hash(files: dict) -> dict:
    digest = hashlib.sha256(b"jitflow-compiler-fingerprint-v2\0")
    missing = [p for p in COVERED_PACKAGES if not any(n == p or n.startswith(p + ".") for n in files)]
    for name in sorted(files):
        data = files[name].read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    if missing:
        warnings.warn(f"jitflow: the compiler fingerprint found no code for {', '.join(missing)}; the disk "
                      f"kernel cache will not reuse entries from other processes", RuntimeWarning, stacklevel=3)
        digest.update(os.urandom(16))
    return {"digest": digest.hexdigest(), "modules": sorted(files), "random": bool(missing)}


def compiler_fingerprint() -> str:
    """sha256 (hex) over the covered modules' code; computed once per process."""
    digest = _cached.get("digest")
    return digest if digest is not None else fingerprint_info()["digest"]


def fingerprint_info() -> dict:
    """{'digest': hex sha256, 'modules': sorted dotted names of the covered modules}."""
    if not _cached:
        with _lock:
            if not _cached:
                _cached.update(_compute())
    return {"digest": _cached["digest"], "modules": list(_cached["modules"])}


def _reset_for_tests():
    with _lock:
        _cached.clear()
