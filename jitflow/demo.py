"""`python -m jitflow demo`: the main job.

1. the seed's first programs (sections 9.2-9.5, 9.7) and a normal-equation
   regression the size of California housing, with results and timings;
2. the seed MLP of exercise 10.9 (64-300-100-10, ReLU, softmax cross-entropy)
   trained on scikit-learn's bundled digits through the Session API and through
   the Keras API, each with test accuracy, compile time and per-epoch time;
3. the same training step written in numpy, timed against the compiled one;
4. the Keras learning curves saved as a PNG (matplotlib).
5. a CNN ("Deep MNIST for experts") trained on digits upscaled to 28x28 with test accuracy, compile
   time and step time (jitflow/demo_cnn.py).
6. a sequence model: the row-LSTM on digits (each image read row by row) with test accuracy, compile
   time and step time (jitflow/demo_sequence.py).
"""
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


HIDDEN = (300, 100)
EPOCHS = 20
BATCH = 32


def digits_data():
    from jitflow.datasets import digits
    (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.2, seed=113)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 16.0
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def session_mlp(tf, runtime, data):
    print(f"10.9 MLP 64-{HIDDEN[0]}-{HIDDEN[1]}-10 on digits, Session API (Adam, batch {BATCH}, {EPOCHS} epochs)")
    x_train, y_train, x_test, y_test = data
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X = tf.placeholder(tf.float32, (None, x_train.shape[1]), name="X")
    y = tf.placeholder(tf.int32, (None,), name="y")
    with tf.name_scope("dnn"):
        h = X
        for i, units in enumerate(HIDDEN):
            h = tf.layers.dense(h, units, activation=tf.nn.relu, name=f"hidden{i + 1}")
        logits = tf.layers.dense(h, 10, name="outputs")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    with tf.name_scope("train"):
        train = tf.train.AdamOptimizer(0.001).minimize(loss)
    with tf.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y), tf.float32))
    rng = np.random.default_rng(0)
    compile_before = runtime.stats()["compile_seconds"]
    epoch_times = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(EPOCHS):
            start = time.perf_counter()
            order = rng.permutation(len(x_train))
            for begin in range(0, len(x_train) - BATCH + 1, BATCH):
                batch = order[begin:begin + BATCH]
                sess.run(train, {X: x_train[batch], y: y_train[batch]})
            epoch_times.append(time.perf_counter() - start)
        test_accuracy = sess.run(accuracy, {X: x_test, y: y_test})
        step = lambda: sess.run(train, {X: x_train[:BATCH], y: y_train[:BATCH]})  # noqa: E731
        step_seconds = _median_time(step)
    compile_seconds = runtime.stats()["compile_seconds"] - compile_before
    print(f"  test accuracy {test_accuracy:.4f}; compile {compile_seconds:.3f} s; first epoch "
          f"{epoch_times[0] * 1e3:.1f} ms, later epochs {np.median(epoch_times[1:]) * 1e3:.1f} ms; "
          f"one training step {step_seconds * 1e6:.1f} us")
    return step_seconds


def keras_mlp(tf, runtime, data, plot_path):
    print("10.9 MLP again through tf.keras (Sequential, compile, fit, evaluate, predict)")
    from jitflow import keras
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(42)
    model = keras.Sequential([keras.layers.Dense(HIDDEN[0], activation="relu", input_shape=(x_train.shape[1],)),
                              keras.layers.Dense(HIDDEN[1], activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    compile_before = runtime.stats()["compile_seconds"]
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    history = model.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH, validation_split=0.1, verbose=0,
                        callbacks=[EpochTimer()])
    loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    predictions = model.predict(x_test[:5])
    compile_seconds = runtime.stats()["compile_seconds"] - compile_before
    print(f"  test accuracy {test_accuracy:.4f}; compile {compile_seconds:.3f} s; first epoch {times[0] * 1e3:.1f} ms, "
          f"later epochs {np.median(times[1:]) * 1e3:.1f} ms; predicted {predictions.argmax(1).tolist()} for "
          f"labels {y_test[:5].tolist()}")
    try:
        history.plot(plot_path)
        print(f"  learning curves written to {plot_path}")
    except ImportError as exc:
        print(f"  (no learning-curve PNG: {exc})")


def numpy_step_seconds(data):
    """The same MLP step (forward, backward, Adam-free SGD update) in numpy, for scale."""
    x_train, y_train, _, _ = data
    rng = np.random.default_rng(0)
    sizes = (x_train.shape[1],) + HIDDEN + (10,)
    params = [[rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2 / a)),
               np.zeros(b, np.float32)] for a, b in zip(sizes[:-1], sizes[1:])]
    x, y = x_train[:BATCH], y_train[:BATCH]
    onehot = np.eye(10, dtype=np.float32)[y]

    def step():
        acts = [x]
        for i, (w, b) in enumerate(params):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
        e = np.exp(acts[-1] - acts[-1].max(1, keepdims=True))
        grad = (e / e.sum(1, keepdims=True) - onehot) / BATCH
        for i in range(len(params) - 1, -1, -1):
            w, b = params[i]
            gw, gb = acts[i].T @ grad, grad.sum(0)
            if i:
                grad = (grad @ w.T) * (acts[i] > 0)
            w -= 0.01 * gw
            b -= 0.01 * gb
    return _median_time(step)


def _median_time(fn, repeats=200):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(plot_path="jitflow_demo_learning_curves.png"):
    import jitflow as tf
    from jitflow import runtime
    start = time.perf_counter()
    seed_programs(tf)
    normal_equation(tf)
    try:
        data = digits_data()
    except ImportError as exc:
        print(f"(skipping the MLP: {exc})")
        data = None
    if data is not None:
        jit_step = session_mlp(tf, runtime, data)
        keras_mlp(tf, runtime, data, plot_path)
        numpy_step = numpy_step_seconds(data)
        print(f"training step: jitflow {jit_step * 1e6:.1f} us vs numpy {numpy_step * 1e6:.1f} us "
              f"(numpy/jitflow = {numpy_step / jit_step:.2f}x; numpy's step is plain SGD, jitflow's includes Adam)")
        from .demo_cnn import session_cnn
        session_cnn(tf, runtime)
        from .demo_sequence import session_row_lstm
        session_row_lstm(tf, runtime)
    counters = runtime.stats()
    print(f"compiled executables: {counters['compiles']}, compile time {counters['compile_seconds']:.3f} s, "
          f"disk cache hits {counters['disk_hits']}, native launches: {counters['launches']}")
    print(f"total {time.perf_counter() - start:.2f} s")
