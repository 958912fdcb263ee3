"""A character-level language model, TF1 style: an embedding, one `LSTMCell` unrolled by
`tf.nn.dynamic_rnn`, a softmax over the characters at every step, Adam; trained on random windows
of a small text generated here (sentences from a tiny grammar, so no download), then a string is
sampled one character at a time through a second graph that shares the weights and feeds the LSTM
state back (`initial_state=LSTMStateTuple(c, h)`).

Run: python examples/char_lm.py        (about 300 steps; prints the loss falling and a sample)
"""
import time

import numpy as np

import jitflow as tf

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "a small bird", "the teacher"]
VERBS = ["sees", "likes", "follows", "draws", "finds", "calls"]
OBJECTS = ["the moon", "a red ball", "the river", "an apple", "the green door", "a letter"]
ENDINGS = [" today", " again", " at night", "", " in the garden"]


def make_text(n_sentences=400, seed=0):
    """Sentences from a tiny grammar: `<subject> <verb> <object><ending>. `"""
    rng = np.random.default_rng(seed)
    pick = lambda options: options[rng.integers(len(options))]          # noqa: E731
    return "".join(f"{pick(SUBJECTS)} {pick(VERBS)} {pick(OBJECTS)}{pick(ENDINGS)}. " for _ in range(n_sentences))


def build(vocab_size, seq_len, hidden=128, embed=32, learning_rate=0.01):
    """Training graph (batch x seq_len windows) and a one-character sampling graph sharing its weights."""
    tokens = tf.placeholder(tf.int32, [None, seq_len], name="tokens")
    targets = tf.placeholder(tf.int32, [None, seq_len], name="targets")
    embedding = tf.get_variable("embedding", [vocab_size, embed])
    cell = tf.nn.rnn_cell.LSTMCell(hidden)
    outputs, _ = tf.nn.dynamic_rnn(cell, tf.nn.embedding_lookup(embedding, tokens), dtype=tf.float32)
    logits = tf.layers.dense(outputs, vocab_size, name="softmax")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))
    train = tf.train.AdamOptimizer(learning_rate).minimize(loss)

    # sampling: one character, the state fed back by the caller; the same cell and dense weights
    char = tf.placeholder(tf.int32, [1, 1], name="char")
    c_in = tf.placeholder(tf.float32, [1, hidden], name="c")
    h_in = tf.placeholder(tf.float32, [1, hidden], name="h")
    step_out, step_state = tf.nn.dynamic_rnn(cell, tf.nn.embedding_lookup(embedding, char),
                                             initial_state=tf.nn.rnn_cell.LSTMStateTuple(c_in, h_in))
    step_logits = tf.layers.dense(step_out[:, -1], vocab_size, name="softmax", reuse=True)
    return {"tokens": tokens, "targets": targets, "loss": loss, "train": train, "char": char, "c": c_in,
            "h": h_in, "probs": tf.nn.softmax(step_logits), "state": step_state, "hidden": hidden}


def sample(sess, g, chars, start="the ", length=120, temperature=0.5, seed=0):
    """Feeds `start`, then draws `length` characters (probabilities sharpened by 1/temperature)."""
    index = {ch: i for i, ch in enumerate(chars)}
    rng = np.random.default_rng(seed)
    c = h = np.zeros((1, g["hidden"]), np.float32)
    text, probs = start, None
    for ch in start:
        probs, (c, h) = sess.run([g["probs"], g["state"]], {g["char"]: [[index[ch]]], g["c"]: c, g["h"]: h})
    for _ in range(length):
        p = np.exp(np.log(probs[0].astype(np.float64) + 1e-12) / temperature)
        ch = chars[rng.choice(len(chars), p=p / p.sum())]
        text += ch
        probs, (c, h) = sess.run([g["probs"], g["state"]], {g["char"]: [[index[ch]]], g["c"]: c, g["h"]: h})
    return text


def main(steps=300, batch_size=32, seq_len=32, hidden=128, seed=1, verbose=True, sample_length=120):
    """Returns {"first_loss", "final_loss", "sample", "text"}; final_loss averages the last 20 steps."""
    text = make_text()
    chars = sorted(set(text))
    data = np.array([chars.index(ch) for ch in text], np.int32)
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    g = build(len(chars), seq_len, hidden)
    rng = np.random.default_rng(seed)
    losses, start = [], time.perf_counter()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(steps):
            begin = rng.integers(0, len(data) - seq_len - 1, batch_size)
            window = data[begin[:, None] + np.arange(seq_len + 1)]
            loss, _ = sess.run([g["loss"], g["train"]], {g["tokens"]: window[:, :-1], g["targets"]: window[:, 1:]})
            losses.append(float(loss))
            if verbose and (step % 50 == 0 or step == steps - 1):
                print(f"step {step:4d}  loss {loss:.3f}  ({time.perf_counter() - start:.1f} s)")
        sampled = sample(sess, g, chars, length=sample_length)
    if verbose:
        print(f"vocabulary {len(chars)} characters (uniform guess: loss {np.log(len(chars)):.2f})")
        print(f"sample: {sampled!r}")
    return {"first_loss": losses[0], "final_loss": float(np.mean(losses[-20:])), "sample": sampled,
            "text": text}


if __name__ == "__main__":
    main()
