"""Command line:

  python -m jitflow demo                      the main job (seed programs, regression, timings)
  python -m jitflow cache info | clear        the persistent kernel cache
  python -m jitflow dump SCRIPT.py:FUNCTION   IR, fused kernels, LLVM IR and assembly of a jitted function
  python -m jitflow bench [--only W1,W4,W9] [--peers numpy|all] [--json PATH] [--peer-python tf=PYTHON]
  python -m jitflow bench --only W4 --contention   W4 step times beside a busy neighbour process
  python -m jitflow fuzz --minutes N [--seed S] [--out DIR] | --replay SEED:INDEX|DIR
                                              differential fuzzing (jitflow/fuzz/; the work
                                              directory is a new temp dir unless --out)

`dump` imports SCRIPT (its `if __name__ == "__main__":` block does not run),
takes FUNCTION (a function or a `jitflow.jit` function) and example arguments
from `FUNCTION_example_args` in the script (a tuple), or from the signatures
the jitted function was already called with while the script was imported.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys


def _cache(action: str) -> int:
    from .runtime.kernel_cache import DiskCache, cache_root, enabled
    cache = DiskCache(cache_root())
    if action == "info":
        info = cache.info()
        print(f"directory: {info['directory']}\nentries:   {info['entries']}\nbytes:     {info['bytes']}\n"
              f"enabled:   {enabled()} (JITFLOW_CACHE=0 disables, JITFLOW_CACHE_DIR moves it)")
    else:
        print(f"removed {cache.clear()} entries from {cache.root}")
    return 0


def _dump(target: str, show_asm: bool) -> int:
    import numpy as np

    from .jit import JitFunction, jit
    path, _, name = target.rpartition(":")
    if not path or not name:
        print("usage: python -m jitflow dump path/to/script.py:function", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("_jitflow_dump_target", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(__import__("pathlib").Path(path).resolve().parent))
    spec.loader.exec_module(module)
    fn = getattr(module, name)
    jitted = fn if isinstance(fn, JitFunction) else jit(fn)
    examples = getattr(module, f"{name}_example_args", None)
    arg_sets = [examples] if examples is not None else []
    if not arg_sets and isinstance(fn, JitFunction):
        for treedef, leaves, static in fn.signatures():
            arrays = [np.zeros(shape, dtype) for shape, dtype in leaves]
            from . import pytree
            (args, kwargs) = pytree.unflatten(treedef, arrays)
            args = list(args)
            for k, v in static:
                if isinstance(k, int):
                    args[k] = v
            arg_sets.append(tuple(args))
    if not arg_sets:
        print(f"no arguments for {name}: define {name}_example_args = (...) in {path}, or call the jitted "
              f"function at import time", file=sys.stderr)
        return 2
    for args in arg_sets:
        info = jitted.inspect(*args)
        print(info)
        if show_asm:
            print("== assembly ==")
            print(info.asm())
    return 0


def _bench(argv) -> int:
    from pathlib import Path
    bench_dir = Path(__file__).resolve().parent.parent / "bench"
    if not (bench_dir / "run.py").exists():
        print("the benchmark suite lives in the repository's bench/ directory; run this from a clone "
              "(pip install -e .)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(bench_dir))
    import run
    return run.main(argv)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jitflow")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the main job: seed programs and a regression, with timings")
    cache = sub.add_parser("cache", help="inspect or clear the persistent kernel cache")
    cache.add_argument("action", choices=["info", "clear"])
    dump = sub.add_parser("dump", help="print IR / LLVM IR / assembly of SCRIPT.py:FUNCTION")
    dump.add_argument("target")
    dump.add_argument("--asm", action="store_true", help="also print the native assembly")
    sub.add_parser("bench", help="benchmarks W1-W9 against numpy and installed peers (see bench/run.py)",
                   add_help=False)
    sub.add_parser("fuzz", help="differential fuzzing against the numpy references (see jitflow/fuzz/)",
                   add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    if argv and argv[0] == "fuzz":
        from .fuzz import main as fuzz_main
        return fuzz_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main
        demo_main()
        return 0
    if args.command == "cache":
        return _cache(args.action)
    return _dump(args.target, args.asm)


if __name__ == "__main__":
    sys.exit(main())
