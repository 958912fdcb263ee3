"""Cases by number (`case_program`), the worker subprocess and the long run (`run_long`):
crashes and hangs recorded as failures, failures minimized and saved, the summary."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter

from .check import check_program
from .compare import CaseResult
from .draws import RandomDraw
from .generator import GenerationError, generate
from .minimize import minimize, save_repro, save_repro_without_running
from .program import Program
from .steps_issue15 import CATEGORIES


# cases by number, and the long run
def case_program(seed: int, index: int) -> Program:
    """Case `index` of a run with `seed` (deterministic: `--replay SEED:INDEX`)."""
    draw = RandomDraw([seed, index])
    kind = "grad" if draw.bool(0.2) else "forward"
    category = RandomDraw([seed, index, 15]).weighted(CATEGORIES)    # its own stream: issue 15's categories
    for attempt in range(20):
        try:
            program = generate(RandomDraw([seed, index, attempt]) if attempt else draw, kind, category=category)
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
    out_dir = out_dir or tempfile.mkdtemp(prefix=f"jitflow-fuzz-{seed}-")
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
                   f"from jitflow.fuzz.runner import _worker; _worker({seed}, {index}, {deadline!r}, {status_path!r})"]
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
    from ..ops import all_ops
    return all_ops()


