"""Vectorizable transcendental functions, emitted inline into a loop body as LLVM IR.

`lower(low, prim, dtype, args)` is the one entry point (called from
codegen/scalar_llvm.py's ScalarLowering for primitives without a target
override): it returns the result name of straight-line code, or None where the
primitive and dtype keep their LLVM intrinsic / libm call. Every function here is
range reduction + polynomial, with special values chosen by `select` and no
calls except LLVM intrinsics that lower to single instructions (fma, rint,
floor, fabs, minnum/maxnum, copysign), so the loop vectorizer widens them to the
host's widest SIMD (<16 x float> on AVX-512).

| primitive | float32                                   | float64                      |
| --------- | ----------------------------------------- | ---------------------------- |
| exp       | scalar_llvm's jf_exp helper               | inline, Taylor degree 13     |
| expm1     | inline                                    | inline                       |
| log       | inline (atanh series)                     | inline                       |
| log1p     | scalar_llvm's Goldberg form over this log | same                         |
| tanh      | inline, expm1(2|x|) / (expm1(2|x|) + 2)   | inline, same                 |
| sin, cos  | inline: exact table reduction (any |x|) + double polynomials | libm (a vector version needs multi-word reduction) |
| pow       | inline in double: exp(y * log|x|) + C99 special cases | libm (needs double-double log) |
| erf       | inline in double: series / exp(-x^2) P(x) | libm `erf`                   |
| sigmoid, softplus | composites of exp / log1p (ops), so vector through them |  |

Polynomials are truncated Taylor/atanh series (exact rational coefficients) or,
for erfc on [1, 4], a degree-14 Chebyshev fit of erfc(x) exp(x^2) made with
math.erfc (max relative error 2.4e-10). The measured ulp bounds are in the op
records (`extra["ulp"]`) and checked by tests/test_vector_math.py. The CPU entry
point runs with denormals flushed (FTZ/DAZ), so a denormal input acts as 0.
"""
from __future__ import annotations

import functools
import math
import struct

from jitflow.ir.types import DType, float64

from .llvm_builder import float_literal

F32, F64 = "float", "double"
_INT = {F32: "i32", F64: "i64"}
_SUFFIX = {F32: "f32", F64: "f64"}
_MANT = {F32: 23, F64: 52}
_BIAS = {F32: 127, F64: 1023}
LN2 = 0.6931471805599453094172321214581765680755
# ln 2 split so that k * LN2_HI is exact for every k a reduction can produce
_LN2_HI = {F32: 0.693359375, F64: float.fromhex("0x1.62e42fee00000p-1")}
_LN2_LO = {F32: -2.12194440e-4, F64: float.fromhex("0x1.a39ef35793c76p-33")}
_SQRT_HALF_BITS = {F32: 0x3F3504F3, F64: 0x3FE6A09E667F3BCD}
# erfc(x) exp(x^2) on [1, 4] in u = (2x - 5) / 3, highest power first (see module docstring)
_ERFC_P = [float.fromhex(h) for h in (
    '0x1.e6ad40fb5bba8p-20', '-0x1.5372dae893572p-18', '0x1.f58a8b4403223p-18', '-0x1.57c2570bd8526p-16',
    '0x1.0b0fafbb76a03p-14', '-0x1.58f9e57542002p-13', '0x1.ac67c31779ae8p-12', '-0x1.076636587d6c4p-10',
    '0x1.3b1199d872018p-9', '-0x1.6d18adafb2ddbp-8', '0x1.9940512dd27f0p-7', '-0x1.ba745613d5ed8p-6',
    '0x1.cba83c3bb2f8ep-5', '-0x1.c8ca440ef2a3bp-4', '0x1.afbb3f3b39efep-3')]

# float64 primitives that stay libm calls (everything else in the table above is inline)
LIBM_FLOAT64 = ("sin", "cos", "pow", "erf")
PRIMITIVES = ("exp", "expm1", "tanh", "log", "sin", "cos", "pow", "erf")


class _Emitter:
    """Instruction helpers over a FunctionBuilder; intrinsic declarations go to `declarations`."""

    def __init__(self, fb, declarations: set):
        self.fb, self.declarations = fb, declarations

    def k(self, value: float, t: str) -> str:
        if t == F32:
            value = struct.unpack("<f", struct.pack("<f", value))[0]
        return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]

    def op(self, name: str, t: str, a: str, b: str) -> str:
        return self.fb.assign(f"{name} {t} {a}, {b}")

    def add(self, t, a, b): return self.op("fadd", t, a, b)
    def sub(self, t, a, b): return self.op("fsub", t, a, b)
    def mul(self, t, a, b): return self.op("fmul", t, a, b)
    def div(self, t, a, b): return self.op("fdiv", t, a, b)

    def intr(self, name: str, t: str, *args: str) -> str:
        s = _SUFFIX[t]
        self.declarations.add(f"declare {t} @llvm.{name}.{s}({', '.join([t] * len(args))})")
        return self.fb.assign(f"call {t} @llvm.{name}.{s}({', '.join(f'{t} {a}' for a in args)})")

    def fma(self, t, a, b, c): return self.intr("fma", t, a, b, c)

    def cmp(self, pred: str, t: str, a: str, b: str) -> str:
        return self.fb.assign(f"fcmp {pred} {t} {a}, {b}")

    def sel(self, cond: str, t: str, a: str, b: str) -> str:
        return self.fb.assign(f"select i1 {cond}, {t} {a}, {t} {b}")

    def poly(self, t: str, x: str, coeffs) -> str:
        """Horner with fma; coefficients from the highest power down."""
        acc = self.k(coeffs[0], t)
        for c in coeffs[1:]:
            acc = self.fma(t, acc, x, self.k(c, t))
        return acc

    def pow2(self, t: str, k_int: str) -> str:
        """2^k for an integer k of the float's width whose biased exponent is in range."""
        it = _INT[t]
        e = self.fb.assign(f"add {it} {k_int}, {_BIAS[t]}")
        return self.fb.assign(f"bitcast {it} {self.fb.assign(f'shl {it} {e}, {_MANT[t]}')} to {t}")

    def to_int(self, t: str, x: str) -> str:
        return self.fb.assign(f"fptosi {t} {x} to {_INT[t]}")


# ---- exp / expm1 ------------------------------------------------------------------------------
def _reduce_exp(E: _Emitter, t: str, x: str, lo: float, hi: float):
    """x clamped to [lo, hi]; k = rint(x / ln 2), r = x - k ln 2 in two parts; returns (k, expm1(r))."""
    xc = E.intr("minnum", t, E.intr("maxnum", t, x, E.k(lo, t)), E.k(hi, t))
    kf = E.intr("rint", t, E.mul(t, xc, E.k(1 / LN2, t)))
    r = E.fma(t, kf, E.k(-_LN2_HI[t], t), xc)
    r = E.fma(t, kf, E.k(-_LN2_LO[t], t), r)
    degree = 9 if t == F32 else 13
    q = E.poly(t, r, [1 / math.factorial(n) for n in range(degree, 1, -1)])
    p = E.fma(t, q, E.mul(t, r, r), r)
    return kf, p


def _nan_through(E: _Emitter, t: str, x: str, result: str) -> str:
    return E.sel(E.cmp("uno", t, x, x), t, x, result)


def exp(E: _Emitter, t: str, x: str) -> str:
    """exp(x) = 2^k (1 + p), scaled by two halves of 2^k so overflow and underflow need no case."""
    kf, p = _reduce_exp(E, t, x, -746.0 if t == F64 else -104.0, 710.0 if t == F64 else 89.0)
    y = E.add(t, p, E.k(1.0, t))
    k = E.to_int(t, kf)
    k1 = E.fb.assign(f"ashr {_INT[t]} {k}, 1")
    k2 = E.fb.assign(f"sub {_INT[t]} {k}, {k1}")
    y = E.mul(t, E.mul(t, y, E.pow2(t, k1)), E.pow2(t, k2))
    return _nan_through(E, t, x, y)


def expm1(E: _Emitter, t: str, x: str) -> str:
    """k <= 0: 2^k p + (2^k - 1); k > 0: (p + (1 - 2^-k)) 2^k (as two halves). Exact where x is 0."""
    lo = -18.0 if t == F32 else -40.0          # below: -1 in the format
    kf, p = _reduce_exp(E, t, x, lo, 89.0 if t == F32 else 710.0)
    it = _INT[t]
    k = E.to_int(t, kf)
    low_k = E.fb.assign(f"call {it} @llvm.smax.{it}({it} {k}, {it} -200)")
    E.declarations.add(f"declare {it} @llvm.smax.{it}({it}, {it})")
    E.declarations.add(f"declare {it} @llvm.smin.{it}({it}, {it})")
    s = E.pow2(t, low_k)                          # k <= 0 branch: 2^k (k >= -60 after the clamp)
    neg_branch = E.fma(t, s, p, E.sub(t, s, E.k(1.0, t)))
    k_cap = E.fb.assign(f"call {it} @llvm.smin.{it}({it} {k}, {it} 60)")
    inv = E.pow2(t, E.fb.assign(f"sub {it} 0, {k_cap}"))      # 2^-k, 1 - 2^-k rounds to 1 past 60
    y = E.add(t, p, E.sub(t, E.k(1.0, t), inv))
    k1 = E.fb.assign(f"ashr {it} {k}, 1")
    k2 = E.fb.assign(f"sub {it} {k}, {k1}")
    pos_branch = E.mul(t, E.mul(t, y, E.pow2(t, k1)), E.pow2(t, k2))
    positive = E.fb.assign(f"icmp sgt {it} {k}, 0")
    y = E.sel(positive, t, pos_branch, neg_branch)
    y = E.sel(E.cmp("oeq", t, x, E.k(0.0, t)), t, x, y)      # keeps -0
    return _nan_through(E, t, x, y)


def tanh(E: _Emitter, t: str, x: str) -> str:
    """tanh|x| = e / (e + 2) with e = expm1(2|x|), |x| capped where tanh rounds to 1; sign copied."""
    a = E.intr("fabs", t, x)
    a = E.intr("minnum", t, a, E.k(9.5 if t == F32 else 20.0, t))
    e = expm1(E, t, E.add(t, a, a))
    y = E.div(t, e, E.add(t, e, E.k(2.0, t)))
    return _nan_through(E, t, x, E.intr("copysign", t, y, x))


# ---- log --------------------------------------------------------------------------------------
def log(E: _Emitter, t: str, x: str) -> str:
    """x = 2^e m with m in [sqrt(1/2), sqrt(2)); log(m) = f - (f^2/2 - s (f^2/2 + R(s^2))),
    f = m - 1, s = f / (2 + f), R the atanh series; + e ln 2 in two parts."""
    it, fb = _INT[t], E.fb
    bits = fb.assign(f"bitcast {t} {x} to {it}")
    ix = fb.assign(f"sub {it} {bits}, {_SQRT_HALF_BITS[t]}")
    e = fb.assign(f"ashr {it} {ix}, {_MANT[t]}")
    mant = fb.assign(f"and {it} {ix}, {(1 << _MANT[t]) - 1}")
    m = fb.assign(f"bitcast {it} {fb.assign(f'add {it} {mant}, {_SQRT_HALF_BITS[t]}')} to {t}")
    f = E.sub(t, m, E.k(1.0, t))
    s = E.div(t, f, E.add(t, f, E.k(2.0, t)))
    z = E.mul(t, s, s)
    terms = 4 if t == F32 else 11
    R = E.mul(t, z, E.poly(t, z, [2 / (2 * n + 1) for n in range(terms, 0, -1)]))
    hfsq = E.mul(t, E.k(0.5, t), E.mul(t, f, f))
    ef = fb.assign(f"sitofp {it} {e} to {t}")
    inner = E.fma(t, s, E.add(t, hfsq, R), E.mul(t, ef, E.k(_LN2_LO[t], t)))
    y = E.add(t, E.mul(t, ef, E.k(_LN2_HI[t], t)), E.sub(t, f, E.sub(t, hfsq, inner)))
    inf = E.k(math.inf, t)
    y = E.sel(E.cmp("oeq", t, x, inf), t, inf, y)
    y = E.sel(E.cmp("olt", t, x, E.k(0.0, t)), t, E.k(math.nan, t), y)
    y = E.sel(E.cmp("oeq", t, x, E.k(0.0, t)), t, E.k(-math.inf, t), y)
    return _nan_through(E, t, x, y)


# ---- sin / cos (float32) ----------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _two_over_pi_bits(bits: int = 640) -> int:
    """floor(2/pi * 2^bits), from Machin's formula in integer arithmetic."""
    scale = 1 << (bits + 32)

    def arctan_inv(n):
        total, term, k, sign = 0, scale // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k += 2
            sign = -sign
        return total
    pi_scaled = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return (2 << (2 * bits + 32)) // pi_scaled


@functools.lru_cache(maxsize=None)
def sincos_table_global() -> str:
    """For each float32 exponent field ex (0 read as 1): (2^(ex-150) * 2/pi) mod 4, as three doubles:
    g0 (multiples of 2^-24, < 4), g1 (multiples of 2^-50, < 2^-24) and the rounded rest."""
    bits = 640
    g = _two_over_pi_bits(bits)             # 2/pi = g / 2^bits
    values = []
    for ex in range(256):
        e = max(ex, 1) - 150                # x = M * 2^e with the 24-bit integer M
        num, den_bits = (g << e, bits) if e >= 0 else (g, bits - e)   # G = num / 2^den_bits
        num %= 4 << den_bits                 # mod 4
        g0 = num >> (den_bits - 24)          # units of 2^-24
        rest = num - (g0 << (den_bits - 24))
        g1 = rest >> (den_bits - 50)         # units of 2^-50
        rest -= g1 << (den_bits - 50)
        values += [g0 / 2 ** 24, g1 / 2 ** 50, rest / 2 ** den_bits]
    items = ", ".join(f"double {float_literal(v, float64)}" for v in values)
    return f"@jf_sincos_f32_table = internal unnamed_addr constant [768 x double] [{items}], align 64"


def _sin_cos_f32(E: _Emitter, x: str, is_cos: bool) -> str:
    """Exact reduction: |x| = M 2^e, x 2/pi mod 4 = M g0 mod 4 + M g1 (exact sum) + M g2;
    quadrant from its integer part, sin/cos polynomials of the remainder in double."""
    fb = E.fb
    E.declarations.add(sincos_table_global())
    bits = fb.assign(f"bitcast float {x} to i32")
    ex = fb.assign(f"and i32 {fb.assign(f'lshr i32 {bits}, 23')}, 255")
    normal = fb.assign(f"icmp ne i32 {ex}, 0")
    frac = fb.assign(f"and i32 {bits}, 8388607")
    mant = fb.assign(f"or i32 {frac}, {fb.assign(f'select i1 {normal}, i32 8388608, i32 0')}")
    M = fb.assign(f"sitofp i32 {mant} to double")
    index = fb.assign(f"zext i32 {fb.assign(f'mul i32 {ex}, 3')} to i64")
    g = []
    for part in range(3):
        at = fb.assign(f"add i64 {index}, {part}") if part else index
        ptr = fb.assign(f"getelementptr inbounds [768 x double], ptr @jf_sincos_f32_table, i64 0, i64 {at}")
        g.append(fb.assign(f"load double, ptr {ptr}"))
    d = F64
    v0 = E.mul(d, M, g[0])
    s0 = E.sub(d, v0, E.mul(d, E.k(4.0, d), E.intr("floor", d, E.mul(d, v0, E.k(0.25, d)))))
    s01 = E.add(d, s0, E.mul(d, M, g[1]))                 # exact: 53 bits from 2^2 down to 2^-50
    kf = E.intr("rint", d, s01)
    tq = E.fma(d, M, g[2], E.sub(d, s01, kf))             # quarter turns in [-1/2, 1/2] (+ a hair)
    r = E.mul(d, tq, E.k(math.pi / 2, d))
    r2 = E.mul(d, r, r)
    sin_r = E.fma(d, E.mul(d, r, r2), E.poly(d, r2, [(-1) ** n / math.factorial(2 * n + 1)
                                                      for n in range(6, 0, -1)]), r)
    cos_r = E.poly(d, r2, [(-1) ** n / math.factorial(2 * n) for n in range(7, -1, -1)])
    q = fb.assign(f"fptosi double {kf} to i32")
    if is_cos:
        q = fb.assign(f"add i32 {q}, 1")
    odd = fb.assign(f"icmp ne i32 {fb.assign(f'and i32 {q}, 1')}, 0")
    y = E.sel(odd, d, cos_r, sin_r)
    flip = fb.assign(f"and i32 {q}, 2")
    if not is_cos:
        flip = fb.assign(f"xor i32 {flip}, {fb.assign(f'lshr i32 {bits}, 30')}")   # sign bit -> bit 1
        flip = fb.assign(f"and i32 {flip}, 2")
    neg = fb.assign(f"icmp ne i32 {flip}, 0")
    y = E.sel(neg, d, fb.assign(f"fneg double {y}"), y)
    y = fb.assign(f"fptrunc double {y} to float")
    not_finite = E.cmp("ueq", F32, E.intr("fabs", F32, x), E.k(math.inf, F32))
    return E.sel(not_finite, F32, E.k(math.nan, F32), y)


# ---- pow (float32, computed in double) --------------------------------------------------------
def _pow_f32(E: _Emitter, x: str, y: str) -> str:
    """|x|^y = exp(y log|x|) in double (error far below a float ulp), then C99's special cases:
    finite x < 0 needs an integer y (sign from its parity), y = 0 or x = 1 give 1, |x| = 1 with y = +-inf gives 1."""
    fb, d, f = E.fb, F64, F32
    xd = fb.assign(f"fpext float {x} to double")
    yd = fb.assign(f"fpext float {y} to double")
    ax = E.intr("fabs", d, xd)
    mag = exp(E, d, E.mul(d, yd, log(E, d, ax)))
    y_int = E.cmp("oeq", d, E.intr("rint", d, yd), yd)
    half = E.mul(d, yd, E.k(0.5, d))
    y_odd = fb.assign(f"and i1 {y_int}, {E.cmp('une', d, E.intr('rint', d, half), half)}")
    x_neg = fb.assign(f"icmp slt i32 {fb.assign(f'bitcast float {x} to i32')}, 0")   # -0 included
    signed = E.sel(fb.assign(f"and i1 {x_neg}, {y_odd}"), d, fb.assign(f"fneg double {mag}"), mag)
    finite_neg = E.cmp("ogt", d, xd, E.k(-math.inf, d))    # (-inf)^y is +inf or +0 for any non-odd y
    x_neg_finite = fb.assign(f"and i1 {E.cmp('olt', d, xd, E.k(0.0, d))}, {finite_neg}")
    bad = fb.assign(f"and i1 {x_neg_finite}, {fb.assign(f'xor i1 {y_int}, true')}")
    out = E.sel(bad, d, E.k(math.nan, d), signed)
    one = E.k(1.0, d)
    x_one = E.cmp("oeq", d, xd, one)
    ax_one = E.cmp("oeq", d, ax, one)
    y_inf = E.cmp("oeq", d, E.intr("fabs", d, yd), E.k(math.inf, d))
    unit = fb.assign(f"or i1 {x_one}, {fb.assign(f'and i1 {ax_one}, {y_inf}')}")
    out = E.sel(unit, d, one, out)
    out = E.sel(E.cmp("oeq", d, yd, E.k(0.0, d)), d, one, out)
    return fb.assign(f"fptrunc double {out} to float")


# ---- erf (float32, computed in double) --------------------------------------------------------
def _erf_f32(E: _Emitter, x: str) -> str:
    """|x| < 1: the Maclaurin series of erf(x)/x in x^2 (13 terms); 1 <= |x| <= 4:
    1 - exp(-x^2) P(x) (fitted); beyond 4 the float result is 1. Sign copied."""
    fb, d = E.fb, F64
    xd = fb.assign(f"fpext float {x} to double")
    a = E.intr("minnum", d, E.intr("fabs", d, xd), E.k(4.0, d))
    z = E.mul(d, a, a)
    series = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(13, -1, -1)]
    small = E.mul(d, a, E.poly(d, z, series))
    u = E.fma(d, a, E.k(2 / 3, d), E.k(-5 / 3, d))
    large = E.sub(d, E.k(1.0, d), E.mul(d, exp(E, d, fb.assign(f"fneg double {z}")), E.poly(d, u, _ERFC_P)))
    y = E.sel(E.cmp("olt", d, a, E.k(1.0, d)), d, small, large)
    y = fb.assign(f"fptrunc double {E.intr('copysign', d, y, xd)} to float")
    return _nan_through(E, F32, x, y)


def _libm(E: _Emitter, t: str, name: str, args: list[str]) -> str:
    E.declarations.add(f"declare {t} @{name}({', '.join([t] * len(args))})")
    return E.fb.assign(f"call {t} @{name}({', '.join(f'{t} {a}' for a in args)})")


def lower(low, prim: str, dtype: DType, args: list[str]) -> str | None:
    """Inline vector code for `prim` over `dtype`, or None to keep the caller's default lowering."""
    if dtype.name not in ("float32", "float64"):
        return None
    t = F32 if dtype.name == "float32" else F64
    E = _Emitter(low.fb, low.declarations)
    if prim == "exp" and t == F64:
        return exp(E, t, args[0])
    if prim == "expm1":
        return expm1(E, t, args[0])
    if prim == "tanh":
        return tanh(E, t, args[0])
    if prim == "log":
        return log(E, t, args[0])
    if prim in ("sin", "cos") and t == F32:
        return _sin_cos_f32(E, args[0], prim == "cos")
    if prim == "pow" and t == F32:
        return _pow_f32(E, args[0], args[1])
    if prim == "erf":
        return _erf_f32(E, args[0]) if t == F32 else _libm(E, t, "erf", args)
    return None
