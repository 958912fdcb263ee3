"""`tf.train.global_step`, `create_global_step` and `assert_global_step` (TF 1.x training_util); the
global step variable itself is made by `optimizers.get_or_create_global_step`."""
from __future__ import annotations

from ..api.variables import Variable
from ..framework.graph import Tensor, get_default_graph
from .optimizers import get_global_step, get_or_create_global_step


def global_step(sess, global_step_tensor):
    """The global step's value as a Python int (`tf.train.global_step(sess, gs)`)."""
    return int(sess.run(global_step_tensor))


def create_global_step(graph=None):
    """Creates the global step variable; a ValueError when the graph has one already."""
    graph = graph or get_default_graph()
    if get_global_step(graph) is not None:
        raise ValueError('"global_step" already exists.')
    return get_or_create_global_step(graph)


def assert_global_step(global_step_tensor):
    """Raises TypeError unless `global_step_tensor` is an integer scalar Variable or Tensor."""
    if not isinstance(global_step_tensor, (Variable, Tensor)):
        raise TypeError(f"Existing \"global_step\" must be a Variable or Tensor: {global_step_tensor}.")
    if not global_step_tensor.dtype.is_integer:
        raise TypeError(f"Existing \"global_step\" does not have integer type: {global_step_tensor.dtype.name}")
    if global_step_tensor.shape.dims not in (None, ()) and global_step_tensor.shape.dims != []:
        raise TypeError(f"Existing \"global_step\" is not scalar: {global_step_tensor.shape}")
