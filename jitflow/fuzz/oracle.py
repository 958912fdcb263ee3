"""The oracle: an op-by-op numpy interpreter of a graph built from the registry `reference`s
(never compiled code), with error bounds (bounds.py), and the gradient check of a float64 loss
against central finite differences of that interpreter."""
from __future__ import annotations

import math
import traceback

import numpy as np

from ..ir.types import float64, int32
from ..ops import get_op
from .bounds import OV, _bounds, _elementwise_bounds, _finish, _input_value, _mag, _unit
from .common import SAFETY
from .compare import CaseResult, _graph_ops
from .program import Program, build_graph


def _reference_attrs(op) -> dict:
    return {k: v for k, v in op.attrs.items() if not k.startswith("_")}


def _eval_op(op, values, run_index=0):
    """The OVs of one graph Operation's outputs."""
    name = op._op
    opdef = get_op(name)
    attrs = _reference_attrs(op)
    ins = [values[id(t)] for t in op.inputs]
    if name == "const":
        return [_input_value(attrs["value"])]
    if name == "fill_like":
        like = ins[0].val
        return [OV(np.full(like.shape, attrs["value"], attrs["dtype"].np))]
    if name == "shape_of":
        return [OV(np.array(ins[0].val.shape, attrs.get("out_type", int32).np))]
    if name == "no_op":
        return []
    if opdef.reference is None:
        raise LookupError(f"the fuzz oracle has no reference for op {name!r}")
    if opdef.kind == "random":
        val = opdef.reference(run=run_index, **attrs)
        kind = opdef.extra.get("distribution")
        if kind == "uniform":
            return [OV(val)]
        u = _unit(val.dtype)
        unc = None
        if kind == "truncated_normal":   # a candidate within rounding of the cut at |z| = 2 may flip
            unc = np.abs(np.abs(val.astype(np.float64)) - 2) < 1e-3
        return [_finish(OV(val, 64 * u * (_mag(val) + 1), unc), val.dtype)]
    vals = [v.val for v in ins]
    if name == "matrix_inverse" and not _well_conditioned(vals[0]):
        # singular, ill-conditioned or non-finite: the compiled kernel may raise (see
        # _expected_error) or return anything; every element is undetermined
        out = np.full(vals[0].shape, np.nan, vals[0].dtype)
        return [OV(out, None, np.ones(out.shape, bool))]
    with np.errstate(all="ignore"):
        out = opdef.reference(*vals, **attrs)
    outs = out if isinstance(out, tuple) else (out,)
    results = []
    for k, o in enumerate(outs):
        o = np.asarray(o)
        expected_dtype = op.outputs[k].dtype.np
        if o.dtype != expected_dtype:
            o = o.astype(expected_dtype)
        results.append(_bounds(op, name, opdef, attrs, ins, o))
    return results


def _well_conditioned(a, limit=1e6) -> bool:
    a = np.asarray(a, np.float64)
    if not a.size:
        return True
    if not np.all(np.isfinite(a)):
        return False
    try:
        return bool(np.linalg.cond(a) < limit)
    except np.linalg.LinAlgError:
        return False




def _needed(targets, fed: set) -> set:
    """Ids of the ops a run of `targets` executes: inputs and control inputs, stopping at fed tensors."""
    from ..framework.lowering import needed_ops
    return {op._id for op in needed_ops(list(targets), fed)}


def interpret(graph, feeds: dict, run_index: int = 0, n_ops: int | None = None, targets=None,
              state: dict | None = None) -> dict:
    """id(tensor) -> OV for every tensor of the graph (or of its first `n_ops` ops, or only what a
    run of `targets` needs), evaluating the ops in creation order. Variables: `state` maps variable
    op names to their OV before the run and is updated in place; reads and updates take effect in
    graph order (jitflow chains stateful ops by graph order)."""
    import warnings
    values: dict = {}
    for t, array in feeds.items():
        values[id(t)] = _input_value(np.asarray(array, t.dtype.np))
    ops = graph.get_operations()[:n_ops]
    if targets is not None:
        needed = _needed(targets, {id(t) for t in feeds})
        ops = [op for op in ops if op._id in needed]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # numpy's 'mean of empty slice' and the like
        _interpret_ops(ops, values, run_index, {} if state is None else state)
    return values


_UPDATE_OPS = {"assign_var": None, "assign_add_var": "add", "assign_sub_var": "sub"}


def _interpret_ops(ops, values, run_index, state):
    for op in ops:
        if op.outputs and all(id(t) in values for t in op.outputs):
            continue
        if op._op in ("placeholder",):
            raise ValueError(f"the fuzz oracle needs a feed for {op.name}")
        if op._op == "variable":
            values[id(op.outputs[0])] = OV(np.zeros(()))       # the handle: never compared
            continue
        if op._op == "read_var" or op._op in _UPDATE_OPS:
            name = op.inputs[0].op.name
            if name not in state:
                raise ValueError(f"the fuzz oracle has no value for variable {name}")
            if op._op in _UPDATE_OPS:
                state[name] = _update_value(_UPDATE_OPS[op._op], state[name], values[id(op.inputs[1])])
            current = state[name]
            values[id(op.outputs[0])] = OV(current.val.copy(), current.err, current.unc, current.zs)
            continue
        for t, ov in zip(op.outputs, _eval_op(op, values, run_index)):
            values[id(t)] = ov


def _update_value(kind, old: OV, value: OV) -> OV:
    """A variable's value after assign (kind None), assign_add or assign_sub of `value`."""
    if kind is None:
        return OV(value.val.copy(), value.err, value.unc, value.zs)
    with np.errstate(all="ignore"):
        out = np.asarray((np.add if kind == "add" else np.subtract)(old.val, value.val)).astype(old.val.dtype)
    unc = np.asarray(old.unc) | np.asarray(value.unc)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    err, extra = _elementwise_bounds(kind, {}, [old.val, value.val], [old.err, value.err], out)
    zs = (out == 0) & (np.asarray(old.zs) | np.asarray(value.zs))
    return _finish(OV(out, err, unc | extra, zs), out.dtype)



# gradients against finite differences
def check_gradient(program: Program, step: float = 1e-5) -> CaseResult:
    import jitflow as tf
    graph, values, fetches, feed = build_graph(program)
    ops = _graph_ops(graph)
    with graph.as_default():
        target = values[program.loss["value"]]
        weights = tf.constant(program.loss["weights"], tf.float64)
        loss = tf.reduce_sum(target * weights)
        xs = [t for t in feed if t.dtype == float64]
        if not xs:
            return CaseResult("skipped", "no float64 inputs", ops)
        n_forward = len(graph.get_operations())
        grads = tf.gradients(loss, xs)
    ops = _graph_ops(graph)     # the gradient graph's ops too (broadcast_grad, slice_grad, ...)
    pairs = [(x, g) for x, g in zip(xs, grads) if g is not None]
    if not pairs:
        return CaseResult("skipped", "loss does not depend on the inputs", ops)
    try:
        with tf.Session(graph=graph) as sess:
            outputs = sess.run([loss] + [g for _, g in pairs], feed)
    except Exception as exc:
        return CaseResult("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}", ops)
    loss_value, grad_values = float(outputs[0]), outputs[1:]
    rng = np.random.default_rng(abs(hash(str(program.seed))) % (2 ** 32))
    direction = {x: rng.standard_normal(feed[x].shape) for x, _ in pairs}
    norm = math.sqrt(sum(float(np.sum(d * d)) for d in direction.values())) or 1.0
    direction = {x: d / norm for x, d in direction.items()}

    def loss_at(scale):
        shifted = dict(feed)
        for x, d in direction.items():
            shifted[x] = feed[x] + scale * d
        values = interpret(graph, shifted, n_ops=n_forward)
        return float(values[id(loss)].val), float(values[id(loss)].err), values
    try:
        (f0, _, values0), (fp, ep, _), (fm, em, _) = loss_at(0.0), loss_at(step), loss_at(-step)
        (fp2, _, _), (fm2, _, _) = loss_at(2 * step), loss_at(-2 * step)
    except Exception as exc:
        return CaseResult("oracle_error", f"{type(exc).__name__}: {exc}", ops)
    if not all(math.isfinite(v) for v in (f0, fp, fm, fp2, fm2, loss_value)):
        return CaseResult("skipped", "non-finite loss", ops)
    # gradient formulas such as rsqrt's dy * -0.5 * y**3 (TF's too) under- or overflow far from 1
    magnitudes = [np.abs(v.val[np.isfinite(v.val) & (v.val != 0)]) for v in values0.values()
                  if v is not None and np.issubdtype(np.asarray(v.val).dtype, np.floating) and np.size(v.val)]
    if any(m.size and (m.max() > 1e50 or m.min() < 1e-50) for m in magnitudes):
        return CaseResult("skipped", "values beyond 1e+-50: gradient formulas may under/overflow", ops, {"range"})
    forward, backward = (fp - f0) / step, (f0 - fm) / step
    central, central2 = (fp - fm) / (2 * step), (fp2 - fm2) / (4 * step)
    scale = max(abs(f0), abs(central), 1.0)
    if abs(forward - backward) > 1e-3 * scale + 1e-6 * max(abs(forward), abs(backward)):
        return CaseResult("skipped", "not smooth within the step (a kink)", ops, {"kink"})
    # what the differences themselves may be off by: rounding noise of the loss (the oracle's error
    # bound over the step) and the truncation error (estimated from the steps h and 2h)
    fd_error = SAFETY * (ep + em) / (2 * step) + abs(central - central2)
    analytic = sum(float(np.sum(np.asarray(g, np.float64) * direction[x])) for (x, _), g in zip(pairs, grad_values))
    if not math.isfinite(analytic):
        return CaseResult("grad_mismatch", f"gradient is not finite ({analytic}); finite differences {central}",
                          ops)
    gnorm = math.sqrt(sum(float(np.sum(np.asarray(g, np.float64) ** 2)) for g in grad_values))
    tol = 1e-5 * (abs(central) + gnorm) + 1e-7 * scale + 2 * fd_error
    if abs(analytic - central) > tol:
        return CaseResult("grad_mismatch", f"directional derivative {analytic!r} vs central differences "
                                           f"{central!r} (tolerance {tol:.3g}; |grad| = {gnorm:.3g})", ops)
    if abs(loss_value - f0) > 1e-9 * scale + 1e-12:
        return CaseResult("mismatch", f"loss {loss_value!r} vs reference {f0!r}", ops)
    return CaseResult("ok", "", ops, {"grad"})


