"""The persistent worker pool that generated parallel loops run on, and the entry-point lines
that hand it a job.

Why LLVM IR text: jitflow needs no C compiler at install time, and the pool's hot path (post a
job, claim chunks, park) must not go through Python (the GIL) or ctypes. So the pool is a small
LLVM module written here as text, compiled ONCE per process by llvmlite's LLJIT (the JIT that
loads every executable, codegen/cpu.py) and linked in as its own library; generated modules call
`jf_pool_run` through an imported symbol, as they call the BLAS symbols. It uses only libc
(pthread_create, pthread mutex/condition variable, sched_yield), so it runs wherever jitflow runs.

The job is (chunk function, header, extent, thread count): `chunk(header, start, stop)` runs
[start, stop) of the outer loop. The extent is cut into min(extent, threads * CHUNKS_PER_THREAD)
chunks that the calling thread AND the workers claim one at a time from one atomic word
(generation << 32 | next chunk; a new job first closes the last one's word with a generation of
its own, then writes its fields, then publishes, so a claim can only succeed on the fields of
the job whose word it saw): a worker the OS does not schedule (a busy neighbour process)
simply gets no chunk, and the caller does the work instead of waiting a whole time slice for
a fixed slice to finish. The caller waits only for chunks already claimed.

Workers are created lazily, once (`start`, at the first executable that has a parallel loop),
budget - 1 of them (JITFLOW_NUM_THREADS, codegen/cpu.py `num_threads`; runtime/thread_budget.py
sets the BLAS side of the same budget). Between jobs a worker spins (SPIN iterations of `pause`,
~0.1 ms; JITFLOW_POOL_SPIN overrides it), offering its core (`sched_yield`) every YIELD_EVERY
iterations, and then parks on a condition variable. A yield that took long (YIELD_TAKEN_CYCLES of
the cycle counter) means another thread wanted the core (a busy neighbour process, or the caller on
an oversubscribed machine): the worker then parks at once instead of spinning on. Why that long a
spin: a W4 step posts its next job within tens of microseconds of the last one, W6's calls come
~0.1 ms apart; with a spin of a few microseconds (the first design) a job found the workers parked
and paid a futex wake-up (tens of microseconds in a VM): W4 3.13 -> 3.30 ms, W6 172 -> 181 us.
The pool's module is compiled unoptimized (optnone, code-generation level 0: its paths are atomics,
pauses and calls; ~1 of the ~10 ms it took a cold process). The caller waiting for
claimed chunks spins a little, then yields its core (`sched_yield`) to whoever holds one. A thread that cannot be
created is simply not there (zero workers: every job runs inline on the caller). A job posted
while another thread's job holds the pool (two sessions in two Python threads) runs inline on
its own thread, so two jobs never oversubscribe the cores.
"""
from __future__ import annotations

import ctypes
import os
import threading

CHUNKS_PER_THREAD = 2    # chunks per participating thread: enough slack to balance, few enough to stay cheap
SPIN = 4000             # `pause` iterations a worker spins before it parks (~0.1 ms; see the module docstring)
YIELD_EVERY = 256       # while spinning, a worker offers its core (`sched_yield`) every this many iterations
YIELD_TAKEN_CYCLES = 100_000   # a yield that took longer (~40 us): another thread needed the core, park now
POOL_LIBRARY = "jf_thread_pool"
RUN_SYMBOL = "jf_pool_run"

_lock = threading.Lock()
_state: dict = {}


def spin_iterations() -> int:
    """`pause` iterations a parked-to-be worker spins first: JITFLOW_POOL_SPIN, else SPIN."""
    from jitflow.envvars import env_int
    return env_int("JITFLOW_POOL_SPIN", SPIN, minimum=0)


def _pool_ir(x86: bool) -> str:
    relax = "call void @llvm.x86.sse2.pause()" if x86 else "fence seq_cst"   # a spin-wait hint
    pause_decl = "declare void @llvm.x86.sse2.pause()" if x86 else ""
    return f"""{pause_decl}
@jf.pool.word = internal global i64 0, align 64
@jf.pool.fn = internal global ptr null, align 64
@jf.pool.hdr = internal global ptr null
@jf.pool.extent = internal global i64 0
@jf.pool.chunks = internal global i64 0
@jf.pool.done = internal global i64 0, align 64
@jf.pool.busy = internal global i32 0, align 64
@jf.pool.sleepers = internal global i32 0, align 64
@jf.pool.workers = internal global i32 0
@jf.pool.spin = internal global i64 {SPIN}
@jf.pool.mutex = internal global [256 x i8] zeroinitializer, align 64
@jf.pool.cond = internal global [256 x i8] zeroinitializer, align 64

declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_detach(i64)
declare i32 @pthread_attr_init(ptr)
declare i32 @pthread_attr_setstacksize(ptr, i64)
declare i32 @pthread_attr_destroy(ptr)
declare i32 @pthread_mutex_init(ptr, ptr)
declare i32 @pthread_mutex_lock(ptr)
declare i32 @pthread_mutex_unlock(ptr)
declare i32 @pthread_cond_init(ptr, ptr)
declare i32 @pthread_cond_wait(ptr, ptr)
declare i32 @pthread_cond_broadcast(ptr)
declare i32 @sched_yield()
declare i64 @llvm.readcyclecounter()

; claims and runs chunks of generation %gen until none is left (or the job changed)
define internal void @jf.pool.work(i64 %gen) nounwind {{
entry:
  br label %claim
claim:
  %w = load atomic i64, ptr @jf.pool.word seq_cst, align 8
  %wgen = lshr i64 %w, 32
  %same = icmp eq i64 %wgen, %gen
  br i1 %same, label %check, label %out
check:
  %idx = and i64 %w, 4294967295
  %chunks = load atomic i64, ptr @jf.pool.chunks monotonic, align 8
  %left = icmp ult i64 %idx, %chunks
  br i1 %left, label %take, label %out
take:
  %fn = load atomic ptr, ptr @jf.pool.fn monotonic, align 8
  %hdr = load atomic ptr, ptr @jf.pool.hdr monotonic, align 8
  %extent = load atomic i64, ptr @jf.pool.extent monotonic, align 8
  %w1 = add i64 %w, 1
  %cx = cmpxchg ptr @jf.pool.word, i64 %w, i64 %w1 seq_cst seq_cst
  %ok = extractvalue {{ i64, i1 }} %cx, 1
  br i1 %ok, label %run, label %claim
run:
  %lo.m = mul i64 %extent, %idx
  %lo = udiv i64 %lo.m, %chunks
  %idx1 = add i64 %idx, 1
  %hi.m = mul i64 %extent, %idx1
  %hi = udiv i64 %hi.m, %chunks
  call void %fn(ptr %hdr, i64 %lo, i64 %hi)
  %d = atomicrmw add ptr @jf.pool.done, i64 1 seq_cst
  br label %claim
out:
  ret void
}}

; a worker: waits for a new generation (spin, then park), helps with it, forever
define internal ptr @jf.pool.worker(ptr %arg) nounwind {{
entry:
  %w0 = load atomic i64, ptr @jf.pool.word seq_cst, align 8
  %g0 = lshr i64 %w0, 32
  %spin = load i64, ptr @jf.pool.spin
  br label %wait
wait:
  %last = phi i64 [%g0, %entry], [%gnew, %work]
  br label %spinning
spinning:
  %i = phi i64 [0, %wait], [%i1, %spin.relax], [%i1, %spin.yield]
  %sw = load atomic i64, ptr @jf.pool.word monotonic, align 8
  %sg = lshr i64 %sw, 32
  %snew = icmp ne i64 %sg, %last
  br i1 %snew, label %work, label %spin.next
spin.next:
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %spin
  %low = and i64 %i1, {YIELD_EVERY - 1}
  %polite = icmp eq i64 %low, 0
  br i1 %polite, label %spin.yield, label %spin.relax
spin.relax:
  {relax}
  br i1 %more, label %spinning, label %park
spin.yield:
  %ty0 = call i64 @llvm.readcyclecounter()
  %sy = call i32 @sched_yield()
  %ty1 = call i64 @llvm.readcyclecounter()
  %tyd = sub i64 %ty1, %ty0
  %taken = icmp ugt i64 %tyd, {YIELD_TAKEN_CYCLES}
  %go.on = xor i1 %taken, true
  %keep = and i1 %more, %go.on
  br i1 %keep, label %spinning, label %park
park:
  %lk = call i32 @pthread_mutex_lock(ptr @jf.pool.mutex)
  %sl = atomicrmw add ptr @jf.pool.sleepers, i32 1 seq_cst
  br label %park.check
park.check:
  %pw = load atomic i64, ptr @jf.pool.word seq_cst, align 8
  %pg = lshr i64 %pw, 32
  %pnew = icmp ne i64 %pg, %last
  br i1 %pnew, label %unpark, label %park.wait
park.wait:
  %cw = call i32 @pthread_cond_wait(ptr @jf.pool.cond, ptr @jf.pool.mutex)
  br label %park.check
unpark:
  %sl2 = atomicrmw sub ptr @jf.pool.sleepers, i32 1 seq_cst
  %ul = call i32 @pthread_mutex_unlock(ptr @jf.pool.mutex)
  br label %work
work:
  %ww = load atomic i64, ptr @jf.pool.word seq_cst, align 8
  %gnew = lshr i64 %ww, 32
  call void @jf.pool.work(i64 %gnew)
  br label %wait
}}

; starts up to %n workers (stack size %stack bytes, 0: the default); returns how many started
define i32 @jf_pool_start(i32 %n, i64 %spin, i64 %stack) nounwind {{
entry:
  store i64 %spin, ptr @jf.pool.spin
  store atomic i32 0, ptr @jf.pool.sleepers seq_cst, align 4
  store atomic i32 0, ptr @jf.pool.busy seq_cst, align 4
  %mi = call i32 @pthread_mutex_init(ptr @jf.pool.mutex, ptr null)
  %ci = call i32 @pthread_cond_init(ptr @jf.pool.cond, ptr null)
  %attr = alloca [256 x i8], align 16
  %tid = alloca i64, align 8
  %ai = call i32 @pthread_attr_init(ptr %attr)
  %custom = icmp ne i64 %stack, 0
  br i1 %custom, label %set, label %loop.pre
set:
  %ss = call i32 @pthread_attr_setstacksize(ptr %attr, i64 %stack)
  br label %loop.pre
loop.pre:
  %any = icmp sgt i32 %n, 0
  br i1 %any, label %loop, label %done
loop:
  %k = phi i32 [0, %loop.pre], [%k1, %next]
  %made = phi i32 [0, %loop.pre], [%made1, %next]
  %rc = call i32 @pthread_create(ptr %tid, ptr %attr, ptr @jf.pool.worker, ptr null)
  %fine = icmp eq i32 %rc, 0
  br i1 %fine, label %detach, label %next
detach:
  %t = load i64, ptr %tid
  %dr = call i32 @pthread_detach(i64 %t)
  br label %next
next:
  %inc = zext i1 %fine to i32
  %made1 = add i32 %made, %inc
  %k1 = add i32 %k, 1
  %again = icmp slt i32 %k1, %n
  br i1 %again, label %loop, label %done
done:
  %total = phi i32 [0, %loop.pre], [%made1, %next]
  %ad = call i32 @pthread_attr_destroy(ptr %attr)
  store atomic i32 %total, ptr @jf.pool.workers seq_cst, align 4
  ret i32 %total
}}

; runs chunk(header, start, stop) over [0, extent) on the caller and the pool's workers
define void @{RUN_SYMBOL}(ptr %fn, ptr %hdr, i64 %extent, i64 %threads) nounwind {{
entry:
  %nw = load atomic i32, ptr @jf.pool.workers monotonic, align 4
  %noworkers = icmp eq i32 %nw, 0
  %onethread = icmp sle i64 %threads, 1
  %small = icmp sle i64 %extent, 1
  %a = or i1 %noworkers, %onethread
  %inline = or i1 %a, %small
  br i1 %inline, label %alone, label %take
take:
  %cx = cmpxchg ptr @jf.pool.busy, i32 0, i32 1 seq_cst seq_cst
  %got = extractvalue {{ i32, i1 }} %cx, 1
  br i1 %got, label %post, label %alone
alone:
  call void %fn(ptr %hdr, i64 0, i64 %extent)
  ret void
post:
  %want = mul i64 %threads, {CHUNKS_PER_THREAD}
  %fewer = icmp ult i64 %extent, %want
  %chunks = select i1 %fewer, i64 %extent, i64 %want
  ; close the last job's word first (a new generation, no chunk left), so that a late claimer of
  ; the last job can never pair the old word with the new job's fields; then publish
  %old = load atomic i64, ptr @jf.pool.word seq_cst, align 8
  %og = lshr i64 %old, 32
  %g1 = add i64 %og, 1
  %gc = and i64 %g1, 4294967295
  %closed.g = shl i64 %gc, 32
  %closed = or i64 %closed.g, 4294967295
  store atomic i64 %closed, ptr @jf.pool.word seq_cst, align 8
  fence seq_cst
  store atomic ptr %fn, ptr @jf.pool.fn monotonic, align 8
  store atomic ptr %hdr, ptr @jf.pool.hdr monotonic, align 8
  store atomic i64 %extent, ptr @jf.pool.extent monotonic, align 8
  store atomic i64 %chunks, ptr @jf.pool.chunks monotonic, align 8
  store atomic i64 0, ptr @jf.pool.done seq_cst, align 8
  %g2 = add i64 %og, 2
  %gen = and i64 %g2, 4294967295
  %word = shl i64 %gen, 32
  store atomic i64 %word, ptr @jf.pool.word seq_cst, align 8
  %sl = load atomic i32, ptr @jf.pool.sleepers seq_cst, align 4
  %wake = icmp sgt i32 %sl, 0
  br i1 %wake, label %signal, label %mine
signal:
  %lk = call i32 @pthread_mutex_lock(ptr @jf.pool.mutex)
  %bc = call i32 @pthread_cond_broadcast(ptr @jf.pool.cond)
  %ul = call i32 @pthread_mutex_unlock(ptr @jf.pool.mutex)
  br label %mine
mine:
  call void @jf.pool.work(i64 %gen)
  br label %wait
wait:
  %i = phi i64 [0, %mine], [%i1, %relax], [%i1, %yield]
  %d = load atomic i64, ptr @jf.pool.done seq_cst, align 8
  %all = icmp eq i64 %d, %chunks
  br i1 %all, label %finish, label %wait.next
wait.next:
  %i1 = add i64 %i, 1
  %patient = icmp ult i64 %i, 256
  br i1 %patient, label %relax, label %yield
relax:
  {relax}
  br label %wait
yield:
  %y = call i32 @sched_yield()
  br label %wait
finish:
  store atomic i32 0, ptr @jf.pool.busy seq_cst, align 4
  ret void
}}
"""


_object_cache: list = []     # [(load(text) -> bytes | None, store(text, bytes))]: set by the runtime


def set_object_cache(load, store):
    """Lets the runtime keep the pool's object code in its disk cache (codegen may not import it):
    compiling the pool's IR costs ~15 ms in every process otherwise."""
    _object_cache[:] = [(load, store)]


def _pool_object(state) -> bytes:
    """The pool module's object code: from the runtime's cache, else compiled (and offered to it)."""
    import llvmlite.binding as llvm

    from .quick_tier import quick_tier_text
    # unoptimized (optnone, code-generation level 0: ~1 of the ~10 ms it took a cold process); its paths
    # are atomics, a spin-wait and calls, which optimization does not speed up measurably
    text = quick_tier_text(_pool_ir(state["triple"].startswith("x86_64")))
    load, store = _object_cache[0] if _object_cache else (None, None)
    cached = load(text) if load is not None else None
    if cached:
        return cached
    module = llvm.parse_assembly(text)
    module.triple = state["triple"]
    module.verify()
    from .llvm_worker import _quick_target_machine     # (the caller holds cpu's init lock)
    object_code = _quick_target_machine(state["cpu"], state["features"]).emit_object(module)
    if store is not None:
        store(text, object_code)
    return object_code


def start(workers: int | None = None, stack_bytes: int = 0) -> int:
    """Compiles and links the pool and starts its workers (once per process; later calls
    return the count). `workers` defaults to the thread budget minus the calling thread;
    `stack_bytes` (0: the default) exists so that tests can make thread creation fail."""
    with _lock:
        if "workers" in _state:
            return _state["workers"]
        import llvmlite.binding as llvm

        from . import cpu
        state = cpu._initialize()
        with cpu._init_lock:
            if "jit" not in state:
                state["jit"] = llvm.create_lljit_compiler(state["tm"])
            builder = (llvm.JITLibraryBuilder().add_object_img(_pool_object(state))
                       .add_current_process().export_symbol(RUN_SYMBOL).export_symbol("jf_pool_start"))
            _state["tracker"] = builder.link(state["jit"], POOL_LIBRARY)   # kept for the process's life
        count = cpu.num_threads() - 1 if workers is None else workers
        start_fn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64)(
            _state["tracker"]["jf_pool_start"])
        _state["start"], _state["count"] = start_fn, max(0, count)
        _state["spin"] = spin_iterations()
        _state["workers"] = int(start_fn(_state["count"], _state["spin"], stack_bytes))
        _state["run"] = _state["tracker"][RUN_SYMBOL]
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)
        return _state["workers"]


def _after_fork():
    """A forked child has none of the parent's workers (and maybe a mutex a worker held):
    fresh locks, zero sleepers, new workers."""
    if "start" in _state:
        _state["workers"] = int(_state["start"](_state["count"], _state["spin"], 0))


def run_address() -> int:
    """The address of `jf_pool_run` (starting the pool first)."""
    start()
    return _state["run"]


def workers() -> int | None:
    """Workers started (None: the pool has not started)."""
    return _state.get("workers")


def needs_pool(object_code: bytes) -> bool:
    return RUN_SYMBOL.encode() in object_code


# ---- entry-point lines (codegen/cpu.py) ---------------------------------------------------------
def declaration() -> str:
    return f"declare void @{RUN_SYMBOL}(ptr, ptr, i64, i64)"


def chunk_function(name: str, buffers, x86: bool, flush_denormals: int, phase_main: int) -> str:
    """`void name_chunk(ptr header, i64 start, i64 stop)`: one slice of the outer loop of kernel
    `name`, its buffer pointers read from the header (denormals flushed, as in the entry)."""
    header = f"[{len(buffers)} x ptr]"
    lines = [f"define internal void @{name}_chunk(ptr %hdr, i64 %start, i64 %stop) nounwind {{", "entry:"]
    if x86:
        lines += ["  %mx = alloca i32, align 4", "  call void @llvm.x86.sse.stmxcsr(ptr %mx)",
                  "  %mx.v = load i32, ptr %mx", f"  %mx.f = or i32 %mx.v, {flush_denormals}",
                  "  store i32 %mx.f, ptr %mx", "  call void @llvm.x86.sse.ldmxcsr(ptr %mx)"]
    args = []
    for i, _ in enumerate(buffers):
        lines += [f"  %p{i}.a = getelementptr inbounds {header}, ptr %hdr, i64 0, i64 {i}",
                  f"  %p{i} = load ptr, ptr %p{i}.a"]
        args.append(f"ptr %p{i}")
    lines += [f"  call void @{name}({', '.join(args)}, i64 %start, i64 %stop, i32 {phase_main})",
              "  ret void", "}", ""]
    return "\n".join(lines)


def parallel_call(n: int, name: str, buffers, pointers, info, threads: int, phase_init: int,
                  phase_finish: int) -> list:
    """Entry lines: the init phase here, the main phase as one pool job over [0, extent) with
    `threads` participants at most, then the finish phase."""
    header, p = f"[{len(buffers)} x ptr]", f"%par{n}"
    args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
    lines = [f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 {phase_init})",
             f"  {p}.hdr = alloca {header}, align 8"]
    for i, buf in enumerate(buffers):
        lines += [f"  {p}.hp{i} = getelementptr inbounds {header}, ptr {p}.hdr, i64 0, i64 {i}",
                  f"  store ptr {pointers[buf.id]}, ptr {p}.hp{i}"]
    lines += [f"  call void @{RUN_SYMBOL}(ptr @{name}_chunk, ptr {p}.hdr, i64 {info.extent}, i64 {threads})",
              f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 {phase_finish})"]
    return lines
