"""Exercise 10.9: a deep MLP trained with mini-batches, with checkpoints, restore
after an interrupt, a final model and TensorBoard summaries. It trains on the
bundled scikit-learn digits; with the MNIST IDX files in a local directory
(`--mnist DIR`, see jitflow.datasets) it trains on MNIST instead.

Run: python -m examples.exercise_10_9_deep_mlp [--mnist DIR] [--epochs N]
"""
import argparse
import os
import tempfile
from datetime import datetime

import numpy as np

import jitflow as tf


def load(mnist_dir=None):
    if mnist_dir:
        from jitflow.datasets import mnist
        (x_train, y_train), (x_test, y_test) = mnist.load_data(path=mnist_dir)
        x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
        x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
        return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)
    from examples.mlp_digits import load_digits_split
    return load_digits_split()


def build(n_inputs, n_hidden=(300, 100), n_outputs=10, learning_rate=0.01):
    X = tf.placeholder(tf.float32, shape=(None, n_inputs), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    with tf.name_scope("dnn"):
        layer = X
        for i, units in enumerate(n_hidden):
            layer = tf.layers.dense(layer, units, activation=tf.nn.relu, name=f"hidden{i + 1}")
        logits = tf.layers.dense(layer, n_outputs, name="outputs")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits), name="loss")
        loss_summary = tf.summary.scalar("log_loss", loss)
    with tf.name_scope("train"):
        training_op = tf.train.MomentumOptimizer(learning_rate, momentum=0.9).minimize(loss)
    with tf.name_scope("eval"):
        correct = tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        accuracy_summary = tf.summary.scalar("accuracy", accuracy)
    return X, y, loss, training_op, accuracy, tf.summary.merge([loss_summary, accuracy_summary])


def main(workdir=None, mnist_dir=None, n_epochs=30, batch_size=50, stop_after=None, verbose=True):
    workdir = workdir or os.path.join(tempfile.gettempdir(), "jitflow_10_9")
    os.makedirs(workdir, exist_ok=True)
    checkpoint_path = os.path.join(workdir, "my_deep_mnist_model.ckpt")
    epoch_path = checkpoint_path + ".epoch"
    final_model_path = os.path.join(workdir, "my_deep_mnist_model")
    logdir = os.path.join(workdir, "logs", datetime.utcnow().strftime("run-%Y%m%d%H%M%S%f"))
    X_train, y_train, X_test, y_test = load(mnist_dir)
    tf.reset_default_graph()
    tf.set_random_seed(42)
    X, y, loss, training_op, accuracy, summaries = build(X_train.shape[1])
    init = tf.global_variables_initializer()
    saver = tf.train.Saver()
    writer = tf.summary.FileWriter(logdir, tf.get_default_graph())
    rng = np.random.default_rng(42)
    with tf.Session() as sess:
        if os.path.isfile(epoch_path):
            with open(epoch_path) as f:
                start_epoch = int(f.read())
            saver.restore(sess, checkpoint_path)
            if verbose:
                print("Training was interrupted. Continuing at epoch", start_epoch)
        else:
            start_epoch = 0
            sess.run(init)
        for epoch in range(start_epoch, n_epochs):
            if stop_after is not None and epoch >= stop_after:
                writer.close()
                return None
            order = rng.permutation(len(X_train))
            for begin in range(0, len(X_train) - batch_size + 1, batch_size):
                batch = order[begin:begin + batch_size]
                sess.run(training_op, feed_dict={X: X_train[batch], y: y_train[batch]})
            acc, summary = sess.run([accuracy, summaries], feed_dict={X: X_test, y: y_test})
            writer.add_summary(summary, epoch)
            saver.save(sess, checkpoint_path)
            with open(epoch_path, "wb") as f:
                f.write(b"%d" % (epoch + 1))
            if verbose and (epoch % 5 == 0 or epoch == n_epochs - 1):
                print(f"Epoch: {epoch:3d}  test accuracy: {acc:.4f}")
        saver.save(sess, final_model_path)
        os.remove(epoch_path)
    writer.close()
    with tf.Session() as sess:          # the final model restores into a fresh session
        saver.restore(sess, final_model_path)
        final_accuracy = float(sess.run(accuracy, feed_dict={X: X_test, y: y_test}))
    if verbose:
        print(f"final model test accuracy {final_accuracy:.4f}; summaries in {logdir}")
    return final_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--mnist", default=None, help="directory with the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    main(args.workdir, args.mnist, args.epochs)
