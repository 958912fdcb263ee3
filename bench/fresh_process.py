"""One benchmark measurement in a fresh interpreter: `module.measure_here(*args)` runs in a child
process (its own session, an empty kernel cache, killed as a group on timeout) and prints its record
as one `@@{json}` line; `measure_rows` / `timed` are the child side that times a workload's rows.
Used by W9 (compile_time.py), W10 (cnn_workload.py) and W11 (lstm_workload.py)."""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure_in_fresh_process(module: str, args: tuple, timeout: float, python: str | None = None,
                             drop_env=("JITFLOW_CACHE",)) -> dict:
    """The child's record, or {'status': 'timeout' | 'error', ...}. `python`: another interpreter
    (a peer installed in its own environment); `drop_env`: variables the child must not inherit."""
    with tempfile.TemporaryDirectory(prefix=f"jitflow-{module}-cache-") as cache:
        env = dict(os.environ, JITFLOW_CACHE_DIR=cache, TF_CPP_MIN_LOG_LEVEL="2")
        for name in drop_env:
            env.pop(name, None)
        call = ", ".join(repr(a) for a in args)
        code = (f"import sys, json; sys.path.insert(0, {HERE!r}); import {module}; "
                f"print('@@' + json.dumps({module}.measure_here({call})))")
        proc = subprocess.Popen([python or sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return {"status": "timeout", "timeout_s": timeout}
    for line in stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {proc.returncode}"
    return {"status": "error", "reason": tail[:300]}


# ---- the child side: time each row of one system ----------------------------------------------------
TIME_BUDGET = 2.0    # seconds of timed calls per row (at least MIN_RUNS calls, at most 100)
MIN_RUNS = 5
_MODULES = {"jitflow": "jitflow", "tf": "tensorflow", "jax": "jax", "torch": "torch", "torch-compile": "torch"}


def timed(fn, after_warmup=None) -> dict:
    """Median/min/max seconds of `fn()` after two warm-up calls (and `after_warmup()`, jitflow's wait
    for its optimized code)."""
    fn()
    fn()
    if after_warmup is not None:
        after_warmup()
    times = []
    deadline = time.perf_counter() + TIME_BUDGET
    while len(times) < MIN_RUNS or (time.perf_counter() < deadline and len(times) < 100):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": len(times)}


def tf1_module():
    """TensorFlow's TF1 API (graph mode), quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow
    tensorflow.compat.v1.disable_eager_execution()
    return tensorflow.compat.v1


def measure_rows(system: str, builders: dict, rows, **extra) -> dict:
    """Child side of a workload: `builders[system]()` -> ({row: fn}, check value); every row timed.
    A framework that is not installed gives status 'skipped'."""
    if system not in builders:
        return {"status": "error", "reason": f"unknown system {system!r}"}
    after_warmup = None
    try:
        fns, check = builders[system]()
    except ImportError as exc:
        return {"status": "skipped", "reason": f"{system} is not installed ({exc.name})"}
    if system == "jitflow":
        from jitflow.runtime import wait_for_background_compiles as after_warmup
    start = time.perf_counter()
    timings = {row: timed(fns[row], after_warmup) for row in rows}
    return {"status": "ok", "rows": timings, "check": check,
            "version": sys.modules[_MODULES[system]].__version__, "seconds": time.perf_counter() - start, **extra}


def measure_systems(module: str, label: str, systems: list, interpreters: dict, timeout: float, log=print) -> dict:
    """{system: record} of `module.measure_here(system)`, each in a fresh process under the interpreter
    given for its family (`torch-compile` runs under `torch`'s), noting failures in the log."""
    results = {}
    for system in systems:
        python = interpreters.get(system.split("-")[0])
        results[system] = measure_in_fresh_process(module, (system,), timeout, python, drop_env=())
        if results[system]["status"] != "ok":
            log(f"note: {label} {system}: {results[system]['status']} {results[system].get('reason', '')}".rstrip())
    return results


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"
