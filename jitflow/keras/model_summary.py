"""`Model.summary()`: the familiar Keras table (Layer (type), Output Shape,
Param #, then Total / Trainable / Non-trainable params)."""
from __future__ import annotations

import numpy as np


def _row(fields, stops):
    line = ""
    for field, stop in zip(fields, stops):
        line += " " + str(field)
        line = line[:stop].ljust(stop)
    return line.rstrip().ljust(stops[-1])


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _count(variables):
    return int(sum(np.prod(v.shape.as_list(), dtype=np.int64) for v in variables))


def summary_lines(model, line_length=None, positions=None) -> list[str]:
    engine = model._ensure_engine()
    names = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers]
    if line_length is None and positions is None:     # Keras' 65 columns, wider for long layer names
        first = max([29] + [len(name) + 2 for name in names])
        stops = [first, first + 26, first + 36]
    else:
        width = line_length or 65
        stops = [int(width * p) if p <= 1 else int(p) for p in (positions or (0.45, 0.85, 1.0))]
    width = stops[-1]
    lines = [f'Model: "{model.name}"', "_" * width, _row(["Layer (type)", "Output Shape", "Param #"], stops),
             "=" * width]
    for index, (layer, name, output) in enumerate(zip(model.layers, names, engine.layer_outputs)):
        lines.append(_row([name, _shape_text(output.shape.dims), layer.count_params()], stops))
        lines.append("=" * width if index == len(model.layers) - 1 else "")
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * width]
    return lines
