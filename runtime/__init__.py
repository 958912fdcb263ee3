"""jitflow.runtime: executables, the kernel cache, buffers and statistics.
The only package that touches raw pointers and ctypes."""
from .counters import reset_stats, stats  # noqa: F401


def wait_for_background_compiles(timeout: float | None = None) -> bool:
    """Waits until every executable runs its optimized code (tiered compilation, tiered_build.py)."""
    from .tiered_build import wait_for_background_compiles as wait
    return wait(timeout)
