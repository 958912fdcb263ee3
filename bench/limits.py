"""This machine's physical limits, measured in the same run as the workloads:
memory bandwidth with a compiled STREAM-triad kernel (a = b + s*c in place, so
no page faults) and float32 FMA throughput with a register-resident kernel of
independent 16-lane FMA chains, run on every core.

The FMA kernel needs (FMA pipes x FMA latency) independent chains to keep every
pipe busy: 2 x 4 = 8 on Zen 4/5 and Skylake-X; it has 12. Checked on the 2-core
Zen 5 (AVX-512, 2 FMA pipes of 16 float32 lanes, 4.0-4.15 GHz): one chain
runs at 32 GFLOP/s per core (latency-bound: 32 FLOP / 4 cycles x 4.0 GHz), 12
chains at 512-533 GFLOP/s on both cores = 2 cores x 2 pipes x 16 lanes x 2 FLOP x
4.0-4.15 GHz, the hardware's peak. Single timed runs read 394-433 GFLOP/s whenever other
processes held a core for part of the run, so the probe times each thread by its
own CPU time and takes the best of several short runs (a peak is a maximum: noise only
ever lowers it)."""
from __future__ import annotations

import time

import numpy as np


def triad_bandwidth(n=1 << 24, repeats=10) -> float:
    """Bytes per second of a = b + s*c (3 arrays of float32 touched per element)."""
    import jitflow as tf
    graph = tf.Graph()
    with graph.as_default():
        a = tf.Variable(np.zeros(n, np.float32))
        b = tf.Variable(np.ones(n, np.float32))
        c = tf.Variable(np.ones(n, np.float32))
        triad = a.assign(b + 3.0 * c).op
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    sess.run(triad)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(triad)
        times.append(time.perf_counter() - start)
    return 3 * 4 * n / min(times)


FMA_KERNEL = """
define void @fma_peak(ptr %out, i64 %iterations) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i.next, %loop]
""" + "\n".join(f"  %a{k} = phi <16 x float> [splat (float 1.0), %entry], [%b{k}, %loop]"
                for k in range(12)) + "\n" + "\n".join(
    f"  %b{k} = call <16 x float> @llvm.fma.v16f32(<16 x float> %a{k}, <16 x float> splat (float 0x3FEFFFFFE0000000), "
    f"<16 x float> splat (float 0x3E80000000000000))" for k in range(12)) + """
  %i.next = add i64 %i, 1
  %done = icmp eq i64 %i.next, %iterations
  br i1 %done, label %exit, label %loop
exit:
""" + "\n".join(f"  %s{k} = extractelement <16 x float> %b{k}, i32 0" for k in range(12)) + "\n" + \
    "  %t0 = fadd float %s0, %s1\n" + "\n".join(f"  %t{k} = fadd float %t{k - 1}, %s{k + 1}" for k in range(1, 11)) + """
  store float %t10, ptr %out
  ret void
}
declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)
"""


def fma_peak(iterations=4_000_000, repeats=9) -> float:
    """float32 FLOP/s of 12 independent 16-lane FMA chains per core, all cores at once: each thread's
    rate over its own CPU time (a core shared with another process does not lower it), summed over the
    threads; the best of `repeats` runs (each ~25 ms at 4 GHz)."""
    import ctypes
    import threading

    import llvmlite.binding as llvm

    from jitflow.codegen import cpu
    state = cpu._initialize()
    module = llvm.parse_assembly(FMA_KERNEL)
    module.triple = state["triple"]
    obj = state["tm"].emit_object(module)
    lljit = llvm.create_lljit_compiler(state["tm"])
    tracker = llvm.JITLibraryBuilder().add_object_img(obj).export_symbol("fma_peak").link(lljit, "fma_peak")
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(tracker["fma_peak"])
    out = (ctypes.c_float * 1)()
    fn(ctypes.addressof(out), 1000)
    def timed(rates, k):
        start = time.thread_time()          # this thread's CPU time: time spent descheduled is not counted
        fn(ctypes.addressof(out), iterations)
        rates[k] = iterations * 12 * 16 * 2 / max(time.thread_time() - start, 1e-9)

    best = 0.0
    for _ in range(repeats):
        rates = [0.0] * cpu.num_threads()
        threads = [threading.Thread(target=timed, args=(rates, k)) for k in range(len(rates))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = max(best, sum(rates))
    return best


def measure() -> dict:
    return {"bandwidth_bytes_per_s": triad_bandwidth(), "fma_flops_per_s": fma_peak()}


if __name__ == "__main__":
    limits = measure()
    print(f"triad bandwidth {limits['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, "
          f"float32 FMA peak {limits['fma_flops_per_s'] / 1e9:.0f} GFLOP/s")
