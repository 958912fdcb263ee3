"""The IR text form (printer + parser round trips, canonical form, parse errors)
and the IR verifier."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitflow.ir import (EFFECT, Function, IRParseError, IRVerifyError, Module, Node, SourceLoc,
                        TensorType, Value, VarType, bool_, float32, float64, int32, int64,
                        parse_function, parse_module, print_function, print_module, verify_function)
from jitflow.ops import get_op
from jitflow.ops.elementwise import ELEMENTWISE_BINARY, ELEMENTWISE_UNARY


def infer(op, types, attrs):
    return get_op(op).infer(types, attrs, op)


def T(dtype, *shape):
    return TensorType(dtype, tuple(shape))


def roundtrip(fn, **kw):
    text = print_function(fn, **kw)
    parsed = parse_function(text)
    assert print_function(parsed, **kw) == text
    return text, parsed


# ---- a hand-built model ----------------------------------------------------------------
def linear_model(names=("x", "theta", "e0"), file="/src/model.py", line0=12):
    x = Value(T(float32, None, 3), name=names[0])
    theta = Value(VarType(float32, (3, 1)), name=names[1])
    e0 = Value(EFFECT, name=names[2])
    read = Node("read_var", [theta, e0], {}, [T(float32, 3, 1), EFFECT],
                loc=SourceLoc(file, line0, "w = theta.read()"), scope="linear")
    mm = Node("matmul", [x, read.results[0]], {"transpose_a": False, "transpose_b": False},
              [T(float32, None, 1)], loc=SourceLoc(file, line0 + 1))
    mean = Node("reduce_mean", [mm.result], {"axes": (0, 1), "keepdims": False}, [T(float32)])
    step = Node("const", [], {"value": np.full((3, 1), 0.5, np.float32), "dtype": float32},
                [T(float32, 3, 1)], loc=SourceLoc(file, line0 + 3))
    upd = Node("assign_sub_var", [theta, step.result, read.results[1]], {}, [T(float32, 3, 1), EFFECT],
               loc=SourceLoc(file, line0 + 4), scope="train/sgd")
    read2 = Node("read_var", [theta, upd.results[1]], {}, [T(float32, 3, 1), EFFECT])
    nodes = [read, mm, mean, step, upd, read2]
    return Function("f", [x, theta, e0], nodes, [mean.result, read2.results[0], read2.results[1]])


EXPECTED_LINEAR = """\
func @f(%x: f32[?,3], %theta: !var<f32[3,1]>, %e0: !effect) -> (f32[], f32[3,1], !effect) {
  %0, %e1 = read_var %theta, %e0 : f32[3,1], !effect  # model.py:12 [linear]
  %1 = matmul %x, %0 {transpose_a=false, transpose_b=false} : f32[?,1]  # model.py:13
  %2 = reduce_mean %1 {axes=[0,1], keepdims=false} : f32[]
  %3 = const {dtype=dtype:f32, value=dense<f32[3,1]: [0.5, 0.5, 0.5]>} : f32[3,1]  # model.py:15
  %4, %e2 = assign_sub_var %theta, %3, %e1 : f32[3,1], !effect  # model.py:16 [train/sgd]
  %5, %e3 = read_var %theta, %e2 : f32[3,1], !effect
  return %2, %5, %e3
}
"""


def test_print_format():
    assert print_function(linear_model()) == EXPECTED_LINEAR


def test_roundtrip_model_keeps_structure():
    fn = linear_model()
    text, parsed = roundtrip(fn)
    verify_function(parsed, infer)
    assert [p.name for p in parsed.params] == ["x", "theta", "e0"]
    assert [n.op for n in parsed.nodes] == [n.op for n in fn.nodes]
    read, mm, mean, step, upd, read2 = parsed.nodes
    assert read.loc == SourceLoc("model.py", 12) and read.scope == "linear"
    assert upd.scope == "train/sgd" and mean.loc is None and mean.scope == ""
    assert mm.operands[1] is read.results[0] and upd.operands[2] is read.results[1]
    assert mean.attrs == {"axes": (0, 1), "keepdims": False}
    assert parsed.results[2] is read2.results[1]
    assert step.attrs["value"].dtype == np.float32
    # no locations: comments disappear, everything else stays
    bare = print_function(fn, locations=False)
    assert "#" not in bare and print_function(parse_function(bare), locations=False) == bare


def test_roundtrip_module():
    module = Module([linear_model(), linear_model(names=("a", "b", "c"))])
    module.functions[1].name = "g.step"
    text = print_module(module)
    parsed = parse_module(text)
    assert [f.name for f in parsed.functions] == ["f", "g.step"]
    assert print_module(parsed) == text
    assert parse_module("") == Module([])


# ---- constants and attributes ------------------------------------------------------------
ARRAY_DTYPES = [(np.float32, float32), (np.float64, float64), (np.int32, int32), (np.int64, int64),
                (np.bool_, bool_)]


def sample_array(np_dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np_dtype is np.bool_:
        return np.asarray(rng.random(shape) > 0.5)
    if np.issubdtype(np_dtype, np.integer):
        info = np.iinfo(np_dtype)
        out = rng.integers(-1000, 1000, shape).astype(np_dtype)
        if out.size >= 2:
            out.flat[0], out.flat[1] = info.min, info.max
        return out
    out = rng.standard_normal(shape).astype(np_dtype)
    if out.size >= 6:
        out.flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 1e-45, np.finfo(np_dtype).max]
    return out


def const_function(arrays):
    nodes = [Node("const", [], {"value": a, "dtype": d}, [TensorType(d, a.shape)],
                  loc=SourceLoc("consts.py", k + 1)) for k, (a, d) in enumerate(arrays)]
    return Function("consts", [], nodes, [n.result for n in nodes])


@pytest.mark.parametrize("np_dtype,dtype", ARRAY_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (2, 2), (16,), (17,), (784, 10), (2, 0, 3)])
def test_const_arrays_roundtrip(np_dtype, dtype, shape):
    array = sample_array(np_dtype, shape)
    fn = const_function([(array, dtype)])
    text, parsed = roundtrip(fn)
    verify_function(parsed, infer)
    back = parsed.nodes[0].attrs["value"]
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()          # bit-exact, -0.0 and nan included
    assert back.flags.writeable
    kind = "dense" if array.size <= 16 else "blob"
    assert f"value={kind}<{dtype.short}[" in text


def test_small_array_spelling():
    fn = const_function([(np.array([[1, 2], [3, 4]], np.float32), float32),
                         (np.array([True, False]), bool_),
                         (np.array([0.1, -0.0, np.nan, -np.inf, 1e-45], np.float32), float32)])
    text = print_function(fn)
    assert "dense<f32[2,2]: [1.0, 2.0, 3.0, 4.0]>" in text
    assert "dense<i1[2]: [true, false]>" in text
    assert "dense<f32[5]: [0.1, -0.0, nan, -inf, 1e-45]>" in text


ATTRS = {
    "int": 3, "neg": -7, "big": 2 ** 63 - 1, "zero": 0,
    "float": 0.1, "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"),
    "negzero": -0.0, "tiny": 1e-45, "denorm": 5e-324, "huge": 1.7976931348623157e308, "exp": 1e16,
    "t": True, "f": False, "none": None,
    "str": 'he said "hi"\n\ta\\b # not a comment', "uni": "ünïcode \x00\x7f \u2028 \U0001f600", "empty": "",
    "ints": (1, -2, 3), "floats": [0.5, float("nan"), -0.0, float("inf")], "nil": (),
    "shape": [None, 3], "nested": ((1, 2), (3,)),
    "f32": float32, "f64": float64, "i32": int32, "i64": int64, "i1": bool_,
    "np_scalars": (np.int64(4), np.float32(0.5), np.bool_(True)),
    "_device": "/cpu:0", "weird key!": 1,
}


def same_attr(a, b):
    if isinstance(a, (list, tuple)):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same_attr, a, b))
    if isinstance(a, (float, np.floating)):
        return isinstance(b, float) and (math.isnan(a) and math.isnan(b) or
                                          (a == b and math.copysign(1, a) == math.copysign(1, b)))
    if isinstance(a, (bool, np.bool_)):
        return isinstance(b, bool) and a == b
    return type(b) in (type(a), int) and a == b


def test_every_attr_kind_roundtrips():
    x = Value(T(float32, 2), name="x")
    node = Node("identity", [x], ATTRS, [T(float32, 2)], loc=SourceLoc("a b.py", 7), scope="odd [scope]")
    fn = Function("attrs", [x], [node], [node.result])
    text, parsed = roundtrip(fn)
    back = parsed.nodes[0]
    assert back.attrs.keys() == ATTRS.keys()
    for key, value in ATTRS.items():
        assert same_attr(value, back.attrs[key]), key
    assert back.loc == SourceLoc("a b.py", 7) and back.scope == "odd [scope]"
    assert "{_device=" in text and '"weird key!"=1' in text and "tiny=1e-45" in text
    assert "nan=nan" in text and "ninf=-inf" in text and "negzero=-0.0" in text
    assert "f32=dtype:f32" in text and "none=none" in text and "shape=[none,3]" in text


def test_zero_result_node_and_names():
    a = Value(T(float32), name="arg1")       # collides with the fallback name of param 1
    b = Value(T(float32), name=None)
    c = Value(T(float32), name="dup")
    d = Value(T(float32), name="dup")        # not unique: both fall back to argN
    e = Value(EFFECT, name="e0")
    f = Value(T(float32), name="not valid")
    noop = Node("no_op", [], {}, [], loc=SourceLoc("m.py", 3))
    add = Node("add", [a, b], {}, [T(float32)])
    fn = Function("names", [a, b, c, d, e, f], [noop, add], [add.result, e])
    text, parsed = roundtrip(fn)
    assert text.splitlines()[0] == ("func @names(%arg1: f32[], %arg1_1: f32[], %arg2: f32[], %arg3: f32[], "
                                    "%e0: !effect, %arg5: f32[]) -> (f32[], !effect) {")
    assert "  no_op  # m.py:3\n" in text
    assert parsed.nodes[0].results == [] and parsed.nodes[0].loc == SourceLoc("m.py", 3)


# ---- canonical form ------------------------------------------------------------------------
def test_canonical_ignores_names_and_locations():
    one = linear_model(names=("x", "theta", "e0"), file="a.py", line0=1)
    two = linear_model(names=("inputs", None, "tok"), file="/other/b.py", line0=90)
    two.nodes[0].scope = "other"
    assert print_function(one) != print_function(two)
    canon = print_function(one, canonical=True)
    assert canon == print_function(two, canonical=True)
    assert "#" not in canon and "%a0: f32[?,3]" in canon and "%0, %1 = read_var %a1, %a2" in canon
    assert print_function(parse_function(canon), canonical=True) == canon


def test_canonical_hashes_large_arrays():
    big = np.arange(784 * 10, dtype=np.float32).reshape(784, 10)
    text = print_function(const_function([(big, float32)]), canonical=True)
    assert "value=sha256<f32[784,10]: " in text and len(text) < 300
    other = big.copy()
    other[3, 3] += 1
    assert print_function(const_function([(other, float32)]), canonical=True) != text
    with pytest.raises(IRParseError, match="sha256"):
        parse_function(text)


# ---- parse errors ----------------------------------------------------------------------------
GOOD = EXPECTED_LINEAR


@pytest.mark.parametrize("text,line,message", [
    (GOOD.rstrip().rstrip("}"), 9, "expected '}'"),                                  # missing brace
    (GOOD.replace("matmul", "matmool"), 3, "unknown op 'matmool'"),
    (GOOD.replace("%x, %0", "%x, %9"), 3, "undefined value %9"),
    (GOOD.replace("%x, %0", "%x, %1"), 3, "undefined value %1"),                     # used before defined
    (GOOD.replace("%3 = const", "%2 = const"), 5, "value %2 is defined twice"),
    (GOOD.replace("f32[?,1]", "f33[?,1]"), 3, "unknown dtype 'f33'"),
    (GOOD.replace("f32[?,1]", "f32[?,1"), 3, "expected ',' or ']'"),
    (GOOD.replace("!var<f32[3,1]>", "!var<f32[3,1]"), 1, "expected '>'"),
    (GOOD.replace(": f32[]\n", "\n"), 4, "expected ':' after attributes"),
    (GOOD.replace("%0, %e1 = read_var %theta, %e0 :", "%0, %e1 = read_var %theta, %e0"), 2,
     "expected ':' after operands"),
    (GOOD.replace(": f32[3,1], !effect  # model.py:12", ": f32[3,1]  # model.py:12"), 2,
     "2 result names but 1 result types"),
    (GOOD.replace("return %2, %5, %e3", "return %2, %5"), 8,
     "return types (f32[], f32[3,1]) differ from the signature's (f32[], f32[3,1], !effect)"),
    (GOOD.replace("return %2, %5", "return %5, %2"), 8, "return types (f32[3,1], f32[], !effect) differ"),
    (GOOD.replace('{transpose_a=false', '{transpose_a=fals'), 3, "expected an attribute value"),
    (GOOD.replace("dense<f32[3,1]: [0.5, 0.5, 0.5]>", "dense<f32[3,1]: [0.5, 0.5]>"), 5, "needs 3 elements"),
    (GOOD.replace("0.5, 0.5, 0.5", "0.5, true, 0.5"), 5, "expected a float32 element"),
    (GOOD.replace("func @f", "fun @f"), 1, "expected 'func'"),
    (GOOD.replace("-> (", "("), 1, "expected '->'"),
    (GOOD.replace("[linear]", "[linear]\n  ]"), 3, "expected a node or 'return'"),
    (GOOD.replace('keepdims=false', 'keepdims="oops'), 4, "unterminated string"),
    (GOOD[:GOOD.index("%2 = reduce_mean") + 5], 4, "expected an op name, got end of input"),  # truncated
    (GOOD[:GOOD.index("return")], 8, "got end of input"),                                       # truncated
    (GOOD + GOOD, 10, "expected end of input after the function"),
])
def test_parse_errors(text, line, message):
    with pytest.raises(IRParseError) as info:
        parse_function(text)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"line {line}, col ")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_error_column():
    with pytest.raises(IRParseError, match=r"^line 3, col 19: undefined value %9$"):
        parse_function(GOOD.replace("%x, %0", "%x, %9"))


def test_parse_blob_errors():
    big = const_function([(np.zeros(20, np.float32), float32)])
    text = print_function(big)
    with pytest.raises(IRParseError, match="base64"):
        parse_function(text.replace("blob<f32[20]: ", "blob<f32[20]: !!"))
    with pytest.raises(IRParseError, match="needs 84 bytes, got 80"):
        parse_function(text.replace("f32[20]:", "f32[21]:").replace("-> (f32[20])", "-> (f32[21])")
                       .replace(": f32[20]  #", ": f32[21]  #"))


def test_known_ops_override():
    text = "func @g(%a: f32[]) -> (f32[]) {\n  %0 = frobnicate %a : f32[]\n  return %0\n}\n"
    with pytest.raises(IRParseError, match="unknown op 'frobnicate'"):
        parse_function(text)
    assert parse_function(text, known_ops={"frobnicate"}).nodes[0].op == "frobnicate"


# ---- verifier ------------------------------------------------------------------------------------
def test_verifier_accepts_model():
    verify_function(linear_model(), infer)
    verify_function(linear_model())


def test_verify_use_before_definition():
    fn = linear_model()
    fn.nodes[1], fn.nodes[2] = fn.nodes[2], fn.nodes[1]
    with pytest.raises(IRVerifyError, match=r"^reduce_mean: operand 0 \(%2\) is used before it is defined"):
        verify_function(fn)


def test_verify_value_from_another_function():
    fn, other = linear_model(), linear_model()
    fn.nodes[1].operands[0] = other.params[0]
    with pytest.raises(IRVerifyError, match="matmul at model.py:13: operand 0 .* not defined in the"):
        verify_function(fn)


def test_verify_defined_twice():
    fn = linear_model()
    fn.nodes.append(fn.nodes[2])
    with pytest.raises(IRVerifyError, match="reduce_mean: result 0 .* is defined twice") as info:
        verify_function(fn)
    assert info.value.node is fn.nodes[2]


def test_verify_infer_mismatch():
    fn = linear_model()
    fn.nodes[1].results[0].type = T(float32, None, 2)
    with pytest.raises(IRVerifyError, match=r"matmul at model.py:13: result 0 \(%1\) has type f32\[\?,2\], "
                                            r"but the op's inference rule gives f32\[\?,1\]"):
        verify_function(fn, infer)
    verify_function(fn)                                  # no infer: no type check
    fn.nodes[1].results[0].type = T(float64, None, 1)
    with pytest.raises(IRVerifyError, match="inference rule gives f32"):
        verify_function(fn, infer)
    fn.nodes[1].results[0].type = T(float32, 7, 1)       # None in the inferred type matches anything
    verify_function(fn, infer)


def test_verify_result_count_and_failed_inference():
    x = Value(T(float32, 2))
    node = Node("exp", [x], {}, [T(float32, 2), T(float32, 2)])
    fn = Function("f", [x], [node], [node.results[0]])
    with pytest.raises(IRVerifyError, match="exp: has 2 results but the op's inference rule gives 1"):
        verify_function(fn, infer)
    bad = Node("exp", [Value(T(int32, 2), name="i")], {}, [T(int32, 2)], loc=SourceLoc("m.py", 4))
    fn = Function("g", bad.operands, [bad], [bad.result])
    with pytest.raises(IRVerifyError, match="exp at m.py:4: type inference failed: TypeError"):
        verify_function(fn, infer)


def test_verify_effect_consumed_twice():
    fn = linear_model()
    fn.nodes[5].operands[1] = fn.nodes[0].results[1]     # second read forks the chain
    with pytest.raises(IRVerifyError, match=r"^read_var: effect %e1 is already consumed by "
                                            r"assign_sub_var 'train/sgd' at model.py:16"):
        verify_function(fn)


def test_verify_function_result_not_defined():
    fn, other = linear_model(), linear_model()
    fn.results[0] = other.nodes[2].result
    with pytest.raises(IRVerifyError, match="function @f: result 0 .* is not defined"):
        verify_function(fn)


# ---- property test: random elementwise chains ------------------------------------------------------
FLOAT_UNARY = [op for op in ELEMENTWISE_UNARY if op != "logical_not"]
BOOL_UNARY = ["logical_not"]
FLOAT_BINARY = [op for op in ELEMENTWISE_BINARY if not op.startswith("logical_")]
BOOL_BINARY = [op for op in ELEMENTWISE_BINARY if op.startswith("logical_")]


@st.composite
def elementwise_chains(draw):
    base = draw(st.lists(st.sampled_from([None, 1, 2, 3, 5]), max_size=3))
    n_params = draw(st.integers(1, 3))
    params = []
    for k in range(n_params):
        shape = tuple(d if draw(st.booleans()) else 1 for d in base)
        shape = shape[draw(st.integers(0, len(shape))):]
        name = draw(st.one_of(st.none(), st.sampled_from(["x", "y", "arg0", "e0", "w_1"])))
        params.append(Value(T(float32, *shape), name=name))
    pool, nodes = list(params), []
    for _ in range(draw(st.integers(1, 12))):
        floats = [v for v in pool if v.dtype == float32]
        bools = [v for v in pool if v.dtype == bool_]
        choices = [("u", FLOAT_UNARY, floats), ("b", FLOAT_BINARY, floats)]
        if bools:
            choices += [("u", BOOL_UNARY, bools), ("b", BOOL_BINARY, bools)]
        arity, ops, candidates = draw(st.sampled_from(choices))
        op = draw(st.sampled_from(ops))
        operands = [draw(st.sampled_from(candidates)) for _ in range(1 if arity == "u" else 2)]
        loc = draw(st.one_of(st.none(), st.builds(SourceLoc, st.sampled_from(["m.py", "x y.py"]),
                                                  st.integers(1, 10_000))))
        scope = draw(st.sampled_from(["", "dense", "a/b_1"]))
        node = Node(op, operands, {}, infer(op, [v.type for v in operands], {}), loc=loc, scope=scope)
        nodes.append(node)
        pool.append(node.result)
    results = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    return Function("chain", params, nodes, results)


@settings(max_examples=150, deadline=None)
@given(elementwise_chains())
def test_random_elementwise_chains_roundtrip(fn):
    verify_function(fn, infer)
    text, parsed = roundtrip(fn)
    verify_function(parsed, infer)
    canon = print_function(fn, canonical=True)
    assert print_function(parsed, canonical=True) == canon
    assert print_function(parse_function(canon), canonical=True) == canon
    assert [n.op for n in parsed.nodes] == [n.op for n in fn.nodes]
    assert [r.type for r in parsed.results] == [r.type for r in fn.results]


def test_mutated_text_fails_cleanly():
    """Random edits of valid text either parse (to a printing fixed point) or raise IRParseError."""
    import random
    x = Value(T(float32, 2), name="x")
    node = Node("identity", [x], ATTRS, [T(float32, 2)], loc=SourceLoc("a b.py", 7), scope="s [t]")
    texts = [GOOD, print_function(Function("attrs", [x], [node], [node.result])),
             print_function(const_function([(np.arange(20, dtype=np.int32), int32)]))]
    rng = random.Random(1234)
    alphabet = '%@!#"\\\n :,=[]{}<>()-?0123456789aefinx.+/_ü'
    for _ in range(1500):
        chars = list(rng.choice(texts))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                del chars[i]
            elif action < 0.7:
                chars[i] = rng.choice(alphabet)
            else:
                chars.insert(i, rng.choice(alphabet))
        text = "".join(chars)
        text = text[:rng.randrange(len(text))] if rng.random() < 0.2 else text
        try:
            fn = parse_function(text)
        except IRParseError:
            continue
        printed = print_function(fn)
        assert print_function(parse_function(printed)) == printed
