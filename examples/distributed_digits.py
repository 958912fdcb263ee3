"""Data-parallel training on Ray, both ways: the 10.9-style MLP as a Session-API
model function with `tf.distribute.DataParallel`, and the same network as a
Keras model under `tf.distribute.RayStrategy`, on the digits data set.

    python -m examples.distributed_digits [--workers 2] [--epochs 20] [--address auto]

`--address auto` joins a running Ray cluster (`ray start --head` on one node,
`ray start --address=HEAD:6379` on the others); without it a local Ray
instance is started. Checkpoints of the Session run go to --checkpoint-dir.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import jitflow as tf
from jitflow import keras

HIDDEN = (300, 100)


def load_digits():
    (x_train, y_train), (x_test, y_test) = tf.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 16.0
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def model_fn():
    """Runs on every worker: the graph of exercise 10.9 (scaled to 8x8 digits) as a TrainSpec."""
    X = tf.placeholder(tf.float32, shape=(None, 64), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    with tf.name_scope("dnn"):
        hidden = X
        for i, units in enumerate(HIDDEN):
            hidden = tf.layers.dense(hidden, units, activation=tf.nn.relu, name=f"hidden{i + 1}")
        logits = tf.layers.dense(hidden, 10, name="outputs")
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    with tf.name_scope("eval"):
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32))
    global_step = tf.train.get_or_create_global_step()
    return tf.distribute.TrainSpec(inputs=[X, y], loss=loss, optimizer=tf.train.MomentumOptimizer(0.05, 0.9),
                                   metrics={"accuracy": accuracy}, global_step=global_step)


def test_accuracy(variables, x_test, y_test):
    """Evaluates the trained variables in a plain local Session (the same model function's graph)."""
    graph = tf.Graph()
    with graph.as_default():
        spec = model_fn()
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
        for variable in tf.global_variables():
            variable.load(variables[variable.op.name], sess)
        return float(sess.run(spec.metrics["accuracy"], {spec.inputs[0]: x_test, spec.inputs[1]: y_test}))


def train_session(workers, epochs, batch_size, address, checkpoint_dir, verbose):
    x_train, y_train, x_test, y_test = load_digits()
    rng = np.random.default_rng(42)
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)     # (on a cluster: a directory rank 0's node can write)
    with tf.distribute.DataParallel(model_fn, num_workers=workers, address=address,
                                    verbose=int(verbose)) as trainer:
        trainer.load_data(x_train, y_train)
        started = time.perf_counter()
        for epoch in range(epochs):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), batch_size):
                values = trainer.step_rows(order[start:start + batch_size])
            if verbose and (epoch + 1) % 5 == 0:
                print(f"  epoch {epoch + 1}: batch loss {values['loss']:.4f}, batch accuracy "
                      f"{values['accuracy']:.3f}")
        seconds = time.perf_counter() - started
        path = trainer.save(f"{checkpoint_dir}/digits_mlp") if checkpoint_dir else None   # -<global step>
        accuracy = test_accuracy(trainer.variables(), x_test, y_test)
    if verbose:
        print(f"Session API, {workers} workers: {epochs} epochs in {seconds:.2f} s "
              f"({seconds / epochs * 1e3:.1f} ms/epoch), test accuracy {accuracy:.3f}"
              + (f", checkpoint {path}" if path else ""))
    return accuracy


def train_keras(workers, epochs, batch_size, address, verbose):
    x_train, y_train, x_test, y_test = load_digits()
    strategy = tf.distribute.RayStrategy(num_workers=workers, address=address)
    with strategy, strategy.scope():
        model = keras.Sequential([keras.layers.Dense(HIDDEN[0], activation="relu", input_shape=(64,)),
                                  keras.layers.Dense(HIDDEN[1], activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        started = time.perf_counter()
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        print(f"Keras RayStrategy, {workers} workers: {epochs} epochs in {seconds:.2f} s (worker start-up "
              f"included), test accuracy {accuracy:.3f}")
    return accuracy


def main(workers=2, epochs=20, batch_size=64, address=None, checkpoint_dir=None, verbose=True):
    session_accuracy = train_session(workers, epochs, batch_size, address, checkpoint_dir, verbose)
    keras_accuracy = train_keras(workers, epochs, batch_size, address, verbose)
    return session_accuracy, keras_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (split across workers)")
    parser.add_argument("--address", default=None, help="a Ray cluster to join, e.g. auto")
    parser.add_argument("--checkpoint-dir", default="/tmp/jitflow_distributed")
    args = parser.parse_args()
    main(args.workers, args.epochs, args.batch_size, args.address, args.checkpoint_dir)
