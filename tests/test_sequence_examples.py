"""The sequence-model examples, run short: the character-level language model (examples/char_lm.py: the
loss falls far below the uniform guess and the sample reads like the grammar it learned), the Keras
Embedding+LSTM classifier (examples/keras_text_classifier.py: accuracy well above chance), the demo's
row-LSTM section (jitflow/demo_sequence.py), and W11's jitflow program (bench/lstm_workload.py: its
initial loss against a numpy LSTM with the same weights)."""
import os
import sys

import numpy as np

import jitflow as tf
from examples import char_lm, keras_text_classifier

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def test_char_lm_learns_and_samples():
    result = char_lm.main(steps=80, hidden=64, verbose=False, sample_length=60)
    chars = sorted(set(result["text"]))
    assert abs(result["first_loss"] - np.log(len(chars))) < 0.3        # starts near the uniform guess
    assert result["final_loss"] < 0.4 * result["first_loss"]
    sample = result["sample"]
    assert len(sample) == len("the ") + 60 and set(sample) <= set(chars)
    vocabulary = set(result["text"].replace(".", " ").split())
    words = sample.replace(".", " ").split()[:-1]                        # the last word may be cut off
    assert sum(w in vocabulary for w in words) >= 0.7 * len(words)


def test_keras_text_classifier_beats_chance():
    result = keras_text_classifier.main(epochs=3, n_train=1500, n_test=500, verbose=False)
    assert result["history"][-1] < result["history"][0]
    assert result["accuracy"] > 0.9                                      # chance is about 0.5


def test_demo_sequence_section_quick():
    from jitflow import runtime
    from jitflow.demo_sequence import session_row_lstm
    result = session_row_lstm(tf, runtime, epochs=4)
    assert result["accuracy"] > 0.8
    assert result["compile_seconds"] >= 0 and 0 < result["step_seconds"] < 1.0


def _np_lstm_loss(kernel, bias, x, target, forget_bias):
    sigmoid = lambda v: 1 / (1 + np.exp(-v))                              # noqa: E731
    hidden = kernel.shape[1] // 4
    c = h = np.zeros((x.shape[0], hidden))
    for t in range(x.shape[1]):
        i, j, f, o = np.split(np.concatenate([x[:, t], h], 1) @ kernel + bias, 4, axis=1)
        c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
        h = sigmoid(o) * np.tanh(c)
    return np.mean((h - target) ** 2)


def test_w11_program_matches_numpy_lstm():
    sys.path.insert(0, BENCH)
    import lstm_workload
    kernel, bias, x, target = lstm_workload.data()
    fns, check = lstm_workload._tf1(tf)
    expected = _np_lstm_loss(kernel.astype(np.float64), bias, x, target, lstm_workload.FORGET_BIAS)
    np.testing.assert_allclose(check, expected, rtol=1e-4)
    losses = [float(fns["train"]()[1]) for _ in range(3)]                # Adam steps lower the loss
    np.testing.assert_allclose(losses[0], check, rtol=1e-5)             # the loss before the first update
    assert losses[2] < losses[0]
