"""LLVM optimization + object emission, run in a recycled worker process.

Why a process: llvmlite 0.50's new pass manager leaks native memory on every optimization
run. Measured with heaptrack: disposing the ModulePassManager built by
`PassBuilder.getModulePassManager()` does not free the pass objects of the -O3 pipeline
(the `PassModel`s of InstCombinePass, GVNPass, GlobalDCEPass... with the tables they
filled while running), about 100-350 KB per compiled module, and nothing reachable from
Python frees them (closing every llvmlite object, sharing one PassBuilder, a fresh LLVM
context: the same growth). So the optimization runs in a child process that is replaced
after `JITFLOW_COMPILE_WORKER_RECYCLE` compiles (default 200): the leak is returned to the
system with it, and the main process stays flat however many shapes it compiles.

`optimize(text, cpu, features)` is the single implementation of the pipeline, used by the
worker and, when no worker can run (JITFLOW_COMPILE_WORKER=0, no interpreter to start),
in-process: both produce the same object code. This module imports only llvmlite, so the
worker starts without importing jitflow (`python llvm_worker.py`).
"""
from __future__ import annotations

import pickle
import struct
import sys

_state: dict = {}


def _target_machine(cpu: str, features: str):
    import llvmlite.binding as llvm
    key = (cpu, features)
    if _state.get("key") != key:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        _state["tm"] = target.create_target_machine(cpu=cpu, features=features, opt=3, jit=True)
        _state["triple"] = llvm.get_process_triple()
        _state["key"] = key
    return _state["tm"], _state["triple"]


def optimize(text: str, cpu: str, features: str) -> tuple[str, bytes]:
    """-O3 with loop/SLP vectorization and interleaving (no unrolling) -> (optimized IR, object code)."""
    import llvmlite.binding as llvm
    tm, triple = _target_machine(cpu, features)
    module = llvm.parse_assembly(text)
    module.triple = triple
    module.data_layout = str(tm.target_data)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_interleaving = True     # several vector accumulators per loop (reductions need them)
    tuning.loop_unrolling = False       # unrolling tripled object size and compile time for no speed gain
    pass_builder = llvm.create_pass_builder(tm, tuning)
    manager = pass_builder.getModulePassManager()
    try:
        manager.run(module, pass_builder)
        return str(module), tm.emit_object(module)
    finally:
        manager.close()
        pass_builder.close()
        tuning.close()
        module.close()


def read_frame(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def write_frame(stream, value):
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def main():
    """Serves (text, cpu, features) requests on stdin with (True, ir, object) / (False, error)."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        request = read_frame(source)
        if request is None:
            return
        try:
            write_frame(sink, (True,) + optimize(*request))
        except Exception as exc:        # noqa: BLE001 - reported to the parent, which raises it
            write_frame(sink, (False, f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    main()
