"""`tf.train`: optimizers, the global step, and the Saver with its checkpoint helpers."""
from .optimizers import (AdagradOptimizer, AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer,  # noqa: F401
                         Optimizer, RMSPropOptimizer, create_global_step, get_global_step,
                         get_or_create_global_step)
from .saver import Saver, checkpoint_exists, get_checkpoint_state, latest_checkpoint  # noqa: F401
from .meta_graph import MetaGraphDef, export_meta_graph, import_meta_graph  # noqa: F401
from .learning_rate import (cosine_decay, exponential_decay, inverse_time_decay,  # noqa: F401
                            natural_exp_decay, piecewise_constant, polynomial_decay)
from .moving_averages import ExponentialMovingAverage  # noqa: F401
from .more_optimizers import (AdadeltaOptimizer, FtrlOptimizer, ProximalAdagradOptimizer,  # noqa: F401
                              ProximalGradientDescentOptimizer)
from .training_util import assert_global_step, create_global_step, global_step  # noqa: F401
from .checkpoint_reader import (CheckpointReader, NewCheckpointReader, list_variables,  # noqa: F401
                                load_checkpoint, load_variable)
from .tf_bundle_writer import SaverDef  # noqa: F401


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.train")  # PEP 562: a missing name says so
