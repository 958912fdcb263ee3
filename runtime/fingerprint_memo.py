"""A memo of the compiler fingerprint (fingerprint.py) keyed by the covered files' stat data, so a
process whose covered code has not changed since the memo was written reads one small file instead
of reading and hashing every covered module (~1 ms of the first compile of each process, W8).

The key is a sha256 over each covered file's module name, path, size, mtime_ns, ctime_ns and inode
(what make and git trust to say a file is unchanged). A memo is written only when every covered file
is older than RACY_SECONDS: a file edited twice within one timestamp tick of the memo's writing
could otherwise keep its stat data with new bytes (git's "racily clean" rule); then nothing is
memoized and the fingerprint is hashed as before. Files without a path (a zip import) disable the
memo. It lives in the disk kernel cache (`<cache>/v1/fingerprint/<key>`), written atomically, and is
used only when that cache is enabled; a damaged memo is ignored and rewritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time

RACY_SECONDS = 2.0


def stat_key(files: dict) -> str | None:
    """The memo key of {module name: resource}, or None when the memo must not be used."""
    digest = hashlib.sha256(b"jitflow-fingerprint-memo-v1\0")
    newest = time.time_ns() - int(RACY_SECONDS * 1e9)
    racy = False
    for name in sorted(files):
        try:
            path = os.fspath(files[name])
            st = os.stat(path)
        except (TypeError, OSError):
            return None
        racy = racy or st.st_mtime_ns > newest or st.st_ctime_ns > newest
        digest.update(f"{name}\0{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
    return "racy:" + digest.hexdigest() if racy else digest.hexdigest()


def _folder():
    from .kernel_cache import LAYOUT_VERSION, cache_root, enabled
    return cache_root() / LAYOUT_VERSION / "fingerprint" if enabled() else None


def load(key: str | None) -> dict | None:
    """{'digest', 'modules'} memoized under `key`, or None."""
    folder = _folder()
    if key is None or key.startswith("racy:") or folder is None:
        return None
    try:
        value = json.loads((folder / key).read_text())
    except (OSError, ValueError):
        return None
    digest, modules = value.get("digest") if isinstance(value, dict) else None, value.get("modules") \
        if isinstance(value, dict) else None
    if not (isinstance(digest, str) and len(digest) == 64 and isinstance(modules, list)
            and all(isinstance(m, str) for m in modules)):
        return None
    return {"digest": digest, "modules": modules}


def store(key: str | None, value: dict):
    """Writes the memo (atomically) unless `key` says the files are too new to trust their stat data."""
    folder = _folder()
    if key is None or key.startswith("racy:") or folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        with os.fdopen(handle, "w") as out:
            json.dump({"digest": value["digest"], "modules": value["modules"]}, out)
        os.replace(temp, folder / key)
    except OSError:
        pass            # an unwritable cache: the fingerprint is hashed each time, as without a memo
