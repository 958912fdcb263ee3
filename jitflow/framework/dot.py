"""`tf.graph_to_dot(graph=None)`: a Graph as Graphviz DOT text.

One node per op (label: op name and type), a solid edge per data input
(labelled `:i` when it is output i > 0 of its op), a dashed edge per control
input, and each name scope as a nested `subgraph cluster_...` block. An op
whose name is also a scope (a variable `theta` with `theta/read`) is drawn
inside that scope's cluster, as TensorBoard does.

Render with: `dot -Tsvg graph.dot -o graph.svg`.
"""
from __future__ import annotations

import re

from .graph import get_default_graph


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Scope:
    __slots__ = ("path", "children", "ops")

    def __init__(self, path):
        self.path = path
        self.children: dict[str, _Scope] = {}
        self.ops = []


def graph_to_dot(graph=None, name: str = "G") -> str:
    graph = graph or get_default_graph()
    ops = graph.get_operations()
    scope_paths = set()               # every name scope that holds an op, at any depth
    for op in ops:
        parts = op.name.split("/")
        scope_paths.update("/".join(parts[:i]) for i in range(1, len(parts)))
    root = _Scope("")
    for op in ops:
        # the deepest scope holding the op: its parent path, or itself if other ops live under its name
        parts = op.name.split("/")
        depth = len(parts) if op.name in scope_paths else len(parts) - 1
        scope = root
        for i in range(depth):
            key = parts[i]
            if key not in scope.children:
                scope.children[key] = _Scope("/".join(parts[:i + 1]))
            scope = scope.children[key]
        scope.ops.append(op)

    lines = [f"digraph {_quote(name)} {{", "  compound=true;", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    used_ids: set[str] = set()

    def cluster_id(path):
        base = "cluster_" + re.sub(r"[^A-Za-z0-9_]", "_", path)
        ident, n = base, 1
        while ident in used_ids:
            ident, n = f"{base}_{n}", n + 1
        used_ids.add(ident)
        return ident

    def emit(top):
        # pre-order walk with an explicit stack (deeply nested scopes need no recursion): per child,
        # its header, its contents, then its closing brace
        stack = [("scope", top, 1)]
        while stack:
            kind, item, indent = stack.pop()
            pad = "  " * indent
            if kind == "close":
                lines.append(f"{pad}}}")
            elif kind == "open":
                lines.append(f"{pad}subgraph {cluster_id(item.path)} {{")
                lines.append(f"{pad}  label={_quote(item.path)};")
                lines.append(f'{pad}  style="rounded"; color="#888888";')
            else:
                for op in item.ops:
                    label = _quote(op.name)[:-1] + "\\n" + _quote(op.type)[1:]       # "name\ntype"
                    lines.append(f"{pad}{_quote(op.name)} [label={label}];")
                for key in sorted(item.children, reverse=True):
                    child = item.children[key]
                    stack += [("close", child, indent), ("scope", child, indent + 1), ("open", child, indent)]

    emit(root)
    for op in ops:
        for t in op.inputs:
            attrs = f" [label={_quote(':' + str(t.value_index))}]" if t.value_index else ""
            lines.append(f"  {_quote(t.op.name)} -> {_quote(op.name)}{attrs};")
        for c in op.control_inputs:
            lines.append(f"  {_quote(c.name)} -> {_quote(op.name)} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"
