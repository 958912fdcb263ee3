"""Keras-style progress output.

verbose=1: a bar per epoch, redrawn in place with `\\r`::

    12/45 [=======>......................] - ETA: 0s - loss: 0.4121 - accuracy: 0.8828
    45/45 [==============================] - 0s 3ms/step - loss: 0.2011 - accuracy: 0.9432 - val_loss: ...

verbose=2: one line per epoch, printed when it ends::

    45/45 - 0s - 3ms/step - loss: 0.2011 - accuracy: 0.9432 - val_loss: ...

verbose=0: nothing. Redraws are throttled to one per 0.05 s, so printing
never slows a training loop of fast steps.
"""
from __future__ import annotations

import sys
import time


def format_value(value) -> str:
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


def format_logs(logs: dict) -> str:
    return "".join(f" - {name}: {format_value(value)}" for name, value in logs.items())


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    def __init__(self, target: int, verbose=1, width=30, interval=0.05, stream=None):
        self.target, self.verbose, self.width, self.interval = int(target), verbose, width, interval
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.current = 0
        self.drawn_width = 0

    def _bar(self, current) -> str:
        digits = len(str(self.target))
        filled = int(self.width * current / self.target) if self.target else self.width
        bar = "=" * max(filled - 1, 0) + ((">" if current < self.target else "=") if filled else "")
        return f"{current:>{digits}}/{self.target} [{bar}{'.' * (self.width - len(bar))}]"

    def _write(self, text, newline):
        pad = " " * max(self.drawn_width - len(text), 0)
        self.stream.write("\r" + text + pad + ("\n" if newline else ""))
        self.stream.flush()
        self.drawn_width = 0 if newline else len(text)

    def update(self, current: int, logs: dict):
        """Redraws the bar after `current` steps (verbose=1 only; throttled; the final line is finish's)."""
        self.current = current
        if self.verbose != 1 or current >= self.target:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.interval:
            return
        self.last_draw = now
        elapsed = now - self.start
        eta = elapsed / current * (self.target - current) if current else 0.0
        self._write(f"{self._bar(current)} - ETA: {format_duration(eta)}{format_logs(logs)}", newline=False)

    def finish(self, logs: dict):
        """The epoch's last line, with the elapsed time, the time per step and every log (val_* included)."""
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.start
        per_step = format_per_step(elapsed / max(self.current, 1))
        if self.verbose == 1:
            self._write(f"{self._bar(self.current)} - {format_duration(elapsed)} {per_step}{format_logs(logs)}",
                        newline=True)
        else:
            self.stream.write(f"{self.current}/{self.target} - {format_duration(elapsed)} - {per_step}"
                              f"{format_logs(logs)}\n")
            self.stream.flush()
