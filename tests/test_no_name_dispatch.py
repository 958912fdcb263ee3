"""The registry is the only dispatch (issue 17 item 4).

codegen/*.py and jitflow/passes/*.py are parsed with `ast` and fail when they compare an op name
with a string literal (`node.op == "x"`, `op in ("a", "b")`, a comparison with a module constant
holding op names) or look an op name up in a table (`TABLE[node.op]`, `TABLE.get(node.op)`,
`match node.op`). What an op is and which kernel computes it come from its record
(jitflow/ops/registry.py: `kind`, `extra["kernel"]`, `extra["scratch"]`, traits), and library
kernels from the registry's kernel table (codegen/kernel_table.py registers the emitters).
The rest checks that the table is complete and that the record-driven paths compute the right
values: GEMM (with the scheduler's alpha/beta epilogue), inversion (its scratch rule), concat and
scatter_slice (slab kernels), the simplifier's traits, the fuzzer's per-op tolerances.
"""
import ast
from pathlib import Path

import numpy as np
import pytest

import jitflow as tf
from jitflow.ops import all_ops, get_op
from jitflow.ops.registry import LIBRARY, kernel_emitter, kernel_key

ROOT = Path(__file__).resolve().parent.parent
SCANNED = sorted((ROOT / "codegen").glob("*.py")) + sorted((ROOT / "jitflow" / "passes").glob("*.py"))
OP_NAME_ATTRS = {"op", "op_name", "opname", "_op"}
OP_NAME_VARS = {"op", "op_name", "opname"}


def _is_op_name(node) -> bool:
    """An expression that holds an op's name: `x.op`, `x.op_name`, or a variable called op / op_name."""
    if isinstance(node, ast.Attribute):
        return node.attr in OP_NAME_ATTRS
    return isinstance(node, ast.Name) and node.id in OP_NAME_VARS


def _is_str(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _string_tables(tree) -> set:
    """Names assigned a collection of string literals or a dict with string keys, anywhere."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = node.value
            strings = (isinstance(value, (ast.Tuple, ast.List, ast.Set)) and value.elts
                       and all(_is_str(e) for e in value.elts)) \
                or (isinstance(value, ast.Dict) and value.keys and all(k is not None and _is_str(k) for k in value.keys))
            if strings:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def name_dispatch(source: str, filename: str = "<source>") -> list:
    """[(line, text)] of every place `source` dispatches on an op name."""
    tree = ast.parse(source, filename)
    tables = _string_tables(tree)
    found = []

    def literalish(node) -> bool:
        if _is_str(node):
            return True
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(_is_str(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(k is not None and _is_str(k) for k in node.keys)
        return isinstance(node, ast.Name) and node.id in tables

    for node in ast.walk(tree):
        hit = False
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            hit = any(_is_op_name(p) for p in parts) and any(literalish(p) for p in parts)
        elif isinstance(node, ast.Subscript):
            hit = _is_op_name(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop") \
                and node.args and _is_op_name(node.args[0]) and literalish(node.func.value):
            hit = True
        elif isinstance(node, ast.Match):
            hit = _is_op_name(node.subject)
        if hit:
            found.append((node.lineno, ast.get_source_segment(source, node)))
    return found


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(ROOT)))
def test_codegen_and_passes_never_name_an_op(path):
    found = name_dispatch(path.read_text(encoding="utf-8"), str(path))
    assert not found, f"{path.relative_to(ROOT)} dispatches on op names (use the op record instead): " + \
        "; ".join(f"line {line}: {text}" for line, text in found)


def test_the_checker_finds_each_form_of_name_dispatch():
    source = '''
ASSIGN = ("assign_var", "assign_add_var")
TABLE = {"matmul": 1}
def f(node, op, kernel):
    a = node.op == "matmul"
    b = op in ("a", "b")
    c = node.op in ASSIGN
    d = TABLE[node.op]
    e = TABLE.get(node.op)
    g = {"concat": 1}.get(op)
    h = "const" != node.root.op
    match node.op:
        case "x":
            pass
'''
    lines = [line for line, _ in name_dispatch(source)]
    assert sorted(set(lines)) == [5, 6, 7, 8, 9, 10, 11, 12]
    clean = '''
def f(node, kernel):
    opdef = get_op(node.op)
    a = kernel.kind == "loop" and opdef.kind == "elementwise" and opdef.extra.get("constant")
    b = EMITTERS[opdef.extra["kernel"]]
    c = node.attrs["kind"] in ("sum", "max") and node.dtype.name == "float32"
'''
    assert name_dispatch(clean) == []


# ---- the kernel table is complete ------------------------------------------------------------
def _keyed_ops():
    return {name: op for name, op in all_ops().items() if op.extra.get("kernel") is not None}


class _FakeNode:
    def __init__(self, op):
        self.op = op


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_every_kernel_key_has_an_emitter_on_each_target(target):
    from jitflow.codegen import cpu, gpu  # noqa: F401  (importing them registers their emitters)
    keyed = _keyed_ops()
    assert {"matmul", "matrix_inverse", "concat", "scatter_slice", "gather", "conv2d", "max_pool"} <= set(keyed)
    missing = sorted(name for name in keyed if kernel_emitter(_FakeNode(name), target) is None)
    assert missing == [], f"ops whose kernel has no {target} emitter: {missing}"


def test_every_library_op_names_a_kernel_or_is_expanded_before_codegen():
    for name, op in all_ops().items():
        if op.kind == LIBRARY:
            assert kernel_key(name) is not None or op.expand is not None, name


def test_a_kernel_is_registered_once():
    from jitflow.ops.registry import register_kernel
    from jitflow.codegen import cpu  # noqa: F401
    emitter = kernel_emitter(_FakeNode("matmul"), "cpu")
    assert register_kernel("cpu", "matmul", emitter) is emitter      # the same emitter again: fine
    with pytest.raises(ValueError, match="registered twice"):
        register_kernel("cpu", "matmul", lambda *a: None)
    with pytest.raises(ValueError, match="unknown kernel target"):
        register_kernel("tpu", "matmul", emitter)


# ---- the record-driven paths compute the right values ------------------------------------------
def _schedule_of(fetches, feeds):
    from jitflow.framework.lowering import lower_run
    from jitflow.passes.pipeline import run_pipeline
    from jitflow.passes.fusion import schedule_function
    lowered = lower_run(tf.get_default_graph(), fetches, feeds)
    return schedule_function(run_pipeline(lowered.function))


def test_inverse_gets_its_scratch_from_its_record_and_inverts():
    tf.reset_default_graph()
    rng = np.random.default_rng(0)
    a_val = rng.standard_normal((5, 5)) + 5 * np.eye(5)
    a = tf.placeholder(tf.float64, (5, 5))
    inv = tf.matrix_inverse(a)
    schedule = _schedule_of([inv], {a: a_val})
    kernel = next(k for k in schedule.kernels if k.root.node is not None and k.root.node.op == "matrix_inverse")
    assert kernel.kind == "library" and kernel.scratch is not None
    assert (kernel.scratch.dtype, tuple(kernel.scratch.shape)) == (kernel.root.dtype, (5, 5))
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(inv, {a: a_val}), np.linalg.inv(a_val), rtol=1e-10, atol=1e-12)


def test_gemm_epilogue_and_transposed_operand_come_from_the_records():
    """`w -= 0.5 * (x^T @ g)`: one GEMM into the variable (alpha = -0.5, beta = 1), reading x's
    buffer with its transpose flag (the transpose has no buffer of its own)."""
    tf.reset_default_graph()
    rng = np.random.default_rng(1)
    x_val, g_val = rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    w0 = rng.standard_normal((4, 3))
    x = tf.placeholder(tf.float64, (7, 4))
    g = tf.placeholder(tf.float64, (7, 3))
    w = tf.Variable(w0)
    step = tf.assign_sub(w, 0.5 * tf.matmul(tf.transpose(x), g))
    schedule = _schedule_of([step], {x: x_val, g: g_val})
    gemms = [k for k in schedule.kernels if k.kind == "library"]
    assert len(gemms) == 1 and gemms[0].out.kind == "var" and gemms[0].beta == 1.0 and gemms[0].alpha == -0.5
    assert not any(k.kind == "loop" and k.out.kind == "var" for k in schedule.kernels)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run(step, {x: x_val, g: g_val})
    np.testing.assert_allclose(out, w0 - 0.5 * x_val.T @ g_val, rtol=1e-12, atol=1e-12)


def test_concat_and_scatter_slice_run_as_library_kernels_of_the_table():
    tf.reset_default_graph()
    rng = np.random.default_rng(2)
    a_val, b_val = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    a = tf.placeholder(tf.float32, (3, 2))
    b = tf.placeholder(tf.float32, (3, 4))
    c = tf.concat([a, b], axis=1)
    loss = tf.reduce_sum(tf.square(c[:, 1:4]))
    (grad_b,) = tf.gradients(loss, [b])          # the slice's gradient: a scatter_slice into zeros
    feeds = {a: a_val, b: b_val}
    kinds = {k.root.node.op: k.kind for k in _schedule_of([c, grad_b], feeds).kernels if k.root.node is not None}
    assert kinds.get("concat") == "library"
    with tf.Session() as sess:
        c_out, gb = sess.run([c, grad_b], feeds)
    full = np.concatenate([a_val, b_val], axis=1)
    np.testing.assert_array_equal(c_out, full)
    expected = np.zeros_like(full)
    expected[:, 1:4] = 2 * full[:, 1:4]
    np.testing.assert_allclose(gb, expected[:, 2:], rtol=1e-6)


def test_simplifier_traits_drop_identity_same_dtype_cast_and_identity_transpose():
    from jitflow.framework.lowering import lower_run
    from jitflow.passes.pipeline import run_pipeline
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, (2, 3))
    y = tf.identity(tf.transpose(tf.cast(x, tf.float32), [0, 1])) * 2.0
    fn = run_pipeline(lower_run(tf.get_default_graph(), [y], {x: np.ones((2, 3), np.float32)}).function)
    assert not {n.op for n in fn.nodes} & {"identity", "cast", "transpose"}
    with tf.Session() as sess:
        x_val = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(sess.run(y, {x: x_val}), 2 * x_val)


# ---- ops defined where ops live; the fuzzer's tolerances are record fields ------------------------
def test_summary_and_check_numerics_ops_are_defined_in_jitflow_ops():
    for name in ("scalar_summary", "histogram_summary", "merge_summary", "check_numerics"):
        assert get_op(name).infer.__module__ == "jitflow.ops.summary_ops", name
    for path in (ROOT / "jitflow" / "summary.py", ROOT / "jitflow" / "debugging.py"):
        assert "define_op" not in path.read_text(encoding="utf-8"), path


def test_fuzzer_tolerances_are_fields_of_the_op_records(monkeypatch):
    from jitflow.fuzz import bounds
    assert get_op("add").ulps == 0 and get_op("floor").ulps == 0 and get_op("identity").ulps == 0
    assert get_op("exp").ulps == 8 and get_op("sigmoid").ulps == 10
    assert get_op("sin").ulps is None          # the generic bound
    assert "_EXACT_OPS" not in vars(bounds) and "_TRANSCENDENTAL_ULPS" not in vars(bounds)
    x = np.array([1.5, -2.0], np.float32)

    def bound(name):       # exact operands: the bound is the op's own rounding, its record's ulps
        err, _ = bounds._elementwise_bounds(name, {}, [x], [np.zeros(2)], np.exp(x).astype(np.float32))
        return np.asarray(err, np.float64)

    u, mag = 2.0 ** -24, np.abs(np.exp(x).astype(np.float64))
    tiny = float(np.finfo(np.float32).tiny)
    np.testing.assert_allclose(bound("exp"), 8 * u * mag + np.where(mag < tiny, tiny, 0.0), rtol=1e-12)
    monkeypatch.setattr(get_op("exp"), "ulps", 3)          # the record decides
    np.testing.assert_allclose(bound("exp"), 3 * u * mag, rtol=1e-12)
