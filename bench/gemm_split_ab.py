"""A/B of the threaded GEMM split direction (codegen/parallel_gemm.py `split_by_columns`) on the W10
dense products and the W3/W4/W6 workloads (bench/workloads.py).

Variants (command-line arguments): `new` (the rule as installed), `old` (the rule before issue 18:
rows unless m < min(n, 64)), `rows`, `cols` (forced), `wider` (columns when n > m). Each variant
runs in its own fresh subprocess (disk cache off), alternating, ROUNDS rounds (env, default 3);
prints the median over rounds of each round's median. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
unset for the children (docs: BENCHMARKS.md).

    .venv/bin/python bench/gemm_split_ab.py old new
"""
import json, os, subprocess, sys, statistics
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CHILD = r'''
import sys, time, json, numpy as np
import jitflow as tf
from jitflow.codegen import parallel_gemm as pg
if sys.argv[1] == "old":
    pg.split_by_columns = lambda m, n: not (m >= min(n, 64))
    pg.emit_symbolic = lambda *args, **kwargs: None          # symbolic GEMMs were one unsplit call
elif sys.argv[1] == "rows":
    pg.split_by_columns = lambda m, n: False
elif sys.argv[1] == "wider":
    pg.split_by_columns = lambda m, n: n > m
elif sys.argv[1] == "cols":
    pg.split_by_columns = lambda m, n: True
from bench import workloads as W
def timeit(fn, reps):
    fn(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))
def mm(m, k, n, ta=False, tb=False):
    r = np.random.default_rng(0)
    a = r.standard_normal((k, m) if ta else (m, k), np.float32)
    b = r.standard_normal((n, k) if tb else (k, n), np.float32)
    f = tf.jit(lambda p, q: tf.matmul(p, q, transpose_a=ta, transpose_b=tb)); f(a, b)
    return lambda: f(a, b)
def poly_dense(batch=256, k=3136, n=1024):
    """The W10 dense product through a shape-polymorphic executable (batch None, a second batch)."""
    r = np.random.default_rng(0)
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, (None, k))
        y = tf.matmul(x, tf.constant(r.standard_normal((k, n), np.float32)))
        sess = tf.Session(graph=g)
    sess.run(y, {x: r.standard_normal((batch // 2, k), np.float32)})
    feed = {x: r.standard_normal((batch, k), np.float32)}
    sess.run(y, feed)
    return lambda: sess.run(y, feed)
jw = W.jitflow_workloads()
cases = {"W10 dense 256x3136x1024": (mm(256, 3136, 1024), 40),
         "W10 dX 256x1024x3136 (tb)": (mm(256, 1024, 3136, tb=True), 40),
         "W10 dW 3136x256x1024 (ta)": (mm(3136, 256, 1024, ta=True), 40),
         "W10 dense, batch None": (poly_dense(), 40),
         "W3a 1024^3": (jw["W3a"](), 15), "W3b 256x784x512": (jw["W3b"](), 100),
         "W4 step": (jw["W4"](), 200), "W6": (jw["W6"](), 300)}
print(json.dumps({k: timeit(f, n) for k, (f, n) in cases.items()}))
'''
variants = sys.argv[1:] or ["old", "new"]
env = dict(os.environ, JITFLOW_CACHE="0")
env.pop("OPENBLAS_CORETYPE", None); env.pop("OPENBLAS_L2_SIZE", None)
res = {v: [] for v in variants}
for _ in range(ROUNDS):
    for v in variants:
        out = subprocess.run([sys.executable, "-c", CHILD, v], env=env, cwd=ROOT, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-3000:]); sys.exit(1)
        res[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
keys = list(res[variants[0]][0])
print(f"{'case':30s}" + "".join(f"{v:>12s}" for v in variants) + "   (median of rounds' medians, ms)")
for k in keys:
    print(f"{k:30s}" + "".join(f"{statistics.median(r[k] for r in res[v]) * 1e3:12.3f}" for v in variants))
