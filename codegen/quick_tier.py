"""The quick tier of a module: the same LLVM text with every function that cannot change a result
when optimized marked `optnone`, so LLVM skips it (no optimization passes, fast instruction selection).

Which functions may be left unoptimized without changing any bit of any result: generated code
asks for IEEE arithmetic everywhere (no `contract`, fused multiply-adds are explicit `llvm.fma`
calls, no fast-math flags) except in reductions, whose accumulation carries `reassoc` so that the
loop vectorizer may split it into vector lanes. Optimizing IEEE code never changes its results;
optimizing a `reassoc` reduction does (the order of the sum). So functions holding `reassoc` keep
the full pipeline, and the quick tier computes exactly the same numbers as the optimized one
(tests/test_tiered_compile.py holds that bitwise on random graphs): swapping one for the other
while a program runs is invisible except in time.

`alwaysinline` helpers are left alone (they are inlined into their callers either way).

Code generation follows the same line (llvm_worker.quick_objects): the `optnone` functions are emitted
by a level-0 target machine (fast instruction selection and register allocation; the level-3 backend
spent ~0.7 ms per function even on `optnone` ones), the kept functions by the level-3 one exactly as in
the optimized tier (its backend may reassociate `reassoc` arithmetic too); a module with both kinds is
two objects linked into one library (W8's training step: ~10 ms less of a cold process's compile). A
module without kept functions (an initializer) stays at level 3: it usually runs once, is never
upgraded, and every later process would load and run its level-0 code.
"""
from __future__ import annotations

import re

_DEFINE = re.compile(r"(?m)^define ")
_REORDERING_FLAGS = ("reassoc", " fast ", " afn ", " contract ")


def quick_tier_text(text: str) -> str:
    """`text` with the functions that hold no reordering arithmetic marked `noinline optnone`."""
    pieces = _DEFINE.split(text)
    out = [pieces[0]]
    for piece in pieces[1:]:
        head, _, body = piece.partition("\n")
        end = body.find("\n}\n")
        function_body = body if end < 0 else body[:end]
        keep = "alwaysinline" in head or any(flag in function_body for flag in _REORDERING_FLAGS)
        if not keep and " optnone" not in head:
            head = head.replace(" nounwind", " noinline optnone nounwind", 1).replace(
                "noinline noinline", "noinline")
        out.append(head + "\n" + body)
    return "define ".join(out)


def skipped_functions(text: str) -> int:
    """How many functions of a quick-tier module LLVM will not optimize (for statistics)."""
    return sum(1 for line in text.splitlines() if line.startswith("define ") and " optnone" in line)
