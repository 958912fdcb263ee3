"""Exercise 9.12: logistic regression with mini-batch gradient descent, the graph
built inside `logistic_regression()` with name scopes, a checkpoint every N
epochs and a final one, resuming from the last checkpoint after an interrupt,
and the loss logged as a TensorBoard scalar summary.

Run: python -m examples.exercise_9_12_logistic_regression [--logdir DIR] [--epochs N]
Interrupt it (Ctrl-C) and run it again: it resumes from the last checkpoint.
"""
import argparse
import os
import tempfile
from datetime import datetime

import numpy as np

import jitflow as tf
from examples.logistic_regression import make_data


def logistic_regression(X, y, initializer=None, seed=42, learning_rate=0.01):
    n_inputs_including_bias = int(X.get_shape()[1])
    with tf.name_scope("logistic_regression"):
        with tf.name_scope("model"):
            if initializer is None:
                initializer = tf.random_uniform([n_inputs_including_bias, 1], -1.0, 1.0, seed=seed)
            theta = tf.Variable(initializer, name="theta")
            logits = tf.matmul(X, theta, name="logits")
            y_proba = tf.sigmoid(logits)
        with tf.name_scope("train"):
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), name="loss")
            optimizer = tf.train.GradientDescentOptimizer(learning_rate=learning_rate)
            training_op = optimizer.minimize(loss)
            loss_summary = tf.summary.scalar("log_loss", loss)
        with tf.name_scope("init"):
            init = tf.global_variables_initializer()
        with tf.name_scope("save"):
            saver = tf.train.Saver()
    return y_proba, loss, training_op, loss_summary, init, saver


def main(workdir=None, n_epochs=200, batch_size=50, checkpoint_every=50, stop_after=None, verbose=True):
    """Trains; `stop_after` simulates an interrupt after that many epochs (for the tests)."""
    workdir = workdir or os.path.join(tempfile.gettempdir(), "jitflow_9_12")
    os.makedirs(workdir, exist_ok=True)
    checkpoint_path = os.path.join(workdir, "my_logreg_model.ckpt")
    epoch_path = checkpoint_path + ".epoch"
    final_model_path = os.path.join(workdir, "my_logreg_model_final")
    logdir = os.path.join(workdir, "logs", datetime.utcnow().strftime("run-%Y%m%d%H%M%S%f"))

    features, labels = make_data(2000)
    features = np.c_[np.ones((len(features), 1), np.float32), features]
    split = 1600
    X_train, y_train, X_test, y_test = features[:split], labels[:split], features[split:], labels[split:]
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, shape=(None, features.shape[1]), name="X")
    y = tf.placeholder(tf.float32, shape=(None, 1), name="y")
    y_proba, loss, training_op, loss_summary, init, saver = logistic_regression(X, y, learning_rate=0.1)
    file_writer = tf.summary.FileWriter(logdir, tf.get_default_graph())
    n_batches = int(np.ceil(split / batch_size))
    rng = np.random.default_rng(0)
    with tf.Session() as sess:
        if os.path.isfile(epoch_path):
            with open(epoch_path) as f:
                start_epoch = int(f.read())
            if verbose:
                print("Training was interrupted. Continuing at epoch", start_epoch)
            saver.restore(sess, checkpoint_path)
        else:
            start_epoch = 0
            sess.run(init)
        for epoch in range(start_epoch, n_epochs):
            if stop_after is not None and epoch >= stop_after:
                file_writer.close()
                return None
            for batch_index in range(n_batches):
                idx = rng.integers(split, size=batch_size)
                sess.run(training_op, feed_dict={X: X_train[idx], y: y_train[idx]})
            loss_val, summary_str = sess.run([loss, loss_summary], feed_dict={X: X_test, y: y_test})
            file_writer.add_summary(summary_str, epoch)
            if epoch % checkpoint_every == 0:
                saver.save(sess, checkpoint_path)
                with open(epoch_path, "wb") as f:
                    f.write(b"%d" % (epoch + 1))
                if verbose:
                    print(f"Epoch: {epoch:4d}  Loss: {loss_val:.5f}")
        saver.save(sess, final_model_path)
        y_proba_val = y_proba.eval(feed_dict={X: X_test, y: y_test})
        os.remove(epoch_path)
    file_writer.close()
    accuracy = float(np.mean((y_proba_val >= 0.5) == y_test))
    if verbose:
        print(f"test accuracy {accuracy:.4f}; final model at {final_model_path}; summaries in {logdir}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    main(args.workdir, args.epochs)
