"""CPU kernels of the fused LSTM sequence ops (jitflow/ops/lstm_block.py): `lstm_block` (the forward
recurrence), `lstm_block_grad` (the backward one), `lstm_block_inputs` (the transposed [x_t, h_{t-1}, 1]
rows) and `lstm_block_weight_grad` (inputs @ gate gradients: the kernel's and bias' gradient).

Rows of the batch never meet in an LSTM (row b of h_t depends on row b of h_{t-1} only), so the two
recurrences are ranged over blocks of batch rows and a pool thread runs the WHOLE time loop for its
block: no barrier per step. Per step and block, one product and one fused loop:
- forward, step t: gates = bias (into rec's gate slots), += x_t W_x + h_{t-1} W_h, then i, j, f, o,
  c, h in one pass over the units (emitted for t = 0 and t > 0 apart, so that the loop vectorizes
  without run-time alias checks);
- backward, step t (descending): the gate gradients from the carried dh, dc and the saved
  activations, then dh_{t-1} += dG_t W_h^T into the carried dh (which holds the copied-through dh of
  rows past their length and 0 elsewhere). The carried dc, dh are the result's last B rows.
The products run on the generated register-blocked GEMM over weights packed once per call
(codegen/lstm_gemm.py: W_h / W_h^T in column panels, PHASE_INIT, into the op's workspace) where the
column count allows, else on BLAS (`jf_cblas_?gemm`, single-threaded as everywhere in jitflow) or, with
no BLAS, on plain loops. The weight gradient is one K-blocked GEMM ranged over column panels.
Shapes must be concrete (a shape-polymorphic build falls back to concrete code).
"""
from __future__ import annotations

from jitflow.errors import UnsupportedError

from .library import BLAS_PREFIX, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS
from .llvm_builder import FunctionBuilder, literal, llvm_type
from . import lstm_gemm
from .loops import PHASE_INIT, PHASE_MAIN, RangeInfo, _phase
from .scalar_llvm import ScalarLowering

MIN_BLOCK_ROWS = 8     # a thread's block of batch rows: no smaller (GEMMs on fewer rows waste the kernel)


def _concrete(node, kernel):
    values = list(node.operands) + [kernel.root]
    if not all(type(d) is int for v in values for d in v.shape):
        raise UnsupportedError(f"{node.op}: the fused LSTM kernel needs concrete shapes, got "
                               f"{[tuple(v.shape) for v in values]}")


def _block_rows(batch: int) -> int:
    from .cpu import num_threads
    threads = max(1, num_threads())
    rows = -(-batch // threads)
    return max(1, min(batch, max(rows, MIN_BLOCK_ROWS)))


class _Emitter:
    """Shared pieces: pointers with element offsets, the row block, the math."""

    def __init__(self, name, schedule, kernel, declarations):
        node = kernel.root.node
        _concrete(node, kernel)
        home = schedule.value_buffer
        self.node, self.kernel, self.declarations = node, kernel, declarations
        self.operands = [home[id(v)] for v in node.operands]
        self.scratch = getattr(kernel, "scratch", None)     # the packed recurrent weights (lstm_gemm.py)
        extra = [self.scratch] if self.scratch is not None else []
        self.buffers = list({b.id: b for b in self.operands + [kernel.out] + extra}.values())
        params = [f"ptr noalias %b{b.id}" for b in self.buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
        self.fb = FunctionBuilder(name, params, attrs="nounwind")
        self.dtype = kernel.out.dtype
        self.t = llvm_type(self.dtype)
        self.low = ScalarLowering(self.fb, declarations)
        if self.dtype.name not in BLAS_PREFIX:
            raise UnsupportedError(f"{node.op}: the fused LSTM kernel supports float32 and float64, got "
                                   f"{self.dtype.name}")

    def ptr(self, k: int) -> str:
        return f"%b{self.operands[k].id}"

    def at(self, base: str, offset: str) -> str:
        """base + offset elements (no inbounds: a pointer selected away may point before a buffer)."""
        return self.fb.assign(f"getelementptr {self.t}, ptr {base}, i64 {offset}", "p")

    def i64(self, text: str) -> str:
        return self.fb.assign(text)

    def lit(self, value) -> str:
        return literal(value, self.dtype)

    def op(self, prim, *args) -> str:
        return self.low.lower(prim, self.dtype, list(args), [self.dtype] * len(args), None)

    def gate(self, x) -> str:
        """The i / f / o activation: sigmoid, or Keras' hard_sigmoid clip(0.2 x + 0.5, 0, 1)."""
        if self.node.attrs.get("gate_activation", "sigmoid") == "sigmoid":
            return self.sigmoid(x)
        lin = self.op("add", self.op("mul", x, self.lit(0.2)), self.lit(0.5))
        return self.op("min", self.op("max", lin, self.lit(0)), self.lit(1))

    def gate_slope(self, y) -> str:
        """d gate / dz from the gate's value y."""
        one = self.lit(1)
        if self.node.attrs.get("gate_activation", "sigmoid") == "sigmoid":
            return self.op("mul", y, self.op("sub", one, y))
        inside = self.fb.assign(f"and i1 {self.fb.assign(f'fcmp ogt {self.t} {y}, {self.lit(0)}')}, "
                                f"{self.fb.assign(f'fcmp olt {self.t} {y}, {one}')}")
        return self.select(inside, self.lit(0.2), self.lit(0))

    def sigmoid(self, x) -> str:
        return self.op("div", self.lit(1), self.op("add", self.lit(1), self.op("exp", self.op("neg", x))))

    def load(self, base, index) -> str:
        return self.fb.load(self.t, self.fb.gep(self.t, base, index))

    def store(self, value, base, index):
        self.fb.store(self.t, value, self.fb.gep(self.t, base, index))

    def valid(self, lengths_k, row, t) -> str:
        """i1: step t is inside row `row`'s length (always, without lengths)."""
        if lengths_k is None:
            return "true"
        buf = self.operands[lengths_k]
        it = llvm_type(buf.dtype)
        length = self.fb.load(it, self.fb.gep(it, self.ptr(lengths_k), row))
        if it != "i64":
            length = self.fb.assign(f"sext {it} {length} to i64")
        return self.fb.assign(f"icmp slt i64 {t}, {length}")

    def select(self, cond, a, b) -> str:
        return self.fb.assign(f"select i1 {cond}, {self.t} {a}, {self.t} {b}")

    def rows(self, block: int, batch: int):
        """(r0, r1) of this call's row blocks [%start, %stop)."""
        fb = self.fb
        r0 = fb.assign(f"mul i64 %start, {block}")
        end = fb.assign(f"mul i64 %stop, {block}")
        r1 = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {end}, {batch}')}, i64 {end}, i64 {batch}")
        return r0, r1

    def gemm(self, trans_b: bool, m, n, k, a, lda, b, ldb, c, ldc, blas=True):
        """C[m, n] += A[m, k] @ op(B): the BLAS call, or plain loops without a BLAS library."""
        if not blas:
            fb = self.fb
            with fb.loop("0", m, "mi") as i:
                a_row, c_row = self.at(a, self.i64(f"mul i64 {i}, {lda}")), self.at(c, self.i64(f"mul i64 {i}, {ldc}"))
                with fb.loop("0", str(k), "mk") as kk:
                    a_val = self.load(a_row, kk)
                    with fb.loop("0", str(n), "mj") as j:
                        index = self.i64(f"add i64 {self.i64(f'mul i64 {j}, {ldb}')}, {kk}") if trans_b \
                            else self.i64(f"add i64 {self.i64(f'mul i64 {kk}, {ldb}')}, {j}")
                        product = self.op("mul", a_val, self.load(b, index))
                        self.store(self.op("add", self.load(c_row, j), product), c_row, j)
            return
        symbol = f"jf_cblas_{BLAS_PREFIX[self.dtype.name]}gemm"
        t = self.t
        self.declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                              f"{t}, ptr, i64)")
        self.fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_NO_TRANS}, "
                     f"i32 {CBLAS_TRANS if trans_b else CBLAS_NO_TRANS}, i64 {m}, i64 {n}, i64 {k}, "
                     f"{t} {self.lit(1)}, ptr {a}, i64 {lda}, ptr {b}, i64 {ldb}, {t} {self.lit(1)}, "
                     f"ptr {c}, i64 {ldc})")

    def finish(self, extent, work):
        return self.fb.render(), self.buffers, False, RangeInfo(extent, work, True)


def emit_lstm_block(name: str, schedule, kernel, declarations: set, blas: bool):
    """The CPU kernel-table emitter of lstm_block: (text, buffers, returns_status, RangeInfo)."""
    e = _Emitter(name, schedule, kernel, declarations)
    fb = e.fb
    steps, batch, six_n = kernel.out.shape
    n = six_n // 6
    g4 = 4 * n
    depth = e.operands[1].shape[0] - n
    lengths_k = 5 if len(e.node.operands) == 6 else None
    x, weights, bias, c0, h0, rec = e.ptr(0), e.ptr(1), e.ptr(2), e.ptr(3), e.ptr(4), f"%b{kernel.out.id}"
    forget = e.lit(float(e.node.attrs.get("forget_bias", 1.0)))
    block = _block_rows(batch)
    e.n, e.batch = n, batch
    packed = f"%b{e.scratch.id}" if e.scratch is not None and lstm_gemm.fits(g4, e.dtype) else None
    if packed is not None:
        with _phase(fb, PHASE_INIT):     # the kernel in panels, once per call, before the threads split the rows
            lstm_gemm.pack(e, weights, depth + n, g4, False, packed)
    w_h = e.at(weights, str(depth * g4))
    with _phase(fb, PHASE_MAIN):
        r0, r1 = e.rows(block, batch)
        count = fb.assign(f"sub i64 {r1}, {r0}")
        with fb.if_(fb.assign(f"icmp sgt i64 {count}, 0")):
            with fb.loop("0", str(steps), "t") as t:
                tb = e.i64(f"mul i64 {t}, {batch}")
                with fb.loop(r0, r1, "r") as r:          # gates = bias
                    o_row = fb.gep(e.t, rec, e.i64(f"mul i64 {e.i64(f'add i64 {tb}, {r}')}, {six_n}"))
                    with fb.loop("0", str(g4), "k") as k:
                        e.store(e.load(bias, k), o_row, k)
                first = fb.assign(f"icmp eq i64 {t}, 0")

                def x_row(r, tb=tb):
                    return _row(e, x, tb, r, depth, 0)

                def h_row(r, first=first, tb=tb):
                    return _h_prev_row(e, rec, h0, first, tb, r, batch)

                def gate_row(r, tb=tb):
                    return _row(e, rec, tb, r, six_n, 0)

                if packed is not None:         # gates += x_t W_x + h_{t-1} W_h
                    if depth:
                        lstm_gemm.gemm_rows(e, r0, r1, depth, g4, packed, x_row, gate_row, 0, depth + n)
                    lstm_gemm.gemm_rows(e, r0, r1, n, g4, packed, h_row, gate_row, depth, depth + n)
                else:
                    if depth:
                        e.gemm(False, count, g4, depth, x_row(r0), depth, weights, g4, gate_row(r0), six_n, blas)
                    lda = fb.assign(f"select i1 {first}, i64 {n}, i64 {six_n}")
                    e.gemm(False, count, g4, n, h_row(r0), lda, w_h, g4, gate_row(r0), six_n, blas)
                # the gate math, emitted twice so that every pointer of a version has one base the
                # vectorizer can see (c0/h0 at t = 0, rec's previous step after): no run-time alias checks
                with fb.if_(first):
                    _gate_rows(e, r0, r1, tb, t, rec, forget, lengths_k, lambda r: (
                        fb.gep(e.t, c0, e.i64(f"mul nuw nsw i64 {r}, {n}")),
                        fb.gep(e.t, h0, e.i64(f"mul nuw nsw i64 {r}, {n}"))))
                with fb.if_(fb.assign(f"xor i1 {first}, true")):
                    _gate_rows(e, r0, r1, tb, t, rec, forget, lengths_k, None)
    extent = -(-batch // block)
    return e.finish(extent, steps * batch * n * g4)


def _gate_rows(e, r0, r1, tb, t, rec, forget, lengths_k, initial):
    """i, j, f, o, c, h of rows [r0, r1) at step t (gates in place in rec's slots); the previous
    c and h from `initial(r)` (pointers), or from rec's previous step when `initial` is None."""
    fb = e.fb
    n = e.n
    with fb.loop(r0, r1, "g") as r:
        row = e.i64(f"add nuw nsw i64 {tb}, {r}")
        o_row = fb.gep(e.t, rec, e.i64(f"mul nuw nsw i64 {row}, {6 * n}"))
        if initial is None:
            c_prev, h_prev = fb.gep(e.t, o_row, str(4 * n - 6 * n * e.batch)), \
                fb.gep(e.t, o_row, str(5 * n - 6 * n * e.batch))
        else:
            c_prev, h_prev = initial(r)
        valid = e.valid(lengths_k, r, t)
        slots = [fb.gep(e.t, o_row, str(q * n)) for q in range(6)]     # i, j, f, o, c, h
        with fb.loop("0", str(n), "u") as k:
            a = [e.load(slots[q], k) for q in range(4)]
            cp, hp = e.load(c_prev, k), e.load(h_prev, k)
            i, j = e.gate(a[0]), e.op("tanh", a[1])
            f, o = e.gate(e.op("add", a[2], forget)), e.gate(a[3])
            c = e.op("add", e.op("mul", f, cp), e.op("mul", i, j))
            h = e.op("mul", o, e.op("tanh", c))
            zero = e.lit(0)
            for q, v in enumerate((i, j, f, o)):
                e.store(e.select(valid, v, zero), slots[q], k)
            e.store(e.select(valid, c, cp), slots[4], k)
            e.store(e.select(valid, h, hp), slots[5], k)


def _row(e, base, first_row, r, width, offset):
    """Pointer to element `offset` of row first_row + r of a [rows, width] buffer."""
    row = e.i64(f"add i64 {first_row}, {r}")
    return e.fb.gep(e.t, base, e.i64(f"add i64 {e.i64(f'mul i64 {row}, {width}')}, {offset}"))


def _h_prev_row(e, rec, h0, first, tb, r, batch):
    """Row r of h_{t-1}: h0's at t = 0, else the h slot of rec's previous step."""
    n = e.n
    start = e.fb.gep(e.t, h0, e.i64(f"mul i64 {r}, {n}"))
    row = e.i64(f"add i64 {tb}, {r}")
    here = e.at(rec, e.i64(f"add i64 {e.i64(f'mul i64 {row}, {6 * n}')}, {5 * n - 6 * n * batch}"))
    return e.fb.assign(f"select i1 {first}, ptr {start}, ptr {here}")


def emit_lstm_block_grad(name: str, schedule, kernel, declarations: set, blas: bool):
    """The CPU kernel-table emitter of lstm_block_grad: (text, buffers, returns_status, RangeInfo)."""
    e = _Emitter(name, schedule, kernel, declarations)
    fb = e.fb
    steps, batch = e.operands[0].shape[0], e.operands[0].shape[1]
    g4 = kernel.out.shape[1]
    n = g4 // 4
    six_n = 6 * n
    lengths_k = 4 if len(e.node.operands) == 5 else None
    rec, drec, c0, out = e.ptr(0), e.ptr(1), e.ptr(3), f"%b{kernel.out.id}"
    wh = e.at(e.ptr(2), str((e.operands[2].shape[0] - n) * g4))      # W_h: the kernel's last N rows
    block = _block_rows(batch)
    one, zero = e.lit(1), e.lit(0)
    packed = f"%b{e.scratch.id}" if e.scratch is not None and lstm_gemm.fits(n, e.dtype) else None
    if packed is not None:
        with _phase(fb, PHASE_INIT):     # W_h^T in panels, once per call
            lstm_gemm.pack(e, wh, g4, n, True, packed)
    with _phase(fb, PHASE_MAIN):
        r0, r1 = e.rows(block, batch)
        count = fb.assign(f"sub i64 {r1}, {r0}")
        with fb.if_(fb.assign(f"icmp sgt i64 {count}, 0")):
            carry_base = steps * batch
            with fb.loop(r0, r1, "z") as r:              # carried dc, dh (and the unused half) start at 0
                carry = e.at(out, e.i64(f"mul i64 {e.i64(f'add i64 {r}, {carry_base}')}, {g4}"))
                with fb.loop("0", str(g4), "zk") as k:
                    e.store(zero, carry, k)
            with fb.loop("0", str(steps), "s") as s:
                t = e.i64(f"sub i64 {steps - 1}, {s}")
                tb = e.i64(f"mul i64 {t}, {batch}")
                first = fb.assign(f"icmp eq i64 {t}, 0")
                with fb.loop(r0, r1, "g") as r:
                    row = e.i64(f"add i64 {tb}, {r}")
                    r_row = fb.gep(e.t, rec, e.i64(f"mul i64 {row}, {six_n}"))
                    d_row = fb.gep(e.t, drec, e.i64(f"mul i64 {row}, {six_n}"))
                    g_row = fb.gep(e.t, out, e.i64(f"mul i64 {row}, {g4}"))
                    carry = fb.gep(e.t, out, e.i64(f"mul i64 {e.i64(f'add i64 {r}, {carry_base}')}, {g4}"))
                    prev = e.at(rec, e.i64(f"mul i64 {e.i64(f'sub i64 {row}, {batch}')}, {six_n}"))
                    c_prev = fb.assign(f"select i1 {first}, ptr {e.at(c0, e.i64(f'mul i64 {r}, {n}'))}, "
                                       f"ptr {e.at(prev, str(4 * n))}")
                    valid = e.valid(lengths_k, r, t)
                    saved = [fb.gep(e.t, r_row, str(q * n)) for q in range(5)]       # i, j, f, o, c
                    d_c, d_h = fb.gep(e.t, d_row, str(4 * n)), fb.gep(e.t, d_row, str(5 * n))
                    grads = [fb.gep(e.t, g_row, str(q * n)) for q in range(4)]
                    carry_c, carry_h = carry, fb.gep(e.t, carry, str(n))
                    with fb.loop("0", str(n), "u") as k:
                        dh = e.op("add", e.load(carry_h, k), e.load(d_h, k))
                        dc = e.op("add", e.load(carry_c, k), e.load(d_c, k))
                        i, j, f, o, c = (e.load(saved[q], k) for q in range(5))
                        cp = e.load(c_prev, k)
                        tc = e.op("tanh", c)
                        dc2 = e.op("add", dc, e.op("mul", e.op("mul", dh, o),
                                                   e.op("sub", one, e.op("mul", tc, tc))))
                        d_i = e.op("mul", e.op("mul", dc2, j), e.gate_slope(i))
                        d_j = e.op("mul", e.op("mul", dc2, i), e.op("sub", one, e.op("mul", j, j)))
                        d_f = e.op("mul", e.op("mul", dc2, cp), e.gate_slope(f))
                        d_o = e.op("mul", e.op("mul", dh, tc), e.gate_slope(o))
                        for q, v in enumerate((d_i, d_j, d_f, d_o)):
                            e.store(e.select(valid, v, zero), grads[q], k)
                        e.store(e.select(valid, e.op("mul", dc2, f), dc), carry_c, k)
                        e.store(e.select(valid, zero, dh), carry_h, k)
                if packed is not None:         # dh_{t-1} += dG_t W_h^T
                    lstm_gemm.gemm_rows(e, r0, r1, g4, n, packed, lambda r, tb=tb: _row(e, out, tb, r, g4, 0),
                                        lambda r: _row(e, out, str(carry_base), r, g4, n))
                else:
                    d_gates = e.at(out, e.i64(f"mul i64 {e.i64(f'add i64 {tb}, {r0}')}, {g4}"))
                    carry_row = e.i64(f"add i64 {r0}, {carry_base}")
                    dh_carry = e.at(out, e.i64(f"add i64 {e.i64(f'mul i64 {carry_row}, {g4}')}, {n}"))
                    e.gemm(True, count, n, g4, d_gates, g4, wh, g4, dh_carry, g4, blas)
    extent = -(-batch // block)
    return e.finish(extent, steps * batch * n * g4)


def emit_gpu_unsupported(gm, name, schedule, kernel):
    """The GPU kernel-table entry of both ops: there is no PTX kernel for them."""
    node = kernel.root.node
    raise UnsupportedError(f"{node.op}: the fused LSTM kernel has no GPU (PTX) kernel; on the GPU build the RNN "
                           f"with the composite cell path (jitflow.api.lstm_fast.use_fused_lstm(False))")



def emit_lstm_block_inputs(name: str, schedule, kernel, declarations: set, blas: bool):
    """[I+N+1, (T+1)*B], the transpose of the rows [x_t[b], h_{t-1}[b], 1] (h_{-1} = h0) for row t*B + b
    and of B rows of zeros."""
    node = kernel.root.node
    _concrete(node, kernel)
    home = schedule.value_buffer
    x_buf, rec_buf, h0_buf = (home[id(v)] for v in node.operands)
    out = kernel.out
    buffers = list({b.id: b for b in (x_buf, rec_buf, h0_buf, out)}.values())
    fb = FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers], attrs="nounwind")
    t = llvm_type(out.dtype)
    steps, batch, six_n = rec_buf.shape
    n, depth = six_n // 6, x_buf.shape[1]
    width = (steps + 1) * batch
    x, rec, h0, dst = (f"%b{b.id}" for b in (x_buf, rec_buf, h0_buf, out))
    with fb.loop("0", str(steps * batch), "row") as row:
        x_row = fb.gep(t, x, fb.assign(f"mul nuw nsw i64 {row}, {depth}"))
        with fb.loop("0", str(depth), "xc") as c:
            fb.store(t, fb.load(t, fb.gep(t, x_row, c)),
                     fb.gep(t, dst, fb.assign(f"add nuw nsw i64 {fb.assign(f'mul nuw nsw i64 {c}, {width}')}, {row}")))
        first = fb.assign(f"icmp slt i64 {row}, {batch}")
        from_h0 = fb.gep(t, h0, fb.assign(f"mul nuw nsw i64 {fb.assign(f'srem i64 {row}, {batch}')}, {n}"))
        rec_index = fb.assign(f"add i64 {fb.assign(f'mul i64 {row}, {six_n}')}, {5 * n - six_n * batch}")
        from_rec = fb.assign(f"getelementptr {t}, ptr {rec}, i64 {rec_index}")
        h_row = fb.assign(f"select i1 {first}, ptr {from_h0}, ptr {from_rec}")
        h_dst = fb.gep(t, dst, fb.assign(f"add nuw nsw i64 {row}, {depth * width}"))
        with fb.loop("0", str(n), "hc") as c:
            fb.store(t, fb.load(t, fb.gep(t, h_row, c)), fb.gep(t, h_dst, fb.assign(f"mul nuw nsw i64 {c}, {width}")))
        fb.store(t, literal(1, out.dtype), fb.gep(t, dst, fb.assign(f"add nuw nsw i64 {row}, {(depth + n) * width}")))
    with fb.loop("0", str(depth + n + 1), "zr") as c:     # the carry rows' columns: 0
        column = fb.assign(f"mul nuw nsw i64 {c}, {width}")
        tail = fb.gep(t, dst, fb.assign(f"add nuw nsw i64 {column}, {steps * batch}"))
        with fb.loop("0", str(batch), "zc") as k:
            fb.store(t, literal(0, out.dtype), fb.gep(t, tail, k))
    return fb.render(), buffers, False, None


def emit_lstm_block_weight_grad(name: str, schedule, kernel, declarations: set, blas: bool):
    """inputs_t @ grads: the generated K-blocked GEMM ranged over column panels (lstm_gemm.gemm_panels),
    or one BLAS call / loop nest where the columns are no multiple of a panel."""
    e = _Emitter(name, schedule, kernel, declarations)
    m, k_total = e.operands[0].shape
    cols = kernel.out.shape[1]
    a, b, c = e.ptr(0), e.ptr(1), f"%b{kernel.out.id}"
    if lstm_gemm.fits(cols, e.dtype):
        panels = cols // (lstm_gemm.geometry(e.dtype)[0] * lstm_gemm.J)
        with _phase(e.fb, PHASE_MAIN):
            lstm_gemm.gemm_panels(e, "%start", "%stop", m, k_total, a, b, c, cols)
        return e.finish(panels, m * k_total * cols)
    with _phase(e.fb, PHASE_MAIN):       # C = 0, then C += A B
        with e.fb.loop("0", str(m * cols), "z") as i:
            e.store(e.lit(0), c, i)
        if blas:
            symbol = f"jf_cblas_{BLAS_PREFIX[e.dtype.name]}gemm"
            e.declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {e.t}, ptr, i64, ptr, i64, "
                               f"{e.t}, ptr, i64)")
            e.fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_NO_TRANS}, i32 {CBLAS_NO_TRANS}, "
                      f"i64 {m}, i64 {cols}, i64 {k_total}, {e.t} {e.lit(1)}, ptr {a}, i64 {max(1, k_total)}, ptr {b}, "
                      f"i64 {max(1, cols)}, {e.t} {e.lit(0)}, ptr {c}, i64 {max(1, cols)})")
        else:
            with e.fb.loop("0", str(k_total), "wk") as k:
                b_row = e.at(b, e.i64(f"mul i64 {k}, {cols}"))
                with e.fb.loop("0", str(m), "wm") as i:
                    a_val = e.load(a, e.i64(f"add i64 {e.i64(f'mul i64 {i}, {k_total}')}, {k}"))
                    c_row = e.at(c, e.i64(f"mul i64 {i}, {cols}"))
                    with e.fb.loop("0", str(cols), "wc") as j:
                        e.store(e.op("add", e.load(c_row, j), e.op("mul", a_val, e.load(b_row, j))), c_row, j)
    return e.finish(1, m * k_total * cols)
