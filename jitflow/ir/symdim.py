"""Symbolic dimensions for shape-polymorphic compilation.

A `SymDim` is a polynomial with integer coefficients over symbols s0, s1, ... (in practice one
symbol: the batch size). A polymorphic executable serves only values >= 2 of every symbol (0 and 1
always take the concrete path), so a question about a SymDim has an answer when it holds for EVERY
value >= 2 (`s0 == 1` is False, `s0 > 1` is True, `2*s0 + 3 != 5` is True); anything whose answer
depends on the run-time value (`s0 == 5`, `s0 < 7`, `int(s0)`, inexact division) raises
`NeedsConcreteShape`, and the caller compiles concretely instead.

Arithmetic with ints and other SymDims is exact; a result without symbols is a plain int, so a
SymDim always has at least one symbol. `str()` renders the LLVM value name that code generators
put in the text (`%"784*s0+16"`, defined by codegen/symdims.py); `.text` is the plain expression
(IR text), parsed back by `parse`.

Nothing here imports the rest of jitflow.
"""
from __future__ import annotations

import numbers
import re

MIN_VALUE = 2           # the smallest value a symbol takes in a polymorphic executable


class NeedsConcreteShape(Exception):
    """A decision about a symbolic dimension that only its run-time value answers."""


def _mono_key(mono: tuple):
    return (-len(mono), mono)


class SymDim:
    """sum(coeff * prod(symbols)) with int coefficients; immutable, structurally hashed."""

    __slots__ = ("terms", "_hash")

    def __init__(self, terms):
        # terms: {monomial (sorted tuple of symbol indexes, () for the constant): coefficient}
        items = sorted(((m, c) for m, c in dict(terms).items() if c), key=lambda e: _mono_key(e[0]))
        self.terms = tuple(items)
        self._hash = hash(("symdim", self.terms))

    # --- construction
    @staticmethod
    def symbol(index: int) -> "SymDim":
        return SymDim({(index,): 1})

    @staticmethod
    def _make(terms):
        """A SymDim, or the plain int when no symbol is left."""
        terms = {m: c for m, c in terms.items() if c}
        if all(m == () for m in terms):
            return terms.get((), 0)
        return SymDim(terms)

    @staticmethod
    def _terms_of(x) -> dict:
        if isinstance(x, SymDim):
            return dict(x.terms)
        if isinstance(x, bool):
            raise TypeError("a bool is not a dimension")
        return {(): int(x)} if x else {}

    # --- arithmetic
    def __add__(self, other):
        if not isinstance(other, (SymDim, numbers.Integral)):
            return NotImplemented
        terms = dict(self.terms)
        for m, c in SymDim._terms_of(other).items():
            terms[m] = terms.get(m, 0) + c
        return SymDim._make(terms)

    __radd__ = __add__

    def __neg__(self):
        return SymDim._make({m: -c for m, c in self.terms})

    def __pos__(self):
        return self

    def __sub__(self, other):
        if not isinstance(other, (SymDim, numbers.Integral)):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):
        if not isinstance(other, (SymDim, numbers.Integral)):
            return NotImplemented
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, (SymDim, numbers.Integral)):
            return NotImplemented
        terms: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in SymDim._terms_of(other).items():
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return SymDim._make(terms)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, SymDim):
            if other == self:
                return 1
            raise NeedsConcreteShape(f"{self.text} // {other.text}")
        if not isinstance(other, numbers.Integral):
            return NotImplemented
        other = int(other)
        if other == 1:
            return self
        if other == 0:
            raise ZeroDivisionError("integer division by zero")
        if any(c % other for _, c in self.terms):
            raise NeedsConcreteShape(f"{self.text} // {other} is not exact")
        return SymDim._make({m: c // other for m, c in self.terms})

    def __mod__(self, other):
        if not isinstance(other, numbers.Integral):
            raise NeedsConcreteShape(f"{self.text} % {other}")
        if other == 0:
            raise ZeroDivisionError("integer modulo by zero")
        if any(c % other for m, c in self.terms if m):
            raise NeedsConcreteShape(f"{self.text} % {other} depends on the value")
        return dict(self.terms).get((), 0) % other

    def __rfloordiv__(self, other):
        raise NeedsConcreteShape(f"{other} // {self.text}")

    def __rmod__(self, other):
        raise NeedsConcreteShape(f"{other} % {self.text}")

    def __truediv__(self, other):
        raise NeedsConcreteShape(f"{self.text} / {other}")

    def __rtruediv__(self, other):
        raise NeedsConcreteShape(f"{other} / {self.text}")

    def __pow__(self, other):
        if isinstance(other, int) and other >= 0:
            result = 1
            for _ in range(other):
                result = result * self
            return result
        raise NeedsConcreteShape(f"{self.text} ** {other}")

    # --- what needs the value
    def __int__(self):
        raise NeedsConcreteShape(f"the value of {self.text}")

    __index__ = __int__

    def __float__(self):
        raise NeedsConcreteShape(f"the value of {self.text}")

    def __bool__(self):
        if _sign(self) > 0:
            return True
        raise NeedsConcreteShape(f"whether {self.text} is zero")

    # --- comparisons: answered only when they hold for every value >= MIN_VALUE
    def __eq__(self, other):
        if isinstance(other, SymDim) and other.terms == self.terms:
            return True
        if not isinstance(other, (SymDim, numbers.Integral)) or isinstance(other, bool):
            return NotImplemented
        sign = _sign(self - other)
        if sign in (1, -1):
            return False
        raise NeedsConcreteShape(f"whether {self.text} == {_text(other)}")

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def _compare(self, other, op):
        if not isinstance(other, (SymDim, numbers.Integral)) or isinstance(other, bool):
            return NotImplemented
        diff = self - other
        sign = _sign(diff) if isinstance(diff, SymDim) else (diff > 0) - (diff < 0)
        answer = {"lt": {-1: True, 0: False, 1: False, 2: False},
                  "le": {-1: True, -2: True, 0: True, 1: False},
                  "gt": {1: True, 0: False, -1: False, -2: False},
                  "ge": {1: True, 2: True, 0: True, -1: False}}[op].get(sign)
        if answer is None:
            raise NeedsConcreteShape(f"whether {self.text} {op} {_text(other)}")
        return answer

    def __lt__(self, other): return self._compare(other, "lt")
    def __le__(self, other): return self._compare(other, "le")
    def __gt__(self, other): return self._compare(other, "gt")
    def __ge__(self, other): return self._compare(other, "ge")

    def __hash__(self):
        return self._hash

    # --- text
    @property
    def text(self) -> str:
        parts = []
        for mono, c in self.terms:
            factors = "*".join(f"s{i}" for i in mono)
            if not mono:
                body = str(abs(c))
            elif abs(c) == 1:
                body = factors
            else:
                body = f"{abs(c)}*{factors}"
            parts.append(("-" if c < 0 else ("+" if parts else "")) + body)
        return "".join(parts)

    def __str__(self):
        return f'%"{self.text}"'

    def __format__(self, spec):
        return str(self)

    def __repr__(self):
        return f"SymDim({self.text})"

    @property
    def symbols(self) -> set:
        return {i for mono, _ in self.terms for i in mono}

    def evaluate(self, values) -> int:
        """The value with symbol i = values[i]."""
        total = 0
        for mono, c in self.terms:
            term = c
            for i in mono:
                term *= values[i]
            total += term
        return total

    def __reduce__(self):
        return (SymDim, (dict(self.terms),))


def _text(x) -> str:
    return x.text if isinstance(x, SymDim) else str(x)


def _sign(p) -> int | None:
    """For every value >= MIN_VALUE of every symbol: 1 when p > 0, 2 when p >= 0, -1 when p < 0,
    -2 when p <= 0; 0 when p == 0 (an int 0); None when unknown. Decided by monotonicity: with all
    non-constant coefficients of one sign, p moves one way from its value at MIN_VALUE."""
    if not isinstance(p, SymDim):
        return (p > 0) - (p < 0)
    nonconst = [c for m, c in p.terms if m]
    low = p.evaluate({i: MIN_VALUE for i in p.symbols})
    if all(c > 0 for c in nonconst):
        return 1 if low > 0 else (2 if low == 0 else None)
    if all(c < 0 for c in nonconst):
        return -1 if low < 0 else (-2 if low == 0 else None)
    return None


def is_symbolic(x) -> bool:
    """True for a SymDim, or a shape (sequence) holding one."""
    if isinstance(x, SymDim):
        return True
    if isinstance(x, (tuple, list)):
        return any(isinstance(d, SymDim) for d in x)
    return False


def provably_le(a, b) -> bool:
    """a <= b for every value >= MIN_VALUE (False when unknown; never raises)."""
    diff = b - a
    return _sign(diff) in (0, 1, 2)


def evaluate(x, values) -> int:
    """An int or SymDim at the given symbol values."""
    return x.evaluate(values) if isinstance(x, SymDim) else x


def evaluate_shape(shape, values) -> tuple:
    return tuple(d.evaluate(values) if isinstance(d, SymDim) else d for d in shape)


def align_up(x, alignment: int):
    """x rounded up to a multiple of `alignment`; a SymDim by rounding every coefficient up
    (so the result is >= x and a multiple of `alignment` for every value)."""
    if isinstance(x, SymDim):
        return SymDim._make({m: -(-c // alignment) * alignment for m, c in x.terms})
    return (x + alignment - 1) // alignment * alignment


_TERM = re.compile(r"([+-]?)(\d+)?\*?((?:s\d+\*?)*)")


def parse(text: str):
    """A dimension's IR text (`784*s0+16`, `s0*s1`, `-s0+3`) back to a SymDim (or int)."""
    text = text.replace(" ", "")
    if not text or not re.fullmatch(r"[+-]?(\d+|(\d+\*)?s\d+(\*s\d+)*)([+-](\d+|(\d+\*)?s\d+(\*s\d+)*))*", text):
        raise ValueError(f"not a dimension: {text!r}")
    terms: dict = {}
    for part in re.findall(r"[+-]?[^+-]+", text):
        sign = -1 if part.startswith("-") else 1
        part = part.lstrip("+-")
        factors = part.split("*")
        coeff = sign
        mono = []
        for f in factors:
            if f.startswith("s"):
                mono.append(int(f[1:]))
            else:
                coeff *= int(f)
        key = tuple(sorted(mono))
        terms[key] = terms.get(key, 0) + coeff
    return SymDim._make(terms)
