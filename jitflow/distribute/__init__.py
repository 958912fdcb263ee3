"""Data-parallel training on Ray (`tf.distribute`): `DataParallel` runs a
Session-API training step (a model function returning a `TrainSpec`) on N Ray
workers, and `RayStrategy` does the same for a Keras model's `fit`. Ray is an
optional dependency (`pip install 'jitflow[distributed]'`), imported only when
a trainer starts. See docs/DISTRIBUTED.md."""
from .keras_strategy import RayStrategy, get_strategy, has_strategy  # noqa: F401
from .spec import TrainSpec  # noqa: F401
from .trainer import DataParallel, combine_scalars, shard_bounds  # noqa: F401
