"""The issue-15 case categories: how a case is drawn (`CATEGORIES`) and the generator steps that
only they need (a mixin of Generator):

* layout: feeds, @jit arguments and Variable.load values that are Fortran-ordered, transposed or
  strided views, byte-swapped, read-only or lists (layouts.py); @jit is called first with plain
  arrays, then with the odd ones (a cache keyed on the wrong property returns stale results);
* jit_static: a jitted function whose static argument (by position, `static_argnums`, or by name,
  `static_argnames`, passed positionally or by keyword) selects its outputs, called with
  alternating values;
* int_div: `tf.floordiv`, `tf.floormod`, `tf.mod`, `//`, `%` on integer tensors, with a zero
  divisor sometimes (InvalidArgumentError "Integer division by zero" at run time);
* sparse_labels: sparse softmax cross-entropy (tf.nn, tf.losses, Keras) with labels outside
  [0, classes) sometimes (InvalidArgumentError at run time);
* bad_axis: a program ending in a call with an out-of-range axis (TF's error class at graph
  building);
* unknown_dims: most placeholders have None dims, fed concrete shapes.
"""
from __future__ import annotations

import numpy as np

from .api_steps import BAD_AXIS_FNS, FLOAT_ONLY_BAD_AXIS, INT_DIV_FNS
from .common import FLOAT_NAMES, INT_NAMES, NUMERIC_NAMES
from .layouts import layouts_for

CATEGORIES = {"plain": 40, "layout": 12, "jit_static": 8, "int_div": 8, "sparse_labels": 6, "bad_axis": 6,
              "unknown_dims": 6}
STATIC_HOW = ("argnums", "argnames_pos", "argnames_kw")
STATIC_SEQUENCES = ((True, False, True, False), (False, True, False), (0, 1, 2, 1, 0), (1, 0, 1))


class Issue15Steps:
    def step_int_div(self):
        d = self.d
        dtype = d.choice(INT_NAMES)
        x = self.pick((dtype,))
        shape = self.compatible_shape(self.shapes[x])
        divisor = self.random_array(dtype, shape)
        divisor = np.where(divisor == 0, np.array(d.choice((1, -1, 3)), dtype), divisor).astype(dtype)
        out_size = int(np.prod(np.broadcast_shapes(self.shapes[x], shape), dtype=np.int64))
        if divisor.size and out_size and d.bool(0.35 if self.category == "int_div" else 0.15):
            # TF: InvalidArgumentError "Integer division by zero" (an empty result divides nothing)
            divisor.reshape(-1)[self.data_rng.integers(divisor.size)] = 0
        y = self.new_input(dtype, shape, array=divisor)
        return self.emit("int_div", [x, y], {"fn": d.choice(INT_DIV_FNS)}, True)

    def step_sparse_xent(self):
        d = self.d
        if self.grad:
            return self.step_softmax()
        dtype = self.main_dtype if self.main_dtype in FLOAT_NAMES else d.choice(FLOAT_NAMES)
        classes = d.choice((1, 2, 3, 5, 10))
        batch = d.choice(((), (d.choice((1, 2, 4, 7)),), (d.choice((1, 3)), d.choice((2, 5)))))
        fn = d.choice(("nn", "losses", "keras")) if len(batch) == 1 else "nn"
        logits = self.new_input(dtype, batch + (classes,), unknown=False)
        labels = self.data_rng.integers(0, classes, size=batch)
        if d.bool(0.35 if self.category == "sparse_labels" else 0.15):
            style = d.int(0, 2)
            if style == 0:          # 1-based labels: the common mistake
                labels = labels + 1
            flat = labels.reshape(-1)
            if flat.size:
                flat[self.data_rng.integers(flat.size)] = (classes, -1, classes + 7)[style]
            else:
                labels = np.array(classes) if not batch else labels
        label_input = self.new_input(d.choice(INT_NAMES), batch, array=labels, unknown=False)
        return self.emit("sparse_xent", [label_input, logits], {"fn": fn}, False)

    def add_bad_axis(self):
        """A last step whose axis is out of range: TF raises when the graph is built (no wraparound)."""
        d = self.d
        fn = d.choice(tuple(BAD_AXIS_FNS))
        inserts, errors = BAD_AXIS_FNS[fn]
        dtypes = FLOAT_NAMES if fn in FLOAT_ONLY_BAD_AXIS else INT_NAMES if fn == "one_hot" else NUMERIC_NAMES
        x = self.pick(dtypes, pred=lambda i: 1 <= len(self.shapes[i]) <= 3 and self.static_known[i])
        if not self.static_known[x] or not 1 <= len(self.shapes[x]) <= 3 or self.dtypes[x] not in dtypes:
            x = self.new_input(d.choice(dtypes), self.random_shape(d.int(1, 3)), unknown=False)
        rank = len(self.shapes[x])
        if inserts is None:         # one_hot: -1 or [0, rank]
            axis = d.choice((rank + 1, rank + 2, -2, -3))
        elif inserts:               # [-rank - 1, rank]
            axis = d.choice((rank + 1, rank + 3, -rank - 2, -rank - 5))
        else:                       # [-rank, rank)
            axis = d.choice((rank, rank + 1, rank + 4, -rank - 1, -rank - 3))
        step = len(self.program.steps)
        self.program.steps.append(("bad_axis", (x,), {"fn": fn, "axis": axis, "error": errors}))
        self.program.expect = {"stage": "build", "step": step, "error": list(errors)}

    def category_steps(self):
        """The category's own step first (more may follow among the random steps)."""
        if self.category == "int_div":
            self.step_int_div()
        elif self.category == "sparse_labels":
            self.step_sparse_xent()

    def finish_category(self):
        """Program-level options of the category (after the steps and fetches are drawn)."""
        d, program = self.d, self.program
        if self.category == "bad_axis":
            self.add_bad_axis()
        if self.category == "jit_static":
            program.mode = "jit"
            program.static = {"how": d.choice(STATIC_HOW), "values": list(d.choice(STATIC_SEQUENCES))}
            if len(program.fetches) < 2:        # the static value rotates the outputs: needs two
                program.fetches.append(d.choice([i for i in range(program.n_values()) if i != program.fetches[0]]
                                                or [0]))
        p = 0.8 if self.category == "layout" else 0.1
        jit = program.mode == "jit"
        for k, spec in enumerate(program.inputs):
            if spec[3] == "feed" and d.bool(p):
                options = layouts_for(program.arrays[k], jit)
                if options:
                    program.layouts[k] = d.choice(options)
        if self.category == "layout":
            for k, array in enumerate(program.variables):
                if d.bool(0.6):
                    program.var_loads[k] = d.choice(layouts_for(array, False))
