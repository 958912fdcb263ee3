"""Numpy-style broadcasting of static shapes (with unknown dims) and the shape
helpers every op family shares."""
from __future__ import annotations

from ..ir.types import TensorType
from .registry import ShapeError


def broadcast_shapes(*shapes, op: str = "op") -> tuple:
    """Broadcasts shapes right-aligned; None is an unknown dim."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dims = [s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError(
                f"{op}: incompatible shapes for broadcasting: "
                + " vs ".join(_fmt(s) for s in shapes))
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def fmt_shape(shape) -> str:
    return _fmt(shape)


def same_dtype(types, op: str):
    dtypes = {t.dtype for t in types}
    if len(dtypes) != 1:
        names = ", ".join(t.dtype.name for t in types)
        raise TypeError(f"{op}: operands must have the same dtype, got {names}")
    return types[0].dtype


def check_dtype(t: TensorType, allowed, op: str):
    if t.dtype not in allowed:
        raise TypeError(f"{op}: dtype {t.dtype.name} is not supported "
                        f"(expected one of {', '.join(d.name for d in allowed)})")


def normalize_axes(axes, rank: int, op: str) -> tuple:
    """Axes attr -> sorted tuple of non-negative axes; None means all."""
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    out = set()
    for a in axes:
        a = int(a)
        if not -rank <= a < max(rank, 1):
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor of rank {rank}")
        out.add(a % rank if rank else 0)
    return tuple(sorted(out))
