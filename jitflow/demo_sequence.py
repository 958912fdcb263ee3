"""The sequence-model section of `python -m jitflow demo` (jitflow/demo.py): the classic TF1 recurrent
tutorial on scikit-learn's 8x8 digits, each image read row by row (8 steps of 8 pixels) by a
`BasicLSTMCell` unrolled with `tf.contrib.rnn.static_rnn`, a softmax layer on the last output, Adam with
a decaying rate, through the Session API; prints test accuracy, compile time and the time of one
training step. The full-length runs (TF1 and Keras) are examples/lstm_digits_rows.py; the other sequence
examples are examples/char_lm.py and examples/keras_text_classifier.py.
"""
from __future__ import annotations

import time

import numpy as np

from .demo_cnn import train_timed

EPOCHS = 20
BATCH = 32


def digits_rows():
    from jitflow.datasets import digits
    (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.2, seed=113)
    scale = lambda x: (x / 16.0).astype(np.float32)          # noqa: E731
    return scale(x_train), y_train.astype(np.int32), scale(x_test), y_test.astype(np.int32)


def build(tf, steps_per_epoch, num_hidden=128, learning_rate=0.01, decay=0.95):
    from jitflow.contrib import rnn
    X = tf.placeholder(tf.float32, [None, 8, 8], name="X")
    y = tf.placeholder(tf.int32, [None], name="y")
    with tf.name_scope("row_lstm"):
        outputs, _ = rnn.static_rnn(rnn.BasicLSTMCell(num_hidden, forget_bias=1.0), tf.unstack(X, 8, 1),
                                    dtype=tf.float32)
        logits = tf.layers.dense(outputs[-1], 10, name="softmax")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    with tf.name_scope("train"):
        step = tf.Variable(0, trainable=False, name="global_step")
        rate = tf.train.exponential_decay(learning_rate, step, steps_per_epoch, decay, staircase=True)
        train = tf.train.AdamOptimizer(rate).minimize(loss, global_step=step)
    with tf.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y), tf.float32))
    return X, y, train, accuracy


def session_row_lstm(tf, runtime, epochs=EPOCHS, batch=BATCH):
    """Prints the results; returns {"accuracy", "compile_seconds", "step_seconds", "steps"}."""
    x_train, y_train, x_test, y_test = digits_rows()
    print(f"row-LSTM (each 8x8 digit read as 8 rows by a 128-unit BasicLSTMCell, static_rnn, softmax on the "
          f"last output), Session API (Adam, batch {batch}, {epochs} epochs)")
    tf.reset_default_graph()
    tf.set_random_seed(1)
    X, y, train, accuracy = build(tf, len(x_train) // batch)
    test_accuracy, compile_seconds, step_times, start = train_timed(
        tf, runtime, train, lambda index: {X: x_train[index], y: y_train[index]},
        accuracy, {X: x_test, y: y_test}, len(x_train), epochs, batch)
    step = float(np.median(step_times[1:]))
    print(f"  test accuracy {test_accuracy:.4f}; compile {compile_seconds:.3f} s; first step "
          f"{step_times[0] * 1e3:.1f} ms, one training step {step * 1e3:.2f} ms "
          f"({len(step_times)} steps, {time.perf_counter() - start:.1f} s in all); "
          f"full runs: python -m examples.lstm_digits_rows, python -m examples.char_lm, "
          f"python -m examples.keras_text_classifier")
    return {"accuracy": float(test_accuracy), "compile_seconds": compile_seconds, "step_seconds": step,
            "steps": len(step_times)}
