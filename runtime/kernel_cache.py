"""The persistent kernel cache: object code on disk, keyed by a content hash.

Key parts (each logged in meta.json, so `python -m jitflow cache info` can show
them): the canonical IR text handed to codegen (large constants as their dtype and shape only:
the code reads them through pointers; see jitflow/ir/array_digest.py), the target (triple, CPU name
and features), the toolchain (llvmlite and LLVM versions), the jitflow version,
a fingerprint of the installed compiler's code (fingerprint.py: codegen, runtime,
ops, passes, ir, lowering; found from the imported packages), and whether
a BLAS was linked. Never a Python id, path, line number or timestamp.

Layout: `$JITFLOW_CACHE_DIR/v1/<key[:2]>/<key>/{kernel.o, meta.json}`. Entries
are written into a temporary directory and renamed into place (atomic; when two
processes race, the first rename wins and the other is discarded). On read the
metadata is checked as strictly as the object: meta.json carries its own sha256
(`meta_sha256`, over the rest of its canonical JSON) and every field the loader
uses is type-checked (key, object_sha256, object_bytes, imports, parts); then
the object's sha256 and size are checked against it. An entry that fails any
check (bad JSON, valid JSON with damaged or wrongly typed fields, a missing or
truncated meta.json or kernel.o) is deleted with a warning and recompiled, and
the fresh build is stored in its place: never a crash, never a loop of
recompiles that store nothing. An unwritable cache directory disables the disk
level for the process, with one warning.
`JITFLOW_CACHE=0` disables it; `JITFLOW_CACHE_DIR` moves it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import threading
import warnings
from pathlib import Path

LAYOUT_VERSION = "v1"
_warned: set = set()
_lock = threading.Lock()


class CacheWarning(UserWarning):
    """The disk cache had to skip or repair something."""


def _warn_once(tag: str, message: str):
    with _lock:
        if tag in _warned:
            return
        _warned.add(tag)
    warnings.warn(message, CacheWarning, stacklevel=3)


def enabled() -> bool:
    return os.environ.get("JITFLOW_CACHE", "1") not in ("0", "false", "off", "")


def cache_root() -> Path:
    explicit = os.environ.get("JITFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jitflow"


def compiler_fingerprint() -> str:
    """sha256 over the installed code that decides what is generated (see fingerprint.py)."""
    from .fingerprint import compiler_fingerprint as fingerprint
    return fingerprint()


def make_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def meta_digest(meta: dict) -> str:
    """sha256 of an entry's metadata (canonical JSON), without its own `meta_sha256` field."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _is_hex_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def check_meta(meta, key: str):
    """Raises ValueError unless `meta` is a well-formed, untampered entry's metadata for `key`."""
    if not isinstance(meta, dict):
        raise ValueError(f"meta.json holds a {type(meta).__name__}, not an object")
    if not _is_hex_digest(meta.get("meta_sha256")):
        raise ValueError("meta.json has no valid meta_sha256")
    if meta_digest(meta) != meta["meta_sha256"]:
        raise ValueError("meta.json checksum mismatch")
    if meta.get("key") != key:
        raise ValueError("meta.json belongs to another key")
    if not _is_hex_digest(meta.get("object_sha256")):
        raise ValueError("object_sha256 is missing or not a sha256")
    size = meta.get("object_bytes")
    if type(size) is not int or size < 0:
        raise ValueError("object_bytes is missing or not a non-negative integer")
    imports = meta.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(name, str) and name for name in imports):
        raise ValueError("imports is not a list of symbol names")
    if not isinstance(meta.get("parts", {}), dict):
        raise ValueError("parts is not an object")


class DiskCache:
    def __init__(self, root: Path | None = None):
        self.root = (root or cache_root()) / LAYOUT_VERSION
        self.usable = True

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def load(self, key: str):
        """(object bytes, meta) or None; damaged entries are removed (with a warning)."""
        if not self.usable:
            return None
        entry = self._entry(key)
        meta_path, object_path = entry / "meta.json", entry / "kernel.o"
        try:
            if not meta_path.exists() and not self._wait_for_store(entry):
                if entry.exists():      # entries appear whole (rename): a missing meta.json is damage
                    raise ValueError("meta.json is missing")
                return None
            meta = json.loads(meta_path.read_bytes().decode("utf-8"))
            check_meta(meta, key)
            data = object_path.read_bytes()
            if len(data) != meta["object_bytes"] or hashlib.sha256(data).hexdigest() != meta["object_sha256"]:
                raise ValueError("object checksum mismatch")
        except Exception as exc:        # noqa: BLE001 - whatever is wrong on disk, the cure is a rebuild
            self.discard(key, f"{type(exc).__name__}: {exc}")
            return None
        try:
            os.utime(meta_path)   # recency for eviction
        except OSError:
            pass
        return data, meta

    @staticmethod
    def _wait_for_store(entry: Path, seconds: float = 0.25) -> bool:
        """True once `entry` is complete, when a store into its folder is in flight (a `.tmp-` staging or
        `.old-` replaced folder beside it: the optimized tier replacing a quick one moves the old entry
        aside before renaming the new one in); False at once when none is."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                busy = any(p.name.startswith((".tmp-", ".old-")) for p in entry.parent.iterdir())
            except OSError:
                return False
            if not busy or time.monotonic() > deadline:
                return (entry / "meta.json").exists()
            time.sleep(0.002)
            if (entry / "meta.json").exists():
                return True

    def discard(self, key: str, reason: str):
        """Removes a damaged entry (warning once per key) so the next store rewrites it."""
        entry = self._entry(key)
        _warn_once(f"corrupt:{key}", f"jitflow: kernel cache entry {entry} is corrupt or truncated ({reason}); "
                                     f"recompiling")
        shutil.rmtree(entry, ignore_errors=True)

    def store(self, key: str, object_code: bytes, meta: dict, replace: bool = False) -> bool:
        """Writes an entry atomically. A complete entry already there is kept, unless `replace` (the
        optimized object replacing a quick-tier one, runtime/tiered_build.py): the new entry is staged
        first and the old one moved aside just before the rename, so a reader always sees a `.tmp-` or
        `.old-` folder while the entry is briefly absent (`_wait_for_store`)."""
        if not self.usable:
            return False
        entry = self._entry(key)
        if entry.exists() and not replace and (entry / "meta.json").is_file() and (entry / "kernel.o").is_file():
            return True
        meta = dict(meta, key=key, object_sha256=hashlib.sha256(object_code).hexdigest(),
                    object_bytes=len(object_code))
        meta["meta_sha256"] = meta_digest(meta)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
            (staging / "kernel.o").write_bytes(object_code)
            (staging / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        except OSError as exc:
            self.usable = False
            _warn_once("unwritable", f"jitflow: the kernel cache directory {self.root} is not writable ({exc}); "
                                     f"continuing without the disk cache")
            return False
        aside = None
        if entry.exists():
            try:
                aside = Path(tempfile.mkdtemp(prefix=".old-", dir=entry.parent))
                os.rename(entry, aside / "entry")
            except OSError:
                shutil.rmtree(entry, ignore_errors=True)     # a damaged leftover: replace it
        try:
            os.rename(staging, entry)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)   # another process stored it first
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return True

    def entries(self):
        if not self.root.exists():
            return []
        return [p for p in self.root.glob("??/*") if p.is_dir() and not p.name.startswith((".tmp-", ".old-"))]

    def info(self) -> dict:
        entries = self.entries()
        size = sum(f.stat().st_size for e in entries for f in e.iterdir() if f.is_file())
        return {"directory": str(self.root), "entries": len(entries), "bytes": size, "enabled": enabled()}

    def clear(self) -> int:
        entries = self.entries()
        for entry in entries:
            shutil.rmtree(entry, ignore_errors=True)
        return len(entries)


_disk: list = []


def disk_cache() -> DiskCache | None:
    if not enabled():
        return None
    root = cache_root()
    if not _disk or _disk[0].root != root / LAYOUT_VERSION:
        _disk[:] = [DiskCache(root)]
    return _disk[0]
