"""`Model` (compile, fit, evaluate, predict, summary, weights, save) and
`Sequential` (a stack of layers, `add`/`pop`, its JSON config).

A model owns a `tf.Graph` and a `tf.Session` (see engine.py). The graph is
built lazily, once the input shape is known (from `keras.Input`, the first
layer's `input_shape=`, `build()`, or the first data given to
fit/evaluate/predict); `compile` only records the optimizer, loss and
metrics, and the training and evaluation steps are built at the first
fit/evaluate.
"""
from __future__ import annotations

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from . import callbacks as callbacks_mod
from . import training, utils
from . import dataset_fit  # fit/evaluate/predict on a tf.data.Dataset
from .base_layer import Layer, unique_name
from .engine import Engine
from .layers import LAYER_CLASSES, InputLayer
from ..errors import UnsupportedError
from ..distribute.keras_strategy import get_strategy


class Model:
    """The training/inference API shared by models; build one with `Sequential`."""

    def __init__(self, *args, name=None, **kwargs):
        if args or kwargs:
            raise UnsupportedError("jitflow.keras supports Sequential models only (no functional "
                                      "Model(inputs, outputs) API yet): use keras.Sequential([...])")
        self._init_model(name or unique_name("model"))

    def _init_model(self, name):
        self.name = name
        self._layers: list[Layer] = []
        self._batch_input_shape = None
        self._engine: Engine | None = None
        self._graph_seed, self._rng = utils.model_seeds()
        self.optimizer = self.loss = None
        self._loss = None
        self._metric_ids: list = []
        self.compiled = False
        self.history = None
        self.stop_training = False
        self._pending_optimizer_state: dict = {}
        self.distribute_strategy = get_strategy()   # set inside tf.distribute.RayStrategy().scope()

    # --- structure
    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def built(self) -> bool:
        return self._batch_input_shape is not None

    @property
    def input_shape(self):
        return self._batch_input_shape

    @property
    def output_shape(self):
        return tuple(self._ensure_engine().outputs.shape.dims)

    def build(self, input_shape=None):
        """Builds the weights for inputs of `input_shape` (with the batch dimension, e.g. (None, 8, 8))."""
        if input_shape is not None:
            self._set_input_shape(tuple(input_shape))
        self._ensure_engine()

    def _set_input_shape(self, batch_shape):
        batch_shape = (None,) + tuple(None if d is None else int(d) for d in batch_shape[1:])
        if self._batch_input_shape is None:
            self._batch_input_shape = batch_shape
        elif len(self._batch_input_shape) != len(batch_shape) or any(
                want is not None and want != got for want, got in zip(self._batch_input_shape, batch_shape)):
            raise ValueError(f"Input 0 of model \"{self.name}\" is incompatible: expected shape="
                             f"{self._batch_input_shape}, found shape={batch_shape}")

    def _ensure_engine(self, sample_shape=None) -> Engine:
        if sample_shape is not None:
            self._set_input_shape((None,) + tuple(sample_shape))
        if self._engine is None:
            if self._batch_input_shape is None:
                raise ValueError(f"Model {self.name} has not yet been built: give the first layer input_shape=..., "
                                 f"start with keras.Input(shape=...), call build(input_shape), or call fit/predict "
                                 f"on data first.")
            if not self._layers:
                raise ValueError(f"Model {self.name} has no layers")
            self._engine = Engine(self._graph_seed)
            self._engine.build_forward(self._layers, self._batch_input_shape)
        return self._engine

    def _ensure_training(self) -> Engine:
        if not self.compiled:
            raise RuntimeError("You must compile your model before training/testing. Use "
                               "`model.compile(optimizer, loss)`.")
        engine = self._ensure_engine()
        if engine.train_fetches is None:
            metrics = [metrics_mod.get(m, self._loss, engine.outputs.shape.dims) for m in self._metric_ids]
            engine.build_training(self._layers, self.optimizer, self._loss, metrics)
            engine.initialize_new_variables()
            self._apply_pending_optimizer_state()
        return engine

    # --- compile / fit / evaluate / predict
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs):
        """Records the optimizer, loss and metrics; the training step compiles at the first fit."""
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        unsupported = sorted(kwargs) + (["loss_weights"] if loss_weights is not None else [])
        if unsupported:
            raise UnsupportedError(f"compile(): unsupported arguments {', '.join(unsupported)}")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self._loss = losses_mod.get(loss)
        if isinstance(metrics, dict):
            raise UnsupportedError("metrics as a dict (multi-output models) is not supported")
        self._metric_ids = list(metrics or [])
        self.compiled = True
        self.distribute_strategy = self.distribute_strategy or get_strategy()
        if self._engine is not None:
            self._engine.train_fetches = self._engine.eval_fetches = None

    @property
    def metrics_names(self) -> list:
        names = ["loss"]
        if self._engine is not None and self._engine.train_fetches is not None:
            return names + self._engine.metric_names
        return names + [metrics_mod.serialize(m) if not isinstance(m, str) else m for m in self._metric_ids]

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_batch_size=None, validation_freq=1):
        """Trains for `epochs` epochs of mini-batches; returns a `History` (`.history` dict of per-epoch values)."""
        epochs = training.positive_int(epochs, "epochs", minimum=0)       # tf.keras: ValueError, never silent
        initial_epoch = training.positive_int(initial_epoch, "initial_epoch", minimum=0)
        validation_freq = training.positive_int(validation_freq, "validation_freq")
        if validation_batch_size is not None:
            validation_batch_size = training.positive_int(validation_batch_size, "validation_batch_size")
        if dataset_fit.is_dataset(x):      # a tf.data.Dataset of (x, y) batches (keras/dataset_fit.py)
            return dataset_fit.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                   validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                                   steps_per_epoch, validation_batch_size, validation_freq)
        if class_weight is not None or sample_weight is not None or steps_per_epoch is not None:
            raise UnsupportedError("fit(): class_weight, sample_weight and steps_per_epoch are not supported")
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        x = training.as_inputs(x)
        training.check_not_empty(x)
        self._ensure_engine(x.shape[1:])
        engine = self._ensure_training()
        y = training.as_targets(y, engine, len(x))
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise UnsupportedError("validation sample weights are not supported")
            x_val = training.as_inputs(validation_data[0], "validation_data x")
            training.check_not_empty(x_val, "validation_data x")
            self._set_input_shape((None,) + x_val.shape[1:])
            validation = (x_val, training.as_targets(validation_data[1], engine, len(x_val), "validation_data y"))
        elif validation_split:
            (x, y), validation = training.split_validation(x, y, validation_split)
        else:
            validation = None
        verbose = 1 if verbose == "auto" else int(verbose)
        self.history = callbacks_mod.History()
        fit_args = {"batch_size": batch_size, "epochs": int(epochs), "verbose": verbose, "callbacks": callbacks,
                    "validation_data": validation, "shuffle": shuffle, "initial_epoch": int(initial_epoch),
                    "validation_freq": int(validation_freq), "rng": self._rng, "history": self.history,
                    "validation_batch_size": int(validation_batch_size or batch_size)}
        if self.distribute_strategy is not None:
            return self.distribute_strategy.fit(self, x, y, fit_args)
        return training.run_fit(self, x, y, **fit_args)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, return_dict=False, callbacks=None, steps=None):
        """The loss (with regularization) and metrics on (x, y): a scalar without metrics, else a list."""
        if dataset_fit.is_dataset(x):
            return dataset_fit.evaluate(self, x, y, batch_size, verbose, return_dict, callbacks, steps)
        if steps is not None:
            raise UnsupportedError("evaluate(): `steps` is only supported with a tf.data.Dataset input")
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        x = training.as_inputs(x)
        training.check_not_empty(x)
        self._ensure_engine(x.shape[1:])
        engine = self._ensure_training()
        y = training.as_targets(y, engine, len(x))
        verbose = 1 if verbose == "auto" else int(verbose)
        callback_list = callbacks_mod.CallbackList(callbacks or [], self, {"verbose": verbose}) if callbacks \
            else None
        result = training.evaluate_arrays(self, x, y, batch_size, verbose, callback_list)
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """Outputs of the inference forward (Dropout off, BatchNormalization with moving statistics)."""
        if dataset_fit.is_dataset(x):
            return dataset_fit.predict(self, x, batch_size, verbose, steps)
        if steps is not None:
            raise UnsupportedError("predict(): `steps` is only supported with a tf.data.Dataset input")
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        x = training.as_inputs(x)
        engine = self._ensure_engine(x.shape[1:])
        engine.initialize_new_variables()
        return training.predict_arrays(self, x, batch_size, 1 if verbose == "auto" else int(verbose))

    def train_on_batch(self, x, y):
        x = training.as_inputs(x)
        self._ensure_engine(x.shape[1:])
        engine = self._ensure_training()
        values = [float(v) for v in engine.train_step(x, training.as_targets(y, engine, len(x)))]
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y):
        x = training.as_inputs(x)
        self._ensure_engine(x.shape[1:])
        engine = self._ensure_training()
        values = [float(v) for v in engine.eval_step(x, training.as_targets(y, engine, len(x)))]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(len(x), 1))

    def __call__(self, x, training=False):
        """model(x) on numpy data predicts (the inference forward)."""
        return self.predict(x)

    # --- weights
    @property
    def weights(self) -> list:
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list:
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def count_params(self) -> int:
        self._ensure_engine()
        return sum(layer.count_params() for layer in self._layers)

    def named_weights(self) -> list:
        return [item for layer in self._layers for item in layer.named_weights()]

    def get_weights(self) -> list:
        engine = self._ensure_engine()
        engine.initialize_new_variables()
        return engine.read(self.weights)

    def set_weights(self, weights):
        engine = self._ensure_engine()
        engine.initialize_new_variables()
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise ValueError(f"set_weights: the model has {len(self.weights)} weights, got {len(weights)} arrays")
        for layer in self._layers:
            count = len(layer.weights)
            layer.set_weights(weights[:count])
            weights = weights[count:]

    def save_weights(self, path):
        from . import saving
        saving.save_weights(self, path)

    def load_weights(self, path):
        from . import saving
        saving.load_weights(self, path)

    def save(self, path, include_optimizer=True):
        """Writes the directory `path`: config.json (architecture + compile arguments) and
        model.safetensors (weights); optimizer.safetensors too once the model has trained."""
        from . import saving
        saving.save_model(self, path, include_optimizer)

    def optimizer_state(self) -> dict:
        if self.optimizer is None or self._engine is None:
            return {}
        variables = self.optimizer.variables()
        return {v.op.name: value for v, value in zip(variables, self._engine.read(variables))}

    def _apply_pending_optimizer_state(self):
        if not self._pending_optimizer_state:
            return
        for variable in self.optimizer.variables():
            value = self._pending_optimizer_state.get(variable.op.name)
            if value is not None and tuple(value.shape) == tuple(variable.shape.as_list()):
                self._engine.load(variable, value)
        self._pending_optimizer_state = {}

    # --- summary
    def summary(self, line_length=None, positions=None, print_fn=None):
        from .model_summary import summary_lines
        for line in summary_lines(self, line_length, positions):
            (print_fn or print)(line)


class Sequential(Model):
    """A linear stack of layers: `Sequential([Flatten(input_shape=(8, 8)), Dense(10, activation='softmax')])`."""

    def __init__(self, layers=None, name=None):
        self._init_model(name or unique_name("sequential"))
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("An Input can only be the first element of a Sequential model")
            self._set_input_shape(layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of keras.layers.Layer, got {layer!r}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name "
                             f"\"{layer.name}\" is already the name of a layer in this model.")
        if layer.built and layer._engine is not self._engine:
            raise ValueError(f"Layer {layer.name} already belongs to another model (its weights live there)")
        if not self._layers and layer._batch_input_shape is not None:
            self._set_input_shape(layer._batch_input_shape)
        self._layers.append(layer)
        if self._engine is not None:
            self._engine.extend_forward(layer)

    def pop(self):
        if self._engine is not None:
            raise UnsupportedError("pop() on a built model is not supported in jitflow.keras")
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        return self._layers.pop()

    def predict_proba(self, x, batch_size=32, verbose=0):
        """TF 1.x Sequential.predict_proba: the predictions (meant to be probabilities)."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def predict_classes(self, x, batch_size=32, verbose=0):
        """TF 1.x Sequential.predict_classes: argmax over the last axis, or (p > 0.5) as int32 for one unit."""
        proba = self.predict(x, batch_size=batch_size, verbose=verbose)
        if proba.shape[-1] > 1:
            return proba.argmax(axis=-1)
        return (proba > 0.5).astype("int32")

    def get_config(self) -> dict:
        config = {"name": self.name,
                  "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                             for layer in self._layers]}
        if self._batch_input_shape is not None:
            config["build_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        classes = dict(LAYER_CLASSES, **(custom_objects or {}))
        model = cls(name=config.get("name"))
        for entry in config["layers"]:
            try:
                layer_class = classes[entry["class_name"]]
            except KeyError:
                raise ValueError(f"Unknown layer class {entry['class_name']!r}: pass it in "
                                 f"custom_objects={{'{entry['class_name']}': cls}}") from None
            model.add(layer_class.from_config(dict(entry["config"])))
        if config.get("build_input_shape"):
            model._set_input_shape(tuple(config["build_input_shape"]))
        return model


from .saving import load_model  # noqa: E402,F401  (keras.models.load_model)


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.models")  # PEP 562: a missing name says so
