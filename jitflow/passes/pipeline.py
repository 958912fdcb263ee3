"""The pass pipeline: simplify, CSE, DCE (in that order), each timed; the IR
verifier runs after every pass when `verify=True` (tests turn it on)."""
from __future__ import annotations

import time

from ..framework.gc_pause import gc_paused
from ..ir.core import Function
from ..ir.regions import nested_functions
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .conv_pool_fusion import fuse_conv_pools
from .pool_commute import commute_max_pools
from .simplify import simplify

PIPELINE = (("simplify", simplify), ("cse", eliminate_common_subexpressions), ("pool_commute", commute_max_pools),
            ("conv_pool_fusion", fuse_conv_pools), ("dce", eliminate_dead_code))


def run_pipeline(fn: Function, verify: bool = False, timings: dict | None = None) -> Function:
    with gc_paused():                # whole-function passes allocate per node (framework/gc_pause.py)
        return _run_pipeline(fn, verify, timings)


def _run_pipeline(fn: Function, verify: bool, timings: dict | None) -> Function:
    fn = _run_passes(fn, verify, timings)
    # regions (cond branches, loop bodies: jitflow/ir/regions.py) are isolated from above, so each is
    # optimized on its own, like a function; a worklist, never recursion on nesting depth
    for region in nested_functions(fn):
        _run_passes(region, False, timings)
    return fn


def _run_passes(fn: Function, verify: bool, timings: dict | None) -> Function:
    for name, pass_fn in PIPELINE:
        start = time.perf_counter()
        fn = pass_fn(fn)
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        if verify:
            from ..ir.verify import verify_function
            from ..ops import get_op
            verify_function(fn, infer=lambda op, types, attrs: get_op(op).infer(types, attrs, op))
    return fn
