"""Host-side graph ops: the summary ops (tf.summary.scalar / histogram / merge) and
check_numerics. Their records live here with every other op; the user functions building them
stay in jitflow/summary.py and jitflow/debugging.py.

- `scalar_summary`, `histogram_summary`, `image_summary`, `merge_summary`: no results; lowering calls `expand`,
  which emits nothing, so fetching the op itself (sess.run(summary.op)) computes nothing and needs
  no kernel. Session.run serializes a fetched summary's value to Summary bytes on the host
  (jitflow/summary.py; the README says which work runs on the host and why).
- `check_numerics`: forwards its operand at specialization (`expand`); the NaN/Inf scan of the
  fetched or checked values runs on the host (jitflow/debugging.py).
"""
from __future__ import annotations

from ..ir.types import FLOATS, TensorType
from .registry import SOURCE, define_op


def _summary_op(name, tf_name):
    return define_op(name, SOURCE, lambda types, attrs, op=name: [], tf_name=tf_name, differentiable=False,
                     stateful=True, expand=lambda emit, operands, attrs: [])


SCALAR_SUMMARY = _summary_op("scalar_summary", "ScalarSummary")
HISTOGRAM_SUMMARY = _summary_op("histogram_summary", "HistogramSummary")
MERGE_SUMMARY = _summary_op("merge_summary", "MergeSummary")
IMAGE_SUMMARY = _summary_op("image_summary", "ImageSummary")


def _check_infer(types, attrs, op="check_numerics"):
    (t,) = types
    if t.dtype not in FLOATS:
        raise TypeError(f"{op}: check_numerics needs a float tensor, got {t.dtype.name}")
    return [TensorType(t.dtype, t.shape)]


CHECK_NUMERICS = define_op("check_numerics", SOURCE, _check_infer, tf_name="CheckNumerics",
                           expand=lambda emit, operands, attrs: [operands[0]],
                           reference=lambda x, message="": x.copy())
CHECK_NUMERICS.grad = lambda b, op, g: [g[0]]
