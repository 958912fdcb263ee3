"""Symbolic dimensions in generated LLVM text (shape-polymorphic executables).

Emitters format dims into LLVM text; a `SymDim` (jitflow/ir/symdim.py) formats as a quoted value
name, `%"784*s0+16"`. `define_dims` is the one post-pass per function that defines the names a
function uses, right after its first block label: each symbol is an i64 loaded from the module
global `@jf.dims` (the entry point loads it from the slot array instead, after the slots and the
detail word, and stores it into `@jf.dims` for the kernels), each derived expression is computed
with mul/add. Nothing else in codegen needs to know that a dim was symbolic.
"""
from __future__ import annotations

import re

from jitflow.ir.symdim import SymDim, is_symbolic, parse, provably_le

DIMS_GLOBAL = "@jf.dims"
_NAME = re.compile(r'%"([^"]+)"')
_LABEL = re.compile(r"^[A-Za-z$._][\w$.-]*:")


def used_names(text: str) -> list[str]:
    """Distinct symbolic-dim names (their expression texts) in `text`, in order of first use."""
    return list(dict.fromkeys(_NAME.findall(text)))


def symbols_of(text: str) -> set:
    found = set()
    for name in used_names(text):
        dim = parse(name)
        if isinstance(dim, SymDim):
            found |= dim.symbols
    return found


def _symbol_ptr(index: int, n_symbols: int) -> str:
    return f"getelementptr inbounds ([{n_symbols} x i64], ptr {DIMS_GLOBAL}, i64 0, i64 {index})"


def definitions(names, n_symbols: int, entry_slot_base: int | None = None, store_all: bool = False) -> list[str]:
    """LLVM lines defining every name (and the symbols they use). With `entry_slot_base`, the
    symbols come from `%slots[entry_slot_base + i]` and are stored into @jf.dims (`store_all`:
    every symbol, used here or not)."""
    dims = [parse(n) for n in names]
    symbols = set(range(n_symbols)) if store_all else {i for d in dims if isinstance(d, SymDim) for i in d.symbols}
    lines = []
    for i in sorted(symbols):
        if entry_slot_base is not None:
            lines += [f'  %"jf.dim{i}.p" = getelementptr inbounds ptr, ptr %slots, i64 {entry_slot_base + i}',
                      f'  %"s{i}" = load i64, ptr %"jf.dim{i}.p"',
                      f'  store i64 %"s{i}", ptr {_symbol_ptr(i, n_symbols)}']
        else:
            lines.append(f'  %"s{i}" = load i64, ptr {_symbol_ptr(i, n_symbols)}')
    for name, dim in zip(names, dims):
        if not isinstance(dim, SymDim):
            raise ValueError(f"symbolic dim name without a symbol: {name!r}")
        if dim.terms == (((dim.terms[0][0][0],), 1),):
            continue                                    # a bare symbol: loaded above
        acc = None
        for t, (mono, coeff) in enumerate(dim.terms):
            if not mono:
                term = str(coeff)
            else:
                term = f'%"s{mono[0]}"'
                for j, i in enumerate(mono[1:]):
                    lines.append(f'  %"{name}.m{t}.{j}" = mul i64 {term}, %"s{i}"')
                    term = f'%"{name}.m{t}.{j}"'
                if coeff != 1:
                    lines.append(f'  %"{name}.c{t}" = mul i64 {term}, {coeff}')
                    term = f'%"{name}.c{t}"'
            if acc is None:
                acc = term
            else:
                lines.append(f'  %"{name}.a{t}" = add i64 {acc}, {term}')
                acc = f'%"{name}.a{t}"'
        lines.append(f'  %"{name}" = add i64 {acc}, 0')
    return lines


def define_dims(text: str, n_symbols: int, entry_slot_base: int | None = None) -> str:
    """`text` (one LLVM function) with definitions of the symbolic dims it uses inserted after its
    first block label; unchanged when it uses none (and is not the entry of a polymorphic module)."""
    names = [n for n in used_names(text) if not re.fullmatch(r"s\d+", n)]
    bare = {int(n[1:]) for n in used_names(text) if re.fullmatch(r"s\d+", n)}
    if not names and not bare and entry_slot_base is None:
        return text
    names = [f"s{i}" for i in sorted(bare)] + names
    lines = text.split("\n")
    at = next(k for k, line in enumerate(lines) if _LABEL.match(line))
    new = definitions(names, n_symbols, entry_slot_base, store_all=entry_slot_base is not None)
    return "\n".join(lines[:at + 1] + new + lines[at + 1:])


def global_definition(n_symbols: int) -> str:
    return f"{DIMS_GLOBAL} = internal global [{n_symbols} x i64] zeroinitializer, align 8"


def below(work, limit: int) -> bool:
    """work < limit for every value of its symbols (an int: plainly)."""
    return provably_le(work, limit - 1)


def fixed_offsets(*buffers) -> bool:
    """True when no buffer's workspace offset is symbolic (the entry's offset tables hold constants)."""
    return not any(is_symbolic(b.offset) for b in buffers)


def schedule_symbols(schedule) -> int:
    """1 + the largest symbol index in the schedule's buffer shapes (0: a concrete schedule)."""
    found = [i for b in schedule.buffers for d in b.shape if isinstance(d, SymDim) for i in d.symbols]
    return max(found) + 1 if found else 0


def threads_at_run_time(n: int, name: str, args: str, info, min_work: int, threaded: list) -> list:
    """Entry lines of a parallel call: `threaded` as is when its work is known; with symbolic work,
    the threaded call when the run's work reaches `min_work`, else one sequential call."""
    if not is_symbolic(info.work) and not is_symbolic(info.extent):
        return threaded
    return [f"  %par{n}.big = icmp sge i64 {info.work}, {min_work}",
            f"  br i1 %par{n}.big, label %par{n}.go, label %par{n}.seq",
            f"par{n}.seq:", f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 7)", f"  br label %par{n}.end",
            f"par{n}.go:"] + threaded + [f"  br label %par{n}.end", f"par{n}.end:"]


def define_module_dims(schedule, functions: list, entry: str, parts: list):
    """(functions, entry) with their symbolic dims defined; `@jf.dims` added to `parts`. A concrete
    module is returned as it is."""
    n_symbols = schedule_symbols(schedule)
    if not n_symbols:           # every buffer concrete: no symbol anywhere (no text scan on this path)
        return functions, entry
    for text in functions + [entry]:
        n_symbols = max([n_symbols] + [i + 1 for i in symbols_of(text)])
    parts.append(global_definition(n_symbols))
    return ([define_dims(f, n_symbols) for f in functions],
            define_dims(entry, n_symbols, entry_slot_base=len(schedule.slots) + 1))
