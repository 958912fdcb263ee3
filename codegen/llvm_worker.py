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
import re
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


def _quick_target_machine(cpu: str, features: str):
    """The same target at code-generation level 0 (fast instruction selection and register allocation:
    a quarter of the time of level 3 even on `optnone` functions)."""
    import llvmlite.binding as llvm
    key = ("quick", cpu, features)
    if _state.get("quick_key") != key:
        _target_machine(cpu, features)
        target = llvm.Target.from_default_triple()
        _state["quick_tm"] = target.create_target_machine(cpu=cpu, features=features, opt=0, jit=True)
        _state["quick_key"] = key
    return _state["quick_tm"]


def optimize(text: str, cpu: str, features: str, quick: bool = False) -> tuple[str, bytes]:
    """-O3 with loop/SLP vectorization and interleaving (no unrolling) -> (optimized IR, object code).
    `quick`: a quick-tier module (codegen/quick_tier.py): its `optnone` functions are emitted at code
    generation level 0, the others as always (quick_objects); the object code may then be two objects
    (pack_objects)."""
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
        optimized = str(module)
        if quick:
            return optimized, quick_objects(module, optimized, cpu, features)
        return optimized, tm.emit_object(module)
    finally:
        manager.close()
        pass_builder.close()
        tuning.close()
        module.close()


# ---- the quick tier's code generation -----------------------------------------------------------
# Level-0 code generation of an IEEE-only function (no reordering flags: quick_tier.py) computes the same
# bits as level 3; functions that kept the full pipeline (reductions, whose `reassoc` arithmetic level 3
# code generation may reassociate further) are emitted at level 3 exactly as in the optimized tier. A
# module holding both kinds becomes two objects linked into one library: each side's functions made
# external, the other side's declared. A module with a mutable global (state two copies would split),
# or without kept functions (see quick_objects), stays one level-3 object.
MULTI_MAGIC = b"\x7fJFOBJS1"
_NAME = re.compile(r'@("(?:[^"\\]|\\.)*"|[-\w.$]+)\(')
_LINKAGE = re.compile(r"^define (?:internal |private )")


def quick_objects(module, optimized: str, cpu: str, features: str) -> bytes:
    kept, relaxed = set(), 0
    for function in module.functions:
        if function.is_declaration:
            continue
        attributes = {a.decode() if isinstance(a, bytes) else str(a) for a in function.attributes}
        if any("optnone" in a for a in attributes):
            relaxed += 1
        else:
            kept.add(function.name)
    tm, _ = _target_machine(cpu, features)
    if not relaxed or not kept:
        # no `optnone` function; or no kept one: such a module (an initializer, an assignment) typically
        # runs once, is never upgraded, and its quick object is what every later process loads from the
        # disk cache: level-3 code there (level 0 made W4's initializer 0.44 -> 1.3 ms in every process)
        return tm.emit_object(module)
    if any(line.startswith("@") and " global " in line.split(";")[0] for line in optimized.split("\n")):
        return tm.emit_object(module)
    fast_text, full_text = _split(optimized, kept)
    return pack_objects([_emit(fast_text, _quick_target_machine(cpu, features)), _emit(full_text, tm)])


def _emit(text: str, tm) -> bytes:
    import llvmlite.binding as llvm
    module = llvm.parse_assembly(text)
    try:
        return tm.emit_object(module)
    finally:
        module.close()


def _params_end(line: str, start: int) -> int:
    depth = 0
    for i in range(start, len(line)):
        if line[i] == "(":
            depth += 1
        elif line[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced function header: {line[:200]}")


def _split(text: str, kept: set) -> tuple[str, str]:
    """(the module with only the functions not in `kept` defined, the module with only those in `kept`)."""
    fast, full = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("define "):
            fast.append(line)
            full.append(line)
            i += 1
            continue
        end = lines.index("}", i)
        match = _NAME.search(line)
        name = match.group(1).strip('"')
        close = _params_end(line, match.end() - 1)
        head = _LINKAGE.sub("define ", line)
        prefix = _LINKAGE.sub("", line[:match.start()]).replace("define ", "", 1)
        declaration = f"declare {prefix}{line[match.start():close + 1]}"
        body = [head] + lines[i + 1:end + 1]
        (full if name in kept else fast).extend(body)
        (fast if name in kept else full).append(declaration)
        i = end + 1
    return "\n".join(fast), "\n".join(full)


def pack_objects(images: list) -> bytes:
    """Several object files as one blob (the disk cache and the loader keep one per executable)."""
    return (MULTI_MAGIC + struct.pack("<I", len(images)) + b"".join(struct.pack("<Q", len(i)) for i in images)
            + b"".join(images))


def object_images(data: bytes) -> list:
    """The object files in `data` (pack_objects' blob, or one plain object)."""
    if not data.startswith(MULTI_MAGIC):
        return [data]
    offset = len(MULTI_MAGIC)
    (count,) = struct.unpack_from("<I", data, offset)
    sizes = struct.unpack_from(f"<{count}Q", data, offset + 4)
    offset += 4 + 8 * count
    images = []
    for size in sizes:
        images.append(data[offset:offset + size])
        offset += size
    if offset != len(data):
        raise ValueError("a packed object blob has trailing or missing bytes")
    return images


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
