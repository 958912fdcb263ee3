"""Scaling of jitflow.distribute on this machine, side by side in one script.

    python bench/distributed_bench.py [--json out.json] [--steps 60]

1. The gradient exchange alone, for the W4 MLP's gradient (535,818 float32, 2.1 MB) and a small one, on
   2 workers: the object-store exchange DataParallel uses (every worker reads every worker's message and
   averages) against Ray's collective all-reduce (GLOO backend, which needs torch; skipped without it).
2. W4 (784-512-256-10 MLP, softmax cross-entropy, SGD) trained through DataParallel with 1 and 2 workers,
   next to the same step in one process without Ray: global batch 256 (strong scaling: 128 rows per
   worker with 2) and 256 rows per worker (weak scaling: global 512 with 2).
3. Keras `fit` on digits, one epoch (batch 64): one process vs RayStrategy with 1 and 2 workers.

Every worker gets one CPU (and one thread). On a 2-core machine two workers share the cores with the
driver and Ray's own processes, so this measures overheads more than speed-ups.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import W4_BATCH, W4_SIZES, w4_data  # noqa: E402

W4_PARAMETERS = sum(a * b + b for a, b in zip(W4_SIZES[:-1], W4_SIZES[1:]))


# ---- 1. the exchange ------------------------------------------------------------------------------------

class Exchanger:
    """A Ray actor body: the object-store exchange and the GLOO all-reduce of one float32 buffer."""

    def __init__(self, rank, world, size):
        self.rank, self.world = rank, world
        self.buffer = np.full(size, rank + 1.0, np.float32)

    def object_store_round(self, *messages):
        """DataParallel's pattern: average every worker's previous message, return a new one."""
        if messages:
            acc = np.multiply(messages[0], np.float32(1 / len(messages)))
            for message in messages[1:]:
                acc += message * np.float32(1 / len(messages))
            self.buffer = acc
        return self.buffer.copy()

    def init_gloo(self):
        from ray.util import collective
        collective.init_collective_group(self.world, self.rank, backend="gloo", group_name="bench")
        return True

    def gloo_rounds(self, rounds):
        from ray.util import collective
        started = time.perf_counter()
        for _ in range(rounds):
            collective.allreduce(self.buffer, group_name="bench")
        return time.perf_counter() - started


def bench_exchange(ray, size, rounds, workers=2):
    actor = ray.remote(num_cpus=1)(Exchanger)
    actors = [actor.remote(rank, workers, size) for rank in range(workers)]
    ray.get([a.object_store_round.remote() for a in actors])
    refs = []
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        refs = [a.object_store_round.remote(*refs) for a in actors]
        ray.wait(refs, num_returns=len(refs), fetch_local=False)
        timings.append(time.perf_counter() - started)
    result = {"size": size, "object_store_ms": 1e3 * float(np.median(timings))}
    try:
        import torch  # noqa: F401
        ray.get([a.init_gloo.remote() for a in actors])
        ray.get([a.gloo_rounds.remote(3) for a in actors])
        seconds = ray.get([a.gloo_rounds.remote(rounds) for a in actors])
        result["gloo_ms"] = 1e3 * max(seconds) / rounds
    except Exception as err:  # noqa: BLE001 - torch missing or GLOO unavailable: report and go on
        result["gloo_ms"] = None
        result["gloo_note"] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    for a in actors:
        ray.kill(a)
    return result


# ---- 2. W4 through DataParallel -------------------------------------------------------------------------

def w4_model_fn():
    import jitflow as tf
    _, _, params = w4_data()
    X = tf.placeholder(tf.float32, (None, W4_SIZES[0]), name="X")
    Y = tf.placeholder(tf.int32, (None,), name="Y")
    h = X
    for i, (w, b) in enumerate(params):
        h = tf.matmul(h, tf.Variable(w, name=f"w{i}")) + tf.Variable(b, name=f"b{i}")
        if i < len(params) - 1:
            h = tf.nn.relu(h)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=h))
    return tf.distribute.TrainSpec(inputs=[X, Y], loss=loss, optimizer=tf.train.GradientDescentOptimizer(0.01))


def w4_batch(rows):
    r = np.random.default_rng(1)
    return (r.standard_normal((rows, W4_SIZES[0]), np.float32),
            r.integers(0, W4_SIZES[-1], rows).astype(np.int32))


def time_steps(step, steps):
    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


class SingleProcess:
    """A Ray actor body: the fused W4 step in a plain Session, with the same one CPU as a worker."""

    def run(self, steps):
        return bench_w4_single(steps)


def bench_w4_single(steps):
    import jitflow as tf
    graph = tf.Graph()
    with graph.as_default():
        spec = w4_model_fn()
        train = spec.optimizer.minimize(spec.loss)
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    results = {}
    for rows in (W4_BATCH, 2 * W4_BATCH):
        x, y = w4_batch(rows)
        feed = {spec.inputs[0]: x, spec.inputs[1]: y}
        results[rows] = time_steps(lambda: sess.run([train, spec.loss], feed), steps)
    return results


def bench_w4_distributed(workers, steps, exchange="object_store"):
    import jitflow as tf
    results = {}
    with tf.distribute.DataParallel(w4_model_fn, num_workers=workers, verbose=0, exchange=exchange) as trainer:
        for rows in (W4_BATCH, W4_BATCH * workers):
            if rows in results:
                continue
            x, y = w4_batch(rows)
            trainer.load_data(x, y)
            every_row = np.arange(rows)
            results[rows] = time_steps(lambda: trainer.step_rows(every_row), steps)
        results["setup_s"] = trainer.setup_seconds
    return results


# ---- 3. Keras fit on digits -----------------------------------------------------------------------------

def digits_model():
    from jitflow import keras
    model = keras.Sequential([keras.layers.Dense(128, activation="relu", input_shape=(64,)),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def bench_keras(workers, epochs=3):
    import jitflow as tf
    (x, y), (x_test, y_test) = tf.datasets.digits.load_data()
    x, x_test = x.reshape(len(x), -1) / 16.0, x_test.reshape(len(x_test), -1) / 16.0
    strategy = tf.distribute.RayStrategy(num_workers=workers) if workers else None
    if strategy is not None:
        with strategy.scope():
            model = digits_model()
    else:
        model = digits_model()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)          # starts workers, compiles
    started = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    epoch = (time.perf_counter() - started) / epochs
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    if strategy is not None:
        strategy.close()
    return {"epoch_s": epoch, "test_accuracy": accuracy}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--address", help="join this Ray cluster (e.g. two nodes started with `ray start`) "
                                          "instead of starting a local instance")
    args = parser.parse_args(argv)
    import ray
    if args.address:
        ray.init(address=args.address, logging_level="ERROR")
    else:
        ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, logging_level="ERROR")
    nodes = len([n for n in ray.nodes() if n["Alive"]])
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
              "ray": ray.__version__, "ray_nodes": nodes}
    print(f"jitflow.distribute scaling on {report['machine']}, Ray {ray.__version__}, {nodes} Ray node(s)",
          flush=True)

    report["exchange"] = [bench_exchange(ray, size, args.steps) for size in (W4_PARAMETERS, 10_000)]
    print("\ngradient exchange, 2 workers (median per round)")
    for row in report["exchange"]:
        gloo = f"{row['gloo_ms']:.2f} ms" if row["gloo_ms"] is not None else f"n/a ({row.get('gloo_note')})"
        print(f"  {row['size']:>9,} float32: object store {row['object_store_ms']:.2f} ms, GLOO all-reduce {gloo}")

    single = bench_w4_single(args.steps)
    from jitflow.distribute.ray_backend import worker_environment
    actor = ray.remote(num_cpus=1)(SingleProcess).options(runtime_env={"env_vars": worker_environment(1)}).remote()
    single_1cpu = ray.get(actor.run.remote(args.steps))
    ray.kill(actor)
    report["w4"] = {"single_process_ms": {str(k): 1e3 * v for k, v in single.items()},
                    "single_process_1cpu_ms": {str(k): 1e3 * v for k, v in single_1cpu.items()}}
    for label, result in (("all CPUs", single), ("1 CPU", single_1cpu)):
        print(f"\nW4 step, one process without Ray ({label}): batch {W4_BATCH} {1e3 * result[W4_BATCH]:.2f} ms, "
              f"batch {2 * W4_BATCH} {1e3 * result[2 * W4_BATCH]:.2f} ms", flush=True)
    configurations = [(1, "object_store"), (2, "object_store"), (2, "gloo")]
    for workers, exchange in configurations:
        try:
            result = bench_w4_distributed(workers, args.steps, exchange)
        except ImportError as err:
            print(f"W4, {workers} workers, {exchange}: skipped ({err})")
            continue
        report["w4"][f"workers_{workers}_{exchange}"] = {str(k): (1e3 * v if k != "setup_s" else v)
                                                        for k, v in result.items()}
        for rows in sorted(k for k in result if k != "setup_s"):
            print(f"W4 step, {workers} worker(s), {exchange}, global batch {rows} ({rows // workers} per worker): "
                  f"{1e3 * result[rows]:.2f} ms = {rows / result[rows]:,.0f} samples/s", flush=True)

    report["keras"] = {}
    for workers in (0, 1, 2):
        result = bench_keras(workers)
        report["keras"][f"workers_{workers}"] = result
        label = "one process" if not workers else f"RayStrategy({workers})"
        print(f"Keras digits epoch (batch 64), {label}: {result['epoch_s']:.3f} s, "
              f"test accuracy {result['test_accuracy']:.3f}", flush=True)
    ray.shutdown()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
