"""@jit, grad and value_and_grad on Python functions."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import runtime


@tf.jit
def seed_f(x, y):
    return x * x * y + y + 2


def test_seed_function_on_numpy_arrays():
    assert seed_f(3.0, 3.0) == 32.0
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.full((2, 3), 2.0, np.float32)
    np.testing.assert_allclose(seed_f(x, y), x * x * y + y + 2)


def test_python_scalars_follow_tf_dtypes():
    assert seed_f(3, 3).dtype == np.int32 and seed_f(3, 3) == 32
    assert seed_f(3.0, 3.0).dtype == np.float32
    assert seed_f(np.float64(3), np.float64(3)).dtype == np.float64


def test_retrace_only_on_new_signature():
    @tf.jit
    def f(x):
        return tf.reduce_sum(x * 2.0)
    f(np.ones(3, np.float32))
    f(np.zeros(3, np.float32))
    assert f.trace_count == 1
    f(np.ones(4, np.float32))
    assert f.trace_count == 2
    f(np.ones(3, np.float64))
    assert f.trace_count == 3
    before = runtime.stats()["compiles"] + runtime.stats()["disk_hits"]
    for _ in range(50):
        f(np.ones(3, np.float32))
    assert runtime.stats()["compiles"] + runtime.stats()["disk_hits"] == before
    assert f.trace_count == 3


def test_nested_containers_in_and_out():
    @tf.jit
    def f(params, batch):
        w, b = params["w"], params["b"]
        out = tf.matmul(batch[0], w) + b
        return {"out": out, "pair": (tf.reduce_sum(out), [out * 0.0])}
    params = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    result = f(params, [np.ones((4, 3), np.float32)])
    assert set(result) == {"out", "pair"}
    np.testing.assert_allclose(result["out"], np.full((4, 2), 3.0))
    assert result["pair"][0] == 24.0 and isinstance(result["pair"][1], list)


def test_static_argnums_and_argnames():
    @tf.jit(static_argnums=1)
    def power(x, n):
        out = x
        for _ in range(n - 1):
            out = out * x
        return out
    assert power(2.0, 3) == 8.0 and power(2.0, 5) == 32.0
    assert power.trace_count == 2

    @tf.jit(static_argnames="activation")
    def layer(x, activation="relu"):
        return tf.nn.relu(x) if activation == "relu" else tf.tanh(x)
    np.testing.assert_allclose(layer(np.array([-1.0, 1.0], np.float32), activation="relu"), [0, 1])
    np.testing.assert_allclose(layer(np.array([-1.0, 1.0], np.float32), activation="tanh"), np.tanh([-1, 1]),
                               rtol=1e-6)


def test_branching_on_traced_value_names_line_and_suggests_fix():
    @tf.jit
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(TypeError) as info:
        f(1.0)
    message = str(info.value)
    assert "test_jit.py" in message and "if x > 0" in message
    assert "static_argnums" in message and "tf.where" in message


def loss(w, x):
    return tf.reduce_mean(tf.square(tf.tanh(tf.matmul(x, w)) - 0.5))


def numeric_grad(fn, w, x, eps=1e-6):
    g = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        plus, minus = w.copy(), w.copy()
        plus[index] += eps
        minus[index] -= eps
        g[index] = (fn(plus, x) - fn(minus, x)) / (2 * eps)
    return g


def test_grad_matches_finite_differences():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))
    f = tf.jit(loss)
    np.testing.assert_allclose(tf.grad(loss)(w, x), numeric_grad(f, w, x), rtol=1e-6, atol=1e-9)


def test_jit_of_grad_equals_grad_and_grad_of_jit():
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))
    reference = tf.grad(loss)(w, x)
    np.testing.assert_allclose(tf.jit(tf.grad(loss))(w, x), reference, rtol=1e-12)
    np.testing.assert_allclose(tf.grad(tf.jit(loss))(w, x), reference, rtol=1e-12)


def test_second_derivative():
    cube = lambda a: tf.reduce_sum(a * a * a)  # noqa: E731
    second = tf.grad(lambda a: tf.reduce_sum(tf.grad(cube)(a)))
    np.testing.assert_allclose(second(np.array([1.0, 2.0])), [6.0, 12.0])


def test_value_and_grad_with_aux_and_argnums():
    def f(w, x):
        pred = tf.matmul(x, w)
        return tf.reduce_sum(pred * pred), pred
    w, x = np.ones((2, 1)), np.arange(6.0).reshape(3, 2)
    (value, aux), (gw, gx) = tf.value_and_grad(f, argnums=(0, 1), has_aux=True)(w, x)
    pred = x @ w
    assert value == pytest.approx(np.sum(pred ** 2))
    np.testing.assert_allclose(aux, pred)
    np.testing.assert_allclose(gw, 2 * x.T @ pred)
    np.testing.assert_allclose(gx, 2 * pred @ w.T)


def test_grad_of_dict_params():
    def f(params, x):
        return tf.reduce_sum(tf.matmul(x, params["w"]) + params["b"])
    params = {"w": np.ones((2, 3)), "b": np.zeros(3)}
    grads = tf.grad(f)(params, np.ones((4, 2)))
    np.testing.assert_allclose(grads["w"], np.full((2, 3), 4.0))
    np.testing.assert_allclose(grads["b"], np.full(3, 4.0))


def test_grad_errors():
    with pytest.raises(TypeError, match="scalar"):
        tf.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="real-valued"):
        tf.grad(lambda x: tf.reduce_sum(tf.cast(x, tf.float32)))(np.ones(3, np.int32))


def test_jit_rejects_variables():
    v = tf.Variable(1.0)

    @tf.jit
    def f(x):
        return x + v
    with pytest.raises(ValueError, match="same graph.*pass tensors and parameters as arguments"):
        f(1.0)


def test_inspect_shows_every_stage():
    info = seed_f.inspect(np.ones(4, np.float32), np.ones(4, np.float32))
    assert "mul" in info.ir and "loop" in info.schedule
    assert "define" in info.llvm_ir and "jf_entry" in info.asm()
