"""Differential fuzzing, the fast fixed-seed subset (the long run is `python -m jitflow fuzz
--minutes N`; see jitflow/fuzz/ and docs/RELIABILITY.md).

Random well-typed graphs run compiled (Session.run and @jit) and in the numpy interpreter
built from the ops' `reference`s; gradients of float64 losses against central finite
differences. Hypothesis runs derandomized with a bounded number of examples, so this file
is deterministic and takes well under a minute.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import jitflow as tf
from jitflow import fuzz

FAST = dict(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck),
            print_blob=False)


def _explain(program, result) -> str:
    return f"{result.status}: {result.detail}\n\n{fuzz.program_source(program)}"


@settings(max_examples=120, **FAST)
@given(fuzz.programs("forward", max_steps=8))
def test_random_graphs_match_the_numpy_interpreter(program):
    result = fuzz.check_program(program)
    assert not result.failed and result.status != "oracle_error", _explain(program, result)


@settings(max_examples=40, **FAST)
@given(fuzz.programs("grad", max_steps=6))
def test_random_gradients_match_finite_differences(program):
    result = fuzz.check_program(program)
    assert not result.failed and result.status != "oracle_error", _explain(program, result)


def test_plain_random_generator_fixed_seed():
    """The generator the long run uses (no hypothesis): a fixed block of cases, all kinds."""
    statuses = {}
    for index in range(60):
        program = fuzz.case_program(2024, index)
        result = fuzz.check_program(program)
        assert not result.failed and result.status != "oracle_error", _explain(program, result)
        statuses[result.status] = statuses.get(result.status, 0) + 1
    assert statuses.get("ok", 0) >= 50


# ---- the oracle's comparison rules ------------------------------------------------------
def _ov(values, err=0.0, unc=False):
    values = np.asarray(values)
    return fuzz.OV(values, np.broadcast_to(err, values.shape), np.broadcast_to(unc, values.shape))


def test_compare_rules():
    f32 = np.float32
    assert fuzz.compare(np.array([np.nan, 1.0], f32), _ov(np.array([np.nan, 1.0], f32))) is None   # NaN == NaN
    assert fuzz.compare(np.array([1.0], f32), _ov(np.array([np.nan], f32))) is not None
    assert fuzz.compare(np.array([1.0001], f32), _ov(np.array([1.0], f32))) is not None          # exact: no slack
    assert fuzz.compare(np.array([1.0001], f32), _ov(np.array([1.0], f32), err=1e-4)) is None
    assert fuzz.compare(np.array([3], np.int32), _ov(np.array([4], np.int32), unc=True)) is None  # undetermined
    assert fuzz.compare(np.array([3], np.int64), _ov(np.array([3], np.int32))) is not None       # dtype
    assert fuzz.compare(np.zeros((2, 1), f32), _ov(np.zeros((2,), f32))) is not None             # shape
    assert fuzz.compare(np.array([np.inf], f32), _ov(np.array([np.inf], f32))) is None


def test_interpreter_bounds_are_tight_where_exact_and_loose_where_not():
    x = tf.placeholder(tf.float32, [4])
    y = tf.placeholder(tf.float32, [4])
    total = tf.reduce_sum(x * y)                       # reassociated: nonzero bound
    product = x * y                                    # exact inputs, one rounding: bit exact
    tie = tf.less_equal(tf.reduce_sum(x), tf.reduce_sum(y))
    feeds = {x: np.float32([1, 2, 3, 4]), y: np.float32([4, 3, 2, 1])}
    values = fuzz.interpret(tf.get_default_graph(), feeds)
    assert not np.any(values[id(product)].err) and values[id(total)].err > 0
    assert values[id(tie)].unc          # 10 <= 10, but both sums are inexact: undetermined
    assert values[id(total)].val == 20


def test_interpreter_never_runs_compiled_code(monkeypatch):
    from jitflow.runtime import build
    monkeypatch.setattr(build, "build_executable", lambda *a, **k: pytest.fail("oracle compiled something"))
    program = fuzz.case_program(2024, 3)
    graph, values, fetches, feed = fuzz.build_graph(program)
    fuzz.interpret(graph, feed)


# ---- minimization and repro files ---------------------------------------------------------
def test_minimize_and_save_repro(tmp_path):
    """A planted 'bug' (any program with a floordiv fails) shrinks to a program around one floordiv."""
    def check(program):
        graph, _, fetches, feed = fuzz.build_graph(program)
        run = fuzz._needed(fetches, {id(t) for t in feed})
        bad = any(op._op == "floordiv" and op._id in run for op in graph.get_operations())
        return fuzz.CaseResult("mismatch" if bad else "ok", "planted", failing_fetches=[0] if bad else [])
    program = next(p for p in (fuzz.case_program(5, i) for i in range(400))
                   if p.kind == "forward" and p.expect is None and sum(s[0] != "input" for s in p.steps) >= 4
                   and check(p).status == "mismatch")
    small, result = fuzz.minimize(program, check(program), check=check)
    assert result.status == "mismatch"
    assert sum(s[0] != "input" for s in small.steps) < sum(s[0] != "input" for s in program.steps)
    directory = fuzz.save_repro(small, result, tmp_path / "case")
    files = set(os.listdir(directory))
    assert {"ir.txt", "inputs.npz", "program.json", "program.py", "report.txt"} <= files
    assert "floordiv" in (tmp_path / "case" / "ir.txt").read_text()
    again = fuzz.load_program(directory)
    assert again.to_json() == small.to_json()
    script = subprocess.run([sys.executable, "program.py"], cwd=directory, capture_output=True, text=True,
                            timeout=60)
    assert script.returncode == 0, script.stderr


# ---- the long-run driver ----------------------------------------------------------------
def test_long_run_cli_records_crashes_and_continues(tmp_path):
    """`python -m jitflow fuzz`: cases in a worker process; a worker killed by a signal is a
    'crash' failure of the case it was running (program and inputs saved), and the run goes on."""
    env = dict(os.environ, JITFLOW_FUZZ_CRASH_AT="3", JITFLOW_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "jitflow", "fuzz", "--minutes", "0.12", "--seed", "7",
                           "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr      # one failure: the planted crash
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"]["crash"] == 1 and summary["cases"] > 10
    assert [f["index"] for f in summary["failures"]] == [3]
    assert os.path.exists(tmp_path / "run" / "failures" / "case-7-3" / "program.py")
    assert "ops covered" in proc.stdout and "seed 7:" in proc.stdout
    replay = subprocess.run([sys.executable, "-m", "jitflow", "fuzz", "--replay", "7:4"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0 and "ok" in replay.stdout


# ---- issue 15's categories: a short fixed-seed block each -----------------------------------
def _category_block(category, n, seed=15):
    from jitflow.fuzz.draws import RandomDraw
    statuses, features = {}, set()
    for index in range(n):
        for attempt in range(10):
            try:
                program = fuzz.generate(RandomDraw([seed, index, attempt]), "forward", category=category)
                break
            except fuzz.GenerationError:
                continue
        program.seed = f"{category}:{index}"
        result = fuzz.check_program(program)
        assert not result.failed and result.status != "oracle_error", _explain(program, result)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        features |= result.features
    return statuses, features


def test_category_layout_feeds_and_jit_args():
    """Feeds, @jit arguments and Variable.load values that are Fortran-ordered, transposed or strided
    views, byte-swapped, read-only: the same results as C-ordered native arrays (issue 15 items 2, 3)."""
    statuses, features = _category_block("layout", 24)
    assert statuses.get("ok", 0) == 24
    assert {"layout:fortran", "layout:strided", "layout:readonly"} <= features or \
        len([f for f in features if f.startswith("layout:")]) >= 5
    assert any(f.startswith("layout:byteswap") for f in features)


def test_category_jit_static_arguments():
    """jit(f, static_argnums=1) / static_argnames="training" (positional and keyword), called with
    alternating values: each result follows its static value (issue 15 item 1)."""
    statuses, features = _category_block("jit_static", 12)
    assert statuses.get("ok", 0) == 12
    assert {"jit_static:argnums", "jit_static:argnames_pos", "jit_static:argnames_kw"} <= features


def test_category_integer_division():
    """tf.floordiv / tf.floormod / tf.mod / // / % on int tensors: floor semantics, and
    InvalidArgumentError "Integer division by zero" for a zero divisor (issue 15 item 8)."""
    statuses, features = _category_block("int_div", 16)
    assert "api:int_div" in features and "expected_error" in features
    assert statuses.get("ok", 0) == 16


def test_category_sparse_labels_out_of_range():
    """Sparse softmax cross-entropy (tf.nn, tf.losses, Keras): values, and InvalidArgumentError for
    labels outside [0, classes) (issue 15 item 4)."""
    statuses, features = _category_block("sparse_labels", 14)
    assert "api:sparse_xent" in features and "expected_error" in features


def test_category_out_of_range_axes():
    """An out-of-range axis raises TF's error class when the graph is built, never wraps (item 6)."""
    statuses, features = _category_block("bad_axis", 40)
    assert statuses == {"ok": 40} and "expected_error" in features


def test_category_unknown_dims():
    statuses, features = _category_block("unknown_dims", 14)
    assert "unknown_dims" in features


def test_registry_ops_are_drawn():
    """The generator draws the registry's other elementwise ops (jitflow/ops/math_extra.py and later)."""
    from jitflow.fuzz.steps_registry import registry_elementwise
    names = {o[0] for o in registry_elementwise()}
    assert {"sin", "log1p", "relu6", "squared_difference"} <= names
    seen = set()
    for index in range(150):
        seen |= {name for b, _, p in fuzz.case_program(31, index).steps if b == "op" for name in [p["op"]]}
    assert len(names & seen) >= len(names) - 3


def test_expected_errors_are_enforced():
    """A case that TF rejects passes only when jitflow raises the same class: a planted wraparound
    (the bad step replaced by a valid one) and a planted missing division check both fail."""
    from jitflow.fuzz.draws import RandomDraw
    program = fuzz.generate(RandomDraw([1, 0]), "forward", category="bad_axis")
    step = program.expect["step"]
    builder, ids, p = program.steps[step]
    program.steps[step] = ("op", ids, {"op": "identity"})          # "the axis wrapped": no error
    assert fuzz.check_program(program).status == "mismatch"
    x = np.array([7, -7, 5], np.int32)
    y = np.array([2, 0, -3], np.int32)
    division = fuzz.Program(inputs=[("x", "int32", (3,), "feed", None), ("y", "int32", (3,), "feed", None)],
                            arrays=[x, y], steps=[("input", (), {"input": 0}), ("input", (), {"input": 1}),
                                                  ("int_div", (0, 1), {"fn": "//"})], fetches=[2])
    assert fuzz.check_program(division).status == "ok"
    raw = fuzz.Program(inputs=division.inputs, arrays=division.arrays, steps=division.steps[:2] + [
        ("op", (0, 1), {"op": "floordiv"})], fetches=[2])              # the raw op has no check: values
    assert fuzz.check_program(raw).status == "ok"
    division.arrays[1] = np.array([2, 1, -3], np.int32)
    assert fuzz.check_program(division).status == "ok"


def test_layouts_keep_values():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5
    for name in fuzz.LAYOUTS:
        b = fuzz.with_layout(a, name)
        assert np.array_equal(np.asarray(b, np.float32), a), name
    assert fuzz.with_layout(a, "byteswap").dtype.byteorder in (">", "<") and \
        fuzz.with_layout(a, "byteswap").dtype != a.dtype
    assert not fuzz.with_layout(a, "fortran").flags.c_contiguous
    assert not fuzz.with_layout(a, "strided+readonly").flags.writeable


def test_default_work_directory_is_a_temp_dir(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.chdir(tmp_path)
    summary = fuzz.run_long(0.0, seed=3, echo=lambda *a: None)
    assert summary["out_dir"].startswith(tempfile.gettempdir()) and not os.listdir(tmp_path)
