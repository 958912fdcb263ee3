"""Registry-driven differential tests: compiled results vs each op's numpy `reference`.

Every op of jitflow.ops.all_ops() whose kind is elementwise, reduce, layout or
library is run through `Session.run` (i.e. compiled code) and compared against
`opdef.reference` over the dtypes its `infer` rule accepts and over shape cases:
scalars, size-1 and size-0 dims, broadcasting pairs, rank-3/4 shapes, placeholders
of unknown shape and non-contiguous numpy feeds. Random ops are compared against
`jitflow.ops.random.random_reference` (the bit-exact Philox oracle).

To keep the file fast, each test builds ONE graph holding all the shape/attribute
cases of one (op, dtype) and fetches them in one `Session.run` (one compile); every
mismatch of the batch is reported, not only the first.
"""
from __future__ import annotations

import itertools
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest

import jitflow as tf
from jitflow import errors
from jitflow.ir.types import (
    ALL_DTYPES,
    TensorType,
    bool_,
    float32,
    float64,
    int32,
    int64,
)
from jitflow.ops import ELEMENTWISE, LAYOUT, LIBRARY, RANDOM, REDUCE, all_ops, get_op
from jitflow.ops.elementwise import ELEMENTWISE_BINARY, ELEMENTWISE_UNARY
from jitflow.ops.random import random_reference

# ---------------------------------------------------------------------------------------------
# tolerances: the one place they are defined
# ---------------------------------------------------------------------------------------------
# "default": a handful of IEEE operations; "transcendental": libm / polynomial functions;
# "accumulate": reductions and matmul (reassociated sums); "linalg": matrix_inverse;
# "composite": fused chains of several of these (softmax, moments, ...).
TOLERANCES = {
    "float32": {"default": {"rtol": 1e-5, "atol": 1e-6},
                "transcendental": {"rtol": 2e-5, "atol": 1e-6},
                "accumulate": {"rtol": 1e-5, "atol": 1e-5},
                "linalg": {"rtol": 1e-4, "atol": 1e-5},
                "composite": {"rtol": 5e-5, "atol": 1e-5}},
    "float64": {"default": {"rtol": 1e-12, "atol": 1e-12},
                "transcendental": {"rtol": 1e-12, "atol": 1e-13},
                "accumulate": {"rtol": 1e-12, "atol": 1e-12},
                "linalg": {"rtol": 1e-10, "atol": 1e-11},
                "composite": {"rtol": 1e-11, "atol": 1e-12}},
}
RANDOM_RTOL = 1e-5            # normal / truncated_normal vs random_reference
RANDOM_ATOL = {"float32": 1e-6, "float64": 1e-12}
TRANSCENDENTAL = {"exp", "log", "tanh", "sigmoid", "pow", "sqrt", "rsqrt"}

TESTED_KINDS = (ELEMENTWISE, REDUCE, LAYOUT, LIBRARY)
DTYPES = ALL_DTYPES          # float32, float64, int32, int64, bool
NUMERIC_DTYPES = (float32, float64, int32, int64)


def _ops_of(kind):
    return sorted(name for name, op in all_ops().items() if op.kind == kind)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def accepts(opdef, types, attrs=None) -> bool:
    """Whether the op's infer rule accepts these operand types (TypeError means no)."""
    try:
        opdef.infer(list(types), dict(attrs or {}), opdef.name)
    except TypeError:
        return False
    return True


def reference(opdef, *args, **attrs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(opdef.reference(*args, **attrs))


def draw(rng, dtype, shape, op_name="", role=0, domain=(-3.0, 3.0)):
    """Test inputs: floats from the op's test_domain, small ints (with negatives; zero
    and -1 divisors for floordiv/floormod), random bools."""
    shape = tuple(shape)
    if dtype == bool_:
        return rng.random(shape) < 0.5
    if dtype.is_integer:
        if op_name in ("floordiv", "floormod") and role == 1:
            lo, hi = -4, 4            # includes the zero and -1 divisors
        elif op_name == "pow":
            lo, hi = (-3, 3) if role == 0 else (-2, 5)
        elif op_name == "reduce_prod":
            lo, hi = -2, 2
        else:
            lo, hi = -6, 6
        return rng.integers(lo, hi + 1, size=shape).astype(dtype.np)
    lo, hi = domain
    x = rng.uniform(lo, hi, size=shape)
    if op_name in ("div", "floordiv", "floormod"):     # magnitude from the domain, either sign
        x = x * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(x, dtype=dtype.np)


def non_contiguous(x, how):
    """The same values as x, as a non-C-contiguous numpy view."""
    x = np.asarray(x)
    if how == "T":            # Fortran order (a transposed view)
        view = np.ascontiguousarray(x.T).T
    elif how == "rev":        # negative strides
        view = np.flip(np.ascontiguousarray(np.flip(x)))
    elif how == "step":       # every other element of a bigger buffer
        view = np.repeat(x, 2, axis=-1)[..., ::2]
    else:
        raise ValueError(how)
    assert not view.flags.c_contiguous and np.array_equal(view, x, equal_nan=True)
    return view


class Checker:
    """Collects every mismatch of a batch; `done()` fails with all of them. Given the inputs,
    a failure names the first offending elements with their input values."""

    def __init__(self, what):
        self.what = what
        self.failures = []
        self.count = 0

    def check(self, label, got, want, dtype, category="default", signed_zero=False, inputs=None):
        self.count += 1
        try:
            assert_matches(got, want, dtype, category, signed_zero)
        except AssertionError as exc:
            self.failures.append(f"[{label}] {_offending(got, want, dtype, category, signed_zero, inputs)}"
                                 f"{str(exc).strip()}")

    def exact(self, label, got, want):
        self.count += 1
        try:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        except AssertionError as exc:
            self.failures.append(f"[{label}] {str(exc).strip()}")

    def done(self):
        assert self.count, f"{self.what}: nothing was checked"
        if self.failures:
            pytest.fail(f"{self.what}: {len(self.failures)} of {self.count} cases differ\n"
                        + "\n".join(self.failures), pytrace=False)


def _offending(got, want, dtype, category, signed_zero, inputs, limit=6):
    """'f(a, b) -> got (want w); ...' for the first mismatching elements, when shapes allow."""
    got, want = np.asarray(got), np.asarray(want)
    if inputs is None or got.shape != want.shape:
        return ""
    try:
        args = np.broadcast_arrays(*[np.asarray(v) for v in inputs])
        if args[0].shape != got.shape:
            return ""
    except ValueError:
        return ""
    if dtype.is_floating:
        tol = TOLERANCES[dtype.name][category]
        with np.errstate(all="ignore"):
            same = np.isclose(got, want, equal_nan=True, **tol)
        if signed_zero:
            same &= (got != 0) | (want != 0) | (np.signbit(got) == np.signbit(want))
    else:
        same = got == want
    bad = [tuple(int(j) for j in i) for i in np.argwhere(~same)[:limit]]
    return "".join(f"\n  at {i}: f({', '.join(str(a[i].item()) for a in args)}) -> "
                   f"{got[i].item()}, want {want[i].item()}" for i in bad) + "\n"


def assert_matches(got, want, dtype, category="default", signed_zero=False):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == dtype.np, f"compiled dtype {got.dtype}, expected {dtype.np}"
    assert want.dtype == dtype.np, f"reference dtype {want.dtype}, expected {dtype.np}"
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    if dtype.is_floating:
        tol = TOLERANCES[dtype.name][category]
        np.testing.assert_allclose(got, want, equal_nan=True, **tol)
        if signed_zero:
            zeros = (got == 0) & (want == 0)
            np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]),
                                          err_msg="sign of zero differs")
    else:
        np.testing.assert_array_equal(got, want)


def run(graph, fetches, feeds=None):
    with tf.Session(graph=graph) as sess:
        return sess.run(fetches, feeds)


def _seed(*parts):
    return zlib.crc32(" ".join(parts).encode())


def op_category(name):
    return "transcendental" if name in TRANSCENDENTAL else "default"


# ---------------------------------------------------------------------------------------------
# shape cases
# ---------------------------------------------------------------------------------------------
# (placeholder shape, fed shape, view) per operand; view None = C-contiguous feed
UNARY_CASES = [
    [((), (), None)],
    [((1,), (1,), None)],
    [((0,), (0,), None)],
    [((7,), (7,), None)],
    [((1, 1), (1, 1), None)],
    [((3, 0, 2), (3, 0, 2), None)],
    [((2, 3, 4), (2, 3, 4), None)],
    [((2, 1, 3, 2), (2, 1, 3, 2), None)],
    [((3, 4), (3, 4), "T")],
    [((2, 3, 4), (2, 3, 4), "rev")],
    [((4, 6), (4, 6), "step")],
    [((None, None), (3, 4), None)],          # unknown dims, specialized at run time
    [(None, (2, 3), None)],                  # unknown rank
]


def _same(*shapes):
    return [(s, s, None) for s in shapes]


BINARY_CASES = [
    _same((), ()),
    _same((), (2, 3)),
    _same((4,), ()),
    _same((1,), (5,)),
    _same((3, 1), (1, 4)),
    _same((2, 3, 4), (4,)),
    _same((2, 3, 4), (3, 1)),
    _same((4,), (2, 3, 4)),
    _same((2, 1, 4, 1), (3, 1, 5)),
    _same((2, 3, 2, 3), (2, 3, 2, 3)),
    _same((0,), (1,)),
    _same((2, 0, 3), (2, 1, 3)),
    _same((1, 1), (1, 1)),
    [((3, 4), (3, 4), "T"), ((3, 4), (3, 4), None)],
    [((2, 3, 4), (2, 3, 4), "rev"), ((4,), (4,), "step")],
    [((3, 1), (3, 1), "step"), ((2, 1, 4), (2, 1, 4), "T")],
    [((None, 4), (3, 4), None), ((None,), (4,), None)],
]

TERNARY_CASES = [
    _same((), (), ()),
    _same((3, 1), (1, 4), ()),
    _same((), (2, 3), (2, 3)),
    _same((2, 3, 4), (4,), (3, 1)),
    _same((4,), (2, 1, 4), (3, 1)),
    _same((0, 2), (1, 2), (0, 1)),
    _same((1,), (), (5,)),
    _same((2, 1, 3, 1), (1, 2, 1, 4), (2, 2, 3, 4)),
    [((3, 4), (3, 4), "T"), ((3, 4), (3, 4), "rev"), ((4,), (4,), "step")],
]


def make_feeds(graph, rng, cases, dtypes, op_name, domain):
    """Placeholders + numpy values for one case: [(placeholder, value)] per operand."""
    out = []
    for role, ((declared, fed, view), dtype) in enumerate(zip(cases, dtypes)):
        ph = tf.placeholder(dtype, declared)
        value = draw(rng, dtype, fed, op_name, role, domain)
        if view is not None:
            value = non_contiguous(value, view)
        out.append((ph, value))
    return out


def case_label(cases):
    return " x ".join(f"{fed}{'/' + view if view else ''}{'(ph ' + str(declared) + ')' if declared != fed else ''}"
                      for declared, fed, view in cases)


# ---------------------------------------------------------------------------------------------
# registry coverage: every op of the tested kinds has a differential test below
# ---------------------------------------------------------------------------------------------
REDUCE_OPS = [n for n in _ops_of(REDUCE) if n not in ("argmax", "argmin")]
ARG_OPS = [n for n in _ops_of(REDUCE) if n in ("argmax", "argmin")]
SPECIAL_ELEMENTWISE = {"select", "cast", "add_n", "iota", "dim_value"}   # dim_value: tests/test_shape_polymorphic.py
UNARY_OPS = sorted(set(ELEMENTWISE_UNARY) | {n for n in _ops_of(ELEMENTWISE)
                                              if n in ("identity", "stop_gradient")})
BINARY_OPS = sorted(ELEMENTWISE_BINARY)
LAYOUT_TESTS = {"reshape", "transpose", "broadcast_to", "strided_slice", "concat", "scatter_slice"}
LIBRARY_TESTS = {"matmul", "matrix_inverse"}
ARRAY_EXTRA_TESTS = {"slice", "reverse", "gather", "segment_sum", "scan", "top_k"}   # tests/test_array_ops_extra.py
CONV_POOL_TESTS = {"conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "depthwise_conv2d_native",  # tests/
                   "depthwise_conv2d_native_backprop_input", "depthwise_conv2d_native_backprop_filter",  # test_conv_ops
                   "max_pool", "avg_pool", "max_pool_grad", "max_pool_grad_grad", "avg_pool_grad",  # test_pool_ops
                   "conv2d_max_pool"}  # tests/test_conv_fast.py
LSTM_TESTS = {"lstm_block", "lstm_block_grad", "lstm_block_inputs", "lstm_block_weight_grad"}  # test_lstm_fast.py


REGION_OPS = {"cond", "while"}   # own regions, no numpy reference: tests/test_control_flow_ops.py, test_while_grad.py


def test_every_registered_op_of_the_tested_kinds_is_covered():
    covered = set(UNARY_OPS) | set(BINARY_OPS) | SPECIAL_ELEMENTWISE | set(REDUCE_OPS) | set(ARG_OPS) \
        | LAYOUT_TESTS | LIBRARY_TESTS | ARRAY_EXTRA_TESTS | CONV_POOL_TESTS | LSTM_TESTS
    in_scope = {name for name, op in all_ops().items() if op.kind in TESTED_KINDS} - REGION_OPS
    assert in_scope - covered == set(), "ops without a differential test"
    assert covered - in_scope == set(), "tests for ops that are not registered with a tested kind"
    for name in in_scope:
        assert get_op(name).reference is not None, f"{name} has no numpy reference"


def _arity(name):
    return 2 if name in BINARY_OPS else 3 if name == "select" else 1


def elementwise_params(ops, arity):
    params = []
    for name in ops:
        opdef = get_op(name)
        for dtype in DTYPES:
            if accepts(opdef, [TensorType(dtype, ())] * arity):
                params.append(pytest.param(name, dtype, id=f"{name}-{dtype.name}"))
    return params


def test_dtype_acceptance_matches_graph_building():
    """The dtypes the sweep skips really are rejected at graph-building time (TypeError)."""
    for name in UNARY_OPS + BINARY_OPS:
        opdef, arity = get_op(name), _arity(name)
        for dtype in DTYPES:
            g = tf.Graph()
            with g.as_default():
                phs = [tf.placeholder(dtype, (2,)) for _ in range(arity)]
                if accepts(opdef, [TensorType(dtype, (2,))] * arity):
                    g.create_op(name, phs)
                else:
                    with pytest.raises(TypeError):
                        g.create_op(name, phs)


# ---------------------------------------------------------------------------------------------
# elementwise ops
# ---------------------------------------------------------------------------------------------
def _elementwise_sweep(name, dtype, case_list, operand_dtypes, attrs=None):
    opdef = get_op(name)
    rng = np.random.default_rng(_seed(name, dtype.name))
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for cases in case_list:
            pairs = make_feeds(g, rng, cases, operand_dtypes, name, opdef.test_domain)
            out = g.create_op(name, [ph for ph, _ in pairs], attrs).outputs[0]
            fetches.append(out)
            feeds.update(pairs)
            args = [v for _, v in pairs]
            expected.append((case_label(cases), args, reference(opdef, *args, **(attrs or {}))))
    got = run(g, fetches, feeds)
    check = Checker(f"{name} {dtype.name}")
    for (label, args, want), value, out in zip(expected, got, fetches):
        check.check(label, value, want, out.dtype, op_category(name), inputs=args)
    check.done()


@pytest.mark.parametrize("name,dtype", elementwise_params(UNARY_OPS, 1))
def test_unary_elementwise(name, dtype):
    _elementwise_sweep(name, dtype, UNARY_CASES, [dtype])


@pytest.mark.parametrize("name,dtype", elementwise_params(BINARY_OPS, 2))
def test_binary_elementwise(name, dtype):
    _elementwise_sweep(name, dtype, BINARY_CASES, [dtype, dtype])


@pytest.mark.parametrize("dtype", [d for d in DTYPES if accepts(
    get_op("select"), [TensorType(bool_, ()), TensorType(d, ()), TensorType(d, ())])], ids=lambda d: d.name)
def test_select_with_broadcasting(dtype):
    _elementwise_sweep("select", dtype, TERNARY_CASES, [bool_, dtype, dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_tf_where_with_python_scalars_and_broadcasting(dtype):
    rng = np.random.default_rng(5)
    cond = rng.random((3, 1)) < 0.5
    x = draw(rng, dtype, (1, 4))
    scalar = True if dtype == bool_ else 2
    g = tf.Graph()
    with g.as_default():
        c = tf.placeholder(tf.bool, (3, 1))
        px = tf.placeholder(dtype, (1, 4))
        fetches = [tf.where(c, px, tf.constant(scalar, dtype)), tf.where(c, tf.constant(scalar, dtype), px),
                   tf.where(tf.constant([True, False, True, False]), px, tf.zeros_like(px))]
    got = run(g, fetches, {c: cond, px: x})
    check = Checker(f"tf.where {dtype.name}")
    sel = get_op("select")
    s = np.asarray(scalar, dtype.np)
    check.check("where(c, x, s)", got[0], reference(sel, cond, x, s), dtype)
    check.check("where(c, s, x)", got[1], reference(sel, cond, s, x), dtype)
    check.check("where(const, x, 0)", got[2],
                reference(sel, np.array([True, False, True, False]), x, np.zeros_like(x)), dtype)
    check.done()


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=lambda d: d.name)
def test_add_n(dtype):
    opdef = get_op("add_n")
    rng = np.random.default_rng(11)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for n, shape in ((1, (3,)), (2, ()), (3, (2, 3, 4)), (5, (4, 1)), (4, (0, 3))):
            values = [draw(rng, dtype, shape) for _ in range(n)]
            phs = [tf.placeholder(dtype, shape) for _ in range(n)]
            feeds.update(zip(phs, values))
            fetches.append(tf.add_n(phs))
            expected.append((f"{n} x {shape}", reference(opdef, *values)))
        # the registry's infer broadcasts (tf.add_n does not): exercise it through create_op
        values = [draw(rng, dtype, s) for s in ((3, 1), (4,), ())]
        phs = [tf.placeholder(dtype, v.shape) for v in values]
        feeds.update(zip(phs, values))
        fetches.append(g.create_op("add_n", phs).outputs[0])
        expected.append(("broadcast (3,1)+(4,)+()", reference(opdef, *values)))
        # a non-contiguous operand
        base = draw(rng, dtype, (3, 4))
        phs = [tf.placeholder(dtype, (3, 4)) for _ in range(2)]
        view = non_contiguous(base, "T")
        feeds.update(zip(phs, [view, base]))
        fetches.append(tf.add_n(phs))
        expected.append(("transposed view", reference(opdef, view, base)))
    got = run(g, fetches, feeds)
    check = Checker(f"add_n {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_iota(dtype):
    opdef = get_op("iota")
    g = tf.Graph()
    cases = [((5,), 0), ((2, 3), 0), ((2, 3), 1), ((2, 3, 4), 2), ((2, 3, 4), 1), ((0, 3), 1), ((1, 1), 0)]
    with g.as_default():
        fetches = [g.create_op("iota", [], {"shape": s, "axis": a, "dtype": dtype}).outputs[0] for s, a in cases]
    got = run(g, fetches)
    check = Checker(f"iota {dtype.name}")
    for (shape, axis), value in zip(cases, got):
        check.check(f"{shape} axis {axis}", value, reference(opdef, shape, axis, dtype), dtype)
    check.done()


# ---- cast: all dtype pairs, truncation, saturation, NaN -------------------------------------------
CAST_SOURCES = {
    "float32": np.array([0.0, -0.0, 0.4, -0.4, 0.5, -0.5, 1.7, -1.7, 2.5, -2.5, 3e9, -3e9, 1e19, -1e19,
                         2147483520.0, -2147483648.0, 16777217.0, np.nan, np.inf, -np.inf],
                        np.float32),
    "float64": np.array([0.0, -0.0, 0.4, -0.4, 0.5, -0.5, 1.7, -1.7, 2.5, -2.5, 3e9, -3e9, 1e19, -1e19,
                         2147483647.9, -2147483648.9, 2147483648.0, 9.3e18, 1e300, -1e300, 3.4e38,
                         3.5e38, 1e-300, np.nan, np.inf, -np.inf], np.float64),
    "int32": np.array([0, 1, -1, 7, -7, 255, 256, 16777217, 2**31 - 1, -2**31], np.int32),
    "int64": np.array([0, 1, -1, 7, -7, 2**31 - 1, 2**31, -2**31 - 1, 2**32 + 5, 2**53 + 1, 2**63 - 1,
                       -2**63], np.int64),
    "bool": np.array([True, False, True], np.bool_),
}


@pytest.mark.parametrize("src", DTYPES, ids=lambda d: d.name)
def test_cast_all_pairs(src):
    opdef = get_op("cast")
    flat = CAST_SOURCES[src.name]
    shaped = np.resize(flat, (2, 3, 4)).astype(src.np)
    g = tf.Graph()
    fetches, expected = [], []
    with g.as_default():
        p_flat = tf.placeholder(src, flat.shape)
        p_shaped = tf.placeholder(src, (2, 3, 4))
        p_scalar = tf.placeholder(src, ())
        p_empty = tf.placeholder(src, (0, 2))
        for dst in DTYPES:
            attrs = {"dtype": dst}
            for label, ph, value in (("values", p_flat, flat), ("rank3", p_shaped, shaped),
                                     ("scalar", p_scalar, flat[1]), ("empty", p_empty, np.zeros((0, 2), src.np))):
                fetches.append(g.create_op("cast", [ph], attrs).outputs[0])
                expected.append((f"{src.name}->{dst.name} {label}", dst, reference(opdef, np.asarray(value), dst)))
            # the API spelling
            fetches.append(tf.cast(p_flat, dst))
            expected.append((f"tf.cast {src.name}->{dst.name}", dst, reference(opdef, flat, dst)))
        view = non_contiguous(shaped, "T")
    feeds = {p_flat: flat, p_shaped: view, p_scalar: flat[1], p_empty: np.zeros((0, 2), src.np)}
    got = run(g, fetches, feeds)
    check = Checker(f"cast from {src.name}")
    for (label, dst, want), value in zip(expected, got):
        check.check(label, value, want, dst, signed_zero=True)
    check.done()


def test_cast_reference_semantics():
    """The oracle itself: truncation toward zero, saturation, NaN -> 0 (TF/LLVM fptosi.sat)."""
    x = np.array([1.9, -1.9, 1e20, -1e20, np.nan, np.inf, -np.inf], np.float64)
    np.testing.assert_array_equal(reference(get_op("cast"), x, int32),
                                  [1, -1, 2**31 - 1, -2**31, 0, 2**31 - 1, -2**31])
    np.testing.assert_array_equal(reference(get_op("cast"), x, int64),
                                  [1, -1, 2**63 - 1, -2**63, 0, 2**63 - 1, -2**63])
    np.testing.assert_array_equal(reference(get_op("cast"), x.astype(np.float32), int64),
                                  [1, -1, 2**63 - 1, -2**63, 0, 2**63 - 1, -2**63])


# ---- special float values -----------------------------------------------------------------------
SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, np.inf, -np.inf, np.nan, 1e-30, 1e30], np.float64)
# ops where numpy's semantics for these inputs are well defined (sign of zero checked where IEEE fixes it)
SPECIAL_UNARY = ["neg", "abs", "sign", "square", "relu", "sqrt", "rsqrt", "exp", "log", "tanh", "sigmoid",
                 "identity"]
SIGNED_ZERO_OPS = {"neg", "abs", "identity", "sqrt", "square"}
SPECIAL_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "floordiv", "floormod",
                  "equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_special_float_values(dtype):
    x = SPECIALS.astype(dtype.np)
    a = np.repeat(x, len(x))          # every pair of special values
    b = np.tile(x, len(x))
    g = tf.Graph()
    fetches, expected = [], []
    with g.as_default():
        px = tf.placeholder(dtype, x.shape)
        pa = tf.placeholder(dtype, a.shape)
        pb = tf.placeholder(dtype, b.shape)
        for name in SPECIAL_UNARY:
            fetches.append(g.create_op(name, [px]).outputs[0])
            expected.append((name, reference(get_op(name), x)))
        for name in SPECIAL_BINARY:
            fetches.append(g.create_op(name, [pa, pb]).outputs[0])
            expected.append((name, reference(get_op(name), a, b)))
    got = run(g, fetches, {px: x, pa: a, pb: b})
    check = Checker(f"special values {dtype.name}")
    for (name, want), value in zip(expected, got):
        check.check(name, value, want, bool_ if want.dtype == np.bool_ else dtype, op_category(name),
                    signed_zero=name in SIGNED_ZERO_OPS, inputs=(x,) if name in SPECIAL_UNARY else (a, b))
    check.done()


@pytest.mark.parametrize("dtype", [int32, int64], ids=lambda d: d.name)
def test_integer_edge_values(dtype):
    """Zero and -1 divisors, the most negative value, wrap-around (numpy semantics)."""
    info = np.iinfo(dtype.np)
    x = np.array([0, 1, -1, 2, -2, 7, -7, info.max, info.min], dtype.np)
    a, b = np.repeat(x, len(x)), np.tile(x, len(x))
    names = ["add", "sub", "mul", "floordiv", "floormod", "maximum", "minimum", "less", "equal"]
    unary = ["neg", "abs", "sign", "square", "relu"]
    g = tf.Graph()
    with g.as_default():
        pa, pb, px = tf.placeholder(dtype, a.shape), tf.placeholder(dtype, b.shape), tf.placeholder(dtype, x.shape)
        fetches = [g.create_op(n, [pa, pb]).outputs[0] for n in names] + \
                  [g.create_op(n, [px]).outputs[0] for n in unary]
    got = run(g, fetches, {pa: a, pb: b, px: x})
    check = Checker(f"integer edge values {dtype.name}")
    for name, value, out in zip(names + unary, got, fetches):
        inputs = (a, b) if name in names else (x,)
        check.check(name, value, reference(get_op(name), *inputs), out.dtype, inputs=inputs)
    # reductions that overflow wrap in the input dtype
    m = np.stack([a, b]).reshape(2, 9, 9)
    g = tf.Graph()
    with g.as_default():
        pm = tf.placeholder(dtype, m.shape)
        reductions = [(name, axis) for name in REDUCE_OPS + ARG_OPS for axis in (0, 2)]
        fetches = [getattr(tf, name)(pm, axis=axis) for name, axis in reductions]
    for (name, axis), value, out in zip(reductions, run(g, fetches, {pm: m}), fetches):
        attrs = {"axis": axis} if name in ARG_OPS else {"axes": (axis,)}
        check.check(f"{name} axis {axis}", value, reference(get_op(name), m, **attrs), out.dtype)
    check.done()


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------
# (shape, user axis argument, view)
REDUCE_CASES = [
    ((2, 3, 4), None, None), ((2, 3, 4), 0, None), ((2, 3, 4), 1, None), ((2, 3, 4), 2, None),
    ((2, 3, 4), -1, None), ((2, 3, 4), [0, 2], None), ((2, 3, 4), [1, 2], None), ((2, 3, 4), [0, 1, 2], None),
    ((2, 3, 4), [-1, 0], None), ((2, 3, 4), [], None), ((2, 3, 4), [-1, 2], None), ((2, 3, 4), (0, -2), None),
    ((), None, None), ((), [], None), ((1,), 0, None), ((7,), None, None), ((1, 1), 1, None),
    ((0, 3), 0, None), ((0, 3), 1, None), ((0, 3), None, None), ((3, 0, 2), [1], None), ((3, 0, 2), [0, 2], None),
    ((2, 1, 3, 2), [1, 3], None), ((2, 1, 3, 2), [0, 2], None), ((2, 3, 2, 5), [3], None), ((17, 33), 1, None),
    ((3, 4), 0, "T"), ((3, 4), 1, "T"), ((2, 3, 4), [0, 2], "rev"), ((4, 6), None, "step"),
]


def _np_axes(axis, rank):
    if axis is None:
        return None
    return tuple(sorted({a % rank for a in np.atleast_1d(axis).astype(int)})) if rank else ()


@pytest.mark.parametrize("name,dtype", [pytest.param(n, d, id=f"{n}-{d.name}") for n in REDUCE_OPS
                                        for d in DTYPES if accepts(get_op(n), [TensorType(d, (2,))],
                                                                   {"axes": (0,)})])
def test_reductions(name, dtype):
    opdef = get_op(name)
    api = getattr(tf, name)
    rng = np.random.default_rng(_seed(name, dtype.name))
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for shape, axis, view in REDUCE_CASES:
            x = draw(rng, dtype, shape, name, domain=opdef.test_domain)
            if view:
                x = non_contiguous(x, view)
            ph = tf.placeholder(dtype, shape)
            feeds[ph] = x
            for keepdims in (False, True):
                fetches.append(api(ph, axis=axis, keepdims=keepdims))
                want = reference(opdef, x, axes=_np_axes(axis, len(shape)), keepdims=keepdims)
                expected.append((f"{shape}{'/' + view if view else ''} axis={axis} keepdims={keepdims}", want))
        # an unknown-shape placeholder specialized at run time, and the TF 1.x keyword spelling
        ph = tf.placeholder(dtype, (None, 4))
        x = draw(rng, dtype, (3, 4), name, domain=opdef.test_domain)
        feeds[ph] = x
        fetches.append(api(ph, reduction_indices=[0], keep_dims=True))
        expected.append(("(?,4) reduction_indices=[0] keep_dims", reference(opdef, x, axes=(0,), keepdims=True)))
    got = run(g, fetches, feeds)
    check = Checker(f"{name} {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype, "accumulate")
    check.done()


# ---- reduce attrs straight through graph.create_op -------------------------------------------------
# tf.reduce_* normalizes `axes` (sorted, non-negative, deduplicated) before create_op; the registry's
# infer rule accepts any spelling (negative axes, None, an int, no attr) and types the result
# correctly, but codegen reads attrs["axes"] raw. Each case runs in a subprocess: the negative-axes
# miscompile writes past the end of the output buffer (heap corruption, seen as a malloc abort).
_CREATE_OP_REDUCE = r"""
import sys
import numpy as np
import jitflow as tf
from jitflow.ops import get_op
name, attrs = sys.argv[1], eval(sys.argv[2])
x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11.5
g = tf.Graph()
with g.as_default():
    ph = tf.placeholder(tf.float32, x.shape)
    out = g.create_op(name, [ph], attrs).outputs[0]
with tf.Session(graph=g) as sess:
    got = sess.run(out, {ph: x})
want = get_op(name).reference(x, **attrs)
assert got.shape == want.shape == tuple(out.shape.as_list()), (got.shape, want.shape, out.shape)
np.testing.assert_allclose(got, want, rtol=1e-6)
print("MATCH")
"""
# Regression (found by this suite): lowering normalizes the axes attr of graph-level reductions;
# codegen once read negative axes raw (wrong values, a heap overflow) and crashed on None/int.


@pytest.mark.parametrize("name,attrs", [
    pytest.param("reduce_sum", {"axes": (1, 0), "keepdims": False}, id="sum-unsorted"),
    pytest.param("reduce_max", {"axes": [0, 2], "keepdims": True}, id="max-list"),
    pytest.param("reduce_sum", {"axes": (-1,), "keepdims": False}, id="sum-neg1"),
    pytest.param("reduce_max", {"axes": (-2,), "keepdims": True}, id="max-neg2-keepdims"),
    pytest.param("reduce_min", {"axes": (-1, -3)}, id="min-neg-pair"),
    pytest.param("reduce_sum", {"axes": None}, id="sum-None"),
    pytest.param("reduce_mean", {"axes": 1}, id="mean-int"),
    pytest.param("reduce_prod", {}, id="prod-no-axes"),
])
def test_reduce_attrs_accepted_by_infer_compile_correctly(name, attrs):
    proc = subprocess.run([sys.executable, "-c", _CREATE_OP_REDUCE, name, repr(attrs)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "MATCH" in proc.stdout, \
        f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


@pytest.mark.parametrize("name,dtype", [pytest.param(n, d, id=f"{n}-{d.name}") for n in ARG_OPS
                                        for d in NUMERIC_DTYPES])
def test_argmax_argmin(name, dtype):
    opdef = get_op(name)
    api = getattr(tf, name)
    rng = np.random.default_rng(3)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for shape, view in (((7,), None), ((1,), None), ((2, 3, 4), None), ((3, 1, 5), None),
                            ((2, 3, 2, 3), None), ((3, 4), "T"), ((2, 0, 3), None), ((4, 6), "step")):
            x = draw(rng, dtype, shape)               # small ints: ties (the first index wins)
            if view:
                x = non_contiguous(x, view)
            ph = tf.placeholder(dtype, shape)
            feeds[ph] = x
            for axis in range(-len(shape), len(shape)):
                if shape[axis] == 0:
                    continue
                for out_type in (int32, int64):
                    fetches.append(api(ph, axis=axis, output_type=out_type))
                    expected.append((f"{shape}{'/' + view if view else ''} axis={axis} {out_type.name}", out_type,
                                     reference(opdef, x, axis=axis % len(shape), output_type=out_type)))
        ph = tf.placeholder(dtype, (2, 5))
        feeds[ph] = x = draw(rng, dtype, (2, 5))
        fetches.append(api(ph, dimension=1))        # TF 1.x spelling, default int64
        expected.append(("dimension=1 default output_type", int64, reference(opdef, x, axis=1)))
    got = run(g, fetches, feeds)
    check = Checker(f"{name} {dtype.name}")
    for (label, out_type, want), value in zip(expected, got):
        check.check(label, value, want, out_type)
    check.done()


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_reductions_with_special_values(dtype):
    """NaN propagates through max/min/sum/prod (numpy semantics), inf through sum/max."""
    x = np.array([[1.0, np.nan, -2.0], [np.inf, 1.0, -np.inf], [3.0, -1.0, 2.0], [-0.0, 0.0, -0.0]], dtype.np)
    names = ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_mean"]
    g = tf.Graph()
    fetches, expected = [], []
    with g.as_default():
        ph = tf.placeholder(dtype, x.shape)
        for name in names:
            for axis in (0, 1, None):
                fetches.append(getattr(tf, name)(ph, axis=axis))
                expected.append((f"{name} axis={axis}", reference(get_op(name), x, axes=_np_axes(axis, 2))))
    got = run(g, fetches, {ph: x})
    check = Checker(f"special-value reductions {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype, "accumulate")
    check.done()


# ---------------------------------------------------------------------------------------------
# layout ops
# ---------------------------------------------------------------------------------------------
def _layout_run(dtype, builders, what):
    """builders: [(label, input shape, view, fn(tensor) -> tensor, fn(np array) -> np array)]."""
    rng = np.random.default_rng(17)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for label, shape, view, build, numpy_fn in builders:
            x = draw(rng, dtype, shape)
            if view:
                x = non_contiguous(x, view)
            ph = tf.placeholder(dtype, shape)
            feeds[ph] = x
            fetches.append(build(ph))
            expected.append((label + (f" /{view}" if view else ""), numpy_fn(x)))
    got = run(g, fetches, feeds)
    check = Checker(f"{what} {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


def _ref(name, **attrs):
    return lambda x: reference(get_op(name), x, **attrs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_transpose(dtype):
    cases = [(f"perm {p}", (2, 3, 4), None, lambda t, p=p: tf.transpose(t, p), _ref("transpose", perm=p))
             for p in itertools.permutations(range(3))]
    cases += [
        ("default perm rank 3", (2, 3, 4), None, lambda t: tf.transpose(t), _ref("transpose", perm=(2, 1, 0))),
        ("rank 4 (2,0,3,1)", (2, 3, 4, 5), None, lambda t: tf.transpose(t, (2, 0, 3, 1)),
         _ref("transpose", perm=(2, 0, 3, 1))),
        ("rank 0", (), None, lambda t: tf.transpose(t), _ref("transpose", perm=())),
        ("rank 1", (5,), None, lambda t: tf.transpose(t), _ref("transpose", perm=(0,))),
        ("size 0", (3, 0, 2), None, lambda t: tf.transpose(t, (2, 0, 1)), _ref("transpose", perm=(2, 0, 1))),
        ("size 1 dims", (1, 4, 1), None, lambda t: tf.transpose(t, (2, 1, 0)), _ref("transpose", perm=(2, 1, 0))),
        ("transposed feed", (3, 4), "T", lambda t: tf.transpose(t), _ref("transpose", perm=(1, 0))),
        ("reversed feed", (2, 3, 4), "rev", lambda t: tf.transpose(t, (1, 2, 0)), _ref("transpose", perm=(1, 2, 0))),
        ("transpose of transpose", (2, 3, 4), None, lambda t: tf.transpose(tf.transpose(t, (1, 2, 0)), (1, 2, 0)),
         lambda x: np.transpose(x, (2, 0, 1))),
    ]
    _layout_run(dtype, cases, "transpose")


SLICES = [
    ("x[1:, ::2, None, ...]", lambda x: x[1:, ::2, None, ...]),
    ("x[::-1]", lambda x: x[::-1]),
    ("x[:, ::-2, ::-3]", lambda x: x[:, ::-2, ::-3]),
    ("x[1]", lambda x: x[1]),
    ("x[-1, 2]", lambda x: x[-1, 2]),
    ("x[1, -2, 3]", lambda x: x[1, -2, 3]),
    ("x[..., 1]", lambda x: x[..., 1]),
    ("x[..., None]", lambda x: x[..., None]),
    ("x[None]", lambda x: x[None]),
    ("x[:, None, 4:0:-2]", lambda x: x[:, None, 4:0:-2]),
    ("x[2:2]", lambda x: x[2:2]),
    ("x[3:1]", lambda x: x[3:1]),
    ("x[::-2, 1:4, -3:]", lambda x: x[::-2, 1:4, -3:]),
    ("x[1, ..., ::-3]", lambda x: x[1, ..., ::-3]),
    ("x[-100:100, :, 5:]", lambda x: x[-100:100, :, 5:]),
    ("x[:, 1:2, :]", lambda x: x[:, 1:2, :]),
    ("x[...]", lambda x: x[...]),
    ("x[::10]", lambda x: x[::10]),
    ("x[5:]", lambda x: x[5:]),
    ("x[-1:-5:-1, ::-7]", lambda x: x[-1:-5:-1, ::-7]),
    ("x[None, ..., None, 2]", lambda x: x[None, ..., None, 2]),
    ("x[1:3][::-1][:, 2]", lambda x: x[1:3][::-1][:, 2]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_strided_slice(dtype):
    cases = [(label, (4, 5, 6), None, fn, fn) for label, fn in SLICES]
    cases += [
        ("x[::-1] of a transposed feed", (4, 5), "T", lambda x: x[::-1], lambda x: x[::-1]),
        ("x[1:, ::2] of a strided feed", (4, 6), "step", lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
        ("x[::-1] rank 1", (7,), None, lambda x: x[::-1], lambda x: x[::-1]),
        ("x[0] of size-1", (1, 3), None, lambda x: x[0], lambda x: x[0]),
        ("x[:, 1:] of size-0", (0, 3), None, lambda x: x[:, 1:], lambda x: x[:, 1:]),
        ("scalar x[None]", (), None, lambda x: x[None], lambda x: x[None]),
        ("scalar x[...]", (), None, lambda x: x[...], lambda x: x[...]),
        ("tf.unstack axis 1", (2, 3, 4), None, lambda x: tf.stack(tf.unstack(x, axis=1), axis=0),
         lambda x: np.stack([x[:, i] for i in range(3)], axis=0)),
    ]
    _layout_run(dtype, cases, "strided_slice")


def test_strided_slice_reference_agrees_with_numpy_indexing():
    """The oracle of the strided_slice op the API builds equals numpy indexing."""
    x = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    opdef = get_op("strided_slice")
    g = tf.Graph()
    with g.as_default():
        ph = tf.placeholder(tf.int64, x.shape)
        for label, fn in SLICES[:-1]:
            out = fn(ph)
            ops = [op for op in g.get_operations() if op._op == "strided_slice"]
            sliced = reference(opdef, x, **ops[-1].attrs)
            np.testing.assert_array_equal(sliced.reshape(out.shape.as_list()), fn(x), err_msg=label)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_reshape(dtype):
    def case(label, shape, target, view=None, pre=None, np_pre=None):
        pre = pre or (lambda t: t)
        np_pre = np_pre or (lambda x: x)
        return (label, shape, view, lambda t: tf.reshape(pre(t), target),
                lambda x: reference(get_op("reshape"), np.ascontiguousarray(np_pre(x)),
                                    shape=_resolve(np_pre(x).shape, target)))
    cases = [
        case("(2,3,4)->(6,4)", (2, 3, 4), (6, 4)),
        case("(2,3,4)->(-1,)", (2, 3, 4), (-1,)),
        case("(2,3,4)->(4,-1)", (2, 3, 4), (4, -1)),
        case("(2,3,4)->(2,1,3,4)", (2, 3, 4), (2, 1, 3, 4)),
        case("(2,3,4)->(1,-1,1)", (2, 3, 4), (1, -1, 1)),
        case("(2,3,4)->(3,2,2,2)", (2, 3, 4), (3, 2, 2, 2)),
        case("(6,)->(1,6,1)", (6,), (1, 6, 1)),
        case("(1,6,1)->(6,)", (1, 6, 1), (6,)),
        case("()->(1,1)", (), (1, 1)),
        case("(1,1)->()", (1, 1), ()),
        case("(0,3)->(3,0)", (0, 3), (3, 0)),
        case("(0,3)->(-1,3)", (0, 3), (-1, 3)),
        case("transposed feed (3,4)->(2,6)", (3, 4), (2, 6), view="T"),
        case("reversed feed (2,3,4)->(-1,)", (2, 3, 4), (-1,), view="rev"),
        case("reshape(transpose(x))", (2, 3, 4), (4, 6), pre=lambda t: tf.transpose(t, (2, 0, 1)),
             np_pre=lambda x: np.transpose(x, (2, 0, 1))),
        case("reshape(x[::-1, ::2])", (4, 6), (-1,), pre=lambda t: t[::-1, ::2], np_pre=lambda x: x[::-1, ::2]),
        case("reshape(broadcast_to(x))", (3, 1), (2, 6), pre=lambda t: tf.broadcast_to(t, (3, 4)),
             np_pre=lambda x: np.broadcast_to(x, (3, 4))),
        case("reshape(x + 1-row)", (2, 6), (3, 4),
             pre=lambda t: tf.logical_or(t, t[:1]) if dtype == bool_ else t + t[:1],
             np_pre=lambda x: _np_plus(x, x[:1])),
        ("expand_dims / squeeze", (2, 3), None, lambda t: tf.squeeze(tf.expand_dims(t, 1), [1]),
         lambda x: x.copy()),
        ("expand_dims -1", (2, 3), None, lambda t: tf.expand_dims(t, -1), lambda x: x[..., None]),
        ("squeeze all", (1, 3, 1), None, lambda t: tf.squeeze(t), lambda x: x.reshape(3)),
    ]
    _layout_run(dtype, cases, "reshape")


def _np_plus(a, b):
    if a.dtype == np.bool_:
        return a | b
    return (a + b).astype(a.dtype)


def _resolve(shape, target):
    from jitflow.ops.shape import resolve_reshape
    return resolve_reshape(shape, target)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_broadcast_to(dtype):
    cases = [(f"{shape}->{target}{' ' + view if view else ''}", shape, view,
              lambda t, tg=target: tf.broadcast_to(t, tg), _ref("broadcast_to", shape=target))
             for shape, target, view in [
                 ((3, 1), (3, 4), None), ((), (2, 3), None), ((4,), (2, 3, 4), None), ((1,), (0,), None),
                 ((2, 1, 3), (2, 5, 3), None), ((1, 1), (1, 1), None), ((3,), (3,), None),
                 ((1, 4), (2, 0, 4), None), ((2, 3), (4, 2, 3), "T"), ((3,), (2, 3), "rev"),
                 ((1, 1, 1, 2), (2, 3, 4, 2), None)]]
    cases.append(("tf.fill", (), None, lambda t: tf.fill((2, 3), t), lambda x: np.full((2, 3), x, x.dtype)))
    cases.append(("zeros_like", (2, 3), None, lambda t: tf.zeros_like(t), lambda x: np.zeros_like(x)))
    cases.append(("ones_like", (2, 3), None, lambda t: tf.ones_like(t), lambda x: np.ones_like(x)))
    _layout_run(dtype, cases, "broadcast_to")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_concat_and_stack(dtype):
    opdef = get_op("concat")
    rng = np.random.default_rng(23)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        def add_case(label, shapes, build, numpy_fn, views=()):
            values = [draw(rng, dtype, s) for s in shapes]
            values = [non_contiguous(v, views[i]) if i < len(views) and views[i] else v
                      for i, v in enumerate(values)]
            phs = [tf.placeholder(dtype, s) for s in shapes]
            feeds.update(zip(phs, values))
            fetches.append(build(phs))
            expected.append((label, numpy_fn(values)))

        base = (2, 3, 4)
        for axis in range(3):
            shapes = [tuple(d + k if j == axis else d for j, d in enumerate(base)) for k in (0, 1, 2)]
            add_case(f"concat axis {axis}", shapes, lambda ps, a=axis: tf.concat(ps, a),
                     lambda vs, a=axis: reference(opdef, *vs, axis=a))
            add_case(f"concat axis {axis - 3}", shapes[:2], lambda ps, a=axis: tf.concat(ps, a - 3),
                     lambda vs, a=axis: reference(opdef, *vs, axis=a))
        add_case("concat rank 1", [(3,), (1,), (4,)], lambda ps: tf.concat(ps, 0),
                 lambda vs: reference(opdef, *vs, axis=0))
        add_case("concat with a size-0 operand", [(2, 0), (2, 3), (2, 1)], lambda ps: tf.concat(ps, 1),
                 lambda vs: reference(opdef, *vs, axis=1))
        add_case("concat rank 4 axis 2", [(2, 1, 2, 3), (2, 1, 3, 3)], lambda ps: tf.concat(ps, 2),
                 lambda vs: reference(opdef, *vs, axis=2))
        add_case("concat non-contiguous", [(3, 4), (3, 4)], lambda ps: tf.concat(ps, 0),
                 lambda vs: reference(opdef, *vs, axis=0), views=("T", "rev"))
        add_case("concat of transposes", [(3, 2), (4, 2)], lambda ps: tf.concat([tf.transpose(p) for p in ps], 1),
                 lambda vs: reference(opdef, *[v.T for v in vs], axis=1))
        add_case("concat single operand", [(2, 3)], lambda ps: tf.concat(ps, 1), lambda vs: vs[0].copy())
        for axis in (0, 1, 2, -1):
            add_case(f"stack axis {axis}", [(2, 3)] * 3, lambda ps, a=axis: tf.stack(ps, a),
                     lambda vs, a=axis: np.stack(vs, a))
        add_case("stack scalars", [(), (), ()], lambda ps: tf.stack(ps), lambda vs: np.stack(vs))
        add_case("stack with size 0", [(0, 2), (0, 2)], lambda ps: tf.stack(ps, 1), lambda vs: np.stack(vs, 1))
    got = run(g, fetches, feeds)
    check = Checker(f"concat/stack {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


@pytest.mark.parametrize("dtype", [d for d in DTYPES if accepts(get_op("scatter_slice"), [TensorType(d, (1,))],
                                                                {"begin": (0,), "stride": (1,), "shape": (1,)})],
                         ids=lambda d: d.name)
def test_scatter_slice(dtype):
    opdef = get_op("scatter_slice")
    rng = np.random.default_rng(29)
    cases = [((2, 3), (1, 0), (2, 2), (4, 7)), ((3,), (6,), (-2,), (7,)), ((0, 2), (0, 1), (1, 1), (3, 4)),
             ((2, 1, 3), (0, 4, 5), (2, 1, -2), (4, 5, 6)), ((), (), (), ())]
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for gshape, begin, stride, shape in cases:
            value = draw(rng, dtype, gshape)
            ph = tf.placeholder(dtype, gshape)
            feeds[ph] = value
            attrs = {"begin": begin, "stride": stride, "shape": shape}
            fetches.append(g.create_op("scatter_slice", [ph], attrs).outputs[0])
            expected.append((f"{gshape} into {shape} begin {begin} stride {stride}",
                             reference(opdef, value, **attrs)))
    got = run(g, fetches, feeds)
    check = Checker(f"scatter_slice {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_layout_ops_through_create_op(dtype):
    """Layout ops built straight from the registry (attrs as lists, size-0 and rank-0 cases)."""
    rng = np.random.default_rng(61)
    cases = [("transpose", {"perm": [2, 0, 1]}, [(2, 3, 4)]), ("transpose", {"perm": ()}, [()]),
             ("broadcast_to", {"shape": [2, 3, 4]}, [(3, 1)]), ("broadcast_to", {"shape": (0, 3)}, [(1, 3)]),
             ("reshape", {"shape": [4, -1]}, [(2, 3, 4)]), ("reshape", {"shape": (1, 1, 1)}, [()]),
             ("strided_slice", {"begin": [2, 0], "stride": [-1, 2], "size": [2, 2]}, [(3, 4)]),
             ("strided_slice", {"begin": (), "stride": (), "size": ()}, [()]),
             ("strided_slice", {"begin": (5, 1), "stride": (1, 3), "size": (0, 2)}, [(3, 7)]),
             ("concat", {"axis": 1}, [(2, 3), (2, 1), (2, 0)]), ("concat", {"axis": 0}, [(2, 3)]),
             ("concat", {"axis": 0}, [(1,)] * 12), ("concat", {"axis": 0}, [(0, 3), (0, 3)])]
    opdefs_seen = set()
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for name, attrs, shapes in cases:
            values = [draw(rng, dtype, s) for s in shapes]
            phs = [tf.placeholder(dtype, s) for s in shapes]
            feeds.update(zip(phs, values))
            fetches.append(g.create_op(name, phs, attrs).outputs[0])
            expected.append((f"{name} {attrs} {shapes[:3]}", reference(get_op(name), *values, **attrs)))
            opdefs_seen.add(name)
    assert opdefs_seen == LAYOUT_TESTS - {"scatter_slice"}
    got = run(g, fetches, feeds)
    check = Checker(f"layout ops via create_op {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


@pytest.mark.parametrize("dtype", [float32, int32, int64, bool_], ids=lambda d: d.name)
def test_one_hot(dtype):
    depth = 4
    indices = np.array([[0, 3, -1], [4, 2, 1]], np.int32)      # -1 and depth: all off
    on, off = {bool_: (True, False), float32: (2.5, -1.0)}.get(dtype, (7, -3))

    def expect(idx, axis, on_value, off_value):
        hot = np.arange(depth) == idx[..., None]
        out = np.where(hot, on_value, off_value).astype(dtype.np)
        return np.moveaxis(out, -1, axis if axis != -1 else -1)
    g = tf.Graph()
    fetches, expected = [], []
    with g.as_default():
        for index_dtype in (int32, int64):
            ph = tf.placeholder(index_dtype, indices.shape)
            for axis in (-1, 0, 1, 2):
                fetches.append((ph, tf.one_hot(ph, depth, on_value=on, off_value=off, axis=axis, dtype=dtype)))
                expected.append((f"{index_dtype.name} axis {axis}", expect(indices, axis, on, off)))
            if dtype != bool_:       # the default on/off values 1/0 are not bools
                fetches.append((ph, tf.one_hot(ph, depth, dtype=dtype)))
                expected.append((f"{index_dtype.name} default on/off", expect(indices, -1, 1, 0)))
        scalar = tf.placeholder(tf.int32, ())
        fetches.append((scalar, tf.one_hot(scalar, depth, on_value=on, off_value=off, dtype=dtype)))
        expected.append(("scalar index", expect(np.array(2), -1, on, off)))
    feeds = {ph: indices.astype(ph.dtype.np) for ph, _ in fetches if ph is not scalar}
    feeds[scalar] = 2
    got = run(g, [t for _, t in fetches], feeds)
    check = Checker(f"one_hot {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype)
    check.done()


# ---------------------------------------------------------------------------------------------
# library ops
# ---------------------------------------------------------------------------------------------
MATMUL_SHAPES = [(3, 4, 5), (1, 4, 5), (3, 4, 1), (1, 6, 1), (3, 1, 5), (3, 0, 5), (0, 3, 2), (3, 4, 0), (1, 1, 1),
                 (5, 7, 1), (33, 65, 17), (64, 64, 64)]


@pytest.mark.parametrize("dtype", [d for d in DTYPES if accepts(get_op("matmul"), [TensorType(d, (2, 2))] * 2)],
                         ids=lambda d: d.name)
def test_matmul(dtype):
    opdef = get_op("matmul")
    rng = np.random.default_rng(31)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for (m, k, n), ta, tb in itertools.product(MATMUL_SHAPES, (False, True), (False, True)):
            a = draw(rng, dtype, (k, m) if ta else (m, k), domain=opdef.test_domain)
            b = draw(rng, dtype, (n, k) if tb else (k, n), domain=opdef.test_domain)
            pa, pb = tf.placeholder(dtype, a.shape), tf.placeholder(dtype, b.shape)
            feeds.update({pa: a, pb: b})
            fetches.append(tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb))
            expected.append((f"m,k,n={m, k, n} ta={ta} tb={tb}",
                             reference(opdef, a, b, transpose_a=ta, transpose_b=tb)))
        for label, (a, b) in {"transposed views": (non_contiguous(draw(rng, dtype, (4, 3)), "T"),
                                                   non_contiguous(draw(rng, dtype, (3, 5)), "rev")),
                              "strided view": (non_contiguous(draw(rng, dtype, (2, 3)), "step"),
                                               draw(rng, dtype, (3, 2)))}.items():
            pa, pb = tf.placeholder(dtype, a.shape), tf.placeholder(dtype, b.shape)
            feeds.update({pa: a, pb: b})
            fetches.append(tf.matmul(pa, pb))
            expected.append((label, reference(opdef, a, b)))
        # operands computed by fused producers (transposed / sliced views inside the graph)
        a = draw(rng, dtype, (5, 4))
        pa = tf.placeholder(dtype, a.shape)
        feeds[pa] = a
        fetches.append(tf.matmul(tf.transpose(pa)[::-1], pa[:, ::-1]))
        expected.append(("matmul(transpose(a)[::-1], a[:, ::-1])", reference(opdef, a.T[::-1], a[:, ::-1])))
    got = run(g, fetches, feeds)
    check = Checker(f"matmul {dtype.name}")
    for (label, want), value in zip(expected, got):
        check.check(label, value, want, dtype, "accumulate")
    check.done()


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_matrix_inverse(dtype):
    opdef = get_op("matrix_inverse")
    rng = np.random.default_rng(37)
    g = tf.Graph()
    fetches, feeds, expected = [], {}, []
    with g.as_default():
        for n in (0, 1, 2, 3, 5, 8, 16):
            a = (rng.uniform(-1, 1, (n, n)) + n * np.eye(n)).astype(dtype.np)    # diagonally dominant
            if n == 3:
                a = a[[2, 0, 1]]                                                   # needs pivoting
            ph = tf.placeholder(dtype, (n, n))
            feeds[ph] = a
            fetches.append(tf.matrix_inverse(ph))
            expected.append((f"n={n}", a, reference(opdef, a)))
        a = non_contiguous((rng.uniform(-1, 1, (4, 4)) + 4 * np.eye(4)).astype(dtype.np), "T")
        ph = tf.placeholder(dtype, (4, 4))
        feeds[ph] = a
        fetches.append(tf.matrix_inverse(ph))
        expected.append(("transposed feed", a, reference(opdef, a)))
        fetches.append(tf.matrix_inverse(ph, adjoint=True))
        expected.append(("adjoint", a.T, reference(opdef, a.T)))
    got = run(g, fetches, feeds)
    check = Checker(f"matrix_inverse {dtype.name}")
    for (label, a, want), value in zip(expected, got):
        check.check(label, value, want, dtype, "linalg")
        check.check(label + " (a @ inv = I)", (a.astype(np.float64) @ np.asarray(value, np.float64)).astype(dtype.np),
                    np.eye(len(a), dtype=dtype.np), dtype, "linalg")
    check.done()


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_matrix_inverse_of_a_singular_matrix_raises(dtype):
    g = tf.Graph()
    with g.as_default():
        ph = tf.placeholder(dtype, (3, 3))
        inv = tf.matrix_inverse(ph)
    singular = [[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]],      # exactly zero pivots
                [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
                [[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]],
                np.zeros((3, 3))]
    with tf.Session(graph=g) as sess:
        for a in singular:
            with pytest.raises(np.linalg.LinAlgError):      # the oracle agrees that it is singular
                get_op("matrix_inverse").reference(np.array(a, dtype.np))
            with pytest.raises(errors.InvalidArgumentError, match="not invertible"):
                sess.run(inv, {ph: np.array(a, dtype.np)})
        # the session stays usable after the error
        np.testing.assert_allclose(sess.run(inv, {ph: 2 * np.eye(3, dtype=dtype.np)}), 0.5 * np.eye(3))


# ---------------------------------------------------------------------------------------------
# random ops
# ---------------------------------------------------------------------------------------------
RANDOM_API = {"uniform": tf.random_uniform, "normal": tf.random_normal, "truncated_normal": tf.truncated_normal}


def _random_op(tensor):
    """The random op a tf.random_* result is computed from (the API may add `* stddev + mean`)."""
    pending, seen = [tensor.op], set()
    while pending:
        op = pending.pop()
        if get_op(op._op).kind == RANDOM:
            return op
        seen.add(id(op))
        pending.extend(t.op for t in op.inputs if id(t.op) not in seen)
    raise AssertionError(f"no random op behind {tensor}")


def test_random_ops_are_registered_as_tested():
    assert {n for n, op in all_ops().items() if op.kind == RANDOM} == {"random_" + k for k in RANDOM_API}


@pytest.mark.parametrize("kind", list(RANDOM_API))
def test_random_same_graph_seed_repeats_in_new_sessions(kind):
    def build():
        g = tf.Graph()
        with g.as_default():
            tf.set_random_seed(1234)
            a = RANDOM_API[kind]((4, 5))
            b = RANDOM_API[kind]((4, 5))
        return g, a, b
    g, a, b = build()
    with tf.Session(graph=g) as sess:
        first = sess.run([a, b])
        second = sess.run([a, b])
    with tf.Session(graph=g) as sess:
        again = sess.run([a, b])
    g2, a2, b2 = build()                       # a rebuilt graph repeats too
    with tf.Session(graph=g2) as sess:
        rebuilt = sess.run([a2, b2])
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], rebuilt[0])
    assert not np.array_equal(first[0], second[0]), "successive runs must differ"
    assert not np.array_equal(first[0], first[1]), "two ops of one graph must differ"


@pytest.mark.parametrize("kind", list(RANDOM_API))
@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_random_matches_reference(kind, dtype):
    shapes = [(), (7,), (3, 4, 5), (0, 3), (1000,)]
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(99)
        tensors = [RANDOM_API[kind](s, dtype=dtype) for s in shapes]
        explicit = RANDOM_API[kind]((6,), dtype=dtype, seed=5)      # op seed, default graph seed
    tensors.append(explicit)
    shapes.append((6,))
    raw = [_random_op(t).outputs[0] for t in tensors]
    with tf.Session(graph=g) as sess:
        runs = [sess.run([raw, tensors]) for _ in range(3)]
    check = Checker(f"random_{kind} {dtype.name}")
    for run_index, (raw_values, api_values) in enumerate(runs):
        for t, shape, value, api_value in zip(raw, shapes, raw_values, api_values):
            op = t.op
            want = random_reference(kind, shape, dtype, op.attrs["seed"], op.attrs["seed2"], run_index)
            label = f"{shape} seeds {op.attrs['seed']},{op.attrs['seed2']} run {run_index}"
            value = np.asarray(value)
            if kind == "uniform":                 # bit-exact
                check.check(label + " dtype, shape, values", value, want, dtype)
                check.exact(label + " bits", value.reshape(-1).view(np.uint8),
                            np.asarray(want, dtype.np).reshape(-1).view(np.uint8))
                check.exact(label + " in [0, 1)", (value >= 0) & (value < 1), np.ones(value.shape, bool))
            else:
                check.count += 1
                try:
                    assert value.dtype == dtype.np and value.shape == want.shape, (value.dtype, value.shape)
                    np.testing.assert_allclose(value, want, rtol=RANDOM_RTOL, atol=RANDOM_ATOL[dtype.name])
                except AssertionError as exc:
                    check.failures.append(f"[{label} rtol {RANDOM_RTOL}] {str(exc).strip()}")
            if kind == "truncated_normal":
                check.exact(label + " in [-2, 2]", np.abs(value) <= 2, np.ones(value.shape, bool))
            # the tf.* result (mean 0, stddev 1 / [0, 1)) is the raw value
            check.check(label + " tf API", api_value, value, dtype)
    check.done()


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_random_moments(dtype):
    n = 40000
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(7)
        u = tf.random_uniform((n,), dtype=dtype)
        z = tf.random_normal((n,), dtype=dtype)
        t = tf.truncated_normal((n,), dtype=dtype)
        scaled = tf.random_uniform((n,), minval=-2.0, maxval=3.0, dtype=dtype)
        shifted = tf.random_normal((n,), mean=1.5, stddev=0.5, dtype=dtype)
    with tf.Session(graph=g) as sess:
        u, z, t, scaled, shifted = sess.run([u, z, t, scaled, shifted])
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.02
    assert abs(t.mean()) < 0.03 and abs(t.std() - 0.8796) < 0.02 and np.abs(t).max() <= 2
    assert scaled.min() >= -2 and scaled.max() < 3 and abs(scaled.mean() - 0.5) < 0.05
    assert abs(shifted.mean() - 1.5) < 0.02 and abs(shifted.std() - 0.5) < 0.02
    for x in (u, z, t, scaled, shifted):
        assert x.dtype == dtype.np and np.isfinite(x).all()


# ---------------------------------------------------------------------------------------------
# compositions: fusion, materialization, row groups, parallel loops, constant operands
# ---------------------------------------------------------------------------------------------
# The oracle is the graph itself evaluated op by op with the registry references.
def numpy_eval(graph, fetches, feeds):
    """Evaluates fetches with each op's numpy `reference` (never the compiled path)."""
    values = {}
    fed = {id(t): np.asarray(v) for t, v in feeds.items()}
    wanted = set()
    pending = [t.op for t in fetches]
    while pending:
        op = pending.pop()
        if id(op) not in wanted:
            wanted.add(id(op))
            pending.extend(t.op for t in op.inputs if id(t) not in fed)
    for op in graph.get_operations():
        if id(op) not in wanted:
            continue
        if op.outputs and id(op.outputs[0]) in fed:
            values[id(op.outputs[0])] = fed[id(op.outputs[0])]
            continue
        args = [values[id(t)] if id(t) not in fed else fed[id(t)] for t in op.inputs]
        attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
        if op._op == "const":
            out = np.asarray(attrs["value"])
        elif op._op == "fill_like":
            out = np.full(args[0].shape, attrs["value"], attrs["dtype"].np)
        elif op._op == "shape_of":
            out = np.array(args[0].shape, attrs.get("out_type", int32).np)
        else:
            out = reference(get_op(op._op), *args, **attrs)
        values[id(op.outputs[0])] = np.asarray(out)
    return [fed[id(t)] if id(t) in fed else values[id(t)] for t in fetches]


def _composite_check(what, build, inputs, dtype, category="accumulate"):
    """build(*placeholders) -> list of fetches; compares compiled vs numpy_eval."""
    g = tf.Graph()
    with g.as_default():
        phs = [tf.placeholder(tf.as_dtype(x.dtype), x.shape) for x in inputs]
        fetches = build(*phs)
    feeds = dict(zip(phs, inputs))
    got = run(g, fetches, feeds)
    want = numpy_eval(g, fetches, feeds)
    check = Checker(f"{what} {dtype.name}")
    for k, (t, value, expected) in enumerate(zip(fetches, got, want)):
        check.check(f"fetch {k}: {t.op.name}", value, expected, t.dtype,
                    category if t.dtype.is_floating else "default")
    check.done()


def test_numpy_eval_oracle_is_independent_of_the_compiler():
    """Sanity of the oracle on a hand-computed case."""
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float64, (2, 2))
        y = tf.reduce_sum(tf.transpose(x) * tf.constant([1.0, 10.0], tf.float64), axis=1)
    (value,) = numpy_eval(g, [y], {x: np.array([[1.0, 2.0], [3.0, 4.0]])})
    np.testing.assert_array_equal(value, [31.0, 42.0])


@pytest.mark.parametrize("dtype", [float32, float64], ids=lambda d: d.name)
def test_fused_float_compositions(dtype):
    rng = np.random.default_rng(41)
    x = rng.normal(size=(8, 32)).astype(dtype.np)
    y = rng.normal(size=(3, 4, 20)).astype(dtype.np)
    w = rng.normal(size=(32, 16)).astype(dtype.np)
    labels = rng.integers(0, 32, size=(8,)).astype(np.int32)

    def build(px, py, pw, pl):
        softmax = tf.nn.softmax(px)
        centered = px - tf.reduce_mean(px, axis=1, keepdims=True)        # reduce result broadcast back
        mean, var = tf.nn.moments(px, axes=[0])                            # batch statistics (axis 0)
        hidden = tf.nn.relu(tf.matmul(px * 0.5 + 1.0, pw))                # fused producer of a GEMM
        shared = tf.exp(py * 0.1)                                          # one value, three consumers
        return [softmax, tf.nn.log_softmax(py), tf.nn.softmax(py, axis=1), centered, mean, var,
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pl, logits=px),
                tf.reduce_sum(hidden, axis=0), hidden,
                shared, tf.reduce_sum(shared, axis=[0, 2]), tf.reduce_max(shared, axis=-1) - shared[:, :, 0],
                tf.reduce_sum(tf.transpose(py, (2, 0, 1))[::-1, :, ::2], axis=1),
                tf.reduce_sum(tf.reshape(tf.transpose(py, (1, 0, 2)) * 2.0, (4, 60)), axis=1),
                tf.reduce_mean(tf.broadcast_to(px[:, :1], (8, 32)) * px, axis=0),
                tf.argmax(px * px - px, axis=1), tf.argmin(tf.abs(py), axis=2, output_type=tf.int32),
                tf.concat([softmax, centered[:, ::-1]], axis=1), tf.stack([mean, var]),
                tf.where(px > 0, tf.sqrt(tf.abs(px)), -tf.square(px)), tf.cast(px > 0.5, dtype) * px,
                tf.add_n([px, softmax, centered]), tf.sigmoid(px) * tf.tanh(px) / (1.0 + tf.square(px))]
    _composite_check("fused compositions", build, [x, y, w, labels], dtype, "composite")


@pytest.mark.parametrize("dtype", [int32, int64], ids=lambda d: d.name)
def test_fused_integer_compositions(dtype):
    rng = np.random.default_rng(43)
    x = rng.integers(-9, 10, size=(6, 20)).astype(dtype.np)
    y = rng.integers(-4, 5, size=(20,)).astype(dtype.np)
    y[y == 0] = 3     # tf.floordiv/floormod raise on an integer zero divisor (tests/test_reliability_checks.py)

    def build(px, py):
        shared = px * py + 3
        return [shared, tf.reduce_sum(shared, axis=1), tf.reduce_max(shared - tf.reduce_min(shared, axis=1,
                                                                                             keepdims=True), 0),
                tf.floordiv(px, py), tf.floormod(shared, py), tf.argmax(shared, axis=0),
                tf.reduce_mean(tf.transpose(px)[::2], axis=1), tf.cast(tf.cast(px, tf.float64) / 4.0, dtype),
                tf.one_hot(tf.abs(px[0]), 10, dtype=dtype), tf.concat([px[:, :3], shared[:, -2:]], axis=1),
                tf.matmul(px, tf.reshape(py, (20, 1))) - tf.reduce_sum(px * py, axis=1, keepdims=True)]
    _composite_check("fused integer compositions", build, [x, y], dtype)


@pytest.mark.parametrize("dtype", [float32, int64], ids=lambda d: d.name)
def test_large_tensors_take_the_parallel_path(dtype):
    """Loops with >= 2**18 innermost iterations are split across threads (codegen/cpu.py)."""
    rng = np.random.default_rng(47)
    x = draw(rng, dtype, (600, 512))
    y = draw(rng, dtype, (512,))
    z = draw(rng, dtype, (600, 1))

    def build(px, py, pz):
        return [px + py, px * pz - py, tf.reduce_sum(px, 0), tf.reduce_sum(px, 1), tf.reduce_sum(px),
                tf.reduce_max(px, 0), tf.reduce_min(px, 1, keepdims=True), tf.argmax(px, 0), tf.argmin(px, 1),
                tf.transpose(px), tf.concat([px, px * 2], 0), tf.reduce_mean(px, 0),
                tf.reduce_prod(tf.sign(px), 1), tf.nn.softmax(tf.cast(px, tf.float32)),
                tf.reshape(tf.transpose(px)[::-1], (-1,))]
    _composite_check("large tensors", build, [x, y, z], dtype, "composite")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_constant_operands(dtype):
    """Constants instead of placeholders: 1-element constants become literals in the loops,
    bigger ones buffers; library ops read even 1-element constants from memory; layout ops of
    constants are folded by the simplifier."""
    rng = np.random.default_rng(53)
    x = draw(rng, dtype, (3, 4))
    if dtype == bool_:
        specials = [True, False]
    elif dtype.is_integer:
        info = np.iinfo(dtype.np)
        specials = [0, -1, 7, int(info.max), int(info.min)]
    else:
        specials = [0.0, -0.0, 0.1, 1e-30, float(np.finfo(dtype.np).max), np.inf, -np.inf, np.nan]

    def build(px):
        op = tf.logical_or if dtype == bool_ else tf.add
        out = [op(px, tf.constant(c, dtype)) for c in specials]
        out += [op(px, tf.constant(np.array(specials[:4] if len(specials) >= 4 else specials * 2, dtype.np))),
                tf.where(tf.constant(np.array([True, False, True, False])), px, tf.constant(specials[0], dtype)),
                tf.transpose(tf.constant(x)), tf.reshape(tf.constant(x), (4, 3)),
                tf.broadcast_to(tf.constant(specials[1], dtype), (2, 3)), tf.constant(x)[::-1, 1:],
                tf.concat([tf.constant(x), px], 0), tf.identity(tf.constant(x))]
        if dtype != bool_:
            out += [tf.matmul(tf.constant(np.ones((1, 3), dtype.np)), px), tf.matmul(px[:1, :1], tf.constant(
                np.array([[2]], dtype.np))), tf.reduce_sum(tf.constant(x), axis=0) + tf.reduce_max(px, axis=0),
                tf.argmax(tf.constant(x), axis=1)]
        if dtype.is_floating:
            out += [tf.matrix_inverse(tf.constant(np.array([[4.0]], dtype.np))),
                    tf.matrix_inverse(tf.constant(np.array([[2.0, 1.0], [1.0, 3.0]], dtype.np)))]
        return out
    _composite_check("constant operands", build, [x], dtype, "default")


def test_unknown_shapes_respecialize_per_feed_shape():
    """One Session, placeholders of unknown dims/rank fed several shapes: one specialization each."""
    g = tf.Graph()
    with g.as_default():
        p = tf.placeholder(tf.float64, (None, None))
        q = tf.placeholder(tf.float64, None)
        fetches = [p * 2.0 + q, tf.reduce_sum(p, 1), tf.reduce_max(p, 0, keepdims=True), tf.transpose(p),
                   tf.argmax(p, 1), tf.reshape(p, (-1,)), tf.concat([p, p], 0)]
    rng = np.random.default_rng(59)
    check = Checker("re-specialization")
    with tf.Session(graph=g) as sess:
        for shape in [(3, 4), (1, 7), (0, 2), (5, 1), (3, 4), (2, 3)]:
            feeds = {p: rng.normal(size=shape), q: rng.normal(size=shape[-1:] if shape != (2, 3) else (4, 1, 1))}
            for t, value, want in zip(fetches, sess.run(fetches, feeds), numpy_eval(g, fetches, feeds)):
                check.check(f"{shape} {t.op.name}", value, want, t.dtype, "accumulate")
    check.done()


def test_tf1_where_with_a_vector_condition_selects_rows():
    """TF 1.x `tf.where(cond, x, y)` with a vector cond as long as x's first dimension selects rows,
    even for a square x (tf.where_v2 broadcasts over the last axis instead)."""
    cond = np.array([True, False, True, False])
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    g = tf.Graph()
    with g.as_default():
        rows = tf.where(tf.constant(cond), tf.constant(x), tf.constant(-x))
        columns = tf.where_v2(tf.constant(cond), tf.constant(x), tf.constant(-x))
        unknown = tf.placeholder(tf.float32, [None, 4])
        fed_rows = tf.where(tf.constant(cond), unknown, -unknown)
    with tf.Session(graph=g) as sess:
        got_rows, got_columns, got_fed = sess.run([rows, columns, fed_rows], {unknown: x})
    np.testing.assert_array_equal(got_rows, np.where(cond[:, None], x, -x))
    np.testing.assert_array_equal(got_columns, np.where(cond[None, :], x, -x))
    np.testing.assert_array_equal(got_fed, np.where(cond[:, None], x, -x))
