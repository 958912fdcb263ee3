"""The cs231n lecture 8 TensorFlow program (seed 003): placeholders, a forward
pass, `tf.gradients`, manual updates, then Variables with assign ops, then
`optimizer.minimize`, Xavier initialization and `tf.layers`.

Run: python examples/cs231n_lecture.py
"""
import numpy as np

import jitflow as tf

N, D, H = 64, 1000, 100


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)).astype(np.float32), rng.normal(size=(N, D)).astype(np.float32)


def with_placeholders_and_gradients(steps=50):
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, shape=(N, D))
    y = tf.placeholder(tf.float32, shape=(N, D))
    w1 = tf.placeholder(tf.float32, shape=(D, H))
    w2 = tf.placeholder(tf.float32, shape=(H, D))
    h = tf.maximum(tf.matmul(x, w1), 0)
    y_pred = tf.matmul(h, w2)
    diff = y_pred - y
    loss = tf.reduce_mean(tf.reduce_sum(diff ** 2, axis=1))
    grad_w1, grad_w2 = tf.gradients(loss, [w1, w2])
    rng = np.random.default_rng(1)
    xv, yv = data()
    values = {x: xv, y: yv, w1: rng.normal(size=(D, H)).astype(np.float32) * 0.01,
              w2: rng.normal(size=(H, D)).astype(np.float32) * 0.01}
    losses = []
    with tf.Session() as sess:
        learning_rate = 1e-5
        for _ in range(steps):
            loss_val, grad_w1_val, grad_w2_val = sess.run([loss, grad_w1, grad_w2], feed_dict=values)
            values[w1] -= learning_rate * grad_w1_val
            values[w2] -= learning_rate * grad_w2_val
            losses.append(loss_val)
    return losses


def with_variables_and_assign(steps=50):
    tf.reset_default_graph()
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, shape=(N, D))
    y = tf.placeholder(tf.float32, shape=(N, D))
    w1 = tf.Variable(tf.random_normal((D, H), stddev=0.01))
    w2 = tf.Variable(tf.random_normal((H, D), stddev=0.01))
    h = tf.maximum(tf.matmul(x, w1), 0)
    y_pred = tf.matmul(h, w2)
    loss = tf.reduce_mean(tf.reduce_sum((y_pred - y) ** 2, axis=1))
    grad_w1, grad_w2 = tf.gradients(loss, [w1, w2])
    learning_rate = 1e-5
    new_w1 = w1.assign(w1 - learning_rate * grad_w1)
    new_w2 = w2.assign(w2 - learning_rate * grad_w2)
    updates = tf.group(new_w1, new_w2)
    xv, yv = data()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return [sess.run([loss, updates], feed_dict={x: xv, y: yv})[0] for _ in range(steps)]


def with_optimizer_xavier_and_layers(steps=50):
    tf.reset_default_graph()
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, shape=(N, D))
    y = tf.placeholder(tf.float32, shape=(N, D))
    init = tf.contrib.layers.xavier_initializer()
    h = tf.layers.dense(inputs=x, units=H, activation=tf.nn.relu, kernel_initializer=init)
    y_pred = tf.layers.dense(inputs=h, units=D, kernel_initializer=init)
    loss = tf.losses.mean_squared_error(y_pred, y)
    optimizer = tf.train.GradientDescentOptimizer(1e0)
    updates = optimizer.minimize(loss)
    xv, yv = data()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return [sess.run([loss, updates], feed_dict={x: xv, y: yv})[0] for _ in range(steps)]


def main(steps=50, verbose=True):
    results = {"placeholders + tf.gradients": with_placeholders_and_gradients(steps),
               "Variables + assign": with_variables_and_assign(steps),
               "optimizer + xavier + tf.layers": with_optimizer_xavier_and_layers(steps)}
    if verbose:
        for name, losses in results.items():
            print(f"{name:34s} loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return results


if __name__ == "__main__":
    main()
