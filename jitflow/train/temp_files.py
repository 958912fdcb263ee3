"""Temporary files of atomic writes (checkpoints, meta graphs, the `checkpoint` state file,
Keras model directories): their names, and the removal of the ones a crashed writer left.

An atomic write puts its bytes in a temp file next to the target and renames it over the
target. A writer killed before the rename leaves the temp file behind. Temp names carry the
writer's pid: ``.<target basename>.pid<pid>.<random>.tmp``. A later save (or restore) of the
same target removes the leftovers of THAT target only: a temp file whose writer pid is no
longer running, or one older than `STALE_SECONDS` whatever its pid says (the pid may have
been reused, or the file was left by an older jitflow that did not record pids). A live
writer's temp file (a concurrent save in another process or thread) is never touched.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
import time

STALE_SECONDS = 3600.0      # a temp file this old belongs to nobody, whatever its pid
_PID_NAME = re.compile(r"^\.(?P<base>.+)\.pid(?P<pid>\d+)\.[^.]+\.tmp$")
_OLD_NAME = re.compile(r"^\.(?P<base>.+)\.[^.]+\.tmp$")        # before pids were recorded
_OLD_KERAS_NAME = re.compile(r"^\.tmp-[^.]+$")                  # keras saving before pids were recorded

_log = logging.getLogger("jitflow")


def make_temp(final_path: str) -> tuple[int, str]:
    """(fd, path) of a new temp file for an atomic write of `final_path`, in the same directory."""
    directory, base = os.path.split(final_path)
    return tempfile.mkstemp(prefix=f".{base}.pid{os.getpid()}.", suffix=".tmp", dir=directory or ".")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (True when unsure)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True        # it exists but belongs to someone else (or we cannot tell): keep its file
    return True


def _is_stale(path: str, pid: int | None, now: float) -> bool:
    try:
        age = now - os.stat(path).st_mtime
    except OSError:
        return False
    if age > STALE_SECONDS:
        return True
    return pid is not None and not pid_alive(pid)


def remove_stale_temps(directory: str, owns) -> list[str]:
    """Removes the stale temp files in `directory` whose target basename `owns(base)` accepts;
    returns their paths. Never raises (a cleanup must not fail a save)."""
    directory = directory or "."
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed, now = [], time.time()
    for name in names:
        if not name.endswith(".tmp") and not name.startswith(".tmp-"):
            continue
        match = _PID_NAME.match(name)
        if match:
            base, pid = match.group("base"), int(match.group("pid"))
        else:
            match = _OLD_NAME.match(name)
            if match:
                base, pid = match.group("base"), None
            elif _OLD_KERAS_NAME.match(name):
                base, pid = None, None       # an unnamed keras temp: only the owner of the directory claims it
            else:
                continue
        if not owns(base):
            continue
        path = os.path.join(directory, name)
        if not _is_stale(path, pid, now):
            continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            _log.warning("Ignoring: failed to remove the stale temporary file %s: %s", path, exc)
            continue
        removed.append(path)
    if removed:
        _log.info("Removed %d stale temporary file(s) of interrupted saves: %s", len(removed), ", ".join(removed))
    return removed


def checkpoint_owner(save_path: str, extra_names=()):
    """The `owns(base)` of a Saver's save path "<dir>/<stem>": the files of the checkpoints
    "<stem>" and "<stem>-<step>" (any suffix: data, index, meta) and the names in `extra_names`
    (the `checkpoint` state file)."""
    stem = os.path.basename(save_path)
    pattern = re.compile(re.escape(stem) + r"(-\d+)?\..+")
    extra = set(extra_names)

    def owns(base):
        return base is not None and (base in extra or pattern.fullmatch(base) is not None)
    return owns
