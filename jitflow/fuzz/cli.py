"""`python -m jitflow fuzz`: the long run, or one case replayed."""
from __future__ import annotations

import os

from .check import check_program
from .compare import CaseResult
from .minimize import load_program
from .program import program_source
from .runner import case_program, format_summary, run_long


def replay(spec: str) -> CaseResult:
    """`SEED:INDEX` (a case number) or a repro directory."""
    if os.path.isdir(spec):
        program = load_program(spec)
    else:
        seed, index = spec.split(":")
        program = case_program(int(seed), int(index))
    print(program_source(program))
    result = check_program(program)
    print(f"{result.status}: {result.detail}")
    return result


def main(argv) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m jitflow fuzz")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help="directory for the log and failure repros")
    parser.add_argument("--replay", default=None, help="SEED:INDEX or a failure directory: run one case")
    args = parser.parse_args(argv)
    if args.replay:
        return 1 if replay(args.replay).failed else 0
    summary = run_long(args.minutes, args.seed, args.out)
    print(format_summary(summary))
    return 1 if summary["failures"] else 0
