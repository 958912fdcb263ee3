"""`keras.utils.vis_utils` / `tf.keras.utils.plot_model`: a model's layer graph as a DOT diagram,
drawn by pydot + graphviz when they are installed (TF 1.x's ImportError when they are not)."""
from __future__ import annotations

import os

_PYDOT_MESSAGE = "Failed to import pydot. You must install pydot and graphviz for `pydotprint` to work."


def _pydot():
    try:
        import pydot
        pydot.Dot.create(pydot.Dot())
    except (ImportError, OSError, AttributeError):
        return None
    return pydot


def _shape_text(shape):
    return "multiple" if shape is None else str(tuple(shape)).replace("None", "?")


def model_to_dot(model, show_shapes=False, show_layer_names=True, rankdir="TB", expand_nested=False, dpi=96,
                 subgraph=False):
    """A pydot.Dot with one node per layer of a Sequential model, edges in order."""
    pydot = _pydot()
    if pydot is None:
        raise ImportError(_PYDOT_MESSAGE)
    if expand_nested or subgraph:
        from ..errors import UnsupportedError
        raise UnsupportedError("plot_model: expand_nested/subgraph are not supported by jitflow")
    dot = pydot.Dot()
    dot.set("rankdir", rankdir)
    dot.set("concentrate", True)
    dot.set("dpi", dpi)
    dot.set_node_defaults(shape="record")
    previous = None
    for layer in model.layers:
        label = f"{layer.name}: {type(layer).__name__}" if show_layer_names else type(layer).__name__
        if show_shapes:
            label = (f"{label}\n|{{input:|output:}}|{{{{{_shape_text(layer.input_shape)}}}|"
                     f"{{{_shape_text(layer.output_shape)}}}}}")
        node = pydot.Node(str(id(layer)), label=label)
        dot.add_node(node)
        if previous is not None:
            dot.add_edge(pydot.Edge(previous, str(id(layer))))
        previous = str(id(layer))
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_layer_names=True, rankdir="TB",
               expand_nested=False, dpi=96):
    """Writes the layer diagram to `to_file` (format from its extension, png by default)."""
    dot = model_to_dot(model, show_shapes, show_layer_names, rankdir, expand_nested, dpi)
    _, extension = os.path.splitext(to_file)
    dot.write(to_file, format=extension[1:] if extension else "png")
