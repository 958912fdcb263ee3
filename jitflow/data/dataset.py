"""`tf.data.Dataset`: the base class (element structure, dtypes and static
shapes; the TF method names that build transformed datasets) and the source
datasets `from_tensor_slices`, `from_tensors`, `range`, `zip`, `from_generator`.

A dataset is a host-side description. `_iter(ctx)` yields elements as flat
tuples of numpy arrays (one per component); iterators (iterator.py) hand them to
Session.run as feeds of the compiled executable. Graph tensors a dataset is
built from are evaluated with compiled code when its iterator is initialized.
"""
from __future__ import annotations

import numpy as np

from .. import errors
from ..framework.graph import Tensor
from ..framework.shapes import TensorShape
from ..ir.types import as_dtype, int64
from . import structure

INFINITE = -1
UNKNOWN = -2


class Dataset:
    """Base of all datasets: `_tree` (element structure), `_types` (DTypes), `_shapes` (static shapes)."""

    def __init__(self, tree, types, shapes):
        self._tree = tree
        self._types = list(types)
        self._shapes = [None if s is None else tuple(s) for s in shapes]

    # --- what subclasses define
    def _inputs(self) -> list:
        return []

    def _tensors(self) -> list:
        return []

    def _iter(self, ctx):
        raise TypeError(f"{type(self).__name__} must implement _iter (a Dataset subclass)")

    def _cardinality(self) -> int:
        return UNKNOWN

    def _card(self) -> int:
        """`_cardinality()`, computed once (it is fixed when the dataset is built). A transformed
        dataset asks for its input's when it is built, so a deep chain never recurses here."""
        value = self.__dict__.get("_card_value")
        if value is None:
            value = self.__dict__["_card_value"] = self._cardinality()
        return value

    # --- element description
    @property
    def output_types(self):
        return structure.pack(self._tree, self._types)

    @property
    def output_shapes(self):
        return structure.pack(self._tree, [TensorShape(s) for s in self._shapes])

    @property
    def output_classes(self):
        return structure.pack(self._tree, [Tensor] * len(self._types))

    def __repr__(self):
        shapes = structure.pack(self._tree, [str(TensorShape(s)) for s in self._shapes])
        types = structure.pack(self._tree, [t.name for t in self._types])
        return f"<{type(self).__name__} shapes: {shapes}, types: {types}>"

    def __iter__(self):
        raise RuntimeError("__iter__() is only supported inside of tf.function or when eager execution is "
                           "enabled.")

    # --- sources
    @staticmethod
    def from_tensor_slices(tensors):
        return TensorSliceDataset(tensors)

    @staticmethod
    def from_tensors(tensors):
        return TensorDataset(tensors)

    @staticmethod
    def range(*args, output_type=int64):  # noqa: A003
        return RangeDataset(*args, output_type=output_type)

    @staticmethod
    def zip(datasets):  # noqa: A003
        return ZipDataset(datasets)

    @staticmethod
    def from_generator(generator, output_types, output_shapes=None, args=None):
        return GeneratorDataset(generator, output_types, output_shapes, args)

    # --- transformations (transforms.py)
    def batch(self, batch_size, drop_remainder=False):
        from .transforms import BatchDataset
        return BatchDataset(self, batch_size, drop_remainder)

    def unbatch(self):
        from .transforms import UnbatchDataset
        return UnbatchDataset(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None):
        from .transforms import ShuffleDataset
        return ShuffleDataset(self, buffer_size, seed, reshuffle_each_iteration)

    def repeat(self, count=None):
        from .transforms import RepeatDataset
        return RepeatDataset(self, count)

    def take(self, count):
        from .transforms import TakeDataset
        return TakeDataset(self, count)

    def skip(self, count):
        from .transforms import SkipDataset
        return SkipDataset(self, count)

    def prefetch(self, buffer_size):
        from .transforms import PrefetchDataset
        return PrefetchDataset(self, buffer_size)

    def cache(self, filename=""):
        from .transforms import CacheDataset
        return CacheDataset(self, filename)

    def concatenate(self, dataset):
        from .transforms import ConcatenateDataset
        return ConcatenateDataset(self, dataset)

    def map(self, map_func, num_parallel_calls=None):  # noqa: A003
        from .transforms import MapDataset
        return MapDataset(self, map_func, num_parallel_calls)

    def filter(self, predicate):  # noqa: A003
        from .transforms import FilterDataset
        return FilterDataset(self, predicate)

    def apply(self, transformation_func):
        result = transformation_func(self)
        if not isinstance(result, Dataset):
            raise TypeError("`transformation_func` must return a Dataset.")
        return result

    def padded_batch(self, *args, **kwargs):
        raise errors.UnsupportedError("Dataset.padded_batch is not supported by jitflow yet")

    def flat_map(self, *args, **kwargs):
        raise errors.UnsupportedError("Dataset.flat_map is not supported by jitflow yet")

    def interleave(self, *args, **kwargs):
        raise errors.UnsupportedError("Dataset.interleave is not supported by jitflow yet")

    def window(self, *args, **kwargs):
        raise errors.UnsupportedError("Dataset.window is not supported by jitflow yet")

    def with_options(self, *args, **kwargs):
        raise errors.UnsupportedError("Dataset.with_options is not supported by jitflow")

    # --- iterators (iterator.py)
    def make_one_shot_iterator(self):
        from .iterator import make_one_shot_iterator
        return make_one_shot_iterator(self)

    def make_initializable_iterator(self, shared_name=None):
        from .iterator import make_initializable_iterator
        return make_initializable_iterator(self, shared_name)


# --- source datasets

def _component(value, what: str):
    """A dataset component: a graph Tensor (evaluated at iterator initialization) or a numpy array
    with TF's dtype defaults (Python float -> float32, int -> int32; numpy keeps its dtype)."""
    from ..api.convert import to_numpy
    from ..api.variables import Variable
    if isinstance(value, Variable):
        value = value.value()
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Dataset):
        raise TypeError(f"{what}: a Dataset cannot be a component of an element")
    try:
        return np.asarray(to_numpy(value), order="C")
    except TypeError as exc:
        raise errors.UnsupportedError(f"{what}: cannot make a jitflow tensor from {type(value).__name__} "
                                      f"values ({exc})") from None


def _static_shape(component):
    if isinstance(component, Tensor):
        return component.shape.dims
    return tuple(component.shape)


class TensorSliceDataset(Dataset):
    """`from_tensor_slices`: the i-th element holds the i-th slice of every component along dimension 0."""

    def __init__(self, tensors):
        leaves, tree = structure.flatten(tensors)
        if not leaves:
            raise ValueError("from_tensor_slices: the structure has no components")
        self._components = [_component(v, "from_tensor_slices") for v in leaves]
        shapes, first = [], None
        for c in self._components:
            shape = _static_shape(c)
            if shape is not None and len(shape) == 0:
                raise ValueError("from_tensor_slices: Shape must be at least rank 1 but is rank 0")
            if shape is not None and shape[0] is not None:
                if first is not None and shape[0] != first:
                    raise ValueError(f"from_tensor_slices: Dimensions {first} and {shape[0]} are not compatible "
                                     f"(all components must have the same size in dimension 0)")
                first = shape[0]
            shapes.append(None if shape is None else shape[1:])
        self._size = first
        super().__init__(tree, [as_dtype(c.dtype) for c in self._components], shapes)

    def _tensors(self):
        return [c for c in self._components if isinstance(c, Tensor)]

    def _cardinality(self):
        return UNKNOWN if self._size is None else self._size

    def _iter(self, ctx):
        arrays = [ctx.value(c) if isinstance(c, Tensor) else c for c in self._components]
        sizes = {a.shape[0] if a.ndim else None for a in arrays}
        if len(sizes) != 1 or None in sizes:
            raise errors.InvalidArgumentError(
                "from_tensor_slices: all components must have the same size in dimension 0, got shapes "
                + ", ".join(str(a.shape) for a in arrays))
        for i in range(arrays[0].shape[0]):
            yield tuple(a[i, ...] for a in arrays)


class TensorDataset(Dataset):
    """`from_tensors`: one element, the given components."""

    def __init__(self, tensors):
        leaves, tree = structure.flatten(tensors)
        self._components = [_component(v, "from_tensors") for v in leaves]
        super().__init__(tree, [as_dtype(c.dtype) for c in self._components],
                         [_static_shape(c) for c in self._components])

    def _tensors(self):
        return [c for c in self._components if isinstance(c, Tensor)]

    def _cardinality(self):
        return 1

    def _iter(self, ctx):
        yield tuple(ctx.value(c) if isinstance(c, Tensor) else c for c in self._components)


class RangeDataset(Dataset):
    """`Dataset.range(stop)`, `range(start, stop[, step])`: int64 scalars (or `output_type`)."""

    def __init__(self, *args, output_type=int64):
        if not 1 <= len(args) <= 3:
            raise ValueError("Dataset.range takes 1 to 3 arguments: (stop), (start, stop) or (start, stop, step)")
        if any(isinstance(a, Tensor) for a in args):
            raise errors.UnsupportedError("Dataset.range with Tensor arguments is not supported; pass Python ints")
        self._range = range(*[int(a) for a in args])
        dtype = as_dtype(output_type)
        super().__init__(structure.LEAF, [dtype], [()])

    def _cardinality(self):
        return len(self._range)

    def _iter(self, ctx):
        np_type = self._types[0].np
        for i in self._range:
            yield (np.array(i, np_type),)


class ZipDataset(Dataset):
    """`Dataset.zip((a, b, ...))`: elements of the datasets side by side; ends with the shortest."""

    def __init__(self, datasets):
        leaves, outer = structure.flatten(datasets)
        for d in leaves:
            if not isinstance(d, Dataset):
                raise TypeError(f"Dataset.zip: the argument must be a (nested) structure of Datasets, got "
                                f"{type(d).__name__}")
        self._datasets = leaves
        for d in leaves:
            d._card()                  # computed now: a deep chain never recurses
        tree = _graft(outer, [d._tree for d in leaves])
        super().__init__(tree, [t for d in leaves for t in d._types], [s for d in leaves for s in d._shapes])

    def _inputs(self):
        return list(self._datasets)

    def _cardinality(self):
        values = [d._card() for d in self._datasets]
        finite = [v for v in values if v >= 0]
        if finite:
            return min(finite)
        return UNKNOWN if UNKNOWN in values else INFINITE

    def _iter(self, ctx):
        for parts in zip(*[d._iter(ctx) for d in self._datasets]):
            yield tuple(a for part in parts for a in part)


def _graft(tree, subtrees):
    """`tree` with its leaves replaced by `subtrees`, in order."""
    iterator = iter(subtrees)

    def walk(t):
        if t[0] == "leaf":
            return next(iterator)
        children = tuple(walk(c) for c in t[-1])
        return t[:-1] + (children,)
    return walk(tree)


class GeneratorDataset(Dataset):
    """`from_generator`: elements from a Python generator (host-side, as in TF), checked and converted
    to `output_types` / `output_shapes`."""

    def __init__(self, generator, output_types, output_shapes=None, args=None):
        if args is not None:
            raise errors.UnsupportedError("Dataset.from_generator: `args` is not supported by jitflow")
        if not callable(generator):
            raise TypeError("`generator` must be callable.")
        types, tree = structure.flatten(output_types)
        types = [as_dtype(t) for t in types]
        if output_shapes is None:
            shapes = [None] * len(types)
        else:
            shapes = structure.flatten_as(tree, output_shapes, "output_shapes")
            shapes = [TensorShape(s).dims for s in shapes]
        self._generator = generator
        super().__init__(tree, types, shapes)

    def _iter(self, ctx):
        for value in self._generator():
            if isinstance(value, list) and self._tree[0] != "leaf":
                value = tuple(value)
            leaves = structure.flatten_as(self._tree, value, "from_generator: the yielded element")
            out = []
            for leaf, dtype, shape in zip(leaves, self._types, self._shapes):
                array = np.asarray(leaf, dtype=dtype.np, order="C")
                if shape is not None and (len(shape) != array.ndim or any(
                        d is not None and d != n for d, n in zip(shape, array.shape))):
                    raise errors.InvalidArgumentError(
                        f"`generator` yielded an element of shape {list(array.shape)} where an element of shape "
                        f"{TensorShape(shape)} was expected.")
                out.append(array)
            yield tuple(out)
