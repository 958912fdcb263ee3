"""`tf.train`: optimizers, the global step, and the Saver with its checkpoint helpers."""
from .optimizers import (AdagradOptimizer, AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer,  # noqa: F401
                         Optimizer, RMSPropOptimizer, create_global_step, get_global_step,
                         get_or_create_global_step)
from .saver import Saver, checkpoint_exists, get_checkpoint_state, latest_checkpoint  # noqa: F401
