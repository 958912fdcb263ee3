"""Logistic regression with mini-batch gradient descent on a two-moons-like set
made here (no downloads): sigmoid cross-entropy, accuracy on a held-out split.

Run: python examples/logistic_regression.py
"""
import numpy as np

import jitflow as tf


def make_data(m=2000, seed=0):
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi, m)
    label = rng.integers(0, 2, m)
    x = np.where(label, 1 - np.cos(angle), np.cos(angle)) + rng.normal(0, 0.1, m)
    y = np.where(label, 0.5 - np.sin(angle), np.sin(angle)) + rng.normal(0, 0.1, m)
    features = np.c_[x, y, x * x, y * y, x * y, x ** 3, y ** 3]
    return features.astype(np.float32), label.reshape(-1, 1).astype(np.float32)


def main(m=2000, n_epochs=200, batch_size=50, learning_rate=0.1, verbose=True):
    X_all, y_all = make_data(m)
    split = int(0.8 * m)
    X_train, y_train, X_test, y_test = X_all[:split], y_all[:split], X_all[split:], y_all[split:]
    tf.reset_default_graph()
    tf.set_random_seed(1)
    X = tf.placeholder(tf.float32, (None, X_all.shape[1]), name="X")
    y = tf.placeholder(tf.float32, (None, 1), name="y")
    with tf.name_scope("logistic_regression"):
        theta = tf.Variable(tf.random_uniform([X_all.shape[1], 1], -1.0, 1.0), name="theta")
        bias = tf.Variable(0.0, name="bias")
        logits = tf.matmul(X, theta) + bias
        y_proba = tf.sigmoid(logits)
    with tf.name_scope("train"):
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), name="loss")
        training_op = tf.train.GradientDescentOptimizer(learning_rate).minimize(loss)
    with tf.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(y_proba > 0.5, tf.float32), y), tf.float32))
    rng = np.random.default_rng(0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(n_epochs):
            order = rng.permutation(split)
            for start in range(0, split, batch_size):
                batch = order[start:start + batch_size]
                sess.run(training_op, {X: X_train[batch], y: y_train[batch]})
            if verbose and epoch % 50 == 0:
                print(f"  epoch {epoch}: loss {sess.run(loss, {X: X_train, y: y_train}):.4f}")
        test_accuracy = sess.run(accuracy, {X: X_test, y: y_test})
    if verbose:
        print(f"test accuracy {test_accuracy:.4f}")
    return test_accuracy


if __name__ == "__main__":
    main()
