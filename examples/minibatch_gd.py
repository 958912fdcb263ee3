"""Seed 9.7: mini-batch gradient descent, feeding each batch through placeholders.

Run: python examples/minibatch_gd.py
"""
import numpy as np

import jitflow as tf
from examples.gradient_descent_three_ways import scaled_housing


def main(m=20640, n_epochs=10, batch_size=100, learning_rate=0.01, verbose=True):
    data, target = scaled_housing(m)
    n_plus_1 = data.shape[1]
    n_batches = int(np.ceil(m / batch_size))
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X = tf.placeholder(tf.float32, shape=(None, n_plus_1), name="X")
    y = tf.placeholder(tf.float32, shape=(None, 1), name="y")
    theta = tf.Variable(tf.random_uniform([n_plus_1, 1], -1.0, 1.0, seed=42), name="theta")
    y_pred = tf.matmul(X, theta, name="predictions")
    with tf.name_scope("loss"):
        error = y_pred - y
        mse = tf.reduce_mean(tf.square(error), name="mse")
    training_op = tf.train.GradientDescentOptimizer(learning_rate=learning_rate).minimize(mse)
    init = tf.global_variables_initializer()
    rng = np.random.default_rng(42)

    def fetch_batch(epoch, batch_index):
        indices = rng.integers(m, size=batch_size)
        return data[indices], target.reshape(-1, 1)[indices]

    with tf.Session() as sess:
        sess.run(init)
        for epoch in range(n_epochs):
            for batch_index in range(n_batches):
                X_batch, y_batch = fetch_batch(epoch, batch_index)
                sess.run(training_op, feed_dict={X: X_batch, y: y_batch})
            if verbose:
                print(f"  epoch {epoch}: MSE = {mse.eval(feed_dict={X: data, y: target.reshape(-1, 1)}):.5f}")
        best_theta = theta.eval()
        final = mse.eval(feed_dict={X: data, y: target.reshape(-1, 1)})
    return best_theta, final


if __name__ == "__main__":
    theta, mse = main()
    print("theta", np.round(theta.ravel(), 4).tolist(), "MSE", mse)
