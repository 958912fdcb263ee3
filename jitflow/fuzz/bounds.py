"""The oracle's values (`OV`: reference value, error bound, undetermined mask, zero-sign mask)
and the rules that bound how far a correct compiled result may be from the numpy reference."""
from __future__ import annotations

import numpy as np

from ..ops.registry import ELEMENTWISE, LAYOUT
from .common import SAFETY


# the oracle: a numpy interpreter of the graph with error bounds
class OV:
    """An interpreted value: the reference result, its error bound and its undetermined elements."""

    __slots__ = ("val", "err", "unc", "zs")

    def __init__(self, val, err=None, unc=None, zs=None):
        self.val = np.asarray(val)
        shape = self.val.shape
        self.err = np.zeros(shape) if err is None else np.broadcast_to(np.asarray(err, np.float64), shape)
        self.unc = np.zeros(shape, bool) if unc is None else np.broadcast_to(np.asarray(unc, bool), shape)
        self.zs = np.zeros(shape, bool) if zs is None else np.broadcast_to(np.asarray(zs, bool), shape)


def _unit(dtype) -> float:
    return 2.0 ** -24 if np.dtype(dtype) == np.float32 else 2.0 ** -53


def _tiny(dtype) -> float:
    return float(np.finfo(dtype).tiny)


def _mag(x) -> np.ndarray:
    with np.errstate(all="ignore"):
        m = np.abs(np.asarray(x, np.float64))
    return np.where(np.isnan(m), 0.0, m)


def _smul(a, b):
    """a * b with 0 * inf = 0 (error terms)."""
    with np.errstate(all="ignore"):
        r = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return np.where((np.asarray(a) == 0) | (np.asarray(b) == 0), 0.0, r)


def _sdiv(a, b):
    """a / b with 0 / 0 = 0 and x / 0 = inf (error terms)."""
    with np.errstate(all="ignore"):
        r = np.asarray(a, np.float64) / np.asarray(b, np.float64)
    return np.where(np.asarray(a) == 0, 0.0, np.where(np.asarray(b) == 0, np.inf, r))


# each op's tolerance is a field of its record (OpDef.ulps): 0 = its float result is correctly rounded
# (or a fixed sequence of correctly rounded steps numpy's reference performs identically), so exact
# operands give a bit-identical result; n = n units in the last place; None = GENERIC_ULPS
GENERIC_ULPS = 16
_STEP_FUNCTIONS = {"floor", "ceil", "round", "rint"}
_TRIG = {"sin", "cos", "tan"}           # argument reduction: the input is known to ~u * |x|


def op_ulps(name):
    """The fuzzer's tolerance of op `name`, from its record: 0 (exact), n ulps, or None (generic)."""
    from ..ops import all_ops
    opdef = all_ops().get(name)
    return None if opdef is None else opdef.ulps


def is_exact(name) -> bool:
    """Whether op `name` is correctly rounded (its record's ulps is 0)."""
    return op_ulps(name) == 0


def _signed_zero_safe(name) -> bool:
    """Whether the op's result keeps the sign of a zero operand deterministically."""
    return is_exact(name) and name not in ("maximum", "minimum", "relu", "add_n", "relu6")


def _operands(node_inputs, values, out_shape):
    """(vals, errs, uncs, zss) of the inputs, broadcast to the output shape."""
    vals, errs, uncs, zss = [], [], [], []
    for t in node_inputs:
        v = values[id(t)]
        vals.append(v.val)
        errs.append(np.broadcast_to(v.err, out_shape) if v.err.shape != out_shape else v.err)
        uncs.append(np.broadcast_to(v.unc, out_shape) if v.unc.shape != out_shape else v.unc)
        zss.append(np.broadcast_to(v.zs, out_shape) if v.zs.shape != out_shape else v.zs)
    return vals, errs, uncs, zss


def _bc(x, shape):
    return np.broadcast_to(np.asarray(x), shape)


def _elementwise_bounds(op, attrs, vals, errs, out):
    """(err, unc) of an elementwise float result from its operands' values and errors."""
    dtype = out.dtype
    u, tiny = _unit(dtype), _tiny(dtype)
    shape = out.shape
    a = _bc(vals[0], shape) if vals else None
    b = _bc(vals[1], shape) if len(vals) > 1 else None
    ea = errs[0] if errs else None
    eb = errs[1] if len(errs) > 1 else None
    mo = _mag(out)
    unc = np.zeros(shape, bool)
    if op in ("add", "sub"):
        err = ea + eb
    elif op == "mul":
        err = _smul(_mag(b), ea) + _smul(_mag(a), eb) + _smul(ea, eb)
    elif op == "div":
        denom = _mag(b) - eb
        err = np.where(denom > 0, _sdiv(ea + _smul(mo, eb), np.maximum(denom, 0)), np.where(eb > 0, np.inf, 0.0))
        err = np.where((denom <= 0) & (eb == 0), _sdiv(ea, _mag(b)), err)
    elif op in ("neg", "abs", "relu", "identity", "stop_gradient"):
        err = ea
    elif op in ("maximum", "minimum"):
        err = np.maximum(ea, eb)
    elif op == "square":
        err = 2 * _smul(_mag(a), ea) + _smul(ea, ea)
    elif op == "sign":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = np.zeros(shape)
    elif op == "sqrt":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = np.where(mo > 0, _sdiv(ea, 2 * mo), np.sqrt(ea))
    elif op == "rsqrt":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = _smul(mo, _sdiv(ea, 2 * _mag(a)))
    elif op == "exp":
        with np.errstate(all="ignore"):
            err = _smul(mo, np.expm1(ea))
    elif op == "log":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = _sdiv(ea, _mag(a))
    elif op == "tanh":
        err = _smul(np.abs(1 - mo * mo), ea)
    elif op == "sigmoid":
        err = _smul(mo * np.abs(1 - mo), ea)
    elif op == "pow":
        with np.errstate(all="ignore"):
            log_a = np.abs(np.log(_mag(a)))
        with np.errstate(all="ignore"):
            err = _smul(mo, np.expm1(_smul(_sdiv(_mag(b), _mag(a)), ea) + _smul(log_a, eb)))
        # a negative base whose exponent may cross an integer; a base known only to within its own
        # size (e.g. a denormal read as zero): the linear bound does not hold
        unc = ((np.asarray(a, np.float64) < 0) & (eb > 0)) | ((ea > 0) & (ea >= 0.5 * _mag(a)))
    elif op in ("floordiv", "floormod"):
        with np.errstate(all="ignore"):
            q = np.asarray(a, np.float64) / np.asarray(b, np.float64)
            dq = _sdiv(ea + _smul(_mag(q), eb), np.maximum(_mag(b) - eb, 0)) + 4 * u * _mag(q)
            lo, hi = np.floor(q - dq), np.floor(q + dq)
        # also undetermined when either operand may read as zero (a denormal under DAZ): the
        # quotient of a tiny dividend floors to -1 or 0 and the float64 estimate above underflows
        unc = (((ea + eb) > 0) & ~(lo == hi)) | ((eb > 0) & (_mag(b) <= eb)) | ((ea > 0) & (_mag(a) <= ea))
        if op == "floordiv":
            err = np.where((ea + eb) > 0, 4 * u * mo, 0.0)
        else:
            err = ea + _smul(np.floor(_mag(q)) + 1, eb) + np.where((ea + eb) > 0, 4 * u * (_mag(a) + _mag(b)), 0.0)
    elif op == "add_n":
        err = sum(errs)
        if any(np.any(e > 0) for e in errs):
            err = err + len(vals) * u * sum(_mag(_bc(v, shape)) for v in vals)
    else:
        err, unc = _registry_bounds(op, a, b, ea, eb, shape, u)
    inexact = np.zeros(shape, bool)
    for e in errs:
        inexact |= e > 0
    ulps = op_ulps(op)
    if ulps == 0:
        err = err + np.where(inexact, 2 * u * mo, 0.0)
    else:
        err = err + (GENERIC_ULPS if ulps is None else ulps) * u * mo
    # denormal results are flushed to zero by the compiled code (FTZ/DAZ, as TF and XLA run)
    err = err + np.where(mo < tiny, tiny, 0.0) + np.where(inexact, tiny, 0.0)
    return err, unc


def _registry_bounds(op, a, b, ea, eb, shape, u):
    """(err, unc) for the registry's other elementwise ops: the reference evaluated in float64 at
    the ends of each operand's error interval (a first-order bound that needs no derivative rule)."""
    from ..ops import get_op
    unc = np.zeros(shape, bool)
    if op == "squared_difference":
        d = _mag(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        e = ea + eb
        return 2 * _smul(d, e) + _smul(e, e), unc
    if op == "relu6":
        return ea, unc
    if b is not None:
        return np.full(shape, np.inf), unc
    reference = get_op(op).reference
    a64 = np.asarray(a, np.float64)
    e = ea + (4 * u * _mag(a64) if op in _TRIG else 0.0)
    with np.errstate(all="ignore"):
        mid = np.asarray(reference(a64), np.float64)
        lo, hi = np.asarray(reference(a64 - SAFETY * e), np.float64), np.asarray(reference(a64 + SAFETY * e), np.float64)
        if op in _STEP_FUNCTIONS:
            return np.zeros(shape), (e > 0) & ~(lo == hi)
        err = np.maximum(np.abs(hi - mid), np.abs(lo - mid)) / SAFETY
    return np.where(e > 0, err, 0.0), unc


def _finish(ov: OV, dtype) -> OV:
    """Elements whose bound is infinite or NaN (or which may overflow) become undetermined."""
    if not np.issubdtype(np.asarray(ov.val).dtype, np.floating):
        return ov
    err = np.asarray(ov.err, np.float64)
    bad = ~np.isfinite(err)
    with np.errstate(all="ignore"):
        near_overflow = (err > 0) & (_mag(ov.val) + SAFETY * err >= np.finfo(dtype).max)
    unc = np.asarray(ov.unc) | bad | near_overflow
    return OV(ov.val, np.where(unc, 0.0, err), unc, ov.zs)


def _input_value(array) -> OV:
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        tiny = _tiny(array.dtype)
        m = _mag(array)
        err = np.where((m > 0) & (m < tiny), m, 0.0)     # denormal inputs read as zero (DAZ)
        return OV(array, err)
    return OV(array)



def _bounds(op, name, opdef, attrs, ins, out) -> OV:
    shape = out.shape
    is_float = np.issubdtype(out.dtype, np.floating)
    if opdef.kind == LAYOUT:
        # data movement: the same reference moves the error, undetermined and zero-sign masks
        def move(arrays):
            with np.errstate(all="ignore"):
                return np.asarray(opdef.reference(*arrays, **attrs))
        errs = move([np.asarray(v.err, np.float64) for v in ins])
        uncs = move([np.asarray(v.unc) for v in ins]).astype(bool)
        zss = move([np.asarray(v.zs) for v in ins]).astype(bool)
        return OV(out, errs if is_float else None, uncs, zss)
    if opdef.kind == ELEMENTWISE:
        if name == "iota":
            return OV(out)
        vals, errs, uncs, zss = _operands(op.inputs, {id(t): v for t, v in zip(op.inputs, ins)}, shape)
        unc = np.zeros(shape, bool)
        for x in uncs:
            unc = unc | x
        any_zs = np.zeros(shape, bool)
        for x in zss:
            any_zs = any_zs | x
        if name == "select":
            c = _bc(vals[0], shape)
            err = np.where(c, errs[1], errs[2])
            unc = uncs[0] | np.where(c, uncs[1], uncs[2])
            zs = np.where(c, zss[1], zss[2])
            return OV(out, err if is_float else None, unc, zs)
        if name == "cast":
            return _cast_bounds(ins[0], errs[0], unc, zss[0], out)
        in_float = bool(ins) and np.issubdtype(ins[0].val.dtype, np.floating)
        if name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
            if in_float:
                with np.errstate(all="ignore"):
                    gap = np.abs(_bc(vals[0], shape).astype(np.float64) - _bc(vals[1], shape).astype(np.float64))
                tol = SAFETY * (errs[0] + errs[1])
                unc = unc | ((tol > 0) & ~(gap > tol))
            return OV(out, None, unc)
        if name in ("logical_and", "logical_or", "logical_not"):
            return OV(out, None, unc)
        if not is_float:
            return OV(out, None, unc)
        err, extra_unc = _elementwise_bounds(name, attrs, vals, errs, out)
        unc = unc | extra_unc
        # a zero of uncertain sign as a divisor (or rsqrt / negative-power base) gives +-inf
        if name in ("div", "floordiv", "floormod") and len(zss) > 1:
            unc = unc | (zss[1] & (_bc(vals[1], shape) == 0))
        if name in ("rsqrt",) or (name == "pow" and len(zss) > 1):
            unc = unc | (zss[0] & (_bc(vals[0], shape) == 0))
        zs = (out == 0) & (any_zs | (not _signed_zero_safe(name)) | (name in ("maximum", "minimum", "relu")))
        return _finish(OV(out, err, unc, zs), out.dtype)
    if opdef.kind == "reduce":
        return _reduce_bounds(name, opdef, attrs, ins[0], out)
    if name in ("gather", "pad"):
        return _moved_bounds(name, opdef, attrs, ins, out)
    if name == "scan":
        return _scan_bounds(attrs, ins[0], out)
    if name == "matmul":
        return _matmul_bounds(attrs, ins, out)
    if name == "matrix_inverse":
        a = ins[0]
        u = _unit(out.dtype)
        n = max(1, shape[0])
        with np.errstate(all="ignore"):
            cond = np.linalg.cond(a.val.astype(np.float64)) if a.val.size else 1.0
            m = _mag(out)
            err = m @ a.err @ m + 64 * n * cond * u * (m.max() if m.size else 0)
        return _finish(OV(out, err, np.any(a.unc) | np.zeros(shape, bool), out == 0), out.dtype)
    if opdef.extra.get("bounds") in ("linear", "bilinear"):     # conv2d family, avg pooling
        return _multilinear_bounds(opdef, attrs, ins, out)
    # anything else (random, sources): exact
    return OV(out)


def _multilinear_bounds(opdef, attrs, ins, out) -> OV:
    """An op linear in each of its one or two float operands (the others: shape vectors) whose
    reference is that map R: sums of k products in any order, bounded as a matmul is, with k = the
    number of terms of an element (R of all-ones arrays; pooling divides, so its window size)."""
    floats = [k for k, v in enumerate(ins) if np.issubdtype(np.asarray(v.val).dtype, np.floating)]

    def apply(*arrays):
        args = [np.asarray(v.val) for v in ins]
        for k, a in zip(floats, arrays):
            args[k] = np.asarray(a, np.float64)
        with np.errstate(all="ignore"):
            return np.asarray(opdef.reference(*args, **attrs), np.float64)
    mags = [_mag(ins[k].val) for k in floats]
    errs = [np.asarray(ins[k].err, np.float64) for k in floats]
    ones = [np.ones(np.shape(ins[k].val)) for k in floats]
    unc = np.zeros(out.shape, bool)
    for j, k in enumerate(floats):
        unc = unc | (apply(*[np.asarray(ins[k].unc, np.float64) if i == j else ones[i]
                             for i in range(len(floats))]) > 0)
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    terms = apply(*ones)
    k_max = float(terms.max()) if terms.size else 0.0
    if opdef.extra["bounds"] == "linear":
        k_max = float(np.prod(attrs.get("ksize", (1, 1))))
        err = apply(errs[0]) + 2 * (k_max + 2) * u * apply(mags[0]) + (k_max + 1) * tiny
    else:
        err = apply(mags[0], errs[1]) + apply(errs[0], mags[1]) + apply(errs[0], errs[1]) \
            + 2 * (k_max + 2) * u * apply(mags[0], mags[1]) + (k_max + 1) * tiny
    return _finish(OV(out, err, unc, out == 0), out.dtype)


def _cast_bounds(x: OV, err, unc, zs, out) -> OV:
    src, dst = x.val.dtype, out.dtype
    src_float, dst_float = np.issubdtype(src, np.floating), np.issubdtype(dst, np.floating)
    if dst_float:
        if src_float:
            u = _unit(dst)
            inexact = err > 0
            e = err + np.where(inexact, 2 * u * _mag(out), 0.0) + np.where(_mag(out) < _tiny(dst), _tiny(dst), 0.0)
            return _finish(OV(out, e, unc, zs), dst)
        return OV(out, None, unc)
    if src_float:
        xv = x.val.astype(np.float64)
        if dst == np.bool_:
            unc = unc | ((err > 0) & (_mag(xv) <= SAFETY * err))
        else:
            with np.errstate(all="ignore"):
                lo, hi = np.trunc(xv - SAFETY * err), np.trunc(xv + SAFETY * err)
            unc = unc | ((err > 0) & ~(lo == hi))
        return OV(out, None, unc)
    return OV(out, None, unc)


def _reduce_bounds(name, opdef, attrs, x: OV, out) -> OV:
    shape = out.shape
    rank = x.val.ndim
    if name in ("argmax", "argmin"):
        axis = attrs["axis"] % rank
        unc = np.any(x.unc, axis=axis)
        if np.issubdtype(x.val.dtype, np.floating):
            v = x.val.astype(np.float64)
            e = SAFETY * x.err
            sign = 1.0 if name == "argmax" else -1.0
            with np.errstate(all="ignore"):
                lo = np.where(np.isnan(v), np.nan, sign * v - e)
                hi = np.where(np.isnan(v), np.nan, sign * v + e)
                best_lo = np.nanmax(np.where(np.isnan(lo), -np.inf, lo), axis=axis, keepdims=True)
                candidates = hi >= best_lo
            close = (np.sum(candidates, axis=axis) > 1) & np.any(candidates & (e > 0), axis=axis)
            has_nan = np.any(np.isnan(v), axis=axis)
            unc = unc | (close & ~has_nan)
        return OV(out, None, unc)
    axes = tuple(attrs["axes"]) if attrs.get("axes") is not None else tuple(range(rank))
    keep = attrs.get("keepdims", False)
    n = int(np.prod([x.val.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    unc = np.broadcast_to(np.any(x.unc, axis=axes, keepdims=keep), shape)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    kind = opdef.reduce
    mx = _mag(x.val)
    with np.errstate(all="ignore"):
        if kind in ("sum", "mean"):
            err = np.sum(x.err, axis=axes, keepdims=keep) + 2 * n * u * np.sum(mx, axis=axes, keepdims=keep) \
                + n * tiny
            if kind == "mean":
                err = err / max(n, 1) + 2 * u * _mag(out)
        elif kind in ("max", "min"):
            err = np.max(x.err, axis=axes, keepdims=keep, initial=0.0)
        else:   # prod
            rel = np.sum(_sdiv(x.err, mx), axis=axes, keepdims=keep)
            err = _smul(_mag(out), rel + 2 * n * u) + n * tiny
            # a reassociated product passes through other partial products: when some order can
            # overflow (then inf * 0 = NaN) or underflow and grow again, the result is undetermined
            logs = np.log(np.where(mx > 0, mx, 1.0))
            up = np.sum(np.maximum(logs, 0), axis=axes, keepdims=keep)
            down = np.sum(np.minimum(logs, 0), axis=axes, keepdims=keep)
            unc = unc | np.broadcast_to((up >= np.log(np.finfo(out.dtype).max))
                                        | ((down <= np.log(tiny)) & (up > 0)), shape)
    zs = out == 0
    return _finish(OV(out, np.broadcast_to(err, shape), unc, zs), out.dtype)


def _matmul_bounds(attrs, ins, out) -> OV:
    a, b = ins
    ta, tb = attrs.get("transpose_a", False), attrs.get("transpose_b", False)

    def orient(x, t):
        return x.T if t else x
    av, bv = orient(a.val, ta), orient(b.val, tb)
    unc = (np.any(orient(a.unc, ta), axis=1)[:, None] | np.any(orient(b.unc, tb), axis=0)[None, :]) \
        if out.size else np.zeros(out.shape, bool)
    unc = np.broadcast_to(unc, out.shape)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    k = av.shape[1]
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    ma, mb = _mag(av), _mag(bv)
    ea, eb = orient(a.err, ta), orient(b.err, tb)
    with np.errstate(all="ignore"):
        # any summation order (BLAS blocks it); infinite magnitudes make the element undetermined
        err = ma @ eb + ea @ mb + ea @ eb + 2 * (k + 2) * u * (ma @ mb) + (k + 1) * tiny
    return _finish(OV(out, err, unc, out == 0), out.dtype)



def _moved_bounds(name, opdef, attrs, ins, out) -> OV:
    """gather / pad: the reference moves the error, undetermined and zero-sign masks too (pad's
    fill value is exact: its error is 0 and its zero sign is +0)."""
    others = [v.val for v in ins[1:]]
    fill = {"pad": [np.zeros((), np.float64)]}.get(name)

    def move(array, cast):
        with np.errstate(all="ignore"):
            rest = [np.zeros((), cast)] if fill is not None else others
            return np.asarray(opdef.reference(np.asarray(array, cast), *rest, **attrs))
    is_float = np.issubdtype(out.dtype, np.floating)
    err = move(ins[0].err, np.float64) if is_float else None
    return OV(out, err, move(ins[0].unc, bool).astype(bool), move(ins[0].zs, bool).astype(bool))


def _scan_bounds(attrs, x: OV, out) -> OV:
    """cumsum: any partial sum is bounded as the whole axis's sum is (reassociation, threads)."""
    axis = attrs["axis"] % max(x.val.ndim, 1)
    unc = np.broadcast_to(np.any(x.unc, axis=axis, keepdims=True), out.shape)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    if attrs.get("kind", "sum") != "sum":         # cumprod: not generated; undetermined
        return OV(out, None, np.ones(out.shape, bool))
    n = x.val.shape[axis] if x.val.ndim else 1
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    with np.errstate(all="ignore"):
        err = np.sum(x.err, axis=axis, keepdims=True) + 2 * n * u * np.sum(_mag(x.val), axis=axis, keepdims=True) \
            + n * tiny
    return _finish(OV(out, np.broadcast_to(err, out.shape), unc, out == 0), out.dtype)
