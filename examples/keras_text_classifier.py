"""A Keras text classifier on a synthetic task: each "sentence" is a sequence of random token ids, and
its label says whether a given keyword token appears anywhere in it (about half of them do), so the
model has to carry a memory across the whole sequence. `Embedding` -> `LSTM` -> `Dense(1, sigmoid)`,
compiled with Adam and binary cross-entropy, trained with `fit` and scored with `evaluate` on held-out
sequences. Chance is about 50%; the LSTM reaches well above 90%.

Run: python examples/keras_text_classifier.py
"""
import time

import numpy as np

VOCAB, LENGTH, KEYWORD = 30, 20, 7


def make_data(n, seed):
    """(tokens int32 [n, LENGTH], labels float32 [n]): label 1 where KEYWORD occurs."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (n, LENGTH)).astype(np.int32)
    return tokens, (tokens == KEYWORD).any(axis=1).astype(np.float32)


def main(epochs=8, n_train=3000, n_test=1000, units=32, batch_size=64, seed=1, verbose=True):
    """Returns {"accuracy", "history"}: test accuracy and the per-epoch training losses."""
    from jitflow import keras
    x_train, y_train = make_data(n_train, seed)
    x_test, y_test = make_data(n_test, seed + 1000)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Embedding(VOCAB, 16, input_length=LENGTH),
                              keras.layers.LSTM(units),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    losses = [float(v) for v in history.history["loss"]]
    if verbose:
        model.summary()
        for epoch, loss in enumerate(losses):
            print(f"epoch {epoch}  loss {loss:.4f}")
        print(f"test accuracy {accuracy:.4f} (chance {max(y_test.mean(), 1 - y_test.mean()):.2f}); "
              f"{time.perf_counter() - start:.1f} s")
    return {"accuracy": float(accuracy), "history": losses}


if __name__ == "__main__":
    main()
