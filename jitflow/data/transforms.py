"""Dataset transformations: batch, unbatch, shuffle, repeat, take, skip,
prefetch, cache, concatenate, map, filter. Element movement (buffers, slicing,
stacking) is host-side numpy, as in TF's input pipeline; the math of `map` and
`filter` runs as compiled code (functions.py)."""
from __future__ import annotations

import itertools

import numpy as np

from .. import errors
from ..framework.graph import Tensor, get_default_graph
from ..framework.shapes import TensorShape
from .dataset import INFINITE, UNKNOWN, Dataset
from .functions import TracedFunction


def _count(value, what):
    """A Python int, or an integer scalar Tensor (e.g. a placeholder) read when the iterator is initialized."""
    if isinstance(value, Tensor):
        if not value.dtype.is_integer or (value.shape.ndims not in (None, 0)):
            raise ValueError(f"{what} must be a scalar integer tensor, got {value}")
        return value
    return int(value)


def _resolve(value, ctx, what, minimum=None) -> int:
    """The int value of a `_count` argument in this pass of the pipeline (checked like TF does at run time)."""
    if isinstance(value, Tensor):
        value = int(ctx.value(value))
        if minimum is not None and value < minimum:
            raise errors.InvalidArgumentError(f"{what} must be greater than zero.")
    return value


def _arg_tensors(*values) -> list:
    return [v for v in values if isinstance(v, Tensor)]


class _Unary(Dataset):
    def __init__(self, input_dataset, tree=None, types=None, shapes=None):
        if not isinstance(input_dataset, Dataset):
            raise TypeError(f"expected a Dataset, got {type(input_dataset).__name__}")
        self._input = input_dataset
        input_dataset._card()          # computed now, so a deep chain's cardinality never recurses
        super().__init__(input_dataset._tree if tree is None else tree,
                         input_dataset._types if types is None else types,
                         input_dataset._shapes if shapes is None else shapes)

    def _inputs(self):
        return [self._input]

    def _cardinality(self):
        return self._input._card()


def _stack(elements, what="batch"):
    out = []
    for i in range(len(elements[0])):
        parts = [e[i] for e in elements]
        try:
            out.append(np.stack(parts))
        except ValueError:
            first = parts[0].shape
            j = next(j for j, p in enumerate(parts) if p.shape != first)
            raise errors.InvalidArgumentError(
                f"Cannot {what} tensors with different shapes in component {i}. First element had shape "
                f"{list(first)} and element {j} had shape {list(parts[j].shape)}.") from None
    return tuple(out)


class BatchDataset(_Unary):
    def __init__(self, input_dataset, batch_size, drop_remainder=False):
        self._batch = _count(batch_size, "batch_size")
        if not isinstance(self._batch, Tensor) and self._batch <= 0:
            raise errors.InvalidArgumentError("Batch size must be greater than zero.")
        self._drop = bool(drop_remainder)
        lead = self._batch if self._drop and not isinstance(self._batch, Tensor) else None
        super().__init__(input_dataset, shapes=[None if s is None else (lead,) + s for s in input_dataset._shapes])

    def _tensors(self):
        return _arg_tensors(self._batch)

    def _cardinality(self):
        n = self._input._card()
        if n < 0 or isinstance(self._batch, Tensor):
            return n if n < 0 else UNKNOWN
        return n // self._batch if self._drop else -(-n // self._batch)

    def _iter(self, ctx):
        size = _resolve(self._batch, ctx, "Batch size", 1)
        buffer = []
        for element in self._input._iter(ctx):
            buffer.append(element)
            if len(buffer) == size:
                yield _stack(buffer)
                buffer = []
        if buffer and not self._drop:
            yield _stack(buffer)


class UnbatchDataset(_Unary):
    def __init__(self, input_dataset):
        for s in input_dataset._shapes:
            if s is not None and not s:
                raise ValueError("Cannot unbatch an input with scalar components.")
        super().__init__(input_dataset, shapes=[None if s is None else s[1:] for s in input_dataset._shapes])

    def _cardinality(self):
        n = self._input._card()
        return n if n == INFINITE else UNKNOWN

    def _iter(self, ctx):
        for element in self._input._iter(ctx):
            sizes = {a.shape[0] if a.ndim else None for a in element}
            if len(sizes) != 1 or None in sizes:
                raise errors.InvalidArgumentError("unbatch: input element must have a non-scalar value in each "
                                                  "component, all with the same first dimension")
            for i in range(element[0].shape[0]):
                yield tuple(a[i, ...] for a in element)


class ShuffleDataset(_Unary):
    """TF's shuffle buffer: fill `buffer_size` elements, emit a uniformly chosen one, refill its slot.
    Seeds follow tf.set_random_seed / the op seed; each iteration (repeat epoch, re-initialization)
    draws a new order unless reshuffle_each_iteration=False."""

    def __init__(self, input_dataset, buffer_size, seed=None, reshuffle_each_iteration=None):
        super().__init__(input_dataset)
        self._buffer = _count(buffer_size, "buffer_size")
        if not isinstance(self._buffer, Tensor) and self._buffer <= 0:
            raise errors.InvalidArgumentError("buffer_size must be greater than zero.")
        graph = get_default_graph()
        if seed is None and graph.seed is None:
            self._seed = None
        else:
            from ..api.random_ops import get_seed
            counter = graph.__dict__.get("_data_shuffle_count", 0)
            graph.__dict__["_data_shuffle_count"] = counter + 1
            self._seed = get_seed(seed) + ((counter,) if seed is None else ())
        self._reshuffle = True if reshuffle_each_iteration is None else bool(reshuffle_each_iteration)

    def _tensors(self):
        return _arg_tensors(self._buffer)

    def _rng(self, ctx):
        index = ctx.next_seed_index(self, advance=self._reshuffle)
        if self._seed is None:
            base = ctx.__dict__.setdefault("_fresh_seed_" + str(id(self)), ctx.fresh_seed())
            return np.random.default_rng([base, index])
        return np.random.default_rng([*self._seed, index])

    def _iter(self, ctx):
        rng = self._rng(ctx)
        source = iter(self._input._iter(ctx))
        buffer = list(itertools.islice(source, _resolve(self._buffer, ctx, "buffer_size", 1)))
        uniforms, k = rng.random(1024), 0          # drawn in blocks: one numpy call per 1024 elements
        while buffer:
            if k == 1024:
                uniforms, k = rng.random(1024), 0
            i = min(int(uniforms[k] * len(buffer)), len(buffer) - 1)
            k += 1
            out = buffer[i]
            refill = next(source, None)
            if refill is None:
                buffer[i] = buffer[-1]
                buffer.pop()
            else:
                buffer[i] = refill
            yield out


class RepeatDataset(_Unary):
    def __init__(self, input_dataset, count=None):
        super().__init__(input_dataset)
        self._repeats = -1 if count is None else _count(count, "count")

    def _tensors(self):
        return _arg_tensors(self._repeats)

    def _cardinality(self):
        n = self._input._card()
        if isinstance(self._repeats, Tensor):
            return UNKNOWN
        if self._repeats < 0:
            return 0 if n == 0 else INFINITE
        return n * self._repeats if n >= 0 else n

    def _iter(self, ctx):
        epoch, repeats = 0, _resolve(self._repeats, ctx, "count")
        while repeats < 0 or epoch < repeats:
            empty = True
            for element in self._input._iter(ctx):
                empty = False
                yield element
            if empty:
                return
            epoch += 1


class TakeDataset(_Unary):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._n = _count(count, "count")

    def _tensors(self):
        return _arg_tensors(self._n)

    def _cardinality(self):
        n = self._input._card()
        if isinstance(self._n, Tensor):
            return UNKNOWN
        if self._n < 0:
            return n
        return self._n if n == INFINITE else (min(n, self._n) if n >= 0 else UNKNOWN)

    def _iter(self, ctx):
        source, count = self._input._iter(ctx), _resolve(self._n, ctx, "count")
        return source if count < 0 else itertools.islice(source, count)


class SkipDataset(_Unary):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._n = _count(count, "count")

    def _tensors(self):
        return _arg_tensors(self._n)

    def _cardinality(self):
        n = self._input._card()
        if n < 0 or isinstance(self._n, Tensor):
            return n if n < 0 else UNKNOWN
        return 0 if self._n < 0 else max(n - self._n, 0)

    def _iter(self, ctx):
        source, count = self._input._iter(ctx), _resolve(self._n, ctx, "count")
        if count < 0:
            for _ in source:
                pass
            return iter(())
        return itertools.islice(source, count, None)


class PrefetchDataset(_Unary):
    """`prefetch`: the same elements (a throughput hint; elements are produced on demand)."""

    def __init__(self, input_dataset, buffer_size):
        super().__init__(input_dataset)
        self._buffer_size = _count(buffer_size, "buffer_size")

    def _iter(self, ctx):
        return _iter_per_element(self, ctx)


class CacheDataset(_Unary):
    """`cache()`: the first complete pass is kept in memory and replayed by later passes."""

    def __init__(self, input_dataset, filename=""):
        if filename:
            raise errors.UnsupportedError("Dataset.cache(filename): caching to a file is not supported by "
                                          "jitflow; use cache() for an in-memory cache")
        super().__init__(input_dataset)

    def _iter(self, ctx):
        cached = ctx.caches.get(id(self))
        if cached is not None:
            yield from cached
            return
        record = []
        for element in self._input._iter(ctx):
            record.append(element)
            yield element
        ctx.caches[id(self)] = record


class ConcatenateDataset(Dataset):
    def __init__(self, first, second):
        if not isinstance(second, Dataset):
            raise TypeError("concatenate: expected a Dataset")
        if first._tree != second._tree or first._types != second._types:
            raise TypeError(f"Two datasets to concatenate have different types {first.output_types} and "
                            f"{second.output_types}")
        shapes = [_most_specific_compatible(a, b) for a, b in zip(first._shapes, second._shapes)]
        self._parts = (first, second)
        for part in self._parts:
            part._card()               # computed now: a deep chain never recurses
        super().__init__(first._tree, first._types, shapes)

    def _inputs(self):
        return list(self._parts)

    def _cardinality(self):
        a, b = (d._card() for d in self._parts)
        if INFINITE in (a, b):
            return INFINITE
        return a + b if a >= 0 and b >= 0 else UNKNOWN

    def _iter(self, ctx):
        for d in self._parts:
            yield from d._iter(ctx)


def _most_specific_compatible(a, b):
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


class MapDataset(_Unary):
    """`map(map_func)`: map_func is traced once; each element runs through its compiled code."""

    def __init__(self, input_dataset, map_func, num_parallel_calls=None):
        # num_parallel_calls only sets how many elements TF computes at once; the element order
        # (deterministic) is the same, which is what this sequential map produces
        if num_parallel_calls is not None and isinstance(_count(num_parallel_calls, "num_parallel_calls"), int) \
                and num_parallel_calls < 1 and num_parallel_calls != -1:
            raise ValueError("num_parallel_calls must be positive or tf.data.experimental.AUTOTUNE")
        self._func = TracedFunction(map_func, input_dataset._tree, input_dataset._types, input_dataset._shapes,
                                    "Dataset.map", seed=get_default_graph().seed)
        super().__init__(input_dataset, self._func.tree, self._func.types, self._func.shapes)

    def _iter(self, ctx):
        return _iter_per_element(self, ctx)


class FilterDataset(_Unary):
    """`filter(predicate)`: keeps the elements whose traced predicate (a scalar bool) is True."""

    def __init__(self, input_dataset, predicate):
        super().__init__(input_dataset)
        self._func = TracedFunction(predicate, input_dataset._tree, input_dataset._types, input_dataset._shapes,
                                    "Dataset.filter", seed=get_default_graph().seed)
        out = self._func.outputs
        if len(out) != 1 or out[0].dtype.name != "bool" or TensorShape(out[0].shape).ndims not in (0, None):
            raise ValueError("`predicate` return type must be convertible to a scalar boolean tensor. Was "
                             f"{self._func.tree if len(out) != 1 else out[0]}.")

    def _cardinality(self):
        n = self._input._card()
        return INFINITE if n == INFINITE else UNKNOWN

    def _iter(self, ctx):
        return _iter_per_element(self, ctx)


def _iter_per_element(top, ctx):
    """Elements of a run of consecutive map / filter / prefetch stages ending at `top`, produced by ONE
    loop over the run's source (not one nested generator per stage), so `ds.map(f)` applied thousands
    of times neither recurses nor pays a generator hop per stage."""
    stages, source = [], top
    while isinstance(source, (MapDataset, FilterDataset, PrefetchDataset)):
        if not isinstance(source, PrefetchDataset):
            stages.append((isinstance(source, FilterDataset), source._func))
        source = source._input
    stages.reverse()
    for element in source._iter(ctx):
        for is_filter, func in stages:
            if not is_filter:
                element = func(element)
            elif not bool(func(element)[0]):
                break
        else:
            yield element
