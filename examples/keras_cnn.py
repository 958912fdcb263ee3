"""The "Deep MNIST for experts" network (examples/deep_mnist.py) in Keras: Conv2D 5x5x32 + ReLU,
MaxPooling2D, Conv2D 5x5x64 + ReLU, MaxPooling2D, Flatten, Dense 1024 + ReLU, Dropout 0.5, Dense 10
softmax; Adam, sparse categorical cross-entropy. Trained on digits upscaled to 28x28, or MNIST from
local IDX files (`--mnist DIR` or JITFLOW_MNIST_DIR). Saves the trained model and loads it back.

Run: python -m examples.keras_cnn [--mnist DIR] [--epochs N]
"""
import argparse
import tempfile
import time

import numpy as np

from jitflow import keras, runtime

from .deep_mnist import load_data


def build_model(learning_rate=1e-3):
    model = keras.Sequential([
        keras.layers.Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training batch."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def main(mnist_dir=None, n_epochs=None, batch_size=50, train_samples=None, learning_rate=1e-3, seed=42,
         save=True, verbose=True):
    """Trains and returns {"accuracy", "compile_seconds", "step_seconds", "steps", "dataset", "reloaded_accuracy"}.
    n_epochs defaults to 25 on digits, 3 on MNIST; train_samples uses the first N training images only."""
    name, (x_train, y_train), (x_test, y_test) = load_data(mnist_dir)
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    if n_epochs is None:
        n_epochs = 3 if name == "MNIST" else 25
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model(learning_rate)
    if verbose:
        print(f"Keras CNN on {name}: {len(x_train)} training / {len(x_test)} test images, batch {batch_size}")
        model.summary()
    compile_before = runtime.stats()["compile_seconds"]
    timer = StepTimer()
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=n_epochs, batch_size=batch_size, verbose=2 if verbose else 0,
              callbacks=[timer])
    _, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    result = {"dataset": name, "accuracy": float(accuracy), "steps": len(timer.times),
              "compile_seconds": runtime.stats()["compile_seconds"] - compile_before,
              "step_seconds": float(np.median(timer.times[1:] if len(timer.times) > 1 else timer.times))}
    if save:
        with tempfile.TemporaryDirectory() as directory:
            model.save(directory)
            reloaded = keras.models.load_model(directory)
            result["reloaded_accuracy"] = float(reloaded.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])
    if verbose:
        print(f"test accuracy {accuracy:.4f}; compile {result['compile_seconds']:.2f} s; one training step "
              f"(batch {batch_size}) {result['step_seconds'] * 1e3:.1f} ms; {result['steps']} steps in "
              f"{time.perf_counter() - start:.1f} s" +
              (f"; after save/load_model {result['reloaded_accuracy']:.4f}" if save else ""))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=None, help="directory with the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    main(args.mnist, args.epochs, args.batch_size)
