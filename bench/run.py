"""Runs the workloads side by side and prints one table per workload.

    python -m jitflow bench [--only W1,W4,W9] [--peers numpy|all|numpy,jax,tf] [--json PATH]
                            [--peer-python tf=/path/to/python] [--w9-timeout 300]
    python -m jitflow bench --only W4 --contention      (step times beside a busy neighbour: contention.py)

Each system runs in its own process (TF, JAX and torch thread pools disturb
each other and jitflow on 2 cores); jitflow and numpy always run. A missing
peer is skipped with a note. The same run measures the machine's limits
(triad bandwidth, FMA peak) and W8, the time to the first W4 step in a fresh
process with a cold and then a warm kernel cache, and W9, compile time as
graphs grow (compile_time.py: jitflow beside TF1 `tf` and `jax.jit`, one fresh
process and one timeout per measurement), and W10, the "Deep MNIST" CNN's training step and
forward pass beside TF1, jax.jit, PyTorch eager and torch.compile (cnn_workload.py), and W11, an LSTM
training step beside TF1 dynamic_rnn, jax.jit with lax.scan and PyTorch nn.LSTM (lstm_workload.py). A peer
can run under another Python (`--peer-python tf=/opt/tf/bin/python`, repeatable, or the environment variable
JITFLOW_BENCH_PEER_PYTHON="tf=...,jax=..."), e.g. when TensorFlow lives in its
own virtual environment. The JSON file holds, per workload and system, the
median seconds (and min/max), and the W8-W11 records.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("W1", "W2", "W3a", "W3b", "W4", "W5-jit", "W5-session", "W6", "W7")
PEERS = ("numpy", "jax", "torch")        # peers of W1-W7; W9's are compile_time.PEERS (tf, jax)
TIME_BUDGET = 1.0          # seconds of timed work per (workload, system), at least MIN_REPEATS runs
MIN_REPEATS = 5


def time_callable(fn) -> dict:
    fn()
    fn()
    _optimized_code_installed()
    times = []
    deadline = time.perf_counter() + TIME_BUDGET
    inner = 1
    start = time.perf_counter()
    fn()
    single = time.perf_counter() - start
    if single < 1e-4:                       # tiny calls: time batches, report per call
        inner = max(1, int(1e-3 / max(single, 1e-7)))
    while len(times) < MIN_REPEATS or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": len(times)}


def _optimized_code_installed():
    """Steady state means optimized code: wait for jitflow's background compiles (tiered
    compilation starts them at an executable's second call; runtime/tiered_build.py)."""
    tiered = sys.modules.get("jitflow.runtime.tiered_build")
    if tiered is not None:
        tiered.wait_for_background_compiles()


def worker(system: str, only) -> dict:
    """Runs in a child process: one system, the selected workloads."""
    sys.path.insert(0, str(HERE))
    import workloads
    try:
        builders = workloads.SYSTEMS[system]()
    except ImportError as exc:
        return {"skipped": f"{system} is not installed ({exc.name})"}
    results = {}
    for name in only:
        builder = builders.get(name) or (builders.get("W5-jit") if name == "W5-session" and system != "jitflow"
                                         else None)
        if builder is None or (name == "W5-session" and system != "jitflow"):
            continue
        results[name] = time_callable(builder())
    return results


def run_system(system: str, only, python: str | None = None) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import run; "
            f"print('@@' + json.dumps(run.worker({system!r}, {list(only)!r})))")
    proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    return {"skipped": f"{system} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '?'}"}


W8_SCRIPT = """
import time
start_process = time.perf_counter()
import sys
sys.path.insert(0, {here!r})
import functools
import jitflow
import workloads
workloads.w4_data = functools.lru_cache(maxsize=None)(workloads.w4_data)
workloads.w4_data()             # the workload's input data (numpy), made before the timer starts
start = time.perf_counter()
step = workloads.jitflow_workloads()["W4"]()
step()
end = time.perf_counter()
print("@@", end - start, end - start_process)
"""


def measure_w8() -> dict:
    """Time to the first W4 step in fresh processes: from after `import jitflow` through the graph's
    construction, the compiles (or disk-cache loads), the variables' initializer and the W4 builder's
    first step to the end of one more step (W8_SCRIPT). The workload's input data (numpy random
    arrays, ~12 ms, not jitflow's cost) is generated before the timer starts; `*_with_import` adds
    the interpreter's start and `import jitflow`."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, JITFLOW_CACHE_DIR=cache)
        out = {}
        for label in ("cold", "warm"):
            proc = subprocess.run([sys.executable, "-c", W8_SCRIPT.format(here=str(HERE))], env=env,
                                  capture_output=True, text=True, timeout=600)
            seconds = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("@@")]
            out[label] = float(seconds[0][0]) if seconds else None
            out[label + "_with_import"] = float(seconds[0][1]) if seconds else None
        return out


def fraction_of_limit(name, median, limits):
    import workloads
    kind, amount = workloads.WORK.get(name, (None, None))
    if kind == "bytes":
        return amount / median / limits["bandwidth_bytes_per_s"]
    if kind == "flops":
        return amount / median / limits["fma_flops_per_s"]
    return None


def format_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


def print_tables(results: dict, limits: dict):
    for name in WORKLOADS:
        rows = [(system, r[name]) for system, r in results.items() if isinstance(r, dict) and name in r]
        if not rows:
            continue
        base = dict(rows).get("jitflow", {}).get("median")
        print(f"\n{name}")
        print(f"  {'system':10s} {'median':>12s} {'min':>12s} {'max':>12s} {'vs jitflow':>11s} {'of limit':>9s}")
        for system, r in rows:
            ratio = r["median"] / base if base else float("nan")
            frac = fraction_of_limit(name, r["median"], limits) if limits else None
            print(f"  {system:10s} {format_seconds(r['median']):>12s} {format_seconds(r['min']):>12s} "
                  f"{format_seconds(r['max']):>12s} {ratio:>10.2f}x {'' if frac is None else f'{frac:8.0%}':>9s}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jitflow bench")
    parser.add_argument("--only", default=",".join(WORKLOADS + ("W8", "W9", "W10", "W11")))
    parser.add_argument("--peers", default="numpy",
                        help="numpy | all | comma-separated list of numpy,jax,torch,tf (tf: W9-W11)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--peer-python", action="append", default=[], metavar="NAME=PYTHON",
                        help="run peer NAME (tf, jax, torch) under another interpreter; repeatable")
    parser.add_argument("--w9-timeout", type=float, default=None, help="seconds per W9 measurement (300)")
    parser.add_argument("--w9-chain-ops", default=None, help="W9 chain lengths (default 1000,3000,10000)")
    parser.add_argument("--w9-cases", default=None, help="W9 case kinds (default chain,mlp,keras)")
    parser.add_argument("--contention", action="store_true",
                        help="time each step of the selected W1-W7 workloads (default W4) beside a CPU-bound "
                             "neighbour process: median and 95th percentile (bench/contention.py)")
    args = parser.parse_args(argv)
    selected = [w.strip() for w in args.only.split(",") if w.strip()]
    if "W5" in selected:
        selected += ["W5-jit", "W5-session"]
    if "W3" in selected:
        selected += ["W3a", "W3b"]
    only = [w for w in WORKLOADS if w in selected]
    sys.path.insert(0, str(HERE))
    if args.contention:                     # bench/contention.py: step-time stability beside a busy process
        import contention
        peers = PEERS if args.peers == "all" else tuple(p.strip() for p in args.peers.split(",") if p.strip())
        for name in only or ["W4"]:
            contention.main(peers, name, args.json)
        return 0
    import compile_time
    peers = (PEERS + compile_time.PEERS[:1] if args.peers == "all"
             else tuple(p.strip() for p in args.peers.split(",") if p.strip()))
    interpreters = compile_time.parse_peer_python(args.peer_python)
    import limits as limit_probe
    print(f"jitflow benchmarks on {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs), "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    from jitflow.runtime.blas import blas_source
    blas = dict(zip(("source", "path"), blas_source()))
    print(f"BLAS timed by W3, W6 (and the GEMMs of W4): jitflow calls {blas['source'] or 'no library (loops)'}"
          f" ({blas['path']}); numpy calls the OpenBLAS its wheel bundles")
    blas["environment"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if blas["environment"]:     # shared/BENCHMARKS.md: unset both for the benchmark command alone
        print(f"note: {blas['environment']} is set: every OpenBLAS here (jitflow's, numpy's) runs the kernels it "
              f"names rather than this CPU's own; for fair figures run `env -u OPENBLAS_CORETYPE -u "
              f"OPENBLAS_L2_SIZE python -m jitflow bench ...`")
    limits = {}
    if only or "W10" in selected or "W11" in selected:
        limits = limit_probe.measure()
        print(f"limits: triad bandwidth {limits['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, "
              f"float32 FMA peak {limits['fma_flops_per_s'] / 1e9:.0f} GFLOP/s")
    results = {}
    for system in ("jitflow",) + tuple(p for p in peers if p != "jitflow" and p in PEERS) if only else ():
        results[system] = run_system(system, only, interpreters.get(system))
        if "skipped" in results[system]:
            print(f"note: {results[system]['skipped']}")
    print_tables(results, limits)
    w8 = measure_w8() if "W8" in selected else None
    if w8:
        print(f"\nW8  time to the first W4 step in a fresh process (after `import jitflow`): cold cache "
              f"{format_seconds(w8['cold'])}, warm cache {format_seconds(w8['warm'])}; including the imports: "
              f"{format_seconds(w8['cold_with_import'])} and {format_seconds(w8['warm_with_import'])}")
    w9 = None
    if "W9" in selected:
        w9 = compile_time.run_w9(
            peers, interpreters, args.w9_timeout or compile_time.DEFAULT_TIMEOUT,
            kinds=tuple(args.w9_cases.split(",")) if args.w9_cases else compile_time.CASE_KINDS,
            chain_ops=tuple(int(n) for n in args.w9_chain_ops.split(",")) if args.w9_chain_ops
            else compile_time.CHAIN_OPS)
        compile_time.print_w9(w9)
    w10 = None
    if "W10" in selected:                     # bench/cnn_workload.py
        import cnn_workload
        w10 = cnn_workload.run_w10(peers, interpreters)
        cnn_workload.print_w10(w10, limits)
    w11 = None
    if "W11" in selected:                     # bench/lstm_workload.py
        import lstm_workload
        w11 = lstm_workload.run_w11(peers, interpreters)
        lstm_workload.print_w11(w11, limits)
    if args.json:
        payload = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(), "limits": limits, "blas": blas,
                   "results": {name: {system: r[name] for system, r in results.items()
                                      if isinstance(r, dict) and name in r} for name in only}, "W8": w8,
                   "W9": w9, "W10": w10, "W11": w11}
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
