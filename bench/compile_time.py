"""W9 of shared/BENCHMARKS.md: compile time as graphs grow, jitflow beside TF1 and jax.jit.

Cases (float32), each timed as "time to the first result" = build the graph / model + compile + first run,
in a FRESH PROCESS per (system, case) so that imports, thread pools and in-memory caches never leak from one
measurement to the next (the import itself is timed apart and not included):

- chain-1k / chain-3k / chain-10k: `y = y*y*0.5 + y` (3 ops: mul, mul, add) alternating with `tanh` (1 op),
  N elementwise ops in all, on a fed [32, 64] placeholder (fed, so no system can constant-fold it);
- mlp32-adam: 32 dense layers of 64 units (ReLU), mean squared error, TF1 Adam; the first training step
  (initializers included); jax: the same Adam written out inside one jitted step;
- keras-digits: the demo's Keras model (64-300-100-10, ReLU, softmax, Adam, sparse categorical
  cross-entropy, accuracy) on digits-shaped data (1437 x 64), compile + fit of one epoch (batch 32,
  validation_split 0.1); TF runs it through tf.keras; jax has no row.

Systems: `jitflow` (a fresh, empty JITFLOW_CACHE_DIR per measurement), `tf` (tensorflow / tensorflow-cpu
through tf.compat.v1, graph mode, first `sess.run`), `jax` (`jax.jit`, first call incl. tracing and XLA
compile, `block_until_ready`). A peer may run under another interpreter: `--peer-python tf=/path/to/python`
(repeatable) or `JITFLOW_BENCH_PEER_PYTHON="tf=/path/python,jax=/other/python"`. Every measurement has a
timeout (default 300 s) and reports "timeout" instead of hanging; its whole process group is killed.

The child side of this file (`python compile_time.py SYSTEM CASE`) imports only the standard library and
numpy before the measured framework, so it runs under a peer's interpreter as well.
"""
from __future__ import annotations

import json
import os
import sys
import time

from fresh_process import measure_in_fresh_process  # noqa: E402  (bench/ is on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
CHAIN_OPS = (1000, 3000, 10000)
CASE_KINDS = ("chain", "mlp", "keras")
PEERS = ("tf", "jax")
DEFAULT_TIMEOUT = 300.0
CHAIN_SHAPE = (32, 64)
MLP_LAYERS, MLP_UNITS, MLP_BATCH = 32, 64, 32
KERAS_HIDDEN, KERAS_ROWS, KERAS_FEATURES, KERAS_BATCH = (300, 100), 1437, 64, 32
ENV_PEER_PYTHON = "JITFLOW_BENCH_PEER_PYTHON"


# ---- cases ---------------------------------------------------------------------------------------
def case_name(kind: str, size=None) -> str:
    if kind == "chain":
        return f"chain-{size // 1000}k" if size % 1000 == 0 else f"chain-{size}"
    return {"mlp": "mlp32-adam", "keras": "keras-digits"}[kind]


def cases(kinds=CASE_KINDS, chain_ops=CHAIN_OPS) -> list:
    """[(name, kind, size)] in report order."""
    unknown = [k for k in kinds if k not in CASE_KINDS]
    if unknown or any(n <= 0 or n % 4 for n in chain_ops):
        raise ValueError(f"W9 cases are {', '.join(CASE_KINDS)} and chain lengths positive multiples of 4; "
                         f"got {list(kinds)} and {list(chain_ops)}")
    out = []
    for kind in kinds:
        if kind == "chain":
            out += [(case_name("chain", n), "chain", n) for n in chain_ops]
        else:
            out.append((case_name(kind), kind, None))
    return out


def chain(y, n_ops: int, tanh):
    """N elementwise ops: `y*y*0.5 + y` (3 ops) then `tanh` (1 op), repeated; n_ops is a multiple of 4."""
    if n_ops % 4:
        raise ValueError(f"chain length {n_ops} is not a multiple of 4")
    for _ in range(n_ops // 4):
        y = tanh(y * y * 0.5 + y)
    return y


def chain_input():
    import numpy as np
    return np.random.default_rng(9).uniform(-0.5, 0.5, CHAIN_SHAPE).astype(np.float32)


def mlp_data():
    import numpy as np
    r = np.random.default_rng(9)
    x = r.standard_normal((MLP_BATCH, MLP_UNITS)).astype(np.float32)
    y = (r.standard_normal((MLP_BATCH, MLP_UNITS)) * 0.1).astype(np.float32)
    weights = [(r.standard_normal((MLP_UNITS, MLP_UNITS)) * np.sqrt(2 / MLP_UNITS)).astype(np.float32)
               for _ in range(MLP_LAYERS)]
    return x, y, weights


def keras_data():
    import numpy as np
    r = np.random.default_rng(9)
    x = (r.integers(0, 17, (KERAS_ROWS, KERAS_FEATURES)) / 16.0).astype(np.float32)
    return x, r.integers(0, 10, KERAS_ROWS).astype(np.int32)


# ---- the child: one measurement ------------------------------------------------------------------
def _tf1_graph_case(tf, kind, size, clock):
    """jitflow and tf.compat.v1 share this code: both speak the TF1 graph API."""
    graph = tf.Graph()
    with graph.as_default():
        if kind == "chain":
            data = chain_input()
            x = tf.placeholder(tf.float32, CHAIN_SHAPE)
            out = chain(x, size, tf.tanh)
            feed = {x: data}
            fetch = out
        else:
            xv, yv, weights = mlp_data()
            x = tf.placeholder(tf.float32, (None, MLP_UNITS))
            y = tf.placeholder(tf.float32, (None, MLP_UNITS))
            h = x
            for w in weights:
                h = tf.nn.relu(tf.matmul(h, tf.Variable(w)) + tf.Variable(tf.zeros([MLP_UNITS])))
            loss = tf.reduce_mean(tf.square(h - y))
            train = tf.train.AdamOptimizer(1e-3).minimize(loss)
            init = tf.global_variables_initializer()
            feed = {x: xv, y: yv}
            fetch = [train, loss]
        sess = tf.Session(graph=graph)
    clock["build"] = time.perf_counter()
    if kind == "mlp":
        sess.run(init)
    result = sess.run(fetch, feed)
    clock["first"] = time.perf_counter()
    sess.run(fetch, feed)           # the second call starts the optimized compile (tiered compilation)
    if tf.__name__.split(".")[0] == "jitflow":
        from jitflow.runtime import wait_for_background_compiles
        wait_for_background_compiles()  # "later run" is the steady state: the optimized code
    start = time.perf_counter()
    sess.run(fetch, feed)
    clock["later_run"] = time.perf_counter() - start
    import numpy as np
    return float(np.mean(result)) if kind == "chain" else float(result[1])


def _keras_case(keras, clock):
    x, y = keras_data()
    model = keras.Sequential([keras.layers.Dense(KERAS_HIDDEN[0], activation="relu",
                                                 input_shape=(KERAS_FEATURES,)),
                              keras.layers.Dense(KERAS_HIDDEN[1], activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock["build"] = time.perf_counter()
    history = model.fit(x, y, epochs=1, batch_size=KERAS_BATCH, validation_split=0.1, verbose=0)
    clock["first"] = time.perf_counter()
    return float(history.history["loss"][0])


def _jax_case(kind, size, clock):
    import jax
    import jax.numpy as jnp
    if kind == "chain":
        x = jnp.asarray(chain_input())
        f = jax.jit(lambda v: chain(v, size, jnp.tanh))
        clock["build"] = time.perf_counter()
        out = f(x).block_until_ready()
        clock["first"] = time.perf_counter()
        f(x).block_until_ready()
        clock["later_run"] = time.perf_counter() - clock["first"]
        return float(jnp.mean(out))
    xv, yv, weights = mlp_data()
    x, y = jnp.asarray(xv), jnp.asarray(yv)
    params = [(jnp.asarray(w), jnp.zeros(MLP_UNITS, jnp.float32)) for w in weights]

    def loss_fn(ps):
        h = x
        for w, b in ps:
            h = jax.nn.relu(h @ w + b)
        return jnp.mean(jnp.square(h - y))

    @jax.jit
    def step(ps, m, v, t):                                  # TF1 Adam, lr 1e-3
        loss, grads = jax.value_and_grad(loss_fn)(ps)
        t = t + 1
        lr_t = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        m = jax.tree_util.tree_map(lambda a, g: 0.9 * a + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: 0.999 * a + 0.001 * g * g, v, grads)
        ps = jax.tree_util.tree_map(lambda p, a, b: p - lr_t * a / (jnp.sqrt(b) + 1e-8), ps, m, v)
        return ps, m, v, t, loss
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    clock["build"] = time.perf_counter()
    state = step(params, zeros, zeros, jnp.float32(0))
    jax.block_until_ready(state)
    clock["first"] = time.perf_counter()
    jax.block_until_ready(step(*state[:4]))
    clock["later_run"] = time.perf_counter() - clock["first"]
    return float(state[4])


def measure_here(system: str, kind: str, size) -> dict:
    """Runs in the child process: import the system, then time one case."""
    start = time.perf_counter()
    try:
        if system == "jitflow":
            import jitflow as framework
        elif system == "tf":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow
            framework = tensorflow
        elif system == "jax":
            import jax  # noqa: F401
            framework = None
        else:
            return {"status": "error", "reason": f"unknown system {system!r}"}
    except ImportError as exc:
        return {"status": "skipped", "reason": f"{system} is not installed ({exc.name})"}
    clock = {"start": time.perf_counter()}
    imported = clock["start"] - start
    if system == "jax":
        if kind == "keras":
            return {"status": "n/a", "reason": "no Keras model for jax"}
        check = _jax_case(kind, size, clock)
    elif kind == "keras":
        check = _keras_case(framework.keras, clock)
    else:
        check = _tf1_graph_case(framework if system == "jitflow" else framework.compat.v1, kind, size, clock)
    out = {"status": "ok", "seconds": clock["first"] - clock["start"], "build": clock["build"] - clock["start"],
           "first_run": clock["first"] - clock["build"], "import": imported, "check": check}
    if "later_run" in clock:
        out["later_run"] = clock["later_run"]
    if system == "tf":
        out["version"] = framework.__version__
    elif system == "jax":
        out["version"] = sys.modules["jax"].__version__
    return out


# ---- the parent: fresh processes, timeouts ----------------------------------------------------------
def parse_peer_python(specs=(), environ=None) -> dict:
    """{'tf': '/path/python', ...} from `NAME=PYTHON` items (CLI) and JITFLOW_BENCH_PEER_PYTHON."""
    environ = os.environ if environ is None else environ
    items = [s for s in environ.get(ENV_PEER_PYTHON, "").split(",") if s.strip()] + list(specs or ())
    out = {}
    for item in items:
        name, sep, python = item.partition("=")
        if not sep or not name.strip() or not python.strip():
            raise ValueError(f"peer interpreter {item!r} is not NAME=PYTHON (e.g. tf=/opt/tf/bin/python)")
        out[name.strip()] = python.strip()
    return out


def measure(system: str, kind: str, size=None, timeout: float = DEFAULT_TIMEOUT, python: str | None = None) -> dict:
    """One measurement in a fresh process with an empty kernel cache (bench/fresh_process.py)."""
    return measure_in_fresh_process("compile_time", (system, kind, size), timeout, python)


def run_w9(peers=PEERS, interpreters=None, timeout=DEFAULT_TIMEOUT, kinds=CASE_KINDS, chain_ops=CHAIN_OPS,
           log=print) -> dict:
    """Measures every case for jitflow and each peer; returns {'cases': {case: {system: record}}, ...}."""
    interpreters = interpreters or {}
    selected = cases(kinds, chain_ops)
    systems = ("jitflow",) + tuple(p for p in peers if p in PEERS)
    results = {name: {} for name, _, _ in selected}
    notes = {}
    for system in systems:
        for name, kind, size in selected:
            if system in notes:
                results[name][system] = {"status": "skipped", "reason": notes[system]}
                continue
            record = measure(system, kind, size, timeout, interpreters.get(system))
            results[name][system] = record
            if record["status"] == "skipped":
                notes[system] = record["reason"]
                log(f"note: {record['reason']}")
    return {"cases": results, "per_op": per_op(results, chain_ops), "timeout_s": timeout,
            "interpreters": {s: interpreters.get(s, sys.executable) for s in systems},
            "versions": {s: r["version"] for c in results.values() for s, r in c.items() if "version" in r}}


def per_op(results: dict, chain_ops=CHAIN_OPS) -> dict:
    """{system: {ops: seconds per op or the failure status}} for the chain cases."""
    table: dict = {}
    for n in chain_ops:
        for system, record in results.get(case_name("chain", n), {}).items():
            table.setdefault(system, {})[str(n)] = (record["seconds"] / n if record["status"] == "ok"
                                                    else record["status"])
    return table


def _fmt(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return str(seconds)
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def print_w9(report: dict, log=print):
    log(f"\nW9  compile time: first result in a fresh process (graph build + compile + first run; import "
        f"excluded; empty kernel cache; timeout {report['timeout_s']:.0f} s per measurement)")
    log(f"  {'case':13s} {'system':8s} {'first result':>12s} {'build':>9s} {'first run':>10s} "
        f"{'later run':>10s} {'import':>9s} {'vs jitflow':>11s}")
    for name, by_system in report["cases"].items():
        base = by_system.get("jitflow", {})
        base_s = base.get("seconds") if base.get("status") == "ok" else None
        for system, r in by_system.items():
            if r["status"] != "ok":
                if r["status"] != "skipped":
                    log(f"  {name:13s} {system:8s} {r['status']:>12s}   {r.get('reason', '')}")
                continue
            ratio = f"{r['seconds'] / base_s:10.2f}x" if base_s else f"{'-':>11s}"
            log(f"  {name:13s} {system:8s} {_fmt(r['seconds']):>12s} {_fmt(r['build']):>9s} "
                f"{_fmt(r['first_run']):>10s} {_fmt(r.get('later_run', '-')):>10s} {_fmt(r['import']):>9s} {ratio}")
        for system, r in by_system.items():               # same graph, same data: same numbers
            comparable = system != "jitflow" and not name.startswith("keras") and base_s is not None
            if comparable and r["status"] == "ok" and abs(r["check"] - base["check"]) > 1e-3 * (1 + abs(base["check"])):
                log(f"  {'':13s} note: {system} computed {r['check']:.6g}, jitflow {base['check']:.6g}")
        if base_s is None and base.get("status") == "timeout":
            peers = [f"{s} {_fmt(r['seconds'])}" for s, r in by_system.items() if r["status"] == "ok"]
            if peers:
                log(f"  {'':13s} (jitflow > {report['timeout_s']:.0f} s; {', '.join(peers)})")
    sizes = sorted({int(n) for row in report["per_op"].values() for n in row})
    if not sizes:
        return
    log("\nW9  seconds per op as the chain grows (first result / number of ops)")
    log(f"  {'system':8s} " + " ".join(f"{f'{n} ops':>12s}" for n in sizes)
        + f" {f'{sizes[-1]}/{sizes[0]}':>10s}")
    for system, row in report["per_op"].items():
        if all(cell == "skipped" for cell in row.values()):
            continue
        cells = [row.get(str(n), "-") for n in sizes]
        first, last = cells[0], cells[-1]
        growth = f"{last / first:9.2f}x" if all(isinstance(c, float) for c in (first, last)) else f"{'-':>10s}"
        log(f"  {system:8s} " + " ".join(f"{_fmt(c):>12s}" for c in cells) + f" {growth}")


if __name__ == "__main__":                                 # python compile_time.py SYSTEM KIND [SIZE]
    _system, _kind = sys.argv[1], sys.argv[2]
    _size = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print("@@" + json.dumps(measure_here(_system, _kind, _size)))
