"""`tf.train`: optimizers and the global step."""
from .optimizers import (AdagradOptimizer, AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer,  # noqa: F401
                         Optimizer, RMSPropOptimizer, create_global_step, get_global_step,
                         get_or_create_global_step)
