"""The persistent kernel cache, exercised across real processes."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import jitflow as tf
    from jitflow import runtime
    warnings.simplefilter("always")
    @tf.jit
    def step(w, x):
        return tf.reduce_mean(tf.square(tf.nn.relu(tf.matmul(x, w)) - 1.0))
    x = tf.placeholder(tf.float32, (None, 2))
    y = tf.reduce_sum(x * 3.0)
    with tf.Session() as sess:
        session_value = float(sess.run(y, {x: np.ones((4, 2))}))
    value = float(step(np.ones((3, 2), np.float32), np.ones((5, 3), np.float32)))
    print(json.dumps({"value": value, "session": session_value, "stats": runtime.stats()}))
""")


def run_script(cache_dir, extra_env=None):
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(cache_dir), **(extra_env or {}))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def entries(cache_dir):
    return [p for p in Path(cache_dir, "v1").glob("??/*") if p.is_dir()]


def test_second_process_reuses_disk_cache(tmp_path):
    first, _ = run_script(tmp_path)
    assert first["stats"]["compiles"] == 2 and first["stats"]["disk_hits"] == 0
    second, _ = run_script(tmp_path)
    assert second["stats"]["compiles"] == 0 and second["stats"]["disk_hits"] == 2
    assert second["value"] == first["value"] == 4.0 and second["session"] == 24.0
    assert len(entries(tmp_path)) == 2   # keys are identical across processes


def test_truncated_entry_is_recompiled(tmp_path):
    run_script(tmp_path)
    for entry in entries(tmp_path):
        data = (entry / "kernel.o").read_bytes()
        (entry / "kernel.o").write_bytes(data[: len(data) // 2])
    result, stderr = run_script(tmp_path)
    assert result["value"] == 4.0 and result["stats"]["compiles"] == 2
    assert "corrupt or truncated" in stderr
    third, _ = run_script(tmp_path)
    assert third["stats"]["compiles"] == 0


def test_corrupt_metadata_is_recompiled(tmp_path):
    run_script(tmp_path)
    for entry in entries(tmp_path):
        (entry / "meta.json").write_text("{not json")
    result, stderr = run_script(tmp_path)
    assert result["value"] == 4.0 and result["stats"]["compiles"] == 2 and "corrupt" in stderr


def test_cache_can_be_disabled(tmp_path):
    result, _ = run_script(tmp_path, {"JITFLOW_CACHE": "0"})
    assert result["value"] == 4.0 and not entries(tmp_path)


def test_unwritable_cache_directory_warns_once_and_works(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result, stderr = run_script(blocker / "cache")
    assert result["value"] == 4.0
    assert stderr.count("not writable") == 1


def test_processes_filling_one_directory_at_once(tmp_path):
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    assert {json.loads(o[0].strip().splitlines()[-1])["value"] for o in outputs} == {4.0}
    assert len(entries(tmp_path)) == 2
    assert not list(Path(tmp_path, "v1").glob("??/.tmp-*"))


def test_cli_info_and_clear(tmp_path):
    run_script(tmp_path)
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(tmp_path))
    info = subprocess.run([sys.executable, "-m", "jitflow", "cache", "info"], env=env, capture_output=True,
                          text=True, check=True).stdout
    assert "entries:   2" in info
    cleared = subprocess.run([sys.executable, "-m", "jitflow", "cache", "clear"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "removed 2" in cleared and not entries(tmp_path)


@pytest.mark.parametrize("part", ["ir", "target", "compiler"])
def test_meta_records_key_parts(tmp_path, part):
    run_script(tmp_path)
    meta = json.loads((entries(tmp_path)[0] / "meta.json").read_text())
    assert part in meta["parts"]
