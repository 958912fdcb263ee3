"""jitflow.distribute: data-parallel training on Ray.

The first tests drive the worker logic in-process (no Ray): two `Worker`
objects exchanging their messages by hand must reproduce one process training
on the whole batch. The rest start a local Ray instance (2 CPUs) once for the
module and check the same semantics through real actors, checkpoints written
by rank 0, a killed worker surfacing as UnavailableError and training resuming
from the last checkpoint, and Keras `fit` with RayStrategy on digits.
"""
import os
import signal

import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.distribute.gradient_step import Message, average
from jitflow.distribute.trainer import combine_scalars, resolve_exchange, shard_bounds
from jitflow.distribute.worker import Worker

FEATURES = 6


def regression_model(optimizer="adam"):
    """A model function: a 2-layer regression with Adam (slots, beta powers) and a global step."""
    def model_fn():
        X = tf.placeholder(tf.float32, (None, FEATURES), name="X")
        y = tf.placeholder(tf.float32, (None, 1), name="y")
        hidden = tf.layers.dense(X, 16, activation=tf.nn.tanh,
                                 kernel_initializer=tf.random_normal_initializer(stddev=0.5, seed=3))
        prediction = tf.layers.dense(hidden, 1, kernel_initializer=tf.random_normal_initializer(stddev=0.5, seed=4))
        loss = tf.reduce_mean(tf.square(prediction - y), name="mse")
        mae = tf.reduce_mean(tf.abs(prediction - y), name="mae")
        step = tf.train.get_or_create_global_step()
        opt = tf.train.AdamOptimizer(0.01) if optimizer == "adam" else tf.train.MomentumOptimizer(0.05, 0.9)
        return tf.distribute.TrainSpec(inputs=[X, y], loss=loss, optimizer=opt, metrics={"mae": mae},
                                       global_step=step)
    return model_fn


def regression_data(rows=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, FEATURES)).astype(np.float32)
    y = (np.sin(X @ rng.standard_normal((FEATURES, 1))) + 0.1 * X[:, :1]).astype(np.float32)
    return X, y


def batches(X, y, batch, steps):
    for i in range(steps):
        lo = (i * batch) % len(X)
        yield X[lo:lo + batch], y[lo:lo + batch]


def single_process(model_fn, initial, data_batches):
    """The reference: one Session, `minimize` on the whole global batch, from the same initial values."""
    graph = tf.Graph()
    with graph.as_default():
        spec = model_fn()
        train = spec.optimizer.minimize(spec.loss, global_step=spec.global_step)
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
        for variable in tf.global_variables():
            if variable.op.name in initial:
                variable.load(initial[variable.op.name], sess)
        for xb, yb in data_batches:
            sess.run(train, {spec.inputs[0]: xb, spec.inputs[1]: yb})
        return {v.op.name: np.array(sess.run(v.value())) for v in tf.global_variables()}


def assert_close(actual, expected, rtol=2e-5, atol=2e-6):
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=rtol, atol=atol, err_msg=name)


# --- the pieces, without Ray -----------------------------------------------------------------------------

def test_shard_bounds_cover_the_batch_like_array_split():
    for rows in (0, 1, 5, 64, 65, 67):
        for workers in (1, 2, 3, 8):
            bounds = shard_bounds(rows, workers)
            sizes = [hi - lo for lo, hi in bounds]
            assert sizes == [len(part) for part in np.array_split(np.arange(rows), workers)]
            assert bounds[0][0] == 0 and bounds[-1][1] == rows


def test_average_is_row_weighted_and_order_fixed():
    g1 = [np.array([1.0, 2.0], np.float32), np.float32(3.0)]
    g2 = [np.array([4.0, 8.0], np.float32), np.float32(6.0)]
    grads, state = average([Message(1, g1, [np.array([0.0])]), Message(3, g2, [np.array([4.0])])])
    np.testing.assert_allclose(grads[0], [3.25, 6.5])
    np.testing.assert_allclose(grads[1], 5.25)
    assert grads[0].dtype == np.float32 and grads[1].shape == ()
    np.testing.assert_allclose(state[0], [3.0])


def test_combine_scalars_weights_by_rows_and_skips_empty_shards():
    values = combine_scalars([[1.0, 0.5], [3.0, 1.0], []], [1, 3, 0], ["loss", "acc"])
    assert values == {"loss": 2.5, "acc": 0.875}
    with pytest.raises(ValueError, match="empty batch"):
        combine_scalars([[], []], [0, 0], ["loss"])


def test_auto_exchange_is_gloo_only_where_torch_is_installed():
    assert resolve_exchange("auto", 4, torch_found=True) == "gloo"
    assert resolve_exchange("auto", 4, torch_found=False) == "object_store"
    assert resolve_exchange("auto", 1, torch_found=True) == "object_store"
    assert resolve_exchange("object_store", 4, torch_found=True) == "object_store"
    with pytest.raises(ImportError, match="needs torch"):
        resolve_exchange("gloo", 2, torch_found=False)
    with pytest.raises(ValueError, match="exchange must be"):
        resolve_exchange("nccl", 2, torch_found=True)


def exchange_by_hand(workers, data_batches):
    """What DataParallel does through Ray, in-process: shard, compute, average every message, apply."""
    previous = ()
    for step, (xb, yb) in enumerate(data_batches):
        outputs = [worker.step([xb[lo:hi], yb[lo:hi]], step, *previous)
                   for worker, (lo, hi) in zip(workers, shard_bounds(len(xb), len(workers)))]
        previous = tuple(message for message, _ in outputs)
    for worker in workers:
        worker.apply(len(data_batches), *previous)
        worker.apply(len(data_batches), *previous)          # applying the same step twice is a no-op


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_workers_in_process_match_one_process_on_the_global_batch(optimizer):
    model_fn = regression_model(optimizer)
    X, y = regression_data()
    workers = [Worker(rank, 3) for rank in range(3)]
    for worker in workers:
        worker.setup_session(model_fn)
    initial = workers[0].read_state()
    for worker in workers[1:]:
        worker.load_state(initial)
    # global batches of 32 and one of 7 (uneven shards 3/2/2), and one of 2 rows (an empty shard)
    data = list(batches(X, y, 32, 5)) + [(X[:7], y[:7]), (X[:2], y[:2])]
    exchange_by_hand(workers, data)
    replicas = [worker.read_state() for worker in workers]
    for other in replicas[1:]:
        for name in replicas[0]:
            assert np.array_equal(replicas[0][name], other[name]), name     # bitwise identical replicas
    assert replicas[0]["global_step"] == len(data)
    assert_close(replicas[0], single_process(model_fn, initial, data))


def test_model_function_errors_are_clear():
    worker = Worker(0, 1)
    with pytest.raises(TypeError, match="must return a jitflow.distribute.TrainSpec"):
        worker.setup_session(lambda: tf.constant(1.0))

    def minimize_op_instead_of_optimizer():
        X = tf.placeholder(tf.float32, (None, 2))
        w = tf.Variable(tf.zeros([2, 1]))
        loss = tf.reduce_mean(tf.matmul(X, w))
        return tf.distribute.TrainSpec(inputs=[X], loss=loss, optimizer=tf.train.AdamOptimizer().minimize(loss))
    with pytest.raises(TypeError, match="tf.train optimizer"):
        Worker(0, 1).setup_session(minimize_op_instead_of_optimizer)

    def loss_not_scalar():
        X = tf.placeholder(tf.float32, (None, 2))
        w = tf.Variable(tf.zeros([2, 1]))
        return tf.distribute.TrainSpec(inputs=[X], loss=tf.matmul(X, w), optimizer=tf.train.AdamOptimizer())
    with pytest.raises(ValueError, match="must be a scalar"):
        Worker(0, 1).setup_session(loss_not_scalar)


# --- through Ray ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():            # started by an earlier test (a README block): start our own
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


EXCHANGES = ["object_store", pytest.param("gloo", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="Ray's GLOO backend needs torch"))]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_two_ray_workers_match_one_process_with_the_double_batch(ray_cluster, tmp_path, exchange):
    model_fn = regression_model("adam")
    X, y = regression_data()
    B = 16
    data = list(batches(X, y, 2 * B, 6))
    with tf.distribute.DataParallel(model_fn, num_workers=2, verbose=0, exchange=exchange) as trainer:
        initial = trainer.variables()
        reported = [trainer.step(xb, yb) for xb, yb in data]
        replicas = trainer.replica_variables()
        for name in replicas[0]:
            assert np.array_equal(replicas[0][name], replicas[1][name]), name
        assert set(reported[0]) == {"loss", "mae"} and reported[-1]["loss"] < reported[0]["loss"]
        # the loaded-data path (row indices only) continues the same trajectory
        trainer.load_data(X, y)
        trainer.step_rows(np.arange(32, 64))
        after = trainer.variables()
        # rank 0 wrote a checkpoint a plain single-process Saver reads
        path = trainer.save(tmp_path / "model", global_step=trainer.steps)
    expected = single_process(model_fn, initial, data + [(X[32:64], y[32:64])])
    assert_close(after, expected)
    assert path.endswith("model-7")
    graph = tf.Graph()
    with graph.as_default():
        model_fn()
        saver = tf.train.Saver()
        sess = tf.Session(graph=graph)
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        restored = {v.op.name: sess.run(v.value()) for v in tf.global_variables()}
    assert_close(restored, {name: after[name] for name in restored}, rtol=0, atol=0)   # the model's variables


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_dead_worker_is_reported_and_training_resumes_from_the_checkpoint(ray_cluster, tmp_path, exchange):
    model_fn = regression_model("momentum")
    X, y = regression_data(seed=1)
    data = list(batches(X, y, 24, 8))
    with tf.distribute.DataParallel(model_fn, num_workers=2, verbose=0, exchange=exchange) as trainer:
        initial = trainer.variables()
        for xb, yb in data[:4]:
            trainer.step(xb, yb)
        trainer.save(tmp_path / "ckpt", global_step=4)
        trainer.step(*data[4])
        os.kill(trainer.worker_info[1]["pid"], signal.SIGKILL)      # the process crashes
        with pytest.raises(ray_cluster.exceptions.RayActorError):      # (wait until Ray has noticed)
            ray_cluster.get(trainer.workers[1].ping.remote(), timeout=60)
        with pytest.raises(tf.errors.UnavailableError, match=r"worker 1 of 2 died.*restore the last checkpoint"):
            trainer.step(*data[5])
        with pytest.raises(tf.errors.UnavailableError, match="lost a worker earlier"):
            trainer.variables()
    with tf.distribute.DataParallel(model_fn, num_workers=2, verbose=0, exchange=exchange) as resumed:
        resumed.restore(tf.train.latest_checkpoint(str(tmp_path)))
        assert resumed.variables()["global_step"] == 4
        for xb, yb in data[4:]:
            resumed.step(xb, yb)
        final = resumed.variables()
        stats = resumed.stats()
    assert_close(final, single_process(model_fn, initial, data))
    # the second trainer's workers found every kernel in the persistent cache the first one filled
    assert all(s["compiles"] == 0 and s["disk_hits"] > 0 for s in stats), stats


def test_worker_errors_keep_their_type_and_message(ray_cluster):
    with tf.distribute.DataParallel(regression_model(), num_workers=2, verbose=0) as trainer:
        with pytest.raises(ValueError, match="same number of rows"):
            trainer.step(np.zeros((4, FEATURES), np.float32), np.zeros((3, 1), np.float32))
        with pytest.raises(tf.errors.InvalidArgumentError):
            trainer.step(np.zeros((4, FEATURES + 1), np.float32), np.zeros((4, 1), np.float32))


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_step_failing_on_one_worker_changes_nothing(ray_cluster, exchange):
    """Rank 1 fails on a bad row index while rank 0 would go on: no update is applied twice or on one
    replica only, and the next steps continue the single-process trajectory (no hang with GLOO)."""
    model_fn = regression_model("momentum")
    X, y = regression_data(seed=3)
    with tf.distribute.DataParallel(model_fn, num_workers=2, verbose=0, exchange=exchange, timeout=120) as trainer:
        initial = trainer.variables()
        trainer.load_data(X, y)
        trainer.step_rows(np.arange(0, 16))
        with pytest.raises(IndexError):
            trainer.step_rows(np.r_[np.arange(16, 24), [10_000] * 8])          # rank 1's shard is bad
        with pytest.raises(ValueError, match="empty batch"):
            trainer.step_rows(np.arange(0))
        trainer.step_rows(np.arange(16, 32))
        replicas = trainer.replica_variables()
    for name in replicas[0]:
        assert np.array_equal(replicas[0][name], replicas[1][name]), name
    assert replicas[0]["global_step"] == 2
    assert_close(replicas[0], single_process(model_fn, initial, [(X[:16], y[:16]), (X[16:32], y[16:32])]))


def digits_split():
    (x_train, y_train), (x_test, y_test) = tf.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32)
    return x_train, y_train, x_test, y_test


def digits_model(batch_norm):
    layers = [keras.layers.Dense(64, activation="relu", input_shape=(64,))]
    layers += [keras.layers.BatchNormalization()] if batch_norm else []
    model = keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_keras_fit_with_ray_strategy_reaches_the_single_process_accuracy(ray_cluster):
    x_train, y_train, x_test, y_test = digits_split()
    keras.utils.set_random_seed(0)
    single = digits_model(batch_norm=False)
    initial = single.get_weights()
    single._rng = np.random.default_rng(5)                 # the same shuffling on both
    single.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0)
    _, single_accuracy = single.evaluate(x_test, y_test, verbose=0)

    strategy = tf.distribute.RayStrategy(num_workers=2)
    with strategy, strategy.scope():
        model = digits_model(batch_norm=False)
        assert model.distribute_strategy is strategy and strategy.num_replicas_in_sync == 2
        model.set_weights(initial)
        model._rng = np.random.default_rng(5)
        history = model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0, validation_split=0.1)
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert len(history.history["val_accuracy"]) == 8
    assert accuracy >= 0.95 and accuracy >= single_accuracy - 0.01, (accuracy, single_accuracy)


def test_keras_recompile_keeps_the_optimizer_state_in_step(ray_cluster):
    x_train, y_train, _, _ = digits_split()
    strategy = tf.distribute.RayStrategy(num_workers=2)
    with strategy, strategy.scope():
        model = digits_model(batch_norm=False)
        model.fit(x_train[:256], y_train[:256], batch_size=64, epochs=1, verbose=0)
        model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
        model.fit(x_train[:256], y_train[:256], batch_size=64, epochs=1, verbose=0)
        driver = model.optimizer.variables()
        replica_weights, replica_optimizer = ray_cluster.get(strategy._trainer.workers[1].keras_state.remote())
        for variable, value in zip(driver, replica_optimizer):
            np.testing.assert_array_equal(model._engine.read([variable])[0], value)
        for mine, theirs in zip(model.get_weights(), replica_weights):
            np.testing.assert_array_equal(mine, theirs)
        powers = [v for v in driver if "beta1_power" in v.op.name]
        assert powers and np.isclose(model._engine.read(powers)[0], 0.9 ** 5)      # 4 steps after the reset


def test_keras_batch_norm_statistics_are_averaged_across_replicas(ray_cluster):
    x_train, y_train, x_test, y_test = digits_split()
    keras.utils.set_random_seed(1)
    strategy = tf.distribute.RayStrategy(num_workers=2)
    with strategy, strategy.scope():
        model = digits_model(batch_norm=True)
        model.fit(x_train, y_train, batch_size=64, epochs=6, verbose=0)
        replicas = strategy._trainer.replica_variables()
        for name in replicas[0]:          # moving mean/variance included: every variable agrees
            assert np.array_equal(replicas[0][name], replicas[1][name]), name
        driver = dict(zip([w.op.name for w in model.weights], model.get_weights()))
        for name, value in driver.items():       # the driver model holds the replicas' weights after fit
            np.testing.assert_array_equal(value, replicas[0][name])
        assert any("moving_mean" in name for name in driver)
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.94


def test_distributed_digits_example_trains_both_ways(ray_cluster, tmp_path):
    from examples import distributed_digits
    session_accuracy, keras_accuracy = distributed_digits.main(workers=2, epochs=6, checkpoint_dir=str(tmp_path),
                                                               verbose=False)
    assert session_accuracy > 0.94 and keras_accuracy > 0.94
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("digits_mlp-138")


def test_keras_fit_after_a_lost_worker_resumes_from_the_last_epoch(ray_cluster):
    x_train, y_train, x_test, y_test = digits_split()
    keras.utils.set_random_seed(2)
    strategy = tf.distribute.RayStrategy(num_workers=2)

    class KillWorkerAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(strategy._trainer.worker_info[1]["pid"], signal.SIGKILL)

    with strategy, strategy.scope():
        model = digits_model(batch_norm=False)
        with pytest.raises(tf.errors.UnavailableError, match="worker 1 of 2 died"):
            model.fit(x_train, y_train, batch_size=64, epochs=4, verbose=0, callbacks=[KillWorkerAfterEpoch()])
        after_two_epochs = model.get_weights()           # synced at the end of epoch 2
        history = model.fit(x_train, y_train, batch_size=64, epochs=6, initial_epoch=2, verbose=0)
        assert len(history.history["loss"]) == 4
        assert not np.array_equal(after_two_epochs[0], model.get_weights()[0])
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.94
