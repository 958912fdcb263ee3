"""The op registry and every op definition, grouped by family."""
from . import elementwise, linalg, random, reduce, shape, shape_dependent, state  # noqa: F401  (registers the ops)
from .registry import (EFFECT, ELEMENTWISE, LAYOUT, LIBRARY, RANDOM, REDUCE, SOURCE, OpDef,  # noqa: F401
                       ShapeError, all_ops, define_op, get_op)
