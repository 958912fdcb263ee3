"""Differential fuzzing: random well-typed graphs, run compiled and by an
independent numpy interpreter built from each op's registry `reference`.

Modules (each usable on its own):

* draws.py: `RandomDraw(seed)` (plain numpy randomness, for the long run) and
  `HypothesisDraw` (through `programs()`, a hypothesis strategy that shrinks).
* program.py: a `Program` is pure data (inputs, steps, fetches, and how its
  feeds are laid out in memory); `build_graph` rebuilds it into a fresh graph,
  `program_source` writes it as a standalone tf.* script.
* generator.py (+ steps_math.py, steps_layout.py, steps_registry.py,
  steps_issue15.py): `generate(draw, kind)` builds a random program over random
  inputs (every dtype, 0- and 1-sized dims, broadcasting pairs, NaN, inf, -0.0,
  denormals, int extremes), with several fetches and reused intermediates.
* bounds.py, oracle.py: `interpret(graph, feeds)` evaluates each op with its
  `reference` (never the compiled path), carrying an error bound and a mask of
  undetermined elements; `check_gradient` compares tf.gradients with central
  finite differences of the interpreter.
* compare.py, check.py: `compare(got, ov)` and `check_program(program)`: build,
  run compiled (Session.run or @jit), compare every fetch; expected errors
  (bad axes at graph building, bad labels or zero integer divisors at run time)
  must be raised with TF's error class.
* minimize.py: `minimize(program, result)` shrinks a failing program;
  `save_repro` writes ir.txt, inputs.npz, program.json, program.py, report.txt.
* runner.py: `case_program(seed, index)` and `run_long(minutes, seed, out_dir)`
  (cases in a worker subprocess: crashes and hangs are failures of their case).
* cli.py: `python -m jitflow fuzz --minutes N [--seed S] [--out DIR]`.
"""
from __future__ import annotations

from .bounds import OV, _input_value
from .check import _expected_error, _run_jit, check_program
from .cli import main, replay
from .common import DTYPES, FLOAT_NAMES, INT_NAMES, MAX_ELEMENTS, NUMERIC_NAMES, SAFETY
from .compare import CaseResult, compare
from .draws import HypothesisDraw, RandomDraw
from .generator import GenerationError, Generator, generate, programs
from .minimize import cut, load_program, minimize, prune, save_repro, save_repro_without_running
from .oracle import _needed, check_gradient, interpret
from .program import (Program, build_graph, initial_state, program_source, program_variables, step_source)
from .layouts import LAYOUTS, with_layout
from .runner import _worker, case_program, format_summary, run_long
from .steps_issue15 import CATEGORIES

__all__ = ["CATEGORIES", "LAYOUTS", "with_layout", "OV", "CaseResult", "DTYPES", "FLOAT_NAMES", "GenerationError", "Generator", "HypothesisDraw",
           "INT_NAMES", "MAX_ELEMENTS", "NUMERIC_NAMES", "Program", "RandomDraw", "SAFETY", "build_graph",
           "case_program", "check_gradient", "check_program", "compare", "cut", "format_summary", "generate",
           "initial_state", "interpret", "load_program", "main", "minimize", "program_source", "program_variables",
           "programs", "prune", "replay", "run_long", "save_repro", "save_repro_without_running", "step_source",
           "_expected_error", "_input_value", "_needed", "_run_jit", "_worker"]
