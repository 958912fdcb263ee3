"""`python -m jitflow bench --only W4 --contention`: step-time stability beside a busy neighbour.

Starts one CPU-bound neighbour process (a Python busy loop, pinned to no core in particular), then
times every single W4 step (the 784-512-256-10 MLP training step of workloads.py) of each system
in its own child process, and reports the median, the 95th percentile and their ratio (the
target: p95 <= 1.5x the median). Without the neighbour the same numbers show the quiet machine.
The machine may be shared with other work; the report prints the load average before and after.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 600              # timed steps per system (after warm-up)
WARMUP_STEPS = 20
TARGET_RATIO = 1.5
NEIGHBOUR = "import time\nend = time.time() + {seconds}\nx = 0\nwhile time.time() < end:\n    x += 1\n"


def step_times(system: str, workload: str = "W4", steps: int = STEPS) -> list:
    """Runs in a child process: the seconds of each of `steps` consecutive steps."""
    sys.path.insert(0, str(HERE))
    import workloads
    step = workloads.SYSTEMS[system]()[workload]()
    for _ in range(WARMUP_STEPS):
        step()
    tiered = sys.modules.get("jitflow.runtime.tiered_build")
    if tiered is not None:                  # steady state: the optimized code
        tiered.wait_for_background_compiles()
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def summarize(times: list) -> dict:
    ordered = sorted(times)
    median = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": median, "p95": p95, "p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
            "max": ordered[-1], "ratio": p95 / median if median else float("nan"), "steps": len(times)}


def _run_child(system: str, workload: str, steps: int, env=None) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import contention; "
            f"print('@@' + json.dumps(contention.step_times({system!r}, {workload!r}, {steps})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return summarize(json.loads(line[2:]))
    tail = proc.stderr.strip().splitlines()
    return {"skipped": f"{system} failed: {tail[-1] if tail else '?'}"}


def run(systems=("jitflow", "numpy"), workload: str = "W4", steps: int = STEPS, neighbour: bool = True) -> dict:
    """{system: summary} for W4 beside one busy neighbour process (or alone: `neighbour=False`)."""
    results = {"load_before": os.getloadavg()[0], "neighbour": neighbour}
    for system in systems:
        busy = None
        if neighbour:
            busy = subprocess.Popen([sys.executable, "-c", NEIGHBOUR.format(seconds=900)])
            time.sleep(0.3)                 # the neighbour is running before the first step
        try:
            results[system] = _run_child(system, workload, steps)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    results["load_after"] = os.getloadavg()[0]
    return results


def print_report(results: dict, workload: str = "W4"):
    label = "beside one CPU-bound neighbour process" if results.get("neighbour") else "alone"
    print(f"\n{workload} step time {label} (load average {results['load_before']:.2f} before, "
          f"{results['load_after']:.2f} after; other work on this machine shows up here too)")
    print(f"  {'system':10s} {'median':>10s} {'p95':>10s} {'p99':>10s} {'max':>10s} {'p95/median':>11s}")
    for system, r in results.items():
        if not isinstance(r, dict):
            continue
        if "skipped" in r:
            print(f"  {system:10s} {r['skipped']}")
            continue
        verdict = "ok" if r["ratio"] <= TARGET_RATIO else f"above the {TARGET_RATIO}x target"
        print(f"  {system:10s} {r['median'] * 1e3:>8.3f}ms {r['p95'] * 1e3:>8.3f}ms {r['p99'] * 1e3:>8.3f}ms "
              f"{r['max'] * 1e3:>8.3f}ms {r['ratio']:>10.2f}x  {verdict}")


def main(peers=("numpy",), workload: str = "W4", json_path: str | None = None) -> dict:
    systems = ("jitflow",) + tuple(p for p in peers if p not in ("jitflow", "tf"))
    alone = run(("jitflow",), workload, neighbour=False)     # the reference: the same steps on their own
    print_report(alone, workload)
    results = run(systems, workload)
    print_report(results, workload)
    if json_path:
        import platform
        Path(json_path).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "command": " ".join(["python -m jitflow bench"] + sys.argv[2:]),
            "workload": workload, "alone": alone, "contention": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
