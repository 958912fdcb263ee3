"""IR ops that own regions (jitflow/ir/regions.py): text form round trips, the verifier's region
checks, and the passes treating regions as isolated functions."""
from __future__ import annotations

import numpy as np
import pytest

import jitflow as tf
from jitflow.ir import (Function, IRVerifyError, Node, TensorType, Value, bool_, float32, int32,
                        parse_function, print_function, verify_function)
from jitflow.ir.regions import all_nodes, nested_functions
from jitflow.ops import get_op
from jitflow.passes import run_pipeline


def infer(op, types, attrs):
    return get_op(op).infer(types, attrs, op)


def T(dtype, *shape):
    return TensorType(dtype, tuple(shape))


def const(value, dtype=float32):
    array = np.array(value, dtype=dtype.np)
    return Node("const", [], {"value": array, "dtype": dtype}, [T(dtype, *array.shape)])


def region(name, param_types, build):
    params = [Value(t, name=f"a{i}") for i, t in enumerate(param_types)]
    nodes, results = build(params)
    return Function(name, params, nodes, results)


def while_function(body_shape=(3,)):
    """while (i < n) { i += 1; v = v * 2 } over (i: i32[], v: f32[3]) with invariant n."""
    i0, v0, n = Value(T(int32), name="i0"), Value(T(float32, 3), name="v0"), Value(T(int32), name="n")
    types = [T(int32), T(float32, 3), T(int32)]

    def cond_body(p):
        less = Node("less", [p[0], p[2]], {}, [T(bool_)])
        return [less], [less.result]

    def body_body(p):
        one, two = const(1, int32), const(2.0)
        inc = Node("add", [p[0], one.result], {}, [T(int32)])
        if body_shape == (3,):
            dbl = Node("mul", [p[1], two.result], {}, [T(float32, 3)])
            return [one, two, inc, dbl], [inc.result, dbl.result]
        red = Node("reduce_sum", [p[1]], {"axes": [0], "keepdims": True}, [T(float32, 1)])
        return [one, two, inc, red], [inc.result, red.result]
    loop = Node("while", [i0, v0, n], {"maximum_iterations": -1}, [T(int32), T(float32, 3)])
    loop.regions = (region("cond", types, cond_body), region("body", types, body_body))
    return Function("f", [i0, v0, n], [loop], [loop.results[1]])


def cond_function():
    p, x = Value(T(bool_), name="p"), Value(T(float32, 2), name="x")

    def then(params):
        node = Node("exp", [params[0]], {}, [T(float32, 2)])
        return [node], [node.result]

    def other(params):
        node = Node("neg", [params[0]], {}, [T(float32, 2)])
        return [node], [node.result]
    node = Node("cond", [p, x], {}, [T(float32, 2)])
    node.regions = (region("then", [T(float32, 2)], then), region("else", [T(float32, 2)], other))
    return Function("g", [p, x], [node], [node.result])


@pytest.mark.parametrize("make", [while_function, cond_function])
def test_text_round_trip_and_verify(make):
    fn = make()
    verify_function(fn, infer=infer)
    text = print_function(fn)
    assert " regions {" in text and "func @" in text.split("regions {", 1)[1]
    parsed = parse_function(text)
    assert print_function(parsed) == text
    verify_function(parsed, infer=infer)
    assert len(nested_functions(parsed)) == 2
    canonical = print_function(fn, canonical=True)
    assert print_function(parse_function(canonical), canonical=True) == canonical


def test_verifier_rejects_a_body_that_changes_a_carried_shape():
    with pytest.raises(IRVerifyError, match="carried"):
        verify_function(while_function(body_shape=(1,)), infer=infer)


def test_verifier_rejects_branch_types_that_differ_from_the_results():
    fn = cond_function()
    node = fn.nodes[0]
    bad = region("else", [T(float32, 2)], lambda p: ([], [Value(T(float32, 2))]))
    node.regions = (node.regions[0], bad)
    with pytest.raises(IRVerifyError):
        verify_function(fn, infer=infer)
    bad = Function("else", [Value(T(float32, 3))], [], [])
    node.regions = (node.regions[0], bad)
    with pytest.raises(IRVerifyError, match="region else"):
        verify_function(fn, infer=infer)


def test_passes_run_inside_regions_and_never_merge_different_conds():
    p, x = Value(T(bool_), name="p"), Value(T(float32, 2), name="x")

    def dup(params):      # exp(x) twice inside one branch: CSE merges them there
        a = Node("exp", [params[0]], {}, [T(float32, 2)])
        b = Node("exp", [params[0]], {}, [T(float32, 2)])
        s = Node("add", [a.result, b.result], {}, [T(float32, 2)])
        dead = Node("sin", [params[0]], {}, [T(float32, 2)])
        return [a, b, dead, s], [s.result]

    def neg(params):
        node = Node("neg", [params[0]], {}, [T(float32, 2)])
        return [node], [node.result]
    c1 = Node("cond", [p, x], {}, [T(float32, 2)])
    c1.regions = (region("then", [T(float32, 2)], dup), region("else", [T(float32, 2)], neg))
    c2 = Node("cond", [p, x], {}, [T(float32, 2)])     # same operands, different branches
    c2.regions = (region("then", [T(float32, 2)], neg), region("else", [T(float32, 2)], dup))
    total = Node("add", [c1.result, c2.result], {}, [T(float32, 2)])
    fn = run_pipeline(Function("h", [p, x], [c1, c2, total], [total.result]), verify=True)
    assert [n.op for n in fn.nodes] == ["cond", "cond", "add"]
    assert [n.op for n in c1.regions[0].nodes] == ["exp", "add"]     # CSE + DCE inside the region
    assert sum(1 for n in all_nodes(fn) if n.op == "exp") == 2


def test_print_of_a_jitted_function_shows_the_loop_and_parses_back():
    @tf.jit
    def f(x, n):
        return tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, v * 1.5 + x), [tf.constant(0), x])[1]
    x = np.arange(3, dtype=np.float32)
    got = f(x, np.int32(4))
    want = x.copy()
    for _ in range(4):
        want = want * 1.5 + x
    np.testing.assert_allclose(got, want, rtol=1e-6)
    text = str(f)
    assert "while" in text and "regions {" in text and "func @body" in text
    ir = text.split("\n", 1)[1]
    assert print_function(parse_function(ir)) == ir
    verify_function(parse_function(ir), infer=infer)
