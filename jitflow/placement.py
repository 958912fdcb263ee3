"""Devices and placement: `jitflow.devices()`, device strings, and where a run goes.

Placement is per run: a `Session.run` executes on the GPU when any op it needs
was created under `tf.device('/gpu:N')` (the op's `_device` attr), otherwise on
the CPU; the whole run then compiles for that device (ops pinned to '/cpu:0'
inside a GPU run run on the GPU too). Variables of a GPU run stay on the device
between runs (runtime/gpu_executable.py). Without a usable GPU, a run asking for
one falls back to the CPU, as TF's soft placement does, with one warning per
process; a Session whose config sets `allow_soft_placement=False` raises
InvalidArgumentError instead. `jit(f, device='gpu')` has no fallback: it raises
a RuntimeError naming what is missing.
"""
from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass

from . import errors

_DEVICE = re.compile(r"(?:^|/)(?:device:)?(cpu|gpu)(?::(\d+))?$", re.IGNORECASE)
_warned: set = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Device:
    name: str            # '/cpu:0', '/gpu:0'
    device_type: str     # 'CPU' | 'GPU'
    description: str = ""

    def __str__(self):
        return self.name


def parse_device(spec) -> tuple[str, int] | None:
    """('cpu' | 'gpu', index) for a device string such as '/gpu:0', '/device:GPU:1', 'gpu',
    '/job:localhost/replica:0/task:0/device:CPU:0'; None for '' or None (no request)."""
    if not spec:
        return None
    text = str(spec).strip()
    for part in reversed(text.split("/")):
        match = _DEVICE.search("/" + part) or _DEVICE.search(part)
        if match:
            return match.group(1).lower(), int(match.group(2) or 0)
    if text.lower().startswith("/job") or text.lower().startswith("/replica"):
        return None
    raise ValueError(f"jitflow: cannot parse device specification {spec!r} (expected e.g. '/cpu:0' or '/gpu:0')")


def devices() -> list[Device]:
    """The devices this process can run on: the CPU always, GPUs when the CUDA driver has any."""
    from .runtime import cuda
    import platform
    found = [Device("/cpu:0", "CPU", platform.processor() or platform.machine())]
    driver = cuda.driver()
    if driver is not None:
        for index in range(driver.device_count):
            description = f"{driver.name}, compute capability {driver.compute_capability[0]}." \
                          f"{driver.compute_capability[1]}" if index == 0 else ""
            found.append(Device(f"/gpu:{index}", "GPU", description))
    return found


def gpu_missing_reason(index: int = 0) -> str | None:
    """None when GPU `index` can be used, else why not. (jitflow runs on GPU 0 only.)"""
    from .runtime import cuda
    driver = cuda.driver()
    if driver is None:
        return cuda.unavailable_reason()
    if index != 0:
        return f"jitflow runs on /gpu:0 only (asked for /gpu:{index}; {driver.device_count} GPU(s) present)"
    return None


def run_device(ops, allow_soft_placement: bool = True) -> str:
    """'gpu' or 'cpu' for a run needing `ops` (see the module docstring)."""
    requested = None
    for op in ops:
        spec = op.attrs.get("_device")
        if not spec:
            continue
        parsed = parse_device(spec)
        if parsed is not None and parsed[0] == "gpu":
            requested = (op, spec, parsed[1])
            break
    if requested is None:
        return "cpu"
    op, spec, index = requested
    reason = gpu_missing_reason(index)
    if reason is None:
        return "gpu"
    if not allow_soft_placement:
        raise errors.InvalidArgumentError(
            None, op, f"Cannot assign a device for operation {op.name}: Could not satisfy explicit device "
                      f"specification '{spec}' because no GPU device is available ({reason})\n  "
                      f"{errors.describe_op(op)}")
    warn_once("soft-placement", f"jitflow: '{spec}' was requested (op {op.name}) but {reason}; running on the "
                                f"CPU instead (soft placement)", stacklevel=6)
    return "cpu"


def jit_device(device) -> str:
    """'cpu' or 'gpu' for `jit(..., device=...)`; a RuntimeError when a GPU is asked for and absent."""
    parsed = parse_device(device)
    if parsed is None or parsed[0] == "cpu":
        return "cpu"
    reason = gpu_missing_reason(parsed[1])
    if reason is not None:
        raise RuntimeError(f"jit(device={device!r}): no GPU can be used: {reason}. Use device='cpu' (the default) "
                           f"or run on a machine with an NVIDIA GPU and its driver (libcuda).")
    return "gpu"


def warn_once(tag: str, message: str, stacklevel: int = 3):
    """One warning per process and tag (stacklevel 6 from Session.run's compile points at the caller of run)."""
    with _lock:
        if tag in _warned:
            return
        _warned.add(tag)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
