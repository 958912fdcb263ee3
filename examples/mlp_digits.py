"""A 2-hidden-layer MLP (ReLU, softmax cross-entropy, Adam) on scikit-learn's
bundled 8x8 digits, trained one compiled executable per step.

Run: python examples/mlp_digits.py        (needs scikit-learn: pip install -e ".[examples]")
"""
import time

import numpy as np

import jitflow as tf


def load_digits_split(seed=42, test_fraction=0.2):
    from sklearn.datasets import load_digits
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(len(X) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def build(n_inputs=64, n_hidden1=256, n_hidden2=128, n_outputs=10, learning_rate=0.001):
    X = tf.placeholder(tf.float32, shape=(None, n_inputs), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    with tf.name_scope("dnn"):
        hidden1 = tf.layers.dense(X, n_hidden1, activation=tf.nn.relu, name="hidden1")
        hidden2 = tf.layers.dense(hidden1, n_hidden2, activation=tf.nn.relu, name="hidden2")
        logits = tf.layers.dense(hidden2, n_outputs, name="outputs")
    with tf.name_scope("loss"):
        xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        loss = tf.reduce_mean(xentropy, name="loss")
    with tf.name_scope("train"):
        training_op = tf.train.AdamOptimizer(learning_rate).minimize(loss)
    with tf.name_scope("eval"):
        correct = tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return X, y, loss, training_op, accuracy


def main(n_epochs=40, batch_size=32, verbose=True):
    X_train, y_train, X_test, y_test = load_digits_split()
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X, y, loss, training_op, accuracy = build()
    rng = np.random.default_rng(0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        start = time.perf_counter()
        for epoch in range(n_epochs):
            order = rng.permutation(len(X_train))
            for begin in range(0, len(X_train) - batch_size + 1, batch_size):
                batch = order[begin:begin + batch_size]
                sess.run(training_op, feed_dict={X: X_train[batch], y: y_train[batch]})
            if verbose and (epoch % 10 == 0 or epoch == n_epochs - 1):
                acc = sess.run(accuracy, {X: X_test, y: y_test})
                print(f"  epoch {epoch:3d}  test accuracy {acc:.4f}  ({time.perf_counter() - start:.2f} s)")
        test_accuracy = sess.run(accuracy, {X: X_test, y: y_test})
    if verbose:
        print(f"test accuracy {test_accuracy:.4f}")
    return test_accuracy


if __name__ == "__main__":
    main()
