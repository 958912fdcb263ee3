"""`python -m jitflow demo`: the main job. Runs the seed's first programs
(sections 9.2-9.5, 9.7) on compiled code and a normal-equation linear
regression on a deterministic synthetic data set the size of California
housing, printing results, timings and compile statistics."""
from __future__ import annotations

import time

import numpy as np


def _timed(label, fn, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    seconds = (time.perf_counter() - start) / repeat
    print(f"  {label:<44s} {seconds * 1e3:9.3f} ms")
    return result


def synthetic_housing(m=20640, n=8, seed=42):
    """A deterministic linear-regression set shaped like California housing."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(m, n)) * rng.uniform(0.5, 3.0, size=n) + rng.uniform(-2, 2, size=n)
    true_theta = rng.uniform(-1, 1, size=(n + 1, 1))
    with_bias = np.c_[np.ones((m, 1)), features]
    target = with_bias @ true_theta + rng.normal(scale=0.3, size=(m, 1))
    return with_bias, target


def seed_programs(tf):
    print("9.2  f = x*x*y + y + 2")
    tf.reset_default_graph()
    x = tf.Variable(3, name="x")
    y = tf.Variable(3, name="y")
    f = x * x * y + y + 2
    sess = tf.Session()
    sess.run(x.initializer)
    sess.run(y.initializer)
    result = _timed("first run (compiles)", lambda: sess.run(f))
    _timed("steady-state Session.run", lambda: sess.run(f), repeat=1000)
    print(f"  f = {result}")
    sess.close()

    print("9.4  node value lifecycle")
    w = tf.constant(3)
    x = w + 2
    y = x + 5
    z = x * 3
    with tf.Session() as sess:
        y_val, z_val = sess.run([y, z])
    print(f"  y = {y_val}, z = {z_val}")

    print("9.7  placeholders")
    A = tf.placeholder(tf.float32, shape=(None, 3))
    B = A + 5
    with tf.Session() as sess:
        b1 = B.eval(feed_dict={A: [[1, 2, 3]]})
        b2 = B.eval(feed_dict={A: [[4, 5, 6], [7, 8, 9]]})
    print(f"  B_val_1 = {b1.tolist()}\n  B_val_2 = {b2.tolist()}")


def normal_equation(tf):
    print("9.5  normal equation on a synthetic housing-sized set (20640 x 9)")
    data, target = synthetic_housing()
    tf.reset_default_graph()
    X = tf.constant(data, dtype=tf.float32, name="X")
    y = tf.constant(target, dtype=tf.float32, name="y")
    XT = tf.transpose(X)
    theta = tf.matmul(tf.matmul(tf.matrix_inverse(tf.matmul(XT, X)), XT), y)
    with tf.Session() as sess:
        theta_value = _timed("first run (compiles)", theta.eval)
        _timed("steady-state Session.run", theta.eval, repeat=20)
    x32, y32 = data.astype(np.float32), target.astype(np.float32)
    _timed("numpy inv(X^T X) X^T y (same float32 math)",
           lambda: np.linalg.inv(x32.T @ x32) @ x32.T @ y32, repeat=20)
    reference = np.linalg.lstsq(data, target, rcond=None)[0]
    error = np.max(np.abs(theta_value - reference) / (np.abs(reference) + 1e-3))
    print(f"  theta = {np.round(theta_value.ravel(), 4).tolist()}")
    print(f"  max relative difference to numpy lstsq: {error:.2e}")


def main():
    import jitflow as tf
    from jitflow import runtime
    start = time.perf_counter()
    seed_programs(tf)
    normal_equation(tf)
    counters = runtime.stats()
    print(f"compiled executables: {counters['compiles']}, compile time {counters['compile_seconds']:.3f} s, "
          f"native launches: {counters['launches']}")
    print(f"total {time.perf_counter() - start:.2f} s")
