"""The `checkpoint` state file (TF's CheckpointState text format) and the
helpers that read it: `latest_checkpoint`, `get_checkpoint_state`,
`update_checkpoint_state`."""
from __future__ import annotations

import os
import re



from .checkpoint_files import STATE_FILENAME, _fsync_dir, _log, _remove, _write_temp, checkpoint_exists  # noqa: F401


class CheckpointState:
    """The contents of a `checkpoint` state file (TF's CheckpointState proto)."""

    def __init__(self, model_checkpoint_path="", all_model_checkpoint_paths=None):
        self.model_checkpoint_path = model_checkpoint_path
        self.all_model_checkpoint_paths = list(all_model_checkpoint_paths or [])

    def __eq__(self, other):
        return (isinstance(other, CheckpointState) and self.model_checkpoint_path == other.model_checkpoint_path
                and self.all_model_checkpoint_paths == other.all_model_checkpoint_paths)

    def __str__(self):
        lines = [f'model_checkpoint_path: "{_escape(self.model_checkpoint_path)}"']
        lines += [f'all_model_checkpoint_paths: "{_escape(p)}"' for p in self.all_model_checkpoint_paths]
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"CheckpointState({self.model_checkpoint_path!r}, {self.all_model_checkpoint_paths!r})"


_ESCAPES = {ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t", ord('"'): b'\\"', ord("'"): b"\\'",
            ord("\\"): b"\\\\"}
_UNESCAPES = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8, "f": 12, "v": 11, "?": 63}
_LINE = re.compile(r'^\s*([A-Za-z_]\w*)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')


def _escape(path: str) -> str:
    """Protobuf text-format (C) escaping of a path's bytes."""
    out = bytearray()
    for byte in os.fsencode(path):
        if byte in _ESCAPES:
            out += _ESCAPES[byte]
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    return out.decode("ascii")


def _unescape(text: str) -> str:
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        c = raw[i]
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        nxt = chr(raw[i + 1])
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt in "xX":
            j = i + 2
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise ValueError(f"bad escape in {text!r}")
            out.append(int(raw[i + 2:j], 16))
            i = j
        else:
            raise ValueError(f"bad escape \\{nxt} in {text!r}")
    return os.fsdecode(bytes(out))


def _parse_state(text: str) -> CheckpointState:
    state = CheckpointState()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number}: cannot parse {line!r}")
        field, quoted, bare = match.groups()
        if field == "model_checkpoint_path" and quoted is not None:
            state.model_checkpoint_path = _unescape(quoted)
        elif field == "all_model_checkpoint_paths" and quoted is not None:
            state.all_model_checkpoint_paths.append(_unescape(quoted))
        elif field in ("model_checkpoint_path", "all_model_checkpoint_paths"):
            raise ValueError(f"line {number}: {field} needs a quoted string")
        # other fields (TF's all_model_checkpoint_timestamps, last_preserved_timestamp) are ignored
    return state


def _state_path(checkpoint_dir, latest_filename=None) -> str:
    return os.path.join(os.fspath(checkpoint_dir), latest_filename or STATE_FILENAME)


def get_checkpoint_state(checkpoint_dir, latest_filename=None):
    """The CheckpointState of `<checkpoint_dir>/checkpoint`, with relative paths made relative
    to `checkpoint_dir`; None when the file does not exist or cannot be parsed."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    path = _state_path(checkpoint_dir, latest_filename)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.warning("%s: %s", type(exc).__name__, exc)
        return None
    try:
        state = _parse_state(text)
    except ValueError as exc:
        _log.warning("Cannot parse checkpoint state file %s: %s", path, exc)
        return None
    if not state.model_checkpoint_path:
        raise ValueError("Invalid checkpoint state loaded from " + checkpoint_dir)
    if not os.path.isabs(state.model_checkpoint_path):
        state.model_checkpoint_path = os.path.join(checkpoint_dir, state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [p if os.path.isabs(p) else os.path.join(checkpoint_dir, p)
                                        for p in state.all_model_checkpoint_paths]
    return state


def latest_checkpoint(checkpoint_dir, latest_filename=None):
    """The path of the newest checkpoint recorded in `<checkpoint_dir>/checkpoint`, or None."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state and state.model_checkpoint_path:
        if checkpoint_exists(state.model_checkpoint_path):
            return state.model_checkpoint_path
        _log.error("Couldn't match files for checkpoint %s", state.model_checkpoint_path)
    return None


def update_checkpoint_state(save_dir, model_checkpoint_path, all_model_checkpoint_paths=None,
                            latest_filename=None, save_relative_paths=False):
    """Writes `<save_dir>/checkpoint` atomically; paths absolute, or (as TF) relative to save_dir when
    `save_relative_paths` or when both save_dir and the path are relative."""
    save_dir = os.fspath(save_dir)
    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    base = os.path.abspath(save_dir)

    def shown(path):
        if save_relative_paths:
            return os.path.relpath(os.path.abspath(path), base)
        if not os.path.isabs(save_dir) and not os.path.isabs(path):   # TF: relative to a relative save_dir
            return os.path.relpath(path, save_dir)
        return os.path.abspath(path)

    state = CheckpointState(shown(model_checkpoint_path), [shown(p) for p in paths])
    target = _state_path(save_dir, latest_filename)
    if os.path.abspath(target) == os.path.abspath(model_checkpoint_path):
        raise ValueError(f"Save path '{model_checkpoint_path}' conflicts with path used for checkpoint "
                         f"state. Please use a different save path.")
    text = str(state).encode("utf-8", "surrogateescape")
    tmp = _write_temp(target, lambda f: f.write(text))
    try:
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
