"""One benchmark measurement in a fresh interpreter: `module.measure_here(*args)` runs in a child
process (its own session, an empty kernel cache, killed as a group on timeout) and prints its record
as one `@@{json}` line. Used by W9 (compile_time.py), W10 (cnn_workload.py) and W11 (lstm_workload.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def measure_in_fresh_process(module: str, args: tuple, timeout: float, python: str | None = None,
                             drop_env=("JITFLOW_CACHE",)) -> dict:
    """The child's record, or {'status': 'timeout' | 'error', ...}. `python`: another interpreter
    (a peer installed in its own environment); `drop_env`: variables the child must not inherit."""
    with tempfile.TemporaryDirectory(prefix=f"jitflow-{module}-cache-") as cache:
        env = dict(os.environ, JITFLOW_CACHE_DIR=cache, TF_CPP_MIN_LOG_LEVEL="2")
        for name in drop_env:
            env.pop(name, None)
        call = ", ".join(repr(a) for a in args)
        code = (f"import sys, json; sys.path.insert(0, {HERE!r}); import {module}; "
                f"print('@@' + json.dumps({module}.measure_here({call})))")
        proc = subprocess.Popen([python or sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return {"status": "timeout", "timeout_s": timeout}
    for line in stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {proc.returncode}"
    return {"status": "error", "reason": tail[:300]}
