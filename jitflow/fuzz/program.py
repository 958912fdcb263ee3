"""Programs as pure data (inputs, steps, fetches) and their rebuilding: a fresh graph per run
(`build_graph`), the tf.* source of each step (`step_source`) and a standalone repro script."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bounds import _input_value
from .common import DTYPES


# programs: pure data, rebuilt into a fresh graph for every run
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
    # how arrays reach native code (layouts.py): input index -> layout of its feed / @jit argument,
    # variable index -> layout of a Variable.load of its initial value after the initializer
    layouts: dict = field(default_factory=dict)
    var_loads: dict = field(default_factory=dict)
    static: dict | None = None     # jit: {"how": "argnums"|"argnames_pos"|"argnames_kw", "values": [...]}
    expect: dict | None = None     # {"stage": "build", "step": value id, "error": class names}: TF raises there
    category: str = "plain"

    def to_json(self) -> dict:
        return {"inputs": [list(i[:4]) + [None if i[4] is None else list(i[4])] for i in self.inputs],
                "steps": [[s[0], list(s[1]), _jsonable(s[2])] for s in self.steps],
                "fetches": list(self.fetches), "mode": self.mode, "seed": self.seed, "kind": self.kind,
                "loss": None if self.loss is None else {"value": self.loss["value"]},
                "variables": len(self.variables), "category": self.category,
                "layouts": {str(k): v for k, v in self.layouts.items()},
                "var_loads": {str(k): v for k, v in self.var_loads.items()},
                "static": _jsonable(self.static), "expect": _jsonable(self.expect)}

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
        program.layouts = {int(k): v for k, v in data.get("layouts", {}).items()}
        program.var_loads = {int(k): v for k, v in data.get("var_loads", {}).items()}
        program.static = data.get("static")
        program.expect = data.get("expect")
        program.category = data.get("category", "plain")
        return program

    def carry_options(self, other: "Program", input_map=None, value_map=None) -> "Program":
        """`other` (a pruned or cut version of this program) with this program's layouts, static
        arguments and expectation, renumbered by `input_map` / `value_map` (old -> new)."""
        other.layouts = {input_map.get(k, k) if input_map is not None else k: v for k, v in self.layouts.items()
                         if input_map is None or k in input_map}
        other.var_loads = dict(self.var_loads)
        other.static = self.static
        other.category = self.category
        if self.expect is not None:
            step = self.expect["step"]
            other.expect = dict(self.expect, step=value_map[step] if value_map is not None else step)
        return other

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
    from ..framework.graph import get_default_graph
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
    if builder == "where":     # where_v2: numpy broadcasting, as the oracle computes it (tf.where is TF 1.x's)
        return tf.where_v2(xs[0], xs[1], xs[2])
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
    from .api_steps import apply_api_step
    return apply_api_step(tf, builder, xs, p)


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
        return f"tf.where_v2({a})"
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
    from .api_steps import api_step_source
    return api_step_source(builder, names, p)


def program_source(program: Program) -> str:
    """A standalone script that rebuilds and runs the program (inputs from inputs.npz)."""
    lines = ["import numpy as np", "import jitflow as tf", "", "arrays = np.load('inputs.npz')", "feed = {}"]
    for i, (builder, ids, p) in enumerate(program.steps):
        if builder == "input":
            k = p["input"]
            name, dtype, shape, kind, static = program.inputs[k]
            if kind == "feed":
                dims = list(static) if static is not None else list(shape)
                value = f"arrays['a{k}']"
                if k in program.layouts:     # the same values, laid out differently in memory
                    if not any(line.startswith("from jitflow.fuzz") for line in lines):
                        lines.insert(2, "from jitflow.fuzz.layouts import with_layout")
                    value = f"with_layout({value}, {program.layouts[k]!r})"
                lines.append(f"v{i} = tf.placeholder(tf.{dtype}, {dims}); feed[v{i}] = {value}")
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


def build_graph(program: Program, tf=None, with_expected_error=False):
    """A fresh Graph with the program: (graph, value tensors, fetch tensors, feed_dict). The step
    that must fail to build (`program.expect`) is left out (its value is None) unless
    `with_expected_error`."""
    import jitflow as tf_module
    tf = tf or tf_module
    graph = tf.Graph()
    with graph.as_default():
        values, feed = _build_values(tf, program, None, with_expected_error)
    return graph, values, [values[i] for i in program.fetches], feed


def program_variables(graph, program) -> list:
    """The program's tf.Variables that `graph` (built by build_graph) has, in program order."""
    return [graph._fuzz_vars[k] for k in sorted(graph._fuzz_vars)]


def initial_state(graph, program) -> dict:
    """Variable op name -> OV of its initial value (what the initializer sets)."""
    return {v.op.name: _input_value(np.asarray(program.variables[k], v.dtype.np))
            for k, v in sorted(graph._fuzz_vars.items())}


def _build_values(tf, program, args, with_expected_error=False):
    """Value tensors and the feed dict; `args` (jit) are the feed inputs' tensors, in input order."""
    from ..framework.graph import get_default_graph
    values, feed = [], {}
    env = {"vars": {}, "program": program}
    get_default_graph()._fuzz_vars = env["vars"]
    feed_inputs = [k for k, spec in enumerate(program.inputs) if spec[3] == "feed"]
    arg_of = dict(zip(feed_inputs, args)) if args is not None else {}
    for index, (builder, ids, p) in enumerate(program.steps):
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
        elif builder == "bad_axis" and not with_expected_error:
            values.append(None)
        else:
            try:
                values.append(_apply_step(tf, builder, [values[i] for i in ids], p, env))
            except Exception as exc:
                exc._fuzz_step = index          # which step raised (expected errors: check.py)
                raise
    return values, feed

