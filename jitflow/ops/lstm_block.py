"""The fused LSTM sequence ops (TF's BlockLSTM / cuDNN's split of the work): the recurrence of a whole
sequence as one library kernel forward and one backward, the weight gradient as ONE matmul after it.

| op                  | operands                                     | result                               |
| ------------------- | -------------------------------------------- | ------------------------------------ |
| `lstm_block`        | x [T*B, I] (time-major rows), kernel [I+N,4N],| rec [T, B, 6N]: per step and row the |
|                     | bias [4N], c0 [B,N], h0 [B,N], lengths [B]   | activated i, j, f, o, then c, h      |
|                     | (optional); attrs steps T, forget_bias,      |                                      |
|                     | (a graph op may omit steps and take x        |                                      |
|                     | [T, B, I]: expanded once T is known)         |                                      |
|                     | gate_activation (sigmoid / hard_sigmoid)     |                                      |
| `lstm_block_grad`   | rec, drec [T,B,6N], kernel, c0, lengths      | [(T+1)*B, 4N]: rows t*B+b the pre-   |
|                     |                                              | activation gate gradients, the last B|
|                     |                                              | rows [dc0, dh0, 0, 0]                |
| `lstm_block_inputs` | x, rec, h0                                   | [I+N+1, (T+1)*B]: the transpose of   |
|                     |                                              | rows [x_t, h_{t-1}, 1], then B zeros |
| `lstm_block_weight_grad` | inputs, grads                           | inputs @ grads: [I+N+1, 4N]          |
| `lstm_block_part`   | g, like; attr part: head / dc0 / dh0 (SOURCE, expanded to a slice once shapes are known)   |

Gates follow TF 1.x's LSTMCell/BasicLSTMCell: i, j, f, o = split([x, h] kernel + bias, 4);
c = sigmoid(f + forget_bias) c_prev + sigmoid(i) tanh(j); h = sigmoid(o) tanh(c) (Keras' LSTM, gates
reordered by the caller, may use hard_sigmoid = clip(0.2 z + 0.5, 0, 1) for i, f, o). A step at or past a
row's length (t >= lengths[b]) stores zero gates and copies the state through (c, h of the step
before), as TF's dynamic_rnn does; the caller zeroes those outputs. The gradient: the backward
recurrence (`lstm_block_grad`, per step only dG_t W_h^T), then [dkernel; dbias] = inputs @ grads, one
GEMM over all steps (the carry rows meet the zero rows of `lstm_block_inputs`), and dx = (grads @ W_x^T)
cropped to x's rows. Kernels: codegen/lstm_kernels.py (CPU); no GPU kernel (UnsupportedError naming the op).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir.symdim import NeedsConcreteShape, SymDim
from ..ir.types import FLOATS, INTS, TensorType
from .broadcast import fmt_shape
from .registry import LIBRARY, SOURCE, ShapeError, define_op


def _same(a, b) -> bool:
    return a is None or b is None or a == b


def _check_dims(op, what, t, want):
    if t.shape is None or len(t.shape) != len(want) or not all(_same(a, b) for a, b in zip(t.shape, want)):
        raise ShapeError(f"{op}: {what} must have shape {fmt_shape(tuple(want))}, got {fmt_shape(t.shape)}")


def _mul(a, b):
    return None if a is None or b is None else a * b


def _sizes(kernel, op):
    """(I, N) from the kernel [I + N, 4N]."""
    if kernel.shape is None or len(kernel.shape) != 2 or None in kernel.shape or kernel.shape[1] % 4:
        raise ShapeError(f"{op}: kernel must be [depth + units, 4 * units], got {fmt_shape(kernel.shape)}")
    n = kernel.shape[1] // 4
    return kernel.shape[0] - n, n


def _block_infer(types, attrs, op="lstm_block"):
    if len(types) not in (5, 6):
        raise TypeError(f"{op}: takes x, kernel, bias, c0, h0 and optionally lengths, got {len(types)} operands")
    x, kernel, bias, c0, h0 = types[:5]
    if x.dtype not in FLOATS or any(t.dtype != x.dtype for t in (kernel, bias, c0, h0)):
        raise TypeError(f"{op}: x, kernel, bias, c0 and h0 must share one float dtype, got "
                        f"{[t.dtype.name for t in types[:5]]}")
    depth, n = _sizes(kernel, op)
    _gate(attrs.get("gate_activation", "sigmoid"))
    batch = c0.shape[0] if c0.shape else None
    if attrs.get("steps") is None:      # time-major x [T, B, I], T known once the run is specialized
        steps = x.shape[0] if x.shape else None
        if batch is None and x.shape:
            batch = x.shape[1]
        _check_dims(op, "x", x, (steps, batch, depth))
    else:
        steps = int(attrs["steps"])
        if batch is None and x.shape and x.shape[0] is not None:
            batch = x.shape[0] // steps
        _check_dims(op, "x", x, (_mul(steps, batch), depth))
    _check_dims(op, "bias", bias, (4 * n,))
    _check_dims(op, "c0", c0, (batch, n))
    _check_dims(op, "h0", h0, (batch, n))
    if len(types) == 6:
        if types[5].dtype not in INTS:
            raise TypeError(f"{op}: lengths must be int32 or int64, got {types[5].dtype.name}")
        _check_dims(op, "lengths", types[5], (batch,))
    return [TensorType(x.dtype, (steps, batch, 6 * n))]


def _expand_block(emit, operands, attrs):
    """A graph op without `steps` (its x [T, B, I], T unknown when the graph was built) becomes the
    op over x's rows with T from x's specialized shape."""
    if attrs.get("steps") is not None:
        return emit.node("lstm_block", operands, attrs).results
    x = operands[0]
    steps = x.shape[0]
    if isinstance(steps, SymDim):
        raise NeedsConcreteShape(f"lstm_block: the number of steps is a run-time symbol ({steps})")
    rows = emit("reshape", [x], {"shape": (-1, x.shape[2])})
    return emit.node("lstm_block", [rows] + list(operands[1:]), dict(attrs, steps=int(steps))).results


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")


def _gate(kind):
    if kind not in GATE_ACTIVATIONS:
        raise ValueError(f"lstm_block: gate_activation must be one of {GATE_ACTIVATIONS}, got {kind!r}")
    return _sigmoid if kind == "sigmoid" else (lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0))


def _gate_slope(kind, y):
    """d gate / d z from the gate's value y."""
    return y * (1 - y) if kind == "sigmoid" else np.where((y > 0) & (y < 1), 0.2, 0.0).astype(y.dtype)


def _valid(lengths, t, batch):
    return np.ones((batch, 1), bool) if lengths is None else (t < np.asarray(lengths))[:, None]


def _block_reference(x, kernel, bias, c0, h0, lengths=None, steps=1, forget_bias=1.0, gate_activation="sigmoid"):
    sig = _gate(gate_activation)
    n = kernel.shape[1] // 4
    batch = c0.shape[0]
    rec = np.zeros((steps, batch, 6 * n), x.dtype)
    c, h = c0, h0
    for t in range(steps):
        a = np.concatenate([x[t * batch:(t + 1) * batch], h], 1) @ kernel + bias
        i, j, f, o = sig(a[:, :n]), np.tanh(a[:, n:2 * n]), sig(a[:, 2 * n:3 * n] + forget_bias), sig(a[:, 3 * n:])
        c_new = f * c + i * j
        h_new = o * np.tanh(c_new)
        valid = _valid(lengths, t, batch)
        gates = np.where(valid, np.concatenate([i, j, f, o], 1), 0)
        c, h = np.where(valid, c_new, c), np.where(valid, h_new, h)
        rec[t] = np.concatenate([gates, c, h], 1)
    return rec


def _grad_infer(types, attrs, op="lstm_block_grad"):
    if len(types) not in (4, 5):
        raise TypeError(f"{op}: takes rec, drec, kernel, c0 and optionally lengths, got {len(types)} operands")
    rec, drec, kernel = types[:3]
    _, n = _sizes(kernel, op)
    _check_dims(op, "rec", rec, (rec.shape[0], rec.shape[1], 6 * n))
    _check_dims(op, "drec", drec, rec.shape)
    return [TensorType(rec.dtype, (_mul(rec.shape[0] + 1, rec.shape[1]), 4 * n))]


def _grad_reference(rec, drec, kernel, c0, lengths=None, steps=1, forget_bias=1.0, gate_activation="sigmoid"):
    steps, batch, _ = rec.shape
    n = kernel.shape[1] // 4
    wh = kernel[kernel.shape[0] - n:]
    out = np.zeros(((steps + 1) * batch, 4 * n), rec.dtype)
    dc, dh = np.zeros((batch, n), rec.dtype), np.zeros((batch, n), rec.dtype)
    for t in reversed(range(steps)):
        i, j, f, o, c = (rec[t, :, k * n:(k + 1) * n] for k in range(5))
        c_prev = c0 if t == 0 else rec[t - 1, :, 4 * n:5 * n]
        dh = dh + drec[t, :, 5 * n:]
        dc = dc + drec[t, :, 4 * n:5 * n]
        tc = np.tanh(c)
        dc2 = dc + dh * o * (1 - tc * tc)
        d_gates = np.concatenate([dc2 * j * _gate_slope(gate_activation, i), dc2 * i * (1 - j * j),
                                  dc2 * c_prev * _gate_slope(gate_activation, f),
                                  dh * tc * _gate_slope(gate_activation, o)], 1)
        valid = _valid(lengths, t, batch)
        rows = np.where(valid, d_gates, 0)
        out[t * batch:(t + 1) * batch] = rows
        dc = np.where(valid, dc2 * f, dc)
        dh = np.where(valid, 0, dh) + rows @ wh.T
    out[steps * batch:, :n], out[steps * batch:, n:2 * n] = dc, dh
    return out


def _inputs_infer(types, attrs, op="lstm_block_inputs"):
    x, rec, h0 = types
    steps, batch = rec.shape[0], rec.shape[1]
    return [TensorType(x.dtype, (x.shape[1] + h0.shape[1] + 1, _mul(steps + 1, batch)))]


def _inputs_reference(x, rec, h0, steps=1):
    steps, batch, six_n = rec.shape
    n = six_n // 6
    h_prev = np.concatenate([h0[None], rec[:-1, :, 5 * n:]], 0).reshape(steps * batch, n)
    rows = np.concatenate([x, h_prev, np.ones((steps * batch, 1), x.dtype)], 1)
    return np.concatenate([rows, np.zeros((batch, rows.shape[1]), x.dtype)], 0).T


def _weight_grad_infer(types, attrs, op="lstm_block_weight_grad"):
    inputs, grads = types
    if inputs.dtype != grads.dtype or len(inputs.shape) != 2 or len(grads.shape) != 2:
        raise TypeError(f"{op}: takes two matrices of one dtype, got {inputs} and {grads}")
    _check_dims(op, "grads", grads, (inputs.shape[1], grads.shape[1]))
    return [TensorType(inputs.dtype, (inputs.shape[0], grads.shape[1]))]


PARTS = ("head", "dc0", "dh0")


def _part_infer(types, attrs, op="lstm_block_part"):
    g, like = types
    if attrs["part"] not in PARTS:
        raise ValueError(f"{op}: part must be one of {PARTS}, got {attrs['part']!r}")
    return [TensorType(g.dtype, like.shape)]


def _part_expand(emit, operands, attrs):
    """head: g's first like.rows rows; dc0 / dh0: columns [0, N) / [N, 2N) of g's last like.rows rows."""
    g, like = operands
    rows, cols = like.shape
    if attrs["part"] == "head":
        return [emit("slice", [g], {"begin": (0, 0), "size": (rows, cols)})]
    begin = (g.shape[0] - rows, 0 if attrs["part"] == "dc0" else cols)
    return [emit("slice", [g], {"begin": begin, "size": (rows, cols)})]


def _part_reference(g, like, part="head"):
    rows, cols = like.shape
    if part == "head":
        return g[:rows, :cols]
    return g[g.shape[0] - rows:, (0 if part == "dc0" else cols):][:, :cols]


def _block_grad(b, op, g):
    """Gradients of x, kernel, bias, c0, h0 (lengths: None) from the gradient of rec."""
    x, kernel, bias, c0, h0 = op.inputs[:5]
    lengths = list(op.inputs[5:])
    rec = op.outputs[0]
    dims = tuple(getattr(kernel.shape, "dims", kernel.shape))
    n = dims[1] // 4
    depth = dims[0] - n
    attrs = {"steps": op.attrs["steps"], "forget_bias": op.attrs["forget_bias"],
             "gate_activation": op.attrs.get("gate_activation", "sigmoid")}
    grads = b.op("lstm_block_grad", [rec, g[0], kernel, c0] + lengths, attrs)
    inputs = b.op("lstm_block_inputs", [x, rec, h0], {"steps": op.attrs["steps"]})
    both = b.op("lstm_block_weight_grad", [inputs, grads])      # [I + N + 1, 4N]: dkernel, then dbias
    d_kernel = b.op("slice", [both], {"begin": (0, 0), "size": (depth + n, 4 * n)})
    d_bias = b.op("reshape", [b.op("slice", [both], {"begin": (depth + n, 0), "size": (1, 4 * n)})],
                  {"shape": (4 * n,)})
    w_x = b.op("slice", [kernel], {"begin": (0, 0), "size": (depth, 4 * n)})
    d_x = b.op("lstm_block_part", [b.matmul(grads, w_x, transpose_b=True), x], {"part": "head"})
    d_c0 = b.op("lstm_block_part", [grads, c0], {"part": "dc0"})
    d_h0 = b.op("lstm_block_part", [grads, h0], {"part": "dh0"})
    return [d_x, d_kernel, d_bias, d_c0, d_h0] + [None] * len(lengths)


def _no_second_order(b, op, g):
    raise UnsupportedError("lstm_block: second derivatives through the fused LSTM kernel are not supported; "
                           "build the RNN with the composite cell path (jitflow.api.lstm_fast.use_fused_lstm(False))")


def _packed_weights(kernel_operand: int):
    """The scratch rule: the kernel (forward) or W_h^T (backward) packed in column panels."""
    def rule(node):
        kernel = node.operands[kernel_operand]
        return TensorType(kernel.type.dtype, (kernel.shape[0] * kernel.shape[1],))
    return rule


lstm_block = define_op("lstm_block", LIBRARY, _block_infer, reference=_block_reference, grad=_block_grad,
                       tf_name="BlockLSTM", test_domain=(-1.0, 1.0), expand=_expand_block,
                       extra={"kernel": "lstm_block", "scratch": _packed_weights(1)})
lstm_block_grad = define_op("lstm_block_grad", LIBRARY, _grad_infer, reference=_grad_reference,
                            grad=_no_second_order, differentiable=False, tf_name="BlockLSTMGrad",
                            test_domain=(-1.0, 1.0),
                            extra={"kernel": "lstm_block_grad", "scratch": _packed_weights(2)})
lstm_block_inputs = define_op("lstm_block_inputs", LIBRARY, _inputs_infer, reference=_inputs_reference,
                              grad=_no_second_order, differentiable=False, tf_name="BlockLSTMInputs",
                              extra={"kernel": "lstm_block_inputs"})
lstm_block_weight_grad = define_op("lstm_block_weight_grad", LIBRARY, _weight_grad_infer,
                                   reference=lambda inputs, grads: inputs @ grads, grad=_no_second_order,
                                   differentiable=False, tf_name="BlockLSTMWeightGrad",
                                   extra={"kernel": "lstm_block_weight_grad"})
lstm_block_part = define_op("lstm_block_part", SOURCE, _part_infer, reference=_part_reference,
                            expand=_part_expand, grad=_no_second_order, differentiable=False,
                            tf_name="BlockLSTMPart")
