"""`tf.gfile` (TF 1.x CamelCase names) and `tf.io.gfile` (snake_case names) on the local filesystem.

Host-side file I/O only (no graph ops): errors are TF's (`NotFoundError` for a missing path,
`AlreadyExistsError` when a copy/rename/mkdir target exists), `GFile` reads `str` in text modes and
`bytes` in binary modes, iterates by line, and works as a context manager.
"""
from __future__ import annotations

import glob as _glob
import os
import shutil

from .errors import AlreadyExistsError as _AlreadyExistsError
from .errors import NotFoundError as _NotFoundError
from .errors import UnsupportedError as _UnsupportedError


def _path(path) -> str:
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = path.decode()
    if "://" in path and not path.startswith("file://"):
        raise _UnsupportedError(f"tf.gfile: only local paths are supported, got {path!r}")
    return path[len("file://"):] if path.startswith("file://") else path


def _not_found(path, what="") -> _NotFoundError:
    return _NotFoundError(None, None, f"{path}{what}; No such file or directory")


def Exists(filename) -> bool:
    return os.path.exists(_path(filename))


def IsDirectory(dirname) -> bool:
    return os.path.isdir(_path(dirname))


def MakeDirs(dirname):
    """Creates `dirname` and its parents; an existing directory is fine."""
    os.makedirs(_path(dirname), exist_ok=True)


def MkDir(dirname):
    """Creates one directory; AlreadyExistsError when it exists, NotFoundError when its parent does not."""
    path = _path(dirname)
    try:
        os.mkdir(path)
    except FileExistsError:
        raise _AlreadyExistsError(None, None, f"{path}; File exists") from None
    except FileNotFoundError:
        raise _not_found(path) from None


def ListDirectory(dirname) -> list:
    """The entry names of `dirname` (no '.' / '..'); NotFoundError when it is not a directory."""
    path = _path(dirname)
    if not os.path.isdir(path):
        raise _not_found(path, " could not be found")
    return os.listdir(path)


def Glob(filename) -> list:
    """Paths matching the pattern (`*`, `?`, `[...]`); a list or tuple of patterns is allowed."""
    patterns = [filename] if isinstance(filename, (str, bytes, os.PathLike)) else list(filename)
    matches = []
    for pattern in patterns:
        matches.extend(_glob.glob(_path(pattern)))
    return matches


def Remove(filename):
    path = _path(filename)
    try:
        os.remove(path)
    except FileNotFoundError:
        raise _not_found(path) from None


def DeleteRecursively(dirname):
    """Deletes a directory tree (or a single file); NotFoundError when the path does not exist."""
    path = _path(dirname)
    if not os.path.exists(path):
        raise _not_found(path)
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _checked_pair(old, new, overwrite):
    """(source, target) paths of a copy or rename: TF's NotFound / AlreadyExists errors first."""
    src, dst = _path(old), _path(new)
    if not os.path.exists(src):
        raise _not_found(src)
    if not overwrite and os.path.exists(dst):
        raise _AlreadyExistsError(None, None, f"file already exists: {dst}")
    return src, dst


def Copy(oldpath, newpath, overwrite=False):
    shutil.copyfile(*_checked_pair(oldpath, newpath, overwrite))


def Rename(oldname, newname, overwrite=False):
    os.replace(*_checked_pair(oldname, newname, overwrite))


class FileStatistics:
    """What `Stat` returns: `length` (bytes), `mtime_nsec`, `is_directory`."""

    def __init__(self, length=None, mtime_nsec=None, is_directory=None):
        self.length, self.mtime_nsec, self.is_directory = length, mtime_nsec, is_directory

    def __repr__(self):
        return (f"FileStatistics(length={self.length}, mtime_nsec={self.mtime_nsec}, "
                f"is_directory={self.is_directory})")


def Stat(filename) -> FileStatistics:
    path = _path(filename)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _not_found(path) from None
    return FileStatistics(st.st_size, st.st_mtime_ns, os.path.isdir(path))


def Walk(top, in_order=True):
    """(dirname, subdirectories, files) for each directory under `top`, top-down unless in_order=False;
    nothing when `top` does not exist."""
    top = _path(top)
    if not os.path.isdir(top):
        return
    yield from os.walk(top, topdown=bool(in_order))


class GFile:
    """A file object: `read(n=-1)`, `readline`, `readlines`, `write`, `seek`, `tell`, `size`, `flush`,
    `close`, iteration by line, `with`. Opening for reading a missing file raises NotFoundError."""

    def __init__(self, name, mode="r"):
        self.name = _path(name)
        if not mode or mode[0] not in "rwa" or any(c not in "rwab+" for c in mode):
            raise ValueError(f"mode {mode!r} not supported by GFile; use r, w, a, with optional b and +")
        self.mode = mode
        try:
            self._file = open(self.name, mode) if "b" in mode else open(self.name, mode, encoding="utf-8",
                                                                         newline="")
        except FileNotFoundError:
            raise _not_found(self.name) from None

    def read(self, n=-1):
        return self._file.read(-1 if n is None else n)

    def readline(self):
        return self._file.readline()

    def readlines(self):
        return self._file.readlines()

    def write(self, file_content):
        if "b" in self.mode and isinstance(file_content, str):
            file_content = file_content.encode()
        elif "b" not in self.mode and isinstance(file_content, (bytes, bytearray)):
            file_content = bytes(file_content).decode()
        self._file.write(file_content)

    def seek(self, offset=None, whence=0, position=None):
        if position is not None:
            offset = position
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def size(self):
        self._file.flush()
        return os.path.getsize(self.name)

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()

    @property
    def closed(self):
        return self._file.closed

    def __iter__(self):
        return self

    def __next__(self):
        line = self._file.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


Open = GFile
FastGFile = GFile


def _walk(top, topdown=True, onerror=None):
    """`tf.io.gfile.walk`: os.walk's (dirname, subdirs, files); `onerror` gets the OSError of a listing."""
    top = _path(top)
    if not os.path.isdir(top):
        return
    yield from os.walk(top, topdown=bool(topdown), onerror=onerror)


def _io_gfile_namespace():
    from .missing_names import Namespace
    return Namespace("tf.io.gfile", exists=Exists, isdir=IsDirectory, makedirs=MakeDirs, mkdir=MkDir,
                     listdir=ListDirectory, glob=Glob, remove=Remove, rmtree=DeleteRecursively, copy=Copy,
                     rename=Rename, stat=Stat, walk=_walk, GFile=GFile)


io_gfile = _io_gfile_namespace()     # tf.io.gfile

from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.gfile")  # PEP 562: a missing name says so
