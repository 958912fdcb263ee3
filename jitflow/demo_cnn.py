"""The CNN section of `python -m jitflow demo` (jitflow/demo.py): the "Deep MNIST for experts" network
(conv 5x5x32, max-pool, conv 5x5x64, max-pool, dense 1024 with dropout, dense 10, Adam) written with
`tf.layers`, trained for a few epochs on scikit-learn's digits upscaled to 28x28 through the Session
API, with test accuracy, compile time and the time of one training step. The full-length runs are
examples/deep_mnist.py (Session API) and examples/keras_cnn.py (Keras).
"""
from __future__ import annotations

import time

import numpy as np

EPOCHS = 8
BATCH = 50


def digits_28x28():
    from jitflow.datasets import digits
    (x_train, y_train), (x_test, y_test) = digits.load_data(image_size=28)
    return ((x_train / np.float32(255)).astype(np.float32)[..., None], y_train.astype(np.int32),
            (x_test / np.float32(255)).astype(np.float32)[..., None], y_test.astype(np.int32))


def build(tf, learning_rate=1e-3):
    X = tf.placeholder(tf.float32, (None, 28, 28, 1), name="X")
    y = tf.placeholder(tf.int32, (None,), name="y")
    training = tf.placeholder_with_default(False, (), name="training")
    with tf.name_scope("cnn"):
        h = tf.layers.conv2d(X, 32, 5, padding="same", activation=tf.nn.relu, name="conv1")
        h = tf.layers.max_pooling2d(h, 2, 2, padding="same", name="pool1")
        h = tf.layers.conv2d(h, 64, 5, padding="same", activation=tf.nn.relu, name="conv2")
        h = tf.layers.max_pooling2d(h, 2, 2, padding="same", name="pool2")
        h = tf.layers.dense(tf.layers.flatten(h), 1024, activation=tf.nn.relu, name="fc1")
        h = tf.layers.dropout(h, rate=0.5, training=training)
        logits = tf.layers.dense(h, 10, name="logits")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    with tf.name_scope("train"):
        train = tf.train.AdamOptimizer(learning_rate).minimize(loss)
    with tf.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y), tf.float32))
    return X, y, training, train, accuracy


def train_timed(tf, runtime, train, feed_of, accuracy, test_feed, rows: int, epochs: int, batch: int):
    """Shuffled mini-batch epochs of `train` (feeds from `feed_of(row indices)`), each step timed, then the
    test accuracy: (accuracy, compile seconds, step times, start time). Shared by the demo's sections."""
    rng = np.random.default_rng(0)
    compile_before = runtime.stats()["compile_seconds"]
    step_times = []
    start = time.perf_counter()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(epochs):
            order = rng.permutation(rows)
            for begin in range(0, rows - batch + 1, batch):
                t0 = time.perf_counter()
                sess.run(train, feed_of(order[begin:begin + batch]))
                step_times.append(time.perf_counter() - t0)
        test_accuracy = sess.run(accuracy, test_feed)
    return test_accuracy, runtime.stats()["compile_seconds"] - compile_before, step_times, start


def session_cnn(tf, runtime, epochs=EPOCHS, batch=BATCH, train_samples=None):
    """Prints the results; returns {"accuracy", "compile_seconds", "step_seconds", "steps"}.
    train_samples: train on the first N images only (quick checks)."""
    x_train, y_train, x_test, y_test = digits_28x28()
    x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    print(f"CNN (Deep MNIST for experts: conv 5x5x32, pool, conv 5x5x64, pool, dense 1024 + dropout, dense 10) "
          f"on digits upscaled to 28x28, tf.layers + Session API (Adam, batch {batch}, {epochs} epochs)")
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X, y, training, train, accuracy = build(tf)
    test_accuracy, compile_seconds, step_times, start = train_timed(
        tf, runtime, train, lambda index: {X: x_train[index], y: y_train[index], training: True},
        accuracy, {X: x_test, y: y_test}, len(x_train), epochs, batch)
    step = float(np.median(step_times[1:]))
    print(f"  test accuracy {test_accuracy:.4f}; compile {compile_seconds:.3f} s; first step "
          f"{step_times[0] * 1e3:.1f} ms, one training step {step * 1e3:.1f} ms "
          f"({len(step_times)} steps, {time.perf_counter() - start:.1f} s in all); "
          f"full runs: python -m examples.deep_mnist, python -m examples.keras_cnn")
    return {"accuracy": float(test_accuracy), "compile_seconds": compile_seconds, "step_seconds": step,
            "steps": len(step_times)}
