"""Randomness: one interface over numpy (the long run) and hypothesis (shrinking tests)."""
from __future__ import annotations

import numpy as np


# randomness: one interface over numpy and hypothesis
class RandomDraw:
    """Plain numpy randomness (the long run; no hypothesis needed)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:          # inclusive
        return int(self.rng.integers(lo, hi + 1))

    def bool(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, table: dict):
        keys = list(table)
        weights = np.array([table[k] for k in keys], float)
        return keys[int(self.rng.choice(len(keys), p=weights / weights.sum()))]


class HypothesisDraw(RandomDraw):
    """Draws through hypothesis (`draw` of an `st.composite`), so failures shrink:
    smaller ints, earlier choices (lists put the simplest option first), fewer steps."""

    def __init__(self, draw):
        from hypothesis import strategies as st
        self._draw, self._st = draw, st

    def int(self, lo, hi):
        return self._draw(self._st.integers(lo, hi))

    def bool(self, p=0.5):
        return self._draw(self._st.integers(0, 999)) >= int(round((1 - p) * 1000))

    def weighted(self, table: dict):
        keys = list(table)
        total = sum(table.values())
        pick = self.int(0, int(total * 100) - 1) / 100.0
        for k in keys:
            pick -= table[k]
            if pick < 0:
                return k
        return keys[-1]

