"""Running one program compiled (Session.run or @jit) and in the oracle, and comparing: every fetch
of every run (plain arrays, then the same values in odd memory layouts; each value of a @jit static
argument), and the errors TF raises: at graph building for an expected build error, at run time
(InvalidArgumentError with TF's message) where the oracle's check references fail."""
from __future__ import annotations

import traceback

import numpy as np

from ..ops import get_op
from .compare import CaseResult, _graph_ops, compare
from .oracle import _well_conditioned, check_gradient, interpret
from .layouts import with_layout
from .program import Program, _build_values, build_graph, initial_state, program_variables


def check_program(program: Program) -> CaseResult:
    """Runs the program compiled and in the interpreter; compares every fetch."""
    if program.kind == "grad":
        return check_gradient(program)
    import jitflow as tf
    if program.expect is not None and program.expect.get("stage") == "build":
        return _check_build_error(tf, program)
    graph, values, fetches, feed = build_graph(program)
    ops = _graph_ops(graph)
    variables = program_variables(graph, program)
    state = initial_state(graph, program)
    features = category_features(program) | ({"variables"} if variables else set())
    odd_feed = _odd_feed(program, values, feed)
    try:
        oracle = interpret(graph, feed, targets=fetches, state=state)
    except Exception as exc:   # a reference that cannot evaluate what graph building accepted
        return _check_rejected(tf, program, graph, fetches, odd_feed, variables, exc, ops, features)
    has_random = any(get_op(name).kind == "random" for name in ops)
    finals = []
    try:
        if program.mode == "jit":
            runs = _run_jit(tf, program)
        else:
            with tf.Session(graph=graph) as sess:
                _initialize(tf, sess, graph, program, variables)
                # a single run uses the odd layouts; two runs: plain feeds, then odd ones (or the same again)
                single = has_random or variables
                runs = [("", [np.array(o) for o in sess.run(fetches, odd_feed if single else feed)], 0)]
                finals = [np.array(sess._variables[v.op.name]) for v in variables]
                if not single:
                    label = "second run (odd layouts)" if odd_feed is not feed else "second run"
                    runs.append((label, [np.array(o) for o in sess.run(fetches, odd_feed)], 0))
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
    n = len(fetches)
    for label, outputs, rotation in runs:
        for m, got in enumerate(outputs):
            k = (m + rotation) % n
            problem = compare(got, oracle[id(fetches[k])])
            if problem is not None and not any(j == k for j, _ in problems):
                problems.append((k, f"{label}: {problem}" if label else problem))
    for v, got in zip(variables, finals):
        problem = compare(got, state[v.op.name])
        if problem is not None:
            problems.append((-1, f"final value of variable {v.op.name}: {problem}"))
    if any(outputs and max(np.asarray(o).size for o in outputs) >= 1 << 17 for _, outputs, _ in runs):
        features.add("big")
    if problems:
        detail = "\n".join(p if k < 0 else f"fetch {k} (v{program.fetches[k]}): {p}" for k, p in problems)
        return CaseResult("mismatch", detail, ops, features, [k for k, _ in problems if k >= 0])
    return CaseResult("ok", "", ops, features)


def category_features(program: Program) -> set:
    """What a case exercises, for the run's summary (categories, layouts, static arguments, ...)."""
    features = {f"category:{program.category}"}
    features.update(f"layout:{name}" for name in program.layouts.values())
    features.update(f"variable_load:{name}" for name in program.var_loads.values())
    if program.static is not None:
        features.add(f"jit_static:{program.static['how']}")
    builders = {b for b, _, _ in program.steps}
    features.update(f"api:{b}" for b in builders & {"int_div", "sparse_xent", "gather", "pad", "reverse",
                                                     "tf_slice", "cumsum", "bad_axis"})
    if any(spec[3] == "feed" and spec[4] is not None and None in spec[4] for spec in program.inputs):
        features.add("unknown_dims")
    return features


def _odd_feed(program, values, feed):
    """The feed dict with the inputs of `program.layouts` in their odd layouts (`feed` when none)."""
    if not program.layouts:
        return feed
    odd = dict(feed)
    for i, (builder, _, p) in enumerate(program.steps):
        if builder == "input" and p["input"] in program.layouts and values[i] in feed:
            k = p["input"]
            odd[values[i]] = with_layout(program.arrays[k], program.layouts[k])
    return odd


def _initialize(tf, sess, graph, program, variables):
    if variables:
        sess.run(tf.variables_initializer(variables))
    for k, name in sorted(program.var_loads.items()):      # the same values through Variable.load
        if k in graph._fuzz_vars:
            graph._fuzz_vars[k].load(with_layout(program.variables[k], name), sess)


def _check_build_error(tf, program) -> CaseResult:
    """TF raises at graph building (an out-of-range axis): the same step must raise that class."""
    from collections import Counter
    names = program.expect["error"]
    classes = tuple(tf.errors.InvalidArgumentError if n == "InvalidArgumentError" else ValueError for n in names)
    features = category_features(program)
    step = program.steps[program.expect["step"]]
    what = f"{step[2].get('fn', step[0])} with axis={step[2].get('axis')}"
    try:
        build_graph(program, with_expected_error=True)
    except Exception as exc:   # noqa: BLE001
        at = getattr(exc, "_fuzz_step", None)
        if at != program.expect["step"]:
            return CaseResult("error", f"step {at} raised before the expected error of step "
                                       f"{program.expect['step']}: {type(exc).__name__}: {exc}", Counter(), features)
        if isinstance(exc, classes):
            return CaseResult("ok", f"{what}: {type(exc).__name__}", Counter(), features | {"expected_error"})
        return CaseResult("error", f"{what}: TF raises {' or '.join(names)} at graph building; got "
                                   f"{type(exc).__name__}: {exc}", Counter(), features)
    return CaseResult("mismatch", f"{what}: TF raises {' or '.join(names)} at graph building; jitflow built the "
                                  f"graph (the axis wrapped around?)", Counter(), features)


def _expected_run_error(exc, graph) -> str | None:
    """TF's InvalidArgumentError message when the oracle failed where TF fails at run time (a check
    op's reference: labels out of range, a zero integer divisor; gather indices out of range)."""
    from ..ops.checks import CheckFailed
    if isinstance(exc, CheckFailed):
        return str(exc)
    if isinstance(exc, IndexError) and any(op._op == "gather" for op in graph.get_operations()):
        return ""
    return None


def _message_matches(expected: str, got: str) -> bool:
    if " value of " in expected:    # the first bad element's value may differ in order; the rest must not
        return expected.split(" value of ")[0] in got and expected.split(" which ")[-1].rstrip(".") in got
    return expected in got


def _check_rejected(tf, program, graph, fetches, feed, variables, oracle_error, ops, features) -> CaseResult:
    oracle_exc = f"{type(oracle_error).__name__}: {oracle_error}"
    expected = _expected_run_error(oracle_error, graph)
    try:   # fine when the compiled run rejects it too (with a clear error)
        if program.mode == "jit" and expected is not None:
            _run_jit(tf, program)
        else:
            with tf.Session(graph=graph) as sess:
                _initialize(tf, sess, graph, program, variables)
                sess.run(fetches, feed)
    except (tf.errors.OpError, ValueError, TypeError) as compiled_exc:
        if expected is None:
            return CaseResult("ok", f"both reject: {oracle_exc} / {compiled_exc}", ops, features | {"both_reject"})
        if isinstance(compiled_exc, tf.errors.InvalidArgumentError) and _message_matches(expected, str(compiled_exc)):
            return CaseResult("ok", f"expected run-time error: {compiled_exc}", ops, features | {"expected_error"})
        return CaseResult("error", f"TF raises InvalidArgumentError ({expected or oracle_exc}); got "
                                   f"{type(compiled_exc).__name__}: {compiled_exc}", ops, features)
    except Exception:   # noqa: BLE001
        pass
    else:
        if expected is not None:
            return CaseResult("mismatch", f"TF raises InvalidArgumentError ({expected or oracle_exc}) at run time; "
                                          f"the compiled run returned values", ops, features)
    return CaseResult("oracle_error", oracle_exc, ops, features)


def _expected_error(exc, graph, oracle) -> bool:
    """Documented run-time errors: a singular matrix for matrix_inverse."""
    import jitflow as tf
    if isinstance(exc, tf.errors.InvalidArgumentError) and "not invertible" in str(exc):
        for op in graph.get_operations():
            if op._op == "matrix_inverse" and not _well_conditioned(oracle[id(op.inputs[0])].val):
                return True
    return False


def _run_jit(tf, program: Program) -> list:
    """[(label, outputs, rotation)]: the jitted program called with plain arrays, then with the odd
    layouts; with a static argument, once per value (outputs rotated by the value)."""
    feeds = [k for k, spec in enumerate(program.inputs) if spec[3] == "feed"]
    plain = [program.arrays[k] for k in feeds]
    odd = [with_layout(program.arrays[k], program.layouts[k]) if k in program.layouts else program.arrays[k]
           for k in feeds]
    if program.static is None:
        def fn(*args):
            values, _ = _build_values(tf, program, args)
            return [values[i] for i in program.fetches]
        jitted = tf.jit(fn)
        runs = [("", jitted(*plain), 0)]
        has_random = any(b == "random" for b, _, _ in program.steps)
        if program.layouts and not has_random:    # a second call draws other random numbers
            runs.append(("call with odd layouts", jitted(*odd), 0))
    else:
        n = len(program.fetches)

        def fn(args, training):
            values, _ = _build_values(tf, program, list(args))
            outs = [values[i] for i in program.fetches]
            k = int(training) % n
            return outs[k:] + outs[:k]
        how = program.static["how"]
        jitted = tf.jit(fn, static_argnums=(1,)) if how == "argnums" else tf.jit(fn, static_argnames="training")
        runs = []
        for j, value in enumerate(program.static["values"]):
            arrays = odd if j % 2 else plain
            out = jitted(arrays, training=value) if how == "argnames_kw" else jitted(arrays, value)
            runs.append((f"call {j} ({how}, training={value!r})", out, int(value) % n))
    return [(label, [np.array(o) for o in outputs], rotation) for label, outputs, rotation in runs]
