"""jitflow.runtime: executables, the kernel cache, buffers and statistics.
The only package that touches raw pointers and ctypes."""
from .counters import reset_stats, stats  # noqa: F401
