"""TensorFlow's "Deep MNIST for experts" tutorial in TF 1.x style: conv 5x5x32 + ReLU, max-pool 2x2,
conv 5x5x64 + ReLU, max-pool 2x2, a 1024-unit ReLU layer with dropout (keep_prob fed through a
placeholder), a 10-unit readout, softmax cross-entropy and Adam, trained one compiled executable per step.

Data: scikit-learn's 8x8 digits upscaled to MNIST's 28x28 layout (jitflow.datasets.digits,
image_size=28), or real MNIST from the four local IDX files when a directory is given with
`--mnist DIR` or the JITFLOW_MNIST_DIR environment variable (jitflow.datasets.mnist; nothing is downloaded).

Run: python -m examples.deep_mnist [--mnist DIR] [--epochs N]
Prints the test accuracy, the compile time and the time of one training step.
"""
import argparse
import os
import time

import numpy as np

import jitflow as tf
from jitflow import runtime


def load_data(mnist_dir=None):
    """(name, (x_train, y_train), (x_test, y_test)): images float32 [n, 28, 28, 1] in [0, 1], int labels."""
    mnist_dir = mnist_dir or os.environ.get("JITFLOW_MNIST_DIR")
    if mnist_dir:
        from jitflow.datasets import mnist
        name, ((x_train, y_train), (x_test, y_test)) = "MNIST", mnist.load_data(path=mnist_dir)
    else:
        from jitflow.datasets import digits
        name = "digits upscaled to 28x28"
        (x_train, y_train), (x_test, y_test) = digits.load_data(image_size=28)

    def images(x):
        return (x.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return name, (images(x_train), y_train.astype(np.int64)), (images(x_test), y_test.astype(np.int64))


# --- the tutorial's helpers
def weight_variable(shape):
    return tf.Variable(tf.truncated_normal(shape, stddev=0.1))


def bias_variable(shape):
    return tf.Variable(tf.constant(0.1, shape=shape))


def conv2d(x, W):
    return tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def build(learning_rate=1e-3):
    """The graph: returns a dict of the placeholders and the tensors the training loop runs."""
    x = tf.placeholder(tf.float32, shape=[None, 28, 28, 1], name="x")
    y_ = tf.placeholder(tf.float32, shape=[None, 10], name="y_")
    keep_prob = tf.placeholder(tf.float32, name="keep_prob")

    with tf.name_scope("conv1"):
        W_conv1 = weight_variable([5, 5, 1, 32])
        b_conv1 = bias_variable([32])
        h_conv1 = tf.nn.relu(conv2d(x, W_conv1) + b_conv1)
        h_pool1 = max_pool_2x2(h_conv1)
    with tf.name_scope("conv2"):
        W_conv2 = weight_variable([5, 5, 32, 64])
        b_conv2 = bias_variable([64])
        h_conv2 = tf.nn.relu(conv2d(h_pool1, W_conv2) + b_conv2)
        h_pool2 = max_pool_2x2(h_conv2)
    with tf.name_scope("fc1"):
        W_fc1 = weight_variable([7 * 7 * 64, 1024])
        b_fc1 = bias_variable([1024])
        h_pool2_flat = tf.reshape(h_pool2, [-1, 7 * 7 * 64])
        h_fc1 = tf.nn.relu(tf.matmul(h_pool2_flat, W_fc1) + b_fc1)
        h_fc1_drop = tf.nn.dropout(h_fc1, keep_prob)
    with tf.name_scope("fc2"):
        W_fc2 = weight_variable([1024, 10])
        b_fc2 = bias_variable([10])
        y_conv = tf.matmul(h_fc1_drop, W_fc2) + b_fc2

    cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv))
    train_step = tf.train.AdamOptimizer(learning_rate).minimize(cross_entropy)
    correct_prediction = tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1))
    correct = tf.reduce_sum(tf.cast(correct_prediction, tf.float32))
    return dict(x=x, y_=y_, keep_prob=keep_prob, loss=cross_entropy, train_step=train_step, correct=correct)


def evaluate(sess, g, images, labels, batch_size=500):
    """Test accuracy, in batches (keep_prob 1)."""
    hits = 0.0
    for begin in range(0, len(images), batch_size):
        hits += sess.run(g["correct"], {g["x"]: images[begin:begin + batch_size],
                                        g["y_"]: np.eye(10, dtype=np.float32)[labels[begin:begin + batch_size]],
                                        g["keep_prob"]: 1.0})
    return hits / len(images)


def main(mnist_dir=None, n_epochs=None, batch_size=50, max_steps=None, learning_rate=1e-3, keep_prob=0.5,
         seed=42, verbose=True):
    """Trains and returns {"accuracy", "compile_seconds", "step_seconds", "steps", "dataset"}.
    n_epochs defaults to 25 on digits, 3 on MNIST; max_steps stops earlier (for quick runs)."""
    name, (x_train, y_train), (x_test, y_test) = load_data(mnist_dir)
    if n_epochs is None:
        n_epochs = 3 if name == "MNIST" else 25
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    g = build(learning_rate)
    rng = np.random.default_rng(seed)
    one_hot = np.eye(10, dtype=np.float32)
    compile_before = runtime.stats()["compile_seconds"]
    step_times, steps = [], 0
    if verbose:
        print(f"Deep MNIST for experts on {name}: {len(x_train)} training / {len(x_test)} test images, "
              f"batch {batch_size}, Adam {learning_rate:g}")
    start = time.perf_counter()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(n_epochs):
            order = rng.permutation(len(x_train))
            for begin in range(0, len(x_train) - batch_size + 1, batch_size):
                batch = order[begin:begin + batch_size]
                feed = {g["x"]: x_train[batch], g["y_"]: one_hot[y_train[batch]], g["keep_prob"]: keep_prob}
                t0 = time.perf_counter()
                loss, _ = sess.run([g["loss"], g["train_step"]], feed)
                step_times.append(time.perf_counter() - t0)
                steps += 1
                if max_steps is not None and steps >= max_steps:
                    break
            if verbose and (epoch % 5 == 0 or epoch == n_epochs - 1 or steps == max_steps):
                print(f"  epoch {epoch:3d}  step {steps:5d}  loss {loss:.4f}  test accuracy "
                      f"{evaluate(sess, g, x_test, y_test):.4f}  ({time.perf_counter() - start:.1f} s)")
            if max_steps is not None and steps >= max_steps:
                break
        accuracy = evaluate(sess, g, x_test, y_test)
    result = {"dataset": name, "accuracy": float(accuracy), "steps": steps,
              "compile_seconds": runtime.stats()["compile_seconds"] - compile_before,
              "step_seconds": float(np.median(step_times[1:] if len(step_times) > 1 else step_times))}
    if verbose:
        print(f"test accuracy {accuracy:.4f}; compile {result['compile_seconds']:.2f} s; one training step "
              f"(batch {batch_size}) {result['step_seconds'] * 1e3:.1f} ms; {steps} steps in "
              f"{time.perf_counter() - start:.1f} s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=None,
                        help="directory with the four MNIST IDX files (else $JITFLOW_MNIST_DIR, else digits)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args()
    main(args.mnist, args.epochs, args.batch_size, learning_rate=args.learning_rate)
