"""Host-side cost of summaries: 20 tf.summary.histogram over [1000]-element tensors, merged,
then sess.run(merged) + FileWriter.add_summary 100 times.

    python bench/summary_host_speed.py              # google-crc32c (C) for the TFRecord CRCs
    python bench/summary_host_speed.py --fallback   # jitflow.crc32c's numpy lanes instead
    python bench/summary_host_speed.py --profile    # cProfile of the loop
"""
import cProfile
import pstats
import sys
import tempfile
import time

import numpy as np

import jitflow as tf
import jitflow.crc32c


def main():
    if "--fallback" in sys.argv:
        jitflow.crc32c._NATIVE = False
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [1000])
    for i in range(20):
        tf.summary.histogram(f"h{i}", x * float(i + 1) - 3.0)
    merged = tf.summary.merge_all()
    data = np.random.RandomState(0).randn(1000).astype(np.float32)
    with tf.Session() as sess, tf.summary.FileWriter(tempfile.mkdtemp()) as writer:
        writer.add_summary(sess.run(merged, {x: data}), 0)      # warm-up: compiles

        def loop():
            t_run = t_add = 0.0
            for step in range(100):
                t0 = time.perf_counter()
                summary = sess.run(merged, {x: data})
                t1 = time.perf_counter()
                writer.add_summary(summary, step)
                t_add += time.perf_counter() - t1
                t_run += t1 - t0
            return t_run, t_add

        if "--profile" in sys.argv:
            profile = cProfile.Profile()
            profile.runcall(loop)
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
            return
        t_run, t_add = loop()
        print(f"sess.run(merged) x100: {t_run:.3f} s   add_summary x100: {t_add:.3f} s   "
              f"total {t_run + t_add:.3f} s")


if __name__ == "__main__":
    main()
