"""`History.plot(path)`: learning curves as a PNG, one panel per metric
(loss first), the training curve and, when present, the validation curve.

Needs matplotlib (`pip install jitflow[plot]`); draws with the Agg canvas
directly, so it never changes pyplot's global backend or opens a window.
"""
from __future__ import annotations

import os


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise ImportError("History.plot needs matplotlib, which is not installed. Install it with "
                          "`pip install jitflow[plot]` (or `pip install matplotlib`).") from exc
    return Figure, FigureCanvasAgg, MaxNLocator


def plot_history(history: dict, path, metrics=None):
    """Writes the PNG and returns its path. metrics: base names to draw (default: all, loss first)."""
    Figure, FigureCanvasAgg, MaxNLocator = _require_matplotlib()
    if not history:
        raise ValueError("History.plot: the history is empty (call fit first)")
    names = [k for k in history if not k.startswith("val_")]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in names]
    names = sorted(names, key=lambda k: k != "loss")          # stable: loss first, then the fit order
    if metrics is not None:
        names = [k for k in names if k in metrics]
    figure = Figure(figsize=(5 * len(names), 4), dpi=100)
    FigureCanvasAgg(figure)
    for index, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), index + 1)
        for key, label, style in ((name, "train", "-"), ("val_" + name, "validation", "--")):
            values = history.get(key)
            if values:
                axes.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3, label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path, format="png")
    return path
