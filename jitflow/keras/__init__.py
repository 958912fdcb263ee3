"""`jitflow.keras` (also `tf.keras`): the Keras workflow on jitflow's graphs.

    from jitflow import keras
    model = keras.Sequential([keras.layers.Flatten(input_shape=(8, 8)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, batch_size=32, validation_split=0.2, verbose=1)
    loss, accuracy = model.evaluate(x_test, y_test)
    probabilities = model.predict(x_test)
    model.save("digits_model")                    # a directory: config.json + model.safetensors
    same = keras.models.load_model("digits_model")

Each model owns a tf.Graph and a tf.Session; a training step (forward,
loss, backward, optimizer and BatchNormalization updates) is ONE compiled
executable per batch size, and so are an evaluation step and a predict batch.

Modules: layers (+ base_layer), models, engine (graph + session), training
(fit/evaluate/predict loops), losses, metrics, optimizers, regularizers,
initializers, activations, callbacks, progress, summary, saving, plotting,
utils, backend.
"""
from .. import datasets  # noqa: F401  (keras.datasets.mnist.load_data())
from . import (activations, backend, callbacks, initializers, layers, losses, metrics, models,  # noqa: F401
               optimizers, regularizers, utils)
from .layers import Input  # noqa: F401
from . import preprocessing  # noqa: F401  (keras.preprocessing.sequence / .text, jitflow/keras/preprocessing/)
from .models import Model, Sequential  # noqa: F401


import sys as _sys  # noqa: E402

_sys.modules[__name__ + ".datasets"] = datasets     # `from keras.datasets import mnist`

from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras")  # PEP 562: a missing name says so
