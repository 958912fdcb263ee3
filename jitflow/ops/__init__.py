"""The op registry and every op definition, grouped by family."""
from . import array_extra, elementwise, linalg, random, reduce, shape, shape_dependent, state  # noqa: F401  (registers the ops)
from . import math_extra  # noqa: F401,E402
from . import dynamic_shape  # noqa: F401,E402
from . import checks  # noqa: F401,E402
from . import gather_ops  # noqa: F401,E402
from . import conv, pooling  # noqa: F401,E402  (conv2d / pooling families)
from . import symbolic  # noqa: F401,E402  (dim_value: shape-polymorphic runs)
from . import control_flow_ops  # noqa: F401,E402  (cond / while: ops that own regions)
from . import summary_ops  # noqa: F401,E402  (summary ops and check_numerics: host-side)
from . import lstm_block  # noqa: F401,E402  (the fused LSTM sequence ops)
from .registry import (EFFECT, ELEMENTWISE, LAYOUT, LIBRARY, RANDOM, REDUCE, SOURCE, OpDef,  # noqa: F401
                       ShapeError, all_ops, define_op, get_op)
