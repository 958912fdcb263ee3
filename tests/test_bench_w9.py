"""Issue 16 item 6: W9, the compile-time workload family of the benchmark suite (bench/compile_time.py).

Small chain lengths keep these fast; the real sizes (1k / 3k / 10k ops, MLP + Adam, Keras digits) run
with `python -m jitflow bench --only W9 --peers all`. Checks: each measurement runs in a fresh process
and computes the same numbers as numpy; a measurement past its timeout reports "timeout" quickly; a
peer can run under another interpreter; the CLI writes W9 into the JSON file and prints the tables.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import compile_time  # noqa: E402


def numpy_chain(n_ops):
    return compile_time.chain(compile_time.chain_input(), n_ops, np.tanh)


def test_w9_compile_time_benchmark(capsys):
    report = compile_time.run_w9(peers=("jax",), timeout=120, kinds=("chain",), chain_ops=(8, 16))
    assert list(report["cases"]) == ["chain-8", "chain-16"]
    for n in (8, 16):
        record = report["cases"][f"chain-{n}"]["jitflow"]
        assert record["status"] == "ok", record
        assert record["check"] == pytest.approx(float(np.mean(numpy_chain(n))), rel=1e-5)
        assert 0 < record["build"] <= record["seconds"] and record["first_run"] > 0 and record["import"] > 0
        assert record["seconds"] == pytest.approx(record["build"] + record["first_run"])
        assert report["per_op"]["jitflow"][str(n)] == pytest.approx(record["seconds"] / n)
        assert report["cases"][f"chain-{n}"]["jax"]["status"] in ("ok", "skipped")
    compile_time.print_w9(report)
    text = capsys.readouterr().out
    assert "W9  compile time" in text and "seconds per op as the chain grows" in text
    assert "chain-16      jitflow" in text and "16/8" in text


def test_w9_timeout_reports_timeout():
    start = time.perf_counter()
    record = compile_time.measure("jitflow", "chain", 40000, timeout=2)
    assert record == {"status": "timeout", "timeout_s": 2}
    assert time.perf_counter() - start < 30


def test_w9_peer_under_another_interpreter(tmp_path):
    marker = tmp_path / "used"
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\ntouch {marker}\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    record = compile_time.measure("jitflow", "chain", 4, timeout=120, python=str(wrapper))
    assert marker.exists() and record["status"] == "ok"
    assert record["check"] == pytest.approx(float(np.mean(numpy_chain(4))), rel=1e-5)
    assert compile_time.parse_peer_python(["tf=/opt/tf/bin/python"],
                                          {"JITFLOW_BENCH_PEER_PYTHON": "jax=/j/python, torch=/t/python"}) == {
        "tf": "/opt/tf/bin/python", "jax": "/j/python", "torch": "/t/python"}
    with pytest.raises(ValueError, match="NAME=PYTHON"):
        compile_time.parse_peer_python(["/usr/bin/python"], {})
    with pytest.raises(ValueError, match="multiples of 4"):
        compile_time.cases(("chain",), (10,))


def test_w9_cli_writes_json(tmp_path, capsys):
    import run
    out = tmp_path / "w9.json"
    assert run.main(["--only", "W9", "--w9-cases", "chain", "--w9-chain-ops", "8", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    record = payload["W9"]["cases"]["chain-8"]["jitflow"]
    assert record["status"] == "ok" and record["seconds"] > 0
    assert payload["W9"]["interpreters"]["jitflow"] == sys.executable
    assert "W9  compile time" in capsys.readouterr().out
    assert os.environ.get("JITFLOW_CACHE_DIR")                      # the test's cache dir is left alone
