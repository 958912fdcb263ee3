"""Shrinking a failing program (prune, cut values into inputs) and writing repro directories."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .check import check_program
from .compare import CaseResult
from .oracle import interpret
from .program import Program, build_graph, initial_state, program_source


# minimization and repro files
def prune(program: Program, keep_fetches=None) -> Program:
    """Drops steps and inputs no fetch (or the loss) needs; renumbers values."""
    fetches = [program.fetches[k] for k in keep_fetches] if keep_fetches is not None else list(program.fetches)
    needed = set(fetches)
    if program.expect is not None:          # the step that must raise stays
        needed.add(program.expect["step"])
    if program.loss is not None:
        needed.add(program.loss["value"])
    creation = {p["var"]: i for i, (b, _, p) in enumerate(program.steps) if b == "variable"}
    for k in range(len(program.steps) - 1, -1, -1):
        if k in needed:
            needed.update(program.steps[k][1])
            if "var" in program.steps[k][2]:
                needed.add(creation[program.steps[k][2]["var"]])
    mapping, input_map, inputs, arrays, steps = {}, {}, [], [], []
    for k, (builder, ids, p) in enumerate(program.steps):
        if k not in needed:
            continue
        mapping[k] = len(steps)
        if builder == "input":
            old = p["input"]
            if old not in input_map:
                input_map[old] = len(inputs)
                inputs.append(program.inputs[old])
                arrays.append(program.arrays[old])
            steps.append(("input", (), {"input": input_map[old]}))
        else:
            steps.append((builder, tuple(mapping[i] for i in ids), p))
    out = Program(inputs, arrays, steps, [mapping[f] for f in fetches], program.mode, program.seed, program.kind)
    out.variables = list(program.variables)
    if program.loss is not None:
        out.loss = {"value": mapping[program.loss["value"]], "weights": program.loss["weights"]}
    return program.carry_options(out, input_map, mapping)


def cut(program: Program, value: int, array) -> Program:
    """The program with computed value `value` replaced by a fed input holding `array`."""
    array = np.asarray(array)
    spec = (f"cut{value}", array.dtype.name, tuple(array.shape), "feed", None)
    steps = list(program.steps)
    steps[value] = ("input", (), {"input": len(program.inputs)})
    out = Program(program.inputs + [spec], program.arrays + [array], steps, list(program.fetches),
                  program.mode, program.seed, program.kind)
    out.loss = program.loss
    out.variables = list(program.variables)
    return program.carry_options(out)


def minimize(program: Program, result: CaseResult, check=check_program, budget_s: float = 60.0):
    """A smaller program that still fails the same way."""
    start = time.monotonic()
    best, best_result = program, result

    def still_fails(candidate):
        try:
            r = check(candidate)
        except Exception:   # noqa: BLE001 - a different failure is not the same bug
            return None
        return r if r.status == result.status else None
    if result.failing_fetches and program.kind == "forward":
        candidate = prune(program, keep_fetches=[result.failing_fetches[0]])
        r = still_fails(candidate)
        if r is not None:
            best, best_result = candidate, r
    pruned = prune(best)
    r = still_fails(pruned)
    if r is not None:
        best, best_result = pruned, r
    k = 0
    while len(best.fetches) > 1 and k < len(best.fetches) and time.monotonic() - start < budget_s:
        candidate = prune(best, keep_fetches=[j for j in range(len(best.fetches)) if j != k])
        r = still_fails(candidate)
        if r is not None:
            best, best_result = candidate, r
        else:
            k += 1
    changed = best.expect is None          # a program that must fail to build has no values to cut
    while changed and time.monotonic() - start < budget_s:
        changed = False
        graph, values, fetches, feed = build_graph(best)
        state = initial_state(graph, best)
        try:
            oracle = interpret(graph, feed, targets=fetches + ([] if best.loss is None else
                                                             [values[best.loss["value"]]]), state=state)
        except Exception:   # noqa: BLE001
            break
        for value in range(best.n_values()):
            if best.input_of(value) is not None or value in best.fetches or (
                    best.loss is not None and best.loss["value"] == value):
                continue
            if id(values[value]) not in oracle or best.steps[value][0] in ("variable", "read_value", "update"):
                continue        # not computed by the run, or stateful (a cut would change the effects)
            array = oracle[id(values[value])].val
            candidate = prune(cut(best, value, array))
            r = still_fails(candidate)
            if r is not None:
                best, best_result, changed = candidate, r, True
                break
            if time.monotonic() - start > budget_s:
                break
    return best, best_result


def save_repro(program: Program, result: CaseResult, directory) -> str:
    """Writes ir.txt, inputs.npz, program.json, program.py and report.txt; returns the directory."""
    import jitflow as tf
    os.makedirs(directory, exist_ok=True)
    _save_arrays(program, directory)
    with open(os.path.join(directory, "program.json"), "w") as f:
        json.dump(program.to_json(), f, indent=1)
    with open(os.path.join(directory, "program.py"), "w") as f:
        f.write(program_source(program))
    ir_text = ""
    try:
        graph, values, fetches, feed = build_graph(program)
        with tf.Session(graph=graph) as sess:
            ir_text = sess.inspect(fetches, feed).ir_before_passes
    except Exception as exc:   # noqa: BLE001 - the failure may be in compiling itself
        ir_text = f"(inspect failed: {type(exc).__name__}: {exc})"
        try:
            from ..framework.lowering import lower_run
            from ..ir.printer import print_function
            graph, values, fetches, feed = build_graph(program)
            ir_text = print_function(lower_run(graph, fetches, feed).function)
        except Exception:   # noqa: BLE001
            pass
    with open(os.path.join(directory, "ir.txt"), "w") as f:
        f.write(ir_text + "\n")
    with open(os.path.join(directory, "report.txt"), "w") as f:
        f.write(f"status: {result.status}\nseed: {program.seed}\nmode: {program.mode}\n\n{result.detail}\n\n"
                f"program:\n{program_source(program)}")
    return str(directory)


def _save_arrays(program: Program, directory):
    """inputs.npz: a0.. (inputs), then the loss weights (gradient cases), then var0.. (variables)."""
    arrays = {f"a{i}": a for i, a in enumerate(program.arrays)}
    if program.loss is not None:
        arrays[f"a{len(program.arrays)}"] = program.loss["weights"]
    arrays.update({f"var{k}": a for k, a in enumerate(program.variables)})
    np.savez(os.path.join(directory, "inputs.npz"), **arrays)


def load_program(directory) -> Program:
    with open(os.path.join(directory, "program.json")) as f:
        data = json.load(f)
    npz = np.load(os.path.join(directory, "inputs.npz"))
    n = sum(1 for name in npz.files if name.startswith("a"))
    arrays = [npz[f"a{i}"] for i in range(n)] + [npz[f"var{k}"] for k in range(data.get("variables", 0))]
    return Program.from_json(data, arrays)



def save_repro_without_running(program: Program, detail: str, directory):
    """For cases that crashed the worker: program and inputs only (running them again would crash)."""
    os.makedirs(directory, exist_ok=True)
    _save_arrays(program, directory)
    with open(os.path.join(directory, "program.json"), "w") as f:
        json.dump(program.to_json(), f, indent=1)
    with open(os.path.join(directory, "program.py"), "w") as f:
        f.write(program_source(program))
    with open(os.path.join(directory, "report.txt"), "w") as f:
        f.write(f"status: crash\nseed: {program.seed}\n\n{detail}\n")


