"""The benchmark workloads W1-W8 of shared/BENCHMARKS.md, for jitflow and each
peer. A workload builder returns a zero-argument callable (one timed unit of
work) after doing its set-up and warm-up; `None` means the system cannot run
it. Builders import their framework lazily, so a missing peer only skips its
rows. float32 throughout.
"""
from __future__ import annotations

import numpy as np

W1_N = 1 << 24
W2_SHAPE = (8192, 1024)
W3_SHAPES = ((1024, 1024, 1024), (256, 784, 512))
W4_SIZES = (784, 512, 256, 10)
W4_BATCH = 256
W6_SHAPE = (20640, 9)
W7_DATA, W7_BATCH = (100000, 20), 100


def rng():
    return np.random.default_rng(1234)


def w1_data():
    r = rng()
    return r.random(W1_N, np.float32), r.random(W1_N, np.float32)


def w2_data():
    return rng().standard_normal(W2_SHAPE, np.float32)


def w4_data():
    r = rng()
    x = r.standard_normal((W4_BATCH, W4_SIZES[0]), np.float32)
    y = r.integers(0, W4_SIZES[-1], W4_BATCH).astype(np.int32)
    params = []
    for fan_in, fan_out in zip(W4_SIZES[:-1], W4_SIZES[1:]):
        params.append((r.standard_normal((fan_in, fan_out), np.float32) * np.float32(np.sqrt(2 / fan_in)),
                       np.zeros(fan_out, np.float32)))
    return x, y, params


def w6_data():
    r = rng()
    x = np.c_[np.ones((W6_SHAPE[0], 1)), r.standard_normal((W6_SHAPE[0], W6_SHAPE[1] - 1))].astype(np.float32)
    y = (x @ r.standard_normal((W6_SHAPE[1], 1)) + r.standard_normal((W6_SHAPE[0], 1)) * 0.1).astype(np.float32)
    return x, y


def w7_data():
    r = rng()
    x = r.standard_normal(W7_DATA, np.float32)
    y = (x @ r.standard_normal((W7_DATA[1], 1)) > 0).astype(np.float32)
    return x, y


# ---- jitflow ------------------------------------------------------------------------------------
def jitflow_workloads():
    import jitflow as tf

    def w1():
        x, y = w1_data()
        f = tf.jit(lambda a, b: a * a * b + b + 2)
        f(x, y)
        return lambda: f(x, y)

    def w2():
        data = w2_data()
        f = tf.jit(lambda a: tf.nn.softmax(a))
        f(data)
        return lambda: f(data)

    def w3(shape):
        m, k, n = shape
        a = rng().standard_normal((m, k), np.float32)
        b = rng().standard_normal((k, n), np.float32)
        f = tf.jit(lambda p, q: tf.matmul(p, q))
        f(a, b)
        return lambda: f(a, b)

    def w4():
        x, y, params = w4_data()
        graph = tf.Graph()
        with graph.as_default():
            X = tf.placeholder(tf.float32, (None, W4_SIZES[0]))
            Y = tf.placeholder(tf.int32, (None,))
            h = X
            for i, (w, b) in enumerate(params):
                W, B = tf.Variable(w), tf.Variable(b)
                h = tf.matmul(h, W) + B
                if i < len(params) - 1:
                    h = tf.nn.relu(h)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=h))
            train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
            sess = tf.Session(graph=graph)
            sess.run(tf.global_variables_initializer())
        feed = {X: x, Y: y}
        sess.run([train, loss], feed)
        return lambda: sess.run([train, loss], feed)

    def w5_jit():
        f = tf.jit(lambda a, b: a + b)
        a, b = np.float32(1), np.float32(2)
        f(a, b)
        return lambda: f(a, b)

    def w5_session():
        graph = tf.Graph()
        with graph.as_default():
            a = tf.placeholder(tf.float32, ())
            b = tf.placeholder(tf.float32, ())
            c = a + b
            sess = tf.Session(graph=graph)
        feed = {a: 1.0, b: 2.0}
        sess.run(c, feed)
        return lambda: sess.run(c, feed)

    def w6():
        xv, yv = w6_data()
        graph = tf.Graph()
        with graph.as_default():
            X = tf.constant(xv)
            y = tf.constant(yv)
            XT = tf.transpose(X)
            theta = tf.matmul(tf.matmul(tf.matrix_inverse(tf.matmul(XT, X)), XT), y)
            sess = tf.Session(graph=graph)
        sess.run(theta)
        return lambda: sess.run(theta)

    def w7():
        xv, yv = w7_data()
        graph = tf.Graph()
        with graph.as_default():
            X = tf.placeholder(tf.float32, (None, W7_DATA[1]))
            Y = tf.placeholder(tf.float32, (None, 1))
            theta = tf.Variable(tf.zeros([W7_DATA[1], 1]))
            logits = tf.matmul(X, theta)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=logits))
            train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
            sess = tf.Session(graph=graph)
            sess.run(tf.global_variables_initializer())
        batches = [(xv[i:i + W7_BATCH], yv[i:i + W7_BATCH]) for i in range(0, W7_DATA[0], W7_BATCH)]
        sess.run(train, {X: batches[0][0], Y: batches[0][1]})

        def epoch():
            for xb, yb in batches:
                sess.run(train, {X: xb, Y: yb})
        return epoch

    return {"W1": w1, "W2": w2, "W3a": lambda: w3(W3_SHAPES[0]), "W3b": lambda: w3(W3_SHAPES[1]), "W4": w4,
            "W5-jit": w5_jit, "W5-session": w5_session, "W6": w6, "W7": w7}


# ---- numpy --------------------------------------------------------------------------------------
def numpy_softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_workloads():
    def w1():
        x, y = w1_data()
        return lambda: x * x * y + y + 2

    def w2():
        data = w2_data()
        return lambda: numpy_softmax(data)

    def w3(shape):
        m, k, n = shape
        a = rng().standard_normal((m, k), np.float32)
        b = rng().standard_normal((k, n), np.float32)
        return lambda: a @ b

    def w4():
        x, y, params = w4_data()
        params = [[w.copy(), b.copy()] for w, b in params]
        onehot = np.eye(W4_SIZES[-1], dtype=np.float32)[y]

        def step():
            acts = [x]
            for i, (w, b) in enumerate(params):
                z = acts[-1] @ w + b
                acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
            probs = numpy_softmax(acts[-1])
            grad = (probs - onehot) / W4_BATCH
            for i in range(len(params) - 1, -1, -1):
                w, b = params[i]
                gw, gb = acts[i].T @ grad, grad.sum(0)
                if i:
                    grad = (grad @ w.T) * (acts[i] > 0)
                w -= 0.01 * gw
                b -= 0.01 * gb
        return step

    def w5():
        a, b = np.float32(1), np.float32(2)
        return lambda: np.add(a, b)

    def w6():
        x, y = w6_data()
        return lambda: np.linalg.inv(x.T @ x) @ x.T @ y

    def w7():
        xv, yv = w7_data()
        theta = np.zeros((W7_DATA[1], 1), np.float32)
        batches = [(xv[i:i + W7_BATCH], yv[i:i + W7_BATCH]) for i in range(0, W7_DATA[0], W7_BATCH)]

        def epoch():
            for xb, yb in batches:
                p = 1 / (1 + np.exp(-(xb @ theta)))
                theta[...] -= 0.1 * (xb.T @ (p - yb)) / W7_BATCH
        return epoch

    return {"W1": w1, "W2": w2, "W3a": lambda: w3(W3_SHAPES[0]), "W3b": lambda: w3(W3_SHAPES[1]), "W4": w4,
            "W5-jit": w5, "W6": w6, "W7": w7}


# ---- JAX (optional) -----------------------------------------------------------------------------
def jax_workloads():
    import jax
    import jax.numpy as jnp

    def ready(fn, *args):
        fn(*args).block_until_ready()
        return lambda: fn(*args).block_until_ready()

    def w1():
        x, y = (jnp.asarray(a) for a in w1_data())
        return ready(jax.jit(lambda a, b: a * a * b + b + 2), x, y)

    def w2():
        return ready(jax.jit(lambda a: jax.nn.softmax(a, axis=1)), jnp.asarray(w2_data()))

    def w3(shape):
        m, k, n = shape
        a = jnp.asarray(rng().standard_normal((m, k), np.float32))
        b = jnp.asarray(rng().standard_normal((k, n), np.float32))
        return ready(jax.jit(jnp.matmul), a, b)

    def w4():
        x, y, params = w4_data()
        params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        x, y = jnp.asarray(x), jnp.asarray(y)

        def loss(ps):
            h = x
            for i, (w, b) in enumerate(ps):
                h = h @ w + b
                if i < len(ps) - 1:
                    h = jax.nn.relu(h)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1))

        @jax.jit
        def step(ps):
            grads = jax.grad(loss)(ps)
            return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(ps, grads)]
        state = {"p": step(params)}

        def run():
            state["p"] = step(state["p"])
            jax.block_until_ready(state["p"])
        return run

    def w5():
        f = jax.jit(lambda a, b: a + b)
        a, b = jnp.float32(1), jnp.float32(2)
        return ready(f, a, b)

    def w6():
        x, y = (jnp.asarray(a) for a in w6_data())
        return ready(jax.jit(lambda p, q: jnp.linalg.inv(p.T @ p) @ p.T @ q), x, y)

    def w7():
        xv, yv = w7_data()
        batches = [(jnp.asarray(xv[i:i + W7_BATCH]), jnp.asarray(yv[i:i + W7_BATCH]))
                   for i in range(0, W7_DATA[0], W7_BATCH)]

        @jax.jit
        def step(theta, xb, yb):
            p = jax.nn.sigmoid(xb @ theta)
            return theta - 0.1 * (xb.T @ (p - yb)) / W7_BATCH
        state = {"t": step(jnp.zeros((W7_DATA[1], 1), jnp.float32), *batches[0])}

        def epoch():
            for xb, yb in batches:
                state["t"] = step(state["t"], xb, yb)
            state["t"].block_until_ready()
        return epoch

    return {"W1": w1, "W2": w2, "W3a": lambda: w3(W3_SHAPES[0]), "W3b": lambda: w3(W3_SHAPES[1]), "W4": w4,
            "W5-jit": w5, "W6": w6, "W7": w7}


# ---- PyTorch (optional, eager) ------------------------------------------------------------------
def torch_workloads():
    import torch

    def w1():
        x, y = (torch.from_numpy(a) for a in w1_data())
        return lambda: x * x * y + y + 2

    def w2():
        data = torch.from_numpy(w2_data())
        return lambda: torch.softmax(data, dim=1)

    def w3(shape):
        m, k, n = shape
        a = torch.from_numpy(rng().standard_normal((m, k), np.float32))
        b = torch.from_numpy(rng().standard_normal((k, n), np.float32))
        return lambda: a @ b

    def w4():
        x, y, params = w4_data()
        x, y = torch.from_numpy(x), torch.from_numpy(y).long()
        ps = [(torch.from_numpy(w.copy()).requires_grad_(), torch.from_numpy(b.copy()).requires_grad_())
              for w, b in params]
        flat = [t for pair in ps for t in pair]
        opt = torch.optim.SGD(flat, lr=0.01)

        def step():
            h = x
            for i, (w, b) in enumerate(ps):
                h = h @ w + b
                if i < len(ps) - 1:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    def w5():
        a, b = torch.tensor(1.0), torch.tensor(2.0)
        return lambda: a + b

    def w6():
        x, y = (torch.from_numpy(a) for a in w6_data())
        return lambda: torch.linalg.inv(x.T @ x) @ x.T @ y

    return {"W1": w1, "W2": w2, "W3a": lambda: w3(W3_SHAPES[0]), "W3b": lambda: w3(W3_SHAPES[1]), "W4": w4,
            "W5-jit": w5, "W6": w6}


SYSTEMS = {"jitflow": jitflow_workloads, "numpy": numpy_workloads, "jax": jax_workloads, "torch": torch_workloads}

# bytes moved or flops done per unit of work, for the "fraction of the limit" column
WORK = {
    "W1": ("bytes", 3 * 4 * W1_N),
    "W2": ("bytes", 2 * 4 * W2_SHAPE[0] * W2_SHAPE[1]),
    "W3a": ("flops", 2 * np.prod(W3_SHAPES[0])),
    "W3b": ("flops", 2 * np.prod(W3_SHAPES[1])),
    "W4": ("flops", 3 * 2 * W4_BATCH * sum(a * b for a, b in zip(W4_SIZES[:-1], W4_SIZES[1:]))),
}
