"""Reads the IR text form written by `printer.py` back into Functions and Modules.

This module owns the hand-written tokenizer (`tokenize`) and the
recursive-descent parser.  `print(parse(print(fn))) == print(fn)` for
every attribute kind the printer supports.  Errors raise `IRParseError` naming
the line and column and what was expected there.  Op names are checked against
`known_ops`, a container of op names passed in by the caller; when none is passed, the
table `jitflow.ops` registered with `set_default_op_table` (this package imports nothing
of the project).
"""
from __future__ import annotations

import ast
import base64
import binascii
import re
import warnings
from typing import NamedTuple

import numpy as np

from .core import Function, Module, Node, SourceLoc, Value
from .symdim import parse as parse_dim
from .types import EFFECT, TensorType, VarType, dtype_from_short, num_elements

_PUNCT = set("()[]{}<>,:=?-*+")   # * and +: symbolic dims (784*s0+16)
_WORD_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DIGITS = set("0123456789")
_NUMBER_CHARS = (_WORD_CHARS - {"_"}) | {"."}     # a malformed number is one token
_SIGILS = {"%": "NAME", "@": "SYMBOL", "!": "BANG"}
_SPECIAL_TOKENS = {"EOF": "end of input", "NEWLINE": "end of line", "STRING": "a string"}


class IRParseError(ValueError):
    """Malformed IR text; `line` and `col` are 1-based."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(f"line {line}, col {col}: {message}")
        self.line, self.col, self.reason = line, col, message


class Token(NamedTuple):
    kind: str    # IDENT NAME SYMBOL BANG INT FLOAT STRING RAW PUNCT ARROW COMMENT NEWLINE EOF
    text: str    # NAME/SYMBOL/BANG: without the sigil; STRING: the unescaped value
    line: int
    col: int

    def describe(self) -> str:
        if self.kind in _SPECIAL_TOKENS:
            return _SPECIAL_TOKENS[self.kind]
        sigil = next((s for s, kind in _SIGILS.items() if kind == self.kind), "")
        return f"'{sigil}{self.text}'"


def tokenize(text: str) -> list[Token]:
    """The whole text as tokens, ending with EOF.  The payload of `blob<T: ...>` and
    `sha256<T: ...>` (base64 / hex) is one RAW token."""
    tokens: list[Token] = []
    pos, line, line_start, raw_after_colon, raw_next = 0, 1, 0, False, False

    def fail(message, at):
        raise IRParseError(message, line, at - line_start + 1)

    def scan(at, chars):
        while at < len(text) and text[at] in chars:
            at += 1
        return at

    while True:
        pos = scan(pos, " \t\r")
        start, col = pos, pos - line_start + 1
        ch, nxt = text[pos:pos + 1], text[pos + 1:pos + 2]
        if not ch:
            tokens.append(Token("EOF", "", line, col))
            return tokens
        if raw_next:
            pos = start
            while pos < len(text) and text[pos] not in ">\n":
                pos += 1
            kind, value, raw_next = "RAW", text[start:pos].rstrip(), False
        elif ch == "\n":
            kind, value, pos = "NEWLINE", ch, pos + 1
        elif ch == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
            kind, value = "COMMENT", text[start + 1:pos]
        elif ch == '"' or (ch == "@" and nxt == '"'):
            pos += ch == "@"
            kind, value, pos = ("SYMBOL" if ch == "@" else "STRING"), *_scan_string(text, pos, fail)
        elif ch in _DIGITS or (ch == "-" and nxt in _DIGITS):
            pos = start + 1
            while pos < len(text) and (text[pos] in _NUMBER_CHARS or
                                       (text[pos] in "+-" and text[pos - 1] in "eE")):
                pos += 1
            value = text[start:pos]
            kind = "FLOAT" if any(c in value for c in ".eE") else "INT"
            try:
                float(value) if kind == "FLOAT" else int(value, 10)
            except ValueError:
                fail(f"malformed number '{value}'", start)
        elif ch == "-" and nxt == ">":
            kind, value, pos = "ARROW", "->", pos + 2
        elif ch in _PUNCT:
            kind, value, pos = "PUNCT", ch, pos + 1
            raw_next, raw_after_colon = ch == ":" and raw_after_colon, raw_after_colon and ch != ":"
        elif ch in _SIGILS:
            pos = scan(pos + 1, _WORD_CHARS)
            kind, value = _SIGILS[ch], text[start + 1:pos]
            if not value:
                fail(f"expected a name after '{ch}'", start + 1)
        elif ch in _WORD_CHARS:
            pos = scan(pos, _WORD_CHARS)
            kind, value = "IDENT", text[start:pos]
            raw_after_colon |= value in ("blob", "sha256") and text.startswith("<", pos)
        else:
            fail(f"unexpected character {ch!r}", start)
        tokens.append(Token(kind, value, line, col))
        if kind == "NEWLINE":
            line, line_start = line + 1, pos


def _scan_string(text: str, pos: int, fail) -> tuple[str, int]:
    """The string literal starting at text[pos] == '"': (value, position after it)."""
    end = pos + 1
    while end < len(text) and text[end] not in '"\n':
        end += 2 if text[end] == "\\" and text[end + 1:end + 2] not in ("\n", "") else 1
    if end >= len(text) or text[end] != '"':
        fail("unterminated string", pos)
    literal = text[pos:end + 1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value = ast.literal_eval(literal)     # a lone "..." literal: nothing but a str can come back
    except (SyntaxError, ValueError, Warning):
        fail("malformed escape in string", pos)
    return value, end + 1


_default_op_table: list = []      # [the registry's table], set by jitflow.ops.registry


def set_default_op_table(table) -> None:
    """The op names a parse checks against when the caller passes no `known_ops` (the op registry
    hands its table over here when it is imported)."""
    _default_op_table[:] = [table]


def _default_known_ops():
    if not _default_op_table:
        raise TypeError("parsing IR needs `known_ops` (a container of op names): none was passed and no op "
                        "table is registered (import jitflow.ops registers the op registry)")
    return _default_op_table[0]


class _Parser:
    def __init__(self, text: str, known_ops):
        self.tokens, self.i = tokenize(text), 0
        self.known_ops = _default_known_ops() if known_ops is None else known_ops
        self.values: dict[str, Value] = {}

    # ---- token helpers -------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def error(self, token: Token, message: str):
        raise IRParseError(message, token.line, token.col)

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token.kind == kind and (text is None or token.text == text)

    def accept(self, kind: str, text: str | None = None) -> bool:
        found = self.at(kind, text)
        if found:
            self.next()
        return found

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        if not self.at(kind, text):
            self.error(self.peek(), f"{what}, got {self.peek().describe()}")
        return self.next()

    def punct(self, ch: str, what: str) -> Token:
        return self.expect("PUNCT", ch, f"expected '{ch}' {what}")

    def skip_blank_lines(self):
        while self.accept("NEWLINE") or self.accept("COMMENT"):
            pass

    def end_of_line(self, what: str) -> str | None:
        comment = self.next().text if self.at("COMMENT") else None
        if not (self.accept("NEWLINE") or self.at("EOF")):
            self.error(self.peek(), f"expected end of line {what}, got {self.peek().describe()}")
        return comment

    def items(self, item, close: str | None = None, what: str = "") -> list:
        """`item (',' item)*`; with `close`, possibly empty and consuming the closing punctuation."""
        if close and self.accept("PUNCT", close):
            return []
        items = [item()]
        while self.accept("PUNCT", ","):
            items.append(item())
        if close and not self.accept("PUNCT", close):
            self.error(self.peek(), f"expected ',' or '{close}' {what}, got {self.peek().describe()}")
        return items

    # ---- functions and values ------------------------------------------------------------
    def module(self) -> Module:
        functions = []
        self.skip_blank_lines()
        while not self.at("EOF"):
            functions.append(self.function())
            self.skip_blank_lines()
        return Module(functions)

    def function(self) -> Function:
        self.expect("IDENT", "func", "expected 'func'")
        name = self.expect("SYMBOL", None, "expected a function name '@name'").text
        self.punct("(", "after the function name")
        self.values = {}
        params = self.items(self.param, ")", "in the parameter list")
        self.expect("ARROW", None, "expected '->' after the parameters")
        self.punct("(", "before the result types")
        result_types = self.items(self.type, ")", "in the result types")
        self.punct("{", "to open the function body")
        self.end_of_line("after '{'")
        nodes = []
        while True:
            self.skip_blank_lines()
            ret = self.peek()
            if self.accept("IDENT", "return"):
                break
            if ret.kind in ("EOF", "PUNCT"):
                self.error(ret, f"expected a node or 'return', got {ret.describe()}")
            nodes.append(self.node())
        results = self.items(self.use) if self.at("NAME") else []
        if [v.type for v in results] != result_types:
            self.error(ret, "return types (" + ", ".join(str(v.type) for v in results) +
                       ") differ from the signature's (" + ", ".join(map(str, result_types)) + ")")
        self.end_of_line("after the returned values")
        self.skip_blank_lines()
        self.punct("}", "to close the function body")
        self.end_of_line("after '}'")
        return Function(name, params, nodes, results)

    def param(self) -> Value:
        token = self.expect("NAME", None, "expected a parameter name '%name'")
        self.punct(":", "after the parameter name")
        value = Value(self.type(), name=token.text)
        self.define(token, value)
        return value

    def define(self, token: Token, value: Value):
        if token.text in self.values:
            self.error(token, f"value %{token.text} is defined twice")
        self.values[token.text] = value

    def use(self) -> Value:
        token = self.expect("NAME", None, "expected a value '%name'")
        if token.text not in self.values:
            self.error(token, f"undefined value %{token.text}")
        return self.values[token.text]

    def node(self) -> Node:
        first = self.peek()
        names = []
        if first.kind == "NAME":
            names = self.items(lambda: self.expect("NAME", None, "expected a result name '%name'"))
            self.punct("=", "after the result names")
        op = self.expect("IDENT", None, "expected an op name")
        if op.text not in self.known_ops:
            self.error(op, f"unknown op '{op.text}'")
        operands = self.items(self.use) if self.at("NAME") else []
        attrs = self.attrs() if self.at("PUNCT", "{") else {}
        types = []
        if names:
            self.punct(":", "after attributes" if attrs else "after operands")
            types = self.items(self.type)
            if len(types) != len(names):
                self.error(first, f"{len(names)} result names but {len(types)} result types")
        elif self.at("PUNCT", ":"):
            self.error(self.peek(), "a node without result names cannot have result types")
        regions = ()
        if self.accept("IDENT", "regions"):      # structured control flow (ir/regions.py)
            self.punct("{", "after 'regions'")
            loc, scope = _parse_location(self.end_of_line("after 'regions {'"))
            regions = self.region_functions()
        else:
            loc, scope = _parse_location(self.end_of_line("after the node"))
        node = Node(op.text, operands, attrs, types, loc=loc, scope=scope)
        node.regions = regions
        for token, value in zip(names, node.results):
            self.define(token, value)
        return node

    def region_functions(self) -> tuple:
        """The nested `func` blocks of a region op, up to its closing '}'; each has its own names."""
        outer, regions = self.values, []
        self.skip_blank_lines()
        while self.at("IDENT", "func"):
            regions.append(self.function())
            self.skip_blank_lines()
        self.values = outer
        self.punct("}", "to close the regions")
        self.end_of_line("after the regions' '}'")
        return tuple(regions)

    # ---- types -----------------------------------------------------------------------
    def type(self):
        if self.accept("BANG", "effect"):
            return EFFECT
        if self.accept("BANG", "var"):
            self.punct("<", "after '!var'")
            tensor = self.tensor_type()
            self.punct(">", "to close '!var<'")
            return VarType(tensor.dtype, tensor.shape)
        if not self.at("IDENT"):
            self.error(self.peek(), f"expected a type, got {self.peek().describe()}")
        return self.tensor_type()

    def dtype(self):
        token = self.expect("IDENT", None, "expected a dtype such as 'f32'")
        try:
            return dtype_from_short(token.text)
        except KeyError:
            self.error(token, f"unknown dtype '{token.text}' (expected f32, f64, i32, i64 or i1)")

    def tensor_type(self, known_dims: bool = False) -> TensorType:
        dtype = self.dtype()
        self.punct("[", "after the dtype")
        return TensorType(dtype, tuple(self.items(lambda: self.dim(known_dims), "]", "in the shape")))

    def dim(self, known: bool):
        token = self.next()
        if token.kind == "PUNCT" and token.text == "?" and not known:
            return None
        if token.kind == "INT" and not token.text.startswith("-") and not self._dim_continues():
            return int(token.text)
        if token.kind in ("INT", "IDENT") and (token.kind == "INT" or re.fullmatch(r"s\d+", token.text)):
            return self.symbolic_dim(token)
        self.error(token, f"expected a dimension ({'a size' if known else 'a size or ?'}), "
                          f"got {token.describe()}")

    def _dim_continues(self) -> bool:
        nxt = self.peek()
        return (nxt.kind == "PUNCT" and nxt.text in "*+-") or (nxt.kind == "INT" and nxt.text.startswith("-"))

    def symbolic_dim(self, first):
        """A symbolic dim (jitflow/ir/symdim.py): tokens up to the next ',' or ']'."""
        text = first.text
        while self._dim_continues() or (text[-1] in "*+-" and self.peek().kind in ("INT", "IDENT")):
            text += self.next().text
        try:
            return parse_dim(text)
        except ValueError:
            self.error(first, f"expected a dimension, got '{text}'")

    # ---- attributes ------------------------------------------------------------------
    def attrs(self) -> dict:
        attrs: dict = {}

        def item():
            token = self.next()
            if token.kind not in ("IDENT", "STRING"):
                self.error(token, f"expected an attribute name, got {token.describe()}")
            if token.text in attrs:
                self.error(token, f"attribute '{token.text}' is given twice")
            self.punct("=", "after the attribute name")
            attrs[token.text] = self.attr_value()
        self.punct("{", "to open the attributes")
        self.items(item, "}", "in the attributes")
        return attrs

    def attr_value(self):
        token = self.next()
        kind, text = token.kind, token.text
        words = {"true": True, "false": False, "none": None, "inf": float("inf"), "nan": float("nan")}
        if kind in ("INT", "FLOAT", "STRING"):
            return int(text) if kind == "INT" else float(text) if kind == "FLOAT" else text
        if kind == "PUNCT" and text == "-":
            self.expect("IDENT", "inf", "expected 'inf' or a number after '-'")
            return float("-inf")
        if kind == "PUNCT" and text == "[":
            return tuple(self.items(self.attr_value, "]", "in the list"))
        if kind == "IDENT" and text in words:
            return words[text]
        if kind == "IDENT" and text == "sym" and self.peek().kind == "PUNCT" and self.peek().text == ":":
            self.punct(":", "after 'sym'")
            dim = self.next()
            try:
                return parse_dim(dim.text)
            except ValueError:
                self.error(dim, f"expected a symbolic dimension, got {dim.describe()}")
        if kind == "IDENT" and text == "dtype":
            self.punct(":", "after 'dtype'")
            return self.dtype()
        if kind == "IDENT" and text in ("dense", "blob", "sha256"):
            return self.array(token)
        self.error(token, f"expected an attribute value, got {token.describe()}")

    def array(self, token: Token) -> np.ndarray:
        self.punct("<", f"after '{token.text}'")
        ttype = self.tensor_type(known_dims=True)
        self.punct(":", "after the array type")
        dtype, size = ttype.dtype, num_elements(ttype.shape)
        if token.text == "sha256":
            self.error(token, "sha256<...> is a canonical-form digest; the array cannot be parsed back")
        if token.text == "dense":
            self.punct("[", "to open the array elements")
            values = self.items(lambda: self.element(dtype), "]", "in the array elements")
            if len(values) != size:
                self.error(token, f"array {ttype} needs {size} elements, got {len(values)}")
            with np.errstate(over="ignore"):
                array = np.array(values, dtype=dtype.np).reshape(ttype.shape)
        else:
            raw_token = self.expect("RAW", None, "expected base64 data")
            try:
                raw = base64.b64decode(raw_token.text, validate=True)
            except (binascii.Error, ValueError):
                self.error(raw_token, "expected base64 data in blob<...>")
            if len(raw) != size * dtype.itemsize:
                self.error(raw_token, f"array {ttype} needs {size * dtype.itemsize} bytes, got {len(raw)}")
            array = np.frombuffer(raw, dtype=dtype.np.newbyteorder("<")).astype(dtype.np).reshape(ttype.shape)
        self.punct(">", "to close the array")
        return array

    def element(self, dtype):
        token = self.peek()
        value = self.attr_value()
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (isinstance(value, bool) if dtype.is_bool else
                number and isinstance(value, int) if dtype.is_integer else number):
            self.error(token, f"expected a {dtype.name} element, got {token.describe()}")
        if dtype.is_integer and not np.iinfo(dtype.np).min <= value <= np.iinfo(dtype.np).max:
            self.error(token, f"{value} is out of range for {dtype.name}")
        return value


def _parse_location(comment: str | None) -> tuple[SourceLoc | None, str]:
    """`file.py:12 [scope]` / `file.py:12` / `[scope]` -> (loc, scope); anything else is ignored."""
    body = (comment or "").rstrip()
    body = body[1:] if body.startswith(" ") else body     # the printer writes '# ' + text
    if body.startswith("[") and body.endswith("]"):
        return None, body[1:-1]
    for colon in (i for i, ch in enumerate(body) if ch == ":"):
        end = colon + 1
        while end < len(body) and body[end].isdigit():
            end += 1
        rest = body[end:]
        if end > colon + 1 and (rest == "" or (rest.startswith(" [") and rest.endswith("]"))):
            return SourceLoc(body[:colon], int(body[colon + 1:end])), rest[2:-1]
    return None, ""


def _require_text(text):
    if not isinstance(text, str):
        raise TypeError(f"IR text must be a str, got {type(text).__name__}"
                        + (" (decode bytes first)" if isinstance(text, (bytes, bytearray)) else ""))


def parse_module(text: str, known_ops=None) -> Module:
    """Parses zero or more functions.  `known_ops`: a container of op names (default: the table the op
    registry registered, `set_default_op_table`)."""
    _require_text(text)
    return _Parser(text, known_ops).module()


def parse_function(text: str, known_ops=None) -> Function:
    """Parses exactly one function."""
    _require_text(text)
    parser = _Parser(text, known_ops)
    parser.skip_blank_lines()
    fn = parser.function()
    parser.skip_blank_lines()
    parser.expect("EOF", None, "expected end of input after the function")
    return fn
