"""The random program generator: values (inputs of every dtype and shape, special values),
picking operands, emitting steps; the step families live in the mixins (steps_*.py)."""
from __future__ import annotations

import numpy as np

from .common import DTYPES, INT_NAMES, MAX_ELEMENTS
from .draws import HypothesisDraw
from .program import Program, _apply_step, step_source
from .steps_conv import ConvSteps
from .steps_issue15 import Issue15Steps
from .steps_layout import LayoutSteps
from .steps_math import MathSteps
from .steps_registry import RegistrySteps


# the generator
SHAPE_DIMS = {1: 4, 2: 4, 3: 4, 4: 2, 5: 2, 0: 1.2, 7: 1, 16: 1, 17: 1.5, 33: 0.7}


class GenerationError(Exception):
    """The generator built an op that graph building rejected (a generator bug, or an infer bug)."""


class NoReference(Exception):
    """A step built an op the oracle cannot evaluate (no registry `reference`)."""


def _oracle_ops() -> set:
    from ..ops import all_ops
    special = {"const", "fill_like", "shape_of", "no_op", "placeholder", "variable", "read_var", "assign_var",
               "assign_add_var", "assign_sub_var"}
    return special | {name for name, opdef in all_ops().items() if opdef.reference is not None}


ORACLE_OPS = _oracle_ops()


class Generator(MathSteps, LayoutSteps, RegistrySteps, Issue15Steps, ConvSteps):
    """Builds one random program step by step; the graph it builds as it goes checks every step."""

    def __init__(self, draw, kind="forward", allow_big=True, category="plain"):
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
        self.category = category          # CATEGORIES (steps_issue15.py)
        self.program.category = category
        self.unknown_p = 0.8 if category == "unknown_dims" else 0.15   # placeholders with None dims
        self.no_variables = category == "jit_static"

    # --- values
    def _add_value(self, tensor, shape, dtype, exact, static_known=True):
        self.tensors.append(tensor)
        self.shapes.append(tuple(shape))
        self.dtypes.append(dtype)
        self.static_known.append(static_known)
        self.exact.append(exact)
        return len(self.tensors) - 1

    def new_input(self, dtype: str, shape, kind=None, array=None, unknown=None) -> int:
        shape = tuple(int(d) for d in shape)
        if kind is None:
            kind = "feed" if (self.grad or self.d.bool(0.7)) else "const"
        array = self.random_array(dtype, shape) if array is None else np.asarray(array, dtype)
        static = None
        if kind == "feed" and not self.grad and shape and unknown is not False and self.d.bool(self.unknown_p):
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
        n_before = len(self.graph.get_operations())
        with self.graph.as_default():
            try:
                tensor = _apply_step(self.tf, builder, [self.tensors[i] for i in ids], params, self.env)
            except (ValueError, TypeError) as exc:
                shapes = [self.shapes[i] for i in ids]
                raise GenerationError(f"{step_source(builder, [f'v{i}' for i in ids], params)} on shapes "
                                      f"{shapes}: {exc}") from exc
        missing = {op._op for op in self.graph.get_operations()[n_before:]} - ORACLE_OPS
        if missing:      # e.g. the shape-polymorphic ops of unknown dims (jitflow/ops/dynamic_shape.py)
            raise NoReference(f"{step_source(builder, [f'v{i}' for i in ids], params)}: {sorted(missing)}")
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
        from .oracle import interpret
        values = interpret(g, dict(zip(xs, zeros)))
        return tuple(values[id(out)].val.shape)

    def step(self):
        d = self.d
        if self.grad:
            table = {"unary": 6, "binary": 6, "reduce": 3, "layout": 3, "matmul": 1, "softmax": 1.2,
                     "normalize": 0.6, "select": 1, "concat": 0.7, "add_n": 0.5, "registry": 1.5, "api_array": 0.8,
                     "api_conv": 0.5}
        else:
            table = {"variable": 0.3, "read": 0.4 if self.var_specs else 0, "update": 1.0, "sgd": 0.3,
                     "unary": 5, "binary": 6, "compare": 2, "select": 1.2, "cast": 2.5, "reduce": 3,
                     "arg": 0.8, "layout": 3, "slice": 2, "concat": 1, "matmul": 1, "add_n": 0.6,
                     "softmax": 2, "normalize": 1, "one_hot": 0.4, "logical": 0.5, "inverse": 0.2,
                     "random": 0.3, "registry": 2, "api_array": 1.2, "api_conv": 0.5,
                     "int_div": 3 if self.category == "int_div" else 0.4,
                     "sparse_xent": 3 if self.category == "sparse_labels" else 0.3}
            if self.no_variables:      # and no random ops: each call of a jitted function draws anew
                for name in ("variable", "read", "update", "sgd", "random"):
                    table[name] = 0
        what = d.weighted(table)
        try:
            getattr(self, "step_" + what)()
        except NoReference:
            pass             # the step is dropped (values it emitted before stay valid)


    def n_ops(self) -> int:
        return sum(1 for b, _, _ in self.program.steps if b != "input")

    def generate(self, n_steps: int) -> Program:
        attempts = 0
        self.category_steps()
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


def generate(draw, kind="forward", n_steps=None, mode=None, allow_big=True, category="plain") -> Program:
    """A random program (`kind` 'forward' or 'grad'; `category` one of CATEGORIES for forward cases)."""
    gen = Generator(draw, kind, allow_big, category if kind == "forward" else "plain")
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
        gen.finish_category()
    return program


def programs(kind="forward", max_steps=8, allow_big=False, category="plain"):
    """A hypothesis strategy of Programs."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        d = HypothesisDraw(draw)
        n = d.int(1, max_steps)
        while True:
            try:
                return generate(d, kind, n_steps=n, allow_big=allow_big, category=category)
            except GenerationError:
                from hypothesis import assume
                assume(False)
    return strategy()

