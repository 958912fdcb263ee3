"""TF names jitflow lacks raise AttributeError("jitflow does not implement tf.X ...") with the nearest
existing names; private/dunder probes stay ordinary AttributeErrors; hasattr is False."""
import time

import pytest

import jitflow as tf


def _message(getter):
    with pytest.raises(AttributeError) as info:
        getter()
    return str(info.value)


@pytest.mark.parametrize("getter, text", [
    (lambda: tf.placeholdr, "jitflow does not implement tf.placeholdr (did you mean tf.placeholder"),
    (lambda: tf.global_variable_initializer, "did you mean tf.global_variables_initializer"),
    (lambda: tf.nn.relu7, "jitflow does not implement tf.nn.relu7 (did you mean tf.nn.relu"),
    (lambda: tf.train.AdamOptimiser, "jitflow does not implement tf.train.AdamOptimiser (did you mean "
                                     "tf.train.AdamOptimizer"),
    (lambda: tf.layers.dens, "jitflow does not implement tf.layers.dens (did you mean tf.layers.dense"),
    (lambda: tf.losses.mean_square_error, "did you mean tf.losses.mean_squared_error"),
    (lambda: tf.contrib.layers.xavier_initialiser, "jitflow does not implement tf.contrib.layers."
                                                   "xavier_initialiser (did you mean tf.contrib.layers."
                                                   "xavier_initializer"),
    (lambda: tf.keras.Sequentail, "jitflow does not implement tf.keras.Sequentail (did you mean "
                                  "tf.keras.Sequential"),
    (lambda: tf.keras.layers.Dence, "did you mean tf.keras.layers.Dense"),
    (lambda: tf.summary.histogramm, "did you mean tf.summary.histogram"),
])
def test_missing_name_suggests_nearest(getter, text):
    assert text in _message(getter)


def test_missing_name_without_close_match_has_no_hint():
    assert _message(lambda: tf.contrib.zzzqqq) == "jitflow does not implement tf.contrib.zzzqqq"
    assert _message(lambda: tf.qqqqqqqqq) == "jitflow does not implement tf.qqqqqqqqq"


def test_exact_name_in_another_namespace_is_suggested():
    assert "tf.nn.softmax" in _message(lambda: tf.softmax)
    assert "tf.train.Saver" in _message(lambda: tf.Saver)


def test_hasattr_false_and_getattr_default():
    assert not hasattr(tf, "something_missing")
    assert not hasattr(tf.nn, "something_missing")
    assert not hasattr(tf.contrib.layers, "something_missing")
    assert getattr(tf.train, "something_missing", 42) == 42
    assert hasattr(tf, "placeholder") and hasattr(tf.nn, "softmax") and hasattr(tf.keras.layers, "Dense")


def test_private_and_dunder_lookups_are_plain_and_fast():
    for name in ("__wrapped__", "_pytestfixturefunction", "__test__", "_private_thing"):
        message = _message(lambda: getattr(tf, name))
        assert message == f"module 'jitflow' has no attribute '{name}'"
        assert "jitflow does not implement" not in _message(lambda: getattr(tf.nn, name))
        assert "jitflow does not implement" not in _message(lambda: getattr(tf.contrib.layers, name))
    start = time.perf_counter()
    for _ in range(2000):
        hasattr(tf, "__wrapped__")
    assert time.perf_counter() - start < 0.5
    assert tf.__path__ and tf.__name__ == "jitflow"


def test_submodule_import_still_works():
    from jitflow import nn, summary  # noqa: F401
    import jitflow.inspect                                    # a submodule not imported by `import jitflow`
    from jitflow import missing_names                         # noqa: F401
    assert jitflow.inspect.__name__ == "jitflow.inspect"
    with pytest.raises(ImportError):
        from jitflow import not_a_real_name  # noqa: F401
