"""GPU library kernels: matmul (a shared-memory tiled GEMM with vector loads),
the Philox random kernels (the CPU's generator and element code, so both give
the same numbers for a seed), and matrix inversion (the CPU's Gauss-Jordan
function run by one GPU thread, with its status in a device word)."""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops import get_op

from . import library
from .llvm_builder import literal, llvm_type
from .ptx import LIBDEVICE_MATH
from .ptx_module import (GpuModule, barrier, grid_elements, grid_for, grid_stride, report_status, sreg,
                          strided_loop, vector_width, wide)
from .scalar_llvm import ScalarLowering

BK = 16                 # k-depth of a GEMM tile
TILE = 64               # a block computes a TILE x TILE piece of C ...
PER = 4                 # ... each of its 16 x 16 threads a PER x PER piece (rows 4*ty.., columns 4*tx..)
GEMM_THREADS = 256
SHARED_STRIDE = TILE + 4          # shared rows padded (16-byte aligned, fewer bank conflicts on stores)
TARGET_BLOCKS = 264               # split K until about two blocks per SM of an H100 (132 SMs)
MIN_SPLIT_K = 64                  # ... each split still covering at least this much of K


# ---- matmul ------------------------------------------------------------------------------------
def emit_matmul(gm: GpuModule, name: str, schedule, kernel):
    """C = beta * C + alpha * op(A) @ op(B), tiled through shared memory. When the tiles alone give
    too few blocks, K is split: each split writes its partial product to scratch and a second
    kernel sums the splits (a fixed order: the result does not depend on scheduling)."""
    node = kernel.root.node
    a, b = node.operands
    ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)
    c_buf = kernel.out
    m, n = c_buf.shape
    k = a.shape[0] if ta else a.shape[1]
    # operands that are 2-D transposes without a buffer are read through (flag flipped), as on the CPU
    (a_buf, ta), (b_buf, tb) = (library._gemm_operand(schedule.value_buffer, x, flag) for x, flag in ((a, ta), (b, tb)))
    buffers = list({x.id: x for x in (a_buf, b_buf, c_buf)}.values())
    alpha, beta = kernel.alpha, kernel.beta
    dtype = c_buf.dtype
    t = llvm_type(dtype)
    tiles = -(-m // TILE) * -(-n // TILE)
    splits = max(1, min(-(-TARGET_BLOCKS // tiles), k // MIN_SPLIT_K))
    k_chunk = -(-(-(-k // splits)) // BK) * BK   # ceil(k / splits), rounded up to whole k-tiles
    splits = -(-k // k_chunk) if k else 1
    decls = gm.declarations
    fb = gm.kernel(name, buffers, ["ptr noalias align 16 %scratch"] if splits > 1 else [])
    sa = gm.shared(f"{name}_a", t, BK * SHARED_STRIDE, 32)
    sb = gm.shared(f"{name}_b", t, BK * SHARED_STRIDE, 32)
    tid = wide(fb, sreg(fb, decls, "tid.x"))
    tx, ty = fb.assign(f"and i64 {tid}, 15"), fb.assign(f"lshr i64 {tid}, 4")
    m0 = fb.assign(f"mul nsw i64 {wide(fb, sreg(fb, decls, 'ctaid.y'))}, {TILE}")
    n0 = fb.assign(f"mul nsw i64 {wide(fb, sreg(fb, decls, 'ctaid.x'))}, {TILE}")
    k_lo = fb.assign(f"mul nsw i64 {wide(fb, sreg(fb, decls, 'ctaid.z'))}, {k_chunk}")
    k_hi = fb.assign(f"add nsw i64 {k_lo}, {k_chunk}")
    k_hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {k_hi}, {k}')}, i64 {k_hi}, i64 {k}")
    acc = [[fb.alloca(t) for _ in range(PER)] for _ in range(PER)]
    for row in acc:
        for slot in row:
            fb.store(t, literal(0, dtype), slot)
    ptr_a, ptr_b = f"%b{a_buf.id}", f"%b{b_buf.id}"
    with strided_loop(fb, k_lo, k_hi, str(BK), "k0") as k0:
        if ta:   # A stored [k, m]
            _load_tile(fb, ptr_a, sa, dtype, m, k0, m0, BK, TILE, k, m, True, tid)
        else:    # A stored [m, k]
            _load_tile(fb, ptr_a, sa, dtype, k, m0, k0, TILE, BK, m, k, False, tid)
        if tb:   # B stored [n, k]
            _load_tile(fb, ptr_b, sb, dtype, k, n0, k0, TILE, BK, n, k, False, tid)
        else:    # B stored [k, n]
            _load_tile(fb, ptr_b, sb, dtype, n, k0, n0, BK, TILE, k, n, True, tid)
        barrier(fb, decls)
        base_a = fb.assign(f"shl nuw nsw i64 {ty}, 2")
        base_b = fb.assign(f"shl nuw nsw i64 {tx}, 2")
        for kk in range(BK):
            a_vals = _shared_vector(fb, sa, t, base_a, kk * SHARED_STRIDE, dtype)
            b_vals = _shared_vector(fb, sb, t, base_b, kk * SHARED_STRIDE, dtype)
            for i in range(PER):
                for j in range(PER):
                    fb.store(t, _fma(fb, decls, dtype, a_vals[i], b_vals[j], fb.load(t, acc[i][j])), acc[i][j])
        barrier(fb, decls)
    mul = "fmul" if dtype.is_floating else "mul"
    add = "fadd" if dtype.is_floating else "add"
    row0 = fb.assign(f"add nsw i64 {m0}, {fb.assign(f'shl nuw nsw i64 {ty}, 2')}")
    col0 = fb.assign(f"add nsw i64 {n0}, {fb.assign(f'shl nuw nsw i64 {tx}, 2')}")
    if splits > 1:
        z = wide(fb, sreg(fb, decls, "ctaid.z"))
        target, plane = "%scratch", fb.assign(f"mul nsw i64 {z}, {m * n}")
    else:
        target, plane = f"%b{c_buf.id}", "0"
    for i in range(PER):
        r = fb.assign(f"add nsw i64 {row0}, {i}")
        r_ok = fb.assign(f"icmp slt i64 {r}, {m}")
        for j in range(PER):
            c = fb.assign(f"add nsw i64 {col0}, {j}")
            with fb.if_(fb.assign(f"and i1 {r_ok}, {fb.assign(f'icmp slt i64 {c}, {n}')}")):
                index = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {r}, {n}')}, {c}")
                ptr = fb.gep(t, target, fb.assign(f"add nsw i64 {plane}, {index}"))
                value = fb.load(t, acc[i][j])
                if splits == 1:
                    value = _epilogue(fb, t, dtype, value, ptr, alpha, beta, mul, add)
                fb.store(t, value, ptr)
    gm.functions.append(fb.render())
    extra = [["scratch", 0]] if splits > 1 else []
    gm.launch(name, buffers, [-(-n // TILE), -(-m // TILE), splits], GEMM_THREADS, extra=extra)
    if splits > 1:
        gm.need_scratch(splits * m * n * dtype.itemsize)
        _emit_split_sum(gm, name + "_splits", c_buf, splits, alpha, beta)


def _epilogue(fb, t, dtype, value, ptr, alpha, beta, mul, add):
    if alpha != 1.0:
        value = fb.assign(f"{mul} {t} {value}, {literal(alpha, dtype)}")
    if beta != 0.0:
        old = fb.load(t, ptr)
        if beta != 1.0:
            old = fb.assign(f"{mul} {t} {old}, {literal(beta, dtype)}")
        value = fb.assign(f"{add} {t} {old}, {value}")
    return value


def _emit_split_sum(gm: GpuModule, name: str, c_buf, splits: int, alpha, beta):
    """C = beta * C + alpha * (scratch[0] + ... + scratch[splits-1])."""
    dtype, t = c_buf.dtype, llvm_type(c_buf.dtype)
    total = num_elements(c_buf.shape)
    fb = gm.kernel(name, [c_buf], ["ptr noalias align 16 %scratch"])
    mul, add = ("fmul", "fadd") if dtype.is_floating else ("mul", "add")

    def element(e):
        value = fb.load(t, fb.gep(t, "%scratch", e))
        for z in range(1, splits):
            value = fb.assign(f"{add} {t} {value}, {fb.load(t, fb.gep(t, '%scratch', fb.assign(f'add nsw i64 {e}, {z * total}')))}")
        ptr = fb.gep(t, f"%b{c_buf.id}", e)
        fb.store(t, _epilogue(fb, t, dtype, value, ptr, alpha, beta, mul, add), ptr)
    vec = vector_width(total)
    grid_elements(fb, gm.declarations, total, element, vec)
    gm.functions.append(fb.render())
    gm.launch(name, [c_buf], grid_for(total // vec), extra=[["scratch", 0]])


def _fma(fb, decls, dtype, a, b, c):
    t = llvm_type(dtype)
    if dtype.is_floating:
        suffix = "f32" if t == "float" else "f64"
        decls.add(f"declare {t} @llvm.fmuladd.{suffix}({t}, {t}, {t})")
        return fb.assign(f"call {t} @llvm.fmuladd.{suffix}({t} {a}, {t} {b}, {t} {c})")
    return fb.assign(f"add {t} {c}, {fb.assign(f'mul {t} {a}, {b}')}")


def _shared_vector(fb, smem, t, base, offset, dtype):
    """PER consecutive elements of a shared tile row: one vector load."""
    index = fb.assign(f"add nsw i64 {base}, {offset}")
    address = fb.assign(f"getelementptr inbounds {t}, ptr addrspace(3) {smem}, i64 {index}")
    vector = fb.assign(f"load <{PER} x {t}>, ptr addrspace(3) {address}, align {PER * dtype.itemsize}")
    return [fb.assign(f"extractelement <{PER} x {t}> {vector}, i64 {i}") for i in range(PER)]


def _load_tile(fb, ptr, smem, dtype, row_len, row0, col0, rows, cols, row_limit, col_limit, kk_is_row, tid):
    """Copies stored[row0 : row0+rows, col0 : col0+cols] (row-major, `row_len` per row) into shared
    memory at [kk * SHARED_STRIDE + mn] (zeros outside the matrix); consecutive threads read
    consecutive columns, 4 at a time when rows are a multiple of 4 long."""
    t = llvm_type(dtype)
    vec = 4 if row_len % 4 == 0 and cols % 4 == 0 and dtype.itemsize == 4 else 1
    per_row = cols // vec
    total = rows * per_row
    vt = f"<{vec} x {t}>" if vec > 1 else t
    for q in range(-(-total // GEMM_THREADS)):
        v = fb.assign(f"add nsw i64 {tid}, {q * GEMM_THREADS}")
        guard = total % GEMM_THREADS != 0 and (q + 1) * GEMM_THREADS > total
        context = fb.if_(fb.assign(f"icmp slt i64 {v}, {total}")) if guard else _null()
        with context:
            r = fb.assign(f"udiv i64 {v}, {per_row}")
            c = fb.assign(f"mul nsw i64 {fb.assign(f'urem i64 {v}, {per_row}')}, {vec}")
            gr, gc = fb.assign(f"add nsw i64 {row0}, {r}"), fb.assign(f"add nsw i64 {col0}, {c}")
            inside = fb.assign(f"and i1 {fb.assign(f'icmp slt i64 {gr}, {row_limit}')}, "
                               f"{fb.assign(f'icmp slt i64 {gc}, {col_limit}')}")
            index = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {gr}, {row_len}')}, {gc}")
            index = fb.assign(f"select i1 {inside}, i64 {index}, i64 0")
            address = fb.gep(t, ptr, index)
            loaded = fb.assign(f"load {vt}, ptr {address}, align {dtype.itemsize * vec}")
            zero = "zeroinitializer" if vec > 1 else literal(0, dtype)
            loaded = fb.assign(f"select i1 {inside}, {vt} {loaded}, {vt} {zero}")
            for lane in range(vec):
                value = fb.assign(f"extractelement {vt} {loaded}, i64 {lane}") if vec > 1 else loaded
                col = fb.assign(f"add nsw i64 {c}, {lane}") if lane else c
                kk, mn = (r, col) if kk_is_row else (col, r)
                slot = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {kk}, {SHARED_STRIDE}')}, {mn}")
                dest = fb.assign(f"getelementptr inbounds {t}, ptr addrspace(3) {smem}, i64 {slot}")
                fb.emit(f"store {t} {value}, ptr addrspace(3) {dest}")


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---- random ------------------------------------------------------------------------------------
def emit_random(gm: GpuModule, name: str, schedule, kernel):
    """Element i of run n: Philox counter (i, attempt, n_lo, n_hi), key (seed, seed2), as on the CPU.
    Every thread reads the run counter; a one-thread kernel launched after it increments it."""
    node = kernel.root.node
    kind = get_op(node.op).extra["distribution"]
    state, out = schedule.value_buffer[id(node.operands[0])], kernel.out
    decls = gm.declarations
    fb = gm.kernel(name, [state, out])
    low = ScalarLowering(fb, decls)
    low.math_functions = LIBDEVICE_MATH
    decls.add(("philox",))
    dtype, t = out.dtype, llvm_type(out.dtype)
    run = fb.load("i64", f"%b{state.id}")
    run_lo = fb.assign(f"trunc i64 {run} to i32")
    run_hi = fb.assign(f"trunc i64 {fb.assign(f'lshr i64 {run}, 32')} to i32")
    k0, k1 = (fb.assign(f"trunc i64 {fb.load('i64', fb.gep('i64', f'%b{state.id}', str(j)))} to i32") for j in (1, 2))
    total = num_elements(out.shape)
    with grid_stride(fb, decls, total) as i:
        def words(attempt, i=i):
            c0 = fb.assign(f"trunc i64 {i} to i32")
            result = fb.assign(f"call {{i32, i32, i32, i32}} @jf_philox(i32 {c0}, i32 {attempt}, i32 {run_lo}, "
                               f"i32 {run_hi}, i32 {k0}, i32 {k1})")
            return [fb.assign(f"extractvalue {{i32, i32, i32, i32}} {result}, {w}") for w in range(4)]
        library.store_random_element(fb, low, kind, dtype, fb.gep(t, f"%b{out.id}", i), words)
    gm.functions.append(fb.render())
    gm.launch(name, [state, out], grid_for(total))
    bump = gm.kernel(name + "_bump", [state])
    counter = f"%b{state.id}"
    bump.store("i64", bump.assign(f"add i64 {bump.load('i64', counter)}, 1"), counter)
    gm.functions.append(bump.render())
    gm.launch(name + "_bump", [state], 1, 1)


# ---- matrix inverse ----------------------------------------------------------------------------
def emit_inverse(gm: GpuModule, name: str, schedule, kernel):
    """The CPU's Gauss-Jordan function, called by a single GPU thread (small matrices: the
    normal equations); a nonzero status is stored in the run's status word."""
    decls = gm.declarations
    text, buffers = library.emit_inverse(name + "_body", schedule, kernel, decls)
    gm.functions.append(text)
    fb = gm.kernel(name, buffers, ["ptr %status"])
    args = ", ".join(f"ptr %b{b.id}" for b in buffers)
    status = fb.assign(f"call i32 @{name}_body({args})")
    with fb.if_(fb.assign(f"icmp ne i32 {status}, 0")):
        report_status(fb, status)
    gm.functions.append(fb.render())
    gm.plan.has_status = True
    gm.launch(name, buffers, 1, 1, extra=[["status", 0]])
