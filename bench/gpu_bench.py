"""W1, W2, W4 and W11 on the GPU (shared/BENCHMARKS.md), next to the same workloads on this
machine's CPU.

- W1 (`x*x*y + y + 2`, 2**24 elements) and W2 (row softmax of [8192, 1024]): the
  kernels alone, timed with CUDA events over repeated launches with the inputs
  already on the device, reported as GB/s (W1 moves 3 arrays, W2 reads and writes
  once) and as a fraction of the device's theoretical DRAM bandwidth (memory clock
  x bus width, from the driver: 3.35 TB/s on an H100 SXM); plus the end-to-end
  `@jit` call, which copies the inputs to the device and the result back
  (pageable host memory) every call.
- W4 (MLP 784-512-256-10 training step, batch 256, one Session.run of [train, loss]
  with the variables on the device): wall time per step (feeds and the loss cross
  the bus) and the kernels alone.
- W11 (LSTM training step and forward pass, bench/lstm_workload.py): with the time dimension known
  when the graph is built, and unknown (dynamic_rnn's while loop: on the GPU a loop recorded trip
  by trip into the run's CUDA graph).

    python bench/gpu_bench.py [--json out.json] [--repeat 50]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

import jitflow as tf  # noqa: E402
from jitflow.runtime import cuda  # noqa: E402


def wall(fn, repeat: int) -> dict:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def jit_executable(f):
    return next(iter(f._cache.values())).executable


def bench_stream(name, fn, args, nbytes, peak, repeat, device):
    f = tf.jit(fn, device=device)
    out = f(*args)
    row = {"workload": name, "device": device, "bytes": nbytes, "call": wall(lambda: f(*args), repeat)}
    if device == "gpu":
        executable = jit_executable(f)
        seconds = executable.time_kernels(list(args), executable_states(f), repeat=max(repeat, 20))
        row["kernel_s"] = seconds
        row["kernel_GBps"] = nbytes / seconds / 1e9
        row["fraction_of_peak"] = nbytes / seconds / peak if peak else None
        row["profile_us"] = [(name, round(seconds * 1e6, 1)) for name, seconds in
                             executable.profile(list(args), executable_states(f))]
    else:
        row["call_GBps"] = nbytes / row["call"]["median_s"] / 1e9
    return row, out


def executable_states(f):
    return next(iter(f._cache.values())).states


def bench_w4(device, repeat):
    x, y, params = workloads.w4_data()
    graph = tf.Graph()
    with graph.as_default(), tf.device("/gpu:0" if device == "gpu" else None):
        X = tf.placeholder(tf.float32, (None, workloads.W4_SIZES[0]))
        Y = tf.placeholder(tf.int32, (None,))
        h = X
        for i, (w, b) in enumerate(params):
            h = tf.matmul(h, tf.Variable(w)) + tf.Variable(b)
            if i < len(params) - 1:
                h = tf.nn.relu(h)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=h))
        train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    feed = {X: x, Y: y}
    first = sess.run([train, loss], feed)[1]
    row = {"workload": "W4", "device": device, "step": wall(lambda: sess.run([train, loss], feed), repeat),
           "first_loss": float(first)}
    compiled = [c for c in sess._compiled.values() if len(c.lowered.feed_tensors) == 2][0]
    if device == "gpu":
        lowered = compiled.lowered
        states = sess._variables.for_device(lowered.state_names)
        feeds = [feed[t] for t in lowered.feed_tensors]
        row["kernel_s"] = compiled.executable.time_kernels(feeds, states, repeat=max(repeat, 20))
        row["launches"] = len(compiled.executable.plan.launches)
        row["profile_us"] = [(name, round(seconds * 1e6, 1)) for name, seconds in
                             compiled.executable.profile(feeds, states)]
    row["loss_after"] = float(sess.run(loss, feed))
    return row


def lstm_workload_steps() -> int:
    import lstm_workload
    return lstm_workload.STEPS


def bench_w11(device, repeat, steps):
    """W11 (bench/lstm_workload.py): the LSTM training step, its time dimension known when the graph is
    built (steps=50: the unrolled cell on the GPU, the fused lstm_block on the CPU) or only at run time
    (steps=None: dynamic_rnn's while loop, on the GPU a loop recorded trip by trip, ptx_control_flow.py)."""
    import lstm_workload
    rows, check = lstm_workload._tf1(tf, "/gpu:0" if device == "gpu" else None, steps)
    return {"workload": "W11" if steps else "W11-loop", "device": device, "first_loss": check,
            "train": wall(rows["train"], repeat), "forward": wall(rows["forward"], repeat)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU rows")
    args = parser.parse_args(argv)
    driver = cuda.require()
    peak = driver.peak_bandwidth()
    info = {"device": driver.name, "arch": driver.arch, "multiprocessors": driver.multiprocessors,
            "peak_bandwidth_GBps": peak / 1e9 if peak else None, "devices": [str(d) for d in tf.devices()]}
    print(json.dumps(info))
    rows = []
    x, y = workloads.w1_data()
    data = workloads.w2_data()
    devices = ["gpu"] if args.no_cpu else ["gpu", "cpu"]
    for device in devices:
        row, out1 = bench_stream("W1", lambda a, b: a * a * b + b + 2, (x, y), 3 * 4 * x.size, peak, args.repeat,
                                 device)
        rows.append(row)
        print(json.dumps(row))
        row, out2 = bench_stream("W2", lambda a: tf.nn.softmax(a), (data,), 2 * 4 * data.size, peak, args.repeat,
                                 device)
        rows.append(row)
        print(json.dumps(row))
        row = bench_w4(device, args.repeat)
        rows.append(row)
        print(json.dumps(row))
        for steps in (lstm_workload_steps(), None):
            row = bench_w11(device, max(5, args.repeat // 5), steps)
            rows.append(row)
            print(json.dumps(row))
    np.testing.assert_allclose(out1, x * x * y + y + 2, rtol=1e-6)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
