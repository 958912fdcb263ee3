"""Deep graphs (issue 16, item 1): no walk over graphs, IR or expressions recurses on graph depth.

The front-end stages (graph building, tf.gradients, lowering, the pass pipeline, the verifier, IR
print -> parse -> print, meta-graph export/import) run on long chains under a recursion limit far
below the chain's depth, so a recursive walk anywhere fails here; the end-to-end test compiles and
runs a 100,000-op chain and its gradient.
"""
import contextlib
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

import jitflow as tf
from jitflow.framework.lowering import lower_run
from jitflow.ir.parser import parse_function
from jitflow.ir.printer import print_function
from jitflow.ir.verify import verify_function
from jitflow.ops import get_op
from jitflow.passes.pipeline import run_pipeline


@contextlib.contextmanager
def shallow_stack(headroom=300):
    """Allows only `headroom` more Python frames than the caller already uses."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _infer(op, types, attrs):
    return get_op(op).infer(types, attrs, op)


def _front_end_stages(y, x, feed):
    """Every stage before codegen; returns the optimized function."""
    g, = tf.gradients(y, [x])
    assert g is not None
    lowered = lower_run(tf.get_default_graph(), [y, g], {x: feed})
    fn = lowered.function
    verify_function(fn, infer=_infer)
    fn = run_pipeline(fn, verify=True)
    text = print_function(fn)
    again = parse_function(text)
    verify_function(again, infer=_infer)
    assert print_function(again) == text
    return fn


def test_deep_chain_100k_ops():
    """A chain far deeper than the recursion limit goes through every front-end stage (the exp chain
    of the issue and the `y*y*0.5 + y` chain with fan-out), and through meta-graph export/import."""
    with shallow_stack():
        x = tf.placeholder(tf.float32, [4], name="x")
        y = x
        for _ in range(2500):                    # 5,000 forward ops, ~20,000 with the gradient
            y = tf.exp(y * -0.01)
        fn = _front_end_stages(y, x, np.zeros(4, np.float32))
        assert len(fn.nodes) > 10_000
        n_ops = len(tf.get_default_graph().get_operations())
        meta = tf.train.export_meta_graph()
        tf.reset_default_graph()
        tf.train.import_meta_graph(meta)
        assert len(tf.get_default_graph().get_operations()) == n_ops

        tf.reset_default_graph()
        x = tf.placeholder(tf.float32, [4], name="x")
        y = x
        for _ in range(1000):                    # 3,000 forward ops, y used twice per step
            y = y * y * 0.5 + y
        _front_end_stages(y, x, np.zeros(4, np.float32))


def test_deep_chain_stage_costs_grow_linearly():
    """Doubling the chain at most ~doubles each stage (a quadratic stage would quadruple); measured on
    the sum of the stages with generous slack so a loaded machine does not fail it."""
    def cost(steps):
        tf.reset_default_graph()
        start = time.process_time()
        x = tf.placeholder(tf.float32, [4], name="x")
        y = x
        for _ in range(steps):
            y = y * y * 0.5 + y
        _front_end_stages(y, x, np.zeros(4, np.float32))
        return time.process_time() - start
    cost(200)                                    # warm-up (imports, registry)
    small, large = min(cost(400) for _ in range(2)), min(cost(1600) for _ in range(2))
    assert large < 4 * small * 2.0, (small, large)   # 4x the ops: linear is ~4x, quadratic ~16x


def test_shape_arithmetic_with_fan_out_is_not_exponential():
    """`static_shape_value` memoizes: a shape expression that reads each value twice per level cost
    2**depth visits before (28 levels: 268 million)."""
    from jitflow.api.shape_args import static_shape_value
    x = tf.placeholder(tf.float32, [None, 3])
    s = tf.shape(x)[1:]
    for _ in range(28):
        s = s + s
    start = time.perf_counter()
    assert static_shape_value(s) == (3 * 2 ** 28,)
    assert time.perf_counter() - start < 5
    y = tf.reshape(tf.zeros([2, 3]), tf.concat([[2], s // 2 ** 28], 0))
    assert y.shape.as_list() == [2, 3]
    # the static value wraps like the int32 arithmetic it stands for (no Python ints of 2**30 digits)
    t = tf.shape(x)[1:]
    for _ in range(30):
        t = t * t
    want = np.array([3], np.int32)
    with np.errstate(over="ignore"):
        for _ in range(30):
            want = want * want                   # what the compiled int32 code computes
    assert static_shape_value(t) == (int(want[0]),)


def test_row_group_check_walks_a_fused_dag_once():
    """The row-group check visits each fused value once: a fused `y*y*0.5 + y` chain of 200 steps
    (2**200 paths) is checked at once, and without recursion."""
    from jitflow.framework.lowering import lower_run as lower
    from jitflow.passes.row_groups import _row_wise
    x = tf.placeholder(tf.float32, [32, 64], name="x")
    y = x
    for _ in range(200):
        y = y * y * 0.5 + y
    fn = run_pipeline(lower(tf.get_default_graph(), [y], {x: np.zeros((32, 64), np.float32)}).function)
    root = fn.results[0]
    planner = SimpleNamespace(home={id(fn.params[0]): object()})
    kernel = SimpleNamespace(kind="loop", expr=root, root=root, out=SimpleNamespace(shape=(32, 64)))
    with shallow_stack(100):
        start = time.perf_counter()
        assert _row_wise(planner, kernel, {}, 32)
        assert time.perf_counter() - start < 5
        # a read of a group-produced value through a non-row-wise path is still refused
        produced = {id(fn.params[0]): object()}
        assert _row_wise(planner, kernel, produced, 16) is False


def test_replacement_chains_resolve_fully():
    """replace_values follows a replacement chain of any length (it stopped after 1,000 links) and
    compresses it, so resolving every link of a 5,000-link chain stays linear."""
    from jitflow.ir.core import Function, Node, Value
    from jitflow.ir.types import TensorType, float32
    from jitflow.passes.rewrite import replace_values
    t = TensorType(float32, (2,))
    p = Value(t, name="p")
    chain = [Value(t) for _ in range(5000)]
    replacement = {id(chain[0]): p}
    replacement.update({id(b): a for a, b in zip(chain, chain[1:])})
    users = [Node("neg", [v], {}, [t]) for v in reversed(chain)]
    fn = Function("f", [p], users, [chain[2500], chain[-1]])
    start = time.perf_counter()
    replace_values(fn, replacement)
    assert time.perf_counter() - start < 2
    assert all(node.operands[0] is p for node in users)
    assert fn.results[0] is p and fn.results[1] is p


def test_deep_identity_chain_simplifies_away():
    """5,000 chained tf.identity ops (each forwarded by simplify) lower and simplify to one node."""
    x = tf.placeholder(tf.float32, [3], name="x")
    y = x
    for _ in range(5000):
        y = tf.identity(y)
    y = y * 2.0
    with shallow_stack():
        fn = run_pipeline(lower_run(tf.get_default_graph(), [y], {x: np.zeros(3, np.float32)}).function,
                          verify=True)
    assert [n.op for n in fn.nodes].count("identity") == 0
    assert fn.results[0].node.operands[0] is fn.params[0]
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: [1.0, 2.0, 3.0]}), [2.0, 4.0, 6.0])


def test_deep_name_scopes_to_dot():
    """graph_to_dot walks nested scopes with a stack (a scope nested 1,500 deep)."""
    from jitflow.framework.dot import graph_to_dot
    with tf.name_scope("/".join(f"s{i}" for i in range(1500)) + "/"):
        tf.constant(1.0, name="deep")
    tf.constant(2.0, name="top")
    with shallow_stack(100):
        text = graph_to_dot()
    assert text.count("subgraph cluster_") == 1500
    assert text.count("{") == text.count("}")
    assert '"top" [label="top\\nConst"];' in text


def test_deeply_nested_groups_with_strings():
    """Session.run of a tf.group nested 3,000 deep in a graph holding tf.string values: the plan of
    what runs on the host and what is compiled is found without recursion."""
    v = tf.Variable(0.0, name="v")
    label = tf.identity(tf.constant("tag"), name="label")
    g = tf.group(tf.assign_add(v, 1.0), label)
    for _ in range(3000):
        g = tf.group(g)
    with tf.Session() as sess:
        sess.run(v.initializer)
        with shallow_stack(200):
            assert sess.run(g) is None
        assert sess.run(v) == 1.0


def test_deep_dataset_map_chain():
    """3,000 chained Dataset.map / filter / prefetch stages iterate in one loop (no nested generators)
    and know their cardinality without recursion."""
    ds = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype=np.float32))
    for i in range(3000):
        ds = ds.map(lambda v: v + 1.0)
        if i == 10:
            ds = ds.filter(lambda v: v > 12.5).prefetch(2)
    with shallow_stack(300):
        card = tf.data.experimental.cardinality(ds)
        nxt = ds.make_one_shot_iterator().get_next()
        with tf.Session() as sess:
            got = [sess.run(nxt) for _ in range(4)]
            with pytest.raises(tf.errors.OutOfRangeError):
                sess.run(nxt)
            assert sess.run(card) == -2          # filter: unknown
    np.testing.assert_allclose(got, [3002.0, 3003.0, 3004.0, 3005.0])   # 11..16 filtered to 13..16
    ds = tf.data.Dataset.range(5)
    for _ in range(3000):
        ds = ds.map(lambda v: v * 1).prefetch(1)
    with shallow_stack(300):
        assert tf.data.experimental.cardinality(ds).eval(session=tf.Session()) == 5


def _chain(x, steps):
    y = x
    for _ in range(steps):
        y = y - tf.exp(y * -0.01) * 1e-4        # 4 ops per step; d/dy of a step stays close to 1
    return y


def _numpy_chain(x, steps):
    y, dy = x.astype(np.float64), np.ones(x.shape)
    for _ in range(steps):
        e = np.exp(y * -0.01)
        dy = dy * (1 + 1e-6 * e)
        y = y - e * 1e-4
    return y, dy


def test_deep_chain_10k_ops_end_to_end():
    """The fast sibling of the 100k test (default run): 10,000 ops, value and gradient vs numpy."""
    steps = 2_500
    x = tf.placeholder(tf.float32, [8], name="x")
    y = _chain(x, steps)
    g, = tf.gradients(y, [x])
    xv = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    with tf.Session() as sess:
        yv, gv = sess.run([y, g], {x: xv})
    want_y, want_g = _numpy_chain(xv, steps)
    np.testing.assert_allclose(yv, want_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gv, want_g, rtol=1e-3)     # float32 rounding of 2,500 products


# About a minute on 2 cores (front end and scheduling of ~475k graph ops; repeated kernel calls run
# as one loop over an offset table, so LLVM's time stays linear). CI runs it (not deselected).
@pytest.mark.slow
def test_deep_chain_100k_ops_end_to_end():
    """A 100,000-op chain builds, differentiates, compiles and runs; value and gradient match numpy."""
    steps = 25_000
    x = tf.placeholder(tf.float32, [8], name="x")
    y = _chain(x, steps)
    g, = tf.gradients(y, [x])
    assert len(tf.get_default_graph().get_operations()) >= 100_000
    xv = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    with tf.Session() as sess:
        yv, gv = sess.run([y, g], {x: xv})
    want_y, want_g = _numpy_chain(xv, steps)
    np.testing.assert_allclose(yv, want_y, rtol=1e-3, atol=1e-3)
    # 25,000 float32 factors 1 + ~1e-6 each: a rounding bias of ~6e-8 per factor adds up to ~1.5e-3
    np.testing.assert_allclose(gv, want_g, rtol=5e-3)
