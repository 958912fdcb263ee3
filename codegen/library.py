"""Library kernels: matmul (a call into the process's CBLAS GEMM when the
runtime provides one, else a vectorizable i-k-j loop; `out = beta*out + alpha*a@b`
so an optimizer step can update a variable inside the GEMM), matrix inversion
(Gauss-Jordan with partial pivoting; returns status 1 when singular), and the
Philox-4x32-10 random kernels (state: [run counter, seed, seed2]). Kernels
return i32 status (0 = ok)."""
from __future__ import annotations

import math

from jitflow.ir.kernel_plan import Kernel
from jitflow.ir.types import num_elements
from jitflow.ops import get_op
from jitflow.ops.registry import has_trait
from jitflow.ops.random import (PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, TRUNCATED_MAX_ATTEMPTS)

from .llvm_builder import FunctionBuilder, literal, llvm_type
from .scalar_llvm import ScalarLowering

STATUS_SINGULAR = 1
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS = 101, 111, 112
BLAS_PREFIX = {"float32": "s", "float64": "d"}
CBLAS_UPPER = 121


def _fn(name, buffers):
    return FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers], attrs="nounwind")


def emit_matmul(name: str, schedule, kernel: Kernel, declarations: set, blas: bool):
    node = kernel.root.node
    a, b = node.operands
    home = schedule.value_buffer
    ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)
    m, n = kernel.out.shape
    k = a.shape[0] if ta else a.shape[1]
    (a_buf, ta), (b_buf, tb) = _gemm_operand(home, a, ta), _gemm_operand(home, b, tb)
    c_buf = kernel.out
    buffers = list({x.id: x for x in (a_buf, b_buf, c_buf)}.values())
    fb = _fn(name, buffers)
    dtype = c_buf.dtype
    t = llvm_type(dtype)
    pa, pb, pc = f"%b{a_buf.id}", f"%b{b_buf.id}", f"%b{c_buf.id}"
    if blas and dtype.name in BLAS_PREFIX and m and n:
        prefix = BLAS_PREFIX[dtype.name]
        lda = max(1, m if ta else k)
        ldb = max(1, k if tb else n)
        if a_buf is b_buf and ta != tb and m == n and k and kernel.beta == 0.0:   # a.T @ a or a @ a.T
            return _syrk(fb, declarations, prefix, t, dtype, kernel, pa, lda, pc, n, k, ta), buffers
        if n == 1 and k and kernel.beta == 0.0 and not tb:                           # matrix @ vector
            symbol = f"jf_cblas_{prefix}gemv"
            declarations.add(f"declare void @{symbol}(i32, i32, i64, i64, {t}, ptr, i64, ptr, i64, {t}, ptr, i64)")
            rows, cols = (k, m) if ta else (m, k)
            fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
                    f"i64 {rows}, i64 {cols}, {t} {literal(kernel.alpha, dtype)}, ptr {pa}, i64 {lda}, ptr {pb}, "
                    f"i64 {ldb}, {t} {literal(0, dtype)}, ptr {pc}, i64 1)")
            return fb.render(), buffers
        symbol = f"jf_cblas_{prefix}gemm"
        declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                         f"{t}, ptr, i64)")
        fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
                f"i32 {CBLAS_TRANS if tb else CBLAS_NO_TRANS}, i64 {m}, i64 {n}, i64 {k}, "
                f"{t} {literal(kernel.alpha, dtype)}, ptr {pa}, i64 {lda}, ptr {pb}, i64 {ldb}, "
                f"{t} {literal(kernel.beta, dtype)}, ptr {pc}, i64 {max(1, n)})")
        return fb.render(), buffers
    add = "fadd" if dtype.is_floating else "add"
    mul = "fmul" if dtype.is_floating else "mul"
    if kernel.beta == 0.0:
        with fb.loop("0", str(m * n), "z") as i:
            fb.store(t, literal(0, dtype), fb.gep(t, pc, i))
    with fb.loop("0", str(m), "mi") as i:
        with fb.loop("0", str(k), "mk") as kk:
            a_index = fb.assign(f"mul nsw i64 {kk}, {m}") if ta else fb.assign(f"mul nsw i64 {i}, {k}")
            a_index = fb.assign(f"add nsw i64 {a_index}, {i if ta else kk}")
            a_val = fb.load(t, fb.gep(t, pa, a_index))
            if kernel.alpha != 1.0:
                a_val = fb.assign(f"{mul} {t} {a_val}, {literal(kernel.alpha, dtype)}")
            row = fb.assign(f"mul nsw i64 {i}, {n}")
            with fb.loop("0", str(n), "mj") as j:
                if tb:
                    b_index = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {j}, {k}')}, {kk}")
                else:
                    b_index = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {kk}, {n}')}, {j}")
                b_val = fb.load(t, fb.gep(t, pb, b_index))
                c_ptr = fb.gep(t, pc, fb.assign(f"add nsw i64 {row}, {j}"))
                prod = fb.assign(f"{mul} {t} {a_val}, {b_val}")
                fb.store(t, fb.assign(f"{add} {t} {fb.load(t, c_ptr)}, {prod}"), c_ptr)
    return fb.render(), buffers


def _syrk(fb, declarations, prefix, t, dtype, kernel, pa, lda, pc, n, k, ta) -> str:
    """C = alpha * a.T @ a (or a @ a.T) with SYRK on the upper triangle, then mirrored."""
    symbol = f"jf_cblas_{prefix}syrk"
    declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, {t}, ptr, i64, {t}, ptr, i64)")
    fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_UPPER}, "
            f"i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, i64 {n}, i64 {k}, {t} {literal(kernel.alpha, dtype)}, "
            f"ptr {pa}, i64 {lda}, {t} {literal(0, dtype)}, ptr {pc}, i64 {n})")
    with fb.loop("1", str(n), "sy") as i:
        with fb.loop("0", i, "sx") as j:
            upper = fb.gep(t, pc, fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {j}, {n}')}, {i}"))
            lower = fb.gep(t, pc, fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {i}, {n}')}, {j}"))
            fb.store(t, fb.load(t, upper), lower)
    return fb.render()


def _gemm_operand(home, value, transposed):
    """(buffer, transpose flag): a 2-D transpose with no buffer of its own is read through its operand."""
    if id(value) in home:
        return home[id(value)], transposed
    node = value.node
    if has_trait(node, "transpose") and tuple(node.attrs["perm"]) == (1, 0):
        return home[id(node.operands[0])], not transposed
    raise RuntimeError(f"matmul operand {node.describe() if node else value} has no buffer")


def emit_inverse(name: str, schedule, kernel: Kernel, declarations: set):
    node = kernel.root.node
    a_buf, out, work = schedule.value_buffer[id(node.operands[0])], kernel.out, kernel.scratch
    buffers = list({x.id: x for x in (a_buf, out, work)}.values())
    fb = FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers], attrs="nounwind")
    dtype = out.dtype
    t = llvm_type(dtype)
    n = out.shape[0]
    low = ScalarLowering(fb, declarations)
    pa, po, pw = f"%b{a_buf.id}", f"%b{out.id}", f"%b{work.id}"
    status = fb.alloca("i32")
    fb.store("i32", "0", status)

    def at(ptr, r, c):
        return fb.gep(t, ptr, fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {r}, {n}')}, {c}"))

    with fb.loop("0", str(n * n), "cp") as i:
        fb.store(t, fb.load(t, fb.gep(t, pa, i)), fb.gep(t, pw, i))
        row = fb.assign(f"sdiv i64 {i}, {n}")
        col = fb.assign(f"srem i64 {i}, {n}")
        diag = fb.assign(f"icmp eq i64 {row}, {col}")
        fb.store(t, fb.assign(f"select i1 {diag}, {t} {literal(1, dtype)}, {t} {literal(0, dtype)}"),
                 fb.gep(t, po, i))
    best_row, best_abs = fb.alloca("i64"), fb.alloca(t)
    with fb.loop("0", str(n), "col") as col:
        fb.store("i64", col, best_row)
        fb.store(t, literal(-1.0, dtype), best_abs)
        with fb.loop(col, str(n), "pr") as r:
            value = low.lower("abs", dtype, [fb.load(t, at(pw, r, col))], [dtype], None)
            better = fb.assign(f"fcmp ogt {t} {value}, {fb.load(t, best_abs)}")
            fb.store(t, fb.assign(f"select i1 {better}, {t} {value}, {t} {fb.load(t, best_abs)}"), best_abs)
            fb.store("i64", fb.assign(f"select i1 {better}, i64 {r}, i64 {fb.load('i64', best_row)}"), best_row)
        pivot_abs = fb.load(t, best_abs)
        singular = fb.assign(f"fcmp ueq {t} {pivot_abs}, 0.0")
        with fb.if_(singular):
            fb.store("i32", str(STATUS_SINGULAR), status)
        pivot = fb.load("i64", best_row)
        with fb.loop("0", str(n), "sw") as c:
            for ptr in (pw, po):
                p1, p2 = at(ptr, col, c), at(ptr, pivot, c)
                v1, v2 = fb.load(t, p1), fb.load(t, p2)
                fb.store(t, v2, p1)
                fb.store(t, v1, p2)
        inv = fb.assign(f"fdiv {t} {literal(1, dtype)}, {fb.load(t, at(pw, col, col))}")
        with fb.loop("0", str(n), "sc") as c:
            for ptr in (pw, po):
                p = at(ptr, col, c)
                fb.store(t, fb.assign(f"fmul {t} {fb.load(t, p)}, {inv}"), p)
        with fb.loop("0", str(n), "el") as r:
            other = fb.assign(f"icmp ne i64 {r}, {col}")
            with fb.if_(other):
                factor = fb.load(t, at(pw, r, col))
                with fb.loop("0", str(n), "ec") as c:
                    for ptr in (pw, po):
                        p = at(ptr, r, c)
                        scaled = fb.assign(f"fmul {t} {factor}, {fb.load(t, at(ptr, col, c))}")
                        fb.store(t, fb.assign(f"fsub {t} {fb.load(t, p)}, {scaled}"), p)
    fb.lines.append(f"  %status.final = load i32, ptr {status}")
    fb.lines.append("  ret i32 %status.final")
    return fb.render(ret="i32"), buffers


def philox_function() -> str:
    lines = ["define internal {i32, i32, i32, i32} @jf_philox(i32 %c0.0, i32 %c1.0, i32 %c2.0, i32 %c3.0, "
             "i32 %k0.0, i32 %k1.0) alwaysinline nounwind {", "entry:"]
    for r in range(10):
        a, b = r, r + 1
        lines += [
            f"  %x0.{a} = zext i32 %c0.{a} to i64", f"  %p0.{a} = mul i64 %x0.{a}, {PHILOX_M0}",
            f"  %x2.{a} = zext i32 %c2.{a} to i64", f"  %p1.{a} = mul i64 %x2.{a}, {PHILOX_M1}",
            f"  %h0s.{a} = lshr i64 %p0.{a}, 32", f"  %h0.{a} = trunc i64 %h0s.{a} to i32",
            f"  %l0.{a} = trunc i64 %p0.{a} to i32",
            f"  %h1s.{a} = lshr i64 %p1.{a}, 32", f"  %h1.{a} = trunc i64 %h1s.{a} to i32",
            f"  %l1.{a} = trunc i64 %p1.{a} to i32",
            f"  %t0.{a} = xor i32 %h1.{a}, %c1.{a}", f"  %c0.{b} = xor i32 %t0.{a}, %k0.{a}",
            f"  %c1.{b} = add i32 %l1.{a}, 0",
            f"  %t2.{a} = xor i32 %h0.{a}, %c3.{a}", f"  %c2.{b} = xor i32 %t2.{a}, %k1.{a}",
            f"  %c3.{b} = add i32 %l0.{a}, 0",
            f"  %k0.{b} = add i32 %k0.{a}, {PHILOX_W0 - (1 << 32)}",
            f"  %k1.{b} = add i32 %k1.{a}, {PHILOX_W1 - (1 << 32)}",
        ]
    lines += ["  %r0 = insertvalue {i32, i32, i32, i32} poison, i32 %c0.10, 0",
              "  %r1 = insertvalue {i32, i32, i32, i32} %r0, i32 %c1.10, 1",
              "  %r2 = insertvalue {i32, i32, i32, i32} %r1, i32 %c2.10, 2",
              "  %r3 = insertvalue {i32, i32, i32, i32} %r2, i32 %c3.10, 3",
              "  ret {i32, i32, i32, i32} %r3", "}", ""]
    return "\n".join(lines)


def _bits53(fb, w_hi, w_lo):
    hi = fb.assign(f"zext i32 {w_hi} to i64")
    lo = fb.assign(f"zext i32 {w_lo} to i64")
    mixed = fb.assign(f"xor i64 {fb.assign(f'shl i64 {hi}, 21')}, {fb.assign(f'lshr i64 {lo}, 11')}")
    return mixed


def _uniform(fb, dtype, words, plus_one=False, pair=0):
    t = llvm_type(dtype)
    if dtype.name == "float32":
        bits = fb.assign(f"lshr i32 {words[pair]}, 8")
        value = fb.assign(f"uitofp i32 {bits} to float")
        if plus_one:
            value = fb.assign(f"fadd float {value}, {literal(1.0, dtype)}")
        return fb.assign(f"fmul float {value}, {literal(2.0 ** -24, dtype)}")
    bits = _bits53(fb, words[2 * pair], words[2 * pair + 1])
    value = fb.assign(f"uitofp i64 {bits} to {t}")
    if plus_one:
        value = fb.assign(f"fadd {t} {value}, {literal(1.0, dtype)}")
    return fb.assign(f"fmul {t} {value}, {literal(2.0 ** -53, dtype)}")


def _normal(fb, low, dtype, words):
    t = llvm_type(dtype)
    u1 = _uniform(fb, dtype, words, plus_one=True, pair=0)
    u2 = _uniform(fb, dtype, words, pair=1)
    log = low.lower("log", dtype, [u1], [dtype], None)
    radius = low.lower("sqrt", dtype, [fb.assign(f"fmul {t} {literal(-2.0, dtype)}, {log}")], [dtype], None)
    angle = fb.assign(f"fmul {t} {literal(2 * math.pi, dtype)}, {u2}")
    return fb.assign(f"fmul {t} {radius}, {low.intrinsic('cos', dtype, [angle])}")


def emit_random(name: str, schedule, kernel: Kernel, declarations: set):
    node = kernel.root.node
    kind = get_op(node.op).extra["distribution"]
    state, out = schedule.value_buffer[id(node.operands[0])], kernel.out
    buffers = [state, out]
    fb = FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers], attrs="nounwind")
    low = ScalarLowering(fb, declarations)
    declarations.add(("philox",))
    dtype, t = out.dtype, llvm_type(out.dtype)
    run = fb.assign(f"atomicrmw add ptr %b{state.id}, i64 1 monotonic")
    run_lo = fb.assign(f"trunc i64 {run} to i32")
    run_hi = fb.assign(f"trunc i64 {fb.assign(f'lshr i64 {run}, 32')} to i32")
    seeds = [fb.load("i64", fb.gep("i64", f"%b{state.id}", str(k))) for k in (1, 2)]
    k0, k1 = (fb.assign(f"trunc i64 {seed} to i32") for seed in seeds)

    def words_for(i, attempt):
        c0 = fb.assign(f"trunc i64 {i} to i32")
        result = fb.assign(f"call {{i32, i32, i32, i32}} @jf_philox(i32 {c0}, i32 {attempt}, i32 {run_lo}, "
                           f"i32 {run_hi}, i32 {k0}, i32 {k1})")
        return [fb.assign(f"extractvalue {{i32, i32, i32, i32}} {result}, {w}") for w in range(4)]

    with fb.loop("0", str(num_elements(out.shape)), "rn") as i:
        ptr = fb.gep(t, f"%b{out.id}", i)
        store_random_element(fb, low, kind, dtype, ptr, lambda attempt: words_for(i, attempt))
    return fb.render(), buffers


def store_random_element(fb, low, kind, dtype, ptr, words):
    """Stores one element of a random op at `ptr`; `words(attempt)` gives the four Philox words
    of this element for an attempt (an i32 literal or name). Shared by the CPU loop and the
    GPU kernel (codegen/ptx_library.py), so both give the same numbers for the same seed."""
    t = llvm_type(dtype)
    if kind == "uniform":
        fb.store(t, _uniform(fb, dtype, words("0")), ptr)
    elif kind == "normal":
        fb.store(t, _normal(fb, low, dtype, words("0")), ptr)
    else:
        head, accept, retry, give_up, done = (fb.label(x) for x in ("try", "accept", "retry", "giveup", "done"))
        before = fb.block
        attempt, next_attempt = fb.fresh("att"), fb.fresh("attn")
        fb.emit(f"br label %{head}")
        fb.start_block(head)
        fb.emit(f"{attempt} = phi i32 [ 0, %{before} ], [ {next_attempt}, %{retry} ]")
        z = _normal(fb, low, dtype, words(attempt))
        ok = fb.assign(f"fcmp ole {t} {low.lower('abs', dtype, [z], [dtype], None)}, {literal(2.0, dtype)}")
        fb.emit(f"br i1 {ok}, label %{accept}, label %{retry}")
        fb.start_block(accept)
        fb.store(t, z, ptr)
        fb.emit(f"br label %{done}")
        fb.start_block(retry)
        fb.emit(f"{next_attempt} = add i32 {attempt}, 1")
        more = fb.assign(f"icmp slt i32 {next_attempt}, {TRUNCATED_MAX_ATTEMPTS}")
        fb.emit(f"br i1 {more}, label %{head}, label %{give_up}")
        fb.start_block(give_up)
        fb.store(t, literal(0.0, dtype), ptr)
        fb.emit(f"br label %{done}")
        fb.start_block(done)
