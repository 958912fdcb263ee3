"""Steady state of W9's chain (`bench/compile_time.py chain`) as the median of many runs, for jitflow or
TF1 (`tf.compat.v1`): the W9 table's "later run" column is one call.

    python bench/chain_steady.py jitflow [OPS]        # OPS: chain length, default 1000
    /path/to/tf-venv/bin/python bench/chain_steady.py tf [OPS]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_time as C  # noqa: E402


def main(system: str, ops: int = 1000, runs: int = 300):
    if system == "jitflow":
        import jitflow as tf
    else:
        import tensorflow.compat.v1 as tf
        tf.disable_v2_behavior()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, C.CHAIN_SHAPE)
        y = C.chain(x, ops, tf.tanh)
        sess = tf.Session(graph=graph)
    value = C.chain_input()
    for _ in range(3):
        sess.run(y, {x: value})
    if system == "jitflow":
        from jitflow.runtime import wait_for_background_compiles
        wait_for_background_compiles()      # the optimized tier
    for _ in range(20):
        sess.run(y, {x: value})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(y, {x: value})
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"{system} chain of {ops} ops on {list(C.CHAIN_SHAPE)}: median {times[runs // 2] * 1e6:.1f} us, "
          f"min {times[0] * 1e6:.1f} us over {runs} runs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "jitflow", int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
