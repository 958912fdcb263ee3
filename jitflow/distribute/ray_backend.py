"""Everything that touches Ray: importing it (an optional dependency), joining
or starting a cluster, starting the worker actors with their environment, and
turning Ray's failures into jitflow errors that say which worker and what to
do next."""
from __future__ import annotations

import os

from .. import errors

INSTALL_HINT = "jitflow.distribute runs on Ray: pip install 'jitflow[distributed]' (or pip install ray)"


def import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return ray


def ensure_ray(address=None):
    """Ray, initialized: joins `address` (or $RAY_ADDRESS, e.g. "auto" on a node of a cluster started
    with `ray start`), else starts a local instance with this machine's CPUs."""
    ray = import_ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=True)
    return ray


def worker_environment(cpus_per_worker: int) -> dict:
    """The worker processes' variables: the driver's JITFLOW_* settings (cache directory above all, so
    workers on one node share compiled kernels) and thread counts matching the worker's CPU share."""
    env = {key: value for key, value in os.environ.items() if key.startswith("JITFLOW_")}
    threads = str(max(1, int(cpus_per_worker)))
    env.update({"JITFLOW_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads})
    return env


def start_workers(ray, worker_class, num_workers, cpus_per_worker, spread):
    remote_class = ray.remote(worker_class)
    options = {"num_cpus": cpus_per_worker, "max_restarts": 0,
               "runtime_env": {"env_vars": worker_environment(cpus_per_worker)}}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    return [remote_class.options(**options).remote(rank, num_workers) for rank in range(num_workers)]


def get(ray, refs, workers, what: str, timeout=None):
    """ray.get(refs), with a dead worker reported as UnavailableError naming its rank, and an exception
    raised inside a worker re-raised as itself (its type and message, e.g. InvalidArgumentError)."""
    from ray import exceptions as rex
    try:
        if isinstance(refs, list):
            wait_for_all(ray, refs, timeout)
        return ray.get(refs, timeout=timeout)
    except rex.GetTimeoutError as err:
        raise errors.UnavailableError(f"{what}: no answer from the Ray workers within {timeout} s") from err
    except rex.RayTaskError as err:
        if isinstance(err.cause, (rex.RayActorError, rex.ObjectLostError)):
            raise unavailable(ray, workers, what, err.cause) from err
        if len(workers) > 1 and dead_ranks(ray, workers):
            # a peer's death surfaced first as this worker's error (a broken all-reduce connection)
            raise unavailable(ray, workers, what, err.cause) from err
        raise err.as_instanceof_cause() from None
    except (rex.RayActorError, rex.ObjectLostError) as err:
        raise unavailable(ray, workers, what, err) from err


def wait_for_all(ray, refs, timeout):
    """Waits for every ref, raising as soon as ONE has failed (ray.get on a list would first wait for
    the earlier ones, which may never finish: a worker blocked in an all-reduce its dead peer left).
    `timeout` bounds the whole wait."""
    import time
    deadline = None if timeout is None else time.monotonic() + timeout
    remaining = list(refs)
    while remaining:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, remaining = ray.wait(remaining, num_returns=1, timeout=left)
        if not ready:
            from ray import exceptions as rex
            raise rex.GetTimeoutError(f"no answer within {timeout} s")
        ray.get(ready[0])


def unavailable(ray, workers, what, cause) -> errors.UnavailableError:
    dead = dead_ranks(ray, workers)
    who = (f"worker {', '.join(map(str, dead))} of {len(workers)}" if dead
           else f"a worker of {len(workers)}")
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return errors.UnavailableError(
        f"{what}: Ray {who} died ({reason}). The replicas' state since the last checkpoint is lost: close "
        f"this trainer, start a new one and restore the last checkpoint, e.g. "
        f"trainer.restore(tf.train.latest_checkpoint(checkpoint_dir)).")


def dead_ranks(ray, workers, timeout=10.0) -> list[int]:
    """The ranks whose actor is gone (pinged all at once; a busy worker that does not answer in time is
    not called dead)."""
    from ray import exceptions as rex
    pings = [worker.ping.remote() for worker in workers]
    ray.wait(pings, num_returns=len(pings), timeout=timeout)
    dead = []
    for rank, ping in enumerate(pings):
        try:
            ray.get(ping, timeout=0)
        except (rex.RayActorError, rex.ObjectLostError):
            dead.append(rank)
        except rex.GetTimeoutError:
            pass
    return dead
