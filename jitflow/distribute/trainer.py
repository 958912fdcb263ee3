"""`DataParallel`: the driver of synchronous data-parallel training on Ray.

The driver starts N worker actors, has each build the same training step
(compiled once per worker; workers on one node share the persistent kernel
cache), makes their variables identical (rank 0's values are broadcast), and
then, every step, splits the global batch into N shards along the first
dimension. Gradients never pass through the driver: each worker's step
returns a reference to its message (gradients, rows, synced state), and the
next step hands every worker all N references; each worker applies the
row-weighted average first, then computes on its new shard. So one step costs
one actor call per worker, and every replica applies the same update.

    def model_fn():                      # runs on every worker, in a fresh graph
        X = tf.placeholder(tf.float32, (None, 64)); y = tf.placeholder(tf.int32, (None,))
        logits = tf.layers.dense(X, 10)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return tf.distribute.TrainSpec(inputs=[X, y], loss=loss, optimizer=tf.train.AdamOptimizer())

    with tf.distribute.DataParallel(model_fn, num_workers=2) as trainer:
        for X_batch, y_batch in batches:
            values = trainer.step(X_batch, y_batch)     # {'loss': ..., **metrics}, global-batch means
        trainer.save("ckpt/model", global_step=trainer.steps)
"""
from __future__ import annotations

import time

import numpy as np

from .. import errors
from . import ray_backend
from .worker import Worker


class DataParallel:
    """Synchronous data-parallel training of `model_fn`'s TrainSpec on `num_workers` Ray actors.

    address: a Ray cluster to join ("auto" on a cluster node, or "ray://head:10001"); default $RAY_ADDRESS,
    else the running Ray instance, else a local one. cpus_per_worker: the CPUs Ray reserves for each
    worker (and its thread count). spread: place workers on different nodes where possible.
    timeout: seconds to wait for a step before reporting the workers unavailable (default: no limit).
    exchange: how gradients meet. "gloo": Ray's collective all-reduce (GLOO backend, which needs torch
    on every node): one ring all-reduce per step, per-worker traffic independent of N. "object_store":
    every worker reads every worker's message from Ray's object store and averages them itself (no
    dependency beyond Ray). "auto" (default): gloo when torch is installed and there is more than one
    worker, else object_store. Both give bitwise identical replicas; docs/DISTRIBUTED.md has the
    measurements behind the choice."""

    def __init__(self, model_fn=None, num_workers=2, cpus_per_worker=1, address=None, spread=False,
                 timeout=None, verbose=1, exchange="auto", _keras_payload=None):
        if int(num_workers) < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        self.exchange = exchange = resolve_exchange(exchange, int(num_workers), _torch_importable())
        if (model_fn is None) == (_keras_payload is None):
            raise TypeError("DataParallel needs a model function returning a TrainSpec")
        self.num_workers = int(num_workers)
        self.timeout = timeout
        self.verbose = verbose
        self.steps = 0
        self._pending = None          # the previous step's message references, not yet applied
        self._failure = None
        started = time.perf_counter()
        self._ray = ray_backend.ensure_ray(address)
        self.workers = ray_backend.start_workers(self._ray, Worker, self.num_workers, cpus_per_worker, spread)
        self._say(f"jitflow.distribute: starting {self.num_workers} Ray workers and compiling the step ...")
        try:
            if _keras_payload is not None:
                infos = self._call_staged("set up the Keras replicas", "setup_keras", _keras_payload)
            else:
                infos = self._call_staged("build the model function", "setup_session", model_fn)
                self._broadcast_from(0)
            if exchange == "gloo":
                self._join_gloo_group()
        except BaseException:
            self.close()                 # no actors left holding CPUs after a failed set-up
            raise
        self.worker_info = infos
        self.metric_names = infos[0]["metric_names"]
        self.parameters = infos[0]["parameters"]
        self.setup_seconds = time.perf_counter() - started
        nodes = {info["node"] for info in infos}
        self._say(f"jitflow.distribute: {self.num_workers} workers on {len(nodes)} Ray node(s) ready in "
                  f"{self.setup_seconds:.1f} s ({self.parameters:,} parameters each)")

    # --- the training step
    def step(self, *arrays) -> dict:
        """One synchronous step on the global batch `arrays` (one array per TrainSpec input, split along
        axis 0 across the workers): {'loss': ..., **metrics}, means over the global batch."""
        arrays = [np.asarray(a) for a in arrays]
        rows = self._batch_rows(arrays)
        bounds = shard_bounds(rows, self.num_workers)
        shards = [[a[lo:hi] for a in arrays] for lo, hi in bounds]
        return self._run_step("step", shards, bounds)

    def load_data(self, *arrays):
        """Puts the whole data set into Ray's object store once; `step_rows` then sends row indices only
        (workers on one node read the arrays without copying them)."""
        arrays = [np.ascontiguousarray(a) for a in arrays]
        self._batch_rows(arrays)
        refs = [self._ray.put(a) for a in arrays]
        self._call_all("load the data", "load_data", *refs)

    def step_rows(self, rows) -> dict:
        """One step on the rows `rows` (indices into the arrays given to load_data) as the global batch."""
        rows = np.asarray(rows, dtype=np.int64)
        bounds = shard_bounds(len(rows), self.num_workers)
        return self._run_step("step_rows", [rows[lo:hi] for lo, hi in bounds], bounds)

    def _run_step(self, method, shards, bounds) -> dict:
        self._check_alive()
        rows = [hi - lo for lo, hi in bounds]
        if not sum(rows):
            raise ValueError("empty batch: a step needs at least one row")
        what = f"step {self.steps + 1}"
        if self.exchange == "gloo" or self.num_workers == 1:
            suffix = "_local" if self.num_workers == 1 else "_allreduce"
            refs = [getattr(worker, method + suffix).remote(shard, sum(rows))
                    for worker, shard in zip(self.workers, shards)]
            values = self._get(refs, what)
        else:
            pending = self._pending or []          # the messages of step self.steps
            outputs = [getattr(worker, method).options(num_returns=2).remote(shard, self.steps, *pending)
                       for worker, shard in zip(self.workers, shards)]
            values = self._get([scalars for _, scalars in outputs], what)
            self._pending = [message for message, _ in outputs]
        self.steps += 1
        return combine_scalars(values, rows, ["loss"] + self.metric_names)

    def flush(self):
        """Applies the last step's averaged gradients (steps apply the previous step's lazily)."""
        if self._pending is not None:
            self._check_alive()
            self._call_all(f"apply step {self.steps}", "apply", self.steps, *self._pending)
            self._pending = None

    # --- state
    def variables(self) -> dict:
        """{variable name: value} of the replicas (rank 0's; all replicas hold the same values)."""
        self.flush()
        return self._get(self.workers[0].read_state.remote(), "read the variables")

    def replica_variables(self) -> list[dict]:
        """Every worker's variables (for checking that the replicas agree)."""
        self.flush()
        return self._call_all("read the variables", "read_state")

    def load_variables(self, values: dict):
        """Assigns {name: value} on every replica."""
        self.flush()
        ref = self._ray.put(dict(values))
        self._call_all("load the variables", "load_state", ref)

    def save(self, save_path, global_step=None) -> str:
        """Rank 0 writes a tf.train.Saver checkpoint (same format as a single process) and returns its
        path prefix. The path must be on a file system the driver can read later (shared on clusters)."""
        self.flush()
        return self._get(self.workers[0].save.remote(str(save_path), global_step), "save a checkpoint")

    def restore(self, save_path):
        """Rank 0 restores the checkpoint and its values are broadcast to the other workers."""
        if save_path is None:
            raise ValueError("restore(None): no checkpoint found (tf.train.latest_checkpoint returned None)")
        self.flush()                 # (a failed restore then loses nothing)
        state = self._get(self.workers[0].restore.remote(str(save_path)), "restore a checkpoint")
        ref = self._ray.put(state)
        self._get([w.load_state.remote(ref) for w in self.workers[1:]], "broadcast the restored variables")

    def stats(self) -> list[dict]:
        """Each worker's jitflow.runtime.stats() (compiles, disk cache hits, launches)."""
        return self._call_all("read the workers' stats", "stats")

    def close(self):
        """Stops the worker actors (the Ray instance stays up for other trainers)."""
        for worker in self.workers:
            try:
                self._ray.kill(worker)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.workers = []
        self._pending = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- helpers
    def _broadcast_from(self, rank):
        state = self.workers[rank].read_state.remote()
        others = [w for i, w in enumerate(self.workers) if i != rank]
        self._get([w.load_state.remote(state) for w in others], "broadcast the initial variables")

    def _join_gloo_group(self):
        import uuid
        try:
            self._call_all("join the GLOO group", "init_collective", f"jitflow-{uuid.uuid4().hex[:12]}")
        except errors.UnavailableError:
            raise
        except Exception as err:
            raise errors.UnavailableError(f"the workers could not form a GLOO all-reduce group ({err}); is "
                                          f"torch installed on every node? exchange='object_store' needs "
                                          f"nothing but Ray") from err

    def _call_staged(self, what, method, *args):
        """Rank 0 first (it compiles and fills the persistent kernel cache), then the others at once (on
        the same node they load the compiled kernels from that cache instead of compiling again)."""
        self._check_alive()
        first = self._get(getattr(self.workers[0], method).remote(*args), what)
        return [first] + self._get([getattr(w, method).remote(*args) for w in self.workers[1:]], what)

    def _call_all(self, what, method, *args):
        self._check_alive()
        return self._get([getattr(w, method).remote(*args) for w in self.workers], what)

    def _get(self, refs, what):
        self._check_alive()
        try:
            return ray_backend.get(self._ray, refs, self.workers, what, self.timeout)
        except errors.UnavailableError as err:
            self._failure = err
            raise

    def _check_alive(self):
        if self._failure is not None:
            raise errors.UnavailableError(f"this trainer lost a worker earlier: {self._failure.message}")
        if not self.workers:
            raise errors.FailedPreconditionError("this trainer is closed")

    def _batch_rows(self, arrays) -> int:
        if not arrays:
            raise ValueError("step() needs one array per TrainSpec input")
        rows = {len(a) if a.ndim else -1 for a in arrays}
        if len(rows) != 1 or -1 in rows:
            raise ValueError(f"the arrays of one batch must have the same number of rows (the batch "
                             f"dimension), got shapes {[a.shape for a in arrays]}")
        return rows.pop()

    def _say(self, text):
        if self.verbose:
            print(text, flush=True)


def resolve_exchange(exchange: str, num_workers: int, torch_found: bool) -> str:
    """'auto' -> 'gloo' where Ray's GLOO backend can run (torch installed) and there is something to
    exchange, else 'object_store'; an explicit 'gloo' without torch is an ImportError."""
    if exchange not in ("auto", "object_store", "gloo"):
        raise ValueError(f"exchange must be 'auto', 'object_store' or 'gloo', got {exchange!r}")
    if exchange == "gloo" and not torch_found:
        raise ImportError("exchange='gloo' uses Ray's collective GLOO backend, which needs torch: "
                          "pip install torch (or use exchange='object_store')")
    if exchange == "auto":
        return "gloo" if torch_found and num_workers > 1 else "object_store"
    return exchange


def _torch_importable() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def shard_bounds(rows: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous near-equal shards (the first `rows % workers` get one more row), as np.array_split."""
    base, extra = divmod(rows, workers)
    bounds, start = [], 0
    for rank in range(workers):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def combine_scalars(values, rows, names) -> dict:
    """Row-weighted means of the workers' [loss, *metrics] (workers with empty shards report nothing)."""
    total = sum(r for r, v in zip(rows, values) if v)
    if not total:
        raise ValueError("empty batch: step() needs at least one row")
    sums = np.zeros(len(names))
    for count, scalars in zip(rows, values):
        if scalars:
            sums += np.asarray(scalars, np.float64) * count
    return {name: float(s / total) for name, s in zip(names, sums)}
