"""CPU library kernels of the array ops in jitflow/ops/array_extra.py: gather
(rows copied by index; an out-of-range index is never read: the row is zeroed
and the kernel returns STATUS_BAD_INDEX), segment_sum (gather's gradient:
duplicate indices accumulate, out-of-range ones are dropped), scan (cumulative
sum/product along an axis, exclusive/reverse) and top_k (per row, an insertion
into the k best so far: sorted descending, ties keep the lower index first).

The per-element helpers (`load_index`, `top_k_row`, `scan_column`) are shared with
the GPU kernels in codegen/ptx_array.py, so both targets compute the same thing.
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.array_extra import STATUS_BAD_INDEX

from .llvm_builder import FunctionBuilder, literal, llvm_type


def _prod(dims) -> int:
    return num_elements(tuple(dims))


def _zero_in_memory(dtype) -> str:
    """A zero as stored in a buffer: bools are i8 in memory (`false` is an i1 literal)."""
    return "0" if dtype.is_bool else literal(0, dtype)


def _function(name, buffers, ret_status=False):
    return FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers], attrs="nounwind")


def _buffers(schedule, kernel):
    node = kernel.root.node
    ins = [schedule.value_buffer[id(x)] for x in node.operands]
    return ins, list({b.id: b for b in ins + [kernel.out]}.values())


def mem(dtype) -> str:
    return llvm_type(dtype, False)


def load_index(fb, ptr, dtype, position) -> str:
    """indices[position] as i64."""
    value = fb.load(mem(dtype), fb.gep(mem(dtype), ptr, position))
    return value if dtype.bits == 64 else fb.assign(f"sext {mem(dtype)} {value} to i64")


def index_ok(fb, index, n) -> str:
    """0 <= index < n (one unsigned compare)."""
    return fb.assign(f"icmp ult i64 {index}, {n}")


def add_op(dtype, kind="sum") -> str:
    if kind == "sum":
        return "fadd" if dtype.is_floating else "add"
    return "fmul" if dtype.is_floating else "mul"


def row_start(fb, o, rows, j, inner) -> str:
    """(o * rows + j) * inner: the first element of row j of block o."""
    row = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {o}, {rows}')}, {j}")
    return fb.assign(f"mul nsw i64 {row}, {inner}")


def gather_dims(node):
    params, indices = node.operands
    axis = node.attrs["axis"]
    return _prod(params.shape[:axis]), params.shape[axis], num_elements(indices.shape), _prod(params.shape[axis + 1:])


def emit_gather(name, schedule, kernel, declarations):
    node = kernel.root.node
    (p_buf, i_buf), buffers = _buffers(schedule, kernel)
    out = kernel.out
    outer, n, m, inner = gather_dims(node)
    t = mem(out.dtype)
    fb = _function(name, buffers)
    status = fb.alloca("i32")
    fb.store("i32", "0", status)
    pp, pi, po = f"%b{p_buf.id}", f"%b{i_buf.id}", f"%b{out.id}"
    with fb.loop("0", str(outer), "go") as o:
        with fb.loop("0", str(m), "gj") as j:
            index = load_index(fb, pi, i_buf.dtype, j)
            ok = index_ok(fb, index, n)
            dst = row_start(fb, o, m, j, inner)
            with fb.if_(ok):
                src = row_start(fb, o, n, index, inner)
                with fb.loop("0", str(inner), "gi") as i:
                    value = fb.load(t, fb.gep(t, pp, fb.assign(f"add nsw i64 {src}, {i}")))
                    fb.store(t, value, fb.gep(t, po, fb.assign(f"add nsw i64 {dst}, {i}")))
            with fb.if_(fb.assign(f"xor i1 {ok}, true")):
                fb.store("i32", str(STATUS_BAD_INDEX), status)
                with fb.loop("0", str(inner), "gz") as i:
                    fb.store(t, _zero_in_memory(out.dtype), fb.gep(t, po, fb.assign(f"add nsw i64 {dst}, {i}")))
    fb.lines.append(f"  %status.final = load i32, ptr {status}")
    fb.lines.append("  ret i32 %status.final")
    return fb.render(ret="i32"), buffers, True


def segment_dims(node):
    data, indices = node.operands
    axis, rank_i = node.attrs["axis"], len(indices.shape)
    return (_prod(data.shape[:axis]), node.attrs["num_segments"], num_elements(indices.shape),
            _prod(data.shape[axis + rank_i:]))


def emit_segment_sum(name, schedule, kernel, declarations):
    node = kernel.root.node
    (d_buf, i_buf), buffers = _buffers(schedule, kernel)
    out = kernel.out
    outer, n, m, inner = segment_dims(node)
    dtype, t = out.dtype, mem(out.dtype)
    fb = _function(name, buffers)
    pd, pi, po = f"%b{d_buf.id}", f"%b{i_buf.id}", f"%b{out.id}"
    with fb.loop("0", str(num_elements(out.shape)), "sz") as e:
        fb.store(t, _zero_in_memory(dtype), fb.gep(t, po, e))
    with fb.loop("0", str(outer), "so") as o:
        with fb.loop("0", str(m), "sj") as j:
            index = load_index(fb, pi, i_buf.dtype, j)
            with fb.if_(index_ok(fb, index, n)):
                src = row_start(fb, o, m, j, inner)
                dst = row_start(fb, o, n, index, inner)
                with fb.loop("0", str(inner), "si") as i:
                    ptr = fb.gep(t, po, fb.assign(f"add nsw i64 {dst}, {i}"))
                    value = fb.load(t, fb.gep(t, pd, fb.assign(f"add nsw i64 {src}, {i}")))
                    fb.store(t, fb.assign(f"{add_op(dtype)} {t} {fb.load(t, ptr)}, {value}"), ptr)
    return fb.render(), buffers, False


def scan_dims(node):
    x = node.operands[0]
    axis = node.attrs["axis"]
    return _prod(x.shape[:axis]), x.shape[axis], _prod(x.shape[axis + 1:])


def scan_column(fb, node, px, po, base, inner, each_step=None):
    """Scans one column: elements base + j*inner for j along the axis (walked backwards when reverse).
    `each_step(body)` wraps the per-step work (the CPU runs it over a vector of columns)."""
    x = node.operands[0]
    dtype, t = x.dtype, mem(x.dtype)
    n = x.shape[node.attrs["axis"]]
    if n == 0:
        return
    kind, exclusive, reverse = node.attrs["kind"], node.attrs["exclusive"], node.attrs["reverse"]
    op = add_op(dtype, kind)
    identity = literal(0 if kind == "sum" else 1, dtype)
    step_of = (lambda s: fb.assign(f"sub nsw i64 {n - 1}, {s}")) if reverse else (lambda s: s)

    def at(ptr, j, column):
        return fb.gep(t, ptr, fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {j}, {inner}')}, {column}"))

    def first(column):
        j = step_of("0")
        value = identity if exclusive else fb.load(t, at(px, j, column))
        fb.store(t, value, at(po, j, column))

    (each_step or (lambda body: body(base)))(first)
    with fb.loop("1", str(n), "sc") as s:
        j = step_of(s)
        prev = fb.assign(f"add nsw i64 {j}, 1") if reverse else fb.assign(f"sub nsw i64 {j}, 1")

        def step(column, j=j, prev=prev):
            acc = fb.load(t, at(po, prev, column))
            term = fb.load(t, at(px, prev if exclusive else j, column))
            fb.store(t, fb.assign(f"{op} {t} {acc}, {term}"), at(po, j, column))

        (each_step or (lambda body: body(base)))(step)


def emit_scan(name, schedule, kernel, declarations):
    node = kernel.root.node
    (x_buf,), buffers = _buffers(schedule, kernel)
    out = kernel.out
    outer, n, inner = scan_dims(node)
    fb = _function(name, buffers)
    with fb.loop("0", str(outer), "so") as o:
        base = fb.assign(f"mul nsw i64 {o}, {n * inner}")

        def columns(body):
            with fb.loop("0", str(inner), "sci") as i:
                body(fb.assign(f"add nsw i64 {base}, {i}"))
        scan_column(fb, node, f"%b{x_buf.id}", f"%b{out.id}", base, inner, columns)
    return fb.render(), buffers, False


def top_k_row(fb, x_dtype, px, row, n, k, vals, idxs):
    """Fills the allocas vals[k] / idxs[k] (i32) with row `row` of x ([rows, n]): descending, ties
    in index order (an element moves ahead only of strictly smaller ones)."""
    t = mem(x_dtype)
    floating = x_dtype.is_floating
    gt = (lambda a, b: fb.assign(f"fcmp ogt {t} {a}, {b}")) if floating else \
        (lambda a, b: fb.assign(f"icmp sgt {t} {a}, {b}"))
    count, pos = fb.alloca("i64"), fb.alloca("i64")
    fb.store("i64", "0", count)
    base = fb.assign(f"mul nsw i64 {row}, {n}")
    with fb.loop("0", str(n), "tk") as c:
        v = fb.load(t, fb.gep(t, px, fb.assign(f"add nsw i64 {base}, {c}")))
        cnt = fb.load("i64", count)
        full = fb.assign(f"icmp eq i64 {cnt}, {k}")
        last = fb.load(t, fb.gep(t, vals, str(k - 1)))
        take = fb.assign(f"select i1 {full}, i1 {gt(v, last)}, i1 true")
        with fb.if_(take):
            fb.store("i64", fb.assign(f"select i1 {full}, i64 {k - 1}, i64 {cnt}"), pos)
            head, check, body, done = (fb.label(h) for h in ("tkh", "tkc", "tkb", "tkd"))
            fb.emit(f"br label %{head}")
            fb.start_block(head)
            p = fb.load("i64", pos)
            fb.emit(f"br i1 {fb.assign(f'icmp sgt i64 {p}, 0')}, label %{check}, label %{done}")
            fb.start_block(check)
            q = fb.assign(f"sub nsw i64 {p}, 1")
            before = fb.load(t, fb.gep(t, vals, q))
            fb.emit(f"br i1 {gt(v, before)}, label %{body}, label %{done}")
            fb.start_block(body)
            fb.store(t, before, fb.gep(t, vals, p))
            fb.store("i32", fb.load("i32", fb.gep("i32", idxs, q)), fb.gep("i32", idxs, p))
            fb.store("i64", q, pos)
            fb.emit(f"br label %{head}")
            fb.start_block(done)
            p = fb.load("i64", pos)
            fb.store(t, v, fb.gep(t, vals, p))
            fb.store("i32", fb.assign(f"trunc i64 {c} to i32"), fb.gep("i32", idxs, p))
            more = fb.assign(f"add nsw i64 {cnt}, 1")
            fb.store("i64", fb.assign(f"select i1 {full}, i64 {cnt}, i64 {more}"), count)


def top_k_dims(node):
    x = node.operands[0]
    return num_elements(x.shape[:-1]), x.shape[-1], node.attrs["k"]


def emit_top_k(name, schedule, kernel, declarations):
    node = kernel.root.node
    (x_buf,), buffers = _buffers(schedule, kernel)
    out = kernel.out
    rows, n, k = top_k_dims(node)
    fb = _function(name, buffers)
    if k:
        t = mem(x_buf.dtype)
        vals, idxs = fb.alloca(f"[{k} x {t}]"), fb.alloca(f"[{k} x i32]")
        with fb.loop("0", str(rows), "tr") as r:
            top_k_row(fb, x_buf.dtype, f"%b{x_buf.id}", r, n, k, vals, idxs)
            source, st = (idxs, "i32") if node.attrs["output"] == 1 else (vals, t)
            base = fb.assign(f"mul nsw i64 {r}, {k}")
            with fb.loop("0", str(k), "tw") as j:
                fb.store(st, fb.load(st, fb.gep(st, source, j)), fb.gep(st, f"%b{out.id}",
                                                                        fb.assign(f"add nsw i64 {base}, {j}")))
    return fb.render(), buffers, False


# kernel-table key (an op record's extra["kernel"]) -> emitter of (function text, buffers, returns_status);
# registered by codegen/kernel_table.py
EMITTERS = {"gather": emit_gather, "segment_sum": emit_segment_sum, "scan": emit_scan, "top_k": emit_top_k}
