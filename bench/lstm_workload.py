"""W11: one training step of a single-layer LSTM (hidden 256, sequence 50, batch 64, input 64; float32),
the loss the mean squared error of the last output against a target, Adam 1e-3, beside TF1 (`dynamic_rnn`
with `LSTMCell`), `jax.jit` with `lax.scan` and PyTorch's `nn.LSTM` (eager, torch.set_flush_denormal(True)).
jitflow runs the TF1 program itself (`tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(256), ...)`), which its
dynamic_rnn turns into the fused `lstm_block` op (jitflow/api/lstm_fast.py; JITFLOW_FUSED_LSTM=0 times the
unrolled cell instead). Rows, each the median of repeated calls after warm-up:

- train: forward, backward through time and the Adam update;
- forward: the loss alone.

Every system gets the same weights (TF's fused [input; hidden] x 4*hidden kernel, gates i, j, f, o, forget
bias 1.0; PyTorch's per-gate weights are the same numbers reordered) and the same data; the forward loss is
compared across systems as a checksum. FLOP count: the gate matmuls' multiply-adds x 2 (x 3 for a training
step: forward, input and weight gradients), reported as a fraction of the measured FMA peak.

Each system runs in a fresh process with a timeout; a peer may live in another interpreter
(`--peer-python tf=/path/to/python`). The child side (`python lstm_workload.py SYSTEM`) imports only the
standard library and numpy before the measured framework.
"""
from __future__ import annotations

import json
import os
import sys

from fresh_process import format_seconds, measure_rows, measure_systems, tf1_module  # noqa: E402  (bench/ on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, STEPS, INPUT, HIDDEN, LEARNING_RATE, FORGET_BIAS = 64, 50, 64, 256, 1e-3, 1.0
SYSTEMS = ("jitflow", "tf", "jax", "torch")
PEER_SYSTEMS = {"tf": ("tf",), "jax": ("jax",), "torch": ("torch",)}
ROWS = ("train", "forward")
DEFAULT_TIMEOUT = 600.0


def flops(row: str) -> float:
    """Multiply-adds x 2 of the gate matmuls (x 3 for forward + both gradients)."""
    forward = STEPS * BATCH * (INPUT + HIDDEN) * 4 * HIDDEN * 2
    return forward * (3 if row == "train" else 1)


def data():
    import numpy as np
    r = np.random.default_rng(11)
    scale = 1.0 / np.sqrt(INPUT + HIDDEN)
    kernel = (r.uniform(-1, 1, (INPUT + HIDDEN, 4 * HIDDEN)) * scale).astype(np.float32)
    bias = (r.uniform(-1, 1, 4 * HIDDEN) * 0.1).astype(np.float32)
    x = r.standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    target = r.uniform(-0.5, 0.5, (BATCH, HIDDEN)).astype(np.float32)
    return kernel, bias, x, target


# ---- the systems (child side) ------------------------------------------------------------------------
NOTES: list = []


class _OpsLSTMCell:
    """TF1's LSTMCell math (fused kernel, gates i, j, f, o, forget bias) in plain tf ops, for a TensorFlow
    whose tf.nn.rnn_cell.LSTMCell is unavailable (Keras 3); dynamic_rnn only needs this duck type."""

    def __init__(self, tf, units):
        self.tf, self.units = tf, units

    state_size = property(lambda self: (self.units, self.units))
    output_size = property(lambda self: self.units)

    def zero_state(self, batch_size, dtype):
        return (self.tf.zeros([batch_size, self.units], dtype),) * 2

    def __call__(self, inputs, state, scope=None):
        tf, (c, h) = self.tf, state
        with tf.variable_scope("lstm_cell", reuse=tf.AUTO_REUSE):
            kernel = tf.get_variable("kernel", [inputs.shape[1] + self.units, 4 * self.units])
            bias = tf.get_variable("bias", [4 * self.units], initializer=tf.zeros_initializer())
        i, j, f, o = tf.split(tf.matmul(tf.concat([inputs, h], 1), kernel) + bias, 4, 1)
        c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, (c, h)


def _tf1(tf, device=None, steps=STEPS):
    """jitflow and tf.compat.v1 share this code: the TF1 program as users write it. bench/gpu_bench.py
    builds it under `device` too, and with steps=None (a time dimension known only at run time:
    dynamic_rnn's while loop)."""
    kernel, bias, xv, tv = data()
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        x = tf.placeholder(tf.float32, (None, steps, INPUT))
        target = tf.placeholder(tf.float32, (None, HIDDEN))
        try:
            cell = tf.nn.rnn_cell.LSTMCell(HIDDEN, forget_bias=FORGET_BIAS)
        except AttributeError:              # TF >= 2.16 with Keras 3: "LSTMCell is not available with Keras 3"
            cell = _OpsLSTMCell(tf, HIDDEN)
            NOTES.append("TF's LSTMCell needs Keras 2 (tf_keras); timed dynamic_rnn with the same cell "
                         "written in tf ops (_OpsLSTMCell)")
        outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        loss = tf.reduce_mean(tf.square(outputs[:, -1] - target))
        train = tf.train.AdamOptimizer(LEARNING_RATE).minimize(loss)
        params = {v.name.split("/")[-1].split(":")[0]: v for v in tf.trainable_variables()}
        load = [tf.assign(params["kernel"], kernel), tf.assign(params["bias"], bias)]
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
        sess.run(load)
    feed = {x: xv, target: tv}
    check = float(sess.run(loss, feed))
    return {"train": lambda: sess.run([train, loss], feed), "forward": lambda: sess.run(loss, feed)}, check


def _jax():
    import jax
    import jax.numpy as jnp
    from jax import lax
    kernel, bias, xv, tv = data()
    params = {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}
    x, target = jnp.asarray(xv.transpose(1, 0, 2)), jnp.asarray(tv)       # time-major for scan

    def loss_fn(p, x, target):
        def cell(carry, xt):
            c, h = carry
            i, j, f, o = jnp.split(jnp.concatenate([xt, h], 1) @ p["kernel"] + p["bias"], 4, axis=1)
            c = c * jax.nn.sigmoid(f + FORGET_BIAS) + jax.nn.sigmoid(i) * jnp.tanh(j)
            return (c, jax.nn.sigmoid(o) * jnp.tanh(c)), None
        zeros = jnp.zeros((x.shape[1], HIDDEN), jnp.float32)
        (_, h), _ = lax.scan(cell, (zeros, zeros), x)
        return jnp.mean(jnp.square(h - target))

    @jax.jit
    def step(p, m, v, t, x, target):                       # TF1 Adam
        loss, grads = jax.value_and_grad(loss_fn)(p, x, target)
        t = t + 1
        lr_t = LEARNING_RATE * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        m = jax.tree_util.tree_map(lambda a, g: 0.9 * a + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: 0.999 * a + 0.001 * g * g, v, grads)
        p = jax.tree_util.tree_map(lambda q, a, b: q - lr_t * a / (jnp.sqrt(b) + 1e-8), p, m, v)
        return p, m, v, t, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.float32(0)]
    forward = jax.jit(loss_fn)

    def train():
        out = step(*state, x, target)
        jax.block_until_ready(out)
        state[:] = out[:4]
    check = float(forward(params, x, target))
    return {"train": train, "forward": lambda: forward(state[0], x, target).block_until_ready()}, check


def _torch():
    import numpy as np
    import torch
    torch.set_flush_denormal(True)
    kernel, bias, xv, tv = data()
    lstm = torch.nn.LSTM(INPUT, HIDDEN, batch_first=True)
    # TF gate order i, j, f, o (j: the candidate) -> torch's i, f, g, o; TF adds forget_bias to f
    order = np.concatenate([np.arange(HIDDEN) + g * HIDDEN for g in (0, 2, 1, 3)])
    b = bias.copy()
    b[2 * HIDDEN:3 * HIDDEN] += FORGET_BIAS
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.ascontiguousarray(kernel[:INPUT, order].T)))
        lstm.weight_hh_l0.copy_(torch.tensor(np.ascontiguousarray(kernel[INPUT:, order].T)))
        lstm.bias_ih_l0.copy_(torch.tensor(b[order]))
        lstm.bias_hh_l0.zero_()
    x, target = torch.tensor(xv), torch.tensor(tv)
    optimizer = torch.optim.Adam(lstm.parameters(), lr=LEARNING_RATE, eps=1e-8)

    def loss_fn():
        outputs, _ = lstm(x)
        return torch.mean(torch.square(outputs[:, -1] - target))

    def train():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return loss

    def forward():
        with torch.no_grad():
            return loss_fn()
    check = float(forward())
    return {"train": train, "forward": forward}, check


def measure_here(system: str) -> dict:
    """Runs in the child process: import the system, build, time every row (bench/fresh_process.py)."""
    builders = {"jitflow": lambda: _tf1(__import__("jitflow")), "tf": lambda: _tf1(tf1_module()), "jax": _jax,
                "torch": _torch}
    return measure_rows(system, builders, ROWS, notes=NOTES)


# ---- the parent ------------------------------------------------------------------------------------------
def run_w11(peers=("tf", "jax", "torch"), interpreters=None, timeout=DEFAULT_TIMEOUT, log=print) -> dict:
    """{'systems': {system: record}, 'flops': {row: FLOP}} for jitflow and the selected peers."""
    interpreters = interpreters or {}
    systems = ["jitflow"] + [s for peer in peers for s in PEER_SYSTEMS.get(peer, ())]
    results = measure_systems("lstm_workload", "W11", systems, interpreters, timeout, log)
    return {"systems": results, "flops": {row: flops(row) for row in ROWS}, "timeout_s": timeout,
            "interpreters": {s: interpreters.get(s.split("-")[0], sys.executable) for s in systems}}


def print_w11(report: dict, limits: dict | None = None, log=print):
    peak = (limits or {}).get("fma_flops_per_s")
    shape = f"hidden {HIDDEN}, sequence {STEPS}, batch {BATCH}, input {INPUT}"
    titles = {"train": f"LSTM training step ({shape}; Adam)", "forward": f"LSTM forward pass and loss ({shape})"}
    ok = {s: r for s, r in report["systems"].items() if r["status"] == "ok"}
    for row in ROWS:
        log(f"\nW11 {titles[row]} ({report['flops'][row] / 1e9:.2f} GFLOP)")
        log(f"  {'system':14s} {'median':>11s} {'min':>11s} {'vs jitflow':>11s} {'of FMA peak':>12s}")
        base = ok.get("jitflow", {}).get("rows", {}).get(row, {}).get("median")
        for system, r in ok.items():
            t = r["rows"][row]
            ratio = f"{t['median'] / base:10.2f}x" if base else f"{'-':>11s}"
            frac = f"{report['flops'][row] / t['median'] / peak:11.0%}" if peak else f"{'-':>12s}"
            log(f"  {system:14s} {format_seconds(t['median']):>11s} {format_seconds(t['min']):>11s} {ratio} {frac}")
        rivals = [r["rows"][row]["median"] for s, r in ok.items() if s != "jitflow"]
        if base and rivals:
            target = " (target <= 0.8)" if row == ROWS[0] else ""     # issue 19's target: the training step
            log(f"  jitflow / fastest peer: {base / min(rivals):.2f}{target}")
    base_check = ok.get("jitflow", {}).get("check")
    for system, r in ok.items():
        for note in r.get("notes", ()):
            log(f"  note: {system}: {note}")
    for system, r in ok.items():               # same weights and inputs: the same initial loss
        if base_check is not None and abs(r["check"] - base_check) > 1e-3 * abs(base_check):
            log(f"  note: {system}'s initial loss {r['check']:.6g} differs from jitflow's {base_check:.6g}")


if __name__ == "__main__":                                 # python lstm_workload.py SYSTEM
    print("@@" + json.dumps(measure_here(sys.argv[1])))
