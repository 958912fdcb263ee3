"""This machine's physical limits, measured in the same run as the workloads:
memory bandwidth with a compiled STREAM-triad kernel (a = b + s*c in place, so
no page faults) and float32 FMA throughput with a register-resident kernel of
independent 16-lane FMA chains, run on every core."""
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


def fma_peak(iterations=20_000_000) -> float:
    """float32 FLOP/s of 12 independent 16-lane FMA chains per core, all cores at once."""
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
    threads = [threading.Thread(target=fn, args=(ctypes.addressof(out), iterations))
               for _ in range(cpu.num_threads())]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return len(threads) * iterations * 12 * 16 * 2 / seconds


def measure() -> dict:
    return {"bandwidth_bytes_per_s": triad_bandwidth(), "fma_flops_per_s": fma_peak()}


if __name__ == "__main__":
    limits = measure()
    print(f"triad bandwidth {limits['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, "
          f"float32 FMA peak {limits['fma_flops_per_s'] / 1e9:.0f} GFLOP/s")
