"""How the TF-written checkpoint in this directory was made (not run by the tests; needs TensorFlow).

    cd tests/data/tf_checkpoint_v2 && python generate.py     # TF 2.21, tf.compat.v1 graph mode

It writes `model.ckpt-1234.index`, `model.ckpt-1234.data-00000-of-00001` and the `checkpoint` file with
tf.compat.v1.train.Saver (TensorBundle V2, TF's default). tests/test_tf_checkpoints.py recomputes every
value from `fixture_values()` below (importing this file: TensorFlow is imported in main() only).
"""
import numpy as np


def fixture_values():
    return {
        "dense/kernel": ((np.arange(6, dtype=np.float32) - 2.5) / 4).reshape(3, 2),
        "dense/bias": np.array([0.5, -1.25], np.float32),
        "Variable": (np.arange(6, dtype=np.float64) * 0.1).reshape(2, 3),
        "ints/i8": np.array([-128, -1, 0, 127], np.int8),
        "ints/i16": np.array([-32768, 7, 32767], np.int16),
        "ints/i32": np.array([[-2**31, -1], [0, 2**31 - 1]], np.int32),
        "ints/u8": np.array([0, 200, 255], np.uint8),
        "ints/i64": np.array([-2**63, 2**40 + 3], np.int64),
        "half": np.array([0.5, -2.0, 65504.0, 1e-4], np.float16),
        "special": np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45], np.float32),
        "flags": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
        "names": np.array([b"", b"a", b"hello jitflow"], dtype=object),
    }


def main():
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    v1 = tf.compat.v1
    v1.disable_v2_behavior()
    values = fixture_values()
    with tf.Graph().as_default():
        global_step = v1.train.get_or_create_global_step()
        with v1.variable_scope("dense"):
            v1.get_variable("kernel", initializer=values["dense/kernel"])
            v1.get_variable("bias", initializer=values["dense/bias"])
        tf.Variable(values["Variable"])                       # default name "Variable"
        with v1.variable_scope("ints"):
            for leaf in ("i8", "i16", "i32", "u8", "i64"):
                v1.Variable(values["ints/" + leaf], name=leaf)
        for name in ("half", "special", "flags", "empty", "names"):
            v1.Variable(values[name], name=name)
        # a partitioned variable: two slices of a [4, 2] tensor (readers put them back together)
        full = np.arange(8, dtype=np.float32).reshape(4, 2)

        def part_init(shape, dtype=None, partition_info=None):
            row = partition_info.var_offset[0] if partition_info is not None else 0
            return tf.constant(full[row:row + shape[0]])
        v1.get_variable("part/w", shape=[4, 2], initializer=part_init, partitioner=v1.fixed_size_partitioner(2))
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(v1.assign(global_step, 1234))
            print(saver.save(sess, "model.ckpt", global_step=global_step, write_meta_graph=False))


if __name__ == "__main__":
    main()
