"""The IR's text form: printing functions and modules, one node per line.

This module owns the textual syntax (the parser in `parser.py` reads back exactly
what is printed here), the naming of SSA values (`ValueNamer`), and the spelling
of attribute values (`format_attr`).  Example:

    func @f(%x: f32[?,3], %theta: !var<f32[3,1]>, %e0: !effect) -> (f32[], !effect) {
      %0, %e1 = read_var %theta, %e0 : f32[3,1], !effect  # model.py:12 [linear]
      %1 = matmul %x, %0 {transpose_a=false, transpose_b=false} : f32[?,1]  # model.py:13
      %2 = reduce_mean %1 {axes=[0,1], keepdims=false} : f32[]
      return %2, %e1
    }

Canonical mode (a cache key) renumbers every value (`%a0..` for parameters,
`%0..` for node results), drops locations and scopes and prints arrays of more
than `DENSE_LIMIT` elements as a `sha256<...>` digest; `canonical=LargeArrays()` (array_digest.py)
prints a large constant as `array<...: #i>` and collects it instead (the kernel cache's key).
"""
from __future__ import annotations

import base64
import os
from collections import Counter

import numpy as np

from . import array_digest
from .core import Function, Module, Node, Value
from .regions import format_region_node
from .symdim import SymDim
from .types import DType, EffectType, as_dtype, shape_str

DENSE_LIMIT = 16        # arrays with more elements print as blob<...> / sha256<...>
INDENT = "  "

_STRING_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def is_plain_identifier(text) -> bool:
    """An ASCII identifier: [A-Za-z_][A-Za-z0-9_]*."""
    return isinstance(text, str) and text.isascii() and text.isidentifier()


class ValueNamer:
    """Assigns every value of a function its printed name (without the '%').

    Parameters keep `Value.name` when it is set, unique among the parameters and
    a plain identifier, else get `argN`.  Tensor results are numbered `0, 1, ...`
    in node order and effect results `eN` (skipping names already taken).  In
    canonical mode parameters are `a0, a1, ...` and all results `0, 1, ...`.
    Values not defined in the function are named lazily (`undef`, `undef_1`...).
    """

    def __init__(self, fn: Function, canonical: bool = False):
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set()
        if canonical:
            for i, param in enumerate(fn.params):
                self._assign(param, f"a{i}")
            counter = 0
            for node in fn.nodes:
                for result in node.results:
                    if self._assign(result, str(counter)):
                        counter += 1
            return
        counts = Counter(p.name for p in fn.params)
        for param in fn.params:
            if is_plain_identifier(param.name) and counts[param.name] == 1:
                self._assign(param, param.name)
        for i, param in enumerate(fn.params):
            if param not in self.names:
                self._assign(param, self.fresh(f"arg{i}"))
        tensor_count = effect_count = 0
        for node in fn.nodes:
            for result in node.results:
                if result in self.names:
                    continue
                if isinstance(result.type, EffectType):
                    while f"e{effect_count}" in self.taken:
                        effect_count += 1
                    self._assign(result, f"e{effect_count}")
                else:
                    self._assign(result, str(tensor_count))
                    tensor_count += 1

    def _assign(self, value: Value, name: str) -> bool:
        if value in self.names:
            return False
        self.names[value] = name
        self.taken.add(name)
        return True

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        return name

    def __call__(self, value: Value) -> str:
        """The printed name, with its '%'."""
        if value not in self.names:
            self._assign(value, self.fresh("undef"))
        return "%" + self.names[value]


# ---- attribute values -------------------------------------------------------------
def quote_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def format_float(value: float) -> str:
    """Shortest round-trip form: repr, which spells inf/-inf/nan bare."""
    return repr(float(value))


def _format_element(x, dtype: DType) -> str:
    if dtype.is_bool:
        return "true" if x else "false"
    if dtype.is_integer:
        return str(int(x))
    if dtype.name == "float32":
        short = float(str(np.float32(x)))     # shortest digits that identify the float32
        if np.isnan(x) or np.float32(short).tobytes() == np.float32(x).tobytes():
            return format_float(short)
    return format_float(float(x))


def format_array(array: np.ndarray, canonical: bool = False) -> str:
    try:
        dtype = as_dtype(array.dtype)
    except TypeError as exc:
        raise TypeError(f"cannot print an array attribute: {exc}") from None
    head = f"{dtype.short}{shape_str(array.shape)}"
    if array.size <= DENSE_LIMIT:
        elements = ", ".join(_format_element(x, dtype) for x in array.reshape(-1))
        return f"dense<{head}: [{elements}]>"
    if isinstance(canonical, array_digest.LargeArrays):     # set aside, not hashed (array_digest.py)
        canonical.append(array)
        return f"array<{head}: #{len(canonical) - 1}>"
    if canonical:       # the digest of the same bytes, hashed in place (no copy of a large constant)
        return f"sha256<{head}: {array_digest.sha256_of(array, dtype.np.newbyteorder('<'))}>"
    contiguous = np.ascontiguousarray(array, dtype=dtype.np.newbyteorder("<"))
    return f"blob<{head}: {base64.b64encode(contiguous.tobytes()).decode('ascii')}>"


def format_attr(value, canonical: bool = False) -> str:
    """One attribute value; lists and tuples both print as `[a,b]`."""
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, DType):
        return f"dtype:{value.short}"
    if isinstance(value, np.dtype):
        return f"dtype:{as_dtype(value).short}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, SymDim):
        return f'sym:"{value.text}"'
    if isinstance(value, (float, np.floating)):
        return format_float(float(value))
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, np.ndarray):
        return format_array(value, canonical)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_attr(v, canonical) for v in value) + "]"
    raise TypeError(f"cannot print an attribute value of type {type(value).__name__}: {value!r}")


def format_attrs(attrs: dict, canonical: bool = False) -> str:
    """`{k=v, ...}` sorted by key, or '' when there are none."""
    if not attrs:
        return ""
    items = []
    for key in sorted(attrs):
        name = key if is_plain_identifier(key) else quote_string(str(key))
        items.append(f"{name}={format_attr(attrs[key], canonical)}")
    return "{" + ", ".join(items) + "}"


# ---- nodes and functions ------------------------------------------------------------
def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def location_comment(node: Node) -> str:
    """`# file.py:12 [scope]`, `# [scope]` when there is a scope but no location, or ''."""
    scope = f"[{_one_line(node.scope)}]" if node.scope else ""
    if node.loc is not None:
        where = f"{_one_line(os.path.basename(node.loc.file))}:{node.loc.line}"
        return f"# {where} {scope}" if scope else f"# {where}"
    return f"# {scope}" if scope else ""


def format_node(node: Node, name, locations: bool = True, canonical: bool = False) -> str:
    """One node line, without indentation; `name` maps a Value to its '%name'."""
    text = ""
    if node.results:
        text = ", ".join(name(r) for r in node.results) + " = "
    text += node.op
    if node.operands:
        text += " " + ", ".join(name(v) for v in node.operands)
    if isinstance(canonical, array_digest.LargeArrays) and node.op != "const":
        attrs = format_attrs(node.attrs, True)      # only a constant's values are set aside (array_digest.py)
    else:
        attrs = format_attrs(node.attrs, canonical)
    if attrs:
        text += " " + attrs
    if node.results:
        text += " : " + ", ".join(str(r.type) for r in node.results)
    if locations and not canonical:
        comment = location_comment(node)
        if comment:
            text += "  " + comment
    return text


def format_function_name(name: str) -> str:
    return "@" + (name if is_plain_identifier(name) else quote_string(name))


def print_function(fn: Function, locations: bool = True, canonical: bool = False) -> str:
    """The text form of `fn`, ending with a newline."""
    name = ValueNamer(fn, canonical)
    params = ", ".join(f"{name(p)}: {p.type}" for p in fn.params)
    results = ", ".join(str(v.type) for v in fn.results)
    lines = [f"func {format_function_name(fn.name)}({params}) -> ({results}) {{"]
    for node in fn.nodes:
        if getattr(node, "regions", ()):     # structured control flow: nested blocks (ir/regions.py)
            comment = location_comment(node) if locations and not canonical else ""
            lines.extend(INDENT + line for line in format_region_node(
                node, format_node(node, name, False, canonical), comment, print_function, INDENT, locations,
                canonical))
            continue
        lines.append(INDENT + format_node(node, name, locations, canonical))
    ret = "return"
    if fn.results:
        ret += " " + ", ".join(name(v) for v in fn.results)
    lines.append(INDENT + ret)
    lines.append("}")
    return "\n".join(lines) + "\n"


def print_module(module: Module, locations: bool = True, canonical: bool = False) -> str:
    """All functions of `module`, separated by blank lines."""
    return "\n".join(print_function(fn, locations, canonical) for fn in module.functions)
