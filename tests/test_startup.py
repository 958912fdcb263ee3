"""Issue 16, W8 (time to the first step of a fresh process) and the pool's wake-up latency.

- The warm path (a second process on a filled disk cache) runs no LLVM at all: no optimization, no
  object emission (neither for the executables nor for the thread pool), no LLVM IR generated
  before an executable's second call; its results equal the cold process's, bit for bit.
- A quick-tier disk entry's optimized upgrade makes its LLVM text only when it starts (lazily).
- The compiler fingerprint memo (runtime/fingerprint_memo.py): reused while the covered files are
  unchanged, never written for racily new files, ignored when damaged.
- CSE keys a large constant by identity unless another constant could equal it (same dtype and
  shape): equal constants still merge, different ones do not.
- The thread pool: JITFLOW_POOL_SPIN sets how long a worker spins before it parks; jobs stay correct
  whether workers always park (0) or spin long, with gaps between jobs longer than the spin.
- numpy's OpenBLAS "is it loaded" probe (RTLD_NOLOAD) never loads a library; jitflow's own OpenBLAS
  is loaded without its thread pool (whose threads spun beside the first steps' pool workers).
- The quick tier's code generation: IEEE kernels at level 0 and kept reductions at level 3 as two
  objects in one library, bit-identical to the optimized code, also through a compile worker.
- The import-time warm-up thread (runtime/warmup.py) prepares the JIT, the BLAS and the fingerprint,
  a fork waits for it, and JITFLOW_WARMUP=0 turns it off.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import jitflow as tf
from jitflow.runtime import fingerprint, fingerprint_memo, thread_budget

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# one process: an MLP training step (matmuls split over the pool, reductions, the initializer), its
# counters and what LLVM did, as JSON
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jitflow as tf
    from jitflow.codegen import compile_pool, cpu, thread_pool
    from jitflow.runtime import counters, build
    calls = {"optimize": 0, "generate": 0, "pool_emit": 0}
    def counting(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper
    compile_pool.optimize = counting("optimize", compile_pool.optimize)
    cpu.generate_llvm_ir = counting("generate", cpu.generate_llvm_ir)
    build.cpu.generate_llvm_ir = cpu.generate_llvm_ir
    import llvmlite.binding as llvm
    llvm.TargetMachine.emit_object = counting("pool_emit", llvm.TargetMachine.emit_object)
    r = np.random.default_rng(0)
    x = r.standard_normal((256, 300)).astype(np.float32)
    y = r.integers(0, 10, 256).astype(np.int32)
    g = tf.Graph()
    with g.as_default():
        X = tf.placeholder(tf.float32, (None, 300))
        Y = tf.placeholder(tf.int32, (None,))
        W1 = tf.Variable((r.standard_normal((300, 400)) * 0.05).astype(np.float32))
        W2 = tf.Variable((r.standard_normal((400, 10)) * 0.05).astype(np.float32))
        logits = tf.matmul(tf.nn.relu(tf.matmul(X, W1)), W2)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=logits))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = tf.Session(graph=g)
        sess.run(tf.global_variables_initializer())
    first = sess.run([train, loss], {X: x, Y: y})[1]
    before_second = dict(calls)
    second = sess.run([train, loss], {X: x, Y: y})[1]
    from jitflow.runtime import wait_for_background_compiles
    wait_for_background_compiles()
    print("@@" + json.dumps({"first": float(first), "second": float(second), "calls": calls,
                             "before_second": before_second, "stats": counters.stats(),
                             "workers": thread_pool.workers()}))
""")


def _run_child(cache, extra_env=None, code=_CHILD):
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(cache), **(extra_env or {}))
    env.pop("JITFLOW_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert lines, proc.stderr[-3000:]
    return json.loads(lines[0][2:])


def test_warm_process_runs_no_llvm_and_matches_cold(tmp_path):
    cold = _run_child(tmp_path)
    assert cold["calls"]["optimize"] >= 1 and cold["stats"]["compiles"] >= 2
    warm = _run_child(tmp_path)
    # warm: every executable and the pool's object come from the disk cache
    assert warm["stats"]["compiles"] == 0 and warm["stats"].get("quick_tier_compiles", 0) == 0
    assert warm["stats"]["disk_hits"] >= 2
    assert warm["calls"]["optimize"] == 0, warm["calls"]          # no LLVM optimization pipeline
    assert warm["calls"]["pool_emit"] == 0, warm["calls"]         # no object emission (pool included)
    assert warm["before_second"]["generate"] == 0                 # no LLVM IR made before a 2nd call
    assert (warm["first"], warm["second"]) == (cold["first"], cold["second"])
    assert np.isfinite(cold["first"]) and cold["second"] < cold["first"]      # it trains


def test_quick_tier_entry_upgrade_makes_its_text_lazily(tmp_path):
    """A quick-tier disk entry (the initializer: run once, so never upgraded) is loaded by the next
    process without generating LLVM IR; an executable whose quick entry is upgraded generates it then."""
    from jitflow.runtime import tiered_build
    if not tiered_build.enabled():
        pytest.skip("tiered compilation needs compile workers")
    _run_child(tmp_path, {"JITFLOW_TIERED_EXIT_WAIT": "0"})
    warm = _run_child(tmp_path)
    assert warm["before_second"]["generate"] == 0
    assert warm["stats"]["compiles"] == 0
    if warm["stats"].get("background_compiles"):     # the step's quick entry was upgraded here: text made then
        assert warm["calls"]["generate"] >= 1


def test_fingerprint_memo_reused_racy_and_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JITFLOW_CACHE", raising=False)
    package = tmp_path / "pkg"
    package.mkdir()
    files = {}
    for i in range(3):
        path = package / f"m{i}.py"
        path.write_text(f"VALUE = {i}\n")
        files[f"probe.m{i}"] = fingerprint._PathResource(str(path))
    old = time.time() - 60
    for resource in files.values():
        os.utime(resource.path, (old, old))
    # ctime cannot be set back (it is now: racily new), so the window is moved instead: first every
    # file counts as too new to trust, then every file as settled
    monkeypatch.setattr(fingerprint_memo, "RACY_SECONDS", 1e6)
    racy = fingerprint_memo.stat_key(files)
    assert racy.startswith("racy:")
    fingerprint_memo.store(racy, {"digest": "0" * 64, "modules": []})
    assert fingerprint_memo.load(racy) is None                       # racy: never stored, never read
    monkeypatch.setattr(fingerprint_memo, "RACY_SECONDS", -1e9)
    key = fingerprint_memo.stat_key(files)
    assert key is not None and not key.startswith("racy:")
    with pytest.warns(RuntimeWarning, match="found no code"):       # the probe files are not jitflow's
        value = fingerprint._hash(files)
    value.pop("random")
    fingerprint_memo.store(key, value)
    assert fingerprint_memo.load(key) == value
    assert fingerprint_memo.stat_key(files) == key                   # unchanged files: same key
    (package / "m1.py").write_text("VALUE = 11\n")                   # an edit changes size/mtime: new key
    assert fingerprint_memo.stat_key(files) != key
    memo_file = tmp_path / "cache" / "v1" / "fingerprint" / key
    memo_file.write_text("{not json")
    assert fingerprint_memo.load(key) is None                        # damaged: ignored
    memo_file.write_text(json.dumps({"digest": "xyz", "modules": []}))
    assert fingerprint_memo.load(key) is None
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    assert fingerprint_memo.load(key) is None                        # no disk cache: no memo


def test_fingerprint_with_memo_equals_full_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("JITFLOW_CACHE", raising=False)
    monkeypatch.setattr(fingerprint_memo, "RACY_SECONDS", -1e9)      # treat the checkout's files as settled
    fingerprint._reset_for_tests()
    try:
        first = fingerprint.fingerprint_info()
        assert first["digest"] == fingerprint._hash(fingerprint.covered_files())["digest"]
        fingerprint._reset_for_tests()
        monkeypatch.setattr(fingerprint, "_hash", lambda files: pytest.fail("hashed again despite the memo"))
        assert fingerprint.fingerprint_info() == first
    finally:
        fingerprint._reset_for_tests()


def test_cse_large_constants_merge_only_when_equal():
    from jitflow.passes.cse import _unique_arrays, eliminate_common_subexpressions
    from jitflow.framework.lowering import lower_run
    big = np.arange(5000, dtype=np.float32).reshape(50, 100)
    g = tf.Graph()
    with g.as_default():
        a = tf.constant(big)
        b = tf.constant(big.copy())             # equal content, another array: merged
        c = tf.constant(big + 1)                # same dtype/shape, other content: kept
        d = tf.constant(np.ones((7, 3), np.float32) * 3)     # alone with its shape: keyed by identity
        outs = [a * 2.0, b * 2.0, c * 2.0, tf.reduce_sum(d)]
    fn = lower_run(g, outs, {}).function
    constants = [n for n in fn.nodes if n.op == "const"]
    unique = _unique_arrays(fn)
    arrays = [next(v for v in n.attrs.values() if isinstance(v, np.ndarray)) for n in constants]
    assert any(id(x) in unique for x in arrays if x.shape == (7, 3))
    assert not any(id(x) in unique for x in arrays if x.shape == (50, 100))
    fn = eliminate_common_subexpressions(fn)
    shapes = sorted(tuple(next(v for v in n.attrs.values() if isinstance(v, np.ndarray)).shape)
                    for n in fn.nodes if n.op == "const" and n.attrs["value"].ndim == 2)
    assert shapes.count((50, 100)) == 2 and shapes.count((7, 3)) == 1
    with tf.Session(graph=g) as sess:
        got = sess.run(outs)
    np.testing.assert_array_equal(got[0], big * 2)
    np.testing.assert_array_equal(got[1], big * 2)
    np.testing.assert_array_equal(got[2], (big + 1) * 2)
    assert got[3] == pytest.approx(63.0)


_POOL_CHILD = textwrap.dedent("""
    import json, time
    import numpy as np
    import jitflow as tf
    from jitflow.codegen import thread_pool
    r = np.random.default_rng(1)
    x = r.standard_normal((512, 256)).astype(np.float32)
    w = r.standard_normal((256, 384)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        X = tf.placeholder(tf.float32, (512, 256))
        y = tf.nn.relu(tf.matmul(X, tf.constant(w))) * 0.5 + 1.0        # a split GEMM, a parallel loop
        sess = tf.Session(graph=g)
    want = np.maximum(x.astype(np.float64) @ w.astype(np.float64), 0) * 0.5 + 1.0
    worst, times = 0.0, []
    for i in range(60):
        if i % 3 == 0:
            time.sleep(0.002)             # longer than any spin: the workers park and are woken
        start = time.perf_counter()
        got = sess.run(y, {X: x})
        times.append(time.perf_counter() - start)
        worst = max(worst, float(np.max(np.abs(got - want) / (1 + np.abs(want)))))
    print("@@" + json.dumps({"spin": thread_pool._state.get("spin"), "workers": thread_pool.workers(),
                             "worst": worst, "median": sorted(times)[len(times) // 2]}))
""")


@pytest.mark.parametrize("spin", ["0", "100000"])
def test_pool_correct_whether_workers_park_or_spin(tmp_path, spin):
    out = _run_child(tmp_path, {"JITFLOW_POOL_SPIN": spin, "JITFLOW_NUM_THREADS": "2"}, _POOL_CHILD)
    assert out["spin"] == int(spin)
    assert out["workers"] == 1
    assert out["worst"] < 1e-4


def test_pool_spin_setting(monkeypatch):
    from jitflow.codegen import thread_pool
    from jitflow.envvars import ConfigWarning
    monkeypatch.delenv("JITFLOW_POOL_SPIN", raising=False)
    assert thread_pool.spin_iterations() == thread_pool.SPIN
    monkeypatch.setenv("JITFLOW_POOL_SPIN", "123")
    assert thread_pool.spin_iterations() == 123
    monkeypatch.setenv("JITFLOW_POOL_SPIN", "lots")
    with pytest.warns(ConfigWarning, match="JITFLOW_POOL_SPIN"):
        assert thread_pool.spin_iterations() == thread_pool.SPIN
    # the pool's module is compiled unoptimized (fast instruction selection) and yields while spinning
    from jitflow.codegen.quick_tier import quick_tier_text
    text = quick_tier_text(thread_pool._pool_ir(True))
    assert all(" optnone" in line for line in text.splitlines() if line.startswith("define "))
    assert "spin.yield" in text and "@sched_yield()" in text


def test_blas_loaded_probe_never_loads(tmp_path):
    import glob
    import site
    with open("/proc/self/maps") as maps:
        mapped = maps.read()
    candidates = [p for d in site.getsitepackages() for p in glob.glob(os.path.join(d, "*", "*.so"))
                  if os.path.realpath(p) not in mapped]
    if not candidates:
        pytest.skip("no unloaded shared library to probe")
    path = candidates[0]
    assert thread_budget._is_loaded(path) is False
    with open("/proc/self/maps") as maps:
        assert os.path.realpath(path) not in maps.read()
    from jitflow.runtime import blas
    for numpy_blas in blas.numpy_library_paths():      # numpy is imported: its OpenBLAS is mapped
        assert thread_budget._is_loaded(numpy_blas) is True


def _reduction_mix(rng):
    g = tf.Graph()
    with g.as_default():
        a = tf.placeholder(tf.float32, [61, 257])
        fetches = [tf.reduce_sum(tf.tanh(a) * 3.0, 1), tf.reduce_mean(a * a), tf.nn.softmax(a),
                   tf.sigmoid(a) + 1.0, tf.reduce_max(tf.exp(a * 0.1), 0)]
    return g, fetches, {a: rng.standard_normal((61, 257)).astype(np.float32)}


def test_quick_tier_is_two_objects_and_bitwise_equal_to_optimized():
    """Reductions (kept at -O3, emitted at level 3) and IEEE kernels (optnone, emitted at level 0) of one
    module become two objects linked into one library; results equal the optimized code's bit for bit."""
    from jitflow.codegen import cpu, llvm_worker
    from jitflow.framework.lowering import lower_run
    from jitflow.runtime import build, tiered_build
    from jitflow.runtime.blas import blas_symbols
    from jitflow.passes import run_pipeline
    from jitflow.passes.fusion import schedule_function
    from jitflow.runtime.executable import Executable
    g, fetches, feeds = _reduction_mix(np.random.default_rng(3))
    lowered = lower_run(g, fetches, feeds)
    args = [feeds[t] for t in lowered.feed_tensors]
    schedule = schedule_function(run_pipeline(lowered.function))
    text, imports = cpu.generate_llvm_ir(schedule, blas=bool(blas_symbols()))
    quick = tiered_build.compile_quick(text, imports)
    assert quick is not None and len(llvm_worker.object_images(quick.object_code)) == 2
    full = cpu.compile_llvm_ir(text, imports)
    assert len(llvm_worker.object_images(full.object_code)) == 1
    n_results = sum(1 for v in lowered.function.results if v.is_tensor)
    outs = []
    for compiled in (quick, full):
        loaded = cpu.LoadedCode(compiled.object_code, {n: blas_symbols()[n] for n in imports})
        outs.append(Executable(schedule, loaded, n_results)(args, []))
    for q, f in zip(*outs):
        assert q.tobytes() == f.tobytes()
    x = feeds[next(iter(feeds))].astype(np.float64)
    np.testing.assert_allclose(outs[0][lowered.fetch_results[0]], (np.tanh(x) * 3).sum(1), rtol=1e-5, atol=1e-4)
    assert build is not None


def test_split_module_text_and_object_packing():
    from jitflow.codegen import llvm_worker
    text = "\n".join([
        "@jf.t = private unnamed_addr constant [2 x i64] [i64 1, i64 2]",
        "define internal fastcc float @k0_reduce(ptr noalias %0, i64 %n) #0 {", "entry:",
        "  %v = load float, ptr %0", "  %w = fadd reassoc float %v, 1.0", "  ret float %w", "}",
        "define internal void @k1_loop(ptr %0) #1 {", "entry:", "  %x = call fastcc float @k0_reduce(ptr %0, i64 3)",
        "  store float %x, ptr %0", "  ret void", "}",
        "define i32 @jf_entry(ptr %s) #1 {", "entry:", "  call void @k1_loop(ptr %s)", "  ret i32 0", "}",
        "attributes #0 = { noinline nounwind }", "attributes #1 = { noinline nounwind optnone }", ""])
    fast, full = llvm_worker._split(text, {"k0_reduce"})
    assert "define fastcc float @k0_reduce(ptr noalias %0, i64 %n) #0 {" in full
    assert "declare fastcc float @k0_reduce(ptr noalias %0, i64 %n)" in fast
    assert "define void @k1_loop(ptr %0) #1 {" in fast and "declare void @k1_loop(ptr %0)" in full
    assert "define i32 @jf_entry" in fast and "@jf.t = private" in fast and "@jf.t = private" in full
    import llvmlite.binding as llvm
    for piece in (fast, full):
        llvm.parse_assembly(piece).verify()
    blobs = [b"\x7fELF-one", b"", b"\x7fELF-three" * 100]
    assert llvm_worker.object_images(llvm_worker.pack_objects(blobs)) == blobs
    assert llvm_worker.object_images(b"\x7fELF plain") == [b"\x7fELF plain"]
    with pytest.raises(ValueError):
        llvm_worker.object_images(llvm_worker.pack_objects(blobs)[:-1])


_WORKER_CHILD = textwrap.dedent("""
    import json, os
    import numpy as np
    import jitflow as tf
    from jitflow.runtime import counters
    threads = len(os.listdir("/proc/self/task"))
    r = np.random.default_rng(5)
    a_value = r.standard_normal((40, 300)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        a = tf.placeholder(tf.float32, [40, 300])
        y = [tf.reduce_sum(tf.tanh(a), 1), tf.nn.relu(a) * 2.0]
        sess = tf.Session(graph=g)
    got = sess.run(y, {a: a_value})
    want = np.tanh(a_value.astype(np.float64)).sum(1)
    print("@@" + json.dumps({"err": float(np.max(np.abs(got[0] - want))), "relu": bool(np.array_equal(
        got[1], np.maximum(a_value, 0) * 2)), "quick": counters.stats().get("quick_tier_compiles", 0),
        "openblas_env": os.environ.get("OPENBLAS_NUM_THREADS"), "threads_before": threads,
        "threads_after": len(os.listdir("/proc/self/task"))}))
""")


def test_quick_compile_through_a_worker_process_and_warmup_off(tmp_path):
    """Past the in-process compiles the quick tier's two objects come from a worker process; with
    JITFLOW_WARMUP=0 nothing runs at import; loading the BLAS leaves OPENBLAS_NUM_THREADS as it was."""
    out = _run_child(tmp_path, {"JITFLOW_COMPILE_IN_PROCESS_FIRST": "0", "JITFLOW_WARMUP": "0",
                                "JITFLOW_NUM_THREADS": "2"}, _WORKER_CHILD)
    assert out["quick"] >= 1 and out["err"] < 1e-3 and out["relu"]
    assert out["openblas_env"] is None


def test_blas_loads_without_its_own_thread_pool(tmp_path):
    code = textwrap.dedent("""
        import json, os
        from jitflow.runtime import warmup
        warmup.finish()
        from jitflow.runtime import blas
        before = len(os.listdir("/proc/self/task"))
        blas.blas_symbols()
        print("@@" + json.dumps({"before": before, "after": len(os.listdir("/proc/self/task")),
                                 "source": blas.blas_source()[0], "env": os.environ.get("OPENBLAS_NUM_THREADS")}))
    """)
    out = _run_child(tmp_path, {"JITFLOW_WARMUP": "0"}, code)
    if out["source"] != "scipy-openblas64":
        pytest.skip("jitflow's BLAS is numpy's copy here (loaded with numpy)")
    assert out["after"] == out["before"]          # no OpenBLAS server threads spinning beside the pool
    assert out["env"] is None


def test_warmup_prepares_jit_blas_and_fingerprint_and_fork_waits(tmp_path):
    code = textwrap.dedent("""
        import json, os
        import jitflow
        from jitflow.runtime import warmup, blas, fingerprint
        from jitflow.codegen import cpu
        warmup.finish(30)
        ready = {"jit": "jit" in cpu._state, "blas": "symbols" in blas._cache, "fingerprint": bool(fingerprint._cached)}
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("@@" + json.dumps(ready))
    """)
    assert _run_child(tmp_path, {}, code) == {"jit": True, "blas": True, "fingerprint": True}
    off = _run_child(tmp_path, {"JITFLOW_WARMUP": "0"}, code.replace("warmup.finish(30)", "pass"))
    assert off == {"jit": False, "blas": False, "fingerprint": False}
