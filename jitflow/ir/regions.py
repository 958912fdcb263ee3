"""Structured control flow in the IR: ops that own regions.

A region is a `Function` held in `Node.regions` (a tuple; empty for every other op). Regions are
isolated from above: everything a region reads comes in through its parameters, which mirror the
op's operands, so passes run on a region exactly as on a top-level function and can never CSE
or rewrite across a region boundary.

- `cond`: operands (pred: bool[], captures...); regions (then, else), each with one parameter per
  capture; both return the op's result types. Only the taken branch runs.
- `while`: operands (carried..., invariants...); the op has one result per carried value (so the
  number of carried values is `len(node.results)`); regions (cond, body), each with one parameter
  per operand; cond returns (bool[]), body returns the next carried values, whose types equal
  the carried operands' (shapes are constant across iterations). Attr `maximum_iterations`
  (an int, or -1 for none) bounds the trip count.

Text form (printer.py / parser.py): the node line ends with `regions {`, followed by the region
functions as nested `func` blocks and a closing `}`:

    %2 = while %0, %1 {maximum_iterations=-1} : f32[3] regions {  # f.py:3 [while]
      func @cond(%a0: f32[3], %a1: f32[3]) -> (bool[]) { ... }
      func @body(%a0: f32[3], %a1: f32[3]) -> (f32[3]) { ... }
    }

This module owns the helpers every pass and backend uses to walk regions iteratively.
"""
from __future__ import annotations

from .core import Function, Node
from .types import TensorType

REGION_OPS = ("cond", "while")
REGION_NAMES = {"cond": ("then", "else"), "while": ("cond", "body")}


def regions_of(node: Node) -> tuple:
    return getattr(node, "regions", ()) or ()


def has_regions(node: Node) -> bool:
    return bool(regions_of(node))


def nested_functions(fn: Function) -> list[Function]:
    """Every region function under `fn` (not `fn` itself), outermost first; an iterative walk."""
    found, stack = [], [fn]
    while stack:
        current = stack.pop()
        for node in current.nodes:
            for region in regions_of(node):
                found.append(region)
                stack.append(region)
    return found


def all_nodes(fn: Function):
    """Every node of `fn` and of its regions (iteratively, no recursion on depth)."""
    for f in [fn] + nested_functions(fn):
        yield from f.nodes


def num_carried(node: Node) -> int:
    return len(node.results)


# ---- verification ---------------------------------------------------------------------------
def _types(values) -> list:
    return [v.type for v in values]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b))


def region_problem(node: Node) -> str | None:
    """What is wrong with a region op's signature, or None."""
    regions = regions_of(node)
    names = REGION_NAMES.get(node.op)
    if names is None:
        return f"op {node.op} cannot own regions"
    if len(regions) != 2:
        return f"needs 2 regions ({', '.join(names)}), has {len(regions)}"
    results = _types(node.results)
    if node.op == "cond":
        pred = node.operands[0].type if node.operands else None
        if not isinstance(pred, TensorType) or pred.dtype.name != "bool" or tuple(pred.shape) != ():
            return f"the predicate must be bool[], got {pred}"
        captures = _types(node.operands[1:])
        for name, region in zip(names, regions):
            if not _same(_types(region.params), captures):
                return (f"region {name} takes ({', '.join(map(str, _types(region.params)))}) but the "
                        f"captured operands are ({', '.join(map(str, captures))})")
            if not _same(region.value_types(), results):
                return (f"region {name} returns ({', '.join(map(str, region.value_types()))}) but the "
                        f"op's results are ({', '.join(map(str, results))})")
        return None
    carried = _types(node.operands[:len(results)])
    operands = _types(node.operands)
    if not _same(carried, results):
        return "the carried operands' types differ from the results' types"
    for t in carried:
        if not isinstance(t, TensorType) or t.shape is None or None in t.shape:
            return f"carried value type {t} has no constant shape"
    for name, region in zip(names, regions):
        if not _same(_types(region.params), operands):
            return f"region {name}'s parameters differ from the op's operands"
    cond_types = regions[0].value_types()
    if len(cond_types) != 1 or cond_types[0].dtype.name != "bool" or tuple(cond_types[0].shape) != ():
        return f"region cond must return (bool[]), returns ({', '.join(map(str, cond_types))})"
    if not _same(regions[1].value_types(), carried):
        return (f"region body returns ({', '.join(map(str, regions[1].value_types()))}) but the carried "
                f"values are ({', '.join(map(str, carried))}); carried shapes must not change")
    if not isinstance(node.attrs.get("maximum_iterations"), int):
        return "attr maximum_iterations must be an int (-1: no bound)"
    return None


# ---- text form ------------------------------------------------------------------------------
def format_region_node(node: Node, head: str, comment: str, print_function, indent: str,
                       locations: bool, canonical: bool) -> list[str]:
    """The lines of a region op (without the outer indentation): `head regions {  comment`, the
    region functions indented, `}`."""
    lines = [head + " regions {" + (f"  {comment}" if comment else "")]
    for region in regions_of(node):
        text = print_function(region, locations, canonical)
        lines.extend(indent + line for line in text.rstrip("\n").split("\n"))
    lines.append("}")
    return lines
