"""pytest-benchmark entry points for the workloads (jitflow and numpy rows):

    pytest bench/ --benchmark-only            (not part of the default test run)

`python -m jitflow bench` runs the same workloads side by side with the peers
and prints the comparison tables."""
import pytest

import workloads

SYSTEMS = {"jitflow": workloads.jitflow_workloads, "numpy": workloads.numpy_workloads}
CASES = [(system, name) for system, make in SYSTEMS.items() for name in make()]


@pytest.mark.parametrize("system,name", CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_workload(benchmark, system, name):
    fn = SYSTEMS[system]()[name]()
    if system == "jitflow":                  # steady state: the optimized code, not the quick tier
        fn()
        from jitflow.runtime.tiered_build import wait_for_background_compiles
        wait_for_background_compiles()
    benchmark.group = name
    benchmark(fn)
