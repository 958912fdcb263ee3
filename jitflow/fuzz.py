"""Differential fuzzing: random well-typed graphs, run compiled and by an
independent numpy interpreter built from each op's registry `reference`.

Pieces (each usable on its own):

* `generate(draw, mode)` builds a random `Program`: a pure-data list of steps
  (an op or tf.* API call on earlier values) over random inputs (placeholders
  and constants of every dtype, shapes with 0- and 1-sized dims, broadcasting
  pairs, special values such as NaN, inf, -0.0, denormals, int extremes),
  with several fetches and intermediates used more than once (softmax-like and
  normalization patterns exercise fusion, materialization and row groups).
  `draw` is `RandomDraw(seed)` (plain numpy randomness, for the long run) or
  `HypothesisDraw` (through `programs()`, a hypothesis strategy that shrinks).
* `interpret(graph, feeds)` walks the graph's ops in creation order and
  evaluates each with its op's `reference` (never the compiled path). Beside
  each value it carries a first-order bound on how far a correct compiled
  result may legitimately be from the reference (`err`: reassociated float
  sums, BLAS order, transcendental ulps, denormals flushed to zero), and a mask
  of elements whose value is not determined (`unc`: a comparison, floor, cast
  or argmax of inexact operands that are within their error of a decision
  boundary, and everything computed from those). Exact inputs through
  correctly rounded ops (+ - * / sqrt, casts, layout ops, selects) must match
  bit for bit; ints and bools always exactly; NaN equals NaN.
* `check_program(program)` builds the graph, runs it through Session.run (or
  `tf.jit`), compares every fetch, and returns a `CaseResult`.
* `check_gradient(program)`: a float64 scalar loss over a random
  differentiable subgraph; tf.gradients (compiled) against central finite
  differences of the numpy interpreter along a random direction (cases whose
  one-sided differences disagree, i.e. a kink within the step, are skipped).
* `minimize(program, check)` shrinks a failing program: keeps one failing
  fetch, then cuts intermediate values into fed inputs (their reference value)
  while the failure persists.
* `run_long(minutes, seed, out_dir)` is `python -m jitflow fuzz`: it runs cases
  in a worker subprocess (a crash or hang in compiled code is recorded as a
  failure of the case that was running, and the worker restarts), writes
  `failures/<case>/{ir.txt, inputs.npz, program.json, program.py, report.txt}`
  and prints a summary (cases, ops covered, failures).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .ir.types import ALL_DTYPES, float64, int32
from .ops import get_op
from .ops.registry import ELEMENTWISE, LAYOUT

DTYPES = {d.name: d for d in ALL_DTYPES}
FLOAT_NAMES = ("float32", "float64")
INT_NAMES = ("int32", "int64")
NUMERIC_NAMES = FLOAT_NAMES + INT_NAMES
MAX_ELEMENTS = 2048
SAFETY = 4.0           # compiled results may be SAFETY x the propagated error bound away

UNARY_FLOAT = ("sqrt", "rsqrt", "exp", "log", "tanh", "sigmoid")
UNARY_NUMERIC = ("neg", "abs", "sign", "square", "relu", "identity")
BINARY_NUMERIC = ("add", "sub", "mul", "maximum", "minimum", "floordiv", "floormod", "pow")
BINARY_FLOAT = ("div",)
COMPARE = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
LOGICAL = ("logical_and", "logical_or")
POSITIVE_DOMAIN = ("sqrt", "rsqrt", "log")
REDUCE = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod")
DIFFERENTIABLE_UNARY = ("neg", "abs", "square", "relu", "sqrt", "rsqrt", "exp", "log", "tanh", "sigmoid")
DIFFERENTIABLE_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow")


# =====================================================================================
# randomness: one interface over numpy and hypothesis
# =====================================================================================
class RandomDraw:
    """Plain numpy randomness (the long run; no hypothesis needed)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:          # inclusive
        return int(self.rng.integers(lo, hi + 1))

    def bool(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, table: dict):
        keys = list(table)
        weights = np.array([table[k] for k in keys], float)
        return keys[int(self.rng.choice(len(keys), p=weights / weights.sum()))]


class HypothesisDraw(RandomDraw):
    """Draws through hypothesis (`draw` of an `st.composite`), so failures shrink:
    smaller ints, earlier choices (lists put the simplest option first), fewer steps."""

    def __init__(self, draw):
        from hypothesis import strategies as st
        self._draw, self._st = draw, st

    def int(self, lo, hi):
        return self._draw(self._st.integers(lo, hi))

    def bool(self, p=0.5):
        return self._draw(self._st.integers(0, 999)) >= int(round((1 - p) * 1000))

    def weighted(self, table: dict):
        keys = list(table)
        total = sum(table.values())
        pick = self.int(0, int(total * 100) - 1) / 100.0
        for k in keys:
            pick -= table[k]
            if pick < 0:
                return k
        return keys[-1]


# =====================================================================================
# programs: pure data, rebuilt into a fresh graph for every run
# =====================================================================================
@dataclass
class Program:
    """inputs: (name, dtype name, shape, kind 'feed'|'const', static shape or None) with `arrays`;
    a step is (builder, operand ids, params) and value i is the result of step i; the step
    ("input", (), {"input": k}) makes input k a value."""

    inputs: list = field(default_factory=list)
    arrays: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    fetches: list = field(default_factory=list)
    mode: str = "session"          # 'session' | 'jit'
    seed: object = None
    kind: str = "forward"          # 'forward' | 'grad'
    loss: dict | None = None       # grad: {"value": id, "weights": array}
    variables: list = field(default_factory=list)   # initial values of tf.Variables (session mode)

    def to_json(self) -> dict:
        return {"inputs": [list(i[:4]) + [None if i[4] is None else list(i[4])] for i in self.inputs],
                "steps": [[s[0], list(s[1]), _jsonable(s[2])] for s in self.steps],
                "fetches": list(self.fetches), "mode": self.mode, "seed": self.seed, "kind": self.kind,
                "loss": None if self.loss is None else {"value": self.loss["value"]},
                "variables": len(self.variables)}

    @staticmethod
    def from_json(data: dict, arrays) -> "Program":
        inputs = [(i[0], i[1], tuple(i[2]), i[3], None if i[4] is None else tuple(i[4])) for i in data["inputs"]]
        steps = [(s[0], tuple(s[1]), _unjson(s[2])) for s in data["steps"]]
        program = Program(inputs, list(arrays[:len(inputs)]), steps, list(data["fetches"]), data["mode"],
                          data.get("seed"), data.get("kind", "forward"))
        rest = list(arrays[len(inputs):])
        if data.get("loss") is not None:
            program.loss = {"value": data["loss"]["value"], "weights": rest.pop(0)}
        program.variables = rest[:data.get("variables", 0)]
        return program

    def n_values(self) -> int:
        return len(self.steps)

    def input_of(self, value: int):
        builder, _, p = self.steps[value]
        return p["input"] if builder == "input" else None


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def _unjson(x):
    if isinstance(x, dict):
        return {k: _unjson(v) for k, v in x.items()}
    if isinstance(x, list):
        return tuple(_unjson(v) for v in x)
    return x


def _decode_index(index):
    out = []
    for item in index:
        tag = item[0]
        if tag == "s":
            out.append(slice(item[1], item[2], item[3]))
        elif tag == "i":
            out.append(int(item[1]))
        elif tag == "n":
            out.append(None)
        else:
            out.append(Ellipsis)
    return tuple(out)


def _index_source(index) -> str:
    parts = []
    for item in index:
        tag = item[0]
        if tag == "s":
            a, b, c = item[1:]
            text = f"{'' if a is None else a}:{'' if b is None else b}"
            parts.append(text + ("" if c is None else f":{c}"))
        elif tag == "i":
            parts.append(str(item[1]))
        elif tag == "n":
            parts.append("None")
        else:
            parts.append("...")
    return ", ".join(parts) if parts else "()"


def _apply_step(tf, builder, xs, p, env=None):
    """One program step on tensors `xs` (the default graph is the one being built); `env`
    holds the program's tf.Variables ({"vars": {index: Variable}, "program": Program})."""
    from .framework.graph import get_default_graph
    if builder == "variable":
        k = p["var"]
        variable = tf.Variable(env["program"].variables[k], name=f"var{k}")
        env["vars"][k] = variable
        return variable.value()
    if builder == "read_value":
        return env["vars"][p["var"]].read_value()
    if builder == "update":
        variable = env["vars"][p["var"]]
        return getattr(variable, p["kind"])(xs[0])
    if builder == "op":
        attrs = dict(p.get("attrs", {}))
        if "dtype" in attrs:
            attrs["dtype"] = DTYPES[attrs["dtype"]]
        return get_default_graph().create_op(p["op"], list(xs), attrs).outputs[0]
    if builder == "cast":
        return tf.cast(xs[0], DTYPES[p["dtype"]])
    if builder == "reduce":
        fn = getattr(tf, p["op"])
        return fn(xs[0], axis=None if p["axis"] is None else list(p["axis"]), keepdims=p["keepdims"])
    if builder == "arg":
        return getattr(tf, p["op"])(xs[0], axis=p["axis"], output_type=DTYPES[p["output_type"]])
    if builder == "transpose":
        return tf.transpose(xs[0], list(p["perm"]))
    if builder == "reshape":
        return tf.reshape(xs[0], list(p["shape"]))
    if builder == "expand_dims":
        return tf.expand_dims(xs[0], p["axis"])
    if builder == "squeeze":
        return tf.squeeze(xs[0], None if p["axis"] is None else list(p["axis"]))
    if builder == "broadcast_to":
        return tf.broadcast_to(xs[0], list(p["shape"]))
    if builder == "getitem":
        return xs[0][_decode_index(p["index"])]
    if builder == "concat":
        return tf.concat(list(xs), p["axis"])
    if builder == "stack":
        return tf.stack(list(xs), p["axis"])
    if builder == "matmul":
        return tf.matmul(xs[0], xs[1], transpose_a=p["ta"], transpose_b=p["tb"])
    if builder == "add_n":
        return tf.add_n(list(xs))
    if builder == "where":
        return tf.where(xs[0], xs[1], xs[2])
    if builder == "softmax":
        return tf.nn.softmax(xs[0], axis=p["axis"])
    if builder == "log_softmax":
        return tf.nn.log_softmax(xs[0], axis=p["axis"])
    if builder == "one_hot":
        return tf.one_hot(xs[0], p["depth"], dtype=DTYPES[p["dtype"]])
    if builder == "inverse":
        return tf.matrix_inverse(xs[0])
    if builder == "random":
        fn = {"uniform": tf.random_uniform, "normal": tf.random_normal, "truncated_normal": tf.truncated_normal}
        return fn[p["op"]](list(p["shape"]), dtype=DTYPES[p["dtype"]], seed=p["seed"])
    raise ValueError(f"unknown fuzz builder {builder!r}")


def step_source(builder, names, p) -> str:
    """The tf.* line a step stands for (for reports and the generated repro script)."""
    a = ", ".join(names)
    if builder == "variable":
        return f"var{p['var']}.value()"
    if builder == "read_value":
        return f"var{p['var']}.read_value()"
    if builder == "update":
        return f"var{p['var']}.{p['kind']}({a})"
    if builder == "op":
        attrs = dict(p.get("attrs", {}))
        extra = f", {attrs!r}" if attrs else ""
        return f"tf.get_default_graph().create_op({p['op']!r}, [{a}]{extra}).outputs[0]"
    if builder == "cast":
        return f"tf.cast({a}, tf.{p['dtype']})"
    if builder == "reduce":
        axis = None if p["axis"] is None else list(p["axis"])
        return f"tf.{p['op']}({a}, axis={axis}, keepdims={p['keepdims']})"
    if builder == "arg":
        return f"tf.{p['op']}({a}, axis={p['axis']}, output_type=tf.{p['output_type']})"
    if builder == "transpose":
        return f"tf.transpose({a}, {list(p['perm'])})"
    if builder == "reshape":
        return f"tf.reshape({a}, {list(p['shape'])})"
    if builder == "expand_dims":
        return f"tf.expand_dims({a}, {p['axis']})"
    if builder == "squeeze":
        return f"tf.squeeze({a}, {None if p['axis'] is None else list(p['axis'])})"
    if builder == "broadcast_to":
        return f"tf.broadcast_to({a}, {list(p['shape'])})"
    if builder == "getitem":
        return f"{names[0]}[{_index_source(p['index'])}]"
    if builder in ("concat", "stack"):
        return f"tf.{builder}([{a}], {p['axis']})"
    if builder == "matmul":
        return f"tf.matmul({a}, transpose_a={p['ta']}, transpose_b={p['tb']})"
    if builder == "add_n":
        return f"tf.add_n([{a}])"
    if builder == "where":
        return f"tf.where({a})"
    if builder in ("softmax", "log_softmax"):
        return f"tf.nn.{builder}({a}, axis={p['axis']})"
    if builder == "one_hot":
        return f"tf.one_hot({a}, {p['depth']}, dtype=tf.{p['dtype']})"
    if builder == "inverse":
        return f"tf.matrix_inverse({a})"
    if builder == "random":
        fn = "random_uniform" if p["op"] == "uniform" else "random_" + p["op"] if p["op"] == "normal" \
            else "truncated_normal"
        return f"tf.{fn}({list(p['shape'])}, dtype=tf.{p['dtype']}, seed={p['seed']})"
    return f"{builder}({a}, {p!r})"


def program_source(program: Program) -> str:
    """A standalone script that rebuilds and runs the program (inputs from inputs.npz)."""
    lines = ["import numpy as np", "import jitflow as tf", "", "arrays = np.load('inputs.npz')", "feed = {}"]
    for i, (builder, ids, p) in enumerate(program.steps):
        if builder == "input":
            k = p["input"]
            name, dtype, shape, kind, static = program.inputs[k]
            if kind == "feed":
                dims = list(static) if static is not None else list(shape)
                lines.append(f"v{i} = tf.placeholder(tf.{dtype}, {dims}); feed[v{i}] = arrays['a{k}']")
            else:
                lines.append(f"v{i} = tf.constant(arrays['a{k}'], tf.{dtype})")
        else:
            if builder == "variable":
                lines.append(f"var{p['var']} = tf.Variable(arrays['var{p['var']}'], name='var{p['var']}')")
            lines.append(f"v{i} = " + step_source(builder, [f"v{j}" for j in ids], p))
    fetches = ", ".join(f"v{j}" for j in program.fetches)
    lines += ["with tf.Session() as sess:"]
    if program.variables:
        lines += ["    sess.run(tf.global_variables_initializer())"]
    lines += [f"    print(sess.run([{fetches}], feed))"]
    if program.variables:
        lines += ["    print(sess.run(tf.global_variables()))"]
    return "\n".join(lines) + "\n"


def build_graph(program: Program, tf=None):
    """A fresh Graph with the program: (graph, value tensors, fetch tensors, feed_dict)."""
    import jitflow as tf_module
    tf = tf or tf_module
    graph = tf.Graph()
    with graph.as_default():
        values, feed = _build_values(tf, program, None)
    return graph, values, [values[i] for i in program.fetches], feed


def program_variables(graph, program) -> list:
    """The program's tf.Variables that `graph` (built by build_graph) has, in program order."""
    return [graph._fuzz_vars[k] for k in sorted(graph._fuzz_vars)]


def initial_state(graph, program) -> dict:
    """Variable op name -> OV of its initial value (what the initializer sets)."""
    return {v.op.name: _input_value(np.asarray(program.variables[k], v.dtype.np))
            for k, v in sorted(graph._fuzz_vars.items())}


def _build_values(tf, program, args):
    """Value tensors and the feed dict; `args` (jit) are the feed inputs' tensors, in input order."""
    from .framework.graph import get_default_graph
    values, feed = [], {}
    env = {"vars": {}, "program": program}
    get_default_graph()._fuzz_vars = env["vars"]
    feed_inputs = [k for k, spec in enumerate(program.inputs) if spec[3] == "feed"]
    arg_of = dict(zip(feed_inputs, args)) if args is not None else {}
    for builder, ids, p in program.steps:
        if builder == "input":
            k = p["input"]
            name, dtype, shape, kind, static = program.inputs[k]
            array = program.arrays[k]
            if kind == "feed":
                if args is not None:
                    t = arg_of[k]
                else:
                    dims = list(static) if static is not None else list(shape)
                    t = tf.placeholder(DTYPES[dtype], dims, name=name)
                    feed[t] = array
            else:
                t = tf.constant(array, DTYPES[dtype], name=name)
            values.append(t)
        else:
            values.append(_apply_step(tf, builder, [values[i] for i in ids], p, env))
    return values, feed


# =====================================================================================
# the generator
# =====================================================================================
SHAPE_DIMS = {1: 4, 2: 4, 3: 4, 4: 2, 5: 2, 0: 1.2, 7: 1, 16: 1, 17: 1.5, 33: 0.7}


class GenerationError(Exception):
    """The generator built an op that graph building rejected (a generator bug, or an infer bug)."""


class Generator:
    def __init__(self, draw, kind="forward", allow_big=True):
        import jitflow as tf
        self.tf = tf
        self.d = draw
        self.kind = kind
        self.grad = kind == "grad"
        self.program = Program(kind=kind)
        self.graph = tf.Graph()
        self.tensors: list = []
        self.shapes: list[tuple] = []
        self.dtypes: list[str] = []
        self.static_known: list[bool] = []
        self.exact: list[bool] = []      # float value computed only by exactly reproducible ops
        self.data_rng = np.random.default_rng(draw.int(0, 2 ** 31 - 1))
        self.big = allow_big and not self.grad and draw.bool(0.03)
        self.max_elements = 400_000 if self.big else MAX_ELEMENTS
        self.main_dtype = "float64" if self.grad else draw.weighted(
            {"float32": 5, "float64": 2, "int32": 2, "int64": 1, "bool": 0.5})
        self.env = {"vars": {}, "program": self.program}
        self.graph._fuzz_vars = self.env["vars"]
        self.var_specs: list = []         # (dtype, shape) of program.variables

    # --- values
    def _add_value(self, tensor, shape, dtype, exact, static_known=True):
        self.tensors.append(tensor)
        self.shapes.append(tuple(shape))
        self.dtypes.append(dtype)
        self.static_known.append(static_known)
        self.exact.append(exact)
        return len(self.tensors) - 1

    def new_input(self, dtype: str, shape, kind=None, array=None) -> int:
        shape = tuple(int(d) for d in shape)
        if kind is None:
            kind = "feed" if (self.grad or self.d.bool(0.7)) else "const"
        array = self.random_array(dtype, shape) if array is None else np.asarray(array, dtype)
        static = None
        if kind == "feed" and not self.grad and shape and self.d.bool(0.15):
            static = tuple(None if self.d.bool(0.5) else d for d in shape)
        k = len(self.program.inputs)
        self.program.inputs.append((f"in{k}", dtype, shape, kind, static))
        self.program.arrays.append(array)
        with self.graph.as_default():
            if kind == "feed":
                t = self.tf.placeholder(DTYPES[dtype], list(static) if static is not None else list(shape))
            else:
                t = self.tf.constant(array, DTYPES[dtype])
        self.program.steps.append(("input", (), {"input": k}))
        return self._add_value(t, shape, dtype, True, static is None or all(d is not None for d in static))

    def random_array(self, dtype: str, shape) -> np.ndarray:
        rng = self.data_rng
        n = int(np.prod(shape, dtype=np.int64))
        if dtype == "bool":
            return np.array(rng.random(shape) < rng.random())
        if dtype in INT_NAMES:
            style = rng.integers(0, 10)
            if style < 7:
                a = rng.integers(-9, 10, size=shape)
            elif style < 9:
                a = rng.integers(-3, 4, size=shape)
            else:
                info = np.iinfo(dtype)
                a = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
            a = np.array(a, dtype=dtype)
            if n and not self.grad and rng.random() < 0.15:
                info = np.iinfo(dtype)
                specials = np.array([0, 1, -1, info.min, info.max, 2, -2], dtype)
                mask = rng.random(shape) < 0.2
                a[mask] = rng.choice(specials, size=int(mask.sum()))
            return a
        if self.grad:
            return np.array(rng.standard_normal(shape) * rng.choice([0.5, 1.0, 2.0]), dtype=dtype)
        style = rng.integers(0, 10)
        if style < 5:
            a = rng.standard_normal(shape) * rng.choice([1.0, 3.0])
        elif style < 7:     # small integers and halves: ties, exact comparisons, floor boundaries
            a = rng.integers(-6, 7, size=shape) / rng.choice([1.0, 2.0])
        elif style < 9:
            a = rng.uniform(0.1, 4.0, size=shape)
        else:
            a = rng.standard_normal(shape) * 10.0 ** rng.integers(-20, 20)
        with np.errstate(over="ignore"):
            a = np.array(a, dtype=dtype)
        if n and rng.random() < 0.2:
            info = np.finfo(dtype)
            specials = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, info.tiny / 4, info.max,
                                 0.5], dtype)
            mask = rng.random(shape) < 0.15
            a[mask] = rng.choice(specials, size=int(mask.sum()))
        return a

    def random_shape(self, rank=None) -> tuple:
        d = self.d
        if rank is None:
            rank = d.weighted({0: 1, 1: 3, 2: 4, 3: 2, 4: 1})
        if self.big and rank >= 1 and d.bool(0.5):
            dims = [d.choice((128, 300, 513, 1024)) if k < 2 else d.choice((1, 2, 3)) for k in range(rank)]
            dims = tuple(dims)
            if 0 < int(np.prod(dims)) <= self.max_elements:
                return dims
        for _ in range(10):
            shape = tuple(int(d.weighted(SHAPE_DIMS)) for _ in range(rank))
            if self.grad:
                shape = tuple(max(1, s) for s in shape)
            if int(np.prod(shape, dtype=np.int64)) <= MAX_ELEMENTS:
                return shape
        return tuple(1 for _ in range(rank))

    def pick(self, dtypes, pred=None, fresh_shape=None) -> int:
        """An existing value of one of `dtypes` (recent ones preferred), or a new input."""
        candidates = [i for i in range(len(self.tensors)) if self.dtypes[i] in dtypes
                      and (pred is None or pred(i))]
        computed = [i for i in candidates if self.program.input_of(i) is None]
        if computed and self.d.bool(0.7):
            candidates = computed
        if candidates and self.d.bool(0.85):
            if self.d.bool(0.6):
                return candidates[-1 - self.d.int(0, min(2, len(candidates) - 1))]
            return self.d.choice(candidates)
        dtype = self.main_dtype if self.main_dtype in dtypes else self.d.choice(tuple(dtypes))
        return self.new_input(dtype, fresh_shape if fresh_shape is not None else self.random_shape())

    def compatible_shape(self, shape) -> tuple:
        """A shape that broadcasts with `shape` (dims kept, set to 1, dropped or added in front)."""
        d = self.d
        out = []
        for k, n in enumerate(shape):
            if n != 1 and d.bool(0.25):
                out.append(1)
            elif n == 1 and d.bool(0.2) and not self.grad:
                out.append(d.choice((2, 3, 0)))
            else:
                out.append(n)
        if out and d.bool(0.3):
            out = out[d.int(1, len(out)):]
        if d.bool(0.1) and len(out) >= len(shape) and len(out) < 4:
            out = [d.choice((1, 2, 3))] + out
        result = tuple(out)
        full = np.broadcast_shapes(tuple(shape), result)
        if int(np.prod(full, dtype=np.int64)) > self.max_elements:
            return tuple(shape)
        return result

    def partner(self, i: int, dtypes=None) -> int:
        """A value broadcast-compatible with value i (same dtype unless `dtypes`)."""
        dtypes = dtypes or (self.dtypes[i],)
        shape = self.shapes[i]

        def ok(j):
            try:
                full = np.broadcast_shapes(shape, self.shapes[j])
            except ValueError:
                return False
            return int(np.prod(full, dtype=np.int64)) <= self.max_elements
        candidates = [j for j in range(len(self.tensors)) if self.dtypes[j] in dtypes and ok(j)]
        if candidates and self.d.bool(0.5):
            return self.d.choice(candidates)
        return self.new_input(self.d.choice(tuple(dtypes)), self.compatible_shape(shape))

    # --- steps
    def emit(self, builder, ids, params, exact=False) -> int:
        ids = tuple(int(i) for i in ids)
        with self.graph.as_default():
            try:
                tensor = _apply_step(self.tf, builder, [self.tensors[i] for i in ids], params, self.env)
            except (ValueError, TypeError) as exc:
                shapes = [self.shapes[i] for i in ids]
                raise GenerationError(f"{step_source(builder, [f'v{i}' for i in ids], params)} on shapes "
                                      f"{shapes}: {exc}") from exc
        dims = tensor.shape.dims
        try:
            shape = self._runtime_shape(builder, ids, params, dims)
        except (ValueError, TypeError) as exc:     # static unknown dims hid an incompatibility
            raise GenerationError(f"{step_source(builder, [f'v{i}' for i in ids], params)}: {exc}") from exc
        self.program.steps.append((builder, ids, params))
        known = dims is not None and all(x is not None for x in dims)
        return self._add_value(tensor, shape, tensor.dtype.name, exact, known)

    def _runtime_shape(self, builder, ids, params, dims):
        """The shape the value will have when run (static dims may be unknown)."""
        if dims is not None and all(x is not None for x in dims):
            return tuple(dims)
        # evaluate with the reference on zero arrays of the runtime shapes (cheap: shapes only)
        zeros = [np.zeros(self.shapes[i], DTYPES[self.dtypes[i]].np) for i in ids]
        import jitflow as tf
        g = tf.Graph()
        with g.as_default():
            xs = [tf.placeholder(DTYPES[self.dtypes[i]], list(self.shapes[i])) for i in ids]
            out = _apply_step(tf, builder, xs, params)
        values = interpret(g, dict(zip(xs, zeros)))
        return tuple(values[id(out)].val.shape)

    def step(self):
        d = self.d
        if self.grad:
            table = {"unary": 6, "binary": 6, "reduce": 3, "layout": 3, "matmul": 1, "softmax": 1.2,
                     "normalize": 0.6, "select": 1, "concat": 0.7, "add_n": 0.5}
        else:
            table = {"variable": 0.3, "read": 0.4 if self.var_specs else 0, "update": 1.0, "sgd": 0.3,
                     "unary": 5, "binary": 6, "compare": 2, "select": 1.2, "cast": 2.5, "reduce": 3,
                     "arg": 0.8, "layout": 3, "slice": 2, "concat": 1, "matmul": 1, "add_n": 0.6,
                     "softmax": 2, "normalize": 1, "one_hot": 0.4, "logical": 0.5, "inverse": 0.2,
                     "random": 0.3}
        what = d.weighted(table)
        getattr(self, "step_" + what)()

    # variables: initial reads, fresh reads, updates (effects run in graph order)
    def step_variable(self, dtype=None, shape=None) -> int:
        dtype = dtype or (self.main_dtype if self.d.bool(0.8) else self.d.choice(tuple(DTYPES)))
        shape = tuple(shape) if shape is not None else self.random_shape()
        k = len(self.program.variables)
        self.program.variables.append(self.random_array(dtype, shape))
        self.var_specs.append((dtype, shape))
        return self.emit("variable", [], {"var": k}, True)

    def pick_var(self, pred=None) -> int:
        ks = [k for k, spec in enumerate(self.var_specs) if pred is None or pred(*spec)]
        if ks and self.d.bool(0.8):
            return self.d.choice(ks)
        self.step_variable()
        return len(self.var_specs) - 1

    def step_read(self):
        return self.emit("read_value", [], {"var": self.pick_var()}, True)

    def step_update(self):
        d = self.d
        k = self.pick_var()
        dtype, shape = self.var_specs[k]
        kind = "assign" if dtype == "bool" else d.choice(("assign", "assign_add", "assign_sub"))
        style = d.int(0, 2)
        if style == 0:      # the variable's own value, read at other indices: an in-place hazard
            read = self.emit("read_value", [], {"var": k}, True) if d.bool(0.5) else None
            if read is None:
                read = next(i for i, (b, _, p) in enumerate(self.program.steps) if b == "variable" and p["var"] == k)
            value = read
            flips = [a for a, n in enumerate(shape) if n > 1]
            if flips:
                axis = d.choice(flips)
                index = tuple(("s", None, None, -1 if a == axis else None) for a in range(len(shape)))
                value = self.emit("getitem", [read], {"index": index}, True)
            if dtype != "bool" and d.bool(0.5):
                other = self.pick((dtype,), pred=lambda i: self.shapes[i] == shape and self.static_known[i],
                                  fresh_shape=shape)
                if self.shapes[other] == shape:
                    value = self.emit("op", [value, other], {"op": d.choice(("add", "mul", "maximum"))})
        elif style == 1:    # any value of the variable's dtype and shape
            value = self.pick((dtype,), pred=lambda i: self.shapes[i] == shape and self.static_known[i],
                              fresh_shape=shape)
            if self.shapes[value] != shape or self.dtypes[value] != dtype:
                value = self.new_input(dtype, shape)
        else:
            value = self.new_input(dtype, shape)
        return self.emit("update", [value], {"var": k, "kind": kind}, False)

    def step_sgd(self):
        """var -= c * (a @ b): one GEMM into the variable (alpha = -c, beta = 1) when nothing in
        between reads it; a, b sometimes read the variable itself (then it must not fuse)."""
        d = self.d
        dtype = d.choice(FLOAT_NAMES)
        k = self.pick_var(lambda dt, shape: dt == dtype and len(shape) == 2 and 0 not in shape)
        dtype, shape = self.var_specs[k]
        if len(shape) != 2 or 0 in shape or dtype not in FLOAT_NAMES:
            self.step_variable(dtype, (d.choice((2, 3, 17)), d.choice((2, 5, 16))))
            k = len(self.var_specs) - 1
            dtype, shape = self.var_specs[k]
        m, n = shape
        inner = d.choice((1, 3, 8, 33))
        a = self.new_input(dtype, (m, inner))
        b = self.new_input(dtype, (inner, n))
        if m == n and d.bool(0.3):
            a = self.emit("read_value", [], {"var": k}, True) if d.bool(0.5) else \
                next(i for i, (bb, _, p) in enumerate(self.program.steps) if bb == "variable" and p["var"] == k)
            b = self.new_input(dtype, (n, n))
        product = self.emit("matmul", [a, b], {"ta": False, "tb": False})
        c = self.new_input(dtype, (), kind="const", array=d.choice((0.5, 0.01, -2.0, 1.0)))
        scaled = self.emit("op", [c, product] if d.bool(0.5) else [product, c], {"op": "mul"})
        if d.bool(0.2):   # something in between reads the variable: no fusion allowed
            self.emit("read_value", [], {"var": k}, True)
        return self.emit("update", [scaled], {"var": k, "kind": d.choice(("assign_sub", "assign_add"))})

    # elementwise
    def step_unary(self):
        d = self.d
        if self.grad:
            op = d.choice(DIFFERENTIABLE_UNARY)
        else:
            op = d.choice(UNARY_NUMERIC + UNARY_FLOAT + ("logical_not",))
        if op == "logical_not":
            x = self.pick(("bool",))
            return self.emit("op", [x], {"op": op}, True)
        allowed = FLOAT_NAMES if op in UNARY_FLOAT else NUMERIC_NAMES
        x = self.pick(allowed)
        if self.dtypes[x] not in allowed:
            x = self.emit("cast", [x], {"dtype": "float32" if self.main_dtype != "float64" else "float64"},
                          True)
        if op in POSITIVE_DOMAIN and (self.grad or d.bool(0.7)):
            x = self.positive(x)
        if op == "exp" and (self.grad or d.bool(0.5)):
            x = self.emit("op", [x], {"op": "tanh"})
        exact = self.exact[x] and op in ("neg", "abs", "relu", "sign", "square", "sqrt", "rsqrt", "identity")
        return self.emit("op", [x], {"op": op}, exact)

    def positive(self, x):
        """square(x) + c: a strictly positive value (safe for log, sqrt, division)."""
        sq = self.emit("op", [x], {"op": "square"}, self.exact[x])
        c = self.new_input(self.dtypes[x], (), kind="const", array=self.data_rng.uniform(0.25, 2.25))
        return self.emit("op", [sq, c], {"op": "add"}, self.exact[x])

    def step_binary(self):
        d = self.d
        if self.grad:
            op = d.choice(DIFFERENTIABLE_BINARY)
        else:
            op = d.choice(BINARY_NUMERIC + BINARY_FLOAT)
        allowed = FLOAT_NAMES if op == "div" or self.grad else NUMERIC_NAMES
        x = self.pick(allowed)
        y = self.partner(x)
        if op == "pow" and (self.grad or (DTYPES[self.dtypes[x]].is_floating and d.bool(0.6))):
            x = self.positive(x)
        if op == "div" and (self.grad or d.bool(0.6)):
            y = self.positive(y)
        if d.bool(0.5) and op not in ("pow", "div"):
            x, y = y, x
        exact = self.exact[x] and self.exact[y] and op not in ("pow",)
        return self.emit("op", [x, y], {"op": op}, exact)

    def step_compare(self):
        x = self.pick(NUMERIC_NAMES + ("bool",), pred=lambda i: self.exact[i] or self.d.bool(0.3))
        op = self.d.choice(COMPARE if self.dtypes[x] != "bool" else ("equal", "not_equal"))
        y = self.partner(x)
        if self.dtypes[x] != "bool" and self.d.bool(0.4):    # many exact ties
            y = self.emit("op", [x, y], {"op": self.d.choice(("maximum", "minimum"))}, self.exact[x] and self.exact[y])
        return self.emit("op", [x, y], {"op": op}, True)

    def step_logical(self):
        x = self.pick(("bool",))
        y = self.partner(x)
        return self.emit("op", [x, y], {"op": self.d.choice(LOGICAL)}, True)

    def step_select(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES + ("bool",))
        y = self.partner(x)
        if self.grad:   # a condition on the inputs only: no kinks from it
            c_src = self.new_input("float64", self.compatible_shape(self.shapes[x]), kind="const")
            zero = self.new_input("float64", (), kind="const", array=0.0)
            c = self.emit("op", [c_src, zero], {"op": "greater"}, True)
        else:
            c = self.partner(x, dtypes=("bool",))
            try:
                np.broadcast_shapes(self.shapes[c], self.shapes[x], self.shapes[y])
            except ValueError:      # compatible with x but not with y
                c = self.new_input("bool", self.compatible_shape(np.broadcast_shapes(self.shapes[x], self.shapes[y])))
        if d.bool(0.5):
            return self.emit("where", [c, x, y], {}, self.exact[x] and self.exact[y])
        return self.emit("op", [c, x, y], {"op": "select"}, self.exact[x] and self.exact[y])

    def step_cast(self):
        if self.d.bool(0.4):    # float -> int/bool: truncation, saturation, NaN (special values are inputs)
            x = self.pick(FLOAT_NAMES, pred=lambda i: self.exact[i])
            if self.dtypes[x] in FLOAT_NAMES:
                return self.emit("cast", [x], {"dtype": self.d.choice(INT_NAMES + ("bool",))}, True)
        x = self.pick(tuple(DTYPES))
        target = self.d.choice(tuple(n for n in DTYPES if n != self.dtypes[x]))
        return self.emit("cast", [x], {"dtype": target}, self.exact[x])

    def step_add_n(self):
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES)
        others = []
        for _ in range(self.d.int(1, 3)):
            j = self.pick((self.dtypes[x],), pred=lambda i: self.shapes[i] == self.shapes[x]
                          and self.static_known[i] == self.static_known[x], fresh_shape=self.shapes[x])
            if self.shapes[j] != self.shapes[x]:
                j = self.new_input(self.dtypes[x], self.shapes[x])
            others.append(j)
        ids = [x] + others
        return self.emit("add_n", ids, {}, all(self.exact[i] for i in ids))

    # reductions
    def step_reduce(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES, pred=lambda i: len(self.shapes[i]) >= 1)
        rank = len(self.shapes[x])
        op = d.choice(REDUCE)
        if op == "reduce_prod" and DTYPES[self.dtypes[x]].is_floating and d.bool(0.7):
            x = self.emit("op", [x], {"op": "tanh"})        # keep products of many elements finite
        if rank == 0 or d.bool(0.15):
            axis = None
        else:
            k = d.int(1, rank)
            axes = sorted({d.int(-rank, rank - 1) for _ in range(k)})
            axis = tuple(axes)
        keepdims = d.bool(0.5)
        exact = self.exact[x] and op in ("reduce_max", "reduce_min")
        return self.emit("reduce", [x], {"op": op, "axis": axis, "keepdims": keepdims}, exact)

    def step_arg(self):
        x = self.pick(NUMERIC_NAMES, pred=lambda i: len(self.shapes[i]) >= 1 and 0 not in self.shapes[i]
                      and self.static_known[i])
        shape = self.shapes[x]
        if not shape or 0 in shape:
            x = self.new_input(self.main_dtype if self.main_dtype in NUMERIC_NAMES else "float32",
                               self.random_shape(self.d.int(1, 3)))
            shape = self.shapes[x]
            if 0 in shape:
                return None
        axis = self.d.int(-len(shape), len(shape) - 1)
        return self.emit("arg", [x], {"op": self.d.choice(("argmax", "argmin")), "axis": axis,
                                      "output_type": self.d.choice(("int64", "int32"))}, True)

    # layout
    def step_layout(self):
        d = self.d
        dtypes = FLOAT_NAMES if self.grad else tuple(DTYPES)
        x = self.pick(dtypes)
        shape = self.shapes[x]
        exact = self.exact[x]
        choice = d.weighted({"transpose": 3, "reshape": 3, "broadcast_to": 2, "expand_dims": 1,
                             "squeeze": 1 if 1 in shape and self.static_known[x] else 0})
        if choice == "transpose":
            perm = list(range(len(shape)))
            for k in range(len(perm) - 1, 0, -1):
                j = d.int(0, k)
                perm[k], perm[j] = perm[j], perm[k]
            return self.emit("transpose", [x], {"perm": tuple(perm)}, exact)
        if choice == "reshape":
            if not self.static_known[x]:
                return self.emit("reshape", [x], {"shape": (-1,)}, exact)
            n = int(np.prod(shape, dtype=np.int64))
            new = self.factor(n)
            if new and n and d.bool(0.3):
                new[d.int(0, len(new) - 1)] = -1
            return self.emit("reshape", [x], {"shape": tuple(new)}, exact)
        if choice == "broadcast_to":
            target = [n if n != 1 or not d.bool(0.5) else d.choice((2, 3, 0)) for n in shape]
            if len(target) < 4 and d.bool(0.4):
                target = [d.choice((1, 2, 3))] + target
            if self.grad:
                target = [max(1, t) for t in target]
            if int(np.prod(target, dtype=np.int64)) > self.max_elements or not self.static_known[x]:
                target = list(shape)
            return self.emit("broadcast_to", [x], {"shape": tuple(target)}, exact)
        if choice == "expand_dims":
            return self.emit("expand_dims", [x], {"axis": d.int(-len(shape) - 1, len(shape))}, exact)
        ones = [k for k, n in enumerate(shape) if n == 1]
        axis = None if d.bool(0.3) else (d.choice(ones),)
        return self.emit("squeeze", [x], {"axis": axis}, exact)

    def factor(self, n: int) -> list:
        """A random shape with n elements."""
        d = self.d
        if n == 0:
            dims = [0] + [d.choice((1, 2, 3)) for _ in range(d.int(0, 2))]
            perm_at = d.int(0, len(dims) - 1)
            dims[0], dims[perm_at] = dims[perm_at], dims[0]
            return dims
        dims, rest = [], n
        for _ in range(d.int(0, 3)):
            divisors = [k for k in range(1, min(rest, 40) + 1) if rest % k == 0]
            k = d.choice(divisors)
            dims.append(k)
            rest //= k
        dims.append(rest)
        order = list(range(len(dims)))
        for k in range(len(order) - 1, 0, -1):
            j = d.int(0, k)
            order[k], order[j] = order[j], order[k]
        return [dims[k] for k in order]

    def step_slice(self):
        d = self.d
        x = self.pick(tuple(DTYPES), pred=lambda i: len(self.shapes[i]) >= 1 and self.static_known[i])
        if not self.static_known[x] or not self.shapes[x]:
            x = self.new_input(self.main_dtype, self.random_shape(d.int(1, 3)))
        shape = self.shapes[x]
        index = []
        for n in shape:
            r = d.int(0, 9)
            if r < 2 and n > 0:
                index.append(("i", d.int(-n, n - 1)))
            elif r < 3:
                index.append(("s", None, None, None))
            else:
                step = d.choice((1, -1, 2, -2, 3, -3, 1)) if not d.bool(0.1) else d.choice((5, -7))
                style = d.int(0, 3)
                if style == 0:      # the whole dim, strided
                    start, stop = None, None
                elif style == 1:    # a long run: from near one end towards the other
                    near_end, near_start = d.int(-2, -1), d.int(0, 1)
                    start, stop = (near_start, None) if step > 0 else (near_end, None)
                    if d.bool(0.5):
                        stop = -n - 1 if step < 0 and d.bool(0.5) else (near_end if step > 0 else near_start)
                else:               # anything, including empty and out-of-range bounds
                    start = None if d.bool(0.3) else d.int(-n - 2, n + 2)
                    stop = None if d.bool(0.3) else d.int(-n - 2, n + 2)
                index.append(("s", start, stop, step))
            if d.bool(0.1):
                index.append(("n",))
        if len(index) > 1 and d.bool(0.15):
            k = d.int(0, len(index) - 1)
            index = index[:k] + [("e",)]
        if self.grad and any(item[0] == "i" for item in index) and d.bool(0.5):
            index = [("s", None, None, -1) if item[0] == "i" else item for item in index]
        return self.emit("getitem", [x], {"index": tuple(index)}, self.exact[x])

    def step_concat(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else tuple(DTYPES),
                      pred=lambda i: len(self.shapes[i]) >= 1 and self.static_known[i])
        shape = self.shapes[x]
        if not shape or not self.static_known[x]:
            x = self.new_input(self.main_dtype, self.random_shape(d.int(1, 3)))
            shape = self.shapes[x]
        axis = d.int(-len(shape), len(shape) - 1)
        parts = [x]
        for _ in range(d.int(1, 3)):
            other = list(shape)
            other[axis % len(shape)] = d.choice((0, 1, 2, 3)) if not self.grad else d.choice((1, 2, 3))
            match = [j for j in range(len(self.tensors)) if self.dtypes[j] == self.dtypes[x]
                     and self.shapes[j] == tuple(other) and self.static_known[j]]
            parts.append(d.choice(match) if match and d.bool(0.5) else self.new_input(self.dtypes[x], other))
        if int(np.prod(shape)) * len(parts) > self.max_elements:
            parts = parts[:2]
        exact = all(self.exact[i] for i in parts)
        if d.bool(0.2) and all(self.shapes[i] == shape for i in parts):
            return self.emit("stack", parts, {"axis": d.int(-len(shape) - 1, len(shape))}, exact)
        return self.emit("concat", parts, {"axis": axis}, exact)

    def step_matmul(self):
        d = self.d
        dtypes = FLOAT_NAMES if self.grad else NUMERIC_NAMES
        x = self.pick(dtypes, pred=lambda i: len(self.shapes[i]) == 2)
        if len(self.shapes[x]) != 2:
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in dtypes else "float32",
                               (d.weighted({1: 1, 2: 2, 3: 2, 5: 1, 0: 0.5 if not self.grad else 0, 17: 1}),
                                d.weighted({1: 1, 2: 2, 4: 2, 0: 0.5 if not self.grad else 0, 33: 1})))
        ta, tb = d.bool(0.3), d.bool(0.3)
        m, k = self.shapes[x][::-1] if ta else self.shapes[x]
        n = d.weighted({1: 1, 2: 2, 3: 2, 7: 1, 0: 0.3 if not self.grad else 0})
        want = (n, k) if tb else (k, n)
        match = [j for j in range(len(self.tensors)) if self.dtypes[j] == self.dtypes[x] and self.shapes[j] == want
                 and self.static_known[j]]
        y = d.choice(match) if match and d.bool(0.5) else self.new_input(self.dtypes[x], want)
        return self.emit("matmul", [x, y], {"ta": ta, "tb": tb}, False)

    def step_inverse(self):
        d = self.d
        n = d.int(1, 5)
        dtype = d.choice(FLOAT_NAMES)
        x = self.pick((dtype,), pred=lambda i: self.shapes[i] == (n, n), fresh_shape=(n, n))
        if self.shapes[x] != (n, n):
            x = self.new_input(dtype, (n, n))
        t = self.emit("op", [x], {"op": "tanh"})
        eye = self.new_input(dtype, (n, n), kind="const", array=np.eye(n) * (n + 1.5))
        m = self.emit("op", [t, eye], {"op": "add"})
        return self.emit("inverse", [m], {})

    def step_one_hot(self):
        d = self.d
        x = self.pick(INT_NAMES, pred=lambda i: len(self.shapes[i]) <= 2 and self.static_known[i])
        if len(self.shapes[x]) > 2 or not self.static_known[x]:
            x = self.new_input("int32", self.random_shape(d.int(0, 2)))
        return self.emit("one_hot", [x], {"depth": d.choice((1, 3, 4, 10)),
                                          "dtype": d.choice(("float32", "float64", "int32"))}, True)

    def step_random(self):
        d = self.d
        shape = self.random_shape()
        return self.emit("random", [], {"op": d.choice(("uniform", "normal", "truncated_normal")), "shape": shape,
                                        "dtype": d.choice(FLOAT_NAMES), "seed": d.int(0, 1000)}, False)

    # patterns that reuse intermediates
    def step_softmax(self):
        d = self.d
        x = self.pick(FLOAT_NAMES, pred=lambda i: len(self.shapes[i]) >= 1)
        if not self.shapes[x] or d.bool(0.5):     # rows long enough for row-group fusion
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in FLOAT_NAMES else "float32", self.row_shape())
        rank = len(self.shapes[x])
        axis = d.choice((-1, -1, rank - 1, 0)) if rank > 1 else -1
        style = d.int(0, 3)
        if style == 0:
            return self.emit("softmax", [x], {"axis": axis})
        if style == 1:
            return self.emit("log_softmax", [x], {"axis": axis})
        m = self.emit("reduce", [x], {"op": "reduce_max", "axis": (axis,), "keepdims": True}, self.exact[x])
        shifted = self.emit("op", [x, m], {"op": "sub"}, self.exact[x])
        e = self.emit("op", [shifted], {"op": "exp"})
        s = self.emit("reduce", [e], {"op": "reduce_sum", "axis": (axis,), "keepdims": True})
        if rank >= 2 and self.static_known[s] and d.bool(0.4):
            # read a row-wise result across rows (reversed rows, or transposed): row-group fusion
            # must not put such a reader in the same loop over rows as the producer
            if d.bool(0.5):
                s = self.emit("getitem", [s], {"index": (("s", None, None, -1),)})
            else:
                s = self.emit("reduce", [s], {"op": "reduce_max", "axis": (0,), "keepdims": True})
        if style == 2:
            out = self.emit("op", [e, s], {"op": "div"})
        else:
            out = self.emit("op", [shifted, self.emit("op", [s], {"op": "log"})], {"op": "sub"})
        if d.bool(0.5):
            self.program.fetches.append(d.choice((m, e, s)))
        return out

    def row_shape(self) -> tuple:
        d = self.d
        rows = d.choice((2, 3, 5, 8))
        if d.bool(0.3):
            return (rows, d.choice((2, 4)), d.choice((16, 9)))
        return (rows, d.choice((16, 17, 33, 40, 4)))

    def step_normalize(self):
        d = self.d
        x = self.pick(FLOAT_NAMES, pred=lambda i: len(self.shapes[i]) >= 2)
        if len(self.shapes[x]) < 2 or d.bool(0.5):
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in FLOAT_NAMES else "float32", self.row_shape())
        axis = d.choice((0, -1))
        mean = self.emit("reduce", [x], {"op": "reduce_mean", "axis": (axis,), "keepdims": True})
        centered = self.emit("op", [x, mean], {"op": "sub"})
        var = self.emit("reduce", [self.emit("op", [centered], {"op": "square"})],
                        {"op": "reduce_mean", "axis": (axis,), "keepdims": True})
        eps = self.new_input(self.dtypes[x], (), kind="const", array=0.5)
        return self.emit("op", [centered, self.emit("op", [self.emit("op", [var, eps], {"op": "add"})],
                                                     {"op": "rsqrt"})], {"op": "mul"})

    # --- whole programs
    def n_ops(self) -> int:
        return sum(1 for b, _, _ in self.program.steps if b != "input")

    def generate(self, n_steps: int) -> Program:
        attempts = 0
        while self.n_ops() < n_steps and attempts < n_steps * 4:
            attempts += 1
            self.step()
        computed = [i for i in range(self.program.n_values()) if self.program.input_of(i) is None]
        if not computed:
            self.step_unary()
            computed = [i for i in range(self.program.n_values()) if self.program.input_of(i) is None]
        used = {i for _, ids, _ in self.program.steps for i in ids}
        sinks = [i for i in computed if i not in used and i != computed[-1] and self.d.bool(0.7)]
        fetches = list(dict.fromkeys([computed[-1]] + sinks + [f for f in self.program.fetches if f >= 0]))
        for _ in range(self.d.int(0, 2)):    # intermediates (materialized next to their fused uses) and repeats
            fetches.append(self.d.choice(computed) if self.d.bool(0.85) else self.d.int(0, len(self.tensors) - 1))
        self.program.fetches = fetches
        return self.program


def generate(draw, kind="forward", n_steps=None, mode=None, allow_big=True) -> Program:
    """A random program (`kind` 'forward' or 'grad')."""
    gen = Generator(draw, kind, allow_big)
    n = n_steps if n_steps is not None else draw.int(1, 10)
    program = gen.generate(n)
    if kind == "grad":
        float_values = [i for i in range(program.n_values()) if gen.dtypes[i] == "float64"
                        and program.input_of(i) is None]
        target = float_values[-1] if float_values else program.fetches[0]
        program.loss = {"value": target,
                        "weights": gen.data_rng.standard_normal(gen.shapes[target]).astype(np.float64)}
        program.fetches = [target]
        program.mode = "session"
    else:
        program.mode = mode or ("jit" if draw.bool(0.2) else "session")
        if program.variables:
            program.mode = "session"          # a jitted function has no variables
    return program


def programs(kind="forward", max_steps=8, allow_big=False):
    """A hypothesis strategy of Programs."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        d = HypothesisDraw(draw)
        n = d.int(1, max_steps)
        while True:
            try:
                return generate(d, kind, n_steps=n, allow_big=allow_big)
            except GenerationError:
                from hypothesis import assume
                assume(False)
    return strategy()


# =====================================================================================
# the oracle: a numpy interpreter of the graph with error bounds
# =====================================================================================
class OV:
    """An interpreted value: the reference result, its error bound and its undetermined elements."""

    __slots__ = ("val", "err", "unc", "zs")

    def __init__(self, val, err=None, unc=None, zs=None):
        self.val = np.asarray(val)
        shape = self.val.shape
        self.err = np.zeros(shape) if err is None else np.broadcast_to(np.asarray(err, np.float64), shape)
        self.unc = np.zeros(shape, bool) if unc is None else np.broadcast_to(np.asarray(unc, bool), shape)
        self.zs = np.zeros(shape, bool) if zs is None else np.broadcast_to(np.asarray(zs, bool), shape)


def _unit(dtype) -> float:
    return 2.0 ** -24 if np.dtype(dtype) == np.float32 else 2.0 ** -53


def _tiny(dtype) -> float:
    return float(np.finfo(dtype).tiny)


def _mag(x) -> np.ndarray:
    with np.errstate(all="ignore"):
        m = np.abs(np.asarray(x, np.float64))
    return np.where(np.isnan(m), 0.0, m)


def _smul(a, b):
    """a * b with 0 * inf = 0 (error terms)."""
    with np.errstate(all="ignore"):
        r = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return np.where((np.asarray(a) == 0) | (np.asarray(b) == 0), 0.0, r)


def _sdiv(a, b):
    """a / b with 0 / 0 = 0 and x / 0 = inf (error terms)."""
    with np.errstate(all="ignore"):
        r = np.asarray(a, np.float64) / np.asarray(b, np.float64)
    return np.where(np.asarray(a) == 0, 0.0, np.where(np.asarray(b) == 0, np.inf, r))


# ops whose float result is correctly rounded (or a fixed sequence of correctly rounded steps that
# numpy's reference performs identically): exact operands give a bit-identical result
_EXACT_OPS = {"add", "sub", "mul", "div", "sqrt", "rsqrt", "square", "neg", "abs", "relu", "maximum",
              "minimum", "sign", "select", "cast", "identity", "stop_gradient", "floordiv", "floormod",
              "add_n"}
_TRANSCENDENTAL_ULPS = {"exp": 8, "log": 8, "tanh": 8, "sigmoid": 10, "pow": 8}
# ops whose result keeps the sign of a zero operand deterministically
_SIGNED_ZERO_SAFE = _EXACT_OPS - {"maximum", "minimum", "relu", "add_n"}


def _operands(node_inputs, values, out_shape):
    """(vals, errs, uncs, zss) of the inputs, broadcast to the output shape."""
    vals, errs, uncs, zss = [], [], [], []
    for t in node_inputs:
        v = values[id(t)]
        vals.append(v.val)
        errs.append(np.broadcast_to(v.err, out_shape) if v.err.shape != out_shape else v.err)
        uncs.append(np.broadcast_to(v.unc, out_shape) if v.unc.shape != out_shape else v.unc)
        zss.append(np.broadcast_to(v.zs, out_shape) if v.zs.shape != out_shape else v.zs)
    return vals, errs, uncs, zss


def _bc(x, shape):
    return np.broadcast_to(np.asarray(x), shape)


def _elementwise_bounds(op, attrs, vals, errs, out):
    """(err, unc) of an elementwise float result from its operands' values and errors."""
    dtype = out.dtype
    u, tiny = _unit(dtype), _tiny(dtype)
    shape = out.shape
    a = _bc(vals[0], shape) if vals else None
    b = _bc(vals[1], shape) if len(vals) > 1 else None
    ea = errs[0] if errs else None
    eb = errs[1] if len(errs) > 1 else None
    mo = _mag(out)
    unc = np.zeros(shape, bool)
    if op in ("add", "sub"):
        err = ea + eb
    elif op == "mul":
        err = _smul(_mag(b), ea) + _smul(_mag(a), eb) + _smul(ea, eb)
    elif op == "div":
        denom = _mag(b) - eb
        err = np.where(denom > 0, _sdiv(ea + _smul(mo, eb), np.maximum(denom, 0)), np.where(eb > 0, np.inf, 0.0))
        err = np.where((denom <= 0) & (eb == 0), _sdiv(ea, _mag(b)), err)
    elif op in ("neg", "abs", "relu", "identity", "stop_gradient"):
        err = ea
    elif op in ("maximum", "minimum"):
        err = np.maximum(ea, eb)
    elif op == "square":
        err = 2 * _smul(_mag(a), ea) + _smul(ea, ea)
    elif op == "sign":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = np.zeros(shape)
    elif op == "sqrt":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = np.where(mo > 0, _sdiv(ea, 2 * mo), np.sqrt(ea))
    elif op == "rsqrt":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = _smul(mo, _sdiv(ea, 2 * _mag(a)))
    elif op == "exp":
        with np.errstate(all="ignore"):
            err = _smul(mo, np.expm1(ea))
    elif op == "log":
        unc = (ea > 0) & (_mag(a) <= ea)
        err = _sdiv(ea, _mag(a))
    elif op == "tanh":
        err = _smul(np.abs(1 - mo * mo), ea)
    elif op == "sigmoid":
        err = _smul(mo * np.abs(1 - mo), ea)
    elif op == "pow":
        with np.errstate(all="ignore"):
            log_a = np.abs(np.log(_mag(a)))
        with np.errstate(all="ignore"):
            err = _smul(mo, np.expm1(_smul(_sdiv(_mag(b), _mag(a)), ea) + _smul(log_a, eb)))
        # a negative base whose exponent may cross an integer; a base known only to within its own
        # size (e.g. a denormal read as zero): the linear bound does not hold
        unc = ((np.asarray(a, np.float64) < 0) & (eb > 0)) | ((ea > 0) & (ea >= 0.5 * _mag(a)))
    elif op in ("floordiv", "floormod"):
        with np.errstate(all="ignore"):
            q = np.asarray(a, np.float64) / np.asarray(b, np.float64)
            dq = _sdiv(ea + _smul(_mag(q), eb), np.maximum(_mag(b) - eb, 0)) + 4 * u * _mag(q)
            lo, hi = np.floor(q - dq), np.floor(q + dq)
        # also undetermined when either operand may read as zero (a denormal under DAZ): the
        # quotient of a tiny dividend floors to -1 or 0 and the float64 estimate above underflows
        unc = (((ea + eb) > 0) & ~(lo == hi)) | ((eb > 0) & (_mag(b) <= eb)) | ((ea > 0) & (_mag(a) <= ea))
        if op == "floordiv":
            err = np.where((ea + eb) > 0, 4 * u * mo, 0.0)
        else:
            err = ea + _smul(np.floor(_mag(q)) + 1, eb) + np.where((ea + eb) > 0, 4 * u * (_mag(a) + _mag(b)), 0.0)
    elif op == "add_n":
        err = sum(errs)
        if any(np.any(e > 0) for e in errs):
            err = err + len(vals) * u * sum(_mag(_bc(v, shape)) for v in vals)
    else:
        err = np.full(shape, np.inf)
    inexact = np.zeros(shape, bool)
    for e in errs:
        inexact |= e > 0
    ulps = _TRANSCENDENTAL_ULPS.get(op)
    if ulps is not None:
        err = err + ulps * u * mo
    elif op in _EXACT_OPS:
        err = err + np.where(inexact, 2 * u * mo, 0.0)
    else:
        err = err + 2 * u * mo
    # denormal results are flushed to zero by the compiled code (FTZ/DAZ, as TF and XLA run)
    err = err + np.where(mo < tiny, tiny, 0.0) + np.where(inexact, tiny, 0.0)
    return err, unc


def _finish(ov: OV, dtype) -> OV:
    """Elements whose bound is infinite or NaN (or which may overflow) become undetermined."""
    if not np.issubdtype(np.asarray(ov.val).dtype, np.floating):
        return ov
    err = np.asarray(ov.err, np.float64)
    bad = ~np.isfinite(err)
    with np.errstate(all="ignore"):
        near_overflow = (err > 0) & (_mag(ov.val) + SAFETY * err >= np.finfo(dtype).max)
    unc = np.asarray(ov.unc) | bad | near_overflow
    return OV(ov.val, np.where(unc, 0.0, err), unc, ov.zs)


def _input_value(array) -> OV:
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        tiny = _tiny(array.dtype)
        m = _mag(array)
        err = np.where((m > 0) & (m < tiny), m, 0.0)     # denormal inputs read as zero (DAZ)
        return OV(array, err)
    return OV(array)


def _reference_attrs(op) -> dict:
    return {k: v for k, v in op.attrs.items() if not k.startswith("_")}


def _eval_op(op, values, run_index=0):
    """The OVs of one graph Operation's outputs."""
    name = op._op
    opdef = get_op(name)
    attrs = _reference_attrs(op)
    ins = [values[id(t)] for t in op.inputs]
    if name == "const":
        return [_input_value(attrs["value"])]
    if name == "fill_like":
        like = ins[0].val
        return [OV(np.full(like.shape, attrs["value"], attrs["dtype"].np))]
    if name == "shape_of":
        return [OV(np.array(ins[0].val.shape, attrs.get("out_type", int32).np))]
    if name == "no_op":
        return []
    if opdef.reference is None:
        raise LookupError(f"the fuzz oracle has no reference for op {name!r}")
    if opdef.kind == "random":
        val = opdef.reference(run=run_index, **attrs)
        kind = opdef.extra.get("distribution")
        if kind == "uniform":
            return [OV(val)]
        u = _unit(val.dtype)
        unc = None
        if kind == "truncated_normal":   # a candidate within rounding of the cut at |z| = 2 may flip
            unc = np.abs(np.abs(val.astype(np.float64)) - 2) < 1e-3
        return [_finish(OV(val, 64 * u * (_mag(val) + 1), unc), val.dtype)]
    vals = [v.val for v in ins]
    if name == "matrix_inverse" and not _well_conditioned(vals[0]):
        # singular, ill-conditioned or non-finite: the compiled kernel may raise (see
        # _expected_error) or return anything; every element is undetermined
        out = np.full(vals[0].shape, np.nan, vals[0].dtype)
        return [OV(out, None, np.ones(out.shape, bool))]
    with np.errstate(all="ignore"):
        out = opdef.reference(*vals, **attrs)
    outs = out if isinstance(out, tuple) else (out,)
    results = []
    for k, o in enumerate(outs):
        o = np.asarray(o)
        expected_dtype = op.outputs[k].dtype.np
        if o.dtype != expected_dtype:
            o = o.astype(expected_dtype)
        results.append(_bounds(op, name, opdef, attrs, ins, o))
    return results


def _well_conditioned(a, limit=1e6) -> bool:
    a = np.asarray(a, np.float64)
    if not a.size:
        return True
    if not np.all(np.isfinite(a)):
        return False
    try:
        return bool(np.linalg.cond(a) < limit)
    except np.linalg.LinAlgError:
        return False


def _bounds(op, name, opdef, attrs, ins, out) -> OV:
    shape = out.shape
    is_float = np.issubdtype(out.dtype, np.floating)
    if opdef.kind == LAYOUT:
        # data movement: the same reference moves the error, undetermined and zero-sign masks
        def move(arrays):
            with np.errstate(all="ignore"):
                return np.asarray(opdef.reference(*arrays, **attrs))
        errs = move([np.asarray(v.err, np.float64) for v in ins])
        uncs = move([np.asarray(v.unc) for v in ins]).astype(bool)
        zss = move([np.asarray(v.zs) for v in ins]).astype(bool)
        return OV(out, errs if is_float else None, uncs, zss)
    if opdef.kind == ELEMENTWISE:
        if name == "iota":
            return OV(out)
        vals, errs, uncs, zss = _operands(op.inputs, {id(t): v for t, v in zip(op.inputs, ins)}, shape)
        unc = np.zeros(shape, bool)
        for x in uncs:
            unc = unc | x
        any_zs = np.zeros(shape, bool)
        for x in zss:
            any_zs = any_zs | x
        if name == "select":
            c = _bc(vals[0], shape)
            err = np.where(c, errs[1], errs[2])
            unc = uncs[0] | np.where(c, uncs[1], uncs[2])
            zs = np.where(c, zss[1], zss[2])
            return OV(out, err if is_float else None, unc, zs)
        if name == "cast":
            return _cast_bounds(ins[0], errs[0], unc, zss[0], out)
        in_float = bool(ins) and np.issubdtype(ins[0].val.dtype, np.floating)
        if name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
            if in_float:
                with np.errstate(all="ignore"):
                    gap = np.abs(_bc(vals[0], shape).astype(np.float64) - _bc(vals[1], shape).astype(np.float64))
                tol = SAFETY * (errs[0] + errs[1])
                unc = unc | ((tol > 0) & ~(gap > tol))
            return OV(out, None, unc)
        if name in ("logical_and", "logical_or", "logical_not"):
            return OV(out, None, unc)
        if not is_float:
            return OV(out, None, unc)
        err, extra_unc = _elementwise_bounds(name, attrs, vals, errs, out)
        unc = unc | extra_unc
        # a zero of uncertain sign as a divisor (or rsqrt / negative-power base) gives +-inf
        if name in ("div", "floordiv", "floormod") and len(zss) > 1:
            unc = unc | (zss[1] & (_bc(vals[1], shape) == 0))
        if name in ("rsqrt",) or (name == "pow" and len(zss) > 1):
            unc = unc | (zss[0] & (_bc(vals[0], shape) == 0))
        zs = (out == 0) & (any_zs | (name not in _SIGNED_ZERO_SAFE) | (name in ("maximum", "minimum", "relu")))
        return _finish(OV(out, err, unc, zs), out.dtype)
    if opdef.kind == "reduce":
        return _reduce_bounds(name, opdef, attrs, ins[0], out)
    if name == "matmul":
        return _matmul_bounds(attrs, ins, out)
    if name == "matrix_inverse":
        a = ins[0]
        u = _unit(out.dtype)
        n = max(1, shape[0])
        with np.errstate(all="ignore"):
            cond = np.linalg.cond(a.val.astype(np.float64)) if a.val.size else 1.0
            m = _mag(out)
            err = m @ a.err @ m + 64 * n * cond * u * (m.max() if m.size else 0)
        return _finish(OV(out, err, np.any(a.unc) | np.zeros(shape, bool), out == 0), out.dtype)
    # anything else (random, sources): exact
    return OV(out)


def _cast_bounds(x: OV, err, unc, zs, out) -> OV:
    src, dst = x.val.dtype, out.dtype
    src_float, dst_float = np.issubdtype(src, np.floating), np.issubdtype(dst, np.floating)
    if dst_float:
        if src_float:
            u = _unit(dst)
            inexact = err > 0
            e = err + np.where(inexact, 2 * u * _mag(out), 0.0) + np.where(_mag(out) < _tiny(dst), _tiny(dst), 0.0)
            return _finish(OV(out, e, unc, zs), dst)
        return OV(out, None, unc)
    if src_float:
        xv = x.val.astype(np.float64)
        if dst == np.bool_:
            unc = unc | ((err > 0) & (_mag(xv) <= SAFETY * err))
        else:
            with np.errstate(all="ignore"):
                lo, hi = np.trunc(xv - SAFETY * err), np.trunc(xv + SAFETY * err)
            unc = unc | ((err > 0) & ~(lo == hi))
        return OV(out, None, unc)
    return OV(out, None, unc)


def _reduce_bounds(name, opdef, attrs, x: OV, out) -> OV:
    shape = out.shape
    rank = x.val.ndim
    if name in ("argmax", "argmin"):
        axis = attrs["axis"] % rank
        unc = np.any(x.unc, axis=axis)
        if np.issubdtype(x.val.dtype, np.floating):
            v = x.val.astype(np.float64)
            e = SAFETY * x.err
            sign = 1.0 if name == "argmax" else -1.0
            with np.errstate(all="ignore"):
                lo = np.where(np.isnan(v), np.nan, sign * v - e)
                hi = np.where(np.isnan(v), np.nan, sign * v + e)
                best_lo = np.nanmax(np.where(np.isnan(lo), -np.inf, lo), axis=axis, keepdims=True)
                candidates = hi >= best_lo
            close = (np.sum(candidates, axis=axis) > 1) & np.any(candidates & (e > 0), axis=axis)
            has_nan = np.any(np.isnan(v), axis=axis)
            unc = unc | (close & ~has_nan)
        return OV(out, None, unc)
    axes = tuple(attrs["axes"]) if attrs.get("axes") is not None else tuple(range(rank))
    keep = attrs.get("keepdims", False)
    n = int(np.prod([x.val.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    unc = np.broadcast_to(np.any(x.unc, axis=axes, keepdims=keep), shape)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    kind = opdef.reduce
    mx = _mag(x.val)
    with np.errstate(all="ignore"):
        if kind in ("sum", "mean"):
            err = np.sum(x.err, axis=axes, keepdims=keep) + 2 * n * u * np.sum(mx, axis=axes, keepdims=keep) \
                + n * tiny
            if kind == "mean":
                err = err / max(n, 1) + 2 * u * _mag(out)
        elif kind in ("max", "min"):
            err = np.max(x.err, axis=axes, keepdims=keep, initial=0.0)
        else:   # prod
            rel = np.sum(_sdiv(x.err, mx), axis=axes, keepdims=keep)
            err = _smul(_mag(out), rel + 2 * n * u) + n * tiny
            # a reassociated product passes through other partial products: when some order can
            # overflow (then inf * 0 = NaN) or underflow and grow again, the result is undetermined
            logs = np.log(np.where(mx > 0, mx, 1.0))
            up = np.sum(np.maximum(logs, 0), axis=axes, keepdims=keep)
            down = np.sum(np.minimum(logs, 0), axis=axes, keepdims=keep)
            unc = unc | np.broadcast_to((up >= np.log(np.finfo(out.dtype).max))
                                        | ((down <= np.log(tiny)) & (up > 0)), shape)
    zs = out == 0
    return _finish(OV(out, np.broadcast_to(err, shape), unc, zs), out.dtype)


def _matmul_bounds(attrs, ins, out) -> OV:
    a, b = ins
    ta, tb = attrs.get("transpose_a", False), attrs.get("transpose_b", False)

    def orient(x, t):
        return x.T if t else x
    av, bv = orient(a.val, ta), orient(b.val, tb)
    unc = (np.any(orient(a.unc, ta), axis=1)[:, None] | np.any(orient(b.unc, tb), axis=0)[None, :]) \
        if out.size else np.zeros(out.shape, bool)
    unc = np.broadcast_to(unc, out.shape)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    k = av.shape[1]
    u, tiny = _unit(out.dtype), _tiny(out.dtype)
    ma, mb = _mag(av), _mag(bv)
    ea, eb = orient(a.err, ta), orient(b.err, tb)
    with np.errstate(all="ignore"):
        # any summation order (BLAS blocks it); infinite magnitudes make the element undetermined
        err = ma @ eb + ea @ mb + ea @ eb + 2 * (k + 2) * u * (ma @ mb) + (k + 1) * tiny
    return _finish(OV(out, err, unc, out == 0), out.dtype)


def _needed(targets, fed: set) -> set:
    """Ids of the ops a run of `targets` executes: inputs and control inputs, stopping at fed tensors."""
    from .framework.lowering import needed_ops
    return {op._id for op in needed_ops(list(targets), fed)}


def interpret(graph, feeds: dict, run_index: int = 0, n_ops: int | None = None, targets=None,
              state: dict | None = None) -> dict:
    """id(tensor) -> OV for every tensor of the graph (or of its first `n_ops` ops, or only what a
    run of `targets` needs), evaluating the ops in creation order. Variables: `state` maps variable
    op names to their OV before the run and is updated in place; reads and updates take effect in
    graph order (jitflow chains stateful ops by graph order)."""
    import warnings
    values: dict = {}
    for t, array in feeds.items():
        values[id(t)] = _input_value(np.asarray(array, t.dtype.np))
    ops = graph.get_operations()[:n_ops]
    if targets is not None:
        needed = _needed(targets, {id(t) for t in feeds})
        ops = [op for op in ops if op._id in needed]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # numpy's 'mean of empty slice' and the like
        _interpret_ops(ops, values, run_index, {} if state is None else state)
    return values


_UPDATE_OPS = {"assign_var": None, "assign_add_var": "add", "assign_sub_var": "sub"}


def _interpret_ops(ops, values, run_index, state):
    for op in ops:
        if op.outputs and all(id(t) in values for t in op.outputs):
            continue
        if op._op in ("placeholder",):
            raise ValueError(f"the fuzz oracle needs a feed for {op.name}")
        if op._op == "variable":
            values[id(op.outputs[0])] = OV(np.zeros(()))       # the handle: never compared
            continue
        if op._op == "read_var" or op._op in _UPDATE_OPS:
            name = op.inputs[0].op.name
            if name not in state:
                raise ValueError(f"the fuzz oracle has no value for variable {name}")
            if op._op in _UPDATE_OPS:
                state[name] = _update_value(_UPDATE_OPS[op._op], state[name], values[id(op.inputs[1])])
            current = state[name]
            values[id(op.outputs[0])] = OV(current.val.copy(), current.err, current.unc, current.zs)
            continue
        for t, ov in zip(op.outputs, _eval_op(op, values, run_index)):
            values[id(t)] = ov


def _update_value(kind, old: OV, value: OV) -> OV:
    """A variable's value after assign (kind None), assign_add or assign_sub of `value`."""
    if kind is None:
        return OV(value.val.copy(), value.err, value.unc, value.zs)
    with np.errstate(all="ignore"):
        out = np.asarray((np.add if kind == "add" else np.subtract)(old.val, value.val)).astype(old.val.dtype)
    unc = np.asarray(old.unc) | np.asarray(value.unc)
    if not np.issubdtype(out.dtype, np.floating):
        return OV(out, None, unc)
    err, extra = _elementwise_bounds(kind, {}, [old.val, value.val], [old.err, value.err], out)
    zs = (out == 0) & (np.asarray(old.zs) | np.asarray(value.zs))
    return _finish(OV(out, err, unc | extra, zs), out.dtype)


# =====================================================================================
# comparison
# =====================================================================================
def compare(got, ov: OV) -> str | None:
    """None when `got` is an acceptable compiled result for the interpreted value `ov`."""
    want = ov.val
    got = np.asarray(got)
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != reference {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape} != reference {want.shape}"
    check = ~np.asarray(ov.unc)
    if not np.issubdtype(want.dtype, np.floating):
        bad = check & (got != want)
    else:
        g64, w64 = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(all="ignore"):
            both_nan = np.isnan(g64) & np.isnan(w64)
            close = (g64 == w64) | (np.abs(g64 - w64) <= SAFETY * np.asarray(ov.err))
        bad = check & ~(both_nan | close)
    if not np.any(bad):
        return None
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    count = int(np.sum(bad))
    extra = ""
    if np.issubdtype(want.dtype, np.floating):
        extra = f" (allowed error {SAFETY * float(np.asarray(ov.err)[where]):.3g})"
    return (f"{count} of {want.size} elements differ; first at {list(where)}: got {got[where]!r}, "
            f"reference {want[where]!r}{extra}")


@dataclass
class CaseResult:
    status: str                       # 'ok' | 'mismatch' | 'error' | 'grad_mismatch' | 'skipped' | 'oracle_error'
    detail: str = ""
    ops: Counter = field(default_factory=Counter)
    features: set = field(default_factory=set)
    failing_fetches: list = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "error", "grad_mismatch")


def _graph_ops(graph) -> Counter:
    return Counter(op._op for op in graph.get_operations())


def check_program(program: Program) -> CaseResult:
    """Runs the program compiled and in the interpreter; compares every fetch."""
    if program.kind == "grad":
        return check_gradient(program)
    import jitflow as tf
    graph, values, fetches, feed = build_graph(program)
    ops = _graph_ops(graph)
    variables = program_variables(graph, program)
    state = initial_state(graph, program)
    try:
        oracle = interpret(graph, feed, targets=fetches, state=state)
    except Exception as exc:   # a reference that cannot evaluate what graph building accepted
        oracle_exc = f"{type(exc).__name__}: {exc}"
        try:   # fine when the compiled run rejects it too (with a clear error)
            with tf.Session(graph=graph) as sess:
                if variables:
                    sess.run(tf.variables_initializer(variables))
                sess.run(fetches, feed)
        except (tf.errors.OpError, ValueError, TypeError) as compiled_exc:
            return CaseResult("ok", f"both reject: {oracle_exc} / {compiled_exc}", ops, {"both_reject"})
        except Exception:   # noqa: BLE001
            pass
        return CaseResult("oracle_error", oracle_exc, ops)
    features = {"variables"} if variables else set()
    has_random = any(get_op(name).kind == "random" for name in ops)
    finals = []
    try:
        if program.mode == "jit":
            outputs = _run_jit(tf, program)
            second = None
        else:
            with tf.Session(graph=graph) as sess:
                if variables:
                    sess.run(tf.variables_initializer(variables))
                outputs = sess.run(fetches, feed)
                outputs = [np.array(o) for o in outputs]
                finals = [np.array(sess._variables[v.op.name]) for v in variables]
                # a second run repeats the first (state changes it when there are variables)
                second = None if has_random or variables else [np.array(o) for o in sess.run(fetches, feed)]
                for compiled in sess._compiled.values():
                    kernels = compiled.executable.schedule.kernels
                    if any(k.group is not None for k in kernels):
                        features.add("row_group")
                    if any(k.kind == "library" and k.beta == 1.0 for k in kernels):
                        features.add("gemm_update")
                    if len(kernels) >= 5:
                        features.add("5+_kernels")
    except Exception as exc:
        if _expected_error(exc, graph, oracle):
            return CaseResult("ok", "expected error", ops, features | {"expected_error"})
        return CaseResult("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}", ops, features)
    problems = []
    for k, (fetch, got) in enumerate(zip(program.fetches, outputs)):
        t = fetches[k]
        problem = compare(got, oracle[id(t)])
        if problem is None and second is not None:
            problem = compare(second[k], oracle[id(t)])
            if problem is not None:
                problem = "second run: " + problem
        if problem is not None:
            problems.append((k, problem))
    for v, got in zip(variables, finals):
        problem = compare(got, state[v.op.name])
        if problem is not None:
            problems.append((-1, f"final value of variable {v.op.name}: {problem}"))
    if outputs and max(np.asarray(o).size for o in outputs) >= 1 << 17:
        features.add("big")
    if problems:
        detail = "\n".join(p if k < 0 else f"fetch {k} (v{program.fetches[k]}): {p}" for k, p in problems)
        return CaseResult("mismatch", detail, ops, features, [k for k, _ in problems if k >= 0])
    return CaseResult("ok", "", ops, features)


def _expected_error(exc, graph, oracle) -> bool:
    """Documented run-time errors: a singular matrix for matrix_inverse."""
    import jitflow as tf
    if isinstance(exc, tf.errors.InvalidArgumentError) and "not invertible" in str(exc):
        for op in graph.get_operations():
            if op._op == "matrix_inverse" and not _well_conditioned(oracle[id(op.inputs[0])].val):
                return True
    return False


def _run_jit(tf, program: Program):
    feed_arrays = [a for a, spec in zip(program.arrays, program.inputs) if spec[3] == "feed"]

    def fn(*args):
        values, _ = _build_values(tf, program, args)
        return [values[i] for i in program.fetches]
    outputs = tf.jit(fn)(*feed_arrays)
    return [np.array(o) for o in outputs]


# =====================================================================================
# gradients against finite differences
# =====================================================================================
def check_gradient(program: Program, step: float = 1e-5) -> CaseResult:
    import jitflow as tf
    graph, values, fetches, feed = build_graph(program)
    ops = _graph_ops(graph)
    with graph.as_default():
        target = values[program.loss["value"]]
        weights = tf.constant(program.loss["weights"], tf.float64)
        loss = tf.reduce_sum(target * weights)
        xs = [t for t in feed if t.dtype == float64]
        if not xs:
            return CaseResult("skipped", "no float64 inputs", ops)
        n_forward = len(graph.get_operations())
        grads = tf.gradients(loss, xs)
    ops = _graph_ops(graph)     # the gradient graph's ops too (broadcast_grad, slice_grad, ...)
    pairs = [(x, g) for x, g in zip(xs, grads) if g is not None]
    if not pairs:
        return CaseResult("skipped", "loss does not depend on the inputs", ops)
    try:
        with tf.Session(graph=graph) as sess:
            outputs = sess.run([loss] + [g for _, g in pairs], feed)
    except Exception as exc:
        return CaseResult("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}", ops)
    loss_value, grad_values = float(outputs[0]), outputs[1:]
    rng = np.random.default_rng(abs(hash(str(program.seed))) % (2 ** 32))
    direction = {x: rng.standard_normal(feed[x].shape) for x, _ in pairs}
    norm = math.sqrt(sum(float(np.sum(d * d)) for d in direction.values())) or 1.0
    direction = {x: d / norm for x, d in direction.items()}

    def loss_at(scale):
        shifted = dict(feed)
        for x, d in direction.items():
            shifted[x] = feed[x] + scale * d
        values = interpret(graph, shifted, n_ops=n_forward)
        return float(values[id(loss)].val), float(values[id(loss)].err), values
    try:
        (f0, _, values0), (fp, ep, _), (fm, em, _) = loss_at(0.0), loss_at(step), loss_at(-step)
        (fp2, _, _), (fm2, _, _) = loss_at(2 * step), loss_at(-2 * step)
    except Exception as exc:
        return CaseResult("oracle_error", f"{type(exc).__name__}: {exc}", ops)
    if not all(math.isfinite(v) for v in (f0, fp, fm, fp2, fm2, loss_value)):
        return CaseResult("skipped", "non-finite loss", ops)
    # gradient formulas such as rsqrt's dy * -0.5 * y**3 (TF's too) under- or overflow far from 1
    magnitudes = [np.abs(v.val[np.isfinite(v.val) & (v.val != 0)]) for v in values0.values()
                  if v is not None and np.issubdtype(np.asarray(v.val).dtype, np.floating) and np.size(v.val)]
    if any(m.size and (m.max() > 1e50 or m.min() < 1e-50) for m in magnitudes):
        return CaseResult("skipped", "values beyond 1e+-50: gradient formulas may under/overflow", ops, {"range"})
    forward, backward = (fp - f0) / step, (f0 - fm) / step
    central, central2 = (fp - fm) / (2 * step), (fp2 - fm2) / (4 * step)
    scale = max(abs(f0), abs(central), 1.0)
    if abs(forward - backward) > 1e-3 * scale + 1e-6 * max(abs(forward), abs(backward)):
        return CaseResult("skipped", "not smooth within the step (a kink)", ops, {"kink"})
    # what the differences themselves may be off by: rounding noise of the loss (the oracle's error
    # bound over the step) and the truncation error (estimated from the steps h and 2h)
    fd_error = SAFETY * (ep + em) / (2 * step) + abs(central - central2)
    analytic = sum(float(np.sum(np.asarray(g, np.float64) * direction[x])) for (x, _), g in zip(pairs, grad_values))
    if not math.isfinite(analytic):
        return CaseResult("grad_mismatch", f"gradient is not finite ({analytic}); finite differences {central}",
                          ops)
    gnorm = math.sqrt(sum(float(np.sum(np.asarray(g, np.float64) ** 2)) for g in grad_values))
    tol = 1e-5 * (abs(central) + gnorm) + 1e-7 * scale + 2 * fd_error
    if abs(analytic - central) > tol:
        return CaseResult("grad_mismatch", f"directional derivative {analytic!r} vs central differences "
                                           f"{central!r} (tolerance {tol:.3g}; |grad| = {gnorm:.3g})", ops)
    if abs(loss_value - f0) > 1e-9 * scale + 1e-12:
        return CaseResult("mismatch", f"loss {loss_value!r} vs reference {f0!r}", ops)
    return CaseResult("ok", "", ops, {"grad"})


# =====================================================================================
# minimization and repro files
# =====================================================================================
def prune(program: Program, keep_fetches=None) -> Program:
    """Drops steps and inputs no fetch (or the loss) needs; renumbers values."""
    fetches = [program.fetches[k] for k in keep_fetches] if keep_fetches is not None else list(program.fetches)
    needed = set(fetches)
    if program.loss is not None:
        needed.add(program.loss["value"])
    creation = {p["var"]: i for i, (b, _, p) in enumerate(program.steps) if b == "variable"}
    for k in range(len(program.steps) - 1, -1, -1):
        if k in needed:
            needed.update(program.steps[k][1])
            if "var" in program.steps[k][2]:
                needed.add(creation[program.steps[k][2]["var"]])
    mapping, input_map, inputs, arrays, steps = {}, {}, [], [], []
    for k, (builder, ids, p) in enumerate(program.steps):
        if k not in needed:
            continue
        mapping[k] = len(steps)
        if builder == "input":
            old = p["input"]
            if old not in input_map:
                input_map[old] = len(inputs)
                inputs.append(program.inputs[old])
                arrays.append(program.arrays[old])
            steps.append(("input", (), {"input": input_map[old]}))
        else:
            steps.append((builder, tuple(mapping[i] for i in ids), p))
    out = Program(inputs, arrays, steps, [mapping[f] for f in fetches], program.mode, program.seed, program.kind)
    out.variables = list(program.variables)
    if program.loss is not None:
        out.loss = {"value": mapping[program.loss["value"]], "weights": program.loss["weights"]}
    return out


def cut(program: Program, value: int, array) -> Program:
    """The program with computed value `value` replaced by a fed input holding `array`."""
    array = np.asarray(array)
    spec = (f"cut{value}", array.dtype.name, tuple(array.shape), "feed", None)
    steps = list(program.steps)
    steps[value] = ("input", (), {"input": len(program.inputs)})
    out = Program(program.inputs + [spec], program.arrays + [array], steps, list(program.fetches),
                  program.mode, program.seed, program.kind)
    out.loss = program.loss
    out.variables = list(program.variables)
    return out


def minimize(program: Program, result: CaseResult, check=check_program, budget_s: float = 60.0):
    """A smaller program that still fails the same way."""
    start = time.monotonic()
    best, best_result = program, result

    def still_fails(candidate):
        try:
            r = check(candidate)
        except Exception:   # noqa: BLE001 - a different failure is not the same bug
            return None
        return r if r.status == result.status else None
    if result.failing_fetches and program.kind == "forward":
        candidate = prune(program, keep_fetches=[result.failing_fetches[0]])
        r = still_fails(candidate)
        if r is not None:
            best, best_result = candidate, r
    pruned = prune(best)
    r = still_fails(pruned)
    if r is not None:
        best, best_result = pruned, r
    k = 0
    while len(best.fetches) > 1 and k < len(best.fetches) and time.monotonic() - start < budget_s:
        candidate = prune(best, keep_fetches=[j for j in range(len(best.fetches)) if j != k])
        r = still_fails(candidate)
        if r is not None:
            best, best_result = candidate, r
        else:
            k += 1
    changed = True
    while changed and time.monotonic() - start < budget_s:
        changed = False
        graph, values, fetches, feed = build_graph(best)
        state = initial_state(graph, best)
        try:
            oracle = interpret(graph, feed, targets=fetches + ([] if best.loss is None else
                                                             [values[best.loss["value"]]]), state=state)
        except Exception:   # noqa: BLE001
            break
        for value in range(best.n_values()):
            if best.input_of(value) is not None or value in best.fetches or (
                    best.loss is not None and best.loss["value"] == value):
                continue
            if id(values[value]) not in oracle or best.steps[value][0] in ("variable", "read_value", "update"):
                continue        # not computed by the run, or stateful (a cut would change the effects)
            array = oracle[id(values[value])].val
            candidate = prune(cut(best, value, array))
            r = still_fails(candidate)
            if r is not None:
                best, best_result, changed = candidate, r, True
                break
            if time.monotonic() - start > budget_s:
                break
    return best, best_result


def save_repro(program: Program, result: CaseResult, directory) -> str:
    """Writes ir.txt, inputs.npz, program.json, program.py and report.txt; returns the directory."""
    import jitflow as tf
    os.makedirs(directory, exist_ok=True)
    _save_arrays(program, directory)
    with open(os.path.join(directory, "program.json"), "w") as f:
        json.dump(program.to_json(), f, indent=1)
    with open(os.path.join(directory, "program.py"), "w") as f:
        f.write(program_source(program))
    ir_text = ""
    try:
        graph, values, fetches, feed = build_graph(program)
        with tf.Session(graph=graph) as sess:
            ir_text = sess.inspect(fetches, feed).ir_before_passes
    except Exception as exc:   # noqa: BLE001 - the failure may be in compiling itself
        ir_text = f"(inspect failed: {type(exc).__name__}: {exc})"
        try:
            from .framework.lowering import lower_run
            from .ir.printer import print_function
            graph, values, fetches, feed = build_graph(program)
            ir_text = print_function(lower_run(graph, fetches, feed).function)
        except Exception:   # noqa: BLE001
            pass
    with open(os.path.join(directory, "ir.txt"), "w") as f:
        f.write(ir_text + "\n")
    with open(os.path.join(directory, "report.txt"), "w") as f:
        f.write(f"status: {result.status}\nseed: {program.seed}\nmode: {program.mode}\n\n{result.detail}\n\n"
                f"program:\n{program_source(program)}")
    return str(directory)


def _save_arrays(program: Program, directory):
    """inputs.npz: a0.. (inputs), then the loss weights (gradient cases), then var0.. (variables)."""
    arrays = {f"a{i}": a for i, a in enumerate(program.arrays)}
    if program.loss is not None:
        arrays[f"a{len(program.arrays)}"] = program.loss["weights"]
    arrays.update({f"var{k}": a for k, a in enumerate(program.variables)})
    np.savez(os.path.join(directory, "inputs.npz"), **arrays)


def load_program(directory) -> Program:
    with open(os.path.join(directory, "program.json")) as f:
        data = json.load(f)
    npz = np.load(os.path.join(directory, "inputs.npz"))
    n = sum(1 for name in npz.files if name.startswith("a"))
    arrays = [npz[f"a{i}"] for i in range(n)] + [npz[f"var{k}"] for k in range(data.get("variables", 0))]
    return Program.from_json(data, arrays)


# =====================================================================================
# cases by number, and the long run
# =====================================================================================
def case_program(seed: int, index: int) -> Program:
    """Case `index` of a run with `seed` (deterministic: `--replay SEED:INDEX`)."""
    draw = RandomDraw([seed, index])
    kind = "grad" if draw.bool(0.2) else "forward"
    for attempt in range(20):
        try:
            program = generate(RandomDraw([seed, index, attempt]) if attempt else draw, kind)
            program.seed = f"{seed}:{index}"
            return program
        except GenerationError:
            continue
    raise GenerationError(f"case {seed}:{index}: no valid program in 20 attempts")


WORKER_MAX_RSS = 1 << 30


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _worker(seed: int, start: int, stop_at: float, status_path: str):
    """Runs cases from `start` until the deadline; one JSON line per case on stdout."""
    import warnings
    warnings.simplefilter("ignore")
    # test hook: JITFLOW_FUZZ_CRASH_AT=3,7 kills the worker (SIGSEGV) when it reaches those cases
    crash_at = {int(x) for x in os.environ.get("JITFLOW_FUZZ_CRASH_AT", "").split(",") if x.strip()}
    index = start
    while time.time() < stop_at:
        with open(status_path, "w") as f:
            f.write(str(index))
        if index in crash_at:
            import signal
            os.kill(os.getpid(), signal.SIGSEGV)
        t0 = time.perf_counter()
        try:
            program = case_program(seed, index)
            result = check_program(program)
        except GenerationError as exc:
            result, program = CaseResult("generator_error", str(exc)), None
        except Exception as exc:   # noqa: BLE001 - harness errors are reported, not fatal
            result, program = CaseResult("harness_error", f"{type(exc).__name__}: {exc}\n"
                                                          f"{traceback.format_exc(limit=8)}"), None
        record = {"index": index, "status": result.status, "detail": result.detail[:4000],
                  "ops": dict(result.ops), "features": sorted(result.features),
                  "seconds": round(time.perf_counter() - t0, 4),
                  "kind": None if program is None else program.kind,
                  "mode": None if program is None else program.mode}
        if result.failed and program is not None:
            directory = os.path.join(os.path.dirname(status_path), "failures", f"case-{seed}-{index}")
            try:
                small, small_result = minimize(program, result)
                save_repro(small, small_result, directory)
                save_repro(program, result, os.path.join(directory, "original"))
                record["repro"] = directory
                record["minimized_steps"] = len(small.steps)
            except Exception as exc:   # noqa: BLE001
                record["repro_error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(record), flush=True)
        index += 1
        if _rss_bytes() > WORKER_MAX_RSS:
            return      # the parent starts a fresh worker: each LLVM compile leaks inside llvmlite


def run_long(minutes: float, seed: int | None = None, out_dir: str | None = None, case_timeout: float = 120.0,
             echo=print) -> dict:
    """The long run: cases in a worker subprocess until `minutes` pass; returns the summary."""
    import subprocess
    seed = int(time.time()) % 100000 if seed is None else int(seed)
    out_dir = out_dir or os.path.join(os.getcwd(), f"fuzz-{seed}")
    os.makedirs(out_dir, exist_ok=True)
    status_path = os.path.join(out_dir, "current_case")
    start_time = time.time()
    deadline = start_time + minutes * 60
    summary = {"seed": seed, "cases": 0, "status": Counter(), "ops": Counter(), "features": Counter(),
               "failures": [], "crashes": [], "kinds": Counter(), "modes": Counter(), "seconds_in_cases": 0.0}
    index = 0
    log_path = os.path.join(out_dir, "cases.jsonl")
    with open(log_path, "a") as log:
        while time.time() < deadline:
            cmd = [sys.executable, "-c",
                   f"from jitflow.fuzz import _worker; _worker({seed}, {index}, {deadline!r}, {status_path!r})"]
            env = dict(os.environ)      # one-off kernels go to the run's directory, not the user's cache
            env.setdefault("JITFLOW_CACHE_DIR", os.path.join(out_dir, "kernel-cache"))
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            last = time.time()
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            hung = False
            while True:
                events = sel.select(timeout=5.0)
                if events:
                    line = proc.stdout.readline()
                    if not line:
                        break
                    last = time.time()
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    log.write(line)
                    log.flush()
                    index = record["index"] + 1
                    _tally(summary, record, echo)
                elif time.time() - last > case_timeout:
                    hung = True
                    proc.kill()
                    break
                if proc.poll() is not None and not events:
                    break
            proc.wait()
            stderr = proc.stderr.read() if proc.stderr else ""
            if proc.returncode not in (0, None) or hung:
                try:
                    with open(status_path) as f:
                        crashed = int(f.read().strip())
                except (OSError, ValueError):
                    crashed = index
                what = "hang" if hung else f"crash (exit {proc.returncode})"
                record = {"index": crashed, "status": "crash", "detail": f"{what}\n{stderr[-3000:]}",
                          "ops": {}, "features": [], "seconds": 0.0}
                try:
                    program = case_program(seed, crashed)
                    directory = os.path.join(out_dir, "failures", f"case-{seed}-{crashed}")
                    save_repro_without_running(program, record["detail"], directory)
                    record["repro"] = directory
                except Exception as exc:   # noqa: BLE001
                    record["repro_error"] = str(exc)
                log.write(json.dumps(record) + "\n")
                log.flush()
                _tally(summary, record, echo)
                index = crashed + 1
    summary["duration_s"] = round(time.time() - start_time, 1)
    summary["out_dir"] = out_dir
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({k: (dict(v) if isinstance(v, Counter) else v) for k, v in summary.items()}, f, indent=1)
    return summary


def save_repro_without_running(program: Program, detail: str, directory):
    """For cases that crashed the worker: program and inputs only (running them again would crash)."""
    os.makedirs(directory, exist_ok=True)
    _save_arrays(program, directory)
    with open(os.path.join(directory, "program.json"), "w") as f:
        json.dump(program.to_json(), f, indent=1)
    with open(os.path.join(directory, "program.py"), "w") as f:
        f.write(program_source(program))
    with open(os.path.join(directory, "report.txt"), "w") as f:
        f.write(f"status: crash\nseed: {program.seed}\n\n{detail}\n")


def _tally(summary, record, echo):
    summary["cases"] += 1
    summary["status"][record["status"]] += 1
    summary["ops"].update(record.get("ops", {}))
    summary["features"].update(record.get("features", []))
    summary["seconds_in_cases"] += record.get("seconds", 0.0)
    if record.get("kind"):
        summary["kinds"][record["kind"]] += 1
    if record.get("mode"):
        summary["modes"][record["mode"]] += 1
    if record["status"] in ("mismatch", "error", "grad_mismatch", "crash", "harness_error", "oracle_error",
                            "generator_error"):
        entry = {"index": record["index"], "status": record["status"],
                 "detail": record["detail"].splitlines()[0][:300] if record["detail"] else "",
                 "repro": record.get("repro")}
        summary["failures"].append(entry)
        echo(f"[{record['status']}] case {summary['seed']}:{record['index']}: {entry['detail']}"
             + (f"\n    repro: {entry['repro']}" if entry["repro"] else ""))
    if summary["cases"] % 200 == 0:
        echo(f"... {summary['cases']} cases, {len(summary['failures'])} failures")


def format_summary(summary: dict) -> str:
    registry = {name for name, opdef in _all_ops().items() if opdef.reference is not None}
    covered = sorted(summary["ops"])
    lines = [f"seed {summary['seed']}: {summary['cases']} cases in {summary.get('duration_s', 0)} s "
             f"({dict(summary['kinds'])}; {dict(summary['modes'])})",
             f"status: {dict(summary['status'])}",
             f"features: {dict(summary['features'])}",
             f"ops covered ({len(covered)}; registry ops with a reference not covered: "
             f"{sorted(registry - set(covered))}):",
             "  " + ", ".join(f"{name} {summary['ops'][name]}" for name in covered),
             f"failures: {len(summary['failures'])}"]
    for entry in summary["failures"]:
        lines.append(f"  {entry['status']} case {summary['seed']}:{entry['index']}: {entry['detail']}"
                     + (f"  [{entry['repro']}]" if entry.get("repro") else ""))
    return "\n".join(lines)


def _all_ops():
    from .ops import all_ops
    return all_ops()


def replay(spec: str) -> CaseResult:
    """`SEED:INDEX` (a case number) or a repro directory."""
    if os.path.isdir(spec):
        program = load_program(spec)
    else:
        seed, index = spec.split(":")
        program = case_program(int(seed), int(index))
    print(program_source(program))
    result = check_program(program)
    print(f"{result.status}: {result.detail}")
    return result


def main(argv) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m jitflow fuzz")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help="directory for the log and failure repros")
    parser.add_argument("--replay", default=None, help="SEED:INDEX or a failure directory: run one case")
    args = parser.parse_args(argv)
    if args.replay:
        return 1 if replay(args.replay).failed else 0
    summary = run_long(args.minutes, args.seed, args.out)
    print(format_summary(summary))
    return 1 if summary["failures"] else 0
