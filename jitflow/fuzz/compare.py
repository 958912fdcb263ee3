"""Comparing a compiled result with an interpreted value, and a case's result record."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .bounds import OV
from .common import SAFETY


# comparison
def compare(got, ov: OV) -> str | None:
    """None when `got` is an acceptable compiled result for the interpreted value `ov`."""
    want = ov.val
    got = np.asarray(got)
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != reference {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape} != reference {want.shape}"
    check = ~np.asarray(ov.unc)
    if not np.issubdtype(want.dtype, np.floating):
        bad = check & (got != want)
    else:
        g64, w64 = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(all="ignore"):
            both_nan = np.isnan(g64) & np.isnan(w64)
            close = (g64 == w64) | (np.abs(g64 - w64) <= SAFETY * np.asarray(ov.err))
        bad = check & ~(both_nan | close)
    if not np.any(bad):
        return None
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    count = int(np.sum(bad))
    extra = ""
    if np.issubdtype(want.dtype, np.floating):
        extra = f" (allowed error {SAFETY * float(np.asarray(ov.err)[where]):.3g})"
    return (f"{count} of {want.size} elements differ; first at {list(where)}: got {got[where]!r}, "
            f"reference {want[where]!r}{extra}")


@dataclass
class CaseResult:
    status: str                       # 'ok' | 'mismatch' | 'error' | 'grad_mismatch' | 'skipped' | 'oracle_error'
    detail: str = ""
    ops: Counter = field(default_factory=Counter)
    features: set = field(default_factory=set)
    failing_fetches: list = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "error", "grad_mismatch")


def _graph_ops(graph) -> Counter:
    return Counter(op._op for op in graph.get_operations())


