"""Seed 9.6: batch gradient descent for linear regression three ways — hand-written
gradients, `tf.gradients`, and `GradientDescentOptimizer` — giving the same theta.

Run: python examples/gradient_descent_three_ways.py
"""
import numpy as np

import jitflow as tf
from jitflow.demo import synthetic_housing


def scaled_housing(m=20640):
    data, target = synthetic_housing(m=m)
    scaled = data.copy()
    scaled[:, 1:] = (scaled[:, 1:] - scaled[:, 1:].mean(0)) / scaled[:, 1:].std(0)
    return scaled, target


def train(mode, scaled_housing_data_plus_bias, housing_target, n_epochs=1000, learning_rate=0.01, verbose=False):
    m, n_plus_1 = scaled_housing_data_plus_bias.shape
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X = tf.constant(scaled_housing_data_plus_bias, dtype=tf.float32, name="X")
    y = tf.constant(housing_target.reshape(-1, 1), dtype=tf.float32, name="y")
    theta = tf.Variable(tf.random_uniform([n_plus_1, 1], -1.0, 1.0), name="theta")
    y_pred = tf.matmul(X, theta, name="predictions")
    error = y_pred - y
    mse = tf.reduce_mean(tf.square(error), name="mse")
    if mode == "manual":
        gradients = 2 / m * tf.matmul(tf.transpose(X), error)
        training_op = tf.assign(theta, theta - learning_rate * gradients)
    elif mode == "autodiff":
        gradients = tf.gradients(mse, [theta])[0]
        training_op = tf.assign(theta, theta - learning_rate * gradients)
    else:
        optimizer = tf.train.GradientDescentOptimizer(learning_rate=learning_rate)
        training_op = optimizer.minimize(mse)
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        sess.run(init)
        for epoch in range(n_epochs):
            if verbose and epoch % 100 == 0:
                print(f"  {mode:9s} Epoch {epoch:4d} MSE = {mse.eval():.6f}")
            sess.run(training_op)
        return theta.eval(), mse.eval()


def main(m=20640, n_epochs=1000, verbose=True):
    data, target = scaled_housing(m)
    results = {mode: train(mode, data, target, n_epochs, verbose=verbose) for mode in ("manual", "autodiff", "optimizer")}
    for mode, (theta, mse) in results.items():
        print(f"{mode:9s} final MSE {mse:.6f}  theta {np.round(theta.ravel(), 5).tolist()}")
    return results


if __name__ == "__main__":
    main()
