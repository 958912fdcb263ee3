"""`tf.TensorArray` (TF 1.x API) on a dense buffer: the array is one tensor [size, *element_shape]
built from existing ops, so it is an ordinary value that a `tf.while_loop` carries (the loop
flattens a TensorArray to its buffer, jitflow/pytree.py, and hands the body a TensorArray again).

- `write(i, v)` returns a new TensorArray whose buffer has row i replaced by v (a `select` against a
  row-index mask: one pass over the buffer; gradients flow through it as through any select);
  `read(i)` and `gather(indices)` are `gather`; `stack()` is the buffer; `unstack(t)` makes `t` the
  buffer; `concat()` merges the first two dims; `size()` is its row count.
- Rows never written read as zeros (TF zero-fills unwritten elements of a known element shape).
- The buffer is allocated on the first `write` (then its element shape is the written value's) or
  at creation when `element_shape` is fully defined; a TensorArray entering a while_loop needs one
  of them (its element shape must be known to carry it).
- `clear_after_read` (TF's default True) makes TF raise when an element is read twice; reads here
  never clear, so every program TF accepts gives the same values (the double-read error is not
  reproduced). `colocate_with_first_write_call` is a device-placement hint with nothing to place.

Not supported, raising UnsupportedError naming the argument: `dynamic_size=True` (a carried
buffer has a fixed number of rows), `handle` / `flow` (constructing from an existing TensorArray
resource), elements of different shapes (`infer_shape=False` with mismatched writes).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..framework.shapes import TensorShape
from ..ir.types import as_dtype, int32
from . import math_ops as m
from .array_ops import expand_dims, range_, reshape, shape, zeros
from .convert import convert_to_tensor
from .gather_api import gather


class _Meta:
    """The static part of a TensorArray carried through pytree flatten/unflatten (compared by value
    for dtype/element shape, by identity for a run-time size)."""

    def __init__(self, dtype, size, element_shape, infer_shape, name):
        self.dtype, self.size, self.element_shape = dtype, size, element_shape
        self.infer_shape, self.name = infer_shape, name

    def _key(self):
        size = self.size if isinstance(self.size, int) else id(self.size)
        return (self.dtype, size, self.element_shape.dims if self.element_shape.dims is not None else None,
                self.infer_shape)

    def __eq__(self, other):
        return isinstance(other, _Meta) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


def _merge(a: TensorShape, b: TensorShape) -> TensorShape:
    """TF's TensorShape.merge_with: the more specific of two compatible shapes; ValueError otherwise."""
    if a.dims is None:
        return TensorShape(b)
    if b.dims is None:
        return TensorShape(a)
    if len(a.dims) != len(b.dims) or any(x is not None and y is not None and x != y for x, y in zip(a.dims, b.dims)):
        raise ValueError(f"Shapes {a} and {b} are not compatible")
    return TensorShape([x if x is not None else y for x, y in zip(a.dims, b.dims)])


def _static_int(value):
    if isinstance(value, Tensor):
        if value.op._op == "const":
            return int(value.op.attrs["value"])
        return None
    return int(value)


class TensorArray:
    """TF 1.x `tf.TensorArray(dtype, size=None, dynamic_size=None, clear_after_read=None,
    tensor_array_name=None, handle=None, flow=None, infer_shape=True, element_shape=None,
    colocate_with_first_write_call=True, name=None)`."""

    def __init__(self, dtype, size=None, dynamic_size=None, clear_after_read=None, tensor_array_name=None,
                 handle=None, flow=None, infer_shape=True, element_shape=None, colocate_with_first_write_call=True,
                 name=None, _buffer=None):
        if handle is not None or flow is not None:
            raise UnsupportedError("tf.TensorArray(handle=..., flow=...) (wrapping an existing TensorArray "
                                   "resource) is not supported by jitflow")
        if dynamic_size:
            raise UnsupportedError("tf.TensorArray(dynamic_size=True) is not supported by jitflow: its "
                                   "elements live in one buffer of a fixed number of rows (give size=)")
        del clear_after_read, colocate_with_first_write_call      # see the module docstring
        self._dtype = as_dtype(dtype)
        self._name = name or tensor_array_name or "TensorArray"
        self._infer_shape = bool(infer_shape)
        self._element_shape = TensorShape(element_shape) if element_shape is not None else TensorShape(None)
        self._buffer = _buffer
        if _buffer is not None:
            dims = _buffer.shape.dims
            self._size = dims[0] if dims and dims[0] is not None else shape(_buffer)[0]
            self._element_shape = TensorShape(dims[1:] if dims is not None else None)
            return
        if size is None:
            raise ValueError("Size must be provided if handle is not provided")
        if isinstance(size, Tensor):
            if size.dtype != int32 or size.shape.dims not in ((), None):
                raise TypeError(f"TensorArray: size must be an int32 scalar, got {size.dtype.name}{size.shape}")
            static = _static_int(size)
            self._size = static if static is not None else size
        else:
            self._size = int(size)
        if isinstance(self._size, int) and self._size < 0:
            raise ValueError(f"TensorArray: size must be non-negative, got {self._size}")

    # --- static properties
    @property
    def dtype(self):
        return self._dtype

    @property
    def element_shape(self) -> TensorShape:
        return self._element_shape

    @property
    def flow(self) -> Tensor:
        """The buffer (TF's flow tensor orders TensorArray ops; here the buffer is the value itself)."""
        return self._ensure_buffer("flow")

    def size(self, name=None) -> Tensor:
        return convert_to_tensor(self._size, dtype=int32) if isinstance(self._size, int) else self._size

    def identity(self):
        return self._with(self._buffer)

    # --- buffer management
    def _with(self, buffer, element_shape=None):
        ta = TensorArray.__new__(TensorArray)
        ta._dtype, ta._name, ta._infer_shape = self._dtype, self._name, self._infer_shape
        ta._size, ta._buffer = self._size, buffer
        ta._element_shape = element_shape if element_shape is not None else self._element_shape
        return ta

    def _ensure_buffer(self, what):
        if self._buffer is not None:
            return self._buffer
        dims = self._element_shape.dims
        if dims is None or None in dims:
            raise UnsupportedError(
                f"TensorArray '{self._name}': {what} before any write needs a fully defined element_shape "
                f"(got {self._element_shape}); jitflow keeps the elements in one buffer whose shape must be "
                f"known: pass element_shape=")
        with get_default_graph().name_scope(self._name):
            self._buffer = zeros([self._size] + list(dims), dtype=self._dtype)
        return self._buffer

    def _merge_shape(self, value_shape):
        try:
            return _merge(self._element_shape, TensorShape(value_shape))
        except ValueError:
            if not self._infer_shape:
                raise UnsupportedError(f"TensorArray '{self._name}' (infer_shape=False): elements of different "
                                       f"shapes ({self._element_shape} vs {value_shape}) are not supported by "
                                       f"jitflow") from None
            raise ValueError(f"Inconsistent shapes: saw {value_shape} but expected {self._element_shape} "
                             f"(TensorArray '{self._name}')") from None

    def _index(self, index):
        index = convert_to_tensor(index, dtype=int32)
        if index.shape.dims not in ((), None):
            raise ValueError(f"TensorArray '{self._name}': index must be a scalar, got shape {index.shape}")
        static, size = _static_int(index), self._size
        if static is not None and (static < 0 or (isinstance(size, int) and static >= size)):
            raise ValueError(f"TensorArray '{self._name}': index {static} is out of range for size {size}")
        return index

    def _check_dtype(self, value):
        if not isinstance(value, Tensor) and not hasattr(value, "value"):
            value = convert_to_tensor(value, dtype=self._dtype)       # Python values: the array's dtype
        value = convert_to_tensor(value)
        if value.dtype != self._dtype:
            from ..errors import InvalidArgumentError
            raise InvalidArgumentError(None, None, f"TensorArray dtype is {self._dtype.name} but Op is trying to "
                                                   f"write dtype {value.dtype.name}")
        return value

    # --- TF's methods
    def write(self, index, value, name=None):
        """A TensorArray with element `index` set to `value`."""
        value = self._check_dtype(value)
        with get_default_graph().name_scope(name or "TensorArrayWrite"):
            index = self._index(index)
            element_shape = self._merge_shape(value.shape)
            buffer = self._buffer
            if buffer is None:
                fill_shape = [self._size] + [d if d is not None else shape(value)[k]
                                             for k, d in enumerate(value.shape.dims)] \
                    if value.shape.dims is not None else None
                if fill_shape is None:
                    raise UnsupportedError(f"TensorArray '{self._name}': writing a value of unknown rank is not "
                                           f"supported by jitflow")
                buffer = zeros(fill_shape, dtype=self._dtype)
            rank = len(buffer.shape.dims)
            rows = reshape(range_(0, self.size(), dtype=int32), [-1] + [1] * (rank - 1))
            new = m.where_v2(m.equal(rows, index), expand_dims(value, 0), buffer)
        return self._with(new, element_shape)

    def read(self, index, name=None) -> Tensor:
        buffer = self._ensure_buffer("read")
        with get_default_graph().name_scope(name or "TensorArrayRead"):
            return gather(buffer, self._index(index))

    def gather(self, indices, element_shape=None, name=None) -> Tensor:
        buffer = self._ensure_buffer("gather")
        indices = convert_to_tensor(indices, dtype=int32)
        if indices.shape.dims is not None and len(indices.shape.dims) != 1:
            raise ValueError(f"TensorArray '{self._name}': indices must be a vector, got shape {indices.shape}")
        return gather(buffer, indices, name=name or "TensorArrayGather")

    def stack(self, name=None) -> Tensor:
        """All elements stacked: [size, *element_shape]."""
        buffer = self._ensure_buffer("stack")
        return m.identity(buffer, name=name or "TensorArrayStack")

    def unstack(self, value, name=None):
        """A TensorArray whose elements are the rows of `value` (its first dim must equal size)."""
        value = self._check_dtype(value)
        dims = value.shape.dims
        if dims is None or not dims:
            raise ValueError(f"TensorArray '{self._name}': unstack needs a value of rank >= 1, got {value.shape}")
        if isinstance(self._size, int) and dims[0] is not None and dims[0] != self._size:
            raise ValueError(f"Could not scatter to TensorArray '{self._name}': the value has {dims[0]} rows but "
                             f"the TensorArray has size {self._size}")
        element_shape = self._merge_shape(TensorShape(dims[1:]))
        return self._with(value, element_shape)

    scatter_full = unstack

    def concat(self, name=None) -> Tensor:
        """The elements concatenated along their first dimension (equal-shaped elements)."""
        buffer = self._ensure_buffer("concat")
        dims = buffer.shape.dims
        if dims is None or len(dims) < 2:
            raise ValueError(f"TensorArray '{self._name}': concat needs elements of rank >= 1")
        tail = [d if d is not None else shape(buffer)[k + 2] for k, d in enumerate(dims[2:])]
        return reshape(buffer, [-1] + tail, name=name or "TensorArrayConcat")

    def close(self, name=None):
        from .variables import no_op
        return no_op(name=name or "TensorArrayClose")

    # --- tf.while_loop support (jitflow/pytree.py)
    def _pytree_flatten(self):
        return [self._ensure_buffer("entering a tf.while_loop")], _Meta(
            self._dtype, self._size, self._element_shape, self._infer_shape, self._name)

    @classmethod
    def _pytree_unflatten(cls, meta, children):
        ta = cls.__new__(cls)
        ta._dtype, ta._name, ta._infer_shape = meta.dtype, meta.name, meta.infer_shape
        (ta._buffer,) = children
        dims = ta._buffer.shape.dims
        ta._size = meta.size if isinstance(meta.size, int) else shape(ta._buffer)[0]
        ta._element_shape = _merge(meta.element_shape, TensorShape(dims[1:])) if dims is not None \
            else meta.element_shape
        return ta

    def __repr__(self):
        return f"<tf.TensorArray '{self._name}' dtype={self._dtype.name} size={self._size} " \
               f"element_shape={self._element_shape}>"
