"""The classic TF1 recurrent tutorial on the 8x8 digits: each image is read row by row, a
sequence of 8 steps of 8 pixels, by an LSTM whose last output is classified (10 classes).

Two ways, the same task:
- `tf1`: `tf.contrib.rnn.BasicLSTMCell` (output dropout through `DropoutWrapper` while training)
  unrolled by `tf.contrib.rnn.static_rnn`, a softmax layer on `outputs[-1]`, Adam with an
  exponentially decaying rate, feed_dict batches (as aymericdamien's recurrent_network.py);
- `keras`: `keras.Sequential([LSTM(...), Dense(10, "softmax")])` with compile / fit / evaluate.

Run: python examples/lstm_digits_rows.py        (the digits need scikit-learn)
"""
import time

import numpy as np

import jitflow as tf


def load(seed=113):
    (x_train, y_train), (x_test, y_test) = tf.datasets.digits.load_data(test_split=0.2, seed=seed)
    scale = lambda x: (x / 16.0).astype(np.float32)          # noqa: E731
    return scale(x_train), y_train.astype(np.int32), scale(x_test), y_test.astype(np.int32)


def tf1(n_epochs=30, batch_size=32, num_hidden=128, learning_rate=0.01, decay=0.95, keep_prob=0.7, seed=1,
        verbose=True):
    """Test accuracy of the TF1 graph program."""
    from jitflow.contrib import rnn
    x_train, y_train, x_test, y_test = load()
    timesteps, num_input, num_classes = 8, 8, 10
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    X = tf.placeholder("float", [None, timesteps, num_input])
    Y = tf.placeholder(tf.int32, [None])
    x = tf.unstack(X, timesteps, 1)
    keep = tf.placeholder_with_default(1.0, [], name="keep_prob")         # fed only while training
    lstm_cell = rnn.DropoutWrapper(rnn.BasicLSTMCell(num_hidden, forget_bias=1.0), output_keep_prob=keep)
    outputs, _ = rnn.static_rnn(lstm_cell, x, dtype=tf.float32)
    logits = tf.layers.dense(outputs[-1], num_classes, name="softmax")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=logits))
    step = tf.Variable(0, trainable=False, name="global_step")
    steps_per_epoch = len(x_train) // batch_size
    rate = tf.train.exponential_decay(learning_rate, step, steps_per_epoch, decay, staircase=True)
    train_op = tf.train.AdamOptimizer(rate).minimize(loss, global_step=step)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), Y), tf.float32))
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(n_epochs):
            order = rng.permutation(len(x_train))
            for begin in range(0, len(order) - batch_size + 1, batch_size):
                batch = order[begin:begin + batch_size]
                sess.run(train_op, {X: x_train[batch], Y: y_train[batch], keep: keep_prob})
            if verbose and (epoch % 5 == 0 or epoch == n_epochs - 1):
                acc = sess.run(accuracy, {X: x_test, Y: y_test})
                print(f"  [tf1] epoch {epoch:3d}  test accuracy {acc:.4f}  ({time.perf_counter() - start:.1f} s)")
        result = float(sess.run(accuracy, {X: x_test, Y: y_test}))
    if verbose:
        print(f"[tf1] row-LSTM test accuracy {result:.4f}")
    return result


def keras(n_epochs=30, batch_size=32, units=64, seed=1, verbose=True):
    """Test accuracy of the Keras model."""
    from jitflow import keras as k
    x_train, y_train, x_test, y_test = load()
    k.backend.clear_session()
    k.utils.set_random_seed(seed)
    model = k.Sequential([k.layers.LSTM(units, input_shape=(8, 8)),
                          k.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=k.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=n_epochs, batch_size=batch_size, verbose=0)
    _, result = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        model.summary()
        print(f"[keras] row-LSTM test accuracy {result:.4f}  ({time.perf_counter() - start:.1f} s)")
    return float(result)


def main(n_epochs=30, verbose=True):
    return {"tf1": tf1(n_epochs, verbose=verbose), "keras": keras(n_epochs, verbose=verbose)}


if __name__ == "__main__":
    main()
