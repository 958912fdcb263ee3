"""`tf.data`: input pipelines. Datasets describe host-side element streams
(dataset.py, transforms.py); `map`/`filter` functions are traced once and run
compiled (functions.py); iterators feed elements to Session.run through host
hooks (iterator.py)."""
from __future__ import annotations

from . import experimental  # noqa: F401
from .dataset import Dataset  # noqa: F401
from .iterator import Iterator, make_initializable_iterator, make_one_shot_iterator  # noqa: F401


def get_output_types(dataset_or_iterator):
    return dataset_or_iterator.output_types


def get_output_shapes(dataset_or_iterator):
    return dataset_or_iterator.output_shapes


def get_output_classes(dataset_or_iterator):
    return dataset_or_iterator.output_classes


def _needs_strings(name):
    def unsupported(*args, **kwargs):
        from ..errors import UnsupportedError
        raise UnsupportedError(f"tf.data.{name} reads string records, which jitflow does not support; load the "
                               f"data with numpy and use Dataset.from_tensor_slices")
    unsupported.__name__ = name
    return unsupported


TextLineDataset = _needs_strings("TextLineDataset")
TFRecordDataset = _needs_strings("TFRecordDataset")
FixedLengthRecordDataset = _needs_strings("FixedLengthRecordDataset")
